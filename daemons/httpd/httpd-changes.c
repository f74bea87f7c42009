/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Staged changes and jobs: the list of staged changes, what activating
 * them would change (each op, and for updates and deletions the row as it
 * is now next to the new values), activation (a job), discarding, and a
 * job's log read incrementally. The diff is built by a pure function from
 * the rows haven-domaind answers. Must not: apply anything but through an
 * activate or discard op, or show a password (values named like one are
 * "***").
 */
#include <inttypes.h>
#include <stdio.h>

#include "httpd.h"

/* Tables an activation may touch, read for the diff at most once each. */
#define DIFF_TABLES_MAX 32u

/* ==== The list ==== */

static int id_ascending(const void *a, const void *b) {
        struct json_object *x = *(struct json_object *const *) a,
                           *y = *(struct json_object *const *) b;
        int64_t i = 0, j = 0;

        (void) haven_json_get_int64(x, "id", &i);
        (void) haven_json_get_int64(y, "id", &j);
        return i < j ? -1 : i > j ? 1 : 0;
}

/* A copy of a staged change's row with its ops masked. */
static struct json_object *change_public(struct json_object *row) {
        struct json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_foreach(row, key, value) {
                struct json_object *v = streq(key, "ops")
                                                ? httpd_ops_masked(value)
                                                : json_object_get(value);

                if ((!v && value) || haven_json_add(o, key, v) < 0) {
                        json_object_put(o);
                        return NULL;
                }
        }
        return o;
}

static void on_changes(struct httpd_request *r, struct json_object *reply,
                       const struct httpd_error *error) {
        struct json_object *rows = httpd_reply_rows(reply);
        _cleanup_(json_object_putp) struct json_object *o = NULL, *items = NULL;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (!rows) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind answered without rows");
                return;
        }
        json_object_array_sort(rows, id_ascending);
        items = json_object_new_array();
        o = json_object_new_object();
        if (!items || !o)
                goto oom;
        for (size_t i = 0; i < httpd_array_length(rows); i++) {
                struct json_object *c =
                        change_public(json_object_array_get_idx(rows, i));

                if (!c || json_object_array_add(items, c) < 0) {
                        json_object_put(c);
                        goto oom;
                }
        }
        if (haven_json_add(o, "items", TAKE_PTR(items)) < 0)
                goto oom;
        httpd_reply_json(r, 200, TAKE_PTR(o));
        return;
oom:
        httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL, "out of memory");
}

int httpd_changes_list(struct httpd_request *r) {
        return httpd_domain_call(r, httpd_query_new("staged_changes", NULL),
                                 on_changes);
}

/* ==== The diff (pure) ==== */

/* The current row of table with id in tables, or NULL. */
static struct json_object *current_row(struct json_object *tables,
                                       const char *table, int64_t id) {
        struct json_object *rows;

        if (!json_object_object_get_ex(tables, table, &rows))
                return NULL;
        return httpd_rows_find(rows, "id", id);
}

/* One op of a change, described: {op, table, id, values, current,
 * changes: {column: {from, to}}, missing}. */
static struct json_object *diff_op(struct json_object *op,
                                   struct json_object *tables) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *values = NULL, *current = NULL, *changes;
        const char *kind = "?", *table = NULL;
        int64_t id = 0;
        bool has_id;

        if (!o)
                return NULL;
        (void) haven_json_get_string(op, "op", &kind);
        (void) haven_json_get_string(op, "table", &table);
        (void) haven_json_get_object(op, "values", &values);
        has_id = haven_json_get_int64(op, "id", &id) >= 0;
        if (haven_json_add(o, "op", json_object_new_string(kind)) < 0 ||
            haven_json_add(o, "table", haven_json_string_or_null(table)) < 0 ||
            haven_json_add(o, "id", has_id ? json_object_new_int64(id) : NULL) <
                    0 ||
            haven_json_add(o, "values", json_object_get(values)) < 0)
                return NULL;
        if (!table || !has_id ||
            (!streq(kind, "update") && !streq(kind, "delete")))
                return TAKE_PTR(o);

        current = current_row(tables, table, id);
        if (haven_json_add(o, "current", json_object_get(current)) < 0 ||
            haven_json_add(o, "missing", json_object_new_boolean(!current)) < 0)
                return NULL;
        if (!streq(kind, "update") || !values)
                return TAKE_PTR(o);
        changes = json_object_new_object();
        if (!changes)
                return NULL;
        json_object_object_foreach(values, key, to) {
                struct json_object *from = NULL, *c = json_object_new_object();

                if (current)
                        (void) json_object_object_get_ex(current, key, &from);
                if (!c ||
                    haven_json_add(c, "from", json_object_get(from)) < 0 ||
                    haven_json_add(c, "to", json_object_get(to)) < 0 ||
                    haven_json_add(changes, key, c) < 0) {
                        json_object_put(changes);
                        return NULL;
                }
        }
        if (haven_json_add(o, "changes", changes) < 0)
                return NULL;
        return TAKE_PTR(o);
}

