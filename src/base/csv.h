/* csv: fields of RFC 4180 CSV, for the exports a payment system or a
 * spreadsheet imports (GET /v1/billing/records?format=csv).
 *
 * Rows end in CRLF; fields are separated by commas.  A text field is
 * quoted when it holds a comma, a double quote, CR or LF (quotes inside
 * are doubled), and also when it starts with a character a spreadsheet
 * reads as the start of a formula (= + - @, TAB, CR): such a field gets a
 * leading apostrophe inside the quotes ("'=1+2"), so that it is shown as
 * text, never evaluated.  Numbers are written bare and are never changed. */
#ifndef TOLLGATE_CSV_H
#define TOLLGATE_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Whether a text field starting with c would be read as a formula. */
bool csv_formula_start(char c);

/* Appends the text field s (len bytes, borrowed) to b, preceded by a comma
 * unless first. */
void csv_text(struct strbuf *b, const char *s, size_t len, bool first);
/* Appends the integer v as a field, preceded by a comma unless first. */
void csv_int(struct strbuf *b, int64_t v, bool first);
/* Ends the row. */
void csv_end_row(struct strbuf *b);

#endif
