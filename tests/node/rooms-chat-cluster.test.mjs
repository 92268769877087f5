// rooms-chat cluster mode: several instances sharing one private redis-server
// behave as one server, with the official socket.io-client. Covers
// cross-instance delivery, one id order everywhere under concurrent senders,
// names and presence across instances, a burst past the adapter's channel
// size, kill -9 of an instance (failover with `since`), and a Redis outage.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startServer, sleep } from '../lib/server.mjs';
import { startRedis } from '../lib/redis.mjs';
import { connect, isErrorAck, short, unique, waitUntil } from '../lib/rooms.mjs';

const QUIET_MS = 500;

/** Short liveness intervals so a dead instance is noticed in a few seconds. */
const CLUSTER_ENV = { MSG_RATE: '0', HEARTBEAT_MS: '500', INSTANCE_TTL_MS: '2500' };

async function startCluster(count, redis, env = {}) {
  const instances = [];
  for (let i = 0; i < count; i += 1) {
    instances.push(await startServer('rooms-chat', { ...CLUSTER_ENV, REDIS_URL: redis.url, ...env }));
  }
  return instances;
}

/** Asserts `ids` strictly increase (so: in order and without duplicates). */
function assertStrictlyIncreasing(ids, what) {
  for (let i = 1; i < ids.length; i += 1) {
    if (!(ids[i] > ids[i - 1])) {
      assert.fail(`${what}: id ${ids[i]} after ${ids[i - 1]} at position ${i} (of ${ids.length})`);
    }
  }
}

/**
 * Runs `body`; if it fails, adds the instances' warnings and errors to the
 * failure so the report says what the servers saw.
 */
async function withServerLogs(instances, body) {
  try {
    await body();
  } catch (error) {
    const logs = instances.map((instance, i) => {
      const lines = instance.output().split('\n').filter((line) => /WARN|ERROR|panic/.test(line));
      return `--- instance ${i} (${lines.length} warnings/errors), last ones:\n${lines.slice(-8).join('\n')}`;
    }).join('\n');
    error.message = `${error.message}\n${logs}`;
    throw error;
  }
}

function missingFrom(received, expected) {
  const have = new Set(received);
  return expected.filter((id) => !have.has(id));
}

