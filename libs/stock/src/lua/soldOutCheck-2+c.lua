--[[
  A checkout refused from the api's sold-out memory, in one call: counts the buyer's request
  budget and checkout attempts (countInWindow, shared/countInWindow.lua), as the reservation
  script would have, and says whether their idempotency record exists (a retried accepted
  checkout still gets its 202, a key reused with another body its 422, from the script).
  A request sent again under a key whose attempt was counted already (a 503's retry: the
  attempt record countCheckoutWindows keeps) is not counted as an attempt again; the body is
  not hashed on this path, so any body under the key is taken for the same attempt. With no
  record the refusal is final, and the buyer's next request under the key a new attempt.

  KEYS[1]    idempotency record  <prefix>{g}:idem:<userId>:<key, its : and % escaped>
  KEYS[2]    attempt record      <prefix>{g}:attempt:<userId>:<key, its : and % escaped>
  KEYS[2+j]  counter j, j = 1..c  <prefix>{g}:<what>:<whose>, in the record's slot group;
             counter 2, when there is one, the checkout attempts
  ARGV[j]    counter j's window (ms)

  Returns { 1 if the record exists else 0, count1, msLeft1, count2, msLeft2, ... }.
]]
local known = redis.call('EXISTS', KEYS[1])
local retried = redis.call('EXISTS', KEYS[2]) == 1
local replies = { known }
for j = 3, #KEYS do
  local count, msLeft = 0, 0
  if j ~= 4 or not retried then count, msLeft = countInWindow(KEYS[j], tonumber(ARGV[j - 2])) end
  replies[#replies + 1] = count
  replies[#replies + 1] = msLeft
end
if known == 0 then redis.call('DEL', KEYS[2]) end
return replies
