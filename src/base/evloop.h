/* evloop: one thread's epoll loop.  File descriptors are watched through
 * caller-owned watch structs; other threads hand work to the loop with
 * evloop_post (an intrusive task, no allocation) and the loop wakes through
 * an eventfd.  Idle hooks run once per iteration, before the loop sleeps:
 * that is where batched writes go out (everything that became ready in one
 * iteration shares one system call) and where deadlines are checked; each
 * hook says how long the loop may sleep. */
#ifndef TOLLGATE_EVLOOP_H
#define TOLLGATE_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "util.h"

struct evloop;

/* Called in the loop thread with the epoll events that fired. */
struct evloop_watch {
    int fd;
    void (*fn)(struct evloop_watch *w, uint32_t events);
    void *arg;
};

struct evloop_task {
    void (*fn)(struct evloop_task *t);
    void *arg;
    struct evloop_task *next;
};

/* Runs before the loop sleeps; returns the longest sleep it allows in ms
 * (-1: no limit). */
struct evloop_hook {
    int (*fn)(struct evloop_hook *h, int64_t now_ns);
    void *arg;
    struct evloop_hook *next;
};

/* Never fails (aborts when the kernel refuses epoll or eventfd). */
struct evloop *evloop_new(void);
/* Frees the loop; its watches must be gone.  NULL is a no-op. */
void evloop_free(struct evloop *loop);

/* Watch changes, from the loop thread (or before it runs).  0 or -1 with
 * errno. */
int evloop_watch_add(struct evloop *loop, struct evloop_watch *w, uint32_t events) TG_WUR;
int evloop_watch_mod(struct evloop *loop, struct evloop_watch *w, uint32_t events);
void evloop_watch_del(struct evloop *loop, struct evloop_watch *w);

/* Adds or removes a hook (from the loop thread, or while it is not
 * running). */
void evloop_hook_add(struct evloop *loop, struct evloop_hook *h);
void evloop_hook_del(struct evloop *loop, struct evloop_hook *h);

/* From any thread: t->fn(t) runs in the loop thread soon, in posting
 * order.  t must stay valid until then. */
void evloop_post(struct evloop *loop, struct evloop_task *t);
/* From any thread: makes the loop run its hooks soon. */
void evloop_wake(struct evloop *loop);

/* Runs until evloop_stop; returns in the thread that called it. */
void evloop_run(struct evloop *loop);
/* From any thread. */
void evloop_stop(struct evloop *loop);
/* True in the thread running the loop. */
bool evloop_in_loop(const struct evloop *loop);

#endif
