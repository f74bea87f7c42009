/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for the native APC driver (daemons/fenced/fenced-apc.h): the
 * pure pieces (identification, values, answers, outlet resolution,
 * parameters) on hand-built net-snmp PDUs, and whole operations against
 * real SNMP agents on 127.0.0.1: the lab's haven-pdusim (rPDU and
 * MasterSwitch models, with and without a switching delay) and Debian's
 * snmpd (a device that is not an APC power strip). The group setup starts
 * each agent on a free port and waits until it listens; the teardown stops
 * them by PID. What a strip did is read from its own state file, not from
 * the driver. haven-pdusim is looked up next to this binary's tree, then in
 * build/bin ($HAVEN_PDUSIM overrides).
 *
 * Bad inputs tried:
 *   sysObjectIDs: empty, APC's prefix cut short, a longer enterprise number
 *     starting with 318 (3180), other vendors, unknown APC products;
 *   values: states, counts and names of the wrong ASN.1 type, states other
 *     than on/off, counts 0, -1 and 257, names with control characters, NUL
 *     bytes, invalid UTF-8 (stray continuation, overlong, surrogate, cut
 *     sequence), names longer than APC_NAME_MAX;
 *   answers: no answer, a REPORT, fewer or more variables, another OID,
 *     noSuchName/notWritable/genErr error-status, errindex 0 and beyond the
 *     variables, noSuchInstance/endOfMibView exceptions;
 *   outlets: "", "0", beyond the count, 20-digit numbers, "+3", "-1",
 *     " node3", different case, names on a device without names, a name
 *     two outlets have;
 *   parameters: unknown keys, wrong types (a string, a float and a bool
 *     for numbers, a number and an array for strings), every range left on
 *     both sides, unknown enum values, v3 keys with v1/v2c, community
 *     keys with v3, v3 without username or passwords, passwords of 7
 *     characters, keys the security level excludes, parameters that are not
 *     an object;
 *   requests: not an object, missing address/action, "reboot", outlets
 *     missing, empty, not strings, empty strings, too many, expect_outlets
 *     0, an address with a transport prefix;
 *   devices: a wrong community, a read-only community for switching, a
 *     wrong write community, wrong v3 auth and priv passwords, an unknown
 *     v3 user, no device on the port, a device that is not APC's (and the
 *     same with oid_family forced), a switching delay longer than
 *     power_timeout_ms.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include "haven/json.h"
#include "haven/loop.h"

#include "../../daemons/fenced/fenced-apc.h"

#include "test-tmp.h"
#include "test-util.h"

#define START_TIMEOUT_USEC (10u * USEC_PER_SEC)
#define STOP_TIMEOUT_USEC (3u * USEC_PER_SEC)
/* Generous for a loaded machine or ASan, far below the 2 s default
 * bound of a request with its retry. */
#define QUICKLY_MS 1000.0

#define V3 "\"snmp_version\":\"3\",\"username\":\"fence\""
#define V3_KEYS                                                                \
        "\"auth_password\":\"authpass1\",\"priv_password\":\"privpass1\""

static const oid rpdu_id[] = {1, 3, 6, 1, 4, 1, 318, 1, 3, 4, 5};
static const oid state_column[] = {1, 3,  6, 1, 4, 1, 318, 1,
                                   1, 12, 3, 5, 1, 1, 4};

/* ==== Helpers ==== */

/* A PDU as it comes off the wire: snmp_pdu_create() leaves errstat and
 * errindex at "default" (-1), which no answer carries. */
static netsnmp_pdu *pdu_new(int command) {
        netsnmp_pdu *pdu = snmp_pdu_create(command);

        assert_non_null(pdu);
        pdu->errstat = SNMP_ERR_NOERROR;
        pdu->errindex = 0;
        return pdu;
}

static void add_var(netsnmp_pdu *pdu, const oid *name, size_t length,
                    u_char type, const void *value, size_t size) {
        assert_non_null(
                snmp_pdu_add_variable(pdu, name, length, type, value, size));
}

static void add_integer(netsnmp_pdu *pdu, const oid *name, size_t length,
                        long value) {
        add_var(pdu, name, length, ASN_INTEGER, &value, sizeof value);
}

/* state_column.index */
static void state_oid(unsigned index, oid *name, size_t *length) {
        memcpy(name, state_column, sizeof state_column);
        name[ELEMENTSOF(state_column)] = index;
        *length = ELEMENTSOF(state_column) + 1;
}

/* A one-variable PDU holding type/value, for the value interpreters. */
static netsnmp_pdu *value_pdu(u_char type, const void *value, size_t size) {
        netsnmp_pdu *pdu = pdu_new(SNMP_MSG_RESPONSE);

        add_var(pdu, state_column, ELEMENTSOF(state_column), type, value, size);
        return pdu;
}

static netsnmp_pdu *integer_pdu(long value) {
        return value_pdu(ASN_INTEGER, &value, sizeof value);
}

/* ==== Results ==== */

static const char *string_at(struct json_object *obj, const char *key) {
        struct json_object *v;

        if (!obj || !json_object_object_get_ex(obj, key, &v) || !v)
                return NULL;
        assert_true(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

static struct json_object *error_of(struct json_object *result) {
        struct json_object *e = NULL;

        (void) json_object_object_get_ex(result, "error", &e);
        return e;
}

static bool result_ok(struct json_object *result) {
        struct json_object *ok;

        assert_true(json_object_object_get_ex(result, "ok", &ok));
        assert_true(json_object_is_type(ok, json_type_boolean));
        return json_object_get_boolean(ok);
}

static double elapsed_ms(struct json_object *result) {
        struct json_object *v;

        assert_true(json_object_object_get_ex(result, "elapsed_ms", &v));
        assert_true(json_object_is_type(v, json_type_double));
        return json_object_get_double(v);
}

static size_t outlets_of(struct json_object *result) {
        struct json_object *v;

        assert_true(json_object_object_get_ex(result, "outlets", &v));
        assert_true(json_object_is_type(v, json_type_array));
        return json_object_array_length(v);
}

static struct json_object *outlet_at(struct json_object *result, size_t i) {
        struct json_object *v;

        assert_true(json_object_object_get_ex(result, "outlets", &v));
        assert_true(i < json_object_array_length(v));
        return json_object_array_get_idx(v, i);
}

static int64_t int_at(struct json_object *obj, const char *key) {
        struct json_object *v;

        assert_true(json_object_object_get_ex(obj, key, &v));
        assert_true(json_object_is_type(v, json_type_int));
        return json_object_get_int64(v);
}

static bool bool_at(struct json_object *obj, const char *key) {
        struct json_object *v;

        assert_true(json_object_object_get_ex(obj, key, &v));
        assert_true(json_object_is_type(v, json_type_boolean));
        return json_object_get_boolean(v);
}

/* What every result must hold, ok or not: the keys, and an error exactly
 * when not ok, with a code and a message. */
static void check_result_shape(struct json_object *result) {
        static const char *const keys[] = {
                "ok",           "action",     "address",
                "model",        "oid_family", "sys_object_id",
                "outlet_count", "outlets",    "elapsed_ms",
        };
        struct json_object *e;

        assert_true(json_object_is_type(result, json_type_object));
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                assert_true(json_object_object_get_ex(result, keys[i], NULL));
        (void) outlets_of(result);
        assert_true(elapsed_ms(result) >= 0);
        e = error_of(result);
        if (result_ok(result)) {
                assert_null(e);
                return;
        }
        assert_non_null(e);
        assert_non_null(string_at(e, "code"));
        assert_non_null(string_at(e, "message"));
        assert_true(strlen(string_at(e, "message")) > 10);
        assert_true(json_object_object_get_ex(e, "field", NULL));
}

/* Runs the request (format is JSON with printf conversions) and returns
 * its result, checked for shape. */
_printf_(1, 2) static struct json_object *run(const char *format, ...) {
        _cleanup_(json_object_putp) struct json_object *request = NULL;
        struct json_object *result = NULL;
        char text[2048];
        va_list ap;
        int n;

        va_start(ap, format);
        n = vsnprintf(text, sizeof text, format, ap);
        va_end(ap);
        assert_true(n > 0 && (size_t) n < sizeof text);

        request = json(text);
        assert_int_equal(apc_device_op(request, &result), 0);
        assert_non_null(result);
        check_result_shape(result);
        return result;
}

static void assert_ok(struct json_object *result) {
        if (!result_ok(result))
                fail_msg("expected ok, got %s",
                         json_object_to_json_string(result));
}

/* Not ok, with this error code and field (NULL: none). */
static void assert_failed(struct json_object *result, const char *code,
                          const char *field) {
        struct json_object *e = error_of(result);

        if (result_ok(result))
                fail_msg("expected error %s, got %s", code,
                         json_object_to_json_string(result));
        assert_string_equal(string_at(e, "code"), code);
        if (field)
                assert_string_equal(string_at(e, "field"), field);
        else
                assert_null(string_at(e, "field"));
}

static const char *message_of(struct json_object *result) {
        return string_at(error_of(result), "message");
}

/* ==== Agents ==== */

struct agent {
        pid_t pid;
        unsigned port;
        char dir[64];
};

/* The group's agents, started once for all tests (one group, so that
 * tools/run-unit counts every test). */
struct agents {
        struct agent rpdu;         /* 8 outlets, names, a v3 user */
        struct agent masterswitch; /* 4 outlets, the old table */
        struct agent delay;        /* rPDU switching 300 ms late */
        struct agent snmpd;        /* Debian's snmpd: not a power strip */
};

#define AGENT(state, which) (&((struct agents *) *(state))->which)

/* A UDP port on 127.0.0.1 that was free a moment ago. */
static unsigned free_udp_port(void) {
        struct sockaddr_in a = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        socklen_t size = sizeof a;
        int fd;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &size), 0);
        close(fd);
        return ntohs(a.sin_port);
}

