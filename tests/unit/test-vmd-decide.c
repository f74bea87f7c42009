/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HA decision core's contract in small cases the simulator cannot
 * reach (tests/ha-sim replays whole scenarios): input checks and limits,
 * quorum and the manager role, agents that have not reported, stale
 * reports, fence requests, long texts, and a property test over random
 * clusters (order independence, no start on an absent node, no recovery
 * before a verified fence, no overcommitted memory).
 * Bad inputs tried: duplicate node ids, node id 0, a NULL node or VM name,
 * an offline node without a leave time, duplicate VM ids, VM id 0,
 * priority 1001, an out-of-range mode, desired state, node state, fence
 * state, runtime, placement state, command kind or command state, two
 * reports for one VM from one node, two placements for one VM, two
 * commands with one id, storage lists longer than the limit, NULL arrays
 * with a count, too many nodes; a self that is not the manager; an agent
 * error of 5000 bytes of multi-byte characters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haven/macro.h"

#include "../../daemons/vmd/vmd-decide.h"

#define NOW (UINT64_C(1700000000) * HA_USEC_PER_SEC)
#define SEC HA_USEC_PER_SEC

/* ==== A small cluster ==== */

struct cluster {
        struct ha_node nodes[8];
        struct ha_vm vms[8];
        struct ha_placement placements[8];
        struct ha_report reports[8];
        struct ha_command commands[8];
        struct ha_input in;
};

/* Three active nodes of 4096 MiB, node1 the manager; VMs added with
 * add_vm. */
static void cluster_init(struct cluster *c) {
        static const char *const names[] = {"node1", "node2", "node3"};

        *c = (struct cluster) {};
        for (size_t i = 0; i < 3; i++)
                c->nodes[i] = (struct ha_node) {
                        .id = (uint32_t) i + 1,
                        .name = names[i],
                        .online = true,
                        .agent_ready = true,
                        .memory_mib = 4096,
                        .fenceable = true,
                };
        c->in = (struct ha_input) {
                .now = NOW,
                .self = 1,
                .quorate = true,
                .was_quorate = true,
                .nodes = c->nodes,
                .n_nodes = 3,
                .vms = c->vms,
                .placements = c->placements,
                .reports = c->reports,
                .commands = c->commands,
        };
}

/* An HA VM of 512 MiB that should run; if node != 0 it runs there
 * (placement and report, generation 1). */
static struct ha_vm *add_vm(struct cluster *c, const char *name,
                            uint32_t node) {
        struct ha_vm *vm = &c->vms[c->in.n_vms++];

        *vm = (struct ha_vm) {
                .id = (int64_t) c->in.n_vms,
                .name = name,
                .ha = HA_MODE_ON,
                .priority = 500,
                .memory_mib = 512,
                .restart_max = 3,
                .restart_window_usec = 600 * SEC,
                .relocate_max = 1,
                .desired = HA_DESIRED_RUNNING,
        };
        if (node) {
                c->placements[c->in.n_placements++] = (struct ha_placement) {
                        .vm_id = vm->id,
                        .node = node,
                        .state = HA_PLACEMENT_RUNNING,
                        .reason = "",
                        .generation = 1,
                };
                c->reports[c->in.n_reports++] = (struct ha_report) {
                        .vm_id = vm->id,
                        .node_id = node,
                        .state = HA_RUNTIME_RUNNING,
                        .generation = 1,
                };
        }
        return vm;
}

static void node_leaves(struct cluster *c, uint32_t id, uint64_t at) {
        c->nodes[id - 1].online = false;
        c->nodes[id - 1].agent_ready = false;
        c->nodes[id - 1].left_at = at;
}

static const struct ha_placement *placement_of(const struct ha_output *o,
                                               int64_t vm_id) {
        for (size_t i = 0; i < o->n_placements; i++)
                if (o->placements[i].vm_id == vm_id)
                        return &o->placements[i];
        return NULL;
}

static bool log_has(const struct ha_output *o, const char *text) {
        for (size_t i = 0; i < o->n_log; i++)
                if (strstr(o->log[i], text))
                        return true;
        return false;
}

static int decide(struct cluster *c, struct ha_output *o) {
        return ha_decide(&c->in, o);
}

/* ==== Quorum and the manager ==== */

