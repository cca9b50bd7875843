/*
 * itest_hook.h - a webhook receiver for the alert tests: a blocking HTTP
 * server on 127.0.0.1 (an ephemeral port) in its own thread, recording every
 * POST it gets.  A path starting with "/fail<n>-" is answered 500 to its
 * first n requests and 200 after; "/slow-" paths wait 3 s before answering
 * (the request is recorded on arrival); every other path gets 200 at once.
 */
#ifndef TOLLGATE_ITEST_HOOK_H
#define TOLLGATE_ITEST_HOOK_H

#include <stddef.h>
#include <stdint.h>

#define HOOK_MAX 2000

struct hook_hit {
	char path[128];
	char signature[80];	/* X-Tollgate-Signature */
	char *body;
	int64_t at_ms;		/* itest_now_ms() at arrival */
	int status;		/* what the receiver answered */
};

/* Starts the receiver; returns its port, or -1. */
int hook_start(void);
void hook_stop(void);
/* Copies the hits whose path equals path (at most max) into out, in
 * arrival order; returns their number. Bodies are copied (free them with
 * hook_hits_free). */
size_t hook_hits(const char *path, struct hook_hit *out, size_t max);
void hook_hits_free(struct hook_hit *h, size_t n);
/* Waits up to timeout_ms until path has at least n hits; returns the count. */
size_t hook_wait(const char *path, size_t n, int64_t timeout_ms);

struct itest_resp;
/* POST /v1/alerts with token: a rule scoped by scope ("\"key_id\":\"...\""
 * or the owner's), posting to url signed with secret; extra: more members
 * or NULL. */
void hook_rule_create(struct itest_resp *r, const char *token, const char *scope,
		      const char *metric, long threshold, const char *url, const char *secret,
		      const char *extra);

#endif
