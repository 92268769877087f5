// rooms-chat page: the Socket.IO client of contract section 3.
//
// One socket for the page; the user may sit in several rooms at once. After
// a network drop the server recovers the socket (socket.io's connection
// state recovery): it is back in its rooms and gets what it missed, with no
// re-join. When it is not recovered (a server restart, too long away), the
// page re-joins every room with `since` and its `clientId`, as each room
// keeps the id of the last message seen, and gets back exactly what it
// missed, under its own name. Messages are shown in id order and deduplicated
// by id. User-supplied text only ever reaches the DOM through textContent.
import { $, setStatus as showStatus, session as storage, clientId as tabClientId, hueOf, autoGrow as growToFit } from './shared/page.js';
import { WireInspector } from './shared/inspector.js';
import { TokenAuth } from './shared/token.js';

const ACK_TIMEOUT_MS = 8000;
const REJOIN_RETRY_MS = 2000;
const TYPING_REPEAT_MS = 2000; // while typing, tell the room again this often
const TYPING_IDLE_MS = 3000; // stop "typing" after this much quiet
const TYPING_SHOW_MS = 5000; // hide someone's indicator if not refreshed
const MESSAGES_KEPT = 500; // per room, in the DOM
const STORAGE = { clientId: 'rooms-chat.clientId', name: 'rooms-chat.name', rooms: 'rooms-chat.rooms', current: 'rooms-chat.current' };

const el = {
  me: $('me'),
  login: $('login'), loginForm: $('login-form'), nameInput: $('name-input'),
  firstRoomInput: $('first-room-input'), loginError: $('login-error'), loginButton: $('login-button'),
  app: $('app'), sidebar: $('sidebar'), toggleRooms: $('toggle-rooms'),
  joinForm: $('join-form'), roomInput: $('room-input'), joinError: $('join-error'),
  roomList: $('room-list'), roomListEmpty: $('room-list-empty'),
  roomTitle: $('room-title'), roomSubtitle: $('room-subtitle'), leaveButton: $('leave-button'),
  toggleMembers: $('toggle-members'), messages: $('messages'), typing: $('typing'),
  composer: $('composer'), messageInput: $('message-input'), sendButton: $('send-button'),
  composerError: $('composer-error'), membersPanel: $('members-panel'), members: $('members'),
  memberCount: $('member-count'),
  nameLabel: $('name-label'), tokenField: $('token-field'), tokenInput: $('token-input'),
};

// ------------------------------------------------------------ session
/** Kept for the browser tab's session: lets a reconnect take our name back. */
const clientId = () => tabClientId(STORAGE.clientId);

// ------------------------------------------------------------ state
/** A room this page has joined. */
class Room {
  constructor(name) {
    this.name = name;
    this.lastId = 0; // highest message id seen: the `since` of the next re-join
    this.seenIds = new Set();
    this.members = new Map(); // lower-case name -> name as written
    this.typing = new Map(); // name -> timer hiding the indicator
    this.unread = 0;
    this.onServer = false; // joined on the current connection
    this.timeline = document.createElement('ol');
    this.timeline.className = 'timeline';
    this.timeline.dataset.room = name;
    this.timeline.hidden = true;
  }
}

const state = {
  name: storage.get(STORAGE.name),
  rooms: new Map(), // name -> Room, in join order
  current: null,
  counts: new Map(), // from `rooms` pushes: room name -> members on every instance
  joining: new Map(), // room name -> messages that arrived before the join ack
  tokens: false, // the server asks for a signed token (its /healthz says so)
  refusal: null, // why the server refused the last connect, as shown
};

const wire = WireInspector.create({
  mount: document.querySelector('.topbar-right'),
  title: 'Wire · Socket.IO',
  rttLabel: 'ack RTT',
  notes: [
    'socket.io-client hands a page events, not packets: the entries come from its engine\'s own hooks, "packetCreate" for every packet it sends (listed when the engine\'s "flush" sends it, on the transport that carries it) and "packet" for every one it receives, written back in the Engine.IO encoding: a type digit (0 open, 2 ping, 3 pong, 4 message), then for 4 the Socket.IO packet (0 connect, 2 event, 3 ack), its ack id if any, and the JSON.',
    'Over WebSocket each packet is one frame and the size is exact (packet plus frame header, 4 bytes of mask upward). Over HTTP long-polling, packets travel in GET and POST bodies, joined by a 0x1E byte when several share one, and the HTTP headers around them are not visible to a page: the size shown is the packet\'s own.',
    'Not listed: the upgrade probe (2probe, 3probe, 5), which the client sends on the new transport outside its hooks, and the HTTP headers. Round trip: from an event sent with an ack id until its ack (43…) comes back. Pings (2) come from the server, which times them; the client only answers with a pong (3), so a page cannot time a ping.',
  ],
});
// The token, when there is one, rides in the connect packet's `auth`,
// read again at every (re)connect.
const socket = io({
  autoConnect: true,
  auth: (send) => send(TokenAuth.token ? { token: TokenAuth.token } : undefined),
});
WireInspector.watchSocketIo(wire, socket);

