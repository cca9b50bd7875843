-- The rate-limit decision of one check (see src/ratelimit.h), run by
-- EVALSHA.  ratelimit_call_init in src/ratelimit.c builds the keys and
-- arguments and has validated them: this script only does the arithmetic.
-- The RL_* locals above it come from src/rlconst.h (build-aux/embed-lua.sh).
--
-- KEYS[1]  the windows: one string, a MessagePack array of records
--          {id, n, b, lo, c[1], ..., c[n + 1]}: counts of the buckets of b ms
--          numbered lo .. lo + n.  PXAT when its last live bucket leaves.
-- KEYS[2]  the state hash: v (version), q:YYYYMM (quota use), rv and r
--          (remaining credits and the version of their last API update).
-- ARGV     cost (0 peeks: reads, changes nothing; -1 marks a call C found
--          invalid), version, quota included (-1: none), quota blocks (0|1),
--          remaining (-1: none), remaining version, then for each window
--          id ("name:window_s:precision"), limit, b, n (the precision).
-- Returns  {1, now, denied, window, retry, quota used, period end,
--          remaining, used 1, reset 1, used 2, reset 2, ...}, or {2, now}
--          when the caller's record is older than the version stored here.
local cost = tonumber(ARGV[1])
if not (cost >= 0 and cost <= RL_COST_MAX) then
  return redis.error_reply('ERR tollgate: invalid rate-limit call')
end
local peek = cost == 0
local ver, qinc, rem0 = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local wk, sk = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)

-- The state: one read, with the quota and credit fields only when they apply.
local sv, qfield, pend, sq, srv, sr
if qinc < 0 and rem0 < 0 then
  sv = redis.call('HGET', sk, 'v')
else
  qfield = 'v'
  if qinc >= 0 then
    -- The quota counts per calendar month (UTC) of Redis time: the civil
    -- date of the day, then the first day of the next month.
    local z = math.floor(now / 86400000) + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
                            - math.floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local y, m = yoe + era * 400, mp < 10 and mp + 3 or mp - 9
    if m <= 2 then y = y + 1 end
    qfield = string.format('q:%04d%02d', y, m)
    -- Days from 1970-03-01 to the first of the next month, counted from March.
    if m == 12 then y, m = y + 1, 1 else m = m + 1 end
    if m <= 2 then y = y - 1 end
    era = math.floor(y / 400)
    yoe = y - era * 400
    mp = m > 2 and m - 3 or m + 9
    pend = (era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100)
            + math.floor((153 * mp + 2) / 5) - 719468) * 86400000
  end
  local s = redis.call('HMGET', sk, 'v', qfield, 'rv', 'r')
  sv, sq, srv, sr = s[1], s[2], s[3], s[4]
end
sv = tonumber(sv or 0)
if not peek then
  if sv > ver then return {2, now} end
  if sv < ver then redis.call('HSET', sk, 'v', ver) end
end

