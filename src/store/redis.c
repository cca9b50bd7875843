#include "redis.h"

#include <errno.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "evloop.h"
#include "rcluster.h"
#include "rnode.h"

/* Cluster: redirections (MOVED, ASK) followed at once by one command, and
 * how often the slot map may be reloaded from the cluster. */
#define FREE_REDIRECTS 2
#define RELOAD_INTERVAL_MS 100

/* Pauses before the tries of a command answered TRYAGAIN or CLUSTERDOWN,
 * or redirected more than FREE_REDIRECTS times (nodes that disagree while
 * a slot changes hands): five tries within 250 ms, then the error reply
 * goes to the caller. */
static const int retry_pause_ms[] = {25, 50, 75, 100};


/* Cluster mode: the slot map and a node per address it ever named.  Nodes
 * live as long as the client, so a node pointer read under the lock stays
 * valid after it is released. */
struct cluster {
    pthread_rwlock_t lock; /* map, nodes, nnodes */
    struct rcluster_map map;
    struct rnode **nodes; /* nodes[i] talks to map.addrs[i] */
    size_t nnodes;
    atomic_bool loaded;        /* the map came from the cluster at least once */
    atomic_bool reload_wanted; /* after a MOVED or a failed command */
    atomic_uint rotor;         /* spreads keyless commands and reloads */
    pthread_mutex_t reload_lock; /* one reload at a time; guards the two below */
    int64_t next_reload_ms;
    char last_error[160];
};

struct redis_conn {
    struct rnode *single;     /* single-server mode */
    struct cluster *cluster; /* cluster mode */
    struct rnode_opts opts; /* every node's; the strings are the client's */
    struct evloop *loop;      /* drives every node's connection */
    bool own_loop;            /* ... from a thread of this client's */
    pthread_t thread;
};

/* ---- Cluster mode ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Starts a node for every address the map gained.  Write lock held. */
static void add_nodes(struct redis_conn *rc)
{
    struct cluster *c = rc->cluster;
    if (c->nnodes == c->map.naddrs)
        return;
    c->nodes = xrealloc(c->nodes, c->map.naddrs * sizeof *c->nodes);
    for (; c->nnodes < c->map.naddrs; c->nnodes++) {
        const struct rcluster_addr *a = &c->map.addrs[c->nnodes];
        c->nodes[c->nnodes] = rnode_new(rc->loop, a->host, a->port, &rc->opts);
    }
}

