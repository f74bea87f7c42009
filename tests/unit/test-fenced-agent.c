/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for the fence-agents driver (daemons/fenced/fenced-agent.c)
 * with the real agents of Debian's fence-agents (4.12.1) in /usr/sbin:
 * discovery, metadata of fence_apc_snmp, fence_ipmilan and fence_virsh,
 * validation, the stdin text, real runs (validate-all, metadata, a status
 * against a UDP port nobody answers), and the reading of outcomes and
 * outlet lists. No mocks: the only stand-ins are tiny shell scripts in a
 * temporary agent directory for what no real agent does on demand (hang,
 * fail to print metadata, print garbage); each says so where it is made.
 *
 * Bad inputs tried, by kind:
 * - agent names: "../bin/sh", "fence_x;rm", "fence_", "", "FENCE_APC",
 *   "fence_apc snmp", "fence_a/../b", "/bin/sh", 65 characters, NULL,
 *   not installed, not executable, a directory;
 * - metadata XML: empty, not XML, truncated, wrong root, no name, a DOCTYPE
 *   with internal entities (billion laughs), an external entity on
 *   /etc/passwd, an undefined entity, over 1 MiB, 1025 parameters, 65
 *   actions, 257 choices; tolerated: bad parameter names, duplicates,
 *   unknown types, a select without options, control characters;
 * - parameters: not an object, no agent, agent not a string, unknown key,
 *   every managed key, help/version/separator/debug_file/ssh_options,
 *   *_path, *_script, a deprecated name, missing required, integers
 *   ("16x1", "", "+5", " 5", 1.5, 20 digits, true), seconds (-1, "1.5",
 *   2.5), booleans ("maybe", 2, ""), select ("4", true), values with LF,
 *   CR, TAB, NUL, ESC, DEL, invalid UTF-8, 1025 characters, keys
 *   ("com=munity", "a b", "", "x\n", "-x", "ü", 65 characters), null,
 *   objects, arrays;
 * - stdin: line breaks in address, outlet, action and values, managed and
 *   refused keys, non-scalar values, empty address;
 * - agent output: timestamps, "ERROR:root:" duplicates, WARNING lines,
 *   Python DeprecationWarnings, tracebacks, usage hints, C agents'
 *   "[error]:" lines, no output at all, control characters, invalid UTF-8,
 *   10 kB of errors; list lines "N/A", "NOTICE: ...", blank, CR LF, empty
 *   outlet or name, commas in names, control characters, invalid UTF-8,
 *   over-long fields, 4097 entries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "haven/exec.h"
#include "haven/json.h"
#include "haven/loop.h"

#include "../../daemons/fenced/fenced-agent.h"
#include "test-tmp.h"
#include "test-util.h"

/* Real agents start in ~0.2 s; generous for a loaded machine. */
#define AGENT_TIMEOUT_USEC (20 * USEC_PER_SEC)

/* ==== Helpers ==== */

static bool no_child_left(void) {
        return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

/* A fresh temporary agent directory (the caller removes it). */
static char *make_agent_directory(void) {
        char *dir = strdup("/tmp/test-fenced-agent-XXXXXX");

        assert_non_null(dir);
        assert_non_null(mkdtemp(dir));
        return dir;
}

static void write_file(const char *dir, const char *name, const char *body,
                       mode_t mode) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        size_t n = strlen(body);

        assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, body, n), (ssize_t) n);
        assert_int_equal(fchmod(fd, mode), 0);
}

static struct fence_agent_metadata *load(const char *name) {
        struct fence_agent_metadata *m = NULL;

        assert_int_equal(
                fence_agent_metadata_load(name, AGENT_TIMEOUT_USEC, &m), 0);
        assert_non_null(m);
        return m;
}

static const struct fence_agent_parameter *
parameter(const struct fence_agent_metadata *m, const char *name) {
        const struct fence_agent_parameter *p;

        p = fence_agent_metadata_parameter(m, name);
        if (!p)
                fail_msg("%s declares no parameter \"%s\"", m->name, name);
        return p;
}

/* Validates text (JSON) against m; returns r and the error's parts. */
static int validate(const struct fence_agent_metadata *m, const char *text,
                    char **ret_field, char **ret_message) {
        _cleanup_(json_object_putp) struct json_object *p = json(text);

        *ret_field = *ret_message = NULL;
        return fence_agent_validate(m, p, ret_field, ret_message);
}

static void assert_valid(const struct fence_agent_metadata *m,
                         const char *text) {
        _cleanup_free_ char *field = NULL, *message = NULL;
        int r = validate(m, text, &field, &message);

        if (r != 0)
                fail_msg("%s refused: \"%s\" %s", text, field ?: "(null)",
                         message ?: "(null)");
}

/* Asserts that text is refused for field with a message containing
 * expected. */
static void assert_refused(const struct fence_agent_metadata *m,
                           const char *text, const char *field,
                           const char *expected) {
        _cleanup_free_ char *f = NULL, *message = NULL;

        if (validate(m, text, &f, &message) != -EINVAL)
                fail_msg("%s was accepted", text);
        assert_non_null(f);
        assert_non_null(message);
        if (!streq(f, field) || !strstr(message, expected))
                fail_msg("%s: got \"%s\" %s, expected \"%s\" ...%s...", text, f,
                         message, field, expected);
}

/* The same with the value built in C (NUL bytes, exact lengths). */
static void assert_value_refused(const struct fence_agent_metadata *m,
                                 const char *key, struct json_object *value,
                                 const char *expected) {
        _cleanup_(json_object_putp) struct json_object *p =
                json("{\"agent\": \"fence_apc_snmp\"}");
        _cleanup_free_ char *field = NULL, *message = NULL;

        assert_int_equal(haven_json_add(p, key, value), 0);
        assert_int_equal(fence_agent_validate(m, p, &field, &message), -EINVAL);
        assert_string_equal(field, key);
        if (!strstr(message, expected))
                fail_msg("%s: \"%s\", expected ...%s...", key, message,
                         expected);
}

static char *repeat(const char *unit, size_t times) {
        size_t n = strlen(unit);
        char *s = malloc(n * times + 1);

        assert_non_null(s);
        for (size_t i = 0; i < times; i++)
                memcpy(s + i * n, unit, n);
        s[n * times] = '\0';
        return s;
}

/* A result as haven/exec.h would deliver it, for the pure functions. */
static struct haven_exec_result result(int code, int status, bool timed_out,
                                       const char *out, const char *err) {
        return (struct haven_exec_result){
                .code = code,
                .status = status,
                .timed_out = timed_out,
                .stdout_data = (char *) out,
                .stdout_size = strlen(out),
                .stderr_data = (char *) err,
                .stderr_size = strlen(err),
                .duration_usec = 2500 * USEC_PER_MSEC,
        };
}

static enum fence_agent_outcome outcome(const char *action, int code,
                                        int status, bool timed_out,
                                        const char *out, const char *err,
                                        char **ret_message) {
        struct haven_exec_result r = result(code, status, timed_out, out, err);
        enum fence_agent_outcome o;

        o = fence_agent_outcome(action, &r, ret_message);
        assert_non_null(*ret_message);
        assert_true(strlen(*ret_message) <= FENCE_AGENT_MESSAGE_MAX);
        return o;
}

static void assert_message(const char *action, int code, int status,
                           bool timed_out, const char *out, const char *err,
                           enum fence_agent_outcome expected_outcome,
                           const char *expected_message) {
        _cleanup_free_ char *message = NULL;
        enum fence_agent_outcome o;

        o = outcome(action, code, status, timed_out, out, err, &message);
        assert_int_equal(o, expected_outcome);
        assert_string_equal(message, expected_message);
}

/* What a run's done callback saw. */
struct run {
        sd_event *event;
        const char *action;
        bool called;
        enum fence_agent_outcome outcome;
        char *message, *out, *err;
        bool timed_out;
        uint64_t duration_usec;
};

static void run_done(struct run *r) {
        free(r->message);
        free(r->out);
        free(r->err);
}

static void on_run_done(struct haven_exec *x,
                        const struct haven_exec_result *result_,
                        void *userdata) {
        struct run *r = userdata;

        r->called = true;
        r->outcome = fence_agent_outcome(r->action, result_, &r->message);
        r->out = strdup(result_->stdout_data);
        r->err = strdup(result_->stderr_data);
        r->timed_out = result_->timed_out;
        r->duration_usec = result_->duration_usec;
        (void) sd_event_exit(r->event, 0);
}

