--[[
  Starts a merchant's stock set of a SKU in its bucket 0, and records it there until both
  its Redis and its MySQL sides are done (closeStockSet-2.lua): the set's reference, the
  SKU's new stock, and what the bucket held before. Each set is one stock generation of the
  SKU, which the other buckets' sets then carry (setStock-1.lua). A set left half-done (an
  answer that never came, a process that died before MySQL committed) stays open, and
  whoever finds it (the next set of the SKU, the stock check) finishes it from the record.

  The generation is the caller's, one above the SKU's when it read it under the SKU's MySQL
  row lock: a set that reaches Redis late, after a later one started, is refused, so an
  unanswered set never lands on top of the next.

  KEYS[1]  SKU hash of bucket 0        <prefix>{g0}:sku:<skuId>
  KEYS[2]  open stock sets             <prefix>{g0}:stock-sets-open  (zset of SKU ids by time started)
  ARGV[1] bucket 0's share of the new stock   ARGV[2] the set's generation
  ARGV[3] the set's reference   ARGV[4] the SKU's new stock, all buckets   ARGV[5] SKU id
  ARGV[6] now (ms)

  A reference started before and still open is that set, run again to finish it. One started
  before and closed without its ledger row (the caller looks for it first) was taken back: a
  set sent again under an Idempotency-Key reuses its reference, and starts anew.

  Returns { bucket 0's available quantity before the set, the set's generation }: now, or
  for a reference started before and open what it found then; { -1, 0 } when the SKU is
  unknown; { -2, the SKU's generation } when another set of the SKU is open or started since.
]]
local bucket = redis.call('HMGET', KEYS[1], 'available', 'generation', 'setRef', 'setFrom', 'givesFrom')
if not bucket[1] then return { -1, 0 } end
local here = tonumber(bucket[2] or '0')
local open = redis.call('ZSCORE', KEYS[2], ARGV[5])
if bucket[3] == ARGV[3] and open then return { tonumber(bucket[4]), here } end
local generation = tonumber(ARGV[2])
if generation <= here or open then return { -2, here } end
-- transfers taken before the set are voided; should the set be taken back, the bucket gives from where it did
redis.call('HSET', KEYS[1], 'available', ARGV[1], 'generation', generation, 'setFrom', bucket[1], 'setRef', ARGV[3], 'setStock', ARGV[4], 'givesFromBefore', bucket[5] or here)
redis.call('HDEL', KEYS[1], 'givesFrom')
redis.call('ZADD', KEYS[2], tonumber(ARGV[6]), ARGV[5])
return { tonumber(bucket[1]), generation }
