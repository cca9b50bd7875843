/* auth: admin tokens and roles.  A token is a key of the managed format with
 * the "tgadm" prefix; only its HMAC is stored.  Lookups go through an
 * in-process cache whose TTL bounds how long a revoked token still works. */
#ifndef TOLLGATE_AUTH_H
#define TOLLGATE_AUTH_H

#include <stddef.h>

#include "http.h"

enum {
    ROLE_ADMIN = 1u << 0,
    ROLE_OPERATOR = 1u << 1,
    ROLE_BILLING = 1u << 2,
    ROLE_VIEWER = 1u << 3,
    ROLE_SERVICE = 1u << 4,
};
#define ROLES_ANY (ROLE_ADMIN | ROLE_OPERATOR | ROLE_BILLING | ROLE_VIEWER | ROLE_SERVICE)

/* The bit of a role name, 0 for an unknown one. */
unsigned auth_role_bit(const char *role);

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
