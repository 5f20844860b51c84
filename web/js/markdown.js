// A small, safe Markdown renderer for knowledge articles (the console and the public help
// centre share it). It builds DOM nodes: every piece of the source becomes a text node, never
// HTML, so raw HTML in an article is shown as text. Links are kept only for http:, https: and
// mailto: addresses; anything else (javascript:, data:, relative paths) stays plain text.
//
// Covered: ATX headings (# … ######, shifted one level down so the page keeps its own h1),
// paragraphs (a line ending in two spaces or "\" breaks), **bold**/__bold__, *italic*/_italic_,
// ~~strike~~, `code`, fenced code blocks (``` or ~~~), bulleted and numbered lists (nested by
// indentation), block quotes, tables with a |---| row (and :--: alignment), horizontal rules,
// [links](https://…), <https://…> and bare http(s) addresses; images become links to the image.
// No imports: the help page loads this module on its own.

const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

/** The address itself if it is an absolute http(s) or mailto address, else null. */
export function safeHref(raw) {
  const url = String(raw || '').trim();
  // Browsers drop tabs and newlines inside addresses; refuse any control character or space.
  if (!url || /[\u0000-\u0020\u007f]/.test(url)) return null;
  if (!/^(https?:\/\/|mailto:)/i.test(url)) return null;
  try {
    const parsed = new URL(url);
    return SAFE_PROTOCOLS.has(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

function el(tag, cls) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  return node;
}

function text(value) {
  return document.createTextNode(value);
}

// ---------------------------------------------------------------- inline

const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/;
const BARE_URL = /^https?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]}'。，；：！？）】」]/;

function isSpace(ch) {
  return ch === undefined || /\s/.test(ch);
}

function isWordChar(ch) {
  return ch !== undefined && /[\p{L}\p{N}]/u.test(ch);
}

