// The audit log: newest first, filters, paging, details, chain verification and export.

import { h, clear, button, field, select, table, openDialog, toast, errorText, saveBlob, busy } from '../dom.js';
import { api, query } from '../api.js';
import { t } from '../i18n.js';
import { can, formatTime } from '../state.js';

const PAGE = 50;
const ACTION_HINTS = ['auth.', 'auth.login', 'account.', 'employee.', 'employee.created', 'department.', 'department.created',
  'position.', 'role.', 'token.', 'audit.', 'system.'];

/** Milliseconds at local midnight of a YYYY-MM-DD date, optionally a day later. */
function dayStart(value, plusDays = 0) {
  if (!value) return '';
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d + plusDays).getTime();
}

export async function mount(root) {
  const params = new URLSearchParams(location.search);
  const inputs = {
    actor: h('input', { testid: 'audit-actor', value: params.get('actor') || '', autocomplete: 'off' }),
    action: h('input', { testid: 'audit-action', value: params.get('action') || '', list: 'audit-actions', autocomplete: 'off' }),
    q: h('input', { type: 'search', testid: 'audit-text', value: params.get('q') || '' }),
    from: h('input', { type: 'date', testid: 'audit-from', value: params.get('from') || '' }),
    to: h('input', { type: 'date', testid: 'audit-to', value: params.get('to') || '' }),
    success: select([['', t('audit.outcome_any')], ['true', t('audit.outcome_success')], ['false', t('audit.outcome_failure')]],
      { testid: 'audit-outcome', value: params.get('success') || '' }),
  };
  const list = h('div', { testid: 'audit-list' });
  const verifyResult = h('div', { testid: 'audit-verify-result', role: 'status' });
  const older = button(t('audit.older'), { testid: 'audit-older' });
  const newer = button(t('audit.newer'), { testid: 'audit-newer' });
  const pageInfo = h('span', { class: 'muted', testid: 'audit-page' });
  // The before_seq of each page seen so far; the first page has none.
  let pages = [null];
  let next = null;

  function formValues() {
    return {
      actor: inputs.actor.value.trim(),
      action: inputs.action.value.trim(),
      q: inputs.q.value.trim(),
      from: inputs.from.value,
      to: inputs.to.value,
      success: inputs.success.value,
    };
  }

  function apiFilters(v) {
    return { actor: v.actor, action: v.action, q: v.q, from: dayStart(v.from), to: dayStart(v.to, 1), success: v.success };
  }

  async function load() {
    if (!can('audit.read')) return;
    const v = formValues();
    history.replaceState(null, '', location.pathname + query(v));
    const before = pages[pages.length - 1];
    const page = await api.get('/api/v1/audit' + query({ ...apiFilters(v), before_seq: before, limit: PAGE }));
    next = page.next_before_seq ?? null;
    older.disabled = next === null;
    newer.disabled = pages.length <= 1;
    pageInfo.textContent = t('audit.page', { n: pages.length });
    const rows = page.items.map((e) => h('tr', {
      testid: 'audit-row', class: ['clickable', !e.success && 'failed'], tabindex: '0',
      dataset: { seq: e.seq, action: e.action, target: e.target || '' },
      onclick: () => details(e),
      onkeydown: (event) => { if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); details(e); } },
    },
    h('td', { class: 'num' }, String(e.seq)),
    h('td', { class: 'nowrap' }, formatTime(e.at)),
    h('td', {}, e.actor.name || '—', e.actor.kind !== 'employee' ? h('span', { class: 'badge' }, t(`audit.actor_${e.actor.kind}`)) : null),
    h('td', {}, h('code', {}, e.action)),
    h('td', {}, e.target ? h('code', {}, e.target) : '—'),
    h('td', {}, h('span', { class: ['badge', e.success ? 'ok' : 'off'] }, e.success ? t('audit.success') : t('audit.failure')))));
    clear(list).append(table([t('audit.seq'), t('audit.time'), t('audit.actor'), t('audit.action'), t('audit.target'), t('audit.outcome')],
      rows, { testid: 'audit-table' }));
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function details(e) {
    const row = (label, value) => [h('dt', {}, label), h('dd', {}, value)];
    openDialog({
      title: t('audit.entry_title', { seq: e.seq }), testid: 'audit-details', wide: true,
      content: [
        h('dl', { class: 'details' },
          row(t('audit.time'), formatTime(e.at)),
          row(t('audit.action'), h('code', {}, e.action)),
          row(t('audit.outcome'), e.success ? t('audit.success') : t('audit.failure')),
          row(t('audit.actor'), `${e.actor.name || '—'} (${t(`audit.actor_${e.actor.kind}`)}${e.actor.employee_id ? ` #${e.actor.employee_id}` : ''}${e.actor.token_id ? `, ${t('audit.token')} #${e.actor.token_id}` : ''})`),
          row(t('audit.source'), e.actor.source || '—'),
          row(t('audit.target'), e.target ? h('code', {}, e.target) : '—'),
          row(t('audit.hash'), h('code', { class: 'hash' }, e.hash)),
          row(t('audit.prev_hash'), h('code', { class: 'hash' }, e.prev_hash))),
        h('h3', {}, t('audit.details')),
        h('pre', { class: 'json', testid: 'audit-details-json' }, JSON.stringify(e.details, null, 2)),
      ],
    });
  }

  async function verify(btn) {
    clear(verifyResult);
    try {
      const report = await busy(btn, () => api.get('/api/v1/audit/verify'));
      verifyResult.append(report.ok
        ? h('p', { class: 'banner ok', testid: 'audit-verify-ok' }, t('audit.verify_ok', { n: report.entries_checked }))
        : h('p', { class: 'banner error', testid: 'audit-verify-broken' },
          t('audit.verify_broken', { seq: report.first_problem.seq, n: report.entries_checked }), ' ',
          h('span', { class: 'muted' }, report.first_problem.problem)));
    } catch (err) {
      verifyResult.append(h('p', { class: 'banner error' }, errorText(err)));
    }
  }

  async function exportLog(btn, format) {
    try {
      const file = await busy(btn, () => api.download('GET', '/api/v1/audit/export' + query({ ...apiFilters(formValues()), format })));
      saveBlob(file.blob, file.name);
      toast(t('audit.exported', { name: file.name }));
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  const filterForm = h('form', { class: 'toolbar filters', role: 'search', testid: 'audit-filters' },
    field(t('audit.actor'), inputs.actor),
    field(t('audit.action'), inputs.action),
    field(t('audit.text'), inputs.q),
    field(t('audit.from'), inputs.from),
    field(t('audit.to'), inputs.to),
    field(t('audit.outcome'), inputs.success),
    h('div', { class: 'toolbar-buttons' },
      h('button', { type: 'submit', class: 'primary', testid: 'audit-apply' }, t('audit.apply')),
      button(t('audit.reset'), {
        testid: 'audit-reset',
        onclick: () => {
          for (const input of Object.values(inputs)) input.value = '';
          pages = [null];
          reload();
        },
      })),
    h('datalist', { id: 'audit-actions' }, ACTION_HINTS.map((a) => h('option', { value: a }))));
  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    pages = [null];
    reload();
  });
  older.addEventListener('click', () => {
    if (next === null) return;
    pages.push(next);
    reload();
  });
  newer.addEventListener('click', () => {
    if (pages.length > 1) pages.pop();
    reload();
  });

  const verifyButton = can('audit.read') ? button(t('audit.verify'), { testid: 'audit-verify', onclick: () => verify(verifyButton) }) : null;
  const csv = can('audit.export') ? button(t('audit.export_csv'), { testid: 'audit-export-csv', onclick: () => exportLog(csv, 'csv') }) : null;
  const json = can('audit.export') ? button(t('audit.export_json'), { testid: 'audit-export-json', onclick: () => exportLog(json, 'json') }) : null;

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, t('nav.audit')), h('div', { class: 'head-buttons' }, verifyButton, csv, json)),
    h('p', { class: 'muted' }, can('audit.read') ? t('audit.intro') : t('audit.export_only')),
    verifyResult,
    filterForm,
    can('audit.read') ? [list, h('div', { class: 'pager' }, newer, pageInfo, older)] : null));
  await load();
}
