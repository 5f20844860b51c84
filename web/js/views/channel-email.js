// The e-mail channel in the console: the form that adds or edits one (IMAP to read the mailbox,
// SMTP to send replies; passwords are write-only: left empty, they stay as they are), its live
// connection status, and what an e-mail message shows besides its text in a conversation
// (subject, a flag on malformed mail, the untrimmed original, refused attachments).

import { h, field, select, formDialog } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { formatTime } from '../state.js';

const TLS_MODES = ['tls', 'starttls', 'plain'];

function tlsSelect(value, testid, allowPlain) {
  const modes = allowPlain ? TLS_MODES : TLS_MODES.filter((m) => m !== 'plain');
  return select(modes.map((m) => [m, t(`email.tls_${m}`)]), { value, testid });
}

/** Opens the dialog that creates (`channel` null) or edits an e-mail channel. */
export function emailChannelDialog(channel, onDone) {
  const s = (channel && channel.settings) || {};
  const set = new Set((channel && channel.secrets_set) || []);
  const input = (key, attrs = {}) => h('input', { testid: `email-${key.replace(/_/g, '-')}`, value: s[key] ?? '', ...attrs });
  const name = h('input', { testid: 'channel-name', required: true, maxlength: 100, value: channel ? channel.name : '', placeholder: t('email.name_placeholder') });
  const imapHost = input('imap_host', { required: true, placeholder: 'imap.example.com' });
  const imapPort = input('imap_port', { type: 'number', min: 1, max: 65535, value: s.imap_port ?? 993 });
  const imapTls = tlsSelect(s.imap_tls || 'tls', 'email-imap-tls', false);
  const imapUser = input('imap_username', { required: true, autocomplete: 'off' });
  const imapMailbox = input('imap_mailbox', { value: s.imap_mailbox || 'INBOX' });
  const password = (key) => h('input', {
    type: 'password', autocomplete: 'new-password', testid: `email-${key.replace(/_/g, '-')}`,
    placeholder: set.has(key) ? t('email.password_kept') : '',
  });
  const imapPassword = password('imap_password');
  const smtpHost = input('smtp_host', { required: true, placeholder: 'smtp.example.com' });
  const smtpPort = input('smtp_port', { type: 'number', min: 1, max: 65535, value: s.smtp_port ?? 587 });
  const smtpTls = tlsSelect(s.smtp_tls || 'starttls', 'email-smtp-tls', true);
  const smtpUser = input('smtp_username', { autocomplete: 'off' });
  const smtpPassword = password('smtp_password');
  const fromAddress = input('from_address', { type: 'email', required: true, placeholder: 'support@example.com' });
  const fromName = input('from_name', { maxlength: 100 });
  const poll = input('poll_interval_secs', { type: 'number', min: 5, max: 86400, value: s.poll_interval_secs ?? 60 });
  const ca = h('textarea', { testid: 'email-ca-certificate', rows: 3, placeholder: '-----BEGIN CERTIFICATE-----' }, s.ca_certificate || '');

  const values = () => {
    const settings = {
      imap_host: imapHost.value.trim(), imap_port: Number(imapPort.value), imap_tls: imapTls.value,
      imap_username: imapUser.value.trim(), imap_mailbox: imapMailbox.value.trim() || 'INBOX',
      smtp_host: smtpHost.value.trim(), smtp_port: Number(smtpPort.value), smtp_tls: smtpTls.value,
      smtp_username: smtpUser.value.trim(),
      from_address: fromAddress.value.trim(), from_name: fromName.value.trim(),
      poll_interval_secs: Number(poll.value) || 60,
    };
    if (ca.value.trim()) settings.ca_certificate = ca.value.trim();
    const secrets = {};
    if (imapPassword.value) secrets.imap_password = imapPassword.value;
    if (smtpPassword.value) secrets.smtp_password = smtpPassword.value;
    return { name: name.value.trim(), settings, secrets };
  };

  formDialog({
    title: channel ? t('channels.edit_title', { name: channel.name }) : t('email.new'),
    testid: 'email-channel-dialog', wide: true,
    submitLabel: channel ? undefined : t('common.create'),
    fields: [
      h('p', { class: 'muted' }, t('email.intro')),
      field(t('channels.name'), name),
      h('fieldset', {}, h('legend', {}, t('email.imap')),
        field(t('email.host'), imapHost), field(t('email.port'), imapPort), field(t('email.tls'), imapTls),
        field(t('email.username'), imapUser), field(t('email.password'), imapPassword, set.has('imap_password') ? t('email.password_hint') : undefined),
        field(t('email.mailbox'), imapMailbox)),
      h('fieldset', {}, h('legend', {}, t('email.smtp')),
        field(t('email.host'), smtpHost), field(t('email.port'), smtpPort), field(t('email.tls'), smtpTls, t('email.plain_hint')),
        field(t('email.username'), smtpUser), field(t('email.password'), smtpPassword, set.has('smtp_password') ? t('email.password_hint') : undefined)),
      field(t('email.from_address'), fromAddress), field(t('email.from_name'), fromName),
      field(t('email.poll'), poll, t('email.poll_hint')),
      field(t('email.ca'), ca, t('email.ca_hint')),
    ],
    onSubmit: () => {
      const v = values();
      if (channel) return api.patch(`/api/v1/channels/${channel.id}`, v);
      return api.post('/api/v1/channels', { kind: 'email', ...v });
    },
    onDone,
  });
}