static int on_safety_timeout(sd_event_source *s, uint64_t usec,
                             void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 1);
}

/* Runs agent with stdin text on a fresh loop (SIGCHLD blocked), bounded by
 * timeout_usec; returns the exec's pid in *ret_pid (may be NULL). */
static void run_agent(const char *agent, const char *action, const char *text,
                      uint64_t timeout_usec, struct run *ret, pid_t *ret_pid) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(haven_exec_freep) struct haven_exec *x = NULL;

        *ret = (struct run){.action = action};
        assert_int_equal(haven_loop_new(&e), 0);
        ret->event = e;
        assert_int_equal(haven_loop_add_timer(e, NULL, 60 * USEC_PER_SEC, 0,
                                              on_safety_timeout, NULL),
                         0);
        assert_int_equal(fence_agent_run(e, agent, text, timeout_usec,
                                         on_run_done, ret, &x),
                         0);
        if (ret_pid)
                *ret_pid = haven_exec_pid(x);
        assert_int_equal(sd_event_loop(e), 0);
        assert_true(ret->called);
        ret->event = NULL;
}

static int teardown(void **state) {
        /* Back to /usr/sbin; also empties the cache. */
        assert_int_equal(fence_agent_set_directory(NULL), 0);
        return 0;
}

/* ==== Discovery ==== */

static void installed_agents_are_listed_sorted(void **state) {
        _cleanup_strv_free_ char **names = NULL;
        bool apc = false, ipmi = false;
        int n;

        n = fence_agent_list(&names);
        assert_true(n >= 2);
        for (int i = 0; i < n; i++) {
                assert_true(fence_agent_name_is_valid(names[i]));
                if (i > 0)
                        assert_true(strcmp(names[i - 1], names[i]) < 0);
                apc = apc || streq(names[i], "fence_apc_snmp");
                ipmi = ipmi || streq(names[i], "fence_ipmilan");
        }
        assert_null(names[n]);
        assert_true(apc);
        assert_true(ipmi);
}

static void listing_keeps_only_executable_agents(void **state) {
        _cleanup_free_ char *dir = make_agent_directory(), *sub = NULL;
        _cleanup_strv_free_ char **names = NULL;

        write_file(dir, "fence_b", "#!/bin/sh\n", 0755);
        write_file(dir, "fence_a", "#!/bin/sh\n", 0755);
        write_file(dir, "fence_plain", "not executable\n", 0644);
        write_file(dir, "fence_Upper", "#!/bin/sh\n", 0755);
        write_file(dir, "notfence", "#!/bin/sh\n", 0755);
        assert_true(asprintf(&sub, "%s/fence_dir", dir) > 0);
        assert_int_equal(mkdir(sub, 0755), 0);

        assert_int_equal(fence_agent_set_directory(dir), 0);
        assert_string_equal(fence_agent_get_directory(), dir);
        assert_int_equal(fence_agent_list(&names), 2);
        assert_string_equal(names[0], "fence_a");
        assert_string_equal(names[1], "fence_b");
        assert_null(names[2]);

        assert_int_equal(fence_agent_set_directory("relative/dir"), -EINVAL);
        remove_tree(dir);
}

static void agent_path_resolves_installed_agent(void **state) {
        _cleanup_free_ char *path = NULL;

        assert_int_equal(fence_agent_path("fence_apc_snmp", &path), 0);
        assert_string_equal(path, "/usr/sbin/fence_apc_snmp");
}

static void agent_path_refuses_bad_names(void **state) {
        _cleanup_free_ char *long_name = repeat("x", 59); /* 6 + 59 = 65 */
        _cleanup_free_ char *long_ok = repeat("x", 58);   /* 64 */
        _cleanup_free_ char *too_long = NULL, *just_right = NULL;
        static const char *const bad[] = {
                "../bin/sh",   "fence_x;rm",     "fence_",       "",
                "FENCE_APC",   "fence_apc snmp", "fence_a/../b", "/bin/sh",
                "fence_apc\n", "fence_x-y",      "fence_x.py",   "xfence_apc",
        };
        char *path = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_false(fence_agent_name_is_valid(bad[i]));
                assert_int_equal(fence_agent_path(bad[i], &path), -EINVAL);
        }
        assert_false(fence_agent_name_is_valid(NULL));
        assert_true(asprintf(&too_long, "fence_%s", long_name) > 0);
        assert_true(asprintf(&just_right, "fence_%s", long_ok) > 0);
        assert_false(fence_agent_name_is_valid(too_long));
        assert_true(fence_agent_name_is_valid(just_right));
        assert_int_equal(fence_agent_path(just_right, &path), -ENOENT);
        assert_int_equal(fence_agent_path("fence_not_installed_here", &path),
                         -ENOENT);
        assert_null(path);
}

static void agent_path_refuses_files_that_cannot_run(void **state) {
        _cleanup_free_ char *dir = make_agent_directory(), *sub = NULL;
        char *path = NULL;

        write_file(dir, "fence_plain", "not executable\n", 0644);
        assert_true(asprintf(&sub, "%s/fence_dir", dir) > 0);
        assert_int_equal(mkdir(sub, 0755), 0);
        assert_int_equal(fence_agent_set_directory(dir), 0);

        assert_int_equal(fence_agent_path("fence_plain", &path), -EACCES);
        assert_int_equal(fence_agent_path("fence_dir", &path), -EACCES);
        assert_null(path);
        remove_tree(dir);
}

/* ==== Metadata of real agents ==== */

static void apc_snmp_metadata_declares_its_snmp_parameters(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");
        const struct fence_agent_parameter *p;

        assert_string_equal(m->name, "fence_apc_snmp");
        assert_non_null(strstr(m->shortdesc, "APC"));
        assert_non_null(strstr(m->longdesc, "SNMP"));

        p = parameter(m, "community");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_STRING);
        assert_string_equal(p->default_value, "private");
        assert_false(p->required);
        assert_string_equal(p->shortdesc, "Set the community string");

        p = parameter(m, "snmp_version");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_SELECT);
        assert_string_equal(p->default_value, "1");
        assert_int_equal(p->n_values, 3);
        assert_string_equal(p->values[0], "1");
        assert_string_equal(p->values[1], "2c");
        assert_string_equal(p->values[2], "3");
        assert_null(p->values[3]);

        p = parameter(m, "snmp_sec_level");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_SELECT);
        assert_null(p->default_value);
        assert_int_equal(p->n_values, 3);

        p = parameter(m, "ipport");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_INTEGER);
        assert_string_equal(p->default_value, "161");

        p = parameter(m, "power_timeout");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_SECOND);
        assert_string_equal(p->default_value, "20");

        p = parameter(m, "verbose");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_BOOLEAN);
        assert_null(p->values);

        p = parameter(m, "ip");
        assert_true(p->required);
        assert_false(p->deprecated);
        assert_string_equal(p->obsoletes, "ipaddr");
        p = parameter(m, "ipaddr");
        assert_true(p->deprecated);
        assert_string_equal(p->replaced_by, "ip");
        p = parameter(m, "passwd");
        assert_true(p->deprecated);
        assert_string_equal(p->replaced_by, "password");
        assert_true(parameter(m, "plug")->required);

        assert_true(fence_agent_requires_address(m));
        assert_true(fence_agent_metadata_has_action(m, "off"));
        assert_true(fence_agent_metadata_has_action(m, "status"));
        assert_true(fence_agent_metadata_has_action(m, "list"));
        assert_true(fence_agent_metadata_has_action(m, "validate-all"));
        assert_false(fence_agent_metadata_has_action(m, "diag"));
        assert_false(fence_agent_metadata_has_action(m, NULL));
        assert_string_equal(m->actions[0], "on");
        assert_null(m->actions[m->n_actions]);
        assert_null(fence_agent_metadata_parameter(m, "lanplus"));
}

