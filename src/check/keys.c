#include "keys.h"

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool keys_prefix_valid(const char *prefix)
{
    return name_ok(prefix, strlen(prefix), KEYS_PREFIX_MAX, "");
}

static EVP_MAC_CTX *hmac_ctx(const char *secret);
static _Noreturn void no_hmac(void);

/* The check characters of body (prefix, '_', secret): HMAC-SHA-256 under the
 * key-hashing secret of "\0check\0" || body -- a domain no key hash input
 * starts with -- its first 8 bytes written as 6 base62 characters.  Without
 * the secret a valid check is a 1 in 5.7e10 guess. */
static void checksum(const char *secret, const char *body, size_t n, char out[KEYS_CHECKSUM_LEN])
{
    static const unsigned char domain[] = {0, 'c', 'h', 'e', 'c', 'k', 0};
    EVP_MAC_CTX *ctx = hmac_ctx(secret);
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    if (!EVP_MAC_init(ctx, NULL, 0, NULL) || !EVP_MAC_update(ctx, domain, sizeof domain) ||
        !EVP_MAC_update(ctx, (const unsigned char *)body, n) ||
        !EVP_MAC_final(ctx, md, &mdlen, sizeof md) || mdlen < 8)
        no_hmac();
    uint64_t c = 0;
    for (int i = 0; i < 8; i++)
        c = c << 8 | md[i];
    for (int i = KEYS_CHECKSUM_LEN - 1; i >= 0; i--) {
        out[i] = BASE62[c % 62];
        c /= 62;
    }
}

void keys_generate(const char *secret, const char *prefix, char out[KEYS_MAX_LEN])
{
    size_t p = strlen(prefix);
    memcpy(out, prefix, p);
    out[p] = '_';
    random_base62(out + p + 1, KEYS_SECRET_LEN);
    checksum(secret, out, p + 1 + KEYS_SECRET_LEN, out + p + 1 + KEYS_SECRET_LEN);
    out[p + 1 + KEYS_SECRET_LEN + KEYS_CHECKSUM_LEN] = '\0';
}

static bool is_base62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool keys_parse(const char *secret, const char *key, size_t len,
                char prefix_out[KEYS_PREFIX_MAX + 1])
{
    const char *us = memchr(key, '_', len);
    if (!us)
        return false;
    size_t p = (size_t)(us - key);
    if (p < 1 || p > KEYS_PREFIX_MAX || len != p + 1 + KEYS_SECRET_LEN + KEYS_CHECKSUM_LEN)
        return false;
    for (size_t i = 0; i < p; i++)
        if (!((key[i] >= 'a' && key[i] <= 'z') || (key[i] >= '0' && key[i] <= '9')))
            return false;
    for (size_t i = p + 1; i < len; i++)
        if (!is_base62(key[i]))
            return false;
    char sum[KEYS_CHECKSUM_LEN];
    checksum(secret, key, p + 1 + KEYS_SECRET_LEN, sum);
    /* in constant time: a comparison that stops early would tell a forger
     * how many check characters were right */
    if (CRYPTO_memcmp(sum, key + len - KEYS_CHECKSUM_LEN, KEYS_CHECKSUM_LEN) != 0)
        return false;
    if (prefix_out) {
        memcpy(prefix_out, key, p);
        prefix_out[p] = '\0';
    }
    return true;
}

int keys_verify(const struct config_secrets *secrets, const char *key, size_t len,
                char prefix_out[KEYS_PREFIX_MAX + 1])
{
    for (size_t i = 0; i < secrets->n; i++)
        if (keys_parse(secrets->secret[i], key, len, prefix_out))
            return (int)i;
    return -1;
}

void keys_start(const char *key, char out[KEYS_PREFIX_MAX + 6])
{
    const char *us = strchr(key, '_');
    size_t n = us ? (size_t)(us - key) + 5 : 0;
    if (n > strlen(key))
        n = strlen(key);
    memcpy(out, key, n);
    out[n] = '\0';
}

/* A thread's HMAC contexts, one per secret, each keyed once: the one-shot
 * HMAC() looks the algorithm up and keys it again on every call, which
 * costs more than the hash of a short key itself.  Several secrets are in
 * use while one is rotated out (config_secrets). */
#define HMAC_SLOTS CONFIG_SECRETS_MAX
struct hmac_tls {
    size_t n, next; /* slots in use; the one to reuse when all are */
    EVP_MAC_CTX *ctx[HMAC_SLOTS];
    char *secret[HMAC_SLOTS]; /* what ctx[i] is keyed with */
};

static pthread_key_t hmac_key;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_tls_free(void *p)
{
    struct hmac_tls *t = p;
    for (size_t i = 0; i < t->n; i++) {
        EVP_MAC_CTX_free(t->ctx[i]);
        free(t->secret[i]);
    }
    free(t);
}

static void hmac_key_init(void)
{
    if (pthread_key_create(&hmac_key, hmac_tls_free) != 0)
        abort();
}

static _Noreturn void no_hmac(void)
{
    /* Only a broken OpenSSL installation gets here. */
    fprintf(stderr, "tollgate: HMAC-SHA-256 unavailable\n");
    abort();
}

/* The calling thread's context keyed with secret. */
static EVP_MAC_CTX *hmac_ctx(const char *secret)
{
    pthread_once(&hmac_once, hmac_key_init);
    struct hmac_tls *t = pthread_getspecific(hmac_key);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        if (pthread_setspecific(hmac_key, t) != 0)
            no_hmac();
    }
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->secret[i], secret) == 0)
            return t->ctx[i];
    size_t i;
    if (t->n < HMAC_SLOTS) {
        i = t->n++;
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        t->ctx[i] = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac);
        if (!t->ctx[i])
            no_hmac();
    } else {
        i = t->next;
        t->next = (t->next + 1) % HMAC_SLOTS;
        free(t->secret[i]);
    }
    t->secret[i] = xstrdup(secret);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (!EVP_MAC_init(t->ctx[i], (const unsigned char *)secret, strlen(secret), params))
        no_hmac();
    return t->ctx[i];
}

void keys_hash_hex(const char *secret, const char *key, size_t keylen, char out[KEYS_HASH_HEX_LEN])
{
    EVP_MAC_CTX *ctx = hmac_ctx(secret);
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    /* A NULL key re-initialises with the key already set. */
    if (!EVP_MAC_init(ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(ctx, (const unsigned char *)key, keylen) ||
        !EVP_MAC_final(ctx, md, &mdlen, sizeof md) || mdlen != KEYS_HASH_LEN)
        no_hmac();
    hex_encode(md, KEYS_HASH_LEN, out);
}

void keys_owner_tag(const char *owner_id, char out[KEYS_OWNER_TAG_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(owner_id, strlen(owner_id), md, &mdlen, EVP_sha256(), NULL) || mdlen < 16)
        no_hmac();
    hex_encode(md, 16, out);
}

void keys_new_id(const char *tag, char out[KEYS_ID_MAX])
{
    char rnd[21];
    random_base62(rnd, 20);
    snprintf(out, KEYS_ID_MAX, "%s_%s", tag, rnd);
}
