/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * havenctl vm and node: what runs where and why (`vm list`, `vm show`), the
 * administrator's VM actions (a vm_commands row each, followed until the VM
 * manager answers it), the preferred node, and node admin states (written at
 * once; maintenance optionally followed until the node runs no VM). The joins
 * and the texts are pure and unit-tested; the rest talks to domaind only
 * (haven-vmd has no socket: the domain is how it is asked). Must not: stage
 * these writes (they are operational, applied at once), or write anything
 * when a name does not resolve.
 */
#include <assert.h>
#include <inttypes.h>

#include "ctl.h"
#include "haven/json.h"
#include "haven/loop.h"

/* Re-read even without an event this often while waiting: a safety net. */
#define WAIT_RECHECK_USEC (2ULL * USEC_PER_SEC)
/* Migration progress is printed when it moved at least this far. */
#define PERCENT_STEP 10
#define MIN_USEC(a, b) ((a) < (b) ? (a) : (b))

static const char *const vm_commands[] = {
        "start", "shutdown", "reboot", "reset", "poweroff", "migrate", "release", NULL,
};

/* ==== Small pure helpers ==== */

/* The length of an array; 0 for NULL or anything else (json-c asserts,
 * and answers are outside input). */
static size_t array_length(struct json_object *a) {
        return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static const char *str_or(struct json_object *o, const char *key, const char *fallback) {
        const char *s;

        return haven_json_get_string(o, key, &s) >= 0 ? s : fallback;
}

static int64_t int_or(struct json_object *o, const char *key, int64_t fallback) {
        int64_t v;

        return haven_json_get_int64(o, key, &v) >= 0 ? v : fallback;
}

static struct json_object *copy_of(struct json_object *o, const char *key) {
        struct json_object *v = NULL;

        (void) json_object_object_get_ex(o, key, &v);
        return json_object_get(v);
}

static struct json_object *row_with(struct json_object *rows, const char *key, int64_t value) {
        for (size_t i = 0; i < array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t v;

                if (haven_json_get_int64(row, key, &v) >= 0 && v == value)
                        return row;
        }
        return NULL;
}

/* A node's name: from members ({"id","name"}, may be NULL), else the node
 * rows, else "node N" (written into buf). */
static const char *node_label(struct json_object *members, struct json_object *node_rows,
                              int64_t id, char *buf, size_t size) {
        struct json_object *row;
        const char *name;

        row = row_with(members, "id", id);
        if (row && haven_json_get_string(row, "name", &name) >= 0)
                return name;
        row = row_with(node_rows, "node_id", id);
        if (row && haven_json_get_string(row, "name", &name) >= 0)
                return name;
        snprintf(buf, size, "node %" PRId64, id);
        return buf;
}

/* The node named by column key of o as a JSON string (null when o has none). */
static struct json_object *node_of(struct json_object *o, const char *key,
                                   struct json_object *node_rows) {
        char buf[32];
        int64_t id;

        if (haven_json_get_int64(o, key, &id) < 0)
                return NULL;
        return json_object_new_string(node_label(NULL, node_rows, id, buf, sizeof buf));
}

/* Appends s to *list, "," between. */
static int list_append(char **list, const char *s) {
        char *p;

        if (asprintf(&p, "%s%s%s", *list ? *list : "", *list ? "," : "", s) < 0)
                return -ENOMEM;
        free(*list);
        *list = p;
        return 0;
}

static bool list_has(const char *list, const char *s) {
        size_t n = strlen(s);

        for (const char *p = list; p && *p;) {
                size_t k = strcspn(p, ",");

                if (k == n && strncmp(p, s, n) == 0)
                        return true;
                p += k;
                if (*p)
                        p++;
        }
        return false;
}

/* A report's state: the value's "state", or the value itself when it is a
 * string; NULL without one. */
static const char *report_state(struct json_object *value) {
        const char *s = NULL;

        if (json_object_is_type(value, json_type_string))
                return json_object_get_string(value);
        (void) haven_json_get_string(value, "state", &s);
        return s;
}

/* Whether a reported state means the VM's process lives on that node. */
static bool state_runs(const char *state) {
        return state && (streq(state, "running") || streq(state, "paused") ||
                         streq(state, "migrating-out"));
}

static bool entry_is(struct json_object *entry, const char *key) {
        const char *k;

        return haven_json_get_string(entry, "key", &k) >= 0 && streq(k, key);
}

bool ctl_vm_command_known(const char *command) {
        for (size_t i = 0; command && vm_commands[i]; i++)
                if (streq(command, vm_commands[i]))
                        return true;
        return false;
}

int ctl_parse_seconds(const char *s, unsigned *ret) {
        unsigned long v;
        char *end;

        if (!s || s[0] < '1' || s[0] > '9')
                return -EINVAL; /* no sign, blank, leading zero or empty */
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end || v > CTL_WAIT_SEC_MAX)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

char *ctl_vm_command_summary(const char *command, const char *vm, const char *target) {
        char *s;

        if ((target ? asprintf(&s, "vm %s: %s to %s", vm, command, target)
                    : asprintf(&s, "vm %s: %s", vm, command)) < 0)
                return NULL;
        return s;
}

struct json_object *ctl_vm_command_op(int64_t vm_id, const char *command, int64_t target_node_id) {
        struct json_object *values = json_object_new_object();

        if (!values || haven_json_add(values, "vm_id", json_object_new_int64(vm_id)) < 0 ||
            haven_json_add(values, "command", json_object_new_string(command)) < 0 ||
            (target_node_id > 0 &&
             haven_json_add(values, "target_node_id", json_object_new_int64(target_node_id)) < 0)) {
                json_object_put(values);
                return NULL;
        }
        return ctl_op_insert("vm_commands", values);
}

char *ctl_vm_command_line(struct json_object *row) {
        const char *state = str_or(row, "state", "pending"), *result = str_or(row, "result", "");
        _cleanup_free_ char *text = NULL;

        if ((streq(state, "done") || streq(state, "failed")) && *result) {
                if (asprintf(&text, "%s: %s", state, result) < 0)
                        return NULL;
        } else if (asprintf(&text, "%s%s", state,
                            streq(state, "done") || streq(state, "failed") ? "." : "") < 0)
                return NULL;
        return ctl_text_safe(text);
}

/* ==== Where a VM runs (pure) ==== */

int ctl_vm_runtime(const char *name, struct json_object *entries, struct json_object *members,
                   struct json_object *node_rows, char **ret_node, char **ret_state) {
        _cleanup_free_ char *key = NULL, *nodes = NULL, *states = NULL, *others = NULL,
                            *targets = NULL;

        if (asprintf(&key, "vm/%s", name) < 0)
                return -ENOMEM;

        /* The targets of live migrations out: their copy is the incoming
         * one, not a second instance. */
        for (size_t i = 0; i < array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i), *value = NULL;
                const char *state;
                char id[24];

                if (!entry_is(e, key))
                        continue;
                (void) json_object_object_get_ex(e, "value", &value);
                state = report_state(value);
                if (!state || !streq(state, "migrating-out") ||
                    int_or(value, "target_node", 0) <= 0)
                        continue;
                snprintf(id, sizeof id, "%" PRId64, int_or(value, "target_node", 0));
                if (list_append(&targets, id) < 0)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i), *value = NULL;
                const char *state, *node = NULL;
                int64_t publisher = 0;
                char buf[32], id[24];

                if (!entry_is(e, key))
                        continue;
                (void) haven_json_get_int64(e, "node", &publisher);
                (void) json_object_object_get_ex(e, "value", &value);
                state = report_state(value);
                if (!state)
                        continue;
                if (!state_runs(state)) {
                        if (!list_has(others, state) && list_append(&others, state) < 0)
                                return -ENOMEM;
                        continue;
                }
                snprintf(id, sizeof id, "%" PRId64, publisher);
                if (!streq(state, "migrating-out") && list_has(targets, id))
                        continue;
                if (json_object_is_type(value, json_type_object))
                        (void) haven_json_get_string(value, "node", &node);
                if (!node)
                        node = node_label(members, node_rows, publisher, buf, sizeof buf);
                if (list_append(&nodes, node) < 0 || list_append(&states, state) < 0)
                        return -ENOMEM;
        }
        *ret_node = TAKE_PTR(nodes);
        *ret_state = states ? TAKE_PTR(states) : TAKE_PTR(others);
        return 0;
}

