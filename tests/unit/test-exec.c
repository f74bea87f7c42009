/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven/exec.h with real programs: output capture, exit and
 * signal status, timeouts and SIGKILL escalation, the clean environment and
 * fd set, output limits, stdin feeding, parallel runs and zombie-freedom.
 * /bin/sh -c is used here only to produce stderr, exit codes and traps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "haven/exec.h"
#include "haven/loop.h"

#define STRV(...) ((char *const[]){__VA_ARGS__, NULL})

/* Generous bounds so that "quickly" still holds on a loaded CI machine or
 * under ASan, while a 30 s sleep that was not killed fails clearly. */
#define QUICKLY_USEC (5 * USEC_PER_SEC)

static void run_ok(char *const *argv, const struct haven_exec_options *options,
                   struct haven_exec_result *result) {
        assert_int_equal(haven_exec_run(argv, options, result), 0);
        assert_non_null(result->stdout_data);
        assert_non_null(result->stderr_data);
}

static bool no_child_left(void) {
        return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

/* true once pid has died (gone, or a zombie waiting for init), polling
 * for up to 2 s since SIGKILL delivery is asynchronous. */
static bool process_dies(pid_t pid) {
        for (int i = 0; i < 200; i++) {
                char path[64], state = 0;
                _cleanup_fclose_ FILE *f = NULL;

                snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
                f = fopen(path, "re");
                if (!f)
                        return true;
                /* "pid (comm) S ...": comm never contains ") " here. */
                if (fscanf(f, "%*d (%*[^)]) %c", &state) == 1 &&
                    (state == 'Z' || state == 'X'))
                        return true;
                (void) usleep(10000);
        }
        return false;
}

/* ==== Output and status ==== */

static void echo_output_is_captured(void **state) {
        struct haven_exec_result r = {};

        run_ok(STRV("/bin/echo", "hello", "world"), NULL, &r);
        assert_string_equal(r.stdout_data, "hello world\n");
        assert_int_equal(r.stdout_size, strlen("hello world\n"));
        assert_string_equal(r.stderr_data, "");
        assert_int_equal(r.stderr_size, 0);
        assert_int_equal(r.code, CLD_EXITED);
        assert_int_equal(r.status, 0);
        assert_true(r.pid > 0);
        assert_false(r.timed_out);
        assert_false(r.output_truncated);
        assert_true(haven_exec_result_ok(&r));
        haven_exec_result_done(&r);
        assert_null(r.stdout_data);
        assert_true(no_child_left());
}

static void bare_program_name_is_found_in_exec_path(void **state) {
        struct haven_exec_result r = {};

        run_ok(STRV("echo", "via PATH"), NULL, &r);
        assert_string_equal(r.stdout_data, "via PATH\n");
        assert_true(haven_exec_result_ok(&r));
        haven_exec_result_done(&r);
}

static void stdout_and_stderr_are_captured_separately(void **state) {
        struct haven_exec_result r = {};

        run_ok(STRV("/bin/sh", "-c", "echo out; echo err >&2; echo out2"), NULL,
               &r);
        assert_string_equal(r.stdout_data, "out\nout2\n");
        assert_string_equal(r.stderr_data, "err\n");
        assert_true(haven_exec_result_ok(&r));
        haven_exec_result_done(&r);
}

static void exit_status_is_reported(void **state) {
        struct haven_exec_result r = {};

        run_ok(STRV("/bin/sh", "-c", "exit 7"), NULL, &r);
        assert_int_equal(r.code, CLD_EXITED);
        assert_int_equal(r.status, 7);
        assert_false(r.timed_out);
        assert_false(haven_exec_result_ok(&r));
        haven_exec_result_done(&r);

        run_ok(STRV("/bin/false"), NULL, &r);
        assert_int_equal(r.code, CLD_EXITED);
        assert_int_equal(r.status, 1);
        haven_exec_result_done(&r);
}

static void death_by_signal_is_reported(void **state) {
        struct haven_exec_result r = {};

        run_ok(STRV("/bin/sh", "-c", "kill -KILL $$"), NULL, &r);
        assert_int_equal(r.code, CLD_KILLED);
        assert_int_equal(r.status, SIGKILL);
        assert_false(r.timed_out);
        assert_false(haven_exec_result_ok(&r));
        haven_exec_result_done(&r);
}

static void duration_is_measured(void **state) {
        struct haven_exec_result r = {};

        run_ok(STRV("/bin/sleep", "0.2"), NULL, &r);
        assert_true(haven_exec_result_ok(&r));
        assert_true(r.duration_usec >= 200 * USEC_PER_MSEC);
        assert_true(r.duration_usec < QUICKLY_USEC);
        haven_exec_result_done(&r);
}

static void working_directory_defaults_to_root(void **state) {
        struct haven_exec_options o = {.working_directory = "/tmp"};
        struct haven_exec_result r = {};

        run_ok(STRV("/bin/pwd"), NULL, &r);
        assert_string_equal(r.stdout_data, "/\n");
        haven_exec_result_done(&r);

        run_ok(STRV("/bin/pwd"), &o, &r);
        assert_string_equal(r.stdout_data, "/tmp\n");
        haven_exec_result_done(&r);
}

/* ==== Timeouts ==== */

static void timeout_kills_sleeping_program_quickly(void **state) {
        struct haven_exec_options o = {.timeout_usec = 200 * USEC_PER_MSEC};
        struct haven_exec_result r = {};

        run_ok(STRV("/bin/sleep", "30"), &o, &r);
        assert_true(r.timed_out);
        assert_int_equal(r.code, CLD_KILLED);
        assert_int_equal(r.status, SIGTERM);
        assert_false(haven_exec_result_ok(&r));
        assert_true(r.duration_usec >= 200 * USEC_PER_MSEC);
        assert_true(r.duration_usec < QUICKLY_USEC);
        haven_exec_result_done(&r);
        assert_true(no_child_left());
}

static void program_ignoring_sigterm_is_killed_after_grace(void **state) {
        struct haven_exec_options o = {
                .timeout_usec = 100 * USEC_PER_MSEC,
                .kill_grace_usec = 300 * USEC_PER_MSEC,
        };
        struct haven_exec_result r = {};

        /* The ignored SIGTERM is inherited by sleep: the whole group must
         * be SIGKILLed, sleep included. */
        run_ok(STRV("/bin/sh", "-c", "trap '' TERM; sleep 30 & echo $!; wait"),
               &o, &r);
        assert_true(r.timed_out);
        assert_int_equal(r.code, CLD_KILLED);
        assert_int_equal(r.status, SIGKILL);
        assert_true(r.duration_usec >= 400 * USEC_PER_MSEC);
        assert_true(r.duration_usec < QUICKLY_USEC);
        assert_true(atoi(r.stdout_data) > 0);
        assert_true(process_dies(atoi(r.stdout_data)));
        haven_exec_result_done(&r);
}

static void timeout_also_kills_grandchildren_holding_the_pipes(void **state) {
        struct haven_exec_options o = {
                .timeout_usec = 200 * USEC_PER_MSEC,
                .kill_grace_usec = 200 * USEC_PER_MSEC,
        };
        struct haven_exec_result r = {};

        /* sh exits at once; the backgrounded sleep keeps stdout open. */
        run_ok(STRV("/bin/sh", "-c", "sleep 30 & echo $!"), &o, &r);
        assert_int_equal(r.code, CLD_EXITED);
        assert_int_equal(r.status, 0);
        assert_true(r.timed_out);
        assert_true(r.duration_usec >= 200 * USEC_PER_MSEC);
        assert_true(r.duration_usec < QUICKLY_USEC);
        assert_true(atoi(r.stdout_data) > 0);
        assert_true(process_dies(atoi(r.stdout_data)));
        haven_exec_result_done(&r);
}

/* ==== Environment and file descriptors ==== */

static void environment_is_clean(void **state) {
        char *const extras[] = {"HAVEN_TEST_EXTRA=yes", NULL};
        struct haven_exec_options o = {.environment = extras};
        struct haven_exec_result r = {};

        assert_int_equal(setenv("HAVEN_TEST_MARKER", "leaked", 1), 0);

        run_ok(STRV("/usr/bin/env"), &o, &r);
        assert_string_equal(r.stdout_data, "PATH=" HAVEN_EXEC_PATH "\n"
                                           "LANG=C.UTF-8\n"
                                           "HAVEN_TEST_EXTRA=yes\n");
        assert_null(strstr(r.stdout_data, "HAVEN_TEST_MARKER"));
        haven_exec_result_done(&r);

        assert_int_equal(unsetenv("HAVEN_TEST_MARKER"), 0);
}

static void extra_environment_can_override_path(void **state) {
        char *const extras[] = {"PATH=/bin", NULL};
        struct haven_exec_options o = {.environment = extras};
        struct haven_exec_result r = {};

        run_ok(STRV("/usr/bin/env"), &o, &r);
        assert_string_equal(r.stdout_data, "LANG=C.UTF-8\nPATH=/bin\n");
        haven_exec_result_done(&r);
}

static void malformed_environment_entry_is_rejected(void **state) {
        char *const extras[] = {"NO_EQUALS_SIGN", NULL};
        struct haven_exec_options o = {.environment = extras};
        struct haven_exec_result r = {};

        assert_int_equal(haven_exec_run(STRV("/bin/true"), &o, &r), -EINVAL);
        assert_null(r.stdout_data);
}

static void parent_fds_are_not_inherited(void **state) {
        struct haven_exec_result r = {};
        _cleanup_close_ int leaked = -1, leaked_high = -1;
        char *line, *saveptr = NULL;
        int n = 0;

        /* Deliberately without O_CLOEXEC. */
        leaked = open("/dev/null", O_RDONLY);
        assert_true(leaked >= 0);
        leaked_high = dup2(leaked, 50);
        assert_int_equal(leaked_high, 50);

        /* ls lists its own fds: 0-2 and the one it reads the directory with. */
        run_ok(STRV("/bin/ls", "-1", "/proc/self/fd"), NULL, &r);
        assert_true(haven_exec_result_ok(&r));
        for (line = strtok_r(r.stdout_data, "\n", &saveptr); line;
             line = strtok_r(NULL, "\n", &saveptr)) {
                assert_true(atoi(line) <= 3);
                n++;
        }
        assert_int_equal(n, 4);
        haven_exec_result_done(&r);
}

static void signal_mask_and_dispositions_are_reset(void **state) {
        struct sigaction ignore = {.sa_handler = SIG_IGN}, old_action;
        struct haven_exec_result r = {};
        sigset_t usr1, old_mask;

        /* haven_exec_run() additionally blocks SIGCHLD while it runs. */
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        assert_int_equal(sigprocmask(SIG_BLOCK, &usr1, &old_mask), 0);
        assert_int_equal(sigaction(SIGUSR2, &ignore, &old_action), 0);

        run_ok(STRV("/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"),
               NULL, &r);
        {
                unsigned long long blocked = ~0ULL, ignored = ~0ULL;
                /* Signals 32..SIGRTMIN-1 belong to glibc, and sigaction()
                 * refuses them: a parent that ignores them (some harnesses
                 * do) passes that on, and no program can undo it. */
                unsigned long long glibc_reserved = 0;
                for (int sig = 32; sig < SIGRTMIN; sig++)
                        glibc_reserved |= 1ULL << (sig - 1);
                assert_int_equal(sscanf(r.stdout_data, "SigBlk:\t%llx\nSigIgn:\t%llx",
                                        &blocked, &ignored), 2);
                assert_int_equal(blocked, 0);
                assert_int_equal(ignored & ~glibc_reserved, 0);
        }
        haven_exec_result_done(&r);

        assert_int_equal(sigaction(SIGUSR2, &old_action, NULL), 0);
        assert_int_equal(sigprocmask(SIG_SETMASK, &old_mask, NULL), 0);
}

static void stdin_is_dev_null_without_data(void **state) {
        struct haven_exec_result r = {};

        run_ok(STRV("/bin/cat"), NULL, &r);
        assert_true(haven_exec_result_ok(&r));
        assert_int_equal(r.stdout_size, 0);
        haven_exec_result_done(&r);
}

/* ==== Input and output sizes ==== */

static void stdin_data_is_fed_to_program(void **state) {
        static const char input[] = "action=reboot\nport=node2\n";
        struct haven_exec_options o = {
                .stdin_data = input,
                .stdin_size = strlen(input),
        };
        struct haven_exec_result r = {};

        run_ok(STRV("/bin/cat"), &o, &r);
        assert_true(haven_exec_result_ok(&r));
        assert_string_equal(r.stdout_data, input);
        haven_exec_result_done(&r);
}

static void large_stdin_round_trips_through_cat(void **state) {
        const size_t size = 1024 * 1024;
        _cleanup_free_ char *input = malloc(size);
        struct haven_exec_options o = {.stdin_size = size,
                                       .max_output = 2 * size};
        struct haven_exec_result r = {};

        assert_non_null(input);
        for (size_t i = 0; i < size; i++)
                input[i] = (char) ('a' + (i * 7 + i / 4096) % 26);
        o.stdin_data = input;

        run_ok(STRV("/bin/cat"), &o, &r);
        assert_true(haven_exec_result_ok(&r));
        assert_false(r.output_truncated);
        assert_int_equal(r.stdout_size, size);
        assert_memory_equal(r.stdout_data, input, size);
        haven_exec_result_done(&r);
}

static void program_ignoring_stdin_does_not_hurt_us(void **state) {
        const size_t size = 1024 * 1024;
        _cleanup_free_ char *input = calloc(1, size);
        struct haven_exec_options o = {.stdin_size = size};
        struct haven_exec_result r = {};

        /* true exits without reading: our write gets EPIPE, not SIGPIPE. */
        assert_non_null(input);
        o.stdin_data = input;
        run_ok(STRV("/bin/true"), &o, &r);
        assert_true(haven_exec_result_ok(&r));
        haven_exec_result_done(&r);
}

static void output_beyond_limit_is_truncated_and_flagged(void **state) {
        struct haven_exec_options o = {.max_output = 1000};
        struct haven_exec_result r = {};

        /* 1 MiB of output: the program must not block on a full pipe. */
        run_ok(STRV("/usr/bin/head", "-c", "1048576", "/dev/zero"), &o, &r);
        assert_true(haven_exec_result_ok(&r));
        assert_true(r.output_truncated);
        assert_int_equal(r.stdout_size, 1000);
        assert_int_equal(r.stdout_data[1000], '\0');
        haven_exec_result_done(&r);

        run_ok(STRV("/bin/echo", "short"), &o, &r);
        assert_false(r.output_truncated);
        haven_exec_result_done(&r);
}

/* ==== Start errors ==== */

static void missing_program_fails_with_enoent(void **state) {
        struct haven_exec_result r = {};
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct haven_exec *x = NULL;

        assert_int_equal(
                haven_exec_run(STRV("/nonexistent/haven-prog"), NULL, &r),
                -ENOENT);
        assert_null(r.stdout_data);
        assert_int_equal(
                haven_exec_run(STRV("haven-no-such-program"), NULL, &r),
                -ENOENT);

        assert_int_equal(haven_loop_new(&e), 0);
        assert_int_equal(haven_exec_start(e, STRV("/nonexistent/haven-prog"),
                                          NULL, NULL, NULL, &x),
                         -ENOENT);
        assert_null(x);
        assert_true(no_child_left());
}

static void failed_execve_is_reported_not_faked_as_exit_status(void **state) {
        static const char garbage[] = "\x7f"
                                      "ELF garbage";
        char path[] = "/tmp/haven-test-exec-XXXXXX";
        struct haven_exec_result r = {};
        _cleanup_close_ int fd = -1;

        /* Executable bit, but no valid format and no #! line. */
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, garbage, strlen(garbage)),
                         (ssize_t) strlen(garbage));
        assert_int_equal(fchmod(fd, 0700), 0);
        fd = safe_close(fd);

        assert_int_equal(haven_exec_run(STRV(path), NULL, &r), -ENOEXEC);
        assert_null(r.stdout_data);
        assert_true(no_child_left());
        assert_int_equal(unlink(path), 0);
}

