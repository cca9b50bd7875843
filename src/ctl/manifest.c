#include "manifest.h"

#include <stdio.h>
#include <string.h>

#include "jsonx.h"
#include "pg.h"

const char *const manifest_sections[] = {"migration", "audit", "billing", "counts",
                                         "private_functions"};
const size_t manifest_nsections = TG_ARRAY_LEN(manifest_sections);

/* One statement, so that every figure comes from the caller's snapshot.
 * Billing as tg_billing_records groups it, but with the open periods
 * computed up to the month of $1 rather than of now(), so that a restore
 * checked later in the month, or in the next, computes the same ones:
 * closed periods' stored lines, the stored lines of periods not closed
 * (erased owners'), and the lines computed for every unclosed month from
 * the oldest key's to $1's. */
static const char FIGURES_SQL[] =
    "WITH months AS ("
    "  SELECT to_char(m, 'YYYY-MM') AS p FROM generate_series(tg_billing_first_month(),"
    "   date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC'), interval '1 month') m),"
    " lines AS ("
    "  SELECT l.period, CASE WHEN b.period IS NULL THEN 'open' ELSE 'closed' END AS status,"
    "   l.currency, l.amount_micros"
    "  FROM billing_lines l LEFT JOIN billing_periods b ON b.period = l.period"
    "  UNION ALL"
    "  SELECT o.p, 'open', c.currency, c.amount_micros"
    "  FROM months o CROSS JOIN LATERAL tg_billing_compute(o.p, NULL) c"
    "  WHERE NOT EXISTS (SELECT 1 FROM billing_periods b WHERE b.period = o.p)),"
    " billing AS ("
    "  SELECT period, status, currency, count(*) AS lines,"
    "   sum(amount_micros)::text AS amount_micros"
    "  FROM lines GROUP BY period, status, currency)"
    " SELECT jsonb_build_object("
    "  'migration', (SELECT jsonb_build_object('last', max(name), 'count', count(*))"
    "   FROM schema_migrations),"
    "  'audit', (SELECT jsonb_build_object('seq', seq, 'hash', hash) FROM audit_head),"
    "  'billing', (SELECT coalesce(jsonb_agg(to_jsonb(b)"
    "   ORDER BY b.period, b.status, b.currency COLLATE \"C\"), '[]') FROM billing b),"
    "  'counts', jsonb_build_object("
    "   'keys', (SELECT count(*) FROM keys),"
    "   'key_secrets', (SELECT count(*) FROM key_secrets),"
    "   'admin_tokens', (SELECT count(*) FROM admin_tokens),"
    "   'audit_entries', (SELECT count(*) FROM audit_log),"
    "   'usage_allowed', (SELECT coalesce(sum(allowed), 0) FROM usage_minute)),"
    "  'private_functions', (SELECT coalesce(jsonb_agg(f ORDER BY f COLLATE \"C\"), '[]') FROM ("
    "   SELECT p.oid::regprocedure::text AS f FROM pg_proc p"
    "   WHERE p.pronamespace = current_schema()::regnamespace AND p.proacl IS NOT NULL"
    "    AND NOT has_function_privilege('public', p.oid, 'EXECUTE')) fs))::text";

json_object *manifest_figures(struct pg_conn *conn, const char *as_of, struct api_error *e)
{
    const char *p[] = {as_of};
    struct pg_res *r = pg_query(conn, FIGURES_SQL, 1, p, e);
    if (!r)
        return NULL;
    const char *text = pg_val(r, 0, 0);
    json_object *o = jsonx_parse(text, strlen(text), e);
    pg_res_free(r);
    return o;
}

char *manifest_format(const struct manifest *m, json_object *figures)
{
    json_object *o = json_object_new_object(), *d = json_object_new_object();
    json_object_object_add(o, "format", json_object_new_int(MANIFEST_FORMAT));
    json_object_object_add(o, "created_at", json_object_new_string(m->created_at));
    json_object_object_add(o, "as_of", json_object_new_string(m->as_of));
    json_object_object_add(o, "tollgate_version", json_object_new_string(m->version));
    json_object_object_add(d, "file", json_object_new_string(m->dump_file));
    json_object_object_add(d, "bytes", json_object_new_int64(m->dump_bytes));
    json_object_object_add(d, "sha256", json_object_new_string(m->dump_sha256));
    char secs[32];
    snprintf(secs, sizeof secs, "%.3f", m->dump_seconds);
    json_object_object_add(d, "seconds", json_object_new_double_s(m->dump_seconds, secs));
    json_object_object_add(o, "dump", d);
    json_object_object_add(o, "figures", json_object_get(figures));
    char *text = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return text;
}

