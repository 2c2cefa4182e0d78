--[[
  Checkout in one round trip: the buyer's request budget and checkout velocity, idempotency
  check, the order type the SKUs sell in, flash-sale window and per-buyer limit, then reserve
  (placement deduction) or check (payment deduction) every line, all or none, and one use of
  the buyer's coupon with them.

  KEYS[1]  idempotency record   <prefix>{g}:idem:<userId>:<key, its : and % escaped>   (in the buyer's own group,
           {g0}, it is also the claim of the key by a checkout in another group,
           claimCheckout-7+c.lua: one key, one body, one order, whatever group the cart runs in)
  KEYS[2]  order reservation    <prefix>{g}:order:<orderId>
  KEYS[3]  accepted orders      <prefix>{g}:accepted   (zset: not yet in MySQL)
  KEYS[4]  coupon               <prefix>{g}:coupon:<code>   (hash: perBuyerLimit, startsAt, endsAt, totalLimit, taken)
  KEYS[5]  buyer's coupon uses  <prefix>{g}:coupon-uses:<code>:<userId>
           (both unused, and named with an empty code, when the order has no coupon, or when
           it runs outside the buyer's own group: claimCheckout-7+c.lua took the use there, on the
           buyer's one counter, and holds it for the order)
  KEYS[6]  the attempt last counted under the key  <prefix>{g}:attempt:<userId>:<key, its : and % escaped>
           (countCheckoutWindows, shared/countInWindow.lua; unused, and named in the cart's
           group, when the script counts no checkout attempts)
  KEYS[7]  buyer's queued orders <prefix>{g0}:queued:<userId>   (zset, scores 0: their list reads
           it by order id) in the buyer's own group, where the order is listed when ARGV[13] is
           '1'; unused, and named in the cart's group, when the cart runs in another group
           (claimCheckout-7+c.lua lists the order there)
  KEYS[7+j], j = 1..c           window counters counted first (countInWindow, shared/):
                                the buyer's request budget, then their checkout attempts (c is
                                0 when there are none, or when the checkout runs outside their
                                slot group and claimCheckout-7+c.lua or the Inventory counted
                                them before this call)
  KEYS[7+c+2i-1], KEYS[7+c+2i]  per line i: SKU hash <prefix>{g}:sku:<skuId>,
                                buyer's bought counter <prefix>{g}:bought:<skuId>:<userId>
  ARGV[1] orderId   ARGV[2] userId   ARGV[3] request body hash
  ARGV[4] idempotency TTL (ms)   ARGV[5] standard payment timeout (ms)
  ARGV[6] flash-sale payment timeout (ms)   ARGV[7] requested order type or ''
  ARGV[8] order payload (JSON, stored for recovery and for status reads)
  ARGV[9] coupon code or ''   ARGV[10] c, the number of counters
  ARGV[11] presale balance timeout (ms): how much longer a presale's reservation is kept
  ARGV[12] '' when the buyer gave a delivery address; else the order types that ship nothing,
           each between commas (',virtual,'): a cart making any other is refused (-12)
  ARGV[13] '1' when the accepted order is listed in KEYS[7], else ''
  ARGV[14+2(j-1)], ARGV[15+2(j-1)]  counter j's window (ms) and the most it allows in one
  ARGV[13+2c+i] quantity of line i

  The order's type: each SKU hash's orderType ('standard', 'presale', 'virtual'; none in a
  hash written before SKUs had one: standard). Every line must have the same; a standard
  order with a SKU in its flash sale is a flash_sale order.

  Returns { budget count, ms left in its window, code, ... } (the first two 0 when c is 0):
    1 accepted          { 1, orderId, type, deadlineMs, acceptedAtMs, couponApplies } (Redis's
                        clock); couponApplies 0 when every line is in its flash sale: a coupon takes
                        nothing off such lines (pricing.ts), so its use is checked, not taken (one
                        the claim took in the buyer's own group, its caller gives back at once)
    2 idempotent replay { 2, orderId, type, deadlineMs, acceptedAtMs }
      (acceptedAtMs: the first checkout's time, which the order is priced at; absent from a
      record written before it was kept)
   -1 idempotency key reused with another body, or claimed by a checkout in another group
   -2 unknown SKU       { -2, lineIndex } (or one whose hash has counters without the rules,
                        until the stock repair puts them back)
   -3 sale not active   { -3, lineIndex, opensAtMs }: a flash-sale SKU before its sale opens;
                        { -3, lineIndex } outside its window when a flash_sale order was asked for
   -4 limit exceeded    { -4, lineIndex }
   -5 out of stock      { -5, lineIndex, units available }
   -6 order type mismatch { -6, derivedType }
   -7 no such coupon, or not valid now
   -8 the buyer has used the coupon as often as it allows
  -13 orders hold as many uses of the coupon as it allows in all (its totalLimit)
   -9 the request budget is spent (nothing else looked at)
  -10 more checkout attempts in the velocity window than risk control allows (a replay is
      answered before this; the requests sent again under the key with the attempt's body,
      when it was answered 503, are that attempt, not new ones)
  -11 a presale or virtual SKU with a SKU of another order type: they are bought in separate
      orders { -11, lineIndex, its order type, the first line's }
  -12 no delivery address, and the cart's SKUs are of an order type that ships { -12, their order type }
  -14 the shop took the SKU off sale (putOffSale-1.lua) { -14, lineIndex }
]]
local idemKey, orderKey, acceptedKey = KEYS[1], KEYS[2], KEYS[3]
local orderId, userId, bodyHash = ARGV[1], ARGV[2], ARGV[3]
local couponKey, couponUsesKey, couponCode = KEYS[4], KEYS[5], ARGV[9]
local counterCount = tonumber(ARGV[10])
local attemptKey, queuedKey = KEYS[6], KEYS[7]
local lineCount = (#KEYS - 7 - counterCount) / 2
-- line i's keys are KEYS[lineKeys + 2i - 1] and KEYS[lineKeys + 2i], its quantity ARGV[lineQty + i]
local lineKeys, lineQty = 7 + counterCount, 13 + 2 * counterCount

-- counted whatever the answer, as countInWindows-n.lua counts them (shared/countInWindow.lua)
local counts = countCheckoutWindows(7, 13, counterCount, attemptKey, bodyHash .. ':' .. userId)
local budget = counts[1] or { 0, 0, 0 }

local function checkout()
  if counterCount >= 1 and budget[1] > budget[3] then return { -9 } end

  local previous = redis.call('HMGET', idemKey, 'h', 'o', 't', 'd', 'a', 'u', 'g')
  if previous[1] then
    -- another body, or another buyer whose id and key spell the same record ('ann:x' + 'k',
    -- 'ann' + 'x:k'): never their order (a record written before 'u' was kept has none); a
    -- claim ('g') is the key of a cart that runs in another group: this is another cart
    if previous[1] ~= bodyHash or (previous[6] and previous[6] ~= userId) or previous[7] then return { -1 } end
    return { 2, previous[2], previous[3], tonumber(previous[4]), previous[5] }
  end
  -- after the replay: a buyer retrying their accepted checkout is no new attempt, and a
  -- refusal (403, final for a client) would hide the order they must pay
  if counterCount >= 2 and counts[2][1] > counts[2][3] then return { -10 } end

  -- a SKU with nothing left answers OUT_OF_STOCK before anything else, as the api does from
  -- memory for a SKU it saw sold out moments ago: both say the same to the same request
  local skus = {}
  for i = 1, lineCount do
    local sku = redis.call('HMGET', KEYS[lineKeys + 2 * i - 1], 'available', 'deduction', 'saleStartsAt', 'saleEndsAt', 'perUserLimit', 'orderType', 'countsBySale', 'countedUntil', 'offSale')
    -- counters without a deduction (made from nothing by a counter script after Redis lost
    -- the SKU's hash, before they left a lost hash alone) have none of the rules below, and
    -- nothing would be reserved from them: unknown until the stock repair puts the rules back
    if not sku[1] or not sku[2] then return { -2, i } end
    if tonumber(sku[1]) <= 0 then return { -5, i, tonumber(sku[1]) } end
    if sku[9] then return { -14, i } end
    skus[i] = sku
  end

  local type = skus[1][6] or 'standard'
  for i = 2, lineCount do
    local lineType = skus[i][6] or 'standard'
    if lineType ~= type then return { -11, i, lineType, type } end
  end
  -- the SKUs' type says whether anything ships (a flash sale, below, ships as standard does)
  if ARGV[12] ~= '' and not string.find(ARGV[12], ',' .. type .. ',', 1, true) then return { -12, type } end
  -- the sale's window, the coupon's and the payment deadline on Redis's clock (shared/redisClock.lua)
  local now = clockMs()
  local lines = {}
  local couponApplies = false
  for i = 1, lineCount do
    local skuKey, boughtKey = KEYS[lineKeys + 2 * i - 1], KEYS[lineKeys + 2 * i]
    local qty = tonumber(ARGV[lineQty + i])
    local sku = skus[i]
    local available, saleStartsAt, saleEndsAt, limit = tonumber(sku[1]), tonumber(sku[3]), tonumber(sku[4]), tonumber(sku[5])
    local inSale = saleEndsAt > 0 and saleStartsAt <= now and now < saleEndsAt
    -- the units of a sale not open yet are held for it: sold before, at list price and without
    -- the per-buyer limit, one buyer could take them all; after its end a SKU sells at list price
    if saleEndsAt > 0 and now < saleStartsAt then return { -3, i, saleStartsAt } end
    if ARGV[7] == 'flash_sale' and saleEndsAt > 0 and not inSale then return { -3, i } end
    local limited, count = 0, false
    if not inSale then couponApplies = true end
    if inSale then
      type = 'flash_sale'
      if limit > 0 then
        limited = 1
        count = redis.call('GET', boughtKey)
        if unitsCountedInSale(count, sku[3]) + qty > limit then return { -4, i } end
      end
    end
    if available < qty then return { -5, i, available } end
    -- the count outlives an end moved earlier (changeSale-1.lua's countedUntil): should that end be undone, the sale runs on
    local countedUntil = math.max(saleEndsAt, tonumber(sku[8] or '0'))
    lines[i] = { skuKey, boughtKey, ARGV[lineQty + i], sku[2], limited, countedUntil, count, sku[3], sku[7] == '1' or (count and string.find(count, ':', 1, true) ~= nil) }
  end
  if ARGV[7] == 'flash_sale' and type == 'standard' then return { -3, 1 } end
  if ARGV[7] ~= '' and ARGV[7] ~= type then return { -6, type } end
  local couponEndsAt = 0
  if couponCode ~= '' then
    local refusal
    refusal, couponEndsAt = couponRefusal(couponKey, couponUsesKey, now)
    if refusal ~= 0 then return { refusal } end
  end

  local deadline = now + tonumber(type == 'flash_sale' and ARGV[6] or ARGV[5])
  -- Redis turns each Lua number given to redis.call into text with sprintf (8 % of this
  -- script's instructions when it did so for nine of them, bench/README.md item 34): numbers
  -- the caller sent go back as the text they came in (line[3] is the quantity's), the
  -- deadline is formatted once
  local deadlineText, nowText = tostring(deadline), tostring(now)
  local recorded, countsWritten = {}, {}
  for i = 1, lineCount do
    local line = lines[i]
    if line[4] == 'placement' then
      redis.call('HINCRBY', line[1], 'available', '-' .. line[3])
      redis.call('HINCRBY', line[1], 'reserved', line[3])
    end
    -- the counter only matters while its sale runs: it goes at the end this checkout saw, or the
    -- former end of one moved earlier; one that names its sale counts in no other (shared/saleCount.lua)
    if line[5] == 1 and line[9] then
      -- a later line of the same SKU (a cart the api did not merge) counts on from this one
      local units = (countsWritten[line[2]] or unitsCountedInSale(line[7], line[8])) + tonumber(line[3])
      countsWritten[line[2]] = units
      redis.call('SET', line[2], line[8] .. ':' .. units, 'PXAT', line[6])
    elseif line[5] == 1 then
      redis.call('INCRBY', line[2], line[3])
      redis.call('PEXPIREAT', line[2], line[6])
    end
    recorded[i] = { tonumber(line[3]), line[4], line[5] }
  end

  redis.call('HSET', orderKey, 'u', userId, 't', type, 'd', deadlineText, 's', 'reserved', 'l', cjson.encode(recorded), 'p', ARGV[8], 'a', nowText)
  if couponCode ~= '' and couponApplies then takeCouponUse(couponKey, couponUsesKey, orderKey, couponCode, couponEndsAt) end
  -- outlive the payment deadline by a week so a late expiry still finds what to release; a
  -- presale holds its units past its deposit, until its balance is paid or forfeited
  local keptUntil = deadline + 604800000
  if type == 'presale' then keptUntil = keptUntil + tonumber(ARGV[11]) end
  redis.call('PEXPIREAT', orderKey, keptUntil)
  redis.call('ZADD', acceptedKey, nowText, orderId)
  if ARGV[13] == '1' then
    redis.call('ZADD', queuedKey, 0, orderId)
    redis.call('PEXPIRE', queuedKey, ARGV[4])
  end
  redis.call('HSET', idemKey, 'h', bodyHash, 'o', orderId, 't', type, 'd', deadlineText, 'a', nowText, 'u', userId)
  redis.call('PEXPIRE', idemKey, ARGV[4])
  return { 1, orderId, type, deadline, now, couponApplies and 1 or 0 }
end

local reply = checkout()
-- refused for good after its checkout attempt passed: the buyer's next request under the key is
-- a new attempt (a replica that did not acknowledge this makes it a 503 all the same: counted again)
if counterCount >= 2 and reply[1] < -1 and reply[1] ~= -9 and reply[1] ~= -10 then redis.call('DEL', attemptKey) end
table.insert(reply, 1, budget[2])
table.insert(reply, 1, budget[1])
return reply
