/* gate: answers a FastCGI Authorizer request (see gate.c). */
#ifndef TOLLGATE_GATE_H
#define TOLLGATE_GATE_H

#include "http.h"

/* Decides whether the guarded request in r may proceed and answers. */
void gate_request(struct http_req *r);

#endif
