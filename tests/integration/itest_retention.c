/*
 * itest_retention.c - what tollgate-billingd's housekeeping removes
 * (docs/retention.md), against the stack's PostgreSQL and billingd.
 *
 * Usage partitions of two consecutive months of 1971-1989 are made through
 * tg_usage_partition, far older than any retention: in the first no key
 * existed (nothing to bill: it must go), in the second a key lived and the
 * month is not closed (it must stay). This suite holds the advisory lock
 * tg_billing_close_due takes, so that billingd closes nothing while a key
 * dated in the past exists, and puts the key back in the present before
 * releasing it. Rows of the current month, recent and old deduplication
 * ids, alert events and attempts, and rotated log files are set beside
 * them; SIGUSR1 makes billingd run its housekeeping at once (the pid is in
 * $TOLLGATE_RUN_DIR/billingd.pid; the suite runs as root, as the stack).
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <libpq-fe.h>

#include "itest_fixture.h"
#include "itest_suites.h"

#define DEADLINE_S 30

static PGconn *pg;

static int suite_init(void)
{
	const char *ci = getenv("TOLLGATE_PG_CONNINFO");

	if (!ci || !*ci || !getenv("TOLLGATE_RUN_DIR") || !getenv("TOLLGATE_LOG_DIR")) {
		fprintf(stderr, "itest retention: TOLLGATE_PG_CONNINFO, TOLLGATE_RUN_DIR and"
			" TOLLGATE_LOG_DIR must be set\n");
		return -1;
	}
	pg = PQconnectdb(ci);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "itest retention: cannot connect to PostgreSQL: %s",
			PQerrorMessage(pg));
		return -1;
	}
	return 0;
}

static int suite_clean(void)
{
	PQfinish(pg);
	pg = NULL;
	return 0;
}

static int sql_do(const char *q, int n, const char *const *params)
{
	PGresult *res = PQexecParams(pg, q, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	int ok = EXPECT(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "SQL failed: %s: %s", q,
			PQresultErrorMessage(res));

	PQclear(res);
	return ok ? 0 : -1;
}

/* The one value q returns into buf ("" when no row or on failure). */
static void sql_value(char *buf, size_t len, const char *q, int n, const char *const *params)
{
	PGresult *res = PQexecParams(pg, q, n, NULL, params, NULL, NULL, 0);

	buf[0] = '\0';
	if (EXPECT(PQresultStatus(res) == PGRES_TUPLES_OK, "SQL failed: %s: %s", q,
		   PQresultErrorMessage(res)) && PQntuples(res) > 0)
		snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

static int exists(const char *table)
{
	char v[8];
	const char *p[] = { table };

	sql_value(v, sizeof v, "SELECT to_regclass($1) IS NOT NULL", 1, p);
	return strcmp(v, "t") == 0;
}

static pid_t billingd_pid(void)
{
	char path[512];
	long pid = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/billingd.pid", getenv("TOLLGATE_RUN_DIR"));
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return (pid_t)pid;
}

/* A file of the log directory, owned as billingd's log, age_days old. */
static int log_file(const char *name, int age_days)
{
	char path[512], live[512];
	struct stat st;
	struct timeval tv[2];
	FILE *f;

	snprintf(live, sizeof live, "%s/billingd.log", getenv("TOLLGATE_LOG_DIR"));
	snprintf(path, sizeof path, "%s/%s", getenv("TOLLGATE_LOG_DIR"), name);
	if (!EXPECT(stat(live, &st) == 0, "no billingd log at %s", live))
		return -1;
	f = fopen(path, "w");
	if (!f) {
		EXPECT(0, "cannot create %s", path);
		return -1;
	}
	fputs("rotated\n", f);
	fclose(f);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= (time_t)age_days * 86400;
	tv[1] = tv[0];
	return EXPECT(chown(path, st.st_uid, st.st_gid) == 0 && utimes(path, tv) == 0,
		      "cannot set the owner and time of %s", path) ? 0 : -1;
}

static int log_exists(const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", getenv("TOLLGATE_LOG_DIR"), name);
	return stat(path, &st) == 0;
}

/* Whether billingd's log holds s. */
static int log_holds(const char *s)
{
	char path[512], line[4096];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof path, "%s/billingd.log", getenv("TOLLGATE_LOG_DIR"));
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, s) != NULL;
	fclose(f);
	return found;
}

