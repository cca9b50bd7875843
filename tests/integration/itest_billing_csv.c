/*
 * itest_billing_csv.c - the CSV export of the billing records
 * (GET /v1/billing/records?format=csv), on the month the billing_events
 * suite seeds (itest_billing_events.h): header, RFC 4180 quoting of a
 * hostile owner id, the JSON amounts, idempotency keys, the owner filter.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <openssl/sha.h>

#include "itest_billing_events.h"
#include "itest_fixture.h"

/* ---- a small RFC 4180 reader: rows of fields as a JSON array of arrays;
 * *crlf is 0 when a row ends in a bare CR or LF ---- */

static json_object *csv_parse(const char *p, int *crlf)
{
	json_object *rows = json_object_new_array(), *row = json_object_new_array();
	char field[1024];
	size_t n = 0;

	*crlf = 1;
	while (*p) {
		if (*p == '"') {
			for (p++; *p && !(*p == '"' && p[1] != '"'); p++) {
				if (*p == '"')
					p++;
				if (n + 1 < sizeof field)
					field[n++] = *p;
			}
			if (*p)
				p++;
			continue;
		}
		if (*p == ',' || *p == '\r' || *p == '\n') {
			field[n] = '\0';
			json_object_array_add(row, json_object_new_string(field));
			n = 0;
			if (*p != ',') {
				if (*p == '\n' || p[1] != '\n')
					*crlf = 0;
				p += *p == '\r' && p[1] == '\n' ? 2 : 1;
				json_object_array_add(rows, row);
				row = json_object_new_array();
				continue;
			}
			p++;
			continue;
		}
		if (n + 1 < sizeof field)
			field[n++] = *p;
		p++;
	}
	/* The client trims the body's last line end: the last row may lack it. */
	if (n || itest_len(row)) {
		field[n] = '\0';
		json_object_array_add(row, json_object_new_string(field));
		json_object_array_add(rows, row);
	} else {
		json_object_put(row);
	}
	return rows;
}

static const char *const COLUMNS[] = {
	"period", "owner_id", "currency", "amount_minor", "minor_exponent", "amount_micros",
	"requests", "overage_units", "base_micros", "overage_micros", "lines", "status",
	"idempotency_key",
};
#define NCOL (sizeof COLUMNS / sizeof COLUMNS[0])
#define HEADER "period,owner_id,currency,amount_minor,minor_exponent,amount_micros,requests," \
	"overage_units,base_micros,overage_micros,lines,status,idempotency_key\r\n"

static const char *col(json_object *row, const char *name)
{
	for (size_t i = 0; i < NCOL; i++)
		if (strcmp(COLUMNS[i], name) == 0)
			return json_object_get_string(itest_idx(row, i));
	return NULL;
}

/* The row of owner (as written, apostrophe included) and currency, or NULL. */
static json_object *row_of(json_object *rows, const char *owner, const char *currency)
{
	for (size_t i = 1; i < itest_len(rows); i++) {
		json_object *row = itest_idx(rows, i);

		if (strcmp(col(row, "owner_id"), owner) == 0 &&
		    strcmp(col(row, "currency"), currency) == 0)
			return row;
	}
	return NULL;
}

