// The inbox: conversations the employee may see (mine, my team's, those they were @mentioned in,
// unassigned, all) with filters (status, channel, tag, subject text) kept in the address, and
// paging, kept current by live updates. `/inbox/{id}` opens one conversation. "New conversation"
// records one on a customer's behalf (a call, a walk-in).

import { h, clear, button, field, select, table, toast, errorText, formDialog } from '../dom.js';
import { api, query } from '../api.js';
import { t } from '../i18n.js';
import { can, me, formatTime } from '../state.js';
import { watch } from '../live.js';
import * as conversation from './conversation.js';
import {
  STATUSES, CHANNEL_KINDS, statusBadge, statusLabel, priorityBadge, channelLabel, shortTime, customerName,
  loadDirectory, employeeName, teamName, getCustomer, knownCustomer, unread,
} from './inbox-common.js';
import { conversationEmotionBadge } from './reply-assist.js';

const PAGE = 25;
const VIEWS = ['mine', 'my_team', 'mentions', 'unassigned', 'all'];
/** The list's address, to return to from a conversation. */
let lastList = '/inbox';

export function mount(root, ctx) {
  const match = /^\/inbox\/(\d+)\/?$/.exec(location.pathname);
  if (match) return conversation.mount(root, { ...ctx, id: Number(match[1]), back: lastList });
  return mountList(root, ctx);
}

/** The views this employee can use; `unassigned` and `my_team` need more than one's own conversations. */
function availableViews() {
  const wide = can('conversations.read_department', 'conversations.read_all');
  return VIEWS.filter((v) => (v !== 'unassigned' && v !== 'my_team') || wide);
}

/** Whether department `id` is the employee's own or below it (unknown: let the server say). */
function inMyTeam(dir, id) {
  const mine = me();
  if (id === null || id === undefined) return false;
  if (!dir || !dir.departments.size) return true;
  const seen = new Set();
  for (let at = id; at !== null && at !== undefined && !seen.has(at); at = (dir.departments.get(at) || {}).parent_id) {
    if (at === mine.department_id) return true;
    seen.add(at);
    if (!dir.departments.has(at)) return true;
  }
  return false;
}

