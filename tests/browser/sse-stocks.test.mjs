// The sse-stocks page in headless Chromium: every symbol's quote updates,
// the sparklines draw, the checkboxes re-subscribe, and the page resumes
// after the server ends its stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep } from '../lib/server.mjs';

/** Polls `check` until it holds; fails with `what` after 10 s. */
async function waitFor(check, what) {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
import { launchBrowser, screenshotPath } from '../lib/browser.mjs';

const SYMBOLS = ['AAPL', 'MSFT', 'GOOGL', 'AMZN', 'NVDA', 'META', 'TSLA', 'NFLX', 'JPM', 'V'];

/** Prices shown in the table, by symbol. */
const pricesOf = (page) => page.$$eval('#rows tr', (rows) =>
  Object.fromEntries(rows.map((row) => [row.dataset.symbol, row.querySelector('.price').textContent])));

/** How many pixels of each sparkline are not blank, by symbol. */
const inkOf = (page) => page.$$eval('#rows tr', (rows) => Object.fromEntries(rows.map((row) => {
  const canvas = row.querySelector('canvas.spark');
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let ink = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) ink += 1;
  return [row.dataset.symbol, ink];
})));

/**
 * Ids of the ticks the server holds after `afterId` up to `lastId`, read
 * from a resuming stream of `url` (as EventSource resumes with Last-Event-ID).
 */
async function ticksAfter(url, afterId, lastId) {
  const controller = new AbortController();
  const response = await fetch(url, { headers: { 'Last-Event-ID': afterId }, signal: controller.signal });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const ids = [];
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return ids;
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!/^event: tick$/m.test(block)) continue;
        const id = /^id: (.*)$/m.exec(block)[1];
        ids.push(id);
        if (id === lastId) return ids;
      }
    }
  } finally {
    controller.abort();
  }
}

test('the page shows every symbol updating and drawing its chart', async (t) => {
  const server = await startServer('sse-stocks', { TICK_MS: '100', SEED: '3', STREAM_MAX_MS: '1500', RETRY_MS: '200' });
  t.after(() => server.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1100, height: 820 } });
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  const streams = [];
  page.on('request', (request) => { if (request.url().includes('/events')) streams.push(request.url()); });
  // Every tick id the page's EventSource hands out, in order, to compare
  // with what the server holds.
  await page.addInitScript(() => {
    window.tickIds = [];
    const Native = window.EventSource;
    window.EventSource = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener('tick', (event) => window.tickIds.push(event.lastEventId));
      }
    };
  });

  await page.goto(server.url);
  await page.waitForSelector('#status[data-state="live"]');
  await page.waitForFunction((count) => document.querySelectorAll('#rows tr').length === count, SYMBOLS.length);
  assert.deepEqual(await page.$$eval('#rows tr', (rows) => rows.map((row) => row.dataset.symbol)), SYMBOLS);
  assert.equal(await page.textContent('#rows tr[data-symbol="AAPL"] .name'), 'Apple Inc.');

  const first = await pricesOf(page);
  // Ten steps later every symbol has moved at least once (prices are in
  // cents, so a step can round to no change: wait for all of them).
  await page.waitForFunction((before) => [...document.querySelectorAll('#rows tr')].every((row) =>
    row.querySelector('.price').textContent !== before[row.dataset.symbol]), first, { timeout: 15_000 });
  for (const symbol of SYMBOLS) assert.match((await pricesOf(page))[symbol], /^\d{1,3}(,\d{3})*\.\d{2}$/);

  const ink = await inkOf(page);
  for (const symbol of SYMBOLS) assert.ok(ink[symbol] > 50, `${symbol} sparkline is blank (${ink[symbol]} pixels)`);

  // The server ends streams every 1.5 s: the page goes on without a gap
  // (EventSource resumes with Last-Event-ID) and stays live. Over two such
  // ends, the page got exactly the ticks the server holds, none missing and
  // none twice.
  const opened = streams.length;
  await waitFor(() => streams.length >= opened + 2, 'two stream ends and resumptions');
  await page.waitForSelector('#status[data-state="live"]');
  const seen = await page.evaluate(() => window.tickIds.slice());
  const held = await ticksAfter(streams[0], seen[0], seen.at(-1));
  assert.deepEqual(seen.slice(1), held, 'the page saw every tick after its first, once, across the stream ends');
  await page.screenshot({ path: screenshotPath('sse-stocks'), fullPage: true });

  // Unticking symbols re-subscribes to the rest only.
  await page.click('label.chip:has(input[value="TSLA"])');
  await page.click('label.chip:has(input[value="V"])');
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 8);
  await page.waitForSelector('#status[data-state="live"]');
  const subscribed = new URL(streams.at(-1)).searchParams.get('symbols');
  assert.equal(subscribed, 'AAPL,MSFT,GOOGL,AMZN,NVDA,META,NFLX,JPM');
  const narrowed = await pricesOf(page);
  await page.waitForFunction((before) => [...document.querySelectorAll('#rows tr')].some((row) =>
    row.querySelector('.price').textContent !== before[row.dataset.symbol]), narrowed);

  await page.setViewportSize({ width: 390, height: 800 });
  await page.screenshot({ path: screenshotPath('sse-stocks-narrow'), fullPage: true });
  assert.deepEqual(errors, []);
});
