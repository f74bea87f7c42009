/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The domain's rows and the status map, turned into what the decision core
 * takes (struct ha_input) and what a node agent runs (struct vm_spec); the
 * core's decision turned into one transaction's ops. Pure functions over
 * JSON: the daemon passes its haven_domain view, the unit tests fixtures.
 * Must not: do I/O, read a clock, or keep anything between calls.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/text.h"

#include "vmd.h"

/* ==== Rows ==== */

struct json_object *vmd_row_by_id(struct json_object *rows, int64_t id) {
        return vmd_row_by_int(rows, "id", id);
}

struct json_object *vmd_row_by_int(struct json_object *rows, const char *col,
                                   int64_t value) {
        size_t n = json_object_is_type(rows, json_type_array)
                           ? json_object_array_length(rows)
                           : 0;

        for (size_t i = 0; i < n; i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t v;

                if (haven_json_get_int64(row, col, &v) == 0 && v == value)
                        return row;
        }
        return NULL;
}

int64_t vmd_row_int(struct json_object *row, const char *col, int64_t dflt) {
        int64_t v;
        bool b;

        if (haven_json_get_int64(row, col, &v) == 0)
                return v;
        if (haven_json_get_bool(row, col, &b) == 0)
                return b;
        return dflt;
}

const char *vmd_row_string(struct json_object *row, const char *col,
                           const char *dflt) {
        const char *s;

        return haven_json_get_string(row, col, &s) == 0 ? s : dflt;
}

static struct json_object *table(struct json_object *tables, const char *name) {
        struct json_object *rows = NULL;

        (void) json_object_object_get_ex(tables, name, &rows);
        return json_object_is_type(rows, json_type_array) ? rows : NULL;
}

static size_t count(struct json_object *rows) {
        return rows ? json_object_array_length(rows) : 0;
}

static uint32_t node_id_of(struct json_object *row, const char *col) {
        int64_t v = vmd_row_int(row, col, 0);

        return v > 0 && v <= UINT32_MAX ? (uint32_t) v : 0;
}

/* ==== Input ==== */

void vmd_input_done(struct vmd_input *b) {
        free(b->nodes);
        free(b->vms);
        free(b->storage);
        free(b->reports);
        free(b->placements);
        free(b->commands);
        *b = (struct vmd_input) {};
}

static bool member_of(const struct vmd_membership *m, uint32_t id) {
        for (size_t i = 0; i < m->n_members; i++)
                if (m->members[i] == id)
                        return true;
        return false;
}

static uint64_t left_at_of(const struct vmd_membership *m, uint32_t id) {
        for (size_t i = 0; i < m->n_left; i++)
                if (m->left_ids[i] == id && m->left_at[i])
                        return m->left_at[i];
        return m->since;
}

/* The value of the status entry key published by node (NULL if none). */
static struct json_object *entry_of(struct json_object *entries,
                                    uint32_t node, const char *key) {
        for (size_t i = 0; i < count(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i),
                                   *value = NULL;

                if (node_id_of(e, "node") != node ||
                    !streq(vmd_row_string(e, "key", ""), key))
                        continue;
                (void) json_object_object_get_ex(e, "value", &value);
                return value;
        }
        return NULL;
}

/* Whether some online node other than node reports, in its "fencing"
 * entry, that node (by name) can be fenced. */
static bool fenceable(struct json_object *entries,
                      const struct vmd_membership *m, uint32_t node,
                      const char *name) {
        for (size_t i = 0; i < count(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i),
                                   *value = NULL, *nodes = NULL, *one = NULL;
                uint32_t from = node_id_of(e, "node");
                bool ok = false;

                if (from == node || !member_of(m, from) ||
                    !streq(vmd_row_string(e, "key", ""), "fencing"))
                        continue;
                (void) json_object_object_get_ex(e, "value", &value);
                if (haven_json_get_object(value, "nodes", &nodes) < 0 ||
                    !json_object_object_get_ex(nodes, name, &one))
                        continue;
                if (haven_json_get_bool(one, "ok", &ok) == 0 && ok)
                        return true;
        }
        return false;
}

