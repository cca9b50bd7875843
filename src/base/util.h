/* util: allocation with one out-of-memory policy, checked number parsing,
 * time, UTF-8 validation, randomness and base62.  No I/O but the clock and
 * the kernel's CSPRNG. */
#ifndef TOLLGATE_UTIL_H
#define TOLLGATE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define TG_WUR __attribute__((warn_unused_result))
#define TG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation never returns NULL: running out of memory aborts with a message,
 * the one policy of the whole program. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Copies at most dstsize-1 bytes and always terminates; returns strlen(src)
 * so truncation is detectable (>= dstsize). */
size_t strlcpy_tg(char *dst, const char *src, size_t dstsize);

/* Parses the whole string as a decimal integer in [min, max]: no sign games,
 * no trailing bytes, no overflow.  Returns 0 or -1. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out) TG_WUR;

/* Wall-clock milliseconds since the Unix epoch. */
int64_t now_ms(void);
/* Monotonic nanoseconds and milliseconds, for durations and deadlines. */
int64_t mono_ns(void);
int64_t mono_ms(void);
/* The calendar month (UTC) holding ms as YYYYMM, e.g. 202612: the month of
 * a period quota, as the rate-limit script counts it. */
int64_t utc_month(int64_t ms);

/* RFC 3339 in UTC with milliseconds: "2026-11-22T10:00:00.000Z".  buf must
 * hold TG_TIME_LEN bytes. */
#define TG_TIME_LEN 80
void format_time_ms(int64_t ms, char buf[TG_TIME_LEN]);
/* Accepts RFC 3339 with 'Z' or a numeric offset and up to 9 fractional
 * digits (truncated to milliseconds).  Returns 0 or -1. */
int parse_time_ms(const char *s, int64_t *out) TG_WUR;

/* True when [s, s+len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool utf8_valid(const char *s, size_t len);
/* Number of code points of valid UTF-8. */
size_t utf8_len(const char *s, size_t len);
/* True when the string contains a C0 control character or DEL. */
bool has_control_chars(const char *s, size_t len);

/* Fills buf from the kernel CSPRNG; aborts if the kernel cannot supply
 * randomness (nothing sensible can go on without it). */
void random_bytes(void *buf, size_t n);
/* n characters of [0-9A-Za-z] drawn uniformly from the CSPRNG, terminated. */
void random_base62(char *out, size_t n);

/* The process holds secrets (the HMAC secret, database passwords, keys in
 * flight): no core file is ever written of it, whatever the core pattern,
 * and other processes of its user cannot attach to it.  Returns 0 or -1. */
int no_core_dumps(void);

extern const char BASE62[];

/* The value of a hex digit (either case), or -1. */
int hex_digit(int c);

/* True when s (len bytes) matches [a-z0-9<extra>]{1,max}: the form of
 * names, prefixes and ids throughout. */
bool name_ok(const char *s, size_t len, size_t max, const char *extra);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* Constant-time comparison of two equal-length buffers. */
bool ct_equal(const void *a, const void *b, size_t n);

#endif
