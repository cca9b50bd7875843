/* netguard: which addresses a webhook may be delivered to.
 *
 * A webhook URL is chosen by a client of the management API, and the
 * deliverer posts to it from inside the operator's network: without a
 * guard, a rule could make Tollgate reach loopback services, the cloud
 * metadata endpoint (169.254.169.254) or private hosts.  Every address in a
 * loopback, link-local, private, shared, multicast or reserved range (IPv4
 * and IPv6, IPv4-mapped IPv6 included) is refused unless it falls in one of
 * the operator's allowed ranges ([alerts] allow_private).  The check runs
 * when a rule is created (on every address the host resolves to) and again
 * on the address of every connection the deliverer opens, so a name that
 * later resolves elsewhere is caught too. */
#ifndef TOLLGATE_NETGUARD_H
#define TOLLGATE_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "error.h"
#include "util.h"

#define NETGUARD_MAX_RANGES 32
#define NETGUARD_URL_MAX 2048

struct netguard_range {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
};

/* The ranges an operator allows (a value, no heap). */
struct netguard {
    size_t n;
    struct netguard_range r[NETGUARD_MAX_RANGES];
};

/* Parses a comma- or space-separated list of CIDR ranges ("127.0.0.0/8,
 * ::1/128"; a bare address is a /32 or /128) into g; "" allows nothing.
 * Returns 0, or -1 with e filled. */
int netguard_parse(struct netguard *g, const char *list, struct api_error *e) TG_WUR;

/* True when sa (AF_INET or AF_INET6) may be connected to: a public
 * address, or one in g's ranges.  Any other family is refused. */
bool netguard_allowed(const struct netguard *g, const struct sockaddr *sa);

/* Checks a webhook URL: at most NETGUARD_URL_MAX bytes, http or https,
 * a host, no user name or password, and every address the host resolves
 * to allowed by g.  Returns 0, or -1 with an invalid_argument error on
 * field "webhook_url" in e. */
int netguard_check_url(const struct netguard *g, const char *url, struct api_error *e) TG_WUR;

#endif
