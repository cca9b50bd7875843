/* placeholder: being written */
#include "auth.h"
#include "common.h"
#include "handlers.h"

static void events_post(struct http_req *r)
{
    struct api_error e;
    api_error_set(&e, 503, "unavailable", NULL, "Not available yet.");
    http_reply_error(r, &e);
}

const struct route events_routes[] = {
    {"POST", "/v1/usage/events", ROLE_SERVICE | ROLE_ADMIN, events_post, 0},
};
const size_t events_routes_len = TG_ARRAY_LEN(events_routes);
