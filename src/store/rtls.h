/* rtls: TLS for the Redis connections of src/store/rnode.c.
 *
 * The Redis client library of the distributions we build on (hiredis 0.14)
 * has no TLS, but rnode owns its socket and uses hiredis only to parse
 * replies, so OpenSSL can sit between the two: rnode connects the TCP
 * socket, then drives a non-blocking handshake and carries its bytes
 * through rtls_read/rtls_write, mapping each "want read / want write" to
 * the event loop's interest in the socket.
 *
 * One context per process, built at start from the configuration, so that a
 * missing or unreadable CA, certificate or key stops the process before it
 * serves instead of failing its first request.  The context requires TLS
 * 1.2 or later and verifies the server: its chain against the CA file and
 * its name (a DNS name, or an IP address written as such) against the
 * certificate.  A client certificate is presented when one is configured. */
#ifndef TOLLGATE_RTLS_H
#define TOLLGATE_RTLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "util.h"

struct rtls;
struct rtls_conn;

/* Builds a client context trusting the certificates of ca_file (PEM),
 * presenting cert_file and key_file when both are given (NULL or "" for
 * neither).  NULL with err filled when a file is missing, unreadable or not
 * what it should be, or the key does not match the certificate.  Thread
 * safe once built: connections of every thread share it. */
struct rtls *rtls_new(const char *ca_file, const char *cert_file, const char *key_file,
                      struct api_error *err) TG_WUR;
/* The context [redis] asks for: NULL with *err untouched when tls = 0, a
 * context when tls = 1, NULL with err filled when it cannot be built.  The
 * caller tells the two NULLs apart by cfg->redis_tls. */
struct rtls *rtls_from_config(const struct config *cfg, struct api_error *err);
/* After the last connection using it is freed.  NULL is a no-op. */
void rtls_free(struct rtls *t);

/* What a call on a connection came to. */
enum rtls_status {
    RTLS_OK,         /* done (for read/write: *n bytes moved) */
    RTLS_WANT_READ,  /* call again when the socket is readable */
    RTLS_WANT_WRITE, /* call again when the socket is writable */
    RTLS_CLOSED,     /* the server closed the connection */
    RTLS_ERROR       /* msg says why; the connection is unusable */
};

/* A TLS session on the connected, non-blocking socket fd (which stays the
 * caller's to close), to be verified against server_name.  Never fails
 * (out of memory aborts). */
struct rtls_conn *rtls_conn_new(struct rtls *t, int fd, const char *server_name);
/* NULL is a no-op.  Sends no close_notify: the caller is dropping a
 * connection it no longer trusts or needs. */
void rtls_conn_free(struct rtls_conn *c);

/* Advances the handshake: RTLS_OK once it is complete and the server
 * verified, a RTLS_WANT_*, or RTLS_ERROR/RTLS_CLOSED with msg filled
 * (a failed verification says what failed). */
enum rtls_status rtls_handshake(struct rtls_conn *c, char *msg, size_t size);

/* Reads up to len bytes of application data into buf; RTLS_OK with *n > 0,
 * a RTLS_WANT_* (a read may need to write, during a key update), or
 * RTLS_CLOSED/RTLS_ERROR with msg filled. */
enum rtls_status rtls_read(struct rtls_conn *c, char *buf, size_t len, size_t *n, char *msg,
                           size_t size);
/* Writes some of buf (len > 0); RTLS_OK with *n > 0, or as rtls_read.
 * After a RTLS_WANT_*, the retry must pass the same bytes again, possibly
 * at another address and followed by more. */
enum rtls_status rtls_write(struct rtls_conn *c, const char *buf, size_t len, size_t *n,
                            char *msg, size_t size);
/* Decrypted or received bytes the session holds that the socket will not
 * signal again: read on before waiting for the socket. */
bool rtls_pending(const struct rtls_conn *c);

#endif
