/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HA manager's decision core (see vmd-decide.h): from one snapshot of
 * membership, fencing, configuration, agent reports, earlier placements and
 * commands to the next placements, fence requests, command outcomes and
 * log lines. Every rule is a named rule_* function; docs/ha.md describes
 * them. The round: observe each VM (id order), place the VMs that need a
 * node (priority order), start migrations (commands, maintenance,
 * failback), then write out what changed.
 * Must not: do I/O, read a clock, keep state between calls, depend on the
 * order of the input arrays, or place a VM of a node that left anywhere
 * else before that node's fence is verified.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haven/macro.h"

#include "vmd-decide.h"

/* ==== Names ==== */

static const char *const node_state_names[_HA_NODE_STATE_MAX] = {
        [HA_NODE_ACTIVE] = "active",
        [HA_NODE_STANDBY] = "standby",
        [HA_NODE_MAINTENANCE] = "maintenance",
};

static const char *const fence_state_names[_HA_FENCE_STATE_MAX] = {
        [HA_FENCE_NONE] = "none",
        [HA_FENCE_PENDING] = "pending",
        [HA_FENCE_DONE] = "done",
        [HA_FENCE_FAILED] = "failed",
};

static const char *const mode_names[_HA_MODE_MAX] = {
        [HA_MODE_OFF] = "off",
        [HA_MODE_ON] = "on",
        [HA_MODE_STICKY] = "sticky",
};

static const char *const desired_names[_HA_DESIRED_MAX] = {
        [HA_DESIRED_STOPPED] = "stopped",
        [HA_DESIRED_RUNNING] = "running",
};

static const char *const runtime_names[_HA_RUNTIME_MAX] = {
        [HA_RUNTIME_RUNNING] = "running",
        [HA_RUNTIME_PAUSED] = "paused",
        [HA_RUNTIME_STOPPED] = "stopped",
        [HA_RUNTIME_CRASHED] = "crashed",
        [HA_RUNTIME_START_FAILED] = "start-failed",
        [HA_RUNTIME_MIGRATING_OUT] = "migrating-out",
};

static const char *const placement_state_names[_HA_PLACEMENT_STATE_MAX] = {
        [HA_PLACEMENT_STOPPED] = "stopped",
        [HA_PLACEMENT_STARTING] = "starting",
        [HA_PLACEMENT_RUNNING] = "running",
        [HA_PLACEMENT_STOPPING] = "stopping",
        [HA_PLACEMENT_MIGRATING] = "migrating",
        [HA_PLACEMENT_RECOVERING] = "recovering",
        [HA_PLACEMENT_WAITING] = "waiting",
        [HA_PLACEMENT_FAILED] = "failed",
};

static const char *const command_kind_names[_HA_COMMAND_KIND_MAX] = {
        [HA_COMMAND_START] = "start",
        [HA_COMMAND_SHUTDOWN] = "shutdown",
        [HA_COMMAND_REBOOT] = "reboot",
        [HA_COMMAND_RESET] = "reset",
        [HA_COMMAND_POWEROFF] = "poweroff",
        [HA_COMMAND_MIGRATE] = "migrate",
        [HA_COMMAND_RELEASE] = "release",
};

static const char *const command_state_names[_HA_COMMAND_STATE_MAX] = {
        [HA_COMMAND_PENDING] = "pending",
        [HA_COMMAND_RUNNING] = "running",
        [HA_COMMAND_DONE] = "done",
        [HA_COMMAND_FAILED] = "failed",
};

static const char *name_of(const char *const *names, size_t n, int value) {
        if (value < 0 || (size_t) value >= n)
                return NULL;
        return names[value];
}

static int value_of(const char *const *names, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (streq(s, names[i]))
                        return (int) i;
        return -EINVAL;
}

#define DEFINE_NAMES(type, prefix, names)                                      \
        const char *prefix##_to_string(type v) {                               \
                return name_of(names, ELEMENTSOF(names), (int) v);             \
        }                                                                      \
        type prefix##_from_string(const char *s) {                             \
                return (type) value_of(names, ELEMENTSOF(names), s);           \
        }

DEFINE_NAMES(enum ha_node_state, ha_node_state, node_state_names)
DEFINE_NAMES(enum ha_fence_state, ha_fence_state, fence_state_names)
DEFINE_NAMES(enum ha_mode, ha_mode, mode_names)
DEFINE_NAMES(enum ha_desired, ha_desired, desired_names)
DEFINE_NAMES(enum ha_runtime, ha_runtime, runtime_names)
DEFINE_NAMES(enum ha_placement_state, ha_placement_state, placement_state_names)
DEFINE_NAMES(enum ha_command_kind, ha_command_kind, command_kind_names)
DEFINE_NAMES(enum ha_command_state, ha_command_state, command_state_names)

/* ==== The round's working state ==== */

struct node_work {
        const struct ha_node *node;
        int64_t load_mib; /* VMs placed here or migrating here */
        int migrations_out, migrations_in;
        bool fence_requested; /* this round */
};

struct command_work {
        const struct ha_command *command;
        enum ha_command_state state;
        const char *result;
};

enum need {
        NEED_NONE,
        NEED_START,    /* desired running, runs nowhere */
        NEED_RECOVER,  /* its node was fenced: from need_node */
        NEED_RELOCATE, /* too many restarts on need_node */
        NEED_PIN,      /* start on need_node only (ha off, its node is back) */
};

struct vm_work {
        const struct ha_vm *vm;
        const struct ha_placement *old; /* NULL: no row yet */
        struct ha_placement p;          /* the decision; reason borrowed */
        const struct ha_report *const *reports; /* by node id */
        size_t n_reports;
        struct command_work *commands; /* by command id */
        size_t n_commands;
        enum ha_desired desired; /* after this round's commands */
        uint32_t sticky_node;    /* after this round's release */
        bool set_desired, clear_sticky;
        enum need need;
        uint32_t need_node;
        const char *notice; /* running: what to show, set by phase 3 */
        struct command_work *migrate_command;
};

struct ctx {
        const struct ha_input *in;
        struct node_work *nodes; /* by id */
        size_t n_nodes;
        struct vm_work *vms; /* by id */
        size_t n_vms;
        const struct ha_report **reports; /* by vm id, node id */
        size_t n_reports;
        struct command_work *commands; /* by vm id, command id */
        size_t n_commands;
        struct vm_work **order; /* by priority (high first), id */
        char **strings;         /* scratch text the working state points to */
        size_t n_strings, cap_strings;
        struct ha_output *out;
        size_t cap_log, cap_fence;
        int r; /* the first error; 0 */
};

static void *grow(void *array, size_t *cap, size_t need, size_t size) {
        size_t n;
        void *p;

        if (need <= *cap)
                return array;
        n = *cap ? *cap * 2 : 16;
        if (n < need)
                n = need;
        p = reallocarray(array, n, size);
        if (!p)
                return NULL;
        *cap = n;
        return p;
}

/* Cuts s to at most max - 1 bytes at a UTF-8 character boundary. */
static void cut_utf8(char *s, size_t max) {
        size_t n = strlen(s);

        if (n < max)
                return;
        n = max - 1;
        while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                n--;
        s[n] = 0;
}

static char *vformat(size_t max, const char *fmt, va_list ap) {
        char *s;

        if (vasprintf(&s, fmt, ap) < 0)
                return NULL;
        cut_utf8(s, max);
        return s;
}

/* Formats scratch text that lives until the end of the round, cut to max
 * bytes (with the terminating zero). Never NULL: on allocation failure the
 * round fails with -ENOMEM and "" stands in. */
static const char *vtext(struct ctx *c, size_t max, const char *fmt,
                         va_list ap) {
        char **strings, *s;

        strings = grow(c->strings, &c->cap_strings, c->n_strings + 1,
                       sizeof(char *));
        if (!strings)
                goto oom;
        c->strings = strings;
        s = vformat(max, fmt, ap);
        if (!s)
                goto oom;
        c->strings[c->n_strings++] = s;
        return s;
oom:
        c->r = -ENOMEM;
        return "";
}

_printf_(3, 4) static const char *text(struct ctx *c, size_t max,
                                       const char *fmt, ...) {
        const char *s;
        va_list ap;

        va_start(ap, fmt);
        s = vtext(c, max, fmt, ap);
        va_end(ap);
        return s;
}

#define reason(c, ...) text(c, HA_REASON_MAX, __VA_ARGS__)

/* Text from outside (an agent's error, a fence's result), shortened so
 * that the decision around it still fits in a reason. NULL stays NULL. */
#define OUTSIDE_TEXT_MAX 256
static const char *outside(struct ctx *c, const char *s) {
        if (!s || strlen(s) < OUTSIDE_TEXT_MAX)
                return s;
        return text(c, OUTSIDE_TEXT_MAX, "%s", s);
}

/* Appends one line to the output's log. */
_printf_(2, 3) static void log_line(struct ctx *c, const char *fmt, ...) {
        struct ha_output *o = c->out;
        char **log, *s;
        va_list ap;

        log = grow(o->log, &c->cap_log, o->n_log + 1, sizeof(char *));
        if (!log) {
                c->r = -ENOMEM;
                return;
        }
        o->log = log;
        va_start(ap, fmt);
        s = vformat(HA_RESULT_MAX, fmt, ap);
        va_end(ap);
        if (!s) {
                c->r = -ENOMEM;
                return;
        }
        o->log[o->n_log++] = s;
}

