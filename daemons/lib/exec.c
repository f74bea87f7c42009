/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runs external programs for the daemons (see haven/exec.h): fork + execve,
 * stdin fed and stdout/stderr read through the caller's sd-event loop, a
 * timeout that escalates SIGTERM → SIGKILL on the process group, and the
 * child reaped by the loop's child watcher. Never runs a shell, never blocks
 * the loop except for the few microseconds between fork() and execve().
 */
#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "haven/exec.h"
#include "haven/log.h"
#include "haven/loop.h"

/* Hard limits for what callers hand us: output kept per stream and stdin
 * data copied. Far above anything a fence agent or drbdadm produces. */
#define EXEC_OUTPUT_LIMIT (64u * 1024u * 1024u)
#define EXEC_STDIN_LIMIT (64u * 1024u * 1024u)
#define EXEC_KILL_GRACE_DEFAULT_USEC (2 * USEC_PER_SEC)
#define EXEC_READ_CHUNK (64u * 1024u)
#define EXEC_FIRST_BUFFER (4u * 1024u)

enum {
        STREAM_STDOUT,
        STREAM_STDERR,
        _STREAM_MAX,
};

struct exec_stream {
        int fd; /* our (read) end; -1 once at EOF */
        sd_event_source *source;
        char *data; /* always allocated, room for a NUL */
        size_t size;
        size_t allocated; /* usable bytes, not counting the NUL */
        bool full;        /* kept max_output (or out of memory) */
};

struct haven_exec {
        sd_event *event;
        pid_t pid;           /* also the process group id */
        bool reaped;         /* waited for; pid must not be used again */
        bool finished;       /* done has been (or is being) called */
        bool floating;       /* no owner: frees itself after done */
        bool in_done;        /* inside the done callback */
        bool free_requested; /* haven_exec_free() called from done */
        bool sigkill_sent;

        sd_event_source *child_source;
        sd_event_source *timeout_source;
        sd_event_source *kill_source;

        int stdin_fd;
        sd_event_source *stdin_source;
        char *stdin_data;
        size_t stdin_size;
        size_t stdin_written;

        struct exec_stream streams[_STREAM_MAX];
        size_t max_output;
        uint64_t kill_grace_usec;
        uint64_t start_usec;

        struct haven_exec_result result;
        haven_exec_done_t done;
        void *userdata;
};

/* ==== Results ==== */

void haven_exec_result_done(struct haven_exec_result *r) {
        if (!r)
                return;
        free(r->stdout_data);
        r->stdout_data = NULL;
        r->stdout_size = 0;
        free(r->stderr_data);
        r->stderr_data = NULL;
        r->stderr_size = 0;
}

bool haven_exec_result_ok(const struct haven_exec_result *r) {
        return r && r->code == CLD_EXITED && r->status == 0 && !r->timed_out;
}

/* ==== Preparing the child ==== */

