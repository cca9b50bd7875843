-- The rate-limit decision of one check (see src/ratelimit.h), run by
-- EVALSHA.  ratelimit_call_init in src/ratelimit.c builds the keys and
-- arguments and has validated them: this script only does the arithmetic,
-- and as little of it as it can (every Lua operation and every redis.call
-- shows in Redis CPU per check; docs/performance.md has the figures).
-- The RL_* locals above it come from src/rlconst.h (build-aux/embed-lua.sh).
--
-- KEYS[1]  the windows of the key: one string, a MessagePack stream of
--          records {id, n, b, last, sum, c[0], ..., c[n]}.  A window counts
--          in buckets of b ms; the frame is the current bucket (last) and
--          the n before it, bucket idx counting in c[idx % (n + 1)], and sum
--          is their total.  The string expires when its last live bucket
--          leaves its window (PXAT); records whose buckets have all left are
--          dropped when it is written.
-- KEYS[3]  (only when a window is per owner) the owner's windows, the
--          same stream, shared by every key of the owner.
-- KEYS[2]  the state hash: v (version), q:YYYYMM (quota use), rv, r and ri
--          (remaining credits, the version of their last API update and
--          the start of the refill interval they belong to, 0 without a
--          refill), s (set when the state was seeded from PostgreSQL).
-- ARGV     numbers in hexadecimal (tonumber(s, 16) costs half of a decimal
--          conversion), '' for none: cost (0 peeks: reads and changes
--          nothing; '' marks a call C found invalid), version, quota
--          included, quota blocks ('1' or '0'), remaining credits,
--          remaining version; the seed ('' when the caller has none):
--          its month (YYYYMM), quota use of that month and remaining
--          credits ('' when the key has none); the refill: its amount
--          ('' for none), day of month (0: daily), the start of the
--          interval in which the API set the balance, and the interval of
--          the seed's credits; which windows are the owner's ('' for none,
--          else one '1' or '0' per window); then for each window its id
--          ("name:window_s:precision": a changed length or precision starts
--          a new record), limit, b and n (the precision).
-- Returns  {1, now, denied, window, retry, quota used, period end,
--          remaining, used 1, reset 1, used 2, reset 2, ...}, or {2, now}
--          when the caller's record is older than the version stored here,
--          or {3, now} when a key with a quota or credits has no state here
--          (never written, or lost with a flush, a failover or an eviction)
--          and the call carries no seed: the caller reads the key's durable
--          use from PostgreSQL and calls again with it.  A seed is written
--          only while the state is still missing, so callers that race
--          seed once.  The state counts as present when it has the seed
--          mark s, credits (rv) or this month's quota use.
-- Refill: the balance of the interval that holds now is the amount, or the
-- balance the API set when it set it in this very interval; the first
-- check of an interval writes it (and ri) with its own charge, atomically,
-- so concurrent checks refill once.  Unused credits do not carry over.
-- Calendar arithmetic on days since 1970-01-01 (UTC), H. Hinnant's
-- civil_from_days and days_from_civil, with x - x % d for floor: every
-- operand is positive.  The year and month of a day:
local function civil(days)
  local z = days + 719468
  local doe = z % 146097
  local era = (z - doe) / 146097
  local yoe = doe - (doe - doe % 1460) / 1460 + (doe - doe % 36524) / 36524
              - (doe - doe % 146096) / 146096
  yoe = (yoe - yoe % 365) / 365
  local doy = doe - 365 * yoe - (yoe - yoe % 4) / 4 + (yoe - yoe % 100) / 100
  local mp = 5 * doy + 2
  mp = (mp - mp % 153) / 153
  local y, m = yoe + era * 400, mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m
end
-- The start of day d of month m of year y, in ms.
local function day_ms(y, m, d)
  if m <= 2 then y = y - 1 end
  local yoe = y % 400
  local era = (y - yoe) / 400
  local mp = 153 * (m > 2 and m - 3 or m + 9) + 2
  return (era * 146097 + yoe * 365 + (yoe - yoe % 4) / 4 - (yoe - yoe % 100) / 100
          + (mp - mp % 5) / 5 - 719468 + d - 1) * 86400000
end

local cost = tonumber(ARGV[1], 16)
if not cost or cost > RL_COST_MAX then
  return redis.error_reply('ERR tollgate: invalid rate-limit call')
end
local peek = cost == 0
local ver = tonumber(ARGV[2], 16)
local qinc = ARGV[3] ~= '' and tonumber(ARGV[3], 16)
local rem0 = ARGV[5] ~= '' and tonumber(ARGV[5], 16)
local wk, sk = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local us = tonumber(t[2])
local now = t[1] * 1000 + (us - us % 1000) / 1000