static void ipmilan_metadata_declares_lanplus_and_method(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_ipmilan");
        const struct fence_agent_parameter *p;

        assert_string_equal(m->name, "fence_ipmilan");

        p = parameter(m, "lanplus");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_BOOLEAN);
        assert_string_equal(p->default_value, "0");

        p = parameter(m, "method");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_SELECT);
        assert_string_equal(p->default_value, "onoff");
        assert_int_equal(p->n_values, 2);
        assert_string_equal(p->values[0], "onoff");
        assert_string_equal(p->values[1], "cycle");

        p = parameter(m, "privlvl");
        assert_int_equal(p->n_values, 4);
        assert_string_equal(p->default_value, "administrator");

        /* fence_ipmilan does not insist on ip (port_as_ip), nor on a plug. */
        assert_false(parameter(m, "ip")->required);
        assert_false(fence_agent_requires_address(m));
        assert_false(parameter(m, "plug")->required);
        assert_true(fence_agent_metadata_has_action(m, "diag"));
        assert_false(fence_agent_metadata_has_action(m, "list"));
        assert_string_equal(parameter(m, "use_sudo")->obsoletes, "sudo");
        assert_string_equal(parameter(m, "sudo")->replaced_by, "use_sudo");
}

static void metadata_is_loaded_once_per_process(void **state) {
        struct fence_agent_metadata *first, *second, *third;

        fence_agent_cache_flush();
        first = load("fence_apc_snmp");
        second = load("fence_apc_snmp");
        assert_ptr_equal(first, second);
        fence_agent_cache_flush();
        third = load("fence_apc_snmp");
        assert_ptr_not_equal(first, third);
        /* The flushed copy stays usable for those holding it. */
        assert_string_equal(first->name, "fence_apc_snmp");
        fence_agent_metadata_free(first);
        fence_agent_metadata_free(second);
        fence_agent_metadata_free(third);
}

static struct json_object *find_in_json(struct json_object *parameters,
                                        const char *name) {
        for (size_t i = 0; i < json_object_array_length(parameters); i++) {
                struct json_object *p =
                        json_object_array_get_idx(parameters, i);
                const char *n;

                assert_int_equal(haven_json_get_string(p, "name", &n), 0);
                if (streq(n, name))
                        return p;
        }
        return NULL;
}

static void metadata_json_hides_deprecated_and_marks_managed(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *parameters, *actions, *p, *values, *v;
        static const char *const hidden[] = {
                "ipaddr", "port",       "login",        "passwd",
                "help",   "version",    "snmpget_path", "password_script",
                "debug",  "debug_file", "separator",    "passwd_script",
        };
        static const char *const managed[] = {"action", "ip", "plug"};
        const char *s;
        bool b;

        o = fence_agent_metadata_to_json(m);
        assert_non_null(o);
        assert_int_equal(haven_json_get_string(o, "agent", &s), 0);
        assert_string_equal(s, "fence_apc_snmp");
        assert_int_equal(haven_json_get_string(o, "shortdesc", &s), 0);
        assert_int_equal(haven_json_get_string(o, "longdesc", &s), 0);
        assert_int_equal(haven_json_get_array(o, "parameters", &parameters), 0);
        assert_int_equal(haven_json_get_array(o, "actions", &actions), 0);
        assert_int_equal(json_object_array_length(actions), m->n_actions);

        for (size_t i = 0; i < ELEMENTSOF(hidden); i++)
                if (find_in_json(parameters, hidden[i]))
                        fail_msg("\"%s\" is offered to the UI", hidden[i]);
        for (size_t i = 0; i < ELEMENTSOF(managed); i++) {
                p = find_in_json(parameters, managed[i]);
                assert_non_null(p);
                assert_int_equal(haven_json_get_bool(p, "managed", &b), 0);
                assert_true(b);
        }

        p = find_in_json(parameters, "community");
        assert_non_null(p);
        assert_int_equal(haven_json_get_bool(p, "managed", &b), 0);
        assert_false(b);
        assert_int_equal(haven_json_get_bool(p, "required", &b), 0);
        assert_false(b);
        assert_int_equal(haven_json_get_string(p, "type", &s), 0);
        assert_string_equal(s, "string");
        assert_int_equal(haven_json_get_string(p, "default", &s), 0);
        assert_string_equal(s, "private");
        assert_int_equal(haven_json_get_string(p, "description", &s), 0);
        assert_string_equal(s, "Set the community string");
        assert_false(json_object_object_get_ex(p, "values", NULL));

        p = find_in_json(parameters, "snmp_version");
        assert_int_equal(haven_json_get_array(p, "values", &values), 0);
        assert_int_equal(json_object_array_length(values), 3);
        v = json_object_array_get_idx(values, 1);
        assert_string_equal(json_object_get_string(v), "2c");

        /* ip has no default: JSON null. */
        p = find_in_json(parameters, "ip");
        assert_true(json_object_object_get_ex(p, "default", &v));
        assert_null(v);
        /* delay is the administrator's (fence races in two-node
         * clusters). */
        p = find_in_json(parameters, "delay");
        assert_non_null(p);
        assert_int_equal(haven_json_get_bool(p, "managed", &b), 0);
        assert_false(b);
}

/* ==== Metadata parsing ==== */

static void parse_text(const char *xml, int expected) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                NULL;
        int r = fence_agent_metadata_parse(xml, strlen(xml), &m);

        if (r != expected)
                fail_msg("%d instead of %d for: %.200s", r, expected, xml);
        if (r < 0)
                assert_null(m);
}

static void malformed_metadata_is_refused(void **state) {
        static const char *const bad[] = {
                "",
                "not xml at all",
                "<resource-agent name=\"fence_x\">",
                "<resource-agent name=\"fence_x\"></other>",
                "<other name=\"fence_x\"/>",
                "<resource-agent/>",
                "<resource-agent name=\"\"/>",
                "<resource-agent name=\"fence_x\">&undefined;</resource-agent>",
                "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaa\">"
                "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
                "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
                "<resource-agent name=\"fence_x\"><longdesc>&c;&c;&c;"
                "</longdesc></resource-agent>",
                "<!DOCTYPE resource-agent SYSTEM \"http://192.0.2.1/x.dtd\">"
                "<resource-agent name=\"fence_x\"/>",
                "<!DOCTYPE r [<!ENTITY secret SYSTEM \"file:///etc/passwd\">]>"
                "<resource-agent name=\"fence_x\"><longdesc>&secret;"
                "</longdesc></resource-agent>",
                "<resource-agent name=\"fence_x\"/><second/>",
        };
        _cleanup_free_ char *huge = NULL, *many = NULL, *actions = NULL,
                            *options = NULL;
        struct fence_agent_metadata *m = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                parse_text(bad[i], -EBADMSG);

        huge = malloc(FENCE_AGENT_METADATA_MAX + 1);
        assert_non_null(huge);
        memset(huge, ' ', FENCE_AGENT_METADATA_MAX + 1);
        assert_int_equal(fence_agent_metadata_parse(
                                 huge, FENCE_AGENT_METADATA_MAX + 1, &m),
                         -E2BIG);
        assert_null(m);

        /* Hard limits: 1025 parameters, 65 actions, 257 choices. */
        {
                _cleanup_free_ char *p =
                        repeat("<parameter name=\"p\"/>", 1025);
                _cleanup_free_ char *a = repeat("<action name=\"on\"/>", 65);
                _cleanup_free_ char *o = repeat("<option value=\"v\"/>", 257);

                assert_true(asprintf(&many,
                                     "<resource-agent name=\"fence_x\">"
                                     "<parameters>%s</parameters>"
                                     "</resource-agent>",
                                     p) > 0);
                assert_true(asprintf(&actions,
                                     "<resource-agent name=\"fence_x\">"
                                     "<actions>%s</actions></resource-agent>",
                                     a) > 0);
                assert_true(asprintf(&options,
                                     "<resource-agent name=\"fence_x\">"
                                     "<parameters><parameter name=\"s\">"
                                     "<content type=\"select\">%s</content>"
                                     "</parameter></parameters>"
                                     "</resource-agent>",
                                     o) > 0);
        }
        parse_text(many, -EBADMSG);
        parse_text(actions, -EBADMSG);
        parse_text(options, -EBADMSG);
}

static void minimal_metadata_parses_to_empty_lists(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                NULL;
        static const char xml[] = "<resource-agent name=\"fence_x\"/>";

        assert_int_equal(fence_agent_metadata_parse(xml, strlen(xml), &m), 0);
        assert_string_equal(m->name, "fence_x");
        assert_string_equal(m->shortdesc, "");
        assert_string_equal(m->longdesc, "");
        assert_int_equal(m->n_parameters, 0);
        assert_int_equal(m->n_actions, 0);
        assert_non_null(m->actions);
        assert_null(m->actions[0]);
        assert_false(fence_agent_requires_address(m));
}

