/* Unit tests of the event loop: watches, tasks posted from other threads,
 * idle hooks and their sleep limits, stopping. */
#include <pthread.h>
#include <unistd.h>

#include "evloop.h"
#include "unit.h"

struct counter {
    struct evloop *loop;
    int reads;
    int hooks;
    int posted;
    int stop_after;
};

static void on_pipe(struct evloop_watch *w, uint32_t events)
{
    struct counter *c = w->arg;
    char b[16];
    CU_ASSERT(events & EPOLLIN);
    CU_ASSERT(read(w->fd, b, sizeof b) > 0);
    c->reads++;
    if (c->reads == c->stop_after)
        evloop_stop(c->loop);
}

static void test_watch_and_stop(void)
{
    struct evloop *loop = evloop_new();
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    struct counter c = {.loop = loop, .stop_after = 1};
    struct evloop_watch w = {.fd = fds[0], .fn = on_pipe, .arg = &c};
    CU_ASSERT_FATAL(evloop_watch_add(loop, &w, EPOLLIN) == 0);
    CU_ASSERT(write(fds[1], "x", 1) == 1);
    CU_ASSERT_FALSE(evloop_in_loop(loop));
    evloop_run(loop);
    CU_ASSERT_EQUAL(c.reads, 1);
    CU_ASSERT_FALSE(evloop_in_loop(loop));
    evloop_watch_del(loop, &w);
    close(fds[0]);
    close(fds[1]);
    evloop_free(loop);
}

static void on_task(struct evloop_task *t)
{
    struct counter *c = t->arg;
    CU_ASSERT_TRUE(evloop_in_loop(c->loop));
    if (++c->posted == c->stop_after)
        evloop_stop(c->loop);
}

struct poster {
    struct evloop *loop;
    struct evloop_task tasks[100];
    struct counter *c;
};

static void *post_many(void *arg)
{
    struct poster *p = arg;
    for (int i = 0; i < 100; i++) {
        p->tasks[i].fn = on_task;
        p->tasks[i].arg = p->c;
        evloop_post(p->loop, &p->tasks[i]);
    }
    return NULL;
}

static void test_post_from_threads(void)
{
    struct evloop *loop = evloop_new();
    struct counter c = {.loop = loop, .stop_after = 200};
    struct poster a = {loop, {{0}}, &c}, b = {loop, {{0}}, &c};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, post_many, &a);
    pthread_create(&tb, NULL, post_many, &b);
    /* Every task runs, whether posted before or while the loop runs. */
    evloop_run(loop);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CU_ASSERT_EQUAL(c.posted, 200);
    evloop_free(loop);
}

static int on_idle(struct evloop_hook *h, int64_t now)
{
    struct counter *c = h->arg;
    CU_ASSERT(now > 0);
    if (++c->hooks == c->stop_after)
        evloop_stop(c->loop);
    return 1; /* wake up again within 1 ms */
}

static void test_hooks_limit_sleep(void)
{
    struct evloop *loop = evloop_new();
    struct counter c = {.loop = loop, .stop_after = 5};
    struct evloop_hook h = {.fn = on_idle, .arg = &c};
    evloop_hook_add(loop, &h);
    int64_t t0 = mono_ns();
    evloop_run(loop); /* nothing else happens: only the hook's timeout wakes it */
    CU_ASSERT(c.hooks >= 5);
    CU_ASSERT(mono_ns() - t0 < 2000000000LL);
    evloop_hook_del(loop, &h);
    c.hooks = 0;
    c.stop_after = 1;
    struct evloop_task t = {.fn = on_task, .arg = &c};
    c.posted = 0;
    evloop_post(loop, &t);
    evloop_run(loop);
    CU_ASSERT_EQUAL(c.hooks, 0); /* removed */
    CU_ASSERT_EQUAL(c.posted, 1);
    evloop_free(loop);
}

static void *stop_later(void *arg)
{
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    evloop_stop(arg);
    return NULL;
}

static void test_stop_from_another_thread(void)
{
    struct evloop *loop = evloop_new();
    pthread_t t;
    pthread_create(&t, NULL, stop_later, loop);
    evloop_run(loop); /* sleeps without limit until stopped */
    pthread_join(t, NULL);
    evloop_free(loop);
    evloop_free(NULL);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_watch_and_stop),
        UNIT_TEST(test_post_from_threads),
        UNIT_TEST(test_hooks_limit_sleep),
        UNIT_TEST(test_stop_from_another_thread),
    };
    return unit_run("evloop", tests, TG_ARRAY_LEN(tests));
}
