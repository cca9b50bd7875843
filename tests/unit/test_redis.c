/* Unit tests of redis that need no server: script digests, failures
 * against a port where nothing listens, which must be reported and fast,
 * and cluster mode against a fake cluster of three nodes in this process
 * (a thread answering the few commands the client sends). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <semaphore.h>
#include <time.h>

#include "evloop.h"
#include "log.h"
#include "rcluster.h"
#include "redis.h"
#include "unit.h"

static void test_script_sha(void)
{
    struct redis_script s;
    redis_script_init(&s, "return 1");
    CU_ASSERT_STRING_EQUAL(s.sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    CU_ASSERT_STRING_EQUAL(s.source, "return 1");
    redis_script_init(&s, "");
    CU_ASSERT_STRING_EQUAL(s.sha, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    redis_script_init(&s, "The quick brown fox jumps over the lazy dog");
    CU_ASSERT_STRING_EQUAL(s.sha, "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
    CU_ASSERT_EQUAL(strlen(s.sha), 40);
}

static void test_command_unreachable(void)
{
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", 1, &(struct rnode_opts){.timeout_ms = 200});
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc); /* never fails: connects on first use */
    const char *argv[] = {"PING"};
    struct api_error err;
    memset(&err, 0, sizeof err);
    redisReply *r = redis_command(rc, 1, argv, NULL, &err);
    CU_ASSERT_PTR_NULL(r);
    if (r)
        freeReplyObject(r);
    CU_ASSERT(err.message[0] != '\0');
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "127.0.0.1"));
    redis_conn_free(rc);
}

static void test_command_fails_fast(void)
{
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", 1, &(struct rnode_opts){.timeout_ms = 1000, .password = "secret-password"});
    const char *argv[] = {"GET", "tg:kr:x"};
    size_t lens[] = {3, 7};
    int64_t start = mono_ns();
    int failures = 0;
    for (int i = 0; i < 1000; i++) {
        struct api_error err;
        memset(&err, 0, sizeof err);
        redisReply *r = redis_command(rc, 2, argv, lens, &err);
        if (r)
            freeReplyObject(r);
        failures += r == NULL && err.message[0] != '\0' && !strstr(err.message, "secret-password");
    }
    int64_t elapsed_ms = (mono_ns() - start) / 1000000;
    CU_ASSERT_EQUAL(failures, 1000);
    /* A down store costs a request little more than a clock read. */
    CU_ASSERT(elapsed_ms < 1000);
    /* err may be NULL. */
    CU_ASSERT_PTR_NULL(redis_command(rc, 2, argv, lens, NULL));
    redis_conn_free(rc);
}

/* A listening socket that never answers: the kernel completes connections
 * into its backlog, so counting them tells how often the client connected.
 * Returns the descriptor and the port, or -1. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Accepts and closes every pending connection; returns how many there were. */
static int drain(int fd)
{
    int n = 0, c;
    while ((c = accept(fd, NULL, NULL)) >= 0) {
        close(c);
        n++;
    }
    return n;
}

static void test_reconnect_interval(void)
{
    int port = 0;
    int lfd = silent_listener(&port);
    CU_ASSERT_FATAL(lfd >= 0);
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", port, &(struct rnode_opts){.timeout_ms = 30});
    const char *argv[] = {"PING"};
    struct api_error err;
    /* The first command connects, then times out waiting for the reply. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT(strstr(err.message, "timeout") != NULL);
    CU_ASSERT_EQUAL(drain(lfd), 1);
    /* A lost connection is replaced at once by the next command: a late
     * reply on the old one can never answer it. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT_EQUAL(drain(lfd), 1);
    redis_conn_free(rc);
    close(lfd);

    /* A refused connect holds the next attempt back for 100 ms. */
    rc = redis_conn_new(NULL, "127.0.0.1", 1, &(struct rnode_opts){.timeout_ms = 30});
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT(strstr(err.message, "connect") != NULL);
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT(strstr(err.message, "retrying shortly") != NULL);
    struct timespec pause = {0, 150 * 1000000L};
    nanosleep(&pause, NULL);
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT(strstr(err.message, "connect") != NULL);
    redis_conn_free(rc);
}

