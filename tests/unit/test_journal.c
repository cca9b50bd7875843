/* Unit tests of journal: the mapped ring of usage records, its limits, its
 * recovery after a SIGKILL and the adoption of orphaned files.
 *
 * A few tests damage files on purpose with pwrite(2); they rely on the
 * layout described in journal.c: a 4096-byte header, then 128-byte slots
 * whose first 8 bytes are the commit mark (position + 1, host order).
 * Writing into the file also changes a live mapping: same page cache. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "journal.h"
#include "log.h"
#include "unit.h"
#include "util.h"

#define HDR_BYTES 4096
#define MIB_SLOTS ((1024 * 1024 - HDR_BYTES) / JOURNAL_SLOT) /* capacity of 1 MiB */
#define DEADLINE_NS (60LL * 1000 * 1000 * 1000)               /* safety net only */

static char tmp_root[64];
static char jdir[96];

/* A fresh empty directory tree: tmp_root, and jdir inside it not created
 * (journal_create makes it). */
static void dir_setup(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/tg-journal-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(tmp_root) != NULL);
    snprintf(jdir, sizeof jdir, "%s/j", tmp_root);
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char path[512];
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) < 0 && errno == EISDIR)
            rm_dir(path);
    }
    closedir(d);
    rmdir(dir);
}

