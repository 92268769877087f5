// ws-chat's page: one WebSocket to /ws speaking the JSON frames of the
// contract (hello, welcome, message, joined, left, typing, error).
//
// Everything a user typed reaches the page through textContent, never
// innerHTML, so a message such as <img src=x onerror=alert(1)> stays text.
import { $, setStatus as showStatus, session, clientId, hueOf, autoGrow } from './shared/page.js';
import { WireInspector } from './shared/inspector.js';
import { TokenAuth } from './shared/token.js';

const STORAGE = { clientId: 'ws-chat.clientId', name: 'ws-chat.name' };
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 15000;
const TYPING_EVERY_MS = 2000; // how often we tell others we are typing
const TYPING_SHOWN_MS = 3500; // how long someone shows as typing
const CLOSE_REPLACED = 4000; // the server: another socket of ours took the name
const CLOSE_EXPIRED = 4401; // the server: our token expired

const wire = WireInspector.create({
  mount: document.querySelector('.topbar-right'),
  title: 'Wire · WebSocket',
  rttLabel: 'echo RTT',
  notes: [
    'Every frame on /ws is a JSON text frame. The sizes are exact: the payload in UTF-8 plus the frame header (2 bytes up to 125 bytes of payload, 4 up to 64 KiB), and 4 more for the mask on every frame the browser sends. The server negotiates no compression.',
    'Not visible to a page: the HTTP upgrade request and its 101 answer (their headers), and the ping and pong control frames the server uses to detect dead peers; the browser answers those pings by itself.',
    'Round trip: from sending a chat message until the server sends it back to us (it goes to every member, the sender included).',
  ],
});
const ui = {
  login: $('login'), loginForm: $('login-form'), nameInput: $('name-input'),
  loginError: $('login-error'), loginButton: $('login-button'),
  app: $('app'), me: $('me'),
  notice: $('notice'), messages: $('messages'), typing: $('typing'),
  composer: $('composer'), input: $('message-input'), send: $('send-button'),
  users: $('users'), userCount: $('user-count'), userCountButton: $('user-count-button'),
  toggleUsers: $('toggle-users'), sidebar: $('sidebar'),
  nameLabel: $('name-label'), nameHint: $('name-hint'), tokenField: $('token-field'), tokenInput: $('token-input'),
};

const state = {
  socket: null,
  clientId: clientId(STORAGE.clientId),
  wantedName: session.get(STORAGE.name), // the name we join (or rejoin) as
  me: null, // {id, name} once welcomed
  joined: false, // welcomed on the current socket
  users: new Map(), // id -> {id, name}
  lastMessageId: 0,
  attempt: 0, // reconnect attempts since the last welcome
  reconnectTimer: null,
  countdown: null, // refreshes the "retrying in N s" status
  stayClosed: false, // replaced by another tab: do not fight over the name
  typers: new Map(), // user id -> {name, timer}
  lastTypingSent: 0,
  tokens: false, // the server asks for a signed token (its /healthz says so)
};

// ------------------------------------------------------------ connection

function connect() {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdown);
  state.reconnectTimer = null;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  // Browsers cannot set headers on a WebSocket: the token rides in the query.
  const query = TokenAuth.token ? `?token=${encodeURIComponent(TokenAuth.token)}` : '';
  const socket = new WebSocket(`${scheme}://${location.host}/ws${query}`);
  let opened = false;
  state.socket = socket;
  WireInspector.watchWebSocket(wire, socket, '/ws');
  setStatus('connecting', state.attempt === 0 ? 'connecting…' : 'reconnecting…');

  socket.addEventListener('open', () => {
    opened = true;
    // A token names us: join under its name without asking for one.
    if (!state.wantedName && TokenAuth.token) state.wantedName = TokenAuth.name() ?? 'me';
    setStatus('connecting', 'joining…');
    if (state.wantedName) sendHello();
    else setStatus('online', 'connected');
  });
  socket.addEventListener('message', (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return; // the server only sends JSON; ignore anything else
    }
    handleFrame(frame);
  });
  socket.addEventListener('close', (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    state.joined = false;
    clearTypers();
    if (event.code === CLOSE_REPLACED) {
      state.stayClosed = true;
      setStatus('offline', 'opened elsewhere');
      showNotice('This chat was opened in another tab or window. ', 'Use it here', () => {
        state.stayClosed = false;
        hideNotice();
        connect();
      });
      return;
    }
    if (event.code === CLOSE_EXPIRED) {
      refused(TokenAuth.describe(event.reason));
      return;
    }
    if (!opened && state.tokens) {
      whyRefused();
      return;
    }
    scheduleReconnect();
  });
}

/** Stops reconnecting and asks for a token, saying why. */
function refused(reason) {
  state.stayClosed = true;
  setStatus('offline', 'token needed');
  tokenMode();
  showLogin(reason);
}