/* The program next to this test's build tree: $HAVEN_PDUSIM, then
 * <tree>/bin/NAME for this test's tree, then build/bin/NAME (the plain
 * tree serves the ASan tests too). */
static const char *program_path(const char *env, const char *name) {
        static char path[PATH_MAX + 64];
        char self[PATH_MAX], *slash;
        ssize_t n;

        if (env && getenv(env))
                return getenv(env);
        n = readlink("/proc/self/exe", self, sizeof self - 1);
        assert_true(n > 0);
        self[n] = '\0';
        slash = strrchr(self, '/'); /* <tree>/tests/test-fenced-apc */
        assert_non_null(slash);
        *slash = '\0';
        snprintf(path, sizeof path, "%s/../bin/%s", self, name);
        if (access(path, X_OK) == 0)
                return path;
        snprintf(path, sizeof path, "%s/../../build/bin/%s", self, name);
        if (access(path, X_OK) == 0)
                return path;
        fail_msg("%s not found: build it first (make build/bin/%s)", name,
                 name);
        return NULL;
}

/* Whether file (in dir) contains text. */
static bool file_contains(const char *dir, const char *file, const char *text) {
        char path[PATH_MAX], buf[16384];
        _cleanup_close_ int fd = -1;
        ssize_t n;

        snprintf(path, sizeof path, "%s/%s", dir, file);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        return strstr(buf, text) != NULL;
}

/* Starts argv (argv[0] a path) with stdin, stdout and stderr on /dev/null
 * and waits until dir/log contains ready. Fails the test when it exits
 * first or takes too long. */
static void agent_start(struct agent *a, char **argv, const char *log,
                        const char *ready) {
        uint64_t deadline = now_usec() + START_TIMEOUT_USEC;
        int status;

        a->pid = fork();
        assert_true(a->pid >= 0);
        if (a->pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);

                if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
                    dup2(null, 2) < 0)
                        _exit(126);
                (void) setenv("MIBS", "", 1);
                (void) setenv("SNMP_PERSISTENT_DIR", a->dir, 1);
                execv(argv[0], argv);
                _exit(127);
        }
        while (!file_contains(a->dir, log, ready)) {
                if (waitpid(a->pid, &status, WNOHANG) == a->pid) {
                        a->pid = 0;
                        fail_msg("%s exited before it listened (status "
                                 "%d)",
                                 argv[0], status);
                }
                if (now_usec() > deadline)
                        fail_msg(
                                "%s did not listen within %u s", argv[0],
                                (unsigned) (START_TIMEOUT_USEC / USEC_PER_SEC));
                (void) usleep(10000);
        }
}

/* SIGTERM, SIGKILL when it lingers, then reaps; removes its directory. */
static void agent_stop(struct agent *a) {
        uint64_t deadline = now_usec() + STOP_TIMEOUT_USEC;

        if (a->pid > 0) {
                (void) kill(a->pid, SIGTERM);
                while (waitpid(a->pid, NULL, WNOHANG) != a->pid) {
                        if (now_usec() > deadline) {
                                (void) kill(a->pid, SIGKILL);
                                (void) waitpid(a->pid, NULL, 0);
                                break;
                        }
                        (void) usleep(10000);
                }
                a->pid = 0;
        }
        if (a->dir[0])
                remove_tree(a->dir);
        a->dir[0] = '\0';
}

/* Starts haven-pdusim on a free port with its state in a new directory and
 * the options in extra (NULL-terminated). */
static void pdusim_start(struct agent *a, const char *const *extra) {
        char listen[64], log[128];
        char *argv[64];
        size_t n = 0;

        snprintf(a->dir, sizeof a->dir, "/tmp/test-fenced-apc-XXXXXX");
        assert_non_null(mkdtemp(a->dir));
        a->port = free_udp_port();
        snprintf(listen, sizeof listen, "127.0.0.1:%u", a->port);
        snprintf(log, sizeof log, "%s/pdusim.log", a->dir);

        argv[n++] = (char *) program_path("HAVEN_PDUSIM", "haven-pdusim");
        argv[n++] = (char *) "--listen";
        argv[n++] = listen;
        argv[n++] = (char *) "--state-dir";
        argv[n++] = a->dir;
        argv[n++] = (char *) "--log";
        argv[n++] = log;
        for (; extra && *extra; extra++) {
                assert_true(n < ELEMENTSOF(argv) - 1);
                argv[n++] = (char *) *extra;
        }
        argv[n] = NULL;
        agent_start(a, argv, "pdusim.log", "Listening on");
}

/* Whether outlet n is on, from the simulator's own state file; fails the
 * test when the file does not say. */
static bool pdusim_outlet_on(const struct agent *a, unsigned n) {
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        struct json_object *list;
        char path[PATH_MAX];

        snprintf(path, sizeof path, "%s/outlets.json", a->dir);
        root = json_object_from_file(path);
        assert_non_null(root);
        assert_true(json_object_object_get_ex(root, "outlets", &list));
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                struct json_object *o = json_object_array_get_idx(list, i);

                if (int_at(o, "outlet") == (int64_t) n)
                        return bool_at(o, "on");
        }
        fail_msg("outlet %u is not in %s", n, path);
        return false;
}

/* Waits up to timeout_usec for outlet n to read on (or off) in the state
 * file. */
static bool pdusim_outlet_becomes(const struct agent *a, unsigned n, bool on,
                                  uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        while (pdusim_outlet_on(a, n) != on) {
                if (now_usec() > deadline)
                        return false;
                (void) usleep(10000);
        }
        return true;
}

/* ==== Pure: identification and values ==== */

static void sys_object_id_identifies_apc_models(void **state) {
        static const oid rpdu_child[] = {1, 3, 6, 1, 4, 1, 318, 1, 3, 4, 5, 1};
        static const oid masterswitch_v2[] = {1,   3, 6, 1, 4, 1,
                                              318, 1, 3, 4, 2};
        static const oid msp[] = {1, 3, 6, 1, 4, 1, 318, 1, 3, 4, 4};
        static const oid unknown_product[] = {1,   3, 6, 1, 4, 1,
                                              318, 1, 3, 4, 99};
        static const oid ups[] = {1, 3, 6, 1, 4, 1, 318, 1, 3, 2, 7};
        static const oid enterprise[] = {1, 3, 6, 1, 4, 1, 318};
        enum apc_family family;
        const char *model;

        assert_int_equal(apc_model_from_sys_object_id(
                                 rpdu_id, ELEMENTSOF(rpdu_id), &family, &model),
                         0);
        assert_int_equal(family, APC_FAMILY_RPDU);
        assert_string_equal(model, "rPDU");

        assert_int_equal(apc_model_from_sys_object_id(rpdu_child,
                                                      ELEMENTSOF(rpdu_child),
                                                      &family, &model),
                         0);
        assert_int_equal(family, APC_FAMILY_RPDU);

        assert_int_equal(apc_model_from_sys_object_id(
                                 masterswitch_v2, ELEMENTSOF(masterswitch_v2),
                                 &family, &model),
                         0);
        assert_int_equal(family, APC_FAMILY_MASTERSWITCH);
        assert_string_equal(model, "MasterSwitch V2");

        assert_int_equal(apc_model_from_sys_object_id(msp, ELEMENTSOF(msp),
                                                      &family, &model),
                         0);
        assert_int_equal(family, APC_FAMILY_MASTERSWITCH);
        assert_string_equal(model, "MasterSwitch Plus");

        assert_int_equal(apc_model_from_sys_object_id(
                                 unknown_product, ELEMENTSOF(unknown_product),
                                 &family, &model),
                         0);
        assert_int_equal(family, APC_FAMILY_MASTERSWITCH);
        assert_string_equal(model, "APC device");

        assert_int_equal(apc_model_from_sys_object_id(ups, ELEMENTSOF(ups),
                                                      &family, &model),
                         0);
        assert_string_equal(model, "APC device");

        assert_int_equal(apc_model_from_sys_object_id(enterprise,
                                                      ELEMENTSOF(enterprise),
                                                      NULL, NULL),
                         0);
}

