/*
 * usage_faults.c - tollgate-usage-faults: every check counted exactly once
 * by the usage pipeline (journal, publisher, RabbitMQ, tollgate-billingd,
 * PostgreSQL) while its parts fail, against the real stack.
 *
 * Each scenario makes fresh keys, one per outcome: a big tier (allowed), a
 * tight tier (mostly rate_limited), a key with `remaining` (quota_exceeded
 * once used up) and a suspended one (denied_other). THREADS client threads
 * check them in turn, time- and count-bounded, and count the answers by key
 * and outcome; an answer that is not JSON, or none, is "unanswered". The
 * fault happens during that load, through contrib/stack:
 *   - RabbitMQ stopped for 5 s and started again;
 *   - the pool restarted (graceful: SIGTERM, wait);
 *   - one responder SIGKILLed (its journal is adopted by a survivor);
 *   - billingd SIGKILLed and started again.
 * Then usage_minute in PostgreSQL must reach the client's counts exactly,
 * by key and outcome, within a bounded wait. The broker itself is tested
 * by publishing batches directly: one batch id published three times, and a
 * backlog consumed across a SIGKILL of billingd. At the end, at least 3 s
 * after the last scenario matched, every scenario is read again: a late
 * duplicate (a redelivery counted twice) would show there.  Usage of a key
 * erased with its owner that is still in flight (queued, or published after
 * the erasure) must bring none of its rows back.
 *
 * Environment: as tollgate-itest, plus TOLLGATE_PG_CONNINFO (libpq conninfo
 * of the stack's database), TOLLGATE_RUN_DIR, TOLLGATE_AMQP_PORT and
 * TOLLGATE_STACK (the path of contrib/stack); contrib/stack test runs it in
 * its usage-faults step. TOLLGATE_AMQP_USER and TOLLGATE_AMQP_PASSWORD
 * default to the stack's guest/guest.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alert_faults.h"
#include "itest_fixture.h"
#include "itest_http.h"
#include "metrics_faults.h"

enum {
	THREADS = 8,
	LOAD_MAX_PER_THREAD = 200000, /* count bound of one load, per thread */
	LOAD_MAX_MS = 60000,	      /* time bound of one load */
	MATCH_TIMEOUT_MS = 60000,     /* PostgreSQL reaching the client's counts */
	STABLE_MS = 3000,	      /* no late duplicate this long after a match */
	TIGHT_LIMIT = 20,	      /* per second, the tight tier */
	QUOTA_REMAINING = 50,	      /* the quota key's `remaining` */
};

/* ---- contrib/stack ---- */

static const char *stack_cmd(void)
{
	const char *s = getenv("TOLLGATE_STACK");
	return s && *s ? s : "contrib/stack";
}

/* Runs "contrib/stack <args>"; its output goes to out (cut at n - 1 bytes,
 * out may be NULL). Returns its exit status. */
static int stack_out(const char *args, char *out, size_t n)
{
	char cmd[1024], rest[512];
	size_t len = 0, got;
	snprintf(cmd, sizeof cmd, "%s %s 2>&1", stack_cmd(), args);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	if (out && n) {
		while (len + 1 < n && (got = fread(out + len, 1, n - 1 - len, p)) > 0)
			len += got;
		out[len] = '\0';
	}
	while (fread(rest, 1, sizeof rest, p) > 0)
		;
	int rc = pclose(p);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static int stack(const char *args)
{
	char out[4096];
	int rc = stack_out(args, out, sizeof out);
	if (rc != 0)
		fprintf(stderr, "\ncontrib/stack %s exited %d:\n%s\n", args, rc, out);
	return rc;
}

/* Whether the billingd of run/billingd.pid lives: said when counts are missing. */
static int billingd_alive(void)
{
	char path[1024];
	long pid = 0;
	snprintf(path, sizeof path, "%s/billingd.pid", getenv("TOLLGATE_RUN_DIR"));
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return pid > 0 && kill((pid_t)pid, 0) == 0;
}

/* Journal files in run/journal (reported, not asserted). */
static int journal_files(void)
{
	char path[1024];
	int n = 0;
	snprintf(path, sizeof path, "%s/journal", getenv("TOLLGATE_RUN_DIR"));
	DIR *d = opendir(path);
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t l = strlen(e->d_name);
		n += l > 4 && strcmp(e->d_name + l - 4, ".tgj") == 0;
	}
	closedir(d);
	return n;
}

/* ---- PostgreSQL: what billingd counted ---- */

enum outcome {
	O_ALLOWED,
	O_RATE_LIMITED,
	O_QUOTA_EXCEEDED,
	O_DENIED_OTHER,
	O_COUNTED, /* the four above are counted by the pipeline */
	O_OTHER = O_COUNTED, /* JSON, but not a check decision of this key */
	O_UNANSWERED,	     /* transport failure or not JSON */
	O_N
};

static const char *const outcome_name[O_N] = {"allowed", "rate_limited", "quota_exceeded",
					      "denied_other", "other", "unanswered"};

static PGconn *pg;
/* Once a scenario did not match, the next ones wait less: the run stays bounded. */
static int64_t match_timeout_ms = MATCH_TIMEOUT_MS;

static int pg_open(void)
{
	const char *ci = getenv("TOLLGATE_PG_CONNINFO");
	if (!ci || !*ci) {
		fprintf(stderr, "TOLLGATE_PG_CONNINFO is not set (source run/tollgate.env)\n");
		return -1;
	}
	pg = PQconnectdb(ci);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "PostgreSQL: %s", PQerrorMessage(pg));
		return -1;
	}
	return 0;
}

/* The key's counts by outcome in usage_minute (all minutes and endpoints).
 * Returns 0, or -1 when the query failed. */
static int pg_counted(const char *key_id, int64_t out[O_COUNTED])
{
	static const char sql[] =
		"SELECT coalesce(sum(allowed), 0), coalesce(sum(rate_limited), 0),"
		" coalesce(sum(quota_exceeded), 0), coalesce(sum(denied_other), 0)"
		" FROM usage_minute WHERE key_id = $1";
	const char *params[1] = {key_id};
	if (PQstatus(pg) != CONNECTION_OK)
		PQreset(pg);
	PGresult *res = PQexecParams(pg, sql, 1, NULL, params, NULL, NULL, 0);
	int rc = -1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		for (int i = 0; i < O_COUNTED; i++)
			out[i] = strtoll(PQgetvalue(res, 0, i), NULL, 10);
		rc = 0;
	} else {
		fprintf(stderr, "\nPostgreSQL: %s", PQerrorMessage(pg));
	}
	PQclear(res);
	return rc;
}

/* ---- keys ---- */

enum { K_BIG, K_TIGHT, K_QUOTA, K_SUSPENDED, NKEYS };

