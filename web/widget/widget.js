/*! AllHands web chat widget. Embed with
 *   <script src="https://support.example.com/widget.js" data-channel="7" async></script>
 * The wire protocol is docs/widget.md. No framework, no imports, no build step: this file is
 * served as it is. Everything from the server or the visitor is put in as text, never as HTML.
 * The file is ASCII only (the Chinese texts are \u escapes), so it reads right on pages in any
 * encoding, whatever charset reaches the browser.
 */
(function () {
  'use strict';

  var W = window;
  var D = document;
  var existing = W.AllHandsWidget;
  if (existing && existing.__loaded) return;

  // ------------------------------------------------------------------ where we come from

  function findScript() {
    var current = D.currentScript;
    if (current && current.getAttribute('data-channel')) return current;
    var scripts = D.querySelectorAll('script[data-channel]');
    for (var i = 0; i < scripts.length; i++) {
      var src = (scripts[i].getAttribute('src') || '').split(/[?#]/)[0];
      if (/\/widget\.js$/.test(src)) return scripts[i];
    }
    return null;
  }

  var script = findScript();
  if (!script) return;
  var CHANNEL = String(script.getAttribute('data-channel') || '').trim();
  if (!/^\d+$/.test(CHANNEL)) {
    warn('data-channel must be the number of a web channel');
    return;
  }
  var ORIGIN;
  try {
    ORIGIN = new URL(script.src, location.href).origin;
  } catch (e) {
    return;
  }
  var BASE = ORIGIN + '/api/v1/widget/' + CHANNEL;
  var STORE_KEY = 'allhands:' + CHANNEL;
  var OPEN_KEY = STORE_KEY + ':open';

  function warn(text) {
    if (W.console && console.warn) console.warn('AllHands widget: ' + text);
  }

  // ------------------------------------------------------------------ texts

  var TEXTS = {
    en: {
      open: 'Open chat',
      close: 'Close chat',
      greeting: 'Hi! How can we help you today?',
      online: 'We are online',
      away: 'We are away',
      offline: 'We are away. Leave a message and we will reply by e-mail.',
      placeholder: 'Write a message\u2026',
      send: 'Send',
      attach: 'Attach a file',
      uploading: 'Uploading {name}\u2026',
      too_large: 'The file is too large.',
      bad_type: 'This type of file cannot be sent.',
      upload_failed: 'The file could not be sent.',
      read: 'Read',
      sending: 'Sending\u2026',
      not_sent: 'Not sent: {reason}',
      typing: '{name} is typing\u2026',
      someone: 'Someone',
      name: 'Name',
      email: 'E-mail',
      message: 'Message',
      optional: '(optional)',
      prechat_intro: 'Before we start, please tell us who you are.',
      start: 'Start chatting',
      offline_send: 'Send message',
      offline_thanks: 'Thank you! We will get back to you as soon as we can.',
      required: 'Please fill in {field}.',
      bad_email: 'Please enter a valid e-mail address.',
      reconnecting: 'Reconnecting\u2026',
      queue: 'You are number {n} in line',
      messages: 'Messages',
      unread: '{n} new messages',
      search: 'Search help articles',
      search_go: 'Search',
      searching: 'Searching\u2026',
      no_articles: 'No article found. Ask us in the chat below.',
      search_failed: 'The search did not work. Please try again.',
      back: 'Back'
    },
    'zh-CN': {
      open: '\u6253\u5f00\u5728\u7ebf\u5ba2\u670d',
      close: '\u5173\u95ed\u5728\u7ebf\u5ba2\u670d',
      greeting: '\u60a8\u597d\uff01\u8bf7\u95ee\u6709\u4ec0\u4e48\u53ef\u4ee5\u5e2e\u60a8\uff1f',
      online: '\u5ba2\u670d\u5728\u7ebf',
      away: '\u5ba2\u670d\u6682\u65f6\u4e0d\u5728',
      offline: '\u5ba2\u670d\u6682\u65f6\u4e0d\u5728\u3002\u8bf7\u7559\u8a00\uff0c\u6211\u4eec\u4f1a\u901a\u8fc7\u7535\u5b50\u90ae\u4ef6\u56de\u590d\u60a8\u3002',
      placeholder: '\u8f93\u5165\u6d88\u606f\u2026',
      send: '\u53d1\u9001',
      attach: '\u53d1\u9001\u6587\u4ef6',
      uploading: '\u6b63\u5728\u4e0a\u4f20 {name}\u2026',
      too_large: '\u6587\u4ef6\u592a\u5927\u3002',
      bad_type: '\u4e0d\u652f\u6301\u53d1\u9001\u6b64\u7c7b\u6587\u4ef6\u3002',
      upload_failed: '\u6587\u4ef6\u53d1\u9001\u5931\u8d25\u3002',
      read: '\u5df2\u8bfb',
      sending: '\u53d1\u9001\u4e2d\u2026',
      not_sent: '\u672a\u53d1\u9001\uff1a{reason}',
      typing: '{name} \u6b63\u5728\u8f93\u5165\u2026',
      someone: '\u5ba2\u670d',
      name: '\u59d3\u540d',
      email: '\u7535\u5b50\u90ae\u7bb1',
      message: '\u7559\u8a00\u5185\u5bb9',
      optional: '\uff08\u9009\u586b\uff09',
      prechat_intro: '\u5f00\u59cb\u4e4b\u524d\uff0c\u8bf7\u7559\u4e0b\u60a8\u7684\u8054\u7cfb\u65b9\u5f0f\u3002',
      start: '\u5f00\u59cb\u54a8\u8be2',
      offline_send: '\u63d0\u4ea4\u7559\u8a00',
      offline_thanks: '\u8c22\u8c22\uff01\u6211\u4eec\u4f1a\u5c3d\u5feb\u56de\u590d\u60a8\u3002',
      required: '\u8bf7\u586b\u5199{field}\u3002',
      bad_email: '\u8bf7\u8f93\u5165\u6709\u6548\u7684\u7535\u5b50\u90ae\u7bb1\u5730\u5740\u3002',
      reconnecting: '\u6b63\u5728\u91cd\u65b0\u8fde\u63a5\u2026',
      queue: '\u6392\u961f\u4e2d\uff0c\u60a8\u662f\u7b2c {n} \u4f4d',
      messages: '\u6d88\u606f',
      unread: '{n} \u6761\u65b0\u6d88\u606f',
      search: '\u641c\u7d22\u5e2e\u52a9\u6587\u7ae0',
      search_go: '\u641c\u7d22',
      searching: '\u6b63\u5728\u641c\u7d22\u2026',
      no_articles: '\u6ca1\u6709\u627e\u5230\u76f8\u5173\u6587\u7ae0\uff0c\u53ef\u4ee5\u5728\u4e0b\u65b9\u76f4\u63a5\u54a8\u8be2\u6211\u4eec\u3002',
      search_failed: '\u641c\u7d22\u5931\u8d25\uff0c\u8bf7\u91cd\u8bd5\u3002',
      back: '\u8fd4\u56de'
    }
  };
  var lang = 'en';

  function tr(key, vars) {
    var text = (TEXTS[lang] && TEXTS[lang][key]) || TEXTS.en[key] || key;
    if (vars) {
      text = text.replace(/\{(\w+)\}/g, function (whole, name) {
        return vars[name] === undefined ? whole : String(vars[name]);
      });
    }
    return text;
  }

  function pickLanguage(setting) {
    if (setting === 'en' || setting === 'zh-CN') return setting;
    var list = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language || 'en'];
    for (var i = 0; i < list.length; i++) {
      var l = String(list[i]).toLowerCase();
      if (l.indexOf('zh') === 0) return 'zh-CN';
      if (l.indexOf('en') === 0) return 'en';
    }
    return 'en';
  }

  // ------------------------------------------------------------------ storage

  var memory = {};

  function loadState() {
    var raw = null;
    try {
      raw = W.localStorage.getItem(STORE_KEY);
    } catch (e) {
      raw = memory[STORE_KEY] || null;
    }
    var state = null;
    try {
      state = raw ? JSON.parse(raw) : null;
    } catch (e) {
      state = null;
    }
    if (!state || typeof state !== 'object') state = {};
    if (!Array.isArray(state.pending)) state.pending = [];
    return state;
  }

  function saveState(state) {
    var raw = JSON.stringify(state);
    try {
      W.localStorage.setItem(STORE_KEY, raw);
    } catch (e) {
      memory[STORE_KEY] = raw;
    }
  }

  /** Read-modify-write, so that two tabs do not undo each other. */
  function updateState(change) {
    var state = loadState();
    change(state);
    saveState(state);
    return state;
  }

  function session(key, value) {
    try {
      if (value === undefined) return W.sessionStorage.getItem(key);
      if (value === null) W.sessionStorage.removeItem(key);
      else W.sessionStorage.setItem(key, value);
    } catch (e) { /* storage may be blocked */ }
    return null;
  }

  function uuid() {
    var c = W.crypto;
    if (c && c.randomUUID) {
      try {
        return c.randomUUID();
      } catch (e) { /* not a secure context */ }
    }
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var hex = '';
    for (var j = 0; j < 16; j++) hex += (b[j] + 256).toString(16).slice(1);
    return hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-' + hex.slice(12, 16) + '-' + hex.slice(16, 20) + '-' + hex.slice(20);
  }

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, attrs) {
    var node = D.createElement(tag);
    if (attrs) {
      for (var key in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, key)) continue;
        var value = attrs[key];
        if (value === undefined || value === null || value === false) continue;
        if (key === 'text') node.textContent = String(value);
        else if (key === 'class') node.className = value;
        else if (key === 'testid') node.setAttribute('data-testid', value);
        else if (key.indexOf('on') === 0 && typeof value === 'function') node.addEventListener(key.slice(2), value);
        else if (key === 'value' || key === 'checked' || key === 'disabled' || key === 'required' || key === 'hidden') node[key] = value;
        else node.setAttribute(key, value === true ? '' : String(value));
      }
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === 'string' ? D.createTextNode(child) : child);
    }
    return node;
  }

  function svg(path) {
    var ns = 'http://www.w3.org/2000/svg';
    var s = D.createElementNS(ns, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('aria-hidden', 'true');
    s.setAttribute('focusable', 'false');
    var p = D.createElementNS(ns, 'path');
    p.setAttribute('d', path);
    s.appendChild(p);
    return s;
  }

  var ICON_CHAT = 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z';
  var ICON_CLOSE = 'M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z';
  var ICON_SEND = 'M3 20.5 21 12 3 3.5v6.6L15 12 3 13.9z';
  var ICON_CLIP = 'M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6z';

  /** Only http(s) addresses, resolved against the server: never javascript: or data:. */
  function safeUrl(url) {
    try {
      var u = new URL(String(url), ORIGIN);
      return (u.protocol === 'https:' || u.protocol === 'http:') ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  function validColour(value) {
    return typeof value === 'string' && /^#[0-9a-fA-F]{6}$/.test(value) ? value : '#1f6feb';
  }

  /** Dark text on light colours, white on dark ones. */
  function inkFor(colour) {
    var n = parseInt(colour.slice(1), 16);
    var channel = function (v) {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    var l = 0.2126 * channel((n >> 16) & 255) + 0.7152 * channel((n >> 8) & 255) + 0.0722 * channel(n & 255);
    return l > 0.4 ? '#111827' : '#ffffff';
  }

  function formatSize(bytes) {
    if (!(bytes >= 0)) return '';
    if (bytes < 1024) return bytes + ' B';
    if (bytes < 1048576) return (bytes / 1024).toFixed(bytes < 10240 ? 1 : 0) + ' KB';
    return (bytes / 1048576).toFixed(1) + ' MB';
  }

  function formatTime(ms) {
    if (!ms) return '';
    try {
      return new Date(ms).toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' });
    } catch (e) {
      return '';
    }
  }

  // ------------------------------------------------------------------ styles

  var CSS = [
    ':host{all:initial;position:static!important;display:block!important}',
    '*{box-sizing:border-box}',
    '.root{--c:#1f6feb;--ink:#fff;position:fixed;bottom:20px;right:20px;z-index:2147483000;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:#1f2328;text-align:left;direction:ltr}',
    '.root.left{right:auto;left:20px}',
    'button{font:inherit;color:inherit;cursor:pointer}',
    'button:focus-visible,textarea:focus-visible,input:focus-visible,a:focus-visible{outline:2px solid var(--c);outline-offset:2px}',
    '.launcher{width:56px;height:56px;border-radius:50%;border:0;background:var(--c);color:var(--ink);box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center;position:relative;padding:0;margin:0}',
    '.launcher svg{width:28px;height:28px;fill:currentColor}',
    '.badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;background:#d1242f;color:#fff;font-size:12px;line-height:20px;text-align:center;padding:0 5px}',
    '.panel{position:absolute;bottom:72px;right:0;width:370px;max-width:calc(100vw - 40px);height:560px;max-height:calc(100vh - 110px);background:#fff;border-radius:14px;box-shadow:0 8px 32px rgba(0,0,0,.22);display:flex;flex-direction:column;overflow:hidden}',
    '.left .panel{right:auto;left:0}',
    '[hidden]{display:none!important}',
    '.head{background:var(--c);color:var(--ink);padding:14px 14px 12px 16px;display:flex;gap:8px;align-items:flex-start}',
    '.head-text{flex:1;min-width:0}',
    '.head h2{font-size:16px;font-weight:600;margin:0 0 2px;overflow-wrap:anywhere}',
    '.status{font-size:12px;opacity:.9;margin:0}',
    '.x{background:transparent;border:0;color:inherit;width:32px;height:32px;border-radius:6px;display:flex;align-items:center;justify-content:center;padding:0;flex:none}',
    '.x:hover{background:rgba(127,127,127,.25)}',
    '.x svg{width:20px;height:20px;fill:currentColor}',
    '.list{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f8fa}',
    '.msg{max-width:82%;display:flex;flex-direction:column;align-items:flex-start}',
    '.msg.inbound{align-self:flex-end;align-items:flex-end}',
    '.msg.other{align-self:center;max-width:90%;color:#59636e;font-size:12px}',
    '.who{font-size:12px;color:#59636e;margin:0 4px 2px}',
    '.bubble{padding:8px 11px;border-radius:14px;background:#fff;border:1px solid #d8dee4;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word}',
    '.inbound .bubble{background:var(--c);color:var(--ink);border-color:transparent}',
    '.bubble a{color:inherit}',
    '.msg.sending .bubble{opacity:.65}',
    '.msg.failed .bubble{border:1px dashed #d1242f}',
    '.files{display:flex;flex-direction:column;gap:4px;margin-top:4px}',
    '.files img{display:block;max-width:200px;max-height:160px;border-radius:8px;border:1px solid #d8dee4;background:#fff}',
    '.file{display:inline-block;padding:6px 9px;border-radius:8px;background:#fff;border:1px solid #d8dee4;color:#0969da;text-decoration:none;overflow-wrap:anywhere}',
    '.meta{font-size:11px;color:#59636e;margin:2px 4px 0}',
    '.meta.err{color:#d1242f}',
    '.typing{font-size:12px;color:#59636e;padding:0 14px 4px;background:#f6f8fa;font-style:italic}',
    '.foot{border-top:1px solid #d8dee4;padding:10px;background:#fff}',
    '.composer{display:flex;gap:6px;align-items:flex-end}',
    '.composer textarea{flex:1;resize:none;min-height:40px;max-height:120px}',
    'textarea,input{font:inherit;color:#1f2328;border:1px solid #d0d7de;border-radius:8px;padding:8px 10px;width:100%;background:#fff;margin:0}',
    '.icon{width:40px;height:40px;border-radius:8px;border:0;background:transparent;color:#59636e;display:flex;align-items:center;justify-content:center;padding:0;flex:none}',
    '.icon:hover{background:#eef1f4}',
    '.icon svg{width:22px;height:22px;fill:currentColor}',
    '.icon.send{background:var(--c);color:var(--ink)}',
    '.icon:disabled{opacity:.5;cursor:default}',
    '.vh{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;opacity:0}',
    '.note{font-size:12px;color:#59636e;margin:0 0 6px}',
    '.note.err{color:#d1242f}',
    'form.card{display:flex;flex-direction:column;gap:8px;padding:14px;background:#fff;border-radius:10px;border:1px solid #d8dee4;align-self:stretch}',
    'form.card p{margin:0}',
    'label{display:flex;flex-direction:column;gap:3px;font-size:13px;font-weight:500}',
    '.opt{font-weight:400;color:#59636e}',
    '.search{padding:8px 10px;border-bottom:1px solid #d8dee4;background:#fff}',
    '.search form{display:flex;gap:6px}',
    '.search input{padding:6px 10px}',
    '.search .primary{padding:6px 10px;flex:none}',
    '.hits{display:flex;flex-direction:column;gap:4px;margin-top:6px;max-height:220px;overflow-y:auto}',
    '.hit{display:flex;flex-direction:column;gap:2px;text-align:left;background:#f6f8fa;border:1px solid #d8dee4;border-radius:8px;padding:7px 9px}',
    '.hit:hover{border-color:var(--c)}',
    '.hit-title{font-weight:600;overflow-wrap:anywhere}',
    '.hit-passage{font-size:12px;color:#59636e;overflow-wrap:anywhere;display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden}',
    '.article{flex:1;overflow-y:auto;padding:12px 14px;background:#fff}',
    '.article h3{font-size:16px;margin:8px 0}',
    '.article-body{white-space:pre-wrap;overflow-wrap:anywhere;margin:0}',
    '.back{background:transparent;border:1px solid #d0d7de;border-radius:8px;padding:4px 10px}',
    '.primary{background:var(--c);color:var(--ink);border:0;border-radius:8px;padding:9px 12px;font-weight:600}',
    '@media (max-width:480px){.root{bottom:12px;right:12px}.root.left{left:12px}.panel{position:fixed;inset:0;width:auto;max-width:none;height:auto;max-height:none;border-radius:0}.root.open .launcher{display:none}}'
  ].join('\n');

  // ------------------------------------------------------------------ the widget

  var config = (existing && typeof existing === 'object') ? existing : {};
  var user = siteUser(config.user);

  /** The site's signed-in user, as the server takes it: the id as text, and nothing else. */
  function siteUser(u) {
    if (!u || typeof u !== 'object' || u.id === undefined || u.id === null || u.id === '') return null;
    var out = { id: String(u.id), signature: String(u.signature || '') };
    if (u.name) out.name = String(u.name);
    if (u.email) out.email = String(u.email);
    return out;
  }

  var settings = null;
  var customer = {};
  var online = true;
  var needsPrechat = false;
  var offlineSent = false;
  var token = null;
  var socket = null;
  var socketOpen = false;
  var everOpen = false;
  var failures = 0;
  var retryTimer = null;
  var stopped = false;
  var lastId = 0;
  var readUpTo = 0;
  var lastReadSent = 0;
  var lastTypingSent = 0;
  var typingTimer = null;
  // The session's first request carries the page the visitor landed on; page_view frames are
  // for the pages the site shows afterwards without loading one (pushState, popstate).
  var pageViewDue = false;
  var sessionStarted = false;
  var isOpen = false;
  var openWhenBuilt = false; // the page called open() before the widget was ready
  var unread = 0;
  var rendered = {}; // message id -> element
  var pendingEls = {}; // client_id -> element
  var lastInbound = null; // the element of the visitor's newest stored message
  var lastInboundId = 0;

  // Nodes, built once settings are known.
  var host, shadow, root, launcher, badge, panel, titleEl, statusEl, list, typingEl, foot,
    composer, input, sendBtn, fileInput, attachBtn, noteEl, readEl, searchBox, articleView;

  function start() {
    var state = loadState();
    // A stored visitor belongs to the site's user it was created for.
    var uid = user ? String(user.id) : null;
    if ((state.user_id || null) !== uid) {
      state = { pending: [], user_id: uid };
      saveState(state);
    }
    token = state.visitor_token || null;
    startSession();
  }

  function startSession() {
    if (stopped) return;
    var body = {};
    // Only the first session of a page load records the page; a reconnect is no new page view.
    if (!sessionStarted) body.page = pageInfo();
    if (token) body.visitor_token = token;
    if (user) body.user = user;
    fetch(BASE + '/sessions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
      mode: 'cors'
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (!response.ok) {
          var code = data && data.error && data.error.code;
          if (response.status === 401 && token && code !== 'invalid_signature') {
            // The stored token is no longer valid: start over as a new visitor.
            token = null;
            updateState(function (s) { delete s.visitor_token; });
            retry();
            return;
          }
          if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
            stopped = true;
            warn('the server refused the session (' + response.status + ' ' + (code || '') + ')' +
              (data && data.error && data.error.message ? ': ' + data.error.message : ''));
            return;
          }
          retry();
          return;
        }
        onSession(data || {});
      });
    }, function () {
      retry();
    });
  }

  function onSession(data) {
    sessionStarted = true;
    token = data.visitor_token || token;
    updateState(function (s) { s.visitor_token = token; });
    settings = data.settings || settings || {};
    customer = data.customer || {};
    online = data.online !== false;
    needsPrechat = !!data.needs_prechat;
    if (!host) build();
    refreshMode();
    connect();
  }

  function pageInfo() {
    return { url: location.href, title: D.title || '', referrer: D.referrer || '' };
  }

  // ------------------------------------------------------------------ building the UI

  function build() {
    lang = pickLanguage(settings.language);
    var colour = validColour(settings.colour);

    host = D.createElement('allhands-widget');
    host.setAttribute('data-channel', CHANNEL);
    shadow = host.attachShadow({ mode: 'open' });
    var sheetDone = false;
    try {
      if (W.CSSStyleSheet && 'adoptedStyleSheets' in shadow) {
        var sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        shadow.adoptedStyleSheets = [sheet];
        sheetDone = true;
      }
    } catch (e) { /* fall back to a style element */ }
    if (!sheetDone) shadow.appendChild(el('style', { text: CSS }));

    root = el('div', { class: 'root' + (settings.position === 'left' ? ' left' : ''), lang: lang });
    root.style.setProperty('--c', colour);
    root.style.setProperty('--ink', inkFor(colour));

    var panelId = 'allhands-panel';
    var titleId = 'allhands-title';
    badge = el('span', { class: 'badge', hidden: true, 'aria-hidden': 'true' });
    launcher = el('button', {
      type: 'button', class: 'launcher', testid: 'allhands-launcher', 'aria-label': tr('open'),
      'aria-expanded': 'false', 'aria-controls': panelId, onclick: function () { if (isOpen) close(); else open(); }
    }, svg(ICON_CHAT), badge);

    var greeting = (settings.greeting && typeof settings.greeting === 'object' && typeof settings.greeting[lang] === 'string' && settings.greeting[lang].trim())
      ? settings.greeting[lang] : tr('greeting');
    titleEl = el('h2', { id: titleId, text: greeting });
    statusEl = el('p', { class: 'status', testid: 'allhands-status', 'aria-live': 'polite' });
    var closeBtn = el('button', { type: 'button', class: 'x', testid: 'allhands-close', 'aria-label': tr('close'), onclick: function () { close(); } }, svg(ICON_CLOSE));
    var head = el('div', { class: 'head' }, el('div', { class: 'head-text' }, titleEl, statusEl), closeBtn);

    list = el('div', { class: 'list', testid: 'allhands-messages', role: 'log', 'aria-live': 'polite', 'aria-label': tr('messages'), tabindex: '0' });
    list.addEventListener('scroll', function () {
      pinned = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    });
    typingEl = el('div', { class: 'typing', testid: 'allhands-typing', hidden: true, 'aria-live': 'polite' });
    readEl = el('div', { class: 'meta', testid: 'allhands-read', text: tr('read') });

    input = el('textarea', {
      rows: '1', testid: 'allhands-input', placeholder: tr('placeholder'), 'aria-label': tr('placeholder'), maxlength: '5000',
      onkeydown: onComposerKey, oninput: onComposerInput
    });
    sendBtn = el('button', { type: 'submit', class: 'icon send', testid: 'allhands-send', 'aria-label': tr('send'), title: tr('send') }, svg(ICON_SEND));
    fileInput = el('input', { type: 'file', class: 'vh', testid: 'allhands-file', tabindex: '-1', 'aria-hidden': 'true', onchange: onFileChosen });
    attachBtn = el('button', { type: 'button', class: 'icon', testid: 'allhands-attach', 'aria-label': tr('attach'), title: tr('attach'), onclick: function () { fileInput.click(); } }, svg(ICON_CLIP));
    noteEl = el('p', { class: 'note', testid: 'allhands-note', hidden: true, role: 'status' });
    composer = el('form', { class: 'composer', testid: 'allhands-composer', onsubmit: function (e) { e.preventDefault(); sendComposer(); } },
      attachBtn, fileInput, input, sendBtn);
    foot = el('div', { class: 'foot' }, noteEl, composer);

    searchBox = buildSearch();
    articleView = el('div', { class: 'article', testid: 'allhands-article', hidden: true });

    panel = el('div', {
      class: 'panel', id: panelId, testid: 'allhands-panel', role: 'dialog', 'aria-modal': 'false',
      'aria-labelledby': titleId, hidden: true, lang: lang
    }, head, searchBox, list, articleView, typingEl, foot);
    panel.addEventListener('keydown', function (e) {
      if (e.key === 'Escape' || e.key === 'Esc') {
        e.stopPropagation();
        close();
      }
    });

    root.appendChild(panel);
    root.appendChild(launcher);
    shadow.appendChild(root);
    (D.body || D.documentElement).appendChild(host);

    // Messages typed earlier (this page or a previous one) and not yet acknowledged.
    var pending = loadState().pending;
    for (var i = 0; i < pending.length; i++) renderPending(pending[i]);

    D.addEventListener('visibilitychange', maybeSendRead);
    if (openWhenBuilt) open();
    else if (session(OPEN_KEY) === '1') open(true);
  }

  // ------------------------------------------------------------------ help articles

  var searchSeq = 0;

  /** The search box over the public help articles, searched on submit (so half-typed
   *  questions do not count as questions no article answers). */
  function buildSearch() {
    var field = el('input', {
      type: 'search', testid: 'allhands-search', placeholder: tr('search'), 'aria-label': tr('search'), maxlength: '200'
    });
    var hits = el('div', { class: 'hits', testid: 'allhands-search-results', role: 'list', 'aria-live': 'polite', hidden: true });
    var form = el('form', {
      role: 'search', testid: 'allhands-search-form',
      onsubmit: function (e) {
        e.preventDefault();
        searchArticles(field.value, hits);
      }
    }, field, el('button', { type: 'submit', class: 'primary', testid: 'allhands-search-submit', text: tr('search_go') }));
    field.addEventListener('input', function () {
      if (!field.value.trim()) {
        searchSeq += 1;
        hits.hidden = true;
        hits.textContent = '';
      }
    });
    return el('div', { class: 'search' }, form, hits);
  }

  function getJson(url) {
    return fetch(url, { headers: { Accept: 'application/json' }, credentials: 'omit', mode: 'cors' })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (data) {
          if (!response.ok) throw new Error((data && data.error && data.error.code) || String(response.status));
          return data;
        });
      });
  }

  function searchArticles(question, hits) {
    var q = String(question || '').trim();
    if (!q) return;
    var mine = ++searchSeq;
    hits.hidden = false;
    hits.textContent = '';
    hits.appendChild(el('p', { class: 'note', text: tr('searching') }));
    var url = BASE + '/search?q=' + encodeURIComponent(q.slice(0, 200)) + '&lang=' + (lang === 'zh-CN' ? 'zh' : 'en') + '&limit=5';
    getJson(url).then(function (data) {
      if (mine !== searchSeq) return;
      var answers = (data && Array.isArray(data.answers)) ? data.answers : [];
      hits.textContent = '';
      if (!answers.length) {
        hits.appendChild(el('p', { class: 'note', testid: 'allhands-search-empty', text: tr('no_articles') }));
        return;
      }
      answers.forEach(function (a) {
        var id = Number(a.article_id);
        if (!(id > 0)) return;
        hits.appendChild(el('button', {
          type: 'button', class: 'hit', role: 'listitem', testid: 'allhands-search-hit', 'data-id': String(id),
          onclick: function () { openArticle(id); }
        }, el('span', { class: 'hit-title', text: String(a.title || '') }),
        a.passage ? el('span', { class: 'hit-passage', text: String(a.passage) }) : null));
      });
    }, function () {
      if (mine !== searchSeq) return;
      hits.textContent = '';
      hits.appendChild(el('p', { class: 'note err', role: 'alert', text: tr('search_failed') }));
    });
  }

  /** Shows an article in place of the conversation; Back returns to it. */
  function openArticle(id) {
    getJson(BASE + '/articles/' + id).then(function (article) {
      var body = String((article && article.body) || '').replace(/^\s{0,3}#{1,6}\s+/gm, '');
      var back = el('button', { type: 'button', class: 'back', testid: 'allhands-article-back', text: tr('back'), onclick: closeArticle });
      articleView.textContent = '';
      articleView.appendChild(back);
      articleView.appendChild(el('h3', { testid: 'allhands-article-title', text: String((article && article.title) || '') }));
      articleView.appendChild(el('p', { class: 'article-body', testid: 'allhands-article-body', text: body }));
      showArticle(true);
      try {
        back.focus({ preventScroll: true });
      } catch (e) { /* old browsers */ }
    }, function () {
      /* withdrawn since the search: the results stay as they were */
    });
  }

  function closeArticle() {
    showArticle(false);
  }

  var articleOpen = false;

  function showArticle(on) {
    articleOpen = on;
    articleView.hidden = !on;
    searchBox.hidden = on;
    list.hidden = on;
    if (on) typingEl.hidden = true;
    syncFoot();
    if (!on) scrollDown(true);
  }

  /** Which of the pre-chat form, the leave-a-message form or the composer the foot shows. */
  var formEl = null;
  /** 1 = next in line; null when not waiting. */
  var queuePosition = null;

  function refreshMode() {
    if (!host) return;
    statusEl.textContent = everOpen && !socketOpen
      ? tr('reconnecting')
      : (queuePosition ? tr('queue', { n: queuePosition }) : (online ? tr('online') : tr('away')));
    var want = !online && !offlineSent ? 'offline' : (needsPrechat ? 'prechat' : 'chat');
    var have = formEl ? formEl.getAttribute('data-mode') : 'chat';
    if (want === have) return;
    if (formEl) {
      formEl.parentNode.removeChild(formEl);
      formEl = null;
    }
    composer.hidden = want !== 'chat';
    syncFoot();
    if (want === 'prechat') formEl = prechatForm();
    else if (want === 'offline') formEl = offlineForm();
    if (formEl) {
      list.appendChild(formEl);
      scrollDown(true);
    }
  }

  function fieldMode(name) {
    var p = settings.prechat && typeof settings.prechat === 'object' ? settings.prechat : {};
    var mode = p[name];
    return mode === 'required' || mode === 'off' ? mode : 'optional';
  }

  function textField(labelText, attrs, required) {
    var inputEl = el('input', attrs);
    inputEl.required = !!required;
    var label = el('label', null, el('span', null, labelText, required ? null : el('span', { class: 'opt', text: ' ' + tr('optional') })), inputEl);
    return { label: label, input: inputEl };
  }

  function checkFields(fields, errorEl) {
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      var value = f.input.value.trim();
      if (f.input.required && !value) {
        errorEl.textContent = tr('required', { field: f.name });
        errorEl.hidden = false;
        f.input.focus();
        return false;
      }
      if (f.input.type === 'email' && value && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) {
        errorEl.textContent = tr('bad_email');
        errorEl.hidden = false;
        f.input.focus();
        return false;
      }
    }
    errorEl.hidden = true;
    return true;
  }

  function prechatForm() {
    var fields = [];
    var nodes = [];
    var error = el('p', { class: 'note err', role: 'alert', hidden: true });
    ['name', 'email'].forEach(function (key) {
      var mode = fieldMode(key);
      if (mode === 'off') return;
      var f = textField(tr(key), {
        type: key === 'email' ? 'email' : 'text', testid: 'allhands-' + key, name: key, maxlength: key === 'email' ? '254' : '200',
        autocomplete: key === 'email' ? 'email' : 'name', value: customer[key] || ''
      }, mode === 'required');
      f.name = tr(key);
      f.key = key;
      fields.push(f);
      nodes.push(f.label);
    });
    var form = el('form', { class: 'card', testid: 'allhands-prechat', 'data-mode': 'prechat', novalidate: true },
      el('p', { text: tr('prechat_intro') }));
    nodes.forEach(function (n) { form.appendChild(n); });
    form.appendChild(error);
    form.appendChild(el('button', { type: 'submit', class: 'primary', testid: 'allhands-prechat-submit', text: tr('start') }));
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      if (!checkFields(fields, error)) return;
      var profile = { type: 'profile' };
      fields.forEach(function (f) {
        var v = f.input.value.trim();
        if (v) {
          profile[f.key] = v;
          customer[f.key] = v;
        }
      });
      queueFrame(profile);
      needsPrechat = false;
      refreshMode();
      input.focus();
    });
    return form;
  }

  function offlineForm() {
    var error = el('p', { class: 'note err', role: 'alert', hidden: true });
    var name = textField(tr('name'), { type: 'text', testid: 'allhands-offline-name', maxlength: '200', autocomplete: 'name', value: customer.name || '' }, fieldMode('name') === 'required');
    var email = textField(tr('email'), { type: 'email', testid: 'allhands-offline-email', maxlength: '254', autocomplete: 'email', value: customer.email || '' }, fieldMode('email') !== 'off');
    var textArea = el('textarea', { testid: 'allhands-offline-message', rows: '4', maxlength: '5000', required: true });
    name.name = tr('name');
    email.name = tr('email');
    var message = { input: textArea, name: tr('message') };
    var form = el('form', { class: 'card', testid: 'allhands-offline', 'data-mode': 'offline', novalidate: true },
      el('p', { text: tr('offline') }), name.label, email.label,
      el('label', null, el('span', { text: tr('message') }), textArea), error,
      el('button', { type: 'submit', class: 'primary', testid: 'allhands-offline-submit', text: tr('offline_send') }));
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      if (!checkFields([name, email, message], error)) return;
      var profile = { type: 'profile' };
      var n = name.input.value.trim();
      var m = email.input.value.trim();
      if (n) profile.name = customer.name = n;
      if (m) profile.email = customer.email = m;
      if (n || m) queueFrame(profile);
      sendMessage(textArea.value.trim(), []);
      offlineSent = true;
      needsPrechat = false;
      refreshMode();
      showNote(tr('offline_thanks'));
      input.focus();
    });
    return form;
  }

  // ------------------------------------------------------------------ open and close

  function open(quiet) {
    if (!panel) return;
    isOpen = true;
    panel.hidden = false;
    root.classList.add('open');
    launcher.setAttribute('aria-expanded', 'true');
    launcher.setAttribute('aria-label', tr('close'));
    session(OPEN_KEY, '1');
    unread = 0;
    showBadge();
    scrollDown(true);
    if (quiet !== true) {
      var target = formEl ? formEl.querySelector('input,textarea') : input;
      try {
        (target || input).focus({ preventScroll: true });
      } catch (e) { /* old browsers */ }
    }
    markSeen();
    maybeSendRead();
  }

  function close() {
    if (!panel) return;
    var hadFocus = shadow.activeElement && panel.contains(shadow.activeElement);
    isOpen = false;
    panel.hidden = true;
    root.classList.remove('open');
    launcher.setAttribute('aria-expanded', 'false');
    launcher.setAttribute('aria-label', tr('open'));
    session(OPEN_KEY, null);
    if (hadFocus) launcher.focus();
  }

  function showBadge() {
    if (!badge) return;
    badge.hidden = !unread;
    badge.textContent = unread > 9 ? '9+' : String(unread);
    launcher.setAttribute('aria-label', isOpen ? tr('close') : (unread ? tr('open') + ' (' + tr('unread', { n: unread }) + ')' : tr('open')));
  }

  /** The newest message seen with the panel open: the unread count on the next page starts there. */
  function markSeen() {
    if (!isOpen || lastId <= (loadState().last_seen || 0)) return;
    updateState(function (s) { s.last_seen = Math.max(s.last_seen || 0, lastId); });
  }

  function showNote(text, isError) {
    noteEl.textContent = text || '';
    noteEl.className = isError ? 'note err' : 'note';
    noteEl.hidden = !text;
    syncFoot();
  }

  /** The foot (note and composer) takes no room when it has nothing to show. */
  function syncFoot() {
    foot.hidden = articleOpen || (composer.hidden && noteEl.hidden);
  }

  /** Whether the list shows its end, so that what arrives (or a picture that loads) stays in view. */
  var pinned = true;

  function scrollDown(force) {
    if (!list) return;
    if (!force && !pinned) return;
    list.scrollTop = list.scrollHeight;
    pinned = true;
  }

  // ------------------------------------------------------------------ messages

  function attachmentsNode(items) {
    if (!items || !items.length) return null;
    var box = el('div', { class: 'files' });
    for (var i = 0; i < items.length; i++) {
      var a = items[i] || {};
      var href = safeUrl(a.url);
      var name = String(a.filename || 'file');
      var isImage = /^image\/(png|jpe?g|gif|webp|bmp|avif)$/i.test(String(a.content_type || ''));
      if (!href) {
        box.appendChild(el('span', { class: 'file', text: name }));
      } else if (isImage) {
        box.appendChild(el('a', { href: href, target: '_blank', rel: 'noopener noreferrer', testid: 'allhands-attachment', title: name },
          el('img', { src: href, alt: name, onload: function () { if (pinned) scrollDown(true); } })));
      } else {
        box.appendChild(el('a', { class: 'file', href: href, target: '_blank', rel: 'noopener noreferrer', testid: 'allhands-attachment', download: name },
          name + (a.size >= 0 ? ' (' + formatSize(a.size) + ')' : '')));
      }
    }
    return box;
  }

  function messageNode(m, pending) {
    var direction = m.direction === 'inbound' || m.direction === 'outbound' ? m.direction : 'other';
    var node = el('div', { class: 'msg ' + direction + (pending ? ' sending' : ''), testid: 'allhands-message', 'data-direction': m.direction || 'other' });
    if (direction === 'outbound') node.appendChild(el('div', { class: 'who', testid: 'allhands-author', text: m.author_name || tr('someone') }));
    if (m.text || !(m.attachments && m.attachments.length)) node.appendChild(el('div', { class: 'bubble', testid: 'allhands-text', text: m.text || '' }));
    var files = attachmentsNode(m.attachments);
    if (files) node.appendChild(files);
    node.appendChild(el('div', { class: 'meta', text: pending ? tr('sending') : formatTime(m.created_at) }));
    return node;
  }

  /** Places a stored message by id, after every earlier one and before unacknowledged ones. */
  function addMessage(m) {
    if (!m || typeof m.id !== 'number' || !list) return false;
    if (m.client_id && pendingEls[m.client_id]) dropPending(m.client_id);
    if (rendered[m.id]) return false;
    var node = messageNode(m, false);
    node.setAttribute('data-id', String(m.id));
    var before = null;
    var children = list.children;
    for (var i = 0; i < children.length; i++) {
      var c = children[i];
      var cid = Number(c.getAttribute('data-id'));
      if ((cid && cid > m.id) || c.hasAttribute('data-client-id') || c === formEl) {
        before = c;
        break;
      }
    }
    list.insertBefore(node, before);
    rendered[m.id] = node;
    if (m.id > lastId) lastId = m.id;
    if (m.direction === 'inbound') {
      if (m.state === 'read' && m.id > readUpTo) readUpTo = m.id;
      if (m.id > lastInboundId) {
        lastInboundId = m.id;
        lastInbound = node;
      }
      placeReadMark();
    } else if (m.direction === 'outbound') {
      hideTyping();
      if (!isOpen && m.id > (loadState().last_seen || 0)) {
        unread += 1;
        showBadge();
      }
    }
    return true;
  }

  function placeReadMark() {
    if (!readEl) return;
    if (lastInbound && lastInboundId <= readUpTo) {
      if (readEl.parentNode !== lastInbound) lastInbound.appendChild(readEl);
    } else if (readEl.parentNode) {
      readEl.parentNode.removeChild(readEl);
    }
  }

  function renderPending(p) {
    if (!list || pendingEls[p.client_id]) return;
    var node = messageNode({ direction: 'inbound', text: p.text, attachments: p.files || [] }, true);
    node.setAttribute('data-client-id', p.client_id);
    var anchor = formEl && formEl.parentNode === list ? formEl : null;
    list.insertBefore(node, anchor);
    pendingEls[p.client_id] = node;
    scrollDown(true);
  }

  function dropPending(clientId) {
    var node = pendingEls[clientId];
    if (node && node.parentNode) node.parentNode.removeChild(node);
    delete pendingEls[clientId];
    updateState(function (s) {
      s.pending = s.pending.filter(function (p) { return p.client_id !== clientId; });
    });
  }

  function failPending(clientId, reason) {
    var node = pendingEls[clientId];
    updateState(function (s) {
      s.pending = s.pending.filter(function (p) { return p.client_id !== clientId; });
    });
    if (!node) return;
    delete pendingEls[clientId];
    node.className = 'msg inbound failed';
    node.removeAttribute('data-client-id');
    node.setAttribute('data-state', 'failed');
    var meta = node.lastChild;
    meta.className = 'meta err';
    meta.textContent = tr('not_sent', { reason: reason || '' });
  }

  function sendMessage(text, files) {
    if (!text && !(files && files.length)) return;
    var p = { client_id: uuid(), text: text, attachments: (files || []).map(function (f) { return f.id; }), files: files || [], at: Date.now() };
    updateState(function (s) { s.pending.push(p); });
    renderPending(p);
    sendRaw({ type: 'message', client_id: p.client_id, text: p.text, attachments: p.attachments });
  }

  function resendPending() {
    var pending = loadState().pending;
    for (var i = 0; i < pending.length; i++) {
      var p = pending[i];
      renderPending(p);
      sendRaw({ type: 'message', client_id: p.client_id, text: p.text || '', attachments: p.attachments || [] });
    }
  }

  function sendComposer() {
    var text = input.value.replace(/^\s+|\s+$/g, '');
    if (!text) return;
    input.value = '';
    autosize();
    sendMessage(text, []);
    input.focus();
  }

  function onComposerKey(e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      sendComposer();
    }
  }

  function autosize() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px';
  }

  function onComposerInput() {
    autosize();
    noteTyping();
  }

  /** At most one typing frame every 2 s; typing within the 2 s is told when they are over. */
  var typingSendTimer = null;

  function noteTyping() {
    if (!input.value || !socketOpen) return;
    var wait = lastTypingSent + 2000 - Date.now();
    if (wait <= 0) {
      lastTypingSent = Date.now();
      sendRaw({ type: 'typing' });
    } else if (!typingSendTimer) {
      typingSendTimer = setTimeout(function () {
        typingSendTimer = null;
        noteTyping();
      }, wait);
    }
  }

  function onFileChosen() {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = '';
    if (!file || !token) return;
    showNote(tr('uploading', { name: file.name }));
    attachBtn.disabled = true;
    fetch(BASE + '/uploads?filename=' + encodeURIComponent(file.name), {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + token, 'Content-Type': file.type || 'application/octet-stream' },
      body: file,
      credentials: 'omit',
      mode: 'cors'
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (!response.ok || !data || typeof data.id !== 'number') {
          var code = data && data.error && data.error.code;
          showNote(response.status === 413 || code === 'payload_too_large' ? tr('too_large')
            : response.status === 415 || code === 'unsupported_type' ? tr('bad_type') : tr('upload_failed'), true);
          return;
        }
        showNote('');
        var text = input.value.replace(/^\s+|\s+$/g, '');
        input.value = '';
        autosize();
        sendMessage(text, [data]);
      });
    }, function () {
      showNote(tr('upload_failed'), true);
    }).then(function () {
      attachBtn.disabled = false;
    });
  }

  // ------------------------------------------------------------------ typing and read

  function showTyping(name) {
    typingEl.textContent = tr('typing', { name: name || tr('someone') });
    typingEl.hidden = articleOpen;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, 5000);
  }

  function hideTyping() {
    clearTimeout(typingTimer);
    if (typingEl) typingEl.hidden = true;
  }

  /** Tells the server the visitor has seen employees' messages, while the panel is open and visible. */
  function maybeSendRead() {
    if (!isOpen || !socketOpen || D.visibilityState === 'hidden') return;
    var newest = 0;
    for (var id in rendered) {
      if (rendered[id].getAttribute('data-direction') === 'outbound' && Number(id) > newest) newest = Number(id);
    }
    if (newest > lastReadSent) {
      lastReadSent = newest;
      sendRaw({ type: 'read', up_to: newest });
    }
    markSeen();
  }

  // ------------------------------------------------------------------ page views

  function notePageView() {
    pageViewDue = true;
    flushPageView();
  }

  function flushPageView() {
    if (!pageViewDue || !socketOpen) return;
    pageViewDue = false;
    sendRaw({ type: 'page_view', url: location.href, title: D.title || '' });
  }

  function wrapHistory(name) {
    var original = history[name];
    if (typeof original !== 'function') return;
    history[name] = function () {
      var before = location.href;
      var result = original.apply(this, arguments);
      if (location.href !== before) setTimeout(notePageView, 0);
      return result;
    };
  }

  wrapHistory('pushState');
  wrapHistory('replaceState');
  W.addEventListener('popstate', function () { setTimeout(notePageView, 0); });

  // ------------------------------------------------------------------ the WebSocket

  var outbox = []; // frames other than messages, waiting for the socket

  function queueFrame(frame) {
    if (!sendRaw(frame)) outbox.push(frame);
  }

  function sendRaw(frame) {
    if (!socket || !socketOpen) return false;
    try {
      socket.send(JSON.stringify(frame));
      return true;
    } catch (e) {
      return false;
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    if (stopped || socket || !token) return;
    var url = ORIGIN.replace(/^http/, 'ws') + '/api/v1/widget/' + CHANNEL + '/ws?token=' + encodeURIComponent(token) + '&after=' + lastId;
    var ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      socket = null;
      retry();
      return;
    }
    socket = ws;
    ws.onopen = function () {
      if (socket !== ws) return;
      socketOpen = true;
      everOpen = true;
      refreshMode();
      var frames = outbox;
      outbox = [];
      for (var i = 0; i < frames.length; i++) queueFrame(frames[i]);
      resendPending();
      flushPageView();
    };
    ws.onmessage = function (event) {
      if (socket !== ws) return;
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      onFrame(data);
    };
    ws.onclose = function () {
      if (socket !== ws) return;
      socket = null;
      socketOpen = false;
      refreshMode();
      retry();
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function retry() {
    if (stopped) return;
    clearTimeout(retryTimer);
    var base = Math.min(30000, 1000 * Math.pow(2, failures));
    failures += 1;
    var delay = Math.round(base * (0.75 + Math.random() * 0.5));
    retryTimer = setTimeout(function () {
      // After a few failures the token or the server may have changed: ask for a session again.
      if (!token || !settings || failures >= 3) startSession();
      else connect();
    }, Math.min(delay, 30000));
  }

  function onFrame(data) {
    if (!data || typeof data !== 'object') return;
    switch (data.type) {
      case 'history':
        failures = 0;
        var messages = Array.isArray(data.messages) ? data.messages.slice() : [];
        messages.sort(function (a, b) { return a.id - b.id; });
        for (var i = 0; i < messages.length; i++) addMessage(messages[i]);
        scrollDown(true);
        maybeSendRead();
        break;
      case 'message':
        if (addMessage(data.message)) scrollDown(data.message.direction === 'inbound');
        maybeSendRead();
        break;
      case 'ack':
        if (data.client_id) dropPending(data.client_id);
        if (data.message) addMessage(data.message);
        scrollDown(true);
        break;
      case 'typing':
        showTyping(data.name);
        break;
      case 'read':
        if (typeof data.up_to === 'number' && data.up_to > readUpTo) {
          readUpTo = data.up_to;
          placeReadMark();
        }
        break;
      case 'presence':
        online = data.online !== false;
        refreshMode();
        break;
      case 'queue':
        // The visitor's place in line while nobody has taken the conversation yet.
        queuePosition = typeof data.position === 'number' && data.position > 0 ? data.position : null;
        refreshMode();
        break;
      case 'error':
        // A message refused for a passing reason stays pending and is sent again on reconnect.
        if (data.client_id && !/^(internal|storage_unavailable|throttled|unauthenticated)$/.test(data.code || '')) {
          failPending(data.client_id, data.message || data.code);
        } else {
          warn((data.code || 'error') + ': ' + (data.message || ''));
        }
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ the page's handle

  var api = config;
  api.__loaded = true;
  api.open = function () {
    if (panel) open();
    else openWhenBuilt = true;
  };
  api.close = function () {
    openWhenBuilt = false;
    if (panel) close();
    else session(OPEN_KEY, null);
  };
  W.AllHandsWidget = api;

  if (D.readyState === 'loading') D.addEventListener('DOMContentLoaded', start);
  else start();
})();
