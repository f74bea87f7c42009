/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-lab-init: the per-node supervisor of the lab. It is PID 1 of a lab
 * node's pid namespace: it starts the node's services, reaps every child
 * (orphans included), restarts crashed daemons with a backoff, records their
 * PIDs, and answers service control requests on a unix socket. It is the
 * lab's implementation of Haven's service control; systemd is the other.
 */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "haven/macro.h"
#include "haven/msg.h"

#define INIT_SOCKET_PATH "/run/haven-lab/init.sock"
#define INIT_SERVICES_MAX 32

enum service_state {
        SERVICE_STOPPED,
        SERVICE_RUNNING,
        SERVICE_STOPPING,
        SERVICE_WAITING, /* crashed; restart timer armed */
        _SERVICE_STATE_MAX,
        _SERVICE_STATE_INVALID = -EINVAL,
};

struct service {
        struct supervisor *supervisor;
        char *name;
        char **argv;
        char *condition;        /* path that must exist for autostart */
        bool autostart;
        enum service_state state;
        pid_t pid;
        unsigned restarts;      /* unrequested exits since the last start */
        uint64_t started_usec;  /* CLOCK_MONOTONIC */
        uint64_t backoff_usec;
        int last_exit_code, last_exit_status;
        sd_event_source *restart_timer;
        sd_event_source *kill_timer;
        /* connections waiting for this service to stop (stop/restart) */
        struct haven_msg_conn *waiters[8];
        size_t n_waiters;
        bool restart_after_stop;
};

struct supervisor {
        sd_event *event;
        char *node;          /* node name, e.g. "node1" */
        char *record_dir;    /* host-visible directory for the PID record */
        char *log_dir;       /* where each service's stdout/stderr go */
        struct service services[INIT_SERVICES_MAX];
        size_t n_services;
        struct haven_msg_server *control;
};

/* init-services.c */
const char *service_state_to_string(enum service_state s);
int supervisor_load_services(struct supervisor *s, const char *path);
struct service *supervisor_find(struct supervisor *s, const char *name);
int service_start(struct service *svc);
int service_stop(struct service *svc, struct haven_msg_conn *waiter,
                 bool restart_after);
int service_reload(struct service *svc);
void supervisor_autostart(struct supervisor *s);
int supervisor_reap(struct supervisor *s);
int supervisor_write_record(struct supervisor *s);
void supervisor_done(struct supervisor *s);
struct json_object *service_to_json(const struct service *svc);

/* init-control.c */
int control_open(struct supervisor *s);
int control_client(int argc, char **argv);
