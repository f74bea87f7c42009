/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fencing through the API: live checks by the node's haven-fenced (its
 * socket, /run/haven/fenced.sock, framed JSON like domaind's, see
 * daemons/fenced/fenced-api.c): test a device before or after it is added,
 * read a node's outlets, list the installed fence agents and show one
 * agent's parameters; and the cluster's fencing status from the status
 * map ("fencing" entries of every node's fencer, merged as havenctl fence
 * status does). Must not: switch an outlet (fencing itself is a
 * fence_requests row, written by httpd-resources.c).
 */
#include <inttypes.h>
#include <stdio.h>

#include "haven/log.h"
#include "haven/msg.h"
#include "httpd.h"

struct httpd_fenced {
        struct httpd *httpd;
        struct haven_msg_link *link;
        char *path;
};

/* ==== The link ==== */

static void on_state(struct haven_msg_link *link, bool connected,
                     void *userdata) {
        struct httpd_fenced *f = userdata;

        if (connected)
                log_debug("haven-fenced at \"%s\": connected", f->path);
        else
                log_debug("haven-fenced at \"%s\": not connected", f->path);
}

int httpd_fenced_new(struct httpd *h, const char *socket_path,
                     struct httpd_fenced **ret) {
        struct httpd_fenced *f;
        int r;

        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        f->httpd = h;
        f->path = strdup(socket_path);
        if (!f->path) {
                free(f);
                return -ENOMEM;
        }
        r = haven_msg_link_new(httpd_event(h),
                               &(struct haven_msg_link_config){
                                       .path = socket_path,
                                       .on_state = on_state,
                                       .userdata = f,
                               },
                               &f->link);
        if (r < 0) {
                free(f->path);
                free(f);
                return r;
        }
        *ret = f;
        return 0;
}

struct httpd_fenced *httpd_fenced_free(struct httpd_fenced *f) {
        if (!f)
                return NULL;
        haven_msg_link_free(f->link);
        free(f->path);
        free(f);
        return NULL;
}

bool httpd_fenced_connected(const struct httpd_fenced *f) {
        return f && haven_msg_link_connected(f->link);
}

static int fenced_call(struct httpd_request *r, struct json_object *request,
                       httpd_domain_reply_t done) {
        struct httpd_fenced *f = httpd_fenced(httpd_request_server(r));

        return httpd_link_call(f ? f->link : NULL, "haven-fenced", r, request,
                               HTTPD_FENCED_TIMEOUT_USEC, done);
}

/* haven-fenced's answer as it is (a check's verdict, the agents, ...). */
static void on_fenced_reply(struct httpd_request *r, struct json_object *reply,
                            const struct httpd_error *error) {
        if (error)
                httpd_reply_error(r, error);
        else
                httpd_reply_json(r, 200, httpd_reply_copy(reply));
}

/* ==== Device tests ==== */

int httpd_fence_device_test(struct httpd_request *r) {
        struct json_object *body = httpd_request_body(r);
        _cleanup_(json_object_putp) struct json_object *req = NULL,
                                                       *definition = NULL;
        struct json_object *outlets = NULL;

        req = httpd_msg_new("device-test");
        definition = json_object_new_object();
        if (!req || !definition)
                return -ENOMEM;
        json_object_object_foreach(body, key, value) {
                if (streq(key, "outlets")) {
                        outlets = value;
                        continue;
                }
                if (haven_json_add(definition, key, json_object_get(value)) < 0)
                        return -ENOMEM;
        }
        /* Outlets are names or numbers of 1 to 63 characters. */
        for (size_t i = 0; i < httpd_array_length(outlets); i++) {
                struct json_object *o = json_object_array_get_idx(outlets, i);

                if (!json_object_is_type(o, json_type_string) ||
                    json_object_get_string_len(o) < 1 ||
                    json_object_get_string_len(o) > 63) {
                        httpd_reply_code(r, HTTPD_ERROR_INVALID, "outlets",
                                         "\"outlets\" must be outlet numbers "
                                         "or names (strings of 1 to 63 "
                                         "characters)");
                        return 0;
                }
        }
        if (haven_json_add(req, "definition", TAKE_PTR(definition)) < 0 ||
            (outlets &&
             haven_json_add(req, "outlets", json_object_get(outlets)) < 0))
                return -ENOMEM;
        return fenced_call(r, TAKE_PTR(req), on_fenced_reply);
}

