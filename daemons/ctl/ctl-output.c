/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * havenctl's output: aligned tables of text, "key: value" records, pretty
 * JSON, values and times as people read them, error answers as one line.
 * Pure (writes only to the FILE it is given): unit-tested in
 * tests/unit/test-ctl.c. Must not: print a value unescaped (configuration
 * text could carry terminal escape sequences).
 */
#include <assert.h>
#include <inttypes.h>
#include <time.h>

#include "ctl.h"
#include "haven/json.h"

#define GRID_COLUMNS_MAX 64

/* ==== Text ==== */

char *ctl_text_safe(const char *s) {
        size_t n = strlen(s);
        /* Worst case: every byte becomes \xNN. */
        char *out = malloc(n * 4 + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) s[i];

                if (ch == '\n' || ch == '\t' || ch == '\r') {
                        *o++ = '\\';
                        *o++ = ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r';
                } else if (ch < 0x20 || ch == 0x7f) {
                        o += sprintf(o, "\\x%02x", ch);
                } else if (ch == 0xc2 && i + 1 < n && (unsigned char) s[i + 1] >= 0x80 &&
                           (unsigned char) s[i + 1] <= 0x9f) {
                        /* U+0080..U+009F: C1 controls (0x9b is CSI). */
                        o += sprintf(o, "\\x%02x", (unsigned char) s[++i]);
                } else
                        *o++ = (char) ch;
        }
        *o = '\0';
        return out;
}

size_t ctl_text_width(const char *s) {
        size_t w = 0;

        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        w++;
        return w;
}

/* ==== Grid ==== */

struct ctl_grid {
        size_t n_columns;
        char **titles;
        char ***rows;
        size_t n_rows, allocated;
};

static void cells_free(char **cells, size_t n) {
        if (!cells)
                return;
        for (size_t i = 0; i < n; i++)
                free(cells[i]);
        free(cells);
}

/* Copies n cells, made safe; NULL cells become "-". */
static char **cells_copy(const char *const *cells, size_t n) {
        char **c = calloc(n, sizeof(char *));

        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                c[i] = ctl_text_safe(cells[i] ? cells[i] : "-");
                if (!c[i]) {
                        cells_free(c, n);
                        return NULL;
                }
        }
        return c;
}

struct ctl_grid *ctl_grid_new(size_t n_columns, const char *const *titles) {
        struct ctl_grid *g;

        assert(n_columns > 0);
        g = calloc(1, sizeof(*g));
        if (!g)
                return NULL;
        g->n_columns = n_columns;
        g->titles = cells_copy(titles, n_columns);
        if (!g->titles)
                return ctl_grid_free(g);
        return g;
}

struct ctl_grid *ctl_grid_free(struct ctl_grid *g) {
        if (!g)
                return NULL;
        cells_free(g->titles, g->n_columns);
        for (size_t i = 0; i < g->n_rows; i++)
                cells_free(g->rows[i], g->n_columns);
        free(g->rows);
        free(g);
        return NULL;
}

int ctl_grid_add(struct ctl_grid *g, const char *const *cells) {
        char **c;

        if (g->n_rows == g->allocated) {
                size_t a = g->allocated ? g->allocated * 2 : 16;
                char ***rows = reallocarray(g->rows, a, sizeof(char **));
                if (!rows)
                        return -ENOMEM;
                g->rows = rows;
                g->allocated = a;
        }
        c = cells_copy(cells, g->n_columns);
        if (!c)
                return -ENOMEM;
        g->rows[g->n_rows++] = c;
        return 0;
}

size_t ctl_grid_rows(const struct ctl_grid *g) {
        return g->n_rows;
}

/* Pads every cell but the last non-empty one: no trailing blanks. */
static void grid_print_line(const struct ctl_grid *g, char **cells, const size_t *widths,
                            FILE *f) {
        size_t end = g->n_columns;

        while (end > 1 && cells[end - 1][0] == '\0')
                end--;
        for (size_t i = 0; i < end; i++) {
                fputs(cells[i], f);
                if (i + 1 < end)
                        fprintf(f, "%*s", (int) (widths[i] - ctl_text_width(cells[i]) + 2), "");
        }
        fputc('\n', f);
}

void ctl_grid_print(const struct ctl_grid *g, FILE *f) {
        _cleanup_free_ size_t *widths = calloc(g->n_columns, sizeof(size_t));

        if (!widths)
                return;
        for (size_t i = 0; i < g->n_columns; i++) {
                widths[i] = ctl_text_width(g->titles[i]);
                for (size_t r = 0; r < g->n_rows; r++) {
                        size_t w = ctl_text_width(g->rows[r][i]);
                        if (w > widths[i])
                                widths[i] = w;
                }
        }
        grid_print_line(g, g->titles, widths, f);
        for (size_t r = 0; r < g->n_rows; r++)
                grid_print_line(g, g->rows[r], widths, f);
}

/* ==== Values ==== */

void ctl_format_time(int64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / 1000000);
        struct tm tm;

        if (usec < 0 || !localtime_r(&t, &tm) ||
            strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "%" PRId64, usec);
}

static bool column_is_time(const char *column) {
        return column && (streq(column, "created_at") || streq(column, "finished_at") ||
                          streq(column, "time"));
}

