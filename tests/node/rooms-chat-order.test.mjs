// rooms-chat: one ordered room log. Every event a member can see takes one
// road (store → bus → the room's line → the socket), so watchers read each
// member's join, message and leave in causal order, on one instance and
// across two; acks never wait on a Redis that is gone; a socket that stops
// reading gets a gap-free prefix of the room, then the close; and one whose
// ack cannot be queued is closed rather than left waiting for it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, sleep } from '../lib/server.mjs';
import { startRedis } from '../lib/redis.mjs';
import { connect, isErrorAck, short, unique, waitUntil } from '../lib/rooms.mjs';

const MEMBERS = 80;
const AT_A_TIME = 8;

/** A watcher that records every event of `room` in arrival order. */
async function watcher(url, room, label) {
  const client = await connect(url, { label });
  client.log = [];
  client.socket.onAny((event, payload) => {
    if (payload?.room === room) client.log.push({ event, payload });
  });
  await client.join(room, label);
  return client;
}

/** Per member: user_joined < its message < user_left, each exactly once. */
function assertCausalOrder(log, names, label) {
  const problems = [];
  for (const name of names) {
    const at = (event, match) => log
      .map((entry, index) => ({ ...entry, index }))
      .filter((entry) => entry.event === event && match(entry.payload));
    const joined = at('user_joined', (p) => p.name === name);
    const said = at('message', (p) => p.from === name);
    const left = at('user_left', (p) => p.name === name);
    if (joined.length !== 1 || said.length !== 1 || left.length !== 1) {
      problems.push(`${name}: joined ${joined.length}, messages ${said.length}, left ${left.length}`);
    } else if (!(joined[0].index < said[0].index && said[0].index < left[0].index)) {
      problems.push(`${name}: joined at ${joined[0].index}, message at ${said[0].index}, left at ${left[0].index}`);
    }
  }
  assert.deepEqual(problems, [], `${label}: causal order broken for ${problems.length} of ${names.length} members`);
}

/** Members join, say one thing (acked) and leave (acked), a few at a time. */
async function joinSpeakLeave(urls, room) {
  const names = Array.from({ length: MEMBERS }, (_, i) => `m${i}`);
  for (let start = 0; start < names.length; start += AT_A_TIME) {
    await Promise.all(names.slice(start, start + AT_A_TIME).map(async (name, i) => {
      const member = await connect(urls[(start + i) % urls.length], { label: name });
      try {
        await member.join(room, name);
        const sent = await member.send(room, `bye from ${name}`);
        assert.equal(sent.ok, true, short(sent));
        const left = await member.ack('leave', { room });
        assert.equal(left.ok, true, short(left));
      } finally {
        member.close();
      }
    }));
  }
  return names;
}

async function awaitAllLeaves(watchers, names) {
  for (const w of watchers) {
    await waitUntil(() => names.every((name) => w.log.some((e) => e.event === 'user_left' && e.payload.name === name)),
      10_000, () => `${w.label}: ${w.log.filter((e) => e.event === 'user_left').length}/${names.length} leaves`);
  }
}

// 80 members join from one address within a second or so, several
// requests each over long-polling: far more handshakes than one client
// makes, so the per-address handshake rate is off here (ops' own tests
// cover it).
const MANY_MEMBERS = { MSG_RATE: '0', HANDSHAKE_RATE: '0' };

describe('rooms-chat causal order', () => {
  test('one instance: each member joined < spoke < left, for every watcher', async () => {
    const server = await startServer('rooms-chat', MANY_MEMBERS);
    const room = unique('causal');
    const watchers = [await watcher(server.url, room, 'w1'), await watcher(server.url, room, 'w2')];
    try {
      const names = await joinSpeakLeave([server.url], room);
      await awaitAllLeaves(watchers, names);
      for (const w of watchers) assertCausalOrder(w.log, names, w.label);
    } finally {
      for (const w of watchers) w.close();
      await server.stop();
    }
  });

  test('two instances: members on both, watchers on both, one order', async () => {
    const redis = await startRedis();
    const env = { ...MANY_MEMBERS, REDIS_URL: redis.url };
    const one = await startServer('rooms-chat', env);
    const two = await startServer('rooms-chat', env);
    const room = unique('causal-cluster');
    const watchers = [await watcher(one.url, room, 'on-one'), await watcher(two.url, room, 'on-two')];
    try {
      const names = await joinSpeakLeave([one.url, two.url], room);
      await awaitAllLeaves(watchers, names);
      for (const w of watchers) assertCausalOrder(w.log, names, w.label);
    } finally {
      for (const w of watchers) w.close();
      await one.stop();
      await two.stop();
      await redis.stop();
    }
  });
});

