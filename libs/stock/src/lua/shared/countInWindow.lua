--[[
  Shared by the scripts that count requests (stock-scripts.ts puts it before them): one more
  event in a fixed window. The first count of a window starts its clock; a counter that lost
  its expiry gets one back on its next count, so none stays in Redis for ever. Returns the
  count, this event included, and the ms until the window ends.
]]
local function countInWindow(key, window)
  local count = redis.call('INCR', key)
  if count == 1 then
    redis.call('PEXPIRE', key, window)
    return count, window
  end
  local msLeft = redis.call('PTTL', key)
  if msLeft < 0 then
    redis.call('PEXPIRE', key, window)
    msLeft = window
  end
  return count, msLeft
end

--[[
  Counts the c window counters of a checkout: counter j is KEYS[keysBefore + j], its window (ms)
  ARGV[argsBefore + 2j - 1] and the most it allows in one ARGV[argsBefore + 2j]. Returns, per
  counter, { count, ms left in its window, the most it allows }.
  The second, the buyer's checkout attempts, counts an attempt once: `attemptKey` holds the
  `attempt` (the body's hash and the buyer) of the last one counted under the Idempotency-Key,
  for one window from that count (set only when absent: sending it again never keeps it longer,
  so keys cannot be hoarded across windows), so the key's requests sent again with that body, as
  a 503 or a 429 tells the buyer (the same request twice at once, a retry), pass it uncounted
  ({ 0, 0, max }). The script
  drops the key when it refuses the attempt for good, so the buyer's next request under the
  key is a new attempt; it drops it here when the attempt is one too many.
]]
local function countCheckoutWindows(keysBefore, argsBefore, c, attemptKey, attempt)
  local counts = {}
  for j = 1, c do
    local key, window, max = KEYS[keysBefore + j], tonumber(ARGV[argsBefore + 2 * j - 1]), tonumber(ARGV[argsBefore + 2 * j])
    -- one command, the attempt recorded as it is read: a checkout's hot path
    if j == 2 and redis.call('SET', attemptKey, attempt, 'PX', window, 'NX', 'GET') == attempt then
      counts[j] = { 0, 0, max }
    else
      local count, msLeft = countInWindow(key, window)
      if j == 2 and count > max then redis.call('DEL', attemptKey) end
      counts[j] = { count, msLeft, max }
    end
  end
  return counts
end
