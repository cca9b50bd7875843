/* alertsend: see alertsend.h. */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alertsend.h"
#include "log.h"
#include "metrics_billing.h"
#include "netguard.h"
#include "sealbox.h"
#include "strbuf.h"

#define TICK_MS 100          /* longest wait between looks at the outbox */
#define CLAIM_MARGIN_S 5     /* a claim outlives its attempt by this much */
#define BACKOFF_BASE_MS 1000
#define BACKOFF_MAX_MS 3600000
#define ERROR_MAX 200        /* characters of an attempt's error kept */

struct transfer {
    CURL *easy;
    struct curl_slist *headers;
    char *event_id, *rule_id, *body;
    int64_t created_ms, started_ms;
    int attempts;
    bool refused; /* the guard refused an address */
    const struct netguard *guard;
    struct transfer *prev, *next; /* the deliverer's transfers in flight */
    char err[CURL_ERROR_SIZE];
};

struct alertsend {
    const struct config *cfg;
    struct pg_pool *pool;
    struct metrics *metrics; /* may be NULL */
    int64_t next_outbox_ms;  /* mono_ms of the next count of the outbox */
    struct netguard guard;
    CURLM *multi;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    size_t in_flight;
    struct transfer *head; /* in flight */
    bool db_down; /* for one log line per change */
};

void alertsend_sign(const char *secret, const char *body, size_t len,
                    char out[ALERTSEND_SIG_LEN])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char mac[32];
    unsigned int n = sizeof mac;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac,
              &n))
        abort();
    memcpy(out, "sha256=", 7);
    for (size_t i = 0; i < 32; i++) {
        out[7 + 2 * i] = digits[mac[i] >> 4];
        out[8 + 2 * i] = digits[mac[i] & 15];
    }
    out[ALERTSEND_SIG_LEN - 1] = '\0';
}

