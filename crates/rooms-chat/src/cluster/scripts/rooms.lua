-- The rooms that have members, with their counts: {name, count, name, count, ...};
-- forgets rooms that emptied more than ARGV[1] seconds ago.
-- KEYS: the room list hash
local list = {}
local now = tonumber(redis.call('TIME')[1])
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local room, value = entries[i], entries[i + 1]
  local _, count, since = string.match(value, '^(%d+):(%d+):(%d+)$')
  count = tonumber(count)
  if count and count > 0 then
    table.insert(list, room)
    table.insert(list, count)
  elseif count == 0 and now - tonumber(since) > tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], room)
  end
end
return list