static void test_eval_unreachable(void)
{
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", 1, &(struct rnode_opts){.timeout_ms = 200});
    struct redis_script s;
    redis_script_init(&s, "return redis.call('GET', KEYS[1])");
    const char *keys[] = {"k"};
    const char *args[] = {"1", "2"};
    struct api_error err;
    memset(&err, 0, sizeof err);
    redisReply *r = redis_eval(rc, &s, 1, keys, 2, args, &err);
    CU_ASSERT_PTR_NULL(r);
    if (r)
        freeReplyObject(r);
    CU_ASSERT(err.message[0] != '\0');
    redis_conn_free(rc);
    redis_conn_free(NULL);
}

/* ---- A fake cluster: three nodes served by one thread ---- */

#define FAKE_NODES 3
#define FAKE_CONNS 64
#define FAKE_SCRIPTS 8

struct fake_conn {
    int fd; /* -1: free */
    int node;
    redisReader *reader;
    bool asking;
};

struct fake {
    pthread_t thread;
    int listen_fd[FAKE_NODES];
    int port[FAKE_NODES];
    int stop_pipe[2];
    struct fake_conn conns[FAKE_CONNS];
    /* Shared with the tests, under lock. */
    pthread_mutex_t lock;
    int8_t owner[RCLUSTER_SLOTS];        /* who serves each slot */
    int8_t advertised[RCLUSTER_SLOTS];   /* what CLUSTER SLOTS says */
    int8_t migrating_to[RCLUSTER_SLOTS]; /* -1, or where the slot's keys went */
    bool moved_empty_host;               /* "MOVED 42 :port" */
    const char *transient;               /* error answered transient_left times */
    int transient_left;
    int pingpong_left; /* MOVED to the next node, as while a slot changes hands */
    char scripts[FAKE_NODES][FAKE_SCRIPTS][41];
    int nscripts[FAKE_NODES];
    int slots_requests, moved, asks, asking_violations, transients;
    int evals[FAKE_NODES];
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* CLUSTER SLOTS from f->advertised: one range per run of equal owners. */
static int fake_slots_reply(struct fake *f, char *out, size_t size)
{
    char body[2048];
    int len = 0, ranges = 0;
    for (int s = 0; s < RCLUSTER_SLOTS;) {
        int e = s;
        while (e + 1 < RCLUSTER_SLOTS && f->advertised[e + 1] == f->advertised[s])
            e++;
        len += snprintf(body + len, sizeof body - (size_t)len,
                        "*3\r\n:%d\r\n:%d\r\n*3\r\n$9\r\n127.0.0.1\r\n:%d\r\n$2\r\nid\r\n", s, e,
                        f->port[f->advertised[s]]);
        ranges++;
        s = e + 1;
    }
    return snprintf(out, size, "*%d\r\n%s", ranges, body);
}

static bool fake_has_script(struct fake *f, int node, const char *sha)
{
    for (int i = 0; i < f->nscripts[node]; i++)
        if (strcmp(f->scripts[node][i], sha) == 0)
            return true;
    return false;
}

/* Serves a keyed command on node (the slot is ours or was ASKed for). */
static int fake_serve(struct fake *f, int node, const redisReply *req, char *out, size_t size)
{
    const char *cmd = req->element[0]->str;
    if (strcasecmp(cmd, "GET") == 0)
        return snprintf(out, size, "$2\r\nn%d\r\n", node);
    if (strcasecmp(cmd, "EVAL") == 0) {
        struct redis_script s;
        redis_script_init(&s, req->element[1]->str);
        if (!fake_has_script(f, node, s.sha) && f->nscripts[node] < FAKE_SCRIPTS)
            strlcpy_tg(f->scripts[node][f->nscripts[node]++], s.sha, 41);
        f->evals[node]++;
        return snprintf(out, size, ":%d\r\n", node);
    }
    if (strcasecmp(cmd, "EVALSHA") == 0) {
        if (!fake_has_script(f, node, req->element[1]->str))
            return snprintf(out, size, "-NOSCRIPT No matching script. Please use EVAL.\r\n");
        return snprintf(out, size, ":%d\r\n", node);
    }
    return snprintf(out, size, "+OK\r\n");
}

/* Answers one request of conn as a cluster node would. */
static int fake_answer(struct fake *f, struct fake_conn *c, const redisReply *req, char *out,
                       size_t size)
{
    const char *argv[16];
    size_t lens[16];
    int argc = (int)req->elements;
    if (argc < 1 || argc > 16)
        return snprintf(out, size, "-ERR bad request\r\n");
    for (int i = 0; i < argc; i++) {
        argv[i] = req->element[i]->str;
        lens[i] = req->element[i]->len;
    }
    bool asking = c->asking;
    c->asking = false;
    if (strcasecmp(argv[0], "ASKING") == 0) {
        c->asking = true;
        return snprintf(out, size, "+OK\r\n");
    }
    if (strcasecmp(argv[0], "PING") == 0)
        return snprintf(out, size, "+PONG\r\n");
    if (strcasecmp(argv[0], "CLUSTER") == 0) {
        f->slots_requests++;
        return fake_slots_reply(f, out, size);
    }
    int k = rcluster_key_index(argc, argv, lens);
    if (k < 0)
        return snprintf(out, size, "-ERR unknown command\r\n");
    int slot = rcluster_slot(argv[k], lens[k]);
    if (asking && f->migrating_to[slot] != c->node)
        f->asking_violations++; /* ASKING was meant for another command */
    if (f->pingpong_left > 0) {
        f->pingpong_left--;
        return snprintf(out, size, "-MOVED %d 127.0.0.1:%d\r\n", slot,
                        f->port[(c->node + 1) % FAKE_NODES]);
    }
    if (f->transient_left > 0) {
        f->transient_left--;
        f->transients++;
        return snprintf(out, size, "-%s\r\n", f->transient);
    }
    if (asking && f->migrating_to[slot] == c->node)
        return fake_serve(f, c->node, req, out, size);
    if (f->owner[slot] != c->node) {
        f->moved++;
        if (f->moved_empty_host)
            return snprintf(out, size, "-MOVED %d :%d\r\n", slot, f->port[f->owner[slot]]);
        return snprintf(out, size, "-MOVED %d 127.0.0.1:%d\r\n", slot, f->port[f->owner[slot]]);
    }
    if (f->migrating_to[slot] >= 0) {
        f->asks++;
        return snprintf(out, size, "-ASK %d 127.0.0.1:%d\r\n", slot, f->port[f->migrating_to[slot]]);
    }
    return fake_serve(f, c->node, req, out, size);
}

static void fake_read(struct fake *f, struct fake_conn *c)
{
    char buf[16384];
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n <= 0 || redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
        close(c->fd);
        redisReaderFree(c->reader);
        c->fd = -1;
        return;
    }
    void *req = NULL;
    while (redisReaderGetReply(c->reader, &req) == REDIS_OK && req) {
        char out[4096];
        pthread_mutex_lock(&f->lock);
        int len = fake_answer(f, c, req, out, sizeof out);
        pthread_mutex_unlock(&f->lock);
        freeReplyObject(req);
        req = NULL;
        write_all(c->fd, out, (size_t)len);
    }
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        struct pollfd fds[1 + FAKE_NODES + FAKE_CONNS];
        int conn_of[1 + FAKE_NODES + FAKE_CONNS];
        int nfds = 0;
        fds[nfds++] = (struct pollfd){f->stop_pipe[0], POLLIN, 0};
        for (int i = 0; i < FAKE_NODES; i++)
            fds[nfds++] = (struct pollfd){f->listen_fd[i], POLLIN, 0};
        for (int i = 0; i < FAKE_CONNS; i++) {
            if (f->conns[i].fd < 0)
                continue;
            conn_of[nfds] = i;
            fds[nfds++] = (struct pollfd){f->conns[i].fd, POLLIN, 0};
        }
        if (poll(fds, (nfds_t)nfds, -1) < 0 && errno != EINTR)
            break;
        if (fds[0].revents)
            break;
        for (int i = 0; i < FAKE_NODES; i++) {
            int fd;
            while ((fds[1 + i].revents & POLLIN) && (fd = accept(f->listen_fd[i], NULL, NULL)) >= 0) {
                int slot = 0;
                while (slot < FAKE_CONNS && f->conns[slot].fd >= 0)
                    slot++;
                if (slot == FAKE_CONNS) {
                    close(fd);
                    continue;
                }
                f->conns[slot] = (struct fake_conn){fd, i, redisReaderCreate(), false};
            }
        }
        for (int i = 1 + FAKE_NODES; i < nfds; i++)
            if (fds[i].revents)
                fake_read(f, &f->conns[conn_of[i]]);
    }
    for (int i = 0; i < FAKE_CONNS; i++) {
        if (f->conns[i].fd >= 0) {
            close(f->conns[i].fd);
            redisReaderFree(f->conns[i].reader);
        }
    }
    return NULL;
}

