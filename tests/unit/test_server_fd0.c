/* Tests of the server on a listening socket handed over on descriptor 0, as
 * systemd (StandardInput=socket), spawn-fcgi and mod_fcgid start
 * tollgate-fcgi: a unix socket bound and listening before the server sees
 * it, requests answered over it, then a drain that stops the loop. */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "evloop.h"
#include "fastcgi.h"
#include "server.h"
#include "strbuf.h"
#include "unit.h"
#include "util.h"

#define REQUESTS 3

static char sock_path[108];

struct served {
    int count;
    struct server *srv;
};

/* Answers every request from the loop at once with its REQUEST_URI. */
static void serve(void *ctx, struct server_req *req)
{
    struct served *s = ctx;
    const char *uri = fastcgi_param(req->fcgi, "REQUEST_URI");
    strbuf_printf(&req->out, "Status: 200\r\nContent-Type: text/plain\r\n\r\nuri=%s",
                  uri ? uri : "(none)");
    server_reply(req);
    s->count++;
}

static void serve_blocking(void *ctx, int worker, struct server_req *req)
{
    (void)ctx;
    (void)worker;
    server_reply(req);
}

/* One request on a new connection, as lighttpd sends it; the answer's
 * STDOUT into out (caller frees), or NULL. */
static char *client_request(const char *uri)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_tg(sa.sun_path, sock_path, sizeof sa.sun_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    /* A server that never answers fails the test instead of hanging it. */
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct strbuf q = {0}, params = {0};
    fastcgi_begin_put(&q, 1, FCGI_RESPONDER, 0);
    fastcgi_pair_put(&params, "REQUEST_URI", 11, uri, strlen(uri));
    fastcgi_pair_put(&params, "REQUEST_METHOD", 14, "GET", 3);
    fastcgi_stream_put(&q, FCGI_PARAMS, 1, params.p, params.len);
    fastcgi_stream_end(&q, FCGI_PARAMS, 1);
    fastcgi_stream_end(&q, FCGI_STDIN, 1);
    bool ok = write(fd, q.p, q.len) == (ssize_t)q.len;
    strbuf_fini(&q);
    strbuf_fini(&params);
    /* Without FCGI_KEEP_CONN the server closes once the answer is out. */
    struct strbuf in = {0}, out = {0};
    char buf[4096];
    ssize_t n;
    while (ok && (n = read(fd, buf, sizeof buf)) > 0)
        strbuf_put(&in, buf, (size_t)n);
    close(fd);
    bool ended = false;
    for (size_t pos = 0; ok && pos + FASTCGI_HEADER_LEN <= in.len;) {
        struct fastcgi_header h;
        fastcgi_header_decode((const uint8_t *)in.p + pos, &h);
        if (h.type == FCGI_STDOUT)
            strbuf_put(&out, in.p + pos + FASTCGI_HEADER_LEN, h.content_len);
        ended |= h.type == FCGI_END_REQUEST;
        pos += FASTCGI_HEADER_LEN + h.content_len + h.padding_len;
    }
    strbuf_fini(&in);
    if (!ended) {
        strbuf_fini(&out);
        return NULL;
    }
    return out.p ? out.p : xstrdup("");
}

struct client_result {
    char *answers[REQUESTS];
    struct evloop *loop;
    struct server *srv;
    struct evloop_task drain;
};

/* In the loop thread: the loop stops once nothing is in flight. */
static void drain_task(struct evloop_task *t)
{
    struct client_result *r = t->arg;
    server_drain(r->srv, 5000);
}

/* The requests one after the other, then the drain, whatever they got: the
 * loop stops in any case. */
static void *client_main(void *arg)
{
    struct client_result *r = arg;
    static const char *const uris[REQUESTS] = {"/healthz", "/v1/keys", "/readyz"};
    for (int i = 0; i < REQUESTS; i++)
        r->answers[i] = client_request(uris[i]);
    r->drain = (struct evloop_task){.fn = drain_task, .arg = r};
    evloop_post(r->loop, &r->drain);
    return NULL;
}

static void test_listening_socket_on_fd0(void)
{
    /* A listening unix socket, bound before the server starts, moved to
     * descriptor 0 as a socket unit hands it over. */
    CU_ASSERT_EQUAL_FATAL(unit_tmpfile(sock_path, sizeof sock_path), 0);
    unlink(sock_path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_tg(sa.sun_path, sock_path, sizeof sa.sun_path);
    CU_ASSERT_FATAL(lfd >= 0);
    CU_ASSERT_EQUAL_FATAL(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    CU_ASSERT_EQUAL_FATAL(listen(lfd, 16), 0);
    int saved_stdin = dup(0);
    CU_ASSERT_FATAL(saved_stdin >= 0);
    CU_ASSERT_EQUAL_FATAL(dup2(lfd, 0), 0);
    close(lfd);

    struct evloop *loop = evloop_new();
    struct served s = {0};
    struct server_ops ops = {serve, serve_blocking, &s};
    s.srv = server_new(loop, 0, 1, 65536, &ops);
    CU_ASSERT_EQUAL_FATAL(server_start(s.srv), 0);
    /* server_start made it non-blocking, as a loop must have it. */
    CU_ASSERT_TRUE(fcntl(0, F_GETFL) & O_NONBLOCK);

    struct client_result r = {.loop = loop, .srv = s.srv};
    pthread_t client;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&client, NULL, client_main, &r), 0);
    evloop_run(loop); /* until the client's drain */
    pthread_join(client, NULL);
    server_free(s.srv);
    evloop_free(loop);

    CU_ASSERT_EQUAL(s.count, REQUESTS);
    static const char *const want[REQUESTS] = {"uri=/healthz", "uri=/v1/keys", "uri=/readyz"};
    for (int i = 0; i < REQUESTS; i++) {
        CU_ASSERT_PTR_NOT_NULL(r.answers[i]);
        if (r.answers[i]) {
            CU_ASSERT_PTR_NOT_NULL(strstr(r.answers[i], "Status: 200\r\n"));
            const char *body = strstr(r.answers[i], "\r\n\r\n");
            CU_ASSERT_PTR_NOT_NULL(body);
            if (body)
                CU_ASSERT_STRING_EQUAL(body + 4, want[i]);
        }
        free(r.answers[i]);
    }
    CU_ASSERT_EQUAL(dup2(saved_stdin, 0), 0);
    close(saved_stdin);
    unlink(sock_path);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_listening_socket_on_fd0),
    };
    return unit_run("server", tests, TG_ARRAY_LEN(tests));
}
