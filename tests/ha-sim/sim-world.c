/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated cluster haven-ha-sim runs a scenario in: nodes with power
 * and network, corosync's membership (a node is gone or back after
 * SIM_MEMBERSHIP_DELAY), quorum (a majority of all nodes), the fencer (a
 * request is carried out after the node's fence delay, by power-off), node
 * agents that follow their placements as docs/ha.md describes (start 2 s,
 * shutdown 3 s, migration 4 s), and one manager per partition that calls
 * ha_decide() every simulated second, with the placements persisted
 * between rounds. After every second it checks the safety rules.
 * Owns the world of one run; must not touch anything outside it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haven/macro.h"

#include "sim.h"

#define TIME0_USEC (UINT64_C(1700000000) * HA_USEC_PER_SEC)

enum action {
        ACT_NONE,
        ACT_START,
        ACT_SHUTDOWN,
        ACT_MIGRATE,
        ACT_REBOOT,
};

/* A VM on one node, as that node's libvirt and agent see it. */
struct inst {
        bool known;   /* defined here: the agent reports it */
        bool running;
        bool rogue;   /* started by hand (a step), not by an agent */
        enum ha_runtime state; /* when not running */
        bool unexpected;
        uint64_t acted; /* the placement generation acted on */
        char error[128];
        enum action action;
        unsigned due;
        size_t target; /* migrate: node index */
        int64_t command; /* reboot: the command */
        int64_t command_done;
        bool command_failed;
        const char *command_result;
};

struct wnode {
        struct sim_node_config config;
        bool powered, net, member;
        unsigned phys_since; /* powered && net last changed */
        uint64_t left_at;
        bool last_quorate;
        struct ha_fence fence;
        unsigned fence_requested; /* seconds */
        bool violating;
};

struct wvm {
        struct sim_vm_config c;
        unsigned start_fails;
        size_t start_fails_node; /* index + 1 */
        unsigned migrate_fails;
        bool has_placement;
        struct ha_placement placement; /* reason owned */
        bool violating;
};

struct wcommand {
        struct ha_command c;
        char *result;
};

struct world {
        const struct sim_scenario *s;
        unsigned t;
        bool verbose;
        struct wnode nodes[SIM_NODES_MAX];
        size_t n_nodes;
        struct wvm *vms;
        size_t n_vms;
        struct inst *inst; /* [node * n_vms + vm] */
        struct wcommand *commands;
        size_t n_commands;
        struct ha_report *reports;
        size_t n_reports;
        FILE *log;
        char *log_text;
        size_t log_size;
        unsigned violations;
        uint64_t decide_calls;
        int error;
};

static uint64_t now_usec(const struct world *w) {
        return TIME0_USEC + (uint64_t) w->t * HA_USEC_PER_SEC;
}

static struct inst *inst_at(struct world *w, size_t node, size_t vm) {
        return &w->inst[node * w->n_vms + vm];
}

static const char *node_name(const struct world *w, size_t i) {
        return w->nodes[i].config.name;
}

_printf_(3, 4) static void wlog(struct world *w, const char *source,
                                const char *fmt, ...) {
        va_list ap;

        fprintf(w->log, "%4u %s: ", w->t, source);
        va_start(ap, fmt);
        vfprintf(w->log, fmt, ap);
        va_end(ap);
        fputc('\n', w->log);
        if (w->verbose) {
                printf("%4u %s: ", w->t, source);
                va_start(ap, fmt);
                vprintf(fmt, ap);
                va_end(ap);
                putchar('\n');
        }
}

static void agent_log(struct world *w, size_t node, const char *fmt, ...)
        _printf_(3, 4);
static void agent_log(struct world *w, size_t node, const char *fmt, ...) {
        char source[96], line[512];
        va_list ap;

        snprintf(source, sizeof(source), "%s/agent", node_name(w, node));
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        wlog(w, source, "%s", line);
}

_printf_(2, 3) static void violation(struct world *w, const char *fmt, ...) {
        char line[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        wlog(w, "check", "VIOLATION: %s", line);
        w->violations++;
}

/* ==== Setup ==== */

static void vm_fix_pointers(struct wvm *v) {
        v->c.config.name = v->c.name;
        v->c.config.storage_nodes = v->c.storage;
}

static int world_init(struct world *w, const struct sim_scenario *s,
                      bool verbose) {
        *w = (struct world) {
                .s = s,
                .verbose = verbose,
                .n_nodes = s->n_nodes,
                .n_vms = s->n_vms,
        };
        w->log = open_memstream(&w->log_text, &w->log_size);
        w->vms = calloc(s->n_vms ?: 1, sizeof(*w->vms));
        w->inst = calloc((s->n_vms ?: 1) * s->n_nodes, sizeof(*w->inst));
        w->reports = calloc((s->n_vms ?: 1) * s->n_nodes, sizeof(*w->reports));
        if (!w->log || !w->vms || !w->inst || !w->reports)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_nodes; i++)
                w->nodes[i] = (struct wnode) {
                        .config = s->nodes[i],
                        .powered = true,
                        .net = true,
                        .member = true,
                        .last_quorate = true,
                };
        for (size_t j = 0; j < s->n_vms; j++) {
                struct wvm *v = &w->vms[j];

                v->c = s->vms[j];
                vm_fix_pointers(v);
                if (v->c.on) {
                        struct inst *in = inst_at(w, v->c.on - 1, j);

                        v->has_placement = true;
                        v->placement = (struct ha_placement) {
                                .vm_id = v->c.config.id,
                                .node = (uint32_t) v->c.on,
                                .state = HA_PLACEMENT_RUNNING,
                                .generation = 1,
                                .updated_at = TIME0_USEC,
                        };
                        v->placement.reason = strdup("");
                        if (!v->placement.reason)
                                return -ENOMEM;
                        *in = (struct inst) {
                                .known = true,
                                .running = true,
                                .state = HA_RUNTIME_RUNNING,
                                .acted = 1,
                        };
                }
        }
        return 0;
}

static void world_done(struct world *w) {
        for (size_t j = 0; j < w->n_vms; j++)
                free((char *) w->vms[j].placement.reason);
        free(w->vms);
        free(w->inst);
        free(w->reports);
        for (size_t i = 0; i < w->n_commands; i++)
                free(w->commands[i].result);
        free(w->commands);
        if (w->log)
                fclose(w->log);
        free(w->log_text);
}

/* ==== Hardware ==== */

static bool phys_up(const struct wnode *n) {
        return n->powered && n->net;
}

static void set_power(struct world *w, size_t i, bool on) {
        struct wnode *n = &w->nodes[i];
        bool before = phys_up(n);

        if (n->powered == on)
                return;
        n->powered = on;
        if (!on)
                for (size_t j = 0; j < w->n_vms; j++)
                        *inst_at(w, i, j) = (struct inst) {};
        if (phys_up(n) != before)
                n->phys_since = w->t;
}

static void set_network(struct world *w, size_t i, bool on) {
        struct wnode *n = &w->nodes[i];
        bool before = phys_up(n);

        n->net = on;
        if (phys_up(n) != before)
                n->phys_since = w->t;
}

static size_t members(const struct world *w) {
        size_t k = 0;

        for (size_t i = 0; i < w->n_nodes; i++)
                k += w->nodes[i].member;
        return k;
}

static bool quorate(const struct world *w) {
        return 2 * members(w) > w->n_nodes;
}

static void member_list(const struct world *w, char *buf, size_t size) {
        size_t len = 0;

        buf[0] = 0;
        for (size_t i = 0; i < w->n_nodes; i++) {
                int k;

                if (!w->nodes[i].member)
                        continue;
                k = snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
                             node_name(w, i));
                if (k < 0 || (size_t) k >= size - len)
                        break;
                len += (size_t) k;
        }
}

