// ws-chat driven by the `ws` npm package, the WebSocket client most Node
// programs use: interop of the handshake, fragmented frames, close codes,
// and every frame of contract section 1.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer } from '../lib/server.mjs';

const WAIT_MS = 5000; // how long a frame that must come may take
const QUIET_MS = 300; // how long we listen to be sure nothing comes

/** A ws client that queues every JSON frame it receives. */
class Client {
  constructor(url, options) {
    this.frames = [];
    this.waiters = [];
    this.socket = new WebSocket(`${url.replace('http', 'ws')}/ws`, options);
    this.closed = new Promise((resolve) => {
      this.socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.socket.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'the server only sends text frames');
      this.frames.push(JSON.parse(data.toString()));
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  opened() {
    return new Promise((resolve, reject) => {
      this.socket.once('open', resolve);
      this.socket.once('error', reject);
    });
  }

  send(frame) {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame (of `type`, if given; others before it are dropped). */
  async next(type) {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      while (this.frames.length > 0) {
        const frame = this.frames.shift();
        if (!type || frame.type === type) return frame;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type ?? 'frame'} within ${WAIT_MS} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  async quiet() {
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    assert.deepEqual(this.frames, [], 'nothing else arrives');
  }

  close() {
    this.socket.close();
  }
}

describe('ws-chat with the ws package', () => {
  let server;
  const clients = [];
  const open = async (options) => {
    const client = new Client(server.url, options);
    clients.push(client);
    await client.opened();
    return client;
  };
  const join = async (name, clientId) => {
    const client = await open();
    client.send({ type: 'hello', name, ...(clientId ? { clientId } : {}) });
    const welcome = await client.next();
    assert.equal(welcome.type, 'welcome', JSON.stringify(welcome));
    return { client, welcome };
  };

  before(async () => {
    server = await startServer('ws-chat', { MSG_RATE: '0' });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server?.stop();
  });

  test('hello, welcome, message, joined and left', async () => {
    const alice = await join('alice');
    assert.deepEqual(alice.welcome.users, [alice.welcome.you]);
    assert.equal(alice.welcome.you.name, 'alice');
    assert.deepEqual(alice.welcome.history, []);

    const bob = await join('bob');
    assert.deepEqual((await alice.client.next()).user, bob.welcome.you);
    assert.equal(bob.welcome.users.length, 2);

    alice.client.send({ type: 'message', text: 'hi from node' });
    const atAlice = await alice.client.next('message');
    const atBob = await bob.client.next('message');
    assert.deepEqual(atAlice, atBob);
    assert.equal(atBob.text, 'hi from node');
    assert.deepEqual(atBob.from, alice.welcome.you);
    assert.ok(Number.isInteger(atBob.id) && atBob.id > 0);
    assert.ok(Math.abs(atBob.ts - Date.now()) < 60_000, 'ts is Unix milliseconds');

    bob.client.send({ type: 'typing' });
    assert.deepEqual(await alice.client.next(), { type: 'typing', user: bob.welcome.you });

    bob.client.close();
    const left = await alice.client.next();
    assert.equal(left.type, 'left');
    assert.deepEqual(left.user, bob.welcome.you);
    await alice.client.quiet();
  });

  test('a welcome larger than one fragment is reassembled by the client', async () => {
    const writer = await join('writer');
    const long = 'ü'.repeat(1990); // about 4000 bytes: several server fragments
    for (let n = 0; n < 5; n += 1) writer.client.send({ type: 'message', text: `${n} ${long}` });
    for (let n = 0; n < 5; n += 1) assert.equal((await writer.client.next('message')).text, `${n} ${long}`);
    const reader = await join('reader');
    const texts = reader.welcome.history.map((message) => message.text);
    assert.deepEqual(texts.slice(-5), [0, 1, 2, 3, 4].map((n) => `${n} ${long}`));
  });

  test('welcome.history holds the very message frames a client saw live', async () => {
    // The contract: history holds <message>s, the objects of the live
    // `message` frames, "type" included, so one handler renders both.
    const first = await join('historian', 'historian-client');
    const live = [];
    for (let n = 0; n < 3; n += 1) first.client.send({ type: 'message', text: `kept ${n}` });
    for (let n = 0; n < 3; n += 1) live.push(await first.client.next('message'));
    first.client.close();
    await first.client.closed;
    const again = await join('historian', 'historian-client');
    const ids = new Set(live.map((message) => message.id));
    const fromHistory = again.welcome.history.filter((message) => ids.has(message.id));
    assert.deepEqual(fromHistory, live);
    for (const message of again.welcome.history) assert.equal(message.type, 'message');
  });

  test('errors carry the contract codes and leave the socket open', async () => {
    const client = await open();
    client.send({ type: 'message', text: 'too early' });
    assert.equal((await client.next()).code, 'not_joined');
    client.send('{"type":');
    assert.equal((await client.next()).code, 'bad_request');
    client.socket.send(Buffer.from('binary'), { binary: true });
    assert.equal((await client.next()).code, 'bad_request');

    client.send({ type: 'hello', name: 'ALICE' }); // alice from the first test is still here
    const taken = await client.next();
    assert.deepEqual(Object.keys(taken).sort(), ['code', 'message', 'type']);
    assert.equal(taken.code, 'name_taken');
    client.send({ type: 'hello', name: 'carol' });
    assert.equal((await client.next()).type, 'welcome');

    client.send({ type: 'message', text: 'x'.repeat(2001) });
    assert.equal((await client.next()).code, 'too_large');
    client.send({ type: 'message', text: '  ' });
    assert.equal((await client.next()).code, 'bad_request');
  });

  test('a frame over 16 KiB closes with 1009', async () => {
    const { client } = await join('big');
    client.send({ type: 'message', text: 'x'.repeat(17 * 1024) });
    const { code } = await client.closed;
    assert.equal(code, 1009);
  });

  test('the same clientId takes its name over without notices', async () => {
    const watcher = await join('watcher');
    const first = await join('dora', 'node-tab-1');
    await watcher.client.next('joined');
    const second = await join('Dora', 'node-tab-1');
    assert.deepEqual(second.welcome.you, first.welcome.you);
    const { code } = await first.client.closed;
    assert.equal(code, 4000);
    await watcher.client.quiet();
  });

  test('a foreign Origin is refused with 403, the own one accepted', async () => {
    const foreign = new WebSocket(`${server.url.replace('http', 'ws')}/ws`, { origin: 'https://evil.example' });
    // A refused or reset connection is an error, not a status: it fails the
    // test at once instead of leaving the promise pending.
    const status = await new Promise((resolve, reject) => {
      foreign.on('unexpected-response', (_request, response) => resolve(response.statusCode));
      foreign.on('open', () => resolve(101));
      foreign.on('error', reject);
    });
    assert.equal(status, 403);
    const own = await open({ origin: server.url });
    assert.equal(own.socket.readyState, WebSocket.OPEN);
  });

  test('SIGTERM closes sockets with 1001', async () => {
    const { client } = await join('last');
    const stopped = server.stop();
    assert.equal((await client.closed).code, 1001);
    const { code } = await stopped;
    assert.equal(code, 0);
    server = null;
  });
});
