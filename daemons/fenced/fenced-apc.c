/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The native APC driver behind fenced-apc.h: parameter validation, the
 * PowerNet-MIB tables of each family, the interpretation of answers (pure),
 * and the synchronous operations (net-snmp's single-session API) that switch,
 * verify, read and check outlets. Runs in a short-lived child of haven-fenced,
 * which is why it may wait between polls. Must not: keep state between
 * operations other than net-snmp's one-time initialization, send a SET before
 * every requested outlet is resolved, or report success before every
 * switched outlet reads its target state.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <time.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/text.h"
#include "haven/loop.h"

#include "fenced-apc.h"

#define APC_GET_CHUNK 16 /* variables in one GET */
#define ADDRESS_LENGTH_MAX 253
#define COMMUNITY_LENGTH_MAX 64
#define USERNAME_LENGTH_MAX 32 /* SnmpAdminString of a USM user */
#define PASSWORD_LENGTH_MIN 8  /* net-snmp's USM_LENGTH_P_MIN */
#define PASSWORD_LENGTH_MAX 128
#define MESSAGE_MAX 512

/* ==== PowerNet-MIB ==== */

#define APC_OID 1, 3, 6, 1, 4, 1, 318

struct oid_ref {
        const oid *name; /* NULL: no such entry */
        size_t length;
        const char *label; /* the MIB's name, for messages */
};

#define OID_REF(label_, ...)                                                   \
        {                                                                      \
                .name = (const oid[]){__VA_ARGS__},                            \
                .length = sizeof((const oid[]){__VA_ARGS__}) / sizeof(oid),    \
                .label = (label_),                                             \
        }

/* What one family of PDUs is driven with. Counts are scalars (their OIDs
 * end in .0); state, command and names are columns indexed by outlet. The
 * alternatives are tried in order when the device lacks the first. */
struct apc_table {
        struct oid_ref counts[2];
        struct oid_ref state;
        struct oid_ref command;
        struct oid_ref names[2];
        long command_on, command_off; /* immediateOn/Off, outletOn/Off */
        long state_on, state_off;
};

/* clang-format off */
static const struct apc_table tables[_APC_FAMILY_MAX] = {
        [APC_FAMILY_RPDU] = {
                .counts = {
                        OID_REF("rPDUOutletDevNumCntrlOutlets",
                                APC_OID, 1, 1, 12, 3, 1, 3, 0),
                        OID_REF("rPDUIdentDeviceNumOutlets",
                                APC_OID, 1, 1, 12, 1, 8, 0),
                },
                .state = OID_REF("rPDUOutletStatusOutletState",
                                 APC_OID, 1, 1, 12, 3, 5, 1, 1, 4),
                .command = OID_REF("rPDUOutletControlOutletCommand",
                                   APC_OID, 1, 1, 12, 3, 3, 1, 1, 4),
                .names = {
                        OID_REF("rPDUOutletStatusOutletName",
                                APC_OID, 1, 1, 12, 3, 5, 1, 1, 2),
                        OID_REF("rPDUOutletControlOutletName",
                                APC_OID, 1, 1, 12, 3, 3, 1, 1, 2),
                },
                .command_on = 1,
                .command_off = 2,
                .state_on = 1,
                .state_off = 2,
        },
        [APC_FAMILY_MASTERSWITCH] = {
                .counts = {
                        OID_REF("sPDUOutletControlTableSize",
                                APC_OID, 1, 1, 4, 4, 1, 0),
                },
                .state = OID_REF("sPDUOutletCtl",
                                 APC_OID, 1, 1, 4, 4, 2, 1, 3),
                .command = OID_REF("sPDUOutletCtl",
                                   APC_OID, 1, 1, 4, 4, 2, 1, 3),
                .names = {
                        OID_REF("sPDUOutletCtlName",
                                APC_OID, 1, 1, 4, 4, 2, 1, 4),
                },
                .command_on = 1,
                .command_off = 2,
                .state_on = 1,
                .state_off = 2,
        },
};
/* clang-format on */

static const oid sys_object_id_oid[] = {1, 3, 6, 1, 2, 1, 1, 2, 0};
static const oid apc_enterprise[] = {APC_OID};
static const oid masterswitch_classes[] = {APC_OID, 1, 3, 4};
static const oid rpdu_class[] = {APC_OID, 1, 3, 4, 5};

/* The products under masterSwitch (.318.1.3.4.N), by N. */
static const char *const models[] = {
        [1] = "MasterSwitch",
        [2] = "MasterSwitch V2",
        [3] = "MasterSwitch VM",
        [4] = "MasterSwitch Plus",
        [5] = "rPDU",
        [6] = "rPDU2",
        [7] = "sPDU",
        [8] = "rPDUB",
        [9] = "ePDU",
};

static const char *const family_names[_APC_FAMILY_MAX] = {
        [APC_FAMILY_RPDU] = "rpdu",
        [APC_FAMILY_MASTERSWITCH] = "masterswitch",
};

static const char *const state_names[_APC_STATE_MAX] = {
        [APC_STATE_ON] = "on",
        [APC_STATE_OFF] = "off",
        [APC_STATE_UNKNOWN] = "unknown",
};

const char *apc_family_to_string(enum apc_family family) {
        if (family < 0 || family >= _APC_FAMILY_MAX)
                return NULL;
        return family_names[family];
}

const char *apc_state_to_string(enum apc_state state) {
        if (state < 0 || state >= _APC_STATE_MAX)
                return NULL;
        return state_names[state];
}

/* ==== Strings ==== */


/* "2.0 s" for a duration in milliseconds (tenths, rounded). */
static const char *seconds(uint64_t ms, char buf[static 32]) {
        uint64_t tenths = (ms + 50) / 100;

        snprintf(buf, 32, "%" PRIu64 ".%" PRIu64 " s", tenths / 10,
                 tenths % 10);
        return buf;
}

/* Formats o[0..len) as ".1.3.6..." into buf (size bytes); cut when it does
 * not fit. Returns buf. */
static const char *oid_text(const oid *o, size_t len, char *buf, size_t size) {
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < len && used < size; i++) {
                int k = snprintf(buf + used, size - used, ".%lu",
                                 (unsigned long) o[i]);
                if (k < 0)
                        break;
                used += (size_t) k;
        }
        return buf;
}

/* ==== Parameters ==== */

struct usm_protocol {
        const char *name;
        const oid *oid;
        size_t length;
};

static const struct usm_protocol auth_protocols[] = {
#ifndef NETSNMP_DISABLE_MD5
        {"MD5", usmHMACMD5AuthProtocol, OID_LENGTH(usmHMACMD5AuthProtocol)},
#endif
        {"SHA", usmHMACSHA1AuthProtocol, OID_LENGTH(usmHMACSHA1AuthProtocol)},
#ifdef HAVE_EVP_SHA224
        {"SHA-224", usmHMAC128SHA224AuthProtocol,
         OID_LENGTH(usmHMAC128SHA224AuthProtocol)},
        {"SHA-256", usmHMAC192SHA256AuthProtocol,
         OID_LENGTH(usmHMAC192SHA256AuthProtocol)},
#endif
#ifdef HAVE_EVP_SHA384
        {"SHA-384", usmHMAC256SHA384AuthProtocol,
         OID_LENGTH(usmHMAC256SHA384AuthProtocol)},
        {"SHA-512", usmHMAC384SHA512AuthProtocol,
         OID_LENGTH(usmHMAC384SHA512AuthProtocol)},
#endif
};

static const struct usm_protocol priv_protocols[] = {
#ifndef NETSNMP_DISABLE_DES
        {"DES", usmDESPrivProtocol, OID_LENGTH(usmDESPrivProtocol)},
#endif
        {"AES", usmAESPrivProtocol, OID_LENGTH(usmAESPrivProtocol)},
};

static const char *const version_choices[] = {"1", "2c", "3", NULL};
static const char *const security_level_choices[] = {
        "noAuthNoPriv", "authNoPriv", "authPriv", NULL};
static const char *const family_choices[] = {"auto", "rpdu", "masterswitch",
                                             NULL};
/* The names of the tables above, NULL-terminated, for the policy. */
static const char *const auth_choices[] = {
#ifndef NETSNMP_DISABLE_MD5
        "MD5",
#endif
        "SHA",
#ifdef HAVE_EVP_SHA224
        "SHA-224", "SHA-256",
#endif
#ifdef HAVE_EVP_SHA384
        "SHA-384", "SHA-512",
#endif
        NULL,
};
static const char *const priv_choices[] = {
#ifndef NETSNMP_DISABLE_DES
        "DES",
#endif
        "AES",
        NULL,
};
_Static_assert(ELEMENTSOF(auth_choices) == ELEMENTSOF(auth_protocols) + 1,
               "auth_choices lists auth_protocols");
_Static_assert(ELEMENTSOF(priv_choices) == ELEMENTSOF(priv_protocols) + 1,
               "priv_choices lists priv_protocols");

