/* endpoint: the "METHOD /path" that a check is matched and counted against,
 * in one normal form, so that two spellings of one resource are one endpoint
 * and no spelling escapes a limit scoped to it.
 *
 * The path is normalised as RFC 3986 section 6.2.2 describes: percent-encoded
 * unreserved characters are decoded, other escapes get upper-case hex, bytes
 * that may not appear in a path are percent-encoded, dot segments are
 * removed and repeated slashes merged.  Escapes of '/', '\' and NUL, and a
 * raw '\', are refused: servers and frameworks disagree on whether they separate
 * segments, so no single normal form is safe.  A query or fragment ('?' or
 * '#' and what follows) is not part of the endpoint. */
#ifndef TOLLGATE_ENDPOINT_H
#define TOLLGATE_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of a normal endpoint, method and space included. */
#define ENDPOINT_MAX 1024
/* Bytes of a limit's endpoint pattern. */
#define ENDPOINT_PATTERN_MAX 256
/* Letters of a method. */
#define ENDPOINT_METHOD_MAX 20

enum endpoint_status {
    ENDPOINT_OK = 0,
    ENDPOINT_BAD_METHOD,  /* not 1-20 letters A-Z */
    ENDPOINT_BAD_FORM,    /* not "METHOD /path", or a path not starting with '/' */
    ENDPOINT_BAD_ESCAPE,  /* '%' not followed by two hex digits */
    ENDPOINT_AMBIGUOUS,   /* an escaped '/', '\' or NUL, or a raw '\' */
    ENDPOINT_TOO_LONG,    /* longer than the bound once normal */
    ENDPOINT_NOT_NORMAL,  /* a pattern that is not written in normal form */
};

/* Writes "METHOD /normal-path" for a request's method and raw path (the
 * request URI without its query) into out (ENDPOINT_MAX + 1 bytes). */
enum endpoint_status endpoint_from_request(const char *method, const char *path,
                                           char out[ENDPOINT_MAX + 1]);

/* Parses "METHOD /path" text (POST /v1/check's endpoint) into its normal form
 * in out (ENDPOINT_MAX + 1 bytes). */
enum endpoint_status endpoint_normalize(const char *text, char out[ENDPOINT_MAX + 1]);

/* Validates a limit's pattern: "METHOD /path" or "METHOD /prefix*", at most
 * ENDPOINT_PATTERN_MAX bytes, already in normal form (so that what is
 * stored is exactly what is matched). */
enum endpoint_status endpoint_pattern_check(const char *pattern);

/* True when a normal endpoint matches pattern: equal, or, for a pattern
 * ending in '*', starting with what precedes the '*'. */
bool endpoint_match(const char *pattern, const char *endpoint);

/* A sentence for a failure, for error messages. */
const char *endpoint_status_text(enum endpoint_status st);

#endif
