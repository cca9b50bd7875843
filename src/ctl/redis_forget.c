#include "redis_forget.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"
#include "rtls.h"

size_t redis_forget_primaries(const struct rcluster_range *ranges, size_t n, size_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < m && !seen; j++) {
            const struct rcluster_addr *a = &ranges[out[j]].primary, *b = &ranges[i].primary;
            seen = a->port == b->port && strcmp(a->host, b->host) == 0;
        }
        if (!seen)
            out[m++] = i;
    }
    return m;
}

static long bad_reply(redisReply *r, const char *cmd, struct api_error *e)
{
    api_error_set(e, ERR_UNAVAILABLE, NULL, "redis: %s answered %s", cmd,
                  r->type == REDIS_REPLY_ERROR ? r->str : "something unexpected");
    freeReplyObject(r);
    return -1;
}

/* UNLINKs keys[0..n) (SCAN's reply), one command for all of them or, on a
 * cluster node, one per key: there the keys of one command must share a
 * slot.  Returns how many were deleted, or -1. */
static long unlink_keys(struct redis_conn *rc, redisReply *const *keys, size_t n, bool one_by_one,
                        struct api_error *e)
{
    long deleted = 0;
    size_t step = one_by_one ? 1 : n;
    const char **argv = xcalloc(step + 1, sizeof *argv);
    size_t *lens = xcalloc(step + 1, sizeof *lens);
    for (size_t i = 0; i < n && deleted >= 0; i += step) {
        size_t m = n - i < step ? n - i : step;
        argv[0] = "UNLINK";
        lens[0] = 6;
        for (size_t j = 0; j < m; j++) {
            argv[j + 1] = keys[i + j]->str;
            lens[j + 1] = keys[i + j]->len;
        }
        redisReply *r = redis_command(rc, (int)m + 1, argv, lens, e);
        if (!r)
            deleted = -1;
        else if (r->type != REDIS_REPLY_INTEGER)
            deleted = bad_reply(r, "UNLINK", e);
        else {
            deleted += (long)r->integer;
            freeReplyObject(r);
        }
    }
    free(argv);
    free(lens);
    return deleted;
}

/* Every key of one server matching the pattern, a SCAN page at a time
 * (SCAN ends: the cursor comes back to 0 after a full pass). */
static long scan_unlink(struct redis_conn *rc, bool one_by_one, struct api_error *e)
{
    char cursor[32] = "0";
    long total = 0;
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", REDIS_FORGET_PATTERN, "COUNT", "1000"};
        redisReply *r = redis_command(rc, 6, argv, NULL, e);
        if (!r)
            return -1;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY)
            return bad_reply(r, "SCAN", e);
        strlcpy_tg(cursor, r->element[0]->str, sizeof cursor);
        const redisReply *page = r->element[1];
        for (size_t i = 0; i < page->elements; i++)
            if (page->element[i]->type != REDIS_REPLY_STRING)
                return bad_reply(r, "SCAN", e);
        long n = unlink_keys(rc, page->element, page->elements, one_by_one, e);
        freeReplyObject(r);
        if (n < 0)
            return -1;
        total += n;
    } while (strcmp(cursor, "0") != 0);
    return total;
}

/* Each primary of the cluster in turn, found with CLUSTER SLOTS. */
static long forget_cluster(const struct config *cfg, const struct rnode_opts *o,
                           struct api_error *e)
{
    struct rcluster_addr *seeds = NULL;
    struct redis_conn *rc = redis_conn_new_cluster(NULL, cfg->redis_nodes, o, e);
    if (!rc || rcluster_parse_seeds(cfg->redis_nodes, &seeds, e) < 0) {
        redis_conn_free(rc);
        return -1;
    }
    const char *argv[] = {"CLUSTER", "SLOTS"};
    redisReply *r = redis_command(rc, 2, argv, NULL, e);
    redis_conn_free(rc);
    struct rcluster_range *ranges = NULL;
    int nr = r ? rcluster_parse_slots(r, seeds[0].host, &ranges, e) : -1;
    if (r)
        freeReplyObject(r);
    free(seeds);
    if (nr < 0)
        return -1;
    size_t *idx = xcalloc((size_t)nr + 1, sizeof *idx);
    size_t np = redis_forget_primaries(ranges, (size_t)nr, idx);
    long total = 0;
    for (size_t i = 0; i < np && total >= 0; i++) {
        const struct rcluster_addr *p = &ranges[idx[i]].primary;
        struct redis_conn *node = redis_conn_new(NULL, p->host, p->port, o);
        long n = scan_unlink(node, true, e);
        redis_conn_free(node);
        total = n < 0 ? -1 : total + n;
    }
    free(idx);
    free(ranges);
    return total;
}

long redis_forget(const struct config *cfg, struct api_error *e)
{
    struct rtls *tls = rtls_from_config(cfg, e);
    if (cfg->redis_tls && !tls)
        return -1;
    struct rnode_opts o;
    redis_opts_from_config(cfg, tls, &o);
    long n;
    if (cfg->redis_nodes[0]) {
        n = forget_cluster(cfg, &o, e);
    } else {
        struct redis_conn *rc = redis_conn_new(NULL, cfg->redis_host, (int)cfg->redis_port, &o);
        n = scan_unlink(rc, false, e);
        redis_conn_free(rc);
    }
    rtls_free(tls);
    return n;
}