struct seed {
	char k1[8], k2[8];          /* YYYYMM of the two old months */
	char p1[8], p2[8];          /* YYYY-MM */
	char sfx[64];               /* this run's names */
	char ukey[96];              /* key id of the usage rows (no key record) */
	struct itest_key key;       /* lived in k2 */
	char rot_old[96], rot_new[96];
};

/* Picks two consecutive months of 1971-1989 that are not closed and before
 * the end of which no key existed. */
static int pick_months(struct seed *s)
{
	char row[64];

	sql_value(row, sizeof row,
		  "SELECT to_char(m, 'YYYYMM YYYY-MM ') || to_char(m + interval '1 month',"
		  " 'YYYYMM YYYY-MM') FROM generate_series(timestamp '1971-01-01',"
		  " timestamp '1989-10-01', interval '1 month') m"
		  " WHERE NOT EXISTS (SELECT 1 FROM billing_periods b WHERE b.period IN"
		  "   (to_char(m, 'YYYY-MM'), to_char(m + interval '1 month', 'YYYY-MM')))"
		  "  AND NOT EXISTS (SELECT 1 FROM keys k"
		  "   WHERE k.created_at < (m + interval '2 month') AT TIME ZONE 'UTC')"
		  " ORDER BY random() LIMIT 1", 0, NULL);
	return EXPECT(sscanf(row, "%7s %7s %7s %7s", s->k1, s->p1, s->k2, s->p2) == 4,
		      "no two free months in 1971-1989 (got '%s')", row) ? 0 : -1;
}

/* Usage rows, ids, alert rows and log files old and new. */
static int seed(struct seed *s)
{
	const char *p1[] = { s->p1, s->ukey };
	const char *p2[] = { s->p2, s->ukey };
	const char *pk[] = { s->key.id, s->p2 };
	const char *ps[] = { s->sfx, s->ukey };
	const char *pu[] = { s->ukey };

	snprintf(s->rot_old, sizeof s->rot_old, "billingd.log.%s-old", s->sfx);
	snprintf(s->rot_new, sizeof s->rot_new, "billingd.log.%s-new", s->sfx);
	return sql_do("UPDATE keys SET created_at = tg_billing_start($2) + interval '1 day',"
		      " revoked_at = tg_billing_start($2) + interval '2 days', status = 'revoked'"
		      " WHERE id = $1", 2, pk) ||
	       sql_do("SELECT tg_usage_partition(tg_billing_start($1))", 1, p1) ||
	       sql_do("SELECT tg_usage_partition(tg_billing_start($1))", 1, p2) ||
	       sql_do("INSERT INTO usage_minute (key_id, ts, endpoint, allowed, allowed_cost)"
		      " VALUES ($2, tg_billing_start($1) + interval '3 days', 'GET /r', 5, 5)", 2,
		      p1) ||
	       sql_do("INSERT INTO usage_hour (key_id, ts, endpoint, allowed, allowed_cost)"
		      " VALUES ($2, tg_billing_start($1) + interval '3 days', 'GET /r', 5, 5)", 2,
		      p1) ||
	       sql_do("INSERT INTO usage_minute (key_id, ts, endpoint, allowed, allowed_cost)"
		      " VALUES ($2, tg_billing_start($1) + interval '3 days', 'GET /r', 7, 7)", 2,
		      p2) ||
	       sql_do("INSERT INTO usage_minute (key_id, ts, endpoint, allowed, allowed_cost)"
		      " VALUES ($1, date_trunc('minute', now()), 'GET /r', 9, 9)", 1, pu) ||
	       sql_do("INSERT INTO usage_hour (key_id, ts, endpoint, allowed, allowed_cost)"
		      " VALUES ($1, date_trunc('hour', now()), 'GET /r', 9, 9)", 1, pu) ||
	       sql_do("INSERT INTO usage_event_ids (id, key_id, received_at) VALUES"
		      " ('itr-old-' || $1, $2, now() - interval '100 days'),"
		      " ('itr-new-' || $1, $2, now())", 2, ps) ||
	       sql_do("INSERT INTO usage_batches (id, applied_at) VALUES"
		      " ('itr-old-' || $1, now() - interval '100 days'),"
		      " ('itr-new-' || $1, now())", 1, ps) ||
	       sql_do("INSERT INTO alert_events (id, rule_id, key_id, body, state, created_at,"
		      " done_at) VALUES"
		      " ('itr-done-' || $1, 'itr-rule-' || $1, $2, '{}', 'delivered',"
		      "  now() - interval '101 days', now() - interval '100 days'),"
		      " ('itr-pending-' || $1, 'itr-rule-' || $1, $2, '{}', 'pending',"
		      "  now() - interval '101 days', NULL),"
		      " ('itr-recent-' || $1, 'itr-rule-' || $1, $2, '{}', 'failed',"
		      "  now() - interval '2 days', now() - interval '1 day')", 2, ps) ||
	       sql_do("INSERT INTO alert_attempts (event_id, rule_id, at, status, latency_ms)"
		      " VALUES ('itr-done-' || $1, 'itr-rule-' || $1, now() - interval '100 days',"
		      " 200, 5), ('itr-recent-' || $1, 'itr-rule-' || $1, now(), 500, 5)", 1, ps) ||
	       log_file(s->rot_old, 100) || log_file(s->rot_new, 1);
}

