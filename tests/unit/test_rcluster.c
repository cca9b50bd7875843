/* Unit tests of rcluster: key slots, key positions, redirections, the seed
 * list and the slot map, from replies recorded off a Redis 7 cluster. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "rcluster.h"
#include "unit.h"

static int slot_of(const char *key)
{
    return rcluster_slot(key, strlen(key));
}

static void test_slot_vectors(void)
{
    /* Values of CLUSTER KEYSLOT on Redis 7.0. */
    CU_ASSERT_EQUAL(slot_of("123456789"), 12739);
    CU_ASSERT_EQUAL(slot_of("foo"), 12182);
    CU_ASSERT_EQUAL(slot_of("bar"), 5061);
    CU_ASSERT_EQUAL(slot_of("hello"), 866);
    CU_ASSERT_EQUAL(slot_of("somekey"), 11058);
    CU_ASSERT_EQUAL(slot_of(""), 0);
    CU_ASSERT_EQUAL(rcluster_slot(NULL, 0), 0);
    /* Binary keys: the length counts, not a terminator. */
    CU_ASSERT_NOT_EQUAL(rcluster_slot("a\0b", 3), slot_of("a"));
    CU_ASSERT_EQUAL(rcluster_slot("bar\0", 3), 5061);
}

static void test_slot_hash_tags(void)
{
    CU_ASSERT_EQUAL(slot_of("{user1000}.following"), 3443);
    CU_ASSERT_EQUAL(slot_of("{user1000}.followers"), 3443);
    CU_ASSERT_EQUAL(slot_of("user1000"), 3443);
    /* An empty tag hashes the whole key. */
    CU_ASSERT_EQUAL(slot_of("foo{}{bar}"), 8363);
    CU_ASSERT_NOT_EQUAL(slot_of("foo{}{bar}"), slot_of("bar"));
    /* The tag ends at the first '}' after the first '{'. */
    CU_ASSERT_EQUAL(slot_of("foo{{bar}}zap"), 4015);
    CU_ASSERT_EQUAL(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    CU_ASSERT_EQUAL(slot_of("foo{bar}{zap}"), slot_of("bar"));
    /* Unclosed or reversed braces: no tag. */
    CU_ASSERT_EQUAL(slot_of("foo{bar"), rcluster_slot("foo{bar", 7));
    CU_ASSERT_NOT_EQUAL(slot_of("foo{bar"), slot_of("bar"));
    CU_ASSERT_NOT_EQUAL(slot_of("}bar{"), slot_of("bar"));
    /* A tag cut by the length is no tag. */
    CU_ASSERT_EQUAL(rcluster_slot("x{bar}", 5), rcluster_slot("x{bar", 5));
    /* Tollgate's own keys: both rate-limit keys of a key id share a slot. */
    CU_ASSERT_EQUAL(slot_of("tg:{k1Ab}:w"), slot_of("tg:{k1Ab}:s"));
    CU_ASSERT_EQUAL(slot_of("tg:{k1Ab}:w"), slot_of("k1Ab"));
    for (const char *k = "abcdefghijklmnopqrstuvwxyz"; *k; k++) {
        char key[8];
        snprintf(key, sizeof key, "%c", *k);
        int s = slot_of(key);
        CU_ASSERT(s >= 0 && s < RCLUSTER_SLOTS);
    }
}

static void test_key_index(void)
{
    const char *get[] = {"GET", "tg:kr:ab"};
    CU_ASSERT_EQUAL(rcluster_key_index(2, get, NULL), 1);
    const char *set[] = {"set", "k", "v", "PX", "10"};
    CU_ASSERT_EQUAL(rcluster_key_index(5, set, NULL), 1);
    const char *hset[] = {"HSET", "h", "f", "v"};
    CU_ASSERT_EQUAL(rcluster_key_index(4, hset, NULL), 1);
    const char *del[] = {"DEL", "a", "b"};
    CU_ASSERT_EQUAL(rcluster_key_index(3, del, NULL), 1);
    const char *ping[] = {"PING"};
    CU_ASSERT_EQUAL(rcluster_key_index(1, ping, NULL), -1);
    const char *ping_msg[] = {"ping", "hello"};
    CU_ASSERT_EQUAL(rcluster_key_index(2, ping_msg, NULL), -1);
    const char *slots[] = {"CLUSTER", "SLOTS"};
    CU_ASSERT_EQUAL(rcluster_key_index(2, slots, NULL), -1);
    const char *flush[] = {"SCRIPT", "FLUSH"};
    CU_ASSERT_EQUAL(rcluster_key_index(2, flush, NULL), -1);
    const char *evalsha[] = {"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "2",
                             "tg:{id}:w", "tg:{id}:s", "1"};
    CU_ASSERT_EQUAL(rcluster_key_index(6, evalsha, NULL), 3);
    const char *eval[] = {"eval", "return 1", "1", "k"};
    CU_ASSERT_EQUAL(rcluster_key_index(4, eval, NULL), 3);
    const char *eval0[] = {"EVAL", "return 1", "0", "arg"};
    CU_ASSERT_EQUAL(rcluster_key_index(4, eval0, NULL), -1);
    const char *eval_bad[] = {"EVAL", "return 1", "x", "k"};
    CU_ASSERT_EQUAL(rcluster_key_index(4, eval_bad, NULL), -1);
    const char *eval_short[] = {"EVALSHA", "sha", "1"};
    CU_ASSERT_EQUAL(rcluster_key_index(3, eval_short, NULL), -1);
    const char *fcall[] = {"FCALL_RO", "f", "1", "k"};
    CU_ASSERT_EQUAL(rcluster_key_index(4, fcall, NULL), 3);
    /* Lengths given: the name is compared by its length, not a prefix. */
    const char *binary[] = {"GETXYZ", "k\0x"};
    size_t lens[] = {3, 3};
    CU_ASSERT_EQUAL(rcluster_key_index(2, binary, lens), 1);
    const char *pingx[] = {"PINGPONG", "x"};
    size_t plens[] = {8, 1};
    CU_ASSERT_EQUAL(rcluster_key_index(2, pingx, plens), 1);
    size_t plens4[] = {4, 1};
    CU_ASSERT_EQUAL(rcluster_key_index(2, pingx, plens4), -1);
    const char *evalx[] = {"EVALSHA", "sha", "12", "k"};
    size_t elens[] = {7, 3, 1, 1}; /* numkeys "1" */
    CU_ASSERT_EQUAL(rcluster_key_index(4, evalx, elens), 3);
}

static enum rcluster_reply_kind classify(int type, const char *str, struct rcluster_redirect *to)
{
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = type;
    r.str = (char *)str;
    r.len = str ? strlen(str) : 0;
    memset(to, 0, sizeof *to);
    return rcluster_classify(&r, to);
}

static void test_classify(void)
{
    struct rcluster_redirect to;
    CU_ASSERT_EQUAL(classify(REDIS_REPLY_ERROR, "MOVED 3999 127.0.0.1:6381", &to), RCLUSTER_MOVED);
    CU_ASSERT_EQUAL(to.slot, 3999);
    CU_ASSERT_STRING_EQUAL(to.to.host, "127.0.0.1");
    CU_ASSERT_EQUAL(to.to.port, 6381);
    CU_ASSERT_EQUAL(classify(REDIS_REPLY_ERROR, "ASK 16383 redis-2.internal:7002", &to), RCLUSTER_ASK);
    CU_ASSERT_EQUAL(to.slot, 16383);
    CU_ASSERT_STRING_EQUAL(to.to.host, "redis-2.internal");
    CU_ASSERT_EQUAL(to.to.port, 7002);
    /* An empty endpoint means the host of the node that answered. */
    CU_ASSERT_EQUAL(classify(REDIS_REPLY_ERROR, "MOVED 0 :7001", &to), RCLUSTER_MOVED);
    CU_ASSERT_STRING_EQUAL(to.to.host, "");
    CU_ASSERT_EQUAL(to.to.port, 7001);
    /* IPv6 endpoints come without brackets: the port follows the last ':'. */
    CU_ASSERT_EQUAL(classify(REDIS_REPLY_ERROR, "MOVED 12 ::1:7003", &to), RCLUSTER_MOVED);
    CU_ASSERT_STRING_EQUAL(to.to.host, "::1");
    CU_ASSERT_EQUAL(to.to.port, 7003);

    CU_ASSERT_EQUAL(classify(REDIS_REPLY_ERROR, "TRYAGAIN Multiple keys request during rehashing of slot", &to),
                    RCLUSTER_TRYAGAIN);
    CU_ASSERT_EQUAL(classify(REDIS_REPLY_ERROR, "CLUSTERDOWN The cluster is down", &to), RCLUSTER_TRYAGAIN);
    CU_ASSERT_EQUAL(classify(REDIS_REPLY_ERROR, "CLUSTERDOWN Hash slot not served", &to), RCLUSTER_TRYAGAIN);

    /* Everything else is the caller's. */
    CU_ASSERT_EQUAL(classify(REDIS_REPLY_ERROR, "NOSCRIPT No matching script", &to), RCLUSTER_PLAIN);
    CU_ASSERT_EQUAL(classify(REDIS_REPLY_ERROR, "CROSSSLOT Keys in request don't hash to the same slot", &to),
                    RCLUSTER_PLAIN);
    CU_ASSERT_EQUAL(classify(REDIS_REPLY_STATUS, "MOVED 1 h:1", &to), RCLUSTER_PLAIN);
    CU_ASSERT_EQUAL(classify(REDIS_REPLY_STRING, "ASK 1 h:1", &to), RCLUSTER_PLAIN);
    CU_ASSERT_EQUAL(rcluster_classify(NULL, &to), RCLUSTER_PLAIN);
    /* Malformed redirections are plain errors too. */
    static const char *const bad[] = {
        "MOVED",          "MOVED ",          "MOVED 3999",        "MOVED 3999 host",
        "MOVED 16384 h:1", "MOVED -1 h:1",   "MOVED x h:1",       "MOVED 1 h:0",
        "MOVED 1 h:65536", "MOVED 1 h:",     "MOVED 1 h:1x",      "MOVEDX 1 h:1",
        "ASKING 1 h:1",   "MOVED 01x h:1",   "MOVED 1  h:1",      "TRYAGAINX",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        if (classify(REDIS_REPLY_ERROR, bad[i], &to) != RCLUSTER_PLAIN)
            CU_FAIL(bad[i]);
    }
}

static void test_seeds(void)
{
    struct rcluster_addr *a = NULL;
    struct api_error err;
    memset(&err, 0, sizeof err);
    int n = rcluster_parse_seeds("10.0.0.1:7000, redis-b:7001 ,[::1]:7002,::1:7003", &a, &err);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    CU_ASSERT_STRING_EQUAL(a[0].host, "10.0.0.1");
    CU_ASSERT_EQUAL(a[0].port, 7000);
    CU_ASSERT_STRING_EQUAL(a[1].host, "redis-b");
    CU_ASSERT_EQUAL(a[1].port, 7001);
    CU_ASSERT_STRING_EQUAL(a[2].host, "::1");
    CU_ASSERT_EQUAL(a[2].port, 7002);
    CU_ASSERT_STRING_EQUAL(a[3].host, "::1");
    CU_ASSERT_EQUAL(a[3].port, 7003);
    free(a);
    CU_ASSERT_EQUAL(rcluster_parse_seeds("h:1", NULL, NULL), 1);
    static const char *const bad[] = {
        "", " ", "h", "h:", ":1", "h:0", "h:65536", "h:1,", ",h:1", "h:1,,h:2", "h:x",
        "h 1:2", "h:1 2", "[]:1",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        memset(&err, 0, sizeof err);
        a = NULL;
        if (rcluster_parse_seeds(bad[i], &a, &err) != -1)
            CU_FAIL(bad[i]);
        CU_ASSERT(err.message[0] != '\0');
        CU_ASSERT_PTR_NULL(a);
    }
}

/* CLUSTER SLOTS as a three-primary Redis 7.0 cluster sent it. */
static const char RECORDED_SLOTS[] =
    "*3\r\n"
    "*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:47001\r\n"
    "$40\r\n4626ac6168c3c05add5a15a58912b9f7971c5a0b\r\n*0\r\n"
    "*3\r\n:5461\r\n:10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:47002\r\n"
    "$40\r\n931ab6f8d39b9fc6a98ed7ba9f02391bcced1eec\r\n*0\r\n"
    "*3\r\n:10923\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:47003\r\n"
    "$40\r\nc2d29ddbdc6bb11c6caac17ef9f69ff9f8d0ae53\r\n*0\r\n";

/* A reply with replicas, an empty endpoint and an unknown one. */
static const char MIXED_SLOTS[] =
    "*3\r\n"
    "*4\r\n:0\r\n:99\r\n*3\r\n$0\r\n\r\n:7000\r\n$2\r\nid\r\n"
    "*3\r\n$8\r\nreplica1\r\n:7100\r\n$2\r\nir\r\n"
    "*3\r\n:100\r\n:199\r\n*2\r\n$1\r\n?\r\n:7001\r\n"
    "*3\r\n:200\r\n:200\r\n*2\r\n$6\r\nhost-b\r\n:7002\r\n";

/* Parses RESP bytes into a reply, as hiredis would off the socket. */
static redisReply *resp(const char *bytes, size_t len)
{
    redisReader *r = redisReaderCreate();
    void *reply = NULL;
    if (redisReaderFeed(r, bytes, len) != REDIS_OK || redisReaderGetReply(r, &reply) != REDIS_OK)
        reply = NULL;
    redisReaderFree(r);
    return reply;
}

static void test_parse_recorded_slots(void)
{
    redisReply *r = resp(RECORDED_SLOTS, sizeof RECORDED_SLOTS - 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    struct rcluster_range *ranges = NULL;
    struct api_error err;
    int n = rcluster_parse_slots(r, "seed", &ranges, &err);
    freeReplyObject(r);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_EQUAL(ranges[0].first, 0);
    CU_ASSERT_EQUAL(ranges[0].last, 5460);
    CU_ASSERT_STRING_EQUAL(ranges[0].primary.host, "127.0.0.1");
    CU_ASSERT_EQUAL(ranges[0].primary.port, 47001);
    CU_ASSERT_EQUAL(ranges[1].first, 5461);
    CU_ASSERT_EQUAL(ranges[1].last, 10922);
    CU_ASSERT_EQUAL(ranges[1].primary.port, 47002);
    CU_ASSERT_EQUAL(ranges[2].first, 10923);
    CU_ASSERT_EQUAL(ranges[2].last, 16383);
    CU_ASSERT_EQUAL(ranges[2].primary.port, 47003);

    struct rcluster_map m;
    rcluster_map_init(&m);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 0), -1);
    CU_ASSERT_EQUAL(rcluster_map_assign(&m, ranges, 3), 0);
    free(ranges);
    CU_ASSERT_EQUAL(m.naddrs, 3);
    CU_ASSERT_EQUAL(m.addrs[rcluster_map_owner(&m, 0)].port, 47001);
    CU_ASSERT_EQUAL(m.addrs[rcluster_map_owner(&m, 5460)].port, 47001);
    CU_ASSERT_EQUAL(m.addrs[rcluster_map_owner(&m, 5461)].port, 47002);
    CU_ASSERT_EQUAL(m.addrs[rcluster_map_owner(&m, slot_of("123456789"))].port, 47003);
    CU_ASSERT_EQUAL(m.addrs[rcluster_map_owner(&m, 16383)].port, 47003);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 16384), -1);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, -1), -1);

    /* A MOVED changes one slot; a known address keeps its index. */
    int idx = rcluster_map_move(&m, 42, "127.0.0.1", 47003);
    CU_ASSERT_EQUAL(idx, 2);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 42), 2);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 43), 0);
    idx = rcluster_map_move(&m, 43, "127.0.0.1", 47004);
    CU_ASSERT_EQUAL(idx, 3);
    CU_ASSERT_EQUAL(m.naddrs, 4);
    CU_ASSERT_EQUAL(rcluster_map_move(&m, RCLUSTER_SLOTS, "127.0.0.1", 47004), -1);
    /* A reload replaces the whole table but keeps every index. */
    r = resp(RECORDED_SLOTS, sizeof RECORDED_SLOTS - 1);
    n = rcluster_parse_slots(r, "seed", &ranges, &err);
    freeReplyObject(r);
    CU_ASSERT_EQUAL(rcluster_map_assign(&m, ranges, (size_t)n), 0);
    free(ranges);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 42), 0);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 43), 0);
    CU_ASSERT_EQUAL(m.naddrs, 4);
    CU_ASSERT_EQUAL(m.addrs[3].port, 47004);
    rcluster_map_fini(&m);
}

