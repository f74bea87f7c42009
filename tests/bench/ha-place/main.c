/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-bench-ha-place: the HA decision core's placement cost. 16 nodes of
 * 64 GiB (2 GiB host reserve) run 1,000 HA VMs of mixed memory (256 to 4096
 * MiB) and priority; node 7 has left the membership and its fence is
 * verified. One ha_decide() call recovers all of node 7's VMs on the 15
 * survivors: its time is taken RUNS times after WARMUP calls, and the
 * median and the maximum go to stdout as one JSON object
 * (tests/bench/ha-place.sh turns it into the tracked bench line); the
 * details go to stderr.
 *   haven-bench-ha-place [-n RUNS]
 * A benchmark tool: blocking and simple on purpose.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../../daemons/vmd/vmd-decide.h"

#define NODES 16
#define VMS 1000
#define LOST_NODE 7
#define NODE_MIB (64 * 1024)
#define RESERVE_MIB (2 * 1024)
#define RUNS_DEFAULT 50
#define WARMUP 5
#define NOW (UINT64_C(1700000000) * HA_USEC_PER_SEC)

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* A fixed pseudo-random sequence, so every run measures the same cluster. */
static uint32_t rnd(uint32_t n) {
        static uint64_t state = 42;

        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return (uint32_t) (state >> 33) % n;
}

static char names[NODES + VMS][16];
static struct ha_node nodes[NODES];
static struct ha_vm vms[VMS];
static struct ha_placement placements[VMS];
static struct ha_report reports[VMS];

/* Memory in MiB, mostly small: 35 % 256, 30 % 512, 20 % 1024, 10 % 2048,
 * 5 % 4096 (about 860 MiB on average, so the survivors have room). */
static uint64_t vm_memory(void) {
        uint32_t p = rnd(100);

        return p < 35   ? 256
               : p < 65 ? 512
               : p < 85 ? 1024
               : p < 95 ? 2048
                        : 4096;
}

/* Builds the cluster after node 7's loss; returns how many VMs ran there. */
static size_t build(struct ha_input *in) {
        uint64_t used[NODES] = {};
        size_t n_reports = 0, lost = 0;

        for (size_t i = 0; i < NODES; i++) {
                snprintf(names[i], sizeof(names[i]), "node%zu", i + 1);
                nodes[i] = (struct ha_node) {
                        .id = (uint32_t) i + 1,
                        .name = names[i],
                        .state = HA_NODE_ACTIVE,
                        .online = true,
                        .agent_ready = true,
                        .memory_mib = NODE_MIB,
                        .host_reserve_mib = RESERVE_MIB,
                        .fenceable = true,
                };
        }
        nodes[LOST_NODE - 1].online = false;
        nodes[LOST_NODE - 1].agent_ready = false;
        nodes[LOST_NODE - 1].left_at = NOW - 5 * HA_USEC_PER_SEC;
        nodes[LOST_NODE - 1].fence = (struct ha_fence) {
                .state = HA_FENCE_DONE,
                .requested_at = NOW - 4 * HA_USEC_PER_SEC,
                .finished_at = NOW - 3 * HA_USEC_PER_SEC,
        };

        for (size_t j = 0; j < VMS; j++) {
                size_t node = j % NODES;

                snprintf(names[NODES + j], sizeof(names[0]), "vm%zu", j + 1);
                vms[j] = (struct ha_vm) {
                        .id = (int64_t) j + 1,
                        .name = names[NODES + j],
                        .ha = HA_MODE_ON,
                        .priority = rnd(1001),
                        .memory_mib = vm_memory(),
                        .restart_max = 3,
                        .restart_window_usec = 600 * HA_USEC_PER_SEC,
                        .relocate_max = 1,
                        .desired = HA_DESIRED_RUNNING,
                };
                while (used[node] + vms[j].memory_mib > NODE_MIB - RESERVE_MIB)
                        node = (node + 1) % NODES;
                used[node] += vms[j].memory_mib;
                placements[j] = (struct ha_placement) {
                        .vm_id = vms[j].id,
                        .node = (uint32_t) node + 1,
                        .state = HA_PLACEMENT_RUNNING,
                        .reason = "",
                        .generation = 1,
                        .updated_at = NOW - 3600 * HA_USEC_PER_SEC,
                };
                if (node + 1 == LOST_NODE)
                        lost++;
                else
                        reports[n_reports++] = (struct ha_report) {
                                .vm_id = vms[j].id,
                                .node_id = (uint32_t) node + 1,
                                .state = HA_RUNTIME_RUNNING,
                                .generation = 1,
                        };
        }
        *in = (struct ha_input) {
                .now = NOW,
                .self = 1,
                .quorate = true,
                .was_quorate = true,
                .nodes = nodes,
                .n_nodes = NODES,
                .vms = vms,
                .n_vms = VMS,
                .reports = reports,
                .n_reports = n_reports,
                .placements = placements,
                .n_placements = VMS,
        };
        return lost;
}

int main(int argc, char *argv[]) {
        struct ha_input in;
        uint64_t samples[1000];
        size_t runs = RUNS_DEFAULT, lost, recovered = 0, waiting = 0;
        int c;

        while ((c = getopt(argc, argv, "n:")) >= 0)
                switch (c) {
                case 'n':
                        runs = strtoul(optarg, NULL, 10);
                        if (runs < 1 || runs > 1000) {
                                fprintf(stderr, "-n: 1 to 1000\n");
                                return 2;
                        }
                        break;
                default:
                        fprintf(stderr, "haven-bench-ha-place [-n RUNS]\n");
                        return 2;
                }

        lost = build(&in);
        for (size_t i = 0; i < WARMUP + runs; i++) {
                struct ha_output out;
                uint64_t start = now_ns();
                int r = ha_decide(&in, &out);
                uint64_t took = now_ns() - start;

                if (r < 0) {
                        fprintf(stderr, "haven-bench-ha-place: ha_decide: %s\n",
                                strerror(-r));
                        return 1;
                }
                if (i == 0)
                        for (size_t k = 0; k < out.n_placements; k++) {
                                recovered += out.placements[k].state ==
                                             HA_PLACEMENT_RECOVERING;
                                waiting += out.placements[k].state ==
                                           HA_PLACEMENT_WAITING;
                        }
                if (i >= WARMUP)
                        samples[i - WARMUP] = took;
                ha_output_done(&out);
        }
        /* The decision must be the one measured: every VM of node 7 is
         * recovered (the survivors have the room). */
        if (recovered != lost || waiting != 0) {
                fprintf(stderr, "haven-bench-ha-place: recovered %zu of %zu VMs "
                                "(%zu waiting)\n",
                        recovered, lost, waiting);
                return 1;
        }
        qsort(samples, runs, sizeof(samples[0]), cmp_u64);
        fprintf(stderr, "ha-place: %d nodes, %d VMs, node %d lost with %zu VMs, "
                        "all recovered; decide() median %.3f ms, max %.3f ms "
                        "over %zu runs\n",
                NODES, VMS, LOST_NODE, lost, (double) samples[runs / 2] / 1e6,
                (double) samples[runs - 1] / 1e6, runs);
        printf("{\"median_ms\":%.3f,\"max_ms\":%.3f,\"runs\":%zu,"
               "\"recovered\":%zu}\n",
               (double) samples[runs / 2] / 1e6,
               (double) samples[runs - 1] / 1e6, runs, recovered);
        return 0;
}
