/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * havenctl's configuration commands: get, add, set, delete on every
 * replicated table, the staged changes (changes, activate, discard) and the
 * list of tables. Writes are staged unless --now; updates and deletes carry
 * the row's version as read just before, so a concurrent change is a
 * conflict, never silently overwritten. Must not: write a read-only table.
 */
#include <inttypes.h>

#include "ctl.h"
#include "haven/json.h"

/* ==== Helpers ==== */

static const struct ctl_table *table_or_fail(const char *name, int *ret_status) {
        const struct ctl_table *t = ctl_table_find(name);

        if (!t)
                *ret_status = ctl_fail(CTL_EXIT_USAGE,
                                       "unknown table \"%s\" (\"havenctl tables\" lists them)",
                                       name);
        return t;
}

/* Finds the one row that arg names (NULL: the row of a singleton table).
 * Returns CTL_EXIT_OK and *ret_row (new), or an exit status after saying
 * why. */
static int find_row(struct ctl *c, const struct ctl_table *t, const char *arg,
                    struct json_object **ret_row) {
        _cleanup_(json_object_putp) struct json_object *where = NULL, *rows = NULL;
        struct ctl_error error;
        size_t n;
        int r;

        if (arg) {
                r = ctl_row_where(t, arg, &where, &error);
                if (r < 0)
                        return ctl_fail(CTL_EXIT_USAGE, "%s", error.message);
        }
        r = ctl_query(c, t->name, TAKE_PTR(where), &rows);
        if (r != CTL_EXIT_OK)
                return r;
        n = json_object_array_length(rows);
        if (n == 0)
                return arg ? ctl_fail(CTL_EXIT_FAILED, "no row \"%s\" in %s", arg, t->name)
                           : ctl_fail(CTL_EXIT_FAILED, "%s has no row yet", t->name);
        if (n > 1)
                return arg ? ctl_fail(CTL_EXIT_FAILED, "\"%s\" names %zu rows in %s", arg, n,
                                      t->name)
                           : ctl_fail(CTL_EXIT_USAGE, "which row of %s? give its %s",
                                      t->name, t->has_name ? "name or id" : "id");
        *ret_row = json_object_get(json_object_array_get_idx(rows, 0));
        return CTL_EXIT_OK;
}

static int row_id_version(struct json_object *row, int64_t *ret_id, int64_t *ret_version) {
        if (haven_json_get_int64(row, "id", ret_id) < 0 ||
            haven_json_get_int64(row, "version", ret_version) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "haven-domaind sent a row without id and version");
        return CTL_EXIT_OK;
}

/* What to say when a write failed with "conflict". */
static int conflict_hint(const struct ctl_table *t, const char *arg) {
        return ctl_fail(CTL_EXIT_FAILED,
                        "the row was changed by someone else after havenctl read it; look at "
                        "it again (havenctl get %s%s%s) and retry",
                        t->name, arg ? " " : "", arg ? arg : "");
}

/* Says what happened to a write: applied (--now) or staged. */
static void report_write(struct ctl *c, const char *what, struct json_object *reply) {
        int64_t id;
        bool has_id = ctl_reply_first_id(reply, &id);

        if (c->json) {
                ctl_print_json(stdout, reply);
                return;
        }
        if (c->now) {
                if (has_id && strncmp(what, "add ", 4) == 0)
                        printf("Applied: %s (id %" PRId64 ").\n", what, id);
                else
                        printf("Applied: %s.\n", what);
        } else if (has_id)
                printf("Staged as change %" PRId64 ": %s. Apply with \"havenctl activate\".\n",
                       id, what);
        else
                printf("Staged: %s. Apply with \"havenctl activate\".\n", what);
}

/* ==== get ==== */

