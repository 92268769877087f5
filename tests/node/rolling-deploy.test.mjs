// Rolling deploys without loss, against the wire contract only: two
// rooms-chat instances on one private Redis, clients (official
// socket.io-client, reconnecting by themselves) on both, senders on both;
// SIGTERM one instance under traffic, start it again on its port, then the
// other. Every client re-joins with `since` on each connect, as the pages
// do, and must end up with every acknowledged message, once. ws-chat and
// sse-stocks clients come back on their own after a restart: ws-chat says
// 1001, and on the new process a page that reconnects twice takes its name
// over from its own older socket (same clientId) without notices; an EventSource
// resumes with Last-Event-ID, without a gap or a reset (cluster mode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { startServer, sleep } from '../lib/server.mjs';
import { startRedis } from '../lib/redis.mjs';
import { connect, waitUntil } from '../lib/rooms.mjs';

const CLUSTER_ENV = { MSG_RATE: '0', HEARTBEAT_MS: '500', INSTANCE_TTL_MS: '2500' };
const ROOM = 'deploy';
const RECONNECT = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500, transports: ['websocket', 'polling'] };

/** A client that re-joins with `since` every time it connects, as the page does. */
async function member(url, name, transports) {
  const client = await connect(url, { label: name, ...RECONNECT, transports });
  const seen = new Map(); // id -> text, from live messages and join histories
  let lastId = 0;
  const note = (message) => {
    if (message.room !== ROOM) return;
    seen.set(message.id, message.text);
    lastId = Math.max(lastId, message.id);
  };
  client.socket.on('message', note);
  const join = async () => {
    const ack = await client.join(ROOM, name, { since: lastId, clientId: `cid-${name}` });
    for (const message of ack.history) note({ ...message, room: ROOM });
  };
  client.rejoins = 0;
  client.socket.io.on('reconnect', () => {
    client.rejoins += 1;
    // A failed re-join shows as missing messages below.
    join().catch(() => {});
  });
  await join();
  client.seen = seen;
  return client;
}

test('rooms-chat: SIGTERM one instance of two under traffic, then the other: nobody misses a message', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const instances = [];
  for (let i = 0; i < 2; i += 1) instances.push(await startServer('rooms-chat', { ...CLUSTER_ENV, REDIS_URL: redis.url }));
  const ports = instances.map((instance) => instance.port);
  t.after(async () => { for (const instance of instances) await instance.kill(); });

  const clients = [];
  for (let i = 0; i < 6; i += 1) {
    const transports = i % 2 ? ['polling'] : ['websocket'];
    clients.push(await member(instances[i % 2].url, `m${i}`, transports));
  }
  t.after(() => { for (const client of clients) client.socket.close(); });

  // Two senders (one per instance) send until told to stop; only acked
  // messages exist, so those are what everyone must have.
  const acked = new Map();
  let sending = true;
  const senders = clients.slice(0, 2).map(async (client, index) => {
    let n = 0;
    while (sending) {
      n += 1;
      const text = `s${index}-${n}`;
      try {
        const ack = await client.ack('message', { room: ROOM, text }, 2000);
        if (ack?.ok) acked.set(ack.id, text);
      } catch { /* the instance is restarting: this one was never sent */ }
      await sleep(20);
    }
  });

  const restart = async (index) => {
    await sleep(500);
    const stopped = await instances[index].stop();
    assert.equal(stopped.code, 0, `instance ${index} exits cleanly on SIGTERM`);
    instances[index] = await startServer('rooms-chat', { ...CLUSTER_ENV, REDIS_URL: redis.url }, { port: ports[index] });
    await sleep(500);
  };
  await restart(0);
  await restart(1);
  sending = false;
  await Promise.all(senders);

  assert.ok(acked.size > 20, `traffic went on during the deploy (${acked.size} messages)`);
  const expected = [...acked.keys()].sort((a, b) => a - b);
  for (const client of clients) {
    await waitUntil(() => expected.every((id) => client.seen.has(id)), 10_000,
      () => `${client.label} misses ${expected.filter((id) => !client.seen.has(id)).slice(0, 10)} (re-joined ${client.rejoins} times)`);
    for (const id of expected) assert.equal(client.seen.get(id), acked.get(id), `${client.label}: message ${id}`);
  }
  assert.ok(clients.some((client) => client.rejoins > 0), 'clients reconnected during the deploy');
});

