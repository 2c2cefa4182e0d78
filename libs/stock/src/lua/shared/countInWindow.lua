--[[
  Shared by the scripts that count requests (stock-scripts.ts puts it before them): one more
  event in a fixed window. The first count of a window starts its clock; a counter that lost
  its expiry gets one back on its next count, so none stays in Redis for ever. Returns the
  count, this event included, and the ms until the window ends.
]]
local function countInWindow(key, window)
  local count = redis.call('INCR', key)
  if count == 1 then
    redis.call('PEXPIRE', key, window)
    return count, window
  end
  local msLeft = redis.call('PTTL', key)
  if msLeft < 0 then
    redis.call('PEXPIRE', key, window)
    msLeft = window
  end
  return count, msLeft
end

--[[
  Counts the c window counters of a checkout: counter j is KEYS[keysBefore + j], its window (ms)
  ARGV[argsBefore + 2j - 1] and the most it allows in one ARGV[argsBefore + 2j]. Returns, per
  counter, { count, ms left in its window, the most it allows }.
]]
local function countCheckoutWindows(keysBefore, argsBefore, c)
  local counts = {}
  for j = 1, c do
    local count, msLeft = countInWindow(KEYS[keysBefore + j], tonumber(ARGV[argsBefore + 2 * j - 1]))
    counts[j] = { count, msLeft, tonumber(ARGV[argsBefore + 2 * j]) }
  end
  return counts
end
