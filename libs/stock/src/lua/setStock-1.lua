--[[
  Sets a SKU's sellable quantity; reservations already taken stay as they are.

  KEYS[1]  SKU hash  <prefix>{g}:sku:<skuId>
  ARGV[1] new available quantity

  Returns the previous available quantity, or -1 when the SKU is unknown.
]]
local previous = redis.call('HGET', KEYS[1], 'available')
if not previous then return -1 end
redis.call('HSET', KEYS[1], 'available', ARGV[1])
return tonumber(previous)
