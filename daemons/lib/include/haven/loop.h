/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The event loop every Haven daemon runs: libsystemd's sd-event, set up the
 * same way everywhere (signals blocked for signalfd/child watchers,
 * SIGTERM/SIGINT exit the loop, watchdog when the service manager asks).
 * Deliberately thin: callers use sd-event directly for everything else.
 * Cleanup helpers come from sd-event.h: _cleanup_(sd_event_unrefp),
 * _cleanup_(sd_event_source_unrefp), _cleanup_(sd_event_source_disable_unrefp).
 */
#pragma once

#include <time.h>
#include <systemd/sd-event.h>

#include "haven/macro.h"

#ifndef USEC_PER_SEC
#define USEC_PER_SEC ((uint64_t) 1000000ULL)
#endif
#ifndef USEC_PER_MSEC
#define USEC_PER_MSEC ((uint64_t) 1000ULL)
#endif
#ifndef NSEC_PER_USEC
#define NSEC_PER_USEC ((uint64_t) 1000ULL)
#endif

/* Creates a new sd_event for a daemon's main loop. Blocks SIGCHLD, SIGTERM,
 * SIGINT and SIGHUP in the calling thread (sd_event_add_child() and
 * sd_event_add_signal() need that; a daemon that wants SIGHUP adds its own
 * signal source), makes SIGTERM and SIGINT call sd_event_exit(e, 0), and
 * enables the watchdog if $WATCHDOG_USEC asks for it. Returns 0 and *ret
 * (one reference, owned by the caller), or a negative errno; on failure the
 * signal mask is restored. */
int haven_loop_new(sd_event **ret);

/* Adds a one-shot CLOCK_MONOTONIC timer firing usec_relative from now.
 * accuracy_usec 0 means sd-event's default (250 ms); pass 1 for "as exact
 * as possible". ret may be NULL: the source then belongs to the loop
 * (floating). Returns 0 or a negative errno. */
int haven_loop_add_timer(sd_event *e, sd_event_source **ret,
                         uint64_t usec_relative, uint64_t accuracy_usec,
                         sd_event_time_handler_t cb, void *userdata);

/* The current time of clock in microseconds (not the loop's cached
 * iteration time; use sd_event_now() for that). */
uint64_t haven_now_usec(clockid_t clock);

/* The CLOCK_MONOTONIC time timeout_usec from now, or UINT64_MAX (never) for
 * UINT64_MAX or when the sum would overflow. For blocking calls bounded as a
 * whole: UINT64_MAX waits forever, 0 does only what needs no waiting. */
uint64_t haven_deadline_usec(uint64_t timeout_usec);