static const char *tight_tier(void)
{
	static char name[40];
	static int tried;
	if (!tried) {
		struct itest_resp r;
		char body[256];
		tried = 1;
		snprintf(name, sizeof name, "uf%s-tight", itest_suffix());
		snprintf(body, sizeof body,
			 "{\"name\":%s,\"limits\":[{\"name\":\"per_second\",\"window_s\":1,"
			 "\"limit\":%d}]}",
			 itest_q(name), TIGHT_LIMIT);
		itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
		if (!EXPECT_STATUS(&r, 201))
			name[0] = '\0';
		itest_resp_fini(&r);
	}
	return name[0] ? name : NULL;
}

static int make_keys(struct itest_key k[NKEYS], const char *tag)
{
	char owner[64], extra[64];
	snprintf(owner, sizeof owner, "uf-%s-%s", tag, itest_suffix());
	snprintf(extra, sizeof extra, "\"remaining\":%d", QUOTA_REMAINING);
	if (!tight_tier() || !itest_big_tier())
		return -1;
	if (itest_key_create(&k[K_BIG], owner, itest_big_tier(), NULL, NULL) != 0 ||
	    itest_key_create(&k[K_TIGHT], owner, tight_tier(), NULL, NULL) != 0 ||
	    itest_key_create(&k[K_QUOTA], owner, itest_big_tier(), extra, NULL) != 0 ||
	    itest_key_create(&k[K_SUSPENDED], owner, itest_big_tier(), NULL, NULL) != 0)
		return -1;
	return itest_key_patch(k[K_SUSPENDED].id, "{\"status\":\"suspended\"}");
}

/* ---- the load: THREADS threads checking the keys in turn ---- */

struct counts {
	int64_t n[NKEYS][O_N];
};

struct load;

struct worker {
	struct load *L;
	int idx;
	struct counts c;
	pthread_t t;
	int running;
};

