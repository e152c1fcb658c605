"""The Lua scripts of the Redis queue: every step that must be atomic across processes.

Each script runs as one step on the server, which is what makes the queue's rules hold with any
number of gateways and workers: the depth bound (check and XADD together), the lease fence
(a delivery is acknowledged or renewed only by the consumer that holds it, at the delivery count
its lease was given) and reclaim (claim, dead-letter or interrupt, with the outcome written in
the same step).

Invariant the scripts rely on: a job entry is acknowledged and deleted together, and deleted only
together with its acknowledgement. So an entry in a job stream is either pending (delivered,
held by a worker) or waiting, and `waiting = XLEN - pending` is exact and O(1).
"""

from __future__ import annotations

from redis.commands.core import AsyncScript

from gpucloud.redis_pools import RedisClient

# Helpers shared by all scripts (prepended to each; Lua has no imports in EVAL).
_LIB = """
local function is_err(r) return type(r) == 'table' and r.err ~= nil end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Groups start at 0, not $, so entries added before the group existed are still delivered.
local function ensure_group(key, group)
  redis.pcall('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
end

-- Entries of `key` not yet delivered to `group` (see the module docstring for why this is exact).
local function waiting(key, group)
  local len = redis.call('XLEN', key)
  if len == 0 then return 0 end
  local summary = redis.pcall('XPENDING', key, group)
  if is_err(summary) then return len end
  return len - summary[1]
end

-- True when `consumer` holds entry `id` at exactly `deliveries` deliveries: a stale lease (same
-- worker, earlier delivery of a reclaimed entry) must not pass for the current one.
local function holds(key, group, id, consumer, deliveries)
  local r = redis.pcall('XPENDING', key, group, id, id, 1)
  if is_err(r) or #r == 0 then return false end
  return r[1][2] == consumer and tonumber(r[1][4]) == tonumber(deliveries)
end
"""

# KEYS: the job's submitted marker, then the model's job streams, highest class first.
# ARGV: group, max_depth, index (1-based) of the job's class among the streams, job JSON, the
# marker's lifetime in ms.
# Returns {1, entry id} when added, {2, 0} when the job was submitted already (nothing added),
# {0, waiting} when the model is at its bound.
SUBMIT = """
local group = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 1 then return {2, 0} end
local total = 0
for i = 2, #KEYS do total = total + waiting(KEYS[i], group) end
if total >= tonumber(ARGV[2]) then return {0, total} end
local key = KEYS[1 + tonumber(ARGV[3])]
if redis.call('EXISTS', key) == 0 then ensure_group(key, group) end
local id = redis.call('XADD', key, '*', 'job', ARGV[4])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[5])
return {1, id}
"""

