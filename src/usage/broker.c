#include "broker.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

int broker_ping(const struct config *cfg, int timeout_ms, struct api_error *err)
{
    int rc = -1;
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (!sock) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "amqp: cannot create a socket");
        goto done;
    }
    int st = amqp_socket_open_noblock(sock, cfg->amqp_host, (int)cfg->amqp_port, &tv);
    if (st != AMQP_STATUS_OK) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "amqp %s:%lld: %s", cfg->amqp_host, (long long)cfg->amqp_port,
                   amqp_error_string2(st));
        goto done;
    }
    /* Bounds the login exchange too. */
    amqp_set_handshake_timeout(conn, &tv);
    amqp_set_rpc_timeout(conn, &tv);
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
