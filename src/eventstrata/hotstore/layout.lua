-- eventstrata hot-tier layout rules, shared by write.lua, read.lua and remove.lua: scripts.py
-- puts this file in front of each of them (after read.lua's flags line), so each rule has one
-- Lua home. Their Python home is keys.py, whose docstring is the layout; the tests compare the
-- two.

local DAY = 86400000  -- keys.DAY_MS
local SEQ_BLOCK = 128  -- keys.SEQ_BLOCK
local TYPE_SET = 3600000  -- keys.TYPE_SET_MS
local ID_LOAD = 48  -- keys.ID_BUCKET_LOAD
local POS_GAP = 1048576  -- keys.POS_GAP
local POS_EPOCH_MS = 1767225600000  -- keys.POS_EPOCH_MS
local POS_PER_MS = 1000  -- keys.POS_PER_MS

local function fmt(x)
  return string.format('%d', x)
end

-- id buckets (keys.py, "Id buckets"): lv = 2^L with 2^L <= nb < 2^(L+1) for nb buckets; an
-- id's hash h is the first 32 bits of its SHA-1 (keys.id_hash: the writer passes it, the
-- others compute it with id_hash)
local function id_level(nb)
  local lv = 1
  while lv * 2 <= nb do
    lv = lv * 2
  end
  return lv
end
local function id_bucket(h, nb, lv)
  local b = h % (2 * lv)
  if b >= nb then
    b = h % lv
  end
  return b
end
local function id_hash(id)
  return tonumber(string.sub(redis.sha1hex(id), 1, 8), 16)
end

-- user sets (keys.py, "User sets"): user u's sets of day D start at D and at the offsets from
-- D that the field "<u>:<D>" of the registry <base>:us lists (ascending, comma-separated); the
-- set starting at S is <base>:u:<u>:<S>, and holds the events from S to the next start.

-- the starts (numbers, ascending) of a day (a number) whose registry value is v (nil or
-- false: none)
local function starts_of(day, v)
  local s = {day}
  if v then
    for off in string.gmatch(v, '%d+') do
      s[#s + 1] = day + tonumber(off)
    end
  end
  return s
end

-- the index in ascending starts s of the set holding ts (the greatest start <= ts)
local function set_index(s, ts)
  local lo, hi = 1, #s
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if s[mid] <= ts then
      lo = mid
    else
      hi = mid - 1
    end
  end
  return lo
end

-- the user sets of base (a tenant's or a shard's): .registry (the key), .cache ("<u>:<D>" ->
-- starts, one HGET per field and call), .starts(u, day), .key(u, start), .at(u, ts) (the key
-- of the set holding ts), .keys_in(u, day, lo, hi) (the keys of the day's sets whose ranges
-- meet [lo, hi), ascending) and .parts(field) (its user part and day); day, start, ts, lo and
-- hi are numbers
local function user_sets(base)
  local registry, u_pre, cache = base .. ':us', base .. ':u:', {}
  local self = {registry = registry, cache = cache}
  function self.parts(f)
    local u, d = string.match(f, '^(.*):(%d+)$')
    return u, tonumber(d)
  end
  function self.starts(u, day)
    local f = u .. ':' .. fmt(day)
    local s = cache[f]
    if not s then
      s = starts_of(day, redis.call('HGET', registry, f))
      cache[f] = s
    end
    return s
  end
  function self.key(u, start)
    return u_pre .. u .. ':' .. fmt(start)
  end
  function self.at(u, ts)
    local s = self.starts(u, ts - ts % DAY)
    return self.key(u, s[set_index(s, ts)])
  end
  function self.keys_in(u, day, lo, hi)
    local s = self.starts(u, day)
    local out = {}
    for i = 1, #s do
      if s[i] < hi and (s[i + 1] or day + DAY) > lo then
        out[#out + 1] = self.key(u, s[i])
      end
    end
    return out
  end
  return self
end

-- add delta (hour -> members added to, or removed from, the hour's type sets) to the hour
-- counts <base>:hc: one HMGET, then at most one HSET and one HDEL (an emptied hour is removed)
local function count_hours(base, delta)
  local hours, vals = {}, {}
  for h, n in pairs(delta) do
    if n ~= 0 then
      hours[#hours + 1] = h
      vals[#vals + 1] = n
    end
  end
  if #hours == 0 then
    return
  end
  local hc = base .. ':hc'
  local cur = redis.call('HMGET', hc, unpack(hours))
  local set, gone = {}, {}
  for j = 1, #hours do
    local v = (tonumber(cur[j]) or 0) + vals[j]
    if v > 0 then
      set[#set + 1] = hours[j]
      set[#set + 1] = fmt(v)
    else
      gone[#gone + 1] = hours[j]
    end
  end
  if #set > 0 then
    redis.call('HSET', hc, unpack(set))
  end
  if #gone > 0 then
    redis.call('HDEL', hc, unpack(gone))
  end
end