static const struct haven_json_field parameter_policy[] = {
        {.name = "snmp_version",
         .kind = HAVEN_JSON_ENUM,
         .nullable = true,
         .choices = version_choices},
        {.name = "community",
         .kind = HAVEN_JSON_STRING,
         .nullable = true,
         .min = 1,
         .max = COMMUNITY_LENGTH_MAX},
        {.name = "read_community",
         .kind = HAVEN_JSON_STRING,
         .nullable = true,
         .min = 1,
         .max = COMMUNITY_LENGTH_MAX},
        {.name = "port",
         .kind = HAVEN_JSON_INT,
         .nullable = true,
         .min = 1,
         .max = 65535},
        {.name = "username",
         .kind = HAVEN_JSON_STRING,
         .nullable = true,
         .min = 1,
         .max = USERNAME_LENGTH_MAX},
        {.name = "security_level",
         .kind = HAVEN_JSON_ENUM,
         .nullable = true,
         .choices = security_level_choices},
        {.name = "auth_protocol",
         .kind = HAVEN_JSON_ENUM,
         .nullable = true,
         .choices = auth_choices},
        {.name = "auth_password",
         .kind = HAVEN_JSON_STRING,
         .nullable = true,
         .min = PASSWORD_LENGTH_MIN,
         .max = PASSWORD_LENGTH_MAX},
        {.name = "priv_protocol",
         .kind = HAVEN_JSON_ENUM,
         .nullable = true,
         .choices = priv_choices},
        {.name = "priv_password",
         .kind = HAVEN_JSON_STRING,
         .nullable = true,
         .min = PASSWORD_LENGTH_MIN,
         .max = PASSWORD_LENGTH_MAX},
        {.name = "timeout_ms",
         .kind = HAVEN_JSON_INT,
         .nullable = true,
         .min = 100,
         .max = 10000},
        {.name = "retries",
         .kind = HAVEN_JSON_INT,
         .nullable = true,
         .min = 0,
         .max = 5},
        {.name = "power_timeout_ms",
         .kind = HAVEN_JSON_INT,
         .nullable = true,
         .min = 100,
         .max = 120000},
        {.name = "poll_ms",
         .kind = HAVEN_JSON_INT,
         .nullable = true,
         .min = 10,
         .max = 5000},
        {.name = "oid_family",
         .kind = HAVEN_JSON_ENUM,
         .nullable = true,
         .choices = family_choices},
};

/* The keys that only SNMPv3 uses, and those only v1/v2c use. */
static const char *const v3_keys[] = {"username",      "security_level",
                                      "auth_protocol", "auth_password",
                                      "priv_protocol", "priv_password"};
static const char *const community_keys[] = {"community", "read_community"};

struct apc_parameters {
        long version;               /* SNMP_VERSION_1, _2c or _3 */
        const char *community;      /* v1/v2c: SETs (and GETs by default) */
        const char *read_community; /* v1/v2c: GETs */
        unsigned port;
        const char *username; /* v3 */
        int security_level;   /* SNMP_SEC_LEVEL_* */
        const struct usm_protocol *auth, *priv;
        const char *auth_password, *priv_password;
        unsigned timeout_ms, retries, power_timeout_ms, poll_ms;
        bool family_auto;
        enum apc_family family; /* when !family_auto */
};

/* Why parameters or a request were refused. field is borrowed (a policy
 * name or a key of the object checked). */
struct check_error {
        const char *field;
        char message[MESSAGE_MAX];
};

_printf_(3, 4) static int check_fail(struct check_error *error,
                                     const char *field, const char *format,
                                     ...) {
        va_list ap;

        error->field = field;
        va_start(ap, format);
        (void) vsnprintf(error->message, sizeof error->message, format, ap);
        va_end(ap);
        return -EINVAL;
}

static const struct haven_json_field *
policy_find(const struct haven_json_field *policy, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (streq(policy[i].name, key))
                        return policy + i;
        return NULL;
}

/* haven_json_check() with an unknown key reported as its own field.
 * what names the object in messages ("parameter", "request field"). */
static int check_object(struct json_object *obj,
                        const struct haven_json_field *policy, size_t n,
                        const char *what, struct check_error *error) {
        struct json_object_iterator it, end;
        struct haven_json_error e;
        char buf[HAVEN_TEXT_SHOWN_MAX + 4];

        it = json_object_iter_begin(obj);
        end = json_object_iter_end(obj);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
                const char *key = json_object_iter_peek_name(&it);

                if (!policy_find(policy, n, key))
                        return check_fail(error, key, "unknown %s \"%s\"", what,
                                          haven_text_shown(key, buf));
        }
        if (haven_json_check(obj, policy, n, &e) < 0)
                return check_fail(error, e.field, "%s \"%s\" %s", what,
                                  e.field ? e.field : "?", e.message);
        return 0;
}

/* Whether obj has key with a value other than null. */
static bool has_value(struct json_object *obj, const char *key) {
        struct json_object *value;

        return obj && json_object_object_get_ex(obj, key, &value) && value;
}

static const struct usm_protocol *usm_find(const struct usm_protocol *table,
                                           size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(table[i].name, name))
                        return table + i;
        return NULL;
}

/* The value of an optional string or integer parameter, or its default.
 * Only called after check_object() accepted obj. */
static const char *string_or(struct json_object *obj, const char *key,
                             const char *fallback) {
        const char *s;

        return obj && haven_json_get_string(obj, key, &s) == 0 ? s : fallback;
}

static unsigned unsigned_or(struct json_object *obj, const char *key,
                            unsigned fallback) {
        int64_t n;

        return obj && haven_json_get_int64(obj, key, &n) == 0 ? (unsigned) n
                                                              : fallback;
}

/* Fills *ret from obj (NULL: every default). The strings are borrowed from
 * obj. Returns 0 or -EINVAL with *error filled. */
static int parameters_parse(struct json_object *obj, struct apc_parameters *ret,
                            struct check_error *error) {
        struct apc_parameters p = {};
        const char *s;
        int r;

        if (obj) {
                if (!json_object_is_type(obj, json_type_object))
                        return check_fail(error, "parameters",
                                          "the device parameters must be a "
                                          "JSON object");
                r = check_object(obj, parameter_policy,
                                 ELEMENTSOF(parameter_policy), "parameter",
                                 error);
                if (r < 0)
                        return r;
        }

        s = string_or(obj, "snmp_version", "1");
        p.version = streq(s, "1")    ? SNMP_VERSION_1
                    : streq(s, "2c") ? SNMP_VERSION_2c
                                     : SNMP_VERSION_3;

        if (p.version != SNMP_VERSION_3) {
                for (size_t i = 0; i < ELEMENTSOF(v3_keys); i++)
                        if (has_value(obj, v3_keys[i]))
                                return check_fail(error, v3_keys[i],
                                                  "parameter \"%s\" applies "
                                                  "only to snmp_version "
                                                  "\"3\"",
                                                  v3_keys[i]);
                p.community = string_or(obj, "community", "private");
                p.read_community =
                        string_or(obj, "read_community", p.community);
        } else {
                for (size_t i = 0; i < ELEMENTSOF(community_keys); i++)
                        if (has_value(obj, community_keys[i]))
                                return check_fail(
                                        error, community_keys[i],
                                        "parameter \"%s\" applies only to "
                                        "snmp_version \"1\" and \"2c\" "
                                        "(SNMPv3 authenticates with username "
                                        "and passwords)",
                                        community_keys[i]);
                p.username = string_or(obj, "username", NULL);
                if (!p.username)
                        return check_fail(error, "username",
                                          "parameter \"username\" is "
                                          "required with snmp_version \"3\"");

                s = string_or(obj, "security_level", "authPriv");
                p.security_level =
                        streq(s, "noAuthNoPriv") ? SNMP_SEC_LEVEL_NOAUTH
                        : streq(s, "authNoPriv") ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                                 : SNMP_SEC_LEVEL_AUTHPRIV;
                for (size_t i = 0; i < ELEMENTSOF(v3_keys); i++) {
                        const char *key = v3_keys[i];
                        bool auth = strncmp(key, "auth_", 5) == 0,
                             priv = strncmp(key, "priv_", 5) == 0;

                        if (!has_value(obj, key))
                                continue;
                        if ((auth &&
                             p.security_level == SNMP_SEC_LEVEL_NOAUTH) ||
                            (priv &&
                             p.security_level != SNMP_SEC_LEVEL_AUTHPRIV))
                                return check_fail(error, key,
                                                  "parameter \"%s\" does not "
                                                  "apply with security_level "
                                                  "\"%s\"",
                                                  key, s);
                }
                p.auth = usm_find(auth_protocols, ELEMENTSOF(auth_protocols),
                                  string_or(obj, "auth_protocol", "SHA"));
                p.priv = usm_find(priv_protocols, ELEMENTSOF(priv_protocols),
                                  string_or(obj, "priv_protocol", "AES"));
                assert(p.auth && p.priv);
                p.auth_password = string_or(obj, "auth_password", NULL);
                p.priv_password = string_or(obj, "priv_password", NULL);
                if (p.security_level != SNMP_SEC_LEVEL_NOAUTH &&
                    !p.auth_password)
                        return check_fail(error, "auth_password",
                                          "parameter \"auth_password\" is "
                                          "required with security_level "
                                          "\"%s\"",
                                          s);
                if (p.security_level == SNMP_SEC_LEVEL_AUTHPRIV &&
                    !p.priv_password)
                        return check_fail(error, "priv_password",
                                          "parameter \"priv_password\" is "
                                          "required with security_level "
                                          "\"%s\"",
                                          s);
        }

        p.port = unsigned_or(obj, "port", 161);
        p.timeout_ms = unsigned_or(obj, "timeout_ms", 1000);
        p.retries = unsigned_or(obj, "retries", 1);
        p.power_timeout_ms = unsigned_or(obj, "power_timeout_ms", 20000);
        p.poll_ms = unsigned_or(obj, "poll_ms", 50);

        s = string_or(obj, "oid_family", "auto");
        p.family_auto = streq(s, "auto");
        p.family = streq(s, "masterswitch") ? APC_FAMILY_MASTERSWITCH
                                            : APC_FAMILY_RPDU;

        *ret = p;
        return 0;
}

