/* Usage events: POST /v1/usage/events reports completed upstream requests
 * (status and response time) for response-time tracking.  The batch is
 * validated whole, its keys checked in one query, then handed to the
 * publisher thread, which answers once the broker has confirmed it; billingd
 * counts each event id once, so a client may retry a failed batch. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "common.h"
#include "endpoint.h"
#include "handlers.h"
#include "usagemsg.h"
#include "usagepub.h"

#define EVENTS_MAX 1000
#define EVENTS_MAX_BODY (1024 * 1024)
#define EVENT_RESPONSE_MS_MAX 3600000
#define EVENT_PAST_MS (INT64_C(35) * 86400 * 1000)
#define EVENT_FUTURE_MS (INT64_C(5) * 60 * 1000)
#define EVENT_KEY_ID_MAX 128
#define PUBLISH_TIMEOUT_MS 5000

/* Checks event i (obj) and fills ev with borrowed strings (copied later).
 * Returns 0 or -1 with e naming events[i].<field>. */
static int event_parse(json_object *obj, size_t i, int64_t now, struct usage_event *ev,
                       struct api_error *e)
{
    static const struct jx_field fields[] = {
        {"id", JX_STRING, true, false},       {"key_id", JX_STRING, true, false},
        {"endpoint", JX_STRING, false, false}, {"status", JX_INT, true, false},
        {"response_ms", JX_NUMBER, true, false}, {"ts", JX_STRING, false, false},
    };
    char prefix[32], f[64];
    snprintf(prefix, sizeof prefix, "events[%zu]", i);
    if (jsonx_check(obj, fields, TG_ARRAY_LEN(fields), prefix, e) != 0)
        return -1;
    json_object *v = jsonx_get(obj, "id");
    snprintf(f, sizeof f, "%s.id", prefix);
    if (jsonx_string_len(v, f, 1, USAGE_EVENT_ID_MAX, true, e) != 0)
        return -1;
    ev->id = (char *)json_object_get_string(v);

    v = jsonx_get(obj, "key_id");
    snprintf(f, sizeof f, "%s.key_id", prefix);
    size_t len = (size_t)json_object_get_string_len(v);
    if (len < 1 || len > EVENT_KEY_ID_MAX || has_control_chars(json_object_get_string(v), len)) {
        api_error_set(e, ERR_INVALID_ARGUMENT, f, "%s names no existing key.", f);
        return -1;
    }
    ev->key_id = (char *)json_object_get_string(v);

    ev->endpoint = (char *)"*";
    if ((v = jsonx_get(obj, "endpoint"))) {
        snprintf(f, sizeof f, "%s.endpoint", prefix);
        const char *text = json_object_get_string(v);
        char normal[ENDPOINT_MAX + 1];
        enum endpoint_status st = strcmp(text, "*") == 0 ? ENDPOINT_OK : endpoint_normalize(text, normal);
        if (st == ENDPOINT_OK && strcmp(text, "*") != 0 && strlen(normal) > ENDPOINT_PATTERN_MAX)
            st = ENDPOINT_TOO_LONG;
        if (st != ENDPOINT_OK) {
            api_error_set(e, ERR_INVALID_ARGUMENT, f,
                          "%s must be \"*\" or \"METHOD /path\" (at most %d bytes once "
                          "normalised): %s.",
                          f, ENDPOINT_PATTERN_MAX, endpoint_status_text(st));
            return -1;
        }
        if (strcmp(text, "*") != 0 && strcmp(text, normal) != 0) {
            /* counted under its normal form, like a check's */
            json_object_object_add(obj, "endpoint", json_object_new_string(normal));
            v = jsonx_get(obj, "endpoint");
        }
        ev->endpoint = (char *)json_object_get_string(v);
    }

    snprintf(f, sizeof f, "%s.status", prefix);
    if (jsonx_int_range(jsonx_get(obj, "status"), f, 100, 599, e) != 0)
        return -1;
    ev->status = (int)json_object_get_int64(jsonx_get(obj, "status"));

    /* Integers exactly; fractions rounded to the microsecond.  The lexer
     * already refused NaN and infinities, but a huge exponent still
     * overflows to infinity: the range check catches it. */
    v = jsonx_get(obj, "response_ms");
    snprintf(f, sizeof f, "%s.response_ms", prefix);
    if (json_object_is_type(v, json_type_int)) {
        int64_t ms = json_object_get_int64(v);
        if (ms < 0 || ms > EVENT_RESPONSE_MS_MAX)
            goto bad_ms;
        ev->response_us = ms * 1000;
    } else {
        double ms = json_object_get_double(v);
        if (!(ms >= 0.0 && ms <= (double)EVENT_RESPONSE_MS_MAX))
            goto bad_ms;
        ev->response_us = (int64_t)(ms * 1000.0 + 0.5);
    }

