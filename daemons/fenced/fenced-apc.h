/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The native APC power strip driver (PowerNet-MIB over SNMP v1, v2c or v3):
 * one synchronous device operation per call, a JSON request in and a JSON
 * result out, run by haven-fence-apc (daemons/fence-apc) in a short-lived child whose
 * parent bounds it with its own timeout. Also the I/O-free pieces the driver
 * is made of (parameter validation, device identification, answer
 * interpretation, outlet resolution), callable alone by tests and fuzzers.
 * Must not: block beyond the bounds its parameters give, write to stdout or
 * stderr, or switch an outlet it was not asked to switch.
 */
#pragma once

#include <json-c/json.h>
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/types.h>

#include "haven/macro.h"

/* Outlets a device may report; more is taken for a broken answer. */
#define APC_OUTLETS_MAX 256u
/* Outlets one request may name. */
#define APC_REQUEST_OUTLETS_MAX 64u
/* Characters of an outlet in a request (a number or a name). */
#define APC_OUTLET_LENGTH_MAX 64u
/* Bytes kept of an outlet name the device reports. */
#define APC_NAME_MAX 64u

/* ==== Device operation ==== */

/* Runs one operation on the power strip the request names:
 *   {"address": "198.18.0.254", "parameters": {...},
 *    "action": "off"|"on"|"status"|"list"|"check",
 *    "outlets": ["3", "node2"], "expect_outlets": 8}
 * "parameters" may be missing or null (every default); "outlets" is required
 * (non-empty) for off, on and status, optional for check, ignored for list;
 * "expect_outlets" is optional (check fails when the device has another
 * outlet count; the other actions ignore it: a fence must not fail on it).
 * Every requested outlet is resolved (a number, or a name matched exactly)
 * before anything is switched. off/on then send the command to every
 * outlet not already in the target state, and poll them all every poll_ms
 * until all read that state or power_timeout_ms passes. It takes at most
 * a few requests of timeout_ms * (retries + 1) each, plus power_timeout_ms.
 * Always produces *ret_result (a new reference, owned by the caller):
 *   {"ok": bool, "action", "address", "model", "oid_family",
 *    "sys_object_id": ".1.3.6...", "outlet_count",
 *    "outlets": [{"outlet": as requested, "index", "name", "state":
 *                 "on"|"off"|"unknown", "switched": bool (off/on only)}],
 *    "elapsed_ms", "error": {"code", "message", "field"}}  (error: !ok)
 * "outlets" holds the requested outlets (every outlet for list) once
 * resolved; error codes are timeout, auth, no-such-outlet, bad-parameter,
 * device, verify-timeout and unsupported, "field" the parameter or request
 * field to fix (or null); what is not known is null. Returns 0 whenever a
 * result was produced (device errors included), -ENOMEM otherwise.
 * Initializes net-snmp on first use (see apc_snmp_init()). */
int apc_device_op(struct json_object *request, struct json_object **ret_result);

/* Validates device parameters without any I/O, as apc_device_op() would
 * (unknown keys, types, ranges, and the combinations SNMP versions and
 * security levels allow). parameters may be NULL (every default). Returns
 * 0 (*ret_field and *ret_message set to NULL), -EINVAL with *ret_field (the
 * offending key, or "parameters" when it is not an object) and *ret_message
 * (for an administrator: `"port" must be at most 65535`), both owned by the
 * caller, or -ENOMEM. */
int apc_parameters_validate(struct json_object *parameters, char **ret_field,
                            char **ret_message);

/* Initializes net-snmp for this process, once (later calls return at once):
 * no configuration or persistent files read or written, no MIB loaded
 * (sets MIBS="" in the environment), library messages routed to log_debug()
 * so that nothing reaches stdout or stderr. Returns 0 or -ENOMEM. */
int apc_snmp_init(void);

/* ==== Answer interpretation (pure) ==== */

enum apc_family {
        APC_FAMILY_RPDU,         /* rPDUOutlet* tables (AP79xx) */
        APC_FAMILY_MASTERSWITCH, /* sPDUOutletCtl table (older units) */
        _APC_FAMILY_MAX,
        _APC_FAMILY_INVALID = -EINVAL,
};

