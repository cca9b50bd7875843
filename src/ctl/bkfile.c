#include "bkfile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STEM_PREFIX "tollgate-"
#define TEMP_SUFFIX ".tmp"

void bkfile_stem(time_t t, char out[BKFILE_STEM_LEN])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, BKFILE_STEM_LEN, STEM_PREFIX "%Y%m%dT%H%M%SZ", &tm);
}

/* "tollgate-" 8 digits "T" 6 digits "Z": the stem's length when it is one. */
static size_t stem_len(const char *name)
{
    static const char shape[] = STEM_PREFIX "00000000T000000Z";
    size_t n = sizeof shape - 1;
    for (size_t i = 0; i < n; i++) {
        if (shape[i] == '0' ? !isdigit((unsigned char)name[i]) : name[i] != shape[i])
            return 0;
    }
    return n;
}

bool bkfile_is_name(const char *name, const char *ext)
{
    size_t n = stem_len(name);
    return n && strcmp(name + n, ext) == 0;
}

static int path_of(char out[BKFILE_PATH_MAX], const char *dir, const char *pre, const char *name,
                   const char *post, struct api_error *e)
{
    int n = snprintf(out, BKFILE_PATH_MAX, "%s/%s%s%s", dir, pre, name, post);
    if (n < 0 || n >= BKFILE_PATH_MAX) {
        api_error_set(e, ERR_INVALID_ARGUMENT, NULL, "the backup directory's path is too long");
        return -1;
    }
    return 0;
}

int bkfile_create_temp(const char *dir, const char *name, char tmp[BKFILE_PATH_MAX],
                       struct api_error *e)
{
    if (path_of(tmp, dir, ".", name, TEMP_SUFFIX, e) != 0)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        api_error_set(e, ERR_INTERNAL, NULL, "cannot create %s: %s", tmp, strerror(errno));
    return fd;
}

static int sync_dir(const char *dir, struct api_error *e)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        api_error_set(e, ERR_INTERNAL, NULL, "cannot sync %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int bkfile_commit(int fd, const char *tmp, const char *dir, const char *name,
                  struct api_error *e)
{
    char final[BKFILE_PATH_MAX];
    if (fsync(fd) != 0) {
        api_error_set(e, ERR_INTERNAL, NULL, "cannot sync %s: %s", tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    if (close(fd) != 0) {
        api_error_set(e, ERR_INTERNAL, NULL, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (path_of(final, dir, "", name, "", e) != 0)
        goto fail;
    /* link then unlink: unlike rename, never replaces an existing backup. */
    if (link(tmp, final) != 0) {
        api_error_set(e, errno == EEXIST ? ERR_CONFLICT : ERR_INTERNAL, NULL,
                      "cannot create %s: %s", final, strerror(errno));
        goto fail;
    }
    unlink(tmp);
    return sync_dir(dir, e);
fail:
    unlink(tmp);
    return -1;
}

int bkfile_write(const char *dir, const char *name, const char *data, size_t len,
                 struct api_error *e)
{
    char tmp[BKFILE_PATH_MAX];
    int fd = bkfile_create_temp(dir, name, tmp, e);
    if (fd < 0)
        return -1;
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            api_error_set(e, ERR_INTERNAL, NULL, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)n;
    }
    return bkfile_commit(fd, tmp, dir, name, e);
}

long long bkfile_sha256(const char *path, char out[65], struct api_error *e)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        api_error_set(e, ERR_NOT_FOUND, NULL, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        abort(); /* only a broken OpenSSL installation gets here */
    unsigned char buf[65536], h[EVP_MAX_MD_SIZE];
    unsigned int hn = 0;
    long long total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(md, buf, n);
        total += (long long)n;
    }
    bool bad = ferror(f);
    fclose(f);
    EVP_DigestFinal_ex(md, h, &hn);
    EVP_MD_CTX_free(md);
    if (bad) {
        api_error_set(e, ERR_INTERNAL, NULL, "cannot read %s", path);
        return -1;
    }
    hex_encode(h, 32, out);
    return total;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_temp(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' && stem_len(name + 1) && n > strlen(TEMP_SUFFIX) &&
           strcmp(name + n - strlen(TEMP_SUFFIX), TEMP_SUFFIX) == 0;
}

/* Removes dir/stem.dump and dir/stem.json; 0 or -1 with e. */
static int remove_backup(const char *dir, const char *stem, struct api_error *e)
{
    static const char *const exts[] = {".dump", ".json"};
    char path[BKFILE_PATH_MAX];
    for (size_t i = 0; i < TG_ARRAY_LEN(exts); i++) {
        if (path_of(path, dir, "", stem, exts[i], e) != 0)
            return -1;
        if (unlink(path) != 0 && errno != ENOENT) {
            api_error_set(e, ERR_INTERNAL, NULL, "cannot remove %s: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

int bkfile_prune(const char *dir, int keep, int *removed, struct api_error *e)
{
    *removed = 0;
    DIR *d = opendir(dir);
    if (!d) {
        api_error_set(e, ERR_INTERNAL, NULL, "cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    char **stems = NULL, path[BKFILE_PATH_MAX];
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (is_temp(de->d_name)) {
            if (path_of(path, dir, "", de->d_name, "", e) == 0)
                unlink(path);
            continue;
        }
        if (!bkfile_is_name(de->d_name, ".dump") && !bkfile_is_name(de->d_name, ".json"))
            continue;
        char *stem = xstrndup(de->d_name, stem_len(de->d_name));
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            stems = xrealloc(stems, cap * sizeof *stems);
        }
        stems[n++] = stem;
    }
    closedir(d);
    if (n)
        qsort(stems, n, sizeof *stems, cmp_str);
    /* The two files of a backup give its stem twice, side by side. */
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        distinct += i == 0 || strcmp(stems[i], stems[i - 1]) != 0;
    size_t drop = distinct > (size_t)keep ? distinct - (size_t)keep : 0;
    for (size_t i = 0; i < n && drop > 0 && rc == 0; i++) {
        if (i > 0 && strcmp(stems[i], stems[i - 1]) == 0)
            continue;
        rc = remove_backup(dir, stems[i], e);
        if (rc == 0) {
            (*removed)++;
            drop--;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(stems[i]);
    free(stems);
    return rc;
}

int bkfile_lock(const char *dir, struct api_error *e)
{
    char path[BKFILE_PATH_MAX];
    if (path_of(path, dir, "", ".lock", "", e) != 0)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        api_error_set(e, ERR_INTERNAL, NULL, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        api_error_set(e, errno == EWOULDBLOCK ? ERR_CONFLICT : ERR_INTERNAL, NULL,
                      "another backup is running in %s (%s)", dir, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
