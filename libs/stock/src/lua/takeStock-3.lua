--[[
  Takes units off one bucket of a SKU for a transfer to another bucket, once per
  transfer id: never more than the bucket has available. The record stays open until
  the receiving side has the units, so a transfer cut short is found and finished.

  KEYS[1]  SKU hash of the giving bucket  <prefix>{g}:sku:<skuId>
  KEYS[2]  transfer record                <prefix>{g}:transfer:<transferId>
  KEYS[3]  open transfers                 <prefix>{g}:transfers-open  (zset by time taken)
  ARGV[1] transfer id   ARGV[2] units wanted   ARGV[3] SKU id
  ARGV[4] receiving bucket   ARGV[5] now (ms)
  ARGV[6] how long a record that took nothing is kept (ms); an open one is kept until closed

  Returns the units taken: now, or for a repeated transfer id what the first call took.
]]
local taken = redis.call('HGET', KEYS[2], 'q')
if taken then return tonumber(taken) end
local available = tonumber(redis.call('HGET', KEYS[1], 'available') or '0')
local qty = math.min(tonumber(ARGV[2]), math.max(available, 0))
redis.call('HSET', KEYS[2], 'q', qty, 'sku', ARGV[3], 'to', ARGV[4])
if qty > 0 then
  redis.call('HINCRBY', KEYS[1], 'available', -qty)
  redis.call('ZADD', KEYS[3], tonumber(ARGV[5]), ARGV[1])
else
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]))
end
return qty