enum apc_state {
        APC_STATE_ON,
        APC_STATE_OFF,
        APC_STATE_UNKNOWN, /* switching, rebooting, or a value we do not know */
        _APC_STATE_MAX,
        _APC_STATE_INVALID = -EINVAL,
};

/* "rpdu", "masterswitch" / "on", "off", "unknown"; NULL when out of range. */
const char *apc_family_to_string(enum apc_family family);
const char *apc_state_to_string(enum apc_state state);

/* Identifies a device from its sysObjectID (o[0..len)). Returns 0 with
 * *ret_family (the tables auto detection picks: rPDU for
 * .1.3.6.1.4.1.318.1.3.4.5 and below, MasterSwitch for anything else under
 * APC's .1.3.6.1.4.1.318) and *ret_model (a static display name such as
 * "rPDU" or "MasterSwitch Plus"); -EOPNOTSUPP when the OID is not APC's.
 * o may be NULL when len is 0. Either ret may be NULL. */
int apc_model_from_sys_object_id(const oid *o, size_t len,
                                 enum apc_family *ret_family,
                                 const char **ret_model);

/* The outlet state a status (or control) variable of family's table holds.
 * Returns the state (APC_STATE_UNKNOWN for integers other than on and off)
 * or -EBADMSG when vb is not an INTEGER. */
enum apc_state apc_state_from_value(enum apc_family family,
                                    const netsnmp_variable_list *vb);

/* The outlet count an INTEGER variable holds. Returns 0 and *ret
 * (1..APC_OUTLETS_MAX), -EBADMSG when vb is not an INTEGER, -ERANGE when the
 * number is outside 1..APC_OUTLETS_MAX. */
int apc_count_from_value(const netsnmp_variable_list *vb, unsigned *ret);

/* The outlet name an OCTET STRING variable holds, as a new C string (owned
 * by the caller) that is safe to show and to put in JSON: at most
 * APC_NAME_MAX bytes, NUL bytes, control characters and invalid UTF-8
 * replaced by '?'. Returns 0, -EBADMSG when vb is not an OCTET STRING, or
 * -ENOMEM. */
int apc_name_from_value(const netsnmp_variable_list *vb, char **ret);

/* Checks that response answers request (same command family: a RESPONSE
 * with one variable per requested one, same names, same order). Returns 0;
 * -ENOENT when a requested object does not exist (v1 noSuchName on a GET,
 * v2c/v3 noSuchObject, noSuchInstance, endOfMibView); -EACCES when a SET
 * was refused for access (noSuchName, readOnly, noAccess, notWritable,
 * authorizationError, noCreation, inconsistentName); -EPROTO for another
 * error-status (*ret_error_status tells which); -EBADMSG for an answer that
 * does not match the request. *ret_index (may be NULL) is the 0-based
 * variable concerned, or SIZE_MAX when none (or none of the request's) is
 * named; *ret_error_status
 * (may be NULL) the error-status (0 when none). */
int apc_answer_check(const netsnmp_pdu *request, const netsnmp_pdu *response,
                     size_t *ret_index, long *ret_error_status);

/* Whether outlet is an outlet number (digits only). *ret_number (may be
 * NULL) is its value, or UINT_MAX when it does not fit. */
bool apc_outlet_is_number(const char *outlet, unsigned *ret_number);

/* Resolves an outlet of a request on a device with outlet_count outlets
 * whose names (outlet_count entries, an entry or the whole array may be
 * NULL when unknown) were read: a number is the outlet index, anything else
 * is matched exactly against the names. Returns 0 and *ret_index
 * (1..outlet_count), -ERANGE for a number outside 1..outlet_count, -ENOENT
 * for a name no outlet has, -ENOTUNIQ for a name several outlets have (a
 * node on two outlets must be named by both numbers: switching the first
 * match alone would leave it powered), -EINVAL for an empty string. */
int apc_outlet_resolve(const char *outlet, unsigned outlet_count,
                       char *const *names, unsigned *ret_index);
