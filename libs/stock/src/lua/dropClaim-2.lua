--[[
  A request's part in the claim of an Idempotency-Key (claimCheckout-7+c.lua) settled, its
  checkout refused: the request no longer holds the claim, and the claim is dropped once no
  request holds it (every one that made it or took it up refused: the same checkout sent several
  times at once, all refused), so the key is free again, as it is after any refused checkout; kept
  while another holds it: that one may be accepted. A claim made before its holders were kept
  ('k:' fields) is dropped when this request made it and holds it alone ('n' not emptied).
  Either way the claim no longer names this request's order among those holding a coupon use
  under it (abandonClaim-3+2h.lua). A checkout refused for good (not answered 503: its buyer is
  not told to retry) takes its attempt's record too, so the buyer's next request under the key
  is a new attempt.

  KEYS[1]  idempotency claim  <prefix>{own}:idem:<userId>:<key, its : and % escaped>
  KEYS[2]  the attempt last counted under the key  <prefix>{own}:attempt:<userId>:<key, its : and % escaped>
  ARGV[1]  the orderId of the request
  ARGV[2]  '1' when the request holds the claim (made it, or took it up)
  ARGV[3]  '1' when the checkout is refused for good

  Returns 1 dropped, 0 kept.
]]
if ARGV[3] == '1' then redis.call('DEL', KEYS[2]) end
if ARGV[2] == '1' then
  local held = redis.call('HDEL', KEYS[1], 'k:' .. ARGV[1]) == 1
  local holdersLeft = false
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 2) == 'k:' then holdersLeft = true end
  end
  if not holdersLeft and (held or redis.call('HGET', KEYS[1], 'n') == ARGV[1]) then
    redis.call('DEL', KEYS[1])
    return 1
  end
end
redis.call('HDEL', KEYS[1], 'c:' .. ARGV[1])
return 0