static void sys_object_id_of_other_vendors_is_unsupported(void **state) {
        static const oid linux_agent[] = {1, 3, 6, 1, 4, 1, 8072, 3, 2, 10};
        static const oid longer_number[] = {1, 3, 6, 1, 4, 1, 3180, 1, 3, 4, 5};
        static const oid cut_short[] = {1, 3, 6, 1, 4, 1};
        static const oid tripplite[] = {1, 3, 6, 1, 4, 1, 850, 1};

        assert_int_equal(apc_model_from_sys_object_id(linux_agent,
                                                      ELEMENTSOF(linux_agent),
                                                      NULL, NULL),
                         -EOPNOTSUPP);
        assert_int_equal(apc_model_from_sys_object_id(longer_number,
                                                      ELEMENTSOF(longer_number),
                                                      NULL, NULL),
                         -EOPNOTSUPP);
        assert_int_equal(apc_model_from_sys_object_id(
                                 cut_short, ELEMENTSOF(cut_short), NULL, NULL),
                         -EOPNOTSUPP);
        assert_int_equal(apc_model_from_sys_object_id(
                                 tripplite, ELEMENTSOF(tripplite), NULL, NULL),
                         -EOPNOTSUPP);
        assert_int_equal(apc_model_from_sys_object_id(NULL, 0, NULL, NULL),
                         -EOPNOTSUPP);
}

static void state_values_map_to_on_off_unknown(void **state) {
        static const struct {
                long value;
                enum apc_state state;
        } cases[] = {
                {1, APC_STATE_ON},
                {2, APC_STATE_OFF},
                {3, APC_STATE_UNKNOWN},
                {4, APC_STATE_UNKNOWN},
                {0, APC_STATE_UNKNOWN},
                {-1, APC_STATE_UNKNOWN},
                {LONG_MAX, APC_STATE_UNKNOWN},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                for (enum apc_family f = 0; f < _APC_FAMILY_MAX; f++) {
                        netsnmp_pdu *pdu = integer_pdu(cases[i].value);

                        assert_int_equal(
                                apc_state_from_value(f, pdu->variables),
                                cases[i].state);
                        snmp_free_pdu(pdu);
                }
        assert_string_equal(apc_state_to_string(APC_STATE_OFF), "off");
        assert_null(apc_state_to_string(_APC_STATE_MAX));
        assert_string_equal(apc_family_to_string(APC_FAMILY_MASTERSWITCH),
                            "masterswitch");
}

static void state_of_wrong_type_is_refused(void **state) {
        long one = 1;
        netsnmp_pdu *text = value_pdu(ASN_OCTET_STR, "1", 1),
                    *counter = value_pdu(ASN_COUNTER, &one, sizeof one),
                    *null = value_pdu(ASN_NULL, NULL, 0),
                    *missing = value_pdu(SNMP_NOSUCHINSTANCE, NULL, 0);

        assert_int_equal(apc_state_from_value(APC_FAMILY_RPDU, text->variables),
                         -EBADMSG);
        assert_int_equal(
                apc_state_from_value(APC_FAMILY_RPDU, counter->variables),
                -EBADMSG);
        assert_int_equal(apc_state_from_value(APC_FAMILY_RPDU, null->variables),
                         -EBADMSG);
        assert_int_equal(apc_state_from_value(APC_FAMILY_MASTERSWITCH,
                                              missing->variables),
                         -EBADMSG);
        assert_int_equal(apc_state_from_value(APC_FAMILY_RPDU, NULL), -EBADMSG);
        snmp_free_pdu(text);
        snmp_free_pdu(counter);
        snmp_free_pdu(null);
        snmp_free_pdu(missing);
}

static void outlet_count_must_be_plausible(void **state) {
        static const struct {
                long value;
                int r;
        } cases[] = {
                {8, 0},
                {1, 0},
                {APC_OUTLETS_MAX, 0},
                {0, -ERANGE},
                {-1, -ERANGE},
                {APC_OUTLETS_MAX + 1, -ERANGE},
                {LONG_MIN, -ERANGE},
        };
        netsnmp_pdu *text = value_pdu(ASN_OCTET_STR, "8", 1);
        unsigned count;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                netsnmp_pdu *pdu = integer_pdu(cases[i].value);

                count = 12345;
                assert_int_equal(apc_count_from_value(pdu->variables, &count),
                                 cases[i].r);
                if (cases[i].r == 0)
                        assert_int_equal(count, cases[i].value);
                else
                        assert_int_equal(count, 12345);
                snmp_free_pdu(pdu);
        }
        assert_int_equal(apc_count_from_value(text->variables, &count),
                         -EBADMSG);
        snmp_free_pdu(text);
}

static void name_is_made_safe_to_show(void **state) {
        static const struct {
                const char *bytes;
                size_t size;
                const char *name;
        } cases[] = {
                {"node3", 5, "node3"},
                {"", 0, ""},
                {"K\xc3\xbc"
                 "che",
                 6,
                 "K\xc3\xbc"
                 "che"},
                {"a\nb\tc\x7f", 6, "a?b?c?"},
                {"no\0de", 5, "no?de"},
                {"\xff\xfe", 2, "??"},
                {"\x80x", 2, "?x"},              /* stray continuation */
                {"\xc0\x80", 2, "??"},           /* overlong NUL */
                {"\xed\xa0\x80", 3, "???"},      /* surrogate */
                {"ab\xe2\x82", 4, "ab??"},       /* cut sequence */
                {"\xf4\x90\x80\x80", 4, "????"}, /* beyond U+10FFFF */
        };
        char long_name[200], *name = NULL;
        netsnmp_pdu *pdu;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                pdu = value_pdu(ASN_OCTET_STR, cases[i].bytes, cases[i].size);
                assert_int_equal(apc_name_from_value(pdu->variables, &name), 0);
                assert_string_equal(name, cases[i].name);
                free(name);
                snmp_free_pdu(pdu);
        }

        /* Cut at APC_NAME_MAX bytes, inside a two-byte sequence. */
        memset(long_name, 'x', sizeof long_name);
        long_name[APC_NAME_MAX - 1] = '\xc3';
        long_name[APC_NAME_MAX] = '\xa9';
        pdu = value_pdu(ASN_OCTET_STR, long_name, sizeof long_name);
        assert_int_equal(apc_name_from_value(pdu->variables, &name), 0);
        assert_int_equal(strlen(name), APC_NAME_MAX);
        assert_int_equal(name[APC_NAME_MAX - 1], '?');
        free(name);
        snmp_free_pdu(pdu);

        pdu = integer_pdu(3);
        assert_int_equal(apc_name_from_value(pdu->variables, &name), -EBADMSG);
        snmp_free_pdu(pdu);
}

/* ==== Pure: answers ==== */

/* A GET of the states of outlets 3 and 4. */
static netsnmp_pdu *state_request(int command) {
        netsnmp_pdu *pdu = pdu_new(command);
        oid name[MAX_OID_LEN];
        size_t length;

        for (unsigned i = 3; i <= 4; i++) {
                state_oid(i, name, &length);
                if (command == SNMP_MSG_SET)
                        add_integer(pdu, name, length, 2);
                else
                        add_var(pdu, name, length, ASN_NULL, NULL, 0);
        }
        return pdu;
}

