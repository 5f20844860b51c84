// Small DOM helpers: element building, dialogs, toasts and form fields.
// Everything user-provided goes in as text, never as HTML.

import { t } from './i18n.js';

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'required', 'multiple', 'readOnly', 'indeterminate']);

/** h('button', {class: 'x', testid: 'y', onclick: fn}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false && !PROPS.has(key)) continue;
    if (key === 'class') el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (PROPS.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

let uid = 0;
export function nextId(prefix = 'f') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form field: the label is tied to the input by id. */
export function field(label, input, hint) {
  if (!input.id) input.id = nextId();
  const hintEl = hint ? h('small', { class: 'hint', id: `${input.id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl);
}

/** A checkbox with its label beside it. */
export function checkbox(label, attrs = {}) {
  const input = h('input', { type: 'checkbox', ...attrs });
  return h('label', { class: 'check' }, input, h('span', {}, label));
}

/** A <select> from [value, label] pairs; attrs.value picks the selected option. */
export function select(options, attrs = {}) {
  const { value, ...rest } = attrs;
  const el = h('select', rest, options.map(([v, label]) => h('option', { value: String(v) }, label)));
  if (value !== undefined && value !== null) el.value = String(value);
  return el;
}

export function button(label, attrs = {}) {
  return h('button', { type: 'button', ...attrs }, label);
}

// ---------------------------------------------------------------- toasts

/** A short message at the corner: kind 'ok', 'warn' or 'error' (the last two stay longer). */
export function toast(message, kind = 'ok') {
  const area = document.getElementById('toasts');
  const item = h('div', { class: ['toast', kind], testid: `toast-${kind}` }, message);
  area.append(item);
  setTimeout(() => item.remove(), kind === 'ok' ? 4000 : 8000);
}

// ---------------------------------------------------------------- dialogs

/**
 * Opens a modal dialog. `content` is a node or list of nodes; `actions` a list of buttons.
 * Returns { dialog, close }. The dialog removes itself when closed.
 */
export function openDialog({ title, content, actions = [], testid = 'dialog', wide = false, onClose }) {
  const titleId = nextId('dlg');
  const dialog = h('dialog', { class: ['dialog', wide && 'wide'], testid, 'aria-labelledby': titleId },
    h('header', {}, h('h2', { id: titleId }, title),
      button('×', { class: 'icon close', 'aria-label': t('common.close'), testid: 'dialog-close', onclick: () => close() })),
    h('div', { class: 'dialog-body' }, content),
    actions.length ? h('footer', {}, actions) : null);
  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    dialog.close();
    dialog.remove();
    if (onClose) onClose();
  }
  dialog.addEventListener('cancel', (e) => { e.preventDefault(); close(); });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

/**
 * A dialog around a form. `onSubmit(form)` may throw; its error is shown in the dialog and the
 * dialog stays open. On success the dialog closes and `onDone(result)` runs.
 */
export function formDialog({ title, fields, submitLabel, testid = 'form-dialog', wide, onSubmit, onDone, danger }) {
  const errorBox = h('p', { class: 'form-error', role: 'alert', testid: 'form-error', hidden: true });
  const submit = h('button', { type: 'submit', class: danger ? 'danger' : 'primary', testid: 'dialog-submit' }, submitLabel || t('common.save'));
  const cancel = button(t('common.cancel'), { testid: 'dialog-cancel', onclick: () => handle.close() });
  const form = h('form', { class: 'form', novalidate: true }, fields, errorBox, h('div', { class: 'form-actions' }, cancel, submit));
  const handle = openDialog({ title, content: form, testid, wide });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    submit.disabled = true;
    try {
      const result = await onSubmit(form);
      handle.close();
      if (onDone) onDone(result);
    } catch (err) {
      errorBox.textContent = errorText(err);
      errorBox.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  const first = form.querySelector('input:not([type=hidden]):not([disabled]), select, textarea');
  if (first) first.focus();
  return handle;
}

/** Asks a yes/no question; resolves true when confirmed. */
export function confirmDialog(message, { title, confirmLabel, danger = true } = {}) {
  return new Promise((resolve) => {
    let answer = false;
    const ok = button(confirmLabel || t('common.confirm'), {
      class: danger ? 'danger' : 'primary', testid: 'confirm-ok',
      onclick: () => { answer = true; handle.close(); },
    });
    const cancel = button(t('common.cancel'), { testid: 'confirm-cancel', onclick: () => handle.close() });
    const handle = openDialog({
      title: title || t('common.confirm_title'), content: h('p', {}, message), actions: [cancel, ok],
      testid: 'confirm-dialog', onClose: () => resolve(answer),
    });
    ok.focus();
  });
}

/** Shows a secret (one-time password, API token) once, with a copy button. */
export function secretDialog({ title, explanation, secret, onClose }) {
  const value = h('code', { class: 'secret', testid: 'secret-value' }, secret);
  const copy = button(t('common.copy'), {
    testid: 'secret-copy',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(secret);
        copy.textContent = t('common.copied');
      } catch {
        const range = document.createRange();
        range.selectNodeContents(value);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        copy.textContent = t('common.copy_manually');
      }
    },
  });
  const done = button(t('common.done'), { class: 'primary', testid: 'secret-done', onclick: () => handle.close() });
  const handle = openDialog({
    title, testid: 'secret-dialog', onClose,
    content: [h('p', {}, explanation), h('div', { class: 'secret-row' }, value, copy), h('p', { class: 'warn' }, t('common.secret_once'))],
    actions: [done],
  });
  return handle;
}

/** Error text for the user: a translated explanation plus the server's own message. */
export function errorText(err) {
  if (err && err.text) return err.text;
  if (!err || !err.code) return t('error.unexpected', { message: String(err && err.message || err) });
  const known = t.has(`errcode.${err.code}`) ? t(`errcode.${err.code}`) : t('error.generic');
  const quiet = ['invalid_credentials', 'account_disabled', 'network', 'csrf_rejected', 'session_expired', 'unauthenticated', 'internal'];
  if (quiet.includes(err.code) || !err.message) return known;
  return t('error.with_message', { label: known, message: err.message });
}

/** A table with a header row; `rows` are <tr> elements. */
export function table(headers, rows, attrs = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', {}, h('tr', {}, headers.map((label) => h('th', { scope: 'col' }, label)))),
      h('tbody', {}, rows.length ? rows : h('tr', { class: 'empty' }, h('td', { colspan: headers.length }, t('common.none'))))));
}

/** Saves a Blob as a download with the given file name. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Tells the user something that needs acknowledging (e.g. why a deletion was refused). */
export function alertDialog(title, message) {
  const ok = button(t('common.ok'), { class: 'primary', testid: 'alert-ok', onclick: () => handle.close() });
  const handle = openDialog({ title, testid: 'alert-dialog', content: h('p', { testid: 'alert-message', role: 'alert' }, message), actions: [ok] });
  ok.focus();
  return handle;
}

/**
 * A drop-down menu behind a button. `items` are [label, onSelect, testid] (null entries skipped).
 * The list is positioned fixed so that tables with scrolling do not clip it.
 */
export function menu(label, items, { testid, class: cls, ariaLabel } = {}) {
  const wrap = h('div', { class: 'menu' });
  const trigger = button(label, {
    class: ['menu-button', cls], testid, 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-label': ariaLabel,
  });
  let list = null;
  function closeMenu() {
    if (!list) return;
    list.remove();
    list = null;
    trigger.setAttribute('aria-expanded', 'false');
    document.removeEventListener('mousedown', outside, true);
    document.removeEventListener('keydown', onKey, true);
  }
  function outside(event) {
    if (list && !list.contains(event.target) && !trigger.contains(event.target)) closeMenu();
  }
  function onKey(event) {
    if (event.key === 'Escape') { closeMenu(); trigger.focus(); }
  }
  trigger.addEventListener('click', () => {
    if (list) { closeMenu(); return; }
    list = h('div', { class: 'menu-list', role: 'menu', testid: testid ? `${testid}-list` : undefined },
      items.filter(Boolean).map(([text, onSelect, itemTestid, danger]) => button(text, {
        role: 'menuitem', testid: itemTestid, class: danger ? 'danger-text' : undefined,
        onclick: () => { closeMenu(); onSelect(); },
      })));
    document.body.append(list);
    const rect = trigger.getBoundingClientRect();
    const width = list.offsetWidth;
    list.style.top = `${Math.min(rect.bottom + 4, window.innerHeight - list.offsetHeight - 8)}px`;
    list.style.left = `${Math.max(8, Math.min(rect.right - width, window.innerWidth - width - 8))}px`;
    trigger.setAttribute('aria-expanded', 'true');
    document.addEventListener('mousedown', outside, true);
    document.addEventListener('keydown', onKey, true);
    const first = list.querySelector('button');
    if (first) first.focus();
  });
  wrap.append(trigger);
  return wrap;
}

/** Disables a button while an async action runs. */
export async function busy(btn, action) {
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
  }
}
