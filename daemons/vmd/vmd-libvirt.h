/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The node agent's libvirt side, on the daemon's single sd-event loop:
 * libvirt's event loop implemented on sd-event (no thread of libvirt's own),
 * one connection to the local libvirtd with keepalive and reconnection,
 * domain operations (start a transient domain, ACPI shutdown with a destroy
 * after a timeout, destroy, reboot, reset, list, state), lifecycle events
 * that say whether the agent asked for what happened, and live migration
 * (peer-to-peer) in a child process with progress and downtime.
 *
 * Blocking: every call here except migration is one or a few short RPCs to
 * the local libvirtd, made synchronously on the loop. libvirt has no
 * per-call timeout, and its keepalive (interval × (count + 1) seconds,
 * default 2 × 4 = 8 s) only notices a dead libvirtd between calls: libvirt
 * 9.0 waits for a reply without any timeout. So each call is bounded by a
 * call guard (call_timeout_usec, default 30 s): a small thread that, past
 * the deadline, shuts the connection's socket down; the call then fails
 * with -ETIMEDOUT and the agent reconnects with a backoff. A migration runs
 * for seconds to minutes, so it runs in `virsh migrate` (fork + exec
 * through haven/exec.h) and only its progress queries touch the loop.
 *
 * Must not: call libvirt from another thread (the event implementation is
 * bound to one sd-event loop), define persistent domains (Haven, not
 * libvirt, decides where and whether a VM runs again), or log above debug.
 */
#pragma once

#include <systemd/sd-event.h>

#include "haven/macro.h"

#include "vmd-xml.h"

#define VMD_LIBVIRT_URI_DEFAULT "qemu:///system"
/* The text of the last libvirt error kept per agent, in bytes. */
#define VMD_LIBVIRT_ERROR_MAX 1024u
/* A migration's error text (what virsh printed), in bytes. */
#define VMD_MIGRATION_MESSAGE_MAX 1024u

/* ==== The event loop ==== */

/* Makes libvirt's event loop (virEventRegisterImpl) run on loop e: fd
 * watches become sd-event io sources, libvirt timeouts time sources, and
 * the free callbacks run from a defer source (never from inside libvirt's
 * remove calls, where they would deadlock). Process-wide, as libvirt's
 * registration is: the first call registers; a later call with the same
 * loop is a no-op; a call with another loop moves the implementation
 * there when libvirt has nothing open on the old one (tests), -EBUSY
 * otherwise. Also silences libvirt's default error printing (errors are
 * returned, and read with vmd_libvirt_last_error()). Must come before any
 * connection is opened. Returns 0, -EBUSY, -ENOMEM. */
int vmd_libvirt_event_register(sd_event *e);

/* Runs the free callbacks libvirt queued (normally the loop does on its
 * next iteration). For teardown, after the last connection is closed. */
void vmd_libvirt_event_flush(void);

/* How many fd watches and timeouts libvirt has open on the loop (for
 * tests: a closed connection leaves none behind). */
unsigned vmd_libvirt_event_sources(void);

/* ==== Domain states and events ==== */

/* libvirt's domain states, in the administrator's words; also the runtime
 * state published in the status map. */
enum vmd_domain_state {
        VMD_DOMAIN_STOPPED,       /* shut off (or no such domain) */
        VMD_DOMAIN_RUNNING,       /* running or blocked on a resource */
        VMD_DOMAIN_PAUSED,        /* paused (by libvirt, a migration, ...) */
        VMD_DOMAIN_SHUTTING_DOWN, /* being shut down */
        VMD_DOMAIN_CRASHED,       /* crashed (only with on_crash=preserve) */
        VMD_DOMAIN_SUSPENDED, /* suspended by the guest's power management */
        VMD_DOMAIN_UNKNOWN,   /* libvirt's "no state" */
        _VMD_DOMAIN_STATE_MAX,
        _VMD_DOMAIN_STATE_INVALID = -EINVAL,
};

/* What happened to a domain (lifecycle events). */
enum vmd_event_type {
        VMD_EVENT_DEFINED,
        VMD_EVENT_UNDEFINED,
        VMD_EVENT_STARTED,
        VMD_EVENT_SUSPENDED,
        VMD_EVENT_RESUMED,
        VMD_EVENT_STOPPED,
        VMD_EVENT_SHUTDOWN,    /* the guest finished shutting down (STOPPED
                                * follows) */
        VMD_EVENT_PMSUSPENDED, /* the guest suspended itself */
        VMD_EVENT_CRASHED,     /* the guest panicked (STOPPED/crashed follows,
                                * on_crash=destroy) */
        VMD_EVENT_REBOOTED,    /* the guest restarted inside the same QEMU
                                * (a guest reboot, or the agent's reboot or
                                * reset) */
        _VMD_EVENT_TYPE_MAX,
        _VMD_EVENT_TYPE_INVALID = -EINVAL,
};