static void bad_working_directory_fails_to_start(void **state) {
        struct haven_exec_options o = {.working_directory = "/nonexistent/dir"};
        struct haven_exec_result r = {};

        assert_int_equal(haven_exec_run(STRV("/bin/true"), &o, &r), -ENOENT);
        assert_true(no_child_left());
}

static void start_requires_sigchld_blocked(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct haven_exec *x = NULL;
        sigset_t chld, old;

        assert_int_equal(sd_event_new(&e), 0);
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        assert_int_equal(sigprocmask(SIG_UNBLOCK, &chld, &old), 0);

        assert_int_equal(
                haven_exec_start(e, STRV("/bin/true"), NULL, NULL, NULL, &x),
                -EBUSY);
        assert_null(x);

        assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
}

static void run_restores_signal_mask(void **state) {
        struct haven_exec_result r = {};
        sigset_t chld, old, now;

        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        assert_int_equal(sigprocmask(SIG_UNBLOCK, &chld, &old), 0);

        run_ok(STRV("/bin/true"), NULL, &r);
        haven_exec_result_done(&r);

        assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &now), 0);
        assert_int_equal(sigismember(&now, SIGCHLD), 0);
        assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
}

/* ==== On a shared loop ==== */

struct done_record {
        int calls;
        struct haven_exec_result copy;
        char output[64];
};

