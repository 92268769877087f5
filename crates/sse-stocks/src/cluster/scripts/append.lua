-- Appends one feed step if ARGV[1] holds the lease (renewing it), and keeps
-- each symbol's latest quote, so a new producer continues from the last
-- prices. Returns the new stream ids, or nil when the lease is not ours:
-- an instance that lost its lease can never append behind the new
-- producer's back.
--
-- KEYS: lease, stream, last quotes (one hash tag: one slot, one shard).
-- ARGV: token, ttl ms, maxlen, the highest id the producer has seen
--       (`<ms>-<seq>`), then symbol / quote JSON pairs.
--
-- Each entry also records the id of the entry before it (`prev`), so a
-- reader can tell that it missed nothing: if Redis restarts empty, or a
-- replica that lacks the last entries is promoted, the first new entry
-- names another entry than the last one the reader saw.
--
-- Ids are chosen here rather than by `XADD *`: past the stream's last
-- entry, as `*` would be, but also past the highest id the producer has
-- seen, which a promoted replica may lack; so an id is never handed out
-- twice, even by a server whose clock is behind.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])

local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end

local function after(ms, seq, floor_ms, floor_seq)
  if ms > floor_ms or (ms == floor_ms and seq > floor_seq) then
    return ms, seq
  end
  return floor_ms, floor_seq + 1
end

local prev = '0-0'
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #last > 0 then
  prev = last[1][1]
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local seen_ms, seen_seq = parse(ARGV[4])
local ids = {}
for i = 5, #ARGV, 2 do
  local top_ms, top_seq = parse(prev)
  local ms, seq = after(now, 0, top_ms, top_seq)
  ms, seq = after(ms, seq, seen_ms, seen_seq)
  local id = string.format('%d-%d', ms, seq)
  prev = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], id, 'quote', ARGV[i + 1], 'prev', prev)
  ids[#ids + 1] = prev
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
return ids
