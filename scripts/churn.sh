#!/usr/bin/env bash
# Churn without leaks: for each of the three release servers, rounds of
# clients that connect, join, talk, leave and disconnect (a third with a TCP
# reset, on rooms-chat half over HTTP long-polling), then the server's open
# descriptors, live tokio tasks and RSS against the baseline taken after a
# warm-up round (`loadgen churn`; the bound is in
# crates/loadgen/src/scenario/churn.rs). Prints a table per server and
# writes target/churn/<app>.json; exits non-zero if a round stays above the
# bound or more than 1 % of the clients failed.
#
#   scripts/churn.sh                      # 5 rounds of 300 clients
#   ROUNDS=10 CLIENTS=1000 scripts/churn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
CLIENTS=${CLIENTS:-300}
TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}
BIN=$TARGET_DIR/release
# Run by scripts/bench.sh (OUT set): the tables also go to its report.
SECTION=${OUT:+$OUT/hooks/churn.md}
OUT=$TARGET_DIR/churn
mkdir -p "$OUT"
if [ -n "$SECTION" ]; then
  mkdir -p "$(dirname "$SECTION")"
  {
    echo "## Churn without leaks"
    echo
    echo "\`scripts/churn.sh\`: $ROUNDS rounds of $CLIENTS clients per server that connect, join, talk, leave and"
    echo "disconnect (a third with a TCP reset; on rooms-chat half over HTTP long-polling). After each round, the"
    echo "server's open descriptors, live tokio tasks and RSS against the baseline (the bound is in"
    echo "\`crates/loadgen/src/scenario/churn.rs\`)."
    echo
  } >"$SECTION"
fi

cargo build --release -q -p ws-chat -p sse-stocks -p rooms-chat -p loadgen

# shellcheck source=scripts/lib/one-server.sh
source scripts/lib/one-server.sh

failed=0
for app in ws-chat rooms-chat sse-stocks; do
  proto=$app
  [ "$app" = sse-stocks ] && proto=sse
  port=$(free_port)
  # One machine plays every client: no per-address limits. Short pings, so
  # that a client gone with a reset is noticed within seconds.
  env PORT="$port" RUST_LOG=warn MAX_CONNECTIONS_PER_IP=0 HANDSHAKE_RATE=0 \
    PING_MS=2000 PING_INTERVAL_MS=2000 PING_TIMEOUT_MS=3000 TICK_MS=100 \
    "$BIN/$app" >"$OUT/$app.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "==> churn: $app, $ROUNDS rounds of $CLIENTS clients"
  if ! "$BIN/loadgen" churn --proto "$proto" --target "127.0.0.1:$port" \
      --server-pid "$server_pid" --clients "$CLIENTS" --steps "$ROUNDS" \
      --label "churn $app" --json "$OUT/$app.json" 2>&1 | tee "$OUT/$app.table"; then
    failed=$((failed + 1))
  fi
  if [ -n "$SECTION" ]; then
    { echo '```'; cat "$OUT/$app.table"; echo '```'; echo; } >>"$SECTION"
  fi
  stop_server
done
if [ "$failed" -gt 0 ]; then
  echo "churn: $failed server(s) did not return to their baseline" >&2
  exit 1
fi
echo "churn: every round of every server returned to its baseline (target/churn/*.json)"