/* Corosync: a node whose power or network changed leaves or joins the
 * membership SIM_MEMBERSHIP_DELAY seconds later. */
static void membership(struct world *w) {
        bool changed[SIM_NODES_MAX] = {};
        bool any = false;
        char list[1024];

        for (size_t i = 0; i < w->n_nodes; i++) {
                struct wnode *n = &w->nodes[i];

                if (phys_up(n) == n->member ||
                    w->t - n->phys_since < SIM_MEMBERSHIP_DELAY)
                        continue;
                n->member = phys_up(n);
                n->left_at = n->member ? 0 : now_usec(w);
                changed[i] = any = true;
        }
        if (!any)
                return;
        member_list(w, list, sizeof(list));
        for (size_t i = 0; i < w->n_nodes; i++)
                if (changed[i])
                        wlog(w, "corosync", "'%s' %s; members: %s (%s)",
                             node_name(w, i),
                             w->nodes[i].member ? "joined" : "left",
                             *list ? list : "none",
                             quorate(w) ? "quorate" : "no quorum");
}

/* The fencer: a pending request is carried out by a member of the quorate
 * partition other than the victim, after the victim's fence delay. */
static void fencer(struct world *w) {
        if (!quorate(w))
                return;
        for (size_t i = 0; i < w->n_nodes; i++) {
                struct wnode *n = &w->nodes[i];
                bool executor = false;

                if (n->fence.state != HA_FENCE_PENDING ||
                    w->t < n->fence_requested + n->config.fence_delay)
                        continue;
                for (size_t k = 0; k < w->n_nodes; k++)
                        executor |= k != i && w->nodes[k].member;
                if (!executor)
                        continue;
                n->fence.finished_at = now_usec(w);
                if (n->config.fence_works) {
                        set_power(w, i, false);
                        n->fence.state = HA_FENCE_DONE;
                        n->fence.reason = NULL;
                        wlog(w, "fencer", "'%s' fenced: power off verified",
                             node_name(w, i));
                } else {
                        n->fence.state = HA_FENCE_FAILED;
                        n->fence.reason = "no answer from the power strip";
                        wlog(w, "fencer", "fencing '%s' failed: %s",
                             node_name(w, i), n->fence.reason);
                }
        }
}

