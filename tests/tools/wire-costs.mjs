// Measures what each technique costs on the wire, for the README table "The
// three techniques, measured" (scripts/wire-costs.sh runs this and writes
// the table). Each server runs alone on a free port; the measured client
// talks to it through a relay that keeps every byte (tests/lib/wire-proxy.mjs),
// so the figures are TCP payload bytes as they travelled: HTTP heads,
// WebSocket framing, SSE lines, Engine.IO packets. The clients are Node's
// (ws, socket.io-client, a plain HTTP request like EventSource's): a browser
// adds its own request headers (User-Agent and the like, some 400-600 bytes).
//
// Run as a script, prints one JSON document on stdout: per app, handshake / message /
// reconnect / latency figures. Latency is measured here too, at light load
// (one sender, one receiver, no relay), as the median of LATENCY_SAMPLES.
import { connect as tcpConnect } from 'node:net';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startServer, sleep } from '../lib/server.mjs';
import { startWireProxy, joined, headLength, upgradedFrames, httpMessages } from '../lib/wire-proxy.mjs';

const MISSED = 10; // messages (ticks) a reconnecting client missed
const LATENCY_SAMPLES = 25;
const HANDSHAKE_TRIALS = 5; // rooms-chat's polling handshake varies with timing
const TEXT = 'Hello everyone, how is it going?'; // a typical chat line
const CLIENT_ID = 'wirecosts0123456789abcdef';

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const round = (value, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Resolves when `check()` is truthy (polled); rejects with `what` after `ms`. */
async function until(check, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Bytes each way and HTTP requests over the relay's connections from index
 * `from`; `heads` lists the requests' start lines as they travelled.
 */
function traffic(proxy, from = 0) {
  let up = 0;
  let down = 0;
  const heads = [];
  for (const record of proxy.connections.slice(from)) {
    const sent = joined(record.up);
    up += sent.length;
    down += joined(record.down).length;
    // Request heads only: an upgraded connection's frames follow its head.
    const requests = httpMessages(sent).messages.filter((message) => /^[A-Z]+ \//.test(message.startLine));
    heads.push(...(record.upgraded ? requests.slice(0, 1) : requests).map((message) => message.startLine));
  }
  return { requests: heads.length, up, down, heads };
}

// ------------------------------------------------------------ ws-chat

function wsClient(url, name, clientId) {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  const frames = [];
  const waiters = new Set();
  socket.on('message', (data) => {
    frames.push({ at: performance.now(), frame: JSON.parse(data.toString('utf8')) });
    for (const wake of waiters) wake();
  });
  const opened = new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
  return {
    socket,
    frames,
    async hello() {
      await opened;
      socket.send(JSON.stringify({ type: 'hello', name, clientId }));
      return until(() => frames.find((entry) => entry.frame.type === 'welcome'), `${name}'s welcome`);
    },
    send(text) { socket.send(JSON.stringify({ type: 'message', text })); },
    messages() { return frames.filter((entry) => entry.frame.type === 'message'); },
  };
}

async function measureWsChat() {
  const server = await startServer('ws-chat', { MSG_RATE: '0', PING_MS: '600000' });
  const proxy = await startWireProxy(server.port);
  try {
    const direct = `ws://127.0.0.1:${server.port}/ws`;
    const relayed = `ws://127.0.0.1:${proxy.port}/ws`;
    const bob = wsClient(direct, 'bob');
    await bob.hello();

    // Handshake: the upgrade, hello, welcome.
    const alice = wsClient(relayed, 'alice', CLIENT_ID);
    await alice.hello();
    proxy.connections[0].upgraded = true;
    const handshake = traffic(proxy);

    // One message, as alice receives it.
    const before = joined(proxy.connections[0].down).length;
    const framesBefore = upgradedFrames(proxy.connections[0]).down.length;
    bob.send(TEXT);
    await until(() => alice.messages().length === 1, 'the message');
    await until(() => upgradedFrames(proxy.connections[0]).down.length > framesBefore, 'its frame');
    const frame = upgradedFrames(proxy.connections[0]).down.at(-1);
    const message = {
      text: Buffer.byteLength(TEXT),
      payload: frame.payload.length,
      wire: frame.size,
      raw: frame.text,
      // For the tests: what the client library handed out, and every byte
      // that came down the relay for it.
      received: alice.messages()[0].frame,
      arrived: joined(proxy.connections[0].down).length - before,
      opcode: frame.opcode,
      masked: frame.masked,
    };

    // Reconnect after missing MISSED messages: the same clientId takes the
    // name back; the welcome carries the history (up to 50), not a cursor.
    alice.socket.close();
    await until(() => proxy.connections[0].closed, 'the close');
    for (let index = 0; index < MISSED; index += 1) bob.send(`${TEXT} (${index})`);
    await until(() => bob.messages().length === 1 + MISSED, 'the missed messages');
    const from = proxy.connections.length;
    const again = wsClient(relayed, 'alice', CLIENT_ID);
    const welcome = await again.hello();
    proxy.connections[from].upgraded = true;
    const reconnect = {
      ...traffic(proxy, from),
      resumed: welcome.frame.history.length,
      missed: MISSED,
      name: welcome.frame.you.name,
      texts: welcome.frame.history.map((item) => item.text),
    };

    // Latency at light load: bob to carol, straight to the server.
    const carol = wsClient(direct, 'carol');
    await carol.hello();
    const latencies = [];
    for (let index = 0; index < LATENCY_SAMPLES; index += 1) {
      const text = `latency ${index}`;
      const sentAt = performance.now();
      bob.send(text);
      const got = await until(() => carol.messages().find((entry) => entry.frame.text === text), 'a latency sample');
      latencies.push(got.at - sentAt);
      await sleep(20);
    }
    for (const client of [bob, again, carol]) client.socket.close();
    return { handshake, message, reconnect, latency_ms: round(median(latencies)) };
  } finally {
    await proxy.close();
    await server.stop();
  }
}

// ------------------------------------------------------------ sse-stocks

/** An event stream over a raw socket, as EventSource would ask for it. */
function sseStream(port, query, lastEventId) {
  const socket = tcpConnect(port, '127.0.0.1');
  const chunks = [];
  const lines = [
    `GET /events?${query} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Accept: text/event-stream', 'Cache-Control: no-cache',
    ...(lastEventId ? [`Last-Event-ID: ${lastEventId}`] : []), '', '',
  ];
  socket.write(lines.join('\r\n'));
  socket.on('data', (chunk) => chunks.push(chunk));
  socket.on('error', () => { /* the relay or the test ends it; what came is kept */ });
  const events = () => {
    const buffer = Buffer.concat(chunks);
    const body = buffer.subarray(headLength(buffer)).toString('utf8');
    return body.split(/(?<=\n\n)/).filter((block) => block.endsWith('\n\n') && /^(id|event|data):/m.test(block)).map((block) => {
      const field = (name) => new RegExp(`^${name}: (.*)$`, 'm').exec(block)?.[1];
      return { block, id: field('id'), event: field('event'), data: field('data') };
    });
  };
  return { socket, chunks, events, close: () => socket.destroy() };
}

/** Bytes the stream received up to the end of `event`: head, retry:, events. */
function bytesThrough(stream, event) {
  const buffer = Buffer.concat(stream.chunks);
  const body = buffer.subarray(headLength(buffer)).toString('utf8');
  return headLength(buffer) + Buffer.byteLength(body.slice(0, body.indexOf(event.block) + event.block.length));
}

async function measureSseStocks() {
  const server = await startServer('sse-stocks', { TICK_MS: '100', SEED: '11' });
  const proxy = await startWireProxy(server.port);
  // A witness stream straight to the server sees every tick live, so that
  // the replay can be checked against ticks nobody replayed.
  const witness = sseStream(server.port, 'symbols=AAPL');
  try {
    // Handshake: the request, the response head, retry: and the snapshot.
    const stream = sseStream(proxy.port, 'symbols=AAPL');
    await until(() => stream.events().length >= 1, 'the snapshot');
    const handshake = { ...traffic(proxy), down: bytesThrough(stream, stream.events()[0]) };
    await until(() => stream.events().filter((event) => event.event === 'tick').length >= 3, 'three ticks');
    const tick = stream.events().find((event) => event.event === 'tick');
    const message = {
      text: null,
      payload: Buffer.byteLength(tick.data),
      wire: Buffer.byteLength(tick.block),
      raw: tick.block,
    };

    // Reconnect after MISSED ticks: Last-Event-ID, the server replays them.
    const seen = stream.events().at(-1);
    stream.close();
    const liveAfter = () => {
      const ticks = witness.events().filter((event) => event.event === 'tick');
      const at = ticks.findIndex((event) => event.id === seen.id);
      return at < 0 ? [] : ticks.slice(at + 1);
    };
    await until(() => liveAfter().length >= MISSED, 'the ticks missed meanwhile');
    const missedIds = new Set(liveAfter().slice(0, MISSED).map((event) => event.id));
    const from = proxy.connections.length;
    const resumed = sseStream(proxy.port, 'symbols=AAPL', seen.id);
    // As many events as were missed, whatever they are: the tests compare them.
    await until(() => resumed.events().length >= MISSED, 'the replay');
    const replayed = resumed.events().slice(0, MISSED);
    const replayBytes = traffic(proxy, from);
    const reconnect = {
      requests: 1,
      up: replayBytes.up,
      // Everything until the last replayed tick: head, retry:, the replay.
      down: bytesThrough(resumed, replayed.at(-1)),
      resumed: replayed.filter((event) => missedIds.has(event.id)).length,
      snapshot: resumed.events().some((event) => event.event === 'snapshot'),
      missed: MISSED,
      // For the tests: the ids the resumed stream began with, and the ones
      // the witness saw live after the last one seen.
      replayed_ids: replayed.map((event) => event.id),
      missed_ids: [...missedIds],
    };
    resumed.close();

    // Latency at light load: the tick's own timestamp to its arrival.
    const live = sseStream(server.port, 'symbols=AAPL');
    const arrivals = [];
    live.socket.on('data', () => {
      const now = Date.now();
      for (const event of live.events().slice(arrivals.length)) arrivals.push({ event, now });
    });
    await until(() => arrivals.length > LATENCY_SAMPLES, 'latency samples', 30_000);
    const latencies = arrivals.filter(({ event }) => event.event === 'tick')
      .map(({ event, now }) => now - JSON.parse(event.data).ts);
    live.close();
    return { handshake, message, reconnect, latency_ms: round(median(latencies)) };
  } finally {
    witness.close();
    await proxy.close();
    await server.stop();
  }
}

// ------------------------------------------------------------ rooms-chat

function roomsClient(url, options = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, ...options });
  const messages = [];
  socket.on('message', (message) => messages.push({ at: performance.now(), message }));
  return {
    socket,
    messages,
    connected: new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); }),
    ack: (event, payload) => socket.timeout(10_000).emitWithAck(event, payload),
  };
}

async function measureRoomsChat() {
  const server = await startServer('rooms-chat', { MSG_RATE: '0' });
  const proxy = await startWireProxy(server.port);
  const room = 'wire';
  try {
    const bob = roomsClient(server.url);
    await bob.connected;
    await bob.ack('join', { room, name: 'bob' });

    // Handshake, the client's default: HTTP long-polling first (open,
    // connect), then the upgrade to a WebSocket; then join and its ack. The
    // join waits for the upgrade so that the count does not depend on a race.
    const markUpgraded = () => {
      for (const record of proxy.connections) {
        if (joined(record.up).subarray(0, 300).toString('latin1').includes('transport=websocket')) record.upgraded = true;
      }
    };
    // How many polls it takes depends on timing: a few trials give the range.
    const trials = [];
    const handshakeOf = async (name) => {
      const from = proxy.connections.length;
      const client = roomsClient(proxy.url);
      await client.connected;
      await until(() => client.socket.io.engine.transport.name === 'websocket', 'the upgrade');
      const ack = await client.ack('join', { room, name, clientId: name === 'alice' ? CLIENT_ID : undefined });
      markUpgraded();
      trials.push(traffic(proxy, from));
      return { client, ack, record: proxy.connections.slice(from).find((item) => item.upgraded) };
    };
    for (let trial = 0; trial < HANDSHAKE_TRIALS; trial += 1) (await handshakeOf(`trial${trial}`)).client.socket.disconnect();
    const { client: alice, ack: joinAck, record: wsRecord } = await handshakeOf('alice');
    const range = (key) => {
      const values = trials.map((item) => item[key]);
      return { min: Math.min(...values), max: Math.max(...values) };
    };
    const handshake = { requests: range('requests'), up: range('up'), down: range('down'), trials: trials.length };

    // The same with WebSocket only (transports: ['websocket']).
    const wsOnlyFrom = proxy.connections.length;
    const direct = roomsClient(proxy.url, { transports: ['websocket'] });
    await direct.connected;
    await direct.ack('join', { room: 'other', name: 'dora' });
    markUpgraded();
    handshake.websocket_only = traffic(proxy, wsOnlyFrom);
    direct.socket.disconnect();

    // One message, as alice receives it over the WebSocket.
    const framesBefore = upgradedFrames(wsRecord).down.length;
    await bob.ack('message', { room, text: TEXT });
    await until(() => alice.messages.length === 1, 'the message');
    const frame = await until(() => upgradedFrames(wsRecord).down.slice(framesBefore).find((item) => item.text.startsWith('42["message"')), 'its frame');
    const message = {
      text: Buffer.byteLength(TEXT),
      payload: Buffer.byteLength(JSON.stringify(alice.messages[0].message)),
      wire: frame.size,
      raw: frame.text,
      received: alice.messages[0].message, // for the tests
      opcode: frame.opcode,
      masked: frame.masked,
    };
    const lastId = alice.messages[0].message.id;

    // Reconnect after MISSED messages: a new connection, join with `since`.
    alice.socket.disconnect();
    await sleep(200);
    for (let index = 0; index < MISSED; index += 1) await bob.ack('message', { room, text: `${TEXT} (${index})` });
    const from = proxy.connections.length;
    const again = roomsClient(proxy.url);
    await again.connected;
    await until(() => again.socket.io.engine.transport.name === 'websocket', 'the upgrade');
    const rejoin = await again.ack('join', { room, name: 'alice', clientId: CLIENT_ID, since: lastId });
    markUpgraded();
    const reconnect = {
      ...traffic(proxy, from),
      resumed: rejoin.history.length,
      missed: MISSED,
      texts: rejoin.history.map((item) => item.text), // for the tests
    };

    // Latency at light load: bob to carol over WebSocket, no relay.
    const carol = roomsClient(server.url, { transports: ['websocket'] });
    await carol.connected;
    await carol.ack('join', { room, name: 'carol' });
    const latencies = [];
    for (let index = 0; index < LATENCY_SAMPLES; index += 1) {
      const text = `latency ${index}`;
      const sentAt = performance.now();
      bob.socket.emit('message', { room, text });
      const got = await until(() => carol.messages.find((entry) => entry.message.text === text), 'a latency sample');
      latencies.push(got.at - sentAt);
      await sleep(20);
    }
    for (const client of [bob, again, carol]) client.socket.disconnect();
    return { handshake, message, reconnect, latency_ms: round(median(latencies)), history_at_join: joinAck.history.length };
  } finally {
    await proxy.close();
    await server.stop();
  }
}

export { measureWsChat, measureSseStocks, measureRoomsChat, MISSED, TEXT };

// Run as a script (scripts/wire-costs.sh): measure all three, print JSON.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const results = {
    'ws-chat': await measureWsChat(),
    'sse-stocks': await measureSseStocks(),
    'rooms-chat': await measureRoomsChat(),
  };
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  // socket.io-client's timers would keep the process alive a while.
  process.exit(0);
}
