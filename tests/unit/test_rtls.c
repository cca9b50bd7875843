/* Unit tests of rtls, and of rnode and redis over it, against a real
 * redis-server listening only on a TLS port (port 0) of the loopback, with
 * certificates this program makes in a temporary directory: two CAs, a
 * server certificate for 127.0.0.1 and localhost from each, and a client
 * certificate.  Each server is started and stopped by pid, bounded, and
 * dies with this program. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "redis.h"
#include "rtls.h"
#include "unit.h"

static char dir[128];

/* "dir/name" in a static buffer of four, so that a call can use several. */
static const char *in_dir(const char *name)
{
    static char bufs[4][256];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* Makes the certificates; 0 or -1. */
static int make_material(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tollgate-rtls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; cd '%s'; umask 077\n"
             "req() { openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \"$@\"; }\n"
             "for ca in ca other-ca; do req -x509 -keyout $ca.key -out $ca.crt -days 2 -subj /CN=$ca "
             "-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign; done\n"
             "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' >server.ext\n"
             "printf 'extendedKeyUsage=clientAuth\\n' >client.ext\n"
             "sign() { req -keyout $1.key -out $1.csr -subj /CN=$1; "
             "openssl x509 -req -in $1.csr -CA $2.crt -CAkey $2.key -CAcreateserial -days 2 "
             "-out $1.crt -extfile $3.ext; }\n"
             "sign server ca server; sign other-server other-ca server; sign client ca client\n"
             "printf 'not a certificate\\n' >junk.crt\n",
             dir);
    char full[4400];
    snprintf(full, sizeof full, "(%s) >'%s/make.log' 2>&1", cmd, dir);
    return system(full) == 0 ? 0 : -1;
}

static void remove_material(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "test_rtls: could not remove %s\n", dir);
}

/* A loopback port nothing listens on at this moment. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A blocking TCP connection to the loopback port, or -1. */
static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts redis-server on a TLS port only, with an ACL user app/app-password;
 * client certificates are required when want_cert.  Returns its pid once
 * the port accepts, or -1. */
static pid_t server_start(int port, bool want_cert)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execlp("redis-server", "redis-server", "--port", "0", "--tls-port", p, "--bind",
               "127.0.0.1", "--tls-cert-file", in_dir("server.crt"), "--tls-key-file",
               in_dir("server.key"), "--tls-ca-cert-file", in_dir("ca.crt"),
               "--tls-auth-clients", want_cert ? "yes" : "optional", "--save", "",
               "--appendonly", "no", "--dir", dir, "--user", "app", "on", ">app-password",
               "~*", "+@all", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; pid > 0 && i < 500; i++) {
        int fd = tcp_connect(port);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        sleep_ms(10);
    }
    if (pid > 0)
        kill(pid, SIGKILL);
    return -1;
}

static void server_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static struct rtls *ctx_for(const char *ca, bool cert)
{
    struct api_error err;
    struct rtls *t = rtls_new(in_dir(ca), cert ? in_dir("client.crt") : NULL,
                              cert ? in_dir("client.key") : NULL, &err);
    if (!t)
        fprintf(stderr, "rtls_new: %s\n", err.message);
    return t;
}

/* One command over a fresh client; the reply's text ("" for a non-string)
 * or the error message go into out. */
static bool one_command(int port, struct rtls *t, const char *server_name, const char *user,
                        const char *password, int timeout_ms, char *out, size_t size)
{
    struct rnode_opts o = {.timeout_ms = timeout_ms, .user = user, .password = password,
                           .tls = t, .server_name = server_name};
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", port, &o);
    const char *argv[] = {"PING"};
    struct api_error err;
    memset(&err, 0, sizeof err);
    redisReply *r = redis_command(rc, 1, argv, NULL, &err);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    snprintf(out, size, "%s", r ? (r->str ? r->str : "") : err.message);
    if (r)
        freeReplyObject(r);
    redis_conn_free(rc);
    return ok;
}