static void on_done(struct haven_exec *x,
                    const struct haven_exec_result *result, void *userdata) {
        struct done_record *rec = userdata;

        rec->calls++;
        rec->copy = *result;
        rec->copy.stdout_data = rec->copy.stderr_data = NULL; /* borrowed */
        snprintf(rec->output, sizeof(rec->output), "%s", result->stdout_data);
        assert_int_equal(haven_exec_pid(x), result->pid);
        /* The child is already reaped when done runs. */
        assert_int_equal(waitpid(result->pid, NULL, WNOHANG), -1);
}

static int exit_when_all_done(sd_event_source *s, void *userdata) {
        struct done_record *records = userdata;

        if (records[0].calls + records[1].calls == 2)
                return sd_event_exit(sd_event_source_get_event(s), 0);
        return 0;
}

static int on_safety_timeout(sd_event_source *s, uint64_t usec,
                             void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 99);
}

static void two_execs_run_in_parallel_on_one_loop(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(haven_exec_freep) struct haven_exec *a = NULL;
        _cleanup_(haven_exec_freep) struct haven_exec *b = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *post = NULL;
        struct done_record records[2] = {};
        uint64_t start;

        assert_int_equal(haven_loop_new(&e), 0);
        assert_int_equal(haven_loop_add_timer(e, NULL, 10 * USEC_PER_SEC, 0,
                                              on_safety_timeout, NULL),
                         0);
        assert_int_equal(
                sd_event_add_post(e, &post, exit_when_all_done, records), 0);

        start = haven_now_usec(CLOCK_MONOTONIC);
        assert_int_equal(
                haven_exec_start(e, STRV("/bin/sh", "-c", "sleep 0.5; echo A"),
                                 NULL, on_done, &records[0], &a),
                0);
        assert_int_equal(
                haven_exec_start(e, STRV("/bin/sh", "-c", "sleep 0.5; echo B"),
                                 NULL, on_done, &records[1], &b),
                0);
        assert_int_not_equal(haven_exec_pid(a), haven_exec_pid(b));

        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(records[0].calls, 1);
        assert_int_equal(records[1].calls, 1);
        assert_string_equal(records[0].output, "A\n");
        assert_string_equal(records[1].output, "B\n");
        assert_true(haven_exec_result_ok(&records[0].copy));
        assert_true(haven_exec_result_ok(&records[1].copy));
        /* Sequential would take at least 1 s. */
        assert_true(haven_now_usec(CLOCK_MONOTONIC) - start <
                    950 * USEC_PER_MSEC);
        assert_true(no_child_left());
}

