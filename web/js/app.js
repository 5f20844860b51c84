// The console's shell: session, sign-in, forced password change, header, navigation and routing.

import { h, clear, button, field, menu, toast, formDialog, confirmDialog, errorText, select } from './dom.js';
import { api, setCsrf, onAuthEvents } from './api.js';
import { t, getLang, setLang, initialLang, rememberLang, LANGUAGES } from './i18n.js';
import { state, can, me } from './state.js';
import * as employees from './views/employees.js';
import * as departments from './views/departments.js';
import * as positions from './views/positions.js';
import * as roles from './views/roles.js';
import * as tokens from './views/tokens.js';
import * as audit from './views/audit.js';
import * as system from './views/system.js';
import * as inbox from './views/inbox.js';
import * as channels from './views/channels.js';
import * as routing from './views/routing.js';
import * as knowledge from './views/knowledge.js';
import * as assist from './views/assist.js';
import * as live from './live.js';
import { forgetCaches } from './views/inbox-common.js';
import { bell, forgetNotifications } from './notifications.js';
import { presenceSwitch, forgetRouting } from './presence.js';
import { assistAlerts, forgetAssistAlerts } from './assist-alerts.js';

/** The sections, in navigation order, with the permissions that show them. */
const SECTIONS = [
  { path: '/inbox', label: 'nav.inbox', any: ['conversations.read_assigned'], view: inbox },
  { path: '/routing', label: 'nav.routing', any: ['routing.monitor'], view: routing },
  { path: '/knowledge', label: 'nav.knowledge', any: ['knowledge.read'], view: knowledge },
  { path: '/assist', label: 'nav.assist', any: ['assist.manage'], view: assist },
  { path: '/employees', label: 'nav.employees', any: ['employees.read'], view: employees },
  { path: '/departments', label: 'nav.departments', any: ['org.read'], view: departments },
  { path: '/positions', label: 'nav.positions', any: ['org.read'], view: positions },
  { path: '/roles', label: 'nav.roles', any: ['roles.read'], view: roles },
  { path: '/tokens', label: 'nav.tokens', any: ['tokens.manage'], view: tokens },
  { path: '/channels', label: 'nav.channels', any: ['channels.manage'], view: channels },
  { path: '/audit', label: 'nav.audit', any: ['audit.read', 'audit.export'], view: audit },
  { path: '/system', label: 'nav.system', any: ['system.manage'], view: system },
];

const root = document.getElementById('app');
/** A message for the sign-in screen: { text, error } or null. */
let notice = null;
/** Kept when the sign-in screen is redrawn in another language. */
let typedUsername = '';

function applySession(info) {
  state.session = info;
  setCsrf(info.csrf_token);
  setLang(info.employee.language);
  rememberLang(info.employee.language);
}

function signedOut(message) {
  live.stop();
  forgetCaches();
  forgetNotifications();
  forgetRouting();
  forgetAssistAlerts();
  state.session = null;
  setCsrf('');
  notice = message ? { text: message, error: false } : null;
  for (const dialog of document.querySelectorAll('dialog')) dialog.remove();
  for (const list of document.querySelectorAll('.menu-list')) list.remove();
  render();
}

onAuthEvents({
  authLost() {
    if (state.session) signedOut(t('login.session_ended'));
  },
  passwordChangeRequired() {
    if (state.session) {
      state.session.must_change_password = true;
      render();
    }
  },
});

async function refreshSession() {
  applySession(await api.get('/api/v1/auth/session', { quiet: true }));
}

function render() {
  document.documentElement.lang = getLang();
  document.title = t('app.title');
  if (!state.session) renderLogin();
  else if (state.session.must_change_password) renderForcedPassword();
  else renderShell();
}

// ---------------------------------------------------------------- language

function languageSelect(onChange) {
  const control = select(LANGUAGES.map((l) => [l.code, l.label]), {
    value: getLang(), testid: 'lang-select', 'aria-label': t('header.language'), class: 'lang',
  });
  control.addEventListener('change', () => onChange(control.value, control));
  return control;
}

