// The events explorer: filter bar, counts chart, and the events table with infinite scroll
// through next_cursor. Every filter lives in the URL (#/events?type=…&range=24h).
import { api } from './api.js';
import { renderChart } from './chart.js';
import { filterBar, filterParams, timeBounds } from './filters.js';
import { eventMs, fmtInt, fmtTime, h, mount, routeHash } from './util.js';

const PAGE = 50;

/** The tier an event is read from: archived events are older than the watermark. */
export function tierOf(ms, watermarkMs) {
  return watermarkMs && ms < watermarkMs ? 'cold' : 'hot';
}

/** One table row; the event id links to its detail, the user to the user view. */
export function eventRow(e, watermarkMs, { showTier = true } = {}) {
  const ms = eventMs(e);
  const user = e.user_id
    ? h('a', { href: routeHash('user', new URLSearchParams({ user_id: e.user_id })) }, e.user_id)
    : h('span', { class: 'muted' }, '—');
  return h('tr', { 'data-id': e.id },
    h('td', {}, h('a', { href: routeHash('event', new URLSearchParams({ id: e.id })), class: 'time-link', title: `event ${e.id}` },
      h('time', { datetime: new Date(ms).toISOString() }, fmtTime(ms)))),
    h('td', {}, e.type),
    h('td', {}, user),
    h('td', {}, e.source || ''),
    h('td', {}, e.format || ''),
    showTier ? h('td', {}, h('span', { class: `tier tier-${tierOf(ms, watermarkMs)}` }, tierOf(ms, watermarkMs))) : null);
}

export function eventTable(caption, { showTier = true } = {}) {
  const body = h('tbody');
  const table = h('table', { class: 'events' },
    h('caption', { class: 'offscreen' }, caption),
    h('thead', {}, h('tr', {},
      ['Time', 'Type', 'User', 'Source', 'Format', showTier ? 'Tier' : null].filter(Boolean)
        .map((t) => h('th', { scope: 'col' }, t)))),
    body);
  return { table, body };
}

/** The publish-a-first-event hint of empty views. */
export function firstEventHint() {
  const origin = location.origin;
  return h('div', { class: 'empty' },
    h('p', {}, 'No events match. Widen the time range or clear the filters — or, if this tenant has no events yet, publish one:'),
    h('pre', {}, `curl -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
  --data '{"type":"signup","user_id":"u1","timestamp":"${new Date().toISOString()}"}' \\
  '${origin}/v1/ingest?format=native'`),
    h('p', { class: 'muted' }, 'The key needs the ingest scope. Events published to Kafka show up here the same way.'));
}

export function renderExplorer(main, params, ctx) {
  const now = Date.now();
  const filters = filterParams(params);
  const [since, until] = timeBounds(params, now);
  const order = params.get('order') === 'asc' ? 'asc' : 'desc';
  const apply = (p) => { location.hash = routeHash('events', p); };
  const zoom = (s, u) => {
    const p = new URLSearchParams(params);
    p.set('range', 'custom');
    p.set('since', new Date(s).toISOString());
    p.set('until', new Date(u).toISOString());
    apply(p);
  };
  const chartBox = h('section', { class: 'panel chart-box', 'aria-label': 'Events over time' }, h('p', { class: 'muted' }, 'Loading counts…'));
  const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const totalOut = h('output', { class: 'total', 'aria-live': 'polite' });
  const { table, body } = eventTable('Events matching the filters');
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'Load more');
  const totalBtn = h('button', { type: 'button' }, 'Exact total');
  const zoomOut = params.get('range') === 'custom'
    ? h('button', { type: 'button', onclick: () => { const p = new URLSearchParams(params); p.set('range', '24h'); p.delete('since'); p.delete('until'); apply(p); } }, 'Back to last 24 hours')
    : null;
  mount(main,
    h('h1', {}, 'Events'),
    filterBar(params, { onApply: apply }),
    chartBox,
    h('div', { class: 'table-tools' }, totalBtn, totalOut, zoomOut, status),
    h('div', { class: 'table-wrap' }, table),
    more);

  const query = new URLSearchParams(filters);
  if (since !== null) query.set('since', new Date(since).toISOString());
  if (until !== null) query.set('until', new Date(until).toISOString());
  const signal = ctx.signal;

  renderChart(chartBox, filters, since ?? now - 86400e3, until ?? now, { onZoom: zoom, signal })
    .catch((e) => { if (e.name !== 'AbortError') mount(chartBox, h('p', { class: 'error-text' }, e.message)); });

  totalBtn.addEventListener('click', async () => {
    totalOut.textContent = 'counting…';
    try {
      const res = await api('/v1/events/count', { params: query, signal });
      totalOut.textContent = `${fmtInt(res.count)} events`;
    } catch (e) {
      if (e.name !== 'AbortError') { totalOut.textContent = ''; ctx.showError(e); }
    }
  });

  let cursor = null;
  let loading = false;
  let done = false;
  let shown = 0;
  const load = async () => {
    if (loading || done) return;
    loading = true;
    status.textContent = 'Loading…';
    const p = new URLSearchParams(query);
    p.set('limit', String(PAGE));
    p.set('order', order);
    if (cursor) p.set('cursor', cursor);
    try {
      const page = await api('/v1/events', { params: p, signal });
      for (const e of page.events) body.append(eventRow(e, ctx.watermarkMs()));
      shown += page.events.length;
      cursor = page.next_cursor;
      done = !cursor;
      more.hidden = done;
      status.textContent = done ? `${fmtInt(shown)} events shown — the end.` : `${fmtInt(shown)} events shown.`;
      if (shown === 0 && done) table.replaceWith(firstEventHint());
    } catch (e) {
      if (e.name === 'AbortError') return;
      status.textContent = '';
      ctx.showError(e);
    } finally {
      loading = false;
    }
    // keep filling while the end of the table is on screen (a tall window, a sparse filter)
    if (!done && more.getBoundingClientRect().top < window.innerHeight + 200) load();
  };
  more.addEventListener('click', load);
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((en) => en.isIntersecting)) load();
  }, { rootMargin: '200px' });
  observer.observe(more);
  signal.addEventListener('abort', () => observer.disconnect());
  load();
}