static void without_quorum_nothing_is_decided(void **state) {
        struct ha_output o;
        struct cluster c;

        cluster_init(&c);
        add_vm(&c, "web1", 2);
        node_leaves(&c, 2, NOW - 10 * SEC);
        node_leaves(&c, 3, NOW - 10 * SEC);
        c.in.quorate = false;
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_placements, 0);
        assert_int_equal(o.n_fence_requests, 0);
        assert_int_equal(o.n_commands, 0);
        assert_int_equal(o.n_log, 1);
        assert_non_null(strstr(o.log[0], "no quorum (1 of 3 nodes here)"));
        ha_output_done(&o);

        /* Said once: the next round without quorum is silent. */
        c.in.was_quorate = false;
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_log, 0);
        ha_output_done(&o);
}

static void only_the_lowest_online_node_manages(void **state) {
        struct ha_output o;
        struct cluster c;

        cluster_init(&c);
        assert_int_equal(ha_manager_node(c.nodes, 3, true), 1);
        assert_int_equal(ha_manager_node(c.nodes, 3, false), 0);
        c.in.self = 2;
        assert_int_equal(decide(&c, &o), -EPERM);
        assert_int_equal(o.n_log, 0);
        node_leaves(&c, 1, NOW - SEC);
        assert_int_equal(ha_manager_node(c.nodes, 3, true), 2);
        assert_int_equal(decide(&c, &o), 0);
        ha_output_done(&o);
}

/* ==== Input checks ==== */

static void check_refused(struct cluster *c, int want, const char *what) {
        struct ha_output o;
        int r = decide(c, &o);

        if (r != want)
                fail_msg("%s: got %d, want %d", what, r, want);
        assert_null(o.placements);
        assert_int_equal(o.n_log, 0);
}

static void inputs_that_break_the_contract_are_refused(void **state) {
        static const uint32_t many[HA_STORAGE_NODES_MAX + 1] = {1};
        struct cluster c;

#define REFUSED(want, change)                                                  \
        do {                                                                   \
                cluster_init(&c);                                              \
                add_vm(&c, "web1", 1);                                         \
                add_vm(&c, "web2", 2);                                         \
                change;                                                        \
                check_refused(&c, want, #change);                              \
        } while (0)

        REFUSED(-EINVAL, c.nodes[1].id = 1);
        REFUSED(-EINVAL, c.nodes[2].id = 0);
        REFUSED(-EINVAL, c.nodes[2].name = NULL);
        REFUSED(-EINVAL, c.nodes[2].online = false);
        REFUSED(-EINVAL, c.nodes[2].state = (enum ha_node_state) 7);
        REFUSED(-EINVAL, c.nodes[2].fence.state = (enum ha_fence_state) 9);
        REFUSED(-EINVAL, c.vms[1].id = 1);
        REFUSED(-EINVAL, c.vms[1].id = 0);
        REFUSED(-EINVAL, c.vms[1].name = NULL);
        REFUSED(-EINVAL, c.vms[1].priority = HA_PRIORITY_MAX + 1);
        REFUSED(-EINVAL, c.vms[1].ha = (enum ha_mode) 3);
        REFUSED(-EINVAL, c.vms[1].desired = (enum ha_desired) -1);
        REFUSED(-EINVAL, c.reports[1] = c.reports[0]);
        REFUSED(-EINVAL, c.reports[1].state = (enum ha_runtime) 6);
        REFUSED(-EINVAL, c.placements[1].vm_id = 1);
        REFUSED(-EINVAL,
                c.placements[1].state = _HA_PLACEMENT_STATE_MAX);
        REFUSED(-EINVAL, (c.commands[0] = (struct ha_command) {.id = 4,
                                                              .vm_id = 1},
                          c.commands[1] = (struct ha_command) {.id = 4,
                                                              .vm_id = 2},
                          c.in.n_commands = 2));
        REFUSED(-EINVAL, (c.commands[0] = (struct ha_command) {
                                  .id = 4,
                                  .vm_id = 1,
                                  .kind = _HA_COMMAND_KIND_MAX},
                          c.in.n_commands = 1));
        REFUSED(-EINVAL, (c.commands[0] = (struct ha_command) {
                                  .id = 4,
                                  .vm_id = 1,
                                  .state = (enum ha_command_state) 4},
                          c.in.n_commands = 1));
        REFUSED(-E2BIG, (c.vms[0].storage_nodes = many,
                         c.vms[0].n_storage_nodes = ELEMENTSOF(many)));
        REFUSED(-EINVAL, c.vms[0].n_storage_nodes = 1);
        REFUSED(-EINVAL, (c.in.commands = NULL, c.in.n_commands = 1));
        REFUSED(-E2BIG, c.in.n_nodes = HA_NODES_MAX + 1);
#undef REFUSED
}

static void input_for_unknown_vms_and_nodes_is_ignored(void **state) {
        struct ha_output o;
        struct cluster c;

        cluster_init(&c);
        add_vm(&c, "web1", 1);
        c.reports[c.in.n_reports++] = (struct ha_report) {
                .vm_id = 99, .node_id = 2, .state = HA_RUNTIME_RUNNING};
        c.reports[c.in.n_reports++] = (struct ha_report) {
                .vm_id = 1, .node_id = 77, .state = HA_RUNTIME_RUNNING};
        c.placements[c.in.n_placements++] = (struct ha_placement) {
                .vm_id = 98, .node = 3, .state = HA_PLACEMENT_RUNNING};
        c.commands[c.in.n_commands++] = (struct ha_command) {
                .id = 1, .vm_id = 97, .kind = HA_COMMAND_START};
        /* Finished commands are history. */
        c.commands[c.in.n_commands++] = (struct ha_command) {
                .id = 2, .vm_id = 1, .kind = HA_COMMAND_SHUTDOWN,
                .state = HA_COMMAND_DONE};
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_placements, 0);
        assert_int_equal(o.n_commands, 0);
        assert_int_equal(o.n_log, 0);
        ha_output_done(&o);
}

