/* usagemsg_parse: usage_msg_parse and usage_msg_fini (usagemsg.h): the
 * strict reading of a batch message by billingd. */
#include "usagemsg.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The array member name, or NULL (count 0) when absent; every row an array
 * of width members, or of alt when alt is not 0. */
static int get_list(json_object *root, const char *name, json_object **out, size_t *count,
                    size_t width, size_t alt, struct api_error *err)
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
        if (w != width && (alt == 0 || w != alt)) {
            if (alt)
                api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "%s[%zu]: not an array of %zu or %zu items", name, i, width, alt);
            else
                api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "%s[%zu]: not an array of %zu items", name, i, width);
            return -1;
        }
    }
    *out = v;
    *count = n;
    return 0;
}

#define CHECK_ROW 8
#define CHECK_ROW_MARKS 13

/* A time of the row's minute, or 0 ("unknown") when may_be_zero. */
static bool in_minute(int64_t ms, int64_t minute_s, bool may_be_zero)
{
    if (ms == 0)
        return may_be_zero;
    return ms >= minute_s * 1000 && ms < minute_s * 1000 + 60000;
}

/* The five marks of a row of CHECK_ROW_MARKS (usagemsg.h), b's counts read. */
static int parse_marks(json_object *row, size_t i, struct usage_bucket *b, struct api_error *err)
{
    struct usage_marks *m = &b->m;
    int64_t *f[5] = {&m->peak_pct, &m->peak_ms, &m->deny_first_ms, &m->deny_last_ms, &m->last_ms};
    for (size_t k = 0; k < 5; k++)
        if (get_int(json_object_array_get_idx(row, k + CHECK_ROW), 0,
                    k == 0 ? 100 : USAGE_TS_MS_MAX, f[k], "checks", i, k + CHECK_ROW, err) != 0)
            return -1;
    const char *bad = NULL;
    if (!in_minute(m->peak_ms, b->minute_s, true) || (m->peak_pct == 0) != (m->peak_ms == 0))
        bad = "peak time not in the minute, or without a peak";
    else if (!in_minute(m->deny_first_ms, b->minute_s, true) ||
             !in_minute(m->deny_last_ms, b->minute_s, true) ||
             (b->n.rate_limited == 0) != (m->deny_first_ms == 0) ||
             (b->n.rate_limited == 0) != (m->deny_last_ms == 0) ||
             m->deny_first_ms > m->deny_last_ms)
        bad = "denial times not in the minute, out of order or without denials";
    else if (!in_minute(m->last_ms, b->minute_s, true))
        bad = "last check not in the minute";
    if (bad) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "checks[%zu]: %s", i, bad);
        return -1;
    }
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
    if (json_object_array_length(row) == CHECK_ROW_MARKS)
        return parse_marks(row, i, b, err);
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
    /* The UTC day of the checks (their refill interval); -1 from an older
     * publisher. */
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
        get_list(root, "checks", &checks, &out->nbuckets, CHECK_ROW, CHECK_ROW_MARKS, err) != 0 ||
        get_list(root, "events", &events, &out->nevents, 6, 0, err) != 0 ||
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
