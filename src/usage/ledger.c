/* ledger: see ledger.h.  The rows travel as one JSON parameter each
 * (jsonb_to_recordset) and are summed by PostgreSQL, so a batch costs two
 * statements whatever its size. */
#include "ledger.h"

#include <string.h>

static void put_row(struct strbuf *b, const char *key, const char *name, int64_t v, int64_t c,
                    int64_t day)
{
    strbuf_put(b, b->len > 1 ? ",{\"k\":" : "{\"k\":", b->len > 1 ? 6 : 5);
    strbuf_json_str(b, key);
    strbuf_printf(b, ",\"%s\":", name);
    strbuf_int(b, v);
    strbuf_put(b, ",\"c\":", 5);
    strbuf_int(b, c);
    if (day >= 0) {
        strbuf_put(b, ",\"d\":", 5);
        strbuf_int(b, day);
    }
    strbuf_putc(b, '}');
}

static void quota_row(const struct usage_bucket *k, void *arg)
{
    if (k->n.allowed_cost > 0)
        put_row(arg, k->key_id, "m", utc_month(k->minute_s * 1000), k->n.allowed_cost, -1);
}

void ledger_quota_json(const struct usage_agg *agg, struct strbuf *b)
{
    strbuf_reset(b);
    strbuf_putc(b, '[');
    usage_agg_each(agg, quota_row, b);
    strbuf_putc(b, ']');
}

void ledger_credits_json(const struct usage_msg *msgs, size_t n, const bool *apply,
                         struct strbuf *b)
{
    strbuf_reset(b);
    strbuf_putc(b, '[');
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; apply[i] && k < msgs[i].ncredits; k++)
            if (msgs[i].credits[k].cost > 0)
                put_row(b, msgs[i].credits[k].key_id, "r", msgs[i].credits[k].version,
                        msgs[i].credits[k].cost, msgs[i].credits[k].day);
    strbuf_putc(b, ']');
}

/* Erased keys (sql/019_privacy.sql) record nothing any more. */
#define NOT_ERASED "NOT EXISTS (SELECT 1 FROM erased_keys e WHERE e.key_id = v.k)"

static const char QUOTA[] =
    "INSERT INTO key_quota_use AS q (key_id, month, used) "
    "SELECT k, m, sum(c) FROM jsonb_to_recordset($1::jsonb) AS v(k text, m integer, c bigint) "
    "WHERE " NOT_ERASED " GROUP BY k, m ORDER BY k, m "
    "ON CONFLICT (key_id, month) DO UPDATE SET used = q.used + EXCLUDED.used";

/* A balance is (version, refill interval): the interval is the one of the
 * key's refill holding the checks' day (0 without refill; a refill that
 * changed since bumped the version, so the key's current one is right for
 * every row that still counts).  Per key only the latest balance of the set
 * counts (the others were replaced, by the API or by a refill), and it
 * replaces an older one in the table. */
static const char CREDITS[] =
    "INSERT INTO key_credit_use AS u (key_id, rv, ri, used) "
    "SELECT DISTINCT ON (k) k, r, i, s FROM (SELECT v.k, v.r, "
    "tg_refill_start(x.refill, coalesce(to_timestamp(v.d * 86400), now())) AS i, "
    "sum(v.c) AS s "
    "FROM jsonb_to_recordset($1::jsonb) AS v(k text, r bigint, c bigint, d bigint) "
    "LEFT JOIN keys x ON x.id = v.k WHERE " NOT_ERASED " GROUP BY 1, 2, 3) g "
    "ORDER BY k, r DESC, i DESC "
    "ON CONFLICT (key_id) DO UPDATE SET "
    "used = CASE WHEN (EXCLUDED.rv, EXCLUDED.ri) > (u.rv, u.ri) THEN EXCLUDED.used "
    "WHEN (EXCLUDED.rv, EXCLUDED.ri) = (u.rv, u.ri) THEN u.used + EXCLUDED.used ELSE u.used END, "
    "ri = CASE WHEN (EXCLUDED.rv, EXCLUDED.ri) > (u.rv, u.ri) THEN EXCLUDED.ri ELSE u.ri END, "
    "rv = greatest(u.rv, EXCLUDED.rv)";

static int run(struct pg_conn *conn, const char *sql, const struct strbuf *b,
               struct api_error *e)
{
    if (b->len <= 2) /* "[]": nothing to record */
        return 0;
    const char *p[] = {b->p};
    struct pg_res *r = pg_query(conn, sql, 1, p, e);
    if (!r)
        return -1;
    pg_res_free(r);
    return 0;
}

int ledger_record(struct pg_conn *conn, const struct usage_agg *agg,
                  const struct usage_msg *msgs, size_t n, const bool *apply, struct strbuf *b1,
                  struct strbuf *b2, struct api_error *e)
{
    ledger_quota_json(agg, b1);
    ledger_credits_json(msgs, n, apply, b2);
    if (run(conn, QUOTA, b1, e) != 0)
        return -1;
    return run(conn, CREDITS, b2, e);
}
