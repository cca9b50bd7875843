/* libFuzzer harness for src/check/endpoint.c.  The input is a request's
 * method and path (split at the first newline).  Whatever it is, a normal
 * endpoint must be: "METHOD /..." with only path characters and upper-case
 * escapes, no empty, "." or ".." segment, within the bound, and a fixed
 * point (normalising it again gives it back).  A violation aborts, which
 * libFuzzer reports like a crash.  Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok)
{
    if (!ok)
        abort();
}

static int is_hex_upper(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static void check_normal(const char *ep)
{
    size_t n = strlen(ep);
    require(n <= ENDPOINT_MAX);
    const char *sp = strchr(ep, ' ');
    require(sp && sp > ep && sp - ep <= ENDPOINT_METHOD_MAX && sp[1] == '/');
    for (const char *p = ep; p < sp; p++)
        require(*p >= 'A' && *p <= 'Z');
    const char *path = sp + 1;
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        require(c > 0x20 && c < 0x7F && !strchr("\"<>\\^`{|}?#", c));
        if (c == '%')
            require(is_hex_upper(p[1]) && is_hex_upper(p[2]));
    }
    require(!strstr(path, "//") && !strstr(path, "/./") && !strstr(path, "/../"));
    size_t pl = strlen(path);
    require(!(pl >= 2 && strcmp(path + pl - 2, "/.") == 0));
    require(!(pl >= 3 && strcmp(path + pl - 3, "/..") == 0));
    char again[ENDPOINT_MAX + 1];
    require(endpoint_normalize(ep, again) == ENDPOINT_OK && strcmp(again, ep) == 0);
    /* an exact pattern of a normal endpoint is valid when short enough */
    if (n <= ENDPOINT_PATTERN_MAX && !strchr(ep, '*'))
        require(endpoint_pattern_check(ep) == ENDPOINT_OK && endpoint_match(ep, ep));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char out[ENDPOINT_MAX + 1];
    char *nl = strchr(text, '\n');
    if (nl) {
        *nl = '\0';
        if (endpoint_from_request(text, nl + 1, out) == ENDPOINT_OK)
            check_normal(out);
        else
            require(out[0] == '\0');
    } else {
        if (endpoint_normalize(text, out) == ENDPOINT_OK)
            check_normal(out);
        (void)endpoint_pattern_check(text);
        (void)endpoint_status_text(endpoint_pattern_check(text));
    }
    free(text);
    return 0;
}