/* ==== Node agents ==== */

static struct wcommand *running_command(struct world *w, size_t vm,
                                        enum ha_command_kind kind) {
        for (size_t i = 0; i < w->n_commands; i++)
                if (w->commands[i].c.vm_id == w->vms[vm].c.config.id &&
                    w->commands[i].c.kind == kind &&
                    w->commands[i].c.state == HA_COMMAND_RUNNING)
                        return &w->commands[i];
        return NULL;
}

static void inst_stopped(struct inst *in, enum ha_runtime state,
                         bool unexpected) {
        in->running = false;
        in->state = state;
        in->unexpected = unexpected;
        in->action = ACT_NONE;
}

/* Finishes the action in progress on node i for VM j when it is due (a
 * graceful shutdown ends at once when a poweroff came meanwhile). */
static void agent_finish(struct world *w, size_t i, size_t j) {
        struct inst *in = inst_at(w, i, j);
        struct wvm *v = &w->vms[j];
        const char *name = v->c.name;

        if (in->action == ACT_SHUTDOWN &&
            running_command(w, j, HA_COMMAND_POWEROFF)) {
                inst_stopped(in, HA_RUNTIME_STOPPED, false);
                agent_log(w, i, "vm '%s' powered off", name);
                return;
        }
        if (in->action == ACT_NONE || in->due > w->t)
                return;

        switch (in->action) {
        case ACT_START:
                in->action = ACT_NONE;
                if (v->start_fails > 0 &&
                    (!v->start_fails_node || v->start_fails_node == i + 1)) {
                        v->start_fails--;
                        inst_stopped(in, HA_RUNTIME_START_FAILED, false);
                        snprintf(in->error, sizeof(in->error),
                                 "simulated start failure");
                        agent_log(w, i, "vm '%s' failed to start", name);
                        return;
                }
                in->running = true;
                in->state = HA_RUNTIME_RUNNING;
                agent_log(w, i, "vm '%s' started", name);
                return;
        case ACT_SHUTDOWN:
                inst_stopped(in, HA_RUNTIME_STOPPED, false);
                agent_log(w, i, "vm '%s' shut down", name);
                return;
        case ACT_MIGRATE: {
                size_t target = in->target;
                struct wnode *t = &w->nodes[target];
                struct inst *to = inst_at(w, target, j);

                in->action = ACT_NONE;
                if (v->migrate_fails > 0 || !phys_up(t)) {
                        if (v->migrate_fails > 0) {
                                v->migrate_fails--;
                                snprintf(in->error, sizeof(in->error),
                                         "simulated migration failure");
                        } else
                                snprintf(in->error, sizeof(in->error),
                                         "%s is unreachable",
                                         node_name(w, target));
                        agent_log(w, i, "vm '%s' migration to '%s' failed",
                                  name, node_name(w, target));
                        return;
                }
                *to = (struct inst) {
                        .known = true,
                        .running = true,
                        .state = HA_RUNTIME_RUNNING,
                        .acted = in->acted,
                };
                *in = (struct inst) {};
                agent_log(w, i, "vm '%s' migrated to '%s'", name,
                          node_name(w, target));
                return;
        }
        case ACT_REBOOT:
                in->action = ACT_NONE;
                in->command_done = in->command;
                in->command_failed = false;
                in->command_result = "rebooted";
                agent_log(w, i, "vm '%s' rebooted", name);
                return;
        case ACT_NONE:
                return;
        }
}

static void agent_begin(struct world *w, struct inst *in, enum action a,
                        unsigned seconds) {
        in->action = a;
        in->due = w->t + seconds;
}

