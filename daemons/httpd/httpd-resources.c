/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The handlers behind the domain's tables: the generic ones every
 * collection shares (list, read one, add, change, delete; staged unless
 * ?now=1, submitted with the administrator as the actor and a summary for
 * the audit log), the paged lists (audit, jobs, ...), and the ones with a
 * story of their own: administrators (passwords hashed in worker threads,
 * the last one kept), node actions, removal and fencing, VM actions (a
 * vm_commands row for haven-vmd's manager, or the preferred node), a VM's
 * commands, clearing alerts. Also the small helpers every module uses to talk to
 * haven-domaind. Must not: check permissions (the dispatcher does), write
 * anything but through haven-domaind, or answer a password hash.
 */
#include <inttypes.h>
#include <stdio.h>

#include "haven/log.h"
#include "haven/loop.h"
#include "httpd.h"

#define PAGE_DEFAULT 100

/* ==== Messages to haven-domaind ==== */

struct json_object *httpd_msg_new(const char *name) {
        struct json_object *o = json_object_new_object();

        if (o &&
            haven_json_add(o, "request", json_object_new_string(name)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

struct json_object *httpd_query_new(const char *table,
                                    struct json_object *where) {
        _cleanup_(json_object_putp) struct json_object *owned = where,
                                                       *req = httpd_msg_new(
                                                               "query");

        if (!req ||
            haven_json_add(req, "table", json_object_new_string(table)) < 0)
                return NULL;
        if (owned && haven_json_add(req, "where", TAKE_PTR(owned)) < 0)
                return NULL;
        return TAKE_PTR(req);
}

struct json_object *httpd_where_int(const char *key, int64_t value) {
        struct json_object *o = json_object_new_object();

        if (o && haven_json_add(o, key, json_object_new_int64(value)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

struct json_object *httpd_submit_new(struct json_object *ops, bool stage,
                                     const char *actor, const char *summary) {
        _cleanup_(json_object_putp) struct json_object *owned = ops,
                                                       *req = httpd_msg_new(
                                                               "submit");

        if (!req || !owned)
                return NULL;
        if (stage) {
                _cleanup_(json_object_putp) struct json_object
                        *op = json_object_new_object(),
                        *wrapper = json_object_new_array();

                if (!op || !wrapper ||
                    haven_json_add(op, "op", json_object_new_string("stage")) <
                            0 ||
                    haven_json_add(op, "ops", TAKE_PTR(owned)) < 0 ||
                    haven_json_add(op, "summary",
                                   json_object_new_string(summary)) < 0 ||
                    json_object_array_add(wrapper, op) < 0)
                        return NULL;
                TAKE_PTR(op);
                owned = TAKE_PTR(wrapper);
        }
        if (haven_json_add(req, "ops", TAKE_PTR(owned)) < 0 ||
            haven_json_add(req, "actor", json_object_new_string(actor)) < 0 ||
            haven_json_add(req, "audit", json_object_new_string(summary)) < 0)
                return NULL;
        return TAKE_PTR(req);
}

struct json_object *httpd_submit_op(struct json_object *op, bool stage,
                                    const char *actor, const char *summary) {
        _cleanup_(json_object_putp) struct json_object *owned = op;
        struct json_object *ops = json_object_new_array();

        if (!owned || !ops || json_object_array_add(ops, owned) < 0) {
                json_object_put(ops);
                return NULL;
        }
        TAKE_PTR(owned);
        return httpd_submit_new(ops, stage, actor, summary);
}

static struct json_object *op_new(const char *op, const char *table) {
        struct json_object *o = json_object_new_object();

        if (o &&
            (haven_json_add(o, "op", json_object_new_string(op)) < 0 ||
             haven_json_add(o, "table", json_object_new_string(table)) < 0)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

struct json_object *httpd_op_update(const char *table, int64_t id,
                                    int64_t version,
                                    struct json_object *values) {
        _cleanup_(json_object_putp) struct json_object *owned = values,
                                                       *o = op_new("update",
                                                                   table);

        if (!o || !owned ||
            haven_json_add(o, "id", json_object_new_int64(id)) < 0 ||
            haven_json_add(o, "expect_version",
                           json_object_new_int64(version)) < 0 ||
            haven_json_add(o, "values", TAKE_PTR(owned)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

struct json_object *httpd_op_delete(const char *table, int64_t id,
                                    int64_t version) {
        _cleanup_(json_object_putp) struct json_object *o =
                op_new("delete", table);

        if (!o || haven_json_add(o, "id", json_object_new_int64(id)) < 0 ||
            haven_json_add(o, "expect_version",
                           json_object_new_int64(version)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

struct json_object *httpd_op_insert(const char *table,
                                    struct json_object *values) {
        _cleanup_(json_object_putp) struct json_object *owned = values,
                                                       *o = op_new("insert",
                                                                   table);

        if (!o || !owned || haven_json_add(o, "values", TAKE_PTR(owned)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

void httpd_summary_append(char *buf, const char *text) {
        size_t used = strlen(buf), n = strlen(text);

        if (used >= HTTPD_SUMMARY_MAX)
                return;
        if (used + n <= HTTPD_SUMMARY_MAX) {
                memcpy(buf + used, text, n + 1);
                return;
        }
        n = HTTPD_SUMMARY_MAX - used >= 3 ? HTTPD_SUMMARY_MAX - used - 3 : 0;
        while (n > 0 && ((unsigned char) text[n] & 0xC0) == 0x80)
                n--;
        memcpy(buf + used, text, n);
        strcpy(buf + used + n, "...");
}

void httpd_summary_of_values(char *buf, const char *verb, const char *table,
                             const char *label, struct json_object *values) {
        buf[0] = '\0';
        httpd_summary_append(buf, verb);
        httpd_summary_append(buf, " ");
        httpd_summary_append(buf, table);
        if (label) {
                httpd_summary_append(buf, " ");
                httpd_summary_append(buf, label);
        }
        if (!values)
                return;
        httpd_summary_append(buf, ":");
        json_object_object_foreach(values, key, value) {
                httpd_summary_append(buf, " ");
                httpd_summary_append(buf, key);
                httpd_summary_append(buf, "=");
                httpd_summary_append(
                        buf, strstr(key, "password")
                                     ? "***"
                                     : json_object_to_json_string_ext(
                                               value, JSON_C_TO_STRING_PLAIN));
        }
}

bool httpd_reply_first_id(struct json_object *reply, int64_t *ret) {
        struct json_object *results, *first;

        if (haven_json_get_array(reply, "results", &results) < 0 ||
            httpd_array_length(results) < 1)
                return false;
        first = json_object_array_get_idx(results, 0);
        return haven_json_get_int64(first, "id", ret) >= 0;
}

struct json_object *httpd_reply_rows(struct json_object *reply) {
        struct json_object *rows;

        return haven_json_get_array(reply, "rows", &rows) >= 0 ? rows : NULL;
}

struct json_object *httpd_rows_find(struct json_object *rows, const char *key,
                                    int64_t value) {
        for (size_t i = 0; i < httpd_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t v;

                if (haven_json_get_int64(row, key, &v) >= 0 && v == value)
                        return row;
        }
        return NULL;
}

void httpd_reply_failure(struct httpd_request *r, const struct httpd_error *e,
                         int error) {
        struct httpd_error own;

        if (!e) {
                httpd_error_from_errno(error, &own);
                e = &own;
        }
        httpd_reply_error(r, e);
}

struct json_object *httpd_reply_copy(struct json_object *reply) {
        struct json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_foreach(
                reply, key,
                value) if (!streq(key, "tag") &&
                           haven_json_add(o, key, json_object_get(value)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* ==== Answers to writes ==== */

static bool write_now(struct httpd_request *r) {
        return httpd_match_flag(httpd_request_match(r), "now");
}

static const struct httpd_resource *request_resource(struct httpd_request *r) {
        return httpd_request_match(r)->route->resource;
}

/* The answer to a write: applied (now), status_now with {key: id,
 * "version"}; staged, 202 with {"staged": true, "change_id", "version"}. */
static void reply_written(struct httpd_request *r, struct json_object *reply,
                          bool now, unsigned status_now, const char *key,
                          int64_t id) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        int64_t version = 0, change = 0;
        int ret;

        (void) haven_json_get_int64(reply, "version", &version);
        if (!o)
                ret = -ENOMEM;
        else if (now)
                ret = haven_json_add(o, key, json_object_new_int64(id));
        else {
                ret = haven_json_add(o, "staged",
                                     json_object_new_boolean(true));
                if (ret >= 0)
                        ret = haven_json_add(
                                o, "change_id",
                                httpd_reply_first_id(reply, &change)
                                        ? json_object_new_int64(change)
                                        : NULL);
        }
        if (ret >= 0)
                ret = haven_json_add(o, "version",
                                     json_object_new_int64(version));
        if (ret < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_reply_json(r, now ? status_now : 202, TAKE_PTR(o));
}

/* Starts a domaind call whose failure to start is answered at once (for
 * steps that run from a reply callback). */
static void call_or_fail(struct httpd_request *r, struct json_object *request,
                         httpd_domain_reply_t done) {
        int ret = httpd_domain_call(r, request, done);

        if (ret < 0)
                httpd_reply_failure(r, NULL, ret);
}

/* ==== Rows ==== */

static bool column_hidden(const struct httpd_resource *res, const char *key) {
        for (const char *const *h = res ? res->hidden : NULL; h && *h; h++)
                if (streq(*h, key))
                        return true;
        return false;
}

struct json_object *httpd_resource_row(const struct httpd_resource *res,
                                       struct json_object *row) {
        struct json_object *o;

        if (!res || !res->hidden)
                return json_object_get(row);
        o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_foreach(row, key, value) {
                if (column_hidden(res, key))
                        continue;
                if (haven_json_add(o, key, json_object_get(value)) < 0) {
                        json_object_put(o);
                        return NULL;
                }
        }
        if (res->hidden_flag) {
                struct json_object *v = NULL;
                char flag[HTTPD_FIELD_MAX + 8];

                (void) json_object_object_get_ex(row, res->hidden_flag, &v);
                snprintf(flag, sizeof flag, "%s_set", res->hidden_flag);
                if (haven_json_add(o, flag,
                                   json_object_new_boolean(
                                           v && (!json_object_is_type(
                                                         v, json_type_string) ||
                                                 json_object_get_string_len(v) >
                                                         0))) < 0) {
                        json_object_put(o);
                        return NULL;
                }
        }
        return o;
}

static struct json_object *rows_public(const struct httpd_resource *res,
                                       struct json_object *rows) {
        struct json_object *items = json_object_new_array();

        for (size_t i = 0; items && i < httpd_array_length(rows); i++) {
                struct json_object *row = httpd_resource_row(
                        res, json_object_array_get_idx(rows, i));

                if (!row || json_object_array_add(items, row) < 0) {
                        json_object_put(row);
                        json_object_put(items);
                        return NULL;
                }
        }
        return items;
}

static bool key_is_secret(const char *key) {
        return strstr(key, "password") != NULL;
}

/* Replaces, in place, the values of password-like keys below o. */
static int mask_secrets(struct json_object *o) {
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < httpd_array_length(o); i++) {
                        int r = mask_secrets(json_object_array_get_idx(o, i));

                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (!json_object_is_type(o, json_type_object))
                return 0;
        json_object_object_foreach(o, key, value) {
                if (key_is_secret(key) && value) {
                        if (json_object_object_add(
                                    o, key, json_object_new_string("***")) < 0)
                                return -ENOMEM;
                } else {
                        int r = mask_secrets(value);

                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

struct json_object *httpd_ops_masked(struct json_object *ops) {
        struct json_object *copy = NULL;

        if (json_object_deep_copy(ops, &copy, NULL) < 0)
                return NULL;
        if (mask_secrets(copy) < 0) {
                json_object_put(copy);
                return NULL;
        }
        return copy;
}

/* "web1" for a row with a name, else its id. */
static void row_label(const struct httpd_resource *res, struct json_object *row,
                      int64_t id, char *buf, size_t size) {
        const char *name = NULL;

        if (res->label && haven_json_get_string(row, res->label, &name) >= 0)
                snprintf(buf, size, "\"%s\"", name);
        else
                snprintf(buf, size, "%" PRIi64, id);
}

/* ==== Generic handlers ==== */

static void on_list(struct httpd_request *r, struct json_object *reply,
                    const struct httpd_error *error) {
        const struct httpd_resource *res = request_resource(r);
        struct json_object *rows = httpd_reply_rows(reply), *o;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (!rows) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind answered without rows");
                return;
        }
        if (res->singleton) {
                if (httpd_array_length(rows) == 0) {
                        /* Not set up yet: nothing is set (the first PATCH
                         * adds the row). An administrator's settings page
                         * shows empty fields, not an error. */
                        o = json_object_new_object();
                        if (o && (haven_json_add(o, "id", NULL) < 0 ||
                                  haven_json_add(o, "version", NULL) < 0)) {
                                json_object_put(o);
                                o = NULL;
                        }
                } else
                        o = httpd_resource_row(res, json_object_array_get_idx(rows, 0));
        } else {
                o = json_object_new_object();
                if (o &&
                    haven_json_add(o, "items", rows_public(res, rows)) < 0) {
                        json_object_put(o);
                        o = NULL;
                }
        }
        if (!o)
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
        else
                httpd_reply_json(r, 200, o);
}

int httpd_resource_list(struct httpd_request *r) {
        return httpd_domain_call(
                r, httpd_query_new(request_resource(r)->table, NULL), on_list);
}

/* The one row a query for an id found (borrowed), or NULL after answering
 * 404 (or the error). */
static struct json_object *one_row(struct httpd_request *r,
                                   struct json_object *reply,
                                   const struct httpd_error *error,
                                   const char *table) {
        struct json_object *rows = httpd_reply_rows(reply);

        if (error) {
                httpd_reply_error(r, error);
                return NULL;
        }
        if (!rows || httpd_array_length(rows) != 1) {
                httpd_reply_code(r, HTTPD_ERROR_NOT_FOUND, "id",
                                 "%s has no row %" PRIi64, table,
                                 httpd_request_match(r)->id);
                return NULL;
        }
        return json_object_array_get_idx(rows, 0);
}

static void on_get(struct httpd_request *r, struct json_object *reply,
                   const struct httpd_error *error) {
        const struct httpd_resource *res = request_resource(r);
        struct json_object *row = one_row(r, reply, error, res->table);

        if (row)
                httpd_reply_json(r, 200, httpd_resource_row(res, row));
}

static struct json_object *query_by_id(const char *table, int64_t id) {
        return httpd_query_new(table, httpd_where_int("id", id));
}

int httpd_resource_get(struct httpd_request *r) {
        const struct httpd_match *m = httpd_request_match(r);

        return httpd_domain_call(
                r, query_by_id(m->route->resource->table, m->id), on_get);
}

static int resource_check(struct httpd_request *r, struct json_object *values) {
        const struct httpd_resource *res = request_resource(r);
        struct httpd_error e;

        if (!res->check || res->check(values, &e) >= 0)
                return 0;
        httpd_reply_error(r, &e);
        return -EINVAL;
}

static void on_created(struct httpd_request *r, struct json_object *reply,
                       const struct httpd_error *error) {
        int64_t id = 0;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        (void) httpd_reply_first_id(reply, &id);
        reply_written(r, reply, write_now(r), 201, "id", id);
}

/* Submits an insert of values (a new reference) into res's table. */
static int insert_submit(struct httpd_request *r,
                         const struct httpd_resource *res,
                         struct json_object *values,
                         struct json_object *shown) {
        char summary[HTTPD_SUMMARY_MAX + 1];

        httpd_summary_of_values(summary, "add", res->table, NULL, shown);
        return httpd_domain_call(
                r,
                httpd_submit_op(httpd_op_insert(res->table, values),
                                !write_now(r), httpd_request_actor(r), summary),
                on_created);
}

int httpd_resource_create(struct httpd_request *r) {
        struct json_object *values = httpd_request_body(r);

        if (resource_check(r, values) < 0)
                return 0;
        return insert_submit(r, request_resource(r), json_object_get(values),
                             values);
}

static void on_updated(struct httpd_request *r, struct json_object *reply,
                       const struct httpd_error *error) {
        int64_t *id = httpd_request_get_state(r);

        if (error)
                httpd_reply_error(r, error);
        else
                reply_written(r, reply, write_now(r), 200, "updated",
                              id ? *id : httpd_request_match(r)->id);
}

/* Submits an update of row with values (a new reference); shown is what
 * the summary lists. */
static void update_submit(struct httpd_request *r,
                          const struct httpd_resource *res,
                          struct json_object *row, struct json_object *values,
                          struct json_object *shown) {
        char summary[HTTPD_SUMMARY_MAX + 1], label[96];
        int64_t id = 0, version = 0, *state;

        if (haven_json_get_int64(row, "id", &id) < 0 ||
            haven_json_get_int64(row, "version", &version) < 0) {
                json_object_put(values);
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind sent a row without id and "
                                 "version");
                return;
        }
        state = malloc(sizeof *state);
        if (!state) {
                json_object_put(values);
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        *state = id;
        httpd_request_set_state(r, state, free);
        row_label(res, row, id, label, sizeof label);
        httpd_summary_of_values(summary, "set", res->table, label, shown);
        call_or_fail(r,
                     httpd_submit_op(
                             httpd_op_update(res->table, id, version, values),
                             !write_now(r), httpd_request_actor(r), summary),
                     on_updated);
}

static void on_update_row(struct httpd_request *r, struct json_object *reply,
                          const struct httpd_error *error) {
        const struct httpd_resource *res = request_resource(r);
        struct json_object *values = httpd_request_body(r), *rows, *row;

        if (res->singleton) {
                if (error) {
                        httpd_reply_error(r, error);
                        return;
                }
                rows = httpd_reply_rows(reply);
                if (httpd_array_length(rows) == 0) {
                        /* The first change of a singleton adds its row. */
                        int ret = insert_submit(r, res, json_object_get(values),
                                                values);

                        if (ret < 0)
                                httpd_reply_failure(r, NULL, ret);
                        return;
                }
                row = json_object_array_get_idx(rows, 0);
        } else {
                row = one_row(r, reply, error, res->table);
                if (!row)
                        return;
        }
        update_submit(r, res, row, json_object_get(values), values);
}

/* PATCH with nothing in it. */
static bool body_empty(struct httpd_request *r) {
        if (json_object_object_length(httpd_request_body(r)) > 0)
                return false;
        httpd_reply_code(r, HTTPD_ERROR_INVALID, NULL,
                         "nothing to change: name at least one field");
        return true;
}

int httpd_resource_update(struct httpd_request *r) {
        const struct httpd_match *m = httpd_request_match(r);
        const struct httpd_resource *res = m->route->resource;

        if (body_empty(r) || resource_check(r, httpd_request_body(r)) < 0)
                return 0;
        return httpd_domain_call(r,
                                 res->singleton
                                         ? httpd_query_new(res->table, NULL)
                                         : query_by_id(res->table, m->id),
                                 on_update_row);
}

static void on_deleted(struct httpd_request *r, struct json_object *reply,
                       const struct httpd_error *error) {
        if (error)
                httpd_reply_error(r, error);
        else
                reply_written(r, reply, write_now(r), 200, "deleted",
                              httpd_request_match(r)->id);
}

/* Submits the deletion of row (its version goes into the delete, so a
 * change in between is a conflict rather than lost). */
static void delete_submit(struct httpd_request *r,
                          const struct httpd_resource *res,
                          struct json_object *row, httpd_domain_reply_t done) {
        const struct httpd_match *m = httpd_request_match(r);
        char summary[HTTPD_SUMMARY_MAX + 1], text[64];
        const char *name = NULL;
        int64_t version;

        if (haven_json_get_int64(row, "version", &version) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind sent a row without version");
                return;
        }
        (void) haven_json_get_string(row, "name", &name);
        summary[0] = '\0';
        snprintf(text, sizeof text, "delete %s %" PRIi64, res->table, m->id);
        httpd_summary_append(summary, text);
        if (name) {
                httpd_summary_append(summary, " \"");
                httpd_summary_append(summary, name);
                httpd_summary_append(summary, "\"");
        }
        call_or_fail(
                r,
                httpd_submit_op(httpd_op_delete(res->table, m->id, version),
                                !write_now(r), httpd_request_actor(r), summary),
                done);
}

static void on_delete_row(struct httpd_request *r, struct json_object *reply,
                          const struct httpd_error *error) {
        const struct httpd_resource *res = request_resource(r);
        struct json_object *row = one_row(r, reply, error, res->table);

        if (row)
                delete_submit(r, res, row, on_deleted);
}

int httpd_resource_delete(struct httpd_request *r) {
        const struct httpd_match *m = httpd_request_match(r);

        return httpd_domain_call(r,
                                 query_by_id(m->route->resource->table, m->id),
                                 on_delete_row);
}

/* ==== Paged lists ==== */

static int id_descending(const void *a, const void *b) {
        struct json_object *x = *(struct json_object *const *) a,
                           *y = *(struct json_object *const *) b;
        int64_t i = 0, j = 0;

        (void) haven_json_get_int64(x, "id", &i);
        (void) haven_json_get_int64(y, "id", &j);
        return i < j ? 1 : i > j ? -1 : 0;
}

static void on_paged(struct httpd_request *r, struct json_object *reply,
                     const struct httpd_error *error) {
        const struct httpd_match *m = httpd_request_match(r);
        const struct httpd_resource *res = m->route->resource;
        struct json_object *rows = httpd_reply_rows(reply);
        _cleanup_(json_object_putp) struct json_object *o = NULL, *items = NULL;
        int64_t limit = PAGE_DEFAULT, before = INT64_MAX, last = 0;
        size_t n;
        bool more = false;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (!rows) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind answered without rows");
                return;
        }
        (void) httpd_match_param(m, "limit", &limit);
        (void) httpd_match_param(m, "before", &before);
        json_object_array_sort(rows, id_descending);
        n = httpd_array_length(rows);
        items = json_object_new_array();
        o = json_object_new_object();
        if (!items || !o)
                goto oom;
        for (size_t i = 0; i < n; i++) {
                struct json_object *row = json_object_array_get_idx(rows, i),
                                   *copy;
                int64_t id = 0;

                (void) haven_json_get_int64(row, "id", &id);
                if (id >= before)
                        continue;
                if ((int64_t) httpd_array_length(items) >= limit) {
                        more = true;
                        break;
                }
                copy = httpd_resource_row(res, row);
                if (!copy || json_object_array_add(items, copy) < 0) {
                        json_object_put(copy);
                        goto oom;
                }
                last = id;
        }
        if (haven_json_add(o, "items", TAKE_PTR(items)) < 0 ||
            haven_json_add(o, "next_before",
                           more ? json_object_new_int64(last) : NULL) < 0)
                goto oom;
        httpd_reply_json(r, 200, TAKE_PTR(o));
        return;
oom:
        httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL, "out of memory");
}

int httpd_paged_list(struct httpd_request *r) {
        return httpd_domain_call(
                r, httpd_query_new(request_resource(r)->table, NULL), on_paged);
}

/* ==== Administrators ==== */

static void on_administrator_hashed(struct httpd_request *r, const char *hash) {
        const struct httpd_resource *res = request_resource(r);
        struct json_object *body = httpd_request_body(r), *name;
        _cleanup_(json_object_putp) struct json_object
                *values = json_object_new_object(),
                *shown = json_object_new_object();
        int ret;

        if (!hash) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "the password could not be hashed");
                return;
        }
        if (!values || !shown ||
            !json_object_object_get_ex(body, "name", &name) ||
            haven_json_add(values, "name", json_object_get(name)) < 0 ||
            haven_json_add(shown, "name", json_object_get(name)) < 0 ||
            haven_json_add(values, "password_hash",
                           json_object_new_string(hash)) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        ret = insert_submit(r, res, TAKE_PTR(values), shown);
        if (ret < 0)
                httpd_reply_failure(r, NULL, ret);
}

static const char *body_password(struct httpd_request *r) {
        const char *password = NULL;

        (void) haven_json_get_string(httpd_request_body(r), "password",
                                     &password);
        return password;
}

int httpd_administrator_create(struct httpd_request *r) {
        assert(body_password(r)); /* the policy says so */
        return httpd_auth_hash(r, body_password(r), on_administrator_hashed);
}

static void string_wipe_free(void *p) {
        char *s = p;

        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

static void on_administrator_update_row(struct httpd_request *r,
                                        struct json_object *reply,
                                        const struct httpd_error *error) {
        const struct httpd_resource *res = request_resource(r);
        struct json_object *row = one_row(r, reply, error, res->table);
        _cleanup_(json_object_putp) struct json_object *values = NULL,
                                                       *shown = NULL;
        const char *hash = httpd_request_get_state(r);

        if (!row)
                return;
        values = json_object_new_object();
        shown = json_object_new_object();
        if (!values || !shown || !hash ||
            haven_json_add(values, "password_hash",
                           json_object_new_string(hash)) < 0 ||
            haven_json_add(shown, "password", json_object_new_string("***")) <
                    0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        update_submit(r, res, row, TAKE_PTR(values), shown);
}

static void on_administrator_rehashed(struct httpd_request *r,
                                      const char *hash) {
        char *copy;

        if (!hash) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "the password could not be hashed");
                return;
        }
        /* Copied before the hashing job (the request's state) goes. */
        copy = strdup(hash);
        if (!copy) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_request_set_state(r, copy, string_wipe_free);
        call_or_fail(r,
                     query_by_id(request_resource(r)->table,
                                 httpd_request_match(r)->id),
                     on_administrator_update_row);
}

int httpd_administrator_update(struct httpd_request *r) {
        assert(body_password(r));
        return httpd_auth_hash(r, body_password(r), on_administrator_rehashed);
}

static void on_administrator_deleted(struct httpd_request *r,
                                     struct json_object *reply,
                                     const struct httpd_error *error) {
        const char *name = httpd_request_get_state(r);
        size_t n;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (write_now(r) && name) {
                /* Its sessions on this node end with it. */
                n = httpd_sessions_remove_administrator(
                        httpd_sessions(httpd_request_server(r)), name);
                if (n > 0)
                        log_info("Administrator \"%s\" deleted: %zu "
                                 "session(s) ended",
                                 name, n);
        }
        reply_written(r, reply, write_now(r), 200, "deleted",
                      httpd_request_match(r)->id);
}

static void on_administrators(struct httpd_request *r,
                              struct json_object *reply,
                              const struct httpd_error *error) {
        const struct httpd_resource *res = request_resource(r);
        struct json_object *rows = httpd_reply_rows(reply), *row;
        const char *name = NULL;
        char *copy;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        row = httpd_rows_find(rows, "id", httpd_request_match(r)->id);
        if (!row) {
                httpd_reply_code(r, HTTPD_ERROR_NOT_FOUND, "id",
                                 "administrators has no row %" PRIi64,
                                 httpd_request_match(r)->id);
                return;
        }
        if (httpd_array_length(rows) <= 1) {
                httpd_reply_code(r, HTTPD_ERROR_CONFLICT, "id",
                                 "the last administrator cannot be deleted: "
                                 "add another one first");
                return;
        }
        (void) haven_json_get_string(row, "name", &name);
        copy = name ? strdup(name) : NULL;
        httpd_request_set_state(r, copy, free);
        delete_submit(r, res, row, on_administrator_deleted);
}

int httpd_administrator_delete(struct httpd_request *r) {
        return httpd_domain_call(
                r, httpd_query_new(request_resource(r)->table, NULL),
                on_administrators);
}

/* ==== Nodes ==== */

/* What node steps carry from one answer to the next. */
struct node_step {
        int64_t node_id;
        char name[64];
        int64_t request_id;
};

static struct node_step *node_step_new(struct httpd_request *r,
                                       struct json_object *row) {
        struct node_step *s = calloc(1, sizeof *s);
        const char *name = "";

        if (!s)
                return NULL;
        (void) haven_json_get_int64(row, "node_id", &s->node_id);
        (void) haven_json_get_string(row, "name", &name);
        snprintf(s->name, sizeof s->name, "%s", name);
        httpd_request_set_state(r, s, free);
        return s;
}

static void on_node_state(struct httpd_request *r, struct json_object *reply,
                          const struct httpd_error *error) {
        const struct httpd_match *m = httpd_request_match(r);
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        int64_t version = 0;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        (void) haven_json_get_int64(reply, "version", &version);
        o = json_object_new_object();
        if (!o || haven_json_add(o, "id", json_object_new_int64(m->id)) < 0 ||
            haven_json_add(o, "state",
                           json_object_new_string(m->route->action)) < 0 ||
            haven_json_add(o, "version", json_object_new_int64(version)) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_reply_json(r, 200, TAKE_PTR(o));
}

static void on_node_action_row(struct httpd_request *r,
                               struct json_object *reply,
                               const struct httpd_error *error) {
        const struct httpd_match *m = httpd_request_match(r);
        struct json_object *row = one_row(r, reply, error, "nodes"), *values;
        char summary[HTTPD_SUMMARY_MAX + 1], label[96];
        int64_t version = 0;

        if (!row)
                return;
        (void) haven_json_get_int64(row, "version", &version);
        values = json_object_new_object();
        if (!values ||
            haven_json_add(values, "state",
                           json_object_new_string(m->route->action)) < 0) {
                json_object_put(values);
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        row_label(&(const struct httpd_resource){.label = "name"}, row, m->id,
                  label, sizeof label);
        snprintf(summary, sizeof summary, "node %s: %s", label,
                 m->route->action);
        /* A node's state changes at once: no staging. */
        call_or_fail(r,
                     httpd_submit_op(
                             httpd_op_update("nodes", m->id, version, values),
                             false, httpd_request_actor(r), summary),
                     on_node_state);
}

int httpd_node_action(struct httpd_request *r) {
        return httpd_domain_call(
                r, query_by_id("nodes", httpd_request_match(r)->id),
                on_node_action_row);
}

static void on_node_removed(struct httpd_request *r, struct json_object *reply,
                            const struct httpd_error *error) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        o = json_object_new_object();
        if (!o || haven_json_add(o, "deleted",
                                 json_object_new_int64(
                                         httpd_request_match(r)->id)) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_reply_json(r, 200, TAKE_PTR(o));
}

static void on_node_remove_row(struct httpd_request *r,
                               struct json_object *reply,
                               const struct httpd_error *error) {
        struct json_object *row = one_row(r, reply, error, "nodes"), *req;
        const char *name = NULL;

        if (!row)
                return;
        (void) haven_json_get_string(row, "name", &name);
        req = httpd_msg_new("node-remove");
        if (req &&
            (haven_json_add(req, "node",
                            json_object_new_string(name ? name : "")) < 0 ||
             haven_json_add(req, "actor",
                            json_object_new_string(httpd_request_actor(r))) <
                     0)) {
                json_object_put(req);
                req = NULL;
        }
        call_or_fail(r, req, on_node_removed);
}

int httpd_node_remove(struct httpd_request *r) {
        return httpd_domain_call(
                r, query_by_id("nodes", httpd_request_match(r)->id),
                on_node_remove_row);
}

static void reply_request_id(struct httpd_request *r, unsigned status,
                             int64_t id, int64_t version, bool existing) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();

        if (!o || haven_json_add(o, "id", json_object_new_int64(id)) < 0 ||
            haven_json_add(o, "version", json_object_new_int64(version)) < 0 ||
            (existing && haven_json_add(o, "existing",
                                        json_object_new_boolean(true)) < 0)) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_reply_json(r, status, TAKE_PTR(o));
}

/* The open (pending or running) fence request of a node among rows. */
static struct json_object *open_request(struct json_object *rows,
                                        int64_t node_id) {
        for (size_t i = 0; i < httpd_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                const char *state = "";
                int64_t id = 0;

                (void) haven_json_get_int64(row, "node_id", &id);
                (void) haven_json_get_string(row, "state", &state);
                if (id == node_id &&
                    (streq(state, "pending") || streq(state, "running")))
                        return row;
        }
        return NULL;
}

static void on_fence_existing(struct httpd_request *r,
                              struct json_object *reply,
                              const struct httpd_error *error) {
        struct node_step *s = httpd_request_get_state(r);
        struct json_object *row;
        int64_t id = 0, version = 0;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        row = open_request(httpd_reply_rows(reply), s->node_id);
        if (!row) {
                httpd_reply_code(r, HTTPD_ERROR_CONFLICT, NULL,
                                 "the fence request was refused, and there "
                                 "is no open one to follow: try again");
                return;
        }
        (void) haven_json_get_int64(row, "id", &id);
        (void) haven_json_get_int64(row, "version", &version);
        reply_request_id(r, 200, id, version, true);
}

static void on_fence_requested(struct httpd_request *r,
                               struct json_object *reply,
                               const struct httpd_error *error) {
        struct node_step *s = httpd_request_get_state(r);
        int64_t id = 0, version = 0;

        if (error && error->code == HTTPD_ERROR_INVALID &&
            streq(error->field, "node_id")) {
                /* One open request per node: follow the one there is. */
                call_or_fail(
                        r,
                        httpd_query_new("fence_requests",
                                        httpd_where_int("node_id", s->node_id)),
                        on_fence_existing);
                return;
        }
        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        (void) httpd_reply_first_id(reply, &id);
        (void) haven_json_get_int64(reply, "version", &version);
        reply_request_id(r, 201, id, version, false);
}

static void on_fence_node_row(struct httpd_request *r,
                              struct json_object *reply,
                              const struct httpd_error *error) {
        struct json_object *row = one_row(r, reply, error, "nodes"), *body,
                           *values, *v;
        char summary[HTTPD_SUMMARY_MAX + 1];
        const char *action = "off";
        struct node_step *s;

        if (!row)
                return;
        s = node_step_new(r, row);
        body = httpd_request_body(r);
        (void) haven_json_get_string(body, "action", &action);
        values = json_object_new_object();
        if (!s || !values ||
            haven_json_add(values, "node_id",
                           json_object_new_int64(s->node_id)) < 0 ||
            haven_json_add(values, "action", json_object_new_string(action)) <
                    0 ||
            (json_object_object_get_ex(body, "reason", &v) &&
             haven_json_add(values, "reason", json_object_get(v)) < 0)) {
                json_object_put(values);
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        snprintf(summary, sizeof summary, "fence %s (%s)", s->name, action);
        call_or_fail(r,
                     httpd_submit_op(httpd_op_insert("fence_requests", values),
                                     false, httpd_request_actor(r), summary),
                     on_fence_requested);
}

int httpd_node_fence(struct httpd_request *r) {
        return httpd_domain_call(
                r, query_by_id("nodes", httpd_request_match(r)->id),
                on_fence_node_row);
}

static void on_fence_confirmed(struct httpd_request *r,
                               struct json_object *reply,
                               const struct httpd_error *error) {
        struct node_step *s = httpd_request_get_state(r);
        int64_t version = 0;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        (void) haven_json_get_int64(reply, "version", &version);
        reply_request_id(r, 200, s->request_id, version, false);
}

static void on_confirm_requests(struct httpd_request *r,
                                struct json_object *reply,
                                const struct httpd_error *error) {
        struct node_step *s = httpd_request_get_state(r);
        struct json_object *row, *values;
        char text[HTTPD_SUMMARY_MAX + 1];
        int64_t version = 0;
        uint64_t now = haven_now_usec(CLOCK_REALTIME);
        time_t t = (time_t) (now / 1000000u);
        struct tm tm;
        char when[32] = "";

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        row = open_request(httpd_reply_rows(reply), s->node_id);
        if (!row) {
                httpd_reply_code(r, HTTPD_ERROR_NOT_FOUND, NULL,
                                 "there is no open fence request for %s",
                                 s->name);
                return;
        }
        (void) haven_json_get_int64(row, "id", &s->request_id);
        (void) haven_json_get_int64(row, "version", &version);
        if (gmtime_r(&t, &tm))
                strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
        snprintf(text, sizeof text,
                 "%s confirmed off at %s by %s (manual fencing)", s->name, when,
                 httpd_request_actor(r));
        values = json_object_new_object();
        if (!values ||
            haven_json_add(values, "state", json_object_new_string("done")) <
                    0 ||
            haven_json_add(values, "result", json_object_new_string(text)) <
                    0 ||
            haven_json_add(values, "finished_at",
                           json_object_new_int64((int64_t) now)) < 0) {
                json_object_put(values);
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        call_or_fail(
                r,
                httpd_submit_op(httpd_op_update("fence_requests", s->request_id,
                                                version, values),
                                false, httpd_request_actor(r), text),
                on_fence_confirmed);
}

static void on_confirm_node_row(struct httpd_request *r,
                                struct json_object *reply,
                                const struct httpd_error *error) {
        struct json_object *row = one_row(r, reply, error, "nodes");
        struct node_step *s;

        if (!row)
                return;
        s = node_step_new(r, row);
        if (!s) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        call_or_fail(r,
                     httpd_query_new("fence_requests",
                                     httpd_where_int("node_id", s->node_id)),
                     on_confirm_requests);
}

int httpd_node_fence_confirm(struct httpd_request *r) {
        return httpd_domain_call(
                r, query_by_id("nodes", httpd_request_match(r)->id),
                on_confirm_node_row);
}

/* ==== VMs ==== */

/* What a VM action carries from one answer to the next. */
struct vm_step {
        int64_t vm_id, vm_version;
        char vm[HTTPD_NAME_MAX + 1];
        bool has_node; /* migrate, and prefer with a node */
        int64_t node_id;
        char node[HTTPD_NAME_MAX + 1];
};

/* The answer to prefer: 200 {"id", "action", "version"}. */
static void on_vm_preferred(struct httpd_request *r, struct json_object *reply,
                            const struct httpd_error *error) {
        const struct httpd_match *m = httpd_request_match(r);
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        int64_t version = 0;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        (void) haven_json_get_int64(reply, "version", &version);
        o = json_object_new_object();
        if (!o || haven_json_add(o, "id", json_object_new_int64(m->id)) < 0 ||
            haven_json_add(o, "action",
                           json_object_new_string(m->route->action)) < 0 ||
            haven_json_add(o, "version", json_object_new_int64(version)) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_reply_json(r, 200, TAKE_PTR(o));
}

/* The answer to a command: 202 {"id", "vm_id", "command",
 * "target_node_id", "state", "version", "href"} and Location: the command
 * is written; the VM manager carries it out and writes its outcome there. */
static void on_vm_command_written(struct httpd_request *r,
                                  struct json_object *reply,
                                  const struct httpd_error *error) {
        const struct httpd_match *m = httpd_request_match(r);
        struct vm_step *s = httpd_request_get_state(r);
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        int64_t id = 0, version = 0;
        char href[96];

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (!httpd_reply_first_id(reply, &id)) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind did not say the command's id");
                return;
        }
        (void) haven_json_get_int64(reply, "version", &version);
        snprintf(href, sizeof href, HTTPD_API_PREFIX "/vm-commands/%" PRIi64,
                 id);
        o = json_object_new_object();
        if (!o || haven_json_add(o, "id", json_object_new_int64(id)) < 0 ||
            haven_json_add(o, "vm_id", json_object_new_int64(s->vm_id)) < 0 ||
            haven_json_add(o, "command",
                           json_object_new_string(m->route->action)) < 0 ||
            haven_json_add(o, "target_node_id",
                           s->has_node ? json_object_new_int64(s->node_id)
                                       : NULL) < 0 ||
            haven_json_add(o, "state", json_object_new_string("pending")) <
                    0 ||
            haven_json_add(o, "version", json_object_new_int64(version)) < 0 ||
            haven_json_add(o, "href", json_object_new_string(href)) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_reply_json(r, 202, TAKE_PTR(o));
        (void) httpd_reply_header(r, "Location", href);
}

/* Everything is known: write what the action means, at once (never
 * staged). prefer sets vms.preferred_node_id (with the row's version);
 * every other action is one vm_commands row for the VM manager. */
static void vm_write(struct httpd_request *r, struct vm_step *s) {
        const char *action = httpd_request_match(r)->route->action;
        char summary[HTTPD_SUMMARY_MAX + 1];
        struct json_object *values = json_object_new_object(), *op;
        httpd_domain_reply_t done;
        int ret;

        if (!values)
                goto oom;
        if (streq(action, "prefer")) {
                ret = haven_json_add(values, "preferred_node_id",
                                     s->has_node
                                             ? json_object_new_int64(s->node_id)
                                             : NULL);
                snprintf(summary, sizeof summary, "vm %s: prefer %s", s->vm,
                         s->has_node ? s->node : "no node");
                op = ret < 0 ? NULL
                             : httpd_op_update("vms", s->vm_id, s->vm_version,
                                               TAKE_PTR(values));
                done = on_vm_preferred;
        } else {
                ret = haven_json_add(values, "vm_id",
                                     json_object_new_int64(s->vm_id));
                if (ret >= 0)
                        ret = haven_json_add(values, "command",
                                             json_object_new_string(action));
                if (ret >= 0 && s->has_node)
                        ret = haven_json_add(
                                values, "target_node_id",
                                json_object_new_int64(s->node_id));
                if (s->has_node)
                        snprintf(summary, sizeof summary, "vm %s: %s to %s",
                                 s->vm, action, s->node);
                else
                        snprintf(summary, sizeof summary, "vm %s: %s", s->vm,
                                 action);
                op = ret < 0 ? NULL
                             : httpd_op_insert("vm_commands",
                                               TAKE_PTR(values));
                done = on_vm_command_written;
        }
        if (ret < 0 || !op)
                goto oom;
        call_or_fail(r,
                     httpd_submit_op(op, false, httpd_request_actor(r),
                                     summary),
                     done);
        return;
oom:
        json_object_put(values);
        httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL, "out of memory");
}

/* The node the body names is in (or not: 400, naming "node"). */
static void on_vm_node(struct httpd_request *r, struct json_object *reply,
                       const struct httpd_error *error) {
        struct json_object *rows = httpd_reply_rows(reply), *row;
        struct vm_step *s = httpd_request_get_state(r);
        const char *name = "";

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (httpd_array_length(rows) != 1) {
                httpd_reply_code(r, HTTPD_ERROR_INVALID, "node",
                                 "no node \"%s\" in the cluster", s->node);
                return;
        }
        row = json_object_array_get_idx(rows, 0);
        if (haven_json_get_int64(row, "node_id", &s->node_id) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind sent a node without node_id");
                return;
        }
        (void) haven_json_get_string(row, "name", &name);
        snprintf(s->node, sizeof s->node, "%s", name);
        vm_write(r, s);
}

/* The VM is in (or not: 404): look the node up if the body names one. */
static void on_vm_row(struct httpd_request *r, struct json_object *reply,
                      const struct httpd_error *error) {
        struct json_object *row = one_row(r, reply, error, "vms"), *where;
        struct vm_step *s;
        const char *name = "", *node = NULL;

        if (!row)
                return;
        s = calloc(1, sizeof *s);
        if (!s) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_request_set_state(r, s, free);
        (void) haven_json_get_int64(row, "id", &s->vm_id);
        (void) haven_json_get_int64(row, "version", &s->vm_version);
        (void) haven_json_get_string(row, "name", &name);
        snprintf(s->vm, sizeof s->vm, "%s", name);

        /* migrate's policy requires the node; prefer's takes null too. */
        (void) haven_json_get_string(httpd_request_body(r), "node", &node);
        if (!node) {
                vm_write(r, s);
                return;
        }
        s->has_node = true;
        snprintf(s->node, sizeof s->node, "%s", node);
        where = json_object_new_object();
        if (!where ||
            haven_json_add(where, "name", json_object_new_string(node)) < 0) {
                json_object_put(where);
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        call_or_fail(r, httpd_query_new("nodes", where), on_vm_node);
}

int httpd_vm_action(struct httpd_request *r) {
        return httpd_domain_call(
                r, query_by_id("vms", httpd_request_match(r)->id), on_vm_row);
}

/* The VM is in (or not: 404): its commands, paged like the lists. */
static void on_vm_for_commands(struct httpd_request *r,
                               struct json_object *reply,
                               const struct httpd_error *error) {
        if (!one_row(r, reply, error, "vms"))
                return;
        call_or_fail(r,
                     httpd_query_new("vm_commands",
                                     httpd_where_int(
                                             "vm_id",
                                             httpd_request_match(r)->id)),
                     on_paged);
}

int httpd_vm_commands(struct httpd_request *r) {
        return httpd_domain_call(
                r, query_by_id("vms", httpd_request_match(r)->id),
                on_vm_for_commands);
}

/* ==== Alerts ==== */

static void on_alert_cleared(struct httpd_request *r, struct json_object *reply,
                             const struct httpd_error *error) {
        int64_t version = 0;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        (void) haven_json_get_int64(reply, "version", &version);
        reply_request_id(r, 200, httpd_request_match(r)->id, version, false);
}

static void on_alert_row(struct httpd_request *r, struct json_object *reply,
                         const struct httpd_error *error) {
        const struct httpd_match *m = httpd_request_match(r);
        struct json_object *row = one_row(r, reply, error, "alerts"), *values,
                           *cleared = NULL;
        char summary[HTTPD_SUMMARY_MAX + 1];
        int64_t version = 0;

        if (!row)
                return;
        if (json_object_object_get_ex(row, "cleared_at", &cleared) && cleared) {
                httpd_reply_code(r, HTTPD_ERROR_CONFLICT, "id",
                                 "alert %" PRIi64 " is cleared already", m->id);
                return;
        }
        (void) haven_json_get_int64(row, "version", &version);
        values = json_object_new_object();
        if (!values ||
            haven_json_add(values, "cleared_at",
                           json_object_new_int64((int64_t) haven_now_usec(
                                   CLOCK_REALTIME))) < 0 ||
            haven_json_add(values, "cleared_by",
                           json_object_new_string(httpd_request_actor(r))) <
                    0) {
                json_object_put(values);
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        snprintf(summary, sizeof summary, "clear alert %" PRIi64, m->id);
        call_or_fail(r,
                     httpd_submit_op(
                             httpd_op_update("alerts", m->id, version, values),
                             false, httpd_request_actor(r), summary),
                     on_alert_cleared);
}

int httpd_alert_clear(struct httpd_request *r) {
        return httpd_domain_call(
                r, query_by_id("alerts", httpd_request_match(r)->id),
                on_alert_row);
}