/* ==== Agents and reports ==== */

static void nothing_is_decided_about_vms_of_an_unreported_node(void **state) {
        struct ha_output o;
        struct cluster c;

        cluster_init(&c);
        add_vm(&c, "web1", 2);
        add_vm(&c, "new", 0);
        c.vms[1].preferred_node = 2;
        /* node2 rejoined, its agent has not published its VMs yet: web1
         * may well run there, so it is neither restarted nor moved, and
         * nothing new is started there. */
        c.nodes[1].agent_ready = false;
        c.placements[0].state = HA_PLACEMENT_WAITING;
        c.placements[0].reason = "waiting for node2 to be fenced";
        c.in.n_reports = 0;
        assert_int_equal(decide(&c, &o), 0);
        assert_null(placement_of(&o, 1));
        assert_non_null(placement_of(&o, 2));
        assert_int_equal(placement_of(&o, 2)->node, 1);
        assert_int_equal(o.n_fence_requests, 0);
        ha_output_done(&o);

        /* Reported: web1 runs there again. */
        c.nodes[1].agent_ready = true;
        c.reports[0] = (struct ha_report) {.vm_id = 1, .node_id = 2,
                                           .state = HA_RUNTIME_RUNNING,
                                           .generation = 1};
        c.in.n_reports = 1;
        assert_int_equal(decide(&c, &o), 0);
        assert_non_null(placement_of(&o, 1));
        assert_int_equal(placement_of(&o, 1)->state, HA_PLACEMENT_RUNNING);
        assert_int_equal(placement_of(&o, 1)->node, 2);
        ha_output_done(&o);
}

static void a_report_older_than_the_decision_is_not_counted(void **state) {
        struct ha_output o;
        struct cluster c;

        cluster_init(&c);
        add_vm(&c, "web1", 1);
        c.reports[0].state = HA_RUNTIME_CRASHED;
        c.reports[0].unexpected = true;
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(placement_of(&o, 1)->state, HA_PLACEMENT_STARTING);
        assert_int_equal(placement_of(&o, 1)->restarts, 1);
        assert_int_equal(placement_of(&o, 1)->generation, 2);
        assert_int_equal(placement_of(&o, 1)->restart_window_start, NOW);
        assert_int_equal(placement_of(&o, 1)->updated_at, NOW);

        /* The next round, before the agent acted on generation 2: the
         * crash report (generation 1) is the same crash. */
        c.placements[0] = *placement_of(&o, 1);
        c.placements[0].reason = "";
        ha_output_done(&o);
        c.in.now += SEC;
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_placements, 0);
        assert_int_equal(o.n_log, 0);
        ha_output_done(&o);
}

