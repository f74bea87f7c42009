/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Service control: start, stop, restart, reload a named service, and ask
 * whether it runs, without knowing who starts services on this machine.
 * Two backends: systemd (the appliance; D-Bus calls to PID 1 through sd-bus,
 * waiting for the job to finish) and the lab's per-node supervisor
 * (haven-lab-init; framed JSON on its control socket). Blocking calls with a
 * timeout, for CLIs, tests and a daemon's rare service changes. Must not:
 * run systemctl or any other program, or log above debug.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "haven/macro.h"

/* The lab supervisor's control socket inside a lab node, and the
 * environment variable that overrides it (tests point it at their own
 * fake supervisor). */
#define HAVEN_SERVICE_LAB_SOCKET "/run/haven-lab/init.sock"
#define HAVEN_SERVICE_LAB_SOCKET_ENV "HAVEN_LAB_INIT_SOCKET"
/* "systemd" or "lab": overrides detection. */
#define HAVEN_SERVICE_MANAGER_ENV "HAVEN_SERVICE_MANAGER"
/* Present when systemd is PID 1 (sd_booted()'s test). */
#define HAVEN_SERVICE_SYSTEMD_DIR "/run/systemd/system"

/* A plain service name ("corosync", "haven-domaind"): 1..64 characters of
 * [A-Za-z0-9_.@-], starting with a letter or digit, not ending in
 * ".service" (the systemd backend appends that itself). */
#define HAVEN_SERVICE_NAME_MAX 64

/* How long haven_service_control() waits for the manager to finish the
 * job: systemd's default start timeout is 90 s, the lab supervisor kills a
 * service that does not stop within 10 s. */
#define HAVEN_SERVICE_TIMEOUT_USEC (120ULL * 1000ULL * 1000ULL)

enum haven_service_action {
        HAVEN_SERVICE_START,
        HAVEN_SERVICE_STOP,
        HAVEN_SERVICE_RESTART,
        HAVEN_SERVICE_RELOAD,
        _HAVEN_SERVICE_ACTION_MAX,
        _HAVEN_SERVICE_ACTION_INVALID = -EINVAL,
};

enum haven_service_manager {
        HAVEN_SERVICE_MANAGER_SYSTEMD,
        HAVEN_SERVICE_MANAGER_LAB,
        _HAVEN_SERVICE_MANAGER_MAX,
        _HAVEN_SERVICE_MANAGER_INVALID = -EINVAL,
};

/* "start", "stop", "restart", "reload" (the lab protocol's words); NULL for
 * an out-of-range value. from_string returns _INVALID for unknown text. */
const char *haven_service_action_to_string(enum haven_service_action a);
enum haven_service_action haven_service_action_from_string(const char *s);
/* "systemd", "lab". */
const char *haven_service_manager_to_string(enum haven_service_manager m);
enum haven_service_manager haven_service_manager_from_string(const char *s);

/* Whether name is a plain service name (see HAVEN_SERVICE_NAME_MAX). */
bool haven_service_name_is_valid(const char *name);
/* The systemd unit for a plain name: "corosync" → "corosync.service".
 * Returns 0 and *ret (the caller frees it), -EINVAL for an invalid name,
 * -ENOMEM. */
int haven_service_unit_name(const char *name, char **ret);
/* The lab supervisor's socket: $HAVEN_LAB_INIT_SOCKET if set and not
 * empty, else HAVEN_SERVICE_LAB_SOCKET. Borrowed (environment or static). */
const char *haven_service_lab_socket(void);

/* Which manager starts services here:
 *   1. $HAVEN_SERVICE_MANAGER ("systemd" or "lab") if set and not empty;
 *      any other value is -EINVAL;
 *   2. lab, if the lab socket (haven_service_lab_socket()) exists;
 *   3. systemd, if HAVEN_SERVICE_SYSTEMD_DIR exists;
 *   4. otherwise -ENOENT.
 * Returns 0 and *ret, or the negative errno above. Checks paths only:
 * connects to nothing. */
int haven_service_manager_detect(enum haven_service_manager *ret);

/* Performs action on the service and waits until the manager reports the
 * job finished (systemd: its JobRemoved signal; lab: the supervisor's
 * reply, which for stop/restart comes when the process has exited), at most
 * timeout_usec (0 = HAVEN_SERVICE_TIMEOUT_USEC). Starting a running
 * service and stopping a stopped one succeed. Returns 0, or:
 *   -EINVAL       invalid name or action (nothing sent), or the manager
 *                 refused the request as malformed;
 *   -ENOENT       the manager has no such service;
 *   -ESRCH        reload of a service that is not running;
 *   -EOPNOTSUPP   systemd: the unit cannot do that (reload without
 *                 ExecReload=);
 *   -EIO          the manager tried and failed (the job failed, the
 *                 service could not be started, a dependency failed);
 *   -ECANCELED    systemd: the job was canceled by another job;
 *   -ETIMEDOUT    no result within the timeout (the job may still finish);
 *   -ECONNREFUSED the manager is not reachable (no socket, nobody listens);
 *   -EPROTO       the manager's answer made no sense;
 *   another negative errno for local failures (-ENOMEM, I/O errors). */
int haven_service_control_timeout(enum haven_service_manager m,
                                  const char *name,
                                  enum haven_service_action action,
                                  uint64_t timeout_usec);
/* The same with the default timeout. */
int haven_service_control(enum haven_service_manager m, const char *name,
                          enum haven_service_action action);

/* Returns > 0 when the service runs (lab: state "running"; systemd:
 * ActiveState "active" or "reloading"), 0 when it does not (stopped,
 * stopping, waiting to be restarted after a crash, failed, unknown to
 * systemd), or a negative errno as for haven_service_control() (the lab
 * answers -ENOENT for a service it does not define). */
int haven_service_is_active(enum haven_service_manager m, const char *name);

/* ==== systemd over a given bus ====
 * The systemd backend on a connection the caller owns: a daemon that
 * already has one, and the unit tests, which talk to a fake manager over a
 * socket pair (this sandbox has no systemd as PID 1; the real manager is
 * only exercised on the appliance). bus must be started; it is used
 * blocking (sd_bus_call, sd_bus_process, sd_bus_wait) and must not be
 * attached to an event loop that runs concurrently. Same returns as above;
 * -ECONNREFUSED is not used (the caller connected). */
int haven_service_systemd_control(sd_bus *bus, const char *name,
                                  enum haven_service_action action,
                                  uint64_t timeout_usec);
int haven_service_systemd_is_active(sd_bus *bus, const char *name,
                                    uint64_t timeout_usec);
