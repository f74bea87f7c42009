/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven/loop.h: the loop haven_loop_new() returns dispatches
 * fd, timer, signal and child sources, and SIGTERM ends it with code 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "haven/loop.h"

/* Every test arms this so a broken loop fails instead of hanging. */
#define SAFETY_EXIT_CODE 99

static int on_safety_timeout(sd_event_source *s, uint64_t usec,
                             void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), SAFETY_EXIT_CODE);
}

static sd_event *loop_new_with_safety_timer(void) {
        sd_event *e = NULL;

        assert_int_equal(haven_loop_new(&e), 0);
        assert_non_null(e);
        assert_int_equal(haven_loop_add_timer(e, NULL, 5 * USEC_PER_SEC, 0,
                                              on_safety_timeout, NULL),
                         0);
        return e;
}

/* ==== fd ==== */

static int on_readable(sd_event_source *s, int fd, uint32_t revents,
                       void *userdata) {
        char buf[16] = {};
        ssize_t n;

        assert_true(revents & EPOLLIN);
        n = read(fd, buf, sizeof(buf) - 1);
        assert_int_equal(n, 5);
        strcpy(userdata, buf);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void fd_watcher_fires_when_pipe_has_data(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = loop_new_with_safety_timer();
        _cleanup_(sd_event_source_unrefp) sd_event_source *s = NULL;
        _cleanup_close_ int rfd = -1, wfd = -1;
        char got[16] = {};
        int fds[2];

        assert_int_equal(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
        rfd = fds[0];
        wfd = fds[1];

        assert_int_equal(sd_event_add_io(e, &s, rfd, EPOLLIN, on_readable, got),
                         0);
        assert_int_equal(write(wfd, "hello", 5), 5);

        assert_int_equal(sd_event_loop(e), 0);
        assert_string_equal(got, "hello");
}

/* ==== timers ==== */

struct timer_order {
        int fired[3];
        int n;
};

struct timer_slot {
        struct timer_order *order;
        int id;
};

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct timer_slot *slot = userdata;

        slot->order->fired[slot->order->n++] = slot->id;
        if (slot->order->n == 3)
                return sd_event_exit(sd_event_source_get_event(s), 0);
        return 0;
}

static void timers_fire_in_deadline_order(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = loop_new_with_safety_timer();
        struct timer_order order = {};
        struct timer_slot slots[3] = {
                {&order, 30},
                {&order, 10},
                {&order, 20},
        };
        uint64_t start = haven_now_usec(CLOCK_MONOTONIC);

        /* Added out of order; floating sources owned by the loop. */
        for (size_t i = 0; i < ELEMENTSOF(slots); i++)
                assert_int_equal(haven_loop_add_timer(e, NULL,
                                                      (uint64_t) slots[i].id *
                                                              USEC_PER_MSEC,
                                                      1, on_timer, &slots[i]),
                                 0);

        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(order.n, 3);
        assert_int_equal(order.fired[0], 10);
        assert_int_equal(order.fired[1], 20);
        assert_int_equal(order.fired[2], 30);
        assert_true(haven_now_usec(CLOCK_MONOTONIC) - start >=
                    30 * USEC_PER_MSEC);
}

static void timer_source_can_be_owned_and_cancelled(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = loop_new_with_safety_timer();
        _cleanup_(sd_event_source_unrefp) sd_event_source *cancelled = NULL;
        struct timer_order order = {};
        struct timer_slot slot = {&order, 1};

        assert_int_equal(haven_loop_add_timer(e, &cancelled, 10 * USEC_PER_MSEC,
                                              1, on_timer, &slot),
                         0);
        assert_non_null(cancelled);
        cancelled = sd_event_source_disable_unref(cancelled);

        /* Only the safety timer is left (its accuracy makes it slow, so
         * shorten the test with a second, exiting timer). */
        assert_int_equal(haven_loop_add_timer(e, NULL, 50 * USEC_PER_MSEC, 1,
                                              on_safety_timeout, NULL),
                         0);
        assert_int_equal(sd_event_loop(e), SAFETY_EXIT_CODE);
        assert_int_equal(order.n, 0);
}

/* ==== signals ==== */

static int on_sigusr1(sd_event_source *s, const struct signalfd_siginfo *si,
                      void *userdata) {
        *(uint32_t *) userdata = si->ssi_signo;
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void signal_watcher_receives_blocked_signal(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = loop_new_with_safety_timer();
        _cleanup_(sd_event_source_unrefp) sd_event_source *s = NULL;
        uint32_t got = 0;
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        assert_int_equal(sigprocmask(SIG_BLOCK, &mask, NULL), 0);

        assert_int_equal(sd_event_add_signal(e, &s, SIGUSR1, on_sigusr1, &got),
                         0);
        assert_int_equal(raise(SIGUSR1), 0);

        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(got, SIGUSR1);
}

static void loop_blocks_the_signals_daemons_watch(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sigset_t mask;

        assert_int_equal(haven_loop_new(&e), 0);
        assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &mask), 0);
        assert_int_equal(sigismember(&mask, SIGCHLD), 1);
        assert_int_equal(sigismember(&mask, SIGTERM), 1);
        assert_int_equal(sigismember(&mask, SIGINT), 1);
        assert_int_equal(sigismember(&mask, SIGHUP), 1);
}

