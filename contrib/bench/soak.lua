-- wrk script: the soak mode's paced check load.  POST /v1/check as check.lua
-- (keys from $BENCH_KEYS, round-robin from a different offset in each thread,
-- $BENCH_OFFSET added), paced to $BENCH_RATE requests per second in all:
-- each thread hands out send slots BENCH_RATE / threads per second apart and
-- delay() holds a request until its slot.  A thread that falls behind does
-- not burst to catch up: its schedule restarts from now.  $BENCH_THREADS must
-- equal wrk's -t.  At the end, one line per status class and a count of
-- 503s, for contrib/bench/run to read.
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local keys = {}
local token = os.getenv("BENCH_TOKEN")
for line in io.lines(os.getenv("BENCH_KEYS")) do keys[#keys + 1] = line end
local rate = tonumber(os.getenv("BENCH_RATE") or "1000")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local base = tonumber(os.getenv("BENCH_OFFSET") or "0")
local i = 0
local thread_no = 0
local threads = {}
local interval, next_slot
statuses = {}

function setup(thread)
  thread_no = thread_no + 1
  thread:set("offset", base + thread_no * 7919)
  threads[#threads + 1] = thread
end

function init(args)
  i = offset or 0
  interval = 1000 * nthreads / rate
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function delay()
  local now = now_ms()
  if not next_slot or next_slot < now - 50 then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + interval
  return wait > 0 and wait or 0
end

function request()
  i = i + 1
  return wrk.format(nil, "/v1/check", nil,
                    '{"key":"' .. keys[(i % #keys) + 1] .. '","endpoint":"GET /v1/search"}')
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s) do total[code] = (total[code] or 0) + n end
  end
  for code, n in pairs(total) do io.write(string.format("bench-status %d %d\n", code, n)) end
end