static void a_plain_stop_while_starting_is_not_a_crash(void **state) {
        struct ha_output o;
        struct cluster c;

        cluster_init(&c);
        add_vm(&c, "web1", 1);
        c.placements[0].state = HA_PLACEMENT_STARTING;
        c.placements[0].generation = 2;
        c.reports[0] = (struct ha_report) {.vm_id = 1, .node_id = 1,
                                           .state = HA_RUNTIME_STOPPED,
                                           .generation = 2};
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_placements, 0);
        ha_output_done(&o);

        c.reports[0].state = HA_RUNTIME_START_FAILED;
        c.reports[0].error = "no such disk";
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(placement_of(&o, 1)->restarts, 1);
        assert_true(log_has(&o, "failed to start on node1: no such disk"));
        ha_output_done(&o);
}

/* ==== Fencing ==== */

static void a_lost_node_is_fenced_once_and_recovery_waits(void **state) {
        struct ha_output o;
        struct cluster c;

        cluster_init(&c);
        add_vm(&c, "web1", 2);
        add_vm(&c, "web2", 2);
        node_leaves(&c, 2, NOW - 3 * SEC);
        c.in.n_reports = 0;
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_fence_requests, 1);
        assert_int_equal(o.fence_requests[0].node, 2);
        assert_non_null(strstr(o.fence_requests[0].reason, "node2 left"));
        for (int64_t id = 1; id <= 2; id++) {
                assert_int_equal(placement_of(&o, id)->state,
                                 HA_PLACEMENT_WAITING);
                assert_int_equal(placement_of(&o, id)->node, 2);
                assert_string_equal(placement_of(&o, id)->reason,
                                    "waiting for node2 to be fenced");
        }
        ha_output_done(&o);

        /* A request is open: not asked again. */
        c.nodes[1].fence = (struct ha_fence) {.state = HA_FENCE_PENDING,
                                              .requested_at = NOW};
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_fence_requests, 0);
        ha_output_done(&o);

        /* A fence from before the node left is about something else. */
        c.nodes[1].fence = (struct ha_fence) {.state = HA_FENCE_DONE,
                                              .finished_at = NOW - 4 * SEC};
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_fence_requests, 1);
        ha_output_done(&o);

        /* Verified after it left: both recover elsewhere. */
        c.nodes[1].fence.finished_at = NOW - SEC;
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_fence_requests, 0);
        for (int64_t id = 1; id <= 2; id++) {
                assert_int_equal(placement_of(&o, id)->state,
                                 HA_PLACEMENT_RECOVERING);
                assert_int_not_equal(placement_of(&o, id)->node, 2);
        }
        ha_output_done(&o);
}

static void a_failed_fence_is_asked_again_after_the_back_off(void **state) {
        struct ha_output o;
        struct cluster c;

        cluster_init(&c);
        add_vm(&c, "web1", 2);
        node_leaves(&c, 2, NOW - 30 * SEC);
        c.in.n_reports = 0;
        c.nodes[1].fence = (struct ha_fence) {.state = HA_FENCE_FAILED,
                                              .finished_at = NOW - 20 * SEC,
                                              .reason = "timeout"};
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_fence_requests, 0);
        assert_string_equal(placement_of(&o, 1)->reason,
                            "fencing node2 failed: timeout; asking again "
                            "every 60 s");
        ha_output_done(&o);

        c.in.now = NOW - 20 * SEC + HA_FENCE_RETRY_USEC;
        assert_int_equal(decide(&c, &o), 0);
        assert_int_equal(o.n_fence_requests, 1);
        ha_output_done(&o);
}

/* ==== Texts ==== */

/* Whether s is well-formed UTF-8 (2- and 3-byte sequences are enough
 * here). */
static bool utf8_valid(const char *s) {
        for (const unsigned char *u = (const unsigned char *) s; *u;) {
                size_t n = *u < 0x80 ? 1 : (*u & 0xe0) == 0xc0 ? 2
                                         : (*u & 0xf0) == 0xe0 ? 3 : 0;

                if (n == 0)
                        return false;
                for (size_t i = 1; i < n; i++)
                        if ((u[i] & 0xc0) != 0x80)
                                return false;
                u += n;
        }
        return true;
}

