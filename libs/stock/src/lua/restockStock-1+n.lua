--[[
  Puts sold units back on sale (a cancelled or refunded paid order, a received return),
  exactly once per restock reference.

  KEYS[1]    restock marker  <prefix>{g}:restock:<ref>
  KEYS[1+i]  SKU hash of line i  <prefix>{g}:sku:<skuId>
  ARGV[i]    units of line i
  ARGV[n+1]  how long the marker outlives the restock (ms)

  Returns 1 restocked now, 0 already restocked under this reference.
]]
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', tonumber(ARGV[#KEYS])) == false then return 0 end
for i = 2, #KEYS do
  local qty = tonumber(ARGV[i - 1])
  redis.call('HINCRBY', KEYS[i], 'sold', -qty)
  redis.call('HINCRBY', KEYS[i], 'available', qty)
end
return 1
