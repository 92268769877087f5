-- Deletes the producer lease if ARGV[1] (this instance's token) holds it,
-- so a stopping producer hands over at once instead of after the TTL.
-- KEYS[1]: the lease. ARGV: token.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