/* The agent acts on a new generation: what it reports is about that
 * generation from now on (stopped, not unexpectedly, until it runs). */
static void agent_new_generation(struct inst *in, uint64_t generation) {
        in->acted = generation;
        in->error[0] = 0;
        in->known = true;
        in->rogue = false;
        if (!in->running) {
                in->state = HA_RUNTIME_STOPPED;
                in->unexpected = false;
        }
}

/* Whether the placement puts the VM on another online node, where it is
 * to run: a copy here is a second instance and is stopped at once. */
static bool placed_elsewhere(struct world *w, const struct ha_placement *p,
                             size_t i) {
        if (!p->node || p->node == i + 1 || p->node > w->n_nodes ||
            !w->nodes[p->node - 1].member)
                return false;
        return p->state == HA_PLACEMENT_STARTING ||
               p->state == HA_PLACEMENT_RUNNING ||
               p->state == HA_PLACEMENT_RECOVERING ||
               p->state == HA_PLACEMENT_MIGRATING ||
               p->state == HA_PLACEMENT_STOPPING;
}

/* The agent of member node i makes VM j match its placement (docs/ha.md,
 * "The node agent"). */
static void agent_act(struct world *w, size_t i, size_t j) {
        struct inst *in = inst_at(w, i, j);
        struct wvm *v = &w->vms[j];
        const struct ha_placement *p = v->has_placement ? &v->placement : NULL;
        const char *name = v->c.name;
        struct wcommand *cmd;

        if (in->action != ACT_NONE)
                return;
        if (!p || p->node != i + 1) {
                if (p && p->state == HA_PLACEMENT_MIGRATING &&
                    p->target == i + 1)
                        return; /* incoming */
                if (in->running && p && placed_elsewhere(w, p, i)) {
                        agent_log(w, i, "vm '%s' stopped here: it is placed "
                                        "on '%s'",
                                  name, node_name(w, p->node - 1));
                        *in = (struct inst) {};
                } else if (!in->running)
                        *in = (struct inst) {};
                return;
        }

        switch (p->state) {
        case HA_PLACEMENT_STARTING:
        case HA_PLACEMENT_RECOVERING:
        case HA_PLACEMENT_RUNNING:
                if (p->generation <= in->acted)
                        break;
                agent_new_generation(in, p->generation);
                if (!in->running)
                        agent_begin(w, in, ACT_START, SIM_START_TIME);
                break;
        case HA_PLACEMENT_STOPPING:
                if (p->generation <= in->acted)
                        break;
                agent_new_generation(in, p->generation);
                if (!in->running)
                        inst_stopped(in, HA_RUNTIME_STOPPED, false);
                else if (running_command(w, j, HA_COMMAND_POWEROFF)) {
                        inst_stopped(in, HA_RUNTIME_STOPPED, false);
                        agent_log(w, i, "vm '%s' powered off", name);
                } else
                        agent_begin(w, in, ACT_SHUTDOWN, SIM_SHUTDOWN_TIME);
                break;
        case HA_PLACEMENT_MIGRATING:
                if (p->generation <= in->acted)
                        break;
                agent_new_generation(in, p->generation);
                if (in->running && p->target && p->target <= w->n_nodes) {
                        in->target = p->target - 1;
                        agent_begin(w, in, ACT_MIGRATE, SIM_MIGRATE_TIME);
                }
                break;
        default:
                break; /* waiting: touch nothing */
        }

        if (p->state != HA_PLACEMENT_RUNNING || in->action != ACT_NONE)
                return;
        cmd = running_command(w, j, HA_COMMAND_RESET);
        if (cmd && in->command_done != cmd->c.id) {
                in->command_done = cmd->c.id;
                in->command_failed = !in->running;
                in->command_result = in->running ? "reset" : "not running here";
                if (in->running)
                        agent_log(w, i, "vm '%s' reset", name);
        }
        cmd = running_command(w, j, HA_COMMAND_REBOOT);
        if (cmd && in->command_done != cmd->c.id) {
                if (!in->running) {
                        in->command_done = cmd->c.id;
                        in->command_failed = true;
                        in->command_result = "not running here";
                } else {
                        in->command = cmd->c.id;
                        agent_begin(w, in, ACT_REBOOT, SIM_REBOOT_TIME);
                }
        }
}

