-- read_object: one consistent snapshot of an object (see RedisStateStore.read_object).
-- KEYS: state, order, dets, history. ARGV: with_light_curve ('1'|'0'), with_history ('1'|'0')
local out = {redis.call('HMGET', KEYS[1], @STATE_FIELDS@), {}, {}, {}}
if ARGV[1] == '1' then
  local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
  out[2] = ids
  if #ids > 0 then out[3] = redis.call('HMGET', KEYS[3], unpack(ids)) end
end
if ARGV[2] == '1' then out[4] = redis.call('LRANGE', KEYS[4], 0, -1) end
return out
