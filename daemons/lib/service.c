/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Service control (see haven/service.h): detection of the service manager,
 * the lab backend (framed JSON to haven-lab-init) and the systemd backend
 * (sd-bus calls to org.freedesktop.systemd1, waiting for JobRemoved). Must
 * not: fork systemctl, assume one manager, or log above debug.
 *
 * The systemd backend cannot be exercised against a real systemd in the
 * development sandbox (no systemd as PID 1 there): the unit tests drive it
 * against a fake manager over a socket pair, which checks the D-Bus calls
 * and the job wait, not systemd itself. The appliance is where it meets
 * the real one.
 */
#include <assert.h>
#include <sys/stat.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"
#include "haven/msg.h"
#include "haven/service.h"

#define LAB_MSG_SIZE (64u * 1024u)
#define SYSTEMD_PRIVATE_ADDRESS "unix:path=/run/systemd/private"
#define SYSTEMD_DESTINATION "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define SYSTEMD_UNIT_PREFIX "/org/freedesktop/systemd1/unit"

/* ==== Names ==== */

static const char *strna(const char *s) {
        return s ? s : "n/a";
}

static const char *const action_names[_HAVEN_SERVICE_ACTION_MAX] = {
        [HAVEN_SERVICE_START] = "start",
        [HAVEN_SERVICE_STOP] = "stop",
        [HAVEN_SERVICE_RESTART] = "restart",
        [HAVEN_SERVICE_RELOAD] = "reload",
};

static const char *const manager_names[_HAVEN_SERVICE_MANAGER_MAX] = {
        [HAVEN_SERVICE_MANAGER_SYSTEMD] = "systemd",
        [HAVEN_SERVICE_MANAGER_LAB] = "lab",
};

const char *haven_service_action_to_string(enum haven_service_action a) {
        if (a < 0 || a >= _HAVEN_SERVICE_ACTION_MAX)
                return NULL;
        return action_names[a];
}

enum haven_service_action haven_service_action_from_string(const char *s) {
        if (!s)
                return _HAVEN_SERVICE_ACTION_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(action_names); i++)
                if (streq(s, action_names[i]))
                        return (enum haven_service_action) i;
        return _HAVEN_SERVICE_ACTION_INVALID;
}

const char *haven_service_manager_to_string(enum haven_service_manager m) {
        if (m < 0 || m >= _HAVEN_SERVICE_MANAGER_MAX)
                return NULL;
        return manager_names[m];
}

enum haven_service_manager haven_service_manager_from_string(const char *s) {
        if (!s)
                return _HAVEN_SERVICE_MANAGER_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(manager_names); i++)
                if (streq(s, manager_names[i]))
                        return (enum haven_service_manager) i;
        return _HAVEN_SERVICE_MANAGER_INVALID;
}

static bool char_is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9');
}

bool haven_service_name_is_valid(const char *name) {
        static const char suffix[] = ".service";
        size_t n;

        if (!name || !char_is_alnum(name[0]))
                return false;
        n = strlen(name);
        if (n > HAVEN_SERVICE_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!char_is_alnum(name[i]) && !strchr("_.@-", name[i]))
                        return false;
        if (n >= sizeof(suffix) - 1 &&
            streq(name + n - (sizeof(suffix) - 1), suffix))
                return false;
        return true;
}

int haven_service_unit_name(const char *name, char **ret) {
        char *unit;

        assert(ret);

        if (!haven_service_name_is_valid(name))
                return -EINVAL;
        if (asprintf(&unit, "%s.service", name) < 0)
                return -ENOMEM;
        *ret = unit;
        return 0;
}

const char *haven_service_lab_socket(void) {
        const char *e = getenv(HAVEN_SERVICE_LAB_SOCKET_ENV);

        return e && *e ? e : HAVEN_SERVICE_LAB_SOCKET;
}

/* ==== Detection ==== */

int haven_service_manager_detect(enum haven_service_manager *ret) {
        const char *e = getenv(HAVEN_SERVICE_MANAGER_ENV);
        struct stat st;

        assert(ret);

        if (e && *e) {
                enum haven_service_manager m =
                        haven_service_manager_from_string(e);
                if (m < 0)
                        return m;
                *ret = m;
                return 0;
        }
        if (stat(haven_service_lab_socket(), &st) == 0 && S_ISSOCK(st.st_mode)) {
                *ret = HAVEN_SERVICE_MANAGER_LAB;
                return 0;
        }
        if (stat(HAVEN_SERVICE_SYSTEMD_DIR, &st) == 0 && S_ISDIR(st.st_mode)) {
                *ret = HAVEN_SERVICE_MANAGER_SYSTEMD;
                return 0;
        }
        return -ENOENT;
}