int apc_parameters_validate(struct json_object *parameters, char **ret_field,
                            char **ret_message) {
        _cleanup_free_ char *field = NULL, *message = NULL;
        struct apc_parameters p;
        struct check_error error = {};
        int r;

        assert(ret_field);
        assert(ret_message);

        r = parameters_parse(parameters, &p, &error);
        if (r == 0) {
                *ret_field = *ret_message = NULL;
                return 0;
        }
        field = strdup(error.field ? error.field : "parameters");
        message = strdup(error.message);
        if (!field || !message)
                return -ENOMEM;
        *ret_field = TAKE_PTR(field);
        *ret_message = TAKE_PTR(message);
        return -EINVAL;
}

/* ==== Answers (pure) ==== */

static bool oid_has_prefix(const oid *o, size_t len, const oid *prefix,
                           size_t prefix_len) {
        return len >= prefix_len &&
               memcmp(o, prefix, prefix_len * sizeof(oid)) == 0;
}

int apc_model_from_sys_object_id(const oid *o, size_t len,
                                 enum apc_family *ret_family,
                                 const char **ret_model) {
        size_t classes = ELEMENTSOF(masterswitch_classes);
        const char *model = "APC device";

        if (!o ||
            !oid_has_prefix(o, len, apc_enterprise, ELEMENTSOF(apc_enterprise)))
                return -EOPNOTSUPP;

        if (oid_has_prefix(o, len, masterswitch_classes, classes) &&
            len > classes && o[classes] < ELEMENTSOF(models) &&
            models[o[classes]])
                model = models[o[classes]];
        if (ret_family)
                *ret_family = oid_has_prefix(o, len, rpdu_class,
                                             ELEMENTSOF(rpdu_class))
                                      ? APC_FAMILY_RPDU
                                      : APC_FAMILY_MASTERSWITCH;
        if (ret_model)
                *ret_model = model;
        return 0;
}

/* The INTEGER vb holds: 0 and *ret, or -EBADMSG. */
static int integer_from_value(const netsnmp_variable_list *vb, long *ret) {
        if (!vb || vb->type != ASN_INTEGER || !vb->val.integer ||
            vb->val_len != sizeof(long))
                return -EBADMSG;
        *ret = *vb->val.integer;
        return 0;
}

enum apc_state apc_state_from_value(enum apc_family family,
                                    const netsnmp_variable_list *vb) {
        const struct apc_table *t;
        long value;

        assert(family >= 0 && family < _APC_FAMILY_MAX);
        t = tables + family;

        if (integer_from_value(vb, &value) < 0)
                return -EBADMSG;
        if (value == t->state_on)
                return APC_STATE_ON;
        if (value == t->state_off)
                return APC_STATE_OFF;
        return APC_STATE_UNKNOWN;
}

int apc_count_from_value(const netsnmp_variable_list *vb, unsigned *ret) {
        long value;

        if (integer_from_value(vb, &value) < 0)
                return -EBADMSG;
        if (value < 1 || value > (long) APC_OUTLETS_MAX)
                return -ERANGE;
        *ret = (unsigned) value;
        return 0;
}

int apc_name_from_value(const netsnmp_variable_list *vb, char **ret) {
        const unsigned char *s;
        size_t n, used = 0;
        char *name;

        if (!vb || vb->type != ASN_OCTET_STR ||
            (!vb->val.string && vb->val_len > 0))
                return -EBADMSG;
        s = vb->val.string;
        n = vb->val_len < APC_NAME_MAX ? vb->val_len : APC_NAME_MAX;

        name = malloc(n + 1);
        if (!name)
                return -ENOMEM;
        for (size_t i = 0; i < n;) {
                size_t k = haven_utf8_sequence(s + i, n - i);

                if (k == 0 || (k == 1 && (s[i] < 0x20 || s[i] == 0x7f))) {
                        name[used++] = '?';
                        i++;
                        continue;
                }
                memcpy(name + used, s + i, k);
                used += k;
                i += k;
        }
        name[used] = '\0';
        *ret = name;
        return 0;
}

static bool set_refused(long error_status) {
        switch (error_status) {
        case SNMP_ERR_NOSUCHNAME: /* v1: a read-only community */
        case SNMP_ERR_READONLY:
        case SNMP_ERR_NOACCESS:
        case SNMP_ERR_NOTWRITABLE:
        case SNMP_ERR_AUTHORIZATIONERROR:
        case SNMP_ERR_NOCREATION:
        case SNMP_ERR_INCONSISTENTNAME:
                return true;
        default:
                return false;
        }
}

int apc_answer_check(const netsnmp_pdu *request, const netsnmp_pdu *response,
                     size_t *ret_index, long *ret_error_status) {
        const netsnmp_variable_list *q, *a;
        size_t i;

        assert(request);

        if (ret_index)
                *ret_index = SIZE_MAX;
        if (ret_error_status)
                *ret_error_status = 0;
        if (!response || response->command != SNMP_MSG_RESPONSE)
                return -EBADMSG;

        if (response->errstat != SNMP_ERR_NOERROR) {
                size_t n = 0;

                for (q = request->variables; q; q = q->next_variable)
                        n++;
                if (ret_error_status)
                        *ret_error_status = response->errstat;
                if (ret_index && response->errindex >= 1 &&
                    (unsigned long) response->errindex <= n)
                        *ret_index = (size_t) response->errindex - 1;
                if (request->command == SNMP_MSG_SET &&
                    set_refused(response->errstat))
                        return -EACCES;
                if (request->command != SNMP_MSG_SET &&
                    response->errstat == SNMP_ERR_NOSUCHNAME)
                        return -ENOENT;
                return -EPROTO;
        }

        for (q = request->variables, a = response->variables, i = 0; q && a;
             q = q->next_variable, a = a->next_variable, i++) {
                if (ret_index)
                        *ret_index = i;
                if (!a->name || snmp_oid_compare(q->name, q->name_length,
                                                 a->name, a->name_length) != 0)
                        return -EBADMSG;
                if (a->type == SNMP_NOSUCHOBJECT ||
                    a->type == SNMP_NOSUCHINSTANCE ||
                    a->type == SNMP_ENDOFMIBVIEW)
                        return request->command == SNMP_MSG_SET ? -EBADMSG
                                                                : -ENOENT;
        }
        if (q || a) {
                if (ret_index)
                        *ret_index = SIZE_MAX;
                return -EBADMSG;
        }
        if (ret_index)
                *ret_index = SIZE_MAX;
        return 0;
}

bool apc_outlet_is_number(const char *outlet, unsigned *ret_number) {
        unsigned n = 0;

        if (!outlet || !outlet[0])
                return false;
        for (const char *c = outlet; *c; c++)
                if (*c < '0' || *c > '9')
                        return false;
        for (const char *c = outlet; *c; c++) {
                unsigned digit = (unsigned) (*c - '0');

                if (n > (UINT_MAX - digit) / 10) {
                        n = UINT_MAX;
                        break;
                }
                n = n * 10 + digit;
        }
        if (ret_number)
                *ret_number = n;
        return true;
}

int apc_outlet_resolve(const char *outlet, unsigned outlet_count,
                       char *const *names, unsigned *ret_index) {
        unsigned number, found = 0;

        assert(outlet);
        assert(ret_index);

        if (!outlet[0])
                return -EINVAL;
        if (apc_outlet_is_number(outlet, &number)) {
                if (number < 1 || number > outlet_count)
                        return -ERANGE;
                *ret_index = number;
                return 0;
        }
        for (unsigned i = 0; names && i < outlet_count; i++) {
                if (!names[i] || !streq(names[i], outlet))
                        continue;
                if (found)
                        return -ENOTUNIQ;
                found = i + 1;
        }
        if (!found)
                return -ENOENT;
        *ret_index = found;
        return 0;
}

/* ==== net-snmp ==== */

/* net-snmp's messages (SNMP_CALLBACK_LOGGING) go to our debug log. */
static int snmp_log_to_debug(int major, int minor, void *server_arg,
                             void *client_arg) {
        const struct snmp_log_message *m = server_arg;
        size_t n;

        if (!m || !m->msg)
                return 0;
        n = strlen(m->msg);
        while (n > 0 && m->msg[n - 1] == '\n')
                n--;
        log_debug("net-snmp: %.*s", (int) (n < INT_MAX ? n : INT_MAX), m->msg);
        return 0;
}

