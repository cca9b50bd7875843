/* sealbox: see sealbox.h. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sealbox.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define LABEL "tollgate alert webhook secrets v1"

static void derive(const char *secret, unsigned char key[32])
{
    unsigned int len = 32;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)LABEL,
              strlen(LABEL), key, &len))
        abort();
}

static void put_hex(struct strbuf *b, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        strbuf_putc(b, digits[p[i] >> 4]);
        strbuf_putc(b, digits[p[i] & 15]);
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

void sealbox_seal(const struct config_secrets *s, const char *plain, size_t len,
                  struct strbuf *out)
{
    unsigned char key[32], nonce[NONCE_LEN], tag[TAG_LEN];
    unsigned char *ct = xmalloc(len + 1);
    int n = 0, fin = 0;
    derive(s->secret[0], key);
    if (RAND_bytes(nonce, NONCE_LEN) != 1)
        abort();
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
        EVP_EncryptUpdate(c, ct, &n, (const unsigned char *)plain, (int)len) != 1 ||
        EVP_EncryptFinal_ex(c, ct + n, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        abort();
    EVP_CIPHER_CTX_free(c);
    strbuf_reset(out);
    strbuf_printf(out, "%s:", s->id[0]);
    put_hex(out, nonce, NONCE_LEN);
    put_hex(out, ct, (size_t)(n + fin));
    put_hex(out, tag, TAG_LEN);
    OPENSSL_cleanse(key, sizeof key);
    free(ct);
}

int sealbox_open(const struct config_secrets *s, const char *sealed, struct strbuf *out,
                 struct api_error *e)
{
    const char *colon = strchr(sealed, ':');
    const char *secret = NULL;
    for (size_t i = 0; colon && i < s->n; i++)
        if (strlen(s->id[i]) == (size_t)(colon - sealed) &&
            memcmp(s->id[i], sealed, (size_t)(colon - sealed)) == 0)
            secret = s->secret[i];
    if (!secret) {
        api_error_set(e, ERR_INTERNAL, NULL, "sealed with an unknown secret id");
        return -1;
    }
    const char *hex = colon + 1;
    size_t hlen = strlen(hex);
    if (hlen % 2 || hlen < 2 * (NONCE_LEN + TAG_LEN)) {
        api_error_set(e, ERR_INTERNAL, NULL, "sealed text is malformed");
        return -1;
    }
    size_t blen = hlen / 2;
    unsigned char *raw = xmalloc(blen);
    for (size_t i = 0; i < blen; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(raw);
            api_error_set(e, ERR_INTERNAL, NULL, "sealed text is malformed");
            return -1;
        }
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    size_t clen = blen - NONCE_LEN - TAG_LEN;
    unsigned char key[32];
    unsigned char *pt = xmalloc(clen + 1);
    int n = 0, fin = 0, ok;
    derive(secret, key);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        abort();
    ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw) == 1 &&
         EVP_DecryptUpdate(c, pt, &n, raw + NONCE_LEN, (int)clen) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + clen) == 1 &&
         EVP_DecryptFinal_ex(c, pt + n, &fin) == 1;
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(key, sizeof key);
    if (ok) {
        strbuf_reset(out);
        strbuf_put(out, (const char *)pt, (size_t)(n + fin));
    } else {
        api_error_set(e, ERR_INTERNAL, NULL, "sealed text does not open (altered or wrong key)");
    }
    OPENSSL_cleanse(pt, clen + 1);
    free(pt);
    free(raw);
    return ok ? 0 : -1;
}
