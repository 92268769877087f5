// sse-stocks page: a live quote board over the browser's EventSource.
// EventSource reconnects by itself and sends Last-Event-ID, so the server
// replays whatever was missed; this page only renders what it receives.
// All text reaches the page through textContent.
import { $, setStatus } from './shared/page.js';
import { WireInspector } from './shared/inspector.js';

const WINDOW_MS = 5 * 60 * 1000;   // sparkline span
const MAX_POINTS = 3000;           // per symbol, whatever TICK_MS is
const RETRY_CLOSED_MS = 5000;      // after the browser gave up on a stream
const STORAGE_KEY = 'sse-stocks:symbols';

const state = {
  symbols: [],                 // [{symbol, name, price}] from /api/symbols
  selected: new Set(),
  quotes: new Map(),           // symbol -> latest quote
  history: new Map(),          // symbol -> [{t, price}]
  rows: new Map(),             // symbol -> {row, price, change, pct, canvas}
  source: null,
  lastEventId: '',
  dirty: new Set(),            // sparklines to redraw on the next frame
  frameRequested: false,
  retryTimer: null,
};

const wire = WireInspector.create({
  mount: document.querySelector('.connection'),
  title: 'Wire · SSE',
  notes: [
    'EventSource hands a page events, not bytes: each entry is rebuilt from the event it gives (its id, type and data) in the layout the server writes, id:, event: and data: lines ending with a blank line, and sized as that text. The HTTP response is not chunked, so these are the bytes of the body.',
    'Not visible to a page: the HTTP request and response headers, the retry: line that opens the stream, and the ": keep-alive" comment lines the server sends after 15 s of silence (EventSource drops comments before any script sees them). They are not listed rather than made up.',
    'On a reconnection the browser sends Last-Event-ID with the id of the last event it received; the server then replays every tick after it, with no snapshot. When this page itself opens a new stream (a symbol is picked), it passes that id as the lastEventId query parameter.',
  ],
});
const priceFormat = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const signed = (value) => (value > 0 ? '+' : value < 0 ? '−' : '') + priceFormat.format(Math.abs(value));

// ------------------------------------------------------------- symbols

function loadSelection(all) {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
    if (Array.isArray(saved)) {
      const known = saved.filter((symbol) => all.includes(symbol));
      return new Set(known);
    }
  } catch { /* a bad saved value: use the default */ }
  return new Set(all);
}

function saveSelection() {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify([...state.selected]));
  } catch { /* private mode: not remembered */ }
}

function renderPicker() {
  const box = $('symbols');
  box.replaceChildren();
  for (const { symbol, name } of state.symbols) {
    const label = document.createElement('label');
    label.className = 'chip';
    label.title = name;
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.value = symbol;
    input.checked = state.selected.has(symbol);
    input.addEventListener('change', () => {
      if (input.checked) state.selected.add(symbol); else state.selected.delete(symbol);
      selectionChanged();
    });
    const text = document.createElement('span');
    text.textContent = symbol;
    label.append(input, text);
    box.append(label);
  }
}

function setAll(checked) {
  state.selected = new Set(checked ? state.symbols.map((info) => info.symbol) : []);
  for (const input of $('symbols').querySelectorAll('input')) input.checked = checked;
  selectionChanged();
}

function selectionChanged() {
  saveSelection();
  renderRows();
  subscribe();
}

// ----------------------------------------------------------------- rows

