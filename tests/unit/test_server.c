/* Unit tests of the server's streamed answers (server_reply_part): a worker
 * sends a large answer in parts over a real socket, is held while the web
 * server does not read, and learns when the web server went away. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "evloop.h"
#include "fastcgi.h"
#include "log.h"
#include "server.h"
#include "unit.h"

#define PART (64 * 1024)
#define PARTS 128 /* 8 MiB in all */

struct producer {
    atomic_int parts_sent;
    atomic_int result; /* 0 while running, 1 all sent, -1 told to stop */
};
static struct producer prod;

static void serve(void *ctx, struct server_req *req)
{
    (void)ctx;
    server_defer(req);
}

static void serve_blocking(void *ctx, int worker, struct server_req *req)
{
    (void)ctx;
    (void)worker;
    static const char head[] = "Status: 200 OK\r\n\r\n";
    char *part = malloc(PART);
    int rc = server_reply_part(req, head, sizeof head - 1);
    for (int i = 0; i < PARTS && rc == 0; i++) {
        memset(part, 'a' + i % 26, PART);
        rc = server_reply_part(req, part, PART);
        if (rc == 0)
            atomic_fetch_add(&prod.parts_sent, 1);
    }
    free(part);
    if (rc == 0)
        strbuf_put(&req->out, "END", 3);
    atomic_store(&prod.result, rc == 0 ? 1 : -1);
    server_reply(req);
}

struct rig {
    struct evloop *loop;
    struct server *srv;
    pthread_t thread;
    char path[108];
};

static void *loop_main(void *arg)
{
    evloop_run(((struct rig *)arg)->loop);
    return NULL;
}

static void rig_start(struct rig *g)
{
    atomic_store(&prod.parts_sent, 0);
    atomic_store(&prod.result, 0);
    snprintf(g->path, sizeof g->path, "/tmp/tg-test-server-%d.sock", (int)getpid());
    unlink(g->path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strlcpy_tg(a.sun_path, g->path, sizeof a.sun_path);
    CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 4) == 0);
    g->loop = evloop_new();
    static const struct server_ops ops = {serve, serve_blocking, NULL};
    g->srv = server_new(g->loop, lfd, 1, 1 << 20, &ops);
    CU_ASSERT_FATAL(server_start(g->srv) == 0);
    CU_ASSERT_FATAL(pthread_create(&g->thread, NULL, loop_main, g) == 0);
}

static void rig_stop(struct rig *g)
{
    evloop_stop(g->loop);
    pthread_join(g->thread, NULL);
    server_free(g->srv);
    evloop_free(g->loop);
    unlink(g->path);
}

/* Connects and sends one complete Responder request without a body. */
static int client_request(const struct rig *g)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strlcpy_tg(a.sun_path, g->path, sizeof a.sun_path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    struct strbuf all = {0}, pairs = {0};
    fastcgi_begin_put(&all, 1, FCGI_RESPONDER, 0);
    fastcgi_pair_put(&pairs, "REQUEST_METHOD", 14, "GET", 3);
    fastcgi_stream_put(&all, FCGI_PARAMS, 1, pairs.p, pairs.len);
    fastcgi_stream_end(&all, FCGI_PARAMS, 1);
    fastcgi_stream_end(&all, FCGI_STDIN, 1);
    ssize_t w = write(fd, all.p, all.len);
    strbuf_fini(&pairs);
    strbuf_fini(&all);
    return w > 0 ? fd : -1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads records to the end of the connection; returns the STDOUT bytes and
 * whether END_REQUEST came. */
static size_t read_answer(int fd, struct strbuf *out, bool *ended)
{
    struct strbuf in = {0};
    char buf[65536];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        strbuf_put(&in, buf, (size_t)r);
    size_t pos = 0;
    *ended = false;
    while (pos + FASTCGI_HEADER_LEN <= in.len) {
        struct fastcgi_header h;
        fastcgi_header_decode((const uint8_t *)in.p + pos, &h);
        pos += FASTCGI_HEADER_LEN;
        if (h.type == FCGI_STDOUT)
            strbuf_put(out, in.p + pos, h.content_len);
        if (h.type == FCGI_END_REQUEST)
            *ended = true;
        pos += h.content_len + h.padding_len;
    }
    strbuf_fini(&in);
    return out->len;
}

/* Parts arrive whole and in order; while nobody reads, the worker is held
 * near SERVER_STREAM_HIGH instead of queueing the whole answer. */
static void test_stream_parts(void)
{
    struct rig g = {0};
    rig_start(&g);
    int fd = client_request(&g);
    CU_ASSERT_FATAL(fd >= 0);
    sleep_ms(300); /* the worker runs until the socket and the backlog are full */
    int held = atomic_load(&prod.parts_sent);
    CU_ASSERT(held < PARTS);
    /* backlog + what the kernel's socket buffers took, far below 8 MiB */
    CU_ASSERT((size_t)held * PART <= SERVER_STREAM_HIGH + 2 * 1024 * 1024);
    struct strbuf out = {0};
    bool ended;
    read_answer(fd, &out, &ended);
    close(fd);
    CU_ASSERT_TRUE(ended);
    CU_ASSERT_EQUAL(atomic_load(&prod.result), 1);
    static const char head[] = "Status: 200 OK\r\n\r\n";
    size_t want = sizeof head - 1 + (size_t)PARTS * PART + 3;
    CU_ASSERT_EQUAL(out.len, want);
    if (out.len == want) {
        CU_ASSERT_EQUAL(memcmp(out.p, head, sizeof head - 1), 0);
        bool intact = true;
        for (int i = 0; i < PARTS && intact; i++) {
            const char *p = out.p + sizeof head - 1 + (size_t)i * PART;
            intact = p[0] == 'a' + i % 26 && p[PART - 1] == 'a' + i % 26;
        }
        CU_ASSERT_TRUE(intact);
        CU_ASSERT_EQUAL(memcmp(out.p + want - 3, "END", 3), 0);
    }
    strbuf_fini(&out);
    rig_stop(&g);
}

/* The web server goes away mid-answer: the worker is told to stop. */
static void test_stream_peer_gone(void)
{
    struct rig g = {0};
    rig_start(&g);
    int fd = client_request(&g);
    CU_ASSERT_FATAL(fd >= 0);
    sleep_ms(100);
    close(fd);
    for (int i = 0; i < 500 && atomic_load(&prod.result) == 0; i++)
        sleep_ms(10);
    CU_ASSERT_EQUAL(atomic_load(&prod.result), -1);
    CU_ASSERT(atomic_load(&prod.parts_sent) < PARTS);
    rig_stop(&g);
}

int main(void)
{
    log_open("/dev/null", LOG_ERROR);
    static const struct unit_test tests[] = {
        UNIT_TEST(test_stream_parts),
        UNIT_TEST(test_stream_peer_gone),
    };
    int rc = unit_run("server", tests, TG_ARRAY_LEN(tests));
    log_close();
    return rc;
}
