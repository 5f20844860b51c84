// The knowledge graph's entities (products, components, features, known issues, fixes,
// policies, teams, topics):
// - the Entities tab: the list by kind and name; create, edit and delete with knowledge.manage
//   (kind, name, aliases, description, key);
// - an entity's page, `/knowledge/entities/{id}`: its details, its relations (add one to
//   another entity with knowledge.manage; remove) and its neighbourhood;
// - graphCard(): a neighbourhood (GET …/graph?depth=1..3) drawn as SVG: the centre in the
//   middle, the other nodes on rings by their distance (ordered by the node they hang from,
//   then by name, so the same graph is always drawn the same way), nodes coloured by kind
//   (articles square), edges labelled with the relation; a node opens its entity or article.

import { h, clear, button, field, select, table, formDialog, confirmDialog, toast, errorText } from '../dom.js';
import { api, query } from '../api.js';
import { t } from '../i18n.js';
import { can } from '../state.js';
import {
  ENTITY_KINDS, RELATION_KINDS, kindLabel, kindChip, relationLabel, inLink, nodePath, fieldErrors, entityPicker,
} from './knowledge-common.js';

/** Entity-to-entity relations ("about" goes from an article). */
const ENTITY_RELATION_KINDS = RELATION_KINDS.filter((k) => k !== 'about');

function splitNames(text) {
  return String(text || '').split(/[,，、\n]/).map((x) => x.trim()).filter(Boolean);
}

// ---------------------------------------------------------------- the dialog

function entityDialog(entity, onDone) {
  const kind = select(ENTITY_KINDS.map((k) => [k, kindLabel(k)]), { testid: 'kb-entity-kind', value: entity ? entity.kind : 'product' });
  const name = h('input', { testid: 'kb-entity-name', value: entity ? entity.name : '', maxlength: 200 });
  const aliases = h('input', { testid: 'kb-entity-aliases', value: entity ? entity.aliases.join(', ') : '', placeholder: t('knowledge.aliases_placeholder') });
  const description = h('textarea', { rows: 3, testid: 'kb-entity-description', value: entity ? entity.description : '' });
  const key = h('input', { testid: 'kb-entity-key', value: entity && entity.key ? entity.key : '', placeholder: 'product:cam-c3', spellcheck: 'false', autocapitalize: 'none' });
  const errors = fieldErrors({ kind, name, aliases, description, key });
  formDialog({
    title: entity ? t('knowledge.edit_entity', { name: entity.name }) : t('knowledge.new_entity'), testid: 'kb-entity-dialog', wide: true,
    submitLabel: entity ? t('common.save') : t('common.create'),
    fields: [
      h('div', { class: 'row' }, field(t('knowledge.entity_kind'), kind), field(t('knowledge.entity_name'), name)),
      field(t('knowledge.aliases'), aliases, t('knowledge.aliases_hint')),
      field(t('common.description'), description),
      field(t('knowledge.entity_key'), key, t('knowledge.entity_key_hint')),
    ],
    onSubmit: async () => {
      errors.clear();
      const body = {
        kind: kind.value, name: name.value.trim(), aliases: splitNames(aliases.value),
        description: description.value.trim(), key: key.value.trim() || null,
      };
      if (!body.name) {
        errors.mark('name', t('knowledge.name_required'));
        throw { code: 'client', text: t('knowledge.name_required') };
      }
      try {
        return entity ? await api.put(`/api/v1/knowledge/entities/${entity.id}`, body) : await api.post('/api/v1/knowledge/entities', body);
      } catch (err) {
        errors.show(err);
        throw err;
      }
    },
    onDone: (saved) => {
      toast(entity ? t('knowledge.entity_saved', { name: saved.name }) : t('knowledge.entity_created', { name: saved.name }));
      onDone(saved);
    },
  });
}

