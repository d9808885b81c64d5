#!lua flags=no-writes
-- eventstrata hot-tier read: the bodies and ids records of up to a page of events, one call.
--
-- KEYS[1] = <base>:ids  (declared so the call is routed to the tenant's Cluster slot)
-- ARGV[1] = <base>      ("<prefix>:{<tenant>}"; every key read shares the {tenant} hash tag)
-- ARGV[2] = window size in ms (the body of an event of time ts is in <base>:b:<ts - ts % size>)
-- ARGV[3] = a string key to GET after the reads, or '' for none
-- then two arguments per event: its time in ms (decimal), or '' to take it from the event's ids
-- record (a get by id, which knows only the id), and its id.
--
-- Returns a flat array, two values per event in input order -- the stored body (nil when
-- absent) and the ids record "ts|gpos|spos" (nil when absent) -- then the value of ARGV[3]
-- (nil when absent or not asked for). Reads only; a script runs atomically, so the final GET
-- sees the state the bodies were read in.

local base = ARGV[1]
local wsize = tonumber(ARGV[2])
local then_get = ARGV[3]
local n = (#ARGV - 3) / 2
local body_pre = base .. ':b:'

local out = {}
if n > 0 then
  local ids = {}
  for i = 1, n do
    ids[i] = ARGV[3 + 2 * i]
  end
  local refs = redis.call('HMGET', KEYS[1], unpack(ids))
  for i = 1, n do
    local ref = refs[i]
    local ts = tonumber(ARGV[2 + 2 * i])
    if not ts and ref then
      ts = tonumber(string.match(ref, '^(%d+)|'))
    end
    if ts then
      out[2 * i - 1] = redis.call('HGET', body_pre .. string.format('%d', ts - ts % wsize), ids[i])
    else
      out[2 * i - 1] = false
    end
    out[2 * i] = ref
  end
end
if then_get ~= '' then
  out[2 * n + 1] = redis.call('GET', then_get)
end
return out
