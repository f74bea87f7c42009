/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * havenctl fence: fencing from the command line. Requests and their
 * outcomes go through the domain (fence_requests: `fence node`, `fence
 * confirm`, `fence requests`); the status of devices and nodes comes from
 * the status map ("fencing" entries of every node's haven-fenced); live
 * checks (`fence test`, `fence check`) and the agents' parameters come from
 * the local haven-fenced's socket. Must not: switch an outlet itself.
 */
#include <inttypes.h>
#include <time.h>

#include "ctl.h"
#include "haven/json.h"
#include "haven/loop.h"

#define FENCE_WAIT_USEC (600ULL * 1000ULL * 1000ULL)
#define FENCE_RECHECK_USEC (2ULL * 1000ULL * 1000ULL)
#define FENCED_CALL_USEC (90ULL * 1000ULL * 1000ULL)

/* ==== haven-fenced's socket ==== */

static const char *fenced_socket(struct ctl *c) {
        const char *e = getenv(CTL_FENCED_SOCKET_ENV);

        if (c->fenced_socket)
                return c->fenced_socket;
        return e && *e ? e : CTL_FENCED_SOCKET_DEFAULT;
}

/* Calls the local haven-fenced. Returns CTL_EXIT_OK and *ret, or prints
 * the error and returns CTL_EXIT_FAILED / CTL_EXIT_USAGE (not reachable). */
static int fenced_call(struct ctl *c, struct json_object *req,
                       struct json_object **ret) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *client = NULL;
        _cleanup_(json_object_putp) struct json_object *owned = req, *reply = NULL;
        struct json_object *error;
        int r;

        if (!owned)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        r = haven_msg_client_connect(fenced_socket(c), 0, &client);
        if (r < 0)
                return ctl_fail(CTL_EXIT_USAGE,
                                "haven-fenced is not running on this node (%s: %s)",
                                fenced_socket(c), strerror(-r));
        r = haven_msg_client_call(client, owned, FENCED_CALL_USEC, &reply);
        if (r < 0)
                return ctl_fail(CTL_EXIT_FAILED, "haven-fenced did not answer: %s",
                                strerror(-r));
        if (json_object_object_get_ex(reply, "error", &error)) {
                _cleanup_free_ char *text = ctl_format_error(error);

                return ctl_fail(CTL_EXIT_FAILED, "%s", text ? text : "failed");
        }
        *ret = TAKE_PTR(reply);
        return CTL_EXIT_OK;
}

static struct json_object *request_with(const char *name, const char *key,
                                        const char *value) {
        struct json_object *req = ctl_request_simple(name);

        if (req && key &&
            haven_json_add(req, key, json_object_new_string(value)) < 0) {
                json_object_put(req);
                return NULL;
        }
        return req;
}

/* Prints a device action's result: "ok" or the error, and the outlets. */
static void print_op_result(const char *what, struct json_object *result) {
        struct json_object *v, *details, *outlets;
        const char *message = "";
        double ms = 0;
        bool ok;

        ok = json_object_object_get_ex(result, "ok", &v) && json_object_get_boolean(v);
        (void) haven_json_get_string(result, "message", &message);
        if (json_object_object_get_ex(result, "elapsed_ms", &v))
                ms = json_object_get_double(v);
        printf("%s: %s (%.0f ms)%s%s\n", what, ok ? "ok" : "FAILED", ms,
               ok ? "" : ": ", ok ? "" : message);
        if (!json_object_object_get_ex(result, "details", &details))
                return;
        if (json_object_object_get_ex(details, "model", &v) &&
            json_object_is_type(v, json_type_string))
                printf("  model: %s, %d outlets\n", json_object_get_string(v),
                       json_object_object_get_ex(details, "outlet_count", &v)
                               ? json_object_get_int(v)
                               : 0);
        if (json_object_object_get_ex(details, "outlets", &outlets) &&
            json_object_is_type(outlets, json_type_array))
                for (size_t i = 0; i < json_object_array_length(outlets); i++) {
                        struct json_object *o = json_object_array_get_idx(outlets, i);
                        const char *outlet = "?", *name = NULL, *state = "unknown";

                        (void) haven_json_get_string(o, "outlet", &outlet);
                        (void) haven_json_get_string(o, "name", &name);
                        (void) haven_json_get_string(o, "state", &state);
                        printf("  outlet %s%s%s%s: %s\n", outlet, name ? " (" : "",
                               name ? name : "", name ? ")" : "", state);
                }
}

/* ==== fence test / check / agents / agent ==== */

