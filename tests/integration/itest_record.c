/*
 * itest_record.c - the answers the suite receives, kept for contrib/openapi-check.
 */
#define _POSIX_C_SOURCE 200809L

#include "itest_record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes s (n bytes) to f as a JSON string literal. Bytes >= 0x80 pass as
 * they are: the reader decodes the line leniently. */
static void put_str(FILE *f, const char *s, size_t n)
{
	size_t i;

	fputc('"', f);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* The server a request went to, and in *path its path there (query
 * included). */
static const char *server_of(const char *api_url, const char *target, const char **path)
{
	const char *murl = getenv("TOLLGATE_METRICS_URL");
	size_t n = strlen(api_url);
	const char *p;

	*path = target;
	if (target[0] == '/')
		return "api";
	if (strncmp(target, api_url, n) == 0 && (target[n] == '/' || target[n] == '\0')) {
		*path = target[n] ? target + n : "/";
		return "api";
	}
	p = strstr(target, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	*path = p ? p : "/";
	if (p && murl && strncmp(target, murl, (size_t)(p - target)) == 0 &&
	    (murl[p - target] == '/' || murl[p - target] == '\0'))
		return "metrics";
	return "other";
}

void itest_record_answer(const char *api_url, const char *method, const char *target,
			 long status, const char *ctype, const char *body, size_t body_len)
{
	const char *file = getenv("TOLLGATE_ITEST_RECORD");
	const char *path, *server, *query;
	FILE *f;

	if (!file || !*file || status == 0)
		return;
	f = fopen(file, "a");
	if (!f) {
		fprintf(stderr, "itest: cannot append to %s: %s\n", file, strerror(errno));
		return;
	}
	server = server_of(api_url, target, &path);
	query = strchr(path, '?');
	fputs("{\"base\":", f);
	put_str(f, server, strlen(server));
	fputs(",\"method\":", f);
	put_str(f, method, strlen(method));
	fputs(",\"path\":", f);
	put_str(f, path, query ? (size_t)(query - path) : strlen(path));
	fputs(",\"query\":", f);
	put_str(f, query ? query + 1 : "", query ? strlen(query + 1) : 0);
	fprintf(f, ",\"status\":%ld,\"content_type\":", status);
	put_str(f, ctype, strlen(ctype));
	fputs(",\"body\":", f);
	put_str(f, body ? body : "", body ? body_len : 0);
	fputs("}\n", f);
	if (fclose(f) != 0)
		fprintf(stderr, "itest: cannot append to %s: %s\n", file, strerror(errno));
}