/** The index of the `]` that closes the `[` at `open`, or -1. */
function closingBracket(src, open) {
  let depth = 0;
  for (let i = open; i < src.length; i += 1) {
    const ch = src[i];
    if (ch === '\\') { i += 1; continue; }
    if (ch === '`') {
      const end = src.indexOf('`', i + 1);
      if (end > 0) i = end;
      continue;
    }
    if (ch === '[') depth += 1;
    else if (ch === ']') {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** `(url "title")` right after a link's `]`: { url, end } or null. */
function linkTarget(src, at) {
  if (src[at] !== '(') return null;
  let depth = 0;
  for (let i = at; i < src.length; i += 1) {
    const ch = src[i];
    if (ch === '\\') { i += 1; continue; }
    if (ch === '(') depth += 1;
    else if (ch === ')') {
      depth -= 1;
      if (depth === 0) {
        let inside = src.slice(at + 1, i).trim();
        const titled = /^(\S+)\s+(["'])[\s\S]*\2$/.exec(inside);
        if (titled) inside = titled[1];
        if (inside.startsWith('<') && inside.endsWith('>')) inside = inside.slice(1, -1);
        return { url: inside, end: i + 1 };
      }
    } else if (ch === '\n' && depth === 1 && src[i + 1] === '\n') return null;
  }
  return null;
}

/** Where the emphasis opened by `marker` at `from` closes, or -1. */
function closingEmphasis(src, from, marker) {
  let i = from;
  while (i < src.length) {
    const at = src.indexOf(marker, i);
    if (at < 0) return -1;
    if (src[at - 1] === '\\') { i = at + 1; continue; }
    // A closing marker follows a non-space; for a single `*`/`_` it must not be part of a double.
    const doubled = marker.length === 1 && (src[at + 1] === marker || src[at - 1] === marker);
    const leftOk = at > from && !isSpace(src[at - 1]);
    const wordOk = marker[0] !== '_' || !isWordChar(src[at + marker.length]);
    if (leftOk && wordOk && !doubled) return at;
    i = at + 1;
  }
  return -1;
}

function link(label, href) {
  const a = el('a');
  a.href = href;
  a.rel = 'noopener noreferrer nofollow';
  a.target = '_blank';
  if (label instanceof Node) a.append(label); else a.append(...label);
  return a;
}

/** Inline Markdown to a list of nodes. */
export function renderInline(src) {
  const out = [];
  let buffer = '';
  const flush = () => {
    if (buffer) out.push(text(buffer));
    buffer = '';
  };
  let i = 0;
  while (i < src.length) {
    const ch = src[i];
    const rest = src.slice(i);
    if (ch === '\\' && i + 1 < src.length) {
      if (src[i + 1] === '\n') { flush(); out.push(el('br')); i += 2; continue; }
      if (PUNCTUATION.test(src[i + 1])) { buffer += src[i + 1]; i += 2; continue; }
    }
    if (ch === ' ' && /^ {2,}\n/.test(rest)) {
      flush();
      out.push(el('br'));
      i += rest.indexOf('\n') + 1;
      continue;
    }
    if (ch === '`') {
      const run = /^`+/.exec(rest)[0];
      const end = src.indexOf(run, i + run.length);
      if (end > 0) {
        flush();
        const code = el('code');
        code.textContent = src.slice(i + run.length, end).replace(/\n/g, ' ').replace(/^ (.*) $/, '$1');
        out.push(code);
        i = end + run.length;
        continue;
      }
      buffer += run;
      i += run.length;
      continue;
    }
    if ((ch === '!' && src[i + 1] === '[') || ch === '[') {
      const open = ch === '!' ? i + 1 : i;
      const close = closingBracket(src, open);
      const target = close > 0 ? linkTarget(src, close + 1) : null;
      if (target) {
        flush();
        const label = src.slice(open + 1, close);
        const href = safeHref(target.url);
        if (ch === '!') {
          // Images are not loaded (the page allows none from elsewhere): a link to it instead.
          const alt = label || target.url;
          out.push(href ? link(text(alt), href) : text(alt));
        } else if (href) {
          out.push(link(renderInline(label), href));
        } else {
          out.push(...renderInline(label));
        }
        i = target.end;
        continue;
      }
    }
    if (ch === '<') {
      const auto = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i.exec(rest);
      const href = auto && safeHref(auto[1]);
      if (href) {
        flush();
        out.push(link(text(auto[1]), href));
        i += auto[0].length;
        continue;
      }
    }
    if ((ch === 'h' || ch === 'H') && !isWordChar(src[i - 1])) {
      const bare = BARE_URL.exec(rest);
      const href = bare && safeHref(bare[0]);
      if (href) {
        flush();
        out.push(link(text(bare[0]), href));
        i += bare[0].length;
        continue;
      }
    }
    if (ch === '~' && src[i + 1] === '~' && !isSpace(src[i + 2])) {
      const end = closingEmphasis(src, i + 2, '~~');
      if (end > 0) {
        flush();
        const del = el('del');
        del.append(...renderInline(src.slice(i + 2, end)));
        out.push(del);
        i = end + 2;
        continue;
      }
    }
    if (ch === '*' || ch === '_') {
      const double = src[i + 1] === ch;
      const marker = double ? ch + ch : ch;
      const after = src[i + marker.length];
      const opensWord = ch === '*' || !isWordChar(src[i - 1]);
      if (!isSpace(after) && after !== ch && opensWord) {
        const end = closingEmphasis(src, i + marker.length, marker);
        if (end > 0) {
          flush();
          const node = el(double ? 'strong' : 'em');
          node.append(...renderInline(src.slice(i + marker.length, end)));
          out.push(node);
          i = end + marker.length;
          continue;
        }
      }
      // A run of markers that opens nothing is text.
      const run = new RegExp(`^\\${ch}+`).exec(rest)[0];
      buffer += run;
      i += run.length;
      continue;
    }
    buffer += ch;
    i += 1;
  }
  flush();
  return out;
}

// ---------------------------------------------------------------- blocks

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}((\*[ \t]*){3,}|(-[ \t]*){3,}|(_[ \t]*){3,})$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;
const TABLE_RULE = /^ *\|? *:?-+:? *(\| *:?-+:? *)*\|? *$/;

function blank(line) {
  return line === undefined || !line.trim();
}

function tableCells(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  const cells = [];
  let cell = '';
  for (let i = 0; i < s.length; i += 1) {
    if (s[i] === '\\' && s[i + 1] === '|') { cell += '|'; i += 1; continue; }
    if (s[i] === '|') { cells.push(cell.trim()); cell = ''; continue; }
    cell += s[i];
  }
  cells.push(cell.trim());
  return cells;
}

function startsBlock(line, next) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line)
    || (line.includes('|') && next !== undefined && TABLE_RULE.test(next) && next.includes('-'));
}

function renderTable(lines, i, parent) {
  const head = tableCells(lines[i]);
  const aligns = tableCells(lines[i + 1]).map((c) => {
    const left = c.startsWith(':');
    const right = c.endsWith(':');
    if (left && right) return 'center';
    if (right) return 'right';
    return '';
  });
  const wrap = el('div', 'md-table');
  const table = el('table');
  const thead = el('thead');
  const tr = el('tr');
  head.forEach((cell, n) => {
    const th = el('th', aligns[n] ? `align-${aligns[n]}` : '');
    th.append(...renderInline(cell));
    tr.append(th);
  });
  thead.append(tr);
  const tbody = el('tbody');
  let j = i + 2;
  while (j < lines.length && !blank(lines[j]) && lines[j].includes('|')) {
    const cells = tableCells(lines[j]);
    const row = el('tr');
    for (let n = 0; n < head.length; n += 1) {
      const td = el('td', aligns[n] ? `align-${aligns[n]}` : '');
      td.append(...renderInline(cells[n] || ''));
      row.append(td);
    }
    tbody.append(row);
    j += 1;
  }
  table.append(thead, tbody);
  wrap.append(table);
  parent.append(wrap);
  return j;
}

/** A list starting at line i (indented by `indent` spaces); returns the next line's index. */
function renderList(lines, i, parent) {
  const first = ITEM.exec(lines[i]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = el(ordered ? 'ol' : 'ul');
  if (ordered) {
    const start = parseInt(first[2], 10);
    if (start !== 1) list.start = start;
  }
  let j = i;
  while (j < lines.length) {
    const m = ITEM.exec(lines[j]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const item = el('li');
    const body = [m[3]];
    j += 1;
    // Continuation lines: indented text, or lazy lines of the same paragraph.
    while (j < lines.length) {
      const line = lines[j];
      if (blank(line)) {
        // A blank line continues the item only if an indented line follows.
        const next = lines[j + 1];
        if (next !== undefined && !blank(next) && /^\s+/.exec(next) && /^\s*/.exec(next)[0].length > indent) {
          body.push('');
          j += 1;
          continue;
        }
        break;
      }
      const lead = /^\s*/.exec(line)[0].length;
      const sub = ITEM.exec(line);
      if (sub && sub[1].length <= indent) break;
      if (!sub && lead <= indent && startsBlock(line, lines[j + 1])) break;
      body.push(lead > indent ? line.slice(Math.min(lead, indent + 4)) : line);
      j += 1;
    }
    const inner = renderBlocks(body);
    // A tight item's only paragraph is shown without <p>.
    if (inner.childNodes.length && inner.firstChild.nodeName === 'P' && !body.includes('')) {
      const p = inner.firstChild;
      p.replaceWith(...p.childNodes);
    }
    item.append(inner);
    list.append(item);
    while (j < lines.length && blank(lines[j]) && ITEM.test(lines[j + 1] || '') && ITEM.exec(lines[j + 1])[1].length === indent) j += 1;
  }
  parent.append(list);
  return j;
}

function renderBlocks(lines) {
  const out = document.createDocumentFragment();
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (blank(line)) { i += 1; continue; }
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1];
      const code = [];
      let j = i + 1;
      while (j < lines.length && !new RegExp(`^ {0,3}${marker[0] === '`' ? '`' : '~'}{${marker.length},}\\s*$`).test(lines[j])) {
        code.push(lines[j]);
        j += 1;
      }
      const pre = el('pre');
      const c = el('code');
      if (fence[2]) c.dataset.lang = fence[2];
      c.textContent = code.join('\n');
      pre.append(c);
      out.append(pre);
      i = j + 1;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = Math.min(6, heading[1].length + 1);
      const node = el(`h${level}`);
      node.append(...renderInline(heading[2] || ''));
      out.append(node);
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      out.append(el('hr'));
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && !blank(lines[i]) && (QUOTE.test(lines[i]) || !startsBlock(lines[i], lines[i + 1]))) {
        quoted.push(lines[i].replace(QUOTE, ''));
        i += 1;
      }
      const q = el('blockquote');
      q.append(renderBlocks(quoted));
      out.append(q);
      continue;
    }
    if (ITEM.test(line)) {
      i = renderList(lines, i, out);
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes('-')) {
      i = renderTable(lines, i, out);
      continue;
    }
    const para = [line.trim()];
    i += 1;
    while (i < lines.length && !blank(lines[i]) && !startsBlock(lines[i], lines[i + 1])) {
      // Keep trailing double spaces (a line break); drop the indentation.
      para.push(lines[i].replace(/^\s+/, ''));
      i += 1;
    }
    const p = el('p');
    p.append(...renderInline(para.join('\n')));
    out.append(p);
  }
  return out;
}

/** Renders Markdown into a new `<div class="md">`. */
export function renderMarkdown(source, attrs = {}) {
  const root = el('div', 'md');
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'testid') root.dataset.testid = value;
    else if (key === 'class') root.className = `md ${value}`;
  }
  const lines = String(source || '').replace(/\r\n?/g, '\n').replace(/\t/g, '    ').split('\n');
  root.append(renderBlocks(lines));
  return root;
}

// ---------------------------------------------------------------- passages

/** Markdown marks dropped from a passage shown as plain text. */
export function plainPassage(source) {
  return String(source || '')
    .replace(/```[^\n]*\n?/g, '')
    .replace(/^ {0,3}#{1,6}[ \t]+/gm, '')
    .replace(/^ {0,3}>[ \t]?/gm, '')
    .replace(/^( *)([-*+])[ \t]+/gm, '$1• ')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/(\*\*|__|~~|`)/g, '')
    .replace(/(^|[\s(])[*_]([^\s*_][^*_]*?)[*_](?=[\s).,!?:;]|$)/g, '$1$2');
}

/** Characters too common in Chinese questions to be worth marking alone. */
const STOP_HAN = new Set('的了吗呢吧啊呀么怎什如何是在我你他她它们有没和与或就都也还要会能可以这那哪个把被让给对从到为于上'.split(''));
const STOP_WORDS = new Set(['the', 'and', 'for', 'you', 'your', 'are', 'how', 'what', 'can', 'does', 'with', 'that', 'this',
  'from', 'have', 'has', 'was', 'why', 'when', 'where', 'who', 'which', 'into', 'not', 'but', 'any', 'all', 'our', 'its',
  'did', 'will', 'would', 'should', 'could', 'is', 'do', 'an', 'to', 'of', 'in', 'on', 'at', 'or', 'my', 'me', 'it', 'be', 'by']);

/**
 * The question's words worth marking in a passage: Latin words of two letters or more (not the
 * commonest), and each run of Chinese characters as its overlapping pairs (no segmenter here).
 */
export function questionTerms(question) {
  const terms = new Set();
  const q = String(question || '').normalize('NFKC').toLowerCase();
  for (const word of q.match(/[\p{Script=Latin}\p{N}]{2,}/gu) || []) {
    if (!STOP_WORDS.has(word)) terms.add(word);
  }
  for (const run of q.match(/\p{Script=Han}+/gu) || []) {
    const chars = [...run];
    if (chars.length === 1) {
      if (!STOP_HAN.has(chars[0])) terms.add(chars[0]);
      continue;
    }
    for (let n = 0; n + 1 < chars.length; n += 1) {
      const pair = chars[n] + chars[n + 1];
      if (!(STOP_HAN.has(chars[n]) && STOP_HAN.has(chars[n + 1]))) terms.add(pair);
    }
  }
  return [...terms];
}

/**
 * `value` as text nodes with every occurrence of the terms (case-insensitive) inside `<mark>`;
 * overlapping matches merge. Never HTML.
 */
export function highlight(value, terms) {
  const source = String(value || '');
  const lower = source.toLowerCase();
  const ranges = [];
  for (const term of terms) {
    if (!term) continue;
    let at = lower.indexOf(term);
    while (at >= 0) {
      ranges.push([at, at + term.length]);
      at = lower.indexOf(term, at + 1);
    }
  }
  ranges.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const merged = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([...r]);
  }
  const out = [];
  let pos = 0;
  for (const [start, end] of merged) {
    if (start > pos) out.push(text(source.slice(pos, start)));
    const mark = el('mark');
    mark.textContent = source.slice(start, end);
    out.push(mark);
    pos = end;
  }
  if (pos < source.length) out.push(text(source.slice(pos)));
  return out;
}
