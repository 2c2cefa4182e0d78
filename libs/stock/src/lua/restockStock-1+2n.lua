--[[
  Puts sold units back on sale (a cancelled or refunded paid order, a received return),
  exactly once per restock reference; a cancellation's gives its buyer's flash-sale units back
  to their per-buyer limit with them, under the same marker, so that too happens once.

  KEYS[1]    restock marker  <prefix>{g}:restock:<ref>
  KEYS[1+2i-1], KEYS[1+2i]  per line i: SKU hash <prefix>{g}:sku:<skuId>,
                            buyer's bought counter <prefix>{g}:bought:<skuId>:<userId>
                            (unused, and named with an empty buyer, when no units go back to a limit)
  ARGV[i]    units of line i
  ARGV[n+i]  units of line i given back to the buyer's limit (0: none)
  ARGV[2n+1] how long the marker outlives the restock (ms)
  ARGV[2n+2] when the order was accepted (ms; 0 when no units go back to a limit): units go back
             to the count of the sale it was accepted in only (shared/saleCount.lua)

  A line whose SKU hash Redis lost is left alone, not made again with counters and no rules:
  the ledger, which has the restock already, is what the stock repair recreates the SKU from,
  and the marker keeps the repair from restocking it a second time. A bought counter Redis lost
  is left alone too: the repair counts it again from MySQL, without the cancelled units.

  Returns 1 restocked now, 0 already restocked under this reference.
]]
local lineCount = (#KEYS - 1) / 2
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', tonumber(ARGV[2 * lineCount + 1])) == false then return 0 end
local acceptedAt = tonumber(ARGV[2 * lineCount + 2])
for i = 1, lineCount do
  local skuKey, boughtKey = KEYS[2 * i], KEYS[2 * i + 1]
  local qty, back = tonumber(ARGV[i]), tonumber(ARGV[lineCount + i])
  if redis.call('EXISTS', skuKey) == 1 then
    redis.call('HINCRBY', skuKey, 'sold', -qty)
    redis.call('HINCRBY', skuKey, 'available', qty)
  end
  if back > 0 then giveBackToSaleCount(skuKey, boughtKey, acceptedAt, back) end
end
return 1
