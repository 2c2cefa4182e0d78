--[[
  The stock repair's count of a buyer's units of a flash-sale SKU, put back where Redis has none
  (it lost it), or raised to it where Redis has fewer (a failover to a replica that had not
  received the buyer's last checkouts: their orders, in MySQL, count); a count Redis has at or
  above it is kept (it includes orders the repair did not read). A release between the repair's
  reads and this script leaves the count raised by its units: a buyer refused one unit more, never
  one sold past the limit.

  KEYS[1]    buyer's bought counter  <prefix>{g}:bought:<skuId>:<userId>
  KEYS[1+i]  reservation record of order i counted in it  <prefix>{g}:order:<orderId>
  ARGV[1] units   ARGV[2] when the count expires: the sale's end (ms since the epoch)   ARGV[3] skuId
  ARGV[4] the sale's start (ms since the epoch): the count names it (shared/saleCount.lua)

  A record the repair put back from MySQL (restoreReservation-2.lua) counts no line toward the
  limit: once the count holds its units, its lines of the SKU do, so its release (an expiry, a
  cancel) gives them back as it would have. Settled records (committed, released) are left alone.

  A count of an earlier sale (one ended early lives to its former end) is none of this one's,
  and is replaced.

  Returns 1 put back (or raised) now, 0 kept, or none to put back: the sale has ended (by Redis's
  clock, the one checkouts count by), and its counts with it.
]]
local count = redis.call('GET', KEYS[1])
if count then
  local countedIn, units = string.match(count, '^(%d+):(%d+)$')
  if not countedIn then units = count end
  local kept = tonumber(units)
  if (not countedIn or tonumber(countedIn) == tonumber(ARGV[4])) and (kept == nil or kept >= tonumber(ARGV[1])) then return 0 end
end
if tonumber(ARGV[2]) <= clockMs() then return 0 end
redis.call('SET', KEYS[1], ARGV[4] .. ':' .. ARGV[1], 'PXAT', ARGV[2])
for i = 2, #KEYS do
  local record = redis.call('HMGET', KEYS[i], 's', 'l', 'p')
  if record[1] == 'reserved' and record[2] and record[3] then
    local lines, items = cjson.decode(record[2]), cjson.decode(record[3]).items
    local counted = false
    for j, line in ipairs(lines) do
      if items[j] and items[j].skuId == ARGV[3] and line[3] ~= 1 then
        line[3] = 1
        counted = true
      end
    end
    if counted then redis.call('HSET', KEYS[i], 'l', cjson.encode(lines)) end
  end
end
return 1