int ctl_get(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *where = NULL, *rows = NULL;
        const char *row_arg = NULL;
        char *filters[CTL_ASSIGNMENTS_MAX];
        const struct ctl_table *t;
        struct ctl_error error;
        size_t n_filters = 0;
        int status, r;

        if (argc < 1)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl get TABLE [NAME|ID] [COLUMN=VALUE...]");
        t = table_or_fail(argv[0], &status);
        if (!t)
                return status;
        for (int i = 1; i < argc; i++) {
                if (ctl_is_assignment(argv[i])) {
                        if (n_filters >= ELEMENTSOF(filters))
                                return ctl_fail(CTL_EXIT_USAGE, "too many filters");
                        filters[n_filters++] = argv[i];
                } else if (!row_arg)
                        row_arg = argv[i];
                else
                        return ctl_fail(CTL_EXIT_USAGE, "one row at a time: \"%s\" and \"%s\"",
                                        row_arg, argv[i]);
        }

        if (row_arg && n_filters == 0) {
                _cleanup_(json_object_putp) struct json_object *row = NULL;

                status = find_row(c, t, row_arg, &row);
                if (status != CTL_EXIT_OK)
                        return status;
                if (c->json)
                        ctl_print_json(stdout, row);
                else
                        (void) ctl_print_record(stdout, row);
                return CTL_EXIT_OK;
        }

        r = ctl_parse_assignments(filters, n_filters, &where, &error);
        if (r < 0)
                return r == -ENOMEM ? ctl_fail(CTL_EXIT_FAILED, "out of memory")
                                    : ctl_fail(CTL_EXIT_USAGE, "%s", error.message);
        if (row_arg) {
                _cleanup_(json_object_putp) struct json_object *sel = NULL;

                r = ctl_row_where(t, row_arg, &sel, &error);
                if (r < 0)
                        return ctl_fail(CTL_EXIT_USAGE, "%s", error.message);
                json_object_object_foreach(sel, k, v)
                        if (haven_json_add(where, k, json_object_get(v)) < 0)
                                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        }
        if (json_object_object_length(where) == 0) {
                json_object_put(where);
                where = NULL;
        }

        status = ctl_query(c, t->name, TAKE_PTR(where), &rows);
        if (status != CTL_EXIT_OK)
                return status;
        if (c->json)
                ctl_print_json(stdout, rows);
        else if (t->singleton && json_object_array_length(rows) == 1)
                (void) ctl_print_record(stdout, json_object_array_get_idx(rows, 0));
        else
                (void) ctl_print_rows(stdout, rows);
        return CTL_EXIT_OK;
}

/* ==== add, set, delete ==== */

static int check_writable(const struct ctl_table *t) {
        if (t->read_only)
                return ctl_fail(CTL_EXIT_USAGE, "%s cannot be changed here: %s", t->name,
                                t->read_only);
        return CTL_EXIT_OK;
}

static int parse_values(char **args, size_t n, struct json_object **ret) {
        struct ctl_error error;
        int r;

        if (n == 0)
                return ctl_fail(CTL_EXIT_USAGE, "nothing to set: give COLUMN=VALUE arguments");
        for (size_t i = 0; i < n; i++)
                if (!ctl_is_assignment(args[i]))
                        return ctl_fail(CTL_EXIT_USAGE,
                                        "\"%s\" is not COLUMN=VALUE, COLUMN:=JSON or "
                                        "COLUMN==TEXT",
                                        args[i]);
        r = ctl_parse_assignments(args, n, ret, &error);
        if (r == -ENOMEM)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        if (r < 0)
                return ctl_fail(CTL_EXIT_USAGE, "%s", error.message);
        return CTL_EXIT_OK;
}

static struct json_object *one_op(struct json_object *op) {
        struct json_object *ops;

        if (!op)
                return NULL;
        ops = json_object_new_array();
        if (!ops || json_object_array_add(ops, op) < 0) {
                json_object_put(op);
                json_object_put(ops);
                return NULL;
        }
        return ops;
}

