// The "Wire" panel every page shares: it lists what travels between the page
// and the server, frame by frame, so a learner sees WebSocket frames, SSE
// lines and Engine.IO / Socket.IO packets instead of the events an API hands
// out. A plain ES module, no build step; it exports `WireInspector`.
//
// Rules it keeps:
// - Closed by default, and closed it costs nothing: every hook returns at
//   once while the panel is closed or paused, nothing is encoded, parsed or
//   put in the DOM, and the app's own code paths never wait for it.
// - Honest: where the browser hides the bytes (EventSource, socket.io-client)
//   it rebuilds them from what the API exposes and says so; what cannot be
//   seen (HTTP headers, SSE comments, WebSocket pings) is named, not faked.
// - Bounded: the last MAX_ENTRIES entries are kept.
// - Text from the wire only ever reaches the DOM through textContent.
const MAX_ENTRIES = 300;
const OPEN_KEY = 'wire-inspector.open'; // remembered for the tab, so a reload shows the handshake
const encoder = new TextEncoder();

/** Bytes of `text` in UTF-8, as it travels. */
const utf8Length = (text) => encoder.encode(text).length;

/** Size of a WebSocket frame header (RFC 6455 §5.2) for a payload of `length` bytes. */
function webSocketHeaderLength(length, masked) {
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  return 2 + lengthBytes + (masked ? 4 : 0);
}

