/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * `havenctl status`: the cluster at a glance (like clustat or pcs status).
 * Reads domaind's status, the cluster, nodes, vms and staged_changes tables
 * and the VM controllers' "vm/<name>" status entries (where a VM runs is
 * ctl-vm.c's ctl_vm_runtime(), shared with `vm list`), joins them into one
 * object (what --json prints) and prints that for people. The join and the
 * printing are pure and unit-tested. Must not: change anything.
 */
#include <inttypes.h>
#include <stdarg.h>

#include "ctl.h"
#include "haven/json.h"

/* ==== Joining ==== */

static struct json_object *row_with_int(struct json_object *rows, const char *key,
                                        int64_t value) {
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t v;

                if (haven_json_get_int64(row, key, &v) >= 0 && v == value)
                        return row;
        }
        return NULL;
}

/* The name of the node with corosync id `id`: from the status members,
 * else the nodes table, else NULL. */
static const char *node_name(struct json_object *members, struct json_object *node_rows,
                             int64_t id) {
        struct json_object *row;
        const char *name = NULL;

        row = row_with_int(members, "id", id);
        if (row && haven_json_get_string(row, "name", &name) >= 0)
                return name;
        row = row_with_int(node_rows, "node_id", id);
        if (row && haven_json_get_string(row, "name", &name) >= 0)
                return name;
        return NULL;
}

static struct json_object *copy_of(struct json_object *obj, const char *key) {
        struct json_object *v = NULL;

        (void) json_object_object_get_ex(obj, key, &v);
        return json_object_get(v);
}

static struct json_object *name_or_id(const char *name, int64_t id) {
        char buf[32];

        if (name)
                return json_object_new_string(name);
        snprintf(buf, sizeof buf, "node %" PRId64, id);
        return json_object_new_string(buf);
}

static int build_members(struct json_object *status, struct json_object *node_rows,
                         struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *out = json_object_new_array();
        struct json_object *members = NULL;

        if (!out)
                return -ENOMEM;
        (void) haven_json_get_array(status, "members", &members);

        for (size_t i = 0; i < json_object_array_length(members); i++) {
                struct json_object *m = json_object_array_get_idx(members, i), *row;
                _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
                const char *name = NULL, *state = NULL;
                bool online = false;
                int64_t id = 0;

                (void) haven_json_get_int64(m, "id", &id);
                (void) haven_json_get_string(m, "name", &name);
                (void) haven_json_get_string(m, "state", &state);
                (void) haven_json_get_bool(m, "online", &online);
                row = row_with_int(node_rows, "node_id", id);
                if (row && !name)
                        (void) haven_json_get_string(row, "name", &name);
                if (row && !state)
                        (void) haven_json_get_string(row, "state", &state);
                if (!o || haven_json_add(o, "name", haven_json_string_or_null(name)) < 0 ||
                    haven_json_add(o, "id", json_object_new_int64(id)) < 0 ||
                    haven_json_add(o, "state", haven_json_string_or_null(state)) < 0 ||
                    haven_json_add(o, "online", json_object_new_boolean(online)) < 0 ||
                    haven_json_add(o, "addresses", row ? copy_of(row, "addresses") : NULL) < 0 ||
                    json_object_array_add(out, o) < 0)
                        return -ENOMEM;
                TAKE_PTR(o);
        }

        /* Nodes of the domain that status did not list (an older domaind). */
        for (size_t i = 0; i < json_object_array_length(node_rows); i++) {
                struct json_object *row = json_object_array_get_idx(node_rows, i);
                _cleanup_(json_object_putp) struct json_object *o = NULL;
                int64_t id = 0;

                (void) haven_json_get_int64(row, "node_id", &id);
                if (row_with_int(members, "id", id))
                        continue;
                o = json_object_new_object();
                if (!o || haven_json_add(o, "name", copy_of(row, "name")) < 0 ||
                    haven_json_add(o, "id", json_object_new_int64(id)) < 0 ||
                    haven_json_add(o, "state", copy_of(row, "state")) < 0 ||
                    haven_json_add(o, "online", json_object_new_boolean(false)) < 0 ||
                    haven_json_add(o, "addresses", copy_of(row, "addresses")) < 0 ||
                    json_object_array_add(out, o) < 0)
                        return -ENOMEM;
                TAKE_PTR(o);
        }
        *ret = TAKE_PTR(out);
        return 0;
}

/* The manager entry is published by the VM controller: a node id, a name,
 * or an object naming one ("name", "node" or "node_id"). */
