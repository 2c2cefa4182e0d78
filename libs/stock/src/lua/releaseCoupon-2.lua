--[[
  Gives an order's coupon use back while the order lives on: the coupon did not apply
  when the order was priced (its minimum spend not reached, its buyer's uses taken by
  then). Exactly once: the order's 'c' field says it still holds the use.

  KEYS[1]  order reservation   <prefix>{g}:order:<orderId>
  KEYS[2]  buyer's coupon uses <prefix>{g}:coupon-uses:<code>:<userId>

  Returns 1 given back now, 0 the order holds no use.
]]
if redis.call('HDEL', KEYS[1], 'c') == 0 then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 1