function clock(date) {
  const pad = (n, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function readOpen() {
  try { return sessionStorage.getItem(OPEN_KEY) === '1'; } catch { return false; }
}

function saveOpen(open) {
  try { sessionStorage.setItem(OPEN_KEY, open ? '1' : '0'); } catch { /* private mode: not remembered */ }
}

/**
 * Builds the panel and its toggle button (appended to `mount`).
 * `notes`: sentences telling what the panel can and cannot see on this page.
 * `rttLabel`: what the round-trip counter times on this page, or null.
 */
function create({ mount, title, notes = [], rttLabel = null }) {
  const toggle = element('button', 'wire-toggle');
  toggle.type = 'button';
  toggle.id = 'wire-toggle';
  toggle.title = 'Show what travels on the wire';
  toggle.setAttribute('aria-controls', 'wire-panel');
  toggle.setAttribute('aria-expanded', 'false');
  toggle.append(element('span', 'wire-toggle-icon', '⇅'), element('span', 'wire-toggle-text', 'Wire'));
  toggle.firstChild.setAttribute('aria-hidden', 'true');
  mount.append(toggle);

  const panel = element('section', 'wire-panel');
  panel.id = 'wire-panel';
  panel.hidden = true;
  panel.setAttribute('aria-label', 'Wire inspector');

  const head = element('div', 'wire-head');
  const heading = element('h2', 'wire-title', title);
  const pause = element('button', 'wire-button', 'Pause');
  pause.type = 'button';
  pause.id = 'wire-pause';
  pause.setAttribute('aria-pressed', 'false');
  const clear = element('button', 'wire-button', 'Clear');
  clear.type = 'button';
  clear.id = 'wire-clear';
  const close = element('button', 'wire-button wire-close', '✕');
  close.type = 'button';
  close.title = 'Close the wire panel';
  close.setAttribute('aria-label', 'Close the wire panel');
  head.append(heading, pause, clear, close);

  const counters = element('dl', 'wire-counters');
  const counter = (name, label) => {
    const box = element('div', 'wire-counter');
    const value = element('dd', '', '0');
    value.id = `wire-${name}`;
    box.append(element('dt', '', label), value);
    counters.append(box);
    return value;
  };
  const shown = {
    upFrames: counter('up-frames', '↑ frames'),
    upBytes: counter('up-bytes', '↑ bytes'),
    downFrames: counter('down-frames', '↓ frames'),
    downBytes: counter('down-bytes', '↓ bytes'),
    rtt: counter('rtt', rttLabel ?? 'round trip'),
    transport: counter('transport', 'transport'),
  };
  shown.rtt.textContent = '—';
  shown.transport.textContent = '—';
  if (!rttLabel) shown.rtt.title = 'a one-way stream: nothing comes back to time';

  const about = element('details', 'wire-about');
  about.append(element('summary', '', 'What this panel can see'));
  for (const note of notes) about.append(element('p', '', note));
  about.append(element('p', '', `Recording happens only while the panel is open and not paused; it keeps the last ${MAX_ENTRIES} entries.`));

  const list = element('ol', 'wire-list');
  list.id = 'wire-list';
  list.setAttribute('aria-live', 'off');
  panel.append(head, counters, about, list);
  document.body.append(panel);

  const totals = { upFrames: 0, upBytes: 0, downFrames: 0, downBytes: 0 };
  let open = false;
  let paused = false;
  let gap = null; // why entries were not recorded, shown when recording resumes

  function renderTotals() {
    for (const key of Object.keys(totals)) shown[key].textContent = totals[key].toLocaleString('en-US');
  }

  function append(item) {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item);
    while (list.childElementCount > MAX_ENTRIES) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function note(text) {
    const item = element('li', 'wire-entry wire-note');
    item.dataset.dir = 'note';
    const line = element('div', 'wire-line');
    line.append(element('span', 'wire-dir', '•'), element('time', 'wire-time', clock(new Date())), element('span', 'wire-kind', text));
    item.append(line);
    append(item);
  }

  function resumeRecording() {
    if (gap) note(gap);
    gap = null;
  }

  function setOpen(value) {
    if (value === open) return;
    open = value;
    panel.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    toggle.classList.toggle('wire-on', open);
    document.documentElement.classList.toggle('wire-open', open);
    saveOpen(open);
    if (open) resumeRecording(); else gap = 'panel was closed: nothing recorded meanwhile';
  }

  toggle.addEventListener('click', () => setOpen(!open));
  close.addEventListener('click', () => setOpen(false));
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    if (paused) gap = 'paused: nothing recorded meanwhile'; else resumeRecording();
  });
  clear.addEventListener('click', () => {
    list.replaceChildren();
    for (const key of Object.keys(totals)) totals[key] = 0;
    renderTotals();
    shown.rtt.textContent = '—';
  });

  const wire = {
    /** True while entries are recorded: hooks do nothing otherwise. */
    get on() { return open && !paused; },

    /**
     * One frame or packet. `dir`: 'up' (sent) or 'down' (received);
     * `bytes`: its size as it travelled; `size`: how that size is made up;
     * `raw`: its text; `kind`: what it is, decoded.
     */
    frame({ dir, kind, raw, bytes, size, transport }) {
      if (!wire.on) return;
      const up = dir === 'up';
      totals[up ? 'upFrames' : 'downFrames'] += 1;
      totals[up ? 'upBytes' : 'downBytes'] += bytes;
      renderTotals();
      const item = element('li', `wire-entry wire-${dir}`);
      item.dataset.dir = dir;
      item.dataset.bytes = String(bytes);
      const line = element('div', 'wire-line');
      const arrow = element('span', 'wire-dir', up ? '↑' : '↓');
      arrow.title = up ? 'sent' : 'received';
      const count = element('span', 'wire-bytes', `${bytes} B`);
      if (size) count.title = size;
      line.append(arrow, element('time', 'wire-time', clock(new Date())), element('span', 'wire-kind', kind));
      if (transport) line.append(element('span', 'wire-transport', transport));
      line.append(count);
      const text = element('pre', 'wire-raw', raw);
      item.append(line, text);
      if (size) item.append(element('div', 'wire-size', size));
      append(item);
    },

    /** Something that is not a frame: a connection opening, a reconnect, what cannot be seen. */
    note(text) {
      if (wire.on) note(text);
    },

    roundTrip(ms, what) {
      if (!wire.on) return;
      shown.rtt.textContent = `${Math.round(ms)} ms`;
      shown.rtt.title = what;
    },

    transport(name) {
      shown.transport.textContent = name;
    },
  };

  if (readOpen()) setOpen(true);
  return wire;
}

// ------------------------------------------------------------ WebSocket

/**
 * Watches a WebSocket carrying JSON text frames (ws-chat). Sent frames are
 * seen by wrapping this socket's own `send`; sizes are exact (the server
 * negotiates no compression): payload plus the frame header, masked upward.
 * Round trip: a chat message sent until the server echoes it back to us.
 */
