/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven/service.h: names, manager detection (environment
 * override, the lab socket), the lab backend against a fake supervisor that
 * answers like tests/lab/init/init-control.c (on a temporary socket, via
 * $HAVEN_LAB_INIT_SOCKET), and the systemd backend against a fake
 * org.freedesktop.systemd1 manager over a socket pair. The fakes run in a
 * forked child with their own sd-event loop, because the calls under test
 * block.
 *
 * What is NOT tested here: the systemd backend against a real systemd (this
 * sandbox has no systemd as PID 1). The fake checks the D-Bus calls, the
 * arguments, the job wait (JobRemoved before and after the method reply,
 * other jobs' signals, no signal at all) and the error mapping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "haven/json.h"
#include "haven/loop.h"
#include "haven/msg.h"
#include "haven/service.h"

#define SHORT_TIMEOUT_USEC (300 * USEC_PER_MSEC)
#define DELAY_USEC (50 * USEC_PER_MSEC)

/* ==== Helpers ==== */

/* Forks a child that runs serve(arg) and reports readiness by writing one
 * byte to the pipe; returns its pid once it is ready. */
static pid_t fork_fake(int (*serve)(void *arg, int ready_fd), void *arg) {
        int p[2];
        char c;
        pid_t pid;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                (void) close(p[0]);
                _exit(serve(arg, p[1]) < 0 ? 1 : 0);
        }
        (void) close(p[1]);
        assert_int_equal(read(p[0], &c, 1), 1);
        (void) close(p[0]);
        return pid;
}

static void stop_fake(pid_t pid) {
        int status;

        (void) kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void ready(int fd) {
        (void) write(fd, "x", 1);
        (void) close(fd);
}

/* ==== Names and detection ==== */

static void actions_and_managers_have_names(void **state) {
        assert_string_equal(haven_service_action_to_string(HAVEN_SERVICE_START), "start");
        assert_string_equal(haven_service_action_to_string(HAVEN_SERVICE_STOP), "stop");
        assert_string_equal(haven_service_action_to_string(HAVEN_SERVICE_RESTART), "restart");
        assert_string_equal(haven_service_action_to_string(HAVEN_SERVICE_RELOAD), "reload");
        assert_null(haven_service_action_to_string(_HAVEN_SERVICE_ACTION_MAX));
        assert_null(haven_service_action_to_string(_HAVEN_SERVICE_ACTION_INVALID));
        for (int a = 0; a < _HAVEN_SERVICE_ACTION_MAX; a++)
                assert_int_equal(haven_service_action_from_string(
                                         haven_service_action_to_string(a)),
                                 a);
        assert_int_equal(haven_service_action_from_string("status"), -EINVAL);
        assert_int_equal(haven_service_action_from_string(NULL), -EINVAL);

        assert_string_equal(haven_service_manager_to_string(HAVEN_SERVICE_MANAGER_SYSTEMD), "systemd");
        assert_string_equal(haven_service_manager_to_string(HAVEN_SERVICE_MANAGER_LAB), "lab");
        assert_int_equal(haven_service_manager_from_string("lab"), HAVEN_SERVICE_MANAGER_LAB);
        assert_int_equal(haven_service_manager_from_string("systemd"), HAVEN_SERVICE_MANAGER_SYSTEMD);
        assert_int_equal(haven_service_manager_from_string("upstart"), -EINVAL);
        assert_int_equal(haven_service_manager_from_string(""), -EINVAL);
}

static void plain_names_map_to_service_units(void **state) {
        static const char *const good[] = {
                "corosync", "haven-domaind", "libvirtd", "drbd@r0", "a",
                "x.y_z", "0abc",
                "a234567890123456789012345678901234567890123456789012345678901234",
        };
        static const char *const bad[] = {
                "", "-x", ".x", "_x", "@x", "a/b", "../etc", "a b", "a\n",
                "corosync.service", "x$", "ä",
                "a2345678901234567890123456789012345678901234567890123456789012345",
        };
        char *unit = NULL;

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_true(haven_service_name_is_valid(good[i]));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_false(haven_service_name_is_valid(bad[i]));
                assert_int_equal(haven_service_unit_name(bad[i], &unit), -EINVAL);
                assert_null(unit);
        }
        assert_false(haven_service_name_is_valid(NULL));

        assert_int_equal(haven_service_unit_name("corosync", &unit), 0);
        assert_string_equal(unit, "corosync.service");
        free(unit);
        assert_int_equal(haven_service_unit_name("drbd@r0", &unit), 0);
        assert_string_equal(unit, "drbd@r0.service");
        free(unit);
}