static void freeing_running_exec_leaves_no_zombie(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct haven_exec *x = NULL;
        struct done_record rec = {};
        char proc_path[64];
        pid_t pid;

        assert_int_equal(haven_loop_new(&e), 0);
        assert_int_equal(haven_exec_start(e, STRV("/bin/sleep", "30"), NULL,
                                          on_done, &rec, &x),
                         0);
        pid = haven_exec_pid(x);
        assert_true(pid > 0);
        assert_int_equal(kill(pid, 0), 0);

        /* Let the loop run an iteration or two first. */
        assert_true(sd_event_run(e, 50 * USEC_PER_MSEC) >= 0);

        x = haven_exec_free(x);
        assert_null(x);
        assert_int_equal(rec.calls, 0);

        snprintf(proc_path, sizeof(proc_path), "/proc/%d", (int) pid);
        assert_int_equal(access(proc_path, F_OK), -1);
        assert_int_equal(kill(pid, 0), -1);
        assert_int_equal(errno, ESRCH);
        assert_true(no_child_left());
}

static void on_done_free_self(struct haven_exec *x,
                              const struct haven_exec_result *result,
                              void *userdata) {
        struct haven_exec **slot = userdata;

        assert_ptr_equal(*slot, x);
        assert_string_equal(result->stdout_data, "bye\n");
        *slot = haven_exec_free(x);
}

