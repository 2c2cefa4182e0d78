--[[
  One step of a correction of a SKU's counters (Inventory.correctCounters: a stock set taken
  back, the reconciler's repair to the ledger) in one bucket, exactly once: adds to the
  bucket's counters, or takes up to a number of sellable units out of it, never below zero,
  so that no bucket goes negative while the others keep selling. A step is run again when
  its answer was lost with the connection (ioredis sends a lost connection's unanswered
  commands again once it is back): it then answers what it did the first time, instead of
  moving the counters twice.

  KEYS[1]  the step's marker  <prefix>{g}:correction:<correctionId>:<step>
  KEYS[2]  SKU hash of the bucket  <prefix>{g}:sku:<skuId>
  ARGV[1]  how long the marker is kept (ms)
  ARGV[2]  sellable units to take (>= 0)
  ARGV[3]  added to available (>= 0), ARGV[4] to reserved, ARGV[5] to sold

  Returns the units taken (0 for an unknown SKU or an empty bucket).
]]
local done = redis.call('GET', KEYS[1])
if done then return tonumber(done) end
local taken = 0
local take = tonumber(ARGV[2])
if take > 0 then
  local available = tonumber(redis.call('HGET', KEYS[2], 'available') or '0')
  taken = math.min(take, math.max(available, 0))
  if taken > 0 then redis.call('HINCRBY', KEYS[2], 'available', -taken) end
end
local counters = { 'available', 'reserved', 'sold' }
for i = 1, 3 do
  local by = tonumber(ARGV[2 + i])
  if by ~= 0 then redis.call('HINCRBY', KEYS[2], counters[i], by) end
end
redis.call('SET', KEYS[1], taken, 'PX', tonumber(ARGV[1]))
return taken