/* Asks one node for the slot table and installs it.  0 or -1 with msg. */
static int load_from(struct redis_conn *rc, struct rnode *n, char *msg, size_t size)
{
    static const char cmd[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
    struct api_error e;
    redisReply *r = rnode_call(n, cmd, (int)sizeof cmd - 1, false, &e);
    if (!r) {
        rnode_msgf(msg, size, "%s", e.message);
        return -1;
    }
    struct rcluster_range *ranges = NULL;
    int count = rcluster_parse_slots(r, rnode_host(n), &ranges, &e);
    freeReplyObject(r);
    if (count <= 0) {
        rnode_msgf(msg, size, "redis %s:%d: %s", rnode_host(n), rnode_port(n),
             count < 0 ? e.message : "CLUSTER SLOTS: no slot is served");
        return -1;
    }
    struct cluster *c = rc->cluster;
    pthread_rwlock_wrlock(&c->lock);
    int full = rcluster_map_assign(&c->map, ranges, (size_t)count);
    add_nodes(rc);
    pthread_rwlock_unlock(&c->lock);
    free(ranges);
    if (full != 0) /* installed all the same: the slots left out stay unknown */
        rnode_msgf(msg, size, "redis cluster: more than %d node addresses", RCLUSTER_MAX_ADDRS);
    return 0;
}

/* Loads the slot map from the first node that answers, trying every
 * address known (seeds included), from a rotating start.  reload_lock
 * held.  0, or -1 with c->last_error filled. */
static int reload(struct redis_conn *rc)
{
    struct cluster *c = rc->cluster;
    c->next_reload_ms = now_ms() + RELOAD_INTERVAL_MS;
    atomic_store(&c->reload_wanted, false);
    pthread_rwlock_rdlock(&c->lock);
    size_t count = c->nnodes;
    struct rnode **nodes = xmalloc(count * sizeof *nodes);
    memcpy(nodes, c->nodes, count * sizeof *nodes);
    pthread_rwlock_unlock(&c->lock);
    unsigned start = atomic_fetch_add(&c->rotor, 1);
    int rc_load = -1;
    for (size_t i = 0; i < count && rc_load != 0; i++)
        rc_load = load_from(rc, nodes[(start + i) % count], c->last_error, sizeof c->last_error);
    free(nodes);
    if (rc_load == 0)
        atomic_store(&c->loaded, true);
    else
        atomic_store(&c->reload_wanted, true); /* try again after the interval */
    return rc_load;
}

/* Makes sure there is a slot map: the first command loads it (the others
 * wait for that one load); later, a wanted reload runs in whichever thread
 * finds it due and the lock free, while the others go on with the map as
 * it is.  0, or -1 with err filled. */
static int ensure_map(struct redis_conn *rc, struct api_error *err)
{
    struct cluster *c = rc->cluster;
    if (atomic_load(&c->loaded)) {
        if (atomic_load(&c->reload_wanted) && pthread_mutex_trylock(&c->reload_lock) == 0) {
            if (atomic_load(&c->reload_wanted) && now_ms() >= c->next_reload_ms)
                (void)reload(rc); /* on failure the current map serves on */
            pthread_mutex_unlock(&c->reload_lock);
        }
        return 0;
    }
    int rc_load = 0;
    pthread_mutex_lock(&c->reload_lock);
    if (!atomic_load(&c->loaded)) {
        /* While the cluster is unreachable, commands fail at once. */
        if (now_ms() < c->next_reload_ms || reload(rc) != 0) {
            api_error_set(err, ERR_UNAVAILABLE, NULL, "redis cluster: no slot map: %s", c->last_error);
            rc_load = -1;
        }
    }
    pthread_mutex_unlock(&c->reload_lock);
    return rc_load;
}

/* The node serving slot, or any node for slot -1 (and for a slot whose
 * owner is unknown: it redirects or refuses). */
static struct rnode *slot_node(struct cluster *c, int slot)
{
    unsigned spin = slot < 0 ? atomic_fetch_add(&c->rotor, 1) : 0;
    pthread_rwlock_rdlock(&c->lock);
    /* 1361 is prime to 16384: successive keyless commands visit slots
     * spread over the whole range, so every primary gets its turn. */
    int idx = rcluster_map_owner(&c->map, slot >= 0 ? slot : (int)((spin * 1361u) % RCLUSTER_SLOTS));
    if (idx < 0)
        idx = (int)(atomic_fetch_add(&c->rotor, 1) % c->nnodes);
    struct rnode *n = c->nodes[idx];
    pthread_rwlock_unlock(&c->lock);
    return n;
}

/* The node a MOVED (which also updates the map) or an ASK names; NULL when
 * the address table is full. */
static struct rnode *redirect_node(struct redis_conn *rc, const struct rcluster_redirect *to,
                                  bool moved)
{
    struct cluster *c = rc->cluster;
    pthread_rwlock_wrlock(&c->lock);
    int idx = moved ? rcluster_map_move(&c->map, to->slot, to->to.host, to->to.port)
                    : rcluster_map_addr(&c->map, to->to.host, to->to.port);
    if (idx >= 0)
        add_nodes(rc);
    struct rnode *n = idx >= 0 ? c->nodes[idx] : NULL;
    pthread_rwlock_unlock(&c->lock);
    return n;
}

/* Runs a formatted command on the node of slot, following MOVED and ASK and
 * retrying TRYAGAIN and CLUSTERDOWN.  A command that failed on the wire is
 * never resent (it may have run); the map is reloaded in case the cluster
 * changed.  At most 2 + 4 redirections and 4 pauses (250 ms) in all. */
static redisReply *cluster_command(struct redis_conn *rc, const char *cmd, int len, int slot,
                                   struct api_error *err)
{
    struct cluster *c = rc->cluster;
    if (ensure_map(rc, err) != 0)
        return NULL;
    struct rnode *n = NULL; /* set by a redirection */
    bool asking = false;
    int redirects = 0, pauses = 0;
    for (;;) {
        if (!n)
            n = slot_node(c, slot);
        redisReply *r = rnode_call(n, cmd, len, asking, err);
        if (!r) {
            atomic_store(&c->reload_wanted, true);
            return NULL;
        }
        struct rcluster_redirect to;
        enum rcluster_reply_kind kind = rcluster_classify(r, &to);
        if (kind == RCLUSTER_PLAIN)
            return r;
        bool redirect = kind == RCLUSTER_MOVED || kind == RCLUSTER_ASK;
        if (!redirect || ++redirects > FREE_REDIRECTS) {
            if (pauses == (int)TG_ARRAY_LEN(retry_pause_ms))
                return r;
            sleep_ms(retry_pause_ms[pauses++]);
        }
        if (!redirect) {
            freeReplyObject(r);
            n = NULL; /* back to the owner, which may ASK again */
            asking = false;
            continue;
        }
        if (!to.to.host[0]) /* "MOVED 42 :7001": the host we asked */
            strlcpy_tg(to.to.host, rnode_host(n), sizeof to.to.host);
        struct rnode *next = redirect_node(rc, &to, kind == RCLUSTER_MOVED);
        if (!next)
            return r;
        if (kind == RCLUSTER_MOVED)
            atomic_store(&c->reload_wanted, true);
        freeReplyObject(r);
        n = next;
        asking = kind == RCLUSTER_ASK;
    }
}

/* ---- The client ---- */

static void *loop_main(void *arg)
{
    evloop_run(arg);
    return NULL;
}

static char *copy_opt(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

static struct redis_conn *conn_new(struct evloop *loop, const struct rnode_opts *o)
{
    struct redis_conn *rc = xcalloc(1, sizeof *rc);
    rc->opts.timeout_ms = o->timeout_ms;
    rc->opts.user = copy_opt(o->user);
    rc->opts.password = copy_opt(o->password);
    rc->opts.server_name = copy_opt(o->server_name);
    rc->opts.tls = o->tls;
    rc->loop = loop;
    if (!loop) {
        rc->loop = evloop_new();
        rc->own_loop = true;
        /* Signals are for the main thread: the loop's thread blocks them. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int rc_create = pthread_create(&rc->thread, NULL, loop_main, rc->loop);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc_create != 0) {
            fprintf(stderr, "tollgate: cannot start the Redis I/O thread: %s\n",
                    strerror(rc_create));
            abort();
        }
    }
    return rc;
}

struct redis_conn *redis_conn_new(struct evloop *loop, const char *host, int port,
                                  const struct rnode_opts *o)
{
    struct redis_conn *rc = conn_new(loop, o);
    rc->single = rnode_new(rc->loop, host, port, &rc->opts);
    return rc;
}

struct redis_conn *redis_conn_new_cluster(struct evloop *loop, const char *nodes,
                                          const struct rnode_opts *o,
                                          struct api_error *err)
{
    struct rcluster_addr *seeds = NULL;
    int nseeds = rcluster_parse_seeds(nodes, &seeds, err);
    if (nseeds < 0)
        return NULL;
    struct redis_conn *rc = conn_new(loop, o);
    struct cluster *c = xcalloc(1, sizeof *c);
    rc->cluster = c;
    pthread_rwlock_init(&c->lock, NULL);
    pthread_mutex_init(&c->reload_lock, NULL);
    rcluster_map_init(&c->map);
    for (int i = 0; i < nseeds; i++)
        (void)rcluster_map_addr(&c->map, seeds[i].host, seeds[i].port); /* fits: checked */
    free(seeds);
    add_nodes(rc);
    strlcpy_tg(c->last_error, "not loaded yet", sizeof c->last_error);
    return rc;
}

void redis_conn_free(struct redis_conn *rc)
{
    if (!rc)
        return;
    if (rc->own_loop) {
        evloop_stop(rc->loop);
        pthread_join(rc->thread, NULL);
    }
    rnode_free(rc->single);
    struct cluster *c = rc->cluster;
    if (c) {
        for (size_t i = 0; i < c->nnodes; i++)
            rnode_free(c->nodes[i]);
        free(c->nodes);
        rcluster_map_fini(&c->map);
        pthread_mutex_destroy(&c->reload_lock);
        pthread_rwlock_destroy(&c->lock);
        free(c);
    }
    if (rc->own_loop)
        evloop_free(rc->loop);
    free((char *)rc->opts.user);
    free((char *)rc->opts.password);
    free((char *)rc->opts.server_name);
    free(rc);
}

void redis_opts_from_config(const struct config *cfg, struct rtls *tls, struct rnode_opts *o)
{
    *o = (struct rnode_opts){
        .timeout_ms = (int)cfg->redis_timeout_ms,
        .user = cfg->redis_user,
        .password = cfg->redis_password,
        .tls = tls,
        .server_name = cfg->redis_tls_server_name,
    };
}

struct redis_conn *redis_conn_from_config(struct evloop *loop, const struct config *cfg,
                                          struct rtls *tls, struct api_error *err)
{
    struct rnode_opts o;
    redis_opts_from_config(cfg, tls, &o);
    if (cfg->redis_nodes[0])
        return redis_conn_new_cluster(loop, cfg->redis_nodes, &o, err);
    return redis_conn_new(loop, cfg->redis_host, (int)cfg->redis_port, &o);
}

redisReply *redis_command(struct redis_conn *rc, int argc, const char **argv,
                          const size_t *argvlen, struct api_error *err)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "redis: cannot format the command");
        return NULL;
    }
    redisReply *r;
    if (rc->cluster) {
        int k = rcluster_key_index(argc, argv, argvlen);
        int slot = k < 0 ? -1 : rcluster_slot(argv[k], argvlen ? argvlen[k] : strlen(argv[k]));
        r = cluster_command(rc, cmd, len, slot, err);
    } else {
        r = rnode_call(rc->single, cmd, len, false, err);
    }
    redisFreeCommand(cmd);
    return r;
}

