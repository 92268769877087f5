// The client side of scripts/docker-check.sh: what a user's browser does,
// done with the official clients (tests/node_modules, after `npm ci` there)
// against the published ports of docker/compose.yaml. One check per call:
//   node scripts/lib/docker-check.mjs transports URL
//   node scripts/lib/docker-check.mjs failover URL INSTANCE=CONTAINER...
//   node scripts/lib/docker-check.mjs ws-chat URL
//   node scripts/lib/docker-check.mjs sse-stocks URL
//   node scripts/lib/docker-check.mjs cluster URL1 URL2
// Prints one line per fact; exits non-zero with the reason on the first
// failure.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The clients are pinned by tests/package-lock.json; this script lives
// outside tests/, so it asks that folder's resolver for them.
const require = createRequire(fileURLToPath(new URL('../../tests/package.json', import.meta.url)));
const { io } = require('socket.io-client');
const WebSocket = require('ws');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line) => console.log(`  ${line}`);

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

async function waitUntil(condition, timeoutMs, describe) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) fail(`after ${timeoutMs} ms: ${describe()}`);
    await sleep(20);
  }
}

async function healthz(url) {
  const response = await fetch(`${url}/healthz`);
  if (response.status !== 200) fail(`${url}/healthz answered ${response.status}`);
  return response.json();
}

/**
 * A chat member as the page is one: the official client with its default
 * reconnection, re-joining its room with `since` on every connect, keeping
 * every message it got (live or from a join's history) by id. The 5 s
 * connect timeout is shorter than the client's default 20 s on purpose: a
 * proxy that waits on a dead instance longer than that never lets it back.
 */
function member(url, room, name, transports) {
  const socket = io(url, { forceNew: true, transports, timeout: 5000 });
  const client = { name, socket, seen: new Map(), lastId: 0, joins: 0, joinedAt: 0, errors: [] };
  const note = (message) => {
    client.seen.set(message.id, message.text);
    client.lastId = Math.max(client.lastId, message.id);
  };
  socket.on('message', (message) => { if (message.room === room) note(message); });
  socket.on('connect_error', (error) => client.errors.push(error.message));
  socket.on('connect', async () => {
    try {
      const ack = await socket.timeout(5000).emitWithAck('join', { room, name, since: client.lastId, clientId: `cid-${name}` });
      if (!ack?.ok) throw new Error(JSON.stringify(ack));
      for (const message of ack.history) note(message);
      client.joins += 1;
      client.joinedAt = Date.now();
    } catch (error) {
      client.errors.push(`join: ${error.message}`);
    }
  });
  return client;
}

function transportOf(client) {
  return client.socket.io.engine?.transport?.name ?? 'none';
}

async function joined(clients, joins, timeoutMs, what) {
  await waitUntil(() => clients.every((client) => client.joins >= joins), timeoutMs,
    () => `${what}: ${clients.filter((client) => client.joins < joins).map((client) => `${client.name} (errors: ${client.errors.slice(-3).join('; ') || 'none'})`).join(', ')} not (re)joined`);
}

async function send(client, room, text) {
  const ack = await client.socket.timeout(3000).emitWithAck('message', { room, text });
  if (!ack?.ok) throw new Error(JSON.stringify(ack));
  return ack.id;
}

// Both transports with the upgrade (the page's default), WebSocket only and
// polling only; a message from one reaches all.
async function transports(url) {
  const room = `transports-${Date.now()}`;
  const clients = [
    member(url, room, 'upgrading', ['polling', 'websocket']),
    member(url, room, 'ws-only', ['websocket']),
    member(url, room, 'polling-only', ['polling']),
  ];
  await joined(clients, 1, 10_000, 'connect');
  await waitUntil(() => transportOf(clients[0]) === 'websocket', 10_000,
    () => `the default client stayed on ${transportOf(clients[0])}, no upgrade to websocket`);
  say(`connected: ${clients.map((client) => `${client.name} on ${transportOf(client)}`).join(', ')}`);
  const ids = [];
  for (const client of clients) ids.push(await send(client, room, `hello from ${client.name}`));
  await waitUntil(() => clients.every((client) => ids.every((id) => client.seen.has(id))), 5_000,
    () => 'a message did not reach every client');
  say(`each of the 3 clients got the 3 messages (ids ${ids.join(', ')})`);
  for (const client of clients) client.socket.close();
}

