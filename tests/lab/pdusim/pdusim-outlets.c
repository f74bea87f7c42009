/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The power strip's outlets: their states and names, switching after a
 * delay on net-snmp alarms (the agent's own loop), the state file that keeps
 * them across restarts, and the power command run on every real change.
 * Must not: block the loop (children are never waited for synchronously),
 * use a shell, or know anything about SNMP objects.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include "haven/exec.h"
#include "haven/json.h"
#include "haven/log.h"
#include "pdusim.h"

#define POWER_ENV_MAX 32

extern char **environ;

static const char *const model_names[_PDU_MODEL_MAX] = {
        [PDU_MODEL_RPDU] = "rpdu",
        [PDU_MODEL_MASTERSWITCH] = "masterswitch",
};

const char *pdu_model_to_string(enum pdu_model m) {
        return m >= 0 && m < _PDU_MODEL_MAX ? model_names[m] : NULL;
}

enum pdu_model pdu_model_from_string(const char *s) {
        for (size_t i = 0; s && i < ELEMENTSOF(model_names); i++)
                if (streq(s, model_names[i]))
                        return (enum pdu_model) i;
        return _PDU_MODEL_INVALID;
}

static const char *const action_names[_OUTLET_ACTION_MAX] = {
        [OUTLET_ACTION_ON] = "on",
        [OUTLET_ACTION_OFF] = "off",
        [OUTLET_ACTION_REBOOT] = "reboot",
        [OUTLET_ACTION_CANCEL] = "cancel",
};

const char *outlet_action_to_string(enum outlet_action a) {
        return a >= 0 && a < _OUTLET_ACTION_MAX ? action_names[a] : NULL;
}

struct outlet *pdu_outlet(struct pdu *p, long number) {
        if (number < 1 || number > (long) p->n_outlets)
                return NULL;
        return &p->outlets[number - 1];
}

bool outlet_name_valid(const char *name, size_t length) {
        if (length > PDU_OUTLET_NAME_MAX)
                return false;
        for (size_t i = 0; i < length; i++)
                if (name[i] < 0x20 || name[i] > 0x7e)
                        return false;
        return true;
}

/* ==== State file ==== */

int pdu_file_replace(const char *path, const char *data) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        size_t size = strlen(data), done = 0;

        if (asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        while (done < size) {
                ssize_t n = write(fd, data + done, size - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        goto fail;
                done += (size_t) n;
        }
        if (fsync(fd) < 0)
                goto fail;
        fd = safe_close(fd);
        if (rename(tmp, path) < 0)
                goto fail;
        return 0;
fail:
        {
                int r = negative_errno();
                (void) unlink(tmp);
                return r;
        }
}

int pdu_save(struct pdu *p) {
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        _cleanup_free_ char *text = NULL, *path = NULL;
        struct json_object *list;

        if (!p->options->state_dir)
                return 0;
        root = json_object_new_object();
        list = json_object_new_array();
        if (!root || haven_json_add(root, "outlets", list) < 0)
                return -ENOMEM;
        for (unsigned i = 0; i < p->n_outlets; i++) {
                const struct outlet *o = &p->outlets[i];
                struct json_object *entry = json_object_new_object();

                if (!entry || json_object_array_add(list, entry) < 0) {
                        json_object_put(entry);
                        return -ENOMEM;
                }
                if (haven_json_add(entry, "outlet", json_object_new_int((int) o->number)) < 0 ||
                    haven_json_add(entry, "name", json_object_new_string(o->name)) < 0 ||
                    haven_json_add(entry, "on", json_object_new_boolean(o->on)) < 0)
                        return -ENOMEM;
        }
        if (asprintf(&text, "%s\n",
                     json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
                return -ENOMEM;
        if (asprintf(&path, "%s/%s", p->options->state_dir, PDU_STATE_FILE) < 0)
                return -ENOMEM;
        return pdu_file_replace(path, text);
}

/* Applies one entry of the state file. Entries for outlets this strip does
 * not have are ignored (it was started with more outlets before). */
static int load_entry(struct pdu *p, struct json_object *entry, bool seen[]) {
        static const struct haven_json_field policy[] = {
                { .name = "outlet", .kind = HAVEN_JSON_INT, .required = true,
                  .min = 1, .max = PDU_OUTLETS_MAX },
                { .name = "name", .kind = HAVEN_JSON_STRING, .required = true,
                  .min = 0, .max = PDU_OUTLET_NAME_MAX },
                { .name = "on", .kind = HAVEN_JSON_BOOL, .required = true },
        };
        struct haven_json_error error;
        struct outlet *o;
        const char *name;
        int64_t number;
        bool on;
        int r;

        r = haven_json_check(entry, policy, ELEMENTSOF(policy), &error);
        if (r < 0)
                return log_error_errno(-EBADMSG, "State file: bad outlet entry: %s%s%s",
                                       error.field ? error.field : "",
                                       error.field ? ": " : "", error.message);
        (void) haven_json_get_int64(entry, "outlet", &number);
        (void) haven_json_get_string(entry, "name", &name);
        (void) haven_json_get_bool(entry, "on", &on);
        if (seen[number - 1])
                return log_error_errno(-EBADMSG, "State file: outlet %d listed twice",
                                       (int) number);
        seen[number - 1] = true;
        if (!outlet_name_valid(name, strlen(name)))
                return log_error_errno(-EBADMSG, "State file: outlet %d: bad name",
                                       (int) number);
        o = pdu_outlet(p, number);
        if (!o)
                return 0;
        o->on = o->powered = o->node_on = on;
        if (!o->name_fixed)
                snprintf(o->name, sizeof o->name, "%s", name);
        return 0;
}

static int load_state(struct pdu *p) {
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_close_ int fd = -1;
        bool seen[PDU_OUTLETS_MAX] = {};
        struct json_object *list;
        size_t size = 0;
        int r;

        if (asprintf(&path, "%s/%s", p->options->state_dir, PDU_STATE_FILE) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return 0;
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to open \"%s\": %m", path);
        text = malloc(PDU_STATE_FILE_MAX + 1);
        if (!text)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, text + size, PDU_STATE_FILE_MAX + 1 - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return log_error_errno(negative_errno(), "Failed to read \"%s\": %m", path);
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > PDU_STATE_FILE_MAX)
                        return log_error_errno(-EBADMSG, "\"%s\" is too large", path);
        }
        r = haven_json_parse(text, size, PDU_STATE_FILE_MAX, &root);
        if (r < 0 || haven_json_get_array(root, "outlets", &list) < 0 ||
            json_object_array_length(list) > PDU_OUTLETS_MAX)
                return log_error_errno(-EBADMSG, "\"%s\" is not a state file of %s",
                                       path, PDU_APP_NAME);
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                r = load_entry(p, json_object_array_get_idx(list, i), seen);
                if (r < 0)
                        return r;
        }
        return 0;
}

int pdu_init(struct pdu *p, const struct pdu_options *options) {
        *p = (struct pdu) { .options = options, .n_outlets = options->n_outlets };
        for (unsigned i = 0; i < p->n_outlets; i++) {
                struct outlet *o = &p->outlets[i];

                *o = (struct outlet) { .pdu = p, .number = i + 1, .on = true, .powered = true,
                                       .node_on = true };
                if (options->names[i]) {
                        snprintf(o->name, sizeof o->name, "%s", options->names[i]);
                        o->name_fixed = true;
                } else
                        snprintf(o->name, sizeof o->name, "Outlet %u", o->number);
        }
        return options->state_dir ? load_state(p) : 0;
}

bool pdu_outlet_reads_on(const struct outlet *o) {
        if (!o->pdu->options->power_command)
                return o->on;
        return o->on || o->power_pid > 0 || o->node_on;
}

/* ==== Power command ==== */

/* The child's environment: a clean one, plus the HAVEN_* variables of ours
 * (the lab's tool finds its state directory through them). Built before
 * fork, so the child does not allocate. */
static void power_environment(char *envp[], size_t size) {
        size_t n = 0;

        envp[n++] = (char *) "PATH=" HAVEN_EXEC_PATH;
        envp[n++] = (char *) "LANG=C.UTF-8";
        for (char **e = environ; e && *e && n + 1 < size; e++)
                if (strncmp(*e, "HAVEN_", 6) == 0)
                        envp[n++] = *e;
        envp[n] = NULL;
}

/* Starts `power_command NUMBER on|off` for o. The child runs in its own
 * process group, in /, with stdin on /dev/null and our stdout/stderr (the
 * log). */
static int power_spawn(struct outlet *o, bool on) {
        const char *path = o->pdu->options->power_command;
        char number[16], *envp[POWER_ENV_MAX + 3];
        char *argv[] = { (char *) path, number, (char *) (on ? "on" : "off"), NULL };
        sigset_t none;
        pid_t pid;

        snprintf(number, sizeof number, "%u", o->number);
        power_environment(envp, ELEMENTSOF(envp));
        sigemptyset(&none);

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int null_fd;

                for (int sig = 1; sig < _NSIG; sig++)
                        (void) signal(sig, SIG_DFL);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                (void) setpgid(0, 0);
                null_fd = open("/dev/null", O_RDONLY);
                if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || chdir("/") < 0)
                        _exit(126);
                (void) close_range(3, ~0U, 0);
                execve(path, argv, envp);
                _exit(127);
        }
        o->power_pid = pid;
        o->powered = on;
        log_info("Outlet %u (\"%s\"): running %s %s %s as PID %d", o->number, o->name,
                 path, number, on ? "on" : "off", (int) pid);
        return 0;
}

