/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Several rows in one change (POST /api/v1/batch): what a wizard makes at
 * once (a VM with its disks, NICs and CD-ROM drive; a fence device and its
 * outlet; the eSAN nodes and a disk on them) as one transaction, or as one
 * staged change. Each item is judged by the route that would take it
 * alone (its field policy and its resource's check), and a row id may name
 * the row an earlier item adds ({"ref": N}, which haven-domaind resolves).
 * Must not: take rows the generic handlers would not (administrators: their
 * passwords are hashed elsewhere), or submit anything but the one
 * transaction.
 */
#include <inttypes.h>
#include <stdio.h>

#include "httpd.h"

#define RESOURCE_NAME_MAX 64

static const struct haven_json_field item_policy[] = {
        {.name = "resource",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = RESOURCE_NAME_MAX},
        {.name = "id", .kind = HAVEN_JSON_INT, .min = 1, .max = INT64_MAX},
        {.name = "version", .kind = HAVEN_JSON_INT, .min = 0, .max = INT64_MAX},
        {.name = "values", .kind = HAVEN_JSON_OBJECT, .required = true},
};

/* ==== Errors naming an item ==== */

/* *e for item index: field "items/INDEX[/FIELD]", the message prefixed
 * with the item. */
static void item_error(struct httpd_error *e, size_t index, const char *field,
                       const char *message) {
        char name[HTTPD_FIELD_MAX];

        if (field && *field)
                snprintf(name, sizeof name, "items/%zu/%s", index, field);
        else
                snprintf(name, sizeof name, "items/%zu", index);
        httpd_error_set(e, HTTPD_ERROR_INVALID, name, "item %zu: %s", index,
                        message);
}

/* ==== Which route an item stands for ==== */

static bool resource_name_is_valid(const char *s) {
        if (!*s)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || *p == '-'))
                        return false;
        return true;
}

/* The route that would take the item alone: POST /api/v1/RESOURCE (an
 * addition) or PATCH /api/v1/RESOURCE/{id} (a change), served by the
 * generic handlers. NULL if there is none. */
static const struct httpd_route *item_route(const char *resource,
                                            bool change) {
        const struct httpd_route *routes;
        char pattern[128];
        size_t n;

        if (!resource_name_is_valid(resource))
                return NULL;
        snprintf(pattern, sizeof pattern, HTTPD_API_PREFIX "/%s%s", resource,
                 change ? "/{id}" : "");
        routes = httpd_api_routes(&n);
        for (size_t i = 0; i < n; i++)
                if (routes[i].resource && streq(routes[i].pattern, pattern) &&
                    routes[i].method == (change ? HTTPD_PATCH : HTTPD_POST) &&
                    routes[i].handler == (change ? httpd_resource_update
                                                 : httpd_resource_create))
                        return routes + i;
        return NULL;
}

static const struct haven_json_field *
policy_field(const struct httpd_route *route, const char *name) {
        for (size_t i = 0; i < route->n_policy; i++)
                if (streq(route->policy[i].name, name))
                        return route->policy + i;
        return NULL;
}

/* Whether v is {"ref": N} (exactly that): true and *ret. */
static bool ref_of(struct json_object *v, int64_t *ret) {
        return json_object_is_type(v, json_type_object) &&
               json_object_object_length(v) == 1 &&
               haven_json_get_int64(v, "ref", ret) >= 0;
}

/* ==== Checking an item ==== */

/* Checks the values of item index against route's policy and its
 * resource's check, as if they were posted alone; a ref (to an earlier
 * addition: adds[N]) stands in as row id 1 for that. Returns 0, or -EINVAL
 * with *e naming the item's field. */