describe('rooms-chat cluster: delivery, order, names, presence', () => {
  let redis;
  let instances = [];
  const clients = [];
  const open = async (instance, label, options = {}) => {
    const client = await connect(instances[instance].url, { label: `${label}@${instance}`, ...options });
    clients.push(client);
    return client;
  };

  before(async () => {
    redis = await startRedis();
    instances = await startCluster(3, redis);
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(instances.map((instance) => instance.stop()));
    await redis?.stop();
  });

  test('/healthz reports the Redis link', async () => {
    for (const instance of instances) {
      const response = await fetch(`${instance.url}/healthz`);
      assert.equal(response.status, 200);
      const body = await response.json();
      assert.equal(body.status, 'ok');
      assert.equal(body.redis, 'up', `healthz in cluster mode: ${short(body)}`);
    }
  });

  test('messages cross instances; members, presence and counts are cluster-wide', async () => {
    const room = unique('cross');
    const alice = await open(0, 'alice');
    const bob = await open(1, 'bob', { transports: ['polling'] });
    const carol = await open(2, 'carol');
    await alice.join(room, 'alice');
    const bobAck = await bob.join(room, 'bob');
    assert.deepEqual([...bobAck.members].sort(), ['alice', 'bob'], 'members include other instances');
    const joined = await alice.waitFor('user_joined', (e) => e.room === room && e.name === 'bob');
    assert.equal(joined.room, room);
    const carolAck = await carol.join(room, 'carol');
    assert.deepEqual([...carolAck.members].sort(), ['alice', 'bob', 'carol']);
    await bob.waitFor('user_joined', (e) => e.room === room && e.name === 'carol');

    const acks = [];
    for (const [client, text] of [[alice, 'from 0'], [bob, 'from 1'], [carol, 'from 2'], [alice, 'again 0']]) {
      const ack = await client.send(room, text);
      assert.equal(ack.ok, true, `${client.label}: ${short(ack)}`);
      acks.push(ack);
    }
    assertStrictlyIncreasing(acks.map((a) => a.id), 'acked ids across instances');
    for (const client of [alice, bob, carol]) {
      const got = await client.waitForMessages(room, 4);
      assert.deepEqual(got.map((m) => m.id), acks.map((a) => a.id), `${client.label}: every message once, in order`);
      assert.deepEqual(got.map((m) => m.text), ['from 0', 'from 1', 'from 2', 'again 0']);
    }

    // History written on one instance is served by another.
    const dave = await open(1, 'dave');
    const daveAck = await dave.join(room, 'dave', { since: acks[1].id });
    assert.deepEqual(daveAck.history.map((m) => m.id), acks.slice(2).map((a) => a.id), 'since across instances');

    // Typing crosses instances too.
    alice.socket.emit('typing', { room, typing: true });
    const typing = await carol.waitFor('typing', (e) => e.room === room && e.name === 'alice');
    assert.equal(typing.typing, true);

    // Room counts from any instance count every instance.
    for (const client of [alice, bob, carol]) {
      const ack = await client.ack('rooms');
      assert.deepEqual(ack.rooms.find((r) => r.name === room), { name: room, members: 4 }, `${client.label} rooms ack`);
    }
    const watcher = await open(2, 'watcher');
    await dave.ack('leave', { room });
    await watcher.waitFor('rooms', (e) => e.rooms.some((r) => r.name === room && r.members === 3), 5000, 'with 3 members after dave left');
    const left = await carol.waitFor('user_left', (e) => e.room === room && e.name === 'dave');
    assert.equal(left.reason, 'left');

    bob.socket.disconnect();
    const gone = await alice.waitFor('user_left', (e) => e.room === room && e.name === 'bob');
    assert.equal(gone.reason, 'disconnected', 'a disconnect on instance 1 is seen on instance 0');
    // The count lives with the room list (on a Redis Cluster, on another
    // shard than the room): it follows the user_left within a round trip.
    let members;
    await waitUntil(async () => {
      members = (await carol.ack('rooms')).rooms.find((r) => r.name === room)?.members;
      return members === 2;
    }, 5000, () => `carol's rooms ack still counts ${members} members after bob left`);
  });

  test('name_taken across instances, case-insensitive; clientId takeover across instances', async () => {
    const room = unique('names');
    const holder = await open(0, 'holder');
    await holder.join(room, 'Erin', { clientId: 'erin-tab' });
    const observer = await open(2, 'observer');
    await observer.join(room, 'observer');
    const rival = await open(1, 'rival');
    const taken = await rival.ack('join', { room, name: 'erin' });
    assert.ok(isErrorAck(taken, ['name_taken']), `same name on another instance: ${short(taken)}`);
    const otherId = await rival.ack('join', { room, name: 'ERIN', clientId: 'not-erin' });
    assert.ok(isErrorAck(otherId, ['name_taken']), `another clientId: ${short(otherId)}`);

    // Concurrent joins of one name on three instances: exactly one wins.
    const contenders = await Promise.all([0, 1, 2].map((i) => open(i, `contender${i}`)));
    const outcomes = await Promise.all(contenders.map((c, i) => c.ack('join', { room, name: i === 1 ? 'FRANK' : 'frank' })));
    assert.equal(outcomes.filter((o) => o.ok).length, 1, `exactly one of the simultaneous joins wins: ${short(outcomes)}`);
    assert.equal(outcomes.filter((o) => isErrorAck(o, ['name_taken'])).length, 2, short(outcomes));

    // The same clientId on another instance takes the name over silently.
    const successor = await open(2, 'successor');
    const ack = await successor.ack('join', { room, name: 'Erin', clientId: 'erin-tab' });
    assert.equal(ack.ok, true, `takeover across instances: ${short(ack)}`);
    assert.equal(ack.members.filter((m) => m.toLowerCase() === 'erin').length, 1, `erin listed once: ${short(ack.members)}`);
    const sent = await observer.send(room, 'who gets this?');
    await successor.waitFor('message', (m) => m.id === sent.id);
    await sleep(QUIET_MS);
    assert.equal(holder.messages(room).length, 0, 'the older socket on instance 0 was removed from the room');
    const notices = [...observer.events.user_joined, ...observer.events.user_left].filter((e) => e.room === room && e.name.toLowerCase() === 'erin');
    assert.deepEqual(notices, [], 'no leave or join notice for a takeover');
  });

  test('same ids, same order on every instance while every instance sends at full speed', () => withServerLogs(instances, async () => {
    const room = unique('order');
    const perSender = 150;
    const receivers = await Promise.all([0, 1, 2].map((i) => open(i, `receiver${i}`)));
    await Promise.all(receivers.map((r, i) => r.join(room, `receiver${i}`)));
    const senders = await Promise.all([0, 0, 1, 1, 2, 2].map((i, k) => open(i, `sender${k}`)));
    await Promise.all(senders.map((s, k) => s.join(room, `sender${k}`)));

    // Fire everything without waiting for acks: the instances race for ids.
    const ackPromises = senders.flatMap((sender, k) =>
      Array.from({ length: perSender }, (_, i) => sender.ack('message', { room, text: `s${k}-${i}` }, 30_000)));
    const acks = await Promise.all(ackPromises);
    const failed = acks.filter((a) => !a.ok);
    assert.deepEqual(failed.slice(0, 3), [], `every message is accepted (${failed.length} refused)`);
    const ids = acks.map((a) => a.id).sort((a, b) => a - b);
    assert.equal(new Set(ids).size, ids.length, 'acked ids are unique');

    const everyone = [...receivers, ...senders];
    for (const client of everyone) {
      await client.waitForMessages(room, ids.length, 30_000);
    }
    await sleep(QUIET_MS);
    const reference = receivers[0].messages(room).map((m) => m.id);
    for (const client of everyone) {
      const got = client.messages(room).map((m) => m.id);
      assertStrictlyIncreasing(got, `${client.label} receives in id order, without duplicates`);
      assert.deepEqual(missingFrom(got, ids), [], `${client.label} misses no acked message`);
      assert.deepEqual(got, reference, `${client.label} sees the same sequence as ${receivers[0].label}`);
    }
    // The text carried by an id is the same everywhere.
    const texts = new Map(receivers[0].messages(room).map((m) => [m.id, m.text]));
    for (const client of everyone) {
      for (const message of client.messages(room)) assert.equal(message.text, texts.get(message.id), `text of id ${message.id}`);
    }
  }));

  test('a burst past a 1024-slot channel: every member gets every message exactly once, in order', () => withServerLogs(instances, async () => {
    const room = unique('burst');
    const perSender = 1100;
    const receivers = await Promise.all([1, 2, 2].map((i, k) => open(i, `burst-receiver${k}`)));
    await Promise.all(receivers.map((r, k) => r.join(room, `burst-receiver${k}`)));
    const senders = await Promise.all([0, 0, 0].map((i, k) => open(i, `burst-sender${k}`)));
    await Promise.all(senders.map((s, k) => s.join(room, `burst-sender${k}`)));

    const started = Date.now();
    const acks = await Promise.all(senders.flatMap((sender, k) =>
      Array.from({ length: perSender }, (_, i) => sender.ack('message', { room, text: `b${k}-${i}` }, 60_000))));
    const refused = acks.filter((a) => !a.ok);
    assert.equal(refused.length, 0, `all ${acks.length} accepted; first refusal: ${short(refused[0])}`);
    const ids = acks.map((a) => a.id).sort((a, b) => a - b);

    for (const client of [...receivers, ...senders]) {
      try {
        await client.waitForMessages(room, ids.length, 60_000);
      } catch (error) {
        const got = client.messages(room).map((m) => m.id);
        const missing = missingFrom(got, ids);
        assert.fail(`${client.label}: ${got.length}/${ids.length} received, ${missing.length} missing (first ${missing.slice(0, 5)}): ${error.message}`);
      }
    }
    const elapsed = Date.now() - started;
    await sleep(QUIET_MS);
    for (const client of [...receivers, ...senders]) {
      const got = client.messages(room).map((m) => m.id);
      assertStrictlyIncreasing(got, `${client.label}`);
      assert.equal(got.length, ids.length, `${client.label}: exactly once`);
      assert.deepEqual(missingFrom(got, ids), [], `${client.label}: nothing missing`);
      assert.equal(client.socket.connected, true, `${client.label} stayed connected`);
    }
    // For the report: how the receiving instances got there (gap repairs from
    // the history mean the fast path did drop or reorder messages).
    const counters = await Promise.all(instances.slice(1).map(async (instance) => {
      const text = await (await fetch(`${instance.url}/metrics`)).text();
      return text.split('\n').filter((line) => /^rooms_(gap_repairs|messages_lost|cluster_messages_in)/.test(line)).join(' ');
    }));
    console.log(`# burst: ${ids.length} messages from instance 0 delivered to ${receivers.length + senders.length} members in ${elapsed} ms; ${counters.join(' | ')}`);
  }));
});

