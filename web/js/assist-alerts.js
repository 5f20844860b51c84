// Assist's live warnings, whatever view is shown. The console socket sends
// {"type":"assist.alert", kind, conversation_id, message_id, excerpt, details} to supervisors
// (routing.monitor) and {"type":"assist.hint", ...} to the conversation's owner, with kind
// `angry_customer`, `sensitive_incoming` or `rude_reply`. Each becomes a toast that opens
// /inbox/{conversation_id}; one who gets both frames of a message sees one toast.

import { h, toast } from './dom.js';
import { t } from './i18n.js';
import { subscribe } from './live.js';

const KINDS = ['angry_customer', 'sensitive_incoming', 'rude_reply'];
/** Set while the console's shell is shown: opens a conversation. */
let navigateTo = null;
/** `kind:message_id` of the toasts already shown. */
const seen = new Set();

/** Called by the shell with its `navigate(path)`. */
export function assistAlerts({ navigate }) {
  navigateTo = navigate;
}

export function forgetAssistAlerts() {
  navigateTo = null;
  seen.clear();
}

function words(details) {
  const matches = (details && details.matches) || [];
  return [...new Set(matches.map((m) => m.text || m.word))].join(t('assist.list_separator'));
}

subscribe((data) => {
  if (!navigateTo || (data.type !== 'assist.alert' && data.type !== 'assist.hint') || !KINDS.includes(data.kind)) return;
  const once = `${data.kind}:${data.message_id}`;
  if (seen.has(once)) return;
  seen.add(once);
  if (seen.size > 500) seen.delete(seen.values().next().value);
  const id = data.conversation_id;
  const mine = data.type === 'assist.hint';
  const text = data.kind === 'angry_customer' ? t(mine ? 'assist.hint_angry' : 'assist.alert_angry', { id })
    : data.kind === 'sensitive_incoming' ? t('assist.alert_sensitive', { id, words: words(data.details) })
      : t(mine ? 'assist.hint_rude' : 'assist.alert_rude', { id });
  const path = `/inbox/${id}`;
  const link = h('a', {
    href: path, class: 'assist-toast', testid: 'assist-toast',
    dataset: { kind: data.kind, conversation: id, frame: data.type },
    onclick: (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      const item = link.closest('.toast');
      if (item) item.remove();
      if (navigateTo) navigateTo(path);
    },
  },
  h('span', { class: 'assist-toast-text' }, text),
  data.excerpt ? h('span', { class: 'assist-toast-excerpt' }, t('assist.excerpt', { excerpt: data.excerpt })) : null,
  h('span', { class: 'assist-toast-open' }, t('assist.open_conversation')));
  // 'warn', not 'error': these are news about a conversation, not a failure of the console.
  toast(link, 'warn');
});
