// Positions: list, create, rename, delete.

import { h, clear, button, field, table, formDialog, confirmDialog, alertDialog, toast, errorText } from '../dom.js';
import { api } from '../api.js';
import { t, getLang } from '../i18n.js';
import { can } from '../state.js';

export async function mount(root) {
  const manage = can('org.manage');
  const list = h('div', {});

  async function load() {
    const [positions, employees] = await Promise.all([
      api.list('/api/v1/positions'),
      can('employees.read') ? api.list('/api/v1/employees') : null,
    ]);
    const holders = new Map();
    for (const e of employees || []) if (e.position_id) holders.set(e.position_id, (holders.get(e.position_id) || 0) + 1);
    positions.sort((a, b) => a.name.localeCompare(b.name, getLang()));
    const rows = positions.map((p) => h('tr', { testid: 'position-row', dataset: { name: p.name, id: p.id } },
      h('td', {}, p.name),
      h('td', {}, p.description || '—'),
      employees ? h('td', { class: 'num' }, String(holders.get(p.id) || 0)) : null,
      manage ? h('td', { class: 'actions' },
        button(t('common.edit'), { class: 'small', testid: 'position-edit', onclick: () => editDialog(p) }),
        button(t('common.delete'), { class: 'small danger-text', testid: 'position-delete', onclick: () => remove(p) })) : null));
    const headers = [t('positions.name'), t('common.description')];
    if (employees) headers.push(t('positions.holders'));
    if (manage) headers.push(h('span', { class: 'sr-only' }, t('common.actions')));
    clear(list).append(table(headers, rows, { testid: 'position-table' }));
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function editDialog(p) {
    const name = h('input', { required: true, testid: 'position-name', value: p ? p.name : '' });
    const description = h('textarea', { rows: 3, testid: 'position-description' });
    description.value = p ? p.description : '';
    formDialog({
      title: p ? t('positions.edit_title', { name: p.name }) : t('positions.new'),
      testid: 'position-dialog',
      submitLabel: p ? t('common.save') : t('common.create'),
      fields: [field(t('positions.name'), name), field(t('common.description'), description)],
      onSubmit: () => {
        const body = { name: name.value.trim(), description: description.value.trim() };
        return p ? api.patch(`/api/v1/positions/${p.id}`, body) : api.post('/api/v1/positions', body);
      },
      onDone: (saved) => {
        toast(p ? t('common.saved') : t('positions.created', { name: saved.name }));
        reload();
      },
    });
  }

  async function remove(p) {
    if (!await confirmDialog(t('positions.delete_confirm', { name: p.name }), { confirmLabel: t('common.delete') })) return;
    try {
      await api.del(`/api/v1/positions/${p.id}`);
      toast(t('positions.deleted', { name: p.name }));
      reload();
    } catch (err) {
      alertDialog(t('positions.delete_refused'), errorText(err));
    }
  }

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' },
      h('h1', {}, t('nav.positions')),
      manage ? button(t('positions.new'), { class: 'primary', testid: 'position-new', onclick: () => editDialog(null) }) : null),
    h('p', { class: 'muted' }, t('positions.intro')),
    list));
  await load();
}