async function deleteEntity(entity, onDone) {
  if (!await confirmDialog(t('knowledge.delete_entity_confirm', { name: entity.name }), { confirmLabel: t('common.delete') })) return;
  try {
    await api.del(`/api/v1/knowledge/entities/${entity.id}`);
    toast(t('knowledge.entity_deleted', { name: entity.name }));
    onDone();
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

// ---------------------------------------------------------------- the list

export async function mountEntities(pane, { navigate, manage }) {
  const kind = select([['', t('knowledge.all_kinds')], ...ENTITY_KINDS.map((k) => [k, kindLabel(k)])], { testid: 'kb-entity-filter-kind' });
  const q = h('input', { type: 'search', testid: 'kb-entity-filter-q', placeholder: t('knowledge.entity_search_placeholder') });
  const list = h('div', { testid: 'kb-entity-list' });
  const count = h('span', { class: 'muted', testid: 'kb-entity-count' });
  let seq = 0;
  let timer = null;

  async function load() {
    const mine = ++seq;
    const items = await api.list('/api/v1/knowledge/entities' + query({ kind: kind.value, q: q.value.trim() }));
    if (mine !== seq || !pane.isConnected) return;
    count.textContent = t('knowledge.entity_count', { n: items.length });
    const rows = items.map((e) => h('tr', { testid: 'kb-entity-row', dataset: { id: e.id, name: e.name, kind: e.kind } },
      h('td', {}, inLink(navigate, `/knowledge/entities/${e.id}`, e.name, { testid: 'kb-entity-link', class: 'strong' })),
      h('td', {}, kindChip(e.kind)),
      h('td', { class: 'small' }, e.aliases.join(', ') || '—'),
      h('td', {}, e.key ? h('code', { class: 'small' }, e.key) : '—'),
      h('td', { class: 'actions' }, manage ? [
        button(t('common.edit'), { class: 'small', testid: 'kb-entity-edit', onclick: () => entityDialog(e, reload) }),
        button(t('common.delete'), { class: 'small danger-text', testid: 'kb-entity-delete', onclick: () => deleteEntity(e, reload) }),
      ] : null)));
    clear(list).append(table([t('knowledge.entity_name'), t('knowledge.entity_kind'), t('knowledge.aliases'), t('knowledge.entity_key'),
      h('span', { class: 'sr-only' }, t('common.actions'))], rows, { testid: 'kb-entity-table' }));
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  kind.addEventListener('change', reload);
  q.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 250);
  });
  pane.append(h('div', { class: 'toolbar' },
    field(t('knowledge.entity_kind'), kind), field(t('common.search'), q),
    manage ? button(t('knowledge.new_entity'), { class: 'primary', testid: 'kb-entity-new', onclick: () => entityDialog(null, (e) => navigate(`/knowledge/entities/${e.id}`)) }) : null,
    h('div', { class: 'spacer' }), count), list);
  await load();
}

// ---------------------------------------------------------------- an entity