int64_t alertsend_backoff_ms(int next, uint32_t rnd)
{
    int64_t d = BACKOFF_BASE_MS;
    for (int i = 2; i < next && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    return d - (int64_t)(rnd % (uint32_t)(d / 2 + 1));
}

bool alertsend_retryable(long status, bool refused)
{
    if (refused)
        return false;
    return status == 0 || status == 408 || status == 429 || status >= 500;
}

/* libcurl's socket opener, so that the address actually connected to --
 * whatever the name resolved to this time -- passes the guard. */
static curl_socket_t open_guarded(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct transfer *t = arg;
    if (purpose != CURLSOCKTYPE_IPCXN || !netguard_allowed(t->guard, &a->addr)) {
        t->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static void transfer_free(struct transfer *t)
{
    if (!t)
        return;
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->event_id);
    free(t->rule_id);
    free(t->body);
    free(t);
}

/* Records the end of one attempt and what becomes of the event. */
static void record(struct alertsend *s, struct pg_conn *c, struct transfer *t, long status,
                   const char *error)
{
    struct api_error e;
    int64_t now = now_ms(), latency = mono_ms() - t->started_ms;
    const char *state = "delivered";
    char next_ms[24], status_s[24], latency_s[24];
    int64_t delay = 0;
    if (status < 200 || status > 299) {
        uint32_t rnd;
        random_bytes(&rnd, sizeof rnd);
        delay = alertsend_backoff_ms(t->attempts + 1, rnd);
        bool in_time = now + delay < t->created_ms + s->cfg->alerts_retry_for_s * 1000;
        state = alertsend_retryable(status, t->refused) && in_time ? "pending" : "failed";
    }
    snprintf(next_ms, sizeof next_ms, "%lld", (long long)delay);
    snprintf(status_s, sizeof status_s, "%ld", status);
    snprintf(latency_s, sizeof latency_s, "%lld", (long long)latency);
    const char *p[] = {t->event_id, t->rule_id, status ? status_s : NULL, latency_s, error, state,
                       next_ms};
    /* An event erased meanwhile with its owner (docs/privacy.md) leaves no
     * attempt behind. */
    struct pg_res *r = pg_query(
        c,
        "WITH a AS (INSERT INTO alert_attempts (event_id, rule_id, status, latency_ms, error)"
        "  SELECT $1, $2, $3::integer, $4::integer, $5"
        "  WHERE EXISTS (SELECT 1 FROM alert_events WHERE id = $1))"
        " UPDATE alert_events SET state = $6, locked_until = NULL,"
        "  next_at = clock_timestamp() + $7::bigint * interval '1 millisecond',"
        "  done_at = CASE WHEN $6 = 'pending' THEN NULL ELSE clock_timestamp() END"
        " WHERE id = $1 AND state = 'pending'",
        7, p, &e);
    if (!r)
        log_warn("alerts: attempt on event %s not recorded: %s (it will be tried again)",
                 t->event_id, e.message);
    pg_res_free(r);
    metrics_alert_attempt(s->metrics,
                          strcmp(state, "delivered") == 0 ? ALERT_ATTEMPT_DELIVERED
                          : strcmp(state, "pending") == 0 ? ALERT_ATTEMPT_RETRY
                                                          : ALERT_ATTEMPT_FAILED,
                          latency * 1000);
    if (strcmp(state, "failed") == 0)
        log_warn("alerts: event %s of rule %s given up after %d attempts (last: %s)",
                 t->event_id, t->rule_id, t->attempts, error ? error : status_s);
}

/* Starts one claimed event (row i of r); an event whose secret cannot be
 * opened is given up at once. */
static void start(struct alertsend *s, struct pg_conn *c, const struct pg_res *r, int i)
{
    struct api_error e;
    struct strbuf secret = {0};
    struct transfer *t = xcalloc(1, sizeof *t);
    t->guard = &s->guard;
    t->event_id = xstrdup(pg_val(r, i, 0));
    t->rule_id = xstrdup(pg_val(r, i, 1));
    t->body = xstrdup(pg_val(r, i, 2));
    t->attempts = (int)pg_int(r, i, 5);
    t->created_ms = pg_int(r, i, 6);
    t->started_ms = mono_ms();
    if (sealbox_open(&s->cfg->secrets, pg_val(r, i, 4), &secret, &e) != 0) {
        log_error("alerts: rule %s: secret not usable: %s", t->rule_id, e.message);
        t->refused = true;
        record(s, c, t, 0, "the rule's secret cannot be opened with the configured secrets");
        transfer_free(t);
        return;
    }
    char sig[ALERTSEND_SIG_LEN], header[32 + ALERTSEND_SIG_LEN];
    alertsend_sign(secret.p, t->body, strlen(t->body), sig);
    OPENSSL_cleanse(secret.p, secret.len);
    strbuf_fini(&secret);
    snprintf(header, sizeof header, "X-Tollgate-Signature: %s", sig);
    t->headers = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
    t->headers = curl_slist_append(t->headers, header);
    t->headers = curl_slist_append(t->headers, "Expect:");
    if (!(t->easy = curl_easy_init()) || !t->headers)
        abort();
    CURL *h = t->easy;
    curl_easy_setopt(h, CURLOPT_URL, pg_val(r, i, 3));
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s->cfg->alerts_timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->cfg->alerts_timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(t->body));
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tollgate-alerts/1");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_guarded);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->err);
    curl_easy_setopt(h, CURLOPT_PRIVATE, t);
    if (curl_multi_add_handle(s->multi, h) != CURLM_OK)
        abort();
    t->next = s->head;
    if (s->head)
        s->head->prev = t;
    s->head = t;
    s->in_flight++;
}

/* Claims up to the free slots' worth of due events and starts them.  An
 * event's target is its alert rule's or, for a billing event, its billing
 * webhook's (sql/021_billing_events.sql): one outbox, one delivery. */
static void claim(struct alertsend *s, struct pg_conn *c)
{
    struct api_error e;
    char lock_s[24], n_s[24];
    snprintf(lock_s, sizeof lock_s, "%lld",
             (long long)(s->cfg->alerts_timeout_ms / 1000 + CLAIM_MARGIN_S));
    snprintf(n_s, sizeof n_s, "%zu", (size_t)s->cfg->alerts_in_flight - s->in_flight);
    const char *p[] = {lock_s, n_s};
    struct pg_res *r = pg_query(
        c,
        "UPDATE alert_events e SET attempts = e.attempts + 1,"
        "  locked_until = clock_timestamp() + make_interval(secs => $1::integer)"
        " FROM (SELECT id, webhook_url, secret_enc FROM alert_rules"
        "  UNION ALL SELECT id, webhook_url, secret_enc FROM billing_webhooks) a"
        " WHERE a.id = e.rule_id AND e.id IN (SELECT id FROM alert_events"
        "  WHERE state = 'pending' AND next_at <= clock_timestamp()"
        "   AND (locked_until IS NULL OR locked_until < clock_timestamp())"
        "  ORDER BY next_at LIMIT $2::bigint FOR UPDATE SKIP LOCKED)"
        " RETURNING e.id, e.rule_id, e.body, a.webhook_url, a.secret_enc, e.attempts,"
        "  (extract(epoch FROM e.created_at) * 1000)::bigint",
        2, p, &e);
    if (!r) {
        if (!s->db_down)
            log_warn("alerts: cannot claim events: %s; retrying", e.message);
        s->db_down = true;
        return;
    }
    if (s->db_down)
        log_info("alerts: claiming events again");
    s->db_down = false;
    for (int i = 0; i < pg_nrows(r); i++)
        start(s, c, r, i);
    pg_res_free(r);
}

static void unlink_transfer(struct alertsend *s, struct transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        s->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    s->in_flight--;
}

/* Records the transfers that ended. */
static void reap(struct alertsend *s, struct pg_conn *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        long status = 0;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(s->multi, m->easy_handle);
        unlink_transfer(s, t);
        char error[ERROR_MAX + 1];
        if (t->refused)
            snprintf(error, sizeof error, "%s",
                     "the address is not allowed ([alerts] allow_private)");
        else if (rc != CURLE_OK)
            snprintf(error, sizeof error, "%.*s", ERROR_MAX, t->err[0] ? t->err : curl_easy_strerror(rc));
        if (rc != CURLE_OK || t->refused)
            status = 0;
        record(s, c, t, status, rc != CURLE_OK || t->refused ? error : NULL);
        transfer_free(t);
    }
}

