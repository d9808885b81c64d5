// The filters of GET /v1/events (docs/API.md, "Filters"), as the console's filter bar shows
// them. The names are the API's query parameters; a unit test checks them against the server's.
import { h } from './util.js';

/** Every filter of the events API except the time range and data/metadata paths. `many`: a
 * repeatable parameter, typed as a comma-separated list. */
export const FILTERS = [  // `more`: shown under "More filters" (opened when one is set)
  { name: 'user_id', label: 'User ids', many: true },
  { name: 'type', label: 'Types', many: true },
  { name: 'exclude_type', label: 'Exclude types', many: true },
  { name: 'name', label: 'Names', many: true },
  { name: 'id', more: true, label: 'Event ids', many: true },
  { name: 'source', label: 'Source' },
  { name: 'session_id', more: true, label: 'Session' },
  { name: 'stream_id', more: true, label: 'Stream' },
  { name: 'transaction_id', more: true, label: 'Transaction' },
  { name: 'store', more: true, label: 'Event store' },
  { name: 'is_conversion', more: true, label: 'Conversion', choices: [['', 'any'], ['true', 'conversions'], ['false', 'not conversions']] },
  { name: 'realm', more: true, label: 'Realms', many: true },
  { name: 'group', more: true, label: 'Groups', many: true },
  { name: 'role', more: true, label: 'Roles', many: true },
];

/** Time-range presets: URL value -> [label, milliseconds]. */
export const RANGES = {
  '1h': ['Last hour', 3600e3],
  '24h': ['Last 24 hours', 86400e3],
  '7d': ['Last 7 days', 7 * 86400e3],
  '30d': ['Last 30 days', 30 * 86400e3],
  '90d': ['Last 90 days', 90 * 86400e3],
};
export const DEFAULT_RANGE = '24h';

const PATH_RE = /^(data|metadata)\.[^=]+$/;

/** Whether a URL parameter is an API filter (as opposed to the console's own state). */
export function isFilterParam(name) {
  return FILTERS.some((f) => f.name === name) || PATH_RE.test(name);
}

/** The API filter parameters of the console's URL parameters (path filters included). */
export function filterParams(params) {
  const out = new URLSearchParams();
  for (const [k, v] of params) if (isFilterParam(k) && v !== '') out.append(k, v);
  return out;
}

/** [since, until] in ms for the URL's range: a preset relative to `now`, or `since`/`until`
 * (ISO) when range=custom. `until` is null for a preset (open to the future). */
export function timeBounds(params, now) {
  const range = params.get('range') || DEFAULT_RANGE;
  if (range === 'custom') {
    const since = Date.parse(params.get('since') || '');
    const until = Date.parse(params.get('until') || '');
    return [Number.isNaN(since) ? null : since, Number.isNaN(until) ? null : until];
  }
  const span = (RANGES[range] || RANGES[DEFAULT_RANGE])[1];
  return [now - span, null];
}

/** `datetime-local` input value (UTC) of ms, and back. */
function toLocalInput(ms) { return ms === null ? '' : new Date(ms).toISOString().slice(0, 16); }
function fromLocalInput(v) { return v ? Date.parse(`${v}:00Z`) : null; }

/**
 * The filter bar: a form with every filter, data/metadata path filters (one `data.a.b=value`
 * per line) and, unless `withTime` is false, the time range. `onApply(params)` gets the new
 * URL parameters (filters + range) when the form is submitted.
 */