struct load {
	const struct itest_key *keys;
	_Atomic int64_t until_ms;
	/* A pause: workers park between two checks while pause is set. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pause, parked, active;
	struct worker w[THREADS];
};

struct body {
	char *p;
	size_t len, cap;
};

static size_t body_write(char *p, size_t s, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = s * n;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q)
			return 0;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

/* The outcome a check answer reports. */
static enum outcome classify(CURLcode cc, long status, const struct body *b)
{
	if (cc != CURLE_OK || status == 0 || !b->p)
		return O_UNANSWERED;
	json_object *o = json_tokener_parse(b->p);
	if (!o)
		return O_UNANSWERED;
	enum outcome out = O_OTHER;
	json_object *allowed = itest_get(o, "allowed");
	const char *reason = itest_str(o, "reason");
	if (status == 200 && allowed && json_object_get_boolean(allowed))
		out = O_ALLOWED;
	else if (!reason || !itest_str(o, "key_id"))
		out = O_OTHER;
	else if (strcmp(reason, "rate_limited") == 0)
		out = O_RATE_LIMITED;
	else if (strcmp(reason, "quota_exceeded") == 0)
		out = O_QUOTA_EXCEEDED;
	else if (strcmp(reason, "suspended") == 0 || strcmp(reason, "revoked") == 0 ||
		 strcmp(reason, "expired") == 0 || strcmp(reason, "unavailable") == 0)
		out = O_DENIED_OTHER;
	json_object_put(o);
	return out;
}

/* Parks while a pause is asked for. Returns when the worker may go on. */
static void worker_gate(struct load *L)
{
	pthread_mutex_lock(&L->mu);
	while (L->pause) {
		L->parked++;
		pthread_cond_broadcast(&L->cv);
		pthread_cond_wait(&L->cv, &L->mu);
		L->parked--;
	}
	pthread_mutex_unlock(&L->mu);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct load *L = w->L;
	CURL *c = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct body b = {0};
	char url[512], auth[512], bodies[NKEYS][512];
	snprintf(url, sizeof url, "%s/v1/check", getenv("TOLLGATE_URL"));
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", itest_admin_token());
	for (int k = 0; k < NKEYS; k++)
		snprintf(bodies[k], sizeof bodies[k], "{\"key\":\"%s\",\"endpoint\":\"POST /uf\"}",
			 L->keys[k].key);
	hdr = curl_slist_append(hdr, auth);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	itest_tls(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	for (long i = 0; i < LOAD_MAX_PER_THREAD && itest_now_ms() < atomic_load(&L->until_ms);
	     i++) {
		worker_gate(L);
		int k = (int)((i + w->idx) % NKEYS);
		long status = 0;
		b.len = 0;
		if (b.p)
			b.p[0] = '\0';
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, bodies[k]);
		CURLcode cc = curl_easy_perform(c);
		if (cc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		enum outcome o = classify(cc, status, &b);
		w->c.n[k][o]++;
		if (o == O_UNANSWERED) /* the pool is away: do not spin on its 503s */
			itest_sleep_ms(5);
	}
	free(b.p);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	pthread_mutex_lock(&L->mu);
	L->active--;
	pthread_cond_broadcast(&L->cv);
	pthread_mutex_unlock(&L->mu);
	return NULL;
}

static void load_start(struct load *L, const struct itest_key *keys)
{
	memset(L, 0, sizeof *L);
	L->keys = keys;
	atomic_init(&L->until_ms, itest_now_ms() + LOAD_MAX_MS);
	pthread_mutex_init(&L->mu, NULL);
	pthread_cond_init(&L->cv, NULL);
	int started = 0;
	for (int i = 0; i < THREADS; i++) {
		L->w[i].L = L;
		L->w[i].idx = i;
		pthread_mutex_lock(&L->mu);
		L->w[i].running = pthread_create(&L->w[i].t, NULL, worker_main, &L->w[i]) == 0;
		L->active += L->w[i].running;
		pthread_mutex_unlock(&L->mu);
		started += L->w[i].running;
	}
	EXPECT(started == THREADS, "only %d of %d client threads started", started, (int)THREADS);
}

/* Parks every running worker between two checks (none has a request in
 * flight then). Returns 1 when all are parked within 15 s. */
static int load_pause(struct load *L)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 15;
	pthread_mutex_lock(&L->mu);
	L->pause = 1;
	while (L->parked < L->active &&
	       pthread_cond_timedwait(&L->cv, &L->mu, &until) != ETIMEDOUT)
		;
	int ok = L->parked == L->active;
	pthread_mutex_unlock(&L->mu);
	return ok;
}

static void load_resume(struct load *L)
{
	pthread_mutex_lock(&L->mu);
	L->pause = 0;
	pthread_cond_broadcast(&L->cv);
	pthread_mutex_unlock(&L->mu);
}

/* Ends the load now and adds up the workers' counts. */
static void load_stop(struct load *L, struct counts *sum)
{
	atomic_store(&L->until_ms, 0);
	load_resume(L);
	memset(sum, 0, sizeof *sum);
	for (int i = 0; i < THREADS; i++) {
		if (!L->w[i].running)
			continue;
		pthread_join(L->w[i].t, NULL);
		for (int k = 0; k < NKEYS; k++)
			for (int o = 0; o < O_N; o++)
				sum->n[k][o] += L->w[i].c.n[k][o];
	}
	pthread_cond_destroy(&L->cv);
	pthread_mutex_destroy(&L->mu);
}

/* ---- scenarios: load, fault, then PostgreSQL against the client ---- */

struct scenario {
	const char *name;
	int exact; /* 0: the counts are only reported (SIGKILL under load) */
	struct itest_key keys[NKEYS];
	struct counts got;
	int matched;
	int64_t matched_at; /* itest_now_ms() of the match */
};

enum { MAX_SCENARIOS = 16 };
static struct scenario scenarios[MAX_SCENARIOS];
static int nscenarios;

static struct scenario *scenario_new(const char *name, const char *tag, int exact)
{
	if (!EXPECT(nscenarios < MAX_SCENARIOS, "too many scenarios"))
		return NULL;
	struct scenario *sc = &scenarios[nscenarios];
	memset(sc, 0, sizeof *sc);
	sc->name = name;
	sc->exact = exact;
	if (make_keys(sc->keys, tag) != 0)
		return NULL;
	nscenarios++;
	return sc;
}

static int64_t sum_outcomes(const int64_t *n, int from, int to)
{
	int64_t s = 0;
	for (int o = from; o < to; o++)
		s += n[o];
	return s;
}

/* 1 when PostgreSQL holds exactly the client's counts for every key; the
 * counted figures go to db (may be NULL). */
static int counted_equal(const struct scenario *sc, struct counts *db)
{
	int eq = 1;
	for (int k = 0; k < NKEYS; k++) {
		int64_t got[O_COUNTED];
		if (pg_counted(sc->keys[k].id, got) != 0)
			return 0;
		for (int o = 0; o < O_COUNTED; o++) {
			if (db)
				db->n[k][o] = got[o];
			eq &= got[o] == sc->got.n[k][o];
		}
	}
	return eq;
}

/* Reports each key whose counts differ: what was lost or doubled. */
static void report_diff(const struct scenario *sc, const struct counts *db)
{
	for (int k = 0; k < NKEYS; k++)
		for (int o = 0; o < O_COUNTED; o++) {
			int64_t d = db->n[k][o] - sc->got.n[k][o];
			if (d)
				printf("\n      key %s %s: client %lld, counted %lld (%s %lld)",
				       sc->keys[k].id, outcome_name[o], (long long)sc->got.n[k][o],
				       (long long)db->n[k][o], d > 0 ? "doubled" : "lost",
				       (long long)(d > 0 ? d : -d));
		}
}

static void print_load(const struct scenario *sc)
{
	int64_t tot[O_N] = {0};
	for (int k = 0; k < NKEYS; k++)
		for (int o = 0; o < O_N; o++)
			tot[o] += sc->got.n[k][o];
	printf("\n    (%s: %lld checks made: %lld allowed, %lld rate_limited, %lld quota_exceeded, "
	       "%lld denied_other, %lld other, %lld unanswered) ",
	       sc->name, (long long)sum_outcomes(tot, 0, O_N), (long long)tot[O_ALLOWED],
	       (long long)tot[O_RATE_LIMITED], (long long)tot[O_QUOTA_EXCEEDED],
	       (long long)tot[O_DENIED_OTHER], (long long)tot[O_OTHER], (long long)tot[O_UNANSWERED]);
}

/* Polls PostgreSQL until it holds exactly the client's counts (bounded). */
static void scenario_verify(struct scenario *sc)
{
	struct counts db;
	int64_t answered = 0, t0 = itest_now_ms();
	print_load(sc);
	for (int k = 0; k < NKEYS; k++) {
		EXPECT(sc->got.n[k][O_OTHER] == 0,
		       "%s: %lld answers for key %s were neither a decision nor unanswered", sc->name,
		       (long long)sc->got.n[k][O_OTHER], sc->keys[k].id);
		answered += sum_outcomes(sc->got.n[k], 0, O_COUNTED);
	}
	EXPECT(sc->got.n[K_BIG][O_ALLOWED] > 100, "%s: only %lld checks allowed", sc->name,
	       (long long)sc->got.n[K_BIG][O_ALLOWED]);
	EXPECT(sc->got.n[K_TIGHT][O_RATE_LIMITED] > 0, "%s: no check was rate limited", sc->name);
	while (!(sc->matched = counted_equal(sc, &db)) && itest_now_ms() - t0 < match_timeout_ms)
		itest_sleep_ms(200);
	sc->matched_at = itest_now_ms();
	int64_t counted = 0;
	for (int k = 0; k < NKEYS; k++)
		counted += sum_outcomes(db.n[k], 0, O_COUNTED);
	printf("\n    (%s: %lld answered, %lld counted, %s after %lld ms) ", sc->name,
	       (long long)answered, (long long)counted, sc->matched ? "equal" : "NOT EQUAL",
	       (long long)(sc->matched_at - t0));
	if (!sc->matched) {
		report_diff(sc, &db);
		printf("\n      billingd %s; journal files: %d ",
		       billingd_alive() ? "runs" : "does NOT run", journal_files());
	}
	EXPECT(sc->matched, "%s: usage_minute does not hold the client's counts %lld s after the load",
	       sc->name, (long long)(match_timeout_ms / 1000));
	if (!sc->matched)
		match_timeout_ms = 15000;
}

/* The load runs at least 1 s before the fault and 1 s after it. */
static struct scenario *fault_under_load(const char *name, const char *tag,
					 void (*fault)(struct load *L))
{
	struct scenario *sc = scenario_new(name, tag, 1);
	if (!sc)
		return NULL;
	struct load L;
	load_start(&L, sc->keys);
	itest_sleep_ms(1000);
	fault(&L);
	itest_sleep_ms(1000);
	load_stop(&L, &sc->got);
	return sc;
}

/* billingd's oldest unacknowledged message, from /metrics (-1: not read). */
static double billingd_unacked_age(void)
{
	static const char name[] = "\ntollgate_billingd_oldest_unacked_age_seconds ";
	struct itest_resp r;
	itest_metrics(&r);
	const char *p = r.status == 200 && r.body ? strstr(r.body, name) : NULL;
	double v = p ? strtod(p + sizeof name - 1, NULL) : -1;
	itest_resp_fini(&r);
	return v;
}

static void fault_broker(struct load *L)
{
	(void)L;
	EXPECT(stack("amqp-stop") == 0, "contrib/stack amqp-stop failed");
	/* The outage itself, 5 s. billingd loses its window with the connection
	 * (the broker redelivers it), so it must not report a message held. */
	int64_t t0 = itest_now_ms();
	double age = -1;
	while (itest_now_ms() - t0 < 5000) {
		age = billingd_unacked_age();
		if (age == 0)
			break;
		itest_sleep_ms(250);
	}
	EXPECT(age == 0, "with RabbitMQ down, billingd still reports a message held %.3f s", age);
	int64_t left = 5000 - (itest_now_ms() - t0);
	if (left > 0)
		itest_sleep_ms((int)left);
	EXPECT(stack("amqp-start") == 0, "contrib/stack amqp-start failed");
}

static void test_broker_down(void)
{
	struct scenario *sc = fault_under_load("RabbitMQ stopped 5 s", "amqp", fault_broker);
	if (sc)
		scenario_verify(sc);
}

static void fault_restart_pool(struct load *L)
{
	(void)L;
	EXPECT(stack("restart-pool") == 0, "contrib/stack restart-pool failed");
}

static void test_restart_pool(void)
{
	struct scenario *sc = fault_under_load("pool restarted", "restart", fault_restart_pool);
	if (sc)
		scenario_verify(sc);
}

static void fault_billingd(struct load *L)
{
	(void)L;
	EXPECT(stack("billingd-kill") == 0, "contrib/stack billingd-kill failed");
	itest_sleep_ms(500); /* batches pile up in the queue meanwhile */
	EXPECT(stack("billingd-start") == 0, "contrib/stack billingd-start failed");
}

static void test_billingd_kill(void)
{
	struct scenario *sc = fault_under_load("billingd killed", "billingd", fault_billingd);
	if (sc)
		scenario_verify(sc);
}

/* SIGKILL of one responder. A check in flight on the killed process may
 * have been journalled (hence counted) without its answer reaching the
 * client, so the exact test parks every client thread between two checks
 * first: nothing is in flight when the process dies, and every check it
 * journalled was answered. The survivors adopt its journal and publish it. */
static char killed_pid[32];

static void fault_kill_paused(struct load *L)
{
	int parked = load_pause(L);
	EXPECT(parked, "the client threads did not pause within 15 s");
	int before = journal_files();
	int rc = stack_out("pool-kill-one", killed_pid, sizeof killed_pid);
	killed_pid[strcspn(killed_pid, "\n")] = '\0';
	EXPECT(rc == 0, "contrib/stack pool-kill-one failed: %s", killed_pid);
	load_resume(L);
	printf("\n    (responder %s killed while the clients paused; journal files %d before) ",
	       killed_pid, before);
	itest_sleep_ms(2000);
}

static void fault_kill_loaded(struct load *L)
{
	(void)L;
	int rc = stack_out("pool-kill-one", killed_pid, sizeof killed_pid);
	killed_pid[strcspn(killed_pid, "\n")] = '\0';
	EXPECT(rc == 0, "contrib/stack pool-kill-one failed: %s", killed_pid);
	itest_sleep_ms(1000);
}

static void test_kill_responder(void)
{
	struct scenario *sc = fault_under_load("responder SIGKILLed, clients paused", "kill",
					       fault_kill_paused);
	if (sc)
		scenario_verify(sc);
	printf("\n    (journal files now: %d) ", journal_files());

	/* The same under full load: reported, not asserted. Each check that was
	 * in flight on the killed process is unanswered and counted or not, so
	 * the count must lie in [answered, answered + unanswered]. */
	sc = fault_under_load("responder SIGKILLed under load", "killload", fault_kill_loaded);
	if (sc) {
		sc->exact = 0;
		print_load(sc);
		int64_t answered = 0, unanswered = 0, counted = 0, t0 = itest_now_ms();
		for (int k = 0; k < NKEYS; k++) {
			answered += sum_outcomes(sc->got.n[k], 0, O_COUNTED);
			unanswered += sc->got.n[k][O_UNANSWERED];
		}
		/* Until the answered checks are in, then as long again for the rest. */
		for (int64_t settle = -1; itest_now_ms() - t0 < 20000; itest_sleep_ms(200)) {
			int64_t got[O_COUNTED];
			counted = 0;
			for (int k = 0; k < NKEYS; k++)
				if (pg_counted(sc->keys[k].id, got) == 0)
					counted += sum_outcomes(got, 0, O_COUNTED);
			if (settle < 0 && counted >= answered)
				settle = itest_now_ms() + 2000;
			if (settle >= 0 && itest_now_ms() >= settle)
				break;
		}
		sc->matched_at = itest_now_ms();
		printf("\n    (%s: %lld answered, %lld unanswered, %lld counted: %s [answered, "
		       "answered + unanswered]) ",
		       sc->name, (long long)answered, (long long)unanswered, (long long)counted,
		       counted >= answered && counted <= answered + unanswered ? "within" : "OUTSIDE");
	}
	/* spawn-fcgi does not respawn: a graceful restart brings the pool back. */
	EXPECT(stack("restart-pool") == 0, "contrib/stack restart-pool failed");
}

/* ---- batches published straight to the broker ----
 *
 * A minimal AMQP 0-9-1 publisher (PLAIN login, channel 1, publisher
 * confirms) over a socket: the test program links no AMQP library, and
 * these few frames are all it needs to play a responder's publisher. */

struct amqp {
	int fd;
	SSL_CTX *ctx; /* AMQPS when TOLLGATE_CA_FILE names the stack's CA */
	SSL *ssl;
	uint8_t *in;	    /* one frame's payload */
	uint32_t frame_max; /* negotiated */
	uint64_t published; /* delivery tags handed out */
	uint8_t *confirmed; /* by delivery tag */
	uint64_t confirmed_upto, cap;
	char err[256];
};

struct wbuf {
	uint8_t b[4096];
	size_t n;
};

static void put8(struct wbuf *w, unsigned v)
{
	if (w->n < sizeof w->b)
		w->b[w->n++] = (uint8_t)v;
}

static void put16(struct wbuf *w, unsigned v)
{
	put8(w, v >> 8);
	put8(w, v & 0xff);
}

static void put32(struct wbuf *w, uint32_t v)
{
	put16(w, v >> 16);
	put16(w, v & 0xffff);
}

static void put64(struct wbuf *w, uint64_t v)
{
	put32(w, (uint32_t)(v >> 32));
	put32(w, (uint32_t)v);
}

static void put_short_str(struct wbuf *w, const char *s)
{
	size_t n = strlen(s);
	put8(w, (unsigned)n);
	for (size_t i = 0; i < n; i++)
		put8(w, (uint8_t)s[i]);
}

static void put_long_str(struct wbuf *w, const void *p, size_t n)
{
	put32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		put8(w, ((const uint8_t *)p)[i]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static int write_all(struct amqp *a, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = a->ssl ? SSL_write(a->ssl, b, (int)n) : send(a->fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(struct amqp *a, void *p, size_t n, int64_t deadline)
{
	uint8_t *b = p;
	while (n) {
		int64_t left = deadline - itest_now_ms();
		struct pollfd pfd = {.fd = a->fd, .events = POLLIN};
		/* TLS may hold decrypted bytes the socket no longer shows */
		if (!(a->ssl && SSL_pending(a->ssl) > 0) &&
		    (left <= 0 || poll(&pfd, 1, (int)left) <= 0))
			return -1;
		ssize_t r = a->ssl ? SSL_read(a->ssl, b, (int)n) : recv(a->fd, b, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static int amqp_send(struct amqp *a, int type, int channel, const void *payload, size_t n)
{
	uint8_t h[7] = {(uint8_t)type, (uint8_t)(channel >> 8), (uint8_t)channel};
	h[3] = (uint8_t)(n >> 24);
	h[4] = (uint8_t)(n >> 16);
	h[5] = (uint8_t)(n >> 8);
	h[6] = (uint8_t)n;
	static const uint8_t end = 0xCE;
	if (write_all(a, h, sizeof h) || write_all(a, payload, n) ||
	    write_all(a, &end, 1)) {
		snprintf(a->err, sizeof a->err, "write: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int amqp_method(struct amqp *a, int channel, const struct wbuf *w)
{
	return amqp_send(a, 1, channel, w->b, w->n);
}

/* Reads one frame into a->in. Returns its type and sets *len, *cls and *mth
 * (method frames), or -1 (a->err filled). A Connection.Close or
 * Channel.Close from the broker is an error that names its reason. */
static int amqp_recv(struct amqp *a, int timeout_ms, uint32_t *len, unsigned *cls, unsigned *mth)
{
	uint8_t h[7], end;
	int64_t deadline = itest_now_ms() + timeout_ms;
	if (read_all(a, h, sizeof h, deadline) != 0) {
		snprintf(a->err, sizeof a->err, "no frame from the broker within %d ms", timeout_ms);
		return -1;
	}
	*len = get32(h + 3);
	if (*len > a->frame_max || read_all(a, a->in, *len, deadline) != 0 ||
	    read_all(a, &end, 1, deadline) != 0 || end != 0xCE) {
		snprintf(a->err, sizeof a->err, "bad frame from the broker");
		return -1;
	}
	*cls = *mth = 0;
	if (h[0] == 1 && *len >= 4) {
		*cls = (unsigned)a->in[0] << 8 | a->in[1];
		*mth = (unsigned)a->in[2] << 8 | a->in[3];
		if ((*cls == 10 || *cls == 20) && *mth == 40 && *len >= 7) {
			int n = (uint32_t)a->in[6] < *len - 7 ? (int)a->in[6] : (int)(*len - 7);
			snprintf(a->err, sizeof a->err, "broker closed the %s: %u %.*s",
				 *cls == 10 ? "connection" : "channel",
				 (unsigned)a->in[4] << 8 | a->in[5], n, (const char *)a->in + 7);
			return -1;
		}
	}
	return h[0];
}

/* Waits for method cls.mth, skipping other frames. */
static int amqp_expect(struct amqp *a, unsigned cls, unsigned mth, int timeout_ms)
{
	int64_t deadline = itest_now_ms() + timeout_ms;
	for (;;) {
		uint32_t len;
		unsigned c, m;
		int64_t left = deadline - itest_now_ms();
		if (left <= 0 || amqp_recv(a, (int)left, &len, &c, &m) < 0) {
			if (!a->err[0])
				snprintf(a->err, sizeof a->err, "no %u.%u from the broker", cls, mth);
			return -1;
		}
		if (c == cls && m == mth)
			return 0;
	}
}

static void amqp_close(struct amqp *a)
{
	if (a->fd >= 0) {
		struct wbuf w = {.n = 0};
		put16(&w, 10);
		put16(&w, 50);
		put16(&w, 200);
		put_short_str(&w, "");
		put16(&w, 0);
		put16(&w, 0);
		if (amqp_method(a, 0, &w) == 0)
			(void)amqp_expect(a, 10, 51, 2000);
		if (a->ssl)
			SSL_shutdown(a->ssl);
		close(a->fd);
	}
	SSL_free(a->ssl);
	SSL_CTX_free(a->ctx);
	a->ssl = NULL;
	a->ctx = NULL;
	free(a->in);
	free(a->confirmed);
	a->fd = -1;
	a->in = a->confirmed = NULL;
}

/* The broker of the stack speaks AMQPS only: a handshake that checks its
 * certificate against the stack's CA and its name (localhost, as the
 * application's library checks it). Plain AMQP when no CA is named. */
static int tls_start(struct amqp *a)
{
	const char *ca = getenv("TOLLGATE_CA_FILE");
	struct timeval tv = {.tv_sec = 5};

	if (!ca || !*ca)
		return 0;
	a->ctx = SSL_CTX_new(TLS_client_method());
	if (!a->ctx || SSL_CTX_load_verify_locations(a->ctx, ca, NULL) != 1 ||
	    !SSL_CTX_set_min_proto_version(a->ctx, TLS1_2_VERSION)) {
		snprintf(a->err, sizeof a->err, "TLS: cannot use the CA file %s", ca);
		return -1;
	}
	SSL_CTX_set_verify(a->ctx, SSL_VERIFY_PEER, NULL);
	a->ssl = SSL_new(a->ctx);
	/* the handshake is bounded like every other read */
	setsockopt(a->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (!a->ssl || SSL_set1_host(a->ssl, "localhost") != 1 || SSL_set_fd(a->ssl, a->fd) != 1 ||
	    SSL_connect(a->ssl) != 1) {
		snprintf(a->err, sizeof a->err,
			 "TLS handshake with the broker failed (certificate verification: %s)",
			 a->ssl ? X509_verify_cert_error_string(SSL_get_verify_result(a->ssl)) : "-");
		return -1;
	}
	return 0;
}

/* Connects to the stack's broker, opens channel 1 in confirm mode; room for
 * cap confirms. Returns 0, or -1 with a->err filled (then amqp_close). */
static int amqp_open(struct amqp *a, uint64_t cap)
{
	const char *port = getenv("TOLLGATE_AMQP_PORT"), *user = getenv("TOLLGATE_AMQP_USER"),
		   *pass = getenv("TOLLGATE_AMQP_PASSWORD");
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct wbuf w;
	char plain[256];
	memset(a, 0, sizeof *a);
	a->frame_max = 131072;
	a->in = malloc(a->frame_max);
	a->cap = cap;
	a->confirmed = calloc(cap + 1, 1);
	a->fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_port = htons((uint16_t)atoi(port ? port : "55672"));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (!a->in || !a->confirmed || a->fd < 0 || connect(a->fd, (void *)&sa, sizeof sa) != 0) {
		snprintf(a->err, sizeof a->err, "connect to 127.0.0.1:%s: %s", port ? port : "55672",
			 strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (tls_start(a) != 0)
		return -1;
	if (write_all(a, "AMQP\0\0\x09\x01", 8) != 0 || amqp_expect(a, 10, 10, 5000) != 0)
		return -1;
	/* Connection.StartOk: no client properties, PLAIN, en_US. */
	int n = snprintf(plain, sizeof plain, "%c%s%c%s", 0, user ? user : "guest", 0,
			 pass ? pass : "guest");
	w.n = 0;
	put16(&w, 10);
	put16(&w, 11);
	put32(&w, 0);
	put_short_str(&w, "PLAIN");
	put_long_str(&w, plain, (size_t)n);
	put_short_str(&w, "en_US");
	if (amqp_method(a, 0, &w) != 0)
		return -1;
	/* Connection.Tune: take the broker's channel and frame limits, no heartbeat. */
	uint32_t len;
	unsigned c = 0, m = 0;
	int64_t deadline = itest_now_ms() + 5000;
	while (!(c == 10 && m == 30)) {
		int64_t left = deadline - itest_now_ms();
		if (left <= 0 || amqp_recv(a, (int)left, &len, &c, &m) < 0) {
			if (!a->err[0])
				snprintf(a->err, sizeof a->err, "no Connection.Tune from the broker");
			return -1;
		}
	}
	unsigned channel_max = (unsigned)a->in[4] << 8 | a->in[5];
	uint32_t frame_max = get32(a->in + 6);
	if (frame_max && frame_max < a->frame_max)
		a->frame_max = frame_max;
	w.n = 0;
	put16(&w, 10);
	put16(&w, 31);
	put16(&w, channel_max);
	put32(&w, a->frame_max);
	put16(&w, 0);
	if (amqp_method(a, 0, &w) != 0)
		return -1;
	w.n = 0; /* Connection.Open "/" */
	put16(&w, 10);
	put16(&w, 40);
	put_short_str(&w, "/");
	put_short_str(&w, "");
	put8(&w, 0);
	if (amqp_method(a, 0, &w) != 0 || amqp_expect(a, 10, 41, 5000) != 0)
		return -1;
	w.n = 0; /* Channel.Open */
	put16(&w, 20);
	put16(&w, 10);
	put_short_str(&w, "");
	if (amqp_method(a, 1, &w) != 0 || amqp_expect(a, 20, 11, 5000) != 0)
		return -1;
	w.n = 0; /* Confirm.Select */
	put16(&w, 85);
	put16(&w, 10);
	put8(&w, 0);
	if (amqp_method(a, 1, &w) != 0 || amqp_expect(a, 85, 11, 5000) != 0)
		return -1;
	return 0;
}

/* Publishes body persistently to the usage exchange (as the responders'
 * publishers do: mandatory, message_id = batch id). Not yet confirmed. */
static int amqp_publish(struct amqp *a, const char *message_id, const char *body)
{
	size_t n = strlen(body);
	struct wbuf w = {.n = 0};
	if (a->published >= a->cap || n + 8 > a->frame_max) {
		snprintf(a->err, sizeof a->err, "publish: out of room");
		return -1;
	}
	put16(&w, 60); /* Basic.Publish */
	put16(&w, 40);
	put16(&w, 0);
	put_short_str(&w, "tollgate.usage");
	put_short_str(&w, "usage");
	put8(&w, 1); /* mandatory: an unroutable batch comes back as an error */
	if (amqp_method(a, 1, &w) != 0)
		return -1;
	w.n = 0; /* content header: content-type, delivery-mode 2, message-id */
	put16(&w, 60);
	put16(&w, 0);
	put64(&w, n);
	put16(&w, 0x8000 | 0x1000 | 0x0080);
	put_short_str(&w, "application/json");
	put8(&w, 2);
	put_short_str(&w, message_id);
	if (amqp_send(a, 2, 1, w.b, w.n) != 0 || amqp_send(a, 3, 1, body, n) != 0)
		return -1;
	a->published++;
	return 0;
}

/* Waits for the confirm of every message published so far. */
static int amqp_wait_confirms(struct amqp *a, int timeout_ms)
{
	int64_t deadline = itest_now_ms() + timeout_ms;
	while (a->confirmed_upto < a->published) {
		uint32_t len;
		unsigned c, m;
		int64_t left = deadline - itest_now_ms();
		if (left <= 0 || amqp_recv(a, (int)left, &len, &c, &m) < 0) {
			if (!a->err[0])
				snprintf(a->err, sizeof a->err, "%llu of %llu publishes confirmed",
					 (unsigned long long)a->confirmed_upto,
					 (unsigned long long)a->published);
			return -1;
		}
		if (c == 60 && (m == 120 || m == 50)) {
			snprintf(a->err, sizeof a->err, "the broker %s a batch",
				 m == 50 ? "returned (no queue bound to tollgate.usage)" : "nacked");
			return -1;
		}
		if (c != 60 || m != 80 || len < 13)
			continue;
		uint64_t tag = get64(a->in + 4);
		int multiple = a->in[12] & 1;
		if (tag == 0 || tag > a->cap)
			continue;
		for (uint64_t t = multiple ? a->confirmed_upto + 1 : tag; t <= tag; t++)
			a->confirmed[t] = 1;
		while (a->confirmed_upto < a->published && a->confirmed[a->confirmed_upto + 1])
			a->confirmed_upto++;
	}
	return 0;
}

/* A batch body as src/usage/usagemsg.h describes it: one bucket per endpoint
 * "<endpoint_base><i>" (i < nendpoints) of the current minute, with these
 * counts each. */
static void batch_body(char *out, size_t n, const char *batch, const char *key_id,
		       const char *endpoint_base, int nendpoints, const int64_t c[O_COUNTED])
{
	int64_t minute = (int64_t)time(NULL) / 60 * 60;
	size_t len = (size_t)snprintf(out, n, "{\"v\":1,\"batch\":\"%s\",\"checks\":[", batch);
	for (int i = 0; i < nendpoints && len < n; i++)
		len += (size_t)snprintf(out + len, n - len,
					"%s[\"%s\",\"%s%d\",%lld,%lld,%lld,%lld,%lld,%lld]",
					i ? "," : "", key_id, endpoint_base, i, (long long)minute,
					(long long)c[O_ALLOWED], (long long)c[O_ALLOWED],
					(long long)c[O_RATE_LIMITED], (long long)c[O_QUOTA_EXCEEDED],
					(long long)c[O_DENIED_OTHER]);
	if (len < n)
		snprintf(out + len, n - len, "]}");
}

/* Batch ids shaped like the publishers' ("<16 base62>:<from>-<to>"), in a
 * journal id no responder uses. */
static void batch_id(char *out, size_t n, const char *tag, long from, long to)
{
	char jid[128];
	snprintf(jid, sizeof jid, "%s%s0000000000000000", tag, itest_suffix());
	snprintf(out, n, "%.16s:%ld-%ld", jid, from, to);
}

/* A scenario of direct publishes: its expected counts, for key K_BIG. */
static struct scenario *published_scenario(const char *name, const char *tag,
					   const int64_t want[O_COUNTED])
{
	struct scenario *sc = scenario_new(name, tag, 1);
	if (sc)
		for (int o = 0; o < O_COUNTED; o++)
			sc->got.n[K_BIG][o] = want[o];
	return sc;
}

/* Polls until key_id's allowed count reaches want (bounded); returns it. */
static int64_t wait_allowed(const char *key_id, int64_t want, int timeout_ms)
{
	int64_t got[O_COUNTED] = {0}, t0 = itest_now_ms();
	while (itest_now_ms() - t0 < timeout_ms) {
		if (pg_counted(key_id, got) == 0 && got[O_ALLOWED] >= want)
			break;
		itest_sleep_ms(100);
	}
	return got[O_ALLOWED];
}

/* One batch id published three times: twice back to back, then once more
 * after the first was applied. Each round ends with a sentinel batch of
 * another scenario: once the sentinel is counted, billingd has consumed
 * what was queued before it (one consumer, one queue, in order). */
static void test_redelivery(void)
{
	static const int64_t want[O_COUNTED] = {7, 3, 2, 1};
	static const int64_t one[O_COUNTED] = {1, 0, 0, 0};
	struct scenario *sc = published_scenario("one batch published 3 times", "redeliver", want);
	struct scenario *sentinel = published_scenario("sentinel batches", "sentinel", one);
	struct amqp a;
	char id[64], sid[64], body[1024], sbody[1024];
	if (!sc || !sentinel)
		return;
	sentinel->got.n[K_BIG][O_ALLOWED] = 2;
	int64_t t0 = itest_now_ms();
	batch_id(id, sizeof id, "R", 1, 2);
	batch_body(body, sizeof body, id, sc->keys[K_BIG].id, "POST /uf-redeliver", 1, want);
	int ok = amqp_open(&a, 16) == 0;
	for (int round = 0; ok && round < 2; round++) {
		batch_id(sid, sizeof sid, "S", round, round + 1);
		batch_body(sbody, sizeof sbody, sid, sentinel->keys[K_BIG].id, "POST /uf-sentinel", 1,
			   one);
		ok = amqp_publish(&a, id, body) == 0 && (round == 1 || amqp_publish(&a, id, body) == 0) &&
		     amqp_publish(&a, sid, sbody) == 0 && amqp_wait_confirms(&a, 10000) == 0;
		if (ok)
			EXPECT(wait_allowed(sentinel->keys[K_BIG].id, round + 1, 30000) >= round + 1,
			       "sentinel batch %d was not counted within 30 s (billingd %s)", round,
			       billingd_alive() ? "runs" : "does not run");
	}
	EXPECT(ok, "publishing to RabbitMQ: %s", a.err);
	amqp_close(&a);
	sc->matched = counted_equal(sc, NULL);
	sc->matched_at = sentinel->matched_at = itest_now_ms();
	sentinel->matched = counted_equal(sentinel, NULL);
	struct counts db;
	counted_equal(sc, &db);
	printf("\n    (batch %s published 3 times: counted allowed %lld, rate_limited %lld, "
	       "quota_exceeded %lld, denied_other %lld, expected 7/3/2/1; %lld ms) ",
	       id, (long long)db.n[K_BIG][O_ALLOWED], (long long)db.n[K_BIG][O_RATE_LIMITED],
	       (long long)db.n[K_BIG][O_QUOTA_EXCEEDED], (long long)db.n[K_BIG][O_DENIED_OTHER],
	       (long long)(itest_now_ms() - t0));
	EXPECT(sc->matched, "a batch published 3 times is not counted exactly once");
	EXPECT(sentinel->matched, "the sentinel batches are not counted exactly once");
}

/* A backlog: billingd stopped, BACKLOG batches (and BACKLOG_DUP of them once
 * more) queued, billingd started and SIGKILLed as soon as its first
 * transaction is visible, then started again: every batch counted once.
 * Each batch has buckets of its own (BACKLOG_ENDPOINTS endpoints named after
 * it), so that billingd has rows to write and the kill finds it at work. */
enum { BACKLOG = 20000, BACKLOG_DUP = 2000, BACKLOG_ENDPOINTS = 10, WINDOW = 500 };

static void test_backlog_kill(void)
{
	static const int64_t one[O_COUNTED] = {1, 0, 0, 0};
	int64_t want[O_COUNTED] = {(int64_t)BACKLOG * BACKLOG_ENDPOINTS, 0, 0, 0};
	struct scenario *sc = published_scenario("backlog, billingd SIGKILLed", "backlog", want);
	struct amqp a;
	char id[64], body[4096], endpoint[64];
	if (!sc || !EXPECT(stack("billingd-stop") == 0, "contrib/stack billingd-stop failed"))
		return;
	int64_t t0 = itest_now_ms();
	int ok = amqp_open(&a, BACKLOG + BACKLOG_DUP) == 0;
	for (long i = 0; ok && i < BACKLOG + BACKLOG_DUP; i++) {
		long b = i < BACKLOG ? i : i - BACKLOG;
		batch_id(id, sizeof id, "B", b * 10, b * 10 + 10);
		snprintf(endpoint, sizeof endpoint, "POST /uf-backlog/%ld/", b);
		batch_body(body, sizeof body, id, sc->keys[K_BIG].id, endpoint, BACKLOG_ENDPOINTS,
			   one);
		ok = amqp_publish(&a, id, body) == 0 &&
		     ((i + 1) % WINDOW != 0 || amqp_wait_confirms(&a, 20000) == 0);
	}
	ok = ok && amqp_wait_confirms(&a, 20000) == 0;
	EXPECT(ok, "publishing the backlog: %s", a.err);
	amqp_close(&a);
	int64_t published = itest_now_ms() - t0;

	EXPECT(stack("billingd-start") == 0, "contrib/stack billingd-start failed");
	int64_t at_kill = 0, t1 = itest_now_ms();
	while (itest_now_ms() - t1 < 30000) {
		int64_t got[O_COUNTED];
		if (pg_counted(sc->keys[K_BIG].id, got) == 0 && got[O_ALLOWED] > 0) {
			at_kill = got[O_ALLOWED];
			break;
		}
		itest_sleep_ms(20);
	}
	EXPECT(stack("billingd-kill") == 0, "contrib/stack billingd-kill failed");
	int64_t got[O_COUNTED] = {0};
	pg_counted(sc->keys[K_BIG].id, got);
	EXPECT(stack("billingd-start") == 0, "contrib/stack billingd-start failed");
	int64_t t2 = itest_now_ms();
	wait_allowed(sc->keys[K_BIG].id, want[O_ALLOWED], (int)match_timeout_ms);
	sc->matched = counted_equal(sc, NULL);
	sc->matched_at = itest_now_ms();
	int64_t end[O_COUNTED] = {0};
	pg_counted(sc->keys[K_BIG].id, end);
	printf("\n    (backlog: %d batches + %d again published in %lld ms; %lld of %lld counted at "
	       "the first look, %lld just after the kill; %lld counted %lld ms after the restart%s) ",
	       (int)BACKLOG, (int)BACKLOG_DUP, (long long)published, (long long)at_kill,
	       (long long)want[O_ALLOWED], (long long)got[O_ALLOWED], (long long)end[O_ALLOWED],
	       (long long)(sc->matched_at - t2), sc->matched ? ", equal" : ", NOT EQUAL");
	if (got[O_ALLOWED] >= want[O_ALLOWED])
		printf("\n    (note: the backlog was drained before the kill) ");
	EXPECT(sc->matched, "backlog: %lld counted, %lld published once", (long long)end[O_ALLOWED],
	       (long long)want[O_ALLOWED]);
}

/* ---- erasure ---- */

/* Rows of key_id in the tables billingd writes; -1 when the query failed. */
static long long erased_rows(const char *key_id)
{
	const char *params[1] = {key_id};
	PGresult *res = PQexecParams(
		pg,
		"SELECT (SELECT count(*) FROM usage_minute WHERE key_id = $1)"
		" + (SELECT count(*) FROM usage_hour WHERE key_id = $1)"
		" + (SELECT count(*) FROM key_quota_use WHERE key_id = $1)"
		" + (SELECT count(*) FROM key_credit_use WHERE key_id = $1)"
		" + (SELECT count(*) FROM usage_event_ids WHERE key_id = $1)",
		1, NULL, params, NULL, NULL, 0);
	long long n = PQresultStatus(res) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
							       : -1;
	PQclear(res);
	return n;
}

/* Usage of an erased key still in flight -- checks queued in the broker
 * while billingd is stopped, and a batch published directly after the
 * erasure -- brings none of its rows back: billingd drops it.  A sentinel
 * batch published last tells when billingd has consumed the rest. */
static void test_erased_in_flight(void)
{
	static const int64_t five[O_COUNTED] = {5, 0, 0, 0};
	static const int64_t one[O_COUNTED] = {1, 0, 0, 0};
	struct scenario *sentinel = published_scenario("sentinel after an erasure", "erasure", one);
	struct itest_key k;
	struct itest_resp r;
	struct amqp a;
	char owner[96], path[160], id[64], sid[64], body[1024], sbody[1024];
	snprintf(owner, sizeof owner, "uf-erased-%s", itest_suffix());
	if (!sentinel || itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0 ||
	    !EXPECT(stack("billingd-stop") == 0, "contrib/stack billingd-stop failed"))
		return;
	for (int i = 0; i < 5; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
	itest_sleep_ms(1000); /* the journals publish every 250 ms */
	snprintf(path, sizeof path, "/v1/owners/%s", owner);
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 202);
	itest_resp_fini(&r);
	batch_id(id, sizeof id, "E", 1, 2);
	batch_body(body, sizeof body, id, k.id, "POST /uf-erased", 1, five);
	batch_id(sid, sizeof sid, "F", 1, 2);
	batch_body(sbody, sizeof sbody, sid, sentinel->keys[K_BIG].id, "POST /uf-sentinel", 1, one);
	int ok = amqp_open(&a, 4) == 0 && amqp_publish(&a, id, body) == 0 &&
		 amqp_publish(&a, sid, sbody) == 0 && amqp_wait_confirms(&a, 10000) == 0;
	EXPECT(ok, "publishing to RabbitMQ: %s", a.err);
	amqp_close(&a);
	EXPECT(stack("billingd-start") == 0, "contrib/stack billingd-start failed");
	if (ok)
		EXPECT(wait_allowed(sentinel->keys[K_BIG].id, 1, 30000) >= 1,
		       "the sentinel batch was not counted within 30 s (billingd %s)",
		       billingd_alive() ? "runs" : "does not run");
	sentinel->matched = counted_equal(sentinel, NULL);
	sentinel->matched_at = itest_now_ms();
	long long rows = erased_rows(k.id);
	printf("\n    (erased key %s: %lld rows after its usage in flight was consumed) ", k.id, rows);
	EXPECT(rows == 0, "usage of the erased key %s came back: %lld rows", k.id, rows);
}

/* ---- no late duplicate ---- */

static void test_stable(void)
{
	int64_t last = 0;
	for (int i = 0; i < nscenarios; i++)
		if (scenarios[i].matched_at > last)
			last = scenarios[i].matched_at;
	if (last && itest_now_ms() - last < STABLE_MS)
		itest_sleep_ms(STABLE_MS - (itest_now_ms() - last));
	for (int i = 0; i < nscenarios; i++) {
		struct scenario *sc = &scenarios[i];
		struct counts db;
		if (!sc->matched && sc->exact)
			continue; /* already failed */
		if (!sc->exact) {
			int64_t now = 0, got[O_COUNTED];
			for (int k = 0; k < NKEYS; k++)
				if (pg_counted(sc->keys[k].id, got) == 0)
					now += sum_outcomes(got, 0, O_COUNTED);
			printf("\n    (%s: %lld counted now) ", sc->name, (long long)now);
			continue;
		}
		int eq = counted_equal(sc, &db);
		if (!eq) {
			printf("\n    (%s: changed after it matched)", sc->name);
			report_diff(sc, &db);
		}
		EXPECT(eq, "%s: usage_minute changed after it matched the client's counts", sc->name);
	}
}

int main(void)
{
	if (itest_init() != 0 || pg_open() != 0)
		return 2;
	int64_t t0 = itest_now_ms();
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	CU_pSuite s = CU_add_suite("usage faults", NULL, NULL);
	CU_add_test(s, "RabbitMQ stopped and started under load", test_broker_down);
	CU_add_test(s, "pool restarted under load", test_restart_pool);
	CU_add_test(s, "one responder SIGKILLed", test_kill_responder);
	CU_add_test(s, "billingd SIGKILLed under load", test_billingd_kill);
	CU_add_test(s, "one batch published three times", test_redelivery);
	CU_add_test(s, "backlog across a billingd SIGKILL", test_backlog_kill);
	CU_add_test(s, "usage of an erased key in flight is dropped", test_erased_in_flight);
	CU_add_test(s, "no late duplicate", test_stable);
	metrics_faults_add(s);
	CU_add_test(s, "alert delivered after a billingd SIGKILL mid-delivery", alert_faults_kill);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int rc = CU_get_number_of_failures() == 0 && CU_get_number_of_tests_failed() == 0 ? 0 : 1;
	printf("usage faults: %lld s in all\n", (long long)((itest_now_ms() - t0 + 500) / 1000));
	CU_cleanup_registry();
	PQfinish(pg);
	itest_fini();
	return rc;
}