/**
 * A chat client that survives the death of its instance the way the page
 * does: on disconnect it connects to the next URL, re-joins with `since` (last
 * id seen) and its clientId. It records every message it got, live or from a
 * join ack's history.
 */
class FailoverClient {
  constructor(urls, room, name, { reconnect = true } = {}) {
    this.urls = urls;
    this.urlIndex = 0;
    this.room = room;
    this.name = name;
    this.clientId = `${name}-${Math.random().toString(16).slice(2)}`;
    this.reconnect = reconnect;
    this.lastId = 0;
    this.live = []; // ids from `message` events, every connection
    this.history = []; // ids from join acks
    this.userLeft = [];
    this.userJoined = [];
    this.connections = 0;
    this.joined = false;
    this.closed = false;
    this.rejoinedAt = null;
  }

  get received() {
    return new Set([...this.live, ...this.history]);
  }

  async start() {
    await this.open();
  }

  async open() {
    const url = this.urls[this.urlIndex % this.urls.length];
    const socket = io(url, { forceNew: true, reconnection: false, timeout: 3000 });
    this.socket = socket;
    socket.on('message', (m) => {
      if (m.room !== this.room) return;
      this.live.push(m.id);
      this.lastId = Math.max(this.lastId, m.id);
    });
    socket.on('user_left', (e) => { if (e.room === this.room) this.userLeft.push({ ...e, at: Date.now() }); });
    socket.on('user_joined', (e) => { if (e.room === this.room) this.userJoined.push({ ...e, at: Date.now() }); });
    socket.on('disconnect', () => {
      this.joined = false;
      if (this.closed || !this.reconnect) return;
      this.urlIndex += 1;
      this.reopen();
    });
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    this.connections += 1;
    const payload = { room: this.room, name: this.name, clientId: this.clientId };
    if (this.lastId > 0) payload.since = this.lastId;
    const ack = await socket.timeout(5000).emitWithAck('join', payload);
    if (!ack.ok) throw new Error(`${this.name}: join refused on ${url}: ${short(ack)}`);
    for (const message of ack.history) {
      this.history.push(message.id);
      this.lastId = Math.max(this.lastId, message.id);
    }
    this.joined = true;
    if (this.connections > 1) this.rejoinedAt = Date.now();
  }

