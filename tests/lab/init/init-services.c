/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The services a lab node runs: loading their definitions, starting them with
 * stdout/stderr appended to a per-service log, reaping every child of PID 1,
 * restarting crashed ones with an exponential backoff, and writing the PID
 * record the lab reads from the host. Must not: block the loop.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"
#include "init.h"

#define BACKOFF_MIN_USEC (100 * 1000ULL)
#define BACKOFF_MAX_USEC (5 * 1000 * 1000ULL)
#define STABLE_USEC (10 * 1000 * 1000ULL)  /* running this long resets backoff */
#define STOP_TIMEOUT_USEC (10 * 1000 * 1000ULL)

static const char *const state_names[_SERVICE_STATE_MAX] = {
        [SERVICE_STOPPED] = "stopped",
        [SERVICE_RUNNING] = "running",
        [SERVICE_STOPPING] = "stopping",
        [SERVICE_WAITING] = "waiting",
};

const char *service_state_to_string(enum service_state s) {
        return s >= 0 && s < _SERVICE_STATE_MAX ? state_names[s] : NULL;
}

/* ==== Definitions ==== */

static int service_parse(struct service *svc, struct json_object *def) {
        static const struct haven_json_field policy[] = {
                { .name = "name", .kind = HAVEN_JSON_STRING, .required = true,
                  .min = 1, .max = 32 },
                { .name = "argv", .kind = HAVEN_JSON_ARRAY, .required = true,
                  .min = 1, .max = 64 },
                { .name = "condition", .kind = HAVEN_JSON_STRING, .max = 4096 },
                { .name = "autostart", .kind = HAVEN_JSON_BOOL },
                { .name = "comment", .kind = HAVEN_JSON_STRING },
        };
        struct haven_json_error error;
        struct json_object *argv;
        const char *str;
        bool autostart = true;
        size_t n;
        int r;

        r = haven_json_check(def, policy, ELEMENTSOF(policy), &error);
        if (r < 0)
                return log_error_errno(r, "Bad service definition: %s%s%s%s",
                                       error.field ? "\"" : "", error.field ? error.field : "",
                                       error.field ? "\": " : "", error.message);

        (void) haven_json_get_string(def, "name", &str);
        svc->name = strdup(str);
        if (haven_json_get_string(def, "condition", &str) >= 0) {
                svc->condition = strdup(str);
                if (!svc->condition)
                        return -ENOMEM;
        }
        (void) haven_json_get_bool(def, "autostart", &autostart);
        svc->autostart = autostart;

        (void) haven_json_get_array(def, "argv", &argv);
        n = json_object_array_length(argv);
        svc->argv = calloc(n + 1, sizeof(char *));
        if (!svc->name || !svc->argv)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *a = json_object_array_get_idx(argv, i);
                if (!json_object_is_type(a, json_type_string))
                        return log_error_errno(-EINVAL,
                                               "Service \"%s\": argv must hold strings",
                                               svc->name);
                svc->argv[i] = strdup(json_object_get_string(a));
                if (!svc->argv[i])
                        return -ENOMEM;
        }
        if (svc->argv[0][0] != '/')
                return log_error_errno(-EINVAL,
                                       "Service \"%s\": argv[0] must be an absolute path",
                                       svc->name);
        return 0;
}