/* The latest fence_requests row of node (the highest id). */
static struct ha_fence fence_of(struct json_object *requests, uint32_t node) {
        struct json_object *latest = NULL;
        struct ha_fence f = {.state = HA_FENCE_NONE};
        const char *state;

        for (size_t i = 0; i < count(requests); i++) {
                struct json_object *row = json_object_array_get_idx(requests, i);

                if (node_id_of(row, "node_id") == node &&
                    (!latest || vmd_row_int(row, "id", 0) >
                                        vmd_row_int(latest, "id", 0)))
                        latest = row;
        }
        if (!latest)
                return f;
        state = vmd_row_string(latest, "state", "");
        if (streq(state, "pending") || streq(state, "running"))
                f.state = HA_FENCE_PENDING;
        else if (streq(state, "done"))
                f.state = HA_FENCE_DONE;
        else
                f.state = HA_FENCE_FAILED;
        /* A request that switched the node on or rebooted it says nothing
         * about whether it is off now. */
        if (f.state == HA_FENCE_DONE &&
            !streq(vmd_row_string(latest, "action", "off"), "off"))
                f.state = HA_FENCE_NONE;
        f.requested_at = (uint64_t) vmd_row_int(latest, "requested_at", 0);
        f.finished_at = (uint64_t) vmd_row_int(latest, "finished_at", 0);
        f.reason = vmd_row_string(latest, "result", NULL);
        if (f.reason && !*f.reason)
                f.reason = NULL;
        return f;
}

static int build_nodes(struct json_object *tables, struct json_object *entries,
                       const struct vmd_membership *m, struct vmd_input *b) {
        struct json_object *rows = table(tables, "nodes"),
                           *requests = table(tables, "fence_requests");
        size_t n = 0;

        b->nodes = calloc(count(rows) ?: 1, sizeof(*b->nodes));
        if (!b->nodes)
                return -ENOMEM;
        for (size_t i = 0; i < count(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i),
                                   *agent;
                uint32_t id = node_id_of(row, "node_id");
                const char *name = vmd_row_string(row, "name", NULL);
                enum ha_node_state state = ha_node_state_from_string(
                        vmd_row_string(row, "state", ""));
                struct ha_node *node = &b->nodes[n];
                bool ready = false;

                if (!id || !name || state < 0) {
                        log_warning("vmd: skipping a nodes row without a valid "
                                    "node_id, name or state");
                        continue;
                }
                agent = entry_of(entries, id, VMD_STATUS_KEY);
                (void) haven_json_get_bool(agent, "ready", &ready);
                *node = (struct ha_node) {
                        .id = id,
                        .name = name,
                        .state = state,
                        .online = member_of(m, id),
                        .memory_mib = (uint64_t) vmd_row_int(row, "memory_mib", 0),
                        .host_reserve_mib =
                                (uint64_t) vmd_row_int(row, "host_reserve_mib", 0),
                        .fence = fence_of(requests, id),
                };
                node->agent_ready = node->online && ready;
                if (node->memory_mib == 0 && node->agent_ready)
                        node->memory_mib =
                                (uint64_t) vmd_row_int(agent, "memory_mib", 0);
                node->fenceable = fenceable(entries, m, id, name);
                if (!node->online)
                        node->left_at = left_at_of(m, id);
                n++;
        }
        b->in.nodes = b->nodes;
        b->in.n_nodes = n;
        return 0;
}

/* The nodes a VM's storage allows: the intersection of the node lists of
 * its eSAN disks (none: any node). Appends to b->storage. */
