--[[
  Gives a reservation's stock and its coupon use back (cancel, expiry) exactly once.

  KEYS[1]  order reservation  <prefix>{g}:order:<orderId>
  KEYS[2]  coupon              <prefix>{g}:coupon:<code> (its count of uses taken; unused without a coupon)
  KEYS[3]  buyer's coupon uses <prefix>{g}:coupon-uses:<code>:<userId> (unused without a coupon)
  KEYS[4]  given-back marker   <prefix>{g}:coupon-given-back:<orderId>
  KEYS[4+2i-1], KEYS[4+2i]    per recorded line i: SKU hash, buyer's bought counter
  ARGV[1] reason ('expired', 'cancelled', ...)
  ARGV[2] how long the released record is kept (ms; never longer than it had left)
  ARGV[3] how long the given-back marker is kept at most (ms)

  Released, the record keeps its state and reason alone, written again as a small hash (an
  HDEL leaves the large encoding its payload gave it), and for a short while: once it is gone
  a late release finds no lines to give back and the coupon's given-back marker decides,
  and a late commit answers 'missing', which every caller takes as it takes 'released'.

  A line whose SKU hash Redis lost is left alone, not made again with counters and no rules:
  the stock repair recreates the SKU from the ledger, which counts the release. Units counted
  toward the buyer's limit go back to the count of the sale they were counted in only
  (shared/saleCount.lua); a record without its acceptance time ('a', not kept before it priced
  orders) gives them back to the count there is.

  Returns 1 released now, 0 already released or committed, -1 no such reservation.
]]
local orderKey = KEYS[1]
local record = redis.call('HMGET', orderKey, 's', 'l', 'a')
local state = record[1]
if not state then return -1 end
if state ~= 'reserved' then return 0 end
local lines = cjson.decode(record[2])
local acceptedAt = tonumber(record[3]) or math.huge
for i, line in ipairs(lines) do
  local skuKey, boughtKey = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local qty, deduction, limited = line[1], line[2], line[3]
  if deduction == 'placement' and redis.call('EXISTS', skuKey) == 1 then
    redis.call('HINCRBY', skuKey, 'available', qty)
    redis.call('HINCRBY', skuKey, 'reserved', -qty)
  end
  if limited == 1 then giveBackToSaleCount(skuKey, boughtKey, acceptedAt, qty) end
end
-- marked given back: a release retried after the record expired (releaseCoupon-4.lua) must not give it back again
giveBackHeldUse(orderKey, KEYS[2], KEYS[3], KEYS[4], ARGV[3])
local keptMs = tonumber(ARGV[2])
local leftMs = redis.call('PTTL', orderKey)
if leftMs > 0 and leftMs < keptMs then keptMs = leftMs end
redis.call('DEL', orderKey)
redis.call('HSET', orderKey, 's', 'released', 'r', ARGV[1])
redis.call('PEXPIRE', orderKey, keptMs)
return 1
