#!/usr/bin/env bash
# Scale figures (issue 17): this server in full mode (local object store, default knobs,
# release binary), a fresh server and data directory per part, the server pinned to
# core 0 and the load generator (benches/load, `scale-*` scenarios) to core 1.
#
#   benches/scale.sh [--parts streams-empty,streams,catchup,ingest] [--small]
#                    [--streams N] [--idle-secs S]                    # parts streams*
#                    [--messages N] [--batch N]                       # part catchup
#                    [--rate-mb R] [--ingest-secs S] [--writers N] [--body-bytes B]
#                    [--ingest-msg-bytes N]                           # part ingest
#                    [--pad x|random] [--min-free-gb G] [--settle-max S]
#                    [--bin PATH] [--load PATH] [--out DIR] [--no-pin]
#
# Parts: streams-empty creates empty streams (nothing to seal: idle at once); streams
# gives each a 150-byte message, so every stream is sealed into a segment, uploaded and
# its manifest published before the server is idle (bounded by --settle-max, default
# 7200 s; when it runs out, the sealing and upload rates are reported instead).
# Defaults (the issue's sizes): 1,000,000 streams and a 20 s idle window; a 10,000,000
# message catch-up in POSTs of 1,000; 100 MB/s for 600 s from 4 writers with 512 KiB
# bodies; 150-byte messages (--ingest-msg-bytes for the ingest part); stop when under
# 5 GB is free. --small: 10,000 streams, 200,000 messages, 30 s at 20 MB/s (to check the
# script; other flags still win). Each part's data directory is removed when it ends;
# results.jsonl, table.md, the traces (*.csv) and the logs go to
# target/bench-results/scale-<time>/.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

PARTS="streams-empty streams catchup ingest"
BIN=""
LOAD=""
PIN=1
OUT=""
STREAMS=1000000
IDLE=20
MESSAGES=10000000
BATCH=1000
RATE=100
INGEST_SECS=600
WRITERS=4
BODY=524288
INGEST_MSG=150
PAD=x
MIN_FREE=5
SETTLE=""

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

for a in "$@"; do
  if [ "$a" = --small ]; then
    STREAMS=10000; MESSAGES=200000; RATE=20; INGEST_SECS=30
  fi
done
while [ $# -gt 0 ]; do
  case "$1" in
    --parts) PARTS="${2//,/ }"; shift ;;
    --small) ;;
    --streams) STREAMS="$2"; shift ;;
    --idle-secs) IDLE="$2"; shift ;;
    --messages) MESSAGES="$2"; shift ;;
    --batch) BATCH="$2"; shift ;;
    --rate-mb) RATE="$2"; shift ;;
    --ingest-secs) INGEST_SECS="$2"; shift ;;
    --writers) WRITERS="$2"; shift ;;
    --body-bytes) BODY="$2"; shift ;;
    --ingest-msg-bytes) INGEST_MSG="$2"; shift ;;
    --pad) PAD="$2"; shift ;;
    --min-free-gb) MIN_FREE="$2"; shift ;;
    --settle-max) SETTLE="$2"; shift ;;
    --bin) BIN="$2"; shift ;;
    --load) LOAD="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --no-pin) PIN=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "scale.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for p in $PARTS; do
  case "$p" in streams-empty|streams|catchup|ingest) ;; *) echo "scale.sh: unknown part $p" >&2; exit 2 ;; esac
done

BENCH=scale
STOP_WAIT_TENTHS=600
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

# --- build ------------------------------------------------------------------------------
if [ -z "$BIN" ]; then
  log "building prisma-streams (release)"
  if ! cargo build --release --locked --bin prisma-streams > "$OUT/logs/build.log" 2>&1; then
    echo "scale.sh: cargo build --release failed:" >&2; tail -20 "$OUT/logs/build.log" >&2; exit 1
  fi
  BIN="$ROOT/target/release/prisma-streams"
fi
if [ -z "$LOAD" ]; then
  log "building the load generator"
  if ! cargo bench --bench load --no-run --locked --message-format=json > "$OUT/logs/build-load.json" 2> "$OUT/logs/build-load.log"; then
    echo "scale.sh: cannot build the load generator:" >&2; tail -20 "$OUT/logs/build-load.log" >&2; exit 1
  fi
  LOAD="$(grep '"executable":"[^"]*"' "$OUT/logs/build-load.json" | grep '"name":"load"' \
          | sed 's/.*"executable":"\([^"]*\)".*/\1/' | tail -1)"
fi
[ -x "$BIN" ] || { echo "scale.sh: no server binary at $BIN" >&2; exit 1; }
[ -n "$LOAD" ] && [ -x "$LOAD" ] || { echo "scale.sh: no load generator" >&2; exit 1; }

