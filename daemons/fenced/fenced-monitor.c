/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Monitoring: every device is checked periodically from this node (it
 * answers, its outlet count is the configured one, every mapped outlet
 * exists), and the result goes into the status map under "fencing":
 *   {"devices": {"pdu1": {"ok", "message", "code", "checked_at",
 *                         "elapsed_ms", "model", "outlet_count"}},
 *    "nodes": {"node2": {"ok", "reason"}}}
 * "nodes" says, from this node's view, whether each node has a level whose
 * every device passed its last check: a node without one cannot be fenced,
 * and the cluster makes no HA promise that depends on it. The entry's
 * presence also tells the others that this node runs a fencer.
 * Must not: switch anything (check reads only), or write the domain.
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

#include "fenced.h"

/* A check may take at most this long (two SNMP timeouts and some). */
#define CHECK_TIMEOUT_USEC (15ULL * 1000000ULL)

static struct json_object *device_health(struct fenced *f, const char *name) {
        struct json_object *h = NULL;

        if (f->device_health)
                (void) json_object_object_get_ex(f->device_health, name, &h);
        return h;
}

static bool health_ok(struct json_object *h) {
        struct json_object *v;

        return h && json_object_object_get_ex(h, "ok", &v) &&
               json_object_get_boolean(v);
}

bool fenced_monitor_node_ok(struct fenced *f, uint32_t node_id,
                            char **ret_reason) {
        const struct fence_config *c = f->config;
        _cleanup_free_ char *why = NULL;
        bool manual_only = false;

        for (unsigned level = 1; c && level <= FENCED_LEVELS_MAX; level++) {
                bool any = false, good = true, manual = false;

                for (size_t i = 0; i < c->n_outlets; i++) {
                        const struct fence_outlet *o = &c->outlets[i];
                        const struct fence_device *d;
                        struct json_object *h, *m;

                        if (o->node_id != node_id || o->level != level)
                                continue;
                        d = fence_config_device(c, o->device_id);
                        if (!d || !d->enabled)
                                continue;
                        any = true;
                        if (streq(d->type, "manual")) {
                                manual = true;
                                continue;
                        }
                        h = device_health(f, d->name);
                        if (!health_ok(h)) {
                                good = false;
                                if (!why) {
                                        if (asprintf(&why, "level %u: device %s: %s", level,
                                                     d->name,
                                                     h && json_object_object_get_ex(h, "message", &m)
                                                             ? json_object_get_string(m)
                                                             : "not checked yet") < 0)
                                                why = NULL;
                                }
                        }
                }
                if (!any)
                        continue;
                if (good && !manual) {
                        if (ret_reason)
                                *ret_reason = NULL;
                        return true;
                }
                if (good && manual)
                        manual_only = true;
        }
        if (ret_reason) {
                if (manual_only && !why)
                        *ret_reason = strdup("only manual fencing: recovery "
                                             "waits for an administrator");
                else if (!why)
                        *ret_reason = strdup("no fence device: no outlet is "
                                             "mapped to it");
                else
                        *ret_reason = TAKE_PTR(why);
        }
        return false;
}

void fenced_monitor_publish(struct fenced *f) {
        _cleanup_(json_object_putp) struct json_object *value =
                json_object_new_object(), *nodes = json_object_new_object();
        int r;

        if (!haven_domain_connected(f->domain) || !f->node_id)
                return;
        if (!value || !nodes)
                return (void) log_error("Out of memory.");

        for (size_t i = 0; f->config && i < f->config->n_nodes; i++) {
                const struct fence_node *n = &f->config->nodes[i];
                _cleanup_free_ char *reason = NULL;
                _cleanup_(json_object_putp) struct json_object *entry =
                        json_object_new_object();
                bool ok = fenced_monitor_node_ok(f, n->node_id, &reason);

                if (!entry ||
                    haven_json_add(entry, "ok", json_object_new_boolean(ok)) < 0 ||
                    haven_json_add(entry, "reason",
                                   haven_json_string_or_null(reason)) < 0 ||
                    haven_json_add(nodes, n->name, TAKE_PTR(entry)) < 0)
                        return (void) log_error("Out of memory.");
        }
        if (haven_json_add(value, "devices",
                           f->device_health ? json_object_get(f->device_health)
                                            : json_object_new_object()) < 0 ||
            haven_json_add(value, "nodes", TAKE_PTR(nodes)) < 0)
                return (void) log_error("Out of memory.");
        r = haven_domain_publish(f->domain, FENCED_STATUS_KEY, TAKE_PTR(value));
        if (r < 0)
                (void) log_debug_errno(r, "Failed to publish: %m");
}

/* ==== Checks ==== */

struct monitor_check {
        struct fenced *f;
        char *device;
        struct fence_op *op;
};

static void monitor_round_end(struct fenced *f) {
        fenced_monitor_publish(f);
}