int apc_snmp_init(void) {
        static bool initialized = false;

        if (initialized)
                return 0;

        /* No MIB files: numeric OIDs only, and no warnings about missing
         * modules. */
        if (setenv("MIBS", "", 1) < 0 || setenv("MIBDIRS", "", 1) < 0)
                return -ENOMEM;
        /* Nothing from /etc/snmp, ~/.snmp or /var/lib/snmp: another
         * program's defaults must not change ours (defVersion,
         * defCommunity...), and a fence must not write files. */
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID,
                               NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID,
                               NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID,
                               NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID,
                               NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);

        /* Without a handler net-snmp writes to stderr. */
        if (snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING,
                                   snmp_log_to_debug,
                                   NULL) != SNMPERR_SUCCESS ||
            !netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK,
                                         LOG_DEBUG))
                return -ENOMEM;

        init_snmp("haven-fenced");
        initialized = true;
        return 0;
}

/* ==== Operation ==== */

enum apc_action {
        APC_ACTION_OFF,
        APC_ACTION_ON,
        APC_ACTION_STATUS,
        APC_ACTION_LIST,
        APC_ACTION_CHECK,
        _APC_ACTION_MAX,
        _APC_ACTION_INVALID = -EINVAL,
};

static const char *const action_choices[_APC_ACTION_MAX + 1] = {
        [APC_ACTION_OFF] = "off",       [APC_ACTION_ON] = "on",
        [APC_ACTION_STATUS] = "status", [APC_ACTION_LIST] = "list",
        [APC_ACTION_CHECK] = "check",   [_APC_ACTION_MAX] = NULL,
};

static const struct haven_json_field request_policy[] = {
        {.name = "address",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = ADDRESS_LENGTH_MAX},
        {.name = "parameters", .kind = HAVEN_JSON_OBJECT, .nullable = true},
        {.name = "action",
         .kind = HAVEN_JSON_ENUM,
         .required = true,
         .choices = action_choices},
        {.name = "outlets",
         .kind = HAVEN_JSON_ARRAY,
         .nullable = true,
         .min = 0,
         .max = APC_REQUEST_OUTLETS_MAX},
        {.name = "expect_outlets",
         .kind = HAVEN_JSON_INT,
         .nullable = true,
         .min = 1,
         .max = APC_OUTLETS_MAX},
};

struct apc_outlet {
        const char *outlet; /* as requested (borrowed); NULL when listed */
        unsigned index;     /* 1-based; 0 until resolved */
        bool primary;       /* the first entry of its index: the one switched
                             * and polled */
        bool state_known;
        enum apc_state state;
        bool switched; /* a command was sent to it */
};

struct apc_op {
        enum apc_action action; /* _APC_ACTION_INVALID until parsed */
        const char *address;    /* borrowed from the request */
        struct apc_parameters p;
        unsigned expect_outlets;                /* 0: not given */
        char peer[ADDRESS_LENGTH_MAX + 16];     /* "udp:ADDR:PORT" */
        char location[ADDRESS_LENGTH_MAX + 16]; /* "ADDR:PORT" */
        void *session;                          /* snmp_sess_open() */
        bool answered; /* a request got its answer in this session */

        const struct apc_table *table; /* NULL until identified */
        enum apc_family family;
        const char *model; /* NULL: unknown */
        oid sys_object_id[MAX_OID_LEN];
        size_t sys_object_id_length; /* 0: unknown */
        unsigned outlet_count;       /* 0: unknown */
        char **names;                /* [outlet_count] or NULL */
        bool names_read;             /* a names column answered */

        struct apc_outlet *outlets;
        size_t n_outlets;

        uint64_t start_usec;
        /* The failure, once one was recorded (the first one wins). */
        const char *error_code;
        const char *error_field;
        char error_message[MESSAGE_MAX];
};

/* Whether the session authenticates with communities (v1/v2c). */
static bool op_community_based(const struct apc_op *op) {
        return op->p.version != SNMP_VERSION_3;
}

/* Closes the session. For v3 it also drops the user net-snmp created for
 * the device's engine: net-snmp keeps the keys of the first session of a
 * (engine, user) for the whole process and ignores those of later ones, so
 * a right password would hide a wrong one given later, and the other way
 * round. */
static void op_close(struct apc_op *op) {
        netsnmp_session *s;
        u_char engine_id[SNMP_MAX_ENG_SIZE];
        size_t engine_id_length = 0;
        struct usmUser *user;

        if (!op->session)
                return;
        s = snmp_sess_session(op->session);
        if (s && !op_community_based(op) && s->securityEngineID &&
            s->securityEngineIDLen <= sizeof engine_id) {
                engine_id_length = s->securityEngineIDLen;
                memcpy(engine_id, s->securityEngineID, engine_id_length);
        }
        (void) snmp_sess_close(op->session);
        op->session = NULL;

        if (engine_id_length == 0)
                return;
        user = usm_get_user(engine_id, engine_id_length,
                            (char *) op->p.username);
        if (user) {
                (void) usm_remove_user(user);
                (void) usm_free_user(user);
        }
}

static void op_done(struct apc_op *op) {
        op_close(op);
        if (op->names)
                for (unsigned i = 0; i < op->outlet_count; i++)
                        free(op->names[i]);
        free(op->names);
        op->names = NULL;
        free(op->outlets);
        op->outlets = NULL;
}

/* Records why the operation failed (unless a reason is already recorded)
 * and returns -EIO, which in this file means "failed, and op says why".
 * field may be NULL. */
_printf_(4, 5) static int op_fail(struct apc_op *op, const char *code,
                                  const char *field, const char *format, ...) {
        va_list ap;

        if (op->error_code)
                return -EIO;
        op->error_code = code;
        op->error_field = field;
        va_start(ap, format);
        (void) vsnprintf(op->error_message, sizeof op->error_message, format,
                         ap);
        va_end(ap);
        return -EIO;
}

static void op_forget_error(struct apc_op *op) {
        op->error_code = op->error_field = NULL;
        op->error_message[0] = '\0';
}

/* Whether SNMPv3 discovery got the device's engine ID (net-snmp runs it
 * before the first request of a session). */
static bool op_engine_known(struct apc_op *op) {
        netsnmp_session *s =
                op->session ? snmp_sess_session(op->session) : NULL;

        return s && s->securityEngineIDLen > 0;
}

/* The bound on one request with its retries, in milliseconds. */
static uint64_t op_request_ms(const struct apc_op *op) {
        return (uint64_t) op->p.timeout_ms * (op->p.retries + 1);
}

/* Records net-snmp error library_error (from an exchange, a SET when set,
 * or from opening the session) in terms an administrator can act on. doing
 * says what was being done ("reading the outlet states"). A v3 session
 * discovers the device's engine first: a timeout there means no device,
 * one on the first request after it a key the device cannot use. */
static int op_fail_snmp(struct apc_op *op, int library_error, bool set,
                        const char *doing) {
        char buf[HAVEN_TEXT_SHOWN_MAX + 4], time[32];
        const char *user = op->p.username ? haven_text_shown(op->p.username, buf) : "";

        switch (library_error) {
        case SNMPERR_TIMEOUT:
                /* Silence is all v1/v2c devices give a wrong community and
                 * what net-snmp agents give a wrong SNMPv3 privacy key;
                 * when the device did answer, silence says which. */
                if (set && op_community_based(op) && op->answered &&
                    !streq(op->p.community, op->p.read_community))
                        return op_fail(op, "auth", "community",
                                       "the device at %s answers reads with "
                                       "read_community but did not answer "
                                       "%s within %s (wrong write "
                                       "community?)",
                                       op->location, doing,
                                       seconds(op_request_ms(op), time));
                if (!op_community_based(op) && op_engine_known(op) &&
                    !op->answered &&
                    op->p.security_level == SNMP_SEC_LEVEL_AUTHPRIV)
                        return op_fail(op, "auth", "priv_password",
                                       "the device at %s answered SNMPv3 "
                                       "discovery but not the encrypted "
                                       "requests of user \"%s\" within %s "
                                       "(wrong priv_password or "
                                       "priv_protocol?)",
                                       op->location, user,
                                       seconds(op_request_ms(op), time));
                return op_fail(op, "timeout", NULL,
                               "no answer from %s within %s (%s)", op->location,
                               seconds(op_request_ms(op), time),
                               op_community_based(op)
                                       ? "wrong address, port or community? "
                                         "SNMP v1 and v2c devices do not "
                                         "answer a wrong community"
                                       : "wrong address or port?");
        case SNMPERR_UNKNOWN_USER_NAME:
        case SNMPERR_USM_UNKNOWNSECURITYNAME:
                return op_fail(op, "auth", "username",
                               "the device at %s does not know the SNMPv3 "
                               "user \"%s\"",
                               op->location, user);
        case SNMPERR_AUTHENTICATION_FAILURE:
        case SNMPERR_USM_AUTHENTICATIONFAILURE:
                return op_fail(op, "auth", "auth_password",
                               "the device at %s refused the authentication "
                               "of SNMPv3 user \"%s\" (wrong auth_password "
                               "or auth_protocol?)",
                               op->location, user);
        case SNMPERR_DECRYPTION_ERR:
        case SNMPERR_USM_DECRYPTIONERROR:
                return op_fail(op, "auth", "priv_password",
                               "the device at %s could not decrypt the "
                               "request of SNMPv3 user \"%s\" (wrong "
                               "priv_password or priv_protocol?)",
                               op->location, user);
        case SNMPERR_UNSUPPORTED_SEC_LEVEL:
        case SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL:
                return op_fail(op, "auth", "security_level",
                               "the SNMPv3 user \"%s\" is not configured for "
                               "this security_level on the device at %s",
                               user, op->location);
        case SNMPERR_BAD_ADDRESS:
                return op_fail(op, "device", "address",
                               "cannot resolve the address of %s",
                               op->location);
        default:
                return op_fail(op, "device", NULL,
                               "SNMP error with the device at %s while %s: %s",
                               op->location, doing,
                               snmp_api_errstring(library_error));
        }
}

