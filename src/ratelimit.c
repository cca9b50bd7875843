#include "ratelimit.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "redis.h"

/* KEYS[1] windows hash, KEYS[2] state hash (version, quota, credits), both
 * tagged {key id} so one Redis Cluster slot holds the whole decision.
 * ARGV: cost (0: peek, which reads and changes nothing), version, nwin,
 * quota_included (-1: none), quota_blocks (0|1), remaining (-1: none),
 * remaining_version, then name, window_s, limit, precision for each window.
 * Returns {status, now, denied, window, retry, quota_used, period_end,
 * remaining, used1, reset1, used2, reset2, ...}; status 1 = decided,
 * 2 = the caller's record is stale. */
static const char SCRIPT[] =
    "local function int(v, lo, hi)\n"
    "  local n = tonumber(v)\n"
    "  if not n or n ~= math.floor(n) or n < lo or n > hi then\n"
    "    error('tollgate: invalid argument ' .. tostring(v))\n"
    "  end\n"
    "  return n\n"
    "end\n"
    "local cost = int(ARGV[1], 0, 1000)\n"
    "local peek = cost == 0\n"
    "local ver = int(ARGV[2], 0, 9e15)\n"
    "local nwin = int(ARGV[3], 0, 16)\n"
    "local qinc = int(ARGV[4], -1, 1e15)\n"
    "local qblock = int(ARGV[5], 0, 1)\n"
    "local rem0 = int(ARGV[6], -1, 1e15)\n"
    "local remv = int(ARGV[7], 0, 9e15)\n"
    "local wk, sk = KEYS[1], KEYS[2]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local sv = tonumber(redis.call('HGET', sk, 'v') or '0')\n"
    "if sv > ver and not peek then return {2, now} end\n"
    "if sv < ver and not peek then redis.call('HSET', sk, 'v', ver) end\n"
    "local function civil(days)\n"
    "  local z = days + 719468\n"
    "  local era = math.floor(z / 146097)\n"
    "  local doe = z - era * 146097\n"
    "  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)\n"
    "  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))\n"
    "  local mp = math.floor((5 * doy + 2) / 153)\n"
    "  local m = mp < 10 and mp + 3 or mp - 9\n"
    "  local y = yoe + era * 400\n"
    "  if m <= 2 then y = y + 1 end\n"
    "  return y, m\n"
    "end\n"
    "local function days_from_civil(y, m)\n"
    "  if m <= 2 then y = y - 1 end\n"
    "  local era = math.floor(y / 400)\n"
    "  local yoe = y - era * 400\n"
    "  local mp = m > 2 and m - 3 or m + 9\n"
    "  local doy = math.floor((153 * mp + 2) / 5)\n"
    "  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468\n"
    "end\n"
    "-- The period quota counts per calendar month (UTC) of Redis time.\n"
    "local y, m = civil(math.floor(now / 86400000))\n"
    "local ny, nm = y, m + 1\n"
    "if nm > 12 then ny, nm = y + 1, 1 end\n"
    "local pend = days_from_civil(ny, nm) * 86400000\n"
    "local qfield = string.format('q:%04d%02d', y, m)\n"
    "local denied, dwin, retry, never = 0, 0, -1, false\n"
    "local wins = {}\n"
    "-- Each window: buckets of b ms; the current one and the prec before it\n"
    "-- span at least the window.  One hash field per window holds the index of\n"
    "-- its first bucket and prec + 1 counts, packed.\n"
    "for w = 1, nwin do\n"
    "  local a = 7 + (w - 1) * 4\n"
    "  local name = ARGV[a + 1]\n"
    "  if not string.match(name, '^[a-z0-9_]+$') or #name > 32 then error('tollgate: invalid name') end\n"
    "  local ws = int(ARGV[a + 2], 1, 2678400)\n"
    "  local lim = int(ARGV[a + 3], 1, 1e9)\n"
    "  local prec = int(ARGV[a + 4], 1, 60)\n"
    "  local b = math.ceil(ws * 1000 / prec)\n"
    "  local i = math.floor(now / b)\n"
    "  local field = 'w:' .. name .. ':' .. ws .. ':' .. prec\n"
    "  local lo = i - prec\n"
    "  local counts = {}\n"
    "  for k = 1, prec + 1 do counts[k] = 0 end\n"
    "  local raw = redis.call('HGET', wk, field)\n"
    "  if raw then\n"
    "    local v = {struct.unpack('<d' .. string.rep('I4', prec + 1), raw)}\n"
    "    local s = v[1]\n"
    "    for k = 1, prec + 1 do\n"
    "      local idx = s + k - 1\n"
    "      if idx >= lo and idx <= i then counts[idx - lo + 1] = v[k + 1] end\n"
    "    end\n"
    "  end\n"
    "  local used = 0\n"
    "  for k = 1, prec + 1 do used = used + counts[k] end\n"
    "  wins[w] = {field = field, lo = lo, b = b, prec = prec, used = used, counts = counts, lim = lim}\n"
    "  -- Every full window is examined: the retry time is when all of them\n"
    "  -- have room, and there is none when the cost exceeds a limit.\n"
    "  if not peek and used + cost > lim then\n"
    "    if denied == 0 then denied, dwin = 1, w end\n"
    "    local rw = -1\n"
    "    if cost <= lim then\n"
    "      local freed = 0\n"
    "      for k = 1, prec + 1 do\n"
    "        local c = counts[k]\n"
    "        if c > 0 then\n"
    "          freed = freed + c\n"
    "          if used - freed + cost <= lim then\n"
    "            rw = (lo + k - 1 + prec + 1) * b - now\n"
    "            break\n"
    "          end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    if rw < 0 then never = true elseif rw > retry then retry = rw end\n"
    "  end\n"
    "end\n"
    "if never then retry = -1 end\n"
    "local qused = tonumber(redis.call('HGET', sk, qfield) or '0')\n"
    "if not peek and denied == 0 and qinc >= 0 and qblock == 1 and qused + cost > qinc then\n"
    "  denied, retry = 2, pend - now\n"
    "end\n"
    "local rem = -1\n"
    "if rem0 >= 0 then\n"
    "  local srv = tonumber(redis.call('HGET', sk, 'rv') or '-1')\n"
    "  if srv ~= remv then\n"
    "    if not peek then redis.call('HSET', sk, 'rv', remv, 'r', rem0) end\n"
    "    rem = rem0\n"
    "  else\n"
    "    rem = tonumber(redis.call('HGET', sk, 'r') or '0')\n"
    "  end\n"
    "  if not peek and denied == 0 and rem < cost then denied, retry = 3, -1 end\n"
    "end\n"
    "local ttl = 0\n"
    "if denied == 0 and not peek then\n"
    "  for w = 1, nwin do\n"
    "    local x = wins[w]\n"
    "    x.counts[x.prec + 1] = x.counts[x.prec + 1] + cost\n"
    "    x.used = x.used + cost\n"
    "    redis.call('HSET', wk, x.field,\n"
    "               struct.pack('<d' .. string.rep('I4', x.prec + 1), x.lo, unpack(x.counts)))\n"
    "    local span = (x.prec + 1) * x.b\n"
    "    if span > ttl then ttl = span end\n"
    "  end\n"
    "  if ttl > 0 then redis.call('PEXPIRE', wk, ttl) end\n"
    "  qused = redis.call('HINCRBY', sk, qfield, cost)\n"
    "  if rem >= 0 then rem = redis.call('HINCRBY', sk, 'r', -cost) end\n"
    "end\n"
    "local out = {1, now, denied, dwin, retry, qused, pend, rem}\n"
    "for w = 1, nwin do\n"
    "  local x = wins[w]\n"
    "  local reset = 0\n"
    "  for k = 1, x.prec + 1 do\n"
    "    if x.counts[k] > 0 then reset = (x.lo + k - 1 + x.prec + 1) * x.b - now break end\n"
    "  end\n"
    "  out[#out + 1] = x.used\n"
    "  out[#out + 1] = reset\n"
    "end\n"
    "return out\n";