/* A RESPONSE naming outlets first..last with INTEGER 2. */
static netsnmp_pdu *state_response(unsigned first, unsigned last) {
        netsnmp_pdu *pdu = pdu_new(SNMP_MSG_RESPONSE);
        oid name[MAX_OID_LEN];
        size_t length;

        for (unsigned i = first; i <= last; i++) {
                state_oid(i, name, &length);
                add_integer(pdu, name, length, 2);
        }
        return pdu;
}

static void matching_answer_is_accepted(void **state) {
        netsnmp_pdu *request = state_request(SNMP_MSG_GET),
                    *response = state_response(3, 4);
        size_t index = 7;
        long status = 7;

        assert_int_equal(apc_answer_check(request, response, &index, &status),
                         0);
        assert_int_equal(index, SIZE_MAX);
        assert_int_equal(status, 0);
        assert_int_equal(apc_answer_check(request, response, NULL, NULL), 0);
        snmp_free_pdu(request);
        snmp_free_pdu(response);
}

static void answer_not_matching_request_is_refused(void **state) {
        netsnmp_pdu *request = state_request(SNMP_MSG_GET), *response;
        size_t index;

        assert_int_equal(apc_answer_check(request, NULL, &index, NULL),
                         -EBADMSG);

        response = state_response(3, 3); /* one variable short */
        assert_int_equal(apc_answer_check(request, response, &index, NULL),
                         -EBADMSG);
        snmp_free_pdu(response);

        response = state_response(3, 5); /* one too many */
        assert_int_equal(apc_answer_check(request, response, &index, NULL),
                         -EBADMSG);
        snmp_free_pdu(response);

        response = state_response(4, 5); /* other OIDs */
        assert_int_equal(apc_answer_check(request, response, &index, NULL),
                         -EBADMSG);
        assert_int_equal(index, 0);
        snmp_free_pdu(response);

        response = state_response(3, 4);
        response->command = SNMP_MSG_REPORT;
        assert_int_equal(apc_answer_check(request, response, &index, NULL),
                         -EBADMSG);
        snmp_free_pdu(response);
        snmp_free_pdu(request);
}

static void error_status_of_get_and_set_is_classified(void **state) {
        netsnmp_pdu *get = state_request(SNMP_MSG_GET),
                    *set = state_request(SNMP_MSG_SET),
                    *response = state_response(3, 4);
        size_t index;
        long status;

        response->errstat = SNMP_ERR_NOSUCHNAME;
        response->errindex = 2;
        assert_int_equal(apc_answer_check(get, response, &index, &status),
                         -ENOENT);
        assert_int_equal(index, 1);
        assert_int_equal(status, SNMP_ERR_NOSUCHNAME);
        /* v1's answer to a SET with a read-only community. */
        assert_int_equal(apc_answer_check(set, response, &index, &status),
                         -EACCES);

        response->errstat = SNMP_ERR_NOTWRITABLE;
        response->errindex = 0;
        assert_int_equal(apc_answer_check(set, response, &index, &status),
                         -EACCES);
        assert_int_equal(index, SIZE_MAX);
        response->errstat = SNMP_ERR_NOACCESS;
        assert_int_equal(apc_answer_check(set, response, &index, &status),
                         -EACCES);

        response->errstat = SNMP_ERR_GENERR;
        response->errindex = 99; /* beyond the request's variables */
        assert_int_equal(apc_answer_check(set, response, &index, &status),
                         -EPROTO);
        assert_int_equal(status, SNMP_ERR_GENERR);
        assert_int_equal(index, SIZE_MAX);
        assert_int_equal(apc_answer_check(get, response, &index, &status),
                         -EPROTO);
        response->errstat = SNMP_ERR_NOTWRITABLE; /* nonsense for a GET */
        assert_int_equal(apc_answer_check(get, response, &index, &status),
                         -EPROTO);

        snmp_free_pdu(get);
        snmp_free_pdu(set);
        snmp_free_pdu(response);
}

static void missing_object_in_answer_is_noticed(void **state) {
        netsnmp_pdu *request = state_request(SNMP_MSG_GET),
                    *response = pdu_new(SNMP_MSG_RESPONSE);
        oid name[MAX_OID_LEN];
        size_t length, index;

        state_oid(3, name, &length);
        add_integer(response, name, length, 1);
        state_oid(4, name, &length);
        add_var(response, name, length, SNMP_NOSUCHINSTANCE, NULL, 0);
        assert_int_equal(apc_answer_check(request, response, &index, NULL),
                         -ENOENT);
        assert_int_equal(index, 1);
        response->variables->next_variable->type = SNMP_ENDOFMIBVIEW;
        assert_int_equal(apc_answer_check(request, response, &index, NULL),
                         -ENOENT);
        response->variables->type = SNMP_NOSUCHOBJECT;
        assert_int_equal(apc_answer_check(request, response, &index, NULL),
                         -ENOENT);
        assert_int_equal(index, 0);
        snmp_free_pdu(request);
        snmp_free_pdu(response);
}

/* ==== Pure: outlets ==== */

static void outlet_is_resolved_by_number_or_exact_name(void **state) {
        char *names[] = {(char *) "Outlet 1", NULL,           (char *) "node3",
                         (char *) "web",      (char *) "web", (char *) "7"};
        unsigned index = 0, number;

        assert_int_equal(apc_outlet_resolve("3", 6, names, &index), 0);
        assert_int_equal(index, 3);
        assert_int_equal(apc_outlet_resolve("03", 6, names, &index), 0);
        assert_int_equal(index, 3);
        assert_int_equal(apc_outlet_resolve("node3", 6, names, &index), 0);
        assert_int_equal(index, 3);
        assert_int_equal(apc_outlet_resolve("Outlet 1", 6, names, &index), 0);
        assert_int_equal(index, 1);
        /* Digits are a number, even when an outlet is named so. */
        assert_int_equal(apc_outlet_resolve("7", 6, names, &index), -ERANGE);

        assert_int_equal(apc_outlet_resolve("0", 6, names, &index), -ERANGE);
        assert_int_equal(apc_outlet_resolve("9", 6, names, &index), -ERANGE);
        assert_int_equal(
                apc_outlet_resolve("99999999999999999999", 6, names, &index),
                -ERANGE);
        assert_int_equal(apc_outlet_resolve("Node3", 6, names, &index),
                         -ENOENT);
        assert_int_equal(apc_outlet_resolve(" node3", 6, names, &index),
                         -ENOENT);
        assert_int_equal(apc_outlet_resolve("+3", 6, names, &index), -ENOENT);
        assert_int_equal(apc_outlet_resolve("-1", 6, names, &index), -ENOENT);
        assert_int_equal(apc_outlet_resolve("node3", 6, NULL, &index), -ENOENT);
        assert_int_equal(apc_outlet_resolve("web", 6, names, &index),
                         -ENOTUNIQ);
        assert_int_equal(apc_outlet_resolve("", 6, names, &index), -EINVAL);

        assert_true(apc_outlet_is_number("42", &number));
        assert_int_equal(number, 42);
        assert_true(apc_outlet_is_number("4294967296", &number));
        assert_int_equal(number, UINT_MAX);
        assert_false(apc_outlet_is_number("4a", NULL));
        assert_false(apc_outlet_is_number("", NULL));
}

/* ==== Parameters ==== */

