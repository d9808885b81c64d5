-- eventstrata hot-tier removal of archived events: one call per chunk of <= 250 events.
--
-- KEYS[1] = <base>:ib  (declared so the call is routed to its Cluster slot)
-- ARGV[1] = the operation: 'all' (a tenant in one slot), or for a sharded tenant 'shard' (in
--           one of its shards) and 'coord' (in the tenant's own slot, after the shards)
-- ARGV[2] = <base> (the tenant's, or for 'shard' the shard's), ARGV[3] = the window start (ms),
-- ARGV[4] = the window size (ms), ARGV[5] = 'coord': '1' when no shard holds an event of the
-- window any more ('' otherwise; ignored by the other operations)
-- then five values per event: its time (ms), its id, its user part ('_' when none), its type
-- part and its global position (keys.py has the layout and the member forms).
--
-- 'all' and 'shard' remove each event's body member from the user set holding its time (the
-- day's set u:<u>:D, or a later start the registry <base>:us lists under "<u>:<D>"; a day's
-- field is dropped once none of its sets is left) and its short member from its type's index
-- set (an hour; the hour counts hc follow); 'all' and
-- 'coord' its position from its seq block (an emptied block leaves qb) and its id from its id
-- bucket (counted out of n). Then, for each hour of the window,
-- 'all' and 'shard' drop from the hour's types registry (ty:<hour>) the types whose set is
-- gone and count the window's events left in the others; 'all' removes the window from win
-- when none is left, and the day from days once none of the day's registries is left;
-- 'shard' only the day from the shard's days, and 'coord' the window from win when ARGV[5]
-- says so. Atomic per call, so a write or a read never sees an event half removed in a slot.
-- Idempotent. Returns the number of body members removed ('all'), that number and how many
-- events of the window the shard still holds ('shard'), or 0 ('coord').

local op = ARGV[1]
local base = ARGV[2]
local window = tonumber(ARGV[3])
local wsize = tonumber(ARGV[4])
local data = op == 'all' or op == 'shard'
local coord = op == 'all' or op == 'coord'
if not (data or coord) then
  return redis.error_reply('ERR eventstrata remove: unknown operation ' .. tostring(op))
end


local nb, lv, gone = 1, 1, 0  -- 'all', 'coord': the tenant's id buckets
if coord then
  nb = tonumber(redis.call('HGET', base .. ':ib', 'b')) or 1
  lv = id_level(nb)
end

local usets = user_sets(base)
local removed = 0
local from_hour = {}  -- hour -> type members removed, negative (the hour counts hc follow them)
for i = 6, #ARGV, 5 do
  local ts_s, id, u, t, g = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if data then
    local ts = tonumber(ts_s)
    local e = id
    if string.find(id, '\0', 1, true) then
      e = string.gsub(id, '%z', '\0\1')
    end
    e = e .. '\0\0'
    local ukey = usets.at(u, ts)
    for _, m in ipairs(redis.call('ZRANGE', ukey, ts_s, ts_s, 'BYSCORE')) do
      if string.sub(m, 1, #e) == e then
        removed = removed + redis.call('ZREM', ukey, m)
      end
    end
    local h = fmt(ts - ts % TYPE_SET)
    if redis.call('ZREM', base .. ':t:' .. t .. ':' .. h, e .. u) == 1 then
      from_hour[h] = (from_hour[h] or 0) - 1
    end
  end
  if coord then
    local blk = fmt(math.floor(tonumber(g) / SEQ_BLOCK))
    local qkey = base .. ':q:' .. blk
    redis.call('HDEL', qkey, g)
    if redis.call('EXISTS', qkey) == 0 then
      redis.call('ZREM', base .. ':qb', blk)
    end
    gone = gone + redis.call('HDEL', base .. ':i:' .. fmt(id_bucket(id_hash(id), nb, lv)), id)
  end
end
if gone > 0 then
  redis.call('HINCRBY', base .. ':ib', 'n', -gone)
end
-- the registry's fields of days whose sets are all gone (a day with a field has > 1 start)
local dropped = {}
for f, s in pairs(usets.cache) do
  if #s > 1 then
    local u, day = usets.parts(f)
    if redis.call('EXISTS', unpack(usets.keys_in(u, day, day, day + DAY))) == 0 then
      dropped[#dropped + 1] = f
    end
  end
end
if #dropped > 0 then
  redis.call('HDEL', usets.registry, unpack(dropped))
end
count_hours(base, from_hour)
if op == 'coord' then
  if ARGV[5] == '1' then
    redis.call('ZREM', base .. ':win', fmt(window))
  end
  return 0
end
local day0 = window - window % DAY
local left = 0
for h = window - window % TYPE_SET, window + wsize - 1, TYPE_SET do
  local hs = fmt(h)
  local ykey = base .. ':ty:' .. hs
  for _, t in ipairs(redis.call('ZRANGE', ykey, 0, -1)) do
    local tkey = base .. ':t:' .. t .. ':' .. hs
    if redis.call('EXISTS', tkey) == 0 then
      redis.call('ZREM', ykey, t)
    else
      left = left + redis.call('ZCOUNT', tkey, fmt(window), '(' .. fmt(window + wsize))
    end
  end
end
if left == 0 then
  if op == 'all' then
    redis.call('ZREM', base .. ':win', fmt(window))
  end
  local sets = {}
  for h = day0, day0 + DAY - 1, TYPE_SET do
    sets[#sets + 1] = base .. ':ty:' .. fmt(h)
  end
  if redis.call('EXISTS', unpack(sets)) == 0 then
    redis.call('ZREM', base .. ':days', fmt(day0))
  end
end
if op == 'shard' then
  return {removed, left}
end
return removed
