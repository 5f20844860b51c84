// One conversation: the messages, the reply box (reply or internal note), status actions,
// assignment and priority, and the customer: profile, behaviour timeline, other conversations.
// Live events update it in place; the reply being typed is never touched by an update.
// While it is open and visible it tells the server how far the employee has read (the customer's
// widget shows "Read"), and that the employee is typing a reply (at most every 2 s); it shows
// when the customer or a colleague is typing, and "Read" on replies the customer has seen.
// Messages show their files (pictures as thumbnails) and a note's @mentions; the reply box
// attaches files and, in a note, offers colleagues to mention (compose.js).
// The routing panel shows how routing read the question (type, urgency, language, keywords), its
// lane and stage, its place in line and every offer with why that person was chosen; employees who
// answer can correct the type and urgency (the classifier learns from it). It also shows the SLA
// clocks (due in / overdue by, paused while waiting on the customer), a transfer waiting for its
// receiver, and the escalations and transfers so far with their hand-off notes; with
// conversations.transfer it offers Escalate, Transfer, Return to owner and Cancel transfer.

import { h, append, clear, button, field, select, checkbox, formDialog, confirmDialog, toast, errorText, busy, nextId } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { can, me, formatTime, formatBytes } from '../state.js';
import { watch, send as sendLive } from '../live.js';
import {
  PRIORITIES, canBecome, statusBadge, statusLabel, priorityLabel, channelLabel, shortTime, customerName,
  loadDirectory, employeeName, teamName, rememberCustomer, unread,
} from './inbox-common.js';
import { emailParts } from './channel-email.js';
import { attachmentTray, mentionPicker, mentionNodes } from './compose.js';
import { replyAssist, emotionBadge, conversationEmotionBadge, sensitiveBadge, rudeBadge } from './reply-assist.js';
import {
  URGENCIES, typeLabel, urgencyLabel, urgencyBadge, urgencyReasonText, languageLabel, outcomeLabel, percent, number,
  decisionDetails, presenceLabel, clockLabel, levelBadge, dueText, targetText, laneName, loadLanes, knownLanes, handOffNoteText,
} from './routing-common.js';

/** What the hand-off buttons read of a conversation routing has not recorded yet. */
const EMPTY_RECORD = { lane_id: null, escalations: [], transfer: null, past_transfers: [] };

/** The status actions in display order: [target status, label key, button test id]. */
const STATUS_ACTIONS = [
  ['open', 'conversation.action_open', 'status-open'],
  ['pending', 'conversation.action_pending', 'status-pending'],
  ['snoozed', 'conversation.action_snooze', 'status-snooze'],
  ['resolved', 'conversation.action_resolve', 'status-resolve'],
  ['closed', 'conversation.action_close', 'status-close'],
];

