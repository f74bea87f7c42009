/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-ha-sim: replays HA scenarios against the decision core
 * (daemons/vmd/vmd-decide.c) in simulated time. sim-scenario.c reads a
 * scenario file (header, timed steps, expected log), sim-world.c runs it in
 * a simulated cluster (power, network, corosync membership, fencer, node
 * agents, the manager) and checks the safety rules after every step,
 * main.c compares logs. A test tool: no daemons, no I/O but the files.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../daemons/vmd/vmd-decide.h"

#define SIM_NODES_MAX 64
#define SIM_VMS_MAX 4096
#define SIM_STEPS_MAX 4096
#define SIM_TIME_MAX 100000 /* seconds */

/* Simulated timing, in seconds. */
#define SIM_MEMBERSHIP_DELAY 3 /* corosync notices a node gone or back */
#define SIM_START_TIME 2
#define SIM_SHUTDOWN_TIME 3
#define SIM_MIGRATE_TIME 4
#define SIM_REBOOT_TIME 2
#define SIM_FENCE_DELAY 1 /* default: request to verified */
#define SIM_AFTER_LAST_STEP 60

struct sim_node_config {
        char *name;
        uint64_t memory_mib;
        uint64_t reserve_mib;
        enum ha_node_state state;
        bool fence_works;
        unsigned fence_delay; /* seconds */
};

struct sim_vm_config {
        char *name;
        struct ha_vm config; /* name and storage_nodes point into this */
        uint32_t storage[HA_STORAGE_NODES_MAX];
        size_t on; /* node index + 1 it runs on at t=0; 0: placed by the
                    * manager if desired running */
};

enum sim_step_kind {
        SIM_STEP_POWER,
        SIM_STEP_NETWORK,
        SIM_STEP_NODE_STATE,
        SIM_STEP_FENCE_WORKS,
        SIM_STEP_FENCE_FAILS,
        SIM_STEP_FENCE_DELAY,
        SIM_STEP_VM_CRASH,
        SIM_STEP_VM_GUEST_SHUTDOWN,
        SIM_STEP_VM_START_FAILS,
        SIM_STEP_VM_MIGRATE_FAILS,
        SIM_STEP_VM_ROGUE,
        SIM_STEP_COMMAND,
        SIM_STEP_SET,
        SIM_STEP_MEMORY,
};

struct sim_step {
        unsigned at;
        enum sim_step_kind kind;
        char *text;  /* as written, for the log */
        size_t node; /* index */
        size_t vm;   /* index */
        bool on;
        enum ha_node_state state;
        unsigned count;
        size_t only_node; /* start-fails on NODE / migrate to NODE: index+1 */
        enum ha_command_kind command;
        uint64_t value;
        char **assignments; /* set: "key=value", NULL-terminated */
};

struct sim_scenario {
        char *path;
        char *source;       /* the whole file */
        size_t expect_end;  /* bytes of source up to the expected log */
        char *expected;     /* the expected log (text after "expect") */
        unsigned duration;  /* seconds simulated */
        struct sim_node_config nodes[SIM_NODES_MAX];
        size_t n_nodes;
        struct sim_vm_config *vms;
        size_t n_vms;
        struct sim_step *steps; /* by time, then as written */
        size_t n_steps;
};

/* Reads and parses a scenario file. Returns 0 and *ret (free with
 * sim_scenario_free), or a negative errno with *ret_error ("file:line:
 * what", the caller frees it). */
int sim_scenario_load(const char *path, struct sim_scenario **ret,
                      char **ret_error);
struct sim_scenario *sim_scenario_free(struct sim_scenario *s);

/* Applies "key=value" to a VM's configuration (header options and the
 * set step share it). Returns 0, or -EINVAL with *ret_error (a static
 * string). */
int sim_vm_option(const struct sim_scenario *s, struct sim_vm_config *vm,
                  const char *key, const char *value, const char **ret_error);
/* A node's index by name, or -ENOENT. */
int sim_node_index(const struct sim_scenario *s, const char *name);

struct sim_result {
        char *log;           /* the produced log, one line per event */
        unsigned violations; /* safety rules broken (also in the log) */
        uint64_t decide_calls;
};

/* Runs the scenario. Returns 0 and fills *ret (free ret->log), -ENOMEM, or
 * the error of ha_decide() (also logged). */
int sim_run(const struct sim_scenario *s, bool verbose,
            struct sim_result *ret);
