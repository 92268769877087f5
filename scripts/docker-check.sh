#!/usr/bin/env bash
# End-to-end check of docker/: builds the image, starts docker/compose.yaml
# with every profile, and does through the published ports (127.0.0.1 only)
# what a user does: the page and /healthz through nginx, the official
# Socket.IO client on both transports and WebSocket-only, a message across
# clients, `docker kill` of the instance this machine's clients are on (they
# must be back within a few seconds with nothing lost), nginx restarted while
# an instance is down, the `extras` apps (ws-chat, sse-stocks) and the
# `cluster` profile; then takes it all down (containers, network, volumes).
#
#   scripts/docker-check.sh          # about 4 min on 2 cores with a cold cache
#
# Needs a Docker engine, Compose (v2 `docker compose` or v1 `docker-compose`),
# node and npm (the official clients come from tests/, `npm ci` there if
# missing), curl. DOCKER=/path/to/docker picks the client (default: Debian's
# /usr/bin/docker if present, as another client earlier in PATH may lack
# buildx); PROJECT names the compose project (default realtime-trio-check).
# Slow (a release build and a dozen containers): not part of scripts/test.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PROJECT=${PROJECT:-realtime-trio-check}
if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
# The node side kills the instance with the same client.
export DOCKER DOCKER_BUILDKIT=1
IMAGE=realtime-trio:latest
NGINX=http://127.0.0.1:8080
PORTS=(8080 8081 5000 3001 3002)

if "$DOCKER" compose version >/dev/null 2>&1; then
  COMPOSE=("$DOCKER" compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
else
  echo "neither '$DOCKER compose' nor docker-compose is installed" >&2
  exit 1
fi
# Every profile, so that `down` also removes the extras and the cluster.
COMPOSE+=(-f docker/compose.yaml -p "$PROJECT" --profile extras --profile cluster)

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
passed=()
pass() { passed+=("$1"); echo "  ok: $1"; }

for tool in curl node npm; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
"$DOCKER" info >/dev/null 2>&1 || fail "no Docker engine answers '$DOCKER info'"
for port in "${PORTS[@]}"; do
  # Another stack on these ports would answer in place of this one.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "127.0.0.1:$port is already in use (another compose stack? '${COMPOSE[*]} down')"
  fi
done
if [ ! -d tests/node_modules/socket.io-client ]; then
  step "npm ci in tests/ (the official clients)"
  (cd tests && npm ci --no-audit --no-fund)
fi

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "-- last log lines of the stack:" >&2
    "${COMPOSE[@]}" logs --no-color --tail 15 >&2 2>/dev/null || true
  fi
  step "down"
  "${COMPOSE[@]}" down --volumes --remove-orphans >/dev/null 2>&1 || true
  exit "$status"
}
trap cleanup EXIT

step "build $IMAGE"
started=$SECONDS
"$DOCKER" build -q -f docker/Dockerfile -t "$IMAGE" . >/dev/null
build_seconds=$((SECONDS - started))
image_mb=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f", $1 / 1e6}')
binaries=$("$DOCKER" run --rm --entrypoint sh "$IMAGE" -c \
  'cd /usr/local/bin && wc -c rooms-chat ws-chat sse-stocks' | awk '$2 != "total" {printf "%s %.1f MB, ", $2, $1 / 1e6}')
echo "  built in ${build_seconds} s; image ${image_mb} MB (${binaries%, })"
pass "image builds"

step "up, every profile"
started=$SECONDS
# --no-build: the image was built just above, by the engine's BuildKit
# (Compose v1 would build without the cache mounts).
"${COMPOSE[@]}" up -d --no-build >/dev/null 2>&1 || { "${COMPOSE[@]}" up -d --no-build; fail "compose up"; }

# Waits until every running container of the project that has a health check
# is healthy (the cluster initialiser has none and exits).
wait_healthy() {
  local deadline=$((SECONDS + $1)) id state waiting
  while :; do
    waiting=()
    # -a: Compose v2 lists only running containers without it, and a
    # container that died must count as not healthy.
    for id in $("${COMPOSE[@]}" ps -a -q); do
      state=$("$DOCKER" inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")
      case $state in
        *" running healthy" | *" running " | *cluster-init*" exited ") ;;
        *) waiting+=("$state") ;;
      esac
    done
    [ ${#waiting[@]} -eq 0 ] && return 0
    [ $SECONDS -lt "$deadline" ] || fail "not healthy after $1 s: ${waiting[*]}"
    sleep 1
  done
}
wait_healthy 120
up_seconds=$((SECONDS - started))
echo "  $("${COMPOSE[@]}" ps -a -q | wc -l) containers up and healthy in ${up_seconds} s"
pass "every service healthy"

step "published ports bind 127.0.0.1 only"
for service in nginx ws-chat sse-stocks rooms-chat-cluster-1 rooms-chat-cluster-2; do
  bindings=$("$DOCKER" port "$("${COMPOSE[@]}" ps -a -q "$service")")
  if grep -qv '127\.0\.0\.1:' <<<"$bindings"; then fail "$service publishes beyond 127.0.0.1: $bindings"; fi
done
pass "ports on 127.0.0.1"

step "the page and /healthz through nginx"
page=$(curl -fsS -m 5 "$NGINX/")
grep -qi '<html' <<<"$page" || fail "GET / is not the page"
health=$(curl -fsS -m 5 "$NGINX/healthz")
if ! grep -q '"status":"ok"' <<<"$health" || ! grep -q '"redis":"up"' <<<"$health"; then fail "/healthz: $health"; fi
echo "  /healthz: $health"
# The app compares a browser's Origin with the Host nginx passes on.
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H 'Origin: http://elsewhere.example' "$NGINX/socket.io/?EIO=4&transport=polling")
[ "$code" = 403 ] || fail "a foreign Origin got $code, not 403"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H 'Origin: http://127.0.0.1:8080' "$NGINX/socket.io/?EIO=4&transport=polling")
[ "$code" = 200 ] || fail "the page's own Origin got $code, not 200"
pass "page, /healthz, Origin check through nginx"