static struct json_object *request_with(const char *name, const char *key,
                                        const char *value) {
        struct json_object *req = httpd_msg_new(name);

        if (req &&
            haven_json_add(req, key, json_object_new_string(value)) < 0) {
                json_object_put(req);
                return NULL;
        }
        return req;
}

/* The name of the one row a query found, or NULL after answering. */
static const char *row_name(struct httpd_request *r, struct json_object *reply,
                            const struct httpd_error *error,
                            const char *table) {
        struct json_object *rows = httpd_reply_rows(reply);
        const char *name = NULL;

        if (error) {
                httpd_reply_error(r, error);
                return NULL;
        }
        if (httpd_array_length(rows) != 1 ||
            haven_json_get_string(json_object_array_get_idx(rows, 0), "name",
                                  &name) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_NOT_FOUND, "id",
                                 "%s has no row %" PRIi64, table,
                                 httpd_request_match(r)->id);
                return NULL;
        }
        return name;
}

static void on_device_row(struct httpd_request *r, struct json_object *reply,
                          const struct httpd_error *error) {
        const char *name = row_name(r, reply, error, "fence_devices");
        int ret;

        if (!name)
                return;
        /* The device as haven-fenced knows it, with its mapped outlets. */
        ret = fenced_call(r, request_with("device-test", "device", name),
                          on_fenced_reply);
        if (ret < 0)
                httpd_reply_failure(r, NULL, ret);
}

int httpd_fence_device_test_row(struct httpd_request *r) {
        return httpd_domain_call(
                r,
                httpd_query_new(
                        "fence_devices",
                        httpd_where_int("id", httpd_request_match(r)->id)),
                on_device_row);
}

static void on_node_row(struct httpd_request *r, struct json_object *reply,
                        const struct httpd_error *error) {
        const char *name = row_name(r, reply, error, "nodes");
        int ret;

        if (!name)
                return;
        ret = fenced_call(r, request_with("node-check", "node", name),
                          on_fenced_reply);
        if (ret < 0)
                httpd_reply_failure(r, NULL, ret);
}

int httpd_fence_check(struct httpd_request *r) {
        return httpd_domain_call(
                r,
                httpd_query_new(
                        "nodes",
                        httpd_where_int("id", httpd_request_match(r)->id)),
                on_node_row);
}

/* ==== Agents ==== */

int httpd_fence_agents(struct httpd_request *r) {
        return fenced_call(r, httpd_msg_new("agents"), on_fenced_reply);
}

int httpd_fence_agent(struct httpd_request *r) {
        return fenced_call(r,
                           request_with("agent-metadata", "agent",
                                        httpd_request_match(r)->name),
                           on_fenced_reply);
}

/* ==== The cluster's fencing status ==== */

bool httpd_fence_node_fenceable(struct json_object *entries, int64_t node_id,
                                const char *name, const char **ret_reason) {
        *ret_reason = "no other node runs haven-fenced";
        for (size_t i = 0; i < httpd_array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i),
                                   *value, *nodes, *n;
                const char *key = "";
                int64_t from = 0;
                bool ok = false;

                (void) haven_json_get_int64(e, "node", &from);
                (void) haven_json_get_string(e, "key", &key);
                /* A node never fences itself. */
                if (!streq(key, "fencing") || from == node_id ||
                    !json_object_object_get_ex(e, "value", &value) ||
                    !json_object_object_get_ex(value, "nodes", &nodes) ||
                    !json_object_object_get_ex(nodes, name, &n))
                        continue;
                (void) haven_json_get_bool(n, "ok", &ok);
                if (ok)
                        return true;
                (void) haven_json_get_string(n, "reason", ret_reason);
        }
        return false;
}