  /** Tries the next instances until one takes us back. */
  async reopen() {
    const deadline = Date.now() + 15_000;
    while (!this.closed && Date.now() < deadline) {
      try {
        await this.open();
        return;
      } catch (error) {
        this.lastError = error.message;
        this.socket?.removeAllListeners();
        this.socket?.disconnect();
        this.urlIndex += 1;
        await sleep(200);
      }
    }
  }

  /** Sends one message; returns its ack id or null (not connected, refused, lost). */
  async send(text) {
    if (!this.joined) return null;
    try {
      const ack = await this.socket.timeout(3000).emitWithAck('message', { room: this.room, text });
      return ack.ok ? ack.id : null;
    } catch {
      return null;
    }
  }

  close() {
    this.closed = true;
    this.socket?.disconnect();
  }
}

describe('rooms-chat cluster: kill -9 of an instance', () => {
  let redis;
  let instances = [];
  before(async () => {
    redis = await startRedis();
    instances = await startCluster(3, redis);
  });
  after(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await redis?.stop();
  });

  test('members of the dead instance are reported left; its clients fail over with since and miss nothing', async () => {
    const room = unique('failover');
    const [a, b, c] = instances.map((instance) => instance.url);
    // Survivors stay on b and c; movers start on a and fail over to b / c;
    // ghosts on a never come back and must be reported as disconnected.
    const survivors = [new FailoverClient([b], room, 'survivor-b'), new FailoverClient([c], room, 'survivor-c')];
    const movers = [new FailoverClient([a, b, c], room, 'mover-1'), new FailoverClient([a, c, b], room, 'mover-2')];
    const ghosts = [new FailoverClient([a], room, 'ghost-1', { reconnect: false }), new FailoverClient([a], room, 'ghost-2', { reconnect: false })];
    const everyone = [...survivors, ...movers, ...ghosts];
    const chatting = [...survivors, ...movers];
    for (const client of everyone) await client.start();
    await waitUntil(() => survivors[0].userJoined.length >= 5, 5000, () => `survivor-b saw ${survivors[0].userJoined.length}/5 joins`);

    // Everyone chats every 40 ms; the kill happens in the middle.
    const acked = [];
    let chatting_ = true;
    const loops = chatting.map(async (client) => {
      let i = 0;
      while (chatting_) {
        const id = await client.send(`${client.name} ${i}`);
        if (id !== null) acked.push(id);
        i += 1;
        await sleep(40);
      }
    });
    const ghostLoop = (async () => {
      for (let i = 0; i < 10; i += 1) {
        for (const ghost of ghosts) { const id = await ghost.send(`ghost ${i}`); if (id !== null) acked.push(id); }
        await sleep(40);
      }
    })();
    await ghostLoop;
    await sleep(500);

    const killedAt = Date.now();
    await instances[0].kill();

    // Ghosts are reported as disconnected on every surviving instance.
    for (const survivor of survivors) {
      for (const ghost of ghosts) {
        await waitUntil(() => survivor.userLeft.some((e) => e.name === ghost.name), 15_000,
          () => `${survivor.name} never saw ${ghost.name} leave (user_left: ${short(survivor.userLeft.map((e) => e.name))})`);
        const event = survivor.userLeft.find((e) => e.name === ghost.name);
        assert.equal(event.reason, 'disconnected', `${ghost.name} leaves with reason disconnected`);
        assert.ok(event.at - killedAt <= 12_000, `${ghost.name} reported ${event.at - killedAt} ms after the kill (want ~10 s at most)`);
      }
    }
    const detection = Math.max(...survivors.flatMap((s) => s.userLeft.filter((e) => e.name.startsWith('ghost')).map((e) => e.at))) - killedAt;

    await waitUntil(() => movers.every((m) => m.joined && m.connections >= 2), 15_000,
      () => `movers back: ${movers.map((m) => `${m.name}:${m.joined}/${m.connections} ${m.lastError ?? ''}`).join(', ')}`);
    await sleep(1000); // some more chat after the failover
    chatting_ = false;
    await Promise.all(loops);
    await sleep(1000); // let the last messages arrive everywhere

    const ackedSorted = [...new Set(acked)].sort((x, y) => x - y);
    const seenByAnyone = new Set(ackedSorted);
    for (const client of chatting) for (const id of client.received) seenByAnyone.add(id);
    const all = [...seenByAnyone].sort((x, y) => x - y);
    for (const client of chatting) {
      const missing = missingFrom([...client.received], all);
      assert.deepEqual(missing.slice(0, 10), [], `${client.name} misses ${missing.length} of ${all.length} messages (live ${client.live.length}, history ${client.history.length})`);
      const duplicates = client.live.length - new Set(client.live).size;
      assert.equal(duplicates, 0, `${client.name} received ${duplicates} messages twice live`);
    }
    for (const survivor of survivors) {
      assertStrictlyIncreasing(survivor.live, `${survivor.name} (never disconnected) in order`);
      assert.equal(survivor.connections, 1, `${survivor.name} kept its connection`);
    }
    // Movers came back under their own names: present in the member list, and
    // any notice about them ends with them present.
    const check = await connect(b, { label: 'checker' });
    try {
      const ack = await check.join(room, 'checker');
      for (const mover of movers) assert.ok(ack.members.includes(mover.name), `${mover.name} is a member again: ${short(ack.members)}`);
      for (const ghost of ghosts) assert.ok(!ack.members.includes(ghost.name), `${ghost.name} is gone: ${short(ack.members)}`);
      for (const mover of movers) {
        const notices = [...survivors[0].userLeft, ...survivors[0].userJoined]
          .filter((e) => e.name === mover.name && e.at >= killedAt).sort((x, y) => x.at - y.at);
        assert.ok(notices.length === 0 || notices.at(-1).reason === undefined,
          `${mover.name}: notices after the kill must not end with a leave: ${short(notices)}`);
      }
    } finally {
      check.close();
    }
    for (const client of everyone) client.close();
    console.log(`# kill -9: dead members reported after ${detection} ms; ${all.length} messages, none lost`);
  });
});

