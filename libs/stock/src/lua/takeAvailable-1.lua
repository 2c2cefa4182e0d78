--[[
  Takes up to a number of sellable units out of one bucket of a SKU, never below zero: a
  correction of the whole SKU's count (a stock set undone, a reconciler repair) takes from
  each bucket in turn what it has, so no bucket goes negative while the others keep selling.

  KEYS[1]  SKU hash of the bucket  <prefix>{g}:sku:<skuId>
  ARGV[1] units to take (> 0)

  Returns the units taken (0 for an unknown SKU or an empty bucket).
]]
local available = tonumber(redis.call('HGET', KEYS[1], 'available') or '0')
local taken = math.min(tonumber(ARGV[1]), math.max(available, 0))
if taken > 0 then redis.call('HINCRBY', KEYS[1], 'available', -taken) end
return taken
