--[[
  Takes one bucket of a SKU off sale, or puts it back on sale. Off sale, every checkout of it is
  refused (reserveStock-7+c+2n.lua, -14) and its counters stay as they are: units that orders give
  back meanwhile (a cancel, an unpaid order's expiry) wait in `available` for the SKU's return to
  sale instead of going on sale, and orders already accepted go on as they were.

  KEYS[1]  SKU hash of the bucket  <prefix>{g}:sku:<skuId>
  ARGV[1]  '1' off sale, '' on sale

  Returns 1 changed, 0 already so, -2 the bucket is lost, left as it is (no rules: the checkout
  refuses it until the stock repair recreates it with the catalog's, initSku-1.lua).
]]
if redis.call('HEXISTS', KEYS[1], 'deduction') == 0 then return -2 end
if ARGV[1] == '1' then return redis.call('HSET', KEYS[1], 'offSale', '1') end
return redis.call('HDEL', KEYS[1], 'offSale')
