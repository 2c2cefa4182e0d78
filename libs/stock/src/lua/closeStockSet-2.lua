--[[
  Closes a merchant's stock set once its MySQL side is done (or it was taken back): it
  leaves the open sets, so nothing finishes it again. A set of the SKU started since is
  left open; one whose record Redis lost with bucket 0's counters is closed, there being
  nothing left to finish it from.

  KEYS[1]  SKU hash of bucket 0  <prefix>{g0}:sku:<skuId>
  KEYS[2]  open stock sets       <prefix>{g0}:stock-sets-open
  ARGV[1] the set's reference   ARGV[2] SKU id

  Returns 1 closed, 0 another set of the SKU is the open one.
]]
local ref = redis.call('HGET', KEYS[1], 'setRef')
if ref and ref ~= ARGV[1] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
