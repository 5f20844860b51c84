// Helpers of the conversation's reply box: files attached before sending (uploaded at once to
// POST /api/v1/attachments, shown as removable chips, sent as `attachments: [ids]`) and the
// @mention picker of internal notes (GET /api/v1/employees?q=, keyboard navigable), which inserts
// `@username` and remembers the employee's id for `mentions: [ids]`.

import { h, button, nextId, errorText } from '../dom.js';
import { api, query } from '../api.js';
import { t } from '../i18n.js';
import { can, me, formatBytes } from '../state.js';

/** The characters of a user name (the server's `check_username`). */
const USERNAME = '[A-Za-z0-9._@-]';

// ---------------------------------------------------------------- attachments

/**
 * Files to send with the next message. `onError(text)` reports a refused upload (413, 415 ...)
 * with the server's message; `onAdd()` runs when files are chosen, `onChange()` whenever the
 * list changes.
 */
export function attachmentTray({ onError, onAdd = () => {}, onChange = () => {} }) {
  /** { filename, size, content_type, id (once uploaded), pending } */
  const files = [];
  const input = h('input', {
    type: 'file', multiple: true, class: 'sr-only', tabindex: '-1', 'aria-hidden': 'true', testid: 'reply-file-input',
  });
  const trigger = button(t('compose.attach'), {
    class: 'small attach', testid: 'reply-attach', onclick: () => input.click(),
  });
  const chips = h('ul', { class: 'attach-chips', testid: 'reply-attachments', 'aria-label': t('compose.attachments'), hidden: true });

  input.addEventListener('change', () => {
    const chosen = [...input.files];
    input.value = '';
    add(chosen);
  });

  function render() {
    chips.replaceChildren(...files.map((f) => h('li', {
      class: ['chip', 'attach-chip', f.pending && 'pending'], testid: 'reply-attachment',
      dataset: { id: f.id ?? '', pending: String(f.pending) }, 'aria-busy': f.pending ? 'true' : undefined,
    },
    h('span', { class: 'attach-name' }, f.filename),
    h('span', { class: 'muted small' }, f.pending ? t('compose.uploading') : formatBytes(f.size)),
    button('×', {
      class: 'icon', testid: 'reply-attachment-remove', 'aria-label': t('compose.remove_file', { name: f.filename }),
      onclick: () => {
        files.splice(files.indexOf(f), 1);
        render();
      },
    }))));
    chips.hidden = !files.length;
    onChange();
  }

  /** Uploads files (from the picker, a drop or a paste); each appears at once as a chip. */
  function add(list) {
    if (list.length) onAdd();
    for (const file of list) {
      const entry = { filename: file.name || 'file', size: file.size, content_type: file.type, id: null, pending: true };
      files.push(entry);
      api.upload(`/api/v1/attachments${query({ filename: entry.filename })}`, file)
        .then((ref) => Object.assign(entry, ref, { pending: false }))
        .catch((err) => {
          const index = files.indexOf(entry);
          if (index >= 0) files.splice(index, 1);
          onError(t('compose.upload_failed', { name: entry.filename, error: errorText(err) }));
        })
        .finally(render);
    }
    render();
  }

  return {
    input, trigger, chips, add,
    ids: () => files.filter((f) => !f.pending && f.id !== null).map((f) => f.id),
    pending: () => files.some((f) => f.pending),
    count: () => files.length,
    clear() {
      files.length = 0;
      render();
    },
  };
}

// ---------------------------------------------------------------- @mentions

/**
 * The picker under a textarea: typing `@` (while `enabled()`) lists matching colleagues; up/down
 * move, Enter or Tab inserts `@username`, Escape closes. `ids()` gives the chosen colleagues whose
 * `@username` is still in the text.
 */