static void invalid_names_are_refused_before_anything_is_sent(void **state) {
        /* No socket exists at this path: -EINVAL proves nothing was tried. */
        assert_int_equal(setenv(HAVEN_SERVICE_LAB_SOCKET_ENV, "/nonexistent/sock", 1), 0);
        assert_int_equal(haven_service_control(HAVEN_SERVICE_MANAGER_LAB, "a/b",
                                               HAVEN_SERVICE_START),
                         -EINVAL);
        assert_int_equal(haven_service_control(HAVEN_SERVICE_MANAGER_SYSTEMD, "",
                                               HAVEN_SERVICE_STOP),
                         -EINVAL);
        assert_int_equal(haven_service_control(HAVEN_SERVICE_MANAGER_LAB, "corosync",
                                               _HAVEN_SERVICE_ACTION_MAX),
                         -EINVAL);
        assert_int_equal(haven_service_control(_HAVEN_SERVICE_MANAGER_MAX, "corosync",
                                               HAVEN_SERVICE_START),
                         -EINVAL);
        assert_int_equal(haven_service_is_active(HAVEN_SERVICE_MANAGER_LAB, "x.service"),
                         -EINVAL);
        assert_int_equal(unsetenv(HAVEN_SERVICE_LAB_SOCKET_ENV), 0);
}

static void lab_socket_path_can_be_overridden(void **state) {
        assert_int_equal(unsetenv(HAVEN_SERVICE_LAB_SOCKET_ENV), 0);
        assert_string_equal(haven_service_lab_socket(), "/run/haven-lab/init.sock");
        assert_int_equal(setenv(HAVEN_SERVICE_LAB_SOCKET_ENV, "", 1), 0);
        assert_string_equal(haven_service_lab_socket(), "/run/haven-lab/init.sock");
        assert_int_equal(setenv(HAVEN_SERVICE_LAB_SOCKET_ENV, "/tmp/x.sock", 1), 0);
        assert_string_equal(haven_service_lab_socket(), "/tmp/x.sock");
        assert_int_equal(unsetenv(HAVEN_SERVICE_LAB_SOCKET_ENV), 0);
}