// ------------------------------------------------------------ helpers
async function request(event, payload) {
  try {
    return await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
  } catch {
    return { ok: false, error: { code: 'timeout', message: 'the server did not answer in time' } };
  }
}

function describeError(error) {
  switch (error?.code) {
    case 'name_taken': return 'That nickname is already used in this room.';
    case 'rate_limited': return 'Slow down a little: too many messages.';
    case 'too_large': return 'That is too long.';
    case 'unavailable': return 'The server cannot take it right now; try again in a moment.';
    case 'not_in_room': return 'You are not in this room (reconnecting?).';
    case 'timeout': return state.refusal ?? 'No answer from the server.';
    case 'forbidden': return 'Your token does not allow this room.';
    case 'unauthorized': return TokenAuth.describe(error.message);
    default: return error?.message ?? 'Something went wrong.';
  }
}

function showError(node, text) {
  node.textContent = text ?? '';
  node.hidden = !text;
}

function saveSession() {
  storage.set(STORAGE.rooms, JSON.stringify([...state.rooms.keys()]));
  if (state.current) storage.set(STORAGE.current, state.current);
}

function colorFor(name) {
  return `hsl(${hueOf(name)} 55% 45%)`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** First character (not UTF-16 unit) of a name, for its avatar. */
function initial(name) {
  return (Array.from(name)[0] ?? '?').toUpperCase();
}

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

// ------------------------------------------------------------ status
function setStatus(kind, text) {
  showStatus(kind, text);
  updateComposer();
}

function connectedStatus() {
  // The transport may upgrade after a refused connect: that is no connection.
  if (!socket.connected) return;
  const transport = socket.io.engine?.transport?.name ?? '';
  setStatus('connected', transport === 'websocket' ? 'connected' : `connected (${transport})`);
}

// ------------------------------------------------------------ timeline
function nearBottom() {
  const box = el.messages;
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

function scrollToBottom() {
  el.messages.scrollTop = el.messages.scrollHeight;
}

function messageElement(room, message) {
  const item = node('li', 'message');
  item.dataset.id = String(message.id);
  item.dataset.from = message.from;
  if (state.name && message.from.toLowerCase() === state.name.toLowerCase()) item.classList.add('mine');

  const avatar = node('span', 'avatar', initial(message.from));
  avatar.style.background = colorFor(message.from);
  avatar.setAttribute('aria-hidden', 'true');

  const body = node('div', 'bubble');
  const meta = node('div', 'meta');
  meta.append(node('span', 'author', message.from));
  const time = node('time', 'time', timeFormat.format(message.ts));
  time.dateTime = new Date(message.ts).toISOString();
  time.title = `${fullFormat.format(message.ts)} · #${message.id}`;
  meta.append(time);
  body.append(meta, node('div', 'message-text', message.text));
  item.append(avatar, body);
  return item;
}

/** A run of messages by one author within a few minutes reads as one block. */
function markContinuation(item) {
  if (!item || !item.classList.contains('message')) return;
  const previous = item.previousElementSibling;
  const continued = previous?.classList.contains('message')
    && previous.dataset.from === item.dataset.from
    && Math.abs(Date.parse(item.querySelector('time').dateTime) - Date.parse(previous.querySelector('time').dateTime)) < 5 * 60_000;
  item.classList.toggle('continued', Boolean(continued));
}

/** Adds a message once, at its place in id order. Returns false for a duplicate. */
function addMessage(room, message) {
  if (room.seenIds.has(message.id)) return false;
  room.seenIds.add(message.id);
  room.lastId = Math.max(room.lastId, message.id);

  const stick = room.name === state.current && nearBottom();
  const item = messageElement(room, message);
  // Messages almost always arrive in order, so search from the end for a
  // later message to go before; notices stay where they were added.
  let before = null;
  for (let cursor = room.timeline.lastElementChild; cursor; cursor = cursor.previousElementSibling) {
    if (!cursor.classList.contains('message')) continue;
    if (Number(cursor.dataset.id) < message.id) break;
    before = cursor;
  }
  room.timeline.insertBefore(item, before);
  markContinuation(item);
  markContinuation(item.nextElementSibling);
  trimTimeline(room);

  clearTyping(room, message.from);
  if (room.name === state.current) {
    if (stick) scrollToBottom();
  } else {
    room.unread += 1;
    renderRoomList();
  }
  return true;
}

function addNotice(room, text, kind = 'info') {
  const stick = room.name === state.current && nearBottom();
  const item = node('li', `notice notice-${kind}`, text);
  room.timeline.append(item);
  trimTimeline(room);
  if (stick) scrollToBottom();
}

function trimTimeline(room) {
  let messages = room.timeline.querySelectorAll('li.message').length;
  while (messages > MESSAGES_KEPT && room.timeline.firstElementChild) {
    const first = room.timeline.firstElementChild;
    if (first.classList.contains('message')) messages -= 1;
    first.remove();
  }
}

// ------------------------------------------------------------ members & typing
function renderMembers() {
  el.members.replaceChildren();
  const room = state.rooms.get(state.current);
  if (!room) {
    el.memberCount.textContent = '0';
    return;
  }
  const names = [...room.members.values()].sort((a, b) => a.localeCompare(b, undefined, { sensitivity: 'base' }));
  for (const name of names) {
    const item = node('li', 'member');
    const dot = node('span', 'avatar small', initial(name));
    dot.style.background = colorFor(name);
    dot.setAttribute('aria-hidden', 'true');
    item.append(dot, node('span', 'member-name', name));
    if (name.toLowerCase() === state.name?.toLowerCase()) {
      item.classList.add('me');
      item.append(node('span', 'you-tag', 'you'));
    }
    el.members.append(item);
  }
  el.memberCount.textContent = String(names.length);
  el.roomSubtitle.textContent = `${names.length} ${names.length === 1 ? 'member' : 'members'}`;
}

function renderTyping() {
  const room = state.rooms.get(state.current);
  const names = room ? [...room.typing.keys()] : [];
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = `${names.length} people are typing…`;
  el.typing.textContent = text;
  el.typing.classList.toggle('active', names.length > 0);
}

function clearTyping(room, name) {
  const timer = room.typing.get(name);
  if (timer === undefined) return;
  clearTimeout(timer);
  room.typing.delete(name);
  if (room.name === state.current) renderTyping();
}

function setTyping(room, name, typing) {
  clearTyping(room, name);
  if (typing) {
    room.typing.set(name, setTimeout(() => clearTyping(room, name), TYPING_SHOW_MS));
    if (room.name === state.current) renderTyping();
  }
}

// ------------------------------------------------------------ room list
function renderRoomList() {
  const names = new Set([...state.counts.keys(), ...state.rooms.keys()]);
  const sorted = [...names].sort((a, b) => a.localeCompare(b, undefined, { sensitivity: 'base' }));
  el.roomList.replaceChildren();
  for (const name of sorted) {
    const room = state.rooms.get(name);
    const item = node('li', 'room-item');
    item.dataset.room = name;
    const button = node('button', 'room-button');
    button.type = 'button';
    if (name === state.current) {
      button.classList.add('current');
      button.setAttribute('aria-current', 'true');
    }
    if (room) button.classList.add('joined');
    button.append(node('span', 'room-hash', '#'), node('span', 'room-name', name));
    if (room && room.unread > 0) button.append(node('span', 'badge unread', String(room.unread)));
    const count = state.counts.get(name) ?? (room ? room.members.size : 0);
    const countBadge = node('span', 'room-count', String(count));
    countBadge.title = `${count} ${count === 1 ? 'member' : 'members'}`;
    button.append(countBadge);
    button.addEventListener('click', () => {
      if (state.rooms.has(name)) selectRoom(name); else joinRoom(name);
      closeDrawers();
    });
    item.append(button);
    el.roomList.append(item);
  }
  el.roomListEmpty.hidden = sorted.length > 0;
}

// ------------------------------------------------------------ current room
function selectRoom(name) {
  const room = state.rooms.get(name);
  if (!room) return;
  state.current = name;
  room.unread = 0;
  for (const other of state.rooms.values()) other.timeline.hidden = other !== room;
  el.roomTitle.textContent = `#${name}`;
  el.leaveButton.hidden = false;
  renderMembers();
  renderTyping();
  renderRoomList();
  updateComposer();
  scrollToBottom();
  saveSession();
  if (window.matchMedia('(min-width: 721px)').matches) el.messageInput.focus();
}

function showNoRoom() {
  state.current = null;
  el.roomTitle.textContent = 'No room';
  el.roomSubtitle.textContent = 'Join or create a room on the left.';
  el.leaveButton.hidden = true;
  renderMembers();
  renderTyping();
  renderRoomList();
  updateComposer();
}

function updateComposer() {
  const room = state.rooms.get(state.current);
  const usable = Boolean(room && room.onServer && socket.connected);
  el.messageInput.disabled = !usable;
  el.sendButton.disabled = !usable || el.messageInput.value.trim() === '';
  el.messageInput.placeholder = room
    ? (usable ? `Message #${room.name}` : 'Reconnecting…')
    : 'Join a room to chat';
}

// ------------------------------------------------------------ join / leave
/**
 * Joins `name` (or re-joins it after a reconnect, with `since`). Returns the
 * error of a refused join, or null.
 */
async function joinRoom(name, { rejoin = false } = {}) {
  const existing = state.rooms.get(name);
  const payload = { room: name, name: state.name, clientId: clientId() };
  if (existing && existing.lastId > 0) payload.since = existing.lastId;
  // A live message may overtake the ack of our first join: keep it until
  // the room exists here (duplicates of the history are dropped by id).
  if (!existing) state.joining.set(name, []);
  const ack = await request('join', payload);
  const early = state.joining.get(name) ?? [];
  state.joining.delete(name);
  if (!ack || !ack.ok) {
    const error = ack?.error ?? { code: 'bad_request', message: 'bad answer' };
    if (rejoin && existing && ['unavailable', 'timeout'].includes(error.code)) {
      setTimeout(() => { if (socket.connected && state.rooms.has(name) && !existing.onServer) joinRoom(name, { rejoin: true }); }, REJOIN_RETRY_MS);
    } else if (rejoin && existing) {
      addNotice(existing, `Could not re-join: ${describeError(error)}`, 'error');
    }
    return error;
  }

  const roomName = ack.room ?? name;
  let room = state.rooms.get(roomName);
  const isNew = !room;
  if (isNew) {
    room = new Room(roomName);
    state.rooms.set(roomName, room);
    el.messages.append(room.timeline);
  }
  room.onServer = true;
  room.members = new Map((ack.members ?? []).map((member) => [member.toLowerCase(), member]));
  const missed = (ack.history ?? []).filter((message) => addMessage(room, message)).length;
  for (const message of early) addMessage(room, message);
  if (rejoin && missed > 0) addNotice(room, `Caught up on ${missed} missed ${missed === 1 ? 'message' : 'messages'}.`);
  if (isNew) addNotice(room, `You joined #${roomName}.`);

  if (isNew || !state.current) selectRoom(roomName);
  else if (roomName === state.current) { renderMembers(); updateComposer(); }
  renderRoomList();
  saveSession();
  return null;
}

async function leaveRoom(name) {
  const room = state.rooms.get(name);
  if (!room) return;
  // Forget the room locally whatever the answer: if the socket is gone the
  // server has already dropped us.
  request('leave', { room: name });
  for (const timer of room.typing.values()) clearTimeout(timer);
  room.timeline.remove();
  state.rooms.delete(name);
  saveSession();
  const next = state.rooms.keys().next();
  if (next.done) showNoRoom(); else selectRoom(next.value);
}

async function rejoinAll() {
  for (const name of [...state.rooms.keys()]) {
    joinRoom(name, { rejoin: true });
  }
}

// ------------------------------------------------------------ sending
let lastTypingSent = 0;
let typingIdleTimer = null;

function stopTyping() {
  clearTimeout(typingIdleTimer);
  typingIdleTimer = null;
  if (lastTypingSent && state.current && socket.connected) {
    socket.emit('typing', { room: state.current, typing: false });
  }
  lastTypingSent = 0;
}

function noteTyping() {
  const room = state.rooms.get(state.current);
  if (!room || !room.onServer || !socket.connected) return;
  const now = Date.now();
  if (now - lastTypingSent > TYPING_REPEAT_MS) {
    socket.emit('typing', { room: room.name, typing: true });
    lastTypingSent = now;
  }
  clearTimeout(typingIdleTimer);
  typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

async function sendMessage() {
  const room = state.rooms.get(state.current);
  const text = el.messageInput.value.trim();
  if (!room || !text) return;
  stopTyping();
  el.sendButton.disabled = true;
  const ack = await request('message', { room: room.name, text });
  if (ack?.ok) {
    // Our own copy arrives as a `message` event like everyone's; only clear
    // the box if the user has not started another message meanwhile.
    if (el.messageInput.value.trim() === text) el.messageInput.value = '';
    showError(el.composerError, null);
    autoGrow();
  } else {
    showError(el.composerError, describeError(ack?.error));
  }
  updateComposer();
}

function autoGrow() {
  growToFit(el.messageInput);
}

// ------------------------------------------------------------ drawers (phone width)
function closeDrawers() {
  el.sidebar.classList.remove('open');
  el.membersPanel.classList.remove('open');
  el.toggleRooms.setAttribute('aria-expanded', 'false');
  el.toggleMembers.setAttribute('aria-expanded', 'false');
}

function toggleDrawer(panel, button) {
  const open = !panel.classList.contains('open');
  closeDrawers();
  panel.classList.toggle('open', open);
  button.setAttribute('aria-expanded', String(open));
}

// ------------------------------------------------------------ login
function enterApp() {
  el.login.hidden = true;
  el.app.hidden = false;
  el.toggleRooms.hidden = false;
  el.me.hidden = false;
  el.me.textContent = state.name;
  el.me.title = 'Your nickname';
}

/** With tokens: the token field instead of the nickname (the token names us). */
function showTokenMode() {
  state.tokens = true;
  el.tokenField.hidden = false;
  el.nameLabel.hidden = true;
  el.nameInput.hidden = true;
  el.nameInput.required = false;
  el.tokenInput.value = TokenAuth.token ?? '';
}

/** Back to the login card with why the server refused us. */
function showRefusal(text) {
  showTokenMode();
  el.app.hidden = true;
  el.login.hidden = false;
  el.loginButton.disabled = false;
  showError(el.loginError, text);
}

el.loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (state.tokens) {
    const token = el.tokenInput.value.trim();
    if (!token) { showError(el.loginError, 'Paste a token first.'); return; }
    TokenAuth.token = token;
    state.refusal = null;
    el.nameInput.value = TokenAuth.name(token) ?? 'me';
    if (!socket.connected) socket.connect();
  }
  const name = el.nameInput.value.trim();
  const room = el.firstRoomInput.value.trim();
  if (!name || !room) return;
  el.loginButton.disabled = true;
  showError(el.loginError, null);
  state.name = name;
  const error = await joinRoom(room);
  el.loginButton.disabled = false;
  if (error) {
    state.name = storage.get(STORAGE.name);
    showError(el.loginError, describeError(error));
    return;
  }
  storage.set(STORAGE.name, name);
  enterApp();
});

el.joinForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = el.roomInput.value.trim();
  if (!name) return;
  if (state.rooms.has(name)) {
    selectRoom(name);
  } else {
    const error = await joinRoom(name);
    showError(el.joinError, error ? describeError(error) : null);
    if (error) return;
  }
  el.roomInput.value = '';
  closeDrawers();
});

