/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-pdusim: the lab's APC switched power strip (AP79xx class, and the
 * older MasterSwitch table) as an embedded net-snmp master agent. The model
 * (outlets, switching delays, the state file, the power command) lives in
 * pdusim-outlets.c; the SNMP objects, access control and the agent in
 * pdusim-agent.c; main.c only parses arguments and runs the loop. It is a
 * test tool: it must never block its loop or write outside its state dir.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "haven/macro.h"

#define PDU_OUTLETS_MAX 48
#define PDU_OUTLETS_DEFAULT 8
#define PDU_OUTLET_NAME_MAX 20         /* characters, as on the real card */
#define PDU_DELAY_MS_MAX (10u * 60u * 1000u)
#define PDU_REBOOT_MIN_MS 1000u        /* off time of a reboot, at least */
#define PDU_SECRET_MIN 8               /* net-snmp's minimum pass phrase */
#define PDU_SECRET_MAX 64
#define PDU_TOKEN_MAX 32               /* community and user names */
#define PDU_STATE_FILE "outlets.json"
#define PDU_STATE_FILE_MAX (64u * 1024u)
#define PDU_SNMP_DIR "snmp"            /* net-snmp's persistent dir in the state dir */
#define PDU_APP_NAME "haven-pdusim"
#define PDU_LISTEN_DEFAULT "198.18.0.254:161"

enum pdu_model {
        PDU_MODEL_RPDU,          /* sysObjectID .318.1.3.4.5 (AP79xx) */
        PDU_MODEL_MASTERSWITCH,  /* sysObjectID .318.1.3.4.2 (old table) */
        _PDU_MODEL_MAX,
        _PDU_MODEL_INVALID = -EINVAL,
};

/* What a client asks of one outlet (rPDUOutletControlOutletCommand,
 * sPDUOutletCtl, or the device-wide rPDUOutletDevCommand). */
enum outlet_action {
        OUTLET_ACTION_ON,
        OUTLET_ACTION_OFF,
        OUTLET_ACTION_REBOOT,
        OUTLET_ACTION_CANCEL,    /* drop a pending switch */
        _OUTLET_ACTION_MAX,
        _OUTLET_ACTION_INVALID = -EINVAL,
};

/* What the outlet's armed timer does when it fires. */
enum outlet_step {
        OUTLET_STEP_NONE,
        OUTLET_STEP_SWITCH_ON,
        OUTLET_STEP_SWITCH_OFF,
        OUTLET_STEP_REBOOT_OFF,  /* switch off, then arm the reboot's on */
        _OUTLET_STEP_MAX,
        _OUTLET_STEP_INVALID = -EINVAL,
};

struct pdu;

struct outlet {
        struct pdu *pdu;
        unsigned number;                    /* 1-based, as in the MIB */
        char name[PDU_OUTLET_NAME_MAX + 1];
        bool name_fixed;                    /* given by --outlet-name */
        bool on;
        enum outlet_step step;              /* != NONE: a switch is pending */
        unsigned int timer;                 /* net-snmp alarm id, 0 = none */
        /* The power command: at most one child per outlet; `powered` is the
         * state the last command was given (it starts equal to `on`). */
        pid_t power_pid;
        bool powered;
        /* What the last power command that succeeded did: whether the
         * node behind the outlet has power now. */
        bool node_on;
};

/* What the outlet's state reads. Without a power command: its state. With
 * one, "off" only once the outlet is off, no power command is running and
 * the last one that succeeded switched the node off: a fence that reads
 * the outlet back must not see "off" while the node still has power (the
 * lab's power command takes a moment; a failed one leaves the node on). */
bool pdu_outlet_reads_on(const struct outlet *o);

