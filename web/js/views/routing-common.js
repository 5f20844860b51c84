// Pieces shared by the routing screens (routing.js), the offer pop-up and presence switch
// (presence.js) and the conversation's routing panel: labels for presence, question types,
// urgency, score terms and the router's reasons, the "why this person" block of a decision,
// and for lanes, SLA clocks and hand-offs (the cached lane list, clock and level labels, due
// times, routing's own hand-off notes).

import { h, button, select, nextId } from '../dom.js';
import { api } from '../api.js';
import { t, getLang } from '../i18n.js';
import { formatDuration } from '../state.js';

export const PRESENCES = ['online', 'busy', 'away', 'focus', 'offline'];
export const URGENCIES = ['low', 'normal', 'high', 'urgent'];
export const MEDIA = ['chat', 'email', 'call'];
/** The score's terms, in the order the router computes them (and the policy's weights). */
export const TERMS = ['skill_fit', 'past_contact', 'language', 'spare_capacity', 'idle_time', 'fairness', 'location', 'part_time',
  'off_hours'];

const PRESENCE_CLASS = { online: 'ok', busy: 'warn', away: '', focus: 'info', offline: '' };
const URGENCY_CLASS = { low: '', normal: '', high: 'warn', urgent: 'off' };

/** The router's reasons for leaving someone out (English from the server), translated. */
const EXCLUSIONS = {
  'transferred to someone else': 'routing.excl_transferred',
  'not online': 'routing.excl_not_online',
  'in focus: escalations only': 'routing.excl_focus',
  'quiet hours': 'routing.excl_quiet',
  'outside working hours: escalations only': 'routing.excl_off_shift',
  'declined, missed or transferred this conversation': 'routing.excl_declined',
  'lacks a required skill': 'routing.excl_skill',
  "does not speak the customer's language": 'routing.excl_language',
  'part-time: the conversation has not waited long enough': 'routing.excl_part_time_delay',
  'part-time: daily cap reached': 'routing.excl_part_time_cap',
  'no spare capacity': 'routing.excl_capacity',
};

export function presenceLabel(presence) {
  return t.has(`presence.${presence}`) ? t(`presence.${presence}`) : presence;
}

export function presenceBadge(presence, testid) {
  return h('span', { class: ['badge', 'presence', PRESENCE_CLASS[presence]], testid, dataset: { presence } }, presenceLabel(presence));
}

/** A question type: the shipped ones are translated, an organisation's own shown as they are. */
export function typeLabel(type) {
  if (type === null || type === undefined || type === '') return t('routing.type_none');
  return t.has(`routing.type_${type}`) ? t(`routing.type_${type}`) : type;
}

export function urgencyLabel(urgency) {
  return t.has(`urgency.${urgency}`) ? t(`urgency.${urgency}`) : urgency;
}

export function urgencyBadge(urgency, testid) {
  return h('span', { class: ['badge', 'urgency', URGENCY_CLASS[urgency]], testid, dataset: { urgency } }, urgencyLabel(urgency));
}

export function termLabel(name) {
  return t.has(`routing.term_${name}`) ? t(`routing.term_${name}`) : name;
}

export function mediumLabel(medium) {
  return t.has(`routing.medium_${medium}`) ? t(`routing.medium_${medium}`) : medium;
}

export function outcomeLabel(outcome) {
  return t(`routing.outcome_${outcome || 'open'}`);
}

export function languageLabel(code) {
  return t.has(`routing.lang_${code}`) ? t(`routing.lang_${code}`) : code;
}

export function exclusionText(reason) {
  return EXCLUSIONS[reason] ? t(EXCLUSIONS[reason]) : reason;
}

/** `rule:律师`, `model:high 0.71`, `vip:2`, `repeat:3` as a sentence. */
export function urgencyReasonText(reason) {
  const [kind, ...rest] = String(reason).split(':');
  const detail = rest.join(':');
  if (kind === 'rule') return t('routing.reason_rule', { word: detail });
  if (kind === 'model') {
    const [level, p] = detail.split(' ');
    return t('routing.reason_model', { level: urgencyLabel(level), p: percent(Number(p)) });
  }
  if (kind === 'vip') return t('routing.reason_vip', { n: detail });
  if (kind === 'repeat') return t('routing.reason_repeat', { n: Number(detail) });
  return reason;
}

export function percent(p) {
  if (!Number.isFinite(p)) return '—';
  return new Intl.NumberFormat(getLang(), { style: 'percent', maximumFractionDigits: 0 }).format(p);
}

