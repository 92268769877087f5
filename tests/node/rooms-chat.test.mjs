// rooms-chat, one instance (embedded mode), driven by the official
// socket.io-client 4.x over both transports: every point of contract
// section 3, bad payloads, the rate limit and the origin check.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, sleep } from '../lib/server.mjs';
import { connect, isErrorAck, short, unique, waitUntil } from '../lib/rooms.mjs';

const QUIET_MS = 400; // how long we listen to be sure something did NOT arrive

describe('rooms-chat (single instance)', () => {
  let server;
  const clients = [];
  const open = async (label, options = {}) => {
    const client = await connect(server.url, { label, ...options });
    clients.push(client);
    return client;
  };

  before(async () => {
    server = await startServer('rooms-chat', { MSG_RATE: '0' });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server?.stop();
  });

  test('serves the page, the vendored client, /healthz and /metrics', async () => {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /vendor\/socket\.io\.min\.js/, 'the page loads the vendored client');
    const vendored = await fetch(`${server.url}/vendor/socket.io.min.js`);
    assert.equal(vendored.status, 200, 'vendor/socket.io.min.js is served');
    assert.ok((await vendored.text()).length > 10_000);
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, 'ok');
    const metrics = await fetch(`${server.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^# (HELP|TYPE) /m, 'Prometheus text exposition');
  });

  test('join ack: ok, room, members, history (empty in a new room)', async () => {
    const room = unique('join');
    const alice = await open('alice');
    const ack = await alice.ack('join', { room, name: 'alice' });
    assert.equal(ack.ok, true, `join ack: ${short(ack)}`);
    assert.equal(ack.room, room);
    assert.deepEqual(ack.members, ['alice']);
    assert.deepEqual(ack.history, []);

    const bob = await open('bob');
    const bobAck = await bob.ack('join', { room: `  ${room}  `, name: '  bob ' });
    assert.equal(bobAck.ok, true, `join with spaces: ${short(bobAck)}`);
    assert.equal(bobAck.room, room, 'room name is trimmed');
    assert.deepEqual([...bobAck.members].sort(), ['alice', 'bob'], 'names are trimmed, both listed');
  });

  test('message: ack {ok,id,ts}, broadcast to every member incl. sender, per-room increasing ids', async () => {
    const roomA = unique('msg-a');
    const roomB = unique('msg-b');
    const alice = await open('alice');
    const bob = await open('bob');
    await alice.join(roomA, 'alice');
    await bob.join(roomA, 'bob');
    await alice.join(roomB, 'alice');

    const before = Date.now();
    const acks = [];
    for (let i = 0; i < 5; i += 1) acks.push(await alice.send(roomA, `hello ${i}`));
    const ackB = await alice.send(roomB, 'in b');
    for (const ack of [...acks, ackB]) {
      assert.equal(ack.ok, true, `message ack: ${short(ack)}`);
      assert.ok(Number.isInteger(ack.id), `id is an integer: ${short(ack)}`);
      assert.ok(Number.isInteger(ack.ts) && ack.ts >= before - 5000 && ack.ts <= Date.now() + 5000, `ts is unix ms: ${short(ack)}`);
    }
    for (let i = 1; i < acks.length; i += 1) assert.ok(acks[i].id > acks[i - 1].id, 'ids strictly increase within a room');

    for (const client of [alice, bob]) {
      const received = await client.waitForMessages(roomA, 5);
      assert.deepEqual(received.map((m) => m.id), acks.map((a) => a.id), `${client.label} receives every message once, in id order`);
      received.forEach((message, i) => {
        assert.deepEqual(message, { id: acks[i].id, room: roomA, from: 'alice', text: `hello ${i}`, ts: acks[i].ts });
      });
    }
    const inB = await alice.waitForMessages(roomB, 1);
    assert.equal(inB[0].id, ackB.id);
    assert.equal(inB[0].text, 'in b');
    await sleep(QUIET_MS);
    assert.equal(bob.messages(roomB).length, 0, 'a non-member receives nothing from a room');
    assert.equal(alice.messages(roomA).length, 5, 'no duplicate');

    // Text is trimmed and counted in characters, not bytes.
    const unicode = 'é'.repeat(2000);
    const okAck = await alice.send(roomA, `  ${unicode}  `);
    assert.equal(okAck.ok, true, '2000 two-byte characters are allowed');
    const got = await bob.waitFor('message', (m) => m.id === okAck.id);
    assert.equal(got.text, unicode, 'text is trimmed');
    const tooLong = await alice.send(roomA, 'x'.repeat(2001));
    assert.ok(isErrorAck(tooLong, ['too_large']), `2001 characters: ${short(tooLong)}`);
  });

  test('join history: last 50 oldest first; since returns what came after', async () => {
    const room = unique('history');
    const writer = await open('writer');
    await writer.join(room, 'writer');
    const ids = [];
    for (let i = 0; i < 60; i += 1) {
      const ack = await writer.send(room, `m${i}`);
      assert.equal(ack.ok, true, short(ack));
      ids.push(ack.id);
    }
    const reader = await open('reader');
    const ack = await reader.join(room, 'reader');
    assert.equal(ack.history.length, 50, 'up to 50 messages of history');
    assert.deepEqual(ack.history.map((m) => m.id), ids.slice(10), 'the last 50, oldest first');
    assert.deepEqual(ack.history.map((m) => m.text), ids.slice(10).map((_, i) => `m${i + 10}`));
    assert.equal(ack.history[0].room, room);
    assert.equal(ack.history[0].from, 'writer');

    const late = await open('late');
    const sinceAck = await late.join(room, 'late', { since: ids[54] });
    assert.deepEqual(sinceAck.history.map((m) => m.id), ids.slice(55), 'since: every message after it');
    const longAway = await open('longaway');
    const longAck = await longAway.join(room, 'longaway', { since: ids[0] });
    assert.deepEqual(longAck.history.map((m) => m.id), ids.slice(1),
      'since: every message after it that the server still holds, even more than 50');
    const upToDate = await open('uptodate');
    const noneAck = await upToDate.join(room, 'uptodate', { since: ids[59] });
    assert.deepEqual(noneAck.history, [], 'since = last id: nothing');
  });

  test('leave: ack {ok:true}, user_left "left" to the others, no more messages', async () => {
    const room = unique('leave');
    const alice = await open('alice');
    const bob = await open('bob');
    await alice.join(room, 'alice');
    await bob.join(room, 'bob');
    const joined = await alice.waitFor('user_joined', (e) => e.room === room && e.name === 'bob');
    assert.ok(Number.isInteger(joined.ts), `user_joined has ts: ${short(joined)}`);
    await sleep(QUIET_MS);
    assert.equal(bob.events.user_joined.filter((e) => e.room === room).length, 0, 'the joiner is not told about itself');

    const ack = await bob.ack('leave', { room });
    assert.deepEqual(ack, { ok: true });
    const left = await alice.waitFor('user_left', (e) => e.room === room && e.name === 'bob');
    assert.equal(left.reason, 'left');
    assert.ok(Number.isInteger(left.ts));

    const after = await alice.send(room, 'bob is gone');
    assert.equal(after.ok, true);
    await alice.waitFor('message', (m) => m.id === after.id);
    await sleep(QUIET_MS);
    assert.equal(bob.messages(room).length, 0, 'a socket that left receives nothing');
    const notMember = await bob.send(room, 'still here?');
    assert.ok(isErrorAck(notMember, ['not_in_room']), `message after leave: ${short(notMember)}`);
    const rejoin = await bob.join(room, 'bob');
    assert.deepEqual([...rejoin.members].sort(), ['alice', 'bob'], 'the name is free again after leaving');
  });

  test('user_left with reason "disconnected" when a client disconnects or its transport drops', async () => {
    const room = unique('disc');
    const watcher = await open('watcher');
    await watcher.join(room, 'watcher');
    const polite = await open('polite');
    await polite.join(room, 'polite');
    const abrupt = await open('abrupt', { transports: ['websocket'] });
    await abrupt.join(room, 'abrupt');

    polite.socket.disconnect();
    const left = await watcher.waitFor('user_left', (e) => e.room === room && e.name === 'polite');
    assert.equal(left.reason, 'disconnected', short(left));

    // Close the WebSocket under the client without a Socket.IO goodbye.
    abrupt.socket.io.engine.close();
    const dropped = await watcher.waitFor('user_left', (e) => e.room === room && e.name === 'abrupt', 10_000);
    assert.equal(dropped.reason, 'disconnected', short(dropped));

    const ack = await watcher.ack('rooms');
    const entry = ack.rooms.find((r) => r.name === room);
    assert.equal(entry?.members, 1, `only the watcher is left: ${short(ack.rooms)}`);
  });

  test('typing is relayed to the others only', async () => {
    const room = unique('typing');
    const alice = await open('alice');
    const bob = await open('bob');
    await alice.join(room, 'alice');
    await bob.join(room, 'bob');
    alice.socket.emit('typing', { room, typing: true });
    const typing = await bob.waitFor('typing', (e) => e.room === room);
    assert.deepEqual(typing, { room, name: 'alice', typing: true });
    alice.socket.emit('typing', { room, typing: false });
    const stopped = await bob.waitFor('typing', (e) => e.room === room && e.typing === false);
    assert.equal(stopped.name, 'alice');
    await sleep(QUIET_MS);
    assert.equal(alice.events.typing.filter((e) => e.room === room).length, 0, 'the typist does not get its own typing');

    const outsider = await open('outsider');
    outsider.socket.emit('typing', { room, typing: true });
    await sleep(QUIET_MS);
    assert.equal(bob.events.typing.filter((e) => e.room === room && e.name !== 'alice').length, 0,
      'a socket that did not join cannot type into the room');
  });

  test('rooms: ack with counts and `rooms` pushes on change', async () => {
    const room = unique('count');
    const a = await open('a');
    const emptied = unique('emptied');
    await a.join(emptied, 'a');
    await a.ack('leave', { room: emptied });
    await a.join(room, 'a');
    // Only rooms somebody is in are listed, with their counts: not the one
    // just emptied, nor any other an earlier test left behind.
    const watcher = await open('watcher');
    const first = await watcher.ack('rooms');
    assert.equal(first.ok, true, short(first));
    assert.ok(Array.isArray(first.rooms), 'rooms is an array');
    assert.deepEqual(first.rooms.find((r) => r.name === room), { name: room, members: 1 }, 'the ack counts a joined room');
    assert.equal(first.rooms.find((r) => r.name === emptied), undefined, 'a room whose last member left is not listed');
    for (const listed of first.rooms) assert.ok(listed.members >= 1, `a room nobody is in is listed: ${short(listed)}`);

    const b = await open('b');
    await b.join(room, 'b');
    await watcher.waitFor('rooms', (e) => e.rooms.some((r) => r.name === room && r.members === 2), 5000, 'with the room at 2');
    const ack = await watcher.ack('rooms');
    assert.deepEqual(ack.rooms.find((r) => r.name === room), { name: room, members: 2 });

    await a.ack('leave', { room });
    await b.ack('leave', { room });
    await watcher.waitFor('rooms', (e) => !e.rooms.some((r) => r.name === room), 5000, 'without the emptied room');
    const last = await watcher.ack('rooms');
    assert.equal(last.rooms.find((r) => r.name === room), undefined, 'an empty room disappears from the list');
  });

  test('name_taken is case-insensitive and per room', async () => {
    const room = unique('names');
    const first = await open('first');
    await first.join(room, 'Alice');
    const second = await open('second');
    for (const name of ['Alice', 'alice', 'ALICE', ' alice ']) {
      const ack = await second.ack('join', { room, name });
      assert.ok(isErrorAck(ack, ['name_taken']), `join as ${JSON.stringify(name)}: ${short(ack)}`);
    }
    const withOtherId = await second.ack('join', { room, name: 'alice', clientId: 'someone-else' });
    assert.ok(isErrorAck(withOtherId, ['name_taken']), `another clientId does not take the name: ${short(withOtherId)}`);
    const elsewhere = await second.ack('join', { room: `${room}-2`, name: 'alice' });
    assert.equal(elsewhere.ok, true, 'the same name is fine in another room');
    const ack = await second.ack('join', { room, name: 'bob' });
    assert.equal(ack.ok, true, 'the socket can retry with another name');
    const seen = await first.waitFor('user_joined', (e) => e.room === room);
    assert.equal(seen.name, 'bob', 'a refused join is never announced');
  });

  test('clientId takeover: the name moves to the new socket without notices', async () => {
    const room = unique('takeover');
    const observer = await open('observer');
    await observer.join(room, 'observer');
    const oldSocket = await open('old');
    await oldSocket.join(room, 'carol', { clientId: 'tab-1234' });
    await observer.waitFor('user_joined', (e) => e.room === room && e.name === 'carol');
    const m1 = await observer.send(room, 'before');

    const newSocket = await open('new');
    const ack = await newSocket.ack('join', { room, name: 'carol', clientId: 'tab-1234', since: m1.id - 1 });
    assert.equal(ack.ok, true, `takeover join: ${short(ack)}`);
    assert.deepEqual([...ack.members].sort(), ['carol', 'observer'], 'carol is listed once');
    assert.deepEqual(ack.history.map((m) => m.id), [m1.id], 'since works on takeover');

    const m2 = await observer.send(room, 'after');
    await newSocket.waitFor('message', (m) => m.id === m2.id);
    await sleep(QUIET_MS);
    assert.equal(oldSocket.messages(room).filter((m) => m.id === m2.id).length, 0, 'the old socket was removed from the room');
    const oldSend = await oldSocket.send(room, 'ghost');
    assert.ok(isErrorAck(oldSend, ['not_in_room']), `the old socket is no longer in the room: ${short(oldSend)}`);

    oldSocket.socket.disconnect();
    await sleep(QUIET_MS);
    const notices = [...observer.events.user_joined, ...observer.events.user_left]
      .filter((e) => e.room === room && e.name === 'carol');
    assert.equal(notices.length, 1, `only the first join was announced: ${short(notices)}`);
    const rooms = await observer.ack('rooms');
    assert.equal(rooms.rooms.find((r) => r.name === room)?.members, 2, 'counts did not change');
  });

  test('not_in_room for a message to a room the socket has not joined', async () => {
    const room = unique('nir');
    const member = await open('member');
    await member.join(room, 'member');
    const outsider = await open('outsider');
    const ack = await outsider.send(room, 'let me in');
    assert.ok(isErrorAck(ack, ['not_in_room']), short(ack));
    await sleep(QUIET_MS);
    assert.equal(member.messages(room).length, 0, 'nothing reached the room');
  });

  for (const transport of ['websocket', 'polling']) {
    test(`${transport} only: join, chat, presence`, async () => {
      const room = unique(`t-${transport}`);
      const a = await open(`${transport}-a`, { transports: [transport] });
      const b = await open(`${transport}-b`, { transports: [transport] });
      assert.equal(a.socket.io.engine.transport.name, transport);
      await a.join(room, 'a');
      await b.join(room, 'b');
      await a.waitFor('user_joined', (e) => e.room === room && e.name === 'b');
      const acks = [];
      for (let i = 0; i < 10; i += 1) acks.push(await (i % 2 ? b : a).send(room, `${transport} ${i}`));
      for (const client of [a, b]) {
        const got = await client.waitForMessages(room, 10);
        assert.deepEqual(got.map((m) => m.id), acks.map((ack) => ack.id), `${client.label} in order, once`);
      }
      b.socket.disconnect();
      const left = await a.waitFor('user_left', (e) => e.room === room && e.name === 'b');
      assert.equal(left.reason, 'disconnected');
    });
  }

  test('bad payloads get error acks and never reach anyone; the server keeps serving', async () => {
    const room = unique('bad');
    const alice = await open('alice');
    const bob = await open('bob');
    await alice.join(room, 'alice');
    await bob.join(room, 'bob');
    const attacker = await open('attacker');
    await attacker.join(room, 'mallory');

    const common = [null, 42, -1, 3.5, true, 'general', [], [1, 2], [{ room }], {}];
    const cases = {
      join: [...common,
        { room },
        { name: 'x' },
        { room: 5, name: 'x' },
        { room, name: 7 },
        { room: '', name: 'x' },
        { room: '   ', name: 'x' },
        { room, name: '' },
        { room, name: 'a'.repeat(33) },
        { room: 'r'.repeat(41), name: 'x' },
        { room, name: 'bad\u0007name' },
        { room: 'bad\nroom', name: 'x' },
        { room, name: 'x', since: 'yesterday' },
        { room, name: 'x', since: -5 },
        { room, name: 'x', since: { a: 1 } },
        { room, name: 'x', clientId: 123 },
        { room, name: 'x', clientId: 'c'.repeat(65) },
        { room: { nested: true }, name: ['x'] },
        { room, name: 'n'.repeat(10_000) },
      ],
      leave: [...common, { room: 5 }, { room: '' }, { room: 'r'.repeat(41) }],
      message: [...common,
        { room },
        { text: 'hi' },
        { room, text: '' },
        { room, text: '   ' },
        { room, text: 42 },
        { room, text: null },
        { room, text: ['hi'] },
        { room, text: { toString: 'hi' } },
        { room: 5, text: 'hi' },
        { room, text: 'bell\u0007' },
        { room, text: 't'.repeat(10_000) },
      ],
      typing: [...common, { room: 5, typing: true }, { typing: true }],
    };
    for (const [event, payloads] of Object.entries(cases)) {
      for (const payload of payloads) {
        const ack = await attacker.ack(event, payload);
        assert.ok(isErrorAck(ack, ['bad_request', 'too_large']), `${event} ${short(payload)} → ${short(ack)}`);
      }
    }
    // No payload at all.
    for (const event of ['join', 'leave', 'message', 'typing']) {
      const ack = await attacker.ack(event);
      assert.ok(isErrorAck(ack, ['bad_request']), `${event} without payload → ${short(ack)}`);
    }
    // Several arguments, and an unknown event.
    const extra = await attacker.socket.timeout(3000).emitWithAck('message', { room, text: 'ok' }, 'extra', 42)
      .catch((error) => ({ timeout: error.message }));
    assert.ok(extra.ok === true || isErrorAck(extra), `extra arguments are either ignored or refused: ${short(extra)}`);
    const unknown = await attacker.ack('definitely_not_an_event', { room });
    assert.ok(isErrorAck(unknown, ['bad_request']), `unknown event → ${short(unknown)}`);

    // The same garbage without ack callbacks must not break anything either.
    for (const payload of [null, 42, [1], 'x', { room: 5 }]) {
      for (const event of ['join', 'leave', 'message', 'typing', 'rooms', 'nope']) attacker.socket.emit(event, payload);
    }

    // The server still serves everyone, and nothing bad reached them.
    const ack = await alice.send(room, 'still fine');
    assert.equal(ack.ok, true, short(ack));
    const got = await bob.waitFor('message', (m) => m.id === ack.id);
    assert.equal(got.text, 'still fine');
    const legit = new Set(['still fine', 'ok']);
    const strays = bob.messages(room).filter((m) => !legit.has(m.text));
    assert.deepEqual(strays, [], 'no bad payload was broadcast');
    assert.deepEqual(bob.events.typing.filter((e) => e.name !== 'mallory' || e.room !== room), [], 'no stray typing event');
    const rooms = await bob.ack('rooms');
    assert.equal(rooms.rooms.find((r) => r.name === room)?.members, 3, `membership intact: ${short(rooms.rooms)}`);
    assert.equal(attacker.socket.connected, true, 'a client sending bad payloads keeps its connection');
  });

  test('a 100 KB payload is refused (error ack or that socket closed) without harming anyone', async () => {
    const room = unique('huge');
    const alice = await open('alice');
    const bob = await open('bob');
    await alice.join(room, 'alice');
    await bob.join(room, 'bob');
    for (const transport of ['websocket', 'polling']) {
      const attacker = await open(`huge-${transport}`, { transports: [transport] });
      await attacker.join(room, `huge-${transport}`);
      const huge = 'x'.repeat(100 * 1024);
      const closed = new Promise((resolve) => attacker.socket.once('disconnect', (reason) => resolve({ disconnected: reason })));
      for (const payload of [{ room, text: huge }, { room: huge, name: 'x' }, { room, name: huge }]) {
        const event = 'text' in payload ? 'message' : 'join';
        const outcome = await Promise.race([
          attacker.socket.timeout(5000).emitWithAck(event, payload).catch((error) => ({ timeout: error.message })),
          closed,
        ]);
        assert.ok(isErrorAck(outcome, ['too_large', 'bad_request']) || outcome.disconnected,
          `${transport} ${event} with 100 KB: ${short(outcome)}`);
        if (outcome.disconnected) break;
      }
      attacker.close();
    }
    const ack = await alice.send(room, 'after the flood');
    assert.equal(ack.ok, true);
    await bob.waitFor('message', (m) => m.id === ack.id);
    assert.deepEqual(bob.messages(room).map((m) => m.text), ['after the flood'], 'nothing oversized was broadcast');
  });

  test('malformed Socket.IO packets on a raw WebSocket do not hurt the server', async () => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    const frames = [];
    ws.on('message', (data) => frames.push(String(data)));
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    await waitUntil(() => frames.some((f) => f.startsWith('0')), 3000, () => `engine.io open packet; got ${frames}`);
    ws.send('40');
    await waitUntil(() => frames.some((f) => f.startsWith('40')), 3000, () => `socket.io connect; got ${frames}`);
    for (const frame of ['42', '42[', '42["join"', '42{"a":1}', '42[1,2,3]', '421["join",{"room":5}]', '4', '9', 'garbage', '42["message",{"room":"x","text":"\u0000"}]']) {
      if (ws.readyState === WebSocket.OPEN) ws.send(frame);
    }
    ws.send(Buffer.from([0xff, 0x00, 0x13]));
    await sleep(200);
    ws.terminate();

    const room = unique('raw');
    const a = await open('a');
    const b = await open('b');
    await a.join(room, 'a');
    await b.join(room, 'b');
    const ack = await a.send(room, 'alive');
    assert.equal(ack.ok, true);
    await b.waitFor('message', (m) => m.id === ack.id);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });
});

describe('rooms-chat rate limit', () => {
  let server;
  before(async () => { server = await startServer('rooms-chat', { MSG_RATE: '2' }); });
  after(async () => { await server?.stop(); });

  test('MSG_RATE=2: a burst past the bucket gets rate_limited, and refused messages are not broadcast', async () => {
    const room = unique('rate');
    const sender = await connect(server.url, { label: 'sender' });
    const listener = await connect(server.url, { label: 'listener' });
    try {
      await sender.join(room, 'sender');
      await listener.join(room, 'listener');
      const acks = [];
      for (let i = 0; i < 10; i += 1) acks.push(await sender.send(room, `burst ${i}`));
      const accepted = acks.filter((ack) => ack.ok);
      const limited = acks.filter((ack) => isErrorAck(ack, ['rate_limited']));
      assert.ok(accepted.length >= 2 && accepted.length <= 6, `bursts up to about twice the rate: ${accepted.length} accepted of 10`);
      assert.ok(limited.length >= 4, `the rest is rate_limited: ${short(acks)}`);
      assert.equal(accepted.length + limited.length, 10, `every ack is ok or rate_limited: ${short(acks)}`);
      await listener.waitForMessages(room, accepted.length);
      await sleep(QUIET_MS);
      assert.deepEqual(listener.messages(room).map((m) => m.id), accepted.map((a) => a.id), 'only accepted messages are broadcast');
      // The bucket refills: after a second, sending works again.
      await sleep(1100);
      const later = await sender.send(room, 'after a pause');
      assert.equal(later.ok, true, `after a pause: ${short(later)}`);
    } finally {
      sender.close();
      listener.close();
    }
  });
});

describe('rooms-chat slow member', () => {
  let server;
  before(async () => { server = await startServer('rooms-chat', { MSG_RATE: '0', MAX_BUFFER: '16', MAX_QUEUED_BYTES: '2000' }); });
  after(async () => { await server?.stop(); });

  test('a member that stops reading is disconnected (never left with a silent gap) and catches up with since', async () => {
    const room = unique('slow');
    const sender = await connect(server.url, { label: 'sender' });
    const slow = await connect(server.url, { label: 'slow', transports: ['polling'] });
    try {
      await sender.join(room, 'sender');
      const joinAck = await slow.join(room, 'slow', { clientId: 'slow-tab' });
      assert.deepEqual(joinAck.history, []);

      // Stop polling: the pending long-poll returns with the first message,
      // then the client asks for nothing more, so the server must queue.
      const transport = slow.socket.io.engine.transport;
      const paused = new Promise((resolve) => transport.pause(resolve));
      const first = await sender.send(room, 'first');
      await paused;
      const acks = [first];
      for (let i = 0; i < 150; i += 1) {
        const ack = await sender.send(room, `queued ${i}`);
        assert.equal(ack.ok, true, short(ack));
        acks.push(ack);
      }
      const ids = acks.map((ack) => ack.id);
      await sleep(300);

      // Poll again, as the client would once it has time.
      transport.readyState = 'open';
      transport._poll();
      await waitUntil(() => slow.disconnects.length > 0 || slow.messages(room).length >= ids.length, 10_000,
        () => `slow member: ${slow.messages(room).length}/${ids.length} messages live, connected=${slow.socket.connected}`);
      const live = slow.messages(room).map((m) => m.id);
      assert.deepEqual(live, ids.slice(0, live.length),
        'what a live socket received is a gap-free prefix of the room, in order');
      assert.ok(slow.disconnects.length > 0 || live.length === ids.length,
        `either every message arrived or the socket was closed (got ${live.length}/${ids.length}, disconnects ${slow.disconnects})`);

      // Like the page: reconnect, re-join with since and the same clientId.
      if (slow.disconnects.length > 0) {
        const again = await connect(server.url, { label: 'slow-again' });
        try {
          const rejoin = await again.join(room, 'slow', { clientId: 'slow-tab', since: live.at(-1) ?? 0 });
          const union = [...live, ...rejoin.history.map((m) => m.id)];
          assert.deepEqual(union, ids, 'live + history after the re-join is every message exactly once');
        } finally {
          again.close();
        }
      }
    } finally {
      sender.close();
      slow.close();
    }
  });
});

describe('rooms-chat origin policy', () => {
  let server;
  before(async () => { server = await startServer('rooms-chat', { ALLOWED_ORIGINS: 'http://allowed.example' }); });
  after(async () => { await server?.stop(); });

  const handshake = (origin) => fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, {
    headers: origin ? { Origin: origin } : {},
  });

  test('polling handshake: 403 for a foreign Origin, accepted without one, from itself, or when listed', async () => {
    const foreign = await handshake('http://evil.example');
    assert.equal(foreign.status, 403, 'a foreign browser origin is refused');
    const none = await handshake(null);
    assert.equal(none.status, 200, 'no Origin (non-browser client) is accepted');
    assert.match(await none.text(), /^0\{.*"sid"/, 'an engine.io open packet');
    const self = await handshake(server.url);
    assert.equal(self.status, 200, 'the server own origin is accepted');
    const listed = await handshake('http://allowed.example');
    assert.equal(listed.status, 200, 'an origin in ALLOWED_ORIGINS is accepted');
  });

  test('WebSocket upgrade: 403 for a foreign Origin', async () => {
    const status = await new Promise((resolve, reject) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, { origin: 'http://evil.example' });
      ws.once('unexpected-response', (_request, response) => { resolve(response.statusCode); ws.terminate(); });
      ws.once('open', () => { ws.close(); resolve('open'); });
      ws.once('error', (error) => reject(error));
    });
    assert.equal(status, 403);
  });
});
