// Pieces shared by the inbox list and the conversation view: labels, badges, the transition
// rules, and small caches of names (employees, teams, customers) the rows need.

import { h } from '../dom.js';
import { api } from '../api.js';
import { t, getLang } from '../i18n.js';
import { can, me } from '../state.js';
import { subscribe } from '../live.js';

export const STATUSES = ['open', 'pending', 'snoozed', 'resolved', 'closed'];
export const PRIORITIES = ['low', 'normal', 'high', 'urgent'];
export const CHANNEL_KINDS = ['web', 'api', 'email', 'sms', 'wechat', 'wecom', 'wechat_kf', 'dingtalk', 'feishu',
  'telegram', 'whatsapp', 'messenger', 'instagram', 'line', 'slack', 'phone'];

const STATUS_CLASS = { open: 'info', pending: 'warn', snoozed: '', resolved: 'ok', closed: '' };
const PRIORITY_CLASS = { low: '', normal: '', high: 'warn', urgent: 'off' };

/** The transitions people may make by hand (the server's Status::can_become). */
export function canBecome(from, to) {
  if (from === to || from === 'closed') return false;
  if (from === 'resolved') return to === 'open' || to === 'closed';
  return true;
}

export function statusLabel(status) {
  return t.has(`status.${status}`) ? t(`status.${status}`) : status;
}

export function statusBadge(status, testid) {
  return h('span', { class: ['badge', 'status', STATUS_CLASS[status]], testid, dataset: { status } }, statusLabel(status));
}

export function priorityLabel(priority) {
  return t.has(`priority.${priority}`) ? t(`priority.${priority}`) : priority;
}

export function priorityBadge(priority, testid) {
  return h('span', { class: ['badge', 'priority', PRIORITY_CLASS[priority]], testid, dataset: { priority } }, priorityLabel(priority));
}

export function channelLabel(kind) {
  return t.has(`channel_kind.${kind}`) ? t(`channel_kind.${kind}`) : kind;
}

/** A time as short as still unambiguous: the clock today, else the date and the clock. */
export function shortTime(ms) {
  if (ms === null || ms === undefined) return '—';
  const date = new Date(ms);
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  const options = sameDay
    ? { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }
    : { year: date.getFullYear() === now.getFullYear() ? undefined : 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  return new Intl.DateTimeFormat(getLang(), options).format(date);
}

/** The best name for a customer: the name, else an address, else the number. */
export function customerName(customer, id) {
  if (!customer) return t('inbox.customer_n', { id });
  return customer.name || customer.emails[0] || customer.phones[0] || t('inbox.customer_n', { id: customer.id });
}

// ---------------------------------------------------------------- name caches

const TTL_MS = 60000;
let directory = null;
let directoryAt = 0;
let directoryLoading = null;

/**
 * Employees and departments (teams) by id, as far as the employee may read them. Cached for a
 * minute; `fresh` reloads.
 */
export async function loadDirectory(fresh = false) {
  if (!fresh && directory && Date.now() - directoryAt < TTL_MS) return directory;
  if (!directoryLoading) {
    directoryLoading = Promise.all([
      can('employees.read') ? api.list('/api/v1/employees').catch(() => []) : [],
      can('org.read') ? api.list('/api/v1/departments').catch(() => []) : [],
    ]).then(([employees, departments]) => {
      directory = {
        employees: new Map(employees.map((e) => [e.id, e])),
        departments: new Map(departments.map((d) => [d.id, d])),
      };
      directoryAt = Date.now();
      return directory;
    }).finally(() => { directoryLoading = null; });
  }
  return directoryLoading;
}

export function employeeName(dir, id) {
  if (id === null || id === undefined) return null;
  const mine = me();
  if (mine && id === mine.id) return mine.display_name;
  const e = dir && dir.employees.get(id);
  return e ? e.display_name : t('inbox.employee_n', { id });
}

export function teamName(dir, id) {
  if (id === null || id === undefined) return null;
  const d = dir && dir.departments.get(id);
  return d ? d.name : t('inbox.team_n', { id });
}

/** Conversations with a customer message that arrived while the employee was elsewhere. */
export const unread = new Set();

subscribe((data) => {
  if (data.type !== 'message.created' || !data.message || data.message.direction !== 'inbound' || !data.conversation) return;
  if (location.pathname !== `/inbox/${data.conversation.id}`) unread.add(data.conversation.id);
});

/** Customers by id, fetched once each (the conversation list carries only the id). */
const customers = new Map();
/** The customers whose answer has arrived, for drawing a row without waiting. */
const known = new Map();

export function rememberCustomer(customer) {
  known.set(customer.id, customer);
  customers.set(customer.id, Promise.resolve(customer));
}

export function knownCustomer(id) {
  return known.get(id) || null;
}

export function getCustomer(id) {
  if (!can('customers.read')) return Promise.resolve(null);
  if (!customers.has(id)) {
    const pending = api.get(`/api/v1/customers/${id}`).then((p) => {
      known.set(id, p.customer);
      return p.customer;
    }).catch(() => {
      customers.delete(id);
      return null;
    });
    customers.set(id, pending);
  }
  return customers.get(id);
}

/** Forgets cached names when the session ends. */
export function forgetCaches() {
  customers.clear();
  known.clear();
  unread.clear();
  directory = null;
}
