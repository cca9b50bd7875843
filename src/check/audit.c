#include "audit.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "strbuf.h"
#include "util.h"

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

void audit_personal_mac(const char *secret, const char *nonce, const char *personal,
                        char out[65])
{
    struct strbuf in = {0};
    strbuf_put(&in, nonce, strlen(nonce));
    strbuf_put(&in, personal, strlen(personal));
    /* A key of its own: a commitment is never a link or a key hash. */
    char key[KEYS_HASH_HEX_LEN];
    keys_hash_hex(secret, "\0audit-personal\0", 16, key);
    keys_hash_hex(key, in.p, in.len, out);
    strbuf_fini(&in);
}

#define AUDIT_KEY_ID "audit"
#define NONCE_BYTES 16

/* What a chain-3 link hashes: the canonical text, then the commitment
 * (absent when the entry has no personal field). */
static void hashed_text(struct strbuf *b, const char *canonical, const char *mac)
{
    strbuf_reset(b);
    strbuf_put(b, canonical, strlen(canonical));
    if (mac)
        strbuf_put(b, mac, strlen(mac));
}

int audit_append(struct pg_conn *conn, const struct config *cfg, const struct audit_entry *a,
                 struct api_error *e)
{
    bool own = cfg->audit_secret && cfg->audit_secret[0];
    const char *secret = own ? cfg->audit_secret : cfg->secrets.secret[0];
    const char *secret_id = own ? AUDIT_KEY_ID : cfg->secrets.id[0];
    const char *changes = a->changes ? a->changes : "{}";
    const char *p[] = {a->actor, a->role,       a->action, a->resource_type, a->resource_id,
                       a->request_id, a->ip, changes};
    struct pg_res *r = pg_query(conn,
                                "SELECT seq, ts, prev, canonical, personal"
                                " FROM tg_audit_begin3($1,$2,$3,$4,$5,$6,$7,$8::jsonb)",
                                8, p, e);
    if (!r)
        return -1;
    unsigned char raw[NONCE_BYTES];
    char nonce[2 * NONCE_BYTES + 1], mac[65], hash[65];
    random_bytes(raw, sizeof raw);
    hex_encode(raw, sizeof raw, nonce);
    bool personal = !pg_isnull(r, 0, 4);
    if (personal)
        audit_personal_mac(secret, nonce, pg_val(r, 0, 4), mac);
    struct strbuf text = {0};
    hashed_text(&text, pg_val(r, 0, 3), personal ? mac : NULL);
    audit_link(secret, pg_val(r, 0, 2), text.p, hash);
    strbuf_fini(&text);
    const char *q[] = {pg_val(r, 0, 0), pg_val(r, 0, 1), a->actor, a->role, a->action,
                       a->resource_type, a->resource_id, a->request_id, a->ip, changes,
                       pg_val(r, 0, 2), hash, secret_id, personal ? nonce : NULL,
                       personal ? mac : NULL};
    struct pg_res *c = pg_query(conn,
                                "SELECT tg_audit_commit3($1::bigint,$2::bigint,$3,$4,$5,$6,$7,$8,"
                                "$9,$10::jsonb,$11,$12,$13,$14,$15)",
                                15, q, e);
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

/* Row i of a verify page (seq, prev_hash, hash, chain, secret id,
 * canonical, personal_mac, nonce, personal text): whether its link, and in
 * chain 3 its personal fields when still present, match. */
static bool entry_good(const struct pg_res *r, int i, const char *secret, const char *prev,
                       struct strbuf *text)
{
    char want[65];
    if (pg_int(r, i, 3) != 3) {
        audit_link(secret, prev, pg_val(r, i, 5), want);
        return strcmp(want, pg_val(r, i, 2)) == 0;
    }
    const char *mac = pg_isnull(r, i, 6) ? NULL : pg_val(r, i, 6);
    if (!pg_isnull(r, i, 8)) {
        if (!mac)
            return false; /* personal fields the chain never committed to */
        audit_personal_mac(secret, pg_val(r, i, 7), pg_val(r, i, 8), want);
        if (strcmp(want, mac) != 0)
            return false;
    }
    hashed_text(text, pg_val(r, i, 5), mac);
    audit_link(secret, prev, text->p, want);
    return strcmp(want, pg_val(r, i, 2)) == 0;
}

int audit_verify(struct pg_conn *conn, const struct config *cfg, bool *ok, int64_t *entries,
                 int64_t *bad_seq, struct api_error *e)
{
    char after[24] = "0", prev[65];
    memset(prev, '0', 64);
    prev[64] = '\0';
    bool keyed = false;
    struct strbuf text = {0};
    *ok = true;
    *entries = 0;
    *bad_seq = 0;
    for (;;) {
        const char *p[] = {after};
        struct pg_res *r = pg_query(conn,
                                    "SELECT a.seq, a.prev_hash, a.hash, a.chain,"
                                    " coalesce(a.link_secret_id, ''), tg_audit_canonical(a),"
                                    " a.personal_mac, p.nonce, CASE WHEN p.seq IS NOT NULL THEN"
                                    "  tg_audit_personal_text(p.owner_id, p.ip, p.changes) END"
                                    " FROM audit_log a LEFT JOIN audit_personal p ON p.seq = a.seq"
                                    " WHERE a.seq > $1::bigint ORDER BY a.seq LIMIT 1000",
                                    1, p, e);
        if (!r) {
            strbuf_fini(&text);
            return -1;
        }
        int n = pg_nrows(r);
        for (int i = 0; i < n && *ok; i++) {
            int64_t seq = pg_int(r, i, 0), chain = pg_int(r, i, 3);
            const char *secret = chain >= 2 ? secret_of(cfg, pg_val(r, i, 4)) : NULL;
            bool good = seq == *entries + 1 && strcmp(pg_val(r, i, 1), prev) == 0 &&
                        (chain == 2 || chain == 3 ? secret != NULL : chain == 1 && !keyed);
            if (good)
                good = entry_good(r, i, secret, prev, &text);
            if (!good) {
                *ok = false;
                *bad_seq = seq;
                break;
            }
            keyed = chain >= 2;
            snprintf(prev, sizeof prev, "%s", pg_val(r, i, 2));
            (*entries)++;
        }
        if (n > 0)
            snprintf(after, sizeof after, "%s", pg_val(r, n - 1, 0));
        pg_res_free(r);
        if (!*ok || n < VERIFY_PAGE) {
            strbuf_fini(&text);
            return 0;
        }
    }
}