static void long_agent_errors_are_cut_at_a_character(void **state) {
        struct ha_output o;
        struct cluster c;
        char *error = malloc(5001);
        const struct ha_placement *p;

        assert_non_null(error);
        for (size_t i = 0; i < 5000; i += 2)
                memcpy(error + i, "\xc3\xa9", 2); /* é */
        error[5000] = 0;
        cluster_init(&c);
        add_vm(&c, "web1", 1);
        c.placements[0].state = HA_PLACEMENT_STARTING;
        c.reports[0].state = HA_RUNTIME_START_FAILED;
        c.reports[0].error = error;
        assert_int_equal(decide(&c, &o), 0);
        p = placement_of(&o, 1);
        /* The error is shortened, at a character boundary, so that the
         * decision around it still shows. */
        assert_true(strlen(p->reason) < 300);
        assert_true(utf8_valid(p->reason));
        assert_non_null(strstr(p->reason, "node1: \xc3\xa9\xc3\xa9"));
        assert_non_null(strstr(p->reason, "\xc3\xa9; restart 1 of 3"));
        for (size_t i = 0; i < o.n_log; i++) {
                assert_true(strlen(o.log[i]) < HA_RESULT_MAX);
                assert_true(utf8_valid(o.log[i]));
        }
        ha_output_done(&o);
        free(error);
}

static void names_round_trip(void **state) {
        for (int i = 0; i < _HA_PLACEMENT_STATE_MAX; i++)
                assert_int_equal(ha_placement_state_from_string(
                                         ha_placement_state_to_string(i)),
                                 i);
        for (int i = 0; i < _HA_COMMAND_KIND_MAX; i++)
                assert_int_equal(ha_command_kind_from_string(
                                         ha_command_kind_to_string(i)),
                                 i);
        for (int i = 0; i < _HA_RUNTIME_MAX; i++)
                assert_int_equal(ha_runtime_from_string(ha_runtime_to_string(i)),
                                 i);
        assert_string_equal(ha_runtime_to_string(HA_RUNTIME_START_FAILED),
                            "start-failed");
        assert_string_equal(ha_node_state_to_string(HA_NODE_MAINTENANCE),
                            "maintenance");
        assert_int_equal(ha_mode_from_string("sticky"), HA_MODE_STICKY);
        assert_int_equal(ha_mode_from_string("Sticky"), _HA_MODE_INVALID);
        assert_int_equal(ha_desired_from_string(NULL), _HA_DESIRED_INVALID);
        assert_int_equal(ha_fence_state_from_string("done"), HA_FENCE_DONE);
        assert_int_equal(ha_command_state_from_string("running"),
                         HA_COMMAND_RUNNING);
        assert_null(ha_command_state_to_string(_HA_COMMAND_STATE_MAX));
        assert_null(ha_node_state_to_string(_HA_NODE_STATE_INVALID));
        ha_output_done(NULL);
}

/* ==== Random clusters ==== */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n) {
        rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
        return (uint32_t) (rng_state >> 33) % n;
}

#define R_NODES 6
#define R_VMS 40

struct random_cluster {
        char names[R_NODES + R_VMS][32];
        struct ha_node nodes[R_NODES];
        struct ha_vm vms[R_VMS];
        uint32_t storage[R_VMS][2];
        struct ha_placement placements[R_VMS];
        struct ha_report reports[R_VMS * 2];
        struct ha_command commands[R_VMS];
        struct ha_input in;
};

