--[[
  Takes units off one bucket of a SKU for a transfer to another bucket, once per
  transfer id: never more than the bucket has available. The record stays open until
  the receiving side has the units (or voided them), so a transfer cut short is found
  and finished. It keeps the bucket's stock generation (setStock-1.lua): units taken
  before a merchant set the stock are not given after it.

  KEYS[1]  SKU hash of the giving bucket  <prefix>{g}:sku:<skuId>
  KEYS[2]  transfer record                <prefix>{g}:transfer:<transferId>
  KEYS[3]  open transfers                 <prefix>{g}:transfers-open  (zset by time taken)
  ARGV[1] transfer id   ARGV[2] units wanted   ARGV[3] SKU id
  ARGV[4] receiving bucket   ARGV[5] now (ms)
  ARGV[6] how long a record that took nothing is kept (ms); an open one is kept until closed

  Returns { units taken, the giving bucket's stock generation then }: now, or for a
  repeated transfer id what the first call took.
]]
local record = redis.call('HMGET', KEYS[2], 'q', 'g')
if record[1] then return { tonumber(record[1]), tonumber(record[2] or '0') } end
local bucket = redis.call('HMGET', KEYS[1], 'available', 'generation')
local available, generation = tonumber(bucket[1] or '0'), tonumber(bucket[2] or '0')
local qty = math.min(tonumber(ARGV[2]), math.max(available, 0))
redis.call('HSET', KEYS[2], 'q', qty, 'g', generation, 'sku', ARGV[3], 'to', ARGV[4])
if qty > 0 then
  redis.call('HINCRBY', KEYS[1], 'available', -qty)
  redis.call('ZADD', KEYS[3], tonumber(ARGV[5]), ARGV[1])
else
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]))
end
return { qty, generation }
