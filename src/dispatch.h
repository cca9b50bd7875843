/* dispatch: one FastCGI request from accept to answer — routing, 404/405,
 * authentication and role check, body limits, then the route's handler. */
#ifndef TOLLGATE_DISPATCH_H
#define TOLLGATE_DISPATCH_H

#include <fcgiapp.h>

#include "app.h"

/* Serves f completely (the caller then finishes it). */
void dispatch_request(struct worker *w, FCGX_Request *f);

#endif
