#!/usr/bin/env bash
# The standard benchmark set: our three servers side by
# side with the reference peers of bench/peers/ (Node ws and Bun's
# Bun.serve WebSocket, Flask dev server and gunicorn + gevent, Node
# socket.io with @socket.io/redis-adapter and the same socket.io app on Bun
# through @socket.io/bun-engine) and the raw TCP reference, all driven by
# the same load generator (crates/loadgen) in the same invocation, written
# to BENCHMARKS.md. rooms-chat also runs beside socketioxide alone
# (crates/rooms-chat/examples/bare_socketioxide.rs), the floor of its stack.
#
#   scripts/bench.sh            the full set
#   scripts/bench.sh --quick    shorter windows and searches, same shapes (--only rooms: about 40 minutes, most of it the peers' idle joins)
#   scripts/bench.sh --only ws  only the runs whose name contains "ws"
#   scripts/bench.sh --only bun the Bun peers' runs alone (ws-bun-*, rooms-bun-*)
#   scripts/bench.sh --no-peers ours and the raw reference only
#
# It builds release binaries, installs the peers (npm ci, which brings the
# Bun peers their bun binary; a Python venv with
# bench/peers/sse-flask/requirements.txt), starts and stops every server
# itself (and a private redis-server on a free port for the cluster runs),
# waits for a quiet machine before each run (bounded), bounds every run in
# time, keeps each run's JSON report under target/bench/ (with the machine
# and the invocation in target/bench/about/run.json), and has the load
# generator write BENCHMARKS.md from them: the figures, the verdicts against
# bench/targets.toml, the exact commands and the machine
# (`loadgen report --results target/bench --output BENCHMARKS.md` renders
# it again from the same files).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release
OUT=$TARGET_DIR/bench
PEERS=$ROOT/bench/peers
QUICK=0
ONLY=""
WITH_PEERS=1
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --only) ONLY=$2; shift ;;
    --no-peers) WITH_PEERS=0 ;;
    -h|--help) sed -n 2,27p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

# Idle RSS is read this long after each step's joins: jemalloc gives freed
# pages back to the kernel over its 10 s decay time (a background thread does
# it even when nothing allocates), so a reading taken sooner counts the
# garbage of the join ramp as memory per socket. The same wait for every server.
IDLE_SETTLE=12
# Light-load rows: how many interleaved rounds (see light_rounds).
LIGHT_ROUNDS=3
if [ $QUICK = 1 ]; then
  WINDOW=5 JITTER_WINDOW=20 QUIET_WAIT=5 IDLE_STEPS=2 CEILING_STEPS=3
else
  WINDOW=15 JITTER_WINDOW=60 QUIET_WAIT=60 IDLE_STEPS=4 CEILING_STEPS=6
fi

log() { printf '\n==> %s\n' "$*" >&2; }
rel() { echo "${1#"$ROOT"/}"; } # a path as written in BENCHMARKS.md: relative to the repo

# ------------------------------------------------------------- processes
STARTED=()
cleanup() {
  for pid in "${STARTED[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 20000))
    if port_is_free "$port"; then echo "$port"; return; fi
  done
  echo "no free port" >&2; exit 1
}

# start_cmd NAME PORT DIR COMMAND...: starts COMMAND (with PORT in its
# environment) in DIR, waits for $HEALTH_PATH (default /healthz), sets
# SERVER_PID and appends the launch line to SERVER_LINES. Variables for the
# server go in front of the command through `env`.
start_cmd() {
  local name=$1 port=$2 dir=$3 health=${HEALTH_PATH:-/healthz}; shift 3
  (cd "$dir" && exec env PORT="$port" RUST_LOG=warn "$@") >>"$OUT/$name-$port.log" 2>&1 &
  SERVER_PID=$!
  STARTED+=("$SERVER_PID")
  SERVER_LINES+="(cd $(rel "$dir") && PORT=$port $*)"$'\n'
  for _ in $(seq 150); do
    if curl -sf "http://127.0.0.1:$port$health" >/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$name did not become healthy on port $port (see $OUT/$name-$port.log)" >&2
  return 1
}

# start_server APP PORT [VAR=VALUE...]: one of our release servers. The
# load comes from a handful of loopback addresses, so the per-address
# limits are off, and the cap leaves room for the 19,000-connection runs
# (the peers have no such limits either).
start_server() {
  local app=$1 port=$2; shift 2
  start_cmd "${app##*/}" "$port" "$ROOT" env MAX_CONNECTIONS_PER_IP=0 HANDSHAKE_RATE=0 \
    MAX_CONNECTIONS=19500 "$@" "$(rel "$BIN")/$app"
}