int httpd_changes_diff_build(struct json_object *changes,
                             struct json_object *tables,
                             struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object
                *out = json_object_new_array(),
                *o = json_object_new_object(), *masked = NULL;

        if (!out || !o)
                return -ENOMEM;
        for (size_t i = 0; i < httpd_array_length(changes); i++) {
                struct json_object *row = json_object_array_get_idx(changes, i),
                                   *ops = NULL, *c, *list, *v;

                c = json_object_new_object();
                list = json_object_new_array();
                if (!c || !list || json_object_array_add(out, c) < 0) {
                        json_object_put(c);
                        json_object_put(list);
                        return -ENOMEM;
                }
                if (haven_json_add(c, "ops", list) < 0)
                        return -ENOMEM;
                static const char *const keys[] = {"id", "summary",
                                                   "created_by", "created_at"};
                for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                        v = NULL;
                        (void) json_object_object_get_ex(row, keys[k], &v);
                        if (haven_json_add(c, keys[k], json_object_get(v)) < 0)
                                return -ENOMEM;
                }
                (void) haven_json_get_array(row, "ops", &ops);
                for (size_t k = 0; k < httpd_array_length(ops); k++) {
                        struct json_object *d = diff_op(
                                json_object_array_get_idx(ops, k), tables);

                        if (!d || json_object_array_add(list, d) < 0) {
                                json_object_put(d);
                                return -ENOMEM;
                        }
                }
        }
        if (haven_json_add(o, "changes", TAKE_PTR(out)) < 0)
                return -ENOMEM;
        /* Password hashes, mail passwords: never shown. */
        masked = httpd_ops_masked(o);
        if (!masked)
                return -ENOMEM;
        *ret = TAKE_PTR(masked);
        return 0;
}

/* ==== The diff (reading what it needs) ==== */

struct diff_state {
        struct json_object *changes; /* staged_changes rows */
        struct json_object *tables;  /* table → rows, as read */
        char *pending[DIFF_TABLES_MAX];
        size_t n_pending, next;
};

static void diff_state_free(void *p) {
        struct diff_state *s = p;

        if (!s)
                return;
        json_object_put(s->changes);
        json_object_put(s->tables);
        for (size_t i = 0; i < s->n_pending; i++)
                free(s->pending[i]);
        free(s);
}

static void diff_next(struct httpd_request *r);

static void on_diff_table(struct httpd_request *r, struct json_object *reply,
                          const struct httpd_error *error) {
        struct diff_state *s = httpd_request_get_state(r);
        struct json_object *rows = httpd_reply_rows(reply);

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (!rows || haven_json_add(s->tables, s->pending[s->next],
                                    json_object_get(rows)) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind answered without rows");
                return;
        }
        s->next++;
        diff_next(r);
}

