-- Says that an instance is alive for ARGV[2] more milliseconds.
-- KEYS: the instance's key, the instance set; ARGV: instance id, ttl
-- Returns 0 when the key had vanished (Redis restarted, or the instance was
-- silent so long that others may have declared it dead): the instance must
-- then register its members again.
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return existed