-- The state: one read, with the quota and credit fields only when they apply.
local sv, qfield, pend, sq, srv, sr, sri
if not qinc and not rem0 then
  sv = redis.call('HGET', sk, 'v')
else
  qfield = 'v'
  if qinc then
    -- The quota counts per calendar month (UTC) of Redis time, up to the
    -- first day of the next month.
    local y, m = civil((now - now % 86400000) / 86400000)
    qfield = 'q:' .. (y * 100 + m)
    if m == 12 then y, m = y + 1, 1 else m = m + 1 end
    pend = day_ms(y, m, 1)
  end
  local s = redis.call('HMGET', sk, 'v', qfield, 'rv', 'r', 's', 'ri')
  sv, sq, srv, sr, sri = s[1], s[2], s[3], s[4], s[6]
  if not (s[5] or srv or (qinc and sq)) then
    if not peek and sv and tonumber(sv) > ver then return {2, now} end
    if ARGV[7] == '' then return {3, now} end
    local qf = 'q:' .. tonumber(ARGV[7], 16)
    local rs = ARGV[9] ~= '' and tonumber(ARGV[9], 16)
    redis.call('HSET', sk, 's', 1, qf, tonumber(ARGV[8], 16))
    if qf == qfield then sq = tonumber(ARGV[8], 16) end
    if rs and rem0 then
      local ri = tonumber(ARGV[13], 16)
      redis.call('HSET', sk, 'rv', tonumber(ARGV[6], 16), 'r', rs, 'ri', ri)
      srv, sr, sri = tonumber(ARGV[6], 16), rs, ri
    end
  end
end
sv = sv and tonumber(sv) or 0
if not peek then
  if sv > ver then return {2, now} end
  if sv < ver then redis.call('HSET', sk, 'v', ver) end
end

