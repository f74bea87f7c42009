/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HA manager's glue. Every vmd runs it; on the partition's manager node
 * (ha_manager_node(): the lowest online member of a quorate partition) it
 * calls ha_decide() after every change of the domain view and every second,
 * and writes the decision in one transaction. Every vmd records when it saw
 * each node leave (the core's left_at), so whichever node becomes manager
 * knows it.
 * A decision made on rows that changed meanwhile fails as a whole (the
 * placements and commands are updated with expect_version); after a
 * decision is written, the next one waits until the view holds it.
 * Must not: decide without quorum, decide on a view that is not ready, or
 * have two decisions in flight.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"

#include "vmd.h"

/* After a written decision: how long to wait at most for the view to show
 * it before deciding again. */
#define COMMIT_WAIT_USEC (3ULL * 1000000ULL)
/* After a refused decision: when to try again. */
#define RETRY_USEC (200ULL * 1000ULL)

struct vmd_manager {
        struct vmd *v;
        sd_event_source *timer;
        sd_event_source *defer;
        bool in_flight;
        int64_t wait_version; /* the view must reach it (0: no wait) */
        uint64_t wait_until;  /* CLOCK_MONOTONIC */
        bool was_quorate;
        bool active; /* this node is the manager */
        /* The members at the last look, and when the others left. */
        uint32_t *seen;
        size_t n_seen;
        uint32_t *left_ids;
        uint64_t *left_at;
        size_t n_left;
        /* The log lines of the decision in flight. */
        char **pending_log;
        size_t n_pending_log;
};

static void pending_log_free(struct vmd_manager *m) {
        for (size_t i = 0; i < m->n_pending_log; i++)
                free(m->pending_log[i]);
        free(m->pending_log);
        m->pending_log = NULL;
        m->n_pending_log = 0;
}

/* ==== Membership ==== */

static bool in_list(const uint32_t *ids, size_t n, uint32_t id) {
        for (size_t i = 0; i < n; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

static int set_left(struct vmd_manager *m, uint32_t id, uint64_t at) {
        uint32_t *ids;
        uint64_t *ats;

        for (size_t i = 0; i < m->n_left; i++)
                if (m->left_ids[i] == id) {
                        m->left_at[i] = at;
                        return 0;
                }
        ids = reallocarray(m->left_ids, m->n_left + 1, sizeof(*ids));
        if (!ids)
                return -ENOMEM;
        m->left_ids = ids;
        ats = reallocarray(m->left_at, m->n_left + 1, sizeof(*ats));
        if (!ats)
                return -ENOMEM;
        m->left_at = ats;
        m->left_ids[m->n_left] = id;
        m->left_at[m->n_left++] = at;
        return 0;
}

/* Records who left since the last look (only on a connected, ready view:
 * a lost link to domaind is not a membership change). */
static void membership_track(struct vmd_manager *m) {
        struct haven_domain *d = m->v->domain;
        const uint32_t *members;
        uint32_t *copy;
        size_t n;
        uint64_t now = haven_now_usec(CLOCK_REALTIME);

        if (!haven_domain_connected(d) || !haven_domain_ready(d))
                return;
        members = haven_domain_members(d, &n);
        for (size_t i = 0; i < m->n_seen; i++)
                if (!in_list(members, n, m->seen[i])) {
                        log_info("Node %" PRIu32 " left the membership.", m->seen[i]);
                        (void) set_left(m, m->seen[i], now);
                }
        for (size_t i = 0; i < n; i++)
                (void) set_left(m, members[i], 0);
        copy = n ? malloc(n * sizeof(*copy)) : NULL;
        if (n && !copy)
                return;
        if (n)
                memcpy(copy, members, n * sizeof(*copy));
        free(m->seen);
        m->seen = copy;
        m->n_seen = n;
}

/* ==== Writing a decision ==== */

static void schedule(struct vmd_manager *m, uint64_t usec);

static int64_t view_version(struct haven_domain *d) {
        static const char *const written[] = {"vm_placements", "vm_commands",
                                              "fence_requests", "vms"};
        int64_t max = 0;

        for (size_t t = 0; t < ELEMENTSOF(written); t++) {
                struct json_object *rows = haven_domain_rows(d, written[t]);

                for (size_t i = 0; rows && i < json_object_array_length(rows); i++) {
                        int64_t v = vmd_row_int(json_object_array_get_idx(rows, i),
                                                "version", 0);
                        if (v > max)
                                max = v;
                }
        }
        return max;
}

static void on_written(struct haven_msg_link *link _unused_, int error,
                       struct json_object *reply, void *userdata) {
        struct vmd_manager *m = userdata;
        const char *message = NULL, *code;
        int64_t version = 0;

        m->in_flight = false;
        code = error < 0 ? "unreachable" : haven_domain_reply_error(reply, &message);
        if (error < 0 || *code) {
                log_warning("The HA decision was not written (%s%s%s); deciding again.",
                            code, message && *message ? ": " : "",
                            message ? message : "");
                pending_log_free(m);
                /* Made on rows that changed meanwhile: read them again. */
                if (streq(code, "conflict") || streq(code, "not-found") ||
                    streq(code, "invalid"))
                        haven_domain_refresh(m->v->domain);
                schedule(m, RETRY_USEC);
                return;
        }
        for (size_t i = 0; i < m->n_pending_log; i++)
                log_info("%s", m->pending_log[i]);
        pending_log_free(m);
        (void) haven_json_get_int64(reply, "version", &version);
        m->wait_version = version;
        m->wait_until = haven_deadline_usec(COMMIT_WAIT_USEC);
        schedule(m, 0);
}

static const char *vm_name(const struct ha_input *in, int64_t id) {
        for (size_t i = 0; i < in->n_vms; i++)
                if (in->vms[i].id == id)
                        return in->vms[i].name;
        return "?";
}

static const char *node_name(const struct ha_input *in, uint32_t id) {
        for (size_t i = 0; i < in->n_nodes; i++)
                if (in->nodes[i].id == id)
                        return in->nodes[i].name;
        return "?";
}

/* The audit text: the decisions, or (for rows that only follow what the
 * agents report) the new states, "web1 running on node3, ...". */
static void audit_text(const struct ha_input *in, const struct ha_output *o,
                       char *buf, size_t size) {
        size_t n = 0;

        if (o->n_log == 1) {
                snprintf(buf, size, "%s", o->log[0]);
                return;
        }
        if (o->n_log > 1) {
                snprintf(buf, size, "%zu HA decisions: %s", o->n_log, o->log[0]);
                return;
        }
        n = (size_t) snprintf(buf, size, "HA:");
        for (size_t i = 0; i < o->n_placements && n < size; i++) {
                const struct ha_placement *p = &o->placements[i];

                n += (size_t) snprintf(buf + n, size - n, "%s vm '%s' %s%s%s", i ? "," : "",
                                       vm_name(in, p->vm_id),
                                       ha_placement_state_to_string(p->state),
                                       p->node ? " on " : "", p->node ? node_name(in, p->node) : "");
        }
        for (size_t i = 0; i < o->n_commands && n < size; i++)
                n += (size_t) snprintf(buf + n, size - n, "%s command %" PRId64 " %s",
                                       n > 3 ? "," : "", o->commands[i].id,
                                       ha_command_state_to_string(o->commands[i].state));
}

static int write_decision(struct vmd_manager *m, const struct ha_input *in,
                          struct ha_output *o, struct json_object *ops) {
        char audit[1024];
        int r;

        audit_text(in, o, audit, sizeof(audit));
        r = haven_domain_submit(m->v->domain, ops, audit, on_written, m);
        if (r < 0)
                return r;
        m->in_flight = true;
        pending_log_free(m);
        m->pending_log = TAKE_PTR(o->log);
        m->n_pending_log = o->n_log;
        o->n_log = 0;
        return 0;
}

/* ==== The round ==== */

static void publish_role(struct vmd_manager *m, bool active) {
        _cleanup_(json_object_putp) struct json_object *value = NULL;

        if (active == m->active)
                return;
        m->active = active;
        if (active) {
                log_info("This node is the HA manager now.");
                value = json_object_new_object();
                if (!value ||
                    haven_json_add(value, "node_id", json_object_new_int64(m->v->self)) < 0 ||
                    haven_json_add(value, "name", haven_json_string_or_null(m->v->node_name)) < 0 ||
                    haven_json_add(value, "since",
                                   json_object_new_int64((int64_t) haven_now_usec(CLOCK_REALTIME))) < 0)
                        return;
        } else
                log_info("This node is no longer the HA manager.");
        (void) haven_domain_publish(m->v->domain, "manager", TAKE_PTR(value));
}

static void round_run(struct vmd_manager *m) {
        struct haven_domain *d = m->v->domain;
        _cleanup_(json_object_putp) struct json_object *tables = NULL, *ops = NULL;
        struct ha_output out = {};
        struct vmd_input in = {};
        struct vmd_membership ms;
        uint64_t now = haven_now_usec(CLOCK_REALTIME);
        uint32_t manager;
        int r;

        if (m->in_flight || !haven_domain_connected(d) || !haven_domain_ready(d) ||
            !m->v->self)
                return;
        if (m->wait_version) {
                if (view_version(d) < m->wait_version &&
                    haven_now_usec(CLOCK_MONOTONIC) < m->wait_until)
                        return;
                m->wait_version = 0;
        }
        ms = (struct vmd_membership) {
                /* Quorate, and holding the cluster's content (a node
                 * that just rejoined shows its old rows until synced). */
                .quorate = haven_domain_quorate(d) &&
                           vmd_row_int(haven_domain_status(d), "synced", 0) == 1,
                .left_ids = m->left_ids,
                .left_at = m->left_at,
                .n_left = m->n_left,
                .since = m->v->started_usec,
        };
        ms.members = haven_domain_members(d, &ms.n_members);
        /* Quorate but not synced yet: wait for the sync (no decision, and
         * no "no quorum" line either). */
        if (haven_domain_quorate(d) && !ms.quorate)
                return;
        tables = vmd_tables_object(d);
        if (!tables)
                return;
        r = vmd_input_build(tables, haven_domain_entries(d), &ms, now, m->v->self, &in);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the HA state: %m");
                return;
        }
        in.in.was_quorate = m->was_quorate;
        manager = ha_manager_node(in.in.nodes, in.in.n_nodes, ms.quorate);
        if (ms.quorate && manager != m->v->self) {
                publish_role(m, false);
                m->was_quorate = true;
                vmd_input_done(&in);
                return;
        }
        publish_role(m, ms.quorate);
        r = ha_decide(&in.in, &out);
        m->was_quorate = ms.quorate;
        if (r < 0) {
                log_warning_errno(r, "The HA decision failed: %m");
                goto out;
        }
        r = vmd_output_ops(&out, haven_domain_rows(d, "vm_placements"),
                           haven_domain_rows(d, "vm_commands"), now, &ops);
        if (r < 0) {
                log_warning_errno(r, "Failed to build the HA transaction: %m");
                goto out;
        }
        if (!ops) {
                /* Nothing to write; a no-quorum line is all there can be. */
                for (size_t i = 0; i < out.n_log; i++)
                        log_notice("%s", out.log[i]);
                goto out;
        }
        r = write_decision(m, &in.in, &out, TAKE_PTR(ops));
        if (r < 0)
                log_warning_errno(r, "Failed to submit the HA decision: %m");
out:
        ha_output_done(&out);
        vmd_input_done(&in);
}

static int on_defer(sd_event_source *s, void *userdata) {
        struct vmd_manager *m = userdata;

        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        round_run(m);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec _unused_, void *userdata) {
        struct vmd_manager *m = userdata;

        round_run(m);
        (void) sd_event_source_set_time_relative(s, VMD_MANAGER_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

static void schedule(struct vmd_manager *m, uint64_t usec) {
        if (usec == 0) {
                (void) sd_event_source_set_enabled(m->defer, SD_EVENT_ONESHOT);
                return;
        }
        (void) sd_event_source_set_time_relative(m->timer, usec);
        (void) sd_event_source_set_enabled(m->timer, SD_EVENT_ON);
}

void vmd_manager_changed(struct vmd_manager *m, unsigned what) {
        if (what & (HAVEN_DOMAIN_STATUS | HAVEN_DOMAIN_LINK))
                membership_track(m);
        if (what & HAVEN_DOMAIN_LINK && !haven_domain_connected(m->v->domain))
                m->active = false; /* domaind drops our entries with the link */
        schedule(m, 0);
}

int vmd_manager_new(struct vmd *v, struct vmd_manager **ret) {
        _cleanup_(vmd_manager_freep) struct vmd_manager *m = calloc(1, sizeof(*m));
        int r;

        if (!m)
                return -ENOMEM;
        m->v = v;
        r = sd_event_add_defer(v->event, &m->defer, on_defer, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(m->defer, SD_EVENT_OFF);
        r = haven_loop_add_timer(v->event, &m->timer, VMD_MANAGER_INTERVAL_USEC,
                                 10 * 1000, on_timer, m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

struct vmd_manager *vmd_manager_free(struct vmd_manager *m) {
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->timer);
        sd_event_source_disable_unref(m->defer);
        pending_log_free(m);
        free(m->seen);
        free(m->left_ids);
        free(m->left_at);
        free(m);
        return NULL;
}
