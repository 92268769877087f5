// rooms-chat page in headless Chromium: two people join the same room, chat,
// see each other's messages, the member list and the typing indicator; user
// text stays text. Screenshots go to target/screenshots/.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { startRedis } from '../lib/redis.mjs';
import { launchBrowser, screenshotPath } from '../lib/browser.mjs';
import { connect } from '../lib/rooms.mjs';

let server;
let browser;
const problems = [];

before(async () => {
  server = await startServer('rooms-chat', { MSG_RATE: '0' });
  browser = await launchBrowser();
});
beforeEach(() => { problems.length = 0; });
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openPage(label, viewport = { width: 1200, height: 760 }, url = server.url) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`${label}: page error: ${error.message}`));
  page.on('console', (message) => { if (message.type() === 'error') problems.push(`${label}: console: ${message.text()}`); });
  page.on('dialog', async (dialog) => { problems.push(`${label}: a dialog opened: ${dialog.message()}`); await dialog.dismiss(); });
  await page.goto(url);
  return page;
}

async function login(page, name, room) {
  await page.fill('#name-input', name);
  await page.fill('#first-room-input', room);
  await page.click('#login-button');
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('#status[data-state="connected"]');
}

const timeline = (room) => `#messages .timeline[data-room="${room}"]`;

test('two pages chat in one room: messages, members, typing, text stays text', async () => {
  const room = 'lobby';
  const alice = await openPage('alice');
  const bob = await openPage('bob');
  await login(alice, 'alice', room);
  await login(bob, 'bob', room);

  // Member lists on both sides, live.
  await alice.waitForFunction(() => [...document.querySelectorAll('#members .member-name')].map((e) => e.textContent).join(',') === 'alice,bob');
  await bob.waitForFunction(() => [...document.querySelectorAll('#members .member-name')].map((e) => e.textContent).join(',') === 'alice,bob');
  await alice.waitForSelector(`${timeline(room)} .notice-join`);
  assert.match(await alice.textContent(`${timeline(room)} .notice-join`), /bob joined/);

  // Room list with live member counts.
  await alice.waitForFunction((name) => {
    const item = document.querySelector(`#room-list .room-item[data-room="${name}"] .room-count`);
    return item && item.textContent === '2';
  }, room);

  // Typing indicator.
  await alice.click('#message-input');
  await alice.keyboard.type('hello from ali');
  await bob.waitForFunction(() => document.querySelector('#typing').textContent.includes('alice is typing'));
  await alice.keyboard.type('ce');
  await alice.keyboard.press('Enter');
  await bob.waitForFunction((sel) => [...document.querySelectorAll(`${sel} li.message .message-text`)].some((e) => e.textContent === 'hello from alice'), timeline(room));
  await bob.waitForFunction(() => document.querySelector('#typing').textContent === '', null, { timeout: 6000 });
  assert.equal(await alice.inputValue('#message-input'), '', 'the box is cleared after sending');

  // A hostile message is shown as text and runs nothing.
  const hostile = '<img src=x onerror=alert(1)> <b>bold?</b>';
  await bob.fill('#message-input', hostile);
  await bob.click('#send-button');
  await alice.waitForFunction(([sel, text]) => [...document.querySelectorAll(`${sel} li.message .message-text`)].some((e) => e.textContent === text), [timeline(room), hostile]);
  assert.equal(await alice.locator('#messages img, #messages b').count(), 0, 'no element was created from user text');
  assert.equal(await bob.locator('#messages img, #messages b').count(), 0);

  // Both see the same messages in the same (id) order.
  const texts = async (page) => page.$$eval(`${timeline(room)} li.message`, (items) => items.map((e) => `${e.dataset.id}:${e.querySelector('.message-text').textContent}`));
  await bob.waitForFunction((sel) => document.querySelectorAll(`${sel} li.message`).length === 2, timeline(room));
  assert.deepEqual(await texts(alice), await texts(bob));

  // A second room; the unread badge and counts follow.
  await bob.fill('#room-input', 'random');
  await bob.click('#join-button');
  await bob.waitForSelector(`${timeline('random')}:not([hidden])`);
  await alice.waitForFunction(() => document.querySelector('#room-list .room-item[data-room="random"] .room-count')?.textContent === '1');
  await alice.fill('#message-input', 'are you still in lobby?');
  await alice.press('#message-input', 'Enter');
  await bob.waitForFunction(() => document.querySelector('#room-list .room-item[data-room="lobby"] .unread')?.textContent === '1');

  await alice.screenshot({ path: screenshotPath('rooms-chat-alice') });
  await bob.screenshot({ path: screenshotPath('rooms-chat-bob') });

  // Leaving shows a notice to the other side and updates its member list.
  await bob.click('#room-list .room-item[data-room="lobby"] button');
  await bob.click('#leave-button');
  await alice.waitForFunction(() => [...document.querySelectorAll('#members .member-name')].map((e) => e.textContent).join(',') === 'alice');
  await alice.waitForSelector(`${timeline(room)} .notice-leave`);
  assert.match(await alice.textContent(`${timeline(room)} .notice-leave`), /bob left/);

  assert.deepEqual(problems, [], 'no page error, console error or dialog');
});

