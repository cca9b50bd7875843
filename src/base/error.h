/* error: the one error type of the program.  A function that fails returns
 * -1 (or NULL) and fills the caller's struct api_error, when given one, with
 * an enum code, a sentence and, for a database failure, the SQLSTATE; only
 * the HTTP edge turns the code into a status and the contract's snake_case
 * name.  Failures that never reach a client (configuration, the broker)
 * use the same type: their sentence is what gets logged. */
#ifndef TOLLGATE_ERROR_H
#define TOLLGATE_ERROR_H

enum err_code {
    ERR_NONE = 0,
    ERR_INVALID_JSON,
    ERR_INVALID_ARGUMENT,
    ERR_UNKNOWN_FIELD,
    ERR_MISSING_FIELD,
    ERR_NOT_FOUND,
    ERR_CONFLICT,
    ERR_UNAUTHENTICATED,
    ERR_FORBIDDEN,
    ERR_PAYLOAD_TOO_LARGE,
    ERR_METHOD_NOT_ALLOWED,
    ERR_UNSUPPORTED_MEDIA_TYPE,
    ERR_RATE_LIMITED,
    ERR_UNAVAILABLE,
    ERR_INTERNAL,
    /* the refusals of a check (its "reason") */
    ERR_INVALID_KEY,
    ERR_EXPIRED,
    ERR_SUSPENDED,
    ERR_REVOKED,
    ERR_QUOTA_EXCEEDED,
    ERR_COUNT
};

struct api_error {
    enum err_code code;
    char sqlstate[6]; /* "" unless a database statement failed */
    char message[256];
    char field[128];
};

/* Fills e (nothing when e is NULL: callers may not want the detail);
 * field (a JSON path) may be NULL.  The SQLSTATE is emptied: the database
 * module fills it after. */
void api_error_set(struct api_error *e, enum err_code code, const char *field, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* The contract's name of code ("invalid_argument"), "internal" if unknown. */
const char *err_name(enum err_code code);
/* The HTTP status that answers code (500 if unknown). */
int err_http_status(enum err_code code);

#endif
