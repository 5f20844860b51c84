// The Routing section's Experiments tab (routing.js shows it; creating, starting and stopping an
// experiment and running a replay need routing.manage).
// - Experiments (GET/POST /api/v1/routing/experiments, POST …/{id}/start and …/{id}/stop): a
//   control and a candidate policy version take turns by time slice (a switchback design). The
//   list shows each one's state and, while it runs, the arm in force and when it switches; a
//   dialog declares a new one (the server's field errors are shown at the field).
// - Report (GET …/{id}/report, kept in the address as `report=<id>`): one row per metric with
//   each arm's value and 95% interval and the candidate's difference, marked better or worse
//   when its interval excludes 0 (for waits, resolution time, abandonment and the Gini lower is
//   better).
// - Replay (POST /api/v1/routing/replay): a window of recorded traffic replayed offline through
//   a policy version beside the active one; the recorded, active and candidate runs side by side,
//   with the replay's notes.
// experimentBanner() is the live tab's line about a running experiment.

import { h, append, clear, button, field, select, table, formDialog, confirmDialog, alertDialog, toast, errorText } from '../dom.js';
import { api } from '../api.js';
import { t, getLang } from '../i18n.js';
import { formatTime } from '../state.js';
import { number, targetText, wholeNumber } from './routing-common.js';

/** The report's metrics in order; `lower`: a smaller value is better. */
const METRICS = [
  { key: 'service_level', kind: 'rate', lower: false },
  { key: 'average_wait_s', kind: 'seconds', lower: true },
  { key: 'resolution_rate', kind: 'rate', lower: false },
  { key: 'average_resolution_s', kind: 'seconds', lower: true },
  { key: 'first_contact_resolution', kind: 'rate', lower: false },
  { key: 'csat', kind: 'score', lower: false },
  { key: 'abandonment', kind: 'rate', lower: true },
  { key: 'fairness_gini', kind: 'score', lower: true },
];
const ARMS = ['control', 'candidate'];
const STATE_CLASS = { draft: '', running: 'ok', finished: '' };
const VERDICT_CLASS = { better: 'ok', worse: 'off', none: '', unknown: '' };
/** How often the list asks again while an experiment runs (its arm switches by itself). */
const REFRESH_MS = 15000;

/**
 * The server's reasons (English) that the console knows, translated; others are shown as
 * they are.
 */
const REASONS = [
  [/^a name of 1 to 120 characters$/, () => t('experiment.problem_name')],
  [/^there is no policy version (\d+)$/, (m) => t('experiment.problem_no_version', { version: m[1] })],
  [/^the candidate must be another policy version than the control$/, () => t('experiment.problem_same')],
  [/^15 minutes to a day$/, () => t('experiment.problem_slice')],
  [/^1 hour to 90 days$/, () => t('experiment.problem_duration')],
  [/^long enough for at least one slice of each arm$/, () => t('experiment.problem_too_short')],
  [/^1 second to a day$/, () => t('experiment.problem_service_level')],
  [/^experiment (\d+) \((.*)\) is running: one experiment runs at a time$/s, (m) => t('experiment.problem_one_at_a_time', { name: m[2] })],
  [/^this experiment has already been started$/, () => t('experiment.problem_started')],
  [/^only a running experiment can be stopped$/, () => t('experiment.problem_not_running')],
  [/^1 to 90 days$/, () => t('replay.problem_days')],
  [/^another replay is running; try again when it has finished$/, () => t('replay.problem_busy')],
];

/** The replay's notes (English from the server), translated when known. */
const NOTES = [
  [/^(\d+) employees have no presence record for the window; they count as online throughout because they took conversations in it$/,
    (m) => t('replay.note_presence', { n: Number(m[1]) })],
  [/^(\d+) conversations have no recorded handling time \(never taken or not resolved\); they take the window's median, (\d+) s$/,
    (m) => t('replay.note_handling', { n: Number(m[1]), s: m[2] })],
  [/^the recorded row's first-contact resolution is measured \(resolved with no reopen, transfer or escalation\); the replayed rows' is the simulation's proxy$/,
    () => t('replay.note_fcr')],
];