/* Three nodes owning 0-5460, 5461-10922 and 10923-16383, like redis-cli
 * --cluster create makes them.  Returns 0 or -1. */
static int fake_start(struct fake *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    for (int s = 0; s < RCLUSTER_SLOTS; s++) {
        f->owner[s] = f->advertised[s] = (int8_t)(s <= 5460 ? 0 : s <= 10922 ? 1 : 2);
        f->migrating_to[s] = -1;
    }
    for (int i = 0; i < FAKE_CONNS; i++)
        f->conns[i].fd = -1;
    for (int i = 0; i < FAKE_NODES; i++)
        if ((f->listen_fd[i] = silent_listener(&f->port[i])) < 0)
            return -1;
    if (pipe(f->stop_pipe) != 0)
        return -1;
    return pthread_create(&f->thread, NULL, fake_main, f) == 0 ? 0 : -1;
}

static void fake_stop(struct fake *f)
{
    write_all(f->stop_pipe[1], "x", 1);
    pthread_join(f->thread, NULL);
    for (int i = 0; i < FAKE_NODES; i++)
        close(f->listen_fd[i]);
    close(f->stop_pipe[0]);
    close(f->stop_pipe[1]);
    pthread_mutex_destroy(&f->lock);
}

/* A client whose only seed is node 0 of f. */
static struct redis_conn *fake_client(struct fake *f)
{
    char seeds[64];
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d", f->port[0]);
    struct api_error err;
    struct redis_conn *rc = redis_conn_new_cluster(NULL, seeds, &(struct rnode_opts){.timeout_ms = 1000}, &err);
    CU_ASSERT_PTR_NOT_NULL(rc);
    return rc;
}

