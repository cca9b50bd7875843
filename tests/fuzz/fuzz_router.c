/* libFuzzer harness for the router and the query-string parser: the input
 * is "METHOD path?query".  A match yields parameters of bounded size that
 * are valid UTF-8; a parsed query holds at most HTTP_MAX_QUERY pairs.
 * Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "router.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void nothing(struct http_req *r)
{
    (void)r;
}

static const struct route routes[] = {
    {"GET", "/v1/keys", 1, nothing, 0, NULL},
    {"POST", "/v1/keys", 1, nothing, 0, NULL},
    {"GET", "/v1/keys/{id}", 1, nothing, 0, NULL},
    {"PATCH", "/v1/keys/{id}", 1, nothing, 0, NULL},
    {"POST", "/v1/keys/{id}/rotate", 1, nothing, 0, NULL},
    {"GET", "/v1/owners/{owner_id}/usage", 1, nothing, 0, NULL},
    {"POST", "/v1/billing/periods/{period}/close", 1, nothing, 0, NULL},
    {"GET", "/healthz", 0, nothing, 0, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct router *rt;
    if (!rt) {
        rt = router_new();
        router_add(rt, routes, sizeof routes / sizeof routes[0]);
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *sp = strchr(text, ' ');
    const char *method = sp ? text : "GET";
    char *path = sp ? sp + 1 : text;
    if (sp)
        *sp = '\0';
    char *q = strchr(path, '?');
    if (q)
        *q++ = '\0';
    const struct route *r = NULL;
    char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX], allow[128];
    int n = 0;
    if (router_match(rt, method, path, &r, params, &n, allow, sizeof allow) == ROUTER_OK) {
        if (!r || n < 0 || n > HTTP_MAX_PARAMS)
            abort();
        for (int i = 0; i < n; i++)
            if (strlen(params[i]) >= HTTP_PARAM_MAX || !utf8_valid(params[i], strlen(params[i])))
                abort();
    }
    struct http_req req;
    memset(&req, 0, sizeof req);
    struct api_error e;
    if (http_query_parse(&req, q, &e) == 0 && (req.nquery < 0 || req.nquery > HTTP_MAX_QUERY))
        abort();
    for (int i = 0; i < req.nquery; i++)
        (void)http_query(&req, req.query[i].name);
    http_req_fini(&req);
    free(text);
    return 0;
}
