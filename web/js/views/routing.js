// Routing for supervisors (routing.monitor), in tabs kept in the address
// (`/routing?tab=live|employees|lanes|calendars|policies|experiments`):
// - Live: a running experiment's arm, SLA clocks at risk, the conversations waiting in line, who
//   is available with their load, and the open offers; kept current by the socket's events and
//   every few seconds.
// - Lanes and Calendars: routing-lanes.js. Experiments and replays: routing-experiments.js
//   (`&report=<id>` keeps an experiment's report open).
// - Employees: each employee's skills, languages, capacity, mode (dedicated or part-time),
//   working hours (a business calendar; outside it only escalations and transfers reach them)
//   and daily quiet hours (HH:MM on screen, minutes in their own time zone in the API; an end
//   before its start runs past midnight), edited in a dialog with routing.manage. The live
//   tab marks who is off shift or in quiet hours now.
// - Policies: the policy versions, the active one marked (and a running experiment's two
//   versions); a new version (weights, offer timeouts, missed offers before "away") with
//   routing.manage.

import { h, append, clear, button, field, select, checkbox, table, formDialog, toast, errorText } from '../dom.js';
import { api, query } from '../api.js';
import { t } from '../i18n.js';
import { can, formatTime, formatDuration } from '../state.js';
import { watch } from '../live.js';
import { channelLabel, employeeName } from './inbox-common.js';
import {
  PRESENCES, MEDIA, TERMS, presenceBadge, typeLabel, urgencyBadge, termLabel, mediumLabel, languageLabel,
  number, countdown, loadNode, clockLabel, levelBadge, dueText, laneName, loadLanes, wholeNumber, decimal, skillEditor,
} from './routing-common.js';
import { mountLanes, mountCalendars, rowEditor, mini, clockTime, parseClockTime } from './routing-lanes.js';
import { mountExperiments, experimentBanner } from './routing-experiments.js';

const TABS = ['live', 'employees', 'lanes', 'calendars', 'policies', 'experiments'];
/** How often the live tab asks again, besides the socket's events. */
const REFRESH_MS = 4000;
const KNOWN_LANGUAGES = ['zh', 'en'];
/** What the API takes: at most so many quiet periods a day, in minutes 0 to 1440. */
const MAX_QUIET = 4;
const DAY_MINUTES = 24 * 60;