/* Counts the pending events for the gauges, at most every
 * ALERTSEND_OUTBOX_MS (on a failure the figures stay as last read: the
 * claim's own failure is logged). */
static void count_outbox(struct alertsend *s, struct pg_conn *c)
{
    int64_t now = mono_ms();
    if (!s->metrics || now < s->next_outbox_ms)
        return;
    s->next_outbox_ms = now + ALERTSEND_OUTBOX_MS;
    struct api_error e;
    struct pg_res *r = pg_query(
        c,
        "SELECT count(*), coalesce((extract(epoch FROM min(created_at)) * 1000)::bigint, 0)"
        " FROM alert_events WHERE state = 'pending'",
        0, NULL, &e);
    if (r && pg_nrows(r) == 1)
        metrics_alert_outbox(s->metrics, (uint64_t)pg_int(r, 0, 0), pg_int(r, 0, 1));
    pg_res_free(r);
}

static void *run(void *arg)
{
    struct alertsend *s = arg;
    while (!atomic_load(&s->stop)) {
        struct api_error e;
        struct pg_conn *c = pg_acquire(s->pool, &e);
        if (c) {
            reap(s, c);
            if (s->in_flight < (size_t)s->cfg->alerts_in_flight)
                claim(s, c);
            count_outbox(s, c);
            pg_release(s->pool, c);
        }
        int running = 0;
        curl_multi_perform(s->multi, &running);
        curl_multi_poll(s->multi, NULL, 0, TICK_MS, NULL);
        curl_multi_perform(s->multi, &running);
    }
    return NULL;
}

struct alertsend *alertsend_new(const struct config *cfg, struct pg_pool *pool,
                                struct metrics *metrics, struct api_error *e)
{
    struct alertsend *s = xcalloc(1, sizeof *s);
    if (netguard_parse(&s->guard, cfg->alerts_allow_private, e) != 0) {
        free(s);
        return NULL;
    }
    s->cfg = cfg;
    s->pool = pool;
    s->metrics = metrics;
    if (!(s->multi = curl_multi_init()))
        abort();
    atomic_init(&s->stop, false);
    return s;
}

int alertsend_start(struct alertsend *s, struct api_error *e)
{
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        api_error_set(e, ERR_INTERNAL, NULL, "cannot start the alert delivery thread");
        return -1;
    }
    s->started = true;
    return 0;
}

void alertsend_free(struct alertsend *s)
{
    if (!s)
        return;
    if (s->started) {
        atomic_store(&s->stop, true);
        curl_multi_wakeup(s->multi);
        pthread_join(s->thread, NULL);
    }
    /* Abandoned transfers: their claims expire and they are sent again. */
    while (s->head) {
        struct transfer *t = s->head;
        curl_multi_remove_handle(s->multi, t->easy);
        unlink_transfer(s, t);
        transfer_free(t);
    }
    curl_multi_cleanup(s->multi);
    free(s);
}