el.leaveButton.addEventListener('click', () => { if (state.current) leaveRoom(state.current); });
el.composer.addEventListener('submit', (event) => { event.preventDefault(); sendMessage(); });
el.messageInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendMessage();
  }
});
el.messageInput.addEventListener('input', () => {
  autoGrow();
  updateComposer();
  if (el.messageInput.value.trim()) noteTyping(); else stopTyping();
});
el.toggleRooms.addEventListener('click', () => toggleDrawer(el.sidebar, el.toggleRooms));
// On a phone, touching the conversation closes an open drawer.
document.querySelector('.chat').addEventListener('click', (event) => {
  if (!event.target.closest('#toggle-members')) closeDrawers();
});
el.toggleMembers.addEventListener('click', () => toggleDrawer(el.membersPanel, el.toggleMembers));

// ------------------------------------------------------------ socket events
socket.on('connect', async () => {
  state.refusal = null;
  connectedStatus();
  if (socket.recovered) {
    // Back in every room, with what was missed arriving as live events.
    for (const room of state.rooms.values()) room.onServer = true;
  }
  const ack = await request('rooms');
  if (ack?.ok) applyRoomCounts(ack.rooms);
  if (!socket.recovered) rejoinAll();
});
// Leaving the page is leaving the rooms: the others are told at once
// (a connection that merely drops is held for a while for its recovery).
addEventListener('pagehide', () => socket.disconnect());
addEventListener('pageshow', (event) => { if (event.persisted) socket.connect(); });
socket.io.on('open', () => socket.io.engine.on('upgrade', connectedStatus));