/** A cell that shows an e-mail channel's connection, loaded when drawn. */
export function emailStatus(channel) {
  const cell = h('span', { testid: 'email-status', class: 'small' }, '…');
  if (!channel.enabled) {
    cell.textContent = '';
    return cell;
  }
  api.get(`/api/v1/channels/${channel.id}/status`).then((s) => {
    const ok = s.state === 'idle' || s.state === 'polling';
    const badge = h('span', { class: ['badge', ok ? 'ok' : s.state === 'error' ? 'off' : 'warn'], testid: 'email-state', dataset: { state: s.state } },
      t(`email.state_${s.state}`) || s.state);
    const details = [];
    if (s.last_success_at) details.push(t('email.last_success', { time: formatTime(s.last_success_at) }));
    if (s.state === 'error' && s.last_error) details.push(t('email.last_error', { error: s.last_error }));
    cell.replaceChildren(badge, details.length ? h('div', { class: 'muted' }, details.join(' · ')) : '');
  }).catch(() => { cell.textContent = ''; });
  return cell;
}

/** Around an e-mail message's text: what goes before it and what goes after it. */
export function emailParts(m, textNode) {
  const e = m.email;
  if (!e) return { before: null, after: null };
  const before = h('div', { class: 'msg-email', testid: 'message-email' },
    e.subject ? h('div', { class: 'small strong', testid: 'message-subject' }, e.subject) : null,
    e.malformed ? h('span', { class: 'badge off', testid: 'message-malformed', title: e.malformed }, t('email.malformed')) : null,
    e.auto_reply ? h('span', { class: 'badge warn' }, t('email.auto_reply')) : null);
  const after = [];
  if (e.original_text && textNode) {
    let original = false;
    const toggle = h('button', {
      type: 'button', class: 'link small', testid: 'message-show-original', 'aria-pressed': 'false',
      onclick: () => {
        original = !original;
        textNode.textContent = original ? e.original_text : m.text;
        toggle.textContent = original ? t('email.show_trimmed') : t('email.show_original');
        toggle.setAttribute('aria-pressed', String(original));
      },
    }, t('email.show_original'));
    after.push(toggle);
  }
  if (e.raw_attachment) {
    after.push(h('a', { class: 'small', testid: 'message-raw', href: `/api/v1/attachments/${e.raw_attachment}`, download: 'original.eml' },
      t('email.download_original')));
  }
  for (const a of e.refused_attachments || []) {
    after.push(h('div', { class: 'muted small', testid: 'message-refused-attachment' },
      t('email.refused_attachment', { name: a.filename, reason: a.reason })));
  }
  return { before, after: after.length ? h('div', { class: 'msg-email-after' }, after) : null };
}
