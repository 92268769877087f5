-- After a failover (another server answers for the shard, perhaps a
-- replica that lacks the last writes): moves the room's order and ids on
-- past anything the old server handed out, so that no member ever sees a
-- position or an id twice, and gives the history its recent messages back.
-- The first instance to get here after a failover makes the jump, from
-- what it delivered; the others find it recorded and follow it.
-- KEYS: sequence, position, history list, resumed record
-- ARGV: the server's run id, last message id, last position, jump, then
--       the recent messages' JSON, oldest first
-- Returns the position after which the room goes on.
local server, last_id, last_pos = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local jump = tonumber(ARGV[4])
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local pos = tonumber(redis.call('GET', KEYS[2]) or '0')
if seq < last_id then
  redis.call('DEL', KEYS[3])
  for i = 5, #ARGV do
    redis.call('RPUSH', KEYS[3], ARGV[i])
  end
end
local resumed = redis.call('GET', KEYS[4])
if resumed then
  local space = string.find(resumed, ' ', 1, true)
  if space and string.sub(resumed, 1, space - 1) == server then
    return tonumber(string.sub(resumed, space + 1))
  end
end
local after = math.max(pos, last_pos) + jump
redis.call('SET', KEYS[1], math.max(seq, last_id) + jump)
redis.call('SET', KEYS[2], after)
-- Kept a day, as an empty room's keys are: long past any failover.
redis.call('SET', KEYS[4], server .. ' ' .. after, 'EX', 86400)
return after