/* The first of "k0", "k1"... whose slot is owned by node (and not
 * excluded); fills key and returns its slot. */
static int key_on(struct fake *f, int node, int exclude_slot, char key[16])
{
    for (int i = 0;; i++) {
        snprintf(key, 16, "k%d", i);
        int s = rcluster_slot(key, strlen(key));
        if (s != exclude_slot && f->owner[s] == node)
            return s;
    }
}

/* GET key: the node that served it, or -1. */
static int fake_get(struct redis_conn *rc, const char *key)
{
    const char *argv[] = {"GET", key};
    redisReply *r = redis_command(rc, 2, argv, NULL, NULL);
    int node = r && r->type == REDIS_REPLY_STRING && r->len == 2 ? r->str[1] - '0' : -1;
    if (r)
        freeReplyObject(r);
    return node;
}

static int fake_count(struct fake *f, const int *counter)
{
    pthread_mutex_lock(&f->lock);
    int v = *counter;
    pthread_mutex_unlock(&f->lock);
    return v;
}

static void test_cluster_routing(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_start(&f) == 0);
    struct redis_conn *rc = fake_client(&f);
    for (int i = 0; i < 300; i++) {
        char key[16];
        snprintf(key, sizeof key, "key:%d", i);
        CU_ASSERT_EQUAL(fake_get(rc, key), f.owner[rcluster_slot(key, strlen(key))]);
    }
    /* Both keys of a check share a slot, so a node. */
    CU_ASSERT_EQUAL(fake_get(rc, "tg:{abc}:w"), fake_get(rc, "tg:{abc}:s"));
    const char *ping[] = {"PING"};
    for (int i = 0; i < 6; i++) {
        redisReply *r = redis_command(rc, 1, ping, NULL, NULL);
        CU_ASSERT(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0);
        if (r)
            freeReplyObject(r);
    }
    /* One map load, no redirection: every command went straight home. */
    CU_ASSERT_EQUAL(fake_count(&f, &f.slots_requests), 1);
    CU_ASSERT_EQUAL(fake_count(&f, &f.moved), 0);
    redis_conn_free(rc);
    fake_stop(&f);
}