static void count_is(const char *what, const char *q, const char *arg, const char *want)
{
	char v[32];
	const char *p[] = { arg };

	sql_value(v, sizeof v, q, 1, p);
	EXPECT(strcmp(v, want) == 0, "%s: %s, want %s", what, v, want);
}

static void check_after(const struct seed *s)
{
	char m2[40], h2[40];
	const char *ps[] = { s->sfx };
	char v[32];

	snprintf(m2, sizeof m2, "usage_minute_%s", s->k2);
	snprintf(h2, sizeof h2, "usage_hour_%s", s->k2);
	/* The month in which a key lived and that is not closed stays. */
	EXPECT(exists(m2) && exists(h2), "the partitions of %s, not closed for billing, are gone",
	       s->p2);
	snprintf(m2, sizeof m2, "usage_day_%s", s->k2);
	EXPECT(exists(m2), "%s, not closed for billing, is gone", m2);
	count_is("rows of the unclosed month",
		 "SELECT sum(allowed) FROM usage_minute WHERE key_id = $1 AND ts < '1990-01-01'",
		 s->ukey, "7");
	count_is("rows of the current month",
		 "SELECT sum(allowed) FROM usage_minute WHERE key_id = $1"
		 " AND ts >= date_trunc('month', now())", s->ukey, "9");
	count_is("hour rows of the current month",
		 "SELECT sum(allowed) FROM usage_hour WHERE key_id = $1"
		 " AND ts >= date_trunc('month', now())", s->ukey, "9");
	sql_value(v, sizeof v, "SELECT string_agg(id, ',' ORDER BY id) FROM usage_event_ids"
		  " WHERE id LIKE 'itr-%-' || $1", 1, ps);
	EXPECT(strncmp(v, "itr-new-", 8) == 0 && !strchr(v, ','), "event ids left: %s", v);
	sql_value(v, sizeof v, "SELECT string_agg(id, ',' ORDER BY id) FROM usage_batches"
		  " WHERE id LIKE 'itr-%-' || $1", 1, ps);
	EXPECT(strncmp(v, "itr-new-", 8) == 0 && !strchr(v, ','), "batch ids left: %s", v);
	{
		char ev[160], want[160];

		sql_value(ev, sizeof ev, "SELECT string_agg(split_part(id, '-', 2), ','"
			  " ORDER BY id) FROM alert_events WHERE rule_id = 'itr-rule-' || $1", 1,
			  ps);
		snprintf(want, sizeof want, "pending,recent");
		EXPECT(strcmp(ev, want) == 0, "alert events left: %s, want %s", ev, want);
		sql_value(ev, sizeof ev, "SELECT string_agg(split_part(event_id, '-', 2), ',')"
			  " FROM alert_attempts WHERE rule_id = 'itr-rule-' || $1", 1, ps);
		EXPECT(strcmp(ev, "recent") == 0, "alert attempts left: %s", ev);
	}
	EXPECT(log_exists(s->rot_new), "the recent rotated log %s was removed", s->rot_new);
	EXPECT(log_exists("billingd.log"), "the live log was removed");
}

