--[[
  Takes the claims the stock check settled (AbandonedClaims: gone, abandoned, or their order
  accepted) out of the buyers' group's claims holding coupon uses, each unless a use was taken
  under it since the stock check read it: that request scored it anew (claimCheckout-7+c.lua),
  and the next check reads it again.

  KEYS[1]  claims holding coupon uses  <prefix>{own}:claims-holding-coupons
           (zset: the claim's key, scored when a use was last taken under it)
  ARGV[2i-1], ARGV[2i]  a claim's key, and its score as the stock check read it

  Returns how many were taken out.
]]
local forgotten = 0
for i = 1, #ARGV, 2 do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == tonumber(ARGV[i + 1]) then
    forgotten = forgotten + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return forgotten