/* Opens the session (for v3 this discovers the device's engine, one
 * exchange). Returns 0, -EIO or -ENOMEM. */
static int op_open(struct apc_op *op) {
        const struct apc_parameters *p = &op->p;
        netsnmp_session s;
        int clib_error = 0, library_error = 0;
        char *text = NULL;

        snmp_sess_init(&s);
        s.peername = op->peer;
        s.version = p->version;
        s.timeout = (long) p->timeout_ms * 1000;
        s.retries = (int) p->retries;

        if (op_community_based(op)) {
                s.community = (u_char *) p->community;
                s.community_len = strlen(p->community);
        } else {
                s.securityName = (char *) p->username;
                s.securityNameLen = strlen(p->username);
                s.securityLevel = p->security_level;
                if (p->security_level != SNMP_SEC_LEVEL_NOAUTH) {
                        s.securityAuthProto = (oid *) p->auth->oid;
                        s.securityAuthProtoLen = p->auth->length;
                        s.securityAuthKeyLen = USM_AUTH_KU_LEN;
                        if (generate_Ku(
                                    s.securityAuthProto,
                                    (u_int) s.securityAuthProtoLen,
                                    (const u_char *) p->auth_password,
                                    strlen(p->auth_password), s.securityAuthKey,
                                    &s.securityAuthKeyLen) != SNMPERR_SUCCESS)
                                return op_fail(op, "bad-parameter",
                                               "auth_password",
                                               "cannot derive a key from "
                                               "auth_password with %s",
                                               p->auth->name);
                }
                if (p->security_level == SNMP_SEC_LEVEL_AUTHPRIV) {
                        s.securityPrivProto = (oid *) p->priv->oid;
                        s.securityPrivProtoLen = p->priv->length;
                        s.securityPrivKeyLen = USM_PRIV_KU_LEN;
                        /* The privacy key is derived with the auth hash. */
                        if (generate_Ku(
                                    s.securityAuthProto,
                                    (u_int) s.securityAuthProtoLen,
                                    (const u_char *) p->priv_password,
                                    strlen(p->priv_password), s.securityPrivKey,
                                    &s.securityPrivKeyLen) != SNMPERR_SUCCESS)
                                return op_fail(op, "bad-parameter",
                                               "priv_password",
                                               "cannot derive a key from "
                                               "priv_password");
                }
        }

        op->session = snmp_sess_open(&s);
        /* s holds key material: wipe it whatever happened. */
        explicit_bzero(s.securityAuthKey, sizeof s.securityAuthKey);
        explicit_bzero(s.securityPrivKey, sizeof s.securityPrivKey);
        if (op->session)
                return 0;

        snmp_error(&s, &clib_error, &library_error, &text);
        log_debug("APC device at %s: opening the SNMP session failed: %s",
                  op->location, text ? text : "?");
        free(text);
        if (library_error == SNMPERR_MALLOC)
                return -ENOMEM;
        if (library_error == SNMPERR_SUCCESS || library_error == SNMPERR_GENERR)
                library_error = op_community_based(op) ? SNMPERR_BAD_ADDRESS
                                                       : SNMPERR_TIMEOUT;
        return op_fail_snmp(op, library_error, false, "opening the session");
}

/* A new PDU of command; GETs of v1/v2c carry the read community. Returns
 * NULL on -ENOMEM. */