static void test_new_refuses_bad_files(void)
{
    struct api_error err;
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(rtls_new("", NULL, NULL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "CA file"));
    CU_ASSERT_PTR_NULL(rtls_new(in_dir("missing.crt"), NULL, NULL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "missing.crt"));
    CU_ASSERT_PTR_NULL(rtls_new(in_dir("junk.crt"), NULL, NULL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "CA file"));
    CU_ASSERT_PTR_NULL(rtls_new(in_dir("ca.crt"), in_dir("client.crt"), NULL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "come together"));
    /* A key that is not the certificate's. */
    CU_ASSERT_PTR_NULL(rtls_new(in_dir("ca.crt"), in_dir("client.crt"), in_dir("server.key"), &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "key"));
    struct rtls *t = rtls_new(in_dir("ca.crt"), in_dir("client.crt"), in_dir("client.key"), &err);
    CU_ASSERT_PTR_NOT_NULL(t);
    rtls_free(t);
    rtls_free(NULL);
}

static void test_from_config(void)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[security]\nhmac_secret = 0123456789abcdef0123456789abcdef\n"
             "[postgres]\nconninfo = dbname=x\n[redis]\ntls = %%d\ntls_ca_file = %s\n",
             in_dir("ca.crt"));
    char conf[1100];
    struct config cfg;
    struct api_error err;
    for (int tls = 0; tls <= 1; tls++) {
        snprintf(conf, sizeof conf, text, tls);
        CU_ASSERT_EQUAL_FATAL(config_load_string(&cfg, "t.conf", conf, NULL, &err), 0);
        memset(&err, 0, sizeof err);
        struct rtls *t = rtls_from_config(&cfg, &err);
        CU_ASSERT(tls ? t != NULL : t == NULL);
        CU_ASSERT_EQUAL(err.message[0], '\0');
        rtls_free(t);
        config_fini(&cfg);
    }
}

/* The module's own calls on one session: handshake, a command written,
 * its reply read in small pieces (what the session holds beyond a piece is
 * pending), then the session freed. */
static void test_session_calls(void)
{
    int port = free_port();
    pid_t pid = server_start(port, false);
    CU_ASSERT_FATAL(pid > 0);
    struct rtls *t = ctx_for("ca.crt", false);
    int fd = tcp_connect(port);
    CU_ASSERT_FATAL(t && fd >= 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct rtls_conn *c = rtls_conn_new(t, fd, "127.0.0.1");
    char msg[256] = "";
    enum rtls_status s;
    int rounds = 0;
    while ((s = rtls_handshake(c, msg, sizeof msg)) == RTLS_WANT_READ || s == RTLS_WANT_WRITE) {
        struct pollfd p = {fd, s == RTLS_WANT_READ ? POLLIN : POLLOUT, 0};
        if (poll(&p, 1, 2000) != 1 || ++rounds > 100)
            break;
    }
    CU_ASSERT_EQUAL_FATAL(s, RTLS_OK);
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    size_t n = 0;
    CU_ASSERT_EQUAL(rtls_write(c, ping, sizeof ping - 1, &n, msg, sizeof msg), RTLS_OK);
    CU_ASSERT_EQUAL(n, sizeof ping - 1);
    char got[16] = "";
    struct pollfd p = {fd, POLLIN, 0};
    CU_ASSERT(poll(&p, 1, 2000) == 1);
    do
        s = rtls_read(c, got, 3, &n, msg, sizeof msg);
    while (s == RTLS_WANT_READ && poll(&p, 1, 2000) == 1);
    CU_ASSERT_EQUAL(s, RTLS_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_NSTRING_EQUAL(got, "+PO", 3);
    CU_ASSERT(rtls_pending(c)); /* "NG\r\n" is decrypted already */
    CU_ASSERT_EQUAL(rtls_read(c, got, sizeof got, &n, msg, sizeof msg), RTLS_OK);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT(!rtls_pending(c));
    CU_ASSERT_EQUAL(rtls_read(c, got, sizeof got, &n, msg, sizeof msg), RTLS_WANT_READ);
    /* The server closing is told apart from an error. */
    server_stop(pid);
    CU_ASSERT(poll(&p, 1, 2000) == 1);
    s = rtls_read(c, got, sizeof got, &n, msg, sizeof msg);
    CU_ASSERT(s == RTLS_CLOSED || s == RTLS_ERROR);
    CU_ASSERT(msg[0] != '\0');
    rtls_conn_free(c);
    rtls_conn_free(NULL);
    close(fd);
    rtls_free(t);
}

/* Commands through the client: a login as an ACL user, and values much
 * larger than a TLS record both ways. */
static void test_commands_over_tls(void)
{
    int port = free_port();
    pid_t pid = server_start(port, false);
    CU_ASSERT_FATAL(pid > 0);
    struct rtls *t = ctx_for("ca.crt", false);
    CU_ASSERT_FATAL(t != NULL);
    char out[256];
    CU_ASSERT(one_command(port, t, NULL, "app", "app-password", 2000, out, sizeof out));
    CU_ASSERT_STRING_EQUAL(out, "PONG");
    CU_ASSERT(one_command(port, t, "localhost", NULL, NULL, 2000, out, sizeof out));
    /* A wrong password fails the commands behind it. */
    CU_ASSERT(!one_command(port, t, NULL, "app", "wrong", 2000, out, sizeof out));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "AUTH"));
    CU_ASSERT_PTR_NULL(strstr(out, "wrong"));

    struct rnode_opts o = {.timeout_ms = 2000, .user = "app", .password = "app-password",
                           .tls = t};
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", port, &o);
    size_t big = 300000;
    char *value = malloc(big);
    for (size_t i = 0; i < big; i++)
        value[i] = (char)('a' + i % 26);
    const char *set[] = {"SET", "rtls:big", value};
    size_t setlen[] = {3, 8, big};
    struct api_error err;
    redisReply *r = redis_command(rc, 3, set, setlen, &err);
    CU_ASSERT(r && r->type == REDIS_REPLY_STATUS);
    if (r)
        freeReplyObject(r);
    const char *get[] = {"GET", "rtls:big"};
    for (int i = 0; i < 3; i++) {
        r = redis_command(rc, 2, get, NULL, &err);
        CU_ASSERT(r && r->type == REDIS_REPLY_STRING && r->len == big &&
                  memcmp(r->str, value, big) == 0);
        if (r)
            freeReplyObject(r);
    }
    free(value);
    redis_conn_free(rc);
    rtls_free(t);
    server_stop(pid);
}

