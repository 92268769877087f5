// The measuring tool behind README's "The three techniques, measured"
// (tests/tools/wire-costs.mjs): its figures must be consistent with what the
// wire contract says travels, so the generated table cannot drift into
// nonsense unnoticed. Sizes are checked against the framing rules, not
// against fixed numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measureWsChat, measureSseStocks, measureRoomsChat, MISSED, TEXT } from '../tools/wire-costs.mjs';

test('ws-chat: a frame is its JSON plus a 2-byte header; one request to the welcome; history on reconnect', async () => {
  const costs = await measureWsChat();
  const frame = JSON.parse(costs.message.raw);
  assert.equal(frame.text, TEXT);
  assert.equal(costs.message.payload, Buffer.byteLength(costs.message.raw));
  assert.equal(costs.message.wire, costs.message.payload + 2);
  assert.equal(costs.handshake.requests, 1);
  assert.ok(costs.handshake.up > 0 && costs.handshake.down > 0);
  assert.equal(costs.reconnect.requests, 1);
  assert.equal(costs.reconnect.resumed, MISSED + 1, 'the welcome repeats the message seen before the drop');
  assert.ok(costs.latency_ms >= 0);
});

test('sse-stocks: a tick is its data plus the id/event/data lines; Last-Event-ID replays exactly the missed ticks', async () => {
  const costs = await measureSseStocks();
  const match = /^id: (\S+)\nevent: tick\ndata: (.*)\n\n$/.exec(costs.message.raw);
  assert.ok(match, costs.message.raw);
  assert.equal(costs.message.payload, Buffer.byteLength(match[2]));
  assert.equal(costs.message.wire, Buffer.byteLength(costs.message.raw));
  assert.equal(costs.handshake.requests, 1);
  assert.equal(costs.reconnect.resumed, MISSED);
  assert.equal(costs.reconnect.snapshot, false);
});

test('rooms-chat: an event packet wraps the JSON; join with since resumes exactly the missed messages', async () => {
  const costs = await measureRoomsChat();
  assert.ok(costs.message.raw.startsWith('42["message",'));
  const [, message] = JSON.parse(costs.message.raw.slice(2));
  assert.equal(message.text, TEXT);
  assert.equal(costs.message.payload, Buffer.byteLength(JSON.stringify(message)));
  assert.equal(costs.message.wire, Buffer.byteLength(costs.message.raw) + 2);
  assert.ok(costs.handshake.requests.min >= 3, 'polling open, connect and the upgrade at least');
  assert.equal(costs.handshake.websocket_only.requests, 1);
  assert.equal(costs.reconnect.resumed, MISSED);
});