static void agent_report(struct world *w, size_t i, size_t j) {
        struct inst *in = inst_at(w, i, j);
        struct ha_report *r;

        if (!in->known && !in->running)
                return;
        r = &w->reports[w->n_reports++];
        *r = (struct ha_report) {
                .vm_id = w->vms[j].c.config.id,
                .node_id = (uint32_t) i + 1,
                .state = in->running ? HA_RUNTIME_RUNNING : in->state,
                .unexpected = in->unexpected,
                .generation = in->acted,
                .error = in->error[0] ? in->error : NULL,
                .command_done = in->command_done,
                .command_failed = in->command_failed,
                .command_result = in->command_result,
        };
        if (in->running && in->action == ACT_MIGRATE) {
                r->state = HA_RUNTIME_MIGRATING_OUT;
                r->target_node = (uint32_t) in->target + 1;
        }
}

/* Every powered node finishes what is due; the agents of members report
 * and act on their placements. An agent cut off from the membership acts
 * on nothing new (its copy of the domain is stale). */
static void agents(struct world *w) {
        w->n_reports = 0;
        for (size_t i = 0; i < w->n_nodes; i++) {
                if (!w->nodes[i].powered)
                        continue;
                for (size_t j = 0; j < w->n_vms; j++) {
                        agent_finish(w, i, j);
                        if (!w->nodes[i].member)
                                continue;
                        /* The status is published before the agent acts
                         * on new placements, as a real agent's status
                         * lags its work: the manager sees reports about
                         * generations older than its latest decision. */
                        agent_report(w, i, j);
                        agent_act(w, i, j);
                }
        }
}

/* ==== Steps ==== */

static int apply_step(struct world *w, const struct sim_step *st) {
        struct wvm *v = st->vm < w->n_vms ? &w->vms[st->vm] : NULL;
        struct wnode *n = &w->nodes[st->node];

        wlog(w, "cmd", "%s", st->text);
        switch (st->kind) {
        case SIM_STEP_POWER:
                set_power(w, st->node, st->on);
                return 0;
        case SIM_STEP_NETWORK:
                set_network(w, st->node, st->on);
                return 0;
        case SIM_STEP_NODE_STATE:
                n->config.state = st->state;
                return 0;
        case SIM_STEP_FENCE_WORKS:
        case SIM_STEP_FENCE_FAILS:
                n->config.fence_works = st->kind == SIM_STEP_FENCE_WORKS;
                return 0;
        case SIM_STEP_FENCE_DELAY:
                n->config.fence_delay = st->count;
                return 0;
        case SIM_STEP_MEMORY:
                n->config.memory_mib = st->value;
                return 0;
        case SIM_STEP_VM_CRASH:
        case SIM_STEP_VM_GUEST_SHUTDOWN:
                for (size_t i = 0; i < w->n_nodes; i++) {
                        struct inst *in = inst_at(w, i, st->vm);

                        if (!in->running || in->rogue)
                                continue;
                        inst_stopped(in,
                                     st->kind == SIM_STEP_VM_CRASH
                                             ? HA_RUNTIME_CRASHED
                                             : HA_RUNTIME_STOPPED,
                                     true);
                        break;
                }
                return 0;
        case SIM_STEP_VM_START_FAILS:
                v->start_fails = st->count;
                v->start_fails_node = st->only_node;
                return 0;
        case SIM_STEP_VM_MIGRATE_FAILS:
                v->migrate_fails = st->count;
                return 0;
        case SIM_STEP_VM_ROGUE:
                *inst_at(w, st->node, st->vm) = (struct inst) {
                        .known = true,
                        .running = true,
                        .rogue = true,
                        .state = HA_RUNTIME_RUNNING,
                };
                return 0;
        case SIM_STEP_COMMAND: {
                struct wcommand *c = reallocarray(w->commands, w->n_commands + 1,
                                                  sizeof(*c));

                if (!c)
                        return -ENOMEM;
                w->commands = c;
                w->commands[w->n_commands] = (struct wcommand) {
                        .c = {
                                .id = (int64_t) w->n_commands + 1,
                                .vm_id = v->c.config.id,
                                .kind = st->command,
                                .state = HA_COMMAND_PENDING,
                                .target_node = (uint32_t) st->only_node,
                        },
                };
                w->n_commands++;
                return 0;
        }
        case SIM_STEP_SET:
                for (char **a = st->assignments; *a; a++) {
                        _cleanup_free_ char *copy = strdup(*a);
                        const char *error;
                        char *eq;

                        if (!copy)
                                return -ENOMEM;
                        eq = strchr(copy, '=');
                        *eq = 0;
                        if (sim_vm_option(w->s, &v->c, copy, eq + 1, &error) < 0)
                                return -EINVAL; /* checked when parsed */
                }
                vm_fix_pointers(v);
                return 0;
        }
        return 0;
}

/* ==== The manager ==== */

