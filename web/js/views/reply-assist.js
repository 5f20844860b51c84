// Assist in the reply box and the message list.
//
// - Suggestions while typing: GET /api/v1/conversations/{id}/suggestions?draft= (debounced, and
//   when the conversation opens or the customer writes again) fills a panel of knowledge
//   passages and past replies; one click inserts the text at the caret (or over the selection).
//   When the reply is sent, POST …/suggestions/feedback says which were shown, which was inserted
//   and whether it was edited before sending (a failure there is ignored).
// - Sensitive words: POST /api/v1/assist/check {text} (debounced) gives the matches in UTF-16
//   positions; they are highlighted in a mirror layer behind the transparent textarea (a colour
//   per severity: block, warn, flag), listed under the box with their category, with the verdict
//   (would be refused / needs confirmation) and the rudeness hint.
// - AI drafts, when the server has a model server configured (GET /api/v1/assist/llm, asked once
//   per page load): "Draft with AI" and "Polish" POST /api/v1/conversations/{id}/draft and put
//   the answer in the reply box (never sent by itself) with the articles it cited; a spinner
//   while waiting; the server's error (llm_unavailable, llm_bad_response, …) under the buttons.
// - Badges: a customer message's emotion, a message's sensitive words, a reply read as rude, and
//   a conversation's emotion (header and inbox list).

import { h, button, errorText } from '../dom.js';
import { api, query } from '../api.js';
import { t } from '../i18n.js';

const SUGGEST_MS = 250;
const CHECK_MS = 300;
const SEVERITIES = ['flag', 'warn', 'block'];

// ---------------------------------------------------------------- badges

export function emotionLabel(emotion) {
  return t.has(`assist.emotion_${emotion}`) ? t(`assist.emotion_${emotion}`) : emotion;
}

export function severityLabel(severity) {
  return t.has(`assist.severity_${severity}`) ? t(`assist.severity_${severity}`) : severity;
}

/** An anxious or angry badge; nothing for calm (or no reading). */
export function emotionBadge(emotion, testid = 'message-emotion') {
  if (!emotion || emotion === 'calm') return null;
  return h('span', {
    class: ['badge', 'emotion', emotion === 'angry' ? 'off' : 'warn'], testid, dataset: { emotion },
    title: t('assist.emotion_title', { emotion: emotionLabel(emotion) }),
  }, emotionLabel(emotion));
}

/** The conversation's emotion (`conversation.emotion.emotion`) as a badge. */
export function conversationEmotionBadge(conversation) {
  const reading = conversation && conversation.emotion;
  return emotionBadge(reading && reading.emotion, 'conversation-emotion');
}

/** A message's sensitive words: one flag badge naming them. */
export function sensitiveBadge(notes) {
  if (!notes || !notes.length) return null;
  const worst = notes.reduce((w, n) => (SEVERITIES.indexOf(n.severity) > SEVERITIES.indexOf(w) ? n.severity : w), 'flag');
  const words = [...new Set(notes.map((n) => n.text || n.word))];
  const title = notes.map((n) => t('assist.word_title', { word: n.word, category: n.category || t('assist.no_category'), severity: severityLabel(n.severity) })).join('\n');
  return h('span', {
    class: ['badge', 'sensitive', `sev-${worst}`], testid: 'message-sensitive', dataset: { severity: worst, words: words.join('|') }, title,
  }, t('assist.sensitive_badge', { words: words.join(t('assist.list_separator')) }));
}

/** A reply that read as rude. */
export function rudeBadge(rude) {
  if (!rude || !rude.rude) return null;
  const evidence = rude.evidence && rude.evidence.length ? rude.evidence.join(t('assist.list_separator')) : '';
  return h('span', {
    class: ['badge', 'rude', 'off'], testid: 'message-rude',
    title: evidence ? t('assist.rude_title_evidence', { evidence }) : t('assist.rude_title'),
  }, t('assist.rude_badge'));
}

// ---------------------------------------------------------------- AI drafts

/** Whether the server drafts with a model: asked once, a failure counts as "no". */
let llmStatus = null;
function llmEnabled() {
  if (!llmStatus) {
    llmStatus = api.get('/api/v1/assist/llm').then((s) => !!(s && s.enabled)).catch(() => false);
  }
  return llmStatus;
}

