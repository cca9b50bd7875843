/* billing_csv: the billing records as CSV (docs/billing.md, "CSV export"),
 * for GET /v1/billing/records?format=csv. */
#ifndef TOLLGATE_BILLING_CSV_H
#define TOLLGATE_BILLING_CSV_H

#include "http.h"

/* Answers r with every record of owner and period (either may be NULL: all;
 * both borrowed, already validated) as CSV, one row per owner, currency and
 * period, streamed from a server-side cursor in one snapshot.  Errors
 * before the first byte are the JSON envelope. */
void billing_csv_export(struct http_req *r, const char *owner, const char *period);

#endif