int ctl_add(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *values = NULL, *reply = NULL;
        _cleanup_free_ char *summary = NULL;
        const struct ctl_table *t;
        int status;

        if (argc < 2)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl add TABLE COLUMN=VALUE...");
        t = table_or_fail(argv[0], &status);
        if (!t)
                return status;
        status = check_writable(t);
        if (status != CTL_EXIT_OK)
                return status;
        status = parse_values(argv + 1, (size_t) argc - 1, &values);
        if (status != CTL_EXIT_OK)
                return status;

        summary = ctl_change_summary("add", t->name, NULL, argv + 1, (size_t) argc - 1);
        status = ctl_submit(c, one_op(ctl_op_insert(t->name, TAKE_PTR(values))), !c->now,
                            summary, &reply, NULL);
        if (status != CTL_EXIT_OK)
                return status;
        report_write(c, summary ? summary : "added", reply);
        return CTL_EXIT_OK;
}

int ctl_set(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *values = NULL, *reply = NULL,
                                                        *row = NULL;
        _cleanup_free_ char *summary = NULL;
        const struct ctl_table *t;
        const char *row_arg = NULL, *code = NULL;
        int64_t id, version;
        int status, first = 1;

        if (argc < 2)
                return ctl_fail(CTL_EXIT_USAGE,
                                "usage: havenctl set TABLE NAME|ID COLUMN=VALUE...");
        t = table_or_fail(argv[0], &status);
        if (!t)
                return status;
        status = check_writable(t);
        if (status != CTL_EXIT_OK)
                return status;
        /* A singleton's row needs no name: "set infrastructure ntp_servers:=[...]". */
        if (!ctl_is_assignment(argv[1])) {
                row_arg = argv[1];
                first = 2;
        } else if (!t->singleton)
                return ctl_fail(CTL_EXIT_USAGE, "which row? havenctl set %s NAME|ID COLUMN=VALUE...",
                                t->name);
        status = parse_values(argv + first, (size_t) (argc - first), &values);
        if (status != CTL_EXIT_OK)
                return status;

        status = find_row(c, t, row_arg, &row);
        if (status != CTL_EXIT_OK)
                return status;
        status = row_id_version(row, &id, &version);
        if (status != CTL_EXIT_OK)
                return status;

        summary = ctl_change_summary("set", t->name, row_arg, argv + first,
                                     (size_t) (argc - first));
        status = ctl_submit(c, one_op(ctl_op_update(t->name, id, version, TAKE_PTR(values))),
                            !c->now, summary, &reply, &code);
        if (status == CTL_EXIT_FAILED && code && streq(code, "conflict"))
                return conflict_hint(t, row_arg);
        if (status != CTL_EXIT_OK)
                return status;
        report_write(c, summary ? summary : "changed", reply);
        return CTL_EXIT_OK;
}

int ctl_delete(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL, *row = NULL;
        _cleanup_free_ char *summary = NULL;
        const struct ctl_table *t;
        const char *code = NULL;
        int64_t id, version;
        int status;

        if (argc != 2)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl delete TABLE NAME|ID");
        t = table_or_fail(argv[0], &status);
        if (!t)
                return status;
        status = check_writable(t);
        if (status != CTL_EXIT_OK)
                return status;
        status = find_row(c, t, argv[1], &row);
        if (status != CTL_EXIT_OK)
                return status;
        status = row_id_version(row, &id, &version);
        if (status != CTL_EXIT_OK)
                return status;

        summary = ctl_change_summary("delete", t->name, argv[1], NULL, 0);
        status = ctl_submit(c, one_op(ctl_op_delete(t->name, id, version)), !c->now, summary,
                            &reply, &code);
        if (status == CTL_EXIT_FAILED && code && streq(code, "conflict"))
                return conflict_hint(t, argv[1]);
        if (status != CTL_EXIT_OK)
                return status;
        report_write(c, summary ? summary : "deleted", reply);
        return CTL_EXIT_OK;
}

/* ==== Staged changes ==== */

