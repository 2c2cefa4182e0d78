--[[
  clockMs: Redis's own time (ms). The api hosts' clocks differ; a time a script decides by (a
  sale's window, a coupon's, a payment deadline, a claim's age) is Redis's, one for them all.
]]
local function clockMs()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
