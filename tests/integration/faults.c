/*
 * faults.c - tollgate-faults: the check path while Redis misbehaves, against
 * the real stack, and readiness while Redis, RabbitMQ or PostgreSQL is down.
 * It stops and starts the stack's Redis, RabbitMQ and PostgreSQL and restarts
 * the responder pool in each failure mode through contrib/stack, so it runs on
 * its own (contrib/stack test runs it after the other suites).
 *
 * Environment: as tollgate-itest, plus TOLLGATE_REDIS_PORT, TOLLGATE_STACK
 * (the path of contrib/stack) and TOLLGATE_REDIS_CLI (run/redis-cli: redis-cli
 * as the stack's Redis administrator, over TLS when the stack uses it).
 *
 * With TOLLGATE_CLUSTER_NODE=host:port (a node of the Redis Cluster the pool
 * runs on) the suite tests the cluster instead: scripts flushed on every
 * primary under load, and every slot of one primary moved to another while
 * checks go on. The single-Redis tests are then left out.
 */
#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "itest_fixture.h"
#include "itest_http.h"
#include "refill_faults.h"

static const char *stack_cmd(void)
{
	const char *s = getenv("TOLLGATE_STACK");
	return s && *s ? s : "contrib/stack";
}

/* Runs "<env> contrib/stack <args>"; returns its exit status. */
static int stack(const char *env, const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s %s %s >/dev/null", env, stack_cmd(), args);
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The command that runs redis-cli on the stack's Redis servers. */
static const char *redis_cli_cmd(void)
{
	const char *s = getenv("TOLLGATE_REDIS_CLI");
	return s && *s ? s : "redis-cli";
}

static int redis_cli(const char *args)
{
	char cmd[512];
	const char *port = getenv("TOLLGATE_REDIS_PORT");
	snprintf(cmd, sizeof cmd, "%s -h 127.0.0.1 -p %s %s >/dev/null 2>&1", redis_cli_cmd(),
		 port ? port : "56379", args);
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* A key whose limits are never reached by these tests. */
static int make_key(struct itest_key *k)
{
	char owner[64];
	snprintf(owner, sizeof owner, "faults-%s", itest_suffix());
	return itest_key_create(k, owner, itest_big_tier(), NULL, NULL);
}

/* ---- checks under load ---- */

enum { THREADS = 8 };

struct hammer {
	const char *key;
	const _Atomic int64_t *until_ms; /* shared; may be moved while running */
	long ok, failed, last_failed_status;
};

/* THREADS threads checking one key until *until_ms. */
struct hammers {
	_Atomic int64_t until_ms;
	struct hammer h[THREADS];
	pthread_t t[THREADS];
	int running[THREADS];
};

static size_t discard(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	CURL *c = curl_easy_init();
	char url[512], auth[512], body[512];
	struct curl_slist *hdr = NULL;
	snprintf(url, sizeof url, "%s/v1/check", getenv("TOLLGATE_URL"));
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", itest_admin_token());
	snprintf(body, sizeof body, "{\"key\":\"%s\"}", h->key);
	hdr = curl_slist_append(hdr, auth);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	itest_tls(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	while (itest_now_ms() < atomic_load(h->until_ms)) {
		long status = 0;
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200) {
			h->ok++;
		} else {
			h->failed++;
			h->last_failed_status = status;
		}
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return NULL;
}

static void hammers_start(struct hammers *hs, const char *key, int64_t until_ms)
{
	memset(hs, 0, sizeof *hs);
	atomic_init(&hs->until_ms, until_ms);
	int started = 0;
	for (int i = 0; i < THREADS; i++) {
		hs->h[i].key = key;
		hs->h[i].until_ms = &hs->until_ms;
		hs->running[i] = pthread_create(&hs->t[i], NULL, hammer_main, &hs->h[i]) == 0;
		started += hs->running[i];
	}
	EXPECT(started == THREADS, "only %d of %d hammer threads started", started, (int)THREADS);
}

/* Waits for the threads; adds up their counts. */
static void hammers_join(struct hammers *hs, long *ok, long *failed, long *last)
{
	*ok = *failed = *last = 0;
	for (int i = 0; i < THREADS; i++) {
		if (!hs->running[i])
			continue;
		pthread_join(hs->t[i], NULL);
		*ok += hs->h[i].ok;
		*failed += hs->h[i].failed;
		if (hs->h[i].failed)
			*last = hs->h[i].last_failed_status;
	}
}

/* SCRIPT FLUSH on every server, again and again while a hammer runs for
 * ms: no check fails. flush() flushes once and returns 0 when every server
 * did. */
static void flush_under_load(int (*flush)(void), int64_t ms)
{
	struct itest_key k;
	if (make_key(&k) != 0)
		return;
	struct hammers hs;
	int64_t until = itest_now_ms() + ms;
	hammers_start(&hs, k.key, until);
	int flushes = 0;
	/* A round every 250 ms, or back to back when a round takes longer (each
	 * redis-cli opens a TLS connection: slow on a loaded machine). */
	while (itest_now_ms() < until - 200) {
		int64_t round = itest_now_ms();
		flushes += flush() == 0;
		int64_t left = 250 - (itest_now_ms() - round);
		if (left > 0)
			itest_sleep_ms(left);
	}
	long ok, failed, last;
	hammers_join(&hs, &ok, &failed, &last);
	EXPECT(flushes >= 10, "SCRIPT FLUSH ran only %d times", flushes);
	EXPECT(ok > 100, "only %ld checks succeeded", ok);
	EXPECT(failed == 0, "%ld checks failed during SCRIPT FLUSH (last status %ld)", failed, last);
}

static int flush_single(void)
{
	return redis_cli("SCRIPT FLUSH");
}

static void test_script_flush(void)
{
	flush_under_load(flush_single, 5000);
}

/* ---- Redis stopped, in each failure mode ---- */

/* Checks once; returns the status and the time it took. */
static long timed_check(const char *key, int64_t *ms, struct itest_resp *r)
{
	int64_t t0 = itest_now_ms();
	itest_check(r, itest_admin_token(), key);
	*ms = itest_now_ms() - t0;
	return r->status;
}

/* GET /readyz: its status and the state it gives dep ("" when absent). */
static long readyz(const char *dep, char *state, size_t size)
{
	struct itest_resp r;
	itest_call(&r, "GET", "/readyz", NULL, NULL);
	const char *s = itest_str(itest_get(r.json, "checks"), dep);
	snprintf(state, size, "%s", s ? s : "");
	long status = r.status;
	itest_resp_fini(&r);
	return status;
}

/* Readiness with Redis down: every process of the pool answers the same. */
static void expect_readyz_redis(long want)
{
	char state[32];
	int right = 0;
	for (int i = 0; i < 8; i++) {
		long st = readyz("redis", state, sizeof state);
		right += st == want && strcmp(state, want == 503 ? "failed" : "degraded") == 0;
	}
	EXPECT(right == 8, "%d of 8 GET /readyz answered %ld with redis %s while Redis was down",
	       right, want, want == 503 ? "failed" : "degraded");
}

/* Redis stops: every check gets `want` (503 or 200) quickly; Redis returns:
 * checks are counted again within 2 s, without restarting the pool. */
static void store_down(long want)
{
	struct itest_key k;
	struct itest_resp r;
	int64_t ms;
	if (make_key(&k) != 0)
		return;
	timed_check(k.key, &ms, &r);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	EXPECT(stack("", "redis-stop") == 0, "contrib/stack redis-stop failed");
	int64_t took[20];
	int right = 0;
	for (int i = 0; i < 20; i++) {
		long st = timed_check(k.key, &ms, &r);
		took[i] = ms;
		if (st == want && (want != 503 || EXPECT_ERROR(&r, 503, "unavailable", NULL)))
			right++;
		if (want == 200)
			EXPECT(!itest_has(itest_idx(itest_get(r.json, "limits"), 0), "remaining"),
			       "an uncounted check shows no remaining");
		itest_resp_fini(&r);
	}
	EXPECT(right == 20, "%d of 20 checks answered %ld while Redis was down", right, want);
	/* Each check waits at most the Redis timeout (50 ms) plus the PostgreSQL
	 * re-read of the key: the median says so.  The slowest may also have
	 * waited for a busy machine's scheduler, so it is bounded only against
	 * a hang (a check held for a connect timeout or more). */
	qsort(took, 20, sizeof took[0], itest_cmp_i64);
	EXPECT(took[9] < 200, "the median check took %lld ms while Redis was down",
	       (long long)took[9]);
	EXPECT(took[19] < 2000, "a check took %lld ms while Redis was down", (long long)took[19]);
	printf("\n    (Redis down: 20 checks answered %ld, median %lld ms, slowest %lld ms) ", want,
	       (long long)took[9], (long long)took[19]);
	expect_readyz_redis(want);
	EXPECT(stack("", "redis-start") == 0, "contrib/stack redis-start failed");
	int64_t t0 = itest_now_ms(), back = -1;
	while (itest_now_ms() - t0 < 5000) {
		timed_check(k.key, &ms, &r);
		int counted = r.status == 200 &&
			      itest_has(itest_idx(itest_get(r.json, "limits"), 0), "remaining");
		itest_resp_fini(&r);
		if (counted) {
			back = itest_now_ms() - t0;
			break;
		}
		itest_sleep_ms(50);
	}
	EXPECT(back >= 0 && back < 2000, "checks were counted again after %lld ms", (long long)back);
	printf("(counted again %lld ms after Redis started) ", (long long)back);
}

static void test_down_closed(void)
{
	store_down(503);
}

static void test_down_open(void)
{
	EXPECT(stack("TOLLGATE_RATELIMIT_ON_STORE_ERROR=open", "restart-pool build") == 0,
	       "pool restart in open mode failed");
	store_down(200);
	struct itest_resp r;
	itest_metrics(&r);
	EXPECT(r.body && strstr(r.body, "tollgate_redis_errors_total{kind=\"ratelimit\"} 0") == NULL,
	       "the failures are counted in /metrics");
	itest_resp_fini(&r);
	EXPECT(stack("", "restart-pool build") == 0, "pool restart failed");
}

/* Local mode: while Redis is down each of the pool's 4 processes enforces a
 * quarter of the limit, so the pool admits at most the limit and at least
 * one process's share. */
static void test_down_local(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[64];
	EXPECT(stack("TOLLGATE_RATELIMIT_ON_STORE_ERROR=local TOLLGATE_RATELIMIT_PROCESSES=4",
		     "restart-pool build") == 0, "pool restart in local mode failed");
	snprintf(owner, sizeof owner, "faults-local-%s", itest_suffix());
	if (itest_key_create(&k, owner, itest_big_tier(),
			     "\"limits\":[{\"name\":\"per_minute\",\"window_s\":60,\"limit\":8}]",
			     NULL) != 0)
		return;
	EXPECT(stack("", "redis-stop") == 0, "contrib/stack redis-stop failed");
	int admitted = 0, limited = 0;
	for (int i = 0; i < 40; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		if (r.status == 200)
			admitted++;
		else if (r.status == 429 && EXPECT_STR(&r, r.json, "reason", "rate_limited"))
			limited++;
		itest_resp_fini(&r);
	}
	EXPECT(admitted >= 2 && admitted <= 8, "%d admitted of 40 with a limit of 8 shared by 4 processes",
	       admitted);
	EXPECT(admitted + limited == 40, "%d checks were neither admitted nor limited",
	       40 - admitted - limited);
	printf("\n    (local mode: %d of 40 admitted, %d limited) ", admitted, limited);
	EXPECT(stack("", "redis-start") == 0, "contrib/stack redis-start failed");
	EXPECT(stack("", "restart-pool build") == 0, "pool restart failed");
}

/* A key revoked while Redis is down -- its new version cannot be published
 * -- is refused by every process within 3 s of Redis returning, although
 * each process had it cached as active (the change feed publishes it). */
static void test_revoke_while_down(void)
{
	struct itest_key k;
	struct itest_resp r;
	char path[256];
	int i, admitted = 0, revoked = 0, other = 0;
	long last = 0;
	if (make_key(&k) != 0)
		return;
	for (i = 0; i < 40; i++) { /* cached as active by every process of the pool */
		itest_check(&r, itest_admin_token(), k.key);
		admitted += r.status == 200;
		itest_resp_fini(&r);
	}
	EXPECT(admitted == 40, "%d of 40 warm-up checks admitted", admitted);
	EXPECT(stack("", "redis-stop") == 0, "contrib/stack redis-stop failed");
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	EXPECT(stack("", "redis-start") == 0, "contrib/stack redis-start failed");
	itest_sleep_ms(3000);
	admitted = 0;
	for (i = 0; i < 40; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		if (r.status == 403 && itest_str(r.json, "reason") &&
		    strcmp(itest_str(r.json, "reason"), "revoked") == 0)
			revoked++;
		else if (r.status == 200)
			admitted++;
		else {
			other++;
			last = r.status;
		}
		itest_resp_fini(&r);
	}
	EXPECT(revoked == 40, "3 s after Redis returned, a key revoked while it was down: %d of 40 "
	       "checks revoked, %d admitted, %d other (last %ld)", revoked, admitted, other, last);
}

static int plain_word(const char *s, const char *more);

/* The stack's hmac_secret, read from $TOLLGATE_RUN_DIR/tollgate.conf. */
static int current_secret(char *out, size_t n)
{
	char path[1024], line[1024];
	const char *run = getenv("TOLLGATE_RUN_DIR");
	int found = -1;
	snprintf(path, sizeof path, "%s/tollgate.conf", run ? run : "run");
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *v = line + strspn(line, " \t");
		if (strncmp(v, "hmac_secret", 11) != 0)
			continue;
		v += 11 + strspn(v + 11, " \t");
		if (*v != '=')
			continue;
		v += 1 + strspn(v + 1, " \t");
		v[strcspn(v, " \t\r\n")] = '\0';
		snprintf(out, n, "%s", v);
		found = plain_word(out, "") ? 0 : -1; /* goes into a shell command */
	}
	fclose(f);
	return found;
}

/* Rotating the key-hashing secret: with the old one listed as previous,
 * keys and tokens made under it keep working and new ones are made under the
 * new one; once it is removed, its keys are invalid_key and its tokens are
 * refused, and the new ones still work. Nothing is re-hashed. */
static void test_secret_rotation(void)
{
	struct itest_key k1, k2;
	struct itest_token t2;
	struct itest_resp r;
	char old[256], env[1024], owner[64];
	static const char next[] = "rotated0123456789abcdef0123456789abcdef";
	if (!EXPECT(current_secret(old, sizeof old) == 0, "cannot read hmac_secret of the stack"))
		return;
	if (make_key(&k1) != 0)
		return;
	snprintf(env, sizeof env,
		 "TOLLGATE_SECURITY_HMAC_SECRET=%s TOLLGATE_SECURITY_HMAC_SECRET_ID=rot2 "
		 "TOLLGATE_SECURITY_HMAC_PREVIOUS=1:%s", next, old);
	if (!EXPECT(stack(env, "restart-pool build") == 0, "pool restart with a new secret failed"))
		goto restore;
	itest_check(&r, itest_admin_token(), k1.key);
	EXPECT(r.status == 200, "a key of the previous secret: %ld %.200s", r.status, r.body);
	itest_resp_fini(&r);
	snprintf(owner, sizeof owner, "faults-rot-%s", itest_suffix());
	if (itest_key_create(&k2, owner, itest_big_tier(), NULL, NULL) != 0 ||
	    itest_token_create(&t2, "admin") != 0)
		goto restore;
	itest_check(&r, t2.token, k2.key);
	EXPECT(r.status == 200, "a key of the new secret: %ld %.200s", r.status, r.body);
	itest_resp_fini(&r);

	snprintf(env, sizeof env,
		 "TOLLGATE_SECURITY_HMAC_SECRET=%s TOLLGATE_SECURITY_HMAC_SECRET_ID=rot2", next);
	if (!EXPECT(stack(env, "restart-pool build") == 0, "pool restart without the old secret failed"))
		goto restore;
	itest_check(&r, t2.token, k1.key);
	EXPECT_ERROR(&r, 401, "invalid_key", NULL);
	itest_resp_fini(&r);
	itest_check(&r, t2.token, k2.key);
	EXPECT(r.status == 200, "a key of the new secret after the old one left: %ld %.200s",
	       r.status, r.body);
	itest_resp_fini(&r);
	itest_call(&r, "GET", "/v1/admin/whoami", itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
	itest_resp_fini(&r);
	itest_call(&r, "GET", "/v1/admin/whoami", t2.token, NULL);
	EXPECT(r.status == 200, "a token of the new secret: %ld", r.status);
	itest_resp_fini(&r);
restore:
	EXPECT(stack("", "restart-pool build") == 0, "pool restart failed");
}

/* ---- Redis Cluster ---- */

#define MAX_NODES 16
/* Bounds redis-cli --cluster reshard, in seconds. */
#define RESHARD_TIMEOUT_S 180

struct node {
	char id[48];
	char host[64];
	int port;
	int primary;
	int slots;    /* how many it serves */
	int has_slot; /* serves the slot asked about */
};

static const char *cluster_node(void)
{
	const char *s = getenv("TOLLGATE_CLUSTER_NODE");
	return s && *s ? s : NULL;
}

/* s is non-empty and made only of characters that need no quoting in a
 * shell command: letters, digits and those of `more`. */
static int plain_word(const char *s, const char *more)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(more, *s))
			return 0;
	return 1;
}

/* Splits "host:port" (the port after the last ':'). Returns 0, or -1 when
 * it is not one. */
static int split_addr(const char *addr, size_t addr_len, char *host, size_t n, int *port)
{
	const char *colon = NULL;
	for (size_t i = 0; i < addr_len; i++)
		if (addr[i] == ':')
			colon = addr + i;
	if (!colon || colon == addr || (size_t)(colon - addr) >= n)
		return -1;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || end != addr + addr_len || p <= 0 || p > 65535 ||
	    !plain_word(host, ".:-[]"))
		return -1;
	*port = (int)p;
	return 0;
}