/* 0 if path is a regular file we may execute, else a negative errno. */
static int check_executable(const char *path) {
        struct stat st;

        if (stat(path, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EACCES;
        if (access(path, X_OK) < 0)
                return negative_errno();
        return 0;
}

/* Resolves name (absolute, or a bare name looked up in HAVEN_EXEC_PATH) to
 * an absolute path in *ret (owned by the caller). -ENOENT when no such
 * program exists, -EACCES when one exists but is not executable, -EINVAL
 * for a relative path with a slash. */
static int find_executable(const char *name, char **ret) {
        const char *p = HAVEN_EXEC_PATH;
        bool found_unusable = false;
        size_t name_len;
        int r;

        name_len = strlen(name);
        if (name_len == 0)
                return -EINVAL;
        if (name_len >= PATH_MAX)
                return -ENAMETOOLONG;

        if (strchr(name, '/')) {
                char *copy;

                if (name[0] != '/')
                        return -EINVAL;
                r = check_executable(name);
                if (r < 0)
                        return r == -ENOTDIR ? -ENOENT : r;
                copy = strdup(name);
                if (!copy)
                        return -ENOMEM;
                *ret = copy;
                return 0;
        }

        while (*p) {
                _cleanup_free_ char *candidate = NULL;
                size_t dir_len = strcspn(p, ":");

                if (asprintf(&candidate, "%.*s/%s", (int) dir_len, p, name) < 0)
                        return -ENOMEM;

                r = check_executable(candidate);
                if (r == 0) {
                        *ret = TAKE_PTR(candidate);
                        return 0;
                }
                if (r != -ENOENT && r != -ENOTDIR)
                        found_unusable = true;

                p += dir_len;
                if (*p == ':')
                        p++;
        }

        return found_unusable ? -EACCES : -ENOENT;
}

static bool env_has_name(char *const *environment, const char *name) {
        size_t len = strlen(name);

        for (char *const *e = environment; e && *e; e++)
                if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
                        return true;
        return false;
}

/* Builds the child's environment: PATH and LANG (unless extras set them)
 * followed by the extras. Every extra must look like NAME=value. */
static int build_environment(char *const *extras, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        size_t n = 0, i = 0;

        for (char *const *e = extras; e && *e; e++) {
                const char *eq = strchr(*e, '=');

                if (!eq || eq == *e)
                        return -EINVAL;
                n++;
        }

        env = calloc(n + 3, sizeof(char *));
        if (!env)
                return -ENOMEM;

        if (!env_has_name(extras, "PATH")) {
                env[i] = strdup("PATH=" HAVEN_EXEC_PATH);
                if (!env[i++])
                        return -ENOMEM;
        }
        if (!env_has_name(extras, "LANG")) {
                env[i] = strdup("LANG=C.UTF-8");
                if (!env[i++])
                        return -ENOMEM;
        }
        for (char *const *e = extras; e && *e; e++) {
                env[i] = strdup(*e);
                if (!env[i++])
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(env);
        return 0;
}

static int fd_set_nonblock(int fd) {
        int flags;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return negative_errno();
        if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return negative_errno();
        return 0;
}

/* In the forked child: only async-signal-safe calls from here to execve().
 * fds are stdin, stdout, stderr and the exec-error report pipe, all
 * O_CLOEXEC. On failure the errno goes down the report pipe. */
_noreturn_ static void exec_child(const char *path, char *const *argv,
                                  char *const *envp, const char *directory,
                                  int fds[4], int max_fd) {
        struct sigaction sa = {.sa_handler = SIG_DFL};
        sigset_t empty;
        ssize_t k;
        int error;

        if (setpgid(0, 0) < 0)
                goto fail;

        /* Dispositions first, then the mask, so nothing pending can run one
         * of the parent's handlers in here. */
        for (int sig = 1; sig < NSIG; sig++)
                (void) sigaction(sig, &sa, NULL);
        if (sigemptyset(&empty) < 0 ||
            sigprocmask(SIG_SETMASK, &empty, NULL) < 0)
                goto fail;

        /* Lift every fd above 2 first, so that the dup2()s below cannot
         * overwrite one we still need (the parent may run with 0-2 closed). */
        for (int i = 0; i < 4; i++)
                if (fds[i] < 3) {
                        int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);

                        if (moved < 0)
                                goto fail;
                        fds[i] = moved;
                }
        for (int i = 0; i < 3; i++)
                if (dup2(fds[i], i) < 0)
                        goto fail;
        if (fds[3] != 3) {
                if (dup3(fds[3], 3, O_CLOEXEC) < 0)
                        goto fail;
                fds[3] = 3;
        }
        if (close_range(4, ~0U, 0) < 0)
                for (int fd = 4; fd < max_fd; fd++)
                        (void) close(fd);

        if (chdir(directory ? directory : "/") < 0)
                goto fail;

        execve(path, argv, envp);

fail:
        error = errno;
        k = write(fds[3], &error, sizeof(error));
        (void) k;
        _exit(127);
}

/* ==== Running ==== */

static void exec_kill_group(struct haven_exec *x, int sig) {
        /* The group outlives a reaped leader as long as a member (a
         * grandchild) lives; kill(-pgid) then still reaches it. */
        if (kill(-x->pid, sig) < 0 && errno != ESRCH)
                log_debug_errno(errno,
                                "Failed to send signal %d to process group %d, "
                                "ignoring: %m",
                                sig, (int) x->pid);
        if (!x->reaped)
                (void) kill(x->pid, sig);
        if (sig == SIGKILL)
                x->sigkill_sent = true;
}

static void exec_close_stdin(struct haven_exec *x) {
        x->stdin_source = sd_event_source_disable_unref(x->stdin_source);
        x->stdin_fd = safe_close(x->stdin_fd);
        free(x->stdin_data);
        x->stdin_data = NULL;
}

static void exec_close_stream(struct exec_stream *s) {
        s->source = sd_event_source_disable_unref(s->source);
        s->fd = safe_close(s->fd);
}

static bool exec_streams_open(const struct haven_exec *x) {
        for (int i = 0; i < _STREAM_MAX; i++)
                if (x->streams[i].fd >= 0)
                        return true;
        return false;
}

/* Makes room for more output in s; marks it full at max_output or when
 * memory runs out (the rest is then dropped, as for a too-long output). */
static void exec_stream_grow(struct haven_exec *x, struct exec_stream *s) {
        size_t a;
        char *p;

        if (s->size < s->allocated)
                return;
        if (s->allocated >= x->max_output) {
                s->full = true;
                return;
        }

        a = s->allocated * 2;
        if (a < s->allocated + EXEC_READ_CHUNK)
                a = s->allocated + EXEC_READ_CHUNK;
        if (a > x->max_output)
                a = x->max_output;
        p = realloc(s->data, a + 1);
        if (!p) {
                s->full = true;
                return;
        }
        s->data = p;
        s->allocated = a;
}

/* Reads once from a stream. Returns 1 if data was read, 0 for EAGAIN, and
 * closes the stream and returns 0 at EOF or on a read error. Data beyond
 * max_output is read and dropped so the child never blocks on a full pipe. */
static int exec_stream_read(struct haven_exec *x, struct exec_stream *s) {
        char scratch[4096];
        size_t want;
        ssize_t n;
        char *buf;

        if (!s->full)
                exec_stream_grow(x, s);
        if (!s->full) {
                buf = s->data + s->size;
                want = s->allocated - s->size;
        } else {
                buf = scratch;
                want = sizeof(scratch);
        }

        n = read(s->fd, buf, want);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                log_debug_errno(
                        errno,
                        "Failed to read output of process %d, closing: %m",
                        (int) x->pid);
                exec_close_stream(s);
                return 0;
        }
        if (n == 0) {
                exec_close_stream(s);
                return 0;
        }

        if (buf == scratch)
                x->result.output_truncated = true;
        else
                s->size += (size_t) n;
        return 1;
}

/* Reads what the pipes hold right now, then closes them. Bounded: a writer
 * that escaped the process group (setsid) could otherwise keep us here. */
static void exec_drain_and_close_streams(struct haven_exec *x) {
        for (int i = 0; i < _STREAM_MAX; i++) {
                struct exec_stream *s = &x->streams[i];

                for (int reads = 0; reads < 1024 && s->fd >= 0; reads++)
                        if (exec_stream_read(x, s) <= 0)
                                break;
                exec_close_stream(s);
        }
}

/* Drops every event source and fd; afterwards no callback of x runs. */
static void exec_disconnect(struct haven_exec *x) {
        x->child_source = sd_event_source_disable_unref(x->child_source);
        x->timeout_source = sd_event_source_disable_unref(x->timeout_source);
        x->kill_source = sd_event_source_disable_unref(x->kill_source);
        exec_close_stdin(x);
        for (int i = 0; i < _STREAM_MAX; i++)
                exec_close_stream(&x->streams[i]);
}

static void exec_free_now(struct haven_exec *x) {
        bool leftovers = exec_streams_open(x);

        exec_disconnect(x);

        if (x->pid > 0 && !x->reaped) {
                exec_kill_group(x, SIGKILL);
                while (waitpid(x->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                x->reaped = true;
        } else if (x->pid > 0 && leftovers && !x->finished)
                /* Leader gone, but something in its group still held the
                 * pipes: take it down too. */
                exec_kill_group(x, SIGKILL);

        for (int i = 0; i < _STREAM_MAX; i++)
                free(x->streams[i].data);
        haven_exec_result_done(&x->result);
        sd_event_unref(x->event);
        free(x);
}

/* Delivers the result once the child is reaped and both pipes are at EOF
 * (or we SIGKILLed the group, in which case whatever is still buffered is
 * read and the pipes are closed). May free x: callers return right after. */
static int exec_maybe_finish(struct haven_exec *x) {
        if (x->finished || !x->reaped)
                return 0;
        if (exec_streams_open(x)) {
                if (!x->sigkill_sent)
                        return 0;
                exec_drain_and_close_streams(x);
        }

        x->finished = true;
        exec_disconnect(x);

        x->result.duration_usec =
                haven_now_usec(CLOCK_MONOTONIC) - x->start_usec;
        x->result.stdout_data = TAKE_PTR(x->streams[STREAM_STDOUT].data);
        x->result.stdout_size = x->streams[STREAM_STDOUT].size;
        x->result.stdout_data[x->result.stdout_size] = '\0';
        x->result.stderr_data = TAKE_PTR(x->streams[STREAM_STDERR].data);
        x->result.stderr_size = x->streams[STREAM_STDERR].size;
        x->result.stderr_data[x->result.stderr_size] = '\0';

        if (x->done) {
                x->in_done = true;
                x->done(x, &x->result, x->userdata);
                x->in_done = false;
        }

        if (x->floating || x->free_requested)
                exec_free_now(x);
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct haven_exec *x = userdata;

        x->result.code = si->si_code;
        x->result.status = si->si_status;

        /* Reap now rather than after this callback (as sd-event would), so
         * that the pid is really gone when done runs. */
        while (waitpid(x->pid, NULL, WNOHANG) < 0 && errno == EINTR)
                ;
        x->reaped = true;
        x->child_source = sd_event_source_disable_unref(x->child_source);

        return exec_maybe_finish(x);
}

static int on_output(sd_event_source *s, int fd, uint32_t revents,
                     void *userdata) {
        struct haven_exec *x = userdata;
        struct exec_stream *stream = NULL;

        for (int i = 0; i < _STREAM_MAX; i++)
                if (x->streams[i].source == s)
                        stream = &x->streams[i];
        assert(stream);

        /* Level-triggered: one read per wake-up keeps the loop fair. */
        (void) exec_stream_read(x, stream);

        return exec_maybe_finish(x);
}

/* write() that cannot kill us with SIGPIPE when the child closed its stdin:
 * SIGPIPE is blocked for the call and a SIGPIPE it raised is consumed. */
static ssize_t write_no_sigpipe(int fd, const void *buf, size_t size) {
        static const struct timespec zero = {};
        sigset_t pipe_set, old_mask, pending;
        bool was_pending;
        ssize_t n;
        int saved;

        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        if (sigprocmask(SIG_BLOCK, &pipe_set, &old_mask) < 0)
                return -1;
        was_pending = sigpending(&pending) == 0 &&
                      sigismember(&pending, SIGPIPE) == 1;

        n = write(fd, buf, size);
        saved = errno;
        if (n < 0 && saved == EPIPE && !was_pending)
                (void) sigtimedwait(&pipe_set, NULL, &zero);

        (void) sigprocmask(SIG_SETMASK, &old_mask, NULL);
        errno = saved;
        return n;
}

static int on_stdin_writable(sd_event_source *s, int fd, uint32_t revents,
                             void *userdata) {
        struct haven_exec *x = userdata;
        size_t left = x->stdin_size - x->stdin_written;
        ssize_t n;

        n = write_no_sigpipe(fd, x->stdin_data + x->stdin_written,
                             left < EXEC_READ_CHUNK ? left : EXEC_READ_CHUNK);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                /* EPIPE: the program does not want (more) input. */
                log_debug_errno(
                        errno,
                        "Failed to write stdin of process %d, closing it: %m",
                        (int) x->pid);
                exec_close_stdin(x);
                return 0;
        }

        x->stdin_written += (size_t) n;
        if (x->stdin_written >= x->stdin_size)
                exec_close_stdin(x); /* the program sees EOF */
        return 0;
}

static int on_kill_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct haven_exec *x = userdata;

        log_debug("Process %d did not exit after SIGTERM, sending SIGKILL.",
                  (int) x->pid);
        x->kill_source = sd_event_source_disable_unref(x->kill_source);
        exec_kill_group(x, SIGKILL);

        /* If only the pipes were left (leader already reaped), stop here. */
        return exec_maybe_finish(x);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct haven_exec *x = userdata;
        int r;

        log_debug("Process %d timed out, sending SIGTERM.", (int) x->pid);
        x->timeout_source = sd_event_source_disable_unref(x->timeout_source);
        x->result.timed_out = true;
        exec_kill_group(x, SIGTERM);

        r = haven_loop_add_timer(x->event, &x->kill_source, x->kill_grace_usec,
                                 1, on_kill_timeout, x);
        if (r < 0) {
                log_debug_errno(r,
                                "Failed to arm SIGKILL timer, killing process "
                                "%d now: %m",
                                (int) x->pid);
                exec_kill_group(x, SIGKILL);
                return exec_maybe_finish(x);
        }
        return 0;
}

static int sigchld_is_blocked(void) {
        sigset_t mask;

        if (sigprocmask(SIG_SETMASK, NULL, &mask) < 0)
                return negative_errno();
        return sigismember(&mask, SIGCHLD) == 1;
}

/* Additional contract beyond haven/exec.h: SIGCHLD must be blocked in the
 * calling thread (haven_loop_new() does that), as sd_event_add_child()
 * requires; otherwise -EBUSY before anything is started. Other errors:
 * -EINVAL for an empty argv, a relative path with a slash or an environment
 * entry without '='; -EACCES/-ENOEXEC/... when the program exists but
 * execve() fails, reported by the child before haven_exec_start() returns. */
int haven_exec_start(sd_event *event, char *const *argv,
                     const struct haven_exec_options *options,
                     haven_exec_done_t done, void *userdata,
                     struct haven_exec **ret) {
        static const struct haven_exec_options no_options = {};
        _cleanup_(haven_exec_freep) struct haven_exec *x = NULL;
        _cleanup_strv_free_ char **envp = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int stdin_child = -1, stdout_child = -1,
                            stderr_child = -1, report_child = -1,
                            report_parent = -1;
        int pipe_fds[2], child_fds[4], error, max_fd;
        size_t max_output;
        ssize_t n;
        pid_t pid;
        int r;

        assert(event);
        assert(argv);

        if (!options)
                options = &no_options;
        if (!argv[0])
                return -EINVAL;
        if (options->stdin_size > 0 && !options->stdin_data)
                return -EINVAL;
        if (options->stdin_size > EXEC_STDIN_LIMIT)
                return -E2BIG;
        max_output = options->max_output ?: HAVEN_EXEC_OUTPUT_DEFAULT;
        if (max_output > EXEC_OUTPUT_LIMIT)
                return -EINVAL;

        r = sigchld_is_blocked();
        if (r < 0)
                return r;
        if (r == 0)
                return -EBUSY;

        r = find_executable(argv[0], &path);
        if (r < 0)
                return r;
        r = build_environment(options->environment, &envp);
        if (r < 0)
                return r;

        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->stdin_fd = -1;
        for (int i = 0; i < _STREAM_MAX; i++)
                x->streams[i].fd = -1;
        x->event = sd_event_ref(event);
        x->max_output = max_output;
        x->kill_grace_usec =
                options->kill_grace_usec ?: EXEC_KILL_GRACE_DEFAULT_USEC;
        x->done = done;
        x->userdata = userdata;

        for (int i = 0; i < _STREAM_MAX; i++) {
                struct exec_stream *s = &x->streams[i];

                s->allocated = max_output < EXEC_FIRST_BUFFER
                                       ? max_output
                                       : EXEC_FIRST_BUFFER;
                s->data = malloc(s->allocated + 1);
                if (!s->data)
                        return -ENOMEM;
        }

        /* stdin: a pipe fed from the loop, or /dev/null. */
        if (options->stdin_size > 0) {
                x->stdin_data = malloc(options->stdin_size);
                if (!x->stdin_data)
                        return -ENOMEM;
                memcpy(x->stdin_data, options->stdin_data, options->stdin_size);
                x->stdin_size = options->stdin_size;

                if (pipe2(pipe_fds, O_CLOEXEC) < 0)
                        return negative_errno();
                stdin_child = pipe_fds[0];
                x->stdin_fd = pipe_fds[1];
                r = fd_set_nonblock(x->stdin_fd);
                if (r < 0)
                        return r;
        } else {
                stdin_child =
                        open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (stdin_child < 0)
                        return negative_errno();
        }

        if (pipe2(pipe_fds, O_CLOEXEC) < 0)
                return negative_errno();
        x->streams[STREAM_STDOUT].fd = pipe_fds[0];
        stdout_child = pipe_fds[1];
        if (pipe2(pipe_fds, O_CLOEXEC) < 0)
                return negative_errno();
        x->streams[STREAM_STDERR].fd = pipe_fds[0];
        stderr_child = pipe_fds[1];
        for (int i = 0; i < _STREAM_MAX; i++) {
                r = fd_set_nonblock(x->streams[i].fd);
                if (r < 0)
                        return r;
        }

        /* Closed by a successful execve(); carries errno otherwise. */
        if (pipe2(pipe_fds, O_CLOEXEC) < 0)
                return negative_errno();
        report_parent = pipe_fds[0];
        report_child = pipe_fds[1];

        /* Only for the child's fallback when close_range() is missing. */
        max_fd = (int) sysconf(_SC_OPEN_MAX);
        if (max_fd < 0 || max_fd > 1024 * 1024)
                max_fd = 1024 * 1024;

        child_fds[0] = stdin_child;
        child_fds[1] = stdout_child;
        child_fds[2] = stderr_child;
        child_fds[3] = report_child;

        x->start_usec = haven_now_usec(CLOCK_MONOTONIC);
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0)
                exec_child(path, argv, envp, options->working_directory,
                           child_fds, max_fd);

        /* From here on, x's destructor kills and reaps the child. */
        x->pid = pid;
        /* Also here, so the group exists whichever side runs first; fails
         * harmlessly with EACCES once the child has called execve(). */
        (void) setpgid(pid, pid);

        stdin_child = safe_close(stdin_child);
        stdout_child = safe_close(stdout_child);
        stderr_child = safe_close(stderr_child);
        report_child = safe_close(report_child);

        do
                n = read(report_parent, &error, sizeof(error));
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        if (n > 0) {
                /* The child could not execve(); it exits with 127. */
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                x->reaped = true;
                if (n != sizeof(error) || error <= 0)
                        return -EIO;
                return -error;
        }

        r = sd_event_add_child(event, &x->child_source, pid, WEXITED, on_child,
                               x);
        if (r < 0)
                return r;
        for (int i = 0; i < _STREAM_MAX; i++) {
                r = sd_event_add_io(event, &x->streams[i].source,
                                    x->streams[i].fd, EPOLLIN, on_output, x);
                if (r < 0)
                        return r;
        }
        if (x->stdin_fd >= 0) {
                r = sd_event_add_io(event, &x->stdin_source, x->stdin_fd,
                                    EPOLLOUT, on_stdin_writable, x);
                if (r < 0)
                        return r;
        }
        if (options->timeout_usec > 0) {
                r = haven_loop_add_timer(event, &x->timeout_source,
                                         options->timeout_usec, 1, on_timeout,
                                         x);
                if (r < 0)
                        return r;
        }

        x->result.pid = pid;
        if (ret)
                *ret = TAKE_PTR(x);
        else
                TAKE_PTR(x)->floating = true;
        return 0;
}

