// Pieces shared by the routing screens (routing.js), the offer pop-up and presence switch
// (presence.js) and the conversation's routing panel: labels for presence, question types,
// urgency, score terms and the router's reasons, and the "why this person" block of a decision.

import { h } from '../dom.js';
import { t, getLang } from '../i18n.js';

export const PRESENCES = ['online', 'busy', 'away', 'focus', 'offline'];
export const URGENCIES = ['low', 'normal', 'high', 'urgent'];
export const MEDIA = ['chat', 'email', 'call'];
/** The score's terms, in the order the router computes them (and the policy's weights). */
export const TERMS = ['skill_fit', 'past_contact', 'language', 'spare_capacity', 'idle_time', 'fairness', 'location', 'part_time'];

const PRESENCE_CLASS = { online: 'ok', busy: 'warn', away: '', focus: 'info', offline: '' };
const URGENCY_CLASS = { low: '', normal: '', high: 'warn', urgent: 'off' };

/** The router's reasons for leaving someone out (English from the server), translated. */
const EXCLUSIONS = {
  'transferred to someone else': 'routing.excl_transferred',
  'not online': 'routing.excl_not_online',
  'in focus: escalations only': 'routing.excl_focus',
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
