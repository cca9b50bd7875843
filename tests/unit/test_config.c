/* Unit tests of config: defaults, the file syntax, environment overrides,
 * validation with "file:line: message" errors, and loading from a file. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "unit.h"

#define SECRET "0123456789abcdef0123456789abcdef" /* exactly 32 characters */

/* The smallest valid file: the two required settings. */
static const char MINIMAL[] =
    "[security]\n"
    "hmac_secret = " SECRET "\n"
    "[postgres]\n"
    "conninfo = host=/run/postgresql dbname=tollgate\n";

static char *const NO_ENV[] = {NULL};

/* Loads MINIMAL followed by extra; returns config_load_string's result. */
static int load_with(struct config *cfg, const char *extra, char *const *envp,
                     struct api_error *err)
{
    char text[4096];
    snprintf(text, sizeof text, "%s%s", MINIMAL, extra);
    return config_load_string(cfg, "t.conf", text, envp, err);
}

/* True when cfg holds nothing: every pointer NULL and every number 0. */
static int config_is_zeroed(const struct config *cfg)
{
    struct config zero;
    memset(&zero, 0, sizeof zero);
    return memcmp(cfg, &zero, sizeof zero) == 0;
}

static void test_defaults(void)
{
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL_FATAL(config_load_string(&cfg, "t.conf", MINIMAL, NO_ENV, &err), 0);
    CU_ASSERT_EQUAL(cfg.workers, 4);
    CU_ASSERT_STRING_EQUAL(cfg.log_level, "info");
    CU_ASSERT_STRING_EQUAL(cfg.log_file, "");
    CU_ASSERT_EQUAL(cfg.cache_ttl_ms, 500);
    CU_ASSERT_STRING_EQUAL(cfg.hmac_secret, SECRET);
    CU_ASSERT_STRING_EQUAL(cfg.key_prefix, "tg");
    CU_ASSERT_STRING_EQUAL(cfg.pg_conninfo, "host=/run/postgresql dbname=tollgate");
    CU_ASSERT_EQUAL(cfg.pg_pool_size, 4);
    CU_ASSERT_STRING_EQUAL(cfg.redis_host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg.redis_port, 6379);
    CU_ASSERT_EQUAL(cfg.redis_timeout_ms, 50);
    CU_ASSERT_STRING_EQUAL(cfg.redis_password, "");
    CU_ASSERT_STRING_EQUAL(cfg.amqp_host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg.amqp_port, 5672);
    CU_ASSERT_STRING_EQUAL(cfg.amqp_user, "guest");
    CU_ASSERT_STRING_EQUAL(cfg.amqp_password, "guest");
    CU_ASSERT_STRING_EQUAL(cfg.amqp_vhost, "/");
    CU_ASSERT_STRING_EQUAL(cfg.on_store_error, "closed");
    CU_ASSERT_EQUAL(cfg.store_error, STORE_ERROR_CLOSED);
    config_fini(&cfg);
    CU_ASSERT_PTR_NULL(cfg.hmac_secret);
    CU_ASSERT_PTR_NULL(cfg.log_level);
    config_fini(&cfg); /* twice is harmless */
}

