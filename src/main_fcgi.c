/* tollgate-fcgi: the FastCGI responder.  Inherits its listening socket on
 * descriptor 0 (spawn-fcgi, mod_fcgid, systemd), serves it from one event
 * loop with a pool of `workers` threads for blocking work (see server.h and
 * dispatch.h), and stops gracefully on SIGTERM/SIGINT/SIGUSR1: no new
 * connection is accepted, the requests in flight finish (10 s at most),
 * then everything is released and the usage journal flushed.  SIGHUP reopens
 * the log file (logrotate). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "app.h"
#include "buildinfo.h"
#include "dispatch.h"
#include "evloop.h"
#include "gate.h"
#include "handlers.h"
#include "keywatch.h"
#include "log.h"
#include "server.h"

extern char **environ;

/* Above the largest body a route accepts (1 MiB of usage events), so that
 * the route's own limit answers 413 with its message. */
#define SERVER_MAX_BODY (1024 * 1024 + 64 * 1024)
#define STOP_GRACE_MS 10000
/* How stale a cached key record may be when its change could not be
 * published: docs/security.md states this bound. */
#define KEYWATCH_INTERVAL_MS 1000

struct stopper {
    struct evloop_watch watch;
    struct server *srv;
};

static void on_signal(struct evloop_watch *w, uint32_t events)
{
    (void)events;
    struct stopper *st = w->arg;
    struct signalfd_siginfo si;
    while (read(w->fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            /* The loop thread, not a handler: reopening here is safe. */
            if (log_reopen() < 0)
                log_error("SIGHUP: cannot reopen the log file: %s; writing to the old one",
                          strerror(errno));
            else
                log_info("SIGHUP: log file reopened (restart the pool to reload the configuration)");
            continue;
        }
        log_info("signal %u: stopping after the requests in flight", si.ssi_signo);
        server_drain(st->srv, STOP_GRACE_MS);
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tollgate-fcgi [-c CONFIG]\n"
            "The FastCGI responder of Tollgate. Serves the listening socket it inherits on\n"
            "descriptor 0 (systemd socket activation, spawn-fcgi, mod_fcgid).\n"
            "  -c, --config FILE  configuration (default: $TOLLGATE_CONFIG, else %s)\n"
            "  -h, --help         this text\n"
            "  -V, --version      version and commit\n"
            "SIGTERM, SIGINT, SIGUSR1: stop after the requests in flight; SIGHUP: reopen the\n"
            "log file.  See tollgate-fcgi(8).\n",
            CONFIG_DEFAULT_PATH);
}

int main(int argc, char **argv)
{
    if (no_core_dumps() != 0)
        fprintf(stderr, "tollgate-fcgi: cannot turn core dumps off: %s\n", strerror(errno));
    const char *cfg_path = NULL;
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        if (opt == 'c') {
            cfg_path = optarg;
        } else if (opt == 'V') {
            buildinfo_print(stdout, "tollgate-fcgi");
            return 0;
        } else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    /* Termination signals arrive through the loop; every thread started
     * from here on inherits the mask. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGUSR1);
    sigaddset(&stop_set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct app app;
    struct api_error err;
    if (app_init(&app, app_config_path(cfg_path), environ, &err) != 0) {
        fprintf(stderr, "tollgate-fcgi: %s\n", err.message);
        return 1;
    }
    /* Changes whose publication failed reach this process's cache anyway. */
    struct keywatch *kw = keywatch_start(app.keys, app.pg, &app.cfg, app.rtls, KEYWATCH_INTERVAL_MS, &err);
    if (!kw) {
        fprintf(stderr, "tollgate-fcgi: %s\n", err.message);
        app_fini(&app);
        return 1;
    }
    handlers_register(app.router);
    int workers = (int)app.cfg.workers;
    static const struct dispatch_gate gate = {gate_fast, gate_request};
    struct dispatch *d = dispatch_new(&app, workers, &gate);
    struct server_ops ops = {dispatch_serve, dispatch_serve_blocking, d};
    struct server *srv = server_new(app.loop, 0, workers, SERVER_MAX_BODY, &ops);
    struct stopper st = {.srv = srv};
    st.watch.fd = signalfd(-1, &stop_set, SFD_NONBLOCK | SFD_CLOEXEC);
    st.watch.fn = on_signal;
    st.watch.arg = &st;
    int rc = 0;
    if (st.watch.fd < 0 || evloop_watch_add(app.loop, &st.watch, EPOLLIN) != 0 ||
        server_start(srv) != 0) {
        log_error("cannot serve descriptor 0: %s", strerror(errno));
        rc = 1;
    } else {
        log_info("tollgate-fcgi started with %d workers", workers);
        evloop_run(app.loop);
        log_info("tollgate-fcgi stopped");
    }
    server_free(srv);
    if (st.watch.fd >= 0) {
        evloop_watch_del(app.loop, &st.watch);
        close(st.watch.fd);
    }
    dispatch_free(d);
    keywatch_stop(kw);
    app_fini(&app);
    return rc;
}
