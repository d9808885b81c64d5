-- eventstrata: raise hash fields, never lower them (the lineage mark, tombstones).
--
-- KEYS[1] = the hash; ARGV = field, value, field, value, ... (values are integers).
-- Each field is set to its value unless it already holds a greater one. Returns each field's
-- previous value, in argument order ('' = absent).

local out = {}
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  out[#out + 1] = cur or ''
  if not cur or tonumber(ARGV[i + 1]) > tonumber(cur) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return out
