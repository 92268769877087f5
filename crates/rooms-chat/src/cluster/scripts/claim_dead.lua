-- Claims a dead instance, exactly once however many instances notice the
-- death at the same time, and lists what its sockets held; the claimer
-- then removes each (leave.lua, by instance), placing its `user_left`.
-- KEYS: instance set, the dead instance's key, its member set
-- ARGV: prefix, dead instance id
-- Returns {room, name key, name, room, name key, name, ...}.
local instances, alive, owned = KEYS[1], KEYS[2], KEYS[3]
local prefix, dead = ARGV[1], ARGV[2]
if redis.call('EXISTS', alive) == 1 then
  return {}
end
if redis.call('SREM', instances, dead) == 0 then
  return {}
end
local held = {}
for _, entry in ipairs(redis.call('SMEMBERS', owned)) do
  local pair = cjson.decode(entry)
  local room, key = pair[1], pair[2]
  local current = redis.call('HGET', prefix .. '{' .. room .. '}:members', key)
  if current then
    local holder = cjson.decode(current)
    if holder.instance == dead then
      table.insert(held, room)
      table.insert(held, key)
      table.insert(held, holder.name)
    end
  end
end
redis.call('DEL', owned)
return held
