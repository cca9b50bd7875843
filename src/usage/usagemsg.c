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

void usage_agg_add_check(struct usage_agg *a, const struct journal_rec *rec)
{
    struct usage_bucket *b = lookup(a, rec->key_id, rec->key_len, rec->endpoint,
                                    rec->endpoint_len, minute_of_ms(rec->ts_ms));
    switch (rec->outcome) {
    case USAGE_ALLOWED:
        b->n.allowed++;
        b->n.allowed_cost += rec->cost;
        break;
    case USAGE_RATE_LIMITED:
        b->n.rate_limited++;
        break;
    case USAGE_QUOTA_EXCEEDED:
        b->n.quota_exceeded++;
        break;
    default:
        b->n.denied_other++;
        break;
    }
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

/* ---- parsing ---- */

/* Where parsed strings are copied: decoded, a JSON string plus its NUL is
 * never longer than its encoding with quotes, so len + 1 bytes hold them all. */
struct area {
    char *p;
    size_t used;
};

static const char *get_str(json_object *v, size_t min, size_t max, struct area *ar,
                           const char *what, size_t i, struct api_error *err)
{
    if (!json_object_is_type(v, json_type_string)) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "%s[%zu]: not a string", what, i);
        return NULL;
    }
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n < min || n > max) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "%s[%zu]: string of %zu bytes (%zu..%zu)", what, i, n, min, max);
        return NULL;
    }
    if (memchr(s, '\0', n) || !utf8_valid(s, n)) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "%s[%zu]: not valid UTF-8 text", what, i);
        return NULL;
    }
    char *o = ar->p + ar->used;
    memcpy(o, s, n);
    o[n] = '\0';
    ar->used += n + 1;
    return o;
}

static int get_int(json_object *v, int64_t min, int64_t max, int64_t *out, const char *what,
                   size_t i, size_t k, struct api_error *err)
{
    if (!json_object_is_type(v, json_type_int)) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "%s[%zu][%zu]: not an integer", what, i, k);
        return -1;
    }
    int64_t x = json_object_get_int64(v);
    /* json-c saturates out-of-range values, which these bounds refuse. */
    if (x < min || x > max) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "%s[%zu][%zu]: %lld out of range", what, i, k, (long long)x);
        return -1;
    }
    *out = x;
    return 0;
}

/* The array member name, or NULL (count 0) when absent. */
static int get_list(json_object *root, const char *name, json_object **out, size_t *count,
                    size_t width, size_t width_max, struct api_error *err)
{
    json_object *v = NULL;
    *out = NULL;
    *count = 0;
    if (!json_object_object_get_ex(root, name, &v))
        return 0;
    if (!json_object_is_type(v, json_type_array)) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "%s: not an array", name);
        return -1;
    }
    size_t n = json_object_array_length(v);
    if (n > USAGE_MSG_MAX_ITEMS) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "%s: more than %d items", name, USAGE_MSG_MAX_ITEMS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *row = json_object_array_get_idx(v, i);
        size_t w = json_object_is_type(row, json_type_array) ? json_object_array_length(row) : 0;
        if (w < width || w > width_max) {
            api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "%s[%zu]: not an array of %zu items", name, i, width);
            return -1;
        }
    }
    *out = v;
    *count = n;
    return 0;
}

static int parse_check(json_object *row, size_t i, struct area *ar, struct usage_bucket *b,
                       struct api_error *err)
{
    memset(b, 0, sizeof *b);
    const char *key = get_str(json_object_array_get_idx(row, 0), 1, JOURNAL_KEY_MAX, ar,
                              "checks", i, err);
    const char *ep = key ? get_str(json_object_array_get_idx(row, 1), 1, JOURNAL_ENDPOINT_MAX, ar,
                                   "checks", i, err)
                         : NULL;
    if (!ep)
        return -1;
    b->key_id = (char *)key;
    b->endpoint = (char *)ep;
    int64_t *f[6] = {&b->minute_s,         &b->n.allowed,        &b->n.allowed_cost,
                     &b->n.rate_limited,   &b->n.quota_exceeded, &b->n.denied_other};
    for (size_t k = 0; k < 6; k++) {
        int64_t max = k == 0 ? USAGE_TS_MS_MAX / 1000 : USAGE_COUNT_MAX;
        if (get_int(json_object_array_get_idx(row, k + 2), 0, max, f[k], "checks", i, k + 2,
                    err) != 0)
            return -1;
    }
    if (b->minute_s % 60 != 0) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "checks[%zu][2]: minute not a multiple of 60", i);
        return -1;
    }
    return 0;
}

static int parse_credit(json_object *row, size_t i, struct area *ar, struct usage_credit *c,
                        struct api_error *err)
{
    memset(c, 0, sizeof *c);
    c->key_id = (char *)get_str(json_object_array_get_idx(row, 0), 1, JOURNAL_KEY_MAX, ar,
                                "credits", i, err);
    if (!c->key_id ||
        get_int(json_object_array_get_idx(row, 1), 0, USAGE_COUNT_MAX, &c->version, "credits",
                i, 1, err) != 0 ||
        get_int(json_object_array_get_idx(row, 2), 0, USAGE_COUNT_MAX, &c->cost, "credits", i,
                2, err) != 0)
        return -1;
    c->day = -1;
    if (json_object_array_length(row) == 4 &&
        get_int(json_object_array_get_idx(row, 3), 0, USAGE_TS_MS_MAX / 86400000, &c->day,
                "credits", i, 3, err) != 0)
        return -1;
    return 0;
}

