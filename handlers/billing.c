/* placeholder: being written */
#include "auth.h"
#include "common.h"
#include "handlers.h"

static void billing_close(struct http_req *r)
{
    struct api_error e;
    api_error_set(&e, 503, "unavailable", NULL, "Not available yet.");
    http_reply_error(r, &e);
}

const struct route billing_routes[] = {
    {"POST", "/v1/billing/periods/{period}/close", ROLE_BILLING | ROLE_ADMIN, billing_close, 0},
};
const size_t billing_routes_len = TG_ARRAY_LEN(billing_routes);
