-- Removes a name from a room if the given socket still holds it.
-- KEYS: members hash, room set, sequence, history list
-- ARGV: prefix, room, name key, sid, seconds an empty room keeps its history, events channel
-- Returns 1 if the socket was removed, 0 if it held nothing.
local members, rooms, seq, history = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, room, key, sid, keep, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local current = redis.call('HGET', members, key)
if not current then
  return 0
end
local holder = cjson.decode(current)
if holder.sid ~= sid then
  return 0
end
redis.call('HDEL', members, key)
redis.call('SREM', prefix .. 'instance-members:' .. holder.instance, cjson.encode({room, key}))
if redis.call('HLEN', members) == 0 then
  redis.call('SREM', rooms, room)
  redis.call('EXPIRE', seq, keep)
  redis.call('EXPIRE', history, keep)
end
redis.call('PUBLISH', channel, 'r')
return 1
