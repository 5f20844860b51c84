// Routing in the top bar, for employees who answer customers: the presence switch (online, busy,
// away, focus, offline; PUT /api/v1/routing/me/presence, where online needs the reply permission)
// and the conversations routing offers them, as cards with the customer, the question, why they
// were chosen and a countdown, to accept (the conversation opens) or decline.
// GET /api/v1/routing/me fills both, and again after every reconnect; the live socket's
// {"type":"routing.offer","offer":{...}} adds a card at once, {"type":"routing.offer_ended",
// "offer_id","conversation_id","reason"} removes it, and {"type":"routing.presence","presence"}
// (routing set the employee away after missed offers) moves the switch and says why.
// An escalated or transferred conversation's card says so, with who handed it on and their
// hand-off note. {"type":"routing.transfer_ended","conversation_id","outcome"} tells the sender
// that their transfer was declined or ran out (they keep the conversation), and
// {"type":"routing.sla","conversation_id","clock","level","due_at"} warns supervisors
// (routing.monitor) of a clock at risk or breached; both as toasts.

import { h, button, select, toast, errorText, busy, nextId } from './dom.js';
import { api } from './api.js';
import { t } from './i18n.js';
import { subscribe, watch } from './live.js';
import { can } from './state.js';
import { channelLabel, loadDirectory, employeeName } from './views/inbox-common.js';
import {
  PRESENCES, presenceLabel, typeLabel, urgencyBadge, termLabel, points, number, topTerms, countdown, clockLabel, dueText,
  handOffNoteText, forgetLanes,
} from './views/routing-common.js';

/** How long a card stays after its time ran out when the end was not heard of. */
const GRACE_MS = 5000;

const model = { presence: null, offers: new Map() };
/** Offers that ended, so that a fetch answered meanwhile does not bring them back. */
const ended = new Set();
/** Redraw functions of the switches in the page (one, but a redrawn header makes a new one). */
const switches = new Set();
/** Set while a switch is mounted: opens a conversation. */
let navigateTo = null;
/** The cards' container, in the page while there are offers. */
let stack = null;
let ticker = null;
let loadSeq = 0;

// Supervisors hear of clocks at risk whatever they are doing.
subscribe((data) => {
  if (data.type !== 'routing.sla' || !can('routing.monitor')) return;
  const breached = data.level === 'breached';
  toast(h('span', { testid: 'sla-toast', dataset: { conversation: data.conversation_id, clock: data.clock, level: data.level } },
    t(breached ? 'sla.toast_breached' : 'sla.toast_warning', {
      id: data.conversation_id, clock: clockLabel(data.clock), due: dueText(data.due_at),
    })), breached ? 'error' : 'warn');
});

subscribe((data) => {
  if (!navigateTo) return;
  if (data.type === 'routing.transfer_ended') {
    toast(h('span', { testid: 'transfer-ended-toast', dataset: { conversation: data.conversation_id, outcome: data.outcome } },
      t(data.outcome === 'expired' ? 'transfer.ended_expired' : 'transfer.ended_declined', { id: data.conversation_id })), 'warn');
    return;
  }
  if (data.type === 'routing.offer' && data.offer) {
    const offer = data.offer;
    if (ended.has(offer.offer_id)) return;
    model.offers.set(offer.offer_id, { ...offer, seen_at: Date.now() });
    drawOffers();
  } else if (data.type === 'routing.offer_ended') {
    const had = model.offers.has(data.offer_id);
    forget(data.offer_id);
    if (had && data.reason === 'expired') toast(t('offer.ended_expired', { id: data.conversation_id }));
    if (had && data.reason === 'withdrawn') toast(t('offer.ended_withdrawn', { id: data.conversation_id }));
  } else if (data.type === 'routing.presence' && data.presence) {
    model.presence = data.presence;
    redrawSwitches();
    toast(data.presence === 'away'
      ? t('presence.set_away')
      : t('presence.set_by_routing', { presence: presenceLabel(data.presence) }), 'warn');
  }
});

async function load() {
  const seq = ++loadSeq;
  const started = Date.now();
  const mine = await api.get('/api/v1/routing/me');
  if (seq !== loadSeq || !navigateTo) return;
  model.presence = mine.settings.presence;
  const offers = new Map();
  for (const offer of mine.offers) {
    if (ended.has(offer.offer_id)) continue;
    const known = model.offers.get(offer.offer_id);
    offers.set(offer.offer_id, { ...offer, seen_at: known ? known.seen_at : started });
  }
  // What arrived live while the answer was on its way stays.
  for (const offer of model.offers.values()) {
    if (!offers.has(offer.offer_id) && offer.seen_at >= started) offers.set(offer.offer_id, offer);
  }
  model.offers = offers;
  redrawSwitches();
  drawOffers();
}