/* The decision as text, to compare two decisions and for -v. */
static char *output_text(const struct ha_output *o) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < o->n_placements; i++) {
                const struct ha_placement *p = &o->placements[i];

                fprintf(f, "placement vm=%" PRId64 " node=%" PRIu32 " %s "
                           "target=%" PRIu32 " restarts=%u window=%" PRIu64
                           " relocations=%u gen=%" PRIu64 " reason=%s\n",
                        p->vm_id, p->node, ha_placement_state_to_string(p->state),
                        p->target, p->restarts, p->restart_window_start,
                        p->relocations, p->generation, p->reason);
        }
        for (size_t i = 0; i < o->n_fence_requests; i++)
                fprintf(f, "fence node=%" PRIu32 " reason=%s\n",
                        o->fence_requests[i].node, o->fence_requests[i].reason);
        for (size_t i = 0; i < o->n_commands; i++)
                fprintf(f, "command %" PRId64 " %s %s\n", o->commands[i].id,
                        ha_command_state_to_string(o->commands[i].state),
                        o->commands[i].result ?: "");
        for (size_t i = 0; i < o->n_vm_changes; i++)
                fprintf(f, "vm %" PRId64 " desired=%s/%s clear_sticky=%d\n",
                        o->vm_changes[i].vm_id,
                        o->vm_changes[i].set_desired ? "set" : "keep",
                        ha_desired_to_string(o->vm_changes[i].desired),
                        o->vm_changes[i].clear_sticky);
        for (size_t i = 0; i < o->n_log; i++)
                fprintf(f, "log %s\n", o->log[i]);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

struct input_buf {
        struct ha_input in;
        struct ha_node nodes[SIM_NODES_MAX];
        struct ha_vm *vms;
        struct ha_placement *placements;
        struct ha_command *commands;
        struct ha_report *reports;
};

static void input_buf_done(struct input_buf *b) {
        free(b->vms);
        free(b->placements);
        free(b->commands);
        free(b->reports);
}

/* The manager's input, arrays in id order or (reverse) backwards. */
static int input_build(struct world *w, uint32_t self, bool reverse,
                       struct input_buf *b) {
        size_t n = 0;

        *b = (struct input_buf) {};
        b->vms = calloc(w->n_vms ?: 1, sizeof(*b->vms));
        b->placements = calloc(w->n_vms ?: 1, sizeof(*b->placements));
        b->commands = calloc(w->n_commands ?: 1, sizeof(*b->commands));
        b->reports = calloc(w->n_reports ?: 1, sizeof(*b->reports));
        if (!b->vms || !b->placements || !b->commands || !b->reports)
                return -ENOMEM;

#define AT(i, count) (reverse ? (count) - 1 - (i) : (i))
        for (size_t i = 0; i < w->n_nodes; i++) {
                const struct wnode *node = &w->nodes[i];

                b->nodes[AT(i, w->n_nodes)] = (struct ha_node) {
                        .id = (uint32_t) i + 1,
                        .name = node->config.name,
                        .state = node->config.state,
                        .online = node->member,
                        .agent_ready = node->member,
                        .memory_mib = node->config.memory_mib,
                        .host_reserve_mib = node->config.reserve_mib,
                        .fenceable = node->config.fence_works,
                        .fence = node->fence,
                        .left_at = node->left_at,
                };
        }
        for (size_t j = 0; j < w->n_vms; j++) {
                b->vms[AT(j, w->n_vms)] = w->vms[j].c.config;
                if (w->vms[j].has_placement)
                        b->placements[n++] = w->vms[j].placement;
        }
        if (reverse)
                for (size_t a = 0, z = n; a + 1 < z; a++, z--) {
                        struct ha_placement t = b->placements[a];

                        b->placements[a] = b->placements[z - 1];
                        b->placements[z - 1] = t;
                }
        for (size_t i = 0; i < w->n_commands; i++)
                b->commands[AT(i, w->n_commands)] = w->commands[i].c;
        for (size_t i = 0; i < w->n_reports; i++)
                b->reports[AT(i, w->n_reports)] = w->reports[i];
#undef AT
        b->in = (struct ha_input) {
                .now = now_usec(w),
                .self = self,
                .quorate = quorate(w),
                .was_quorate = w->nodes[self - 1].last_quorate,
                .nodes = b->nodes,
                .n_nodes = w->n_nodes,
                .vms = b->vms,
                .n_vms = w->n_vms,
                .reports = b->reports,
                .n_reports = w->n_reports,
                .placements = b->placements,
                .n_placements = n,
                .commands = b->commands,
                .n_commands = w->n_commands,
        };
        return 0;
}

