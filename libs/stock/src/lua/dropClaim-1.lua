--[[
  Drops the claim of an Idempotency-Key (claimCheckout-4+c.lua) whose checkout was refused,
  so the key is free again, as it is after any refused checkout; kept when another request
  holds it too ('n' emptied): that one may have been accepted.

  KEYS[1]  idempotency claim  <prefix>{own}:idem:<userId>:<key>
  ARGV[1]  the orderId of the request that claimed it

  Returns 1 dropped, 0 kept.
]]
if redis.call('HGET', KEYS[1], 'n') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