async function changeLanguage(language, control) {
  if (!state.session) {
    const typed = document.querySelector('[data-testid="login-username"]');
    if (typed) typedUsername = typed.value;
    setLang(language);
    rememberLang(language);
    render();
    return;
  }
  control.disabled = true;
  try {
    const employee = await api.patch('/api/v1/me', { language });
    state.session.employee = employee;
    setLang(employee.language);
    rememberLang(employee.language);
    render();
  } catch (err) {
    control.value = getLang();
    control.disabled = false;
    toast(errorText(err), 'error');
  }
}

// ---------------------------------------------------------------- sign-in

function brand() {
  return h('div', { class: 'brand' }, h('img', { src: '/favicon.svg', alt: '', width: 28, height: 28 }),
    h('span', { class: 'brand-name' }, 'AllHands'));
}

function renderLogin() {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, testid: 'login-username', autocapitalize: 'none', spellcheck: 'false', value: typedUsername });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, testid: 'login-password' });
  const info = notice ? h('p', notice.error
    ? { class: 'form-error', role: 'alert', testid: 'login-notice' }
    : { class: 'banner info', role: 'status', testid: 'login-notice' }, notice.text) : null;
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'login-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary wide', testid: 'login-submit' }, t('login.submit'));
  const form = h('form', { class: 'form', testid: 'login-form', novalidate: true },
    info, field(t('login.username'), username), field(t('login.password'), password), error, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!username.value.trim() || !password.value) {
      error.textContent = t('login.missing');
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    error.hidden = true;
    if (info) info.hidden = true;
    try {
      const session = await api.post('/api/v1/auth/login', { username: username.value.trim(), password: password.value }, { quiet: true });
      notice = null;
      typedUsername = '';
      applySession(session);
      render();
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
      submit.disabled = false;
      password.select();
    }
  });
  clear(root).append(h('main', { class: 'auth-page' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'auth-head' }, brand(), languageSelect(changeLanguage)),
      h('h1', {}, t('login.title')),
      h('p', { class: 'muted' }, t('login.intro')),
      form)));
  username.focus();
}

// ---------------------------------------------------------------- passwords

function passwordFields() {
  const current = h('input', { type: 'password', autocomplete: 'current-password', testid: 'password-current', required: true });
  const next = h('input', { type: 'password', autocomplete: 'new-password', testid: 'password-new', required: true });
  const confirm = h('input', { type: 'password', autocomplete: 'new-password', testid: 'password-confirm', required: true });
  return {
    nodes: [field(t('password.current'), current), field(t('password.new'), next, t('password.hint')), field(t('password.confirm'), confirm)],
    async submit() {
      if (!current.value || !next.value) throw { code: 'client', message: '', text: t('password.missing') };
      if (next.value !== confirm.value) throw { code: 'client', message: '', text: t('password.mismatch') };
      await api.post('/api/v1/auth/password', { current_password: current.value, new_password: next.value });
    },
  };
}

function renderForcedPassword() {
  const fields = passwordFields();
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'password-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary wide', testid: 'password-submit' }, t('password.submit'));
  const form = h('form', { class: 'form', testid: 'password-form', novalidate: true }, fields.nodes, error, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await fields.submit();
      await refreshSession();
      toast(t('password.changed'));
      render();
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
      submit.disabled = false;
    }
  });
  const logout = button(t('account.logout'), { class: 'link', testid: 'password-logout', onclick: logOut });
  clear(root).append(h('main', { class: 'auth-page' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'auth-head' }, brand(), languageSelect(changeLanguage)),
      h('h1', {}, t('password.forced_title')),
      h('p', { class: 'muted' }, t('password.forced_intro', { name: me().display_name })),
      form,
      h('p', { class: 'center' }, logout))));
  form.querySelector('input').focus();
}

function changePasswordDialog() {
  const fields = passwordFields();
  formDialog({
    title: t('account.change_password'), testid: 'change-password-dialog', fields: fields.nodes,
    submitLabel: t('password.submit'),
    onSubmit: () => fields.submit(),
    onDone: () => toast(t('password.changed')),
  });
}