static void test_file_values(void)
{
    static const char text[] =
        "# Tollgate\n"
        "; another comment style\n"
        "\n"
        "[server]\n"
        "workers=12\n"
        "  log_level   =   debug   \n"
        "log_file = /var/log/tollgate.log\n"
        "cache_ttl_ms = 0\n"
        "[ security ]\n"
        "hmac_secret = " SECRET SECRET "\n"
        "key_prefix = acme2\n"
        "[postgres]\n"
        "conninfo = dbname=x user=y\n"
        "pool_size = 256\n"
        "[redis]\n"
        "host = redis.internal\n"
        "port = 6380\n"
        "timeout_ms = 60000\n"
        "password = p=q\n"
        "[amqp]\n"
        "host = mq\n"
        "port = 1\n"
        "user = tg\n"
        "password = s\n"
        "vhost = /tg\n"
        "[ratelimit]\n"
        "on_store_error = open\n";
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL_FATAL(config_load_string(&cfg, "t.conf", text, NO_ENV, &err), 0);
    CU_ASSERT_EQUAL(cfg.workers, 12);
    CU_ASSERT_STRING_EQUAL(cfg.log_level, "debug");
    CU_ASSERT_STRING_EQUAL(cfg.log_file, "/var/log/tollgate.log");
    CU_ASSERT_EQUAL(cfg.cache_ttl_ms, 0);
    CU_ASSERT_STRING_EQUAL(cfg.hmac_secret, SECRET SECRET);
    CU_ASSERT_STRING_EQUAL(cfg.key_prefix, "acme2");
    CU_ASSERT_STRING_EQUAL(cfg.pg_conninfo, "dbname=x user=y");
    CU_ASSERT_EQUAL(cfg.pg_pool_size, 256);
    CU_ASSERT_STRING_EQUAL(cfg.redis_host, "redis.internal");
    CU_ASSERT_EQUAL(cfg.redis_port, 6380);
    CU_ASSERT_EQUAL(cfg.redis_timeout_ms, 60000);
    CU_ASSERT_STRING_EQUAL(cfg.redis_password, "p=q"); /* split at the first '=' */
    CU_ASSERT_STRING_EQUAL(cfg.amqp_host, "mq");
    CU_ASSERT_EQUAL(cfg.amqp_port, 1);
    CU_ASSERT_STRING_EQUAL(cfg.amqp_user, "tg");
    CU_ASSERT_STRING_EQUAL(cfg.amqp_password, "s");
    CU_ASSERT_STRING_EQUAL(cfg.amqp_vhost, "/tg");
    CU_ASSERT_STRING_EQUAL(cfg.on_store_error, "open");
    CU_ASSERT_EQUAL(cfg.store_error, STORE_ERROR_OPEN);
    CU_ASSERT_STRING_EQUAL(store_error_name(STORE_ERROR_LOCAL), "local");
    config_fini(&cfg);
}

static void test_crlf_and_repeats(void)
{
    static const char text[] =
        "[security]\r\n"
        "hmac_secret = " SECRET "\r\n"
        "[postgres]\r\n"
        "conninfo = a\r\n"
        "conninfo = b\r\n"; /* the last one wins */
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL_FATAL(config_load_string(&cfg, "t.conf", text, NO_ENV, &err), 0);
    CU_ASSERT_STRING_EQUAL(cfg.hmac_secret, SECRET);
    CU_ASSERT_STRING_EQUAL(cfg.pg_conninfo, "b");
    config_fini(&cfg);
}

static void test_ctl_section(void)
{
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL_FATAL(load_with(&cfg, "", NO_ENV, &err), 0);
    CU_ASSERT_STRING_EQUAL(cfg.ctl_url, "");
    CU_ASSERT_STRING_EQUAL(cfg.ctl_token_file, "");
    CU_ASSERT_STRING_EQUAL(cfg.ctl_ca_file, "");
    config_fini(&cfg);
    char *const env[] = {"TOLLGATE_CTL_URL=https://api.internal", "TOLLGATE_CTL=build/x", NULL};
    CU_ASSERT_EQUAL_FATAL(load_with(&cfg, "[ctl]\nurl = http://127.0.0.1:8080\n"
                                          "token_file = /etc/tollgate/ctl-token\n",
                                    env, &err),
                          0);
    CU_ASSERT_STRING_EQUAL(cfg.ctl_url, "https://api.internal");
    CU_ASSERT_STRING_EQUAL(cfg.ctl_token_file, "/etc/tollgate/ctl-token");
    config_fini(&cfg);
    CU_ASSERT_EQUAL(load_with(&cfg, "[ctl]\nurl = api.internal\n", NO_ENV, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "ctl.url must start with http:// or https://"));
    /* A token is not a setting: only the file that holds it is. */
    CU_ASSERT_EQUAL(load_with(&cfg, "[ctl]\ntoken = tgadm_x\n", NO_ENV, &err), -1);
}

