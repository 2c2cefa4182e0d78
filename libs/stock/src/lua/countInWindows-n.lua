--[[
  Counts one more event in fixed windows, one counter per key, in one call: a buyer's request
  budget and, on a checkout refused before its reservation, their checkout attempts
  (countInWindow, shared/countInWindow.lua).

  KEYS[i]  a counter  <prefix>{g}:<what>:<whose>
  ARGV[i]  its window (ms)

  Returns { count, ms until its window ends } for each counter, flattened:
  { count1, msLeft1, count2, msLeft2, ... }; a count includes this event.
]]
local replies = {}
for i, key in ipairs(KEYS) do
  local count, msLeft = countInWindow(key, tonumber(ARGV[i]))
  replies[#replies + 1] = count
  replies[#replies + 1] = msLeft
end
return replies