socket.on('disconnect', (reason) => {
  for (const room of state.rooms.values()) {
    room.onServer = false;
    for (const name of [...room.typing.keys()]) clearTyping(room, name);
  }
  setStatus('reconnecting', 'reconnecting…');
  // A server-side disconnect (e.g. we fell too far behind) does not
  // reconnect by itself; we want to, and re-join with `since`.
  if (reason === 'io server disconnect') setTimeout(() => socket.connect(), 500);
});
socket.on('connect_error', (error) => {
  // A refused token (`unauthorized: …`) is not retried by the client:
  // the page asks for another one, saying why.
  if (String(error?.message).startsWith('unauthorized')) {
    state.refusal = TokenAuth.describe(error.message);
    setStatus('offline', 'token needed');
    showRefusal(state.refusal);
    return;
  }
  setStatus('offline', 'offline, retrying…');
});
// The token expired while connected: the server says so, then disconnects
// (the reconnect that follows is refused, and the page asks for a token).
socket.on('auth_expired', (event) => {
  const room = state.rooms.get(state.current);
  if (room) addNotice(room, TokenAuth.describe(event?.message), 'error');
});
socket.io.on('reconnect_attempt', (attempt) => setStatus('reconnecting', `reconnecting… (${attempt})`));

socket.on('message', (message) => {
  const room = state.rooms.get(message?.room);
  if (room) addMessage(room, message);
  else state.joining.get(message?.room)?.push(message);
});