static int exit_when_freed(sd_event_source *s, void *userdata) {
        if (!*(struct haven_exec **) userdata)
                return sd_event_exit(sd_event_source_get_event(s), 0);
        return 0;
}

static void owner_may_free_exec_inside_done(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *post = NULL;
        struct haven_exec *x = NULL;

        assert_int_equal(haven_loop_new(&e), 0);
        assert_int_equal(haven_loop_add_timer(e, NULL, 10 * USEC_PER_SEC, 0,
                                              on_safety_timeout, NULL),
                         0);
        assert_int_equal(haven_exec_start(e, STRV("/bin/echo", "bye"), NULL,
                                          on_done_free_self, &x, &x),
                         0);
        assert_int_equal(sd_event_add_post(e, &post, exit_when_freed, &x), 0);
        assert_int_equal(sd_event_loop(e), 0);
        assert_null(x); /* ASan checks that it was really freed */
        assert_true(no_child_left());
}

static void on_done_count(struct haven_exec *x,
                          const struct haven_exec_result *result,
                          void *userdata) {
        (*(int *) userdata)++;
}

static int exit_when_counted(sd_event_source *s, void *userdata) {
        if (*(int *) userdata > 0)
                return sd_event_exit(sd_event_source_get_event(s), 0);
        return 0;
}

