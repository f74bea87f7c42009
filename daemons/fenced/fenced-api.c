/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-fenced's local socket (/run/haven/fenced.sock, framed JSON like
 * domaind's): live checks for the CLI and the API — test a device (by name,
 * or a definition not added yet), check a node's outlets, list the
 * installed fence agents and show an agent's parameters — and the daemon's
 * status. Every request is validated against its field policy first.
 * Must not: switch an outlet (fencing itself goes through the domain's
 * fence_requests, never through this socket).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"

#include "fenced-agent.h"
#include "fenced-apc.h"
#include "fenced.h"

#define API_OP_TIMEOUT_USEC (30ULL * 1000000ULL)
#define METADATA_TIMEOUT_USEC (10ULL * 1000000ULL)

/* One request waiting for its device actions. */
struct api_job {
        struct fenced *f;
        struct haven_msg_conn *conn; /* a reference */
        struct json_object *tag;
        struct fence_device device;
        char **outlets;
        struct fence_op **ops;
        struct json_object *parts; /* node-check: one entry per op */
        size_t n_ops, n_pending;
        struct fence_agent_metadata_load *load;
        char *node;
};

static void job_free(struct api_job *j) {
        if (!j)
                return;
        for (size_t i = 0; i < j->n_ops; i++)
                fence_op_free(j->ops[i]);
        free(j->ops);
        fence_agent_metadata_load_free(j->load);
        fence_device_done(&j->device);
        strv_free(j->outlets);
        json_object_put(j->parts);
        json_object_put(j->tag);
        haven_msg_conn_unref(j->conn);
        free(j->node);
        free(j);
}

/* A job answering on conn with tag (both referenced), or NULL. */
static struct api_job *job_new(struct fenced *f, struct haven_msg_conn *conn,
                               struct json_object *tag) {
        struct api_job *j = calloc(1, sizeof(*j));

        if (!j)
                return NULL;
        j->f = f;
        j->conn = haven_msg_conn_ref(conn);
        j->tag = json_object_get(tag);
        return j;
}

static int reply_send(struct haven_msg_conn *conn, struct json_object *tag,
                      struct json_object *reply) {
        if (tag && haven_json_add(reply, "tag", json_object_get(tag)) < 0)
                return -ENOMEM;
        return haven_msg_conn_send(conn, reply);
}

static int reply_error(struct haven_msg_conn *conn, struct json_object *tag,
                       const char *code, const char *field,
                       const char *message) {
        _cleanup_(json_object_putp) struct json_object *reply =
                json_object_new_object(), *error = json_object_new_object();

        if (!reply || !error ||
            haven_json_add(error, "code", json_object_new_string(code)) < 0 ||
            haven_json_add(error, "message", json_object_new_string(message)) < 0 ||
            haven_json_add(error, "field", haven_json_string_or_null(field)) < 0 ||
            haven_json_add(reply, "error", TAKE_PTR(error)) < 0)
                return -ENOMEM;
        return reply_send(conn, tag, reply);
}

