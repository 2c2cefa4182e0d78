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
