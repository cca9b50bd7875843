#include "amqpx.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "util.h"

#define CHANNEL 1
/* The broker drops a connection that misses two heartbeats; the library
 * answers them whenever it reads or writes, which both users do at least
 * every second. */
#define HEARTBEAT_S 30

struct amqpx {
    amqp_connection_state_t conn;
    uint64_t published; /* delivery tags in confirm mode count publishes */
    char where[300];    /* "amqp host:port", for messages */
};

static struct timeval tv_of(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Error text of a reply, for messages: the broker's own reason when it
 * closed the channel or the connection. */
static void reply_error(const struct amqpx *c, amqp_rpc_reply_t r, const char *what,
                        struct api_error *err)
{
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: %s: %s", c->where, what, amqp_error_string2(r.library_error));
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
               (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD ||
                r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        /* Both close methods start with reply_code and reply_text. */
        const amqp_channel_close_t *m = r.reply.decoded;
        api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: %s: broker closed (%u %.*s)", c->where, what, m->reply_code,
                   (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    } else {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: %s failed", c->where, what);
    }
}

static int check_rpc(struct amqpx *c, const char *what, struct api_error *err)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    reply_error(c, r, what, err);
    return -1;
}

static amqp_table_entry_t text_entry(const char *key, const char *value)
{
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(value);
    return e;
}

/* Durable exchanges and quorum queues; redeclaring with the same arguments
 * is a no-op, so every process may do it. */
static int declare_topology(struct amqpx *c, struct api_error *err)
{
    amqp_table_entry_t dead_args[] = {text_entry("x-queue-type", "quorum")};
    amqp_table_entry_t args[] = {text_entry("x-queue-type", "quorum"),
                                 text_entry("x-dead-letter-exchange", USAGE_DEAD_EXCHANGE)};
    amqp_table_t dead_table = {(int)TG_ARRAY_LEN(dead_args), dead_args};
    amqp_table_t table = {(int)TG_ARRAY_LEN(args), args};

    amqp_exchange_declare(c->conn, CHANNEL, amqp_cstring_bytes(USAGE_DEAD_EXCHANGE),
                          amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
    if (check_rpc(c, "declaring " USAGE_DEAD_EXCHANGE, err) != 0)
        return -1;
    amqp_queue_declare(c->conn, CHANNEL, amqp_cstring_bytes(USAGE_DEAD_QUEUE), 0, 1, 0, 0,
                       dead_table);
    if (check_rpc(c, "declaring " USAGE_DEAD_QUEUE, err) != 0)
        return -1;
    amqp_queue_bind(c->conn, CHANNEL, amqp_cstring_bytes(USAGE_DEAD_QUEUE),
                    amqp_cstring_bytes(USAGE_DEAD_EXCHANGE), amqp_empty_bytes, amqp_empty_table);
    if (check_rpc(c, "binding " USAGE_DEAD_QUEUE, err) != 0)
        return -1;
    amqp_exchange_declare(c->conn, CHANNEL, amqp_cstring_bytes(USAGE_EXCHANGE),
                          amqp_cstring_bytes("direct"), 0, 1, 0, 0, amqp_empty_table);
    if (check_rpc(c, "declaring " USAGE_EXCHANGE, err) != 0)
        return -1;
    amqp_queue_declare(c->conn, CHANNEL, amqp_cstring_bytes(USAGE_QUEUE), 0, 1, 0, 0, table);
    if (check_rpc(c, "declaring " USAGE_QUEUE, err) != 0)
        return -1;
    amqp_queue_bind(c->conn, CHANNEL, amqp_cstring_bytes(USAGE_QUEUE),
                    amqp_cstring_bytes(USAGE_EXCHANGE), amqp_cstring_bytes(USAGE_ROUTING_KEY),
                    amqp_empty_table);
    return check_rpc(c, "binding " USAGE_QUEUE, err);
}

/* The library checks a certificate's DNS names, not its addresses: a TLS
 * broker is named by host name in [amqp] host. */
static amqp_socket_t *tls_socket(amqp_connection_state_t conn, const struct config *cfg,
                                 struct api_error *err)
{
    amqp_socket_t *sock = amqp_ssl_socket_new(conn);
    if (!sock) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "amqps %s: cannot create a TLS socket",
                      cfg->amqp_host);
        return NULL;
    }
    amqp_ssl_socket_set_verify_peer(sock, 1);
    amqp_ssl_socket_set_verify_hostname(sock, 1);
    int st = amqp_ssl_socket_set_ssl_versions(sock, AMQP_TLSv1_2, AMQP_TLSvLATEST);
    if (st == AMQP_STATUS_OK)
        st = amqp_ssl_socket_set_cacert(sock, cfg->amqp_tls_ca_file);
    if (st == AMQP_STATUS_OK && *cfg->amqp_tls_cert_file)
        st = amqp_ssl_socket_set_key(sock, cfg->amqp_tls_cert_file, cfg->amqp_tls_key_file);
    if (st != AMQP_STATUS_OK) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "amqps %s: TLS set-up: %s", cfg->amqp_host,
                      amqp_error_string2(st));
        return NULL; /* the socket belongs to the connection, which frees it */
    }
    return sock;
}