int ctl_fence_test(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL, *outlets = NULL;
        struct json_object *req, *v;
        int status;

        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl fence test DEVICE [--outlet O]...");
        req = request_with("device-test", "device", argv[0]);
        if (req && c->n_outlets > 0) {
                outlets = json_object_new_array();
                for (size_t i = 0; outlets && i < c->n_outlets; i++)
                        (void) json_object_array_add(outlets,
                                                     json_object_new_string(c->outlets[i]));
                (void) haven_json_add(req, "outlets", TAKE_PTR(outlets));
        }
        status = fenced_call(c, req, &reply);
        if (status != CTL_EXIT_OK)
                return status;
        if (c->json)
                ctl_print_json(stdout, reply);
        else
                print_op_result(argv[0], reply);
        return json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v)
                       ? CTL_EXIT_OK
                       : CTL_EXIT_FAILED;
}

int ctl_fence_check(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *parts, *v;
        int status;

        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl fence check NODE");
        status = fenced_call(c, request_with("node-check", "node", argv[0]), &reply);
        if (status != CTL_EXIT_OK)
                return status;
        if (c->json)
                ctl_print_json(stdout, reply);
        else if (json_object_object_get_ex(reply, "parts", &parts) &&
                 json_object_is_type(parts, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(parts); i++) {
                        struct json_object *p = json_object_array_get_idx(parts, i), *res;
                        const char *device = "?";
                        char what[128];
                        int64_t level = 0;

                        (void) haven_json_get_string(p, "device", &device);
                        (void) haven_json_get_int64(p, "level", &level);
                        snprintf(what, sizeof what, "level %" PRId64 ", device %s", level,
                                 device);
                        if (json_object_object_get_ex(p, "result", &res))
                                print_op_result(what, res);
                }
                printf("%s %s be fenced.\n", argv[0],
                       json_object_object_get_ex(reply, "ok", &v) &&
                                       json_object_get_boolean(v)
                               ? "can"
                               : "CANNOT");
        }
        return json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v)
                       ? CTL_EXIT_OK
                       : CTL_EXIT_FAILED;
}

int ctl_fence_agents(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *agents;
        int status;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl fence agents");
        status = fenced_call(c, ctl_request_simple("agents"), &reply);
        if (status != CTL_EXIT_OK)
                return status;
        if (!json_object_object_get_ex(reply, "agents", &agents))
                return ctl_fail(CTL_EXIT_FAILED, "haven-fenced sent no agent list");
        if (c->json)
                ctl_print_json(stdout, agents);
        else
                for (size_t i = 0; i < json_object_array_length(agents); i++)
                        printf("%s\n", json_object_get_string(
                                               json_object_array_get_idx(agents, i)));
        return CTL_EXIT_OK;
}

int ctl_fence_agent(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *meta, *params;
        const char *text = "";
        int status;

        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl fence agent AGENT");
        status = fenced_call(c, request_with("agent-metadata", "agent", argv[0]), &reply);
        if (status != CTL_EXIT_OK)
                return status;
        if (!json_object_object_get_ex(reply, "metadata", &meta))
                return ctl_fail(CTL_EXIT_FAILED, "haven-fenced sent no metadata");
        if (c->json) {
                ctl_print_json(stdout, meta);
                return CTL_EXIT_OK;
        }
        (void) haven_json_get_string(meta, "shortdesc", &text);
        printf("%s: %s\nParameters (set them in the device's parameters):\n", argv[0], text);
        if (json_object_object_get_ex(meta, "parameters", &params))
                for (size_t i = 0; i < json_object_array_length(params); i++) {
                        struct json_object *p = json_object_array_get_idx(params, i), *v;
                        const char *name = "?", *type = "string", *desc = "";
                        bool required = false, managed = false;

                        (void) haven_json_get_string(p, "name", &name);
                        (void) haven_json_get_string(p, "type", &type);
                        (void) haven_json_get_string(p, "description", &desc);
                        (void) haven_json_get_bool(p, "required", &required);
                        (void) haven_json_get_bool(p, "managed", &managed);
                        if (managed)
                                continue;
                        printf("  %-24s %-8s %s%s", name, type, required ? "(required) " : "",
                               desc);
                        if (json_object_object_get_ex(p, "default", &v) &&
                            json_object_is_type(v, json_type_string))
                                printf(" [default %s]", json_object_get_string(v));
                        putchar('\n');
                }
        return CTL_EXIT_OK;
}

/* ==== fence status ==== */

