#!/usr/bin/env bash
# Local-mode disk use: what a `prisma dev` streams server writes while idle, and how its
# files grow with changes, with and without retention. For each configuration it starts
# `prisma-streams local start` (release binary) on a fresh data root, then
#   1. measures the bytes the process writes (write syscalls: /proc/PID/io wchar; and
#      bytes sent to storage: write_bytes) over WINDOW seconds of silence;
#   2. appends CHANGES State Protocol records (one change per POST, 16 at a time, as
#      @prisma/dev forwards Postgres changes) to prisma-wal;
#   3. after 5 s of settling, measures WINDOW seconds of silence again, and the files.
# Prints one JSON line per configuration and writes them to the result folder.
#
#   benches/local_disk.sh [--bin PATH] [--changes N] [--window S]
#
# Defaults: target/release/prisma-streams (built if missing), 100000 changes, 60 s.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/prisma-streams"
CHANGES=100000
WINDOW=60
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN="$2"; shift ;;
    --changes) CHANGES="$2"; shift ;;
    --window) WINDOW="$2"; shift ;;
    *) echo "local_disk.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
BENCH=local_disk PIN=0
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --locked --bin prisma-streams)
fi

# io FIELD PID: one field of /proc/PID/io.
io() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$2/io"; }
# files DIR: bytes of every file under DIR.
files() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

# snapshot DIR: every file with its size and modification time.
snapshot() { find "$1" -type f -printf '%p %s %T@\n' | sort; }

# idle PID DIR: "wchar write_bytes files_changed bytes_grown" over WINDOW seconds.
# wchar counts every write syscall (also the 8-byte eventfd wake-ups of the async runtime
# and pipes, which are not disk); the files' sizes and times say what reached the disk.
idle() {
  local w0 b0 s0 s1 grown changed
  w0=$(io wchar "$1"); b0=$(io write_bytes "$1"); s0=$(snapshot "$2")
  sleep "$WINDOW"
  s1=$(snapshot "$2")
  changed=$(diff <(echo "$s0") <(echo "$s1") | grep -c '^>' || true)
  grown=$(( $(echo "$s1" | awk '{ s += $2 } END { print s + 0 }') - $(echo "$s0" | awk '{ s += $2 } END { print s + 0 }') ))
  echo "$(( $(io wchar "$1") - w0 )) $(( $(io write_bytes "$1") - b0 )) $changed $grown"
}

run() {
  local label="$1"; shift
  local root="$WORK/$label" out="$WORK/$label.out"
  mkdir -p "$root"
  env DS_LOCAL_DATA_ROOT="$root" DS_LOG=warn "$@" "$BIN" local start --name bench --port 0 \
    > "$out" 2> "$OUT/logs/$label.err" < /dev/null &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do grep -q '"type":"ready"' "$out" 2>/dev/null && break; sleep 0.1; done
  local url
  url="$(grep -o '"url":"[^"]*"' "$out" | head -1 | sed 's/"url":"\(.*\)"/\1/')"
  [ -n "$url" ] || { echo "local_disk.sh: server not ready" >&2; exit 1; }
  # What @prisma/dev does at start: the stream and its profile.
  curl -sf -X PUT "$url/v1/stream/prisma-wal" -H 'content-type: application/json' >/dev/null
  curl -sf -X POST "$url/v1/stream/prisma-wal/_profile" -H 'content-type: application/json' \
    -d '{"apiVersion":"durable.streams/profile/v1","profile":{"kind":"state-protocol","touch":{"enabled":true,"onMissingBefore":"coarse"}}}' >/dev/null
  log "$label: idle ${WINDOW}s after start"
  local fresh; fresh=$(idle "$pid" "$root")
  log "$label: $CHANGES changes"
  local t0 t1
  t0=$(date +%s.%N)
  node - "$url/v1/stream/prisma-wal" "$CHANGES" <<'JS'
const [url, total] = [process.argv[2], Number(process.argv[3])];
let next = 0;
async function worker() {
  for (;;) {
    const i = next++;
    if (i >= total) return;
    const rec = [{ type: "public.todos", key: String(i % 5000), value: { id: i % 5000, title: `todo ${i}`, done: i % 2 === 0 },
      old_value: null, headers: { operation: "update", timestamp: new Date().toISOString() } }];
    const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(rec) });
    if (r.status !== 204) throw new Error(`append answered ${r.status}`);
  }
}
await Promise.all(Array.from({ length: 16 }, worker));
JS
  t1=$(date +%s.%N)
  sleep 5
  local after_bytes; after_bytes=$(files "$root")
  log "$label: idle ${WINDOW}s after the changes"
  local after; after=$(idle "$pid" "$root")
  local line
  local f a
  read -r -a f <<< "$fresh"
  read -r -a a <<< "$after"
  line=$(printf '{"config":"%s","window_s":%s,"changes":%s,"append_s":%.1f,"idle_fresh":{"wchar":%s,"write_bytes":%s,"files_changed":%s,"bytes_grown":%s},"files_after_changes":%s,"idle_after":{"wchar":%s,"write_bytes":%s,"files_changed":%s,"bytes_grown":%s}}' \
    "$label" "$WINDOW" "$CHANGES" "$(echo "$t1 - $t0" | bc)" "${f[@]}" "$after_bytes" "${a[@]}")
  echo "$line" | tee -a "$RESULTS"
  stop_pid "$pid"
}

run default
run retention DS_RETENTION_MAX_BYTES=1048576 DS_RETENTION_CHECK_MS=1000
log "results in $RESULTS"