int redis_ping(struct redis_conn *rc, struct api_error *err)
{
    const char *argv[] = {"PING"};
    redisReply *r = redis_command(rc, 1, argv, NULL, err);
    if (!r)
        return -1;
    int ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0 ? 0 : -1;
    if (ok != 0)
        api_error_set(err, ERR_UNAVAILABLE, NULL, "redis: PING answered %s", r->type == REDIS_REPLY_ERROR ? r->str : "oddly");
    freeReplyObject(r);
    return ok;
}

void redis_script_init(struct redis_script *s, const char *source)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)source, strlen(source), md);
    s->source = source;
    hex_encode(md, SHA_DIGEST_LENGTH, s->sha);
}

static redisReply *eval_with(struct redis_conn *rc, const char *verb, const char *body,
                             int nkeys, const char *const *keys, int nargs,
                             const char *const *args, struct api_error *err)
{
    int argc = 3 + nkeys + nargs;
    const char **argv = xcalloc((size_t)argc, sizeof *argv);
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = verb;
    argv[1] = body;
    argv[2] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[3 + nkeys + i] = args[i];
    redisReply *r = redis_command(rc, argc, argv, NULL, err);
    free(argv);
    return r;
}

redisReply *redis_eval(struct redis_conn *rc, const struct redis_script *s, int nkeys,
                       const char *const *keys, int nargs, const char *const *args,
                       struct api_error *err)
{
    /* In a cluster both go to the node of the first key, so a script is
     * loaded on each node the first time that node needs it. */
    redisReply *r = eval_with(rc, "EVALSHA", s->sha, nkeys, keys, nargs, args, err);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* After a flush, restart or failover: EVAL loads and runs it. */
        freeReplyObject(r);
        r = eval_with(rc, "EVAL", s->source, nkeys, keys, nargs, args, err);
    }
    return r;
}

