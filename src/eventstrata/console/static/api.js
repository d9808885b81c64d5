// The console's only way to the server: the public HTTP API, with the signed-in key.
// The key lives in sessionStorage (this tab only), is sent as `Authorization: Bearer`, and
// never goes into a URL or a cookie.

const KEY_ITEM = 'eventstrata.key';

export function getKey() { return sessionStorage.getItem(KEY_ITEM); }
export function setKey(key) { sessionStorage.setItem(KEY_ITEM, key); }
export function clearKey() { sessionStorage.removeItem(KEY_ITEM); }

/** An error answered by the API (its envelope's code and message) or a network failure
 * (status 0, code "network"). */
export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function headers(key, extra = {}) {
  return { Authorization: `Bearer ${key ?? getKey() ?? ''}`, Accept: 'application/json', ...extra };
}

async function failure(resp) {
  const text = await resp.text();
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON: shown as text */ }
  const err = body && body.error;
  if (err && typeof err.message === 'string') {
    return new ApiError(resp.status, err.code || `http_${resp.status}`, err.message, err.details || []);
  }
  return new ApiError(resp.status, `http_${resp.status}`, text.trim() || resp.statusText || `HTTP ${resp.status}`);
}

function networkError(e) {
  return new ApiError(0, 'network', `The API could not be reached (${e.message}).`);
}

/** GET (or `method`) `path` with `params` (URLSearchParams or object); resolves the JSON
 * answer, rejects with ApiError (or an AbortError when `signal` aborts). */
export async function api(path, { params, method = 'GET', signal, key } = {}) {
  const qs = params ? new URLSearchParams(params).toString() : '';
  let resp;
  try {
    resp = await fetch(qs ? `${path}?${qs}` : path, { method, headers: headers(key), signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw networkError(e);
  }
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

/** Server-Sent Events from `path` over fetch (an EventSource cannot send the key in a
 * header). Yields {event: 'open'} once the server accepted the stream, then {event, data, id}
 * per message; `lastEventId` resumes after that position.
 * Ends when the server closes the stream; rejects with ApiError before the stream starts. */
export async function* sse(path, params, { lastEventId, signal } = {}) {
  const extra = { Accept: 'text/event-stream' };
  if (lastEventId) extra['Last-Event-ID'] = String(lastEventId);
  const qs = new URLSearchParams(params).toString();
  let resp;
  try {
    resp = await fetch(qs ? `${path}?${qs}` : path, { headers: headers(null, extra), signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw networkError(e);
  }
  if (!resp.ok) throw await failure(resp);
  yield { event: 'open', data: '', id: null };
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let event = '';
  let data = [];
  let id = null;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw networkError(e);
    }
    if (chunk.done) return;
    buf += chunk.value;
    let nl;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (data.length) yield { event: event || 'message', data: data.join('\n'), id };
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id' && !value.includes('\0')) id = value;
    }
  }
}
