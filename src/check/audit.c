#include "audit.h"

int audit_append(struct pg_conn *conn, const struct audit_entry *a, struct api_error *e)
{
    const char *p[] = {a->actor,         a->role,        a->action,
                       a->resource_type, a->resource_id, a->request_id,
                       a->ip,            a->changes ? a->changes : "{}"};
    struct pg_res *r = pg_query(conn, "SELECT tg_audit_append($1,$2,$3,$4,$5,$6,$7,$8::jsonb)", 8,
                                p, e);
    if (!r)
        return -1;
    pg_res_free(r);
    return 0;
}

int audit_verify(struct pg_conn *conn, bool *ok, int64_t *entries, int64_t *bad_seq,
                 struct api_error *e)
{
    struct pg_res *r = pg_query(conn, "SELECT ok, entries, bad_seq FROM tg_audit_verify()", 0,
                                NULL, e);
    if (!r)
        return -1;
    *ok = pg_val(r, 0, 0)[0] == 't';
    *entries = pg_int(r, 0, 1);
    *bad_seq = pg_isnull(r, 0, 2) ? 0 : pg_int(r, 0, 2);
    pg_res_free(r);
    return 0;
}
