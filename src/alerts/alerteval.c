/* alerteval: see alerteval.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerteval.h"

/* Key ids are checked by usagemsg (JOURNAL_KEY_MAX, valid UTF-8); they are
 * written as JSON strings with the characters JSON requires escaped. */
static void put_str(struct strbuf *b, const char *s)
{
    strbuf_putc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            strbuf_putc(b, '\\');
            strbuf_putc(b, (char)c);
        } else if (c < 0x20) {
            strbuf_printf(b, "\\u%04x", c);
        } else {
            strbuf_putc(b, (char)c);
        }
    }
    strbuf_putc(b, '"');
}

static int64_t month_of(int64_t minute_s)
{
    time_t t = (time_t)minute_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    return (int64_t)(tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

/* Starts the next element of an array begun with '['. */
static void put_elem(struct strbuf *b, const struct usage_bucket *k)
{
    if (b->len > 1)
        strbuf_putc(b, ',');
    strbuf_put(b, "{\"k\":", 5);
    put_str(b, k->key_id);
}

static void put_quota(struct strbuf *b, const struct usage_bucket *k)
{
    put_elem(b, k);
    strbuf_printf(b, ",\"m\":%lld,\"c\":%lld,\"ts\":%lld}", (long long)month_of(k->minute_s),
                  (long long)k->n.allowed_cost, (long long)k->m.last_ms);
}

bool alerteval_json(const struct usage_msg *m, struct alerteval_docs *d)
{
    struct strbuf *docs[] = {&d->denials, &d->peaks};
    for (size_t i = 0; i < 2; i++) {
        strbuf_reset(docs[i]);
        strbuf_putc(docs[i], '[');
    }
    bool any = false;
    for (size_t i = 0; i < m->nbuckets; i++) {
        const struct usage_bucket *b = &m->buckets[i];
        if (b->n.rate_limited > 0) {
            put_elem(&d->denials, b);
            strbuf_printf(&d->denials, ",\"t\":%lld,\"c\":%lld,\"f\":%lld,\"l\":%lld}",
                          (long long)b->minute_s, (long long)b->n.rate_limited,
                          (long long)b->m.deny_first_ms, (long long)b->m.deny_last_ms);
            any = true;
        }
        if (b->m.peak_pct > 0) {
            put_elem(&d->peaks, b);
            strbuf_printf(&d->peaks, ",\"p\":%lld,\"ts\":%lld}", (long long)b->m.peak_pct,
                          (long long)b->m.peak_ms);
            any = true;
        }
    }
    for (size_t i = 0; i < 2; i++)
        strbuf_putc(docs[i], ']');
    return any;
}

/* Held shared for the evaluation, as ingest does: an erasure (sql/019)
 * waits for it, and it sees the keys an erasure removed. */
#define ERASE_LOCK "(SELECT pg_advisory_xact_lock_shared(tg_erase_lock_id())) l"

void alerteval_docs_fini(struct alerteval_docs *d)
{
    strbuf_fini(&d->denials);
    strbuf_fini(&d->quota);
    strbuf_fini(&d->peaks);
}

int alerteval_run(struct pg_conn *conn, const struct usage_msg *m, struct alerteval_docs *d,
                  int *fired, struct api_error *e)
{
    *fired = 0;
    if (!alerteval_json(m, d))
        return 0; /* nothing in the batch can fire a rule */
    /* quota_used_pct is evaluated after each window (alerteval_after_ingest):
     * the third document stays empty. */
    const char *p[] = {m->batch, d->denials.p, "[]", d->peaks.p};
    struct pg_res *r = pg_query(
        conn, "SELECT tg_alert_eval($1, $2::jsonb, $3::jsonb, $4::jsonb) FROM " ERASE_LOCK, 4, p,
        e);
    if (!r)
        return -1;
    *fired = (int)pg_int(r, 0, 0);
    pg_res_free(r);
    return 0;
}

bool alerteval_quota_json(const struct usage_msg *msgs, size_t n, struct strbuf *b)
{
    strbuf_reset(b);
    strbuf_putc(b, '[');
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < msgs[i].nbuckets; k++)
            if (msgs[i].buckets[k].n.allowed_cost > 0)
                put_quota(b, &msgs[i].buckets[k]);
    strbuf_putc(b, ']');
    return b->len > 2;
}

int alerteval_after_ingest(struct pg_conn *conn, const struct usage_msg *msgs, size_t n,
                           struct strbuf *b, int *fired, struct api_error *e)
{
    *fired = 0;
    if (!alerteval_quota_json(msgs, n, b))
        return 0;
    const char *p[] = {b->p};
    struct pg_res *r =
        pg_query(conn, "SELECT tg_alert_eval_quota($1::jsonb, false) FROM " ERASE_LOCK, 1, p, e);
    if (!r)
        return -1;
    *fired = (int)pg_int(r, 0, 0);
    pg_res_free(r);
    return 0;
}
