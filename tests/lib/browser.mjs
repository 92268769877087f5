// Headless Chromium (Debian's package) driven by playwright-core, with the
// flags this sandbox needs, and what the page tests share: a watched page in
// a context of its own, the phone-width check. Screenshots go under
// target/screenshots/.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const screenshotDir = path.join(root, 'target', 'screenshots');

/** A phone's screen in CSS pixels: the width every page must fit. */
export const PHONE = { width: 390, height: 780 };

export async function launchBrowser() {
  mkdirSync(screenshotDir, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

export function screenshotPath(name) {
  return path.join(screenshotDir, `${name}.png`);
}

/**
 * Opens `url` at `viewport` in a context of its own (its own cookies and
 * storage, like another person's browser). Page errors and dialogs are
 * pushed to `problems` under `label`; `session` entries are in the tab's
 * sessionStorage before the page's scripts run.
 */
export async function openPage(browser, url, { label, problems, viewport = PHONE, session = {} }) {
  const context = await browser.newContext({ viewport });
  await context.addInitScript((entries) => {
    if (location.protocol !== 'http:') return; // about:blank has no storage
    for (const [key, value] of Object.entries(entries)) sessionStorage.setItem(key, value);
  }, session);
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`${label}: page error: ${error.message}`));
  page.on('dialog', async (dialog) => {
    problems.push(`${label}: a dialog opened: ${dialog.message()}`);
    await dialog.dismiss();
  });
  await page.goto(url);
  return page;
}

/** Whether nothing on the page is wider than its window (it never scrolls sideways). */
export const fitsTheWidth = (page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

/** Waits until the element at `selector` says exactly `text`. */
export const waitForText = (page, selector, text) => page.waitForFunction(
  ([where, expected]) => document.querySelector(where)?.textContent === expected, [selector, text]);