# KEYS: outcomes, dead jobs hash, dead order zset, then the job streams class-major (every
# model's high stream, then every model's normal stream, then low).
# ARGV: group, consumer, count, min_idle_ms, max_attempts, progress key prefix, served,
# fair_every, number of models.
# Returns {fresh, deliveries, tails}: `fresh` = jobs taken from the waiting classes (they count
# for fairness), `deliveries` = flat {id, job JSON, delivery count, ...}, reclaimed ones first,
# and, only when nothing was delivered, `tails` = the last entry id of each stream, from which
# the caller's blocking XREAD waits for new entries without a race.
LEASE = """
local group, consumer = ARGV[1], ARGV[2]
local need, min_idle, max_attempts = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local progress_prefix = ARGV[6]
local served, fair_every, n_models = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local streams = {}
for i = 4, #KEYS do streams[#streams + 1] = KEYS[i] end
local n_classes = #streams / n_models
local out = {}

local function add_outcome(job, job_json, attempt, status, extra)
  local o = {job_id = job.job_id, attempt = attempt, status = status, reply_to = job.reply_to,
             model = job.model, worker_id = '', prompt_tokens = 0, completion_tokens = 0, at = now_s()}
  for k, v in pairs(extra) do o[k] = v end
  local encoded = cjson.encode(o)
  -- A job without a database row yet carries itself, for the finalizer to write the row from;
  -- spliced in as stored (cjson would turn its empty lists into objects).
  if job.unrecorded ~= nil and job.unrecorded ~= cjson.null then
    encoded = string.sub(encoded, 1, -2) .. ',"job":' .. job_json .. '}'
  end
  redis.call('XADD', KEYS[1], '*', 'o', encoded)
end

local function finish(key, id)
  redis.call('XACK', key, group, id)
  redis.call('XDEL', key, id)
end

local function interrupt(key, id, job_json, job, attempt, progress_key)
  local p = redis.call('HMGET', progress_key, 'completion', 'prompt', 'worker')
  add_outcome(job, job_json, attempt, 'interrupted', {
    completion_tokens = tonumber(p[1]) or 0, prompt_tokens = tonumber(p[2]) or 0,
    worker_id = p[3] or '', error = 'the worker was lost after the stream had started',
    error_code = 'worker_lost'})
  redis.call('DEL', progress_key)
  finish(key, id)
end

local function dead_letter(key, id, job_json, job, deliveries)
  local attempts, at = job.attempt_base + deliveries - 1, now_s()
  redis.call('HSET', KEYS[2], job.job_id, '{"attempts":' .. attempts .. ',"at":' ..
             string.format('%.6f', at) .. ',"job":' .. job_json .. '}')
  redis.call('ZADD', KEYS[3], at, job.job_id)
  add_outcome(job, job_json, attempts, 'dead', {
    error = 'delivered ' .. (deliveries - 1) .. ' times without finishing', error_code = 'dead_lettered'})
  finish(key, id)
end

local function deliver(id, job_json, deliveries)
  out[#out + 1] = id
  out[#out + 1] = job_json
  out[#out + 1] = deliveries
  need = need - 1
end

local function reclaim_entry(key, id, job_json)
  local deliveries = tonumber(redis.call('XPENDING', key, group, id, id, 1)[1][4])
  local job = cjson.decode(job_json)
  local progress_key = progress_prefix .. job.job_id
  if job.stream and (tonumber(redis.call('HGET', progress_key, 'completion')) or 0) > 0 then
    interrupt(key, id, job_json, job, job.attempt_base + deliveries - 1, progress_key)
  elseif deliveries > max_attempts then
    dead_letter(key, id, job_json, job, deliveries)
  else
    deliver(id, job_json, deliveries)
  end
end

local function reclaim(key)
  local cursor = '0-0'
  repeat
    local r = redis.pcall('XAUTOCLAIM', key, group, consumer, min_idle, cursor, 'COUNT', need)
    if is_err(r) then return end
    cursor = r[1]
    for _, entry in ipairs(r[2]) do
      if entry[2] then reclaim_entry(key, entry[1], field(entry[2], 'job')) end
    end
  until cursor == '0-0' or need <= 0
end

local function head(key)
  local groups = redis.pcall('XINFO', 'GROUPS', key)
  if is_err(groups) then return nil end
  local last = nil
  for _, g in ipairs(groups) do
    if field(g, 'name') == group then last = field(g, 'last-delivered-id') end
  end
  if last == nil then
    ensure_group(key, group)
    last = '0-0'
  end
  local r = redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 1)
  if #r == 0 then return nil end
  return r[1][1]
end

local function id_less(a, b)
  local ams, aseq = string.match(a, '(%d+)-(%d+)')
  local bms, bseq = string.match(b, '(%d+)-(%d+)')
  if tonumber(ams) ~= tonumber(bms) then return tonumber(ams) < tonumber(bms) end
  return tonumber(aseq) < tonumber(bseq)
end

-- The oldest waiting entry of class `c` over all models, delivered to `consumer`.
local function take_from(c)
  local best_key, best_id = nil, nil
  for m = 1, n_models do
    local key = streams[(c - 1) * n_models + m]
    local id = head(key)
    if id and (best_id == nil or id_less(id, best_id)) then best_key, best_id = key, id end
  end
  if best_key == nil then return false end
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', best_key, '>')
  local entry = r[1][2][1]
  deliver(entry[1], field(entry[2], 'job'), 1)
  return true
end

local function take_one(fair)
  local first, last, step = 1, n_classes, 1
  if fair then first, last, step = n_classes, 1, -1 end
  for c = first, last, step do
    if take_from(c) then return true end
  end
  return false
end

for _, key in ipairs(streams) do
  if need <= 0 then break end
  reclaim(key)
end
local fresh = 0
while need > 0 and take_one((served + fresh + 1) % fair_every == 0) do fresh = fresh + 1 end
local tails = {}
if #out == 0 then
  for i, key in ipairs(streams) do
    local r = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
    if #r > 0 then tails[i] = r[1][1] else tails[i] = '0-0' end
  end
end
return {fresh, out, tails}
"""