/* Frees x. If the child still runs, SIGKILLs its process group and reaps it
 * synchronously, without calling done. Called from inside done, the free is
 * deferred until done returns. Returns NULL. */
struct haven_exec *haven_exec_free(struct haven_exec *x) {
        if (!x)
                return NULL;
        if (x->in_done) {
                x->free_requested = true;
                return NULL;
        }
        exec_free_now(x);
        return NULL;
}

pid_t haven_exec_pid(struct haven_exec *x) {
        assert(x);
        return x->pid;
}

/* ==== Synchronous form ==== */

static void on_run_done(struct haven_exec *x,
                        const struct haven_exec_result *result,
                        void *userdata) {
        struct haven_exec_result *ret = userdata;

        /* Move the output out of x instead of copying it. */
        *ret = x->result;
        x->result.stdout_data = NULL;
        x->result.stderr_data = NULL;

        (void) sd_event_exit(x->event, 0);
}

static int exec_run_private_loop(char *const *argv,
                                 const struct haven_exec_options *options,
                                 struct haven_exec_result *ret) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(haven_exec_freep) struct haven_exec *x = NULL;
        int r;

        r = sd_event_new(&event);
        if (r < 0)
                return r;
        r = haven_exec_start(event, argv, options, on_run_done, ret, &x);
        if (r < 0)
                return r;
        r = sd_event_loop(event);
        if (r < 0) {
                haven_exec_result_done(ret);
                return r;
        }
        return 0;
}

int haven_exec_run(char *const *argv, const struct haven_exec_options *options,
                   struct haven_exec_result *ret) {
        sigset_t chld, old_mask;
        int r;

        assert(ret);

        *ret = (struct haven_exec_result){};

        if (sigemptyset(&chld) < 0 || sigaddset(&chld, SIGCHLD) < 0)
                return negative_errno();
        if (sigprocmask(SIG_BLOCK, &chld, &old_mask) < 0)
                return negative_errno();

        /* The loop and the exec are gone when this returns: the mask is
         * restored only after the child has been reaped. */
        r = exec_run_private_loop(argv, options, ret);

        (void) sigprocmask(SIG_SETMASK, &old_mask, NULL);
        return r;
}
