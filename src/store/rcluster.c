#include "rcluster.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* CRC16-XMODEM (polynomial 0x1021, initial value 0), the variant Redis
 * Cluster specifies.  Bit by bit: a key costs well under a microsecond. */
static unsigned crc16(const unsigned char *p, size_t n)
{
    unsigned crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

int rcluster_slot(const char *key, size_t len)
{
    const unsigned char *k = (const unsigned char *)key;
    const unsigned char *open = len ? memchr(k, '{', len) : NULL;
    if (open) {
        size_t rest = len - (size_t)(open - k) - 1;
        const unsigned char *close = rest ? memchr(open + 1, '}', rest) : NULL;
        /* "{}" is no tag: the whole key is hashed. */
        if (close && close > open + 1)
            return (int)(crc16(open + 1, (size_t)(close - open - 1)) % RCLUSTER_SLOTS);
    }
    return (int)(crc16(k, len) % RCLUSTER_SLOTS);
}

static bool word_is(const char *arg, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(arg, word, len) == 0;
}

/* Commands with arguments that name no key: they may run on any node. */
static const char *const keyless[] = {
    "PING",    "ECHO",  "TIME",     "INFO",      "DBSIZE",   "SCRIPT",   "CLUSTER",
    "COMMAND", "CLIENT", "CONFIG",  "FLUSHALL",  "FLUSHDB",  "ROLE",     "LASTSAVE",
    "AUTH",    "HELLO", "SELECT",   "READONLY",  "READWRITE", "ASKING",  "FUNCTION",
    "SLOWLOG", "WAIT",  "SAVE",     "BGSAVE",    "SHUTDOWN", "DEBUG",    "MULTI",
    "EXEC",    "DISCARD", "LATENCY", "MEMORY",   "MODULE",   "ACL",
};

/* Commands shaped like EVAL: name, script, numkeys, keys..., args... */
static const char *const evals[] = {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"};

int rcluster_key_index(int argc, const char *const *argv, const size_t *argvlen)
{
    if (argc < 2)
        return -1;
    size_t len0 = argvlen ? argvlen[0] : strlen(argv[0]);
    for (size_t i = 0; i < TG_ARRAY_LEN(keyless); i++)
        if (word_is(argv[0], len0, keyless[i]))
            return -1;
    for (size_t i = 0; i < TG_ARRAY_LEN(evals); i++) {
        if (!word_is(argv[0], len0, evals[i]))
            continue;
        if (argc < 4)
            return -1;
        char nk[24];
        size_t len2 = argvlen ? argvlen[2] : strlen(argv[2]);
        int64_t numkeys;
        if (len2 >= sizeof nk)
            return -1;
        memcpy(nk, argv[2], len2);
        nk[len2] = '\0';
        /* A malformed count is the server's to refuse, from any node. */
        if (parse_int64(nk, 0, INT32_MAX, &numkeys) != 0 || numkeys == 0)
            return -1;
        return 3;
    }
    return 1;
}

/* Parses "host:port" of n bytes, the port after the last ':'; "[v6]:port"
 * loses its brackets.  An empty host is accepted only when allow_empty. */
static int parse_addr(const char *s, size_t n, bool allow_empty, struct rcluster_addr *out)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':')
            colon = s + i;
    if (!colon)
        return -1;
    size_t hlen = (size_t)(colon - s), plen = n - hlen - 1;
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        s++;
        hlen -= 2;
    }
    char port[8];
    int64_t p;
    if ((hlen == 0 && !allow_empty) || hlen >= sizeof out->host || plen == 0 ||
        plen >= sizeof port)
        return -1;
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    if (parse_int64(port, 1, 65535, &p) != 0)
        return -1;
    for (size_t i = 0; i < hlen; i++)
        if (s[i] == ',' || s[i] == ' ' || (unsigned char)s[i] < 0x20)
            return -1;
    memcpy(out->host, s, hlen);
    out->host[hlen] = '\0';
    out->port = (int)p;
    return 0;
}

/* "<slot> <host>:<port>", the tail of a MOVED or ASK error. */
static int parse_redirect(const char *s, struct rcluster_redirect *out)
{
    const char *space = strchr(s, ' ');
    char slot[8];
    int64_t v;
    if (!space || space == s || (size_t)(space - s) >= sizeof slot)
        return -1;
    memcpy(slot, s, (size_t)(space - s));
    slot[space - s] = '\0';
    if (parse_int64(slot, 0, RCLUSTER_SLOTS - 1, &v) != 0)
        return -1;
    out->slot = (int)v;
    return parse_addr(space + 1, strlen(space + 1), true, &out->to);
}

/* True when s starts with word followed by a space or its end. */
static bool starts_with_word(const char *s, const char *word)
{
    size_t n = strlen(word);
    return strncmp(s, word, n) == 0 && (s[n] == ' ' || s[n] == '\0');
}

enum rcluster_reply_kind rcluster_classify(const redisReply *r, struct rcluster_redirect *out)
{
    if (!r || r->type != REDIS_REPLY_ERROR || !r->str)
        return RCLUSTER_PLAIN;
    if (starts_with_word(r->str, "MOVED"))
        return parse_redirect(r->str + 6, out) == 0 ? RCLUSTER_MOVED : RCLUSTER_PLAIN;
    if (starts_with_word(r->str, "ASK"))
        return parse_redirect(r->str + 4, out) == 0 ? RCLUSTER_ASK : RCLUSTER_PLAIN;
    if (starts_with_word(r->str, "TRYAGAIN") || starts_with_word(r->str, "CLUSTERDOWN"))
        return RCLUSTER_TRYAGAIN;
    return RCLUSTER_PLAIN;
}