function renderRows() {
  const body = $('rows');
  body.replaceChildren();
  state.rows.clear();
  for (const { symbol, name } of state.symbols) {
    if (!state.selected.has(symbol)) continue;
    const row = document.createElement('tr');
    row.dataset.symbol = symbol;
    const cell = (className, text = '') => {
      const td = document.createElement('td');
      td.className = className;
      td.textContent = text;
      row.append(td);
      return td;
    };
    cell('symbol', symbol);
    cell('name', name);
    const price = cell('num price', '—');
    const change = cell('num change', '');
    const pct = cell('num pct', '');
    const trend = cell('trend');
    const canvas = document.createElement('canvas');
    canvas.className = 'spark';
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `${symbol} price over the last five minutes`);
    trend.append(canvas);
    body.append(row);
    state.rows.set(symbol, { row, price, change, pct, canvas });
    const quote = state.quotes.get(symbol);
    if (quote) showQuote(quote, null);
    state.dirty.add(symbol);
  }
  $('empty').hidden = state.selected.size > 0;
  requestDraw();
}

function showQuote(quote, previous) {
  const cells = state.rows.get(quote.symbol);
  if (!cells) return;
  cells.price.textContent = priceFormat.format(quote.price);
  cells.change.textContent = signed(quote.change);
  cells.pct.textContent = `${signed(quote.changePct)}%`;
  const direction = quote.change > 0 ? 'up' : quote.change < 0 ? 'down' : '';
  for (const td of [cells.change, cells.pct]) {
    td.classList.toggle('up', direction === 'up');
    td.classList.toggle('down', direction === 'down');
  }
  if (previous && previous.price !== quote.price) flash(cells.price, quote.price > previous.price);
}

function flash(cell, up) {
  cell.dataset.flash = up ? 'up' : 'down';
  if (!cell.animate) return;
  const color = up ? 'rgb(46 204 113 / 0.35)' : 'rgb(255 92 92 / 0.35)';
  cell.animate([{ backgroundColor: color }, { backgroundColor: 'transparent' }], { duration: 700, easing: 'ease-out' });
}

// --------------------------------------------------------------- quotes

function record(quote) {
  let points = state.history.get(quote.symbol);
  if (!points) {
    points = [];
    state.history.set(quote.symbol, points);
  }
  const t = Number.isFinite(quote.ts) ? quote.ts : Date.now();
  // A replay after a reconnect may repeat a point already drawn.
  if (points.length && points[points.length - 1].t > t) return;
  points.push({ t, price: quote.price });
  const oldest = t - WINDOW_MS;
  let drop = 0;
  while (drop < points.length && points[drop].t < oldest) drop += 1;
  if (points.length - drop > MAX_POINTS) drop = points.length - MAX_POINTS;
  if (drop) points.splice(0, drop);
  state.dirty.add(quote.symbol);
}

function applyQuote(quote) {
  const previous = state.quotes.get(quote.symbol);
  state.quotes.set(quote.symbol, quote);
  record(quote);
  showQuote(quote, previous);
}

function applySnapshot(event) {
  remember(event);
  for (const quote of parse(event.data) ?? []) applyQuote(quote);
  requestDraw();
}

function applyTick(event) {
  remember(event);
  const quote = parse(event.data);
  if (!quote) return;
  applyQuote(quote);
  $('updated').textContent = `Updated ${new Date(quote.ts).toLocaleTimeString()}`;
  requestDraw();
}

