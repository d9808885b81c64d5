// Small DOM and formatting helpers. Every string goes into the page as text (never as HTML).

/** Build an element: h('a', {href: '#/'}, 'text', child, ...). `on*` attributes add listeners;
 * `class`, `for` and `aria-*`/`data-*`/`role` are set as attributes; false/null are skipped. */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && !svg) el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'hidden') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Milliseconds since the epoch as "2026-12-07 10:04:05.123 UTC". */
export function fmtTime(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '';
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)} UTC`;
}

/** "2026-12-07" of a time in ms (UTC). */
export function dayOf(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

/** 1234567 -> "1,234,567". */
export function fmtInt(n) {
  return Number(n).toLocaleString('en-US');
}

/** An event's time in ms: the API's `timestamp_ms`, else its ISO `timestamp`. */
export function eventMs(e) {
  return typeof e.timestamp_ms === 'number' ? e.timestamp_ms : Date.parse(e.timestamp);
}

/** The view and its parameters from location.hash ("#/events?type=a&type=b"). */
export function currentRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const view = (q < 0 ? raw : raw.slice(0, q)) || 'events';
  return { view, params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

/** The hash of a view with parameters. */
export function routeHash(view, params) {
  const qs = params ? params.toString() : '';
  return `#/${view}${qs ? `?${qs}` : ''}`;
}

/** Copy text to the clipboard; resolves true on success. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { class: 'offscreen', 'aria-hidden': 'true' }, text);
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}