static void test_cluster_moved(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_start(&f) == 0);
    struct redis_conn *rc = fake_client(&f);
    char key[16], other[16];
    int slot = key_on(&f, 0, -1, key);
    CU_ASSERT_EQUAL(fake_get(rc, key), 0);
    /* The slot moves to node 2: followed at once, then known. */
    pthread_mutex_lock(&f.lock);
    f.owner[slot] = f.advertised[slot] = 2;
    pthread_mutex_unlock(&f.lock);
    CU_ASSERT_EQUAL(fake_get(rc, key), 2);
    CU_ASSERT_EQUAL(fake_get(rc, key), 2);
    CU_ASSERT_EQUAL(fake_count(&f, &f.moved), 1);
    /* And the whole map is reloaded once the interval allows. */
    struct timespec pause = {0, 120 * 1000000L};
    nanosleep(&pause, NULL);
    key_on(&f, 1, -1, other);
    CU_ASSERT_EQUAL(fake_get(rc, other), 1);
    CU_ASSERT_EQUAL(fake_count(&f, &f.slots_requests), 2);
    /* A map that lags behind (CLUSTER SLOTS still names the old owner)
     * costs a redirection, never a wrong answer. */
    int slot2 = key_on(&f, 1, -1, other);
    pthread_mutex_lock(&f.lock);
    f.owner[slot2] = 0;
    f.moved_empty_host = true; /* "MOVED n :port": the host asked */
    pthread_mutex_unlock(&f.lock);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(fake_get(rc, other), 0);
        nanosleep(&pause, NULL);
    }
    CU_ASSERT(fake_count(&f, &f.moved) >= 3);
    CU_ASSERT(fake_count(&f, &f.slots_requests) >= 4);
    redis_conn_free(rc);
    fake_stop(&f);
}

struct ask_worker {
    struct redis_conn *rc;
    const char *migrating, *on_target, *on_source;
    int failures;
};

static void *ask_worker_main(void *arg)
{
    struct ask_worker *w = arg;
    for (int i = 0; i < 300; i++) {
        w->failures += fake_get(w->rc, w->migrating) != 1;
        w->failures += fake_get(w->rc, w->on_target) != 1;
        w->failures += fake_get(w->rc, w->on_source) != 0;
    }
    return NULL;
}