# KEYS: the job stream of each lease. ARGV: group, then (consumer, id, deliveries) per lease.
# Returns 1 per lease still held (its idle time reset by a JUSTID self-claim), 0 per lost one.
RENEW = """
local group = ARGV[1]
local held = {}
for i, key in ipairs(KEYS) do
  local consumer, id, deliveries = ARGV[3 * i - 1], ARGV[3 * i], ARGV[3 * i + 1]
  if holds(key, group, id, consumer, deliveries) then
    redis.call('XCLAIM', key, group, consumer, 0, id, 'JUSTID')
    held[i] = 1
  else
    held[i] = 0
  end
end
return held
"""

# KEYS: the job stream. ARGV: group, consumer, id, deliveries, idle_ms.
# Makes the entry look abandoned long ago with one delivery fewer, so the next `lease` of any
# worker reclaims it at once and its delivery count (the attempt number) comes out unchanged.
RELEASE = """
local group, consumer, id, deliveries = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if not holds(KEYS[1], group, id, consumer, deliveries) then return 0 end
redis.call('XCLAIM', KEYS[1], group, consumer, 0, id, 'IDLE', ARGV[5], 'RETRYCOUNT', deliveries - 1, 'JUSTID')
return 1
"""

# KEYS: the job stream, outcomes, the job's progress hash. ARGV: group, consumer, id,
# deliveries, outcome JSON. The outcome is always added (the database fences stale attempts);
# the delivery is acknowledged only by the lease that holds it. Returns 1 when acknowledged.
COMPLETE = """
local group, consumer, id, deliveries = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('XADD', KEYS[2], '*', 'o', ARGV[5])
if not holds(KEYS[1], group, id, consumer, deliveries) then return 0 end
redis.call('XACK', KEYS[1], group, id)
redis.call('XDEL', KEYS[1], id)
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: the model's job streams, highest class first. ARGV: group. Returns waiting per class.
DEPTH = """
local counts = {}
for i, key in ipairs(KEYS) do counts[i] = waiting(key, ARGV[1]) end
return counts
"""

# KEYS: the job's stream, dead jobs hash, dead order zset. ARGV: group, job id, new job JSON.
# Returns 0 when the job is not (any more) dead-lettered: two replays cannot both enqueue it.
REPLAY = """
if redis.call('HDEL', KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then ensure_group(KEYS[1], ARGV[1]) end
redis.call('XADD', KEYS[1], '*', 'job', ARGV[3])
return 1
"""


class Scripts:
    """The scripts registered on one client (EVALSHA, reloaded on NOSCRIPT after a restart)."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self.submit = client.register_script(_LIB + SUBMIT)
        self.lease = client.register_script(_LIB + LEASE)
        self.renew = client.register_script(_LIB + RENEW)
        self.release = client.register_script(_LIB + RELEASE)
        self.complete = client.register_script(_LIB + COMPLETE)
        self.depth = client.register_script(_LIB + DEPTH)
        self.replay = client.register_script(_LIB + REPLAY)

    def all(self) -> tuple[AsyncScript, ...]:
        return (self.submit, self.lease, self.renew, self.release, self.complete, self.depth, self.replay)

    async def load(self) -> None:
        """Load every script now, so a script error shows at start rather than on first use."""
        for script in self.all():
            script.sha = await self._client.script_load(script.script)