/* Why: the detail of an event, or the reason of a state. */
enum vmd_reason {
        VMD_REASON_UNKNOWN,
        VMD_REASON_BOOTED,    /* STARTED, RUNNING */
        VMD_REASON_MIGRATED,  /* STARTED (in), STOPPED (out), SUSPENDED,
                               * RESUMED, RUNNING, PAUSED */
        VMD_REASON_RESTORED,  /* from a saved state */
        VMD_REASON_SNAPSHOT,  /* from a snapshot */
        VMD_REASON_WAKEUP,    /* woken from power management suspend */
        VMD_REASON_PAUSED,    /* SUSPENDED, PAUSED: by a libvirt client */
        VMD_REASON_IOERROR,   /* SUSPENDED, PAUSED: a disk error */
        VMD_REASON_WATCHDOG,  /* SUSPENDED, PAUSED: the guest's watchdog */
        VMD_REASON_UNPAUSED,  /* RESUMED, RUNNING */
        VMD_REASON_SHUTDOWN,  /* STOPPED, SHUTTING_DOWN: the guest shut down */
        VMD_REASON_DESTROYED, /* STOPPED: destroyed (powered off) */
        VMD_REASON_CRASHED,   /* STOPPED, CRASHED: the guest crashed */
        VMD_REASON_SAVED,     /* STOPPED: saved to a file */
        VMD_REASON_FAILED,    /* STOPPED: QEMU failed (or was killed) */
        VMD_REASON_GUEST,     /* SHUTDOWN: the guest asked for it */
        VMD_REASON_HOST,      /* SHUTDOWN: the host asked for it */
        VMD_REASON_PANICKED,  /* CRASHED */
        _VMD_REASON_MAX,
        _VMD_REASON_INVALID = -EINVAL,
};

/* "stopped", "running", "paused", "shutting-down", "crashed", "suspended",
 * "unknown"; NULL if out of range. */
const char *vmd_domain_state_to_string(enum vmd_domain_state s);
/* "defined", "undefined", "started", "suspended", "resumed", "stopped",
 * "shutdown", "pmsuspended", "crashed", "rebooted". */
const char *vmd_event_type_to_string(enum vmd_event_type t);
/* "unknown", "booted", "migrated", ..., "panicked" (the names above in
 * lowercase). */
const char *vmd_reason_to_string(enum vmd_reason r);

struct vmd_domain_event {
        const char *name; /* the domain's name (borrowed for the call) */
        const char *uuid; /* lowercase text form */
        enum vmd_event_type type;
        enum vmd_reason reason;
        /* The agent asked for this: STARTED after vmd_libvirt_start(),
         * STOPPED after vmd_libvirt_shutdown()/destroy() or the source side
         * of vmd_libvirt_migrate(), REBOOTED after vmd_libvirt_reboot() or
         * reset(). Always false for other types. */
        bool requested;
        int libvirt_event, libvirt_detail; /* as libvirt sent them */
};

/* True for a stop nobody asked this agent for: a guest that shut itself
 * down or crashed, QEMU dying, or someone else destroying it. A domain
 * migrated away by another client is not one (it runs elsewhere). The
 * glue applies the restart policy to these. */
bool vmd_domain_event_is_unexpected_stop(const struct vmd_domain_event *e);

/* ==== The connection ==== */

struct vmd_libvirt;

struct vmd_libvirt_options {
        const char *uri;               /* NULL: VMD_LIBVIRT_URI_DEFAULT */
        unsigned keepalive_interval_s; /* 0: 2 */
        unsigned keepalive_count;      /* 0: 3 */
        uint64_t reconnect_min_usec;   /* 0: 500 ms; doubles after each */
        uint64_t reconnect_max_usec;   /* 0: 30 s    failed attempt */
        uint64_t call_timeout_usec;    /* 0: 30 s; the longest any call (and
                                        * the opening of the connection) may
                                        * block the loop */
};

/* A lifecycle event of any domain of the connection. event is borrowed. */
typedef void (*vmd_libvirt_event_t)(struct vmd_libvirt *l,
                                    const struct vmd_domain_event *event,
                                    void *userdata);
/* The connection came up (connected; after a reconnection events may have
 * been missed: list the domains again) or went down. */
typedef void (*vmd_libvirt_connection_t)(struct vmd_libvirt *l, bool connected,
                                         void *userdata);

/* Creates the agent on loop e (vmd_libvirt_event_register(e) must have been
 * called), starts its call guard thread, and tries to connect at once; when
 * that fails it keeps trying with a backoff (see vmd_libvirt_is_connected()).
 * on_event and on_connection may be NULL; they are called from the loop,
 * never from inside this call (also the first on_connection(true) when the
 * connection opened at once), and must not free the agent. Returns 0 and
 * *ret (owned by the caller), -EINVAL (no event implementation on e),
 * -ENOMEM, or a pthread error. */
