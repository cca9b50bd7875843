/* libFuzzer harness for src/server/fastcgi.c.  The input is what a web server
 * sends on one connection, cut into pieces: the first byte chooses the
 * piece sizes (high bit set: all of (byte & 0x7f) + 1 bytes; else drawn at
 * random up to 4 * byte + 1), the second seeds the choices of the
 * "application".  Every request handed out is checked and answered: most
 * at once, some later (so answers interleave with reading and ABORTs), a
 * few with an answer over 65535 bytes; requests still held at the end are
 * left to fastcgi_conn_fini.  After every call the output must be whole
 * version-1 records, whatever the input: a violation aborts, which
 * libFuzzer reports like a crash.
 *
 * Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastcgi.h"

#define MAX_BODY 64
#define MAX_HELD 8
#define BIG_ANSWER 70000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct app {
    uint32_t seed;
    struct fastcgi_request *held[MAX_HELD];
    size_t nheld;
};

static uint32_t app_rand(struct app *a)
{
    a->seed = a->seed * 1103515245u + 12345u;
    return a->seed >> 16;
}

/* c->out must be whole version-1 records; then it counts as sent. */
static void check_out(struct fastcgi_conn *c)
{
    const uint8_t *p = (const uint8_t *)c->out.p;
    size_t pos = 0;
    while (pos < c->out.len) {
        struct fastcgi_header h;
        if (c->out.len - pos < FASTCGI_HEADER_LEN)
            abort();
        fastcgi_header_decode(p + pos, &h);
        size_t total = FASTCGI_HEADER_LEN + (size_t)h.content_len + h.padding_len;
        if (h.version != FASTCGI_VERSION || c->out.len - pos < total)
            abort();
        pos += total;
    }
    strbuf_reset(&c->out);
}

/* What fastcgi.h promises of a request it hands out. */
static void check_request(const struct fastcgi_conn *c, const struct fastcgi_request *r)
{
    if (r->conn != c || !r->complete || !r->params_done || r->id == 0)
        abort();
    if (r->role != FCGI_RESPONDER && r->role != FCGI_AUTHORIZER)
        abort();
    if (r->role == FCGI_RESPONDER && !r->stdin_done && !r->aborted)
        abort();
    if (r->body.len > MAX_BODY || (r->role == FCGI_AUTHORIZER && r->body.len > 0))
        abort();
    if (r->body.len > 0 && r->body.p[r->body.len] != '\0')
        abort();
    if (r->nenv > FASTCGI_MAX_PARAMS || !r->env || r->env[r->nenv] != NULL)
        abort();
    for (size_t i = 0; i < r->nenv; i++) {
        /* The name is what comes before the first '='; a name holding a
         * NUL or '=' makes that shorter, which lookup must survive. */
        const char *eq = strchr(r->env[i], '=');
        char name[64];
        size_t n = eq ? (size_t)(eq - r->env[i]) : strlen(r->env[i]);
        if (n >= sizeof name)
            continue;
        memcpy(name, r->env[i], n);
        name[n] = '\0';
        if (eq && !fastcgi_param(r, name))
            abort();
    }
}

static void answer(struct app *a, struct fastcgi_conn *c, struct fastcgi_request *r)
{
    static char big[BIG_ANSWER];
    uint32_t pick = app_rand(a);
    if (pick % 16 == 0)
        fastcgi_conn_answer(c, r, big, sizeof big);
    else if (pick % 16 == 1)
        fastcgi_conn_answer(c, r, NULL, 0);
    else
        fastcgi_conn_answer(c, r, big, pick % 300);
    check_out(c);
}

/* Takes every request handed out: answers it now or holds it. */
static void serve(struct app *a, struct fastcgi_conn *c)
{
    struct fastcgi_request *r;
    while ((r = fastcgi_conn_next(c)) != NULL) {
        check_request(c, r);
        if (app_rand(a) % 4 == 0 && a->nheld < MAX_HELD)
            a->held[a->nheld++] = r;
        else
            answer(a, c, r);
    }
    /* Now and then, the oldest held request is done. */
    if (a->nheld > 0 && app_rand(a) % 3 == 0) {
        answer(a, c, a->held[0]);
        memmove(a->held, a->held + 1, --a->nheld * sizeof a->held[0]);
    }
    if (c->nreqs > FASTCGI_MAX_REQS)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0];
    struct app a = {.seed = data[1]};
    data += 2;
    size -= 2;

    struct fastcgi_conn c;
    fastcgi_conn_init(&c, MAX_BODY);
    size_t pos = 0;
    while (pos < size) {
        size_t n = mode & 0x80 ? (size_t)(mode & 0x7f) + 1 : 1 + app_rand(&a) % (4u * mode + 1);
        if (n > size - pos)
            n = size - pos;
        int rc = fastcgi_conn_input(&c, data + pos, n);
        pos += n;
        if (rc != 0) {
            if (!c.failed || c.error[0] == '\0' || fastcgi_conn_input(&c, "", 0) != -1)
                abort();
            break;
        }
        check_out(&c);
        serve(&a, &c);
    }
    /* Half of what is still held is answered; fini frees the rest. */
    for (size_t i = 0; i < a.nheld; i += 2)
        answer(&a, &c, a.held[i]);
    (void)fastcgi_conn_done(&c);
    fastcgi_conn_fini(&c);
    return 0;
}
