/* usagemsg: the aggregation hash table and the batch messages.
 *
 * The aggregator keeps its buckets in one dense array, in insertion order,
 * and finds them through an open-addressing index (linear probing) of
 * bucket numbers, at most half full.  Clearing keeps both allocations, so
 * billingd's table is sized once for its largest window. */
#include "usagemsg.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "strbuf.h"

struct usage_agg {
    struct usage_bucket *b; /* b[0..n), insertion order */
    uint64_t *hash;         /* hash[i] of b[i] */
    size_t n, cap;
    uint32_t *slot; /* bucket number + 1; 0 = empty */
    size_t nslots;  /* power of two, >= 2 * n */
};

#define AGG_MIN_SLOTS 64

struct usage_agg *usage_agg_new(void)
{
    struct usage_agg *a = xcalloc(1, sizeof *a);
    a->nslots = AGG_MIN_SLOTS;
    a->slot = xcalloc(a->nslots, sizeof *a->slot);
    return a;
}

static void free_buckets(struct usage_agg *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->b[i].key_id); /* endpoint shares this allocation */
        free(a->b[i].rt.hist);
    }
    a->n = 0;
}

void usage_agg_free(struct usage_agg *a)
{
    if (!a)
        return;
    free_buckets(a);
    free(a->b);
    free(a->hash);
    free(a->slot);
    free(a);
}

void usage_agg_clear(struct usage_agg *a)
{
    if (a->n == 0)
        return;
    free_buckets(a);
    memset(a->slot, 0, a->nslots * sizeof *a->slot);
}

size_t usage_agg_count(const struct usage_agg *a)
{
    return a->n;
}

void usage_agg_each(const struct usage_agg *a, void (*fn)(const struct usage_bucket *b, void *arg),
                    void *arg)
{
    for (size_t i = 0; i < a->n; i++)
        fn(&a->b[i], arg);
}

/* FNV-1a over both strings (with a separator) and the minute, then a final
 * mix so that the low bits used by the index depend on every input bit. */
static uint64_t bucket_hash(const char *key, size_t klen, const char *ep, size_t elen,
                            int64_t minute_s)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < klen; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    h = (h ^ 0xffU) * 1099511628211ULL;
    for (size_t i = 0; i < elen; i++)
        h = (h ^ (unsigned char)ep[i]) * 1099511628211ULL;
    h ^= (uint64_t)minute_s * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static void grow_index(struct usage_agg *a)
{
    size_t nslots = a->nslots * 2;
    uint32_t *slot = xcalloc(nslots, sizeof *slot);
    for (size_t i = 0; i < a->n; i++) {
        size_t j = (size_t)a->hash[i] & (nslots - 1);
        while (slot[j])
            j = (j + 1) & (nslots - 1);
        slot[j] = (uint32_t)(i + 1);
    }
    free(a->slot);
    a->slot = slot;
    a->nslots = nslots;
}

/* The bucket (key, endpoint, minute), created with zero counts if new. */
static struct usage_bucket *lookup(struct usage_agg *a, const char *key, size_t klen,
                                   const char *ep, size_t elen, int64_t minute_s)
{
    uint64_t h = bucket_hash(key, klen, ep, elen, minute_s);
    size_t mask = a->nslots - 1, j = (size_t)h & mask;
    for (; a->slot[j]; j = (j + 1) & mask) {
        struct usage_bucket *b = &a->b[a->slot[j] - 1];
        if (a->hash[a->slot[j] - 1] == h && b->minute_s == minute_s &&
            memcmp(b->key_id, key, klen) == 0 && b->key_id[klen] == '\0' &&
            memcmp(b->endpoint, ep, elen) == 0 && b->endpoint[elen] == '\0')
            return b;
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->b = xrealloc(a->b, a->cap * sizeof *a->b);
        a->hash = xrealloc(a->hash, a->cap * sizeof *a->hash);
    }
    size_t i = a->n++;
    struct usage_bucket *b = &a->b[i];
    memset(b, 0, sizeof *b);
    b->key_id = xmalloc(klen + elen + 2);
    memcpy(b->key_id, key, klen);
    b->key_id[klen] = '\0';
    b->endpoint = b->key_id + klen + 1;
    memcpy(b->endpoint, ep, elen);
    b->endpoint[elen] = '\0';
    b->minute_s = minute_s;
    a->hash[i] = h;
    a->slot[j] = (uint32_t)(i + 1);
    if (a->n * 2 > a->nslots)
        grow_index(a);
    return b;
}