static const struct {
        const char *parameters;
        const char *field;
} bad_parameters[] = {
        {"{\"comunity\":\"private\"}", "comunity"},
        {"{\"port\":161,\"extra\":true}", "extra"},
        {"{\"snmp_version\":\"2\"}", "snmp_version"},
        {"{\"snmp_version\":2}", "snmp_version"},
        {"{\"snmp_version\":\"v2c\"}", "snmp_version"},
        {"{\"community\":\"\"}", "community"},
        {"{\"community\":5}", "community"},
        {"{\"read_community\":[\"public\"]}", "read_community"},
        {"{\"port\":\"161\"}", "port"},
        {"{\"port\":0}", "port"},
        {"{\"port\":65536}", "port"},
        {"{\"port\":161.5}", "port"},
        {"{\"timeout_ms\":99}", "timeout_ms"},
        {"{\"timeout_ms\":10001}", "timeout_ms"},
        {"{\"retries\":-1}", "retries"},
        {"{\"retries\":6}", "retries"},
        {"{\"retries\":true}", "retries"},
        {"{\"power_timeout_ms\":99}", "power_timeout_ms"},
        {"{\"power_timeout_ms\":120001}", "power_timeout_ms"},
        {"{\"poll_ms\":9}", "poll_ms"},
        {"{\"poll_ms\":5001}", "poll_ms"},
        {"{\"oid_family\":\"rpdu2\"}", "oid_family"},
        {"{\"username\":\"fence\"}", "username"},
        {"{\"snmp_version\":\"2c\",\"auth_password\":\"authpass1\"}",
         "auth_password"},
        {"{\"snmp_version\":\"3\"}", "username"},
        {"{\"snmp_version\":\"3\",\"username\":\"\"," V3_KEYS "}", "username"},
        {"{" V3 "," V3_KEYS ",\"community\":\"private\"}", "community"},
        {"{" V3 "," V3_KEYS ",\"read_community\":\"public\"}",
         "read_community"},
        {"{" V3 ",\"priv_password\":\"privpass1\"}", "auth_password"},
        {"{" V3 ",\"auth_password\":\"authpass1\"}", "priv_password"},
        {"{" V3 ",\"auth_password\":\"short12\","
         "\"priv_password\":\"privpass1\"}",
         "auth_password"},
        {"{" V3 ",\"auth_password\":\"authpass1\","
         "\"priv_password\":\"short12\"}",
         "priv_password"},
        {"{" V3 "," V3_KEYS ",\"security_level\":\"authpriv\"}",
         "security_level"},
        {"{" V3 "," V3_KEYS ",\"auth_protocol\":\"SHA1\"}", "auth_protocol"},
        {"{" V3 "," V3_KEYS ",\"priv_protocol\":\"3DES\"}", "priv_protocol"},
        {"{" V3 ",\"security_level\":\"noAuthNoPriv\","
         "\"auth_password\":\"authpass1\"}",
         "auth_password"},
        {"{" V3 ",\"security_level\":\"authNoPriv\"," V3_KEYS "}",
         "priv_password"},
        {"{" V3 ",\"security_level\":\"authNoPriv\"}", "auth_password"},
        {"[]", "parameters"},
        {"\"private\"", "parameters"},
};

static void every_bad_parameter_is_refused_with_its_field(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(bad_parameters); i++) {
                _cleanup_(json_object_putp) struct json_object *p =
                        json(bad_parameters[i].parameters);
                _cleanup_free_ char *field = NULL, *message = NULL;

                if (apc_parameters_validate(p, &field, &message) != -EINVAL)
                        fail_msg("accepted: %s", bad_parameters[i].parameters);
                assert_non_null(field);
                assert_non_null(message);
                if (!streq(field, bad_parameters[i].field))
                        fail_msg("%s: field \"%s\", expected \"%s\" (%s)",
                                 bad_parameters[i].parameters, field,
                                 bad_parameters[i].field, message);
                assert_non_null(strstr(message, bad_parameters[i].field));
        }
}

static void bad_parameter_fails_the_operation_before_any_io(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(bad_parameters); i++) {
                _cleanup_(json_object_putp) struct json_object *result = NULL;

                /* A request sent would wait for its answer (2 s by
                 * default): 50 ms means none was sent. */
                result = run("{\"address\":\"127.0.0.1\",\"action\":\"off\","
                             "\"outlets\":[\"1\"],\"parameters\":%s}",
                             bad_parameters[i].parameters);
                assert_failed(result, "bad-parameter", bad_parameters[i].field);
                assert_true(elapsed_ms(result) < 50.0);
                assert_int_equal(outlets_of(result), 0);
        }
}

static void good_parameters_are_accepted(void **state) {
        static const char *const good[] = {
                "{}",
                "null",
                "{\"snmp_version\":\"1\",\"community\":\"private\","
                "\"read_community\":\"public\",\"port\":16161,"
                "\"timeout_ms\":100,\"retries\":0,\"power_timeout_ms\":100,"
                "\"poll_ms\":10,\"oid_family\":\"masterswitch\"}",
                "{\"snmp_version\":\"2c\",\"port\":65535,\"timeout_ms\":10000,"
                "\"retries\":5,\"power_timeout_ms\":120000,"
                "\"poll_ms\":5000,\"oid_family\":\"auto\"}",
                "{" V3 "," V3_KEYS "}",
                "{" V3 "," V3_KEYS ",\"security_level\":\"authPriv\","
                "\"auth_protocol\":\"MD5\",\"priv_protocol\":\"DES\"}",
                "{" V3 ",\"security_level\":\"authNoPriv\","
                "\"auth_password\":\"authpass1\","
                "\"auth_protocol\":\"SHA-256\"}",
                "{" V3 ",\"security_level\":\"noAuthNoPriv\"}",
                "{\"port\":null,\"community\":null,\"username\":null}",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(json_object_putp) struct json_object *p =
                        json_tokener_parse(good[i]);
                char *field = (char *) "x", *message = (char *) "x";

                if (apc_parameters_validate(p, &field, &message) != 0)
                        fail_msg("refused %s: %s: %s", good[i], field, message);
                assert_null(field);
                assert_null(message);
        }
}

static void bad_request_is_refused_with_its_field(void **state) {
        static const struct {
                const char *request;
                const char *field;
        } cases[] = {
                {"{\"action\":\"off\",\"outlets\":[\"1\"]}", "address"},
                {"{\"address\":\"127.0.0.1\",\"outlets\":[\"1\"]}", "action"},
                {"{\"address\":\"127.0.0.1\",\"action\":\"reboot\","
                 "\"outlets\":[\"1\"]}",
                 "action"},
                {"{\"address\":\"127.0.0.1\",\"action\":\"off\"}", "outlets"},
                {"{\"address\":\"127.0.0.1\",\"action\":\"status\","
                 "\"outlets\":[]}",
                 "outlets"},
                {"{\"address\":\"127.0.0.1\",\"action\":\"off\","
                 "\"outlets\":[3]}",
                 "outlets"},
                {"{\"address\":\"127.0.0.1\",\"action\":\"off\","
                 "\"outlets\":[\"\"]}",
                 "outlets"},
                {"{\"address\":\"127.0.0.1\",\"action\":\"off\","
                 "\"outlets\":\"3\"}",
                 "outlets"},
                {"{\"address\":\"127.0.0.1\",\"action\":\"check\","
                 "\"expect_outlets\":0}",
                 "expect_outlets"},
                {"{\"address\":\"udp:127.0.0.1\",\"action\":\"check\"}",
                 "address"},
                {"{\"address\":\"\",\"action\":\"check\"}", "address"},
                {"{\"address\":\"127.0.0.1\",\"action\":\"check\","
                 "\"outlet\":[\"1\"]}",
                 "outlet"},
        };
        char many[1024] = "{\"address\":\"127.0.0.1\",\"action\":\"off\","
                          "\"outlets\":[\"1\"";

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(json_object_putp) struct json_object *result =
                        run("%s", cases[i].request);

                assert_failed(result, "bad-parameter", cases[i].field);
        }

        for (unsigned i = 1; i < APC_REQUEST_OUTLETS_MAX + 1; i++)
                strcat(many, ",\"1\"");
        strcat(many, "]}");
        {
                _cleanup_(json_object_putp) struct json_object *result =
                        run("%s", many);

                assert_failed(result, "bad-parameter", "outlets");
        }
        {
                _cleanup_(json_object_putp) struct json_object *request =
                        json("[1]");
                _cleanup_(json_object_putp) struct json_object *result = NULL;

                assert_int_equal(apc_device_op(request, &result), 0);
                check_result_shape(result);
                assert_failed(result, "bad-parameter", NULL);
        }
}

/* ==== rPDU ==== */

/* clang-format off */
static const char *const rpdu_options[] = {
        "--model", "rpdu",
        "--outlets", "8",
        "--outlet-name", "3=node3",
        "--outlet-name", "4=node4",
        "--outlet-name", "5=web",
        "--outlet-name", "6=web",
        "--v3-user", "fence",
        "--v3-auth-password", "authpass1",
        "--v3-priv-password", "privpass1",
        NULL,
};
/* clang-format on */

/* Switches outlet (a string) to "on"/"off" over v1 with the write
 * community and fails the test unless it is verified. */
static void switch_ok(const struct agent *a, const char *outlet,
                      const char *action) {
        _cleanup_(json_object_putp) struct json_object *result =
                run("{\"address\":\"127.0.0.1\",\"parameters\":"
                    "{\"port\":%u},\"action\":\"%s\",\"outlets\":[\"%s\"]}",
                    a->port, action, outlet);

        assert_ok(result);
}