static struct redis_script script;
static pthread_once_t script_once = PTHREAD_ONCE_INIT;

static void script_init(void)
{
    redis_script_init(&script, SCRIPT);
}

static void tag_keys(const char *key_id, char wk[96], char sk[96])
{
    snprintf(wk, 96, "tg:{%s}:w", key_id);
    snprintf(sk, 96, "tg:{%s}:s", key_id);
}

static int64_t elem_int(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer
                                                                           : 0;
}

const struct redis_script *ratelimit_script(void)
{
    pthread_once(&script_once, script_init);
    return &script;
}

void ratelimit_call_init(const struct rl_request *req, int64_t cost, struct rl_call *call)
{
    tag_keys(req->key_id, call->wk, call->sk);
    call->keys[0] = call->wk;
    call->keys[1] = call->sk;
    call->nkeys = 2;
    enum { FIXED = 7 };
    int64_t fixed[FIXED] = {cost,
                            req->version,
                            (int64_t)req->nwindows,
                            req->has_quota ? req->quota_included : -1,
                            req->quota_blocks ? 1 : 0,
                            req->has_remaining ? req->remaining : -1,
                            req->remaining_version};
    int na = 0, nn = 0;
    for (int i = 0; i < FIXED; i++) {
        snprintf(call->num[nn], sizeof call->num[nn], "%lld", (long long)fixed[i]);
        call->args[na++] = call->num[nn++];
    }
    for (size_t w = 0; w < req->nwindows; w++) {
        const struct rl_window *x = &req->windows[w];
        call->args[na++] = x->name;
        int64_t v[3] = {x->window_s, x->limit, x->precision};
        for (int k = 0; k < 3; k++) {
            snprintf(call->num[nn], sizeof call->num[nn], "%lld", (long long)v[k]);
            call->args[na++] = call->num[nn++];
        }
    }
    call->nargs = na;
}

