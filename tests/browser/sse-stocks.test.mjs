// The sse-stocks page in headless Chromium: every symbol's quote updates,
// the sparklines draw, the checkboxes re-subscribe, and the page resumes
// after the server ends its stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep } from '../lib/server.mjs';
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
  // (EventSource resumes with Last-Event-ID) and stays live.
  await sleep(2000);
  await page.waitForSelector('#status[data-state="live"]');
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
