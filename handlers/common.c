#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "checker.h"
#include "dispatch.h"
#include "handlers.h"

void handlers_register(struct router *rt)
{
    router_add(rt, health_routes, health_routes_len);
    router_add(rt, admin_tokens_routes, admin_tokens_routes_len);
    router_add(rt, tiers_routes, tiers_routes_len);
    router_add(rt, keys_routes, keys_routes_len);
    router_add(rt, check_routes, check_routes_len);
    router_add(rt, audit_routes, audit_routes_len);
    router_add(rt, usage_routes, usage_routes_len);
    router_add(rt, events_routes, events_routes_len);
    router_add(rt, billing_routes, billing_routes_len);
    router_add(rt, billing_hooks_routes, billing_hooks_routes_len);
    router_add(rt, alerts_routes, alerts_routes_len);
    router_add(rt, owners_routes, owners_routes_len);
    router_add(rt, analytics_routes, analytics_routes_len);
}

struct pg_conn *db_or_reply(struct http_req *r)
{
    struct api_error e;
    struct pg_conn *c = pg_acquire(r->app->pg, &e);
    if (!c)
        http_reply_error(r, &e);
    return c;
}

void db_release(struct http_req *r, struct pg_conn *c)
{
    pg_release(r->app->pg, c);
}

json_object *body_or_reply(struct http_req *r, const struct jx_field *fields, size_t n)
{
    struct api_error e;
    json_object *o = http_json_body(r, &e);
    if (o && jsonx_check(o, fields, n, "", &e) != 0) {
        json_object_put(o);
        o = NULL;
    }
    if (!o)
        http_reply_error(r, &e);
    return o;
}

static int parse_cursor(const char *s, struct page *p)
{
    const char *dot = strchr(s, '.');
    int64_t us;
    if (!dot || (size_t)(dot - s) >= sizeof p->cursor_us || !dot[1] ||
        strlen(dot + 1) >= sizeof p->cursor_id)
        return -1;
    memcpy(p->cursor_us, s, (size_t)(dot - s));
    p->cursor_us[dot - s] = '\0';
    if (parse_int64(p->cursor_us, 0, INT64_MAX, &us) != 0)
        return -1;
    strlcpy_tg(p->cursor_id, dot + 1, sizeof p->cursor_id);
    p->has_cursor = true;
    return 0;
}

int page_or_reply(struct http_req *r, struct page *p)
{
    struct api_error e;
    memset(p, 0, sizeof *p);
    p->limit = 100;
    const char *l = http_query(r, "limit"), *c = http_query(r, "cursor");
    if (l && parse_int64(l, 1, 1000, &p->limit) != 0) {
        api_error_set(&e, ERR_INVALID_ARGUMENT, "limit", "limit must be an integer from 1 to 1000.");
        http_reply_error(r, &e);
        return -1;
    }
    if (c && parse_cursor(c, p) != 0) {
        api_error_set(&e, ERR_INVALID_ARGUMENT, "cursor", "cursor is not one this API issued.");
        http_reply_error(r, &e);
        return -1;
    }
    snprintf(p->limit_plus_one, sizeof p->limit_plus_one, "%lld", (long long)p->limit + 1);
    return 0;
}

json_object *json_from_db(const char *text)
{
    json_object *o = json_tokener_parse(text);
    return o ? o : json_object_new_object();
}

void reply_list(struct http_req *r, struct pg_res *res, const struct page *p,
                void (*render)(struct http_req *r, json_object *item, void *arg), void *arg)
{
    json_object *data = json_object_new_array();
    int n = pg_nrows(res);
    int shown = n > p->limit ? (int)p->limit : n;
    for (int i = 0; i < shown; i++) {
        json_object *item = json_from_db(pg_val(res, i, 0));
        if (render)
            render(r, item, arg);
        json_object_array_add(data, item);
    }
    json_object *body = json_object_new_object();
    json_object_object_add(body, "data", data);
    json_object_object_add(body, "next_cursor",
                           n > shown ? json_object_new_string(pg_val(res, shown - 1, 1)) : NULL);
    http_reply(r, 200, body, NULL);
}

void reply_deliveries(struct http_req *r, const char *exists_sql, int n, const char *const *p,
                      const char *missing, const char *list_sql)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    struct pg_res *res = pg_query(c, exists_sql, n, p, &e);
    int found = res ? pg_nrows(res) : -1;
    pg_res_free(res);
    db_release(r, c);
    if (found <= 0) {
        if (found == 0)
            api_error_set(&e, ERR_NOT_FOUND, NULL, "%s", missing);
        http_reply_error(r, &e);
        return;
    }
    const char *filters[] = {r->params[0]};
    reply_paged(r, NULL, list_sql, 1, filters, NULL, NULL);
}

void reply_deleted(struct http_req *r, const char *sql, int n, const char *const *p,
                   const char *missing, const char *action, const char *type)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    struct pg_res *res = NULL;
    if (pg_begin(c, &e) != 0 || !(res = pg_query(c, sql, n, p, &e)))
        goto fail;
    if (pg_nrows(res) == 0) {
        api_error_set(&e, ERR_NOT_FOUND, NULL, "%s", missing);
        goto fail;
    }
    if (audit_or_fail(r, c, action, type, r->params[0], pg_val(res, 0, 0), &e) != 0 ||
        pg_commit(c, &e) != 0)
        goto fail;
    pg_res_free(res);
    db_release(r, c);
    http_reply(r, 204, NULL, NULL);
    return;
