// Starts one of the workspace's server binaries on a free port for a test,
// waits until /healthz answers, and stops it afterwards.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Directory of the built binaries: $BIN_DIR, else target/debug. */
export function binDir() {
  return process.env.BIN_DIR ?? path.join(root, 'target', 'debug');
}

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `app` (ws-chat, sse-stocks or rooms-chat) with `env` added to the
 * environment. Resolves once /healthz answers 200 (or, with
 * `allowUnhealthy`, any status). Returns { url, port, proc, stop, kill, output }.
 */
export async function startServer(app, env = {}, { allowUnhealthy = false, port } = {}) {
  const bin = path.join(binDir(), app);
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run cargo build -p ${app} first`);
  port ??= await freePort();
  const proc = spawn(bin, [], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (chunk) => { output += chunk; });
  proc.stderr.on('data', (chunk) => { output += chunk; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${app} exited early (${proc.exitCode}):\n${output}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok || allowUnhealthy) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`${app} did not become healthy on ${url}:\n${output}`);
    }
    await sleep(50);
  }
  const stopWith = async (signal) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  return {
    url,
    port,
    proc,
    output: () => output,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
  };
}
