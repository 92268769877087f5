-- Publishes a volatile `typing` notice after the room's last event: it
-- takes no position and is not kept.
-- KEYS: position; ARGV: event record head, typing JSON, room channel
local pos = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('SPUBLISH', ARGV[3], '{"kind":"t","pos":' .. pos .. ARGV[1] .. ',"data":' .. ARGV[2] .. '}')
return pos
