/* journal: a ring of 128-byte slots in a shared file mapping (see journal.h).
 *
 * File layout: a 4096-byte header (struct journal_hdr), then nslots slots.
 * Every slot starts with its commit mark, the position it was last written
 * for plus one, stored last with release semantics; the reader loads it with
 * acquire before it touches anything else in the slot.  A slot of an older
 * lap carries pos + 1 - nslots (or 0 in a fresh sparse file), so it can never
 * pass for the position being read.
 *
 * The first slot of a record (SLOT_FIRST) holds the record's fields and the
 * first FIRST_CAP payload bytes; up to JOURNAL_MAX_SLOTS - 1 continuation
 * slots (SLOT_CONT, numbered 1..) carry the rest.  The payload is the key id
 * followed by the endpoint, lengths in the first slot, then the optional
 * fields the kind announces (credit version, peak percent) in that order.
 *
 * Everything read from the file is validated before use, so a corrupt or
 * hostile file can make records be skipped but never a read outside the
 * map. */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define JOURNAL_MAGIC "TGJRNL01"
#define JOURNAL_VERSION 1
#define JOURNAL_HDR 4096
#define JOURNAL_MB_MAX 65536
#define JOURNAL_EXT ".tgj"

#define SLOT_FIRST 0xF1
/* A first slot whose payload ends with the 8-byte credit version; records
 * of the plain kind (older journals too) have none. */
#define SLOT_FIRST_CV 0xF3
#define CV_LEN 8
/* Kind bit: the payload ends with one byte, the peak percent (only written
 * when not 0, so a record of a key without windows keeps its old form).
 * 0xF5 and 0xF7 are the plain and credit kinds with it. */
#define SLOT_PEAK 0x04
#define PEAK_LEN 1
#define SLOT_CONT 0xC2

/* Counters get cache lines of their own: reserve is hit by every writer,
 * head/pending/lost by the reader, dropped only when the ring is full. */
struct journal_hdr {
    char magic[8];
    uint32_t version;
    uint32_t slot_size;
    uint64_t nslots;
    char id[JOURNAL_ID_LEN + 8]; /* NUL-padded */
    _Alignas(64) _Atomic uint64_t reserve;
    _Alignas(64) _Atomic uint64_t head;
    _Atomic uint64_t pending;
    _Atomic uint64_t lost;
    _Atomic uint64_t lost_mark; /* lost is counted once per position below it */
    _Alignas(64) _Atomic uint64_t dropped;
};

struct slot_first {
    _Atomic uint64_t commit;
    uint8_t kind; /* SLOT_FIRST */
    uint8_t nslots;
    uint8_t outcome;
    uint8_t key_len;
    uint16_t endpoint_len;
    uint16_t cost;
    int64_t ts_ms;
    unsigned char data[JOURNAL_SLOT - 24];
};

struct slot_cont {
    _Atomic uint64_t commit;
    uint8_t kind;  /* SLOT_CONT */
    uint8_t index; /* 1..JOURNAL_MAX_SLOTS-1 within its record */
    uint8_t pad[6];
    unsigned char data[JOURNAL_SLOT - 16];
};

union slot {
    struct slot_first first;
    struct slot_cont cont;
};

#define FIRST_CAP sizeof(((struct slot_first *)0)->data)
#define CONT_CAP sizeof(((struct slot_cont *)0)->data)
#define PAYLOAD_MAX (JOURNAL_KEY_MAX + JOURNAL_ENDPOINT_MAX + CV_LEN + PEAK_LEN)

_Static_assert(sizeof(struct journal_hdr) <= JOURNAL_HDR, "journal header too large");
_Static_assert(sizeof(union slot) == JOURNAL_SLOT, "slot is not JOURNAL_SLOT bytes");
_Static_assert(FIRST_CAP + (JOURNAL_MAX_SLOTS - 1) * CONT_CAP >= PAYLOAD_MAX,
               "longest record does not fit in JOURNAL_MAX_SLOTS");