static int64_t minute_of_ms(int64_t ts_ms)
{
    int64_t s = ts_ms / 1000 - (ts_ms % 1000 < 0); /* floor, also before 1970 */
    return s - ((s % 60) + 60) % 60;
}

/* The earlier of two times, 0 being "none". */
static int64_t first_of(int64_t a, int64_t b)
{
    return a == 0 || (b != 0 && b < a) ? b : a;
}

/* Folds src into to: the higher peak (the earlier time on a tie), the
 * widest denial span, the latest check. */
static void merge_marks(struct usage_marks *to, const struct usage_marks *src)
{
    if (src->peak_pct > to->peak_pct) {
        to->peak_pct = src->peak_pct;
        to->peak_ms = src->peak_ms;
    } else if (src->peak_pct > 0 && src->peak_pct == to->peak_pct) {
        to->peak_ms = first_of(to->peak_ms, src->peak_ms);
    }
    to->deny_first_ms = first_of(to->deny_first_ms, src->deny_first_ms);
    if (src->deny_last_ms > to->deny_last_ms)
        to->deny_last_ms = src->deny_last_ms;
    if (src->last_ms > to->last_ms)
        to->last_ms = src->last_ms;
}

void usage_agg_add_check(struct usage_agg *a, const struct journal_rec *rec)
{
    struct usage_bucket *b = lookup(a, rec->key_id, rec->key_len, rec->endpoint,
                                    rec->endpoint_len, minute_of_ms(rec->ts_ms));
    struct usage_marks m = {.peak_pct = rec->peak_pct,
                            .peak_ms = rec->peak_pct ? rec->ts_ms : 0,
                            .last_ms = rec->ts_ms};
    switch (rec->outcome) {
    case USAGE_ALLOWED:
        b->n.allowed++;
        b->n.allowed_cost += rec->cost;
        break;
    case USAGE_RATE_LIMITED:
        b->n.rate_limited++;
        m.deny_first_ms = m.deny_last_ms = rec->ts_ms;
        break;
    case USAGE_QUOTA_EXCEEDED:
        b->n.quota_exceeded++;
        break;
    default:
        b->n.denied_other++;
        break;
    }
    merge_marks(&b->m, &m);
}

static void add_counts(struct usage_counts *to, const struct usage_counts *n)
{
    to->allowed += n->allowed;
    to->allowed_cost += n->allowed_cost;
    to->rate_limited += n->rate_limited;
    to->quota_exceeded += n->quota_exceeded;
    to->denied_other += n->denied_other;
}

void usage_agg_add(struct usage_agg *a, const char *key_id, const char *endpoint, int64_t minute_s,
                   const struct usage_counts *n)
{
    add_counts(&lookup(a, key_id, strlen(key_id), endpoint, strlen(endpoint), minute_s)->n, n);
}

void usage_agg_add_event(struct usage_agg *a, const struct usage_event *ev)
{
    struct usage_bucket *b = lookup(a, ev->key_id, strlen(ev->key_id), ev->endpoint,
                                    strlen(ev->endpoint), minute_of_ms(ev->ts_ms));
    b->rt.reported++;
    b->rt.errors += ev->status >= 500;
    b->rt.rt_sum_us += ev->response_us;
    if (ev->response_us > b->rt.rt_max_us)
        b->rt.rt_max_us = ev->response_us;
    if (!b->rt.hist)
        b->rt.hist = xcalloc(HIST_BUCKETS, sizeof *b->rt.hist);
    b->rt.hist[hist_bucket(ev->response_us)]++;
}

void usage_agg_merge(struct usage_agg *a, const struct usage_bucket *src)
{
    struct usage_bucket *b = lookup(a, src->key_id, strlen(src->key_id), src->endpoint,
                                    strlen(src->endpoint), src->minute_s);
    add_counts(&b->n, &src->n);
    merge_marks(&b->m, &src->m);
    b->rt.reported += src->rt.reported;
    b->rt.errors += src->rt.errors;
    b->rt.rt_sum_us += src->rt.rt_sum_us;
    if (src->rt.rt_max_us > b->rt.rt_max_us)
        b->rt.rt_max_us = src->rt.rt_max_us;
    if (src->rt.hist) {
        if (!b->rt.hist)
            b->rt.hist = xcalloc(HIST_BUCKETS, sizeof *b->rt.hist);
        for (int i = 0; i < HIST_BUCKETS; i++)
            b->rt.hist[i] += src->rt.hist[i];
    }
}

/* ---- building ---- */

/* ",<v>" after the previous member of an array. */
static void sb_int(struct strbuf *s, int64_t v)
{
    strbuf_putc(s, ',');
    strbuf_int(s, v);
}

