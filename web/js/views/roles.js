// Roles and role grants: built-in roles (read-only), custom roles with permission checkboxes,
// who holds which role and where.

import { h, clear, button, field, select, checkbox, table, openDialog, formDialog, confirmDialog, alertDialog, toast, errorText } from '../dom.js';
import { api } from '../api.js';
import { t, getLang } from '../i18n.js';
import { can, state, formatTime, departmentTree, departmentOptions, roleName, roleDescription } from '../state.js';
import { permissionPicker } from './common.js';

export async function mount(root) {
  const manage = can('roles.manage');
  const rolesBox = h('div', {});
  const grantsBox = h('div', {});
  let data = null;

  async function load() {
    const [roles, permissions, grants, departments, positions, employees] = await Promise.all([
      api.list('/api/v1/roles'),
      api.list('/api/v1/permissions'),
      api.list('/api/v1/role-grants'),
      can('org.read') ? api.list('/api/v1/departments') : [],
      can('org.read') ? api.list('/api/v1/positions') : [],
      can('employees.read') ? api.list('/api/v1/employees') : [],
    ]);
    employees.sort((a, b) => a.display_name.localeCompare(b.display_name, getLang()));
    positions.sort((a, b) => a.name.localeCompare(b.name, getLang()));
    data = {
      roles, permissions, grants, departments, positions, employees,
      tree: departmentTree(departments),
      role: new Map(roles.map((r) => [r.id, r])),
      employee: new Map(employees.map((e) => [e.id, e])),
      position: new Map(positions.map((p) => [p.id, p])),
    };
    clear(rolesBox).append(renderRoles());
    clear(grantsBox).append(renderGrants());
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function renderRoles() {
    const rows = data.roles.map((r) => h('tr', { testid: 'role-row', dataset: { id: r.id, name: r.name } },
      h('td', {}, h('strong', {}, roleName(r)), getLang() === 'zh-CN' && r.name_zh ? h('span', { class: 'muted' }, ` (${r.name})`) : null),
      h('td', {}, h('span', { class: ['badge', r.builtin ? 'info' : ''] }, r.builtin ? t('roles.builtin') : t('roles.custom'))),
      h('td', { class: 'nowrap' }, t('roles.permission_count', { n: r.permissions.length })),
      h('td', {}, roleDescription(r) || '—'),
      h('td', { class: 'actions' },
        r.builtin || !manage
          ? button(t('common.view'), { class: 'small', testid: 'role-view', onclick: () => viewRole(r) })
          : [button(t('common.edit'), { class: 'small', testid: 'role-edit', onclick: () => editRole(r) }),
            button(t('common.delete'), { class: 'small danger-text', testid: 'role-delete', onclick: () => deleteRole(r) })])));
    return table([t('roles.name'), t('roles.kind'), t('roles.permissions'), t('common.description'), h('span', { class: 'sr-only' }, t('common.actions'))],
      rows, { testid: 'role-table' });
  }

  function viewRole(r) {
    const picker = permissionPicker(data.permissions, { selected: r.permissions, disabled: true });
    openDialog({
      title: roleName(r), testid: 'role-dialog', wide: true,
      content: [h('p', {}, roleDescription(r)), r.builtin ? h('p', { class: 'muted' }, t('roles.builtin_note')) : null, picker.node],
    });
  }

  function editRole(r) {
    const name = h('input', { required: true, testid: 'role-name', value: r ? r.name : '' });
    const description = h('textarea', { rows: 2, testid: 'role-description' });
    description.value = r ? r.description : '';
    const picker = permissionPicker(data.permissions, { selected: r ? r.permissions : ['account.self'], offered: state.session.permissions });
    formDialog({
      title: r ? t('roles.edit_title', { name: r.name }) : t('roles.new'), testid: 'role-dialog', wide: true,
      submitLabel: r ? t('common.save') : t('common.create'),
      fields: [field(t('roles.name'), name), field(t('common.description'), description),
        h('p', { class: 'label' }, t('roles.permissions')), picker.node],
      onSubmit: () => {
        const body = { name: name.value.trim(), description: description.value.trim(), permissions: picker.values() };
        return r ? api.patch(`/api/v1/roles/${r.id}`, body) : api.post('/api/v1/roles', body);
      },
      onDone: (saved) => { toast(r ? t('common.saved') : t('roles.created', { name: saved.name })); reload(); },
    });
  }

  async function deleteRole(r) {
    if (!await confirmDialog(t('roles.delete_confirm', { name: r.name }), { confirmLabel: t('common.delete') })) return;
    try {
      await api.del(`/api/v1/roles/${r.id}`);
      toast(t('roles.deleted', { name: r.name }));
      reload();
    } catch (err) {
      alertDialog(t('roles.delete_refused'), errorText(err));
    }
  }

  function subjectText(s) {
    if (s.kind === 'employee') {
      const e = data.employee.get(s.employee_id);
      return e ? `${e.display_name} (${e.username})` : `#${s.employee_id}`;
    }
    if (s.kind === 'department') {
      const path = data.tree.pathOf(s.department_id) || `#${s.department_id}`;
      return s.include_subdepartments ? t('roles.with_sub', { name: path }) : path;
    }
    const p = data.position.get(s.position_id);
    return p ? p.name : `#${s.position_id}`;
  }

  function scopeText(id) {
    return id ? data.tree.pathOf(id) || `#${id}` : t('roles.everywhere');
  }

  function renderGrants() {
    const grants = [...data.grants].sort((a, b) => a.id - b.id);
    const rows = grants.map((g) => h('tr', { testid: 'grant-row', dataset: { id: g.id, role: g.role_id, kind: g.subject.kind } },
      h('td', {}, roleName(data.role.get(g.role_id))),
      h('td', {}, h('span', { class: 'badge' }, t(`roles.subject_${g.subject.kind}`)), ' ', subjectText(g.subject)),
      h('td', {}, scopeText(g.scope_department_id)),
      h('td', { class: 'nowrap' }, formatTime(g.created_at)),
      manage ? h('td', { class: 'actions' }, button(t('roles.revoke'), { class: 'small danger-text', testid: 'grant-revoke', onclick: () => revoke(g) })) : null));
    const headers = [t('roles.role'), t('roles.granted_to'), t('roles.scope'), t('roles.granted_at')];
    if (manage) headers.push(h('span', { class: 'sr-only' }, t('common.actions')));
    return table(headers, rows, { testid: 'grant-table' });
  }

  function grantDialog() {
    const role = select(data.roles.map((r) => [r.id, roleName(r)]), { testid: 'grant-role' });
    const kinds = [['employee', t('roles.subject_employee')], ['department', t('roles.subject_department')], ['position', t('roles.subject_position')]];
    const kind = select(kinds, { testid: 'grant-kind' });
    const employee = select(data.employees.map((e) => [e.id, `${e.display_name} (${e.username})`]), { testid: 'grant-employee' });
    const department = select(departmentOptions(data.tree), { testid: 'grant-department' });
    const position = select(data.positions.map((p) => [p.id, p.name]), { testid: 'grant-position' });
    const sub = checkbox(t('roles.include_sub'), { testid: 'grant-include-sub', checked: true });
    const scope = select([['', t('roles.everywhere')], ...departmentOptions(data.tree)], { testid: 'grant-scope' });
    const employeeField = field(t('roles.subject_employee'), employee);
    const departmentField = h('div', {}, field(t('roles.subject_department'), department), sub);
    const positionField = field(t('roles.subject_position'), position);
    const sync = () => {
      employeeField.hidden = kind.value !== 'employee';
      departmentField.hidden = kind.value !== 'department';
      positionField.hidden = kind.value !== 'position';
    };
    kind.addEventListener('change', sync);
    sync();
    formDialog({
      title: t('roles.grant_title'), testid: 'grant-dialog', submitLabel: t('roles.grant'),
      fields: [field(t('roles.role'), role), field(t('roles.subject_kind'), kind), employeeField, departmentField, positionField,
        field(t('roles.scope'), scope, t('roles.scope_hint'))],
      onSubmit: () => {
        let subject;
        if (kind.value === 'employee') subject = { kind: 'employee', employee_id: Number(employee.value) };
        else if (kind.value === 'department') subject = { kind: 'department', department_id: Number(department.value), include_subdepartments: sub.querySelector('input').checked };
        else subject = { kind: 'position', position_id: Number(position.value) };
        for (const value of Object.values(subject)) {
          if (Number.isNaN(value) || value === 0) throw { text: t('roles.pick_subject') };
        }
        return api.post('/api/v1/role-grants', { role_id: Number(role.value), subject, scope_department_id: scope.value ? Number(scope.value) : null });
      },
      onDone: () => { toast(t('roles.granted')); reload(); },
    });
  }

  async function revoke(g) {
    const message = t('roles.revoke_confirm', { role: roleName(data.role.get(g.role_id)), subject: subjectText(g.subject) });
    if (!await confirmDialog(message, { confirmLabel: t('roles.revoke') })) return;
    try {
      await api.del(`/api/v1/role-grants/${g.id}`);
      toast(t('roles.revoked'));
      reload();
    } catch (err) {
      alertDialog(t('roles.revoke_refused'), errorText(err));
    }
  }

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' },
      h('h1', {}, t('nav.roles')),
      manage ? button(t('roles.new'), { class: 'primary', testid: 'role-new', onclick: () => editRole(null) }) : null),
    h('p', { class: 'muted' }, t('roles.intro')),
    rolesBox,
    h('div', { class: 'page-head sub' },
      h('h2', {}, t('roles.grants')),
      manage ? button(t('roles.grant'), { class: 'primary', testid: 'grant-new', onclick: grantDialog }) : null),
    h('p', { class: 'muted' }, t('roles.grants_intro')),
    grantsBox));
  await load();
}