export function filterBar(params, { withTime = true, onApply }) {
  const field = (f) => {
    const id = `f-${f.name}`;
    const values = params.getAll(f.name);
    const input = f.choices
      ? h('select', { id, name: f.name },
        f.choices.map(([v, label]) => h('option', { value: v, selected: values[0] === v ? true : null }, label)))
      : h('input', { id, name: f.name, type: 'text', value: f.many ? values.join(', ') : (values[0] || ''),
        autocomplete: 'off', placeholder: f.many ? 'a, b' : '' });
    return h('div', { class: 'field' }, h('label', { for: id }, f.label), input);
  };
  const fields = FILTERS.filter((f) => !f.more).map(field);
  const moreSet = FILTERS.some((f) => f.more && params.getAll(f.name).some((v) => v !== ''));
  const paths = [...params].filter(([k]) => PATH_RE.test(k)).map(([k, v]) => `${k}=${v}`).join('\n');
  const pathArea = h('textarea', { id: 'f-paths', name: 'paths', rows: 2, placeholder: 'data.plan=pro', spellcheck: 'false' }, paths);
  const timeFields = [];
  if (withTime) {
    const range = params.get('range') || DEFAULT_RANGE;
    const [since, until] = timeBounds(params, Date.now());
    const custom = h('div', { class: 'custom-range', hidden: range !== 'custom' },
      h('div', { class: 'field' }, h('label', { for: 'f-since' }, 'From (UTC)'),
        h('input', { id: 'f-since', name: 'since', type: 'datetime-local', value: range === 'custom' ? toLocalInput(since) : '' })),
      h('div', { class: 'field' }, h('label', { for: 'f-until' }, 'To (UTC)'),
        h('input', { id: 'f-until', name: 'until', type: 'datetime-local', value: range === 'custom' ? toLocalInput(until) : '' })));
    const select = h('select', {
      id: 'f-range', name: 'range',
      onchange: (ev) => { custom.hidden = ev.target.value !== 'custom'; },
    }, Object.entries(RANGES).map(([v, [label]]) => h('option', { value: v, selected: v === range ? true : null }, label)),
    h('option', { value: 'custom', selected: range === 'custom' ? true : null }, 'Custom range'));
    const order = h('select', { id: 'f-order', name: 'order' },
      h('option', { value: 'desc', selected: params.get('order') !== 'asc' ? true : null }, 'Newest first'),
      h('option', { value: 'asc', selected: params.get('order') === 'asc' ? true : null }, 'Oldest first'));
    timeFields.push(h('div', { class: 'field' }, h('label', { for: 'f-range' }, 'Time range'), select), custom,
      h('div', { class: 'field' }, h('label', { for: 'f-order' }, 'Order'), order));
  }
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h('form', { class: 'filters', 'aria-label': 'Filters' },
    h('div', { class: 'filter-grid' }, timeFields, fields,
      h('div', { class: 'field wide' }, h('label', { for: 'f-paths' }, 'Data / metadata equals (one per line)'), pathArea)),
    h('details', { class: 'more-filters', open: moreSet ? true : null }, h('summary', {}, 'More filters'),
      h('div', { class: 'filter-grid' }, FILTERS.filter((f) => f.more).map(field))),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply filters'),
      h('button', { type: 'button', onclick: () => onApply(new URLSearchParams(withTime ? { range: DEFAULT_RANGE } : {})) }, 'Clear')),
    error);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const out = new URLSearchParams();
    const data = new FormData(form);
    if (withTime) {
      const range = data.get('range');
      out.set('range', range);
      if (data.get('order') === 'asc') out.set('order', 'asc');
      if (range === 'custom') {
        const s = fromLocalInput(data.get('since'));
        const u = fromLocalInput(data.get('until'));
        if (s !== null) out.set('since', new Date(s).toISOString());
        if (u !== null) out.set('until', new Date(u).toISOString());
      }
    }
    for (const f of FILTERS) {
      const raw = String(data.get(f.name) || '').trim();
      if (!raw) continue;
      if (f.many) raw.split(',').map((s) => s.trim()).filter(Boolean).forEach((v) => out.append(f.name, v));
      else out.set(f.name, raw);
    }
    for (const line of String(data.get('paths') || '').split('\n')) {
      const t = line.trim();
      if (!t) continue;
      const eq = t.indexOf('=');
      const key = eq < 0 ? '' : t.slice(0, eq).trim();
      if (!PATH_RE.test(key)) {
        error.textContent = `"${t}" is not a data or metadata filter: write data.<path>=<value>.`;
        return;
      }
      out.append(key, t.slice(eq + 1).trim());
    }
    error.textContent = '';
    onApply(out);
  });
  return form;
}
