--[[
  A buyer's count toward the per-buyer limit of a SKU's flash sale, in their bought counter:
  '<the sale's start, ms>:<units>', naming the sale it counts in, on a bucket whose sale was set
  with countsBySale (changeSale-1.lua, initSku-1.lua); a bare '<units>' on one set before (or
  written there by a checkout of an earlier release), taken as the count of the sale the bucket
  sells by. A count of another sale counts nothing in this one: the SKU's next sale starts from
  none as soon as the last has ended, even one ended early whose counts live to its former end.
]]

-- the units `count` (the counter's value, or false) holds toward the sale starting at `saleStartsAt`
local function unitsCountedInSale(count, saleStartsAt)
  if not count then return 0 end
  local countedIn, units = string.match(count, '^(%d+):(%d+)$')
  if not countedIn then return tonumber(count) end
  if tonumber(countedIn) ~= tonumber(saleStartsAt) then return 0 end
  return tonumber(units)
end

--[[
  Gives `units` of an order accepted at `acceptedAt` (ms, Redis's clock) back to the buyer's count
  of the sale the SKU's bucket sells by now (a release, a cancellation), when they are in it: the
  count is there (it goes at the sale's end), it is that sale's, and that sale started no later
  than the order. An order of an earlier sale gives nothing to the next one's count.
]]
local function giveBackToSaleCount(skuKey, boughtKey, acceptedAt, units)
  local count = redis.call('GET', boughtKey)
  if not count then return end
  local saleStartsAt = redis.call('HGET', skuKey, 'saleStartsAt') or '0'
  if tonumber(saleStartsAt) > acceptedAt then return end
  local countedIn, counted = string.match(count, '^(%d+):(%d+)$')
  if not countedIn then
    redis.call('DECRBY', boughtKey, units)
  elseif tonumber(countedIn) == tonumber(saleStartsAt) then
    redis.call('SET', boughtKey, countedIn .. ':' .. math.max(0, tonumber(counted) - units), 'KEEPTTL')
  end
end