step "logs without colour codes"
if "$DOCKER" logs "$("${COMPOSE[@]}" ps -a -q rooms-chat-1)" 2>&1 | grep -q $'\e\['; then
  fail "rooms-chat-1's log has ANSI escape codes"
fi
pass "plain logs"

step "Socket.IO through nginx: polling with the upgrade, WebSocket only, polling only"
node scripts/lib/docker-check.mjs transports "$NGINX"
pass "both transports, a message across clients"

# instance-id=container-name for the three instances behind nginx (each logs
# its random instance id at start; /healthz names the one that answers).
instances() {
  local service id instance
  for service in rooms-chat-1 rooms-chat-2 rooms-chat-3; do
    id=$("${COMPOSE[@]}" ps -a -q "$service")
    instance=$("$DOCKER" logs "$id" 2>&1 | sed -n 's/.*cluster mode instance="\([0-9a-f]*\)".*/\1/p' | tail -1)
    [ -n "$instance" ] && echo "$instance=$("$DOCKER" inspect -f '{{.Name}}' "$id" | tr -d /)"
  done
}

step "docker kill the instance this machine's clients are on"
mapfile -t pairs < <(instances)
[ ${#pairs[@]} -eq 3 ] || fail "found ${#pairs[@]} instance ids in the logs, not 3"
failover_out=$(node scripts/lib/docker-check.mjs failover "$NGINX" "${pairs[@]}") || { echo "$failover_out"; fail "failover"; }
echo "$failover_out" | grep -v '^failover_seconds='
failover_seconds=$(sed -n 's/^failover_seconds=//p' <<<"$failover_out")
killed=
for service in rooms-chat-1 rooms-chat-2 rooms-chat-3; do
  id=$("${COMPOSE[@]}" ps -a -q "$service")
  [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$id")" = false ] && killed=$service
done
[ -n "$killed" ] || fail "no instance is down after the kill"
# `docker kill` counts as a manual stop: the restart policy leaves it down.
sleep 3
[ "$("$DOCKER" inspect -f '{{.State.Running}}' "$("${COMPOSE[@]}" ps -a -q "$killed")")" = false ] \
  || fail "$killed came back by itself"
pass "failover in ${failover_seconds} s, nothing lost ($killed stays down)"

step "nginx restarted while $killed is down"
"${COMPOSE[@]}" restart nginx >/dev/null 2>&1
sleep 2
[ "$("$DOCKER" inspect -f '{{.State.Running}} {{.State.Restarting}}' "$("${COMPOSE[@]}" ps -a -q nginx)")" = "true false" ] \
  || fail "nginx does not stay up: $("$DOCKER" logs --tail 5 "$("${COMPOSE[@]}" ps -a -q nginx)" 2>&1)"
curl -fsS -m 10 -o /dev/null "$NGINX/" || fail "no page after the nginx restart"
node scripts/lib/docker-check.mjs transports "$NGINX"
pass "nginx starts and serves while an instance is down"

step "compose start $killed"
"${COMPOSE[@]}" start "$killed" >/dev/null 2>&1
wait_healthy 60
node scripts/lib/docker-check.mjs transports "$NGINX"
pass "$killed back and serving"

step "extras: ws-chat on :8081, sse-stocks on :5000"
node scripts/lib/docker-check.mjs ws-chat http://127.0.0.1:8081
node scripts/lib/docker-check.mjs sse-stocks http://127.0.0.1:5000
pass "extras"

step "cluster profile: Redis Cluster, instances on :3001 and :3002"
node scripts/lib/docker-check.mjs cluster http://127.0.0.1:3001 http://127.0.0.1:3002
pass "cluster"

step "summary"
echo "  build: ${build_seconds} s; image: ${image_mb} MB (${binaries%, })"
echo "  up and healthy: ${up_seconds} s; failover after docker kill: ${failover_seconds} s"
echo "  passed ${#passed[@]} checks:"
printf '    %s\n' "${passed[@]}"
