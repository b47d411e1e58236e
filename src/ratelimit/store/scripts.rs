//! The store's Lua scripts. Redis runs each atomically
//! (<https://redis.io/docs/latest/develop/programmability/eval-intro/>), on its own clock (`TIME`),
//! so the replicas' clocks need not agree.

/// The GCRA of `RateLimiter::reserve` in microseconds of Redis's clock. KEYS[1] is the budget's
/// hash (`m`, `h`: theoretical arrival times; `hold`: end of a hold); ARGV: the longest wait, then
/// interval and tolerance per window (interval 0: not limited). Returns `{1, wait}` when the
/// request may go after `wait` (its cells are taken) or `{0, wait}` when that is too long (nothing
/// is taken). Numbers are written with `%.0f`: Lua's `tostring` would round them to 14 digits.
pub(super) const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_wait = tonumber(ARGV[1])
local fields = {'m', 'h'}
local state = redis.call('HMGET', KEYS[1], 'm', 'h', 'hold')
local at = math.max(now, tonumber(state[3]) or 0)
for i = 1, 2 do
  local interval = tonumber(ARGV[2 * i])
  if interval > 0 then
    local tat = tonumber(state[i]) or now
    at = math.max(at, tat - tonumber(ARGV[2 * i + 1]))
  end
end
local wait = at - now
if wait > max_wait then return {0, wait} end
local last = math.max(now, tonumber(state[3]) or 0)
for i = 1, 2 do
  local interval = tonumber(ARGV[2 * i])
  if interval > 0 then
    local tat = math.max(tonumber(state[i]) or now, at) + interval
    last = math.max(last, tat)
    redis.call('HSET', KEYS[1], fields[i], string.format('%.0f', tat))
  end
end
redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) / 1000) + 1000)
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

/// Redis's clock and, per key, how far each window's theoretical arrival time and the hold are
/// ahead of it (microseconds, 0 when not ahead).
pub(super) const PEEK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local state = redis.call('HMGET', key, 'm', 'h', 'hold')
  for j = 1, 3 do
    out[#out + 1] = math.max(0, (tonumber(state[j]) or now) - now)
  end
end
return out
";
