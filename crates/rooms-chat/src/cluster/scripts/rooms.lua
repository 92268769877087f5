-- The rooms that have members, with their counts: {name, count, name, count, ...}
-- KEYS: room set; ARGV: prefix
local list = {}
for _, room in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local count = redis.call('HLEN', ARGV[1] .. '{' .. room .. '}:members')
  if count > 0 then
    table.insert(list, room)
    table.insert(list, count)
  end
end
return list