/* Brings the power command in line with the outlet: one child at a time
 * per outlet, so the commands of one outlet run in order; a change made
 * while one runs is handled when it ends (only the latest state counts). */
static void power_sync(struct outlet *o) {
        int r;

        if (!o->pdu->options->power_command || o->power_pid > 0 || o->powered == o->on)
                return;
        r = power_spawn(o, o->on);
        if (r < 0)
                log_error_errno(r, "Outlet %u (\"%s\"): failed to run the power command: %m, ignoring",
                                o->number, o->name);
}

void pdu_reap_children(struct pdu *p) {
        for (;;) {
                struct outlet *o = NULL;
                int status;
                pid_t pid;

                pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        return;
                for (unsigned i = 0; i < p->n_outlets && !o; i++)
                        if (p->outlets[i].power_pid == pid)
                                o = &p->outlets[i];
                if (!o)
                        continue;
                o->power_pid = 0;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        o->node_on = o->powered;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        log_info("Outlet %u (\"%s\"): power command PID %d done",
                                 o->number, o->name, (int) pid);
                else if (WIFEXITED(status))
                        log_warning("Outlet %u (\"%s\"): power command PID %d exited with %d",
                                    o->number, o->name, (int) pid, WEXITSTATUS(status));
                else
                        log_warning("Outlet %u (\"%s\"): power command PID %d killed by signal %d",
                                    o->number, o->name, (int) pid, WTERMSIG(status));
                power_sync(o);
        }
}

