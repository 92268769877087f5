-- Claims a dead instance, exactly once however many instances notice the
-- death at the same time: it moves from the instance set to the departed
-- set, whose members' rooms every instance then cleans (held_by.lua and
-- leave.lua, which remove each member once).
-- KEYS: instance set, the dead instance's key, departed set
-- ARGV: dead instance id
-- Returns 1 if this call claimed it.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('SADD', KEYS[3], ARGV[1])
return 1
