/* keys: the managed API key format and its keyed hash.
 *
 *   <prefix>_<22 base62 secret chars><6 base62 checksum chars>
 *
 * 22 base62 characters carry 130 bits from the CSPRNG.  The checksum is keyed
 * with the HMAC secret (a MAC of everything before it), so a mistyped or
 * forged key is refused before any store lookup: whoever lacks the secret
 * cannot mint keys that cost the stores anything.  Admin tokens use the same
 * format with their own prefix. */
#ifndef TOLLGATE_KEYS_H
#define TOLLGATE_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "util.h"

#define KEYS_PREFIX_MAX 16
#define KEYS_SECRET_LEN 22
#define KEYS_CHECKSUM_LEN 6
/* Longest key: prefix, '_', secret, checksum, NUL. */
#define KEYS_MAX_LEN (KEYS_PREFIX_MAX + 1 + KEYS_SECRET_LEN + KEYS_CHECKSUM_LEN + 1)
#define KEYS_HASH_LEN 32
#define KEYS_HASH_HEX_LEN (2 * KEYS_HASH_LEN + 1)
#define KEYS_TOKEN_PREFIX "tgadm"

/* True when prefix is 1-16 characters of [a-z0-9]. */
bool keys_prefix_valid(const char *prefix);

/* Writes a new key with this (valid) prefix, checked under secret, into out. */
void keys_generate(const char *secret, const char *prefix, char out[KEYS_MAX_LEN]);

/* True when key has the format and a correct checksum under secret.  When
 * prefix_out is not NULL it receives the prefix. */
bool keys_parse(const char *secret, const char *key, size_t len,
                char prefix_out[KEYS_PREFIX_MAX + 1]);

/* keys_parse under each of the secrets in turn: the index of the one the
 * checksum verifies under (the key is hashed with it), or -1. */
int keys_verify(const struct config_secrets *secrets, const char *key, size_t len,
                char prefix_out[KEYS_PREFIX_MAX + 1]);

/* The displayable start of a key: prefix, '_' and 4 characters. */
void keys_start(const char *key, char out[KEYS_PREFIX_MAX + 6]);

/* HMAC-SHA-256(secret, key) as lower-case hex. */
void keys_hash_hex(const char *secret, const char *key, size_t keylen,
                   char out[KEYS_HASH_HEX_LEN]);

/* The tag of owner_id's shared rate-limit state: the first 16 bytes of
 * SHA-256(owner_id) in hex (owner ids are free text, a Redis hash tag may
 * hold no '}'; 128 bits keep owners apart). */
#define KEYS_OWNER_TAG_LEN 33
void keys_owner_tag(const char *owner_id, char out[KEYS_OWNER_TAG_LEN]);

/* A new opaque id: tag, '_', 20 base62 characters; out holds 48 bytes. */
#define KEYS_ID_MAX 48
void keys_new_id(const char *tag, char out[KEYS_ID_MAX]);

#endif
