/* pgstmt: the statements one PostgreSQL connection has prepared, by SQL
 * text.  Parsing and analysing the usage and analytics reads cost more than
 * running them; a connection prepares each statement once and then only
 * binds and executes it.  The cache is bounded: past PGSTMT_MAX statements
 * (no caller builds SQL text per request, but nothing here relies on it)
 * the caller runs the statement unprepared. */
#ifndef TOLLGATE_PGSTMT_H
#define TOLLGATE_PGSTMT_H

#include <stddef.h>
#include <stdint.h>

#define PGSTMT_MAX 256
#define PGSTMT_NAME 16

struct pgstmt_entry {
    uint64_t hash;
    char *sql;
    char name[PGSTMT_NAME];
};

struct pgstmt_cache {
    struct pgstmt_entry *e;
    size_t n, cap;
    unsigned serial; /* names are never reused within a server session */
};

/* The name sql was prepared under, or NULL. */
const char *pgstmt_find(const struct pgstmt_cache *c, const char *sql);
/* Records sql under a new name and returns it; NULL when the cache is full. */
const char *pgstmt_add(struct pgstmt_cache *c, const char *sql);
/* Forgets the statement named name (the server no longer has it, or its
 * plan went stale). */
void pgstmt_forget(struct pgstmt_cache *c, const char *name);
/* Forgets everything: the server session is new. */
void pgstmt_clear(struct pgstmt_cache *c);
size_t pgstmt_count(const struct pgstmt_cache *c);

#endif
