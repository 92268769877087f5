// ws-chat's page on a server that asks for tokens, in headless Chromium at
// a phone's 390 px: a token handed over in the address (`#token=…`) joins
// the chat under the token's name, whatever name the tab asks for, and
// others see its messages under that name; a missing, expired or forged
// token keeps the page at the door with the reason the server gave.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { launchBrowser, screenshotPath, openPage, fitsTheWidth, waitForText } from '../lib/browser.mjs';
import { hs256, mint, nowSecs } from '../lib/tokens.mjs';

const SECRET = 'the secret of the ws-chat browser token test';

let server;
let browser;
const problems = [];

before(async () => {
  server = await startServer('ws-chat', { AUTH_JWT_SECRET: SECRET });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const open = (label, url, session) => openPage(browser, url, { label, problems, session });

/** Pastes `token` into the page's token field and hands it over. */
async function useToken(page, token) {
  await page.fill('#token-input', token);
  await page.click('#login-button');
}

const userNames = (page) => page.locator('#users .user .name').allTextContents();

test('a token in the address joins under its name and others see that name', async () => {
  const adaToken = mint('ws-chat', SECRET, '--sub', '42', '--name', 'Ada', '--ttl', '10m');
  const bobToken = mint('ws-chat', SECRET, '--sub', '7', '--name', 'Bob', '--ttl', '10m');
  // This tab once joined as "mallory" and asks for that name again: the
  // server names it from the token instead.
  const ada = await open('ada', `${server.url}/#token=${adaToken}`, { 'ws-chat.name': 'mallory' });
  await ada.waitForSelector('#app:not([hidden])');
  assert.equal(await ada.evaluate(() => location.hash), '', 'the token left the address');
  assert.equal(await ada.textContent('#me'), 'Ada');

  const bob = await open('bob', `${server.url}/#token=${bobToken}`);
  await bob.waitForSelector('#app:not([hidden])');
  assert.equal(await bob.textContent('#me'), 'Bob');
  await ada.locator('#users .user .name', { hasText: 'Bob' }).waitFor();
  assert.deepEqual((await userNames(ada)).sort(), ['Ada', 'Bob']);
  assert.deepEqual((await userNames(bob)).sort(), ['Ada', 'Bob']);

  await ada.fill('#message-input', 'signed by my token');
  await ada.press('#message-input', 'Enter');
  await bob.locator('.message .text', { hasText: 'signed by my token' }).waitFor();
  assert.deepEqual(await bob.locator('.message .author').allTextContents(), ['Ada']);

  assert.ok(await fitsTheWidth(ada), 'nothing wider than 390 px');
  await ada.screenshot({ path: screenshotPath('ws-chat-token-390') });
  assert.deepEqual(problems, []);
});

test('without a good token the page says why it was refused', async () => {
  const page = await open('anonymous', server.url);
  await page.waitForSelector('#token-field:not([hidden])');
  assert.ok(await page.isHidden('#name-input'), 'the token names us: no nickname field');
  assert.ok(await page.isHidden('#name-hint'), 'nor an invitation to pick one');
  await waitForText(page, '#login-error', 'Token refused: a token is required.');

  const expired = hs256({ sub: '42', name: 'Ada', exp: nowSecs() - 120 }, SECRET);
  await useToken(page, expired);
  await waitForText(page, '#login-error', 'Token refused: the token has expired.');

  const forged = hs256({ sub: '42', name: 'Ada', exp: nowSecs() + 600 }, 'not the server secret');
  await useToken(page, forged);
  await waitForText(page, '#login-error', 'Token refused: the token is not valid.');
  assert.ok(await page.isVisible('#login-error'));
  assert.equal(await page.getAttribute('#status', 'data-state'), 'offline');
  assert.ok(await page.isHidden('#app'), 'never let in');

  assert.ok(await fitsTheWidth(page), 'nothing wider than 390 px');
  await page.screenshot({ path: screenshotPath('ws-chat-token-refused-390') });
  assert.deepEqual(problems, []);
});