struct pdu_options {
        enum pdu_model model;
        char listen_address[64];            /* dotted IPv4 */
        unsigned port;
        unsigned n_outlets;
        const char *names[PDU_OUTLETS_MAX]; /* --outlet-name; NULL = default */
        unsigned delay_ms;
        const char *community_ro;
        const char *community_rw;
        const char *v3_user;                /* NULL: no SNMPv3 user */
        const char *v3_auth_password;
        const char *v3_priv_password;
        const char *state_dir;              /* NULL: nothing is persisted */
        const char *power_command;          /* NULL: none */
        const char *log_path;               /* NULL: stderr */
        const char *pid_file;               /* written once listening; NULL: none */
};

struct pdu {
        const struct pdu_options *options;  /* borrowed, outlives the pdu */
        unsigned n_outlets;
        struct outlet outlets[PDU_OUTLETS_MAX];
        bool quit;
        bool save_held, save_pending;       /* pdu_hold_save() */
        /* the agent's registrations (pdusim-agent.c) */
        struct pdu_instance *instances;
        size_t n_instances;
};

/* ==== pdusim-outlets.c ==== */

const char *pdu_model_to_string(enum pdu_model m);
enum pdu_model pdu_model_from_string(const char *s);
const char *outlet_action_to_string(enum outlet_action a);

/* Sets up p for options (borrowed): default names "Outlet N" unless given,
 * every outlet on, then the state file of options->state_dir if there is
 * one (its states; its names where no --outlet-name is given; outlets it
 * does not list stay on). Returns 0, or -EBADMSG for a state file that is
 * not ours (logged), or another -errno reading it. Runs no command. */
int pdu_init(struct pdu *p, const struct pdu_options *options);

/* Cancels every pending switch (without switching). Power command children
 * keep running on their own; nobody waits for them. */
void pdu_done(struct pdu *p);

/* Outlet 1..n_outlets, or NULL. */
struct outlet *pdu_outlet(struct pdu *p, long number);

/* Applies a client's request to outlet o: ON/OFF switch after the delay
 * (at once when it is 0); REBOOT switches off (after the delay) and on again
 * max(delay, PDU_REBOOT_MIN_MS) later; CANCEL drops a pending switch. A new
 * request replaces a pending one. Returns 0 or -ENOMEM (no timer). */
int outlet_request(struct outlet *o, enum outlet_action a);

/* Renames o (name: 0..PDU_OUTLET_NAME_MAX printable ASCII characters, as
 * checked by outlet_name_valid) and writes the state file. */
int outlet_rename(struct outlet *o, const char *name, size_t length);
bool outlet_name_valid(const char *name, size_t length);

/* Replaces path with data: written to path.tmp, synced, renamed over path.
 * Returns 0 or -errno (path.tmp is removed on failure). */
int pdu_file_replace(const char *path, const char *data);

/* Writes the state file (if there is a state dir) atomically. Returns 0 or
 * -errno; callers log. */
int pdu_save(struct pdu *p);

/* Between hold and release, switches do not write the state file; release
 * writes it once if any did (a device-wide command switches every outlet). */
void pdu_hold_save(struct pdu *p);
void pdu_release_save(struct pdu *p);

/* Reaps every exited power command child (waitpid WNOHANG), logs how each
 * ended, and starts the next one for an outlet whose state changed while
 * its command ran. Never blocks. */
void pdu_reap_children(struct pdu *p);

/* ==== pdusim-agent.c ==== */

/* Configures net-snmp (no MIB files, access control from the options,
 * persistent state only below the state dir), registers every object,
 * and opens the listening socket. Returns 0, or -EADDRNOTAVAIL when the
 * address cannot be bound, -EIO when net-snmp does not initialize, -EEXIST
 * when an object cannot be registered, -ENOMEM. Logs its errors; call
 * pdu_agent_stop() either way. */
int pdu_agent_start(struct pdu *p);

/* Closes the agent (net-snmp writes its persistent v3 state on the way) and
 * frees the registrations. Safe to call after a failed start. */
void pdu_agent_stop(struct pdu *p);
