/*
 * itest_billing_events.h - what the files of the billing_events suite
 * share: the seeded month and its owners, tiers and keys (set up by
 * itest_billing_events.c), the suite's tokens, and the CSV tests
 * (itest_billing_csv.c).
 */
#ifndef TOLLGATE_ITEST_BILLING_EVENTS_H
#define TOLLGATE_ITEST_BILLING_EVENTS_H

#include "itest_fixture.h"

struct bev_seed {
	int ready;		/* month m is seeded */
	char m[8];
	char owner_a[64], owner_j[64], hostile[128];
	char t_usd[40], t_jpy[40];
	struct itest_key ka1, ka2, kh, kj;
	char hook_id[160], secret[128], path[128];
};

extern struct bev_seed bev;
extern struct itest_token bev_viewer, bev_billing, bev_owner;

/* GET /v1/billing/records?period=<m><query> with token. */
void bev_records_get(struct itest_resp *r, const char *token, const char *query);

/* The CSV tests, in the order the suite runs them around the close. */
void bev_test_csv_open(void);
void bev_test_csv_closed(void);
void bev_test_csv_owner_token(void);

#endif
