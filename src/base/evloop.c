#include "evloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_EVENTS 64

struct evloop {
    int epfd;
    struct evloop_watch wake; /* the eventfd */
    pthread_mutex_t lock;     /* posted */
    struct evloop_task *posted, *posted_tail;
    atomic_bool woken;   /* a wake-up is on its way: later posters skip the write */
    atomic_bool stopping;
    struct evloop_hook *hooks;
    pthread_t thread;
    atomic_bool running;
};

static void on_wake(struct evloop_watch *w, uint32_t events)
{
    (void)events;
    uint64_t count;
    ssize_t r = read(w->fd, &count, sizeof count);
    (void)r;
}

struct evloop *evloop_new(void)
{
    struct evloop *loop = xcalloc(1, sizeof *loop);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    loop->wake.fn = on_wake;
    if (loop->epfd < 0 || loop->wake.fd < 0 || evloop_watch_add(loop, &loop->wake, EPOLLIN) != 0) {
        fprintf(stderr, "tollgate: cannot create an event loop: %s\n", strerror(errno));
        abort();
    }
    pthread_mutex_init(&loop->lock, NULL);
    return loop;
}

void evloop_free(struct evloop *loop)
{
    if (!loop)
        return;
    close(loop->wake.fd);
    close(loop->epfd);
    pthread_mutex_destroy(&loop->lock);
    free(loop);
}

int evloop_watch_add(struct evloop *loop, struct evloop_watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, w->fd, &ev);
}

int evloop_watch_mod(struct evloop *loop, struct evloop_watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void evloop_watch_del(struct evloop *loop, struct evloop_watch *w)
{
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

void evloop_hook_add(struct evloop *loop, struct evloop_hook *h)
{
    h->next = loop->hooks;
    loop->hooks = h;
}

void evloop_hook_del(struct evloop *loop, struct evloop_hook *h)
{
    for (struct evloop_hook **pp = &loop->hooks; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            return;
        }
    }
}

void evloop_wake(struct evloop *loop)
{
    /* One write per sleep is enough: the loop clears the flag before it
     * looks at what was posted. */
    if (atomic_exchange(&loop->woken, true))
        return;
    uint64_t one = 1;
    ssize_t r = write(loop->wake.fd, &one, sizeof one);
    (void)r;
}

void evloop_post(struct evloop *loop, struct evloop_task *t)
{
    t->next = NULL;
    pthread_mutex_lock(&loop->lock);
    if (loop->posted_tail)
        loop->posted_tail->next = t;
    else
        loop->posted = t;
    loop->posted_tail = t;
    pthread_mutex_unlock(&loop->lock);
    if (!evloop_in_loop(loop))
        evloop_wake(loop);
}

static void run_posted(struct evloop *loop)
{
    pthread_mutex_lock(&loop->lock);
    struct evloop_task *t = loop->posted;
    loop->posted = loop->posted_tail = NULL;
    pthread_mutex_unlock(&loop->lock);
    while (t) {
        struct evloop_task *next = t->next;
        t->fn(t); /* may free t */
        t = next;
    }
}

/* Runs the hooks and the posted tasks until both are quiet; returns the
 * sleep the hooks allow. */
static int idle(struct evloop *loop)
{
    atomic_store(&loop->woken, false);
    run_posted(loop);
    int timeout = -1;
    int64_t now = mono_ns();
    for (struct evloop_hook *h = loop->hooks; h; h = h->next) {
        int t = h->fn(h, now);
        if (t >= 0 && (timeout < 0 || t < timeout))
            timeout = t;
    }
    pthread_mutex_lock(&loop->lock);
    bool more = loop->posted != NULL;
    pthread_mutex_unlock(&loop->lock);
    return more ? 0 : timeout;
}

void evloop_run(struct evloop *loop)
{
    loop->thread = pthread_self();
    atomic_store(&loop->running, true);
    struct epoll_event events[MAX_EVENTS];
    while (!atomic_load(&loop->stopping)) {
        int timeout = idle(loop);
        if (atomic_load(&loop->stopping))
            break;
        int n = epoll_wait(loop->epfd, events, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR)
            abort(); /* only a programming error makes epoll_wait fail */
        for (int i = 0; i < n; i++) {
            struct evloop_watch *w = events[i].data.ptr;
            w->fn(w, events[i].events);
        }
    }
    /* What was posted last still runs: a waiter may depend on it. */
    (void)idle(loop);
    atomic_store(&loop->running, false);
    atomic_store(&loop->stopping, false);
}

void evloop_stop(struct evloop *loop)
{
    atomic_store(&loop->stopping, true);
    atomic_store(&loop->woken, false);
    evloop_wake(loop);
}

bool evloop_in_loop(const struct evloop *loop)
{
    return atomic_load(&loop->running) && pthread_equal(loop->thread, pthread_self());
}
