// Live updates: one WebSocket to /api/v1/ws for the signed-in employee. For the conversations
// the employee may see, the server sends {"type":"conversation.updated","conversation":{...}},
// {"type":"message.created","conversation":{...},"message":{...}} and, when a delivery state
// changes, "message.updated" of the same shape, and {"type":"typing","conversation":{...},
// "typist":{"kind":"customer"|"employee",...}}, and to the employee alone
// {"type":"notification.created","notification":{...}} (an @mention; notifications.js) and routing's
// {"type":"routing.offer"|"routing.offer_ended"|"routing.presence",...} (presence.js); we send {"type":"ping"} and expect
// {"type":"pong"}, and {"type":"typing"|"read",...} from the conversation view (see send()). A dropped socket is reopened with backoff, and views refetch what they show
// after every (re)connect, since events may have been missed meanwhile. While there is no
// socket, views refresh themselves every FALLBACK_MS instead.

import { api } from './api.js';

const PING_MS = 25000;
const PONG_TIMEOUT_MS = 10000;
const MAX_BACKOFF_MS = 30000;
export const FALLBACK_MS = 10000;

let running = false;
let socket = null;
let open = false;
let failures = 0;
let retryTimer = null;
let pingTimer = null;
let pongTimer = null;
/** { root, onEvent(data), refresh(), onStatus(live) } of the mounted views. */
const watchers = new Set();
/** Listeners for the whole session, whatever view is shown. */
const subscribers = new Set();

/** Calls `fn(data)` for every server event until the returned function is called. */
export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

/** Whether events are arriving right now. */
export function isLive() {
  return open;
}

/**
 * Sends a frame to the server ({type:'typing', conversation_id} or {type:'read', conversation_id,
 * up_to}); false when there is no open socket (such frames are not worth queueing).
 */
export function send(frame) {
  if (!open || !socket || socket.readyState !== WebSocket.OPEN) return false;
  try {
    socket.send(JSON.stringify(frame));
    return true;
  } catch {
    return false;
  }
}

/** Opens the socket (once per session). */
export function start() {
  if (running) return;
  running = true;
  failures = 0;
  connect();
}

/** Closes the socket and stops reconnecting (sign-out). */
export function stop() {
  running = false;
  clearTimeout(retryTimer);
  stopPing();
  if (socket) {
    const s = socket;
    socket = null;
    s.onclose = null;
    s.onmessage = null;
    try { s.close(); } catch { /* already closed */ }
  }
  setOpen(false);
}

function url() {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/v1/ws`;
}

function connect() {
  clearTimeout(retryTimer);
  if (!running || socket) return;
  let ws;
  try {
    ws = new WebSocket(url());
  } catch {
    retry();
    return;
  }
  socket = ws;
  ws.onopen = () => {
    if (socket !== ws) return;
    failures = 0;
    setOpen(true);
    startPing();
    for (const w of [...watchers]) if (alive(w)) safely(() => w.refresh());
  };
  ws.onmessage = (event) => {
    if (socket !== ws) return;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!data || typeof data !== 'object') return;
    if (data.type === 'pong') {
      clearTimeout(pongTimer);
      return;
    }
    for (const fn of [...subscribers]) safely(() => fn(data));
    for (const w of [...watchers]) if (alive(w) && w.onEvent) safely(() => w.onEvent(data));
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    stopPing();
    const wasOpen = open;
    setOpen(false);
    if (!wasOpen) failures += 1;
    retry();
  };
  ws.onerror = () => { /* onclose follows */ };
}

function retry() {
  if (!running) return;
  clearTimeout(retryTimer);
  // 1 s, 2 s, 4 s ... up to 30 s, with jitter so that many consoles do not return at once.
  const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures, 5));
  retryTimer = setTimeout(connect, base / 2 + Math.random() * base / 2);
  // A socket that keeps failing may mean the session ended: asking for it signs out if so.
  if (failures >= 2) api.get('/api/v1/auth/session').catch(() => {});
}

function startPing() {
  stopPing();
  pingTimer = setInterval(() => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    try {
      socket.send(JSON.stringify({ type: 'ping' }));
    } catch {
      return;
    }
    clearTimeout(pongTimer);
    const ws = socket;
    // No answer: the connection is dead without the browser knowing; start over.
    pongTimer = setTimeout(() => { if (socket === ws) ws.close(); }, PONG_TIMEOUT_MS);
  }, PING_MS);
}

function stopPing() {
  clearInterval(pingTimer);
  clearTimeout(pongTimer);
}

function setOpen(value) {
  if (open === value) return;
  open = value;
  for (const w of [...watchers]) if (alive(w) && w.onStatus) safely(() => w.onStatus(open));
}

function alive(w) {
  if (w.root.isConnected) return true;
  w.stop();
  return false;
}

function safely(fn) {
  try {
    const result = fn();
    if (result && typeof result.catch === 'function') result.catch(() => {});
  } catch { /* one view's trouble must not stop the others */ }
}

window.addEventListener('online', () => {
  if (running && !socket) {
    failures = 0;
    connect();
  }
});

/**
 * Keeps a view current while `root` is in the page: `onEvent(data)` for every server event,
 * `refresh()` after each (re)connect and every FALLBACK_MS while there is no socket, and
 * `onStatus(live)` when the socket opens or drops. Stops by itself once `root` is removed.
 */
export function watch(root, { onEvent, refresh, onStatus }) {
  const w = { root, onEvent, refresh, onStatus, stop: () => {} };
  const timer = setInterval(() => {
    if (alive(w) && !open) safely(() => refresh());
  }, FALLBACK_MS);
  w.stop = () => {
    clearInterval(timer);
    watchers.delete(w);
  };
  watchers.add(w);
  if (onStatus) safely(() => onStatus(open));
  return w;
}
