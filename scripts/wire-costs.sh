#!/usr/bin/env bash
# Regenerates the README table "The three techniques, measured".
#
#   scripts/wire-costs.sh           measure with the release binaries, rewrite README.md
#   scripts/wire-costs.sh --print   measure and print the table, README.md untouched
#
# The bytes on the wire, handshake and reconnect figures are measured now, by
# tests/tools/wire-costs.mjs, against each release server through a relay
# that keeps every byte; latency too, at light load. Server CPU per delivery
# and memory per connection come from the JSON reports scripts/bench.sh left
# in $TARGET_DIR/bench/ ("n/a" for a run it has not made). bench.sh calls
# this at its end; run alone it takes a few seconds once the binaries exist.
# The table goes between the markers wire-costs:begin and wire-costs:end.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export BIN_DIR=${BIN_DIR:-$TARGET_DIR/release}
OUT=$TARGET_DIR/bench/wire # beside the bench reports, out of their *.json
REPORTS=$TARGET_DIR/bench
PRINT=0
case ${1:-} in
  --print) PRINT=1 ;;
  "") ;;
  -h|--help) sed -n 2,13p "$0"; exit 0 ;;
  *) echo "unknown option $1" >&2; exit 2 ;;
esac

for app in ws-chat sse-stocks rooms-chat; do
  if [ ! -x "$BIN_DIR/$app" ]; then
    echo "==> building release binaries (missing $BIN_DIR/$app)" >&2
    cargo build --release -p ws-chat -p sse-stocks -p rooms-chat >&2
    break
  fi
done
[ -d tests/node_modules ] || (cd tests && npm ci --no-audit --no-fund --loglevel=error >&2)
command -v jq >/dev/null || { echo "jq is missing (apt-get install jq)" >&2; exit 2; }

mkdir -p "$OUT"
node tests/tools/wire-costs.mjs >"$OUT/wire-costs.json"

# bench RUN JQ-EXPRESSION [UNIT]: a figure from a bench report, named, or n/a.
bench() {
  local run=$1 expression=$2 unit=${3:-} file="$REPORTS/$1.json"
  [ -s "$file" ] || { echo "n/a"; return; }
  jq -r --arg unit "$unit" "($expression) as \$v | if \$v == null then \"n/a\" else (\$v * 100 | round / 100 | tostring) + \$unit + \" (\`$run\`)\" end" "$file" 2>/dev/null || echo "n/a"
}
cpu=.server.cpu_us_per_delivery
kib=.server.kib_per_connection

