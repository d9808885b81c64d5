// The live tail: GET /v1/tail (Server-Sent Events, read over fetch so the key stays in a
// header) with the current filters; newest on top. Pausing closes the stream and keeps the last
// position; resuming reconnects with Last-Event-ID, so nothing in between is lost. The position
// and the rows shown are kept in sessionStorage, so a reload resumes without a gap too.
import { ApiError, sse } from './api.js';
import { eventRow, eventTable } from './explorer.js';
import { filterBar, filterParams } from './filters.js';
import { fmtInt, h, mount, routeHash } from './util.js';

const STATE_ITEM = 'eventstrata.tail';
const MAX_ROWS = 1000;
const KEPT_ROWS = 200;
const RATE_WINDOW_MS = 5000;

function loadState(filters) {
  try {
    const s = JSON.parse(sessionStorage.getItem(STATE_ITEM) || 'null');
    if (s && s.filters === filters) return s;
  } catch { /* a broken item starts afresh */ }
  return { filters, lastId: null, rows: [], paused: false };
}

export function renderTail(main, params, ctx) {
  const filters = filterParams(params);
  const state = loadState(filters.toString());
  const save = () => sessionStorage.setItem(STATE_ITEM, JSON.stringify(state));
  const status = h('span', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const rate = h('output', { class: 'rate', 'aria-label': 'Events per second' }, '0.0 events/s');
  const count = h('output', { class: 'muted', 'data-count': '0' });
  const notices = h('ul', { class: 'notices', role: 'log', 'aria-label': 'Tail notices' });
  const pause = h('button', { type: 'button', class: 'primary', 'aria-pressed': 'false' }, 'Pause');
  const { table, body } = eventTable('Live events, newest first');
  mount(main,
    h('h1', {}, 'Live tail'),
    filterBar(params, { withTime: false, onApply: (p) => { location.hash = routeHash('tail', p); } }),
    h('div', { class: 'table-tools' }, pause, status, rate, count),
    notices,
    h('div', { class: 'table-wrap' }, table));

  let received = 0;
  const arrivals = [];
  const addRow = (e, atTop) => {
    const row = eventRow(e, ctx.watermarkMs());
    if (atTop) body.prepend(row); else body.append(row);
    while (body.rows.length > MAX_ROWS) body.lastElementChild.remove();
  };
  for (const e of state.rows) addRow(e, false);
  const notice = (text) => {
    notices.prepend(h('li', {}, `${new Date().toISOString().slice(11, 19)} ${text}`));
    while (notices.children.length > 5) notices.lastElementChild.remove();
  };
  const ticker = setInterval(() => {
    const now = performance.now();
    while (arrivals.length && arrivals[0] < now - RATE_WINDOW_MS) arrivals.shift();
    rate.textContent = `${(arrivals.length / (RATE_WINDOW_MS / 1000)).toFixed(1)} events/s`;
  }, 1000);

  let stream = null; // the AbortController of the open stream
  const stop = () => { if (stream) { stream.abort(); stream = null; } };
  ctx.signal.addEventListener('abort', () => { stop(); clearInterval(ticker); });

  let generation = 0; // a newer run() ends the older one's loop
  const run = async () => {
    const myGen = ++generation;
    let delay = 500;
    while (!state.paused && !ctx.signal.aborted && generation === myGen) {
      const mine = new AbortController();
      stream = mine;
      status.textContent = state.lastId ? `Resuming after position ${state.lastId}…` : 'Connecting…';
      let again = 1000;
      try {
        for await (const m of sse('/v1/tail', filters, { lastEventId: state.lastId, signal: mine.signal })) {
          delay = 500;
          if (m.event === 'open') {
            status.textContent = 'Live';
          } else if (m.event === 'message') {
            const e = JSON.parse(m.data);
            addRow(e, true);
            state.lastId = m.id;
            state.rows.unshift(e);
            state.rows.length = Math.min(state.rows.length, KEPT_ROWS);
            received += 1;
            arrivals.push(performance.now());
            count.textContent = `${fmtInt(received)} received`;
            count.setAttribute('data-count', String(received));
            save();
            status.textContent = 'Live';
          } else if (m.event === 'heartbeat') {
            if (m.id) { state.lastId = m.id; save(); }
            status.textContent = 'Live';
          } else if (m.event === 'lagged') {
            const d = JSON.parse(m.data);
            notice(`Fell behind at position ${d.position} (newest ${d.head}); catching up from the store, nothing is skipped.`);
          } else if (m.event === 'reconnect') {
            notice('The server is restarting; reconnecting where the tail left off.');
            break;
          } else if (m.event === 'error') {
            const d = JSON.parse(m.data);
            ctx.showError(new ApiError(0, d.error.code, d.error.message));
            state.paused = true;
            break;
          }
        }
      } catch (e) {
        if (e.name === 'AbortError') return;
        const retryable = e.status === 0 || e.status === 429 || e.status >= 500;
        if (!retryable) {
          ctx.showError(e);
          status.textContent = 'Stopped.';
          return;
        }
        notice(`${e.message} Retrying…`);
        again = delay;
        delay = Math.min(delay * 2, 10000);
      } finally {
        if (stream === mine) stream = null;
      }
      if (state.paused || ctx.signal.aborted) break;
      status.textContent = 'Reconnecting…';
      await new Promise((r) => { setTimeout(r, again); });
    }
  };
  const showPaused = () => {
    pause.textContent = state.paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(state.paused));
    if (state.paused) status.textContent = state.lastId ? `Paused after position ${state.lastId}.` : 'Paused.';
  };
  pause.addEventListener('click', () => {
    state.paused = !state.paused;
    save();
    showPaused();
    if (state.paused) stop();
    else {
      if (state.lastId) notice(`Resumed: catching up from position ${state.lastId}.`);
      run();
    }
  });
  showPaused();
  if (!state.paused) run();
}
