//! The store's Lua scripts. Redis runs each atomically
//! (<https://redis.io/docs/latest/develop/programmability/eval-intro/>), on its own clock (`TIME`),
//! so the replicas' clocks need not agree.

/// The windows of `RateLimiter::reserve` in microseconds of Redis's clock. KEYS[1] is the
/// budget's hash: per limited window, calls per grain (`m:G`, `h:G`, G the grain's number since
/// the epoch), `last` (the latest instant a call was counted at) and `hold` (end of a hold). ARGV:
/// the longest wait, `GRAINS`, then limit and grain length per window (grain 0: not limited). A call may go
/// at the earliest instant, not before now, `last` or the hold, at which the `GRAINS + 1` grains
/// ending with its own hold fewer than the limit in every window; that is counted and `{1, wait}`
/// returned, or `{0, wait}` when the wait is too long (nothing is counted). Grains older than a
/// window are deleted; the key expires a window after its last call or hold. Numbers are written
/// with `%.0f`: Lua's `tostring` would round them to 14 digits.
pub(super) const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_wait = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local names = {'m', 'h'}
local grains = {{}, {}}
local stale = {}
local all = redis.call('HGETALL', KEYS[1])
local last, hold = now, 0
for i = 1, #all, 2 do
  local field, value = all[i], tonumber(all[i + 1])
  if field == 'last' then last = math.max(now, value)
  elseif field == 'hold' then hold = value
  else
    local w = field:sub(1, 1) == 'm' and 1 or 2
    local grain = tonumber(field:sub(3))
    local length = tonumber(ARGV[2 * w + 2])
    if length == 0 or grain == nil or grain < math.floor(now / length) - span then
      stale[#stale + 1] = field
    else
      grains[w][#grains[w] + 1] = {grain, value}
    end
  end
end
local at = math.max(now, last, hold)
for w = 1, 2 do
  local limit, length = tonumber(ARGV[2 * w + 1]), tonumber(ARGV[2 * w + 2])
  if length > 0 then
    local list = grains[w]
    table.sort(list, function(a, b) return a[1] < b[1] end)
    local first = math.floor(at / length) - span
    local count = 0
    for _, g in ipairs(list) do
      if g[1] >= first then count = count + g[2] end
    end
    if count >= limit then
      for _, g in ipairs(list) do
        if g[1] >= first then
          count = count - g[2]
          if count < limit then
            at = math.max(at, (g[1] + span + 1) * length)
            break
          end
        end
      end
    end
  end
end
local wait = at - now
if wait > max_wait then return {0, wait} end
local ttl = 0
for w = 1, 2 do
  local length = tonumber(ARGV[2 * w + 2])
  if length > 0 then
    redis.call('HINCRBY', KEYS[1], names[w] .. ':' .. string.format('%.0f', math.floor(at / length)), 1)
    ttl = math.max(ttl, (span + 1) * length)
  end
end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
redis.call('HSET', KEYS[1], 'last', string.format('%.0f', at))
local until_ = math.max(at, hold)
redis.call('PEXPIRE', KEYS[1], math.ceil((until_ - now + ttl) / 1000) + 1000)
return {1, wait}
";

/// Holds KEYS[1] for ARGV[1] microseconds from now on Redis's clock; never shortens a hold.
pub(super) const HOLD: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local hold = now + tonumber(ARGV[1])
if hold > (tonumber(redis.call('HGET', KEYS[1], 'hold')) or 0) then
  redis.call('HSET', KEYS[1], 'hold', string.format('%.0f', hold))
  local need = math.ceil((hold - now) / 1000) + 1000
  if redis.call('PTTL', KEYS[1]) < need then redis.call('PEXPIRE', KEYS[1], need) end
end
return 1
";

/// Per key (ARGV: `GRAINS`, then the grain length of each key's two windows, in microseconds, 0
/// when not limited), the calls counted in each window's `GRAINS + 1` grains ending now, then how far the
/// hold and the last counted call are ahead of Redis's clock (microseconds, 0 when not ahead).
pub(super) const PEEK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local span = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local counts = {0, 0}
  local hold, last = 0, 0
  local all = redis.call('HGETALL', key)
  for j = 1, #all, 2 do
    local field, value = all[j], tonumber(all[j + 1])
    if field == 'last' then last = value
    elseif field == 'hold' then hold = value
    else
      local w = field:sub(1, 1) == 'm' and 1 or 2
      local grain = tonumber(field:sub(3))
      local length = tonumber(ARGV[2 * i + w - 1])
      if length > 0 and grain ~= nil and grain >= math.floor(now / length) - span then
        counts[w] = counts[w] + value
      end
    end
  end
  out[#out + 1] = counts[1]
  out[#out + 1] = counts[2]
  out[#out + 1] = math.max(0, hold - now)
  out[#out + 1] = math.max(0, last - now)
end
return out
";
