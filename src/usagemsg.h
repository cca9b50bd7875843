/* usagemsg: usage buckets, their aggregation and the batch messages that
 * carry them from the responders to tollgate-billingd.
 *
 * A bucket is (key id, endpoint, minute) with one counter per check outcome
 * and the response-time figures of the usage events reported for it.  The
 * aggregator merges buckets in a hash table; the publisher fills one from
 * the journal, billingd one from many messages before each transaction.
 *
 * Message body (JSON, one batch; the batch id is the deduplication key):
 *   {"v":1,"batch":"<id>",
 *    "checks":[["<key_id>","<endpoint>",<minute_s>,<allowed>,<allowed_cost>,
 *               <rate_limited>,<quota_exceeded>,<denied_other>],...],
 *    "events":[["<event id>","<key_id>","<endpoint>",<status>,<response_us>,
 *               <ts_ms>],...]}
 * minute_s is a Unix time in seconds, a multiple of 60; allowed_cost is the
 * sum of the costs of the allowed checks (the billable units).  Either array
 * may be absent or empty. */
#ifndef TOLLGATE_USAGEMSG_H
#define TOLLGATE_USAGEMSG_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "util.h"

#define USAGE_BATCH_ID_MAX 128
#define USAGE_EVENT_ID_MAX 128

struct usage_counts {
    int64_t allowed, allowed_cost, rate_limited, quota_exceeded, denied_other;
};

struct usage_bucket {
    char *key_id;
    char *endpoint;
    int64_t minute_s;
    struct usage_counts n;
};

/* One reported upstream request (POST /v1/usage/events). */
struct usage_event {
    char *id;
    char *key_id;
    char *endpoint;
    int status;
    int64_t response_us;
    int64_t ts_ms;
};

struct usage_msg {
    char batch[USAGE_BATCH_ID_MAX + 1];
    struct usage_bucket *buckets;
    size_t nbuckets;
    struct usage_event *events;
    size_t nevents;
};

/* ---- aggregation ---- */

struct usage_agg;

struct usage_agg *usage_agg_new(void);
void usage_agg_free(struct usage_agg *a);
void usage_agg_clear(struct usage_agg *a);
/* Adds one journalled check to its bucket (minute = ts_ms floored). */
void usage_agg_add_check(struct usage_agg *a, const struct journal_rec *rec);
/* Adds counts to the bucket (key_id, endpoint, minute_s). */
void usage_agg_add(struct usage_agg *a, const char *key_id, const char *endpoint, int64_t minute_s,
                   const struct usage_counts *n);
size_t usage_agg_count(const struct usage_agg *a);
/* Calls fn for every bucket, in no particular order. */
void usage_agg_each(const struct usage_agg *a, void (*fn)(const struct usage_bucket *b, void *arg),
                    void *arg);

/* ---- messages ---- */

/* The body of a batch message holding a's buckets and the events given (may
 * be 0).  Caller frees; *len receives its length. */
char *usage_msg_build(const char *batch_id, const struct usage_agg *a,
                      const struct usage_event *events, size_t nevents, size_t *len);

/* Parses and validates a body (strings bounded, counts >= 0, minute a
 * multiple of 60, ...).  Returns 0, or -1 with err filled and out empty.
 * Release with usage_msg_fini. */
int usage_msg_parse(const char *body, size_t len, struct usage_msg *out, struct tg_err *err) TG_WUR;
void usage_msg_fini(struct usage_msg *m);

#endif