int rcluster_parse_seeds(const char *list, struct rcluster_addr **out, struct api_error *err)
{
    struct rcluster_addr *addrs = NULL;
    int n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        struct rcluster_addr addr;
        if (parse_addr(a, (size_t)(b - a), false, &addr) != 0) {
            api_error_set(err, ERR_UNAVAILABLE, NULL, "'%.*s' is not host:port", (int)(b - a), a);
            free(addrs);
            return -1;
        }
        if (n == RCLUSTER_MAX_ADDRS) {
            api_error_set(err, ERR_UNAVAILABLE, NULL, "more than %d nodes", RCLUSTER_MAX_ADDRS);
            free(addrs);
            return -1;
        }
        if (out) {
            addrs = xrealloc(addrs, (size_t)(n + 1) * sizeof *addrs);
            addrs[n] = addr;
        }
        n++;
        if (!*end)
            break;
        p = end + 1;
    }
    if (out)
        *out = addrs;
    return n;
}

static bool is_slot(const redisReply *r)
{
    return r->type == REDIS_REPLY_INTEGER && r->integer >= 0 && r->integer < RCLUSTER_SLOTS;
}

/* One element of CLUSTER SLOTS: [first, last, [host, port, id...], replicas...].
 * Returns 1 with *out filled, 0 for a range to leave out, -1 if malformed. */
static int parse_range(const redisReply *e, const char *default_host, struct rcluster_range *out)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !is_slot(e->element[0]) ||
        !is_slot(e->element[1]) || e->element[0]->integer > e->element[1]->integer)
        return -1;
    const redisReply *node = e->element[2];
    if (node->type != REDIS_REPLY_ARRAY || node->elements < 2 ||
        node->element[0]->type != REDIS_REPLY_STRING ||
        node->element[1]->type != REDIS_REPLY_INTEGER || node->element[1]->integer < 0 ||
        node->element[1]->integer > 65535)
        return -1;
    const char *host = node->element[0]->str;
    size_t hlen = (size_t)node->element[0]->len;
    if (hlen == 1 && host[0] == '?')
        return 0; /* endpoint unknown */
    if (node->element[1]->integer == 0)
        return 0; /* no plain-text port */
    if (hlen == 0) {
        host = default_host;
        hlen = strlen(host);
    }
    if (hlen == 0 || hlen >= sizeof out->primary.host || memchr(host, '\0', hlen))
        return -1;
    out->first = (int)e->element[0]->integer;
    out->last = (int)e->element[1]->integer;
    memcpy(out->primary.host, host, hlen);
    out->primary.host[hlen] = '\0';
    out->primary.port = (int)node->element[1]->integer;
    return 1;
}

int rcluster_parse_slots(const redisReply *r, const char *default_host,
                         struct rcluster_range **out, struct api_error *err)
{
    *out = NULL;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "CLUSTER SLOTS: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        return -1;
    }
    if (r->elements > RCLUSTER_SLOTS) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "CLUSTER SLOTS: %zu ranges", r->elements);
        return -1;
    }
    struct rcluster_range *ranges = r->elements ? xcalloc(r->elements, sizeof *ranges) : NULL;
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        int got = parse_range(r->element[i], default_host, &ranges[n]);
        if (got < 0) {
            api_error_set(err, ERR_UNAVAILABLE, NULL, "CLUSTER SLOTS: malformed range %zu", i);
            free(ranges);
            return -1;
        }
        n += got;
    }
    if (n == 0) {
        free(ranges);
        ranges = NULL;
    }
    *out = ranges;
    return n;
}

void rcluster_map_init(struct rcluster_map *m)
{
    memset(m, 0, sizeof *m);
    for (int s = 0; s < RCLUSTER_SLOTS; s++)
        m->owner[s] = -1;
}

void rcluster_map_fini(struct rcluster_map *m)
{
    free(m->addrs);
    m->addrs = NULL;
    m->naddrs = 0;
}

int rcluster_map_addr(struct rcluster_map *m, const char *host, int port)
{
    for (size_t i = 0; i < m->naddrs; i++)
        if (m->addrs[i].port == port && strcmp(m->addrs[i].host, host) == 0)
            return (int)i;
    if (m->naddrs >= RCLUSTER_MAX_ADDRS || strlen(host) >= RCLUSTER_HOST_MAX)
        return -1;
    m->addrs = xrealloc(m->addrs, (m->naddrs + 1) * sizeof *m->addrs);
    strlcpy_tg(m->addrs[m->naddrs].host, host, RCLUSTER_HOST_MAX);
    m->addrs[m->naddrs].port = port;
    return (int)m->naddrs++;
}

int rcluster_map_assign(struct rcluster_map *m, const struct rcluster_range *ranges, size_t n)
{
    int rc = 0;
    for (int s = 0; s < RCLUSTER_SLOTS; s++)
        m->owner[s] = -1;
    for (size_t i = 0; i < n; i++) {
        int idx = rcluster_map_addr(m, ranges[i].primary.host, ranges[i].primary.port);
        if (idx < 0) {
            rc = -1;
            continue;
        }
        for (int s = ranges[i].first; s <= ranges[i].last; s++)
            m->owner[s] = (int16_t)idx;
    }
    return rc;
}

int rcluster_map_move(struct rcluster_map *m, int slot, const char *host, int port)
{
    if (slot < 0 || slot >= RCLUSTER_SLOTS)
        return -1;
    int idx = rcluster_map_addr(m, host, port);
    if (idx >= 0)
        m->owner[slot] = (int16_t)idx;
    return idx;
}

int rcluster_map_owner(const struct rcluster_map *m, int slot)
{
    return slot >= 0 && slot < RCLUSTER_SLOTS ? m->owner[slot] : -1;
}