static void random_cluster(struct random_cluster *rc) {
        static const enum ha_placement_state states[] = {
                HA_PLACEMENT_STOPPED,  HA_PLACEMENT_STARTING,
                HA_PLACEMENT_RUNNING,  HA_PLACEMENT_RUNNING,
                HA_PLACEMENT_STOPPING, HA_PLACEMENT_MIGRATING,
                HA_PLACEMENT_RECOVERING, HA_PLACEMENT_WAITING,
                HA_PLACEMENT_FAILED,
        };
        size_t n_nodes = 2 + rnd(R_NODES - 1), online = 0;

        *rc = (struct random_cluster) {};
        for (size_t i = 0; i < n_nodes; i++) {
                struct ha_node *n = &rc->nodes[i];

                snprintf(rc->names[i], sizeof(rc->names[i]), "node%zu", i + 1);
                *n = (struct ha_node) {
                        .id = (uint32_t) i + 1,
                        .name = rc->names[i],
                        .state = rnd(5) == 0 ? (enum ha_node_state) rnd(3)
                                             : HA_NODE_ACTIVE,
                        .online = rnd(4) != 0,
                        .memory_mib = rnd(6) == 0 ? 0 : 1024 * (1 + rnd(8)),
                        .host_reserve_mib = 256 * rnd(3),
                        .fenceable = rnd(4) != 0,
                };
                n->agent_ready = n->online && rnd(6) != 0;
                if (!n->online) {
                        n->left_at = NOW - (1 + rnd(100)) * SEC;
                        n->fence.state = (enum ha_fence_state) rnd(4);
                        n->fence.requested_at = n->left_at;
                        n->fence.finished_at = NOW - rnd(200) * SEC;
                        n->fence.reason = "no answer";
                }
                online += n->online;
        }
        if (!rc->nodes[0].online) { /* a manager */
                rc->nodes[0].online = rc->nodes[0].agent_ready = true;
                rc->nodes[0].left_at = 0;
                online++;
        }
        rc->in = (struct ha_input) {
                .now = NOW,
                .self = 1,
                .quorate = true,
                .nodes = rc->nodes,
                .n_nodes = n_nodes,
                .vms = rc->vms,
                .n_vms = rnd(R_VMS + 1),
                .placements = rc->placements,
                .reports = rc->reports,
                .commands = rc->commands,
        };
        for (size_t j = 0; j < rc->in.n_vms; j++) {
                struct ha_vm *vm = &rc->vms[j];
                struct ha_placement *p;
                uint32_t node = 1 + rnd((uint32_t) n_nodes);

                snprintf(rc->names[R_NODES + j], sizeof(rc->names[0]), "vm%zu",
                         j + 1);
                *vm = (struct ha_vm) {
                        .id = (int64_t) j + 1,
                        .name = rc->names[R_NODES + j],
                        .ha = (enum ha_mode) rnd(3),
                        .preferred_node = rnd((uint32_t) n_nodes + 1),
                        .priority = rnd(1001),
                        .memory_mib = 128 * (1 + rnd(8)),
                        .restart_max = rnd(3),
                        .restart_window_usec = (1 + rnd(600)) * SEC,
                        .relocate_max = rnd(2),
                        .desired = rnd(5) ? HA_DESIRED_RUNNING
                                          : HA_DESIRED_STOPPED,
                };
                if (vm->ha == HA_MODE_STICKY && rnd(2))
                        vm->sticky_node = node;
                if (rnd(5) == 0) {
                        rc->storage[j][0] = 1 + rnd((uint32_t) n_nodes);
                        rc->storage[j][1] = 1 + rnd((uint32_t) n_nodes);
                        vm->storage_nodes = rc->storage[j];
                        vm->n_storage_nodes = 2;
                }
                if (rnd(4) == 0)
                        continue;
                p = &rc->placements[rc->in.n_placements++];
                *p = (struct ha_placement) {
                        .vm_id = vm->id,
                        .state = states[rnd(ELEMENTSOF(states))],
                        .reason = "",
                        .restarts = rnd(3),
                        .restart_window_start = rnd(2) ? NOW - rnd(700) * SEC
                                                       : 0,
                        .relocations = rnd(2),
                        .generation = 1 + rnd(5),
                        .updated_at = NOW - rnd(100) * SEC,
                };
                if (p->state != HA_PLACEMENT_STOPPED &&
                    p->state != HA_PLACEMENT_FAILED &&
                    (p->state != HA_PLACEMENT_WAITING || rnd(2)))
                        p->node = node;
                if (p->state == HA_PLACEMENT_MIGRATING) {
                        p->target = 1 + rnd((uint32_t) n_nodes);
                        if (p->target == p->node)
                                p->state = HA_PLACEMENT_RUNNING, p->target = 0;
                }
                if (p->node && rnd(3)) {
                        struct ha_report *r =
                                &rc->reports[rc->in.n_reports++];

                        *r = (struct ha_report) {
                                .vm_id = vm->id,
                                .node_id = p->node,
                                .state = (enum ha_runtime) rnd(6),
                                .unexpected = rnd(2),
                                .generation = p->generation - rnd(2),
                                .error = rnd(2) ? "boom" : NULL,
                        };
                }
                if (rnd(10) == 0) {
                        uint32_t other = 1 + rnd((uint32_t) n_nodes);

                        if (other != p->node)
                                rc->reports[rc->in.n_reports++] =
                                        (struct ha_report) {
                                                .vm_id = vm->id,
                                                .node_id = other,
                                                .state = HA_RUNTIME_RUNNING,
                                        };
                }
                if (rnd(5) == 0) {
                        size_t k = rc->in.n_commands++;

                        rc->commands[k] = (struct ha_command) {
                                .id = (int64_t) k + 1,
                                .vm_id = vm->id,
                                .kind = (enum ha_command_kind) rnd(7),
                                .state = rnd(4) ? HA_COMMAND_PENDING
                                                : HA_COMMAND_RUNNING,
                                .target_node = 1 + rnd((uint32_t) n_nodes),
                        };
                }
        }
        rc->in.quorate = 2 * online > n_nodes;
}