/* Reads the next table, or answers once all are read. */
static void diff_next(struct httpd_request *r) {
        struct diff_state *s = httpd_request_get_state(r);
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        int ret;

        if (s->next < s->n_pending) {
                ret = httpd_domain_call(
                        r, httpd_query_new(s->pending[s->next], NULL),
                        on_diff_table);
                if (ret < 0)
                        httpd_reply_failure(r, NULL, ret);
                return;
        }
        ret = httpd_changes_diff_build(s->changes, s->tables, &o);
        if (ret < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_reply_json(r, 200, TAKE_PTR(o));
}

/* Notes a table the diff must read (updates and deletions name rows). */
static int diff_want(struct diff_state *s, const char *table) {
        for (size_t i = 0; i < s->n_pending; i++)
                if (streq(s->pending[i], table))
                        return 0;
        if (s->n_pending >= DIFF_TABLES_MAX)
                return 0; /* shown without the current row */
        s->pending[s->n_pending] = strdup(table);
        if (!s->pending[s->n_pending])
                return -ENOMEM;
        s->n_pending++;
        return 0;
}

static void on_diff_changes(struct httpd_request *r, struct json_object *reply,
                            const struct httpd_error *error) {
        struct json_object *rows = httpd_reply_rows(reply);
        struct diff_state *s;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (!rows) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind answered without rows");
                return;
        }
        s = calloc(1, sizeof *s);
        if (!s) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_request_set_state(r, s, diff_state_free);
        json_object_array_sort(rows, id_ascending);
        s->changes = json_object_get(rows);
        s->tables = json_object_new_object();
        if (!s->tables)
                goto oom;
        for (size_t i = 0; i < httpd_array_length(rows); i++) {
                struct json_object *ops = NULL;

                (void) haven_json_get_array(json_object_array_get_idx(rows, i),
                                            "ops", &ops);
                for (size_t k = 0; k < httpd_array_length(ops); k++) {
                        struct json_object *op =
                                json_object_array_get_idx(ops, k);
                        const char *kind = "", *table = NULL;

                        (void) haven_json_get_string(op, "op", &kind);
                        (void) haven_json_get_string(op, "table", &table);
                        if (table &&
                            (streq(kind, "update") || streq(kind, "delete")) &&
                            diff_want(s, table) < 0)
                                goto oom;
                }
        }
        diff_next(r);
        return;
oom:
        httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL, "out of memory");
}

int httpd_changes_diff(struct httpd_request *r) {
        return httpd_domain_call(r, httpd_query_new("staged_changes", NULL),
                                 on_diff_changes);
}

/* ==== Activate, discard, delete one ==== */

