// Helpers for the rooms-chat tests: official socket.io-client sockets that
// record every server event, acks with timeouts, and waits with clear errors.
import { io } from 'socket.io-client';
import { sleep } from './server.mjs';

export const SERVER_EVENTS = ['message', 'user_joined', 'user_left', 'typing', 'rooms'];
export const ERROR_CODES = ['bad_request', 'too_large', 'rate_limited', 'name_taken', 'not_joined', 'not_in_room', 'unknown_symbol', 'unavailable', 'unauthorized', 'forbidden'];

/**
 * A connected socket.io-client socket that records every server event in
 * `client.events[name]`. Options go to `io()`; by default a new Manager per
 * client and no automatic reconnection (tests that need it turn it on).
 */
export async function connect(url, { label = 'client', timeoutMs = 5000, ...options } = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: timeoutMs, ...options });
  const client = new RecordingClient(socket, label);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: no connection to ${url} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => { clearTimeout(timer); resolve(); });
    socket.once('connect_error', (error) => { clearTimeout(timer); reject(new Error(`${label}: connect_error to ${url}: ${error.message}`)); });
  });
  return client;
}

export class RecordingClient {
  constructor(socket, label) {
    this.socket = socket;
    this.label = label;
    this.events = Object.fromEntries(SERVER_EVENTS.map((name) => [name, []]));
    this.waiters = new Set();
    this.disconnects = []; // reasons, e.g. the server dropping a socket that fell behind
    socket.on('disconnect', (reason) => this.disconnects.push(reason));
    socket.onAny((event, payload) => {
      (this.events[event] ??= []).push(payload);
      for (const waiter of [...this.waiters]) waiter();
    });
  }

  /** Emits `event` and resolves with the ack (rejects after `timeoutMs`). */
  async ack(event, payload, timeoutMs = 5000) {
    const args = payload === undefined ? [] : [payload];
    try {
      return await this.socket.timeout(timeoutMs).emitWithAck(event, ...args);
    } catch (error) {
      throw new Error(`${this.label}: no ack for ${event} ${short(payload)} within ${timeoutMs} ms (${error.message})${this.disconnectNote()}`);
    }
  }

  /** Joins and asserts the ack is ok; returns the ack. */
  async join(room, name, extra = {}) {
    const ack = await this.ack('join', { room, name, ...extra });
    if (!ack?.ok) throw new Error(`${this.label}: join ${room} as ${name} refused: ${JSON.stringify(ack)}`);
    return ack;
  }

  async send(room, text) {
    return this.ack('message', { room, text });
  }

  /** Messages received in `room`, in arrival order. */
  messages(room) {
    return this.events.message.filter((message) => message.room === room);
  }

  /**
   * Resolves with the first recorded `event` payload (past or future) that
   * matches `predicate`; rejects after `timeoutMs` with what was recorded.
   */
  waitFor(event, predicate = () => true, timeoutMs = 5000, what = '') {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = (this.events[event] ?? []).find(predicate);
        if (found !== undefined) {
          cleanup();
          resolve(found);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        const seen = (this.events[event] ?? []).slice(-5).map(short).join(', ');
        reject(new Error(`${this.label}: no '${event}' ${what} within ${timeoutMs} ms; last seen: [${seen}]`));
      }, timeoutMs);
      const cleanup = () => { clearTimeout(timer); this.waiters.delete(check); };
      if (!check()) this.waiters.add(check);
    });
  }

  /** Waits until `count` messages of `room` were received. */
  async waitForMessages(room, count, timeoutMs = 5000) {
    await waitUntil(() => this.messages(room).length >= count, timeoutMs,
      () => `${this.label}: ${this.messages(room).length}/${count} messages in ${room}${this.disconnectNote()}`);
    return this.messages(room);
  }

  /** ", disconnected (reasons)" when the socket was closed under us, for error messages. */
  disconnectNote() {
    return this.disconnects.length ? `; the socket was disconnected (${this.disconnects.join(', ')})` : '';
  }

  close() {
    this.socket.disconnect();
  }
}

/** Polls `condition` every 20 ms; rejects with `describe()` after `timeoutMs`. */
export async function waitUntil(condition, timeoutMs, describe = () => 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await sleep(20);
  }
}

/** Asserts `ack` is `{ok:false,error:{code,message}}` with one of `codes`. */
export function isErrorAck(ack, codes = ERROR_CODES) {
  return ack !== null && typeof ack === 'object' && ack.ok === false
    && typeof ack.error === 'object' && ack.error !== null
    && codes.includes(ack.error.code) && typeof ack.error.message === 'string';
}

export function short(value) {
  const text = value === undefined ? 'undefined' : JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** Unique names so tests sharing one server never collide. */
let counter = 0;
export function unique(prefix) {
  counter += 1;
  return `${prefix}-${process.pid % 1000}-${counter}`;
}
