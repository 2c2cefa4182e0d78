--[[
  Ends a coupon now, by Redis's clock (the one checkouts are accepted by): from the next
  millisecond on every checkout naming it is refused (couponRefusal, -7), and an order accepted
  before with it keeps it. Its end is now + 1 ms: a checkout that ran in this same millisecond,
  before this script, was accepted at `now` and is priced by the worker with the coupon (startsAt
  <= acceptedAt < endsAt), as MySQL's end, set to the one this returns, says; one after it in that
  millisecond gets it too, rather than a buyer whose 202 named the coupon being charged without it. One not started yet ends at its
  start (it never runs); one ended already keeps its end. Its hash is kept a day past the new end,
  as at publishing. Redis without a copy of it (one lost, one whose create has committed and not
  published it yet) gets its end alone: no checkout takes a coupon without its rules, and a
  publish on its way keeps that end (publishCoupon-1.lua).

  KEYS[1]  coupon  <prefix>{g}:coupon:<code>   (hash: perBuyerLimit, startsAt, endsAt, totalLimit, taken)

  Returns the coupon's end (ms) as it stands now.
]]
local coupon = redis.call('HMGET', KEYS[1], 'startsAt', 'endsAt')
local now = clockMs() + 1
local startsAt, endsAt = tonumber(coupon[1] or '0'), tonumber(coupon[2] or '')
local ended = math.max(startsAt, endsAt and math.min(endsAt, now) or now)
if not endsAt or ended < endsAt then
  redis.call('HSET', KEYS[1], 'endsAt', ended)
  redis.call('PEXPIREAT', KEYS[1], ended + COUPON_USES_KEPT_AFTER_END_MS)
end
return ended