static int bind_socket(const char *path) {
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        int fd;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_true(strlen(path) < sizeof(addr.sun_path));
        strcpy(addr.sun_path, path);
        assert_int_equal(bind(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
        return fd;
}

static void detection_prefers_the_environment_then_the_lab_socket(void **state) {
        char dir[] = "/tmp/test-service-XXXXXX", sock[64], plain[64];
        enum haven_service_manager m = _HAVEN_SERVICE_MANAGER_INVALID;
        bool systemd_booted = access(HAVEN_SERVICE_SYSTEMD_DIR, F_OK) == 0;
        int fd, r;

        assert_non_null(mkdtemp(dir));
        snprintf(sock, sizeof(sock), "%s/init.sock", dir);
        snprintf(plain, sizeof(plain), "%s/file", dir);

        /* The override wins over everything, both ways. */
        assert_int_equal(setenv(HAVEN_SERVICE_MANAGER_ENV, "lab", 1), 0);
        assert_int_equal(haven_service_manager_detect(&m), 0);
        assert_int_equal(m, HAVEN_SERVICE_MANAGER_LAB);
        assert_int_equal(setenv(HAVEN_SERVICE_MANAGER_ENV, "systemd", 1), 0);
        assert_int_equal(haven_service_manager_detect(&m), 0);
        assert_int_equal(m, HAVEN_SERVICE_MANAGER_SYSTEMD);
        assert_int_equal(setenv(HAVEN_SERVICE_MANAGER_ENV, "sysvinit", 1), 0);
        assert_int_equal(haven_service_manager_detect(&m), -EINVAL);

        /* Empty means unset: detection by paths. A lab socket means lab. */
        assert_int_equal(setenv(HAVEN_SERVICE_MANAGER_ENV, "", 1), 0);
        fd = bind_socket(sock);
        assert_int_equal(setenv(HAVEN_SERVICE_LAB_SOCKET_ENV, sock, 1), 0);
        assert_int_equal(haven_service_manager_detect(&m), 0);
        assert_int_equal(m, HAVEN_SERVICE_MANAGER_LAB);

        /* A regular file there is not a supervisor; nothing there neither.
         * Then it depends on this machine: systemd if it is PID 1. */
        (void) close(fd);
        assert_int_equal(unlink(sock), 0);
        fd = open(plain, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        (void) close(fd);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(setenv(HAVEN_SERVICE_LAB_SOCKET_ENV,
                                        i == 0 ? plain : sock, 1),
                                 0);
                r = haven_service_manager_detect(&m);
                if (systemd_booted) {
                        assert_int_equal(r, 0);
                        assert_int_equal(m, HAVEN_SERVICE_MANAGER_SYSTEMD);
                } else
                        assert_int_equal(r, -ENOENT);
        }

        assert_int_equal(unlink(plain), 0);
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(unsetenv(HAVEN_SERVICE_MANAGER_ENV), 0);
        assert_int_equal(unsetenv(HAVEN_SERVICE_LAB_SOCKET_ENV), 0);
}

/* ==== Lab backend: a fake haven-lab-init ==== */

/* Services of the fake supervisor and how they behave:
 *   corosync  starts stopped; start/stop/restart/reload like the real one
 *   libvirtd  starts running; stop is answered after DELAY_USEC (the real
 *             supervisor answers a stop when the process has exited)
 *   broken    start fails ("failed")
 *   mute      never answered
 *   liar      answered with another service's object
 *   weird     answered with an unknown state */
struct fake_service {
        const char *name;
        const char *state;
};

struct fake_lab {
        pid_t pid; /* the fake's, in the parent */
        sd_event *event;
        char dir[64];
        char path[128];
        struct fake_service services[6];
};

static struct json_object *service_object(const struct fake_service *svc) {
        struct json_object *o = json_object_new_object();

        assert_non_null(o);
        assert_int_equal(haven_json_add(o, "name", json_object_new_string(svc->name)), 0);
        assert_int_equal(haven_json_add(o, "state", json_object_new_string(svc->state)), 0);
        assert_int_equal(haven_json_add(o, "pid",
                                        streq(svc->state, "running")
                                                ? json_object_new_int(4242)
                                                : NULL),
                         0);
        assert_int_equal(haven_json_add(o, "restarts", json_object_new_int(0)), 0);
        assert_int_equal(haven_json_add(o, "autostart", json_object_new_boolean(true)), 0);
        return o;
}

struct deferred_reply {
        struct haven_msg_conn *conn;
        struct fake_service *svc;
};

static int on_deferred_reply(sd_event_source *s, uint64_t usec, void *userdata) {
        struct deferred_reply *d = userdata;
        _cleanup_(json_object_putp) struct json_object *o = NULL;

        d->svc->state = "stopped";
        o = service_object(d->svc);
        (void) haven_msg_conn_send(d->conn, o);
        haven_msg_conn_unref(d->conn);
        free(d);
        return 0;
}

static int fake_lab_handler(struct haven_msg_conn *conn, struct json_object *msg,
                            void *userdata) {
        static const char *const actions[] = {
                "start", "stop", "restart", "reload", "status", NULL,
        };
        static const struct haven_json_field policy[] = {
                { .name = "action", .kind = HAVEN_JSON_ENUM, .required = true,
                  .choices = actions },
                { .name = "service", .kind = HAVEN_JSON_STRING, .min = 1, .max = 32 },
        };
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct fake_lab *f = userdata;
        struct fake_service *svc = NULL;
        const char *action, *name = NULL;

        if (haven_json_check(msg, policy, ELEMENTSOF(policy), NULL) < 0)
                return haven_msg_conn_send_error(conn, "bad-request", "bad request");
        (void) haven_json_get_string(msg, "action", &action);
        if (haven_json_get_string(msg, "service", &name) < 0)
                return haven_msg_conn_send_error(conn, "bad-request",
                                                 "\"service\": required for this action");
        for (size_t i = 0; i < ELEMENTSOF(f->services); i++)
                if (streq(f->services[i].name, name))
                        svc = &f->services[i];
        if (!svc)
                return haven_msg_conn_send_error(conn, "no-such-service", "no such service");

        if (streq(name, "mute"))
                return 0;
        if (streq(name, "liar")) {
                reply = service_object(&f->services[0]);
                return haven_msg_conn_send(conn, reply);
        }
        if (streq(name, "weird")) {
                svc->state = "exploded";
                reply = service_object(svc);
                return haven_msg_conn_send(conn, reply);
        }

        if (streq(action, "start")) {
                if (streq(name, "broken"))
                        return haven_msg_conn_send_error(conn, "failed",
                                                         "No such file or directory");
                svc->state = "running";
        } else if (streq(action, "stop") && streq(name, "libvirtd")) {
                struct deferred_reply *d = calloc(1, sizeof(*d));

                assert_non_null(d);
                d->conn = haven_msg_conn_ref(conn);
                d->svc = svc;
                svc->state = "stopping";
                return haven_loop_add_timer(f->event, NULL, DELAY_USEC, 1,
                                            on_deferred_reply, d);
        } else if (streq(action, "stop"))
                svc->state = "stopped";
        else if (streq(action, "restart"))
                svc->state = "running";
        else if (streq(action, "reload") && !streq(svc->state, "running"))
                return haven_msg_conn_send_error(conn, "not-running",
                                                 "the service is not running");
        reply = service_object(svc);
        return haven_msg_conn_send(conn, reply);
}

static int serve_lab(void *arg, int ready_fd) {
        struct fake_lab *f = arg;
        _cleanup_(haven_msg_server_freep) struct haven_msg_server *server = NULL;
        struct haven_msg_server_config config = {
                .path = f->path,
                .mode = 0600,
                .max_size = 64 * 1024,
                .max_connections = 32,
                .handler = fake_lab_handler,
                .userdata = f,
        };

        if (sd_event_new(&f->event) < 0 ||
            haven_msg_server_new(f->event, &config, &server) < 0)
                return -1;
        ready(ready_fd);
        return sd_event_loop(f->event);
}

static int lab_setup(void **state) {
        struct fake_lab *f = calloc(1, sizeof(*f));
        static const char *const names[] = {
                "corosync", "libvirtd", "broken", "mute", "liar", "weird",
        };

        assert_non_null(f);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                f->services[i].name = names[i];
                f->services[i].state = streq(names[i], "libvirtd") ? "running" : "stopped";
        }
        strcpy(f->dir, "/tmp/test-service-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/init.sock", f->dir);
        f->pid = fork_fake(serve_lab, f);
        assert_int_equal(setenv(HAVEN_SERVICE_LAB_SOCKET_ENV, f->path, 1), 0);
        *state = f;
        return 0;
}

static int lab_teardown(void **state) {
        struct fake_lab *f = *state;

        stop_fake(f->pid);
        (void) unlink(f->path);
        assert_int_equal(rmdir(f->dir), 0);
        assert_int_equal(unsetenv(HAVEN_SERVICE_LAB_SOCKET_ENV), 0);
        free(f);
        return 0;
}

static void lab_services_start_stop_and_report_their_state(void **state) {
        const enum haven_service_manager lab = HAVEN_SERVICE_MANAGER_LAB;

        assert_int_equal(haven_service_is_active(lab, "corosync"), 0);
        assert_int_equal(haven_service_control(lab, "corosync", HAVEN_SERVICE_START), 0);
        assert_true(haven_service_is_active(lab, "corosync") > 0);
        /* Starting a running service is not an error. */
        assert_int_equal(haven_service_control(lab, "corosync", HAVEN_SERVICE_START), 0);
        assert_int_equal(haven_service_control(lab, "corosync", HAVEN_SERVICE_RELOAD), 0);
        assert_int_equal(haven_service_control(lab, "corosync", HAVEN_SERVICE_STOP), 0);
        assert_int_equal(haven_service_is_active(lab, "corosync"), 0);
        assert_int_equal(haven_service_control(lab, "corosync", HAVEN_SERVICE_RESTART), 0);
        assert_true(haven_service_is_active(lab, "corosync") > 0);
}

static void lab_stop_returns_when_the_supervisor_answers(void **state) {
        const enum haven_service_manager lab = HAVEN_SERVICE_MANAGER_LAB;
        uint64_t started;

        assert_true(haven_service_is_active(lab, "libvirtd") > 0);
        started = haven_now_usec(CLOCK_MONOTONIC);
        assert_int_equal(haven_service_control(lab, "libvirtd", HAVEN_SERVICE_STOP), 0);
        assert_true(haven_now_usec(CLOCK_MONOTONIC) - started >= DELAY_USEC);
        assert_int_equal(haven_service_is_active(lab, "libvirtd"), 0);
}

static void lab_errors_map_to_errnos(void **state) {
        const enum haven_service_manager lab = HAVEN_SERVICE_MANAGER_LAB;
        /* Valid for us (≤ 64), too long for the supervisor (≤ 32). */
        const char *long_name = "a234567890123456789012345678901234567890";

        assert_int_equal(haven_service_control(lab, "nginx", HAVEN_SERVICE_START), -ENOENT);
        assert_int_equal(haven_service_is_active(lab, "nginx"), -ENOENT);
        assert_int_equal(haven_service_control(lab, "broken", HAVEN_SERVICE_START), -EIO);
        assert_int_equal(haven_service_control(lab, "corosync", HAVEN_SERVICE_RELOAD), -ESRCH);
        assert_int_equal(haven_service_control(lab, long_name, HAVEN_SERVICE_START), -EINVAL);
        assert_int_equal(haven_service_control(lab, "liar", HAVEN_SERVICE_START), -EPROTO);
        assert_int_equal(haven_service_is_active(lab, "weird"), -EPROTO);
        assert_int_equal(haven_service_control_timeout(lab, "mute", HAVEN_SERVICE_STOP,
                                                       SHORT_TIMEOUT_USEC),
                         -ETIMEDOUT);
}

static void lab_without_supervisor_is_unreachable(void **state) {
        struct fake_lab *f = *state;
        char path[160];
        int fd;

        snprintf(path, sizeof(path), "%s/missing.sock", f->dir);
        assert_int_equal(setenv(HAVEN_SERVICE_LAB_SOCKET_ENV, path, 1), 0);
        assert_int_equal(haven_service_control(HAVEN_SERVICE_MANAGER_LAB, "corosync",
                                               HAVEN_SERVICE_START),
                         -ECONNREFUSED);

        /* A socket file nobody listens on (a supervisor that died). */
        fd = bind_socket(path);
        assert_int_equal(haven_service_is_active(HAVEN_SERVICE_MANAGER_LAB, "corosync"),
                         -ECONNREFUSED);
        (void) close(fd);
        assert_int_equal(unlink(path), 0);
}

/* ==== systemd backend: a fake org.freedesktop.systemd1 ==== */

/* Units of the fake manager and how their jobs end:
 *   corosync.service   like systemd: JobRemoved right after the reply;
 *                      reload of an inactive unit ends "invalid"
 *   fast.service       JobRemoved (and another job's) sent BEFORE the reply
 *   slow.service       another job's JobRemoved first, its own DELAY_USEC
 *                      after the reply
 *   broken.service     start ends "failed"
 *   canceled.service   ends "canceled"
 *   noreload.service   ReloadUnit refused: JobTypeNotApplicable
 *   hang.service       no JobRemoved ever
 *   anything else      NoSuchUnit */
struct fake_unit {
        const char *name;
        const char *active;
};

struct fake_systemd {
        int fd;
        sd_event *event;
        sd_bus *bus;
        uint32_t next_job;
        struct fake_unit units[7];
};

struct fake_job {
        struct fake_systemd *f;
        uint32_t id;
        char unit[64];
        const char *result;
};

static int emit_job_removed(struct fake_systemd *f, uint32_t id, const char *unit,
                            const char *result) {
        char path[64];

        snprintf(path, sizeof(path), "/org/freedesktop/systemd1/job/%u", id);
        return sd_bus_emit_signal(f->bus, "/org/freedesktop/systemd1",
                                  "org.freedesktop.systemd1.Manager", "JobRemoved",
                                  "uoss", id, path, unit, result);
}

static int on_delayed_job(sd_event_source *s, uint64_t usec, void *userdata) {
        struct fake_job *j = userdata;

        (void) emit_job_removed(j->f, j->id, j->unit, j->result);
        free(j);
        return 0;
}

static int fake_unit_method(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct fake_systemd *f = userdata;
        const char *member = sd_bus_message_get_member(m), *unit, *mode;
        const char *result = "done";
        struct fake_unit *u = NULL;
        char path[64];
        uint32_t id;
        int r;

        r = sd_bus_message_read(m, "ss", &unit, &mode);
        if (r < 0)
                return r;
        if (!streq(mode, "replace"))
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_INVALID_ARGS,
                                         "unexpected mode %s", mode);
        for (size_t i = 0; i < ELEMENTSOF(f->units); i++)
                if (streq(f->units[i].name, unit))
                        u = &f->units[i];
        if (!u)
                return sd_bus_error_setf(ret_error, "org.freedesktop.systemd1.NoSuchUnit",
                                         "Unit %s not found.", unit);
        if (streq(member, "ReloadUnit") && streq(unit, "noreload.service"))
                return sd_bus_error_setf(ret_error,
                                         "org.freedesktop.systemd1.JobTypeNotApplicable",
                                         "Job type reload is not applicable for unit %s.",
                                         unit);

        if (streq(member, "StartUnit") || streq(member, "RestartUnit"))
                u->active = "active";
        else if (streq(member, "StopUnit"))
                u->active = "inactive";
        else if (streq(member, "ReloadUnit") && !streq(u->active, "active"))
                result = "invalid";
        if (streq(unit, "broken.service")) {
                u->active = "failed";
                result = "failed";
        } else if (streq(unit, "canceled.service"))
                result = "canceled";

        id = f->next_job++;
        snprintf(path, sizeof(path), "/org/freedesktop/systemd1/job/%u", id);

        if (streq(unit, "fast.service")) {
                (void) emit_job_removed(f, id + 1000, "other.service", "failed");
                (void) emit_job_removed(f, id, unit, result);
        }
        r = sd_bus_reply_method_return(m, "o", path);
        if (r < 0)
                return r;
        if (streq(unit, "slow.service")) {
                struct fake_job *j = calloc(1, sizeof(*j));

                assert_non_null(j);
                *j = (struct fake_job){ .f = f, .id = id, .result = result };
                snprintf(j->unit, sizeof(j->unit), "%s", unit);
                (void) emit_job_removed(f, id + 1000, "other.service", "failed");
                r = haven_loop_add_timer(f->event, NULL, DELAY_USEC, 1, on_delayed_job, j);
                if (r < 0)
                        return r;
        } else if (!streq(unit, "fast.service") && !streq(unit, "hang.service"))
                (void) emit_job_removed(f, id, unit, result);
        return 1;
}

