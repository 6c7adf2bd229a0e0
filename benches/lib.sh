# Shared by the benchmark scripts (sourced, not run). Before sourcing, set BENCH (the
# script's short name), ROOT, PIN (1 to pin) and optionally OUT. Afterwards:
#   OUT, RESULTS   the result folder (target/bench-results/<BENCH>-<time> by default)
#                  with logs/ and an empty results.jsonl
#   WORK           a scratch folder, removed on exit
#   SERVER_CPU, CLIENT_CPU   taskset prefixes (empty when not pinning)
#   PIDS           add every started process: each is stopped on exit (SIGTERM, then
#                  SIGKILL after STOP_WAIT_TENTHS tenths of a second, default 300)
#   log MSG        a timestamped line on stderr

OUT="${OUT:-$ROOT/target/bench-results/$BENCH-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT/logs"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ds-$BENCH.XXXXXX")"

SERVER_CPU=""; CLIENT_CPU=""
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_CPU="taskset -c 0"; CLIENT_CPU="taskset -c 1"
else
  echo "$BENCH.sh: not pinning (needs taskset and 2 cores, or --no-pin given)" >&2
fi

PIDS=()
stop_pid() {
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 "${STOP_WAIT_TENTHS:-300}"); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$BENCH.sh: pid $pid did not stop on SIGTERM; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s %s] %s\n' "$BENCH" "$(date +%H:%M:%S)" "$*" >&2; }