static int values_check(struct json_object *values,
                        const struct httpd_route *route, bool change,
                        size_t index, const bool *adds,
                        struct httpd_error *e) {
        _cleanup_(json_object_putp) struct json_object *copy = NULL;
        struct haven_json_error je;
        char message[200];

        if (change && json_object_object_length(values) == 0) {
                item_error(e, index, "values",
                           "a change must name at least one field");
                return -EINVAL;
        }
        if (json_object_deep_copy(values, &copy, NULL) < 0)
                return -ENOMEM;
        json_object_object_foreach(values, key, value) {
                const struct haven_json_field *f;
                int64_t n;

                if (!ref_of(value, &n))
                        continue;
                f = policy_field(route, key);
                /* Row ids only (their range is 1..INT64_MAX): node ids are
                 * corosync's, never a new row's. */
                if (!f || f->kind != HAVEN_JSON_INT || f->max != INT64_MAX) {
                        snprintf(message, sizeof message,
                                 "\"%s\" cannot name another item's row", key);
                        item_error(e, index, key, message);
                        return -EINVAL;
                }
                if (n < 0 || (size_t) n >= index || !adds[n]) {
                        snprintf(message, sizeof message,
                                 "\"%s\": a ref names an addition before "
                                 "this item",
                                 key);
                        item_error(e, index, key, message);
                        return -EINVAL;
                }
                if (json_object_object_add(copy, key,
                                           json_object_new_int64(1)) < 0)
                        return -ENOMEM;
        }
        if (haven_json_check(copy, route->policy, route->n_policy, &je) < 0) {
                const char *field = je.field;

                if (field)
                        snprintf(message, sizeof message, "\"%s\" %s", field,
                                 je.message);
                else {
                        snprintf(message, sizeof message, "%s", je.message);
                        /* An unknown field: named as the field too. */
                        json_object_object_foreach(copy, name, v) {
                                (void) v;
                                if (!policy_field(route, name)) {
                                        field = name;
                                        break;
                                }
                        }
                }
                item_error(e, index, field, message);
                return -EINVAL;
        }
        if (route->resource->check) {
                struct httpd_error own;

                if (route->resource->check(copy, &own) < 0) {
                        item_error(e, index, own.field, own.message);
                        return -EINVAL;
                }
        }
        return 0;
}

/* ==== The answer ==== */

struct batch {
        size_t n;
        bool now;
        bool adds[HTTPD_BATCH_ITEMS_MAX]; /* item i adds a row */
};

