// The Routing section's Lanes and Calendars tabs (routing.js shows them; changes need
// routing.manage).
// - Lanes (GET/POST/PUT/DELETE /api/v1/routing/lanes): the lanes in order, with which questions
//   enter each (types, VIP tier), what employees need (skills, then stages that relax them), the
//   escalation path and overflow, and the SLA targets with their calendar, warning share,
//   actions and overrides; a dialog covers every field of a lane.
// - Calendars (GET/POST/PUT/DELETE /api/v1/routing/calendars): business calendars the SLA
//   targets count on and employees work to: a time zone, opening hours per weekday (Monday
//   first), holidays and make-up working days; each lists the lanes and employees using it.
// Targets are business seconds in the API and minutes on screen; opening hours are minutes after
// midnight in the API and HH:MM on screen (24:00 ends a day).

import { h, append, clear, button, field, select, checkbox, table, formDialog, confirmDialog, alertDialog, toast, errorText, nextId } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { browserTimeZone } from '../state.js';
import { PRIORITIES, CHANNEL_KINDS, priorityLabel, channelLabel } from './inbox-common.js';
import {
  KNOWN_TYPES, CLOCKS, SLA_LEVELS, SLA_ACTIONS, typeLabel, clockLabel, levelLabel, slaActionLabel, targetText,
  laneName, loadLanes, forgetLanes, wholeNumber, skillEditor,
} from './routing-common.js';

/** The time zones offered first; any IANA name may be typed. */
const COMMON_ZONES = ['Asia/Shanghai', 'Asia/Hong_Kong', 'Asia/Singapore', 'Asia/Tokyo', 'Europe/London', 'Europe/Berlin',
  'America/New_York', 'America/Los_Angeles', 'UTC'];
const DAYS = [0, 1, 2, 3, 4, 5, 6];
const DAY_MINUTES = 24 * 60;
/** The longest target the API means to take (a year, in minutes). */
const MAX_TARGET_MINUTES = 365 * 24 * 60;

/** Options of a <select> of lanes: none first, then the lanes except `except`. */
function laneOptions(lanes, noneLabel, except) {
  return [['', noneLabel], ...lanes.filter((l) => l.id !== except).map((l) => [l.id, l.enabled ? l.name : t('lane.name_off', { name: l.name })])];
}

/** A small labelled control inside an editable row. */
export function mini(label, control, cls) {
  if (!control.id) control.id = nextId('m');
  return h('div', { class: ['mini', cls] }, h('label', { for: control.id, class: 'muted small' }, label), control);
}

/**
 * Editable rows with an add button; `make(value)` returns { cells, read(), focus } for one row,
 * `read()` giving the row's value or null to leave it out. Returns { node, values(), add }.
 */
export function rowEditor({ testid, rowTestid, addLabel, addTestid, removeLabel, make, initial = [] }) {
  const rows = [];
  const list = h('div', { class: 'edit-rows' });
  function add(value) {
    const row = make(value);
    const node = h('div', { class: 'edit-row', testid: rowTestid }, row.cells,
      button('×', {
        class: 'icon', testid: 'row-remove', 'aria-label': removeLabel,
        onclick: () => { node.remove(); rows.splice(rows.indexOf(row), 1); },
      }));
    row.node = node;
    rows.push(row);
    list.append(node);
    return row;
  }
  for (const value of initial) add(value);
  const addButton = button(addLabel, {
    class: 'small', testid: addTestid,
    onclick: () => {
      const row = add();
      if (row.focus) row.focus.focus();
    },
  });
  return {
    node: h('div', { testid }, list, addButton),
    rows,
    add,
    clear() {
      for (const row of rows) row.node.remove();
      rows.length = 0;
    },
    values: () => rows.map((row) => row.read()).filter((v) => v !== null),
  };
}

/** A minutes input for a target in seconds (empty: no target). */
function targetInput(secs, testid, label) {
  return h('input', {
    type: 'number', min: 0, step: 'any', testid, inputmode: 'decimal', placeholder: t('lane.no_target_placeholder'),
    value: secs === null || secs === undefined ? '' : String(Math.round((secs / 60) * 1000) / 1000), 'aria-label': label,
  });
}

