/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One action on one fence device, through its driver: the native APC
 * driver runs in a child process (haven-fence-apc, synchronous net-snmp
 * there, the parent's timeout as the backstop); a fence-agents
 * script runs once per outlet, all outlets at the same time. Owns the
 * children and the aggregation of their answers into one result.
 * Must not: decide what to fence (fenced-fence.c does), or block the loop.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <unistd.h>

#include "haven/exec.h"
#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"

#include "fenced-agent.h"
#include "fenced.h"

#define OP_STDOUT_MAX (256u * 1024u)

struct op_child {
        struct fence_op *op;
        char *outlet; /* the outlet this child acts on (agents), or NULL */
        struct haven_exec *exec;
        bool done;
};

struct fence_op {
        struct fenced *f;
        struct fence_device device;
        char *action;
        const char *agent_action; /* what the agent runs for action (static) */
        fence_op_done_t done;
        void *userdata;
        uint64_t started;

        struct op_child *children;
        size_t n_children, n_pending;
        sd_event_source *defer; /* reports results known without a child */
        struct fence_op_result result;
        struct json_object *outlet_results; /* agents: one entry per outlet */
};

void fence_op_result_done(struct fence_op_result *r) {
        if (!r)
                return;
        free(r->message);
        free(r->code);
        free(r->field);
        json_object_put(r->details);
        *r = (struct fence_op_result){};
}

/* Sets the result once (the first failure wins over later ones). */
static void op_fail(struct fence_op *op, const char *code, const char *field,
                    const char *fmt, ...) _printf_(4, 5);
static void op_fail(struct fence_op *op, const char *code, const char *field,
                    const char *fmt, ...) {
        va_list ap;

        if (op->result.message && !op->result.ok)
                return;
        free(op->result.message);
        op->result.ok = false;
        va_start(ap, fmt);
        if (vasprintf(&op->result.message, fmt, ap) < 0)
                op->result.message = NULL;
        va_end(ap);
        op->result.code = strdup(code);
        op->result.field = field ? strdup(field) : NULL;
}

static void op_finish(struct fence_op *op) {
        op->result.elapsed_usec = haven_now_usec(CLOCK_MONOTONIC) - op->started;
        if (!op->result.message)
                op->result.message = strdup(op->result.ok ? "ok" : "failed");
        if (op->outlet_results && !op->result.details) {
                _cleanup_(json_object_putp) struct json_object *d =
                        json_object_new_object();

                if (d && haven_json_add(d, "outlets", json_object_get(
                                                              op->outlet_results)) >= 0)
                        op->result.details = TAKE_PTR(d);
        }
        op->done(op, &op->result, op->userdata);
}

/* ==== Native APC driver ==== */

/* The child's JSON answer → result. */
static void apc_parse_answer(struct fence_op *op,
                             const struct haven_exec_result *r) {
        _cleanup_(json_object_putp) struct json_object *answer = NULL;
        struct json_object *ok, *error, *v;

        if (r->timed_out) {
                op_fail(op, "timeout", NULL,
                        "device \"%s\": the driver did not finish in time",
                        op->device.name);
                return;
        }
        answer = json_tokener_parse(r->stdout_data ? r->stdout_data : "");
        if (!json_object_is_type(answer, json_type_object) ||
            !json_object_object_get_ex(answer, "ok", &ok)) {
                op_fail(op, "internal", NULL,
                        "device \"%s\": the driver failed (exit %d): %.200s",
                        op->device.name, r->status,
                        r->stderr_data ? r->stderr_data : "");
                return;
        }
        op->result.ok = json_object_get_boolean(ok);
        if (!op->result.ok) {
                const char *code = "device", *message = "failed", *field = NULL;

                if (json_object_object_get_ex(answer, "error", &error)) {
                        if (json_object_object_get_ex(error, "code", &v))
                                code = json_object_get_string(v);
                        if (json_object_object_get_ex(error, "message", &v))
                                message = json_object_get_string(v);
                        if (json_object_object_get_ex(error, "field", &v) &&
                            json_object_is_type(v, json_type_string))
                                field = json_object_get_string(v);
                }
                op_fail(op, code, field, "device \"%s\": %s", op->device.name,
                        message);
        } else
                op->result.message = strdup("ok");
        op->result.details = TAKE_PTR(answer);
}

static void apc_child_done(struct haven_exec *x,
                           const struct haven_exec_result *r, void *userdata) {
        struct op_child *c = userdata;
        struct fence_op *op = c->op;

        c->done = true;
        op->n_pending--;
        apc_parse_answer(op, r);
        op_finish(op);
}

/* The expected outlet count, if the device's parameters name one. */
static int64_t device_expected_outlets(const struct fence_device *d) {
        struct json_object *v;

        if (json_object_object_get_ex(d->parameters, "outlets", &v) &&
            json_object_is_type(v, json_type_int))
                return json_object_get_int64(v);
        return 0;
}

static int apc_start(struct fence_op *op, char *const *outlets,
                     uint64_t timeout_usec) {
        _cleanup_(json_object_putp) struct json_object *req = NULL,
                                                       *list = NULL,
                                                       *parameters = NULL;
        char *argv[] = {op->f->apc_driver, NULL};
        struct haven_exec_options options = {
                .timeout_usec = timeout_usec,
                .max_output = OP_STDOUT_MAX,
        };
        const char *text;
        int r;

        /* "outlets" is Haven's (the expected count), not the driver's. */
        parameters = json_object_new_object();
        if (!parameters)
                return -ENOMEM;
        json_object_object_foreach(op->device.parameters, key, value) {
                if (streq(key, "outlets"))
                        continue;
                r = haven_json_add(parameters, key, json_object_get(value));
                if (r < 0)
                        return r;
        }

        list = json_object_new_array();
        req = json_object_new_object();
        if (!list || !req)
                return -ENOMEM;
        for (size_t i = 0; outlets && outlets[i]; i++)
                if (json_object_array_add(list,
                                          json_object_new_string(outlets[i])) < 0)
                        return -ENOMEM;
        if (haven_json_add(req, "address",
                           json_object_new_string(op->device.address ?: "")) < 0 ||
            haven_json_add(req, "parameters", TAKE_PTR(parameters)) < 0 ||
            haven_json_add(req, "action", json_object_new_string(op->action)) < 0 ||
            haven_json_add(req, "outlets", TAKE_PTR(list)) < 0)
                return -ENOMEM;
        if (device_expected_outlets(&op->device) > 0 &&
            haven_json_add(req, "expect_outlets",
                           json_object_new_int64(device_expected_outlets(
                                   &op->device))) < 0)
                return -ENOMEM;

        text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        options.stdin_data = text;
        options.stdin_size = strlen(text);

        op->children = calloc(1, sizeof(struct op_child));
        if (!op->children)
                return -ENOMEM;
        op->n_children = op->n_pending = 1;
        op->children[0].op = op;
        r = haven_exec_start(op->f->event, argv, &options, apc_child_done,
                             &op->children[0], &op->children[0].exec);
        if (r < 0)
                return r;
        return 0;
}

/* ==== fence-agents ==== */

static void agent_child_done(struct haven_exec *x,
                             const struct haven_exec_result *r,
                             void *userdata) {
        struct op_child *c = userdata;
        struct fence_op *op = c->op;
        _cleanup_free_ char *message = NULL;
        enum fence_agent_outcome outcome;
        const char *state = NULL;
        bool good;

        c->done = true;
        op->n_pending--;

        outcome = fence_agent_outcome(op->agent_action, r, &message);
        if (streq(op->action, "off"))
                good = outcome == FENCE_AGENT_OK || outcome == FENCE_AGENT_OFF;
        else if (streq(op->action, "on"))
                good = outcome == FENCE_AGENT_OK || outcome == FENCE_AGENT_ON;
        else
                good = outcome != FENCE_AGENT_FAILED;
        if (outcome == FENCE_AGENT_ON)
                state = "on";
        else if (outcome == FENCE_AGENT_OFF)
                state = "off";
        else if (good && streq(op->action, "off"))
                state = "off";
        else if (good && streq(op->action, "on"))
                state = "on";

        if (op->outlet_results && c->outlet) {
                _cleanup_(json_object_putp) struct json_object *o =
                        json_object_new_object();

                if (o &&
                    haven_json_add(o, "outlet", json_object_new_string(c->outlet)) >= 0 &&
                    haven_json_add(o, "state", state ? json_object_new_string(state)
                                                     : NULL) >= 0)
                        (void) json_object_array_add(op->outlet_results,
                                                     TAKE_PTR(o));
        }
        if (!good) {
                if (r->timed_out)
                        op_fail(op, "timeout", NULL, "device \"%s\": %s",
                                op->device.name,
                                message ?: "the agent did not finish in time");
                else
                        op_fail(op, "device", NULL, "device \"%s\"%s%s: %s",
                                op->device.name, c->outlet ? " outlet " : "",
                                c->outlet ?: "", message ?: "failed");
        }
        if (op->n_pending > 0)
                return;
        if (!op->result.message) {
                op->result.ok = true;
                op->result.message = strdup("ok");
        }
        op_finish(op);
}

static int agent_start(struct fence_op *op, char *const *outlets,
                       uint64_t timeout_usec) {
        _cleanup_free_ char *path = NULL;
        struct json_object *agent;
        const char *action = op->action;
        size_t n = 0;
        int r;

        if (!json_object_object_get_ex(op->device.parameters, "agent", &agent) ||
            !json_object_is_type(agent, json_type_string))
                return -EINVAL;
        r = fence_agent_path(json_object_get_string(agent), &path);
        if (r < 0)
                return r;

        /* check: status of every outlet (reachable, and the outlet
         * exists), or the agent's monitor when no outlet is named. */
        if (streq(action, "check"))
                action = outlets && outlets[0] ? "status" : "monitor";
        op->agent_action = streq(action, "status")    ? "status"
                           : streq(action, "monitor") ? "monitor"
                           : streq(action, "on")      ? "on"
                           : streq(action, "off")     ? "off"
                                                      : "list";

        while (outlets && outlets[n])
                n++;
        op->outlet_results = json_object_new_array();
        op->children = calloc(MAX(n, 1u), sizeof(struct op_child));
        if (!op->outlet_results || !op->children)
                return -ENOMEM;
        op->n_children = MAX(n, 1u);

        for (size_t i = 0; i < op->n_children; i++) {
                struct op_child *c = &op->children[i];
                _cleanup_free_ char *input = NULL;

                c->op = op;
                if (n > 0) {
                        c->outlet = strdup(outlets[i]);
                        if (!c->outlet)
                                return -ENOMEM;
                }
                r = fence_agent_stdin(op->device.address, c->outlet, action,
                                      op->device.parameters, &input);
                if (r < 0)
                        return r;
                r = fence_agent_run(op->f->event, path, input, timeout_usec,
                                    agent_child_done, c, &c->exec);
                if (r < 0)
                        return r;
                op->n_pending++;
        }
        return 0;
}

/* ==== Operation ==== */

static int op_on_defer(sd_event_source *s, void *userdata) {
        op_finish(userdata);
        return 0;
}

int fence_op_start(struct fenced *f, const struct fence_device *d,
                   const char *action, char *const *outlets,
                   uint64_t timeout_usec, fence_op_done_t done, void *userdata,
                   struct fence_op **ret) {
        _cleanup_(fence_op_freep) struct fence_op *op = NULL;
        int r;

        assert(f);
        assert(d);
        assert(action);
        assert(done);
        assert(ret);

        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->f = f;
        op->done = done;
        op->userdata = userdata;
        op->started = haven_now_usec(CLOCK_MONOTONIC);
        op->action = strdup(action);
        if (!op->action)
                return -ENOMEM;
        r = fence_device_copy(d, &op->device);
        if (r < 0)
                return r;

        if (streq(d->type, "apc-snmp"))
                r = apc_start(op, outlets, timeout_usec);
        else if (streq(d->type, "fence-agent"))
                r = agent_start(op, outlets, timeout_usec);
        else {
                op_fail(op, "manual", NULL,
                        "device \"%s\" is manual: an administrator switches "
                        "it and confirms",
                        d->name);
                r = 0;
        }
        if (r == -ENOENT && streq(d->type, "fence-agent"))
                op_fail(op, "bad-parameter", "agent",
                        "device \"%s\": the fence agent is not installed",
                        d->name);
        else if (r == -EINVAL && streq(d->type, "fence-agent"))
                op_fail(op, "bad-parameter", "agent",
                        "device \"%s\": \"agent\" must name an installed fence "
                        "agent (fence_...)",
                        d->name);
        else if (r < 0)
                return r;

        /* No child runs: report from the loop, not from inside this call. */
        if (op->n_pending == 0) {
                r = sd_event_add_defer(f->event, &op->defer, op_on_defer, op);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(op);
        return 0;
}

struct fence_op *fence_op_free(struct fence_op *op) {
        if (!op)
                return NULL;
        for (size_t i = 0; i < op->n_children; i++) {
                haven_exec_free(op->children[i].exec);
                free(op->children[i].outlet);
        }
        free(op->children);
        sd_event_source_disable_unref(op->defer);
        fence_device_done(&op->device);
        fence_op_result_done(&op->result);
        json_object_put(op->outlet_results);
        free(op->action);
        free(op);
        return NULL;
}