int vmd_libvirt_new(sd_event *e, const struct vmd_libvirt_options *options,
                    vmd_libvirt_event_t on_event,
                    vmd_libvirt_connection_t on_connection, void *userdata,
                    struct vmd_libvirt **ret);
/* Closes the connection, stops timers, cancels running migrations (the
 * libvirt job is aborted, virsh killed, done not called). NULL ok. */
struct vmd_libvirt *vmd_libvirt_free(struct vmd_libvirt *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct vmd_libvirt *, vmd_libvirt_free)

bool vmd_libvirt_is_connected(const struct vmd_libvirt *l);
const char *vmd_libvirt_uri(const struct vmd_libvirt *l);
/* libvirt's message for the last call of this agent that failed ("" if
 * none did). Valid until the next call. */
const char *vmd_libvirt_last_error(const struct vmd_libvirt *l);

/* ==== Domains ==== */

struct vmd_domain_info {
        char *name;
        char uuid[VM_UUID_STRING_MAX];
        enum vmd_domain_state state;
        enum vmd_reason reason;
        bool persistent; /* defined in libvirt (never one of Haven's) */
        int64_t vm_id;   /* from Haven's <metadata>; 0: not started by
                          * Haven */
};

void vmd_domain_info_done(struct vmd_domain_info *info);
/* Frees n infos and the array. NULL ok. */
void vmd_domain_info_array_free(struct vmd_domain_info *infos, size_t n);

/* Errors shared by the calls below: -ENOTCONN when not connected (or the
 * connection broke during the call), -ETIMEDOUT when libvirtd did not
 * answer within call_timeout_usec (the connection is then dropped and
 * reopened) or libvirt itself timed out, -ENOENT when there is no domain
 * called name, -ESRCH when the operation needs a running domain and it is
 * not, -EOPNOTSUPP when the hypervisor cannot do it, -EACCES/-EPERM when
 * libvirt refuses, -EIO for other libvirt failures; the text is in
 * vmd_libvirt_last_error(). */

/* Every domain libvirt knows (running ones and defined ones), in libvirt's
 * order. Returns 0 and *ret (n entries; free with
 * vmd_domain_info_array_free(); NULL when n is 0) and *ret_n. */
int vmd_libvirt_list(struct vmd_libvirt *l, struct vmd_domain_info **ret,
                     size_t *ret_n);
/* One domain by name. Fills *ret (vmd_domain_info_done()). */
int vmd_libvirt_get(struct vmd_libvirt *l, const char *name,
                    struct vmd_domain_info *ret);

/* Starts a transient domain from xml (vm_domain_xml()): it exists while it
 * runs and leaves nothing behind when it stops or its node dies. Returns 0,
 * -EEXIST when a domain of that name or UUID is already running, -EINVAL
 * when libvirt refuses the XML, or the errors above. */
int vmd_libvirt_start(struct vmd_libvirt *l, const char *xml);
/* Asks the guest to shut down (ACPI power button: Haven's domains have no
 * guest agent channel). When destroy_after_usec > 0 and the domain still
 * runs that long after, it is destroyed (and again every second while that
 * fails). Returns 0 when the request was delivered; the stop itself is the
 * STOPPED event (requested, reason shutdown or destroyed). */
int vmd_libvirt_shutdown(struct vmd_libvirt *l, const char *name,
                         uint64_t destroy_after_usec);
/* Powers the domain off at once (SIGTERM, then SIGKILL to QEMU). */
int vmd_libvirt_destroy(struct vmd_libvirt *l, const char *name);
/* Asks the guest to reboot (ACPI). */
int vmd_libvirt_reboot(struct vmd_libvirt *l, const char *name);
/* Resets the virtual hardware, like the reset button. */
int vmd_libvirt_reset(struct vmd_libvirt *l, const char *name);
/* Resumes a paused domain. */
int vmd_libvirt_resume(struct vmd_libvirt *l, const char *name);
/* The VNC port of a running domain (from its live XML). Returns the port
 * (> 0), -ENODATA when it has none (yet), or the errors above. */
int vmd_libvirt_vnc_port(struct vmd_libvirt *l, const char *name);

/* ==== Live migration ==== */

struct vmd_migration;

