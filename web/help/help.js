// The public help centre (`/help`, no sign-in): a search over the public articles
// (GET /api/v1/help/search?q=) and an article (`/help/articles/{id}`, GET /api/v1/help/articles/{id})
// rendered with the console's safe Markdown renderer. The language follows the browser (or the
// choice made here or in the console, kept in this browser); the texts are the console's
// `help.*` entries.

import { h, clear, select } from '/js/dom.js';
import { t, setLang, getLang, initialLang, rememberLang, LANGUAGES } from '/js/i18n.js';
import { renderMarkdown, plainPassage, questionTerms, highlight } from '/js/markdown.js';

const root = document.getElementById('help');

async function getJson(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new Error(t('help.offline'));
  }
  if (response.status === 404) throw new Error(t('help.not_found'));
  if (!response.ok) throw new Error(t('help.failed'));
  return response.json();
}

function go(path) {
  history.pushState(null, '', path);
  render();
}

function link(path, content, attrs = {}) {
  return h('a', {
    href: path, ...attrs,
    onclick: (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      go(path);
    },
  }, content);
}

function formatDate(ms) {
  if (!ms) return '';
  return new Intl.DateTimeFormat(getLang(), { year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
}

function header() {
  const language = select(LANGUAGES.map((l) => [l.code, l.label]), { value: getLang(), testid: 'help-lang', 'aria-label': t('header.language'), class: 'lang' });
  language.addEventListener('change', () => {
    setLang(language.value);
    rememberLang(language.value);
    render();
  });
  return h('header', { class: 'topbar help-top' },
    link('/help', [h('img', { src: '/favicon.svg', alt: '', width: 28, height: 28 }), h('span', { class: 'brand-name' }, t('help.title'))],
      { class: 'brand help-brand', testid: 'help-home' }),
    h('div', { class: 'spacer' }), language);
}

function searchForm(question) {
  const input = h('input', { type: 'search', testid: 'help-search-input', value: question, placeholder: t('help.placeholder'), maxlength: 500, 'aria-label': t('help.search') });
  const form = h('form', { class: 'kb-search-form help-search', role: 'search' }, input,
    h('button', { type: 'submit', class: 'primary', testid: 'help-search-submit' }, t('help.search')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = input.value.trim();
    go(q ? `/help?q=${encodeURIComponent(q)}` : '/help');
  });
  return { form, input };
}

async function renderSearch(main, question) {
  const { form, input } = searchForm(question);
  const results = h('div', { class: 'kb-results', testid: 'help-results', 'aria-live': 'polite' });
  main.append(h('h1', {}, t('help.heading')), h('p', { class: 'muted' }, t('help.intro')), form, results);
  input.focus();
  if (!question) return;
  results.append(h('p', { class: 'muted' }, t('help.searching')));
  try {
    const answer = await getJson(`/api/v1/help/search?q=${encodeURIComponent(question)}&limit=10`);
    const terms = questionTerms(question);
    clear(results).append(answer.answers.length
      ? h('ol', { class: 'kb-answers' }, answer.answers.map((a) => h('li', { class: 'kb-answer', testid: 'help-answer', dataset: { id: a.article_id } },
        h('div', { class: 'kb-answer-head' }, link(`/help/articles/${a.article_id}`, a.title, { testid: 'help-answer-title', class: 'strong' })),
        h('p', { class: 'kb-passage', testid: 'help-answer-passage' }, highlight(plainPassage(a.passage), terms)))))
      : h('p', { class: 'muted', testid: 'help-no-answers' }, t('help.no_answers')));
  } catch (err) {
    clear(results).append(h('p', { class: 'form-error', role: 'alert', testid: 'help-error' }, err.message));
  }
}

async function renderArticle(main, id) {
  main.append(link('/help', `← ${t('help.back')}`, { class: 'back', testid: 'help-back' }));
  try {
    const article = await getJson(`/api/v1/help/articles/${encodeURIComponent(id)}`);
    document.title = `${article.title} · ${t('help.title')}`;
    main.append(h('article', { class: 'card help-article', testid: 'help-article', dataset: { id: article.id }, lang: article.lang === 'zh' ? 'zh-CN' : 'en' },
      h('h1', { testid: 'help-article-title' }, article.title),
      article.published_at ? h('p', { class: 'muted small' }, t('help.updated', { date: formatDate(article.published_at) })) : null,
      renderMarkdown(article.body, { testid: 'help-article-body' })));
  } catch (err) {
    main.append(h('p', { class: 'form-error', role: 'alert', testid: 'help-error' }, err.message));
  }
}

function render() {
  document.documentElement.lang = getLang();
  document.title = t('help.title');
  const main = h('main', { class: 'help-main' });
  clear(root).append(header(), main);
  const article = /^\/help\/articles\/([^/]+)\/?$/.exec(location.pathname);
  if (article) renderArticle(main, article[1]);
  else renderSearch(main, new URLSearchParams(location.search).get('q') || '');
}

window.addEventListener('popstate', render);
setLang(initialLang());
render();
