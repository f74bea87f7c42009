/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The API's route table and its handlers: the session (login, who am I,
 * logout), the event stream, the cluster status, and domain tables served
 * as collections through one set of generic handlers (a resource names its
 * table; its policy is its row's fields). Writes are staged changes unless
 * ?now=1, submitted to haven-domaind with the administrator as the actor
 * and a summary for the audit log. Must not: check permissions (the
 * dispatcher does, from the table) or write anything itself.
 */
#include <inttypes.h>
#include <stdio.h>

#include "httpd.h"

#define SUMMARY_MAX 200u

/* ==== Helpers ==== */

/* A reply without domaind's bookkeeping ("tag"): a new reference. */
static struct json_object *reply_copy(struct json_object *reply) {
        struct json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_foreach(reply, key, value)
                if (!streq(key, "tag") &&
                    haven_json_add(o, key, json_object_get(value)) < 0) {
                        json_object_put(o);
                        return NULL;
                }
        return o;
}

static struct json_object *request_new(const char *name) {
        struct json_object *o = json_object_new_object();

        if (o &&
            haven_json_add(o, "request", json_object_new_string(name)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* {"request":"query","table":T[,"where":{"id":id}]} */
static struct json_object *query_new(const char *table, int64_t id) {
        _cleanup_(json_object_putp) struct json_object *req =
                request_new("query");
        struct json_object *where;

        if (!req ||
            haven_json_add(req, "table", json_object_new_string(table)) < 0)
                return NULL;
        if (id > 0) {
                where = json_object_new_object();
                if (!where ||
                    haven_json_add(where, "id", json_object_new_int64(id)) <
                            0 ||
                    haven_json_add(req, "where", where) < 0) {
                        json_object_put(where);
                        return NULL;
                }
        }
        return TAKE_PTR(req);
}

/* {"request":"submit","ops":[op] or [{"op":"stage","ops":[op],
 * "summary":S}],"actor":A,"audit":S}; op is taken over. */
static struct json_object *submit_new(struct json_object *op, bool now,
                                      const char *actor, const char *summary) {
        _cleanup_(json_object_putp) struct json_object *req = request_new(
                                                               "submit"),
                                                       *owned = op, *ops = NULL;

        ops = json_object_new_array();
        if (!req || !owned || !ops ||
            json_object_array_add(ops, TAKE_PTR(owned)) < 0)
                return NULL;
        if (!now) {
                _cleanup_(json_object_putp) struct json_object *stage =
                        json_object_new_object();
                struct json_object *wrapper;

                if (!stage ||
                    haven_json_add(stage, "op",
                                   json_object_new_string("stage")) < 0 ||
                    haven_json_add(stage, "ops", TAKE_PTR(ops)) < 0 ||
                    haven_json_add(stage, "summary",
                                   json_object_new_string(summary)) < 0)
                        return NULL;
                wrapper = json_object_new_array();
                if (!wrapper || json_object_array_add(wrapper, stage) < 0) {
                        json_object_put(wrapper);
                        return NULL;
                }
                TAKE_PTR(stage);
                ops = wrapper;
        }
        if (haven_json_add(req, "ops", TAKE_PTR(ops)) < 0 ||
            haven_json_add(req, "actor", json_object_new_string(actor)) < 0 ||
            haven_json_add(req, "audit", json_object_new_string(summary)) < 0)
                return NULL;
        return TAKE_PTR(req);
}

/* Appends "text" to buf (SUMMARY_MAX + 1 bytes), cut on a UTF-8 boundary
 * with "..." when it does not fit. */
static void summary_append(char *buf, const char *text) {
        size_t used = strlen(buf), n = strlen(text);

        if (used >= SUMMARY_MAX)
                return;
        if (used + n <= SUMMARY_MAX) {
                memcpy(buf + used, text, n + 1);
                return;
        }
        n = SUMMARY_MAX - used >= 3 ? SUMMARY_MAX - used - 3 : 0;
        while (n > 0 && ((unsigned char) text[n] & 0xC0) == 0x80)
                n--;
        memcpy(buf + used, text, n);
        strcpy(buf + used + n, "...");
}

/* "add hosts: name=\"web1\" address=\"198.18.0.9\"": the values in their
 * JSON form, those of fields named like passwords as ***. */
static void summary_of_values(char *buf, const char *verb, const char *table,
                              struct json_object *values) {
        buf[0] = '\0';
        summary_append(buf, verb);
        summary_append(buf, " ");
        summary_append(buf, table);
        summary_append(buf, ":");
        json_object_object_foreach(values, key, value) {
                summary_append(buf, " ");
                summary_append(buf, key);
                summary_append(buf, "=");
                summary_append(
                        buf, strstr(key, "password")
                                     ? "***"
                                     : json_object_to_json_string_ext(
                                               value, JSON_C_TO_STRING_PLAIN));
        }
}

static bool reply_first_id(struct json_object *reply, int64_t *ret) {
        struct json_object *results, *first;

        if (haven_json_get_array(reply, "results", &results) < 0 ||
            json_object_array_length(results) < 1)
                return false;
        first = json_object_array_get_idx(results, 0);
        return haven_json_get_int64(first, "id", ret) >= 0;
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
                                reply_first_id(reply, &change)
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

/* ==== Status and events ==== */

static void on_status(struct httpd_request *r, struct json_object *reply,
                      const struct httpd_error *error) {
        if (error)
                httpd_reply_error(r, error);
        else
                httpd_reply_json(r, 200, reply_copy(reply));
}

static int handle_status(struct httpd_request *r) {
        return httpd_domain_call(r, request_new("status"), on_status);
}

/* ==== Resources ==== */

static void on_list(struct httpd_request *r, struct json_object *reply,
                    const struct httpd_error *error) {
        struct json_object *rows, *o;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (haven_json_get_array(reply, "rows", &rows) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind answered without rows");
                return;
        }
        o = json_object_new_object();
        if (o && haven_json_add(o, "items", json_object_get(rows)) < 0) {
                json_object_put(o);
                o = NULL;
        }
        if (!o)
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
        else
                httpd_reply_json(r, 200, o);
}

static int resource_list(struct httpd_request *r) {
        const struct httpd_resource *res =
                httpd_request_match(r)->route->resource;

        return httpd_domain_call(r, query_new(res->table, 0), on_list);
}

static bool write_now(struct httpd_request *r) {
        return httpd_match_flag(httpd_request_match(r), "now");
}

static void on_created(struct httpd_request *r, struct json_object *reply,
                       const struct httpd_error *error) {
        int64_t id = 0;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        (void) reply_first_id(reply, &id);
        reply_written(r, reply, write_now(r), 201, "id", id);
}

static int resource_create(struct httpd_request *r) {
        const struct httpd_resource *res =
                httpd_request_match(r)->route->resource;
        struct json_object *values = httpd_request_body(r), *op;
        char summary[SUMMARY_MAX + 1];

        summary_of_values(summary, "add", res->table, values);
        op = json_object_new_object();
        if (!op ||
            haven_json_add(op, "op", json_object_new_string("insert")) < 0 ||
            haven_json_add(op, "table", json_object_new_string(res->table)) <
                    0 ||
            haven_json_add(op, "values", json_object_get(values)) < 0) {
                json_object_put(op);
                return -ENOMEM;
        }
        return httpd_domain_call(
                r,
                submit_new(op, write_now(r), httpd_request_actor(r), summary),
                on_created);
}

static void on_deleted(struct httpd_request *r, struct json_object *reply,
                       const struct httpd_error *error) {
        if (error)
                httpd_reply_error(r, error);
        else
                reply_written(r, reply, write_now(r), 200, "deleted",
                              httpd_request_match(r)->id);
}

/* The row as it is now: its version goes into the delete, so a change in
 * between is a conflict rather than lost. */
static void on_delete_row(struct httpd_request *r, struct json_object *reply,
                          const struct httpd_error *error) {
        const struct httpd_match *m = httpd_request_match(r);
        const struct httpd_resource *res = m->route->resource;
        struct json_object *rows, *row, *op;
        char summary[SUMMARY_MAX + 1], text[64];
        const char *name = NULL;
        int64_t version;
        int ret;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (haven_json_get_array(reply, "rows", &rows) < 0 ||
            json_object_array_length(rows) != 1) {
                httpd_reply_code(r, HTTPD_ERROR_NOT_FOUND, "id",
                                 "%s has no row %" PRIi64, res->table, m->id);
                return;
        }
        row = json_object_array_get_idx(rows, 0);
        if (haven_json_get_int64(row, "version", &version) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind sent a row without version");
                return;
        }
        (void) haven_json_get_string(row, "name", &name);
        summary[0] = '\0';
        snprintf(text, sizeof text, "delete %s %" PRIi64, res->table, m->id);
        summary_append(summary, text);
        if (name) {
                summary_append(summary, " \"");
                summary_append(summary, name);
                summary_append(summary, "\"");
        }

        op = json_object_new_object();
        if (!op ||
            haven_json_add(op, "op", json_object_new_string("delete")) < 0 ||
            haven_json_add(op, "table", json_object_new_string(res->table)) <
                    0 ||
            haven_json_add(op, "id", json_object_new_int64(m->id)) < 0 ||
            haven_json_add(op, "expect_version",
                           json_object_new_int64(version)) < 0) {
                json_object_put(op);
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        ret = httpd_domain_call(
                r,
                submit_new(op, write_now(r), httpd_request_actor(r), summary),
                on_deleted);
        if (ret < 0) {
                struct httpd_error e;

                httpd_error_from_errno(ret, &e);
                httpd_reply_error(r, &e);
        }
}

static int resource_delete(struct httpd_request *r) {
        const struct httpd_match *m = httpd_request_match(r);

        return httpd_domain_call(r, query_new(m->route->resource->table, m->id),
                                 on_delete_row);
}

/* ==== The table ==== */

static const struct haven_json_field login_policy[] = {
        {.name = "name",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = HTTPD_NAME_MAX},
        {.name = "password",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = 256},
};

/* hosts: as docs/schema.md; domaind checks the name rule and that the
 * address is an IP address. */
static const struct haven_json_field hosts_policy[] = {
        {.name = "name",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = 253},
        {.name = "address",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 2,
         .max = 45},
};
static const struct httpd_resource hosts = {.name = "hosts", .table = "hosts"};

static const char *const now_flag[] = {"now", NULL};

/* GET lists, POST adds (staged unless ?now=1), DELETE /{id} removes. */
#define RESOURCE_ROUTES(res)                                                   \
        {.method = HTTPD_GET,                                                  \
         .pattern = HTTPD_API_PREFIX "/" #res,                                 \
         .handler = resource_list,                                             \
         .resource = &res},                                                    \
                {.method = HTTPD_POST,                                         \
                 .pattern = HTTPD_API_PREFIX "/" #res,                         \
                 .handler = resource_create,                                   \
                 .policy = res##_policy,                                       \
                 .n_policy = ELEMENTSOF(res##_policy),                         \
                 .flags = now_flag,                                            \
                 .resource = &res},                                            \
        {                                                                      \
                .method = HTTPD_DELETE,                                        \
                .pattern = HTTPD_API_PREFIX "/" #res "/{id}",                  \
                .handler = resource_delete, .flags = now_flag,                 \
                .resource = &res                                               \
        }

/* Every route. Permission is HTTPD_SESSION unless it says PUBLIC. */
static const struct httpd_route routes[] = {
        {.method = HTTPD_POST,
         .pattern = HTTPD_API_PREFIX "/session",
         .handler = httpd_auth_login,
         .policy = login_policy,
         .n_policy = ELEMENTSOF(login_policy),
         .body_max = HTTPD_LOGIN_BODY_MAX,
         .permission = HTTPD_PUBLIC,
         .secret = true},
        {.method = HTTPD_GET,
         .pattern = HTTPD_API_PREFIX "/session",
         .handler = httpd_auth_whoami},
        {.method = HTTPD_DELETE,
         .pattern = HTTPD_API_PREFIX "/session",
         .handler = httpd_auth_logout},
        {.method = HTTPD_GET,
         .pattern = HTTPD_API_PREFIX "/events",
         .handler = httpd_events_open},
        {.method = HTTPD_GET,
         .pattern = HTTPD_API_PREFIX "/status",
         .handler = handle_status},
        RESOURCE_ROUTES(hosts),
        /* The web UI: any path outside /api. */
        {.method = HTTPD_GET,
         .pattern = HTTPD_STATIC_PATTERN,
         .handler = httpd_static_serve,
         .permission = HTTPD_PUBLIC},
        {.method = HTTPD_HEAD,
         .pattern = HTTPD_STATIC_PATTERN,
         .handler = httpd_static_serve,
         .permission = HTTPD_PUBLIC},
};

const struct httpd_route *httpd_api_routes(size_t *ret_n) {
        *ret_n = ELEMENTSOF(routes);
        return routes;
}