async function logOut() {
  try {
    await api.post('/api/v1/auth/logout', undefined, { quiet: true });
  } catch { /* the session may already be gone */ }
  signedOut(t('login.logged_out'));
}

async function logOutEverywhere() {
  const ok = await confirmDialog(t('account.logout_everywhere_confirm'), { confirmLabel: t('account.logout_everywhere') });
  if (!ok) return;
  try {
    const result = await api.post('/api/v1/auth/logout-everywhere', undefined, { quiet: true });
    signedOut(t('account.logged_out_everywhere', { n: result.sessions_ended }));
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

// ---------------------------------------------------------------- the shell

function allowedSections() {
  return SECTIONS.filter((s) => can(...s.any));
}

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  renderView();
}

function renderShell() {
  if (can('conversations.read_assigned')) live.start();
  assistAlerts({ navigate });
  const employee = me();
  const account = menu(h('span', { testid: 'current-user' }, employee.display_name), [
    [t('account.change_password'), changePasswordDialog, 'menu-change-password'],
    [t('account.logout'), logOut, 'menu-logout'],
    [t('account.logout_everywhere'), logOutEverywhere, 'menu-logout-everywhere', true],
  ], { testid: 'account-menu', class: 'account', ariaLabel: t('header.account', { name: employee.display_name }) });
  const nav = h('nav', { class: 'sidebar', 'aria-label': t('nav.label') },
    h('ul', {}, allowedSections().map((s) => h('li', {},
      h('a', {
        href: s.path, testid: `nav-${s.path.slice(1)}`, dataset: { path: s.path },
        onclick: (event) => {
          if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
          event.preventDefault();
          navigate(s.path);
        },
      }, t(s.label))))));
  const main = h('main', { id: 'view', class: 'content', tabindex: '-1' });
  clear(root).append(
    h('header', { class: 'topbar' },
      brand(),
      h('span', { class: 'topbar-sub' }, t('app.console')),
      h('div', { class: 'spacer' }),
      h('span', { class: 'user-meta muted' }, employee.username),
      can('conversations.reply') ? presenceSwitch({ navigate }) : null,
      can('conversations.read_assigned') ? bell({ navigate }) : null,
      languageSelect(changeLanguage),
      account),
    h('div', { class: 'frame' }, nav, main));
  renderView();
}

let mountSeq = 0;

function renderView() {
  const main = document.getElementById('view');
  if (!main) return;
  const sections = allowedSections();
  const path = location.pathname.replace(/\/+$/, '') || '/';
  let section = sections.find((s) => path === s.path || path.startsWith(`${s.path}/`));
  if (!section && sections.length) {
    section = sections[0];
    history.replaceState(null, '', section.path);
  }
  for (const link of document.querySelectorAll('.sidebar a')) {
    const current = section && link.dataset.path === section.path;
    link.classList.toggle('active', current);
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // Each view renders into its own container, so a slow answer for a view the user has left
  // lands in a detached node.
  const container = h('div', { class: 'view' });
  clear(main).append(container);
  mountSeq += 1;
  if (!section) {
    container.append(h('section', { class: 'page' }, h('h1', {}, t('app.welcome', { name: me().display_name })), h('p', { class: 'muted', testid: 'no-sections' }, t('app.nothing_here'))));
    return;
  }
  document.title = `${t(section.label)} · ${t('app.title')}`;
  const seq = mountSeq;
  Promise.resolve(section.view.mount(container, { navigate })).catch((err) => {
    if (seq !== mountSeq) return;
    container.append(h('p', { class: 'form-error', role: 'alert', testid: 'view-error' }, errorText(err)));
  });
}

window.addEventListener('popstate', () => {
  if (state.session && !state.session.must_change_password) renderView();
});

async function boot() {
  setLang(initialLang());
  try {
    await refreshSession();
  } catch (err) {
    state.session = null;
    if (err.code !== 'unauthenticated' && err.code !== 'session_expired') notice = { text: errorText(err), error: true };
  }
  render();
}

boot();