function watchWebSocket(wire, socket, path) {
  let myId = null;
  const pending = []; // {text, at} of our chat messages awaiting their echo

  wire.transport('websocket');
  wire.note(`↑ GET ${path} with Upgrade: websocket (an HTTP request; its headers are not visible to the page)`);
  socket.addEventListener('open', () => wire.note(`↓ 101 Switching Protocols: the WebSocket is open${socket.extensions ? `, extensions: ${socket.extensions}` : ', no extension (frames are not compressed)'}`));
  socket.addEventListener('close', (event) => wire.note(`closed: code ${event.code}${event.reason ? ` (${event.reason})` : ''}${event.wasClean ? '' : ', not cleanly'}`));

  const show = (dir, text) => {
    const payload = utf8Length(text);
    const header = webSocketHeaderLength(payload, dir === 'up');
    let frame = null;
    try { frame = JSON.parse(text); } catch { /* shown as it came */ }
    wire.frame({
      dir,
      kind: `text frame${frame && typeof frame.type === 'string' ? ` · ${frame.type}` : ''}`,
      raw: text,
      bytes: payload + header,
      size: `${payload} B payload + ${header} B frame header${dir === 'up' ? ', 4 of them the mask every browser frame carries' : ''}`,
    });
    return frame;
  };

  const send = socket.send.bind(socket);
  socket.send = (data) => {
    if (wire.on && typeof data === 'string') {
      const frame = show('up', data);
      if (frame?.type === 'message') pending.push({ text: String(frame.text ?? '').trim(), at: performance.now() });
    }
    return send(data);
  };
  socket.addEventListener('message', (event) => {
    if (!wire.on || typeof event.data !== 'string') return;
    const frame = show('down', event.data);
    if (frame?.type === 'welcome') myId = frame.you?.id ?? null;
    // Opened after the welcome, the panel does not know our id: the text alone must do.
    if (frame?.type === 'message' && (myId === null || frame.from?.id === myId)) {
      const index = pending.findIndex((sent) => sent.text === frame.text);
      if (index >= 0) {
        wire.roundTrip(performance.now() - pending[index].at, 'your last chat message, until the server echoed it back');
        pending.splice(0, index + 1);
      }
    }
  });
}

// ------------------------------------------------------------ Server-Sent Events

/**
 * Watches an EventSource (sse-stocks). EventSource hands out events, not
 * lines, so each entry is rebuilt from the event's lastEventId, type and
 * data in the server's layout (`id:`, `event:`, `data:`, a blank line);
 * its size is that text's. `types`: the event names the page listens to.
 */
function watchEventSource(wire, source, types) {
  let lastId = ''; // the id the browser will send as Last-Event-ID if it reconnects
  let opened = 0;

  wire.transport('HTTP stream');
  const url = new URL(source.url);
  const resumeFrom = url.searchParams.get('lastEventId');
  wire.note(`↑ GET ${url.pathname}${url.search} (Accept: text/event-stream${resumeFrom ? `; resuming after ${resumeFrom}` : ''})`);
  source.addEventListener('open', () => {
    opened += 1;
    if (opened === 1) {
      wire.note('↓ 200 text/event-stream: the stream is open (the retry: line that starts it is not shown to scripts)');
    } else {
      wire.note(lastId
        ? `browser reconnected by itself, sending Last-Event-ID: ${lastId} (the last id it received): the server replays what was missed`
        : 'browser reconnected by itself, sending the Last-Event-ID of the last event it received');
    }
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CONNECTING) wire.note('stream cut: the browser will reconnect after the retry: delay');
    else wire.note('stream closed: the browser gave up (an error status)');
  });

  const show = (event) => {
    if (!wire.on) return;
    // An event without an id: line keeps the previous id, so an unchanged
    // id cannot be told from a missing one: only a new id is shown.
    const idLine = event.lastEventId && event.lastEventId !== lastId ? `id: ${event.lastEventId}\n` : '';
    lastId = event.lastEventId || lastId;
    const eventLine = event.type === 'message' ? '' : `event: ${event.type}\n`;
    const dataLines = String(event.data).split('\n').map((line) => `data: ${line}\n`).join('');
    const raw = `${idLine}${eventLine}${dataLines}\n`;
    const bytes = utf8Length(raw);
    const payload = utf8Length(String(event.data));
    wire.frame({
      dir: 'down',
      kind: `event · ${event.type}`,
      raw,
      bytes,
      size: `${payload} B data + ${bytes - payload} B of field names, id and line ends (rebuilt from the EventSource event)`,
    });
  };
  for (const type of types) source.addEventListener(type, show);
}

// ------------------------------------------------------------ Socket.IO

const ENGINE_TYPES = { open: '0', close: '1', ping: '2', pong: '3', message: '4', upgrade: '5', noop: '6' };
const SOCKET_TYPES = ['connect', 'disconnect', 'event', 'ack', 'connect error', 'binary event', 'binary ack'];

/** "event "join" · ack id 0" for the Socket.IO packet inside an Engine.IO message. */
function describeSocketPacket(data) {
  const match = /^(\d)(\/[^,]*,)?(\d*)(.*)$/s.exec(data);
  if (!match) return 'message';
  const [, type, namespace, ackId, rest] = match;
  let kind = SOCKET_TYPES[Number(type)] ?? `type ${type}`;
  if (type === '2') {
    try {
      const name = JSON.parse(rest)[0];
      if (typeof name === 'string') kind += ` "${name}"`;
    } catch { /* not JSON: the name stays unknown */ }
  }
  if (ackId) kind += type === '3' ? ` id ${ackId}` : ` · wants ack ${ackId}`;
  if (namespace) kind += ` · ${namespace.slice(0, -1)}`;
  return kind;
}