async function mountList(root, { navigate }) {
  const params = new URLSearchParams(location.search);
  const views = availableViews();
  const filter = {
    view: views.includes(params.get('view')) ? params.get('view') : 'mine',
    status: STATUSES.includes(params.get('status')) ? params.get('status') : '',
    channel_kind: CHANNEL_KINDS.includes(params.get('channel')) ? params.get('channel') : '',
    tag: params.get('tag') || '',
    q: params.get('q') || '',
  };
  // The `before` cursor of each page seen so far; the first page has none.
  let pages = [null];
  let next = null;
  let items = [];
  let dir = null;
  let loadSeq = 0;

  const tabs = h('div', { class: 'tabs', role: 'tablist', testid: 'inbox-views' },
    views.map((v) => button(t(`inbox.view_${v}`), {
      role: 'tab', class: 'tab', testid: `inbox-view-${v}`, dataset: { view: v },
      onclick: () => { filter.view = v; pages = [null]; reload(); },
    })));
  const statusSelect = select([['', t('inbox.any_status')], ...STATUSES.map((s) => [s, statusLabel(s)])],
    { value: filter.status, testid: 'inbox-filter-status' });
  const channelSelect = select([['', t('inbox.any_channel')], ...CHANNEL_KINDS.map((k) => [k, channelLabel(k)])],
    { value: filter.channel_kind, testid: 'inbox-filter-channel' });
  const tagInput = h('input', { type: 'search', value: filter.tag, testid: 'inbox-filter-tag', placeholder: t('inbox.tag_placeholder'), maxlength: 50 });
  const search = h('input', { type: 'search', value: filter.q, testid: 'inbox-search', placeholder: t('inbox.search_placeholder') });
  const list = h('div', { testid: 'inbox-list' });
  const older = button(t('audit.older'), { testid: 'inbox-older', onclick: () => { if (next !== null) { pages.push(next); reload(); } } });
  const newer = button(t('audit.newer'), { testid: 'inbox-newer', onclick: () => { if (pages.length > 1) { pages.pop(); reload(); } } });
  const pageInfo = h('span', { class: 'muted', testid: 'inbox-page' });
  const liveInfo = h('span', { class: 'live-status', testid: 'live-status', role: 'status' });

  function readForm() {
    filter.status = statusSelect.value;
    filter.channel_kind = channelSelect.value;
    filter.tag = tagInput.value.trim();
    filter.q = search.value.trim();
  }

  function apiQuery() {
    return {
      assignee: filter.view === 'mine' ? 'me' : '',
      unassigned: filter.view === 'unassigned' ? 'true' : '',
      my_team: filter.view === 'my_team' ? 'true' : '',
      mentioned: filter.view === 'mentions' ? 'true' : '',
      status: filter.status,
      tag: filter.tag,
      channel_kind: filter.channel_kind,
      q: filter.q,
      sort: 'last_activity',
      before: pages[pages.length - 1],
      limit: PAGE,
    };
  }

  /** Whether a conversation belongs in the current list (the server's filter, client side). */
  function matches(c) {
    if (filter.view === 'mine' && c.assignee_id !== me().id) return false;
    if (filter.view === 'unassigned' && c.assignee_id !== null) return false;
    if (filter.view === 'my_team' && !inMyTeam(dir, c.team_id)) return false;
    if (filter.view === 'mentions' && !(c.participants || []).includes(me().id)) return false;
    if (filter.tag && !(c.tags || []).some((x) => x.toLowerCase() === filter.tag.toLowerCase())) return false;
    if (filter.status && c.status !== filter.status) return false;
    if (filter.channel_kind && c.channel_kind !== filter.channel_kind) return false;
    if (filter.q && !(c.subject || '').toLowerCase().includes(filter.q.toLowerCase())) return false;
    return true;
  }

  async function load() {
    readForm();
    const seq = ++loadSeq;
    lastList = location.pathname + query({ view: filter.view, status: filter.status, channel: filter.channel_kind, tag: filter.tag, q: filter.q });
    history.replaceState(null, '', lastList);
    for (const tab of tabs.children) {
      const current = tab.dataset.view === filter.view;
      tab.classList.toggle('active', current);
      tab.setAttribute('aria-selected', current ? 'true' : 'false');
    }
    const [page, directory] = await Promise.all([api.get('/api/v1/conversations' + query(apiQuery())), loadDirectory()]);
    if (seq !== loadSeq) return;
    dir = directory;
    items = page.items;
    next = page.next_before ?? null;
    older.disabled = next === null;
    newer.disabled = pages.length <= 1;
    pageInfo.textContent = t('audit.page', { n: pages.length });
    render();
    list.dataset.loaded = String(seq);
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  let reloadTimer = null;
  function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(reload, 300);
  }

  function render() {
    const rows = items.map(row);
    clear(list).append(table([t('inbox.customer'), t('inbox.subject'), t('inbox.channel'), t('inbox.status'),
      t('inbox.priority'), t('inbox.last_message'), t('inbox.assignee')], rows, { testid: 'inbox-table' }));
    if (!rows.length) list.querySelector('tr.empty td').textContent = t('inbox.empty');
  }

  function row(c) {
    const open = () => navigate(`/inbox/${c.id}`);
    const known = knownCustomer(c.customer_id);
    const name = h('span', { class: 'customer-name', testid: 'conversation-customer' }, customerName(known, c.customer_id));
    if (!known) getCustomer(c.customer_id).then((customer) => { if (customer) name.textContent = customerName(customer); });
    const assignee = c.assignee_id !== null ? employeeName(dir, c.assignee_id) : null;
    return h('tr', {
      testid: 'conversation-row', class: ['clickable', unread.has(c.id) && 'unread'], tabindex: '0',
      dataset: { id: c.id, status: c.status, priority: c.priority },
      onclick: (event) => { if (!event.target.closest('a')) open(); },
      onkeydown: (event) => { if (event.key === 'Enter') { event.preventDefault(); open(); } },
    },
    h('td', {}, h('span', { class: 'unread-dot', 'aria-label': t('inbox.unread'), hidden: !unread.has(c.id) }), name, conversationEmotionBadge(c)),
    h('td', { class: 'subject' }, h('a', {
      href: `/inbox/${c.id}`, testid: 'conversation-link',
      onclick: (event) => {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        open();
      },
    }, c.subject || t('inbox.no_subject'))),
    h('td', { class: 'nowrap' }, channelLabel(c.channel_kind)),
    h('td', {}, statusBadge(c.status, 'conversation-status')),
    h('td', {}, priorityBadge(c.priority)),
    h('td', { class: 'nowrap', title: formatTime(c.last_message_at) }, shortTime(c.last_message_at)),
    h('td', {}, assignee || h('span', { class: 'muted' }, t('inbox.nobody')),
      c.team_id !== null ? h('div', { class: 'muted small' }, teamName(dir, c.team_id)) : null));
  }

  function onEvent(data) {
    const c = data.conversation;
    if (!c || !['conversation.updated', 'message.created', 'message.updated'].includes(data.type)) return;
    const index = items.findIndex((x) => x.id === c.id);
    const onFirstPage = pages.length === 1;
    if (index >= 0 && matches(c) && data.type === 'message.created' && onFirstPage && index > 0) {
      // The latest activity goes first.
      items.splice(index, 1);
      items.unshift(c);
      render();
    } else if (index >= 0 && matches(c)) {
      items[index] = c;
      const old = list.querySelector(`[data-testid="conversation-row"][data-id="${c.id}"]`);
      if (old) old.replaceWith(row(c));
      else render();
    } else if (index >= 0 || (onFirstPage && matches(c))) {
      // Joins or leaves the list: let the server decide its place and the paging.
      reloadSoon();
    }
  }

  function onStatus(live) {
    liveInfo.classList.toggle('on', live);
    liveInfo.textContent = live ? t('live.on') : t('live.off');
  }

  let searchTimer = null;
  for (const input of [search, tagInput]) {
    input.addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => { pages = [null]; reload(); }, 250);
    });
  }
  for (const control of [statusSelect, channelSelect]) control.addEventListener('change', () => { pages = [null]; reload(); });

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, t('nav.inbox')),
      h('div', { class: 'head-buttons' }, liveInfo,
        canOpenConversations() ? button(t('inbox.new'), { class: 'primary', testid: 'inbox-new', onclick: () => newConversationDialog(navigate) }) : null)),
    tabs,
    h('div', { class: 'toolbar', role: 'search', 'aria-label': t('inbox.filters') },
      field(t('inbox.status'), statusSelect),
      field(t('inbox.channel'), channelSelect),
      field(t('inbox.tag'), tagInput),
      field(t('inbox.search'), search)),
    list,
    h('div', { class: 'pager' }, newer, pageInfo, older)));
  watch(root, { onEvent, onStatus, refresh: () => load() });
  await load();
}

