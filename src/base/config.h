/* config: one INI file plus TOLLGATE_<SECTION>_<KEY> environment overrides,
 * described by one declarative table and validated completely at start. */
#ifndef TOLLGATE_CONFIG_H
#define TOLLGATE_CONFIG_H

#include <stdint.h>

#include "util.h"

/* ratelimit.on_store_error: what a check does when Redis cannot decide. */
enum store_error_mode { STORE_ERROR_CLOSED, STORE_ERROR_OPEN, STORE_ERROR_LOCAL };
/* "closed", "open", "local". */
const char *store_error_name(enum store_error_mode m);

/* The secrets keys and tokens are checked and hashed with, each with the id
 * recorded beside what it hashed: [0] is the current one (new keys and
 * tokens), the others still verify until the operator removes them. */
#define CONFIG_SECRETS_MAX 8
#define CONFIG_SECRET_ID_MAX 16
struct config_secrets {
    size_t n;
    char *id[CONFIG_SECRETS_MAX];
    char *secret[CONFIG_SECRETS_MAX];
};

struct config {
    /* [server] */
    int64_t workers;
    char *log_level;
    char *log_file;
    int64_t cache_ttl_ms;
    char *gate_query_param; /* "" when gate mode reads no query parameter */
    char *metrics_dir;      /* "" keeps each process's counters to itself */
    /* [security] */
    char *hmac_secret;
    char *hmac_secret_id;
    char *hmac_previous; /* "id:secret id:secret ..." still accepted */
    struct config_secrets secrets; /* built from the three above */
    char *audit_secret;  /* keys the audit chain; "": the current hmac_secret */
    char *key_prefix;
    /* [postgres] */
    char *pg_conninfo;          /* the application's role: what the daemons use */
    char *pg_migrate_conninfo;  /* the schema owner's, for migrations; "": conninfo */
    int64_t pg_pool_size;
    int64_t pg_prepare;         /* 1: each connection prepares its statements */
    /* [redis] */
    char *redis_host;
    int64_t redis_port;
    int64_t redis_timeout_ms;
    char *redis_user;     /* "": AUTH password logs in as the default user */
    char *redis_password;
    char *redis_nodes; /* "" for the one server at host:port, else cluster seeds */
    int64_t redis_tls;           /* 1: every Redis connection over TLS */
    char *redis_tls_ca_file;     /* trusted for the servers' certificates */
    char *redis_tls_cert_file;   /* client certificate, "" for none ... */
    char *redis_tls_key_file;    /* ... and its key, with it */
    char *redis_tls_server_name; /* "": each node's host is checked */
    /* [amqp] */
    char *amqp_host;
    int64_t amqp_port;
    char *amqp_user;
    char *amqp_password;
    char *amqp_vhost;
    int64_t amqp_tls;        /* 1: AMQPS, the broker's certificate and name verified */
    char *amqp_tls_ca_file;  /* the CA that signed the broker's certificate */
    char *amqp_tls_cert_file; /* a client certificate, if the broker asks for one */
    char *amqp_tls_key_file;
    /* [ratelimit] */
    char *on_store_error;    /* as written; store_error below is what code reads */
    enum store_error_mode store_error;
    int64_t local_processes; /* the pool size, dividing limits in local mode */
    /* [usage] */
    int64_t usage_enabled;   /* 0: checks are not journalled (benchmark baseline) */
    char *journal_dir;       /* shared by the processes of a host: orphans are adopted */
    int64_t journal_mb;      /* size of each process's journal */
    int64_t flush_ms;        /* publisher period */
    int64_t prefetch;        /* billingd: unacknowledged messages per consumer */
    int64_t aggregate_ms;    /* billingd: longest wait before a transaction */
    int64_t close_grace_min; /* billingd: closes a month this long after it ends */
    /* [alerts] (docs/alerts.md) */
    char *alerts_allow_private;  /* CIDR ranges webhooks may reach despite netguard.h */
    int64_t alerts_timeout_ms;   /* one delivery attempt, connection included */
    int64_t alerts_retry_for_s;  /* an event is given up this long after it fired */
    int64_t alerts_in_flight;    /* concurrent deliveries per billingd */
    /* [retention] (docs/retention.md): what billingd's housekeeping removes */
    int64_t retention_minute_days; /* usage_minute partitions, months billing closed */
    int64_t retention_hour_days;   /* usage_hour partitions; never below minute_days */
    int64_t retention_dedupe_days; /* usage batch and event ids */
    int64_t retention_alerts_days; /* finished alert events and delivery attempts */
    int64_t retention_logs_days;   /* rotated copies of the log files; 0 keeps them */
    /* [ctl]: tollgatectl's API commands (tollgatectl(1)); "" for unset */
    char *ctl_url;        /* the API's base URL */
    char *ctl_token_file; /* the admin token's file (never the token itself) */
    char *ctl_ca_file;    /* the CA of the API's certificate; "": the system's */
};

/* The shortest retention of the deduplication ids: POST /v1/usage/events
 * accepts an event up to 35 days old (and 5 minutes ahead), and an id
 * forgotten while its event may still be replayed would count it twice. */
#define CONFIG_DEDUPE_DAYS_MIN 36

/* Default path when neither -c nor TOLLGATE_CONFIG names one. */
#define CONFIG_DEFAULT_PATH SYSCONFDIR "/tollgate/tollgate.conf"

/* Loads path (which must exist), applies environment overrides from envp
 * (NULL-terminated "NAME=value" strings, e.g. environ) and validates every
 * value.  On error returns -1 with "file:line: message" (or
 * "TOLLGATE_X_Y: message") in err and leaves cfg zeroed.  The caller owns cfg
 * and releases it with config_fini. */
int config_load(struct config *cfg, const char *path, char *const *envp,
                struct api_error *err) TG_WUR;
/* Same, from a string holding the file's text; name is used in messages. */
int config_load_string(struct config *cfg, const char *name, const char *text,
                       char *const *envp, struct api_error *err) TG_WUR;
void config_fini(struct config *cfg);

#endif
