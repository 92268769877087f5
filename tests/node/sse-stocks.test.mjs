// sse-stocks with the `eventsource` npm package (the WHATWG EventSource for
// Node): the server drops the stream, the client reconnects by itself with
// Last-Event-ID and receives exactly the ticks it missed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { startServer, sleep } from '../lib/server.mjs';
import { startRedis } from '../lib/redis.mjs';

/** Follows `url`, recording every event; `opens` counts (re)connections. */
function follow(url) {
  const log = { ticks: [], snapshots: [], resets: [], opens: 0, errors: 0 };
  const source = new EventSource(url);
  source.addEventListener('open', () => { log.opens += 1; });
  source.addEventListener('error', () => { log.errors += 1; });
  source.addEventListener('tick', (event) => {
    log.ticks.push({ id: event.lastEventId, quote: JSON.parse(event.data) });
  });
  source.addEventListener('snapshot', (event) => { log.snapshots.push(event.lastEventId); });
  source.addEventListener('reset', (event) => { log.resets.push(event.lastEventId); });
  log.source = source;
  return log;
}

async function until(condition, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const key = (id) => id.split('-').map(BigInt);
const after = (a, b) => {
  const [ams, aseq] = key(a);
  const [bms, bseq] = key(b);
  return ams > bms || (ams === bms && aseq > bseq);
};

test('embedded: streams ended by STREAM_MAX_MS resume with every missed tick, none twice', async (t) => {
  const server = await startServer('sse-stocks', {
    TICK_MS: '50', SEED: '1', STREAM_MAX_MS: '600', RETRY_MS: '200',
  });
  t.after(() => server.stop());
  const log = follow(`${server.url}/events`);
  t.after(() => log.source.close());

  await until(() => log.opens >= 3 && log.ticks.length >= 150, 'two reconnections');
  log.source.close();

  // Every step ticks each of the 10 symbols, numbered one after the other:
  // a gap or a duplicate shows as a jump in the sequence.
  const [epoch] = key(log.ticks[0].id);
  log.ticks.forEach(({ id }, index) => {
    const [ms, seq] = key(id);
    assert.equal(ms, epoch, id);
    if (index > 0) assert.equal(seq, key(log.ticks[index - 1].id)[1] + 1n, `after ${log.ticks[index - 1].id} came ${id}`);
  });
  // Only the first connection got a snapshot; the others resumed.
  assert.equal(log.snapshots.length, 1);
  assert.deepEqual(log.resets, []);
});

test('cluster: a deploy (SIGTERM, restart on the same port) loses no tick of a filtered stream', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const env = { REDIS_URL: redis.url, TICK_MS: '50', SEED: '1', RETRY_MS: '200' };
  const witnessServer = await startServer('sse-stocks', env);
  t.after(() => witnessServer.stop());
  let server = await startServer('sse-stocks', env);
  const port = server.port;
  t.after(() => server.stop());

  const witness = follow(`${witnessServer.url}/events`);
  t.after(() => witness.source.close());
  await until(() => witness.snapshots.length === 1, 'the witness snapshot');
  const client = follow(`${server.url}/events?symbols=AAPL,MSFT`);
  t.after(() => client.source.close());
  await until(() => client.ticks.length >= 6, 'the first ticks');

  const exit = await server.stop();
  assert.equal(exit.code, 0, 'SIGTERM ends the open stream and the server exits cleanly');
  await until(() => client.errors >= 1, 'the client noticing the drop');
  await sleep(500);
  server = await startServer('sse-stocks', env, { port });
  await until(() => client.opens >= 2 && client.ticks.length >= 60, 'the resumed stream');
  client.source.close();

  const last = client.ticks.at(-1).id;
  await until(() => witness.ticks.some(({ id }) => id === last), 'the witness catching up');
  const first = client.ticks[0].id;
  const expected = witness.ticks.filter(({ id, quote }) =>
    ['AAPL', 'MSFT'].includes(quote.symbol) && (id === first || after(id, first)) && !after(id, last));
  assert.deepEqual(client.ticks, expected);
  assert.equal(client.snapshots.length, 1);
  assert.deepEqual(client.resets, []);
});

test('an unknown symbol fails the EventSource for good (400), as the contract says', async (t) => {
  const server = await startServer('sse-stocks', { TICK_MS: '50' });
  t.after(() => server.stop());
  const source = new EventSource(`${server.url}/events?symbols=AAPL,NOPE`);
  const error = await new Promise((resolve) => source.addEventListener('error', resolve));
  assert.equal(error.code, 400);
  assert.equal(source.readyState, EventSource.CLOSED);
  const response = await fetch(`${server.url}/events?symbols=NOPE`);
  assert.equal(response.status, 400);
  assert.equal((await response.json()).code, 'unknown_symbol');
});