static void odd_metadata_entries_are_skipped_or_tolerated(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                NULL;
        /* Not NUL-terminated on purpose: only size counts. */
        static const char xml[] =
                "<?xml version=\"1.0\" ?>\n"
                "<resource-agent name=\"fence_odd\" shortdesc=\" Odd\t"
                "agent \">\n"
                "<longdesc>\n  Line one.\nLine two.\n</longdesc>\n"
                "<parameters>\n"
                " <parameter name=\"a=b\"><content type=\"string\"/>"
                "</parameter>\n"
                " <parameter><content type=\"string\"/></parameter>\n"
                " <parameter name=\"good\" required=\"1\">"
                "<content type=\"colour\" default=\"x\"/>"
                "<shortdesc lang=\"de\">Gut</shortdesc>"
                "<shortdesc lang=\"en\">  Good\n  one </shortdesc>"
                "</parameter>\n"
                " <parameter name=\"good\"><content type=\"integer\"/>"
                "</parameter>\n"
                " <parameter name=\"pick\"><content type=\"select\"/>"
                "</parameter>\n"
                " <parameter name=\"tls1.0\"><content type=\"boolean\"/>"
                "</parameter>\n"
                " <parameter name=\"nocontent\"/>\n"
                "</parameters>\n"
                "<actions><action name=\"off\"/><action name=\"off\"/>"
                "<action name=\"rm -rf\"/><action/>"
                "<action name=\"validate-all\"/></actions>\n"
                "</resource-agent>\nTRAILING";
        const struct fence_agent_parameter *p;

        assert_int_equal(fence_agent_metadata_parse(
                                 xml, strlen(xml) - strlen("TRAILING"), &m),
                         0);
        assert_string_equal(m->shortdesc, "Odd agent");
        assert_string_equal(m->longdesc, "Line one.\nLine two.");
        assert_int_equal(m->n_parameters, 4);
        p = parameter(m, "good");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_STRING);
        assert_true(p->required);
        assert_string_equal(p->default_value, "x");
        assert_string_equal(p->shortdesc, "Good one");
        p = parameter(m, "pick");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_SELECT);
        assert_int_equal(p->n_values, 0);
        assert_null(p->values[0]);
        assert_int_equal(parameter(m, "tls1.0")->type,
                         FENCE_AGENT_TYPE_BOOLEAN);
        p = parameter(m, "nocontent");
        assert_int_equal(p->type, FENCE_AGENT_TYPE_STRING);
        assert_string_equal(p->shortdesc, "");
        assert_int_equal(m->n_actions, 2);
        assert_string_equal(m->actions[0], "off");
        assert_string_equal(m->actions[1], "validate-all");
}

static void metadata_load_refuses_bad_and_missing_agents(void **state) {
        struct fence_agent_metadata *m = NULL;

        assert_int_equal(fence_agent_metadata_load("../bin/sh", 1, &m),
                         -EINVAL);
        assert_int_equal(fence_agent_metadata_load("fence_x;rm", 1, &m),
                         -EINVAL);
        assert_int_equal(fence_agent_metadata_load("fence_apc_snmp", 0, &m),
                         -EINVAL);
        assert_int_equal(fence_agent_metadata_load("fence_not_installed_here",
                                                   AGENT_TIMEOUT_USEC, &m),
                         -ENOENT);
        assert_null(m);
}

static void metadata_load_reports_agents_that_misbehave(void **state) {
        _cleanup_free_ char *dir = make_agent_directory();
        struct fence_agent_metadata *m = NULL;
        uint64_t start;

        /* Test doubles, not agents: one that fails, one that prints
         * something else than metadata, one that hangs. */
        write_file(dir, "fence_failing", "#!/bin/sh\necho nope >&2\nexit 1\n",
                   0755);
        write_file(dir, "fence_garbage", "#!/bin/sh\necho hello\n", 0755);
        write_file(dir, "fence_hanging", "#!/bin/sh\nexec sleep 30\n", 0755);
        assert_int_equal(fence_agent_set_directory(dir), 0);

        assert_int_equal(fence_agent_metadata_load("fence_failing",
                                                   AGENT_TIMEOUT_USEC, &m),
                         -EPROTO);
        assert_int_equal(fence_agent_metadata_load("fence_garbage",
                                                   AGENT_TIMEOUT_USEC, &m),
                         -EBADMSG);
        start = now_usec();
        assert_int_equal(fence_agent_metadata_load("fence_hanging",
                                                   300 * USEC_PER_MSEC, &m),
                         -ETIMEDOUT);
        assert_true(now_usec() - start < 5 * USEC_PER_SEC);
        assert_null(m);
        assert_true(no_child_left());
        remove_tree(dir);
}

/* ==== Metadata on the loop ==== */

struct load_capture {
        int calls;
        int r;
        struct fence_agent_metadata *m;
        struct fence_agent_metadata_load **free_inside;
};

static void on_loaded(int r, struct fence_agent_metadata *m, void *userdata) {
        struct load_capture *c = userdata;

        c->calls++;
        c->r = r;
        fence_agent_metadata_free(c->m);
        c->m = m;
        if (c->free_inside)
                *c->free_inside =
                        fence_agent_metadata_load_free(*c->free_inside);
}

/* Runs the loop until done was called (an exited sd-event loop cannot run
 * again, so no sd_event_exit() here), for at most 30 s. */
static void run_until_called(sd_event *e, const struct load_capture *c) {
        uint64_t deadline = now_usec() + 30 * USEC_PER_SEC;
        int calls = c->calls;

        while (c->calls == calls && now_usec() < deadline)
                assert_true(sd_event_run(e, 100 * USEC_PER_MSEC) >= 0);
        assert_int_equal(c->calls, calls + 1);
}

static void async_load_delivers_metadata_from_the_loop(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(fence_agent_metadata_load_freep) struct
                fence_agent_metadata_load *l = NULL,
                                          *hit = NULL;
        struct load_capture c = {}, cached = {};

        fence_agent_cache_flush();
        assert_int_equal(haven_loop_new(&e), 0);

        assert_int_equal(fence_agent_metadata_load_async(e, "fence_apc_snmp",
                                                         AGENT_TIMEOUT_USEC,
                                                         on_loaded, &c, &l),
                         0);
        assert_int_equal(c.calls, 0);
        run_until_called(e, &c);
        assert_int_equal(c.r, 0);
        assert_string_equal(c.m->name, "fence_apc_snmp");

        /* Now cached: still delivered by the loop, not from inside. */
        assert_int_equal(fence_agent_metadata_load_async(
                                 e, "fence_apc_snmp", AGENT_TIMEOUT_USEC,
                                 on_loaded, &cached, &hit),
                         0);
        assert_int_equal(cached.calls, 0);
        run_until_called(e, &cached);
        assert_int_equal(cached.r, 0);
        assert_ptr_equal(cached.m, c.m);

        fence_agent_metadata_free(c.m);
        fence_agent_metadata_free(cached.m);
        assert_int_equal(fence_agent_metadata_load_async(e, "fence_x;rm",
                                                         AGENT_TIMEOUT_USEC,
                                                         on_loaded, &c, &l),
                         -EINVAL);
}

static void async_load_may_be_freed_inside_done_or_float(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct fence_agent_metadata_load *l = NULL;
        struct load_capture owned = {.free_inside = &l}, floating = {};

        fence_agent_cache_flush();
        assert_int_equal(haven_loop_new(&e), 0);

        assert_int_equal(fence_agent_metadata_load_async(e, "fence_ipmilan",
                                                         AGENT_TIMEOUT_USEC,
                                                         on_loaded, &owned, &l),
                         0);
        run_until_called(e, &owned);
        assert_int_equal(owned.r, 0);
        assert_null(l);

        fence_agent_cache_flush();
        assert_int_equal(fence_agent_metadata_load_async(
                                 e, "fence_ipmilan", AGENT_TIMEOUT_USEC,
                                 on_loaded, &floating, NULL),
                         0);
        run_until_called(e, &floating);
        assert_int_equal(floating.r, 0);
        assert_string_equal(floating.m->name, "fence_ipmilan");
        fence_agent_metadata_free(owned.m);
        fence_agent_metadata_free(floating.m);
        assert_true(no_child_left());
}