/* Properties.Get(org.freedesktop.systemd1.Unit, ActiveState) on any unit
 * path; units it does not know read "inactive", as with systemd. */
static int fake_unit_object(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct fake_systemd *f = userdata;
        _cleanup_free_ char *unit = NULL;
        const char *iface, *property, *active = "inactive";
        int r;

        if (!sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "Get"))
                return 0;
        r = sd_bus_path_decode(sd_bus_message_get_path(m), "/org/freedesktop/systemd1/unit",
                               &unit);
        if (r <= 0)
                return r;
        r = sd_bus_message_read(m, "ss", &iface, &property);
        if (r < 0)
                return r;
        if (!streq(iface, "org.freedesktop.systemd1.Unit") || !streq(property, "ActiveState"))
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_UNKNOWN_PROPERTY,
                                         "no property %s.%s", iface, property);
        for (size_t i = 0; i < ELEMENTSOF(f->units); i++)
                if (streq(f->units[i].name, unit))
                        active = f->units[i].active;
        r = sd_bus_reply_method_return(m, "v", "s", active);
        return r < 0 ? r : 1;
}

static const sd_bus_vtable fake_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("StartUnit", "ss", "o", fake_unit_method, 0),
        SD_BUS_METHOD("StopUnit", "ss", "o", fake_unit_method, 0),
        SD_BUS_METHOD("RestartUnit", "ss", "o", fake_unit_method, 0),
        SD_BUS_METHOD("ReloadUnit", "ss", "o", fake_unit_method, 0),
        SD_BUS_SIGNAL("JobRemoved", "uoss", 0),
        SD_BUS_VTABLE_END,
};