static void test_cluster_ask(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_start(&f) == 0);
    struct redis_conn *rc = fake_client(&f);
    char migrating[16], on_source[16], on_target[16];
    int slot = key_on(&f, 0, -1, migrating);
    key_on(&f, 0, slot, on_source);
    key_on(&f, 1, -1, on_target);
    pthread_mutex_lock(&f.lock);
    f.migrating_to[slot] = 1;
    pthread_mutex_unlock(&f.lock);
    /* Eight threads share node 1's connection: every ASKING must be
     * followed by its own command, whatever else is in the pipeline. */
    struct ask_worker w[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct ask_worker){rc, migrating, on_target, on_source, 0};
        pthread_create(&t[i], NULL, ask_worker_main, &w[i]);
    }
    int failures = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT_EQUAL(fake_count(&f, &f.asking_violations), 0);
    CU_ASSERT_EQUAL(fake_count(&f, &f.asks), 8 * 300);
    /* ASK changes no map: once the migration is over, node 0 serves it. */
    pthread_mutex_lock(&f.lock);
    f.migrating_to[slot] = -1;
    pthread_mutex_unlock(&f.lock);
    CU_ASSERT_EQUAL(fake_get(rc, migrating), 0);
    CU_ASSERT_EQUAL(fake_count(&f, &f.moved), 0);
    CU_ASSERT_EQUAL(fake_count(&f, &f.slots_requests), 1);
    redis_conn_free(rc);
    fake_stop(&f);
}

static void test_cluster_retries(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_start(&f) == 0);
    struct redis_conn *rc = fake_client(&f);
    char key[16];
    key_on(&f, 2, -1, key);
    CU_ASSERT_EQUAL(fake_get(rc, key), 2);
    /* A short TRYAGAIN spell is waited out... */
    pthread_mutex_lock(&f.lock);
    f.transient = "TRYAGAIN Multiple keys request during rehashing of slot";
    f.transient_left = 3;
    pthread_mutex_unlock(&f.lock);
    int64_t start = mono_ns();
    CU_ASSERT_EQUAL(fake_get(rc, key), 2);
    int64_t ms = (mono_ns() - start) / 1000000;
    CU_ASSERT(ms >= 150 && ms < 600);
    CU_ASSERT_EQUAL(fake_count(&f, &f.transients), 3);
    /* ...a long one is handed back after five tries within 250 ms. */
    pthread_mutex_lock(&f.lock);
    f.transient = "CLUSTERDOWN The cluster is down";
    f.transient_left = 100;
    pthread_mutex_unlock(&f.lock);
    const char *argv[] = {"GET", key};
    struct api_error err;
    start = mono_ns();
    redisReply *r = redis_command(rc, 2, argv, NULL, &err);
    ms = (mono_ns() - start) / 1000000;
    CU_ASSERT(r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "CLUSTERDOWN", 11) == 0);
    if (r)
        freeReplyObject(r);
    CU_ASSERT_EQUAL(fake_count(&f, &f.transients), 3 + 5);
    CU_ASSERT(ms >= 250 && ms < 800);
    /* Nodes that send a command round in circles (while a slot changes
     * hands) are followed twice at once, then with the same pauses. */
    pthread_mutex_lock(&f.lock);
    f.transient_left = 0;
    f.pingpong_left = 4;
    pthread_mutex_unlock(&f.lock);
    start = mono_ns();
    CU_ASSERT_EQUAL(fake_get(rc, key), 2);
    ms = (mono_ns() - start) / 1000000;
    CU_ASSERT(ms >= 75 && ms < 500);
    pthread_mutex_lock(&f.lock);
    f.pingpong_left = 100;
    pthread_mutex_unlock(&f.lock);
    start = mono_ns();
    r = redis_command(rc, 2, argv, NULL, &err);
    ms = (mono_ns() - start) / 1000000;
    CU_ASSERT(r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED", 5) == 0);
    if (r)
        freeReplyObject(r);
    CU_ASSERT_EQUAL(fake_count(&f, &f.pingpong_left), 100 - 7);
    CU_ASSERT(ms >= 250 && ms < 800);
    redis_conn_free(rc);
    fake_stop(&f);
}

