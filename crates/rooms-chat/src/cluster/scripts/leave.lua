-- Removes a name from a room if the given socket (or, for a dead instance,
-- the given instance) still holds it, and places the room's `user_left`
-- in its order. Touches the room's keys only (one slot); the caller then
-- tells the room list the count this returns.
-- KEYS: members hash, sequence, position, history list, log list
-- ARGV: name key, 'sid' or 'instance', the holder's sid or instance,
--       seconds an empty room keeps its state, room channel, event record
--       head, user_left JSON, log entries kept
-- Returns {1, position, member count} if the member was removed, {0} if
-- it held nothing or if other sockets of the same `sub` still hold the
-- name (then only the holder's sockets in the record change).
local members, seq, position, history, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local key, field, holder_id = ARGV[1], ARGV[2], ARGV[3]
local empty_keep, channel, head, notice, keep = ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])

local current = redis.call('HGET', members, key)
if not current then
  return {0}
end
local holder = cjson.decode(current)
local others = holder.others or {}
local kept = {}
for _, other in ipairs(others) do
  if other[field] ~= holder_id then
    table.insert(kept, other)
  end
end
if holder[field] ~= holder_id or #kept > 0 then
  if holder[field] == holder_id then
    local next = table.remove(kept, 1)
    holder.sid, holder.instance = next.sid, next.instance
  elseif #kept == #others then
    return {0}
  end
  if #kept > 0 then
    holder.others = kept
  else
    holder.others = nil
  end
  redis.call('HSET', members, key, cjson.encode(holder))
  return {0}
end
redis.call('HDEL', members, key)
local pos = redis.call('INCR', position)
local event = '{"kind":"l","pos":' .. pos .. head .. ',"data":' .. notice .. '}'
redis.call('RPUSH', log, event)
redis.call('LTRIM', log, -keep, -1)
redis.call('SPUBLISH', channel, event)
local count = redis.call('HLEN', members)
if count == 0 then
  for _, kept in ipairs({seq, position, history, log}) do
    redis.call('EXPIRE', kept, empty_keep)
  end
end
return {1, pos, count}
