/**
 * The Lua scripts of the Redis gate (秒杀). Each runs atomically on the one slot that the
 * activity's hash tag puts all its keys on. The keys of one activity:
 *   avail   hash  activity SKU id → units Redis may still grant
 *   bought  hash  "<sku>:<buyer>" → units the buyer holds in live reservations (限购)
 *   orders  hash  order number → its reservation record:
 *                 R|<buyer>|<sku>:<qty>,…  reserved      F|<buyer>|<sku>:<qty>,…  released
 *                 X|<code>|<sku>           refused (the same answer again on a repeat)
 *                 U|<buyer>|<sku>:<qty>,…  in doubt: pending in the database when Redis was
 *                                          reloaded, so counted as taken, but whether the lost
 *                                          Redis granted it is unknown
 *          and "<order number>:<sku>" → B|<qty>: that order's sold units of the SKU were given
 *                 back (a refund) and counted in avail, once
 *   loaded  string present once the activity is loaded; absent, nothing is granted or given back
 *   seq     counter raised by every change of avail, so the reconciler can tell a quiet moment
 *   lock    string who loads, unloads or reconciles the activity now (a token, with a lease)
 * Every script that writes checks `loaded` (or the lock token) first: after Redis lost its data
 * it answers `not_loaded` and the caller reloads from the database instead of guessing.
 */

/** KEYS avail bought orders loaded seq · ARGV orderNo buyer, then (sku qty limit) per item; limit -1 = none. */
export const RESERVE = `
if redis.call('EXISTS', KEYS[4]) == 0 then return {'not_loaded'} end
local rec = redis.call('HGET', KEYS[3], ARGV[1])
local buyer = ARGV[2]
if rec and string.sub(rec, 1, 1) == 'U' then
  -- In doubt, and its checkout is asking now, so it has not acted on any earlier answer: the
  -- units the load counted for it go back, and the reservation is decided afresh below.
  local _, _, held, items = string.find(rec, '^U|([^|]*)|(.*)$')
  for sku, qty in string.gmatch(items, '(%d+):(%d+)') do
    redis.call('HINCRBY', KEYS[1], sku, tonumber(qty))
    if held ~= '0' then redis.call('HINCRBY', KEYS[2], sku .. ':' .. held, -tonumber(qty)) end
  end
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('INCR', KEYS[5])
elseif rec then
  return {'repeat', rec}
end
local n = (#ARGV - 2) / 3
local parts = {}
for i = 0, n - 1 do
  local sku, qty, limit = ARGV[3 + i * 3], tonumber(ARGV[4 + i * 3]), tonumber(ARGV[5 + i * 3])
  local avail = redis.call('HGET', KEYS[1], sku)
  if not avail then return {'not_loaded'} end
  if tonumber(avail) < qty then
    redis.call('HSET', KEYS[3], ARGV[1], 'X|insufficient_stock|' .. sku)
    return {'refused', 'insufficient_stock', sku}
  end
  if limit >= 0 then
    local held = tonumber(redis.call('HGET', KEYS[2], sku .. ':' .. buyer) or '0')
    if held + qty > limit then
      redis.call('HSET', KEYS[3], ARGV[1], 'X|purchase_limit_exceeded|' .. sku)
      return {'refused', 'purchase_limit_exceeded', sku}
    end
  end
  parts[#parts + 1] = sku .. ':' .. qty
end
for i = 0, n - 1 do
  local sku, qty = ARGV[3 + i * 3], tonumber(ARGV[4 + i * 3])
  redis.call('HINCRBY', KEYS[1], sku, -qty)
  if buyer ~= '0' then redis.call('HINCRBY', KEYS[2], sku .. ':' .. buyer, qty) end
end
local record = 'R|' .. buyer .. '|' .. table.concat(parts, ',')
redis.call('HSET', KEYS[3], ARGV[1], record)
redis.call('INCR', KEYS[5])
return {'reserved', record}
`;

/**
 * KEYS avail bought orders loaded seq · ARGV orderNo. Gives a reservation's units back once.
 * An order Redis never granted gets a tombstone, so a reserve arriving late cannot grant it.
 */
export const RELEASE = `
if redis.call('EXISTS', KEYS[4]) == 0 then return 'not_loaded' end
local rec = redis.call('HGET', KEYS[3], ARGV[1])
if not rec then
  redis.call('HSET', KEYS[3], ARGV[1], 'F|0|')
  return 'not_reserved'
end
local state = string.sub(rec, 1, 1)
if state ~= 'R' and state ~= 'U' then return 'already_released' end
local _, _, buyer, items = string.find(rec, '^[RU]|([^|]*)|(.*)$')
for sku, qty in string.gmatch(items, '(%d+):(%d+)') do
  redis.call('HINCRBY', KEYS[1], sku, tonumber(qty))
  if buyer ~= '0' then
    local left = redis.call('HINCRBY', KEYS[2], sku .. ':' .. buyer, -tonumber(qty))
    if left <= 0 then redis.call('HDEL', KEYS[2], sku .. ':' .. buyer) end
  end
end
redis.call('HSET', KEYS[3], ARGV[1], 'F' .. string.sub(rec, 2))
redis.call('INCR', KEYS[5])
return 'released'
`;