/** A target in seconds from a minutes input, null when empty. */
function readTarget(input, label) {
  const text = input.value.trim();
  if (!text) return null;
  const minutes = Number(text);
  const secs = Math.round(minutes * 60);
  if (!Number.isFinite(minutes) || secs < 1 || minutes > MAX_TARGET_MINUTES) {
    throw { code: 'client', message: '', text: t('lane.target_range', { field: label, max: MAX_TARGET_MINUTES }) };
  }
  return secs;
}

/** Three minute inputs for first response, next response and resolution. */
function targetInputs(targets, prefix, withLabels) {
  const inputs = Object.fromEntries(CLOCKS.map((c) => [c, targetInput((targets || {})[`${c}_secs`], `${prefix}-${c}`, clockLabel(c))]));
  return {
    inputs,
    nodes: CLOCKS.map((c) => (withLabels ? field(t('lane.target_minutes', { clock: clockLabel(c) }), inputs[c]) : mini(t('lane.target_minutes', { clock: clockLabel(c) }), inputs[c], 'num'))),
    read: () => Object.fromEntries(CLOCKS.map((c) => [`${c}_secs`, readTarget(inputs[c], clockLabel(c))])),
  };
}

/** `support:2, rnd` from a skills map. */
function skillsText(skills) {
  return Object.entries(skills || {}).map(([name, level]) => `${name}:${level}`).join(', ');
}

/** A skills map from `support:2, rnd` (a skill without a level needs level 1). */
function parseSkills(text, label) {
  const out = {};
  for (const token of text.split(/[,，;；\s]+/).map((x) => x.trim()).filter(Boolean)) {
    const [name, level = '1', ...rest] = token.split(/[:：]/);
    const n = Number(level);
    if (!name || rest.length || !Number.isInteger(n) || n < 1 || n > 5) {
      throw { code: 'client', message: '', text: t('lane.skills_bad', { field: label, token }) };
    }
    out[name.toLowerCase()] = n;
  }
  return out;
}

function skillChips(skills) {
  const entries = Object.entries(skills || {});
  return entries.length
    ? entries.map(([name, level]) => h('span', { class: 'chip', dataset: { skill: name, level } }, `${name} ${level}`))
    : h('span', { class: 'muted' }, t('lane.anyone'));
}

// ---------------------------------------------------------------- lanes