static void idem_key(const char *owner, const char *currency, char out[65])
{
	char text[256];
	unsigned char md[SHA256_DIGEST_LENGTH];

	snprintf(text, sizeof text, "%s\n%s\n%s", bev.m, currency, owner);
	SHA256((const unsigned char *)text, strlen(text), md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Before the close: the CSV shows M open; bad requests are refused. */
void bev_test_csv_open(void)
{
	struct itest_resp r;
	json_object *rows;
	int crlf;

	if (!bev.ready)
		return;
	bev_records_get(&r, itest_admin_token(), "&format=csv");
	EXPECT_STATUS(&r, 200);
	rows = csv_parse(r.body, &crlf);
	EXPECT(itest_len(rows) == 4 && strcmp(col(itest_idx(rows, 1), "status"), "open") == 0,
	       "3 open rows: %.600s", r.body);
	json_object_put(rows);
	itest_resp_fini(&r);

	bev_records_get(&r, itest_admin_token(), "&format=xml");
	EXPECT_ERROR(&r, 400, "invalid_argument", "format");
	itest_resp_fini(&r);
	bev_records_get(&r, itest_admin_token(), "&format=csv&limit=10");
	EXPECT_ERROR(&r, 400, "invalid_argument", "limit");
	itest_resp_fini(&r);
	bev_records_get(&r, bev_viewer.token, "&format=csv");
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	bev_records_get(&r, itest_admin_token(), "&format=csv&owner_id=");
	EXPECT_ERROR(&r, 400, "invalid_argument", "owner_id");
	itest_resp_fini(&r);
}

/* The CSV of the closed month: its header, RFC 4180 quoting of the hostile
 * owner id, the JSON amounts, stable idempotency keys. */
void bev_test_csv_closed(void)
{
	struct itest_resp r, j;
	char hdr[256], want[512], key[65], buf[256];
	json_object *rows = NULL;
	int crlf;

	if (!bev.ready)
		return;
	bev_records_get(&r, bev_billing.token, "&format=csv");
	if (!EXPECT_STATUS(&r, 200))
		goto out;
	EXPECT(itest_header(&r, "Content-Type", hdr, sizeof hdr) &&
	       strcmp(hdr, "text/csv; charset=utf-8") == 0, "Content-Type: %s", hdr);
	snprintf(want, sizeof want, "attachment; filename=\"tollgate-billing-%s.csv\"", bev.m);
	EXPECT(itest_header(&r, "Content-Disposition", hdr, sizeof hdr) && strcmp(hdr, want) == 0,
	       "Content-Disposition: %s", hdr);
	EXPECT(strncmp(r.body, HEADER, strlen(HEADER)) == 0, "header row: %.200s", r.body);
	/* The hostile id, quoted, its quotes doubled, behind an apostrophe. */
	snprintf(want, sizeof want, "\"'=HYPERLINK(\"\"http://x\"\"),\"\"a\"\" %s\"", itest_suffix());
	EXPECT(strstr(r.body, want), "hostile owner id written as %s: %.600s", want, r.body);
	rows = csv_parse(r.body, &crlf);
	EXPECT(crlf, "rows end in CRLF: %.600s", r.body);
	if (!EXPECT(itest_len(rows) == 4, "header and 3 rows: %.600s", r.body))
		goto out;
	for (size_t i = 0; i < itest_len(rows); i++)
		EXPECT(itest_len(itest_idx(rows, i)) == NCOL, "row %zu has %zu fields", i,
		       itest_len(itest_idx(rows, i)));
	bev_records_get(&j, bev_billing.token, "&limit=1000");
	if (EXPECT_STATUS(&j, 200)) {
		json_object *data = itest_get(j.json, "data");

		for (size_t i = 0; i < itest_len(data); i++) {
			json_object *d = itest_idx(data, i), *row;
			const char *owner = itest_str(d, "owner_id"), *cur = itest_str(d, "currency");
			int64_t v;

			snprintf(buf, sizeof buf, "%s%s", strcmp(owner, bev.hostile) == 0 ? "'" : "",
				 owner);
			row = row_of(rows, buf, cur);
			if (!EXPECT(row, "a CSV row for %s %s", owner, cur))
				continue;
			itest_int(d, "amount_micros", &v);
			EXPECT(strtoll(col(row, "amount_micros"), NULL, 10) == v, "amount of %s",
			       owner);
			itest_int(d, "requests", &v);
			EXPECT(strtoll(col(row, "requests"), NULL, 10) == v, "requests of %s", owner);
			EXPECT(strtoll(col(row, "lines"), NULL, 10) ==
			       (long long)itest_len(itest_get(d, "lines")), "lines of %s", owner);
			EXPECT(strcmp(col(row, "status"), "closed") == 0 &&
			       strcmp(col(row, "period"), bev.m) == 0, "closed row of %s", owner);
			idem_key(owner, cur, key);
			EXPECT(strcmp(col(row, "idempotency_key"), key) == 0, "idempotency key of %s",
			       owner);
		}
	}
	itest_resp_fini(&j);
	snprintf(buf, sizeof buf, "'%s", bev.hostile);
	EXPECT(row_of(rows, bev.owner_a, "USD") &&
	       strcmp(col(row_of(rows, bev.owner_a, "USD"), "amount_minor"), "200") == 0 &&
	       row_of(rows, buf, "USD") &&
	       strcmp(col(row_of(rows, buf, "USD"), "amount_minor"), "100") == 0 &&
	       row_of(rows, bev.owner_j, "JPY") &&
	       strcmp(col(row_of(rows, bev.owner_j, "JPY"), "amount_minor"), "2") == 0,
	       "minor units 200 cents, 100 cents, 2 yen: %.600s", r.body);
out:
	json_object_put(rows);
	itest_resp_fini(&r);
}

/* An owner token exports its own records only. */
void bev_test_csv_owner_token(void)
{
	struct itest_resp r;
	char body[512], q[256], esc[256];
	json_object *rows;
	int crlf;

	if (!bev.ready)
		return;
	memset(&bev_owner, 0, sizeof bev_owner);
	snprintf(body, sizeof body,
		 "{\"role\":\"owner\",\"owner_id\":%s,\"tier\":%s,\"name\":\"itbe-owner\"}",
		 itest_q(bev.owner_a), itest_q(bev.t_usd));
	itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), body);
	if (EXPECT_STATUS(&r, 201)) {
		snprintf(bev_owner.id, sizeof bev_owner.id, "%s", itest_str(r.json, "id"));
		snprintf(bev_owner.token, sizeof bev_owner.token, "%s", itest_str(r.json, "token"));
	}
	itest_resp_fini(&r);
	if (!bev_owner.token[0])
		return;
	bev_records_get(&r, bev_owner.token, "&format=csv");
	EXPECT_STATUS(&r, 200);
	rows = csv_parse(r.body, &crlf);
	EXPECT(itest_len(rows) == 2 && strcmp(col(itest_idx(rows, 1), "owner_id"), bev.owner_a) == 0,
	       "only the owner's row: %.600s", r.body);
	json_object_put(rows);
	itest_resp_fini(&r);
	snprintf(q, sizeof q, "&format=csv&owner_id=%s", itest_escape(bev.owner_j, esc, sizeof esc));
	bev_records_get(&r, bev_owner.token, q);
	EXPECT_ERROR(&r, 403, "forbidden", "owner_id");
	itest_resp_fini(&r);
}