static void test_client_certificate(void)
{
    int port = free_port();
    pid_t pid = server_start(port, true);
    CU_ASSERT_FATAL(pid > 0);
    struct rtls *without = ctx_for("ca.crt", false), *with = ctx_for("ca.crt", true);
    char out[256];
    CU_ASSERT(!one_command(port, without, NULL, NULL, NULL, 1000, out, sizeof out));
    CU_ASSERT(one_command(port, with, NULL, NULL, NULL, 1000, out, sizeof out));
    rtls_free(without);
    rtls_free(with);
    server_stop(pid);
}

static void test_other_ca_refused(void)
{
    int port = free_port();
    pid_t pid = server_start(port, false);
    CU_ASSERT_FATAL(pid > 0);
    struct rtls *t = ctx_for("other-ca.crt", false);
    char out[256];
    CU_ASSERT(!one_command(port, t, NULL, NULL, NULL, 1000, out, sizeof out));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "certificate refused"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "127.0.0.1"));
    rtls_free(t);
    server_stop(pid);
}

static void test_wrong_name_refused(void)
{
    int port = free_port();
    pid_t pid = server_start(port, false);
    CU_ASSERT_FATAL(pid > 0);
    struct rtls *t = ctx_for("ca.crt", false);
    char out[256];
    CU_ASSERT(!one_command(port, t, "redis.example.org", NULL, NULL, 1000, out, sizeof out));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "certificate refused"));
    CU_ASSERT(!one_command(port, t, "127.0.0.2", NULL, NULL, 1000, out, sizeof out));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "certificate refused"));
    rtls_free(t);
    server_stop(pid);
}

/* A server that accepts and never speaks TLS: the timeout bounds the
 * handshake, and the next command tries again at once (as after a connect
 * timeout), bounded again.  A refused handshake holds the next attempt
 * back. */
static void test_handshake_timeout(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 8) == 0 &&
                    getsockname(lfd, (struct sockaddr *)&a, &len) == 0);
    struct rtls *t = ctx_for("ca.crt", false);
    struct rnode_opts o = {.timeout_ms = 100, .tls = t};
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", ntohs(a.sin_port), &o);
    const char *argv[] = {"PING"};
    struct api_error err;
    int64_t start = mono_ns();
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    int64_t ms = (mono_ns() - start) / 1000000;
    CU_ASSERT(ms >= 90 && ms < 1000);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "TLS handshake timeout"));
    start = mono_ns();
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    ms = (mono_ns() - start) / 1000000;
    CU_ASSERT(ms >= 90 && ms < 1000);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "TLS handshake timeout"));
    redis_conn_free(rc);
    close(lfd);

    int port = free_port();
    pid_t pid = server_start(port, false);
    CU_ASSERT_FATAL(pid > 0);
    struct rnode_opts named = {.timeout_ms = 1000, .tls = t, .server_name = "wrong.example"};
    rc = redis_conn_new(NULL, "127.0.0.1", port, &named);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "certificate refused"));
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "retrying shortly"));
    redis_conn_free(rc);
    rtls_free(t);
    server_stop(pid);
}