static int serve_systemd(void *arg, int ready_fd) {
        struct fake_systemd *f = arg;
        sd_id128_t id;

        if (sd_event_new(&f->event) < 0 || sd_bus_new(&f->bus) < 0 ||
            sd_bus_set_fd(f->bus, f->fd, f->fd) < 0 ||
            sd_id128_randomize(&id) < 0 || sd_bus_set_server(f->bus, 1, id) < 0 ||
            sd_bus_add_object_vtable(f->bus, NULL, "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager",
                                     fake_manager_vtable, f) < 0 ||
            sd_bus_add_fallback(f->bus, NULL, "/org/freedesktop/systemd1/unit",
                                fake_unit_object, f) < 0 ||
            sd_bus_attach_event(f->bus, f->event, 0) < 0 ||
            sd_bus_set_exit_on_disconnect(f->bus, 1) < 0 || sd_bus_start(f->bus) < 0)
                return -1;
        ready(ready_fd);
        return sd_event_loop(f->event);
}

struct systemd_fixture {
        pid_t pid;
        sd_bus *bus;
};

static int systemd_setup(void **state) {
        static const char *const names[] = {
                "corosync.service", "fast.service", "slow.service", "broken.service",
                "canceled.service", "noreload.service", "hang.service",
        };
        struct systemd_fixture *x = calloc(1, sizeof(*x));
        struct fake_systemd f = { .next_job = 1 };
        int pair[2];

        assert_non_null(x);
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                f.units[i] = (struct fake_unit){ .name = names[i], .active = "inactive" };
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        f.fd = pair[1];
        x->pid = fork_fake(serve_systemd, &f);
        (void) close(pair[1]);

        assert_int_equal(sd_bus_new(&x->bus), 0);
        assert_int_equal(sd_bus_set_fd(x->bus, pair[0], pair[0]), 0);
        assert_int_equal(sd_bus_start(x->bus), 0);
        *state = x;
        return 0;
}

