#!/usr/bin/env bash
# Keyed reads (routing keys). For each mode: starts a fresh server, fills one JSON stream
# with MESSAGES messages of MSG_BYTES bytes under KEYS routing keys (POSTs of BATCH
# messages that share one key; batch j gets key j mod KEYS, round-robin), waits until
# the entries are where the mode keeps them, restarts the server on the same data, and
# measures (load generator scenario `keyed-read`, see benches/load/keyed.rs): reads of
# one key from the start to the tail, cold (the page cache of the data directory dropped
# before each) and warm, over SAMPLE keys; reads of a key no entry has; whole-stream
# reads without a key; `_routing_keys` listings of every key. Every read is verified.
#
#   benches/keyed.sh [--modes full,full-store,local] [--messages N] [--keys K]
#                    [--batch B] [--msg-bytes S] [--sample-keys N] [--passes N]
#                    [--out DIR] [--no-pin]
#
# Modes: full (server --object-store local; read once every entry is in uploaded
# segments, which stay in the local segment cache), full-store (the same with
# DS_SEGMENT_CACHE_MAX_BYTES=0: no local copies, every block is a ranged read of the
# object store, here a local directory), local (local start: everything in SQLite).
# Defaults: all modes, 1,000,000 messages, 1,000 keys, batch 100, 100 bytes, 20 keys,
# 3 warm passes. Builds target/release/prisma-streams and the load generator first;
# servers bind 127.0.0.1 only and run under taskset -c 0, the load generator under
# taskset -c 1. Every process started here is stopped on exit. Results go to
# target/bench-results/keyed-<time>/ (results.jsonl, table.md, logs/).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

MODES="full full-store local"
MESSAGES=1000000
KEYS=1000
BATCH=100
MSG_BYTES=100
SAMPLE=20
PASSES=3
PIN=1
OUT=""

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --modes) MODES="${2//,/ }"; shift ;;
    --messages) MESSAGES="$2"; shift ;;
    --keys) KEYS="$2"; shift ;;
    --batch) BATCH="$2"; shift ;;
    --msg-bytes) MSG_BYTES="$2"; shift ;;
    --sample-keys) SAMPLE="$2"; shift ;;
    --passes) PASSES="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --no-pin) PIN=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "keyed.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for m in $MODES; do
  case "$m" in full|full-store|local) ;; *) echo "keyed.sh: unknown mode $m" >&2; exit 2 ;; esac
done

BENCH=keyed
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

# --- build ------------------------------------------------------------------------------
log "building prisma-streams (release) and the load generator"
if ! cargo build --release --locked --bin prisma-streams > "$OUT/logs/build.log" 2>&1; then
  echo "keyed.sh: cargo build --release failed:" >&2
  tail -20 "$OUT/logs/build.log" >&2
  exit 1
fi
if ! cargo bench --bench load --no-run --locked --message-format=json > "$OUT/logs/build-load.json" 2> "$OUT/logs/build-load.log"; then
  echo "keyed.sh: cannot build the load generator:" >&2
  tail -20 "$OUT/logs/build-load.log" >&2
  exit 1
fi
LOAD="$(grep '"executable":"[^"]*"' "$OUT/logs/build-load.json" | grep '"name":"load"' \
        | sed 's/.*"executable":"\([^"]*\)".*/\1/' | tail -1)"
[ -n "$LOAD" ] && [ -x "$LOAD" ] || { echo "keyed.sh: no load generator executable found" >&2; exit 1; }
OURS="$ROOT/target/release/prisma-streams"

# --- servers ----------------------------------------------------------------------------
SRV_PID=""; SRV_URL=""; SRV_DB=""

