#include "config.h"
#include "netguard.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "rcluster.h"

enum opt_type { OPT_INT, OPT_STR };

/* Validation beyond type and range: returns NULL or a message. */
typedef const char *(*opt_check_fn)(const char *value);

struct option {
    const char *section;
    const char *key;
    enum opt_type type;
    size_t offset;
    const char *def; /* NULL: required */
    int64_t min, max;
    opt_check_fn check;
};

static const char *check_log_level(const char *v)
{
    return log_level_parse(v) >= 0 ? NULL : "must be debug, info, warn or error";
}

static const char *check_secret(const char *v)
{
    return strlen(v) >= 32 ? NULL : "must be at least 32 characters (use 64 random hex digits)";
}

static const char *check_secret_id(const char *v)
{
    return name_ok(v, strlen(v), CONFIG_SECRET_ID_MAX, "") ? NULL : "must be 1-16 characters of [a-z0-9]";
}

/* "id:secret" words separated by blanks; what is checked here is stored by
 * build_secrets once everything is read. */
static const char *check_previous(const char *v)
{
    size_t count = 0;
    for (const char *p = v + strspn(v, " \t"); *p; p += strspn(p, " \t")) {
        size_t len = strcspn(p, " \t");
        const char *colon = memchr(p, ':', len);
        if (!colon || !name_ok(p, (size_t)(colon - p), CONFIG_SECRET_ID_MAX, ""))
            return "must be blank-separated id:secret pairs, ids of 1-16 characters of [a-z0-9]";
        if (len - (size_t)(colon - p) - 1 < 32)
            return "holds a secret shorter than 32 characters";
        if (++count >= CONFIG_SECRETS_MAX)
            return "holds too many secrets (at most 7 besides the current one)";
        p += len;
    }
    return NULL;
}

static const char *check_optional_secret(const char *v)
{
    return *v ? check_secret(v) : NULL;
}

static const char *check_prefix(const char *v)
{
    return name_ok(v, strlen(v), 16, "") ? NULL : "must be 1-16 characters of [a-z0-9]";
}

static const char *const store_error_names[] = {
    [STORE_ERROR_CLOSED] = "closed", [STORE_ERROR_OPEN] = "open", [STORE_ERROR_LOCAL] = "local"};

const char *store_error_name(enum store_error_mode m)
{
    return store_error_names[m];
}

static int store_error_parse(const char *v, enum store_error_mode *out)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(store_error_names); i++) {
        if (strcmp(v, store_error_names[i]) == 0) {
            *out = (enum store_error_mode)i;
            return 0;
        }
    }
    return -1;
}

static const char *check_store_error(const char *v)
{
    enum store_error_mode m;
    return store_error_parse(v, &m) == 0 ? NULL : "must be closed, open or local";
}

static const char *check_nonempty(const char *v)
{
    return *v ? NULL : "must not be empty";
}

static const char *check_nodes(const char *v)
{
    if (!*v)
        return NULL;
    return rcluster_parse_seeds(v, NULL, NULL) > 0 ? NULL
                                                   : "must be a comma-separated list of host:port";
}

static const char *check_ranges(const char *v)
{
    struct netguard g;
    return netguard_parse(&g, v, NULL) == 0 ? NULL
                                            : "must be a list of CIDR ranges such as 127.0.0.0/8";
}

static const char *why_dedupe_days(const char *v)
{
    (void)v;
    return "(POST /v1/usage/events accepts events up to 35 days old: an id forgotten sooner "
           "would let a replay count twice)";
}

static const char *check_url(const char *v)
{
    return !*v || strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0
               ? NULL
               : "must start with http:// or https://";
}

#define OPT(sec, key, type, field, def, min, max, check) \
    {sec, key, type, offsetof(struct config, field), def, min, max, check}