/* ==== Lab backend ==== */

/* The supervisor's error codes (tests/lab/init/init-control.c). */
static int lab_error_to_errno(const char *code) {
        static const struct {
                const char *code;
                int error;
        } map[] = {
                { "no-such-service", -ENOENT },
                { "bad-request", -EINVAL },
                { "bad-message", -EINVAL },
                { "failed", -EIO },
                { "not-running", -ESRCH },
        };

        if (code)
                for (size_t i = 0; i < ELEMENTSOF(map); i++)
                        if (streq(code, map[i].code))
                                return map[i].error;
        return -EPROTO;
}

/* Sends one request and returns the service object of the answer in
 * *ret_state (borrowed from *ret_reply, which the caller owns). */
static int lab_call(const char *action, const char *name,
                    uint64_t timeout_usec, struct json_object **ret_reply,
                    const char **ret_state) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_(json_object_putp) struct json_object *req = NULL,
                                                        *reply = NULL;
        struct json_object *error;
        const char *state, *reply_name;
        int r;

        req = json_object_new_object();
        if (!req ||
            haven_json_add(req, "action", json_object_new_string(action)) < 0 ||
            haven_json_add(req, "service", json_object_new_string(name)) < 0)
                return -ENOMEM;

        r = haven_msg_client_connect(haven_service_lab_socket(), LAB_MSG_SIZE,
                                     &c);
        if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTDIR)
                return -ECONNREFUSED;
        if (r < 0)
                return r;

        r = haven_msg_client_call(c, req, timeout_usec, &reply);
        if (r == -EBADMSG || r == -E2BIG)
                return -EPROTO;
        if (r < 0)
                return r;

        if (json_object_object_get_ex(reply, "error", &error)) {
                const char *code = NULL, *message = NULL;

                (void) haven_json_get_string(error, "code", &code);
                (void) haven_json_get_string(error, "message", &message);
                log_debug("Lab supervisor: %s \"%s\": %s (%s)", action, name,
                          strna(message), strna(code));
                return lab_error_to_errno(code);
        }

        if (haven_json_get_string(reply, "state", &state) < 0 ||
            haven_json_get_string(reply, "name", &reply_name) < 0 ||
            !streq(reply_name, name))
                return -EPROTO;
        if (!streq(state, "running") && !streq(state, "stopped") &&
            !streq(state, "stopping") && !streq(state, "waiting"))
                return -EPROTO;

        *ret_state = state;
        *ret_reply = TAKE_PTR(reply);
        return 0;
}

static int lab_control(const char *name, enum haven_service_action action,
                       uint64_t timeout_usec) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        const char *state;

        return lab_call(haven_service_action_to_string(action), name,
                        timeout_usec, &reply, &state);
}

static int lab_is_active(const char *name, uint64_t timeout_usec) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        const char *state;
        int r;

        r = lab_call("status", name, timeout_usec, &reply, &state);
        if (r < 0)
                return r;
        return streq(state, "running");
}

/* ==== systemd backend ==== */

static const char *const unit_methods[_HAVEN_SERVICE_ACTION_MAX] = {
        [HAVEN_SERVICE_START] = "StartUnit",
        [HAVEN_SERVICE_STOP] = "StopUnit",
        [HAVEN_SERVICE_RESTART] = "RestartUnit",
        [HAVEN_SERVICE_RELOAD] = "ReloadUnit",
};

/* Time left until deadline, at least 1 µs (sd_bus_call reads 0 as "its
 * default"), or 0 when it passed. */
static uint64_t left_until(uint64_t deadline) {
        uint64_t now = haven_now_usec(CLOCK_MONOTONIC);

        if (now >= deadline)
                return 0;
        return deadline - now;
}

/* Converts a D-Bus error from systemd into our errnos (once, here). r is
 * what sd-bus returned for it. */
