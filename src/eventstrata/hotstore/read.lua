#!lua flags=no-writes
-- eventstrata hot-tier reads: every read of stored events is one call of this script.
--
-- KEYS[1] = <base>:ib  (declared so the call is routed to the tenant's Cluster slot, or a shard's)
-- ARGV[1] = <base>      ("<prefix>:{<tenant>}"; every key read shares the {tenant} hash tag)
-- ARGV[2] = the operation: 'scan', 'ids', 'seq' or 'count' (below)
--
-- Key names and members are those of keys.py (its docstring is the layout): every member
-- starts with the escaped id (NUL -> NUL 0x01) and NUL NUL; a body member continues
-- "<t>|gpos|spos|<body>", a short member (t:) with the user part "<u>", a position's value
-- in its seq block is "<u>|ts" (its body member is the one holding the position), an id's
-- value in its id bucket "gpos|spos". A row of stored event is returned as four values: its
-- time (integer), its id, its ref "ts|gpos|spos" and its stored body (nil when the body is
-- absent).
--
-- scan: the events of one index family in [lo, hi), in time order, strictly after a cursor.
--   ARGV[3]  '1': first read W = GET <base>:wm (0 when absent) and clamp lo at it; '' no
--   ARGV[4]  lo (ms, inclusive)          ARGV[5] hi (ms, exclusive; '' = none)
--   ARGV[6]  'asc' | 'desc'              ARGV[7] cursor time ('' = none)
--   ARGV[8]  cursor id, escaped, with the terminator ('' = none)
--   ARGV[9]  limit: most rows returned   ARGV[10] most members examined per 'ut' source
--   ARGV[11] '1': GET <base>:wm (0 when absent) after every read; '' no
--   ARGV[12] family: 'u' (users), 'ut' (user and type pairs), 't' (types), 'a' (every event)
--   ARGV[13] number of sources, then their parts: one user / type part each ('u', 't'), a
--            user part and a type part each ('ut'), none ('a').
--   The sets read are those of the days the days registry lists in the range: a user's sets
--   of each day (u:<u>:D and the later starts the registry <base>:us lists under "<u>:<D>",
--   those whose time range meets the read's), the type's index sets (an hour) of each day; for
--   every event of the tenant,
--   the type sets of each hour that the hour's types registry (ty:<hour>) lists, merged.
--   Returns W (or ''),
--   the row count n, complete (1 when nothing in range follows the last row), the boundary
--   time and id (when not complete: every event up to it is returned, continue after it),
--   the n rows, then W read last (or '' when not asked).
-- ids: stored events by id.  ARGV[3] = a string key to GET after the reads ('' = none), then
--   the ids. Returns per id its time and its body member (nil, nil when absent), then the
--   value of ARGV[3] (nil when absent or not asked for).
-- seq: events by global position, from the seq blocks (q:<B>, listed in qb). ARGV[3] = read
--   strictly after this position ('' = from the start), ARGV[4] = 'asc' | 'desc', ARGV[5] =
--   limit, ARGV[6], ARGV[7] = least and greatest position ('' = none). Returns the number of
--   positions read m (fewer than the limit: there are no more), then per position the
--   position, the escaped id with its terminator ('' when its body is absent), and its row.
--   ARGV[8] = '1' (a sharded tenant, whose bodies are in its shards): positions above C (the
--   confirmed ones, write.lua) are not read, and per position its placement "<u>|ts" is
--   returned instead of the escaped id and the row.
-- locate: (a sharded tenant) the ids ARGV[3..]: per id its placement "<u>|ts" (nil: absent).
-- bodies: (a shard) triples ARGV[3..] of user part, time and either 'e' .. escaped id with its
--   terminator or 'g' .. global position: per triple the body member (nil: absent).
-- count: ARGV[3] '1': clamp lo at W (read before the counts; '' no), ARGV[4] lo, ARGV[5] hi
--   ('' none), ARGV[6] bucket size in ms ('' = a total only), ARGV[7] family, ARGV[8] number of
--   sources, then the parts (as for scan). Returns W (the script is atomic: W as the counts
--   saw it), the total, then (bucket start, count) pairs ascending.
--
-- Reads only; a script runs atomically, so the archiver cannot move W or remove events
-- between the reads of one call.

local base = ARGV[1]
local op = ARGV[2]
local t_pre, y_pre = base .. ':t:', base .. ':ty:'
local usets = user_sets(base)

-- byte-wise a < b (the order Redis gives members of equal score)
local function lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

local function esc_of(id)
  if string.find(id, '\0', 1, true) then
    return string.gsub(id, '%z', '\0\1') .. '\0\0'
  end
  return id .. '\0\0'
end

local function unesc(e)  -- escaped id with its terminator -> id
  local raw = string.sub(e, 1, #e - 2)
  if string.find(raw, '\0', 1, true) then
    return (string.gsub(raw, '%z\1', '\0'))
  end
  return raw
end

-- the prefix (escaped id + terminator) of a member
local function prefix(m)
  local p = string.find(m, '\0\0', 1, true)
  return string.sub(m, 1, p + 1), p + 2
end

-- the body member of the event with escaped id e of user u at time ts_s (its score as a
-- string), or nil
local function body_at(u, ts_s, e)
  local n_e = #e
  for _, m in ipairs(redis.call('ZRANGE', usets.at(u, tonumber(ts_s)), ts_s, ts_s, 'BYSCORE')) do
    if string.sub(m, 1, n_e) == e then
      return m
    end
  end
  return nil
end

local function find_body(u, ts, e)
  return body_at(u, fmt(ts), e)
end

-- the user part and time (a number) of global position g (a string), from its seq block;
-- nil when the position is not held
local function at_position(g)
  local v = redis.call('HGET', base .. ':q:' .. fmt(math.floor(tonumber(g) / SEQ_BLOCK)), g)
  if not v then
    return nil
  end
  local u, ts = string.match(v, '^([%w_%-]+)|(%d+)$')
  return u, tonumber(ts)
end

-- the body member holding global position g (a string) in the set of user u at time ts
local function body_of_position(u, ts, g)
  local want = '|' .. g .. '|'
  for _, m in ipairs(redis.call('ZRANGE', usets.at(u, ts), ts, ts, 'BYSCORE')) do
    local p = string.find(m, '\0\0', 1, true)
    local bar = string.find(m, '|', p + 2, true)
    if string.sub(m, bar, bar + #want - 1) == want then
      return m
    end
  end
  return nil
end

local function push_row(out, ts, m)
  out[#out + 1] = ts
  out[#out + 1] = m or false
end

-- the days holding hot events in [lo, hi), ascending (from the days registry)
local function days_in(lo, hi)
  local top = '+inf'
  if hi then
    top = '(' .. fmt(hi)
  end
  local days = {}
  for _, d in ipairs(redis.call('ZRANGE', base .. ':days', fmt(lo - lo % DAY), top, 'BYSCORE')) do
    days[#days + 1] = tonumber(d)
  end
  return days
end

-- how much time one set of a family holds: a user's set a day, a type's set an hour (every
-- event of the tenant: the type sets of the hour)
local function set_width(family)
  if family == 't' or family == 'a' then
    return TYPE_SET
  end
  return DAY
end

-- the starts of the family's sets (of width w) that may hold events in [lo, hi), ascending:
-- those of the days the days registry lists
local function sets_in(w, lo, hi)
  local out = {}
  for _, d in ipairs(days_in(lo, hi)) do
    local first, last = d, d + DAY - w
    if lo > first then
      first = lo - lo % w
    end
    if hi and hi - 1 < last then
      last = (hi - 1) - (hi - 1) % w
    end
    for b = first, last, w do
      out[#out + 1] = b
    end
  end
  return out
end

-- the bounds [lo_b, hi_b) of the set starting at b (width w) within [lo, hi) (hi nil: unbounded)
local function set_bounds(b, w, lo, hi)
  local h = b + w
  if hi and hi < h then
    h = hi
  end
  return math.max(lo, b), h
end

-- the keys of a source's sets that hold its events of [lo_b, hi_b), within the set (of the
-- family's width) starting at b, in scan order (desc: newest first): a type's set of the hour
-- ('t'); the user's sets of the day whose time ranges meet [lo_b, hi_b) ('u', 'ut')
local function source_keys(family, src, b, lo_b, hi_b, desc)
  if family ~= 'u' and family ~= 'ut' then
    return {t_pre .. src[1] .. ':' .. fmt(b)}
  end
  local out = usets.keys_in(src[1], b, lo_b, hi_b)
  if desc and #out > 1 then
    local r = {}
    for i = #out, 1, -1 do
      r[#r + 1] = out[i]
    end
    out = r
  end
  return out
end

-- the sets of a count's sources holding their events of [lo_b, hi_b) in the set starting at
-- b: {key, type part a 'ut' source filters on (or false)} pairs; every event of the tenant
-- ('a'): the type sets of the hour's registry
local function count_sets(family, sources, b, lo_b, hi_b)
  local out = {}
  if family == 'a' then
    local bs = fmt(b)
    for _, t in ipairs(redis.call('ZRANGE', y_pre .. bs, 0, -1)) do
      out[#out + 1] = {t_pre .. t .. ':' .. bs, false}
    end
    return out
  end
  for _, src in ipairs(sources) do
    for _, key in ipairs(source_keys(family, src, b, lo_b, hi_b)) do
      out[#out + 1] = {key, family == 'ut' and (src[2] .. '|')}
    end
  end
  return out
end

local function read_sources(family, at)
  local nsrc = tonumber(ARGV[at])
  local sources = {}
  local per = 1
  if family == 'ut' then
    per = 2
  elseif family == 'a' then
    per = 0
    nsrc = 1
  end
  for i = 1, nsrc do
    local s = {}
    for j = 1, per do
      s[j] = ARGV[at + (i - 1) * per + j]
    end
    sources[i] = s
  end
  return sources
end

if op == 'scan' then
  local w = ''
  local lo = tonumber(ARGV[4])
  if ARGV[3] == '1' then
    w = tonumber(redis.call('GET', base .. ':wm') or '0')
    lo = math.max(lo, w)
  end
  local hi = tonumber(ARGV[5])
  local desc = ARGV[6] == 'desc'
  local a_ts = tonumber(ARGV[7])
  local a_e = ARGV[8]
  local limit = tonumber(ARGV[9])
  local cap = tonumber(ARGV[10])
  local family = ARGV[12]
  local sources = read_sources(family, 13)
  local width = set_width(family)
  local days = {}  -- the starts of the sets to read
  if hi == nil or lo < hi then
    days = sets_in(width, lo, hi)
  end
  if desc then
    local r = {}
    for i = #days, 1, -1 do
      r[#r + 1] = days[i]
    end
    days = r
  end
  local typed = family == 'ut'
  local function range(key, lo_d, hi_d, want, skip)
    if desc then
      return redis.call('ZRANGE', key, '(' .. fmt(hi_d), fmt(lo_d), 'BYSCORE', 'REV', 'LIMIT', skip or 0, want,
        'WITHSCORES')
    end
    return redis.call('ZRANGE', key, fmt(lo_d), '(' .. fmt(hi_d), 'BYSCORE', 'LIMIT', skip or 0, want, 'WITHSCORES')
  end
  local function finish(out)
    if ARGV[11] == '1' then
      out[#out + 1] = redis.call('GET', base .. ':wm') or '0'
    else
      out[#out + 1] = ''
    end
    return out
  end
  -- a fast path's reply: `got` rows, and when it stopped at member m (time ts) before the end
  -- of the range, that member as the boundary
  local function stopped(out, got, ts, m)
    out[2] = got
    if m then
      out[3] = 0
      out[4] = tonumber(ts)
      out[5] = unesc((prefix(m)))
    end
    return finish(out)
  end
  -- the bounds [lo_b, hi_b) of the set starting at b (width w) within the range, cut at the
  -- cursor's time (the cursor's own millisecond stays in: its members are compared by id)
  local function scan_bounds(b, w)
    local lo_b, hi_b = set_bounds(b, w, lo, hi)
    if a_ts then
      if desc then
        hi_b = math.min(hi_b, a_ts + 1)
      else
        lo_b = math.max(lo_b, a_ts)
      end
    end
    return lo_b, hi_b
  end
  -- whether member m at time ts (a number) comes strictly after the cursor in the scan order
  local function after_cursor(ts, m)
    if ts ~= a_ts then
      return true
    end
    if desc then
      return lt(m, a_e)
    end
    return string.sub(m, 1, #a_e) ~= a_e and lt(a_e, m)
  end
  local function before(x, y)  -- {ts, escaped id or member, ...}: x comes before y in the scan order
    if x[1] ~= y[1] then
      if desc then
        return x[1] > y[1]
      end
      return x[1] < y[1]
    end
    if desc then
      return lt(y[2], x[2])
    end
    return lt(x[2], y[2])
  end

  if family == 'a' then
    -- every event of the tenant: the type sets of each hour that the hour's types registry
    -- lists, merged in scan order (a binary heap of their heads; each set read in batches)
    local out = {w, 0, 1, '', ''}
    local got = 0
    local last_ts, last_m = nil, nil
    -- a binary heap of entries in scan order (before): add x / take the first
    local function push_heap(heap, x)
      heap[#heap + 1] = x
      local i = #heap
      while i > 1 do
        local p = math.floor(i / 2)
        if not before(heap[i], heap[p]) then
          break
        end
        heap[i], heap[p] = heap[p], heap[i]
        i = p
      end
    end
    local function pop_heap(heap)
      local top, n = heap[1], #heap - 1
      heap[1] = heap[#heap]
      heap[#heap] = nil
      local i = 1
      while true do
        local l, r, b = 2 * i, 2 * i + 1, i
        if l <= n and before(heap[l], heap[b]) then
          b = l
        end
        if r <= n and before(heap[r], heap[b]) then
          b = r
        end
        if b == i then
          return top
        end
        heap[i], heap[b] = heap[b], heap[i]
        i = b
      end
    end
    for _, h in ipairs(days) do
      local lo_h, hi_h = scan_bounds(h, TYPE_SET)
      if lo_h < hi_h then
        local hs = fmt(h)
        local types = redis.call('ZRANGE', y_pre .. hs, 0, -1)
        local want = limit - got
        local batch = math.min(want, math.max(2, math.ceil(want / math.max(#types, 1)) + 1))
        -- the next member of stream s after the cursor, as a heap entry (nil: none left)
        local function next_of(s)
          while true do
            if s.i > #s.items then
              if not s.more then
                return nil
              end
              s.items = range(s.key, lo_h, hi_h, s.batch, s.skip)
              s.skip = s.skip + s.batch
              s.more = #s.items / 2 >= s.batch
              s.batch = math.min(2 * s.batch, 1000)
              s.i = 1
              if #s.items == 0 then
                return nil
              end
            end
            local m, ts = s.items[s.i], tonumber(s.items[s.i + 1])
            s.i = s.i + 2
            if (not a_ts) or after_cursor(ts, m) then
              return {ts, m, s}
            end
          end
        end
        local heap = {}
        for _, t in ipairs(types) do
          local s = {key = t_pre .. t .. ':' .. hs, items = {}, i = 1, skip = 0, batch = batch, more = true}
          local x = next_of(s)
          if x then
            push_heap(heap, x)
          end
        end
        while #heap > 0 and got < limit do
          local x = pop_heap(heap)
          local ts_s, m = fmt(x[1]), x[2]
          local e, at = prefix(m)
          out[#out + 1] = ts_s
          out[#out + 1] = body_at(string.sub(m, at), ts_s, e) or false
          got = got + 1
          last_ts, last_m = ts_s, m
          local y = next_of(x[3])
          if y then
            push_heap(heap, y)
          end
        end
        if got >= limit then
          return stopped(out, got, last_ts, last_m)
        end
      end
    end
    return stopped(out, got)
  end
  if #sources == 1 and not typed and not a_ts then
    -- the commonest read (a first page of one user, type or the tenant): members go out as
    -- they come, parsed only to find a short member's body
    local src = sources[1]
    local out = {w, 0, 1, '', ''}
    local got = 0
    local last_ts, last_m = nil, nil
    for _, d in ipairs(days) do
      local lo_d, hi_d = set_bounds(d, width, lo, hi)
      if lo_d < hi_d then
        for _, key in ipairs(source_keys(family, src, d, lo_d, hi_d, desc)) do
          local rest = range(key, lo_d, hi_d, limit - got)
          if family == 'u' then
            for i = 1, #rest, 2 do
              out[#out + 1] = rest[i + 1]
              out[#out + 1] = rest[i]
            end
          else
            for i = 1, #rest, 2 do
              local m, ts_s = rest[i], rest[i + 1]
              local e, at = prefix(m)
              out[#out + 1] = ts_s
              out[#out + 1] = body_at(string.sub(m, at), ts_s, e) or false
            end
          end
          got = got + #rest / 2
          if #rest > 0 then
            last_ts, last_m = rest[#rest], rest[#rest - 1]
          end
          if got >= limit then
            break
          end
        end
        if got >= limit then
          break
        end
      end
    end
    if got >= limit then
      return stopped(out, got, last_ts, last_m)
    end
    return stopped(out, got)
  end
  if #sources == 1 and typed and not a_ts then
    -- a first page of one user and type: the user's members in order, kept when their type
    -- part matches, read in chunks; at most `cap` members are examined
    local src = sources[1]
    local want_seq = '\0\0' .. src[2] .. '|'
    local chunk = math.max(64, 4 * limit)
    local out = {w, 0, 1, '', ''}
    local got, examined = 0, 0
    local stop_ts, stop_m = nil, nil
    for _, d in ipairs(days) do
      local lo_d, hi_d = set_bounds(d, width, lo, hi)
      local keys = {}
      if lo_d < hi_d then
        keys = source_keys(family, src, d, lo_d, hi_d, desc)
      end
      for _, key in ipairs(keys) do
        local skip = 0
        while not stop_m do
          local n = math.min(chunk, cap - examined)
          local rest = range(key, lo_d, hi_d, n, skip)
          skip = skip + n
          for i = 1, #rest, 2 do
            local m = rest[i]
            examined = examined + 1
            local p = string.find(m, '\0\0', 1, true)
            if string.find(m, want_seq, p, true) == p then
              out[#out + 1] = rest[i + 1]
              out[#out + 1] = m
              got = got + 1
            end
            if got >= limit or examined >= cap then
              stop_ts, stop_m = rest[i + 1], m
              break
            end
          end
          if #rest < 2 * n then
            break
          end
        end
        if stop_m then
          break
        end
      end
      if stop_m then
        break
      end
    end
    return stopped(out, got, stop_ts, stop_m)
  end
  local cands = {}      -- {ts, e, member}
  local open = {}       -- frontiers {ts, e} of sources not read to the end
  for _, src in ipairs(sources) do
    local got, examined = 0, 0
    local frontier = nil
    local want_t = typed and (src[2] .. '|') or nil
    for _, d in ipairs(days) do
      if frontier then
        break
      end
      local lo_d, hi_d = scan_bounds(d, width)
      if lo_d < hi_d then
        for _, key in ipairs(source_keys(family, src, d, lo_d, hi_d, desc)) do
          if frontier then
            break
          end
          local members = {}
          local scores = {}
          if a_ts and a_ts >= lo_d and a_ts < hi_d then
            -- the cursor's millisecond: keep the members strictly after the cursor id
            local tie = redis.call('ZRANGE', key, fmt(a_ts), fmt(a_ts), 'BYSCORE')
            local keep = {}
            for _, m in ipairs(tie) do
              if after_cursor(a_ts, m) then
                keep[#keep + 1] = m
              end
            end
            if desc then
              for i = #keep, 1, -1 do
                members[#members + 1] = keep[i]
                scores[#scores + 1] = a_ts
              end
            else
              for _, m in ipairs(keep) do
                members[#members + 1] = m
                scores[#scores + 1] = a_ts
              end
            end
          end
          local want = limit - got
          if typed then
            want = cap - examined
          end
          -- after the cursor's millisecond (read above), then the rest of the day's range
          local r_lo, r_hi = lo_d, hi_d
          if a_ts and a_ts >= lo_d and a_ts < hi_d then
            if desc then
              r_hi = a_ts
            else
              r_lo = a_ts + 1
            end
          end
          local rest = range(key, r_lo, r_hi, want)
          for i = 1, #rest, 2 do
            members[#members + 1] = rest[i]
            scores[#scores + 1] = tonumber(rest[i + 1])
          end
          local full = (#rest / 2) >= want
          for i, m in ipairs(members) do
            local e = prefix(m)
            local ts = scores[i]
            examined = examined + 1
            if (not typed) or string.sub(m, #e + 1, #e + #want_t) == want_t then
              cands[#cands + 1] = {ts, e, m}
              got = got + 1
              if got >= limit then
                frontier = {ts, e}
                break
              end
            end
            if typed and examined >= cap then
              frontier = {ts, e}
              break
            end
          end
          if full and not frontier and #members > 0 then
            local e = prefix(members[#members])
            frontier = {scores[#members], e}
          end
        end
      end
    end
    if frontier then
      open[#open + 1] = frontier
    end
  end

  if #sources > 1 then
    table.sort(cands, before)
  end
  local cut = nil
  for _, f in ipairs(open) do
    if cut == nil or before(f, cut) then
      cut = f
    end
  end
  local kept = {}
  for _, c in ipairs(cands) do
    if cut and before(cut, c) then
      break
    end
    kept[#kept + 1] = c
  end
  local n = math.min(#kept, limit)
  local complete = 0
  local b_ts, b_id = '', ''
  if n == limit and n > 0 then
    if cut == nil and #kept == n then
      complete = 1
    else
      b_ts, b_id = kept[n][1], unesc(kept[n][2])
    end
  elseif cut then
    b_ts, b_id = cut[1], unesc(cut[2])
  else
    complete = 1
  end
  local out = {w, n, complete, b_ts, b_id}
  for i = 1, n do
    local c = kept[i]
    local ts, e, m = c[1], c[2], c[3]
    if family == 'u' or family == 'ut' then
      push_row(out, ts, m)
    else
      push_row(out, ts, find_body(string.sub(m, #e + 1), ts, e))
    end
  end
  return finish(out)
end

-- the ids ARGV[from..], and where each is: its user part and time (nil when absent), from
-- the id buckets
local function locate(from)
  local ids, us, tss = {}, {}, {}
  for i = from, #ARGV do
    ids[#ids + 1] = ARGV[i]
  end
  if #ids == 0 then
    return ids, us, tss
  end
  local nb = tonumber(redis.call('HGET', base .. ':ib', 'b')) or 1
  local lv = id_level(nb)
  for i = 1, #ids do
    local ref = redis.call('HGET', base .. ':i:' .. fmt(id_bucket(id_hash(ids[i]), nb, lv)), ids[i])
    local g = ref and string.match(ref, '^(%d+)|')
    if g then
      us[i], tss[i] = at_position(g)
    end
  end
  return ids, us, tss
end

if op == 'ids' then
  local then_get = ARGV[3]
  local ids, us, tss = locate(4)
  local out = {}
  for i = 1, #ids do
    local m = us[i] and find_body(us[i], tss[i], esc_of(ids[i])) or false
    out[2 * i - 1] = m and tss[i] or false
    out[2 * i] = m
  end
  if then_get ~= '' then
    out[2 * #ids + 1] = redis.call('GET', then_get)
  end
  return out
end

if op == 'locate' then
  -- a sharded tenant's ids: where each event is (its body is in a shard)
  local ids, us, tss = locate(3)
  local out = {}
  for i = 1, #ids do
    out[i] = us[i] and (us[i] .. '|' .. fmt(tss[i])) or false
  end
  return out
end

if op == 'bodies' then
  -- a shard's body members: per (user part, time, 'e' .. escaped id with terminator | 'g' ..
  -- global position) the member, or false
  local out = {}
  for i = 3, #ARGV, 3 do
    local u, ts, want = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
    local m
    if string.sub(want, 1, 1) == 'g' then
      m = body_of_position(u, ts, string.sub(want, 2))
    else
      m = find_body(u, ts, string.sub(want, 2))
    end
    out[#out + 1] = m or false
  end
  return out
end

if op == 'seq' then
  local after = tonumber(ARGV[3])
  local desc = ARGV[4] == 'desc'
  local limit = tonumber(ARGV[5])
  local lo = tonumber(ARGV[6]) or 0
  local hi = tonumber(ARGV[7])
  local placements = ARGV[8] == '1'
  if placements then
    local c = tonumber(redis.call('GET', base .. ':conf') or '0')
    hi = math.min(hi or c, c)
  end
  if after then
    if desc then
      hi = math.min(hi or after - 1, after - 1)
    else
      lo = math.max(lo, after + 1)
    end
  end
  local rows = {}
  if hi == nil or lo <= hi then
    local b_lo = fmt(math.floor(lo / SEQ_BLOCK))
    local b_hi = '+inf'
    if hi then
      b_hi = fmt(math.floor(hi / SEQ_BLOCK))
    end
    local cursor = nil
    while #rows < limit do
      local blocks
      if desc then
        blocks = redis.call('ZRANGE', base .. ':qb', cursor and ('(' .. cursor) or b_hi, b_lo,
          'BYSCORE', 'REV', 'LIMIT', 0, 8)
      else
        blocks = redis.call('ZRANGE', base .. ':qb', cursor and ('(' .. cursor) or b_lo, b_hi,
          'BYSCORE', 'LIMIT', 0, 8)
      end
      if #blocks == 0 then
        break
      end
      for _, blk in ipairs(blocks) do
        cursor = blk
        local kv = redis.call('HGETALL', base .. ':q:' .. blk)
        local got = {}
        for i = 1, #kv, 2 do
          local g = tonumber(kv[i])
          if g >= lo and (hi == nil or g <= hi) then
            got[#got + 1] = {g, kv[i + 1]}
          end
        end
        if desc then
          table.sort(got, function(x, y) return x[1] > y[1] end)
        else
          table.sort(got, function(x, y) return x[1] < y[1] end)
        end
        for _, r in ipairs(got) do
          if #rows >= limit then
            break
          end
          rows[#rows + 1] = r
        end
        if #rows >= limit then
          break
        end
      end
    end
  end
  local out = {#rows}
  if placements then
    for _, r in ipairs(rows) do
      out[#out + 1] = r[1]
      out[#out + 1] = r[2]
    end
    return out
  end
  for _, r in ipairs(rows) do
    local u, ts = string.match(r[2], '^([%w_%-]+)|(%d+)$')
    ts = tonumber(ts)
    local m = body_of_position(u, ts, fmt(r[1]))
    out[#out + 1] = r[1]
    out[#out + 1] = m and (prefix(m)) or ''
    push_row(out, ts, m)
  end
  return out
end

if op == 'count' then
  local w = tonumber(redis.call('GET', base .. ':wm') or '0')
  local lo = tonumber(ARGV[4])
  if ARGV[3] == '1' then
    lo = math.max(lo, w)
  end
  local hi = tonumber(ARGV[5])
  local bucket = tonumber(ARGV[6])
  local family = ARGV[7]
  local sources = read_sources(family, 8)
  local width = set_width(family)
  local total = 0
  local buckets = {}
  local days = {}  -- the starts of the sets to read
  if hi == nil or lo < hi then
    days = sets_in(width, lo, hi)
  end
  for _, d in ipairs(days) do
    local lo_d, hi_d = set_bounds(d, width, lo, hi)
    if lo_d < hi_d then
      local sets = {}
      if family == 'a' and bucket == nil and lo_d == d and hi_d == d + width then
        -- a whole hour of every event: its count is kept (hc, with every write and removal)
        total = total + tonumber(redis.call('HGET', base .. ':hc', fmt(d)) or '0')
      else
        sets = count_sets(family, sources, d, lo_d, hi_d)
      end
      for _, set in ipairs(sets) do
        local key, want_t = set[1], set[2]
        if bucket == nil and not want_t then
          total = total + redis.call('ZCOUNT', key, fmt(lo_d), '(' .. fmt(hi_d))
        else
          local raw = redis.call('ZRANGE', key, fmt(lo_d), '(' .. fmt(hi_d), 'BYSCORE', 'WITHSCORES')
          for i = 1, #raw, 2 do
            local ok = true
            if want_t then
              local e = prefix(raw[i])
              ok = string.sub(raw[i], #e + 1, #e + #want_t) == want_t
            end
            if ok then
              total = total + 1
              if bucket then
                local ts = tonumber(raw[i + 1])
                local b = ts - ts % bucket
                buckets[b] = (buckets[b] or 0) + 1
              end
            end
          end
        end
      end
    end
  end
  local out = {w, total}
  local starts = {}
  for b, _ in pairs(buckets) do
    starts[#starts + 1] = b
  end
  table.sort(starts)
  for _, b in ipairs(starts) do
    out[#out + 1] = b
    out[#out + 1] = buckets[b]
  end
  return out
end

return redis.error_reply('ERR eventstrata read: unknown operation ' .. tostring(op))
