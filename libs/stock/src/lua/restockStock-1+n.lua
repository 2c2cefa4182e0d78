--[[
  Puts sold units back on sale (a cancelled or refunded paid order, a received return),
  exactly once per restock reference.

  KEYS[1]    restock marker  <prefix>{g}:restock:<ref>
  KEYS[1+i]  SKU hash of line i  <prefix>{g}:sku:<skuId>
  ARGV[i]    units of line i
  ARGV[n+1]  how long the marker outlives the restock (ms)

  A line whose SKU hash Redis lost is left alone, not made again with counters and no rules:
  the ledger, which has the restock already, is what the stock repair recreates the SKU from,
  and the marker keeps the repair from restocking it a second time.

  Returns 1 restocked now, 0 already restocked under this reference.
]]
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', tonumber(ARGV[#KEYS])) == false then return 0 end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local qty = tonumber(ARGV[i - 1])
    redis.call('HINCRBY', KEYS[i], 'sold', -qty)
    redis.call('HINCRBY', KEYS[i], 'available', qty)
  end
end
return 1
