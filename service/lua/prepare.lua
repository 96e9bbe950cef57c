-- prepare (read-only): what the caller must compute for a new detection (see service/store.py).
-- keys: state, order, dets, history; args: detection_id, mjd
local state_key, order_key, dets_key = KEYS[k], KEYS[k + 1], KEYS[k + 2]
local id, mjd = ARGV[a], ARGV[a + 1]
local n = redis.call('ZCARD', order_key)
local st = state(state_key)
local current = st[@MODEL_VERSION_AT@] == MODEL_VERSION
if redis.call('HEXISTS', dets_key, id) == 1 then
  if current then return {'duplicate', n, st} end
  local lc = first_n(order_key, dets_key, N_STEPS)
  return {'duplicate', n, st, lc[1], lc[2]}
end
if n == 0 then return {'new', 0, st} end
local rank = redis.call('ZCOUNT', order_key, '-inf', '(' .. mjd)
if rank < N_STEPS then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', order_key, mjd, mjd)) do
    if bytes_lt(m, id) then rank = rank + 1 end
  end
end
if current and rank >= N_STEPS then return {'beyond', n, st} end
if current and rank == n and tonumber(st[@N_USED_AT@]) == n then return {'step', n, st} end
local lc = first_n(order_key, dets_key, N_STEPS)
return {'recompute', n, st, lc[1], lc[2]}
