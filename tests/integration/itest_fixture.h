/*
 * itest_fixture.h - CUnit assertions that explain themselves, and fixtures
 * made through the API (tokens, keys, a tier without practical limits).
 *
 * Assertions record one CUnit assertion each and, on failure, a message with
 * the request and the answer. Outside a test (suite set-up and tear-down)
 * they print the failure to stderr instead, as CUnit counts only the set-up's
 * return value there.
 */
#ifndef TOLLGATE_ITEST_FIXTURE_H
#define TOLLGATE_ITEST_FIXTURE_H

#include "itest_http.h"

/* ---- assertions ---- */

/* Records one CUnit assertion; the message is formatted only on failure.
 * Returns ok. */
int itest_assert(int ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Status equals want. Returns ok. */
int itest_assert_status(const struct itest_resp *r, long want,
			const char *file, int line);
/* Status equals want and the body is the error envelope with this code
 * (and, when field is not NULL, this field). `what` (may be NULL) says which
 * case this is in the failure message. */
int itest_assert_error(const struct itest_resp *r, long want, const char *code,
		       const char *field, const char *what, const char *file, int line);
/* String member at path equals want (want NULL: member is JSON null). */
int itest_assert_str(const struct itest_resp *r, json_object *o, const char *path,
		     const char *want, const char *file, int line);

/* The key answer's effective limits hold each limit of `tier` unchanged,
 * plus `extra` more. */
void itest_expect_tier_limits(const struct itest_resp *r, const char *tier, size_t extra);

#define EXPECT(cond, ...) itest_assert(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define EXPECT_STATUS(r, want) itest_assert_status((r), (want), __FILE__, __LINE__)
#define EXPECT_ERROR(r, want, code, field) \
	itest_assert_error((r), (want), (code), (field), NULL, __FILE__, __LINE__)
#define EXPECT_ERROR_CASE(r, want, code, field, what) \
	itest_assert_error((r), (want), (code), (field), (what), __FILE__, __LINE__)
#define EXPECT_STR(r, o, path, want) \
	itest_assert_str((r), (o), (path), (want), __FILE__, __LINE__)

/* ---- fixtures built from API calls ---- */

struct itest_token {
	char id[160];
	char token[256];
	char role[16];
	char name[64];
};

struct itest_key {
	char id[160];
	char key[256];
	char owner[512];
};

/* Creates an admin token of `role` with the admin token. Asserts 201.
 * Returns 0 on success. */
int itest_token_create(struct itest_token *t, const char *role);
/* Revokes a token; asserts 204. */
void itest_token_revoke(const struct itest_token *t);

/* Creates a key for owner on tier (NULL: no tier member) with the admin
 * token. `extra` holds more members, without braces, e.g.
 * "\"prefix\":\"ab\"" (NULL: none). Asserts 201. Returns 0 on success. When
 * resp is not NULL it receives the answer (caller finalises it). */
int itest_key_create(struct itest_key *k, const char *owner, const char *tier,
		     const char *extra, struct itest_resp *resp);
/* PATCHes a key with the admin token; asserts 200. Returns 0 on success. */
int itest_key_patch(const char *id, const char *body);
/* POST /v1/check with this token for key (endpoint "GET /x", cost 1). */
void itest_check(struct itest_resp *r, const char *token, const char *key);

/* Follows next_cursor through a list (at most max_pages pages, page size
 * `limit`), asserting the list shape of every page. `path` may carry a query.
 * *out receives a new array of all entries (caller puts it). Returns the
 * number of pages read, or -1 after a failed page (*out then NULL). */
int itest_list_all(const char *path, const char *token, int limit, int max_pages,
		   json_object **out);

/* A tier created once per run whose single window is far above anything the
 * suite sends, so checks are never rate limited. NULL if it could not be made. */
const char *itest_big_tier(void);
/* The id of the admin token (from whoami), or "" if unknown. */
const char *itest_admin_id(void);

/* qsort's comparison of int64_t values, ascending (latencies, counts). */
int itest_cmp_i64(const void *a, const void *b);

#endif
