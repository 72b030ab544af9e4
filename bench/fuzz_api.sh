#!/usr/bin/env bash
# `make fuzz-api`: schemathesis (PyPI) generates requests from the OpenAPI
# document against a development server on a scratch SQLite database, signed
# in with a `dev seed` session, and fails on any 5xx. Bounded: FUZZ_EXAMPLES
# per operation (default 300). Only 127.0.0.1 is used.
set -euo pipefail
bin="$(realpath "${SAAS_API_BIN:?}")"
port="${FUZZ_PORT:-18095}"
command -v schemathesis >/dev/null || python3 -m pip install --quiet schemathesis
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
export PORT="$port" RATE_LIMIT_REQUESTS=100000000 DEBUG=false LOG_FORMAT=json RUST_LOG=warn
cookie="$("$bin" dev seed | sed -n "s/^curl .*Cookie: \([^']*\)'.*/\1/p")"
"$bin" > server.log 2>&1 &
server=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done
schemathesis run "http://127.0.0.1:$port/openapi.json" \
  -H "Cookie: $cookie" -H "Origin: http://localhost:5173" \
  --checks not_a_server_error --max-examples "${FUZZ_EXAMPLES:-300}" --workers 2 \
  --phases examples,fuzzing,stateful
if grep -q '"status":5' server.log; then
  echo "FAIL: the server answered 5xx (see its access log)"; exit 1
fi
