#include "audit.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "strbuf.h"

#define VERIFY_PAGE 1000

void audit_link(const char *secret, const char *prev, const char *canonical, char out[65])
{
    struct strbuf in = {0};
    strbuf_put(&in, prev, strlen(prev));
    strbuf_put(&in, canonical, strlen(canonical));
    if (secret) {
        /* A key of its own, so that an audit link is never a key hash. */
        char key[KEYS_HASH_HEX_LEN];
        keys_hash_hex(secret, "\0audit\0", 7, key);
        keys_hash_hex(key, in.p, in.len, out);
    } else {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (!EVP_Digest(in.p, in.len, md, &n, EVP_sha256(), NULL) || n != 32)
            abort(); /* only a broken OpenSSL installation gets here */
        hex_encode(md, 32, out);
    }
    strbuf_fini(&in);
}

#define AUDIT_KEY_ID "audit"

int audit_append(struct pg_conn *conn, const struct config *cfg, const struct audit_entry *a,
                 struct api_error *e)
{
    bool own = cfg->audit_secret && cfg->audit_secret[0];
    const char *secret = own ? cfg->audit_secret : cfg->secrets.secret[0];
    const char *secret_id = own ? AUDIT_KEY_ID : cfg->secrets.id[0];
    const char *changes = a->changes ? a->changes : "{}";
    const char *p[] = {a->actor, a->role,       a->action, a->resource_type, a->resource_id,
                       a->request_id, a->ip, changes};
    struct pg_res *r =
        pg_query(conn, "SELECT seq, ts, prev, canonical FROM tg_audit_begin($1,$2,$3,$4,$5,$6,$7,$8::jsonb)",
                 8, p, e);
    if (!r)
        return -1;
    char hash[65];
    audit_link(secret, pg_val(r, 0, 2), pg_val(r, 0, 3), hash);
    const char *q[] = {pg_val(r, 0, 0), pg_val(r, 0, 1), a->actor, a->role, a->action,
                       a->resource_type, a->resource_id, a->request_id, a->ip, changes,
                       pg_val(r, 0, 2), hash, secret_id};
    struct pg_res *c = pg_query(conn,
                                "SELECT tg_audit_commit($1::bigint,$2::bigint,$3,$4,$5,$6,$7,$8,"
                                "$9,$10::jsonb,$11,$12,$13)",
                                13, q, e);
    pg_res_free(r);
    if (!c)
        return -1;
    pg_res_free(c);
    return 0;
}

/* The secret named id, or NULL when it is not configured. */
static const char *secret_of(const struct config *cfg, const char *id)
{
    if (strcmp(id, AUDIT_KEY_ID) == 0)
        return cfg->audit_secret && cfg->audit_secret[0] ? cfg->audit_secret : NULL;
    const struct config_secrets *s = &cfg->secrets;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->id[i], id) == 0)
            return s->secret[i];
    return NULL;
}

int audit_verify(struct pg_conn *conn, const struct config *cfg, bool *ok, int64_t *entries,
                 int64_t *bad_seq, struct api_error *e)
{
    char after[24] = "0", prev[65];
    memset(prev, '0', 64);
    prev[64] = '\0';
    bool keyed = false;
    *ok = true;
    *entries = 0;
    *bad_seq = 0;
    for (;;) {
        const char *p[] = {after};
        struct pg_res *r = pg_query(conn,
                                    "SELECT seq, prev_hash, hash, chain, coalesce(link_secret_id, ''),"
                                    " tg_audit_canonical(a) FROM audit_log a WHERE seq > $1::bigint"
                                    " ORDER BY seq LIMIT 1000",
                                    1, p, e);
        if (!r)
            return -1;
        int n = pg_nrows(r);
        for (int i = 0; i < n && *ok; i++) {
            int64_t seq = pg_int(r, i, 0), chain = pg_int(r, i, 3);
            const char *secret = chain == 2 ? secret_of(cfg, pg_val(r, i, 4)) : NULL;
            char want[65];
            bool good = seq == *entries + 1 && strcmp(pg_val(r, i, 1), prev) == 0 &&
                        (chain == 2 ? secret != NULL : chain == 1 && !keyed);
            if (good) {
                audit_link(secret, prev, pg_val(r, i, 5), want);
                good = strcmp(want, pg_val(r, i, 2)) == 0;
            }
            if (!good) {
                *ok = false;
                *bad_seq = seq;
                break;
            }
            keyed = chain == 2;
            snprintf(prev, sizeof prev, "%s", pg_val(r, i, 2));
            (*entries)++;
        }
        if (n > 0)
            snprintf(after, sizeof after, "%s", pg_val(r, n - 1, 0));
        pg_res_free(r);
        if (!*ok || n < VERIFY_PAGE)
            return 0;
    }
}
