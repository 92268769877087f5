// Small helpers the three pages have in common: the connection status
// badge, the tab's session storage, the client id a reconnect takes its
// name back with, a colour per name and the composer that grows with its
// text. A plain ES module, no build step, imported by each page's app.js.

/** The element with id `id`. */
export const $ = (id) => document.getElementById(id);

/**
 * Shows the connection state in the page's `#status` badge: `kind` goes to
 * its `data-state` (the tests and the CSS read it), `text` to `#status-text`
 * when the badge has one, else to the badge itself.
 */
export function setStatus(kind, text) {
  const status = $('status');
  status.dataset.state = kind;
  ($('status-text') ?? status).textContent = text;
}

/** sessionStorage that never throws (private modes may refuse it): the tab's memory. */
export const session = {
  get(key) { try { return sessionStorage.getItem(key); } catch { return null; } },
  set(key, value) { try { sessionStorage.setItem(key, value); } catch { /* not remembered */ } },
  remove(key) { try { sessionStorage.removeItem(key); } catch { /* nothing to forget */ } },
};

/**
 * A random id kept under `key` for the browser tab's session: sent with the
 * name, it lets a reconnect take the name back from the page's own older
 * socket (contract: `clientId`).
 */
export function clientId(key) {
  let id = session.get(key);
  if (!id) {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes); // works on plain http too, unlike randomUUID
    id = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
    session.set(key, id);
  }
  return id;
}

/** A stable hue (0-359) per name, whatever its case, so people are easy to tell apart. */
export function hueOf(name) {
  let hash = 0;
  for (const char of name.toLowerCase()) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return hash % 360;
}

/** Lets a textarea grow with its text, up to `max` pixels. */
export function autoGrow(textarea, max = 160) {
  textarea.style.height = 'auto';
  textarea.style.height = `${Math.min(textarea.scrollHeight, max)}px`;
}