static netsnmp_pdu *op_pdu_new(struct apc_op *op, int command) {
        netsnmp_pdu *pdu = snmp_pdu_create(command);

        if (!pdu)
                return NULL;
        if (command == SNMP_MSG_GET && op_community_based(op)) {
                pdu->community = (u_char *) strdup(op->p.read_community);
                if (!pdu->community) {
                        snmp_free_pdu(pdu);
                        return NULL;
                }
                pdu->community_len = strlen(op->p.read_community);
        }
        return pdu;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(netsnmp_pdu *, snmp_free_pdu)

/* Sends request (which stays the caller's) and waits for the answer.
 * Returns 0 and *ret_response (owned by the caller) when the answer
 * matches the request; -ENOENT (a requested object does not exist) and
 * -EACCES (a SET refused) with *ret_index (0-based or SIZE_MAX) and nothing
 * recorded, for the caller to word; -EIO when recorded; -ENOMEM. doing is
 * for messages ("reading the outlet states"). */
static int op_exchange(struct apc_op *op, const netsnmp_pdu *request,
                       const char *doing, netsnmp_pdu **ret_response,
                       size_t *ret_index) {
        _cleanup_(snmp_free_pdup) netsnmp_pdu *response = NULL;
        netsnmp_pdu *copy;
        long error_status;
        size_t index;
        int status, r;

        /* snmp_sess_synch_response() takes the PDU it sends. */
        copy = snmp_clone_pdu((netsnmp_pdu *) request);
        if (!copy)
                return -ENOMEM;
        status = snmp_sess_synch_response(op->session, copy, &response);
        if (status == STAT_SUCCESS)
                op->answered = true;
        if (status == STAT_TIMEOUT)
                return op_fail_snmp(op, SNMPERR_TIMEOUT,
                                    request->command == SNMP_MSG_SET, doing);
        if (status != STAT_SUCCESS) {
                int clib_error = 0, library_error = 0;
                char *text = NULL;

                snmp_sess_error(op->session, &clib_error, &library_error,
                                &text);
                log_debug("APC device at %s: %s failed: %s", op->location,
                          doing, text ? text : "?");
                free(text);
                if (library_error == SNMPERR_MALLOC)
                        return -ENOMEM;
                return op_fail_snmp(op, library_error,
                                    request->command == SNMP_MSG_SET, doing);
        }

        r = apc_answer_check(request, response, &index, &error_status);
        if (ret_index)
                *ret_index = index;
        switch (r) {
        case 0:
                *ret_response = TAKE_PTR(response);
                return 0;
        case -ENOENT:
        case -EACCES:
                return r;
        case -EPROTO:
                return op_fail(op, "device", NULL,
                               "the device at %s answered an error while "
                               "%s: %s",
                               op->location, doing,
                               error_status >= 0 && error_status <= MAX_SNMP_ERR
                                       ? snmp_errstring((int) error_status)
                                       : "unknown error-status");
        default:
                return op_fail(op, "device", NULL,
                               "the device at %s sent an answer that does "
                               "not match the request while %s",
                               op->location, doing);
        }
}

typedef int (*column_fn)(struct apc_op *op, size_t i,
                         const netsnmp_variable_list *vb, void *userdata);

/* GETs column.index for each of indices[0..n) (index 0: column is a scalar
 * whose OID already ends in .0), APC_GET_CHUNK per request, and calls fn
 * with the position in indices and the variable, in order. Returns 0;
 * -ENOENT (nothing recorded) when an object does not exist, with
 * *ret_missing (may be NULL) its position in indices; fn's negative
 * return; -EIO; -ENOMEM. */
static int op_read_column(struct apc_op *op, const struct oid_ref *column,
                          const unsigned *indices, size_t n, const char *doing,
                          column_fn fn, void *userdata, size_t *ret_missing) {
        int r;

        assert(column->name);
        assert(column->length < MAX_OID_LEN);

        for (size_t start = 0; start < n; start += APC_GET_CHUNK) {
                _cleanup_(snmp_free_pdup) netsnmp_pdu *request = NULL,
                                                      *response = NULL;
                size_t count = n - start < APC_GET_CHUNK ? n - start
                                                         : APC_GET_CHUNK,
                       index, i = start;

                request = op_pdu_new(op, SNMP_MSG_GET);
                if (!request)
                        return -ENOMEM;
                for (size_t k = 0; k < count; k++) {
                        oid name[MAX_OID_LEN];
                        size_t length = column->length;

                        memcpy(name, column->name, length * sizeof(oid));
                        if (indices[start + k] > 0)
                                name[length++] = indices[start + k];
                        if (!snmp_add_null_var(request, name, length))
                                return -ENOMEM;
                }

                r = op_exchange(op, request, doing, &response, &index);
                if (r == -ENOENT) {
                        if (ret_missing)
                                *ret_missing =
                                        index < count ? start + index : start;
                        return -ENOENT;
                }
                if (r < 0)
                        return r;
                assert(response);

                for (netsnmp_variable_list *vb = response->variables; vb;
                     vb = vb->next_variable, i++) {
                        r = fn(op, i, vb, userdata);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ==== Identification ==== */

static int store_sys_object_id(struct apc_op *op, size_t i,
                               const netsnmp_variable_list *vb,
                               void *userdata) {
        size_t length = vb->val_len / sizeof(oid);

        if (vb->type != ASN_OBJECT_ID || !vb->val.objid ||
            vb->val_len % sizeof(oid) != 0 || length > MAX_OID_LEN)
                return op_fail(op, "device", NULL,
                               "the device at %s answered sysObjectID with "
                               "something other than an OID",
                               op->location);
        memcpy(op->sys_object_id, vb->val.objid, length * sizeof(oid));
        op->sys_object_id_length = length;
        return 0;
}

static int store_count(struct apc_op *op, size_t i,
                       const netsnmp_variable_list *vb, void *userdata) {
        const struct oid_ref *ref = userdata;
        long value = 0;
        int r;

        r = apc_count_from_value(vb, &op->outlet_count);
        if (r == -ERANGE) {
                (void) integer_from_value(vb, &value);
                return op_fail(op, "device", NULL,
                               "the device at %s reports %ld outlets (%s); "
                               "at most %u are supported",
                               op->location, value, ref->label,
                               APC_OUTLETS_MAX);
        }
        if (r < 0)
                return op_fail(op, "device", NULL,
                               "the device at %s answered %s with something "
                               "other than an INTEGER",
                               op->location, ref->label);
        return 0;
}

/* Reads sysObjectID and the outlet count; picks the tables. Returns 0, -EIO
 * or -ENOMEM. */
static int op_identify(struct apc_op *op) {
        static const struct oid_ref sys_object_id = {
                .name = sys_object_id_oid,
                .length = ELEMENTSOF(sys_object_id_oid),
                .label = "sysObjectID",
        };
        static const unsigned scalar[] = {0};
        char text[256];
        enum apc_family family = APC_FAMILY_MASTERSWITCH;
        const char *model = NULL;
        int r;

        r = op_read_column(op, &sys_object_id, scalar, 1,
                           "reading its sysObjectID", store_sys_object_id, NULL,
                           NULL);
        if (r == -ENOENT && op->p.family_auto)
                return op_fail(op, "unsupported", "oid_family",
                               "the device at %s does not report a "
                               "sysObjectID: it is not an APC power strip, "
                               "or oid_family must be set",
                               op->location);
        if (r < 0 && r != -ENOENT)
                return r;

        r = apc_model_from_sys_object_id(
                op->sys_object_id, op->sys_object_id_length, &family, &model);
        if (r < 0 && op->p.family_auto)
                return op_fail(op, "unsupported", "oid_family",
                               "the device at %s is not an APC power strip "
                               "(sysObjectID %s)",
                               op->location,
                               oid_text(op->sys_object_id,
                                        op->sys_object_id_length, text,
                                        sizeof text));
        op->model = model;
        op->family = op->p.family_auto ? family : op->p.family;
        op->table = tables + op->family;

        for (size_t k = 0; k < ELEMENTSOF(op->table->counts); k++) {
                const struct oid_ref *count = op->table->counts + k;

                if (!count->name)
                        break;
                r = op_read_column(op, count, scalar, 1,
                                   "reading its outlet count", store_count,
                                   (void *) count, NULL);
                if (r != -ENOENT)
                        return r;
        }
        return op_fail(op, "unsupported", "oid_family",
                       "the device at %s does not report an outlet count "
                       "(%s): not a switched APC power strip of the %s "
                       "family%s",
                       op->location, op->table->counts[0].label,
                       family_names[op->family],
                       op->p.family_auto ? "; try setting oid_family" : "");
}

/* ==== Outlets ==== */

static int store_name(struct apc_op *op, size_t i,
                      const netsnmp_variable_list *vb, void *userdata) {
        const unsigned *indices = userdata;
        unsigned index = indices[i];
        char *name = NULL;
        int r;

        assert(index >= 1 && index <= op->outlet_count);

        r = apc_name_from_value(vb, &name);
        if (r == -ENOMEM)
                return r;
        /* A name that is not a string stays unknown: names only label. */
        free(op->names[index - 1]);
        op->names[index - 1] = name;
        return 0;
}

/* Reads the names of the outlets indices[0..n) into op->names. A device
 * without a names column leaves them unknown (NULL). Returns 0, -EIO or
 * -ENOMEM. */
static int op_read_names(struct apc_op *op, unsigned *indices, size_t n) {
        int r;

        if (!op->names) {
                op->names = calloc(op->outlet_count, sizeof(char *));
                if (!op->names)
                        return -ENOMEM;
        }
        for (size_t k = 0; k < ELEMENTSOF(op->table->names); k++) {
                const struct oid_ref *column = op->table->names + k;

                if (!column->name)
                        break;
                r = op_read_column(op, column, indices, n,
                                   "reading the outlet names", store_name,
                                   indices, NULL);
                if (r == 0)
                        op->names_read = true;
                if (r != -ENOENT)
                        return r;
        }
        log_debug("APC device at %s reports no outlet names", op->location);
        return 0;
}

/* Appends n outlets to op->outlets. Returns 0 or -ENOMEM. */
static int op_outlets_grow(struct apc_op *op, size_t n) {
        struct apc_outlet *o;

        o = reallocarray(op->outlets, op->n_outlets + n, sizeof(*o));
        if (!o)
                return -ENOMEM;
        memset(o + op->n_outlets, 0, n * sizeof(*o));
        op->outlets = o;
        op->n_outlets += n;
        return 0;
}

/* The distinct outlet indices of op->outlets (primary entries; those
 * matching only, when only is not NULL), in a new array. */
static int op_indices(struct apc_op *op,
                      bool (*only)(struct apc_outlet *o, void *userdata),
                      void *userdata, unsigned **ret, size_t *ret_n) {
        _cleanup_free_ unsigned *indices = NULL;
        size_t n = 0;

        indices = calloc(op->n_outlets + 1, sizeof(unsigned));
        if (!indices)
                return -ENOMEM;
        for (size_t i = 0; i < op->n_outlets; i++)
                if (op->outlets[i].primary &&
                    (!only || only(op->outlets + i, userdata)))
                        indices[n++] = op->outlets[i].index;
        *ret = TAKE_PTR(indices);
        *ret_n = n;
        return 0;
}

/* Reads the names of the outlets in op->outlets. */
static int op_read_all_names(struct apc_op *op) {
        _cleanup_free_ unsigned *indices = NULL;
        size_t n;
        int r;

        r = op_indices(op, NULL, NULL, &indices, &n);
        if (r < 0)
                return r;
        return op_read_names(op, indices, n);
}

/* Resolves every requested outlet, and reads the names needed to do so or
 * to label them. Returns 0, -EIO or -ENOMEM. */
static int op_resolve(struct apc_op *op) {
        _cleanup_free_ unsigned *indices = NULL;
        char buf[HAVEN_TEXT_SHOWN_MAX + 4];
        bool need_names = false;
        int r;

        for (size_t i = 0; i < op->n_outlets; i++)
                if (!apc_outlet_is_number(op->outlets[i].outlet, NULL))
                        need_names = true;

        if (need_names) {
                indices = calloc(op->outlet_count, sizeof(unsigned));
                if (!indices)
                        return -ENOMEM;
                for (unsigned i = 0; i < op->outlet_count; i++)
                        indices[i] = i + 1;
                r = op_read_names(op, indices, op->outlet_count);
                if (r < 0)
                        return r;
                free(TAKE_PTR(indices));
        }

        for (size_t i = 0; i < op->n_outlets; i++) {
                struct apc_outlet *o = op->outlets + i;
                const char *outlet = haven_text_shown(o->outlet, buf);

                r = apc_outlet_resolve(o->outlet, op->outlet_count, op->names,
                                       &o->index);
                if (r == -ERANGE)
                        return op_fail(op, "no-such-outlet", "outlets",
                                       "outlet %s does not exist: the device "
                                       "at %s has outlets 1 to %u",
                                       outlet, op->location, op->outlet_count);
                if (r == -ENOENT && !op->names_read)
                        return op_fail(op, "no-such-outlet", "outlets",
                                       "the device at %s reports no outlet "
                                       "names: give outlet \"%s\" by its "
                                       "number (1 to %u)",
                                       op->location, outlet, op->outlet_count);
                if (r == -ENOENT)
                        return op_fail(op, "no-such-outlet", "outlets",
                                       "no outlet of the device at %s is "
                                       "named \"%s\"",
                                       op->location, outlet);
                if (r == -ENOTUNIQ)
                        return op_fail(op, "no-such-outlet", "outlets",
                                       "several outlets of the device at %s "
                                       "are named \"%s\": give them by "
                                       "number",
                                       op->location, outlet);
                if (r < 0)
                        return op_fail(op, "bad-parameter", "outlets",
                                       "an outlet must not be empty");
                o->primary = true;
                for (size_t j = 0; j < i; j++)
                        if (op->outlets[j].index == o->index)
                                o->primary = false;
        }

        return need_names ? 0 : op_read_all_names(op);
}

/* Makes op->outlets every outlet of the device, for list. */
static int op_list_all(struct apc_op *op) {
        int r;

        r = op_outlets_grow(op, op->outlet_count);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < op->outlet_count; i++)
                op->outlets[i] = (struct apc_outlet){
                        .index = i + 1,
                        .primary = true,
                };
        return 0;
}

static int store_state(struct apc_op *op, size_t i,
                       const netsnmp_variable_list *vb, void *userdata) {
        const unsigned *indices = userdata;
        enum apc_state state;

        state = apc_state_from_value(op->family, vb);
        if (state < 0)
                return op_fail(op, "device", NULL,
                               "the device at %s answered %s.%u with "
                               "something other than an INTEGER",
                               op->location, op->table->state.label,
                               indices[i]);
        for (size_t k = 0; k < op->n_outlets; k++)
                if (op->outlets[k].index == indices[i]) {
                        op->outlets[k].state = state;
                        op->outlets[k].state_known = true;
                }
        return 0;
}

/* Reads the state of the outlets indices[0..n) into op->outlets. Returns 0,
 * -EIO or -ENOMEM. */
static int op_read_states(struct apc_op *op, unsigned *indices, size_t n) {
        size_t missing = 0;
        int r;

        r = op_read_column(op, &op->table->state, indices, n,
                           "reading the outlet states", store_state, indices,
                           &missing);
        if (r == -ENOENT)
                return op_fail(op, "device", NULL,
                               "the device at %s has no %s.%u (is it a "
                               "switched PDU of the %s family?)",
                               op->location, op->table->state.label,
                               missing < n ? indices[missing] : 0,
                               family_names[op->family]);
        return r;
}

static int op_read_all_states(struct apc_op *op) {
        _cleanup_free_ unsigned *indices = NULL;
        size_t n;
        int r;

        r = op_indices(op, NULL, NULL, &indices, &n);
        if (r < 0)
                return r;
        return op_read_states(op, indices, n);
}

/* ==== Switching ==== */

static bool not_in_state(struct apc_outlet *o, void *userdata) {
        const enum apc_state *target = userdata;

        return !o->state_known || o->state != *target;
}

/* Sends the command that switches outlet index to target. Returns 0, -EIO
 * or -ENOMEM. */
static int op_command(struct apc_op *op, unsigned index,
                      enum apc_state target) {
        _cleanup_(snmp_free_pdup) netsnmp_pdu *request = NULL, *response = NULL;
        const struct oid_ref *command = &op->table->command;
        long value = target == APC_STATE_ON ? op->table->command_on
                                            : op->table->command_off;
        oid name[MAX_OID_LEN];
        char doing[128], buf[HAVEN_TEXT_SHOWN_MAX + 4];
        size_t length = command->length;
        int r;

        memcpy(name, command->name, length * sizeof(oid));
        name[length++] = index;

        request = op_pdu_new(op, SNMP_MSG_SET);
        if (!request)
                return -ENOMEM;
        if (!snmp_pdu_add_variable(request, name, length, ASN_INTEGER, &value,
                                   sizeof value))
                return -ENOMEM;

        snprintf(doing, sizeof doing, "the command to switch outlet %u %s",
                 index, state_names[target]);
        r = op_exchange(op, request, doing, &response, NULL);
        if (r == -EACCES || r == -ENOENT) {
                if (op_community_based(op))
                        return op_fail(op, "auth", "community",
                                       "the device at %s refused to switch "
                                       "outlet %u (read-only community?)",
                                       op->location, index);
                return op_fail(op, "auth", "username",
                               "the device at %s refused to switch outlet %u "
                               "(has SNMPv3 user \"%s\" write access?)",
                               op->location, index, haven_text_shown(op->p.username, buf));
        }
        return r;
}

/* Sleeps usec on CLOCK_MONOTONIC (the whole of it, despite signals). */
static void sleep_usec(uint64_t usec) {
        struct timespec until;
        uint64_t deadline = haven_now_usec(CLOCK_MONOTONIC) + usec;

        until.tv_sec = (time_t) (deadline / USEC_PER_SEC);
        until.tv_nsec = (long) (deadline % USEC_PER_SEC * NSEC_PER_USEC);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) ==
               EINTR)
                ;
}

/* "3, 5 and 7" for the indices. */
static const char *index_list(const unsigned *indices, size_t n, char *buf,
                              size_t size) {
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < n && used < size; i++) {
                int k = snprintf(buf + used, size - used, "%s%u",
                                 i == 0       ? ""
                                 : i + 1 == n ? " and "
                                              : ", ",
                                 indices[i]);
                if (k < 0)
                        break;
                used += (size_t) k;
        }
        return buf;
}