/* The safety rules a decision must keep before it is written: a VM starts
 * or migrates only to a member, and a VM of a node that left starts
 * elsewhere only after that node's fence is verified. */
static void check_decision(struct world *w, const struct ha_output *o) {
        for (size_t k = 0; k < o->n_placements; k++) {
                const struct ha_placement *p = &o->placements[k];
                size_t j = (size_t) p->vm_id - 1;
                const struct ha_placement *old =
                        w->vms[j].has_placement ? &w->vms[j].placement : NULL;
                const char *name = w->vms[j].c.name;
                bool starts = p->state == HA_PLACEMENT_STARTING ||
                              p->state == HA_PLACEMENT_RECOVERING;

                if ((starts || p->state == HA_PLACEMENT_MIGRATING) &&
                    (!p->node || p->node > w->n_nodes ||
                     !w->nodes[p->node - 1].member))
                        violation(w, "vm '%s' placed on a node that is not "
                                     "online",
                                  name);
                if (p->state == HA_PLACEMENT_MIGRATING &&
                    (!p->target || p->target > w->n_nodes ||
                     !w->nodes[p->target - 1].member))
                        violation(w, "vm '%s' migrates to a node that is not "
                                     "online",
                                  name);
                if (starts && old && old->node && old->node != p->node &&
                    old->node <= w->n_nodes) {
                        const struct wnode *gone = &w->nodes[old->node - 1];

                        if (!gone->member &&
                            !(gone->fence.state == HA_FENCE_DONE &&
                              gone->fence.finished_at >= gone->left_at))
                                violation(w, "vm '%s' started on '%s' before "
                                             "'%s' was fenced",
                                          name, node_name(w, p->node - 1),
                                          gone->config.name);
                }
        }
}

static void apply_decision(struct world *w, const struct ha_output *o,
                           uint32_t self) {
        char source[96];

        snprintf(source, sizeof(source), "%s/manager",
                 node_name(w, self - 1));
        for (size_t i = 0; i < o->n_log; i++)
                wlog(w, source, "%s", o->log[i]);
        for (size_t k = 0; k < o->n_placements; k++) {
                struct wvm *v = &w->vms[o->placements[k].vm_id - 1];
                char *why = strdup(o->placements[k].reason);

                if (!why) {
                        w->error = -ENOMEM;
                        return;
                }
                free((char *) v->placement.reason);
                v->placement = o->placements[k];
                v->placement.reason = why;
                v->has_placement = true;
        }
        for (size_t k = 0; k < o->n_fence_requests; k++) {
                struct wnode *n = &w->nodes[o->fence_requests[k].node - 1];

                if (n->fence.state == HA_FENCE_PENDING)
                        violation(w, "a second fence request for '%s'",
                                  n->config.name);
                n->fence = (struct ha_fence) {
                        .state = HA_FENCE_PENDING,
                        .requested_at = now_usec(w),
                };
                n->fence_requested = w->t;
        }
        for (size_t k = 0; k < o->n_commands; k++) {
                struct wcommand *c = &w->commands[o->commands[k].id - 1];

                c->c.state = o->commands[k].state;
                free(c->result);
                c->result = o->commands[k].result
                                    ? strdup(o->commands[k].result)
                                    : NULL;
        }
        for (size_t k = 0; k < o->n_vm_changes; k++) {
                struct wvm *v = &w->vms[o->vm_changes[k].vm_id - 1];

                if (o->vm_changes[k].set_desired)
                        v->c.config.desired = o->vm_changes[k].desired;
                if (o->vm_changes[k].clear_sticky)
                        v->c.config.sticky_node = 0;
        }
}

/* One round of the manager of the members' partition, twice: with the
 * arrays in order and backwards; both decisions must be the same. */
static int manager_round(struct world *w) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct input_buf in = {}, rin = {};
        struct ha_output out = {}, rout = {};
        uint32_t self = 0;
        bool q = quorate(w);
        int r;

        for (size_t i = 0; i < w->n_nodes && !self; i++)
                if (w->nodes[i].member)
                        self = (uint32_t) i + 1;
        if (!self)
                return 0;
        r = input_build(w, self, false, &in);
        if (r >= 0)
                r = input_build(w, self, true, &rin);
        if (r >= 0) {
                r = ha_decide(&in.in, &out);
                w->decide_calls++;
        }
        if (r >= 0) {
                r = ha_decide(&rin.in, &rout);
                w->decide_calls++;
        }
        if (r < 0) {
                wlog(w, "check", "ha_decide() failed: %s", strerror(-r));
                w->violations++;
                goto out;
        }
        a = output_text(&out);
        b = output_text(&rout);
        if (!a || !b) {
                r = -ENOMEM;
                goto out;
        }
        if (!streq(a, b))
                violation(w, "the decision depends on the input's order");
        if (w->verbose && *a)
                printf("---- decision at %u:\n%s", w->t, a);
        check_decision(w, &out);
        apply_decision(w, &out, self);
        for (size_t i = 0; i < w->n_nodes; i++)
                if (w->nodes[i].member)
                        w->nodes[i].last_quorate = q;
