--[[
  Puts back a buyer's record of an Idempotency-Key that Redis lost (a restart without its AOF,
  a failover to a replica that was behind), from the order MySQL has accepted under it, so that
  the buyer's retry under the key is answered that order (reserveStock-7+c+2n.lua's replay), not
  accepted as a second one; or, in the buyer's own group, the claim of the key by a cart of
  another group (claimCheckout-7+c.lua), so another cart under the key is still a conflict. The
  fields are the checkout's own. A record or claim Redis has is left as it is: a checkout wrote it.

  KEYS[1]  idempotency record or claim  <prefix>{g}:idem:<userId>:<key, its : and % escaped>
  ARGV[1]  when it expires (ms since the epoch): the order's acceptance plus the idempotency TTL
           (the claim's a minute more), as the checkout's PEXPIRE set it
  ARGV[2+2(i-1)], ARGV[3+2(i-1)]  field i and its value

  Returns 1 put back, 0 Redis had one, or its time is up (by Redis's clock).
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if tonumber(ARGV[1]) <= clockMs() then return 0 end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
