#!/usr/bin/env bash
# Does adding a Redis shard add capacity?
#
#   scripts/shards.sh            one Redis, then a 3-master Redis Cluster,
#                                each behind 2 and then 4 rooms-chat instances
#   QUICK=1 scripts/shards.sh    shorter windows
#
# Every shape gets the same load from the load generator: 1,000 clients in
# 100 rooms (rooms spread over the shards by their hash tag), clients spread
# over the instances, 100 senders, 2,000 room messages a second in all. Each
# master's CPU comes from its own `INFO cpu` and its script calls from
# `INFO commandstats` (after `CONFIG RESETSTAT`), so the table shows how the
# Redis work of one room message spreads: with one Redis the busiest node
# does all of it; with three masters, about a third. The busiest master's CPU
# per room message bounds the rate the Redis side can carry (one core per
# master), which is the capacity a shard adds.
#
# Instances and Redis come from scripts/scale.sh (REDIS_CLUSTER=3 for the
# cluster, REDIS_PRIVATE=1 for one private redis-server). Writes
# $OUT/shards-*.json (the load generator's reports) and, when run by
# scripts/bench.sh, the section $OUT/hooks/shards.md of BENCHMARKS.md.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET_DIR/release}
OUT=${OUT:-$TARGET_DIR/bench}
RUN_DIR=$TARGET_DIR/shards
QUICK=${QUICK:-0}
[ "$QUICK" = 1 ] && WINDOW=5 || WINDOW=15
CLIENTS=1000 ROOMS=100 SENDERS=100 RATE=2000
mkdir -p "$OUT" "$RUN_DIR" "$OUT/hooks"