static int raise_signal(sd_event_source *s, uint64_t usec, void *userdata) {
        assert_int_equal(kill(getpid(), *(int *) userdata), 0);
        return 0;
}

static void sigterm_exits_loop_with_zero(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = loop_new_with_safety_timer();
        int sig = SIGTERM;

        assert_int_equal(haven_loop_add_timer(e, NULL, 10 * USEC_PER_MSEC, 1,
                                              raise_signal, &sig),
                         0);
        assert_int_equal(sd_event_loop(e), 0);
}

static void sigint_exits_loop_with_zero(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = loop_new_with_safety_timer();
        int sig = SIGINT;

        assert_int_equal(haven_loop_add_timer(e, NULL, 10 * USEC_PER_MSEC, 1,
                                              raise_signal, &sig),
                         0);
        assert_int_equal(sd_event_loop(e), 0);
}

/* ==== children ==== */

static int on_child_exit(sd_event_source *s, const siginfo_t *si,
                         void *userdata) {
        *(siginfo_t *) userdata = *si;
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void child_watcher_reaps_forked_child(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = loop_new_with_safety_timer();
        _cleanup_(sd_event_source_unrefp) sd_event_source *s = NULL;
        siginfo_t si = {};
        pid_t pid;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(7);

        assert_int_equal(
                sd_event_add_child(e, &s, pid, WEXITED, on_child_exit, &si), 0);
        assert_int_equal(sd_event_loop(e), 0);

        assert_int_equal(si.si_pid, pid);
        assert_int_equal(si.si_code, CLD_EXITED);
        assert_int_equal(si.si_status, 7);

        /* sd-event reaped it after the callback: no zombie left to wait for. */
        s = sd_event_source_unref(s);
        assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

/* ==== clock ==== */

static void now_usec_is_monotonic(void **state) {
        uint64_t a, b;

        a = haven_now_usec(CLOCK_MONOTONIC);
        assert_int_equal(usleep(2000), 0);
        b = haven_now_usec(CLOCK_MONOTONIC);
        assert_true(a > 0);
        assert_true(b - a >= 2000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(fd_watcher_fires_when_pipe_has_data),
                cmocka_unit_test(timers_fire_in_deadline_order),
                cmocka_unit_test(timer_source_can_be_owned_and_cancelled),
                cmocka_unit_test(signal_watcher_receives_blocked_signal),
                cmocka_unit_test(loop_blocks_the_signals_daemons_watch),
                cmocka_unit_test(sigterm_exits_loop_with_zero),
                cmocka_unit_test(sigint_exits_loop_with_zero),
                cmocka_unit_test(child_watcher_reaps_forked_child),
                cmocka_unit_test(now_usec_is_monotonic),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
