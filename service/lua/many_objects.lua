-- Runs the per-object body (prepare.lua or commit.lua) once per object block of a call.
-- ARGV = n_steps, model_version, n_objects, then per object: n_keys, n_args, args; KEYS = every
-- object's keys in the same order. Loaded by service.lua, which fills in the markers.
local N_STEPS, MODEL_VERSION = tonumber(ARGV[1]), ARGV[2]
local function state(state_key) return redis.call('HMGET', state_key, @STATE_FIELDS@) end
local function first_n(order_key, dets_key, n)
  local ids = redis.call('ZRANGE', order_key, 0, n - 1)
  if #ids == 0 then return {ids, {}} end
  return {ids, redis.call('HMGET', dets_key, unpack(ids))}
end
local function bytes_lt(x, y)
  for i = 1, math.min(#x, #y) do
    local p, q = string.byte(x, i), string.byte(y, i)
    if p ~= q then return p < q end
  end
  return #x < #y
end
local function object(k, a)
@BODY@
end
local out, k, a = {}, 1, 4
for i = 1, tonumber(ARGV[3]) do
  local n_keys, n_args = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  out[i] = object(k, a + 2)
  k, a = k + n_keys, a + 2 + n_args
end
return out
