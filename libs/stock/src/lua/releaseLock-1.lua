--[[
  Lets go of a lock, only if this holder still has it: a holder that outlived its lock's
  time never deletes the lock another has taken since.

  KEYS[1]  the lock  e.g. <prefix>stock-repair-lock
  ARGV[1] the holder's token

  Returns 1 let go, 0 the lock was no longer this holder's.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
