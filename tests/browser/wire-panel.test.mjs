// The "Wire" panel (web/shared/inspector.js) on the three pages, in headless
// Chromium. Each page talks to its server through a TCP relay that keeps
// every byte (tests/lib/wire-proxy.mjs), so the panel's entries, their raw
// text and their byte counts are checked against what really travelled, and
// against what the test itself sent and received with its own clients.
// Phone-width screenshots go to target/screenshots/.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer } from '../lib/server.mjs';
import { launchBrowser, screenshotPath } from '../lib/browser.mjs';
import { startWireProxy, joined, httpMessages, upgradedFrames } from '../lib/wire-proxy.mjs';
import { connect } from '../lib/rooms.mjs';

const WAIT = { timeout: 15_000 };
const XSS = '<img src=x onerror=alert(1)>';
const TEXT_FRAME = 1;

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** A page whose wire panel is open from the first byte (the panel remembers it per tab). */
async function openPage(url, { viewport = { width: 1200, height: 800 }, panelOpen = true, problems }) {
  const context = await browser.newContext({ viewport });
  if (panelOpen) await context.addInitScript(() => sessionStorage.setItem('wire-inspector.open', '1'));
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('dialog', async (dialog) => { problems.push(`dialog: ${dialog.message()}`); await dialog.dismiss(); });
  await page.goto(url);
  return page;
}

/** The panel's entries, as the page shows them. */
const entries = (page) => page.$$eval('#wire-list .wire-entry', (items) => items.map((item) => ({
  dir: item.dataset.dir,
  bytes: item.dataset.bytes === undefined ? null : Number(item.dataset.bytes),
  kind: item.querySelector('.wire-kind')?.textContent ?? '',
  raw: item.querySelector('.wire-raw')?.textContent ?? null,
  transport: item.querySelector('.wire-transport')?.textContent ?? null,
})));

const frames = (list, dir) => list.filter((entry) => entry.dir === dir);
const sum = (list) => list.reduce((total, entry) => total + entry.bytes, 0);
const counter = async (page, name) => Number((await page.textContent(`#wire-${name}`)).replace(/,/g, ''));

/** The counters add up the entries (read in one go: entries keep arriving). */
async function assertCountersMatch(page) {
  const { shown, listed } = await page.evaluate(() => {
    const value = (name) => Number(document.querySelector(`#wire-${name}`).textContent.replace(/,/g, ''));
    const items = (dir) => [...document.querySelectorAll(`#wire-list .wire-entry[data-dir="${dir}"]`)];
    const bytes = (list) => list.reduce((total, item) => total + Number(item.dataset.bytes), 0);
    return {
      shown: [value('up-frames'), value('up-bytes'), value('down-frames'), value('down-bytes')],
      listed: [items('up').length, bytes(items('up')), items('down').length, bytes(items('down'))],
    };
  });
  assert.deepEqual(shown, listed, 'frames and bytes, sent then received');
}

/** The panel and its toggle fit a 390 px screen, with no sideways scroll inside. */
async function assertFitsPhone(page) {
  for (const selector of ['#wire-panel', '#wire-toggle']) {
    const box = await page.locator(selector).boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 390, `${selector} within the screen (${JSON.stringify(box)})`);
  }
  const overflow = await page.$eval('#wire-panel', (panel) => [panel, ...panel.querySelectorAll('*')]
    .filter((node) => node.scrollWidth > node.clientWidth + 1 && getComputedStyle(node).overflowX === 'visible')
    .map((node) => node.className));
  assert.deepEqual(overflow, [], 'nothing in the panel is wider than its box');
}

