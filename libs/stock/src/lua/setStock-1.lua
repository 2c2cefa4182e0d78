--[[
  Sets the sellable quantity of one bucket (not bucket 0) of a SKU to its share of a
  merchant's stock set; reservations already taken stay as they are. The set started in
  bucket 0 (startStockSet-2.lua) with the SKU's next stock generation, which this bucket then
  carries. A transfer between buckets gives its units only within the generation it took them
  in (giveStock-2.lua), so no set ever has a transfer's units added on top of it.

  Once per generation: the set is run again to finish it (its answer lost, or its process
  gone), and a bucket it already reached answers what it held before, as it did then.

  KEYS[1]  SKU hash of the bucket  <prefix>{g}:sku:<skuId>
  ARGV[1] new available quantity   ARGV[2] the set's generation

  Returns { the bucket's available quantity before the set, the set's generation },
  { -1, 0 } when Redis lost the bucket (no counters, or counters without the SKU's rules: what
  it held is the ledger's to say, and the set waits for the stock repair to recreate it),
  { -2, the bucket's generation } when a later set has reached it.
]]
local bucket = redis.call('HMGET', KEYS[1], 'available', 'generation', 'setFrom', 'deduction', 'givesFrom')
if not bucket[1] or not bucket[4] then return { -1, 0 } end
local generation, here = tonumber(ARGV[2]), tonumber(bucket[2] or '0')
if here == generation then return { tonumber(bucket[3] or '0'), generation } end
if here > generation then return { -2, here } end
-- transfers taken before the set are voided; should the set be taken back, the bucket gives from where it did
redis.call('HSET', KEYS[1], 'available', ARGV[1], 'generation', generation, 'setFrom', bucket[1], 'givesFromBefore', bucket[5] or here)
redis.call('HDEL', KEYS[1], 'givesFrom')
return { tonumber(bucket[1]), generation }