/* Member name of o as a string into *out; false when absent or not one. */
static bool get_str(json_object *o, const char *name, const char **out)
{
    json_object *v = jsonx_get(o, name);
    if (!v || !json_object_is_type(v, json_type_string))
        return false;
    *out = json_object_get_string(v);
    return true;
}

int manifest_parse(const char *text, size_t len, struct manifest *m, struct api_error *e)
{
    memset(m, 0, sizeof *m);
    m->root = jsonx_parse(text, len, e);
    if (!m->root)
        return -1;
    json_object *o = m->root, *f = jsonx_get(o, "format"), *d = jsonx_get(o, "dump");
    if (!json_object_is_type(o, json_type_object) || !f ||
        !json_object_is_type(f, json_type_int) || json_object_get_int64(f) != MANIFEST_FORMAT) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "format", "not a manifest of format %d",
                      MANIFEST_FORMAT);
        goto fail;
    }
    json_object *bytes = jsonx_get(d, "bytes"), *secs = jsonx_get(d, "seconds");
    if (!get_str(o, "created_at", &m->created_at) || !get_str(o, "as_of", &m->as_of) ||
        !get_str(o, "tollgate_version", &m->version) || !d ||
        !get_str(d, "file", &m->dump_file) || !get_str(d, "sha256", &m->dump_sha256) ||
        strlen(m->dump_sha256) != 64 || !bytes || !json_object_is_type(bytes, json_type_int) ||
        !secs || !(json_object_is_type(secs, json_type_double) ||
                   json_object_is_type(secs, json_type_int))) {
        api_error_set(e, ERR_INVALID_ARGUMENT, NULL,
                      "the manifest lacks created_at, as_of, tollgate_version or dump");
        goto fail;
    }
    m->dump_bytes = json_object_get_int64(bytes);
    m->dump_seconds = json_object_get_double(secs);
    m->figures = jsonx_get(o, "figures");
    for (size_t i = 0; i < manifest_nsections; i++) {
        if (!m->figures || !jsonx_get(m->figures, manifest_sections[i])) {
            api_error_set(e, ERR_INVALID_ARGUMENT, NULL, "the manifest's figures lack %s",
                          manifest_sections[i]);
            goto fail;
        }
    }
    return 0;
fail:
    manifest_fini(m);
    return -1;
}

void manifest_fini(struct manifest *m)
{
    json_object_put(m->root);
    memset(m, 0, sizeof *m);
}

/* The figures of a section that passed, in a line: arrays by their size
 * (and the billing lines' total), objects as they are. */
static void summary(json_object *v, const char *section, char *out, size_t size)
{
    if (strcmp(section, "billing") == 0) {
        long long lines = 0;
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++)
            lines += json_object_get_int64(jsonx_get(json_object_array_get_idx(v, i), "lines"));
        snprintf(out, size, "%zu (period, status, currency) totals, %lld lines", n, lines);
    } else if (json_object_is_type(v, json_type_array)) {
        snprintf(out, size, "%zu", json_object_array_length(v));
    } else {
        snprintf(out, size, "%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    }
}

bool manifest_check(json_object *want, json_object *got, const char *section, char *out,
                    size_t size)
{
    json_object *w = jsonx_get(want, section), *g = jsonx_get(got, section);
    if (w && g && json_object_equal(w, g)) {
        summary(w, section, out, size);
        return true;
    }
    char ws[1024];
    snprintf(ws, sizeof ws, "%s", w ? json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN)
                                    : "(none)");
    snprintf(out, size, "the manifest has %s, the database %s", ws,
             g ? json_object_to_json_string_ext(g, JSON_C_TO_STRING_PLAIN) : "(none)");
    return false;
}