static void test_parse_mixed_slots(void)
{
    redisReply *r = resp(MIXED_SLOTS, sizeof MIXED_SLOTS - 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    struct rcluster_range *ranges = NULL;
    struct api_error err;
    int n = rcluster_parse_slots(r, "seed-host", &ranges, &err);
    freeReplyObject(r);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(ranges[0].primary.host, "seed-host"); /* "" */
    CU_ASSERT_EQUAL(ranges[0].primary.port, 7000);
    CU_ASSERT_EQUAL(ranges[1].first, 200); /* "?" left out */
    CU_ASSERT_STRING_EQUAL(ranges[1].primary.host, "host-b");

    struct rcluster_map m;
    rcluster_map_init(&m);
    CU_ASSERT_EQUAL(rcluster_map_assign(&m, ranges, (size_t)n), 0);
    free(ranges);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 99), 0);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 150), -1);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 200), 1);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 201), -1);
    rcluster_map_fini(&m);

    /* No slots at all: a node outside any cluster yet. */
    r = resp("*0\r\n", 4);
    CU_ASSERT_EQUAL(rcluster_parse_slots(r, "h", &ranges, &err), 0);
    CU_ASSERT_PTR_NULL(ranges);
    freeReplyObject(r);
}

static void test_parse_bad_slots(void)
{
    static const char *const bad[] = {
        "-ERR This instance has cluster support disabled\r\n",
        "+OK\r\n",
        "*1\r\n:0\r\n",
        "*1\r\n*2\r\n:0\r\n:1\r\n",
        "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\nh\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",
        "*1\r\n*3\r\n:-1\r\n:10\r\n*2\r\n$1\r\nh\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:10\r\n*1\r\n$1\r\nh\r\n",
        "*1\r\n*3\r\n:0\r\n:10\r\n*2\r\n:1\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\nh\r\n$1\r\n1\r\n",
        "*1\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\nh\r\n:65536\r\n",
        "*1\r\n*3\r\n$1\r\n0\r\n:10\r\n*2\r\n$1\r\nh\r\n:1\r\n",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        redisReply *r = resp(bad[i], strlen(bad[i]));
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        static struct rcluster_range sentinel;
        struct rcluster_range *ranges = &sentinel; /* must come back NULL */
        struct api_error err;
        memset(&err, 0, sizeof err);
        if (rcluster_parse_slots(r, "h", &ranges, &err) != -1)
            CU_FAIL(bad[i]);
        CU_ASSERT_PTR_NULL(ranges);
        CU_ASSERT(err.message[0] != '\0');
        freeReplyObject(r);
    }
    struct rcluster_range *ranges;
    CU_ASSERT_EQUAL(rcluster_parse_slots(NULL, "h", &ranges, NULL), -1);
    /* An empty endpoint needs a host to stand for. */
    redisReply *r = resp(MIXED_SLOTS, sizeof MIXED_SLOTS - 1);
    CU_ASSERT_EQUAL(rcluster_parse_slots(r, "", &ranges, NULL), -1);
    freeReplyObject(r);
}

