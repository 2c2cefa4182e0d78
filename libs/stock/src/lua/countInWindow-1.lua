--[[
  Counts one more event in a fixed window: a buyer's request budget, a buyer's checkout
  attempts. The first count of a window starts its clock; a counter that lost its expiry
  gets one back on its next count, so none stays in Redis for ever.

  KEYS[1]  the counter  <prefix>{g}:<what>:<whose>
  ARGV[1] window (ms)

  Returns { count in this window, this one included; ms until the window ends }.
]]
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return { count, tonumber(ARGV[1]) }
end
local msLeft = redis.call('PTTL', KEYS[1])
if msLeft < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  msLeft = tonumber(ARGV[1])
end
return { count, msLeft }
