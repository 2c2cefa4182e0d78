--[[
  countedInSaleHere: whether a buyer's units of an order accepted at acceptedAt (ms, Redis's
  clock) are in their count toward the limit of the sale the SKU's bucket sells by now, so a
  release or a cancellation gives them back to it: the count is there (it goes at the sale's
  end), and that sale started no later than the order. The SKU's next sale starts after the last
  one's orders: its counts are its buyers' purchases in it alone.
]]
local function countedInSaleHere(skuKey, boughtKey, acceptedAt)
  return redis.call('EXISTS', boughtKey) == 1 and tonumber(redis.call('HGET', skuKey, 'saleStartsAt') or '0') <= acceptedAt
end
