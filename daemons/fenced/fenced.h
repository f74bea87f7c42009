/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-fenced: turns a fence request for node X into power-off of every
 * outlet of X, verified, and records the result in the domain. The shared
 * state of the daemon: the configuration it read from the domain (devices,
 * outlets, nodes), the membership, and the running work. main.c owns the
 * loop; fenced-config.c reads the domain, fenced-op.c runs one device
 * action through its driver, fenced-fence.c runs a whole fence (levels),
 * fenced-requests.c claims and records requests, fenced-monitor.c checks
 * the devices, fenced-api.c serves the local socket.
 * Must not: write the database itself (only through domaind), fence the
 * node it runs on, or block the loop (drivers run in child processes).
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "haven/macro.h"
#include "haven/domain.h"
#include "haven/msg.h"

#define FENCED_SOCKET_DEFAULT "/run/haven/fenced.sock"
#define FENCED_DOMAIN_SOCKET_DEFAULT "/run/haven/domaind.sock"
#define FENCED_STATUS_KEY "fencing"
#define FENCED_MONITOR_INTERVAL_DEFAULT_USEC (30ULL * 1000000ULL)
#define FENCED_REQUEST_TIMEOUT_DEFAULT_USEC (60ULL * 1000000ULL)
#define FENCED_CALL_TIMEOUT_USEC (30ULL * 1000000ULL)
#define FENCED_LEVELS_MAX 8

/* ==== Configuration (fenced-config.c) ==== */

struct fence_device {
        int64_t id;
        char *name;
        char *type; /* "apc-snmp", "fence-agent", "manual" */
        char *address;
        struct json_object *parameters; /* an object, never NULL */
        bool enabled;
};

struct fence_outlet {
        uint32_t node_id;
        int64_t device_id;
        char *outlet;
        unsigned level;
};

struct fence_node {
        uint32_t node_id;
        char *name;
        uint64_t fence_delay_usec;
};

struct fence_config {
        struct fence_device *devices;
        size_t n_devices;
        struct fence_outlet *outlets;
        size_t n_outlets;
        struct fence_node *nodes;
        size_t n_nodes;
};

struct fence_config *fence_config_free(struct fence_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct fence_config *, fence_config_free)

/* Builds a configuration from the rows of nodes, fence_devices and
 * fence_outlets (arrays of row objects as domaind's query returns them).
 * Returns 0 and *ret, -EBADMSG when a row lacks a column, -ENOMEM. */
int fence_config_from_rows(struct json_object *nodes,
                           struct json_object *devices,
                           struct json_object *outlets,
                           struct fence_config **ret);

const struct fence_device *fence_config_device(const struct fence_config *c,
                                               int64_t id);
const struct fence_device *
fence_config_device_by_name(const struct fence_config *c, const char *name);
const struct fence_node *fence_config_node(const struct fence_config *c,
                                           uint32_t node_id);
/* A node by name or by its number ("node2" or "2"). */
const struct fence_node *fence_config_node_find(const struct fence_config *c,
                                                const char *name_or_id);

/* A device from a definition given in a request ({"type", "address",
 * "parameters"}, name optional), for testing before it is added. Checks
 * what the domain's schema checks. Returns 0 and *ret (free with
 * fence_device_done and free), -EINVAL with *ret_message. */
int fence_device_from_json(struct json_object *definition,
                           struct fence_device *ret, char **ret_field,
                           char **ret_message);
void fence_device_done(struct fence_device *d);
int fence_device_copy(const struct fence_device *from, struct fence_device *to);

/* ==== One device action (fenced-op.c) ==== */

struct fenced;
struct fence_op;

/* What a device action found. ok: the action did what it should (off/on:
 * every outlet verified in the target state; status/list/check: the device
 * answered and the outlets exist). details: the driver's JSON result
 * (outlet states, model, ...), may be NULL. */
struct fence_op_result {
        bool ok;
        char *message; /* one line for the administrator, never NULL */
        char *code;    /* "timeout", "auth", ...; NULL when ok */
        char *field;   /* the parameter at fault, or NULL */
        struct json_object *details;
        uint64_t elapsed_usec;
};
void fence_op_result_done(struct fence_op_result *r);

typedef void (*fence_op_done_t)(struct fence_op *op,
                                const struct fence_op_result *result,
                                void *userdata);

/* Starts action ("off", "on", "status", "list", "check") on outlets
 * (NULL-terminated; may be empty for device-wide actions) of device d,
 * bounded by timeout_usec. done is called once, from the loop, never from
 * inside this call. The device is copied. Returns 0 and *ret (freeing it
 * cancels the action without calling done), or a negative errno. A manual
 * device cannot be driven: done reports a failure saying so. */
