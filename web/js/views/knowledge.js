// The Knowledge section (knowledge.read), in tabs kept in the address
// (`/knowledge?tab=articles|review|entities|search|synonyms|transfer`):
// - Articles: filters (text in title or tags, status, draft state, language, tag, review
//   overdue) kept in the address; "New article" with knowledge.write opens the editor at
//   `/knowledge/articles/new`. An article is `/knowledge/articles/{id}` (knowledge-article.js).
// - Review queue (knowledge.manage): drafts waiting for review (draft_state=in_review).
// - Entities: knowledge-entities.js; an entity is `/knowledge/entities/{id}` with its graph.
// - Search: GET /knowledge/search; each answer's title, passage (the question's words marked)
//   and score; an answer opens its article. `&q=` keeps the question.
// - Synonyms: one set per line, terms split by commas or 、; saved with knowledge.manage.
// - Import/Export: a .json bundle, .md file or .zip uploaded as the raw body (publishing at once
//   if asked) with the report; exports as a JSON bundle or a zip of Markdown files.

import { h, clear, button, field, select, checkbox, table, toast, errorText, busy, saveBlob } from '../dom.js';
import { api, query } from '../api.js';
import { t } from '../i18n.js';
import { can, formatTime, formatDate } from '../state.js';
import { plainPassage, questionTerms, highlight } from '../markdown.js';
import {
  STATUSES, DRAFT_STATES, LANGS, statusBadge, draftBadge, visibilityBadge, langLabel, statusLabel, draftStateLabel,
  inLink, fieldErrors,
} from './knowledge-common.js';
import { mountArticle } from './knowledge-article.js';
import { mountEntities, mountEntity } from './knowledge-entities.js';

const TABS = ['articles', 'review', 'entities', 'search', 'synonyms', 'transfer'];

export async function mount(root, { navigate }) {
  const parts = location.pathname.split('/').filter(Boolean);
  if (parts[1] === 'articles' && parts[2]) {
    await mountArticle(root, { navigate, id: parts[2] === 'new' ? null : Number(parts[2]) });
    return;
  }
  if (parts[1] === 'entities' && parts[2]) {
    await mountEntity(root, { navigate, id: Number(parts[2]) });
    return;
  }
  const params = new URLSearchParams(location.search);
  const manage = can('knowledge.manage');
  const write = can('knowledge.write');
  const visible = TABS.filter((name) => name !== 'review' || manage);
  const tabs = h('div', { class: 'tabs', role: 'tablist', testid: 'kb-tabs' },
    visible.map((name) => button(t(`knowledge.tab_${name}`), {
      role: 'tab', class: 'tab', testid: `kb-tab-${name}`, dataset: { tab: name },
      onclick: () => show(name),
    })));
  const body = h('div', { class: 'kb-body' });
  const newButton = write ? button(t('knowledge.new_article'), {
    class: 'primary', testid: 'kb-new-article', onclick: () => navigate('/knowledge/articles/new'),
  }) : null;

  async function show(name, initial = {}) {
    if (name !== 'articles' && name !== 'search') history.replaceState(null, '', location.pathname + query({ tab: name }));
    for (const tab of tabs.children) {
      const current = tab.dataset.tab === name;
      tab.classList.toggle('active', current);
      tab.setAttribute('aria-selected', current ? 'true' : 'false');
    }
    const pane = h('div', { class: 'kb-pane', role: 'tabpanel', testid: `kb-pane-${name}` });
    clear(body).append(pane);
    try {
      if (name === 'articles') await mountArticles(pane, { navigate, initial, reviewOnly: false });
      else if (name === 'review') await mountArticles(pane, { navigate, initial: {}, reviewOnly: true });
      else if (name === 'entities') await mountEntities(pane, { navigate, manage });
      else if (name === 'search') await mountSearch(pane, { navigate, initial });
      else if (name === 'synonyms') await mountSynonyms(pane, { manage });
      else await mountTransfer(pane, { manage });
    } catch (err) {
      if (pane.isConnected) pane.append(h('p', { class: 'form-error', role: 'alert', testid: 'kb-error' }, errorText(err)));
    }
  }

  root.append(h('section', { class: 'page kb-page' },
    h('div', { class: 'page-head' }, h('h1', {}, t('nav.knowledge')),
      h('div', { class: 'head-buttons' },
        h('a', { href: '/help', target: '_blank', rel: 'noopener', testid: 'kb-help-link' }, t('knowledge.open_help')), newButton)),
    tabs, body));
  const wanted = params.get('tab');
  const initial = Object.fromEntries(params.entries());
  await show(visible.includes(wanted) ? wanted : 'articles', initial);
}