/**
 * "Draft with AI" and "Polish" beside the reply box: fill `textarea` with the model's draft,
 * showing the cited articles. Hidden unless the connector is on and `active()`.
 */
function aiDrafts(textarea, { conversationId, active, navigate }) {
  const draftButton = button(t('assist.ai_draft'), { class: 'small', testid: 'ai-draft', title: t('assist.ai_draft_title') });
  const polishButton = button(t('assist.ai_polish'), { class: 'small', testid: 'ai-polish', title: t('assist.ai_polish_title') });
  const spinner = h('span', { class: 'spinner', testid: 'ai-spinner', role: 'status', 'aria-label': t('assist.ai_working'), hidden: true });
  const error = h('p', { class: 'form-error small', role: 'alert', testid: 'ai-error', hidden: true });
  const sources = h('p', { class: 'ai-sources small muted', testid: 'ai-sources', hidden: true });
  const node = h('div', { class: 'ai-drafts', testid: 'ai-drafts', hidden: true },
    h('div', { class: 'ai-bar' }, draftButton, polishButton, spinner), error, sources);
  let enabled = false;
  let busy = false;

  const show = () => {
    node.hidden = !(enabled && active());
    polishButton.disabled = busy || !textarea.value.trim();
    draftButton.disabled = busy;
  };

  function drawSources(answer) {
    const cited = answer.sources || [];
    sources.replaceChildren(t('assist.ai_model', { model: answer.model || '' }), ' · ',
      cited.length ? t('assist.ai_sources') : t('assist.ai_no_sources'),
      ...cited.flatMap((s, i) => [i ? t('assist.list_separator') : ' ', h('a', {
        href: `/knowledge/articles/${s.article_id}`, testid: 'ai-source', dataset: { id: s.article_id },
        onclick: (event) => {
          if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
          event.preventDefault();
          navigate(`/knowledge/articles/${s.article_id}`);
        },
      }, s.title)]));
    sources.hidden = false;
  }

  async function ask(mode) {
    if (busy) return;
    busy = true;
    error.hidden = true;
    spinner.hidden = false;
    show();
    const body = { mode };
    const typed = textarea.value.slice(0, 4000);
    if (typed.trim()) body.text = typed;
    try {
      const answer = await api.post(`/api/v1/conversations/${conversationId}/draft`, body);
      // The employee may have moved on (a note, another answer) while the model wrote.
      if (active()) {
        textarea.value = answer.text;
        textarea.dispatchEvent(new Event('input', { bubbles: true }));
        textarea.focus();
        drawSources(answer);
      }
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    } finally {
      busy = false;
      spinner.hidden = true;
      show();
    }
  }

  draftButton.addEventListener('click', () => ask('draft'));
  polishButton.addEventListener('click', () => ask('polish'));
  textarea.addEventListener('input', show);
  llmEnabled().then((on) => {
    enabled = on;
    show();
  });
  return {
    node,
    refresh: show,
    reset() {
      sources.hidden = true;
      error.hidden = true;
      show();
    },
  };
}

// ---------------------------------------------------------------- the reply box

/**
 * An article's passage as a reply: Markdown heading lines (the section's title) are left out
 * when there is more than a heading.
 */
