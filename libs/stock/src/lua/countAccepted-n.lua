#!lua flags=no-writes
--[[
  The orders accepted and not yet in MySQL, over every stock group, in one call: every api
  reads this backlog four times a second (QueueDepthSampler), where a ZCARD per group was 64
  commands a read. On one Redis server only: on a cluster each group is a slot of its own.
  Flagged no-writes (the first line): a script Redis cannot tell reads only is held while writes
  are paused (CLIENT PAUSE WRITE, as FAILOVER does), and every command behind it on the api's
  connection with it, a merchant's stock set's reads among them, until their timeouts.

  KEYS[i]  a group's accepted set  <prefix>{g}:accepted

  Returns the sum of their sizes.
]]
local count = 0
for _, key in ipairs(KEYS) do
  count = count + redis.call('ZCARD', key)
end
return count