/**
 * KEYS avail orders loaded seq · ARGV orderNo, then (sku qty) per SKU. Counts an order's sold
 * units, given back in the database (a refund), as available again — once per (order, SKU): the
 * B marker says it was done, here or by a load whose database snapshot already held them.
 * Answers the units added now, or 'not_loaded' (nothing changed).
 */
export const RETURN = `
if redis.call('EXISTS', KEYS[3]) == 0 then return 'not_loaded' end
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then return 'not_loaded' end
end
local added = 0
for i = 2, #ARGV, 2 do
  local qty = tonumber(ARGV[i + 1])
  if redis.call('HSETNX', KEYS[2], ARGV[1] .. ':' .. ARGV[i], 'B|' .. qty) == 1 then
    redis.call('HINCRBY', KEYS[1], ARGV[i], qty)
    added = added + qty
  end
end
if added > 0 then redis.call('INCR', KEYS[4]) end
return added
`;

/** KEYS avail loaded · ARGV the SKUs. What Redis may still grant, or nothing when not loaded. */
export const AVAILABLE = `
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
return redis.call('HMGET', KEYS[1], unpack(ARGV))
`;

/** KEYS avail bought orders loaded seq lock · ARGV token. Clears the activity for a load, if the lock is still ours. */
export const CLEAR = `
if redis.call('GET', KEYS[6]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('INCR', KEYS[5])
return 1
`;

/** KEYS orders bought lock · ARGV token, record count n, n × (orderNo record), then (boughtField units)… */
export const LOAD_RECORDS = `
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
local i = 3
for _ = 1, n do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  redis.call('HINCRBY', KEYS[2], ARGV[i], tonumber(ARGV[i + 1]))
  i = i + 2
end
return 1
`;

/**
 * KEYS avail bought orders loaded seq lock · ARGV token expireAt_ms info, then (sku available)….
 * The last step of a load: the counts, then the marker that lets reservations in.
 */
export const LOAD_FINISH = `
if redis.call('GET', KEYS[6]) ~= ARGV[1] then return 0 end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
-- placeholders, so every key exists now and carries the expiry
redis.call('HSETNX', KEYS[2], '~', '0')
redis.call('HSETNX', KEYS[3], '~', '~')
redis.call('SET', KEYS[4], ARGV[3])
redis.call('INCR', KEYS[5])
for k = 1, 5 do redis.call('PEXPIREAT', KEYS[k], ARGV[2]) end
return 1
`;

/** KEYS loaded lock · ARGV token. Stops grants (and give-backs) until the next load. */
export const PAUSE = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

/** KEYS lock · ARGV token. Frees the lock if it is still ours. */
export const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS avail orders loaded seq lock · ARGV token seq0 mode('measure'|'repair'), then per SKU:
 * sku dbAvailable wantedDrift pendingCount returningCount, pendingCount × (orderNo qty),
 * returningCount × (orderNo qty).
 * expected = database available − the pending reservations Redis holds as taken (R or U records)
 * − the returning units Redis has not yet counted (no B marker: RETURN will add them);
 * drift = expected − Redis available. Only if nothing changed avail since seq0 (read before the
 * database snapshot) is the answer meaningful; 'repair' adds the drift when it equals the one the
 * previous measurement found. Answers {'ok', sku, redisAvailable, drift, repaired, …} or {'busy'}.
 */
export const RECONCILE = `
if redis.call('GET', KEYS[5]) ~= ARGV[1] then return {'busy'} end
if redis.call('EXISTS', KEYS[3]) == 0 then return {'not_loaded'} end
if (redis.call('GET', KEYS[4]) or '0') ~= ARGV[2] then return {'busy'} end
local out = {'ok'}
local changed = false
local i = 4
while i <= #ARGV do
  local sku, dbAvail, want, np, nr = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  i = i + 5
  local granted = 0
  for _ = 1, np do
    local rec = redis.call('HGET', KEYS[2], ARGV[i])
    local state = rec and string.sub(rec, 1, 1)
    if state == 'R' or state == 'U' then granted = granted + tonumber(ARGV[i + 1]) end
    i = i + 2
  end
  local owed = 0
  for _ = 1, nr do
    if redis.call('HEXISTS', KEYS[2], ARGV[i] .. ':' .. sku) == 0 then owed = owed + tonumber(ARGV[i + 1]) end
    i = i + 2
  end
  local actual = tonumber(redis.call('HGET', KEYS[1], sku) or '0')
  local drift = dbAvail - granted - owed - actual
  local repaired = '0'
  if ARGV[3] == 'repair' and drift ~= 0 and drift == want then
    redis.call('HINCRBY', KEYS[1], sku, drift)
    repaired = '1'
    changed = true
  end
  out[#out + 1] = sku
  out[#out + 1] = tostring(actual)
  out[#out + 1] = tostring(drift)
  out[#out + 1] = repaired
end
if changed then redis.call('INCR', KEYS[4]) end
return out
`;
