// Employees: list with department filter and search; create, edit, disable, reset password,
// end sessions, effective access.

import { h, clear, button, field, select, checkbox, table, formDialog, secretDialog, confirmDialog, openDialog, toast, errorText, menu } from '../dom.js';
import { api, query } from '../api.js';
import { t, getLang, LANGUAGES } from '../i18n.js';
import { can, me, formatTime, departmentTree, departmentOptions, timeZones, browserTimeZone, roleName, permissionDescription } from '../state.js';

export async function mount(root) {
  const params = new URLSearchParams(location.search);
  const filter = {
    department: params.get('department') || '',
    sub: params.get('sub') === '1',
    q: params.get('q') || '',
  };
  const [departments, positions] = await Promise.all([
    can('org.read') ? api.list('/api/v1/departments') : [],
    can('org.read') ? api.list('/api/v1/positions') : [],
  ]);
  const tree = departmentTree(departments);
  const positionName = new Map(positions.map((p) => [p.id, p.name]));
  const manage = can('employees.manage');

  const departmentFilter = select([['', t('employees.all_departments')], ...departmentOptions(tree)], {
    value: filter.department, testid: 'employee-filter-department',
  });
  const subToggle = checkbox(t('employees.include_sub'), { checked: filter.sub, testid: 'employee-filter-sub' });
  const search = h('input', { type: 'search', value: filter.q, testid: 'employee-search', placeholder: t('employees.search_placeholder') });
  const list = h('div', { testid: 'employee-list' });
  const count = h('span', { class: 'muted', testid: 'employee-count' });

  async function load() {
    filter.department = departmentFilter.value;
    filter.sub = subToggle.querySelector('input').checked;
    filter.q = search.value.trim();
    history.replaceState(null, '', location.pathname + query({ department: filter.department, sub: filter.department && filter.sub ? '1' : '', q: filter.q }));
    const items = await api.list('/api/v1/employees' + query({
      department_id: filter.department,
      include_subdepartments: filter.department && filter.sub ? 'true' : '',
      q: filter.q,
    }));
    items.sort((a, b) => a.username.localeCompare(b.username));
    count.textContent = t('employees.count', { n: items.length });
    clear(list).append(renderTable(items));
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function renderTable(items) {
    const rows = items.map((e) => h('tr', { testid: 'employee-row', dataset: { username: e.username, id: e.id }, class: e.disabled ? 'disabled' : undefined },
      h('td', {}, h('div', { class: 'strong' }, e.display_name), h('code', { class: 'muted' }, e.username)),
      h('td', { class: 'email' }, e.email || '—'),
      h('td', {}, tree.pathOf(e.department_id) || `#${e.department_id}`),
      h('td', {}, e.position_id ? positionName.get(e.position_id) || `#${e.position_id}` : '—'),
      h('td', {}, statusBadge(e)),
      h('td', { class: 'nowrap' }, e.last_login_at ? formatTime(e.last_login_at) : t('employees.never')),
      h('td', { class: 'actions' }, rowActions(e))));
    return table([`${t('employees.display_name')} / ${t('employees.username')}`, t('employees.email'), t('employees.department'),
      t('employees.position'), t('employees.status'), t('employees.last_login'), h('span', { class: 'sr-only' }, t('common.actions'))],
    rows, { testid: 'employee-table' });
  }

  function rowActions(e) {
    const items = [];
    if (manage) {
      items.push([t('common.edit'), () => editDialog(e), 'employee-edit']);
      items.push(e.disabled
        ? [t('employees.enable'), () => setDisabled(e, false), 'employee-enable']
        : e.id !== me().id && [t('employees.disable'), () => setDisabled(e, true), 'employee-disable', true]);
      items.push([t('employees.reset_password'), () => resetPassword(e), 'employee-reset-password']);
      items.push([t('employees.end_sessions'), () => endSessions(e), 'employee-end-sessions']);
    }
    if (can('roles.read')) items.push([t('employees.view_access'), () => accessDialog(e, tree), 'employee-access']);
    if (!items.length) return null;
    return menu(t('common.actions'), items, { testid: 'employee-actions', ariaLabel: t('employees.actions_for', { name: e.display_name }) });
  }

  function employeeFields(e) {
    const fields = {
      username: h('input', { name: 'username', required: true, testid: 'employee-username', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' }),
      display_name: h('input', { name: 'display_name', required: true, testid: 'employee-display-name', value: e ? e.display_name : '' }),
      email: h('input', { name: 'email', type: 'email', testid: 'employee-email', value: e ? e.email || '' : '' }),
      department: select(departmentOptions(tree), { testid: 'employee-department', value: e ? e.department_id : filter.department || (tree.list[0] && tree.list[0].dept.id) }),
      position: select([['', t('employees.no_position')], ...positions.map((p) => [p.id, p.name])], { testid: 'employee-position', value: e ? e.position_id ?? '' : '' }),
      language: select(LANGUAGES.map((l) => [l.code, l.label]), { testid: 'employee-language', value: e ? e.language : getLang() }),
      time_zone: h('input', { name: 'time_zone', list: 'tz-list', testid: 'employee-time-zone', value: e ? e.time_zone : browserTimeZone(), autocomplete: 'off' }),
      location: h('input', { name: 'location', testid: 'employee-location', value: e ? e.location : '' }),
      password: h('input', { name: 'password', type: 'password', testid: 'employee-password', autocomplete: 'new-password' }),
    };
    const zones = timeZones();
    if (!zones.includes('UTC')) zones.unshift('UTC');
    const nodes = [
      h('div', { class: 'row' },
        e ? null : field(t('employees.username'), fields.username, t('employees.username_hint')),
        field(t('employees.display_name'), fields.display_name)),
      h('div', { class: 'row' }, field(t('employees.email'), fields.email), field(t('employees.location'), fields.location, t('employees.location_hint'))),
      h('div', { class: 'row' }, field(t('employees.department'), fields.department), field(t('employees.position'), fields.position)),
      h('div', { class: 'row' }, field(t('employees.language'), fields.language), field(t('employees.time_zone'), fields.time_zone)),
      e ? null : field(t('employees.initial_password'), fields.password, t('employees.initial_password_hint')),
      h('datalist', { id: 'tz-list' }, zones.map((z) => h('option', { value: z }))),
    ];
    return { fields, nodes };
  }

  function createDialog() {
    const { fields, nodes } = employeeFields(null);
    formDialog({
      title: t('employees.new'), testid: 'employee-dialog', fields: nodes, submitLabel: t('common.create'), wide: true,
      onSubmit: () => api.post('/api/v1/employees', {
        username: fields.username.value.trim(),
        display_name: fields.display_name.value.trim(),
        email: fields.email.value.trim() || null,
        department_id: Number(fields.department.value),
        position_id: fields.position.value ? Number(fields.position.value) : null,
        language: fields.language.value,
        time_zone: fields.time_zone.value.trim() || 'UTC',
        location: fields.location.value.trim(),
        password: fields.password.value || null,
      }),
      onDone: (created) => {
        reload();
        if (created.one_time_password) {
          secretDialog({
            title: t('employees.created_title'),
            explanation: t('employees.created_otp', { name: created.employee.display_name, username: created.employee.username }),
            secret: created.one_time_password,
          });
        } else {
          toast(t('employees.created', { name: created.employee.display_name }));
        }
      },
    });
  }

  function editDialog(e) {
    const { fields, nodes } = employeeFields(e);
    formDialog({
      title: t('employees.edit_title', { name: e.username }), testid: 'employee-dialog', fields: nodes, wide: true,
      onSubmit: () => {
        const patch = {
          display_name: fields.display_name.value.trim(),
          email: fields.email.value.trim() || null,
          position_id: fields.position.value ? Number(fields.position.value) : null,
          language: fields.language.value,
          time_zone: fields.time_zone.value.trim() || 'UTC',
          location: fields.location.value.trim(),
        };
        if (Number(fields.department.value) !== e.department_id) patch.department_id = Number(fields.department.value);
        return api.patch(`/api/v1/employees/${e.id}`, patch);
      },
      onDone: () => { toast(t('common.saved')); reload(); },
    });
  }

  async function setDisabled(e, disabled) {
    if (disabled && !await confirmDialog(t('employees.disable_confirm', { name: e.display_name }), { confirmLabel: t('employees.disable') })) return;
    try {
      await api.patch(`/api/v1/employees/${e.id}`, { disabled });
      toast(disabled ? t('employees.disabled_done', { name: e.display_name }) : t('employees.enabled_done', { name: e.display_name }));
      reload();
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  async function resetPassword(e) {
    if (!await confirmDialog(t('employees.reset_confirm', { name: e.display_name }), { confirmLabel: t('employees.reset_password') })) return;
    try {
      const result = await api.post(`/api/v1/employees/${e.id}/reset-password`);
      secretDialog({
        title: t('employees.reset_title'),
        explanation: t('employees.reset_otp', { name: e.display_name, n: result.sessions_ended }),
        secret: result.one_time_password,
      });
      reload();
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  async function endSessions(e) {
    if (!await confirmDialog(t('employees.end_sessions_confirm', { name: e.display_name }), { confirmLabel: t('employees.end_sessions') })) return;
    try {
      const result = await api.post(`/api/v1/employees/${e.id}/end-sessions`);
      toast(t('employees.sessions_ended', { n: result.sessions_ended }));
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  let timer = null;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 250);
  });
  departmentFilter.addEventListener('change', reload);
  subToggle.addEventListener('change', reload);

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' },
      h('h1', {}, t('nav.employees')),
      manage ? button(t('employees.new'), { class: 'primary', testid: 'employee-new', onclick: createDialog }) : null),
    h('div', { class: 'toolbar', role: 'search' },
      field(t('employees.department'), departmentFilter), subToggle,
      field(t('common.search'), search), h('div', { class: 'spacer' }), count),
    list));
  await load();
}

function statusBadge(e) {
  if (e.disabled) return h('span', { class: 'badge off' }, t('employees.status_disabled'));
  if (e.must_change_password) return h('span', { class: 'badge warn' }, t('employees.status_must_change'));
  return h('span', { class: 'badge ok' }, t('employees.status_active'));
}

/** The effective permissions of an employee and the grants behind them. */
async function accessDialog(e, tree) {
  try {
    const [access, roles, permissions, positions] = await Promise.all([
      api.get(`/api/v1/employees/${e.id}/access`),
      api.list('/api/v1/roles'),
      api.list('/api/v1/permissions'),
      can('org.read') ? api.list('/api/v1/positions') : [],
    ]);
    const roleById = new Map(roles.map((r) => [r.id, r]));
    const positionName = new Map(positions.map((p) => [p.id, p.name]));
    const via = (s) => {
      if (s.kind === 'employee') return t('employees.access_direct');
      if (s.kind === 'position') return `${t('roles.subject_position')}: ${positionName.get(s.position_id) || `#${s.position_id}`}`;
      const path = tree.pathOf(s.department_id) || `#${s.department_id}`;
      return `${t('roles.subject_department')}: ${s.include_subdepartments ? t('roles.with_sub', { name: path }) : path}`;
    };
    const about = new Map(permissions.map((p) => [p.name, p.description]));
    const where = (ids) => (ids ? ids.map((id) => tree.pathOf(id) || `#${id}`).join(', ') : t('roles.everywhere'));
    const permRows = access.permissions.map((p) => h('tr', { testid: 'access-permission', dataset: { permission: p.permission } },
      h('td', {}, h('code', {}, p.permission)),
      h('td', {}, permissionDescription(p.permission, about.get(p.permission))),
      h('td', {}, where(p.departments))));
    const grantRows = access.grants.map((g) => h('tr', {},
      h('td', {}, roleName(roleById.get(g.role_id))),
      h('td', {}, via(g.subject)),
      h('td', {}, g.scope_department_id ? tree.pathOf(g.scope_department_id) || `#${g.scope_department_id}` : t('roles.everywhere'))));
    openDialog({
      title: t('employees.access_title', { name: e.display_name }), testid: 'access-dialog', wide: true,
      content: [
        h('h3', {}, t('employees.access_grants')),
        table([t('roles.role'), t('employees.access_via'), t('roles.scope')], grantRows),
        h('h3', {}, t('employees.access_permissions')),
        table([t('roles.permission'), t('common.description'), t('roles.scope')], permRows),
      ],
    });
  } catch (err) {
    toast(errorText(err), 'error');
  }
}