describe('rooms-chat cluster: Redis outage', () => {
  let redis;
  let instances = [];
  before(async () => {
    redis = await startRedis();
    instances = await startCluster(2, redis);
  });
  after(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await redis?.stop();
  });

  test('Redis down: no crash, acks say unavailable, /healthz 503; back: delivery resumes within ~5 s', async () => {
    const room = unique('outage');
    const alice = await connect(instances[0].url, { label: 'alice@0' });
    const bob = await connect(instances[1].url, { label: 'bob@1' });
    try {
      await alice.join(room, 'alice');
      await bob.join(room, 'bob');
      const before = await alice.send(room, 'before the outage');
      assert.equal(before.ok, true);
      await bob.waitFor('message', (m) => m.id === before.id);

      await redis.stop();
      const downAt = Date.now();
      // Every instance notices and says so.
      for (const instance of instances) {
        await waitUntil(async () => {
          const response = await fetch(`${instance.url}/healthz`).catch(() => null);
          if (!response || response.status !== 503) return false;
          const body = await response.json().catch(() => ({}));
          return body.redis === 'down';
        }, 10_000, () => `${instance.url}/healthz never answered 503 {"redis":"down"}`);
      }
      // A message during the outage is refused as unavailable, not lost silently.
      const during = await alice.ack('message', { room, text: 'during the outage' }, 10_000);
      assert.ok(isErrorAck(during, ['unavailable']), `message during the outage: ${short(during)}`);
      const joinDuring = await bob.ack('join', { room: `${room}-x`, name: 'bob' }, 10_000);
      assert.ok(isErrorAck(joinDuring, ['unavailable']), `join during the outage: ${short(joinDuring)}`);
      assert.equal(alice.socket.connected && bob.socket.connected, true, 'sockets survive the outage');
      for (const instance of instances) assert.equal(instance.proc.exitCode, null, 'no instance exited');
      const outageMs = Date.now() - downAt;
      if (outageMs < 3000) await sleep(3000 - outageMs);

      await redis.restart();
      const upAt = Date.now();
      let resumed = null;
      let attempt = 0;
      let lastAck = null;
      while (!resumed && Date.now() - upAt < 15_000) {
        attempt += 1;
        const ack = await alice.ack('message', { room, text: `after ${attempt}` }, 5000).catch((e) => ({ ok: false, e: e.message }));
        lastAck = ack;
        if (ack.ok) {
          const got = await bob.waitFor('message', (m) => m.id === ack.id, 2000).catch(() => null);
          if (got) resumed = { at: Date.now(), id: ack.id };
        } else {
          await sleep(250);
        }
      }
      assert.ok(resumed, `cross-instance delivery did not resume within 15 s of Redis coming back; last ack: ${short(lastAck)}`);
      const recovery = resumed.at - upAt;
      assert.ok(recovery <= 8_000, `delivery resumed ${recovery} ms after Redis came back (want ~5 s)`);
      for (const instance of instances) {
        await waitUntil(async () => (await fetch(`${instance.url}/healthz`)).status === 200, 10_000,
          () => `${instance.url}/healthz back to 200`);
      }
      // Membership survived: bob (instance 1) can still write to alice (instance 0).
      const reverse = await bob.send(room, 'bob after the outage');
      assert.equal(reverse.ok, true, `bob after the outage: ${short(reverse)}`);
      await alice.waitFor('message', (m) => m.id === reverse.id);
      // Ids keep increasing for clients that lived through it (they resume with since = last id).
      assertStrictlyIncreasing(bob.messages(room).map((m) => m.id),
        'ids seen by bob across the outage (Redis came back empty: the sequence must not restart)');
      for (const instance of instances) assert.equal(instance.proc.exitCode, null, 'no instance exited');
      console.log(`# redis outage: delivery resumed ${recovery} ms after redis came back`);
    } finally {
      alice.close();
      bob.close();
    }
  });
});