static void freeing_a_pending_load_kills_the_agent_quietly(void **state) {
        _cleanup_free_ char *dir = make_agent_directory();
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct fence_agent_metadata_load *l = NULL;
        struct load_capture c = {};

        /* A test double that hangs instead of printing metadata. */
        write_file(dir, "fence_hanging", "#!/bin/sh\nexec sleep 30\n", 0755);
        assert_int_equal(fence_agent_set_directory(dir), 0);
        assert_int_equal(haven_loop_new(&e), 0);

        assert_int_equal(fence_agent_metadata_load_async(e, "fence_hanging",
                                                         AGENT_TIMEOUT_USEC,
                                                         on_loaded, &c, &l),
                         0);
        assert_false(no_child_left());
        l = fence_agent_metadata_load_free(l);
        assert_true(no_child_left());
        assert_int_equal(c.calls, 0);

        /* A timeout is reported as such. */
        assert_int_equal(fence_agent_metadata_load_async(e, "fence_hanging",
                                                         200 * USEC_PER_MSEC,
                                                         on_loaded, &c, &l),
                         0);
        run_until_called(e, &c);
        assert_int_equal(c.r, -ETIMEDOUT);
        assert_null(c.m);
        l = fence_agent_metadata_load_free(l);
        remove_tree(dir);
}

/* ==== Validation ==== */

static void valid_parameters_pass(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *apc =
                load("fence_apc_snmp");
        _cleanup_(
                fence_agent_metadata_freep) struct fence_agent_metadata *ipmi =
                load("fence_ipmilan");
        _cleanup_free_ char *max_ascii = repeat("x", 1024);
        _cleanup_free_ char *max_utf8 = repeat("é", 1024); /* 2048 bytes */
        _cleanup_free_ char *text = NULL;

        assert_valid(apc, "{\"agent\": \"fence_apc_snmp\"}");
        assert_valid(apc, "{\"agent\": \"fence_apc_snmp\", \"community\": "
                          "\"private\", \"snmp_version\": \"2c\", \"ipport\": "
                          "161, \"delay\": \"5\", \"power_timeout\": 10, "
                          "\"verbose\": true, \"retry_on\": \"-1\", "
                          "\"shell_timeout\": 0}");
        /* Choices compare without case, as the agents do; integers may
         * name a choice. */
        assert_valid(apc, "{\"agent\": \"fence_apc_snmp\", \"snmp_version\": "
                          "3, \"snmp_sec_level\": \"AUTHPRIV\", "
                          "\"snmp_auth_prot\": \"sha\"}");
        assert_valid(ipmi, "{\"agent\": \"fence_ipmilan\", \"username\": "
                           "\"admin\", \"password\": \" s3cret x \", "
                           "\"lanplus\": \"YES\", \"method\": \"cycle\", "
                           "\"privlvl\": \"operator\", \"ipport\": \"623\", "
                           "\"use_sudo\": false, \"auth\": \"md5\"}");
        assert_true(asprintf(&text,
                             "{\"agent\": \"fence_apc_snmp\", \"community\": "
                             "\"%s\", \"username\": \"%s\"}",
                             max_ascii, max_utf8) > 0);
        assert_valid(apc, text);
}

static void unknown_key_is_refused_by_name(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");

        assert_refused(m,
                       "{\"agent\": \"fence_apc_snmp\", \"colour\": \"red\"}",
                       "colour", "is not a parameter of fence_apc_snmp");
        /* lanplus belongs to fence_ipmilan, not here. */
        assert_refused(m, "{\"agent\": \"fence_apc_snmp\", \"lanplus\": true}",
                       "lanplus", "is not a parameter");
}

static void keys_haven_sets_are_refused(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");
        static const char *const managed[] = {"action", "ip",   "ipaddr",
                                              "plug",   "port", "nodename"};

        for (size_t i = 0; i < ELEMENTSOF(managed); i++) {
                _cleanup_free_ char *text = NULL;

                assert_true(asprintf(&text,
                                     "{\"agent\": \"fence_apc_snmp\", \"%s\": "
                                     "\"1\"}",
                                     managed[i]) > 0);
                assert_refused(m, text, managed[i], "is set by Haven");
        }
}