struct vmd_migration_options {
        /* The destination's libvirtd as the source's libvirtd reaches it
         * (peer-to-peer): qemu+tcp://ADDRESS/system over the interconnect. */
        const char *destination_uri;
        /* Where QEMU sends the memory: tcp://ADDRESS (the destination's
         * interconnect address). NULL: libvirt asks the destination, which
         * answers with its host name. */
        const char *migrate_uri;
        /* Haven vouches that every disk is on storage both nodes see (the
         * shared directory, an eSAN disk in its dual-primary window):
         * libvirt's own check only trusts network file systems it knows. */
        bool shared_storage;
        unsigned bandwidth_mib_s;        /* 0: no limit */
        uint64_t timeout_usec;           /* the whole migration; 0: 30 min */
        uint64_t progress_interval_usec; /* 0: 1 s */
};

struct vmd_migration_progress {
        uint64_t elapsed_ms; /* libvirt's time_elapsed */
        uint64_t data_total, data_processed, data_remaining; /* bytes */
        unsigned percent; /* 0..100, as virsh computes it */
};

struct vmd_migration_result {
        /* 0; -ECANCELED (vmd_migration_cancel()); -ETIMEDOUT (the timeout
         * passed: the job was aborted); -EIO (libvirt refused or failed:
         * message); -ENOEXEC (virsh could not run). On any failure the
         * domain stays on the source (libvirt guarantees that for a
         * pre-copy migration); source_running says whether it was found
         * running there afterwards (a domain a failed migration left paused
         * is resumed first). */
        int error;
        const char *message; /* libvirt's error text; NULL on success */
        bool source_running;
        uint64_t duration_usec; /* measured here, start to end */
        /* From the completed job's statistics, which the source's libvirtd
         * sends as a job-completed event when the migration ends (a
         * transient domain that left has no statistics to query on the
         * source any more); UINT64_MAX when the event did not come. */
        uint64_t downtime_ms;    /* VIR_DOMAIN_JOB_DOWNTIME */
        uint64_t elapsed_ms;     /* VIR_DOMAIN_JOB_TIME_ELAPSED */
        uint64_t data_processed; /* VIR_DOMAIN_JOB_DATA_PROCESSED, bytes */
};

typedef void (*vmd_migration_progress_t)(
        struct vmd_migration *m, const struct vmd_migration_progress *progress,
        void *userdata);
/* Called once, from the loop. result is borrowed for the call; m may be
 * freed inside. */
typedef void (*vmd_migration_done_t)(struct vmd_migration *m,
                                     const struct vmd_migration_result *result,
                                     void *userdata);

/* Starts migrating the running domain name live, peer-to-peer, to
 * options->destination_uri, as a transient domain there. Runs
 * `virsh -c URI migrate --live --p2p ...` as a child on the loop, polls
 * the job's progress (virDomainGetJobStats) every progress_interval_usec
 * (progress may be NULL), and takes the downtime from the job-completed
 * event (waiting up to 2 s for it after virsh succeeded). The
 * STOPPED/migrated event on the source is requested.
 * Returns 0 and *ret (owned by the caller: freeing it before done aborts
 * the job and kills virsh without calling done; NULL ret: the migration
 * frees itself after done), -EINVAL (no destination_uri), -EBUSY when the
 * domain is already being migrated, -ENOTCONN/-ENOENT/-ESRCH as above, or
 * -errno when virsh cannot start. */
int vmd_libvirt_migrate(struct vmd_libvirt *l, const char *name,
                        const struct vmd_migration_options *options,
                        vmd_migration_progress_t progress,
                        vmd_migration_done_t done, void *userdata,
                        struct vmd_migration **ret);
/* Aborts the job (virDomainAbortJob); done follows with -ECANCELED unless
 * the migration had already finished. Returns 0, -EALREADY when done was
 * called, or the libvirt errors. */
int vmd_migration_cancel(struct vmd_migration *m);
struct vmd_migration *vmd_migration_free(struct vmd_migration *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct vmd_migration *, vmd_migration_free)
const char *vmd_migration_name(const struct vmd_migration *m);
/* The latest progress polled (zeros before the first). */
const struct vmd_migration_progress *
vmd_migration_get_progress(const struct vmd_migration *m);

/* What a failed `virsh` said, for the administrator: its "error: " lines
 * (stderr_text, may be NULL) joined with "; ", control characters replaced
 * by spaces, cut to size - 1 bytes on a character boundary; without such a
 * line, how virsh ended (code and status as in struct haven_exec_result).
 * Always NUL-terminates buffer (size > 0). */
void vmd_virsh_error_message(const char *stderr_text, int code, int status,
                             char *buffer, size_t size);

/* The completed job statistics of a domain that migrated in (on the
 * destination, read by its own agent), kept for later readers. Fills *ret
 * (the statistics fields only; error, message and duration_usec are 0).
 * Returns 0, -ENODATA when there is no completed job, or the errors above. */
int vmd_libvirt_migration_stats(struct vmd_libvirt *l, const char *name,
                                struct vmd_migration_result *ret);
