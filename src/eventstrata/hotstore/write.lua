-- eventstrata hot-tier write: one call per (tenant, chunk of <= 500 events), or, for a sharded
-- tenant (keys.py: its user and type sets in shards with their own hash tags), a
-- 'reserve' call per chunk, the shards' 'store' calls, then one 'confirm' call.
--
-- KEYS[1] = <base>:ib  (declared so the call is routed to the tenant's Cluster slot; for
--           'store', <shard base>:days, routed to the shard's)
-- ARGV[1] = the operation: 'all', 'reserve', 'store' or 'confirm' (below)
-- ARGV[2] = <base>      ("<prefix>:{<tenant>}"; every key below shares the {tenant} hash tag;
--           for 'store' the shard's base)
-- ARGV[3] = the most members a user set may hold (keys.KeyLayout.user_set_max; 'all' and
--           'store' follow it). For 'store' the arguments end here: see below.
-- ARGV[4] = how many of the newest events the tail stream keeps at least (approximate trim)
-- ARGV[5] = the highest global position of the tenant the writer has seen acknowledged ('' or
--           0 = none): see "Positions are never given twice" below
-- ARGV[6] = k, the number of Kafka offsets this call records (always 0 for 'reserve'; 0 for all
--           but a tenant's last call of a batch; a call may also carry no events and only
--           record), then k triples:
--           field "<topic>|<partition>", next offset (decimal), and the value the writer
--           expects the record to hold at least ('' = none). Each is max-set into
--           <base>:offsets in this same call, so the record of which offsets the tenant's
--           stored data covers can never run ahead of the data -- except where the record is
--           below its expected value (Redis lost writes): that field is left as it is, so it
--           keeps pointing before the lost records until the writer's replay has stored them
--           again (see ingest/recovery.py).
-- then, for 'all', two arguments per event, for 'reserve' the first of them only:
--   meta = "<ts>|<window>|<day>|<u>|<t>|<stream_len>|<h><stream_id><event_id>"
--          ts: event time in ms; window / day: start of its window / UTC day (ms);
--          u / t: keys.user_part() of the user id ('_' when none) and keys.encode_part() of
--          the type; stream_len: byte length of the stream key (0 when no stream id); h: the
--          id's hash (keys.id_hash: 8 hex digits); then the stream key (keys.stream_key: the
--          field of the (store, stream) in <base>:spos) and the event id (the id is the rest
--          of the string: any byte).
--   body = the stored body (hotstore/codec.py: compressed, positions not in it); opaque here.
-- for 'confirm', pairs of positions lo, hi: ranges of positions whose events the shards now
--   hold.
--
-- Positions are never given twice. A Redis node that restarted, failed over or was restored
-- from a copy may have lost acknowledged writes, and the positions they gave with them, which
-- readers (the tail, event-store clients) may already have seen. So 'all' and 'reserve' calls
-- with events note the node that gives a tenant's positions (its run_id, in <base>:pnode); a
-- call on another node -- or one that finds the tenant's last position below the writer's
-- ARGV[5] -- first moves the last position to the greatest of: the last one the node holds,
-- ARGV[5], and the node's clock in ms since POS_EPOCH_MS times POS_PER_MS; plus POS_GAP
-- (keys.py: a tenant gives fewer than POS_PER_MS positions per ms, so the clock term is above
-- every position given before, whatever was lost). That is done when the tenant has any position or the
-- writer saw one (a tenant new to the hot tier starts at 1). The positions a jump skips are
-- announced as empty (field "s" of the tail entry, below), so tail readers pass over them; a
-- 'reserve' marks them confirmed instead (range "lo-hi-s" in <base>:cr: no event will hold
-- them), and its 'confirm' announces them.
--
-- Key names and members are those of keys.py (its docstring is the layout): the escaped id
-- (NUL -> NUL 0x01) and NUL NUL start every member.
--
-- Ids. Every tenant keeps its ids in id buckets (keys.py, "Id buckets"): the value of an id in
-- its bucket <base>:i:<k> is "gpos|spos" (spos empty when none); a new id goes into the bucket
-- of its hash h, and buckets are split while n > b * ID_LOAD (b and n in <base>:ib), the split
-- rehashing the moved ids with redis.sha1hex.
--
-- 'all' (a tenant in one slot). Per event: an id already in its bucket is a duplicate: its
-- stored positions are returned and, when its body member is missing from its user's set (a
-- removed day, a repair), body and indexes are re-written with the stored positions -- never a
-- new tail entry, never new positions. A duplicate whose stored time or user (read from its
-- position's seq value) differs from the delivered one is left untouched (first write wins). A
-- new id gets gpos = last gpos + 1 and, with a stream id, spos = last spos of its stream key + 1,
-- recorded in its id bucket; then the body member in its user set (below), the short member in
-- t:<t>:<hour> (TYPE_SET below: the start of the set holding ts) and the type part in that
-- hour's types registry ty:<hour>, the position's seq value "u|ts" in its q block, and its
-- window in win. The hour counts hc (hour -> how many members the hour's type sets hold) follow
-- every ZADD and ZREM of a type set, here and in remove.lua. The call's new events
-- get consecutive positions and share ONE tail entry, id "<last gpos>-0", with one field "n" =
-- how many (hotstore/tailentry.py), and "s" = how many positions before them a jump left
-- empty when the call's positions jumped (then "n" may be 0). Entries older than the newest
-- ARGV[4] positions are trimmed (XADD MINID ~).
--
-- User sets (keys.py, "User sets"). A user's body members of day D go into u:<u>:D, or into
-- the set u:<u>:<S> whose start S is the greatest start <= ts of those the registry
-- <base>:us lists under "<u>:<D>" (offsets from D, ascending, comma-separated). A set that
-- would hold more than ARGV[3] members is cut: when every new member comes after every member
-- it holds, the new members start new sets (each at its first member's time, up to ARGV[3]
-- each); otherwise the set and its new members are cut into sets of about 3/4 of ARGV[3], at
-- score changes. New starts join the registry in the same call.
-- An event of a user in <base>:tomb (user part -> time of the user's erasure, ms; erasure.py)
-- whose time is before that erasure is dropped in 'all' and 'reserve': nothing is stored or
-- announced, and it is reported as a duplicate at position 0.
-- Returns a flat array, three integers per event, in input order:
--   is_new (1/0), global position, stream position (0 = none);
-- then, per recorded offset field in input order, its value before this call ('' = none).
--
-- 'reserve' (a sharded tenant, before its shards store the events). Dedupes and assigns
-- positions like 'all' (ids, spos, the q block, win) but stores no body and announces nothing.
-- The positions are *pending* until a 'confirm' names them. <base>:conf holds C, the
-- highest position up to which every position is confirmed; <base>:cr the confirmed ranges
-- above C (member "lo-hi", score lo). A duplicate is returned for storing again (its shard
-- adds the body only where it is missing: a first write that stopped before its confirm, or
-- a shard that lost writes) when its position is pending, or when its delivered time and user
-- are the stored ones. When a pending one's delivered time or user differs, the reservation
-- takes the delivered placement and the old one is returned, for the writer to remove
-- whatever the first write stored there; a confirmed one's is left as it is (first write
-- wins). Returns five values per event, in input order: status (1 new, 0 duplicate, 2
-- duplicate to store again), global position, stream position (0 = none), and the replaced
-- placement's user part and time ('' when none).
--
-- 'store' (in one shard, after 'reserve', before 'confirm'): ARGV[4] = k and k offset triples
-- (as above: recorded into the shard's own <shard base>:offsets, so a shard that loses writes
-- shows it like the tenant's slot does), then two arguments per event:
--   meta   = "<mode>|<ts>|<day>|<u>|<t>|" -- ts: event time (ms), day: its UTC day start (ms),
--            u / t: the user and type parts;
--   member = the event's body member (keys.body_member: escaped id, NUL NUL, "<t>|gpos|spos|",
--            the stored body).
--   mode 'n': a new event: its body member goes into its user set, its short member (escaped id,
--             NUL NUL, <u>) into its t:<t>:<hour> set, the type part into ty:<hour>, the day
--             into days.
--   mode 'r': an event stored again (its first write may have reached this shard): the same,
--             unless a body member of its id is already in its user set at ts.
--   mode 'x': a placement a reservation gave up: the member argument is the escaped id with its
--             terminator; its body member at ts in its user set and its short member are
--             removed (t is read from the body member; the meta's t is empty; the registry
--             keeps the type: the archiver's removal drops registry entries whose set is gone).
--   Storing an event twice stores it once. Returns the number of body members added, then per
--   recorded offset field its value before this call ('' = none).
--
-- 'confirm'. Adds the ranges to <base>:cr, advances C over every range that now continues it,
-- and when C moved appends a tail entry "<C>-0" with n = how many positions it moved (so
-- the tail announces positions in order and only once every event up to them is stored) --
-- a jump's empty range ("-s") starts an entry of its own, announced with "s";
-- then records the offsets. Confirming a range twice changes nothing. Returns, per recorded
-- offset field, its value before this call ('' = none).

local op = ARGV[1]
local base = ARGV[2]
local find, sub = string.find, string.sub
local t_pre, y_pre = base .. ':t:', base .. ':ty:'
local USET_MAX = tonumber(ARGV[3])
local usets = user_sets(base)

-- the type index set holding time ts (a string) of type part t, its hour's types registry
-- and that hour (a string)
local function index_keys(t, ts)
  local x = tonumber(ts)
  local h = fmt(x - x % TYPE_SET)
  return t_pre .. t .. ':' .. h, y_pre .. h, h
end

local zsets = {}       -- key -> {score, member, ...}: the ZADDs of this call, one per key
local zset_order = {}
local days = {}        -- day starts to add to days
local registries = {}  -- types registry key -> {type part -> true}
local set_hour = {}    -- type set key -> its hour: the ZADDs' new members are counted in hc
local hour_delta = {}  -- hour -> members this call added to (or removed from) its type sets

-- queue the pair (a, b) under key in groups (keys kept in first-seen order in order)
local function push(groups, order, key, a, b)
  local t = groups[key]
  if not t then
    t = {}
    groups[key] = t
    order[#order + 1] = key
  end
  t[#t + 1] = a
  t[#t + 1] = b
end

local function zadd(key, score, m)
  push(zsets, zset_order, key, score, m)
end

local ugroups = {}     -- "<u>:<day>" (the registry's field) -> {ts, member, ...}: body members
local ugroup_order = {}

-- queue body member m of user u at ts (a string) into the user's sets of day (a string)
local function zadd_user(u, day, ts, m)
  push(ugroups, ugroup_order, u .. ':' .. day, ts, m)
end

-- the positions in ascending scores sc (numbers) where a set of them is cut into pieces of
-- about `per` each, every cut moved forward to a change of score (one millisecond never
-- splits): the scores the pieces after the first start at
local function cut_scores(sc, per)
  local out = {}
  local j = per + 1
  while j <= #sc do
    while j <= #sc and sc[j] == sc[j - 1] do
      j = j + 1
    end
    if j > #sc then
      break
    end
    out[#out + 1] = sc[j]
    j = j + per
  end
  return out
end

-- add the members `flat` ({ts, member, ...}, ts strings) to the set starting at s[i] of user u
-- (s: the day's starts, ascending; new starts are inserted into it). When the set would hold
-- more than USET_MAX: if every new member comes after every member it holds, they start new
-- sets of up to USET_MAX; otherwise the set and the new members are cut into pieces of ~3/4
-- USET_MAX, the set keeping the first (only the members above its cut move). Returns true
-- when it made new sets.
local function add_to_set(u, s, i, flat)
  local key = usets.key(u, s[i])
  local card = redis.call('ZCARD', key)
  if card + #flat / 2 <= USET_MAX then
    redis.call('ZADD', key, unpack(flat))
    return false
  end
  local new = {}  -- {score, member}, ascending
  for j = 1, #flat, 2 do
    new[#new + 1] = {tonumber(flat[j]), flat[j + 1]}
  end
  table.sort(new, function(x, y) return x[1] < y[1] end)
  local old = {}  -- the set's members and scores, ascending
  if card > 0 then
    old = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  end
  local cuts
  if card == 0 or new[1][1] > tonumber(old[#old]) then
    -- appends: the new members start new sets (an empty set takes the first piece itself)
    local sc = {}
    for j, x in ipairs(new) do
      sc[j] = x[1]
    end
    cuts = cut_scores(sc, USET_MAX)
    if card > 0 then
      table.insert(cuts, 1, new[1][1])
    end
  else
    local sc, a, b = {}, 2, 1  -- every score, ascending (a merge of the two sorted lists)
    while a <= #old or b <= #new do
      local x = a <= #old and tonumber(old[a]) or nil
      if x and (b > #new or x <= new[b][1]) then
        sc[#sc + 1] = x
        a = a + 2
      else
        sc[#sc + 1] = new[b][1]
        b = b + 1
      end
    end
    cuts = cut_scores(sc, math.ceil(#sc / math.ceil(#sc / math.max(1, math.floor(USET_MAX * 3 / 4)))))
  end
  if #cuts == 0 then  -- one millisecond: nothing to cut at
    redis.call('ZADD', key, unpack(flat))
    return false
  end
  -- pieces[k]: the flat ZADD arguments of the piece starting at cuts[k] (0: the set itself)
  local pieces = {[0] = {}}
  for k = 1, #cuts do
    pieces[k] = {}
  end
  local function put(score, m)
    local k = 0
    while k < #cuts and score >= cuts[k + 1] do
      k = k + 1
    end
    local t = pieces[k]
    t[#t + 1] = score
    t[#t + 1] = m
  end
  local moved = false
  for j = 1, #old, 2 do
    local x = tonumber(old[j + 1])
    if x >= cuts[1] then
      put(x, old[j])
      moved = true
    end
  end
  if moved then
    redis.call('ZREMRANGEBYSCORE', key, cuts[1], '+inf')
  end
  for _, x in ipairs(new) do
    put(x[1], x[2])
  end
  for k = 0, #cuts do
    local t = pieces[k]
    if #t > 0 then
      if k == 0 then
        redis.call('ZADD', key, unpack(t))
      else
        redis.call('ZADD', usets.key(u, cuts[k]), unpack(t))
      end
    end
    if k > 0 then
      table.insert(s, i + k, cuts[k])
    end
  end
  return true
end

-- the queued body members into the users' sets, cutting sets that would outgrow USET_MAX;
-- the registry's fields of the cut days are rewritten (one HMGET, at most one HSET)
local function flush_users()
  local need = {}
  for _, f in ipairs(ugroup_order) do
    if not usets.cache[f] then
      need[#need + 1] = f
    end
  end
  if #need > 0 then
    local vals = redis.call('HMGET', usets.registry, unpack(need))
    for j, f in ipairs(need) do
      local _, day = usets.parts(f)
      usets.cache[f] = starts_of(day, vals[j])
    end
  end
  local args = {}  -- the registry's fields of the days this call cut, rewritten
  for _, f in ipairs(ugroup_order) do
    local u = usets.parts(f)
    local s, items = usets.cache[f], ugroups[f]
    local cut = false
    if #s == 1 then  -- the day has one set (most users)
      cut = add_to_set(u, s, 1, items)
    else
      local by, order = {}, {}
      for j = 1, #items, 2 do
        push(by, order, set_index(s, tonumber(items[j])), items[j], items[j + 1])
      end
      -- the last set first: a cut inserts starts after its own, so earlier indexes stay valid
      table.sort(order, function(x, y) return x > y end)
      for _, i in ipairs(order) do
        cut = add_to_set(u, s, i, by[i]) or cut
      end
    end
    if cut then
      local offs = {}
      for j = 2, #s do
        offs[#offs + 1] = fmt(s[j] - s[1])
      end
      args[#args + 1] = f
      args[#args + 1] = table.concat(offs, ',')
    end
  end
  if #args > 0 then
    redis.call('HSET', usets.registry, unpack(args))
  end
end

-- queue the short member of type part t at ts (a string) into its type set, and t into the
-- hour's types registry
local function index_type(t, ts, short)
  local tkey, ykey, h = index_keys(t, ts)
  zadd(tkey, ts, short)
  set_hour[tkey] = h
  local r = registries[ykey]
  if not r then
    r = {}
    registries[ykey] = r
  end
  r[t] = true
end

-- the positions of the first six '|' in s (nil from the first one missing on)
local function bars(s)
  local p1 = find(s, '|', 1, true)
  local p2 = p1 and find(s, '|', p1 + 1, true)
  local p3 = p2 and find(s, '|', p2 + 1, true)
  local p4 = p3 and find(s, '|', p3 + 1, true)
  local p5 = p4 and find(s, '|', p4 + 1, true)
  return p1, p2, p3, p4, p5, p5 and find(s, '|', p5 + 1, true)
end

-- ZADD key: every member of the set starts (a table start -> true), each its own score
local function add_starts(key, starts)
  local args = {}
  for d, _ in pairs(starts) do
    args[#args + 1] = d
    args[#args + 1] = d
  end
  if #args > 0 then
    redis.call('ZADD', key, unpack(args))
  end
end

-- the queued ZADDs (the registries' members at score 0; the type sets' new members counted
-- per hour in hc, with any removals of the call), then the queued days into days_key
local function flush(days_key)
  flush_users()
  for _, key in ipairs(zset_order) do
    local n = redis.call('ZADD', key, unpack(zsets[key]))
    local h = set_hour[key]
    if h and n > 0 then
      hour_delta[h] = (hour_delta[h] or 0) + n
    end
  end
  count_hours(base, hour_delta)
  for ykey, r in pairs(registries) do
    local types = {}
    for t, _ in pairs(r) do
      types[#types + 1] = 0
      types[#types + 1] = t
    end
    redis.call('ZADD', ykey, unpack(types))
  end
  add_starts(days_key, days)
end

-- the body member with escaped id e (with its terminator) of user u at ts (a string), or nil;
-- and the key of the user set holding ts
local function body_in(u, ts, e)
  local ukey = usets.at(u, tonumber(ts))
  for _, m in ipairs(redis.call('ZRANGE', ukey, ts, ts, 'BYSCORE')) do
    if sub(m, 1, #e) == e then
      return m, ukey
    end
  end
  return nil, ukey
end

-- the offsets this call records: ARGV[at] = k, then k triples (field, next offset, the value
-- expected at least or ''), max-set into <base>:offsets except where the record is below its
-- expected value; appends each field's previous value ('' = none) to out
local function record_offsets(at, out)
  local k = tonumber(ARGV[at])
  if k == 0 then
    return
  end
  local offs_key = base .. ':offsets'
  local fields = {}
  for j = 1, k do
    fields[j] = ARGV[at + 3 * j - 2]
  end
  local prev = redis.call('HMGET', offs_key, unpack(fields))
  local upd = {}
  for j = 1, k do
    local p = prev[j]
    local v = ARGV[at + 3 * j - 1]
    local want = ARGV[at + 3 * j]
    local lost = want ~= '' and ((not p) or tonumber(p) < tonumber(want))
    if (not lost) and ((not p) or tonumber(v) > tonumber(p)) then
      upd[#upd + 1] = fields[j]
      upd[#upd + 1] = v
    end
    out[#out + 1] = p or ''
  end
  if #upd > 0 then
    redis.call('HSET', offs_key, unpack(upd))
  end
end

if op == 'store' then
  local added = 0
  for i = 5 + 3 * tonumber(ARGV[4]), #ARGV, 2 do
    local meta, member = ARGV[i], ARGV[i + 1]
    local p1, p2, p3, p4, p5 = bars(meta)
    if not p5 then
      return redis.error_reply('ERR eventstrata store: malformed meta at argument ' .. i)
    end
    local mode, ts, day = sub(meta, 1, p1 - 1), sub(meta, p1 + 1, p2 - 1), sub(meta, p2 + 1, p3 - 1)
    local u, t = sub(meta, p3 + 1, p4 - 1), sub(meta, p4 + 1, p5 - 1)
    if mode == 'x' then
      local m, ukey = body_in(u, ts, member)
      if m then
        local bar = find(m, '|', #member + 1, true)
        local tkey, _, h = index_keys(sub(m, #member + 1, bar - 1), ts)
        redis.call('ZREM', ukey, m)
        if redis.call('ZREM', tkey, member .. u) == 1 then
          hour_delta[h] = (hour_delta[h] or 0) - 1
        end
      end
    else
      local e = sub(member, 1, find(member, '\0\0', 1, true) + 1)
      if mode == 'n' or not body_in(u, ts, e) then
        zadd_user(u, day, ts, member)
        index_type(t, ts, e .. u)
        days[day] = true
        added = added + 1
      end
    end
  end
  flush(KEYS[1])
  local out = {added}
  record_offsets(4, out)
  return out
end

local maxlen = ARGV[4]
local k = tonumber(ARGV[6])
local a0 = 6 + 3 * k  -- 'all': ARGV[a0 + 2i - 1] = meta of event i, ARGV[a0 + 2i] = its body
local per = 2         -- 'reserve': ARGV[a0 + i] = meta of event i
if op == 'reserve' then
  per = 1
elseif op ~= 'all' and op ~= 'confirm' then
  return redis.error_reply('ERR eventstrata write: unknown operation ' .. tostring(op))
end
local n = 0
if op ~= 'confirm' then
  n = (#ARGV - a0) / per
end
local reserve = op == 'reserve'

local ev_ts, ev_win, ev_day, ev_user, ev_type, ev_sid, ev_id, ev_esc = {}, {}, {}, {}, {}, {}, {}, {}
local ev_hash = {}
for i = 1, n do
  local meta = ARGV[a0 + per * i - (per - 1)]
  local p1, p2, p3, p4, p5, p6 = bars(meta)
  local slen = p6 and tonumber(sub(meta, p5 + 1, p6 - 1))
  if not slen then
    return redis.error_reply('ERR eventstrata write: malformed meta of event ' .. i)
  end
  local ts, win, day = sub(meta, 1, p1 - 1), sub(meta, p1 + 1, p2 - 1), sub(meta, p2 + 1, p3 - 1)
  local u, t, p = sub(meta, p3 + 1, p4 - 1), sub(meta, p4 + 1, p5 - 1), p6 + 1
  ev_hash[i] = sub(meta, p, p + 7)
  p = p + 8
  local sid = false
  if slen > 0 then
    sid = string.sub(meta, p, p + slen - 1)
  end
  local id = string.sub(meta, p + slen)
  ev_ts[i] = ts
  ev_win[i] = win
  ev_day[i] = day
  ev_user[i] = u
  ev_type[i] = t
  ev_sid[i] = sid
  ev_id[i] = id
  if string.find(id, '\0', 1, true) then
    ev_esc[i] = string.gsub(id, '%z', '\0\1') .. '\0\0'
  else
    ev_esc[i] = id .. '\0\0'
  end
end

local ev_bucket = {}  -- a call without events only records offsets (the writer's refresh)
local nb, nids = 1, 0
local ib_key = base .. ':ib'
if n > 0 then
  local idm = redis.call('HMGET', ib_key, 'b', 'n')
  nb, nids = tonumber(idm[1]) or 1, tonumber(idm[2]) or 0
  local lv = id_level(nb)
  local pre = base .. ':i:'
  for i = 1, n do
    ev_bucket[i] = pre .. fmt(id_bucket(tonumber(ev_hash[i], 16), nb, lv))
  end
end

local gpos_key = base .. ':gpos'
local spos_key = base .. ':spos'
local gpos = tonumber(redis.call('GET', gpos_key) or '0')
local gpos0 = gpos
local hint = tonumber(ARGV[5]) or 0
local skipped = 0  -- positions a jump left empty (announced with the call's tail entry, field s)
if n > 0 then
  -- never give a position twice (see the header)
  local pnode_key = base .. ':pnode'
  local node = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  if redis.call('GET', pnode_key) ~= node or gpos < hint then
    if gpos > 0 or hint > 0 then
      local now = redis.call('TIME')
      local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
      local top = math.max(gpos, hint, (ms - POS_EPOCH_MS) * POS_PER_MS) + POS_GAP
      if reserve then  -- a confirmed range that 'confirm' announces as empty
        redis.call('ZADD', base .. ':cr', gpos + 1, fmt(gpos + 1) .. '-' .. fmt(top) .. '-s')
      end
      skipped = top - gpos
      gpos = top
    end
    redis.call('SET', pnode_key, node)
  end
end
local spos_cache = {}
local spos_dirty = {}

local new_ids = 0
local windows = {}
local seq_blocks = {}  -- block -> {position, value, ...}
local seq_order = {}
local tails = {}       -- positions of the new events
local seen = {}        -- id -> index of the event that stored it earlier in this call
local seen_g, seen_s = {}, {}
local out = {}

-- 'reserve': whether position g is pending (above C and in no confirmed range)
local conf_c = nil
local function pending(g)
  if conf_c == nil then
    conf_c = tonumber(redis.call('GET', base .. ':conf') or '0')
  end
  if g <= conf_c then
    return false
  end
  local r = redis.call('ZRANGE', base .. ':cr', g, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1)
  if #r == 0 then
    return true
  end
  local hi = tonumber(string.match(r[1], '^%d+%-(%d+)'))
  return g > hi
end

-- whether the body member of event i is in its user's set
local function has_body(i)
  return body_in(ev_user[i], ev_ts[i], ev_esc[i]) ~= nil
end

-- the position g_str of event i: its seq value and its window ('reserve' stops there), then
-- its body member and short members
local function index(i, g_str, s_val)
  local ts, day, u, t, e = ev_ts[i], ev_day[i], ev_user[i], ev_type[i], ev_esc[i]
  windows[ev_win[i]] = true
  if not reserve then
    local body = ARGV[a0 + 2 * i]
    zadd_user(u, day, ts, e .. t .. '|' .. g_str .. '|' .. s_val .. '|' .. body)
    index_type(t, ts, e .. u)
    days[day] = true
  end
  push(seq_blocks, seq_order, math.floor(tonumber(g_str) / SEQ_BLOCK), g_str, u .. '|' .. ts)
end

-- erased users (<base>:tomb, user part -> erasure time in ms; see erasure.py): an event of such
-- a user whose time is before its erasure is dropped, reported like a duplicate at position 0
local tomb = {}
if n > 0 and redis.call('EXISTS', base .. ':tomb') == 1 then
  local users, known = {}, {}
  for i = 1, n do
    if not known[ev_user[i]] then
      known[ev_user[i]] = true
      users[#users + 1] = ev_user[i]
    end
  end
  local at = redis.call('HMGET', base .. ':tomb', unpack(users))
  for j = 1, #users do
    if at[j] then
      tomb[users[j]] = tonumber(at[j])
    end
  end
end

-- the last stream position of every stream of the call's events, in one read
do
  local sids, known = {}, {}
  for i = 1, n do
    local sid = ev_sid[i]
    if sid and not known[sid] then
      known[sid] = true
      sids[#sids + 1] = sid
    end
  end
  if #sids > 0 then
    local cur = redis.call('HMGET', spos_key, unpack(sids))
    for j = 1, #sids do
      spos_cache[sids[j]] = tonumber(cur[j]) or 0
    end
  end
end

for i = 1, n do
  local id = ev_id[i]
  local prev
  local pts, pg, ps, pu
  local erased = tomb[ev_user[i]] and tonumber(ev_ts[i]) < tomb[ev_user[i]]
  local g_str, s_val = fmt(gpos + 1), ''
  if not erased and not seen[id] then
    -- claim the id with the next positions: HSETNX answers 0 for an id stored before, and
    -- then nothing is taken (one call per new event; a duplicate reads the stored value)
    if ev_sid[i] then
      s_val = fmt(spos_cache[ev_sid[i]] + 1)
    end
    if redis.call('HSETNX', ev_bucket[i], id, g_str .. '|' .. s_val) == 0 then
      prev = redis.call('HGET', ev_bucket[i], id)
    end
  end
  if erased then
    prev = nil
  elseif prev then
    pg, ps = string.match(prev, '^(%d+)|(%d*)$')
    local at = redis.call('HGET', base .. ':q:' .. fmt(math.floor(tonumber(pg) / SEQ_BLOCK)), pg)
    if at then
      pu, pts = string.match(at, '^(.*)|(%d+)$')
    end
  elseif seen[id] then
    local j = seen[id]
    pts, pg, ps, pu = ev_ts[j], seen_g[j], seen_s[j], ev_user[j]
  end
  if erased then  -- nothing stored, nothing announced
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = 0
    if reserve then
      out[#out + 1] = ''
      out[#out + 1] = ''
    end
  elseif pg and reserve then
    -- duplicate: stored again where its body is missing (see the header)
    local status, old_u, old_ts = 0, '', ''
    local same = pts == ev_ts[i] and pu == ev_user[i]
    if prev and not seen[id] then
      if pending(tonumber(pg)) then
        status = 2
        if not same then
          old_u, old_ts = pu or '', pts or ''
          index(i, pg, ps)
        end
      elseif same then
        status = 2
      end
    end
    if status == 2 then
      seen[id] = i
      seen_g[i], seen_s[i] = pg, ps
    end
    out[#out + 1] = status
    out[#out + 1] = tonumber(pg)
    out[#out + 1] = tonumber(ps) or 0
    out[#out + 1] = old_u
    out[#out + 1] = old_ts
  elseif pg then
    -- duplicate: report the stored positions; repair body + indexes if the body is missing
    out[#out + 1] = 0
    out[#out + 1] = tonumber(pg)
    out[#out + 1] = tonumber(ps) or 0
    if pts == ev_ts[i] and pu == ev_user[i] and not seen[id] and not has_body(i) then
      index(i, pg, ps)
    end
  else  -- new: claimed above with g_str, s_val
    gpos = gpos + 1
    local sid = ev_sid[i]
    if sid then
      spos_cache[sid] = spos_cache[sid] + 1
      spos_dirty[sid] = true
    end
    new_ids = new_ids + 1
    seen[id] = i
    seen_g[i] = g_str
    seen_s[i] = s_val
    index(i, g_str, s_val)
    tails[#tails + 1] = g_str
    out[#out + 1] = 1
    out[#out + 1] = gpos
    out[#out + 1] = tonumber(s_val) or 0
    if reserve then
      out[#out + 1] = ''
      out[#out + 1] = ''
    end
  end
end

-- split bucket nb - lv into itself and bucket nb (its ids whose hash mod 2 lv is nb)
local function split(count)
  local lv = id_level(count)
  local p = count - lv
  local from = base .. ':i:' .. fmt(p)
  local kv = redis.call('HGETALL', from)
  local move, gone = {}, {}
  for j = 1, #kv, 2 do
    if tonumber(sub(redis.sha1hex(kv[j]), 1, 8), 16) % (2 * lv) ~= p then
      move[#move + 1] = kv[j]
      move[#move + 1] = kv[j + 1]
      gone[#gone + 1] = kv[j]
    end
  end
  if #gone > 0 then
    redis.call('HSET', base .. ':i:' .. fmt(count), unpack(move))
    redis.call('HDEL', from, unpack(gone))
  end
end

if new_ids > 0 then
  nids = nids + new_ids
  while nids > nb * ID_LOAD do
    split(nb)
    nb = nb + 1
  end
  redis.call('HSET', ib_key, 'b', fmt(nb), 'n', fmt(nids))
end
if gpos ~= gpos0 then
  redis.call('SET', gpos_key, fmt(gpos))
end
local sp_args = {}
for sid, _ in pairs(spos_dirty) do
  sp_args[#sp_args + 1] = sid
  sp_args[#sp_args + 1] = fmt(spos_cache[sid])
end
if #sp_args > 0 then
  redis.call('HSET', spos_key, unpack(sp_args))
end
flush(base .. ':days')
add_starts(base .. ':win', windows)
if #seq_order > 0 then
  local qb = {}
  for _, blk in ipairs(seq_order) do
    redis.call('HSET', base .. ':q:' .. fmt(blk), unpack(seq_blocks[blk]))
    qb[#qb + 1] = blk
    qb[#qb + 1] = fmt(blk)
  end
  redis.call('ZADD', base .. ':qb', unpack(qb))
end
-- one tail entry: id <last position>-0, n new events, s empty positions before them (a jump)
local function announce(last, count, empty)
  local args = {base .. ':tail', 'MINID', '~', fmt(math.max(0, last - tonumber(maxlen))),
    fmt(last) .. '-0', 'n', fmt(count)}
  if empty > 0 then
    args[#args + 1] = 's'
    args[#args + 1] = fmt(empty)
  end
  redis.call('XADD', unpack(args))
end
if (#tails > 0 or skipped > 0) and not reserve then
  announce(gpos, #tails, skipped)
end
if op == 'confirm' and #ARGV > a0 then
  local cr_key = base .. ':cr'
  local add = {}
  for j = a0 + 1, #ARGV, 2 do
    add[#add + 1] = ARGV[j]
    add[#add + 1] = ARGV[j] .. '-' .. ARGV[j + 1]
  end
  redis.call('ZADD', cr_key, unpack(add))
  local c0 = tonumber(redis.call('GET', base .. ':conf') or '0')
  local c = c0
  local empty, count = 0, 0  -- of the entry being built: empty positions, then events
  while true do
    local first = redis.call('ZRANGE', cr_key, 0, 0)
    if #first == 0 then
      break
    end
    local lo, hi, skip = string.match(first[1], '^(%d+)%-(%d+)(.*)$')
    lo, hi = tonumber(lo), tonumber(hi)
    if lo > c + 1 then
      break
    end
    redis.call('ZREM', cr_key, first[1])
    if hi > c then
      if skip == '-s' then  -- a jump's empty positions start a new entry
        if count > 0 then
          announce(c, count, empty)
          empty, count = 0, 0
        end
        empty = empty + hi - c
      else
        count = count + hi - c
      end
      c = hi
    end
  end
  if c > c0 then
    redis.call('SET', base .. ':conf', fmt(c))
    announce(c, count, empty)
  end
end
record_offsets(6, out)
return out
