/* privacy: what the erasure of an owner (docs/privacy.md) does outside
 * PostgreSQL -- every cache forgets the owner's keys -- and the pseudonym
 * that replaces the owner id in the billing records it keeps. */
#ifndef TOLLGATE_PRIVACY_H
#define TOLLGATE_PRIVACY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "util.h"

struct keystore;
struct redis_conn;

/* "erased_" and 32 hex digits, NUL included. */
#define PRIVACY_PSEUDONYM_MAX 40
/* How long the version left in place of an erased key's rate-limit state
 * lives: longer than any process keeps a key record (keystore.h). */
#define PRIVACY_TOMBSTONE_MS 900000
/* How long the Redis record of an erased secret says "missing". */
#define PRIVACY_MISSING_MS 60000

/* The pseudonym of owner_id: "erased_" and the first 128 bits of an HMAC
 * under a key derived from secret, in hex.  The same owner always gets the
 * same one under the same secret; without the secret it cannot be traced
 * back, nor tested against a guessed owner id. */
void privacy_pseudonym(const char *secret, const char *owner_id, char out[PRIVACY_PSEUDONYM_MAX]);

/* After key_id's erasure committed (version: its last): leaves in Redis the
 * version version + 1 in place of its rate-limit state (ratelimit_erase; at
 * the owner's place too when owner_tag, keys_owner_tag of the erased owner,
 * is given: the change feed, which does not know the owner, passes NULL),
 * so that every process holding a record of it reloads and finds nothing,
 * then marks each of its secrets' hashes (n of them) missing in the Redis
 * record cache and drops them from this process's cache.  Idempotent.
 * Returns 0, or -1 with err filled when Redis did not take all of it (the
 * key change feed of every process does it again, keywatch.h). */
int privacy_forget_key(struct keystore *ks, struct redis_conn *redis, const char *key_id,
                       const char *owner_tag, int64_t version, const char *const *hashes,
                       size_t n, struct api_error *err) TG_WUR;

#endif
