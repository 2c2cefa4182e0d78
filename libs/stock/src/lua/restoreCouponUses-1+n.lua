--[[
  Puts back a buyer's count of uses of a coupon that Redis lost, as the stock repair counted it
  from MySQL's orders still holding one, and marks as given back the uses of their orders MySQL
  has given back (cancelled, expired): the count leaves those out, and a release of such an
  order that comes after (a repeated cancel, a retried job) finds neither its reservation record
  nor its marker, lost with the count, and would give its use back a second time from this count,
  or from the one the buyer's next checkout starts (releaseCoupon-4.lua). Nothing is written
  when Redis still has the count: it includes orders not yet in MySQL, and a use it still counts
  for an order MySQL gave back goes back with that order's own release.

  KEYS[1]    buyer's coupon uses  <prefix>{g}:coupon-uses:<code>:<userId>
  KEYS[1+i]  given-back marker    <prefix>{g}:coupon-given-back:<orderId>, per order of the buyer
             whose use MySQL has given back   (all in the buyer's own group)
  ARGV[1]  the count (0: the buyer's orders hold none, and no count is written)
  ARGV[2]  when the count expires (ms since the epoch)
  ARGV[3]  how long a marker is kept at most (ms): as long as the count, and no longer

  Returns 1 the count put back, 0 Redis had one, or it is 0.
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local keptMs = tonumber(ARGV[3])
if tonumber(ARGV[1]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
  local usesTtl = redis.call('PTTL', KEYS[1])
  if usesTtl > 0 then keptMs = math.min(usesTtl, keptMs) end
end
for i = 2, #KEYS do redis.call('SET', KEYS[i], '1', 'PX', keptMs, 'NX') end
return tonumber(ARGV[1]) > 0 and 1 or 0