static void reply_keyed(struct httpd_request *r, struct json_object *reply,
                        const char *key, struct json_object *value) {
        _cleanup_(json_object_putp) struct json_object
                *o = json_object_new_object(),
                *owned = value;
        int64_t version = 0;

        (void) haven_json_get_int64(reply, "version", &version);
        if (!o || haven_json_add(o, key, TAKE_PTR(owned)) < 0 ||
            haven_json_add(o, "version", json_object_new_int64(version)) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_reply_json(r, 200, TAKE_PTR(o));
}

static void on_activated(struct httpd_request *r, struct json_object *reply,
                         const struct httpd_error *error) {
        int64_t job = 0;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        reply_keyed(r, reply, "job_id",
                    httpd_reply_first_id(reply, &job)
                            ? json_object_new_int64(job)
                            : NULL);
}

static struct json_object *simple_op(const char *name) {
        struct json_object *op = json_object_new_object();

        if (op && haven_json_add(op, "op", json_object_new_string(name)) < 0) {
                json_object_put(op);
                return NULL;
        }
        return op;
}

int httpd_changes_activate(struct httpd_request *r) {
        return httpd_domain_call(r,
                                 httpd_submit_op(simple_op("activate"), false,
                                                 httpd_request_actor(r),
                                                 "activate the staged changes"),
                                 on_activated);
}

static void on_discarded(struct httpd_request *r, struct json_object *reply,
                         const struct httpd_error *error) {
        if (error)
                httpd_reply_error(r, error);
        else
                reply_keyed(r, reply, "discarded",
                            json_object_new_boolean(true));
}

int httpd_changes_discard(struct httpd_request *r) {
        return httpd_domain_call(r,
                                 httpd_submit_op(simple_op("discard"), false,
                                                 httpd_request_actor(r),
                                                 "discard the staged changes"),
                                 on_discarded);
}

static void on_change_deleted(struct httpd_request *r,
                              struct json_object *reply,
                              const struct httpd_error *error) {
        if (error)
                httpd_reply_error(r, error);
        else
                reply_keyed(r, reply, "deleted",
                            json_object_new_int64(httpd_request_match(r)->id));
}

static void on_change_row(struct httpd_request *r, struct json_object *reply,
                          const struct httpd_error *error) {
        const struct httpd_match *m = httpd_request_match(r);
        struct json_object *rows = httpd_reply_rows(reply), *row;
        char summary[HTTPD_SUMMARY_MAX + 1];
        int64_t version = 0;
        int ret;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (httpd_array_length(rows) != 1) {
                httpd_reply_code(r, HTTPD_ERROR_NOT_FOUND, "id",
                                 "no staged change %" PRIi64, m->id);
                return;
        }
        row = json_object_array_get_idx(rows, 0);
        (void) haven_json_get_int64(row, "version", &version);
        snprintf(summary, sizeof summary, "discard staged change %" PRIi64,
                 m->id);
        ret = httpd_domain_call(
                r,
                httpd_submit_op(
                        httpd_op_delete("staged_changes", m->id, version),
                        false, httpd_request_actor(r), summary),
                on_change_deleted);
        if (ret < 0)
                httpd_reply_failure(r, NULL, ret);
}

int httpd_change_delete(struct httpd_request *r) {
        return httpd_domain_call(
                r,
                httpd_query_new(
                        "staged_changes",
                        httpd_where_int("id", httpd_request_match(r)->id)),
                on_change_row);
}

/* ==== A job's log ==== */

static void on_job_lines(struct httpd_request *r, struct json_object *reply,
                         const struct httpd_error *error) {
        const struct httpd_match *m = httpd_request_match(r);
        struct json_object *rows = httpd_reply_rows(reply);
        const char *state = httpd_request_get_state(r);
        _cleanup_(json_object_putp) struct json_object *o = NULL, *items = NULL;
        int64_t after = 0, last = 0;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        (void) httpd_match_param(m, "after", &after);
        last = after;
        if (!rows) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind answered without rows");
                return;
        }
        json_object_array_sort(rows, id_ascending);
        items = json_object_new_array();
        o = json_object_new_object();
        if (!items || !o)
                goto oom;
        for (size_t i = 0; i < httpd_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t id = 0;

                (void) haven_json_get_int64(row, "id", &id);
                if (id <= after)
                        continue;
                if (json_object_array_add(items, json_object_get(row)) < 0)
                        goto oom;
                last = id;
        }
        if (haven_json_add(o, "job_id", json_object_new_int64(m->id)) < 0 ||
            haven_json_add(o, "state", haven_json_string_or_null(state)) < 0 ||
            haven_json_add(o, "items", TAKE_PTR(items)) < 0 ||
            haven_json_add(o, "last_id", json_object_new_int64(last)) < 0)
                goto oom;
        httpd_reply_json(r, 200, TAKE_PTR(o));
        return;
oom:
        httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL, "out of memory");
}

static void on_job_row(struct httpd_request *r, struct json_object *reply,
                       const struct httpd_error *error) {
        const struct httpd_match *m = httpd_request_match(r);
        struct json_object *rows = httpd_reply_rows(reply);
        const char *state = "running";
        char *copy;
        int ret;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (httpd_array_length(rows) != 1) {
                httpd_reply_code(r, HTTPD_ERROR_NOT_FOUND, "id",
                                 "no job %" PRIi64, m->id);
                return;
        }
        /* The state before the lines: when it says finished, the lines
         * read after it are all there are. */
        (void) haven_json_get_string(json_object_array_get_idx(rows, 0),
                                     "state", &state);
        copy = strdup(state);
        if (!copy) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_request_set_state(r, copy, free);
        ret = httpd_domain_call(
                r, httpd_query_new("job_log", httpd_where_int("job_id", m->id)),
                on_job_lines);
        if (ret < 0)
                httpd_reply_failure(r, NULL, ret);
}

int httpd_job_log(struct httpd_request *r) {
        return httpd_domain_call(
                r,
                httpd_query_new(
                        "jobs",
                        httpd_where_int("id", httpd_request_match(r)->id)),
                on_job_row);
}