/* ==== Switching ==== */

static void pdu_save_or_log(struct pdu *p) {
        int r;

        if (p->save_held) {
                p->save_pending = true;
                return;
        }
        r = pdu_save(p);
        if (r < 0)
                log_error_errno(r, "Failed to write the state file: %m, ignoring");
}

void pdu_hold_save(struct pdu *p) {
        p->save_held = true;
}

void pdu_release_save(struct pdu *p) {
        p->save_held = false;
        if (p->save_pending) {
                p->save_pending = false;
                pdu_save_or_log(p);
        }
}

/* The outlet really changes: state file, log, power command. */
static void outlet_switch(struct outlet *o, bool on) {
        if (o->on == on)
                return;
        o->on = on;
        log_info("Outlet %u (\"%s\") is now %s", o->number, o->name, on ? "on" : "off");
        pdu_save_or_log(o->pdu);
        power_sync(o);
}

static void outlet_cancel(struct outlet *o) {
        if (o->timer)
                snmp_alarm_unregister(o->timer);
        o->timer = 0;
        o->step = OUTLET_STEP_NONE;
}

static void on_outlet_timer(unsigned int reg, void *userdata);

static int outlet_arm(struct outlet *o, enum outlet_step step, unsigned ms) {
        struct timeval t = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

        o->timer = snmp_alarm_register_hr(t, 0, on_outlet_timer, o);
        if (o->timer == 0) {
                o->step = OUTLET_STEP_NONE;
                return -ENOMEM;
        }
        o->step = step;
        return 0;
}

static unsigned reboot_ms(const struct outlet *o) {
        unsigned delay = o->pdu->options->delay_ms;
        return delay > PDU_REBOOT_MIN_MS ? delay : PDU_REBOOT_MIN_MS;
}

/* One-shot alarm: net-snmp forgets it after this returns, so the id is
 * dropped first (a reboot arms a new one). */
static void on_outlet_timer(unsigned int reg, void *userdata) {
        struct outlet *o = userdata;
        enum outlet_step step = o->step;
        int r;

        o->timer = 0;
        o->step = OUTLET_STEP_NONE;
        switch (step) {
        case OUTLET_STEP_SWITCH_ON:
                outlet_switch(o, true);
                break;
        case OUTLET_STEP_SWITCH_OFF:
                outlet_switch(o, false);
                break;
        case OUTLET_STEP_REBOOT_OFF:
                outlet_switch(o, false);
                r = outlet_arm(o, OUTLET_STEP_SWITCH_ON, reboot_ms(o));
                if (r < 0) {
                        log_error_errno(r, "Outlet %u: cannot time the reboot, switching on now", o->number);
                        outlet_switch(o, true);
                }
                break;
        default:
                break;
        }
}

int outlet_request(struct outlet *o, enum outlet_action a) {
        unsigned delay = o->pdu->options->delay_ms;

        outlet_cancel(o);
        switch (a) {
        case OUTLET_ACTION_ON:
        case OUTLET_ACTION_OFF:
                if (delay == 0) {
                        outlet_switch(o, a == OUTLET_ACTION_ON);
                        return 0;
                }
                return outlet_arm(o, a == OUTLET_ACTION_ON ? OUTLET_STEP_SWITCH_ON :
                                                             OUTLET_STEP_SWITCH_OFF, delay);
        case OUTLET_ACTION_REBOOT:
                if (delay > 0)
                        return outlet_arm(o, OUTLET_STEP_REBOOT_OFF, delay);
                outlet_switch(o, false);
                return outlet_arm(o, OUTLET_STEP_SWITCH_ON, reboot_ms(o));
        case OUTLET_ACTION_CANCEL:
                return 0;
        default:
                assert_not_reached();
        }
}

int outlet_rename(struct outlet *o, const char *name, size_t length) {
        if (!outlet_name_valid(name, length))
                return -EINVAL;
        memcpy(o->name, name, length);
        o->name[length] = '\0';
        return pdu_save(o->pdu);
}

void pdu_done(struct pdu *p) {
        for (unsigned i = 0; i < p->n_outlets; i++)
                outlet_cancel(&p->outlets[i]);
}