export async function mountEntity(root, { navigate, id }) {
  const manage = can('knowledge.manage');
  const write = can('knowledge.write');
  const page = h('section', { class: 'page kb-entity', testid: 'kb-entity-page' });
  root.append(page);

  async function load() {
    const entity = await api.get(`/api/v1/knowledge/entities/${id}`);
    if (page.isConnected) draw(entity);
  }

  function reload() {
    load().catch((err) => toast(errorText(err), 'error'));
  }

  function draw(e) {
    const here = (node) => node.kind === 'entity' && node.id === e.id;
    const relations = e.relations.map((r) => {
      const outgoing = here(r.from);
      const other = outgoing ? r.to : r.from;
      const removable = manage || (write && other.kind === 'article');
      return h('li', { class: 'kb-relation', testid: 'kb-relation', dataset: { id: r.id, kind: r.kind, other: `${other.kind}:${other.id}` } },
        h('span', { class: 'muted small', title: outgoing ? t('knowledge.relation_out_title') : t('knowledge.relation_in_title') },
          t(outgoing ? 'knowledge.relation_to' : 'knowledge.relation_from', { kind: relationLabel(r.kind) })), ' ',
        other.entity_kind ? kindChip(other.entity_kind) : h('span', { class: 'chip kb-kind kind-article' }, t('knowledge.article')), ' ',
        inLink(navigate, nodePath(other), other.label, { testid: 'kb-relation-link' }),
        removable ? button('×', {
          class: 'icon', testid: 'kb-relation-remove', 'aria-label': t('knowledge.remove_relation'),
          onclick: async () => {
            if (!await confirmDialog(t('knowledge.remove_relation_confirm', { name: other.label }), { confirmLabel: t('knowledge.remove_relation') })) return;
            try {
              await api.del(`/api/v1/knowledge/relations/${r.id}`);
              toast(t('knowledge.relation_removed'));
              reload();
            } catch (err) {
              toast(errorText(err), 'error');
            }
          },
        }) : null);
    });
    clear(page).append(
      inLink(navigate, '/knowledge?tab=entities', `← ${t('knowledge.back_entities')}`, { class: 'back', testid: 'kb-back' }),
      h('div', { class: 'page-head' },
        h('h1', { testid: 'kb-entity-title' }, e.name, ' ', kindChip(e.kind)),
        manage ? h('div', { class: 'head-buttons' },
          button(t('common.edit'), { testid: 'kb-entity-edit', onclick: () => entityDialog(e, reload) }),
          button(t('common.delete'), { class: 'danger-text', testid: 'kb-entity-delete', onclick: () => deleteEntity(e, () => navigate('/knowledge?tab=entities', { replace: true })) }))
          : null),
      h('div', { class: 'card' },
        h('dl', { class: 'details' },
          h('dt', {}, t('knowledge.aliases')), h('dd', { testid: 'kb-entity-aliases-view' }, e.aliases.length ? e.aliases.map((x) => h('span', { class: 'chip small' }, x)) : '—'),
          h('dt', {}, t('knowledge.entity_key')), h('dd', {}, e.key ? h('code', {}, e.key) : '—'),
          h('dt', {}, t('common.description')), h('dd', { testid: 'kb-entity-description-view' }, e.description || '—'))),
      h('div', { class: 'card', testid: 'kb-relations' },
        h('div', { class: 'page-head' }, h('h2', {}, t('knowledge.relations')),
          manage ? button(t('knowledge.add_relation'), { class: 'small', testid: 'kb-relation-add', onclick: () => addRelation(e) }) : null),
        relations.length ? h('ul', { class: 'kb-relation-list' }, relations) : h('p', { class: 'muted small' }, t('knowledge.no_relations'))),
      graphCard({ navigate, url: (depth) => `/api/v1/knowledge/entities/${e.id}/graph?depth=${depth}`, center: { kind: 'entity', id: e.id } }));
  }

  function addRelation(e) {
    const kind = select(ENTITY_RELATION_KINDS.map((k) => [k, relationLabel(k)]), { testid: 'kb-relation-kind', value: 'has_component' });
    const direction = select([['out', t('knowledge.direction_out', { name: e.name })], ['in', t('knowledge.direction_in', { name: e.name })]],
      { testid: 'kb-relation-direction' });
    const picker = entityPicker({ exclude: e.id });
    const errors = fieldErrors({ kind, to: picker.input, from: picker.input });
    formDialog({
      title: t('knowledge.add_relation'), testid: 'kb-relation-dialog', submitLabel: t('knowledge.add_relation'), wide: true,
      fields: [
        h('div', { class: 'row' }, field(t('knowledge.relation_kind'), kind), field(t('knowledge.direction'), direction)),
        field(t('knowledge.entity'), picker.node),
      ],
      onSubmit: async () => {
        errors.clear();
        const other = picker.chosen();
        if (!other) {
          errors.mark('to', t('knowledge.pick_entity'));
          throw { code: 'client', text: t('knowledge.pick_entity') };
        }
        const self = { kind: 'entity', id: e.id };
        const them = { kind: 'entity', id: other.id };
        const body = direction.value === 'out' ? { from: self, kind: kind.value, to: them } : { from: them, kind: kind.value, to: self };
        try {
          await api.post('/api/v1/knowledge/relations', body);
          return other;
        } catch (err) {
          errors.show(err);
          throw err;
        }
      },
      onDone: (other) => {
        toast(t('knowledge.relation_added', { name: other.name }));
        reload();
      },
    });
  }

  await load();
}

// ---------------------------------------------------------------- the graph

const SVG = 'http://www.w3.org/2000/svg';
const RING = 120;
/** The least distance between neighbours on a ring, room for their labels. */
const SPACING = 90;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === 'testid') node.dataset.testid = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function short(label, max = 18) {
  const chars = [...label];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : label;
}

const keyOf = (n) => `${n.kind}:${n.id}`;

/**
 * Places the nodes: the centre at (0, 0), each other node on the ring of its distance from it
 * (nodes the server sent without a path, e.g. behind a hidden article, on an outer ring). A ring
 * is ordered by the angle of the node each hangs from, then kind and name. Returns the places
 * and each ring's radius.
 */