int ctl_changes(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL;
        _cleanup_(ctl_grid_freep) struct ctl_grid *g = NULL;
        static const char *const titles[] = { "ID", "SUMMARY", "BY", "AT", "OPS" };
        int status;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl changes [--json]");
        status = ctl_query(c, "staged_changes", NULL, &rows);
        if (status != CTL_EXIT_OK)
                return status;
        if (c->json) {
                ctl_print_json(stdout, rows);
                return CTL_EXIT_OK;
        }
        if (json_object_array_length(rows) == 0) {
                printf("No staged changes.\n");
                return CTL_EXIT_OK;
        }
        g = ctl_grid_new(ELEMENTSOF(titles), titles);
        if (!g)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i), *v = NULL;
                _cleanup_free_ char *id = NULL, *summary = NULL, *by = NULL, *at = NULL;
                char ops[32] = "-";

                (void) json_object_object_get_ex(row, "id", &v);
                id = ctl_format_value("id", v);
                v = NULL;
                (void) json_object_object_get_ex(row, "summary", &v);
                summary = ctl_format_value("summary", v);
                v = NULL;
                (void) json_object_object_get_ex(row, "created_by", &v);
                by = ctl_format_value("created_by", v);
                v = NULL;
                (void) json_object_object_get_ex(row, "created_at", &v);
                at = ctl_format_value("created_at", v);
                if (json_object_object_get_ex(row, "ops", &v) &&
                    json_object_is_type(v, json_type_array))
                        snprintf(ops, sizeof ops, "%zu", json_object_array_length(v));
                if (!id || !summary || !by || !at ||
                    ctl_grid_add(g, (const char *const[]){ id, summary, by, at, ops }) < 0)
                        return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        }
        ctl_grid_print(g, stdout);
        return CTL_EXIT_OK;
}

int ctl_activate(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        char job[32];
        int64_t id;
        int status;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl activate [--follow]");
        status = ctl_submit(c, one_op(ctl_op_simple("activate")), false,
                            "activate the staged changes", &reply, NULL);
        if (status != CTL_EXIT_OK)
                return status;
        if (!ctl_reply_first_id(reply, &id)) {
                if (c->json)
                        ctl_print_json(stdout, reply);
                else
                        printf("Activated.\n");
                return CTL_EXIT_OK;
        }
        if (!c->follow) {
                if (c->json)
                        ctl_print_json(stdout, reply);
                else
                        printf("Activated: job %" PRId64 " (follow it with \"havenctl job log "
                               "%" PRId64 " --follow\").\n",
                               id, id);
                return CTL_EXIT_OK;
        }
        if (!c->json)
                printf("Activated: job %" PRId64 ".\n", id);
        fflush(stdout);
        snprintf(job, sizeof job, "%" PRId64, id);
        return ctl_job_log(c, 1, (char *[]){ job, NULL });
}

int ctl_discard(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        int status;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl discard");
        status = ctl_submit(c, one_op(ctl_op_simple("discard")), false,
                            "discard the staged changes", &reply, NULL);
        if (status != CTL_EXIT_OK)
                return status;
        if (c->json)
                ctl_print_json(stdout, reply);
        else
                printf("Discarded every staged change.\n");
        return CTL_EXIT_OK;
}

/* ==== tables ==== */

int ctl_list_tables(struct ctl *c, int argc, char **argv) {
        _cleanup_(ctl_grid_freep) struct ctl_grid *g = NULL;
        static const char *const titles[] = { "TABLE", "ALSO", "ROWS BY", "WRITABLE" };
        const struct ctl_table *t;
        size_t n;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl tables");
        t = ctl_tables(&n);
        g = ctl_grid_new(ELEMENTSOF(titles), titles);
        if (!g)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        for (size_t i = 0; i < n; i++) {
                char aliases[128] = "";
                size_t len = 0;

                for (const char *const *a = t[i].aliases; *a && len < sizeof aliases; a++)
                        len += (size_t) snprintf(aliases + len, sizeof aliases - len, "%s%s",
                                                 len ? ", " : "", *a);
                if (ctl_grid_add(g, (const char *const[]){
                                            t[i].name, aliases,
                                            t[i].singleton ? "(one row)"
                                            : t[i].has_name ? "name or id"
                                                            : "id",
                                            t[i].read_only ? "no" : "yes" }) < 0)
                        return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        }
        ctl_grid_print(g, stdout);
        return CTL_EXIT_OK;
}
