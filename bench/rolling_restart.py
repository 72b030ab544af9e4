#!/usr/bin/env python3
"""`make rolling-restart`: two instances of a release build behind HAProxy
(Debian's package), a mixed load running through it, and each instance
stopped with SIGTERM and started again in turn. Prints the counts: every
answer must be 2xx, and every write the load balancer acknowledged (201)
must be in the database afterwards.

What makes it work (the same settings belong in production):
- the service turns `/health/ready` 503 the moment SIGTERM arrives and keeps
  serving for `SHUTDOWN_DELAY_MS` before it stops accepting; HAProxy checks
  readiness every 250 ms and takes an instance out after one failed check, so
  it has stopped sending before the listener closes; in-flight requests are
  drained (`SHUTDOWN_TIMEOUT`);
- HAProxy retries a request on another instance only when the connection
  could not be made (`retry-on conn-failure`: the request was never sent, so
  even a POST is safe), and re-dispatches it (`option redispatch`);
- a restarted instance gets traffic again after two good checks.

Everything talks to 127.0.0.1 and is bounded in time. Environment (defaults):
ROLLING_DURATION=40 (seconds of load) ROLLING_CLIENTS=16 BENCH_PG=postgres://postgres@127.0.0.1:5432
ROLLING_SHUTDOWN_DELAY_MS=1500 (0 shows what the delay is for) ROLLING_DB=saas_rolling BENCH_REDIS=redis://127.0.0.1:6379/14 ROLLING_PORT=18180 SAAS_API_BIN=target/release/saas-api
"""

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ROOT, signed_cookie, sh  # noqa: E402  (one signing rule for both tools)

DURATION = int(os.environ.get("ROLLING_DURATION", "40"))
CLIENTS = int(os.environ.get("ROLLING_CLIENTS", "16"))
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("ROLLING_DB", "saas_rolling")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
PORT = int(os.environ.get("ROLLING_PORT", "18180"))
BIN = Path(os.environ.get("SAAS_API_BIN", ROOT / "target" / "release" / "saas-api")).resolve()
SECRET = "bench-better-auth-secret-0123456789abcdef"  # bench.py's, which signed_cookie uses
USERS = 200
INSTANCES = [PORT + 1, PORT + 2]

HAPROXY_CFG = """
global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
    retry-on conn-failure
frontend api
    bind 127.0.0.1:{front}
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
    default-server inter 250ms fall 1 rise 2
{servers}
"""


def psql(sql):
    return sh("psql", f"{PG}/{DB}", "-v", "ON_ERROR_STOP=1", "-qAtc", sql)


def count_present(ids):
    """How many of the item ids are in the database (the list goes through stdin: it can be long)."""
    if not ids:
        return 0
    sql = "CREATE TEMP TABLE acked (id uuid);\nCOPY acked FROM STDIN;\n" + "\n".join(ids) + "\n\\.\n" \
          "SELECT count(*) FROM items JOIN acked USING (id);\n"
    out = subprocess.run(["psql", f"{PG}/{DB}", "-v", "ON_ERROR_STOP=1", "-qAt"], input=sql, text=True,
                         capture_output=True, check=True).stdout
    return int(out.strip().splitlines()[-1])


