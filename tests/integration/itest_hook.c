/*
 * itest_hook.c - see itest_hook.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "itest_hook.h"
#include "itest_http.h"

static struct {
	int fd;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t lock;
	struct hook_hit hits[HOOK_MAX];
	size_t n;
} hook = { .fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

/* Requests so far to path (under the lock). */
static int seen(const char *path)
{
	int k = 0;
	for (size_t i = 0; i < hook.n; i++)
		k += strcmp(hook.hits[i].path, path) == 0;
	return k;
}

static void header_value(const char *head, const char *name, char *out, size_t n)
{
	size_t len = strlen(name);
	out[0] = '\0';
	for (const char *p = head; p && *p; p = strstr(p, "\r\n")) {
		if (p[0] == '\r')
			p += 2;
		if (strncasecmp(p, name, len) == 0 && p[len] == ':') {
			p += len + 1;
			while (*p == ' ')
				p++;
			size_t k = strcspn(p, "\r\n");
			if (k >= n)
				k = n - 1;
			memcpy(out, p, k);
			out[k] = '\0';
			return;
		}
	}
}

static void serve(int c)
{
	static char buf[65536];
	size_t len = 0;
	char *end = NULL;
	struct timeval tv = { 2, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	/* Headers, then Content-Length bytes of body. */
	while (len < sizeof buf - 1) {
		ssize_t k = recv(c, buf + len, sizeof buf - 1 - len, 0);
		if (k <= 0)
			return;
		len += (size_t)k;
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
	}
	if (!end)
		return;
	char cl[32], path[128] = "";
	header_value(buf, "Content-Length", cl, sizeof cl);
	size_t want = (size_t)(end + 4 - buf) + (size_t)atol(cl);
	while (len < want && len < sizeof buf - 1) {
		ssize_t k = recv(c, buf + len, sizeof buf - 1 - len, 0);
		if (k <= 0)
			return;
		len += (size_t)k;
	}
	buf[len] = '\0';
	sscanf(buf, "POST %127s", path);
	struct hook_hit h = { .at_ms = itest_now_ms(), .status = 200 };
	snprintf(h.path, sizeof h.path, "%s", path);
	header_value(buf, "X-Tollgate-Signature", h.signature, sizeof h.signature);
	h.body = strdup(end + 4);
	int fails = 0;
	if (sscanf(path, "/fail%d-", &fails) == 1) {
		pthread_mutex_lock(&hook.lock);
		if (seen(path) < fails)
			h.status = 500;
		pthread_mutex_unlock(&hook.lock);
	}
	/* Recorded on arrival, before a slow answer: a test may act while the
	 * sender waits for it. */
	pthread_mutex_lock(&hook.lock);
	if (hook.n < HOOK_MAX)
		hook.hits[hook.n++] = h;
	else
		free(h.body);
	pthread_mutex_unlock(&hook.lock);
	if (strncmp(path, "/slow-", 6) == 0)
		usleep(3000000);
	char out[128];
	int n = snprintf(out, sizeof out,
			 "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			 h.status);
	(void)!send(c, out, (size_t)n, MSG_NOSIGNAL);
}

static void *run(void *arg)
{
	(void)arg;
	while (!atomic_load(&hook.stop)) {
		struct pollfd p = { .fd = hook.fd, .events = POLLIN };
		if (poll(&p, 1, 100) != 1)
			continue;
		int c = accept(hook.fd, NULL, NULL);
		if (c < 0)
			continue;
		serve(c);
		close(c);
	}
	return NULL;
}

int hook_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	hook.fd = socket(AF_INET, SOCK_STREAM, 0);
	if (hook.fd < 0 || bind(hook.fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(hook.fd, 256) != 0 || getsockname(hook.fd, (struct sockaddr *)&a, &alen) != 0)
		return -1;
	atomic_store(&hook.stop, false);
	if (pthread_create(&hook.thread, NULL, run, NULL) != 0)
		return -1;
	return ntohs(a.sin_port);
}

void hook_stop(void)
{
	if (hook.fd < 0)
		return;
	atomic_store(&hook.stop, true);
	pthread_join(hook.thread, NULL);
	close(hook.fd);
	hook.fd = -1;
	for (size_t i = 0; i < hook.n; i++)
		free(hook.hits[i].body);
	hook.n = 0;
}

size_t hook_hits(const char *path, struct hook_hit *out, size_t max)
{
	size_t k = 0;
	pthread_mutex_lock(&hook.lock);
	for (size_t i = 0; i < hook.n && k < max; i++) {
		if (strcmp(hook.hits[i].path, path) != 0)
			continue;
		out[k] = hook.hits[i];
		out[k].body = strdup(hook.hits[i].body);
		k++;
	}
	pthread_mutex_unlock(&hook.lock);
	return k;
}

void hook_hits_free(struct hook_hit *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(h[i].body);
}

size_t hook_wait(const char *path, size_t n, int64_t timeout_ms)
{
	int64_t deadline = itest_now_ms() + timeout_ms;
	size_t k;
	for (;;) {
		pthread_mutex_lock(&hook.lock);
		k = (size_t)seen(path);
		pthread_mutex_unlock(&hook.lock);
		if (k >= n || itest_now_ms() >= deadline)
			return k;
		itest_sleep_ms(20);
	}
}

void hook_rule_create(struct itest_resp *r, const char *token, const char *scope,
		      const char *metric, long threshold, const char *url, const char *secret,
		      const char *extra)
{
	char body[2048];
	snprintf(body, sizeof body,
		 "{%s,\"metric\":\"%s\",\"threshold\":%ld,\"webhook_url\":%s,\"secret\":%s%s%s}",
		 scope, metric, threshold, itest_q(url), itest_q(secret), extra ? "," : "",
		 extra ? extra : "");
	itest_call(r, "POST", "/v1/alerts", token, body);
}