int amqpx_open_socket(amqp_connection_state_t conn, const struct config *cfg,
                      struct timeval *tv, struct api_error *err)
{
    amqp_socket_t *sock = cfg->amqp_tls ? tls_socket(conn, cfg, err) : amqp_tcp_socket_new(conn);
    if (!sock) {
        if (!cfg->amqp_tls)
            api_error_set(err, ERR_UNAVAILABLE, NULL, "amqp %s: cannot create a socket",
                          cfg->amqp_host);
        return -1;
    }
    int st = amqp_socket_open_noblock(sock, cfg->amqp_host, (int)cfg->amqp_port, tv);
    if (st != AMQP_STATUS_OK) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "amqp%s %s:%lld: %s", cfg->amqp_tls ? "s" : "",
                      cfg->amqp_host, (long long)cfg->amqp_port, amqp_error_string2(st));
        return -1;
    }
    /* Bounds the login exchange too. */
    amqp_set_handshake_timeout(conn, tv);
    amqp_set_rpc_timeout(conn, tv);
    return 0;
}

struct amqpx *amqpx_connect(const struct config *cfg, int timeout_ms, struct api_error *err)
{
    struct amqpx *c = xcalloc(1, sizeof *c);
    snprintf(c->where, sizeof c->where, "amqp%s %s:%lld", cfg->amqp_tls ? "s" : "",
             cfg->amqp_host, (long long)cfg->amqp_port);
    c->conn = amqp_new_connection();
    struct timeval tv = tv_of(timeout_ms);
    if (amqpx_open_socket(c->conn, cfg, &tv, err) != 0)
        goto fail;
    amqp_rpc_reply_t r = amqp_login(c->conn, cfg->amqp_vhost, 0, 131072, HEARTBEAT_S,
                                    AMQP_SASL_METHOD_PLAIN, cfg->amqp_user, cfg->amqp_password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_error(c, r, "login", err);
        goto fail;
    }
    amqp_channel_open(c->conn, CHANNEL);
    if (check_rpc(c, "opening a channel", err) != 0 || declare_topology(c, err) != 0)
        goto fail;
    return c;
fail:
    amqpx_close(c);
    return NULL;
}

void amqpx_close(struct amqpx *c)
{
    if (!c)
        return;
    /* A polite close when the connection still works; bounded by the RPC
     * timeout set at connect. */
    if (amqp_get_socket(c->conn) && amqp_get_sockfd(c->conn) >= 0)
        amqp_connection_close(c->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c->conn);
    free(c);
}

int amqpx_confirm_select(struct amqpx *c, struct api_error *err)
{
    amqp_confirm_select(c->conn, CHANNEL);
    return check_rpc(c, "confirm.select", err);
}

/* Milliseconds left until deadline (CLOCK_MONOTONIC ms), at least 0. */
static int ms_left(int64_t deadline)
{
    int64_t left = deadline - mono_ms();
    return left > 0 ? (int)left : 0;
}

/* Reads and drops the header and body frames of a returned message. */
static int skip_content(struct amqpx *c, int64_t deadline)
{
    amqp_frame_t f;
    struct timeval tv = tv_of(ms_left(deadline));
    if (amqp_simple_wait_frame_noblock(c->conn, &f, &tv) != AMQP_STATUS_OK ||
        f.frame_type != AMQP_FRAME_HEADER)
        return -1;
    uint64_t size = f.payload.properties.body_size, got = 0;
    while (got < size) {
        tv = tv_of(ms_left(deadline));
        if (amqp_simple_wait_frame_noblock(c->conn, &f, &tv) != AMQP_STATUS_OK ||
            f.frame_type != AMQP_FRAME_BODY)
            return -1;
        got += f.payload.body_fragment.len;
    }
    return 0;
}