/* ---- Asynchronous scripts (the event loop's own) ---- */

static void async_done(struct rnode_op *op, redisReply *reply, const char *error)
{
    struct redis_async *a = op->arg;
    redisFreeCommand(a->cmd);
    a->cmd = NULL;
    if (!reply && a->rc->cluster)
        atomic_store(&a->rc->cluster->reload_wanted, true);
    a->done(a, reply, error); /* may free a */
}

int redis_eval_async(struct redis_conn *rc, const struct redis_script *s, int nkeys,
                     const char *const *keys, int nargs, const char *const *args,
                     struct redis_async *a)
{
    struct rnode *node = rc->single;
    if (rc->cluster) {
        if (!atomic_load(&rc->cluster->loaded) || atomic_load(&rc->cluster->reload_wanted))
            return -1; /* the map is the synchronous path's to (re)load */
        node = slot_node(rc->cluster, nkeys > 0 ? rcluster_slot(keys[0], strlen(keys[0])) : -1);
    }
    int argc = 3 + nkeys + nargs;
    const char *argv[3 + 2 * RATELIMIT_ARGS_MAX];
    if (argc > (int)TG_ARRAY_LEN(argv))
        return -1;
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = s->sha;
    argv[2] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[3 + nkeys + i] = args[i];
    int len = redisFormatCommandArgv(&a->cmd, argc, argv, NULL);
    if (len < 0)
        return -1;
    memset(&a->op, 0, sizeof a->op);
    a->op.cmd = a->cmd;
    a->op.len = len;
    a->op.done = async_done;
    a->op.arg = a;
    a->rc = rc;
    rnode_send(node, &a->op);
    return 0;
}

bool redis_reply_wants_sync(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ERROR)
        return false;
    struct rcluster_redirect to;
    return strncmp(r->str, "NOSCRIPT", 8) == 0 || rcluster_classify(r, &to) != RCLUSTER_PLAIN;
}
