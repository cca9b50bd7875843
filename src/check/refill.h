/* refill: a key's credit balance set back to an amount at the start of
 * every UTC day, or of every month on a given day (1-28), by the check's
 * script (ratelimit.lua) from Redis time.  Unused credits never carry over.
 *
 * A balance belongs to one interval, named by its start in epoch ms (0 for
 * a key without a refill, whose balance never changes interval): the
 * script, PostgreSQL (key_credit_use.ri, tg_refill_start) and this module
 * compute the same starts, so the use recorded per (version, interval)
 * rebuilds a lost Redis state exactly. */
#ifndef TOLLGATE_REFILL_H
#define TOLLGATE_REFILL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define REFILL_AMOUNT_MAX 1000000000000000LL
#define REFILL_DAY_MAX 28

struct key_refill {
    bool on;
    int64_t amount;     /* 0..REFILL_AMOUNT_MAX */
    int day_of_month;   /* 0: daily; 1..28: monthly on that day */
};

/* Validates the API's "refill" member v (an object, or NULL for JSON null:
 * out->on false) into out.  Returns 0, or -1 with e filled (field paths
 * under "refill"). */
int refill_parse(json_object *v, struct key_refill *out, struct api_error *e) TG_WUR;

/* The canonical JSON of r as stored and shown:
 * {"amount":N,"interval":"day"} or {..."interval":"month","day_of_month":D};
 * null when off.  Caller puts it. */
json_object *refill_to_json(const struct key_refill *r);

/* Reads a stored refill (refill_to_json's form, or NULL/null for none) into
 * out; -1 when it is malformed. */
int refill_from_stored(json_object *v, struct key_refill *out) TG_WUR;

/* Start (epoch ms, UTC) of the interval holding t_ms (at least 0); 0 when r
 * is off. */
int64_t refill_start(const struct key_refill *r, int64_t t_ms);

/* Start of the interval after the one starting at start (r on). */
int64_t refill_next(const struct key_refill *r, int64_t start);

#endif
