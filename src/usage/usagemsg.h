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
 *               <rate_limited>,<quota_exceeded>,<denied_other>
 *               (,<peak_pct>,<peak_ms>,<deny_first_ms>,<deny_last_ms>,<last_ms>)],...],
 *    "events":[["<event id>","<key_id>","<endpoint>",<status>,<response_us>,
 *               <ts_ms>],...],
 *    "credits":[["<key_id>",<remaining version>,<cost>,<day>],...]}
 * minute_s is a Unix time in seconds, a multiple of 60; allowed_cost is the
 * sum of the costs of the allowed checks (the billable units).  credits
 * sums the same costs per key and remaining version for the keys that had
 * a credit balance (docs/usage.md: billingd charges only the current
 * version, so checks from before a PATCH of remaining never count against
 * the new balance); day is the UTC day (days since 1970-01-01) of those
 * checks, which names the refill interval they drew on (absent in messages
 * of older publishers: billingd then takes the day it records them).  It is
 * left out when empty, so a message without credits reads the same to a
 * billingd that predates it.  The five trailing members of a check row
 * (struct usage_marks, for the alerts) are optional: a row of 8 is read
 * with them all 0 (a responder that predates them), and a builder leaves
 * them out when they are all 0.  Every array may be absent or empty. */
#ifndef TOLLGATE_USAGEMSG_H
#define TOLLGATE_USAGEMSG_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "util.h"

#define USAGE_BATCH_ID_MAX 128
#define USAGE_EVENT_ID_MAX 128 /* characters (API.md) */
#define USAGE_EVENT_ID_MAX_BYTES (USAGE_EVENT_ID_MAX * 4) /* the same in UTF-8 bytes */
/* Bounds of one message, checked by usage_msg_parse: a publisher keeps its
 * batches within them (RabbitMQ refuses bodies over 128 MiB anyway). */
#define USAGE_MSG_MAX_LEN ((size_t)128 << 20)
#define USAGE_MSG_MAX_ITEMS 1000000 /* checks, and events, per message */
#define USAGE_COUNT_MAX INT64_C(1000000000000) /* one counter of one bucket */
#define USAGE_RESPONSE_US_MAX INT64_C(3600000000)
#define USAGE_TS_MS_MAX INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

struct usage_counts {
    int64_t allowed, allowed_cost, rate_limited, quota_exceeded, denied_other;
};

/* When things happened in a bucket, for the alerts (alerteval.h); 0 is
 * "unknown" for every time.  peak_pct is the highest peak percent of its
 * checks (journal_rec) and peak_ms the time of the earliest check that
 * reached it; deny_first_ms and deny_last_ms bound its rate-limited checks;
 * last_ms is its latest check. */
struct usage_marks {
    int64_t peak_pct, peak_ms;
    int64_t deny_first_ms, deny_last_ms;
    int64_t last_ms;
};

/* The event figures of a bucket (zero, hist NULL, when none was reported). */
struct usage_rt {
    int64_t reported, errors; /* errors: status >= 500 */
    int64_t rt_sum_us, rt_max_us;
    int64_t *hist; /* HIST_BUCKETS counts (hist.h), or NULL */
};

/* In an aggregator, key_id and endpoint share one allocation, owned by it.
 * In a parsed message, they point into the message's string area and rt is
 * always empty. */
struct usage_bucket {
    char *key_id;
    char *endpoint;
    int64_t minute_s;
    struct usage_counts n;
    struct usage_rt rt;
    struct usage_marks m;
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

/* Credits charged to one key against one remaining version on one UTC
 * day (-1: not given). */
struct usage_credit {
    char *key_id;
    int64_t version;
    int64_t cost;
    int64_t day;
};

struct usage_msg {
    char batch[USAGE_BATCH_ID_MAX + 1];
    struct usage_credit *credits;
    size_t ncredits;
    struct usage_bucket *buckets;
    size_t nbuckets;
    struct usage_event *events;
    size_t nevents;
    char *strings; /* owns every string of buckets and events */
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
/* Adds one usage event to the event figures of its bucket (minute =
 * ts_ms floored): reported + 1, errors + 1 when status >= 500, response time
 * into sum, max and histogram.  The event id is not kept: deduplicating is
 * the caller's business. */
void usage_agg_add_event(struct usage_agg *a, const struct usage_event *ev);
/* Merges a whole bucket (counts, marks and event figures) into a. */
void usage_agg_merge(struct usage_agg *a, const struct usage_bucket *b);
size_t usage_agg_count(const struct usage_agg *a);
/* Calls fn for every bucket, in the order the buckets were first added. */
void usage_agg_each(const struct usage_agg *a, void (*fn)(const struct usage_bucket *b, void *arg),
                    void *arg);

/* ---- messages ---- */

/* The body of a batch message holding a's buckets (their check counts and
 * marks; event figures are not sent), the events given (may be 0) and the credits of
 * credits (NULL: none), an aggregator whose buckets are (key id, "",
 * remaining version) with the cost in allowed_cost, their endpoint the
 * UTC day in decimal (usage_agg_add_credit).  Caller frees;
 * *len receives its length.  Strings that are not valid UTF-8 are sent with
 * each offending byte replaced by '?' (same length), so that one bad string
 * never makes the whole batch unparseable. */
char *usage_msg_build(const char *batch_id, const struct usage_agg *a,
                      const struct usage_event *events, size_t nevents,
                      const struct usage_agg *credits, size_t *len);
/* Adds one journalled check to a credits aggregator (see usage_msg_build)
 * when it was allowed and charged to a credit balance. */
void usage_agg_add_credit(struct usage_agg *credits, const struct journal_rec *rec);

/* Parses and validates a body of at most USAGE_MSG_MAX_LEN bytes: v is 1;
 * batch 1..USAGE_BATCH_ID_MAX bytes; per check, key id 1..JOURNAL_KEY_MAX and
 * endpoint 1..JOURNAL_ENDPOINT_MAX bytes, minute_s in [0, USAGE_TS_MS_MAX /
 * 1000] and a multiple of 60, counts in [0, USAGE_COUNT_MAX], and when the
 * row has 13 members the marks: peak_pct 0..100, each time 0 or within the
 * row's minute, peak_ms 0 exactly when peak_pct is, the deny times 0 exactly
 * when rate_limited is and first <= last; per event, id
 * 1..USAGE_EVENT_ID_MAX bytes, status 100..599, response_us 0..3600000000,
 * ts_ms in [0, USAGE_TS_MS_MAX]; per credit, key id 1..JOURNAL_KEY_MAX
 * bytes, version and cost in [0, USAGE_COUNT_MAX], the optional day in [0, USAGE_TS_MS_MAX /
 * 86400000]; strings valid UTF-8 without NUL; no other
 * member, no other type (an integer written 1.0 is refused).  Returns 0, or
 * -1 with err filled (naming the offending element) and out empty.  Release
 * with usage_msg_fini (harmless on an empty or zeroed message). */
int usage_msg_parse(const char *body, size_t len, struct usage_msg *out, struct api_error *err) TG_WUR;
void usage_msg_fini(struct usage_msg *m);

#endif
