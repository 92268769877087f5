// The Socket.IO runtime (crates/socketio) driven by the official
// socket.io-client 4.x, through its small echo server (socketio-echo): every
// transport (WebSocket only, long-polling only, and the default: polling,
// then the upgrade), connect with auth and connect_error, events and acks,
// a room's event to members on every transport, heartbeats, binary refused,
// and reconnection after the transport drops.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startServer, sleep } from '../lib/server.mjs';
import { startWireProxy } from '../lib/wire-proxy.mjs';

const TRANSPORTS = {
  websocket: { transports: ['websocket'] },
  polling: { transports: ['polling'] },
  upgraded: { transports: ['polling', 'websocket'] },
};

describe('socketio runtime with the official client', () => {
  let server;
  const sockets = [];

  /** A connected socket; with `upgraded`, once its upgrade is done. */
  async function open(kind, options = {}, url = server.url) {
    const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...TRANSPORTS[kind], ...options });
    sockets.push(socket);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${kind}: no connection`)), 5000);
      socket.once('connect', () => { clearTimeout(timer); resolve(); });
      socket.once('connect_error', (error) => { clearTimeout(timer); reject(error); });
    });
    if (kind === 'upgraded') await upgradeOf(socket);
    return socket;
  }

  function upgradeOf(socket) {
    const engine = socket.io.engine;
    if (engine.transport.name === 'websocket') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no upgrade within 5 s')), 5000);
      engine.once('upgrade', () => { clearTimeout(timer); resolve(); });
    });
  }

  function connectError(url, options) {
    const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...options });
    sockets.push(socket);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('neither connect nor connect_error')), 5000);
      socket.once('connect', () => { clearTimeout(timer); reject(new Error('connected')); });
      socket.once('connect_error', (error) => { clearTimeout(timer); resolve(error); });
    });
  }

  before(async () => {
    server = await startServer('socketio-echo', { PING_INTERVAL_MS: '300', PING_TIMEOUT_MS: '600' });
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await server?.stop();
  });

  for (const kind of Object.keys(TRANSPORTS)) {
    test(`${kind}: connects with auth, echoes and acks, stays up across heartbeats`, async () => {
      const socket = await open(kind, { auth: { token: 'abc' } });
      const expected = kind === 'polling' ? 'polling' : 'websocket';
      assert.equal(socket.io.engine.transport.name, expected);
      const me = await socket.timeout(3000).emitWithAck('whoami');
      assert.equal(me.id, socket.id, 'the ack speaks of the same socket id');
      assert.deepEqual(me.auth, { token: 'abc' });
      const data = { nested: [1, 'two', { three: 3 }], unicode: 'é✓' };
      assert.deepEqual(await socket.timeout(3000).emitWithAck('echo', data), data);
      // Several heartbeats (300 ms apart, 600 ms to answer) go by.
      await sleep(1500);
      assert.ok(socket.connected, 'still connected after the heartbeats');
      assert.equal(await socket.timeout(3000).emitWithAck('echo', 7), 7);
    });
  }

  test('events are handled in order, a slow handler holding the ones after it', async () => {
    const socket = await open('websocket');
    const order = [];
    const slow = socket.timeout(3000).emitWithAck('slow', 200).then(() => order.push('slow'));
    const fast = socket.timeout(3000).emitWithAck('echo', 'fast').then(() => order.push('fast'));
    await Promise.all([slow, fast]);
    assert.deepEqual(order, ['slow', 'fast']);
  });

  test('connect_error for a refused auth and for an unknown namespace', async () => {
    const denied = await connectError(server.url, { auth: { deny: true } });
    assert.equal(denied.message, 'denied by the app');
    assert.deepEqual(denied.data, { code: 'denied' });
    const unknown = await connectError(`${server.url}/nope`, {});
    assert.equal(unknown.message, 'Invalid namespace');
  });

  test("a room's event reaches members on every transport once", async () => {
    const members = await Promise.all(Object.keys(TRANSPORTS).map((kind) => open(kind)));
    const received = members.map(() => []);
    members.forEach((socket, index) => socket.on('said', (event) => received[index].push(event)));
    for (const socket of members) {
      assert.deepEqual(await socket.timeout(3000).emitWithAck('join', { room: 'lobby' }), { ok: true });
    }
    for (let n = 0; n < 20; n += 1) {
      const sender = members[n % members.length];
      assert.deepEqual(await sender.timeout(3000).emitWithAck('say', { room: 'lobby', text: `m${n}` }), { ok: true });
    }
    const expected = Array.from({ length: 20 }, (_, n) => `m${n}`);
    const deadline = Date.now() + 5000;
    while (received.some((events) => events.length < 20) && Date.now() < deadline) await sleep(20);
    for (const events of received) assert.deepEqual(events.map((event) => event.text), expected);
  });

  test('binary attachments are answered with a clear error, and the socket stays', async () => {
    for (const kind of ['websocket', 'polling']) {
      const socket = await open(kind);
      const answer = await socket.timeout(3000).emitWithAck('echo', Buffer.from([1, 2, 3]));
      assert.equal(answer.ok, false);
      assert.match(answer.error.message, /binary attachments are not supported/);
      assert.equal(await socket.timeout(3000).emitWithAck('echo', 'after'), 'after');
    }
  });

  test('a socket the server disconnects hears "io server disconnect"', async () => {
    const socket = await open('upgraded');
    const reason = new Promise((resolve) => socket.once('disconnect', resolve));
    socket.emit('kick');
    assert.equal(await reason, 'io server disconnect');
  });

  for (const kind of Object.keys(TRANSPORTS)) {
    test(`${kind}: reconnects after a network drop, as a new socket`, async () => {
      const proxy = await startWireProxy(server.port);
      try {
        const socket = await open(kind, { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 }, proxy.url);
        const firstId = socket.id;
        const reconnected = new Promise((resolve) => socket.once('connect', resolve));
        const reason = new Promise((resolve) => socket.once('disconnect', resolve));
        // The network is down until the client notices: a long-polling
        // client only does when a request of its fails.
        const outage = setInterval(() => proxy.cutAll(), 20);
        proxy.cutAll();
        const why = await reason;
        clearInterval(outage);
        assert.match(why, /^transport (close|error)$/);
        await reconnected;
        assert.ok(socket.connected);
        assert.notEqual(socket.id, firstId);
        if (kind === 'upgraded') await upgradeOf(socket);
        assert.equal(await socket.timeout(3000).emitWithAck('echo', 'again'), 'again');
        socket.close();
      } finally {
        await proxy.close();
      }
    });
  }

  test('a shutdown (SIGTERM) drops every transport without "io server disconnect", so clients reconnect', async () => {
    const own = await startServer('socketio-echo');
    try {
      const kinds = ['websocket', 'polling', 'upgraded'];
      const clients = [];
      for (const kind of kinds) clients.push(await open(kind, {}, own.url));
      const reasons = clients.map((socket) => new Promise((resolve) => socket.once('disconnect', resolve)));
      const exit = await own.stop();
      assert.equal(exit.code, 0, 'a clean exit');
      assert.deepEqual(await Promise.all(reasons), kinds.map(() => 'transport close'));
    } finally {
      await own.stop();
    }
  });
});
