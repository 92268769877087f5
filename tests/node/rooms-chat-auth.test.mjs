// rooms-chat with token authentication (AUTH_JWT_SECRET), driven by the
// official socket.io-client 4.x over both transports: the token in the
// connect packet's `auth` payload (`io({ auth: { token } })`), as
// socket.io's documentation teaches; a refused connect is a connect_error
// whose message starts with `unauthorized` and whose data is the contract's
// `{"code":"unauthorized"}`; the `refresh` event.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startServer } from '../lib/server.mjs';
import { connect, short, unique } from '../lib/rooms.mjs';
import { base64url, hs256 as sign, mint as mintFor, nowSecs as now } from '../lib/tokens.mjs';

const SECRET = 'the secret of the socket.io-client token test';
const TRANSPORTS = [['websocket'], ['polling']];
const mint = (...args) => mintFor('rooms-chat', SECRET, ...args);
const hs256 = (claims, secret = SECRET) => sign(claims, secret);
const ada = () => ({ sub: '42', name: 'Ada', exp: now() + 600 });

/** The connect_error of a refused connect (the test fails if it connects). */
function refusal(url, options) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...options });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => { socket.close(); reject(new Error('connected')); });
    socket.once('connect_error', (error) => { socket.close(); resolve(error); });
  });
}

describe('rooms-chat with tokens (official client)', () => {
  let server;
  const clients = [];
  before(async () => {
    server = await startServer('rooms-chat', { MSG_RATE: '0', AUTH_JWT_SECRET: SECRET });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server?.stop();
  });

  test('/healthz tells a page that a token is needed', async () => {
    const health = await (await fetch(`${server.url}/healthz`)).json();
    assert.equal(health.auth, 'token');
  });

  for (const transports of TRANSPORTS) {
    test(`bad tokens get connect_error "unauthorized" (${transports})`, async () => {
      const claims = ada();
      const good = hs256(claims);
      const [head, , signature] = good.split('.');
      const bad = {
        'no auth payload': undefined,
        'no token': {},
        'a forged signature': `${head}.${base64url({ ...claims, name: 'Mallory' })}.${signature}`,
        'alg none': `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`,
        'another secret': hs256(claims, 'not the server secret'),
        'expired': hs256({ ...claims, exp: now() - 120 }),
        'not yet valid': hs256({ ...claims, nbf: now() + 120 }),
      };
      for (const [what, token] of Object.entries(bad)) {
        const auth = typeof token === 'string' ? { token } : token;
        const error = await refusal(server.url, { transports, auth });
        assert.match(error.message, /^unauthorized/, `${what}: ${error.message}`);
        assert.deepEqual(error.data, { code: 'unauthorized' }, `${what}: the contract's data`);
      }
      const expired = await refusal(server.url, { transports, auth: { token: hs256({ ...claims, exp: now() - 120 }) } });
      assert.equal(expired.message, 'unauthorized: the token has expired');
    });

    test(`a minted token in auth is served under its name, in its rooms (${transports})`, async () => {
      const token = mint('--sub', '42', '--name', 'Ada', '--rooms', 'team-*', '--ttl', '10m');
      const client = await connect(server.url, { label: 'ada', transports, auth: { token } });
      clients.push(client);
      const room = unique('team-');
      const ack = await client.ack('join', { room, name: 'not me' });
      assert.equal(ack.ok, true, short(ack));
      assert.deepEqual(ack.members, ['Ada']);
      const sent = await client.ack('message', { room, text: 'hello' });
      assert.equal(sent.ok, true, short(sent));
      const forbidden = await client.ack('join', { room: unique('general'), name: 'Ada' });
      assert.equal(forbidden.ok, false);
      assert.equal(forbidden.error.code, 'forbidden', short(forbidden));
    });
  }

  test('auth as a function (read at every connect) and refresh', async () => {
    const shortLived = hs256({ ...ada(), exp: now() + 60 });
    const client = await connect(server.url, { label: 'fn', auth: (send) => send({ token: shortLived }) });
    clients.push(client);
    const fresh = hs256({ ...ada(), exp: now() + 3600 });
    const ack = await client.ack('refresh', { token: fresh });
    assert.equal(ack.ok, true, short(ack));
    assert.ok(ack.expiresAt > (now() + 3000) * 1000, short(ack));
    const stranger = await client.ack('refresh', { token: hs256({ sub: '7', name: 'Grace', exp: now() + 600 }) });
    assert.equal(stranger.error?.code, 'unauthorized', short(stranger));
  });
});