static int seed_addr(char *host, size_t n, int *port)
{
	const char *s = cluster_node();
	return s ? split_addr(s, strlen(s), host, n, port) : -1;
}

/* Runs a shell command; its standard output goes to buf (cut at n - 1
 * bytes). Returns its exit status, -1 when it could not run. */
static int capture(const char *cmd, char *buf, size_t n)
{
	FILE *p = popen(cmd, "r");
	size_t len = 0, got;
	char rest[512];
	buf[0] = '\0';
	if (!p)
		return -1;
	while (len + 1 < n && (got = fread(buf + len, 1, n - 1 - len, p)) > 0)
		len += got;
	buf[len] = '\0';
	while (fread(rest, 1, sizeof rest, p) > 0)
		;
	int rc = pclose(p);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The nodes of the cluster, from CLUSTER NODES of the seed node, with the
 * slots each primary serves; has_slot marks the one serving `slot` (-1:
 * none). Nodes marked failing are left out. Returns how many, or -1 when
 * the node did not answer. */
static int cluster_nodes(int slot, struct node *out, int max)
{
	char host[64], cmd[256], buf[32768];
	int port, n = 0;
	if (seed_addr(host, sizeof host, &port) != 0)
		return -1;
	snprintf(cmd, sizeof cmd, "timeout 10 %s -h %s -p %d CLUSTER NODES 2>/dev/null",
		 redis_cli_cmd(), host, port);
	if (capture(cmd, buf, sizeof buf) != 0)
		return -1;
	char *lsave = NULL;
	for (char *line = strtok_r(buf, "\r\n", &lsave); line && n < max;
	     line = strtok_r(NULL, "\r\n", &lsave)) {
		/* <id> <host:port@bus[,hostname]> <flags> <primary> <ping> <pong>
		 * <epoch> <link> <slot or first-last>... ([slot->-id] and
		 * [slot-<-id] mark a slot on the move: its owner is unchanged). */
		struct node p;
		int field = 0, ok = 1;
		char *fsave = NULL;
		memset(&p, 0, sizeof p);
		for (char *w = strtok_r(line, " ", &fsave); w && ok; w = strtok_r(NULL, " ", &fsave), field++) {
			if (field == 0) {
				ok = strlen(w) < sizeof p.id && plain_word(w, "");
				if (ok)
					snprintf(p.id, sizeof p.id, "%s", w);
			} else if (field == 1) {
				ok = split_addr(w, strcspn(w, "@"), p.host, sizeof p.host, &p.port) == 0;
			} else if (field == 2) {
				ok = strstr(w, "fail") == NULL;
				p.primary = strstr(w, "master") != NULL;
			} else if (field >= 8 && p.primary && w[0] != '[') {
				char *end;
				long first = strtol(w, &end, 10), last = first;
				if (*end == '-')
					last = strtol(end + 1, &end, 10);
				if (first < 0 || last < first || last > 16383)
					continue;
				p.slots += (int)(last - first + 1);
				if (slot >= first && slot <= last)
					p.has_slot = 1;
			}
		}
		if (ok && field >= 8)
			out[n++] = p;
	}
	return n;
}

static int find_owner(const struct node *p, int n)
{
	for (int i = 0; i < n; i++)
		if (p[i].primary && p[i].has_slot)
			return i;
	return -1;
}

static int find_id(const struct node *p, int n, const char *id)
{
	for (int i = 0; i < n; i++)
		if (strcmp(p[i].id, id) == 0)
			return i;
	return -1;
}

/* One shell command that flushes the scripts of every primary, all at
 * once: one redis-cli after the other makes a round too slow on a loaded
 * machine. */
static char flush_cmd[4096];

static int flush_every_primary(void)
{
	int rc = system(flush_cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static void test_cluster_script_flush(void)
{
	struct node p[MAX_NODES];
	int n = cluster_nodes(-1, p, MAX_NODES), primaries = 0;
	size_t len = (size_t)snprintf(flush_cmd, sizeof flush_cmd, "timeout 10 sh -c '");
	for (int i = 0; i < n && len < sizeof flush_cmd; i++) {
		if (!p[i].primary)
			continue;
		len += (size_t)snprintf(flush_cmd + len, sizeof flush_cmd - len,
					"%s -h %s -p %d SCRIPT FLUSH >/dev/null 2>&1 & p%d=$!; ",
					redis_cli_cmd(), p[i].host, p[i].port, primaries);
		primaries++;
	}
	for (int i = 0; i < primaries && len < sizeof flush_cmd; i++)
		len += (size_t)snprintf(flush_cmd + len, sizeof flush_cmd - len, "%swait $p%d",
					i ? " && " : "", i);
	if (len < sizeof flush_cmd)
		len += (size_t)snprintf(flush_cmd + len, sizeof flush_cmd - len, "'");
	if (!EXPECT(primaries >= 2 && len < sizeof flush_cmd,
		    "CLUSTER NODES of %s shows %d primaries", cluster_node(), primaries))
		return;
	/* Longer than with one Redis: a round starts three redis-cli. */
	flush_under_load(flush_every_primary, 8000);
}

/* Every slot of the primary that serves a key's counters moves to another
 * primary while the key is checked without pause: each check still answers
 * 200, through the ASK and MOVED redirections of the move. */
static void test_cluster_reshard(void)
{
	struct itest_key k;
	char host[64], cmd[1024], out[64], log[512] = "/dev/null";
	int port;
	if (!EXPECT(seed_addr(host, sizeof host, &port) == 0,
		    "TOLLGATE_CLUSTER_NODE=%s is not host:port", cluster_node()))
		return;
	if (make_key(&k) != 0)
		return;
	if (!EXPECT(plain_word(k.id, "_-"), "unexpected key id %s", k.id))
		return;
	const char *logdir = getenv("TOLLGATE_LOG_DIR");
	if (logdir && *logdir && !strpbrk(logdir, "'\n"))
		snprintf(log, sizeof log, "%s/cluster-reshard.log", logdir);

	/* The slot of tg:{<key id>}:w and tg:{<key id>}:s, and who serves it. */
	snprintf(cmd, sizeof cmd, "timeout 10 %s -h %s -p %d CLUSTER KEYSLOT 'tg:{%s}:w'",
		 redis_cli_cmd(), host, port, k.id);
	int slot = -1;
	if (capture(cmd, out, sizeof out) == 0 && isdigit((unsigned char)out[0]))
		slot = atoi(out);
	if (!EXPECT(slot >= 0 && slot < 16384, "CLUSTER KEYSLOT answered \"%s\"", out))
		return;
	struct node p[MAX_NODES];
	int n = cluster_nodes(slot, p, MAX_NODES), from = find_owner(p, n > 0 ? n : 0), to = -1;
	for (int i = 0; i < n && to < 0; i++)
		if (p[i].primary && i != from)
			to = i;
	if (!EXPECT(from >= 0 && to >= 0, "CLUSTER NODES of %s: no primary serves slot %d, or no other",
		    cluster_node(), slot))
		return;
	struct node src = p[from], dst = p[to];

	/* The hammer runs at least 8 s, and on until 1 s after the move. */
	struct hammers hs;
	int64_t t0 = itest_now_ms();
	hammers_start(&hs, k.key, t0 + 8000 + RESHARD_TIMEOUT_S * 1000);
	itest_sleep_ms(1000);
	snprintf(cmd, sizeof cmd,
		 "timeout %d %s --cluster reshard %s:%d --cluster-from %s --cluster-to %s "
		 "--cluster-slots %d --cluster-yes >'%s' 2>&1 </dev/null",
		 RESHARD_TIMEOUT_S, redis_cli_cmd(), host, port, src.id, dst.id, src.slots, log);
	int64_t r0 = itest_now_ms();
	int rc = system(cmd);
	rc = rc == -1 ? -1 : WEXITSTATUS(rc);
	int64_t took = itest_now_ms() - r0, end = itest_now_ms() + 1000;
	atomic_store(&hs.until_ms, end > t0 + 8000 ? end : t0 + 8000);
	long ok, failed, last;
	hammers_join(&hs, &ok, &failed, &last);
	printf("\n    (%d slots moved from %s:%d to %s:%d in %lld ms, under %ld checks, %ld failed) ",
	       src.slots, src.host, src.port, dst.host, dst.port, (long long)took, ok + failed, failed);

	EXPECT(rc == 0, "redis-cli --cluster reshard exited %d (output in %s)", rc, log);
	/* The seed node may learn of the last slots by gossip: wait a little.
	 * A primary left without slots may turn into a replica of the node that
	 * took its last one (cluster-allow-replica-migration): either way it
	 * serves none. */
	int owner = -1, left = -1;
	for (int64_t w0 = itest_now_ms(); itest_now_ms() - w0 < 10000; itest_sleep_ms(200)) {
		n = cluster_nodes(slot, p, MAX_NODES);
		owner = n > 0 ? find_owner(p, n) : -1;
		left = n > 0 ? find_id(p, n, src.id) : -1;
		if (owner >= 0 && strcmp(p[owner].id, dst.id) == 0 && left >= 0 && p[left].slots == 0)
			break;
	}
	EXPECT(owner >= 0 && strcmp(p[owner].id, dst.id) == 0,
	       "slot %d is served by %s after the reshard, not by %s:%d", slot,
	       owner >= 0 ? p[owner].id : "nobody", dst.host, dst.port);
	EXPECT(left >= 0 && p[left].slots == 0, "%s:%d still serves %d slots", src.host, src.port,
	       left >= 0 ? p[left].slots : -1);
	EXPECT(ok > 100, "only %ld checks succeeded", ok);
	EXPECT(failed == 0, "%ld checks failed during the reshard (last status %ld)", failed, last);
}

/* ---- the Redis state lost: rebuilt from PostgreSQL ---- */

/* A key on a tier of its own with a monthly quota of 3 that blocks, or on
 * the big tier with these extra members. */
static int make_use_key(struct itest_key *k, const char *tag, int quota, const char *extra)
{
	char owner[64], tier[64], body[512];
	const char *name = itest_big_tier();
	struct itest_resp r;

	snprintf(owner, sizeof owner, "faults-%s-%s", tag, itest_suffix());
	if (quota) {
		snprintf(tier, sizeof tier, "fl%s-%s", itest_suffix(), tag);
		snprintf(body, sizeof body,
			 "{\"name\":\"%s\",\"limits\":[{\"name\":\"per_minute\",\"window_s\":60,"
			 "\"limit\":100000}],\"quota\":{\"period\":\"month\",\"included\":3,"
			 "\"overage\":\"block\"}}", tier);
		itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
		int ok = EXPECT_STATUS(&r, 201);
		itest_resp_fini(&r);
		if (!ok)
			return -1;
		name = tier;
	}
	return itest_key_create(k, owner, name, extra, NULL);
}

/* One check: its status, with reason and limit copied (empty when absent). */
static long use_check(const struct itest_key *k, char *reason, char *limit, int64_t *remaining)
{
	struct itest_resp r;
	itest_check(&r, itest_admin_token(), k->key);
	long st = r.status;
	const char *s = itest_str(r.json, "reason"), *l = itest_str(r.json, "limit");
	snprintf(reason, 32, "%s", s ? s : "");
	snprintf(limit, 32, "%s", l ? l : "");
	if (remaining && !itest_int(r.json, "remaining", remaining))
		*remaining = -1;
	itest_resp_fini(&r);
	return st;
}

/* Waits, at most 20 s, until the key's usage shows `want` allowed checks:
 * billingd then has recorded their cost in the same transaction. */
static int usage_settled(const struct itest_key *k, int64_t want)
{
	char path[256];
	int64_t t0 = itest_now_ms(), seen = -1;
	struct itest_resp r;

	snprintf(path, sizeof path, "/v1/keys/%s/usage", k->id);
	while (itest_now_ms() - t0 < 20000) {
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		json_object *data = itest_get(r.json, "data");
		seen = r.status == 200 ? 0 : -1;
		for (size_t i = 0; seen >= 0 && i < itest_len(data); i++) {
			int64_t a = 0;
			if (itest_int(itest_idx(data, i), "allowed", &a))
				seen += a;
		}
		itest_resp_fini(&r);
		if (seen == want)
			return 1;
		itest_sleep_ms(200);
	}
	return EXPECT(0, "usage of %s shows %lld allowed checks after 20 s, want %lld", k->id,
		      (long long)seen, (long long)want);
}

static int64_t shown_remaining(const struct itest_key *k)
{
	char path[256];
	struct itest_resp r;
	int64_t v = -1;

	snprintf(path, sizeof path, "/v1/keys/%s", k->id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	if (!itest_int(r.json, "remaining", &v))
		v = -1;
	itest_resp_fini(&r);
	return v;
}

/* Uses n checks of k, each allowed. */
static void use(const struct itest_key *k, int n)
{
	char reason[32], limit[32];
	for (int i = 0; i < n; i++) {
		long st = use_check(k, reason, limit, NULL);
		EXPECT(st == 200, "check %d of %d answered %ld (%s)", i + 1, n, st, reason);
	}
}

/* The next check is refused for `limit` (remaining or quota). */
static void expect_exhausted(const struct itest_key *k, const char *limit, const char *when)
{
	char reason[32], lim[32];
	long st = use_check(k, reason, lim, NULL);
	EXPECT(st == 429 && strcmp(reason, "quota_exceeded") == 0 && strcmp(lim, limit) == 0,
	       "%s: want 429 quota_exceeded (%s), got %ld %s (%s)", when, limit, st, reason, lim);
}

/* How the state goes: a FLUSHALL, or a restart of Redis. */
static void lose_state(int restart)
{
	if (restart) {
		EXPECT(stack("", "redis-stop") == 0, "contrib/stack redis-stop failed");
		EXPECT(stack("", "redis-start") == 0, "contrib/stack redis-start failed");
	} else {
		EXPECT(redis_cli("FLUSHALL") == 0, "FLUSHALL failed");
	}
}

static void credits_survive(int restart)
{
	struct itest_key k;
	if (make_use_key(&k, "credits", 0, "\"remaining\":3") != 0)
		return;
	use(&k, 3);
	expect_exhausted(&k, "remaining", "4th check of 3 credits");
	if (!usage_settled(&k, 3))
		return;
	lose_state(restart);
	expect_exhausted(&k, "remaining", restart ? "after a Redis restart" : "after FLUSHALL");
	int64_t shown = shown_remaining(&k);
	EXPECT(shown == 0, "GET /v1/keys/{id} shows remaining %lld after the state went, want 0",
	       (long long)shown);
}

static void quota_survives(int restart)
{
	struct itest_key k;
	if (make_use_key(&k, restart ? "qr" : "qf", 1, NULL) != 0)
		return;
	use(&k, 3);
	expect_exhausted(&k, "quota", "4th check of a quota of 3");
	if (!usage_settled(&k, 3))
		return;
	lose_state(restart);
	expect_exhausted(&k, "quota", restart ? "after a Redis restart" : "after FLUSHALL");
}

static void test_flush_credits(void)
{
	credits_survive(0);
}

static void test_flush_quota(void)
{
	quota_survives(0);
}

static void test_restart_credits(void)
{
	credits_survive(1);
}

static void test_restart_quota(void)
{
	quota_survives(1);
}

/* A PATCH of remaining starts a new balance: what the old one consumed
 * never counts against it, also when the state is rebuilt. */
static void test_flush_after_patch(void)
{
	struct itest_key k;
	char reason[32], limit[32], body[64];
	int64_t rem = -1;
	if (make_use_key(&k, "patch", 0, "\"remaining\":3") != 0)
		return;
	use(&k, 3);
	if (!usage_settled(&k, 3))
		return;
	snprintf(body, sizeof body, "{\"remaining\":2}");
	if (itest_key_patch(k.id, body) != 0)
		return;
	EXPECT(shown_remaining(&k) == 2, "GET after PATCH remaining 2 shows %lld",
	       (long long)shown_remaining(&k));
	long st = use_check(&k, reason, limit, &rem);
	EXPECT(st == 200 && rem == 1, "after PATCH 2: want 200 remaining 1, got %ld %s remaining %lld",
	       st, reason, (long long)rem);
	if (!usage_settled(&k, 4))
		return;
	lose_state(0);
	EXPECT(shown_remaining(&k) == 1, "GET after FLUSHALL shows %lld, want 1",
	       (long long)shown_remaining(&k));
	st = use_check(&k, reason, limit, &rem);
	EXPECT(st == 200 && rem == 0, "after FLUSHALL: want 200 remaining 0, got %ld %s remaining %lld",
	       st, reason, (long long)rem);
	expect_exhausted(&k, "remaining", "the new balance used up after FLUSHALL");
	EXPECT(shown_remaining(&k) == 0, "GET shows %lld, want 0", (long long)shown_remaining(&k));
}

/* RabbitMQ stops: /readyz stays 200 and reports it degraded, read from the
 * publishers' own connections; checks go on; it is ok again once the
 * publishers reconnect. */
static void test_readyz_broker(void)
{
	char state[32];
	struct itest_key k;
	struct itest_resp r;
	if (make_key(&k) != 0)
		return;
	EXPECT(readyz("rabbitmq", state, sizeof state) == 200 && strcmp(state, "ok") == 0,
	       "before the fault: rabbitmq %s", state);
	EXPECT(stack("", "amqp-stop") == 0, "contrib/stack amqp-stop failed");
	/* Every process must notice: 8 answers in a row say degraded. */
	int in_row = 0, unready = 0;
	for (int64_t t0 = itest_now_ms(); in_row < 8 && itest_now_ms() - t0 < 15000;) {
		long st = readyz("rabbitmq", state, sizeof state);
		unready += st != 200;
		in_row = st == 200 && strcmp(state, "degraded") == 0 ? in_row + 1 : 0;
		if (in_row == 0)
			itest_sleep_ms(100);
	}
	EXPECT(in_row == 8, "GET /readyz did not report rabbitmq degraded within 15 s");
	EXPECT(unready == 0, "GET /readyz answered other than 200 %d times with RabbitMQ down",
	       unready);
	itest_check(&r, itest_admin_token(), k.key);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	EXPECT(stack("", "amqp-start") == 0, "contrib/stack amqp-start failed");
	in_row = 0;
	for (int64_t t0 = itest_now_ms(); in_row < 8 && itest_now_ms() - t0 < 20000;) {
		long st = readyz("rabbitmq", state, sizeof state);
		in_row = st == 200 && strcmp(state, "ok") == 0 ? in_row + 1 : 0;
		if (in_row == 0)
			itest_sleep_ms(200);
	}
	EXPECT(in_row == 8, "GET /readyz did not report rabbitmq ok within 20 s of its start");
}

/* One GET /readyz while PostgreSQL is down and no key is cached: 503
 * unavailable, the error envelope naming PostgreSQL, postgres failed and the
 * other stores ok. 1 when it answered so; what it answered goes to seen. */
static int readyz_pg_failed(char *seen, size_t size)
{
	struct itest_resp r;
	itest_call(&r, "GET", "/readyz", NULL, NULL);
	json_object *checks = itest_get(r.json, "checks"), *err = itest_get(r.json, "error");
	const char *pg = itest_str(checks, "postgres"), *status = itest_str(r.json, "status");
	const char *code = itest_str(err, "code"), *msg = itest_str(err, "message");
	int ok = r.status == 503 && status && strcmp(status, "unavailable") == 0 && pg &&
		 strcmp(pg, "failed") == 0 && code && strcmp(code, "unavailable") == 0 && msg &&
		 strstr(msg, "PostgreSQL") && itest_str(checks, "redis") &&
		 strcmp(itest_str(checks, "redis"), "ok") == 0;
	snprintf(seen, size, "%ld %.300s", r.status, r.body ? r.body : "");
	itest_resp_fini(&r);
	return ok;
}

/* PostgreSQL stops while the pool has no key cached (just restarted):
 * /readyz is 503 from every process, naming postgres; once PostgreSQL is
 * back, 200 ready again within 20 s, without restarting the pool. */
static void test_readyz_postgres(void)
{
	char state[32], seen[400] = "";
	EXPECT(stack("", "restart-pool build") == 0, "pool restart failed");
	long st = readyz("postgres", state, sizeof state);
	EXPECT(st == 200 && strcmp(state, "ok") == 0, "before the fault: %ld, postgres %s", st,
	       state);
	EXPECT(stack("", "pg-stop") == 0, "contrib/stack pg-stop failed");
	/* Every process must answer so: 8 answers in a row. */
	int in_row = 0;
	int64_t t0 = itest_now_ms();
	while (in_row < 8 && itest_now_ms() - t0 < 10000) {
		in_row = readyz_pg_failed(seen, sizeof seen) ? in_row + 1 : 0;
		if (in_row == 0)
			itest_sleep_ms(100);
	}
	EXPECT(in_row == 8, "GET /readyz with PostgreSQL down and a cold cache did not answer 503 "
	       "postgres failed 8 times in a row within 10 s; last: %s", seen);
	printf("\n    (PostgreSQL down: /readyz 503 in %lld ms) ", (long long)(itest_now_ms() - t0));
	/* Whatever was seen, PostgreSQL comes back before anything else runs. */
	EXPECT(stack("", "pg-start") == 0, "contrib/stack pg-start failed");
	in_row = 0;
	t0 = itest_now_ms();
	int64_t back = -1;
	while (in_row < 8 && itest_now_ms() - t0 < 20000) {
		struct itest_resp r;
		itest_call(&r, "GET", "/readyz", NULL, NULL);
		const char *pg = itest_str(itest_get(r.json, "checks"), "postgres");
		const char *status = itest_str(r.json, "status");
		int ready = r.status == 200 && pg && strcmp(pg, "ok") == 0 && status &&
			    strcmp(status, "ready") == 0;
		snprintf(seen, sizeof seen, "%ld %.300s", r.status, r.body ? r.body : "");
		itest_resp_fini(&r);
		in_row = ready ? in_row + 1 : 0;
		if (in_row == 1 && back < 0)
			back = itest_now_ms() - t0;
		if (!ready) {
			back = -1;
			itest_sleep_ms(100);
		}
	}
	EXPECT(in_row == 8, "GET /readyz not 200 ready 8 times in a row within 20 s of "
	       "PostgreSQL's start; last: %s", seen);
	printf("(ready again %lld ms after PostgreSQL started) ", (long long)back);
	/* Each pooled connection of each responder learns of the restart on its
	 * next query (one 503 each): the tests after this one need them all
	 * renewed, so database reads until 48 (the pool's 4 processes x 4
	 * connections, three times) answer 200 in a row. */
	in_row = 0;
	t0 = itest_now_ms();
	while (in_row < 48 && itest_now_ms() - t0 < 30000) {
		struct itest_resp r;
		itest_call(&r, "GET", "/v1/keys?limit=1", itest_admin_token(), NULL);
		snprintf(seen, sizeof seen, "%ld %.300s", r.status, r.body ? r.body : "");
		in_row = r.status == 200 ? in_row + 1 : 0;
		itest_resp_fini(&r);
		if (in_row == 0)
			itest_sleep_ms(50);
	}
	EXPECT(in_row == 48, "GET /v1/keys not 200 48 times in a row within 30 s of PostgreSQL's "
	       "start; last: %s", seen);
}

int main(void)
{
	if (itest_init() != 0)
		return 2;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	CU_pSuite s = CU_add_suite("faults", NULL, NULL);
	if (cluster_node()) {
		/* The single-Redis tests target TOLLGATE_REDIS_PORT, which the pool
		 * does not use in cluster mode. */
		CU_add_test(s, "SCRIPT FLUSH on every primary during a hammer",
			    test_cluster_script_flush);
		CU_add_test(s, "MOVED after a reshard", test_cluster_reshard);
	} else {
		CU_add_test(s, "SCRIPT FLUSH during a hammer", test_script_flush);
		CU_add_test(s, "Redis down, closed mode", test_down_closed);
		CU_add_test(s, "Redis down, open mode", test_down_open);
		CU_add_test(s, "Redis down, local mode", test_down_local);
		CU_add_test(s, "readiness with RabbitMQ stopped", test_readyz_broker);
		CU_add_test(s, "readiness with PostgreSQL stopped and a cold cache",
			    test_readyz_postgres);
		CU_add_test(s, "a key revoked while Redis is down", test_revoke_while_down);
		CU_add_test(s, "rotating the key-hashing secret", test_secret_rotation);
		CU_add_test(s, "credits used up stay used after FLUSHALL", test_flush_credits);
		CU_add_test(s, "a quota used up stays used after FLUSHALL", test_flush_quota);
		CU_add_test(s, "credits used up stay used after a Redis restart", test_restart_credits);
		CU_add_test(s, "a quota used up stays used after a Redis restart", test_restart_quota);
		CU_add_test(s, "PATCH remaining after consumption, then FLUSHALL", test_flush_after_patch);
		refill_faults_register(s, redis_cli);
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int rc = CU_get_number_of_failures() == 0 && CU_get_number_of_tests_failed() == 0 ? 0 : 1;
	CU_cleanup_registry();
	itest_fini();
	return rc;
}