/* Length of the valid UTF-8 sequence starting s[0] (non-ASCII), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    size_t k = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    return k && k <= left && utf8_valid((const char *)s, k) ? k : 0;
}

/* Appends s as a JSON string; see usage_msg_build for the '?'. */
static void sb_str(struct strbuf *s, const char *str)
{
    const unsigned char *u = (const unsigned char *)str;
    size_t n = strlen(str);
    strbuf_reserve(s, n * 6 + 2);
    char *o = s->p + s->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            o += snprintf(o, 7, "\\u%04x", c);
        } else if (c < 0x80) {
            *o++ = (char)c;
        } else {
            size_t k = utf8_seq(u + i, n - i);
            if (k == 0) {
                *o++ = '?';
            } else {
                memcpy(o, u + i, k);
                o += k;
                i += k - 1;
            }
        }
    }
    *o++ = '"';
    *o = '\0';
    s->len = (size_t)(o - s->p);
}

void usage_agg_add_credit(struct usage_agg *credits, const struct journal_rec *rec)
{
    if (rec->outcome != USAGE_ALLOWED || !rec->has_credits)
        return;
    /* The UTC day of the check names its refill interval (every interval
     * starts at a midnight); it rides in the bucket's endpoint slot. */
    char day[24];
    int n = snprintf(day, sizeof day, "%lld",
                     (long long)(rec->ts_ms > 0 ? rec->ts_ms / 86400000 : 0));
    lookup(credits, rec->key_id, rec->key_len, day, (size_t)n, rec->credit_version)
        ->n.allowed_cost += rec->cost;
}

char *usage_msg_build(const char *batch_id, const struct usage_agg *a,
                      const struct usage_event *events, size_t nevents,
                      const struct usage_agg *credits, size_t *len)
{
    struct strbuf s = {0};
    strbuf_reserve(&s, 64 + (a ? a->n * 64 : 0) + nevents * 96);
    strbuf_put(&s, "{\"v\":1,\"batch\":", 15);
    sb_str(&s, batch_id);
    strbuf_put(&s, ",\"checks\":[", 11);
    for (size_t i = 0; a && i < a->n; i++) {
        const struct usage_bucket *b = &a->b[i];
        strbuf_put(&s, i ? ",[" : "[", i ? 2 : 1);
        sb_str(&s, b->key_id);
        strbuf_put(&s, ",", 1);
        sb_str(&s, b->endpoint);
        sb_int(&s, b->minute_s);
        sb_int(&s, b->n.allowed);
        sb_int(&s, b->n.allowed_cost);
        sb_int(&s, b->n.rate_limited);
        sb_int(&s, b->n.quota_exceeded);
        sb_int(&s, b->n.denied_other);
        const struct usage_marks *m = &b->m;
        if (m->peak_pct || m->peak_ms || m->deny_first_ms || m->deny_last_ms || m->last_ms) {
            sb_int(&s, m->peak_pct);
            sb_int(&s, m->peak_ms);
            sb_int(&s, m->deny_first_ms);
            sb_int(&s, m->deny_last_ms);
            sb_int(&s, m->last_ms);
        }
        strbuf_put(&s, "]", 1);
    }
    strbuf_put(&s, "],\"events\":[", 12);
    for (size_t i = 0; i < nevents; i++) {
        const struct usage_event *e = &events[i];
        strbuf_put(&s, i ? ",[" : "[", i ? 2 : 1);
        sb_str(&s, e->id);
        strbuf_put(&s, ",", 1);
        sb_str(&s, e->key_id);
        strbuf_put(&s, ",", 1);
        sb_str(&s, e->endpoint);
        sb_int(&s, e->status);
        sb_int(&s, e->response_us);
        sb_int(&s, e->ts_ms);
        strbuf_put(&s, "]", 1);
    }
    strbuf_put(&s, "]", 1);
    for (size_t i = 0; credits && i < credits->n; i++) { /* key, version, cost, day */
        strbuf_put(&s, i ? ",[" : ",\"credits\":[[", i ? 2 : 13);
        sb_str(&s, credits->b[i].key_id);
        sb_int(&s, credits->b[i].minute_s);
        sb_int(&s, credits->b[i].n.allowed_cost);
        sb_int(&s, strtoll(credits->b[i].endpoint, NULL, 10));
        strbuf_put(&s, "]", 1);
    }
    strbuf_put(&s, credits && credits->n ? "]}" : "}", credits && credits->n ? 2 : 1);
    *len = s.len;
    return s.p;
}