static void dir_teardown(void)
{
    rm_dir(tmp_root);
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void journal_path(const char *id, char *out, size_t size)
{
    snprintf(out, size, "%s/%s.tgj", jdir, id);
}

/* Record number seq of writer w: key "key_w<w>", endpoint "/w<w>/s<seq>/"
 * padded with 'x', in sizes cycling through 1, 2, 3, 4 (both lengths at
 * their maximum) and 1 slots. */
static const size_t ep_lens[] = {14, 110, 220, JOURNAL_ENDPOINT_MAX, 40};

struct gen {
    char key[JOURNAL_KEY_MAX + 1];
    char ep[JOURNAL_ENDPOINT_MAX + 1];
    struct journal_rec rec;
};

static const struct journal_rec *gen_rec(struct gen *g, int w, unsigned seq)
{
    size_t len = ep_lens[seq % TG_ARRAY_LEN(ep_lens)];
    int k = snprintf(g->key, sizeof g->key, "key_w%d", w);
    if (seq % TG_ARRAY_LEN(ep_lens) == 3) { /* the longest record */
        memset(g->key + k, 'k', JOURNAL_KEY_MAX - (size_t)k);
        g->key[JOURNAL_KEY_MAX] = '\0';
    }
    int n = snprintf(g->ep, sizeof g->ep, "/w%d/s%u/", w, seq);
    memset(g->ep + n, 'x', len - (size_t)n);
    g->ep[len] = '\0';
    g->rec = (struct journal_rec){.ts_ms = 1700000000000LL + seq,
                                  .outcome = (enum usage_outcome)(seq % USAGE_OUTCOMES),
                                  .cost = (int)(seq % 1000) + 1,
                                  .key_id = g->key,
                                  .key_len = strlen(g->key),
                                  .endpoint = g->ep,
                                  .endpoint_len = len};
    return &g->rec;
}

/* Checks records against gen_rec: per writer, sequence numbers must come
 * back exactly once and in order. */
struct seq_check {
    unsigned next[8];
    unsigned received;
    unsigned errors;
};

static void on_seq(const struct journal_rec *r, void *arg)
{
    struct seq_check *c = arg;
    int w;
    unsigned seq;
    struct gen g = {.key = ""};
    c->received++;
    if (sscanf(r->endpoint, "/w%d/s%u/", &w, &seq) != 2 || w < 0 || w >= 8 ||
        seq != c->next[w]) {
        c->errors++;
        return;
    }
    c->next[w]++;
    const struct journal_rec *e = gen_rec(&g, w, seq);
    if (r->ts_ms != e->ts_ms || r->outcome != e->outcome || r->cost != e->cost ||
        r->key_len != e->key_len || r->endpoint_len != e->endpoint_len ||
        memcmp(r->key_id, e->key_id, e->key_len + 1) != 0 ||
        memcmp(r->endpoint, e->endpoint, e->endpoint_len + 1) != 0)
        c->errors++;
}

/* Scans everything committed from the head, checks it, advances. */
static unsigned drain(struct journal *j, struct seq_check *c)
{
    unsigned before = c->received;
    uint64_t pos = journal_scan(j, journal_head(j), 0, 0, on_seq, c);
    journal_advance(j, pos);
    return c->received - before;
}

static void test_create(void)
{
    struct api_error err = {0};
    dir_setup();
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    struct stat st;
    CU_ASSERT(stat(jdir, &st) == 0 && (st.st_mode & 0777) == 0700);
    const char *id = journal_id(j);
    CU_ASSERT_EQUAL(strlen(id), JOURNAL_ID_LEN);
    CU_ASSERT_EQUAL(strspn(id, BASE62), JOURNAL_ID_LEN);
    char path[256];
    journal_path(id, path, sizeof path);
    CU_ASSERT(stat(path, &st) == 0 && st.st_size == 1024 * 1024 && (st.st_mode & 0777) == 0600);
    CU_ASSERT_EQUAL(dir_entries(jdir), 1); /* no temporary left behind */
    CU_ASSERT_EQUAL(journal_capacity(j), MIB_SLOTS);
    CU_ASSERT_FALSE(journal_adopted(j));
    CU_ASSERT(journal_head(j) == 0 && journal_reserved(j) == 0 && journal_pending(j) == 0);
    CU_ASSERT(journal_dropped(j) == 0 && journal_lost(j) == 0);

    /* A second journal in the same directory gets another id. */
    struct journal *k = journal_create(jdir, 2, &err);
    CU_ASSERT_FATAL(k != NULL);
    CU_ASSERT(strcmp(journal_id(j), journal_id(k)) != 0);
    CU_ASSERT_EQUAL(journal_capacity(k), (2 * 1024 * 1024 - HDR_BYTES) / JOURNAL_SLOT);
    journal_close(k, true);
    journal_close(j, true);
    CU_ASSERT_EQUAL(dir_entries(jdir), 0);
    journal_close(NULL, true);

    char bad[160];
    snprintf(bad, sizeof bad, "%s/missing/j", tmp_root);
    err.message[0] = '\0';
    CU_ASSERT_PTR_NULL(journal_create(bad, 1, &err));
    CU_ASSERT(err.message[0] != '\0');
    err.message[0] = '\0';
    CU_ASSERT_PTR_NULL(journal_create(jdir, 0, &err));
    CU_ASSERT(err.message[0] != '\0');
    dir_teardown();
}

/* Copies up to two records out of the reader's buffer. */
struct copy_ctx {
    struct journal_rec rec[2];
    char key[2][JOURNAL_KEY_MAX + 1];
    char ep[2][JOURNAL_ENDPOINT_MAX + 1];
    size_t n;
    bool bad;
};

static void on_copy(const struct journal_rec *r, void *arg)
{
    struct copy_ctx *c = arg;
    if (c->n >= 2 || r->key_id[r->key_len] != '\0' || r->endpoint[r->endpoint_len] != '\0') {
        c->bad = true;
        return;
    }
    c->rec[c->n] = *r;
    memcpy(c->key[c->n], r->key_id, r->key_len + 1);
    memcpy(c->ep[c->n], r->endpoint, r->endpoint_len + 1);
    c->n++;
}

/* A record that carries its credit version reads back with it, also at the
 * longest; one without reads back without; a negative version is refused. */
static void test_credit_version(void)
{
    struct api_error err = {0};
    dir_setup();
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    char key[JOURNAL_KEY_MAX], ep[JOURNAL_ENDPOINT_MAX];
    memset(key, 'k', sizeof key);
    memset(ep, 'e', sizeof ep);
    struct journal_rec big = {9, USAGE_ALLOWED, 7, key, sizeof key, ep, sizeof ep, true,
                              INT64_C(1000000000000000), 0};
    struct journal_rec plain = {10, USAGE_ALLOWED, 1, "k", 1, "/", 1, false, 0, 0};
    struct journal_rec neg = {11, USAGE_ALLOWED, 1, "k", 1, "/", 1, true, -1, 0};
    CU_ASSERT_EQUAL(journal_append(j, &big), 0);
    CU_ASSERT_EQUAL(journal_reserved(j), JOURNAL_MAX_SLOTS);
    CU_ASSERT_EQUAL(journal_append(j, &plain), 0);
    CU_ASSERT_EQUAL(journal_append(j, &neg), -1);
    struct copy_ctx cp;
    memset(&cp, 0, sizeof cp);
    journal_scan(j, 0, 0, 0, on_copy, &cp);
    CU_ASSERT_EQUAL_FATAL(cp.n, 2);
    CU_ASSERT_FALSE(cp.bad);
    CU_ASSERT_TRUE(cp.rec[0].has_credits);
    CU_ASSERT_EQUAL(cp.rec[0].credit_version, INT64_C(1000000000000000));
    CU_ASSERT_EQUAL(cp.rec[0].cost, 7);
    CU_ASSERT(memcmp(cp.ep[0], ep, sizeof ep) == 0);
    CU_ASSERT_FALSE(cp.rec[1].has_credits);
    CU_ASSERT_EQUAL(cp.rec[1].credit_version, -1);
    journal_close(j, true);
    dir_teardown();
}

/* The peak percent reads back, also beside a credit version at the
 * longest; a record without one keeps the exact form older versions wrote
 * (first slot kind 0xF1, the payload right after the fields) and reads 0,
 * so journals left by them stay readable. */
static void test_peak(void)
{
    struct api_error err = {0};
    dir_setup();
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    char key[JOURNAL_KEY_MAX], ep[JOURNAL_ENDPOINT_MAX], path[256];
    memset(key, 'k', sizeof key);
    memset(ep, 'e', sizeof ep);
    struct journal_rec old = {1, USAGE_ALLOWED, 1, "k", 1, "/e", 2, false, 0, 0};
    struct journal_rec big = {2, USAGE_ALLOWED, 3, key, sizeof key, ep, sizeof ep, true,
                              INT64_C(42), 80};
    struct journal_rec full = {3, USAGE_RATE_LIMITED, 1, "k", 1, "/e", 2, false, 0, 100};
    struct journal_rec over = {4, USAGE_ALLOWED, 1, "k", 1, "/e", 2, false, 0, 101};
    CU_ASSERT_EQUAL(journal_append(j, &old), 0);
    CU_ASSERT_EQUAL(journal_append(j, &big), 0);
    CU_ASSERT_EQUAL(journal_reserved(j), 1 + JOURNAL_MAX_SLOTS);
    CU_ASSERT_EQUAL(journal_append(j, &full), 0);
    CU_ASSERT_EQUAL(journal_append(j, &over), -1);
    journal_path(journal_id(j), path, sizeof path);
    unsigned char slot[JOURNAL_SLOT];
    int fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(pread(fd, slot, sizeof slot, HDR_BYTES) == (ssize_t)sizeof slot);
    close(fd);
    CU_ASSERT_EQUAL(slot[8], 0xF1); /* kind */
    CU_ASSERT_EQUAL(slot[9], 1);    /* slots */
    CU_ASSERT(memcmp(slot + 24, "k/e", 3) == 0);

    struct copy_ctx cp;
    memset(&cp, 0, sizeof cp);
    journal_scan(j, 0, 0, 2, on_copy, &cp);
    CU_ASSERT_EQUAL_FATAL(cp.n, 2);
    CU_ASSERT_FALSE(cp.bad);
    CU_ASSERT_EQUAL(cp.rec[0].peak_pct, 0);
    CU_ASSERT_FALSE(cp.rec[0].has_credits);
    CU_ASSERT_EQUAL(cp.rec[1].peak_pct, 80);
    CU_ASSERT_TRUE(cp.rec[1].has_credits);
    CU_ASSERT_EQUAL(cp.rec[1].credit_version, 42);
    CU_ASSERT(memcmp(cp.ep[1], ep, sizeof ep) == 0 && memcmp(cp.key[1], key, sizeof key) == 0);
    memset(&cp, 0, sizeof cp);
    journal_scan(j, 1 + JOURNAL_MAX_SLOTS, 0, 0, on_copy, &cp);
    CU_ASSERT_EQUAL_FATAL(cp.n, 1);
    CU_ASSERT_EQUAL(cp.rec[0].peak_pct, 100);
    CU_ASSERT_EQUAL(cp.rec[0].outcome, USAGE_RATE_LIMITED);
    CU_ASSERT_EQUAL(cp.rec[0].ts_ms, 3);
    journal_close(j, true);
    dir_teardown();
}

static void test_roundtrip_and_bounds(void)
{
    struct api_error err = {0};
    dir_setup();
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);

    /* The extremes: one byte each, and the longest key and endpoint. */
    char key[JOURNAL_KEY_MAX], ep[JOURNAL_ENDPOINT_MAX];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = BASE62[i % 62];
    for (size_t i = 0; i < sizeof ep; i++)
        ep[i] = (char)('a' + i % 26);
    struct journal_rec small = {5, USAGE_DENIED_OTHER, 1000, "k", 1, "/", 1, false, 0, 0};
    struct journal_rec big = {-7, USAGE_RATE_LIMITED, 1, key, sizeof key, ep, sizeof ep, false, 0, 0};
    CU_ASSERT_EQUAL(journal_append(j, &small), 0);
    CU_ASSERT_EQUAL(journal_reserved(j), 1);
    CU_ASSERT_EQUAL(journal_append(j, &big), 0);
    CU_ASSERT_EQUAL(journal_reserved(j), 1 + JOURNAL_MAX_SLOTS);

    struct copy_ctx cp;
    memset(&cp, 0, sizeof cp);
    uint64_t end = journal_scan(j, 0, 0, 0, on_copy, &cp);
    CU_ASSERT_EQUAL(end, journal_reserved(j));
    CU_ASSERT_FALSE(cp.bad);
    CU_ASSERT_EQUAL_FATAL(cp.n, 2);
    const struct journal_rec *r = cp.rec;
    CU_ASSERT(r[0].ts_ms == 5 && r[0].outcome == USAGE_DENIED_OTHER && r[0].cost == 1000);
    CU_ASSERT(r[0].key_len == 1 && strcmp(cp.key[0], "k") == 0);
    CU_ASSERT(r[0].endpoint_len == 1 && strcmp(cp.ep[0], "/") == 0);
    CU_ASSERT(r[1].ts_ms == -7 && r[1].outcome == USAGE_RATE_LIMITED && r[1].cost == 1);
    CU_ASSERT(r[1].key_len == sizeof key && memcmp(cp.key[1], key, sizeof key) == 0);
    CU_ASSERT(r[1].endpoint_len == sizeof ep && memcmp(cp.ep[1], ep, sizeof ep) == 0);

    /* end and max bound a scan on record boundaries; reading moves nothing. */
    struct seq_check c = {{0}, 0, 0};
    struct gen g = {.key = ""};
    for (unsigned i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(journal_append(j, gen_rec(&g, 0, i)), 0);
    uint64_t p = journal_scan(j, end, 0, 3, on_seq, &c);
    CU_ASSERT_EQUAL(c.received, 3);
    /* The 4th record (seq 3) is a 4-slot one: an end inside it stops before. */
    CU_ASSERT_EQUAL(journal_scan(j, p, p + 3, 0, on_seq, &c), p);
    CU_ASSERT_EQUAL(c.received, 3);
    uint64_t q = journal_scan(j, p, p + 4, 0, on_seq, &c);
    CU_ASSERT_EQUAL(q, p + 4);
    CU_ASSERT_EQUAL(c.received, 4);
    CU_ASSERT_EQUAL(journal_scan(j, q, 0, 0, on_seq, &c), journal_reserved(j));
    CU_ASSERT_EQUAL(c.received, 10);
    CU_ASSERT_EQUAL(c.errors, 0);
    CU_ASSERT_EQUAL(journal_scan(j, journal_reserved(j), 0, 0, on_seq, &c), journal_reserved(j));
    CU_ASSERT_EQUAL(c.received, 10);
    CU_ASSERT_EQUAL(journal_head(j), 0);
    CU_ASSERT_EQUAL(journal_lost(j), 0);
    journal_close(j, true);
    dir_teardown();
}

static void on_count(const struct journal_rec *r, void *arg)
{
    (void)r;
    (*(size_t *)arg)++;
}

/* A record of the longest key and endpoint, filled with a pattern. */
struct big_rec {
    char key[JOURNAL_KEY_MAX], ep[JOURNAL_ENDPOINT_MAX];
    struct journal_rec rec;
};

static const struct journal_rec *big_rec(struct big_rec *b, char fill)
{
    memset(b->key, fill, sizeof b->key);
    memset(b->ep, fill + 1, sizeof b->ep);
    b->rec = (struct journal_rec){42, USAGE_QUOTA_EXCEEDED, 7, b->key, sizeof b->key, b->ep,
                                  sizeof b->ep, false, 0, 0};
    return &b->rec;
}

/* The longest record across the ring end, then several laps of mixed 1- to
 * 4-slot records consumed in small batches: records wrap and the stale
 * marks of earlier laps are never taken for new ones. */
static void test_wrap(void)
{
    struct api_error err = {0};
    dir_setup();
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    uint64_t cap = journal_capacity(j);

    struct journal_rec one = {1, USAGE_ALLOWED, 1, "k", 1, "/e", 2, false, 0, 0};
    for (uint64_t i = 0; i < cap - 2; i++)
        CU_ASSERT_EQUAL(journal_append(j, &one), 0);
    size_t n = 0;
    CU_ASSERT_EQUAL(journal_scan(j, 0, 0, 0, on_count, &n), cap - 2);
    CU_ASSERT_EQUAL(n, cap - 2);
    journal_advance(j, cap - 2);
    struct big_rec b;
    CU_ASSERT_EQUAL(journal_append(j, big_rec(&b, 'A')), 0); /* slots cap-2 .. 1 */
    CU_ASSERT_EQUAL(journal_reserved(j), cap + 2);
    struct copy_ctx cp;
    memset(&cp, 0, sizeof cp);
    CU_ASSERT_EQUAL(journal_scan(j, cap - 2, 0, 0, on_copy, &cp), cap + 2);
    CU_ASSERT_EQUAL_FATAL(cp.n, 1);
    CU_ASSERT(cp.rec[0].key_len == JOURNAL_KEY_MAX && memcmp(cp.key[0], b.key, sizeof b.key) == 0);
    CU_ASSERT(cp.rec[0].endpoint_len == JOURNAL_ENDPOINT_MAX &&
              memcmp(cp.ep[0], b.ep, sizeof b.ep) == 0);
    CU_ASSERT(cp.rec[0].ts_ms == 42 && cp.rec[0].outcome == USAGE_QUOTA_EXCEEDED &&
              cp.rec[0].cost == 7);
    journal_advance(j, cap + 2);

    struct seq_check c = {{0}, 0, 0};
    struct gen g = {.key = ""};
    unsigned total = (unsigned)cap * 3 / 2; /* about 3 more laps */
    for (unsigned seq = 0; seq < total; seq++) {
        CU_ASSERT_EQUAL(journal_append(j, gen_rec(&g, 1, seq)), 0);
        if (seq % 37 == 36)
            drain(j, &c);
    }
    drain(j, &c);
    CU_ASSERT(journal_reserved(j) > 3 * cap);
    CU_ASSERT_EQUAL(c.received, total);
    CU_ASSERT_EQUAL(c.next[1], total);
    CU_ASSERT_EQUAL(c.errors, 0);
    CU_ASSERT_EQUAL(journal_head(j), journal_reserved(j));
    CU_ASSERT(journal_dropped(j) == 0 && journal_lost(j) == 0);
    journal_close(j, true);
    dir_teardown();
}

/* A full ring refuses appends (counted) until the reader advances. */
static void test_full(void)
{
    struct api_error err = {0};
    dir_setup();
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    uint64_t cap = journal_capacity(j);
    struct journal_rec one = {1, USAGE_ALLOWED, 1, "k", 1, "/e", 2, false, 0, 0};
    uint64_t ok = 0;
    while (ok <= cap && journal_append(j, &one) == 0)
        ok++;
    CU_ASSERT_EQUAL(ok, cap);
    CU_ASSERT_EQUAL(journal_dropped(j), 1);
    struct big_rec b;
    CU_ASSERT_EQUAL(journal_append(j, big_rec(&b, 'q')), -1);
    CU_ASSERT_EQUAL(journal_dropped(j), 2);
    CU_ASSERT_EQUAL(journal_reserved(j), cap);

    /* Three slots free: still too few for a 4-slot record. */
    size_t n = 0;
    CU_ASSERT_EQUAL(journal_scan(j, 0, 0, 3, on_count, &n), 3);
    journal_advance(j, 3);
    CU_ASSERT_EQUAL(journal_append(j, &b.rec), -1);
    CU_ASSERT_EQUAL(journal_dropped(j), 3);
    CU_ASSERT_EQUAL(journal_scan(j, 3, 0, 1, on_count, &n), 4);
    journal_advance(j, 4);
    CU_ASSERT_EQUAL(journal_append(j, &b.rec), 0);
    CU_ASSERT_EQUAL(journal_append(j, &one), -1);
    CU_ASSERT_EQUAL(journal_dropped(j), 4);
    CU_ASSERT_EQUAL(journal_reserved(j), cap + 4);

    /* Everything else is intact: cap - 4 singles, then the long one. */
    n = 0;
    CU_ASSERT_EQUAL(journal_scan(j, 4, 0, 0, on_count, &n), cap + 4);
    CU_ASSERT_EQUAL(n, cap - 4 + 1);
    journal_advance(j, cap + 4);
    CU_ASSERT_EQUAL(journal_append(j, &one), 0);
    CU_ASSERT_EQUAL(journal_dropped(j), 4);
    CU_ASSERT_EQUAL(journal_lost(j), 0);
    journal_close(j, true);
    dir_teardown();
}

static void test_malformed(void)
{
    struct api_error err = {0};
    dir_setup();
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    char longer[JOURNAL_ENDPOINT_MAX + 2];
    memset(longer, 'e', sizeof longer);
    const struct journal_rec bad[] = {
        {1, USAGE_ALLOWED, 1, "k", 0, "/e", 2, false, 0, 0},
        {1, USAGE_ALLOWED, 1, longer, JOURNAL_KEY_MAX + 1, "/e", 2, false, 0, 0},
        {1, USAGE_ALLOWED, 1, "k", 1, "/e", 0, false, 0, 0},
        {1, USAGE_ALLOWED, 1, "k", 1, longer, JOURNAL_ENDPOINT_MAX + 1, false, 0, 0},
        {1, USAGE_ALLOWED, 0, "k", 1, "/e", 2, false, 0, 0},
        {1, USAGE_ALLOWED, 1001, "k", 1, "/e", 2, false, 0, 0},
        {1, USAGE_ALLOWED, -5, "k", 1, "/e", 2, false, 0, 0},
        {1, USAGE_OUTCOMES, 1, "k", 1, "/e", 2, false, 0, 0},
        {1, (enum usage_outcome)-1, 1, "k", 1, "/e", 2, false, 0, 0},
        {1, USAGE_ALLOWED, 1, NULL, 1, "/e", 2, false, 0, 0},
        {1, USAGE_ALLOWED, 1, "k", 1, NULL, 2, false, 0, 0},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++)
        CU_ASSERT_EQUAL(journal_append(j, &bad[i]), -1);
    CU_ASSERT_EQUAL(journal_append(j, NULL), -1);
    CU_ASSERT_EQUAL(journal_dropped(j), TG_ARRAY_LEN(bad) + 1);
    CU_ASSERT_EQUAL(journal_reserved(j), 0);
    /* The limits themselves are fine. */
    const struct journal_rec good = {1, USAGE_OUTCOMES - 1, 1000, longer, JOURNAL_KEY_MAX, longer,
                                     JOURNAL_ENDPOINT_MAX, false, 0, 0};
    CU_ASSERT_EQUAL(journal_append(j, &good), 0);
    CU_ASSERT_EQUAL(journal_dropped(j), TG_ARRAY_LEN(bad) + 1);
    journal_close(j, true);
    dir_teardown();
}

/* Adopts the only orphan in jdir; fails the test when there is none. */
static struct journal *adopt_one(struct journal *const *skip, size_t nskip)
{
    struct api_error err = {0};
    struct journal *j = journal_adopt(jdir, skip, nskip, &err);
    CU_ASSERT_PTR_NOT_NULL(j);
    CU_ASSERT_STRING_EQUAL(err.message, "");
    return j;
}

static void assert_nothing_to_adopt(struct journal *const *skip, size_t nskip)
{
    struct api_error err;
    strcpy(err.message, "stale");
    struct journal *j = journal_adopt(jdir, skip, nskip, &err);
    CU_ASSERT_PTR_NULL(j);
    CU_ASSERT_STRING_EQUAL(err.message, "");
    journal_close(j, false);
}

static void test_pending_persists(void)
{
    struct api_error err = {0};
    dir_setup();
    assert_nothing_to_adopt(NULL, 0); /* the directory does not even exist */
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    char id[JOURNAL_ID_LEN + 1];
    strcpy(id, journal_id(j));
    struct gen g = {.key = ""};
    for (unsigned i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(journal_append(j, gen_rec(&g, 2, i)), 0);
    uint64_t reserved = journal_reserved(j);
    struct seq_check c = {{0}, 0, 0};
    uint64_t mid = journal_scan(j, 0, 0, 4, on_seq, &c);
    journal_set_pending(j, mid);
    CU_ASSERT_EQUAL(journal_pending(j), mid);
    CU_ASSERT_EQUAL(journal_head(j), 0);
    journal_close(j, false);

    j = adopt_one(NULL, 0);
    CU_ASSERT_FATAL(j != NULL);
    CU_ASSERT_STRING_EQUAL(journal_id(j), id);
    CU_ASSERT_TRUE(journal_adopted(j));
    CU_ASSERT_EQUAL(journal_capacity(j), MIB_SLOTS);
    CU_ASSERT(journal_head(j) == 0 && journal_pending(j) == mid &&
              journal_reserved(j) == reserved);
    /* The same batch is replayed: records 0-3. */
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(journal_scan(j, journal_head(j), journal_pending(j), 0, on_seq, &c), mid);
    CU_ASSERT(c.received == 4 && c.errors == 0);
    journal_advance(j, mid);
    CU_ASSERT(journal_head(j) == mid && journal_pending(j) == mid);
    uint64_t mid2 = journal_scan(j, mid, 0, 3, on_seq, &c);
    journal_set_pending(j, mid2);
    journal_close(j, false);

    j = adopt_one(NULL, 0);
    CU_ASSERT_FATAL(j != NULL);
    CU_ASSERT(journal_head(j) == mid && journal_pending(j) == mid2);
    memset(&c, 0, sizeof c);
    c.next[2] = 4;
    CU_ASSERT_EQUAL(journal_scan(j, mid, 0, 0, on_seq, &c), reserved);
    CU_ASSERT(c.received == 6 && c.errors == 0);
    journal_advance(j, reserved);
    CU_ASSERT(journal_head(j) == reserved && journal_pending(j) == reserved);
    CU_ASSERT_EQUAL(journal_lost(j), 0);
    journal_close(j, true);
    CU_ASSERT_EQUAL(dir_entries(jdir), 0);
    assert_nothing_to_adopt(NULL, 0);
    dir_teardown();
}

/* 4 writers x 20000 records into a 1 MiB ring (it fills up many times: a
 * refused append is retried) while a reader consumes and advances. */
#define WRITERS 4
#define PER_WRITER 20000

struct writer {
    struct journal *j;
    atomic_bool *reader_done; /* no point retrying a refused append then */
    int w;
    uint64_t refused;
    bool timed_out;
};

static void *writer_main(void *arg)
{
    struct writer *wr = arg;
    struct gen g = {.key = ""};
    int64_t deadline = mono_ns() + DEADLINE_NS;
    for (unsigned seq = 0; seq < PER_WRITER && !wr->timed_out; seq++) {
        const struct journal_rec *r = gen_rec(&g, wr->w, seq);
        while (journal_append(wr->j, r) != 0) {
            wr->refused++;
            if (atomic_load(wr->reader_done) || mono_ns() > deadline) {
                wr->timed_out = true;
                break;
            }
            sched_yield();
        }
    }
    return NULL;
}

struct reader {
    struct journal *j;
    atomic_bool done;
    struct seq_check c;
    bool timed_out;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    uint64_t pos = 0;
    int64_t deadline = mono_ns() + DEADLINE_NS;
    while (rd->c.received < WRITERS * PER_WRITER && rd->c.errors == 0) {
        uint64_t next = journal_scan(rd->j, pos, 0, 500, on_seq, &rd->c);
        if (next == pos) {
            if (mono_ns() > deadline) {
                rd->timed_out = true;
                break;
            }
            sched_yield();
            continue;
        }
        journal_set_pending(rd->j, next);
        journal_advance(rd->j, next);
        pos = next;
    }
    atomic_store(&rd->done, true);
    return NULL;
}

static void test_concurrent(void)
{
    struct api_error err = {0};
    dir_setup();
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    struct writer wr[WRITERS];
    pthread_t wt[WRITERS], rt;
    struct reader rd;
    memset(&rd, 0, sizeof rd);
    rd.j = j;
    atomic_init(&rd.done, false);
    CU_ASSERT_FATAL(pthread_create(&rt, NULL, reader_main, &rd) == 0);
    for (int i = 0; i < WRITERS; i++) {
        wr[i] = (struct writer){j, &rd.done, i, 0, false};
        CU_ASSERT_FATAL(pthread_create(&wt[i], NULL, writer_main, &wr[i]) == 0);
    }
    uint64_t refused = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(wt[i], NULL);
        CU_ASSERT_FALSE(wr[i].timed_out);
        refused += wr[i].refused;
    }
    pthread_join(rt, NULL);
    CU_ASSERT_FALSE(rd.timed_out);
    CU_ASSERT_EQUAL(rd.c.errors, 0);
    CU_ASSERT_EQUAL(rd.c.received, WRITERS * PER_WRITER);
    for (int i = 0; i < WRITERS; i++)
        CU_ASSERT_EQUAL(rd.c.next[i], PER_WRITER);
    CU_ASSERT_EQUAL(journal_dropped(j), refused);
    CU_ASSERT_EQUAL(journal_head(j), journal_reserved(j));
    CU_ASSERT(journal_reserved(j) > journal_capacity(j)); /* it did wrap */
    CU_ASSERT_EQUAL(journal_lost(j), 0);
    journal_close(j, true);
    dir_teardown();
}

/* Runs fn in a child process; returns its pid (the child never returns). */
static pid_t spawn(void (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    return pid;
}

#define KILLED_RECORDS 1000

/* Appends KILLED_RECORDS records, then dies without any clean-up. */
static void child_append_and_die(void *arg)
{
    (void)arg;
    struct gen g = {.key = ""};
    struct journal *j = journal_create(jdir, 1, NULL);
    if (!j)
        _exit(2);
    for (unsigned i = 0; i < KILLED_RECORDS; i++) {
        if (journal_append(j, gen_rec(&g, 3, i)) != 0)
            _exit(3);
    }
    kill(getpid(), SIGKILL);
    _exit(4);
}

static void test_sigkill_survival(void)
{
    dir_setup();
    pid_t pid = spawn(child_append_and_die, NULL);
    CU_ASSERT_FATAL(pid > 0);
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    struct journal *j = adopt_one(NULL, 0);
    CU_ASSERT_FATAL(j != NULL);
    CU_ASSERT_TRUE(journal_adopted(j));
    CU_ASSERT_EQUAL(journal_head(j), 0);
    struct seq_check c = {{0}, 0, 0};
    CU_ASSERT_EQUAL(journal_scan(j, 0, 0, 0, on_seq, &c), journal_reserved(j));
    CU_ASSERT_EQUAL(c.received, KILLED_RECORDS);
    CU_ASSERT_EQUAL(c.next[3], KILLED_RECORDS);
    CU_ASSERT_EQUAL(c.errors, 0);
    CU_ASSERT_EQUAL(journal_lost(j), 0);
    /* This process holds it now: a second adoption finds nothing. */
    assert_nothing_to_adopt(NULL, 0);
    journal_close(j, true);
    CU_ASSERT_EQUAL(dir_entries(jdir), 0);
    dir_teardown();
}

/* Creates a journal, writes its id to id_fd and holds it until wait_fd
 * reads end of file. */
struct holder {
    int id_fd;
    int wait_fd;
    int parent_fds[2]; /* the parent's ends, closed in the child */
};

static void child_hold(void *arg)
{
    struct holder *h = arg;
    close(h->parent_fds[0]);
    close(h->parent_fds[1]);
    struct journal *j = journal_create(jdir, 1, NULL);
    if (!j)
        _exit(2);
    if (write(h->id_fd, journal_id(j), JOURNAL_ID_LEN) != JOURNAL_ID_LEN)
        _exit(3);
    char b;
    while (read(h->wait_fd, &b, 1) > 0)
        ;
    journal_close(j, false);
    _exit(0);
}

static void child_orphan(void *arg)
{
    (void)arg;
    struct journal *j = journal_create(jdir, 1, NULL);
    if (!j)
        _exit(2);
    journal_close(j, false);
    _exit(0);
}

static void test_adopt_live_and_skip(void)
{
    struct api_error err = {0};
    dir_setup();
    /* A journal of this very process is never adopted, listed in skip or not. */
    struct journal *own = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(own != NULL);
    assert_nothing_to_adopt(NULL, 0);
    assert_nothing_to_adopt(&own, 1);

    /* Nor one a living process holds; it is once that process is gone. */
    int idp[2], waitp[2];
    CU_ASSERT_FATAL(pipe(idp) == 0 && pipe(waitp) == 0);
    struct holder h = {idp[1], waitp[0], {idp[0], waitp[1]}};
    pid_t pid = spawn(child_hold, &h);
    CU_ASSERT_FATAL(pid > 0);
    close(waitp[0]);
    close(idp[1]);
    char id[JOURNAL_ID_LEN + 1] = {0};
    CU_ASSERT_EQUAL(read(idp[0], id, JOURNAL_ID_LEN), JOURNAL_ID_LEN);
    close(idp[0]);
    assert_nothing_to_adopt(&own, 1);
    close(waitp[1]);
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct journal *a = adopt_one(&own, 1);
    CU_ASSERT_FATAL(a != NULL);
    CU_ASSERT_STRING_EQUAL(journal_id(a), id);

    /* Two more orphans: each adoption skips what this process holds. */
    for (int i = 0; i < 2; i++) {
        pid = spawn(child_orphan, NULL);
        CU_ASSERT_FATAL(pid > 0);
        CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    struct journal *held[4] = {own, a, NULL, NULL};
    held[2] = adopt_one(held, 2);
    CU_ASSERT_FATAL(held[2] != NULL);
    held[3] = adopt_one(held, 3);
    CU_ASSERT_FATAL(held[3] != NULL);
    CU_ASSERT(strcmp(journal_id(held[2]), journal_id(held[3])) != 0);
    CU_ASSERT(strcmp(journal_id(held[2]), id) != 0 && strcmp(journal_id(held[3]), id) != 0);
    assert_nothing_to_adopt(held, 4);
    CU_ASSERT_EQUAL(dir_entries(jdir), 4);

    /* Closed without removal, a journal is there to adopt again. */
    strcpy(id, journal_id(held[3]));
    journal_close(held[3], false);
    held[3] = adopt_one(held, 3);
    CU_ASSERT_FATAL(held[3] != NULL);
    CU_ASSERT_STRING_EQUAL(journal_id(held[3]), id);
    for (int i = 0; i < 4; i++)
        journal_close(held[i], true);
    CU_ASSERT_EQUAL(dir_entries(jdir), 0);
    dir_teardown();
}

/* Overwrites the commit mark of the slot of position pos in file path. */
static int set_mark(const char *path, uint64_t pos, uint64_t mark)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return -1;
    off_t off = HDR_BYTES + (off_t)(pos % MIB_SLOTS) * JOURNAL_SLOT;
    ssize_t n = pwrite(fd, &mark, sizeof mark, off);
    close(fd);
    return n == (ssize_t)sizeof mark ? 0 : -1;
}

static int write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, data, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

/* Records 0-4 of writer 4 take 1, 2, 3, 4 and 1 slots: positions 0, 1-2,
 * 3-5, 6-9 and 10. */
static void test_uncommitted(void)
{
    struct api_error err = {0};
    dir_setup();
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    struct gen g = {.key = ""};
    for (unsigned i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(journal_append(j, gen_rec(&g, 4, i)), 0);
    CU_ASSERT_EQUAL_FATAL(journal_reserved(j), 11);
    char path[256];
    journal_path(journal_id(j), path, sizeof path);

    /* Live: an uncommitted record stops the scan; nothing is lost. */
    CU_ASSERT_EQUAL(set_mark(path, 3, 0), 0);
    struct seq_check c = {{0}, 0, 0};
    CU_ASSERT_EQUAL(journal_scan(j, 0, 0, 0, on_seq, &c), 3);
    CU_ASSERT_EQUAL(c.received, 2);
    CU_ASSERT_EQUAL(journal_scan(j, 3, 0, 0, on_seq, &c), 3);
    CU_ASSERT_EQUAL(set_mark(path, 3, 4), 0); /* the writer commits */
    CU_ASSERT_EQUAL(journal_scan(j, 3, 0, 0, on_seq, &c), 11);
    CU_ASSERT(c.received == 5 && c.errors == 0);
    /* A record with one continuation not committed is not committed. */
    CU_ASSERT_EQUAL(set_mark(path, 7, 0), 0);
    CU_ASSERT_EQUAL(journal_scan(j, 6, 0, 0, on_seq, &c), 6);
    CU_ASSERT_EQUAL(c.received, 5);
    CU_ASSERT_EQUAL(journal_lost(j), 0);
    /* And the writer of the last record died before committing. */
    CU_ASSERT_EQUAL(set_mark(path, 10, 0), 0);
    journal_close(j, false);

    /* Adopted: whatever was never committed is skipped, each slot counted
     * once, and the scan ends at reserve. */
    j = adopt_one(NULL, 0);
    CU_ASSERT_FATAL(j != NULL);
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(journal_scan(j, 0, 0, 0, on_seq, &c), 11);
    CU_ASSERT(c.received == 3 && c.next[4] == 3 && c.errors == 0);
    CU_ASSERT_EQUAL(journal_lost(j), 5);
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(journal_scan(j, 0, 0, 0, on_seq, &c), 11);
    CU_ASSERT_EQUAL(c.received, 3);
    CU_ASSERT_EQUAL(journal_lost(j), 5);
    /* max counts records, not skipped slots. */
    CU_ASSERT_EQUAL(journal_scan(j, 6, 0, 1, on_seq, &c), 11);
    journal_advance(j, 11);
    journal_close(j, false);
    j = adopt_one(NULL, 0);
    CU_ASSERT_FATAL(j != NULL);
    CU_ASSERT_EQUAL(journal_lost(j), 5); /* persisted */
    CU_ASSERT_EQUAL(journal_head(j), 11);
    journal_close(j, true);
    dir_teardown();
}

static void test_corrupt_files(void)
{
    struct api_error err = {0};
    dir_setup();
    char logpath[160], path[256], path2[256];
    snprintf(logpath, sizeof logpath, "%s/log", tmp_root);
    CU_ASSERT_FATAL(log_open(logpath, LOG_WARN) == 0);

    /* A journal truncated by one slot, and one renamed (id mismatch). */
    struct journal *j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    journal_path(journal_id(j), path, sizeof path);
    journal_close(j, false);
    CU_ASSERT(truncate(path, 1024 * 1024 - JOURNAL_SLOT) == 0);
    j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    journal_path(journal_id(j), path2, sizeof path2);
    journal_close(j, false);
    snprintf(path, sizeof path, "%s/CCCCCCCCCCCCCCCC.tgj", jdir);
    CU_ASSERT(rename(path2, path) == 0);
    /* Garbage, an empty file, a directory, a symbolic link, a stray name. */
    static unsigned char junk[5000];
    memset(junk, 0x5a, sizeof junk);
    snprintf(path, sizeof path, "%s/AAAAAAAAAAAAAAAA.tgj", jdir);
    CU_ASSERT(write_file(path, junk, sizeof junk) == 0);
    snprintf(path, sizeof path, "%s/BBBBBBBBBBBBBBBB.tgj", jdir);
    CU_ASSERT(write_file(path, junk, 0) == 0);
    snprintf(path, sizeof path, "%s/DDDDDDDDDDDDDDDD.tgj", jdir);
    CU_ASSERT(mkdir(path, 0700) == 0);
    snprintf(path, sizeof path, "%s/EEEEEEEEEEEEEEEE.tgj", jdir);
    CU_ASSERT(symlink(logpath, path) == 0);
    snprintf(path, sizeof path, "%s/notes.tgj", jdir);
    CU_ASSERT(write_file(path, junk, sizeof junk) == 0);

    assert_nothing_to_adopt(NULL, 0);
    CU_ASSERT_EQUAL(dir_entries(jdir), 7); /* all left alone */
    struct stat st;
    snprintf(path, sizeof path, "%s/AAAAAAAAAAAAAAAA.tgj", jdir);
    CU_ASSERT(stat(path, &st) == 0 && st.st_size == (off_t)sizeof junk);
    log_open(NULL, LOG_ERROR);
    char *log = unit_slurp(logpath, NULL);
    CU_ASSERT_FATAL(log != NULL);
    CU_ASSERT(strstr(log, "AAAAAAAAAAAAAAAA.tgj") != NULL);
    CU_ASSERT(strstr(log, "BBBBBBBBBBBBBBBB.tgj") != NULL);
    CU_ASSERT(strstr(log, "CCCCCCCCCCCCCCCC.tgj") != NULL);
    CU_ASSERT(strstr(log, "notes.tgj") == NULL);
    free(log);
    rm_dir(jdir);

    /* A sound header over slots of garbage that carry the right marks:
     * nothing is read, every slot is lost. */
    j = journal_create(jdir, 1, &err);
    CU_ASSERT_FATAL(j != NULL);
    struct journal_rec one = {1, USAGE_ALLOWED, 1, "k", 1, "/e", 2, false, 0, 0};
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(journal_append(j, &one), 0);
    journal_path(journal_id(j), path, sizeof path);
    journal_close(j, false);
    unsigned char slot[JOURNAL_SLOT];
    memset(slot, 0xff, sizeof slot);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    for (uint64_t pos = 0; pos < 10; pos++) {
        uint64_t mark = pos + 1;
        memcpy(slot, &mark, sizeof mark);
        CU_ASSERT(pwrite(fd, slot, sizeof slot, HDR_BYTES + (off_t)pos * JOURNAL_SLOT) ==
                  (ssize_t)sizeof slot);
    }
    close(fd);
    j = adopt_one(NULL, 0);
    CU_ASSERT_FATAL(j != NULL);
    size_t n = 0;
    CU_ASSERT_EQUAL(journal_scan(j, 0, 0, 0, on_count, &n), 10);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(journal_lost(j), 10);
    journal_close(j, true);
    dir_teardown();
}

int main(void)
{
    log_open(NULL, LOG_ERROR);
    static const struct unit_test tests[] = {
        UNIT_TEST(test_create),
        UNIT_TEST(test_roundtrip_and_bounds),
        UNIT_TEST(test_credit_version),
        UNIT_TEST(test_peak),
        UNIT_TEST(test_wrap),
        UNIT_TEST(test_full),
        UNIT_TEST(test_malformed),
        UNIT_TEST(test_pending_persists),
        UNIT_TEST(test_concurrent),
        UNIT_TEST(test_sigkill_survival),
        UNIT_TEST(test_adopt_live_and_skip),
        UNIT_TEST(test_uncommitted),
        UNIT_TEST(test_corrupt_files),
    };
    return unit_run("journal", tests, TG_ARRAY_LEN(tests));
}
