--[[
  Adds the units a transfer took from another bucket to this bucket's available
  stock, once per transfer id.

  KEYS[1]  SKU hash of the receiving bucket  <prefix>{g}:sku:<skuId>
  KEYS[2]  transfer marker                   <prefix>{g}:transfer:<transferId>
  ARGV[1] units   ARGV[2] how long the marker outlives the transfer (ms)

  Returns 1 given now, 0 already given under this id, -1 the bucket has no counters.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[2])) == false then return 0 end
redis.call('HINCRBY', KEYS[1], 'available', tonumber(ARGV[1]))
return 1
