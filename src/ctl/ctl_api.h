/* ctl_api: one call of the management API as the API commands make it:
 * send, report an error answer from its body, print --json answers
 * unchanged, parse the others for a table. */
#ifndef TOLLGATE_CTL_API_H
#define TOLLGATE_CTL_API_H

#include <stdbool.h>

#include <json-c/json.h>

#include "ctl.h"
#include "ctl_table.h"

/* Sends method path body (JSON or NULL) through ctl's client (opened on
 * first use).  An error answer, or no answer, is printed to stderr as
 * "tollgatectl: CODE: MESSAGE" and returns 1.  A success with json set is
 * also printed to stdout as received.  On success *out is the parsed
 * answer (the caller puts it; NULL for an empty body). */
int ctl_api_call(struct ctl *ctl, const char *method, const char *path, const char *body,
                 bool json, json_object **out);

/* Prints the "data" array of a list answer as a table, and the next page's
 * cursor, if any, to stderr ("next page: --cursor C"). */
void ctl_api_print_list(json_object *answer, const struct ctl_col *cols, size_t ncols);

/* The path prefix + percent-encoded id + suffix, in b (emptied first). */
void ctl_api_path(struct strbuf *b, const char *prefix, const char *id, const char *suffix);

/* Appends to path a query parameter for each pair {option, parameter} of
 * pairs (a NULL-terminated list of names, two by two) whose option was
 * given, percent-encoded. */
void ctl_api_query(struct strbuf *path, const struct ctl_args *a, const char *const *pairs);

/* How an option's text becomes a member of a request body. */
enum ctl_value { CTL_V_STRING, CTL_V_INT, CTL_V_JSON };

/* Adds member = text, read as kind (CTL_V_INT: an integer, or "null";
 * CTL_V_JSON: any JSON text), to the object body when text is not NULL.
 * Returns 0, or -1 with a sentence naming option in msg. */
int ctl_api_body_add(json_object *body, const char *member, const char *option,
                     const char *text, enum ctl_value kind, char *msg, size_t msglen);

/* Options every list command takes: --limit, --cursor, --json. */
#define CTL_OPTS_PAGE                                                               \
    {"limit", "N", "at most N entries (1-1000, default 100)"},                      \
        {"cursor", "CURSOR", "the page after the one that printed this cursor"}, \
        {"json", NULL, "print the API's JSON answer instead of a table"}
#define CTL_OPT_JSON {"json", NULL, "print the API's JSON answer instead of a table"}

#endif