static int systemd_teardown(void **state) {
        struct systemd_fixture *x = *state;

        sd_bus_flush_close_unref(x->bus);
        stop_fake(x->pid);
        free(x);
        return 0;
}

static void systemd_jobs_are_started_and_waited_for(void **state) {
        struct systemd_fixture *x = *state;

        assert_int_equal(haven_service_systemd_is_active(x->bus, "corosync", 0), 0);
        assert_int_equal(haven_service_systemd_control(x->bus, "corosync",
                                                       HAVEN_SERVICE_START, 0),
                         0);
        assert_true(haven_service_systemd_is_active(x->bus, "corosync", 0) > 0);
        assert_int_equal(haven_service_systemd_control(x->bus, "corosync",
                                                       HAVEN_SERVICE_RELOAD, 0),
                         0);
        assert_int_equal(haven_service_systemd_control(x->bus, "corosync",
                                                       HAVEN_SERVICE_STOP, 0),
                         0);
        assert_int_equal(haven_service_systemd_is_active(x->bus, "corosync", 0), 0);
        assert_int_equal(haven_service_systemd_control(x->bus, "corosync",
                                                       HAVEN_SERVICE_RESTART, 0),
                         0);
        assert_true(haven_service_systemd_is_active(x->bus, "corosync", 0) > 0);
        /* A unit systemd does not know is not running, not an error. */
        assert_int_equal(haven_service_systemd_is_active(x->bus, "nginx", 0), 0);
}

