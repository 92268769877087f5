-- The names a (dead) instance still holds in one room.
-- KEYS: the room's members hash; ARGV: instance id
local held = {}
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do
  local holder = cjson.decode(value)
  if holder.instance == ARGV[1] then
    table.insert(held, holder.name)
  end
end
return held