export function number(x, digits = 2) {
  if (!Number.isFinite(x)) return '—';
  return new Intl.NumberFormat(getLang(), { maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(x);
}

/** A term's points with their sign: +2.7, −1. */
export function points(x) {
  if (!Number.isFinite(x)) return '—';
  if (Math.abs(x) < 0.005) return '0';
  const text = number(Math.abs(x));
  return x < 0 ? `−${text}` : `+${text}`;
}

/** The terms that counted most for a candidate, biggest first. */
export function topTerms(candidate, n = 3) {
  return [...(candidate.terms || [])]
    .filter((term) => Math.abs(term.points) >= 0.005)
    .sort((a, b) => Math.abs(b.points) - Math.abs(a.points))
    .slice(0, n);
}

/** Seconds left until `ms` as m:ss. */
export function countdown(ms) {
  const secs = Math.max(0, Math.ceil((ms - Date.now()) / 1000));
  return `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}`;
}

/** "Chat 1/5 · E-mail 0/10 · Calls 0/1", with the numbers in data attributes. */
export function loadNode(load = {}, capacity = {}, testid) {
  const dataset = {};
  for (const m of MEDIA) dataset[m] = String(load[m] || 0);
  return h('span', { class: 'load', testid, dataset }, MEDIA.map((m, i) => {
    const used = load[m] || 0;
    const cap = capacity[m] ?? 0;
    return [i ? ' · ' : '', h('span', { class: ['load-item', used > 0 && used >= cap && 'full'] }, `${mediumLabel(m)} ${used}/${cap}`)];
  }));
}

/** One candidate's score terms as a small table. */
export function termsTable(candidate) {
  return h('table', { class: 'terms', testid: 'decision-terms' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, t('routing.term')),
      h('th', { scope: 'col', class: 'num' }, t('routing.value')),
      h('th', { scope: 'col', class: 'num' }, t('routing.points')))),
    h('tbody', {}, (candidate.terms || []).map((term) => h('tr', {
      testid: 'decision-term', class: Math.abs(term.points) < 0.005 ? 'zero' : undefined, dataset: { name: term.name },
    },
      h('td', {}, termLabel(term.name)),
      h('td', { class: 'num' }, number(term.value)),
      h('td', { class: ['num', term.points < 0 && 'negative'] }, points(term.points))))),
    h('tfoot', {}, h('tr', {},
      h('th', { scope: 'row', colspan: 2 }, t('routing.score')),
      h('td', { class: 'num strong', testid: 'decision-score' }, number(candidate.score)))));
}

/**
 * Why a decision chose whom: the chosen employee's terms, the runners-up and those left out.
 * `nameOf(id)` gives an employee's name.
 */
export function decisionDetails(decision, nameOf) {
  const runners = decision.runners_up || [];
  const excluded = decision.excluded || [];
  return h('div', { class: 'decision-body' },
    termsTable(decision.chosen),
    runners.length ? [
      h('div', { class: 'label small' }, t('routing.runners_up')),
      h('ul', { class: 'runners', testid: 'decision-runners-up' }, runners.map((c) => h('li', { testid: 'decision-runner-up', dataset: { id: c.agent } },
        h('span', {}, nameOf(c.agent)), h('span', { class: 'muted num' }, number(c.score))))),
    ] : null,
    excluded.length ? [
      h('div', { class: 'label small' }, t('routing.excluded')),
      h('ul', { class: 'runners', testid: 'decision-excluded' }, excluded.map(([id, reason]) => h('li', { dataset: { id } },
        h('span', {}, nameOf(id)), h('span', { class: 'muted' }, exclusionText(reason))))),
    ] : null,
    h('p', { class: 'muted small decision-meta' },
      t(decision.method === 'joint' ? 'routing.method_joint' : 'routing.method_greedy'), ' · ',
      t('routing.decision_meta', { version: decision.policy_version, n: decision.eligible })));
}

// ---------------------------------------------------------------- lanes, SLA clocks, hand-offs

/** The question types the shipped classifier knows (an organisation may add its own). */
export const KNOWN_TYPES = ['pre_sales', 'technical', 'billing', 'after_sales', 'complaint'];
export const CLOCKS = ['first_response', 'next_response', 'resolution'];
export const SLA_LEVELS = ['ok', 'warning', 'breached'];
export const SLA_ACTIONS = ['raise_priority', 'relax', 'escalate', 'notify_supervisors'];
const LEVEL_CLASS = { ok: 'ok', warning: 'warn', breached: 'off' };

const LANES_TTL_MS = 60000;
let lanesCache = null;
let lanesAt = 0;
let lanesLoading = null;

/** The lanes in order (GET /api/v1/routing/lanes), cached for a minute; `fresh` reloads. */
export async function loadLanes(fresh = false) {
  if (!fresh && lanesCache && Date.now() - lanesAt < LANES_TTL_MS) return lanesCache;
  if (!lanesLoading) {
    lanesLoading = api.list('/api/v1/routing/lanes').then((items) => {
      lanesCache = items;
      lanesAt = Date.now();
      return items;
    }).finally(() => { lanesLoading = null; });
  }
  return lanesLoading;
}

/** The lanes as far as they were loaded (for texts drawn without waiting). */
export function knownLanes() {
  return lanesCache || [];
}