static void exec_without_owner_frees_itself(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *post = NULL;
        int calls = 0;

        assert_int_equal(haven_loop_new(&e), 0);
        assert_int_equal(haven_loop_add_timer(e, NULL, 10 * USEC_PER_SEC, 0,
                                              on_safety_timeout, NULL),
                         0);
        assert_int_equal(haven_exec_start(e, STRV("/bin/true"), NULL,
                                          on_done_count, &calls, NULL),
                         0);
        assert_int_equal(sd_event_add_post(e, &post, exit_when_counted, &calls),
                         0);
        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(calls, 1);
        assert_true(no_child_left());
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(echo_output_is_captured),
                cmocka_unit_test(bare_program_name_is_found_in_exec_path),
                cmocka_unit_test(stdout_and_stderr_are_captured_separately),
                cmocka_unit_test(exit_status_is_reported),
                cmocka_unit_test(death_by_signal_is_reported),
                cmocka_unit_test(duration_is_measured),
                cmocka_unit_test(working_directory_defaults_to_root),
                cmocka_unit_test(timeout_kills_sleeping_program_quickly),
                cmocka_unit_test(
                        program_ignoring_sigterm_is_killed_after_grace),
                cmocka_unit_test(
                        timeout_also_kills_grandchildren_holding_the_pipes),
                cmocka_unit_test(environment_is_clean),
                cmocka_unit_test(extra_environment_can_override_path),
                cmocka_unit_test(malformed_environment_entry_is_rejected),
                cmocka_unit_test(parent_fds_are_not_inherited),
                cmocka_unit_test(signal_mask_and_dispositions_are_reset),
                cmocka_unit_test(stdin_is_dev_null_without_data),
                cmocka_unit_test(stdin_data_is_fed_to_program),
                cmocka_unit_test(large_stdin_round_trips_through_cat),
                cmocka_unit_test(program_ignoring_stdin_does_not_hurt_us),
                cmocka_unit_test(output_beyond_limit_is_truncated_and_flagged),
                cmocka_unit_test(missing_program_fails_with_enoent),
                cmocka_unit_test(
                        failed_execve_is_reported_not_faked_as_exit_status),
                cmocka_unit_test(bad_working_directory_fails_to_start),
                cmocka_unit_test(start_requires_sigchld_blocked),
                cmocka_unit_test(run_restores_signal_mask),
                cmocka_unit_test(two_execs_run_in_parallel_on_one_loop),
                cmocka_unit_test(freeing_running_exec_leaves_no_zombie),
                cmocka_unit_test(owner_may_free_exec_inside_done),
                cmocka_unit_test(exec_without_owner_frees_itself),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
