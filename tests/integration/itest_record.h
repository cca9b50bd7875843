/*
 * itest_record.h - the answers the suite receives, kept for contrib/openapi-check.
 *
 * When TOLLGATE_ITEST_RECORD names a file, every answer is appended to it as
 * one JSON line: {"base","method","path","query","status","content_type",
 * "body"}. base is "api" for TOLLGATE_URL, "metrics" for
 * TOLLGATE_METRICS_URL and "other" for any other server; path is the path
 * on that server without the query string. Request headers, and with them
 * the credentials, are never written.
 */
#ifndef TOLLGATE_ITEST_RECORD_H
#define TOLLGATE_ITEST_RECORD_H

#include <stddef.h>

/* Appends one answer. target is the request's path on api_url or a whole
 * URL; ctype the answer's Content-Type ("" when none). Nothing happens when
 * TOLLGATE_ITEST_RECORD is unset or status is 0 (no answer). */
void itest_record_answer(const char *api_url, const char *method, const char *target,
			 long status, const char *ctype, const char *body, size_t body_len);

#endif