-- The windows.  Moving a frame to now visits only the buckets that enter
-- it (their slots' old counts leave); the clock stepping back keeps the
-- newer frame, so counted buckets are never dropped early.
-- A window counts in the key's records (set 1, KEYS[1]) or the owner's
-- (set 2, KEYS[3]); each set is read and written whole, at most once.
local nwin = (#ARGV - 14) / 4
local owners = ARGV[14]
local out = {1, now, 0, 0, -1, 0, 0, -1}
local denied, dwin, retry, never = 0, 0, -1, false
local sts, ns, at, set = {}, {0, 0}, {}, {}
for w = 1, nwin do
  local si = (owners ~= '' and string.byte(owners, w) == 49) and 2 or 1
  set[w] = si
  if not sts[si] then
    local raw = redis.call('GET', si == 1 and wk or KEYS[3])
    sts[si] = raw and {cmsgpack.unpack(raw)} or {}
    ns[si] = #sts[si]
  end
end
for w = 1, nwin do
  local a = 11 + 4 * w
  local id = ARGV[a]
  local st, nst = sts[set[w]], ns[set[w]]
  local p = 1
  while p <= nst and st[p] ~= id do p = p + st[p + 1] + 6 end
  local n, b, last, used
  if p > nst then
    n, b = tonumber(ARGV[a + 3], 16), tonumber(ARGV[a + 2], 16)
    last, used = (now - now % b) / b, 0
    st[p] = id
    st[p + 1] = n
    st[p + 2] = b
    st[p + 3] = last
    for k = p + 4, p + 5 + n do st[k] = 0 end
    ns[set[w]] = p + 5 + n
  else
    n, b, last, used = st[p + 1], st[p + 2], st[p + 3], st[p + 4]
    local i = (now - now % b) / b
    if i > last then
      local c0, n1 = p + 5, n + 1
      if i - last > n then
        for k = c0, c0 + n do st[k] = 0 end
        used = 0
      else
        for idx = last + 1, i do
          local k = c0 + idx % n1
          used = used - st[k]
          st[k] = 0
        end
      end
      last = i
      st[p + 3], st[p + 4] = i, used
    end
  end
  at[w] = p
  local lim, c0, n1 = tonumber(ARGV[a + 1], 16), p + 5, n + 1
  -- reset: when the oldest non-empty bucket leaves.
  local reset = 0
  if used > 0 then
    for idx = last - n, last do
      if st[c0 + idx % n1] > 0 then
        reset = (idx + n1) * b - now
        break
      end
    end
  end
  out[7 + 2 * w], out[8 + 2 * w] = used, reset
  -- Every full window is examined: the retry time is when all of them have
  -- room, and there is none when the cost exceeds a limit.
  if not peek and used + cost > lim then
    if denied == 0 then denied, dwin = 1, w end
    local rw = -1
    if cost <= lim then
      local freed = 0
      for idx = last - n, last do
        local x = st[c0 + idx % n1]
        if x > 0 then
          freed = freed + x
          if used - freed + cost <= lim then
            rw = (idx + n1) * b - now
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
if qinc then
  qused = tonumber(sq or 0)
  if not peek and denied == 0 and ARGV[4] == '1' and qused + cost > qinc then
    denied, retry = 2, pend - now
  end
end
local rem, remv, reseed, ri = -1, nil, false, 0
if rem0 then
  remv = tonumber(ARGV[6], 16)
  local rfa, rnext = ARGV[10] ~= '' and tonumber(ARGV[10], 16), -1
  if rfa then
    -- The interval holding now: the UTC day, or the month starting on day
    -- dom (shift back dom - 1 days, take the month's first day, shift on).
    local dom, z = tonumber(ARGV[11], 16), (now - now % 86400000) / 86400000
    if dom == 0 then
      ri, rnext = z * 86400000, (z + 1) * 86400000
    else
      local y, m = civil(z - dom + 1)
      for k = 0, 1 do
        local d = day_ms(y, m, dom)
        if k == 0 then ri = d else rnext = d end
        if m == 12 then y, m = y + 1, 1 else m = m + 1 end
      end
    end
  end
  reseed = tonumber(srv or -1) ~= remv
  if reseed then
    rem = ri > tonumber(ARGV[12], 16) and rfa or rem0
  elseif rfa and ri > tonumber(sri or 0) then
    reseed, rem = true, rfa
  else
    rem, ri = tonumber(sr or 0), tonumber(sri or 0)
  end
  -- A refill frees credits at the next interval; nothing else does.
  if not peek and denied == 0 and rem < cost then
    denied, retry = 3, rnext < 0 and -1 or rnext - now
  end
end

if not peek and denied == 0 then
  for w = 1, nwin do
    local st, p = sts[set[w]], at[w]
    local n, last = st[p + 1], st[p + 3]
    local k = p + 5 + last % (n + 1)
    st[k] = st[k] + cost
    st[p + 4] = st[p + 4] + cost
    out[7 + 2 * w] = out[7 + 2 * w] + cost
    if out[8 + 2 * w] == 0 then out[8 + 2 * w] = (last + n + 1) * st[p + 2] - now end
  end
  for si = 1, 2 do
    local st, nst = sts[si], ns[si]
    if st then
      -- A record is live until its current bucket leaves the window.  The
      -- dead ones go, and past RL_STATE_VALUES_MAX the records of windows
      -- this check does not use.
      local pxat, drop, p = 0, nst > RL_STATE_VALUES_MAX, 1
      while p <= nst do
        local n = st[p + 1]
        local d = (st[p + 3] + n + 1) * st[p + 2]
        if d <= now then drop = true elseif d > pxat then pxat = d end
        p = p + n + 6
      end
      if drop then
        local mine, kept, nt = {}, 0, {}
        for w = 1, nwin do
          if set[w] == si then
            mine[at[w]] = true
            kept = kept + st[at[w] + 1] + 6
          end
        end
        p = 1
        while p <= nst do
          local n = st[p + 1]
          if not mine[p] and (st[p + 3] + n + 1) * st[p + 2] > now
             and kept + n + 6 <= RL_STATE_VALUES_MAX then
            kept = kept + n + 6
            mine[p] = true
          end
          if mine[p] then
            for k = p, p + n + 5 do nt[#nt + 1] = st[k] end
          end
          p = p + n + 6
        end
        st, nst = nt, #nt
      end
      -- (An integer formatted here costs less than Redis's %.17g of a number.)
      redis.call('SET', si == 1 and wk or KEYS[3], cmsgpack.pack(unpack(st, 1, nst)), 'PXAT',
                 string.format('%d', pxat))
    end
  end
  if qinc then qused = redis.call('HINCRBY', sk, qfield, cost) end
  if reseed then
    rem = rem - cost
    redis.call('HSET', sk, 'rv', remv, 'r', rem, 'ri', ri)
  elseif rem0 then
    rem = redis.call('HINCRBY', sk, 'r', -cost)
  end
elseif not peek and reseed then
  redis.call('HSET', sk, 'rv', remv, 'r', rem, 'ri', ri)
end
out[3], out[4], out[5], out[6], out[7], out[8] = denied, dwin, retry, qused, pend or 0, rem
return out