int fence_op_start(struct fenced *f, const struct fence_device *d,
                   const char *action, char *const *outlets,
                   uint64_t timeout_usec, fence_op_done_t done, void *userdata,
                   struct fence_op **ret);
struct fence_op *fence_op_free(struct fence_op *op);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct fence_op *, fence_op_free)

/* ==== A whole fence (fenced-fence.c) ==== */

struct fence_run;

/* What a fence achieved: ok when some level succeeded (for manual devices:
 * when the level asks for a confirmation, waiting is set instead). */
struct fence_run_result {
        bool ok;
        bool waiting; /* a manual device: an administrator must confirm */
        unsigned level;
        char *device;  /* the device(s) of the deciding level, "a, b" */
        char *outlets; /* "pdu1 3, pdu2 3" */
        char *message; /* the sentence for the domain and the audit log */
        uint64_t elapsed_usec;
};
void fence_run_result_done(struct fence_run_result *r);

typedef void (*fence_run_done_t)(struct fence_run *run,
                                 const struct fence_run_result *result,
                                 void *userdata);

/* Fences node (action "off", "reboot" or "on") with the levels the
 * configuration has for it, in order, until one succeeds; within a level
 * every outlet of every device must succeed. Gives up at deadline (a
 * CLOCK_MONOTONIC time). Returns 0 and *ret (freeing it cancels), -ENOENT
 * when the node has no outlets, or a negative errno. */
int fence_run_start(struct fenced *f, const struct fence_config *config,
                    uint32_t node_id, const char *action, uint64_t deadline,
                    fence_run_done_t done, void *userdata,
                    struct fence_run **ret);
struct fence_run *fence_run_free(struct fence_run *run);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct fence_run *, fence_run_free)

/* ==== The daemon ==== */

struct fence_claim; /* fenced-requests.c: one request this node carries out */
struct monitor_check; /* fenced-monitor.c: one device being checked */

struct fenced {
        sd_event *event;
        char *apc_driver; /* haven-fence-apc, next to this executable */
        char *socket_path;
        char *domain_socket;
        uint64_t monitor_interval_usec;
        uint64_t request_timeout_usec;
        uint64_t started_usec; /* CLOCK_REALTIME: when this fencer started */

        struct haven_domain *domain; /* status, tables, "fencing" entries */
        struct haven_msg_server *server;

        uint32_t node_id; /* 0 until this node is in a cluster */
        char *node_name;

        struct fence_config *config; /* NULL until loaded */
        struct fence_claim *claims;

        /* Monitoring: the last check of each device (by name), published. */
        sd_event_source *monitor_timer;
        struct json_object *device_health; /* {"pdu1": {...}} */
        unsigned monitor_pending;
        struct monitor_check **monitor_checks;
        size_t n_monitor_checks;
};

/* fenced-config.c: the domain's view (haven/domain.h); calls the others
 * when something changed. */
int fenced_domain_connect(struct fenced *f);
bool fenced_is_member(const struct fenced *f, uint32_t node_id);
/* Whether node_id runs a fencer (its "fencing" status entry exists). */
bool fenced_is_fencer(const struct fenced *f, uint32_t node_id);
/* Submits ops (an array, reference taken) with audit text; reply as for
 * haven_msg_link_call. */
int fenced_submit(struct fenced *f, struct json_object *ops,
                  const char *audit, haven_msg_reply_t reply, void *userdata);
/* The domain's error in a reply: its code (static "" when none). */
const char *fenced_reply_error(struct json_object *reply,
                               const char **ret_message);

/* fenced-requests.c */
/* Who carries out the request for victims[index], the open requests' victims
 * in request order: the lowest member that runs a fencer, is not that victim
 * and is not the victim of an earlier open request. 0 when no member can.
 * Pure. */
uint32_t fence_request_executor(const uint32_t *members, size_t n_members,
                                const uint32_t *fencers, size_t n_fencers,
                                const uint32_t *victims, size_t index);
void fenced_requests_check(struct fenced *f);
void fenced_requests_free(struct fenced *f);

/* fenced-monitor.c */
int fenced_monitor_start(struct fenced *f);
void fenced_monitor_stop(struct fenced *f);
void fenced_monitor_publish(struct fenced *f);
/* Whether node has a level whose every device passed its last check here. */
bool fenced_monitor_node_ok(struct fenced *f, uint32_t node_id,
                            char **ret_reason);

/* fenced-api.c */
int fenced_api_start(struct fenced *f);

/* Formats a CLOCK_REALTIME time as "2026-11-23 04:51:07 UTC". */
void fenced_format_time(uint64_t usec, char buf[static 32]);
