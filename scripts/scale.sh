#!/usr/bin/env bash
# Runs N instances of one app as a cluster on this machine, sharing one Redis.
#
#   scripts/scale.sh N [BASE_PORT]            # N rooms-chat instances from port 3000
#   APP=sse-stocks scripts/scale.sh 2 5000    # the same for another app
#
# Redis: REDIS_CLUSTER=M starts a private Redis Cluster of M masters (M >= 3)
# on free ports, with REDIS_REPLICAS=R replicas each (default 0; with one, a
# killed master's replica takes over within seconds); REDIS_SENTINEL=1
# starts a private master, one replica and three sentinels and passes a
# redis-sentinel:// URL; otherwise uses $REDIS_URL if set, else 127.0.0.1:6379 if a
# Redis answers there (unless REDIS_PRIVATE=1), else starts a private
# redis-server on a free port (data under the run folder).
# Builds the app once in release mode (SKIP_BUILD=1 to reuse the last build),
# starts the instances on consecutive ports with REDIS_URL, waits for their
# /healthz, prints their URLs and log files, and stops everything it started
# on Ctrl-C or SIGTERM. Extra settings pass through the environment
# (MSG_RATE, RUST_LOG, HOST, ...).
set -euo pipefail

usage() {
  echo "usage: [APP=rooms-chat|sse-stocks|ws-chat] $0 N [BASE_PORT]" >&2
  exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
COUNT=$1
APP=${APP:-rooms-chat}
case $APP in
  rooms-chat) DEFAULT_BASE=3000 ;;
  sse-stocks) DEFAULT_BASE=5000 ;;
  ws-chat) DEFAULT_BASE=8080 ;;
  *) echo "unknown APP '$APP'" >&2; usage ;;
esac
BASE_PORT=${2:-$DEFAULT_BASE}
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive number, got '$COUNT'" >&2; usage; }
if ! [[ $BASE_PORT =~ ^[0-9]+$ ]] || [ "$BASE_PORT" -lt 1 ] || [ $((BASE_PORT + COUNT - 1)) -gt 65535 ]; then
  echo "BASE_PORT '$BASE_PORT' does not leave room for $COUNT ports" >&2
  usage
fi

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RUN_DIR=$TARGET_DIR/scale/$APP
HOST=${HOST:-127.0.0.1}
mkdir -p "$RUN_DIR"

log() { printf '[scale] %s\n' "$*"; }