export async function mount(root, { navigate, id, back }) {
  unread.delete(id);
  let detail = null;
  let dir = null;
  let profile = null;
  const rendered = {};

  const goBack = (event) => {
    if (event && (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0)) return;
    if (event) event.preventDefault();
    navigate(back || '/inbox');
  };
  const backLink = h('a', { href: back || '/inbox', class: 'back', testid: 'conversation-back', onclick: goBack }, t('conversation.back'));
  const head = h('div', { class: 'conv-head', testid: 'conversation-header' });
  const messages = h('div', { class: 'messages', testid: 'messages', role: 'log', 'aria-label': t('conversation.messages') });
  const typing = h('div', { class: 'typing muted small', testid: 'typing-indicator', 'aria-live': 'polite', hidden: true });
  let typingTimer = null;
  let readSent = 0;
  const actions = h('div', { testid: 'conversation-actions' });
  const actionError = h('p', { class: 'form-error', role: 'alert', testid: 'action-error', hidden: true });
  const customerBox = h('div', { testid: 'customer-panel' });
  const timelineBox = h('div', { testid: 'customer-timeline' });
  const historyBox = h('div', { testid: 'customer-history' });
  const participantsBox = h('div', { testid: 'participants' });
  const routingBox = h('div', { testid: 'routing-panel' });
  const relabelBox = h('div', { testid: 'relabel' });
  /** GET /conversations/{id}/routing, or the error that kept it away. */
  let routing = null;
  let routingError = null;
  /** The lanes (names for the hand-off history, targets for escalation and transfer). */
  let lanes = knownLanes();
  /** A message to show first (from a notification: /inbox/{id}?message={message id}). */
  let focusMessage = Number(new URLSearchParams(location.search).get('message')) || null;
  /** Whether the newest messages are in view, so that late-loading pictures keep them there. */
  let stickToBottom = true;
  messages.addEventListener('scroll', () => {
    stickToBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
  });
  const composer = buildComposer();

  // ------------------------------------------------------------ loading

  /** Fetches the conversation; `withProfile` also the customer's timeline. */
  async function load(withProfile = true) {
    const [d, directory] = await Promise.all([api.get(`/api/v1/conversations/${id}`), loadDirectory(), loadRouting(false),
      loadLanes().then((items) => { lanes = items; }, () => {})]);
    dir = directory;
    apply(d);
    if (withProfile) await loadProfile();
  }

  let routingTimer = null;
  /** Fetches the routing panel's content; `draw` redraws it (else render() does). */
  async function loadRouting(draw = true) {
    clearTimeout(routingTimer);
    try {
      routing = await api.get(`/api/v1/conversations/${id}/routing`);
      routingError = null;
    } catch (err) {
      routingError = err;
    }
    if (draw && detail) renderRouting();
    // While it waits for someone, its place in line moves without events of its own.
    if (routing && (routing.state === 'queued' || routing.state === 'offered') && root.isConnected) routingTimer = setTimeout(routingSoon, 5000);
  }

  function routingSoon() {
    clearTimeout(routingTimer);
    routingTimer = setTimeout(() => { if (root.isConnected) loadRouting(); }, 250);
  }

  let refreshTimer = null;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => load(false).catch((err) => toast(errorText(err), 'error')), 250);
  }

  async function loadProfile() {
    if (!can('customers.read') || !detail) return;
    try {
      profile = await api.get(`/api/v1/customers/${detail.customer.id}`);
      if (profile.customer.updated_at >= detail.customer.updated_at) detail.customer = profile.customer;
      rememberCustomer(detail.customer);
      renderIfChanged('customer', detail.customer, renderCustomer);
      renderIfChanged('timeline', profile.events, renderTimeline);
    } catch { /* the profile is an extra; the conversation still works */ }
  }

  /** Takes a fresh ConversationDetail and redraws what changed. */
  function apply(d) {
    // A fetch that started before a live event may answer after it: keep what the event told.
    if (detail && detail.conversation.id === d.conversation.id) {
      for (const mark of ['customer_read_up_to', 'employee_read_up_to']) {
        d.conversation[mark] = Math.max(d.conversation[mark] || 0, detail.conversation[mark] || 0);
      }
      const newest = d.messages.reduce((max, m) => Math.max(max, m.id), 0);
      const later = detail.messages.filter((m) => m.id > newest);
      if (later.length) d.messages = d.messages.concat(later);
    }
    detail = d;
    rememberCustomer(d.customer);
    render();
  }

  function render() {
    document.title = `${detail.conversation.subject || t('inbox.no_subject')} · ${t('app.title')}`;
    const c = detail.conversation;
    // Only what each part shows, so that a new message does not redraw a drop-down in use.
    renderIfChanged('head', [c.subject, c.status, c.snoozed_until, c.channel_kind, customerName(detail.customer), c.emotion && c.emotion.emotion], renderHead);
    renderIfChanged('messages', [detail.messages, c.customer_read_up_to], renderMessages);
    renderIfChanged('participants', c.participants || [], renderParticipants);
    renderIfChanged('actions', [c.status, c.assignee_id, c.team_id, c.priority, c.tags.join(',')], renderActions);
    renderIfChanged('customer', detail.customer, renderCustomer);
    renderIfChanged('history', detail.history, renderHistory);
    renderRouting();
    updateComposer();
    markRead();
  }

  /** Tells the server the employee has seen the conversation up to its newest message. */
  function markRead() {
    if (!detail || !root.isConnected || document.visibilityState === 'hidden') return;
    const newest = detail.messages.reduce((max, m) => Math.max(max, m.id), 0);
    if (newest > readSent && sendLive({ type: 'read', conversation_id: id, up_to: newest })) readSent = newest;
  }

  function onVisibility() {
    if (!root.isConnected) {
      document.removeEventListener('visibilitychange', onVisibility);
      return;
    }
    markRead();
  }
  document.addEventListener('visibilitychange', onVisibility);

  function showTyping(name) {
    typing.textContent = t('conversation.typing', { name });
    typing.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { typing.hidden = true; }, 5000);
  }

  function renderIfChanged(key, data, draw) {
    const signature = JSON.stringify(data);
    if (rendered[key] === signature) return;
    rendered[key] = signature;
    draw();
  }

  // ------------------------------------------------------------ header and messages

  function renderHead() {
    const c = detail.conversation;
    clear(head).append(
      h('div', { class: 'conv-title' },
        h('h1', { testid: 'conversation-subject' }, c.subject || t('inbox.no_subject')),
        statusBadge(c.status, 'current-status'),
        conversationEmotionBadge(c)),
      h('div', { class: 'muted conv-sub' },
        h('span', { testid: 'conversation-customer-name' }, customerName(detail.customer)), ' · ',
        channelLabel(c.channel_kind), ' · ',
        t('conversation.number', { id: c.id }),
        c.status === 'snoozed' && c.snoozed_until ? [' · ', t('conversation.snoozed_until', { time: formatTime(c.snoozed_until) })] : null));
  }

  function authorName(m) {
    if (m.author.kind === 'customer') return customerName(detail.customer);
    if (m.author.kind === 'employee') return employeeName(dir, m.author.employee_id);
    return t('conversation.system');
  }

  function renderMessages() {
    const nearBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
    const first = !messages.childElementCount;
    append(clear(messages), [detail.messages.length
      ? detail.messages.map(messageNode)
      : h('p', { class: 'muted center' }, t('conversation.no_messages'))]);
    if (first || nearBottom) messages.scrollTop = messages.scrollHeight;
    stickToBottom = first || nearBottom;
    if (focusMessage) {
      const node = messages.querySelector(`[data-testid="message"][data-id="${focusMessage}"]`);
      if (node) {
        focusMessage = null;
        node.classList.add('focus');
        node.scrollIntoView({ block: 'center' });
        stickToBottom = false;
      }
    }
  }

  /** A mentioned employee's user name and display name, as far as they are known. */
  function who(employeeId) {
    const mine = me();
    if (mine && mine.id === employeeId) return { username: mine.username, name: mine.display_name };
    const e = dir && dir.employees.get(employeeId);
    return e ? { username: e.username, name: e.display_name } : { username: null, name: employeeName(dir, employeeId) };
  }

  function attachmentsNode(m) {
    if (!m.attachments || !m.attachments.length) return null;
    return h('ul', { class: 'msg-files', testid: 'message-attachments', 'aria-label': t('conversation.attachments') },
      m.attachments.map((a) => {
        const url = `/api/v1/attachments/${a.id}`;
        const label = t('conversation.file_label', { name: a.filename, size: formatBytes(a.size) });
        if (/^image\//.test(a.content_type)) {
          const img = h('img', { src: url, alt: a.filename, class: 'thumb', loading: 'lazy', testid: 'attachment-thumbnail' });
          img.addEventListener('load', () => { if (stickToBottom) messages.scrollTop = messages.scrollHeight; });
          return h('li', {}, h('a', {
            href: url, target: '_blank', rel: 'noopener', class: 'thumb-link', testid: 'attachment-image',
            dataset: { id: a.id }, title: label, 'aria-label': t('conversation.open_file', { name: label }),
          }, img));
        }
        return h('li', {}, h('a', {
          href: url, download: a.filename, class: 'file-link', testid: 'attachment-file', dataset: { id: a.id },
          'aria-label': t('conversation.download_file', { name: label }),
        }, h('span', { class: 'file-name' }, a.filename),
        h('span', { class: 'file-size' }, formatBytes(a.size))));
      }));
  }

  /** "Read" once the customer has seen a reply, else its delivery state. */
  function deliveryNode(m) {
    const read = m.direction === 'outbound' && m.id <= (detail.conversation.customer_read_up_to || 0)
      && !(m.delivery && m.delivery.state === 'failed');
    if (read) {
      return h('div', { class: 'msg-delivery read', testid: 'message-delivery', dataset: { state: 'read' } },
        h('span', { testid: 'message-read' }, t('delivery.read')));
    }
    if (!m.delivery) return null;
    return h('div', { class: ['msg-delivery', m.delivery.state === 'failed' && 'failed'], testid: 'message-delivery', dataset: { state: m.delivery.state } },
      t(`delivery.${m.delivery.state}`), m.delivery.failure ? `: ${m.delivery.failure}` : '');
  }

  function messageNode(m) {
    const data = { id: m.id, direction: m.direction };
    const time = h('time', { datetime: new Date(m.created_at).toISOString(), title: formatTime(m.created_at) }, shortTime(m.created_at));
    if (m.direction === 'system') {
      return h('div', { class: 'msg system', testid: 'message', dataset: data },
        h('span', {}, systemText(m.text), m.author.kind === 'employee' ? ` · ${authorName(m)}` : '', ' · ', time));
    }
    const mentioned = mentionNodes(m.text, m.mentions, who);
    const text = m.text || !(m.attachments && m.attachments.length) ? h('div', { class: 'msg-text', testid: 'message-text' }, mentioned.text) : null;
    const email = emailParts(m, text);
    return h('div', { class: ['msg', m.direction], testid: 'message', dataset: data },
      h('div', { class: 'msg-meta' },
        h('span', { class: 'msg-author' }, authorName(m)),
        m.direction === 'note' ? h('span', { class: 'badge warn' }, t('conversation.note')) : null,
        m.direction === 'inbound' ? emotionBadge(m.emotion) : null,
        sensitiveBadge(m.sensitive),
        m.direction === 'outbound' ? rudeBadge(m.rude) : null,
        time),
      email.before,
      text,
      email.after,
      mentioned.extra.length ? h('div', { class: 'msg-mentions small', testid: 'message-mentions' }, t('conversation.mentioned'), ' ', mentioned.extra) : null,
      attachmentsNode(m),
      deliveryNode(m));
  }

  function renderParticipants() {
    const ids = detail.conversation.participants || [];
    append(clear(participantsBox), [ids.length
      ? h('ul', { class: 'participants' }, ids.map((pid) => h('li', { testid: 'participant', dataset: { id: pid } }, employeeName(dir, pid))))
      : h('p', { class: 'muted' }, t('conversation.no_participants'))]);
  }

  /** An employee's display name from their user name, as far as it is known. */
  function nameOfUsername(username) {
    const mine = me();
    const person = mine && mine.username === username ? mine : dir && [...dir.employees.values()].find((e) => e.username === username);
    return person ? person.display_name : username;
  }

  /** Routing's hand-off events (escalated, transfer waiting, returned, cancelled), translated. */
  function handOffText(text) {
    const withNote = (line, note) => (note && note.trim() ? `${line}${t('conversation.sys_note_separator')}${handOffNoteText(note)}` : line);
    let m = /^escalated to (.+?)(?: \(from (.+)\))?: ([\s\S]*)$/.exec(text);
    if (m) {
      return withNote(m[2] ? t('conversation.sys_escalated_from', { to: m[1], from: m[2] }) : t('conversation.sys_escalated', { to: m[1] }), m[3]);
    }
    m = /^transfer to (.+?) \((warm|blind)\) waiting for acceptance(?:: ([\s\S]*))?$/.exec(text);
    if (m) {
      const lane = lanes.find((l) => l.name === m[1]);
      return withNote(t('conversation.sys_transfer_waiting', { target: lane ? lane.name : nameOfUsername(m[1]), mode: t(`handoff.mode_${m[2]}`) }), m[3]);
    }
    m = /^returned to (\S+): ([\s\S]*)$/.exec(text);
    if (m) return withNote(t('conversation.sys_returned', { name: nameOfUsername(m[1]) }), m[2]);
    if (text === 'transfer cancelled') return t('conversation.sys_transfer_cancelled');
    return null;
  }

  /** The server records system events as short English texts; they are shown translated. */
  function systemText(text) {
    const status = /^status: (\w+) -> (\w+)$/.exec(text);
    if (status) return t('conversation.sys_status', { from: statusLabel(status[1]), to: statusLabel(status[2]) });
    const routed = /^assignee: (\S+) \((routed, offer accepted|transfer accepted)\)$/.exec(text);
    if (routed) {
      const name = nameOfUsername(routed[1]);
      return t(routed[2] === 'transfer accepted' ? 'conversation.sys_transfer_accepted' : 'conversation.sys_routed', { name });
    }
    const handOff = handOffText(text);
    if (handOff) return handOff;
    const out = [];
    for (const part of text.split(', ')) {
      let m = /^assignee: (none|\d+)$/.exec(part);
      if (m) {
        out.push(m[1] === 'none' ? t('conversation.sys_unassigned') : t('conversation.sys_assigned', { name: employeeName(dir, Number(m[1])) }));
        continue;
      }
      m = /^team: (none|\d+)$/.exec(part);
      if (m) {
        out.push(m[1] === 'none' ? t('conversation.sys_no_team') : t('conversation.sys_team', { name: teamName(dir, Number(m[1])) }));
        continue;
      }
      m = /^priority: (\w+)$/.exec(part);
      if (m) {
        out.push(t('conversation.sys_priority', { priority: priorityLabel(m[1]) }));
        continue;
      }
      return text;
    }
    return out.join(t('conversation.sys_separator'));
  }

  // ------------------------------------------------------------ reply box

  function buildComposer() {
    const text = h('textarea', { rows: 3, testid: 'reply-text', 'aria-label': t('conversation.reply_label') });
    const noteBox = checkbox(t('conversation.note_toggle'), { testid: 'reply-note' });
    const note = noteBox.querySelector('input');
    const hint = h('small', { class: 'muted', testid: 'reply-hint' });
    const error = h('p', { class: 'form-error', role: 'alert', testid: 'reply-error', hidden: true });
    const send = h('button', { type: 'submit', class: 'primary', testid: 'reply-send' });
    const showError = (message) => {
      error.textContent = message;
      error.hidden = false;
    };
    const files = attachmentTray({
      onError: showError,
      onAdd: () => { error.hidden = true; },
      onChange: () => { send.disabled = files.pending(); },
    });
    const picker = mentionPicker(text, { enabled: () => note.checked });
    let closed = false;
    const assist = replyAssist(text, { conversationId: id, active: () => !note.checked && !closed, navigate });
    const form = h('form', { class: 'composer', testid: 'reply-form', novalidate: true },
      assist.panel, picker.node, assist.box, assist.status, assist.rudeHint, assist.ai, files.chips, error,
      h('div', { class: 'composer-bar' }, files.trigger, files.input, noteBox, hint, h('div', { class: 'spacer' }), send));
    const mode = () => {
      form.classList.toggle('note', note.checked);
      hint.textContent = closed ? t('conversation.closed_hint')
        : note.checked && can('employees.read') ? t('conversation.note_hint') : t('conversation.send_hint');
      send.textContent = note.checked ? t('conversation.add_note') : t('conversation.send_reply');
      text.placeholder = note.checked ? t('conversation.note_placeholder') : t('conversation.reply_placeholder');
      if (!note.checked) picker.close();
    };
    note.addEventListener('change', mode);
    note.addEventListener('change', () => assist.refresh());
    // Files dropped on the reply box or pasted into it are attached like chosen ones.
    form.addEventListener('dragover', (event) => {
      if (event.dataTransfer && [...event.dataTransfer.types].includes('Files')) event.preventDefault();
    });
    form.addEventListener('drop', (event) => {
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      files.add([...event.dataTransfer.files]);
    });
    text.addEventListener('paste', (event) => {
      const pasted = event.clipboardData ? [...event.clipboardData.files] : [];
      if (!pasted.length) return;
      event.preventDefault();
      files.add(pasted);
    });
    // At most one typing frame every 2 s; typing within the 2 s is told when they are over.
    // Notes are internal: only a reply being written is announced.
    let typingSent = 0;
    let typingLater = null;
    const noteTyping = () => {
      if (note.checked || !text.value || !root.isConnected) return;
      const wait = typingSent + 2000 - Date.now();
      if (wait > 0) {
        if (!typingLater) typingLater = setTimeout(() => { typingLater = null; noteTyping(); }, wait);
      } else if (sendLive({ type: 'typing', conversation_id: id })) {
        typingSent = Date.now();
      }
    };
    text.addEventListener('input', noteTyping);
    text.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.hidden = true;
      if (files.pending()) {
        showError(t('compose.wait_uploads'));
        return;
      }
      const attachments = files.ids();
      if (!text.value.trim() && !attachments.length) {
        showError(t('conversation.empty_reply'));
        return;
      }
      const body = { text: text.value.trim() ? text.value : '', note: note.checked };
      if (attachments.length) body.attachments = attachments;
      const mentions = note.checked ? picker.ids() : [];
      if (mentions.length) body.mentions = mentions;
      try {
        const message = await sendChecked(body);
        if (!message) return;
        if (!body.note) assist.sent(body.text);
        text.value = '';
        assist.refresh();
        files.clear();
        picker.reset();
        addMessage(message);
        messages.scrollTop = messages.scrollHeight;
        // The reply may have assigned the conversation and changed its counters.
        refreshSoon();
        text.focus();
      } catch (err) {
        error.textContent = errorText(err);
        error.hidden = false;
      }
    });
    /**
     * Posts the message; a reply with words that need confirmation asks for it (naming them) and
     * is sent again with `confirm_sensitive`. Null when the employee did not confirm.
     */
    async function sendChecked(body) {
      const path = `/api/v1/conversations/${id}/messages`;
      try {
        return await busy(send, () => api.post(path, body));
      } catch (err) {
        if (err.code !== 'sensitive_word_confirm' || body.note) throw err;
        const matches = (err.details && err.details.matches) || [];
        const named = [...new Set(matches.filter((m) => m.severity === 'warn')
          .map((m) => t('assist.confirm_word', { text: m.text, category: m.category || t('assist.no_category') })))];
        const ok = await confirmDialog(
          named.length ? t('assist.confirm_text', { words: named.join(t('assist.list_separator')) }) : err.message,
          { title: t('assist.confirm_title'), confirmLabel: t('assist.confirm_send'), danger: false });
        if (!ok) {
          text.focus();
          return null;
        }
        return busy(send, () => api.post(path, { ...body, confirm_sensitive: true }));
      }
    }
    mode();
    return {
      form, text, note, mode, picker, assist,
      setClosed: (value) => {
        if (value === closed) return;
        closed = value;
        assist.refresh();
      },
    };
  }

  function updateComposer() {
    const closed = detail.conversation.status === 'closed';
    if (closed) composer.note.checked = true;
    composer.note.disabled = closed;
    composer.setClosed(closed);
    composer.mode();
  }

  function addMessage(message) {
    if (!detail || detail.messages.some((m) => m.id === message.id)) return;
    detail.messages.push(message);
    detail.messages.sort((a, b) => a.id - b.id);
    renderIfChanged('messages', [detail.messages, detail.conversation.customer_read_up_to], renderMessages);
    if (message.direction === 'inbound') {
      typing.hidden = true;
      // The customer's latest words changed: so do the suggestions.
      if (can('conversations.reply')) composer.assist.refresh();
    }
    markRead();
  }

  // ------------------------------------------------------------ status and assignment

  function renderActions() {
    const c = detail.conversation;
    const body = [];
    if (can('conversations.reply')) {
      const buttons = STATUS_ACTIONS.filter(([to]) => canBecome(c.status, to)).map(([to, label, testid]) => button(
        to === 'open' && c.status === 'resolved' ? t('conversation.action_reopen') : t(label),
        { testid, class: to === 'resolved' ? 'primary' : to === 'closed' ? 'danger-text' : undefined, onclick: (event) => changeStatus(to, event.currentTarget) }));
      body.push(h('div', { class: 'status-actions' }, buttons.length ? buttons : h('span', { class: 'muted' }, t('conversation.final'))));
    }
    body.push(assignmentFields(c));
    body.push(tagsField(c));
    append(clear(actions), body);
  }

  /** Tags, comma-separated; saved when the field is left or Enter is pressed. */
  function tagsField(c) {
    if (!can('conversations.reply')) {
      return h('dl', { class: 'details compact' },
        h('dt', {}, t('conversation.tags')), h('dd', { testid: 'tags-text' }, c.tags.join(', ') || t('conversation.no_tags')));
    }
    const input = h('input', { testid: 'conversation-tags', value: c.tags.join(', '), maxlength: 1100, autocomplete: 'off',
      placeholder: t('conversation.tags_hint') });
    let saved = c.tags.join(', ');
    const save = async () => {
      const tags = input.value.split(/[,，]/).map((s) => s.trim()).filter(Boolean);
      if (tags.join(', ') === saved) return;
      actionError.hidden = true;
      input.disabled = true;
      try {
        detail.conversation = await api.put(`/api/v1/conversations/${id}/tags`, { tags });
        saved = detail.conversation.tags.join(', ');
        rendered.actions = null;
        render();
        refreshSoon();
      } catch (err) {
        showActionError(err);
        input.disabled = false;
      }
    };
    input.addEventListener('change', save);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        save();
      }
    });
    return h('div', { class: 'assign-fields' }, field(t('conversation.tags'), input));
  }

  function assignmentFields(c) {
    const assign = can('conversations.assign');
    const mine = me();
    if (!assign) {
      return h('dl', { class: 'details compact' },
        h('dt', {}, t('inbox.assignee')), h('dd', { testid: 'assignee-text' }, employeeName(dir, c.assignee_id) || t('inbox.nobody')),
        h('dt', {}, t('conversation.team')), h('dd', {}, teamName(dir, c.team_id) || t('conversation.no_team_text')),
        h('dt', {}, t('inbox.priority')), h('dd', {}, priorityLabel(c.priority)));
    }
    const people = [...dir.employees.values()]
      .filter((e) => !e.disabled && e.id !== mine.id)
      .sort((a, b) => a.display_name.localeCompare(b.display_name));
    const assigneeOptions = [['', t('conversation.nobody_option')], [mine.id, t('conversation.me_option', { name: mine.display_name })],
      ...people.map((e) => [e.id, e.display_name])];
    if (c.assignee_id !== null && !assigneeOptions.some(([v]) => v === c.assignee_id)) assigneeOptions.push([c.assignee_id, employeeName(dir, c.assignee_id)]);
    const assignee = select(assigneeOptions, { value: c.assignee_id ?? '', testid: 'assign-employee' });
    const teams = [...dir.departments.values()].sort((a, b) => a.name.localeCompare(b.name));
    const teamOptions = [['', t('conversation.no_team')], ...teams.map((d) => [d.id, d.name])];
    if (c.team_id !== null && !teamOptions.some(([v]) => v === c.team_id)) teamOptions.push([c.team_id, teamName(dir, c.team_id)]);
    const team = select(teamOptions, { value: c.team_id ?? '', testid: 'assign-team' });
    const priority = select(PRIORITIES.map((p) => [p, priorityLabel(p)]), { value: c.priority, testid: 'assign-priority' });
    const send = (control, body) => control.addEventListener('change', () => assignChange(control, body()));
    send(assignee, () => ({ assignee_id: assignee.value ? Number(assignee.value) : null }));
    send(team, () => ({ team_id: team.value ? Number(team.value) : null }));
    send(priority, () => ({ priority: priority.value }));
    return h('div', { class: 'assign-fields' },
      field(t('inbox.assignee'), assignee), field(t('conversation.team'), team), field(t('inbox.priority'), priority));
  }

  async function assignChange(control, body) {
    actionError.hidden = true;
    control.disabled = true;
    try {
      detail.conversation = await api.post(`/api/v1/conversations/${id}/assign`, body);
      render();
      refreshSoon();
    } catch (err) {
      showActionError(err);
      rendered.actions = null;
      render();
    }
  }

  async function changeStatus(to, btn) {
    actionError.hidden = true;
    const body = { status: to };
    if (to === 'snoozed') {
      snoozeDialog();
      return;
    }
    if (to === 'closed' && !await confirmDialog(t('conversation.close_confirm'), { confirmLabel: t('conversation.action_close') })) return;
    try {
      detail.conversation = await busy(btn, () => api.post(`/api/v1/conversations/${id}/status`, body));
      render();
      refreshSoon();
    } catch (err) {
      showActionError(err);
      refreshSoon();
    }
  }

  function snoozeDialog() {
    const tomorrow = new Date();
    tomorrow.setDate(tomorrow.getDate() + 1);
    tomorrow.setHours(9, 0, 0, 0);
    const input = h('input', { type: 'datetime-local', testid: 'snooze-until', required: true, value: localInputValue(tomorrow), min: localInputValue(new Date()) });
    formDialog({
      title: t('conversation.snooze_title'), testid: 'snooze-dialog', submitLabel: t('conversation.action_snooze_short'),
      fields: [field(t('conversation.snooze_until'), input, t('conversation.snooze_hint'))],
      onSubmit: () => {
        const until = input.value ? new Date(input.value).getTime() : NaN;
        if (!Number.isFinite(until) || until <= Date.now()) throw { code: 'client', message: '', text: t('conversation.snooze_future') };
        return api.post(`/api/v1/conversations/${id}/status`, { status: 'snoozed', snoozed_until: until });
      },
      onDone: (conversation) => {
        detail.conversation = conversation;
        render();
        refreshSoon();
      },
    });
  }

  function showActionError(err) {
    actionError.textContent = errorText(err);
    actionError.hidden = false;
  }

  // ------------------------------------------------------------ customer

  function renderCustomer() {
    const c = detail.customer;
    const row = (label, value, testid) => (value === null || value === undefined || value === '' || (Array.isArray(value) && !value.length)
      ? null
      : [h('dt', {}, label), h('dd', { testid }, value)]);
    const attributes = Object.entries(c.attributes || {});
    clear(customerBox).append(
      h('div', { class: 'side-head' },
        h('h2', { testid: 'customer-name' }, customerName(c)),
        can('customers.manage') ? button(t('common.edit'), { class: 'small', testid: 'customer-edit', onclick: editCustomer }) : null),
      h('dl', { class: 'details compact' },
        row(t('customer.emails'), c.emails.join(', '), 'customer-emails'),
        row(t('customer.phones'), c.phones.join(', '), 'customer-phones'),
        row(t('customer.company'), c.company, 'customer-company'),
        row(t('customer.tags'), c.tags.length ? c.tags.map((tag) => h('span', { class: 'chip' }, tag)) : null, 'customer-tags'),
        row(t('customer.crm_id'), c.crm_id ? h('code', {}, c.crm_id) : null, 'customer-crm-id'),
        attributes.map(([key, value]) => row(key, attributeText(value), 'customer-attribute')),
        row(t('customer.since'), formatTime(c.created_at))));
  }

  function editCustomer() {
    const c = detail.customer;
    const name = h('input', { testid: 'customer-edit-name', value: c.name, maxlength: 200 });
    const company = h('input', { testid: 'customer-edit-company', value: c.company, maxlength: 200 });
    const tags = h('input', { testid: 'customer-edit-tags', value: c.tags.join(', ') });
    const crm = h('input', { testid: 'customer-edit-crm-id', value: c.crm_id || '' });
    const attributes = attributeEditor(c.attributes || {});
    formDialog({
      title: t('customer.edit_title', { name: customerName(c) }), testid: 'customer-dialog', wide: true,
      fields: [
        h('div', { class: 'row' }, field(t('customer.name'), name), field(t('customer.company'), company)),
        h('div', { class: 'row' }, field(t('customer.tags'), tags, t('customer.tags_hint')), field(t('customer.crm_id'), crm)),
        h('div', { class: 'field' }, h('span', { class: 'label' }, t('customer.attributes')), attributes.node),
        h('p', { class: 'muted small' }, t('customer.contacts_readonly')),
      ],
      onSubmit: () => api.patch(`/api/v1/customers/${c.id}`, {
        name: name.value.trim(),
        company: company.value.trim(),
        tags: [...new Set(tags.value.split(/[,，]/).map((x) => x.trim()).filter(Boolean))],
        crm_id: crm.value.trim() || null,
        attributes: attributes.values(),
      }),
      onDone: (customer) => {
        detail.customer = customer;
        rememberCustomer(customer);
        toast(t('common.saved'));
        render();
      },
    });
  }

  function renderTimeline() {
    const events = profile ? profile.events : [];
    append(clear(timelineBox), [events.length
      ? h('ol', { class: 'timeline' }, events.map((e) => h('li', { testid: 'customer-event', dataset: { name: e.name } },
        h('div', { class: 'timeline-head' }, h('code', {}, e.name), h('time', { class: 'muted', title: formatTime(e.occurred_at) }, shortTime(e.occurred_at))),
        propertiesText(e.properties) ? h('div', { class: 'muted small' }, propertiesText(e.properties)) : null)))
      : h('p', { class: 'muted' }, t('customer.no_events'))]);
  }

  function renderHistory() {
    append(clear(historyBox), [detail.history.length
      ? h('ul', { class: 'history' }, detail.history.map((c) => h('li', {},
        h('a', {
          href: `/inbox/${c.id}`, testid: 'history-link', dataset: { id: c.id },
          onclick: (event) => {
            if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
            event.preventDefault();
            navigate(`/inbox/${c.id}`);
          },
        }, c.subject || t('inbox.no_subject')),
        h('div', { class: 'history-meta' }, statusBadge(c.status), h('span', { class: 'muted small' }, channelLabel(c.channel_kind), ' · ', shortTime(c.last_message_at))))))
      : h('p', { class: 'muted' }, t('customer.no_history'))]);
  }

  // ------------------------------------------------------------ routing

  /** The type and urgency that count: an employee's correction, else the classifier's reading. */
  function effectiveReading(record) {
    const c = record && record.classification;
    const relabel = record && record.relabel;
    return {
      type: (relabel && relabel.type) || (c && c.type.label) || null,
      urgency: (relabel && relabel.urgency) || (c && c.urgency.level) || 'normal',
    };
  }

  function renderRouting() {
    const error = routingError && !routing ? errorText(routingError) : null;
    const c = detail.conversation;
    renderIfChanged('routing', [routing, error, Boolean(dir), lanes, c.status, c.assignee_id], () => drawRouting(error));
    const reading = effectiveReading(routing && routing.record);
    renderIfChanged('relabel', [routing ? routing.types : null, reading, error], drawRelabel);
  }

  function routingName(employeeId) {
    const known = routing && routing.names && routing.names[employeeId];
    return known || employeeName(dir, employeeId);
  }

  function drawRouting(error) {
    if (error) {
      clear(routingBox).append(h('p', { class: 'form-error', role: 'alert', testid: 'routing-error' }, error));
      return;
    }
    if (!routing) return;
    const r = routing.record;
    const row = (label, value, testid, dataset) => [h('dt', {}, label), h('dd', { testid, dataset }, value)];
    const stateText = routing.state === 'queued'
      ? t('routing.state_queued', { n: routing.queue_position })
      : t.has(`routing.state_${routing.state}`) ? t(`routing.state_${routing.state}`) : routing.state;
    const state = row(t('routing.queue'), stateText, 'routing-state', { state: routing.state, position: routing.queue_position ?? '' });
    if (!r) {
      append(clear(routingBox), [
        handOffActions(EMPTY_RECORD),
        h('p', { class: 'muted', testid: 'routing-not-classified' }, t('routing.not_classified')),
        h('dl', { class: 'details compact' }, state)]);
      return;
    }
    const c = r.classification;
    const reading = effectiveReading(r);
    const relabel = r.relabel;
    const corrected = (what) => (relabel && relabel[what]
      ? h('div', { class: 'muted small', testid: `routing-${what}-corrected` },
        t('routing.corrected', { name: employeeName(dir, relabel.by), time: shortTime(relabel.at) }))
      : null);
    const typeValue = [
      h('span', { class: 'strong' }, typeLabel(reading.type)),
      c && !(relabel && relabel.type) ? h('span', { class: 'muted' }, ' · ', t('routing.confidence', { p: percent(c.type.confidence) })) : null,
      corrected('type'),
      c && relabel && relabel.type && relabel.type !== c.type.label
        ? h('div', { class: 'muted small' }, t('routing.classifier_said', { type: typeLabel(c.type.label), p: percent(c.type.confidence) }))
        : null,
    ];
    const reasons = c ? c.urgency.reasons : [];
    const urgencyValue = [
      urgencyBadge(reading.urgency),
      reasons.length ? h('ul', { class: 'reasons small muted', testid: 'routing-urgency-reasons' }, reasons.map((x) => h('li', {}, urgencyReasonText(x)))) : null,
      corrected('urgency'),
    ];
    const decisions = [...r.decisions].reverse();
    const lane = routing.lane || (r.lane_id !== null && r.lane_id !== undefined ? lanes.find((l) => l.id === r.lane_id) : null);
    const laneValue = r.lane_id === null || r.lane_id === undefined
      ? h('span', { class: 'muted' }, t('lane.none'))
      : [
        h('span', { class: 'strong', testid: 'routing-lane-name' }, lane ? lane.name : laneName(lanes, r.lane_id)),
        h('span', { class: 'muted small' }, ' · ', t('routing.lane_stage', { stage: r.stage + 1, stages: (lane ? lane.stages.length : r.stage) + 1 })),
        r.escalated ? h('span', { class: 'badge warn', testid: 'routing-escalated' }, t('routing.escalated')) : null,
      ];
    append(clear(routingBox), [
      r.transfer ? transferBanner(r) : null,
      handOffActions(r),
      h('dl', { class: 'details compact' },
        row(t('routing.lane'), laneValue, 'routing-lane', { lane: r.lane_id ?? '', stage: r.stage, escalated: String(Boolean(r.escalated)) }),
        row(t('routing.type'), typeValue, 'routing-type', { type: reading.type || '' }),
        row(t('routing.urgency'), urgencyValue, 'routing-urgency', { urgency: reading.urgency }),
        c ? row(t('routing.language'), languageLabel(c.language), 'routing-language', { language: c.language }) : null,
        c && c.keywords.length ? row(t('routing.keywords'), c.keywords.map((k) => h('span', { class: 'chip' }, k)), 'routing-keywords') : null,
        state),
      slaClocks(r),
      handOffHistory(r),
      h('h4', { class: 'side-sub' }, t('routing.decisions')),
      decisions.length
        ? h('div', { class: 'decisions', testid: 'routing-decisions' }, decisions.map((d, i) => decisionNode(d, i === 0)))
        : h('p', { class: 'muted', testid: 'routing-no-decisions' }, t('routing.no_decisions')),
      r.decision_count > r.decisions.length
        ? h('p', { class: 'muted small' }, t('routing.older_decisions', { n: r.decision_count - r.decisions.length }))
        : null]);
  }

  /** Who handed a conversation on: an employee, or routing itself (an SLA escalation). */
  function byText(by) {
    return by === null || by === undefined ? t('handoff.by_routing') : t('handoff.by', { name: routingName(by) });
  }

  function noteNode(note) {
    return note ? h('blockquote', { class: 'handoff-note', testid: 'handoff-note' }, handOffNoteText(note)) : null;
  }

  /** Whether a transfer is the hand-off of an escalation (both are recorded at the same time). */
  function escalationOf(record, transfer) {
    return record.escalations.find((e) => e.at === transfer.at && e.to_lane === transfer.to_lane && transfer.to_employee === null) || null;
  }

  function transferTarget(transfer) {
    return transfer.to_employee !== null && transfer.to_employee !== undefined
      ? routingName(transfer.to_employee)
      : laneName(lanes, transfer.to_lane);
  }

  /** The owner before the newest escalation, when the conversation could go back to them. */
  function returnTarget(record) {
    const previous = [...record.escalations].reverse().find((e) => e.previous_owner !== null && e.previous_owner !== undefined);
    return previous && previous.previous_owner !== detail.conversation.assignee_id ? previous.previous_owner : null;
  }

  function transferBanner(record) {
    const transfer = record.transfer;
    const escalation = escalationOf(record, transfer);
    const cancel = can('conversations.transfer')
      ? button(t('handoff.cancel'), { class: 'small', testid: 'routing-cancel-transfer', onclick: () => cancelTransfer(cancel) })
      : null;
    return h('div', {
      class: 'banner info handoff-waiting', role: 'status', testid: 'routing-transfer-waiting',
      dataset: { kind: escalation ? 'escalation' : 'transfer', mode: transfer.mode, lane: transfer.to_lane ?? '', employee: transfer.to_employee ?? '' },
    },
    h('div', { class: 'strong' }, t(escalation ? 'handoff.escalation_waiting' : 'handoff.transfer_waiting', { target: transferTarget(transfer) })),
    h('div', { class: 'small' }, escalation ? null : [t(`handoff.mode_${transfer.mode}`), ' · '], byText(transfer.by), ' · ', shortTime(transfer.at)),
    noteNode(transfer.note),
    cancel ? h('div', { class: 'handoff-bar' }, h('small', {}, t('handoff.owner_keeps')), cancel) : null);
  }

  function handOffActions(record) {
    if (!can('conversations.transfer') || detail.conversation.status !== 'open' || record.transfer) return null;
    const previous = returnTarget(record);
    return h('div', { class: 'handoff-actions', testid: 'routing-actions' },
      button(t('handoff.escalate'), { class: 'small', testid: 'routing-escalate', onclick: escalateDialog }),
      button(t('handoff.transfer'), { class: 'small', testid: 'routing-transfer', onclick: transferDialog }),
      previous !== null ? button(t('handoff.return'), {
        class: 'small', testid: 'routing-return', title: t('handoff.return_to', { name: routingName(previous) }),
        onclick: () => returnDialog(previous),
      }) : null);
  }

  /** The SLA clocks now: kind, level, due in or overdue by, paused or stopped. */
  function slaClocks(record) {
    const clocks = routing.sla || [];
    if (!clocks.length) return null;
    const paused = record.sla && record.sla.paused_since !== null && record.sla.paused_since !== undefined;
    return [
      h('h4', { class: 'side-sub' }, t('sla.title')),
      h('ul', { class: 'sla-clocks', testid: 'routing-sla' }, clocks.map((c) => {
        let when;
        if (c.stopped_at !== null && c.stopped_at !== undefined) {
          when = h('span', { class: 'muted small', testid: 'sla-clock-when', dataset: { state: 'stopped' } }, t('sla.stopped', { time: shortTime(c.stopped_at) }));
        } else if (paused) {
          when = h('span', { class: 'muted small', testid: 'sla-clock-when', dataset: { state: 'paused' } }, t('sla.paused'));
        } else if (c.due_at === null || c.due_at === undefined) {
          when = h('span', { class: 'muted small', testid: 'sla-clock-when', dataset: { state: 'closed' } }, t('sla.never_open'));
        } else {
          when = h('span', {
            class: ['small', c.due_at < Date.now() && 'overdue'], testid: 'sla-clock-when', title: formatTime(c.due_at),
            dataset: { state: 'running', due: c.due_at },
          }, dueText(c.due_at));
        }
        return h('li', { testid: 'routing-sla-clock', dataset: { kind: c.kind, level: c.level } },
          h('span', { class: 'sla-kind' }, clockLabel(c.kind)),
          levelBadge(c.level, 'sla-clock-level'),
          when,
          h('span', { class: 'muted small sla-target' }, t('sla.target', { time: targetText(Math.round(c.target_ms / 1000)) })));
      })),
    ];
  }

  /** Escalations and transfers, newest first, each with its outcome and note. */
  function handOffHistory(record) {
    const transfers = [...record.past_transfers, ...(record.transfer ? [record.transfer] : [])];
    const items = [];
    const merged = new Set();
    for (const e of record.escalations) {
      const transfer = transfers.find((x) => !merged.has(x) && x.at === e.at && x.to_lane === e.to_lane && x.to_employee === null);
      if (transfer) merged.add(transfer);
      items.push({
        kind: 'escalation', at: e.at, by: e.by, note: e.note,
        outcome: transfer ? transfer.outcome || 'waiting' : null,
        title: e.from_lane !== null && e.from_lane !== undefined
          ? t('handoff.escalated_from_to', { from: laneName(lanes, e.from_lane), to: laneName(lanes, e.to_lane) })
          : t('handoff.escalated_to', { to: laneName(lanes, e.to_lane) }),
      });
    }
    for (const x of transfers) {
      if (merged.has(x)) continue;
      const returned = x.to_employee !== null && x.to_lane === null
        && record.escalations.some((e) => e.at < x.at && e.previous_owner === x.to_employee);
      items.push({
        kind: returned ? 'return' : 'transfer', at: x.at, by: x.by, note: x.note, outcome: x.outcome || 'waiting', mode: x.mode,
        title: returned ? t('handoff.returned_to', { name: transferTarget(x) }) : t('handoff.transferred_to', { target: transferTarget(x) }),
      });
    }
    if (!items.length) return null;
    items.sort((a, b) => b.at - a.at);
    const outcomeClass = { accepted: 'ok', waiting: 'info', declined: 'warn', expired: 'warn', cancelled: '' };
    return [
      h('h4', { class: 'side-sub' }, t('handoff.history')),
      h('ol', { class: 'handoffs', testid: 'routing-handoffs' }, items.map((item) => h('li', {
        class: 'handoff', testid: 'routing-handoff', dataset: { kind: item.kind, outcome: item.outcome || '' },
      },
      h('div', { class: 'handoff-head' },
        h('span', { class: 'strong', testid: 'handoff-title' }, item.title),
        h('span', { class: ['badge', item.kind === 'escalation' ? 'warn' : 'info'], testid: 'handoff-kind' }, t(`handoff.kind_${item.kind}`)),
        item.outcome ? h('span', { class: ['badge', outcomeClass[item.outcome]], testid: 'handoff-outcome' }, t(`handoff.outcome_${item.outcome}`)) : null),
      h('div', { class: 'muted small' },
        item.kind === 'transfer' ? [t(`handoff.mode_${item.mode}`), ' · '] : null, byText(item.by), ' · ', shortTime(item.at)),
      noteNode(item.note)))),
    ];
  }

  async function afterHandOff(message) {
    toast(message);
    await loadRouting();
    refreshSoon();
  }

  function escalateDialog() {
    const record = routing.record || EMPTY_RECORD;
    const current = lanes.find((l) => l.id === record.lane_id) || routing.lane;
    const next = current && current.escalate_to !== null && current.escalate_to !== undefined
      ? lanes.find((l) => l.id === current.escalate_to) || null
      : null;
    const options = [['', next ? t('escalate.next', { name: next.name }) : t('escalate.no_path')],
      ...lanes.filter((l) => l.enabled && l.id !== record.lane_id && (!next || l.id !== next.id)).map((l) => [l.id, l.name])];
    const lane = select(options, { testid: 'escalate-lane' });
    const note = h('textarea', { rows: 4, testid: 'escalate-note', maxlength: 4000, placeholder: t('escalate.note_placeholder') });
    formDialog({
      title: t('escalate.title'), testid: 'escalate-dialog', submitLabel: t('handoff.escalate'),
      fields: [
        current ? h('p', { class: 'muted' }, t('escalate.from', { name: current.name })) : null,
        field(t('escalate.lane'), lane, t('escalate.lane_hint')),
        field(t('handoff.note'), note, t('escalate.note_hint')),
      ],
      onSubmit: () => {
        if (!note.value.trim()) throw { code: 'client', message: '', text: t('escalate.note_required') };
        const body = { note: note.value.trim() };
        if (lane.value) body.lane_id = Number(lane.value);
        return api.post(`/api/v1/conversations/${id}/escalate`, body);
      },
      onDone: (record) => afterHandOff(t('escalate.done', { name: laneName(lanes, record.lane_id) })),
    });
  }

  /** People a conversation may be transferred to: routing's view with presence, else the directory. */
  async function transferPeople() {
    const owner = detail.conversation.assignee_id;
    let people = null;
    if (can('routing.monitor')) {
      try {
        people = (await api.list('/api/v1/routing/agents')).map((a) => ({
          id: a.employee_id, name: a.display_name, username: a.username, presence: a.settings.presence,
        }));
      } catch { /* the directory below */ }
    }
    if (!people) {
      const directory = await loadDirectory();
      people = [...directory.employees.values()].filter((e) => !e.disabled)
        .map((e) => ({ id: e.id, name: e.display_name, username: e.username, presence: null }));
    }
    const online = (p) => (p.presence === 'online' ? 0 : 1);
    return people.filter((p) => p.id !== owner).sort((a, b) => online(a) - online(b) || a.name.localeCompare(b.name));
  }

  async function transferDialog(event) {
    const trigger = event && event.currentTarget;
    let people;
    try {
      people = trigger ? await busy(trigger, transferPeople) : await transferPeople();
    } catch (err) {
      toast(errorText(err), 'error');
      return;
    }
    const targets = lanes.filter((l) => l.enabled);
    const radio = (name, value, label, testid, checked) => h('label', { class: 'check' },
      h('input', { type: 'radio', name, value, testid, checked }), h('span', {}, label));
    const group = nextId('target');
    const toLane = radio(group, 'lane', t('transfer.to_lane'), 'transfer-target-lane', targets.length > 0);
    const toPerson = radio(group, 'person', t('transfer.to_person'), 'transfer-target-person', !targets.length);
    const lane = select(targets.map((l) => [l.id, l.name]), { testid: 'transfer-lane', value: (routing.record || EMPTY_RECORD).lane_id ?? undefined });
    const person = select(people.length
      ? people.map((p) => [p.id, [p.name, p.username ? ` (${p.username})` : '', p.presence ? ` · ${presenceLabel(p.presence)}` : ''].join('')])
      : [['', t('transfer.nobody')]], { testid: 'transfer-employee' });
    const laneField = field(t('transfer.lane'), lane);
    const personField = field(t('transfer.person'), person);
    const modes = nextId('mode');
    const warm = radio(modes, 'warm', t('handoff.mode_warm'), 'transfer-mode-warm', true);
    const blind = radio(modes, 'blind', t('handoff.mode_blind'), 'transfer-mode-blind', false);
    const note = h('textarea', { rows: 3, testid: 'transfer-note', maxlength: 4000, placeholder: t('transfer.note_placeholder') });
    const sync = () => {
      const byLane = toLane.querySelector('input').checked;
      laneField.hidden = !byLane;
      personField.hidden = byLane;
    };
    toLane.querySelector('input').addEventListener('change', sync);
    toPerson.querySelector('input').addEventListener('change', sync);
    sync();
    formDialog({
      title: t('transfer.title'), testid: 'transfer-dialog', submitLabel: t('handoff.transfer'),
      fields: [
        h('fieldset', { class: 'group' }, h('legend', {}, t('transfer.to')),
          h('div', { class: 'check-row' }, toLane, toPerson), laneField, personField),
        h('fieldset', { class: 'group' }, h('legend', {}, t('transfer.mode')),
          h('div', { class: 'check-row' }, warm, blind),
          h('small', { class: 'hint muted' }, t('transfer.mode_hint'))),
        field(t('handoff.note'), note, t('transfer.note_hint')),
      ],
      onSubmit: () => {
        const body = { mode: blind.querySelector('input').checked ? 'blind' : 'warm', note: note.value.trim() };
        if (toLane.querySelector('input').checked) {
          if (!lane.value) throw { code: 'client', message: '', text: t('transfer.pick_lane') };
          body.lane_id = Number(lane.value);
        } else {
          if (!person.value) throw { code: 'client', message: '', text: t('transfer.pick_person') };
          body.employee_id = Number(person.value);
        }
        return api.post(`/api/v1/conversations/${id}/transfer`, body);
      },
      onDone: (record) => afterHandOff(t('transfer.done', { target: record.transfer ? transferTarget(record.transfer) : '' })),
    });
  }

  function returnDialog(previous) {
    const note = h('textarea', { rows: 3, testid: 'return-note', maxlength: 4000, placeholder: t('return.note_placeholder') });
    formDialog({
      title: t('return.title', { name: routingName(previous) }), testid: 'return-dialog', submitLabel: t('handoff.return'),
      fields: [h('p', { class: 'muted' }, t('return.explain', { name: routingName(previous) })), field(t('handoff.note'), note)],
      onSubmit: () => api.post(`/api/v1/conversations/${id}/return`, { note: note.value.trim() }),
      onDone: () => afterHandOff(t('return.done', { name: routingName(previous) })),
    });
  }

  async function cancelTransfer(btn) {
    if (!await confirmDialog(t('handoff.cancel_confirm'), { confirmLabel: t('handoff.cancel'), danger: false })) return;
    try {
      await busy(btn, () => api.del(`/api/v1/conversations/${id}/transfer`));
      await afterHandOff(t('handoff.cancelled'));
    } catch (err) {
      toast(errorText(err), 'error');
      loadRouting();
    }
  }

  function decisionNode(d, open) {
    const outcome = d.outcome || 'open';
    return h('details', {
      class: 'decision', open, testid: 'routing-decision',
      dataset: { offer: d.offer_id, employee: d.employee_id, outcome },
    },
    h('summary', {},
      h('span', { class: 'strong', testid: 'decision-employee' }, t('routing.offered_to', { name: routingName(d.employee_id) })),
      h('span', { class: ['badge', 'outcome', outcome === 'accepted' ? 'ok' : outcome === 'open' ? 'info' : ''], testid: 'decision-outcome' }, outcomeLabel(d.outcome)),
      h('span', { class: 'muted small' }, ' ', shortTime(d.offered_at), ' · ', t('routing.score_short', { score: number(d.decision.chosen.score) }))),
    decisionDetails(d.decision, routingName));
  }

  function drawRelabel() {
    clear(relabelBox);
    if (!routing || !can('conversations.reply')) return;
    const reading = effectiveReading(routing.record);
    const types = [...routing.types];
    if (reading.type && !types.includes(reading.type)) types.push(reading.type);
    const typeOptions = types.map((x) => [x, typeLabel(x)]);
    if (!reading.type) typeOptions.unshift(['', t('routing.type_none')]);
    const type = select(typeOptions, { value: reading.type || '', testid: 'relabel-type' });
    const urgency = select(URGENCIES.map((u) => [u, urgencyLabel(u)]), { value: reading.urgency, testid: 'relabel-urgency' });
    const error = h('p', { class: 'form-error', role: 'alert', testid: 'relabel-error', hidden: true });
    const save = button(t('routing.relabel_save'), {
      class: 'small', testid: 'relabel-save',
      onclick: async () => {
        error.hidden = true;
        const body = { urgency: urgency.value };
        if (type.value) body.type = type.value;
        try {
          await busy(save, () => api.put(`/api/v1/conversations/${id}/classification`, body));
          toast(t('routing.relabelled'));
          await loadRouting();
          // A higher urgency raises the conversation's priority.
          refreshSoon();
        } catch (err) {
          error.textContent = errorText(err);
          error.hidden = false;
        }
      },
    });
    relabelBox.append(h('div', { class: 'relabel' },
      h('h4', { class: 'side-sub' }, t('routing.relabel')),
      h('div', { class: 'relabel-fields' }, field(t('routing.type'), type), field(t('routing.urgency'), urgency)),
      error,
      h('div', { class: 'relabel-bar' }, h('small', { class: 'muted' }, t('routing.relabel_hint')), save)));
  }

  // ------------------------------------------------------------ live updates

  function onEvent(data) {
    if (typeof data.type === 'string' && data.type.startsWith('routing.')) {
      const about = data.offer ? data.offer.conversation_id : data.conversation_id;
      if (about === id) routingSoon();
      return;
    }
    const c = data.conversation;
    if (!c || !detail) return;
    if (data.type === 'typing') {
      const typist = data.typist || {};
      const mine = me();
      if (c.id === id && !(typist.kind === 'employee' && mine && typist.employee_id === mine.id)) {
        showTyping(typist.kind === 'customer' ? customerName(detail.customer) : typist.name || t('inbox.employee_n', { id: typist.employee_id }));
      }
      return;
    }
    if (c.id !== id) {
      const index = detail.history.findIndex((x) => x.id === c.id);
      if (index >= 0) {
        detail.history[index] = c;
        renderIfChanged('history', detail.history, renderHistory);
      } else if (c.customer_id === detail.customer.id) {
        refreshSoon();
      }
      return;
    }
    // Read marks only move forward: a snapshot another writer published late may predate one.
    for (const mark of ['customer_read_up_to', 'employee_read_up_to']) {
      c[mark] = Math.max(c[mark] || 0, detail.conversation[mark] || 0);
    }
    if (c.updated_at >= detail.conversation.updated_at) detail.conversation = c;
    else {
      detail.conversation.customer_read_up_to = c.customer_read_up_to;
      detail.conversation.employee_read_up_to = c.employee_read_up_to;
    }
    if (data.type === 'conversation.updated') routingSoon();
    if (data.type === 'message.created' && data.message) addMessage(data.message);
    if (data.type === 'message.updated' && data.message) {
      // A delivery state changed (sent, failed, queued again).
      const index = detail.messages.findIndex((m) => m.id === data.message.id);
      if (index >= 0) detail.messages[index] = data.message;
      else addMessage(data.message);
    }
    render();
    // Something was missed (e.g. a system message recorded with a change): fetch it all.
    if (c.message_count > detail.messages.length) refreshSoon();
  }

  root.append(h('section', { class: 'conv-page' },
    h('div', { class: 'conv-main' },
      h('div', { class: 'conv-top' }, backLink, head),
      messages,
      typing,
      can('conversations.reply') ? composer.form : h('p', { class: 'muted read-only-note' }, t('conversation.read_only'))),
    h('aside', { class: 'conv-side', 'aria-label': t('conversation.details') },
      h('section', { class: 'side-card' }, h('h3', {}, t('conversation.handling')), actionError, actions),
      h('section', { class: 'side-card', testid: 'routing-card' }, h('h3', {}, t('routing.panel')), routingBox, relabelBox),
      h('section', { class: 'side-card', testid: 'participants-card' }, h('h3', {}, t('conversation.participants')), participantsBox),
      h('section', { class: 'side-card' }, h('h3', {}, t('customer.title')), customerBox),
      can('customers.read') ? h('section', { class: 'side-card' }, h('h3', {}, t('customer.timeline')), timelineBox) : null,
      h('section', { class: 'side-card' }, h('h3', {}, t('customer.other_conversations')), historyBox))));
  try {
    await load();
  } catch (err) {
    if (err && err.status === 404) {
      clear(root).append(h('section', { class: 'page' }, backLink,
        h('p', { class: 'form-error', role: 'alert', testid: 'view-error' }, t('conversation.not_found'))));
      return;
    }
    throw err;
  }
  if (!profile) renderTimeline();
  if (can('conversations.reply')) composer.assist.refresh();
  watch(root, { onEvent, refresh: () => load() });
  // SLA deadlines move every second between fetches.
  const slaTicker = setInterval(() => {
    if (!root.isConnected) {
      clearInterval(slaTicker);
      return;
    }
    const now = Date.now();
    for (const node of routingBox.querySelectorAll('[data-due]')) {
      const due = Number(node.dataset.due);
      node.textContent = dueText(due, now);
      node.classList.toggle('overdue', due < now);
    }
  }, 1000);
}