function translated(text, table) {
  for (const [pattern, make] of table) {
    const m = pattern.exec(text || '');
    if (m) return make(m);
  }
  return null;
}

/** An invalid_field message `field: reason` split in two (null when it is not one). */
function fieldProblem(err) {
  if (!err || err.code !== 'invalid_field' || !err.message) return null;
  const m = /^([a-z_]+): (.*)$/s.exec(err.message);
  return m ? { field: m[1], reason: translated(m[2], REASONS) || m[2] } : null;
}

/** An error's text, with the server's reason translated when the console knows it. */
function explain(err) {
  if (!err || err.text || !err.code || !err.message) return errorText(err);
  const problem = fieldProblem(err);
  const reason = problem ? `${problem.field}: ${problem.reason}` : translated(err.message, REASONS);
  if (!reason) return errorText(err);
  const label = t.has(`errcode.${err.code}`) ? t(`errcode.${err.code}`) : t('error.generic');
  return t('error.with_message', { label, message: reason });
}

function missing(x) {
  return x === null || x === undefined || !Number.isFinite(x);
}

/** HH:MM in the console language (24-hour). */
export function hourMinute(ms) {
  if (missing(ms)) return '—';
  return new Intl.DateTimeFormat(getLang(), { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(ms));
}

export function armLabel(arm) {
  return t.has(`experiment.arm_${arm}`) ? t(`experiment.arm_${arm}`) : arm;
}

function versionOf(experiment, arm) {
  return arm === 'candidate' ? experiment.candidate : experiment.control;
}

/** "v3 – skills first (active)": a policy version for a choice; the newest is the active one. */
function versionLabel(versions, v) {
  const active = versions.length && versions[versions.length - 1].policy.version === v.policy.version;
  const note = v.created_by === null || v.created_by === undefined ? t('routing.built_in_note') : v.note;
  const text = note ? t('experiment.version_option', { version: v.policy.version, note }) : t('routing.version_n', { version: v.policy.version });
  return active ? t('experiment.version_active', { text }) : text;
}

function stateBadge(state) {
  return h('span', { class: ['badge', STATE_CLASS[state]], testid: 'experiment-state', dataset: { state } },
    t.has(`experiment.state_${state}`) ? t(`experiment.state_${state}`) : state);
}

/** "Candidate arm (v3) until 14:00" for a running experiment. */
function armText(e) {
  return t('experiment.arm_until', {
    arm: armLabel(e.current_arm), version: versionOf(e, e.current_arm), until: hourMinute(e.next_switch_at ?? e.ends_at),
  });
}

/** The live tab's line about a running experiment; `onOpen` shows the Experiments tab. */
export function experimentBanner(e, { onOpen } = {}) {
  return h('div', {
    class: 'banner info experiment-banner', role: 'status', testid: 'routing-experiment-banner',
    dataset: { experiment: e.id, arm: e.current_arm || '' },
  },
  h('span', {}, e.current_arm
    ? t('experiment.banner', {
      name: e.name, arm: armLabel(e.current_arm), version: versionOf(e, e.current_arm), until: hourMinute(e.next_switch_at ?? e.ends_at),
    })
    : t('experiment.banner_plain', { name: e.name })),
  h('span', { class: 'muted' }, t('experiment.banner_ends', { time: formatTime(e.ends_at) })),
  onOpen ? button(t('experiment.banner_open'), { class: 'link', testid: 'routing-experiment-banner-open', onclick: onOpen }) : null);
}

// ---------------------------------------------------------------- numbers

function rate(x, digits = 1) {
  return new Intl.NumberFormat(getLang(), { style: 'percent', maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(x);
}

/** A metric's value as shown: rates as percentages, times in seconds. */
function valueText(kind, x) {
  if (missing(x)) return '—';
  if (kind === 'rate') return rate(x);
  if (kind === 'seconds') return t('routing.seconds', { s: number(x, 1) });
  return number(x, 2);
}

function signed(x, digits) {
  if (Number(Math.abs(x).toFixed(digits)) === 0) return '0';
  const text = number(Math.abs(x), digits);
  return x < 0 ? `−${text}` : `+${text}`;
}

/** A difference: rates in percentage points, times in seconds, with their sign. */
function differenceText(kind, x) {
  if (missing(x)) return '—';
  if (kind === 'rate') return t('experiment.points', { n: signed(x * 100, 1) });
  if (kind === 'seconds') return t('routing.seconds', { s: signed(x, 1) });
  return signed(x, 2);
}

/** Better, worse or no clear difference: whether the 95% interval excludes 0, and which way. */
function verdictOf(metric, d) {
  if (!d || missing(d.value) || missing(d.low) || missing(d.high)) return 'unknown';
  if (d.low <= 0 && d.high >= 0) return 'none';
  const higher = d.low > 0;
  return higher === metric.lower ? 'worse' : 'better';
}

function estimateCell(kind, estimate, testid, difference) {
  const e = estimate || {};
  const show = difference ? (x) => differenceText(kind, x) : (x) => valueText(kind, x);
  const interval = !missing(e.low) && !missing(e.high);
  return h('td', { class: 'num estimate', testid, dataset: { value: missing(e.value) ? '' : String(e.value) } },
    h('div', { class: 'estimate-value' }, show(e.value)),
    interval ? h('div', { class: 'muted small interval' }, t('experiment.interval', { low: show(e.low), high: show(e.high) })) : null);
}

// ---------------------------------------------------------------- the tab

export async function mountExperiments(pane, { manage, report: reportId, onReport }) {
  const list = h('div', { testid: 'routing-experiment-list' });
  const reportBox = h('div', { class: 'experiment-report-box', testid: 'experiment-report-box' });
  const newButton = manage ? button(t('experiment.new'), { class: 'primary', testid: 'routing-experiment-new', disabled: true }) : null;
  let experiments = [];
  let versions = [];
  let openReport = null;

  async function load() {
    const [items, policies] = await Promise.all([
      api.list('/api/v1/routing/experiments'),
      api.list('/api/v1/routing/policies').catch(() => versions),
    ]);
    experiments = items;
    versions = policies;
    draw();
    if (newButton) newButton.disabled = versions.length < 2;
    replay.versions(versions, experiments);
  }

  function reload() {
    return load().catch((err) => toast(errorText(err), 'error'));
  }

  function stateCell(e) {
    let detail = null;
    if (e.state === 'running' && e.current_arm) {
      detail = h('div', { class: 'small', testid: 'experiment-arm', dataset: { arm: e.current_arm } }, armText(e));
    } else if (e.state === 'finished') {
      detail = h('div', { class: 'muted small' }, t(e.stopped_at !== null && e.stopped_at !== undefined ? 'experiment.stopped_at' : 'experiment.ended_at',
        { time: formatTime(e.ends_at) }));
    }
    return h('td', {}, stateBadge(e.state), detail);
  }

  function draw() {
    const rows = experiments.map((e) => h('tr', {
      testid: 'routing-experiment-row', class: e.state === 'running' ? 'active' : undefined,
      dataset: { id: e.id, state: e.state, name: e.name, arm: e.current_arm || '' },
    },
    h('td', {}, h('div', { class: 'strong', testid: 'experiment-name' }, e.name),
      e.note ? h('div', { class: 'muted small note' }, e.note) : null),
    h('td', { class: 'nowrap', testid: 'experiment-versions' },
      h('div', { dataset: { arm: 'control', version: e.control } }, t('experiment.arm_version', { arm: armLabel('control'), version: e.control })),
      h('div', { dataset: { arm: 'candidate', version: e.candidate } }, t('experiment.arm_version', { arm: armLabel('candidate'), version: e.candidate }))),
    h('td', { class: 'small' },
      h('div', {}, t('experiment.design', { slice: targetText(e.slice_minutes * 60), duration: targetText(e.duration_hours * 3600) })),
      h('div', { class: 'muted' }, t('experiment.level_within', { s: e.service_level_seconds }))),
    stateCell(e),
    h('td', { class: 'nowrap small' },
      e.started_at !== null && e.started_at !== undefined
        ? [h('div', {}, t('experiment.started', { time: formatTime(e.started_at) })),
          h('div', { class: 'muted' }, t(e.state === 'running' ? 'experiment.ends' : 'experiment.ended', { time: formatTime(e.ends_at) }))]
        : h('div', { class: 'muted' }, t('experiment.created', { time: formatTime(e.created_at) }))),
    h('td', { class: 'actions nowrap' },
      manage && e.state === 'draft' ? button(t('experiment.start'), {
        class: 'small', testid: 'routing-experiment-start', 'aria-label': t('experiment.start_for', { name: e.name }), onclick: () => start(e),
      }) : null,
      manage && e.state === 'running' ? button(t('experiment.stop'), {
        class: 'small danger-text', testid: 'routing-experiment-stop', 'aria-label': t('experiment.stop_for', { name: e.name }), onclick: () => stop(e),
      }) : null,
      e.state !== 'draft' ? [' ', button(t('experiment.report'), {
        class: 'small', testid: 'routing-experiment-report', 'aria-label': t('experiment.report_for', { name: e.name }), onclick: () => showReport(e.id),
      })] : null)));
    const headers = [t('experiment.name'), t('experiment.versions'), t('experiment.design_col'), t('experiment.state'), t('experiment.when'),
      h('span', { class: 'sr-only' }, t('common.actions'))];
    clear(list).append(table(headers, rows, { testid: 'routing-experiment-table' }));
    if (!rows.length) list.querySelector('tr.empty td').textContent = t('experiment.none_yet');
  }

  async function start(e) {
    const ok = await confirmDialog(t('experiment.start_confirm', {
      name: e.name, control: e.control, candidate: e.candidate, slice: targetText(e.slice_minutes * 60), duration: targetText(e.duration_hours * 3600),
    }), { title: t('experiment.start_title'), confirmLabel: t('experiment.start'), danger: false });
    if (!ok) return;
    try {
      await api.post(`/api/v1/routing/experiments/${e.id}/start`, {});
      toast(t('experiment.started_toast', { name: e.name }));
    } catch (err) {
      alertDialog(t('experiment.start_refused'), explain(err));
    }
    await reload();
    if (openReport === e.id) showReport(e.id);
  }

  async function stop(e) {
    const ok = await confirmDialog(t('experiment.stop_confirm', { name: e.name }), { title: t('experiment.stop_title'), confirmLabel: t('experiment.stop') });
    if (!ok) return;
    try {
      await api.post(`/api/v1/routing/experiments/${e.id}/stop`, {});
      toast(t('experiment.stopped_toast', { name: e.name }));
    } catch (err) {
      alertDialog(t('experiment.stop_refused'), explain(err));
    }
    await reload();
    if (openReport === e.id) showReport(e.id);
  }

  function newDialog() {
    const options = [...versions].reverse().map((v) => [v.policy.version, versionLabel(versions, v)]);
    // As the server: the active (newest) version is the control unless another is chosen.
    const newest = versions[versions.length - 1].policy.version;
    const before = versions.length > 1 ? versions[versions.length - 2].policy.version : newest;
    const name = h('input', { testid: 'experiment-name', maxlength: 120, placeholder: t('experiment.name_placeholder') });
    const control = select(options, { testid: 'experiment-control', value: newest });
    const candidate = select(options, { testid: 'experiment-candidate', value: before });
    const slice = h('input', { type: 'number', min: 15, max: 1440, step: 1, testid: 'experiment-slice', value: 60 });
    const duration = h('input', { type: 'number', min: 1, max: 2160, step: 1, testid: 'experiment-duration', value: 168 });
    const level = h('input', { type: 'number', min: 1, max: 86400, step: 1, testid: 'experiment-service-level', value: 60 });
    const note = h('input', { testid: 'experiment-note', maxlength: 500, placeholder: t('experiment.note_placeholder') });
    const labels = {
      name: t('experiment.name'), control: t('experiment.control_version'), candidate: t('experiment.candidate_version'),
      slice_minutes: t('experiment.slice_minutes'), duration_hours: t('experiment.duration_hours'),
      service_level_seconds: t('experiment.service_level_seconds'), note: t('routing.note'),
    };
    const inputs = { name, control, candidate, slice_minutes: slice, duration_hours: duration, service_level_seconds: level, note };

    function clearProblems() {
      for (const input of Object.values(inputs)) {
        input.removeAttribute('aria-invalid');
        const shown = input.parentElement && input.parentElement.querySelector('.field-error');
        if (shown) shown.remove();
      }
    }

    /** Marks the field the server named and puts its reason beside it. */
    function markProblem(key, reason) {
      const input = inputs[key];
      if (!input) return;
      input.setAttribute('aria-invalid', 'true');
      input.parentElement.append(h('small', { class: 'field-error', role: 'alert', testid: 'experiment-field-error', dataset: { field: key } }, reason));
    }

    function whole(input, key, min, max) {
      try {
        return wholeNumber(input, labels[key], min, max);
      } catch (err) {
        markProblem(key, err.text);
        throw err;
      }
    }

    formDialog({
      title: t('experiment.new_title'), testid: 'routing-experiment-dialog', wide: true, submitLabel: t('experiment.create'),
      fields: [
        h('p', { class: 'muted' }, t('experiment.new_hint')),
        h('div', { class: 'row' }, field(labels.name, name), field(labels.note, note)),
        h('div', { class: 'row' },
          field(labels.control, control, t('experiment.control_hint')),
          field(labels.candidate, candidate, t('experiment.candidate_hint'))),
        h('div', { class: 'row3' },
          field(labels.slice_minutes, slice, t('experiment.slice_hint')),
          field(labels.duration_hours, duration, t('experiment.duration_hint')),
          field(labels.service_level_seconds, level, t('experiment.service_level_hint'))),
      ],
      onSubmit: async () => {
        clearProblems();
        const body = {
          name: name.value.trim(),
          control: Number(control.value),
          candidate: Number(candidate.value),
          slice_minutes: whole(slice, 'slice_minutes', 15, 1440),
          duration_hours: whole(duration, 'duration_hours', 1, 2160),
          service_level_seconds: whole(level, 'service_level_seconds', 1, 86400),
          note: note.value.trim(),
        };
        try {
          return await api.post('/api/v1/routing/experiments', body);
        } catch (err) {
          const problem = fieldProblem(err);
          if (!problem) throw err;
          markProblem(problem.field, problem.reason);
          throw { code: err.code, text: t('experiment.field_error', { field: labels[problem.field] || problem.field, reason: problem.reason }) };
        }
      },
      onDone: (created) => {
        toast(t('experiment.created_toast', { name: created.name }));
        reload();
      },
    });
  }

  // ------------------------------------------------------------ report

  function closeReport() {
    openReport = null;
    clear(reportBox);
    if (onReport) onReport(null);
  }

  async function showReport(id) {
    openReport = id;
    if (onReport) onReport(id);
    const box = h('section', { class: 'experiment-report', testid: 'experiment-report', dataset: { id, loading: 'true' }, 'aria-busy': 'true' },
      h('p', { class: 'muted' }, t('experiment.report_loading')));
    clear(reportBox).append(box);
    let r;
    try {
      r = await api.get(`/api/v1/routing/experiments/${id}/report`);
    } catch (err) {
      if (openReport !== id) return;
      clear(box).append(h('p', { class: 'form-error', role: 'alert', testid: 'experiment-report-error' }, explain(err)));
      box.removeAttribute('aria-busy');
      return;
    }
    if (openReport !== id || !box.isConnected) return;
    drawReport(box, r);
    box.scrollIntoView({ block: 'nearest' });
  }

  function drawReport(box, r) {
    const e = r.experiment;
    const arm = (name) => r.arms.find((a) => a.arm === name) || { arm: name, policy_version: versionOf(e, name), slices: 0, conversations: 0, metrics: {} };
    const arms = ARMS.map(arm);
    const armHeader = (a) => h('div', { testid: 'report-arm', dataset: { arm: a.arm, version: a.policy_version, conversations: a.conversations, slices: a.slices } },
      h('div', { class: 'strong' }, t('experiment.arm_version', { arm: armLabel(a.arm), version: a.policy_version })),
      h('div', { class: 'muted small' }, t('experiment.arm_counts', { n: a.conversations, slices: a.slices })));
    const unrated = arms.every((a) => missing((a.metrics.csat || {}).value));
    const rows = METRICS.map((m) => {
      const d = (r.difference || {})[m.key];
      const verdict = verdictOf(m, d);
      return h('tr', { testid: 'experiment-metric-row', dataset: { metric: m.key, verdict, significant: String(verdict === 'better' || verdict === 'worse') } },
        h('th', { scope: 'row' }, h('div', {}, t(`experiment.metric_${m.key}`)),
          h('div', { class: 'muted small' }, m.key === 'csat' && unrated ? t('experiment.csat_none') : t(m.lower ? 'experiment.lower_better' : 'experiment.higher_better'))),
        estimateCell(m.kind, arms[0].metrics[m.key], 'metric-control'),
        estimateCell(m.kind, arms[1].metrics[m.key], 'metric-candidate'),
        estimateCell(m.kind, d, 'metric-difference', true),
        h('td', {}, h('span', { class: ['badge', 'verdict', VERDICT_CLASS[verdict]], testid: 'metric-verdict', dataset: { verdict } },
          t(`experiment.verdict_${verdict}`))));
    });
    box.removeAttribute('aria-busy');
    box.dataset.loading = 'false';
    box.dataset.state = e.state;
    clear(box).append(
      h('div', { class: 'page-head sub' },
        h('h2', { testid: 'experiment-report-title' }, t('experiment.report_title', { name: e.name })),
        h('div', { class: 'toolbar-buttons' },
          button(t('experiment.refresh'), { class: 'small', testid: 'experiment-report-refresh', onclick: () => showReport(e.id) }),
          button(t('common.close'), { class: 'small', testid: 'experiment-report-close', onclick: closeReport }))),
      h('p', { class: 'muted small', testid: 'experiment-report-meta' },
        stateBadge(e.state), ' ',
        e.started_at !== null && e.started_at !== undefined ? t('experiment.report_window', { from: formatTime(e.started_at), to: formatTime(e.ends_at) }) : null,
        ' · ', t('experiment.level_within', { s: e.service_level_seconds }),
        ' · ', t('experiment.generated', { time: formatTime(r.generated_at) })),
      table([t('experiment.metric'), armHeader(arms[0]), armHeader(arms[1]), t('experiment.difference'), t('experiment.verdict')],
        rows, { testid: 'experiment-report-table', class: 'report experiment-metrics' }),
      h('p', { class: 'muted small' }, t('experiment.report_hint')));
  }

  // ------------------------------------------------------------ replay

  const replay = replaySection({ manage });

  if (newButton) newButton.addEventListener('click', newDialog);
  pane.append(
    h('div', { class: 'page-head' }, h('h2', {}, t('experiment.title')), newButton),
    h('p', { class: 'muted' }, t('experiment.intro')),
    list,
    reportBox,
    replay.node);
  await load();
  if (reportId && experiments.some((e) => String(e.id) === String(reportId))) await showReport(Number(reportId));

  const timer = setInterval(() => {
    if (!pane.isConnected) {
      clearInterval(timer);
      return;
    }
    if (experiments.some((e) => e.state === 'running')) reload();
  }, REFRESH_MS);
}

/** The replay form and its result; `versions(list, experiments)` fills the version choice. */
function replaySection({ manage }) {
  const version = select([], { testid: 'replay-version' });
  const days = h('input', { type: 'number', min: 1, max: 90, step: 1, value: 7, testid: 'replay-days' });
  const run = h('button', { type: 'submit', class: 'primary', testid: 'replay-run' }, t('replay.run'));
  const busyLine = h('p', { class: 'muted', role: 'status', testid: 'replay-busy', hidden: true }, t('replay.busy'));
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'replay-error', hidden: true });
  const result = h('div', { testid: 'replay-result' });
  const form = h('form', { class: 'toolbar replay-form', testid: 'replay-form', novalidate: true },
    field(t('replay.version'), version), field(t('replay.days'), days), run);
  let chosen = false;

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    let body;
    try {
      body = { policy_version: Number(version.value), days: wholeNumber(days, t('replay.days'), 1, 90) };
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
      return;
    }
    run.disabled = true;
    run.setAttribute('aria-busy', 'true');
    result.setAttribute('aria-busy', 'true');
    busyLine.hidden = false;
    try {
      const report = await api.post('/api/v1/routing/replay', body);
      drawReplay(report);
    } catch (err) {
      error.textContent = explain(err);
      error.hidden = false;
    } finally {
      run.disabled = false;
      run.removeAttribute('aria-busy');
      result.removeAttribute('aria-busy');
      busyLine.hidden = true;
    }
  });
  version.addEventListener('change', () => { chosen = true; });

  function cell(kind, x, arrivals) {
    return h('td', { class: 'num' }, arrivals ? valueText(kind, x) : '—');
  }

  function drawReplay(r) {
    const rows = r.rows.map((row) => {
      const x = row.results;
      const any = x.arrivals > 0;
      return h('tr', { testid: 'replay-row', dataset: { run: row.run, version: row.policy_version ?? '' } },
        h('th', { scope: 'row' }, t.has(`replay.run_${row.run}`) ? t(`replay.run_${row.run}`) : row.run),
        h('td', { class: 'nowrap' }, row.policy_version === null || row.policy_version === undefined ? '—' : t('routing.version_n', { version: row.policy_version })),
        h('td', { class: 'num', testid: 'replay-arrivals' }, String(x.arrivals)),
        h('td', { class: 'num' }, String(x.served)),
        h('td', { class: 'num' }, String(x.abandoned)),
        cell('rate', x.service_level, any),
        cell('seconds', x.average_wait_s, x.served > 0),
        cell('seconds', x.p90_wait_s, x.served > 0),
        cell('rate', x.abandonment, any),
        cell('rate', x.fcr_proxy, x.served > 0),
        cell('score', x.fairness_gini, x.served > 0),
        cell('rate', x.part_time_share, x.served > 0),
        h('td', { class: 'num' }, String(x.declined)));
    });
    const notes = (r.notes || []).map((note) => h('li', { testid: 'replay-note' }, translated(note, NOTES) || note));
    append(clear(result), [
      h('p', { class: 'small', testid: 'replay-summary' }, t('replay.summary', {
        conversations: t('replay.conversations_n', { n: r.conversations }),
        employees: t('replay.employees_n', { n: r.employees }),
        changes: t('replay.changes_n', { n: r.presence_changes }),
        from: formatTime(r.from),
        to: formatTime(r.to),
      })),
      table([t('replay.run_col'), t('replay.policy'), t('replay.arrivals'), t('replay.served'), t('replay.abandoned'),
        t('replay.service_level', { s: r.service_level_seconds }), t('replay.average_wait'), t('replay.p90_wait'), t('replay.abandonment'),
        t('replay.fcr'), t('replay.gini'), t('replay.part_time_share'), t('replay.declined')], rows, { testid: 'replay-table', class: 'report replay-runs' }),
      notes.length ? [h('div', { class: 'label small' }, t('replay.notes')), h('ul', { class: 'replay-notes small', testid: 'replay-notes' }, notes)] : null,
    ]);
    result.scrollIntoView({ block: 'nearest' });
  }

  const node = h('section', { class: 'replay', testid: 'routing-replay' },
    h('div', { class: 'page-head sub' }, h('h2', {}, t('replay.title'))),
    h('p', { class: 'muted' }, t('replay.intro')),
    manage ? [form, busyLine, error] : h('p', { class: 'muted small', testid: 'replay-not-allowed' }, t('replay.needs_manage')),
    result);

  return {
    node,
    /**
     * Fills the version choice: by default the candidate of the running experiment, else of
     * the latest one started, else of the newest draft, else the newest version.
     */
    versions(list, experiments) {
      const previous = version.value;
      const options = [...list].reverse().map((v) => [v.policy.version, versionLabel(list, v)]);
      clear(version).append(...options.map(([v, label]) => h('option', { value: String(v) }, label)));
      const latest = experiments.find((e) => e.state === 'running')
        || experiments.find((e) => e.started_at !== null && e.started_at !== undefined) || experiments[0];
      const fallback = latest ? latest.candidate : (list.length ? list[list.length - 1].policy.version : '');
      version.value = chosen && previous ? previous : String(fallback);
      if (!version.value && options.length) version.value = String(options[0][0]);
    },
  };
}