int supervisor_load_services(struct supervisor *s, const char *path) {
        _cleanup_(json_object_putp) struct json_object *defs = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;
        long len;
        int r;

        f = fopen(path, "re");
        if (!f)
                return log_error_errno(negative_errno(),
                                       "Failed to open \"%s\": %m", path);
        if (fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 ||
            fseek(f, 0, SEEK_SET) < 0)
                return log_error_errno(negative_errno(), "Failed to size \"%s\": %m", path);
        if (len > 256 * 1024)
                return log_error_errno(-E2BIG, "\"%s\" is too large", path);
        text = malloc((size_t) len + 1);
        if (!text)
                return -ENOMEM;
        size = fread(text, 1, (size_t) len, f);
        r = haven_json_parse(text, size, 256 * 1024, &defs);
        if (r < 0)
                return log_error_errno(r, "\"%s\" is not valid JSON", path);
        if (!json_object_is_type(defs, json_type_array))
                return log_error_errno(-EINVAL, "\"%s\": expected an array", path);
        if (json_object_array_length(defs) > INIT_SERVICES_MAX)
                return log_error_errno(-E2BIG, "\"%s\": more than %d services",
                                       path, INIT_SERVICES_MAX);

        for (size_t i = 0; i < json_object_array_length(defs); i++) {
                struct service *svc = &s->services[s->n_services];

                *svc = (struct service) { .supervisor = s };
                s->n_services++;
                r = service_parse(svc, json_object_array_get_idx(defs, i));
                if (r < 0)
                        return r;
                if (supervisor_find(s, svc->name) != svc)
                        return log_error_errno(-EEXIST, "Service \"%s\" defined twice",
                                               svc->name);
        }
        return 0;
}

struct service *supervisor_find(struct supervisor *s, const char *name) {
        for (size_t i = 0; i < s->n_services; i++)
                if (streq(s->services[i].name, name))
                        return &s->services[i];
        return NULL;
}

/* ==== Starting and stopping ==== */

static int open_log(struct service *svc) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s.log", svc->supervisor->log_dir, svc->name) < 0)
                return -ENOMEM;
        return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

_noreturn_ static void child_exec(struct service *svc, int log_fd) {
        char node_env[128];
        sigset_t all;
        int null_fd;

        /* The clean environment every service starts with. */
        snprintf(node_env, sizeof node_env, "HAVEN_NODE=%s", svc->supervisor->node);
        char *envp[] = {
                (char *) "PATH=" "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                (char *) "LANG=C.UTF-8",
                (char *) "HAVEN_LAB=1",
                node_env,
                NULL,
        };

        sigemptyset(&all);
        for (int sig = 1; sig < _NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        (void) setsid();

        null_fd = open("/dev/null", O_RDONLY);
        if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
            dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)
                _exit(126);
        if (chdir("/") < 0)
                _exit(126);
        execve(svc->argv[0], svc->argv, envp);
        dprintf(STDERR_FILENO, "haven-lab-init: exec %s failed: %m\n", svc->argv[0]);
        _exit(127);
}

/* Starts a stopped or waiting service. Returns 0, -EALREADY if it runs,
 * or a negative errno from fork/open. */
int service_start(struct service *svc) {
        _cleanup_close_ int log_fd = -1;
        pid_t pid;

        if (svc->state == SERVICE_RUNNING || svc->state == SERVICE_STOPPING)
                return -EALREADY;
        svc->restart_timer = sd_event_source_disable_unref(svc->restart_timer);

        log_fd = open_log(svc);
        if (log_fd < 0)
                return log_error_errno(log_fd, "Service \"%s\": failed to open its log: %m",
                                       svc->name);
        dprintf(log_fd, "-- haven-lab-init: starting %s\n", svc->name);

        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Service \"%s\": fork failed: %m",
                                       svc->name);
        if (pid == 0)
                child_exec(svc, log_fd);

        svc->pid = pid;
        svc->state = SERVICE_RUNNING;
        svc->started_usec = haven_now_usec(CLOCK_MONOTONIC);
        log_info("Service \"%s\" started as PID %d", svc->name, (int) pid);
        (void) supervisor_write_record(svc->supervisor);
        return 0;
}

static int on_kill_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        struct service *svc = userdata;

        svc->kill_timer = sd_event_source_disable_unref(svc->kill_timer);
        if (svc->state == SERVICE_STOPPING && svc->pid > 0) {
                log_warning("Service \"%s\" did not stop in time, killing it", svc->name);
                (void) kill(-svc->pid, SIGKILL);
                (void) kill(svc->pid, SIGKILL);
        }
        return 0;
}

