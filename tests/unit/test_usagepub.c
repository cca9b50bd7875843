/* Unit tests of usagepub without a broker: the publisher starts on its own
 * journal, reports itself disconnected while nothing answers on the broker's
 * port, refuses events, and stops within its bounded flush. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "metrics.h"
#include "usagepub.h"
#include "unit.h"

static char *const NO_ENV[] = {NULL};

static void test_no_broker(void)
{
    char dir[128], text[1024];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tollgate-pub-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    /* Port 1 on loopback: refused at once, so the publisher stays down. */
    snprintf(text, sizeof text,
             "[security]\nhmac_secret = 0123456789abcdef0123456789abcdef\n"
             "[postgres]\nconninfo = host=/nonexistent\n"
             "[amqp]\nhost = 127.0.0.1\nport = 1\n"
             "[usage]\njournal_dir = %s\njournal_mb = 1\nflush_ms = 20\n",
             dir);
    struct config cfg;
    struct api_error err;
    CU_ASSERT_EQUAL_FATAL(config_load_string(&cfg, "t.conf", text, NO_ENV, &err), 0);
    struct metrics *m = metrics_open(NULL, &err);
    struct usagepub *p = usagepub_start(&cfg, m, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_PTR_NOT_NULL(usagepub_journal(p));
    usleep(200 * 1000); /* several rounds of the thread */
    CU_ASSERT_FALSE(usagepub_connected(p));
    struct usage_event ev;
    memset(&ev, 0, sizeof ev);
    CU_ASSERT_EQUAL(usagepub_send_events(p, &ev, 1, 500, &err), -1);
    CU_ASSERT_EQUAL(err.code, ERR_UNAVAILABLE);
    usagepub_stop(p);
    usagepub_stop(NULL);
    char *t = metrics_render(m, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_publishers_connected 0\n"));
    free(t);
    metrics_close(m);
    config_fini(&cfg);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT(system(cmd) == 0);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_no_broker),
    };
    return unit_run("usagepub", tests, TG_ARRAY_LEN(tests));
}
