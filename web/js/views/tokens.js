// API tokens: list, issue (the secret is shown once), revoke.

import { h, clear, button, field, table, formDialog, secretDialog, confirmDialog, toast, errorText } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { can, state, formatTime, formatDate } from '../state.js';
import { permissionPicker } from './common.js';

export async function mount(root) {
  const list = h('div', {});
  let permissions = [];

  async function load() {
    const [tokens, perms, employees] = await Promise.all([
      api.list('/api/v1/api-tokens'),
      can('roles.read') ? api.list('/api/v1/permissions') : state.session.permissions.map((name) => ({ name, description: '' })),
      can('employees.read') ? api.list('/api/v1/employees') : [],
    ]);
    permissions = perms;
    const owner = new Map(employees.map((e) => [e.id, e]));
    const now = Date.now();
    tokens.sort((a, b) => b.created_at - a.created_at);
    const rows = tokens.map((k) => {
      const status = k.revoked_at ? 'revoked' : k.expires_at <= now ? 'expired' : 'active';
      const o = owner.get(k.owner_id);
      return h('tr', { testid: 'token-row', dataset: { id: k.id, name: k.name, status }, class: status !== 'active' ? 'disabled' : undefined },
        h('td', {}, k.name),
        h('td', {}, h('code', {}, `${k.prefix}…`)),
        h('td', {}, o ? o.display_name : `#${k.owner_id}`),
        h('td', { class: 'scopes', title: k.scopes.join(', ') }, k.scopes.map((s) => h('code', { class: 'chip' }, s))),
        h('td', { class: 'nowrap' }, formatDate(k.created_at)),
        h('td', { class: 'nowrap' }, formatDate(k.expires_at)),
        h('td', { class: 'nowrap' }, k.last_used_at ? formatTime(k.last_used_at) : t('tokens.never_used')),
        h('td', {}, h('span', { class: ['badge', status === 'active' ? 'ok' : 'off'] }, t(`tokens.status_${status}`))),
        h('td', { class: 'actions' }, status === 'revoked' ? null
          : button(t('tokens.revoke'), { class: 'small danger-text', testid: 'token-revoke', onclick: () => revoke(k) })));
    });
    clear(list).append(table([t('tokens.name'), t('tokens.prefix'), t('tokens.owner'), t('tokens.scopes'), t('tokens.created'),
      t('tokens.expires'), t('tokens.last_used'), t('tokens.status'), h('span', { class: 'sr-only' }, t('common.actions'))], rows, { testid: 'token-table' }));
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function issueDialog() {
    const name = h('input', { required: true, testid: 'token-name', placeholder: t('tokens.name_placeholder') });
    const days = h('input', { type: 'number', min: 1, max: 366, value: '90', required: true, testid: 'token-days' });
    const picker = permissionPicker(permissions, { offered: state.session.permissions, testid: 'token-scopes' });
    formDialog({
      title: t('tokens.issue'), testid: 'token-dialog', wide: true, submitLabel: t('tokens.issue'),
      fields: [h('div', { class: 'row' }, field(t('tokens.name'), name), field(t('tokens.lifetime'), days, t('tokens.lifetime_hint'))),
        h('p', { class: 'label' }, t('tokens.scopes')), picker.node],
      onSubmit: () => {
        const scopes = picker.values();
        if (!scopes.length) throw { text: t('tokens.pick_scope') };
        return api.post('/api/v1/api-tokens', { name: name.value.trim(), scopes, expires_in_days: Number(days.value) || 0 });
      },
      onDone: (issued) => {
        reload();
        secretDialog({ title: t('tokens.issued_title'), explanation: t('tokens.issued_text', { name: issued.token.name }), secret: issued.secret });
      },
    });
  }

  async function revoke(k) {
    if (!await confirmDialog(t('tokens.revoke_confirm', { name: k.name }), { confirmLabel: t('tokens.revoke') })) return;
    try {
      await api.del(`/api/v1/api-tokens/${k.id}`);
      toast(t('tokens.revoked', { name: k.name }));
      reload();
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' },
      h('h1', {}, t('nav.tokens')),
      button(t('tokens.issue'), { class: 'primary', testid: 'token-new', onclick: issueDialog })),
    h('p', { class: 'muted' }, t('tokens.intro')),
    list));
  await load();
}