bool ctl_fence_node_fenceable(struct json_object *entries, int64_t node_id, const char *name,
                           const char **ret_reason) {
        *ret_reason = "no node runs haven-fenced";
        for (size_t i = 0; i < json_object_array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i), *value, *nodes, *n;
                int64_t from = 0;
                bool ok = false;

                (void) haven_json_get_int64(e, "node", &from);
                if (from == node_id || !json_object_object_get_ex(e, "value", &value) ||
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

int ctl_fence_status(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL, *nodes = NULL,
                                                        *out = NULL, *devices = NULL,
                                                        *verdicts = NULL;
        _cleanup_(ctl_grid_freep) struct ctl_grid *dg = NULL, *ng = NULL;
        static const char *const dtitles[] = {"DEVICE", "SEEN FROM", "STATE", "MESSAGE"};
        static const char *const ntitles[] = {"NODE", "FENCEABLE", "WHY NOT"};
        struct json_object *entries, *req;
        int status;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl fence status [--json]");
        req = ctl_request_simple("status-read");
        if (!req || haven_json_add(req, "prefix", json_object_new_string("fencing")) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        status = ctl_call(c, req, 0, &reply, NULL);
        json_object_put(req);
        if (status != CTL_EXIT_OK)
                return status;
        status = ctl_query(c, "nodes", NULL, &nodes);
        if (status != CTL_EXIT_OK)
                return status;
        if (!json_object_object_get_ex(reply, "entries", &entries) ||
            !json_object_is_type(entries, json_type_array))
                return ctl_fail(CTL_EXIT_FAILED, "haven-domaind sent no entries");

        dg = ctl_grid_new(4, dtitles);
        ng = ctl_grid_new(3, ntitles);
        devices = json_object_new_array();
        verdicts = json_object_new_array();
        out = json_object_new_object();
        if (!dg || !ng || !devices || !verdicts || !out)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");

        for (size_t i = 0; i < json_object_array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i), *value, *devs;
                char from[32];
                int64_t node = 0;

                (void) haven_json_get_int64(e, "node", &node);
                snprintf(from, sizeof from, "node id %" PRId64, node);
                for (size_t k = 0; k < json_object_array_length(nodes); k++) {
                        struct json_object *n = json_object_array_get_idx(nodes, k);
                        int64_t id = 0;
                        const char *name = NULL;

                        (void) haven_json_get_int64(n, "node_id", &id);
                        if (id == node && haven_json_get_string(n, "name", &name) >= 0)
                                snprintf(from, sizeof from, "%s", name);
                }
                if (!json_object_object_get_ex(e, "value", &value) ||
                    !json_object_object_get_ex(value, "devices", &devs))
                        continue;
                json_object_object_foreach(devs, name, h) {
                        _cleanup_(json_object_putp) struct json_object *d = json_object_get(h);
                        const char *message = "";
                        bool ok = false;

                        (void) haven_json_get_bool(h, "ok", &ok);
                        (void) haven_json_get_string(h, "message", &message);
                        (void) ctl_grid_add(dg, (const char *const[]){name, from,
                                                                      ok ? "ok" : "FAILING",
                                                                      message});
                        d = json_object_new_object();
                        if (d && haven_json_add(d, "device", json_object_new_string(name)) >= 0 &&
                            haven_json_add(d, "seen_from", json_object_new_string(from)) >= 0 &&
                            haven_json_add(d, "health", json_object_get(h)) >= 0)
                                (void) json_object_array_add(devices, TAKE_PTR(d));
                }
        }
        for (size_t k = 0; k < json_object_array_length(nodes); k++) {
                struct json_object *n = json_object_array_get_idx(nodes, k), *v;
                const char *name = "?", *reason = NULL;
                int64_t id = 0;
                bool ok;

                (void) haven_json_get_int64(n, "node_id", &id);
                (void) haven_json_get_string(n, "name", &name);
                ok = ctl_fence_node_fenceable(entries, id, name, &reason);
                (void) ctl_grid_add(ng, (const char *const[]){name, ok ? "yes" : "NO",
                                                              ok ? "" : reason});
                v = json_object_new_object();
                if (v && (haven_json_add(v, "node", json_object_new_string(name)) < 0 ||
                          haven_json_add(v, "fenceable", json_object_new_boolean(ok)) < 0 ||
                          haven_json_add(v, "reason", ok ? NULL
                                                         : json_object_new_string(reason)) < 0 ||
                          json_object_array_add(verdicts, v) < 0))
                        json_object_put(v);
        }
        if (c->json) {
                if (haven_json_add(out, "devices", TAKE_PTR(devices)) < 0 ||
                    haven_json_add(out, "nodes", TAKE_PTR(verdicts)) < 0)
                        return ctl_fail(CTL_EXIT_FAILED, "out of memory");
                ctl_print_json(stdout, out);
                return CTL_EXIT_OK;
        }
        if (ctl_grid_rows(dg) > 0)
                ctl_grid_print(dg, stdout);
        else
                printf("No fence device is checked yet.\n");
        putchar('\n');
        ctl_grid_print(ng, stdout);
        return CTL_EXIT_OK;
}

/* ==== fence node / confirm / requests ==== */

/* The node's node_id from its name or number. */
static int find_node(struct ctl *c, const char *arg, int64_t *ret_id, char *ret_name,
                     size_t size) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL;
        int status;

        status = ctl_query(c, "nodes", NULL, &rows);
        if (status != CTL_EXIT_OK)
                return status;
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                struct json_object *n = json_object_array_get_idx(rows, i);
                const char *name = "";
                int64_t id = 0;
                char number[24];

                (void) haven_json_get_string(n, "name", &name);
                (void) haven_json_get_int64(n, "node_id", &id);
                snprintf(number, sizeof number, "%" PRId64, id);
                if (streq(name, arg) || streq(number, arg)) {
                        *ret_id = id;
                        snprintf(ret_name, size, "%s", name);
                        return CTL_EXIT_OK;
                }
        }
        return ctl_fail(CTL_EXIT_FAILED, "no node \"%s\" in the cluster", arg);
}

