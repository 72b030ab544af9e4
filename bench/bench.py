#!/usr/bin/env python3
"""`make bench`: load a release build of saas-api on PostgreSQL + Redis.

Seeds 1,000 better-auth users (real better-auth schema), each with a live
session and 20 items, and 100 organizations (organization plugin tables) of
10 members each (one owner, one admin, eight members) with 20 items each,
an EdDSA key in `jwks` with a JWT per user and an unmetered API key per user,
starts the server with production settings, and drives
it with wrk at 64 connections, every request carrying a random user's signed
cookie (HMAC-SHA256, base64, percent-encoded: as better-auth signs it).
Alongside, pgbench runs the exact SQL of list_items, list_items_sorted
(`sort=name&is_active=true`), list_items_search (`q` of 3 characters) and
create_item, and
the mixed scenario's own SQL in its proportions (bench/mixed.sql: the list
query, the get-by-id-and-owner query, `SELECT 1` for the cached users/me, a
single-row INSERT; one statement per request) — the database's ceiling for
that workload — and redis-benchmark measures a GET, so ratios are taken
within one run. `health_live` is the framework's own ceiling with this
service's middleware (no dependency touched).

Everything talks to 127.0.0.1 only and every run is bounded in time.
Environment (defaults): BENCH_DURATION=15 BENCH_RUNS=3 BENCH_CONNECTIONS=64
BENCH_SCENARIOS=all BENCH_PG=postgres://postgres@127.0.0.1:5432 BENCH_DB=saas_bench
BENCH_REDIS=redis://127.0.0.1:6379/15 BENCH_PORT=18080 SAAS_API_BIN=target/release/saas-api
BENCH_SERVER_ENV (unset; "NAME=value,NAME=value" added to the server's environment, to measure a lever)
BENCH_REFERENCE=1 (0 skips pgbench and redis-benchmark: quicker A/B runs of the service alone)
BENCH_BASELINE_BIN (unset; another build of saas-api, e.g. the last commit's: each scenario that runs on the
  main server also runs as <scenario>@baseline on that binary, right after it in the same run, and the
  ratios new / baseline are printed — the before/after of a change in one run)
"""

