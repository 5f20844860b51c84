// The Assist section (/assist, shown with assist.manage): the sensitive-word dictionaries that
// replies are checked against before they are sent (block, or warn and ask to confirm) and that
// flag customers' messages to supervisors. A list (GET /api/v1/assist/dictionaries, without the
// words), and a dialog that creates (POST) or replaces (PUT …/{id}) one: name, enabled, the
// departments it applies to (none: the whole organisation) and the words, edited as a table or
// as pasted lines `word,category,severity`. Delete asks first. The server's field errors are
// shown at the field (a word's at its row or line).

import { h, clear, button, field, checkbox, select, table, formDialog, confirmDialog, toast, errorText } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { can, formatTime } from '../state.js';
import { fieldProblem } from './knowledge-common.js';
import { severityLabel } from './reply-assist.js';

const SEVERITIES = ['block', 'warn', 'flag'];
/** Above this many words the dialog opens on the lines, not the table. */
const TABLE_LIMIT = 300;

export async function mount(root) {
  const list = h('div', { testid: 'dictionary-list' });
  let departments = [];

  async function load() {
    const [items, depts] = await Promise.all([
      api.list('/api/v1/assist/dictionaries'),
      can('org.read') ? api.list('/api/v1/departments').catch(() => []) : [],
    ]);
    departments = depts;
    const byId = new Map(depts.map((d) => [d.id, d]));
    items.sort((a, b) => a.name.localeCompare(b.name));
    const rows = items.map((d) => h('tr', { testid: 'dictionary-row', dataset: { id: d.id, name: d.name, enabled: String(d.enabled) }, class: d.enabled ? undefined : 'disabled' },
      h('td', { class: 'strong', testid: 'dictionary-name' }, d.name),
      h('td', {}, h('span', { class: ['badge', d.enabled ? 'ok' : 'off'] }, t(d.enabled ? 'assist.enabled' : 'assist.disabled'))),
      h('td', {}, d.department_ids.length
        ? d.department_ids.map((id) => (byId.get(id) ? byId.get(id).name : `#${id}`)).join(t('assist.list_separator'))
        : h('span', { class: 'muted' }, t('assist.whole_org'))),
      h('td', { testid: 'dictionary-words' }, t('assist.word_count', { n: d.words })),
      h('td', { class: 'nowrap' }, formatTime(d.updated_at)),
      h('td', { class: 'actions' },
        button(t('common.edit'), { class: 'small', testid: 'dictionary-edit', onclick: (event) => edit(d, event.currentTarget) }),
        button(t('common.delete'), { class: 'small danger-text', testid: 'dictionary-delete', onclick: () => remove(d) }))));
    clear(list).append(table([t('assist.dict_name'), t('assist.dict_state'), t('assist.dict_scope'), t('assist.dict_words'),
      t('assist.dict_updated'), h('span', { class: 'sr-only' }, t('common.actions'))], rows, { testid: 'dictionary-table' }));
    if (!rows.length) list.querySelector('tr.empty td').textContent = t('assist.no_dictionaries');
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  async function edit(summary, trigger) {
    try {
      if (trigger) trigger.disabled = true;
      const full = await api.get(`/api/v1/assist/dictionaries/${summary.id}`);
      dictionaryDialog(full);
    } catch (err) {
      toast(errorText(err), 'error');
    } finally {
      if (trigger) trigger.disabled = false;
    }
  }

  async function remove(d) {
    if (!await confirmDialog(t('assist.delete_confirm', { name: d.name }), { confirmLabel: t('common.delete') })) return;
    try {
      await api.del(`/api/v1/assist/dictionaries/${d.id}`);
      toast(t('assist.deleted', { name: d.name }));
      reload();
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  function dictionaryDialog(d) {
    const name = h('input', { required: true, maxlength: 100, testid: 'dictionary-name-input', value: d ? d.name : '' });
    const enabledBox = checkbox(t('assist.enabled_label'), { testid: 'dictionary-enabled', checked: d ? d.enabled : true });
    const chosen = new Set(d ? d.department_ids : []);
    const deptBoxes = departments.slice().sort((a, b) => a.name.localeCompare(b.name)).map((dep) => {
      const box = checkbox(dep.name, { testid: 'dictionary-department', value: String(dep.id), checked: chosen.has(dep.id) });
      box.querySelector('input').dataset.id = dep.id;
      return box;
    });
    const deptGroup = h('fieldset', { class: 'group', testid: 'dictionary-departments', tabindex: '-1' },
      h('legend', {}, t('assist.dict_scope')),
      deptBoxes.length ? h('div', { class: 'check-row wrap' }, deptBoxes) : h('p', { class: 'muted' }, t('assist.no_departments')),
      h('small', { class: 'hint muted' }, t('assist.scope_hint')));
    const words = wordEditor(d ? d.words : []);
    /** Notes put at fields by the last attempt. */
    let marks = [];
    const clearMarks = () => {
      for (const { input, note } of marks) {
        input.removeAttribute('aria-invalid');
        note.remove();
      }
      marks = [];
    };
    const markAt = (input, text) => {
      input.setAttribute('aria-invalid', 'true');
      const note = h('small', { class: 'field-error', role: 'alert', testid: 'assist-field-error' }, text);
      const holder = input.closest('.field, .word-row, fieldset') || input.parentElement;
      holder.append(note);
      marks.push({ input, note });
    };
    formDialog({
      title: d ? t('assist.edit_title', { name: d.name }) : t('assist.new_dictionary'), testid: 'dictionary-dialog', wide: true,
      submitLabel: d ? t('common.save') : t('common.create'),
      fields: [field(t('assist.dict_name'), name), enabledBox, deptGroup, words.node],
      onSubmit: async () => {
        clearMarks();
        const parsed = words.values();
        if (parsed.problems.length) {
          for (const p of parsed.problems) markAt(p.input, p.text);
          throw { text: t('assist.check_fields') };
        }
        const body = {
          name: name.value.trim(),
          enabled: enabledBox.querySelector('input').checked,
          department_ids: deptBoxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => Number(i.dataset.id)),
          words: parsed.words,
        };
        try {
          return d ? await api.put(`/api/v1/assist/dictionaries/${d.id}`, body) : await api.post('/api/v1/assist/dictionaries', body);
        } catch (err) {
          const problem = fieldProblem(err);
          const input = problem && (problem.field === 'name' ? name
            : problem.field === 'department_ids' ? deptGroup
              : problem.field === 'words' ? words.inputFor(problem.index) : null);
          if (!input) throw err;
          markAt(input, problem.index !== null && problem.field === 'words'
            ? t('assist.word_problem', { n: problem.index + 1, reason: problem.reason }) : problem.reason);
          throw { text: t('assist.check_fields') };
        }
      },
      onDone: (saved) => {
        toast(t('assist.saved', { name: saved.name }));
        reload();
      },
    });
  }

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' },
      h('h1', {}, t('nav.assist')),
      button(t('assist.new_dictionary'), { class: 'primary', testid: 'dictionary-new', onclick: () => dictionaryDialog(null) })),
    h('p', { class: 'muted' }, t('assist.intro')),
    list));
  await load();
}