static void cleanup(struct seed *s)
{
	const char *pk[] = { s->key.id };
	const char *ps[] = { s->sfx, s->ukey };
	char path[512];

	/* The key back in the present, before billingd may close again. */
	if (s->key.id[0])
		sql_do("UPDATE keys SET created_at = now(), revoked_at = now() WHERE id = $1", 1,
		       pk);
	sql_do("DELETE FROM usage_minute WHERE key_id = $2 AND $1 <> ''", 2, ps);
	sql_do("DELETE FROM usage_hour WHERE key_id = $2 AND $1 <> ''", 2, ps);
	sql_do("DELETE FROM usage_event_ids WHERE id LIKE 'itr-%-' || $1", 1, ps);
	sql_do("DELETE FROM usage_batches WHERE id LIKE 'itr-%-' || $1", 1, ps);
	sql_do("DELETE FROM alert_events WHERE rule_id = 'itr-rule-' || $1", 1, ps);
	sql_do("DELETE FROM alert_attempts WHERE rule_id = 'itr-rule-' || $1", 1, ps);
	sql_do("SELECT pg_advisory_unlock(hashtext('tg_billing_close_due'))", 0, NULL);
	snprintf(path, sizeof path, "%s/%s", getenv("TOLLGATE_LOG_DIR"), s->rot_old);
	unlink(path);
	snprintf(path, sizeof path, "%s/%s", getenv("TOLLGATE_LOG_DIR"), s->rot_new);
	unlink(path);
}

static void test_housekeeping(void)
{
	struct seed s;
	char m1[40], h1[40], owner[96];
	pid_t pid = billingd_pid();
	time_t deadline;
	int gone = 0;

	memset(&s, 0, sizeof s);
	if (!EXPECT(pid > 0, "no billingd pid in %s", getenv("TOLLGATE_RUN_DIR")))
		return;
	snprintf(s.sfx, sizeof s.sfx, "%s", itest_suffix());
	snprintf(s.ukey, sizeof s.ukey, "itr-%s", s.sfx);
	snprintf(owner, sizeof owner, "itr-owner-%s", s.sfx);
	/* Session lock: tg_billing_close_due skips its whole run meanwhile. */
	if (sql_do("SELECT pg_advisory_lock(hashtext('tg_billing_close_due'))", 0, NULL) != 0)
		return;
	if (pick_months(&s) != 0 ||
	    itest_key_create(&s.key, owner, itest_big_tier(), NULL, NULL) != 0 ||
	    seed(&s) != 0)
		goto out;
	snprintf(m1, sizeof m1, "usage_minute_%s", s.k1);
	snprintf(h1, sizeof h1, "usage_hour_%s", s.k1);
	EXPECT(exists(m1) && exists(h1), "the partitions of %s were not made", s.p1);
	if (!EXPECT(kill(pid, SIGUSR1) == 0, "cannot signal billingd %d", (int)pid))
		goto out;
	/* The first month past retention, in which no key lived, goes. */
	deadline = time(NULL) + DEADLINE_S;
	while (!(gone = !exists(m1) && !exists(h1) && !log_exists(s.rot_old)) &&
	       time(NULL) < deadline)
		usleep(200 * 1000);
	/* The analytics rollups of that month go with its hours. */
	static const char *const rollups[] = { "usage_day_%s", "usage_month_%s", "usage_tier_day_%s" };
	for (size_t i = 0; gone && i < sizeof rollups / sizeof rollups[0]; i++) {
		char t[40];
		snprintf(t, sizeof t, rollups[i], s.k1);
		EXPECT(!exists(t), "%s is still there", t);
	}
	if (!EXPECT(gone, "after %d s: %s %s, %s %s, %s %s", DEADLINE_S, m1,
		    exists(m1) ? "still there" : "dropped", h1, exists(h1) ? "still there" : "dropped",
		    s.rot_old, log_exists(s.rot_old) ? "still there" : "removed"))
		goto out;
	check_after(&s);
	EXPECT(log_holds("retention: dropped") && log_holds(m1), "billingd's log does not name %s as dropped", m1);
out:
	cleanup(&s);
}

/* The function refuses a retention under a day, whoever calls it. */
static void test_refuses_short(void)
{
	PGresult *res = PQexec(pg, "SELECT tg_retention_usage(interval '1 hour', interval '400 days')");

	EXPECT(PQresultStatus(res) == PGRES_FATAL_ERROR &&
	       strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE) ?
		      PQresultErrorField(res, PG_DIAG_SQLSTATE) : "", "22023") == 0,
	       "a retention of one hour: %s", PQresultErrorMessage(res));
	PQclear(res);
}

int itest_register_retention(void)
{
	CU_pSuite s = CU_add_suite("retention", suite_init, suite_clean);

	if (!s ||
	    !CU_add_test(s, "housekeeping drops settled months, keeps the rest", test_housekeeping) ||
	    !CU_add_test(s, "a retention under a day is refused", test_refuses_short))
		return -1;
	return 0;
}
