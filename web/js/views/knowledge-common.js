// Pieces shared by the Knowledge section's views (knowledge.js, knowledge-article.js,
// knowledge-entities.js): the labels of statuses, kinds and relations, badges, links inside the
// section, the entity picker and the server's field errors shown at the field.

import { h, button, select } from '../dom.js';
import { api, query } from '../api.js';
import { t } from '../i18n.js';

export const STATUSES = ['draft', 'published', 'archived'];
export const DRAFT_STATES = ['editing', 'in_review', 'changes_requested'];
export const VISIBILITIES = ['internal', 'public', 'departments'];
export const LANGS = ['zh', 'en'];
export const ENTITY_KINDS = ['product', 'component', 'feature', 'known_issue', 'fix', 'policy', 'team', 'topic'];
export const RELATION_KINDS = ['has_component', 'has_feature', 'has_known_issue', 'fixed_by', 'about', 'owned_by', 'governed_by',
  'related_to'];
/** Relations from an article to an entity (the part-of kinds relate two entities only). */
export const ARTICLE_RELATION_KINDS = ['about', 'owned_by', 'governed_by', 'related_to', 'fixed_by'];

const label = (prefix, value) => (t.has(`${prefix}${value}`) ? t(`${prefix}${value}`) : String(value));
export const statusLabel = (s) => label('knowledge.status_', s);
export const draftStateLabel = (s) => label('knowledge.draft_', s);
export const visibilityLabel = (v) => label('knowledge.visibility_', v);
export const langLabel = (l) => label('knowledge.lang_', l);
export const kindLabel = (k) => label('knowledge.kind_', k);
export const relationLabel = (k) => label('knowledge.rel_', k);

export function statusBadge(status) {
  const cls = status === 'published' ? 'ok' : status === 'archived' ? 'off' : 'info';
  return h('span', { class: ['badge', cls], testid: 'kb-status', dataset: { status } }, statusLabel(status));
}

export function draftBadge(state) {
  if (!state) return null;
  const cls = state === 'in_review' ? 'warn' : state === 'changes_requested' ? 'warn' : 'info';
  return h('span', { class: ['badge', cls], testid: 'kb-draft-state', dataset: { state } }, draftStateLabel(state));
}

export function visibilityBadge(visibility) {
  return h('span', { class: ['badge', 'kb-visibility'], testid: 'kb-visibility', dataset: { visibility } }, visibilityLabel(visibility));
}

export function kindChip(kind) {
  return h('span', { class: ['chip', 'kb-kind', `kind-${kind}`], dataset: { kind } }, kindLabel(kind));
}

/** A link inside the section that navigates without reloading. */
export function inLink(navigate, path, content, attrs = {}) {
  return h('a', {
    href: path, ...attrs,
    onclick: (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      navigate(path);
    },
  }, content);
}

export function nodePath(node) {
  return node.kind === 'article' ? `/knowledge/articles/${node.id}` : `/knowledge/entities/${node.id}`;
}

/** A date input's value (YYYY-MM-DD) from milliseconds, in the browser's time zone. */
export function dateValue(ms) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Milliseconds at the start of a YYYY-MM-DD day in the browser's time zone (null when empty). */
export function dateMillis(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || '');
  if (!m) return null;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])).getTime();
}

/** Tags from "a, b、c" (commas in either script, 、 or semicolons). */
export function parseTags(text) {
  return String(text || '').split(/[,，、;；]/).map((x) => x.trim()).filter(Boolean);
}

// ---------------------------------------------------------------- field errors

/**
 * An invalid_field error's `field: reason` split in two: { field, index, reason } with `field`
 * the first path segment (`department_ids`, `sets`) and `index` a list position when named.
 */