/* What vm list calls the VM's state: the placement's, unless the agents
 * report it running while the placement says otherwise (no manager yet, or
 * its decision not yet caught up); a migration or a stop in progress keeps
 * the placement's word. */
static int vm_state(const char *placed, const char *reported, char **ret) {
        _cleanup_free_ char *s = NULL;

        if (!reported || streq(placed, "migrating") || streq(placed, "stopping"))
                s = strdup(placed);
        else
                s = strdup(reported);
        if (!s)
                return -ENOMEM;
        /* The source's word for a migration, in the placement's words. */
        for (char *p = strstr(s, "migrating-out"); p; p = strstr(p, "migrating-out"))
                memmove(p + strlen("migrating"), p + strlen("migrating-out"),
                        strlen(p + strlen("migrating-out")) + 1);
        *ret = TAKE_PTR(s);
        return 0;
}

/* ==== vm list (pure) ==== */

/* The summary object of one VM: name, id, node, state, ha, preferred_node,
 * priority, memory_mib, reason. */
static int vm_summary(struct json_object *vm, struct json_object *placement_rows,
                      struct json_object *node_rows, struct json_object *entries,
                      struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_free_ char *node = NULL, *reported = NULL, *state = NULL;
        struct json_object *placement;
        const char *name = str_or(vm, "name", ""), *reason = NULL;
        int64_t id = int_or(vm, "id", 0);
        int r;

        if (!o)
                return -ENOMEM;
        placement = row_with(placement_rows, "vm_id", id);
        r = ctl_vm_runtime(name, entries, NULL, node_rows, &node, &reported);
        if (r < 0)
                return r;
        /* A state from a non-running report (stopped, crashed) is the
         * placement's business: only a running one overrides it. */
        r = vm_state(str_or(placement, "state", "stopped"), node ? reported : NULL, &state);
        if (r < 0)
                return r;
        reason = str_or(placement, "reason", NULL);
        if (reason && !*reason)
                reason = NULL;
        if (haven_json_add(o, "name", json_object_new_string(name)) < 0 ||
            haven_json_add(o, "id", json_object_new_int64(id)) < 0 ||
            haven_json_add(o, "node", haven_json_string_or_null(node)) < 0 ||
            haven_json_add(o, "state", json_object_new_string(state)) < 0 ||
            haven_json_add(o, "ha", copy_of(vm, "ha")) < 0 ||
            haven_json_add(o, "preferred_node", node_of(vm, "preferred_node_id", node_rows)) < 0 ||
            haven_json_add(o, "priority", copy_of(vm, "priority")) < 0 ||
            haven_json_add(o, "memory_mib", copy_of(vm, "memory_mib")) < 0 ||
            haven_json_add(o, "reason", haven_json_string_or_null(reason)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int ctl_vm_list_build(struct json_object *vm_rows, struct json_object *placement_rows,
                      struct json_object *node_rows, struct json_object *entries,
                      struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *out = json_object_new_array();
        int r;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < array_length(vm_rows); i++) {
                struct json_object *o = NULL;

                r = vm_summary(json_object_array_get_idx(vm_rows, i), placement_rows, node_rows,
                               entries, &o);
                if (r < 0)
                        return r;
                if (json_object_array_add(out, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(out);
        return 0;
}

static void format_memory(struct json_object *o, char *buf, size_t size) {
        int64_t mib;

        if (haven_json_get_int64(o, "memory_mib", &mib) >= 0)
                snprintf(buf, size, "%" PRId64 " MiB", mib);
        else
                snprintf(buf, size, "-");
}

static void format_int(struct json_object *o, const char *key, char *buf, size_t size) {
        int64_t v;

        if (haven_json_get_int64(o, key, &v) >= 0)
                snprintf(buf, size, "%" PRId64, v);
        else
                snprintf(buf, size, "-");
}

void ctl_vm_list_print(FILE *f, struct json_object *list) {
        static const char *const titles[] = { "VM",       "NODE",   "STATE", "HA", "PREFERRED",
                                              "PRIORITY", "MEMORY", "REASON" };
        _cleanup_(ctl_grid_freep) struct ctl_grid *g = ctl_grid_new(ELEMENTSOF(titles), titles);

        for (size_t i = 0; g && i < array_length(list); i++) {
                struct json_object *v = json_object_array_get_idx(list, i);
                char memory[32], priority[24];

                format_memory(v, memory, sizeof memory);
                format_int(v, "priority", priority, sizeof priority);
                (void) ctl_grid_add(g, (const char *const[]){
                                               str_or(v, "name", "-"), str_or(v, "node", "-"),
                                               str_or(v, "state", "-"), str_or(v, "ha", "-"),
                                               str_or(v, "preferred_node", "-"), priority, memory,
                                               str_or(v, "reason", "-") });
        }
        if (g && ctl_grid_rows(g) > 0)
                ctl_grid_print(g, f);
        else
                fputs("No VMs.\n", f);
}

/* ==== vm show (pure) ==== */

/* A copy of a row with the node columns named too: "node_id" → "node",
 * "target_node_id" → "target_node". */
static struct json_object *row_with_names(struct json_object *row, struct json_object *node_rows) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;

        if (json_object_deep_copy(row, &o, NULL) < 0)
                return NULL;
        if ((json_object_object_get_ex(row, "node_id", NULL) &&
             haven_json_add(o, "node", node_of(row, "node_id", node_rows)) < 0) ||
            (json_object_object_get_ex(row, "target_node_id", NULL) &&
             haven_json_add(o, "target_node", node_of(row, "target_node_id", node_rows)) < 0))
                return NULL;
        return TAKE_PTR(o);
}

static bool command_open(struct json_object *row) {
        const char *state = str_or(row, "state", "pending");

        return streq(state, "pending") || streq(state, "running");
}

/* The reports of VM name, each {"node", "node_id", ...the value}. */
static int vm_reports(const char *name, struct json_object *entries,
                      struct json_object *node_rows, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *out = json_object_new_array();
        _cleanup_free_ char *key = NULL;

        if (!out || asprintf(&key, "vm/%s", name) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i), *value = NULL;
                _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
                int64_t publisher = int_or(e, "node", 0);
                char buf[32];

                if (!entry_is(e, key))
                        continue;
                (void) json_object_object_get_ex(e, "value", &value);
                if (!o ||
                    haven_json_add(o, "node", json_object_new_string(node_label(
                                                      NULL, node_rows, publisher, buf,
                                                      sizeof buf))) < 0 ||
                    haven_json_add(o, "node_id", json_object_new_int64(publisher)) < 0)
                        return -ENOMEM;
                if (json_object_is_type(value, json_type_object)) {
                        json_object_object_foreach(value, k, v)
                                if (!streq(k, "node") && !streq(k, "node_id") &&
                                    haven_json_add(o, k, json_object_get(v)) < 0)
                                        return -ENOMEM;
                } else if (haven_json_add(o, "state", json_object_get(value)) < 0)
                        return -ENOMEM;
                if (json_object_array_add(out, o) < 0)
                        return -ENOMEM;
                TAKE_PTR(o);
        }
        *ret = TAKE_PTR(out);
        return 0;
}

/* The last migration: from the report of a node that runs the VM, else
 * the first report that has one; node ids named. NULL when none. */
static struct json_object *last_migration(struct json_object *reports,
                                          struct json_object *node_rows) {
        struct json_object *found = NULL, *m, *o = NULL;

        for (size_t i = 0; i < array_length(reports); i++) {
                struct json_object *r = json_object_array_get_idx(reports, i);

                if (haven_json_get_object(r, "last_migration", &m) < 0)
                        continue;
                if (!found || state_runs(str_or(r, "state", NULL)))
                        found = m;
                if (state_runs(str_or(r, "state", NULL)))
                        break;
        }
        if (!found || json_object_deep_copy(found, &o, NULL) < 0)
                return NULL;
        if (haven_json_add(o, "from", node_of(found, "from_node", node_rows)) < 0 ||
            haven_json_add(o, "to", node_of(found, "to_node", node_rows)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int ctl_vm_show_build(struct json_object *vm_row, struct json_object *placement_rows,
                      struct json_object *node_rows, struct json_object *entries,
                      struct json_object *command_rows, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL, *reports = NULL,
                                                        *open = json_object_new_array();
        struct json_object *placement, *last = NULL, *vm_copy = NULL, *placed = NULL;
        int64_t id = int_or(vm_row, "id", 0), last_id = 0;
        int r;

        if (!open)
                return -ENOMEM;
        r = vm_summary(vm_row, placement_rows, node_rows, entries, &o);
        if (r < 0)
                return r;
        r = vm_reports(str_or(vm_row, "name", ""), entries, node_rows, &reports);
        if (r < 0)
                return r;
        for (size_t i = 0; i < array_length(command_rows); i++) {
                struct json_object *row = json_object_array_get_idx(command_rows, i), *copy;
                int64_t cid = int_or(row, "id", 0);

                if (int_or(row, "vm_id", 0) != id)
                        continue;
                if (!command_open(row)) {
                        if (cid > last_id) {
                                last_id = cid;
                                last = row;
                        }
                        continue;
                }
                copy = row_with_names(row, node_rows);
                if (!copy || json_object_array_add(open, copy) < 0) {
                        json_object_put(copy);
                        return -ENOMEM;
                }
        }
        placement = row_with(placement_rows, "vm_id", id);
        if (placement && !(placed = row_with_names(placement, node_rows)))
                return -ENOMEM;
        if (json_object_deep_copy(vm_row, &vm_copy, NULL) < 0) {
                json_object_put(placed);
                return -ENOMEM;
        }
        if (haven_json_add(o, "vm", vm_copy) < 0 || haven_json_add(o, "placement", placed) < 0 ||
            haven_json_add(o, "last_migration", last_migration(reports, node_rows)) < 0 ||
            haven_json_add(o, "reports", TAKE_PTR(reports)) < 0 ||
            haven_json_add(o, "commands", TAKE_PTR(open)) < 0 ||
            haven_json_add(o, "last_command", last ? row_with_names(last, node_rows) : NULL) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static void print_field(FILE *f, const char *label, const char *text) {
        _cleanup_free_ char *safe = ctl_text_safe(text);

        fprintf(f, "%-16s%s\n", label, safe ? safe : "");
}

/* "2.3 s" for milliseconds. */
static void format_ms(int64_t ms, char *buf, size_t size) {
        if (ms < 1000)
                snprintf(buf, size, "%" PRId64 " ms", ms);
        else
                snprintf(buf, size, "%" PRId64 ".%" PRId64 " s", ms / 1000, ms % 1000 / 100);
}

static void print_migration(FILE *f, struct json_object *m) {
        const char *error = str_or(m, "error", NULL);
        char text[512], duration[32], downtime[32];
        int64_t down;

        format_ms(int_or(m, "duration_ms", 0), duration, sizeof duration);
        if (error && *error)
                snprintf(text, sizeof text, "from %s to %s failed after %s: %s",
                         str_or(m, "from", "?"), str_or(m, "to", "?"), duration, error);
        else if (haven_json_get_int64(m, "downtime_ms", &down) >= 0) {
                format_ms(down, downtime, sizeof downtime);
                snprintf(text, sizeof text, "from %s to %s in %s (downtime %s)",
                         str_or(m, "from", "?"), str_or(m, "to", "?"), duration, downtime);
        } else
                snprintf(text, sizeof text, "from %s to %s in %s", str_or(m, "from", "?"),
                         str_or(m, "to", "?"), duration);
        print_field(f, "Last migration:", text);
}

static void print_commands(FILE *f, struct json_object *commands) {
        static const char *const titles[] = { "ID", "COMMAND", "TARGET", "STATE", "BY", "AT" };
        _cleanup_(ctl_grid_freep) struct ctl_grid *g = ctl_grid_new(ELEMENTSOF(titles), titles);

        for (size_t i = 0; g && i < array_length(commands); i++) {
                struct json_object *c = json_object_array_get_idx(commands, i);
                char id[24], at[64] = "-";
                int64_t t;

                format_int(c, "id", id, sizeof id);
                if (haven_json_get_int64(c, "requested_at", &t) >= 0)
                        ctl_format_time(t, at, sizeof at);
                (void) ctl_grid_add(g, (const char *const[]){
                                               id, str_or(c, "command", "-"),
                                               str_or(c, "target_node", "-"),
                                               str_or(c, "state", "-"),
                                               str_or(c, "requested_by", "-"), at });
        }
        if (g)
                ctl_grid_print(g, f);
}

void ctl_vm_show_print(FILE *f, struct json_object *s) {
        struct json_object *vm = NULL, *placement = NULL, *reports = NULL, *commands = NULL,
                           *m = NULL, *last = NULL;
        const char *node = str_or(s, "node", NULL), *reason = str_or(s, "reason", NULL);
        char text[512], memory[32];

        (void) haven_json_get_object(s, "vm", &vm);
        (void) haven_json_get_object(s, "placement", &placement);
        (void) haven_json_get_array(s, "reports", &reports);
        (void) haven_json_get_array(s, "commands", &commands);
        (void) haven_json_get_object(s, "last_migration", &m);
        (void) haven_json_get_object(s, "last_command", &last);

        snprintf(text, sizeof text, "%s (id %" PRId64 ")", str_or(s, "name", "?"),
                 int_or(s, "id", 0));
        print_field(f, "VM:", text);
        snprintf(text, sizeof text, "%s%s%s", str_or(s, "state", "-"), node ? " on " : "",
                 node ? node : "");
        print_field(f, "State:", text);
        if (reason)
                print_field(f, "Reason:", reason);
        print_field(f, "Desired:", str_or(vm, "desired_state", "-"));
        snprintf(text, sizeof text, "%s, priority %" PRId64 ", preferred node %s",
                 str_or(s, "ha", "-"), int_or(s, "priority", 0),
                 str_or(s, "preferred_node", "none"));
        print_field(f, "HA:", text);
        format_memory(s, memory, sizeof memory);
        snprintf(text, sizeof text, "%s, %" PRId64 " vCPUs", memory, int_or(vm, "vcpus", 0));
        print_field(f, "Size:", text);
        if (placement) {
                const char *target = str_or(placement, "target_node", NULL);

                snprintf(text, sizeof text, "%s on %s%s%s (generation %" PRId64
                                            ", %" PRId64 " restarts, %" PRId64 " relocations)",
                         str_or(placement, "state", "-"), str_or(placement, "node", "no node"),
                         target ? ", target " : "", target ? target : "",
                         int_or(placement, "generation", 0), int_or(placement, "restarts", 0),
                         int_or(placement, "relocations", 0));
                print_field(f, "Placement:", text);
        } else
                print_field(f, "Placement:", "none (the VM manager has not placed it)");
        if (m)
                print_migration(f, m);

        fputc('\n', f);
        if (array_length(reports) == 0)
                fputs("Reports: none (no node has it)\n", f);
        else {
                static const char *const titles[] = { "NODE", "STATE", "GENERATION", "VNC",
                                                      "ERROR" };
                _cleanup_(ctl_grid_freep) struct ctl_grid *g =
                        ctl_grid_new(ELEMENTSOF(titles), titles);

                for (size_t i = 0; g && i < array_length(reports); i++) {
                        struct json_object *r = json_object_array_get_idx(reports, i), *mig;
                        char generation[24], vnc[24], state[128];

                        format_int(r, "generation", generation, sizeof generation);
                        format_int(r, "vnc_port", vnc, sizeof vnc);
                        snprintf(state, sizeof state, "%s", str_or(r, "state", "-"));
                        if (haven_json_get_object(r, "migration", &mig) >= 0)
                                snprintf(state, sizeof state, "%s (%" PRId64 "%%)",
                                         str_or(r, "state", "-"), int_or(mig, "percent", 0));
                        (void) ctl_grid_add(g, (const char *const[]){
                                                       str_or(r, "node", "-"), state, generation,
                                                       vnc, str_or(r, "error", "-") });
                }
                if (g)
                        ctl_grid_print(g, f);
        }

        fputc('\n', f);
        if (array_length(commands) == 0)
                fputs("Open commands: none\n", f);
        else {
                fputs("Open commands:\n", f);
                print_commands(f, commands);
        }
        if (last) {
                _cleanup_free_ char *line = ctl_vm_command_line(last);
                const char *target = str_or(last, "target_node", NULL);

                snprintf(text, sizeof text, "%" PRId64 " %s%s%s, %s", int_or(last, "id", 0),
                         str_or(last, "command", "?"), target ? " to " : "", target ? target : "",
                         line ? line : "?");
                print_field(f, "Last command:", text);
        }
}

/* ==== Draining a node (pure) ==== */

static int by_name(const void *a, const void *b) {
        return strcmp(str_or(*(struct json_object *const *) a, "name", ""),
                      str_or(*(struct json_object *const *) b, "name", ""));
}

int ctl_node_running_vms(struct json_object *entries, int64_t node_id, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *out = json_object_new_array();

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i), *value = NULL, *m;
                _cleanup_(json_object_putp) struct json_object *o = NULL;
                const char *key = str_or(e, "key", ""), *state;

                if (strncmp(key, "vm/", 3) != 0 || int_or(e, "node", 0) != node_id)
                        continue;
                (void) json_object_object_get_ex(e, "value", &value);
                state = report_state(value);
                if (!state_runs(state))
                        continue;
                o = json_object_new_object();
                if (!o || haven_json_add(o, "name", json_object_new_string(key + 3)) < 0 ||
                    haven_json_add(o, "state", json_object_new_string(state)) < 0)
                        return -ENOMEM;
                if (haven_json_get_object(value, "migration", &m) >= 0 &&
                    haven_json_add(o, "percent", copy_of(m, "percent")) < 0)
                        return -ENOMEM;
                if (json_object_array_add(out, o) < 0)
                        return -ENOMEM;
                TAKE_PTR(o);
        }
        json_object_array_sort(out, by_name);
        *ret = TAKE_PTR(out);
        return 0;
}

char *ctl_node_drain_line(const char *node, struct json_object *running) {
        _cleanup_free_ char *text = NULL, *list = NULL;
        size_t n = array_length(running);

        for (size_t i = 0; i < n; i++) {
                struct json_object *v = json_object_array_get_idx(running, i);
                const char *state = str_or(v, "state", "running");
                int64_t percent;
                char *p;
                int r;

                if (streq(state, "migrating-out") &&
                    haven_json_get_int64(v, "percent", &percent) >= 0)
                        r = asprintf(&p, "%s%s%s (migrating, %" PRId64 "%%)", list ? list : "",
                                     list ? ", " : "", str_or(v, "name", "?"), percent);
                else if (streq(state, "running"))
                        r = asprintf(&p, "%s%s%s", list ? list : "", list ? ", " : "",
                                     str_or(v, "name", "?"));
                else
                        r = asprintf(&p, "%s%s%s (%s)", list ? list : "", list ? ", " : "",
                                     str_or(v, "name", "?"),
                                     streq(state, "migrating-out") ? "migrating" : state);
                if (r < 0)
                        return NULL;
                free(list);
                list = p;
        }
        if ((n == 0 ? asprintf(&text, "%s runs no VM any more.", node)
                    : asprintf(&text, "%s still runs %zu VM%s: %s", node, n, n == 1 ? "" : "s",
                               list)) < 0)
                return NULL;
        return ctl_text_safe(text);
}

/* ==== Reading the domain ==== */

static struct json_object *where_int(const char *key, int64_t value) {
        struct json_object *w = json_object_new_object();

        if (w && haven_json_add(w, key, json_object_new_int64(value)) < 0) {
                json_object_put(w);
                return NULL;
        }
        return w;
}

/* The VM named by arg (name or id): *ret_row (new). Prints and returns
 * CTL_EXIT_FAILED when there is none. */
static int find_vm(struct ctl *c, const char *arg, struct json_object **ret_row) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL;
        struct json_object *where = NULL;
        struct ctl_error error = {};
        int status;

        if (ctl_row_where(ctl_table_find("vms"), arg, &where, &error) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "%s", error.message[0] ? error.message
                                                                        : "out of memory");
        status = ctl_query(c, "vms", where, &rows);
        if (status != CTL_EXIT_OK)
                return status;
        if (array_length(rows) != 1) {
                _cleanup_free_ char *safe = ctl_text_safe(arg);

                return ctl_fail(CTL_EXIT_FAILED,
                                "no VM \"%s\" in the cluster (see \"havenctl vm list\")",
                                safe ? safe : "?");
        }
        *ret_row = json_object_get(json_object_array_get_idx(rows, 0));
        return CTL_EXIT_OK;
}

/* The node named by arg (its name or corosync node id): *ret_row (new). */
static int find_node(struct ctl *c, const char *arg, struct json_object **ret_row) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL;
        int status;

        status = ctl_query(c, "nodes", NULL, &rows);
        if (status != CTL_EXIT_OK)
                return status;
        for (size_t i = 0; i < array_length(rows); i++) {
                struct json_object *n = json_object_array_get_idx(rows, i);
                char number[24];

                snprintf(number, sizeof number, "%" PRId64, int_or(n, "node_id", 0));
                if (streq(str_or(n, "name", ""), arg) || streq(number, arg)) {
                        *ret_row = json_object_get(n);
                        return CTL_EXIT_OK;
                }
        }
        {
                _cleanup_free_ char *safe = ctl_text_safe(arg);

                return ctl_fail(CTL_EXIT_FAILED, "no node \"%s\" in the cluster",
                                safe ? safe : "?");
        }
}

/* Status entries under prefix: *ret (new; an array). */
static int read_entries(struct ctl *c, const char *prefix, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *req = ctl_request_simple("status-read"),
                                                        *reply = NULL;
        struct json_object *entries = NULL;
        int status;

        if (!req || haven_json_add(req, "prefix", json_object_new_string(prefix)) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        status = ctl_call(c, req, 0, &reply, NULL);
        if (status != CTL_EXIT_OK)
                return status;
        if (haven_json_get_array(reply, "entries", &entries) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "haven-domaind sent no status entries");
        *ret = json_object_get(entries);
        return CTL_EXIT_OK;
}

static uint64_t wait_usec(const struct ctl *c, unsigned default_sec) {
        return (uint64_t) (c->timeout_sec ? c->timeout_sec : default_sec) * USEC_PER_SEC;
}

/* ==== vm list / vm show ==== */

int ctl_vm_list(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *vms = NULL, *placements = NULL,
                                                        *nodes = NULL, *entries = NULL,
                                                        *out = NULL;
        int status;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl vm list [--json]");
        status = ctl_query(c, "vms", NULL, &vms);
        if (status == CTL_EXIT_OK)
                status = ctl_query(c, "vm_placements", NULL, &placements);
        if (status == CTL_EXIT_OK)
                status = ctl_query(c, "nodes", NULL, &nodes);
        if (status == CTL_EXIT_OK)
                status = read_entries(c, "vm/", &entries);
        if (status != CTL_EXIT_OK)
                return status;
        if (ctl_vm_list_build(vms, placements, nodes, entries, &out) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        if (c->json)
                ctl_print_json(stdout, out);
        else
                ctl_vm_list_print(stdout, out);
        return CTL_EXIT_OK;
}

int ctl_vm_show(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *vm = NULL, *placements = NULL,
                                                        *nodes = NULL, *entries = NULL,
                                                        *commands = NULL, *out = NULL;
        _cleanup_free_ char *prefix = NULL;
        const char *name;
        int status;

        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl vm show NAME [--json]");
        status = find_vm(c, argv[0], &vm);
        if (status != CTL_EXIT_OK)
                return status;
        name = str_or(vm, "name", "");
        if (asprintf(&prefix, "vm/%s", name) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        status = ctl_query(c, "vm_placements", where_int("vm_id", int_or(vm, "id", 0)),
                           &placements);
        if (status == CTL_EXIT_OK)
                status = ctl_query(c, "nodes", NULL, &nodes);
        if (status == CTL_EXIT_OK)
                status = ctl_query(c, "vm_commands", where_int("vm_id", int_or(vm, "id", 0)),
                                   &commands);
        if (status == CTL_EXIT_OK)
                status = read_entries(c, prefix, &entries);
        if (status != CTL_EXIT_OK)
                return status;
        if (ctl_vm_show_build(vm, placements, nodes, entries, commands, &out) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        if (c->json)
                ctl_print_json(stdout, out);
        else
                ctl_vm_show_print(stdout, out);
        return CTL_EXIT_OK;
}

/* ==== VM commands ==== */

static int command_row(struct ctl *c, int64_t id, struct json_object **ret_row) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL;
        int status;

        status = ctl_query(c, "vm_commands", where_int("id", id), &rows);
        if (status != CTL_EXIT_OK)
                return status;
        if (array_length(rows) != 1)
                return ctl_fail(CTL_EXIT_FAILED,
                                "command %" PRId64 " vanished (was its VM deleted?)", id);
        *ret_row = json_object_get(json_object_array_get_idx(rows, 0));
        return CTL_EXIT_OK;
}

/* The migration's progress of vm as its source reports it: true and
 * *ret_percent while it migrates out. */
static bool migration_percent(struct json_object *entries, const char *key,
                              int64_t *ret_percent) {
        for (size_t i = 0; i < array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i), *value, *m;

                if (!entry_is(e, key) || !json_object_object_get_ex(e, "value", &value) ||
                    haven_json_get_object(value, "migration", &m) < 0)
                        continue;
                *ret_percent = int_or(m, "percent", 0);
                return true;
        }
        return false;
}

/* Waits until command id is done or failed, printing its progress (and a
 * migration's percentage from the VM's reports). */
static int command_follow(struct ctl *c, int64_t id, const char *vm, const char *summary,
                          bool migrate, uint64_t timeout_usec) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *sub = NULL;
        _cleanup_free_ char *last_state = NULL, *key = NULL;
        uint64_t deadline = haven_deadline_usec(timeout_usec), now;
        int64_t shown_percent = -PERCENT_STEP;
        int status;

        if (asprintf(&key, "vm/%s", vm) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        /* Subscribe first: every change after this is announced. */
        status = ctl_subscribe(c,
                               migrate ? (const char *const[]){ "commit", "status", NULL }
                                       : (const char *const[]){ "commit", NULL },
                               &sub);
        if (status != CTL_EXIT_OK)
                return status;
        for (;;) {
                _cleanup_(json_object_putp) struct json_object *row = NULL, *entries = NULL;
                const char *state;
                int64_t percent;

                status = command_row(c, id, &row);
                if (status != CTL_EXIT_OK)
                        return status;
                state = str_or(row, "state", "pending");
                if (!c->json && (!last_state || !streq(last_state, state))) {
                        _cleanup_free_ char *line = ctl_vm_command_line(row);

                        if (!streq(state, "pending"))
                                printf("%s\n", line ? line : state);
                        fflush(stdout);
                        free(last_state);
                        last_state = strdup(state);
                }
                if (streq(state, "done") || streq(state, "failed")) {
                        if (c->json)
                                ctl_print_json(stdout, row);
                        return streq(state, "done") ? CTL_EXIT_OK : CTL_EXIT_FAILED;
                }
                if (migrate && !c->json && streq(state, "running")) {
                        status = read_entries(c, key, &entries);
                        if (status != CTL_EXIT_OK)
                                return status;
                        if (migration_percent(entries, key, &percent) &&
                            (percent >= shown_percent + PERCENT_STEP || percent < shown_percent)) {
                                printf("migrating: %" PRId64 "%%\n", percent);
                                fflush(stdout);
                                shown_percent = percent;
                        }
                }
                now = haven_now_usec(CLOCK_MONOTONIC);
                if (now >= deadline) {
                        _cleanup_free_ char *safe = ctl_text_safe(summary);

                        return ctl_fail(CTL_EXIT_FAILED,
                                        "command %" PRId64 " (%s) is still %s after %" PRIu64
                                        " s; it goes on without havenctl: see \"havenctl vm "
                                        "show %s\"",
                                        id, safe ? safe : "?", state,
                                        (uint64_t) (timeout_usec / USEC_PER_SEC), vm);
                }
                status = ctl_wait_events(sub, MIN_USEC(WAIT_RECHECK_USEC, deadline - now));
                if (status != CTL_EXIT_OK)
                        return status;
        }
}

/* Inserts a vm_commands row for the VM arg names (and, for migrate, the
 * node target names), then follows it unless --no-wait. */
static int vm_command(struct ctl *c, const char *command, const char *arg, const char *target) {
        _cleanup_(json_object_putp) struct json_object *vm = NULL, *node = NULL, *reply = NULL,
                                                        *row = NULL;
        _cleanup_free_ char *summary = NULL;
        struct json_object *ops;
        const char *name, *node_name = NULL;
        int64_t id = 0, target_id = 0;
        int status;

        assert(ctl_vm_command_known(command));
        if (c->no_wait && c->timeout_sec)
                return ctl_fail(CTL_EXIT_USAGE, "--timeout and --no-wait exclude each other");
        status = find_vm(c, arg, &vm);
        if (status != CTL_EXIT_OK)
                return status;
        name = str_or(vm, "name", arg);
        if (target) {
                status = find_node(c, target, &node);
                if (status != CTL_EXIT_OK)
                        return status;
                target_id = int_or(node, "node_id", 0);
                node_name = str_or(node, "name", target);
        }

        summary = ctl_vm_command_summary(command, name, node_name);
        ops = json_object_new_array();
        if (!summary || !ops ||
            json_object_array_add(ops, ctl_vm_command_op(int_or(vm, "id", 0), command,
                                                         target_id)) < 0) {
                json_object_put(ops);
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        }
        status = ctl_submit(c, ops, false, summary, &reply, NULL);
        if (status != CTL_EXIT_OK)
                return status;
        if (!ctl_reply_first_id(reply, &id))
                return ctl_fail(CTL_EXIT_FAILED, "haven-domaind did not say the command's id");

        if (!c->json) {
                _cleanup_free_ char *safe = ctl_text_safe(summary);

                printf("Command %" PRId64 ": %s.\n", id, safe ? safe : "?");
                fflush(stdout);
        }
        if (c->no_wait) {
                if (c->json) {
                        status = command_row(c, id, &row);
                        if (status != CTL_EXIT_OK)
                                return status;
                        ctl_print_json(stdout, row);
                }
                return CTL_EXIT_OK;
        }
        return command_follow(c, id, name, summary, target != NULL,
                              wait_usec(c, target ? CTL_VM_MIGRATE_WAIT_SEC : CTL_VM_WAIT_SEC));
}

static int vm_simple(struct ctl *c, int argc, char **argv, const char *command) {
        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE,
                                "usage: havenctl vm %s NAME [--no-wait] [--timeout S]", command);
        return vm_command(c, command, argv[0], NULL);
}

int ctl_vm_start(struct ctl *c, int argc, char **argv) {
        return vm_simple(c, argc, argv, "start");
}

int ctl_vm_shutdown(struct ctl *c, int argc, char **argv) {
        return vm_simple(c, argc, argv, "shutdown");
}

int ctl_vm_reboot(struct ctl *c, int argc, char **argv) {
        return vm_simple(c, argc, argv, "reboot");
}

int ctl_vm_reset(struct ctl *c, int argc, char **argv) {
        return vm_simple(c, argc, argv, "reset");
}

int ctl_vm_poweroff(struct ctl *c, int argc, char **argv) {
        return vm_simple(c, argc, argv, "poweroff");
}

int ctl_vm_release(struct ctl *c, int argc, char **argv) {
        return vm_simple(c, argc, argv, "release");
}

int ctl_vm_migrate(struct ctl *c, int argc, char **argv) {
        if (argc != 2)
                return ctl_fail(CTL_EXIT_USAGE,
                                "usage: havenctl vm migrate NAME NODE [--no-wait] [--timeout S]");
        return vm_command(c, "migrate", argv[0], argv[1]);
}

/* ==== vm prefer ==== */

int ctl_vm_prefer(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *vm = NULL, *node = NULL, *reply = NULL;
        _cleanup_free_ char *summary = NULL, *safe = NULL;
        struct json_object *values, *ops;
        const char *name, *node_name = NULL;
        int64_t node_id = 0, current = 0;
        bool has_current;
        int status;

        if (argc != (c->none ? 1 : 2))
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl vm prefer NAME NODE|--none");
        status = find_vm(c, argv[0], &vm);
        if (status != CTL_EXIT_OK)
                return status;
        name = str_or(vm, "name", argv[0]);
        if (!c->none) {
                status = find_node(c, argv[1], &node);
                if (status != CTL_EXIT_OK)
                        return status;
                node_id = int_or(node, "node_id", 0);
                node_name = str_or(node, "name", argv[1]);
        }
        has_current = haven_json_get_int64(vm, "preferred_node_id", &current) >= 0;
        if (c->none ? !has_current : has_current && current == node_id) {
                safe = ctl_text_safe(name);
                if (!c->json)
                        printf(c->none ? "%s has no preferred node already.\n"
                                       : "%s prefers %s already.\n",
                               safe ? safe : "?", node_name);
                return CTL_EXIT_OK;
        }

        if ((c->none ? asprintf(&summary, "vm %s: prefer no node", name)
                     : asprintf(&summary, "vm %s: prefer %s", name, node_name)) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        values = json_object_new_object();
        ops = json_object_new_array();
        if (!values || !ops ||
            haven_json_add(values, "preferred_node_id",
                           c->none ? NULL : json_object_new_int64(node_id)) < 0 ||
            json_object_array_add(ops, ctl_op_update("vms", int_or(vm, "id", 0),
                                                     int_or(vm, "version", 0), values)) < 0) {
                json_object_put(ops);
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        }
        /* An operational setting: applied at once, never staged. */
        status = ctl_submit(c, ops, false, summary, &reply, NULL);
        if (status != CTL_EXIT_OK)
                return status;
        if (c->json)
                ctl_print_json(stdout, reply);
        else {
                safe = ctl_text_safe(name);
                if (c->none)
                        printf("%s has no preferred node now.\n", safe ? safe : "?");
                else
                        printf("%s prefers %s now: the VM manager moves it there when it can.\n",
                               safe ? safe : "?", node_name);
        }
        return CTL_EXIT_OK;
}

/* ==== node active / standby / maintenance ==== */

/* The placement reason of the VM named name ("" when none). */
static const char *placement_reason(struct json_object *vm_rows, struct json_object *placements,
                                    const char *name) {
        for (size_t i = 0; i < array_length(vm_rows); i++) {
                struct json_object *vm = json_object_array_get_idx(vm_rows, i);

                if (streq(str_or(vm, "name", ""), name))
                        return str_or(row_with(placements, "vm_id", int_or(vm, "id", 0)),
                                      "reason", "");
        }
        return "";
}

/* Waits until no VM is reported running on node, printing what still
 * runs there (and why it stays, from the placements) when it changes
 * (not with --json: the answer was printed). */
static int node_drain(struct ctl *c, int64_t node_id, const char *node, uint64_t timeout_usec) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *sub = NULL;
        _cleanup_(json_object_putp) struct json_object *reasons = json_object_new_object();
        _cleanup_free_ char *last = NULL;
        uint64_t deadline = haven_deadline_usec(timeout_usec), now;
        int status;

        if (!reasons)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        status = ctl_subscribe(c, (const char *const[]){ "status", "commit", NULL }, &sub);
        if (status != CTL_EXIT_OK)
                return status;
        for (;;) {
                _cleanup_(json_object_putp) struct json_object *entries = NULL, *running = NULL,
                                                                *vms = NULL, *placements = NULL;
                _cleanup_free_ char *line = NULL;
                size_t n;

                status = read_entries(c, "vm/", &entries);
                if (status != CTL_EXIT_OK)
                        return status;
                if (ctl_node_running_vms(entries, node_id, &running) < 0)
                        return ctl_fail(CTL_EXIT_FAILED, "out of memory");
                n = array_length(running);
                line = ctl_node_drain_line(node, running);
                if (!line)
                        return ctl_fail(CTL_EXIT_FAILED, "out of memory");
                if (!last || !streq(last, line)) {
                        if (!c->json)
                                printf("%s\n", line);
                        fflush(stdout);
                        free(last);
                        last = TAKE_PTR(line);
                }
                if (n == 0)
                        return CTL_EXIT_OK;

                /* Why those stay: the manager's reasons, when they change. */
                status = ctl_query(c, "vms", NULL, &vms);
                if (status == CTL_EXIT_OK)
                        status = ctl_query(c, "vm_placements", NULL, &placements);
                if (status != CTL_EXIT_OK)
                        return status;
                for (size_t i = 0; i < n; i++) {
                        const char *vm = str_or(json_object_array_get_idx(running, i), "name", "");
                        const char *reason = placement_reason(vms, placements, vm);
                        _cleanup_free_ char *text = NULL, *safe = NULL;
                        struct json_object *seen = NULL;

                        (void) json_object_object_get_ex(reasons, vm, &seen);
                        if (!*reason || (seen && streq(json_object_get_string(seen), reason)))
                                continue;
                        if (asprintf(&text, "  %s: %s", vm, reason) < 0 ||
                            !(safe = ctl_text_safe(text)) ||
                            haven_json_add(reasons, vm, json_object_new_string(reason)) < 0)
                                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
                        if (!c->json)
                                printf("%s\n", safe);
                        fflush(stdout);
                }

                now = haven_now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return ctl_fail(CTL_EXIT_FAILED,
                                        "%s still runs %zu VM%s after %" PRIu64
                                        " s; it stays in maintenance and they move away when "
                                        "they can (see \"havenctl vm list\")",
                                        node, n, n == 1 ? "" : "s",
                                        (uint64_t) (timeout_usec / USEC_PER_SEC));
                status = ctl_wait_events(sub, MIN_USEC(WAIT_RECHECK_USEC, deadline - now));
                if (status != CTL_EXIT_OK)
                        return status;
        }
}

static int node_state(struct ctl *c, int argc, char **argv, const char *state) {
        _cleanup_(json_object_putp) struct json_object *node = NULL, *reply = NULL;
        _cleanup_free_ char *safe = NULL;
        struct json_object *values, *ops;
        char summary[128];
        const char *name;
        int status;

        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl node %s NODE%s", state,
                                streq(state, "maintenance") ? " [--wait] [--timeout S]" : "");
        if (c->timeout_sec && !c->wait)
                return ctl_fail(CTL_EXIT_USAGE, "--timeout needs --wait");
        status = find_node(c, argv[0], &node);
        if (status != CTL_EXIT_OK)
                return status;
        name = str_or(node, "name", argv[0]);
        safe = ctl_text_safe(name);
        if (!safe)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");

        if (streq(str_or(node, "state", ""), state)) {
                if (!c->json)
                        printf("%s is %s already.\n", safe, state);
        } else {
                snprintf(summary, sizeof summary, "node %s: %s", name, state);
                values = json_object_new_object();
                ops = json_object_new_array();
                if (!values || !ops ||
                    haven_json_add(values, "state", json_object_new_string(state)) < 0 ||
                    json_object_array_add(ops, ctl_op_update("nodes", int_or(node, "id", 0),
                                                             int_or(node, "version", 0),
                                                             values)) < 0) {
                        json_object_put(ops);
                        return ctl_fail(CTL_EXIT_FAILED, "out of memory");
                }
                /* An operational action: at once, never staged. */
                status = ctl_submit(c, ops, false, summary, &reply, NULL);
                if (status != CTL_EXIT_OK)
                        return status;
                if (c->json)
                        ctl_print_json(stdout, reply);
                else if (streq(state, "active"))
                        printf("%s is active: it takes VMs.\n", safe);
                else if (streq(state, "standby"))
                        printf("%s is in standby: it takes no new VMs; what runs there stays.\n",
                               safe);
                else
                        printf("%s is in maintenance: its VMs move away.\n", safe);
                fflush(stdout);
        }
        if (!c->wait)
                return CTL_EXIT_OK;
        return node_drain(c, int_or(node, "node_id", 0), safe,
                          wait_usec(c, CTL_NODE_DRAIN_WAIT_SEC));
}

int ctl_node_active(struct ctl *c, int argc, char **argv) {
        return node_state(c, argc, argv, "active");
}

int ctl_node_standby(struct ctl *c, int argc, char **argv) {
        return node_state(c, argc, argv, "standby");
}

int ctl_node_maintenance(struct ctl *c, int argc, char **argv) {
        return node_state(c, argc, argv, "maintenance");
}
