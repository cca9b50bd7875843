/* Unit tests of localrl: per-process sliding windows with the clock passed
 * in, limits divided by the pool size. */
#include "localrl.h"
#include "unit.h"

static void window(struct rl_request *req, const char *name, int64_t window_s, int64_t limit,
                   int64_t precision)
{
    struct rl_window *w = &req->windows[req->nwindows++];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->window_s = window_s;
    w->limit = limit;
    w->precision = precision;
}

/* A fresh request: limits are rewritten by each decision. */
static void one_window(struct rl_request *req, int64_t limit, int64_t cost)
{
    memset(req, 0, sizeof *req);
    req->key_id = "key_a";
    req->cost = cost;
    window(req, "per_second", 1, limit, 10);
}

static void test_divided_limit_and_retry(void)
{
    struct localrl *l = localrl_new(100);
    struct rl_request req;
    struct rl_result res;
    int64_t t = 1000000; /* a bucket boundary: buckets of 100 ms */
    for (int i = 0; i < 2; i++) {
        one_window(&req, 8, 1);
        localrl_check(l, &req, 4, t + i, &res);
        CU_ASSERT_EQUAL(res.denied, RL_ALLOWED);
        CU_ASSERT_EQUAL(req.windows[0].limit, 2);
        CU_ASSERT_EQUAL(req.windows[0].remaining, 1 - i);
    }
    one_window(&req, 8, 1);
    localrl_check(l, &req, 4, t + 50, &res);
    CU_ASSERT_EQUAL(res.denied, RL_WINDOW);
    CU_ASSERT_EQUAL(res.denied_window, 0);
    CU_ASSERT(res.has_retry);
    /* The first bucket leaves the 11-bucket span at t + 1100. */
    CU_ASSERT_EQUAL(res.retry_after_ms, 1050);
    CU_ASSERT_EQUAL(req.windows[0].reset_ms, 1050);
    /* Denied checks consume nothing; capacity returns at the retry time. */
    one_window(&req, 8, 1);
    localrl_check(l, &req, 4, t + 1099, &res);
    CU_ASSERT_EQUAL(res.denied, RL_WINDOW);
    one_window(&req, 8, 1);
    localrl_check(l, &req, 4, t + 1100, &res);
    CU_ASSERT_EQUAL(res.denied, RL_ALLOWED);
    localrl_free(l);
}

static void test_cost_and_minimum(void)
{
    struct localrl *l = localrl_new(100);
    struct rl_request req;
    struct rl_result res;
    /* 3 / 4 processes still allows 1 per process. */
    one_window(&req, 3, 1);
    localrl_check(l, &req, 4, 5000, &res);
    CU_ASSERT_EQUAL(res.denied, RL_ALLOWED);
    CU_ASSERT_EQUAL(req.windows[0].limit, 1);
    /* A cost above the process's share can never fit: no retry time. */
    memset(&req, 0, sizeof req);
    req.key_id = "key_b";
    req.cost = 3;
    window(&req, "per_second", 1, 4, 10);
    localrl_check(l, &req, 2, 5000, &res);
    CU_ASSERT_EQUAL(res.denied, RL_WINDOW);
    CU_ASSERT_FALSE(res.has_retry);
    localrl_free(l);
}

static void test_two_windows_all_or_nothing(void)
{
    struct localrl *l = localrl_new(100);
    struct rl_request req;
    struct rl_result res;
    int admitted = 0;
    for (int i = 0; i < 10; i++) {
        memset(&req, 0, sizeof req);
        req.key_id = "key_c";
        req.cost = 1;
        window(&req, "burst", 1, 5, 10);
        window(&req, "minute", 60, 3, 10);
        localrl_check(l, &req, 1, 10000 + i, &res);
        if (res.denied == RL_ALLOWED)
            admitted++;
        else
            CU_ASSERT_EQUAL(res.denied_window, 1);
    }
    CU_ASSERT_EQUAL(admitted, 3);
    CU_ASSERT_EQUAL(req.windows[0].used, 3); /* the refused ones left burst alone */
    localrl_free(l);
}

static void check_key(struct localrl *l, const char *id, struct rl_result *res)
{
    struct rl_request req;
    one_window(&req, 1, 1);
    req.key_id = id;
    localrl_check(l, &req, 1, 20000, res);
}

static void test_capacity_forgets(void)
{
    struct localrl *l = localrl_new(2);
    struct rl_result res;
    check_key(l, "k1", &res);
    CU_ASSERT_EQUAL(res.denied, RL_ALLOWED);
    check_key(l, "k1", &res);
    CU_ASSERT_EQUAL(res.denied, RL_WINDOW); /* limit 1, remembered */
    check_key(l, "k2", &res);
    CU_ASSERT_EQUAL(res.denied, RL_ALLOWED);
    /* A third window does not fit: everything is forgotten first. */
    check_key(l, "k3", &res);
    CU_ASSERT_EQUAL(res.denied, RL_ALLOWED);
    check_key(l, "k1", &res);
    CU_ASSERT_EQUAL(res.denied, RL_ALLOWED);
    localrl_free(l);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_divided_limit_and_retry),
        UNIT_TEST(test_cost_and_minimum),
        UNIT_TEST(test_two_windows_all_or_nothing),
        UNIT_TEST(test_capacity_forgets),
    };
    return unit_run("localrl", tests, TG_ARRAY_LEN(tests));
}