#define SHUFFLE(array, n)                                                      \
        do {                                                                   \
                for (size_t _i = (n); _i > 1; _i--) {                          \
                        size_t _k = rnd((uint32_t) _i);                        \
                        __typeof__((array)[0]) _t = (array)[_i - 1];           \
                        (array)[_i - 1] = (array)[_k];                         \
                        (array)[_k] = _t;                                      \
                }                                                              \
        } while (0)

static char *output_text(const struct ha_output *o) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        for (size_t i = 0; i < o->n_placements; i++)
                fprintf(f, "%" PRId64 " %u %d %u %s %u %u %" PRIu64 "\n",
                        o->placements[i].vm_id, o->placements[i].node,
                        o->placements[i].state, o->placements[i].target,
                        o->placements[i].reason, o->placements[i].restarts,
                        o->placements[i].relocations,
                        o->placements[i].generation);
        for (size_t i = 0; i < o->n_fence_requests; i++)
                fprintf(f, "fence %u\n", o->fence_requests[i].node);
        for (size_t i = 0; i < o->n_commands; i++)
                fprintf(f, "cmd %" PRId64 " %d %s\n", o->commands[i].id,
                        o->commands[i].state, o->commands[i].result ?: "");
        for (size_t i = 0; i < o->n_log; i++)
                fprintf(f, "%s\n", o->log[i]);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static const struct ha_node *rnode(const struct random_cluster *rc,
                                   uint32_t id) {
        return id >= 1 && id <= rc->in.n_nodes ? &rc->nodes[id - 1] : NULL;
}

/* Checks one decision against the safety rules. */
static void check_safety(const struct random_cluster *rc,
                         const struct ha_output *o) {
        int64_t load[R_NODES + 1] = {}, before[R_NODES + 1] = {};
        bool gained[R_NODES + 1] = {};

        for (size_t k = 0; k < o->n_placements; k++) {
                const struct ha_placement *p = &o->placements[k], *old = NULL;
                bool starts = p->state == HA_PLACEMENT_STARTING ||
                              p->state == HA_PLACEMENT_RECOVERING;

                for (size_t i = 0; i < rc->in.n_placements; i++)
                        if (rc->placements[i].vm_id == p->vm_id)
                                old = &rc->placements[i];
                if (starts || p->state == HA_PLACEMENT_MIGRATING) {
                        const struct ha_node *n = rnode(rc, p->node);

                        assert_non_null(n);
                        assert_true(n->online);
                }
                if (p->state == HA_PLACEMENT_MIGRATING) {
                        assert_non_null(rnode(rc, p->target));
                        assert_true(rnode(rc, p->target)->online);
                }
                /* Not started elsewhere while its old node is away and not
                 * verified fenced. */
                if (starts && old && old->node && old->node != p->node &&
                    rnode(rc, old->node) && !rnode(rc, old->node)->online) {
                        const struct ha_node *gone = rnode(rc, old->node);

                        assert_int_equal(gone->fence.state, HA_FENCE_DONE);
                        assert_true(gone->fence.finished_at >= gone->left_at);
                }
                if (p->generation != (old ? old->generation : 0))
                        assert_int_equal(p->generation,
                                         (old ? old->generation : 0) + 1);
        }
        /* Memory: a node that got a VM this round is not overcommitted by
         * the VMs placed on it (or migrating to it). */
        for (size_t j = 0; j < rc->in.n_vms; j++) {
                const struct ha_placement *p = NULL, *old = NULL;

                for (size_t i = 0; i < rc->in.n_placements; i++)
                        if (rc->placements[i].vm_id == rc->vms[j].id)
                                old = &rc->placements[i];
                for (size_t i = 0; i < o->n_placements; i++)
                        if (o->placements[i].vm_id == rc->vms[j].id)
                                p = &o->placements[i];
                for (int pass = 0; pass < 2; pass++) {
                        const struct ha_placement *q = pass ? (p ?: old) : old;
                        int64_t *sum = pass ? load : before;

                        if (!q || q->state == HA_PLACEMENT_STOPPED ||
                            q->state == HA_PLACEMENT_WAITING ||
                            q->state == HA_PLACEMENT_FAILED)
                                continue;
                        if (q->node <= R_NODES)
                                sum[q->node] += (int64_t) rc->vms[j].memory_mib;
                        if (q->state == HA_PLACEMENT_MIGRATING &&
                            q->target <= R_NODES)
                                sum[q->target] +=
                                        (int64_t) rc->vms[j].memory_mib;
                }
                /* A node chosen for the VM this round (not a restart in
                 * place, not a VM found running there). */
                if (p && (p->state == HA_PLACEMENT_STARTING ||
                          p->state == HA_PLACEMENT_RECOVERING) &&
                    !(old && old->node == p->node))
                        gained[p->node] = true;
                if (p && p->state == HA_PLACEMENT_MIGRATING &&
                    !(old && old->state == p->state &&
                      old->target == p->target))
                        gained[p->target] = true;
        }
        for (uint32_t id = 1; id <= rc->in.n_nodes; id++) {
                const struct ha_node *n = rnode(rc, id);
                int64_t room = (int64_t) n->memory_mib -
                               (int64_t) n->host_reserve_mib;

                if (gained[id] && load[id] > before[id])
                        assert_true(load[id] <= room);
        }
}

