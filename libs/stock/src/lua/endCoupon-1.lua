--[[
  Ends a coupon now, by Redis's clock (the one checkouts are accepted by): from this script on,
  every checkout naming it is refused (couponRefusal, -7), and an order accepted before with it
  keeps it. Its end is now + 1 ms: a checkout that ran in this same millisecond, before this
  script, was accepted at `now` and is priced by the worker with the coupon (startsAt <= acceptedAt
  < endsAt), as MySQL's end, set to the one this returns, says. One not started yet ends at its
  start (it never runs); one ended already keeps its end. Its hash is kept a day past the new end,
  as at publishing.

  KEYS[1]  coupon  <prefix>{g}:coupon:<code>   (hash: perBuyerLimit, startsAt, endsAt, totalLimit, taken)

  Returns the coupon's end (ms) as it stands now, or -1 when Redis has no copy of the coupon.
]]
local coupon = redis.call('HMGET', KEYS[1], 'startsAt', 'endsAt')
if not coupon[1] then return -1 end
local startsAt, endsAt = tonumber(coupon[1]), tonumber(coupon[2])
local ended = math.max(startsAt, math.min(endsAt, clockMs() + 1))
if ended < endsAt then
  redis.call('HSET', KEYS[1], 'endsAt', ended)
  redis.call('PEXPIREAT', KEYS[1], ended + COUPON_USES_KEPT_AFTER_END_MS)
end
return ended
