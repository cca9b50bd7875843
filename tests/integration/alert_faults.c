/*
 * alert_faults.c - an alert survives the SIGKILL of the billingd delivering
 * it: the event was written before the delivery began, the claim of the
 * killed daemon expires, and the restarted one delivers the same event_id.
 * Run by tollgate-usage-faults (it drives billingd through $TOLLGATE_STACK).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <CUnit/CUnit.h>

#include "alert_faults.h"
#include "itest_fixture.h"
#include "itest_hook.h"

/* The claim of a delivery outlives [alerts] timeout_ms (10 s) by 5 s. */
#define REDELIVERY_WAIT_MS 40000

static int stack_cmd(const char *args)
{
	char cmd[1024];
	const char *s = getenv("TOLLGATE_STACK");
	snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>&1", s ? s : "contrib/stack", args);
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

void alert_faults_kill(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], secret[96], path[64], url[256], body[1024], id[128], dpath[256];
	int port = hook_start();
	if (!EXPECT(port > 0, "receiver started") || !itest_big_tier())
		return;
	snprintf(owner, sizeof owner, "acct_it%s_alertkill", itest_suffix());
	snprintf(secret, sizeof secret, "whsec_kill_%s_0123456789", itest_suffix());
	itest_record_secret(secret);
	if (itest_key_create(&k, owner, itest_big_tier(),
			     "\"limits\":[{\"name\":\"per_second\",\"window_s\":1,\"limit\":1}]",
			     NULL) != 0)
		goto out;
	snprintf(path, sizeof path, "/slow-kill-%s", itest_suffix());
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	snprintf(body, sizeof body,
		 "{\"key_id\":%s,\"metric\":\"rate_limited\",\"threshold\":1,\"webhook_url\":%s,"
		 "\"secret\":%s}", itest_q(k.id), itest_q(url), itest_q(secret));
	itest_call(&r, "POST", "/v1/alerts", itest_admin_token(), body);
	int ok = EXPECT_STATUS(&r, 201);
	if (ok)
		snprintf(id, sizeof id, "%s", itest_str(r.json, "id"));
	itest_resp_fini(&r);
	if (!ok)
		goto out;
	for (int i = 0; i < 3; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		itest_resp_fini(&r);
	}
	/* The first attempt reaches the receiver, which holds its answer 3 s:
	 * billingd is killed while it waits. */
	if (!EXPECT(hook_wait(path, 1, 15000) >= 1, "first attempt within 15 s"))
		goto out;
	EXPECT(stack_cmd("billingd-kill") == 0, "contrib/stack billingd-kill");
	EXPECT(stack_cmd("billingd-start") == 0, "contrib/stack billingd-start");
	EXPECT(hook_wait(path, 2, REDELIVERY_WAIT_MS) >= 2, "delivered again after the restart");
	itest_sleep_ms(4000); /* the slow answer, then its record */
	struct hook_hit h[4];
	size_t n = hook_hits(path, h, 4);
	for (size_t i = 1; i < n; i++) {
		json_object *a = json_tokener_parse(h[0].body), *b = json_tokener_parse(h[i].body);
		EXPECT(a && b && strcmp(itest_str(a, "event_id"), itest_str(b, "event_id")) == 0,
		       "the same event_id after the restart");
		json_object_put(a);
		json_object_put(b);
	}
	hook_hits_free(h, n);
	snprintf(dpath, sizeof dpath, "/v1/alerts/%s/deliveries", id);
	itest_call(&r, "GET", dpath, itest_admin_token(), NULL);
	json_object *d = itest_get(r.json, "data");
	size_t nd = itest_len(d);
	EXPECT(nd >= 1 && strcmp(itest_str(itest_idx(d, nd - 1), "event_state"), "delivered") == 0,
	       "the event is delivered: %s", r.body);
	itest_resp_fini(&r);
out:
	hook_stop();
}