export function fieldProblem(err) {
  if (!err || err.code !== 'invalid_field' || !err.message) return null;
  const m = /^([a-z_]+)(?:\[(\d+)\])?(?:[.[][^:]*)?: ([\s\S]*)$/.exec(err.message);
  return m ? { field: m[1], index: m[2] === undefined ? null : Number(m[2]), reason: m[3] } : null;
}

/**
 * Marks the inputs named by the server's field error. `inputs` maps field names to controls;
 * returns true when the error was shown at a field. `clear()` removes earlier marks.
 */
export function fieldErrors(inputs, testid = 'kb-field-error') {
  const shown = [];
  return {
    clear() {
      for (const node of shown.splice(0)) {
        if (node.input) node.input.removeAttribute('aria-invalid');
        node.note.remove();
      }
    },
    show(err) {
      const problem = fieldProblem(err);
      if (!problem || !inputs[problem.field]) return false;
      const input = inputs[problem.field];
      input.setAttribute('aria-invalid', 'true');
      const note = h('small', { class: 'field-error', role: 'alert', testid, dataset: { field: problem.field } },
        problem.index === null ? problem.reason : t('knowledge.item_problem', { n: problem.index + 1, reason: problem.reason }));
      const holder = input.closest('.field') || input.parentElement;
      holder.append(note);
      shown.push({ input, note });
      return true;
    },
    mark(key, reason) {
      const input = inputs[key];
      if (!input) return;
      input.setAttribute('aria-invalid', 'true');
      const note = h('small', { class: 'field-error', role: 'alert', testid, dataset: { field: key } }, reason);
      (input.closest('.field') || input.parentElement).append(note);
      shown.push({ input, note });
    },
  };
}

// ---------------------------------------------------------------- entity picker

/**
 * Picks an entity by name: a search box, the matches as buttons, and the chosen one shown.
 * Returns { node, chosen(), input }.
 */
export function entityPicker({ testid = 'kb-entity-picker', exclude = null } = {}) {
  const input = h('input', { type: 'search', testid: 'kb-entity-search', placeholder: t('knowledge.entity_search_placeholder'), autocomplete: 'off' });
  const kind = select([['', t('knowledge.all_kinds')], ...ENTITY_KINDS.map((k) => [k, kindLabel(k)])], { testid: 'kb-entity-search-kind', 'aria-label': t('knowledge.entity_kind') });
  const results = h('div', { class: 'kb-picker-results', testid: 'kb-entity-results', role: 'listbox' });
  const picked = h('p', { class: 'kb-picked', testid: 'kb-entity-picked' }, h('span', { class: 'muted' }, t('knowledge.none_picked')));
  let chosen = null;
  let seq = 0;
  let timer = null;

  async function search() {
    const mine = ++seq;
    const items = await api.list('/api/v1/knowledge/entities' + query({ q: input.value.trim(), kind: kind.value }));
    if (mine !== seq) return;
    const shown = items.filter((e) => e.id !== exclude).slice(0, 30);
    results.replaceChildren(...(shown.length ? shown.map((e) => button([kindChip(e.kind), ' ', e.name], {
      class: ['kb-picker-option', chosen && chosen.id === e.id && 'active'], role: 'option', testid: 'kb-entity-option',
      dataset: { id: e.id, name: e.name },
      onclick: () => {
        chosen = e;
        picked.replaceChildren(t('knowledge.picked'), ' ', kindChip(e.kind), ' ', h('strong', {}, e.name));
        picked.dataset.id = e.id;
        for (const b of results.querySelectorAll('button')) b.classList.toggle('active', b.dataset.id === String(e.id));
      },
    })) : [h('p', { class: 'muted small' }, t('knowledge.no_entities_found'))]));
  }
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => search().catch(() => {}), 200);
  };
  input.addEventListener('input', later);
  kind.addEventListener('change', later);
  search().catch(() => {});
  return {
    node: h('div', { class: 'kb-picker', testid }, h('div', { class: 'kb-picker-bar' }, input, kind), results, picked),
    chosen: () => chosen,
    input,
  };
}
