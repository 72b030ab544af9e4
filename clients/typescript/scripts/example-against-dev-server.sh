#!/usr/bin/env bash
# Runs example.ts against a development server of its own: a scratch SQLite
# database, `dev seed` for a session and the demo organization, the server on
# 127.0.0.1:$EXAMPLE_PORT (default 18096), stopped on exit.
#   SAAS_API_BIN=target/debug/saas-api clients/typescript/scripts/example-against-dev-server.sh
set -euo pipefail
bin="$(realpath "${SAAS_API_BIN:?set SAAS_API_BIN to the saas-api binary}")"
client="$(cd "$(dirname "$0")/.." && pwd)"
port="${EXAMPLE_PORT:-18096}"
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
export PORT="$port" RUST_LOG=warn LOG_FORMAT=json
seed="$("$bin" dev seed)"
cookie="$(sed -n "s/^curl .*Cookie: \([^']*\)'.*\/users\/me$/\1/p" <<<"$seed")"
[ -n "$cookie" ] || { echo "no cookie in the dev seed output:"; echo "$seed"; exit 1; }
"$bin" > server.log 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done
cd "$client"
npx tsx example.ts "http://127.0.0.1:$port" "$cookie" demo-org