/* redis_conn_from_config: every [redis] setting reaches the connection
 * (TLS, name checked, login), in single and cluster mode. */
static void test_conn_from_config(void)
{
    int port = free_port();
    pid_t pid = server_start(port, false);
    CU_ASSERT_FATAL(pid > 0);
    static const char *const cases[][2] = {
        /* extra settings, outcome wanted */
        {"user = app\npassword = app-password\n", "PONG"},
        {"user = app\npassword = wrong\n", "AUTH failed"},
        {"tls_server_name = localhost\n", "PONG"},
        {"tls_server_name = redis.example.org\n", "certificate refused"},
        {"tls = 0\n", "redis 127.0.0.1:"}, /* plain TCP to a TLS port */
        {"nodes = 127.0.0.1:%d\n", "cluster"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char extra[256], text[1024];
        snprintf(extra, sizeof extra, cases[i][0], port);
        snprintf(text, sizeof text,
                 "[security]\nhmac_secret = 0123456789abcdef0123456789abcdef\n"
                 "[postgres]\nconninfo = dbname=x\n[redis]\nhost = 127.0.0.1\nport = %d\n"
                 "timeout_ms = 1000\ntls = 1\ntls_ca_file = %s\n%s",
                 port, in_dir("ca.crt"), extra);
        struct config cfg;
        struct api_error err;
        CU_ASSERT_EQUAL_FATAL(config_load_string(&cfg, "t.conf", text, NULL, &err), 0);
        struct rtls *t = rtls_from_config(&cfg, &err);
        struct redis_conn *rc = redis_conn_from_config(NULL, &cfg, t, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
        const char *argv[] = {"PING"};
        memset(&err, 0, sizeof err);
        redisReply *r = redis_command(rc, 1, argv, NULL, &err);
        const char *got = r ? (r->str ? r->str : "") : err.message;
        if (!strstr(got, cases[i][1]))
            fprintf(stderr, "\ncase %zu: %s\n", i, got);
        CU_ASSERT_PTR_NOT_NULL(strstr(got, cases[i][1]));
        if (r)
            freeReplyObject(r);
        redis_conn_free(rc);
        rtls_free(t);
        config_fini(&cfg);
    }
    server_stop(pid);
}

/* The server restarts: the client connects and shakes hands again. */
static void test_reconnect_after_restart(void)
{
    int port = free_port();
    pid_t pid = server_start(port, false);
    CU_ASSERT_FATAL(pid > 0);
    struct rtls *t = ctx_for("ca.crt", false);
    struct rnode_opts o = {.timeout_ms = 500, .tls = t};
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", port, &o);
    struct api_error err;
    CU_ASSERT_EQUAL(redis_ping(rc, &err), 0);
    server_stop(pid);
    CU_ASSERT_NOT_EQUAL(redis_ping(rc, &err), 0);
    pid = server_start(port, false);
    CU_ASSERT_FATAL(pid > 0);
    int ok = -1;
    for (int i = 0; i < 50 && ok != 0; i++) {
        ok = redis_ping(rc, &err);
        if (ok != 0)
            sleep_ms(20);
    }
    CU_ASSERT_EQUAL(ok, 0);
    redis_conn_free(rc);
    rtls_free(t);
    server_stop(pid);
}

int main(void)
{
    log_open(NULL, LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    if (make_material() != 0) {
        fprintf(stderr, "test_rtls: cannot make certificates with openssl in %s\n", dir);
        remove_material();
        return 1;
    }
    static const struct unit_test tests[] = {
        UNIT_TEST(test_new_refuses_bad_files), UNIT_TEST(test_from_config),
        UNIT_TEST(test_session_calls),         UNIT_TEST(test_commands_over_tls),
        UNIT_TEST(test_client_certificate),    UNIT_TEST(test_other_ca_refused),
        UNIT_TEST(test_wrong_name_refused),    UNIT_TEST(test_handshake_timeout),
        UNIT_TEST(test_reconnect_after_restart), UNIT_TEST(test_conn_from_config),
    };
    int rc = unit_run("rtls", tests, TG_ARRAY_LEN(tests));
    remove_material();
    log_close();
    return rc;
}