table() {
  local costs="$OUT/wire-costs.json"
  w() { jq -r "$1" "$costs"; }
  echo "Measured by \`scripts/wire-costs.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`, binaries in \`${BIN_DIR#"$ROOT"/}\`."
  echo "Bytes are TCP payload as it travelled (HTTP heads, WebSocket framing, SSE lines, Engine.IO packets)"
  echo "through a byte-counting relay, with Node clients (a browser adds some 400-600 B of its own request headers)."
  echo "A chat message is \"$(w '."ws-chat".message.raw | fromjson | .text')\" ($(w '."ws-chat".message.text') B of text); a tick is one symbol's quote."
  echo "CPU and memory come from the \`scripts/bench.sh\` reports named in each cell (see [BENCHMARKS.md](BENCHMARKS.md)); latency is the median of 25 deliveries, one sender, one receiver."
  echo
  echo "| | ws-chat (WebSocket) | sse-stocks (Server-Sent Events) | rooms-chat (Socket.IO) | why they differ |"
  echo "|---|---|---|---|---|"
  local ws='."ws-chat"' sse='."sse-stocks"' rooms='."rooms-chat"'
  local ms='if . < 1 then "under 1 ms" else "\(.) ms" end' # SSE: whole milliseconds of the tick's ts
  echo "| bytes per chat message or tick, to one receiver | $(w "$ws.message | \"\(.wire) B: \(.payload) B JSON + \(.wire - .payload) B frame header\"") | $(w "$sse.message | \"\(.wire) B: \(.payload) B JSON + \(.wire - .payload) B of id:, event:, data: and line ends\"") | $(w "$rooms.message | \"\(.wire) B: \(.payload) B JSON + \(.wire - .payload) B of 42[\\\"message\\\",…] and frame header\"") | A WebSocket frame adds 2 to 14 bytes to any payload; SSE is text, so every event repeats its field names and an id; Socket.IO wraps each event in a packet type and a JSON array that names the event (ws-chat's JSON is larger because it carries the type and the sender's id). |"
  echo "| handshake: requests and bytes to the first message | $(w "$ws.handshake | \"\(.requests) request (the upgrade), \(.up) B ↑ / \(.down) B ↓ to the welcome\"") | $(w "$sse.handshake | \"\(.requests) request, \(.up) B ↑ / \(.down) B ↓ to the snapshot\"") | $(w "def r: if .min == .max then \"\(.min)\" else \"\(.min)–\(.max)\" end; $rooms.handshake | \"\(.requests | r) requests (polling, then the upgrade), \(.up | r) B ↑ / \(.down | r) B ↓ to the join ack (range of \(.trials) tries); WebSocket only: \(.websocket_only.requests) request, \(.websocket_only.up) B ↑ / \(.websocket_only.down) B ↓\"") | WebSocket and SSE need one HTTP request; socket.io-client by default opens with HTTP long-polling (the open and connect packets, each a request or two) and then probes and upgrades to a WebSocket, so it works where WebSocket is blocked but pays several requests first. |"
  echo "| reconnect after missing $(w "$ws.reconnect.missed"): cost, and what it resumes | $(w "$ws.reconnect | \"\(.requests) request, \(.up) B ↑ / \(.down) B ↓; the name back (clientId) and the last \(.resumed) messages, seen ones included\"") | $(w "$sse.reconnect | \"\(.requests) request, \(.up) B ↑ / \(.down) B ↓; exactly the \(.resumed) missed ticks (Last-Event-ID), \(if .snapshot then \"and a snapshot\" else \"no snapshot\" end)\"") | $(w "$rooms.reconnect | \"\(.requests) requests, \(.up) B ↑ / \(.down) B ↓; the name back (clientId) and exactly the \(.resumed) missed messages (join with since)\"") | Resuming is built into SSE (the browser sends Last-Event-ID by itself); with WebSocket and Socket.IO the app must do it: ws-chat resends its recent history, rooms-chat asks for what came after the last id it saw. |"
  echo "| server CPU-µs per delivery (about 1,000 connections) | $(bench ws-chat-light $cpu) | $(bench sse-stocks-1k $cpu " per event") | $(bench rooms-chat-light $cpu) | A delivery is mostly a system call: sse-stocks writes a stream's whole feed step (all its symbols) in one, the chats write a frame at once and gather only what comes while a socket is busy (WRITE_DELAY_MS); Socket.IO adds its packet encoding and room lookups. |"
  echo "| server memory per connection (KiB RSS; idle chat sockets, live SSE streams) | $(bench ws-chat-idle-10k $kib) | $(bench sse-stocks-19k $kib) | $(bench rooms-chat-idle-19k-10 $kib) | An SSE stream only needs a socket to write to and the id it has reached; a WebSocket also keeps a reader and its buffers; a Socket.IO socket carries an Engine.IO session (heartbeat, packet buffers) and its rooms on top of its WebSocket. |"
  echo "| latency at light load (median) | $(w "$ws.latency_ms | $ms") | $(w "$sse.latency_ms | $ms") from the tick's timestamp | $(w "$rooms.latency_ms | $ms") | All three write as soon as there is something to send: the chats gather frames (WRITE_DELAY_MS) only for a socket that is busy or wrote just before, so light load waits for nothing; sse-stocks writes each feed step as soon as it is made. |"
}

if [ $PRINT = 1 ]; then
  table
  exit 0
fi

BEGIN='<!-- wire-costs:begin (written by scripts/wire-costs.sh: do not edit by hand) -->'
END='<!-- wire-costs:end -->'
if ! grep -qF "$BEGIN" README.md || ! grep -qF "$END" README.md; then
  echo "README.md lacks the wire-costs markers" >&2
  exit 1
fi
table >"$OUT/wire-costs.md"
awk -v begin="$BEGIN" -v end="$END" -v table="$OUT/wire-costs.md" '
  $0 == begin { print; while ((getline line < table) > 0) print line; skipping = 1; next }
  $0 == end { skipping = 0 }
  !skipping { print }
' README.md >"$OUT/README.md.new"
mv "$OUT/README.md.new" README.md
echo "==> README.md: \"The three techniques, measured\" rewritten" >&2
