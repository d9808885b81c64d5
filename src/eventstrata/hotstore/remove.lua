-- eventstrata hot-tier removal of archived events: one call per chunk of <= 250 events.
--
-- KEYS[1] = <base>:ids  (declared so the call is routed to the tenant's Cluster slot)
-- ARGV[1] = <base>, ARGV[2] = the window start (ms), ARGV[3] = the window size (ms)
-- then five values per event: its time (ms), its id, its user part ('_' when none), its type
-- part and its global position (keys.py has the layout and the member forms).
--
-- Removes each event's body member from its user's set, its short members from its type's
-- and its day's sets, its position from its seq block (an emptied block leaves qb) and its ids record; then, when no event of the window is
-- left in the day's set, the window from win (and the day from days once its set is gone). Atomic per call, so a write or a read never
-- sees an event half removed. Idempotent. Returns the number of body members removed.

local base = ARGV[1]
local window = tonumber(ARGV[2])
local wsize = tonumber(ARGV[3])
local DAY = 86400000
local SEQ_BLOCK = 128  -- keys.SEQ_BLOCK

local function fmt(x)
  return string.format('%d', x)
end

local removed = 0
for i = 4, #ARGV, 5 do
  local ts_s, id, u, t, g = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local ts = tonumber(ts_s)
  local day = fmt(ts - ts % DAY)
  local e = id
  if string.find(id, '\0', 1, true) then
    e = string.gsub(id, '%z', '\0\1')
  end
  e = e .. '\0\0'
  local ukey = base .. ':u:' .. u .. ':' .. day
  for _, m in ipairs(redis.call('ZRANGE', ukey, ts_s, ts_s, 'BYSCORE')) do
    if string.sub(m, 1, #e) == e then
      removed = removed + redis.call('ZREM', ukey, m)
    end
  end
  local short = e .. u
  redis.call('ZREM', base .. ':t:' .. t .. ':' .. day, short)
  redis.call('ZREM', base .. ':a:' .. day, short)
  local blk = fmt(math.floor(tonumber(g) / SEQ_BLOCK))
  local qkey = base .. ':q:' .. blk
  redis.call('HDEL', qkey, g)
  if redis.call('EXISTS', qkey) == 0 then
    redis.call('ZREM', base .. ':qb', blk)
  end
  redis.call('HDEL', KEYS[1], id)
end
local day = fmt(window - window % DAY)
local akey = base .. ':a:' .. day
if redis.call('ZCOUNT', akey, fmt(window), '(' .. fmt(window + wsize)) == 0 then
  redis.call('ZREM', base .. ':win', fmt(window))
  if redis.call('EXISTS', akey) == 0 then
    redis.call('ZREM', base .. ':days', day)
  end
end
return removed