/* Switches every requested outlet not in target, then polls until all read
 * target. Returns 0, -EIO or -ENOMEM. */
static int op_switch(struct apc_op *op, enum apc_state target) {
        _cleanup_free_ unsigned *indices = NULL;
        uint64_t deadline, poll_usec = (uint64_t) op->p.poll_ms * USEC_PER_MSEC;
        bool last_poll_answered = true;
        char list[256], time[32];
        size_t n;
        int r;

        r = op_read_all_states(op);
        if (r < 0)
                return r;
        r = op_indices(op, not_in_state, &target, &indices, &n);
        if (r < 0)
                return r;
        if (n == 0)
                return 0; /* all already there: nothing to send */

        /* Every outlet first, then one verification for all: a node on
         * two outlets loses power at once. */
        for (size_t i = 0; i < n; i++) {
                r = op_command(op, indices[i], target);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < op->n_outlets; k++)
                        if (op->outlets[k].index == indices[i]) {
                                op->outlets[k].switched = true;
                                op->outlets[k].state_known = false;
                        }
        }

        deadline = haven_now_usec(CLOCK_MONOTONIC) +
                   (uint64_t) op->p.power_timeout_ms * USEC_PER_MSEC;
        for (;;) {
                uint64_t now;

                /* indices: the outlets that did not read target yet. */
                r = op_read_states(op, indices, n);
                if (r == -EIO && op->error_code &&
                    streq(op->error_code, "timeout")) {
                        /* A device busy switching may miss a poll. */
                        log_debug("APC device at %s: %s, polling on",
                                  op->location, op->error_message);
                        op_forget_error(op);
                        last_poll_answered = false;
                } else if (r < 0)
                        return r;
                else
                        last_poll_answered = true;

                free(TAKE_PTR(indices));
                r = op_indices(op, not_in_state, &target, &indices, &n);
                if (r < 0)
                        return r;
                if (n == 0)
                        return 0;

                now = haven_now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return op_fail(
                                op, "verify-timeout", NULL,
                                "outlet%s %s of the device at %s "
                                "did not read %s within %s of the "
                                "command%s",
                                n == 1 ? "" : "s",
                                index_list(indices, n, list, sizeof list),
                                op->location, state_names[target],
                                seconds(op->p.power_timeout_ms, time),
                                last_poll_answered ? ""
                                                   : " (the device did not "
                                                     "answer the last poll)");
                sleep_usec(poll_usec < deadline - now ? poll_usec
                                                      : deadline - now);
        }
}

/* ==== Request ==== */

/* Sets op->peer and op->location from address and the port. Returns 0 or
 * -EIO (bad-parameter recorded). */
static int op_address(struct apc_op *op, const char *address) {
        unsigned char buf[sizeof(struct in6_addr)];
        char shown_buf[HAVEN_TEXT_SHOWN_MAX + 4];
        bool host =
                address[0] != '\0' && address[0] != '-' && address[0] != '.';

        if (inet_pton(AF_INET, address, buf) == 1) {
                snprintf(op->peer, sizeof op->peer, "udp:%s:%u", address,
                         op->p.port);
                snprintf(op->location, sizeof op->location, "%s:%u", address,
                         op->p.port);
                return 0;
        }
        if (inet_pton(AF_INET6, address, buf) == 1) {
                snprintf(op->peer, sizeof op->peer, "udp6:[%s]:%u", address,
                         op->p.port);
                snprintf(op->location, sizeof op->location, "[%s]:%u", address,
                         op->p.port);
                return 0;
        }
        /* A host name: letters, digits, '-' and '.' (nothing net-snmp could
         * take for a transport specifier). */
        for (const char *c = address; *c && host; c++)
                host = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                       (*c >= '0' && *c <= '9') || *c == '-' || *c == '.';
        if (!host)
                return op_fail(op, "bad-parameter", "address",
                               "\"%s\" is not an IP address or host name",
                               haven_text_shown(address, shown_buf));
        snprintf(op->peer, sizeof op->peer, "udp:%s:%u", address, op->p.port);
        snprintf(op->location, sizeof op->location, "%s:%u", address,
                 op->p.port);
        return 0;
}

/* Fills op from request. Returns 0, -EIO (bad-parameter recorded) or
 * -ENOMEM. */