describe('ws-chat wire panel', () => {
  let server;
  let proxy;
  const problems = [];
  before(async () => {
    // No server pings during the test: they are control frames a page cannot see.
    server = await startServer('ws-chat', { MSG_RATE: '0', PING_MS: '600000' });
    proxy = await startWireProxy(server.port);
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  test('closed by default, and records nothing while closed', async () => {
    const page = await openPage(proxy.url, { panelOpen: false, problems });
    assert.equal(await page.isHidden('#wire-panel'), true);
    await page.fill('#name-input', 'quiet');
    await page.click('#login-button');
    await page.locator('#status[data-state="online"]').waitFor(WAIT);
    await page.fill('#message-input', 'not recorded');
    await page.click('#send-button');
    await page.locator('.message .text', { hasText: 'not recorded' }).waitFor(WAIT);
    await page.click('#wire-toggle');
    assert.equal(await page.isVisible('#wire-panel'), true);
    assert.deepEqual(frames(await entries(page), 'up'), []);
    assert.deepEqual(frames(await entries(page), 'down'), []);
    await page.click('#wire-toggle');
    assert.equal(await page.isHidden('#wire-panel'), true);
    await page.context().close();
  });

  test('every frame, its text and its size, exactly as they travelled', async () => {
    const from = proxy.connections.length;
    const page = await openPage(proxy.url, { problems });
    await page.fill('#name-input', 'alice');
    await page.click('#login-button');
    await page.locator('#status[data-state="online"]').waitFor(WAIT);

    // Bob, the test's own client, straight to the server: what he receives
    // is what the server broadcast.
    const bob = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
    const bobReceived = [];
    bob.on('message', (data) => bobReceived.push(data.toString('utf8')));
    await new Promise((resolve, reject) => { bob.once('open', resolve); bob.once('error', reject); });
    bob.send(JSON.stringify({ type: 'hello', name: 'bob' }));
    const bobText = 'héllo from bob ✓ ☕';
    await page.locator('#users .user', { hasText: 'bob' }).waitFor(WAIT);
    bob.send(JSON.stringify({ type: 'message', text: bobText }));
    await page.locator('.message .text', { hasText: bobText }).waitFor(WAIT);

    const aliceText = `a longer line so that the frame needs the 16-bit length: ${'x'.repeat(130)}`;
    for (const text of ['hi wire', aliceText, XSS]) {
      await page.fill('#message-input', text);
      await page.click('#send-button');
      await page.locator('.message.mine .text', { hasText: text.slice(0, 20) }).last().waitFor(WAIT);
    }
    await page.waitForFunction(() => /\d+ ms/.test(document.querySelector('#wire-rtt').textContent));
    await page.waitForFunction((count) => document.querySelectorAll('#wire-list .wire-down').length >= count, 6);

    const list = await entries(page);
    const relayed = proxy.connections.slice(from).map(upgradedFrames).find((connection) => connection.upHead.startsWith('GET /ws'));
    assert.ok(relayed, 'the page opened /ws through the relay');
    assert.match(relayed.downHead, /^HTTP\/1\.1 101 /);
    assert.ok(relayed.up.every((frame) => frame.opcode === TEXT_FRAME && frame.masked), 'only masked text frames upward');
    assert.ok(relayed.down.every((frame) => frame.opcode === TEXT_FRAME && !frame.masked), 'only text frames downward');
    // The relay may already hold a frame the page has yet to list: compare what the page listed.
    for (const dir of ['up', 'down']) {
      const listed = frames(list, dir).map(({ raw, bytes }) => ({ raw, bytes }));
      const travelled = relayed[dir].map(({ text, size }) => ({ raw: text, bytes: size }));
      assert.ok(listed.length >= (dir === 'up' ? 4 : 6), `${dir}: hello or welcome and the messages are listed`);
      assert.deepEqual(listed, travelled.slice(0, listed.length), `${dir}: every frame, its text and its size on the wire`);
    }

    // What the test typed and what its own client received.
    const sent = frames(list, 'up').map((entry) => entry.raw);
    for (const text of ['hi wire', aliceText, XSS]) assert.ok(sent.includes(JSON.stringify({ type: 'message', text })), `sent ${text}`);
    const long = frames(list, 'up').find((entry) => entry.raw.includes(aliceText));
    assert.equal(long.bytes, Buffer.byteLength(long.raw) + 8, 'a 126+ byte payload: 2 + 2 length + 4 mask');
    const bobsMessage = bobReceived.find((frame) => JSON.parse(frame).type === 'message' && JSON.parse(frame).text === bobText);
    const shown = frames(list, 'down').find((entry) => entry.raw === bobsMessage);
    assert.ok(shown, 'the broadcast bob received, byte for byte');
    assert.equal(shown.bytes, Buffer.byteLength(bobsMessage) + 2, 'a short server frame: 2 header bytes, no mask');
    assert.match(shown.kind, /message/);
    await assertCountersMatch(page);

    await page.screenshot({ path: screenshotPath('wire-ws-chat-desktop') });

    // Markup stays text.
    assert.equal(await page.locator('#wire-list img').count(), 0);
    assert.ok((await page.locator('#wire-list .wire-raw').allTextContents()).some((raw) => raw.includes(XSS)));

    // Pause, then clear.
    const before = (await entries(page)).length;
    await page.click('#wire-pause');
    await page.fill('#message-input', 'while paused');
    await page.click('#send-button');
    await page.locator('.message.mine .text', { hasText: 'while paused' }).waitFor(WAIT);
    assert.equal((await entries(page)).length, before, 'nothing recorded while paused');
    await page.click('#wire-pause');
    assert.match((await entries(page)).at(-1).kind, /paused/);
    await page.click('#wire-clear');
    assert.equal((await entries(page)).length, 0);
    assert.equal(await counter(page, 'down-bytes'), 0);

    // Bounded: the last 300 entries stay, the counters count everything.
    for (let index = 1; index <= 320; index += 1) bob.send(JSON.stringify({ type: 'message', text: `burst ${index}` }));
    await page.waitForFunction(() => Number(document.querySelector('#wire-down-frames').textContent.replace(/,/g, '')) >= 320, null, WAIT);
    const kept = await entries(page);
    assert.equal(kept.length, 300);
    assert.equal(JSON.parse(kept.at(-1).raw).text, 'burst 320');

    bob.close();
    await page.context().close();
    assert.deepEqual(problems, []);
  });

  test('phone width: the panel fits 390 px', async () => {
    const page = await openPage(proxy.url, { viewport: { width: 390, height: 800 }, problems });
    await page.fill('#name-input', 'phone');
    await page.click('#login-button');
    await page.locator('#status[data-state="online"]').waitFor(WAIT);
    await page.fill('#message-input', 'hello from a phone');
    await page.click('#send-button');
    await page.locator('#wire-list .wire-down .wire-kind', { hasText: 'message' }).first().waitFor(WAIT);
    await assertFitsPhone(page);
    await page.screenshot({ path: screenshotPath('wire-ws-chat-phone') });
    await page.context().close();
  });
});

describe('sse-stocks wire panel', () => {
  let server;
  let proxy;
  const problems = [];
  before(async () => {
    // Few symbols: the test reads every entry before the panel's bound of 300 drops any.
    server = await startServer('sse-stocks', { TICK_MS: '200', SEED: '3', SYMBOLS: 'AAPL,MSFT,GOOGL' });
    proxy = await startWireProxy(server.port);
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  /** The event-stream responses the relay carried, in order: { request, body }. */
  const streams = () => proxy.connections.flatMap((record) => {
    const requests = httpMessages(joined(record.up)).messages;
    const responses = httpMessages(joined(record.down)).messages;
    return responses.map((response, index) => ({ request: requests[index], response }))
      .filter(({ response }) => response.headers.get('content-type') === 'text/event-stream')
      .map(({ request, response }) => ({ request, body: response.bodyBytes.toString('utf8') }));
  });

  /** The stream's events as the server wrote them, after its opening retry: line. */
  const serverEvents = (body) => {
    const match = /^retry: \d+\n\n/.exec(body);
    assert.ok(match, `the stream starts with retry: (${JSON.stringify(body.slice(0, 40))})`);
    return body.slice(match[0].length).split(/(?<=\n\n)/).filter((block) => block.endsWith('\n\n'));
  };

  test('the events as the server wrote them, the reconnection and its Last-Event-ID', async () => {
    const page = await openPage(proxy.url, { problems });
    await page.waitForFunction(() => document.querySelectorAll('#wire-list .wire-down').length >= 15, null, WAIT);

    const first = frames(await entries(page), 'down');
    const [stream] = streams();
    assert.ok(stream, 'the page opened /events through the relay');
    const written = serverEvents(stream.body);
    assert.ok(written.length >= first.length);
    first.forEach((entry, index) => {
      assert.equal(entry.raw, written[index], `event ${index}: the lines the server wrote`);
      assert.equal(entry.bytes, Buffer.byteLength(written[index]), `event ${index}: its size`);
    });
    assert.match(first[0].kind, /snapshot/);
    assert.match(first[1].kind, /tick/);
    assert.deepEqual(frames(await entries(page), 'up'), [], 'EventSource sends nothing after its request');
    await assertCountersMatch(page);
    await page.screenshot({ path: screenshotPath('wire-sse-stocks-desktop') });

    // A network drop: the browser reconnects by itself with Last-Event-ID.
    const countBefore = (await entries(page)).length;
    proxy.cutAll();
    await page.locator('#wire-list .wire-note', { hasText: 'reconnected by itself' }).waitFor(WAIT);
    await page.waitForFunction((count) => document.querySelectorAll('#wire-list .wire-entry').length >= count + 5, countBefore, WAIT);
    const list = await entries(page);
    const noteIndex = list.findIndex((entry) => entry.kind.includes('reconnected by itself'));
    const lastBefore = list.slice(0, noteIndex).filter((entry) => entry.dir === 'down').at(-1);
    const lastId = /^id: (.*)$/m.exec(lastBefore.raw)[1];
    const resumed = streams().at(-1);
    assert.notEqual(resumed, stream);
    assert.equal(resumed.request.headers.get('last-event-id'), lastId, 'the browser sent the last id it received');
    assert.match(list[noteIndex].kind, new RegExp(`Last-Event-ID: ${lastId}`));
    const after = list.slice(noteIndex + 1).filter((entry) => entry.dir === 'down');
    const rewritten = serverEvents(resumed.body);
    assert.match(rewritten[0], /^id: .*\nevent: tick\n/, 'a resume replays ticks, no snapshot');
    after.forEach((entry, index) => assert.equal(entry.raw, rewritten[index], `resumed event ${index}`));
    await assertCountersMatch(page);
    await page.context().close();
    assert.deepEqual(problems, []);
  });

  test('phone width: the panel fits 390 px', async () => {
    const page = await openPage(proxy.url, { viewport: { width: 390, height: 800 }, problems });
    await page.waitForFunction(() => document.querySelectorAll('#wire-list .wire-down').length >= 4, null, WAIT);
    await assertFitsPhone(page);
    await page.screenshot({ path: screenshotPath('wire-sse-stocks-phone') });
    await page.context().close();
  });
});

describe('rooms-chat wire panel', () => {
  let server;
  let proxy;
  const problems = [];
  before(async () => {
    server = await startServer('rooms-chat', { MSG_RATE: '0' });
    proxy = await startWireProxy(server.port);
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  const PROBES = new Set(['2probe', '3probe', '5']);

  /** Engine.IO packets the relay carried in polling bodies, each way. */
  function pollingPackets(from) {
    const up = new Set();
    const down = new Set();
    const add = (set, message) => {
      for (const packet of (message?.bodyBytes.toString('utf8') ?? '').split('\x1e')) if (packet) set.add(packet);
    };
    for (const record of proxy.connections.slice(from)) {
      // Keep-alive: a connection may carry page files before the polls.
      const responses = httpMessages(joined(record.down)).messages;
      httpMessages(joined(record.up)).messages.forEach((request, index) => {
        if (!request.startLine.includes('transport=polling')) return;
        add(up, request);
        add(down, responses[index]);
      });
    }
    return { up, down };
  }

  test('Engine.IO and Socket.IO packets decoded, per transport, with their sizes', async () => {
    const room = 'wire';
    const from = proxy.connections.length;
    const page = await openPage(proxy.url, { problems });
    await page.waitForFunction(() => document.querySelector('#wire-transport').textContent === 'websocket', null, WAIT);
    await page.fill('#name-input', 'alice');
    await page.fill('#first-room-input', room);
    await page.click('#login-button');
    await page.waitForSelector('#status[data-state="connected"]');

    const bob = await connect(server.url, { label: 'bob' });
    await bob.join(room, 'bob');
    const bobText = 'héllo from bob ✓';
    const bobAck = await bob.send(room, bobText);
    assert.equal(bobAck.ok, true);
    await page.locator('.timeline .message-text', { hasText: bobText }).waitFor(WAIT);
    const aliceText = `alice says ${XSS}`;
    await page.fill('#message-input', aliceText);
    await page.click('#send-button');
    await bob.waitFor('message', (message) => message.text === aliceText, 10_000, 'from alice');
    await page.waitForFunction(() => /\d+ ms/.test(document.querySelector('#wire-rtt').textContent), null, WAIT);

    const list = await entries(page);
    // The handshake, through the polling transport.
    assert.match(list.find((entry) => entry.dir === 'down').raw, /^0\{"sid":/, 'the open packet comes first');
    assert.ok(list.some((entry) => entry.dir === 'up' && entry.raw === '40' && /connect/.test(entry.kind)));
    assert.ok(list.some((entry) => entry.dir === 'down' && /^40\{"sid":/.test(entry.raw)));
    const polling = pollingPackets(from);
    for (const entry of list.filter((item) => item.transport === 'polling')) {
      assert.ok(polling[entry.dir].has(entry.raw), `${entry.raw} travelled in a polling body`);
      assert.equal(entry.bytes, Buffer.byteLength(entry.raw), 'polling: the packet\'s own bytes');
    }

    // Over WebSocket: every frame, in order, text and size.
    const relayed = proxy.connections.slice(from).map(upgradedFrames).find((connection) => connection.upHead.includes('transport=websocket'));
    assert.ok(relayed, 'the client upgraded through the relay');
    const wsEntries = (dir) => list.filter((entry) => entry.transport === 'websocket' && entry.dir === dir)
      .map(({ raw, bytes }) => ({ raw, bytes }));
    const wsFrames = (side) => side.filter((frame) => frame.opcode === TEXT_FRAME && !PROBES.has(frame.text))
      .map(({ text, size }) => ({ raw: text, bytes: size }));
    assert.deepEqual(wsEntries('up'), wsFrames(relayed.up).slice(0, wsEntries('up').length));
    assert.deepEqual(wsEntries('down'), wsFrames(relayed.down).slice(0, wsEntries('down').length));

    // What the test sent and received, decoded.
    const sent = list.find((entry) => entry.dir === 'up' && entry.raw.includes(JSON.stringify(aliceText)));
    const [, ackId] = /^42(\d+)\["message",/.exec(sent.raw);
    assert.equal(sent.raw, `42${ackId}${JSON.stringify(['message', { room, text: aliceText }])}`);
    assert.match(sent.kind, new RegExp(`event "message" · wants ack ${ackId}`));
    const ack = list.find((entry) => entry.dir === 'down' && entry.raw.startsWith(`43${ackId}[`));
    assert.ok(ack, 'its ack');
    assert.match(ack.kind, new RegExp(`ack id ${ackId}`));
    assert.equal(JSON.parse(ack.raw.slice(2 + ackId.length))[0].ok, true);
    const bobsMessage = bob.events.message.find((message) => message.text === bobText);
    // The event, then its offset (connection state recovery) as the last argument.
    const event = JSON.stringify(['message', bobsMessage]).slice(0, -1);
    const shown = list.find((entry) => entry.dir === 'down' && entry.raw.startsWith(`42${event},"`)
      && /,"[0-9a-f]{8}\.\d+"\]$/.test(entry.raw));
    assert.ok(shown, 'bob\'s message as bob received it, with its offset');
    assert.match(shown.kind, /^42 event "message"$/);
    assert.equal(shown.bytes, Buffer.byteLength(shown.raw) + 2, 'one WebSocket frame, 2 header bytes');
    await assertCountersMatch(page);
    assert.equal(await page.locator('#wire-list img').count(), 0, 'markup stays text');
    await page.screenshot({ path: screenshotPath('wire-rooms-chat-desktop') });

    // A network drop: the client reconnects on a new engine, listed from its open packet.
    const before = (await entries(page)).length;
    proxy.cutAll();
    await page.waitForFunction((count) => [...document.querySelectorAll('#wire-list .wire-entry')].slice(count)
      .some((item) => item.dataset.dir === 'down' && item.querySelector('.wire-raw')?.textContent.startsWith('0{"sid":')), before, WAIT);
    const afterDrop = (await entries(page)).slice(before);
    assert.ok(afterDrop.some((entry) => entry.dir === 'note' && /new Engine\.IO connection/.test(entry.kind)));
    assert.ok(afterDrop.some((entry) => entry.dir === 'note' && /closed/.test(entry.kind)));
    await page.waitForSelector('#status[data-state="connected"]');

    bob.socket.close();
    await page.context().close();
    assert.deepEqual(problems, []);
  });

  test('phone width: the panel fits 390 px', async () => {
    // Opened after the login: on a phone the panel covers the login card.
    const page = await openPage(proxy.url, { viewport: { width: 390, height: 800 }, panelOpen: false, problems });
    await page.fill('#name-input', 'phone');
    await page.fill('#first-room-input', 'general');
    await page.click('#login-button');
    await page.waitForSelector('#status[data-state="connected"]');
    await page.click('#wire-toggle');
    await page.fill('#message-input', 'hello from a phone');
    await page.click('#send-button');
    await page.locator('#wire-list .wire-down .wire-kind', { hasText: /^43/ }).first().waitFor(WAIT);
    await assertFitsPhone(page);
    await page.screenshot({ path: screenshotPath('wire-rooms-chat-phone') });
    await page.context().close();
  });
});