static struct json_object *op_result_json(const struct fence_op_result *r) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();

        if (!o ||
            haven_json_add(o, "ok", json_object_new_boolean(r->ok)) < 0 ||
            haven_json_add(o, "message", json_object_new_string(r->message)) < 0 ||
            haven_json_add(o, "code", haven_json_string_or_null(r->code)) < 0 ||
            haven_json_add(o, "field", haven_json_string_or_null(r->field)) < 0 ||
            haven_json_add(o, "elapsed_ms",
                           json_object_new_double((double) r->elapsed_usec /
                                                  1000.0)) < 0 ||
            haven_json_add(o, "details", json_object_get(r->details)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* ==== device-test ==== */

static void test_op_done(struct fence_op *op, const struct fence_op_result *r,
                         void *userdata) {
        struct api_job *j = userdata;
        _cleanup_(json_object_putp) struct json_object *reply =
                op_result_json(r);

        if (!reply || reply_send(j->conn, j->tag, reply) < 0)
                log_debug("Failed to answer a device test.");
        job_free(j);
}

static void test_run(struct api_job *j) {
        struct fence_op *op = NULL;
        int r;

        r = fence_op_start(j->f, &j->device, "check", j->outlets,
                           API_OP_TIMEOUT_USEC, test_op_done, j, &op);
        if (r < 0) {
                (void) reply_error(j->conn, j->tag, "internal", NULL,
                                   strerror(-r));
                return job_free(j);
        }
        j->ops = calloc(1, sizeof(*j->ops));
        if (!j->ops) {
                fence_op_free(op);
                return job_free(j);
        }
        j->ops[0] = op;
        j->n_ops = 1;
}

static void test_metadata_done(int r, struct fence_agent_metadata *m,
                               void *userdata) {
        struct api_job *j = userdata;
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *meta = m;
        _cleanup_free_ char *field = NULL, *message = NULL;

        j->load = NULL; /* frees itself after done */
        if (r < 0) {
                (void) reply_error(j->conn, j->tag, "bad-parameter", "agent",
                                   r == -ENOENT ? "the fence agent is not "
                                                  "installed"
                                                : "the fence agent's metadata "
                                                  "could not be read");
                return job_free(j);
        }
        r = fence_agent_validate(meta, j->device.parameters, &field, &message);
        if (r < 0) {
                (void) reply_error(j->conn, j->tag, "bad-parameter", field,
                                   message ?: "invalid parameters");
                return job_free(j);
        }
        if (fence_agent_requires_address(meta) && !j->device.address) {
                (void) reply_error(j->conn, j->tag, "bad-parameter", "address",
                                   "this fence agent needs the device's "
                                   "address");
                return job_free(j);
        }
        test_run(j);
}

/* Checks the device's parameters without I/O for its type. Returns 0, or
 * -EINVAL after answering. */
static int test_validate_apc(struct api_job *j) {
        _cleanup_(json_object_putp) struct json_object *copy =
                json_object_new_object();
        _cleanup_free_ char *field = NULL, *message = NULL;
        int r;

        if (!copy)
                return -ENOMEM;
        json_object_object_foreach(j->device.parameters, key, value) {
                if (streq(key, "outlets")) {
                        if (!json_object_is_type(value, json_type_int) ||
                            json_object_get_int64(value) < 1 ||
                            json_object_get_int64(value) > APC_OUTLETS_MAX) {
                                (void) reply_error(j->conn, j->tag,
                                                   "bad-parameter", "outlets",
                                                   "\"outlets\" (the expected "
                                                   "outlet count) must be a "
                                                   "number from 1 to 256");
                                return -EINVAL;
                        }
                        continue;
                }
                r = haven_json_add(copy, key, json_object_get(value));
                if (r < 0)
                        return r;
        }
        r = apc_parameters_validate(copy, &field, &message);
        if (r == -EINVAL) {
                (void) reply_error(j->conn, j->tag, "bad-parameter", field,
                                   message ?: "invalid parameters");
                return -EINVAL;
        }
        return r;
}

static const struct haven_json_field device_test_policy[] = {
        {.name = "request", .kind = HAVEN_JSON_STRING, .required = true},
        {.name = "tag", .kind = HAVEN_JSON_ANY, .nullable = true},
        {.name = "device", .kind = HAVEN_JSON_STRING, .min = 1, .max = 63},
        {.name = "definition", .kind = HAVEN_JSON_OBJECT},
        {.name = "outlets", .kind = HAVEN_JSON_ARRAY, .min = 0, .max = 64},
};

static int handle_device_test(struct fenced *f, struct haven_msg_conn *conn,
                              struct json_object *msg,
                              struct json_object *tag) {
        struct api_job *j;
        struct json_object *v;
        int r;

        j = job_new(f, conn, tag);
        if (!j)
                return -ENOMEM;

        if (json_object_object_get_ex(msg, "device", &v)) {
                const struct fence_device *d =
                        fence_config_device_by_name(f->config,
                                                    json_object_get_string(v));

                if (!d) {
                        r = reply_error(conn, tag, "not-found", "device",
                                        "no such fence device");
                        job_free(j);
                        return r;
                }
                r = fence_device_copy(d, &j->device);
                if (r >= 0 && !json_object_object_get_ex(msg, "outlets", NULL)) {
                        /* Its mapped outlets. */
                        size_t n = 0;

                        j->outlets = calloc(f->config->n_outlets + 1,
                                            sizeof(char *));
                        for (size_t i = 0; j->outlets && i < f->config->n_outlets; i++)
                                if (f->config->outlets[i].device_id == d->id)
                                        j->outlets[n++] = strdup(
                                                f->config->outlets[i].outlet);
                }
        } else if (json_object_object_get_ex(msg, "definition", &v)) {
                _cleanup_free_ char *field = NULL, *message = NULL;

                r = fence_device_from_json(v, &j->device, &field, &message);
                if (r == -EINVAL) {
                        r = reply_error(conn, tag, "invalid", field, message);
                        job_free(j);
                        return r;
                }
        } else {
                r = reply_error(conn, tag, "invalid", "device",
                                "name a device, or give its definition");
                job_free(j);
                return r;
        }
        if (r < 0) {
                job_free(j);
                return r;
        }
        if (json_object_object_get_ex(msg, "outlets", &v)) {
                size_t n = json_object_array_length(v);

                j->outlets = calloc(n + 1, sizeof(char *));
                for (size_t i = 0; j->outlets && i < n; i++) {
                        struct json_object *o = json_object_array_get_idx(v, i);

                        if (!json_object_is_type(o, json_type_string) ||
                            json_object_get_string_len(o) < 1 ||
                            json_object_get_string_len(o) > 63) {
                                r = reply_error(conn, tag, "invalid", "outlets",
                                                "outlets must be numbers or "
                                                "names of 1 to 63 characters");
                                job_free(j);
                                return r;
                        }
                        j->outlets[i] = strdup(json_object_get_string(o));
                }
        }
        if (!j->outlets)
                j->outlets = calloc(1, sizeof(char *)); /* none: device only */
        if (!j->outlets) {
                job_free(j);
                return -ENOMEM;
        }

        if (streq(j->device.type, "apc-snmp")) {
                r = test_validate_apc(j);
                if (r < 0) {
                        job_free(j);
                        return r == -EINVAL ? 0 : r;
                }
        } else if (streq(j->device.type, "fence-agent")) {
                struct json_object *agent;

                if (!json_object_object_get_ex(j->device.parameters, "agent",
                                               &agent) ||
                    !json_object_is_type(agent, json_type_string)) {
                        r = reply_error(conn, tag, "bad-parameter", "agent",
                                        "\"agent\" must name an installed "
                                        "fence agent (fence_...)");
                        job_free(j);
                        return r;
                }
                r = fence_agent_metadata_load_async(
                        f->event, json_object_get_string(agent),
                        METADATA_TIMEOUT_USEC, test_metadata_done, j, NULL);
                if (r < 0) {
                        r = reply_error(conn, tag, "bad-parameter", "agent",
                                        r == -EINVAL ? "\"agent\" is not a "
                                                       "fence agent name"
                                                     : "the fence agent is "
                                                       "not installed");
                        job_free(j);
                        return r;
                }
                return 0;
        }
        test_run(j);
        return 0;
}

/* ==== node-check ==== */

static void node_check_done(struct fence_op *op,
                            const struct fence_op_result *r, void *userdata) {
        struct api_job *j = userdata;
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        bool all_ok = true, level_ok[FENCED_LEVELS_MAX + 1] = {};

        for (size_t i = 0; i < j->n_ops; i++)
                if (j->ops[i] == op) {
                        struct json_object *part =
                                json_object_array_get_idx(j->parts, i);

                        (void) haven_json_add(part, "result",
                                              op_result_json(r));
                }
        if (--j->n_pending > 0)
                return;

        /* The node can be fenced when one level has every part ok. */
        for (unsigned l = 0; l <= FENCED_LEVELS_MAX; l++)
                level_ok[l] = true;
        for (size_t i = 0; i < json_object_array_length(j->parts); i++) {
                struct json_object *part = json_object_array_get_idx(j->parts, i);
                struct json_object *res, *ok, *level;

                if (!json_object_object_get_ex(part, "result", &res) ||
                    !json_object_object_get_ex(res, "ok", &ok) ||
                    !json_object_get_boolean(ok)) {
                        json_object_object_get_ex(part, "level", &level);
                        level_ok[MIN((size_t) json_object_get_int(level),
                                     (size_t) FENCED_LEVELS_MAX)] = false;
                }
        }
        all_ok = false;
        for (size_t i = 0; i < json_object_array_length(j->parts); i++) {
                struct json_object *level;

                json_object_object_get_ex(json_object_array_get_idx(j->parts, i),
                                          "level", &level);
                all_ok = all_ok || level_ok[MIN((size_t) json_object_get_int(level),
                                                (size_t) FENCED_LEVELS_MAX)];
        }

        reply = json_object_new_object();
        if (reply &&
            haven_json_add(reply, "node", json_object_new_string(j->node)) >= 0 &&
            haven_json_add(reply, "ok", json_object_new_boolean(all_ok)) >= 0 &&
            haven_json_add(reply, "parts", json_object_get(j->parts)) >= 0)
                (void) reply_send(j->conn, j->tag, reply);
        job_free(j);
}

static const struct haven_json_field node_check_policy[] = {
        {.name = "request", .kind = HAVEN_JSON_STRING, .required = true},
        {.name = "tag", .kind = HAVEN_JSON_ANY, .nullable = true},
        {.name = "node", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 63},
};

static int handle_node_check(struct fenced *f, struct haven_msg_conn *conn,
                             struct json_object *msg,
                             struct json_object *tag) {
        const struct fence_config *c = f->config;
        const struct fence_node *node;
        struct api_job *j;
        const char *name;
        int r;

        (void) haven_json_get_string(msg, "node", &name);
        node = fence_config_node_find(c, name);
        if (!node)
                return reply_error(conn, tag, "not-found", "node",
                                   "no such node");

        j = job_new(f, conn, tag);
        if (!j)
                return -ENOMEM;
        j->node = strdup(node->name);
        j->parts = json_object_new_array();
        j->ops = calloc(MAX(c->n_outlets, 1u), sizeof(*j->ops));
        if (!j->node || !j->parts || !j->ops) {
                job_free(j);
                return -ENOMEM;
        }

        /* One status action per (level, device) with its outlets. */
        for (unsigned level = 1; level <= FENCED_LEVELS_MAX; level++)
                for (size_t d = 0; d < c->n_devices; d++) {
                        const struct fence_device *dev = &c->devices[d];
                        _cleanup_strv_free_ char **outlets =
                                calloc(c->n_outlets + 1, sizeof(char *));
                        _cleanup_(json_object_putp) struct json_object *part =
                                json_object_new_object(), *list =
                                json_object_new_array();
                        size_t n = 0;

                        if (!outlets || !part || !list) {
                                job_free(j);
                                return -ENOMEM;
                        }
                        for (size_t i = 0; i < c->n_outlets; i++) {
                                const struct fence_outlet *o = &c->outlets[i];

                                if (o->node_id != node->node_id ||
                                    o->level != level || o->device_id != dev->id)
                                        continue;
                                outlets[n++] = strdup(o->outlet);
                                (void) json_object_array_add(
                                        list, json_object_new_string(o->outlet));
                        }
                        if (n == 0)
                                continue;
                        if (haven_json_add(part, "level", json_object_new_int(level)) < 0 ||
                            haven_json_add(part, "device", json_object_new_string(dev->name)) < 0 ||
                            haven_json_add(part, "outlets", TAKE_PTR(list)) < 0 ||
                            json_object_array_add(j->parts, TAKE_PTR(part)) < 0) {
                                job_free(j);
                                return -ENOMEM;
                        }
                        r = fence_op_start(f, dev, "status", outlets,
                                           API_OP_TIMEOUT_USEC,
                                           node_check_done, j,
                                           &j->ops[j->n_ops]);
                        if (r < 0) {
                                job_free(j);
                                return r;
                        }
                        j->n_ops++;
                        j->n_pending++;
                }
        if (j->n_ops == 0) {
                r = reply_error(conn, tag, "not-found", "node",
                                "this node has no fence device: map an outlet "
                                "to it (fence_outlets)");
                job_free(j);
                return r;
        }
        return 0;
}

/* ==== agents, agent-metadata, status ==== */

static const struct haven_json_field agents_policy[] = {
        {.name = "request", .kind = HAVEN_JSON_STRING, .required = true},
        {.name = "tag", .kind = HAVEN_JSON_ANY, .nullable = true},
};

static int handle_agents(struct fenced *f, struct haven_msg_conn *conn,
                         struct json_object *msg, struct json_object *tag) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_(json_object_putp) struct json_object *reply =
                json_object_new_object(), *list = json_object_new_array();
        int r;

        r = fence_agent_list(&names);
        if (r < 0)
                return reply_error(conn, tag, "internal", NULL,
                                   "the fence agents could not be listed");
        if (!reply || !list)
                return -ENOMEM;
        for (size_t i = 0; names[i]; i++)
                if (json_object_array_add(list, json_object_new_string(names[i])) < 0)
                        return -ENOMEM;
        if (haven_json_add(reply, "agents", TAKE_PTR(list)) < 0)
                return -ENOMEM;
        return reply_send(conn, tag, reply);
}

static void metadata_done(int r, struct fence_agent_metadata *m,
                          void *userdata) {
        struct api_job *j = userdata;
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *meta = m;
        _cleanup_(json_object_putp) struct json_object *reply = NULL;

        if (r < 0)
                (void) reply_error(j->conn, j->tag,
                                   r == -ENOENT ? "not-found" : "internal",
                                   "agent",
                                   r == -ENOENT ? "the fence agent is not "
                                                  "installed"
                                                : "the fence agent's metadata "
                                                  "could not be read");
        else {
                reply = json_object_new_object();
                if (reply &&
                    haven_json_add(reply, "metadata",
                                   fence_agent_metadata_to_json(meta)) >= 0)
                        (void) reply_send(j->conn, j->tag, reply);
        }
        job_free(j);
}

static const struct haven_json_field agent_metadata_policy[] = {
        {.name = "request", .kind = HAVEN_JSON_STRING, .required = true},
        {.name = "tag", .kind = HAVEN_JSON_ANY, .nullable = true},
        {.name = "agent", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = FENCE_AGENT_NAME_MAX},
};

static int handle_agent_metadata(struct fenced *f, struct haven_msg_conn *conn,
                                 struct json_object *msg,
                                 struct json_object *tag) {
        struct api_job *j;
        const char *agent;
        int r;

        (void) haven_json_get_string(msg, "agent", &agent);
        if (!fence_agent_name_is_valid(agent))
                return reply_error(conn, tag, "invalid", "agent",
                                   "not a fence agent name (fence_...)");
        j = job_new(f, conn, tag);
        if (!j)
                return -ENOMEM;
        r = fence_agent_metadata_load_async(f->event, agent,
                                            METADATA_TIMEOUT_USEC,
                                            metadata_done, j, NULL);
        if (r < 0) {
                r = reply_error(conn, tag, r == -ENOENT ? "not-found" : "internal",
                                "agent",
                                r == -ENOENT ? "the fence agent is not installed"
                                             : "the fence agent could not run");
                job_free(j);
                return r;
        }
        return 0;
}

static const struct haven_json_field status_policy[] = {
        {.name = "request", .kind = HAVEN_JSON_STRING, .required = true},
        {.name = "tag", .kind = HAVEN_JSON_ANY, .nullable = true},
};

static int handle_status(struct fenced *f, struct haven_msg_conn *conn,
                         struct json_object *msg, struct json_object *tag) {
        _cleanup_(json_object_putp) struct json_object *reply =
                json_object_new_object(), *nodes = json_object_new_object();

        if (!reply || !nodes)
                return -ENOMEM;
        for (size_t i = 0; f->config && i < f->config->n_nodes; i++) {
                const struct fence_node *n = &f->config->nodes[i];
                _cleanup_free_ char *reason = NULL;
                _cleanup_(json_object_putp) struct json_object *e =
                        json_object_new_object();
                bool ok = fenced_monitor_node_ok(f, n->node_id, &reason);

                if (!e ||
                    haven_json_add(e, "ok", json_object_new_boolean(ok)) < 0 ||
                    haven_json_add(e, "reason", haven_json_string_or_null(reason)) < 0 ||
                    haven_json_add(nodes, n->name, TAKE_PTR(e)) < 0)
                        return -ENOMEM;
        }
        if (haven_json_add(reply, "node_id", json_object_new_int64(f->node_id)) < 0 ||
            haven_json_add(reply, "node_name",
                           haven_json_string_or_null(f->node_name)) < 0 ||
            haven_json_add(reply, "devices",
                           f->device_health ? json_object_get(f->device_health)
                                            : json_object_new_object()) < 0 ||
            haven_json_add(reply, "nodes", TAKE_PTR(nodes)) < 0)
                return -ENOMEM;
        return reply_send(conn, tag, reply);
}

/* ==== Dispatch ==== */

#define REQUEST(n, h) {n, handle_##h, h##_policy, ELEMENTSOF(h##_policy)}

static const struct {
        const char *name;
        int (*handler)(struct fenced *f, struct haven_msg_conn *conn,
                       struct json_object *msg, struct json_object *tag);
        const struct haven_json_field *policy;
        size_t n_policy;
} requests[] = {
        REQUEST("device-test", device_test),
        REQUEST("node-check", node_check),
        REQUEST("agents", agents),
        REQUEST("agent-metadata", agent_metadata),
        REQUEST("status", status),
};

static int api_handler(struct haven_msg_conn *conn, struct json_object *msg,
                       void *userdata) {
        struct fenced *f = userdata;
        struct json_object *tag = NULL;
        struct haven_json_error error;
        const char *name = NULL;
        char text[200];

        (void) json_object_object_get_ex(msg, "tag", &tag);
        if (haven_json_get_string(msg, "request", &name) < 0)
                return reply_error(conn, tag, "invalid", "request",
                                   "\"request\" must name a request");
        for (size_t i = 0; i < ELEMENTSOF(requests); i++) {
                if (!streq(requests[i].name, name))
                        continue;
                if (haven_json_check(msg, requests[i].policy,
                                     requests[i].n_policy, &error) < 0) {
                        if (error.field)
                                snprintf(text, sizeof(text), "\"%s\": %s",
                                         error.field, error.message);
                        else
                                snprintf(text, sizeof(text), "%s", error.message);
                        return reply_error(conn, tag, "invalid", error.field,
                                           text);
                }
                if (!f->config && !streq(name, "agents") &&
                    !streq(name, "agent-metadata") && !streq(name, "status") &&
                    !streq(name, "device-test"))
                        return reply_error(conn, tag, "unavailable", NULL,
                                           "the fencing configuration is not "
                                           "loaded yet (is this node in a "
                                           "cluster?)");
                return requests[i].handler(f, conn, msg, tag);
        }
        snprintf(text, sizeof(text), "unknown request \"%.64s\"", name);
        return reply_error(conn, tag, "invalid", "request", text);
}

int fenced_api_start(struct fenced *f) {
        struct haven_msg_server_config config = {
                .path = f->socket_path,
                .mode = 0600,
                .handler = api_handler,
                .userdata = f,
        };

        return haven_msg_server_new(f->event, &config, &f->server);
}
