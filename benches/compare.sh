#!/usr/bin/env bash
# Runs every load scenario (benches/load) against this server and its peers and prints a
# side-by-side markdown table with ratios against ours (full mode).
#
#   benches/compare.sh [--quick] [--servers a,b] [--scenarios x,y] [--messages N]
#                      [--duration S] [--rounds N] [--out DIR] [--no-pin] [--bin PATH]
#                      [--load PATH]
#
# Servers: ours-full ours-local node-mem node-file electric-wal (default: all).
# Scenarios: append-own append-shared catchup latency fanout many (default: all; `ping`
# may be added). Each (server, scenario) pair gets a freshly started server with an
# empty data directory, pinned to core 0 (taskset -c 0); the load generator runs on
# core 1. Peers are installed on first use under target/bench-peers/. A peer that fails
# to install or start is reported in the table, never dropped. Results go to
# target/bench-results/compare-<time>/ (results.jsonl, table.md, logs/). --bin runs that
# prisma-streams binary as ours-full/ours-local instead of building target/release's;
# --load runs that load generator instead of building it (it links the library, so a
# source change would rebuild it on every run). Scenarios run one after another, each
# against every server in turn, so the runs a ratio compares are minutes apart at most.
# --rounds N repeats that N times, the servers' order reversed every other round; each
# cell is then the median of its N runs, with the range of its per-round ratios.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

ALL_SERVERS="ours-full ours-local node-mem node-file electric-wal"
ALL_SCENARIOS="append-own append-shared catchup latency fanout many"
SERVERS="$ALL_SERVERS"
SCENARIOS="$ALL_SCENARIOS"
QUICK=0
PIN=1
MESSAGES=""
DUR=""
OUT=""
BIN=""
LOADBIN=""
ROUNDS=1
NODE_PEER_VERSION="0.3.7"
ELECTRIC_VERSION="0.1.5"
PEERS="$ROOT/target/bench-peers"

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --servers) SERVERS="${2//,/ }"; shift ;;
    --scenarios) SCENARIOS="${2//,/ }"; shift ;;
    --messages) MESSAGES="$2"; shift ;;
    --duration) DUR="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --no-pin) PIN=0 ;;
    --bin) BIN="$2"; shift ;;
    --load) LOADBIN="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

case "$ROUNDS" in
  ''|*[!0-9]*|0*) echo "compare.sh: --rounds needs a whole number of at least 1, not '$ROUNDS'" >&2; exit 2 ;;
esac
for s in $SERVERS; do
  case " $ALL_SERVERS " in *" $s "*) ;; *) echo "compare.sh: unknown server $s" >&2; exit 2 ;; esac
done

if [ "$QUICK" = 1 ]; then
  DUR="${DUR:-3}"; LONG=30; MESSAGES="${MESSAGES:-20000}"; STREAMS=2000
else
  DUR="${DUR:-10}"; LONG=60; MESSAGES="${MESSAGES:-100000}"; STREAMS=10000
fi
[ "$MESSAGES" -ge 500000 ] && LONG=300

BENCH=compare
STOP_WAIT_TENTHS=100
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

json_str() { # a JSON string literal of $1 (one line)
  printf '"%s"' "$(printf '%s' "$1" | tr '\n\t\r' '   ' | sed 's/\\/\\\\/g; s/"/\\"/g')"
}
fail_line() { # label scenario error [round]
  printf '{%s"label":%s,"scenario":%s,"ok":false,"error":%s,"metrics":[]}\n' \
    "${4:+\"round\":$4,}" "$(json_str "$1")" "$(json_str "$2")" "$(json_str "$3")" >> "$RESULTS"
}

# --- build ------------------------------------------------------------------------------
declare -A BROKEN  # server -> why it cannot run

log "building prisma-streams (release) and the load generator"
if [ -n "$BIN" ]; then
  [ -x "$BIN" ] || { echo "compare.sh: --bin $BIN is not an executable" >&2; exit 2; }
elif ! cargo build --release --locked --bin prisma-streams > "$OUT/logs/build.log" 2>&1; then
  for s in ours-full ours-local; do BROKEN[$s]="cargo build --release failed (see logs/build.log)"; done
fi
if [ -n "$LOADBIN" ]; then
  LOAD="$LOADBIN"
elif ! cargo bench --bench load --no-run --locked --message-format=json > "$OUT/logs/build-load.json" 2> "$OUT/logs/build-load.log"; then
  echo "compare.sh: cannot build the load generator:" >&2
  tail -20 "$OUT/logs/build-load.log" >&2
  exit 1