-- The windows, in one pass over each one's buckets: move the record to the
-- frame of now (the clock stepping back never drops counted buckets), sum,
-- find the oldest non-empty bucket.
local nwin = (#ARGV - 6) / 4
local out = {1, now, 0, 0, -1, 0, 0, -1}
local denied, dwin, retry, never = 0, 0, -1, false
local st, nst, at
if nwin > 0 then
  local raw = redis.call('GET', wk)
  st = raw and cmsgpack.unpack(raw) or {}
  nst = #st
  at = {}
end
for w = 1, nwin do
  local a = 3 + 4 * w
  local id, lim, b, n = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local lo = math.floor(now / b) - n
  local p = 1
  while p <= nst and st[p] ~= id do p = p + st[p + 1] + 5 end
  local s
  if p > nst then
    st[p] = id
    st[p + 1] = n
    st[p + 2] = b
    nst = p + n + 4
    s = n + 1
  else
    s = lo - st[p + 3]
    if s < 0 then lo, s = st[p + 3], 0 end
  end
  st[p + 3] = lo
  local c0, last = p + 3, p + n + 4
  local used, first = 0, 0
  for k = c0 + 1, last do
    local x = 0
    if k + s <= last then x = st[k + s] end
    st[k] = x
    if x > 0 then
      used = used + x
      if first == 0 then first = k end
    end
  end
  at[w] = p
  out[7 + 2 * w] = used
  out[8 + 2 * w] = first > 0 and (lo + first - c0 + n) * b - now or 0
  -- Every full window is examined: the retry time is when all of them have
  -- room, and there is none when the cost exceeds a limit.
  if not peek and used + cost > lim then
    if denied == 0 then denied, dwin = 1, w end
    local rw = -1
    if cost <= lim then
      local freed = 0
      for k = first, last do
        local x = st[k]
        if x > 0 then
          freed = freed + x
          if used - freed + cost <= lim then
            rw = (lo + k - c0 + n) * b - now
            break
          end
        end
      end
    end
    if rw < 0 then never = true elseif rw > retry then retry = rw end
  end
end
if never then retry = -1 end

local qused = 0
if qinc >= 0 then
  qused = tonumber(sq or 0)
  if not peek and denied == 0 and ARGV[4] == '1' and qused + cost > qinc then
    denied, retry = 2, pend - now
  end
end
local rem, reseed = -1, false
if rem0 >= 0 then
  reseed = tonumber(srv or -1) ~= tonumber(ARGV[6])
  rem = reseed and rem0 or tonumber(sr or 0)
  if not peek and denied == 0 and rem < cost then denied, retry = 3, -1 end
end

if not peek and denied == 0 then
  if nwin > 0 then
    for w = 1, nwin do
      local p = at[w]
      local n = st[p + 1]
      local cur = p + n + 4
      st[cur] = st[cur] + cost
      out[7 + 2 * w] = out[7 + 2 * w] + cost
      if out[8 + 2 * w] == 0 then out[8 + 2 * w] = (st[p + 3] + 2 * n + 1) * st[p + 2] - now end
    end
    -- The string lives until its last live bucket leaves; records whose
    -- buckets have all left (windows no longer checked) are dropped, and so
    -- are, past RL_STATE_VALUES_MAX, the records of other windows.
    local pxat, drop, p = 0, nst > RL_STATE_VALUES_MAX, 1
    while p <= nst do
      local n = st[p + 1]
      local d = (st[p + 3] + 2 * n + 1) * st[p + 2]
      if d <= now then drop = true elseif d > pxat then pxat = d end
      p = p + n + 5
    end
    if drop then
      local mine, kept, ns = {}, 0, {}
      for w = 1, nwin do
        mine[at[w]] = true
        kept = kept + st[at[w] + 1] + 5
      end
      p = 1
      while p <= nst do
        local n = st[p + 1]
        local live = (st[p + 3] + 2 * n + 1) * st[p + 2] > now
        if not mine[p] and live and kept + n + 5 <= RL_STATE_VALUES_MAX then
          kept = kept + n + 5
          mine[p] = true
        end
        if mine[p] then
          for k = p, p + n + 4 do ns[#ns + 1] = st[k] end
        end
        p = p + n + 5
      end
      st = ns
    end
    redis.call('SET', wk, cmsgpack.pack(st), 'PXAT', pxat)
  end
  if qinc >= 0 then qused = redis.call('HINCRBY', sk, qfield, cost) end
  if reseed then
    rem = rem0 - cost
    redis.call('HSET', sk, 'rv', ARGV[6], 'r', rem)
  elseif rem >= 0 then
    rem = redis.call('HINCRBY', sk, 'r', -cost)
  end
elseif not peek and reseed then
  redis.call('HSET', sk, 'rv', ARGV[6], 'r', rem0)
end
out[3], out[4], out[5], out[6], out[7], out[8] = denied, dwin, retry, qused, pend or 0, rem
return out
