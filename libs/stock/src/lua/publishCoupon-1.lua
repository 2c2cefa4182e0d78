--[[
  Publishes a coupon for checkout (Inventory.publishCoupon): how many orders of one buyer may use
  it, how many in all, and when. An end Redis has already, earlier than the one given, stays: the
  coupon was ended early (endCoupon-1.lua) while this publish was on its way (a create's, whose
  end came between its commit and its publish; a stock repair's, which read the coupon from MySQL
  before the end), and an ended coupon never goes back on sale. The uses orders hold stay as
  counted: `taken` (MySQL's count, for a coupon Redis lost) only where there is no count. Kept
  COUPON_USES_KEPT_AFTER_END_MS past its end, as its buyers' uses.

  KEYS[1]  coupon  <prefix>{g}:coupon:<code>   (hash: perBuyerLimit, startsAt, endsAt, totalLimit, taken)
  ARGV[1] perBuyerLimit  ARGV[2] totalLimit (0: none)  ARGV[3] startsAt (ms)  ARGV[4] endsAt (ms)
  ARGV[5] taken, where there is no count

  Returns the coupon's end (ms) as published.
]]
local endsAt = tonumber(ARGV[4])
local ended = tonumber(redis.call('HGET', KEYS[1], 'endsAt') or '')
if ended and ended < endsAt then endsAt = ended end
redis.call('HSET', KEYS[1], 'perBuyerLimit', ARGV[1], 'totalLimit', ARGV[2], 'startsAt', ARGV[3], 'endsAt', endsAt)
redis.call('HSETNX', KEYS[1], 'taken', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], endsAt + COUPON_USES_KEPT_AFTER_END_MS)
return endsAt
