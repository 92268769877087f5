-- Joins a room, deciding name uniqueness atomically across instances, and
-- places the room's `user_joined` in its order (not for a silent join).
-- Touches the room's keys only (one slot); the caller then tells the room
-- list the count this returns.
-- KEYS: members hash, sequence, position, history list, log list
-- ARGV: room, name key, member record (JSON), sid, clientId or '',
--       since or -1, history length without since, room channel,
--       event record head, user_joined JSON, log entries kept, '1' for a
--       quiet join (an instance giving a Redis that lost its data its
--       members back: nobody joined)
-- Returns {status, silent, last id, position, members JSON, history JSON,
-- member count}; status 0 = name taken. A socket of the holder's own `sub`
-- (token authentication) joins the holder's record as one of its `others`:
-- one member, silently.
local members, seq, position, history, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local room, key, record, sid, client_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local since, recent, channel = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local head, notice, keep = ARGV[9], ARGV[10], tonumber(ARGV[11])

local silent = 0
if ARGV[12] == '1' then
  silent = 1
end
local current = redis.call('HGET', members, key)
if current then
  local holder = cjson.decode(current)
  local mine = cjson.decode(record)
  if mine.sub and holder.sub == mine.sub then
    local held = holder.sid == sid
    for _, other in ipairs(holder.others or {}) do
      held = held or other.sid == sid
    end
    if not held then
      holder.others = holder.others or {}
      table.insert(holder.others, {sid = sid, instance = mine.instance})
    end
    record = cjson.encode(holder)
  elseif holder.sid ~= sid then
    if client_id == '' or holder.clientId ~= client_id then
      return {0, 0, 0, 0, '[]', '[]', 0}
    end
    -- The same browser came back on a new socket: it takes its name over.
    redis.call('SPUBLISH', channel, 'x' .. cjson.encode({room = room, sid = holder.sid}))
  end
  silent = 1
end
redis.call('HSET', members, key, record)
for _, kept in ipairs({seq, position, history, log}) do
  redis.call('PERSIST', kept)
end

local pos
if silent == 0 then
  pos = redis.call('INCR', position)
  local event = '{"kind":"j","pos":' .. pos .. head .. ',"data":' .. notice .. '}'
  redis.call('RPUSH', log, event)
  redis.call('LTRIM', log, -keep, -1)
  redis.call('SPUBLISH', channel, event)
else
  pos = tonumber(redis.call('GET', position) or '0')
end

local last = tonumber(redis.call('GET', seq) or '0')
local entries
if since >= 0 then
  -- The history holds the consecutive ids first..last.
  local first = last - redis.call('LLEN', history) + 1
  local start = math.max(since + 1, first) - first
  if since >= last then
    entries = {}
  else
    entries = redis.call('LRANGE', history, start, -1)
  end
else
  entries = redis.call('LRANGE', history, -recent, -1)
end

local names = {}
for _, value in ipairs(redis.call('HVALS', members)) do
  table.insert(names, cjson.encode(cjson.decode(value).name))
end
return {1, silent, last, pos, '[' .. table.concat(names, ',') .. ']', '[' .. table.concat(entries, ',') .. ']', #names}
