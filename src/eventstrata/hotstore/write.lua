-- eventstrata hot-tier write: one call per (tenant, chunk of <= 500 events).
--
-- KEYS[1] = <base>:ids  (declared so the call is routed to the tenant's Cluster slot)
-- ARGV[1] = <base>      ("<prefix>:{<tenant>}"; every key below shares the {tenant} hash tag)
-- ARGV[2] = how many of the newest events the tail stream keeps at least (approximate trim)
-- ARGV[3] = k, the number of Kafka offsets this call records (0 for all but a tenant's last
--           chunk of a batch; a call may also carry no events and only record), then k triples:
--           field "<topic>|<partition>", next offset (decimal), and the value the writer
--           expects the record to hold at least ('' = none). Each is max-set into
--           <base>:offsets in this same call, so the record of which offsets the tenant's
--           stored data covers can never run ahead of the data -- except where the record is
--           below its expected value (Redis lost writes): that field is left as it is, so it
--           keeps pointing before the lost records until the writer's replay has stored them
--           again (see ingest/recovery.py).
-- then two arguments per event:
--   meta = "<ts>|<window>|<day>|<u>|<t>|<stream_len>|<stream_id><event_id>"
--          ts: event time in ms; window / day: start of its window / UTC day (ms);
--          u / t: keys.user_part() of the user id ('_' when none) and keys.encode_part() of
--          the type; stream_len: byte length of the raw stream id (0 when none); then the
--          stream id and the event id (the id is the rest of the string: any byte).
--   body = the stored body (hotstore/codec.py: compressed, positions not in it); opaque here.
--
-- Key names and members are those of keys.py (its docstring is the layout): the escaped id
-- (NUL -> NUL 0x01) and NUL NUL start every member.
--
-- Per event: an id already in <base>:ids is a duplicate: its stored positions are returned
-- and, when its body member is missing from its user's set (a removed day, a repair), body
-- and indexes are re-written with the stored positions -- never a new tail entry, never new
-- positions. A duplicate whose stored time or user (read from its position's seq value)
-- differs from the delivered one is left untouched (first write wins). A new id gets gpos =
-- last gpos + 1 and, with a stream id, spos = last spos of that stream + 1, recorded in ids as
-- "gpos|spos"; then the body member in u:<u>:<day>, short members in t:<t>:<day> and a:<day>,
-- the position's seq value "u|ts" in its q block, and its window in win. The call's new events get consecutive positions and share ONE tail entry,
-- id "<last gpos>-0", with one field "n" = how many (hotstore/tailentry.py). Entries older
-- than the newest ARGV[2] positions are trimmed (XADD MINID ~).
--
-- Returns a flat array, three integers per event, in input order:
--   is_new (1/0), global position, stream position (0 = none);
-- then, per recorded offset field in input order, its value before this call ('' = none).

local base = ARGV[1]
local maxlen = ARGV[2]
local ids_key = KEYS[1]
local k = tonumber(ARGV[3])
local a0 = 3 + 3 * k  -- ARGV[a0 + 2i - 1] = meta of event i, ARGV[a0 + 2i] = its body
local n = (#ARGV - a0) / 2

local SEQ_BLOCK = 128  -- keys.SEQ_BLOCK
local find, sub = string.find, string.sub

local function fmt_int(x)
  return string.format('%d', x)
end

local ev_ts, ev_win, ev_day, ev_user, ev_type, ev_sid, ev_id, ev_esc = {}, {}, {}, {}, {}, {}, {}, {}
local idlist = {}
for i = 1, n do
  local meta = ARGV[a0 + 2 * i - 1]
  local p1 = find(meta, '|', 1, true)
  local p2 = p1 and find(meta, '|', p1 + 1, true)
  local p3 = p2 and find(meta, '|', p2 + 1, true)
  local p4 = p3 and find(meta, '|', p3 + 1, true)
  local p5 = p4 and find(meta, '|', p4 + 1, true)
  local p6 = p5 and find(meta, '|', p5 + 1, true)
  local slen = p6 and tonumber(sub(meta, p5 + 1, p6 - 1))
  if not slen then
    return redis.error_reply('ERR eventstrata write: malformed meta of event ' .. i)
  end
  local ts, win, day = sub(meta, 1, p1 - 1), sub(meta, p1 + 1, p2 - 1), sub(meta, p2 + 1, p3 - 1)
  local u, t, p = sub(meta, p3 + 1, p4 - 1), sub(meta, p4 + 1, p5 - 1), p6 + 1
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
  idlist[i] = id
end

local stored = {}  -- a call without events only records offsets (the writer's refresh)
if n > 0 then
  stored = redis.call('HMGET', ids_key, unpack(idlist))
end

local gpos_key = base .. ':gpos'
local spos_key = base .. ':spos'
local gpos = tonumber(redis.call('GET', gpos_key) or '0')
local gpos0 = gpos
local spos_cache = {}
local spos_dirty = {}

local ids_args = {}
local zsets = {}       -- key -> {score, member, ...}
local zset_order = {}
local windows = {}
local days = {}
local seq_blocks = {}  -- block -> {position, value, ...}
local seq_order = {}
local tails = {}       -- positions of the new events
local seen = {}        -- id -> index of the event that stored it earlier in this call
local seen_g, seen_s = {}, {}
local u_pre, t_pre, a_pre = base .. ':u:', base .. ':t:', base .. ':a:'
local out = {}

local function zadd(key, score, m)
  local t = zsets[key]
  if not t then
    t = {}
    zsets[key] = t
    zset_order[#zset_order + 1] = key
  end
  t[#t + 1] = score
  t[#t + 1] = m
end

local function user_key(i)
  return u_pre .. ev_user[i] .. ':' .. ev_day[i]
end

-- whether the body member of event i is in its user's set
local function has_body(i)
  local e = ev_esc[i]
  local n_e = #e
  for _, m in ipairs(redis.call('ZRANGE', user_key(i), ev_ts[i], ev_ts[i], 'BYSCORE')) do
    if string.sub(m, 1, n_e) == e then
      return true
    end
  end
  return false
end

local function index(i, g_str, s_val)
  local ts, day, u, t, e = ev_ts[i], ev_day[i], ev_user[i], ev_type[i], ev_esc[i]
  local body = ARGV[a0 + 2 * i]
  zadd(user_key(i), ts, e .. t .. '|' .. g_str .. '|' .. s_val .. '|' .. body)
  local short = e .. u
  zadd(t_pre .. t .. ':' .. day, ts, short)
  zadd(a_pre .. day, ts, short)
  windows[ev_win[i]] = true
  days[day] = true
  local blk = math.floor(tonumber(g_str) / SEQ_BLOCK)
  local q = seq_blocks[blk]
  if not q then
    q = {}
    seq_blocks[blk] = q
    seq_order[#seq_order + 1] = blk
  end
  q[#q + 1] = g_str
  q[#q + 1] = u .. '|' .. ts
end

for i = 1, n do
  local id = ev_id[i]
  local prev = stored[i]
  local pts, pg, ps, pu
  if prev then
    pg, ps = string.match(prev, '^(%d+)|(%d*)$')
    local at = redis.call('HGET', base .. ':q:' .. fmt_int(math.floor(tonumber(pg) / SEQ_BLOCK)), pg)
    if at then
      pu, pts = string.match(at, '^(.*)|(%d+)$')
    end
  elseif seen[id] then
    local j = seen[id]
    pts, pg, ps, pu = ev_ts[j], seen_g[j], seen_s[j], ev_user[j]
  end
  if pg then
    -- duplicate: report the stored positions; repair body + indexes if the body is missing
    out[#out + 1] = 0
    out[#out + 1] = tonumber(pg)
    out[#out + 1] = tonumber(ps) or 0
    if pts == ev_ts[i] and pu == ev_user[i] and not seen[id] and not has_body(i) then
      index(i, pg, ps)
    end
  else
    gpos = gpos + 1
    local g_str = fmt_int(gpos)
    local s_val = ''
    local sid = ev_sid[i]
    if sid then
      local cur = spos_cache[sid]
      if cur == nil then
        cur = tonumber(redis.call('HGET', spos_key, sid) or '0')
      end
      cur = cur + 1
      spos_cache[sid] = cur
      spos_dirty[sid] = true
      s_val = fmt_int(cur)
    end
    ids_args[#ids_args + 1] = id
    ids_args[#ids_args + 1] = g_str .. '|' .. s_val
    seen[id] = i
    seen_g[i] = g_str
    seen_s[i] = s_val
    index(i, g_str, s_val)
    tails[#tails + 1] = g_str
    out[#out + 1] = 1
    out[#out + 1] = gpos
    out[#out + 1] = tonumber(s_val) or 0
  end
end

if #ids_args > 0 then
  redis.call('HSET', ids_key, unpack(ids_args))
end
if gpos ~= gpos0 then
  redis.call('SET', gpos_key, fmt_int(gpos))
end
local sp_args = {}
for sid, _ in pairs(spos_dirty) do
  sp_args[#sp_args + 1] = sid
  sp_args[#sp_args + 1] = fmt_int(spos_cache[sid])
end
if #sp_args > 0 then
  redis.call('HSET', spos_key, unpack(sp_args))
end
for _, key in ipairs(zset_order) do
  redis.call('ZADD', key, unpack(zsets[key]))
end
local win_args = {}
for win, _ in pairs(windows) do
  win_args[#win_args + 1] = win
  win_args[#win_args + 1] = win
end
if #win_args > 0 then
  redis.call('ZADD', base .. ':win', unpack(win_args))
end
local day_args = {}
for d, _ in pairs(days) do
  day_args[#day_args + 1] = d
  day_args[#day_args + 1] = d
end
if #day_args > 0 then
  redis.call('ZADD', base .. ':days', unpack(day_args))
end
if #seq_order > 0 then
  local qb = {}
  for _, blk in ipairs(seq_order) do
    redis.call('HSET', base .. ':q:' .. fmt_int(blk), unpack(seq_blocks[blk]))
    qb[#qb + 1] = blk
    qb[#qb + 1] = fmt_int(blk)
  end
  redis.call('ZADD', base .. ':qb', unpack(qb))
end
if #tails > 0 then
  redis.call('XADD', base .. ':tail', 'MINID', '~', fmt_int(math.max(0, gpos - tonumber(maxlen))),
    fmt_int(gpos) .. '-0', 'n', fmt_int(#tails))
end
if k > 0 then
  local offs_key = base .. ':offsets'
  local fields = {}
  for j = 1, k do
    fields[j] = ARGV[1 + 3 * j]
  end
  local prev = redis.call('HMGET', offs_key, unpack(fields))
  local upd = {}
  for j = 1, k do
    local p = prev[j]
    local v = ARGV[2 + 3 * j]
    local want = ARGV[3 + 3 * j]
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
return out
