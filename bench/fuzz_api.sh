#!/usr/bin/env bash
# `make fuzz-api`: schemathesis (PyPI) generates requests from the OpenAPI
# document against a development server on a scratch SQLite database, signed
# in with each credential `dev seed` prints (the session cookie, a JWT, an API
# key) in turn, and fails on any 5xx. Bounded: FUZZ_EXAMPLES per operation and
# credential (default 300). Only 127.0.0.1 is used.
set -euo pipefail
bin="$(realpath "${SAAS_API_BIN:?}")"
port="${FUZZ_PORT:-18095}"
command -v schemathesis >/dev/null || python3 -m pip install --quiet schemathesis
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
export PORT="$port" RATE_LIMIT_REQUESTS=60000000 DEBUG=false LOG_FORMAT=json RUST_LOG=warn
seed="$("$bin" dev seed)"
line_after() { awk -v p="$1" 'index($0, p) == 1 { getline; print; exit }' <<<"$seed"; }
cookie="$(sed -n "s/^curl .*Cookie: \([^']*\)'.*\/users\/me$/\1/p" <<<"$seed")"
jwt="$(line_after "A JWT of the demo user")"
api_key="$(line_after "An API key of the demo user")"
for value in "$cookie" "$jwt" "$api_key"; do
  [ -n "$value" ] || { echo "dev seed did not print every credential:"; echo "$seed"; exit 1; }
done
"$bin" > server.log 2>&1 &
server=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done
status=0
for credential in "Cookie: $cookie" "Authorization: Bearer $jwt" "x-api-key: $api_key"; do
  echo "== schemathesis with ${credential%%:*}"
  schemathesis run "http://127.0.0.1:$port/openapi.json" \
    -H "$credential" -H "Origin: http://localhost:5173" \
    --checks not_a_server_error --max-examples "${FUZZ_EXAMPLES:-300}" --workers 2 \
    --phases examples,fuzzing,stateful || status=1
done
if grep -q '"status":5' server.log; then
  echo "FAIL: the server answered 5xx (see its access log)"; exit 1
fi
exit "$status"