static void off_switches_outlet_and_verifies_it_off(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;
        struct json_object *o;

        switch_ok(a, "1", "on");
        assert_true(pdusim_outlet_on(a, 1));

        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u},\"action\":\"off\",\"outlets\":[\"1\"]}",
                     a->port);
        assert_ok(result);
        assert_false(pdusim_outlet_on(a, 1));
        assert_string_equal(string_at(result, "action"), "off");
        assert_string_equal(string_at(result, "model"), "rPDU");
        assert_string_equal(string_at(result, "oid_family"), "rpdu");
        assert_int_equal(int_at(result, "outlet_count"), 8);
        assert_int_equal(outlets_of(result), 1);
        o = outlet_at(result, 0);
        assert_string_equal(string_at(o, "outlet"), "1");
        assert_int_equal(int_at(o, "index"), 1);
        assert_string_equal(string_at(o, "name"), "Outlet 1");
        assert_string_equal(string_at(o, "state"), "off");
        assert_true(bool_at(o, "switched"));
        /* The neighbours were not touched. */
        assert_true(pdusim_outlet_on(a, 2));
}

static void on_switches_outlet_back_and_verifies_it_on(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        switch_ok(a, "1", "off");
        assert_false(pdusim_outlet_on(a, 1));
        /* A wrong expect_outlets fails check, never a switch. */
        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u},\"action\":\"on\",\"outlets\":[\"1\"],"
                     "\"expect_outlets\":16}",
                     a->port);
        assert_ok(result);
        assert_true(pdusim_outlet_on(a, 1));
        assert_string_equal(string_at(outlet_at(result, 0), "state"), "on");
        assert_true(bool_at(outlet_at(result, 0), "switched"));
}

static void outlet_given_by_name_is_switched(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;
        struct json_object *o;

        switch_ok(a, "4", "on");
        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u},\"action\":\"off\","
                     "\"outlets\":[\"node4\"]}",
                     a->port);
        assert_ok(result);
        assert_false(pdusim_outlet_on(a, 4));
        assert_true(pdusim_outlet_on(a, 3));
        o = outlet_at(result, 0);
        assert_string_equal(string_at(o, "outlet"), "node4");
        assert_int_equal(int_at(o, "index"), 4);
        assert_string_equal(string_at(o, "name"), "node4");
        assert_string_equal(string_at(o, "state"), "off");
}

static void several_outlets_are_switched_together(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        switch_ok(a, "3", "on");
        switch_ok(a, "7", "on");
        switch_ok(a, "8", "off");
        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u},\"action\":\"off\","
                     "\"outlets\":[\"node3\",\"7\",\"8\",\"3\"]}",
                     a->port);
        assert_ok(result);
        assert_false(pdusim_outlet_on(a, 3));
        assert_false(pdusim_outlet_on(a, 7));
        assert_false(pdusim_outlet_on(a, 8));
        assert_int_equal(outlets_of(result), 4);
        assert_true(bool_at(outlet_at(result, 0), "switched"));
        assert_true(bool_at(outlet_at(result, 1), "switched"));
        assert_false(bool_at(outlet_at(result, 2), "switched"));
        assert_string_equal(string_at(outlet_at(result, 3), "outlet"), "3");
        for (size_t i = 0; i < 4; i++)
                assert_string_equal(string_at(outlet_at(result, i), "state"),
                                    "off");
}

static void already_off_outlet_succeeds_without_a_set(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        switch_ok(a, "2", "off");
        /* With the read-only community a SET would be refused: success
         * proves none was sent. */
        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u,\"community\":\"public\"},"
                     "\"action\":\"off\",\"outlets\":[\"2\"]}",
                     a->port);
        assert_ok(result);
        assert_false(bool_at(outlet_at(result, 0), "switched"));
        assert_string_equal(string_at(outlet_at(result, 0), "state"), "off");
        assert_false(pdusim_outlet_on(a, 2));
        switch_ok(a, "2", "on");
}

static void status_reports_requested_outlets(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        switch_ok(a, "3", "off");
        switch_ok(a, "4", "on");
        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u,\"community\":\"public\"},"
                     "\"action\":\"status\",\"outlets\":[\"node4\",\"3\"]}",
                     a->port);
        assert_ok(result);
        assert_int_equal(outlets_of(result), 2);
        assert_string_equal(string_at(outlet_at(result, 0), "state"), "on");
        assert_string_equal(string_at(outlet_at(result, 1), "state"), "off");
        assert_string_equal(string_at(outlet_at(result, 1), "name"), "node3");
        assert_false(json_object_object_get_ex(outlet_at(result, 0), "switched",
                                               NULL));
}

static void list_reports_every_outlet(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        switch_ok(a, "6", "off");
        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u,\"community\":\"public\"},"
                     "\"action\":\"list\"}",
                     a->port);
        assert_ok(result);
        assert_int_equal(outlets_of(result), 8);
        for (size_t i = 0; i < 8; i++) {
                struct json_object *o = outlet_at(result, i);
                char number[8];

                snprintf(number, sizeof number, "%zu", i + 1);
                assert_string_equal(string_at(o, "outlet"), number);
                assert_int_equal(int_at(o, "index"), (int64_t) i + 1);
                assert_string_equal(string_at(o, "state"),
                                    pdusim_outlet_on(a, i + 1) ? "on" : "off");
        }
        assert_string_equal(string_at(outlet_at(result, 4), "name"), "web");
        assert_string_equal(string_at(outlet_at(result, 5), "state"), "off");
        switch_ok(a, "6", "on");
}

static void check_reports_model_and_outlets(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL,
                                                       *bare = NULL;

        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u,\"community\":\"public\"},"
                     "\"action\":\"check\",\"expect_outlets\":8,"
                     "\"outlets\":[\"node3\",\"8\"]}",
                     a->port);
        assert_ok(result);
        assert_string_equal(string_at(result, "model"), "rPDU");
        assert_string_equal(string_at(result, "sys_object_id"),
                            ".1.3.6.1.4.1.318.1.3.4.5");
        assert_int_equal(int_at(result, "outlet_count"), 8);
        assert_int_equal(outlets_of(result), 2);
        assert_int_equal(int_at(outlet_at(result, 0), "index"), 3);
        assert_non_null(string_at(outlet_at(result, 1), "state"));

        bare = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                   "{\"port\":%u},\"action\":\"check\"}",
                   a->port);
        assert_ok(bare);
        assert_int_equal(outlets_of(bare), 0);
}

static void expect_outlets_mismatch_fails_check(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u},\"action\":\"check\","
                     "\"expect_outlets\":16}",
                     a->port);
        assert_failed(result, "device", "expect_outlets");
        assert_non_null(strstr(message_of(result), "has 8 outlets"));
        assert_non_null(strstr(message_of(result), "16 are configured"));
        assert_int_equal(int_at(result, "outlet_count"), 8);
}

static void v2c_switches_outlet(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *off = NULL, *on = NULL;

        off = run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u,"
                  "\"snmp_version\":\"2c\"},\"action\":\"off\","
                  "\"outlets\":[\"5\"]}",
                  a->port);
        assert_ok(off);
        assert_false(pdusim_outlet_on(a, 5));
        on = run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u,"
                 "\"snmp_version\":\"2c\"},\"action\":\"on\","
                 "\"outlets\":[\"5\"]}",
                 a->port);
        assert_ok(on);
        assert_true(pdusim_outlet_on(a, 5));
}

static void v3_authpriv_switches_outlet(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *off = NULL, *on = NULL;

        off = run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u," V3
                  "," V3_KEYS "},\"action\":\"off\","
                  "\"outlets\":[\"node3\"]}",
                  a->port);
        assert_ok(off);
        assert_false(pdusim_outlet_on(a, 3));
        on = run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u," V3
                 "," V3_KEYS ",\"security_level\":\"authPriv\","
                 "\"auth_protocol\":\"SHA\",\"priv_protocol\":\"AES\"},"
                 "\"action\":\"on\",\"outlets\":[\"3\"]}",
                 a->port);
        assert_ok(on);
        assert_true(pdusim_outlet_on(a, 3));
}