_Static_assert(JOURNAL_KEY_MAX <= UINT8_MAX && JOURNAL_MAX_SLOTS <= UINT8_MAX,
               "slot fields too narrow");

struct journal {
    int fd;
    unsigned char *map;
    size_t map_len;
    struct journal_hdr *hdr;
    union slot *slots;
    uint64_t nslots;
    bool adopted;
    char id[JOURNAL_ID_LEN + 1];
    char *path;
    /* Reader-owned: the record handed to journal_fn points here. */
    unsigned char payload[PAYLOAD_MAX];
    char key[JOURNAL_KEY_MAX + 1];
    char endpoint[JOURNAL_ENDPOINT_MAX + 1];
};

static unsigned slots_for(size_t payload)
{
    if (payload <= FIRST_CAP)
        return 1;
    return 1 + (unsigned)((payload - FIRST_CAP + CONT_CAP - 1) / CONT_CAP);
}

static union slot *slot_at(const struct journal *j, uint64_t pos)
{
    return &j->slots[pos % j->nslots];
}

/* Maps the whole file and fills j's view of it.  Returns 0 or -1 (errno). */
static int journal_map(struct journal *j, size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
    if (p == MAP_FAILED)
        return -1;
    j->map = p;
    j->map_len = len;
    j->hdr = p;
    j->slots = (union slot *)(j->map + JOURNAL_HDR);
    return 0;
}

static struct journal *journal_alloc(void)
{
    struct journal *j = xcalloc(1, sizeof *j);
    j->fd = -1;
    return j;
}

