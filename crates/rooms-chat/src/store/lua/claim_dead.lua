-- Claims a dead instance and removes its members, exactly once however many
-- instances notice the death at the same time.
-- KEYS: instance set, the dead instance's key, its member set, room set
-- ARGV: prefix, dead instance id, events channel
-- Returns {room, name, room, name, ...} of the members removed.
local instances, alive, owned, rooms = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, dead, channel = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', alive) == 1 then
  return {}
end
if redis.call('SREM', instances, dead) == 0 then
  return {}
end
local removed = {}
for _, entry in ipairs(redis.call('SMEMBERS', owned)) do
  local pair = cjson.decode(entry)
  local room, key = pair[1], pair[2]
  local members = prefix .. 'members:' .. room
  local current = redis.call('HGET', members, key)
  if current then
    local holder = cjson.decode(current)
    if holder.instance == dead then
      redis.call('HDEL', members, key)
      table.insert(removed, room)
      table.insert(removed, holder.name)
      if redis.call('HLEN', members) == 0 then
        redis.call('SREM', rooms, room)
      end
    end
  end
end
redis.call('DEL', owned)
if #removed > 0 then
  redis.call('PUBLISH', channel, 'r')
end
return removed
