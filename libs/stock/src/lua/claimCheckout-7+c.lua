--[[
  What a checkout that runs outside its buyer's own group (a cart of SKUs split into buckets
  runs in the buyer's bucket, {g<k>}) settles first in the buyer's own group, in one call: the
  rules that hold per buyer whatever their cart, which a script in the bucket's slot cannot
  see. reserveStock-7+c+2n.lua settles them itself for a cart that runs in the buyer's group.
   - their request budget and checkout attempts (countInWindow, shared/countInWindow.lua): an
     attempt once, whatever the requests sent again under the key with its body (countCheckoutWindows)
   - the claim of their Idempotency-Key: the key's record in the buyer's group, holding the
     body's hash and the group the cart runs in. A key recorded with another body, or for a
     cart of another group (a reservation in the buyer's group writes its record here), is a
     conflict: one key, one order, whichever carts it is sent with.
   - one use of their coupon, on their one uses counter (shared/couponUse.lua), held for the
     order by its hold until given back (releaseCoupon-4.lua)
  Nothing is claimed nor taken when the checkout is refused.

  KEYS[1]  idempotency claim   <prefix>{own}:idem:<userId>:<key, its : and % escaped>
           (hash: h body hash, u userId, g the cart's group, n the request that claimed it,
           f when it was claimed and l when a request last took it up (ms, Redis's clock: the
           api hosts' clocks differ, and a claim's age decides how another host answers),
           k:<orderId> per request holding it (that made it, or took it up), which its refusal
           takes out (dropClaim-2.lua), c:<orderId> per request that took a coupon use under it)
  KEYS[2]  coupon              <prefix>{own}:coupon:<code>
  KEYS[3]  buyer's coupon uses <prefix>{own}:coupon-uses:<code>:<userId>
  KEYS[4]  the order's hold    <prefix>{own}:coupon-held:<orderId>   (hash: c code)
           (KEYS[2..4] unused, and named with an empty code, without a coupon)
  KEYS[5]  the attempt last counted under the key  <prefix>{own}:attempt:<userId>:<key, its : and % escaped>
           (dropped with the claim when the checkout is refused for good: dropClaim-2.lua)
  KEYS[6]  buyer's queued orders <prefix>{own}:queued:<userId>   (zset, scores 0): the order is
           listed there once claimed, as reserveStock-7+c+2n.lua lists one of a cart in the
           buyer's group (a listed order its reservation refuses is passed over where the list
           is read: it is in no accepted set)
  KEYS[7]  the buyers' group's claims holding coupon uses  <prefix>{own}:claims-holding-coupons
           (zset: the claim's key, scored when a use was last taken under it): where the stock
           check finds a claim whose requests are gone with its use (AbandonedClaims)
  KEYS[7+j], j = 1..c          window counters, in the buyer's group: the request budget, then
                               the checkout attempts
  ARGV[1] userId   ARGV[2] request body hash   ARGV[3] the cart's group   ARGV[4] orderId
  ARGV[5] how long the claim is kept (ms)   ARGV[6] coupon code or ''
  ARGV[7] how long the hold is kept at most (ms): as long as the order's reservation record
          could be; gone, as a record gone, the given-back marker decides (releaseCoupon-4.lua)
  ARGV[8] how long after a request last took the claim up it may still be under way (ms)
  ARGV[9] how long an order's record of the key is kept (ms, the idempotency TTL)
  ARGV[10] c, the number of counters
  ARGV[11+2(j-1)], ARGV[12+2(j-1)]  counter j's window (ms) and the most it allows in one

  Returns { budget count, ms left in its window, code, ... } (the first two 0 when c is 0):
    1 claimed now                 { 1, 1 if a coupon use was taken else 0 }; also to this
      request's own call run again (ioredis sends again what it wrote before a lost connection
      and had no answer to): nothing is taken twice (answered 2 once another request has taken
      the claim up since: both hold it, each letting go when refused, dropClaim-2.lua)
    2 claimed before, this body   { 2, coupon use taken, orderId... }: a retry, or the same
      request twice at once; the orders other requests took a coupon use for under the claim,
      while it was made within ARGV[9]: if this request's order is accepted they never will
      be (one key, one order, and an order accepted before would still be recorded), and their
      uses go back (one killed between its claim and its reservation would hold its use for good)
    0 claimed before, this body, and refused now { 0, -10, -7, -8 or -13, state, ... }: nothing
      taken; the caller lets it through as the replay of an order accepted under the key, and
      with none the state says what the requests holding the claim are:
        1 maybe still under way: one took the claim up within ARGV[8]
        2 gone (killed between their claim and their reservation, or refused): none took it up
          within ARGV[8], and it was made within ARGV[9], so an order accepted under it would
          still be recorded { 0, refusal, 2, l, orderId... }: the orders that took a coupon use
          under it, which abandonClaim-3+2h.lua gives back
        0 neither: claimed longer ago than an order's record of the key is kept, or before
          claims kept their times; refused as the checkout is
   -1 the key is claimed with another body, or for a cart of another group
   -7 -8 -9 -10 -13 as reserveStock-7+c+2n.lua
]]
local claimKey, couponKey, usesKey, holdKey, attemptKey, queuedKey, claimsHoldingCouponsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local userId, bodyHash, cartGroup, orderId = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local couponCode = ARGV[6]
local counterCount = tonumber(ARGV[10])