export async function mountLanes(pane, { manage }) {
  const list = h('div', { testid: 'routing-lane-list' });
  const newButton = manage ? button(t('lane.new'), { class: 'primary', testid: 'routing-lane-new', disabled: true }) : null;
  let lanes = [];
  let calendars = [];
  let types = KNOWN_TYPES;

  async function load() {
    const [items, cals, live] = await Promise.all([
      loadLanes(true),
      api.list('/api/v1/routing/calendars').catch(() => []),
      api.get('/api/v1/routing/live').catch(() => null),
    ]);
    lanes = items;
    calendars = cals;
    types = live && live.types && live.types.length ? live.types : KNOWN_TYPES;
    draw();
    if (newButton) newButton.disabled = false;
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function calendarName(id) {
    if (id === null || id === undefined) return t('lane.calendar_always');
    const c = calendars.find((x) => x.id === id);
    return c ? c.name : t('calendar.calendar_n', { id });
  }

  function entryNodes(lane) {
    const out = [];
    if (lane.types.length) out.push(h('div', {}, lane.types.map((x) => h('span', { class: 'chip', dataset: { type: x } }, typeLabel(x)))));
    if (lane.min_vip_tier > 0) out.push(h('div', { class: 'small' }, t('lane.vip_from', { n: lane.min_vip_tier })));
    if (!out.length) out.push(h('span', { class: 'muted small' }, t('lane.only_handed_on')));
    return out;
  }

  function requirementNodes(lane) {
    return [
      h('div', {}, skillChips(lane.required_skills)),
      lane.stages.length ? h('ol', { class: 'stages small' }, lane.stages.map((s) => h('li', { dataset: { after: s.after_secs } },
        s.after_secs ? t('lane.stage_after', { time: targetText(s.after_secs) }) : t('lane.stage_at_once'), ' ',
        skillChips(s.required_skills),
        s.when_nobody_eligible && s.after_secs ? h('span', { class: 'muted' }, ' ', t('lane.stage_or_sooner')) : null))) : null,
    ];
  }

  function pathNodes(lane) {
    return [
      h('div', { dataset: { escalateTo: lane.escalate_to ?? '' } }, lane.escalate_to !== null && lane.escalate_to !== undefined
        ? t('lane.escalates_to', { name: laneName(lanes, lane.escalate_to) })
        : h('span', { class: 'muted' }, t('lane.no_escalation'))),
      lane.max_queue ? h('div', { class: 'small' }, lane.overflow_to !== null && lane.overflow_to !== undefined
        ? t('lane.overflow_to_text', { n: lane.max_queue, name: laneName(lanes, lane.overflow_to) })
        : t('lane.max_queue_only', { n: lane.max_queue })) : null,
      h('div', { class: 'muted small' }, t(lane.keep_clock ? 'lane.keeps_clock' : 'lane.restarts_clock')),
    ];
  }

  function slaNodes(lane) {
    return [
      h('ul', { class: 'targets small' }, CLOCKS.map((c) => h('li', { dataset: { clock: c, secs: lane.sla[`${c}_secs`] ?? '' } },
        h('span', { class: 'muted' }, clockLabel(c)), ' ', targetText(lane.sla[`${c}_secs`])))),
      h('div', { class: 'small', testid: 'lane-calendar-name', dataset: { calendar: lane.calendar_id ?? '' } }, calendarName(lane.calendar_id)),
      h('div', { class: 'muted small' }, t('lane.warn_at', { n: lane.warn_at_percent }),
        lane.sla_overrides.length ? [' · ', t('lane.overrides_n', { n: lane.sla_overrides.length })] : null),
    ];
  }

  function draw() {
    const rows = lanes.map((lane) => h('tr', {
      testid: 'routing-lane-row', class: lane.enabled ? undefined : 'off',
      dataset: { id: lane.id, key: lane.key, enabled: String(lane.enabled) },
    },
    h('td', { class: 'num' }, String(lane.position)),
    h('td', {}, h('div', { class: 'strong', testid: 'lane-name' }, lane.name), h('code', { class: 'muted' }, lane.key),
      lane.enabled ? null : h('div', {}, h('span', { class: 'badge', testid: 'lane-off' }, t('lane.off')))),
    h('td', { testid: 'lane-entry' }, entryNodes(lane)),
    h('td', { testid: 'lane-requirements' }, requirementNodes(lane)),
    h('td', { testid: 'lane-path' }, pathNodes(lane)),
    h('td', { testid: 'lane-sla' }, slaNodes(lane)),
    manage ? h('td', { class: 'actions nowrap' },
      button(t('common.edit'), { class: 'small', testid: 'routing-lane-edit', 'aria-label': t('lane.edit_for', { name: lane.name }), onclick: () => laneDialog(lane) }),
      ' ',
      button(t('common.delete'), { class: 'small danger-text', testid: 'routing-lane-delete', 'aria-label': t('lane.delete_for', { name: lane.name }), onclick: () => deleteLane(lane) }))
      : null));
    const headers = [t('lane.position'), t('lane.lane'), t('lane.entry'), t('lane.requirements'), t('lane.path'), t('lane.sla')];
    if (manage) headers.push(h('span', { class: 'sr-only' }, t('common.actions')));
    clear(list).append(table(headers, rows, { testid: 'routing-lane-table' }));
  }

  async function deleteLane(lane) {
    if (!await confirmDialog(t('lane.delete_confirm', { name: lane.name }), { confirmLabel: t('common.delete') })) return;
    try {
      await api.del(`/api/v1/routing/lanes/${lane.id}`);
      forgetLanes();
      toast(t('lane.deleted', { name: lane.name }));
      reload();
    } catch (err) {
      alertDialog(t('lane.delete_refused'), errorText(err));
    }
  }

  function laneDialog(lane) {
    const l = lane || {
      key: '', name: '', types: [], min_vip_tier: 0, required_skills: {}, stages: [], escalate_to: null, keep_clock: true,
      max_queue: null, overflow_to: null, sla: { first_response_secs: null, next_response_secs: null, resolution_secs: null },
      sla_overrides: [], calendar_id: null, warn_at_percent: 80, sla_actions: [],
      position: lanes.reduce((max, x) => Math.max(max, x.position + 1), 0), enabled: true,
    };
    const self = lane ? lane.id : undefined;
    const key = h('input', { testid: 'lane-key', value: l.key, maxlength: 40, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
    const name = h('input', { testid: 'lane-name-input', value: l.name, maxlength: 100 });
    const position = h('input', { type: 'number', min: 0, max: 100000, step: 1, testid: 'lane-position', value: l.position });
    const enabled = checkbox(t('lane.enabled'), { testid: 'lane-enabled', checked: l.enabled });

    const shownTypes = [...new Set([...types, ...l.types])];
    const typeBoxes = shownTypes.map((x) => checkbox(typeLabel(x), { testid: `lane-type-${x}`, value: x, checked: l.types.includes(x) }));
    const minVip = h('input', { type: 'number', min: 0, max: 255, step: 1, testid: 'lane-min-vip', value: l.min_vip_tier });

    const suggestions = new Set([...KNOWN_TYPES, ...types]);
    for (const other of lanes) {
      for (const s of Object.keys(other.required_skills)) suggestions.add(s);
      suggestions.add(other.key);
    }
    const skills = skillEditor(l.required_skills, [...suggestions].sort(), { testid: 'lane-skills' });
    const stages = rowEditor({
      testid: 'lane-stages', rowTestid: 'lane-stage', addLabel: t('lane.stage_add'), addTestid: 'lane-stage-add', removeLabel: t('lane.stage_remove'),
      initial: l.stages,
      make: (s = { after_secs: 0, required_skills: {}, when_nobody_eligible: true }) => {
        const after = h('input', { type: 'number', min: 0, max: 10080, step: 1, testid: 'stage-after', value: Math.round(s.after_secs / 60) });
        const needs = h('input', { testid: 'stage-skills', value: skillsText(s.required_skills), placeholder: t('lane.stage_skills_placeholder'), autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
        const sooner = checkbox(t('lane.stage_when_nobody'), { testid: 'stage-when-nobody', checked: s.when_nobody_eligible });
        return {
          focus: after,
          cells: [mini(t('lane.stage_after_minutes'), after, 'num'), mini(t('lane.stage_skills'), needs, 'grow'), sooner],
          read: () => ({
            after_secs: wholeNumber(after, t('lane.stage_after_minutes'), 0, 10080) * 60,
            required_skills: parseSkills(needs.value, t('lane.stages')),
            when_nobody_eligible: sooner.querySelector('input').checked,
          }),
        };
      },
    });

    const escalateTo = select(laneOptions(lanes, t('lane.no_escalation'), self), { testid: 'lane-escalate-to', value: l.escalate_to ?? '' });
    const overflowTo = select(laneOptions(lanes, t('lane.no_overflow'), self), { testid: 'lane-overflow-to', value: l.overflow_to ?? '' });
    const maxQueue = h('input', { type: 'number', min: 1, max: 100000, step: 1, testid: 'lane-max-queue', value: l.max_queue ?? '', placeholder: t('lane.unlimited') });
    const keepClock = checkbox(t('lane.keep_clock'), { testid: 'lane-keep-clock', checked: l.keep_clock });

    const targets = targetInputs(l.sla, 'lane-sla', true);
    const warn = h('input', { type: 'number', min: 1, max: 100, step: 1, testid: 'lane-warn-percent', value: l.warn_at_percent });
    const calendarOptions = [['', t('lane.calendar_always')], ...calendars.map((c) => [c.id, `${c.name} (${c.time_zone})`])];
    if (l.calendar_id !== null && !calendars.some((c) => c.id === l.calendar_id)) calendarOptions.push([l.calendar_id, t('calendar.calendar_n', { id: l.calendar_id })]);
    const calendar = select(calendarOptions, { testid: 'lane-calendar', value: l.calendar_id ?? '' });

    const actions = rowEditor({
      testid: 'lane-actions', rowTestid: 'lane-action', addLabel: t('lane.action_add'), addTestid: 'lane-action-add', removeLabel: t('lane.action_remove'),
      initial: l.sla_actions,
      make: (a = { on: 'warning', clock: null, action: 'notify_supervisors' }) => {
        const on = select(SLA_LEVELS.filter((x) => x !== 'ok').map((x) => [x, levelLabel(x)]), { testid: 'action-on', value: a.on });
        const clock = select([['', t('lane.every_clock')], ...CLOCKS.map((c) => [c, clockLabel(c)])], { testid: 'action-clock', value: a.clock ?? '' });
        const kind = select(SLA_ACTIONS.map((x) => [x, slaActionLabel(x)]), { testid: 'action-kind', value: a.action });
        return {
          focus: on,
          cells: [mini(t('lane.action_on'), on), mini(t('lane.action_clock'), clock), mini(t('lane.action_do'), kind, 'grow')],
          read: () => ({ on: on.value, clock: clock.value || null, action: kind.value }),
        };
      },
    });

    const overrides = rowEditor({
      testid: 'lane-overrides', rowTestid: 'lane-override', addLabel: t('lane.override_add'), addTestid: 'lane-override-add', removeLabel: t('lane.override_remove'),
      initial: l.sla_overrides,
      make: (o = { priority: null, min_vip_tier: null, channel: null, targets: {} }) => {
        const priority = select([['', t('lane.any_priority')], ...PRIORITIES.map((p) => [p, priorityLabel(p)])], { testid: 'override-priority', value: o.priority ?? '' });
        const vip = h('input', { type: 'number', min: 0, max: 255, step: 1, testid: 'override-vip', value: o.min_vip_tier ?? '', placeholder: t('lane.any') });
        const channel = select([['', t('lane.any_channel')], ...CHANNEL_KINDS.map((c) => [c, channelLabel(c)])], { testid: 'override-channel', value: o.channel ?? '' });
        const times = targetInputs(o.targets, 'override', false);
        return {
          focus: priority,
          cells: [mini(t('inbox.priority'), priority), mini(t('lane.min_vip_tier'), vip, 'num'), mini(t('routing.channel'), channel), times.nodes],
          read: () => ({
            priority: priority.value || null,
            min_vip_tier: vip.value.trim() === '' ? null : wholeNumber(vip, t('lane.min_vip_tier'), 0, 255),
            channel: channel.value || null,
            targets: times.read(),
          }),
        };
      },
    });

    formDialog({
      title: lane ? t('lane.edit_title', { name: lane.name }) : t('lane.new_title'), testid: 'routing-lane-dialog', wide: true,
      fields: [
        h('div', { class: 'row4' },
          field(t('lane.name'), name), field(t('lane.key'), key, t('lane.key_hint')),
          field(t('lane.position'), position, t('lane.position_hint')), h('div', { class: 'field end' }, enabled)),
        h('fieldset', { class: 'group' }, h('legend', {}, t('lane.entry')),
          h('div', { class: 'check-row', testid: 'lane-types' }, typeBoxes),
          h('small', { class: 'hint muted' }, t('lane.types_hint')),
          h('div', { class: 'row' }, field(t('lane.min_vip_tier'), minVip, t('lane.min_vip_hint')))),
        h('fieldset', { class: 'group' }, h('legend', {}, t('lane.requirements')),
          skills.node, h('small', { class: 'hint muted' }, t('lane.skills_hint')),
          h('div', { class: 'label' }, t('lane.stages')), stages.node,
          h('small', { class: 'hint muted' }, t('lane.stages_hint'))),
        h('fieldset', { class: 'group' }, h('legend', {}, t('lane.path')),
          h('div', { class: 'row3' },
            field(t('lane.escalate_to'), escalateTo),
            field(t('lane.max_queue'), maxQueue, t('lane.max_queue_hint')),
            field(t('lane.overflow_to'), overflowTo)),
          keepClock, h('small', { class: 'hint muted' }, t('lane.keep_clock_hint'))),
        h('fieldset', { class: 'group' }, h('legend', {}, t('lane.sla')),
          h('div', { class: 'row3' }, targets.nodes),
          h('small', { class: 'hint muted' }, t('lane.targets_hint')),
          h('div', { class: 'row' }, field(t('lane.calendar'), calendar, t('lane.calendar_hint')), field(t('lane.warn_percent'), warn, t('lane.warn_hint'))),
          h('div', { class: 'label' }, t('lane.actions')), actions.node,
          h('div', { class: 'label' }, t('lane.overrides')), overrides.node,
          h('small', { class: 'hint muted' }, t('lane.overrides_hint'))),
      ],
      onSubmit: () => {
        const body = {
          key: key.value.trim(),
          name: name.value.trim(),
          types: typeBoxes.map((box) => box.querySelector('input')).filter((input) => input.checked).map((input) => input.value),
          min_vip_tier: wholeNumber(minVip, t('lane.min_vip_tier'), 0, 255),
          required_skills: skills.values(),
          stages: stages.values(),
          escalate_to: escalateTo.value ? Number(escalateTo.value) : null,
          keep_clock: keepClock.querySelector('input').checked,
          max_queue: maxQueue.value.trim() === '' ? null : wholeNumber(maxQueue, t('lane.max_queue'), 1, 100000),
          overflow_to: overflowTo.value ? Number(overflowTo.value) : null,
          sla: targets.read(),
          sla_overrides: overrides.values(),
          calendar_id: calendar.value ? Number(calendar.value) : null,
          warn_at_percent: wholeNumber(warn, t('lane.warn_percent'), 1, 100),
          sla_actions: actions.values(),
          position: wholeNumber(position, t('lane.position'), 0, 100000),
          enabled: enabled.querySelector('input').checked,
        };
        return lane ? api.put(`/api/v1/routing/lanes/${lane.id}`, body) : api.post('/api/v1/routing/lanes', body);
      },
      onDone: (saved) => {
        forgetLanes();
        toast(t('lane.saved', { name: saved.name }));
        reload();
      },
    });
  }

  if (newButton) newButton.addEventListener('click', () => laneDialog(null));
  pane.append(h('div', { class: 'page-head' }, h('h2', {}, t('lane.title')), newButton),
    h('p', { class: 'muted' }, t('lane.intro')), list);
  await load();
}

// ---------------------------------------------------------------- calendars

/** Minutes after midnight as HH:MM (1440 is 24:00). */
export function clockTime(minutes) {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** HH:MM as minutes after midnight, or null. */
export function parseClockTime(text) {
  const m = /^(\d{1,2})[:：.](\d{2})$/.exec(text.trim());
  if (!m) return null;
  const minutes = Number(m[1]) * 60 + Number(m[2]);
  return Number(m[2]) < 60 && minutes <= DAY_MINUTES ? minutes : null;
}

/** YYYY-MM-DD dates from text (commas, spaces or lines between), sorted and without repeats. */
function parseDates(text, label) {
  const out = new Set();
  for (const token of text.split(/[\s,，;；]+/).map((x) => x.trim()).filter(Boolean)) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(token);
    const date = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
    if (!date || date.getUTCMonth() !== Number(m[2]) - 1 || date.getUTCDate() !== Number(m[3])) {
      throw { code: 'client', message: '', text: t('calendar.date_bad', { field: label, date: token }) };
    }
    out.add(token);
  }
  return [...out].sort();
}

function intervalsText(intervals) {
  return intervals.length ? intervals.map(([a, b]) => `${clockTime(a)}–${clockTime(b)}`).join(', ') : t('calendar.closed');
}

/** "Mon–Fri 09:00–18:00 · Sat–Sun closed": runs of weekdays with the same hours. */
export function hoursSummary(hours) {
  const parts = [];
  let start = 0;
  for (let d = 1; d <= 7; d += 1) {
    if (d < 7 && JSON.stringify(hours[d]) === JSON.stringify(hours[start])) continue;
    const days = d - 1 === start ? t(`calendar.short_${start}`) : t('calendar.day_range', { from: t(`calendar.short_${start}`), to: t(`calendar.short_${d - 1}`) });
    parts.push(`${days} ${intervalsText(hours[start])}`);
    start = d;
  }
  return parts.join(' · ');
}

export async function mountCalendars(pane, { manage }) {
  const list = h('div', { testid: 'routing-calendar-list' });
  const newButton = manage ? button(t('calendar.new'), { class: 'primary', testid: 'routing-calendar-new', onclick: () => calendarDialog(null) }) : null;
  let calendars = [];
  let lanes = [];
  let agents = [];

  async function load() {
    const [items, laneItems, agentItems] = await Promise.all([
      api.list('/api/v1/routing/calendars'), loadLanes(true).catch(() => []), api.list('/api/v1/routing/agents').catch(() => []),
    ]);
    calendars = items;
    lanes = laneItems;
    agents = agentItems;
    draw();
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function datesCell(dates, testid) {
    if (!dates.length) return h('td', { testid, dataset: { count: 0 } }, h('span', { class: 'muted' }, '—'));
    const shown = dates.slice(0, 4).join(', ');
    return h('td', { testid, class: 'small', dataset: { count: dates.length }, title: dates.join(', ') },
      t('calendar.dates_n', { n: dates.length }), h('div', { class: 'muted' }, dates.length > 4 ? `${shown}, …` : shown));
  }

  function draw() {
    const rows = [...calendars].sort((a, b) => a.name.localeCompare(b.name)).map((c) => {
      const users = lanes.filter((l) => l.calendar_id === c.id);
      const staff = agents.filter((a) => a.settings.calendar_id === c.id).map((a) => a.display_name).sort((a, b) => a.localeCompare(b));
      return h('tr', { testid: 'routing-calendar-row', dataset: { id: c.id, name: c.name } },
        h('td', {}, h('div', { class: 'strong' }, c.name),
          users.length ? h('div', { class: 'muted small', testid: 'calendar-lanes' }, t('calendar.used_by', { names: users.map((l) => l.name).join(', ') })) : null,
          staff.length ? h('div', { class: 'muted small', testid: 'calendar-employees', dataset: { count: staff.length } },
            t('calendar.working_hours_of', { names: staff.join(', ') })) : null),
        h('td', { testid: 'calendar-zone' }, h('code', {}, c.time_zone)),
        h('td', { testid: 'calendar-hours', class: 'small' }, hoursSummary(c.hours)),
        datesCell(c.holidays, 'calendar-holidays-cell'),
        datesCell(c.extra_workdays, 'calendar-extra-cell'),
        manage ? h('td', { class: 'actions nowrap' },
          button(t('common.edit'), { class: 'small', testid: 'routing-calendar-edit', 'aria-label': t('calendar.edit_for', { name: c.name }), onclick: () => calendarDialog(c) }),
          ' ',
          button(t('common.delete'), { class: 'small danger-text', testid: 'routing-calendar-delete', 'aria-label': t('calendar.delete_for', { name: c.name }), onclick: () => deleteCalendar(c) }))
          : null);
    });
    const headers = [t('calendar.name'), t('calendar.zone'), t('calendar.hours'), t('calendar.holidays'), t('calendar.extra_workdays')];
    if (manage) headers.push(h('span', { class: 'sr-only' }, t('common.actions')));
    append(clear(list), [table(headers, rows, { testid: 'routing-calendar-table' })]);
    if (!rows.length) list.querySelector('tr.empty td').textContent = t('calendar.none_yet');
  }

  async function deleteCalendar(c) {
    if (!await confirmDialog(t('calendar.delete_confirm', { name: c.name }), { confirmLabel: t('common.delete') })) return;
    try {
      await api.del(`/api/v1/routing/calendars/${c.id}`);
      toast(t('calendar.deleted', { name: c.name }));
      reload();
    } catch (err) {
      // The server names an employee who works to it by id; say who.
      const who = err && err.code === 'conflict' && /^employee (\d+) works to this calendar/.exec(err.message || '');
      const agent = who && agents.find((a) => a.employee_id === Number(who[1]));
      alertDialog(t('calendar.delete_refused'), agent ? t('calendar.employee_works_to', { name: agent.display_name }) : errorText(err));
    }
  }

  function calendarDialog(calendar) {
    const office = [[9 * 60, 18 * 60]];
    const c = calendar || {
      name: '', time_zone: browserTimeZone(), hours: [office, office, office, office, office, [], []], holidays: [], extra_workdays: [],
    };
    const name = h('input', { testid: 'calendar-name', value: c.name, maxlength: 100 });
    const zoneList = nextId('zones');
    const zone = h('input', {
      testid: 'calendar-zone-input', value: c.time_zone, list: zoneList, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false',
      placeholder: 'Asia/Shanghai',
    });
    const days = DAYS.map((d) => {
      const editor = rowEditor({
        testid: `calendar-day-${d}`, rowTestid: 'calendar-interval', addLabel: t('calendar.interval_add'), addTestid: 'calendar-interval-add',
        removeLabel: t('calendar.interval_remove'), initial: c.hours[d],
        make: ([from, to] = [9 * 60, 18 * 60]) => {
          const start = h('input', { testid: 'interval-start', value: clockTime(from), class: 'time', inputmode: 'numeric', placeholder: '09:00', maxlength: 5 });
          const end = h('input', { testid: 'interval-end', value: clockTime(to), class: 'time', inputmode: 'numeric', placeholder: '18:00', maxlength: 5 });
          return {
            focus: start,
            start,
            end,
            cells: [mini(t('calendar.opens'), start), h('span', { class: 'muted', 'aria-hidden': 'true' }, '–'), mini(t('calendar.closes'), end)],
            read: () => {
              const a = parseClockTime(start.value);
              const b = parseClockTime(end.value);
              if (a === null || b === null) {
                throw { code: 'client', message: '', text: t('calendar.time_bad', { day: t(`calendar.day_${d}`), from: start.value, to: end.value }) };
              }
              if (a >= b) {
                throw { code: 'client', message: '', text: t('calendar.interval_backwards', { day: t(`calendar.day_${d}`), from: clockTime(a), to: clockTime(b) }) };
              }
              return [a, b];
            },
          };
        },
      });
      return editor;
    });
    const copyMonday = button(t('calendar.copy_monday'), {
      class: 'small', testid: 'calendar-copy-monday',
      onclick: () => {
        const monday = days[0].rows.map((row) => [row.start.value, row.end.value]);
        for (const d of [1, 2, 3, 4]) {
          days[d].clear();
          for (const [a, b] of monday) {
            const row = days[d].add([0, 0]);
            row.start.value = a;
            row.end.value = b;
          }
        }
      },
    });
    const holidays = h('textarea', { rows: 3, testid: 'calendar-holidays', placeholder: '2025-10-01, 2025-10-02' }, c.holidays.join(', '));
    const extra = h('textarea', { rows: 2, testid: 'calendar-extra-workdays', placeholder: '2025-09-28' }, c.extra_workdays.join(', '));

    formDialog({
      title: calendar ? t('calendar.edit_title', { name: calendar.name }) : t('calendar.new_title'), testid: 'routing-calendar-dialog', wide: true,
      fields: [
        h('div', { class: 'row' },
          field(t('calendar.name'), name),
          field(t('calendar.zone'), zone, t('calendar.zone_hint'))),
        h('datalist', { id: zoneList }, COMMON_ZONES.map((z) => h('option', { value: z }))),
        h('fieldset', { class: 'group' }, h('legend', {}, t('calendar.hours')),
          h('small', { class: 'hint muted' }, t('calendar.hours_hint')),
          h('div', { class: 'week' }, DAYS.map((d) => h('div', { class: 'weekday', dataset: { day: d } },
            h('div', { class: 'strong weekday-name' }, t(`calendar.day_${d}`)), days[d].node))),
          h('div', {}, copyMonday)),
        h('div', { class: 'row' },
          field(t('calendar.holidays'), holidays, t('calendar.holidays_hint')),
          field(t('calendar.extra_workdays'), extra, t('calendar.extra_hint'))),
      ],
      onSubmit: () => {
        const hours = DAYS.map((d) => {
          const intervals = days[d].values().sort((a, b) => a[0] - b[0]);
          for (let i = 1; i < intervals.length; i += 1) {
            if (intervals[i][0] < intervals[i - 1][1]) {
              throw { code: 'client', message: '', text: t('calendar.overlap', { day: t(`calendar.day_${d}`) }) };
            }
          }
          return intervals;
        });
        const body = {
          name: name.value.trim(),
          time_zone: zone.value.trim(),
          hours,
          holidays: parseDates(holidays.value, t('calendar.holidays')),
          extra_workdays: parseDates(extra.value, t('calendar.extra_workdays')),
        };
        return calendar ? api.put(`/api/v1/routing/calendars/${calendar.id}`, body) : api.post('/api/v1/routing/calendars', body);
      },
      onDone: (saved) => {
        toast(t('calendar.saved', { name: saved.name }));
        reload();
      },
    });
  }

  pane.append(h('div', { class: 'page-head' }, h('h2', {}, t('calendar.title')), newButton),
    h('p', { class: 'muted' }, t('calendar.intro')), list);
  await load();
}
