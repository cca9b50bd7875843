/* handlers: one file per resource, each exporting its route table; this
 * header gathers them for the dispatcher. */
#ifndef TOLLGATE_HANDLERS_H
#define TOLLGATE_HANDLERS_H

#include <stddef.h>

#include "router.h"

extern const struct route admin_tokens_routes[];
extern const size_t admin_tokens_routes_len;
extern const struct route tiers_routes[];
extern const size_t tiers_routes_len;
extern const struct route keys_routes[];
extern const size_t keys_routes_len;
extern const struct route check_routes[];
extern const size_t check_routes_len;
extern const struct route audit_routes[];
extern const size_t audit_routes_len;
extern const struct route usage_routes[];
extern const size_t usage_routes_len;
extern const struct route events_routes[];
extern const size_t events_routes_len;
extern const struct route billing_routes[];
extern const size_t billing_routes_len;
extern const struct route billing_hooks_routes[];
extern const size_t billing_hooks_routes_len;
extern const struct route alerts_routes[];
extern const size_t alerts_routes_len;
extern const struct route owners_routes[];
extern const size_t owners_routes_len;
extern const struct route analytics_routes[];
extern const size_t analytics_routes_len;
extern const struct route health_routes[];
extern const size_t health_routes_len;

/* Adds every route table to rt. */
void handlers_register(struct router *rt);

#endif
