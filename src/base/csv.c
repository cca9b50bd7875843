/* csv: see csv.h. */
#include "csv.h"

#include <string.h>

bool csv_formula_start(char c)
{
    return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

void csv_text(struct strbuf *b, const char *s, size_t len, bool first)
{
    if (!first)
        strbuf_putc(b, ',');
    bool formula = len > 0 && csv_formula_start(s[0]);
    bool quote = formula;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        strbuf_put(b, s, len);
        return;
    }
    strbuf_reserve(b, len + 4);
    strbuf_putc(b, '"');
    if (formula)
        strbuf_putc(b, '\'');
    /* Runs between quotes are copied whole; each quote is doubled. */
    const char *p = s, *end = s + len, *q;
    while ((q = memchr(p, '"', (size_t)(end - p)))) {
        strbuf_put(b, p, (size_t)(q - p) + 1);
        strbuf_putc(b, '"');
        p = q + 1;
    }
    strbuf_put(b, p, (size_t)(end - p));
    strbuf_putc(b, '"');
}

void csv_int(struct strbuf *b, int64_t v, bool first)
{
    if (!first)
        strbuf_putc(b, ',');
    strbuf_int(b, v);
}

void csv_end_row(struct strbuf *b)
{
    strbuf_put(b, "\r\n", 2);
}