static void wrong_community_times_out_quickly(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;
        uint64_t start;
        char location[32];

        switch_ok(a, "1", "on");
        start = now_usec();

        result = run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u,"
                     "\"community\":\"secret\",\"timeout_ms\":200,"
                     "\"retries\":0},\"action\":\"off\","
                     "\"outlets\":[\"1\"]}",
                     a->port);
        assert_failed(result, "timeout", NULL);
        assert_true(now_usec() - start < QUICKLY_MS * USEC_PER_MSEC);
        assert_true(elapsed_ms(result) >= 200.0);
        assert_true(elapsed_ms(result) < QUICKLY_MS);
        snprintf(location, sizeof location, "127.0.0.1:%u", a->port);
        assert_non_null(strstr(message_of(result), location));
        assert_non_null(strstr(message_of(result), "community"));
        assert_non_null(strstr(message_of(result), "0.2 s"));
        assert_true(pdusim_outlet_on(a, 1));
}

static void v3_wrong_auth_password_is_auth_error(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        switch_ok(a, "1", "on");

        result =
                run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u," V3
                    ",\"auth_password\":\"wrongpass\","
                    "\"priv_password\":\"privpass1\",\"timeout_ms\":200,"
                    "\"retries\":0},\"action\":\"off\","
                    "\"outlets\":[\"1\"]}",
                    a->port);
        assert_failed(result, "auth", "auth_password");
        assert_non_null(strstr(message_of(result), "\"fence\""));
        assert_true(pdusim_outlet_on(a, 1));
}

static void v3_wrong_priv_password_is_auth_error(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        switch_ok(a, "1", "on");

        /* net-snmp agents drop what they cannot decrypt: the driver tells
         * it from a missing device by the discovery that succeeded. */
        result =
                run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u," V3
                    ",\"auth_password\":\"authpass1\","
                    "\"priv_password\":\"wrongpass\",\"timeout_ms\":200,"
                    "\"retries\":0},\"action\":\"off\","
                    "\"outlets\":[\"1\"]}",
                    a->port);
        assert_failed(result, "auth", "priv_password");
        assert_true(pdusim_outlet_on(a, 1));
}

static void v3_unknown_user_is_auth_error(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        result = run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u,"
                     "\"snmp_version\":\"3\",\"username\":\"intruder\"," V3_KEYS
                     ",\"timeout_ms\":200,\"retries\":0},"
                     "\"action\":\"status\",\"outlets\":[\"1\"]}",
                     a->port);
        assert_failed(result, "auth", "username");
        assert_non_null(strstr(message_of(result), "\"intruder\""));
}

static void read_only_community_cannot_switch(void **state) {
        struct agent *a = AGENT(state, rpdu);

        switch_ok(a, "7", "on");
        for (unsigned v = 0; v < 2; v++) {
                _cleanup_(json_object_putp) struct json_object *result = NULL;

                result = run("{\"address\":\"127.0.0.1\",\"parameters\":{"
                             "\"port\":%u,\"snmp_version\":\"%s\","
                             "\"community\":\"public\"},\"action\":\"off\","
                             "\"outlets\":[\"7\"]}",
                             a->port, v == 0 ? "1" : "2c");
                assert_failed(result, "auth", "community");
                assert_non_null(strstr(message_of(result), "outlet 7"));
                assert_non_null(strstr(message_of(result), "read-only"));
                assert_false(bool_at(outlet_at(result, 0), "switched"));
                assert_true(pdusim_outlet_on(a, 7));
        }
}

static void wrong_write_community_is_auth_error(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        switch_ok(a, "7", "on");
        result = run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u,"
                     "\"community\":\"secret\",\"read_community\":\"public\","
                     "\"timeout_ms\":200,\"retries\":0},\"action\":\"off\","
                     "\"outlets\":[\"7\"]}",
                     a->port);
        assert_failed(result, "auth", "community");
        assert_true(pdusim_outlet_on(a, 7));
}

static void outlet_beyond_count_is_no_such_outlet(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL,
                                                       *check = NULL;

        switch_ok(a, "1", "on");

        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u},\"action\":\"off\","
                     "\"outlets\":[\"1\",\"9\"]}",
                     a->port);
        assert_failed(result, "no-such-outlet", "outlets");
        assert_non_null(strstr(message_of(result), "outlet 9"));
        assert_non_null(strstr(message_of(result), "1 to 8"));
        /* Nothing is switched when one outlet does not resolve. */
        assert_true(pdusim_outlet_on(a, 1));

        check = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                    "{\"port\":%u},\"action\":\"check\","
                    "\"outlets\":[\"0\"]}",
                    a->port);
        assert_failed(check, "no-such-outlet", "outlets");
}

static void unknown_or_ambiguous_name_is_no_such_outlet(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *unknown = NULL,
                                                       *ambiguous = NULL;

        unknown = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                      "{\"port\":%u},\"action\":\"check\","
                      "\"outlets\":[\"node9\"]}",
                      a->port);
        assert_failed(unknown, "no-such-outlet", "outlets");
        assert_non_null(strstr(message_of(unknown), "\"node9\""));

        ambiguous = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                        "{\"port\":%u},\"action\":\"off\","
                        "\"outlets\":[\"web\"]}",
                        a->port);
        assert_failed(ambiguous, "no-such-outlet", "outlets");
        assert_true(pdusim_outlet_on(a, 5));
        assert_true(pdusim_outlet_on(a, 6));
}

static void forced_family_drives_the_other_table(void **state) {
        struct agent *a = AGENT(state, rpdu);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        /* Like an AP79xx, the simulated rPDU also serves the old
         * sPDUOutletCtl table: forced, the driver uses it. */
        switch_ok(a, "8", "on");
        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u,\"oid_family\":\"masterswitch\"},"
                     "\"action\":\"off\",\"outlets\":[\"8\"]}",
                     a->port);
        assert_ok(result);
        assert_string_equal(string_at(result, "oid_family"), "masterswitch");
        assert_string_equal(string_at(result, "model"), "rPDU");
        assert_false(pdusim_outlet_on(a, 8));
}

static void no_device_on_the_port_is_timeout(void **state) {
        _cleanup_(json_object_putp) struct json_object *v1 = NULL, *v3 = NULL;
        unsigned port = free_udp_port();

        v1 = run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u,"
                 "\"timeout_ms\":100,\"retries\":1},\"action\":\"check\"}",
                 port);
        assert_failed(v1, "timeout", NULL);
        assert_non_null(strstr(message_of(v1), "within 0.2 s"));
        assert_true(elapsed_ms(v1) < QUICKLY_MS);

        v3 = run("{\"address\":\"127.0.0.1\",\"parameters\":{\"port\":%u," V3
                 "," V3_KEYS ",\"timeout_ms\":100,\"retries\":0},"
                 "\"action\":\"off\",\"outlets\":[\"1\"]}",
                 port);
        assert_failed(v3, "timeout", NULL);
        assert_true(elapsed_ms(v3) < QUICKLY_MS);
}

/* ==== MasterSwitch ==== */

static void masterswitch_is_identified(void **state) {
        struct agent *a = AGENT(state, masterswitch);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u},\"action\":\"check\","
                     "\"expect_outlets\":4,\"outlets\":[\"db\"]}",
                     a->port);
        assert_ok(result);
        assert_string_equal(string_at(result, "oid_family"), "masterswitch");
        assert_string_equal(string_at(result, "sys_object_id"),
                            ".1.3.6.1.4.1.318.1.3.4.2");
        assert_string_equal(string_at(result, "model"), "MasterSwitch V2");
        assert_int_equal(int_at(result, "outlet_count"), 4);
        assert_int_equal(int_at(outlet_at(result, 0), "index"), 2);
}

static void masterswitch_off_and_on_are_verified(void **state) {
        struct agent *a = AGENT(state, masterswitch);
        _cleanup_(json_object_putp) struct json_object *off = NULL, *on = NULL;

        off = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                  "{\"port\":%u},\"action\":\"off\","
                  "\"outlets\":[\"db\",\"4\"]}",
                  a->port);
        assert_ok(off);
        assert_false(pdusim_outlet_on(a, 2));
        assert_false(pdusim_outlet_on(a, 4));
        assert_true(pdusim_outlet_on(a, 3));
        assert_string_equal(string_at(outlet_at(off, 0), "state"), "off");

        on = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                 "{\"port\":%u,\"snmp_version\":\"2c\"},\"action\":\"on\","
                 "\"outlets\":[\"db\",\"4\"]}",
                 a->port);
        assert_ok(on);
        assert_true(pdusim_outlet_on(a, 2));
        assert_true(pdusim_outlet_on(a, 4));
}

