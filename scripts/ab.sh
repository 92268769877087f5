#!/usr/bin/env bash
# Before and after: two builds of our servers on the standard light and heavy
# shapes of scripts/bench.sh, run alternately (A, B, A, B, ...) so that
# whatever else the machine does falls on both alike. One load generator
# (this tree's) drives both. Prints one line per run and the medians.
#
#   scripts/ab.sh OLD_RELEASE_DIR [NEW_RELEASE_DIR] [REPEATS]
#   # e.g. a worktree of the commit before a refactor:
#   git worktree add /tmp/before de8804c && (cd /tmp/before && cargo build --release)
#   scripts/ab.sh /tmp/before/target/release target/release 3
#   ONLY=ws-chat-light scripts/ab.sh ...   only the shapes whose name contains it
set -euo pipefail

cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n 2,12p "$0"; exit 2; }
OLD=$1
NEW=${2:-target/release}
REPEATS=${3:-3}
WINDOW=${WINDOW:-5}
LOADGEN=$NEW/loadgen
OUT=${CARGO_TARGET_DIR:-target}/ab
mkdir -p "$OUT"
rm -f "$OUT/lines"
command -v jq >/dev/null || { echo "jq is missing: install Debian's jq" >&2; exit 2; }

# shellcheck source=scripts/lib/one-server.sh
source scripts/lib/one-server.sh

# one BUILD-DIR APP RUN LOADGEN-ARGS...: one run of one build; prints its figures.
one() {
  local dir=$1 app=$2 run=$3 port; shift 3
  port=$(free_port)
  env PORT="$port" RUST_LOG=warn MAX_CONNECTIONS_PER_IP=0 HANDSHAKE_RATE=0 MSG_RATE=0 \
    TICK_MS=100 SEED=7 "$dir/$app" >"$OUT/$run.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  timeout 120 "$LOADGEN" "$@" --target "127.0.0.1:$port" --server-pid "$server_pid" \
    --duration "$WINDOW" --label "$run" --json "$OUT/$run.json" >/dev/null 2>&1 || true
  stop_server
  jq -r --arg run "$run" '"\($run) p50 \(.latency.p50_ms) p99 \(.latency.p99_ms) lost \(.messages.lost // 0) cpu_us \(.server.cpu_us_per_delivery)"' \
    "$OUT/$run.json" 2>/dev/null || echo "$run no report"
}

SHAPES=(
  "ws-chat ws-chat-light fanout --proto ws-chat --clients 1000 --senders 20 --rate 80"
  "ws-chat ws-chat-heavy fanout --proto ws-chat --clients 1000 --senders 20 --rate 200"
  "rooms-chat rooms-chat-light fanout --proto rooms-chat --clients 1000 --rooms 10 --senders 50 --rate 500"
  "rooms-chat rooms-chat-heavy fanout --proto rooms-chat --clients 1000 --rooms 10 --senders 50 --rate 2000"
  "sse-stocks sse-stocks-1k streams --clients 1000 --steps 1 --stream-grace 2"
)
for shape in "${SHAPES[@]}"; do
  read -r app name args <<<"$shape"
  [[ $name == *"${ONLY:-}"* ]] || continue
  for ((i = 1; i <= REPEATS; i++)); do
    # shellcheck disable=SC2086 # args is a list of words
    one "$OLD" "$app" "$name-A$i" $args | tee -a "$OUT/lines"
    # shellcheck disable=SC2086
    one "$NEW" "$app" "$name-B$i" $args | tee -a "$OUT/lines"
  done
  for side in A B; do
    grep -E "^${name}-${side}[0-9]+ " "$OUT/lines" | awk -v n="$name" -v s="$side" '
      { p50[NR] = $3; p99[NR] = $5; cpu[NR] = $9 }
      function median(a, k,   i, j, t) {
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return a[int((k + 1) / 2)]
      }
      END { printf "median %s %s (%d runs): p50 %.2f ms p99 %.2f ms cpu %.2f us/delivery\n", n, (s == "A" ? "old" : "new"), NR, median(p50, NR), median(p99, NR), median(cpu, NR) }'
  done
done
rm -f "$OUT/lines"
