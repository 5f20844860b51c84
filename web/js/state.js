// The signed-in session and small formatting helpers shared by the views.

import { getLang, t } from './i18n.js';

export const state = { session: null };

/** Whether the signed-in employee holds any of these permissions. */
export function can(...permissions) {
  const held = state.session ? state.session.permissions : [];
  return permissions.some((p) => held.includes(p));
}

export function me() {
  return state.session && state.session.employee;
}

/** A date and time in the browser's time zone and the console language. */
export function formatTime(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Intl.DateTimeFormat(getLang(), {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).format(new Date(ms));
}

export function formatDate(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Intl.DateTimeFormat(getLang(), { year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
}

export function formatBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${new Intl.NumberFormat(getLang(), { maximumFractionDigits: unit ? 1 : 0 }).format(value)} ${units[unit]}`;
}

export function formatDuration(secs) {
  const d = Math.floor(secs / 86400);
  const hrs = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  if (d) return t('time.days_hours', { d, h: hrs });
  if (hrs) return t('time.hours_minutes', { h: hrs, m });
  if (m) return t('time.minutes_seconds', { m, s });
  return t('time.seconds', { s });
}

/**
 * Departments in tree order with their depth and full path, e.g. "Headquarters / Sales".
 * Orphans (a parent that is gone) are shown at the top level.
 */
export function departmentTree(departments) {
  const byId = new Map(departments.map((d) => [d.id, d]));
  const children = new Map();
  for (const d of departments) {
    const parent = d.parent_id !== null && byId.has(d.parent_id) ? d.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(d);
  }
  for (const list of children.values()) list.sort((a, b) => a.name.localeCompare(b.name, getLang()));
  const out = [];
  const walk = (parent, depth, prefix) => {
    for (const d of children.get(parent) || []) {
      const path = prefix ? `${prefix} / ${d.name}` : d.name;
      out.push({ dept: d, depth, path });
      walk(d.id, depth + 1, path);
    }
  };
  walk(null, 0, '');
  return { list: out, children, byId, pathOf: (id) => (out.find((x) => x.dept.id === id) || {}).path };
}

/** [value, label] options for a <select> of departments, indented by depth. */
export function departmentOptions(tree, { exclude = new Set() } = {}) {
  return tree.list
    .filter((x) => !exclude.has(x.dept.id))
    .map((x) => [x.dept.id, `${'\u00a0\u00a0\u00a0'.repeat(x.depth)}${x.dept.name}`]);
}

/** The ids of a department and everything below it. */
export function subtreeIds(tree, id) {
  const out = new Set([id]);
  const walk = (p) => {
    for (const c of tree.children.get(p) || []) {
      out.add(c.id);
      walk(c.id);
    }
  };
  walk(id);
  return out;
}

/** A role's name in the console language (built-in roles have a Chinese name). */
export function roleName(role) {
  if (!role) return '—';
  if (getLang() === 'zh-CN' && role.name_zh) return role.name_zh;
  return role.name;
}

/** A role's description: built-in roles' descriptions are translated here. */
export function roleDescription(role) {
  if (role.builtin && role.key && t.has(`role_about.${role.key}`)) return t(`role_about.${role.key}`);
  return role.description || '';
}

/** A permission's description in the console language, falling back to the server's text. */
export function permissionDescription(name, serverText) {
  return t.has(`perm.${name}`) ? t(`perm.${name}`) : serverText || name;
}

/** The browser's IANA time zone names, for a <datalist>. */
export function timeZones() {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return ['UTC', 'Asia/Shanghai', 'Europe/London', 'America/New_York'];
  }
}

export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}