static void test_env_override(void)
{
    char *const env[] = {"PATH=/usr/bin", "TOLLGATE_SERVER_WORKERS=8",
                         "TOLLGATE_REDIS_HOST=cache.internal", "TOLLGATE_NOT_A_SETTING=1",
                         "TOLLGATE_SERVER_WORKERS_EXTRA=9", "TOLLGATE_SERVER_WORK=99",
                         "TOLLGATE_BROKEN", NULL};
    struct config cfg;
    struct api_error err = {0};
    /* The environment beats the file. */
    CU_ASSERT_EQUAL_FATAL(load_with(&cfg, "[server]\nworkers = 2\n", env, &err), 0);
    CU_ASSERT_EQUAL(cfg.workers, 8);
    CU_ASSERT_STRING_EQUAL(cfg.redis_host, "cache.internal");
    config_fini(&cfg);
    CU_ASSERT_EQUAL_FATAL(config_load_string(&cfg, "t.conf", MINIMAL, NULL, &err), 0);
    CU_ASSERT_EQUAL(cfg.workers, 4); /* a NULL environment is an empty one */
    config_fini(&cfg);
}

static void test_env_supplies_required(void)
{
    char *const env[] = {"TOLLGATE_SECURITY_HMAC_SECRET=" SECRET,
                         "TOLLGATE_POSTGRES_CONNINFO=dbname=env", NULL};
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL_FATAL(config_load_string(&cfg, "t.conf", "", env, &err), 0);
    CU_ASSERT_STRING_EQUAL(cfg.hmac_secret, SECRET);
    CU_ASSERT_STRING_EQUAL(cfg.pg_conninfo, "dbname=env");
    config_fini(&cfg);
}

static void test_env_bad_value(void)
{
    char *const env[] = {"TOLLGATE_SERVER_WORKERS=0", NULL};
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(load_with(&cfg, "", env, &err), -1);
    CU_ASSERT_EQUAL(strncmp(err.message, "TOLLGATE_SERVER_WORKERS: ", 25), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "server.workers"));
    char *const env2[] = {"TOLLGATE_SECURITY_KEY_PREFIX=Bad", NULL};
    CU_ASSERT_EQUAL(load_with(&cfg, "", env2, &err), -1);
    CU_ASSERT_EQUAL(strncmp(err.message, "TOLLGATE_SECURITY_KEY_PREFIX: ", 30), 0);
}

static void test_unknown_key_line(void)
{
    static const char text[] =
        "# comment\n"
        "\n"
        "[server]\n"
        "workers = 4\n"
        "wrokers = 5\n";
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(config_load_string(&cfg, "site.conf", text, NO_ENV, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.message, "site.conf:5: unknown setting 'wrokers' in section [server]");
}

static void test_unknown_section_and_bare_key(void)
{
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(config_load_string(&cfg, "a.conf", "workers = 4\n", NO_ENV, &err), -1);
    CU_ASSERT_EQUAL(strncmp(err.message, "a.conf:1: ", 10), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "workers"));
    CU_ASSERT_EQUAL(config_load_string(&cfg, "a.conf", "\n[sever]\nworkers = 4\n", NO_ENV, &err),
                    -1);
    CU_ASSERT_EQUAL(strncmp(err.message, "a.conf:3: ", 10), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "sever"));
}

