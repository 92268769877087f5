#!/usr/bin/env bash
# The standard benchmark set of the three servers (issue 6), run with the
# load generator (crates/loadgen), written to BENCHMARKS.md.
#
#   scripts/bench.sh            the full set (about 25 minutes on a busy 2-core machine)
#   scripts/bench.sh --quick    shorter windows, same shapes (about 8 minutes)
#   scripts/bench.sh --only ws  only the runs whose name contains "ws"
#
# It builds release binaries, starts and stops every server itself (and a
# private redis-server on a free port for the cluster runs), waits for a quiet
# machine before each run (bounded), bounds every run in time, keeps each
# run's JSON report under $TARGET_DIR/bench/, and writes BENCHMARKS.md with
# the figures, the targets, the exact commands and the machine.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release
OUT=$TARGET_DIR/bench
QUICK=0
ONLY=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --only) ONLY=$2; shift ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [ $QUICK = 1 ]; then
  WINDOW=6 JITTER_WINDOW=30 QUIET_WAIT=20 IDLE_STEPS=2
else
  WINDOW=15 JITTER_WINDOW=60 QUIET_WAIT=60 IDLE_STEPS=4
fi

log() { printf '\n==> %s\n' "$*" >&2; }

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

# start_server APP PORT [VAR=VALUE...]: starts a release server, waits for
# /healthz, sets SERVER_PID and appends the launch line to SERVER_LINES.
start_server() {
  local app=$1 port=$2 health=${HEALTH_PATH:-/healthz}; shift 2
  env PORT="$port" RUST_LOG=warn "$@" "$BIN/$app" >>"$OUT/${app##*/}-$port.log" 2>&1 &
  SERVER_PID=$!
  STARTED+=("$SERVER_PID")
  SERVER_LINES+="PORT=$port $* $app"$'\n'
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$port$health" >/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$app did not become healthy on port $port (see $OUT/$app-$port.log)" >&2
  return 1
}

# start_rooms_cluster: a private redis-server and two rooms-chat instances
# on it; sets port_a, port_b, pid_a and pid_b.
start_rooms_cluster() {
  start_redis
  port_a=$(free_port); port_b=$(free_port)
  start_server rooms-chat "$port_a" MSG_RATE=0 "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  pid_a=$SERVER_PID
  start_server rooms-chat "$port_b" MSG_RATE=0 "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  pid_b=$SERVER_PID
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
  echo "loadgen $*" >"$OUT/$name.command"
  echo "$LOAD_AT_START" >"$OUT/$name.load"
  if ! timeout --signal=INT --kill-after=20 "$limit" "$BIN/loadgen" "$@" \
      --label "$name" --json "$OUT/$name.json" 2>"$OUT/$name.stderr"; then
    echo "failed or timed out after ${limit}s" >>"$OUT/$name.stderr"
    log "$name failed: $(tail -n 3 "$OUT/$name.stderr")"
  fi
  grep -v '^\S*\[' "$OUT/$name.stderr" | grep -v ' INFO ' | tail -n 6 >&2 || true
}

# --------------------------------------------------------------- build
log "building release binaries in $TARGET_DIR"
cargo build --release -p ws-chat -p sse-stocks -p rooms-chat -p loadgen 2>&1 | tail -n 3 \
  || { echo "build failed" >&2; exit 1; }