socket.on('user_joined', (event) => {
  const room = state.rooms.get(event?.room);
  if (!room) return;
  room.members.set(event.name.toLowerCase(), event.name);
  addNotice(room, `${event.name} joined`, 'join');
  if (room.name === state.current) renderMembers();
});

socket.on('user_left', (event) => {
  const room = state.rooms.get(event?.room);
  if (!room) return;
  room.members.delete(event.name.toLowerCase());
  clearTyping(room, event.name);
  addNotice(room, event.reason === 'disconnected' ? `${event.name} disconnected` : `${event.name} left`, 'leave');
  if (room.name === state.current) renderMembers();
});

socket.on('typing', (event) => {
  const room = state.rooms.get(event?.room);
  if (room && event.name) setTyping(room, event.name, event.typing !== false);
});

function applyRoomCounts(rooms) {
  if (!Array.isArray(rooms)) return;
  state.counts = new Map(rooms.map((room) => [room.name, room.members]));
  renderRoomList();
}
socket.on('rooms', (event) => applyRoomCounts(event?.rooms));

// ------------------------------------------------------------ start
// A reload in the same tab comes back in the same rooms under the same name
// (the clientId makes the server hand the name back at once).
if (state.name) {
  let saved = [];
  try { saved = JSON.parse(storage.get(STORAGE.rooms) ?? '[]'); } catch { saved = []; }
  const current = storage.get(STORAGE.current);
  for (const name of saved) {
    if (typeof name !== 'string' || state.rooms.has(name)) continue;
    const room = new Room(name);
    state.rooms.set(name, room);
    el.messages.append(room.timeline);
  }
  enterApp();
  if (state.rooms.has(current)) selectRoom(current);
  else if (state.rooms.size > 0) selectRoom(state.rooms.keys().next().value);
  else showNoRoom();
} else {
  el.nameInput.value = '';
}
setStatus('connecting', 'connecting…');
if (socket.connected) connectedStatus();
TokenAuth.required().then((required) => { if (required) showTokenMode(); });