static void health_set(struct fenced *f, const char *name,
                       const struct fence_op_result *r) {
        _cleanup_(json_object_putp) struct json_object *h =
                json_object_new_object();
        struct json_object *old = device_health(f, name), *v;
        bool was_ok = health_ok(old);

        if (!h)
                return;
        (void) haven_json_add(h, "ok", json_object_new_boolean(r->ok));
        (void) haven_json_add(h, "message", json_object_new_string(r->message));
        (void) haven_json_add(h, "code", haven_json_string_or_null(r->code));
        (void) haven_json_add(h, "checked_at",
                              json_object_new_int64((int64_t) haven_now_usec(
                                      CLOCK_REALTIME)));
        (void) haven_json_add(h, "elapsed_ms",
                              json_object_new_double(
                                      (double) r->elapsed_usec / 1000.0));
        if (r->details) {
                if (json_object_object_get_ex(r->details, "model", &v))
                        (void) haven_json_add(h, "model", json_object_get(v));
                if (json_object_object_get_ex(r->details, "outlet_count", &v))
                        (void) haven_json_add(h, "outlet_count",
                                              json_object_get(v));
        }
        if (old && was_ok && !r->ok)
                log_warning("Fence device \"%s\" failed its check: %s", name,
                            r->message);
        else if (old && !was_ok && r->ok)
                log_notice("Fence device \"%s\" passes its check again.", name);
        else if (!old && !r->ok)
                log_warning("Fence device \"%s\" failed its check: %s", name,
                            r->message);
        (void) haven_json_add(f->device_health, name, TAKE_PTR(h));
}

static void monitor_op_done(struct fence_op *op,
                            const struct fence_op_result *r, void *userdata) {
        struct monitor_check *mc = userdata;
        struct fenced *f = mc->f;

        health_set(f, mc->device, r);
        assert(f->monitor_pending > 0);
        if (--f->monitor_pending == 0)
                monitor_round_end(f);
}

static void monitor_free_ops(struct fenced *f) {
        for (size_t i = 0; i < f->n_monitor_checks; i++) {
                struct monitor_check *mc;

                mc = f->monitor_checks[i];
                fence_op_free(mc->op);
                free(mc->device);
                free(mc);
        }
        free(f->monitor_checks);
        f->monitor_checks = NULL;
        f->n_monitor_checks = 0;
        f->monitor_pending = 0;
}

/* The outlets of device d that are mapped to some node. */
static char **device_outlets(const struct fence_config *c,
                             const struct fence_device *d) {
        char **l = calloc(c->n_outlets + 1, sizeof(char *));
        size_t n = 0;

        if (!l)
                return NULL;
        for (size_t i = 0; i < c->n_outlets; i++)
                if (c->outlets[i].device_id == d->id) {
                        l[n] = strdup(c->outlets[i].outlet);
                        if (!l[n])
                                break;
                        n++;
                }
        return l;
}

static void monitor_round(struct fenced *f) {
        _cleanup_(json_object_putp) struct json_object *health = NULL;
        const struct fence_config *c = f->config;

        if (!c || !f->node_id)
                return;
        if (f->monitor_pending > 0)
                return; /* the previous round is still going */
        monitor_free_ops(f);

        /* Devices that were removed drop out of the health map. */
        health = json_object_new_object();
        if (!health)
                return;
        for (size_t i = 0; i < c->n_devices; i++) {
                struct json_object *h = device_health(f, c->devices[i].name);

                if (h)
                        (void) haven_json_add(health, c->devices[i].name,
                                              json_object_get(h));
        }
        json_object_put(f->device_health);
        f->device_health = TAKE_PTR(health);

        f->monitor_checks = calloc(MAX(c->n_devices, 1u), sizeof(void *));
        if (!f->monitor_checks)
                return;
        for (size_t i = 0; i < c->n_devices; i++) {
                const struct fence_device *d = &c->devices[i];
                struct monitor_check *mc;
                char **outlets;
                int r;

                if (!d->enabled) {
                        json_object_object_del(f->device_health, d->name);
                        continue;
                }
                if (streq(d->type, "manual")) {
                        struct fence_op_result manual = {
                                .ok = true,
                                .message = (char *) "manual: an administrator "
                                                    "switches and confirms",
                        };

                        health_set(f, d->name, &manual);
                        continue;
                }
                mc = calloc(1, sizeof(*mc));
                outlets = device_outlets(c, d);
                if (!mc || !outlets || !(mc->device = strdup(d->name))) {
                        free(mc);
                        strv_free(outlets);
                        continue;
                }
                mc->f = f;
                r = fence_op_start(f, d, "check", outlets, CHECK_TIMEOUT_USEC,
                                   monitor_op_done, mc, &mc->op);
                strv_free(outlets);
                if (r < 0) {
                        (void) log_warning_errno(r, "Failed to check fence "
                                                    "device \"%s\": %m",
                                                 d->name);
                        free(mc->device);
                        free(mc);
                        continue;
                }
                f->monitor_checks[f->n_monitor_checks++] = mc;
                f->monitor_pending++;
        }
        if (f->monitor_pending == 0)
                monitor_round_end(f);
}

static int monitor_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct fenced *f = userdata;

        monitor_round(f);
        (void) sd_event_source_set_time_relative(s, f->monitor_interval_usec);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int fenced_monitor_start(struct fenced *f) {
        f->device_health = json_object_new_object();
        if (!f->device_health)
                return -ENOMEM;
        /* The first round soon after start, once the configuration is in. */
        return haven_loop_add_timer(f->event, &f->monitor_timer,
                                    MIN(f->monitor_interval_usec,
                                        2ULL * 1000000ULL),
                                    0, monitor_on_timer, f);
}

void fenced_monitor_stop(struct fenced *f) {
        f->monitor_timer = sd_event_source_disable_unref(f->monitor_timer);
        monitor_free_ops(f);
        json_object_put(f->device_health);
        f->device_health = NULL;
}
