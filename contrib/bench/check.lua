-- wrk script: POST /v1/check with keys read from $BENCH_KEYS (one per line),
-- taken round-robin from a different offset in each thread.  With
-- BENCH_HOT=1 every request checks the first key.
local keys = {}
local token = os.getenv("BENCH_TOKEN")
local hot = os.getenv("BENCH_HOT") == "1"
for line in io.lines(os.getenv("BENCH_KEYS")) do keys[#keys + 1] = line end
local i = 0
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("offset", thread_no * 7919)
end

function init(args)
  i = offset or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  i = i + 1
  local k = hot and keys[1] or keys[(i % #keys) + 1]
  return wrk.format(nil, "/v1/check", nil,
                    '{"key":"' .. k .. '","endpoint":"GET /v1/search"}')
end
