#include "rtls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rtls {
    SSL_CTX *ctx;
};

struct rtls_conn {
    SSL *ssl;
};

/* The oldest error OpenSSL queued in this thread, after prefix; the queue
 * is left empty for the next call. */
static void ssl_error(char *msg, size_t size, const char *prefix)
{
    unsigned long e = ERR_get_error();
    char why[200] = "no detail";
    if (e)
        ERR_error_string_n(e, why, sizeof why);
    snprintf(msg, size, "%s: %s", prefix, why);
    ERR_clear_error();
}

static int readable(const char *path, const char *what, struct api_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        api_error_set(err, ERR_INTERNAL, NULL, "redis TLS %s %s: %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

struct rtls *rtls_new(const char *ca_file, const char *cert_file, const char *key_file,
                      struct api_error *err)
{
    bool cert = cert_file && *cert_file, key = key_file && *key_file;
    if (!ca_file || !*ca_file) {
        api_error_set(err, ERR_INTERNAL, NULL, "redis TLS: a CA file is required");
        return NULL;
    }
    if (cert != key) {
        api_error_set(err, ERR_INTERNAL, NULL,
                      "redis TLS: a client certificate and its key come together");
        return NULL;
    }
    if (readable(ca_file, "CA file", err) != 0 ||
        (cert && (readable(cert_file, "certificate", err) != 0 ||
                  readable(key_file, "key", err) != 0)))
        return NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char msg[300];
    if (!ctx) {
        ssl_error(msg, sizeof msg, "redis TLS: context");
        goto fail;
    }
    (void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* rnode's write buffer grows (and may move) between a write that wants
     * to be retried and its retry, and a partial write lets the bytes
     * already encrypted leave. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Without read-ahead every record costs two read(2) calls (header, then
     * body); with it one call takes what the socket holds, and rtls_pending
     * tells the caller to read on. */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        ssl_error(msg, sizeof msg, "redis TLS CA file");
        goto fail;
    }
    if (cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
            ssl_error(msg, sizeof msg, "redis TLS certificate");
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            ssl_error(msg, sizeof msg, "redis TLS key");
            goto fail;
        }
    }
    struct rtls *t = xcalloc(1, sizeof *t);
    t->ctx = ctx;
    return t;
fail:
    SSL_CTX_free(ctx);
    api_error_set(err, ERR_INTERNAL, NULL, "%s", msg);
    return NULL;
}

struct rtls *rtls_from_config(const struct config *cfg, struct api_error *err)
{
    if (!cfg->redis_tls)
        return NULL;
    return rtls_new(cfg->redis_tls_ca_file, cfg->redis_tls_cert_file, cfg->redis_tls_key_file,
                    err);
}

void rtls_free(struct rtls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

struct rtls_conn *rtls_conn_new(struct rtls *t, int fd, const char *server_name)
{
    struct rtls_conn *c = xcalloc(1, sizeof *c);
    c->ssl = SSL_new(t->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
        fprintf(stderr, "tollgate: out of memory (TLS session)\n");
        abort();
    }
    /* An address is checked against the certificate's IP entries, a name
     * against its DNS entries (and sent as SNI). */
    unsigned char addr[16];
    if (inet_pton(AF_INET, server_name, addr) == 1 || inet_pton(AF_INET6, server_name, addr) == 1) {
        (void)X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), server_name);
    } else {
        (void)SSL_set_tlsext_host_name(c->ssl, server_name);
        (void)SSL_set1_host(c->ssl, server_name);
    }
    SSL_set_connect_state(c->ssl);
    return c;
}

void rtls_conn_free(struct rtls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    free(c);
}

/* Maps the outcome of an SSL call (r its return value). */
static enum rtls_status status_of(struct rtls_conn *c, int r, const char *what, char *msg,
                                  size_t size)
{
    int saved_errno = errno; /* the call's, before SSL_get_error */
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return RTLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return RTLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(msg, size, "connection closed by the server");
        ERR_clear_error();
        return RTLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        /* errno was cleared before the call: set, the socket failed (a
         * reset); clear, the server went away without a word. */
        if (ERR_peek_error() == 0) {
            snprintf(msg, size, "%s: %s", what,
                     saved_errno ? strerror(saved_errno) : "connection closed by the server");
            return saved_errno ? RTLS_ERROR : RTLS_CLOSED;
        }
        ssl_error(msg, size, what);
        return RTLS_ERROR;
    default:
        ssl_error(msg, size, what);
        return RTLS_ERROR;
    }
}

enum rtls_status rtls_handshake(struct rtls_conn *c, char *msg, size_t size)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    if (r == 1)
        return RTLS_OK;
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        snprintf(msg, size, "TLS handshake: server certificate refused: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
        return RTLS_ERROR;
    }
    enum rtls_status s = status_of(c, r, "TLS handshake", msg, size);
    return s == RTLS_CLOSED ? RTLS_ERROR : s;
}

enum rtls_status rtls_read(struct rtls_conn *c, char *buf, size_t len, size_t *n, char *msg,
                           size_t size)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(c->ssl, buf, len, n);
    if (r == 1)
        return RTLS_OK;
    *n = 0;
    return status_of(c, r, "TLS read", msg, size);
}

enum rtls_status rtls_write(struct rtls_conn *c, const char *buf, size_t len, size_t *n,
                            char *msg, size_t size)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_write_ex(c->ssl, buf, len, n);
    if (r == 1)
        return RTLS_OK;
    *n = 0;
    return status_of(c, r, "TLS write", msg, size);
}

bool rtls_pending(const struct rtls_conn *c)
{
    return SSL_has_pending(c->ssl) == 1;
}
