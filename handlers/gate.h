/* gate: answers a FastCGI Authorizer request (see gate.c). */
#ifndef TOLLGATE_GATE_H
#define TOLLGATE_GATE_H

#include "http.h"
#include "router.h"

/* Decides whether the guarded request in r may proceed and answers (on a
 * worker). */
void gate_request(struct http_req *r);
/* The same from the event loop (see dispatch.h). */
enum route_fast gate_fast(struct http_req *r);

#endif
