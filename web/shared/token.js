// Token authentication on the three pages: whether the server asks for a
// token (its /healthz says "auth":"token"), the token itself (from
// `#token=…` in the address, which is then removed from it, or pasted into
// a field; kept for the tab's session only), and what a page may show of
// it (the name it carries, whether it has expired). The server checks the
// token; a page only reads it to say who it is and why it was refused.
// A plain ES module, no build step; it exports `TokenAuth`, imported by
// each page's app.js.
import { session } from './page.js';

const STORAGE_KEY = 'auth.token';

/** A `#token=…` in the address wins; it leaves the address at once. */
function fromAddress() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return;
  session.set(STORAGE_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, '', location.pathname + location.search);
}
// Runs when the module is first imported, before the page's app.js body.
fromAddress();

/** The claims of a token, or null (a page never trusts them: display only). */
function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(Array.from(atob(part), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

export const TokenAuth = {
  /** Whether the server asks for a token. */
  async required() {
    try {
      const health = await (await fetch('healthz', { cache: 'no-store' })).json();
      return health?.auth === 'token';
    } catch {
      return false;
    }
  },
  get token() { return session.get(STORAGE_KEY); },
  set token(value) {
    const token = value?.trim();
    if (token) session.set(STORAGE_KEY, token); else session.remove(STORAGE_KEY);
  },
  /** The name the token carries (its `name`, else its `sub`). */
  name(token = session.get(STORAGE_KEY)) {
    const payload = token && claims(token);
    return payload?.name ?? payload?.sub ?? null;
  },
  /** A reason a refused token was probably refused, as a person would say it. */
  describe(message) {
    const reason = String(message ?? '').replace(/^unauthorized:\s*/, '');
    return reason ? `Token refused: ${reason}.` : 'Token refused.';
  },
};
