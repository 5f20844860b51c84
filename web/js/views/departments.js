// Departments: the tree; create, rename or move, delete.

import { h, clear, button, field, select, formDialog, confirmDialog, alertDialog, toast, errorText } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { can, departmentTree, departmentOptions, subtreeIds } from '../state.js';

export async function mount(root) {
  const manage = can('org.manage');
  const treeBox = h('div', { class: 'card' });
  let tree = departmentTree([]);
  let members = null;

  async function load() {
    const [departments, employees] = await Promise.all([
      api.list('/api/v1/departments'),
      can('employees.read') ? api.list('/api/v1/employees') : null,
    ]);
    tree = departmentTree(departments);
    if (employees) {
      members = new Map();
      for (const e of employees) members.set(e.department_id, (members.get(e.department_id) || 0) + 1);
    }
    clear(treeBox).append(tree.list.length
      ? h('ul', { class: 'tree', testid: 'department-tree' }, renderLevel(null))
      : h('p', { class: 'muted' }, t('common.none')));
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function renderLevel(parent) {
    return (tree.children.get(parent) || []).map((d) => {
      const kids = tree.children.get(d.id) || [];
      const count = members ? members.get(d.id) || 0 : null;
      return h('li', {},
        h('div', { class: 'node', testid: 'department-node', dataset: { name: d.name, id: d.id } },
          h('span', { class: 'node-name' }, d.name),
          count !== null ? h('span', { class: 'badge' }, t('departments.members', { n: count })) : null,
          d.description ? h('span', { class: 'muted node-desc' }, d.description) : null,
          h('span', { class: 'spacer' }),
          manage ? h('span', { class: 'node-actions' },
            button(t('departments.add_child'), { class: 'small', testid: 'department-add-child', onclick: () => editDialog(null, d.id), 'aria-label': t('departments.add_child_to', { name: d.name }) }),
            button(t('common.edit'), { class: 'small', testid: 'department-edit', onclick: () => editDialog(d), 'aria-label': t('departments.edit_title', { name: d.name }) }),
            button(t('common.delete'), { class: 'small danger-text', testid: 'department-delete', onclick: () => remove(d), 'aria-label': t('departments.delete_named', { name: d.name }) })) : null),
        kids.length ? h('ul', {}, renderLevel(d.id)) : null);
    });
  }

  function editDialog(d, parentId = null) {
    const name = h('input', { required: true, testid: 'department-name', value: d ? d.name : '' });
    const exclude = d ? subtreeIds(tree, d.id) : new Set();
    const current = d ? d.parent_id : parentId;
    const parent = select([['', t('departments.top_level')], ...departmentOptions(tree, { exclude })], { testid: 'department-parent', value: current ?? '' });
    const description = h('textarea', { rows: 3, testid: 'department-description' });
    description.value = d ? d.description : '';
    formDialog({
      title: d ? t('departments.edit_title', { name: d.name }) : t('departments.new'),
      testid: 'department-dialog',
      submitLabel: d ? t('common.save') : t('common.create'),
      fields: [field(t('departments.name'), name), field(t('departments.parent'), parent), field(t('common.description'), description)],
      onSubmit: () => {
        const parentValue = parent.value ? Number(parent.value) : null;
        if (!d) return api.post('/api/v1/departments', { name: name.value.trim(), parent_id: parentValue, description: description.value.trim() });
        const patch = { name: name.value.trim(), description: description.value.trim() };
        if (parentValue !== d.parent_id) patch.parent_id = parentValue;
        return api.patch(`/api/v1/departments/${d.id}`, patch);
      },
      onDone: (saved) => {
        toast(d ? t('common.saved') : t('departments.created', { name: saved.name }));
        reload();
      },
    });
  }

  async function remove(d) {
    if (!await confirmDialog(t('departments.delete_confirm', { name: d.name }), { confirmLabel: t('common.delete') })) return;
    try {
      await api.del(`/api/v1/departments/${d.id}`);
      toast(t('departments.deleted', { name: d.name }));
      reload();
    } catch (err) {
      alertDialog(t('departments.delete_refused'), errorText(err));
    }
  }

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' },
      h('h1', {}, t('nav.departments')),
      manage ? button(t('departments.new'), { class: 'primary', testid: 'department-new', onclick: () => editDialog(null) }) : null),
    h('p', { class: 'muted' }, t('departments.intro')),
    treeBox));
  await load();
}
