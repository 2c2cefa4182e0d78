--[[
  At payment: turns an order's stock into sold units, all lines or none, exactly once.
  Placement lines move reserved -> sold. Payment-time lines were only checked at
  checkout: they are re-verified now and move available -> sold, and if any line no
  longer has the units nothing is taken (available never goes negative); a payment-time
  line whose SKU hash Redis lost has none. A placement line's units were taken at checkout:
  with its SKU hash lost it is committed without moving a counter, rather than making the
  hash again with counters and no rules; the stock repair recreates the SKU from the ledger,
  which counts the sale.

  KEYS[1]    order reservation  <prefix>{g}:order:<orderId>
  KEYS[1+i]  SKU hash of recorded line i  <prefix>{g}:sku:<skuId>
  ARGV       none

  Committed, the record keeps only what is still read: its state, which answers a late
  commit or release (a settle job retried or replayed from the dead letters, a cancel that
  overtook it), and 'c', the coupon use a cancel of the paid order gives back
  (releaseCoupon-4.lua). It is written again with those alone, for as long as it had left:
  after an HDEL a hash keeps the large encoding its payload gave it (~0.26 KB left of ~0.8 KB,
  where the rewritten one is ~0.13 KB).

  A payment-time line found without its units is the order's verdict: recorded ('g', the line),
  every later commit answers it too, whatever stock comes back meanwhile. The settle job that
  found it refunds the whole order as sold out; a refund of some units committing the stock in
  between (stock put back by a return or a merchant) left that refund alone paid back, and the
  order closed with the rest of its money kept.

  Returns { code, lineIndex }:
    1 committed now   0 already committed   -1 no such reservation
   -2 already released (cancelled, expired: the order holds no stock)
   -3 a payment-time line's stock is gone  { -3, lineIndex }
]]
local orderKey = KEYS[1]
local state = redis.call('HGET', orderKey, 's')
if not state then return { -1, 0 } end
if state == 'committed' then return { 0, 0 } end
if state ~= 'reserved' then return { -2, 0 } end
local gone = redis.call('HGET', orderKey, 'g')
if gone then return { -3, tonumber(gone) } end
local lines = cjson.decode(redis.call('HGET', orderKey, 'l'))
for i, line in ipairs(lines) do
  if line[2] == 'payment' then
    local available = tonumber(redis.call('HGET', KEYS[1 + i], 'available') or '0')
    if available < line[1] then
      redis.call('HSET', orderKey, 'g', i)
      return { -3, i }
    end
  end
end
for i, line in ipairs(lines) do
  local skuKey, qty = KEYS[1 + i], line[1]
  if redis.call('EXISTS', skuKey) == 1 then
    if line[2] == 'placement' then
      redis.call('HINCRBY', skuKey, 'reserved', -qty)
    else
      redis.call('HINCRBY', skuKey, 'available', -qty)
    end
    redis.call('HINCRBY', skuKey, 'sold', qty)
  end
end
local coupon = redis.call('HGET', orderKey, 'c')
local keptMs = redis.call('PTTL', orderKey)
redis.call('DEL', orderKey)
redis.call('HSET', orderKey, 's', 'committed')
if coupon then redis.call('HSET', orderKey, 'c', coupon) end
if keptMs > 0 then redis.call('PEXPIRE', orderKey, keptMs) end
return { 1, 0 }
