/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Event-loop setup shared by every daemon (see haven/loop.h). Owns nothing
 * beyond the sd_event it hands out and two floating signal sources; it must
 * not grow into a wrapper around sd-event.
 */
#include <assert.h>
#include <signal.h>

#include "haven/log.h"
#include "haven/loop.h"

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si,
                          void *userdata) {
        log_debug("Received signal %u, leaving the event loop.", si->ssi_signo);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int haven_loop_new(sd_event **ret) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sigset_t mask, old_mask;
        int r;

        assert(ret);

        if (sigemptyset(&mask) < 0 || sigaddset(&mask, SIGCHLD) < 0 ||
            sigaddset(&mask, SIGTERM) < 0 || sigaddset(&mask, SIGINT) < 0 ||
            sigaddset(&mask, SIGHUP) < 0)
                return negative_errno();
        if (sigprocmask(SIG_BLOCK, &mask, &old_mask) < 0)
                return negative_errno();

        r = sd_event_new(&e);
        if (r < 0)
                goto fail;

        /* NULL source pointer: the sources are floating, owned by e. */
        r = sd_event_add_signal(e, NULL, SIGTERM, on_exit_signal, NULL);
        if (r < 0)
                goto fail;
        r = sd_event_add_signal(e, NULL, SIGINT, on_exit_signal, NULL);
        if (r < 0)
                goto fail;

        /* Does nothing (returns 0) unless $WATCHDOG_USEC/$WATCHDOG_PID ask. */
        r = sd_event_set_watchdog(e, true);
        if (r < 0)
                goto fail;

        *ret = TAKE_PTR(e);
        return 0;

fail:
        (void) sigprocmask(SIG_SETMASK, &old_mask, NULL);
        return r;
}

int haven_loop_add_timer(sd_event *e, sd_event_source **ret,
                         uint64_t usec_relative, uint64_t accuracy_usec,
                         sd_event_time_handler_t cb, void *userdata) {
        assert(e);
        assert(cb);

        return sd_event_add_time_relative(e, ret, CLOCK_MONOTONIC,
                                          usec_relative, accuracy_usec, cb,
                                          userdata);
}

uint64_t haven_now_usec(clockid_t clock) {
        struct timespec ts = {};
        _unused_ int r;

        /* Only fails for an invalid clock id: a programming error. */
        r = clock_gettime(clock, &ts);
        assert(r == 0);

        return (uint64_t) ts.tv_sec * USEC_PER_SEC +
               (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

uint64_t haven_deadline_usec(uint64_t timeout_usec) {
        uint64_t now;

        if (timeout_usec == UINT64_MAX)
                return UINT64_MAX;
        now = haven_now_usec(CLOCK_MONOTONIC);
        if (timeout_usec >= UINT64_MAX - now)
                return UINT64_MAX;
        return now + timeout_usec;
}
