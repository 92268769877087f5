-- After Redis lost its data (a restart without persistence), brings back a
-- room's sequence, position and recent history from what an instance
-- delivered, so that ids and positions keep increasing and `since` works.
-- KEYS: sequence, position, history list
-- ARGV: last message id, last position, then the recent messages' JSON, oldest first
local last_id, last_pos = tonumber(ARGV[1]), tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[2]) or '0') < last_pos then
  redis.call('SET', KEYS[2], last_pos)
end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= last_id then
  return 0
end
redis.call('SET', KEYS[1], last_id)
redis.call('DEL', KEYS[3])
for i = 3, #ARGV do
  redis.call('RPUSH', KEYS[3], ARGV[i])
end
return 1