static int bus_error_to_errno(const sd_bus_error *error, int r) {
        static const struct {
                const char *name;
                int error;
        } map[] = {
                { "org.freedesktop.systemd1.NoSuchUnit", -ENOENT },
                { "org.freedesktop.systemd1.LoadFailed", -EIO },
                { "org.freedesktop.systemd1.UnitMasked", -EIO },
                { "org.freedesktop.systemd1.OnlyByDependency", -EIO },
                { "org.freedesktop.systemd1.TransactionIsDestructive", -EIO },
                { "org.freedesktop.systemd1.UnitInactive", -ESRCH },
                { "org.freedesktop.systemd1.JobTypeNotApplicable",
                  -EOPNOTSUPP },
                { "org.freedesktop.DBus.Error.NoReply", -ETIMEDOUT },
                { "org.freedesktop.DBus.Error.Timeout", -ETIMEDOUT },
        };

        if (sd_bus_error_is_set(error)) {
                log_debug("systemd: %s: %s", error->name,
                          strna(error->message));
                for (size_t i = 0; i < ELEMENTSOF(map); i++)
                        if (sd_bus_error_has_name(error, map[i].name))
                                return map[i].error;
                r = -sd_bus_error_get_errno(error);
        }
        return r < 0 ? r : -EIO;
}

/* JobRemoved's result → errno. "invalid" is what a reload of an inactive
 * unit ends with (the job cannot apply to the unit's state). */
static int job_result_to_errno(const char *result) {
        static const struct {
                const char *result;
                int error;
        } map[] = {
                { "done", 0 },       { "skipped", 0 },
                { "canceled", -ECANCELED }, { "timeout", -ETIMEDOUT },
                { "failed", -EIO },  { "dependency", -EIO },
                { "invalid", -ESRCH }, { "unsupported", -EOPNOTSUPP },
        };

        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (streq(result, map[i].result))
                        return map[i].error;
        return -EIO;
}

struct job_wait {
        char *path;   /* the job we wait for; NULL until the call returned */
        char *sender; /* systemd's unique name; NULL on a direct connection */
        char *result; /* set when JobRemoved for path arrived */
};

static void job_wait_done(struct job_wait *w) {
        free(w->path);
        free(w->sender);
        free(w->result);
}

/* JobRemoved(u id, o job, s unit, s result). sd_bus_call() queues signals
 * that arrive before its reply instead of dispatching them, so by the time
 * this runs w->path is known, even for a job that finished at once. */
static int on_job_removed(sd_bus_message *m, void *userdata,
                          sd_bus_error *ret_error) {
        struct job_wait *w = userdata;
        const char *path, *unit, *result, *sender;
        uint32_t id;
        int r;

        if (!w->path || w->result)
                return 0;
        sender = sd_bus_message_get_sender(m);
        if (w->sender && (!sender || !streq(sender, w->sender)))
                return 0;
        r = sd_bus_message_read(m, "uoss", &id, &path, &unit, &result);
        if (r < 0) {
                log_debug_errno(r, "systemd: bad JobRemoved signal: %m, "
                                   "ignoring");
                return 0;
        }
        if (!streq(path, w->path))
                return 0;
        w->result = strdup(result);
        if (!w->result)
                return -ENOMEM;
        return 0;
}

int haven_service_systemd_control(sd_bus *bus, const char *name,
                                  enum haven_service_action action,
                                  uint64_t timeout_usec) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL,
                                                        *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(job_wait_done) struct job_wait w = {};
        _cleanup_free_ char *unit = NULL;
        const char *job, *sender;
        uint64_t deadline;
        int r;

        assert(bus);

        if (action < 0 || action >= _HAVEN_SERVICE_ACTION_MAX)
                return -EINVAL;
        r = haven_service_unit_name(name, &unit);
        if (r < 0)
                return r;
        if (timeout_usec == 0)
                timeout_usec = HAVEN_SERVICE_TIMEOUT_USEC;
        deadline = haven_deadline_usec(timeout_usec);

        /* The match exists before the job does: its JobRemoved cannot be
         * missed. Filtered by path (and sender) in the callback. */
        r = sd_bus_match_signal(bus, &slot, NULL, SYSTEMD_PATH,
                                SYSTEMD_MANAGER, "JobRemoved", on_job_removed,
                                &w);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_DESTINATION,
                                           SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           unit_methods[action]);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", unit, "replace");
        if (r < 0)
                return r;
        if (left_until(deadline) == 0)
                return -ETIMEDOUT;
        r = sd_bus_call(bus, m, left_until(deadline), &error, &reply);
        if (r < 0)
                return bus_error_to_errno(&error, r);
        r = sd_bus_message_read(reply, "o", &job);
        if (r < 0)
                return -EPROTO;
        w.path = strdup(job);
        if (!w.path)
                return -ENOMEM;
        sender = sd_bus_message_get_sender(reply);
        if (sender) {
                w.sender = strdup(sender);
                if (!w.sender)
                        return -ENOMEM;
        }
        log_debug("systemd: %s \"%s\": job %s", unit_methods[action], unit,
                  job);

        for (;;) {
                uint64_t left;

                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (w.result)
                        break;
                if (r > 0)
                        continue;
                left = left_until(deadline);
                if (left == 0)
                        return -ETIMEDOUT;
                r = sd_bus_wait(bus, left);
                if (r < 0)
                        return r;
        }
        log_debug("systemd: job %s for \"%s\": %s", w.path, unit, w.result);
        return job_result_to_errno(w.result);
}

