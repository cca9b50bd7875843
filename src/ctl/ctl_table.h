/* ctl_table: tollgatectl's output.  A table has a header line and one line
 * per row, columns padded to their widest cell and separated by two
 * spaces; a missing or null value is "-"; strings are shown as they are,
 * with control characters replaced by '?' (a value must not steer the
 * terminal); other JSON values in their compact JSON text.  --json prints
 * the API's answer unchanged instead. */
#ifndef TOLLGATE_CTL_TABLE_H
#define TOLLGATE_CTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

#include "strbuf.h"

struct ctl_col {
    const char *header; /* "OWNER" */
    const char *path;   /* member of a row, dotted for nested ones: "quota.used" */
};

/* The text of row's member path (see above) appended to b. */
void ctl_table_cell(struct strbuf *b, json_object *row, const char *path);

/* Prints rows (a JSON array of objects; NULL or another type prints the
 * header alone) as a table of ncols columns to out. */
void ctl_table_print(FILE *out, const struct ctl_col *cols, size_t ncols, json_object *rows);

/* Prints obj's members as a two-column table, FIELD and VALUE, in the
 * object's order. */
void ctl_table_print_object(FILE *out, json_object *obj);

#endif