/**
 * A socket that never opened on a server asking for tokens: a page cannot
 * read the 401 of an upgrade, so it asks `/ws` again as a plain request,
 * which says why (or is not refused: then it was the network).
 */
async function whyRefused() {
  const query = TokenAuth.token ? `?token=${encodeURIComponent(TokenAuth.token)}` : '';
  try {
    const response = await fetch(`ws${query}`, { cache: 'no-store' });
    if (response.status === 401) {
      const body = await response.json().catch(() => ({}));
      refused(TokenAuth.describe(body.message));
      return;
    }
  } catch { /* offline: retry as usual */ }
  scheduleReconnect();
}

/** With tokens: the token field instead of the nickname (the token names us). */
function tokenMode() {
  state.tokens = true;
  ui.tokenField.hidden = false;
  ui.nameLabel.hidden = true;
  ui.nameHint.hidden = true;
  ui.nameInput.hidden = true;
  ui.nameInput.required = false;
  ui.tokenInput.value = TokenAuth.token ?? '';
}

function scheduleReconnect() {
  if (state.stayClosed) return;
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** state.attempt);
  const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2)); // jitter
  state.attempt += 1;
  const until = Date.now() + delay;
  const tick = () => {
    const seconds = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    setStatus('offline', `offline · retrying in ${seconds} s`);
  };
  tick();
  state.countdown = setInterval(tick, 500);
  state.reconnectTimer = setTimeout(connect, delay);
}

function send(frame) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

function sendHello() {
  return send({ type: 'hello', name: state.wantedName, clientId: state.clientId });
}

// ------------------------------------------------------------ frames

function handleFrame(frame) {
  switch (frame.type) {
    case 'welcome': return onWelcome(frame);
    case 'message': return onMessage(frame);
    case 'joined': return onJoined(frame.user);
    case 'left': return onLeft(frame.user);
    case 'typing': return onTyping(frame.user);
    case 'error': return onError(frame);
    default: return undefined; // newer servers may add frames
  }
}

function onWelcome({ you, users, history }) {
  const rejoined = state.me !== null;
  state.me = you;
  state.joined = true;
  state.attempt = 0;
  session.set(STORAGE.name, you.name);
  state.users = new Map(users.map((user) => [user.id, user]));
  renderUsers();
  ui.me.textContent = you.name;
  ui.me.hidden = false;
  ui.login.hidden = true;
  ui.app.hidden = false;
  ui.toggleUsers.hidden = false;
  setStatus('online', 'online');
  hideNotice();

  // History always ends with the newest message, so a newest id below the
  // last one we saw means the server restarted and counts from 1 again.
  const newest = history.length > 0 ? history[history.length - 1].id : 0;
  if (newest < state.lastMessageId) {
    state.lastMessageId = 0;
    addSystemLine('The server restarted: the conversation starts over.');
  }
  const missed = history.filter((message) => message.id > state.lastMessageId);
  if (rejoined && state.lastMessageId > 0 && missed.length > 0 && missed[0].id > state.lastMessageId + 1) {
    addSystemLine('You were offline for a while: some older messages may be missing.');
  }
  for (const message of missed) onMessage(message);
  if (rejoined) addSystemLine('Reconnected.');
  ui.input.focus();
}

function onMessage(message) {
  if (message.id <= state.lastMessageId) return; // already shown
  state.lastMessageId = message.id;
  stopTyping(message.from.id);
  const mine = state.me && message.from.id === state.me.id;

  const item = document.createElement('li');
  item.className = mine ? 'message mine' : 'message';
  item.dataset.id = String(message.id);
  const meta = document.createElement('div');
  meta.className = 'meta';
  const author = document.createElement('span');
  author.className = 'author';
  author.textContent = message.from.name;
  author.style.setProperty('--hue', hueOf(message.from.name));
  const time = document.createElement('time');
  const when = new Date(message.ts);
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  time.title = when.toLocaleString();
  meta.append(author, time);
  const text = document.createElement('p');
  text.className = 'text';
  text.textContent = message.text;
  item.append(meta, text);
  append(item);
}

function onJoined(user) {
  state.users.set(user.id, user);
  renderUsers();
  addSystemLine(`${user.name} joined`);
}

function onLeft(user) {
  state.users.delete(user.id);
  stopTyping(user.id);
  renderUsers();
  addSystemLine(`${user.name} left`);
}

function onTyping(user) {
  if (state.me && user.id === state.me.id) return;
  stopTyping(user.id);
  const timer = setTimeout(() => stopTyping(user.id), TYPING_SHOWN_MS);
  state.typers.set(user.id, { name: user.name, timer });
  renderTyping();
}

