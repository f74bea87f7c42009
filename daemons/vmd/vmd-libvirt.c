/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The node agent's libvirt side (see vmd-libvirt.h): libvirt's event loop
 * on sd-event, the connection with keepalive and reconnection, domain
 * operations, lifecycle events with who asked for them, and live migration
 * through a `virsh migrate` child. Owns the libvirt connection, the agent's
 * requests (what it asked libvirt to do, until the event says it happened),
 * its migrations, and one call guard thread per agent.
 * Must not: call libvirt or sd-event off the loop's thread (the guard thread
 * only ever calls shutdown(2)), define persistent domains, parse anything
 * virsh prints beyond its "error:" lines, or log above debug.
 */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/param.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "haven/exec.h"
#include "haven/log.h"
#include "haven/loop.h"

#include "vmd-libvirt.h"

/* libvirt's timeouts are in milliseconds; a coarser accuracy would let
 * sd-event delay keepalive pings by up to 250 ms. */
#define TIMER_ACCURACY_USEC USEC_PER_MSEC
#define KEEPALIVE_INTERVAL_DEFAULT 2
#define KEEPALIVE_COUNT_DEFAULT 3u
#define RECONNECT_MIN_DEFAULT_USEC (500 * USEC_PER_MSEC)
#define RECONNECT_MAX_DEFAULT_USEC (30 * USEC_PER_SEC)
/* A destroy after a shutdown timeout that failed is tried again this often. */
#define DESTROY_RETRY_USEC USEC_PER_SEC
#define MIGRATION_TIMEOUT_DEFAULT_USEC (30 * 60 * USEC_PER_SEC)
#define MIGRATION_PROGRESS_DEFAULT_USEC USEC_PER_SEC
/* virsh is killed this long after the migration's own timeout aborted the
 * job without virsh ending. */
#define MIGRATION_KILL_GRACE_USEC (60 * USEC_PER_SEC)
/* How long a successful migration waits for the source's job-completed
 * event (it normally comes before virsh exits). */
#define MIGRATION_STATS_GRACE_USEC (2 * USEC_PER_SEC)
/* virsh's stderr kept (its error lines are short). */
#define VIRSH_OUTPUT_MAX (64u * 1024u)
#define DOMAIN_XML_MAX (16u * 1024u * 1024u)
#define CALL_TIMEOUT_DEFAULT_USEC (30 * USEC_PER_SEC)

DEFINE_TRIVIAL_CLEANUP_FUNC(virDomainPtr, virDomainFree)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDoc *, xmlFreeDoc)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlXPathContext *, xmlXPathFreeContext)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlXPathObject *, xmlXPathFreeObject)

static void xml_freep(xmlChar **p) {
        if (*p)
                xmlFree(*p);
}

/* ==== The event loop ==== */

struct event_watch {
        struct event_watch *next;
        int id;
        int fd; /* libvirt's descriptor; the source watches a duplicate */
        sd_event_source *source;
        virEventHandleCallback cb;
        void *opaque;
        virFreeCallback ff;
};

struct event_timer {
        struct event_timer *next;
        int id;
        int frequency_ms; /* -1: off, 0: every iteration, > 0: the period */
        sd_event_source *source;
        virEventTimeoutCallback cb;
        void *opaque;
        virFreeCallback ff;
};

/* A free callback waiting for a clean stack. */
struct event_release {
        struct event_release *next;
        virFreeCallback ff;
        void *opaque;
};

/* virEventRegisterImpl() takes no context and can be called once per
 * process, so the implementation's state is process-wide too. */
static struct {
        bool registered;
        sd_event *event;
        sd_event_source *release_source;
        struct event_watch *watches;
        struct event_timer *timers;
        struct event_release *releases;
        int last_watch_id, last_timer_id;
        unsigned n_sources;
        /* While an agent opens its connection: the agent, which learns the
         * connection's socket from the watch libvirt adds for it. */
        struct vmd_libvirt *capture;
} impl;

static void guard_capture(struct vmd_libvirt *l, int fd);

static uint32_t epoll_from_libvirt(int events) {
        uint32_t e = 0;

        if (events & VIR_EVENT_HANDLE_READABLE)
                e |= EPOLLIN;
        if (events & VIR_EVENT_HANDLE_WRITABLE)
                e |= EPOLLOUT;
        /* EPOLLERR and EPOLLHUP are always reported. */
        return e;
}

static int libvirt_from_epoll(uint32_t revents) {
        int events = 0;

        if (revents & EPOLLIN)
                events |= VIR_EVENT_HANDLE_READABLE;
        if (revents & EPOLLOUT)
                events |= VIR_EVENT_HANDLE_WRITABLE;
        if (revents & EPOLLERR)
                events |= VIR_EVENT_HANDLE_ERROR;
        if (revents & EPOLLHUP)
                events |= VIR_EVENT_HANDLE_HANGUP;
        return events;
}

/* Queues ff(opaque) for the release source: libvirt's documentation says
 * a free callback run from inside its remove call will likely deadlock. */
static void release_later(virFreeCallback ff, void *opaque) {
        struct event_release *r;

        if (!ff)
                return;
        r = malloc(sizeof(*r));
        if (!r) {
                /* Out of memory: leaking the object beats a deadlock. */
                log_debug("libvirt event loop: cannot queue a free callback, "
                          "leaking it");
                return;
        }
        *r = (struct event_release){
                .next = impl.releases, .ff = ff, .opaque = opaque};
        impl.releases = r;
        if (impl.release_source)
                (void) sd_event_source_set_enabled(impl.release_source,
                                                   SD_EVENT_ONESHOT);
}

void vmd_libvirt_event_flush(void) {
        /* A free callback may remove watches and queue more: take the list
         * until it stays empty. */
        while (impl.releases) {
                struct event_release *list = impl.releases, *reversed = NULL;

                impl.releases = NULL;
                while (list) { /* oldest first */
                        struct event_release *next = list->next;

                        list->next = reversed;
                        reversed = list;
                        list = next;
                }
                while (reversed) {
                        struct event_release *next = reversed->next;

                        reversed->ff(reversed->opaque);
                        free(reversed);
                        reversed = next;
                }
        }
}

static int on_release(sd_event_source *s, void *userdata) {
        vmd_libvirt_event_flush();
        return 0;
}

unsigned vmd_libvirt_event_sources(void) {
        return impl.n_sources;
}

static int on_watch(sd_event_source *s, int fd, uint32_t revents,
                    void *userdata) {
        struct event_watch *w = userdata;
        virEventHandleCallback cb = w->cb;
        void *opaque = w->opaque;
        int id = w->id, libvirt_fd = w->fd;

        /* cb may remove (and so free) w: nothing of w after this. */
        cb(id, libvirt_fd, libvirt_from_epoll(revents), opaque);
        return 0;
}

static struct event_watch *watch_find(int id, struct event_watch ***ret_link) {
        for (struct event_watch **i = &impl.watches; *i; i = &(*i)->next)
                if ((*i)->id == id) {
                        if (ret_link)
                                *ret_link = i;
                        return *i;
                }
        return NULL;
}

