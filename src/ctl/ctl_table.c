/* ctl_table: see ctl_table.h. */
#include <stdbool.h>
#include <string.h>

#include "ctl_table.h"
#include "util.h"

static json_object *lookup(json_object *row, const char *path)
{
    char part[64];
    json_object *cur = row;
    while (cur && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof part || !json_object_is_type(cur, json_type_object))
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        if (!json_object_object_get_ex(cur, part, &cur))
            return NULL;
        path += n + (path[n] == '.');
    }
    return cur;
}

static void put_clean(struct strbuf *b, const char *s)
{
    for (; *s; s++)
        strbuf_putc(b, ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s);
}

void ctl_table_cell(struct strbuf *b, json_object *row, const char *path)
{
    json_object *v = lookup(row, path);
    if (!v) {
        strbuf_putc(b, '-');
    } else if (json_object_is_type(v, json_type_string)) {
        put_clean(b, json_object_get_string(v));
    } else {
        put_clean(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    }
}

/* Display width: characters, not bytes, so that UTF-8 names line up. */
static size_t width(const char *s) { return utf8_len(s, strlen(s)); }

static void put_padded(FILE *out, const char *s, size_t w, bool last)
{
    fputs(s, out);
    if (last)
        return;
    for (size_t n = width(s); n < w + 2; n++)
        fputc(' ', out);
}

void ctl_table_print(FILE *out, const struct ctl_col *cols, size_t ncols, json_object *rows)
{
    size_t nrows = rows && json_object_is_type(rows, json_type_array)
                       ? json_object_array_length(rows)
                       : 0;
    size_t *w = xcalloc(ncols, sizeof *w);
    struct strbuf cell = {0};
    for (size_t c = 0; c < ncols; c++)
        w[c] = width(cols[c].header);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            strbuf_reset(&cell);
            ctl_table_cell(&cell, json_object_array_get_idx(rows, r), cols[c].path);
            size_t n = width(cell.p);
            if (n > w[c])
                w[c] = n;
        }
    }
    for (size_t c = 0; c < ncols; c++)
        put_padded(out, cols[c].header, w[c], c + 1 == ncols);
    fputc('\n', out);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            strbuf_reset(&cell);
            ctl_table_cell(&cell, json_object_array_get_idx(rows, r), cols[c].path);
            put_padded(out, cell.p, w[c], c + 1 == ncols);
        }
        fputc('\n', out);
    }
    strbuf_fini(&cell);
    free(w);
}

void ctl_table_print_object(FILE *out, json_object *obj)
{
    json_object *rows = json_object_new_array();
    if (obj && json_object_is_type(obj, json_type_object)) {
        json_object_object_foreach(obj, k, v) {
            json_object *row = json_object_new_object();
            json_object_object_add(row, "field", json_object_new_string(k));
            json_object_object_add(row, "value", json_object_get(v));
            json_object_array_add(rows, row);
        }
    }
    static const struct ctl_col cols[] = {{"FIELD", "field"}, {"VALUE", "value"}};
    ctl_table_print(out, cols, 2, rows);
    json_object_put(rows);
}
