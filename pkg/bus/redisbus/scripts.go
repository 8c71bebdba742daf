package redisbus

import "github.com/redis/go-redis/v9"

// publishScript appends an entry to a partition stream of a topic with several partitions, with
// an id from the topic-wide sequence: max(Redis time, last id + 1). Ids are then unique and
// increasing across the topic's streams, in the order the entries were added.
//
// KEYS[1] stream, KEYS[2] topic id key; ARGV[1] MAXLEN (0: none), ARGV[2..] field, value, ...
var publishScript = redis.NewScript(`
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = 0
local function bump(last)
  local lms, lseq = string.match(last, '^(%d+)-(%d+)$')
  if lms then
    lms = tonumber(lms)
    if lms > ms then ms = lms; seq = tonumber(lseq) + 1
    elseif lms == ms then seq = math.max(seq, tonumber(lseq) + 1) end
  end
end
local last = redis.call('GET', KEYS[2])
if last then bump(last) end
local function add()
  local args = {'XADD', KEYS[1]}
  if tonumber(ARGV[1]) > 0 then
    args[#args + 1] = 'MAXLEN'; args[#args + 1] = '~'; args[#args + 1] = ARGV[1]
  end
  args[#args + 1] = string.format('%.0f-%.0f', ms, seq)
  for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
  return redis.pcall(unpack(args))
end
local id = add()
if type(id) == 'table' and id.err then
  -- The stream is ahead of the sequence (its key was lost or entries were added by hand):
  -- continue after the stream's own last id.
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then bump(info[i + 1]) end
  end
  id = add()
  if type(id) == 'table' and id.err then return id end
end
redis.call('SET', KEYS[2], id)
return id
`)

// heartbeatScript records a member of a group as alive until now+ttl (Redis clock), forgets
// members whose time passed, and returns the live members. With ARGV[3] == "1" the member leaves.
//
// KEYS[1] members sorted set; ARGV[1] member, ARGV[2] ttl in ms, ARGV[3] leave flag.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ttl * 3)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

// acquireScript takes a partition lease when it is free or already ours (a restarted member
// keeps its name) and returns 1, else 0.
//
// KEYS[1] lease; ARGV[1] member, ARGV[2] ttl in ms.
var acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// renewScript extends a lease we hold and returns 1; 0 when it is gone or someone else's. It never
// creates the lease, so a renewal racing with a release cannot bring the lease back.
//
// KEYS[1] lease; ARGV[1] member, ARGV[2] ttl in ms.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// releaseScript deletes a lease if it is ours.
//
// KEYS[1] lease; ARGV[1] member.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