export function mentionPicker(textarea, { enabled }) {
  const chosen = new Map();
  const listId = nextId('mentions');
  const list = h('ul', { id: listId, class: 'mention-list', role: 'listbox', testid: 'mention-picker', hidden: true, 'aria-label': t('compose.mention_label') });
  let options = [];
  let active = 0;
  let token = null;
  let seq = 0;
  let timer = null;

  textarea.setAttribute('aria-autocomplete', 'list');
  textarea.setAttribute('aria-expanded', 'false');

  /** The `@word` the caret is in, if any: { start, q }. */
  function atCaret() {
    if (textarea.selectionStart !== textarea.selectionEnd) return null;
    const before = textarea.value.slice(0, textarea.selectionStart);
    const match = new RegExp(`(^|[^A-Za-z0-9])@(${USERNAME}{0,64})$`).exec(before);
    return match ? { start: before.length - match[2].length - 1, q: match[2] } : null;
  }

  function update() {
    const found = enabled() && can('employees.read') ? atCaret() : null;
    if (!found) {
      close();
      return;
    }
    token = found;
    clearTimeout(timer);
    timer = setTimeout(() => search(found.q), 120);
  }

  async function search(q) {
    const mine = ++seq;
    let people = [];
    try {
      people = await api.list(`/api/v1/employees${query({ q })}`);
    } catch { /* no picker then; typed @usernames still count */ }
    if (mine !== seq || !token) return;
    const self = me();
    options = people
      .filter((e) => !e.disabled && (!self || e.id !== self.id))
      .sort((a, b) => a.display_name.localeCompare(b.display_name))
      .slice(0, 8);
    active = 0;
    render();
  }

  function render() {
    if (!options.length) {
      list.replaceChildren(h('li', { class: 'muted mention-empty', role: 'presentation', testid: 'mention-none' }, t('compose.no_match')));
      textarea.removeAttribute('aria-activedescendant');
    } else {
      list.replaceChildren(...options.map((e, i) => h('li', {
        id: `${listId}-${i}`, role: 'option', class: ['mention-option', i === active && 'active'],
        'aria-selected': i === active ? 'true' : 'false', testid: 'mention-option', dataset: { id: e.id, username: e.username },
        // mousedown, not click: the textarea keeps the focus and the caret.
        onmousedown: (event) => {
          event.preventDefault();
          choose(i);
        },
      }, h('span', { class: 'mention-name' }, e.display_name), h('span', { class: 'muted small' }, `@${e.username}`))));
      textarea.setAttribute('aria-activedescendant', `${listId}-${active}`);
    }
    list.hidden = false;
    textarea.setAttribute('aria-expanded', 'true');
    textarea.setAttribute('aria-controls', listId);
  }

  function move(by) {
    if (!options.length) return;
    active = (active + by + options.length) % options.length;
    render();
    const item = list.children[active];
    if (item && item.scrollIntoView) item.scrollIntoView({ block: 'nearest' });
  }

  function choose(index) {
    const e = options[index];
    if (!e || !token) return;
    const value = textarea.value;
    const end = textarea.selectionStart;
    const insert = `@${e.username} `;
    textarea.value = value.slice(0, token.start) + insert + value.slice(end);
    const caret = token.start + insert.length;
    textarea.setSelectionRange(caret, caret);
    chosen.set(e.id, e.username);
    close();
    textarea.focus();
  }

  function close() {
    seq += 1;
    clearTimeout(timer);
    token = null;
    options = [];
    list.hidden = true;
    list.replaceChildren();
    textarea.setAttribute('aria-expanded', 'false');
    textarea.removeAttribute('aria-activedescendant');
  }

  textarea.addEventListener('input', update);
  textarea.addEventListener('click', update);
  textarea.addEventListener('blur', () => setTimeout(() => { if (document.activeElement !== textarea) close(); }, 150));
  textarea.addEventListener('keydown', (event) => {
    if (list.hidden || event.isComposing) return;
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      move(event.key === 'ArrowDown' ? 1 : -1);
    } else if ((event.key === 'Enter' || event.key === 'Tab') && !event.ctrlKey && !event.metaKey && options.length) {
      event.preventDefault();
      event.stopImmediatePropagation();
      choose(active);
    } else if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      close();
    }
  });

  return {
    node: list,
    close,
    ids() {
      const text = textarea.value;
      return [...chosen].filter(([, username]) => mentionPattern(username).test(text)).map(([id]) => id);
    },
    reset() {
      chosen.clear();
      close();
    },
  };
}

function mentionPattern(username) {
  const escaped = username.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  return new RegExp(`(^|[^A-Za-z0-9])@${escaped}(?![.@-]*[A-Za-z0-9_])`, 'i');
}

/**
 * A message's text with the `@username`s of its mentioned employees highlighted, and chips for
 * those mentioned without one in the text. `who(id)` gives { username, name } or null.
 */
export function mentionNodes(text, mentions, who) {
  if (!mentions || !mentions.length) return { text: [text], extra: [] };
  const mine = me();
  const byName = new Map();
  for (const id of mentions) {
    const person = who(id);
    if (person && person.username) byName.set(person.username.toLowerCase(), { id, ...person });
  }
  const mark = (person, shown) => h('mark', {
    class: ['mention', mine && person.id === mine.id && 'me'], testid: 'mention', dataset: { employeeId: person.id }, title: person.name,
  }, shown);
  const out = [];
  const found = new Set();
  const pattern = new RegExp(`(^|[^A-Za-z0-9])@(${USERNAME}+)`, 'g');
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    // As the server reads it: trailing dots, dashes and @ are punctuation.
    const name = match[2].replace(/[.@-]+$/, '');
    const person = byName.get(name.toLowerCase());
    if (!person) continue;
    const at = match.index + match[1].length;
    out.push(text.slice(last, at), mark(person, `@${name}`));
    last = at + 1 + name.length;
    found.add(person.id);
  }
  out.push(text.slice(last));
  const extra = mentions.filter((id) => !found.has(id)).map((id) => {
    const person = who(id) || {};
    return mark({ id, name: person.name || '', username: person.username }, person.name || `#${id}`);
  });
  return { text: out.filter((x) => x !== ''), extra };
}
