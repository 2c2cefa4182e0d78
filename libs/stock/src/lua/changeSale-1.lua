--[[
  Changes, adds or withdraws the flash sale of one bucket of a SKU, on Redis's clock (the one
  checkouts are accepted by, shared/redisClock.lua), while no buyer has bought in it: the sale
  here has not opened, and the new one does not open now. An order is priced by the catalog's
  sale at the time it was accepted (pricing.ts), so a sale in which orders were accepted is
  never changed under them; once it is over for good (ended, its buyers' counts gone with it)
  a new one replaces it. With ARGV[6] '1' only the end of the sale here moves, and
  only earlier, opened or not (ending a running sale early), while neither its end nor the new one
  is within ARGV[4]: every bucket, and the catalog, then end it at the same instant.

  KEYS[1]  SKU hash of the bucket  <prefix>{g}:sku:<skuId>
  ARGV[1] the new sale's start (ms, 0 = no sale)   ARGV[2] its end (ms, 0 = no sale)
  ARGV[3] its per-buyer limit (0 = none)
  ARGV[4] how long before it opens (ms) a sale stops taking changes: a change reaches every
          bucket, and the catalog, well before either sale opens, whatever their clocks
  ARGV[5] how long past the end a checkout saw its buyers' counts toward the limit were kept
          before they went with it (reserveStock-7+c+2n.lua): how long after its end a sale set
          before then (no countsEndWithSale) is over for good
  ARGV[6] '1': only the end moves, earlier (the start and limit are the bucket's); '' any change

  The hash's countedUntil: the latest end the buyers' counts of the sale here are kept for, when its
  end moved earlier after it opened: a count goes at the end its checkout saw, and one written after
  the move at this former end too (reserveStock-7+c+2n.lua), so the limit still holds should the move
  be undone (a change half made, the catalog's sale put back). On a bucket whose counts do not name
  their sale it also holds the next sale up until then. Its countsEndWithSale:
  '1' once this script or initSku-1.lua set the sale here, whose counts go at its end; a sale set
  before they did keeps its counts ARGV[5] longer, and waits that much more. Its countsBySale: '1'
  once they set the sale here, whose counts name it (shared/saleCount.lua) and count in no other:
  such a sale is over for good at its end, even one ended early, whose counts live to its former end.

  Returns { 1 } changed, { 0 } the bucket has this sale already (a change sent again),
  { -1, opensAtMs, overForGoodAtMs } the sale here has opened, or opens within ARGV[4], and is not
  over for good (until overForGoodAtMs, when a new sale may replace it),
  { -2 } Redis lost the bucket (no counters, or counters without the SKU's rules: the stock
  repair puts the catalog's rules back first), { -3, nowMs } the new sale would open within ARGV[4],
  { -4, nowMs } (ARGV[6] '1') the sale here is another or ends no later, or it or the new one ends
  within ARGV[4].
]]
local sale = redis.call('HMGET', KEYS[1], 'deduction', 'saleStartsAt', 'saleEndsAt', 'perUserLimit', 'countedUntil', 'countsEndWithSale', 'countsBySale')
if not sale[1] then return { -2 } end
local startsAt, endsAt, limit = tonumber(sale[2] or '0'), tonumber(sale[3] or '0'), tonumber(sale[4] or '0')
local newStartsAt, newEndsAt, newLimit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if startsAt == newStartsAt and endsAt == newEndsAt and limit == newLimit then return { 0 } end
local now = clockMs()
local cutoff = now + tonumber(ARGV[4])
local countedUntil = math.max(endsAt, tonumber(sale[5] or '0'))
if ARGV[6] == '1' then
  -- never later: the counts of its buyers go at the end their checkout saw
  if endsAt == 0 or startsAt ~= newStartsAt or limit ~= newLimit or newEndsAt >= endsAt or newEndsAt <= cutoff then return { -4, now } end
else
  local overForGoodAt = countedUntil
  if sale[7] then overForGoodAt = endsAt
  elseif not sale[6] then overForGoodAt = countedUntil + tonumber(ARGV[5]) end
  if endsAt > 0 and startsAt <= cutoff and now < overForGoodAt then return { -1, startsAt, overForGoodAt } end
  if newEndsAt > 0 and newStartsAt <= cutoff then return { -3, now } end
end
redis.call('HSET', KEYS[1], 'saleStartsAt', ARGV[1], 'saleEndsAt', ARGV[2], 'perUserLimit', ARGV[3])
-- another sale: no count of it is older than this script's reserveStock; the same one (an undo,
-- a change before it opens) keeps what its counts were written by
if newStartsAt ~= startsAt then redis.call('HSET', KEYS[1], 'countsEndWithSale', '1', 'countsBySale', '1') end
-- counts of buyers who bought in this sale outlive its earlier end; a new sale starts from none
if endsAt > 0 and startsAt == newStartsAt and startsAt <= now and countedUntil > newEndsAt then
  redis.call('HSET', KEYS[1], 'countedUntil', countedUntil)
elseif sale[5] then
  redis.call('HDEL', KEYS[1], 'countedUntil')
end
return { 1 }
