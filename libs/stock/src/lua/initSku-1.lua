--[[
  Puts a SKU's sellable counters and checkout rules into Redis, once.

  KEYS[1]  SKU hash  <prefix>{g}:sku:<skuId>
  ARGV[1] available   ARGV[2] deduction   ARGV[3] sale starts (ms, 0 = no sale)
  ARGV[4] sale ends (ms, 0 = no sale)   ARGV[5] per-buyer limit (0 = none)
  ARGV[6] how many buckets the SKU's stock is split into (1: not split)

  Returns 1 created, 0 it already existed (left unchanged).
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'available', ARGV[1], 'reserved', 0, 'sold', 0, 'deduction', ARGV[2],
  'saleStartsAt', ARGV[3], 'saleEndsAt', ARGV[4], 'perUserLimit', ARGV[5], 'buckets', ARGV[6])
return 1
