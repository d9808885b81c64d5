#!lua flags=no-writes
-- eventstrata hot-tier first page, newest first, in one call: the archive watermark, one index
-- key's newest members at or above it, and the bodies and ids records of the first of them.
--
-- KEYS[1] = the index key (a sorted set of members "<ts13>|<id>", score = ts; declared so the
--           call is routed to the tenant's Cluster slot)
-- ARGV[1] = <base>  ("<prefix>:{<tenant>}"; every key read shares the {tenant} hash tag)
-- ARGV[2] = window size in ms (the body of an event of time ts is in <base>:b:<ts - ts % size>)
-- ARGV[3] = lower bound of the range in ms (inclusive), before clamping at the watermark
-- ARGV[4] = upper bound in ms (exclusive), or '' for none
-- ARGV[5] = how many members to read (LIMIT)
-- ARGV[6] = how many of them (the first) to read bodies for
--
-- Reads W = GET <base>:wm (0 when absent), then ZRANGE KEYS[1] over [max(lo, W), hi) BYSCORE REV
-- LIMIT 0 ARGV[5], then the first ARGV[6] members' ids records (HMGET <base>:ids) and bodies
-- (HGET of their windows). A script runs atomically: the archiver cannot move W or remove a
-- window between these reads, so the members are exactly the hot events at or above that W.
--
-- Returns a flat array: W, the number of members n, the n members, then for each of the first
-- k = min(n, ARGV[6]) members its body and its ids record (nil when absent).

local base = ARGV[1]
local wsize = tonumber(ARGV[2])
local w = tonumber(redis.call('GET', base .. ':wm') or '0')
local lo = math.max(tonumber(ARGV[3]), w)
local members = {}
if ARGV[4] == '' then
  members = redis.call('ZRANGE', KEYS[1], '+inf', string.format('%d', lo), 'BYSCORE', 'REV',
    'LIMIT', 0, ARGV[5])
elseif lo < tonumber(ARGV[4]) then
  members = redis.call('ZRANGE', KEYS[1], '(' .. ARGV[4], string.format('%d', lo), 'BYSCORE', 'REV',
    'LIMIT', 0, ARGV[5])
end

local n = #members
local k = math.min(n, tonumber(ARGV[6]))
local out = {w, n}
for i = 1, n do
  out[2 + i] = members[i]
end
if k > 0 then
  local ids, ts = {}, {}
  for i = 1, k do
    local m = members[i]
    local bar = string.find(m, '|', 1, true)
    ts[i] = tonumber(string.sub(m, 1, bar - 1))
    ids[i] = string.sub(m, bar + 1)
  end
  local refs = redis.call('HMGET', base .. ':ids', unpack(ids))
  local body_pre = base .. ':b:'
  for i = 1, k do
    out[2 + n + 2 * i - 1] = redis.call('HGET', body_pre .. string.format('%d', ts[i] - ts[i] % wsize), ids[i])
    out[2 + n + 2 * i] = refs[i]
  end
end
return out