export function plainPassage(text) {
  const lines = String(text || '').split('\n');
  const body = lines.filter((line) => !/^\s{0,3}#{1,6}\s/.test(line));
  return (body.some((line) => line.trim()) ? body : lines.map((line) => line.replace(/^\s{0,3}#{1,6}\s+/, ''))).join('\n').trim();
}

/**
 * Wraps the reply `textarea` with suggestions and sensitive-word highlighting.
 * `conversationId`; `active()` says whether assist applies now (a reply, not a note);
 * `navigate(path)` opens an article. Returns { panel, box, status, rudeHint, ai, refresh(),
 * sent(text) } where `box` replaces the textarea in the form and `ai` holds the AI draft buttons.
 */
export function replyAssist(textarea, { conversationId, active, navigate }) {
  // ------------------------------------------------ highlighting
  const mirror = h('div', { class: 'reply-mirror', 'aria-hidden': 'true', testid: 'reply-highlights' });
  const box = h('div', { class: 'reply-box' }, mirror, textarea);
  const status = h('div', { class: 'assist-status', testid: 'sensitive-summary', 'aria-live': 'polite', hidden: true });
  const rudeHint = h('p', { class: 'assist-rude small', testid: 'rude-hint', role: 'status', hidden: true }, t('assist.rude_hint'));
  /** The last check's answer and the text it was for. */
  let checked = { text: '', matches: [], verdict: 'ok', rude: false };
  let checkTimer = null;
  let checkSeq = 0;

  function drawMirror() {
    const value = textarea.value;
    const matches = checked.text === value ? checked.matches : [];
    const parts = [];
    let at = 0;
    for (const m of [...matches].sort((a, b) => a.start - b.start)) {
      if (m.start < at || m.end > value.length || m.end <= m.start) continue;
      parts.push(value.slice(at, m.start));
      parts.push(h('mark', {
        class: ['sensitive-mark', `sev-${m.severity}`], testid: 'sensitive-highlight',
        dataset: { severity: m.severity, word: m.word, category: m.category || '', start: m.start, end: m.end },
        title: t('assist.word_title', { word: m.word, category: m.category || t('assist.no_category'), severity: severityLabel(m.severity) }),
      }, value.slice(m.start, m.end)));
      at = m.end;
    }
    // A trailing space keeps a final line break as tall as in the textarea.
    parts.push(value.slice(at), ' ');
    mirror.replaceChildren(...parts.map((p) => (typeof p === 'string' ? document.createTextNode(p) : p)));
    syncScroll();
  }

  function syncScroll() {
    // The textarea's scroll bar narrows its text; the mirror must wrap the same way.
    const bar = Math.max(0, textarea.offsetWidth - textarea.clientWidth - 2);
    mirror.style.paddingRight = bar ? `calc(.6rem + ${bar}px)` : '';
    mirror.scrollTop = textarea.scrollTop;
  }

  function drawStatus() {
    const on = active() && checked.text === textarea.value;
    const matches = on ? checked.matches : [];
    status.replaceChildren();
    status.dataset.verdict = on ? checked.verdict : 'ok';
    if (matches.length) {
      const verdict = checked.verdict === 'block' ? t('assist.verdict_block')
        : checked.verdict === 'warn' ? t('assist.verdict_warn') : t('assist.verdict_flag');
      const seen = new Set();
      const chips = [];
      for (const m of matches) {
        const id = `${m.word}|${m.text}`;
        if (seen.has(id)) continue;
        seen.add(id);
        chips.push(h('span', {
          class: ['chip', 'sensitive-chip', `sev-${m.severity}`], testid: 'sensitive-word', dataset: { severity: m.severity, word: m.word },
          title: t('assist.word_title', { word: m.word, category: m.category || t('assist.no_category'), severity: severityLabel(m.severity) }),
        }, m.text === m.word ? m.word : t('assist.word_as_written', { text: m.text, word: m.word }),
        m.category ? h('span', { class: 'muted small' }, ` · ${m.category}`) : null));
      }
      status.append(h('span', { class: ['assist-verdict', `verdict-${checked.verdict}`], testid: 'sensitive-verdict', dataset: { verdict: checked.verdict } }, verdict), ' ', ...chips);
    }
    status.hidden = !matches.length;
    rudeHint.hidden = !(on && checked.rude);
  }

  function scheduleCheck() {
    clearTimeout(checkTimer);
    if (!active() || !textarea.value.trim()) {
      checkSeq += 1;
      checked = { text: textarea.value, matches: [], verdict: 'ok', rude: false };
      drawMirror();
      drawStatus();
      return;
    }
    // Until the answer comes, highlights of the old text would sit at wrong places.
    drawMirror();
    drawStatus();
    checkTimer = setTimeout(runCheck, CHECK_MS);
  }

  async function runCheck() {
    const text = textarea.value;
    const mine = ++checkSeq;
    let answer;
    try {
      answer = await api.post('/api/v1/assist/check', { text: text.slice(0, 20000) });
    } catch {
      return; // highlighting is a help; the server checks again when the reply is sent
    }
    if (mine !== checkSeq) return;
    checked = { text, matches: answer.matches || [], verdict: answer.verdict || 'ok', rude: !!(answer.rudeness && answer.rudeness.rude) };
    drawMirror();
    drawStatus();
  }

  // ------------------------------------------------ suggestions
  const list = h('ul', { class: 'suggestion-list', testid: 'suggestion-list' });
  const panel = h('section', { class: 'suggestions', testid: 'suggestions', 'aria-label': t('assist.suggestions'), hidden: true },
    h('h4', { class: 'suggestions-title' }, t('assist.suggestions')), list);
  let suggestTimer = null;
  let suggestSeq = 0;
  /** Keys shown while this reply was written, and what was inserted. */
  const shown = new Set();
  let inserted = null;

  function scheduleSuggestions(delay = SUGGEST_MS) {
    clearTimeout(suggestTimer);
    if (!active()) {
      suggestSeq += 1;
      panel.hidden = true;
      return;
    }
    suggestTimer = setTimeout(loadSuggestions, delay);
  }

  async function loadSuggestions() {
    const mine = ++suggestSeq;
    let answer;
    try {
      answer = await api.get(`/api/v1/conversations/${conversationId}/suggestions${query({ draft: textarea.value.slice(0, 2000).trim() })}`);
    } catch {
      return;
    }
    if (mine !== suggestSeq || !active()) return;
    drawSuggestions(answer.suggestions || []);
  }

  function drawSuggestions(items) {
    list.replaceChildren(...items.map((found) => {
      const s = { ...found, text: found.kind === 'article' ? plainPassage(found.text) : found.text };
      if (shown.size < 50) shown.add(s.key);
      const insert = (event) => {
        event.preventDefault();
        insertText(s);
      };
      const title = s.kind === 'article'
        ? h('a', {
          href: `/knowledge/articles/${s.id}`, class: 'suggestion-title', testid: 'suggestion-article-link',
          onclick: (event) => {
            if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
            event.preventDefault();
            navigate(`/knowledge/articles/${s.id}`);
          },
        }, s.title)
        : h('span', { class: 'suggestion-title' }, s.title);
      return h('li', { class: 'suggestion', testid: 'suggestion', dataset: { key: s.key, kind: s.kind, id: s.id } },
        h('div', { class: 'suggestion-head' },
          h('span', { class: ['badge', s.kind === 'article' ? 'info' : 'ok'], testid: 'suggestion-kind' }, t(s.kind === 'article' ? 'assist.kind_article' : 'assist.kind_reply')),
          title),
        // mousedown, not click: the textarea keeps its caret and selection.
        h('button', {
          type: 'button', class: 'suggestion-text', testid: 'suggestion-insert', title: t('assist.insert_title'),
          onmousedown: insert,
          onclick: (event) => { if (event.detail === 0) insert(event); },
        }, s.text));
    }));
    panel.hidden = !items.length;
  }

  function insertText(s) {
    const start = textarea.selectionStart ?? textarea.value.length;
    const end = textarea.selectionEnd ?? start;
    textarea.focus();
    textarea.setRangeText(s.text, start, end, 'end');
    inserted = { key: s.key, text: s.text };
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
  }

  const ai = aiDrafts(textarea, { conversationId, active, navigate });

  textarea.addEventListener('input', () => {
    scheduleCheck();
    scheduleSuggestions();
  });
  textarea.addEventListener('scroll', syncScroll);
  if (typeof ResizeObserver === 'function') new ResizeObserver(syncScroll).observe(textarea);

  return {
    panel, box, status, rudeHint, ai: ai.node,
    /** After opening, a mode change or a new customer message. */
    refresh() {
      scheduleCheck();
      scheduleSuggestions(0);
      ai.refresh();
    },
    /** The reply `text` was sent: tells the server what was done with the suggestions. */
    sent(text) {
      const feedback = { shown: [...shown].slice(0, 50), inserted: inserted ? inserted.key : null, edited: !!inserted && !text.includes(inserted.text) };
      shown.clear();
      inserted = null;
      if (feedback.shown.length || feedback.inserted) {
        if (feedback.inserted && !feedback.shown.includes(feedback.inserted)) feedback.shown.push(feedback.inserted);
        api.post(`/api/v1/conversations/${conversationId}/suggestions/feedback`, feedback).catch(() => {});
      }
      checked = { text: '', matches: [], verdict: 'ok', rude: false };
      ai.reset();
    },
  };
}
