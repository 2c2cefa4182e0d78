--[[
  The receiving side of a transfer, once per transfer id: adds the units it took from
  another bucket to this bucket's available stock if they were taken in this bucket's
  stock generation (setStock-1.lua). Taken in an earlier one, they were overridden by the
  merchant's set since, which set this bucket to its share of the new stock: the
  transfer is voided, for good, and adds nothing; but only once that set is known kept: one
  still open may yet be taken back (MySQL refused it, takeBackStockSet-1.lua), and the units
  would then be lost, measured by neither side. Taken in a later one (the set reached the
  giving bucket first and is on its way here), nothing is done yet: given after it. A set
  taken back voids nothing: the bucket gives units from `givesFrom`, the generation it gave
  from before that set.

  KEYS[1]  SKU hash of the receiving bucket  <prefix>{g}:sku:<skuId>
  KEYS[2]  transfer marker                   <prefix>{g}:transfer:<transferId>
  ARGV[1] units   ARGV[2] the giving bucket's stock generation when they were taken
  ARGV[3] the SKU's latest stock generation whose set was closed (kept or taken back) when the
          caller read it, before this call
  The marker is kept as long as the transfer is open, however long that is (closing it gives the
  marker its expiry, Inventory.closeTransfer): gone while open, the transfer would be given again.

  Returns 1 given now, 0 given before under this id, 2 voided (now or before),
  3 not yet: this bucket's stock is still to be set to the units' generation, or the set
  that overrode them is still open,
  -1 the bucket has no counters.
]]
local done = redis.call('GET', KEYS[2])
if done == 'void' then return 2 end
if done then return 0 end
local bucket = redis.call('HMGET', KEYS[1], 'available', 'generation', 'givesFrom')
if not bucket[1] then return -1 end
local taken, here = tonumber(ARGV[2]), tonumber(bucket[2] or '0')
if taken > here then return 3 end
if taken < tonumber(bucket[3] or here) then
  if here > tonumber(ARGV[3]) then return 3 end
  redis.call('SET', KEYS[2], 'void')
  return 2
end
redis.call('SET', KEYS[2], '1')
redis.call('HINCRBY', KEYS[1], 'available', tonumber(ARGV[1]))
return 1