/* The open (pending or running) request for node_id, if any: *ret_row. */
static int open_request(struct ctl *c, int64_t node_id, struct json_object **ret_row) {
        static const char *const states[] = {"pending", "running"};

        *ret_row = NULL;
        for (size_t s = 0; s < ELEMENTSOF(states); s++) {
                _cleanup_(json_object_putp) struct json_object *rows = NULL;
                struct json_object *where = json_object_new_object();
                int status;

                if (!where || haven_json_add(where, "node_id", json_object_new_int64(node_id)) < 0 ||
                    haven_json_add(where, "state", json_object_new_string(states[s])) < 0) {
                        json_object_put(where);
                        return ctl_fail(CTL_EXIT_FAILED, "out of memory");
                }
                status = ctl_query(c, "fence_requests", where, &rows);
                if (status != CTL_EXIT_OK)
                        return status;
                if (json_object_array_length(rows) > 0) {
                        *ret_row = json_object_get(json_object_array_get_idx(rows, 0));
                        return CTL_EXIT_OK;
                }
        }
        return CTL_EXIT_OK;
}

static int request_row(struct ctl *c, int64_t id, struct json_object **ret_row) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL;
        struct json_object *where = json_object_new_object();
        int status;

        if (!where || haven_json_add(where, "id", json_object_new_int64(id)) < 0) {
                json_object_put(where);
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        }
        status = ctl_query(c, "fence_requests", where, &rows);
        if (status != CTL_EXIT_OK)
                return status;
        if (json_object_array_length(rows) == 0)
                return ctl_fail(CTL_EXIT_FAILED, "fence request %" PRId64 " vanished", id);
        *ret_row = json_object_get(json_object_array_get_idx(rows, 0));
        return CTL_EXIT_OK;
}

/* Waits until request id is done or failed, printing its progress. */
static int follow_request(struct ctl *c, int64_t id) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *sub = NULL;
        _cleanup_free_ char *last_result = NULL;
        uint64_t deadline = haven_deadline_usec(FENCE_WAIT_USEC);
        int status;

        /* Subscribe first: every change after this is announced. */
        status = ctl_subscribe(c, (const char *const[]){"commit", NULL}, &sub);
        if (status != CTL_EXIT_OK)
                return status;
        for (;;) {
                _cleanup_(json_object_putp) struct json_object *row = NULL;
                const char *state = "pending", *result = "";

                status = request_row(c, id, &row);
                if (status != CTL_EXIT_OK)
                        return status;
                (void) haven_json_get_string(row, "state", &state);
                (void) haven_json_get_string(row, "result", &result);
                if (!c->json && *result && (!last_result || !streq(last_result, result))) {
                        printf("%s: %s\n", state, result);
                        fflush(stdout);
                        free(last_result);
                        last_result = strdup(result);
                }
                if (streq(state, "done") || streq(state, "failed")) {
                        if (c->json)
                                ctl_print_json(stdout, row);
                        return streq(state, "done") ? CTL_EXIT_OK : CTL_EXIT_FAILED;
                }
                if (haven_now_usec(CLOCK_MONOTONIC) > deadline)
                        return ctl_fail(CTL_EXIT_FAILED,
                                        "fence request %" PRId64 " is still %s; stopped waiting",
                                        id, state);
                status = ctl_wait_events(sub, FENCE_RECHECK_USEC);
                if (status != CTL_EXIT_OK)
                        return status;
        }
}