static void test_map_limit(void)
{
    struct rcluster_map m;
    rcluster_map_init(&m);
    for (int i = 0; i < RCLUSTER_MAX_ADDRS; i++)
        CU_ASSERT_EQUAL(rcluster_map_addr(&m, "h", 1 + i), i);
    CU_ASSERT_EQUAL(rcluster_map_addr(&m, "h", 1), 0);
    CU_ASSERT_EQUAL(rcluster_map_addr(&m, "h", 60000), -1);
    CU_ASSERT_EQUAL(rcluster_map_move(&m, 7, "h", 60000), -1);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 7), -1);
    struct rcluster_range ranges[] = {{0, 9, {"h", 2}}, {10, 19, {"other", 1}}};
    CU_ASSERT_EQUAL(rcluster_map_assign(&m, ranges, 2), -1);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 9), 1);
    CU_ASSERT_EQUAL(rcluster_map_owner(&m, 10), -1);
    rcluster_map_fini(&m);
    rcluster_map_fini(&m); /* harmless twice */
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_slot_vectors),
        UNIT_TEST(test_slot_hash_tags),
        UNIT_TEST(test_key_index),
        UNIT_TEST(test_classify),
        UNIT_TEST(test_seeds),
        UNIT_TEST(test_parse_recorded_slots),
        UNIT_TEST(test_parse_mixed_slots),
        UNIT_TEST(test_parse_bad_slots),
        UNIT_TEST(test_map_limit),
    };
    return unit_run("rcluster", tests, TG_ARRAY_LEN(tests));
}