int ratelimit_read_reply(const redisReply *r, struct rl_request *req, struct rl_result *res,
                         struct tg_err *err)
{
    memset(res, 0, sizeof *res);
    if (r->type == REDIS_REPLY_ERROR) {
        tg_err_set(err, "ratelimit script: %s", r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        tg_err_set(err, "ratelimit script: unexpected reply");
        return -1;
    }
    if (elem_int(r, 0) == 2) {
        res->stale = true;
        res->now_ms = elem_int(r, 1);
        return 0;
    }
    if (r->elements != 8 + 2 * req->nwindows) {
        tg_err_set(err, "ratelimit script: unexpected reply length");
        return -1;
    }
    res->now_ms = elem_int(r, 1);
    res->denied = (enum rl_denied)elem_int(r, 2);
    res->denied_window = (int)elem_int(r, 3) - 1;
    res->retry_after_ms = elem_int(r, 4);
    res->has_retry = res->retry_after_ms >= 0 && res->denied != RL_ALLOWED;
    res->quota_used = elem_int(r, 5);
    res->period_end_ms = elem_int(r, 6);
    res->remaining = elem_int(r, 7);
    for (size_t w = 0; w < req->nwindows; w++) {
        struct rl_window *x = &req->windows[w];
        x->used = elem_int(r, 8 + 2 * w);
        x->reset_ms = elem_int(r, 9 + 2 * w);
        x->remaining = x->limit > x->used ? x->limit - x->used : 0;
    }
    return 0;
}

/* Runs the script with this cost argument (0 peeks). */
static int run_script(struct redis_conn *redis, struct rl_request *req, int64_t cost,
                      struct rl_result *res, struct tg_err *err)
{
    memset(res, 0, sizeof *res);
    struct rl_call call;
    ratelimit_call_init(req, cost, &call);
    redisReply *r = redis_eval(redis, ratelimit_script(), call.nkeys, call.keys, call.nargs,
                               call.args, err);
    if (!r)
        return -1;
    int rc = ratelimit_read_reply(r, req, res, err);
    freeReplyObject(r);
    return rc;
}

int ratelimit_check(struct redis_conn *redis, struct rl_request *req, struct rl_result *res,
                    struct tg_err *err)
{
    /* A cost below 1 would be a peek, or with another script a refund. */
    if (req->cost < 1 || req->cost > 1000) {
        tg_err_set(err, "ratelimit: cost %lld out of range", (long long)req->cost);
        return -1;
    }
    return run_script(redis, req, req->cost, res, err);
}

int ratelimit_peek(struct redis_conn *redis, struct rl_request *req, struct rl_result *res,
                   struct tg_err *err)
{
    return run_script(redis, req, 0, res, err);
}

int ratelimit_publish_version(struct redis_conn *redis, const char *key_id, int64_t version,
                              struct tg_err *err)
{
    char wk[96], sk[96], v[24];
    tag_keys(key_id, wk, sk);
    snprintf(v, sizeof v, "%lld", (long long)version);
    /* Only ever raise the version: a slow publisher must not lower it. */
    static const char *const argv0[] = {"EVAL",
                                        "local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')\n"
                                        "if tonumber(ARGV[1]) > v then redis.call('HSET', KEYS[1], 'v', ARGV[1]) end\n"
                                        "return 1",
                                        "1"};
    const char *argv[] = {argv0[0], argv0[1], argv0[2], sk, v};
    redisReply *r = redis_command(redis, 5, argv, NULL, err);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_ERROR ? -1 : 0;
    if (rc)
        tg_err_set(err, "version publish: %s", r->str);
    freeReplyObject(r);
    return rc;
}

int ratelimit_tightest(const struct rl_request *req)
{
    int best = -1;
    for (size_t i = 0; i < req->nwindows; i++) {
        const struct rl_window *x = &req->windows[i];
        if (best < 0 || x->remaining < req->windows[best].remaining ||
            (x->remaining == req->windows[best].remaining &&
             x->reset_ms < req->windows[best].reset_ms))
            best = (int)i;
    }
    return best;
}

static int64_t ceil_s(int64_t ms)
{
    return ms <= 0 ? 0 : (ms + 999) / 1000;
}

void ratelimit_headers(const struct rl_request *req, const struct rl_result *res, char *buf,
                       size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
#define APPEND(...)                                                         \
    do {                                                                    \
        if (n < size) {                                                     \
            int w_ = snprintf(buf + n, size - n, __VA_ARGS__);              \
            n += w_ > 0 ? (size_t)w_ : 0;                                   \
        }                                                                   \
    } while (0)
    if (req->nwindows > 0) {
        APPEND("RateLimit-Policy: ");
        for (size_t i = 0; i < req->nwindows; i++)
            APPEND("%s\"%s\";q=%lld;w=%lld", i ? ", " : "", req->windows[i].name,
                   (long long)req->windows[i].limit, (long long)req->windows[i].window_s);
        APPEND("\r\n");
        const struct rl_window *t = &req->windows[ratelimit_tightest(req)];
        APPEND("RateLimit: \"%s\";r=%lld;t=%lld\r\n", t->name, (long long)t->remaining,
               (long long)ceil_s(t->reset_ms));
        APPEND("X-RateLimit-Limit: %lld\r\nX-RateLimit-Remaining: %lld\r\n"
               "X-RateLimit-Reset: %lld\r\n",
               (long long)t->limit, (long long)t->remaining, (long long)ceil_s(t->reset_ms));
    }
    if (res->denied != RL_ALLOWED && res->has_retry)
        APPEND("Retry-After: %lld\r\n", (long long)ceil_s(res->retry_after_ms));
#undef APPEND
    if (n >= size && size > 0)
        buf[0] = '\0';
}
