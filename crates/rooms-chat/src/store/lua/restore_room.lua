-- After Redis lost its data (a restart without persistence), brings back a
-- room's sequence and recent history from what an instance delivered, so
-- that ids keep increasing and `since` still works.
-- KEYS: sequence, history list; ARGV: last id delivered, then the recent messages' JSON, oldest first
local last = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= last then
  return 0
end
redis.call('SET', KEYS[1], last)
redis.call('DEL', KEYS[2])
for i = 2, #ARGV do
  redis.call('RPUSH', KEYS[2], ARGV[i])
end
return 1
