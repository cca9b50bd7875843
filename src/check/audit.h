/* audit: appends entries to the tamper-evident audit log, inside the
 * caller's transaction, so an entry exists exactly when its change does. */
#ifndef TOLLGATE_AUDIT_H
#define TOLLGATE_AUDIT_H

#include "pg.h"

struct audit_entry {
    const char *actor;      /* token id, or "tollgatectl" */
    const char *role;
    const char *request_id; /* may be NULL */
    const char *ip;         /* may be NULL */
    const char *action;     /* "key.create" */
    const char *resource_type;
    const char *resource_id;
    const char *changes;    /* JSON object text; NULL: {} */
};

/* Appends one entry (chained to the previous one by tg_audit_append).
 * Returns 0 or -1 with e filled. */
int audit_append(struct pg_conn *conn, const struct audit_entry *a, struct api_error *e) TG_WUR;

/* Recomputes the chain.  Returns 0 with *ok, *entries and, when !*ok, the
 * first bad seq in *bad_seq; or -1 with e filled. */
int audit_verify(struct pg_conn *conn, bool *ok, int64_t *entries, int64_t *bad_seq,
                 struct api_error *e) TG_WUR;

#endif