/**
 * The words of a dictionary, as a table (a row per word: word, category, severity) or as lines
 * `word,category,severity`; switching converts between them. `values()` gives { words,
 * problems: [{ input, text }] }, `inputFor(index)` the control that shows the index-th word sent.
 */
function wordEditor(initial) {
  const rows = [];
  const body = h('div', { class: 'word-rows', testid: 'word-rows' });
  const lines = h('textarea', { rows: 10, class: 'word-lines', testid: 'word-lines', spellcheck: 'false', placeholder: t('assist.lines_placeholder') });
  const linesField = field(t('assist.lines_label'), lines, t('assist.lines_hint'));
  const add = button(t('assist.word_add'), { class: 'small', testid: 'word-add', onclick: () => addRow().word.focus() });
  const tablePane = h('div', { class: 'word-table', testid: 'word-table' },
    h('div', { class: 'word-row word-row-head muted small', 'aria-hidden': 'true' },
      h('span', {}, t('assist.word')), h('span', {}, t('assist.category')), h('span', {}, t('assist.severity')), h('span', {})),
    body, add);
  let mode = initial.length > TABLE_LIMIT ? 'lines' : 'table';
  /** The controls of the words last returned by values(), in order. */
  let sent = [];
  const switchError = h('p', { class: 'form-error', role: 'alert', testid: 'word-mode-error', hidden: true });
  const tableButton = button(t('assist.mode_table'), { class: 'small', testid: 'word-mode-table', onclick: () => setMode('table') });
  const linesButton = button(t('assist.mode_lines'), { class: 'small', testid: 'word-mode-lines', onclick: () => setMode('lines') });

  function addRow(entry = { word: '', category: '', severity: 'warn' }) {
    const word = h('input', { testid: 'word-text', maxlength: 60, value: entry.word, 'aria-label': t('assist.word') });
    const category = h('input', { testid: 'word-category', maxlength: 40, value: entry.category || '', 'aria-label': t('assist.category') });
    const severity = select(SEVERITIES.map((s) => [s, severityLabel(s)]), { testid: 'word-severity', value: entry.severity, 'aria-label': t('assist.severity') });
    const row = { word, category, severity };
    row.node = h('div', { class: 'word-row', testid: 'word-row' }, word, category, severity,
      button('×', { class: 'icon', testid: 'word-remove', 'aria-label': t('assist.word_remove'), onclick: () => { row.node.remove(); rows.splice(rows.indexOf(row), 1); } }));
    rows.push(row);
    body.append(row.node);
    return row;
  }

  function tableWords() {
    return rows.map((r) => ({ word: r.word.value.trim(), category: r.category.value.trim(), severity: r.severity.value, input: r.word }))
      .filter((w) => w.word || w.category);
  }

  /** Parses the lines: { words, problems }. */
  function parseLines() {
    const words = [];
    const problems = [];
    lines.value.split(/\r?\n/).forEach((line, n) => {
      if (!line.trim()) return;
      const parts = line.split(/[,，\t]/).map((p) => p.trim());
      const [word, category = '', severity = 'warn'] = parts;
      const sev = (severity || 'warn').toLowerCase();
      if (!word || parts.length > 3 || !SEVERITIES.includes(sev)) {
        problems.push({ input: lines, text: t('assist.bad_line', { n: n + 1, line: line.trim() }) });
        return;
      }
      words.push({ word, category, severity: sev, input: lines });
    });
    return { words, problems };
  }

  function setMode(next) {
    switchError.hidden = true;
    if (next === mode) return;
    if (next === 'lines') {
      lines.value = tableWords().map((w) => [w.word, w.category, w.severity].join(',')).join('\n');
    } else {
      const parsed = parseLines();
      if (parsed.problems.length) {
        switchError.textContent = parsed.problems.map((p) => p.text).join(' ');
        switchError.hidden = false;
        return;
      }
      rows.splice(0).forEach((r) => r.node.remove());
      parsed.words.forEach(addRow);
    }
    mode = next;
    draw();
  }

  function draw() {
    tablePane.hidden = mode !== 'table';
    linesField.hidden = mode !== 'lines';
    tableButton.setAttribute('aria-pressed', String(mode === 'table'));
    linesButton.setAttribute('aria-pressed', String(mode === 'lines'));
    tableButton.classList.toggle('active', mode === 'table');
    linesButton.classList.toggle('active', mode === 'lines');
  }

  if (mode === 'table') initial.forEach(addRow);
  else lines.value = initial.map((w) => [w.word, w.category, w.severity].join(',')).join('\n');
  if (mode === 'table' && !initial.length) addRow();
  draw();

  return {
    node: h('fieldset', { class: 'group words-group', testid: 'dictionary-words-editor' },
      h('legend', {}, t('assist.dict_words')),
      h('div', { class: 'segmented', role: 'group', 'aria-label': t('assist.mode_label') }, tableButton, linesButton),
      switchError, tablePane, linesField),
    values() {
      const { words, problems } = mode === 'table' ? { words: tableWords(), problems: [] } : parseLines();
      if (mode === 'table') {
        for (const w of words) if (!w.word) problems.push({ input: w.input, text: t('assist.word_missing') });
      }
      sent = words.map((w) => w.input);
      return { words: words.map(({ word, category, severity }) => ({ word, category, severity })), problems };
    },
    inputFor(index) {
      if (index === null || index === undefined) return mode === 'table' ? (rows[0] ? rows[0].word : add) : lines;
      return sent[index] || (mode === 'table' ? add : lines);
    },
  };
}
