// Channels: where customers' messages come from. Two kinds can be added here: an API channel (an
// app posts signed messages to the channel's inbound address; the signing secret is shown once)
// and a web channel (the chat widget a site embeds with one script tag; its identity secret, shown
// once, lets the site's server sign the ids of signed-in users, docs/widget.md).
// Below them, replies that could not be delivered (dead letters), which can be sent again.

import { h, clear, button, field, select, table, openDialog, formDialog, secretDialog, confirmDialog, toast, errorText, menu, busy } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { formatTime } from '../state.js';
import { channelLabel } from './inbox-common.js';
import { emailChannelDialog, emailStatus } from './channel-email.js';

export async function mount(root, { navigate }) {
  const list = h('div', { testid: 'channel-list' });
  const deadList = h('div', { testid: 'dead-letter-list' });

  // E-mail channels, offered as a web chat's fallback for replies to visitors who left.
  let emailChannels = [];

  async function load() {
    const [items, dead] = await Promise.all([api.list('/api/v1/channels'), api.list('/api/v1/dead-letters')]);
    items.sort((a, b) => a.id - b.id);
    emailChannels = items.filter((c) => c.kind === 'email');
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

  function embedSnippet(c) {
    return `<script src="${location.origin}/widget.js" data-channel="${c.id}" async></script>`;
  }

  /** The embed code of a web channel, with a button that copies it. */
  function embedBox(c) {
    const code = h('code', { testid: 'channel-embed' }, embedSnippet(c));
    const copy = button(t('common.copy'), {
      class: 'small', testid: 'channel-embed-copy', 'aria-label': t('channels.embed_copy', { name: c.name }),
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(embedSnippet(c));
          copy.textContent = t('common.copied');
        } catch {
          const range = document.createRange();
          range.selectNodeContents(code);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          copy.textContent = t('common.copy_manually');
        }
      },
    });
    return h('div', { class: 'embed' }, code, copy);
  }

  function connection(c) {
    if (c.kind === 'api') return h('code', { testid: 'channel-inbound-url' }, inboundUrl(c));
    if (c.kind === 'web') return embedBox(c);
    if (c.kind === 'email') return h('code', {}, c.settings.imap_username);
    return '—';
  }

  function replyTarget(c) {
    if (c.kind === 'email') return emailStatus(c);
    if (c.kind === 'web') {
      const origins = c.settings && Array.isArray(c.settings.allowed_origins) ? c.settings.allowed_origins : [];
      return h('span', { class: origins.length ? undefined : 'muted', testid: 'channel-origins-text' },
        origins.length ? t('channels.origins_list', { origins: origins.join(', ') }) : t('channels.origins_any'));
    }
    return c.settings && c.settings.webhook_url ? h('code', {}, c.settings.webhook_url) : h('span', { class: 'muted' }, t('channels.no_webhook'));
  }

  const hasSecret = (c) => c.kind === 'api' || c.kind === 'web';

  function renderTable(items) {
    const rows = items.map((c) => h('tr', { testid: 'channel-row', dataset: { id: c.id, name: c.name, enabled: String(c.enabled) }, class: c.enabled ? undefined : 'disabled' },
      h('td', {}, h('div', { class: 'strong' }, c.name), h('span', { class: 'muted small' }, t('channels.number', { id: c.id }))),
      h('td', {}, channelLabel(c.kind)),
      h('td', { class: 'url' }, connection(c)),
      h('td', { class: 'url' }, replyTarget(c)),
      h('td', {}, h('span', { class: ['badge', c.enabled ? 'ok' : 'off'], testid: 'channel-status' }, c.enabled ? t('channels.enabled') : t('channels.disabled'))),
      h('td', { class: 'nowrap' }, formatTime(c.created_at)),
      h('td', { class: 'actions' }, menu(t('common.actions'), [
        [t('common.edit'), () => (c.kind === 'email' ? emailChannelDialog(c, () => { toast(t('common.saved')); reload(); }) : editDialog(c)), 'channel-edit'],
        c.enabled ? [t('channels.disable'), () => setEnabled(c, false), 'channel-disable', true] : [t('channels.enable'), () => setEnabled(c, true), 'channel-enable'],
        hasSecret(c) ? [c.kind === 'web' ? t('channels.rotate_identity') : t('channels.rotate'), () => rotate(c), 'channel-rotate'] : null,
      ], { testid: 'channel-actions', ariaLabel: t('channels.actions_for', { name: c.name }) }))));
    return table([t('channels.name'), t('channels.kind'), t('channels.connection'), t('channels.replies_to'), t('channels.status'),
      t('channels.created'), h('span', { class: 'sr-only' }, t('common.actions'))], rows, { testid: 'channel-table' });
  }

  /** The name and, per kind, the settings of a channel; `c` is null for a new one. */
  function fields(c, kind) {
    const name = h('input', { testid: 'channel-name', required: true, maxlength: 100, value: c ? c.name : '', placeholder: t('channels.name_placeholder') });
    const settings = (c && c.settings) || {};
    const apiFields = apiSettings(settings);
    const webFields = webSettings(settings);
    const apiBox = h('div', { class: 'form', testid: 'channel-api-settings' }, h('p', { class: 'muted' }, t('channels.api_intro')), apiFields.nodes);
    const webBox = h('div', { class: 'form', testid: 'channel-web-settings' }, h('p', { class: 'muted' }, t('channels.web_intro')), webFields.nodes);
    const show = (k) => {
      apiBox.hidden = k !== 'api';
      webBox.hidden = k !== 'web';
    };
    show(kind);
    return {
      nodes: [field(t('channels.name'), name), apiBox, webBox],
      show,
      values: (k) => ({ name: name.value.trim(), settings: k === 'web' ? webFields.values() : apiFields.values() }),
    };
  }

  function apiSettings(settings) {
    const webhook = h('input', { type: 'url', testid: 'channel-webhook', value: settings.webhook_url || '', placeholder: 'https://' });
    return {
      nodes: [field(t('channels.webhook_url'), webhook, t('channels.webhook_hint'))],
      values: () => {
        const url = webhook.value.trim();
        return url ? { webhook_url: url } : {};
      },
    };
  }

  /** The settings of a web channel (docs/widget.md): look, language, greeting, pre-chat form, origins. */
  function webSettings(settings) {
    const colourValue = /^#[0-9a-fA-F]{6}$/.test(settings.colour || '') ? settings.colour.toLowerCase() : '#1f6feb';
    const colour = h('input', { type: 'color', testid: 'channel-colour', value: colourValue });
    const position = select([['right', t('channels.position_right')], ['left', t('channels.position_left')]],
      { testid: 'channel-position', value: settings.position === 'left' ? 'left' : 'right' });
    const language = select([['auto', t('channels.language_auto')], ['en', 'English'], ['zh-CN', '简体中文']],
      { testid: 'channel-language', value: ['en', 'zh-CN'].includes(settings.language) ? settings.language : 'auto' });
    const greeting = settings.greeting && typeof settings.greeting === 'object' ? settings.greeting : {};
    const greetingEn = h('input', { testid: 'channel-greeting-en', maxlength: 300, value: greeting.en || '', placeholder: t('channels.greeting_en_placeholder'), lang: 'en' });
    const greetingZh = h('input', { testid: 'channel-greeting-zh', maxlength: 300, value: greeting['zh-CN'] || '', placeholder: t('channels.greeting_zh_placeholder'), lang: 'zh-CN' });
    const prechat = settings.prechat && typeof settings.prechat === 'object' ? settings.prechat : {};
    const modes = [['required', t('channels.prechat_required')], ['optional', t('channels.prechat_optional')], ['off', t('channels.prechat_off')]];
    const modeOf = (v) => (['required', 'optional', 'off'].includes(v) ? v : 'optional');
    const prechatName = select(modes, { testid: 'channel-prechat-name', value: modeOf(prechat.name) });
    const prechatEmail = select(modes, { testid: 'channel-prechat-email', value: modeOf(prechat.email) });
    const fallbackId = Number.isInteger(settings.email_fallback_channel_id) ? String(settings.email_fallback_channel_id) : '';
    const fallback = select([['', t('channels.email_fallback_none')], ...emailChannels.map((c) => [String(c.id), c.name])],
      { testid: 'channel-email-fallback', value: fallbackId });
    const origins = h('textarea', {
      rows: 3, testid: 'channel-origins', placeholder: 'https://shop.example.com',
      value: Array.isArray(settings.allowed_origins) ? settings.allowed_origins.join('\n') : '',
    });
    return {
      nodes: [
        h('div', { class: 'row' }, field(t('channels.colour'), colour), field(t('channels.position'), position)),
        field(t('channels.language'), language),
        h('div', { class: 'row' }, field(t('channels.greeting_en'), greetingEn), field(t('channels.greeting_zh'), greetingZh)),
        h('p', { class: 'muted small' }, t('channels.greeting_hint')),
        h('div', { class: 'row' }, field(t('channels.prechat_name'), prechatName), field(t('channels.prechat_email'), prechatEmail)),
        field(t('channels.email_fallback'), fallback, t('channels.email_fallback_hint')),
        field(t('channels.origins'), origins, t('channels.origins_hint')),
      ],
      values: () => {
        const texts = {};
        if (greetingEn.value.trim()) texts.en = greetingEn.value.trim();
        if (greetingZh.value.trim()) texts['zh-CN'] = greetingZh.value.trim();
        const out = {
          colour: colour.value.toLowerCase(),
          position: position.value,
          language: language.value,
          prechat: { name: prechatName.value, email: prechatEmail.value },
          allowed_origins: origins.value.split(/\r?\n/).map((o) => o.trim().replace(/\/+$/, '')).filter(Boolean),
          email_fallback_channel_id: fallback.value ? Number(fallback.value) : null,
        };
        if (Object.keys(texts).length) out.greeting = texts;
        return out;
      },
    };
  }

  function showSecret(created, title, onClose) {
    const c = created.channel;
    secretDialog({
      title,
      explanation: c.kind === 'web'
        ? t('channels.identity_text', { name: c.name })
        : t('channels.secret_text', { name: c.name, url: inboundUrl(c) }),
      secret: created.signing_secret,
      onClose,
    });
  }

  /** After a web channel is added: the tag to put on the site. */
  function embedDialog(c) {
    const done = button(t('common.done'), { class: 'primary', testid: 'embed-done', onclick: () => handle.close() });
    const handle = openDialog({
      title: t('channels.embed_title', { name: c.name }), testid: 'embed-dialog',
      content: [h('p', {}, t('channels.embed_text')), embedBox(c), h('p', { class: 'muted small' }, t('channels.embed_identity'))],
      actions: [done],
    });
    done.focus();
  }

  function createDialog() {
    let kind = 'api';
    const kindSelect = select([['api', t('channels.kind_api')], ['web', t('channels.kind_web')]], {
      testid: 'channel-kind', value: kind,
      onchange: () => { kind = kindSelect.value; f.show(kind); },
    });
    const f = fields(null, kind);
    formDialog({
      title: t('channels.new'), testid: 'channel-dialog', submitLabel: t('common.create'),
      fields: [field(t('channels.kind'), kindSelect), ...f.nodes],
      onSubmit: () => api.post('/api/v1/channels', { kind, ...f.values(kind) }),
      onDone: (created) => {
        reload();
        const web = created.channel.kind === 'web';
        const title = web ? t('channels.created_web_title') : t('channels.created_title');
        if (created.signing_secret) showSecret(created, title, web ? () => embedDialog(created.channel) : undefined);
        else if (web) embedDialog(created.channel);
        else toast(t('channels.created_done', { name: created.channel.name }));
      },
    });
  }

  function editDialog(c) {
    const f = fields(c, c.kind);
    formDialog({
      title: t('channels.edit_title', { name: c.name }), testid: 'channel-dialog',
      fields: f.nodes,
      onSubmit: () => api.patch(`/api/v1/channels/${c.id}`, f.values(c.kind)),
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
    const web = c.kind === 'web';
    const label = web ? t('channels.rotate_identity') : t('channels.rotate');
    if (!await confirmDialog(t(web ? 'channels.rotate_identity_confirm' : 'channels.rotate_confirm', { name: c.name }), { confirmLabel: label })) return;
    try {
      const rotated = await api.post(`/api/v1/channels/${c.id}/rotate-secret`);
      showSecret({ ...rotated, channel: { ...c, ...rotated.channel } }, web ? t('channels.rotated_identity_title') : t('channels.rotated_title'));
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
        button(t('channels.new'), { class: 'primary', testid: 'channel-new', onclick: createDialog }))),
    h('p', { class: 'muted' }, t('channels.intro')),
    list,
    h('div', { class: 'page-head sub' }, h('h2', {}, t('channels.dead_letters'))),
    h('p', { class: 'muted' }, t('channels.dead_letters_intro')),
    deadList));
  await load();
}
