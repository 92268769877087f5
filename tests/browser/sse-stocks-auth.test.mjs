// The sse-stocks page on a server that asks for tokens, in headless
// Chromium at a phone's 390 px: a token handed over in the address
// (`#token=…`) streams the quotes of the symbols its `symbols` claim allows
// and no others, and picking a symbol outside the claim says so; a missing,
// expired or forged token shows the token form with the reason the server
// gave.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { launchBrowser, screenshotPath, openPage, fitsTheWidth, waitForText } from '../lib/browser.mjs';
import { hs256, mint, nowSecs } from '../lib/tokens.mjs';

const SECRET = 'the secret of the sse-stocks browser token test';
const CLAIMED = ['AAPL', 'MSFT'];
const NO_PRICE = '—'; // a row's price before any quote for it

let server;
let browser;
const problems = [];

before(async () => {
  server = await startServer('sse-stocks', { TICK_MS: '100', SEED: '3', AUTH_JWT_SECRET: SECRET });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const open = (label, url) => openPage(browser, url, { label, problems });

/** Pastes `token` into the page's token field and hands it over. */
async function useToken(page, token) {
  await page.fill('#token-input', token);
  await page.click('#token-button');
}

/** Prices shown in the table, by symbol. */
const pricesOf = (page) => page.$$eval('#rows tr', (rows) =>
  Object.fromEntries(rows.map((row) => [row.dataset.symbol, row.querySelector('.price').textContent])));

test('a token in the address streams the symbols its claim allows, and only those', async () => {
  const token = mint('sse-stocks', SECRET, '--sub', '42', '--name', 'Ada', '--symbols', CLAIMED.join(','), '--ttl', '10m');
  const page = await open('ada', `${server.url}/#token=${token}`);
  await page.waitForSelector('#status[data-state="live"]');
  assert.equal(await page.evaluate(() => location.hash), '', 'the token left the address');
  assert.ok(await page.isHidden('#token-form'));

  // The snapshot prices the claimed rows, then their quotes tick.
  await page.waitForFunction(([claimed, none]) => claimed.every((symbol) =>
    document.querySelector(`#rows tr[data-symbol="${symbol}"] .price`)?.textContent !== none), [CLAIMED, NO_PRICE]);
  const first = await pricesOf(page);
  await page.waitForFunction(([claimed, before]) => claimed.some((symbol) =>
    document.querySelector(`#rows tr[data-symbol="${symbol}"] .price`).textContent !== before[symbol]), [CLAIMED, first]);
  // Every symbol moves on every tick: one outside the claim would be priced by now.
  const prices = await pricesOf(page);
  const unpriced = Object.keys(prices).filter((symbol) => prices[symbol] === NO_PRICE);
  assert.deepEqual(unpriced, Object.keys(prices).filter((symbol) => !CLAIMED.includes(symbol)));

  // Asking for a symbol the claim leaves out is refused, and the page says so.
  await page.click('#select-none');
  await page.waitForSelector('#status[data-state="closed"]');
  await page.click('label.chip:has(input[value="MSFT"])');
  await page.waitForSelector('#status[data-state="live"]');
  await page.click('label.chip:has(input[value="TSLA"])');
  await waitForText(page, '#token-error', 'Your token does not allow some of these symbols.');
  assert.ok(await page.isVisible('#token-form'));
  assert.equal(await page.getAttribute('#status', 'data-state'), 'closed');

  assert.ok(await fitsTheWidth(page), 'nothing wider than 390 px');
  await page.screenshot({ path: screenshotPath('sse-stocks-token-390'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('without a good token the page says why it was refused', async () => {
  const page = await open('anonymous', server.url);
  await page.waitForSelector('#token-form:not([hidden])');
  assert.equal(await page.getAttribute('#status', 'data-state'), 'closed', 'no stream without a token');
  assert.ok(await page.isHidden('#token-error'), 'nothing was refused yet');

  const expired = hs256({ sub: '42', name: 'Ada', exp: nowSecs() - 120 }, SECRET);
  await useToken(page, expired);
  await waitForText(page, '#token-error', 'Token refused: the token has expired.');

  const forged = hs256({ sub: '42', name: 'Ada', exp: nowSecs() + 600 }, 'not the server secret');
  await useToken(page, forged);
  await waitForText(page, '#token-error', 'Token refused: the token is not valid.');
  assert.ok(await page.isVisible('#token-form'));
  assert.equal(await page.getAttribute('#status', 'data-state'), 'closed');
  assert.deepEqual(Object.values(await pricesOf(page)).filter((price) => price !== NO_PRICE), [], 'no quote came through');

  assert.ok(await fitsTheWidth(page), 'nothing wider than 390 px');
  await page.screenshot({ path: screenshotPath('sse-stocks-token-refused-390'), fullPage: true });
  assert.deepEqual(problems, []);
});
