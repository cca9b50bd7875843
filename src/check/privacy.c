#include "privacy.h"

#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "keystore.h"
#include "ratelimit.h"
#include "redis.h"

void privacy_pseudonym(const char *secret, const char *owner_id, char out[PRIVACY_PSEUDONYM_MAX])
{
    /* A key of its own: a pseudonym is never a key hash or an audit link. */
    char key[KEYS_HASH_HEX_LEN], mac[KEYS_HASH_HEX_LEN];
    keys_hash_hex(secret, "\0pseudonym\0", 11, key);
    keys_hash_hex(key, owner_id, strlen(owner_id), mac);
    snprintf(out, PRIVACY_PSEUDONYM_MAX, "erased_%.32s", mac);
}

int privacy_forget_key(struct keystore *ks, struct redis_conn *redis, const char *key_id,
                       const char *owner_tag, int64_t version, const char *const *hashes,
                       size_t n, struct api_error *err)
{
    /* The version first: from then on no check trusts a cached record. */
    if (ratelimit_erase(redis, key_id, owner_tag, version + 1, PRIVACY_TOMBSTONE_MS, err) != 0)
        return -1;
    char record[96], ttl[24];
    snprintf(record, sizeof record, "%lld|{\"v\":%lld,\"missing\":true}", (long long)version + 1,
             (long long)version + 1);
    snprintf(ttl, sizeof ttl, "%d", PRIVACY_MISSING_MS);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        keystore_forget(ks, hashes[i]);
        char rk[80];
        keystore_redis_key(hashes[i], rk);
        /* A newer version than any record of the key: a slow reader cannot
         * put an older one back (keystore.c's PUT_SCRIPT). */
        const char *argv[] = {"SET", rk, record, "PX", ttl};
        redisReply *r = redis_command(redis, 5, argv, NULL, err);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            if (r)
                api_error_set(err, ERR_UNAVAILABLE, NULL, "erase: %s", r->str);
            rc = -1;
        }
        if (r)
            freeReplyObject(r);
    }
    return rc;
}