fail:
    pg_res_free(res);
    pg_rollback(c);
    db_release(r, c);
    http_reply_error(r, &e);
}

void reply_paged(struct http_req *r, const char *const *allowed, const char *sql, int nfilters,
                 const char *const *filters,
                 void (*render)(struct http_req *r, json_object *item, void *arg), void *arg)
{
    struct api_error e;
    struct page pg;
    /* "limit" and "cursor", then the route's own filters. */
    const char *names[16] = {"limit", "cursor"};
    size_t n = 2;
    for (const char *const *a = allowed; a && *a && n < TG_ARRAY_LEN(names) - 1; a++)
        names[n++] = *a;
    names[n] = NULL;
    if (http_query_allow(r, names, &e) != 0) {
        http_reply_error(r, &e);
        return;
    }
    if (page_or_reply(r, &pg) != 0)
        return;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[16];
    int np = 0;
    for (int i = 0; i < nfilters && np < 13; i++)
        p[np++] = filters[i];
    p[np++] = pg.has_cursor ? pg.cursor_us : NULL;
    p[np++] = pg.cursor_id;
    p[np++] = pg.limit_plus_one;
    struct pg_res *res = pg_query(c, sql, np, p, &e);
    db_release(r, c);
    if (!res) {
        http_reply_error(r, &e);
        return;
    }
    reply_list(r, res, &pg, render, arg);
    pg_res_free(res);
}

int owner_named_or_fail(const struct http_req *r, const char *owner_id, struct api_error *e)
{
    if (!owner_id || auth_sees_owner(&r->who, owner_id))
        return 0;
    api_error_set(e, ERR_FORBIDDEN, "owner_id", "This token serves another owner_id.");
    return -1;
}

int owner_body_or_fail(const struct http_req *r, json_object *body, const char *const *denied,
                       struct api_error *e)
{
    if (!auth_owner_scope(&r->who))
        return 0;
    for (const char *const *d = denied; d && *d; d++) {
        if (jsonx_has(body, *d)) {
            api_error_set(e, ERR_FORBIDDEN, *d, "An owner token may not set %s.", *d);
            return -1;
        }
    }
    json_object *owner = jsonx_get(body, "owner_id");
    return owner_named_or_fail(r, owner ? json_object_get_string(owner) : NULL, e);
}

int owner_filter_or_reply(struct http_req *r, const char **owner)
{
    struct api_error e;
    const char *scope = auth_owner_scope(&r->who), *q = http_query(r, "owner_id");
    if (owner_named_or_fail(r, q, &e) != 0) {
        http_reply_error(r, &e);
        return -1;
    }
    *owner = scope ? scope : q;
    return 0;
}

int tier_exists(struct pg_conn *c, const char *tier, struct api_error *e)
{
    const char *p[] = {tier};
    struct pg_res *res = pg_query(c, "SELECT 1 FROM tiers WHERE name = $1", 1, p, e);
    if (!res)
        return -1;
    int n = pg_nrows(res);
    pg_res_free(res);
    if (n == 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "tier", "There is no tier named '%s'.", tier);
        return -1;
    }
    return 0;
}

const char *json_member_text(json_object *body, const char *name)
{
    json_object *v = jsonx_get(body, name);
    return v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : NULL;
}

int audit_or_fail(struct http_req *r, struct pg_conn *c, const char *action, const char *type,
                  const char *id, const char *changes, struct api_error *e)
{
    struct audit_entry a = {
        .actor = r->who.id,
        .role = r->who.role,
        .request_id = r->request_id,
        .ip = r->remote_addr,
        .action = action,
        .resource_type = type,
        .resource_id = id,
        .changes = changes,
    };
    return audit_append(c, &r->app->cfg, &a, e);
}

/* A check in flight from the event loop. */
struct loop_check {
    struct check_async c;
    struct http_req *r;
    int64_t t0;
    check_answer_fn answer;
};

static void loop_check_done(struct check_async *c, enum check_step step)
{
    struct loop_check *lc = c->arg;
    struct http_req *r = lc->r;
    if (step == CHECK_DONE) {
        lc->answer(r, &c->o, lc->t0);
        check_outcome_fini(&c->o);
        dispatch_finish(r);
    } else {
        dispatch_defer(r);
    }
    free(lc);
}

enum route_fast check_in_loop(struct http_req *r, const char *key, size_t keylen,
                              const char *endpoint, int64_t cost, check_answer_fn answer)
{
    struct loop_check *lc = xcalloc(1, sizeof *lc);
    lc->r = r;
    lc->t0 = mono_ns();
    lc->answer = answer;
    lc->c.done = loop_check_done;
    lc->c.arg = lc;
    enum check_step step = check_start(r->app, &lc->c, key, keylen, endpoint, cost);
    if (step == CHECK_SENT)
        return FAST_PENDING;
    if (step == CHECK_DONE) {
        answer(r, &lc->c.o, lc->t0);
        check_outcome_fini(&lc->c.o);
    }
    free(lc);
    return step == CHECK_DONE ? FAST_ANSWERED : FAST_DEFER;
}