/* The name of the node with node_id among the node rows, or NULL. */
static const char *node_name(struct json_object *node_rows, int64_t node_id) {
        struct json_object *row =
                httpd_rows_find(node_rows, "node_id", node_id);
        const char *name = NULL;

        if (row)
                (void) haven_json_get_string(row, "name", &name);
        return name;
}

int httpd_fencing_build(struct json_object *entries,
                        struct json_object *node_rows,
                        struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object
                *o = json_object_new_object(),
                *devices = json_object_new_array(),
                *nodes = json_object_new_array();

        if (!o || !devices || !nodes)
                return -ENOMEM;
        for (size_t i = 0; i < httpd_array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i),
                                   *value, *devs;
                const char *key = "", *from;
                char fallback[32];
                int64_t node = 0;

                (void) haven_json_get_string(e, "key", &key);
                (void) haven_json_get_int64(e, "node", &node);
                if (!streq(key, "fencing") ||
                    !json_object_object_get_ex(e, "value", &value) ||
                    !json_object_object_get_ex(value, "devices", &devs) ||
                    !json_object_is_type(devs, json_type_object))
                        continue;
                from = node_name(node_rows, node);
                if (!from) {
                        snprintf(fallback, sizeof fallback, "node id %" PRIi64,
                                 node);
                        from = fallback;
                }
                json_object_object_foreach(devs, name, health) {
                        struct json_object *d = json_object_new_object();

                        if (!d ||
                            haven_json_add(d, "device",
                                           json_object_new_string(name)) < 0 ||
                            haven_json_add(d, "seen_from",
                                           json_object_new_string(from)) < 0 ||
                            haven_json_add(d, "seen_from_id",
                                           json_object_new_int64(node)) < 0 ||
                            haven_json_add(d, "health",
                                           json_object_get(health)) < 0 ||
                            json_object_array_add(devices, d) < 0) {
                                json_object_put(d);
                                return -ENOMEM;
                        }
                }
        }
        for (size_t k = 0; k < httpd_array_length(node_rows); k++) {
                struct json_object *n = json_object_array_get_idx(node_rows, k),
                                   *v;
                const char *name = "?", *reason = NULL;
                int64_t id = 0;
                bool ok;

                (void) haven_json_get_int64(n, "node_id", &id);
                (void) haven_json_get_string(n, "name", &name);
                ok = httpd_fence_node_fenceable(entries, id, name, &reason);
                v = json_object_new_object();
                if (!v ||
                    haven_json_add(v, "node", json_object_new_string(name)) <
                            0 ||
                    haven_json_add(v, "node_id", json_object_new_int64(id)) <
                            0 ||
                    haven_json_add(v, "fenceable",
                                   json_object_new_boolean(ok)) < 0 ||
                    haven_json_add(v, "reason",
                                   ok ? NULL : json_object_new_string(reason)) <
                            0 ||
                    json_object_array_add(nodes, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        if (haven_json_add(o, "devices", TAKE_PTR(devices)) < 0 ||
            haven_json_add(o, "nodes", TAKE_PTR(nodes)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static void on_fencing_nodes(struct httpd_request *r, struct json_object *reply,
                             const struct httpd_error *error) {
        struct json_object *entries = httpd_request_get_state(r);
        _cleanup_(json_object_putp) struct json_object *o = NULL;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (httpd_fencing_build(entries, httpd_reply_rows(reply), &o) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        httpd_reply_json(r, 200, TAKE_PTR(o));
}

static void json_put(void *p) {
        json_object_put(p);
}

static void on_fencing_entries(struct httpd_request *r,
                               struct json_object *reply,
                               const struct httpd_error *error) {
        struct json_object *entries;
        int ret;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (haven_json_get_array(reply, "entries", &entries) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind answered without entries");
                return;
        }
        httpd_request_set_state(r, json_object_get(entries), json_put);
        ret = httpd_domain_call(r, httpd_query_new("nodes", NULL),
                                on_fencing_nodes);
        if (ret < 0)
                httpd_reply_failure(r, NULL, ret);
}

int httpd_fencing_status(struct httpd_request *r) {
        return httpd_domain_call(
                r, request_with("status-read", "prefix", "fencing"),
                on_fencing_entries);
}
