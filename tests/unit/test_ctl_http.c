/* Unit tests of ctl_http: the API client, against a one-shot HTTP server
 * forked by the test, and its pure helpers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "ctl_http.h"
#include "unit.h"

/* Listens on 127.0.0.1 (port in *port) and forks a child that answers one
 * request: 200 with the request's head echoed as a JSON string when it
 * carries the expected bearer token, else 401 with an error body. */
static pid_t serve_once(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 1) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    if (pid != 0) {
        close(s);
        return pid;
    }
    alarm(10);
    int c = accept(s, NULL, NULL);
    char req[4096] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n") &&
           (r = read(c, req + n, sizeof req - 1 - n)) > 0)
        n += (size_t)r;
    const char *body = strstr(req, "Authorization: Bearer tgadm_test\r\n") &&
                               strncmp(req, "PATCH /v1/keys/k%201?x=1 HTTP/1.1", 33) == 0
                           ? "{\"ok\":true}"
                           : "{\"error\":{\"code\":\"unauthenticated\",\"message\":\"No.\"}}";
    char head[256];
    snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                                "Content-Length: %zu\r\nConnection: close\r\n\r\n",
             body[2] == 'o' ? "200 OK" : "401 Unauthorized", strlen(body));
    if (write(c, head, strlen(head)) < 0 || write(c, body, strlen(body)) < 0)
        _exit(1);
    close(c);
    _exit(0);
}

static void test_call(void)
{
    int port;
    pid_t pid = serve_once(&port);
    CU_ASSERT_FATAL(pid > 0);
    char url[64], msg[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    struct ctl_http *h = ctl_http_new(url, "tgadm_test", NULL, msg, sizeof msg);
    CU_ASSERT_FATAL(h != NULL);
    struct ctl_reply r;
    CU_ASSERT_EQUAL(ctl_http_call(h, "PATCH", "/v1/keys/k%201?x=1", "{}", &r, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body.p, "{\"ok\":true}");
    ctl_reply_fini(&r);
    int st;
    waitpid(pid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Nobody listens any more: no answer, a sentence. */
    CU_ASSERT_EQUAL(ctl_http_call(h, "GET", "/v1/tiers", NULL, &r, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "GET http://127.0.0.1:"));
    ctl_reply_fini(&r);
    ctl_http_free(h);
    ctl_http_free(NULL);
}

static void test_error_status(void)
{
    int port;
    pid_t pid = serve_once(&port);
    CU_ASSERT_FATAL(pid > 0);
    char url[64], msg[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    struct ctl_http *h = ctl_http_new(url, "tgadm_wrong", "", msg, sizeof msg);
    struct ctl_reply r;
    CU_ASSERT_EQUAL(ctl_http_call(h, "GET", "/v1/keys", NULL, &r, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(r.status, 401);
    ctl_http_error_text(r.status, r.body.p, msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, "unauthenticated: No.");
    ctl_reply_fini(&r);
    ctl_http_free(h);
    waitpid(pid, NULL, 0);
}

static void test_new_refuses_other_schemes(void)
{
    char msg[256];
    CU_ASSERT_PTR_NULL(ctl_http_new("ftp://x", "t", NULL, msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "http://"));
    CU_ASSERT_PTR_NULL(ctl_http_new("127.0.0.1:80", "t", NULL, msg, sizeof msg));
}

static void test_escape_and_query(void)
{
    struct strbuf b = {0};
    ctl_http_escape(&b, "acct 42/é?&=~._-");
    CU_ASSERT_STRING_EQUAL(b.p, "acct%2042%2F%C3%A9%3F%26%3D~._-");
    strbuf_reset(&b);
    strbuf_printf(&b, "/v1/keys");
    ctl_http_query(&b, "owner_id", "a b");
    ctl_http_query(&b, "tier", NULL);
    ctl_http_query(&b, "status", "active");
    CU_ASSERT_STRING_EQUAL(b.p, "/v1/keys?owner_id=a%20b&status=active");
    strbuf_fini(&b);
}

static void test_error_text(void)
{
    char out[256];
    ctl_http_error_text(400, "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"Bad tier.\","
                             "\"field\":\"tier\"}}", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "invalid_argument: Bad tier. (field tier)");
    ctl_http_error_text(502, "<html>\nBad gateway</html>", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "HTTP 502: <html>");
    ctl_http_error_text(500, "", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "HTTP 500");
    ctl_http_error_text(404, "{\"error\":{\"code\":\"not_found\",\"message\":\"a\\u001bb\"}}", out,
                        sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "not_found: a?b");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    static const struct unit_test tests[] = {
        UNIT_TEST(test_call),
        UNIT_TEST(test_error_status),
        UNIT_TEST(test_new_refuses_other_schemes),
        UNIT_TEST(test_escape_and_query),
        UNIT_TEST(test_error_text),
    };
    return unit_run("ctl_http", tests, sizeof tests / sizeof tests[0]);
}
