/* auth: admin tokens and roles.  A token is a key of the managed format with
 * the "tgadm" prefix; only its HMAC is stored.  Lookups go through an
 * in-process cache whose TTL bounds how long a revoked token still works;
 * a token's expiry, kept in the cached principal, is compared with the
 * clock on every request, so an expired token is refused from that instant
 * whatever the cache holds.
 *
 * An owner token (ROLE_OWNER) is bound to one owner_id and one tier: the
 * handlers it may use see that owner's objects only (auth_owner_scope). */
#ifndef TOLLGATE_AUTH_H
#define TOLLGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

enum {
    ROLE_ADMIN = 1u << 0,
    ROLE_OPERATOR = 1u << 1,
    ROLE_BILLING = 1u << 2,
    ROLE_VIEWER = 1u << 3,
    ROLE_SERVICE = 1u << 4,
    ROLE_OWNER = 1u << 5,
};
#define ROLES_ANY \
    (ROLE_ADMIN | ROLE_OPERATOR | ROLE_BILLING | ROLE_VIEWER | ROLE_SERVICE | ROLE_OWNER)

/* How far ahead a token's expires_at may lie: about five years.  A longer
 * life is a token nobody remembers to rotate. */
#define AUTH_TOKEN_LIFE_MAX_MS (1830LL * 86400 * 1000)

/* The bit of a role name, 0 for an unknown one. */
unsigned auth_role_bit(const char *role);

/* The owner an owner token is bound to, or NULL for every other role (they
 * are not scoped).  Borrowed from who. */
const char *auth_owner_scope(const struct principal *who);
/* True when who may see objects of owner_id: always for unscoped roles,
 * only its own owner for an owner token. */
bool auth_sees_owner(const struct principal *who, const char *owner_id);
/* True when who's token has expired at now (milliseconds since the epoch):
 * from the instant of expires_ms on. */
bool auth_expired(const struct principal *who, int64_t now);

/* Checks what a new token binds against its role (a known role name):
 * owner_id and tier are required for "owner" (missing_field) and refused
 * for every other role (invalid_argument naming the field).  Returns 0 or
 * -1 with e filled.  The tier's existence is the caller's to check. */
int auth_token_binding(const char *role, bool has_owner_id, bool has_tier,
                       struct api_error *e) TG_WUR;
/* Parses a new token's expires_at (RFC 3339) into *out: it must lie after
 * now and at most AUTH_TOKEN_LIFE_MAX_MS after it.  Returns 0 or -1 with
 * invalid_argument naming "expires_at" in e. */
int auth_token_expiry(const char *text, int64_t now, int64_t *out, struct api_error *e) TG_WUR;
/* Parses a lifetime such as "30d", "12h", "90m" or "3600s" (a positive
 * whole number and one unit) into milliseconds.  Returns 0 or -1. */
int auth_duration_ms(const char *text, int64_t *out) TG_WUR;

/* Extracts the credential of "Bearer <token>" (scheme case-insensitive) into
 * out.  Returns 0 or -1 when absent or malformed. */
int auth_bearer(const char *header, char *out, size_t size) TG_WUR;

/* Authenticates the Authorization header of r and fills r->who.  Returns 0,
 * or -1 with 401 unauthenticated (or 503 when the store is down) in e. */
int auth_authenticate(struct http_req *r, struct api_error *e) TG_WUR;
/* The same from this process's cache only, never blocking: 0, -1 with e
 * filled, or 1 when only auth_authenticate can tell. */
int auth_authenticate_cached(struct http_req *r, struct api_error *e) TG_WUR;

#endif