static int op_parse_request(struct apc_op *op, struct json_object *request) {
        struct json_object *parameters = NULL, *outlets = NULL;
        struct check_error error = {};
        const char *action;
        size_t n;
        int64_t expect;
        int r;

        if (!json_object_is_type(request, json_type_object))
                return op_fail(op, "bad-parameter", NULL,
                               "the request must be a JSON object");
        r = check_object(request, request_policy, ELEMENTSOF(request_policy),
                         "request field", &error);
        if (r < 0)
                return op_fail(op, "bad-parameter", error.field, "%s",
                               error.message);

        r = haven_json_get_string(request, "action", &action);
        assert(r == 0);
        for (enum apc_action a = 0; a < _APC_ACTION_MAX; a++)
                if (streq(action_choices[a], action))
                        op->action = a;
        assert(op->action >= 0);

        (void) haven_json_get_object(request, "parameters", &parameters);
        r = parameters_parse(parameters, &op->p, &error);
        if (r < 0)
                return op_fail(op, "bad-parameter", error.field, "%s",
                               error.message);

        r = haven_json_get_string(request, "address", &op->address);
        assert(r == 0);
        r = op_address(op, op->address);
        if (r < 0)
                return r;

        if (haven_json_get_int64(request, "expect_outlets", &expect) == 0)
                op->expect_outlets = (unsigned) expect;

        (void) haven_json_get_array(request, "outlets", &outlets);
        n = outlets ? json_object_array_length(outlets) : 0;
        if (op->action == APC_ACTION_LIST)
                return 0; /* every outlet, whatever was asked */
        if (n == 0 && op->action != APC_ACTION_CHECK)
                return op_fail(op, "bad-parameter", "outlets",
                               "action \"%s\" needs at least one outlet",
                               action);
        r = op_outlets_grow(op, n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                struct json_object *o = json_object_array_get_idx(outlets, i);
                const char *s;

                if (!json_object_is_type(o, json_type_string))
                        return op_fail(op, "bad-parameter", "outlets",
                                       "outlet %zu must be a string (a "
                                       "number or a name)",
                                       i + 1);
                s = json_object_get_string(o);
                if ((size_t) json_object_get_string_len(o) != strlen(s) ||
                    s[0] == '\0' || strlen(s) > APC_OUTLET_LENGTH_MAX)
                        return op_fail(op, "bad-parameter", "outlets",
                                       "outlet %zu must be 1 to %u bytes "
                                       "without NUL",
                                       i + 1, APC_OUTLET_LENGTH_MAX);
                op->outlets[i].outlet = s;
        }
        return 0;
}

/* ==== Actions ==== */

static int op_run(struct apc_op *op) {
        int r;

        r = op_open(op);
        if (r < 0)
                return r;
        r = op_identify(op);
        if (r < 0)
                return r;

        switch (op->action) {
        case APC_ACTION_LIST:
                r = op_list_all(op);
                if (r < 0)
                        return r;
                r = op_read_all_names(op);
                if (r < 0)
                        return r;
                return op_read_all_states(op);

        case APC_ACTION_CHECK:
                if (op->expect_outlets > 0 &&
                    op->expect_outlets != op->outlet_count)
                        return op_fail(op, "device", "expect_outlets",
                                       "the device at %s has %u outlets, %u "
                                       "are configured",
                                       op->location, op->outlet_count,
                                       op->expect_outlets);
                _fallthrough_;
        case APC_ACTION_STATUS:
                r = op_resolve(op);
                if (r < 0)
                        return r;
                return op_read_all_states(op);

        case APC_ACTION_OFF:
        case APC_ACTION_ON:
                r = op_resolve(op);
                if (r < 0)
                        return r;
                return op_switch(op, op->action == APC_ACTION_ON
                                             ? APC_STATE_ON
                                             : APC_STATE_OFF);
        default:
                assert_not_reached();
        }
}

/* ==== Result ==== */

static int add_string(struct json_object *obj, const char *key, const char *s) {
        struct json_object *v = NULL;

        if (s) {
                v = json_object_new_string(s);
                if (!v)
                        return -ENOMEM;
        }
        return haven_json_add(obj, key, v);
}

static int add_int(struct json_object *obj, const char *key, int64_t n) {
        struct json_object *v = json_object_new_int64(n);

        return v ? haven_json_add(obj, key, v) : -ENOMEM;
}

static int add_bool(struct json_object *obj, const char *key, bool b) {
        struct json_object *v = json_object_new_boolean(b);

        return v ? haven_json_add(obj, key, v) : -ENOMEM;
}

static int outlet_to_json(const struct apc_op *op, const struct apc_outlet *o,
                          struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        char number[16];
        const char *name = NULL;
        int r;

        obj = json_object_new_object();
        if (!obj)
                return -ENOMEM;
        snprintf(number, sizeof number, "%u", o->index);
        r = add_string(obj, "outlet", o->outlet ? o->outlet : number);
        if (r < 0)
                return r;
        if (o->index > 0)
                r = add_int(obj, "index", o->index);
        else
                r = haven_json_add(obj, "index", NULL);
        if (r < 0)
                return r;
        if (op->names && o->index > 0)
                name = op->names[o->index - 1];
        r = add_string(obj, "name", name);
        if (r < 0)
                return r;
        r = add_string(obj, "state",
                       o->state_known ? state_names[o->state] : NULL);
        if (r < 0)
                return r;
        if (op->action == APC_ACTION_OFF || op->action == APC_ACTION_ON) {
                r = add_bool(obj, "switched", o->switched);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(obj);
        return 0;
}

static int op_result(const struct apc_op *op, bool ok,
                     struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL,
                                                       *outlets = NULL;
        struct json_object *v;
        uint64_t tenths;
        char text[256], elapsed[32];
        int r;

        obj = json_object_new_object();
        outlets = json_object_new_array();
        if (!obj || !outlets)
                return -ENOMEM;

        r = add_bool(obj, "ok", ok);
        if (r < 0)
                return r;
        r = add_string(obj, "action",
                       op->action >= 0 ? action_choices[op->action] : NULL);
        if (r < 0)
                return r;
        r = add_string(obj, "address", op->address);
        if (r < 0)
                return r;
        r = add_string(obj, "model", op->model);
        if (r < 0)
                return r;
        r = add_string(obj, "oid_family",
                       op->table ? family_names[op->family] : NULL);
        if (r < 0)
                return r;
        r = add_string(obj, "sys_object_id",
                       op->sys_object_id_length > 0
                               ? oid_text(op->sys_object_id,
                                          op->sys_object_id_length, text,
                                          sizeof text)
                               : NULL);
        if (r < 0)
                return r;
        if (op->outlet_count > 0)
                r = add_int(obj, "outlet_count", op->outlet_count);
        else
                r = haven_json_add(obj, "outlet_count", NULL);
        if (r < 0)
                return r;

        for (size_t i = 0; i < op->n_outlets; i++) {
                struct json_object *o = NULL;

                if (op->outlets[i].index == 0)
                        continue; /* not resolved */
                r = outlet_to_json(op, op->outlets + i, &o);
                if (r < 0)
                        return r;
                if (json_object_array_add(outlets, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        r = haven_json_add(obj, "outlets", TAKE_PTR(outlets));
        if (r < 0)
                return r;

        /* Milliseconds with one decimal, printed as such ("12.3", not
         * json-c's "12.300000000000001"). */
        tenths = (haven_now_usec(CLOCK_MONOTONIC) - op->start_usec + 50) / 100;
        snprintf(elapsed, sizeof elapsed, "%" PRIu64 ".%" PRIu64, tenths / 10,
                 tenths % 10);
        v = json_object_new_double_s((double) tenths / 10, elapsed);
        if (!v)
                return -ENOMEM;
        r = haven_json_add(obj, "elapsed_ms", v);
        if (r < 0)
                return r;

        if (!ok) {
                _cleanup_(json_object_putp) struct json_object *error = NULL;

                error = json_object_new_object();
                if (!error)
                        return -ENOMEM;
                r = add_string(error, "code", op->error_code);
                if (r < 0)
                        return r;
                r = add_string(error, "message", op->error_message);
                if (r < 0)
                        return r;
                r = add_string(error, "field", op->error_field);
                if (r < 0)
                        return r;
                r = haven_json_add(obj, "error", TAKE_PTR(error));
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(obj);
        return 0;
}

int apc_device_op(struct json_object *request,
                  struct json_object **ret_result) {
        _cleanup_(op_done) struct apc_op op = {
                .action = _APC_ACTION_INVALID,
                .start_usec = haven_now_usec(CLOCK_MONOTONIC),
        };
        int r;

        assert(ret_result);

        r = apc_snmp_init();
        if (r < 0)
                return r;

        r = op_parse_request(&op, request);
        if (r == 0)
                r = op_run(&op);
        if (r == -ENOMEM)
                return r;
        if (r < 0 && !op.error_code)
                /* Every failure records why; this would be a bug here. */
                (void) op_fail(&op, "device", NULL,
                               "internal error talking to %s: %s",
                               op.location[0] ? op.location : "the device",
                               strerror(-r));
        return op_result(&op, r == 0, ret_result);
}
