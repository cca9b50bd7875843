/* rcluster: the Redis Cluster rules a client needs, with no I/O.
 *
 * Key slots (CRC16 of the key or of its hash tag, mod 16384), which
 * argument of a command is its key, the MOVED / ASK / TRYAGAIN /
 * CLUSTERDOWN error replies, the seed list of the configuration and the
 * slot map loaded from CLUSTER SLOTS.  redis.c does the talking; this module
 * only decides, so all of it is tested without a server. */
#ifndef TOLLGATE_RCLUSTER_H
#define TOLLGATE_RCLUSTER_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define RCLUSTER_SLOTS 16384
/* Addresses a map remembers at most: far above any real cluster, and a
 * bound on what a confused server can make a client allocate. */
#define RCLUSTER_MAX_ADDRS 1024
#define RCLUSTER_HOST_MAX 256

struct rcluster_addr {
    char host[RCLUSTER_HOST_MAX];
    int port;
};

/* The slot of a key of len bytes: CRC16-XMODEM of the hash tag (the bytes
 * between the first '{' and the next '}' when there are any) or else of
 * the whole key, mod 16384. */
int rcluster_slot(const char *key, size_t len);

/* Index in argv of the argument that routes the command: 1 for ordinary
 * commands (GET, SET, HSET, DEL...), 3 for EVAL, EVALSHA, their _RO forms
 * and FCALL when numkeys > 0; -1 for keyless commands (PING, TIME, SCRIPT,
 * CLUSTER..., EVAL with no keys), which may go to any node.  argvlen NULL:
 * strlen.  Commands whose first key sits elsewhere are not supported. */
int rcluster_key_index(int argc, const char *const *argv, const size_t *argvlen);

enum rcluster_reply_kind {
    RCLUSTER_PLAIN,    /* an answer for the caller, error or not */
    RCLUSTER_MOVED,    /* the slot lives elsewhere for good */
    RCLUSTER_ASK,      /* this command only: ASKING then retry there */
    RCLUSTER_TRYAGAIN, /* TRYAGAIN or CLUSTERDOWN: retry after a pause */
};

struct rcluster_redirect {
    int slot;
    struct rcluster_addr to; /* host "" means the host of the replying node */
};

/* What a reply asks of the client.  For MOVED and ASK, fills *out; a
 * malformed redirection is PLAIN (handed to the caller as the error it
 * is).  r may be NULL (PLAIN). */
enum rcluster_reply_kind rcluster_classify(const redisReply *r, struct rcluster_redirect *out);

/* Parses "host:port[,host:port...]" (white space around items ignored, the
 * port after the last ':', so "::1:7000" and "[::1]:7000" name an IPv6
 * host).  Returns the number of addresses (at least 1) with a heap array in
 * *out that the caller frees, or -1 with err filled; out may be NULL to
 * only validate. */
int rcluster_parse_seeds(const char *list, struct rcluster_addr **out, struct api_error *err) TG_WUR;

/* One contiguous slot range served by one primary. */
struct rcluster_range {
    int first, last;
    struct rcluster_addr primary;
};

/* Parses a CLUSTER SLOTS reply.  A primary announced with host "" (same
 * host as the node asked) gets default_host; one announced as "?" (endpoint
 * unknown) leaves its slots out.  Returns the number of ranges with a heap
 * array in *out that the caller frees (NULL when there are none), or -1
 * with err filled when the reply is not a well-formed slot table. */
int rcluster_parse_slots(const redisReply *r, const char *default_host,
                         struct rcluster_range **out, struct api_error *err) TG_WUR;

/* Slot -> primary.  Addresses keep their index for the life of the map (a
 * client keeps one connection per index); owner[] holds an index or -1
 * for a slot of unknown owner. */
struct rcluster_map {
    int16_t owner[RCLUSTER_SLOTS];
    struct rcluster_addr *addrs;
    size_t naddrs;
};

/* Every slot unknown, no address. */
void rcluster_map_init(struct rcluster_map *m);
void rcluster_map_fini(struct rcluster_map *m);
/* Index of host:port, added when new; -1 past RCLUSTER_MAX_ADDRS. */
int rcluster_map_addr(struct rcluster_map *m, const char *host, int port);
/* Replaces the whole slot table with ranges (slots outside them become
 * unknown).  Returns 0, or -1 when the address limit was reached (the
 * slots of the addresses that did not fit become unknown). */
int rcluster_map_assign(struct rcluster_map *m, const struct rcluster_range *ranges, size_t n);
/* Records a MOVED: slot now lives at host:port.  Returns the address's
 * index, or -1 past RCLUSTER_MAX_ADDRS (the map is then unchanged). */
int rcluster_map_move(struct rcluster_map *m, int slot, const char *host, int port);
/* The owner of slot, or -1. */
int rcluster_map_owner(const struct rcluster_map *m, int slot);

#endif