static void test_bad_int_line(void)
{
    struct config cfg;
    struct api_error err = {0};
    /* MINIMAL has 4 lines: the bad value is on line 6. */
    CU_ASSERT_EQUAL(load_with(&cfg, "[server]\nworkers = four\n", NO_ENV, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.message, "t.conf:6: server.workers must be an integer in 1..256");
    CU_ASSERT_EQUAL(load_with(&cfg, "[server]\nworkers = +4\n", NO_ENV, &err), -1);
    CU_ASSERT_EQUAL(strncmp(err.message, "t.conf:6: ", 10), 0);
    CU_ASSERT_EQUAL(load_with(&cfg, "[server]\nworkers = 4x\n", NO_ENV, &err), -1);
    CU_ASSERT_EQUAL(strncmp(err.message, "t.conf:6: ", 10), 0);
    CU_ASSERT_EQUAL(load_with(&cfg, "[server]\nworkers =\n", NO_ENV, &err), -1);
    CU_ASSERT_EQUAL(strncmp(err.message, "t.conf:6: ", 10), 0);
}

/* Loads MINIMAL plus "[section]\nkey = value\n" and returns the result. */
static int try_value(const char *section, const char *key, const char *value)
{
    char extra[512];
    snprintf(extra, sizeof extra, "[%s]\n%s = %s\n", section, key, value);
    struct config cfg;
    struct api_error err = {0};
    int rc = load_with(&cfg, extra, NO_ENV, &err);
    if (rc == 0)
        config_fini(&cfg);
    return rc;
}

static void test_int_bounds(void)
{
    CU_ASSERT_EQUAL(try_value("server", "workers", "0"), -1);
    CU_ASSERT_EQUAL(try_value("server", "workers", "1"), 0);
    CU_ASSERT_EQUAL(try_value("server", "workers", "256"), 0);
    CU_ASSERT_EQUAL(try_value("server", "workers", "257"), -1);
    CU_ASSERT_EQUAL(try_value("server", "cache_ttl_ms", "-1"), -1);
    CU_ASSERT_EQUAL(try_value("server", "cache_ttl_ms", "1000"), 0);
    CU_ASSERT_EQUAL(try_value("server", "cache_ttl_ms", "1001"), -1);
    CU_ASSERT_EQUAL(try_value("postgres", "pool_size", "0"), -1);
    CU_ASSERT_EQUAL(try_value("postgres", "pool_size", "257"), -1);
    CU_ASSERT_EQUAL(try_value("redis", "port", "0"), -1);
    CU_ASSERT_EQUAL(try_value("redis", "port", "65535"), 0);
    CU_ASSERT_EQUAL(try_value("redis", "port", "65536"), -1);
    CU_ASSERT_EQUAL(try_value("redis", "timeout_ms", "0"), -1);
    CU_ASSERT_EQUAL(try_value("redis", "timeout_ms", "1"), 0);
    CU_ASSERT_EQUAL(try_value("redis", "timeout_ms", "60001"), -1);
    CU_ASSERT_EQUAL(try_value("amqp", "port", "65536"), -1);
    CU_ASSERT_EQUAL(try_value("amqp", "port", "99999999999999999999"), -1);
}

static void test_string_checks(void)
{
    CU_ASSERT_EQUAL(try_value("server", "log_level", "warn"), 0);
    CU_ASSERT_EQUAL(try_value("server", "log_level", "error"), 0);
    CU_ASSERT_EQUAL(try_value("server", "log_level", "verbose"), -1);
    CU_ASSERT_EQUAL(try_value("server", "log_level", "INFO"), -1);
    CU_ASSERT_EQUAL(try_value("security", "key_prefix", "a"), 0);
    CU_ASSERT_EQUAL(try_value("security", "key_prefix", "abcdefghij012345"), 0); /* 16 */
    CU_ASSERT_EQUAL(try_value("security", "key_prefix", "abcdefghij0123456"), -1); /* 17 */
    CU_ASSERT_EQUAL(try_value("security", "key_prefix", ""), -1);
    CU_ASSERT_EQUAL(try_value("security", "key_prefix", "Tg"), -1);
    CU_ASSERT_EQUAL(try_value("security", "key_prefix", "t_g"), -1);
    CU_ASSERT_EQUAL(try_value("ratelimit", "on_store_error", "open"), 0);
    CU_ASSERT_EQUAL(try_value("ratelimit", "on_store_error", "closed"), 0);
    CU_ASSERT_EQUAL(try_value("ratelimit", "on_store_error", "local"), 0);
    CU_ASSERT_EQUAL(try_value("ratelimit", "processes", "1"), 0);
    CU_ASSERT_EQUAL(try_value("ratelimit", "processes", "4096"), 0);
    CU_ASSERT_EQUAL(try_value("ratelimit", "processes", "0"), -1);
    CU_ASSERT_EQUAL(try_value("ratelimit", "processes", "4097"), -1);
    CU_ASSERT_EQUAL(try_value("ratelimit", "on_store_error", "maybe"), -1);
    CU_ASSERT_EQUAL(try_value("postgres", "conninfo", ""), -1);
    CU_ASSERT_EQUAL(try_value("redis", "host", ""), -1);
    CU_ASSERT_EQUAL(try_value("amqp", "host", ""), -1);
}

static void test_secret_length(void)
{
    static const char short_secret[] =
        "[postgres]\n"
        "conninfo = x\n"
        "[security]\n"
        "hmac_secret = 0123456789abcdef0123456789abcde\n"; /* 31 characters */
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(config_load_string(&cfg, "s.conf", short_secret, NO_ENV, &err), -1);
    CU_ASSERT_EQUAL(strncmp(err.message, "s.conf:4: security.hmac_secret ", 31), 0);
    CU_ASSERT_EQUAL(try_value("security", "hmac_secret", SECRET), 0);
}

/* The current secret first, then the previous ones in the order written. */
static void test_secret_set(void)
{
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL_FATAL(load_with(&cfg, "", NO_ENV, &err), 0);
    CU_ASSERT_EQUAL(cfg.secrets.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg.secrets.id[0], "1");
    CU_ASSERT_STRING_EQUAL(cfg.secrets.secret[0], SECRET);
    config_fini(&cfg);
    CU_ASSERT_EQUAL_FATAL(load_with(&cfg,
                                    "[security]\nhmac_secret_id = b2\n"
                                    "hmac_previous = \ta1:" SECRET "x  zz:" SECRET "y \n",
                                    NO_ENV, &err),
                          0);
    CU_ASSERT_EQUAL_FATAL(cfg.secrets.n, 3);
    CU_ASSERT_STRING_EQUAL(cfg.secrets.id[0], "b2");
    CU_ASSERT_STRING_EQUAL(cfg.secrets.id[1], "a1");
    CU_ASSERT_STRING_EQUAL(cfg.secrets.secret[1], SECRET "x");
    CU_ASSERT_STRING_EQUAL(cfg.secrets.id[2], "zz");
    CU_ASSERT_STRING_EQUAL(cfg.secrets.secret[2], SECRET "y");
    config_fini(&cfg);
    /* from the environment too */
    char *const env[] = {(char *)"TOLLGATE_SECURITY_HMAC_PREVIOUS=old:" SECRET, NULL};
    CU_ASSERT_EQUAL_FATAL(load_with(&cfg, "", env, &err), 0);
    CU_ASSERT_EQUAL(cfg.secrets.n, 2);
    config_fini(&cfg);
    static const char *const bad[] = {
        "x",                                 /* no id */
        ":" SECRET,                          /* empty id */
        "A:" SECRET,                         /* id not [a-z0-9] */
        "a:short",                           /* secret under 32 characters */
        "a:" SECRET " a:" SECRET,            /* an id twice */
        "1:" SECRET,                         /* the current id */
        "a:" SECRET " b:" SECRET " c:" SECRET " d:" SECRET " e:" SECRET " f:" SECRET
        " g:" SECRET " h:" SECRET,           /* 8 besides the current one */
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        char extra[1024];
        snprintf(extra, sizeof extra, "[security]\nhmac_previous = %s\n", bad[i]);
        CU_ASSERT_EQUAL(load_with(&cfg, extra, NO_ENV, &err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "hmac_previous"));
    }
    CU_ASSERT_EQUAL(try_value("security", "audit_secret", "short"), -1);
    CU_ASSERT_EQUAL(try_value("security", "audit_secret", SECRET), 0);
    CU_ASSERT_EQUAL(try_value("security", "audit_secret", ""), 0);
    CU_ASSERT_EQUAL(try_value("security", "hmac_secret_id", "Bad"), -1);
    CU_ASSERT_EQUAL(try_value("security", "hmac_secret_id", "2026a"), 0);
}

static void test_missing_required(void)
{
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(
        config_load_string(&cfg, "m.conf", "[postgres]\nconninfo = x\n", NO_ENV, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.message, "m.conf: required setting security.hmac_secret is missing");
    CU_ASSERT_EQUAL(config_load_string(&cfg, "m.conf", "[security]\nhmac_secret = " SECRET "\n",
                                       NO_ENV, &err),
                    -1);
    CU_ASSERT_STRING_EQUAL(err.message, "m.conf: required setting postgres.conninfo is missing");
}

static void test_syntax_errors(void)
{
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(load_with(&cfg, "[server\n", NO_ENV, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.message, "t.conf:5: malformed section header");
    CU_ASSERT_EQUAL(load_with(&cfg, "[server] extra\n", NO_ENV, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.message, "t.conf:5: malformed section header");
    CU_ASSERT_EQUAL(load_with(&cfg, "\n\n[server]\nworkers 4\n", NO_ENV, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.message, "t.conf:8: expected 'key = value'");
    /* A section name longer than the parser keeps is refused, not cut. */
    char extra[200];
    memset(extra, 0, sizeof extra);
    extra[0] = '[';
    memset(extra + 1, 's', 100);
    strcat(extra, "]\n");
    CU_ASSERT_EQUAL(load_with(&cfg, extra, NO_ENV, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.message, "t.conf:5: malformed section header");
}

static void test_load_file(void)
{
    char path[256];
    CU_ASSERT_EQUAL_FATAL(unit_tmpfile(path, sizeof path), 0);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    /* Enough comment lines to make the reader grow its buffer several times. */
    for (int i = 0; i < 2000; i++)
        fprintf(f, "# padding line %d of the configuration file\n", i);
    fprintf(f, "%s[server]\nworkers = 7\n", MINIMAL);
    fclose(f);
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(config_load(&cfg, path, NO_ENV, &err), 0);
    CU_ASSERT_EQUAL(cfg.workers, 7);
    CU_ASSERT_STRING_EQUAL(cfg.hmac_secret, SECRET);
    config_fini(&cfg);

    /* Errors name the file and the line. */
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "%s[server]\nworkers = 0\n", MINIMAL);
    fclose(f);
    CU_ASSERT_EQUAL(config_load(&cfg, path, NO_ENV, &err), -1);
    char want[300];
    snprintf(want, sizeof want, "%s:6: ", path);
    CU_ASSERT_EQUAL(strncmp(err.message, want, strlen(want)), 0);
    unlink(path);
}

static void test_load_file_too_large(void)
{
    char path[256];
    CU_ASSERT_EQUAL_FATAL(unit_tmpfile(path, sizeof path), 0);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[1024];
    memset(line, '#', sizeof line - 1);
    line[sizeof line - 2] = '\n';
    line[sizeof line - 1] = '\0';
    for (int i = 0; i < 2100; i++) /* a little over 2 MiB */
        fputs(line, f);
    fclose(f);
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(config_load(&cfg, path, NO_ENV, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "larger than 1 MiB"));
    unlink(path);
}

static void test_load_missing_file(void)
{
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(config_load(&cfg, "/nonexistent/tollgate.conf", NO_ENV, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.message, "/nonexistent/tollgate.conf: cannot open configuration file");
}

/* The contract: on error cfg is left zeroed, whichever step failed. */
static void test_error_leaves_config_zeroed(void)
{
    char *const bad_env[] = {"TOLLGATE_REDIS_PORT=0", NULL};
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(load_with(&cfg, "[server]\nworkers = 0\n", NO_ENV, &err), -1);
    CU_ASSERT(config_is_zeroed(&cfg));
    CU_ASSERT_EQUAL(load_with(&cfg, "", bad_env, &err), -1);
    CU_ASSERT(config_is_zeroed(&cfg));
    CU_ASSERT_EQUAL(config_load_string(&cfg, "m.conf", "", NO_ENV, &err), -1);
    CU_ASSERT(config_is_zeroed(&cfg));
    CU_ASSERT_EQUAL(config_load(&cfg, "/nonexistent/tollgate.conf", NO_ENV, &err), -1);
    CU_ASSERT(config_is_zeroed(&cfg));
}

/* AMQPS settings that cannot work are refused at start with a sentence
 * naming the setting; the migrate role's conninfo is optional. */
static void test_amqp_tls(void)
{
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL(load_with(&cfg, "[amqp]\ntls = 1\n", NO_ENV, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "amqp.tls_ca_file is required"));
    CU_ASSERT_EQUAL(
        load_with(&cfg, "[amqp]\ntls = 1\ntls_ca_file = /nonexistent/ca.crt\n", NO_ENV, &err),
        -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "amqp.tls_ca_file cannot be read"));
    CU_ASSERT_EQUAL(load_with(&cfg,
                              "[amqp]\ntls = 1\ntls_ca_file = /etc/hostname\n"
                              "tls_cert_file = /etc/hostname\n",
                              NO_ENV, &err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "amqp.tls_key_file is required"));
    CU_ASSERT_EQUAL(load_with(&cfg, "[amqp]\ntls = 2\n", NO_ENV, &err), -1);
    /* any readable file passes here; the handshake checks what it holds */
    CU_ASSERT_EQUAL(load_with(&cfg,
                              "[amqp]\ntls = 1\ntls_ca_file = /etc/hostname\n"
                              "[postgres]\nmigrate_conninfo = dbname=tollgate user=owner\n",
                              NO_ENV, &err),
                    0);
    CU_ASSERT_EQUAL(cfg.amqp_tls, 1);
    CU_ASSERT_STRING_EQUAL(cfg.pg_migrate_conninfo, "dbname=tollgate user=owner");
    config_fini(&cfg);
    CU_ASSERT_EQUAL(load_with(&cfg, "", NO_ENV, &err), 0);
    CU_ASSERT_EQUAL(cfg.amqp_tls, 0);
    CU_ASSERT_STRING_EQUAL(cfg.pg_migrate_conninfo, "");
    config_fini(&cfg);
}

/* [redis]: TLS and login settings are checked together, files opened. */
static void test_retention(void)
{
    struct config cfg;
    struct api_error err = {0};
    CU_ASSERT_EQUAL_FATAL(load_with(&cfg, "", NO_ENV, &err), 0);
    CU_ASSERT_EQUAL(cfg.retention_minute_days, 35);
    CU_ASSERT_EQUAL(cfg.retention_hour_days, 400);
    CU_ASSERT_EQUAL(cfg.retention_dedupe_days, 40);
    CU_ASSERT_EQUAL(cfg.retention_alerts_days, 35);
    CU_ASSERT_EQUAL(cfg.retention_logs_days, 30);
    config_fini(&cfg);

    CU_ASSERT_EQUAL_FATAL(load_with(&cfg, "[retention]\nminute_days = 60\nhour_days = 60\n"
                                          "dedupe_days = 36\nalerts_days = 1\nlogs_days = 0\n",
                                    NO_ENV, &err), 0);
    CU_ASSERT_EQUAL(cfg.retention_minute_days, 60);
    CU_ASSERT_EQUAL(cfg.retention_hour_days, 60);
    CU_ASSERT_EQUAL(cfg.retention_dedupe_days, 36);
    CU_ASSERT_EQUAL(cfg.retention_alerts_days, 1);
    CU_ASSERT_EQUAL(cfg.retention_logs_days, 0);
    config_fini(&cfg);

    /* Hours may not go before the minutes they sum up. */
    CU_ASSERT_EQUAL(load_with(&cfg, "[retention]\nminute_days = 100\nhour_days = 99\n", NO_ENV,
                              &err), -1);
    CU_ASSERT_STRING_EQUAL(err.message, "t.conf: retention.hour_days (99) must be at least "
                                        "retention.minute_days (100): the hourly rollup is what "
                                        "is left of usage once its minutes are gone");
    CU_ASSERT_TRUE(config_is_zeroed(&cfg));
    char *env_low[] = {"TOLLGATE_RETENTION_MINUTE_DAYS=500", NULL};
    CU_ASSERT_EQUAL(load_with(&cfg, "", env_low, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "retention.hour_days (400)"));

    /* The deduplication ids outlive any replay the API still accepts: the
     * error says why. */
    CU_ASSERT_EQUAL(load_with(&cfg, "[retention]\ndedupe_days = 35\n", NO_ENV, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "t.conf:6: retention.dedupe_days must be an "
                                               "integer in 36..3650 (POST /v1/usage/events"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "replay count twice)"));
    static const char *const bad[] = {
        "[retention]\nminute_days = 0\n", "[retention]\nhour_days = 36501\n",
        "[retention]\nalerts_days = 0\n", "[retention]\nlogs_days = -1\n",
        "[retention]\nlogs_days = 3651\n", "[retention]\nminute_days = 3x\n",
        "[retention]\nkeep_days = 3\n",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        CU_ASSERT_EQUAL(load_with(&cfg, bad[i], NO_ENV, &err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "t.conf:6: "));
        CU_ASSERT_TRUE(config_is_zeroed(&cfg));
    }
}

static void test_redis_tls(void)
{
    struct config cfg;
    struct api_error err = {0};
    char path[128], extra[512];
    CU_ASSERT_EQUAL_FATAL(unit_tmpfile(path, sizeof path), 0);
    CU_ASSERT_EQUAL_FATAL(load_with(&cfg, "", NO_ENV, &err), 0);
    CU_ASSERT_EQUAL(cfg.redis_tls, 0);
    CU_ASSERT_STRING_EQUAL(cfg.redis_user, "");
    CU_ASSERT_STRING_EQUAL(cfg.redis_tls_server_name, "");
    config_fini(&cfg);

    snprintf(extra, sizeof extra,
             "[redis]\ntls = 1\ntls_ca_file = %s\ntls_cert_file = %s\ntls_key_file = %s\n"
             "tls_server_name = redis.internal\nuser = app\npassword = pw\n",
             path, path, path);
    CU_ASSERT_EQUAL(load_with(&cfg, extra, NO_ENV, &err), 0);
    CU_ASSERT_EQUAL(cfg.redis_tls, 1);
    CU_ASSERT_STRING_EQUAL(cfg.redis_tls_ca_file, path);
    CU_ASSERT_STRING_EQUAL(cfg.redis_tls_server_name, "redis.internal");
    CU_ASSERT_STRING_EQUAL(cfg.redis_user, "app");
    config_fini(&cfg);

    static const struct {
        const char *extra, *want;
    } bad[] = {
        {"[redis]\ntls = 2\n", "redis.tls must be an integer in 0..1"},
        {"[redis]\ntls = 1\n", "redis.tls_ca_file is required when tls = 1"},
        {"[redis]\ntls = 1\ntls_ca_file = /nonexistent/ca.crt\n", "redis.tls_ca_file cannot be read"},
        {"[redis]\ntls = 1\ntls_ca_file = %s\ntls_cert_file = %s\n", "redis.tls_key_file is required"},
        {"[redis]\ntls = 1\ntls_ca_file = %s\ntls_key_file = %s\n", "redis.tls_cert_file is required"},
        {"[redis]\ntls = 1\ntls_ca_file = %s\ntls_cert_file = /nonexistent/c\ntls_key_file = %s\n",
         "redis.tls_cert_file cannot be read"},
        {"[redis]\nuser = app\n", "redis.user needs a password"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        snprintf(extra, sizeof extra, bad[i].extra, path, path);
        memset(&err, 0, sizeof err);
        CU_ASSERT_EQUAL(load_with(&cfg, extra, NO_ENV, &err), -1);
        if (!strstr(err.message, bad[i].want))
            fprintf(stderr, "\n%zu: %s\n", i, err.message);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, bad[i].want));
    }
    /* Without TLS, the file settings are not looked at. */
    CU_ASSERT_EQUAL(load_with(&cfg, "[redis]\ntls_ca_file = /nonexistent\n", NO_ENV, &err), 0);
    config_fini(&cfg);
    /* The environment turns it on like any other setting. */
    char *env[] = {"TOLLGATE_REDIS_TLS=1", NULL};
    CU_ASSERT_EQUAL(load_with(&cfg, "", env, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "tls_ca_file"));
    unlink(path);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_defaults),
        UNIT_TEST(test_amqp_tls),
        UNIT_TEST(test_file_values),
        UNIT_TEST(test_crlf_and_repeats),
        UNIT_TEST(test_env_override),
        UNIT_TEST(test_env_supplies_required),
        UNIT_TEST(test_env_bad_value),
        UNIT_TEST(test_unknown_key_line),
        UNIT_TEST(test_unknown_section_and_bare_key),
        UNIT_TEST(test_bad_int_line),
        UNIT_TEST(test_int_bounds),
        UNIT_TEST(test_string_checks),
        UNIT_TEST(test_secret_length),
        UNIT_TEST(test_missing_required),
        UNIT_TEST(test_syntax_errors),
        UNIT_TEST(test_load_file),
        UNIT_TEST(test_secret_set),
        UNIT_TEST(test_load_file_too_large),
        UNIT_TEST(test_load_missing_file),
        UNIT_TEST(test_error_leaves_config_zeroed),
        UNIT_TEST(test_redis_tls),
        UNIT_TEST(test_retention),
        UNIT_TEST(test_ctl_section),
    };
    return unit_run("config", tests, TG_ARRAY_LEN(tests));
}
