#!/usr/bin/env python3
"""`make bench-hostile`: memory and liveness while clients post hostile bodies.

Starts a release build of saas-api on the embedded default (SQLite, in a
scratch directory, a session made by `saas-api dev seed`), then for
BENCH_DURATION seconds (default 10) has BENCH_CLIENTS (default 8) clients
post, in a loop, the body of the hardening issue: one JSON object with one
million distinct unknown keys (9.9 MB; refused with 413, being larger than
any valid item), then as many seconds a 70,000-key body (0.6 MB, under the
item limit: parsed until the 50-error cap, 422). Meanwhile one client asks
`/health/live` every 20 ms. Prints the answers' statuses and sizes, the
server's peak RSS (VmHWM) and the latency of `/health/live` (p50, p99, max).
Targets (issue "Hardening"): peak RSS < 64 MB, `/health/live` < 50 ms.
Only 127.0.0.1 is used; the run is bounded in time.
"""

import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("SAAS_API_BIN", ROOT / "target" / "release" / "saas-api")).resolve()
DURATION = float(os.environ.get("BENCH_DURATION", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
PORT = int(os.environ.get("BENCH_PORT", "18081"))


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    work = Path(tempfile.mkdtemp(prefix="saas-hostile-"))
    env = {"PATH": os.environ["PATH"], "PORT": str(PORT), "RATE_LIMIT_REQUESTS": "1000000", "LOG_FORMAT": "json",
           "RUST_LOG": "warn"}
    seed = subprocess.run([BIN, "dev", "seed"], cwd=work, env=env, capture_output=True, text=True, check=True)
    curl = next(line for line in seed.stdout.splitlines() if line.startswith("curl "))
    cookie = curl.split("Cookie: ")[1].split("'")[0]
    server = subprocess.Popen([BIN], cwd=work, env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/health/live")
                break
            except OSError:
                time.sleep(0.05)
        idle = peak_rss_mb(server.pid)
        answers, latencies, lock = [], [], threading.Lock()
        for keys in (1_000_000, 70_000):
            body = ("{" + ",".join('"%x":0' % i for i in range(keys)) + "}").encode()
            print(f"{CLIENTS} clients x {DURATION:.0f} s posting a {len(body) / 1e6:.1f} MB body of {keys:,} unknown keys")
            run(cookie, body, answers, latencies, lock)
        peak = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    report(answers, latencies, peak, idle)
    ok = peak < 64 and max(latencies) < 50
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def run(cookie, body, answers, latencies, lock):
    deadline = time.monotonic() + DURATION

    def poster():
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            try:
                conn.request("POST", "/api/v1/items", body=body,
                             headers={"Cookie": cookie, "Content-Type": "application/json"})
                response = conn.getresponse()
                size = len(response.read())
                with lock:
                    answers.append((response.status, size))
            except OSError as error:
                with lock:
                    answers.append((str(error), 0))
            finally:
                conn.close()

    def prober():
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn.request("GET", "/health/live")
            conn.getresponse().read()
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)

    threads = [threading.Thread(target=poster) for _ in range(CLIENTS)] + [threading.Thread(target=prober)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def report(answers, latencies, peak, idle):
    statuses = {}
    for status, size in answers:
        statuses.setdefault(status, []).append(size)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    for status, sizes in sorted(statuses.items(), key=str):
        print(f"  answers {status}: {len(sizes)} (body {max(sizes)} bytes at most)")
    print(f"  peak RSS {peak:.1f} MB (idle {idle:.1f} MB); target < 64 MB")
    print(f"  /health/live over {len(latencies)} probes: p50 {statistics.median(latencies):.2f} ms, "
          f"p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms; target < 50 ms")


if __name__ == "__main__":
    sys.exit(main())
