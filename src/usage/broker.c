#include "broker.h"

#include <amqp.h>
#include <sys/time.h>

#include "amqpx.h"

int broker_ping(const struct config *cfg, int timeout_ms, struct api_error *err)
{
    int rc = -1;
    amqp_connection_state_t conn = amqp_new_connection();
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (amqpx_open_socket(conn, cfg, &tv, err) != 0)
        goto done;
    amqp_rpc_reply_t r = amqp_login(conn, cfg->amqp_vhost, 1, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                    cfg->amqp_user, cfg->amqp_password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "amqp %s:%lld: login failed", cfg->amqp_host, (long long)cfg->amqp_port);
        goto done;
    }
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    rc = 0;
done:
    amqp_destroy_connection(conn);
    return rc;
}
