--[[
  Puts the sellable counters and checkout rules of one bucket of a SKU into Redis. On a
  create, a hash already there is of a SKU the catalog did not have (left by a create from
  before the catalog committed first, or written by hand): it is replaced whole (no field of
  it may outlive it), unless orders hold units of it. The stock
  repair recreates lost buckets only: a hash already there with its rules is live and is
  kept as it is. One without the rules (counters alone, made from nothing by a counter script
  before they left a lost SKU's hash alone) gets them, the checkout refusing it until then;
  its counters (an absent one 0, where the increments started) are the repair's to move to
  the ledger. A bucket the repair recreates or gives its rules back gets the SKU's stock
  generation (setStock-1.lua), as the buckets Redis kept have it: with none, a transfer
  between it and them would wait for a stock set that came long ago (giveStock-2.lua).

  KEYS[1]  SKU hash  <prefix>{g}:sku:<skuId>
  ARGV[1] available   ARGV[2] deduction   ARGV[3] sale starts (ms, 0 = no sale)
  ARGV[4] sale ends (ms, 0 = no sale)   ARGV[5] per-buyer limit (0 = none)
  ARGV[6] how many buckets the SKU's stock is split into (1: not split)
  ARGV[7] 'replace' (a create) or 'keep' (the repair; a create sent again whose first never wrote Redis)
  ARGV[8] the type of the orders that sell it: 'standard', 'presale' or 'virtual' (a hash
          written before SKUs had one has no such field: standard)
  ARGV[9] 'keep' only: the SKU's stock generation (0: its stock was never set)
  ARGV[10] 'keep': the generation the buckets Redis kept give transfers from (giveStock-2.lua),
          below ARGV[9] after a stock set taken back (takeBackStockSet-1.lua); 0 for a create
  ARGV[11] 'keep': '1' when the catalog has the SKU off sale (putOffSale-1.lua): a bucket it
          recreates or gives its rules back, or a create sent again publishes, sells nothing until
          the SKU is back on sale

  The buyers' counts toward the sale's limit go at its end (countsEndWithSale, changeSale-1.lua)
  and name the sale they count in (countsBySale, shared/saleCount.lua).

  Returns, on a create, 1 created, 0 a leftover replaced, -1 the leftover has units reserved
  or sold (left unchanged); for the repair, 1 created, 2 rules put back, 0 kept as it was.
]]
local existed = redis.call('EXISTS', KEYS[1]) == 1
if ARGV[7] == 'keep' then
  if existed and redis.call('HEXISTS', KEYS[1], 'deduction') == 1 then return 0 end
  redis.call('HSETNX', KEYS[1], 'available', ARGV[1])
  redis.call('HSETNX', KEYS[1], 'reserved', 0)
  redis.call('HSETNX', KEYS[1], 'sold', 0)
  redis.call('HSET', KEYS[1], 'deduction', ARGV[2], 'saleStartsAt', ARGV[3], 'saleEndsAt', ARGV[4], 'perUserLimit', ARGV[5],
    'buckets', ARGV[6], 'orderType', ARGV[8], 'countsEndWithSale', '1', 'countsBySale', '1')
  if tonumber(ARGV[9]) > 0 then redis.call('HSETNX', KEYS[1], 'generation', ARGV[9]) end
  if ARGV[10] and tonumber(ARGV[10]) < tonumber(ARGV[9]) then redis.call('HSETNX', KEYS[1], 'givesFrom', ARGV[10]) end
  if ARGV[11] == '1' then redis.call('HSET', KEYS[1], 'offSale', '1') end
  if existed then return 2 end
  return 1
end
if existed then
  local held = redis.call('HMGET', KEYS[1], 'reserved', 'sold')
  if tonumber(held[1] or 0) > 0 or tonumber(held[2] or 0) > 0 then return -1 end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'available', ARGV[1], 'reserved', 0, 'sold', 0, 'deduction', ARGV[2],
  'saleStartsAt', ARGV[3], 'saleEndsAt', ARGV[4], 'perUserLimit', ARGV[5], 'buckets', ARGV[6], 'orderType', ARGV[8], 'countsEndWithSale', '1', 'countsBySale', '1')
if existed then return 0 end
return 1