static const struct option options[] = {
    OPT("server", "workers", OPT_INT, workers, "4", 1, 256, NULL),
    OPT("server", "log_level", OPT_STR, log_level, "info", 0, 0, check_log_level),
    OPT("server", "log_file", OPT_STR, log_file, "", 0, 0, NULL),
    OPT("server", "cache_ttl_ms", OPT_INT, cache_ttl_ms, "500", 0, 1000, NULL),
    OPT("server", "gate_query_param", OPT_STR, gate_query_param, "", 0, 0, NULL),
    OPT("server", "metrics_dir", OPT_STR, metrics_dir, "", 0, 0, NULL),
    OPT("security", "hmac_secret", OPT_STR, hmac_secret, NULL, 0, 0, check_secret),
    OPT("security", "hmac_secret_id", OPT_STR, hmac_secret_id, "1", 0, 0, check_secret_id),
    OPT("security", "hmac_previous", OPT_STR, hmac_previous, "", 0, 0, check_previous),
    OPT("security", "audit_secret", OPT_STR, audit_secret, "", 0, 0, check_optional_secret),
    OPT("security", "key_prefix", OPT_STR, key_prefix, "tg", 0, 0, check_prefix),
    OPT("postgres", "conninfo", OPT_STR, pg_conninfo, NULL, 0, 0, check_nonempty),
    OPT("postgres", "migrate_conninfo", OPT_STR, pg_migrate_conninfo, "", 0, 0, NULL),
    OPT("postgres", "pool_size", OPT_INT, pg_pool_size, "4", 1, 256, NULL),
    OPT("postgres", "prepare", OPT_INT, pg_prepare, "1", 0, 1, NULL),
    OPT("redis", "host", OPT_STR, redis_host, "127.0.0.1", 0, 0, check_nonempty),
    OPT("redis", "port", OPT_INT, redis_port, "6379", 1, 65535, NULL),
    OPT("redis", "timeout_ms", OPT_INT, redis_timeout_ms, "50", 1, 60000, NULL),
    OPT("redis", "user", OPT_STR, redis_user, "", 0, 0, NULL),
    OPT("redis", "password", OPT_STR, redis_password, "", 0, 0, NULL),
    OPT("redis", "nodes", OPT_STR, redis_nodes, "", 0, 0, check_nodes),
    OPT("redis", "tls", OPT_INT, redis_tls, "0", 0, 1, NULL),
    OPT("redis", "tls_ca_file", OPT_STR, redis_tls_ca_file, "", 0, 0, NULL),
    OPT("redis", "tls_cert_file", OPT_STR, redis_tls_cert_file, "", 0, 0, NULL),
    OPT("redis", "tls_key_file", OPT_STR, redis_tls_key_file, "", 0, 0, NULL),
    OPT("redis", "tls_server_name", OPT_STR, redis_tls_server_name, "", 0, 0, NULL),
    OPT("amqp", "host", OPT_STR, amqp_host, "127.0.0.1", 0, 0, check_nonempty),
    OPT("amqp", "port", OPT_INT, amqp_port, "5672", 1, 65535, NULL),
    OPT("amqp", "user", OPT_STR, amqp_user, "guest", 0, 0, NULL),
    OPT("amqp", "password", OPT_STR, amqp_password, "guest", 0, 0, NULL),
    OPT("amqp", "vhost", OPT_STR, amqp_vhost, "/", 0, 0, NULL),
    OPT("amqp", "tls", OPT_INT, amqp_tls, "0", 0, 1, NULL),
    OPT("amqp", "tls_ca_file", OPT_STR, amqp_tls_ca_file, "", 0, 0, NULL),
    OPT("amqp", "tls_cert_file", OPT_STR, amqp_tls_cert_file, "", 0, 0, NULL),
    OPT("amqp", "tls_key_file", OPT_STR, amqp_tls_key_file, "", 0, 0, NULL),
    OPT("ratelimit", "on_store_error", OPT_STR, on_store_error, "closed", 0, 0, check_store_error),
    OPT("ratelimit", "processes", OPT_INT, local_processes, "4", 1, 4096, NULL),
    OPT("usage", "enabled", OPT_INT, usage_enabled, "1", 0, 1, NULL),
    OPT("usage", "journal_dir", OPT_STR, journal_dir, LOCALSTATEDIR "/lib/tollgate/journal", 0, 0,
        check_nonempty),
    OPT("usage", "journal_mb", OPT_INT, journal_mb, "64", 1, 65536, NULL),
    OPT("usage", "flush_ms", OPT_INT, flush_ms, "250", 10, 10000, NULL),
    OPT("usage", "prefetch", OPT_INT, prefetch, "2000", 1, 65535, NULL),
    OPT("usage", "aggregate_ms", OPT_INT, aggregate_ms, "3000", 10, 10000, NULL),
    OPT("usage", "close_grace_min", OPT_INT, close_grace_min, "60", 0, 44640, NULL),
    OPT("alerts", "allow_private", OPT_STR, alerts_allow_private, "", 0, 0, check_ranges),
    OPT("alerts", "timeout_ms", OPT_INT, alerts_timeout_ms, "10000", 100, 60000, NULL),
    OPT("alerts", "retry_for_s", OPT_INT, alerts_retry_for_s, "86400", 10, 604800, NULL),
    OPT("alerts", "in_flight", OPT_INT, alerts_in_flight, "32", 1, 1024, NULL),
    OPT("retention", "minute_days", OPT_INT, retention_minute_days, "35", 1, 36500, NULL),
    OPT("retention", "hour_days", OPT_INT, retention_hour_days, "400", 1, 36500, NULL),
    OPT("retention", "dedupe_days", OPT_INT, retention_dedupe_days, "40", CONFIG_DEDUPE_DAYS_MIN,
        3650, why_dedupe_days),
    OPT("retention", "alerts_days", OPT_INT, retention_alerts_days, "35", 1, 3650, NULL),
    OPT("retention", "logs_days", OPT_INT, retention_logs_days, "30", 0, 3650, NULL),
    OPT("ctl", "url", OPT_STR, ctl_url, "", 0, 0, check_url),
    OPT("ctl", "token_file", OPT_STR, ctl_token_file, "", 0, 0, NULL),
    OPT("ctl", "ca_file", OPT_STR, ctl_ca_file, "", 0, 0, NULL),
};