function redrawSwitches() {
  for (const redraw of [...switches]) redraw();
}

/** Forgets an offer that ended (answered, declined, expired, withdrawn). */
function forget(offerId) {
  ended.add(offerId);
  if (ended.size > 500) ended.delete(ended.values().next().value);
  model.offers.delete(offerId);
  drawOffers();
}

/** Forgets everything when the session ends. */
export function forgetRouting() {
  navigateTo = null;
  loadSeq += 1;
  model.presence = null;
  model.offers.clear();
  ended.clear();
  forgetLanes();
  switches.clear();
  if (stack) stack.remove();
  stack = null;
  clearInterval(ticker);
  ticker = null;
}

/** The presence switch for the top bar; `navigate(path)` opens an accepted conversation. */
export function presenceSwitch({ navigate }) {
  navigateTo = navigate;
  const control = select(PRESENCES.map((p) => [p, presenceLabel(p)]), {
    testid: 'presence-switch', class: 'presence-select', 'aria-label': t('presence.label'), disabled: true,
  });
  const wrap = h('label', { class: 'presence-switch', title: t('presence.label') },
    h('span', { class: 'presence-dot', 'aria-hidden': 'true' }), control);
  let saving = false;

  function redraw() {
    const presence = model.presence;
    if (presence && !saving) control.value = presence;
    control.disabled = !presence || saving;
    wrap.dataset.presence = presence || '';
  }

  control.addEventListener('change', async () => {
    const wanted = control.value;
    saving = true;
    redraw();
    try {
      const settings = await api.put('/api/v1/routing/me/presence', { presence: wanted });
      model.presence = settings.presence;
    } catch (err) {
      toast(err && err.status === 403 && wanted === 'online' ? t('presence.online_forbidden') : errorText(err), 'error');
    } finally {
      saving = false;
      redrawSwitches();
    }
  });

  // A redrawn header (e.g. in another language) replaces the switch and redraws the cards.
  switches.clear();
  switches.add(redraw);
  if (stack) stack.remove();
  stack = null;
  redraw();
  drawOffers();
  watch(wrap, { refresh: load });
  load().catch(() => {});
  return wrap;
}

// ---------------------------------------------------------------- offer cards

function drawOffers() {
  const now = Date.now();
  for (const [id, offer] of model.offers) {
    if (offer.expires_at + GRACE_MS < now) {
      ended.add(id);
      model.offers.delete(id);
    }
  }
  if (!model.offers.size || !navigateTo) {
    if (stack) stack.remove();
    stack = null;
    clearInterval(ticker);
    ticker = null;
    return;
  }
  if (!stack || !stack.isConnected) {
    stack = h('section', { class: 'offer-stack', testid: 'offer-stack', 'aria-label': t('offer.region'), 'aria-live': 'polite' });
    document.body.append(stack);
  }
  // Cards already shown stay as they are, so that a button about to be clicked is not replaced.
  const shown = new Map([...stack.children].map((card) => [Number(card.dataset.offer), card]));
  for (const [id, card] of shown) if (!model.offers.has(id)) card.remove();
  const offers = [...model.offers.values()].sort((a, b) => a.expires_at - b.expires_at);
  for (const offer of offers) if (!shown.has(offer.offer_id)) stack.append(offerCard(offer));
  tick();
  if (!ticker) ticker = setInterval(tick, 500);
}

/** Moves the countdowns on; cards whose time ran out long ago go. */
function tick() {
  if (!stack) return;
  const now = Date.now();
  let stale = false;
  for (const card of stack.children) {
    const expires = Number(card.dataset.expires);
    const left = expires - now;
    const time = card.querySelector('.offer-countdown');
    const bar = card.querySelector('progress');
    card.classList.toggle('expiring', left <= 0);
    time.textContent = left > 0 ? t('offer.expires_in', { time: countdown(expires) }) : t('offer.expiring');
    if (bar) bar.value = Math.max(0, left);
    if (left + GRACE_MS < 0) stale = true;
  }
  if (stale) drawOffers();
}

