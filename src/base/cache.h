/* cache: a bounded in-process map from string keys to byte values with a
 * time to live, shared by the worker threads of a process.  It trades memory
 * for store round trips; entries older than the TTL are never returned, so a
 * change reaches every process within the TTL of reaching the store.  Time is
 * passed in by the caller. */
#ifndef TOLLGATE_CACHE_H
#define TOLLGATE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache;

/* capacity: entries kept at most (when full, an expired or least recently
 * read entry makes room: hot entries survive floods of new ones); ttl_ms:
 * maximum age. */
struct cache *cache_new(size_t capacity, int64_t ttl_ms);
void cache_free(struct cache *c);

/* Copies the value of key into a new heap buffer (*out, caller frees; NUL
 * added after len bytes) when present and younger than the TTL at now_ms. */
bool cache_get(struct cache *c, const char *key, int64_t now_ms, char **out, size_t *len);

/* Stores a copy of value under key, stamped now_ms, kept for the cache's TTL. */
void cache_put(struct cache *c, const char *key, const void *value, size_t len, int64_t now_ms);
/* Same with this entry's own TTL. */
void cache_put_ttl(struct cache *c, const char *key, const void *value, size_t len,
                   int64_t now_ms, int64_t ttl_ms);

/* Drops key if present. */
void cache_remove(struct cache *c, const char *key);

/* Entries held, fresh or expired (0: the cache is cold). */
size_t cache_count(struct cache *c);

/* Lookups that found a fresh entry, those that did not, and entries evicted
 * to make room (evictions may be NULL). */
void cache_stats(struct cache *c, uint64_t *hits, uint64_t *misses, uint64_t *evictions);

#endif
