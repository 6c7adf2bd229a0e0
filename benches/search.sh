#!/usr/bin/env bash
# Keyed reads, `_search` and `_aggregate` in full mode, this server beside the TypeScript
# original 0.1.11, in one run. For each server: start it fresh (full mode, local object
# store), fill one JSON stream with MESSAGES records spread over a day (KEYS routing keys,
# a keyword that 1 record in 10,000 has, a rollup by level), wait until its segments are
# uploaded and indexed (at most SETTLE seconds), then measure warm p50s of: reading every
# entry of one key, a `_search` for the rare keyword (100 hits, newest first), an
# `_aggregate` over the whole day in 1 h buckets, and a plain read of the whole stream
# (benches/search-driver.mjs; every answer is checked).
#
#   benches/search.sh [--servers ours,original] [--messages N] [--keys K] [--batch B]
#                     [--reps R] [--settle S] [--orig-dir DIR] [--out DIR] [--no-pin]
#
# ours: target/release/prisma-streams `server --object-store local` (built first).
# original: `@prisma/streams-server` 0.1.11 under Bun 1.4.5 with `--object-store local
# --no-auth` (its in-memory object store), installed with npm into --orig-dir (default
# target/search-orig). Defaults: 1,000,000 records, 1,000 keys, 100 per POST, 5 reps,
# 900 s. Servers run under taskset -c 0, the client under taskset -c 1; both bind
# 127.0.0.1; every process started here is stopped on exit. Results:
# target/bench-results/search-<time>/ (results.jsonl, logs/).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

SERVERS="ours original"
MESSAGES=1000000
KEYS=1000
BATCH=100
REPS=5
SETTLE=900
PIN=1
OUT=""
ORIG_DIR="$ROOT/target/search-orig"
ORIG_VERSION=0.1.11
BUN_VERSION=1.4.5

while [ $# -gt 0 ]; do
  case "$1" in
    --servers) SERVERS="${2//,/ }"; shift ;;
    --messages) MESSAGES="$2"; shift ;;
    --keys) KEYS="$2"; shift ;;
    --batch) BATCH="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --settle) SETTLE="$2"; shift ;;
    --orig-dir) ORIG_DIR="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --no-pin) PIN=0 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "search.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

BENCH=search
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

log "building prisma-streams (release)"
if ! cargo build --release --locked --bin prisma-streams > "$OUT/logs/build.log" 2>&1; then
  tail -20 "$OUT/logs/build.log" >&2
  exit 1
fi
OURS="$ROOT/target/release/prisma-streams"
BUN="$ORIG_DIR/node_modules/.bin/bun"
ORIG_BIN="$ORIG_DIR/node_modules/@prisma/streams-server/bin/prisma-streams-server"
case " $SERVERS " in
  *" original "*)
    if [ ! -x "$BUN" ] || [ ! -f "$ORIG_BIN" ]; then
      mkdir -p "$ORIG_DIR"
      [ -f "$ORIG_DIR/package.json" ] || echo '{"name":"orig-search","private":true,"type":"module"}' > "$ORIG_DIR/package.json"
      log "installing @prisma/streams-server@$ORIG_VERSION and bun@$BUN_VERSION into $ORIG_DIR"
      (cd "$ORIG_DIR" && npm install --no-audit --no-fund "@prisma/streams-server@$ORIG_VERSION" \
        "bun@$BUN_VERSION") > "$OUT/logs/npm.log" 2>&1 || { echo "search.sh: cannot install the original" >&2; exit 1; }
    fi
    ;;
esac

{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD)"
  echo "stream: $MESSAGES records, $KEYS keys, $BATCH per POST; $REPS warm reps; pinning: ${SERVER_CPU:-none} / ${CLIENT_CPU:-none}"
} | tee "$OUT/header.txt" >&2

for server in $SERVERS; do
  data="$WORK/$server"
  mkdir -p "$data"
  out="$OUT/logs/$server.out"
  err="$OUT/logs/$server.err"
  case "$server" in
    ours)
      DS_HOST=127.0.0.1 DS_ROOT="$data" PORT=0 $SERVER_CPU "$OURS" server --object-store local \
        > "$out" 2> "$err" < /dev/null &
      ;;
    original)
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      DS_HOST=127.0.0.1 DS_ROOT="$data" PORT="$port" $SERVER_CPU "$BUN" "$ORIG_BIN" \
        --object-store local --no-auth > "$out" 2> "$err" < /dev/null &
      ;;
    *) echo "search.sh: unknown server $server" >&2; exit 2 ;;
  esac
  pid=$!
  PIDS+=("$pid")
  url=""
  for _ in $(seq 1 300); do
    case "$server" in
      ours) url="$(grep -o '"url":"[^"]*"' "$out" 2>/dev/null | head -1 | sed 's/"url":"\(.*\)"/\1/')" ;;
      original) curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && url="http://127.0.0.1:$port" ;;
    esac
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "search.sh: $server did not start: $(tail -3 "$err")" >&2; stop_pid "$pid"; continue; }
  log "$server at $url: filling $MESSAGES records, then measuring"
  if $CLIENT_CPU node "$ROOT/benches/search-driver.mjs" "$url" "$server" "$MESSAGES" "$KEYS" \
      "$BATCH" "$REPS" "$SETTLE" > "$WORK/driver.out" 2>> "$OUT/logs/driver.err"; then
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    line="$(grep '^{' "$WORK/driver.out" | tail -1)"
    echo "${line%\}},\"peak_rss_kb\":${rss:-null}}" | tee -a "$RESULTS"
  else
    echo "search.sh: the $server run failed: $(tail -3 "$OUT/logs/driver.err")" >&2
  fi
  stop_pid "$pid"
done
log "results in $RESULTS"