static int set_value(struct config *cfg, const struct option *o, const char *value,
                     const char *where, struct api_error *err)
{
    char *base = (char *)cfg;
    if (o->type == OPT_INT) {
        int64_t v;
        if (parse_int64(value, o->min, o->max, &v) != 0) {
            /* An integer's check gives the reason for its range. */
            api_error_set(err, ERR_INTERNAL, NULL, "%s: %s.%s must be an integer in %lld..%lld%s%s",
                          where, o->section, o->key, (long long)o->min, (long long)o->max,
                          o->check ? " " : "", o->check ? o->check(value) : "");
            return -1;
        }
        *(int64_t *)(base + o->offset) = v;
        return 0;
    }
    if (o->check) {
        const char *why = o->check(value);
        if (why) {
            api_error_set(err, ERR_INTERNAL, NULL, "%s: %s.%s %s", where, o->section, o->key, why);
            return -1;
        }
    }
    char **slot = (char **)(base + o->offset);
    free(*slot);
    *slot = xstrdup(value);
    return 0;
}

static const struct option *find_option(const char *section, const char *key)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(options); i++)
        if (strcmp(options[i].section, section) == 0 && strcmp(options[i].key, key) == 0)
            return &options[i];
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int parse_text(struct config *cfg, const char *name, const char *text, struct api_error *err)
{
    char section[64] = "";
    char *copy = xstrdup(text);
    char *save = NULL;
    int lineno = 0, rc = 0;
    /* strtok_r would skip empty lines and break the numbering. */
    for (char *line = copy; line && rc == 0; line = save) {
        save = strchr(line, '\n');
        if (save)
            *save++ = '\0';
        lineno++;
        char where[160];
        snprintf(where, sizeof where, "%s:%d", name, lineno);
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end || end[1] != '\0' || end - s - 1 >= (long)sizeof section) {
                api_error_set(err, ERR_INTERNAL, NULL, "%s: malformed section header", where);
                rc = -1;
                break;
            }
            *end = '\0';
            strlcpy_tg(section, trim(s + 1), sizeof section);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            api_error_set(err, ERR_INTERNAL, NULL, "%s: expected 'key = value'", where);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        const struct option *o = find_option(section, key);
        if (!o) {
            api_error_set(err, ERR_INTERNAL, NULL, "%s: unknown setting '%s' in section [%s]", where, key, section);
            rc = -1;
            break;
        }
        rc = set_value(cfg, o, value, where, err);
    }
    free(copy);
    return rc;
}