    ev->ts_ms = now;
    if ((v = jsonx_get(obj, "ts"))) {
        snprintf(f, sizeof f, "%s.ts", prefix);
        if (parse_time_ms(json_object_get_string(v), &ev->ts_ms) != 0) {
            api_error_set(e, ERR_INVALID_ARGUMENT, f,
                          "%s must be an RFC 3339 time such as 2026-11-22T10:00:00.000Z.", f);
            return -1;
        }
        if (ev->ts_ms < now - EVENT_PAST_MS || ev->ts_ms > now + EVENT_FUTURE_MS) {
            api_error_set(e, ERR_INVALID_ARGUMENT, f,
                          "%s must be within the last 35 days and at most 5 minutes ahead.", f);
            return -1;
        }
    }
    return 0;
bad_ms:
    api_error_set(e, ERR_INVALID_ARGUMENT, f, "%s must be a number from 0 to %d.", f,
                  EVENT_RESPONSE_MS_MAX);
    return -1;
}

/* Index of the first of events[0..n) whose key does not exist, -1 when all
 * do, -2 with e filled when the database could not say.  One query for the
 * whole batch. */
static long first_unknown_key(struct http_req *r, const struct usage_event *events, size_t n,
                              struct api_error *e)
{
    if (n == 0)
        return -1;
    json_object *ids = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(ids, json_object_new_string(events[i].key_id));
    const char *p[] = {json_object_to_json_string_ext(ids, JSON_C_TO_STRING_PLAIN)};
    long rc = -2;
    struct pg_conn *c = pg_acquire(r->app->pg, e);
    if (c) {
        struct pg_res *res = pg_query(
            c,
            "SELECT min(t.i) - 1 FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY t(k, i)"
            " WHERE NOT EXISTS (SELECT 1 FROM keys WHERE id = t.k)",
            1, p, e);
        pg_release(r->app->pg, c);
        if (res) {
            rc = pg_isnull(res, 0, 0) ? -1 : (long)pg_int(res, 0, 0);
            pg_res_free(res);
        }
    }
    json_object_put(ids);
    return rc;
}

static void events_post(struct http_req *r)
{
    static const struct jx_field fields[] = {{"events", JX_ARRAY, true, false}};
    struct api_error e, bad;
    struct usage_event *events = NULL;
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    json_object *arr = jsonx_get(body, "events");
    size_t n = json_object_array_length(arr), valid = 0;
    if (n < 1 || n > EVENTS_MAX) {
        api_error_set(&e, ERR_INVALID_ARGUMENT, "events",
                      "events must hold 1 to %d events (it holds %zu).", EVENTS_MAX, n);
        goto fail;
    }
    events = xcalloc(n, sizeof *events);
    int64_t now = now_ms();
    while (valid < n && event_parse(json_object_array_get_idx(arr, valid), valid, now,
                                    &events[valid], &bad) == 0)
        valid++;
    /* The first invalid event names the error: an unknown key before the
     * first malformed event comes first. */
    long unknown = first_unknown_key(r, events, valid, &e);
    if (unknown == -2)
        goto fail;
    if (unknown >= 0) {
        char f[64];
        snprintf(f, sizeof f, "events[%ld].key_id", unknown);
        api_error_set(&e, ERR_INVALID_ARGUMENT, f, "%s names no existing key.", f);
        goto fail;
    }
    if (valid < n) {
        e = bad;
        goto fail;
    }
    struct api_error err;
    if (!r->app->pub || usagepub_send_events(r->app->pub, events, n, PUBLISH_TIMEOUT_MS, &err) != 0) {
        api_error_set(&e, ERR_UNAVAILABLE, NULL,
                      "The usage pipeline is unavailable; nothing was recorded. Retry later:"
                      " event ids make the retry safe.");
        goto fail;
    }
    json_object *ok = json_object_new_object();
    json_object_object_add(ok, "accepted", json_object_new_int64((int64_t)n));
    http_reply(r, 202, ok, NULL);
    goto out;
fail:
    http_reply_error(r, &e);
out:
    free(events);
    json_object_put(body);
}

const struct route events_routes[] = {
    {"POST", "/v1/usage/events", ROLE_SERVICE | ROLE_ADMIN, events_post, EVENTS_MAX_BODY, NULL},
};
const size_t events_routes_len = TG_ARRAY_LEN(events_routes);