static void on_batch(struct httpd_request *r, struct json_object *reply,
                     const struct httpd_error *error) {
        const struct batch *b = httpd_request_get_state(r);
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *results = NULL, *ids;
        int64_t version = 0, change = 0;
        int ret;

        if (error) {
                struct httpd_error e = *error;

                /* An applied batch's refusal names the item: op N is
                 * item N (a staged batch is one op, refused at
                 * activation). */
                if (b->now && e.op > 0 && e.op <= b->n) {
                        char field[HTTPD_FIELD_MAX];

                        if (e.field[0])
                                snprintf(field, sizeof field, "items/%u/%.40s",
                                         e.op - 1, error->field);
                        else
                                snprintf(field, sizeof field, "items/%u",
                                         e.op - 1);
                        snprintf(e.field, sizeof e.field, "%s", field);
                }
                httpd_reply_error(r, &e);
                return;
        }
        (void) haven_json_get_int64(reply, "version", &version);
        o = json_object_new_object();
        if (!o) {
                ret = -ENOMEM;
        } else if (b->now) {
                ids = json_object_new_array();
                ret = haven_json_add(o, "ids", ids);
                (void) haven_json_get_array(reply, "results", &results);
                for (size_t i = 0; ret >= 0 && ids && i < b->n; i++) {
                        int64_t id;

                        /* A change adds nothing: null. */
                        ret = json_object_array_add(
                                ids,
                                b->adds[i] &&
                                                haven_json_get_int64(
                                                        json_object_array_get_idx(
                                                                results, i),
                                                        "id", &id) >= 0
                                        ? json_object_new_int64(id)
                                        : NULL);
                }
                if (!ids)
                        ret = -ENOMEM;
        } else {
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
        httpd_reply_json(r, b->now ? 201 : 202, TAKE_PTR(o));
}

/* ==== The handler ==== */

/* The op for one checked item (values copied), and its words for the
 * summary appended to summary. NULL on -ENOMEM. */
static struct json_object *item_op(const struct httpd_route *route,
                                   bool change, int64_t id, int64_t version,
                                   struct json_object *values, char *summary) {
        const char *table = route->resource->table;
        char words[HTTPD_SUMMARY_MAX + 1], label[32];
        struct json_object *copy = NULL;

        if (json_object_deep_copy(values, &copy, NULL) < 0)
                return NULL;
        snprintf(label, sizeof label, "%" PRIi64, id);
        httpd_summary_of_values(words, change ? "set" : "add", table,
                                change ? label : NULL, values);
        if (summary[0])
                httpd_summary_append(summary, "; ");
        httpd_summary_append(summary, words);
        return change ? httpd_op_update(table, id, version, copy)
                      : httpd_op_insert(table, copy);
}

int httpd_batch(struct httpd_request *r) {
        struct json_object *body = httpd_request_body(r), *items = NULL;
        _cleanup_(json_object_putp) struct json_object *ops =
                json_object_new_array();
        bool adds[HTTPD_BATCH_ITEMS_MAX] = {};
        char summary[HTTPD_SUMMARY_MAX + 1] = "";
        const char *given = NULL;
        struct httpd_error e;
        struct batch *b;
        size_t n;
        int ret;

        if (!ops)
                return -ENOMEM;
        (void) haven_json_get_array(body, "items", &items);
        (void) haven_json_get_string(body, "summary", &given);
        n = httpd_array_length(items);
        assert(n >= 1 && n <= HTTPD_BATCH_ITEMS_MAX);

        for (size_t i = 0; i < n; i++) {
                struct json_object *item = json_object_array_get_idx(items, i),
                                   *values = NULL, *op;
                const struct httpd_route *route;
                struct haven_json_error je;
                const char *resource = NULL;
                int64_t id = 0, version = 0;
                bool change;

                if (haven_json_check(item, item_policy,
                                     ELEMENTSOF(item_policy), &je) < 0) {
                        item_error(&e, i, je.field, je.message);
                        httpd_reply_error(r, &e);
                        return 0;
                }
                (void) haven_json_get_string(item, "resource", &resource);
                (void) haven_json_get_object(item, "values", &values);
                change = haven_json_get_int64(item, "id", &id) >= 0;
                if (change != (haven_json_get_int64(item, "version",
                                                    &version) >= 0)) {
                        item_error(&e, i, change ? "version" : "id",
                                   "a change names the row's \"id\" and the "
                                   "\"version\" it was read at; an addition "
                                   "neither");
                        httpd_reply_error(r, &e);
                        return 0;
                }
                route = item_route(resource, change);
                if (!route) {
                        item_error(&e, i, "resource",
                                   change ? "\"resource\" must be a "
                                            "collection whose rows change "
                                            "one by one"
                                          : "\"resource\" must be a "
                                            "collection that takes new rows");
                        httpd_reply_error(r, &e);
                        return 0;
                }
                ret = values_check(values, route, change, i, adds, &e);
                if (ret == -EINVAL) {
                        httpd_reply_error(r, &e);
                        return 0;
                }
                if (ret < 0)
                        return ret;
                op = item_op(route, change, id, version, values, summary);
                if (!op || json_object_array_add(ops, op) < 0) {
                        json_object_put(op);
                        return -ENOMEM;
                }
                adds[i] = !change;
        }

        b = malloc(sizeof *b);
        if (!b)
                return -ENOMEM;
        *b = (struct batch){
                .n = n,
                .now = httpd_match_flag(httpd_request_match(r), "now"),
        };
        memcpy(b->adds, adds, sizeof adds);
        httpd_request_set_state(r, b, free);
        if (given && *given) {
                summary[0] = '\0';
                httpd_summary_append(summary, given);
        }
        return httpd_domain_call(r,
                                 httpd_submit_new(TAKE_PTR(ops), !b->now,
                                                  httpd_request_actor(r),
                                                  summary),
                                 on_batch);
}