static int readable_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    fclose(f);
    return 0;
}

/* The TLS settings of a client ([redis], [amqp]) that only make sense
 * together, found at start rather than at the first connection.  The files
 * are opened here; whether they hold what they should is for whoever builds
 * the TLS context. */
static int check_tls(const char *name, const char *section, int64_t tls, const char *ca,
                     const char *cert, const char *key, struct api_error *err)
{
    const char *why = NULL, *what = NULL;
    if (!tls) {
        return 0;
    } else if (!ca[0]) {
        what = "tls_ca_file";
        why = "is required when tls = 1";
    } else if (readable_file(ca) != 0) {
        what = "tls_ca_file";
        why = "cannot be read";
    } else if (!cert[0] != !key[0]) {
        what = cert[0] ? "tls_key_file" : "tls_cert_file";
        why = "is required with the other (a client certificate and its key come together)";
    } else if (cert[0] && readable_file(cert) != 0) {
        what = "tls_cert_file";
        why = "cannot be read";
    } else if (key[0] && readable_file(key) != 0) {
        what = "tls_key_file";
        why = "cannot be read";
    }
    if (!why)
        return 0;
    api_error_set(err, ERR_INTERNAL, NULL, "%s: %s.%s %s", name, section, what, why);
    return -1;
}

/* [redis] and [amqp]: logins and transports. */
static int check_clients(const struct config *cfg, const char *name, struct api_error *err)
{
    if (cfg->redis_user[0] && !cfg->redis_password[0]) {
        api_error_set(err, ERR_INTERNAL, NULL, "%s: redis.user needs a password", name);
        return -1;
    }
    if (check_tls(name, "redis", cfg->redis_tls, cfg->redis_tls_ca_file,
                  cfg->redis_tls_cert_file, cfg->redis_tls_key_file, err) != 0)
        return -1;
    return check_tls(name, "amqp", cfg->amqp_tls, cfg->amqp_tls_ca_file, cfg->amqp_tls_cert_file,
                     cfg->amqp_tls_key_file, err);
}

/* [retention]: what the range of each setting cannot say alone. */
static int check_retention(const struct config *cfg, const char *name, struct api_error *err)
{
    if (cfg->retention_hour_days < cfg->retention_minute_days) {
        api_error_set(err, ERR_INTERNAL, NULL,
                      "%s: retention.hour_days (%lld) must be at least retention.minute_days "
                      "(%lld): the hourly rollup is what is left of usage once its minutes are "
                      "gone", name, (long long)cfg->retention_hour_days,
                      (long long)cfg->retention_minute_days);
        return -1;
    }
    return 0;
}

/* The key-hashing secrets in the order they are tried: the current one,
 * then the previous ones as listed. */
