/* amqpx: one AMQP 0-9-1 connection (librabbitmq) on channel 1, with the usage
 * topology declared, for the publisher (confirmed publishes) and for
 * tollgate-billingd (manual-ack consumption).
 *
 * Topology, declared idempotently by whoever connects first: durable direct
 * exchange USAGE_EXCHANGE bound to the quorum queue USAGE_QUEUE (durable,
 * replicated when the broker is a cluster), whose rejected messages go to
 * USAGE_DEAD_QUEUE through USAGE_DEAD_EXCHANGE. */
#ifndef TOLLGATE_AMQPX_H
#define TOLLGATE_AMQPX_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

#define USAGE_EXCHANGE "tollgate.usage"
#define USAGE_QUEUE "tollgate.usage"
#define USAGE_ROUTING_KEY "usage"
#define USAGE_DEAD_EXCHANGE "tollgate.usage.dead"
#define USAGE_DEAD_QUEUE "tollgate.usage.dead"

struct amqpx;

/* Opens conn's socket to cfg's broker (AMQPS when [amqp] tls is set: the
 * broker's certificate verified against tls_ca_file and its name against
 * the host, TLS 1.2 or later), bounded by tv.  0, or -1 with err filled. */
int amqpx_open_socket(amqp_connection_state_t conn, const struct config *cfg,
                      struct timeval *tv, struct api_error *err) TG_WUR;

/* Connects with cfg's [amqp] settings, logs in, opens channel 1 and declares
 * the topology; every step bounded by timeout_ms.  NULL with err filled
 * (never the password). */
struct amqpx *amqpx_connect(const struct config *cfg, int timeout_ms, struct api_error *err);
void amqpx_close(struct amqpx *c);

/* ---- publishing ---- */

/* Puts the channel in confirm mode (once, before the first publish). */
int amqpx_confirm_select(struct amqpx *c, struct api_error *err) TG_WUR;
/* Publishes body persistently to the usage exchange with message_id set and
 * waits up to timeout_ms for the broker's confirm.  0 when confirmed; -1
 * (err filled) when nacked, returned, timed out or the connection failed:
 * then close the connection, as its state is unknown. */
int amqpx_publish(struct amqpx *c, const char *message_id, const void *body, size_t len,
                  int timeout_ms, struct api_error *err) TG_WUR;

/* Services the connection while idle (heartbeats both ways) without
 * waiting.  0, or -1 when the connection failed. */
int amqpx_pump(struct amqpx *c, struct api_error *err) TG_WUR;

/* ---- consuming ---- */

struct amqpx_delivery {
    uint64_t tag;
    bool redelivered;
    char *body; /* NUL-terminated copy; caller frees */
    size_t len;
};

/* Starts consuming USAGE_QUEUE with manual acks and prefetch unacknowledged
 * messages at most. */
int amqpx_consume(struct amqpx *c, int prefetch, struct api_error *err) TG_WUR;
/* Waits up to timeout_ms for the next delivery: 1 (d filled), 0 (none in
 * time), -1 (connection failed; err filled). */
int amqpx_next(struct amqpx *c, int timeout_ms, struct amqpx_delivery *d, struct api_error *err) TG_WUR;
/* Acknowledges tag (and, with multiple, every earlier one). */
int amqpx_ack(struct amqpx *c, uint64_t tag, bool multiple, struct api_error *err) TG_WUR;
/* Rejects one delivery without requeueing: it goes to the dead-letter queue. */
int amqpx_reject(struct amqpx *c, uint64_t tag, struct api_error *err) TG_WUR;

#endif