function onError({ code, message }) {
  if (!state.joined) {
    // Still at the door: the name was refused; the socket stays open to retry.
    state.wantedName = null;
    session.remove(STORAGE.name);
    const text = code === 'name_taken' ? 'That nickname is taken: try another one.' : message;
    showLogin(text);
    setStatus('online', 'connected');
    return;
  }
  const friendly = {
    rate_limited: 'Slow down: you are sending messages too fast.',
    too_large: 'That message is too long (2000 characters at most).',
  }[code] ?? message;
  showNotice(friendly);
  setTimeout(hideNotice, 4000);
}

// ------------------------------------------------------------ rendering

function append(item) {
  const list = ui.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  list.append(item);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function addSystemLine(text) {
  const item = document.createElement('li');
  item.className = 'system';
  item.textContent = text;
  append(item);
}

function renderUsers() {
  const sorted = [...state.users.values()].sort((a, b) => a.name.localeCompare(b.name));
  const items = sorted.map((user) => {
    const item = document.createElement('li');
    item.className = 'user';
    const avatar = document.createElement('span');
    avatar.className = 'avatar';
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = [...user.name][0]?.toUpperCase() ?? '?';
    avatar.style.setProperty('--hue', hueOf(user.name));
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = user.name;
    item.append(avatar, name);
    if (state.me && user.id === state.me.id) {
      item.classList.add('me');
      const you = document.createElement('span');
      you.className = 'you';
      you.textContent = 'you';
      item.append(you);
    }
    return item;
  });
  ui.users.replaceChildren(...items);
  ui.userCount.textContent = String(sorted.length);
  ui.userCountButton.textContent = String(sorted.length);
}

function stopTyping(userId) {
  const typer = state.typers.get(userId);
  if (!typer) return;
  clearTimeout(typer.timer);
  state.typers.delete(userId);
  renderTyping();
}

function clearTypers() {
  for (const id of [...state.typers.keys()]) stopTyping(id);
}

function renderTyping() {
  const names = [...state.typers.values()].map((typer) => typer.name);
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = 'Several people are typing…';
  ui.typing.textContent = text;
}

function setStatus(kind, text) {
  showStatus(kind, text);
  const online = kind === 'online' && state.joined;
  ui.send.disabled = !online;
}

function showNotice(text, actionLabel, action) {
  ui.notice.replaceChildren(document.createTextNode(text));
  if (actionLabel) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'link-button';
    button.textContent = actionLabel;
    button.addEventListener('click', action);
    ui.notice.append(button);
  }
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
}

function showLogin(error) {
  ui.app.hidden = true;
  ui.login.hidden = false;
  ui.loginButton.disabled = false;
  ui.loginError.textContent = error ?? '';
  ui.loginError.hidden = !error;
  if (state.tokens) {
    ui.tokenInput.focus();
  } else {
    ui.nameInput.focus();
    ui.nameInput.select();
  }
}

// ------------------------------------------------------------ user input

ui.loginForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (state.tokens) {
    const token = ui.tokenInput.value.trim();
    if (!token) { showLogin('Paste a token first.'); return; }
    TokenAuth.token = token;
    ui.nameInput.value = TokenAuth.name(token) ?? 'me';
    state.wantedName = ui.nameInput.value;
    state.stayClosed = false;
    state.attempt = 0;
    ui.loginError.hidden = true;
    // A new token needs a new socket: it travels with the upgrade.
    const old = state.socket;
    state.socket = null;
    old?.close();
    connect();
    return;
  }
  const name = ui.nameInput.value.trim();
  if (!name) return;
  state.wantedName = name;
  ui.loginError.hidden = true;
  ui.loginButton.disabled = true;
  if (!sendHello() && !state.socket) connect();
  setTimeout(() => { ui.loginButton.disabled = false; }, 1000);
});

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.input.value.trim();
  if (!text) return;
  if (send({ type: 'message', text })) {
    ui.input.value = '';
    autoGrow(ui.input);
    state.lastTypingSent = 0;
  }
});

ui.input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.input.addEventListener('input', () => {
  autoGrow(ui.input);
  const now = Date.now();
  if (ui.input.value.trim() && now - state.lastTypingSent > TYPING_EVERY_MS) {
    if (send({ type: 'typing' })) state.lastTypingSent = now;
  }
});

ui.toggleUsers.addEventListener('click', () => {
  const open = ui.sidebar.classList.toggle('open');
  ui.toggleUsers.setAttribute('aria-expanded', String(open));
});

// Reconnect at once when the network comes back instead of waiting out the backoff.
window.addEventListener('online', () => {
  if (!state.socket && !state.stayClosed) {
    state.attempt = 0;
    connect();
  }
});

if (state.wantedName) {
  ui.nameInput.value = state.wantedName;
  ui.login.hidden = true;
} else {
  showLogin();
}
connect();
TokenAuth.required().then((required) => { if (required) tokenMode(); });
