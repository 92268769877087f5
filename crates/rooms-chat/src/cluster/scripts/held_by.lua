-- The names a (dead) instance still holds in one room, by any of their
-- sockets.
-- KEYS: the room's members hash; ARGV: instance id
local held = {}
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do
  local holder = cjson.decode(value)
  local here = holder.instance == ARGV[1]
  for _, other in ipairs(holder.others or {}) do
    here = here or other.instance == ARGV[1]
  end
  if here then
    table.insert(held, holder.name)
  end
end
return held