// ---------------------------------------------------------------- articles and the review queue

async function mountArticles(pane, { navigate, initial, reviewOnly }) {
  const q = h('input', { type: 'search', testid: 'kb-filter-q', value: initial.q || '', placeholder: t('knowledge.filter_q_placeholder') });
  const status = select([['', t('knowledge.any')], ...STATUSES.map((s) => [s, statusLabel(s)])], { testid: 'kb-filter-status', value: initial.status || '' });
  const draftState = select([['', t('knowledge.any')], ['none', t('knowledge.no_draft')], ...DRAFT_STATES.map((s) => [s, draftStateLabel(s)])],
    { testid: 'kb-filter-draft', value: initial.draft_state || '' });
  const lang = select([['', t('knowledge.any')], ...LANGS.map((l) => [l, langLabel(l)])], { testid: 'kb-filter-lang', value: initial.lang || '' });
  const tag = h('input', { type: 'search', testid: 'kb-filter-tag', value: initial.tag || '', placeholder: t('knowledge.filter_tag_placeholder') });
  const overdue = checkbox(t('knowledge.filter_overdue'), { testid: 'kb-filter-overdue', checked: initial.review_overdue === 'true' });
  const list = h('div', { testid: reviewOnly ? 'kb-review-list' : 'kb-article-list' });
  const count = h('span', { class: 'muted', testid: 'kb-article-count' });
  let seq = 0;

  function filters() {
    if (reviewOnly) return { draft_state: 'in_review' };
    return {
      q: q.value.trim(), status: status.value, draft_state: draftState.value === 'none' ? '' : draftState.value,
      lang: lang.value, tag: tag.value.trim(), review_overdue: overdue.querySelector('input').checked ? 'true' : '',
    };
  }

  async function load() {
    const mine = ++seq;
    const f = filters();
    if (!reviewOnly) history.replaceState(null, '', location.pathname + query({ ...f, draft_state: draftState.value }));
    let items = await api.list('/api/v1/knowledge/articles' + query(f));
    if (mine !== seq || !pane.isConnected) return;
    if (!reviewOnly && draftState.value === 'none') items = items.filter((a) => !a.draft_state);
    count.textContent = t('knowledge.article_count', { n: items.length });
    clear(list).append(renderTable(items));
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function renderTable(items) {
    const now = Date.now();
    const rows = items.map((a) => h('tr', { testid: 'kb-article-row', dataset: { id: a.id, title: a.title, status: a.status, draftState: a.draft_state || '' } },
      h('td', {}, inLink(navigate, `/knowledge/articles/${a.id}`, a.title, { testid: 'kb-article-link', class: 'strong' }),
        a.tags.length ? h('div', {}, a.tags.map((x) => h('span', { class: 'chip small' }, x))) : null),
      h('td', { class: 'nowrap' }, statusBadge(a.status), ' ', draftBadge(a.draft_state)),
      h('td', {}, langLabel(a.lang)),
      h('td', {}, visibilityBadge(a.visibility)),
      h('td', { class: 'num' }, a.version ? `v${a.version}` : '—'),
      h('td', { class: ['nowrap', a.review_due && a.review_due <= now && 'overdue'] }, a.review_due ? formatDate(a.review_due) : '—'),
      h('td', { class: 'nowrap' }, formatTime(a.updated_at))));
    return table([t('knowledge.title'), t('knowledge.status'), t('knowledge.language'), t('knowledge.visibility'), t('knowledge.version'),
      t('knowledge.review_due'), t('knowledge.updated')], rows, { testid: reviewOnly ? 'kb-review-table' : 'kb-article-table' });
  }

  if (reviewOnly) {
    pane.append(h('p', { class: 'muted' }, t('knowledge.review_intro')), h('div', { class: 'toolbar' }, count), list);
  } else {
    const form = h('form', { class: 'toolbar filters', testid: 'kb-filters' },
      field(t('common.search'), q), field(t('knowledge.status'), status), field(t('knowledge.draft'), draftState),
      field(t('knowledge.language'), lang), field(t('knowledge.tag'), tag), overdue,
      h('div', { class: 'toolbar-buttons' }, h('button', { type: 'submit', testid: 'kb-filter-apply' }, t('knowledge.apply'))),
      h('div', { class: 'spacer' }), count);
    form.addEventListener('submit', (event) => { event.preventDefault(); reload(); });
    for (const control of [status, draftState, lang, overdue.querySelector('input')]) control.addEventListener('change', reload);
    pane.append(form, list);
  }
  await load();
}

// ---------------------------------------------------------------- search

async function mountSearch(pane, { navigate, initial }) {
  const input = h('input', { type: 'search', testid: 'kb-search-input', value: initial.q || '', placeholder: t('knowledge.search_placeholder'), maxlength: 500 });
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'kb-search-submit' }, t('common.search'));
  const results = h('div', { class: 'kb-results', testid: 'kb-search-results', 'aria-live': 'polite' });
  const form = h('form', { class: 'kb-search-form', role: 'search' }, input, submit);
  let seq = 0;

  async function run() {
    const question = input.value.trim();
    history.replaceState(null, '', location.pathname + query({ tab: 'search', q: question }));
    if (!question) {
      clear(results);
      return;
    }
    const mine = ++seq;
    const answer = await api.get('/api/v1/knowledge/search' + query({ q: question, limit: 10 }));
    if (mine !== seq || !pane.isConnected) return;
    const terms = questionTerms(question);
    clear(results).append(answer.answers.length
      ? h('ol', { class: 'kb-answers' }, answer.answers.map((a) => h('li', { class: 'kb-answer', testid: 'kb-answer', dataset: { id: a.article_id } },
        h('div', { class: 'kb-answer-head' },
          inLink(navigate, `/knowledge/articles/${a.article_id}`, a.title, { testid: 'kb-answer-title', class: 'strong' }),
          visibilityBadge(a.visibility),
          h('span', { class: 'muted small' }, langLabel(a.lang)),
          h('span', { class: 'muted small kb-score', testid: 'kb-answer-score' }, t('knowledge.score', { score: a.score.toFixed(2) }))),
        h('p', { class: 'kb-passage', testid: 'kb-answer-passage' }, highlight(plainPassage(a.passage), terms)))))
      : h('p', { class: 'muted', testid: 'kb-no-answers' }, t('knowledge.no_answers')));
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(submit, run).catch((err) => toast(errorText(err), 'error'));
  });
  pane.append(h('p', { class: 'muted' }, t('knowledge.search_intro')), form, results);
  input.focus();
  if (input.value.trim()) await run();
}

