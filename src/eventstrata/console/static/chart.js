// The counts chart: one bar per time bucket of GET /v1/events/count over the current filter.
// Click a bar to zoom to its bucket, drag across bars to zoom to their span.
import { api } from './api.js';
import { h, mount, fmtInt } from './util.js';

const BUCKETS = [['1m', 60e3], ['1h', 3600e3], ['1d', 86400e3]];
const MAX_BARS = 500;

/** The bucket name and width for a span of ms: the finest with at most MAX_BARS bars. */
export function bucketFor(spanMs) {
  for (const [name, ms] of BUCKETS) if (spanMs / ms <= MAX_BARS) return [name, ms];
  return BUCKETS[BUCKETS.length - 1];
}

function label(ms, width) {
  const iso = new Date(ms).toISOString();
  return width >= 86400e3 ? iso.slice(5, 10) : width >= 3600e3 ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

/**
 * Render the chart of `filters` (URLSearchParams of API filters) over [since, until) into
 * `el`. `onZoom(since, until)` is called with the chosen span in ms. Resolves the bucket
 * answer; rejects with the API's error.
 */
export async function renderChart(el, filters, since, until, { onZoom, signal }) {
  const [bucket, width] = bucketFor(until - since);
  const params = new URLSearchParams(filters);
  params.set('since', new Date(since).toISOString());
  params.set('until', new Date(until).toISOString());
  params.set('bucket', bucket);
  const res = await api('/v1/events/count', { params, signal });
  const buckets = res.buckets || [];
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const W = 1000;
  const H = 140;
  const bw = W / Math.max(1, buckets.length);
  const bars = [];
  let dragFrom = null;
  let dragTo = null;
  const svg = h('svg:svg', {
    viewBox: `0 0 ${W} ${H + 20}`, class: 'chart', role: 'img', tabindex: '0',
    'aria-label': `Events per ${bucket}: ${fmtInt(res.count)} in all, at most ${fmtInt(max)} in one ${bucket}. `
      + 'Arrow keys choose a bar, Shift with an arrow widens the choice, Enter zooms to it.',
  });
  // mark bars a..b (either order) as selected; none when a is null
  const showRange = (a, b) => {
    const lo = Math.min(a ?? -1, b ?? -1);
    const hi = Math.max(a ?? -1, b ?? -1);
    bars.forEach((x, i) => x.classList.toggle('selected', a !== null && i >= lo && i <= hi));
  };
  const highlight = () => showRange(dragFrom, dragTo);
  buckets.forEach((b, i) => {
    const hgt = b.count ? Math.max(2, (b.count / max) * H) : 0;
    const start = Date.parse(b.start);
    const rect = h('svg:rect', {
      x: (i * bw).toFixed(2), y: (H - hgt).toFixed(2), width: Math.max(1, bw - 1).toFixed(2), height: hgt.toFixed(2),
      class: 'bar', 'data-start': b.start, 'data-count': b.count,
    }, h('svg:title', {}, `${label(start, width)}: ${fmtInt(b.count)}`));
    // a transparent full-height hit area so empty buckets can be clicked and dragged too
    const hit = h('svg:rect', { x: (i * bw).toFixed(2), y: 0, width: bw.toFixed(2), height: H, class: 'hit', 'data-index': i });
    bars.push(rect);
    svg.append(rect, hit);
  });
  const ticks = Math.min(6, buckets.length);
  for (let t = 0; t < ticks; t += 1) {
    const i = Math.floor((t * buckets.length) / ticks);
    svg.append(h('svg:text', { x: (i * bw + 2).toFixed(2), y: H + 15, class: 'tick' }, label(Date.parse(buckets[i].start), width)));
  }
  const indexAt = (ev) => {
    const t = ev.target.closest ? ev.target.closest('[data-index]') : null;
    return t ? Number(t.getAttribute('data-index')) : null;
  };
  svg.addEventListener('pointerdown', (ev) => {
    const i = indexAt(ev);
    if (i === null) return;
    ev.preventDefault();
    dragFrom = i;
    dragTo = i;
    highlight();
  });
  svg.addEventListener('pointerover', (ev) => {
    if (dragFrom === null) return;
    const i = indexAt(ev);
    if (i !== null) { dragTo = i; highlight(); }
  });
  const finish = (ev) => {
    if (dragFrom === null) return;
    const i = indexAt(ev);
    if (i !== null) dragTo = i;
    const lo = Math.min(dragFrom, dragTo);
    const hi = Math.max(dragFrom, dragTo);
    dragFrom = null;
    highlight();
    onZoom(Date.parse(buckets[lo].start), Date.parse(buckets[hi].start) + width);
  };
  svg.addEventListener('pointerup', finish);
  // the keyboard's way to zoom: a cursor bar (and an anchor with Shift), Enter zooms
  let anchor = null;
  let cursor = null;
  svg.addEventListener('keydown', (ev) => {
    const n = buckets.length;
    if (!n) return;
    if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
      ev.preventDefault();
      const step = ev.key === 'ArrowLeft' ? -1 : 1;
      cursor = cursor === null ? (step > 0 ? 0 : n - 1) : Math.min(n - 1, Math.max(0, cursor + step));
      if (!ev.shiftKey || anchor === null) anchor = cursor;
      showRange(anchor, cursor);
      status.textContent = `${label(Date.parse(buckets[Math.min(anchor, cursor)].start), width)} to `
        + `${label(Date.parse(buckets[Math.max(anchor, cursor)].start) + width, width)}: `
        + `${fmtInt(buckets.slice(Math.min(anchor, cursor), Math.max(anchor, cursor) + 1).reduce((a, b) => a + b.count, 0))} events`;
    } else if (ev.key === 'Enter' && cursor !== null) {
      ev.preventDefault();
      onZoom(Date.parse(buckets[Math.min(anchor, cursor)].start), Date.parse(buckets[Math.max(anchor, cursor)].start) + width);
    }
  });
  const status = h('p', { class: 'muted chart-status', role: 'status', 'aria-live': 'polite' });
  svg.addEventListener('pointerleave', () => { if (dragFrom !== null) { dragFrom = null; highlight(); } });
  mount(el,
    h('div', { class: 'chart-head' },
      h('span', {}, `${fmtInt(res.count)} events, per ${bucket === '1m' ? 'minute' : bucket === '1h' ? 'hour' : 'day'}`),
      h('span', { class: 'muted' }, ` · peak ${fmtInt(max)} · click a bar or drag across bars to zoom`)),
    svg, status);
  return res;
}