# ---------------------------------------------------------------- cleanup
pids=()
redis_pids=()
stopping=0
# shellcheck disable=SC2317 # called from the traps below
cleanup() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    log "stopping ${#pids[@]} instance(s)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # Graceful drain first; anything still there after 10 s is killed.
    for _ in $(seq 100); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  if [ ${#redis_pids[@]} -gt 0 ]; then
    log "stopping the private redis-server(s) (pid ${redis_pids[*]})"
    kill -TERM "${redis_pids[@]}" 2>/dev/null || true
    wait "${redis_pids[@]}" 2>/dev/null || true
  fi
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

# ---------------------------------------------------------------- helpers
# Whether something accepts TCP connections on host:port.
listening() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Whether a Redis answers PING at a redis:// URL.
redis_answers() {
  local url=$1
  if command -v redis-cli >/dev/null; then
    [ "$(redis-cli -u "$url" ping 2>/dev/null)" = PONG ]
  else
    local rest=${url#*://}
    rest=${rest#*@}
    local hostport=${rest%%/*}
    local host=${hostport%:*} port=${hostport##*:}
    [ "$host" = "$hostport" ] && port=6379
    local reply
    reply=$( (exec 3<>"/dev/tcp/$host/$port" && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3) 2>/dev/null) || return 1
    [[ $reply == +PONG* ]]
  fi
}

http_status() {
  if command -v curl >/dev/null; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true
  else
    local hostport=${1#http://}
    hostport=${hostport%%/*}
    local path=/${1#http://*/}
    (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" \
      && printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3 \
      && timeout 2 head -n 1 <&3 | cut -d' ' -f2) 2>/dev/null || true
  fi
}

# ---------------------------------------------------------------- ports
connect_host=$HOST
[ "$connect_host" = 0.0.0.0 ] && connect_host=127.0.0.1
for ((i = 0; i < COUNT; i++)); do
  port=$((BASE_PORT + i))
  if listening "$connect_host" "$port"; then
    echo "port $port is already in use: pick another BASE_PORT" >&2
    exit 1
  fi
done

# A port on 127.0.0.1 that nothing listens on, from $1 up, not in $taken.
taken=" "
next_free_port() {
  local port=$1
  while listening 127.0.0.1 "$port" || [[ $taken == *" $port "* ]]; do port=$((port + 1)); done
  taken+="$port "
  echo "$port"
}

# ---------------------------------------------------------------- redis
if [ -n "${REDIS_CLUSTER:-}" ]; then
  if ! [[ $REDIS_CLUSTER =~ ^[0-9]+$ ]] || [ "$REDIS_CLUSTER" -lt 3 ]; then
    echo "REDIS_CLUSTER must be a number of masters >= 3, got '$REDIS_CLUSTER'" >&2
    exit 2
  fi
  command -v redis-cli >/dev/null || { echo "redis-cli is missing: install Debian's redis-tools package" >&2; exit 1; }
  REDIS_REPLICAS=${REDIS_REPLICAS:-0}
  [[ $REDIS_REPLICAS =~ ^[0-9]+$ ]] \
    || { echo "REDIS_REPLICAS must be a number of replicas per master, got '$REDIS_REPLICAS'" >&2; exit 2; }
  nodes=()
  # A node that finds an earlier run's config thinks it is in a cluster already.
  rm -f "$RUN_DIR"/nodes-*.conf
  for ((i = 0; i < REDIS_CLUSTER * (1 + REDIS_REPLICAS); i++)); do
    node_port=$(next_free_port $((7100 + i)))
    # The cluster bus port is set explicitly: port + 10000 may be taken.
    bus_port=$(next_free_port $((17100 + i)))
    redis-server --port "$node_port" --cluster-port "$bus_port" --cluster-enabled yes \
      --cluster-config-file "nodes-$node_port.conf" --cluster-require-full-coverage no \
      --cluster-node-timeout 2000 \
      --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$RUN_DIR" --logfile "$RUN_DIR/redis-$node_port.log" &
    redis_pids+=($!)
    nodes+=("127.0.0.1:$node_port")
  done
  for node in "${nodes[@]}"; do
    for _ in $(seq 100); do redis_answers "redis://$node/0" && break; sleep 0.1; done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$REDIS_REPLICAS" --cluster-yes >"$RUN_DIR/cluster-create.log" \
    || { echo "redis-cli --cluster create failed; see $RUN_DIR/cluster-create.log" >&2; exit 1; }
  for _ in $(seq 100); do
    redis-cli -p "${nodes[0]##*:}" cluster info | grep -q 'cluster_state:ok' && break
    sleep 0.1
  done
  REDIS_URL="redis-cluster://${nodes[0]}"
  sep='?'
  for node in "${nodes[@]:1}"; do REDIS_URL+="${sep}node=$node"; sep='&'; done
  log "started a private Redis Cluster of $REDIS_CLUSTER masters, $REDIS_REPLICAS replica(s) each: $REDIS_URL (logs: $RUN_DIR/redis-*.log)"
elif [ "${REDIS_SENTINEL:-0}" = 1 ]; then
  command -v redis-cli >/dev/null || { echo "redis-cli is missing: install Debian's redis-tools package" >&2; exit 1; }
  master_port=$(next_free_port 6390)
  replica_port=$(next_free_port $((master_port + 1)))
  for node_port in "$master_port" "$replica_port"; do
    replica_of=()
    [ "$node_port" = "$replica_port" ] && replica_of=(--replicaof 127.0.0.1 "$master_port")
    redis-server --port "$node_port" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$RUN_DIR" --logfile "$RUN_DIR/redis-$node_port.log" "${replica_of[@]}" &
    redis_pids+=($!)
    for _ in $(seq 100); do redis_answers "redis://127.0.0.1:$node_port/0" && break; sleep 0.1; done
  done
  sentinels=()
  for i in 0 1 2; do
    sentinel_port=$(next_free_port $((26390 + i)))
    # A sentinel rewrites its config file: a fresh one per run.
    cat >"$RUN_DIR/sentinel-$sentinel_port.conf" <<CONF
port $sentinel_port
bind 127.0.0.1
dir $RUN_DIR
logfile $RUN_DIR/sentinel-$sentinel_port.log
sentinel monitor scale 127.0.0.1 $master_port 2
sentinel down-after-milliseconds scale 1000
sentinel failover-timeout scale 10000
CONF
    redis-server "$RUN_DIR/sentinel-$sentinel_port.conf" --sentinel &
    redis_pids+=($!)
    sentinels+=("127.0.0.1:$sentinel_port")
  done
  for sentinel in "${sentinels[@]}"; do
    for _ in $(seq 100); do
      redis-cli -p "${sentinel##*:}" sentinel get-master-addr-by-name scale 2>/dev/null | grep -q "$master_port" && break
      sleep 0.1
    done
  done
  REDIS_URL="redis-sentinel://$(IFS=,; echo "${sentinels[*]}")/scale"
  log "started a private master (port $master_port), its replica (port $replica_port) and 3 sentinels: $REDIS_URL"
elif [ -n "${REDIS_URL:-}" ]; then
  case $REDIS_URL in
    # The sentinels answer for the service, not a PING to the URL.
    redis-sentinel://* | rediss-sentinel://*) ;;
    *) redis_answers "$REDIS_URL" || { echo "REDIS_URL=$REDIS_URL does not answer PING" >&2; exit 1; } ;;
  esac
  log "using Redis at $REDIS_URL (from REDIS_URL)"
elif [ "${REDIS_PRIVATE:-0}" != 1 ] && redis_answers redis://127.0.0.1:6379/0; then
  REDIS_URL=redis://127.0.0.1:6379/0
  log "using the Redis that answers at $REDIS_URL"
else
  command -v redis-server >/dev/null || { echo "no Redis found: install redis-server (Redis >= 7) or set REDIS_URL" >&2; exit 1; }
  redis_port=6380
  while listening 127.0.0.1 "$redis_port"; do redis_port=$((redis_port + 1)); done
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" &
  redis_pids+=($!)
  REDIS_URL=redis://127.0.0.1:$redis_port/0
  for _ in $(seq 100); do redis_answers "$REDIS_URL" && break; sleep 0.1; done
  redis_answers "$REDIS_URL" || { echo "the private redis-server did not start; see $RUN_DIR/redis.log" >&2; exit 1; }
  log "started a private redis-server at $REDIS_URL (log: $RUN_DIR/redis.log)"
fi
export REDIS_URL

# ---------------------------------------------------------------- build
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release -p $APP"
  cargo build --release -p "$APP"
fi
BIN=$TARGET_DIR/release/$APP
[ -x "$BIN" ] || { echo "$BIN is missing (build failed, or SKIP_BUILD=1 without a build)" >&2; exit 1; }

# ---------------------------------------------------------------- instances
for ((i = 0; i < COUNT; i++)); do
  port=$((BASE_PORT + i))
  logfile=$RUN_DIR/$APP-$port.log
  HOST=$HOST PORT=$port RUST_LOG=${RUST_LOG:-info} "$BIN" >"$logfile" 2>&1 &
  pids+=($!)
done

for ((i = 0; i < COUNT; i++)); do
  port=$((BASE_PORT + i))
  healthy=0
  for _ in $(seq 150); do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "instance on port $port exited; last lines of its log:" >&2
      tail -n 20 "$RUN_DIR/$APP-$port.log" >&2
      exit 1
    fi
    [ "$(http_status "http://$connect_host:$port/healthz")" = 200 ] && { healthy=1; break; }
    sleep 0.1
  done
  [ "$healthy" = 1 ] || { echo "instance on port $port is not healthy after 15 s; see $RUN_DIR/$APP-$port.log" >&2; exit 1; }
done

echo
echo "$COUNT $APP instance(s) up, sharing $REDIS_URL:"
for ((i = 0; i < COUNT; i++)); do
  port=$((BASE_PORT + i))
  printf '  http://%s:%s/   pid %-7s log %s\n' "$connect_host" "$port" "${pids[$i]}" "$RUN_DIR/$APP-$port.log"
done
echo "Ctrl-C stops them all."
echo

# Stay in the foreground; report any instance that dies on its own.
declare -A port_of=()
for ((i = 0; i < COUNT; i++)); do port_of[${pids[$i]}]=$((BASE_PORT + i)); done
running=("${pids[@]}")
while [ ${#running[@]} -gt 0 ]; do
  wait -n "${running[@]}" || true
  still=()
  for pid in "${running[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      still+=("$pid")
    else
      log "instance on port ${port_of[$pid]} (pid $pid) has exited; see $RUN_DIR/$APP-${port_of[$pid]}.log"
    fi
  done
  running=("${still[@]}")
done
log "every instance has exited"
exit 1
