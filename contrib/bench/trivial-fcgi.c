/* The benchmark's yardstick: a FastCGI responder that does nothing but
 * answer a fixed small JSON body, with the same accept loop and thread count
 * as tollgate-fcgi.  Built only for contrib/bench (make trivial-fcgi). */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static const char REPLY[] = "Status: 200 OK\r\n"
                            "Content-Type: application/json; charset=utf-8\r\n"
                            "Content-Length: 16\r\n\r\n"
                            "{\"allowed\":true}";

static void *serve(void *arg)
{
    (void)arg;
    FCGX_Request req;
    FCGX_InitRequest(&req, 0, 0);
    while (FCGX_Accept_r(&req) == 0) {
        /* Read the body as the real responder does. */
        char buf[4096];
        while (FCGX_GetStr(buf, sizeof buf, req.in) > 0)
            ;
        FCGX_PutStr(REPLY, (int)sizeof REPLY - 1, req.out);
        FCGX_Finish_r(&req);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int workers = argc > 1 ? atoi(argv[1]) : 4;
    if (workers < 1 || workers > 256)
        workers = 4;
    FCGX_Init();
    /* libfcgi turns SIGTERM into a "shutdown pending" flag that a blocked
     * accept never sees: let it end the process. */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    signal(SIGTERM, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &term, NULL);
    pthread_t *t = calloc((size_t)workers, sizeof *t);
    if (!t)
        return 1;
    for (int i = 0; i < workers; i++)
        pthread_create(&t[i], NULL, serve, NULL);
    for (int i = 0; i < workers; i++)
        pthread_join(t[i], NULL);
    free(t);
    return 0;
}
