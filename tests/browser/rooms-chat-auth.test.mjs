// rooms-chat's page on a server that asks for tokens, in headless Chromium
// at a phone's 390 px: a token handed over in the address (`#token=…`)
// signs the page in under the token's name and leaves the address; a page
// without one shows the token field and says why the server refused it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { launchBrowser, screenshotPath, openPage, fitsTheWidth, waitForText } from '../lib/browser.mjs';
import { hs256, mint, nowSecs } from '../lib/tokens.mjs';

const SECRET = 'the secret of the browser token test';

let server;
let browser;
const problems = [];

before(async () => {
  server = await startServer('rooms-chat', { MSG_RATE: '0', AUTH_JWT_SECRET: SECRET });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const open = (label, url) => openPage(browser, url, { label, problems });

test('a token in the address signs the page in under its name', async () => {
  const token = mint('rooms-chat', SECRET, '--sub', '42', '--name', 'Ada', '--ttl', '10m');
  const page = await open('ada', `${server.url}/#token=${token}`);
  await page.waitForSelector('#token-field:not([hidden])');
  assert.equal(await page.evaluate(() => location.hash), '', 'the token left the address');
  assert.equal(await page.inputValue('#token-input'), token);
  assert.ok(await page.isHidden('#name-input'), 'the token names us: no nickname field');
  await page.fill('#first-room-input', 'lobby');
  await page.click('#login-button');
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('#status[data-state="connected"]');
  assert.equal(await page.textContent('#me'), 'Ada');
  await page.click('#toggle-members');
  await page.waitForFunction(() => document.querySelector('#members .member-name')?.textContent === 'Ada');
  assert.ok(await fitsTheWidth(page), 'nothing wider than 390 px');
  await page.screenshot({ path: screenshotPath('rooms-chat-token-390') });
  assert.deepEqual(problems, []);
});

test('without a good token the page says why it was refused', async () => {
  const page = await open('anonymous', server.url);
  await page.waitForSelector('#token-field:not([hidden])');
  await waitForText(page, '#login-error', 'Token refused: a token is required.');
  const expired = hs256({ sub: '42', name: 'Ada', exp: nowSecs() - 120 }, SECRET);
  await page.fill('#token-input', expired);
  await page.click('#login-button');
  await waitForText(page, '#login-error', 'Token refused: the token has expired.');
  // The refusal comes once Engine.IO is open, so the badge settles a moment later.
  await page.waitForSelector('#status[data-state="offline"]', { timeout: 10_000 });
  assert.equal(await page.getAttribute('#status', 'data-state'), 'offline');
  assert.ok(await fitsTheWidth(page), 'nothing wider than 390 px');
  await page.screenshot({ path: screenshotPath('rooms-chat-token-refused-390') });
  assert.deepEqual(problems, []);
});
