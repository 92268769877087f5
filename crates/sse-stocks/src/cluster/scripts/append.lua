-- Appends one feed step if ARGV[1] holds the lease (renewing it), and keeps
-- each symbol's latest quote, so a new producer continues from the last
-- prices. Returns the new stream ids, or nil when the lease is not ours:
-- an instance that lost its lease can never append behind the new
-- producer's back.
--
-- KEYS: lease, stream, last quotes (one hash tag: one slot, one shard).
-- ARGV: token, ttl ms, maxlen, then symbol / quote JSON pairs.
--
-- Each entry also records the id of the entry before it (`prev`), so a
-- reader can tell that it missed nothing: if Redis restarts empty, the
-- first new entry names `0-0`, not the last entry the reader saw.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local prev = '0-0'
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #last > 0 then
  prev = last[1][1]
end
local ids = {}
for i = 4, #ARGV, 2 do
  prev = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'quote', ARGV[i + 1], 'prev', prev)
  ids[#ids + 1] = prev
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
return ids
