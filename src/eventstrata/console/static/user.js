// One user's activity: a timeline grouped by day and session, with exact counts per type.
import { api } from './api.js';
import { RANGES, timeBounds } from './filters.js';
import { eventMs, dayOf, fmtInt, fmtTime, h, mount, routeHash } from './util.js';

const MAX_EVENTS = 1000;

export async function renderUser(main, params, ctx) {
  const userId = params.get('user_id') || '';
  const form = h('form', { class: 'inline-form', 'aria-label': 'Find a user' },
    h('label', { for: 'u-id' }, 'User id'),
    h('input', { id: 'u-id', name: 'user_id', value: userId, autocomplete: 'off', required: true }),
    h('label', { for: 'u-range' }, 'Range'),
    h('select', { id: 'u-range', name: 'range' }, Object.entries(RANGES).map(([v, [label]]) =>
      h('option', { value: v, selected: (params.get('range') || '30d') === v ? true : null }, label))),
    h('button', { type: 'submit', class: 'primary' }, 'Show'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    location.hash = routeHash('user', new URLSearchParams({ user_id: String(d.get('user_id')).trim(), range: String(d.get('range')) }));
  });
  mount(main, h('h1', {}, userId ? `User ${userId}` : 'User'), form);
  if (!userId) {
    main.append(h('p', { class: 'empty' }, 'Type a user id to see their activity, or click a user in the events table.'));
    return;
  }
  const p = new URLSearchParams(params);
  if (!p.get('range')) p.set('range', '30d');
  const [since] = timeBounds(p, Date.now());
  const base = new URLSearchParams({ user_id: userId, since: new Date(since).toISOString() });
  const status = h('p', { role: 'status' }, 'Loading…');
  const summary = h('section', { class: 'panel', 'aria-label': 'Counts per type' });
  const timeline = h('section', { class: 'timeline', 'aria-label': 'Timeline' });
  main.append(status, summary, timeline);
  try {
    const events = [];
    let cursor = null;
    do {
      const q = new URLSearchParams(base);
      q.set('limit', '200');
      if (cursor) q.set('cursor', cursor);
      const page = await api('/v1/events', { params: q, signal: ctx.signal });
      events.push(...page.events);
      cursor = page.next_cursor;
    } while (cursor && events.length < MAX_EVENTS);
    const types = [...new Set(events.map((e) => e.type))].sort();
    const [total, ...perType] = await Promise.all([
      api('/v1/events/count', { params: base, signal: ctx.signal }),
      ...types.slice(0, 50).map((t) => {
        const q = new URLSearchParams(base);
        q.set('type', t);
        return api('/v1/events/count', { params: q, signal: ctx.signal });
      }),
    ]);
    status.textContent = events.length < total.count
      ? `${fmtInt(total.count)} events; the timeline shows the newest ${fmtInt(events.length)}.`
      : `${fmtInt(total.count)} events.`;
    mount(summary, h('h2', {}, 'Events per type'),
      h('table', { class: 'counts' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Events'))),
        h('tbody', {}, types.slice(0, 50).map((t, i) => h('tr', {},
          h('th', { scope: 'row' }, h('a', { href: routeHash('events', new URLSearchParams({ user_id: userId, type: t, range: p.get('range') })) }, t)),
          h('td', { class: 'num' }, fmtInt(perType[i].count)))))));
    if (!events.length) {
      timeline.append(h('p', { class: 'empty' }, 'This user has no events in this range. Try a longer range.'));
      return;
    }
    const days = new Map();
    for (const e of events) {
      const d = dayOf(eventMs(e));
      if (!days.has(d)) days.set(d, new Map());
      const sessions = days.get(d);
      const s = e.session_id || '';
      if (!sessions.has(s)) sessions.set(s, []);
      sessions.get(s).push(e);
    }
    for (const [d, sessions] of days) {
      const n = [...sessions.values()].reduce((a, l) => a + l.length, 0);
      timeline.append(h('h2', {}, `${d} · ${fmtInt(n)} events`),
        ...[...sessions].map(([s, list]) => h('div', { class: 'session' },
          h('h3', {}, s ? `Session ${s}` : 'No session', h('span', { class: 'muted' }, ` · ${list.length} events`)),
          h('ol', { class: 'events-list' }, list.map((e) => h('li', {},
            h('a', { href: routeHash('event', new URLSearchParams({ id: e.id })) },
              h('time', { datetime: new Date(eventMs(e)).toISOString() }, fmtTime(eventMs(e)).slice(11))),
            ` ${e.type}`, e.name ? h('span', { class: 'muted' }, ` ${e.name}`) : null))))));
    }
  } catch (e) {
    if (e.name === 'AbortError') return;
    status.textContent = '';
    ctx.showError(e);
  }
}
