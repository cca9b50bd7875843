/* netguard: see netguard.h. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netguard.h"

/* Ranges that are not the public Internet (RFC 6890 and its successors). */
static const struct {
    const char *cidr;
} blocked[] = {
    {"0.0.0.0/8"},     {"10.0.0.0/8"},    {"100.64.0.0/10"}, {"127.0.0.0/8"},
    {"169.254.0.0/16"}, {"172.16.0.0/12"}, {"192.0.0.0/24"},  {"192.0.2.0/24"},
    {"192.168.0.0/16"}, {"198.18.0.0/15"}, {"198.51.100.0/24"}, {"203.0.113.0/24"},
    {"224.0.0.0/4"},   {"240.0.0.0/4"},   {"::/128"},        {"::1/128"},
    {"64:ff9b::/96"},  {"100::/64"},      {"2001:db8::/32"}, {"fc00::/7"},
    {"fe80::/10"},     {"fec0::/10"},     {"ff00::/8"},
};

static int parse_range(const char *s, struct netguard_range *r)
{
    char buf[64];
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len + 1);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    memset(r, 0, sizeof *r);
    if (inet_pton(AF_INET, buf, r->addr) == 1) {
        r->family = AF_INET;
        r->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, r->addr) == 1) {
        r->family = AF_INET6;
        r->prefix = 128;
    } else {
        return -1;
    }
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || p < 0 || p > r->prefix)
            return -1;
        r->prefix = (int)p;
    }
    return 0;
}

int netguard_parse(struct netguard *g, const char *list, struct api_error *e)
{
    memset(g, 0, sizeof *g);
    const char *p = list;
    while (*p) {
        size_t skip = strspn(p, ", \t"), len;
        p += skip;
        len = strcspn(p, ", \t");
        if (len == 0)
            break;
        char item[64];
        if (len >= sizeof item || g->n == NETGUARD_MAX_RANGES) {
            api_error_set(e, ERR_INVALID_ARGUMENT, NULL,
                          "at most %d ranges of CIDR form (such as 127.0.0.0/8) are allowed",
                          NETGUARD_MAX_RANGES);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (parse_range(item, &g->r[g->n]) != 0) {
            api_error_set(e, ERR_INVALID_ARGUMENT, NULL, "'%s' is not a CIDR range", item);
            return -1;
        }
        g->n++;
        p += len;
    }
    return 0;
}

static bool in_range(const struct netguard_range *r, int family, const unsigned char *a)
{
    if (r->family != family)
        return false;
    int full = r->prefix / 8, rest = r->prefix % 8;
    if (memcmp(r->addr, a, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (r->addr[full] & mask) == (a[full] & mask);
}

static bool is_blocked(int family, const unsigned char *a)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(blocked); i++) {
        struct netguard_range r;
        if (parse_range(blocked[i].cidr, &r) == 0 && in_range(&r, family, a))
            return true;
    }
    return false;
}

bool netguard_allowed(const struct netguard *g, const struct sockaddr *sa)
{
    int family;
    unsigned char a[16];
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        family = AF_INET6;
        memcpy(a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) { /* ::ffff:a.b.c.d is a.b.c.d */
            family = AF_INET;
            memmove(a, a + 12, 4);
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < g->n; i++)
        if (in_range(&g->r[i], family, a))
            return true;
    return !is_blocked(family, a);
}

static int refuse(struct api_error *e, const char *why)
{
    api_error_set(e, ERR_INVALID_ARGUMENT, "webhook_url", "webhook_url %s.", why);
    return -1;
}

/* Every address host resolves to must be allowed. */
static int check_host(const struct netguard *g, const char *host, struct api_error *e)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char h[256];
    size_t len = strlen(host);
    if (len >= sizeof h)
        return refuse(e, "has a host name that is too long");
    /* curl keeps an IPv6 literal's brackets. */
    if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
        memcpy(h, host + 1, len - 2);
        h[len - 2] = '\0';
    } else {
        memcpy(h, host, len + 1);
    }
    if (getaddrinfo(h, NULL, &hints, &res) != 0 || !res)
        return refuse(e, "names a host that does not resolve");
    int rc = 0;
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next)
        if (!netguard_allowed(g, ai->ai_addr))
            rc = refuse(e, "resolves to a loopback, link-local, private or reserved address, "
                           "which the configuration does not allow");
    freeaddrinfo(res);
    return rc;
}

int netguard_check_url(const struct netguard *g, const char *url, struct api_error *e)
{
    if (strlen(url) > NETGUARD_URL_MAX)
        return refuse(e, "is longer than 2048 bytes");
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL;
    int rc = -1;
    if (!u)
        abort();
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        refuse(e, "must be an absolute http or https URL");
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        refuse(e, "must use http or https");
    } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
               curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        refuse(e, "must not carry a user name or password (sign with the secret instead)");
    } else {
        rc = check_host(g, host, e);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    return rc;
}