/** Forgets the cached lanes (after a change, or when the session ends). */
export function forgetLanes() {
  lanesCache = null;
  lanesAt = 0;
}

/** A lane's name from a list of lanes, or "Lane 7" for one that is gone. */
export function laneName(lanes, id) {
  if (id === null || id === undefined) return t('lane.none');
  const lane = (lanes || []).find((l) => l.id === id);
  return lane ? lane.name : t('lane.lane_n', { id });
}

export function clockLabel(kind) {
  return t.has(`sla.clock_${kind}`) ? t(`sla.clock_${kind}`) : kind;
}

export function levelLabel(level) {
  return t.has(`sla.level_${level}`) ? t(`sla.level_${level}`) : level;
}

export function levelBadge(level, testid) {
  return h('span', { class: ['badge', 'sla-level', LEVEL_CLASS[level]], testid, dataset: { level } }, levelLabel(level));
}

export function slaActionLabel(action) {
  return t.has(`sla.action_${action}`) ? t(`sla.action_${action}`) : action;
}

/** "due in 4 min 10 s" or "overdue by 1 h 2 min" for a deadline in epoch milliseconds. */
export function dueText(dueAt, now = Date.now()) {
  if (dueAt === null || dueAt === undefined) return '—';
  const secs = Math.round((dueAt - now) / 1000);
  return secs >= 0
    ? t('sla.due_in', { time: formatDuration(secs) })
    : t('sla.overdue_by', { time: formatDuration(-secs) });
}

/** A target in business seconds as the largest whole unit: "5 min", "2 h", "3 d". */
export function targetText(secs) {
  if (secs === null || secs === undefined) return t('sla.no_target');
  if (secs >= 86400 && secs % 86400 === 0) return t('sla.days', { n: secs / 86400 });
  if (secs >= 3600 && secs % 3600 === 0) return t('sla.hours', { n: secs / 3600 });
  if (secs >= 60 && secs % 60 === 0) return t('sla.minutes', { n: secs / 60 });
  return formatDuration(secs);
}

/**
 * A hand-off note: routing's own notes for SLA escalations ("SLA first response target
 * breached") are translated, people's notes shown as they are.
 */
export function handOffNoteText(note) {
  const sla = /^SLA (first response|next response|resolution) target (breached|at risk)$/.exec(note || '');
  if (!sla) return note || '';
  return t(sla[2] === 'breached' ? 'sla.note_breached' : 'sla.note_at_risk', { clock: clockLabel(sla[1].replace(' ', '_')) });
}

// ---------------------------------------------------------------- form pieces

/** A whole number from an input, or the reason it is not one. */
export function wholeNumber(input, label, min, max) {
  const value = Number(input.value);
  if (input.value.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    throw { code: 'client', message: '', text: t('routing.whole_number', { field: label, min, max }) };
  }
  return value;
}

export function decimal(input, label, min, max) {
  const value = Number(input.value);
  if (input.value.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw { code: 'client', message: '', text: t('routing.number_range', { field: label, min, max }) };
  }
  return value;
}

/** Rows of skill name and level; returns { node, values() }. */
export function skillEditor(skills, suggestions, { testid = 'agent-skills' } = {}) {
  const listId = nextId('skills');
  const rows = [];
  const list = h('div', { class: 'skill-rows' });
  function addRow(name = '', level = 3) {
    const nameInput = h('input', {
      value: name, testid: 'skill-name', list: listId, maxlength: 40, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false',
      placeholder: t('routing.skill_name'), 'aria-label': t('routing.skill_name'),
    });
    const levelSelect = select([1, 2, 3, 4, 5].map((n) => [n, t('routing.level_option', { n, label: t(`routing.level_${n}`) })]), {
      value: level, testid: 'skill-level', 'aria-label': t('routing.skill_level'),
    });
    const entry = { nameInput, levelSelect };
    const node = h('div', { class: 'skill-row' }, nameInput, levelSelect,
      button('×', {
        class: 'icon', testid: 'skill-remove', 'aria-label': t('routing.skill_remove'),
        onclick: () => { node.remove(); rows.splice(rows.indexOf(entry), 1); },
      }));
    rows.push(entry);
    list.append(node);
    return entry;
  }
  for (const [name, level] of Object.entries(skills)) addRow(name, level);
  const add = button(t('routing.skill_add'), { class: 'small', testid: 'skill-add', onclick: () => addRow().nameInput.focus() });
  return {
    node: h('div', { testid }, list, add, h('datalist', { id: listId }, suggestions.map((s) => h('option', { value: s })))),
    values() {
      const out = {};
      for (const { nameInput, levelSelect } of rows) {
        const name = nameInput.value.trim();
        if (!name) continue;
        const key = name.toLowerCase();
        if (Object.prototype.hasOwnProperty.call(out, key)) throw { code: 'client', message: '', text: t('routing.skill_twice', { name }) };
        out[key] = Number(levelSelect.value);
      }
      return out;
    },
  };
}
