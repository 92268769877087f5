-- Every kept entry numbered above ARGV[1], oldest first, from a list that
-- holds the consecutive numbers up to a counter: a room's log (numbered by
-- position) or its history (numbered by message id).
-- KEYS: the counter, the list
local after = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if after >= last then
  return {}
end
local first = last - redis.call('LLEN', KEYS[2]) + 1
return redis.call('LRANGE', KEYS[2], math.max(after + 1, first) - first, -1)