export function layout(view) {
  const neighbours = new Map(view.nodes.map((n) => [keyOf(n), []]));
  for (const e of view.edges) {
    const a = keyOf(e.from);
    const b = keyOf(e.to);
    if (neighbours.has(a) && neighbours.has(b)) {
      neighbours.get(a).push(b);
      neighbours.get(b).push(a);
    }
  }
  const center = keyOf(view.center);
  const distance = new Map([[center, 0]]);
  const queue = [center];
  while (queue.length) {
    const k = queue.shift();
    for (const next of neighbours.get(k) || []) {
      if (!distance.has(next)) {
        distance.set(next, distance.get(k) + 1);
        queue.push(next);
      }
    }
  }
  const reached = Math.max(0, ...distance.values());
  const byKey = new Map(view.nodes.map((n) => [keyOf(n), n]));
  const rings = new Map();
  for (const n of view.nodes) {
    const k = keyOf(n);
    const d = distance.has(k) ? distance.get(k) : reached + 1;
    if (!rings.has(d)) rings.set(d, []);
    rings.get(d).push(k);
  }
  const place = new Map([[center, { x: 0, y: 0, angle: 0, ring: 0 }]]);
  const radii = [];
  const name = (k) => {
    const n = byKey.get(k);
    return `${n.kind === 'article' ? 1 : 0}:${n.entity_kind || ''}:${n.label}`;
  };
  const depths = [...rings.keys()].filter((d) => d > 0).sort((a, b) => a - b);
  // A crowded ring grows so that neighbours keep SPACING apart; rings stay RING apart at least.
  let radius = 0;
  for (const d of depths) {
    radius = Math.max(radius + RING, (rings.get(d).length * SPACING) / (2 * Math.PI));
    const ring = rings.get(d);
    const parentAngle = (k) => {
      const angles = (neighbours.get(k) || []).filter((p) => place.has(p) && place.get(p).ring === d - 1).map((p) => place.get(p).angle);
      return angles.length ? Math.min(...angles) : null;
    };
    const parents = new Map(ring.map((k) => [k, parentAngle(k)]));
    const order = (k) => (parents.get(k) === null ? 99 : parents.get(k));
    ring.sort((a, b) => order(a) - order(b) || name(a).localeCompare(name(b)) || a.localeCompare(b));
    const step = SPACING / radius;
    // Beyond the first ring each node goes near the node it hangs from, its siblings spread
    // around that angle and pushed apart by `step`; a ring too full for that is spread evenly.
    let angles = null;
    if (d > 1 && ring.every((k) => parents.get(k) !== null) && ring.length * step < 2 * Math.PI) {
      const groups = new Map();
      for (const k of ring) {
        if (!groups.has(parents.get(k))) groups.set(parents.get(k), []);
        groups.get(parents.get(k)).push(k);
      }
      angles = [];
      for (const [angle, members] of groups) members.forEach((_, i) => angles.push(angle + (i - (members.length - 1) / 2) * step));
      for (let i = 1; i < angles.length; i += 1) angles[i] = Math.max(angles[i], angles[i - 1] + step);
      if (angles[angles.length - 1] - angles[0] > 2 * Math.PI - step) angles = null;
    }
    ring.forEach((k, i) => {
      const angle = angles ? angles[i] : -Math.PI / 2 + (d > 1 ? Math.PI / ring.length : 0) + (2 * Math.PI * i) / ring.length;
      place.set(k, { x: Math.round(Math.cos(angle) * radius), y: Math.round(Math.sin(angle) * radius), angle, ring: d, radius });
    });
    radii.push(Math.round(radius));
  }
  return { place, radii };
}