function offerCard(offer) {
  const titleId = nextId('offer');
  const chosen = offer.decision && offer.decision.chosen;
  const why = chosen ? topTerms(chosen) : [];
  const accept = button(t('offer.accept'), { class: 'primary', testid: 'offer-accept', onclick: () => acceptOffer(offer, accept, decline) });
  const decline = button(t('offer.decline'), { testid: 'offer-decline', onclick: () => declineOffer(offer, decline, accept) });
  const total = Math.max(1000, offer.expires_at - offer.seen_at);
  const handedOn = offer.escalated || offer.handed_on_by !== null && offer.handed_on_by !== undefined || Boolean(offer.hand_off_note);
  const kind = offer.escalated ? 'escalation' : 'transfer';
  let from = null;
  if (offer.handed_on_by !== null && offer.handed_on_by !== undefined) {
    from = h('span', { class: 'muted small', testid: 'offer-handed-on-by' }, t('offer.handed_on_by', { name: employeeName(null, offer.handed_on_by) }));
    loadDirectory().then((dir) => {
      from.textContent = t('offer.handed_on_by', { name: employeeName(dir, offer.handed_on_by) });
    }, () => {});
  }
  return h('article', {
    class: ['offer-card', `urgency-${offer.urgency}`, handedOn && 'handed-on'], role: 'group', 'aria-labelledby': titleId, testid: 'offer-card',
    dataset: { offer: offer.offer_id, conversation: offer.conversation_id, expires: offer.expires_at, handOff: handedOn ? kind : '' },
  },
  h('header', { class: 'offer-head' },
    h('h2', { id: titleId }, t(handedOn ? `offer.title_${kind}` : 'offer.title')),
    h('span', { class: 'offer-countdown', testid: 'offer-countdown', role: 'timer' })),
  h('progress', { class: 'offer-progress', max: String(total), value: Math.max(0, offer.expires_at - Date.now()), 'aria-hidden': 'true' }),
  h('div', { class: 'offer-customer' },
    h('strong', { testid: 'offer-customer' }, offer.customer_name || t('offer.unknown_customer')),
    h('span', { class: 'muted', testid: 'offer-channel' }, channelLabel(offer.channel_kind))),
  offer.subject ? h('div', { class: 'offer-subject', testid: 'offer-subject' }, offer.subject) : null,
  h('div', { class: 'offer-tags' },
    handedOn ? h('span', { class: ['badge', offer.escalated ? 'warn' : 'info'], testid: 'offer-handoff', dataset: { kind } }, t(`offer.badge_${kind}`)) : null,
    h('span', { class: 'badge info', testid: 'offer-type', dataset: { type: offer.type || '' } }, typeLabel(offer.type)),
    urgencyBadge(offer.urgency, 'offer-urgency'), from ? [' ', from] : null),
  offer.hand_off_note ? h('div', { class: 'offer-note', testid: 'offer-note' },
    h('span', { class: 'label' }, t('offer.hand_off_note')), ' ', h('span', { testid: 'offer-note-text' }, handOffNoteText(offer.hand_off_note))) : null,
  h('blockquote', { class: 'offer-question', testid: 'offer-question' }, offer.question || t('offer.no_question')),
  chosen ? h('div', { class: 'offer-why small', testid: 'offer-why' },
    h('span', { class: 'label' }, t('offer.why')), ' ',
    why.map((term, i) => [i ? ' · ' : '', h('span', { dataset: { term: term.name } }, `${termLabel(term.name)} ${points(term.points)}`)]),
    ' ', h('span', { class: 'muted' }, t('offer.score', { score: number(chosen.score) }))) : null,
  h('footer', { class: 'offer-actions' }, decline, accept));
}

async function acceptOffer(offer, btn, other) {
  other.disabled = true;
  try {
    const conversation = await busy(btn, () => api.post(`/api/v1/routing/offers/${offer.offer_id}/accept`));
    forget(offer.offer_id);
    if (navigateTo) navigateTo(`/inbox/${conversation.id}`);
  } catch (err) {
    other.disabled = false;
    if (err && (err.status === 409 || err.status === 404)) {
      forget(offer.offer_id);
      toast(t('offer.gone'), 'error');
    } else {
      toast(errorText(err), 'error');
    }
  }
}

async function declineOffer(offer, btn, other) {
  other.disabled = true;
  try {
    await busy(btn, () => api.post(`/api/v1/routing/offers/${offer.offer_id}/decline`));
    forget(offer.offer_id);
    toast(t('offer.declined'));
  } catch (err) {
    other.disabled = false;
    if (err && (err.status === 409 || err.status === 404)) forget(offer.offer_id);
    else toast(errorText(err), 'error');
  }
}