static const char *plural(unsigned n) {
        return n == 1 ? "" : "s";
}

static const char *str_or_empty(const char *s) {
        return s ?: "";
}

/* ==== Lookups ==== */

static struct node_work *node_get(struct ctx *c, uint32_t id) {
        size_t lo = 0, hi = c->n_nodes;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                uint32_t m = c->nodes[mid].node->id;

                if (m == id)
                        return &c->nodes[mid];
                if (m < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static const char *node_name(struct ctx *c, uint32_t id) {
        struct node_work *n = node_get(c, id);

        return n ? n->node->name : text(c, 32, "node %" PRIu32, id);
}

/* Online, and its agent has reported: VMs there can be acted on. */
static bool node_up(const struct node_work *n) {
        return n && n->node->online && n->node->agent_ready;
}

static const struct ha_report *report_on(const struct vm_work *w,
                                         uint32_t node) {
        for (size_t i = 0; i < w->n_reports; i++)
                if (w->reports[i]->node_id == node)
                        return w->reports[i];
        return NULL;
}

static bool report_active(const struct ha_report *r) {
        return r && (r->state == HA_RUNTIME_RUNNING ||
                     r->state == HA_RUNTIME_PAUSED ||
                     r->state == HA_RUNTIME_MIGRATING_OUT);
}

/* The VM is bound to a node: ha sticky with a sticky node. */
static bool vm_bound(const struct vm_work *w) {
        return w->vm->ha == HA_MODE_STICKY && w->sticky_node != 0;
}

/* How the VM behaves now: a sticky VM that is not bound acts as "on". */
static enum ha_mode vm_mode(const struct vm_work *w) {
        if (w->vm->ha == HA_MODE_STICKY && !w->sticky_node)
                return HA_MODE_ON;
        return w->vm->ha;
}

static bool vm_storage_allows(const struct ha_vm *vm, uint32_t node) {
        if (vm->n_storage_nodes == 0)
                return true;
        for (size_t i = 0; i < vm->n_storage_nodes; i++)
                if (vm->storage_nodes[i] == node)
                        return true;
        return false;
}

/* The node's fence is verified and happened after it left the
 * membership: whatever ran there is off. */
static bool fence_verified(const struct ha_node *n) {
        return n->fence.state == HA_FENCE_DONE &&
               n->fence.finished_at >= n->left_at;
}

/* ==== Placement state and memory ==== */

static bool state_occupies(enum ha_placement_state s) {
        return s == HA_PLACEMENT_STARTING || s == HA_PLACEMENT_RUNNING ||
               s == HA_PLACEMENT_STOPPING || s == HA_PLACEMENT_MIGRATING ||
               s == HA_PLACEMENT_RECOVERING;
}

/* Adds (sign 1) or removes (-1) the VM's memory and migration slots on the
 * nodes its working placement occupies. */
static void load_apply(struct ctx *c, const struct vm_work *w, int sign) {
        const struct ha_placement *p = &w->p;
        int64_t mem = (int64_t) w->vm->memory_mib * sign;
        struct node_work *n;

        if (!state_occupies(p->state))
                return;
        n = node_get(c, p->node);
        if (n)
                n->load_mib += mem;
        if (p->state != HA_PLACEMENT_MIGRATING)
                return;
        if (n)
                n->migrations_out += sign;
        n = node_get(c, p->target);
        if (n) {
                n->load_mib += mem;
                n->migrations_in += sign;
        }
}

/* Sets the working placement, keeping the nodes' memory accounting. */
static void place(struct ctx *c, struct vm_work *w, uint32_t node,
                  enum ha_placement_state state, uint32_t target,
                  const char *why) {
        load_apply(c, w, -1);
        w->p.node = node;
        w->p.state = state;
        w->p.target = target;
        w->p.reason = why ?: "";
        load_apply(c, w, 1);
}

/* A node agent must act on the placement: one generation more than the
 * stored row (once per round, however many changes). */
static void bump(struct vm_work *w) {
        w->p.generation = (w->old ? w->old->generation : 0) + 1;
}

static int64_t node_free_mib(const struct node_work *n) {
        return (int64_t) n->node->memory_mib -
               (int64_t) n->node->host_reserve_mib - n->load_mib;
}

static int64_t shown_mib(int64_t v) {
        return v < 0 ? 0 : v;
}

enum fit {
        FIT_OK,
        FIT_OFFLINE,
        FIT_NOT_READY,
        FIT_NOT_ACTIVE,
        FIT_STORAGE,
        FIT_MEMORY_UNKNOWN,
        FIT_NO_ROOM,
};

/* Rule "allowed nodes": online, reported, active, allowed by the storage,
 * memory known and enough of it free (memory - host reserve - VMs placed
 * there, migrations to it included). */
static enum fit node_fit(const struct vm_work *w, const struct node_work *n) {
        if (!n->node->online)
                return FIT_OFFLINE;
        if (!n->node->agent_ready)
                return FIT_NOT_READY;
        if (n->node->state != HA_NODE_ACTIVE)
                return FIT_NOT_ACTIVE;
        if (!vm_storage_allows(w->vm, n->node->id))
                return FIT_STORAGE;
        if (n->node->memory_mib == 0)
                return FIT_MEMORY_UNKNOWN;
        if (node_free_mib(n) < (int64_t) w->vm->memory_mib)
                return FIT_NO_ROOM;
        return FIT_OK;
}

/* Why node n cannot take the VM, in words. */
static const char *fit_reason(struct ctx *c, const struct vm_work *w,
                              const struct node_work *n, enum fit f) {
        const char *name = n->node->name;

        switch (f) {
        case FIT_OFFLINE:
                return reason(c, "%s is offline", name);
        case FIT_NOT_READY:
                return reason(c, "%s has not reported its VMs yet", name);
        case FIT_NOT_ACTIVE:
                return reason(c, "%s is in %s", name,
                              ha_node_state_to_string(n->node->state));
        case FIT_STORAGE:
                return reason(c, "%s is not one of its storage nodes", name);
        case FIT_MEMORY_UNKNOWN:
                return reason(c, "memory of %s unknown", name);
        case FIT_NO_ROOM:
                return reason(c, "needs %" PRIu64 " MiB; %s has %" PRId64
                                 " MiB free",
                              w->vm->memory_mib, name,
                              shown_mib(node_free_mib(n)));
        case FIT_OK:
                break;
        }
        return "";
}

/* Rule "placement choice": pin != 0 allows only that node; exclude is never
 * chosen. Among the allowed nodes: the preferred node, else the most free
 * memory, the lowest id on ties. Returns the node, or NULL and *ret_why
 * naming the shortfall. */
static struct node_work *choose_node(struct ctx *c, const struct vm_work *w,
                                     uint32_t pin, uint32_t exclude,
                                     const char **ret_why) {
        struct node_work *best = NULL, *tight = NULL, *unknown = NULL, *n;
        const struct ha_vm *vm = w->vm;
        enum fit f;

        if (pin) {
                n = node_get(c, pin);
                if (!n) {
                        *ret_why = reason(c, "node %" PRIu32
                                             " is not in the cluster",
                                          pin);
                        return NULL;
                }
                f = node_fit(w, n);
                if (f == FIT_OK)
                        return n;
                *ret_why = fit_reason(c, w, n, f);
                return NULL;
        }

        if (vm->preferred_node && vm->preferred_node != exclude) {
                n = node_get(c, vm->preferred_node);
                if (n && node_fit(w, n) == FIT_OK)
                        return n;
        }

        for (size_t i = 0; i < c->n_nodes; i++) {
                n = &c->nodes[i];
                if (n->node->id == exclude)
                        continue;
                f = node_fit(w, n);
                if (f == FIT_OK) {
                        if (!best || node_free_mib(n) > node_free_mib(best))
                                best = n;
                } else if (f == FIT_NO_ROOM) {
                        if (!tight || node_free_mib(n) > node_free_mib(tight))
                                tight = n;
                } else if (f == FIT_MEMORY_UNKNOWN && !unknown)
                        unknown = n;
        }
        if (best)
                return best;

        if (tight)
                *ret_why = reason(c, "needs %" PRIu64 " MiB; most free: %s "
                                     "with %" PRId64 " MiB",
                                  vm->memory_mib, tight->node->name,
                                  shown_mib(node_free_mib(tight)));
        else if (unknown)
                *ret_why = reason(c, "needs %" PRIu64 " MiB; memory of %s "
                                     "unknown",
                                  vm->memory_mib, unknown->node->name);
        else if (vm->n_storage_nodes > 0) {
                char names[512] = "";
                size_t len = 0;

                for (size_t i = 0; i < vm->n_storage_nodes; i++) {
                        int k = snprintf(names + len, sizeof(names) - len,
                                         "%s%s", i ? ", " : "",
                                         node_name(c, vm->storage_nodes[i]));
                        if (k < 0 || (size_t) k >= sizeof(names) - len)
                                break;
                        len += (size_t) k;
                }
                *ret_why = reason(c, "no %sactive node online among its "
                                     "storage nodes %s",
                                  exclude ? "other " : "", names);
        } else
                *ret_why = reason(c, "no %sactive node online",
                                  exclude ? "other " : "");
        return NULL;
}

/* ==== Output helpers ==== */

static void command_set(struct ctx *c, struct command_work *cw,
                        enum ha_command_state state, const char *result) {
        cw->state = state;
        cw->result = result;
}

/* Marks a command done or failed and logs it. */
_printf_(5, 6) static void command_finish(struct ctx *c, struct vm_work *w,
                                          struct command_work *cw, bool ok,
                                          const char *fmt, ...) {
        const char *s;
        va_list ap;

        va_start(ap, fmt);
        s = vtext(c, HA_RESULT_MAX, fmt, ap);
        va_end(ap);
        command_set(c, cw, ok ? HA_COMMAND_DONE : HA_COMMAND_FAILED, s);
        log_line(c, "vm '%s': command %" PRId64 " (%s) %s: %s", w->vm->name,
                 cw->command->id, ha_command_kind_to_string(cw->command->kind),
                 ok ? "done" : "failed", s);
}

/* Asks for node n to be fenced (once per round); again: the last fence
 * failed. */
static void fence_request(struct ctx *c, struct node_work *n, bool again) {
        struct ha_output *o = c->out;
        struct ha_fence_request *f;
        char *why;

        if (n->fence_requested)
                return;
        n->fence_requested = true;
        f = grow(o->fence_requests, &c->cap_fence, o->n_fence_requests + 1,
                 sizeof(*f));
        if (!f) {
                c->r = -ENOMEM;
                return;
        }
        o->fence_requests = f;
        if (asprintf(&why, "%s left the membership with HA VMs on it%s",
                     n->node->name,
                     again ? "; asked again after a failed fence" : "") < 0) {
                c->r = -ENOMEM;
                return;
        }
        cut_utf8(why, HA_REASON_MAX);
        o->fence_requests[o->n_fence_requests++] = (struct ha_fence_request) {
                .node = n->node->id,
                .reason = why,
        };
        if (again)
                log_line(c, "node '%s': fencing failed (%s); asking again",
                         n->node->name,
                         str_or_empty(outside(c, n->node->fence.reason)));
        else
                log_line(c, "node '%s': left the membership with HA VMs on "
                            "it; asking to fence it",
                         n->node->name);
}

/* The VM waits (placed on node, or nowhere): logged when the reason
 * changes. */
static void wait_for(struct ctx *c, struct vm_work *w, uint32_t node,
                     const char *why) {
        bool same = w->p.state == HA_PLACEMENT_WAITING &&
                    streq(str_or_empty(w->p.reason), why);

        place(c, w, node, HA_PLACEMENT_WAITING, 0, why);
        if (same || (w->old && w->old->state == HA_PLACEMENT_WAITING &&
                     streq(str_or_empty(w->old->reason), why)))
                return;
        if (strncmp(why, "waiting", 7) == 0)
                log_line(c, "vm '%s': %s", w->vm->name, why);
        else
                log_line(c, "vm '%s': waiting: %s", w->vm->name, why);
}

/* ==== Phase 1: observe each VM ==== */

/* Rule "migration outcome": a migration ends when the target reports the
 * VM running and the source no longer does (placement follows it), or
 * when the source reports it still running after the agent acted on the
 * migration with an error, or when the target left (the VM stays on the
 * source, the failure is remembered in target for the retry back-off). */
static void rule_migration_outcome(struct ctx *c, struct vm_work *w) {
        struct ha_placement *p = &w->p;
        const struct ha_report *rs, *rt;
        struct node_work *dst;
        const char *why;
        uint32_t target;

        if (p->state != HA_PLACEMENT_MIGRATING)
                return;
        rs = report_on(w, p->node);
        rt = report_on(w, p->target);
        dst = node_get(c, p->target);
        target = p->target;

        if (rt && rt->state == HA_RUNTIME_RUNNING && !report_active(rs)) {
                place(c, w, target, HA_PLACEMENT_RUNNING, 0, "");
                return;
        }
        if (rs && rs->state == HA_RUNTIME_RUNNING &&
            rs->generation == p->generation && rs->error)
                why = reason(c, "migration to %s failed: %s",
                             node_name(c, target), outside(c, rs->error));
        else if (rs && rs->state == HA_RUNTIME_RUNNING &&
                 !(dst && dst->node->online))
                why = reason(c, "migration to %s failed: %s left",
                             node_name(c, target), node_name(c, target));
        else
                return;
        place(c, w, p->node, HA_PLACEMENT_RUNNING, target, why);
        p->updated_at = c->in->now;
        log_line(c, "vm '%s': %s; stays on '%s'", w->vm->name, why,
                 node_name(c, p->node));
}

/* Rule "one instance": a VM reported running on several nodes keeps the
 * one it is placed on (else the lowest node id) and the placement moves
 * there; the agents of the other nodes stop theirs, since it is not
 * placed there. A VM found running on one node it is not placed on is
 * placed there. A migration's own two nodes are not counted. */
static void rule_one_instance(struct ctx *c, struct vm_work *w) {
        struct ha_placement *p = &w->p;
        const struct ha_report *first = NULL;
        bool placed_runs = false;
        char names[1024] = "";
        size_t n = 0, len = 0;
        uint32_t keep;

        for (size_t i = 0; i < w->n_reports; i++) {
                const struct ha_report *r = w->reports[i];
                int k;

                if (!report_active(r))
                        continue;
                if (p->state == HA_PLACEMENT_MIGRATING &&
                    (r->node_id == p->node || r->node_id == p->target))
                        continue;
                if (r->node_id == p->node)
                        placed_runs = true;
                if (!first)
                        first = r;
                n++;
                k = snprintf(names + len, sizeof(names) - len, "%s'%s'",
                             len ? ", " : "", node_name(c, r->node_id));
                if (k > 0 && (size_t) k < sizeof(names) - len)
                        len += (size_t) k;
        }
        if (n == 0)
                return;
        if (p->state == HA_PLACEMENT_MIGRATING) {
                log_line(c, "vm '%s': also running on %s while it migrates; "
                            "stopped there",
                         w->vm->name, names);
                return;
        }
        if (n >= 2) {
                keep = placed_runs ? p->node : first->node_id;
                log_line(c, "vm '%s': running on %s; keeps '%s', the others "
                            "stop it",
                         w->vm->name, names, node_name(c, keep));
                if (keep != p->node)
                        place(c, w, keep, HA_PLACEMENT_RUNNING, 0, "");
                return;
        }
        if (first->node_id == p->node)
                return;
        log_line(c, "vm '%s': found running on '%s'; placed there",
                 w->vm->name, node_name(c, first->node_id));
        place(c, w, first->node_id, HA_PLACEMENT_RUNNING, 0, "");
}

/* Rule "restart policy": the VM stopped on its node without being asked
 * (what: how, in words). Within the restart window it is started again
 * on the same node up to restart_max times; then an HA VM is relocated
 * (up to relocate_max times, restarts counted afresh); then it is failed.
 * The counters start afresh when the window (counted from the first stop)
 * has passed. */
static void rule_restart(struct ctx *c, struct vm_work *w, const char *what) {
        struct ha_placement *p = &w->p;
        const struct ha_vm *vm = w->vm;
        uint64_t now = c->in->now;
        const char *why;

        if (w->desired == HA_DESIRED_STOPPED) {
                place(c, w, 0, HA_PLACEMENT_STOPPED, 0, what);
                log_line(c, "vm '%s': %s; stays stopped (desired state is "
                            "stopped)",
                         vm->name, what);
                return;
        }
        if (p->restart_window_start == 0 || now < p->restart_window_start ||
            now - p->restart_window_start >= vm->restart_window_usec) {
                p->restarts = 0;
                p->relocations = 0;
                p->restart_window_start = now;
        }
        if (p->restarts < vm->restart_max) {
                p->restarts++;
                why = reason(c, "%s; restart %u of %u", what, p->restarts,
                             vm->restart_max);
                place(c, w, p->node, HA_PLACEMENT_STARTING, 0, why);
                bump(w);
                log_line(c, "vm '%s': %s; restart %u of %u there", vm->name,
                         what, p->restarts, vm->restart_max);
                return;
        }
        if (vm_mode(w) == HA_MODE_ON && p->relocations < vm->relocate_max) {
                p->relocations++;
                w->need = NEED_RELOCATE;
                w->need_node = p->node;
                log_line(c, "vm '%s': %s after %u restart%s in %" PRIu64
                            " s; relocating (%u of %u)",
                         vm->name, what, p->restarts, plural(p->restarts),
                         vm->restart_window_usec / HA_USEC_PER_SEC,
                         p->relocations, vm->relocate_max);
                p->restarts = 0;
                place(c, w, 0, HA_PLACEMENT_WAITING, 0, what);
                return;
        }
        why = reason(c, "%s; gave up after %u restart%s and %u "
                        "relocation%s within %" PRIu64 " s%s",
                     what, p->restarts, plural(p->restarts), p->relocations,
                     plural(p->relocations),
                     vm->restart_window_usec / HA_USEC_PER_SEC,
                     vm_mode(w) == HA_MODE_ON ? ""
                     : vm_mode(w) == HA_MODE_OFF
                             ? " (ha is off: not relocated)"
                             : " (sticky: not relocated)");
        place(c, w, 0, HA_PLACEMENT_FAILED, 0, why);
        log_line(c, "vm '%s': failed: %s", vm->name, why);
}

/* Rule "agent outcome": what the agent of the VM's node reports about the
 * placement's generation: started (running), stopped as asked, or stopped
 * without being asked / failed to start (the restart policy). Reports of
 * an older generation are about a decision the agent has not acted on
 * yet and are not counted. */
static void rule_agent_outcome(struct ctx *c, struct vm_work *w) {
        struct ha_placement *p = &w->p;
        const struct ha_report *r;
        const char *name, *what;

        if (!p->node || !node_up(node_get(c, p->node)))
                return;
        r = report_on(w, p->node);
        if (!r)
                return;
        name = node_name(c, p->node);

        switch (p->state) {
        case HA_PLACEMENT_STARTING:
        case HA_PLACEMENT_RECOVERING:
        case HA_PLACEMENT_WAITING:
                if (report_active(r)) {
                        if (p->state == HA_PLACEMENT_WAITING)
                                log_line(c, "vm '%s': runs on '%s' again",
                                         w->vm->name, name);
                        place(c, w, p->node, HA_PLACEMENT_RUNNING, 0, "");
                        return;
                }
                if (p->state == HA_PLACEMENT_WAITING)
                        return;
                _fallthrough_;
        case HA_PLACEMENT_RUNNING:
        case HA_PLACEMENT_MIGRATING:
                if (r->generation != p->generation)
                        return;
                /* A plain stopped at this generation is the agent at
                 * work (starting it); only these count. */
                if (r->state == HA_RUNTIME_START_FAILED)
                        what = reason(c, "failed to start on %s: %s", name,
                                      outside(c, r->error)
                                              ?: "no reason given");
                else if (r->state == HA_RUNTIME_CRASHED)
                        what = reason(c, "crashed on %s", name);
                else if (r->state == HA_RUNTIME_STOPPED && r->unexpected)
                        what = reason(c, "shut down by its guest on %s",
                                      name);
                else
                        return;
                rule_restart(c, w, what);
                return;
        case HA_PLACEMENT_STOPPING:
                if (!report_active(r) && r->generation == p->generation)
                        place(c, w, 0, HA_PLACEMENT_STOPPED, 0,
                              reason(c, "stopped on %s", name));
                return;
        case HA_PLACEMENT_STOPPED:
        case HA_PLACEMENT_FAILED:
        case _HA_PLACEMENT_STATE_MAX:
        case _HA_PLACEMENT_STATE_INVALID:
                return;
        }
}

/* Rule "fence before recovery" for an HA VM whose node n left: true when
 * n's fence is verified after it left (recover now). Otherwise the VM
 * waits on n with the reason, and a fence is asked for when none is open:
 * once per node, and again HA_FENCE_RETRY_USEC after a failed one. */
static bool rule_fence_first(struct ctx *c, struct vm_work *w,
                             struct node_work *n) {
        const struct ha_node *node = n->node;
        const struct ha_fence *f = &node->fence;
        bool current = f->finished_at >= node->left_at, again = false;
        const char *unreachable = node->fenceable
                                          ? ""
                                          : "; no fence device reaches it";

        switch (f->state) {
        case HA_FENCE_DONE:
                if (current)
                        return true;
                break;
        case HA_FENCE_PENDING:
                wait_for(c, w, node->id,
                         reason(c, "waiting for %s to be fenced%s",
                                node->name, unreachable));
                return false;
        case HA_FENCE_FAILED:
                if (current && !n->fence_requested &&
                    c->in->now < f->finished_at + HA_FENCE_RETRY_USEC) {
                        wait_for(c, w, node->id,
                                 reason(c, "fencing %s failed: %s; asking "
                                           "again every %" PRIu64 " s",
                                        node->name,
                                        str_or_empty(outside(c, f->reason)),
                                        HA_FENCE_RETRY_USEC /
                                                HA_USEC_PER_SEC));
                        return false;
                }
                again = current;
                break;
        case HA_FENCE_NONE:
        case _HA_FENCE_STATE_MAX:
        case _HA_FENCE_STATE_INVALID:
                break;
        }
        fence_request(c, n, again);
        wait_for(c, w, node->id,
                 reason(c, "waiting for %s to be fenced%s", node->name,
                        unreachable));
        return false;
}

/* Rule "node left": the VM's node is no longer a member of this
 * partition. Whatever ran there may still run, so the VM stays placed on
 * that node until it is fenced or returns:
 *   - desired stopped: stops when the node returns (or is fenced);
 *   - ha off: waits for its node ("node failed; ha is off");
 *   - sticky (bound): waits for its node;
 *   - ha on: fence first, then recover on a survivor (phase 2). */
static void rule_node_left(struct ctx *c, struct vm_work *w) {
        struct ha_placement *p = &w->p;
        struct node_work *n;
        const char *name;

        if (!p->node || p->state == HA_PLACEMENT_STOPPED ||
            p->state == HA_PLACEMENT_FAILED)
                return;
        n = node_get(c, p->node);
        if (n && n->node->online)
                return;
        if (!n) {
                wait_for(c, w, p->node,
                         reason(c, "placed on node %" PRIu32 ", which is "
                                   "not in the cluster",
                                p->node));
                return;
        }
        name = n->node->name;

        if (w->desired == HA_DESIRED_STOPPED) {
                if (fence_verified(n->node)) {
                        place(c, w, 0, HA_PLACEMENT_STOPPED, 0,
                              reason(c, "%s was fenced", name));
                        log_line(c, "vm '%s': stopped: '%s' was fenced",
                                 w->vm->name, name);
                } else if (p->state != HA_PLACEMENT_STOPPING) {
                        place(c, w, p->node, HA_PLACEMENT_STOPPING, 0,
                              reason(c, "stops when %s returns", name));
                        bump(w);
                        log_line(c, "vm '%s': stops when '%s' returns "
                                    "(desired state is stopped)",
                                 w->vm->name, name);
                }
                return;
        }
        if (vm_mode(w) == HA_MODE_OFF) {
                wait_for(c, w, p->node,
                         reason(c, "%s failed; ha is off", name));
                return;
        }
        if (vm_bound(w)) {
                wait_for(c, w, p->node,
                         reason(c, "%s failed; sticky: waits for it", name));
                return;
        }
        if (!rule_fence_first(c, w, n))
                return;
        w->need = NEED_RECOVER;
        w->need_node = p->node;
        place(c, w, 0, HA_PLACEMENT_WAITING, 0, "");
}

/* ==== Phase 1: commands ==== */

/* Whether the running command cw has finished, given the placement now;
 * marks it done or failed if so. */
static void command_check(struct ctx *c, struct vm_work *w,
                          struct command_work *cw) {
        const struct ha_placement *p = &w->p;
        const struct ha_command *cmd = cw->command;
        const struct ha_report *r;

        if (cw->state != HA_COMMAND_RUNNING)
                return;
        switch (cmd->kind) {
        case HA_COMMAND_START:
                if (w->need != NEED_NONE)
                        return; /* phase 2 places it */
                if (p->state == HA_PLACEMENT_RUNNING)
                        command_finish(c, w, cw, true, "running on %s",
                                       node_name(c, p->node));
                else if (p->state == HA_PLACEMENT_FAILED)
                        command_finish(c, w, cw, false, "%s",
                                       str_or_empty(p->reason));
                else if (p->state == HA_PLACEMENT_WAITING)
                        command_finish(c, w, cw, false, "waiting: %s",
                                       str_or_empty(p->reason));
                else if (p->state == HA_PLACEMENT_STOPPED &&
                         w->desired == HA_DESIRED_STOPPED)
                        command_finish(c, w, cw, false,
                                       "desired state changed to stopped");
                return;
        case HA_COMMAND_SHUTDOWN:
        case HA_COMMAND_POWEROFF:
                if (p->state == HA_PLACEMENT_STOPPED ||
                    p->state == HA_PLACEMENT_FAILED)
                        command_finish(c, w, cw, true, "stopped");
                else if (w->desired == HA_DESIRED_RUNNING)
                        command_finish(c, w, cw, false,
                                       "desired state changed to running");
                return;
        case HA_COMMAND_REBOOT:
        case HA_COMMAND_RESET:
                r = report_on(w, p->node);
                if (p->state != HA_PLACEMENT_RUNNING ||
                    !node_up(node_get(c, p->node)))
                        command_finish(c, w, cw, false,
                                       "the VM stopped running where it "
                                       "was to be %s",
                                       cmd->kind == HA_COMMAND_REBOOT
                                               ? "rebooted"
                                               : "reset");
                else if (r && r->command_done == cmd->id)
                        command_finish(c, w, cw, !r->command_failed, "%s",
                                       r->command_result
                                               ?: (r->command_failed
                                                           ? "failed"
                                                           : "done"));
                return;
        case HA_COMMAND_MIGRATE:
                if (p->state == HA_PLACEMENT_MIGRATING &&
                    p->target == cmd->target_node)
                        return;
                if (p->state == HA_PLACEMENT_RUNNING &&
                    p->node == cmd->target_node)
                        command_finish(c, w, cw, true, "running on %s",
                                       node_name(c, p->node));
                else
                        command_finish(c, w, cw, false, "%s",
                                       *str_or_empty(p->reason)
                                               ? p->reason
                                               : "the migration was "
                                                 "interrupted");
                return;
        case HA_COMMAND_RELEASE:
        case _HA_COMMAND_KIND_MAX:
        case _HA_COMMAND_KIND_INVALID:
                command_finish(c, w, cw, true, "done");
                return;
        }
}

static void set_desired(struct vm_work *w, enum ha_desired d) {
        w->desired = d;
        w->set_desired = d != w->vm->desired;
}

/* Rule "commands": the VM's pending commands in id order, until one has
 * to wait for the VM (it runs, and later ones wait for it; only a poweroff
 * overtakes a running shutdown). start: desired running (a failed VM's
 * counters reset); shutdown/poweroff: desired stopped, stopping on its
 * node (poweroff: the agent destroys it); reboot/reset: carried out by the
 * agent of its node; migrate: phase 3; release: unbinds a sticky VM. */
static void rule_commands(struct ctx *c, struct vm_work *w) {
        struct ha_placement *p = &w->p;
        const char *name = w->vm->name;
        bool shutting_down = false;

        for (size_t i = 0; i < w->n_commands; i++) {
                struct command_work *cw = &w->commands[i];
                const struct ha_command *cmd = cw->command;
                struct node_work *n;

                if (cw->state == HA_COMMAND_RUNNING) {
                        if (cmd->kind != HA_COMMAND_SHUTDOWN)
                                return;
                        shutting_down = true;
                        continue;
                }
                if (cw->state != HA_COMMAND_PENDING)
                        continue;
                if (shutting_down) {
                        if (cmd->kind != HA_COMMAND_POWEROFF)
                                return;
                        command_set(c, cw, HA_COMMAND_RUNNING, NULL);
                        log_line(c, "vm '%s': power off on '%s' (command "
                                    "%" PRId64 ")",
                                 name, node_name(c, p->node), cmd->id);
                        return;
                }

                switch (cmd->kind) {
                case HA_COMMAND_START:
                        set_desired(w, HA_DESIRED_RUNNING);
                        if (p->state == HA_PLACEMENT_RUNNING ||
                            p->state == HA_PLACEMENT_MIGRATING) {
                                command_finish(c, w, cw, true,
                                               "already running on %s",
                                               node_name(c, p->node));
                                continue;
                        }
                        if (p->state == HA_PLACEMENT_FAILED) {
                                p->restarts = 0;
                                p->relocations = 0;
                                p->restart_window_start = 0;
                                place(c, w, 0, HA_PLACEMENT_STOPPED, 0, "");
                                log_line(c, "vm '%s': start after failure "
                                            "(command %" PRId64
                                            "): counters reset",
                                         name, cmd->id);
                        }
                        command_set(c, cw, HA_COMMAND_RUNNING, NULL);
                        return;
                case HA_COMMAND_SHUTDOWN:
                case HA_COMMAND_POWEROFF:
                        if (p->state == HA_PLACEMENT_MIGRATING)
                                return; /* after the migration */
                        set_desired(w, HA_DESIRED_STOPPED);
                        w->need = NEED_NONE;
                        n = node_get(c, p->node);
                        if (p->node && !(n && n->node->online))
                                /* Its node is away: it stops when the
                                 * node returns or is fenced. */
                                rule_node_left(c, w);
                        else if ((p->state == HA_PLACEMENT_RUNNING ||
                                  p->state == HA_PLACEMENT_STARTING ||
                                  p->state == HA_PLACEMENT_RECOVERING) &&
                                 node_up(n)) {
                                place(c, w, p->node, HA_PLACEMENT_STOPPING, 0,
                                      reason(c, "%s requested",
                                             ha_command_kind_to_string(
                                                     cmd->kind)));
                                bump(w);
                                log_line(c, "vm '%s': %s on '%s' (command "
                                            "%" PRId64 ")",
                                         name,
                                         cmd->kind == HA_COMMAND_SHUTDOWN
                                                 ? "shut down"
                                                 : "power off",
                                         n->node->name, cmd->id);
                        }
                        if (p->state == HA_PLACEMENT_STOPPING ||
                            (p->node && !node_up(n) &&
                             p->state != HA_PLACEMENT_STOPPED &&
                             p->state != HA_PLACEMENT_FAILED)) {
                                /* Stopping, or on a node that has not
                                 * reported yet: rule_desired_state takes
                                 * it from here. */
                                command_set(c, cw, HA_COMMAND_RUNNING, NULL);
                                return;
                        }
                        if (p->state != HA_PLACEMENT_STOPPED &&
                            p->state != HA_PLACEMENT_FAILED)
                                place(c, w, 0, HA_PLACEMENT_STOPPED, 0,
                                      "stopped on request");
                        command_finish(c, w, cw, true, "not running");
                        continue;
                case HA_COMMAND_REBOOT:
                case HA_COMMAND_RESET:
                        n = node_get(c, p->node);
                        if (p->state != HA_PLACEMENT_RUNNING || !node_up(n)) {
                                command_finish(c, w, cw, false,
                                               "not running (%s)",
                                               ha_placement_state_to_string(
                                                       p->state));
                                continue;
                        }
                        command_set(c, cw, HA_COMMAND_RUNNING, NULL);
                        log_line(c, "vm '%s': %s on '%s' (command %" PRId64
                                    ")",
                                 name, ha_command_kind_to_string(cmd->kind),
                                 n->node->name, cmd->id);
                        return;
                case HA_COMMAND_MIGRATE:
                        w->migrate_command = cw;
                        return;
                case HA_COMMAND_RELEASE:
                        if (!vm_bound(w)) {
                                command_finish(c, w, cw, true,
                                               "not bound to a node");
                                continue;
                        }
                        log_line(c, "vm '%s': released from '%s' (command "
                                    "%" PRId64 ")",
                                 name, node_name(c, w->sticky_node), cmd->id);
                        command_finish(c, w, cw, true, "released from %s",
                                       node_name(c, w->sticky_node));
                        w->sticky_node = 0;
                        w->clear_sticky = true;
                        /* Now an HA VM: if it waits for its node, the
                         * node is fenced and it recovers. */
                        rule_node_left(c, w);
                        continue;
                case _HA_COMMAND_KIND_MAX:
                case _HA_COMMAND_KIND_INVALID:
                        assert_not_reached();
                }
        }
}

/* Rule "desired state": a VM that should be stopped is stopped on its
 * node (or no longer waits); a VM that should run and runs nowhere needs
 * a node (phase 2). An HA-off or bound VM waiting on its node that is
 * back starts there only. A failed VM stays failed until a start. */
static void rule_desired_state(struct ctx *c, struct vm_work *w) {
        struct ha_placement *p = &w->p;
        struct node_work *n = node_get(c, p->node);

        if (w->need != NEED_NONE)
                return;
        if (w->desired == HA_DESIRED_STOPPED) {
                switch (p->state) {
                case HA_PLACEMENT_RUNNING:
                case HA_PLACEMENT_STARTING:
                case HA_PLACEMENT_RECOVERING:
                        if (!node_up(n))
                                return;
                        place(c, w, p->node, HA_PLACEMENT_STOPPING, 0,
                              "desired state is stopped");
                        bump(w);
                        log_line(c, "vm '%s': stop on '%s' (desired state is "
                                    "stopped)",
                                 w->vm->name, n->node->name);
                        return;
                case HA_PLACEMENT_WAITING:
                        if (p->node && !node_up(n))
                                return;
                        place(c, w, 0, HA_PLACEMENT_STOPPED, 0,
                              "desired state is stopped");
                        log_line(c, "vm '%s': no longer waits (desired state "
                                    "is stopped)",
                                 w->vm->name);
                        return;
                default:
                        return;
                }
        }

        if (p->state == HA_PLACEMENT_STOPPED ||
            (p->state == HA_PLACEMENT_WAITING && !p->node)) {
                w->need = NEED_START;
                return;
        }
        if (p->state != HA_PLACEMENT_WAITING || !node_up(n))
                return;
        /* Waiting on its node, which is back and does not run it. */
        if (vm_mode(w) == HA_MODE_OFF) {
                w->need = NEED_PIN;
                w->need_node = p->node;
        } else if (vm_bound(w)) {
                w->need = NEED_PIN;
                w->need_node = w->sticky_node;
        } else
                w->need = NEED_START;
}

static void observe(struct ctx *c, struct vm_work *w) {
        rule_migration_outcome(c, w);
        rule_one_instance(c, w);
        rule_agent_outcome(c, w);
        rule_node_left(c, w);
        for (size_t i = 0; i < w->n_commands; i++)
                command_check(c, w, &w->commands[i]);
        rule_commands(c, w);
        rule_desired_state(c, w);
}

/* ==== Phase 2: placement ==== */

/* Rule "place": a VM that needs a node gets the best allowed one (bound
 * VMs and ha-off VMs waiting for their node: only that node; relocation:
 * not the node it failed on), or waits with the shortfall. Called in
 * priority order, so higher priorities take the room first. */
static void rule_place(struct ctx *c, struct vm_work *w) {
        const char *why = "", *from = NULL;
        uint32_t pin = 0, exclude = 0;
        struct node_work *n;
        enum ha_placement_state state = HA_PLACEMENT_STARTING;
        enum need need;

        switch (w->need) {
        case NEED_START:
                if (vm_bound(w))
                        pin = w->sticky_node;
                break;
        case NEED_PIN:
                pin = w->need_node;
                break;
        case NEED_RECOVER:
                from = node_name(c, w->need_node);
                state = HA_PLACEMENT_RECOVERING;
                break;
        case NEED_RELOCATE:
                from = node_name(c, w->need_node);
                exclude = w->need_node;
                break;
        case NEED_NONE:
                return;
        }
        if (w->desired == HA_DESIRED_STOPPED) {
                /* A shutdown came in the same round. */
                w->need = NEED_NONE;
                if (w->p.state == HA_PLACEMENT_WAITING)
                        place(c, w, 0, HA_PLACEMENT_STOPPED, 0,
                              "stopped on request");
                return;
        }

        need = w->need;
        w->need = NEED_NONE;
        n = choose_node(c, w, pin, exclude, &why);
        if (!n) {
                /* A recovery that waits is like any VM that waits for
                 * room: its node is fenced, it runs nowhere. */
                if (need == NEED_RELOCATE)
                        why = reason(c, "relocation from %s: %s", from, why);
                wait_for(c, w, need == NEED_PIN ? pin : 0, why);
                return;
        }

        switch (need) {
        case NEED_RECOVER:
                why = reason(c, "recovered from fenced node %s", from);
                log_line(c, "vm '%s': recover from fenced node '%s' to '%s'",
                         w->vm->name, from, n->node->name);
                break;
        case NEED_RELOCATE:
                why = reason(c, "relocated from %s", from);
                log_line(c, "vm '%s': relocate from '%s' to '%s'",
                         w->vm->name, from, n->node->name);
                break;
        default:
                why = reason(c, "start on %s", n->node->name);
                log_line(c, "vm '%s': start on '%s'", w->vm->name,
                         n->node->name);
                break;
        }
        place(c, w, n->node->id, state, 0, why);
        bump(w);
}

/* ==== Phase 3: migrations ==== */

/* A live migration of a running VM to dst, if both nodes have a slot. */
static bool migrate(struct ctx *c, struct vm_work *w, struct node_work *dst,
                    const char *why) {
        struct node_work *src = node_get(c, w->p.node);

        if (!src || src->migrations_out >= HA_MIGRATIONS_OUT_MAX ||
            dst->migrations_in >= HA_MIGRATIONS_IN_MAX)
                return false;
        place(c, w, w->p.node, HA_PLACEMENT_MIGRATING, dst->node->id, why);
        bump(w);
        return true;
}

/* An automatic migration of this VM failed less than
 * HA_MIGRATION_RETRY_USEC ago. */
static bool in_backoff(const struct ctx *c, const struct vm_work *w) {
        return w->p.state == HA_PLACEMENT_RUNNING && w->p.target &&
               c->in->now < w->p.updated_at + HA_MIGRATION_RETRY_USEC;
}

/* Whether failback would take the VM to its preferred node: ha on, the
 * preferred node up, active, allowed by the storage, and with room (or it
 * runs there already). */
static bool failback_wanted(struct ctx *c, const struct vm_work *w) {
        uint32_t pref = w->vm->preferred_node;
        struct node_work *n = node_get(c, pref);

        if (vm_mode(w) != HA_MODE_ON || !n)
                return false;
        if (pref == w->p.node)
                return node_up(n) && n->node->state == HA_NODE_ACTIVE &&
                       vm_storage_allows(w->vm, pref);
        return node_fit(w, n) == FIT_OK;
}

/* Rule "migrate command": the VM must be running, the target allowed
 * (online, active, storage, room), the VM not bound elsewhere, and the
 * move must not be one failback would undo. Without a free slot it stays
 * pending. */
static void rule_migrate_command(struct ctx *c, struct vm_work *w) {
        struct command_work *cw = w->migrate_command;
        const struct ha_command *cmd = cw->command;
        struct ha_placement *p = &w->p;
        struct node_work *dst;
        enum fit f;

        if (p->state == HA_PLACEMENT_MIGRATING) {
                command_finish(c, w, cw, false, "already migrating to %s",
                               node_name(c, p->target));
                return;
        }
        if (p->state != HA_PLACEMENT_RUNNING) {
                command_finish(c, w, cw, false, "not running (%s)",
                               ha_placement_state_to_string(p->state));
                return;
        }
        if (cmd->target_node == p->node) {
                command_finish(c, w, cw, true, "already on %s",
                               node_name(c, p->node));
                return;
        }
        dst = node_get(c, cmd->target_node);
        if (!dst) {
                command_finish(c, w, cw, false,
                               "node %" PRIu32 " is not in the cluster",
                               cmd->target_node);
                return;
        }
        if (vm_bound(w)) {
                command_finish(c, w, cw, false,
                               "sticky to %s; release it first",
                               node_name(c, w->sticky_node));
                return;
        }
        f = node_fit(w, dst);
        if (f != FIT_OK) {
                command_finish(c, w, cw, false, "%s",
                               fit_reason(c, w, dst, f));
                return;
        }
        if (w->vm->preferred_node != cmd->target_node &&
            failback_wanted(c, w)) {
                command_finish(c, w, cw, false,
                               "it prefers %s, which can take it: failback "
                               "would move it back; change its preferred "
                               "node first",
                               node_name(c, w->vm->preferred_node));
                return;
        }
        if (!node_up(node_get(c, p->node)))
                return;
        if (!migrate(c, w, dst,
                     reason(c, "migrate to %s (command %" PRId64 ")",
                            dst->node->name, cmd->id)))
                return;
        command_set(c, cw, HA_COMMAND_RUNNING, NULL);
        log_line(c, "vm '%s': migrate from '%s' to '%s' (command %" PRId64 ")",
                 w->vm->name, node_name(c, p->node), dst->node->name, cmd->id);
}

/* Rule "maintenance": a running VM on a node in maintenance live-migrates
 * to the best allowed node (ha on and off alike). A bound VM stays and
 * says so; a VM with nowhere to go stays running and says why. */
static void rule_maintenance(struct ctx *c, struct vm_work *w) {
        struct ha_placement *p = &w->p;
        struct node_work *src, *dst;
        const char *why = "";

        if (p->state != HA_PLACEMENT_RUNNING)
                return;
        src = node_get(c, p->node);
        if (!node_up(src) || src->node->state != HA_NODE_MAINTENANCE)
                return;
        if (vm_bound(w)) {
                w->notice = reason(c, "sticky to %s: stays there during "
                                      "maintenance; release it to move it",
                                   src->node->name);
                return;
        }
        if (in_backoff(c, w) || src->migrations_out >= HA_MIGRATIONS_OUT_MAX)
                return;
        dst = choose_node(c, w, 0, p->node, &why);
        if (!dst) {
                w->notice = reason(c, "stays on %s during maintenance: %s",
                                   src->node->name, why);
                return;
        }
        if (migrate(c, w, dst,
                    reason(c, "%s is in maintenance", src->node->name)))
                log_line(c, "vm '%s': migrate from '%s' to '%s' (%s is in "
                            "maintenance)",
                         w->vm->name, src->node->name, dst->node->name,
                         src->node->name);
}

/* The VM was relocated after too many restarts within its current
 * restart window: it does not go back by itself until the window ends. */
static bool relocated_lately(const struct ctx *c, const struct vm_work *w) {
        const struct ha_placement *p = &w->p;

        return p->relocations > 0 && p->restart_window_start &&
               c->in->now >= p->restart_window_start &&
               c->in->now - p->restart_window_start <
                       w->vm->restart_window_usec;
}

/* Rule "failback": a running HA VM away from its preferred node migrates
 * there when that node is up, active and has room (not a bound VM, not
 * within the back-off of a failed migration, not while it was relocated
 * lately). */
static void rule_failback(struct ctx *c, struct vm_work *w) {
        struct ha_placement *p = &w->p;
        uint32_t pref = w->vm->preferred_node;
        struct node_work *src, *dst;

        if (p->state != HA_PLACEMENT_RUNNING || !pref || pref == p->node ||
            vm_mode(w) != HA_MODE_ON || in_backoff(c, w) ||
            relocated_lately(c, w))
                return;
        src = node_get(c, p->node);
        dst = node_get(c, pref);
        if (!node_up(src) || !dst || node_fit(w, dst) != FIT_OK)
                return;
        if (migrate(c, w, dst,
                    reason(c, "fail back to preferred %s", dst->node->name)))
                log_line(c, "vm '%s': fail back from '%s' to preferred '%s'",
                         w->vm->name, src->node->name, dst->node->name);
}

/* Rule "notice": a running VM's reason says what an administrator should
 * know: a failed migration (during its back-off), why it stays on a node
 * in maintenance, or that its node cannot be fenced (an HA VM there would
 * not be recovered). Logged when it appears. */
static void rule_notice(struct ctx *c, struct vm_work *w) {
        struct ha_placement *p = &w->p;
        struct node_work *n;
        const char *notice = w->notice;

        if (p->state != HA_PLACEMENT_RUNNING || in_backoff(c, w))
                return;
        p->target = 0;
        n = node_get(c, p->node);
        if (!notice && vm_mode(w) == HA_MODE_ON && n && !n->node->fenceable)
                notice = reason(c, "%s cannot be fenced: no recovery if it "
                                   "fails",
                                n->node->name);
        notice = notice ?: "";
        if (streq(notice, str_or_empty(p->reason)))
                return;
        p->reason = notice;
        if (*notice && !(w->old && streq(notice, str_or_empty(w->old->reason))))
                log_line(c, "vm '%s': %s", w->vm->name, notice);
}

/* ==== Input ==== */

static int cmp_node(const void *a, const void *b) {
        uint32_t x = ((const struct node_work *) a)->node->id,
                 y = ((const struct node_work *) b)->node->id;

        return x < y ? -1 : x > y;
}

static int cmp_vm(const void *a, const void *b) {
        int64_t x = ((const struct vm_work *) a)->vm->id,
                y = ((const struct vm_work *) b)->vm->id;

        return x < y ? -1 : x > y;
}

static int cmp_report(const void *a, const void *b) {
        const struct ha_report *x = *(const struct ha_report *const *) a,
                               *y = *(const struct ha_report *const *) b;

        if (x->vm_id != y->vm_id)
                return x->vm_id < y->vm_id ? -1 : 1;
        return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

static int cmp_placement(const void *a, const void *b) {
        int64_t x = (*(const struct ha_placement *const *) a)->vm_id,
                y = (*(const struct ha_placement *const *) b)->vm_id;

        return x < y ? -1 : x > y;
}

static int cmp_command(const void *a, const void *b) {
        const struct ha_command *x = ((const struct command_work *) a)->command,
                                *y = ((const struct command_work *) b)->command;

        if (x->vm_id != y->vm_id)
                return x->vm_id < y->vm_id ? -1 : 1;
        return x->id < y->id ? -1 : x->id > y->id;
}

/* Sorts unless the array is in order already (the glue reads rows by
 * id, so usually it is): one pass instead of n log n comparisons. */
static void sort(void *base, size_t n, size_t size,
                 int (*cmp)(const void *, const void *)) {
        for (size_t i = 1; i < n; i++)
                if (cmp((char *) base + (i - 1) * size,
                        (char *) base + i * size) > 0) {
                        qsort(base, n, size, cmp);
                        return;
                }
}

/* c->order: the VMs by priority (highest first), then id. A counting sort
 * over the priorities of the VMs in id order: linear and stable. */
static int order_by_priority(struct ctx *c) {
        _cleanup_free_ size_t *start = calloc(HA_PRIORITY_MAX + 2,
                                              sizeof(size_t));

        if (!start)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_vms; i++)
                start[HA_PRIORITY_MAX - c->vms[i].vm->priority + 1]++;
        for (size_t k = 1; k <= HA_PRIORITY_MAX + 1; k++)
                start[k] += start[k - 1];
        for (size_t i = 0; i < c->n_vms; i++)
                c->order[start[HA_PRIORITY_MAX - c->vms[i].vm->priority]++] =
                        &c->vms[i];
        return 0;
}

static int cmp_command_id(const void *a, const void *b) {
        const struct vm_work *v = *(struct vm_work *const *) a,
                             *u = *(struct vm_work *const *) b;
        int64_t x = v->migrate_command->command->id,
                y = u->migrate_command->command->id;

        return x < y ? -1 : x > y;
}

static int check_limits(const struct ha_input *in) {
        if (in->n_nodes > HA_NODES_MAX || in->n_vms > HA_VMS_MAX ||
            in->n_placements > HA_VMS_MAX || in->n_reports > HA_REPORTS_MAX ||
            in->n_commands > HA_COMMANDS_MAX)
                return -E2BIG;
        if ((in->n_nodes && !in->nodes) || (in->n_vms && !in->vms) ||
            (in->n_placements && !in->placements) ||
            (in->n_reports && !in->reports) ||
            (in->n_commands && !in->commands))
                return -EINVAL;
        return 0;
}

static int check_node(const struct ha_node *n) {
        if (n->id == 0 || !n->name)
                return -EINVAL;
        if ((unsigned) n->state >= _HA_NODE_STATE_MAX ||
            (unsigned) n->fence.state >= _HA_FENCE_STATE_MAX)
                return -EINVAL;
        /* An offline node must say when it left: a fence that finished
         * before that is about an earlier incident. */
        if (!n->online && n->left_at == 0)
                return -EINVAL;
        return 0;
}

static int check_vm(const struct ha_vm *vm) {
        if (vm->id <= 0 || !vm->name)
                return -EINVAL;
        if ((unsigned) vm->ha >= _HA_MODE_MAX ||
            (unsigned) vm->desired >= _HA_DESIRED_MAX ||
            vm->priority > HA_PRIORITY_MAX)
                return -EINVAL;
        if (vm->n_storage_nodes > HA_STORAGE_NODES_MAX)
                return -E2BIG;
        if (vm->n_storage_nodes && !vm->storage_nodes)
                return -EINVAL;
        return 0;
}

/* Builds the working state: nodes and VMs sorted by id, each VM with its
 * placement, reports and commands. Input for unknown VMs is ignored, so
 * are reports of nodes that are not up. */
static int build(struct ctx *c) {
        const struct ha_input *in = c->in;
        _cleanup_free_ const struct ha_placement **placements = NULL;
        size_t n_reports = 0, n_commands = 0, ri = 0, pi = 0, ci = 0;

        c->nodes = calloc(in->n_nodes ?: 1, sizeof(*c->nodes));
        c->vms = calloc(in->n_vms ?: 1, sizeof(*c->vms));
        c->reports = calloc(in->n_reports ?: 1, sizeof(*c->reports));
        c->commands = calloc(in->n_commands ?: 1, sizeof(*c->commands));
        c->order = calloc(in->n_vms ?: 1, sizeof(*c->order));
        placements = calloc(in->n_placements ?: 1, sizeof(*placements));
        if (!c->nodes || !c->vms || !c->reports || !c->commands || !c->order ||
            !placements)
                return -ENOMEM;

        for (size_t i = 0; i < in->n_nodes; i++) {
                int r = check_node(&in->nodes[i]);

                if (r < 0)
                        return r;
                c->nodes[i].node = &in->nodes[i];
        }
        c->n_nodes = in->n_nodes;
        sort(c->nodes, c->n_nodes, sizeof(*c->nodes), cmp_node);
        for (size_t i = 1; i < c->n_nodes; i++)
                if (c->nodes[i].node->id == c->nodes[i - 1].node->id)
                        return -EINVAL;

        for (size_t i = 0; i < in->n_vms; i++) {
                int r = check_vm(&in->vms[i]);

                if (r < 0)
                        return r;
                c->vms[i].vm = &in->vms[i];
        }
        c->n_vms = in->n_vms;
        sort(c->vms, c->n_vms, sizeof(*c->vms), cmp_vm);
        for (size_t i = 1; i < c->n_vms; i++)
                if (c->vms[i].vm->id == c->vms[i - 1].vm->id)
                        return -EINVAL;

        for (size_t i = 0; i < in->n_reports; i++) {
                const struct ha_report *r = &in->reports[i];

                if ((unsigned) r->state >= _HA_RUNTIME_MAX)
                        return -EINVAL;
                if (!node_up(node_get(c, r->node_id)))
                        continue;
                c->reports[n_reports++] = r;
        }
        c->n_reports = n_reports;
        sort(c->reports, c->n_reports, sizeof(*c->reports), cmp_report);
        for (size_t i = 1; i < c->n_reports; i++)
                if (cmp_report(&c->reports[i], &c->reports[i - 1]) == 0)
                        return -EINVAL;

        for (size_t i = 0; i < in->n_placements; i++) {
                if ((unsigned) in->placements[i].state >=
                    _HA_PLACEMENT_STATE_MAX)
                        return -EINVAL;
                placements[i] = &in->placements[i];
        }
        sort(placements, in->n_placements, sizeof(*placements),
             cmp_placement);
        for (size_t i = 1; i < in->n_placements; i++)
                if (placements[i]->vm_id == placements[i - 1]->vm_id)
                        return -EINVAL;

        for (size_t i = 0; i < in->n_commands; i++) {
                const struct ha_command *cmd = &in->commands[i];

                if ((unsigned) cmd->kind >= _HA_COMMAND_KIND_MAX ||
                    (unsigned) cmd->state >= _HA_COMMAND_STATE_MAX)
                        return -EINVAL;
                if (cmd->state != HA_COMMAND_PENDING &&
                    cmd->state != HA_COMMAND_RUNNING)
                        continue;
                c->commands[n_commands++] = (struct command_work) {
                        .command = cmd,
                        .state = cmd->state,
                };
        }
        c->n_commands = n_commands;
        sort(c->commands, c->n_commands, sizeof(*c->commands), cmp_command);
        for (size_t i = 1; i < c->n_commands; i++)
                if (c->commands[i].command->id ==
                    c->commands[i - 1].command->id)
                        return -EINVAL;

        /* Walk the VMs and the sorted inputs side by side. */
        for (size_t i = 0; i < c->n_vms; i++) {
                struct vm_work *w = &c->vms[i];
                int64_t id = w->vm->id;

                while (pi < in->n_placements && placements[pi]->vm_id < id)
                        pi++;
                if (pi < in->n_placements && placements[pi]->vm_id == id)
                        w->old = placements[pi];
                while (ri < c->n_reports && c->reports[ri]->vm_id < id)
                        ri++;
                w->reports = &c->reports[ri];
                while (ri < c->n_reports && c->reports[ri]->vm_id == id) {
                        ri++;
                        w->n_reports++;
                }
                while (ci < c->n_commands &&
                       c->commands[ci].command->vm_id < id)
                        ci++;
                w->commands = &c->commands[ci];
                while (ci < c->n_commands &&
                       c->commands[ci].command->vm_id == id) {
                        ci++;
                        w->n_commands++;
                }

                if (w->old) {
                        w->p = *w->old;
                        w->p.reason = str_or_empty(w->old->reason);
                } else
                        w->p = (struct ha_placement) {
                                .vm_id = id,
                                .state = HA_PLACEMENT_STOPPED,
                                .reason = "",
                        };
                w->desired = w->vm->desired;
                w->sticky_node = w->vm->sticky_node;
                load_apply(c, w, 1);
        }
        return order_by_priority(c);
}

/* ==== Output ==== */

static bool placement_changed(const struct vm_work *w) {
        const struct ha_placement *o = w->old, *p = &w->p;

        if (!o)
                return p->state != HA_PLACEMENT_STOPPED || p->node ||
                       p->generation || *p->reason;
        return o->node != p->node || o->state != p->state ||
               o->target != p->target ||
               !streq(str_or_empty(o->reason), p->reason) ||
               o->restarts != p->restarts ||
               o->restart_window_start != p->restart_window_start ||
               o->relocations != p->relocations ||
               o->generation != p->generation;
}

static int cmp_fence_request(const void *a, const void *b) {
        uint32_t x = ((const struct ha_fence_request *) a)->node,
                 y = ((const struct ha_fence_request *) b)->node;

        return x < y ? -1 : x > y;
}

static int cmp_command_update(const void *a, const void *b) {
        int64_t x = ((const struct ha_command_update *) a)->id,
                y = ((const struct ha_command_update *) b)->id;

        return x < y ? -1 : x > y;
}

static int emit(struct ctx *c) {
        struct ha_output *o = c->out;
        size_t n_placements = 0, n_changes = 0, n_commands = 0;

        for (size_t i = 0; i < c->n_vms; i++) {
                struct vm_work *w = &c->vms[i];

                n_placements += placement_changed(w);
                n_changes += w->set_desired || w->clear_sticky;
        }
        for (size_t i = 0; i < c->n_commands; i++)
                n_commands += c->commands[i].state !=
                              c->commands[i].command->state;

        o->placements = calloc(n_placements ?: 1, sizeof(*o->placements));
        o->vm_changes = calloc(n_changes ?: 1, sizeof(*o->vm_changes));
        o->commands = calloc(n_commands ?: 1, sizeof(*o->commands));
        if (!o->placements || !o->vm_changes || !o->commands)
                return -ENOMEM;

        for (size_t i = 0; i < c->n_vms; i++) {
                struct vm_work *w = &c->vms[i];

                if (placement_changed(w)) {
                        struct ha_placement *p =
                                &o->placements[o->n_placements++];
                        char *why = strdup(w->p.reason);

                        *p = w->p;
                        p->reason = why;
                        p->updated_at = c->in->now;
                        if (!why)
                                return -ENOMEM;
                }
                if (w->set_desired || w->clear_sticky)
                        o->vm_changes[o->n_vm_changes++] =
                                (struct ha_vm_change) {
                                        .vm_id = w->vm->id,
                                        .set_desired = w->set_desired,
                                        .desired = w->desired,
                                        .clear_sticky = w->clear_sticky,
                                };
        }
        for (size_t i = 0; i < c->n_commands; i++) {
                struct command_work *cw = &c->commands[i];
                struct ha_command_update *u;

                if (cw->state == cw->command->state)
                        continue;
                u = &o->commands[o->n_commands++];
                *u = (struct ha_command_update) {
                        .id = cw->command->id,
                        .vm_id = cw->command->vm_id,
                        .state = cw->state,
                };
                if (cw->result) {
                        u->result = strdup(cw->result);
                        if (!u->result)
                                return -ENOMEM;
                }
        }
        qsort(o->commands, o->n_commands, sizeof(*o->commands),
              cmp_command_update);
        if (o->n_fence_requests > 0)
                qsort(o->fence_requests, o->n_fence_requests,
                      sizeof(*o->fence_requests), cmp_fence_request);
        return 0;
}

/* ==== The round ==== */

uint32_t ha_manager_node(const struct ha_node *nodes, size_t n_nodes,
                         bool quorate) {
        uint32_t best = 0;

        if (!quorate)
                return 0;
        for (size_t i = 0; i < n_nodes; i++)
                if (nodes[i].online && nodes[i].id &&
                    (!best || nodes[i].id < best))
                        best = nodes[i].id;
        return best;
}

static void ctx_done(struct ctx *c) {
        for (size_t i = 0; i < c->n_strings; i++)
                free(c->strings[i]);
        free(c->strings);
        free(c->nodes);
        free(c->vms);
        free(c->reports);
        free(c->commands);
        free(c->order);
}

static int decide(struct ctx *c) {
        const struct ha_input *in = c->in;
        _cleanup_free_ struct vm_work **movers = NULL;
        size_t n_movers = 0, online = 0;
        int r;

        r = check_limits(in);
        if (r < 0)
                return r;
        r = build(c);
        if (r < 0)
                return r;

        /* Rule "quorum": without it, nothing is decided. */
        if (!in->quorate) {
                for (size_t i = 0; i < c->n_nodes; i++)
                        online += c->nodes[i].node->online;
                if (in->was_quorate)
                        log_line(c, "no quorum (%zu of %zu nodes here): "
                                    "deciding nothing",
                                 online, c->n_nodes);
                return c->r;
        }
        if (ha_manager_node(in->nodes, in->n_nodes, true) != in->self)
                return -EPERM;

        /* Phase 1: what happened to each VM, and its commands. */
        for (size_t i = 0; i < c->n_vms; i++)
                observe(c, &c->vms[i]);

        /* Phase 2: VMs that need a node, higher priority first. */
        for (size_t i = 0; i < c->n_vms; i++)
                rule_place(c, c->order[i]);

        /* Phase 3: migrations: commands (in command order), maintenance,
         * failback (in priority order). */
        movers = calloc(c->n_vms ?: 1, sizeof(*movers));
        if (!movers)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_vms; i++)
                if (c->vms[i].migrate_command)
                        movers[n_movers++] = &c->vms[i];
        qsort(movers, n_movers, sizeof(*movers), cmp_command_id);
        for (size_t i = 0; i < n_movers; i++)
                rule_migrate_command(c, movers[i]);
        for (size_t i = 0; i < c->n_vms; i++)
                rule_maintenance(c, c->order[i]);
        for (size_t i = 0; i < c->n_vms; i++)
                rule_failback(c, c->order[i]);

        /* What running VMs show, and the commands that finished. */
        for (size_t i = 0; i < c->n_vms; i++) {
                struct vm_work *w = &c->vms[i];

                rule_notice(c, w);
                for (size_t j = 0; j < w->n_commands; j++)
                        command_check(c, w, &w->commands[j]);
        }
        if (c->r < 0)
                return c->r;
        return emit(c);
}

int ha_decide(const struct ha_input *in, struct ha_output *ret) {
        struct ctx c = {
                .in = in,
                .out = ret,
        };
        int r;

        *ret = (struct ha_output) {};
        r = decide(&c);
        ctx_done(&c);
        if (r < 0)
                ha_output_done(ret);
        return r;
}

void ha_output_done(struct ha_output *o) {
        if (!o)
                return;
        for (size_t i = 0; i < o->n_placements; i++)
                free((char *) o->placements[i].reason);
        free(o->placements);
        for (size_t i = 0; i < o->n_fence_requests; i++)
                free(o->fence_requests[i].reason);
        free(o->fence_requests);
        for (size_t i = 0; i < o->n_commands; i++)
                free(o->commands[i].result);
        free(o->commands);
        free(o->vm_changes);
        for (size_t i = 0; i < o->n_log; i++)
                free(o->log[i]);
        free(o->log);
        *o = (struct ha_output) {};
}
