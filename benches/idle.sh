#!/usr/bin/env bash
# Idle cost: starts a server in full mode (local object store, default knobs), creates
# STREAMS streams with one small message each, waits until they are sealed, uploaded and
# published, then measures the server's CPU over DURATION seconds of silence (the load
# generator's `idle` scenario). Prints the scenario's report.
#
#   benches/idle.sh [--bin PATH] [--load PATH] [--streams N] [--duration S]
#
# Defaults: the release binary (built if missing: `cargo build --release`), the load
# generator built by `cargo build --bench load`, 30000 streams, 20 s.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/prisma-streams"
LOAD=""
STREAMS=30000
DURATION=20
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN="$2"; shift ;;
    --load) LOAD="$2"; shift ;;
    --streams) STREAMS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    *) echo "idle.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --locked --bin prisma-streams)
fi
if [ -z "$LOAD" ]; then
  LOAD="$(cd "$ROOT" && cargo build --bench load --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*load-[^"]*"' | tail -1 | sed 's/"executable":"\(.*\)"/\1/')"
fi
[ -x "$LOAD" ] || { echo "idle.sh: no load generator" >&2; exit 1; }

WORK="$(mktemp -d)"
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

DS_ROOT="$WORK/data" PORT=0 "$BIN" server --object-store local \
  > "$WORK/out" 2> "$WORK/err" < /dev/null &
PID=$!
for _ in $(seq 1 200); do
  grep -q '"type":"ready"' "$WORK/out" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/err" >&2; exit 1; }
  sleep 0.1
done
URL="$(grep -o '"url":"[^"]*"' "$WORK/out" | head -1 | sed 's/"url":"\(.*\)"/\1/')"
[ -n "$URL" ] || { echo "idle.sh: server not ready" >&2; cat "$WORK/err" >&2; exit 1; }
echo "server $BIN (pid $PID) at $URL; $STREAMS streams, ${DURATION}s idle window" >&2
"$LOAD" idle --url "$URL" --server-pid "$PID" --streams "$STREAMS" \
  --duration "$DURATION" --concurrency 16 --msg-bytes 150
