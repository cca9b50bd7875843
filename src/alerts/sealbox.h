/* sealbox: the webhook secrets at rest.
 *
 * The deliverer must sign with the plaintext secret, so PostgreSQL has to
 * hold something it can be recovered from.  It holds it sealed: AES-256-GCM
 * under a key derived (HMAC-SHA-256 with a fixed label) from the configured
 * hmac_secret, which never enters the database.  A dump, a replica or a
 * backup alone therefore reveals no secret.  The sealed text names the
 * secret id it was sealed under ("<id>:<hex of nonce, ciphertext, tag>"), so
 * rotating hmac_secret (the old one kept in hmac_previous) leaves the
 * existing rules deliverable. */
#ifndef TOLLGATE_SEALBOX_H
#define TOLLGATE_SEALBOX_H

#include <stddef.h>

#include "config.h"
#include "error.h"
#include "strbuf.h"
#include "util.h"

/* Seals plain[0..len) under secrets' current secret (id[0]) into out
 * (reset first). */
void sealbox_seal(const struct config_secrets *s, const char *plain, size_t len,
                  struct strbuf *out);

/* Opens sealed text into out (reset first; NUL-terminated).  Returns 0, or
 * -1 with e filled when the id is unknown or the text is malformed or was
 * altered. */
int sealbox_open(const struct config_secrets *s, const char *sealed, struct strbuf *out,
                 struct api_error *e) TG_WUR;

#endif
