-- Tells the room list a room's member count as of a position in the
-- room's order; an older count (a late answer, another instance's) is
-- ignored, so the list converges on the room's latest count. A room that
-- emptied stays noted for a while (count 0), so that a count from before
-- cannot list it again.
-- KEYS: the room list hash; ARGV: room, position, count, changed channel
-- Returns 1 if the list changed.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local pos = tonumber(string.match(current, '^(%d+)'))
  if pos > tonumber(ARGV[2]) then
    return 0
  end
end
local now = redis.call('TIME')[1]
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3] .. ':' .. now)
redis.call('SPUBLISH', ARGV[4], 'r')
return 1
