--[[
  Counts one more event in fixed windows, one counter per key, in one call: a buyer's request
  budget and, on a checkout, their checkout attempts. The first count of a window starts its
  clock; a counter that lost its expiry gets one back on its next count, so none stays in
  Redis for ever.

  KEYS[i]  a counter  <prefix>{g}:<what>:<whose>
  ARGV[i]  its window (ms)

  Returns { count, ms until its window ends } for each counter, flattened:
  { count1, msLeft1, count2, msLeft2, ... }; a count includes this event.
]]
local replies = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[i])
  local count = redis.call('INCR', key)
  local msLeft = window
  if count == 1 then
    redis.call('PEXPIRE', key, window)
  else
    msLeft = redis.call('PTTL', key)
    if msLeft < 0 then
      redis.call('PEXPIRE', key, window)
      msLeft = window
    end
  end
  replies[#replies + 1] = count
  replies[#replies + 1] = msLeft
end
return replies
