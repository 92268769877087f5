// Tokens for the tests of token authentication: minted by a binary's own
// `token` subcommand from a secret, or made here (HS256) when a test needs
// one the subcommand would never make (expired, forged, unsigned).
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { binDir } from './server.mjs';

/** A token from `<app> token <args…>` signed with `secret`. */
export function mint(app, secret, ...args) {
  return execFileSync(path.join(binDir(), app), ['token', ...args], {
    env: { ...process.env, AUTH_JWT_SECRET: secret },
    encoding: 'utf8',
  }).trim();
}

export const base64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** An HS256 token for `claims`, signed with `secret`. */
export function hs256(claims, secret) {
  const unsigned = `${base64url({ alg: 'HS256', typ: 'JWT' })}.${base64url(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

/** Now, in the seconds that claims count. */
export const nowSecs = () => Math.floor(Date.now() / 1000);