// ---------------------------------------------------------------- synonyms

async function mountSynonyms(pane, { manage }) {
  const sets = await api.list('/api/v1/knowledge/synonyms');
  const area = h('textarea', {
    rows: 14, testid: 'kb-synonyms', readOnly: !manage, spellcheck: 'false',
    value: sets.map((s) => s.terms.join(', ')).join('\n'),
  });
  const count = h('span', { class: 'muted', testid: 'kb-synonym-count' }, t('knowledge.synonym_count', { n: sets.length }));
  const errors = fieldErrors({ sets: area });
  const save = manage ? button(t('common.save'), {
    class: 'primary', testid: 'kb-synonyms-save',
    onclick: () => busy(save, async () => {
      errors.clear();
      const lines = area.value.split('\n');
      const parsed = lines.map((line) => line.split(/[,，、]/).map((x) => x.trim()).filter(Boolean)).filter((terms) => terms.length);
      try {
        const saved = await api.put('/api/v1/knowledge/synonyms', { sets: parsed });
        area.value = saved.items.map((s) => s.terms.join(', ')).join('\n');
        count.textContent = t('knowledge.synonym_count', { n: saved.items.length });
        toast(t('knowledge.synonyms_saved', { n: saved.items.length }));
      } catch (err) {
        // The server counts the sets it was sent; show the problem with that set's terms.
        if (err.code === 'invalid_field') {
          const m = /^sets\[(\d+)\]/.exec(err.message || '');
          const reason = (err.message || '').replace(/^[^:]*: /, '');
          errors.mark('sets', m && parsed[Number(m[1])] ? t('knowledge.synonym_line_problem', { terms: parsed[Number(m[1])].join(', '), reason }) : reason);
        }
        toast(errorText(err), 'error');
      }
    }),
  }) : null;
  pane.append(
    h('p', { class: 'muted' }, t('knowledge.synonyms_intro')),
    h('div', { class: 'form' }, field(t('knowledge.synonym_sets'), area, t('knowledge.synonyms_hint'))),
    h('div', { class: 'toolbar' }, save, count));
}

