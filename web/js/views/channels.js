// Channels: where customers' messages come from. For now only API channels can be added: an app
// posts signed messages to the channel's inbound address; the signing secret is shown once.
// Below them, replies that could not be delivered (dead letters), which can be sent again.

import { h, clear, button, field, table, formDialog, secretDialog, confirmDialog, toast, errorText, menu, busy } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { formatTime } from '../state.js';
import { channelLabel } from './inbox-common.js';
import { emailChannelDialog, emailStatus } from './channel-email.js';

export async function mount(root, { navigate }) {
  const list = h('div', { testid: 'channel-list' });
  const deadList = h('div', { testid: 'dead-letter-list' });

  async function load() {
    const [items, dead] = await Promise.all([api.list('/api/v1/channels'), api.list('/api/v1/dead-letters')]);
    items.sort((a, b) => a.id - b.id);
    clear(list).append(renderTable(items));
    clear(deadList).append(renderDeadLetters(dead, new Map(items.map((c) => [c.id, c.name]))));
  }

  function renderDeadLetters(dead, channelName) {
    dead.sort((a, b) => b.failed_at - a.failed_at);
    const rows = dead.map((d) => h('tr', { testid: 'dead-letter-row', dataset: { id: d.item.id, message: d.item.message_id } },
      h('td', { class: 'nowrap' }, formatTime(d.failed_at)),
      h('td', {}, channelName.get(d.item.channel_id) || t('channels.number', { id: d.item.channel_id })),
      h('td', {}, h('a', {
        href: `/inbox/${d.item.conversation_id}`, testid: 'dead-letter-conversation',
        onclick: (event) => {
          if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
          event.preventDefault();
          navigate(`/inbox/${d.item.conversation_id}`);
        },
      }, t('conversation.number', { id: d.item.conversation_id }))),
      h('td', { class: 'num' }, String(d.item.attempts)),
      h('td', { testid: 'dead-letter-reason' }, d.reason),
      h('td', { class: 'actions' }, button(t('channels.retry'), {
        class: 'small', testid: 'dead-letter-retry',
        onclick: async (event) => {
          try {
            await busy(event.currentTarget, () => api.post(`/api/v1/dead-letters/${d.item.id}/retry`));
            toast(t('channels.retried'));
            reload();
          } catch (err) {
            toast(errorText(err), 'error');
          }
        },
      }))));
    return table([t('channels.failed_at'), t('channels.name'), t('channels.conversation'), t('channels.attempts'),
      t('channels.reason'), h('span', { class: 'sr-only' }, t('common.actions'))], rows, { testid: 'dead-letter-table' });
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function inboundUrl(c) {
    return `${location.origin}/api/v1/channels/${c.id}/inbound`;
  }

  function renderTable(items) {
    const rows = items.map((c) => h('tr', { testid: 'channel-row', dataset: { id: c.id, name: c.name, enabled: String(c.enabled) }, class: c.enabled ? undefined : 'disabled' },
      h('td', {}, h('div', { class: 'strong' }, c.name), h('span', { class: 'muted small' }, t('channels.number', { id: c.id }))),
      h('td', {}, channelLabel(c.kind)),
      h('td', { class: 'url' }, c.kind === 'api' ? h('code', { testid: 'channel-inbound-url' }, inboundUrl(c)) : c.kind === 'email' ? h('code', {}, c.settings.imap_username) : '—'),
      h('td', { class: 'url' }, c.kind === 'email' ? emailStatus(c) : c.settings && c.settings.webhook_url ? h('code', {}, c.settings.webhook_url) : h('span', { class: 'muted' }, t('channels.no_webhook'))),
      h('td', {}, h('span', { class: ['badge', c.enabled ? 'ok' : 'off'], testid: 'channel-status' }, c.enabled ? t('channels.enabled') : t('channels.disabled'))),
      h('td', { class: 'nowrap' }, formatTime(c.created_at)),
      h('td', { class: 'actions' }, menu(t('common.actions'), [
        [t('common.edit'), () => (c.kind === 'email' ? emailChannelDialog(c, () => { toast(t('common.saved')); reload(); }) : editDialog(c)), 'channel-edit'],
        c.enabled ? [t('channels.disable'), () => setEnabled(c, false), 'channel-disable', true] : [t('channels.enable'), () => setEnabled(c, true), 'channel-enable'],
        c.kind === 'api' ? [t('channels.rotate'), () => rotate(c), 'channel-rotate'] : null,
      ], { testid: 'channel-actions', ariaLabel: t('channels.actions_for', { name: c.name }) }))));
    return table([t('channels.name'), t('channels.kind'), t('channels.inbound_url'), t('channels.webhook_url'), t('channels.status'),
      t('channels.created'), h('span', { class: 'sr-only' }, t('common.actions'))], rows, { testid: 'channel-table' });
  }

  function fields(c) {
    const name = h('input', { testid: 'channel-name', required: true, maxlength: 100, value: c ? c.name : '', placeholder: t('channels.name_placeholder') });
    const webhook = h('input', { type: 'url', testid: 'channel-webhook', value: c && c.settings ? c.settings.webhook_url || '' : '', placeholder: 'https://' });
    return {
      nodes: [field(t('channels.name'), name), field(t('channels.webhook_url'), webhook, t('channels.webhook_hint'))],
      values: () => {
        const url = webhook.value.trim();
        return { name: name.value.trim(), settings: url ? { webhook_url: url } : {} };
      },
    };
  }

  function showSecret(created, title) {
    secretDialog({
      title,
      explanation: t('channels.secret_text', { name: created.channel.name, url: inboundUrl(created.channel) }),
      secret: created.signing_secret,
    });
  }

  function createDialog() {
    const f = fields(null);
    formDialog({
      title: t('channels.new_api'), testid: 'channel-dialog', submitLabel: t('common.create'),
      fields: [h('p', { class: 'muted' }, t('channels.api_intro')), ...f.nodes],
      onSubmit: () => api.post('/api/v1/channels', { kind: 'api', ...f.values() }),
      onDone: (created) => {
        reload();
        if (created.signing_secret) showSecret(created, t('channels.created_title'));
        else toast(t('channels.created_done', { name: created.channel.name }));
      },
    });
  }

  function editDialog(c) {
    const f = fields(c);
    formDialog({
      title: t('channels.edit_title', { name: c.name }), testid: 'channel-dialog',
      fields: f.nodes,
      onSubmit: () => api.patch(`/api/v1/channels/${c.id}`, f.values()),
      onDone: () => { toast(t('common.saved')); reload(); },
    });
  }

  async function setEnabled(c, enabled) {
    if (!enabled && !await confirmDialog(t('channels.disable_confirm', { name: c.name }), { confirmLabel: t('channels.disable') })) return;
    try {
      await api.patch(`/api/v1/channels/${c.id}`, { enabled });
      toast(enabled ? t('channels.enabled_done', { name: c.name }) : t('channels.disabled_done', { name: c.name }));
      reload();
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  async function rotate(c) {
    if (!await confirmDialog(t('channels.rotate_confirm', { name: c.name }), { confirmLabel: t('channels.rotate') })) return;
    try {
      const rotated = await api.post(`/api/v1/channels/${c.id}/rotate-secret`);
      showSecret(rotated, t('channels.rotated_title'));
      reload();
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' },
      h('h1', {}, t('nav.channels')),
      h('div', { class: 'row' },
        button(t('email.new'), { testid: 'channel-new-email', onclick: () => emailChannelDialog(null, (created) => { toast(t('channels.created_done', { name: created.channel.name })); reload(); }) }),
        button(t('channels.new_api'), { class: 'primary', testid: 'channel-new', onclick: createDialog }))),
    h('p', { class: 'muted' }, t('channels.intro')),
    list,
    h('div', { class: 'page-head sub' }, h('h2', {}, t('channels.dead_letters'))),
    h('p', { class: 'muted' }, t('channels.dead_letters_intro')),
    deadList));
  await load();
}
