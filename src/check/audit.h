/* audit: appends entries to the tamper-evident audit log, inside the
 * caller's transaction, so an entry exists exactly when its change does.
 * Each entry is chained to its predecessor by an HMAC under a key derived
 * from the audit secret (sql/008_audit_keyed.sql): the
 * database never holds the key, so rewriting an entry there and recomputing
 * the chain is detected by audit_verify.
 *
 * Entries are written in chain 3 (sql/019_privacy.sql): the personal fields
 * (the owner concerned, the client address, the personal members of
 * changes) are stored apart, and the chain hashes a keyed commitment to
 * them instead, so that an erasure can delete them and the chain still
 * verifies. */
#ifndef TOLLGATE_AUDIT_H
#define TOLLGATE_AUDIT_H

#include "config.h"
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

/* Appends one entry, keyed with cfg's audit_secret (id "audit") or, when it
 * is empty, its current hmac_secret (that secret's id).  Returns 0 or -1
 * with e filled. */
int audit_append(struct pg_conn *conn, const struct config *cfg, const struct audit_entry *a,
                 struct api_error *e) TG_WUR;

/* Recomputes the chain: unkeyed links (entries older than the keyed chain)
 * by SHA-256, keyed ones by the HMAC of the secret each names (cfg's
 * audit_secret or one of its key-hashing secrets); in chain 3 the hashed
 * content ends with the personal commitment, and personal fields still
 * present must match it (erased ones are absent, which is no fault).  A
 * keyed entry whose secret is no longer configured, or an unkeyed entry
 * after a keyed one, is a bad entry.  Returns 0 with *ok, *entries and, when !*ok, the first bad
 * seq in *bad_seq; or -1 with e filled. */
int audit_verify(struct pg_conn *conn, const struct config *cfg, bool *ok, int64_t *entries,
                 int64_t *bad_seq, struct api_error *e) TG_WUR;

/* The commitment to an entry's personal fields: the hex HMAC, under a key
 * derived from secret, of nonce followed by personal (their canonical
 * text, tg_audit_personal_text).  out holds 65 bytes. */
void audit_personal_mac(const char *secret, const char *nonce, const char *personal,
                        char out[65]);

/* The hex link of an entry: its hash given the predecessor's hash and its
 * canonical text, keyed by secret (NULL: the unkeyed SHA-256 of the first
 * chain).  out holds 65 bytes. */
void audit_link(const char *secret, const char *prev, const char *canonical, char out[65]);

#endif