local counts = countCheckoutWindows(7, 10, counterCount, attemptKey, bodyHash .. ':' .. userId)
local budget = counts[1] or { 0, 0, 0 }

-- what the requests holding a claim, refused now, are: code 0's state and what follows it
local function holders(claimed)
  local at, claimedAt, takenUpAt = clockMs(), tonumber(claimed[5]), tonumber(claimed[6])
  if not takenUpAt or not claimedAt then return { 0 } end
  if at - takenUpAt < tonumber(ARGV[8]) then return { 1 } end
  if at - claimedAt >= tonumber(ARGV[9]) then return { 0 } end
  local gone = { 2, takenUpAt }
  for _, field in ipairs(redis.call('HKEYS', claimKey)) do
    if string.sub(field, 1, 2) == 'c:' then table.insert(gone, string.sub(field, 3)) end
  end
  return gone
end

-- code 2's reply: the orders of the other requests holding a use under the claim (made at claimedAt), while one accepted would be recorded
local function claimedBefore(taken, claimedAt)
  local reply = { 2, taken }
  if not claimedAt or clockMs() - claimedAt >= tonumber(ARGV[9]) then return reply end
  for _, field in ipairs(redis.call('HKEYS', claimKey)) do
    if string.sub(field, 1, 2) == 'c:' and string.sub(field, 3) ~= orderId then table.insert(reply, string.sub(field, 3)) end
  end
  return reply
end

local function claim()
  local claimed = redis.call('HMGET', claimKey, 'h', 'u', 'g', 'n', 'f', 'l')
  -- this request's call run a second time: answered as the first run was, whatever its counters say
  -- now; one whose claim another request took up since ('n' emptied) is known by the use it took
  if claimed[4] == orderId then return { 1, redis.call('HEXISTS', holdKey, 'c') } end
  if redis.call('HEXISTS', claimKey, 'c:' .. orderId) == 1 then return claimedBefore(redis.call('HEXISTS', holdKey, 'c'), tonumber(claimed[5])) end
  if counterCount >= 1 and budget[1] > budget[3] then return { -9 } end
  if claimed[1] and (claimed[1] ~= bodyHash or claimed[2] ~= userId or claimed[3] ~= cartGroup) then return { -1 } end

  local refusal, couponEndsAt, now = 0, 0, clockMs()
  if counterCount >= 2 and counts[2][1] > counts[2][3] then
    refusal = -10
  elseif couponCode ~= '' then
    refusal, couponEndsAt = couponRefusal(couponKey, usesKey, now)
  end
  if refusal ~= 0 then
    -- claimed before with this body: the retry of an accepted checkout is no new attempt and
    -- needs no new use (its reservation replays it); the caller looks for that order before
    -- refusing, since a refusal would hide the order its buyer must pay
    if claimed[1] then
      local reply = holders(claimed)
      table.insert(reply, 1, refusal)
      table.insert(reply, 1, 0)
      return reply
    end
    -- refused for good: the buyer's next request under the key is a new attempt
    if counterCount >= 2 then redis.call('DEL', attemptKey) end
    return { refusal }
  end

  if claimed[1] then
    -- two requests hold the claim: it goes once neither holds it (dropClaim-2.lua), the other may be accepted
    redis.call('HSET', claimKey, 'n', '', 'l', now, 'k:' .. orderId, 1)
  else
    redis.call('HSET', claimKey, 'h', bodyHash, 'u', userId, 'g', cartGroup, 'n', orderId, 'f', now, 'l', now, 'k:' .. orderId, 1)
  end
  redis.call('PEXPIRE', claimKey, ARGV[5])
  redis.call('ZADD', queuedKey, 0, orderId)
  redis.call('PEXPIRE', queuedKey, ARGV[9])
  local taken = 0
  if couponCode ~= '' then
    takeCouponUse(couponKey, usesKey, holdKey, couponCode, couponEndsAt)
    redis.call('HSET', claimKey, 'c:' .. orderId, 1)
    redis.call('ZADD', claimsHoldingCouponsKey, now, claimKey)
    redis.call('PEXPIRE', claimsHoldingCouponsKey, ARGV[5])
    -- no longer than the uses it counts in either
    redis.call('PEXPIREAT', holdKey, math.min(couponEndsAt + COUPON_USES_KEPT_AFTER_END_MS, now + tonumber(ARGV[7])))
    taken = 1
  end
  if claimed[1] then return claimedBefore(taken, tonumber(claimed[5])) end
  return { 1, taken }
end

local reply = claim()
table.insert(reply, 1, budget[2])
table.insert(reply, 1, budget[1])
return reply
