-- Removes a name from a room if the given socket (or, for a dead instance,
-- the given instance) still holds it, and places the room's `user_left`
-- in its order.
-- KEYS: members hash, room set, sequence, position, history list, log list
-- ARGV: prefix, room, name key, 'sid' or 'instance', the holder's sid or
--       instance, seconds an empty room keeps its state, events channel,
--       event record head, user_left JSON, log entries kept
-- Returns 1 if the member was removed, 0 if it held nothing.
local members, rooms, seq, position, history, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local prefix, room, key, field, holder_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local empty_keep, channel, head, notice, keep = ARGV[6], ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])

local current = redis.call('HGET', members, key)
if not current then
  return 0
end
local holder = cjson.decode(current)
if holder[field] ~= holder_id then
  return 0
end
redis.call('HDEL', members, key)
redis.call('SREM', prefix .. 'instance-members:' .. holder.instance, cjson.encode({room, key}))
local pos = redis.call('INCR', position)
local event = '{"kind":"l","pos":' .. pos .. head .. ',"data":' .. notice .. '}'
redis.call('RPUSH', log, event)
redis.call('LTRIM', log, -keep, -1)
redis.call('PUBLISH', channel, event)
if redis.call('HLEN', members) == 0 then
  redis.call('SREM', rooms, room)
  for _, kept in ipairs({seq, position, history, log}) do
    redis.call('EXPIRE', kept, empty_keep)
  end
end
redis.call('PUBLISH', channel, 'r')
return 1
