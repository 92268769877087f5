// A private redis-server on a free port for one test: it can be stopped and
// restarted on the same port to play a Redis outage.
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort, sleep } from './server.mjs';

function pingable(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

export async function startRedis({ port } = {}) {
  port ??= await freePort();
  let proc;
  const start = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 200; i += 1) {
      if (await pingable(port)) return;
      await sleep(25);
    }
    throw new Error(`redis-server did not start on ${port}`);
  };
  const stop = async () => {
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  };
  await start();
  return { port, url: `redis://127.0.0.1:${port}/0`, stop, restart: start };
}
