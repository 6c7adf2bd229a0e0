#!/usr/bin/env bash
# Runs the pinned upstream conformance suite against a prisma-streams server that this
# script starts (and always stops) on 127.0.0.1 with a throw-away data directory.
#
#   tests/conformance/run.sh [--bin PATH] [--mode full] [-t REGEX] [--url URL]
#
# --bin   server binary (default: target/debug/prisma-streams)
# --mode  full (default): `server --object-store STORE`;
#         local: `local start` with its own DS_LOCAL_DATA_ROOT
# --store the object store of full mode: memory (default), local, s3, r2 (the s3/r2
#         variables must be set in the environment)
# --tiny  full mode with tiny segment thresholds, so that reads cross segments, blocks
#         and the SQLite tail, and uploads happen during the run
# Other DS_* variables set in the environment reach the server unchanged.
# --url   run against an already running server instead of starting one
# -t      only tests whose name matches REGEX
# The last line printed is always "N passed, M failed"; the exit code is 0 only when
# every test ran passed.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="$repo/target/debug/prisma-streams"
mode="full"
store="memory"
tiny=0
filter=""
url=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --mode) mode="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    --tiny) tiny=1; shift ;;
    --url) url="$2"; shift 2 ;;
    -t) filter="$2"; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; echo "0 passed, 0 failed"; exit 2 ;;
  esac
done

fail_setup() { echo "conformance: $*" >&2; echo "0 passed, 0 failed"; exit 2; }

if [ ! -f "$here/node_modules/vitest/vitest.mjs" ]; then
  (cd "$here" && npm ci --no-audit --no-fund >&2) || fail_setup "npm ci failed"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ -z "$url" ]; then
  [ -x "$bin" ] || fail_setup "server binary not found at $bin (build it first)"
  case "$mode" in
    full) cmd=("$bin" server --object-store "$store") ;;
    local) cmd=("$bin" local start --name conformance --port 0) ;;
    *) fail_setup "unknown mode $mode" ;;
  esac
  if [ "$tiny" = 1 ]; then
    export DS_SEGMENT_TARGET_ROWS=3 DS_SEGMENT_MAX_BYTES=200 DS_BLOCK_MAX_BYTES=40 \
      DS_SEGMENT_CHECK_MS=20 DS_UPLOAD_CHECK_MS=20 DS_SEGMENT_MAX_INTERVAL_MS=200 \
      DS_SEGMENT_CACHE_MAX_BYTES=4096
  fi
  mkfifo "$work/ready"
  DS_LOCAL_DATA_ROOT="$work/local" DS_ROOT="$work/data" PORT=0 DS_HOST=127.0.0.1 DS_LONG_POLL_TIMEOUT_MS=500 \
    "${cmd[@]}" >"$work/ready" 2>"$work/server.log" &
  server_pid=$!
  exec 3<"$work/ready"
  line=""
  read -r -t 30 line <&3 || fail_setup "server did not become ready; log: $(tail -5 "$work/server.log")"
  url="$(printf '%s' "$line" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).exports.http.url))')"
  [ -n "$url" ] || fail_setup "could not parse readiness line: $line"
fi

echo "conformance: suite $(node -p "require('$here/node_modules/@durable-streams/server-conformance-tests/package.json').version") against $url ($mode, store $store$([ "$tiny" = 1 ] && echo ', tiny segments'))" >&2
args=(run --config "$here/vitest.config.mjs" --no-color --reporter=dot --reporter=json --outputFile.json="$work/results.json")
[ -n "$filter" ] && args+=(-t "$filter")
(cd "$here" && CONFORMANCE_TEST_URL="$url" node node_modules/vitest/vitest.mjs "${args[@]}") >&2
node - "$work/results.json" <<'JS' || { echo "0 passed, 0 failed"; exit 2; }
const fs = require("fs")
const r = JSON.parse(fs.readFileSync(process.argv[2], "utf8"))
const tests = r.testResults.flatMap((f) => f.assertionResults)
for (const t of tests.filter((t) => t.status === "failed")) {
  console.log(`FAILED: ${[...t.ancestorTitles, t.title].join(" > ")}`)
}
console.log(`${r.numTotalTests} total, ${r.numPendingTests + r.numTodoTests} skipped`)
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed`)
process.exitCode = r.numFailedTests === 0 && r.numPassedTests > 0 ? 0 : 1
JS