static struct json_object *manager_name(struct json_object *status,
                                        struct json_object *members,
                                        struct json_object *node_rows) {
        struct json_object *m = NULL;
        const char *s;
        int64_t id;

        if (!json_object_object_get_ex(status, "manager", &m) || !m)
                return NULL;
        if (json_object_is_type(m, json_type_object)) {
                if (haven_json_get_string(m, "name", &s) >= 0 ||
                    haven_json_get_string(m, "node", &s) >= 0)
                        return json_object_new_string(s);
                if (haven_json_get_int64(m, "node_id", &id) >= 0 ||
                    haven_json_get_int64(m, "node", &id) >= 0)
                        return name_or_id(node_name(members, node_rows, id), id);
                return NULL;
        }
        if (json_object_is_type(m, json_type_int)) {
                id = json_object_get_int64(m);
                return name_or_id(node_name(members, node_rows, id), id);
        }
        return json_object_is_type(m, json_type_string) ? json_object_get(m) : NULL;
}

static int build_vms(struct json_object *vm_rows, struct json_object *entries,
                     struct json_object *members, struct json_object *node_rows,
                     struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *out = json_object_new_array();
        int r;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(vm_rows); i++) {
                struct json_object *row = json_object_array_get_idx(vm_rows, i);
                _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
                _cleanup_free_ char *node = NULL, *state = NULL;
                const char *name = "", *preferred = NULL;
                int64_t preferred_id;

                if (!o)
                        return -ENOMEM;
                (void) haven_json_get_string(row, "name", &name);
                if (haven_json_get_int64(row, "preferred_node_id", &preferred_id) >= 0)
                        preferred = node_name(members, node_rows, preferred_id);
                /* Where it runs (ctl-vm.c): the nodes reporting it running,
                 * several when more than one does (visible anomaly). */
                r = ctl_vm_runtime(name, entries, members, node_rows, &node, &state);
                if (r < 0)
                        return r;
                if (haven_json_add(o, "name", json_object_new_string(name)) < 0 ||
                    haven_json_add(o, "id", copy_of(row, "id")) < 0 ||
                    haven_json_add(o, "ha", copy_of(row, "ha")) < 0 ||
                    haven_json_add(o, "preferred_node", haven_json_string_or_null(preferred)) < 0 ||
                    haven_json_add(o, "node", haven_json_string_or_null(node)) < 0 ||
                    haven_json_add(o, "state", haven_json_string_or_null(state)) < 0 ||
                    json_object_array_add(out, o) < 0)
                        return -ENOMEM;
                TAKE_PTR(o);
        }
        *ret = TAKE_PTR(out);
        return 0;
}

