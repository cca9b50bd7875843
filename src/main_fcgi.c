/* tollgate-fcgi: the FastCGI responder.  Inherits its listening socket on
 * descriptor 0 (spawn-fcgi, mod_fcgid), serves it from `workers` threads, and
 * stops gracefully on SIGTERM/SIGINT/SIGUSR1: requests in flight finish,
 * then everything is released. */
#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "dispatch.h"
#include "log.h"

extern char **environ;

static atomic_bool stopping;

struct thread {
    pthread_t tid;
    struct worker w;
};

/* Interrupts a blocked accept(2); deliberately installed without SA_RESTART. */
static void on_wake(int sig)
{
    (void)sig;
}

static void *worker_main(void *arg)
{
    struct thread *t = arg;
    FCGX_Request req;
    if (FCGX_InitRequest(&req, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        log_error("worker %d: FCGX_InitRequest failed", t->w.index);
        return NULL;
    }
    while (!atomic_load(&stopping)) {
        if (FCGX_Accept_r(&req) < 0) {
            if (atomic_load(&stopping))
                break;
            if (errno != EINTR)
                log_warn("worker %d: accept failed: %s", t->w.index, strerror(errno));
            continue;
        }
        dispatch_request(&t->w, &req);
        FCGX_Finish_r(&req);
    }
    FCGX_Free(&req, 1);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: tollgate-fcgi [-c CONFIG]\n"
                    "Runs under spawn-fcgi or mod_fcgid; the listening socket is fd 0.\n");
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        if (opt == 'c') {
            cfg_path = optarg;
        } else {
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    struct app app;
    struct tg_err err;
    if (app_init(&app, app_config_path(cfg_path), environ, &err) != 0) {
        fprintf(stderr, "tollgate-fcgi: %s\n", err.msg);
        return 1;
    }
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        app_fini(&app);
        return 1;
    }

    /* Termination signals are taken by sigwait below, in this thread only. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGUSR1);
    sigaddset(&stop_set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake;
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int n = (int)app.cfg.workers;
    struct thread *threads = xcalloc((size_t)n, sizeof *threads);
    for (int i = 0; i < n; i++) {
        worker_init(&threads[i].w, &app, i);
        if (pthread_create(&threads[i].tid, NULL, worker_main, &threads[i]) != 0) {
            log_error("cannot start worker %d", i);
            abort();
        }
    }
    log_info("tollgate-fcgi started with %d workers", n);

    int sig = 0;
    while (sigwait(&stop_set, &sig) == 0 && sig == SIGHUP)
        log_info("SIGHUP ignored: restart the pool to reload the configuration");
    log_info("signal %d: stopping after the requests in flight", sig);
    atomic_store(&stopping, true);
    FCGX_ShutdownPending();
    for (int i = 0; i < n; i++) {
        /* A worker inside a request finishes it first; repeat the wake-up
         * until it has left accept(2). */
        while (pthread_tryjoin_np(threads[i].tid, NULL) == EBUSY) {
            pthread_kill(threads[i].tid, SIGUSR2);
            usleep(10000);
        }
        worker_fini(&threads[i].w);
    }
    free(threads);
    log_info("tollgate-fcgi stopped");
    app_fini(&app);
    return 0;
}