describe('rooms-chat with Redis SIGKILLed', () => {
  test('every ack comes within about a second (ok or unavailable), /healthz 503, back after restart', async () => {
    const redis = await startRedis();
    const server = await startServer('rooms-chat', {
      MSG_RATE: '0', REDIS_URL: redis.url, HEARTBEAT_MS: '300', INSTANCE_TTL_MS: '1500', REDIS_TIMEOUT_MS: '1000',
    });
    const room = unique('outage');
    const clients = [];
    try {
      for (let i = 0; i < 4; i += 1) {
        const client = await connect(server.url, { label: `c${i}` });
        await client.join(room, `c${i}`);
        clients.push(client);
      }
      let running = true;
      const slowest = [];
      const codes = new Set();
      const loops = clients.map(async (client, i) => {
        let n = 0;
        while (running) {
          const event = n % 3 === 0 ? ['message', { room, text: `m${n}` }] : ['typing', { room, typing: n % 2 === 0 }];
          const started = Date.now();
          // A generous ceiling: the assertion below is what matters.
          const ack = await client.ack(event[0], event[1], 10_000);
          slowest.push({ ms: Date.now() - started, event: event[0], client: i });
          if (ack.ok) codes.add('ok');
          else {
            assert.ok(isErrorAck(ack, ['unavailable']), `${event[0]}: ${short(ack)}`);
            codes.add(ack.error.code);
          }
          n += 1;
          await sleep(20);
        }
      });
      await sleep(500);
      await redis.stop();
      await waitUntil(async () => (await fetch(`${server.url}/healthz`)).status === 503, 5_000, () => '/healthz still 200');
      await sleep(2_000);
      await redis.restart();
      await waitUntil(async () => (await fetch(`${server.url}/healthz`)).status === 200, 10_000, () => '/healthz not back');
      await waitUntil(async () => (await clients[0].send(room, 'after')).ok === true, 10_000, () => 'messages not back');
      running = false;
      await Promise.all(loops);
      const worst = slowest.reduce((a, b) => (b.ms > a.ms ? b : a), { ms: 0 });
      // REDIS_TIMEOUT_MS plus scheduling slack on a loaded machine.
      assert.ok(worst.ms <= 1_800, `an ack took ${worst.ms} ms (${worst.event} of c${worst.client})`);
      assert.ok(codes.has('unavailable'), 'events during the outage were refused');
    } finally {
      for (const client of clients) client.close();
      await server.stop();
      await redis.stop();
    }
  });
});

/** A raw Socket.IO-over-WebSocket client whose TCP reads can be paused. */
async function rawMember(url, room, name) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
  const member = { ws, ids: [], closed: false, acked: null, acks: new Map() };
  let opened;
  const connected = new Promise((resolve) => { opened = resolve; });
  ws.on('message', (data) => {
    const text = data.toString();
    if (text.startsWith('0')) ws.send('40');
    else if (text === '2') ws.send('3');
    else if (text.startsWith('40')) opened();
    else if (text.startsWith('430')) member.acked = JSON.parse(text.slice(3))[0];
    else if (/^43\d/.test(text)) {
      const [, id, body] = text.match(/^43(\d+)(.*)$/s);
      member.acks.set(Number(id), JSON.parse(body)[0]);
    }
    else if (text.startsWith('42')) {
      const [event, payload] = JSON.parse(text.slice(2));
      if (event === 'message' && payload.room === room) member.ids.push(payload.id);
    } else if (text.startsWith('41')) member.closed = true;
  });
  ws.on('close', () => { member.closed = true; });
  ws.on('error', () => { member.closed = true; });
  await connected;
  ws.send(`420${JSON.stringify(['join', { room, name }])}`);
  await waitUntil(() => member.acked !== null, 5_000, () => `${name}: no join ack`);
  assert.equal(member.acked.ok, true, short(member.acked));
  return member;
}