/**
 * Watches a socket.io-client socket (rooms-chat) through its engine's own
 * hooks: "packetCreate" (every packet it sends, listed at the "flush" that
 * sends it) and "packet" (every packet it receives). Wire text is the Engine.IO encoding: the type digit, then
 * the data (a Socket.IO packet for "4"). Over WebSocket a packet is one
 * frame, sized exactly; over polling packets share HTTP bodies (joined by
 * the 0x1E separator) and the HTTP headers are not visible: the size is the
 * packet's own. Round trip: an event sent with an ack id until its ack.
 */
function watchSocketIo(wire, socket) {
  const manager = socket.io;
  const acksSent = new Map(); // ack id -> {at, name}
  const watched = new WeakSet();

  const show = (dir, engine, packet) => {
    if (!wire.on) return;
    const transport = engine.transport?.name ?? '?';
    const data = typeof packet.data === 'string' ? packet.data : '';
    const raw = `${ENGINE_TYPES[packet.type] ?? '?'}${data}`;
    const payload = utf8Length(raw);
    let kind = `${raw.slice(0, 1)} ${packet.type}`;
    if (packet.type === 'message') {
      kind = `${raw.slice(0, 2)} ${describeSocketPacket(data)}`;
      const ack = /^(\d)(?:\/[^,]*,)?(\d+)/.exec(data);
      if (ack && ack[1] === '2' && dir === 'up') acksSent.set(ack[2], performance.now());
      if (ack && ack[1] === '3' && dir === 'down' && acksSent.has(ack[2])) {
        wire.roundTrip(performance.now() - acksSent.get(ack[2]), `the last acknowledged event (ack id ${ack[2]}), sent until its ack came back`);
        acksSent.delete(ack[2]);
      }
    }
    if (packet.type === 'ping' && dir === 'down') kind += ' (the server checks we are alive; the client answers pong)';
    const websocket = transport === 'websocket';
    const header = websocket ? webSocketHeaderLength(payload, dir === 'up') : 0;
    wire.frame({
      dir,
      kind,
      raw,
      bytes: payload + header,
      transport,
      size: websocket
        ? `${payload} B packet + ${header} B WebSocket frame header`
        : `${payload} B packet inside an HTTP ${dir === 'up' ? 'POST' : 'GET'} body (HTTP headers not visible to the page, not counted)`,
    });
  };

  function watchEngine(engine) {
    if (!engine || watched.has(engine)) return;
    watched.add(engine);
    wire.transport(engine.transport?.name ?? 'polling');
    wire.note(`new Engine.IO connection: ↑ GET /socket.io/?EIO=4&transport=${engine.transport?.name ?? 'polling'} (HTTP headers not visible to the page)`);
    // A packet made while a poll is in flight or the transport upgrades
    // waits in the engine's write buffer: it is listed when the engine
    // flushes that buffer, on the transport that then carries it.
    let unsent = [];
    engine.on('packetCreate', (packet) => {
      if (wire.on && unsent.length < MAX_ENTRIES) unsent.push(packet);
    });
    engine.on('flush', () => {
      if (unsent.length === 0) return;
      const leaving = new Set(engine.writeBuffer);
      for (const packet of unsent) if (leaving.has(packet)) show('up', engine, packet);
      unsent = unsent.filter((packet) => !leaving.has(packet));
    });
    engine.on('packet', (packet) => show('down', engine, packet));
    engine.on('upgrading', () => wire.note('probing a WebSocket beside the polling (2probe ↑, 3probe ↓, then 5 upgrade ↑: these probe packets bypass the engine\'s hooks and are not listed)'));
    engine.on('upgrade', (transport) => {
      wire.transport(transport.name);
      wire.note(`transport upgraded to ${transport.name}: from now on one packet = one WebSocket frame`);
    });
    engine.on('close', (reason) => {
      wire.transport('—');
      wire.note(`Engine.IO connection closed: ${reason}`);
    });
  }

  watchEngine(manager.engine);
  // The manager makes a new engine for every (re)connection; its first
  // packet can only arrive after this task, so a microtask is in time.
  manager.on('reconnect_attempt', () => queueMicrotask(() => watchEngine(manager.engine)));
  manager.on('open', () => watchEngine(manager.engine));
}

export const WireInspector = { create, watchWebSocket, watchEventSource, watchSocketIo, utf8Length, webSocketHeaderLength };