out:
        ha_output_done(&out);
        ha_output_done(&rout);
        input_buf_done(&in);
        input_buf_done(&rin);
        return r < 0 ? r : w->error;
}

/* A powered node cut off from the others is a partition of its own, with
 * its own manager and no quorum: it decides nothing. */
static int isolated_rounds(struct world *w) {
        for (size_t i = 0; i < w->n_nodes; i++) {
                struct wnode *n = &w->nodes[i];
                struct ha_node nodes[SIM_NODES_MAX];
                struct ha_output out = {};
                struct ha_input in;
                char source[96];
                int r;

                if (!n->powered || n->member || n->net)
                        continue;
                for (size_t k = 0; k < w->n_nodes; k++)
                        nodes[k] = (struct ha_node) {
                                .id = (uint32_t) k + 1,
                                .name = w->nodes[k].config.name,
                                .online = k == i,
                                .agent_ready = k == i,
                                .left_at = k == i ? 0 : now_usec(w),
                        };
                in = (struct ha_input) {
                        .now = now_usec(w),
                        .self = (uint32_t) i + 1,
                        .quorate = 2 > w->n_nodes,
                        .was_quorate = n->last_quorate,
                        .nodes = nodes,
                        .n_nodes = w->n_nodes,
                };
                if (in.quorate)
                        continue;
                r = ha_decide(&in, &out);
                w->decide_calls++;
                if (r < 0)
                        return r;
                if (out.n_placements || out.n_fence_requests ||
                    out.n_commands || out.n_vm_changes)
                        violation(w, "'%s' decided without quorum",
                                  n->config.name);
                snprintf(source, sizeof(source), "%s/manager",
                         n->config.name);
                for (size_t k = 0; k < out.n_log; k++)
                        wlog(w, source, "%s", out.log[k]);
                ha_output_done(&out);
                n->last_quorate = false;
        }
        return 0;
}

/* ==== Safety ==== */

/* No VM runs on two nodes (copies started by hand excepted): checked on
 * the hardware itself, isolated nodes included. */
static void check_world(struct world *w) {
        for (size_t j = 0; j < w->n_vms; j++) {
                size_t count = 0;
                char where[256] = "";
                size_t len = 0;

                for (size_t i = 0; i < w->n_nodes; i++) {
                        struct inst *in = inst_at(w, i, j);
                        int k;

                        if (!w->nodes[i].powered || !in->running || in->rogue)
                                continue;
                        count++;
                        k = snprintf(where + len, sizeof(where) - len, "%s'%s'",
                                     len ? ", " : "", node_name(w, i));
                        if (k > 0 && (size_t) k < sizeof(where) - len)
                                len += (size_t) k;
                }
                if (count > 1 && !w->vms[j].violating)
                        violation(w, "vm '%s' runs on %s", w->vms[j].c.name,
                                  where);
                w->vms[j].violating = count > 1;
        }
}

/* ==== Run ==== */

int sim_run(const struct sim_scenario *s, bool verbose,
            struct sim_result *ret) {
        struct world w;
        size_t next = 0;
        int r;

        r = world_init(&w, s, verbose);
        for (w.t = 0; r >= 0 && w.t <= s->duration; w.t++) {
                while (r >= 0 && next < s->n_steps && s->steps[next].at == w.t)
                        r = apply_step(&w, &s->steps[next++]);
                if (r < 0)
                        break;
                membership(&w);
                fencer(&w);
                agents(&w);
                r = manager_round(&w);
                if (r >= 0)
                        r = isolated_rounds(&w);
                check_world(&w);
        }
        if (r >= 0 && fflush(w.log) != 0)
                r = -ENOMEM;
        if (r >= 0) {
                *ret = (struct sim_result) {
                        .log = strdup(w.log_text ?: ""),
                        .violations = w.violations,
                        .decide_calls = w.decide_calls,
                };
                if (!ret->log)
                        r = -ENOMEM;
        }
        world_done(&w);
        return r;
}
