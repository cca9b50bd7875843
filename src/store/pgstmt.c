#include "pgstmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* FNV-1a: compares a statement against the others without walking their
 * text, which for the usage reads is a kilobyte each. */
static uint64_t text_hash(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

static struct pgstmt_entry *lookup(const struct pgstmt_cache *c, const char *sql)
{
    uint64_t h = text_hash(sql);
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].hash == h && strcmp(c->e[i].sql, sql) == 0)
            return &c->e[i];
    return NULL;
}

const char *pgstmt_find(const struct pgstmt_cache *c, const char *sql)
{
    const struct pgstmt_entry *e = lookup(c, sql);
    return e ? e->name : NULL;
}

const char *pgstmt_add(struct pgstmt_cache *c, const char *sql)
{
    const struct pgstmt_entry *found = lookup(c, sql);
    if (found)
        return found->name;
    if (c->n >= PGSTMT_MAX)
        return NULL;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 32;
        c->e = xrealloc(c->e, c->cap * sizeof *c->e);
    }
    struct pgstmt_entry *e = &c->e[c->n++];
    e->hash = text_hash(sql);
    e->sql = xstrdup(sql);
    snprintf(e->name, sizeof e->name, "tg_%u", c->serial++);
    return e->name;
}

void pgstmt_forget(struct pgstmt_cache *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].name, name) == 0) {
            free(c->e[i].sql);
            c->e[i] = c->e[--c->n];
            return;
        }
}

void pgstmt_clear(struct pgstmt_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].sql);
    free(c->e);
    c->e = NULL;
    c->n = c->cap = 0;
    c->serial = 0;
}

size_t pgstmt_count(const struct pgstmt_cache *c)
{
    return c->n;
}