function remember(event) {
  if (event.lastEventId) state.lastEventId = event.lastEventId;
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

// ----------------------------------------------------------- sparklines

function requestDraw() {
  if (state.frameRequested) return;
  state.frameRequested = true;
  requestAnimationFrame(() => {
    state.frameRequested = false;
    for (const symbol of state.dirty) draw(symbol);
    state.dirty.clear();
  });
}

function draw(symbol) {
  const cells = state.rows.get(symbol);
  if (!cells) return;
  const canvas = cells.canvas;
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const context = canvas.getContext('2d');
  context.clearRect(0, 0, width, height);
  const points = state.history.get(symbol) ?? [];
  if (points.length === 0) return;

  // The line spans the whole width: what the window holds so far.
  const newest = points[points.length - 1].t;
  const oldest = points[0].t;
  let low = Infinity;
  let high = -Infinity;
  for (const { price } of points) {
    low = Math.min(low, price);
    high = Math.max(high, price);
  }
  const spread = Math.max(high - low, high * 0.0005);
  const middle = (high + low) / 2;
  const pad = 3 * ratio;
  const x = (t) => pad + ((t - oldest) / Math.max(1, newest - oldest)) * (width - 2 * pad);
  const y = (price) => height / 2 - ((price - middle) / spread) * (height - 2 * pad);

  const rising = points[points.length - 1].price >= points[0].price;
  const color = rising ? '#2ecc71' : '#ff5c5c';
  context.beginPath();
  points.forEach((point, index) => {
    if (index === 0) context.moveTo(x(point.t), y(point.price));
    else context.lineTo(x(point.t), y(point.price));
  });
  context.strokeStyle = color;
  context.lineWidth = 1.5 * ratio;
  context.lineJoin = 'round';
  context.stroke();

  // Soft area under the line.
  context.lineTo(x(newest), height);
  context.lineTo(x(points[0].t), height);
  context.closePath();
  const fill = context.createLinearGradient(0, 0, 0, height);
  fill.addColorStop(0, rising ? 'rgb(46 204 113 / 0.25)' : 'rgb(255 92 92 / 0.25)');
  fill.addColorStop(1, 'rgb(0 0 0 / 0)');
  context.fillStyle = fill;
  context.fill();

  const last = points[points.length - 1];
  context.beginPath();
  context.arc(x(last.t), y(last.price), 2.2 * ratio, 0, Math.PI * 2);
  context.fillStyle = color;
  context.fill();
}

// --------------------------------------------------------------- stream

function streamUrl(withLastId) {
  const params = new URLSearchParams();
  if (state.selected.size < state.symbols.length) params.set('symbols', [...state.selected].join(','));
  if (withLastId && state.lastEventId) params.set('lastEventId', state.lastEventId);
  const query = params.toString();
  return query ? `/events?${query}` : '/events';
}

// Opens the stream for the selected symbols. A new selection starts from a
// snapshot; only a stream the browser gave up on resumes by query.
function subscribe({ resume = false } = {}) {
  clearTimeout(state.retryTimer);
  if (state.source) state.source.close();
  state.source = null;
  if (state.selected.size === 0) {
    setStatus('closed', 'Paused');
    return;
  }
  setStatus('connecting', 'Connecting…');
  const source = new EventSource(streamUrl(resume));
  state.source = source;
  WireInspector.watchEventSource(wire, source, ['snapshot', 'reset', 'tick', 'message']);
  source.addEventListener('open', () => setStatus('live', 'Live'));
  source.addEventListener('snapshot', applySnapshot);
  source.addEventListener('reset', applySnapshot);
  source.addEventListener('tick', applyTick);
  source.addEventListener('error', () => {
    if (state.source !== source) return;
    if (source.readyState === EventSource.CONNECTING) {
      setStatus('reconnecting', 'Reconnecting…');
    } else {
      // The browser stopped retrying (an error status): try again later,
      // still resuming from the last tick seen.
      setStatus('closed', 'Disconnected');
      state.retryTimer = setTimeout(() => subscribe({ resume: true }), RETRY_CLOSED_MS);
    }
  });
}

async function start() {
  $('select-all').addEventListener('click', () => setAll(true));
  $('select-none').addEventListener('click', () => setAll(false));
  window.addEventListener('resize', () => {
    for (const symbol of state.rows.keys()) state.dirty.add(symbol);
    requestDraw();
  });
  for (;;) {
    try {
      const response = await fetch('/api/symbols');
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      state.symbols = await response.json();
      break;
    } catch {
      setStatus('closed', 'Server unreachable, retrying…');
      await new Promise((resolve) => setTimeout(resolve, RETRY_CLOSED_MS));
    }
  }
  state.selected = loadSelection(state.symbols.map((info) => info.symbol));
  renderPicker();
  renderRows();
  subscribe();
}

start();
