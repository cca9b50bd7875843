/*
 * itest_alert_rules.c - alert rules over HTTP: create, get, list, delete and
 * their audit entries, validation of every field, refused webhook targets
 * and roles.  Nothing here fires: deliveries are itest_alerts.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_hook.h"
#include "itest_suites.h"

static char owner[128];
static struct itest_key key;
static char secret[64];

static int suite_init(void)
{
	if (!itest_big_tier())
		return -1;
	snprintf(owner, sizeof owner, "acct_it%s_alert_rules", itest_suffix());
	snprintf(secret, sizeof secret, "whsec_%s_rules_0123456789", itest_suffix());
	itest_record_secret(secret);
	return itest_key_create(&key, owner, itest_big_tier(), NULL, NULL);
}

static void create_rule(struct itest_resp *r, const char *token, const char *scope,
			const char *metric, long threshold, const char *url, const char *extra)
{
	hook_rule_create(r, token, scope, metric, threshold, url, secret, extra);
}

/* A target no rule of this suite ever posts to (none fires). */
static void hook_url(char *out, size_t n, const char *path)
{
	snprintf(out, n, "http://127.0.0.1:9%s", path);
}

static void test_crud_audit(void)
{
	struct itest_resp r;
	char scope[256], url[256], id[128], path[256];
	snprintf(scope, sizeof scope, "\"key_id\":%s", itest_q(key.id));
	hook_url(url, sizeof url, "/crud");
	create_rule(&r, itest_admin_token(), scope, "rate_limited", 5, url, NULL);
	if (!EXPECT_STATUS(&r, 201)) {
		itest_resp_fini(&r);
		return;
	}
	snprintf(id, sizeof id, "%s", itest_str(r.json, "id"));
	EXPECT_STR(&r, r.json, "metric", "rate_limited");
	EXPECT_STR(&r, r.json, "key_id", key.id);
	EXPECT_STR(&r, r.json, "webhook_url", url);
	int64_t v = 0;
	EXPECT(itest_int(r.json, "cooldown_s", &v) && v == 900, "default cooldown 900, got %lld",
	       (long long)v);
	EXPECT(itest_is_time(itest_str(r.json, "created_at")), "created_at is a time");
	EXPECT(!strstr(r.body, secret) && !itest_has(r.json, "secret"), "no secret in the answer");
	itest_resp_fini(&r);

	snprintf(path, sizeof path, "/v1/alerts/%s", id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	EXPECT(!strstr(r.body, secret), "no secret in GET");
	itest_resp_fini(&r);

	char lpath[512], esc[256];
	snprintf(lpath, sizeof lpath, "/v1/alerts?key_id=%s&limit=1",
		 itest_escape(key.id, esc, sizeof esc));
	json_object *all = NULL;
	EXPECT(itest_list_all(lpath, itest_admin_token(), 1, 50, &all) >= 1, "list pages");
	int found = 0;
	for (size_t i = 0; all && i < itest_len(all); i++)
		found += strcmp(itest_str(itest_idx(all, i), "id"), id) == 0;
	EXPECT(found == 1, "the rule is listed once (%d)", found);
	json_object_put(all);

	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 204);
	itest_resp_fini(&r);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);

	/* Both writes audited, without the secret. */
	snprintf(lpath, sizeof lpath, "/v1/audit?resource_id=%s", id);
	itest_call(&r, "GET", lpath, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	json_object *data = itest_get(r.json, "data");
	int creates = 0, deletes = 0;
	for (size_t i = 0; i < itest_len(data); i++) {
		const char *a = itest_str(itest_idx(data, i), "action");
		creates += a && strcmp(a, "alert.create") == 0;
		deletes += a && strcmp(a, "alert.delete") == 0;
	}
	EXPECT(creates == 1 && deletes == 1, "audit: %d alert.create, %d alert.delete", creates,
	       deletes);
	EXPECT(!strstr(r.body, secret) && !strstr(r.body, "secret"), "no secret in the audit");
	itest_resp_fini(&r);
}