export async function mount(root, { navigate }) {
  const params = new URLSearchParams(location.search);
  const manage = can('routing.manage');
  /** Employees' names and routing settings (GET /routing/agents), by id. */
  let agents = new Map();
  let agentsAt = 0;

  const tabs = h('div', { class: 'tabs', role: 'tablist', testid: 'routing-tabs' },
    TABS.map((name) => button(t(`routing.tab_${name}`), {
      role: 'tab', class: 'tab', testid: `routing-tab-${name}`, dataset: { tab: name },
      onclick: () => show(name),
    })));
  const body = h('div', { class: 'routing-body' });

  async function loadAgents(fresh = false) {
    if (!fresh && agents.size && Date.now() - agentsAt < 60000) return agents;
    const items = await api.list('/api/v1/routing/agents');
    agents = new Map(items.map((a) => [a.employee_id, a]));
    agentsAt = Date.now();
    return agents;
  }

  function nameOf(id) {
    const a = agents.get(id);
    return a ? a.display_name : employeeName(null, id);
  }

  function conversationLink(id) {
    return h('a', {
      href: `/inbox/${id}`, testid: 'routing-conversation-link', dataset: { id },
      onclick: (event) => {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        navigate(`/inbox/${id}`);
      },
    }, t('conversation.number', { id }));
  }

  function personCell(id) {
    const a = agents.get(id);
    return h('td', {}, h('div', { class: 'strong' }, nameOf(id)), a ? h('code', { class: 'muted' }, a.username) : null);
  }

  /** Keeps the tab (and an open experiment report) in the address. */
  function remember(name, report) {
    history.replaceState(null, '', location.pathname + query({ tab: name === 'live' ? '' : name, report: report || '' }));
  }

  async function show(name, { report } = {}) {
    remember(name, name === 'experiments' ? report : '');
    for (const tab of tabs.children) {
      const current = tab.dataset.tab === name;
      tab.classList.toggle('active', current);
      tab.setAttribute('aria-selected', current ? 'true' : 'false');
    }
    const pane = h('div', { class: 'routing-pane', role: 'tabpanel', testid: `routing-pane-${name}` });
    clear(body).append(pane);
    try {
      if (name === 'live') await mountLive(pane);
      else if (name === 'employees') await mountEmployees(pane);
      else if (name === 'lanes') await mountLanes(pane, { manage });
      else if (name === 'calendars') await mountCalendars(pane, { manage });
      else if (name === 'experiments') await mountExperiments(pane, { manage, report, onReport: (id) => remember(name, id) });
      else await mountPolicies(pane);
    } catch (err) {
      if (pane.isConnected) pane.append(h('p', { class: 'form-error', role: 'alert', testid: 'routing-error' }, errorText(err)));
    }
  }

  // ------------------------------------------------------------ live

  async function mountLive(pane) {
    const liveInfo = h('span', { class: 'live-status', testid: 'live-status', role: 'status' });
    const experimentBox = h('div', { class: 'experiment-banner-box' });
    const summary = h('p', { class: 'muted', testid: 'routing-summary' });
    const showOffline = checkbox(t('routing.show_offline'), { testid: 'routing-show-offline' });
    const queueBox = h('div', { testid: 'routing-queue' });
    const agentsBox = h('div', { testid: 'routing-agents' });
    const offersBox = h('div', { testid: 'routing-offers' });
    const slaBox = h('div', { testid: 'routing-sla-risk' });
    let snapshot = null;
    let lanes = [];
    let seq = 0;

    async function load() {
      const mine = ++seq;
      const [live, laneItems] = await Promise.all([api.get('/api/v1/routing/live'), loadLanes().catch(() => lanes)]);
      lanes = laneItems;
      const unknown = live.agents.some((a) => !agents.has(a.employee_id))
        || live.offers.some((o) => !agents.has(o.decision.chosen.agent));
      await loadAgents(unknown && Date.now() - agentsAt > 5000);
      if (mine !== seq || !pane.isConnected) return;
      snapshot = live;
      draw();
    }

    function reload() {
      load().catch((err) => toast(errorText(err), 'error'));
    }

    let soon = null;
    function loadSoon() {
      clearTimeout(soon);
      soon = setTimeout(reload, 300);
    }

    function draw() {
      const s = snapshot;
      summary.textContent = s.ready
        ? t('routing.summary', { version: s.policy_version, waiting: s.queue.length, offers: s.offers.length,
          online: s.agents.filter((a) => a.presence === 'online').length })
        : t('routing.starting');
      append(clear(experimentBox), [s.experiment ? experimentBanner(s.experiment, { onOpen: () => show('experiments') }) : null]);
      const now = Date.now();
      const risks = s.sla_risk || [];
      clear(slaBox).append(table([t('routing.conversation'), t('lane.lane'), t('sla.clock'), t('sla.level'), t('sla.due')],
        risks.map((r) => h('tr', { testid: 'routing-sla-row', dataset: { conversation: r.conversation_id, clock: r.clock, level: r.level } },
          h('td', {}, conversationLink(r.conversation_id)),
          h('td', {}, r.lane_id === null || r.lane_id === undefined ? '—' : laneName(lanes, r.lane_id)),
          h('td', { class: 'nowrap' }, clockLabel(r.clock)),
          h('td', {}, levelBadge(r.level, 'sla-level')),
          h('td', { class: ['nowrap', r.due_at !== null && r.due_at < now && 'overdue'], dataset: { due: r.due_at ?? '' }, title: formatTime(r.due_at) },
            dueText(r.due_at, now)))),
        { testid: 'routing-sla-table' }));
      if (!risks.length) slaBox.querySelector('tr.empty td').textContent = t('routing.sla_none');
      clear(queueBox).append(table([t('routing.position'), t('routing.conversation'), t('routing.waiting'), t('routing.urgency'),
        t('routing.vip'), t('routing.channel'), t('routing.skills')],
      s.queue.map((q) => h('tr', { testid: 'routing-queue-row', dataset: { conversation: q.conversation_id, position: q.position } },
        h('td', { class: 'num' }, String(q.position)),
        h('td', {}, conversationLink(q.conversation_id)),
        h('td', { class: 'nowrap', title: formatTime(q.waiting_since), dataset: { since: q.waiting_since } },
          formatDuration(Math.max(0, Math.floor((now - q.waiting_since) / 1000)))),
        h('td', {}, urgencyBadge(q.urgency)),
        h('td', {}, q.vip_tier ? h('span', { class: 'badge warn' }, t('routing.vip_tier', { n: q.vip_tier })) : '—'),
        h('td', { class: 'nowrap' }, channelLabel(q.channel_kind)),
        h('td', {}, q.wanted_skills.length ? q.wanted_skills.map((x) => h('span', { class: 'chip', title: typeLabel(x) }, x)) : '—'))),
      { testid: 'routing-queue-table' }));
      if (!s.queue.length) queueBox.querySelector('tr.empty td').textContent = t('routing.queue_empty');

      const order = (p) => PRESENCES.indexOf(p);
      const wanted = showOffline.querySelector('input').checked;
      const people = s.agents
        .filter((a) => wanted || a.presence !== 'offline' || MEDIA.some((m) => a.load[m]))
        .sort((a, b) => order(a.presence) - order(b.presence) || nameOf(a.employee_id).localeCompare(nameOf(b.employee_id)));
      clear(agentsBox).append(table([t('routing.employee'), t('routing.presence'), t('routing.load')],
        people.map((a) => h('tr', {
          testid: 'routing-agent-row',
          dataset: {
            id: a.employee_id, presence: a.presence, username: (agents.get(a.employee_id) || {}).username || '',
            offShift: String(Boolean(a.off_shift)), quiet: String(Boolean(a.quiet)),
          },
        },
        personCell(a.employee_id),
        h('td', {}, presenceBadge(a.presence, 'agent-presence'),
          a.off_shift ? h('span', { class: 'badge warn', testid: 'agent-off-shift', title: t('routing.off_shift_hint') }, t('routing.off_shift')) : null,
          a.quiet ? h('span', { class: 'badge info', testid: 'agent-quiet', title: t('routing.quiet_now_hint') }, t('routing.quiet_now')) : null),
        h('td', { class: 'nowrap' }, loadNode(a.load, a.capacity, 'agent-load')))),
        { testid: 'routing-agents-table' }));
      if (!people.length) agentsBox.querySelector('tr.empty td').textContent = t('routing.nobody_available');

      const offers = [...s.offers].sort((a, b) => a.expires_at - b.expires_at);
      clear(offersBox).append(table([t('routing.conversation'), t('routing.offered_to_col'), t('routing.type'), t('routing.urgency'),
        t('routing.score'), t('routing.expires')],
      offers.map((o) => h('tr', { testid: 'routing-offer-row', dataset: { offer: o.offer_id, conversation: o.conversation_id, agent: o.decision.chosen.agent } },
        h('td', {}, conversationLink(o.conversation_id), o.customer_name ? h('div', { class: 'muted small' }, o.customer_name) : null),
        personCell(o.decision.chosen.agent),
        h('td', {}, typeLabel(o.type)),
        h('td', {}, urgencyBadge(o.urgency)),
        h('td', { class: 'num' }, number(o.decision.chosen.score)),
        h('td', { class: 'num', dataset: { expires: o.expires_at } }, countdown(o.expires_at)))),
      { testid: 'routing-offers-table' }));
      if (!offers.length) offersBox.querySelector('tr.empty td').textContent = t('routing.no_offers');
    }

    /** Waiting times and countdowns move every second between fetches. */
    function tick() {
      const now = Date.now();
      for (const cell of pane.querySelectorAll('td[data-since]')) {
        cell.textContent = formatDuration(Math.max(0, Math.floor((now - Number(cell.dataset.since)) / 1000)));
      }
      for (const cell of pane.querySelectorAll('td[data-expires]')) cell.textContent = countdown(Number(cell.dataset.expires));
      for (const cell of pane.querySelectorAll('td[data-due]')) {
        if (!cell.dataset.due) continue;
        const due = Number(cell.dataset.due);
        cell.textContent = dueText(due, now);
        cell.classList.toggle('overdue', due < now);
      }
    }

    showOffline.addEventListener('change', () => { if (snapshot) draw(); });
    pane.append(
      experimentBox,
      h('div', { class: 'toolbar' }, summary, h('div', { class: 'spacer' }), liveInfo),
      h('h2', {}, t('routing.sla_title')), slaBox,
      h('h2', {}, t('routing.queue_title')), queueBox,
      h('div', { class: 'page-head sub' }, h('h2', {}, t('routing.agents_title')), showOffline), agentsBox,
      h('h2', { class: 'sub' }, t('routing.offers_title')), offersBox);
    await load();
    let ticks = 0;
    const timer = setInterval(() => {
      if (!pane.isConnected) {
        clearInterval(timer);
        return;
      }
      ticks += 1;
      if (ticks % (REFRESH_MS / 1000) === 0) reload();
      else tick();
    }, 1000);
    watch(pane, {
      onEvent: (data) => {
        if (typeof data.type !== 'string') return;
        if (data.type.startsWith('routing.') || data.type === 'conversation.updated') loadSoon();
      },
      onStatus: (live) => {
        liveInfo.classList.toggle('on', live);
        liveInfo.textContent = live ? t('live.on') : t('live.off');
      },
      refresh: () => load(),
    });
  }

  // ------------------------------------------------------------ employees

  async function mountEmployees(pane) {
    const search = h('input', { type: 'search', testid: 'routing-employee-search', placeholder: t('routing.search_placeholder') });
    const list = h('div', { testid: 'routing-employee-list' });
    let types = [];
    let calendars = [];

    async function load() {
      const [, live, calendarItems] = await Promise.all([
        loadAgents(true), api.get('/api/v1/routing/live').catch(() => null), api.list('/api/v1/routing/calendars').catch(() => calendars),
      ]);
      types = live ? live.types : [];
      calendars = calendarItems;
      draw();
    }

    function calendarName(id) {
      const c = calendars.find((x) => x.id === id);
      return c ? c.name : t('calendar.calendar_n', { id });
    }

    /** "Shanghai office hours · quiet 22:00–07:00", or "Always working". */
    function hoursCell(s) {
      const calendarId = s.calendar_id ?? null;
      const quiet = s.quiet_hours || [];
      const c = calendars.find((x) => x.id === calendarId);
      return h('td', {
        testid: 'employee-hours', class: 'small',
        dataset: { calendar: calendarId ?? '', quiet: quiet.map(([a, b]) => `${a}-${b}`).join(',') },
        title: c ? `${c.name} (${c.time_zone})` : undefined,
      },
      calendarId === null ? h('span', { class: 'muted' }, t('routing.always_working')) : calendarName(calendarId),
      quiet.length ? [' · ', h('span', { testid: 'employee-quiet' }, t('routing.quiet_list', { hours: quietText(quiet) }))] : null);
    }

    function reload() {
      load().catch((err) => toast(errorText(err), 'error'));
    }

    function draw() {
      const q = search.value.trim().toLowerCase();
      const items = [...agents.values()]
        .filter((a) => !q || a.display_name.toLowerCase().includes(q) || a.username.toLowerCase().includes(q)
          || Object.keys(a.settings.skills).some((s) => s.includes(q)))
        .sort((a, b) => a.display_name.localeCompare(b.display_name));
      const rows = items.map((a) => {
        const s = a.settings;
        return h('tr', { testid: 'routing-employee-row', dataset: { id: a.employee_id, username: a.username } },
          h('td', {}, h('div', { class: 'strong' }, a.display_name), h('code', { class: 'muted' }, a.username)),
          h('td', {}, presenceBadge(s.presence)),
          h('td', { testid: 'employee-skills' }, Object.keys(s.skills).length
            ? Object.entries(s.skills).map(([name, level]) => h('span', { class: 'chip', dataset: { skill: name, level } }, `${name} ${level}`))
            : h('span', { class: 'muted' }, t('routing.no_skills'))),
          h('td', { testid: 'employee-languages' }, s.languages.map(languageLabel).join(', ') || '—'),
          h('td', { class: 'nowrap', testid: 'employee-capacity' }, MEDIA.map((m) => `${mediumLabel(m)} ${s.capacity[m] ?? 0}`).join(' · ')),
          h('td', { testid: 'employee-mode', dataset: { mode: s.mode.kind } }, modeText(s.mode)),
          hoursCell(s),
          manage ? h('td', { class: 'actions' }, button(t('common.edit'), {
            class: 'small', testid: 'routing-employee-edit', 'aria-label': t('routing.edit_for', { name: a.display_name }),
            onclick: () => editDialog(a),
          })) : null);
      });
      const headers = [t('routing.employee'), t('routing.presence'), t('routing.skills'), t('routing.languages'),
        t('routing.capacity'), t('routing.mode'), t('routing.hours')];
      if (manage) headers.push(h('span', { class: 'sr-only' }, t('common.actions')));
      clear(list).append(table(headers, rows, { testid: 'routing-employee-table' }));
    }

    function editDialog(a) {
      const s = a.settings;
      const suggestions = new Set(types);
      for (const other of agents.values()) for (const skill of Object.keys(other.settings.skills)) suggestions.add(skill);
      const skills = skillEditor(s.skills, [...suggestions].sort());
      const languageBoxes = KNOWN_LANGUAGES.map((code) => checkbox(languageLabel(code), {
        checked: s.languages.includes(code), testid: `agent-language-${code}`, value: code,
      }));
      const otherLanguages = h('input', {
        testid: 'agent-languages-other', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false',
        value: s.languages.filter((l) => !KNOWN_LANGUAGES.includes(l)).join(', '),
      });
      const capacity = Object.fromEntries(MEDIA.map((m) => [m, h('input', {
        type: 'number', min: 0, max: 100, step: 1, testid: `agent-capacity-${m}`, value: s.capacity[m] ?? 0,
      })]));
      const partTime = s.mode.kind === 'part_time';
      const mode = select([['dedicated', t('routing.mode_dedicated')], ['part_time', t('routing.mode_part_time')]], {
        value: s.mode.kind, testid: 'agent-mode',
      });
      const delay = h('input', {
        type: 'number', min: 0, max: 10080, step: 1, testid: 'agent-delay', value: partTime ? Math.round(s.mode.delay_ms / 60000) : 10,
      });
      const cap = h('input', {
        type: 'number', min: 1, max: 10000, step: 1, testid: 'agent-daily-cap', value: partTime ? s.mode.daily_cap : 10,
      });
      const partFields = h('div', { class: 'row', testid: 'agent-part-time', hidden: !partTime },
        field(t('routing.delay'), delay), field(t('routing.daily_cap'), cap));
      mode.addEventListener('change', () => { partFields.hidden = mode.value !== 'part_time'; });
      const calendar = select([['', t('routing.always_working')], ...[...calendars].sort((x, y) => x.name.localeCompare(y.name))
        .map((c) => [c.id, `${c.name} (${c.time_zone})`])], { value: s.calendar_id ?? '', testid: 'agent-calendar' });
      const quiet = quietEditor(s.quiet_hours || []);
      const zone = h('small', { class: 'hint muted', testid: 'agent-time-zone' });
      // Quiet hours count in the employee's own time zone, which only the employee record has.
      if (can('employees.read')) {
        api.get(`/api/v1/employees/${a.employee_id}`)
          .then((e) => { zone.textContent = t('routing.quiet_zone', { zone: e.time_zone }); })
          .catch(() => {});
      }
      formDialog({
        title: t('routing.edit_title', { name: a.display_name }), testid: 'routing-agent-dialog', wide: true,
        fields: [
          h('fieldset', { class: 'group' }, h('legend', {}, t('routing.skills')),
            skills.node, h('small', { class: 'hint muted' }, t('routing.skills_hint'))),
          h('fieldset', { class: 'group' }, h('legend', {}, t('routing.languages')),
            h('div', { class: 'check-row' }, languageBoxes),
            field(t('routing.languages_other'), otherLanguages, t('routing.languages_other_hint'))),
          h('fieldset', { class: 'group' }, h('legend', {}, t('routing.capacity')),
            h('div', { class: 'row3' }, MEDIA.map((m) => field(mediumLabel(m), capacity[m]))),
            h('small', { class: 'hint muted' }, t('routing.capacity_hint'))),
          h('fieldset', { class: 'group' }, h('legend', {}, t('routing.mode')),
            field(t('routing.mode'), mode, t('routing.mode_hint')), partFields),
          h('fieldset', { class: 'group', testid: 'agent-hours' }, h('legend', {}, t('routing.hours')),
            field(t('routing.calendar'), calendar, t('routing.calendar_hint')),
            h('div', { class: 'label small' }, t('routing.quiet_hours')),
            quiet.node,
            h('small', { class: 'hint muted' }, t('routing.quiet_hint', { n: MAX_QUIET })), zone),
        ],
        onSubmit: () => {
          const languages = [
            ...languageBoxes.map((box) => box.querySelector('input')).filter((input) => input.checked).map((input) => input.value),
            ...otherLanguages.value.split(/[,，\s]+/).map((x) => x.trim()).filter(Boolean),
          ];
          const patch = {
            skills: skills.values(),
            languages: [...new Set(languages)],
            capacity: Object.fromEntries(MEDIA.map((m) => [m, wholeNumber(capacity[m], mediumLabel(m), 0, 100)])),
          };
          patch.mode = mode.value === 'part_time'
            ? {
              kind: 'part_time',
              delay_ms: wholeNumber(delay, t('routing.delay'), 0, 10080) * 60000,
              daily_cap: wholeNumber(cap, t('routing.daily_cap'), 1, 10000),
            }
            : { kind: 'dedicated' };
          patch.calendar_id = calendar.value === '' ? null : Number(calendar.value);
          patch.quiet_hours = quiet.values();
          if (patch.quiet_hours.length > MAX_QUIET) throw { code: 'client', message: '', text: t('routing.quiet_too_many', { n: MAX_QUIET }) };
          return api.patch(`/api/v1/routing/agents/${a.employee_id}`, patch);
        },
        onDone: () => {
          toast(t('common.saved'));
          reload();
        },
      });
    }

    let timer = null;
    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(draw, 150);
    });
    pane.append(h('div', { class: 'toolbar', role: 'search' }, field(t('common.search'), search)), list);
    await load();
  }

  // ------------------------------------------------------------ policies

  async function mountPolicies(pane) {
    const list = h('div', { testid: 'routing-policy-list' });
    const newButton = manage ? button(t('routing.new_policy'), { class: 'primary', testid: 'routing-policy-new', disabled: true }) : null;
    const notice = h('div', { class: 'policy-experiment-notice', testid: 'routing-policy-experiment' });
    let versions = [];
    let experiment = null;

    async function load() {
      const [items, , live] = await Promise.all([
        api.list('/api/v1/routing/policies'), loadAgents().catch(() => agents), api.get('/api/v1/routing/live').catch(() => null),
      ]);
      versions = items;
      experiment = live && live.experiment ? live.experiment : null;
      draw();
      if (newButton) newButton.disabled = !versions.length;
    }

    function draw() {
      const active = versions.length ? versions[versions.length - 1].policy.version : null;
      const rows = [...versions].reverse().map((v) => {
        const p = v.policy;
        const isActive = p.version === active;
        const builtIn = v.created_by === null || v.created_by === undefined;
        const arm = experiment && (experiment.control === p.version ? 'control' : experiment.candidate === p.version ? 'candidate' : null);
        return h('tr', { testid: 'routing-policy-row', class: isActive ? 'active' : undefined, dataset: { version: p.version, active: String(isActive) } },
          h('td', { class: 'nowrap' }, h('span', { class: 'strong' }, t('routing.version_n', { version: p.version })),
            isActive ? h('span', { class: 'badge ok', testid: 'policy-active' }, t('routing.active')) : null,
            arm ? h('div', {}, h('span', { class: 'badge info', testid: 'policy-experiment-arm', dataset: { arm } }, t(`experiment.arm_${arm}`))) : null),
          h('td', { class: 'nowrap' }, v.created_at ? formatTime(v.created_at) : '—',
            h('div', { class: 'muted small' }, builtIn ? t('routing.built_in') : nameOf(v.created_by))),
          h('td', { class: 'note' }, builtIn && v.note === 'built in' ? t('routing.built_in_note') : v.note || '—'),
          h('td', {}, h('ul', { class: 'weights small' }, TERMS.map((name) => h('li', { dataset: { term: name } },
            h('span', {}, termLabel(name)), h('span', { class: 'num' }, number(p.weights[name])))))),
          h('td', { class: 'nowrap small' }, MEDIA.map((m) => h('div', { dataset: { medium: m } },
            `${mediumLabel(m)}: ${t('routing.seconds', { s: number((p.offer_timeout_ms[m] ?? 0) / 1000, 1) })}`))),
          h('td', { class: 'num' }, String(p.missed_offers_to_away)));
      });
      // Version 1, the built-in policy, is listed only until a version is added.
      const first = versions.length ? versions[0].policy.version : 1;
      append(clear(notice), [experiment ? h('p', { class: 'banner info' }, t('experiment.policies_notice', {
        name: experiment.name, control: experiment.control, candidate: experiment.candidate,
      })) : null]);
      append(clear(list), [
        table([t('routing.version'), t('routing.created'), t('routing.note'), t('routing.weights'),
          t('routing.offer_timeouts'), t('routing.missed_to_away')], rows, { testid: 'routing-policy-table' }),
        first > 1 ? h('p', { class: 'muted small', testid: 'routing-policy-built-in' }, t('routing.built_in_before')) : null]);
    }

    function newDialog() {
      const base = versions[versions.length - 1].policy;
      const weights = Object.fromEntries(TERMS.map((name) => [name, h('input', {
        type: 'number', min: 0, max: 100, step: 0.1, testid: `policy-weight-${name}`, value: base.weights[name],
      })]));
      const timeouts = Object.fromEntries(MEDIA.map((m) => [m, h('input', {
        type: 'number', min: 1, max: 3600, step: 1, testid: `policy-timeout-${m}`, value: Math.round((base.offer_timeout_ms[m] ?? 30000) / 1000),
      })]));
      const missed = h('input', { type: 'number', min: 1, max: 100, step: 1, testid: 'policy-missed', value: base.missed_offers_to_away });
      const note = h('input', { testid: 'policy-note', maxlength: 500, placeholder: t('routing.note_placeholder') });
      formDialog({
        title: t('routing.new_policy_title', { version: base.version + 1 }), testid: 'routing-policy-dialog', wide: true,
        submitLabel: t('routing.activate'),
        fields: [
          h('p', { class: 'muted' }, t('routing.new_policy_hint', { version: base.version })),
          h('fieldset', { class: 'group' }, h('legend', {}, t('routing.weights')),
            h('div', { class: 'row4' }, TERMS.map((name) => field(termLabel(name), weights[name]))),
            h('small', { class: 'hint muted' }, t('routing.weights_hint'))),
          h('fieldset', { class: 'group' }, h('legend', {}, t('routing.offer_timeouts')),
            h('div', { class: 'row3' }, MEDIA.map((m) => field(t('routing.timeout_seconds', { medium: mediumLabel(m) }), timeouts[m])))),
          h('div', { class: 'row' },
            field(t('routing.missed_to_away'), missed, t('routing.missed_hint')),
            field(t('routing.note'), note)),
        ],
        onSubmit: () => {
          const body = {
            weights: Object.fromEntries(TERMS.map((name) => [name, decimal(weights[name], termLabel(name), 0, 100)])),
            offer_timeout_ms: Object.fromEntries(MEDIA.map((m) => [m,
              wholeNumber(timeouts[m], t('routing.timeout_seconds', { medium: mediumLabel(m) }), 1, 3600) * 1000])),
            missed_offers_to_away: wholeNumber(missed, t('routing.missed_to_away'), 1, 100),
            note: note.value.trim(),
          };
          return api.post('/api/v1/routing/policies', body);
        },
        onDone: (version) => {
          toast(t('routing.policy_added', { version: version.policy.version }));
          load().catch((err) => toast(errorText(err), 'error'));
        },
      });
    }

    if (newButton) newButton.addEventListener('click', newDialog);
    pane.append(h('div', { class: 'page-head' }, h('h2', {}, t('routing.policies_title')), newButton),
      h('p', { class: 'muted' }, t('routing.policies_intro')), notice, list);
    await load();
  }

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, t('nav.routing'))),
    tabs,
    body));
  await show(TABS.includes(params.get('tab')) ? params.get('tab') : 'live', { report: params.get('report') });
}

