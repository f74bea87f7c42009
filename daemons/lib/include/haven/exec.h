/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Safe execution of external programs (drbdadm, fence agents, corosync tools,
 * ...): fork + execve with an argv, never a shell; a clean environment; all
 * other file descriptors closed; optional stdin data; stdout and stderr
 * captured up to a limit; a timeout (SIGTERM, then SIGKILL after a grace
 * period, to the whole process group); the child reaped by the event loop's
 * child watcher. Must not: block the loop, or leave a zombie behind.
 */
#pragma once

#include <sys/types.h>
#include <systemd/sd-event.h>

#include "haven/macro.h"

#define HAVEN_EXEC_OUTPUT_DEFAULT (256u * 1024u)
#define HAVEN_EXEC_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct haven_exec_options {
        /* Extra "NAME=value" entries added to the clean environment
         * (PATH=HAVEN_EXEC_PATH, LANG=C.UTF-8), NULL-terminated; may be NULL. */
        char *const *environment;
        const char *stdin_data;  /* written to the child's stdin, then closed */
        size_t stdin_size;
        const char *working_directory; /* NULL = "/" */
        uint64_t timeout_usec;   /* 0 = no timeout */
        uint64_t kill_grace_usec; /* SIGTERM→SIGKILL; 0 = 2 s */
        size_t max_output;       /* per stream; 0 = HAVEN_EXEC_OUTPUT_DEFAULT;
                                  * beyond it output is dropped and marked */
};

struct haven_exec_result {
        pid_t pid;
        /* CLD_EXITED / CLD_KILLED / CLD_DUMPED and the exit status or
         * signal number, as in siginfo_t. */
        int code;
        int status;
        bool timed_out;          /* we killed it because of the timeout */
        bool output_truncated;   /* a stream exceeded max_output */
        char *stdout_data;       /* NUL-terminated, owned by the result */
        size_t stdout_size;
        char *stderr_data;
        size_t stderr_size;
        uint64_t duration_usec;
};

/* Frees the captured output; the struct itself is the caller's. NULL ok. */
void haven_exec_result_done(struct haven_exec_result *r);
/* true when the program exited with status 0 and was not timed out. */
bool haven_exec_result_ok(const struct haven_exec_result *r);

struct haven_exec;
/* Called once when the child is reaped and its output fully read. result is
 * borrowed for the duration of the call. */
typedef void (*haven_exec_done_t)(struct haven_exec *x,
                                  const struct haven_exec_result *result,
                                  void *userdata);

/* Starts argv[0] (an absolute path, or looked up in HAVEN_EXEC_PATH) on the
 * loop. argv and options are copied as needed. Returns 0 and *ret (owned by
 * the caller; freeing it before completion kills the child and reaps it
 * without calling done), or -errno: -ENOENT if the program does not exist,
 * fork/pipe errors. If ret is NULL the exec frees itself after done. */
int haven_exec_start(sd_event *event, char *const *argv,
                     const struct haven_exec_options *options,
                     haven_exec_done_t done, void *userdata,
                     struct haven_exec **ret);
struct haven_exec *haven_exec_free(struct haven_exec *x);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_exec *, haven_exec_free)
pid_t haven_exec_pid(struct haven_exec *x);

/* Synchronous form for CLIs and tests: runs its own private loop until the
 * child is done. Fills *ret (call haven_exec_result_done()). Returns 0 if the
 * child ran (whatever its exit status), or -errno if it could not start. */
int haven_exec_run(char *const *argv, const struct haven_exec_options *options,
                   struct haven_exec_result *ret);