# start_rooms_cluster [node]: a private redis-server and two rooms-chat
# instances (or two Node socket.io peers) on it; sets port_a, port_b, pid_a, pid_b.
start_rooms_cluster() {
  start_redis
  port_a=$(free_port); port_b=$(free_port)
  local url="REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  if [ "${1:-}" = node ]; then
    start_cmd rooms-node "$port_a" "$PEERS/rooms-node" env MSG_RATE=0 "$url" node server.js
    pid_a=$SERVER_PID
    start_cmd rooms-node "$port_b" "$PEERS/rooms-node" env MSG_RATE=0 "$url" node server.js
    pid_b=$SERVER_PID
  else
    start_server rooms-chat "$port_a" MSG_RATE=0 "$url"
    pid_a=$SERVER_PID
    start_server rooms-chat "$port_b" MSG_RATE=0 "$url"
    pid_b=$SERVER_PID
  fi
}

stop_servers() {
  for pid in "${STARTED[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null; done
  STARTED=()
  SERVER_LINES=""
}

start_redis() {
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    >"$OUT/redis-$REDIS_PORT.log" 2>&1 &
  STARTED+=("$!")
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  SERVER_LINES+="redis-server --port $REDIS_PORT --save '' --appendonly no"$'\n'
}

# The peers, installed from their lock files; a peer that cannot be
# installed is left out (its rows say n/a, the log says why). The Bun peers'
# lock files bring the runtime itself (the `bun` package's binary, run as
# node_modules/.bin/bun).
NODE_PEERS=0 BUN_PEERS=0 FLASK_PEER=0
install_peers() {
  [ "$WITH_PEERS" = 1 ] || return 0
  if command -v node >/dev/null && command -v npm >/dev/null; then
    NODE_PEERS=1
    for peer in ws-node rooms-node; do
      log "npm ci in $(rel "$PEERS/$peer")"
      (cd "$PEERS/$peer" && npm ci --no-audit --no-fund --loglevel=error) >&2 || NODE_PEERS=0
    done
    BUN_PEERS=1
    for peer in ws-bun rooms-bun; do
      log "npm ci in $(rel "$PEERS/$peer")"
      (cd "$PEERS/$peer" && npm ci --no-audit --no-fund --loglevel=error &&
        node_modules/.bin/bun --version) >&2 || BUN_PEERS=0
    done
    [ $BUN_PEERS = 1 ] || log "could not install Bun (npm ci in the Bun peers): the Bun peers are left out"
  else
    log "node/npm missing: the Node and Bun peers are left out"
  fi
  local venv=$PEERS/sse-flask/.venv
  log "Python venv for $(rel "$PEERS/sse-flask")"
  if { [ -x "$venv/bin/gunicorn" ] || python3 -m venv "$venv"; } &&
      "$venv/bin/pip" install -q -r "$PEERS/sse-flask/requirements.txt" >&2; then
    FLASK_PEER=1
  else
    log "could not install the Flask peer: it is left out"
  fi
}

# Waits (at most QUIET_WAIT seconds) for the 1-minute load average to fall
# under half the cores; notes what it was when the run started.
wait_quiet() {
  local limit waited=0 average
  limit=$(awk -v cores="$(nproc)" 'BEGIN { print cores / 2 }')
  while :; do
    average=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v average="$average" -v limit="$limit" 'BEGIN { exit !(average < limit) }'; then break; fi
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      log "machine still busy (load $average) after ${QUIET_WAIT}s; running anyway"
      break
    fi
    sleep 5; waited=$((waited + 5))
  done
  LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
}

selected() { [ -z "$ONLY" ] || [[ $1 == *"$ONLY"* ]]; }

# bench NAME SECONDS loadgen-arguments...: one bounded loadgen run.
bench() {
  local name=$1 limit=$2; shift 2
  wait_quiet
  log "$name: loadgen $*"
  printf '%s' "$SERVER_LINES" >"$OUT/$name.servers"
  echo "$(rel "$BIN")/loadgen $*" >"$OUT/$name.command"
  echo "$LOAD_AT_START" >"$OUT/$name.load"
  if ! timeout --signal=INT --kill-after=20 "$limit" "$BIN/loadgen" "$@" \
      --label "$name" --json "$OUT/$name.json" 2>"$OUT/$name.stderr"; then
    echo "failed or timed out after ${limit}s" >>"$OUT/$name.stderr"
    log "$name failed: $(tail -n 3 "$OUT/$name.stderr")"
  fi
  grep -v '^\S*\[' "$OUT/$name.stderr" | grep -v ' INFO ' | tail -n 6 >&2 || true
}

