/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HA manager's decision core: one pure, deterministic function from
 * what the manager knows (membership, fencing, configuration, the node
 * agents' reports, its own earlier placements, pending commands) to what it
 * decides (placement rows, fence requests, command outcomes, configuration
 * changes, log lines). The daemon glue reads the domain and the status map
 * into struct ha_input and writes struct ha_output back in one transaction;
 * the simulator (tests/ha-sim) does the same in simulated time.
 * Must not: do I/O, read a clock, keep state between calls, or start a VM
 * of a node that left the membership elsewhere before that node's fence is
 * verified. docs/ha.md describes the rules and the node agent's side.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HA_USEC_PER_SEC UINT64_C(1000000)

/* A failed fence request is asked again this long after it failed. */
#define HA_FENCE_RETRY_USEC (60 * HA_USEC_PER_SEC)
/* An automatic migration (failback, maintenance) that failed is not tried
 * again for this long. */
#define HA_MIGRATION_RETRY_USEC (60 * HA_USEC_PER_SEC)
/* Live migrations at a time: per node leaving it, per node entering it. */
#define HA_MIGRATIONS_OUT_MAX 1
#define HA_MIGRATIONS_IN_MAX 1

/* Hard limits on the input (-E2BIG beyond them). */
#define HA_NODES_MAX 1024
#define HA_VMS_MAX 100000
#define HA_COMMANDS_MAX 100000
#define HA_REPORTS_MAX (4 * HA_VMS_MAX)
#define HA_STORAGE_NODES_MAX 64
/* Reasons and command results are cut to the domain's column limits. */
#define HA_REASON_MAX 1024
#define HA_RESULT_MAX 4096
#define HA_PRIORITY_MAX 1000

/* ==== Enumerations (the domain's words) ==== */

/* nodes.state */
enum ha_node_state {
        HA_NODE_ACTIVE,      /* "active": takes VMs */
        HA_NODE_STANDBY,     /* "standby": takes no new VMs */
        HA_NODE_MAINTENANCE, /* "maintenance": its VMs move away */
        _HA_NODE_STATE_MAX,
        _HA_NODE_STATE_INVALID = -EINVAL,
};

/* The state of the latest fence_requests row for a node. */
enum ha_fence_state {
        HA_FENCE_NONE,    /* "none": no request */
        HA_FENCE_PENDING, /* "pending": pending or running */
        HA_FENCE_DONE,    /* "done": verified off */
        HA_FENCE_FAILED,  /* "failed" */
        _HA_FENCE_STATE_MAX,
        _HA_FENCE_STATE_INVALID = -EINVAL,
};

/* vms.ha */
enum ha_mode {
        HA_MODE_OFF,    /* "off" */
        HA_MODE_ON,     /* "on" */
        HA_MODE_STICKY, /* "sticky": bound to sticky_node (unbound: as "on") */
        _HA_MODE_MAX,
        _HA_MODE_INVALID = -EINVAL,
};

/* vms.desired_state */
enum ha_desired {
        HA_DESIRED_STOPPED, /* "stopped" */
        HA_DESIRED_RUNNING, /* "running" */
        _HA_DESIRED_MAX,
        _HA_DESIRED_INVALID = -EINVAL,
};

/* What a node agent sees of a VM on its node (the status map). */
enum ha_runtime {
        HA_RUNTIME_RUNNING,       /* "running" */
        HA_RUNTIME_PAUSED,        /* "paused" (counts as running) */
        HA_RUNTIME_STOPPED,       /* "stopped" */
        HA_RUNTIME_CRASHED,       /* "crashed" */
        HA_RUNTIME_START_FAILED,  /* "start-failed": error says why */
        HA_RUNTIME_MIGRATING_OUT, /* "migrating-out" to target_node */
        _HA_RUNTIME_MAX,
        _HA_RUNTIME_INVALID = -EINVAL,
};

/* vm_placements.state */
enum ha_placement_state {
        HA_PLACEMENT_STOPPED,    /* "stopped": runs nowhere (node 0) */
        HA_PLACEMENT_STARTING,   /* "starting": the agent of node starts it */
        HA_PLACEMENT_RUNNING,    /* "running" on node */
        HA_PLACEMENT_STOPPING,   /* "stopping": the agent of node stops it */
        HA_PLACEMENT_MIGRATING,  /* "migrating": from node to target */
        HA_PLACEMENT_RECOVERING, /* "recovering": starting after a fence */
        HA_PLACEMENT_WAITING,    /* "waiting": should run but cannot (reason) */
        HA_PLACEMENT_FAILED,     /* "failed": given up (reason), node 0 */
        _HA_PLACEMENT_STATE_MAX,
        _HA_PLACEMENT_STATE_INVALID = -EINVAL,
};

/* vm_commands.command */
enum ha_command_kind {
        HA_COMMAND_START,    /* "start" */
        HA_COMMAND_SHUTDOWN, /* "shutdown" */
        HA_COMMAND_REBOOT,   /* "reboot" */
        HA_COMMAND_RESET,    /* "reset" */
        HA_COMMAND_POWEROFF, /* "poweroff" */
        HA_COMMAND_MIGRATE,  /* "migrate": to target_node */
        HA_COMMAND_RELEASE,  /* "release" */
        _HA_COMMAND_KIND_MAX,
        _HA_COMMAND_KIND_INVALID = -EINVAL,
};

/* vm_commands.state */
enum ha_command_state {
        HA_COMMAND_PENDING, /* "pending" */
        HA_COMMAND_RUNNING, /* "running" */
        HA_COMMAND_DONE,    /* "done" */
        HA_COMMAND_FAILED,  /* "failed" */
        _HA_COMMAND_STATE_MAX,
        _HA_COMMAND_STATE_INVALID = -EINVAL,
};

/* The domain's words for each value; NULL when out of range. from_string
 * returns the _INVALID value for unknown text or NULL. */
const char *ha_node_state_to_string(enum ha_node_state s);
enum ha_node_state ha_node_state_from_string(const char *s);
const char *ha_fence_state_to_string(enum ha_fence_state s);
enum ha_fence_state ha_fence_state_from_string(const char *s);
const char *ha_mode_to_string(enum ha_mode m);
enum ha_mode ha_mode_from_string(const char *s);
const char *ha_desired_to_string(enum ha_desired d);
enum ha_desired ha_desired_from_string(const char *s);
const char *ha_runtime_to_string(enum ha_runtime r);
enum ha_runtime ha_runtime_from_string(const char *s);
const char *ha_placement_state_to_string(enum ha_placement_state s);
enum ha_placement_state ha_placement_state_from_string(const char *s);
const char *ha_command_kind_to_string(enum ha_command_kind k);
enum ha_command_kind ha_command_kind_from_string(const char *s);
const char *ha_command_state_to_string(enum ha_command_state s);
enum ha_command_state ha_command_state_from_string(const char *s);

/* ==== Input ==== */
/* Everything is borrowed from the caller for the duration of ha_decide().
 * Times are microseconds since the epoch; node ids are corosync node ids
 * (never 0: 0 means "none"); VM ids are vms.id (> 0). */

/* The latest fence_requests row for a node (state HA_FENCE_NONE: none). */
struct ha_fence {
        enum ha_fence_state state;
        uint64_t requested_at;
        uint64_t finished_at; /* done or failed: when */
        const char *reason;   /* failed: the request's result; may be NULL */
};

struct ha_node {
        uint32_t id;
        const char *name;
        enum ha_node_state state;
        bool online;      /* a member of this (the manager's) partition */
        bool agent_ready; /* its vmd published its VMs since it joined:
                           * until then nothing is decided about VMs placed
                           * on it and nothing new goes there */
        uint64_t memory_mib;       /* 0: unknown; the node takes no new VMs */
        uint64_t host_reserve_mib; /* never given to VMs */
        bool fenceable;            /* monitoring: some node can fence it */
        struct ha_fence fence;
        uint64_t left_at; /* when it left the membership; 0 while online */
};

struct ha_vm {
        int64_t id;
        const char *name;
        enum ha_mode ha;
        uint32_t preferred_node; /* 0: none */
        uint32_t sticky_node;    /* 0: not bound */
        unsigned priority;       /* 0..HA_PRIORITY_MAX, higher first */
        uint64_t memory_mib;
        unsigned restart_max;
        uint64_t restart_window_usec;
        unsigned relocate_max;
        enum ha_desired desired;
        /* The nodes its storage allows (eSAN: the disk's two nodes); none:
         * any node. */
        const uint32_t *storage_nodes;
        size_t n_storage_nodes;
};

/* One VM as one node agent reports it (the status map). Reports of nodes
 * that are not online are ignored; at most one per (vm_id, node_id). */
struct ha_report {
        int64_t vm_id;
        uint32_t node_id;
        enum ha_runtime state;
        uint32_t target_node; /* HA_RUNTIME_MIGRATING_OUT: where to */
        bool unexpected;      /* stopped/crashed without being asked (guest
                               * shutdown, crash) */
        uint64_t generation;  /* the placement generation the agent last
                               * acted on for this VM */
        const char *error;    /* start-failed: why; running after a failed
                               * migration of `generation`: why; else NULL */
        int64_t command_done; /* the last reboot/reset/poweroff command the
                               * agent carried out (0: none) */
        bool command_failed;
        const char *command_result; /* what the agent says about it */
};

/* A vm_placements row. In the input the reason is borrowed; in an output
 * it belongs to the output (ha_output_done frees it). */
struct ha_placement {
        int64_t vm_id;
        uint32_t node; /* 0: nowhere */
        enum ha_placement_state state;
        uint32_t target; /* migrating: where to; running: the target of a
                          * migration that failed at updated_at */
        const char *reason;
        unsigned restarts;
        uint64_t restart_window_start;
        unsigned relocations;
        uint64_t generation;
        uint64_t updated_at;
};

/* A vm_commands row that is pending or running. */
struct ha_command {
        int64_t id;
        int64_t vm_id;
        enum ha_command_kind kind;
        enum ha_command_state state;
        uint32_t target_node; /* migrate */
};

struct ha_input {
        uint64_t now;
        uint32_t self;    /* the node this manager runs on */
        bool quorate;     /* this partition has quorum */
        bool was_quorate; /* the previous call on this node had quorum: the
                           * no-quorum line is logged on the change only */
        const struct ha_node *nodes;
        size_t n_nodes;
        const struct ha_vm *vms;
        size_t n_vms;
        const struct ha_report *reports;
        size_t n_reports;
        const struct ha_placement *placements; /* for VMs not listed: none */
        size_t n_placements;
        const struct ha_command *commands;
        size_t n_commands;
};

/* ==== Output ==== */
/* Arrays sorted by id (placements and VM changes by VM id, fence requests
 * by node id, command updates by command id); everything is owned by the
 * output. */

struct ha_fence_request {
        uint32_t node;
        char *reason;
};

struct ha_command_update {
        int64_t id;
        int64_t vm_id;
        enum ha_command_state state; /* running, done or failed */
        char *result;                /* done/failed: what happened */
};

/* Configuration the core changes itself: a start, shutdown or poweroff
 * command sets vms.desired_state; a release clears vms.sticky_node_id. */
struct ha_vm_change {
        int64_t vm_id;
        bool set_desired;
        enum ha_desired desired;
        bool clear_sticky;
};

struct ha_output {
        /* Rows to write (insert or update), with updated_at = now; the
         * generation is already incremented where an agent must act. */
        struct ha_placement *placements;
        size_t n_placements;
        struct ha_fence_request *fence_requests; /* action off */
        size_t n_fence_requests;
        struct ha_command_update *commands;
        size_t n_commands;
        struct ha_vm_change *vm_changes;
        size_t n_vm_changes;
        /* Human-readable decisions, in the order made: the journal and the
         * simulator's golden log. */
        char **log;
        size_t n_log;
};

/* ==== The decision ==== */

/* The manager of a partition: the lowest id among the online nodes when
 * the partition is quorate, else 0. The nodes' admin state does not
 * matter: the manager role runs no VMs. */
uint32_t ha_manager_node(const struct ha_node *nodes, size_t n_nodes,
                         bool quorate);

/* Decides one round. Pure: the same input (in any array order) gives the
 * same output. Fills *ret (zeroed first; release it with ha_output_done,
 * also after an error). Without quorum the output holds nothing but, when
 * the partition just lost quorum, one log line.
 * Returns 0; -EINVAL for an input that breaks the contract (duplicate or
 * zero ids, values out of range, a NULL name); -E2BIG beyond the HA_*_MAX
 * limits; -EPERM when quorate and self is not the manager (ha_manager_node);
 * -ENOMEM. */
int ha_decide(const struct ha_input *in, struct ha_output *ret);

/* Frees what an output owns and zeroes it. Accepts a zeroed output. */
void ha_output_done(struct ha_output *o);
