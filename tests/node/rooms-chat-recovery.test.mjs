// rooms-chat connection state recovery with the official socket.io-client
// (socket.io 4.6+): a client whose connection drops and comes back within
// RECOVERY_MS, through the same instance or another one, is recovered
// (`socket.recovered`), is back in its rooms under its names, and receives
// exactly the events it missed, in order, once, without a join; the others
// see nothing of a blip shorter than PRESENCE_GRACE_MS. Past RECOVERY_MS it
// is not recovered, the others saw it leave, and a re-join with `since`
// gives it what it missed.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep } from '../lib/server.mjs';
import { startRedis } from '../lib/redis.mjs';
import { connect, short, unique, waitUntil } from '../lib/rooms.mjs';

/** How long a cut client stays away before it reconnects. */
const AWAY_MS = 1500;

/** A client that reconnects by itself, AWAY_MS after its connection drops. */
const reconnecting = (label) => ({
  label,
  reconnection: true,
  reconnectionDelay: AWAY_MS,
  reconnectionDelayMax: AWAY_MS,
  randomizationFactor: 0,
});

/**
 * Drops `client`'s connection as a lost network would (its transport
 * closes under it, no disconnect packet); it reconnects to `next` if given.
 * Resolves once it is connected again.
 */
async function cutAndReconnect(client, next) {
  const socket = client.socket;
  const back = new Promise((resolve) => socket.once('connect', resolve));
  if (next) socket.io.uri = next;
  socket.io.engine.close();
  await waitUntil(() => !socket.connected, 5_000, () => `${client.label} still connected`);
  return back;
}

/** Notices about `name` that `watcher` received. */
const noticesAbout = (watcher, name) => [
  ...watcher.events.user_joined.filter((event) => event.name === name).map(() => 'joined'),
  ...watcher.events.user_left.filter((event) => event.name === name).map(() => 'left'),
];

/**
 * Alice (recovering) in rooms A and B with bob and a watcher; bob writes
 * while alice is away. `alice` connects to `first`, comes back at `second`.
 */
async function blip(first, second) {
  const roomA = unique('recover-a');
  const roomB = unique('recover-b');
  const alice = await connect(first.url, reconnecting('alice'));
  const bob = await connect(first.url, { label: 'bob' });
  const watcher = await connect(second.url, { label: 'watcher' });
  try {
    for (const room of [roomA, roomB]) {
      await watcher.join(room, 'watcher');
      await bob.join(room, 'bob');
      await alice.join(room, 'alice');
    }
    // Something to hand back an offset for.
    const before = await bob.send(roomA, 'before the blip');
    await alice.waitForMessages(roomA, 1);
    const away = cutAndReconnect(alice, second.url === first.url ? undefined : second.url);
    await waitUntil(() => !alice.socket.connected, 5_000);
    const missedA = [];
    const missedB = [];
    for (let n = 0; n < 5; n += 1) missedA.push((await bob.send(roomA, `missed a${n}`)).id);
    for (let n = 0; n < 3; n += 1) missedB.push((await bob.send(roomB, `missed b${n}`)).id);
    await away;
    assert.equal(alice.socket.recovered, true, 'the socket is recovered');
    await alice.waitForMessages(roomA, 6);
    await alice.waitForMessages(roomB, 3);
    // After the missed ones, a live message: nothing more may come between.
    const live = await bob.send(roomA, 'after the blip');
    await alice.waitForMessages(roomA, 7);
    assert.deepEqual(alice.messages(roomA).map((m) => m.id), [before.id, ...missedA, live.id],
      'room A: every message once, in order');
    assert.deepEqual(alice.messages(roomB).map((m) => m.id), missedB, 'room B: every message once, in order');
    // Back in the room under its name, without a join.
    const own = await alice.send(roomA, 'still here');
    assert.equal(own.ok, true, short(own));
    const seen = await watcher.waitFor('message', (m) => m.id === own.id && m.room === roomA);
    assert.equal(seen.from, 'alice');
    assert.deepEqual(noticesAbout(watcher, 'alice'), ['joined', 'joined'], 'a blip shows the others nothing');
  } finally {
    alice.close();
    bob.close();
    watcher.close();
  }
}

describe('rooms-chat connection state recovery', () => {
  const stops = [];
  after(async () => { for (const stop of stops) await stop(); });

  test('one instance: a client cut for a moment comes back recovered with exactly what it missed', async () => {
    const server = await startServer('rooms-chat', { MSG_RATE: '0' });
    stops.push(server.stop);
    await blip(server, server);
  });

  test('two instances: the client cut from one is recovered by the other', async () => {
    const redis = await startRedis();
    stops.push(redis.stop);
    const env = { MSG_RATE: '0', REDIS_URL: redis.url, HEARTBEAT_MS: '500', INSTANCE_TTL_MS: '2500' };
    const one = await startServer('rooms-chat', env);
    const two = await startServer('rooms-chat', env);
    stops.push(one.stop, two.stop);
    await blip(one, two);
  });

  test('past RECOVERY_MS the client is not recovered, was seen leaving, and re-joins with since', async () => {
    const server = await startServer('rooms-chat', { MSG_RATE: '0', RECOVERY_MS: '600', PRESENCE_GRACE_MS: '300' });
    stops.push(server.stop);
    const room = unique('recover-late');
    const alice = await connect(server.url, reconnecting('alice'));
    const bob = await connect(server.url, { label: 'bob' });
    try {
      await bob.join(room, 'bob');
      await alice.join(room, 'alice');
      const before = await bob.send(room, 'before');
      await alice.waitForMessages(room, 1);
      const away = cutAndReconnect(alice);
      const left = await bob.waitFor('user_left', (event) => event.name === 'alice', 5_000, 'for alice');
      assert.equal(left.reason, 'disconnected');
      const missed = [];
      for (let n = 0; n < 3; n += 1) missed.push((await bob.send(room, `missed ${n}`)).id);
      await away;
      assert.equal(alice.socket.recovered, false, 'too late to recover');
      const notInRoom = await alice.send(room, 'am I in?');
      assert.equal(notInRoom.error?.code, 'not_in_room', short(notInRoom));
      const rejoin = await alice.join(room, 'alice', { since: before.id });
      assert.deepEqual(rejoin.history.map((m) => m.id), missed, 'the re-join gives what was missed');
      await sleep(200);
      assert.deepEqual(alice.messages(room).map((m) => m.id), [before.id], 'nothing arrived twice');
    } finally {
      alice.close();
      bob.close();
    }
  });
});