static int eval_on(struct redis_conn *rc, const struct redis_script *s, const char *key)
{
    const char *keys[] = {key};
    const char *args[] = {"1"};
    redisReply *r = redis_eval(rc, s, 1, keys, 1, args, NULL);
    int node = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    if (r)
        freeReplyObject(r);
    return node;
}

static void test_cluster_noscript(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_start(&f) == 0);
    struct redis_conn *rc = fake_client(&f);
    struct redis_script s;
    redis_script_init(&s, "return redis.call('GET', KEYS[1])");
    char k1[16], k2[16];
    key_on(&f, 1, -1, k1);
    key_on(&f, 2, -1, k2);
    /* Loaded on node 1 by its first use there, then run by SHA. */
    CU_ASSERT_EQUAL(eval_on(rc, &s, k1), 1);
    CU_ASSERT_EQUAL(eval_on(rc, &s, k1), 1);
    CU_ASSERT_EQUAL(fake_count(&f, &f.evals[1]), 1);
    /* Node 2 has its own script cache. */
    CU_ASSERT_EQUAL(eval_on(rc, &s, k2), 2);
    CU_ASSERT_EQUAL(fake_count(&f, &f.evals[2]), 1);
    /* SCRIPT FLUSH on node 1 only. */
    pthread_mutex_lock(&f.lock);
    f.nscripts[1] = 0;
    pthread_mutex_unlock(&f.lock);
    CU_ASSERT_EQUAL(eval_on(rc, &s, k1), 1);
    CU_ASSERT_EQUAL(eval_on(rc, &s, k2), 2);
    CU_ASSERT_EQUAL(fake_count(&f, &f.evals[1]), 2);
    CU_ASSERT_EQUAL(fake_count(&f, &f.evals[2]), 1);
    redis_conn_free(rc);
    fake_stop(&f);
}

static void test_cluster_unreachable(void)
{
    struct api_error err;
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_conn_new_cluster(NULL, "127.0.0.1", &(struct rnode_opts){.timeout_ms = 50}, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "host:port"));
    struct redis_conn *rc = redis_conn_new_cluster(NULL, "127.0.0.1:1, 127.0.0.1:2", &(struct rnode_opts){.timeout_ms = 200, .password = "pw"}, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    const char *argv[] = {"GET", "tg:kr:x"};
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 2, argv, NULL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "no slot map"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "127.0.0.1"));
    /* Without a map every command fails at once, until a reload is due. */
    int64_t start = mono_ns();
    int failures = 0;
    for (int i = 0; i < 1000; i++) {
        memset(&err, 0, sizeof err);
        failures += redis_command(rc, 2, argv, NULL, &err) == NULL && err.message[0] != '\0';
    }
    CU_ASSERT_EQUAL(failures, 1000);
    CU_ASSERT((mono_ns() - start) / 1000000 < 1000);
    redis_conn_free(rc);
}

/* ---- Asynchronous scripts from an event loop ---- */

struct async_case {
    struct redis_conn *rc;
    const struct redis_script *s;
    const char *key;
    struct redis_async a;
    struct evloop_task task;
    int sent;           /* redis_eval_async's result */
    long long integer;  /* the reply: an integer, or -1 */
    bool wants_sync;
    bool failed;        /* no reply at all */
    bool in_loop;
    sem_t done;
};

static void async_done(struct redis_async *a, redisReply *reply, const char *error)
{
    struct async_case *c = a->arg;
    c->in_loop = true;
    c->failed = reply == NULL && error != NULL;
    c->integer = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    c->wants_sync = redis_reply_wants_sync(reply);
    if (reply)
        freeReplyObject(reply);
    sem_post(&c->done);
}

static void async_send(struct evloop_task *t)
{
    struct async_case *c = t->arg;
    const char *keys[] = {c->key};
    const char *args[] = {"1"};
    c->a.done = async_done;
    c->a.arg = c;
    c->sent = redis_eval_async(c->rc, c->s, 1, keys, 1, args, &c->a);
    if (c->sent != 0)
        sem_post(&c->done);
}

