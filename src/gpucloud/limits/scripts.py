"""The Lua scripts of the Redis limit and budget stores: every check-and-consume is one of them.

A script runs as one step on the server, with the server's clock (`TIME`), so any number of
gateway replicas, whatever their own clocks say, enforce one limit exactly: no two admissions can
both see the last free place. Key layout and lifetimes: `gpucloud.limits.names`.

Times are integer microseconds (exact in Lua's doubles until the year 2255). Numbers computed in
Lua are written back with `int()`, which never uses an exponent (Redis' own number-to-string
conversion may, and HINCRBY refuses "1e+15"). "Never" is returned as -1.
"""

from __future__ import annotations

from redis.commands.core import AsyncScript

from gpucloud.redis_pools import RedisClient

# Helpers shared by the scripts (prepended to each; EVAL has no imports).
_LIB = """
local NEVER = -1

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function int(x) return string.format('%d', x) end
"""

# Helpers of the rolling window. KEYS[1]: window zset, KEYS[2]: tokens hash, KEYS[3]: slots zset.
_WINDOW_LIB = """
-- Drop requests that left the window, taking their tokens out of the running total.
local function trim(now, window)
  local horizon = now - window
  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(horizon))
  if #gone == 0 then return end
  local freed = 0
  for _, id in ipairs(gone) do
    freed = freed + (tonumber(redis.call('HGET', KEYS[2], 'r:' .. id)) or 0)
    redis.call('HDEL', KEYS[2], 'r:' .. id)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(horizon))
  if freed ~= 0 then redis.call('HINCRBY', KEYS[2], 'total', int(-freed)) end
end

-- Time until the index-th oldest request (0-based) leaves the window; 0 if there is none.
local function until_leaves(index, now, window)
  local e = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
  if #e == 0 then return 0 end
  return math.max(0, tonumber(e[2]) + window - now)
end

-- Time until at least `need` tokens have left the window, oldest first; NEVER if they never do.
local function until_tokens_leave(need, now, window)
  if need <= 0 then return 0 end
  local freed, start, batch = 0, 0, 16
  while true do
    local e = redis.call('ZRANGE', KEYS[1], start, start + batch - 1, 'WITHSCORES')
    if #e == 0 then return NEVER end
    local fields = {}
    for i = 1, #e, 2 do fields[#fields + 1] = 'r:' .. e[i] end
    local amounts = redis.call('HMGET', KEYS[2], unpack(fields))
    for i = 1, #amounts do
      freed = freed + (tonumber(amounts[i]) or 0)
      if freed >= need then return math.max(0, tonumber(e[2 * i]) + window - now) end
    end
    start = start + batch
    batch = math.min(batch * 4, 1024)
  end
end
"""

# KEYS: window zset, tokens hash, slots zset.
# ARGV: mode ("admit" | "peek"), request id, rpm, tpm, max concurrency (-1 = unlimited), tokens,
#       window µs, slot lease µs, window keys' TTL ms, slots key's TTL ms, concurrency retry µs.
# Returns {allowed 0/1, reason (0 none, 1 requests, 2 tokens, 3 concurrency), retry µs,
#          requests in window, tokens in window, requests reset µs, tokens reset µs}.
ADMIT = """
local mode, id = ARGV[1], ARGV[2]
local rpm, tpm, max_slots = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tokens, window, lease = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local now = now_us()
trim(now, window)
-- Slots past their lease belong to gateways that died without releasing them.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', int(now))

local count = redis.call('ZCARD', KEYS[1])
local used = tonumber(redis.call('HGET', KEYS[2], 'total')) or 0
local held = redis.call('ZCARD', KEYS[3])

-- A retried admit of a request already admitted consumes nothing more.
local known = mode == 'admit' and (redis.call('ZSCORE', KEYS[1], id) or redis.call('ZSCORE', KEYS[3], id))

local reason, wait = 0, 0
local function refuse(code, w)
  -- Keep the longest wait (NEVER is the longest); on a tie the first refusal stays.
  if reason == 0 or (wait ~= NEVER and (w == NEVER or w > wait)) then reason, wait = code, w end
end
if not known then
  if rpm >= 0 and count + 1 > rpm then
    refuse(1, rpm == 0 and NEVER or until_leaves(count - rpm, now, window))
  end
  if tpm >= 0 and used + tokens > tpm then
    local w = NEVER
    if tokens <= tpm then
      w = until_tokens_leave(used + tokens - tpm, now, window)
      -- Only a total out of step with the log gets here; the whole window is a safe answer.
      if w == NEVER then w = window end
    end
    refuse(2, w)
  end
  if max_slots >= 0 and held + 1 > max_slots then
    local w = NEVER
    if max_slots > 0 then
      local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
      w = math.min(tonumber(ARGV[11]), tonumber(first[2]) - now)
    end
    refuse(3, w)
  end
end

if mode == 'admit' and not known and reason == 0 then
  if rpm >= 0 or tpm >= 0 then
    redis.call('ZADD', KEYS[1], int(now), id)
    redis.call('HSET', KEYS[2], 'r:' .. id, ARGV[6])
    redis.call('HINCRBY', KEYS[2], 'total', ARGV[6])
    redis.call('PEXPIRE', KEYS[1], ARGV[9])
    redis.call('PEXPIRE', KEYS[2], ARGV[9])
    count, used = count + 1, used + tokens
  end
  if max_slots >= 0 then
    redis.call('ZADD', KEYS[3], int(now + lease), id)
    redis.call('PEXPIRE', KEYS[3], ARGV[10])
  end
end

local reset_tokens = 0
if used > 0 then reset_tokens = math.max(0, until_tokens_leave(1, now, window)) end
return {reason == 0 and 1 or 0, reason, wait, count, used, until_leaves(0, now, window), reset_tokens}
"""