static void systemd_job_finished_before_the_reply_is_not_missed(void **state) {
        struct systemd_fixture *x = *state;

        assert_int_equal(haven_service_systemd_control(x->bus, "fast", HAVEN_SERVICE_START,
                                                       SHORT_TIMEOUT_USEC * 10),
                         0);
        assert_true(haven_service_systemd_is_active(x->bus, "fast", 0) > 0);
}

static void systemd_wait_ignores_other_jobs(void **state) {
        struct systemd_fixture *x = *state;
        uint64_t started = haven_now_usec(CLOCK_MONOTONIC);

        /* Another job ends "failed" first: that must not end our wait. */
        assert_int_equal(haven_service_systemd_control(x->bus, "slow", HAVEN_SERVICE_START, 0),
                         0);
        assert_true(haven_now_usec(CLOCK_MONOTONIC) - started >= DELAY_USEC);
}

static void systemd_errors_map_to_errnos(void **state) {
        struct systemd_fixture *x = *state;
        sd_bus *bus = x->bus;

        assert_int_equal(haven_service_systemd_control(bus, "nginx", HAVEN_SERVICE_START, 0),
                         -ENOENT);
        assert_int_equal(haven_service_systemd_control(bus, "broken", HAVEN_SERVICE_START, 0),
                         -EIO);
        assert_int_equal(haven_service_systemd_control(bus, "canceled", HAVEN_SERVICE_START, 0),
                         -ECANCELED);
        assert_int_equal(haven_service_systemd_control(bus, "corosync", HAVEN_SERVICE_RELOAD, 0),
                         -ESRCH);
        assert_int_equal(haven_service_systemd_control(bus, "noreload", HAVEN_SERVICE_RELOAD, 0),
                         -EOPNOTSUPP);
        assert_int_equal(haven_service_systemd_control(bus, "hang", HAVEN_SERVICE_STOP,
                                                       SHORT_TIMEOUT_USEC),
                         -ETIMEDOUT);
        assert_int_equal(haven_service_systemd_control(bus, "a/b", HAVEN_SERVICE_STOP, 0),
                         -EINVAL);
        assert_int_equal(haven_service_systemd_control(bus, "corosync",
                                                       _HAVEN_SERVICE_ACTION_INVALID, 0),
                         -EINVAL);
        /* The connection is still usable after all of that. */
        assert_int_equal(haven_service_systemd_control(bus, "corosync", HAVEN_SERVICE_START, 0),
                         0);
}