/* Sends the script on key from the loop (run by another thread) and waits. */
static void run_async(struct evloop *loop, struct async_case *c)
{
    c->in_loop = false;
    c->integer = -1;
    c->wants_sync = c->failed = false;
    sem_init(&c->done, 0, 0);
    c->task.fn = async_send;
    c->task.arg = c;
    evloop_post(loop, &c->task);
    while (sem_wait(&c->done) != 0 && errno == EINTR)
        ;
    sem_destroy(&c->done);
}

static void *loop_main(void *arg)
{
    evloop_run(arg);
    return NULL;
}

static void test_cluster_async(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_start(&f) == 0);
    struct evloop *loop = evloop_new();
    char seeds[64];
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d", f.port[0]);
    struct api_error err;
    struct redis_conn *rc = redis_conn_new_cluster(loop, seeds, &(struct rnode_opts){.timeout_ms = 1000}, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    pthread_t t;
    pthread_create(&t, NULL, loop_main, loop);
    struct redis_script s;
    redis_script_init(&s, "return 1");
    char k1[16], k2[16];
    key_on(&f, 1, -1, k1);
    key_on(&f, 2, -1, k2);
    struct async_case c = {.rc = rc, .s = &s, .key = k1};
    /* No slot map yet: the synchronous path must load it. */
    run_async(loop, &c);
    CU_ASSERT_EQUAL(c.sent, -1);
    /* A synchronous call (from this thread, through the loop) loads the map
     * and the script on node 1; then the loop's own call goes there. */
    CU_ASSERT_EQUAL(eval_on(rc, &s, k1), 1);
    CU_ASSERT_EQUAL(redis_ping(rc, &err), 0);
    run_async(loop, &c);
    CU_ASSERT_EQUAL(c.sent, 0);
    CU_ASSERT_TRUE(c.in_loop);
    CU_ASSERT_EQUAL(c.integer, 1);
    CU_ASSERT_FALSE(c.wants_sync);
    /* Node 2 lacks the script: NOSCRIPT is handed back, not followed. */
    c.key = k2;
    run_async(loop, &c);
    CU_ASSERT_EQUAL(c.sent, 0);
    CU_ASSERT_EQUAL(c.integer, -1);
    CU_ASSERT_TRUE(c.wants_sync);
    /* A MOVED is handed back as well. */
    c.key = k1;
    pthread_mutex_lock(&f.lock);
    f.pingpong_left = 1;
    pthread_mutex_unlock(&f.lock);
    run_async(loop, &c);
    CU_ASSERT_EQUAL(c.sent, 0);
    CU_ASSERT_TRUE(c.wants_sync);
    evloop_stop(loop);
    pthread_join(t, NULL);
    redis_conn_free(rc);
    evloop_free(loop);
    fake_stop(&f);
}

static void test_ping_unreachable(void)
{
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", 1, &(struct rnode_opts){.timeout_ms = 200});
    struct api_error err;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(redis_ping(rc, &err), -1);
    CU_ASSERT(err.message[0] != '\0');
    redis_conn_free(rc);
}

int main(void)
{
    log_open("/dev/null", LOG_ERROR);
    static const struct unit_test tests[] = {
        UNIT_TEST(test_script_sha),
        UNIT_TEST(test_command_unreachable),
        UNIT_TEST(test_command_fails_fast),
        UNIT_TEST(test_reconnect_interval),
        UNIT_TEST(test_eval_unreachable),
        UNIT_TEST(test_cluster_routing),
        UNIT_TEST(test_cluster_moved),
        UNIT_TEST(test_cluster_ask),
        UNIT_TEST(test_cluster_retries),
        UNIT_TEST(test_cluster_noscript),
        UNIT_TEST(test_cluster_unreachable),
        UNIT_TEST(test_cluster_async),
        UNIT_TEST(test_ping_unreachable),
    };
    int rc = unit_run("redis", tests, TG_ARRAY_LEN(tests));
    log_close();
    return rc;
}