static int parse_event(json_object *row, size_t i, struct area *ar, struct usage_event *e,
                       struct api_error *err)
{
    memset(e, 0, sizeof *e);
    size_t max[3] = {USAGE_EVENT_ID_MAX_BYTES, JOURNAL_KEY_MAX, JOURNAL_ENDPOINT_MAX};
    char **dst[3] = {&e->id, &e->key_id, &e->endpoint};
    for (size_t k = 0; k < 3; k++) {
        const char *s = get_str(json_object_array_get_idx(row, k), 1, max[k], ar, "events", i, err);
        if (!s)
            return -1;
        *dst[k] = (char *)s;
    }
    int64_t status;
    if (get_int(json_object_array_get_idx(row, 3), 100, 599, &status, "events", i, 3, err) != 0 ||
        get_int(json_object_array_get_idx(row, 4), 0, USAGE_RESPONSE_US_MAX, &e->response_us,
                "events", i, 4, err) != 0 ||
        get_int(json_object_array_get_idx(row, 5), 0, USAGE_TS_MS_MAX, &e->ts_ms, "events", i, 5,
                err) != 0)
        return -1;
    e->status = (int)status;
    return 0;
}

/* The members of the root object: only these, of these types. */
static int check_root(json_object *root, struct usage_msg *out, struct area *ar,
                      struct api_error *err)
{
    if (!json_object_is_type(root, json_type_object)) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "not a JSON object");
        return -1;
    }
    json_object_object_foreach(root, name, val)
    {
        if (strcmp(name, "v") != 0 && strcmp(name, "batch") != 0 && strcmp(name, "checks") != 0 &&
            strcmp(name, "events") != 0 && strcmp(name, "credits") != 0) {
            api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "unknown member \"%.64s\"", name);
            return -1;
        }
        (void)val;
    }
    json_object *v = NULL, *batch = NULL;
    if (!json_object_object_get_ex(root, "v", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) != 1) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "v: must be the integer 1");
        return -1;
    }
    if (!json_object_object_get_ex(root, "batch", &batch)) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "batch: missing");
        return -1;
    }
    const char *id = get_str(batch, 1, USAGE_BATCH_ID_MAX, ar, "batch", 0, err);
    if (!id)
        return -1;
    strlcpy_tg(out->batch, id, sizeof out->batch);
    ar->used = 0; /* the batch id lives in out->batch */
    return 0;
}

/* True when a quote ' appears outside strings: json-c takes it, even in
 * strict mode, as the start of a string; JSON does not. */
static bool single_quoted(const char *s, size_t len)
{
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        if (in_str) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                in_str = false;
        } else if (s[i] == '"') {
            in_str = true;
        } else if (s[i] == '\'') {
            return true;
        }
    }
    return false;
}

int usage_msg_parse(const char *body, size_t len, struct usage_msg *out, struct api_error *err)
{
    memset(out, 0, sizeof *out);
    if (len > USAGE_MSG_MAX_LEN) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "message of %zu bytes (at most %zu)", len, USAGE_MSG_MAX_LEN);
        return -1;
    }
    if (single_quoted(body, len)) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "invalid JSON: single-quoted string");
        return -1;
    }
    int rc = -1;
    struct area ar = {xmalloc(len + 1), 0};
    /* Depth 4: the object, its arrays, their rows and the rows' values. */
    json_tokener *tok = json_tokener_new_ex(4);
    if (!tok) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    size_t end = json_tokener_get_parse_end(tok);
    if (!root || json_tokener_get_error(tok) != json_tokener_success) {
        enum json_tokener_error je = json_tokener_get_error(tok);
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "invalid JSON at byte %zu: %s", end,
                   je == json_tokener_continue ? "truncated" : json_tokener_error_desc(je));
        goto done;
    }
    for (; end < len; end++) {
        if (!strchr(" \t\r\n", body[end]) || body[end] == '\0') {
            api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "trailing bytes after the JSON object");
            goto done;
        }
    }
    json_object *checks, *events, *credits;
    if (check_root(root, out, &ar, err) != 0 ||
        get_list(root, "checks", &checks, &out->nbuckets, 8, 8, err) != 0 ||
        get_list(root, "events", &events, &out->nevents, 6, 6, err) != 0 ||
        get_list(root, "credits", &credits, &out->ncredits, 3, 4, err) != 0)
        goto done;
    out->buckets = xmalloc((out->nbuckets ? out->nbuckets : 1) * sizeof *out->buckets);
    out->events = xmalloc((out->nevents ? out->nevents : 1) * sizeof *out->events);
    out->credits = xmalloc((out->ncredits ? out->ncredits : 1) * sizeof *out->credits);
    for (size_t i = 0; i < out->ncredits; i++)
        if (parse_credit(json_object_array_get_idx(credits, i), i, &ar, &out->credits[i], err) != 0)
            goto done;
    for (size_t i = 0; i < out->nbuckets; i++)
        if (parse_check(json_object_array_get_idx(checks, i), i, &ar, &out->buckets[i], err) != 0)
            goto done;
    for (size_t i = 0; i < out->nevents; i++)
        if (parse_event(json_object_array_get_idx(events, i), i, &ar, &out->events[i], err) != 0)
            goto done;
    out->strings = ar.p;
    ar.p = NULL;
    rc = 0;
done:
    if (rc != 0) {
        free(ar.p);
        usage_msg_fini(out);
    }
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

void usage_msg_fini(struct usage_msg *m)
{
    if (!m)
        return;
    free(m->buckets);
    free(m->events);
    free(m->credits);
    free(m->strings);
    memset(m, 0, sizeof *m);
}