int amqpx_publish(struct amqpx *c, const char *message_id, const void *body, size_t len,
                  int timeout_ms, struct api_error *err)
{
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = 2; /* persistent */
    props.message_id = amqp_cstring_bytes(message_id);
    amqp_bytes_t b = {len, (void *)(uintptr_t)body};
    /* mandatory: a message no queue takes comes back instead of vanishing. */
    int st = amqp_basic_publish(c->conn, CHANNEL, amqp_cstring_bytes(USAGE_EXCHANGE),
                                amqp_cstring_bytes(USAGE_ROUTING_KEY), 1, 0, &props, b);
    if (st != AMQP_STATUS_OK) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: publish: %s", c->where, amqp_error_string2(st));
        return -1;
    }
    uint64_t tag = ++c->published;
    bool returned = false;
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        amqp_frame_t f;
        struct timeval tv = tv_of(ms_left(deadline));
        st = amqp_simple_wait_frame_noblock(c->conn, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT) {
            api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: no confirm within %d ms", c->where, timeout_ms);
            return -1;
        }
        if (st != AMQP_STATUS_OK) {
            api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: waiting for the confirm: %s", c->where, amqp_error_string2(st));
            return -1;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue; /* heartbeats */
        amqp_method_number_t id = f.payload.method.id;
        if (id == AMQP_BASIC_ACK_METHOD) {
            const amqp_basic_ack_t *a = f.payload.method.decoded;
            if (a->delivery_tag == tag || (a->multiple && a->delivery_tag > tag)) {
                if (!returned)
                    return 0;
                api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: message returned: no queue is bound to %s", c->where,
                           USAGE_EXCHANGE);
                return -1;
            }
        } else if (id == AMQP_BASIC_NACK_METHOD) {
            const amqp_basic_nack_t *n = f.payload.method.decoded;
            if (n->delivery_tag == tag || (n->multiple && n->delivery_tag > tag)) {
                api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: the broker refused the message (nack)", c->where);
                return -1;
            }
        } else if (id == AMQP_BASIC_RETURN_METHOD) {
            returned = true;
            if (skip_content(c, deadline) != 0) {
                api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: reading a returned message failed", c->where);
                return -1;
            }
        } else if (id == AMQP_CHANNEL_CLOSE_METHOD || id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_rpc_reply_t r;
            memset(&r, 0, sizeof r);
            r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
            r.reply = f.payload.method;
            reply_error(c, r, "publish", err);
            return -1;
        }
    }
}

int amqpx_pump(struct amqpx *c, struct api_error *err)
{
    for (;;) {
        amqp_frame_t f;
        struct timeval tv = {0, 0};
        int st = amqp_simple_wait_frame_noblock(c->conn, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT)
            return 0;
        if (st != AMQP_STATUS_OK) {
            api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: %s", c->where, amqp_error_string2(st));
            return -1;
        }
        if (f.frame_type == AMQP_FRAME_METHOD && (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                                                  f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
            api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: the broker closed the connection", c->where);
            return -1;
        }
    }
}

int amqpx_consume(struct amqpx *c, int prefetch, struct api_error *err)
{
    amqp_basic_qos(c->conn, CHANNEL, 0, (uint16_t)prefetch, 0);
    if (check_rpc(c, "basic.qos", err) != 0)
        return -1;
    amqp_basic_consume(c->conn, CHANNEL, amqp_cstring_bytes(USAGE_QUEUE), amqp_empty_bytes, 0, 0,
                       0, amqp_empty_table);
    return check_rpc(c, "basic.consume", err);
}

int amqpx_next(struct amqpx *c, int timeout_ms, struct amqpx_delivery *d, struct api_error *err)
{
    memset(d, 0, sizeof *d);
    amqp_maybe_release_buffers(c->conn);
    amqp_envelope_t env;
    struct timeval tv = tv_of(timeout_ms);
    amqp_rpc_reply_t r = amqp_consume_message(c->conn, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_TIMEOUT)
        return 0;
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        /* AMQP_STATUS_UNEXPECTED_STATE: a method other than a delivery
         * arrived (the broker closing the channel, a cancel): the consumer
         * is gone either way, so the caller reconnects. */
        reply_error(c, r, "consuming", err);
        return -1;
    }
    d->tag = env.delivery_tag;
    d->redelivered = env.redelivered != 0;
    d->len = env.message.body.len;
    d->body = xmalloc(d->len + 1);
    memcpy(d->body, env.message.body.bytes, d->len);
    d->body[d->len] = '\0';
    amqp_destroy_envelope(&env);
    return 1;
}

int amqpx_ack(struct amqpx *c, uint64_t tag, bool multiple, struct api_error *err)
{
    int st = amqp_basic_ack(c->conn, CHANNEL, tag, multiple);
    if (st != AMQP_STATUS_OK) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: ack: %s", c->where, amqp_error_string2(st));
        return -1;
    }
    return 0;
}

int amqpx_reject(struct amqpx *c, uint64_t tag, struct api_error *err)
{
    int st = amqp_basic_reject(c->conn, CHANNEL, tag, 0);
    if (st != AMQP_STATUS_OK) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "%s: reject: %s", c->where, amqp_error_string2(st));
        return -1;
    }
    return 0;
}
