// One event: its native JSON and the same event in each vendor's shape (the compatible
// endpoints' renderers, through GET /v1/events/{id}?format=…), with copy buttons.
import { api } from './api.js';
import { tierOf } from './explorer.js';
import { copyText, eventMs, fmtTime, h, mount, routeHash } from './util.js';

/** [format, label]: 'api' is the event as GET /v1/events/{id} answers it; the others are the
 * compatible endpoints' shapes (?format=…). */
export const RENDERINGS = [
  ['api', 'Event JSON'],
  ['trieve', 'Trieve'],
  ['thisdata', 'ThisData'],
  ['fluidtopics', 'Fluid Topics'],
  ['eventstore', 'Event store'],
];

export async function renderDetail(main, params, ctx) {
  const id = params.get('id') || '';
  mount(main, h('h1', {}, 'Event'), h('p', { role: 'status' }, 'Loading…'));
  const path = `/v1/events/${encodeURIComponent(id)}`;
  let event;
  try {
    event = await api(path, { signal: ctx.signal });
  } catch (e) {
    if (e.name === 'AbortError') return;
    mount(main, h('h1', {}, 'Event'), h('p', { class: 'error-text' }, e.message),
      h('p', {}, h('a', { href: '#/events' }, 'Back to the events')));
    return;
  }
  const ms = eventMs(event);
  const facts = [
    ['Id', event.id], ['Type', event.type], ['Time', fmtTime(ms)], ['Format', event.format],
    ['User', event.user_id ? h('a', { href: routeHash('user', new URLSearchParams({ user_id: event.user_id })) }, event.user_id) : '—'],
    ['Source', event.source || '—'], ['Session', event.session_id || '—'],
    ['Stream', event.stream_id || '—'],
    ['Stream position', event.stream_position ?? '—'], ['Global position', event.global_position ?? '—'],
    ['Tier', tierOf(ms, ctx.watermarkMs())],
  ];
  const cache = new Map([['api', event]]);
  const pre = h('pre', { class: 'json', id: 'rendering', tabindex: '0', role: 'tabpanel' });
  const copied = h('span', { class: 'muted', role: 'status', 'aria-live': 'polite' });
  const tabs = RENDERINGS.map(([fmt, label]) => h('button', {
    type: 'button', role: 'tab', id: `tab-${fmt}`, 'aria-controls': 'rendering', 'data-format': fmt,
    'aria-selected': 'false', tabindex: '-1',
  }, label));
  const select = async (i, focus) => {
    const [fmt] = RENDERINGS[i];
    tabs.forEach((t, j) => { t.setAttribute('aria-selected', String(i === j)); t.tabIndex = i === j ? 0 : -1; });
    if (focus) tabs[i].focus();
    pre.setAttribute('aria-labelledby', tabs[i].id);
    copied.textContent = '';
    if (!cache.has(fmt)) {
      pre.textContent = 'Loading…';
      try {
        cache.set(fmt, await api(path, { params: { format: fmt }, signal: ctx.signal }));
      } catch (e) {
        if (e.name !== 'AbortError') pre.textContent = e.message;
        return;
      }
    }
    if (tabs[i].getAttribute('aria-selected') === 'true') pre.textContent = JSON.stringify(cache.get(fmt), null, 2);
  };
  tabs.forEach((t, i) => {
    t.addEventListener('click', () => select(i, false));
    t.addEventListener('keydown', (ev) => {
      const n = RENDERINGS.length;
      const to = { ArrowRight: (i + 1) % n, ArrowLeft: (i + n - 1) % n, Home: 0, End: n - 1 }[ev.key];
      if (to !== undefined) { ev.preventDefault(); select(to, true); }
    });
  });
  const copy = h('button', {
    type: 'button',
    onclick: async () => { copied.textContent = (await copyText(pre.textContent)) ? 'Copied.' : 'Copy failed.'; },
  }, 'Copy JSON');
  mount(main,
    h('p', {}, h('a', { href: '#/events', onclick: (ev) => { if (history.length > 1) { ev.preventDefault(); history.back(); } } }, '← Back')),
    h('h1', {}, `Event ${event.type}`),
    h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('h2', { id: 'renderings-title' }, 'Renderings'),
    h('div', { role: 'tablist', 'aria-labelledby': 'renderings-title', class: 'tabs' }, tabs),
    h('div', { class: 'copy-row' }, copy, copied),
    pre);
  select(0, false);
}
