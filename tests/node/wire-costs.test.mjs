// The measuring tool behind README's "The three techniques, measured"
// (tests/tools/wire-costs.mjs): its figures must describe what the servers
// really sent, so the generated table cannot drift into nonsense unnoticed.
// Each figure is checked against something the tool did not compute it
// from: the message the official client handed out, the bytes that came
// down the relay, a witness stream that saw every tick live, the texts that
// were sent. Sizes are checked against the framing rules, not fixed numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measureWsChat, measureSseStocks, measureRoomsChat, MISSED, TEXT } from '../tools/wire-costs.mjs';

const TEXT_OPCODE = 1;
const missedTexts = () => Array.from({ length: MISSED }, (_, index) => `${TEXT} (${index})`);

test('ws-chat: a frame is its JSON plus a 2-byte header; one request to the welcome; history on reconnect', async () => {
  const costs = await measureWsChat();
  const { message, handshake, reconnect } = costs;
  const frame = JSON.parse(message.raw);
  assert.deepEqual(frame, message.received, 'the frame read off the wire is the message the client got');
  assert.equal(frame.type, 'message');
  assert.equal(frame.text, TEXT);
  assert.equal(message.payload, Buffer.byteLength(JSON.stringify(message.received)), 'the payload is the JSON, nothing more');
  assert.equal(message.opcode, TEXT_OPCODE);
  assert.equal(message.masked, false, 'server frames are not masked');
  assert.equal(message.wire, message.payload + 2);
  assert.equal(message.arrived, message.wire, 'the frame is every byte that came down for the message');
  assert.deepEqual(handshake.heads, ['GET /ws HTTP/1.1'], 'one request: the upgrade');
  assert.ok(handshake.up > 0 && handshake.down > 0);
  assert.deepEqual(reconnect.heads, ['GET /ws HTTP/1.1']);
  assert.equal(reconnect.name, 'alice', 'the same clientId gets the name back');
  assert.equal(reconnect.resumed, MISSED + 1, 'the welcome repeats the message seen before the drop');
  assert.deepEqual(reconnect.texts.slice(-(MISSED + 1)), [TEXT, ...missedTexts()]);
});

test('sse-stocks: a tick is its data plus the id/event/data lines; Last-Event-ID replays exactly the missed ticks', async () => {
  const startedAt = Date.now();
  const costs = await measureSseStocks();
  const { message, reconnect } = costs;
  const match = /^id: (\S+)\nevent: tick\ndata: (.*)\n\n$/.exec(message.raw);
  assert.ok(match, message.raw);
  const quote = JSON.parse(match[2]);
  assert.equal(quote.symbol, 'AAPL');
  assert.ok(quote.ts >= startedAt && quote.ts <= Date.now(), `ts is Unix milliseconds of the run: ${quote.ts}`);
  // The data line's own bytes: serde_json and JavaScript write some numbers
  // differently (190.0 and 190, -0.0 and 0), so the JSON is not re-encoded.
  assert.equal(message.payload, Buffer.byteLength(match[2]));
  assert.equal(message.wire, message.payload + Buffer.byteLength(`id: ${match[1]}\nevent: tick\ndata: \n\n`));
  assert.equal(costs.handshake.requests, 1);
  assert.equal(reconnect.missed_ids.length, MISSED);
  assert.deepEqual(reconnect.replayed_ids, reconnect.missed_ids,
    'the resumed stream starts with the ticks a live witness saw after the last one read: no gap, no repeat');
  assert.equal(reconnect.resumed, MISSED);
  assert.equal(reconnect.snapshot, false);
});

test('rooms-chat: an event packet wraps the JSON; join with since resumes exactly the missed messages', async () => {
  const costs = await measureRoomsChat();
  const { message, handshake, reconnect } = costs;
  assert.ok(message.raw.startsWith('42["message",'), message.raw);
  const [name, sent] = JSON.parse(message.raw.slice(2));
  assert.equal(name, 'message');
  assert.deepEqual(sent, message.received, 'the packet read off the wire is the message the client got');
  assert.equal(sent.text, TEXT);
  assert.equal(message.payload, Buffer.byteLength(JSON.stringify(message.received)));
  assert.equal(message.opcode, TEXT_OPCODE);
  assert.equal(message.masked, false, 'server frames are not masked');
  assert.equal(message.wire, Buffer.byteLength(message.raw) + 2);
  assert.ok(handshake.requests.min >= 3, 'polling open, connect and the upgrade at least');
  assert.equal(handshake.websocket_only.requests, 1);
  assert.match(handshake.websocket_only.heads[0], /^GET \/socket\.io\/\?.*transport=websocket.* HTTP\/1\.1$/);
  assert.equal(reconnect.resumed, MISSED);
  assert.deepEqual(reconnect.texts, missedTexts(), 'exactly the messages sent while away, in order');
});
