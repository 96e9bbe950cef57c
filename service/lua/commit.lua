-- commit: insert the detection and write the classification if the model input is unchanged
-- (see service/store.py).
-- keys: state, order, dets, history[, extra keys...]
-- args: 1 head: the small arguments, space-separated (one argument instead of eight: each costs the
--   caller and the server more than this match): detection_id ('' = refresh only), mjd, mode
--   ('classify'|'step'|'store'), n_used (how many ids), has_position ('1'|'0'), expected revision
--   ('' = any; required by 'step'), expected count of detections after insertion ('' = any), n_extra E;
--   2 ids (the first n_steps ids after insertion, newline-joined: what the classification was computed
--   from; stored as its ids), 3 payload, 4 row (history row without its closing brace; '' = none),
--   5 RNN state, 6 state document, 7 notify state ('' = not written), then E extra args (for the hook)
local state_key, order_key, dets_key, history_key = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
local id, mjd, mode, n_used, has_position, expected_revision, expected_count, n_extra =
  string.match(ARGV[a], '^(%S*) (%S*) (%S*) (%S*) (%S*) (%S*) (%S*) (%S*)$')
local ids, payload, row, rnn, doc, notify = unpack(ARGV, a + 1, a + 6)
local key_at, extra_at = k + 4, a + 7
n_used, n_extra = tonumber(n_used), tonumber(n_extra)
if id ~= '' then
  if has_position ~= '1' and redis.call('EXISTS', order_key) == 0 then
    return {'no_position', 0, state(state_key)}
  end
  if redis.call('HSETNX', dets_key, id, payload) == 0 then
    return {'duplicate', redis.call('ZCARD', order_key), state(state_key)}
  end
  redis.call('ZADD', order_key, mjd, id)
end
local ok
if mode == 'store' then
  ok = redis.call('ZRANK', order_key, id) >= N_STEPS
  ok = ok and redis.call('HGET', state_key, '@MODEL_VERSION@') == MODEL_VERSION
else
  local revision_ok = expected_revision == ''
    or tonumber(redis.call('HGET', state_key, '@REVISION@') or '0') == tonumber(expected_revision)
  if mode == 'step' then
    -- an unchanged revision means an unchanged input (module docstring): the new id must come last
    ok = revision_ok and redis.call('ZRANK', order_key, id) == n_used - 1
  else
    ok = revision_ok and table.concat(redis.call('ZRANGE', order_key, 0, N_STEPS - 1), '\n') == ids
  end
  if ok and expected_count ~= '' then ok = redis.call('ZCARD', order_key) == tonumber(expected_count) end
end
if not ok then
  if id ~= '' then
    redis.call('HDEL', dets_key, id)
    redis.call('ZREM', order_key, id)
  end
  local lc = first_n(order_key, dets_key, N_STEPS)
  return {'conflict', redis.call('ZCARD', order_key), state(state_key), lc[1], lc[2]}
end
local n = redis.call('ZCARD', order_key)
if mode == 'store' then return {'stored', n, state(state_key)} end
if id == '' and redis.call('HGET', state_key, '@IDS@') == ids
    and redis.call('HGET', state_key, '@MODEL_VERSION@') == MODEL_VERSION then
  return {'unchanged', n, state(state_key)}
end
if notify ~= '' then
  redis.call('HSET', state_key, '@MODEL_VERSION@', MODEL_VERSION, '@IDS@', ids,
    '@N_USED@', n_used, '@RNN@', rnn, '@DOC@', doc,
    '@NOTIFY@', notify)
else
  redis.call('HSET', state_key, '@MODEL_VERSION@', MODEL_VERSION, '@IDS@', ids,
    '@N_USED@', n_used, '@RNN@', rnn, '@DOC@', doc)
end
local revision = redis.call('HINCRBY', state_key, '@REVISION@', 1)
if row ~= '' then
  redis.call('RPUSH', history_key, row .. ',"n_detections":' .. n .. ',"revision":' .. revision .. '}')
end
-- @after-commit
return {'ok', n, revision}
