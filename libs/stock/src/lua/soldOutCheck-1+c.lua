--[[
  A checkout refused from the api's sold-out memory, in one call: counts the buyer's request
  budget and checkout attempts (countInWindow, shared/countInWindow.lua), as the reservation
  script would have, and says whether their idempotency record exists (a retried accepted
  checkout still gets its 202, a key reused with another body its 422, from the script).

  KEYS[1]    idempotency record  <prefix>{g}:idem:<userId>:<key>
  KEYS[1+j]  counter j, j = 1..c  <prefix>{g}:<what>:<whose>, in the record's slot group
  ARGV[j]    counter j's window (ms)

  Returns { 1 if the record exists else 0, count1, msLeft1, count2, msLeft2, ... }.
]]
local replies = { redis.call('EXISTS', KEYS[1]) }
for j = 2, #KEYS do
  local count, msLeft = countInWindow(KEYS[j], tonumber(ARGV[j - 1]))
  replies[#replies + 1] = count
  replies[#replies + 1] = msLeft
end
return replies
