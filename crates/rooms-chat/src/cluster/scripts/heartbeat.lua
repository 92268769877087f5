-- Says that an instance is alive for ARGV[2] more milliseconds, on one
-- shard (and, on the control shard, in the instance set).
-- KEYS: the instance's key on this shard[, the instance set]
-- ARGV: instance id, ttl
-- Returns 0 when the key had vanished (the shard restarted empty, or the
-- instance was silent so long that others may have declared it dead): the
-- instance must then give that shard its members back.
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
if KEYS[2] then
  redis.call('SADD', KEYS[2], ARGV[1])
end
return existed