import base64
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DURATION = int(os.environ.get("BENCH_DURATION", "15"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB", "saas_bench")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
PORT = int(os.environ.get("BENCH_PORT", "18080"))
BIN = Path(os.environ.get("SAAS_API_BIN", ROOT / "target" / "release" / "saas-api")).resolve()
SECRET = "bench-better-auth-secret-0123456789abcdef"
USERS, ITEMS_PER_USER = 1000, 20
MEMBERS_PER_ORG, ITEMS_PER_ORG = 10, 20
ORGS = USERS // MEMBERS_PER_ORG
ALL = ["health", "health_live", "users_me", "list_items", "list_items_sorted", "list_items_search", "get_item", "create_item",
       "mixed", "org_list_items", "org_mixed",
       "users_me_jwt", "list_items_jwt", "users_me_api_key", "users_me_churn", "users_me_secondary",
       "users_me_otel_0.1", "users_me_otel_1.0", "mixed_otel_0.1", "mixed_otel_1.0"]
# *_otel_<ratio>: users_me or mixed on a server exporting OpenTelemetry traces (OTLP/HTTP) to a local sink
# (BENCH_PORT + 20, a Python receiver that takes and discards them), sampling that share of new traces;
# *_otel_off (added with them): the same load on their control, a server started with them without export
# (BENCH_PORT + 3).
OTEL_SINK_PORT_OFFSET = 20
# users_me_secondary: users_me on a second server (BENCH_PORT + 2) configured as beside a better-auth that
# keeps sessions only in Redis (BETTER_AUTH_SECONDARY_STORAGE_URL): every request reads the session value and
# the user's revoked-before mark there (nothing cached in front); its own 1,000 users' sessions.
SECONDARY_PREFIX = "better-auth:"
# users_me_churn: users_me while better-auth signs CHURN_USERS other users out and in again
# (their session rows deleted and inserted, as its signOut and signIn do) as fast as psql
# goes; reports the session cache's effective hit rate (hits trusted / lookups).
CHURN_USERS = 200
ISSUER = "http://localhost:3000"  # BETTER_AUTH_URL's default: the JWTs' iss and aud

# The organization plugin's tables as better-auth 1.7.25's migrator makes them.
ORGANIZATION_SCHEMA = """
CREATE TABLE "organization" ("id" text NOT NULL PRIMARY KEY, "name" text NOT NULL, "slug" text NOT NULL UNIQUE,
  "logo" text, "createdAt" timestamptz NOT NULL, "metadata" text);
CREATE TABLE "member" ("id" text NOT NULL PRIMARY KEY,
  "organizationId" text NOT NULL REFERENCES "organization" ("id") ON DELETE CASCADE,
  "userId" text NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE, "role" text NOT NULL, "createdAt" timestamptz NOT NULL);
CREATE INDEX "member_organizationId_idx" ON "member" ("organizationId");
CREATE INDEX "member_userId_idx" ON "member" ("userId");
ALTER TABLE "session" ADD COLUMN "activeOrganizationId" text;
CREATE TABLE "jwks" ("id" text NOT NULL PRIMARY KEY, "publicKey" text NOT NULL, "privateKey" text NOT NULL,
  "createdAt" timestamptz NOT NULL, "expiresAt" timestamptz, "alg" text, "crv" text);
CREATE TABLE "apikey" ("id" text NOT NULL PRIMARY KEY, "configId" text NOT NULL DEFAULT 'default', "name" text,
  "start" text, "referenceId" text NOT NULL, "prefix" text, "key" text NOT NULL, "refillInterval" integer,
  "refillAmount" integer, "lastRefillAt" timestamptz, "enabled" boolean, "rateLimitEnabled" boolean,
  "rateLimitTimeWindow" integer, "rateLimitMax" integer, "requestCount" integer, "remaining" integer,
  "lastRequest" timestamptz, "expiresAt" timestamptz, "createdAt" timestamptz NOT NULL,
  "updatedAt" timestamptz NOT NULL, "permissions" text, "metadata" text);
CREATE INDEX "apikey_key_idx" ON "apikey" ("key");
"""


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt_signer():
    """An Ed25519 key (better-auth's default) stored in `jwks` as its jwt plugin does; signs JWTs."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwk = json.dumps({"crv": "Ed25519", "x": b64url(public), "kty": "OKP"})
    psql(DB, f"""INSERT INTO jwks (id, "publicKey", "privateKey", "createdAt", alg, crv)
                 VALUES ('bench-key', '{jwk}', 'unused', now(), 'EdDSA', 'Ed25519')""")
    header = b64url(json.dumps({"alg": "EdDSA", "kid": "bench-key"}).encode())

    def sign(claims):
        payload = b64url(json.dumps(claims).encode())
        return f"{header}.{payload}.{b64url(key.sign(f'{header}.{payload}'.encode()))}"
    return sign
SCENARIOS = ALL if os.environ.get("BENCH_SCENARIOS", "all") == "all" else os.environ["BENCH_SCENARIOS"].split(",")
# The cost of OpenTelemetry is measured against a control: `<base>_otel_off` runs the same load on a server
# started with the exporting ones and configured as they are but for export (so of the same age and history),
# in the same group; the group's order is reversed every other run, so neither side always goes first.
OTEL_GROUPS = {}
for _base in ("users_me", "mixed"):
    _group = [f"{_base}_otel_{r}" for r in ("0.1", "1.0") if f"{_base}_otel_{r}" in SCENARIOS]
    if _group:
        SCENARIOS.insert(SCENARIOS.index(_group[0]), f"{_base}_otel_off")
        OTEL_GROUPS[_base] = [f"{_base}_otel_off", *_group]
BASELINE = os.environ.get("BENCH_BASELINE_BIN")


def sh(*args, **kw):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kw).stdout


def psql(db, sql):
    return sh("psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAtc", sql)


def forget_inserts():
    """Deletes the items a run created (pgbench's and the service's: hundreds
    of thousands), so every run reads the seeded scopes (a search reads its
    whole scope)."""
    psql(DB, "DELETE FROM items WHERE description IN ('created by pgbench', 'created by make bench')")
    psql(DB, "VACUUM ANALYZE items")


def redis_db():
    return urllib.parse.urlparse(REDIS).path.strip("/") or "0"


def signed_cookie(token):
    signature = base64.b64encode(hmac.new(SECRET.encode(), token.encode(), hashlib.sha256).digest()).decode()
    return "better-auth.session_token=" + urllib.parse.quote(f"{token}.{signature}", safe="")


def server_env(database_url, extra=None):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "APP_ENV": "production",
        "DEBUG": "false",
        "SECRET_KEY": "bench-secret-key-bench-secret-key-0123",
        "BETTER_AUTH_SECRET": SECRET,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS,
        "HOST": "127.0.0.1",
        "PORT": str(PORT),
        "RATE_LIMIT_REQUESTS": "60000000",  # the most a 60 s window takes (one per µs)
        "RATE_LIMIT_WINDOW": "60",
        "LOG_FORMAT": "json",
        # Production keeps /metrics off the public port; each server scrapes on its own loopback port.
        "METRICS_ADDR": f"127.0.0.1:{PORT + 10}",
    }
    env.update(extra or {})
    for pair in filter(None, os.environ.get("BENCH_SERVER_ENV", "").split(",")):
        name, _, value = pair.partition("=")
        env[name.strip()] = value.strip()
    return env


def seed():
    print(f"seeding {USERS} users x {ITEMS_PER_USER} items into {DB} …", flush=True)
    sh("psql", f"{PG}/postgres", "-qc", f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    sh("psql", f"{PG}/postgres", "-qc", f'CREATE DATABASE "{DB}"')
    sh("psql", f"{PG}/{DB}", "-v", "ON_ERROR_STOP=1", "-qf", str(ROOT / "docker" / "better-auth-schema.sql"))
    psql(DB, ORGANIZATION_SCHEMA)
    env = server_env(f"{PG}/{DB}")
    sh(str(BIN), "migrate", "up", env=env)
    psql(DB, f"""
        INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")
          SELECT 'bench-user-' || g, 'Bench ' || g, 'bench' || g || '@example.com', true, now(), now()
          FROM generate_series(1, {USERS}) g;
        INSERT INTO session (id, "expiresAt", token, "createdAt", "updatedAt", "userId")
          SELECT 'bench-session-' || g, now() + interval '1 day', md5('bench-token-' || g), now(), now(), 'bench-user-' || g
          FROM generate_series(1, {USERS}) g;
        INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")
          SELECT 'bench-churn-' || g, 'Churn ' || g, 'churn' || g || '@example.com', true, now(), now()
          FROM generate_series(1, {CHURN_USERS}) g;
        INSERT INTO session (id, "expiresAt", token, "createdAt", "updatedAt", "userId")
          SELECT 'bench-churn-session-' || g, now() + interval '1 day', md5('churn-token-' || g), now(), now(), 'bench-churn-' || g
          FROM generate_series(1, {CHURN_USERS}) g;
        INSERT INTO items (id, name, description, owner_id, is_active, created_at, updated_at)
          SELECT md5('bench-item-' || g || '-' || i)::uuid, 'item ' || i, 'description ' || i, 'bench-user-' || g, i % 4 <> 0,
                 now() - (i || ' seconds')::interval, now()
          FROM generate_series(1, {USERS}) g, generate_series(1, {ITEMS_PER_USER}) i;
        INSERT INTO "organization" (id, name, slug, "createdAt")
          SELECT 'bench-org-' || o, 'Bench org ' || o, 'bench-org-' || o, now() FROM generate_series(1, {ORGS}) o;
        INSERT INTO "member" (id, "organizationId", "userId", role, "createdAt")
          SELECT 'bench-member-' || g, 'bench-org-' || ((g - 1) / {MEMBERS_PER_ORG} + 1), 'bench-user-' || g,
                 CASE (g - 1) % {MEMBERS_PER_ORG} WHEN 0 THEN 'owner' WHEN 1 THEN 'admin' ELSE 'member' END, now()
          FROM generate_series(1, {USERS}) g;
        INSERT INTO items (id, name, description, owner_id, organization_id, is_active, created_at, updated_at)
          SELECT gen_random_uuid(), 'org item ' || i, 'description ' || i,
                 'bench-user-' || ((o - 1) * {MEMBERS_PER_ORG} + 1 + i % {MEMBERS_PER_ORG}), 'bench-org-' || o, true,
                 now() - (i || ' seconds')::interval, now()
          FROM generate_series(1, {ORGS}) o, generate_series(1, {ITEMS_PER_ORG}) i;
        ANALYZE;""")
    rows = psql(DB, "SELECT owner_id, string_agg(id::text, ',') FROM items WHERE organization_id IS NULL GROUP BY owner_id")
    ids = dict(line.split("|") for line in rows.splitlines())
    rows = psql(DB, "SELECT organization_id, string_agg(id::text, ',') FROM items WHERE organization_id IS NOT NULL "
                    "GROUP BY organization_id")
    org_ids = dict(line.split("|") for line in rows.splitlines())
    sign = jwt_signer()
    now = int(time.time())
    created = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    api_keys = {g: f"bench-api-key-{g}-" + b64url(os.urandom(24)) for g in range(1, USERS + 1)}
    values = ",".join(
        f"('bench-apikey-{g}', 'bench-user-{g}', '{b64url(hashlib.sha256(raw.encode()).digest())}', true, false, "
        f"86400000, 10, now(), now())" for g, raw in api_keys.items())
    psql(DB, f"""INSERT INTO apikey (id, "referenceId", key, enabled, "rateLimitEnabled", "rateLimitTimeWindow",
                 "rateLimitMax", "createdAt", "updatedAt") VALUES {values}""")
    data = BENCH / "results" / "users.tsv"
    with data.open("w") as f:
        for g in range(1, USERS + 1):
            token = hashlib.md5(f"bench-token-{g}".encode()).hexdigest()
            org = f"bench-org-{(g - 1) // MEMBERS_PER_ORG + 1}"
            user = f"bench-user-{g}"
            jwt = sign({"sub": user, "id": user, "iss": ISSUER, "aud": ISSUER, "iat": now, "exp": now + 4 * 3600,
                        "name": f"Bench {g}", "email": f"bench{g}@example.com", "emailVerified": True,
                        "image": None, "createdAt": created, "updatedAt": created})
            f.write(f"{signed_cookie(token)}\t{ids[user]}\t{org}\t{org_ids[org]}\t{jwt}\t{api_keys[g]}\n")
    return data


def resp(*args):
    """One command in Redis's wire protocol (for redis-cli --pipe)."""
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        raw = a.encode() if isinstance(a, str) else a
        out += [f"${len(raw)}\r\n".encode(), raw, b"\r\n"]
    return b"".join(out)


def seed_secondary(data):
    """Sessions as better-auth with @better-auth/redis-storage keeps them (JSON under <prefix><token>, TTL),
    for the bench users; returns a copy of the data file whose first column is their cookie."""
    now = datetime.now(timezone.utc)
    iso = lambda at: at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    expires = now.timestamp() + 86400
    commands = []
    rows = data.read_text().splitlines()
    out = BENCH / "results" / "users_secondary.tsv"
    with out.open("w") as f:
        for g, row in enumerate(rows, start=1):
            token = hashlib.md5(f"bench-secondary-token-{g}".encode()).hexdigest()
            user = f"bench-user-{g}"
            value = json.dumps({
                "session": {"id": f"bench-secondary-{g}", "token": token, "userId": user,
                            "expiresAt": iso(datetime.fromtimestamp(expires, timezone.utc)), "createdAt": iso(now),
                            "updatedAt": iso(now), "ipAddress": "", "userAgent": "", "activeOrganizationId": None},
                "user": {"id": user, "name": f"Bench {g}", "email": f"bench{g}@example.com", "emailVerified": True,
                         "image": None, "createdAt": iso(now), "updatedAt": iso(now), "role": "user", "banned": False,
                         "banReason": None, "banExpires": None}})
            commands.append(resp("SET", SECONDARY_PREFIX + token, value, "EX", "86400"))
            f.write(signed_cookie(token) + "\t" + row.split("\t", 1)[1] + "\n")
    host = urllib.parse.urlparse(REDIS)
    subprocess.run(["redis-cli", "-h", host.hostname, "-p", str(host.port or 6379), "-n", redis_db(), "--pipe"],
                   input=b"".join(commands), check=True, capture_output=True)
    return out


class OtlpSink:
    """A local OTLP/HTTP receiver for the *_otel_* scenarios: takes every export (200) and discards it."""

    def __init__(self, port):
        import http.server
        import threading
        sink = self
        self.requests, self.bytes = 0, 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                sink.requests += 1
                sink.bytes += length
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()


def rss_kb(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU the process has used (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid):
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def wait_healthy(base, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    return True
        except Exception:
            time.sleep(0.005)
    return False


def metrics():
    """The server's /metrics counters and gauges, by series (name and labels)."""
    series = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT + 10}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    series[name] = float(value)
                except ValueError:
                    pass
    return series


class Churn:
    """Signs CHURN_USERS users out and in again, one after the other, until stopped."""

    def __init__(self):
        import threading
        self.stop, self.count = threading.Event(), 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        g = 0
        while not self.stop.is_set():
            g = g % CHURN_USERS + 1
            psql(DB, f"""DELETE FROM session WHERE id = 'bench-churn-session-{g}';
                         INSERT INTO session (id, "expiresAt", token, "createdAt", "updatedAt", "userId")
                         VALUES ('bench-churn-session-{g}', now() + interval '1 day', md5(random()::text), now(), now(),
                                 'bench-churn-{g}')""")
            self.count += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()


def hit_rate(before, after):
    """Session cache lookups trusted / all lookups, between two /metrics readings."""
    def delta(name):
        return after.get(name, 0) - before.get(name, 0)
    hits = delta('session_cache_lookups_total{outcome="hit"}')
    misses = delta('session_cache_lookups_total{outcome="miss"}')
    distrusted = delta("auth_cache_distrusted_hits")
    lookups = hits + misses
    return (hits - distrusted) / lookups if lookups else float("nan")


def wrk(scenario, data, duration, port=PORT):
    env = dict(os.environ, BENCH_DATA=str(data), BENCH_SCENARIO=scenario)
    out = sh("wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "5s", "--latency",
             "-s", str(BENCH / "wrk.lua"), f"http://127.0.0.1:{port}", env=env)
    result = json.loads(next(l for l in out.splitlines() if l.startswith("BENCH_RESULT")).split(" ", 1)[1])
    seconds = result["duration_us"] / 1e6
    return {
        "requests": result["requests"],
        "rps": result["requests"] / seconds,
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "non2xx": result["non2xx"] + result["socket_errors"],
    }


def pgbench(script):
    out = sh("pgbench", "-n", "-M", "prepared", "-c", str(CONNECTIONS), "-j", "2", "-T", str(DURATION),
             "-f", str(BENCH / script), f"{PG}/{DB}")
    line = next(l for l in out.splitlines() if l.startswith("tps"))
    return float(line.split("=")[1].split()[0])


def redis_get():
    host = urllib.parse.urlparse(REDIS)
    out = sh("redis-benchmark", "-h", host.hostname, "-p", str(host.port or 6379), "-c", str(CONNECTIONS),
             "-n", "300000", "-t", "get", "-q", "--csv")
    row = [l for l in out.splitlines() if l.startswith('"GET"')][0]
    return float(row.split(",")[1].strip('"'))


def startup_on_sqlite():
    """Milliseconds from exec to the first healthy answer, and idle RSS, on the embedded default."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": os.environ.get("PATH", ""), "PORT": str(PORT + 1), "LOG_FORMAT": "json", "RUST_LOG": "warn"}
        started = time.monotonic()
        proc = subprocess.Popen([str(BIN)], cwd=tmp, env=env, stderr=subprocess.DEVNULL)
        try:
            ok = wait_healthy(f"http://127.0.0.1:{PORT + 1}", timeout=20)
            elapsed = (time.monotonic() - started) * 1000
            time.sleep(1)
            idle = rss_kb(proc.pid, "VmRSS") / 1024
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        return (elapsed if ok else None), idle


def main():
    for tool in ("wrk", "pgbench", "redis-benchmark", "psql", "redis-cli"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            sys.exit(f"bench: `{tool}` is missing (apt-get install wrk postgresql-client redis-tools)")
    if not BIN.exists():
        sys.exit(f"bench: {BIN} not found: build it with `cargo build --release -p api`")
    (BENCH / "results").mkdir(exist_ok=True)
    data = seed()
    host = urllib.parse.urlparse(REDIS)
    sh("redis-cli", "-h", host.hostname, "-p", str(host.port or 6379), "-n", redis_db(), "FLUSHDB")

    startups, idles = zip(*(startup_on_sqlite() for _ in range(3)))
    log = open(BENCH / "results" / "server.log", "w")
    server = subprocess.Popen([str(BIN)], env=server_env(f"{PG}/{DB}"), stderr=log, cwd=ROOT)
    # Servers configured otherwise, each on its own port: scenario -> (wrk scenario, variant).
    variants, routes, logs, sink = {}, {}, [], None
    if "users_me_secondary" in SCENARIOS:
        secondary_data = seed_secondary(data)
        variants["secondary"] = (2, {"BETTER_AUTH_SECONDARY_STORAGE_URL": REDIS,
                                     "BETTER_AUTH_SECONDARY_STORAGE_PREFIX": SECONDARY_PREFIX}, secondary_data)
        routes["users_me_secondary"] = ("users_me", "secondary")
    for n, ratio in enumerate(("0.1", "1.0")):
        wanted = [s for s in (f"users_me_otel_{ratio}", f"mixed_otel_{ratio}") if s in SCENARIOS]
        if wanted:
            variants[f"otel_{ratio}"] = (4 + 2 * n, {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{PORT + OTEL_SINK_PORT_OFFSET}",
                "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": ratio}, data)
            for scenario in wanted:
                routes[scenario] = (scenario.split("_otel_")[0], f"otel_{ratio}")
    if OTEL_GROUPS:
        variants["otel_off"] = (3, {}, data)
        for base in OTEL_GROUPS:
            routes[f"{base}_otel_off"] = (base, "otel_off")
    if any(v.startswith("otel_") for v in variants):
        sink = OtlpSink(PORT + OTEL_SINK_PORT_OFFSET)
    binaries = {}
    if BASELINE:
        # The same settings and data on the other build; each main-server scenario runs on both, in turn.
        variants["baseline"] = (8, {}, data)
        binaries["baseline"] = BASELINE
        plain = [s for s in SCENARIOS if s not in routes and s != "users_me_churn"]
        for s in plain:
            routes[f"{s}@baseline"] = (s, "baseline")
        SCENARIOS[:] = [x for s in SCENARIOS for x in ((s, f"{s}@baseline") if s in plain else (s,))]
    procs = {}
    for name, (offset, extra, _) in variants.items():
        log_file = open(BENCH / "results" / f"server-{name}.log", "w")
        logs.append(log_file)
        procs[name] = subprocess.Popen([binaries.get(name, str(BIN))], env=server_env(f"{PG}/{DB}", {
            "PORT": str(PORT + offset), "METRICS_ADDR": f"127.0.0.1:{PORT + 10 + offset}", **extra}),
            stderr=log_file, cwd=ROOT)
    runs = []
    try:
        if not wait_healthy(f"http://127.0.0.1:{PORT}"):
            sys.exit("bench: server did not become healthy (see bench/results/server.log)")
        for name, (offset, _, _) in variants.items():
            if not wait_healthy(f"http://127.0.0.1:{PORT + offset}"):
                sys.exit(f"bench: the {name} server did not become healthy (see bench/results/server-{name}.log)")
        time.sleep(0.5)
        idle_pg = rss_kb(server.pid, "VmRSS") / 1024
        wrk("users_me", data, 3)  # warm the session cache for every user
        for offset, _, variant_data in variants.values():
            wrk("users_me", variant_data, 3, port=PORT + offset)  # and on every other server
        for run in range(1, RUNS + 1):
            results = {}
            order = list(SCENARIOS)
            if run % 2 == 0:
                for group in OTEL_GROUPS.values():
                    slots = [order.index(s) for s in group]
                    for slot, scenario in zip(slots, reversed(group)):
                        order[slot] = scenario
            for scenario in order:
                reset_peak(server.pid)
                pid = procs[routes[scenario][1]].pid if scenario in routes else server.pid
                cpu_before = cpu_seconds(pid)
                if scenario == "users_me_churn":
                    before = metrics()
                    with Churn() as churn:
                        r = wrk("users_me", data, DURATION)
                    r["hit_rate"] = hit_rate(before, metrics())
                    print(f"run {run} users_me_churn: {churn.count} sign-outs and sign-ins of other users alongside; "
                          f"session cache hit rate {r['hit_rate']:.4f}", flush=True)
                elif scenario in routes:
                    load, variant = routes[scenario]
                    offset, _, variant_data = variants[variant]
                    reset_peak(procs[variant].pid)
                    r = wrk(load, variant_data, DURATION, port=PORT + offset)
                    r["peak_rss_mb"] = rss_kb(procs[variant].pid, "VmHWM") / 1024
                else:
                    r = wrk(scenario, data, DURATION)
                r.setdefault("peak_rss_mb", rss_kb(server.pid, "VmHWM") / 1024)
                # The service's own CPU per request: steadier than req/s on a shared machine.
                r["cpu_us"] = (cpu_seconds(pid) - cpu_before) * 1e6 / max(r["requests"], 1)
                results[scenario] = r
                print(f"run {run} {scenario:<12} {r['rps']:>9.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
                      f"p99 {r['p99_ms']:7.2f} ms  non-2xx {r['non2xx']}  peak RSS {r['peak_rss_mb']:.1f} MB  "
                      f"CPU {r['cpu_us']:.1f} µs/request", flush=True)
            if os.environ.get("BENCH_REFERENCE", "1") == "0":
                forget_inserts()
                runs.append(results)
                continue
            forget_inserts()  # pgbench reads what the scenarios read
            results["pgbench_list_tps"] = pgbench("list_items.sql")
            results["pgbench_sorted_tps"] = pgbench("list_items_sorted.sql")
            results["pgbench_search_tps"] = pgbench("list_items_search.sql")
            results["pgbench_insert_tps"] = pgbench("create_item.sql")
            results["pgbench_mixed_tps"] = pgbench("mixed.sql")
            forget_inserts()
            results["redis_get_ops"] = redis_get()
            print(f"run {run} pgbench list {results['pgbench_list_tps']:.0f} tps, "
                  f"sorted {results['pgbench_sorted_tps']:.0f} tps, search {results['pgbench_search_tps']:.0f} tps, "
                  f"insert {results['pgbench_insert_tps']:.0f} tps, "
                  f"mixed {results['pgbench_mixed_tps']:.0f} tps, "
                  f"redis GET {results['redis_get_ops']:.0f} ops/s", flush=True)
            runs.append(results)
    finally:
        for proc in [server, *procs.values()]:
            proc.terminate()
            proc.wait(timeout=60)
        for log_file in [log, *logs]:
            log_file.close()
        if sink:
            print(f"OTLP sink: {sink.requests} exports, {sink.bytes / 1e6:.1f} MB of spans received", flush=True)
            sink.stop()

    def median(key, field=None):
        return statistics.median(r[key][field] if field else r[key] for r in runs)

    peer = {"mixed": 81}  # FastAPI original, 2 workers (shared/bench/PEER_BASELINE.md)
    summary = {s: {f: median(s, f) for f in ("rps", "p50_ms", "p99_ms", "non2xx", "peak_rss_mb", "cpu_us")}
               for s in SCENARIOS}
    keys = ("pgbench_list_tps", "pgbench_sorted_tps", "pgbench_search_tps", "pgbench_insert_tps", "pgbench_mixed_tps",
            "redis_get_ops")
    reference = {k: median(k) for k in keys} if all(k in runs[0] for k in keys) else {k: float("nan") for k in keys}
    ratios = {}
    if "list_items" in summary:
        ratios["list_items / pgbench list"] = summary["list_items"]["rps"] / reference["pgbench_list_tps"]
    if "list_items_sorted" in summary:
        ratios["list_items_sorted / pgbench sorted"] = summary["list_items_sorted"]["rps"] / reference["pgbench_sorted_tps"]
    if "list_items_search" in summary:
        ratios["list_items_search / pgbench search"] = summary["list_items_search"]["rps"] / reference["pgbench_search_tps"]
    if "create_item" in summary:
        ratios["create_item / pgbench insert"] = summary["create_item"]["rps"] / reference["pgbench_insert_tps"]
    if "users_me" in summary:
        ratios["users_me / redis GET"] = summary["users_me"]["rps"] / reference["redis_get_ops"]
    if "mixed" in summary:
        ratios["mixed / pgbench mixed"] = summary["mixed"]["rps"] / reference["pgbench_mixed_tps"]
        ratios["mixed / FastAPI (2 workers)"] = summary["mixed"]["rps"] / peer["mixed"]
    if "users_me" in summary and "health_live" in summary:
        ratios["users_me / health_live"] = summary["users_me"]["rps"] / summary["health_live"]["rps"]
    if "org_list_items" in summary and "list_items" in summary:
        ratios["org_list_items / list_items"] = summary["org_list_items"]["rps"] / summary["list_items"]["rps"]
    if "org_mixed" in summary and "mixed" in summary:
        ratios["org_mixed / mixed"] = summary["org_mixed"]["rps"] / summary["mixed"]["rps"]
    if "users_me_jwt" in summary and "users_me" in summary:
        ratios["users_me_jwt / users_me"] = summary["users_me_jwt"]["rps"] / summary["users_me"]["rps"]
    if "list_items_jwt" in summary and "list_items" in summary:
        ratios["list_items_jwt / list_items"] = summary["list_items_jwt"]["rps"] / summary["list_items"]["rps"]
    if "users_me_churn" in summary:
        ratios["users_me_churn session cache hit rate"] = median("users_me_churn", "hit_rate")
    if "users_me_churn" in summary and "users_me" in summary:
        ratios["users_me_churn / users_me"] = summary["users_me_churn"]["rps"] / summary["users_me"]["rps"]
    for base, group in OTEL_GROUPS.items():
        control = f"{base}_otel_off"
        for scenario in group[1:]:
            ratios[f"{scenario} / {control}"] = summary[scenario]["rps"] / summary[control]["rps"]
            # The cost per request: the median over runs of each run's CPU ratio (same run, same load).
            ratios[f"{scenario} CPU per request / {control}"] = statistics.median(
                r[scenario]["cpu_us"] / r[control]["cpu_us"] for r in runs)
    for s in summary:
        if s.endswith("@baseline") and s.removesuffix("@baseline") in summary:
            new = s.removesuffix("@baseline")
            ratios[f"{new} / baseline"] = summary[new]["rps"] / summary[s]["rps"]
            ratios[f"{new} CPU per request / baseline"] = statistics.median(r[new]["cpu_us"] / r[s]["cpu_us"] for r in runs)
    if "users_me_secondary" in summary and "users_me" in summary:
        ratios["users_me_secondary / users_me"] = summary["users_me_secondary"]["rps"] / summary["users_me"]["rps"]
    if "users_me_api_key" in summary and "users_me" in summary:
        ratios["users_me_api_key / users_me"] = summary["users_me_api_key"]["rps"] / summary["users_me"]["rps"]

    print(f"\nmedians of {RUNS} run(s), {DURATION} s per scenario, {CONNECTIONS} connections")
    print("| scenario | req/s | p50 ms | p99 ms | non-2xx | peak RSS MB | CPU µs/request |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s, r in summary.items():
        print(f"| {s} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non2xx']:.0f} | {r['peak_rss_mb']:.1f} "
              f"| {r['cpu_us']:.1f} |")
    print(f"\npgbench list_items SQL: {reference['pgbench_list_tps']:.0f} tps; sorted: {reference['pgbench_sorted_tps']:.0f} tps; "
          f"search: {reference['pgbench_search_tps']:.0f} tps; INSERT: {reference['pgbench_insert_tps']:.0f} tps; "
          f"mixed SQL: {reference['pgbench_mixed_tps']:.0f} tps; "
          f"redis-benchmark GET: {reference['redis_get_ops']:.0f} ops/s")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    startup_ms = statistics.median([s for s in startups if s is not None]) if any(startups) else None
    print(f"start-up to first healthy answer (SQLite): {startup_ms:.0f} ms; idle RSS: SQLite {statistics.median(idles):.1f} MB, "
          f"PostgreSQL+Redis {idle_pg:.1f} MB")

    out = BENCH / "results" / f"bench-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({
        "when": datetime.now(timezone.utc).isoformat(), "duration_s": DURATION, "connections": CONNECTIONS,
        "runs": runs, "median": summary, "reference": reference, "ratios": ratios,
        "startup_ms": startup_ms, "idle_rss_mb": {"sqlite": statistics.median(idles), "postgres_redis": idle_pg},
    }, indent=2))
    print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