// ---------------------------------------------------------------- import and export

async function mountTransfer(pane, { manage }) {
  const nodes = [];
  if (manage) {
    const file = h('input', { type: 'file', accept: '.json,.md,.markdown,.zip', testid: 'kb-import-file' });
    const publish = checkbox(t('knowledge.import_publish'), { testid: 'kb-import-publish' });
    const report = h('div', { testid: 'kb-import-report' });
    const errors = fieldErrors({ file });
    const start = button(t('knowledge.import'), {
      class: 'primary', testid: 'kb-import-submit',
      onclick: () => busy(start, async () => {
        errors.clear();
        clear(report);
        const chosen = file.files && file.files[0];
        if (!chosen) {
          errors.mark('file', t('knowledge.import_pick'));
          return;
        }
        try {
          const result = await api.upload('/api/v1/knowledge/import' + query({
            filename: chosen.name, publish: publish.querySelector('input').checked ? 'true' : '',
          }), chosen);
          report.append(importReport(result, chosen.name));
          toast(t('knowledge.imported', { name: chosen.name }));
        } catch (err) {
          errors.mark('file', err.message || errorText(err));
          toast(errorText(err), 'error');
        }
      }),
    });
    nodes.push(h('div', { class: 'card' },
      h('h2', {}, t('knowledge.import_title')),
      h('p', { class: 'muted' }, t('knowledge.import_intro')),
      h('div', { class: 'form' }, field(t('knowledge.import_file'), file, t('knowledge.import_hint')), publish,
        h('div', { class: 'form-actions' }, start)),
      report));
  }
  const exportButton = (format) => {
    const b = button(t(`knowledge.export_${format}`), {
      testid: `kb-export-${format}`,
      onclick: () => busy(b, async () => {
        try {
          const { blob, name } = await api.download('GET', '/api/v1/knowledge/export' + query({ format }));
          saveBlob(blob, name);
          toast(t('knowledge.exported', { name }));
        } catch (err) {
          toast(errorText(err), 'error');
        }
      }),
    });
    return b;
  };
  nodes.push(h('div', { class: 'card' },
    h('h2', {}, t('knowledge.export_title')),
    h('p', { class: 'muted' }, t('knowledge.export_intro')),
    h('div', { class: 'toolbar-buttons' }, exportButton('json'), exportButton('markdown'))));
  pane.append(...nodes);
}

function importReport(r, name) {
  const rows = [
    ['articles_created', r.articles_created], ['articles_published', r.articles_published],
    ['entities_created', r.entities_created], ['entities_updated', r.entities_updated],
    ['relations_created', r.relations_created], ['relations_existing', r.relations_existing],
    ['synonym_sets', r.synonym_sets],
  ];
  return h('div', { class: 'banner ok kb-report', role: 'status' },
    h('strong', {}, t('knowledge.import_done', { name })),
    h('dl', { class: 'details' }, rows.map(([key, value]) => [
      h('dt', {}, t(`knowledge.report_${key}`)), h('dd', { testid: `kb-report-${key}` }, String(value))])));
}