# clean RUN: true when the run kept p99 under 50 ms and lost nothing (else
# the load generator says why not).
clean() { "$BIN/loadgen" is-clean --results "$OUT" --run "$1"; }

# ceiling NAME START STEP START-COMMAND...: the clean ceiling of one server,
# a short search of at most CEILING_STEPS runs, a fresh server for each:
# from START up by STEP while the runs are clean, or, when START is not
# clean, down by STEP until one is. The fan-out arguments without --rate
# come from CEILING_SHAPE; the start command must take the port from $port
# and set SERVER_PID.
ceiling() {
  local name=$1 rate=$2 step=$3 best="n/a" direction=""; shift 3
  rm -f "$OUT/$name.ceiling"
  for n in $(seq "$CEILING_STEPS"); do
    port=$(free_port)
    "$@" || { stop_servers; break; }
    bench "$name-$n" 240 fanout --target "127.0.0.1:$port" --server-pid "$SERVER_PID" \
      "${CEILING_SHAPE[@]}" --rate "$rate"
    stop_servers
    if clean "$name-$n"; then
      best=$rate
      [ "$direction" = down ] && break
      direction=up
      rate=$(awk -v r="$rate" -v s="$step" 'BEGIN { printf "%d", r * s }')
    else
      [ "$direction" = up ] && break
      direction=down
      rate=$(awk -v r="$rate" -v s="$step" 'BEGIN { printf "%d", r / s }')
    fi
  done
  echo "$best" >"$OUT/$name.ceiling"
}

# deliveries per TCP data segment of RUN (about per write), rounded, at
# least 1: the raw reference's "same writes" shape.
frames_per_write() {
  "$BIN/loadgen" frames-per-write --results "$OUT" --run "$1" 2>/dev/null || echo 1
}

# ---------------------------------------------------------- hooks
# Other bench scripts of the project, run in the same invocation after the
# standard set; each gets OUT (where to put its JSON) and BIN. One line each.
run_hook() {
  local script=$1
  [ -x "$ROOT/$script" ] || return 0
  log "hook: $script"
  OUT=$OUT BIN=$BIN QUICK=$QUICK "$ROOT/$script" >&2 || log "$script failed"
}

