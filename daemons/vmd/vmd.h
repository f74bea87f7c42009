/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-vmd: the VM controller of one node. The shared state of the daemon
 * and the interfaces between its modules:
 *   main.c         arguments, signals, the loop, setup and teardown;
 *   vmd-rows.c     the domain's rows → the decision core's input and a VM's
 *                  libvirt spec; the core's output → one transaction (pure:
 *                  no I/O, unit-tested);
 *   vmd-manager.c  the manager: on the partition's manager node, calls
 *                  ha_decide() on every change and every second and writes
 *                  the decision in one transaction;
 *   vmd-agent.c    the node agent: makes the node's libvirt match the
 *                  placements naming this node, carries out reboot/reset
 *                  and live migrations, publishes each VM in the status map;
 *                  has vmd-net.c make the node's virtual switches.
 * Must not: write the database itself (only through domaind), start a VM
 * the domain does not place on this node, or block the loop longer than
 * one bounded libvirt call.
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "haven/domain.h"
#include "haven/macro.h"

#include "vmd-decide.h"
#include "vmd-libvirt.h"
#include "vmd-xml.h"

#define VMD_DOMAIN_SOCKET_DEFAULT "/run/haven/domaind.sock"
#define VMD_STATE_FILE_DEFAULT "/run/haven/vmd-state.json"
#define VMD_SHUTDOWN_TIMEOUT_DEFAULT_USEC (120ULL * 1000000ULL)
/* How often the manager decides without a change (time-based rules: fence
 * retries, back-offs, restart windows). */
#define VMD_MANAGER_INTERVAL_USEC (1000ULL * 1000ULL)
/* How often the agent lists libvirt's domains without an event. */
#define VMD_AGENT_INTERVAL_USEC (2000ULL * 1000ULL)
/* The status-map keys: "vmd" (the agent itself) and "vm/NAME". */
#define VMD_STATUS_KEY "vmd"
#define VMD_VM_KEY_PREFIX "vm/"

struct vmd_agent;
struct vmd_manager;

struct vmd {
        sd_event *event;
        struct haven_domain *domain;
        char *domain_socket;
        char *libvirt_uri;
        char *state_file;
        /* The destination libvirtd as the source's libvirtd reaches it, with
         * %s for the target's interconnect address ("qemu+tcp://%s/system";
         * "qemu+tls://%s/system" with the cluster's certificates). */
        char *peer_uri_format;
        uint64_t shutdown_timeout_usec;
        uint64_t started_usec; /* CLOCK_REALTIME */
        enum vm_domain_type domain_type;
        /* Who we are (from domaind's status). */
        uint32_t self;
        char *node_name;
        struct vmd_manager *manager;
        struct vmd_agent *agent;
};

/* The node's memory in MiB (/proc/meminfo MemTotal), 0 when unknown. */
uint64_t vmd_node_memory_mib(void);

/* ==== Rows (vmd-rows.c) ==== */

/* Membership as the daemon sees it: the online members and, for the nodes
 * that are not, when this vmd saw them leave. */
struct vmd_membership {
        const uint32_t *members; /* sorted */
        size_t n_members;
        bool quorate;
        /* left_at(node): when it left (0: unknown: use since). */
        const uint32_t *left_ids;
        const uint64_t *left_at;
        size_t n_left;
        uint64_t since; /* when this vmd started: a node that was away
                         * before is taken to have left then */
};

/* The decision core's input, with everything it borrows. */
struct vmd_input {
        struct ha_input in;
        struct ha_node *nodes;
        struct ha_vm *vms;
        uint32_t *storage; /* the VMs' storage node lists, back to back */
        struct ha_report *reports;
        struct ha_placement *placements;
        struct ha_command *commands;
};
void vmd_input_done(struct vmd_input *b);

/* Builds the core's input from the view d holds (rows of nodes, vms,
 * vm_disks, disks, vm_placements, vm_commands, fence_requests; entries
 * "vmd", "vm/NAME" and "fencing"), the membership, now and self.
 * Strings are borrowed from d's JSON: valid until d's next change.
 * Rows that break the schema's rules are skipped with a warning (never
 * expected: domaind checks them). Returns 0 or -ENOMEM. */
int vmd_input_build(struct json_object *tables /* {"nodes": [...], ...} */,
                    struct json_object *entries,
                    const struct vmd_membership *m, uint64_t now,
                    uint32_t self, struct vmd_input *ret);

/* The decision as one transaction's ops: placements inserted or updated
 * (with expect_version on an existing row, so a decision made on stale rows
 * fails as a whole), fence requests, command updates (expect_version),
 * VM changes. placements are the rows of vm_placements, commands the rows
 * of vm_commands (for the versions). Returns 0 and *ret (NULL when there
 * is nothing to write), or -ENOMEM. */
int vmd_output_ops(const struct ha_output *o, struct json_object *placements,
                   struct json_object *commands, uint64_t now,
                   struct json_object **ret);

/* A VM's libvirt spec from the rows (vms, vm_disks, disks, vm_nics,
 * networks, vm_cdroms, cluster). */
struct vmd_spec {
        struct vm_spec spec;
        char uuid[VM_UUID_STRING_MAX];
        struct vm_disk_spec *disks;
        struct vm_nic_spec *nics;
        struct vm_cdrom_spec *cdroms;
        char (*bridges)[IFNAMSIZ];
};
void vmd_spec_done(struct vmd_spec *s);
/* Fills *ret for VM vm_id. Returns 0; -ENOENT when there is no such VM;
 * -EINVAL with *ret_why (static text or NULL) when the configuration
 * cannot be run (no cluster UUID, an eSAN disk without a device, a disk
 * missing); -ENOMEM. */
int vmd_spec_build(struct json_object *tables, int64_t vm_id,
                   enum vm_domain_type type, struct vmd_spec *ret,
                   const char **ret_why);

/* Helpers over rows. */
struct json_object *vmd_row_by_id(struct json_object *rows, int64_t id);
struct json_object *vmd_row_by_int(struct json_object *rows, const char *col,
                                   int64_t value);
int64_t vmd_row_int(struct json_object *row, const char *col, int64_t dflt);
const char *vmd_row_string(struct json_object *row, const char *col,
                           const char *dflt);

/* ==== Manager (vmd-manager.c) ==== */

int vmd_manager_new(struct vmd *v, struct vmd_manager **ret);
struct vmd_manager *vmd_manager_free(struct vmd_manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct vmd_manager *, vmd_manager_free)
/* The domain view changed (what: HAVEN_DOMAIN_* bits). */
void vmd_manager_changed(struct vmd_manager *m, unsigned what);

/* ==== Agent (vmd-agent.c) ==== */

int vmd_agent_new(struct vmd *v, struct vmd_agent **ret);
struct vmd_agent *vmd_agent_free(struct vmd_agent *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct vmd_agent *, vmd_agent_free)
void vmd_agent_changed(struct vmd_agent *a, unsigned what);

/* The tables the daemon watches, NULL-terminated. */
extern const char *const vmd_tables[];
/* d's rows as {"table": rows, ...} (borrowed references). */
struct json_object *vmd_tables_object(struct haven_domain *d);