int ctl_status_build(struct json_object *status, struct json_object *cluster_rows,
                     struct json_object *node_rows, struct json_object *vm_rows,
                     struct json_object *staged_rows,
                     struct json_object *vm_entries, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        struct json_object *members = NULL, *vms = NULL, *status_members = NULL;
        const char *cluster = NULL;
        bool quorate = false, synced = false;
        int r;

        if (!o)
                return -ENOMEM;
        if (json_object_array_length(cluster_rows) > 0)
                (void) haven_json_get_string(json_object_array_get_idx(cluster_rows, 0), "name",
                                             &cluster);
        (void) haven_json_get_bool(status, "quorate", &quorate);
        (void) haven_json_get_bool(status, "synced", &synced);
        (void) haven_json_get_array(status, "members", &status_members);

        r = build_members(status, node_rows, &members);
        if (r < 0)
                return r;
        if (haven_json_add(o, "cluster", haven_json_string_or_null(cluster)) < 0 ||
            haven_json_add(o, "quorate", json_object_new_boolean(quorate)) < 0 ||
            haven_json_add(o, "synced", json_object_new_boolean(synced)) < 0 ||
            haven_json_add(o, "version", copy_of(status, "version")) < 0 ||
            haven_json_add(o, "config_version", copy_of(status, "config_version")) < 0 ||
            haven_json_add(o, "checksum", copy_of(status, "checksum")) < 0 ||
            haven_json_add(o, "node_id", copy_of(status, "node_id")) < 0 ||
            haven_json_add(o, "node_name", copy_of(status, "node_name")) < 0 ||
            haven_json_add(o, "manager", manager_name(status, status_members, node_rows)) < 0 ||
            haven_json_add(o, "members", members) < 0)
                return -ENOMEM;
        r = build_vms(vm_rows, vm_entries, status_members, node_rows, &vms);
        if (r < 0)
                return r;
        if (haven_json_add(o, "pending_changes",
                           json_object_new_int64((int64_t) json_object_array_length(staged_rows))) < 0 ||
            haven_json_add(o, "vms", vms) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

/* ==== Printing ==== */

static const char *str_or(struct json_object *o, const char *key, const char *fallback) {
        const char *s;

        return haven_json_get_string(o, key, &s) >= 0 ? s : fallback;
}

static int64_t int_or(struct json_object *o, const char *key, int64_t fallback) {
        int64_t v;

        return haven_json_get_int64(o, key, &v) >= 0 ? v : fallback;
}

static void print_line(FILE *f, const char *label, const char *format, ...) _printf_(3, 4);
static void print_line(FILE *f, const char *label, const char *format, ...) {
        _cleanup_free_ char *text = NULL, *safe = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&text, format, ap);
        va_end(ap);
        if (r < 0)
                return;
        safe = ctl_text_safe(text);
        fprintf(f, "%-16s%s\n", label, safe ? safe : "");
}

void ctl_status_print(FILE *f, struct json_object *s) {
        _cleanup_(ctl_grid_freep) struct ctl_grid *nodes = NULL, *vms = NULL;
        static const char *const node_titles[] = { "NODE", "ID", "STATE", "ONLINE", "ADDRESSES" };
        static const char *const vm_titles[] = { "VM", "HA", "PREFERRED", "NODE", "STATE" };
        struct json_object *members = NULL, *vm_list = NULL, *fencing;
        bool quorate = false, synced = false;
        const char *cluster = str_or(s, "cluster", NULL);
        int64_t pending = int_or(s, "pending_changes", 0);

        (void) haven_json_get_bool(s, "quorate", &quorate);
        (void) haven_json_get_bool(s, "synced", &synced);
        (void) haven_json_get_array(s, "members", &members);
        (void) haven_json_get_array(s, "vms", &vm_list);

        if (cluster)
                print_line(f, "Cluster:", "%s (%s%s)", cluster,
                           quorate ? "quorate" : "NOT QUORATE: the configuration is read-only",
                           synced ? "" : ", syncing");
        else
                print_line(f, "Cluster:", "none yet (havenctl cluster create NAME or "
                                          "havenctl cluster join ADDRESS)");
        print_line(f, "This node:", "%s (id %" PRId64 ")", str_or(s, "node_name", "-"),
                   int_or(s, "node_id", 0));
        print_line(f, "Version:", "%" PRId64 " (configuration %" PRId64 ", checksum %s)",
                   int_or(s, "version", 0), int_or(s, "config_version", 0),
                   str_or(s, "checksum", "-"));
        print_line(f, "Manager:", "%s", str_or(s, "manager", "-"));

        fputc('\n', f);
        nodes = ctl_grid_new(ELEMENTSOF(node_titles), node_titles);
        for (size_t i = 0; nodes && i < json_object_array_length(members); i++) {
                struct json_object *m = json_object_array_get_idx(members, i), *a = NULL;
                _cleanup_free_ char *addresses = NULL;
                bool online = false;
                char id[24];

                (void) haven_json_get_bool(m, "online", &online);
                (void) json_object_object_get_ex(m, "addresses", &a);
                addresses = json_object_is_type(a, json_type_array) ? NULL
                                                                    : ctl_format_value(NULL, a);
                if (json_object_is_type(a, json_type_array)) {
                        size_t len = 0;
                        for (size_t k = 0; k < json_object_array_length(a); k++) {
                                const char *x = json_object_get_string(json_object_array_get_idx(a, k));
                                char *p;
                                if (asprintf(&p, "%s%s%s", addresses ? addresses : "",
                                             len ? " " : "", x ? x : "") < 0)
                                        break;
                                free(addresses);
                                addresses = p;
                                len++;
                        }
                }
                snprintf(id, sizeof id, "%" PRId64, int_or(m, "id", 0));
                (void) ctl_grid_add(nodes, (const char *const[]){
                                                   str_or(m, "name", "-"), id,
                                                   str_or(m, "state", "-"),
                                                   online ? "yes" : "no",
                                                   addresses && *addresses ? addresses : "-" });
        }
        if (nodes && ctl_grid_rows(nodes) > 0)
                ctl_grid_print(nodes, f);
        else
                fputs("Nodes: none\n", f);

        fputc('\n', f);
        vms = ctl_grid_new(ELEMENTSOF(vm_titles), vm_titles);
        for (size_t i = 0; vms && i < json_object_array_length(vm_list); i++) {
                struct json_object *v = json_object_array_get_idx(vm_list, i);

                (void) ctl_grid_add(vms, (const char *const[]){
                                                 str_or(v, "name", "-"), str_or(v, "ha", "-"),
                                                 str_or(v, "preferred_node", "-"),
                                                 str_or(v, "node", "-"),
                                                 str_or(v, "state", "-") });
        }
        if (vms && ctl_grid_rows(vms) > 0)
                ctl_grid_print(vms, f);
        else
                fputs("VMs: none\n", f);

        fencing = NULL;
        (void) haven_json_get_array(s, "fencing", &fencing);
        for (size_t i = 0; fencing && i < json_object_array_length(fencing); i++) {
                struct json_object *w = json_object_array_get_idx(fencing, i);

                if (i == 0)
                        fputc('\n', f);
                print_line(f, "Warning:", "%s cannot be fenced (%s): no HA for its VMs",
                           str_or(w, "node", "?"), str_or(w, "reason", "?"));
        }

        fputc('\n', f);
        if (pending > 0)
                fprintf(f, "Pending changes: %" PRId64
                           " (review: havenctl changes; apply: havenctl activate)\n",
                        pending);
        else
                fputs("Pending changes: none\n", f);
}

int ctl_status_add_fencing(struct json_object *status, struct json_object *entries,
                           struct json_object *node_rows) {
        _cleanup_(json_object_putp) struct json_object *list = json_object_new_array();

        if (!list)
                return -ENOMEM;
        for (size_t i = 0; entries && node_rows && json_object_array_length(entries) > 0 &&
                           i < json_object_array_length(node_rows); i++) {
                struct json_object *n = json_object_array_get_idx(node_rows, i), *w;
                const char *name = "?", *reason = NULL;
                int64_t id = 0;

                (void) haven_json_get_int64(n, "node_id", &id);
                (void) haven_json_get_string(n, "name", &name);
                if (ctl_fence_node_fenceable(entries, id, name, &reason))
                        continue;
                w = json_object_new_object();
                if (!w || haven_json_add(w, "node", json_object_new_string(name)) < 0 ||
                    haven_json_add(w, "reason", json_object_new_string(reason)) < 0 ||
                    json_object_array_add(list, w) < 0) {
                        json_object_put(w);
                        return -ENOMEM;
                }
        }
        return haven_json_add(status, "fencing", TAKE_PTR(list));
}

/* ==== The command ==== */

int ctl_status(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *status = NULL, *cluster = NULL,
                                                        *nodes = NULL, *vms = NULL,
                                                        *staged = NULL, *read = NULL,
                                                        *out = NULL, *req = NULL;
        struct json_object *entries = NULL;
        int r;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl status [--json]");

        req = ctl_request_simple("status");
        r = ctl_call(c, req, 0, &status, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_query(c, "cluster", NULL, &cluster);
        if (r == CTL_EXIT_OK)
                r = ctl_query(c, "nodes", NULL, &nodes);
        if (r == CTL_EXIT_OK)
                r = ctl_query(c, "vms", NULL, &vms);
        if (r == CTL_EXIT_OK)
                r = ctl_query(c, "staged_changes", NULL, &staged);
        if (r != CTL_EXIT_OK)
                return r;

        json_object_put(req);
        req = ctl_request_simple("status-read");
        if (!req || haven_json_add(req, "prefix", json_object_new_string("vm/")) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        r = ctl_call(c, req, 0, &read, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        (void) haven_json_get_array(read, "entries", &entries);

        if (ctl_status_build(status, cluster, nodes, vms, staged, entries, &out) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");

        /* Which nodes nobody can fence: the cluster makes no HA promise
         * for them. Only once a fence device exists or a fencer reports. */
        json_object_put(req);
        json_object_put(read);
        read = NULL;
        req = ctl_request_simple("status-read");
        if (!req || haven_json_add(req, "prefix", json_object_new_string("fencing")) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        r = ctl_call(c, req, 0, &read, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        entries = NULL;
        (void) haven_json_get_array(read, "entries", &entries);
        if (ctl_status_add_fencing(out, entries, nodes) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        if (c->json)
                ctl_print_json(stdout, out);
        else
                ctl_status_print(stdout, out);
        return CTL_EXIT_OK;
}
