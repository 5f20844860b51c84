// The bell in the top bar: the employee's notifications (so far: @mentions in notes) with the
// unread count. GET /api/v1/notifications fills it; the live socket's
// {"type":"notification.created","notification":{...}} adds to it at once, and it is fetched again
// after every reconnect (and every 10 s while there is no socket). Opening a notification marks it
// read and opens its conversation at the note.

import { h, button, toast, errorText } from './dom.js';
import { api } from './api.js';
import { t } from './i18n.js';
import { formatTime } from './state.js';
import { subscribe, watch } from './live.js';
import { loadDirectory, employeeName, shortTime } from './views/inbox-common.js';

const model = { items: [], unread: 0 };
/** Redraw functions of the bells in the page (one, but a redrawn header makes a new one). */
const bells = new Set();
/** Notifications that arrived live, kept until a fetch includes them. */
const arrived = new Map();
let dir = null;
/** Closes the open list, if any. */
let closeOpen = null;

subscribe((data) => {
  if (data.type !== 'notification.created' || !data.notification) return;
  const n = data.notification;
  arrived.set(n.id, n);
  if (!model.items.some((x) => x.id === n.id)) {
    model.items.unshift(n);
    model.items.sort((a, b) => b.id - a.id);
    if (!n.read_at) model.unread += 1;
  }
  changed();
});

function changed() {
  for (const redraw of [...bells]) redraw();
}

async function load() {
  const [page, directory] = await Promise.all([api.get('/api/v1/notifications'), loadDirectory()]);
  dir = directory;
  // What arrived live while the answer was on its way stays.
  const known = new Set(page.items.map((n) => n.id));
  const newest = page.items.reduce((max, n) => Math.max(max, n.id), 0);
  const extra = [...arrived.values()].filter((n) => !known.has(n.id) && n.id > newest);
  for (const id of [...arrived.keys()]) if (known.has(id) || id <= newest) arrived.delete(id);
  model.items = [...extra, ...page.items].sort((a, b) => b.id - a.id);
  model.unread = page.unread + extra.filter((n) => !n.read_at).length;
  changed();
}

/** Forgets everything when the session ends. */
export function forgetNotifications() {
  if (closeOpen) closeOpen(false);
  model.items = [];
  model.unread = 0;
  arrived.clear();
  dir = null;
}

const BELL_PATH = 'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z';

function bellIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '20');
  svg.setAttribute('height', '20');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', BELL_PATH);
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

/** The bell and its list; `navigate(path)` opens a conversation. */
export function bell({ navigate }) {
  const panelId = 'notifications-panel';
  const count = h('span', { class: 'bell-count', testid: 'notifications-count', 'aria-hidden': 'true', hidden: true });
  const trigger = h('button', {
    type: 'button', class: 'bell', testid: 'notifications-bell',
    'aria-haspopup': 'dialog', 'aria-expanded': 'false', 'aria-controls': panelId,
  }, bellIcon(), count);
  const wrap = h('div', { class: 'bell-wrap' }, trigger);
  let panel = null;

  function redraw() {
    count.textContent = model.unread > 99 ? '99+' : String(model.unread);
    count.hidden = model.unread === 0;
    count.dataset.count = String(model.unread);
    trigger.setAttribute('aria-label', model.unread
      ? t('notifications.button_unread', { n: model.unread })
      : t('notifications.button'));
    if (panel) fillPanel();
  }

  function itemNode(n) {
    const by = employeeName(dir, n.by_employee_id);
    return h('li', {},
      h('button', {
        type: 'button', class: ['notification', !n.read_at && 'unread'], testid: 'notification-item',
        dataset: { id: n.id, conversation: n.conversation_id, read: String(Boolean(n.read_at)) },
        onclick: () => openItem(n),
      },
      h('span', { class: 'notification-head' },
        h('span', { class: 'unread-dot', hidden: Boolean(n.read_at) }),
        h('strong', {}, n.kind === 'mention' ? t('notifications.mention', { name: by }) : t('notifications.other', { name: by })),
        h('time', { class: 'muted small', title: formatTime(n.created_at) }, shortTime(n.created_at))),
      n.excerpt ? h('span', { class: 'notification-excerpt' }, n.excerpt) : null,
      h('span', { class: 'muted small' }, t('notifications.in_conversation', { id: n.conversation_id })),
      !n.read_at ? h('span', { class: 'sr-only' }, t('notifications.unread')) : null));
  }

  function fillPanel() {
    const readAll = button(t('notifications.read_all'), {
      class: 'small', testid: 'notifications-read-all', disabled: model.unread === 0, onclick: () => markAll(readAll),
    });
    panel.replaceChildren(
      h('div', { class: 'notifications-head' }, h('h2', { id: `${panelId}-title` }, t('notifications.title')), readAll),
      model.items.length
        ? h('ul', { class: 'notifications', testid: 'notifications-list' }, model.items.map(itemNode))
        : h('p', { class: 'muted', testid: 'notifications-empty' }, t('notifications.empty')));
  }

  async function markAll(btn) {
    btn.disabled = true;
    try {
      await api.post('/api/v1/notifications/read-all');
      const now = Date.now();
      for (const n of model.items) if (!n.read_at) n.read_at = now;
      model.unread = 0;
      changed();
    } catch (err) {
      toast(errorText(err), 'error');
      btn.disabled = false;
    }
  }

  async function openItem(n) {
    close(false);
    if (!n.read_at) {
      try {
        await api.post(`/api/v1/notifications/${n.id}/read`);
        n.read_at = Date.now();
        model.unread = Math.max(0, model.unread - 1);
        changed();
      } catch (err) {
        toast(errorText(err), 'error');
      }
    }
    navigate(`/inbox/${n.conversation_id}?message=${n.message_id}`);
  }

  function open() {
    panel = h('div', {
      id: panelId, class: 'notifications-panel', role: 'dialog', testid: 'notifications-panel',
      'aria-labelledby': `${panelId}-title`,
    });
    fillPanel();
    document.body.append(panel);
    const rect = trigger.getBoundingClientRect();
    panel.style.top = `${rect.bottom + 6}px`;
    panel.style.left = `${Math.max(8, Math.min(rect.right - panel.offsetWidth, window.innerWidth - panel.offsetWidth - 8))}px`;
    trigger.setAttribute('aria-expanded', 'true');
    closeOpen = close;
    document.addEventListener('mousedown', outside, true);
    document.addEventListener('keydown', onKey, true);
    const first = panel.querySelector('[data-testid="notification-item"]') || panel.querySelector('button');
    if (first) first.focus();
    // The list may have changed on another device: fetch it again.
    load().catch(() => {});
  }

  function close(returnFocus = true) {
    if (!panel) return;
    panel.remove();
    panel = null;
    closeOpen = null;
    trigger.setAttribute('aria-expanded', 'false');
    document.removeEventListener('mousedown', outside, true);
    document.removeEventListener('keydown', onKey, true);
    if (returnFocus) trigger.focus();
  }

  function outside(event) {
    if (panel && !panel.contains(event.target) && !trigger.contains(event.target)) close(false);
  }

  function onKey(event) {
    if (event.key === 'Escape' && panel) {
      event.preventDefault();
      close();
    }
  }

  trigger.addEventListener('click', () => (panel ? close() : open()));
  // A redrawn header (e.g. in another language) replaces the bell.
  if (closeOpen) closeOpen(false);
  bells.clear();
  bells.add(redraw);
  redraw();
  watch(wrap, { refresh: load });
  load().catch(() => {});
  return wrap;
}