int ctl_fence_node(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL, *row = NULL;
        struct json_object *values, *ops;
        const char *action = c->action ? c->action : "off", *code = NULL;
        char name[64], summary[256];
        int64_t node_id, id = 0;
        int status;

        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE,
                                "usage: havenctl fence node NODE [--action off|reboot|on] "
                                "[--reason TEXT]");
        if (!streq(action, "off") && !streq(action, "reboot") && !streq(action, "on"))
                return ctl_fail(CTL_EXIT_USAGE, "--action is off, reboot or on");
        status = find_node(c, argv[0], &node_id, name, sizeof name);
        if (status != CTL_EXIT_OK)
                return status;

        values = json_object_new_object();
        ops = json_object_new_array();
        if (!values || !ops ||
            haven_json_add(values, "node_id", json_object_new_int64(node_id)) < 0 ||
            haven_json_add(values, "action", json_object_new_string(action)) < 0 ||
            haven_json_add(values, "reason",
                           json_object_new_string(c->reason ? c->reason
                                                            : "asked by an administrator")) < 0 ||
            json_object_array_add(ops, ctl_op_insert("fence_requests", values)) < 0) {
                json_object_put(ops);
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        }
        snprintf(summary, sizeof summary, "fence %s (%s)", name, action);
        status = ctl_submit(c, ops, false, summary, &reply, &code);
        if (status == CTL_EXIT_OK) {
                (void) ctl_reply_first_id(reply, &id);
                if (!c->json)
                        printf("Fence request %" PRId64 " for %s (%s).\n", id, name, action);
        } else if (code && streq(code, "invalid")) {
                /* One open request per node: follow the one there is. */
                status = open_request(c, node_id, &row);
                if (status != CTL_EXIT_OK || !row)
                        return CTL_EXIT_FAILED;
                (void) haven_json_get_int64(row, "id", &id);
                fprintf(stderr, "havenctl: following the open fence request %" PRId64
                                " for %s\n",
                        id, name);
        } else
                return status;
        return follow_request(c, id);
}

int ctl_fence_confirm(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *row = NULL, *reply = NULL;
        struct json_object *values, *ops;
        char name[64], text[512], when[64];
        int64_t node_id, id = 0, version = 0;
        int status;

        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl fence confirm NODE");
        status = find_node(c, argv[0], &node_id, name, sizeof name);
        if (status != CTL_EXIT_OK)
                return status;
        status = open_request(c, node_id, &row);
        if (status != CTL_EXIT_OK)
                return status;
        if (!row)
                return ctl_fail(CTL_EXIT_FAILED, "there is no open fence request for %s", name);
        (void) haven_json_get_int64(row, "id", &id);
        (void) haven_json_get_int64(row, "version", &version);

        ctl_format_time((int64_t) haven_now_usec(CLOCK_REALTIME), when, sizeof when);
        snprintf(text, sizeof text, "%s confirmed off at %s by %s (manual fencing)", name, when,
                 c->actor);
        values = json_object_new_object();
        ops = json_object_new_array();
        if (!values || !ops ||
            haven_json_add(values, "state", json_object_new_string("done")) < 0 ||
            haven_json_add(values, "result", json_object_new_string(text)) < 0 ||
            haven_json_add(values, "finished_at",
                           json_object_new_int64((int64_t) haven_now_usec(CLOCK_REALTIME))) < 0 ||
            json_object_array_add(ops, ctl_op_update("fence_requests", id, version, values)) < 0) {
                json_object_put(ops);
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        }
        status = ctl_submit(c, ops, false, text, &reply, NULL);
        if (status == CTL_EXIT_OK && !c->json)
                printf("%s\n", text);
        return status;
}

int ctl_fence_requests(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL, *last = NULL;
        size_t n, from;
        int status;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl fence requests [--limit N] [--json]");
        status = ctl_query(c, "fence_requests", NULL, &rows);
        if (status != CTL_EXIT_OK)
                return status;
        n = json_object_array_length(rows);
        from = n > c->limit ? n - c->limit : 0;
        last = json_object_new_array();
        if (!last)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        for (size_t i = from; i < n; i++)
                (void) json_object_array_add(last, json_object_get(json_object_array_get_idx(rows, i)));
        if (c->json)
                ctl_print_json(stdout, last);
        else if (json_object_array_length(last) == 0)
                printf("No fence requests.\n");
        else
                (void) ctl_print_rows(stdout, last);
        return CTL_EXIT_OK;
}
