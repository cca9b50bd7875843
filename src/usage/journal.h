/* journal: the per-process usage journal, a ring of fixed 128-byte slots in
 * a memory-mapped file.
 *
 * Why a mapped file: appending is a few stores into shared pages, with no
 * system call, and the pages belong to the page cache, so a check recorded
 * before a SIGKILL is still there for the next process.  The owner holds an
 * flock(2) on the file for its lifetime; a file whose lock can be taken has
 * no living owner and is adopted (replayed) by whoever takes it.
 *
 * Positions are slot sequence numbers that only grow (slot = pos % nslots).
 * Writers reserve consecutive slots with a compare-and-swap on the reserve
 * counter, fill them, then store in every slot its own pos + 1 as a commit
 * mark (release).  A record is one slot, or up to JOURNAL_MAX_SLOTS for a long
 * endpoint.  The one reader (the publisher thread) consumes from the head:
 *  - journal_scan reads committed records from a position;
 *  - journal_set_pending persists the end of the batch being published, so
 *    that after a crash the same range, hence the same batch id, is replayed;
 *  - journal_advance moves the head once the broker confirmed the batch.
 * Writers see the head to know when the ring is full: then the append fails
 * and is counted in the header (the check itself still answers). */
#ifndef TOLLGATE_JOURNAL_H
#define TOLLGATE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define JOURNAL_SLOT 128
#define JOURNAL_MAX_SLOTS 4
#define JOURNAL_ID_LEN 16 /* base62 characters naming one journal file */
#define JOURNAL_KEY_MAX 64
#define JOURNAL_ENDPOINT_MAX 300

enum usage_outcome {
    USAGE_ALLOWED,
    USAGE_RATE_LIMITED,
    USAGE_QUOTA_EXCEEDED,
    USAGE_DENIED_OTHER, /* suspended, revoked, expired, store unavailable */
    USAGE_OUTCOMES
};

/* One check outcome as appended and as read back. */
struct journal_rec {
    int64_t ts_ms;
    enum usage_outcome outcome;
    int cost; /* 1-1000 */
    const char *key_id;
    size_t key_len; /* 1..JOURNAL_KEY_MAX */
    const char *endpoint;
    size_t endpoint_len; /* 1..JOURNAL_ENDPOINT_MAX */
    /* The key had a credit balance: the check was charged against the one
     * set with this remaining version (billingd keeps the consumption of
     * the current version only).  Records of older journals have none. */
    bool has_credits;
    int64_t credit_version;
    /* The highest use of the key's windows after this check, in percent of
     * each window's limit (0-100; 100 for a check a window denied), for the
     * limit_near alerts.  Records of older journals read 0. */
    uint8_t peak_pct;
};

struct journal;

/* Creates a new journal file "<id>.tgj" of mb MiB (sparse) in dir, locked
 * for this process.  Returns NULL with err filled. */
struct journal *journal_create(const char *dir, int64_t mb, struct api_error *err);

/* Takes the lock of one journal file in dir that no living process holds
 * (other than those listed in skip: journals this process already has open),
 * maps it and returns it; NULL when there is none (err->message empty) or on
 * error (err filled).  A file that is not a journal is left alone. */
struct journal *journal_adopt(const char *dir, struct journal *const *skip, size_t nskip,
                              struct api_error *err);

/* Unmaps and unlocks; with remove, unlinks the file first (call it only
 * when the journal is drained). */
void journal_close(struct journal *j, bool remove);

/* Appends one record; thread-safe, no system call.  Returns 0, or -1 when the
 * ring is full or the record is malformed (counted as dropped). */
int journal_append(struct journal *j, const struct journal_rec *rec);

/* Reader side: one thread at a time. */
typedef void (*journal_fn)(const struct journal_rec *rec, void *arg);

/* Calls fn for each committed record from position from, stopping before
 * position end (0: no bound), after max records (0: no bound), or at the
 * first slot not yet committed.  In an adopted journal (no writer can still
 * be running) a slot never committed is skipped instead and counted as lost.
 * Returns the position after the last slot consumed.  The record given to fn
 * points into a buffer of j, valid until fn returns; key_id and endpoint are
 * also NUL-terminated there. */
uint64_t journal_scan(struct journal *j, uint64_t from, uint64_t end, size_t max, journal_fn fn,
                      void *arg);

uint64_t journal_head(const struct journal *j);
uint64_t journal_reserved(const struct journal *j); /* first position never reserved */
/* End of the batch being published (== head when none); persisted. */
uint64_t journal_pending(const struct journal *j);
void journal_set_pending(struct journal *j, uint64_t end);
/* Consumes up to pos (the confirmed batch's end); clears pending. */
void journal_advance(struct journal *j, uint64_t pos);

const char *journal_id(const struct journal *j); /* JOURNAL_ID_LEN characters, NUL-ended */
bool journal_adopted(const struct journal *j);
uint64_t journal_capacity(const struct journal *j); /* in slots */
uint64_t journal_dropped(const struct journal *j);  /* appends refused, since creation */
uint64_t journal_lost(const struct journal *j);     /* slots skipped as never committed */

#endif