command -v redis-cli >/dev/null || { echo "redis-cli is missing: install Debian's redis-tools" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is missing: install Debian's jq" >&2; exit 2; }
if [ ! -x "$BIN/rooms-chat" ] || [ ! -x "$BIN/loadgen" ]; then
  cargo build --release -q -p rooms-chat -p loadgen
fi

log() { printf '\n==> %s\n' "$*" >&2; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port_from() {
  local port=$1
  while listening "$port"; do port=$((port + 1)); done
  echo "$port"
}

scale_pid=
stop_shape() {
  # scale.sh drains its instances and stops the Redis it started on TERM.
  if [ -n "$scale_pid" ]; then
    kill -TERM "$scale_pid" 2>/dev/null || true
    wait "$scale_pid" 2>/dev/null || true
    scale_pid=
  fi
}
trap stop_shape EXIT

# redis_cpu PORT: seconds of CPU (user + system) the Redis on PORT has used.
redis_cpu() {
  redis-cli -p "$1" info cpu | tr -d '\r' \
    | awk -F: '$1 == "used_cpu_user" || $1 == "used_cpu_sys" { total += $2 } END { printf "%.4f", total }'
}

# script_calls PORT: EVALSHA calls on PORT since the last CONFIG RESETSTAT.
script_calls() {
  redis-cli -p "$1" info commandstats | tr -d '\r' \
    | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0
}

ROWS=""
# run_shape NAME MASTERS INSTANCES: one measured run; appends a table row.
run_shape() {
  local name=$1 masters=$2 instances=$3
  local base ports=() line
  base=$(free_port_from 34100)
  log "$name: $instances rooms-chat instance(s) on $([ "$masters" = 1 ] && echo one Redis || echo "a $masters-master Redis Cluster")"
  # scale.sh starts the Redis too: a private one, or a private cluster.
  if [ "$masters" = 1 ]; then
    export REDIS_PRIVATE=1
    unset REDIS_CLUSTER REDIS_URL
  else
    export REDIS_CLUSTER=$masters
    unset REDIS_PRIVATE REDIS_URL
  fi
  # One machine plays every client: no per-address limits; no message rate
  # limit per client either (the senders send 20 a second each).
  MAX_CONNECTIONS_PER_IP=0 HANDSHAKE_RATE=0 MSG_RATE=0 RUST_LOG=warn SKIP_BUILD=1 \
    CARGO_TARGET_DIR=$TARGET_DIR "$ROOT/scripts/scale.sh" "$instances" "$base" \
    >"$RUN_DIR/$name.scale.log" 2>&1 &
  scale_pid=$!
  for _ in $(seq 600); do
    grep -q 'Ctrl-C stops them all' "$RUN_DIR/$name.scale.log" && break
    kill -0 "$scale_pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q 'Ctrl-C stops them all' "$RUN_DIR/$name.scale.log" \
    || { echo "scale.sh did not start $name; see $RUN_DIR/$name.scale.log" >&2; stop_shape; return 1; }
  line=$(grep -o 'redis\(-cluster\)\?://[^ ]*' "$RUN_DIR/$name.scale.log" | head -n 1)
  mapfile -t ports < <(grep -o '127\.0\.0\.1:[0-9]*' <<<"$line" | cut -d: -f2)
  local targets=() pids=()
  for ((i = 0; i < instances; i++)); do targets+=(--target "127.0.0.1:$((base + i))"); done
  mapfile -t pids < <(grep -o 'pid [0-9]*' "$RUN_DIR/$name.scale.log" | awk '{ print $2 }')
  local pid_args=()
  for pid in "${pids[@]}"; do pid_args+=(--server-pid "$pid"); done

  local cpu_before=() cpu_after=() calls=()
  for port in "${ports[@]}"; do
    redis-cli -p "$port" config resetstat >/dev/null
    cpu_before+=("$(redis_cpu "$port")")
  done
  timeout 300 "$BIN/loadgen" fanout "${targets[@]}" "${pid_args[@]}" --proto rooms-chat \
    --clients "$CLIENTS" --rooms "$ROOMS" --senders "$SENDERS" --rate "$RATE" --duration "$WINDOW" \
    --label "$name" --json "$OUT/shards-$name.json" >&2 || log "$name: the load generator failed"
  for port in "${ports[@]}"; do
    cpu_after+=("$(redis_cpu "$port")")
    calls+=("$(script_calls "$port")")
  done
  stop_shape

  local report=$OUT/shards-$name.json
  [ -s "$report" ] || { ROWS+="| $name | no report |"$'\n'; return; }
  local per_master="" busiest=0 total_cpu=0 share
  for ((i = 0; i < ${#ports[@]}; i++)); do
    local used
    used=$(awk -v a="${cpu_before[$i]}" -v b="${cpu_after[$i]}" 'BEGIN { printf "%.3f", b - a }')
    total_cpu=$(awk -v t="$total_cpu" -v u="$used" 'BEGIN { print t + u }')
    busiest=$(awk -v m="$busiest" -v u="$used" 'BEGIN { print (u > m) ? u : m }')
    per_master+="${calls[$i]} / ${used} s, "
  done
  share=$(awk -v m="$busiest" -v t="$total_cpu" 'BEGIN { if (t > 0) printf "%.0f %%", 100 * m / t; else print "n/a" }')
  ROWS+=$(jq -r --arg name "$name" --arg masters "$masters" --arg instances "$instances" \
    --arg per_master "${per_master%, }" --arg share "$share" \
    --argjson busiest "$busiest" --argjson total "$total_cpu" '
    def r(d): if . == null then "n/a" else (. * pow(10; d) | round / pow(10; d)) end;
    (.messages.sent) as $sent
    | "| \($name) | \($masters) | \($instances) | \(.messages.received)/\(.messages.expected) | \(.messages.lost) | \(.latency.p50_ms | r(1)) / \(.latency.p99_ms | r(1)) | \(.server.cpu_us_per_delivery | r(2)) | \(if $sent > 0 then ($total * 1e6 / $sent | r(1)) else "n/a" end) | \(if $sent > 0 then ($busiest * 1e6 / $sent | r(1)) else "n/a" end) | \($share) | \(if $busiest > 0 then ($sent / $busiest | floor) else "n/a" end) | \($per_master) |"' \
    "$report")$'\n'
}

run_shape one-redis-2 1 2
run_shape cluster3-2 3 2
run_shape one-redis-4 1 4
run_shape cluster3-4 3 4

{
  echo "## Redis shards: does a shard add capacity?"
  echo
  echo "\`scripts/shards.sh\`: $CLIENTS clients in $ROOMS rooms, $SENDERS senders, $RATE room messages/s in all for ${WINDOW} s,"
  echo "the clients spread over the instances. Redis CPU is each node's own \`INFO cpu\` over the run (joins and"
  echo "heartbeats included); script calls are \`EVALSHA\` from \`INFO commandstats\`. \"Busiest master's ceiling\" is"
  echo "room messages per second of that master's CPU: the rate at which its one core would be full."
  echo
  echo "| run | masters | instances | deliveries | lost | p50 / p99 ms | instances' CPU-µs per delivery | Redis CPU-µs per room message, all nodes | the same, busiest node | busiest node's share | busiest node's ceiling (msg/s) | per node: script calls / CPU |"
  echo "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
  printf '%s' "$ROWS"
} | tee "$OUT/hooks/shards.md"