def seed():
    sh("psql", f"{PG}/postgres", "-qc", f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    sh("psql", f"{PG}/postgres", "-qc", f'CREATE DATABASE "{DB}"')
    sh("psql", f"{PG}/{DB}", "-v", "ON_ERROR_STOP=1", "-qf", str(ROOT / "docker" / "better-auth-schema.sql"))
    sh(str(BIN), "migrate", "up", env=env_for(PORT + 1))
    psql(f"""
        INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")
          SELECT 'rolling-user-' || g, 'Rolling ' || g, 'rolling' || g || '@example.com', true, now(), now()
          FROM generate_series(1, {USERS}) g;
        INSERT INTO session (id, "expiresAt", token, "createdAt", "updatedAt", "userId")
          SELECT 'rolling-session-' || g, now() + interval '1 day', md5('rolling-token-' || g), now(), now(),
                 'rolling-user-' || g
          FROM generate_series(1, {USERS}) g;""")
    import hashlib
    return [signed_cookie(hashlib.md5(f"rolling-token-{g}".encode()).hexdigest()) for g in range(1, USERS + 1)]


def env_for(port):
    return {
        "PATH": os.environ.get("PATH", ""),
        "APP_ENV": "production",
        "DEBUG": "false",
        "SECRET_KEY": "rolling-secret-key-rolling-secret-key-0123",
        "BETTER_AUTH_SECRET": SECRET,
        "DATABASE_URL": f"{PG}/{DB}",
        "REDIS_URL": REDIS,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "METRICS_ADDR": f"127.0.0.1:{port + 100}",
        "RATE_LIMIT_REQUESTS": "60000000",
        "RATE_LIMIT_WINDOW": "60",
        "TRUSTED_PROXIES": "127.0.0.1",
        "FRONTEND_URL": "http://localhost:3000",
        "SHUTDOWN_DELAY_MS": os.environ.get("ROLLING_SHUTDOWN_DELAY_MS", "1500"),
        "SHUTDOWN_TIMEOUT": "10",
        "LOG_FORMAT": "json",
        "RUST_LOG": "warn",
    }


def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def start(port, log):
    proc = subprocess.Popen([str(BIN)], env=env_for(port), stderr=log, cwd=ROOT)
    deadline = time.monotonic() + 30
    while not ready(port):
        if time.monotonic() > deadline or proc.poll() is not None:
            sys.exit(f"rolling-restart: the instance on {port} did not become ready (see the log)")
        time.sleep(0.05)
    return proc


class Load:
    """CLIENTS threads sending users/me, item lists and item creations through the load balancer."""

    def __init__(self, cookies):
        self.cookies, self.stop = cookies, threading.Event()
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "2xx": 0}
        self.failures = []
        self.acknowledged = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def record(self, status, what):
        with self.lock:
            self.counts["requests"] += 1
            if 200 <= status < 300:
                self.counts["2xx"] += 1
            elif len(self.failures) < 20:
                self.failures.append(what)

    def run(self, seed):
        rng = random.Random(seed)
        conn = None
        while not self.stop.is_set():
            cookie = rng.choice(self.cookies)
            roll = rng.random()
            if roll < 0.5:
                method, path, body = "GET", "/api/v1/users/me", None
            elif roll < 0.8:
                method, path, body = "GET", "/api/v1/items?limit=20", None
            else:
                method, path, body = "POST", "/api/v1/items", json.dumps({"name": f"rolling {rng.random()}"})
            headers = {"Cookie": cookie, "Origin": "http://localhost:3000"}
            if body:
                headers["Content-Type"] = "application/json"
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                self.record(response.status, f"{method} {path}: {response.status} {payload[:200]!r}")
                if method == "POST" and response.status == 201:
                    with self.lock:
                        self.acknowledged.append(json.loads(payload)["id"])
            except Exception as error:  # a reset or refused connection is a failure the client saw
                self.record(0, f"{method} {path}: {type(error).__name__} {error}")
                conn = None

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        for t in self.threads:
            t.join()


def main():
    for tool in ("haproxy", "psql"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            sys.exit(f"rolling-restart: `{tool}` is missing (apt-get install haproxy postgresql-client)")
    if not BIN.exists():
        sys.exit(f"rolling-restart: {BIN} not found: build it with `cargo build --release -p api`")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    cookies = seed()
    log = open(ROOT / "bench" / "results" / "rolling-restart.log", "w")
    procs = {port: start(port, log) for port in INSTANCES}
    servers = "\n".join(f"    server i{n} 127.0.0.1:{port} check" for n, port in enumerate(INSTANCES, 1))
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as cfg:
        cfg.write(HAPROXY_CFG.format(front=PORT, servers=servers))
    haproxy = subprocess.Popen(["haproxy", "-f", cfg.name, "-db"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while not ready(PORT):
            if time.monotonic() > deadline:
                sys.exit("rolling-restart: HAProxy did not route to a ready instance")
            time.sleep(0.05)
        time.sleep(1)  # both instances up in HAProxy's eyes
        restarts = []
        with Load(cookies) as load:
            started = time.monotonic()
            time.sleep(DURATION / 4)
            for port in INSTANCES:
                t0 = time.monotonic()
                procs[port].send_signal(signal.SIGTERM)
                code = procs[port].wait(timeout=60)
                stopped = time.monotonic() - t0
                procs[port] = start(port, log)
                restarts.append((port, code, stopped, time.monotonic() - t0))
                print(f"instance :{port} stopped (exit {code}) in {stopped:.2f} s, ready again after "
                      f"{time.monotonic() - t0:.2f} s", flush=True)
                time.sleep(DURATION / 4)
            time.sleep(max(0.0, DURATION - (time.monotonic() - started)))
        ids = load.acknowledged
        found = count_present(ids)
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=10)
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)
        log.close()
        os.unlink(cfg.name)
    non_2xx = load.counts["requests"] - load.counts["2xx"]
    lost = len(ids) - found
    print(f"\n{load.counts['requests']} requests through HAProxy during {len(restarts)} rolling restarts "
          f"({DURATION} s, {CLIENTS} clients): {non_2xx} non-2xx or failed; "
          f"{len(ids)} acknowledged writes, {lost} lost")
    for failure in load.failures:
        print("  " + failure)
    if non_2xx or lost or any(code != 0 for _, code, _, _ in restarts):
        sys.exit(1)


if __name__ == "__main__":
    main()
