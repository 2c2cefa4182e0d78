--[[
  Sets the sellable quantity of one bucket of a SKU; reservations already taken stay as
  they are. Each merchant set is one stock generation of the SKU: bucket 0's set starts
  the next (its 'generation' counts the sets), the other buckets' sets carry it. A
  transfer between buckets gives its units only within the generation it took them in
  (giveStock-2.lua), so no set ever has a transfer's units added on top of it.

  KEYS[1]  SKU hash of the bucket  <prefix>{g}:sku:<skuId>
  ARGV[1] new available quantity
  ARGV[2] the set's generation; 0 in bucket 0: start the next one

  Returns { previous available quantity, the set's generation }, { -1, 0 } when the SKU is unknown.
]]
local previous = redis.call('HGET', KEYS[1], 'available')
if not previous then return { -1, 0 } end
local generation = tonumber(ARGV[2])
if generation == 0 then
  generation = redis.call('HINCRBY', KEYS[1], 'generation', 1)
else
  redis.call('HSET', KEYS[1], 'generation', generation)
end
redis.call('HSET', KEYS[1], 'available', ARGV[1])
return { tonumber(previous), generation }
