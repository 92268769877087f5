// All three pages on a phone (390 CSS px wide): after joining and sending a
// long message (or, for sse-stocks, once the quotes are ticking), nothing is
// wider than the screen: the page never scrolls sideways. Screenshots go to
// target/screenshots/<app>-phone-width.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { launchBrowser, screenshotPath } from '../lib/browser.mjs';

const PHONE = { width: 390, height: 844 };
const WAIT = { timeout: 10_000 };
// One long word and a long line: both must wrap, not widen the page.
const LONG = `${'x'.repeat(300)} ${'a long line of chat that goes on and on '.repeat(8)}`.trim();

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

async function phonePage(t, app, env) {
  const server = await startServer(app, env);
  t.after(() => server.stop());
  const context = await browser.newContext({ viewport: PHONE });
  t.after(() => context.close());
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.goto(server.url);
  return { page, problems };
}

async function assertFits(page, app) {
  await page.screenshot({ path: screenshotPath(`${app}-phone-width`) });
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth,
    `${app}: the page is ${scrollWidth} px wide on a ${innerWidth} px screen`);
}

test('ws-chat fits a phone after joining and a long message', async (t) => {
  const { page, problems } = await phonePage(t, 'ws-chat');
  await page.fill('#name-input', 'phoebe');
  await page.click('#login-button');
  await page.locator('#status[data-state="online"]').waitFor(WAIT);
  await page.fill('#message-input', LONG);
  await page.click('#send-button');
  await page.locator('.message.mine .text', { hasText: LONG.slice(0, 40) }).waitFor(WAIT);
  await assertFits(page, 'ws-chat');
  assert.deepEqual(problems, []);
});

test('rooms-chat fits a phone after joining and a long message', async (t) => {
  const { page, problems } = await phonePage(t, 'rooms-chat', { MSG_RATE: '0' });
  await page.fill('#name-input', 'phoebe');
  await page.fill('#first-room-input', 'phones');
  await page.click('#login-button');
  await page.waitForSelector('#status[data-state="connected"]', WAIT);
  await page.fill('#message-input', LONG);
  await page.press('#message-input', 'Enter');
  await page.waitForFunction((start) => [...document.querySelectorAll('#messages .message-text')]
    .some((element) => element.textContent.startsWith(start)), LONG.slice(0, 40), WAIT);
  await assertFits(page, 'rooms-chat');
  assert.deepEqual(problems, []);
});

test('sse-stocks fits a phone while the quotes tick', async (t) => {
  const { page, problems } = await phonePage(t, 'sse-stocks', { TICK_MS: '100', SEED: '5' });
  await page.waitForSelector('#status[data-state="live"]', WAIT);
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length > 0, null, WAIT);
  // A few ticks later, with every price and change drawn.
  const first = await page.textContent('#rows tr .price');
  await page.waitForFunction((before) => [...document.querySelectorAll('#rows tr .price')]
    .some((price) => price.textContent !== before), first, WAIT);
  await assertFits(page, 'sse-stocks');
  assert.deepEqual(problems, []);
});
