/* broker: what the responder needs of RabbitMQ so far — a bounded readiness
 * probe (connect, log in, close). */
#ifndef TOLLGATE_BROKER_H
#define TOLLGATE_BROKER_H

#include "config.h"
#include "util.h"

/* Opens an AMQP connection with cfg's [amqp] settings, logs in and closes it,
 * all within timeout_ms.  Returns 0 or -1 with err filled (never the
 * password). */
int broker_ping(const struct config *cfg, int timeout_ms, struct api_error *err) TG_WUR;

#endif
