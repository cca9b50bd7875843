#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct entry {
    struct entry *next;
    char *key;
    char *value;
    size_t len;
    int64_t stamp;
    int64_t ttl_ms;
};

struct cache {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets, count, capacity;
    int64_t ttl_ms;
    uint64_t hits, misses;
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

static void clear_locked(struct cache *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct entry *e = c->buckets[i];
        while (e) {
            struct entry *next = e->next;
            entry_free(e);
            e = next;
        }
        c->buckets[i] = NULL;
    }
    c->count = 0;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    clear_locked(c);
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

bool cache_get(struct cache *c, const char *key, int64_t now_ms, char **out, size_t *len)
{
    bool found = false;
    pthread_mutex_lock(&c->lock);
    struct entry *e = *find(c, key);
    if (e && now_ms - e->stamp < e->ttl_ms && now_ms >= e->stamp) {
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
            clear_locked(c);
            pp = find(c, key);
        }
        struct entry *e = xmalloc(sizeof *e);
        e->next = NULL;
        e->key = xstrdup(key);
        e->value = copy;
        e->len = len;
        e->stamp = now_ms;
        e->ttl_ms = ttl_ms;
        *pp = e;
        c->count++;
    }
    pthread_mutex_unlock(&c->lock);
}

void cache_remove(struct cache *c, const char *key)
{
    pthread_mutex_lock(&c->lock);
    struct entry **pp = find(c, key);
    if (*pp) {
        struct entry *e = *pp;
        *pp = e->next;
        entry_free(e);
        c->count--;
    }
    pthread_mutex_unlock(&c->lock);
}

void cache_stats(struct cache *c, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}
