/* ledger: the durable use of each key (sql/009_key_use.sql) -- allowed
 * cost per calendar month (the quota's use) and credits consumed against
 * the current remaining version and refill interval -- recorded by ingest inside the
 * transaction that writes the usage rows of the same checks, so that it is
 * exactly once like them.  The Redis state of a key that lost it is rebuilt
 * from here (keyuse.h). */
#ifndef TOLLGATE_LEDGER_H
#define TOLLGATE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>

#include "pg.h"
#include "strbuf.h"
#include "usagemsg.h"
#include "util.h"

/* What ledger_record sends for quota use: a JSON array of
 * {"k":key,"m":YYYYMM,"c":allowed cost}, one per bucket of agg with an
 * allowed cost, into b (reset first). */
void ledger_quota_json(const struct usage_agg *agg, struct strbuf *b);

/* ... and for credits: {"k":key,"r":remaining version,"c":cost,"d":day},
 * one per credit of the messages msgs[i] with apply[i] set, into b (reset
 * first); "d" (the UTC day, naming the refill interval) only when the
 * message gave it. */
void ledger_credits_json(const struct usage_msg *msgs, size_t n, const bool *apply,
                         struct strbuf *b);

/* Adds agg's allowed costs to the keys' monthly use and the applied
 * messages' credits to the keys' consumption, over conn inside the
 * caller's transaction (rows locked in key order, after the usage rows and
 * keys that ingest locks first).  A key's consumption restarts when a
 * later balance arrives (a higher remaining version, or the same one in a
 * later refill interval); an earlier one is ignored.  Returns 0, or
 * -1 with e filled (SQLSTATE included); b1 and b2 are scratch. */
int ledger_record(struct pg_conn *conn, const struct usage_agg *agg,
                  const struct usage_msg *msgs, size_t n, const bool *apply, struct strbuf *b1,
                  struct strbuf *b2, struct api_error *e) TG_WUR;

#endif
