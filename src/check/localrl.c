#include "localrl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "util.h"

struct window_state {
    struct window_state *next;
    char key[160];
    int64_t lo;                                /* bucket index of counts[0] */
    int64_t counts[LIMITS_PRECISION_MAX + 1];
};

struct localrl {
    pthread_mutex_t lock;
    struct window_state **buckets;
    size_t nbuckets, count, capacity;
};

struct localrl *localrl_new(size_t capacity)
{
    struct localrl *l = xcalloc(1, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    l->capacity = capacity ? capacity : 1;
    l->nbuckets = 1024;
    l->buckets = xcalloc(l->nbuckets, sizeof *l->buckets);
    return l;
}

static void clear(struct localrl *l)
{
    for (size_t i = 0; i < l->nbuckets; i++) {
        while (l->buckets[i]) {
            struct window_state *s = l->buckets[i];
            l->buckets[i] = s->next;
            free(s);
        }
    }
    l->count = 0;
}

void localrl_free(struct localrl *l)
{
    if (!l)
        return;
    clear(l);
    free(l->buckets);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static struct window_state *find(struct localrl *l, const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    struct window_state **pp = &l->buckets[h % l->nbuckets];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    if (!*pp) {
        *pp = xcalloc(1, sizeof **pp);
        strlcpy_tg((*pp)->key, key, sizeof (*pp)->key);
        l->count++;
    }
    return *pp;
}

/* Moves the counts of s into the frame [lo, lo + n). */
static void rebase(struct window_state *s, int64_t lo, int64_t n)
{
    int64_t moved[LIMITS_PRECISION_MAX + 1] = {0};
    for (int64_t k = 0; k < n; k++) {
        int64_t idx = s->lo + k;
        if (idx >= lo && idx < lo + n)
            moved[idx - lo] = s->counts[k];
    }
    memcpy(s->counts, moved, sizeof moved);
    s->lo = lo;
}

void localrl_check(struct localrl *l, struct rl_request *req, int64_t processes, int64_t now_ms,
                   struct rl_result *res)
{
    struct window_state *states[RATELIMIT_MAX_WINDOWS];
    bool never = false;
    memset(res, 0, sizeof *res);
    res->now_ms = now_ms;
    res->retry_after_ms = -1;
    pthread_mutex_lock(&l->lock);
    /* Forget everything rather than one state this check still holds. */
    if (l->count + req->nwindows > l->capacity)
        clear(l);
    for (size_t w = 0; w < req->nwindows; w++) {
        struct rl_window *x = &req->windows[w];
        int64_t prec = x->precision, n = prec + 1;
        int64_t b = (x->window_s * 1000 + prec - 1) / prec, i = now_ms / b;
        int64_t lim = x->limit / (processes > 0 ? processes : 1);
        if (lim < 1)
            lim = 1;
        char key[160];
        snprintf(key, sizeof key, "%s|%s|%lld|%lld", req->key_id, x->name,
                 (long long)x->window_s, (long long)prec);
        struct window_state *s = states[w] = find(l, key);
        rebase(s, i - prec, n);
        int64_t used = 0;
        for (int64_t k = 0; k < n; k++)
            used += s->counts[k];
        x->used = used;
        if (used + req->cost > lim) {
            if (res->denied == RL_ALLOWED) {
                res->denied = RL_WINDOW;
                res->denied_window = (int)w;
            }
            int64_t retry = -1, freed = 0;
            for (int64_t k = 0; k < n && req->cost <= lim; k++) {
                freed += s->counts[k];
                if (s->counts[k] > 0 && used - freed + req->cost <= lim) {
                    retry = (s->lo + k + n) * b - now_ms;
                    break;
                }
            }
            if (retry < 0)
                never = true;
            else if (retry > res->retry_after_ms)
                res->retry_after_ms = retry;
        }
        x->limit = lim; /* what this process enforces, for the answer */
    }
    if (res->denied == RL_ALLOWED) {
        for (size_t w = 0; w < req->nwindows; w++) {
            states[w]->counts[req->windows[w].precision] += req->cost;
            req->windows[w].used += req->cost;
        }
    }
    for (size_t w = 0; w < req->nwindows; w++) {
        struct rl_window *x = &req->windows[w];
        int64_t n = x->precision + 1, b = (x->window_s * 1000 + x->precision - 1) / x->precision;
        x->remaining = x->limit > x->used ? x->limit - x->used : 0;
        x->reset_ms = 0;
        for (int64_t k = 0; k < n; k++) {
            if (states[w]->counts[k] > 0) {
                x->reset_ms = (states[w]->lo + k + n) * b - now_ms;
                break;
            }
        }
    }
    pthread_mutex_unlock(&l->lock);
    if (never)
        res->retry_after_ms = -1;
    res->has_retry = res->denied != RL_ALLOWED && res->retry_after_ms >= 0;
    res->remaining = req->remaining;
}