// Clients on the instance nginx sends this machine to; that instance killed
// under traffic; they must be back within a few seconds with every
// acknowledged message.
async function failover(url, mapping) {
  const containers = new Map(mapping.map((pair) => pair.split('=')));
  const before = (await healthz(url)).instance;
  const container = containers.get(before);
  if (!container) fail(`/healthz names instance ${before}, which is none of ${[...containers.keys()].join(', ')}`);
  say(`this machine's clients land on instance ${before} (${container})`);

  const room = `failover-${Date.now()}`;
  const clients = [
    member(url, room, 'upgrading', ['polling', 'websocket']),
    member(url, room, 'ws-only', ['websocket']),
    member(url, room, 'polling-only', ['polling']),
  ];
  await joined(clients, 1, 10_000, 'connect');
  await waitUntil(() => transportOf(clients[0]) === 'websocket', 10_000, () => 'no upgrade');

  // The sender sends every 50 ms throughout; only acknowledged messages
  // exist, so those are what every client must end up with.
  const acked = new Map();
  let sending = true;
  let failedSends = 0;
  const sender = clients[1];
  const sending_ = (async () => {
    for (let n = 1; sending; n += 1) {
      const text = `m${n}`;
      try {
        if (sender.socket.connected) acked.set(await send(sender, room, text), text);
      } catch {
        failedSends += 1;
      }
      await sleep(50);
    }
  })();
  await sleep(1000);
  const sentBefore = acked.size;
  const killedAt = Date.now();
  execFileSync(process.env.DOCKER || 'docker', ['kill', container], { stdio: 'ignore' });
  say(`docker kill ${container} after ${sentBefore} messages`);
  await joined(clients, 2, 10_000, 'failover');
  const back = Math.max(...clients.map((client) => client.joinedAt)) - killedAt;
  const after = (await healthz(url)).instance;
  if (after === before) fail(`/healthz still names the killed instance ${before}`);
  say(`all ${clients.length} clients re-joined on instance ${after} (${containers.get(after) ?? '?'}) ${(back / 1000).toFixed(1)} s after the kill`);
  await sleep(1000);
  sending = false;
  await sending_;
  if (acked.size <= sentBefore) fail('no message was acknowledged after the failover');
  const expected = [...acked.keys()];
  await waitUntil(() => clients.every((client) => expected.every((id) => client.seen.get(id) === acked.get(id))), 10_000,
    () => clients.map((client) => `${client.name} misses ${expected.filter((id) => !client.seen.has(id)).slice(0, 10)}`).join('; '));
  say(`nothing lost: every client has all ${acked.size} acknowledged messages (${sentBefore} before the kill; ${failedSends} sends without an ack while no instance had the sender, not counted)`);
  console.log(`failover_seconds=${(back / 1000).toFixed(1)}`);
  for (const client of clients) client.socket.close();
}

// Hello, then a message that comes back to its sender.
async function wsChat(url) {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`);
  const frames = [];
  socket.on('message', (data) => frames.push(JSON.parse(data.toString())));
  socket.on('error', (error) => fail(`ws-chat: ${error.message}`));
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'hello', name: `check-${process.pid}` }));
  await waitUntil(() => frames.some((frame) => frame.type === 'welcome'), 5_000, () => `no welcome: ${JSON.stringify(frames)}`);
  const text = `round trip ${Date.now()}`;
  const sentAt = Date.now();
  socket.send(JSON.stringify({ type: 'message', text }));
  await waitUntil(() => frames.some((frame) => frame.type === 'message' && frame.text === text), 5_000, () => 'the message did not come back');
  say(`ws-chat: welcome, then the message back in ${Date.now() - sentAt} ms`);
  socket.close();
}

// The stream starts with a snapshot and then ticks, each with an id.
async function sseStocks(url) {
  const controller = new AbortController();
  const response = await fetch(`${url}/events?symbols=AAPL`, { signal: controller.signal });
  if (response.status !== 200) fail(`sse-stocks /events answered ${response.status}`);
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('text/event-stream')) fail(`sse-stocks /events is ${type}`);
  const decoder = new TextDecoder();
  let text = '';
  const reader = response.body.getReader();
  const count = () => (text.match(/^event: tick$/gm) ?? []).length;
  const deadline = Date.now() + 10_000;
  while (count() < 3) {
    if (Date.now() > deadline) fail(`sse-stocks: ${count()} ticks in 10 s`);
    const { value, done } = await reader.read();
    if (done) fail('sse-stocks: the stream ended');
    text += decoder.decode(value, { stream: true });
  }
  if (!/^event: snapshot$/m.test(text)) fail('sse-stocks: no snapshot before the ticks');
  const ids = text.match(/^id: .*$/gm) ?? [];
  say(`sse-stocks: a snapshot, then ${count()} ticks (last ${ids.at(-1)})`);
  controller.abort();
}

// Two instances on the Redis Cluster: a message sent on one reaches a
// member on the other, both ways.
async function cluster(url1, url2) {
  const room = `cluster-${Date.now()}`;
  const clients = [member(url1, room, 'on-3001', ['websocket']), member(url2, room, 'on-3002', ['websocket'])];
  await joined(clients, 1, 10_000, 'connect');
  const ids = [await send(clients[0], room, 'from 3001'), await send(clients[1], room, 'from 3002')];
  await waitUntil(() => clients.every((client) => ids.every((id) => client.seen.has(id))), 5_000,
    () => 'a message did not cross between the two instances');
  say(`cluster: messages ${ids.join(' and ')} crossed between ${url1} and ${url2}`);
  for (const client of clients) client.socket.close();
}

const [command, ...args] = process.argv.slice(2);
const commands = {
  transports: () => transports(args[0]),
  failover: () => failover(args[0], args.slice(1)),
  'ws-chat': () => wsChat(args[0]),
  'sse-stocks': () => sseStocks(args[0]),
  cluster: () => cluster(args[0], args[1]),
};
if (!commands[command]) fail(`unknown check '${command}' (one of ${Object.keys(commands).join(', ')})`);
await commands[command]();
process.exit(0);