static int vm_storage(struct json_object *tables, int64_t vm_id,
                      uint32_t *buf, size_t *ret_n) {
        struct json_object *attached = table(tables, "vm_disks"),
                           *disks = table(tables, "disks");
        size_t n = 0;
        bool any = true;

        for (size_t i = 0; i < count(attached); i++) {
                struct json_object *a = json_object_array_get_idx(attached, i),
                                   *disk, *nodes = NULL;
                uint32_t keep[HA_STORAGE_NODES_MAX];
                size_t k = 0;

                if (vmd_row_int(a, "vm_id", 0) != vm_id)
                        continue;
                disk = vmd_row_by_id(disks, vmd_row_int(a, "disk_id", 0));
                if (!disk || !streq(vmd_row_string(disk, "kind", ""), "esan"))
                        continue;
                (void) haven_json_get_array(disk, "nodes", &nodes);
                for (size_t j = 0; j < count(nodes) && k < HA_STORAGE_NODES_MAX; j++) {
                        struct json_object *v = json_object_array_get_idx(nodes, j);
                        int64_t id = json_object_is_type(v, json_type_int)
                                             ? json_object_get_int64(v)
                                             : 0;
                        bool in_set = any;

                        if (id <= 0 || id > UINT32_MAX)
                                continue;
                        for (size_t x = 0; !any && x < n; x++)
                                in_set = in_set || buf[x] == (uint32_t) id;
                        if (in_set)
                                keep[k++] = (uint32_t) id;
                }
                memcpy(buf, keep, k * sizeof(*keep));
                n = k;
                any = false;
                if (n == 0) {
                        /* Disks on disjoint nodes: no node can run it. A
                         * node id nobody has keeps the list non-empty. */
                        buf[0] = UINT32_MAX;
                        n = 1;
                }
        }
        *ret_n = n;
        return 0;
}