cargo build --release -p rooms-chat --example bare_socketioxide 2>&1 | tail -n 1 \
  || { echo "build failed" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.command "$OUT"/*.servers "$OUT"/*.load "$OUT"/*.stderr "$OUT"/*.log
SERVER_LINES=""
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --------------------------------------------------------------- runs
FANOUT_ROOMS=(--clients 1000 --rooms 10 --senders 50 --rate 2000 --duration "$WINDOW")
FANOUT_CHAT=(--clients 1000 --senders 20 --rate 100 --duration "$WINDOW")

# The raw TCP reference of sse-stocks-streams-1k: one write of one feed step
# (10 events, about 1.3 KB) to each of 1,000 sockets, 10 times a second.
RAW_SSE=(--rooms 1 --clients 1000 --senders 1 --rate 10 --text-bytes 1300 --duration "$WINDOW")

if selected rawtcp; then
  bench rawtcp-rooms 120 rawtcp "${FANOUT_ROOMS[@]}"
  bench rawtcp-chat 120 rawtcp --rooms 1 "${FANOUT_CHAT[@]}"
  bench rawtcp-sse 120 rawtcp "${RAW_SSE[@]}"
fi

if selected ws-chat; then
  port=$(free_port)
  start_server ws-chat "$port" MSG_RATE=0
  bench ws-chat-fanout 180 fanout --proto ws-chat --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" "${FANOUT_CHAT[@]}"
  stop_servers
  # The same with rooms-chat's shorter window: lower latency, more CPU.
  port=$(free_port)
  start_server ws-chat "$port" MSG_RATE=0 WRITE_DELAY_MS=20
  bench ws-chat-fanout-20ms 180 fanout --proto ws-chat --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" "${FANOUT_CHAT[@]}"
  stop_servers
  port=$(free_port)
  start_server ws-chat "$port" MSG_RATE=0
  bench ws-chat-idle-10k 900 idle --proto ws-chat --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" --clients 10000 --steps "$IDLE_STEPS" --duration 5
  stop_servers
fi

if selected sse-stocks; then
  port=$(free_port)
  start_server sse-stocks "$port" TICK_MS=100 SEED=7
  bench sse-stocks-streams-1k 180 streams --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" --clients 1000 --duration "$WINDOW"
  stop_servers
  port=$(free_port)
  start_server sse-stocks "$port" TICK_MS=100 SEED=7
  # The load generator cannot read 1.9 million events a second on the
  # cores it shares with the server: it falls behind, so it keeps reading
  # longer after the window to count what the server wrote in it.
  bench sse-stocks-streams-19k 900 streams --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" --clients 19000 \
    --steps "$IDLE_STEPS" --duration "$WINDOW" --stream-grace 10
  stop_servers
  port=$(free_port)
  start_server sse-stocks "$port" TICK_MS=100 SEED=7
  bench sse-stocks-jitter 300 jitter --proto sse --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" --clients 1000 --duration "$JITTER_WINDOW"
  stop_servers
fi

if selected rooms-chat; then
  port=$(free_port)
  start_server rooms-chat "$port" MSG_RATE=0
  bench rooms-chat-fanout-1 180 fanout --proto rooms-chat --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" "${FANOUT_ROOMS[@]}"
  stop_servers

  start_rooms_cluster
  bench rooms-chat-fanout-2 180 fanout --proto rooms-chat \
    --target "127.0.0.1:$port_a" --target "127.0.0.1:$port_b" \
    --server-pid "$pid_a" --server-pid "$pid_b" "${FANOUT_ROOMS[@]}"
  # Fresh instances, so that the jitter run's RSS figures are its own.
  stop_servers
  start_rooms_cluster
  bench rooms-chat-jitter 300 jitter --proto rooms-chat \
    --target "127.0.0.1:$port_a" --target "127.0.0.1:$port_b" \
    --server-pid "$pid_a" --server-pid "$pid_b" \
    --clients 1000 --rooms 10 --senders 50 --rate 500 --duration "$JITTER_WINDOW"
  stop_servers

  port=$(free_port)
  start_server rooms-chat "$port" MSG_RATE=0
  bench rooms-chat-idle-19k 900 idle --proto rooms-chat --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" --clients 19000 --rooms 10 --steps "$IDLE_STEPS" --duration 5
  stop_servers

  # The floor: socketioxide alone, same buffers, joins answered and nothing else.
  port=$(free_port)
  HEALTH_PATH="/socket.io/?EIO=4&transport=polling" start_server examples/bare_socketioxide "$port"
  bench socketioxide-bare-idle-19k 900 idle --proto rooms-chat --target "127.0.0.1:$port" \
    --server-pid "$SERVER_PID" --clients 19000 --rooms 10 --steps "$IDLE_STEPS" --duration 5
  stop_servers
fi

# --------------------------------------------------------------- report
# field RUN JQ-EXPRESSION [DECIMALS]: a figure of a run, or "n/a".
field() {
  local file="$OUT/$1.json"
  [ -s "$file" ] || { echo "n/a"; return; }
  jq -r --argjson d "${3:-2}" "($2) as \$v | if \$v == null then \"n/a\"
    elif (\$v | type) == \"number\" then (\$v * pow(10; \$d) | round / pow(10; \$d) | tostring)
    else (\$v | tostring) end" "$file" 2>/dev/null || echo "n/a"
}

# verdict VALUE OP LIMIT: "met" / "**missed**" / "not measured".
verdict() {
  [ "$1" = "n/a" ] && { echo "not measured"; return; }
  if awk -v v="$1" -v l="$3" "BEGIN { exit !(v $2 l) }"; then echo "met"; else echo "**missed**"; fi
}

ratio() {
  { [ "$1" = "n/a" ] || [ "$2" = "n/a" ]; } && { echo "n/a"; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

target_row() { # description run measured op limit target-text reference
  printf '| %s | `%s` | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$6" "$(verdict "$3" "$4" "$5")" "$7"
}

write_report() {
  local mode="full" run
  [ "$QUICK" = 1 ] && mode="quick (--quick: ${WINDOW}s windows, ${JITTER_WINDOW}s jitter, $IDLE_STEPS RSS steps)"
  local cpu=.server.cpu_us_per_delivery kib=.server.kib_per_connection
  cat <<HEADER
# Benchmarks

Written by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), mode: $mode,
tree at commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`$( [ -n "$(git status --porcelain 2>/dev/null)" ] && echo " plus uncommitted changes").
Every figure below comes from that run's JSON report (\`$OUT/<run>.json\`);
"n/a" means the run did not produce the figure (see its stderr next to it).

## Machine

| | |
|---|---|
| cores (nproc) | $(nproc) |
| CPU | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') |
| memory | $(free -h | awk '/^Mem:/ { print $2 }') |
| kernel | $(uname -sr) |
| open files (hard limit per process) | $(ulimit -Hn) |

The load generator runs on the same two cores as the servers; only the
servers' CPU (utime + stime of \`/proc/PID/stat\`) is divided by deliveries.

How to read the figures:

- Server CPU is measured from the start of the window to the end of the drain
  (messages) or over the window alone (SSE streams). On loopback, the kernel
  work of the receiving side of TCP runs in the sender's system call, so the
  "sys" part of a server's CPU includes most of the clients' TCP receive cost.
- The cost of a delivery falls when several frames leave in one write, which
  happens more when the machine is busy and sockets fall behind: compare runs
  of one bench.sh invocation with each other (the raw TCP reference ran in the
  same conditions), and mind the load average noted with every command.
- Latency is end to end (sender's clock to receiver's clock, one machine),
  including the load generator's own scheduling delays on the shared cores.
- sse-stocks writes each stream one feed step (10 events) per system call,
  so its cost per event is a tenth of a write's. At light load that write
  costs what the raw TCP reference's does (\`rawtcp-sse\`, same writes to as
  many sockets); at 19,000 streams writes are cheaper per byte.

## Targets

| target | run | measured | target | verdict | Node / Flask / others on this machine |
|---|---|---|---|---|---|
HEADER
  target_row "rooms-chat CPU-µs per delivery, 1 instance" rooms-chat-fanout-1 "$(field rooms-chat-fanout-1 $cpu)" "<=" 2.5 "≤ 2.5" "socket.io 4: 10–16"
  target_row "rooms-chat CPU-µs per delivery, 2 instances + Redis" rooms-chat-fanout-2 "$(field rooms-chat-fanout-2 $cpu)" "<=" 3 "≤ 3" "socket.io 4 + redis-adapter: 13–18"
  target_row "rooms-chat p99 latency (ms) at 2,000 msg/s sent ($(field rooms-chat-fanout-1 .deliveries_per_sec 0) deliveries/s)" rooms-chat-fanout-1 "$(field rooms-chat-fanout-1 .latency.p99_ms)" "<" 50 "< 50 ms at 200k/s" "socket.io: p99 < 100 ms up to ~60k deliveries/s"
  target_row "rooms-chat KiB RSS per idle joined socket" rooms-chat-idle-19k "$(field rooms-chat-idle-19k $kib)" "<=" 8 "≤ 8" "socket.io 14–31 KB; socketioxide 0.18.4 ~37 KB, Centrifugo ~30 KB, AnyCable Pro 19 KB (published)"
  target_row "the floor: bare socketioxide 0.18, KiB RSS per idle joined socket (examples/bare_socketioxide.rs)" socketioxide-bare-idle-19k "$(field socketioxide-bare-idle-19k $kib)" "<=" 8 "≤ 8" "rooms-chat's own share: $(awk -v a="$(field rooms-chat-idle-19k $kib)" -v b="$(field socketioxide-bare-idle-19k $kib)" 'BEGIN { if (b + 0 > 0) printf "%.1f KiB", a - b; else print "n/a" }')"
  target_row "rooms-chat idle sockets held by one instance" rooms-chat-idle-19k "$(field rooms-chat-idle-19k .connected 0)" ">=" 19000 "19,000" ""
  target_row "ws-chat CPU-µs per delivery (WRITE_DELAY_MS=50, the default; p50 $(field ws-chat-fanout .latency.p50_ms 1) ms)" ws-chat-fanout "$(field ws-chat-fanout $cpu)" "<=" 1.8 "≤ 1.8" "Node ws: 8.6–9.5 (clean up to ~80k deliveries/s)"
  target_row "ws-chat CPU-µs per delivery with WRITE_DELAY_MS=20 (p50 $(field ws-chat-fanout-20ms .latency.p50_ms 1) ms)" ws-chat-fanout-20ms "$(field ws-chat-fanout-20ms $cpu)" "<=" 1.8 "≤ 1.8" ""
  target_row "ws-chat KiB RSS per idle joined socket at 10k" ws-chat-idle-10k "$(field ws-chat-idle-10k $kib)" "<=" 8 "≤ 8" "Node ws: 22.7 KB"
  target_row "sse-stocks CPU-µs per event (19,000 streams × 10 symbols, TICK_MS=100)" sse-stocks-streams-19k "$(field sse-stocks-streams-19k $cpu 3)" "<=" 0.6 "≤ 0.6" "Flask dev server 34–70 (stops near 800 streams); gunicorn+gevent 11.5–13"
  target_row "sse-stocks CPU-µs per event, light load (1,000 streams × 10 symbols)" sse-stocks-streams-1k "$(field sse-stocks-streams-1k $cpu 3)" "<=" 0.6 "≤ 0.6" "raw TCP, same writes: $(field rawtcp-sse $cpu 2) µs per write = $(awk -v c="$(field rawtcp-sse $cpu 3)" 'BEGIN { if (c + 0 > 0) printf "%.3f", c / 10; else print "n/a" }') per event"
  target_row "sse-stocks concurrent streams at TICK_MS=100 (10 symbols each)" sse-stocks-streams-19k "$(field sse-stocks-streams-19k .connected 0)" ">=" 19000 "19,000" ""
  target_row "sse-stocks KiB RSS per stream (at 19,000)" sse-stocks-streams-19k "$(field sse-stocks-streams-19k $kib)" "<=" 8 "≤ 8" "Flask: 25–49 KB"
  target_row "rooms-chat jitter delivery (%), 1,000 clients over 2 instances" rooms-chat-jitter "$(field rooms-chat-jitter .delivery_rate_pct 3)" ">=" 100 "100 %" "socket.io 84.55 %, AnyCable 100 % (published run)"
  target_row "sse-stocks jitter delivery (%)" sse-stocks-jitter "$(field sse-stocks-jitter .delivery_rate_pct 3)" ">=" 100 "100 %" ""
  target_row "rooms-chat cost ÷ raw TCP fan-out, same shape" "rooms-chat-fanout-1 / rawtcp-rooms" "$(ratio "$(field rooms-chat-fanout-1 $cpu)" "$(field rawtcp-rooms $cpu)")" "<=" 2 "≤ 2×" ""
  target_row "ws-chat cost ÷ raw TCP fan-out, same shape" "ws-chat-fanout / rawtcp-chat" "$(ratio "$(field ws-chat-fanout $cpu)" "$(field rawtcp-chat $cpu)")" "<=" 2 "≤ 2×" ""
  target_row "sse-stocks cost per write ÷ raw TCP, same writes" "sse-stocks-streams-1k × 10 / rawtcp-sse" "$(ratio "$(awk -v c="$(field sse-stocks-streams-1k $cpu 3)" 'BEGIN { if (c + 0 > 0) print c * 10; else print "n/a" }')" "$(field rawtcp-sse $cpu)")" "<=" 2 "≤ 2×" ""
  cat <<TABLE

## All runs

Messages: sent / accepted by the server (acked) / deliveries expected (accepted × room members) /
received exactly once / lost / duplicates / out of order (per sender). SSE: a reference stream
per load generator process (never cut, all symbols) defines the ticks every stream should get.

| run | connected | sent | accepted | expected | received | lost | dup | out of order | delivery % | p50 ms | p99 ms | max ms | deliveries/s | server CPU s | CPU-µs/delivery | RSS before → after MiB | KiB/conn | slope KiB/conn | GiB at 1M |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
TABLE
  for json in "$OUT"/*.json; do
    [ -s "$json" ] || continue
    run=$(basename "$json" .json)
    jq -r --arg run "$run" '
      def n(d): if . == null then "n/a" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
      (.messages // {}) as $m | (.streams // {}) as $s | (.server // {}) as $v |
      "| \($run) | \(.connected)/\(.planned) | \($m.sent // "–") | \($m.accepted // "–") | \($m.expected // $s.expected // "–") | \($m.received // $s.received // "–") | \($m.lost // $s.lost // "–") | \($m.duplicates // $s.duplicates // "–") | \($m.out_of_order // $s.out_of_order // "–") | \(.delivery_rate_pct | n(3)) | \(.latency.p50_ms | n(2)) | \(.latency.p99_ms | n(2)) | \(.latency.max_ms | n(2)) | \(.deliveries_per_sec | n(0)) | \($v.cpu_seconds | n(2)) = \($v.cpu_user_seconds | n(2)) user + \($v.cpu_system_seconds | n(2)) sys (\($v.cpu_cores | n(2)) cores) | \($v.cpu_us_per_delivery | n(3)) | \(($v.rss_before_kib // null) | if . == null then "n/a" else (. / 1024 | n(1)) end) → \(($v.rss_after_kib // null) | if . == null then "n/a" else (. / 1024 | n(1)) end) | \($v.kib_per_connection | n(2)) | \($v.slope_kib_per_connection | n(2)) | \($v.projected_gib_at_1m | n(2)) |"
    ' "$json"
  done
  echo
  echo "## RSS steps (idle and stream runs)"
  echo
  for json in "$OUT"/*.json; do
    [ -s "$json" ] || continue
    jq -e '.server.rss_steps | length > 1' "$json" >/dev/null 2>&1 || continue
    printf -- '- `%s`: ' "$(basename "$json" .json)"
    jq -r '[.server.rss_before_kib as $b | "0 → \($b) KiB"] + [.server.rss_steps[] | "\(.connections) → \(.rss_kib) KiB"] | join(", ")' "$json"
  done
  echo
  echo "## Exact commands"
  echo
  echo "Binaries: \`$BIN\`. Each run waited (at most ${QUIET_WAIT}s) for the 1-minute load average to fall under $(nproc)/2."
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
# wire-costs hook (issue 14): README "The three techniques, measured" from these reports.
"$ROOT/scripts/wire-costs.sh" || log "wire-costs.sh failed: README's techniques table not rewritten"
log "done: BENCHMARKS.md"
