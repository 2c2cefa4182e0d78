--[[
  Gives a reservation's stock back (cancel, expiry) exactly once.

  KEYS[1]  order reservation  <prefix>{g}:order:<orderId>
  KEYS[1+2i-1], KEYS[1+2i]    per recorded line i: SKU hash, buyer's bought counter
  ARGV[1] reason ('expired', 'cancelled', ...)

  Returns 1 released now, 0 already released or committed, -1 no such reservation.
]]
local orderKey = KEYS[1]
local state = redis.call('HGET', orderKey, 's')
if not state then return -1 end
if state ~= 'reserved' then return 0 end
local lines = cjson.decode(redis.call('HGET', orderKey, 'l'))
for i, line in ipairs(lines) do
  local skuKey, boughtKey = KEYS[2 * i], KEYS[1 + 2 * i]
  local qty, deduction, limited = line[1], line[2], line[3]
  if deduction == 'placement' then
    redis.call('HINCRBY', skuKey, 'available', qty)
    redis.call('HINCRBY', skuKey, 'reserved', -qty)
  end
  if limited == 1 and redis.call('EXISTS', boughtKey) == 1 then
    redis.call('DECRBY', boughtKey, qty)
  end
end
redis.call('HSET', orderKey, 's', 'released', 'r', ARGV[1])
return 1