static void watch_set_events(struct event_watch *w, int events) {
        /* An fd registered with no events still reports errors and hangups;
         * libvirt asks for nothing at all then. */
        if (events == 0) {
                (void) sd_event_source_set_enabled(w->source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_io_events(w->source,
                                             epoll_from_libvirt(events));
        (void) sd_event_source_set_enabled(w->source, SD_EVENT_ON);
}

/* The same descriptor may be watched twice for different events (libvirt
 * allows that, epoll does not): each watch polls its own duplicate, which
 * the source owns and closes. */
static int impl_add_handle(int fd, int events, virEventHandleCallback cb,
                           void *opaque, virFreeCallback ff) {
        _cleanup_free_ struct event_watch *w = NULL;
        _cleanup_close_ int copy = -1;
        int r;

        if (!impl.event || fd < 0 || !cb)
                return -1;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -1;
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return -1;
        r = sd_event_add_io(impl.event, &w->source, copy,
                            epoll_from_libvirt(events), on_watch, w);
        if (r < 0) {
                log_debug_errno(r, "libvirt event loop: cannot watch fd %d: %m",
                                fd);
                return -1;
        }
        (void) sd_event_source_set_io_fd_own(w->source, true);
        copy = -1;
        (void) sd_event_source_set_description(w->source, "libvirt-watch");
        w->fd = fd;
        w->cb = cb;
        w->opaque = opaque;
        w->ff = ff;
        watch_set_events(w, events);
        if (impl.capture)
                guard_capture(impl.capture, fd);

        do /* ids are positive and unique among the open watches */
                impl.last_watch_id = impl.last_watch_id == INT_MAX
                                             ? 1
                                             : impl.last_watch_id + 1;
        while (watch_find(impl.last_watch_id, NULL));
        w->id = impl.last_watch_id;
        w->next = impl.watches;
        impl.watches = w;
        impl.n_sources++;
        return TAKE_PTR(w)->id;
}

static void impl_update_handle(int id, int events) {
        struct event_watch *w = watch_find(id, NULL);

        if (w)
                watch_set_events(w, events);
}

static int impl_remove_handle(int id) {
        struct event_watch **link, *w = watch_find(id, &link);

        if (!w)
                return -1;
        *link = w->next;
        /* Safe inside the source's own callback: sd-event frees it after. */
        w->source = sd_event_source_disable_unref(w->source);
        release_later(w->ff, w->opaque);
        free(w);
        impl.n_sources--;
        return 0;
}

static struct event_timer *timer_find(int id, struct event_timer ***ret_link) {
        for (struct event_timer **i = &impl.timers; *i; i = &(*i)->next)
                if ((*i)->id == id) {
                        if (ret_link)
                                *ret_link = i;
                        return *i;
                }
        return NULL;
}

/* Arms t to fire frequency_ms after the loop's current time, and again
 * every period after that (on_timer re-arms), or disarms it for -1. */
static void timer_arm(struct event_timer *t, int frequency_ms) {
        uint64_t now;

        t->frequency_ms = frequency_ms;
        if (frequency_ms < 0) {
                (void) sd_event_source_set_enabled(t->source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_now(impl.event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(
                t->source, now + (uint64_t) frequency_ms * USEC_PER_MSEC);
        (void) sd_event_source_set_enabled(t->source, SD_EVENT_ON);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct event_timer *t = userdata;
        virEventTimeoutCallback cb = t->cb;
        void *opaque = t->opaque;
        int id = t->id;

        /* A timeout repeats until libvirt changes or removes it (0: on
         * every iteration). */
        timer_arm(t, t->frequency_ms);
        cb(id, opaque); /* may remove (free) t */
        return 0;
}

static int impl_add_timeout(int frequency_ms, virEventTimeoutCallback cb,
                            void *opaque, virFreeCallback ff) {
        _cleanup_free_ struct event_timer *t = NULL;
        int r;

        if (!impl.event || !cb)
                return -1;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -1;
        r = sd_event_add_time(impl.event, &t->source, CLOCK_MONOTONIC, 0,
                              TIMER_ACCURACY_USEC, on_timer, t);
        if (r < 0) {
                log_debug_errno(r,
                                "libvirt event loop: cannot add a timer: %m");
                return -1;
        }
        (void) sd_event_source_set_description(t->source, "libvirt-timer");
        t->cb = cb;
        t->opaque = opaque;
        t->ff = ff;
        timer_arm(t, frequency_ms);

        do
                impl.last_timer_id = impl.last_timer_id == INT_MAX
                                             ? 1
                                             : impl.last_timer_id + 1;
        while (timer_find(impl.last_timer_id, NULL));
        t->id = impl.last_timer_id;
        t->next = impl.timers;
        impl.timers = t;
        impl.n_sources++;
        return TAKE_PTR(t)->id;
}

static void impl_update_timeout(int id, int frequency_ms) {
        struct event_timer *t = timer_find(id, NULL);

        if (t)
                timer_arm(t, frequency_ms);
}

static int impl_remove_timeout(int id) {
        struct event_timer **link, *t = timer_find(id, &link);

        if (!t)
                return -1;
        *link = t->next;
        t->source = sd_event_source_disable_unref(t->source);
        release_later(t->ff, t->opaque);
        free(t);
        impl.n_sources--;
        return 0;
}

static void ignore_libvirt_error(void *userdata, virErrorPtr error) {
        /* Errors are read with virGetLastError() where they happen. */
}

/* Points the implementation at loop e. */
static int impl_bind(sd_event *e) {
        _cleanup_(sd_event_source_disable_unrefp) sd_event_source *s = NULL;
        int r;

        r = sd_event_add_defer(e, &s, on_release, NULL);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        (void) sd_event_source_set_description(s, "libvirt-release");

        impl.release_source =
                sd_event_source_disable_unref(impl.release_source);
        impl.event = sd_event_unref(impl.event);
        impl.release_source = TAKE_PTR(s);
        impl.event = sd_event_ref(e);
        return 0;
}

int vmd_libvirt_event_register(sd_event *e) {
        int r;

        assert(e);

        if (impl.registered) {
                if (impl.event == e)
                        return 0;
                vmd_libvirt_event_flush();
                if (impl.watches || impl.timers)
                        return -EBUSY;
                return impl_bind(e);
        }

        if (virInitialize() < 0)
                return -EIO;
        virSetErrorFunc(NULL, ignore_libvirt_error);
        r = impl_bind(e);
        if (r < 0)
                return r;
        virEventRegisterImpl(impl_add_handle, impl_update_handle,
                             impl_remove_handle, impl_add_timeout,
                             impl_update_timeout, impl_remove_timeout);
        impl.registered = true;
        return 0;
}

/* ==== States and events as text ==== */

static const char *const domain_state_table[_VMD_DOMAIN_STATE_MAX] = {
        [VMD_DOMAIN_STOPPED] = "stopped",
        [VMD_DOMAIN_RUNNING] = "running",
        [VMD_DOMAIN_PAUSED] = "paused",
        [VMD_DOMAIN_SHUTTING_DOWN] = "shutting-down",
        [VMD_DOMAIN_CRASHED] = "crashed",
        [VMD_DOMAIN_SUSPENDED] = "suspended",
        [VMD_DOMAIN_UNKNOWN] = "unknown",
};

static const char *const event_type_table[_VMD_EVENT_TYPE_MAX] = {
        [VMD_EVENT_DEFINED] = "defined",
        [VMD_EVENT_UNDEFINED] = "undefined",
        [VMD_EVENT_STARTED] = "started",
        [VMD_EVENT_SUSPENDED] = "suspended",
        [VMD_EVENT_RESUMED] = "resumed",
        [VMD_EVENT_STOPPED] = "stopped",
        [VMD_EVENT_SHUTDOWN] = "shutdown",
        [VMD_EVENT_PMSUSPENDED] = "pmsuspended",
        [VMD_EVENT_CRASHED] = "crashed",
        [VMD_EVENT_REBOOTED] = "rebooted",
};

static const char *const reason_table[_VMD_REASON_MAX] = {
        [VMD_REASON_UNKNOWN] = "unknown",
        [VMD_REASON_BOOTED] = "booted",
        [VMD_REASON_MIGRATED] = "migrated",
        [VMD_REASON_RESTORED] = "restored",
        [VMD_REASON_SNAPSHOT] = "snapshot",
        [VMD_REASON_WAKEUP] = "wakeup",
        [VMD_REASON_PAUSED] = "paused",
        [VMD_REASON_IOERROR] = "ioerror",
        [VMD_REASON_WATCHDOG] = "watchdog",
        [VMD_REASON_UNPAUSED] = "unpaused",
        [VMD_REASON_SHUTDOWN] = "shutdown",
        [VMD_REASON_DESTROYED] = "destroyed",
        [VMD_REASON_CRASHED] = "crashed",
        [VMD_REASON_SAVED] = "saved",
        [VMD_REASON_FAILED] = "failed",
        [VMD_REASON_GUEST] = "guest",
        [VMD_REASON_HOST] = "host",
        [VMD_REASON_PANICKED] = "panicked",
};

const char *vmd_domain_state_to_string(enum vmd_domain_state s) {
        return s >= 0 && s < _VMD_DOMAIN_STATE_MAX ? domain_state_table[s]
                                                   : NULL;
}

const char *vmd_event_type_to_string(enum vmd_event_type t) {
        return t >= 0 && t < _VMD_EVENT_TYPE_MAX ? event_type_table[t] : NULL;
}

const char *vmd_reason_to_string(enum vmd_reason r) {
        return r >= 0 && r < _VMD_REASON_MAX ? reason_table[r] : NULL;
}

bool vmd_domain_event_is_unexpected_stop(const struct vmd_domain_event *e) {
        assert(e);
        return e->type == VMD_EVENT_STOPPED && !e->requested &&
               e->reason != VMD_REASON_MIGRATED;
}

/* libvirt's (state, reason) → ours. */
static enum vmd_domain_state state_from_libvirt(int state) {
        switch (state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_BLOCKED:
                return VMD_DOMAIN_RUNNING;
        case VIR_DOMAIN_PAUSED:
                return VMD_DOMAIN_PAUSED;
        case VIR_DOMAIN_SHUTDOWN:
                return VMD_DOMAIN_SHUTTING_DOWN;
        case VIR_DOMAIN_SHUTOFF:
                return VMD_DOMAIN_STOPPED;
        case VIR_DOMAIN_CRASHED:
                return VMD_DOMAIN_CRASHED;
        case VIR_DOMAIN_PMSUSPENDED:
                return VMD_DOMAIN_SUSPENDED;
        default:
                return VMD_DOMAIN_UNKNOWN;
        }
}

static enum vmd_reason state_reason_from_libvirt(int state, int reason) {
        switch (state) {
        case VIR_DOMAIN_RUNNING:
                switch (reason) {
                case VIR_DOMAIN_RUNNING_BOOTED:
                        return VMD_REASON_BOOTED;
                case VIR_DOMAIN_RUNNING_MIGRATED:
                case VIR_DOMAIN_RUNNING_MIGRATION_CANCELED:
                case VIR_DOMAIN_RUNNING_POSTCOPY:
                case VIR_DOMAIN_RUNNING_POSTCOPY_FAILED:
                        return VMD_REASON_MIGRATED;
                case VIR_DOMAIN_RUNNING_RESTORED:
                case VIR_DOMAIN_RUNNING_SAVE_CANCELED:
                        return VMD_REASON_RESTORED;
                case VIR_DOMAIN_RUNNING_FROM_SNAPSHOT:
                        return VMD_REASON_SNAPSHOT;
                case VIR_DOMAIN_RUNNING_UNPAUSED:
                        return VMD_REASON_UNPAUSED;
                case VIR_DOMAIN_RUNNING_WAKEUP:
                        return VMD_REASON_WAKEUP;
                case VIR_DOMAIN_RUNNING_CRASHED:
                        return VMD_REASON_CRASHED;
                }
                break;
        case VIR_DOMAIN_PAUSED:
                switch (reason) {
                case VIR_DOMAIN_PAUSED_USER:
                        return VMD_REASON_PAUSED;
                case VIR_DOMAIN_PAUSED_MIGRATION:
                case VIR_DOMAIN_PAUSED_POSTCOPY:
                case VIR_DOMAIN_PAUSED_POSTCOPY_FAILED:
                        return VMD_REASON_MIGRATED;
                case VIR_DOMAIN_PAUSED_SAVE:
                        return VMD_REASON_SAVED;
                case VIR_DOMAIN_PAUSED_IOERROR:
                        return VMD_REASON_IOERROR;
                case VIR_DOMAIN_PAUSED_WATCHDOG:
                        return VMD_REASON_WATCHDOG;
                case VIR_DOMAIN_PAUSED_FROM_SNAPSHOT:
                case VIR_DOMAIN_PAUSED_SNAPSHOT:
                        return VMD_REASON_SNAPSHOT;
                case VIR_DOMAIN_PAUSED_SHUTTING_DOWN:
                        return VMD_REASON_SHUTDOWN;
                case VIR_DOMAIN_PAUSED_CRASHED:
                        return VMD_REASON_CRASHED;
                case VIR_DOMAIN_PAUSED_STARTING_UP:
                        return VMD_REASON_BOOTED;
                }
                break;
        case VIR_DOMAIN_SHUTDOWN:
                return VMD_REASON_SHUTDOWN;
        case VIR_DOMAIN_SHUTOFF:
                switch (reason) {
                case VIR_DOMAIN_SHUTOFF_SHUTDOWN:
                        return VMD_REASON_SHUTDOWN;
                case VIR_DOMAIN_SHUTOFF_DESTROYED:
                        return VMD_REASON_DESTROYED;
                case VIR_DOMAIN_SHUTOFF_CRASHED:
                        return VMD_REASON_CRASHED;
                case VIR_DOMAIN_SHUTOFF_MIGRATED:
                        return VMD_REASON_MIGRATED;
                case VIR_DOMAIN_SHUTOFF_SAVED:
                        return VMD_REASON_SAVED;
                case VIR_DOMAIN_SHUTOFF_FAILED:
                case VIR_DOMAIN_SHUTOFF_DAEMON:
                        return VMD_REASON_FAILED;
                case VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT:
                        return VMD_REASON_SNAPSHOT;
                }
                break;
        case VIR_DOMAIN_CRASHED:
                return reason == VIR_DOMAIN_CRASHED_PANICKED
                               ? VMD_REASON_PANICKED
                               : VMD_REASON_CRASHED;
        }
        return VMD_REASON_UNKNOWN;
}

/* libvirt's lifecycle (event, detail) → ours. Returns false for an event
 * this version does not know. */
static bool event_from_libvirt(int event, int detail,
                               enum vmd_event_type *ret_type,
                               enum vmd_reason *ret_reason) {
        enum vmd_reason reason = VMD_REASON_UNKNOWN;
        enum vmd_event_type type;

        switch (event) {
        case VIR_DOMAIN_EVENT_DEFINED:
                type = VMD_EVENT_DEFINED;
                if (detail == VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT)
                        reason = VMD_REASON_SNAPSHOT;
                break;
        case VIR_DOMAIN_EVENT_UNDEFINED:
                type = VMD_EVENT_UNDEFINED;
                break;
        case VIR_DOMAIN_EVENT_STARTED:
                type = VMD_EVENT_STARTED;
                switch (detail) {
                case VIR_DOMAIN_EVENT_STARTED_BOOTED:
                        reason = VMD_REASON_BOOTED;
                        break;
                case VIR_DOMAIN_EVENT_STARTED_MIGRATED:
                        reason = VMD_REASON_MIGRATED;
                        break;
                case VIR_DOMAIN_EVENT_STARTED_RESTORED:
                        reason = VMD_REASON_RESTORED;
                        break;
                case VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT:
                        reason = VMD_REASON_SNAPSHOT;
                        break;
                case VIR_DOMAIN_EVENT_STARTED_WAKEUP:
                        reason = VMD_REASON_WAKEUP;
                        break;
                }
                break;
        case VIR_DOMAIN_EVENT_SUSPENDED:
                type = VMD_EVENT_SUSPENDED;
                switch (detail) {
                case VIR_DOMAIN_EVENT_SUSPENDED_PAUSED:
                        reason = VMD_REASON_PAUSED;
                        break;
                case VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED:
                case VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY:
                case VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED:
                        reason = VMD_REASON_MIGRATED;
                        break;
                case VIR_DOMAIN_EVENT_SUSPENDED_IOERROR:
                        reason = VMD_REASON_IOERROR;
                        break;
                case VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG:
                        reason = VMD_REASON_WATCHDOG;
                        break;
                case VIR_DOMAIN_EVENT_SUSPENDED_RESTORED:
                        reason = VMD_REASON_RESTORED;
                        break;
                case VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT:
                        reason = VMD_REASON_SNAPSHOT;
                        break;
                }
                break;
        case VIR_DOMAIN_EVENT_RESUMED:
                type = VMD_EVENT_RESUMED;
                switch (detail) {
                case VIR_DOMAIN_EVENT_RESUMED_UNPAUSED:
                        reason = VMD_REASON_UNPAUSED;
                        break;
                case VIR_DOMAIN_EVENT_RESUMED_MIGRATED:
                case VIR_DOMAIN_EVENT_RESUMED_POSTCOPY:
                case VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED:
                        reason = VMD_REASON_MIGRATED;
                        break;
                case VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT:
                        reason = VMD_REASON_SNAPSHOT;
                        break;
                }
                break;
        case VIR_DOMAIN_EVENT_STOPPED:
                type = VMD_EVENT_STOPPED;
                switch (detail) {
                case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
                        reason = VMD_REASON_SHUTDOWN;
                        break;
                case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
                        reason = VMD_REASON_DESTROYED;
                        break;
                case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
                        reason = VMD_REASON_CRASHED;
                        break;
                case VIR_DOMAIN_EVENT_STOPPED_MIGRATED:
                        reason = VMD_REASON_MIGRATED;
                        break;
                case VIR_DOMAIN_EVENT_STOPPED_SAVED:
                        reason = VMD_REASON_SAVED;
                        break;
                case VIR_DOMAIN_EVENT_STOPPED_FAILED:
                        reason = VMD_REASON_FAILED;
                        break;
                case VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT:
                        reason = VMD_REASON_SNAPSHOT;
                        break;
                }
                break;
        case VIR_DOMAIN_EVENT_SHUTDOWN:
                type = VMD_EVENT_SHUTDOWN;
                switch (detail) {
                case VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED:
                        reason = VMD_REASON_SHUTDOWN;
                        break;
                case VIR_DOMAIN_EVENT_SHUTDOWN_GUEST:
                        reason = VMD_REASON_GUEST;
                        break;
                case VIR_DOMAIN_EVENT_SHUTDOWN_HOST:
                        reason = VMD_REASON_HOST;
                        break;
                }
                break;
        case VIR_DOMAIN_EVENT_PMSUSPENDED:
                type = VMD_EVENT_PMSUSPENDED;
                break;
        case VIR_DOMAIN_EVENT_CRASHED:
                type = VMD_EVENT_CRASHED;
                reason = detail == VIR_DOMAIN_EVENT_CRASHED_PANICKED
                                 ? VMD_REASON_PANICKED
                                 : VMD_REASON_CRASHED;
                break;
        default:
                return false;
        }
        *ret_type = type;
        *ret_reason = reason;
        return true;
}

/* ==== The agent ==== */

/* What the agent asked libvirt to do with a domain, until the event that
 * says it happened (or the domain stops, which ends them all). */
struct request {
        struct request *next;
        struct vmd_libvirt *agent;
        char *name;
        bool start;                      /* vmd_libvirt_start() */
        bool stop;                       /* shutdown or destroy */
        bool migrate;                    /* a migration away is running */
        bool reboot;                     /* reboot or reset */
        sd_event_source *destroy_source; /* shutdown's destroy timeout */
};

struct vmd_migration {
        struct vmd_migration *next;
        struct vmd_libvirt *agent; /* NULL once detached from the agent */
        sd_event *event;
        char *name;
        struct haven_exec *exec;
        sd_event_source *progress_source;
        sd_event_source *timeout_source;
        sd_event_source *stats_source;
        uint64_t progress_interval_usec;
        uint64_t start_usec;
        struct vmd_migration_progress progress;
        struct vmd_migration_result result;
        char message[VMD_MIGRATION_MESSAGE_MAX];
        bool have_stats; /* the job-completed event came */
        bool migrated;   /* virsh succeeded, waiting for the stats */
        bool cancelled, timed_out;
        bool finished; /* done has been (or is being) called */
        bool floating;
        bool in_done, free_requested;
        vmd_migration_progress_t on_progress;
        vmd_migration_done_t done;
        void *userdata;
};

struct vmd_libvirt {
        sd_event *event;
        char *uri;
        int keepalive_interval;
        unsigned keepalive_count;
        uint64_t reconnect_min, reconnect_max, reconnect_next;

        virConnectPtr conn;
        int lifecycle_id, reboot_id, job_completed_id; /* -1: none */
        bool close_registered;
        sd_event_source *closed_source;    /* tears a broken connection down */
        sd_event_source *reconnect_source; /* the next attempt */
        sd_event_source *notify_source;    /* on_connection(true) */

        vmd_libvirt_event_t on_event;
        vmd_libvirt_connection_t on_connection;
        void *userdata;

        /* The call guard (see its section). guard_fd, guard_deadline,
         * guard_fired and guard_quit are shared with its thread, under
         * guard_lock. */
        uint64_t call_timeout;
        unsigned guard_depth; /* nested guarded sections (loop thread only) */
        bool guard_started;
        pthread_t guard_thread;
        pthread_mutex_t guard_lock;
        pthread_cond_t guard_cond;
        int guard_fd;            /* our duplicate of the socket; -1: none */
        uint64_t guard_deadline; /* CLOCK_MONOTONIC; 0: no call in flight */
        bool guard_fired, guard_quit;

        struct request *requests;
        struct vmd_migration *migrations;
        char last_error[VMD_LIBVIRT_ERROR_MAX];
};

/* ==== The call guard ====
 *
 * libvirt 9.0's client does not bound a synchronous call: its I/O loop
 * polls without a timeout while it waits for the reply, so keepalive only
 * notices a dead libvirtd between calls, and a libvirtd that stopped
 * answering (hung, frozen) would block our loop forever. A small thread per
 * agent watches each call's deadline; past it, it shuts our duplicate of
 * the connection's socket down. The socket is shared with libvirt's
 * descriptor, so libvirt's poll wakes up, the call fails, and the
 * connection is marked closed (the agent then reconnects). The thread
 * never calls libvirt or sd-event: only shutdown(2), on a descriptor the
 * agent owns and closes only under the lock. */

static void *guard_main(void *userdata) {
        struct vmd_libvirt *l = userdata;

        pthread_mutex_lock(&l->guard_lock);
        while (!l->guard_quit) {
                uint64_t now = haven_now_usec(CLOCK_MONOTONIC);
                struct timespec ts;

                if (l->guard_deadline == 0) {
                        pthread_cond_wait(&l->guard_cond, &l->guard_lock);
                        continue;
                }
                if (now >= l->guard_deadline) {
                        if (l->guard_fd >= 0)
                                (void) shutdown(l->guard_fd, SHUT_RDWR);
                        l->guard_fired = true;
                        l->guard_deadline = 0;
                        continue;
                }
                ts.tv_sec = (time_t) (l->guard_deadline / USEC_PER_SEC);
                ts.tv_nsec = (long) (l->guard_deadline % USEC_PER_SEC) * 1000;
                (void) pthread_cond_timedwait(&l->guard_cond, &l->guard_lock,
                                              &ts);
        }
        pthread_mutex_unlock(&l->guard_lock);
        return NULL;
}

static int guard_start(struct vmd_libvirt *l) {
        pthread_condattr_t attr;
        sigset_t all, old;
        int r;

        r = -pthread_condattr_init(&attr);
        if (r < 0)
                return r;
        r = -pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (r >= 0)
                r = -pthread_cond_init(&l->guard_cond, &attr);
        pthread_condattr_destroy(&attr);
        if (r < 0)
                return r;
        r = -pthread_mutex_init(&l->guard_lock, NULL);
        if (r < 0) {
                pthread_cond_destroy(&l->guard_cond);
                return r;
        }
        /* The thread takes no signal: the loop's signalfd gets them all. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&l->guard_thread, NULL, guard_main, l);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                pthread_mutex_destroy(&l->guard_lock);
                pthread_cond_destroy(&l->guard_cond);
                return r;
        }
        l->guard_started = true;
        return 0;
}

static void guard_stop(struct vmd_libvirt *l) {
        if (!l->guard_started)
                return;
        pthread_mutex_lock(&l->guard_lock);
        l->guard_quit = true;
        pthread_cond_signal(&l->guard_cond);
        pthread_mutex_unlock(&l->guard_lock);
        pthread_join(l->guard_thread, NULL);
        pthread_mutex_destroy(&l->guard_lock);
        pthread_cond_destroy(&l->guard_cond);
        l->guard_fd = safe_close(l->guard_fd);
        l->guard_started = false;
}

/* Called from impl_add_handle() while l opens its connection: the first
 * socket libvirt watches is the connection's. */
static void guard_capture(struct vmd_libvirt *l, int fd) {
        struct stat st;
        int copy;

        if (!l->guard_started || l->guard_fd >= 0)
                return;
        if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
                return;
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return;
        pthread_mutex_lock(&l->guard_lock);
        l->guard_fd = copy;
        pthread_mutex_unlock(&l->guard_lock);
}

/* Forgets the socket (the connection is gone or going). */
static void guard_release(struct vmd_libvirt *l) {
        if (!l->guard_started)
                return;
        pthread_mutex_lock(&l->guard_lock);
        l->guard_fd = safe_close(l->guard_fd);
        pthread_mutex_unlock(&l->guard_lock);
}

/* Starts a guarded section (sections nest; the outermost one's deadline
 * counts). Returns l for _cleanup_(guard_endp). */
static struct vmd_libvirt *guard_begin(struct vmd_libvirt *l) {
        if (!l->guard_started || l->guard_depth++ > 0)
                return l;
        pthread_mutex_lock(&l->guard_lock);
        l->guard_fired = false;
        l->guard_deadline = haven_deadline_usec(l->call_timeout);
        pthread_cond_signal(&l->guard_cond);
        pthread_mutex_unlock(&l->guard_lock);
        return l;
}

static void guard_endp(struct vmd_libvirt **lp) {
        struct vmd_libvirt *l = *lp;

        if (!l || !l->guard_started || --l->guard_depth > 0)
                return;
        pthread_mutex_lock(&l->guard_lock);
        l->guard_deadline = 0;
        pthread_mutex_unlock(&l->guard_lock);
}

static bool guard_fired(struct vmd_libvirt *l) {
        bool fired;

        if (!l->guard_started)
                return false;
        pthread_mutex_lock(&l->guard_lock);
        fired = l->guard_fired;
        pthread_mutex_unlock(&l->guard_lock);
        return fired;
}

/* Guards the rest of the enclosing block. */
#define GUARD(l)                                                               \
        _cleanup_(guard_endp) _unused_ struct vmd_libvirt *_guard_ =           \
                guard_begin(l)

static void agent_schedule_closed(struct vmd_libvirt *l);

bool vmd_libvirt_is_connected(const struct vmd_libvirt *l) {
        assert(l);
        return l->conn != NULL;
}

const char *vmd_libvirt_uri(const struct vmd_libvirt *l) {
        assert(l);
        return l->uri;
}

const char *vmd_libvirt_last_error(const struct vmd_libvirt *l) {
        assert(l);
        return l->last_error;
}

static void set_last_error(struct vmd_libvirt *l, const char *message) {
        (void) snprintf(l->last_error, sizeof(l->last_error), "%s",
                        message ?: "unknown libvirt error");
}

/* Converts libvirt's last error (after a call returned failure) to a
 * negative errno, once, at the edge: keeps the message in l->last_error,
 * resets libvirt's error, and notices a connection that broke (whose
 * teardown then runs from the loop). invalid is what
 * VIR_ERR_OPERATION_INVALID means for the call ("not running" for most,
 * "already running" for a start). */
static int error_from_libvirt(struct vmd_libvirt *l, int invalid) {
        virErrorPtr e = virGetLastError();
        int code = e ? e->code : VIR_ERR_OK, r;

        set_last_error(l, e ? e->message : NULL);
        switch (code) {
        case VIR_ERR_NO_DOMAIN:
                r = -ENOENT;
                break;
        case VIR_ERR_DOM_EXIST:
                r = -EEXIST;
                break;
        case VIR_ERR_OPERATION_INVALID:
                r = invalid;
                break;
        case VIR_ERR_NO_SUPPORT:
        case VIR_ERR_ARGUMENT_UNSUPPORTED:
        case VIR_ERR_OPERATION_UNSUPPORTED:
                r = -EOPNOTSUPP;
                break;
        case VIR_ERR_XML_ERROR:
        case VIR_ERR_XML_DETAIL:
        case VIR_ERR_XML_INVALID_SCHEMA:
        case VIR_ERR_NO_ROOT:
        case VIR_ERR_NO_SOURCE:
        case VIR_ERR_NO_TARGET:
        case VIR_ERR_NO_NAME:
        case VIR_ERR_NO_OS:
        case VIR_ERR_NO_DEVICE:
        case VIR_ERR_INVALID_ARG:
        case VIR_ERR_CONFIG_UNSUPPORTED:
        case VIR_ERR_INVALID_DOMAIN:
                r = -EINVAL;
                break;
        case VIR_ERR_AUTH_FAILED:
        case VIR_ERR_AUTH_CANCELLED:
        case VIR_ERR_AUTH_UNAVAILABLE:
                r = -EACCES;
                break;
        case VIR_ERR_OPERATION_DENIED:
        case VIR_ERR_ACCESS_DENIED:
                r = -EPERM;
                break;
        case VIR_ERR_OPERATION_TIMEOUT:
        case VIR_ERR_AGENT_UNRESPONSIVE:
                r = -ETIMEDOUT;
                break;
        case VIR_ERR_NO_CONNECT:
        case VIR_ERR_INVALID_CONN:
                r = -ENOTCONN;
                break;
        case VIR_ERR_SYSTEM_ERROR:
                r = e->int1 > 0 ? -e->int1 : -EIO;
                break;
        default:
                r = -EIO;
        }
        virResetLastError();

        /* A dead connection fails every call: say so, and let the loop tear
         * it down and reconnect. virConnectIsAlive() asks nothing of the
         * daemon. */
        if (l->conn && virConnectIsAlive(l->conn) == 0) {
                virResetLastError();
                agent_schedule_closed(l);
                r = -ENOTCONN;
        }
        if (guard_fired(l)) {
                (void) snprintf(l->last_error, sizeof(l->last_error),
                                "libvirtd did not answer within %" PRIu64 " ms",
                                l->call_timeout / USEC_PER_MSEC);
                if (l->conn)
                        agent_schedule_closed(l);
                r = -ETIMEDOUT;
        }
        return r;
}

static struct request *request_find(struct vmd_libvirt *l, const char *name) {
        for (struct request *r = l->requests; r; r = r->next)
                if (streq(r->name, name))
                        return r;
        return NULL;
}

static struct request *request_free(struct request *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->destroy_source);
        free(r->name);
        free(r);
        return NULL;
}

static void request_drop(struct vmd_libvirt *l, struct request *r) {
        for (struct request **i = &l->requests; *i; i = &(*i)->next)
                if (*i == r) {
                        *i = r->next;
                        request_free(r);
                        return;
                }
}

/* Drops r when it no longer asks anything. */
static void request_gc(struct vmd_libvirt *l, struct request *r) {
        if (r && !r->start && !r->stop && !r->migrate && !r->reboot &&
            !r->destroy_source)
                request_drop(l, r);
}

static struct request *request_get(struct vmd_libvirt *l, const char *name) {
        struct request *r = request_find(l, name);

        if (r)
                return r;
        r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->name = strdup(name);
        if (!r->name) {
                free(r);
                return NULL;
        }
        r->agent = l;
        r->next = l->requests;
        l->requests = r;
        return r;
}

/* ==== Events ==== */

static void deliver(struct vmd_libvirt *l, virDomainPtr dom,
                    enum vmd_event_type type, enum vmd_reason reason, int event,
                    int detail) {
        char uuid[VIR_UUID_STRING_BUFLEN] = "";
        struct vmd_domain_event e = {
                .name = virDomainGetName(dom),
                .uuid = uuid,
                .type = type,
                .reason = reason,
                .libvirt_event = event,
                .libvirt_detail = detail,
        };
        struct request *r;

        /* Both read the domain object, no RPC. */
        if (!e.name)
                return;
        (void) virDomainGetUUIDString(dom, uuid);

        r = request_find(l, e.name);
        switch (type) {
        case VMD_EVENT_STARTED:
                if (r && r->start) {
                        e.requested = true;
                        r->start = false;
                }
                break;
        case VMD_EVENT_STOPPED:
                /* We asked for a stop and it stopped (however); or our
                 * migration moved it away. A migration that ends in a
                 * guest shutdown is not ours. */
                if (r)
                        e.requested =
                                r->stop ||
                                (r->migrate && reason == VMD_REASON_MIGRATED);
                /* The domain is gone: whatever else was asked is moot (a
                 * failing migration finds no request to end). */
                if (r) {
                        request_drop(l, r);
                        r = NULL;
                }
                break;
        case VMD_EVENT_REBOOTED:
                if (r && r->reboot) {
                        e.requested = true;
                        r->reboot = false;
                }
                break;
        default:
                break;
        }
        request_gc(l, r);

        log_debug("libvirt: domain \"%s\" %s (%s)%s", e.name,
                  vmd_event_type_to_string(type), vmd_reason_to_string(reason),
                  e.requested ? ", requested" : "");
        if (l->on_event)
                l->on_event(l, &e, l->userdata);
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event,
                        int detail, void *opaque) {
        struct vmd_libvirt *l = opaque;
        enum vmd_event_type type;
        enum vmd_reason reason;

        if (!event_from_libvirt(event, detail, &type, &reason)) {
                log_debug("libvirt: ignoring unknown lifecycle event %d/%d",
                          event, detail);
                return 0;
        }
        deliver(l, dom, type, reason, event, detail);
        return 0;
}

static void on_reboot(virConnectPtr conn, virDomainPtr dom, void *opaque) {
        deliver(opaque, dom, VMD_EVENT_REBOOTED, VMD_REASON_UNKNOWN, -1, -1);
}

static struct vmd_migration *migration_find(struct vmd_libvirt *l,
                                            const char *name) {
        for (struct vmd_migration *m = l->migrations; m; m = m->next)
                if (streq(m->name, name))
                        return m;
        return NULL;
}

static uint64_t typed_ullong(virTypedParameterPtr params, int n,
                             const char *name) {
        unsigned long long v;

        if (virTypedParamsGetULLong(params, n, name, &v) == 1)
                return v;
        virResetLastError();
        return UINT64_MAX;
}

static void stats_from_params(virTypedParameterPtr params, int n,
                              struct vmd_migration_result *ret) {
        ret->downtime_ms = typed_ullong(params, n, VIR_DOMAIN_JOB_DOWNTIME);
        ret->elapsed_ms = typed_ullong(params, n, VIR_DOMAIN_JOB_TIME_ELAPSED);
        ret->data_processed =
                typed_ullong(params, n, VIR_DOMAIN_JOB_DATA_PROCESSED);
}

static void migration_finish(struct vmd_migration *m, int error);

/* The source's statistics of a finished job: for a migration out, the only
 * place they exist once the transient domain has left. */
static void on_job_completed(virConnectPtr conn, virDomainPtr dom,
                             virTypedParameterPtr params, int n, void *opaque) {
        struct vmd_libvirt *l = opaque;
        const char *name = virDomainGetName(dom);
        struct vmd_migration *m;
        int operation;

        if (!name)
                return;
        m = migration_find(l, name);
        if (!m || m->finished)
                return;
        if (virTypedParamsGetInt(params, n, VIR_DOMAIN_JOB_OPERATION,
                                 &operation) == 1 &&
            operation != VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT)
                return;
        virResetLastError();
        stats_from_params(params, n, &m->result);
        m->have_stats = true;
        if (m->migrated)
                migration_finish(m, 0);
}

/* ==== Connection ==== */

static void on_close(virConnectPtr conn, int reason, void *opaque);

static void agent_teardown(struct vmd_libvirt *l) {
        if (!l->conn)
                return;
        GUARD(l);
        if (l->lifecycle_id >= 0)
                (void) virConnectDomainEventDeregisterAny(l->conn,
                                                          l->lifecycle_id);
        if (l->reboot_id >= 0)
                (void) virConnectDomainEventDeregisterAny(l->conn,
                                                          l->reboot_id);
        if (l->job_completed_id >= 0)
                (void) virConnectDomainEventDeregisterAny(l->conn,
                                                          l->job_completed_id);
        l->lifecycle_id = l->reboot_id = l->job_completed_id = -1;
        /* Unregistered first: virConnectClose() would call it. */
        if (l->close_registered)
                (void) virConnectUnregisterCloseCallback(l->conn, on_close);
        l->close_registered = false;
        (void) virConnectClose(l->conn);
        virResetLastError();
        l->conn = NULL;
        guard_release(l);
}

static const char *close_reason_to_string(int reason) {
        switch (reason) {
        case VIR_CONNECT_CLOSE_REASON_EOF:
                return "libvirtd closed the connection";
        case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
                return "libvirtd stopped answering (keepalive)";
        case VIR_CONNECT_CLOSE_REASON_CLIENT:
                return "the connection was closed";
        default:
                return "the connection failed";
        }
}

/* Called by libvirt from the loop when the connection breaks. Closing the
 * connection from inside is not allowed: the teardown runs next. */
static void on_close(virConnectPtr conn, int reason, void *opaque) {
        struct vmd_libvirt *l = opaque;

        set_last_error(l, close_reason_to_string(reason));
        agent_schedule_closed(l);
}

static int agent_connect(struct vmd_libvirt *l) {
        virConnectPtr conn;
        int r;

        assert(!l->conn);
        GUARD(l);

        /* The socket libvirt watches for this connection is the one the
         * guard shuts down (it learns it while the connection opens). */
        guard_release(l);
        impl.capture = l;
        conn = virConnectOpen(l->uri);
        impl.capture = NULL;
        if (!conn) {
                r = error_from_libvirt(l, -EIO);
                guard_release(l);
                return r == -EIO ? -ECONNREFUSED : r;
        }
        l->conn = conn;

        /* 1: the server does not do keepalive; -1 with NO_SUPPORT: the
         * driver runs in this process (test:///), nothing to watch. */
        if (virConnectSetKeepAlive(conn, l->keepalive_interval,
                                   l->keepalive_count) < 0) {
                r = error_from_libvirt(l, -EIO);
                if (r != -EOPNOTSUPP)
                        goto fail;
        }
        if (virConnectRegisterCloseCallback(conn, on_close, l, NULL) < 0) {
                r = error_from_libvirt(l, -EIO);
                goto fail;
        }
        l->close_registered = true;

        l->lifecycle_id = virConnectDomainEventRegisterAny(
                conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), l, NULL);
        l->reboot_id = virConnectDomainEventRegisterAny(
                conn, NULL, VIR_DOMAIN_EVENT_ID_REBOOT,
                VIR_DOMAIN_EVENT_CALLBACK(on_reboot), l, NULL);
        l->job_completed_id = virConnectDomainEventRegisterAny(
                conn, NULL, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                VIR_DOMAIN_EVENT_CALLBACK(on_job_completed), l, NULL);
        if (l->lifecycle_id < 0 || l->reboot_id < 0 ||
            l->job_completed_id < 0) {
                r = error_from_libvirt(l, -EIO);
                goto fail;
        }
        l->last_error[0] = '\0';
        log_debug("libvirt: connected to %s", l->uri);
        return 0;

fail:
        agent_teardown(l);
        return r;
}

static void agent_schedule_reconnect(struct vmd_libvirt *l) {
        uint64_t delay = l->reconnect_next;

        l->reconnect_next = MIN(l->reconnect_next * 2, l->reconnect_max);
        (void) sd_event_source_set_time_relative(l->reconnect_source, delay);
        (void) sd_event_source_set_enabled(l->reconnect_source,
                                           SD_EVENT_ONESHOT);
}

static int on_reconnect(sd_event_source *s, uint64_t usec, void *userdata) {
        struct vmd_libvirt *l = userdata;
        int r;

        if (l->conn)
                return 0;
        r = agent_connect(l);
        if (r < 0) {
                log_debug_errno(r,
                                "libvirt: cannot connect to %s, retrying: "
                                "%s",
                                l->uri, l->last_error);
                agent_schedule_reconnect(l);
                return 0;
        }
        l->reconnect_next = l->reconnect_min;
        if (l->on_connection)
                l->on_connection(l, true, l->userdata);
        return 0;
}

static int on_notify(sd_event_source *s, void *userdata) {
        struct vmd_libvirt *l = userdata;

        if (l->conn && l->on_connection)
                l->on_connection(l, true, l->userdata);
        return 0;
}

static int on_closed(sd_event_source *s, void *userdata) {
        struct vmd_libvirt *l = userdata;

        if (!l->conn)
                return 0;
        log_debug("libvirt: connection to %s lost: %s", l->uri, l->last_error);
        agent_teardown(l);
        (void) sd_event_source_set_enabled(l->notify_source, SD_EVENT_OFF);
        agent_schedule_reconnect(l);
        if (l->on_connection)
                l->on_connection(l, false, l->userdata);
        return 0;
}

static void agent_schedule_closed(struct vmd_libvirt *l) {
        (void) sd_event_source_set_enabled(l->closed_source, SD_EVENT_ONESHOT);
}

int vmd_libvirt_new(sd_event *e, const struct vmd_libvirt_options *options,
                    vmd_libvirt_event_t on_event,
                    vmd_libvirt_connection_t on_connection, void *userdata,
                    struct vmd_libvirt **ret) {
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l = NULL;
        const struct vmd_libvirt_options defaults = {};
        int r;

        assert(e);
        assert(ret);

        if (!impl.registered || impl.event != e)
                return -EINVAL;
        if (!options)
                options = &defaults;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(e);
        l->lifecycle_id = l->reboot_id = l->job_completed_id = -1;
        l->guard_fd = -1;
        l->call_timeout =
                options->call_timeout_usec ?: CALL_TIMEOUT_DEFAULT_USEC;
        l->uri = strdup(options->uri ?: VMD_LIBVIRT_URI_DEFAULT);
        if (!l->uri)
                return -ENOMEM;
        l->keepalive_interval = (int) MIN(options->keepalive_interval_s
                                                  ?: KEEPALIVE_INTERVAL_DEFAULT,
                                          3600u);
        l->keepalive_count =
                options->keepalive_count ?: KEEPALIVE_COUNT_DEFAULT;
        l->reconnect_min =
                options->reconnect_min_usec ?: RECONNECT_MIN_DEFAULT_USEC;
        l->reconnect_max =
                MAX(options->reconnect_max_usec ?: RECONNECT_MAX_DEFAULT_USEC,
                    l->reconnect_min);
        l->reconnect_next = l->reconnect_min;
        l->on_event = on_event;
        l->on_connection = on_connection;
        l->userdata = userdata;

        r = guard_start(l);
        if (r < 0)
                return r;
        r = sd_event_add_defer(e, &l->closed_source, on_closed, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(l->closed_source, SD_EVENT_OFF);
        r = sd_event_add_defer(e, &l->notify_source, on_notify, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(l->notify_source, SD_EVENT_OFF);
        r = sd_event_add_time_relative(e, &l->reconnect_source, CLOCK_MONOTONIC,
                                       0, TIMER_ACCURACY_USEC, on_reconnect, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(l->reconnect_source, SD_EVENT_OFF);

        r = agent_connect(l);
        if (r < 0) {
                log_debug_errno(r,
                                "libvirt: cannot connect to %s, retrying: "
                                "%s",
                                l->uri, l->last_error);
                agent_schedule_reconnect(l);
        } else
                (void) sd_event_source_set_enabled(l->notify_source,
                                                   SD_EVENT_ONESHOT);

        *ret = TAKE_PTR(l);
        return 0;
}

static void migration_detach(struct vmd_migration *m);

struct vmd_libvirt *vmd_libvirt_free(struct vmd_libvirt *l) {
        if (!l)
                return NULL;

        while (l->migrations)
                migration_detach(l->migrations);
        while (l->requests) {
                struct request *r = l->requests;

                l->requests = r->next;
                request_free(r);
        }
        agent_teardown(l);
        guard_stop(l);
        sd_event_source_disable_unref(l->closed_source);
        sd_event_source_disable_unref(l->notify_source);
        sd_event_source_disable_unref(l->reconnect_source);
        sd_event_unref(l->event);
        free(l->uri);
        free(l);
        return NULL;
}

/* ==== Domains ==== */

void vmd_domain_info_done(struct vmd_domain_info *info) {
        if (!info)
                return;
        free(info->name);
        info->name = NULL;
}

void vmd_domain_info_array_free(struct vmd_domain_info *infos, size_t n) {
        if (!infos)
                return;
        for (size_t i = 0; i < n; i++)
                vmd_domain_info_done(&infos[i]);
        free(infos);
}

static int lookup(struct vmd_libvirt *l, const char *name, virDomainPtr *ret) {
        virDomainPtr dom;

        if (!name)
                return -EINVAL;
        if (!l->conn) {
                set_last_error(l, "not connected to libvirt");
                return -ENOTCONN;
        }
        dom = virDomainLookupByName(l->conn, name);
        if (!dom)
                return error_from_libvirt(l, -EIO);
        *ret = dom;
        return 0;
}

/* vm_id from Haven's <metadata> element: 0 when there is none. */
static int64_t metadata_vm_id(virDomainPtr dom) {
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;
        _cleanup_(xml_freep) xmlChar *id = NULL;
        _cleanup_free_ char *text = NULL;
        xmlNode *root;
        char *end;
        long long v;

        text = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                                    VM_XML_METADATA_URI, 0);
        if (!text) {
                virResetLastError();
                return 0;
        }
        doc = xmlReadMemory(
                text, (int) strnlen(text, DOMAIN_XML_MAX), "metadata.xml", NULL,
                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        root = doc ? xmlDocGetRootElement(doc) : NULL;
        if (!root)
                return 0;
        id = xmlGetProp(root, BAD_CAST "id");
        if (!id)
                return 0;
        errno = 0;
        v = strtoll((const char *) id, &end, 10);
        if (errno != 0 || *end != '\0' || end == (char *) id || v <= 0)
                return 0;
        return v;
}

static int domain_info(struct vmd_libvirt *l, virDomainPtr dom,
                       struct vmd_domain_info *ret) {
        const char *name = virDomainGetName(dom);
        char uuid[VIR_UUID_STRING_BUFLEN];
        int state, reason, persistent;

        if (!name || virDomainGetUUIDString(dom, uuid) < 0)
                return error_from_libvirt(l, -EIO);
        if (virDomainGetState(dom, &state, &reason, 0) < 0)
                return error_from_libvirt(l, -EIO);
        persistent = virDomainIsPersistent(dom);
        if (persistent < 0)
                return error_from_libvirt(l, -EIO);

        *ret = (struct vmd_domain_info){
                .state = state_from_libvirt(state),
                .reason = state_reason_from_libvirt(state, reason),
                .persistent = persistent > 0,
                .vm_id = metadata_vm_id(dom),
        };
        static_assert(VIR_UUID_STRING_BUFLEN == VM_UUID_STRING_MAX,
                      "UUID text sizes differ");
        memcpy(ret->uuid, uuid, sizeof(ret->uuid));
        ret->name = strdup(name);
        return ret->name ? 0 : -ENOMEM;
}

int vmd_libvirt_list(struct vmd_libvirt *l, struct vmd_domain_info **ret,
                     size_t *ret_n) {
        struct vmd_domain_info *infos = NULL;
        virDomainPtr *doms = NULL;
        size_t n = 0;
        int count, r = 0;

        assert(l);
        assert(ret);
        assert(ret_n);
        GUARD(l);

        if (!l->conn) {
                set_last_error(l, "not connected to libvirt");
                return -ENOTCONN;
        }
        count = virConnectListAllDomains(l->conn, &doms, 0);
        if (count < 0)
                return error_from_libvirt(l, -EIO);
        if (count > 0) {
                infos = calloc((size_t) count, sizeof(*infos));
                if (!infos)
                        r = -ENOMEM;
        }
        for (int i = 0; i < count; i++) {
                if (r >= 0) {
                        r = domain_info(l, doms[i], &infos[n]);
                        if (r >= 0)
                                n++;
                        else if (r == -ENOENT) /* stopped meanwhile */
                                r = 0;
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        if (r < 0) {
                vmd_domain_info_array_free(infos, n);
                return r;
        }
        if (n == 0) {
                free(infos);
                infos = NULL;
        }
        *ret = infos;
        *ret_n = n;
        return 0;
}

int vmd_libvirt_get(struct vmd_libvirt *l, const char *name,
                    struct vmd_domain_info *ret) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        int r;

        assert(l);
        assert(ret);
        GUARD(l);

        r = lookup(l, name, &dom);
        if (r < 0)
                return r;
        return domain_info(l, dom, ret);
}

int vmd_libvirt_start(struct vmd_libvirt *l, const char *xml) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        struct request *req;
        const char *name;
        int r;

        assert(l);
        GUARD(l);

        if (!xml)
                return -EINVAL;
        if (!l->conn) {
                set_last_error(l, "not connected to libvirt");
                return -ENOTCONN;
        }
        dom = virDomainCreateXML(l->conn, xml, VIR_DOMAIN_NONE);
        if (!dom) {
                r = error_from_libvirt(l, -EEXIST);
                /* libvirt says "already exists with uuid ..." (operation
                 * failed) for a name or UUID in use by another domain. */
                if (r == -EIO && strstr(l->last_error, "already exists"))
                        r = -EEXIST;
                return r;
        }
        name = virDomainGetName(dom);
        if (!name)
                return 0;
        /* A new life: whatever was asked of an earlier domain of that name
         * is over. The STARTED event comes from the loop, later. */
        req = request_find(l, name);
        if (req)
                request_drop(l, req);
        req = request_get(l, name);
        if (req)
                req->start = true;
        return 0;
}

static int on_destroy_timeout(sd_event_source *s, uint64_t usec,
                              void *userdata) {
        struct request *req = userdata;
        struct vmd_libvirt *l = req->agent;
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        int r;

        GUARD(l);
        r = lookup(l, req->name, &dom);
        if (r >= 0) {
                r = virDomainDestroy(dom) < 0 ? error_from_libvirt(l, -ESRCH)
                                              : 0;
                if (r >= 0)
                        log_debug("libvirt: domain \"%s\" did not shut down in "
                                  "time, destroyed",
                                  req->name);
        }
        if (r >= 0 || r == -ENOENT || r == -ESRCH) {
                /* Gone, or going: the STOPPED event ends the request. */
                req->destroy_source =
                        sd_event_source_disable_unref(req->destroy_source);
                if (r < 0)
                        request_drop(l, req);
                return 0;
        }
        log_debug_errno(r,
                        "libvirt: cannot destroy domain \"%s\" after its "
                        "shutdown timeout, retrying: %s",
                        req->name, l->last_error);
        (void) sd_event_source_set_time_relative(s, DESTROY_RETRY_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int vmd_libvirt_shutdown(struct vmd_libvirt *l, const char *name,
                         uint64_t destroy_after_usec) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        struct request *req;
        int r;

        assert(l);
        GUARD(l);

        r = lookup(l, name, &dom);
        if (r < 0)
                return r;
        req = request_get(l, name);
        if (!req)
                return -ENOMEM;
        /* Our domains have no guest agent channel: the default is ACPI. */
        if (virDomainShutdown(dom) < 0) {
                r = error_from_libvirt(l, -ESRCH);
                request_gc(l, req);
                return r;
        }
        req->stop = true;
        if (destroy_after_usec == 0)
                return 0;
        if (req->destroy_source) {
                (void) sd_event_source_set_time_relative(req->destroy_source,
                                                         destroy_after_usec);
                (void) sd_event_source_set_enabled(req->destroy_source,
                                                   SD_EVENT_ONESHOT);
                return 0;
        }
        r = sd_event_add_time_relative(l->event, &req->destroy_source,
                                       CLOCK_MONOTONIC, destroy_after_usec,
                                       TIMER_ACCURACY_USEC, on_destroy_timeout,
                                       req);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(req->destroy_source,
                                               "vmd-destroy-timeout");
        return 0;
}

int vmd_libvirt_destroy(struct vmd_libvirt *l, const char *name) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        struct request *req;
        bool had_stop;
        int r;

        assert(l);
        GUARD(l);

        r = lookup(l, name, &dom);
        if (r < 0)
                return r;
        req = request_get(l, name);
        if (!req)
                return -ENOMEM;
        had_stop = req->stop;
        req->stop = true;
        if (virDomainDestroy(dom) < 0) {
                r = error_from_libvirt(l, -ESRCH);
                req->stop = had_stop;
                request_gc(l, req);
                return r;
        }
        return 0;
}

/* Reboot and reset: the REBOOTED event that follows is requested. */
static int reboot_or_reset(struct vmd_libvirt *l, const char *name,
                           bool reset) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        struct request *req;
        int r;

        assert(l);
        GUARD(l);

        r = lookup(l, name, &dom);
        if (r < 0)
                return r;
        req = request_get(l, name);
        if (!req)
                return -ENOMEM;
        r = reset ? virDomainReset(dom, 0) : virDomainReboot(dom, 0);
        if (r < 0) {
                r = error_from_libvirt(l, -ESRCH);
                request_gc(l, req);
                return r;
        }
        req->reboot = true;
        return 0;
}

int vmd_libvirt_reboot(struct vmd_libvirt *l, const char *name) {
        return reboot_or_reset(l, name, false);
}

int vmd_libvirt_reset(struct vmd_libvirt *l, const char *name) {
        return reboot_or_reset(l, name, true);
}

int vmd_libvirt_resume(struct vmd_libvirt *l, const char *name) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        int r;

        assert(l);
        GUARD(l);

        r = lookup(l, name, &dom);
        if (r < 0)
                return r;
        if (virDomainResume(dom) < 0)
                return error_from_libvirt(l, -ESRCH);
        return 0;
}

int vmd_libvirt_vnc_port(struct vmd_libvirt *l, const char *name) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;
        _cleanup_(xmlXPathFreeContextp) xmlXPathContext *ctx = NULL;
        _cleanup_(xmlXPathFreeObjectp) xmlXPathObject *obj = NULL;
        _cleanup_free_ char *xml = NULL;
        double port;
        int r;

        assert(l);
        GUARD(l);

        r = lookup(l, name, &dom);
        if (r < 0)
                return r;
        xml = virDomainGetXMLDesc(dom, 0);
        if (!xml)
                return error_from_libvirt(l, -ESRCH);
        doc = xmlReadMemory(
                xml, (int) strnlen(xml, DOMAIN_XML_MAX), "domain.xml", NULL,
                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc)
                return -EBADMSG;
        ctx = xmlXPathNewContext(doc);
        if (!ctx)
                return -ENOMEM;
        obj = xmlXPathEvalExpression(
                BAD_CAST "number(/domain/devices/graphics[@type='vnc']/@port)",
                ctx);
        if (!obj || obj->type != XPATH_NUMBER)
                return -ENOMEM;
        port = obj->floatval;
        /* NaN (no port attribute) and -1 (not allocated) alike. */
        if (!(port >= 1 && port <= 65535))
                return -ENODATA;
        return (int) port;
}

/* ==== Live migration ==== */

static void migration_stop_sources(struct vmd_migration *m) {
        m->progress_source = sd_event_source_disable_unref(m->progress_source);
        m->timeout_source = sd_event_source_disable_unref(m->timeout_source);
        m->stats_source = sd_event_source_disable_unref(m->stats_source);
}

static void migration_unlink(struct vmd_migration *m) {
        if (!m->agent)
                return;
        for (struct vmd_migration **i = &m->agent->migrations; *i;
             i = &(*i)->next)
                if (*i == m) {
                        *i = m->next;
                        break;
                }
        m->next = NULL;
}

/* The migration no longer moves the domain: the request ends. */
static void migration_forget_request(struct vmd_migration *m) {
        struct request *req;

        if (!m->agent)
                return;
        req = request_find(m->agent, m->name);
        if (req) {
                req->migrate = false;
                request_gc(m->agent, req);
        }
}

/* Asks libvirtd to abort the migration job; the error text stays in the
 * agent. */
static int migration_abort_job(struct vmd_migration *m) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        int r;

        if (!m->agent)
                return -ENOTCONN;
        GUARD(m->agent);
        r = lookup(m->agent, m->name, &dom);
        if (r < 0)
                return r;
        if (virDomainAbortJob(dom) < 0)
                return error_from_libvirt(m->agent, -ESRCH);
        return 0;
}

static struct vmd_migration *migration_free_now(struct vmd_migration *m) {
        migration_stop_sources(m);
        haven_exec_free(m->exec);
        sd_event_unref(m->event);
        free(m->name);
        free(m);
        return NULL;
}

static void migration_finish(struct vmd_migration *m, int error) {
        assert(!m->finished);

        m->finished = true;
        migration_stop_sources(m);
        if (error < 0)
                migration_forget_request(m);
        /* On success the source's STOPPED/migrated event ends the request
         * (it normally came already). */
        migration_unlink(m);
        m->agent = NULL;

        m->result.error = error;
        m->result.message = error < 0 ? m->message : NULL;
        m->result.duration_usec =
                haven_now_usec(CLOCK_MONOTONIC) - m->start_usec;

        if (m->done) {
                m->in_done = true;
                m->done(m, &m->result, m->userdata);
                m->in_done = false;
        }
        if (m->floating || m->free_requested)
                migration_free_now(m);
}

/* Cancels a running migration without calling done: the owner (or the
 * agent) goes away. */
static void migration_detach(struct vmd_migration *m) {
        if (!m->finished) {
                if (m->agent && m->agent->conn)
                        (void) migration_abort_job(m);
                migration_forget_request(m);
                m->exec = haven_exec_free(m->exec);
                migration_stop_sources(m);
                m->finished = true;
        }
        migration_unlink(m);
        m->agent = NULL;
        if (m->floating && !m->in_done)
                migration_free_now(m);
}

/* Cuts text[0..*n) back to the last complete UTF-8 sequence (after a
 * byte-wise truncation). */
static void utf8_trim(const char *text, size_t *n) {
        const unsigned char *u = (const unsigned char *) text;
        size_t start = *n, need;

        while (start > 0 && (u[start - 1] & 0xC0) == 0x80)
                start--;
        if (start == 0 || u[start - 1] < 0xC0)
                return; /* ends in ASCII (or in stray continuation bytes) */
        start--;
        need = u[start] >= 0xF0 ? 4 : u[start] >= 0xE0 ? 3 : 2;
        if (*n - start < need)
                *n = start;
}

void vmd_virsh_error_message(const char *stderr_text, int code, int status,
                             char *buffer, size_t size) {
        const char *p = stderr_text ?: "";
        bool truncated = false;
        size_t n = 0;

        assert(buffer);
        assert(size > 0);

        while (*p && !truncated) {
                const char *end = strchrnul(p, '\n');

                if (strncmp(p, "error: ", 7) == 0) {
                        if (n > 0 && n + 2 < size) {
                                memcpy(buffer + n, "; ", 2);
                                n += 2;
                        }
                        for (const char *c = p + 7; c < end; c++) {
                                if (n + 1 >= size) {
                                        truncated = true;
                                        break;
                                }
                                buffer[n++] =
                                        (unsigned char) *c < 0x20 || *c == 0x7F
                                                ? ' '
                                                : *c;
                        }
                }
                p = *end ? end + 1 : end;
        }
        if (truncated)
                utf8_trim(buffer, &n);
        buffer[n] = '\0';
        if (n > 0)
                return;
        if (code == CLD_EXITED)
                (void) snprintf(buffer, size, "virsh exited with status %d",
                                status);
        else
                (void) snprintf(buffer, size, "virsh was killed by signal %d",
                                status);
}

/* After a failure: the domain must still run on the source. A migration
 * that failed late may leave it paused; resume it then. */
static void migration_check_source(struct vmd_migration *m) {
        struct vmd_libvirt *l = m->agent;
        struct vmd_domain_info info = {};
        int r;

        if (!l)
                return;
        GUARD(l);
        r = vmd_libvirt_get(l, m->name, &info);
        if (r < 0)
                return;
        if (info.state == VMD_DOMAIN_PAUSED &&
            info.reason == VMD_REASON_MIGRATED) {
                _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
                virDomainJobInfo job = {};

                if (lookup(l, m->name, &dom) >= 0 &&
                    virDomainGetJobInfo(dom, &job) >= 0 &&
                    job.type == VIR_DOMAIN_JOB_NONE &&
                    virDomainResume(dom) >= 0) {
                        log_debug("libvirt: domain \"%s\" resumed after a "
                                  "failed migration",
                                  m->name);
                        info.state = VMD_DOMAIN_RUNNING;
                }
                virResetLastError();
        }
        m->result.source_running = info.state == VMD_DOMAIN_RUNNING;
        vmd_domain_info_done(&info);
}

static int on_stats_grace(sd_event_source *s, uint64_t usec, void *userdata) {
        struct vmd_migration *m = userdata;

        log_debug("libvirt: no statistics for the migration of \"%s\"",
                  m->name);
        migration_finish(m, 0);
        return 0;
}

static void on_virsh_done(struct haven_exec *x,
                          const struct haven_exec_result *result,
                          void *userdata) {
        struct vmd_migration *m = userdata;
        int r;

        if (haven_exec_result_ok(result)) {
                m->migrated = true;
                if (m->have_stats) {
                        migration_finish(m, 0);
                        return;
                }
                /* The job-completed event is on its way (or lost with the
                 * connection): wait a little for it. */
                m->progress_source =
                        sd_event_source_disable_unref(m->progress_source);
                m->timeout_source =
                        sd_event_source_disable_unref(m->timeout_source);
                r = sd_event_add_time_relative(
                        m->event, &m->stats_source, CLOCK_MONOTONIC,
                        MIGRATION_STATS_GRACE_USEC, TIMER_ACCURACY_USEC,
                        on_stats_grace, m);
                if (r < 0)
                        migration_finish(m, 0);
                return;
        }

        vmd_virsh_error_message(result->stderr_data, result->code,
                                result->status, m->message, sizeof(m->message));
        migration_check_source(m);
        migration_finish(m, m->cancelled                 ? -ECANCELED
                            : m->timed_out               ? -ETIMEDOUT
                            : result->code == CLD_EXITED ? -EIO
                                                         : -ENOEXEC);
}

static int on_progress(sd_event_source *s, uint64_t usec, void *userdata) {
        struct vmd_migration *m = userdata;
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        virTypedParameterPtr params = NULL;
        int type, n = 0;

        (void) sd_event_source_set_time_relative(s, m->progress_interval_usec);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);

        if (!m->agent)
                return 0;
        GUARD(m->agent);
        if (lookup(m->agent, m->name, &dom) < 0)
                return 0;
        if (virDomainGetJobStats(dom, &type, &params, &n, 0) < 0) {
                (void) error_from_libvirt(m->agent, -EIO);
                log_debug("libvirt: no progress of the migration of \"%s\": "
                          "%s",
                          m->name, m->agent->last_error);
                return 0;
        }
        if (type != VIR_DOMAIN_JOB_NONE) {
                struct vmd_migration_progress p = {
                        .elapsed_ms = typed_ullong(params, n,
                                                   VIR_DOMAIN_JOB_TIME_ELAPSED),
                        .data_total = typed_ullong(params, n,
                                                   VIR_DOMAIN_JOB_DATA_TOTAL),
                        .data_processed = typed_ullong(
                                params, n, VIR_DOMAIN_JOB_DATA_PROCESSED),
                        .data_remaining = typed_ullong(
                                params, n, VIR_DOMAIN_JOB_DATA_REMAINING),
                };

                if (p.elapsed_ms == UINT64_MAX)
                        p.elapsed_ms = 0;
                if (p.data_total == UINT64_MAX ||
                    p.data_remaining == UINT64_MAX)
                        p.data_total = p.data_remaining = 0;
                if (p.data_processed == UINT64_MAX)
                        p.data_processed = 0;
                /* virsh's figure: the share of the total not remaining. */
                if (p.data_total > 0)
                        p.percent =
                                (unsigned) (100 - MIN(p.data_remaining,
                                                      p.data_total) *
                                                          100 / p.data_total);
                m->progress = p;
                if (m->on_progress)
                        m->on_progress(m, &m->progress, m->userdata);
        }
        virTypedParamsFree(params, n);
        return 0;
}

/* The whole migration took too long: abort the job; virsh then fails and
 * on_virsh_done reports -ETIMEDOUT. haven/exec's own timeout kills virsh
 * if even that does not end it. */
static int on_migration_timeout(sd_event_source *s, uint64_t usec,
                                void *userdata) {
        struct vmd_migration *m = userdata;
        int r;

        m->timed_out = true;
        r = migration_abort_job(m);
        if (r < 0)
                log_debug_errno(r,
                                "libvirt: cannot abort the migration of "
                                "\"%s\" after its timeout: %m",
                                m->name);
        return 0;
}

int vmd_libvirt_migrate(struct vmd_libvirt *l, const char *name,
                        const struct vmd_migration_options *options,
                        vmd_migration_progress_t progress,
                        vmd_migration_done_t done, void *userdata,
                        struct vmd_migration **ret) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        struct vmd_migration *m;
        struct request *req;
        uint64_t timeout;
        char bandwidth[16];
        const char *argv[24];
        size_t k = 0;
        int r, active;

        assert(l);

        if (!name || !options || !options->destination_uri)
                return -EINVAL;
        if (migration_find(l, name))
                return -EBUSY;
        GUARD(l);
        r = lookup(l, name, &dom);
        if (r < 0)
                return r;
        active = virDomainIsActive(dom);
        if (active < 0)
                return error_from_libvirt(l, -ESRCH);
        if (active == 0) {
                set_last_error(l, "domain is not running");
                return -ESRCH;
        }

        argv[k++] = "virsh";
        argv[k++] = "-q";
        argv[k++] = "-c";
        argv[k++] = l->uri;
        argv[k++] = "migrate";
        argv[k++] = "--live";
        argv[k++] = "--p2p";
        if (options->shared_storage)
                argv[k++] = "--unsafe";
        if (options->bandwidth_mib_s > 0) {
                (void) snprintf(bandwidth, sizeof(bandwidth), "%u",
                                options->bandwidth_mib_s);
                argv[k++] = "--bandwidth";
                argv[k++] = bandwidth;
        }
        if (options->migrate_uri) {
                argv[k++] = "--migrateuri";
                argv[k++] = options->migrate_uri;
        }
        argv[k++] = "--domain";
        argv[k++] = name;
        argv[k++] = "--desturi";
        argv[k++] = options->destination_uri;
        argv[k] = NULL;
        assert(k < ELEMENTSOF(argv));

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->name = strdup(name);
        if (!m->name) {
                free(m);
                return -ENOMEM;
        }
        m->event = sd_event_ref(l->event);
        m->agent = l;
        m->on_progress = progress;
        m->done = done;
        m->userdata = userdata;
        m->floating = !ret;
        m->progress_interval_usec = options->progress_interval_usec
                                            ?: MIGRATION_PROGRESS_DEFAULT_USEC;
        m->result.downtime_ms = m->result.elapsed_ms =
                m->result.data_processed = UINT64_MAX;
        m->start_usec = haven_now_usec(CLOCK_MONOTONIC);
        timeout = options->timeout_usec ?: MIGRATION_TIMEOUT_DEFAULT_USEC;

        struct haven_exec_options exec_options = {
                .timeout_usec = timeout + MIGRATION_KILL_GRACE_USEC,
                .max_output = VIRSH_OUTPUT_MAX,
        };
        r = haven_exec_start(l->event, (char *const *) argv, &exec_options,
                             on_virsh_done, m, &m->exec);
        if (r < 0)
                goto fail;
        r = sd_event_add_time_relative(
                l->event, &m->progress_source, CLOCK_MONOTONIC,
                m->progress_interval_usec, TIMER_ACCURACY_USEC, on_progress, m);
        if (r < 0)
                goto fail;
        r = sd_event_add_time_relative(
                l->event, &m->timeout_source, CLOCK_MONOTONIC, timeout,
                TIMER_ACCURACY_USEC, on_migration_timeout, m);
        if (r < 0)
                goto fail;
        req = request_get(l, name);
        if (!req) {
                r = -ENOMEM;
                goto fail;
        }
        req->migrate = true;

        m->next = l->migrations;
        l->migrations = m;
        log_debug("libvirt: migrating domain \"%s\" to %s", name,
                  options->destination_uri);
        if (ret)
                *ret = m;
        return 0;

fail:
        m->agent = NULL;
        migration_free_now(m);
        return r;
}

int vmd_migration_cancel(struct vmd_migration *m) {
        assert(m);

        if (m->finished)
                return -EALREADY;
        m->cancelled = true;
        return migration_abort_job(m);
}

struct vmd_migration *vmd_migration_free(struct vmd_migration *m) {
        if (!m)
                return NULL;
        if (m->in_done) {
                m->free_requested = true;
                return NULL;
        }
        m->floating = false;
        migration_detach(m);
        migration_free_now(m);
        return NULL;
}

const char *vmd_migration_name(const struct vmd_migration *m) {
        assert(m);
        return m->name;
}

const struct vmd_migration_progress *
vmd_migration_get_progress(const struct vmd_migration *m) {
        assert(m);
        return &m->progress;
}

int vmd_libvirt_migration_stats(struct vmd_libvirt *l, const char *name,
                                struct vmd_migration_result *ret) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        virTypedParameterPtr params = NULL;
        int type, n = 0, r;

        assert(l);
        assert(ret);
        GUARD(l);

        r = lookup(l, name, &dom);
        if (r < 0)
                return r;
        if (virDomainGetJobStats(dom, &type, &params, &n,
                                 VIR_DOMAIN_JOB_STATS_COMPLETED |
                                         VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) <
            0)
                return error_from_libvirt(l, -ENODATA);
        *ret = (struct vmd_migration_result){};
        if (type == VIR_DOMAIN_JOB_NONE) {
                virTypedParamsFree(params, n);
                return -ENODATA;
        }
        stats_from_params(params, n, ret);
        virTypedParamsFree(params, n);
        return 0;
}
