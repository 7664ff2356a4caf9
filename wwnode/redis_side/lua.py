"""The Lua scripts behind the node's leases and fenced writes, each one step in Redis.

The Lua scripts behind the node's leases and fenced writes (see the
docstring of ``store.py``): each runs in Redis as one step, so a check of
the owner's token and the write it guards cannot be split by another node.
Only ``store.py`` uses them."""

FENCE_TTL_MS = 24 * 3600 * 1000

# KEYS: owner, fence.  ARGV: node, lease ms.  -> {1, token} or {0, owner}
# The fence is at least the server's clock in milliseconds: a master
# promoted after a failover, which may lack the newest fences, still hands
# out higher ones than any a lost write held (clocks within the failover's
# seconds of each other).
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur and string.match(cur, '^(.*):%d+$') ~= ARGV[1] then return {0, cur} end
local fence = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if fence < floor then
  fence = floor
  redis.call('SET', KEYS[2], string.format('%d', fence))
end
redis.call('PEXPIRE', KEYS[2], FENCE_TTL)
local token = ARGV[1] .. ':' .. string.format('%d', fence)
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return {1, token}
""".replace("FENCE_TTL", str(FENCE_TTL_MS))

# KEYS: owner_1, state_1, owner_2, state_2, ...  ARGV: lease ms, state ms,
# may_reclaim, token_1, token_2, ...  -> per key 1 renewed, 2 reclaimed, 0 lost
RENEW = """
local out = {}
for i = 1, #KEYS / 2 do
  local owner, state, token = KEYS[2 * i - 1], KEYS[2 * i], ARGV[3 + i]
  local cur = redis.call('GET', owner)
  if cur == token then
    redis.call('PEXPIRE', owner, ARGV[1])
    redis.call('PEXPIRE', state, ARGV[2])
    out[i] = 1
  elseif not cur and ARGV[3] == '1' then
    redis.call('SET', owner, token, 'PX', ARGV[1])
    out[i] = 2
  else
    out[i] = 0
  end
end
return out
"""

# KEYS: owner, target.  ARGV: token, ttl ms, kind, value...
# Writes only while the owner key holds our token.
FENCED_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == 'set' then
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[2])
elseif ARGV[3] == 'del' then
  redis.call('DEL', KEYS[2])
else
  redis.call('HSET', KEYS[2], unpack(ARGV, 4))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
"""

# KEYS: owner, then the other keys to delete with it.  ARGV: token.  Frees
# the key if ours.  Which keys go with the lease is the caller's choice:
# for a session gone from the node, all of the instance's but its send
# records (``Store.release``); for one failed for good, only its QR and
# pairing codes, its ``failed`` state and send records kept for whoever
# takes the key next (``Store.let_go``).
RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', unpack(KEYS))
return 1
"""

# KEYS: owner, qr, state.  ARGV: token, node, state ms, since ms.  Gives the
# lease up, if ours, keeping the fence and the send records; the state says
# ``moving`` (commands for the key wait for its next owner).
HAND_OFF = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[3], 'state', 'moving', 'node', ARGV[2], 'since', ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
"""

# KEYS: owner, fence.  ARGV: token, node, floor.  -> our token (new or the
# same) or false.  The key's fence made greater than ``floor`` (the fence of
# a snapshot restored): the fence counter may have been deleted since that
# snapshot (a destroy), and this owner's snapshots must sort after it.
RAISE_FENCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local fence = tonumber(string.match(ARGV[1], ':(%d+)$'))
local floor = tonumber(ARGV[3])
if fence > floor then return ARGV[1] end
fence = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), floor) + 1
redis.call('SET', KEYS[2], fence, 'PX', FENCE_TTL)
local token = ARGV[2] .. ':' .. fence
redis.call('SET', KEYS[1], token, 'KEEPTTL')
return token
""".replace("FENCE_TTL", str(FENCE_TTL_MS))

# KEYS: owner, state.  ARGV: ms the mark stays.  -> {node, state} or nil
# (a ``failed`` key was let go on purpose: not lost)
MARK_LOST = """
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
local state = redis.call('HGET', KEYS[2], 'state')
if not state or state == 'lost' or state == 'failed' or state == 'moving' then return nil end
local node = redis.call('HGET', KEYS[2], 'node')
redis.call('HSET', KEYS[2], 'state', 'lost')
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return {node, state}
"""