static void random_clusters_keep_the_safety_rules(void **state) {
        for (unsigned seed = 1; seed <= 3000; seed++) {
                struct random_cluster *rc = malloc(sizeof(*rc));
                _cleanup_free_ char *a = NULL, *b = NULL;
                struct ha_output o1, o2;
                struct ha_input shuffled;
                struct ha_node nodes[R_NODES];
                struct ha_vm vms[R_VMS];
                struct ha_placement placements[R_VMS];
                struct ha_report reports[R_VMS * 2];
                struct ha_command commands[R_VMS];

                assert_non_null(rc);
                rng_state = seed;
                random_cluster(rc);
                assert_int_equal(ha_decide(&rc->in, &o1), 0);
                check_safety(rc, &o1);

                /* The same input in another order: the same decision. */
                shuffled = rc->in;
                memcpy(nodes, rc->nodes, sizeof(nodes));
                memcpy(vms, rc->vms, sizeof(vms));
                memcpy(placements, rc->placements, sizeof(placements));
                memcpy(reports, rc->reports, sizeof(reports));
                memcpy(commands, rc->commands, sizeof(commands));
                SHUFFLE(nodes, shuffled.n_nodes);
                SHUFFLE(vms, shuffled.n_vms);
                SHUFFLE(placements, shuffled.n_placements);
                SHUFFLE(reports, shuffled.n_reports);
                SHUFFLE(commands, shuffled.n_commands);
                shuffled.nodes = nodes;
                shuffled.vms = vms;
                shuffled.placements = placements;
                shuffled.reports = reports;
                shuffled.commands = commands;
                assert_int_equal(ha_decide(&shuffled, &o2), 0);
                a = output_text(&o1);
                b = output_text(&o2);
                if (!streq(a, b))
                        fail_msg("seed %u: the decision depends on the "
                                 "order:\n%s----\n%s",
                                 seed, a, b);
                ha_output_done(&o1);
                ha_output_done(&o2);
                free(rc);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(without_quorum_nothing_is_decided),
                cmocka_unit_test(only_the_lowest_online_node_manages),
                cmocka_unit_test(inputs_that_break_the_contract_are_refused),
                cmocka_unit_test(input_for_unknown_vms_and_nodes_is_ignored),
                cmocka_unit_test(nothing_is_decided_about_vms_of_an_unreported_node),
                cmocka_unit_test(a_report_older_than_the_decision_is_not_counted),
                cmocka_unit_test(a_plain_stop_while_starting_is_not_a_crash),
                cmocka_unit_test(a_lost_node_is_fenced_once_and_recovery_waits),
                cmocka_unit_test(a_failed_fence_is_asked_again_after_the_back_off),
                cmocka_unit_test(long_agent_errors_are_cut_at_a_character),
                cmocka_unit_test(names_round_trip),
                cmocka_unit_test(random_clusters_keep_the_safety_rules),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