static void systemd_without_a_bus_is_unreachable(void **state) {
        /* Only where no systemd runs: elsewhere this would reach the real
         * PID 1 through its private socket, which a unit test must not. */
        if (access(HAVEN_SERVICE_SYSTEMD_DIR, F_OK) == 0 ||
            access("/run/systemd/private", F_OK) == 0)
                skip();
        assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS",
                                "unix:path=/nonexistent/haven-test-bus", 1),
                         0);
        assert_int_equal(haven_service_is_active(HAVEN_SERVICE_MANAGER_SYSTEMD, "corosync"),
                         -ECONNREFUSED);
        assert_int_equal(haven_service_control(HAVEN_SERVICE_MANAGER_SYSTEMD, "corosync",
                                               HAVEN_SERVICE_START),
                         -ECONNREFUSED);
        assert_int_equal(unsetenv("DBUS_SYSTEM_BUS_ADDRESS"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(actions_and_managers_have_names),
                cmocka_unit_test(plain_names_map_to_service_units),
                cmocka_unit_test(invalid_names_are_refused_before_anything_is_sent),
                cmocka_unit_test(lab_socket_path_can_be_overridden),
                cmocka_unit_test(detection_prefers_the_environment_then_the_lab_socket),
                cmocka_unit_test_setup_teardown(lab_services_start_stop_and_report_their_state,
                                                lab_setup, lab_teardown),
                cmocka_unit_test_setup_teardown(lab_stop_returns_when_the_supervisor_answers,
                                                lab_setup, lab_teardown),
                cmocka_unit_test_setup_teardown(lab_errors_map_to_errnos, lab_setup,
                                                lab_teardown),
                cmocka_unit_test_setup_teardown(lab_without_supervisor_is_unreachable,
                                                lab_setup, lab_teardown),
                cmocka_unit_test_setup_teardown(systemd_jobs_are_started_and_waited_for,
                                                systemd_setup, systemd_teardown),
                cmocka_unit_test_setup_teardown(systemd_job_finished_before_the_reply_is_not_missed,
                                                systemd_setup, systemd_teardown),
                cmocka_unit_test_setup_teardown(systemd_wait_ignores_other_jobs,
                                                systemd_setup, systemd_teardown),
                cmocka_unit_test_setup_teardown(systemd_errors_map_to_errnos,
                                                systemd_setup, systemd_teardown),
                cmocka_unit_test(systemd_without_a_bus_is_unreachable),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