else
  LOAD="$(grep '"executable":"[^"]*"' "$OUT/logs/build-load.json" | grep '"name":"load"' \
          | sed 's/.*"executable":"\([^"]*\)".*/\1/' | tail -1)"
fi
if [ -z "$LOAD" ] || [ ! -x "$LOAD" ]; then
  echo "compare.sh: no load generator executable found" >&2
  exit 1
fi
OURS="${BIN:-$ROOT/target/release/prisma-streams}"

# --- peers ------------------------------------------------------------------------------
wants() { case " $SERVERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if wants node-mem || wants node-file; then
  NODE_DIR="$PEERS/node"
  have="$(node -p "require('$NODE_DIR/node_modules/@durable-streams/server/package.json').version" 2>/dev/null || true)"
  if ! command -v node >/dev/null; then
    why="node is not installed"
  elif [ "$have" != "$NODE_PEER_VERSION" ]; then
    log "installing @durable-streams/server@$NODE_PEER_VERSION into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    [ -f "$NODE_DIR/package.json" ] || echo '{"private":true}' > "$NODE_DIR/package.json"
    if (cd "$NODE_DIR" && npm install --no-audit --no-fund --save-exact \
          "@durable-streams/server@$NODE_PEER_VERSION") > "$OUT/logs/install-node.log" 2>&1; then
      why=""
    else
      why="npm install @durable-streams/server@$NODE_PEER_VERSION failed (see logs/install-node.log)"
    fi
  else
    why=""
  fi
  if [ -n "$why" ]; then BROKEN[node-mem]="$why"; BROKEN[node-file]="$why"; fi
fi

if wants electric-wal; then
  EBIN="$PEERS/electric/bin/durable-streams-server"
  if [ ! -x "$EBIN" ]; then
    log "installing durable-streams $ELECTRIC_VERSION (cargo install; takes a few minutes)"
    if ! cargo install durable-streams --version "$ELECTRIC_VERSION" --locked \
          --root "$PEERS/electric" > "$OUT/logs/install-electric.log" 2>&1; then
      BROKEN[electric-wal]="cargo install durable-streams --version $ELECTRIC_VERSION failed (see logs/install-electric.log)"
    fi
  fi
fi

# --- servers ----------------------------------------------------------------------------
SRV_PID=""; SRV_URL=""; SRV_ERR=""

# wait_line FILE PATTERN PID: waits (20 s) until FILE has a line matching PATTERN.
wait_line() {
  local i
  for i in $(seq 1 200); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

start_server() { # name run-id -> SRV_PID, SRV_URL or SRV_ERR
  local name="$1" id="$2" data="$WORK/$1-$2" out="$OUT/logs/$1-$2.out" err="$OUT/logs/$1-$2.err"
  SRV_PID=""; SRV_URL=""; SRV_ERR=""
  mkdir -p "$data"
  case "$name" in
    ours-full)
      DS_ROOT="$data" PORT=0 $SERVER_CPU "$OURS" server --object-store local > "$out" 2> "$err" < /dev/null &
      ;;
    ours-local)
      DS_LOCAL_DATA_ROOT="$data" $SERVER_CPU "$OURS" local start --name "bench-$$" --port 0 > "$out" 2> "$err" < /dev/null &
      ;;
    node-mem)
      $SERVER_CPU node "$ROOT/benches/node-peer.mjs" --modules "$PEERS/node" --port 0 > "$out" 2> "$err" < /dev/null &
      ;;
    node-file)
      $SERVER_CPU node "$ROOT/benches/node-peer.mjs" --modules "$PEERS/node" --port 0 --data-dir "$data" > "$out" 2> "$err" < /dev/null &
      ;;
    electric-wal)
      local port
      port="$("$LOAD" free-port)"
      $SERVER_CPU "$EBIN" --port "$port" --data-dir "$data" --durability wal > "$out" 2> "$err" < /dev/null &
      SRV_URL="http://127.0.0.1:$port"
      ;;
  esac
  SRV_PID=$!   # taskset execs the server, so this is the server's own pid
  PIDS+=("$SRV_PID")
  local pattern='"type":"ready"'
  [ "$name" = electric-wal ] && pattern='listening on'
  if ! wait_line "$out" "$pattern" "$SRV_PID"; then
    SRV_ERR="$name did not become ready: $(tail -3 "$err" 2>/dev/null | tr '\n' ' ')"
    stop_pid "$SRV_PID"
    return 1
  fi
  if [ -z "$SRV_URL" ]; then
    SRV_URL="$(grep -o '"url":"[^"]*"' "$out" | head -1 | sed 's/"url":"\(.*\)"/\1/')"
  fi
  [ -n "$SRV_URL" ] || { SRV_ERR="$name: no URL in its readiness line"; stop_pid "$SRV_PID"; return 1; }
  return 0
}