char *ctl_format_value(const char *column, struct json_object *value) {
        char buf[64];

        if (!value)
                return strdup("-");
        switch (json_object_get_type(value)) {
        case json_type_string:
                return strdup(json_object_get_string(value));
        case json_type_boolean:
                return strdup(json_object_get_boolean(value) ? "true" : "false");
        case json_type_int:
                if (column_is_time(column)) {
                        ctl_format_time(json_object_get_int64(value), buf, sizeof buf);
                        return strdup(buf);
                }
                snprintf(buf, sizeof buf, "%" PRId64, json_object_get_int64(value));
                return strdup(buf);
        default:
                return strdup(json_object_to_json_string_ext(
                        value, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        }
}

/* ==== Rows ==== */

static int cmp_by_id(const void *a, const void *b) {
        struct json_object *x = *(struct json_object *const *) a;
        struct json_object *y = *(struct json_object *const *) b;
        int64_t ix, iy;
        bool hx = haven_json_get_int64(x, "id", &ix) >= 0;
        bool hy = haven_json_get_int64(y, "id", &iy) >= 0;

        if (hx != hy)
                return hx ? -1 : 1;
        if (!hx)
                return 0;
        return ix < iy ? -1 : ix > iy;
}

void ctl_rows_sort_by_id(struct json_object *rows) {
        if (json_object_is_type(rows, json_type_array))
                json_object_array_sort(rows, cmp_by_id);
}

int ctl_print_rows(FILE *f, struct json_object *rows) {
        _cleanup_(ctl_grid_freep) struct ctl_grid *g = NULL;
        const char *columns[GRID_COLUMNS_MAX];
        char *titles[GRID_COLUMNS_MAX] = {};
        size_t n_columns = 0, n_rows = json_object_array_length(rows);
        int r = 0;

        for (size_t i = 0; i < n_rows; i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                if (!json_object_is_type(row, json_type_object))
                        continue;
                json_object_object_foreach(row, key, val) {
                        bool seen = false;
                        (void) val;
                        /* The row's version is for optimistic locking, not
                         * for eyes: shown by `get TABLE ROW` and --json. */
                        if (streq(key, "version"))
                                continue;
                        for (size_t c = 0; c < n_columns; c++)
                                if (streq(columns[c], key))
                                        seen = true;
                        if (!seen && n_columns < GRID_COLUMNS_MAX)
                                columns[n_columns++] = key;
                }
        }
        if (n_columns == 0) {
                fputs("(none)\n", f);
                return 0;
        }

        for (size_t c = 0; c < n_columns; c++) {
                titles[c] = strdup(columns[c]);
                if (!titles[c]) {
                        r = -ENOMEM;
                        goto out;
                }
                for (char *p = titles[c]; *p; p++)
                        if (*p >= 'a' && *p <= 'z')
                                *p = (char) (*p - 'a' + 'A');
        }
        g = ctl_grid_new(n_columns, (const char *const *) titles);
        if (!g) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n_rows; i++) {
                struct json_object *row = json_object_array_get_idx(rows, i), *v;
                char *cells[GRID_COLUMNS_MAX] = {};

                for (size_t c = 0; c < n_columns && r >= 0; c++) {
                        v = NULL;
                        (void) json_object_object_get_ex(row, columns[c], &v);
                        cells[c] = ctl_format_value(columns[c], v);
                        if (!cells[c])
                                r = -ENOMEM;
                }
                if (r >= 0)
                        r = ctl_grid_add(g, (const char *const *) cells);
                for (size_t c = 0; c < n_columns; c++)
                        free(cells[c]);
                if (r < 0)
                        goto out;
        }
        ctl_grid_print(g, f);
out:
        for (size_t c = 0; c < n_columns; c++)
                free(titles[c]);
        return r;
}

int ctl_print_record(FILE *f, struct json_object *row) {
        size_t width = 0;

        json_object_object_foreach(row, k, v) {
                (void) v;
                if (strlen(k) > width)
                        width = strlen(k);
        }
        json_object_object_foreach(row, key, val) {
                _cleanup_free_ char *text = ctl_format_value(key, val), *safe = NULL;
                _cleanup_free_ char *safe_key = ctl_text_safe(key);

                if (!text || !safe_key)
                        return -ENOMEM;
                safe = ctl_text_safe(text);
                if (!safe)
                        return -ENOMEM;
                if (*safe)
                        fprintf(f, "%s:%*s%s\n", safe_key, (int) (width - strlen(key) + 2), "",
                                safe);
                else
                        fprintf(f, "%s:\n", safe_key);
        }
        return 0;
}

void ctl_print_json(FILE *f, struct json_object *obj) {
        fprintf(f, "%s\n",
                obj ? json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                                                  JSON_C_TO_STRING_SPACED |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE)
                    : "null");
}

/* ==== Errors ==== */

char *ctl_format_error(struct json_object *error) {
        const char *message = NULL, *code = NULL, *field = NULL;
        _cleanup_free_ char *text = NULL;

        (void) haven_json_get_string(error, "message", &message);
        (void) haven_json_get_string(error, "code", &code);
        (void) haven_json_get_string(error, "field", &field);
        if (!message || !*message)
                message = code && *code ? code : "unknown error";
        if (field && *field) {
                if (asprintf(&text, "%s (field \"%s\")", message, field) < 0)
                        return NULL;
        } else {
                text = strdup(message);
                if (!text)
                        return NULL;
        }
        return ctl_text_safe(text);
}