start_server() { # mode data-dir log-name -> SRV_PID, SRV_URL, SRV_DB
  local mode="$1" data="$2" out="$OUT/logs/$3.out" err="$OUT/logs/$3.err" i
  SRV_PID=""; SRV_URL=""; SRV_DB=""
  mkdir -p "$data"
  case "$mode" in
    full)
      DS_HOST=127.0.0.1 DS_ROOT="$data" PORT=0 $SERVER_CPU "$OURS" server --object-store local \
        > "$out" 2> "$err" < /dev/null &
      ;;
    full-store)
      DS_HOST=127.0.0.1 DS_ROOT="$data" PORT=0 DS_SEGMENT_CACHE_MAX_BYTES=0 $SERVER_CPU "$OURS" \
        server --object-store local > "$out" 2> "$err" < /dev/null &
      ;;
    local)
      DS_LOCAL_DATA_ROOT="$data" $SERVER_CPU "$OURS" local start --name "keyed-bench" \
        --port 0 --hostname 127.0.0.1 > "$out" 2> "$err" < /dev/null &
      ;;
  esac
  SRV_PID=$!   # taskset execs the server, so this is the server's own pid
  PIDS+=("$SRV_PID")
  for i in $(seq 1 300); do
    grep -q '"type":"ready"' "$out" 2>/dev/null && break
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  SRV_URL="$(grep -o '"url":"[^"]*"' "$out" 2>/dev/null | head -1 | sed 's/"url":"\(.*\)"/\1/')"
  SRV_DB="$(grep -o '"sqlite":{"path":"[^"]*"' "$out" 2>/dev/null | head -1 | sed 's/.*"path":"\(.*\)"/\1/')"
  if [ -z "$SRV_URL" ] || [ -z "$SRV_DB" ]; then
    echo "keyed.sh: $mode did not become ready: $(tail -3 "$err" 2>/dev/null | tr '\n' ' ')" >&2
    stop_pid "$SRV_PID"
    return 1
  fi
  case "$SRV_URL" in
    http://127.0.0.1:*) ;;
    *) echo "keyed.sh: $mode listens on $SRV_URL, not 127.0.0.1" >&2; stop_pid "$SRV_PID"; return 1 ;;
  esac
  return 0
}

run_load() { # scenario mode flags... ; appends the JSON line to results.jsonl
  local sc="$1" mode="$2" out="$WORK/load.out" rc
  shift 2
  # shellcheck disable=SC2086
  $CLIENT_CPU "$LOAD" "$sc" --url "$SRV_URL" --server-pid "$SRV_PID" --label "$mode" --json \
    --messages "$MESSAGES" --keys "$KEYS" --batch "$BATCH" --msg-bytes "$MSG_BYTES" "$@" \
    > "$out" 2>> "$OUT/logs/load.log"
  rc=$?
  grep '^{' "$out" >> "$RESULTS"
  return $rc
}

# --- machine ----------------------------------------------------------------------------
{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r), $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)')"
  echo "stream: $MESSAGES JSON messages of $MSG_BYTES bytes, $KEYS keys, $BATCH messages per POST (one key per POST, round-robin), 16 connections"
  echo "reads: $SAMPLE keys, cold (page cache dropped before each) then $PASSES warm passes; 5 reads of an absent key; whole stream 1 cold + $PASSES warm; 1 cold + 20 warm listings"
  echo "pinning: server ${SERVER_CPU:-none}, client ${CLIENT_CPU:-none}"
  echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/header.txt" >&2

# --- run --------------------------------------------------------------------------------
STREAM="keyed-$$"
FAILED=0
T0=$(date +%s)
for mode in $MODES; do
  data="$WORK/$mode"
  wait_flags=()
  [ "$mode" != local ] && wait_flags=(--wait-uploaded)
  if ! start_server "$mode" "$data" "$mode-fill"; then FAILED=1; continue; fi
  log "$mode: filling $STREAM (pid $SRV_PID, $SRV_URL)"
  if ! run_load keyed-fill "$mode" --stream "$STREAM" --concurrency 16 --duration 1800 \
        --settle-max 600 --db "$SRV_DB" "${wait_flags[@]}"; then
    log "$mode: fill failed: $(tail -1 "$OUT/logs/load.log")"
    FAILED=1; stop_pid "$SRV_PID"; rm -rf "$data"; continue
  fi
  stop_pid "$SRV_PID"
  if ! start_server "$mode" "$data" "$mode-read"; then FAILED=1; rm -rf "$data"; continue; fi
  log "$mode: reading (pid $SRV_PID, $SRV_URL)"
  objects=()
  [ "$mode" != local ] && objects=(--objects-dir "$data/objects")
  if ! run_load keyed-read "$mode" --stream "$STREAM" --sample-keys "$SAMPLE" \
        --read-passes "$PASSES" --evict-dir "$data" --db "$SRV_DB" "${objects[@]}"; then
    log "$mode: read failed: $(tail -1 "$OUT/logs/load.log")"
    FAILED=1
  fi
  stop_pid "$SRV_PID"
  du -sh "$data" > "$OUT/logs/$mode-du.txt" 2>&1
  rm -rf "$data"
done
log "runs took $(( $(date +%s) - T0 )) s"
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/header.txt"

{
  cat "$OUT/header.txt"
  echo
  "$LOAD" table --results "$RESULTS" --baseline full
} > "$OUT/table.md"
cat "$OUT/table.md"
echo
echo "results: $OUT" >&2
exit $FAILED