describe('rooms-chat member that stops reading', () => {
  test('gets every message, or a gap-free prefix then the close, soon after it reads again', async () => {
    const server = await startServer('rooms-chat', { MSG_RATE: '0' });
    const room = unique('flood');
    const text = 'x'.repeat(1500);
    const senders = [];
    let raw;
    try {
      raw = await rawMember(server.url, room, 'raw');
      for (let i = 0; i < 4; i += 1) {
        const sender = await connect(server.url, { label: `s${i}` });
        await sender.join(room, `s${i}`);
        senders.push(sender);
      }
      raw.ws._socket.pause();
      const acked = [];
      await Promise.all(senders.map(async (sender) => {
        for (let n = 0; n < 1500; n += 1) {
          const ack = await sender.send(room, text);
          assert.equal(ack.ok, true, short(ack));
          acked.push(ack.id);
        }
      }));
      const total = acked.length;
      for (const sender of senders) await sender.waitForMessages(room, total, 30_000);
      raw.ws._socket.resume();
      await waitUntil(() => raw.closed || raw.ids.length === total, 10_000,
        () => `raw member: ${raw.ids.length}/${total} messages and still open after it read again`);
      const expected = Array.from({ length: raw.ids.length }, (_, i) => i + 1);
      assert.deepEqual(raw.ids, expected, 'a gap-free prefix of the room, in order');
      for (const sender of senders) {
        const ids = sender.messages(room).map((m) => m.id);
        assert.deepEqual(ids, Array.from({ length: total }, (_, i) => i + 1), `${sender.label} got everything`);
      }
    } finally {
      raw?.ws.terminate();
      for (const sender of senders) sender.close();
      await server.stop();
    }
  });
});

describe('rooms-chat member whose ack does not fit its queue', () => {
  test('is closed, never left open without its ack', async () => {
    // The ack waits behind the room's frames in the member's one queue:
    // the member must be closed once that queue is past its bound (1 MiB,
    // several times what the reading sender ever has waiting), with its
    // ack or without it, never left open without it.
    const server = await startServer('rooms-chat', { MSG_RATE: '0', MAX_QUEUED_BYTES: String(1 << 20) });
    const room = unique('ackfull');
    const text = 'y'.repeat(2000);
    // Far more than the kernel's buffers (a send buffer grows to 4 MB here)
    // and the bound take, so the raw member's outbox stays full.
    const flood = 5000;
    let raw;
    let sender;
    try {
      raw = await rawMember(server.url, room, 'raw');
      sender = await connect(server.url, { label: 'sender' });
      await sender.join(room, 'sender');
      raw.ws._socket.pause();
      for (let n = 0; n < flood; n += 1) {
        const ack = await sender.send(room, text);
        assert.equal(ack.ok, true, short(ack));
      }
      await sender.waitForMessages(room, flood, 30_000);
      raw.ws.send(`421${JSON.stringify(['message', { room, text: 'my last words' }])}`);
      await sleep(500);
      raw.ws._socket.resume();
      await waitUntil(() => raw.closed || raw.acks.has(1), 15_000,
        () => `raw member: ${raw.ids.length} messages, no ack and still open`);
      assert.ok(raw.closed, `the ack found room after all: ${short(raw.acks.get(1))}`);
      const expected = Array.from({ length: raw.ids.length }, (_, i) => i + 1);
      assert.deepEqual(raw.ids, expected, 'a gap-free prefix of the room, in order');
    } finally {
      raw?.ws.terminate();
      sender?.close();
      await server.stop();
    }
  });
});
