/* ctl_http: see ctl_http.h. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "buildinfo.h"
#include "ctl_http.h"
#include "util.h"

/* An answer larger than this is not one the API gives: stop reading. */
#define REPLY_MAX (64u << 20)

struct ctl_http {
    CURL *curl;
    char *base;
    char *auth;    /* "Authorization: Bearer ..." */
    char *ca_file; /* NULL: the system's */
};

struct ctl_http *ctl_http_new(const char *base_url, const char *token, const char *ca_file,
                              char *msg, size_t msglen)
{
    if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0) {
        snprintf(msg, msglen, "the API's URL must start with http:// or https:// (got '%s')",
                 base_url);
        return NULL;
    }
    struct ctl_http *h = xcalloc(1, sizeof *h);
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/')
        n--;
    h->base = xstrndup(base_url, n);
    size_t alen = strlen("Authorization: Bearer ") + strlen(token) + 1;
    h->auth = xmalloc(alen);
    snprintf(h->auth, alen, "Authorization: Bearer %s", token);
    h->ca_file = ca_file && *ca_file ? xstrdup(ca_file) : NULL;
    /* The first curl_easy_init initialises libcurl too; this program has one
     * thread, so that needs no call of its own. */
    h->curl = curl_easy_init();
    if (!h->curl) {
        snprintf(msg, msglen, "cannot start the HTTP client");
        ctl_http_free(h);
        return NULL;
    }
    return h;
}

void ctl_http_free(struct ctl_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    /* The token should not outlive its use in freed heap memory. */
    if (h->auth)
        explicit_bzero(h->auth, strlen(h->auth));
    free(h->auth);
    free(h->base);
    free(h->ca_file);
    free(h);
}

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct strbuf *b = arg;
    if (b->len + size * n > REPLY_MAX)
        return 0; /* curl reports CURLE_WRITE_ERROR */
    strbuf_put(b, data, size * n);
    return size * n;
}

int ctl_http_call(struct ctl_http *h, const char *method, const char *path, const char *body,
                  struct ctl_reply *r, char *msg, size_t msglen)
{
    memset(r, 0, sizeof *r);
    strbuf_put(&r->body, "", 0);
    struct strbuf url = {0};
    strbuf_printf(&url, "%s%s", h->base, path);
    char agent[64];
    snprintf(agent, sizeof agent, "tollgatectl/%s", PACKAGE_VERSION);
    struct curl_slist *hdr = curl_slist_append(NULL, h->auth);
    hdr = curl_slist_append(hdr, "Accept: application/json");
    if (body)
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url.p);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_USERAGENT, agent);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode cc = curl_easy_perform(c);
    int rc = 0;
    if (cc != CURLE_OK) {
        snprintf(msg, msglen, "%s %s%s: %s", method, h->base, path, curl_easy_strerror(cc));
        rc = -1;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    }
    curl_slist_free_all(hdr);
    strbuf_fini(&url);
    return rc;
}

void ctl_reply_fini(struct ctl_reply *r)
{
    strbuf_fini(&r->body);
    r->status = 0;
}

void ctl_http_escape(struct strbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            strbuf_putc(b, (char)*p);
        } else {
            strbuf_putc(b, '%');
            strbuf_putc(b, hex[*p >> 4]);
            strbuf_putc(b, hex[*p & 15]);
        }
    }
}

void ctl_http_query(struct strbuf *path, const char *name, const char *value)
{
    if (!value)
        return;
    strbuf_putc(path, path->p && strchr(path->p, '?') ? '&' : '?');
    strbuf_printf(path, "%s=", name);
    ctl_http_escape(path, value);
}

static void clean(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

void ctl_http_error_text(long status, const char *body, char *out, size_t outlen)
{
    json_object *j = body ? json_tokener_parse(body) : NULL, *e, *v;
    if (j && json_object_object_get_ex(j, "error", &e) && json_object_is_type(e, json_type_object)) {
        const char *code = json_object_object_get_ex(e, "code", &v) ? json_object_get_string(v)
                                                                     : "error";
        const char *text = json_object_object_get_ex(e, "message", &v) ? json_object_get_string(v)
                                                                        : "";
        const char *field = json_object_object_get_ex(e, "field", &v) ? json_object_get_string(v)
                                                                       : NULL;
        snprintf(out, outlen, "%s: %s%s%s%s", code ? code : "error", text ? text : "",
                 field ? " (field " : "", field ? field : "", field ? ")" : "");
    } else {
        snprintf(out, outlen, "HTTP %ld%s%.120s", status, body && *body ? ": " : "",
                 body ? body : "");
        char *nl = strchr(out, '\n');
        if (nl)
            *nl = '\0';
    }
    json_object_put(j);
    clean(out);
}