static int build_vms(struct json_object *tables, struct vmd_input *b) {
        struct json_object *rows = table(tables, "vms");
        size_t n = 0, used = 0;

        b->vms = calloc(count(rows) ?: 1, sizeof(*b->vms));
        b->storage = calloc((count(rows) ?: 1) * HA_STORAGE_NODES_MAX,
                            sizeof(*b->storage));
        if (!b->vms || !b->storage)
                return -ENOMEM;
        for (size_t i = 0; i < count(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t id = vmd_row_int(row, "id", 0),
                        priority = vmd_row_int(row, "priority", 500);
                const char *name = vmd_row_string(row, "name", NULL);
                enum ha_mode ha = ha_mode_from_string(vmd_row_string(row, "ha", "off"));
                enum ha_desired desired = ha_desired_from_string(
                        vmd_row_string(row, "desired_state", "stopped"));
                struct ha_vm *vm = &b->vms[n];
                size_t ns = 0;

                if (id <= 0 || !name || ha < 0 || desired < 0 || priority < 0 ||
                    priority > HA_PRIORITY_MAX) {
                        log_warning("vmd: skipping vms row %" PRId64
                                    ": invalid values", id);
                        continue;
                }
                (void) vm_storage(tables, id, b->storage + used, &ns);
                *vm = (struct ha_vm) {
                        .id = id,
                        .name = name,
                        .ha = ha,
                        .preferred_node = node_id_of(row, "preferred_node_id"),
                        .sticky_node = node_id_of(row, "sticky_node_id"),
                        .priority = (unsigned) priority,
                        .memory_mib = (uint64_t) vmd_row_int(row, "memory_mib", 0),
                        .restart_max = (unsigned) vmd_row_int(row, "restart_max", 3),
                        .restart_window_usec =
                                (uint64_t) vmd_row_int(row, "restart_window_s", 600) *
                                HA_USEC_PER_SEC,
                        .relocate_max = (unsigned) vmd_row_int(row, "relocate_max", 1),
                        .desired = desired,
                        .storage_nodes = ns ? b->storage + used : NULL,
                        .n_storage_nodes = ns,
                };
                used += ns;
                n++;
        }
        b->in.vms = b->vms;
        b->in.n_vms = n;
        return 0;
}

static bool vm_known(const struct vmd_input *b, int64_t vm_id) {
        for (size_t i = 0; i < b->in.n_vms; i++)
                if (b->vms[i].id == vm_id)
                        return true;
        return false;
}

/* The agents' "vm/NAME" entries of online nodes. */
static int build_reports(struct json_object *entries,
                         const struct vmd_membership *m, struct vmd_input *b) {
        size_t n = 0;

        b->reports = calloc(count(entries) ?: 1, sizeof(*b->reports));
        if (!b->reports)
                return -ENOMEM;
        for (size_t i = 0; i < count(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i),
                                   *v = NULL;
                uint32_t node = node_id_of(e, "node");
                const char *key = vmd_row_string(e, "key", "");
                struct ha_report *r = &b->reports[n];
                enum ha_runtime state;
                int64_t vm_id, generation, done;
                bool dup = false;

                if (strncmp(key, VMD_VM_KEY_PREFIX, strlen(VMD_VM_KEY_PREFIX)) != 0 ||
                    !member_of(m, node))
                        continue;
                (void) json_object_object_get_ex(e, "value", &v);
                vm_id = vmd_row_int(v, "vm_id", 0);
                state = ha_runtime_from_string(vmd_row_string(v, "state", ""));
                generation = vmd_row_int(v, "generation", 0);
                done = vmd_row_int(v, "command_done", 0);
                if (vm_id <= 0 || state < 0 || generation < 0 || done < 0 ||
                    !vm_known(b, vm_id))
                        continue;
                for (size_t k = 0; k < n; k++)
                        dup = dup || (b->reports[k].vm_id == vm_id &&
                                      b->reports[k].node_id == node);
                if (dup)
                        continue;
                *r = (struct ha_report) {
                        .vm_id = vm_id,
                        .node_id = node,
                        .state = state,
                        .target_node = node_id_of(v, "target_node"),
                        .unexpected = vmd_row_int(v, "unexpected", 0) != 0,
                        .generation = (uint64_t) generation,
                        .error = vmd_row_string(v, "error", NULL),
                        .command_done = done,
                        .command_failed = vmd_row_int(v, "command_failed", 0) != 0,
                        .command_result = vmd_row_string(v, "command_result", NULL),
                };
                if (r->state == HA_RUNTIME_MIGRATING_OUT && !r->target_node)
                        r->state = HA_RUNTIME_RUNNING;
                n++;
        }
        b->in.reports = b->reports;
        b->in.n_reports = n;
        return 0;
}

static int build_placements(struct json_object *tables, struct vmd_input *b) {
        struct json_object *rows = table(tables, "vm_placements");
        size_t n = 0;

        b->placements = calloc(count(rows) ?: 1, sizeof(*b->placements));
        if (!b->placements)
                return -ENOMEM;
        for (size_t i = 0; i < count(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t vm_id = vmd_row_int(row, "vm_id", 0);
                enum ha_placement_state state = ha_placement_state_from_string(
                        vmd_row_string(row, "state", ""));
                int64_t restarts = vmd_row_int(row, "restarts", 0),
                        relocations = vmd_row_int(row, "relocations", 0),
                        generation = vmd_row_int(row, "generation", 0);

                if (vm_id <= 0 || state < 0 || restarts < 0 || relocations < 0 ||
                    generation < 0 || !vm_known(b, vm_id))
                        continue;
                b->placements[n++] = (struct ha_placement) {
                        .vm_id = vm_id,
                        .node = node_id_of(row, "node_id"),
                        .state = state,
                        .target = node_id_of(row, "target_node_id"),
                        .reason = vmd_row_string(row, "reason", ""),
                        .restarts = (unsigned) restarts,
                        .restart_window_start =
                                (uint64_t) vmd_row_int(row, "restart_window_start", 0),
                        .relocations = (unsigned) relocations,
                        .generation = (uint64_t) generation,
                        .updated_at = (uint64_t) vmd_row_int(row, "updated_at", 0),
                };
        }
        b->in.placements = b->placements;
        b->in.n_placements = n;
        return 0;
}

static int build_commands(struct json_object *tables, struct vmd_input *b) {
        struct json_object *rows = table(tables, "vm_commands");
        size_t n = 0;

        b->commands = calloc(count(rows) ?: 1, sizeof(*b->commands));
        if (!b->commands)
                return -ENOMEM;
        for (size_t i = 0; i < count(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t id = vmd_row_int(row, "id", 0),
                        vm_id = vmd_row_int(row, "vm_id", 0);
                enum ha_command_kind kind = ha_command_kind_from_string(
                        vmd_row_string(row, "command", ""));
                enum ha_command_state state = ha_command_state_from_string(
                        vmd_row_string(row, "state", ""));

                if (state != HA_COMMAND_PENDING && state != HA_COMMAND_RUNNING)
                        continue;
                if (id <= 0 || kind < 0 || !vm_known(b, vm_id))
                        continue;
                b->commands[n++] = (struct ha_command) {
                        .id = id,
                        .vm_id = vm_id,
                        .kind = kind,
                        .state = state,
                        .target_node = node_id_of(row, "target_node_id"),
                };
        }
        b->in.commands = b->commands;
        b->in.n_commands = n;
        return 0;
}

int vmd_input_build(struct json_object *tables, struct json_object *entries,
                    const struct vmd_membership *m, uint64_t now,
                    uint32_t self, struct vmd_input *ret) {
        int r;

        *ret = (struct vmd_input) {};
        ret->in = (struct ha_input) {
                .now = now,
                .self = self,
                .quorate = m->quorate,
        };
        r = build_nodes(tables, entries, m, ret);
        if (r >= 0)
                r = build_vms(tables, ret);
        if (r >= 0)
                r = build_reports(entries, m, ret);
        if (r >= 0)
                r = build_placements(tables, ret);
        if (r >= 0)
                r = build_commands(tables, ret);
        if (r < 0)
                vmd_input_done(ret);
        return r;
}

/* ==== Output ==== */

static struct json_object *node_or_null(uint32_t id) {
        return id ? json_object_new_int64(id) : NULL;
}

static int add_op(struct json_object *ops, const char *op, const char *tbl,
                  int64_t id, int64_t expect_version,
                  struct json_object *values) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();

        if (!o || !values ||
            haven_json_add(o, "op", json_object_new_string(op)) < 0 ||
            haven_json_add(o, "table", json_object_new_string(tbl)) < 0 ||
            (id > 0 && haven_json_add(o, "id", json_object_new_int64(id)) < 0) ||
            (expect_version > 0 &&
             haven_json_add(o, "expect_version",
                            json_object_new_int64(expect_version)) < 0)) {
                json_object_put(values);
                return -ENOMEM;
        }
        if (haven_json_add(o, "values", values) < 0 ||
            json_object_array_add(ops, o) < 0)
                return -ENOMEM;
        TAKE_PTR(o);
        return 0;
}

static int placement_op(struct json_object *ops, const struct ha_placement *p,
                        struct json_object *rows, uint64_t now) {
        _cleanup_(json_object_putp) struct json_object *v = json_object_new_object();
        struct json_object *row = vmd_row_by_int(rows, "vm_id", p->vm_id);
        char reason[HA_REASON_MAX];

        haven_text_copy_cut(reason, sizeof(reason), p->reason ?: "");
        if (!v ||
            (!row && haven_json_add(v, "vm_id", json_object_new_int64(p->vm_id)) < 0) ||
            haven_json_add(v, "node_id", node_or_null(p->node)) < 0 ||
            haven_json_add(v, "state", json_object_new_string(
                                              ha_placement_state_to_string(p->state))) < 0 ||
            haven_json_add(v, "target_node_id", node_or_null(p->target)) < 0 ||
            haven_json_add(v, "reason", json_object_new_string(reason)) < 0 ||
            haven_json_add(v, "restarts", json_object_new_int64(p->restarts)) < 0 ||
            haven_json_add(v, "restart_window_start",
                           json_object_new_int64((int64_t) p->restart_window_start)) < 0 ||
            haven_json_add(v, "relocations", json_object_new_int64(p->relocations)) < 0 ||
            haven_json_add(v, "generation", json_object_new_int64((int64_t) p->generation)) < 0 ||
            haven_json_add(v, "updated_at", json_object_new_int64((int64_t) now)) < 0)
                return -ENOMEM;
        if (row)
                return add_op(ops, "update", "vm_placements", vmd_row_int(row, "id", 0),
                              vmd_row_int(row, "version", 0), TAKE_PTR(v));
        return add_op(ops, "insert", "vm_placements", 0, 0, TAKE_PTR(v));
}

int vmd_output_ops(const struct ha_output *o, struct json_object *placements,
                   struct json_object *commands, uint64_t now,
                   struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *ops = json_object_new_array();
        int r = 0;

        *ret = NULL;
        if (!ops)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < o->n_placements; i++)
                r = placement_op(ops, &o->placements[i], placements, now);
        for (size_t i = 0; r >= 0 && i < o->n_fence_requests; i++) {
                struct json_object *v = json_object_new_object();
                char reason[HA_REASON_MAX];

                haven_text_copy_cut(reason, sizeof(reason),
                                    o->fence_requests[i].reason ?: "");
                if (!v ||
                    haven_json_add(v, "node_id",
                                   json_object_new_int64(o->fence_requests[i].node)) < 0 ||
                    haven_json_add(v, "action", json_object_new_string("off")) < 0 ||
                    haven_json_add(v, "reason", json_object_new_string(reason)) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
                r = add_op(ops, "insert", "fence_requests", 0, 0, v);
        }
        for (size_t i = 0; r >= 0 && i < o->n_commands; i++) {
                const struct ha_command_update *c = &o->commands[i];
                struct json_object *row = vmd_row_by_id(commands, c->id),
                                   *v = json_object_new_object();
                bool ended = c->state == HA_COMMAND_DONE ||
                             c->state == HA_COMMAND_FAILED;
                char result[HA_RESULT_MAX];

                haven_text_copy_cut(result, sizeof(result), c->result ?: "");
                if (!v ||
                    haven_json_add(v, "state", json_object_new_string(
                                                       ha_command_state_to_string(c->state))) < 0 ||
                    (ended && haven_json_add(v, "result", json_object_new_string(result)) < 0) ||
                    (ended && haven_json_add(v, "finished_at",
                                             json_object_new_int64((int64_t) now)) < 0)) {
                        json_object_put(v);
                        return -ENOMEM;
                }
                r = add_op(ops, "update", "vm_commands", c->id,
                           row ? vmd_row_int(row, "version", 0) : 0, v);
        }
        for (size_t i = 0; r >= 0 && i < o->n_vm_changes; i++) {
                const struct ha_vm_change *c = &o->vm_changes[i];
                struct json_object *v = json_object_new_object();

                if (!v ||
                    (c->set_desired &&
                     haven_json_add(v, "desired_state", json_object_new_string(
                                                                ha_desired_to_string(c->desired))) < 0) ||
                    (c->clear_sticky && haven_json_add(v, "sticky_node_id", NULL) < 0)) {
                        json_object_put(v);
                        return -ENOMEM;
                }
                r = add_op(ops, "update", "vms", c->vm_id, 0, v);
        }
        if (r < 0)
                return r;
        if (json_object_array_length(ops) > 0)
                *ret = TAKE_PTR(ops);
        return 0;
}

/* ==== The VM's spec ==== */

void vmd_spec_done(struct vmd_spec *s) {
        free(s->disks);
        free(s->nics);
        free(s->cdroms);
        free(s->bridges);
        *s = (struct vmd_spec) {};
}

int vmd_spec_build(struct json_object *tables, int64_t vm_id,
                   enum vm_domain_type type, struct vmd_spec *ret,
                   const char **ret_why) {
        struct json_object *vm = vmd_row_by_id(table(tables, "vms"), vm_id),
                           *cluster = table(tables, "cluster"),
                           *attached = table(tables, "vm_disks"),
                           *disks = table(tables, "disks"),
                           *nics = table(tables, "vm_nics"),
                           *networks = table(tables, "networks"),
                           *cdroms = table(tables, "vm_cdroms");
        const char *cluster_uuid = count(cluster)
                                           ? vmd_row_string(json_object_array_get_idx(cluster, 0),
                                                            "uuid", NULL)
                                           : NULL;
        bool disk_boot = false;
        unsigned order = 0;
        size_t nd = 0, nn = 0, nc = 0;

        *ret = (struct vmd_spec) {};
        *ret_why = NULL;
        if (!vm)
                return -ENOENT;
        if (!cluster_uuid || vm_uuid(cluster_uuid, vm_id, ret->uuid) < 0) {
                *ret_why = "the cluster has no valid UUID";
                return -EINVAL;
        }
        ret->disks = calloc(count(attached) ?: 1, sizeof(*ret->disks));
        ret->nics = calloc(count(nics) ?: 1, sizeof(*ret->nics));
        ret->bridges = calloc(count(nics) ?: 1, sizeof(*ret->bridges));
        ret->cdroms = calloc(count(cdroms) ?: 1, sizeof(*ret->cdroms));
        if (!ret->disks || !ret->nics || !ret->bridges || !ret->cdroms) {
                vmd_spec_done(ret);
                return -ENOMEM;
        }
        for (size_t i = 0; i < count(attached); i++) {
                struct json_object *a = json_object_array_get_idx(attached, i), *disk;
                const char *path;
                enum vm_disk_bus bus;

                if (vmd_row_int(a, "vm_id", 0) != vm_id)
                        continue;
                disk = vmd_row_by_id(disks, vmd_row_int(a, "disk_id", 0));
                path = disk ? vmd_row_string(disk, "path", NULL) : NULL;
                bus = vm_disk_bus_from_string(vmd_row_string(a, "bus", "virtio"));
                if (!disk || !path || !*path || bus < 0) {
                        *ret_why = !disk ? "an attached disk does not exist"
                                         : !path || !*path
                                                   ? "a disk has no device or file yet"
                                                   : "a disk's bus is unknown";
                        vmd_spec_done(ret);
                        return -EINVAL;
                }
                ret->disks[nd++] = (struct vm_disk_spec) {
                        .path = path,
                        .format = vm_disk_format_from_path(path),
                        .bus = bus,
                        .cache = VM_DISK_CACHE_NONE,
                        .boot_order = (unsigned) vmd_row_int(a, "boot_order", 0),
                };
                disk_boot = disk_boot || ret->disks[nd - 1].boot_order > 0;
        }
        /* Without a boot order on any disk: the ISOs first (installing),
         * then the disks in their order. */
        for (size_t i = 0; i < count(cdroms); i++) {
                struct json_object *c = json_object_array_get_idx(cdroms, i);
                const char *iso;

                if (vmd_row_int(c, "vm_id", 0) != vm_id)
                        continue;
                iso = vmd_row_string(c, "iso_path", NULL);
                ret->cdroms[nc++] = (struct vm_cdrom_spec) {
                        .iso_path = iso,
                        .boot_order = !disk_boot && iso && *iso ? ++order : 0,
                };
        }
        for (size_t i = 0; !disk_boot && i < nd; i++)
                ret->disks[i].boot_order = ++order;
        for (size_t i = 0; i < count(nics); i++) {
                struct json_object *c = json_object_array_get_idx(nics, i), *net;
                enum vm_nic_model model;

                if (vmd_row_int(c, "vm_id", 0) != vm_id)
                        continue;
                net = vmd_row_by_id(networks, vmd_row_int(c, "network_id", 0));
                model = vm_nic_model_from_string(vmd_row_string(c, "model", "virtio"));
                if (!net || model < 0 ||
                    vm_bridge_name(vmd_row_string(net, "name", ""), ret->bridges[nn]) < 0) {
                        *ret_why = "a network interface names no valid network";
                        vmd_spec_done(ret);
                        return -EINVAL;
                }
                ret->nics[nn] = (struct vm_nic_spec) {
                        .bridge = ret->bridges[nn],
                        .mac = *vmd_row_string(c, "mac", "") ? vmd_row_string(c, "mac", "") : NULL,
                        .model = model,
                };
                nn++;
        }
        ret->spec = (struct vm_spec) {
                .name = vmd_row_string(vm, "name", ""),
                .uuid = ret->uuid,
                .vm_id = vm_id,
                .type = type,
                .vcpus = (unsigned) vmd_row_int(vm, "vcpus", 1),
                .memory_mib = (uint64_t) vmd_row_int(vm, "memory_mib", 0),
                .disks = ret->disks,
                .n_disks = nd,
                .nics = ret->nics,
                .n_nics = nn,
                .cdroms = ret->cdroms,
                .n_cdroms = nc,
        };
        return 0;
}