static void reply_waiters(struct service *svc, const char *error) {
        for (size_t i = 0; i < svc->n_waiters; i++) {
                struct haven_msg_conn *c = svc->waiters[i];
                if (error)
                        (void) haven_msg_conn_send_error(c, "failed", error);
                else {
                        _cleanup_(json_object_putp) struct json_object *reply =
                                service_to_json(svc);
                        if (reply)
                                (void) haven_msg_conn_send(c, reply);
                }
                haven_msg_conn_unref(c);
        }
        svc->n_waiters = 0;
}

/* Asks a service to stop (SIGTERM to its process group, SIGKILL after the
 * stop timeout). If waiter is given, it gets the reply once the service has
 * exited (the function takes a reference). Returns 0, or -EBUSY when too many
 * clients wait already. A stopped service is answered at once. */
int service_stop(struct service *svc, struct haven_msg_conn *waiter,
                 bool restart_after) {
        int r;

        if (waiter) {
                if (svc->n_waiters >= ELEMENTSOF(svc->waiters))
                        return -EBUSY;
                svc->waiters[svc->n_waiters++] = haven_msg_conn_ref(waiter);
        }
        svc->restart_after_stop = svc->restart_after_stop || restart_after;

        switch (svc->state) {
        case SERVICE_WAITING:
                svc->restart_timer = sd_event_source_disable_unref(svc->restart_timer);
                svc->state = SERVICE_STOPPED;
                _fallthrough_;
        case SERVICE_STOPPED:
                if (svc->restart_after_stop) {
                        svc->restart_after_stop = false;
                        svc->restarts = 0;
                        r = service_start(svc);
                        if (r < 0) {
                                reply_waiters(svc, strerror(-r));
                                return 0;
                        }
                }
                reply_waiters(svc, NULL);
                return 0;
        case SERVICE_STOPPING:
                return 0;
        case SERVICE_RUNNING:
                break;
        default:
                assert_not_reached();
        }

        svc->state = SERVICE_STOPPING;
        (void) kill(-svc->pid, SIGTERM);
        (void) kill(svc->pid, SIGTERM);
        r = sd_event_add_time_relative(svc->supervisor->event, &svc->kill_timer,
                                       CLOCK_MONOTONIC, STOP_TIMEOUT_USEC, 0,
                                       on_kill_timer, svc);
        if (r < 0)
                log_warning_errno(r, "Service \"%s\": no stop timeout: %m, ignoring",
                                  svc->name);
        return 0;
}

int service_reload(struct service *svc) {
        if (svc->state != SERVICE_RUNNING)
                return -ESRCH;
        if (kill(svc->pid, SIGHUP) < 0)
                return negative_errno();
        return 0;
}

static bool condition_met(const struct service *svc) {
        return !svc->condition || access(svc->condition, F_OK) == 0;
}

void supervisor_autostart(struct supervisor *s) {
        for (size_t i = 0; i < s->n_services; i++) {
                struct service *svc = &s->services[i];

                if (!svc->autostart)
                        continue;
                if (!condition_met(svc)) {
                        log_info("Service \"%s\" not started: \"%s\" does not exist",
                                 svc->name, svc->condition);
                        continue;
                }
                (void) service_start(svc);
        }
}

/* ==== Exits and restarts ==== */

static int on_restart_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        struct service *svc = userdata;
        int r;

        svc->restart_timer = sd_event_source_disable_unref(svc->restart_timer);
        svc->state = SERVICE_STOPPED;
        r = service_start(svc);
        if (r < 0)
                log_error_errno(r, "Service \"%s\": restart failed: %m", svc->name);
        return 0;
}

