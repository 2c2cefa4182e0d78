--[[
  Shared by the scripts that take a buyer's coupon use at checkout (stock-scripts.ts puts it
  before them): reserveStock-7+c+2n.lua in the buyer's own group, claimCheckout-7+c.lua for a
  checkout in another (a SKU split into buckets), both on the buyer's one uses counter; and by
  those that give a use back (releaseStock-4+2n.lua, releaseCoupon-4.lua, abandonClaim-3+2h.lua).

  The coupon's hash counts the uses orders hold ('taken') beside its rules; a coupon with a
  'totalLimit' (0 or none: no limit) is used by at most that many orders at once, a use given
  back (an order cancelled, expired, or priced without the coupon) taken again by the next.

  couponRefusal returns 0 and the coupon's end (ms) when the buyer may use it now; -7 when
  there is no such coupon or it is not valid now; -8 when the buyer has used it as often as
  it allows; -13 when orders hold as many uses as it allows in all.

  COUPON_USES_KEPT_AFTER_END_MS, how long a buyer's uses outlive the coupon, is set before this
  file by stock-scripts.ts, which the stock repair's counts read too.
]]
local function couponRefusal(couponKey, usesKey, now)
  local coupon = redis.call('HMGET', couponKey, 'perBuyerLimit', 'startsAt', 'endsAt', 'totalLimit', 'taken')
  if not coupon[1] or now < tonumber(coupon[2]) or now >= tonumber(coupon[3]) then return -7 end
  if tonumber(redis.call('GET', usesKey) or '0') >= tonumber(coupon[1]) then return -8 end
  local totalLimit = tonumber(coupon[4] or '0')
  if totalLimit > 0 and tonumber(coupon[5] or '0') >= totalLimit then return -13 end
  return 0, tonumber(coupon[3])
end

--[[
  One more use, and 'c' on the hash that holds it for the order (its reservation record, or
  its hold in the buyer's own group) until it is given back (releaseStock-4+2n.lua,
  releaseCoupon-4.lua).
]]
local function takeCouponUse(couponKey, usesKey, holderKey, couponCode, couponEndsAt)
  redis.call('HINCRBY', couponKey, 'taken', 1)
  redis.call('INCR', usesKey)
  -- the uses only matter while the coupon is valid; keep them a while past its end
  redis.call('PEXPIREAT', usesKey, couponEndsAt + COUPON_USES_KEPT_AFTER_END_MS)
  redis.call('HSET', holderKey, 'c', couponCode)
end

--[[
  One use fewer. A count given back to 0 holds nothing a later checkout needs (its next use sets
  the coupon's end again): kept a day (COUPON_USES_KEPT_AT_NONE_MS), long past a stock repair that read MySQL meanwhile and
  must find it (restoreCouponUses sets only a count that is missing), not until the coupon ends,
  years for a welcome coupon, for every buyer whose orders with it all closed unpaid.
]]
local function giveUseBack(couponKey, usesKey)
  if tonumber(redis.call('GET', usesKey) or '0') <= 0 then return end
  -- the coupon's count too (none where its hash is not: an order of a bucket names the coupon in its own group)
  if tonumber(redis.call('HGET', couponKey, 'taken') or '0') > 0 then redis.call('HINCRBY', couponKey, 'taken', -1) end
  if redis.call('DECR', usesKey) > 0 then return end
  local ttl = redis.call('PTTL', usesKey)
  if ttl < 0 or ttl > COUPON_USES_KEPT_AT_NONE_MS then redis.call('PEXPIRE', usesKey, COUPON_USES_KEPT_AT_NONE_MS) end
end

--[[
  Gives back the use a hash holds for its order ('c': its reservation record, or its hold),
  once: the given-back marker says so after the hash is gone (releaseCoupon-4.lua). It is kept
  as long as the uses count, and at most `keptAtMostMs`, the longest any later step of the order
  comes: a coupon valid for years would otherwise keep one per order given back for years.
  Returns 1 given back now, 0 the hash held none.
]]
local function giveBackHeldUse(holderKey, couponKey, usesKey, markerKey, keptAtMostMs)
  if redis.call('HDEL', holderKey, 'c') == 0 then return 0 end
  local usesTtl = redis.call('PTTL', usesKey)
  if usesTtl > 0 then redis.call('SET', markerKey, '1', 'PX', math.min(usesTtl, tonumber(keptAtMostMs))) end
  giveUseBack(couponKey, usesKey)
  return 1
end
