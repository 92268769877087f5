-- Renews the producer lease if ARGV[1] (this instance's token) holds it.
-- KEYS[1]: the lease. ARGV: token, ttl in ms. Returns 1 if renewed, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
