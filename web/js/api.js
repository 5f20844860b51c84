// The HTTP API client: JSON in and out, the CSRF header on every state-changing request, and one
// place that notices a lost session or a forced password change.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    /** The error's `details` object, when the server sent one (e.g. `matches` of a sensitive word). */
    this.details = details || null;
  }
}

let csrfToken = '';
let handlers = { authLost() {}, passwordChangeRequired() {} };

export function setCsrf(token) {
  csrfToken = token || '';
}

/** handlers.authLost() on 401, handlers.passwordChangeRequired() on that 403. */
export function onAuthEvents(h) {
  handlers = { ...handlers, ...h };
}

async function send(method, path, body, { quiet = false, raw } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  if (raw) headers['Content-Type'] = raw.type || 'application/octet-stream';
  else if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: raw ? raw.body : body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'network', String(err && err.message || err));
  }
  if (!response.ok) {
    let code = 'http_' + response.status;
    let message = response.statusText;
    let details = null;
    try {
      const data = await response.json();
      if (data && data.error) {
        code = data.error.code || code;
        message = data.error.message || message;
        details = data.error.details || null;
      }
    } catch { /* not JSON */ }
    const error = new ApiError(response.status, code, message, details);
    if (!quiet) {
      if (response.status === 401 && (code === 'unauthenticated' || code === 'session_expired')) handlers.authLost(error);
      if (response.status === 403 && code === 'password_change_required') handlers.passwordChangeRequired(error);
    }
    throw error;
  }
  return response;
}

async function json(method, path, body, options) {
  const response = await send(method, path, body, options);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Builds a query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === '') continue;
    q.set(key, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const api = {
  get: (path, options) => json('GET', path, undefined, options),
  post: (path, body, options) => json('POST', path, body, options),
  patch: (path, body, options) => json('PATCH', path, body, options),
  put: (path, body, options) => json('PUT', path, body, options),
  del: (path, options) => json('DELETE', path, undefined, options),
  /** GET { items } and return the list. */
  list: async (path, options) => (await json('GET', path, undefined, options)).items,
  /**
   * POSTs a file (a File or Blob) as the raw body with its own Content-Type, e.g. to
   * `/api/v1/attachments?filename=…`; returns the JSON answer.
   */
  upload: async (path, file, options) => {
    const response = await send('POST', path, undefined, { ...options, raw: { body: file, type: file.type } });
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  },
  /** A raw response for downloads; `body` undefined sends no body. */
  download: async (method, path) => {
    const response = await send(method, path, undefined);
    const disposition = response.headers.get('Content-Disposition') || '';
    const match = /filename="?([^";]+)"?/.exec(disposition);
    return { blob: await response.blob(), name: match ? match[1] : 'download' };
  },
};