scenario_flags() {
  case "$1" in
    append-own|append-shared) echo "--duration $DUR --concurrency 16" ;;
    catchup) echo "--duration $LONG --messages $MESSAGES --batch 1000" ;;
    latency) echo "--duration $DUR --rate 200" ;;
    fanout) echo "--duration $DUR --rate 200 --readers 100" ;;
    many) echo "--duration $LONG --streams $STREAMS --concurrency 16" ;;
    ping) echo "--duration $DUR --concurrency 16" ;;
    *) echo "--duration $DUR" ;;
  esac
}

# --- machine ----------------------------------------------------------------------------
{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)')"
  [ -n "$BIN" ] && echo "ours: $BIN (--bin)"
  echo "mode: $([ "$QUICK" = 1 ] && echo quick || echo full), duration ${DUR}s per timed phase, catch-up ${MESSAGES} messages, many ${STREAMS} streams, 150-byte JSON messages"
  echo "load: append-* 16 closed-loop writers; latency 1 long-poll reader, fanout 100, writer paced at 200 appends/s; many 16 connections"
  echo "order: scenario by scenario, each against every server in turn; $ROUNDS round(s)$([ "$ROUNDS" -gt 1 ] && echo ", the servers' order reversed every other round; a cell is the median of its runs, (ratio of the medians; lowest–highest ratio within a round)")"
  echo "pinning: server ${SERVER_CPU:-none}, client ${CLIENT_CPU:-none}"
  echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) (anything well above 0 means the machine was shared)"
} | tee "$OUT/header.txt" >&2

# --- run --------------------------------------------------------------------------------
T0=$(date +%s)
RUNNABLE=""
for server in $SERVERS; do
  if [ -n "${BROKEN[$server]:-}" ]; then
    log "$server: ${BROKEN[$server]}"
    fail_line "$server" "*" "${BROKEN[$server]}"
  else
    RUNNABLE="$RUNNABLE $server"
  fi
done
reversed() { local out="" s; for s in $1; do out="$s $out"; done; echo "$out"; }
n=0
for round in $(seq 1 "$ROUNDS"); do
  order="$RUNNABLE"
  [ $((round % 2)) = 0 ] && order="$(reversed "$RUNNABLE")"
  for sc in $SCENARIOS; do
    for server in $order; do
      n=$((n + 1))
      if ! start_server "$server" "$n"; then
        log "$SRV_ERR"
        fail_line "$server" "$sc" "$SRV_ERR" "$round"
        continue
      fi
      log "round $round/$ROUNDS: $server $sc (pid $SRV_PID, $SRV_URL)"
      out="$WORK/load.out"
      # shellcheck disable=SC2046
      timeout $((LONG * 3 + 120)) $CLIENT_CPU "$LOAD" "$sc" --url "$SRV_URL" --server-pid "$SRV_PID" \
        --label "$server" --json $(scenario_flags "$sc") > "$out" 2>> "$OUT/logs/load.log"
      rc=$?
      # One line per run, so that a cell's "k of N runs ok" counts runs: a server that
      # died during the scenario fails the run, whatever the load generator measured.
      alive=1
      if ! kill -0 "$SRV_PID" 2>/dev/null; then
        alive=0
        log "$server exited during $sc"
        wait "$SRV_PID" 2>/dev/null
      fi
      if grep -q '^{' "$out" && { [ "$alive" = 1 ] || grep -q '"ok":false' "$out"; }; then
        grep '^{' "$out" | sed "s/^{/{\"round\":$round,/" >> "$RESULTS"
      elif [ "$alive" = 0 ]; then
        fail_line "$server" "$sc" "server process exited during the scenario" "$round"
      else
        fail_line "$server" "$sc" "load generator exited with code $rc: $(tail -1 "$OUT/logs/load.log")" "$round"
      fi
      stop_pid "$SRV_PID"
      rm -rf "$WORK/$server-$n"
    done
  done
done
log "runs took $(( $(date +%s) - T0 )) s"
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/header.txt"

{
  cat "$OUT/header.txt"
  echo
  echo "Cells: value, and (value ÷ ours-full) where higher or lower is better: rates higher; latency, CPU µs per op and RSS lower."
  echo
  "$LOAD" table --results "$RESULTS" --baseline ours-full
} > "$OUT/table.md"
cat "$OUT/table.md"
echo
echo "results: $OUT" >&2
