/* strbuf: a growable text buffer, always NUL-terminated, for the texts the
 * program builds piece by piece (metrics exposition, batch messages, COPY
 * rows and array literals). */
#ifndef TOLLGATE_STRBUF_H
#define TOLLGATE_STRBUF_H

#include <stddef.h>
#include <stdint.h>

/* Zero-initialise ({0}); p stays NULL until something is added. */
struct strbuf {
    char *p;
    size_t len, cap;
};

/* Room for more bytes past len, plus the terminating NUL. */
void strbuf_reserve(struct strbuf *b, size_t more);
void strbuf_put(struct strbuf *b, const char *s, size_t n);
void strbuf_putc(struct strbuf *b, char c);
/* A decimal integer. */
void strbuf_int(struct strbuf *b, int64_t v);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string, quoted and escaped as json-c writes it (", \\ and
 * control characters; '/' and UTF-8 as they are). */
void strbuf_json_str(struct strbuf *b, const char *s);
/* Empties the text, keeping the allocation. */
void strbuf_reset(struct strbuf *b);
void strbuf_fini(struct strbuf *b);

#endif
