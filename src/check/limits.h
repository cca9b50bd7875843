/* limits: rate-limit windows as JSON — validation of a tier's or a key's
 * list, the merge of a key's overrides into its tier's list, and endpoint
 * pattern matching.  Pure functions. */
#ifndef TOLLGATE_LIMITS_H
#define TOLLGATE_LIMITS_H

#include <json-c/json.h>
#include <stdbool.h>

#include "jsonx.h"
#include "rlconst.h"

/* The bounds are those the rate-limit script relies on (rlconst.h). */
#define LIMITS_MAX RL_WINDOWS_MAX
#define LIMITS_WINDOW_MAX RL_WINDOW_S_MAX
#define LIMITS_LIMIT_MAX RL_LIMIT_MAX
#define LIMITS_PRECISION_DEFAULT RL_PRECISION_DEFAULT
#define LIMITS_PRECISION_MAX RL_PRECISION_MAX

/* Validates arr (the value of field, e.g. "limits") as a list of at most 16
 * limits {name, window_s, limit, precision?, endpoint?, per?} with unique
 * names; per is "key" (the default: each key counts alone) or "owner" (the
 * keys of one owner share the window).
 * Returns 0 or -1 with e naming the offending path, e.g.
 * "limits[2].window_s". */
int limits_validate(json_object *arr, const char *field, struct api_error *e) TG_WUR;

/* A new array: base's limits in order, each replaced by the override of the
 * same name, then the overrides whose names base lacks.  Either may be NULL.
 * Caller puts the result. */
json_object *limits_merge(json_object *base, json_object *over);

#endif