test('phone width: the conversation fills the screen, rooms and members open as drawers', async () => {
  const phone = await openPage('phone', { width: 390, height: 800 });
  await login(phone, 'pat', 'mobile');
  const sidebar = await phone.locator('#sidebar').boundingBox();
  assert.ok(!sidebar || sidebar.x + sidebar.width <= 1, `the room list is off screen: ${JSON.stringify(sidebar)}`);
  const composer = await phone.locator('#composer').boundingBox();
  assert.ok(composer.width <= 390 && composer.width > 300, `the composer fits the phone: ${JSON.stringify(composer)}`);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling (${overflow} px too wide)`);
  await phone.fill('#message-input', 'hello from a phone');
  await phone.press('#message-input', 'Enter');
  await phone.waitForFunction(() => [...document.querySelectorAll('#messages .message-text')].some((e) => e.textContent === 'hello from a phone'));
  await phone.screenshot({ path: screenshotPath('rooms-chat-phone') });
  await phone.click('#toggle-rooms');
  await phone.waitForFunction(() => document.querySelector('#sidebar').getBoundingClientRect().x >= 0);
  await phone.waitForTimeout(300); // the slide-in transition
  await phone.screenshot({ path: screenshotPath('rooms-chat-phone-rooms') });
  assert.deepEqual(problems, [], 'no page error, console error or dialog');
});

test('a reload comes back in the same room under the same name, with its history', async () => {
  const page = await openPage('reload');
  await login(page, 'riley', 'reloads');
  await page.fill('#message-input', 'before reload');
  await page.press('#message-input', 'Enter');
  await page.waitForFunction(() => [...document.querySelectorAll('#messages .message-text')].some((e) => e.textContent === 'before reload'));
  await page.reload();
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('#status[data-state="connected"]');
  await page.waitForFunction(() => [...document.querySelectorAll('#messages .message-text')].some((e) => e.textContent === 'before reload'));
  await page.waitForFunction(() => !document.querySelector('#message-input').disabled);
  assert.equal(await page.textContent('#me'), 'riley');
  assert.equal(await page.locator('#messages .notice-error').count(), 0, 'the name was not refused (clientId takeover)');
  assert.deepEqual(problems, [], 'no page error, console error or dialog');
});

test('joining a room while it is busy: every message from the join on, once, in order', async () => {
  const room = 'busy';
  const writer = await connect(server.url, { label: 'busy-writer' });
  try {
    await writer.join(room, 'flooder');
    const acks = [];
    const flood = (async () => {
      const batch = [];
      for (let i = 0; i < 300; i += 1) {
        batch.push(writer.send(room, `flood ${i}`).then((ack) => acks.push(ack)));
        if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 15));
      }
      await Promise.all(batch);
    })();
    const page = await openPage('busy');
    await login(page, 'late', room);
    await flood;
    const ids = acks.map((ack) => ack.id).sort((a, b) => a - b);
    await page.waitForFunction(([sel, last]) => [...document.querySelectorAll(`${sel} li.message`)].some((e) => Number(e.dataset.id) === last),
      [timeline(room), ids.at(-1)], { timeout: 10_000 });
    const shown = await page.$$eval(`${timeline(room)} li.message`, (items) => items.map((e) => Number(e.dataset.id)));
    const start = ids.indexOf(shown[0]);
    assert.ok(start >= 0, `the first message shown (${shown[0]}) is one of the room's`);
    assert.deepEqual(shown, ids.slice(start), 'no gap and no duplicate from the first message shown to the last');
    assert.ok(shown.length >= 50, `history + live: ${shown.length} shown`);
    assert.deepEqual(problems, [], 'no page error, console error or dialog');
  } finally {
    writer.close();
  }
});

test('after its server dies and comes back, the page re-joins with since and shows every message once', async () => {
  const redis = await startRedis();
  const env = { REDIS_URL: redis.url, MSG_RATE: '0', HEARTBEAT_MS: '500', INSTANCE_TTL_MS: '2500' };
  let pageServer = await startServer('rooms-chat', env);
  const otherServer = await startServer('rooms-chat', env);
  const writer = await connect(otherServer.url, { label: 'writer' });
  try {
    const room = 'resume';
    const page = await openPage('resume', undefined, pageServer.url);
    await login(page, 'dana', room);
    await writer.join(room, 'writer');
    const shownIds = () => page.$$eval(`${timeline(room)} li.message`, (items) => items.map((e) => Number(e.dataset.id)));
    const acks = [await writer.send(room, 'one')];
    await page.waitForFunction((sel) => document.querySelectorAll(`${sel} li.message`).length === 1, timeline(room));

    await pageServer.kill();
    await page.waitForSelector('#status:not([data-state="connected"])');
    for (const text of ['two (while you were away)', 'three (while you were away)']) acks.push(await writer.send(room, text));
    pageServer = await startServer('rooms-chat', env, { port: pageServer.port });

    await page.waitForSelector('#status[data-state="connected"]', { timeout: 15_000 });
    await page.waitForFunction((sel) => document.querySelectorAll(`${sel} li.message`).length === 3, timeline(room), { timeout: 10_000 });
    acks.push(await writer.send(room, 'four (live again)'));
    await page.waitForFunction((sel) => document.querySelectorAll(`${sel} li.message`).length === 4, timeline(room));
    await page.waitForTimeout(300);
    assert.deepEqual(await shownIds(), acks.map((ack) => ack.id), 'every message once, in id order');
    assert.equal(await page.locator('#messages .notice-error').count(), 0, 'the re-join was not refused');
    await page.waitForFunction(() => [...document.querySelectorAll('#members .member-name')].map((e) => e.textContent).join(',') === 'dana,writer');
    assert.equal(await page.isDisabled('#message-input'), false, 'the page can write again');
    await page.screenshot({ path: screenshotPath('rooms-chat-resumed') });
    assert.deepEqual(problems.filter((p) => !p.includes('Failed to load resource') && !p.includes('WebSocket')), [], 'no page error or dialog');
  } finally {
    writer.close();
    await pageServer.stop();
    await otherServer.stop();
    await redis.stop();
  }
});
