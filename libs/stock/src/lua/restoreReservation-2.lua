--[[
  Puts back the reservation record of a persisted order that Redis lost (a restart without
  its AOF, a failover to a replica that was behind), from the order as MySQL has it, so that
  its commit or release runs as it would have. No counter moves: what the order holds is
  what the stock repair counted for it from the ledger (its placement units reserved, its
  payment-time lines nothing). A record Redis has, in whatever state, is left as it is.

  The order's coupon use is put back on the record only while its given-back marker is
  absent: MySQL was read before the record is put back, and a close in between (a cancel, an
  expiry) found no record and gave the use back by the marker (releaseCoupon-4.lua); held
  again, the release of the record put back would give it back a second time.

  KEYS[1]  order reservation  <prefix>{g}:order:<orderId>
  KEYS[2]  given-back marker  <prefix>{g}:coupon-given-back:<orderId>   (unused without a coupon)
  ARGV[1] userId   ARGV[2] order type   ARGV[3] payment deadline (ms)   ARGV[4] accepted at (ms)
  ARGV[5] lines as reserveStock records them (JSON [[units, deduction, limited], ...])
  ARGV[6] order payload (JSON, as reserveStock stores it)
  ARGV[7] the coupon the order holds a use of on its record (an order of the buyer's own
          group, whose use is still used in MySQL), or ''
  ARGV[8] when the record expires (ms since the epoch)

  Returns 1 put back, 0 Redis had a record.
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[1], 't', ARGV[2], 'd', ARGV[3], 's', 'reserved', 'l', ARGV[5], 'p', ARGV[6], 'a', ARGV[4])
if ARGV[7] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then redis.call('HSET', KEYS[1], 'c', ARGV[7]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[8])
return 1
