-- wrk script: gate mode.  GET $BENCH_GATE_PATH (default /protected/hello.txt)
-- through the web server's FastCGI Authorizer, the key in "X-API-Key", keys
-- read from $BENCH_KEYS (one per line) and taken round-robin from a
-- different offset in each thread, as check.lua does.  With BENCH_HOT=1
-- every request presents the first key.
local keys = {}
local hot = os.getenv("BENCH_HOT") == "1"
local path = os.getenv("BENCH_GATE_PATH") or "/protected/hello.txt"
for line in io.lines(os.getenv("BENCH_KEYS")) do keys[#keys + 1] = line end
local i = 0
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("offset", thread_no * 7919)
end

function init(args)
  i = offset or 0
  wrk.method = "GET"
end

function request()
  i = i + 1
  local k = hot and keys[1] or keys[(i % #keys) + 1]
  wrk.headers["X-API-Key"] = k
  return wrk.format(nil, path)
end
