-- Takes the room's next message id and position, keeps the message in the
-- history and the event in the log, and publishes it on the room's sharded
-- channel, as one atomic step: every instance receives a room's events in
-- this order, and neither the history nor the log misses one published.
-- KEYS: sequence, position, history list, log list (one room: one slot)
-- ARGV: the message JSON after its id (starting with ','), the event
--       record's head (',"room":…,"name":…'), entries kept, room channel
-- Returns the id.
local id = redis.call('INCR', KEYS[1])
local pos = redis.call('INCR', KEYS[2])
local keep = tonumber(ARGV[3])
local message = '{"id":' .. id .. ARGV[1]
redis.call('RPUSH', KEYS[3], message)
redis.call('LTRIM', KEYS[3], -keep, -1)
local record = '{"kind":"m","pos":' .. pos .. ',"id":' .. id .. ARGV[2] .. ',"data":' .. message .. '}'
redis.call('RPUSH', KEYS[4], record)
redis.call('LTRIM', KEYS[4], -keep, -1)
redis.call('SPUBLISH', ARGV[4], record)
return id