test('ws-chat: a restart says 1001; on the new process the same clientId takes its name over from a socket still open, unseen by the others', async (t) => {
  let server = await startServer('ws-chat');
  t.after(() => server.kill());
  const sockets = [];
  t.after(() => { for (const socket of sockets) socket.terminate(); });
  /** Says hello; resolves with the welcome, rejects with an error frame. */
  const open = (name, clientId) => new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
    sockets.push(socket);
    const frames = [];
    const closed = new Promise((settle) => socket.once('close', (code) => settle(code)));
    socket.once('error', reject);
    socket.once('open', () => socket.send(JSON.stringify({ type: 'hello', name, clientId })));
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      frames.push(frame);
      if (frame.type === 'welcome') resolve({ socket, frame, frames, closed });
      if (frame.type === 'error') reject(new Error(JSON.stringify(frame)));
    });
  });
  const before = await open('ada', 'cid-ada');
  const port = server.port;
  await server.stop();
  assert.equal(await before.closed, 1001, 'going away: the page reconnects');
  server = await startServer('ws-chat', {}, { port });

  // The page reconnects to the new process, and then once more while its
  // first new socket is still open (a retry that raced it, or a connection
  // that looks dead to the page but not yet to the server): the name is
  // held, and only the same clientId may take it over.
  const bob = await open('bob', 'cid-bob');
  const first = await open('ada', 'cid-ada');
  await waitUntil(() => bob.frames.some((frame) => frame.type === 'joined' && frame.user.name === 'ada'), 5_000,
    () => 'bob never saw ada join');
  await assert.rejects(open('ADA', 'cid-eve'), /name_taken/, 'another clientId cannot have the name');
  const second = await open('ada', 'cid-ada');
  assert.deepEqual(second.frame.you, first.frame.you, 'the same user, on the new socket');
  assert.equal(await first.closed, 4000, 'the socket taken over is closed');
  // Bob sees the takeover no more than a message sent after it.
  second.socket.send(JSON.stringify({ type: 'message', text: 'back' }));
  await waitUntil(() => bob.frames.some((frame) => frame.type === 'message' && frame.text === 'back'), 5_000,
    () => 'bob never got the message sent after the takeover');
  const notices = bob.frames.filter((frame) => frame.type === 'joined' || frame.type === 'left')
    .map((frame) => `${frame.type} ${frame.user.name}`);
  assert.deepEqual(notices, ['joined ada'], 'no left or joined for the takeover');
});

test('sse-stocks: an EventSource resumes by itself across a restart, without a gap or a reset', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const env = { REDIS_URL: redis.url, TICK_MS: '50', RETRY_MS: '200' };
  let restarted = await startServer('sse-stocks', env);
  const witnessServer = await startServer('sse-stocks', env);
  t.after(async () => { await restarted.kill(); await witnessServer.kill(); });

  const record = (url) => {
    const source = new EventSource(url);
    const ticks = [];
    const events = [];
    source.addEventListener('tick', (event) => ticks.push(event.lastEventId));
    for (const name of ['snapshot', 'reset']) source.addEventListener(name, () => events.push(name));
    return { source, ticks, events };
  };
  const key = (id) => id.split('-').map(BigInt);
  const before = (a, b) => { const [x, y] = [key(a), key(b)]; return x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]); };

  const port = restarted.port;
  const client = record(`${restarted.url}/events?symbols=AAPL`);
  const witness = record(`${witnessServer.url}/events?symbols=AAPL`);
  t.after(() => { client.source.close(); witness.source.close(); });
  await waitUntil(() => client.ticks.length >= 5 && witness.ticks.length >= 5, 10_000, () => 'no ticks');
  await restarted.stop();
  await sleep(300);
  restarted = await startServer('sse-stocks', env, { port });
  const lastBefore = client.ticks.at(-1);
  await waitUntil(() => client.ticks.length > 0 && before(lastBefore, client.ticks.at(-1)) && client.ticks.length >= 40, 15_000,
    () => `the EventSource did not come back (${client.ticks.length} ticks, events ${client.events})`);
  assert.deepEqual(client.events, ['snapshot'], 'one snapshot at the start, no reset after the restart');
  // From the client's first tick to its last, it has exactly the ticks the
  // witness (on the instance that stayed up) saw.
  // (from the later of the two first ticks, as each started on its own).
  const first = before(client.ticks[0], witness.ticks[0]) ? witness.ticks[0] : client.ticks[0];
  const last = client.ticks.at(-1);
  await waitUntil(() => witness.ticks.some((id) => id === last), 5_000, () => 'the witness is behind');
  const within = (ids) => ids.filter((id) => !before(id, first) && !before(last, id));
  assert.deepEqual(within(client.ticks), within(witness.ticks));
});
