-- Takes the room's next id, keeps the message in the history and publishes
-- it, as one atomic step: every instance receives a room's messages in id
-- order, and the history never misses one that was published.
-- KEYS: sequence, history list
-- ARGV: the message JSON after its id (starting with ','), history length, events channel
-- Returns the id.
local id = redis.call('INCR', KEYS[1])
local message = '{"id":' .. id .. ARGV[1]
redis.call('RPUSH', KEYS[2], message)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PUBLISH', ARGV[3], 'm' .. message)
return id
