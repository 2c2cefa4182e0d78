--[[
  Keeps a lock alive for its holder: its time is set again only while the holder's token
  is still the lock's value (a lock that expired and was taken by another is not touched).

  KEYS[1]  the lock  e.g. <prefix>stock-repair-lock
  ARGV[1] the holder's token   ARGV[2] time to live from now (ms)

  Returns 1 extended, 0 the lock is no longer this holder's.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
