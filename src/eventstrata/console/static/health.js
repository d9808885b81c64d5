// Pipeline health for the tenant: ingest rate and consumer lag (GET /v1/admin/pipeline), dead
// letters by error code with the latest ones and their original bytes (GET
// /v1/admin/dead-letters), the archive watermark and the hot/cold split (GET /v1/admin/archive,
// GET /v1/events/count). Needs a key with the admin scope. Refreshes every few seconds.
import { api } from './api.js';
import { fmtInt, fmtTime, h, mount } from './util.js';

const REFRESH_MS = 3000;
const LETTERS_EVERY = 5; // dead letters every 15 s

function stat(label, value, id) {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-label', id: `${id}-label` }, label),
    h('output', { class: 'stat-value', id, 'aria-labelledby': `${id}-label` }, value));
}

export function renderHealth(main, params, ctx) {
  if (!ctx.scopes().includes('admin')) {
    mount(main, h('h1', {}, 'Pipeline health'),
      h('p', { class: 'empty' }, 'This view needs a key with the admin scope (its tenant\'s dead letters, lag and archive). ',
        'Create one on the stack with `eventstrata keys create --tenant <tenant> --scope read,admin` and sign in with it.'));
    return;
  }
  const pipeline = h('section', { class: 'panel', 'aria-labelledby': 'h-pipeline' }, h('h2', { id: 'h-pipeline' }, 'Ingest'), h('p', {}, 'Loading…'));
  const tiers = h('section', { class: 'panel', 'aria-labelledby': 'h-tiers' }, h('h2', { id: 'h-tiers' }, 'Hot and cold tiers'), h('p', {}, 'Loading…'));
  const dlq = h('section', { class: 'panel', 'aria-labelledby': 'h-dlq' }, h('h2', { id: 'h-dlq' }, 'Dead letters'), h('p', {}, 'Loading…'));
  const letter = h('section', { class: 'panel', 'aria-labelledby': 'h-letter', hidden: true });
  const refresh = h('button', { type: 'button' }, 'Refresh now');
  const updated = h('span', { class: 'muted', role: 'status' });
  mount(main, h('h1', {}, 'Pipeline health'), h('div', { class: 'table-tools' }, refresh, updated),
    h('div', { class: 'health-grid' }, pipeline, tiers), dlq, letter);

  let last = null; // the previous pipeline answer, for the rate
  let rate = null;
  const signal = ctx.signal;
  const fail = (section, title, id, e) => {
    if (e.name === 'AbortError') return;
    mount(section, h('h2', { id }, title), h('p', { class: 'error-text' }, e.message));
  };

  const showLetter = async (l) => {
    letter.hidden = false;
    mount(letter, h('h2', { id: 'h-letter' }, `Dead letter ${l.partition}@${l.offset}`), h('p', {}, 'Loading…'));
    try {
      const d = await api(`/v1/admin/dead-letters/${l.partition}/${l.offset}`, { signal });
      mount(letter, h('h2', { id: 'h-letter' }, `Dead letter ${l.partition}@${l.offset}`),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Error'), h('dd', {}, `${d.code}: ${d.message}`),
          h('dt', {}, 'Time'), h('dd', {}, d.time || ''),
          h('dt', {}, 'Source'), h('dd', {}, d.source || '')),
        h('h3', {}, 'Original bytes'), h('pre', { class: 'json', tabindex: '0', 'aria-label': 'Original bytes' }, d.value ?? ''));
      letter.scrollIntoView({ block: 'nearest' });
    } catch (e) { fail(letter, 'Dead letter', 'h-letter', e); }
  };

  const loadPipeline = async () => {
    try {
      const p = await api('/v1/admin/pipeline', { signal });
      if (last && p.time_ms > last.time_ms) {
        rate = ((p.global_position - last.global_position) * 1000) / (p.time_ms - last.time_ms);
      }
      last = p;
      mount(pipeline, h('h2', { id: 'h-pipeline' }, 'Ingest'),
        h('div', { class: 'stats' },
          stat('Stored events per second', rate === null ? 'measuring…' : rate.toFixed(1), 'stat-rate'),
          stat('Events stored (global position)', fmtInt(p.global_position), 'stat-position'),
          stat('Consumer lag (all tenants)', fmtInt(p.lag), 'stat-lag')),
        h('table', { class: 'counts' },
          h('caption', {}, `Topic ${p.topic}, consumer group ${p.consumer_group}`),
          h('thead', {}, h('tr', {}, ['Partition', 'Committed', 'End', 'Lag'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, p.partitions.map((x) => h('tr', {},
            h('th', { scope: 'row' }, String(x.partition)), h('td', { class: 'num' }, x.committed === null ? '—' : fmtInt(x.committed)),
            h('td', { class: 'num' }, fmtInt(x.end)), h('td', { class: 'num' }, fmtInt(x.lag)))))));
    } catch (e) { fail(pipeline, 'Ingest', 'h-pipeline', e); }
  };

  const loadTiers = async () => {
    try {
      const a = await api('/v1/admin/archive', { signal });
      const w = a.watermark_ms || 0;
      const [hot, cold] = await Promise.all([
        api('/v1/events/count', { params: w ? { since: new Date(w).toISOString() } : {}, signal }),
        w ? api('/v1/events/count', { params: { until: new Date(w).toISOString() }, signal }) : Promise.resolve({ count: 0 }),
      ]);
      mount(tiers, h('h2', { id: 'h-tiers' }, 'Hot and cold tiers'),
        h('div', { class: 'stats' },
          stat('Archive watermark', w ? fmtTime(w) : 'nothing archived yet', 'stat-watermark'),
          stat('Hot events (Redis)', fmtInt(hot.count), 'stat-hot'),
          stat('Cold events (Parquet)', fmtInt(cold.count), 'stat-cold')),
        h('p', { class: 'muted' }, `${fmtInt(a.files)} archive files, ${fmtInt(a.bytes)} bytes; ${fmtInt(a.hot_windows)} hot windows not yet archived.`));
    } catch (e) { fail(tiers, 'Hot and cold tiers', 'h-tiers', e); }
  };

  const loadLetters = async () => {
    try {
      const d = await api('/v1/admin/dead-letters', { params: { limit: '20' }, signal });
      const codes = Object.entries(d.counts).sort((a, b) => b[1] - a[1]);
      const newest = [...d.dead_letters].reverse();
      mount(dlq, h('h2', { id: 'h-dlq' }, 'Dead letters'),
        codes.length === 0
          ? h('p', { class: 'empty' }, 'No dead letters: every event this tenant published was stored.')
          : [
            h('table', { class: 'counts', id: 'dlq-counts' },
              h('caption', {}, 'Dead letters per error code (among the newest 10,000 of each DLQ partition)'),
              h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Code'), h('th', { scope: 'col' }, 'Letters'))),
              h('tbody', {}, codes.map(([c, n]) => h('tr', {}, h('th', { scope: 'row' }, c), h('td', { class: 'num' }, fmtInt(n)))))),
            h('table', { class: 'events', id: 'dlq-latest' },
              h('caption', {}, 'Latest dead letters'),
              h('thead', {}, h('tr', {}, ['Time', 'Code', 'Reason', 'Position'].map((t) => h('th', { scope: 'col' }, t)))),
              h('tbody', {}, newest.map((l) => h('tr', { 'data-code': l.code },
                h('td', {}, l.time || ''), h('td', {}, l.code), h('td', {}, l.message),
                h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => showLetter(l) }, `${l.partition}@${l.offset}`)))))),
          ]);
    } catch (e) { fail(dlq, 'Dead letters', 'h-dlq', e); }
  };

  // the dead letters are read from the DLQ topic on every request (a Kafka client of the API):
  // every LETTERS_EVERY-th refresh, and on "Refresh now"
  let tick = 0;
  const all = async (letters) => {
    await Promise.all([loadPipeline(), loadTiers(), letters ? loadLetters() : null]);
    if (!signal.aborted) updated.textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC`;
  };
  refresh.addEventListener('click', () => all(true));
  let timer = null;
  const loop = async () => {
    await all(tick % LETTERS_EVERY === 0);
    tick += 1;
    if (!signal.aborted) timer = setTimeout(loop, REFRESH_MS);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  loop();
}