static int build_secrets(struct config *cfg, const char *name, struct api_error *err)
{
    struct config_secrets *s = &cfg->secrets;
    s->n = 0;
    s->id[0] = xstrdup(cfg->hmac_secret_id);
    s->secret[0] = xstrdup(cfg->hmac_secret);
    s->n = 1;
    const char *v = cfg->hmac_previous;
    for (const char *p = v + strspn(v, " \t"); *p; p += strspn(p, " \t")) {
        size_t len = strcspn(p, " \t");
        const char *colon = memchr(p, ':', len);
        char *id = xstrndup(p, (size_t)(colon - p));
        for (size_t i = 0; i < s->n; i++) {
            if (strcmp(s->id[i], id) == 0) {
                api_error_set(err, ERR_INTERNAL, NULL,
                              "%s: security.hmac_previous names secret id '%s' twice (or the "
                              "current one)", name, id);
                free(id);
                return -1;
            }
        }
        s->id[s->n] = id;
        s->secret[s->n] = xstrndup(colon + 1, len - (size_t)(colon - p) - 1);
        s->n++;
        p += len;
    }
    return 0;
}

static int apply_env(struct config *cfg, char *const *envp, struct api_error *err)
{
    for (size_t i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], "TOLLGATE_", 9) != 0)
            continue;
        const char *eq = strchr(envp[i], '=');
        if (!eq)
            continue;
        for (size_t k = 0; k < TG_ARRAY_LEN(options); k++) {
            char name[96];
            snprintf(name, sizeof name, "TOLLGATE_%s_%s", options[k].section, options[k].key);
            for (char *c = name; *c; c++)
                *c = (char)toupper((unsigned char)*c);
            if (strlen(name) == (size_t)(eq - envp[i]) &&
                strncmp(envp[i], name, (size_t)(eq - envp[i])) == 0) {
                if (set_value(cfg, &options[k], eq + 1, name, err) != 0)
                    return -1;
            }
        }
    }
    return 0;
}

int config_load_string(struct config *cfg, const char *name, const char *text,
                       char *const *envp, struct api_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < TG_ARRAY_LEN(options); i++)
        if (options[i].def && set_value(cfg, &options[i], options[i].def, "default", err) != 0)
            goto fail;
    if (parse_text(cfg, name, text, err) != 0 || apply_env(cfg, envp, err) != 0)
        goto fail;
    for (size_t i = 0; i < TG_ARRAY_LEN(options); i++) {
        const struct option *o = &options[i];
        if (o->type == OPT_STR && *(char **)((char *)cfg + o->offset) == NULL) {
            api_error_set(err, ERR_INTERNAL, NULL, "%s: required setting %s.%s is missing", name, o->section, o->key);
            goto fail;
        }
    }
    /* Validated on the way in: parsed once here for the code to read. */
    (void)store_error_parse(cfg->on_store_error, &cfg->store_error);
    if (check_clients(cfg, name, err) != 0 || check_retention(cfg, name, err) != 0 ||
        build_secrets(cfg, name, err) != 0)
        goto fail;
    return 0;
fail:
    config_fini(cfg);
    memset(cfg, 0, sizeof *cfg);
    return -1;
}

int config_load(struct config *cfg, const char *path, char *const *envp, struct api_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(path, "r");
    if (!f) {
        api_error_set(err, ERR_INTERNAL, NULL, "%s: cannot open configuration file", path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *text = xmalloc(cap);
    size_t n;
    while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            if (cap >= (1u << 20)) {
                api_error_set(err, ERR_INTERNAL, NULL, "%s: configuration file larger than 1 MiB", path);
                free(text);
                fclose(f);
                return -1;
            }
            cap *= 2;
            text = xrealloc(text, cap);
        }
    }
    fclose(f);
    text[len] = '\0';
    int rc = config_load_string(cfg, path, text, envp, err);
    free(text);
    return rc;
}

void config_fini(struct config *cfg)
{
    for (size_t i = 0; i < cfg->secrets.n; i++) {
        free(cfg->secrets.id[i]);
        free(cfg->secrets.secret[i]);
    }
    cfg->secrets.n = 0;
    for (size_t i = 0; i < TG_ARRAY_LEN(options); i++) {
        if (options[i].type == OPT_STR) {
            char **slot = (char **)((char *)cfg + options[i].offset);
            free(*slot);
            *slot = NULL;
        }
    }
}