int haven_service_systemd_is_active(sd_bus *bus, const char *name,
                                    uint64_t timeout_usec) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL,
                                                        *reply = NULL;
        _cleanup_free_ char *unit = NULL, *path = NULL;
        const char *state;
        int r;

        assert(bus);

        r = haven_service_unit_name(name, &unit);
        if (r < 0)
                return r;
        if (timeout_usec == 0)
                timeout_usec = HAVEN_SERVICE_TIMEOUT_USEC;
        r = sd_bus_path_encode(SYSTEMD_UNIT_PREFIX, unit, &path);
        if (r < 0)
                return r;

        /* Reading a property of a unit that is not loaded makes systemd
         * load it: an unknown unit reads as "inactive", not as an error. */
        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_DESTINATION, path,
                                           "org.freedesktop.DBus.Properties",
                                           "Get");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", "org.freedesktop.systemd1.Unit",
                                  "ActiveState");
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, timeout_usec, &error, &reply);
        if (r < 0)
                return bus_error_to_errno(&error, r);
        r = sd_bus_message_read(reply, "v", "s", &state);
        if (r < 0)
                return -EPROTO;
        return streq(state, "active") || streq(state, "reloading") ||
               streq(state, "refreshing");
}

/* As root, PID 1's private socket (no D-Bus broker needed, like
 * systemctl); otherwise, or if that fails, the system bus. */
static int systemd_connect(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (geteuid() == 0) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, SYSTEMD_PRIVATE_ADDRESS);
                if (r >= 0)
                        r = sd_bus_start(bus);
                if (r >= 0) {
                        *ret = TAKE_PTR(bus);
                        return 0;
                }
                log_debug_errno(r, "systemd: private socket: %m, trying the "
                                   "system bus");
                bus = sd_bus_flush_close_unref(bus);
        }

        r = sd_bus_open_system(&bus);
        if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTDIR)
                return -ECONNREFUSED;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* ==== Entry points ==== */

int haven_service_control_timeout(enum haven_service_manager m,
                                  const char *name,
                                  enum haven_service_action action,
                                  uint64_t timeout_usec) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!haven_service_name_is_valid(name) || action < 0 ||
            action >= _HAVEN_SERVICE_ACTION_MAX)
                return -EINVAL;
        if (timeout_usec == 0)
                timeout_usec = HAVEN_SERVICE_TIMEOUT_USEC;

        switch (m) {
        case HAVEN_SERVICE_MANAGER_LAB:
                return lab_control(name, action, timeout_usec);
        case HAVEN_SERVICE_MANAGER_SYSTEMD:
                r = systemd_connect(&bus);
                if (r < 0)
                        return r;
                return haven_service_systemd_control(bus, name, action,
                                                     timeout_usec);
        default:
                return -EINVAL;
        }
}

int haven_service_control(enum haven_service_manager m, const char *name,
                          enum haven_service_action action) {
        return haven_service_control_timeout(m, name, action, 0);
}

int haven_service_is_active(enum haven_service_manager m, const char *name) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!haven_service_name_is_valid(name))
                return -EINVAL;

        switch (m) {
        case HAVEN_SERVICE_MANAGER_LAB:
                return lab_is_active(name, HAVEN_SERVICE_TIMEOUT_USEC);
        case HAVEN_SERVICE_MANAGER_SYSTEMD:
                r = systemd_connect(&bus);
                if (r < 0)
                        return r;
                return haven_service_systemd_is_active(
                        bus, name, HAVEN_SERVICE_TIMEOUT_USEC);
        default:
                return -EINVAL;
        }
}
