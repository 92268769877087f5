// Tokens never reach the logs: each app with token authentication and
// RUST_LOG=trace (the most a user can ask for) is handed a valid token and
// a refused one the way its clients send them; its whole output must not
// contain either.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer } from '../lib/server.mjs';
import { connect, short } from '../lib/rooms.mjs';
import { hs256, nowSecs } from '../lib/tokens.mjs';

const SECRET = 'the secret of the log test';
const ENV = { AUTH_JWT_SECRET: SECRET, RUST_LOG: 'trace' };
const tokens = () => ({
  valid: hs256({ sub: '42', name: 'Ada', exp: nowSecs() + 600 }, SECRET),
  refused: hs256({ sub: '42', name: 'Ada', exp: nowSecs() + 600 }, 'another secret'),
});

function assertNotLogged(server, { valid, refused }) {
  const output = server.output();
  assert.ok(output.length > 0, 'the server logged something at trace');
  // The signature is the secret part; the whole token contains it.
  for (const token of [valid, refused]) assert.ok(!output.includes(token.split('.')[2]), 'a token is in the logs');
}

test('rooms-chat logs no token from auth or refresh', async () => {
  const server = await startServer('rooms-chat', ENV);
  try {
    const { valid, refused } = tokens();
    const client = await connect(server.url, { label: 'ada', auth: { token: valid } });
    const ack = await client.ack('refresh', { token: valid });
    assert.equal(ack.ok, true, short(ack));
    client.close();
    await assert.rejects(connect(server.url, { label: 'refused', auth: { token: refused } }), /unauthorized/);
    assertNotLogged(server, { valid, refused });
  } finally {
    await server.stop();
  }
});

test('ws-chat logs no token from the /ws query', async () => {
  const server = await startServer('ws-chat', ENV);
  try {
    const { valid, refused } = tokens();
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws?token=${valid}`);
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.close();
    const refusedStatus = await fetch(`${server.url}/ws?token=${refused}`).then((response) => response.status);
    assert.equal(refusedStatus, 401);
    assertNotLogged(server, { valid, refused });
  } finally {
    await server.stop();
  }
});

test('sse-stocks logs no token from a header, the query or a cookie', async () => {
  const server = await startServer('sse-stocks', ENV);
  try {
    const { valid, refused } = tokens();
    for (const token of [valid, refused]) {
      const carriers = [
        [`${server.url}/events?symbols=AAPL`, { authorization: `Bearer ${token}` }],
        [`${server.url}/events?symbols=AAPL&access_token=${token}`, {}],
        [`${server.url}/events?symbols=AAPL`, { cookie: `access_token=${token}` }],
      ];
      for (const [url, headers] of carriers) {
        const abort = new AbortController();
        const response = await fetch(url, { headers, signal: abort.signal });
        assert.equal(response.status, token === valid ? 200 : 401);
        abort.abort();
      }
    }
    assertNotLogged(server, { valid, refused });
  } finally {
    await server.stop();
  }
});
