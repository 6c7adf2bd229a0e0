#!/usr/bin/env bash
# Live-query touch, this server beside the TypeScript original 0.1.11. For each server:
# starts it on fresh data, then runs the load generator scenario `touch` (see
# benches/load/touch.rs): WAITERS waiters each long-poll `touch/wait` on the watch key of
# their own row (template `public.todos WHERE id = ?`) with timeoutMs WAIT_MS, re-issuing
# each wait with the returned cursor, while a writer appends one State Protocol update
# per POST at RATE changes/s for DURATION seconds, round-robin over the rows. Reports
# wake latency (change sent → its waiter's answer) p50/p90/p99/max, touched / timed-out
# / spurious wakes, misses, and the serving process's CPU per change. Then, on a fresh
# server, `touch-plain`: the same writer on a stream without touch and without waiters,
# the CPU an append costs anyway.
#
#   benches/touch.sh [--servers local,full,original] [--waiters N] [--rate R]
#                    [--duration S] [--wait-ms MS] [--orig-dir DIR] [--out DIR] [--no-pin]
#
# Servers: local (`prisma-streams local start`), full (`prisma-streams server
# --object-store local`), original (`@prisma/streams-local` 0.1.11
# `startLocalDurableStreamsServer` under Bun 1.4.5; the CPU measured is the Bun
# process's, every thread). Defaults: all three, 1,000 waiters, 200 changes/s, 30 s,
# timeoutMs 4000 (the original answers any request after 5 s with 408, so longer waits
# would not be comparable; the same value is used for every server). The original and
# Bun are installed with npm into --orig-dir (default $CARGO_TARGET_DIR/touch-orig, or
# target/touch-orig; an existing install of the right versions is reused, e.g. the one
# tests/diff/run.mjs made). Builds the release server and the load generator first;
# servers bind 127.0.0.1 only and run under taskset -c 0, the load generator under
# taskset -c 1. Every process started here is stopped on exit. Results go to
# target/bench-results/touch-<time>/ (results.jsonl, table.md, logs/).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

SERVERS="local full original"
WAITERS=1000
RATE=200
DURATION=30
WAIT_MS=4000
ORIG_DIR="$TARGET/touch-orig"
ORIG_VERSION=0.1.11
BUN_VERSION=1.4.5
PIN=1
OUT=""

usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --servers) SERVERS="${2//,/ }"; shift ;;
    --waiters) WAITERS="$2"; shift ;;
    --rate) RATE="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --wait-ms) WAIT_MS="$2"; shift ;;
    --orig-dir) ORIG_DIR="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --no-pin) PIN=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "touch.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for s in $SERVERS; do
  case "$s" in local|full|original) ;; *) echo "touch.sh: unknown server $s" >&2; exit 2 ;; esac
done

BENCH=touch
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

# --- build ------------------------------------------------------------------------------
log "building prisma-streams (release) and the load generator"
if ! cargo build --release --locked --bin prisma-streams > "$OUT/logs/build.log" 2>&1; then
  echo "touch.sh: cargo build --release failed:" >&2
  tail -20 "$OUT/logs/build.log" >&2
  exit 1
fi
if ! cargo bench --bench load --no-run --locked --message-format=json > "$OUT/logs/build-load.json" 2> "$OUT/logs/build-load.log"; then
  echo "touch.sh: cannot build the load generator:" >&2
  tail -20 "$OUT/logs/build-load.log" >&2
  exit 1
fi
LOAD="$(grep '"executable":"[^"]*"' "$OUT/logs/build-load.json" | grep '"name":"load"' \
        | sed 's/.*"executable":"\([^"]*\)".*/\1/' | tail -1)"
[ -n "$LOAD" ] && [ -x "$LOAD" ] || { echo "touch.sh: no load generator executable found" >&2; exit 1; }
OURS="$TARGET/release/prisma-streams"
[ -x "$OURS" ] || { echo "touch.sh: no $OURS" >&2; exit 1; }

# --- the original -----------------------------------------------------------------------
BUN="$ORIG_DIR/node_modules/.bin/bun"
install_original() {
  local marker="$ORIG_DIR/node_modules/@prisma/streams-local/package.json"
  if [ -f "$marker" ] && grep -q "\"version\": *\"$ORIG_VERSION\"" "$marker" && [ -x "$BUN" ] \
     && [ "$("$BUN" --version 2>/dev/null)" = "$BUN_VERSION" ]; then
    return 0
  fi
  command -v npm >/dev/null || { echo "touch.sh: npm is needed to install the original" >&2; return 1; }
  mkdir -p "$ORIG_DIR"
  [ -f "$ORIG_DIR/package.json" ] || echo '{"name":"orig-streams","private":true,"type":"module"}' > "$ORIG_DIR/package.json"
  log "installing @prisma/streams-local@$ORIG_VERSION and bun@$BUN_VERSION into $ORIG_DIR"
  (cd "$ORIG_DIR" && npm install --no-audit --no-fund --loglevel=error --prefer-offline \
      "@prisma/streams-local@$ORIG_VERSION" "bun@$BUN_VERSION") > "$OUT/logs/npm.log" 2>&1 \
    || { echo "touch.sh: npm install failed:" >&2; tail -20 "$OUT/logs/npm.log" >&2; return 1; }
}
case " $SERVERS " in
  *" original "*)
    if ! install_original; then
      echo "touch.sh: the original is not available; running the others" >&2
      SERVERS="${SERVERS//original/}"
    fi ;;