static void keys_that_defeat_fencing_or_run_programs_are_refused(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");
        static const struct {
                const char *key, *value, *expected;
        } cases[] = {
                {"help", "true", "without fencing"},
                {"version", "false", "without fencing"},
                {"separator", "\";\"", "separator"},
                {"debug_file", "\"/etc/shadow\"", "write a file"},
                {"snmpget_path", "\"/tmp/x\"", "run a program"},
                {"snmpset_path", "\"/usr/bin/snmpset\"", "run a program"},
                {"password_script", "\"cat /x\"", "run a command"},
                {"snmp_priv_passwd_script", "\"x\"", "run a command"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = NULL;

                assert_true(asprintf(&text,
                                     "{\"agent\": \"fence_apc_snmp\", \"%s\": "
                                     "%s}",
                                     cases[i].key, cases[i].value) > 0);
                assert_refused(m, text, cases[i].key, cases[i].expected);
        }
}

static void deprecated_name_is_refused_with_its_replacement(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");

        assert_refused(m, "{\"agent\": \"fence_apc_snmp\", \"login\": \"a\"}",
                       "login", "is deprecated: use \"username\"");
        assert_refused(m, "{\"agent\": \"fence_apc_snmp\", \"passwd\": \"a\"}",
                       "passwd", "use \"password\"");
}

static void missing_required_parameter_is_named(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_virsh");

        /* ip and plug are required too, but Haven fills them in. */
        assert_refused(m, "{\"agent\": \"fence_virsh\"}", "username",
                       "is required by fence_virsh");
        assert_valid(m, "{\"agent\": \"fence_virsh\", \"username\": "
                        "\"root\", \"identity_file\": \"/root/.ssh/id\"}");
}

static void values_of_the_wrong_type_are_refused(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");
        static const struct {
                const char *key, *value, *expected;
        } cases[] = {
                {"ipport", "\"16x1\"", "whole number"},
                {"ipport", "\"\"", "whole number"},
                {"ipport", "\"+5\"", "whole number"},
                {"ipport", "\" 5\"", "whole number"},
                {"ipport", "1.5", "must be a string, a whole number"},
                {"ipport", "\"99999999999999999999\"", "whole number"},
                {"ipport", "true", "whole number"},
                {"power_timeout", "-1", "seconds"},
                {"power_timeout", "\"1.5\"", "seconds"},
                {"power_timeout", "2.5", "must be a string, a whole number"},
                {"verbose", "\"maybe\"", "true or false"},
                {"verbose", "2", "true or false"},
                {"verbose", "1", "true or false"},
                {"verbose", "\"\"", "true or false"},
                {"snmp_version", "\"4\"", "must be one of: 1, 2c, 3"},
                {"snmp_version", "true", "must be one of"},
                {"snmp_version", "\"2 c\"", "must be one of"},
                {"community", "true", "must be a string"},
                {"community", "null", "must be a string, a whole number"},
                {"community", "{\"a\": 1}", "must be a string, a whole"},
                {"community", "[\"a\"]", "must be a string, a whole"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = NULL;

                assert_true(asprintf(&text,
                                     "{\"agent\": \"fence_apc_snmp\", \"%s\": "
                                     "%s}",
                                     cases[i].key, cases[i].value) > 0);
                assert_refused(m, text, cases[i].key, cases[i].expected);
        }
}

static void values_that_could_break_a_line_are_refused(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");
        _cleanup_free_ char *too_long = repeat("x", 1025);
        _cleanup_free_ char *too_long_utf8 = repeat("é", 1025);
        static const struct {
                const char *value, *expected;
        } cases[] = {
                {"a\nb", "control characters"},
                {"private\naction=on", "control characters"},
                {"a\rb", "control characters"},
                {"a\tb", "control characters"},
                {"a\x1b[0m", "control characters"},
                {"a\x7f", "control characters"},
                {"a\xc2\x85", "control characters"}, /* U+0085, NEL */
                {"\xff\xfe", "valid UTF-8"},
                {"caf\xc3", "valid UTF-8"},
                {"\xc0\xaf", "valid UTF-8"},     /* overlong '/' */
                {"\xed\xa0\x80", "valid UTF-8"}, /* a surrogate */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_value_refused(m, "community",
                                     json_object_new_string(cases[i].value),
                                     cases[i].expected);
        assert_value_refused(m, "community",
                             json_object_new_string_len("a\0b", 3), "NUL");
        assert_value_refused(m, "community", json_object_new_string(too_long),
                             "at most 1024 characters");
        assert_value_refused(m, "username",
                             json_object_new_string(too_long_utf8),
                             "at most 1024 characters");
}

static void keys_with_bad_characters_are_refused(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");
        _cleanup_free_ char *long_key = repeat("k", 65);
        const char *keys[] = {"com=munity", "a b", "",    "x\n",   "-x",
                              "ü",          "_x",  "a#b", long_key};

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                assert_value_refused(m, keys[i], json_object_new_string("v"),
                                     "not a valid parameter name");
}

static void agent_entry_must_name_an_installed_agent(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");
        _cleanup_(json_object_putp) struct json_object *array = json("[]");

        assert_refused(m, "{}", "agent", "is required");
        assert_refused(m, "{\"agent\": null}", "agent", "is required");
        assert_refused(m, "{\"agent\": 5}", "agent", "name of a fence agent");
        assert_refused(m, "{\"agent\": \"../bin/sh\"}", "agent",
                       "name of a fence agent");
        assert_refused(m, "{\"agent\": \"fence_x;rm\"}", "agent",
                       "name of a fence agent");
        assert_refused(m, "{\"agent\": \"fence_not_installed_here\"}", "agent",
                       "is not installed");
        assert_int_equal(fence_agent_validate(m, array, NULL, NULL), -EINVAL);
        assert_int_equal(fence_agent_validate(m, NULL, NULL, NULL), -EINVAL);
}

/* ==== The stdin text ==== */

static char *stdin_text(const char *address, const char *outlet,
                        const char *action, const char *parameters, int *ret) {
        _cleanup_(json_object_putp) struct json_object *p =
                parameters ? json(parameters) : NULL;
        char *text = NULL;

        *ret = fence_agent_stdin(address, outlet, action, p, &text);
        return text;
}

static void stdin_text_is_exact(void **state) {
        _cleanup_free_ char *full = NULL, *bare = NULL, *quoted = NULL;
        int r;

        full = stdin_text("198.18.0.10", "3", "off",
                          "{\"agent\": \"fence_apc_snmp\", \"community\": "
                          "\"private\", \"snmp_version\": \"2c\", \"lanplus\": "
                          "true, \"verbose\": false, \"retry_on\": 2}",
                          &r);
        assert_int_equal(r, 0);
        assert_string_equal(full, "action=off\n"
                                  "ip=198.18.0.10\n"
                                  "plug=3\n"
                                  "community=private\n"
                                  "snmp_version=2c\n"
                                  "lanplus=1\n"
                                  "verbose=0\n"
                                  "retry_on=2\n");

        bare = stdin_text(NULL, NULL, "monitor", NULL, &r);
        assert_int_equal(r, 0);
        assert_string_equal(bare, "action=monitor\n");

        /* What the agents would strip (a trailing blank, surrounding
         * quotes) arrives whole inside quotes they remove. */
        quoted = stdin_text(NULL, "node 1 ", "list-status",
                            "{\"password\": \"s3cret \", \"username\": "
                            "\"\\\"admin\\\"\", \"community\": \" lead\"}",
                            &r);
        assert_int_equal(r, 0);
        assert_string_equal(quoted, "action=list-status\n"
                                    "plug=\"node 1 \"\n"
                                    "password=\"s3cret \"\n"
                                    "username=\"\"admin\"\"\n"
                                    "community= lead\n");
}

static void stdin_refuses_what_could_inject_lines(void **state) {
        static const struct {
                const char *address, *outlet, *action, *parameters;
        } cases[] = {
                {"1.2.3.4\naction=on", NULL, "off", NULL},
                {NULL, "3\naction=on", "off", NULL},
                {NULL, "3\r", "off", NULL},
                {"", NULL, "off", NULL},
                {NULL, "", "off", NULL},
                {NULL, NULL, "off\naction=on", NULL},
                {NULL, NULL, "", NULL},
                {NULL, NULL, "Off", NULL},
                {NULL, NULL, "off", "{\"community\": \"a\\nb\"}"},
                {NULL, NULL, "off", "{\"community\": \"a\\u0000b\"}"},
                {NULL, NULL, "off", "{\"action\": \"on\"}"},
                {NULL, NULL, "off", "{\"plug\": \"7\"}"},
                {NULL, NULL, "off", "{\"version\": true}"},
                {NULL, NULL, "off", "{\"ipmitool_path\": \"/bin/sh\"}"},
                {NULL, NULL, "off", "{\"a=b\": \"c\"}"},
                {NULL, NULL, "off", "{\"community\": 1.5}"},
                {NULL, NULL, "off", "{\"community\": null}"},
                {NULL, NULL, "off", "{\"community\": {}}"},
                {NULL, NULL, "off", "[]"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = NULL;
                int r;

                text = stdin_text(cases[i].address, cases[i].outlet,
                                  cases[i].action, cases[i].parameters, &r);
                if (r != -EINVAL)
                        fail_msg("case %zu gave %d: %s", i, r,
                                 text ?: "(null)");
                assert_null(text);
        }
}

/* ==== Running real agents ==== */

/* Binds a UDP port on loopback that nobody answers (held while the test
 * runs, so nothing else takes it). */
static int silent_udp_port(int *ret_fd) {
        struct sockaddr_in a = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        socklen_t len = sizeof(a);
        int fd;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        *ret_fd = fd;
        return ntohs(a.sin_port);
}

static void apc_snmp_against_silent_port_fails_fast_with_message(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                load("fence_apc_snmp");
        _cleanup_(json_object_putp) struct json_object *p = NULL;
        _cleanup_free_ char *text = NULL, *parameters = NULL;
        _cleanup_close_ int fd = -1;
        struct run run;
        int port;

        port = silent_udp_port(&fd);
        /* The agent's own bounds: each snmp command is killed after
         * shell_timeout + login_timeout seconds. The value with a trailing
         * blank shows that quoting reaches the agent unchanged. */
        assert_true(asprintf(&parameters,
                             "{\"agent\": \"fence_apc_snmp\", \"ipport\": %d, "
                             "\"shell_timeout\": 1, \"login_timeout\": 1, "
                             "\"community\": \"pa ss \", \"verbose\": true}",
                             port) > 0);
        p = json(parameters);
        assert_valid(m, parameters);
        assert_int_equal(
                fence_agent_stdin("127.0.0.1", "1", "status", p, &text), 0);

        run_agent("fence_apc_snmp", "status", text, AGENT_TIMEOUT_USEC, &run,
                  NULL);
        assert_int_equal(run.outcome, FENCE_AGENT_FAILED);
        assert_false(run.timed_out);
        assert_true(run.duration_usec < 15 * USEC_PER_SEC);
        assert_string_equal(run.message, "Connection timed out");
        /* verbose=1 logs the snmp command: the community arrived whole. */
        assert_non_null(strstr(run.err, "-c 'pa ss '"));
        run_done(&run);
        assert_true(no_child_left());
}

static void runner_timeout_kills_a_hanging_agent(void **state) {
        _cleanup_free_ char *dir = make_agent_directory();
        struct run run;
        pid_t pid;

        /* A test double for an agent that hangs (a device that never
         * answers and an agent without its own timeout). */
        write_file(dir, "fence_hanging",
                   "#!/bin/sh\necho 'ERROR: still waiting' >&2\nsleep 30\n",
                   0755);
        assert_int_equal(fence_agent_set_directory(dir), 0);

        run_agent("fence_hanging", "off", "action=off\n", 300 * USEC_PER_MSEC,
                  &run, &pid);
        assert_true(run.timed_out);
        assert_int_equal(run.outcome, FENCE_AGENT_FAILED);
        assert_true(run.duration_usec < 5 * USEC_PER_SEC);
        assert_non_null(strstr(run.message, "timed out after 0."));
        assert_non_null(strstr(run.message, "; last message: still waiting"));
        assert_true(kill(pid, 0) < 0 && errno == ESRCH);
        assert_true(no_child_left());
        run_done(&run);
        remove_tree(dir);
}

static void validate_all_and_metadata_run_through_the_runner(void **state) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                NULL;
        struct run run;

        run_agent("fence_apc_snmp", "validate-all",
                  "action=validate-all\nip=127.0.0.1\nplug=1\n",
                  AGENT_TIMEOUT_USEC, &run, NULL);
        assert_int_equal(run.outcome, FENCE_AGENT_OK);
        assert_string_equal(run.message, "ok");
        run_done(&run);

        /* The path fence_agent_path() gives is accepted too. */
        run_agent("/usr/sbin/fence_apc_snmp", "validate-all",
                  "action=validate-all\nplug=1\n", AGENT_TIMEOUT_USEC, &run,
                  NULL);
        assert_int_equal(run.outcome, FENCE_AGENT_FAILED);
        assert_string_equal(run.message,
                            "Failed: You have to enter fence address; "
                            "validate-all failed");
        run_done(&run);

        run_agent("fence_apc_snmp", "metadata", "action=metadata\n",
                  AGENT_TIMEOUT_USEC, &run, NULL);
        assert_int_equal(run.outcome, FENCE_AGENT_OK);
        assert_int_equal(
                fence_agent_metadata_parse(run.out, strlen(run.out), &m), 0);
        assert_string_equal(m->name, "fence_apc_snmp");
        run_done(&run);
}

static void runner_refuses_programs_outside_the_agent_directory(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        static const char *const bad[] = {
                "/bin/sh",
                "/usr/sbin/../bin/sh",
                "/usr/sbin/fence_x;rm",
                "/usr/sbin//fence_apc_snmp",
                "/usr/sbinx/fence_apc_snmp",
                "usr/sbin/fence_apc_snmp",
                "fence_x;rm",
                "../bin/sh",
                "",
        };

        assert_int_equal(haven_loop_new(&e), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (fence_agent_run(e, bad[i], "action=off\n",
                                    AGENT_TIMEOUT_USEC, on_run_done, NULL,
                                    NULL) != -EINVAL)
                        fail_msg("\"%s\" was not refused", bad[i]);
        assert_int_equal(fence_agent_run(e, "fence_not_installed_here", NULL,
                                         AGENT_TIMEOUT_USEC, on_run_done, NULL,
                                         NULL),
                         -ENOENT);
        assert_int_equal(fence_agent_run(e, "fence_apc_snmp", NULL, 0,
                                         on_run_done, NULL, NULL),
                         -EINVAL);
        assert_true(no_child_left());
}

/* ==== Outcomes ==== */

static void status_exit_codes_map_to_on_and_off(void **state) {
        assert_message("status", CLD_EXITED, 0, false, "Status: ON\n", "",
                       FENCE_AGENT_ON, "Status: ON");
        assert_message("status", CLD_EXITED, 2, false, "Status: OFF\n", "",
                       FENCE_AGENT_OFF, "Status: OFF");
        assert_message("status", CLD_EXITED, 0, false, "", "", FENCE_AGENT_ON,
                       "on");
        assert_message("status", CLD_EXITED, 1, false, "",
                       "2026-11-23 04:19:31,976 ERROR: Failed: Unable to "
                       "obtain correct plug status or plug is not "
                       "available\n\n\n",
                       FENCE_AGENT_FAILED,
                       "Failed: Unable to obtain correct plug status or plug "
                       "is not available");
        assert_message("status", CLD_EXITED, 3, false, "", "",
                       FENCE_AGENT_FAILED, "exited with status 3");
        assert_message("monitor", CLD_EXITED, 2, false, "", "", FENCE_AGENT_OFF,
                       "off");
        assert_message("monitor", CLD_EXITED, 0, false, "", "", FENCE_AGENT_OK,
                       "ok");
}

static void action_exit_codes_map_to_ok_and_failed(void **state) {
        assert_message("off", CLD_EXITED, 0, false, "Success: Powered OFF\n",
                       "", FENCE_AGENT_OK, "Success: Powered OFF");
        assert_message("on", CLD_EXITED, 0, false, "Success: Already ON\n",
                       "WARNING:root:Parse error\n", FENCE_AGENT_OK,
                       "Success: Already ON");
        /* 2 means OFF only for status and monitor. */
        assert_message("off", CLD_EXITED, 2, false, "", "", FENCE_AGENT_FAILED,
                       "exited with status 2");
        assert_message("reboot", CLD_EXITED, 1, false, "", "",
                       FENCE_AGENT_FAILED, "exited with status 1");
        assert_message("list", CLD_EXITED, 0, false, "1,node1\n", "",
                       FENCE_AGENT_OK, "ok");
        assert_string_equal(fence_agent_outcome_to_string(FENCE_AGENT_OFF),
                            "off");
        assert_string_equal(fence_agent_outcome_to_string(FENCE_AGENT_FAILED),
                            "failed");
        assert_null(fence_agent_outcome_to_string(_FENCE_AGENT_OUTCOME_MAX));
        assert_null(
                fence_agent_outcome_to_string(_FENCE_AGENT_OUTCOME_INVALID));
}

static void signals_and_timeouts_are_failures(void **state) {
        assert_message("off", CLD_KILLED, SIGSEGV, false, "", "",
                       FENCE_AGENT_FAILED, "killed by signal SIGSEGV");
        assert_message("status", CLD_DUMPED, SIGABRT, false, "",
                       "ERROR: Connection lost\n", FENCE_AGENT_FAILED,
                       "killed by signal SIGABRT; last message: Connection "
                       "lost");
        /* Even an exit status 0 after our timeout is a failure. */
        assert_message("status", CLD_EXITED, 0, true, "Status: ON\n", "",
                       FENCE_AGENT_FAILED, "timed out after 2.5 s");
        assert_message("off", CLD_KILLED, SIGTERM, true, "",
                       "2026-11-23 04:19:31,976 ERROR: Connection timed out\n",
                       FENCE_AGENT_FAILED,
                       "timed out after 2.5 s; last message: Connection "
                       "timed out");
}

static void message_keeps_errors_and_drops_noise(void **state) {
        _cleanup_free_ char *flood = NULL, *message = NULL;
        _cleanup_free_ char *errors = repeat("ERROR: Something went wrong "
                                             "with the device\n"
                                             "ERROR: Another thing\n",
                                             200);
        _cleanup_free_ char *distinct = NULL;

        /* What fence_apc_snmp printed against a silent port, with a stray
         * key: WARNING lines dropped, the two copies of the error (Python's
         * default format, then fencing.py's) reported once. */
        assert_message("status", CLD_EXITED, 1, false, "",
                       "WARNING:root:Parse error: Ignoring unknown option "
                       "'foo=bar'\n\nERROR:root:Connection timed out\n\n\n"
                       "2026-11-23 04:19:36,715 ERROR: Connection timed out"
                       "\n\n\n",
                       FENCE_AGENT_FAILED, "Connection timed out");
        /* Usage hints after the error are noise. */
        assert_message("off", CLD_EXITED, 1, false, "",
                       "2026-11-23 04:19:36,833 ERROR: Failed: You have to "
                       "enter fence address\n\n2026-11-23 04:19:36,833 "
                       "ERROR: Please use '-h' for usage\n\n",
                       FENCE_AGENT_FAILED,
                       "Failed: You have to enter fence address");
        /* Distinct errors are joined. */
        assert_message("off", CLD_EXITED, 1, false, "",
                       "ERROR: Unable to connect/login to fencing device\n"
                       "CRITICAL: giving up\n",
                       FENCE_AGENT_FAILED,
                       "Unable to connect/login to fencing device; giving up");
        /* fence_ipmilan's DeprecationWarning and a traceback: the
         * exception line is what remains. */
        assert_message("off", CLD_EXITED, 1, false, "",
                       "/usr/sbin/fence_ipmilan:5: DeprecationWarning: "
                       "'pipes' is deprecated\n  from pipes import quote\n"
                       "Traceback (most recent call last):\n  File "
                       "\"/usr/sbin/fence_x\", line 3, in <module>\n    "
                       "main()\npexpect.exceptions.EOF: End Of File (EOF)\n",
                       FENCE_AGENT_FAILED,
                       "pexpect.exceptions.EOF: End Of File (EOF)");
        /* A C agent (fence_kdump). */
        assert_message("off", CLD_EXITED, 1, false, "",
                       "[debug]: options {\n[error]: action 'off' requires "
                       "nodename\n",
                       FENCE_AGENT_FAILED,
                       "[error]: action 'off' requires nodename");
        /* Only stdout said something. */
        assert_message("off", CLD_EXITED, 1, false,
                       "\nFailed: Timed out waiting to power OFF\n",
                       "WARNING: slow\n", FENCE_AGENT_FAILED,
                       "Failed: Timed out waiting to power OFF");
        /* Control characters and invalid UTF-8 never reach the UI. */
        assert_message("off", CLD_EXITED, 1, false, "",
                       "ERROR: bad\x1b[31m \xff\xfe device\t\tnäme\x7f\n",
                       FENCE_AGENT_FAILED, "bad [31m ?? device näme");

        /* Long: one line of at most 512 bytes, cut at a character. */
        assert_int_equal(
                outcome("off", CLD_EXITED, 1, false, "", errors, &message),
                FENCE_AGENT_FAILED);
        assert_string_equal(message, "Something went wrong with the device; "
                                     "Another thing");
        free(message);
        flood = repeat("é", 600);
        assert_true(asprintf(&distinct, "ERROR: %s\n", flood) > 0);
        assert_int_equal(
                outcome("off", CLD_EXITED, 1, false, "", distinct, &message),
                FENCE_AGENT_FAILED);
        assert_true(strlen(message) <= FENCE_AGENT_MESSAGE_MAX);
        assert_true(strlen(message) > FENCE_AGENT_MESSAGE_MAX - 6);
        assert_string_equal(message + strlen(message) - 3, "...");
        assert_true(strncmp(message, flood, strlen(message) - 3) == 0);
        free(message);
        message = NULL;
}

/* ==== Outlet lists ==== */

static void assert_list(const char *text, const char *expected_json) {
        _cleanup_(json_object_putp) struct json_object *a = NULL;

        assert_int_equal(fence_agent_parse_list(text, &a), 0);
        assert_string_equal(
                json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                expected_json);
}

static void list_output_becomes_outlets(void **state) {
        assert_list("1,node1\n2,node2\n",
                    "[{\"outlet\":\"1\",\"name\":\"node1\"},"
                    "{\"outlet\":\"2\",\"name\":\"node2\"}]");
        assert_list("", "[]");
        assert_list("N/A\n", "[]");
        assert_list("NOTICE: List option is not working on this device yet\n",
                    "[]");
}

static void odd_list_lines_are_trimmed_or_skipped(void **state) {
        _cleanup_free_ char *long_outlet = repeat("9", 257);
        _cleanup_free_ char *text = NULL;

        assert_true(asprintf(&text,
                             "\n"
                             "  3 , node 3  \r\n"
                             "4,\n"
                             ",orphan\n"
                             "5,name,with,commas\n"
                             "6,caf\xff\n"
                             "7\x01,control\n"
                             "8\xff,bad outlet\n"
                             "%s,too long\n"
                             "10,tab\tname\n"
                             "last,no newline",
                             long_outlet) > 0);
        assert_list(text, "[{\"outlet\":\"3\",\"name\":\"node 3\"},"
                          "{\"outlet\":\"4\",\"name\":\"\"},"
                          "{\"outlet\":\"5\",\"name\":\"name,with,commas\"},"
                          "{\"outlet\":\"6\",\"name\":\"caf?\"},"
                          "{\"outlet\":\"10\",\"name\":\"tab name\"},"
                          "{\"outlet\":\"last\",\"name\":\"no newline\"}]");
}

static void list_beyond_the_limit_is_refused(void **state) {
        _cleanup_(json_object_putp) struct json_object *a = NULL;
        _cleanup_free_ char *lines = repeat("1,n\n", FENCE_AGENT_LIST_MAX);
        _cleanup_free_ char *more = repeat("1,n\n", FENCE_AGENT_LIST_MAX + 1);

        assert_int_equal(fence_agent_parse_list(lines, &a), 0);
        assert_int_equal(json_object_array_length(a), FENCE_AGENT_LIST_MAX);
        json_object_put(TAKE_PTR(a));
        assert_int_equal(fence_agent_parse_list(more, &a), -E2BIG);
        assert_null(a);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(installed_agents_are_listed_sorted,
                                          teardown),
                cmocka_unit_test_teardown(listing_keeps_only_executable_agents,
                                          teardown),
                cmocka_unit_test_teardown(agent_path_resolves_installed_agent,
                                          teardown),
                cmocka_unit_test_teardown(agent_path_refuses_bad_names,
                                          teardown),
                cmocka_unit_test_teardown(
                        agent_path_refuses_files_that_cannot_run, teardown),
                cmocka_unit_test_teardown(
                        apc_snmp_metadata_declares_its_snmp_parameters,
                        teardown),
                cmocka_unit_test_teardown(
                        ipmilan_metadata_declares_lanplus_and_method, teardown),
                cmocka_unit_test_teardown(metadata_is_loaded_once_per_process,
                                          teardown),
                cmocka_unit_test_teardown(
                        metadata_json_hides_deprecated_and_marks_managed,
                        teardown),
                cmocka_unit_test_teardown(malformed_metadata_is_refused,
                                          teardown),
                cmocka_unit_test_teardown(
                        minimal_metadata_parses_to_empty_lists, teardown),
                cmocka_unit_test_teardown(
                        odd_metadata_entries_are_skipped_or_tolerated,
                        teardown),
                cmocka_unit_test_teardown(
                        metadata_load_refuses_bad_and_missing_agents, teardown),
                cmocka_unit_test_teardown(
                        metadata_load_reports_agents_that_misbehave, teardown),
                cmocka_unit_test_teardown(
                        async_load_delivers_metadata_from_the_loop, teardown),
                cmocka_unit_test_teardown(
                        async_load_may_be_freed_inside_done_or_float, teardown),
                cmocka_unit_test_teardown(
                        freeing_a_pending_load_kills_the_agent_quietly,
                        teardown),
                cmocka_unit_test_teardown(valid_parameters_pass, teardown),
                cmocka_unit_test_teardown(unknown_key_is_refused_by_name,
                                          teardown),
                cmocka_unit_test_teardown(keys_haven_sets_are_refused,
                                          teardown),
                cmocka_unit_test_teardown(
                        keys_that_defeat_fencing_or_run_programs_are_refused,
                        teardown),
                cmocka_unit_test_teardown(
                        deprecated_name_is_refused_with_its_replacement,
                        teardown),
                cmocka_unit_test_teardown(missing_required_parameter_is_named,
                                          teardown),
                cmocka_unit_test_teardown(values_of_the_wrong_type_are_refused,
                                          teardown),
                cmocka_unit_test_teardown(
                        values_that_could_break_a_line_are_refused, teardown),
                cmocka_unit_test_teardown(keys_with_bad_characters_are_refused,
                                          teardown),
                cmocka_unit_test_teardown(
                        agent_entry_must_name_an_installed_agent, teardown),
                cmocka_unit_test_teardown(stdin_text_is_exact, teardown),
                cmocka_unit_test_teardown(stdin_refuses_what_could_inject_lines,
                                          teardown),
                cmocka_unit_test_teardown(
                        apc_snmp_against_silent_port_fails_fast_with_message,
                        teardown),
                cmocka_unit_test_teardown(runner_timeout_kills_a_hanging_agent,
                                          teardown),
                cmocka_unit_test_teardown(
                        validate_all_and_metadata_run_through_the_runner,
                        teardown),
                cmocka_unit_test_teardown(
                        runner_refuses_programs_outside_the_agent_directory,
                        teardown),
                cmocka_unit_test_teardown(status_exit_codes_map_to_on_and_off,
                                          teardown),
                cmocka_unit_test_teardown(
                        action_exit_codes_map_to_ok_and_failed, teardown),
                cmocka_unit_test_teardown(signals_and_timeouts_are_failures,
                                          teardown),
                cmocka_unit_test_teardown(message_keeps_errors_and_drops_noise,
                                          teardown),
                cmocka_unit_test_teardown(list_output_becomes_outlets,
                                          teardown),
                cmocka_unit_test_teardown(odd_list_lines_are_trimmed_or_skipped,
                                          teardown),
                cmocka_unit_test_teardown(list_beyond_the_limit_is_refused,
                                          teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
