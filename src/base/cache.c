#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct entry {
    struct entry *next;          /* in its bucket */
    struct entry *older, *newer; /* on the clock ring */
    char *key;
    char *value;
    size_t len;
    int64_t stamp;
    int64_t ttl_ms;
    bool used; /* read since the hand last passed */
};

/* Eviction is CLOCK (second chance): the hand walks the ring of entries,
 * clearing the used mark of each it passes and evicting the first expired
 * or unused one.  An entry read between two passes survives, so the hot keys
 * stay while a flood of one-off entries only displaces its own kind. */
struct cache {
    pthread_mutex_t lock;
    struct entry **buckets;
    struct entry *hand; /* NULL when empty */
    size_t nbuckets, count, capacity;
    int64_t ttl_ms;
    uint64_t hits, misses, evictions;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

struct cache *cache_new(size_t capacity, int64_t ttl_ms)
{
    struct cache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->capacity = capacity ? capacity : 1;
    c->nbuckets = 1;
    while (c->nbuckets < c->capacity)
        c->nbuckets <<= 1;
    c->buckets = xcalloc(c->nbuckets, sizeof *c->buckets);
    c->ttl_ms = ttl_ms;
    return c;
}

static void entry_free(struct entry *e)
{
    free(e->key);
    free(e->value);
    free(e);
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct entry *e = c->buckets[i];
        while (e) {
            struct entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct entry **find(struct cache *c, const char *key)
{
    struct entry **pp = &c->buckets[hash_str(key) & (c->nbuckets - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* New entries join just behind the hand: the last it reaches. */
static void ring_insert(struct cache *c, struct entry *e)
{
    if (!c->hand) {
        e->older = e->newer = e;
        c->hand = e;
        return;
    }
    e->newer = c->hand;
    e->older = c->hand->older;
    e->older->newer = e;
    c->hand->older = e;
}

/* Unlinks *pp (from its bucket and the ring) and frees it. */
static void drop(struct cache *c, struct entry **pp)
{
    struct entry *e = *pp;
    *pp = e->next;
    if (e->newer == e) {
        c->hand = NULL;
    } else {
        e->older->newer = e->newer;
        e->newer->older = e->older;
        if (c->hand == e)
            c->hand = e->newer;
    }
    entry_free(e);
    c->count--;
}

static bool expired(const struct entry *e, int64_t now_ms)
{
    return now_ms - e->stamp >= e->ttl_ms || now_ms < e->stamp;
}

/* Makes room for one entry: at most one turn of the hand clears every used
 * mark, so this ends within count + 1 steps. */
static void evict_one(struct cache *c, int64_t now_ms)
{
    while (c->hand) {
        struct entry *e = c->hand;
        if (!e->used || expired(e, now_ms)) {
            drop(c, find(c, e->key));
            c->evictions++;
            return;
        }
        e->used = false;
        c->hand = e->newer;
    }
}

bool cache_get(struct cache *c, const char *key, int64_t now_ms, char **out, size_t *len)
{
    bool found = false;
    pthread_mutex_lock(&c->lock);
    struct entry *e = *find(c, key);
    if (e && !expired(e, now_ms)) {
        e->used = true;
        *out = xmalloc(e->len + 1);
        memcpy(*out, e->value, e->len);
        (*out)[e->len] = '\0';
        if (len)
            *len = e->len;
        found = true;
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

void cache_put(struct cache *c, const char *key, const void *value, size_t len, int64_t now_ms)
{
    cache_put_ttl(c, key, value, len, now_ms, c->ttl_ms);
}

void cache_put_ttl(struct cache *c, const char *key, const void *value, size_t len,
                   int64_t now_ms, int64_t ttl_ms)
{
    char *copy = xmalloc(len + 1);
    memcpy(copy, value, len);
    copy[len] = '\0';
    pthread_mutex_lock(&c->lock);
    struct entry **pp = find(c, key);
    if (*pp) {
        free((*pp)->value);
        (*pp)->value = copy;
        (*pp)->len = len;
        (*pp)->stamp = now_ms;
        (*pp)->ttl_ms = ttl_ms;
    } else {
        if (c->count >= c->capacity) {
            evict_one(c, now_ms);
            pp = find(c, key);
        }
        struct entry *e = xcalloc(1, sizeof *e);
        e->key = xstrdup(key);
        e->value = copy;
        e->len = len;
        e->stamp = now_ms;
        e->ttl_ms = ttl_ms;
        *pp = e;
        ring_insert(c, e);
        c->count++;
    }
    pthread_mutex_unlock(&c->lock);
}

void cache_remove(struct cache *c, const char *key)
{
    pthread_mutex_lock(&c->lock);
    struct entry **pp = find(c, key);
    if (*pp)
        drop(c, pp);
    pthread_mutex_unlock(&c->lock);
}

size_t cache_count(struct cache *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void cache_stats(struct cache *c, uint64_t *hits, uint64_t *misses, uint64_t *evictions)
{
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    if (evictions)
        *evictions = c->evictions;
    pthread_mutex_unlock(&c->lock);
}