function attributeText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function propertiesText(properties) {
  if (!properties || typeof properties !== 'object') return properties === null || properties === undefined ? '' : String(properties);
  return Object.entries(properties).map(([k, v]) => `${k}: ${attributeText(v)}`).join(' · ');
}

/** `YYYY-MM-DDTHH:MM` in local time, for a datetime-local input. */
function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/**
 * Rows of key and value inputs for a customer's custom attributes. Values that are not text
 * (numbers, flags, lists) keep their type unless their text is changed.
 */
function attributeEditor(attributes) {
  const rows = [];
  const list = h('div', { class: 'attr-rows', testid: 'customer-attributes' });
  function addRow(key = '', original) {
    const shown = original === undefined ? '' : attributeText(original);
    const keyInput = h('input', { value: key, testid: 'attribute-key', placeholder: t('customer.attribute_key'), 'aria-label': t('customer.attribute_key') });
    const valueInput = h('input', { value: shown, testid: 'attribute-value', placeholder: t('customer.attribute_value'), 'aria-label': t('customer.attribute_value') });
    const entry = { keyInput, valueInput, original, shown };
    const node = h('div', { class: 'attr-row' }, keyInput, valueInput,
      button('×', { class: 'icon', 'aria-label': t('customer.attribute_remove'), testid: 'attribute-remove', onclick: () => { node.remove(); rows.splice(rows.indexOf(entry), 1); } }));
    rows.push(entry);
    list.append(node);
    return entry;
  }
  for (const [key, value] of Object.entries(attributes)) addRow(key, value);
  const add = button(t('customer.attribute_add'), { class: 'small', testid: 'attribute-add', onclick: () => addRow().keyInput.focus() });
  return {
    node: h('div', {}, list, add),
    values() {
      const out = {};
      for (const { keyInput, valueInput, original, shown } of rows) {
        const key = keyInput.value.trim();
        const text = valueInput.value;
        if (!key && !text.trim()) continue;
        if (!key) throw { code: 'client', message: '', text: t('customer.attribute_needs_key') };
        if (Object.prototype.hasOwnProperty.call(out, key)) throw { code: 'client', message: '', text: t('customer.attribute_twice', { key }) };
        out[key] = original !== undefined && text === shown ? original : text;
      }
      return out;
    },
  };
}