static void journal_free(struct journal *j)
{
    if (j->map)
        munmap(j->map, j->map_len);
    if (j->fd >= 0)
        close(j->fd); /* releases the flock */
    free(j->path);
    free(j);
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

struct journal *journal_create(const char *dir, int64_t mb, struct api_error *err)
{
    struct journal *j = journal_alloc();
    char *tmp = NULL;
    if (mb < 1 || mb > JOURNAL_MB_MAX) {
        api_error_set(err, ERR_INTERNAL, NULL, "journal: size %lld MiB out of range 1-%d", (long long)mb,
                   JOURNAL_MB_MAX);
        goto fail;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        api_error_set(err, ERR_INTERNAL, NULL, "journal: mkdir %s: %s", dir, strerror(errno));
        goto fail;
    }
    random_base62(j->id, JOURNAL_ID_LEN);
    char name[JOURNAL_ID_LEN + 8];
    snprintf(name, sizeof name, "%s.tmp", j->id);
    tmp = path_join(dir, name);
    snprintf(name, sizeof name, "%s%s", j->id, JOURNAL_EXT);
    j->path = path_join(dir, name);

    /* Built under a name adopters ignore, locked, then renamed: nobody can
     * see the file before it is a complete, locked journal. */
    j->fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (j->fd < 0) {
        api_error_set(err, ERR_INTERNAL, NULL, "journal: create %s: %s", tmp, strerror(errno));
        goto fail;
    }
    size_t len = (size_t)mb << 20;
    if (flock(j->fd, LOCK_EX | LOCK_NB) < 0 || ftruncate(j->fd, (off_t)len) < 0) {
        api_error_set(err, ERR_INTERNAL, NULL, "journal: set up %s: %s", tmp, strerror(errno));
        goto fail_unlink;
    }
    /* Disk blocks up front: a sparse page that cannot be allocated later
     * would raise SIGBUS inside an append, on the request path. */
    int rc = posix_fallocate(j->fd, 0, (off_t)len);
    if (rc != 0) {
        api_error_set(err, ERR_INTERNAL, NULL, "journal: reserving %zu bytes for %s: %s", len, tmp, strerror(rc));
        goto fail_unlink;
    }
    if (journal_map(j, len) < 0) {
        api_error_set(err, ERR_INTERNAL, NULL, "journal: set up %s: %s", tmp, strerror(errno));
        goto fail_unlink;
    }
    if (!atomic_is_lock_free(&j->hdr->reserve)) {
        api_error_set(err, ERR_INTERNAL, NULL, "journal: 64-bit atomics are not lock-free here");
        goto fail_unlink;
    }
    j->nslots = (len - JOURNAL_HDR) / JOURNAL_SLOT;
    struct journal_hdr *h = j->hdr;
    memcpy(h->magic, JOURNAL_MAGIC, sizeof h->magic);
    h->version = JOURNAL_VERSION;
    h->slot_size = JOURNAL_SLOT;
    h->nslots = j->nslots;
    memcpy(h->id, j->id, JOURNAL_ID_LEN);
    if (rename(tmp, j->path) < 0) {
        api_error_set(err, ERR_INTERNAL, NULL, "journal: rename to %s: %s", j->path, strerror(errno));
        goto fail_unlink;
    }
    free(tmp);
    return j;

fail_unlink:
    unlink(tmp);
fail:
    free(tmp);
    journal_free(j);
    return NULL;
}

/* Checks the header of a locked candidate and maps it.  Returns 0, or -1
 * with why it is not an adoptable journal in reason. */
static int adopt_check(struct journal *j, const char *stem, const char **reason)
{
    struct stat st;
    struct journal_hdr h;
    if (fstat(j->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        *reason = "not a regular file";
        return -1;
    }
    if (st.st_nlink == 0) {
        *reason = NULL; /* removed by its adopter meanwhile: not an error */
        return -1;
    }
    if (pread(j->fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
        *reason = "short header";
        return -1;
    }
    if (memcmp(h.magic, JOURNAL_MAGIC, sizeof h.magic) != 0 || h.version != JOURNAL_VERSION ||
        h.slot_size != JOURNAL_SLOT) {
        *reason = "bad magic, version or slot size";
        return -1;
    }
    if (h.nslots < JOURNAL_MAX_SLOTS ||
        h.nslots > ((uint64_t)JOURNAL_MB_MAX << 20) / JOURNAL_SLOT ||
        (uint64_t)st.st_size != JOURNAL_HDR + h.nslots * JOURNAL_SLOT) {
        *reason = "slot count does not match the file size";
        return -1;
    }
    if (memcmp(h.id, stem, JOURNAL_ID_LEN) != 0 || h.id[JOURNAL_ID_LEN] != '\0') {
        *reason = "id does not match the file name";
        return -1;
    }
    if (journal_map(j, (size_t)st.st_size) < 0) {
        *reason = "cannot map";
        return -1;
    }
    j->nslots = h.nslots;
    struct journal_hdr *m = j->hdr;
    uint64_t reserve = atomic_load(&m->reserve), head = atomic_load(&m->head);
    uint64_t pending = atomic_load(&m->pending);
    if (head > reserve || reserve - head > j->nslots || pending > reserve) {
        *reason = "inconsistent counters";
        return -1;
    }
    if (pending < head) /* crashed inside journal_advance */
        atomic_store(&m->pending, head);
    memcpy(j->id, stem, JOURNAL_ID_LEN);
    j->id[JOURNAL_ID_LEN] = '\0';
    return 0;
}

static bool in_skip(const char *stem, struct journal *const *skip, size_t nskip)
{
    for (size_t i = 0; i < nskip; i++) {
        if (skip[i] && memcmp(skip[i]->id, stem, JOURNAL_ID_LEN) == 0)
            return true;
    }
    return false;
}

struct journal *journal_adopt(const char *dir, struct journal *const *skip, size_t nskip,
                              struct api_error *err)
{
    if (err)
        err->message[0] = '\0';
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT)
            api_error_set(err, ERR_INTERNAL, NULL, "journal: opendir %s: %s", dir, strerror(errno));
        return NULL;
    }
    struct journal *found = NULL;
    struct dirent *de;
    for (;;) {
        errno = 0;
        if (!(de = readdir(d))) {
            if (errno)
                api_error_set(err, ERR_INTERNAL, NULL, "journal: readdir %s: %s", dir, strerror(errno));
            break;
        }
        const char *name = de->d_name;
        if (strlen(name) != JOURNAL_ID_LEN + strlen(JOURNAL_EXT) ||
            strcmp(name + JOURNAL_ID_LEN, JOURNAL_EXT) != 0 || in_skip(name, skip, nskip))
            continue;
        struct journal *j = journal_alloc();
        j->fd = openat(dirfd(d), name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (j->fd < 0 || flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
            /* A journal of another account (EACCES) is its own processes'
             * to adopt; this scan runs every second, so it stays quiet. */
            if (j->fd < 0 && (errno == EACCES || errno == EPERM))
                log_debug("journal: open %s/%s: %s", dir, name, strerror(errno));
            else if (j->fd < 0 && errno != ENOENT)
                log_warn("journal: open %s/%s: %s", dir, name, strerror(errno));
            journal_free(j); /* a living owner holds it, or it just went */
            continue;
        }
        const char *reason;
        if (adopt_check(j, name, &reason) < 0) {
            if (reason)
                log_warn("journal: %s/%s left alone: %s", dir, name, reason);
            journal_free(j);
            continue;
        }
        j->path = path_join(dir, name);
        j->adopted = true;
        found = j;
        break;
    }
    closedir(d);
    return found;
}

void journal_close(struct journal *j, bool remove)
{
    if (!j)
        return;
    if (remove && unlink(j->path) < 0)
        log_warn("journal: unlink %s: %s", j->path, strerror(errno));
    journal_free(j);
}

static bool rec_valid(const struct journal_rec *r)
{
    return r && r->key_id && r->endpoint && r->key_len >= 1 && r->key_len <= JOURNAL_KEY_MAX &&
           r->endpoint_len >= 1 && r->endpoint_len <= JOURNAL_ENDPOINT_MAX && r->cost >= 1 &&
           r->cost <= 1000 && (unsigned)r->outcome < USAGE_OUTCOMES &&
           (!r->has_credits || r->credit_version >= 0) && r->peak_pct <= 100;
}

int journal_append(struct journal *j, const struct journal_rec *rec)
{
    struct journal_hdr *h = j->hdr;
    if (!rec_valid(rec))
        goto drop;
    size_t cv = rec->has_credits ? CV_LEN : 0;
    size_t len = rec->key_len + rec->endpoint_len + cv + (rec->peak_pct ? PEAK_LEN : 0);
    unsigned k = slots_for(len);
    uint64_t pos = atomic_load_explicit(&h->reserve, memory_order_relaxed);
    do {
        /* Acquire pairs with the reader's release of head: its reads of the
         * slots we are about to reuse are finished. */
        uint64_t head = atomic_load_explicit(&h->head, memory_order_acquire);
        if (pos + k - head > j->nslots)
            goto drop;
    } while (!atomic_compare_exchange_weak_explicit(&h->reserve, &pos, pos + k,
                                                    memory_order_relaxed, memory_order_relaxed));

    unsigned char payload[PAYLOAD_MAX];
    memcpy(payload, rec->key_id, rec->key_len);
    memcpy(payload + rec->key_len, rec->endpoint, rec->endpoint_len);
    if (rec->has_credits)
        memcpy(payload + rec->key_len + rec->endpoint_len, &rec->credit_version, CV_LEN);
    if (rec->peak_pct)
        payload[rec->key_len + rec->endpoint_len + cv] = rec->peak_pct;
    struct slot_first *f = &slot_at(j, pos)->first;
    f->kind = (uint8_t)((rec->has_credits ? SLOT_FIRST_CV : SLOT_FIRST) |
                        (rec->peak_pct ? SLOT_PEAK : 0));
    f->nslots = (uint8_t)k;
    f->outcome = (uint8_t)rec->outcome;
    f->key_len = (uint8_t)rec->key_len;
    f->endpoint_len = (uint16_t)rec->endpoint_len;
    f->cost = (uint16_t)rec->cost;
    f->ts_ms = rec->ts_ms;
    size_t off = len < FIRST_CAP ? len : FIRST_CAP;
    memcpy(f->data, payload, off);
    for (unsigned i = 1; i < k; i++) {
        struct slot_cont *c = &slot_at(j, pos + i)->cont;
        size_t n = len - off < CONT_CAP ? len - off : CONT_CAP;
        c->kind = SLOT_CONT;
        c->index = (uint8_t)i;
        memcpy(c->data, payload + off, n);
        off += n;
    }
    /* Continuations first, so a visible first slot usually means a whole
     * record; the reader checks every mark anyway. */
    for (unsigned i = k - 1; i >= 1; i--)
        atomic_store_explicit(&slot_at(j, pos + i)->cont.commit, pos + i + 1,
                              memory_order_release);
    atomic_store_explicit(&f->commit, pos + 1, memory_order_release);
    return 0;

drop:
    atomic_fetch_add_explicit(&h->dropped, 1, memory_order_relaxed);
    return -1;
}

enum rec_state {
    REC_OK,
    REC_UNCOMMITTED, /* first slot not committed */
    REC_INCOMPLETE,  /* first slot committed, a continuation not */
    REC_BAD,         /* committed but not the start of a valid record */
};

/* Reads the first slot at pos: its slot count into *k. */
static enum rec_state read_first(const struct journal *j, uint64_t pos, unsigned *k)
{
    const struct slot_first *f = &slot_at(j, pos)->first;
    if (atomic_load_explicit(&f->commit, memory_order_acquire) != pos + 1)
        return REC_UNCOMMITTED;
    uint8_t base = f->kind & (uint8_t)~SLOT_PEAK;
    size_t extra = (base == SLOT_FIRST_CV ? CV_LEN : 0) + (f->kind & SLOT_PEAK ? PEAK_LEN : 0);
    if ((base != SLOT_FIRST && base != SLOT_FIRST_CV) || f->key_len < 1 ||
        f->key_len > JOURNAL_KEY_MAX || f->endpoint_len < 1 ||
        f->endpoint_len > JOURNAL_ENDPOINT_MAX || f->cost < 1 || f->cost > 1000 ||
        f->outcome >= USAGE_OUTCOMES ||
        f->nslots != slots_for((size_t)f->key_len + f->endpoint_len + extra))
        return REC_BAD;
    *k = f->nslots;
    return REC_OK;
}

/* Copies the k-slot record at pos into j's buffers and fills *rec. */
static enum rec_state read_rest(struct journal *j, uint64_t pos, unsigned k,
                                struct journal_rec *rec)
{
    const struct slot_first *f = &slot_at(j, pos)->first;
    bool has_cv = (f->kind & (uint8_t)~SLOT_PEAK) == SLOT_FIRST_CV;
    bool has_peak = (f->kind & SLOT_PEAK) != 0;
    size_t cv = has_cv ? CV_LEN : 0;
    size_t len = (size_t)f->key_len + f->endpoint_len + cv + (has_peak ? PEAK_LEN : 0);
    size_t off = len < FIRST_CAP ? len : FIRST_CAP;
    memcpy(j->payload, f->data, off);
    for (unsigned i = 1; i < k; i++) {
        const struct slot_cont *c = &slot_at(j, pos + i)->cont;
        if (atomic_load_explicit(&c->commit, memory_order_acquire) != pos + i + 1)
            return REC_INCOMPLETE;
        if (c->kind != SLOT_CONT || c->index != i)
            return REC_BAD;
        size_t n = len - off < CONT_CAP ? len - off : CONT_CAP;
        memcpy(j->payload + off, c->data, n);
        off += n;
    }
    memcpy(j->key, j->payload, f->key_len);
    j->key[f->key_len] = '\0';
    memcpy(j->endpoint, j->payload + f->key_len, f->endpoint_len);
    j->endpoint[f->endpoint_len] = '\0';
    rec->ts_ms = f->ts_ms;
    rec->outcome = (enum usage_outcome)f->outcome;
    rec->cost = f->cost;
    rec->key_id = j->key;
    rec->key_len = f->key_len;
    rec->endpoint = j->endpoint;
    rec->endpoint_len = f->endpoint_len;
    rec->has_credits = has_cv;
    rec->credit_version = -1;
    if (has_cv)
        memcpy(&rec->credit_version, j->payload + f->key_len + f->endpoint_len, CV_LEN);
    /* A hostile file may hold any byte: the percent stays in its range. */
    rec->peak_pct = 0;
    if (has_peak) {
        uint8_t pk = j->payload[f->key_len + f->endpoint_len + cv];
        rec->peak_pct = pk > 100 ? 100 : pk;
    }
    return REC_OK;
}

/* Counts the slot at pos as lost, once even if the range is scanned again. */
static void lose(struct journal *j, uint64_t pos)
{
    struct journal_hdr *h = j->hdr;
    if (pos < atomic_load_explicit(&h->lost_mark, memory_order_relaxed))
        return;
    atomic_store_explicit(&h->lost_mark, pos + 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->lost, 1, memory_order_relaxed);
}

uint64_t journal_scan(struct journal *j, uint64_t from, uint64_t end, size_t max, journal_fn fn,
                      void *arg)
{
    /* Hard bound: an adopted journal ends at reserve; a live one at the
     * first uncommitted slot.  Soft bound: end, and never more than one lap
     * (also what keeps a scan of a corrupt file short). */
    uint64_t hard = UINT64_MAX;
    if (j->adopted)
        hard = atomic_load_explicit(&j->hdr->reserve, memory_order_acquire);
    uint64_t soft = from + j->nslots < from ? UINT64_MAX : from + j->nslots;
    if (end && end < soft)
        soft = end;
    uint64_t pos = from;
    size_t n = 0;
    while (pos < soft && pos < hard && (max == 0 || n < max)) {
        unsigned k = 1;
        struct journal_rec rec;
        enum rec_state st = read_first(j, pos, &k);
        if (st == REC_OK) {
            if (pos + k > soft)
                break;
            st = pos + k > hard ? REC_BAD : read_rest(j, pos, k, &rec);
        }
        if (st == REC_OK) {
            fn(&rec, arg);
            pos += k;
            n++;
        } else if (st == REC_BAD || j->adopted) {
            /* Committed garbage, or in an adopted journal a writer that died
             * before committing: skip one slot, the rest follows as orphans. */
            lose(j, pos);
            pos++;
        } else {
            break; /* a live writer is still filling it */
        }
    }
    return pos;
}

uint64_t journal_head(const struct journal *j)
{
    return atomic_load_explicit(&j->hdr->head, memory_order_acquire);
}

uint64_t journal_reserved(const struct journal *j)
{
    return atomic_load_explicit(&j->hdr->reserve, memory_order_acquire);
}

uint64_t journal_pending(const struct journal *j)
{
    uint64_t head = journal_head(j);
    uint64_t pending = atomic_load_explicit(&j->hdr->pending, memory_order_relaxed);
    return pending > head ? pending : head;
}

void journal_set_pending(struct journal *j, uint64_t end)
{
    atomic_store_explicit(&j->hdr->pending, end, memory_order_release);
}

void journal_advance(struct journal *j, uint64_t pos)
{
    /* pending first: a crash in between leaves [head, pos) pending, which
     * is replayed under the same batch id. */
    atomic_store_explicit(&j->hdr->pending, pos, memory_order_relaxed);
    atomic_store_explicit(&j->hdr->head, pos, memory_order_release);
}

const char *journal_id(const struct journal *j)
{
    return j->id;
}

bool journal_adopted(const struct journal *j)
{
    return j->adopted;
}

uint64_t journal_capacity(const struct journal *j)
{
    return j->nslots;
}

uint64_t journal_dropped(const struct journal *j)
{
    return atomic_load_explicit(&j->hdr->dropped, memory_order_relaxed);
}

uint64_t journal_lost(const struct journal *j)
{
    return atomic_load_explicit(&j->hdr->lost, memory_order_relaxed);
}