/** Opening a conversation needs the right to answer; the channels come from /api/v1/reply-channels. */
function canOpenConversations() {
  return can('conversations.reply');
}

/** Records a conversation on a customer's behalf and opens it. */
async function newConversationDialog(navigate) {
  let channels;
  try {
    channels = await api.list('/api/v1/reply-channels');
  } catch (err) {
    toast(errorText(err), 'error');
    return;
  }
  const channel = select(channels.map((c) => [c.id, `${c.name} (${channelLabel(c.kind)})`]), { testid: 'newconv-channel', required: true });
  const name = h('input', { testid: 'newconv-name', maxlength: 200, autocomplete: 'off' });
  const email = h('input', { type: 'email', testid: 'newconv-email', maxlength: 254, autocomplete: 'off' });
  const phone = h('input', { type: 'tel', testid: 'newconv-phone', maxlength: 50, autocomplete: 'off' });
  const subject = h('input', { testid: 'newconv-subject', maxlength: 200 });
  const text = h('textarea', { rows: 4, testid: 'newconv-text', required: true, placeholder: t('newconv.text_placeholder') });
  const fields = channels.length
    ? [
      field(t('newconv.channel'), channel, t('newconv.channel_hint')),
      field(t('newconv.customer_name'), name),
      h('div', { class: 'row' }, field(t('newconv.email'), email), field(t('newconv.phone'), phone)),
      h('p', { class: 'muted small' }, t('newconv.contact_hint')),
      field(t('newconv.subject'), subject),
      field(t('newconv.text'), text),
    ]
    : [h('p', { class: 'muted', testid: 'newconv-no-channels' }, t('newconv.no_channels'))];
  formDialog({
    title: t('newconv.title'), testid: 'newconv-dialog', wide: true, submitLabel: t('newconv.submit'), fields,
    onSubmit: () => {
      if (!channels.length) throw { code: 'client', message: '', text: t('newconv.no_channels') };
      const customer = { name: name.value.trim(), email: email.value.trim(), phone: phone.value.trim() };
      if (!customer.email && !customer.phone) throw { code: 'client', message: '', text: t('newconv.need_contact') };
      if (!text.value.trim()) throw { code: 'client', message: '', text: t('newconv.need_text') };
      for (const key of Object.keys(customer)) if (!customer[key]) delete customer[key];
      return api.post('/api/v1/conversations', {
        channel_id: Number(channel.value), customer, subject: subject.value.trim(), text: text.value,
      });
    },
    onDone: (conversation) => {
      toast(t('newconv.created'));
      navigate(`/inbox/${conversation.id}`);
    },
  });
}