# KEYS: window zset, tokens hash, slots zset.
# ARGV: request id, actual tokens ("" = keep the reservation as it is), window µs.
SETTLE = """
local id = ARGV[1]
trim(now_us(), tonumber(ARGV[3]))
redis.call('ZREM', KEYS[3], id)
if ARGV[2] ~= '' then
  -- Only a request still in the window: a reservation that left it no longer counts for anything.
  local reserved = redis.call('HGET', KEYS[2], 'r:' .. id)
  if reserved then
    redis.call('HSET', KEYS[2], 'r:' .. id, ARGV[2])
    redis.call('HINCRBY', KEYS[2], 'total', int(tonumber(ARGV[2]) - tonumber(reserved)))
  end
end
return 0
"""

# Helper of the budget scripts. KEYS[1]: budget hash, KEYS[2]: holds zset.
_BUDGET_LIB = """
-- Reservations past their lease belong to gateways that died without settling: the job may have
-- run, so each counts as spent in full (a cap must not be overshot by a crash).
local function expire_holds(now)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', int(now))
  for _, id in ipairs(gone) do
    local amount = redis.call('HGET', KEYS[1], 'r:' .. id)
    if amount then
      redis.call('HINCRBY', KEYS[1], 'reserved', int(-tonumber(amount)))
      redis.call('HINCRBY', KEYS[1], 'spent', amount)
      redis.call('HDEL', KEYS[1], 'r:' .. id)
    end
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', int(now)) end
end
"""

# KEYS: budget hash, holds zset.
# ARGV: mode ("reserve" | "remaining"), request id, cap, amount, counter TTL ms, hold lease µs,
#       baseline ("" = not read yet).
# Returns {-1, 0} when the counter does not exist and no baseline was given; else
# {1 reserved (or already held) / 0 refused, remaining after}.
BUDGET = """
local now = now_us()
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[7] == '' then return {-1, 0} end
  -- The check and the write are one step: of concurrent initialisers only the first one writes.
  redis.call('HSET', KEYS[1], 'spent', ARGV[7], 'reserved', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
expire_holds(now)
local left = tonumber(ARGV[3]) - tonumber(redis.call('HGET', KEYS[1], 'spent'))
  - tonumber(redis.call('HGET', KEYS[1], 'reserved'))
if ARGV[1] == 'remaining' or redis.call('HEXISTS', KEYS[1], 'r:' .. ARGV[2]) == 1 then
  return {1, math.max(0, left)}
end
local amount = tonumber(ARGV[4])
if amount > left then return {0, math.max(0, left)} end
redis.call('HSET', KEYS[1], 'r:' .. ARGV[2], ARGV[4])
redis.call('HINCRBY', KEYS[1], 'reserved', ARGV[4])
redis.call('ZADD', KEYS[2], int(now + tonumber(ARGV[6])), ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return {1, left - amount}
"""

# KEYS: budget hash, holds zset. ARGV: request id, actual amount.
# Returns 1 when a reservation was settled, 0 when there was none (settled before, or expired).
BUDGET_SETTLE = """
expire_holds(now_us())
local amount = redis.call('HGET', KEYS[1], 'r:' .. ARGV[1])
if not amount then return 0 end
redis.call('HINCRBY', KEYS[1], 'reserved', int(-tonumber(amount)))
redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2])
redis.call('HDEL', KEYS[1], 'r:' .. ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


class LimitScripts:
    """The scripts registered on one client (EVALSHA, reloaded on NOSCRIPT after a restart)."""

    def __init__(self, client: RedisClient) -> None:
        self.admit: AsyncScript = client.register_script(_LIB + _WINDOW_LIB + ADMIT)
        self.settle: AsyncScript = client.register_script(_LIB + _WINDOW_LIB + SETTLE)
        self.budget: AsyncScript = client.register_script(_LIB + _BUDGET_LIB + BUDGET)
        self.budget_settle: AsyncScript = client.register_script(_LIB + _BUDGET_LIB + BUDGET_SETTLE)
