// ws-chat's page in headless Chromium: two people join and chat, see each
// other and their messages, markup in a message stays text, a taken name can
// be retried, and the page reconnects by itself after a server restart.
// Screenshots go to target/screenshots/.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { launchBrowser, screenshotPath } from '../lib/browser.mjs';

const XSS = '<img src=x onerror=alert(1)>';
const WAIT = { timeout: 10_000 };

describe('ws-chat page', () => {
  let server;
  let browser;
  const dialogs = [];

  const openPage = async (viewport) => {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on('dialog', async (dialog) => {
      dialogs.push(dialog.message());
      await dialog.dismiss();
    });
    page.on('pageerror', (error) => dialogs.push(`page error: ${error.message}`));
    await page.goto(server.url);
    return page;
  };

  const joinAs = async (page, name) => {
    await page.fill('#name-input', name);
    await page.click('#login-button');
  };

  const userNames = (page) => page.locator('#users .user .name').allTextContents();

  before(async () => {
    server = await startServer('ws-chat');
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('two people join, chat, and markup stays text', async () => {
    const alice = await openPage({ width: 1100, height: 720 });
    const bob = await openPage({ width: 390, height: 780 }); // a phone

    await joinAs(alice, 'alice');
    await alice.locator('#me', { hasText: 'alice' }).waitFor(WAIT);
    await joinAs(bob, 'bob');
    await bob.locator('#status[data-state="online"]').waitFor(WAIT);

    await alice.locator('#users .user', { hasText: 'bob' }).waitFor(WAIT);
    assert.deepEqual((await userNames(alice)).sort(), ['alice', 'bob']);
    assert.deepEqual((await userNames(bob)).sort(), ['alice', 'bob']);
    await alice.locator('.system', { hasText: 'bob joined' }).waitFor(WAIT);

    // Typing shows on the other page.
    await alice.locator('#message-input').pressSequentially('Hel');
    await bob.locator('#typing', { hasText: 'alice is typing' }).waitFor(WAIT);
    await alice.locator('#message-input').pressSequentially('lo Bob!');
    await alice.keyboard.press('Enter');
    await bob.locator('.message .text', { hasText: 'Hello Bob!' }).waitFor(WAIT);
    await alice.locator('.message.mine .text', { hasText: 'Hello Bob!' }).waitFor(WAIT);
    assert.equal(await alice.locator('#message-input').inputValue(), '', 'the box is cleared');

    await bob.fill('#message-input', XSS);
    await bob.click('#send-button');
    for (const page of [alice, bob]) {
      const shown = page.locator('.message .text', { hasText: XSS });
      await shown.waitFor(WAIT);
      assert.equal(await shown.textContent(), XSS, 'shown exactly as typed');
      assert.equal(await page.locator('#messages img').count(), 0, 'no element was created');
    }
    await alice.locator('.message .author', { hasText: 'bob' }).first().waitFor(WAIT);
    await alice.waitForTimeout(300); // an onerror handler would have fired by now
    assert.deepEqual(dialogs, [], 'no script ran');

    await alice.screenshot({ path: screenshotPath('ws-chat-desktop') });
    await bob.screenshot({ path: screenshotPath('ws-chat-phone') });
    await bob.click('#toggle-users');
    await bob.locator('#sidebar.open').waitFor(WAIT);
    await bob.waitForTimeout(250); // the slide-in transition
    await bob.screenshot({ path: screenshotPath('ws-chat-phone-users') });

    await bob.context().close();
    await alice.locator('.system', { hasText: 'bob left' }).waitFor(WAIT);
    assert.deepEqual(await userNames(alice), ['alice']);
    await alice.context().close();
  });

  test('a taken name can be retried', async () => {
    const first = await openPage({ width: 900, height: 650 });
    await joinAs(first, 'dora');
    await first.locator('#me', { hasText: 'dora' }).waitFor(WAIT);

    const second = await openPage({ width: 900, height: 650 });
    await joinAs(second, 'DORA');
    await second.locator('#login-error', { hasText: 'taken' }).waitFor(WAIT);
    await second.screenshot({ path: screenshotPath('ws-chat-name-taken') });
    await joinAs(second, 'dora2');
    await second.locator('#me', { hasText: 'dora2' }).waitFor(WAIT);
    await first.locator('#users .user', { hasText: 'dora2' }).waitFor(WAIT);
    await first.context().close();
    await second.context().close();
  });

  test('the page reconnects and rejoins after a server restart', async () => {
    const page = await openPage({ width: 900, height: 650 });
    await joinAs(page, 'erin');
    await page.locator('#me', { hasText: 'erin' }).waitFor(WAIT);
    await page.fill('#message-input', 'before the restart');
    await page.keyboard.press('Enter');
    await page.locator('.message .text', { hasText: 'before the restart' }).waitFor(WAIT);

    const { port } = server;
    await server.stop();
    await page.locator('#status[data-state="offline"]').waitFor(WAIT);
    server = await startServer('ws-chat', {}, { port });

    await page.locator('#status[data-state="online"]').waitFor({ timeout: 20_000 });
    await page.locator('.system', { hasText: 'Reconnected' }).waitFor(WAIT);
    assert.deepEqual(await userNames(page), ['erin'], 'rejoined under the same name');
    await page.fill('#message-input', 'after the restart');
    await page.keyboard.press('Enter');
    await page.locator('.message .text', { hasText: 'after the restart' }).waitFor(WAIT);
    await page.screenshot({ path: screenshotPath('ws-chat-reconnected') });
    assert.deepEqual(dialogs, []);
    await page.context().close();
  });
});
