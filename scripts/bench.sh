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
#   scripts/bench.sh --quick    shorter windows and searches, same shapes (target: under 15 minutes)
#   scripts/bench.sh --only ws  only the runs whose name contains "ws"
#   scripts/bench.sh --only bun the Bun peers' runs alone (ws-bun-*, rooms-bun-*)
#   scripts/bench.sh --no-peers ours and the raw reference only
#
# It builds release binaries, installs the peers (npm ci, which brings the
# Bun peers their bun binary; a Python venv with
# bench/peers/sse-flask/requirements.txt), starts and stops every server
# itself (and a private redis-server on a free port for the cluster runs),
# waits for a quiet machine before each run (bounded), bounds every run in
# time, keeps each run's JSON report under target/bench/, and writes
# BENCHMARKS.md with the figures, the targets, the exact commands and the
# machine.
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
    -h|--help) sed -n 2,23p "$0"; exit 0 ;;
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

# clean RUN: true when the run kept p99 under 50 ms and lost nothing.
clean() {
  jq -e '(.latency.p99_ms < 50) and ((.messages.lost // 1) == 0) and (.messages.expected > 0)
    and ((.delivery_rate_pct // 0) >= 100)' "$OUT/$1.json" >/dev/null 2>&1
}

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
  jq -r '.server.deliveries_per_segment // 1 | if . < 1 then 1 else (. + 0.5 | floor) end' \
    "$OUT/$1.json" 2>/dev/null || echo 1
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
cargo build --release -p ws-chat -p sse-stocks -p rooms-chat -p loadgen 2>&1 | tail -n 3 \
  || { echo "build failed" >&2; exit 1; }
cargo build --release -p rooms-chat --example bare_socketioxide 2>&1 | tail -n 1 \
  || { echo "build failed" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.command "$OUT"/*.servers "$OUT"/*.load "$OUT"/*.stderr "$OUT"/*.log \
  "$OUT"/*.ceiling "$OUT"/hooks/*.md
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

# median_round NAME: NAME-r1 .. NAME-rN's median by CPU per delivery, as NAME.
median_round() {
  local name=$1 pick ext
  pick=$(for round in $(seq "$LIGHT_ROUNDS"); do
      echo "$(jq -r '.server.cpu_us_per_delivery // 1e9' "$OUT/$name-r$round.json" 2>/dev/null || echo 1e9) $round"
    done | sort -g | sed -n "$(((LIGHT_ROUNDS + 1) / 2))p" | cut -d' ' -f2)
  for ext in json command servers load stderr; do
    [ -f "$OUT/$name-r$pick.$ext" ] && cp "$OUT/$name-r$pick.$ext" "$OUT/$name.$ext"
  done
  echo "$pick" >"$OUT/$name.round"
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

  # Idle memory: 19,000 sockets in 10 rooms and 15,000 in 100 rooms, beside
  # the floor: socketioxide alone, same buffers, joins answered and nothing
  # else; and socketioxide alone with the contract's join (the members in
  # the ack, a user_joined to the room).
  for shape in "19k 19000 10" "15k 15000 100"; do
    read -r tag count rooms <<<"$shape"
    for impl in rooms-chat socketioxide-bare socketioxide-bare-notices rooms-node; do
      # Node's idle row is left out of --quick: its 19,000 joins take minutes.
      [ "$impl" = rooms-node ] && { [ "$NODE_PEERS" = 0 ] || [ "$tag" = 15k ] || [ "$QUICK" = 1 ]; } && continue
      port=$(free_port)
      case $impl in
        rooms-chat) start_rooms_chat ;;
        socketioxide-bare) start_bare ;;
        socketioxide-bare-notices) start_bare BARE_NOTICES=1 ;;
        rooms-node) start_rooms_node ;;
      esac || { stop_servers; continue; }
      bench "$impl-idle-$tag-$rooms" 600 idle --proto rooms-chat --target "127.0.0.1:$port" \
        --server-pid "$SERVER_PID" --clients "$count" --rooms "$rooms" --steps "$IDLE_STEPS" --settle "$IDLE_SETTLE" --duration 3
      stop_servers
    done
  done
  # Every socket in a room of its own: the `rooms` push lists at most
  # ROOMS_LIST_MAX of them (unbounded, it filled every socket's write buffer).
  port=$(free_port)
  if start_rooms_chat; then
    bench rooms-chat-idle-19k-19000 600 idle --proto rooms-chat --target "127.0.0.1:$port" \
      --server-pid "$SERVER_PID" --clients 19000 --rooms 19000 --steps "$IDLE_STEPS" --settle "$IDLE_SETTLE" --duration 3
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
  # The same socket.io app as Node's: its 19,000 joins take minutes (about
  # 2.5 on two cores) and rooms-chat has no target against it yet, so
  # --quick leaves this row out like Node's.
  if [ $QUICK = 0 ]; then
    port=$(free_port)
    start_rooms_bun && bench rooms-bun-idle-19k-10 600 idle --proto rooms-chat --target "127.0.0.1:$port" \
      --server-pid "$SERVER_PID" --clients 19000 --rooms 10 --steps "$IDLE_STEPS" --settle "$IDLE_SETTLE" --duration 3
    stop_servers
  fi
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
# field RUN JQ-EXPRESSION [DECIMALS]: a figure of a run, or "n/a".
field() {
  local file="$OUT/$1.json"
  [ -s "$file" ] || { echo "n/a"; return; }
  jq -r --argjson d "${3:-2}" "($2) as \$v | if \$v == null then \"n/a\"
    elif (\$v | type) == \"number\" then (\$v * pow(10; \$d) | round / pow(10; \$d) | tostring)
    else (\$v | tostring) end" "$file" 2>/dev/null || echo "n/a"
}

CPU=.server.cpu_us_per_delivery

# rounds_line LABEL:NAME...: one line giving every light round's CPU per
# delivery of each NAME, and which round its row shows.
rounds_line() {
  local entry label name round cpus parts=()
  for entry in "$@"; do
    label=${entry%%:*} name=${entry#*:} cpus=()
    [ -f "$OUT/$name.round" ] || continue
    for round in $(seq "$LIGHT_ROUNDS"); do cpus+=("$(field "$name-r$round" "$CPU" 2)"); done
    parts+=("$label $(IFS=/; joined="${cpus[*]}"; echo "${joined//\// / }") (row: round $(cat "$OUT/$name.round"))")
  done
  [ ${#parts[@]} -gt 0 ] || return 0
  echo
  echo "Light rows, CPU-µs per delivery of each of the $LIGHT_ROUNDS interleaved rounds: $(IFS=';'; joined="${parts[*]}"; echo "${joined//;/; }")."
}
LOST='(.messages.lost // .streams.lost)'

# calc EXPRESSION A B...: awk arithmetic over figures, "n/a" if one is missing.
calc() {
  local expression=$1; shift
  for value in "$@"; do [ "$value" = "n/a" ] && { echo "n/a"; return; }; done
  awk -v a="${1:-0}" -v b="${2:-0}" -v c="${3:-0}" "BEGIN { printf \"%.2f\", $expression }"
}

# verdict VALUE OP LIMIT: "met" / "**missed**" / "not measured".
verdict() {
  { [ "$1" = "n/a" ] || [ "$3" = "n/a" ]; } && { echo "not measured"; return; }
  if awk -v v="$1" -v l="$3" "BEGIN { exit !(v $2 l) }"; then echo "met"; else echo "**missed**"; fi
}

# floor_ratio WHAT LOAD FIELD DENOMINATOR TARGET: one row of the table that
# sets rooms-chat beside socketioxide alone, FIELD of each LOAD run over
# DENOMINATOR.
floor_ratio() {
  local what=$1 load=$2 field_expr=$3 denominator=$4 target=$5
  echo "| $what | $(calc 'a / b' "$(field "rooms-chat-$load" "$field_expr" 3)" "$denominator") | $(calc 'a / b' "$(field "socketioxide-bare-$load" "$field_expr" 3)" "$denominator") | $target |"
}

target_row() { # description runs measured op limit target-text
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$6" "$(verdict "$3" "$4" "$5")"
}

# info_row DESCRIPTION RUNS MEASURED: a figure of a targets table that has
# no target yet.
info_row() {
  printf '| %s | %s | %s | no target yet | – |\n' "$1" "$2" "$3"
}

# row RUN WHAT: one line of a comparison table.
row() {
  local run=$1 what=$2 file="$OUT/$1.json"
  if [ ! -s "$file" ]; then
    # shellcheck disable=SC2016 # the backticks are Markdown
    printf '| %s | `%s` | no report%s |\n' "$what" "$run" \
      "$( [ -f "$OUT/$run.stderr" ] && echo ": $(tail -n 1 "$OUT/$run.stderr" | tr '|' '/' | head -c 160)")"
    return
  fi
  jq -r --arg run "$run" --arg what "$what" --arg load "$(cat "$OUT/$run.load" 2>/dev/null)" '
    def n(d): if . == null then "n/a" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
    (.server // {}) as $v | (.deliveries // 0) as $d |
    (if $d > 0 then 1e6 / $d else null end) as $per |
    "| \($what) | `\($run)` | \(.connected)/\(.planned) | \(.deliveries_per_sec | n(0)) | \(.latency.p50_ms | n(1)) | \(.latency.p99_ms | n(1)) | \(.latency.max_ms | n(1)) | \(.messages.lost // .streams.lost // "–") | \(.delivery_rate_pct | n(2)) | \($v.cpu_us_per_delivery | n(2)) | \(if $per then ($v.cpu_user_seconds * $per | n(2)) else "n/a" end) | \(if $per then ($v.cpu_system_seconds * $per | n(2)) else "n/a" end) | \($v.deliveries_per_segment | n(2)) | \($v.kib_per_connection | n(2)) | \($load) |"
  ' "$file"
}

table_head() {
  echo
  echo "| server | run | connected | deliveries/s | p50 ms | p99 ms | max ms | lost | delivered % | CPU-µs/delivery | user | sys | deliveries/segment | KiB/conn | load at start |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
}

ceiling_of() { cat "$OUT/$1.ceiling" 2>/dev/null || echo "n/a"; }

write_report() {
  local mode="full" run
  [ "$QUICK" = 1 ] && mode="quick (--quick: ${WINDOW}s windows, $IDLE_STEPS RSS steps, ceiling search of $CEILING_STEPS steps, no jitter runs, no idle rows of the Node peers nor of Bun socket.io)"
  cat <<HEADER
# Benchmarks

Written by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $((BENCH_SECONDS / 60)) min, mode: $mode,
tree at commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`$( [ -n "$(git status --porcelain 2>/dev/null)" ] && echo " plus uncommitted changes").
**Every figure below comes from that one run**: ours, the reference peers of
\`bench/peers/\` (copied unchanged from the shared peers, installed from their
lock files) and the raw TCP reference, one after the other, driven by the
same load generator (\`crates/loadgen\`). Each run's JSON report is
\`$(rel "$OUT")/<run>.json\`; "n/a" means the run did not produce the figure
(see \`$(rel "$OUT")/<run>.stderr\`).

## Machine

| | |
|---|---|
| cores (nproc) | $(nproc) |
| CPU | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') |
| memory | $(free -h | awk '/^Mem:/ { print $2 }') |
| kernel | $(uname -sr) |
| Node.js | $(node --version 2>/dev/null || echo none) |
| Bun | $("$PEERS/ws-bun/node_modules/.bin/bun" --version 2>/dev/null || echo none) |
| Python | $("$PEERS/sse-flask/.venv/bin/python" --version 2>/dev/null || echo none) |
| open files (hard limit per process) | $(ulimit -Hn) |

How to read the figures:

- Server CPU is utime + stime of \`/proc/PID/stat\` (user and system apart),
  from the start of the window to the end of the drain (messages) or over
  the window alone (SSE), divided by deliveries. On loopback the kernel work
  of the receiving side of TCP runs in the sender's system call, so "sys"
  includes most of the clients' TCP receive cost.
- Deliveries per segment: deliveries divided by the TCP data segments the
  server's sockets sent over the same span (\`data_segs_out\` of \`ss -ti\`,
  summed over the sockets of its port). With Nagle off (every server here)
  a write is one segment unless the kernel merges writes queued behind each
  other, so this is about how many frames one write carried, read the same
  way for Rust, Node and Python (whose \`send\` calls \`/proc/PID/io\` does
  not count).
- The raw TCP reference (\`loadgen raw-server\`, no JSON, no framing) runs
  each shape twice: one write per frame (\`--frames-per-write 1\`), and with
  as many frames per write as our server made in that shape.
- Light load (one instance): nothing batches there, and one run's CPU per
  delivery varies by tens of percent from the next (the kernel's wake-ups
  of the load generator; Node's garbage collector). Ours, the Node and Bun
  peers and the raw reference with one write per frame therefore run $LIGHT_ROUNDS
  times, interleaved, and each row is the round with the median CPU per
  delivery; the line under the table gives every round
  (\`target/bench/<run>-r<round>.json\`).
- Latency is end to end (sender's clock to receiver's clock, one machine),
  including the load generator's own scheduling delays: it runs on the same
  $(nproc) cores as the servers. Where a server uses most of a core the load
  generator becomes the bottleneck too (its clients read late, latency
  grows for every server alike); "load at start" is the 1-minute load
  average when each run began.
- A clean ceiling is the highest rate of a short search (steps of ×1.5 up
  from a start while clean, or down from it until clean; a fresh server
  each) with p99 < 50 ms, nothing lost and every delivery made. "n/a": no
  step was clean.
- KiB per idle joined socket: the server's RSS over the joined sockets,
  read ${IDLE_SETTLE} s after the last join of each step (the same for every
  server). Our binaries' jemalloc gives freed pages back over 10 s from a
  background thread; read sooner, the garbage of the join ramp (welcomes,
  notices) would count as memory per socket.

HEADER

  local light_ours light_node light_bun heavy_raw light_raw count
  echo "## ws-chat beside Node \`ws\` and Bun"
  echo
  echo "1,000 clients in one chat, 20 senders; light: 80 msg/s in all (80k deliveries/s), heavy: 200 msg/s (200k deliveries/s). Bun ws: \`Bun.serve\`'s WebSocket server (uWebSockets) with its topic \`publish\`."
  for load in light heavy; do
    table_head
    row "ws-chat-$load" "ws-chat, $load"
    row "ws-node-$load" "Node ws, $load"
    row "ws-bun-$load" "Bun ws, $load"
    row "rawtcp-chat-$load-1" "raw TCP, one write per frame"
    row "rawtcp-chat-$load-same" "raw TCP, ws-chat's writes"
    if [ $load = light ]; then
      rounds_line "ws-chat:ws-chat-light" "Node ws:ws-node-light" "Bun ws:ws-bun-light" "raw TCP:rawtcp-chat-light-1"
    fi
  done
  echo
  echo "Clean ceiling (msg/s sent to 1,000 clients): ws-chat $(ceiling_of ws-chat-ceiling), Node ws $(ceiling_of ws-node-ceiling), Bun ws $(ceiling_of ws-bun-ceiling). Steps:"
  table_head
  for json in "$OUT"/ws-chat-ceiling-*.json "$OUT"/ws-node-ceiling-*.json "$OUT"/ws-bun-ceiling-*.json; do
    [ -e "$json" ] || continue
    run=$(basename "$json" .json); row "$run" "$(field "$run" .rate 0) msg/s"
  done
  table_head
  row ws-chat-idle-10k "ws-chat, 10,000 idle joined sockets"
  row ws-node-idle-10k "Node ws, 10,000 idle joined sockets"
  for count in 6 19; do
    row "ws-chat-idle-${count}k" "ws-chat, ${count},000 idle joined sockets"
    row "ws-bun-idle-${count}k" "Bun ws, ${count},000 idle joined sockets"
  done
  echo
  echo "### ws-chat targets"
  echo
  echo "| target | runs | measured | target | verdict |"
  echo "|---|---|---|---|---|"
  light_ours=$(field ws-chat-light .latency.p50_ms); light_node=$(field ws-node-light .latency.p50_ms)
  target_row "light p50 (ms) ≤ Node's + 0.5 ($light_node + 0.5)" "ws-chat-light, ws-node-light" "$light_ours" "<=" "$(calc 'a + 0.5' "$light_node")" "≤ Node + 0.5 ms"
  target_row "light p99 (ms) ≤ Node's ($(field ws-node-light .latency.p99_ms))" "ws-chat-light, ws-node-light" "$(field ws-chat-light .latency.p99_ms)" "<=" "$(field ws-node-light .latency.p99_ms)" "≤ Node"
  target_row "light CPU per delivery ÷ Node's" "ws-chat-light, ws-node-light" "$(calc 'a / b' "$(field ws-chat-light $CPU 3)" "$(field ws-node-light $CPU 3)")" "<=" 0.85 "≤ 0.85×"
  target_row "heavy p99 (ms)" ws-chat-heavy "$(field ws-chat-heavy .latency.p99_ms)" "<" 30 "< 30 ms"
  target_row "heavy deliveries lost" ws-chat-heavy "$(field ws-chat-heavy "$LOST" 0)" "==" 0 "0"
  heavy_raw=$(field rawtcp-chat-heavy-1 $CPU 3)
  target_row "heavy CPU per delivery ÷ raw TCP one write per frame ($heavy_raw µs)" "ws-chat-heavy, rawtcp-chat-heavy-1" "$(calc 'a / b' "$(field ws-chat-heavy $CPU 3)" "$heavy_raw")" "<=" 0.5 "≤ 0.5×"
  target_row "idle KiB per joined socket at 10,000" ws-chat-idle-10k "$(field ws-chat-idle-10k .server.kib_per_connection)" "<=" 6 "≤ 6 KiB"
  light_bun=$(field ws-bun-light .latency.p50_ms)
  target_row "light p50 (ms) ≤ Bun's + 0.1 ($light_bun + 0.1)" "ws-chat-light, ws-bun-light" "$light_ours" "<=" "$(calc 'a + 0.1' "$light_bun")" "≤ Bun + 0.1 ms"
  target_row "light p99 (ms) ≤ Bun's ($(field ws-bun-light .latency.p99_ms))" "ws-chat-light, ws-bun-light" "$(field ws-chat-light .latency.p99_ms)" "<=" "$(field ws-bun-light .latency.p99_ms)" "≤ Bun"
  target_row "light CPU per delivery ÷ Bun's" "ws-chat-light, ws-bun-light" "$(calc 'a / b' "$(field ws-chat-light $CPU 3)" "$(field ws-bun-light $CPU 3)")" "<=" 0.9 "≤ 0.9×"
  light_raw=$(field rawtcp-chat-light-1 $CPU 3)
  target_row "light CPU per delivery ÷ raw TCP one write per frame ($light_raw µs)" "ws-chat-light, rawtcp-chat-light-1" "$(calc 'a / b' "$(field ws-chat-light $CPU 3)" "$light_raw")" "<=" 1.0 "≤ 1.0×"
  target_row "heavy CPU per delivery ÷ Bun's" "ws-chat-heavy, ws-bun-heavy" "$(calc 'a / b' "$(field ws-chat-heavy $CPU 3)" "$(field ws-bun-heavy $CPU 3)")" "<=" 0.5 "≤ 0.5×"
  for count in 6 19; do
    target_row "idle KiB per joined socket at ${count},000 ≤ Bun's ($(field "ws-bun-idle-${count}k" .server.kib_per_connection))" "ws-chat-idle-${count}k, ws-bun-idle-${count}k" \
      "$(field "ws-chat-idle-${count}k" .server.kib_per_connection)" "<=" "$(field "ws-bun-idle-${count}k" .server.kib_per_connection)" "≤ Bun"
  done

  echo
  echo "## rooms-chat beside Node socket.io and Bun"
  echo
  echo "1,000 clients in 10 rooms, 50 senders; light: 500 msg/s in all (50k deliveries/s), heavy: 2,000 msg/s (200k deliveries/s). \"2 instances\": two servers on one private Redis, clients spread over both (Node: @socket.io/redis-adapter). Bun socket.io: the Node peer's app on Bun's own server (uWebSockets) through @socket.io/bun-engine."
  for load in light heavy; do
    table_head
    row "rooms-chat-$load" "rooms-chat, $load"
    row "rooms-node-$load" "Node socket.io, $load"
    row "rooms-bun-$load" "Bun socket.io, $load"
    row "rooms-chat-$load-2" "rooms-chat, 2 instances + Redis, $load"
    row "rooms-node-$load-2" "Node socket.io + redis-adapter, 2 instances, $load"
    row "socketioxide-bare-$load" "bare socketioxide, its own room broadcast (examples/bare_socketioxide.rs), $load"
    row "rawtcp-rooms-$load-1" "raw TCP, one write per frame"
    row "rawtcp-rooms-$load-same" "raw TCP, rooms-chat's writes"
    if [ $load = light ]; then
      rounds_line "rooms-chat:rooms-chat-light" "Node socket.io:rooms-node-light" "Bun socket.io:rooms-bun-light" "bare socketioxide:socketioxide-bare-light" "raw TCP:rawtcp-rooms-light-1"
    fi
  done
  echo
  echo "Clean ceiling (msg/s sent over 10 rooms of 100): rooms-chat $(ceiling_of rooms-chat-ceiling), Node socket.io $(ceiling_of rooms-node-ceiling), Bun socket.io $(ceiling_of rooms-bun-ceiling). Steps:"
  table_head
  for json in "$OUT"/rooms-chat-ceiling-*.json "$OUT"/rooms-node-ceiling-*.json "$OUT"/rooms-bun-ceiling-*.json; do
    [ -e "$json" ] || continue
    run=$(basename "$json" .json); row "$run" "$(field "$run" .rate 0) msg/s"
  done
  table_head
  for shape in 19k-10 15k-100; do
    row "rooms-chat-idle-$shape" "rooms-chat, idle, ${shape%-*} sockets in ${shape#*-} rooms"
    row "socketioxide-bare-idle-$shape" "bare socketioxide (crates/rooms-chat/examples/bare_socketioxide.rs)"
    row "socketioxide-bare-notices-idle-$shape" "bare socketioxide with the contract's join: the members in the ack, user_joined to the room (BARE_NOTICES=1)"
  done
  row rooms-chat-idle-19k-19000 "rooms-chat, idle, 19k sockets in 19k rooms (a room each)"
  row rooms-node-idle-19k-10 "Node socket.io, idle, 19k sockets in 10 rooms"
  row rooms-bun-idle-19k-10 "Bun socket.io, idle, 19k sockets in 10 rooms"
  echo
  echo "Join storm: 2,000 members join one room with 500 handshakes in flight; every member checks the user_joined notices it gets (each later joiner exactly once, in the order every other member saw them)."
  echo
  echo "| server | run | joined | join time s | notices expected | received | missing | out of order | disconnected |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for run in rooms-chat-join-storm rooms-node-join-storm; do
    [ -s "$OUT/$run.json" ] || { echo "| ${run%-join-storm} | \`$run\` | no report | | | | | | |"; continue; }
    jq -r --arg run "$run" '"| \($run | sub("-join-storm$"; "")) | `\($run)` | \(.connected)/\(.planned) | \(.storm.join_secs // null | if . == null then "n/a" else (. * 10 | round / 10) end) | \(.storm.expected // "n/a") | \(.storm.received // "n/a") | \(.storm.missing // "n/a") | \(.storm.out_of_order // "n/a") | \(.storm.disconnected // "n/a") |"' "$OUT/$run.json"
  done
  echo
  echo "### rooms-chat targets"
  echo
  echo "| target | runs | measured | target | verdict |"
  echo "|---|---|---|---|---|"
  light_node=$(field rooms-node-light .latency.p50_ms)
  target_row "light p50 (ms) ≤ Node's + 0.5 ($light_node + 0.5)" "rooms-chat-light, rooms-node-light" "$(field rooms-chat-light .latency.p50_ms)" "<=" "$(calc 'a + 0.5' "$light_node")" "≤ Node + 0.5 ms"
  target_row "light p99 (ms) ≤ Node's ($(field rooms-node-light .latency.p99_ms))" "rooms-chat-light, rooms-node-light" "$(field rooms-chat-light .latency.p99_ms)" "<=" "$(field rooms-node-light .latency.p99_ms)" "≤ Node"
  target_row "light CPU per delivery ÷ Node's" "rooms-chat-light, rooms-node-light" "$(calc 'a / b' "$(field rooms-chat-light $CPU 3)" "$(field rooms-node-light $CPU 3)")" "<=" 0.65 "≤ 0.65×"
  target_row "light CPU per delivery ÷ raw TCP with the same writes" "rooms-chat-light, rawtcp-rooms-light-same" "$(calc 'a / b' "$(field rooms-chat-light $CPU 3)" "$(field rawtcp-rooms-light-same $CPU 3)")" "<=" 1.2 "≤ 1.2×"
  target_row "heavy p99 (ms), 1 instance" rooms-chat-heavy "$(field rooms-chat-heavy .latency.p99_ms)" "<" 30 "< 30 ms"
  target_row "heavy deliveries lost, 1 instance" rooms-chat-heavy "$(field rooms-chat-heavy "$LOST" 0)" "==" 0 "0"
  heavy_raw=$(field rawtcp-rooms-heavy-1 $CPU 3)
  target_row "heavy CPU per delivery ÷ raw TCP one write per frame ($heavy_raw µs), 1 instance" "rooms-chat-heavy, rawtcp-rooms-heavy-1" "$(calc 'a / b' "$(field rooms-chat-heavy $CPU 3)" "$heavy_raw")" "<=" 0.55 "≤ 0.55×"
  target_row "heavy CPU per delivery ÷ raw TCP one write per frame, 2 instances + Redis" "rooms-chat-heavy-2, rawtcp-rooms-heavy-1" "$(calc 'a / b' "$(field rooms-chat-heavy-2 $CPU 3)" "$heavy_raw")" "<=" 0.65 "≤ 0.65×"
  target_row "idle KiB per joined socket above bare socketioxide, 19,000 in 10 rooms" "rooms-chat-idle-19k-10, socketioxide-bare-idle-19k-10" "$(calc 'a - b' "$(field rooms-chat-idle-19k-10 .server.kib_per_connection)" "$(field socketioxide-bare-idle-19k-10 .server.kib_per_connection)")" "<=" 1.5 "≤ 1.5 KiB"
  target_row "idle KiB per joined socket above bare socketioxide, 15,000 in 100 rooms" "rooms-chat-idle-15k-100, socketioxide-bare-idle-15k-100" "$(calc 'a - b' "$(field rooms-chat-idle-15k-100 .server.kib_per_connection)" "$(field socketioxide-bare-idle-15k-100 .server.kib_per_connection)")" "<=" 1.5 "≤ 1.5 KiB"
  target_row "join storm: members disconnected" rooms-chat-join-storm "$(field rooms-chat-join-storm .storm.disconnected 0)" "==" 0 "0"
  target_row "join storm: user_joined missing or out of order" rooms-chat-join-storm "$(field rooms-chat-join-storm '.storm.missing + .storm.out_of_order' 0)" "==" 0 "0"
  light_bun=$(field rooms-bun-light .latency.p50_ms)
  info_row "light p50 (ms) − Bun's ($light_bun)" "rooms-chat-light, rooms-bun-light" "$(calc 'a - b' "$(field rooms-chat-light .latency.p50_ms)" "$light_bun")"
  info_row "light p99 (ms) ÷ Bun's ($(field rooms-bun-light .latency.p99_ms))" "rooms-chat-light, rooms-bun-light" "$(calc 'a / b' "$(field rooms-chat-light .latency.p99_ms)" "$(field rooms-bun-light .latency.p99_ms)")"
  info_row "light CPU per delivery ÷ Bun's" "rooms-chat-light, rooms-bun-light" "$(calc 'a / b' "$(field rooms-chat-light $CPU 3)" "$(field rooms-bun-light $CPU 3)")"
  info_row "heavy CPU per delivery ÷ Bun's, 1 instance" "rooms-chat-heavy, rooms-bun-heavy" "$(calc 'a / b' "$(field rooms-chat-heavy $CPU 3)" "$(field rooms-bun-heavy $CPU 3)")"
  info_row "idle KiB per joined socket ÷ Bun's, 19,000 in 10 rooms" "rooms-chat-idle-19k-10, rooms-bun-idle-19k-10" "$(calc 'a / b' "$(field rooms-chat-idle-19k-10 .server.kib_per_connection)" "$(field rooms-bun-idle-19k-10 .server.kib_per_connection)")"
  echo
  echo "The same ratios for socketioxide alone (\`examples/bare_socketioxide.rs\`: its own room broadcast, one encoding per message, nothing of ours), the floor that rooms-chat's deliveries pass through:"
  echo
  echo "| ratio | rooms-chat | bare socketioxide | target |"
  echo "|---|---|---|---|"
  floor_ratio "light CPU per delivery ÷ Node's" light "$CPU" "$(field rooms-node-light $CPU 3)" "≤ 0.65×"
  floor_ratio "light CPU per delivery ÷ Bun socket.io's" light "$CPU" "$(field rooms-bun-light $CPU 3)" ""
  floor_ratio "light CPU per delivery ÷ raw TCP one write per frame" light "$CPU" "$(field rawtcp-rooms-light-1 $CPU 3)" "≤ 1.2× (against raw TCP with the same writes)"
  floor_ratio "heavy CPU per delivery ÷ raw TCP one write per frame" heavy "$CPU" "$heavy_raw" "≤ 0.55×"
  floor_ratio "heavy CPU per delivery ÷ Bun socket.io's" heavy "$CPU" "$(field rooms-bun-heavy $CPU 3)" ""
  floor_ratio "heavy user CPU per delivery ÷ raw TCP one write per frame (all of it)" heavy '.server.cpu_user_seconds * 1e6 / .deliveries' "$heavy_raw" ""
  for shape in 19k-10 15k-100; do
    echo "| idle KiB per joined socket above bare socketioxide with the contract's join (BARE_NOTICES=1), ${shape%-*} sockets in ${shape#*-} rooms | $(calc 'a - b' "$(field "rooms-chat-idle-$shape" .server.kib_per_connection)" "$(field "socketioxide-bare-notices-idle-$shape" .server.kib_per_connection)") | 0 | |"
  done

  echo
  echo "## sse-stocks beside Flask"
  echo
  echo "10 symbols, TICK_MS=100, every stream subscribed to all of them; the Flask peer as its users run it (Werkzeug's threaded dev server) and the stronger variant (gunicorn, one gevent worker). sse-stocks writes one feed step (10 events) per stream per system call: its cost per event is a tenth of a write's; the raw TCP reference makes the same writes (one 1.3 KB write to each of 1,000 sockets, 10 times a second)."
  for streams in 1k 19k; do
    table_head
    row "sse-stocks-$streams" "sse-stocks, $streams streams"
    row "flask-dev-$streams" "Flask dev server, $streams streams"
    row "flask-gevent-$streams" "Flask on gunicorn + gevent, $streams streams"
  done
  row rawtcp-sse "raw TCP, the same writes as sse-stocks-1k (per write, not per event)"
  [ -s "$OUT/sse-stocks-jitter.json" ] && row sse-stocks-jitter "sse-stocks, jitter"
  echo
  echo "sse-stocks per event at 1,000 streams ÷ the raw reference's per write / 10: $(calc 'a / (b / 10)' "$(field sse-stocks-1k $CPU 3)" "$(field rawtcp-sse $CPU 3)"); CPU per event ÷ gunicorn + gevent's: $(calc 'a / b' "$(field sse-stocks-1k $CPU 3)" "$(field flask-gevent-1k $CPU 3)") at 1,000 streams, $(calc 'a / b' "$(field sse-stocks-19k $CPU 3)" "$(field flask-gevent-19k $CPU 3)") at 19,000."

  if [ -s "$OUT/rooms-chat-jitter.json" ]; then
    echo
    echo "## Jitter (clients cut and back, resuming)"
    table_head
    row rooms-chat-jitter "rooms-chat, 2 instances, jitter"
  fi

  for section in "$OUT"/hooks/*.md; do
    [ -s "$section" ] || continue
    echo
    cat "$section"
  done

  echo
  echo "## RSS steps (idle and stream runs)"
  echo
  for json in "$OUT"/*.json; do
    [ -s "$json" ] || continue
    jq -e '.server.rss_steps | length > 1' "$json" >/dev/null 2>&1 || continue
    # shellcheck disable=SC2016 # the backticks are Markdown
    printf -- '- `%s`: ' "$(basename "$json" .json)"
    jq -r '[.server.rss_before_kib as $b | "0 → \($b) KiB"] + [.server.rss_steps[] | "\(.connections) → \(.rss_kib) KiB"] | join(", ")' "$json"
  done
  echo
  echo "## Exact commands"
  echo
  echo "Paths are relative to the repository. Each run waited (at most ${QUIET_WAIT}s) for the 1-minute load average to fall under $(nproc)/2."
  for command in "$OUT"/*.command; do
    [ -f "$command" ] || continue
    run=$(basename "$command" .command)
    echo
    echo "### $run"
    echo
    echo "load average at start: $(cat "$OUT/$run.load" 2>/dev/null)"
    if [ -s "$OUT/$run.json" ] && [ "$(jq -r '.first_error // empty' "$OUT/$run.json")" != "" ]; then
      echo "first client error: \`$(jq -r '.first_error' "$OUT/$run.json" | head -c 300)\`"
    fi
    [ -s "$OUT/$run.json" ] || echo "**no report**: $(tail -n 2 "$OUT/$run.stderr" 2>/dev/null | tr '\n' ' ' | head -c 400)"
    echo
    echo '```'
    cat "$OUT/$run.servers" 2>/dev/null
    cat "$command"
    echo '```'
  done
}

log "writing BENCHMARKS.md"
write_report >BENCHMARKS.md
log "done in $((BENCH_SECONDS / 60)) min: BENCHMARKS.md"
