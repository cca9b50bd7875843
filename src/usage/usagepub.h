/* usagepub: the publisher thread of a responder process.
 *
 * Owns the process's journal (and the orphaned journals it adopts) and one
 * AMQP connection.  Every flush_ms it reads the committed records past the
 * head, aggregates them per (key, endpoint, minute) with usagemsg, marks the
 * range as pending in the journal, publishes it as one message whose id is
 * "<journal id>:<from>-<to>", and on the broker's confirm advances the head.
 * A crash between publish and confirm replays the same range under the same
 * id, which billingd recognises.  While the broker is unreachable nothing
 * advances: the journal grows and drains in order afterwards.
 *
 * Usage events (POST /v1/usage/events) are handed to the same thread, which
 * publishes them in one message and reports the confirm to the caller. */
#ifndef TOLLGATE_USAGEPUB_H
#define TOLLGATE_USAGEPUB_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "journal.h"
#include "usagemsg.h"
#include "util.h"

struct metrics;
struct usagepub;

/* Creates the process's journal in cfg->journal_dir and starts the thread.
 * NULL with err filled when the journal cannot be created. */
struct usagepub *usagepub_start(const struct config *cfg, struct metrics *m, struct api_error *err);
/* Flushes what the journal holds (bounded wait for the broker), stops the
 * thread, closes the journals (removing the drained ones) and frees p. */
void usagepub_stop(struct usagepub *p);

/* The journal the check path appends to. */
struct journal *usagepub_journal(struct usagepub *p);

/* Whether the publisher's connection to the broker is open and confirming,
 * as its thread last found it (probes read this instead of connecting). */
bool usagepub_connected(const struct usagepub *p);

/* Publishes events[0..n) as one confirmed message within timeout_ms.  0, or
 * -1 with err filled (broker unreachable: nothing was queued). */
int usagepub_send_events(struct usagepub *p, const struct usage_event *events, size_t n,
                         int timeout_ms, struct api_error *err) TG_WUR;

#endif