static void test_validation(void)
{
	static const struct {
		const char *body;
		const char *code, *field;
	} bad[] = {
		{ "{\"metric\":\"rate_limited\",\"threshold\":1,\"webhook_url\":\"http://127.0.0.1/\","
		  "\"secret\":\"0123456789abcdef\"}", "invalid_argument", "key_id" },
		{ "{\"key_id\":\"%s\",\"owner_id\":\"x\",\"metric\":\"rate_limited\",\"threshold\":1,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\"}",
		  "invalid_argument", "owner_id" },
		{ "{\"key_id\":\"%s\",\"metric\":\"cpu\",\"threshold\":1,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\"}",
		  "invalid_argument", "metric" },
		{ "{\"key_id\":\"%s\",\"metric\":\"limit_near\",\"threshold\":101,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\"}",
		  "invalid_argument", "threshold" },
		{ "{\"key_id\":\"%s\",\"metric\":\"limit_near\",\"threshold\":0,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\"}",
		  "invalid_argument", "threshold" },
		{ "{\"key_id\":\"%s\",\"metric\":\"quota_used_pct\",\"threshold\":1001,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\"}",
		  "invalid_argument", "threshold" },
		{ "{\"key_id\":\"%s\",\"metric\":\"rate_limited\",\"threshold\":0,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\"}",
		  "invalid_argument", "threshold" },
		{ "{\"key_id\":\"%s\",\"metric\":\"quota_used_pct\",\"threshold\":\"80\","
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\"}",
		  "invalid_argument", "threshold" },
		{ "{\"key_id\":\"%s\",\"metric\":\"rate_limited\",\"threshold\":1,"
		  "\"webhook_url\":\"ftp://127.0.0.1/\",\"secret\":\"0123456789abcdef\"}",
		  "invalid_argument", "webhook_url" },
		{ "{\"key_id\":\"%s\",\"metric\":\"rate_limited\",\"threshold\":1,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"short\"}",
		  "invalid_argument", "secret" },
		{ "{\"key_id\":\"%s\",\"metric\":\"rate_limited\",\"threshold\":1,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\","
		  "\"cooldown_s\":5}", "invalid_argument", "cooldown_s" },
		{ "{\"key_id\":\"%s\",\"metric\":\"rate_limited\",\"threshold\":1,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\","
		  "\"colour\":1}", "unknown_field", "colour" },
		{ "{\"key_id\":\"%s\",\"threshold\":1,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\"}",
		  "missing_field", "metric" },
		{ "{\"key_id\":\"key_doesnotexist00000000\",\"metric\":\"rate_limited\",\"threshold\":1,"
		  "\"webhook_url\":\"http://127.0.0.1/\",\"secret\":\"0123456789abcdef\"}",
		  "invalid_argument", "key_id" },
	};
	char body[1024], esc[256], lpath[512];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct itest_resp r;
		snprintf(body, sizeof body, bad[i].body, key.id);
		itest_call(&r, "POST", "/v1/alerts", itest_admin_token(), body);
		EXPECT_ERROR_CASE(&r, 400, bad[i].code, bad[i].field, body);
		itest_resp_fini(&r);
	}
	/* Nothing was created by any of them. */
	struct itest_resp r;
	snprintf(lpath, sizeof lpath, "/v1/alerts?owner_id=%s", itest_escape(owner, esc, sizeof esc));
	itest_call(&r, "GET", lpath, itest_admin_token(), NULL);
	EXPECT(itest_len(itest_get(r.json, "data")) == 0, "no rule of the owner: %s", r.body);
	itest_resp_fini(&r);
}

static void test_ssrf(void)
{
	static const char *const refused[] = {
		"http://10.0.0.1/h", "http://169.254.169.254/latest/meta-data",
		"http://192.168.1.1/h", "http://[::1]:8080/h", "http://127.0.0.2/h",
		"http://172.16.0.1/h", "http://0.0.0.0/h", "http://[::ffff:10.0.0.1]/h",
		"http://[fe80::1]/h", "http://2130706434/h",
	};
	char scope[256];
	snprintf(scope, sizeof scope, "\"key_id\":%s", itest_q(key.id));
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct itest_resp r;
		create_rule(&r, itest_admin_token(), scope, "rate_limited", 1, refused[i], NULL);
		EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "webhook_url", refused[i]);
		itest_resp_fini(&r);
	}
}

static void test_roles(void)
{
	static const struct {
		const char *role;
		long want;
	} roles[] = { { "operator", 201 }, { "viewer", 403 }, { "billing", 403 }, { "service", 403 } };
	char scope[256], url[256];
	snprintf(scope, sizeof scope, "\"key_id\":%s", itest_q(key.id));
	hook_url(url, sizeof url, "/roles");
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		struct itest_token t;
		struct itest_resp r;
		if (itest_token_create(&t, roles[i].role) != 0)
			continue;
		create_rule(&r, t.token, scope, "rate_limited", 1000, url, NULL);
		EXPECT(r.status == roles[i].want, "%s: POST /v1/alerts %ld, want %ld", roles[i].role,
		       r.status, roles[i].want);
		char path[256];
		if (r.status == 201)
			snprintf(path, sizeof path, "/v1/alerts/%s", itest_str(r.json, "id"));
		itest_resp_fini(&r);
		itest_call(&r, "GET", "/v1/alerts", t.token, NULL);
		EXPECT(r.status == (roles[i].want == 201 ? 200 : 403), "%s: GET /v1/alerts %ld",
		       roles[i].role, r.status);
		itest_resp_fini(&r);
		if (roles[i].want == 201) {
			itest_call(&r, "DELETE", path, t.token, NULL);
			EXPECT_STATUS(&r, 204);
			itest_resp_fini(&r);
		}
		itest_token_revoke(&t);
	}
}

int itest_register_alert_rules(void)
{
	CU_pSuite s = CU_add_suite("alert rules", suite_init, NULL);

	if (!s ||
	    !CU_add_test(s, "create, get, list, delete, audit", test_crud_audit) ||
	    !CU_add_test(s, "validation: 400 naming the field, nothing created", test_validation) ||
	    !CU_add_test(s, "webhook targets refused (SSRF)", test_ssrf) ||
	    !CU_add_test(s, "roles", test_roles))
		return -1;
	return 0;
}
