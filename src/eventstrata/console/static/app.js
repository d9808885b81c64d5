// The console's shell: sign-in, the header, the error banner, and the hash router that mounts
// one view at a time (each view gets an AbortSignal that ends its requests and timers when
// the route changes).
import { ApiError, api, clearKey, getKey, setKey } from './api.js';
import { renderDetail } from './detail.js';
import { renderExplorer } from './explorer.js';
import { renderHealth } from './health.js';
import { renderTail } from './tail.js';
import { renderUser } from './user.js';
import { currentRoute, h, mount } from './util.js';

const VIEWS = {
  events: ['Events', renderExplorer],
  event: ['Event', renderDetail],
  user: ['User', renderUser],
  tail: ['Live tail', renderTail],
  health: ['Pipeline health', renderHealth],
};
const NAV = ['events', 'user', 'tail', 'health'];
const TENANT_REFRESH_MS = 15000;

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

let tenant = null; // the answer of GET /v1/tenant
let current = null; // the mounted view's AbortController

function showError(e) {
  const what = e instanceof ApiError && e.code ? `${e.message} (${e.code}${e.status ? `, HTTP ${e.status}` : ''})` : String(e.message || e);
  mount(banner, h('p', {}, what), h('button', { type: 'button', class: 'link', onclick: () => { banner.hidden = true; } }, 'Dismiss'));
  banner.hidden = false;
  if (e instanceof ApiError && e.status === 401) signOut('The key was refused. Sign in again.');
}

const ctx = {
  showError,
  watermarkMs: () => (tenant ? tenant.archive_watermark_ms : 0),
  scopes: () => (tenant ? tenant.scopes : []),
  signal: null,
};

function signOut(message) {
  clearKey();
  sessionStorage.removeItem('eventstrata.tail');
  tenant = null;
  renderSignIn(message);
}

function renderSignIn(message) {
  if (current) current.abort();
  current = null;
  nav.hidden = true;
  mount(who);
  document.title = 'Sign in · eventstrata';
  const error = h('p', { class: 'form-error', role: 'alert' }, message || '');
  const input = h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false', placeholder: 'es_…' });
  const form = h('form', { class: 'signin panel', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h('p', {}, 'Paste an API key. It stays in this browser tab only (sessionStorage) and is sent to this server in the Authorization header.'),
    h('label', { for: 'key' }, 'API key'), input,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    error,
    h('p', { class: 'muted' }, 'No key yet? On the stack: ', h('code', {}, 'eventstrata keys create --tenant demo --scope read,ingest,admin')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    error.textContent = '';
    try {
      tenant = await api('/v1/tenant', { key });
    } catch (e) {
      error.textContent = e.message;
      return;
    }
    setKey(key);
    route();
  });
  mount(main, form);
  input.focus();
}

function renderHeader(view) {
  nav.hidden = false;
  mount(nav, h('ul', {}, NAV.map((v) => h('li', {},
    h('a', { href: `#/${v}`, 'aria-current': v === view || (v === 'events' && view === 'event') ? 'page' : null }, VIEWS[v][0])))));
  mount(who, h('span', {}, 'Tenant '), h('strong', { id: 'tenant' }, tenant.tenant),
    h('button', { type: 'button', class: 'link', id: 'signout', onclick: () => signOut('Signed out.') }, 'Sign out'));
}

async function route() {
  if (!getKey()) { renderSignIn(); return; }
  if (!tenant) {
    try {
      tenant = await api('/v1/tenant');
    } catch (e) {
      if (e.status === 401) { signOut('The key was refused. Sign in again.'); return; }
      showError(e);
      mount(main, h('p', { class: 'error-text' }, 'The API did not answer; retry by reloading the page.'));
      return;
    }
  }
  const { view, params } = currentRoute();
  const [title, render] = VIEWS[view] || VIEWS.events;
  if (current) current.abort();
  current = new AbortController();
  ctx.signal = current.signal;
  banner.hidden = true;
  renderHeader(view);
  document.title = `${title} · ${tenant.tenant} · eventstrata`;
  render(main, params, ctx);
}

window.addEventListener('hashchange', route);
setInterval(async () => { // keep the watermark (hot/cold) and the scopes current
  if (!tenant || !getKey()) return;
  try { tenant = await api('/v1/tenant'); } catch { /* the views report errors */ }
}, TENANT_REFRESH_MS);
route();