esac
# The runner has to live beside node_modules for the import to resolve. It stops on
# SIGTERM (stdin is /dev/null here, so it does not watch stdin as tests/diff does).
RUNNER="$ORIG_DIR/touch-bench-runner.mjs"
if [ -d "$ORIG_DIR/node_modules" ]; then
  cat > "$RUNNER" <<'EOF'
import { startLocalDurableStreamsServer } from "@prisma/streams-local";
const server = await startLocalDurableStreamsServer({ name: process.argv[2], hostname: "127.0.0.1", port: 0 });
console.log(JSON.stringify({ type: "ready", url: server.exports.http.url }));
let closing = false;
const stop = async () => { if (closing) return; closing = true; await server.close(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
EOF
fi

# --- servers ----------------------------------------------------------------------------
SRV_PID=""; SRV_URL=""

start_server() { # server data-dir -> SRV_PID, SRV_URL
  local srv="$1" data="$2" out="$OUT/logs/$1.out" err="$OUT/logs/$1.err" i
  SRV_PID=""; SRV_URL=""
  mkdir -p "$data"
  case "$srv" in
    full)
      DS_HOST=127.0.0.1 DS_ROOT="$data" PORT=0 $SERVER_CPU "$OURS" server --object-store local \
        > "$out" 2> "$err" < /dev/null &
      ;;
    local)
      DS_LOCAL_DATA_ROOT="$data" $SERVER_CPU "$OURS" local start --name "touch-bench" \
        --port 0 --hostname 127.0.0.1 > "$out" 2> "$err" < /dev/null &
      ;;
    original)
      (cd "$ORIG_DIR" && DS_LOCAL_DATA_ROOT="$data" exec $SERVER_CPU "$BUN" "$RUNNER" "touch-bench") \
        > "$out" 2> "$err" < /dev/null &
      ;;
  esac
  SRV_PID=$!   # taskset and the subshell exec, so this is the serving process's own pid
  PIDS+=("$SRV_PID")
  for i in $(seq 1 300); do
    grep -q '"type":"ready"' "$out" 2>/dev/null && break
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  SRV_URL="$(grep -o '"url":"http://[^"]*"' "$out" 2>/dev/null | head -1 | sed 's/"url":"\(.*\)"/\1/')"
  if [ -z "$SRV_URL" ]; then
    echo "touch.sh: $srv did not become ready: $(tail -3 "$err" 2>/dev/null | tr '\n' ' ')" >&2
    stop_pid "$SRV_PID"
    return 1
  fi
  case "$SRV_URL" in
    http://127.0.0.1:*) ;;
    *) echo "touch.sh: $srv listens on $SRV_URL, not 127.0.0.1" >&2; stop_pid "$SRV_PID"; return 1 ;;
  esac
  return 0
}

# --- machine ----------------------------------------------------------------------------
{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r), $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)')"
  echo "original: @prisma/streams-local $ORIG_VERSION under Bun $( [ -x "$BUN" ] && "$BUN" --version 2>/dev/null)"
  echo "touch: $WAITERS waiters (one row and watch key each), $RATE changes/s for $DURATION s, wait timeoutMs $WAIT_MS"
  echo "pinning: server ${SERVER_CPU:-none}, client ${CLIENT_CPU:-none}"
  echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/header.txt" >&2

# --- run --------------------------------------------------------------------------------
FAILED=0
T0=$(date +%s)
for srv in $SERVERS; do
  for sc in touch touch-plain; do
    data="$WORK/$srv"
    if ! start_server "$srv" "$data"; then
      echo "{\"label\":\"$srv\",\"scenario\":\"$sc\",\"ok\":false,\"error\":\"did not start\"}" >> "$RESULTS"
      FAILED=1; continue
    fi
    log "$srv: running $sc (pid $SRV_PID, $SRV_URL)"
    # shellcheck disable=SC2086
    $CLIENT_CPU "$LOAD" "$sc" --url "$SRV_URL" --server-pid "$SRV_PID" --label "$srv" --json \
      --waiters "$WAITERS" --rate "$RATE" --duration "$DURATION" --wait-timeout-ms "$WAIT_MS" \
      > "$WORK/load.out" 2>> "$OUT/logs/load.log"
    rc=$?
    grep '^{' "$WORK/load.out" >> "$RESULTS"
    [ $rc -ne 0 ] && { log "$srv: $sc failed: $(grep 'error:' "$OUT/logs/load.log" | tail -1)"; FAILED=1; }
    # Child processes would escape the CPU figure; say so if the server has any.
    kids="$(ps -o pid=,comm= --ppid "$SRV_PID" 2>/dev/null | tr '\n' ' ')"
    [ -n "$kids" ] && echo "$srv: child processes of $SRV_PID: $kids" >> "$OUT/header.txt"
    stop_pid "$SRV_PID"
    rm -rf "$data"
  done
done
log "runs took $(( $(date +%s) - T0 )) s"
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/header.txt"

{
  cat "$OUT/header.txt"
  echo
  "$LOAD" table --results "$RESULTS" --baseline original
} > "$OUT/table.md"
cat "$OUT/table.md"
echo
echo "results: $OUT" >&2
exit $FAILED