static void masterswitch_read_only_community_cannot_switch(void **state) {
        struct agent *a = AGENT(state, masterswitch);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u,\"community\":\"public\"},"
                     "\"action\":\"off\",\"outlets\":[\"1\"]}",
                     a->port);
        assert_failed(result, "auth", "community");
        assert_true(pdusim_outlet_on(a, 1));
}

/* ==== Switching delay ==== */

static void off_is_verified_after_switching_delay(void **state) {
        struct agent *a = AGENT(state, delay);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        assert_true(pdusim_outlet_on(a, 1));
        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u},\"action\":\"off\",\"outlets\":[\"1\"]}",
                     a->port);
        assert_ok(result);
        assert_true(elapsed_ms(result) >= 300.0);
        assert_false(pdusim_outlet_on(a, 1));
}

static void power_timeout_shorter_than_delay_is_verify_timeout(void **state) {
        struct agent *a = AGENT(state, delay);
        _cleanup_(json_object_putp) struct json_object *result = NULL;

        assert_true(pdusim_outlet_on(a, 2));
        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u,\"power_timeout_ms\":100,\"poll_ms\":20},"
                     "\"action\":\"off\",\"outlets\":[\"2\",\"3\"]}",
                     a->port);
        assert_failed(result, "verify-timeout", NULL);
        assert_non_null(strstr(message_of(result), "outlets 2 and 3"));
        assert_non_null(strstr(message_of(result), "off"));
        assert_true(elapsed_ms(result) >= 100.0);
        assert_true(elapsed_ms(result) < 300.0);
        assert_true(bool_at(outlet_at(result, 0), "switched"));
        /* The command was sent: the strip switches after its delay. */
        assert_true(pdusim_outlet_becomes(a, 2, false, 3 * USEC_PER_SEC));
        assert_true(pdusim_outlet_becomes(a, 3, false, 3 * USEC_PER_SEC));
}

/* ==== A device that is not APC's ==== */

/* Starts Debian's snmpd on a free port: MIB-II system group and access
 * control only, its files in a new directory. */
static void snmpd_start(struct agent *a) {
        char config[PATH_MAX], listen[64], log[PATH_MAX];
        _cleanup_fclose_ FILE *f = NULL;
        char *argv[] = {
                (char *) "/usr/sbin/snmpd",
                (char *) "-f",
                (char *) "-C",
                (char *) "-c",
                config,
                (char *) "-Lf",
                log,
                (char *) "-I",
                (char *) "system_mib,vacm_vars",
                listen,
                NULL,
        };

        if (access(argv[0], X_OK) < 0)
                fail_msg("%s is missing (package snmpd, see packages.txt)",
                         argv[0]);
        snprintf(a->dir, sizeof a->dir, "/tmp/test-fenced-apc-XXXXXX");
        assert_non_null(mkdtemp(a->dir));
        a->port = free_udp_port();
        snprintf(listen, sizeof listen, "udp:127.0.0.1:%u", a->port);
        snprintf(log, sizeof log, "%s/snmpd.log", a->dir);
        snprintf(config, sizeof config, "%s/snmpd.conf", a->dir);
        f = fopen(config, "we");
        assert_non_null(f);
        fprintf(f, "rocommunity public 127.0.0.1\n"
                   "rwcommunity private 127.0.0.1\n");
        assert_int_equal(fclose(TAKE_PTR(f)), 0);

        agent_start(a, argv, "snmpd.log", "NET-SNMP version");
}

static int agents_setup(void **state) {
        static const char *const masterswitch_options[] = {
                "--model",       "masterswitch", "--outlets", "4",
                "--outlet-name", "2=db",         NULL,
        };
        static const char *const delay_options[] = {
                "--outlets", "4", "--delay-ms", "300", NULL,
        };
        static struct agents agents;

        *state = &agents;
        pdusim_start(&agents.rpdu, rpdu_options);
        pdusim_start(&agents.masterswitch, masterswitch_options);
        pdusim_start(&agents.delay, delay_options);
        snmpd_start(&agents.snmpd);
        return 0;
}

static int agents_teardown(void **state) {
        struct agents *agents = *state;

        agent_stop(&agents->rpdu);
        agent_stop(&agents->masterswitch);
        agent_stop(&agents->delay);
        agent_stop(&agents->snmpd);
        return 0;
}

static void device_of_another_vendor_is_unsupported(void **state) {
        struct agent *a = AGENT(state, snmpd);
        _cleanup_(json_object_putp) struct json_object *result = NULL,
                                                       *forced = NULL;

        result = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u},\"action\":\"check\"}",
                     a->port);
        assert_failed(result, "unsupported", "oid_family");
        assert_non_null(strstr(message_of(result), "not an APC"));
        assert_non_null(string_at(result, "sys_object_id"));
        assert_null(string_at(result, "model"));

        /* Forced tables on a device without them: said, not guessed. */
        forced = run("{\"address\":\"127.0.0.1\",\"parameters\":"
                     "{\"port\":%u,\"oid_family\":\"rpdu\",\"snmp_version\":"
                     "\"2c\"},\"action\":\"off\",\"outlets\":[\"1\"]}",
                     a->port);
        assert_failed(forced, "unsupported", "oid_family");
        assert_non_null(strstr(message_of(forced), "outlet count"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                /* Pure */
                cmocka_unit_test(sys_object_id_identifies_apc_models),
                cmocka_unit_test(sys_object_id_of_other_vendors_is_unsupported),
                cmocka_unit_test(state_values_map_to_on_off_unknown),
                cmocka_unit_test(state_of_wrong_type_is_refused),
                cmocka_unit_test(outlet_count_must_be_plausible),
                cmocka_unit_test(name_is_made_safe_to_show),
                cmocka_unit_test(matching_answer_is_accepted),
                cmocka_unit_test(answer_not_matching_request_is_refused),
                cmocka_unit_test(error_status_of_get_and_set_is_classified),
                cmocka_unit_test(missing_object_in_answer_is_noticed),
                cmocka_unit_test(outlet_is_resolved_by_number_or_exact_name),
                /* Parameters and requests */
                cmocka_unit_test(every_bad_parameter_is_refused_with_its_field),
                cmocka_unit_test(
                        bad_parameter_fails_the_operation_before_any_io),
                cmocka_unit_test(good_parameters_are_accepted),
                cmocka_unit_test(bad_request_is_refused_with_its_field),
                /* rPDU */
                cmocka_unit_test(off_switches_outlet_and_verifies_it_off),
                cmocka_unit_test(on_switches_outlet_back_and_verifies_it_on),
                cmocka_unit_test(outlet_given_by_name_is_switched),
                cmocka_unit_test(several_outlets_are_switched_together),
                cmocka_unit_test(already_off_outlet_succeeds_without_a_set),
                cmocka_unit_test(status_reports_requested_outlets),
                cmocka_unit_test(list_reports_every_outlet),
                cmocka_unit_test(check_reports_model_and_outlets),
                cmocka_unit_test(expect_outlets_mismatch_fails_check),
                cmocka_unit_test(v2c_switches_outlet),
                cmocka_unit_test(v3_authpriv_switches_outlet),
                cmocka_unit_test(wrong_community_times_out_quickly),
                cmocka_unit_test(v3_wrong_auth_password_is_auth_error),
                cmocka_unit_test(v3_wrong_priv_password_is_auth_error),
                cmocka_unit_test(v3_unknown_user_is_auth_error),
                cmocka_unit_test(read_only_community_cannot_switch),
                cmocka_unit_test(wrong_write_community_is_auth_error),
                cmocka_unit_test(outlet_beyond_count_is_no_such_outlet),
                cmocka_unit_test(unknown_or_ambiguous_name_is_no_such_outlet),
                cmocka_unit_test(forced_family_drives_the_other_table),
                cmocka_unit_test(no_device_on_the_port_is_timeout),
                /* MasterSwitch */
                cmocka_unit_test(masterswitch_is_identified),
                cmocka_unit_test(masterswitch_off_and_on_are_verified),
                cmocka_unit_test(
                        masterswitch_read_only_community_cannot_switch),
                /* Switching delay */
                cmocka_unit_test(off_is_verified_after_switching_delay),
                cmocka_unit_test(
                        power_timeout_shorter_than_delay_is_verify_timeout),
                /* Not APC */
                cmocka_unit_test(device_of_another_vendor_is_unsupported),
        };

        if (apc_snmp_init() < 0)
                return 1;
        return cmocka_run_group_tests(tests, agents_setup, agents_teardown);
}