/** "22:00–07:00, 12:00–13:00" for daily [start, end] minute pairs. */
function quietText(intervals) {
  return intervals.map(([a, b]) => `${clockTime(a)}–${clockTime(b)}`).join(', ');
}

/** Rows of daily quiet hours as HH:MM from and to; returns the row editor, values() in minutes. */
function quietEditor(initial) {
  return rowEditor({
    testid: 'agent-quiet-hours', rowTestid: 'quiet-interval', addLabel: t('routing.quiet_add'), addTestid: 'quiet-add',
    removeLabel: t('routing.quiet_remove'), initial,
    make: ([from, to] = [22 * 60, 7 * 60]) => {
      const start = h('input', { testid: 'quiet-start', value: clockTime(from), class: 'time', inputmode: 'numeric', placeholder: '22:00', maxlength: 5 });
      const end = h('input', { testid: 'quiet-end', value: clockTime(to), class: 'time', inputmode: 'numeric', placeholder: '07:00', maxlength: 5 });
      const overnight = h('span', { class: 'muted small quiet-overnight', testid: 'quiet-overnight' });
      const mark = () => {
        const a = parseClockTime(start.value);
        const b = parseClockTime(end.value);
        overnight.textContent = a !== null && b !== null && b < a && b !== 0 ? t('routing.quiet_overnight') : '';
      };
      start.addEventListener('input', mark);
      end.addEventListener('input', mark);
      mark();
      return {
        focus: start,
        cells: [mini(t('routing.quiet_from'), start), h('span', { class: 'muted', 'aria-hidden': 'true' }, '–'), mini(t('routing.quiet_to'), end), overnight],
        read: () => {
          let a = parseClockTime(start.value);
          const b = parseClockTime(end.value);
          if (a === null || b === null) {
            throw { code: 'client', message: '', text: t('routing.quiet_time_bad', { from: start.value, to: end.value }) };
          }
          // 24:00 as a start is the next midnight, the same as 00:00.
          if (a === DAY_MINUTES) a = 0;
          if (a === b) {
            throw { code: 'client', message: '', text: t('routing.quiet_same', { from: clockTime(a), to: clockTime(b) }) };
          }
          return [a, b];
        },
      };
    },
  });
}

function modeText(mode) {
  if (mode.kind !== 'part_time') return t('routing.mode_dedicated');
  return t('routing.mode_part_time_detail', { minutes: Math.round(mode.delay_ms / 60000), cap: mode.daily_cap });
}