# --------------------------------------------------------------- build
log "building release binaries in $TARGET_DIR"
# The whole workspace in one build (examples too: bare_socketioxide): a
# build of a few packages unifies features differently and would rebuild
# their dependencies apart from the workspace's.
cargo build --release --workspace --bins --examples 2>&1 | tail -n 3 \
  || { echo "build failed" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.command "$OUT"/*.servers "$OUT"/*.load "$OUT"/*.stderr "$OUT"/*.log \
  "$OUT"/*.ceiling "$OUT"/*.round "$OUT"/hooks/*.md "$OUT"/about/run.json
SERVER_LINES=""
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
install_peers
BENCH_STARTED=$(date +%s)

# --------------------------------------------------------------- runs
# ws-chat: light = 1,000 clients, 20 senders x 4 msg/s; heavy =
# 200 msg/s in all (200k deliveries/s).
CHAT=(--proto ws-chat --clients 1000 --senders 20 --duration "$WINDOW")
CHAT_LIGHT=80 CHAT_HEAVY=200
# rooms-chat: 1,000 clients in 10 rooms, 50 senders;
# light 10 msg/s each, heavy 2,000 msg/s in all (200k deliveries/s).
ROOMS=(--proto rooms-chat --clients 1000 --rooms 10 --senders 50 --duration "$WINDOW")
ROOMS_LIGHT=500 ROOMS_HEAVY=2000
# Idle rows of rooms-chat and its peers, as TAG:SOCKETS:ROOMS.
ROOMS_IDLE_SHAPES="6k:6000:10 19k:19000:10 15k:15000:100"
RAW_CHAT=(--rooms 1 --clients 1000 --senders 20 --duration "$WINDOW")
RAW_ROOMS=(--rooms 10 --clients 1000 --senders 50 --duration "$WINDOW")

start_ws_chat() { start_server ws-chat "$port" MSG_RATE=0; }
start_ws_node() { start_cmd ws-node "$port" "$PEERS/ws-node" node server.js; }
start_ws_bun() { start_cmd ws-bun "$port" "$PEERS/ws-bun" node_modules/.bin/bun server.js; }
start_rooms_chat() { start_server rooms-chat "$port" MSG_RATE=0; }
# socketioxide alone, nothing of ours: the floor of memory (idle rows) and,
# with its own room broadcast for `message`, of CPU per delivery.
start_bare() { HEALTH_PATH="/socket.io/?EIO=4&transport=polling" start_server examples/bare_socketioxide "$port" "$@"; }
start_rooms_node() { start_cmd rooms-node "$port" "$PEERS/rooms-node" env MSG_RATE=0 node server.js; }
start_rooms_bun() { start_cmd rooms-bun "$port" "$PEERS/rooms-bun" env MSG_RATE=0 node_modules/.bin/bun server.js; }

# chat_pair APP-NAME START-FUNCTION SHAPE-NAME RATE: one fan-out run.
fanout_run() {
  local name=$1 start=$2 rate=$3; shift 3
  port=$(free_port)
  "$start" || { stop_servers; return; }
  bench "$name" 240 fanout --target "127.0.0.1:$port" --server-pid "$SERVER_PID" "$@" --rate "$rate"
  stop_servers
}

# raw_pair NAME RUN RATE SHAPE...: the raw TCP reference of RUN, once with one
# write per frame and once with as many frames per write as RUN made.
raw_pair() {
  local name=$1 run=$2 rate=$3; shift 3
  bench "rawtcp-$name-1" 240 rawtcp "$@" --rate "$rate" --frames-per-write 1
  bench "rawtcp-$name-same" 240 rawtcp "$@" --rate "$rate" --frames-per-write "$(frames_per_write "$run")"
}

# light_rounds APP START NODE-START BUN-START FLOOR RAW-NAME RATE FANOUT-SHAPE -- RAW-SHAPE:
# the light rows, where nothing batches and run-to-run noise (the kernel's
# wake-ups of the load generator, Node's garbage collector) is as large as
# the differences measured. Ours, the Node and Bun peers, the framework's
# floor (FLOOR as NAME:START, or -) and the raw reference run LIGHT_ROUNDS
# times, interleaved; each row is the round whose CPU per delivery is the
# median (every round's report stays as NAME-rK.json). BUN-START "-" leaves
# the Bun peer out; START "-" runs the Bun peer alone (--only bun).
light_rounds() {
  local app=$1 start=$2 node_start=$3 bun_start=$4 floor=$5 raw=$6 rate=$7; shift 7
  local fanout=() round all=1
  [ "$start" = - ] && all=0 floor=-
  while [ "$1" != -- ]; do fanout+=("$1"); shift; done; shift
  for round in $(seq "$LIGHT_ROUNDS"); do
    [ $all = 1 ] && fanout_run "$app-chat-light-r$round" "$start" "$rate" "${fanout[@]}"
    [ $all = 1 ] && [ $NODE_PEERS = 1 ] && fanout_run "$app-node-light-r$round" "$node_start" "$rate" "${fanout[@]}"
    [ "$bun_start" != - ] && fanout_run "$app-bun-light-r$round" "$bun_start" "$rate" "${fanout[@]}"
    [ "$floor" != - ] && fanout_run "${floor%%:*}-light-r$round" "${floor#*:}" "$rate" "${fanout[@]}"
    [ $all = 1 ] && bench "rawtcp-$raw-light-1-r$round" 240 rawtcp "$@" --rate "$rate" --frames-per-write 1
  done
  [ "$bun_start" != - ] && median_round "$app-bun-light"
  [ $all = 1 ] || return 0
  median_round "$app-chat-light"
  [ $NODE_PEERS = 1 ] && median_round "$app-node-light"
  [ "$floor" != - ] && median_round "${floor%%:*}-light"
  median_round "rawtcp-$raw-light-1"
  bench "rawtcp-$raw-light-same" 240 rawtcp "$@" --rate "$rate" \
    --frames-per-write "$(frames_per_write "$app-chat-light")"
}

# median_round NAME: NAME-r1 .. NAME-rN's median by CPU per delivery becomes
# NAME (its files copied, its number in NAME.round).
median_round() {
  "$BIN/loadgen" median-round --results "$OUT" --run "$1" --rounds "$LIGHT_ROUNDS" ||
    log "no median round of $1"
}

# Which rows of the ws-chat and rooms-chat sets run: all of them when the
# set is selected, the Bun peer's alone when only its runs' names are
# (--only bun, ws-bun, rooms-bun).
WS_ALL=0 WS_BUN=0 ROOMS_ALL=0 ROOMS_BUN=0
selected ws-chat && WS_ALL=1
selected rooms && ROOMS_ALL=1
if [ $BUN_PEERS = 1 ]; then
  { [ $WS_ALL = 1 ] || selected ws-bun; } && WS_BUN=1
  { [ $ROOMS_ALL = 1 ] || selected rooms-bun; } && ROOMS_BUN=1
fi
# when FLAG WORD: WORD when FLAG is 1, else "-" (a start function left out).
when() { if [ "$1" = 1 ]; then echo "$2"; else echo -; fi; }

# ws_idle NAME START-FUNCTION CLIENTS: CLIENTS idle joined sockets on a fresh
# ws-chat server or peer, the RSS read after each of IDLE_STEPS steps.
ws_idle() {
  port=$(free_port)
  "$2" && bench "$1" 600 idle --proto ws-chat --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" --clients "$3" --steps "$IDLE_STEPS" --settle "$IDLE_SETTLE" --duration 3
  stop_servers
}

# rooms_idle NAME SOCKETS ROOMS: one idle run of the rooms-chat contract
# against the server just started on $port.
rooms_idle() {
  bench "$1" 600 idle --proto rooms-chat --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" --clients "$2" --rooms "$3" --steps "$IDLE_STEPS" --settle "$IDLE_SETTLE" --duration 3
}

if [ $WS_ALL = 1 ] || [ $WS_BUN = 1 ]; then
  light_rounds ws "$(when $WS_ALL start_ws_chat)" start_ws_node "$(when $WS_BUN start_ws_bun)" - chat \
    "$CHAT_LIGHT" "${CHAT[@]}" -- "${RAW_CHAT[@]}"
fi
if [ $WS_ALL = 1 ]; then
  fanout_run ws-chat-heavy start_ws_chat "$CHAT_HEAVY" "${CHAT[@]}"
  [ $NODE_PEERS = 1 ] && fanout_run ws-node-heavy start_ws_node "$CHAT_HEAVY" "${CHAT[@]}"
  raw_pair chat-heavy ws-chat-heavy "$CHAT_HEAVY" "${RAW_CHAT[@]}"
  CEILING_SHAPE=("${CHAT[@]}")
  ceiling ws-chat-ceiling 200 1.5 start_ws_chat
  [ $NODE_PEERS = 1 ] && ceiling ws-node-ceiling 80 1.5 start_ws_node
  # 6,000 and 19,000: the sizes the Bun peer's rows use.
  for count in 6000 10000 19000; do ws_idle "ws-chat-idle-$((count / 1000))k" start_ws_chat "$count"; done
  # Node's welcome lists every user, so its joins cost O(users): 10,000 of
  # them take minutes on two busy cores; --quick leaves this row out.
  if [ $NODE_PEERS = 1 ] && [ $QUICK = 0 ]; then
    ws_idle ws-node-idle-10k start_ws_node 10000
  fi
fi
if [ $WS_BUN = 1 ]; then
  fanout_run ws-bun-heavy start_ws_bun "$CHAT_HEAVY" "${CHAT[@]}"
  CEILING_SHAPE=("${CHAT[@]}")
  ceiling ws-bun-ceiling 200 1.5 start_ws_bun
  for count in 6000 19000; do ws_idle "ws-bun-idle-$((count / 1000))k" start_ws_bun "$count"; done
fi

# cpu_profile NAME START-FUNCTION RATE: where a chat server's CPU goes
# under the ws-chat shape at RATE msg/s. Over 4 s in the middle of a run,
# `perf stat` counts its system calls and context switches and `perf
# record` samples it; the section goes to hooks/cpu-profile.md. Needs perf
# (Debian: linux-perf); without it, the section says so.
cpu_profile() {
  local name=$1 start=$2 rate=$3 md=$OUT/hooks/cpu-profile.md data=$OUT/$1.perf
  command -v perf >/dev/null || { echo "- $name: perf is not installed" >>"$md"; return; }
  port=$(free_port)
  "$start" || { stop_servers; return; }
  wait_quiet
  log "$name: profile at $rate msg/s"
  "$BIN/loadgen" fanout --target "127.0.0.1:$port" --server-pid "$SERVER_PID" \
    --proto ws-chat --clients 1000 --senders 20 --duration 12 --rate "$rate" --label "$name" --json "$OUT/$name.profile.json" >/dev/null 2>"$OUT/$name.stderr" &
  local load=$!
  sleep 5
  perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$SERVER_PID" -o "$OUT/$name.stat" -- sleep 4 2>/dev/null
  perf record -q -F 999 -g -p "$SERVER_PID" -o "$data" -- sleep 2 >/dev/null 2>&1
  wait "$load"
  stop_servers
  local calls switches per_sec
  calls=$(awk -F, '/raw_syscalls/ {print $1}' "$OUT/$name.stat")
  switches=$(awk -F, '/context-switches/ {print $1}' "$OUT/$name.stat")
  per_sec=$(jq '.deliveries_per_sec' "$OUT/$name.profile.json" 2>/dev/null || echo 0)
  {
    echo
    echo "**$name** ($rate msg/s to 1,000 clients): $(jq -r '.server | "CPU-µs per delivery \(.cpu_us_per_delivery * 100 | round / 100), of which user \(.cpu_user_seconds / (.cpu_user_seconds + .cpu_system_seconds) * 100 | round) %"' "$OUT/$name.profile.json" 2>/dev/null);" \
      "$(awk -v c="$calls" -v s="$switches" -v d="$per_sec" 'BEGIN { if (d > 0) printf "per delivery: %.3f system calls, %.4f context switches", c / (4 * d), s / (4 * d) }')."
    echo "The busiest symbols (self time, % of samples):"
    echo
    echo '```'
    perf report -i "$data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep '%' | head -n 12
    echo '```'
  } >>"$md"
}

if [ $WS_ALL = 1 ]; then
  mkdir -p "$OUT/hooks"
  {
    echo "## Where the CPU goes: ws-chat and Bun"
    echo
    echo "Written by \`cpu_profile\` in scripts/bench.sh: \`perf stat\` and \`perf record -g\` on the server alone, over 4 s and 2 s in the middle of a 12 s run of the ws-chat shape. [k] is the kernel, [.] the server's own code."
  } >"$OUT/hooks/cpu-profile.md"
  for rate in "$CHAT_LIGHT" "$CHAT_HEAVY"; do
    cpu_profile "ws-chat-profile-$rate" start_ws_chat "$rate"
    [ $BUN_PEERS = 1 ] && cpu_profile "ws-bun-profile-$rate" start_ws_bun "$rate"
  done
fi

if selected sse; then
  # The raw TCP reference of sse-stocks-1k: one write of one feed step
  # (10 events, about 1.3 KB) to each of 1,000 sockets, 10 times a second.
  bench rawtcp-sse 120 rawtcp --rooms 1 --clients 1000 --senders 1 --rate 10 --text-bytes 1300 \
    --duration "$WINDOW" --frames-per-write 1
  FLASK=$PEERS/sse-flask
  start_sse() { start_server sse-stocks "$port" TICK_MS=100 SEED=7; }
  start_flask_dev() { start_cmd flask-dev "$port" "$FLASK" env TICK_MS=100 SEED=7 .venv/bin/python app.py; }
  # One gevent worker, as the peer's README says; worker-connections above
  # the streams of the run so that gunicorn itself does not refuse them.
  start_gunicorn() {
    start_cmd flask-gevent "$port" "$FLASK" env TICK_MS=100 SEED=7 .venv/bin/gunicorn -k gevent -w 1 \
      --worker-connections "$1" -b "127.0.0.1:$port" app:app || return 1
    # Measure the master and its worker together.
    SERVER_PID="$SERVER_PID --server-pid $(pgrep -P "$SERVER_PID" | head -n 1)"
  }
  for streams in 1k 19k; do
    [ $streams = 1k ] && count=1000 || count=19000
    for impl in sse-stocks flask-dev flask-gevent; do
      [ $impl != sse-stocks ] && [ $FLASK_PEER = 0 ] && continue
      port=$(free_port)
      case $impl in
        sse-stocks) start_sse ;;
        flask-dev) start_flask_dev ;;
        flask-gevent) start_gunicorn $((count + 1000)) ;;
      esac || { stop_servers; continue; }
      # At 19,000 streams the load generator cannot read 1.9 million events
      # a second on the cores it shares with the server: it keeps reading
      # after the window to count what the server wrote in it.
      # shellcheck disable=SC2086 # SERVER_PID may hold a second --server-pid
      bench "$impl-$streams" "$([ $impl = sse-stocks ] && echo 600 || echo 300)" streams \
        --target "127.0.0.1:$port" --server-pid $SERVER_PID \
        --clients "$count" --steps "$([ $count = 1000 ] && echo 1 || echo "$IDLE_STEPS")" \
        --duration "$WINDOW" --stream-grace "$([ $count = 1000 ] && echo 2 || echo 10)" \
        --connect-timeout 120
      stop_servers
    done
  done
  if [ $QUICK = 0 ]; then
    port=$(free_port)
    start_sse && bench sse-stocks-jitter 300 jitter --proto sse --target "127.0.0.1:$port" \
      --server-pid "$SERVER_PID" --clients 1000 --duration "$JITTER_WINDOW"
    stop_servers
  fi
fi

if [ $ROOMS_ALL = 1 ] || [ $ROOMS_BUN = 1 ]; then
  light_rounds rooms "$(when $ROOMS_ALL start_rooms_chat)" start_rooms_node "$(when $ROOMS_BUN start_rooms_bun)" \
    socketioxide-bare:start_bare rooms "$ROOMS_LIGHT" "${ROOMS[@]}" -- "${RAW_ROOMS[@]}"
fi
if [ $ROOMS_ALL = 1 ]; then
  fanout_run rooms-chat-heavy start_rooms_chat "$ROOMS_HEAVY" "${ROOMS[@]}"
  [ $NODE_PEERS = 1 ] && fanout_run rooms-node-heavy start_rooms_node "$ROOMS_HEAVY" "${ROOMS[@]}"
  fanout_run socketioxide-bare-heavy start_bare "$ROOMS_HEAVY" "${ROOMS[@]}"
  raw_pair rooms-heavy rooms-chat-heavy "$ROOMS_HEAVY" "${RAW_ROOMS[@]}"
  # Two instances on one Redis, clients spread over both.
  for load in light heavy; do
    [ $load = light ] && rate=$ROOMS_LIGHT || rate=$ROOMS_HEAVY
    for impl in rooms-chat rooms-node; do
      [ $impl = rooms-node ] && [ $NODE_PEERS = 0 ] && continue
      start_rooms_cluster "$([ $impl = rooms-node ] && echo node)" || { stop_servers; continue; }
      bench "$impl-$load-2" 240 fanout --target "127.0.0.1:$port_a" --target "127.0.0.1:$port_b" \
        --server-pid "$pid_a" --server-pid "$pid_b" "${ROOMS[@]}" --rate "$rate"
      stop_servers
    done
  done
  CEILING_SHAPE=("${ROOMS[@]}")
  ceiling rooms-chat-ceiling 2000 1.5 start_rooms_chat
  [ $NODE_PEERS = 1 ] && ceiling rooms-node-ceiling 600 1.5 start_rooms_node

  # Idle memory: 6,000 and 19,000 sockets in 10 rooms and 15,000 in 100
  # rooms, beside Node's and Bun's socket.io (Bun's rows are with its other
  # runs below) and, at the two large shapes, the floor: socketioxide alone,
  # same buffers, joins answered and nothing else; and socketioxide alone
  # with the contract's join (the members in the ack, a user_joined to the
  # room). Every peer's row is in --quick too: the targets are against them.
  for shape in $ROOMS_IDLE_SHAPES; do
    IFS=: read -r tag count rooms <<<"$shape"
    for impl in rooms-chat socketioxide-bare socketioxide-bare-notices rooms-node; do
      [ "$impl" = rooms-node ] && [ "$NODE_PEERS" = 0 ] && continue
      [[ $impl == socketioxide-bare* ]] && [ "$tag" = 6k ] && continue
      port=$(free_port)
      case $impl in
        rooms-chat) start_rooms_chat ;;
        socketioxide-bare) start_bare ;;
        socketioxide-bare-notices) start_bare BARE_NOTICES=1 ;;
        rooms-node) start_rooms_node ;;
      esac || { stop_servers; continue; }
      rooms_idle "$impl-idle-$tag-$rooms" "$count" "$rooms"
      stop_servers
    done
  done
  # Every socket in a room of its own: the `rooms` push lists at most
  # ROOMS_LIST_MAX of them (unbounded, it filled every socket's write buffer).
  port=$(free_port)
  if start_rooms_chat; then
    rooms_idle rooms-chat-idle-19k-19000 19000 19000
  fi
  stop_servers

  # Join storm: 2,000 members join one room as fast as the handshakes go;
  # it ends once no notice came for --duration seconds.
  for impl in rooms-chat rooms-node; do
    [ $impl = rooms-node ] && [ $NODE_PEERS = 0 ] && continue
    port=$(free_port)
    "start_${impl/-/_}" || { stop_servers; continue; }
    bench "$impl-join-storm" 300 storm --proto rooms-chat --target "127.0.0.1:$port" \
      --server-pid "$SERVER_PID" --clients 2000 --rooms 1 --connect-concurrency 500 --duration 5
    stop_servers
  done

  if [ $QUICK = 0 ]; then
    start_rooms_cluster
    bench rooms-chat-jitter 300 jitter --proto rooms-chat \
      --target "127.0.0.1:$port_a" --target "127.0.0.1:$port_b" \
      --server-pid "$pid_a" --server-pid "$pid_b" \
      --clients 1000 --rooms 10 --senders 50 --rate 500 --duration "$JITTER_WINDOW"
    stop_servers
  fi
fi
if [ $ROOMS_BUN = 1 ]; then
  fanout_run rooms-bun-heavy start_rooms_bun "$ROOMS_HEAVY" "${ROOMS[@]}"
  CEILING_SHAPE=("${ROOMS[@]}")
  ceiling rooms-bun-ceiling 600 1.5 start_rooms_bun
  # The same idle shapes as rooms-chat's (its 19,000 joins take minutes).
  for shape in $ROOMS_IDLE_SHAPES; do
    IFS=: read -r tag count rooms <<<"$shape"
    port=$(free_port)
    start_rooms_bun && rooms_idle "rooms-bun-idle-$tag-$rooms" "$count" "$rooms"
    stop_servers
  done
fi

# ---------------------------------------------------------- hook calls
# One line per script; a script that is not there is skipped. Each may
# write a Markdown section to $OUT/hooks/<name>.md: the report appends it.
mkdir -p "$OUT/hooks"
selected wire && run_hook scripts/wire-costs.sh
selected churn && run_hook scripts/churn.sh
selected shards && run_hook scripts/shards.sh

BENCH_SECONDS=$(( $(date +%s) - BENCH_STARTED ))

# --------------------------------------------------------------- report
# about/run.json: the invocation and the machine, for the report's header.
write_about() {
  mkdir -p "$OUT/about"
  jq -n \
    --arg written_at "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --argjson seconds "$BENCH_SECONDS" \
    --argjson quick "$([ "$QUICK" = 1 ] && echo true || echo false)" \
    --argjson window_secs "$WINDOW" \
    --argjson idle_steps "$IDLE_STEPS" \
    --argjson ceiling_steps "$CEILING_STEPS" \
    --argjson quiet_wait_secs "$QUIET_WAIT" \
    --argjson light_rounds "$LIGHT_ROUNDS" \
    --argjson idle_settle_secs "$IDLE_SETTLE" \
    --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --argjson uncommitted_changes "$([ -n "$(git status --porcelain 2>/dev/null)" ] && echo true || echo false)" \
    --arg results_dir "$(rel "$OUT")" \
    --argjson cores "$(nproc)" \
    --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
    --arg memory "$(free -h | awk '/^Mem:/ { print $2 }')" \
    --arg kernel "$(uname -sr)" \
    --arg node "$(node --version 2>/dev/null || echo none)" \
    --arg bun "$("$PEERS/ws-bun/node_modules/.bin/bun" --version 2>/dev/null || echo none)" \
    --arg python "$("$PEERS/sse-flask/.venv/bin/python" --version 2>/dev/null || echo none)" \
    --arg open_files "$(ulimit -Hn)" \
    '{$written_at, $seconds, $quick, $window_secs, $idle_steps, $ceiling_steps, $quiet_wait_secs,
      $light_rounds, $idle_settle_secs, $commit, $uncommitted_changes, $results_dir,
      machine: {$cores, $cpu, $memory, $kernel, $node, $bun, $python,
        open_files_hard_limit: $open_files}}' >"$OUT/about/run.json"
}

# The document is rendered by the load generator (crates/loadgen/src/benchmarks/)
# from the files above and the targets of bench/targets.toml; it writes
# BENCHMARKS.md only once the whole document is rendered.
log "writing BENCHMARKS.md"
write_about
"$BIN/loadgen" report --results "$OUT" --targets-file bench/targets.toml --output BENCHMARKS.md ||
  { echo "loadgen report failed; BENCHMARKS.md is unchanged" >&2; exit 1; }
log "done in $((BENCH_SECONDS / 60)) min: BENCHMARKS.md"
