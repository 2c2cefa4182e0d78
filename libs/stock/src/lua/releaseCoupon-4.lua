--[[
  Gives an order's coupon use back while the order lives on: the coupon did not apply
  when the order was priced, or the paid order was cancelled. Exactly once: the order's
  'c' field says it still holds the use. A paid order can outlive its reservation record
  (kept a week past the payment deadline), so each release also leaves a marker that lives
  as long as the buyer's uses count; without the record, the marker decides.

  KEYS[1]  order reservation   <prefix>{g}:order:<orderId>, or for an order that runs outside
           its buyer's own group its hold there <prefix>{g}:coupon-held:<orderId>
           (claimCheckout-7+c.lua): either holds the use in 'c'
  KEYS[2]  coupon              <prefix>{g}:coupon:<code> (its count of uses taken)
  KEYS[3]  buyer's coupon uses <prefix>{g}:coupon-uses:<code>:<userId>
  KEYS[4]  given-back marker   <prefix>{g}:coupon-given-back:<orderId>
  (all in the buyer's own group)
  ARGV[1]  'held' to give back only a use KEYS[1] holds: a claim withdrawn (claimCheckout-7+c.lua)
           whose script went unanswered may never have run, and then its hold was never
           written and the marker must not decide
  ARGV[2]  how long the marker is kept without a uses count, and at most with one (ms)

  Returns 1 given back now, 0 the order holds no use.
]]
if giveBackHeldUse(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2]) == 1 then return 1 end
if ARGV[1] == 'held' or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local usesTtl = redis.call('PTTL', KEYS[3])
if usesTtl <= 0 then
  -- no count: expired a day after the coupon ended, or Redis lost it. The stock repair counts
  -- it again from MySQL, where this use is given back already (the cancellation's commit came
  -- first): the marker keeps a later call from giving it back from that count a second time
  redis.call('SET', KEYS[4], '1', 'NX', 'PX', tonumber(ARGV[2]))
  return 0
end
if not redis.call('SET', KEYS[4], '1', 'NX', 'PX', math.min(usesTtl, tonumber(ARGV[2]))) then return 0 end
giveUseBack(KEYS[2], KEYS[3])
return 1