function drawGraph(view, { navigate }) {
  const { place, radii } = layout(view);
  const half = (radii.length ? radii[radii.length - 1] : RING) + 70;
  const centerKey = keyOf(view.center);
  const markerId = `kb-arrow-${Math.random().toString(36).slice(2, 8)}`;
  const root = svg('svg', {
    class: 'kb-graph-svg', viewBox: `${-half} ${-half} ${2 * half} ${2 * half}`, width: '100%', height: 2 * half,
    role: 'img', 'aria-label': t('knowledge.graph_label', { n: view.nodes.length }), testid: 'kb-graph-svg',
  });
  const title = svg('title');
  title.textContent = t('knowledge.graph_label', { n: view.nodes.length });
  root.append(title, svg('defs', {},
    svg('marker', { id: markerId, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'kb-arrow' }))));
  for (const r of radii) root.append(svg('circle', { cx: 0, cy: 0, r, class: 'kb-ring' }));
  const radius = (k) => (k === centerKey ? 26 : 18);
  const edges = svg('g', { class: 'kb-edges' });
  for (const e of view.edges) {
    const a = place.get(keyOf(e.from));
    const b = place.get(keyOf(e.to));
    if (!a || !b) continue;
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    const ra = radius(keyOf(e.from)) + 2;
    const rb = radius(keyOf(e.to)) + 4;
    const line = svg('line', {
      x1: Math.round(a.x + (dx / len) * ra), y1: Math.round(a.y + (dy / len) * ra),
      x2: Math.round(b.x - (dx / len) * rb), y2: Math.round(b.y - (dy / len) * rb),
      class: ['kb-edge', `rel-${e.kind}`].join(' '), 'marker-end': `url(#${markerId})`,
    });
    // The label sits beside the line's middle (right of a steep line, above a flat one), clear
    // of the nodes' own labels, which hang below the nodes.
    let nx = -dy / len;
    let ny = dx / len;
    if (Math.abs(nx) > 0.5 ? nx < 0 : ny > 0) {
      nx = -nx;
      ny = -ny;
    }
    const steep = Math.abs(nx) > 0.5;
    const label = svg('text', {
      x: Math.round((a.x + b.x) / 2 + nx * 6), y: Math.round((a.y + b.y) / 2 + ny * 6 + (steep ? 4 : 0)),
      class: 'kb-edge-label', 'text-anchor': steep ? 'start' : 'middle',
      testid: 'kb-graph-edge-label', dataset: { kind: e.kind },
    });
    label.textContent = relationLabel(e.kind);
    edges.append(svg('g', { testid: 'kb-graph-edge', dataset: { id: e.id, kind: e.kind, from: keyOf(e.from), to: keyOf(e.to) } }, line, label));
  }
  const nodes = svg('g', { class: 'kb-nodes' });
  for (const n of view.nodes) {
    const k = keyOf(n);
    const p = place.get(k);
    const r = radius(k);
    const isCenter = k === centerKey;
    const shape = n.kind === 'article'
      ? svg('rect', { x: p.x - r, y: p.y - r, width: 2 * r, height: 2 * r, rx: 5 })
      : svg('circle', { cx: p.x, cy: p.y, r });
    const label = svg('text', { x: p.x, y: p.y + r + 14, 'text-anchor': 'middle', class: 'kb-node-label' });
    label.textContent = short(n.label);
    const tip = svg('title');
    tip.textContent = `${n.label} · ${n.kind === 'article' ? t('knowledge.article') : kindLabel(n.entity_kind)}`;
    const group = svg('g', {
      class: ['kb-node', n.kind === 'article' ? 'kind-article' : `kind-${n.entity_kind}`, isCenter && 'center'].filter(Boolean).join(' '),
      testid: 'kb-graph-node', dataset: { kind: n.kind, id: n.id, entityKind: n.entity_kind || '', label: n.label, ring: p.ring },
      tabindex: isCenter ? null : 0, role: isCenter ? null : 'link', 'aria-label': n.label,
    }, shape, label, tip);
    if (!isCenter) {
      const open = () => navigate(nodePath(n));
      group.addEventListener('click', open);
      group.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          open();
        }
      });
    }
    nodes.append(group);
  }
  root.append(edges, nodes);
  return root;
}

/** A card that loads and draws a neighbourhood, with a depth choice and a legend of kinds. */
export function graphCard({ navigate, url, center }) {
  const depth = select([1, 2, 3].map((d) => [d, t('knowledge.depth_n', { n: d })]), { testid: 'kb-graph-depth', value: 2, 'aria-label': t('knowledge.depth') });
  const box = h('div', { class: 'kb-graph', testid: 'kb-graph', dataset: { center: keyOf(center) } }, h('p', { class: 'muted small' }, t('knowledge.loading')));
  const legend = h('div', { class: 'kb-legend', testid: 'kb-graph-legend' });
  let seq = 0;

  async function load() {
    const mine = ++seq;
    const view = await api.get(url(depth.value));
    if (mine !== seq) return;
    const kinds = [...new Set(view.nodes.map((n) => (n.kind === 'article' ? 'article' : n.entity_kind)))];
    legend.replaceChildren(...kinds.map((k) => h('span', { class: 'kb-legend-item' },
      h('span', { class: ['kb-swatch', `kind-${k}`] }), k === 'article' ? t('knowledge.article') : kindLabel(k))));
    box.replaceChildren(...[
      view.nodes.length > 1 ? drawGraph(view, { navigate }) : h('p', { class: 'muted small', testid: 'kb-graph-empty' }, t('knowledge.graph_empty')),
      view.truncated ? h('p', { class: 'muted small' }, t('knowledge.graph_truncated')) : null,
    ].filter(Boolean));
    box.dataset.nodes = String(view.nodes.length);
  }

  depth.addEventListener('change', () => load().catch((err) => toast(errorText(err), 'error')));
  load().catch((err) => box.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, errorText(err))));
  return h('div', { class: 'card kb-graph-card' },
    h('div', { class: 'page-head' }, h('h2', {}, t('knowledge.graph')), h('div', { class: 'head-buttons' }, legend, depth)),
    box);
}