static void service_exited(struct service *svc, int code, int status) {
        bool requested = svc->state == SERVICE_STOPPING;
        uint64_t ran = haven_now_usec(CLOCK_MONOTONIC) - svc->started_usec;
        int r;

        svc->pid = 0;
        svc->last_exit_code = code;
        svc->last_exit_status = status;
        svc->kill_timer = sd_event_source_disable_unref(svc->kill_timer);

        if (requested) {
                log_info("Service \"%s\" stopped", svc->name);
                svc->state = SERVICE_STOPPED;
                if (svc->restart_after_stop) {
                        svc->restart_after_stop = false;
                        svc->restarts = 0;
                        r = service_start(svc);
                        if (r < 0) {
                                reply_waiters(svc, strerror(-r));
                                return;
                        }
                }
                reply_waiters(svc, NULL);
                (void) supervisor_write_record(svc->supervisor);
                return;
        }

        /* Not asked to stop: a crash (or an exit) to recover from. */
        if (ran >= STABLE_USEC)
                svc->backoff_usec = 0;
        svc->backoff_usec = svc->backoff_usec ? svc->backoff_usec * 2 : BACKOFF_MIN_USEC;
        if (svc->backoff_usec > BACKOFF_MAX_USEC)
                svc->backoff_usec = BACKOFF_MAX_USEC;
        svc->restarts++;
        svc->state = SERVICE_WAITING;
        log_warning("Service \"%s\" %s %d, restarting in %llu ms", svc->name,
                    code == CLD_EXITED ? "exited with status" : "was killed by signal",
                    status, (unsigned long long) (svc->backoff_usec / 1000));
        r = sd_event_add_time_relative(svc->supervisor->event, &svc->restart_timer,
                                       CLOCK_MONOTONIC, svc->backoff_usec, 0,
                                       on_restart_timer, svc);
        if (r < 0) {
                log_error_errno(r, "Service \"%s\": cannot arm restart: %m", svc->name);
                svc->state = SERVICE_STOPPED;
        }
        (void) supervisor_write_record(svc->supervisor);
}

/* Reaps every exited child, ours or re-parented orphans (QEMU daemonizes).
 * Returns the number reaped. */
int supervisor_reap(struct supervisor *s) {
        int n = 0;

        for (;;) {
                siginfo_t si = {};

                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
                        break;
                n++;
                for (size_t i = 0; i < s->n_services; i++)
                        if (s->services[i].pid == si.si_pid) {
                                service_exited(&s->services[i], si.si_code, si.si_status);
                                break;
                        }
        }
        return n;
}

/* ==== Records ==== */

struct json_object *service_to_json(const struct service *svc) {
        struct json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (haven_json_add(o, "name", json_object_new_string(svc->name)) < 0 ||
            haven_json_add(o, "state",
                           json_object_new_string(service_state_to_string(svc->state))) < 0 ||
            haven_json_add(o, "pid", svc->pid > 0 ? json_object_new_int(svc->pid) : NULL) < 0 ||
            haven_json_add(o, "restarts", json_object_new_int((int) svc->restarts)) < 0 ||
            haven_json_add(o, "autostart", json_object_new_boolean(svc->autostart)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* Writes <record_dir>/services.json atomically: every service with its PID
 * as seen inside the node (the lab maps them to host PIDs). */
int supervisor_write_record(struct supervisor *s) {
        _cleanup_(json_object_putp) struct json_object *arr = json_object_new_array();
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        const char *text;
        FILE *f;

        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_services; i++) {
                struct json_object *o = service_to_json(&s->services[i]);
                if (!o || json_object_array_add(arr, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        if (asprintf(&path, "%s/services.json", s->record_dir) < 0 ||
            asprintf(&tmp, "%s/.services.json.tmp", s->record_dir) < 0)
                return -ENOMEM;
        text = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
        f = fopen(tmp, "we");
        if (!f)
                return log_warning_errno(negative_errno(), "Cannot write \"%s\": %m", tmp);
        fprintf(f, "%s\n", text);
        if (fclose(f) != 0 || rename(tmp, path) < 0)
                return log_warning_errno(negative_errno(), "Cannot write \"%s\": %m", path);
        return 0;
}

void supervisor_done(struct supervisor *s) {
        for (size_t i = 0; i < s->n_services; i++) {
                struct service *svc = &s->services[i];

                svc->restart_timer = sd_event_source_disable_unref(svc->restart_timer);
                svc->kill_timer = sd_event_source_disable_unref(svc->kill_timer);
                for (size_t j = 0; j < svc->n_waiters; j++)
                        haven_msg_conn_unref(svc->waiters[j]);
                free(svc->name);
                free(svc->condition);
                strv_free(svc->argv);
        }
        s->n_services = 0;
        s->control = haven_msg_server_free(s->control);
}
