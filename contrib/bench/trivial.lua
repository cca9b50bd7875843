-- wrk script: the same request shape as check.lua, sent to the trivial
-- responder, so both sides parse a body of the same size.
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"key":"tg_000000000000000000000000000000","endpoint":"GET /v1/search"}'
end
