--[[
  One bucket's part of taking back a merchant's stock set MySQL refused (StockSets): the
  transfers taken before the set are no longer voided by it here, but given, as they would
  have been without it (giveStock-2.lua). The set's quantity itself is taken back by a
  correction of the counters (Inventory.correctCounters), which measures from what the
  buckets held before the set: without the units then on their way, which the transfers give.

  KEYS[1]  SKU hash of the bucket  <prefix>{g}:sku:<skuId>
  ARGV[1]  the set's generation

  Returns 1 done, 0 the bucket is not in the set's generation (never reached, or lost).
]]
local bucket = redis.call('HMGET', KEYS[1], 'generation', 'givesFromBefore')
local generation = tonumber(ARGV[1])
if tonumber(bucket[1] or '-1') ~= generation then return 0 end
redis.call('HSET', KEYS[1], 'givesFrom', bucket[2] or (generation - 1))
return 1
