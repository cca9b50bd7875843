#include "error.h"

#include <stdarg.h>
#include <stdio.h>

#include "util.h"

static const struct {
    const char *name;
    int status;
} err_table[ERR_COUNT] = {
    [ERR_NONE] = {"internal", 500},
    [ERR_INVALID_JSON] = {"invalid_json", 400},
    [ERR_INVALID_ARGUMENT] = {"invalid_argument", 400},
    [ERR_UNKNOWN_FIELD] = {"unknown_field", 400},
    [ERR_MISSING_FIELD] = {"missing_field", 400},
    [ERR_NOT_FOUND] = {"not_found", 404},
    [ERR_CONFLICT] = {"conflict", 409},
    [ERR_UNAUTHENTICATED] = {"unauthenticated", 401},
    [ERR_FORBIDDEN] = {"forbidden", 403},
    [ERR_PAYLOAD_TOO_LARGE] = {"payload_too_large", 413},
    [ERR_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405},
    [ERR_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", 415},
    [ERR_RATE_LIMITED] = {"rate_limited", 429},
    [ERR_UNAVAILABLE] = {"unavailable", 503},
    [ERR_INTERNAL] = {"internal", 500},
    [ERR_INVALID_KEY] = {"invalid_key", 401},
    [ERR_EXPIRED] = {"expired", 401},
    [ERR_SUSPENDED] = {"suspended", 403},
    [ERR_REVOKED] = {"revoked", 403},
    [ERR_QUOTA_EXCEEDED] = {"quota_exceeded", 429},
};

void api_error_set(struct api_error *e, enum err_code code, const char *field, const char *fmt,
                   ...)
{
    if (!e)
        return;
    e->code = code;
    e->sqlstate[0] = '\0';
    strlcpy_tg(e->field, field ? field : "", sizeof e->field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

const char *err_name(enum err_code code)
{
    return (unsigned)code < ERR_COUNT ? err_table[code].name : "internal";
}

int err_http_status(enum err_code code)
{
    return (unsigned)code < ERR_COUNT ? err_table[code].status : 500;
}
