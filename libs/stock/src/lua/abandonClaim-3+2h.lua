--[[
  Abandons the claim of an Idempotency-Key (claimCheckout-7+c.lua) whose requests are gone:
  none took it up for longer than one takes to settle, and no order was accepted under the key
  (the caller read the key's record in the cart's group after the claim answered so). An api
  process killed between a request's claim and its reservation leaves such a claim, holding
  the buyer's coupon use for an order that never was. Each use its requests took is given
  back, and the claim dropped: the key's next request is taken on its own merits. Nothing is
  done when a request took the claim up since the caller read it.

  KEYS[1]  idempotency claim   <prefix>{own}:idem:<userId>:<key, its : and % escaped>
  KEYS[2]  coupon              <prefix>{own}:coupon:<code> (its count of uses taken)
  KEYS[3]  buyer's coupon uses <prefix>{own}:coupon-uses:<code>:<userId>  (both named with an
           empty code, and unused, without a coupon)
  KEYS[2+2i], KEYS[3+2i], i = 1..h  per order that took a use under the claim: its hold
           <prefix>{own}:coupon-held:<orderId>, its given-back marker
           <prefix>{own}:coupon-given-back:<orderId>
  ARGV[1]  when a request last took the claim up ('l'), as the caller read it
  ARGV[2]  how long a given-back marker is kept at most (ms)

  Returns 1 abandoned, 0 taken up since, or gone.
]]
if tonumber(redis.call('HGET', KEYS[1], 'l')) ~= tonumber(ARGV[1]) then return 0 end
for i = 1, (#KEYS - 3) / 2 do giveBackHeldUse(KEYS[2 + 2 * i], KEYS[2], KEYS[3], KEYS[3 + 2 * i], ARGV[2]) end
redis.call('DEL', KEYS[1])
return 1