free_gb() { df -P -B1 "$WORK" | awk 'NR==2 { printf "%.1f", $4 / 1e9 }'; }

# --- machine ----------------------------------------------------------------------------
{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)')"
  echo "server: $BIN server --object-store local (full mode, default knobs); data under $WORK ($(df -P "$WORK" | awk 'NR==2 { print $1 }'), $(free_gb) GB free)"
  echo "pinning: server ${SERVER_CPU:-none}, client ${CLIENT_CPU:-none}"
  echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) (anything well above 0 means the machine was shared)"
} | tee "$OUT/header.txt" >&2

# --- one part ---------------------------------------------------------------------------
SRV_PID=""; SRV_URL=""
start_server() { # data-dir log-name
  SRV_PID=""; SRV_URL=""
  mkdir -p "$1"
  DS_ROOT="$1" PORT=0 $SERVER_CPU "$BIN" server --object-store local \
    > "$OUT/logs/$2.out" 2> "$OUT/logs/$2.err" < /dev/null &
  SRV_PID=$!   # taskset execs the server, so this is the server's own pid
  PIDS+=("$SRV_PID")
  local i
  for i in $(seq 1 300); do
    grep -q '"type":"ready"' "$OUT/logs/$2.out" 2>/dev/null && break
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  SRV_URL="$(grep -o '"url":"[^"]*"' "$OUT/logs/$2.out" 2>/dev/null | head -1 | sed 's/"url":"\(.*\)"/\1/')"
  [ -n "$SRV_URL" ]
}

run_part() { # part scenario flags...
  local part="$1" sc="$2"; shift 2
  local data="$WORK/$part"
  log "$part: free before: $(free_gb) GB; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if ! start_server "$data" "$part"; then
    log "$part: the server did not become ready: $(tail -3 "$OUT/logs/$part.err" | tr '\n' ' ')"
    stop_pid "$SRV_PID"
    return 1
  fi
  log "$part: server pid $SRV_PID at $SRV_URL; $LOAD $sc $*"
  $CLIENT_CPU "$LOAD" "$sc" --url "$SRV_URL" --server-pid "$SRV_PID" --label ours-full --json \
    --data-dir "$data" --min-free-gb "$MIN_FREE" --pad "$PAD" "$@" \
    > "$WORK/load.out" 2> >(tee "$OUT/logs/$part.load.log" >&2)
  local rc=$?
  grep '^{' "$WORK/load.out" >> "$RESULTS"
  {
    echo "$part: load generator exit code $rc; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "$part: data directory $(du -sh "$data" 2>/dev/null | cut -f1) ($(find "$data" -type f 2>/dev/null | wc -l) files; $(du -sh "$data"/* 2>/dev/null | awk '{ printf "%s %s, ", $2, $1 }' | sed "s|$data/||g; s/, $//")), $(free_gb) GB free at the end"
  } | tee -a "$OUT/header.txt" >&2
  kill -0 "$SRV_PID" 2>/dev/null || log "$part: the server exited during the run (see logs/$part.err)"
  stop_pid "$SRV_PID"
  rm -rf "$data"
  return $rc
}

STATUS=0
for p in $PARTS; do
  case "$p" in
    streams-empty)
      run_part streams-empty scale-streams --streams "$STREAMS" --concurrency 16 --msg-bytes 0 \
        --duration "$IDLE" --settle-max "${SETTLE:-600}" || STATUS=1 ;;
    streams)
      run_part streams scale-streams --streams "$STREAMS" --concurrency 16 --msg-bytes 150 \
        --duration "$IDLE" --settle-max "${SETTLE:-7200}" || STATUS=1 ;;
    catchup)
      run_part catchup scale-catchup --messages "$MESSAGES" --batch "$BATCH" --msg-bytes 150 \
        --duration 3600 --wait-uploaded --settle-max "${SETTLE:-1800}" --sample-secs 0.2 \
        --trace "$OUT/catchup-rss.csv" || STATUS=1 ;;
    ingest)
      run_part ingest scale-ingest --rate-mb "$RATE" --duration "$INGEST_SECS" \
        --concurrency "$WRITERS" --body-bytes "$BODY" --msg-bytes "$INGEST_MSG" --sample-secs 5 \
        --settle-max "${SETTLE:-600}" --trace "$OUT/ingest-samples.csv" || STATUS=1 ;;
  esac
done
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/header.txt"

{
  cat "$OUT/header.txt"
  echo
  "$LOAD" table --results "$RESULTS"
  echo
  for p in $PARTS; do
    grep -E '^(==|   )' "$OUT/logs/$p.load.log" 2>/dev/null
  done
} > "$OUT/table.md"
cat "$OUT/table.md"
echo "results: $OUT" >&2
exit $STATUS
