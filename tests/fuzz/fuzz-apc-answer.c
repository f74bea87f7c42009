/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the APC driver's handling of outside input
 * (daemons/fenced/fenced-apc.h): what a device answers and what an
 * administrator configures. The first byte picks the path:
 *   0: device parameters as JSON text → apc_parameters_validate();
 *   1: an SNMP PDU as BER bytes, parsed by net-snmp's snmp_pdu_parse()
 *      (what a real answer goes through), checked against a request;
 *   2: an answer built variable by variable from the bytes (OID, ASN.1
 *      type and value each chosen by the input), checked the same way.
 * For 1 and 2 the second byte shapes the request (GET or SET, the answer's
 * own OIDs or a fixed list) and the answer then goes through
 * apc_answer_check() and, variable by variable, every value interpreter
 * and the outlet resolution over the names it holds. Besides what the
 * sanitizers catch, it aborts when a result breaks what fenced-apc.h
 * promises: an unlisted return value, an index past the request, a state,
 * count or name outside its contract, a validation whose field and message
 * do not match its verdict.
 */
#include <stdint.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include "haven/json.h"

#include "../../daemons/fenced/fenced-apc.h"
#include "fuzz-util.h"

#define JSON_SIZE_MAX 3000u
#define VARIABLES_MAX 64u /* variables of a built answer */

DEFINE_TRIVIAL_CLEANUP_FUNC(netsnmp_pdu *, snmp_free_pdu)

#define APC 1, 3, 6, 1, 4, 1, 318

/* OIDs a built answer names (the outlet index is appended to columns). */
#define KNOWN(column_, ...)                                                    \
        {                                                                      \
                .name = (const oid[]){__VA_ARGS__},                            \
                .length = sizeof((const oid[]){__VA_ARGS__}) / sizeof(oid),    \
                .column = (column_),                                           \
        }

static const struct {
        const oid *name;
        size_t length;
        bool column;
} known_oids[] = {
        KNOWN(false, 1, 3, 6, 1, 2, 1, 1, 2, 0),   /* sysObjectID */
        KNOWN(false, APC, 1, 1, 12, 3, 1, 3, 0),   /* count */
        KNOWN(false, APC, 1, 1, 4, 4, 1, 0),       /* count (old) */
        KNOWN(true, APC, 1, 1, 12, 3, 5, 1, 1, 4), /* state */
        KNOWN(true, APC, 1, 1, 12, 3, 5, 1, 1, 2), /* name */
        KNOWN(true, APC, 1, 1, 12, 3, 3, 1, 1, 4), /* command */
        KNOWN(true, APC, 1, 1, 4, 4, 2, 1, 3),     /* sPDUOutletCtl */
};

static const char *const outlets[] = {"3",   "node3",       "0",       "",
                                      "web", "99999999999", "Outlet 1"};

/* Whether s is what apc_name_from_value() promises: valid UTF-8 without
 * control characters, at most APC_NAME_MAX bytes. */
static bool safe_name(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n = strlen(s);

        if (n > APC_NAME_MAX)
                return false;
        for (size_t i = 0; i < n;) {
                size_t k;

                if (p[i] < 0x20 || p[i] == 0x7f)
                        return false;
                if (p[i] < 0x80) {
                        i++;
                        continue;
                }
                k = p[i] >= 0xF0 ? 4 : p[i] >= 0xE0 ? 3 : 2;
                if (p[i] < 0xC2 || p[i] > 0xF4 || i + k > n)
                        return false;
                for (size_t j = 1; j < k; j++)
                        if ((p[i + j] & 0xC0) != 0x80)
                                return false;
                i += k;
        }
        return true;
}

/* ==== Parameters ==== */

static void fuzz_parameters(const uint8_t *data, size_t size) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        _cleanup_free_ char *field = NULL, *message = NULL, *field2 = NULL,
                            *message2 = NULL;
        int r;

        if (haven_json_parse((const char *) data, size, JSON_SIZE_MAX, &obj) <
            0)
                return;
        r = apc_parameters_validate(obj, &field, &message);
        check(r == 0 || r == -EINVAL);
        if (r == 0) {
                check(!field && !message);
        } else {
                check(field && message && message[0]);
                /* The field is the object's key or a known name. */
                check(streq(field, "parameters") ||
                      (json_object_is_type(obj, json_type_object) &&
                       (json_object_object_get_ex(obj, field, NULL) ||
                        streq(field, "username") ||
                        streq(field, "auth_password") ||
                        streq(field, "priv_password"))));
        }
        /* Same verdict the second time: no hidden state. */
        check(apc_parameters_validate(obj, &field2, &message2) == r);
        check((!field && !field2) || streq(field, field2));
}

/* ==== Answers ==== */

/* Runs every interpreter over response, as the request (made from the
 * answer's own OIDs or the fixed list, GET or SET) would see it. */
static void interpret(const netsnmp_pdu *response, uint8_t shape) {
        _cleanup_(snmp_free_pdup) netsnmp_pdu *request = NULL;
        char *names[APC_OUTLETS_MAX] = {};
        unsigned n_names = 0, n_request = 0, index;
        size_t at;
        long status;
        int r;

        request = snmp_pdu_create(shape & 1 ? SNMP_MSG_SET : SNMP_MSG_GET);
        check(request);
        if (shape & 2) {
                for (netsnmp_variable_list *vb = response->variables;
                     vb && n_request < VARIABLES_MAX; vb = vb->next_variable)
                        if (vb->name && vb->name_length > 0 &&
                            vb->name_length <= MAX_OID_LEN) {
                                check(snmp_add_null_var(request, vb->name,
                                                        vb->name_length));
                                n_request++;
                        }
        } else
                for (size_t i = 0; i < ELEMENTSOF(known_oids); i++) {
                        check(snmp_add_null_var(request, known_oids[i].name,
                                                known_oids[i].length));
                        n_request++;
                }

        r = apc_answer_check(request, response, &at, &status);
        check(r == 0 || r == -ENOENT || r == -EACCES || r == -EPROTO ||
              r == -EBADMSG);
        check(at == SIZE_MAX || at < n_request);
        if (response->command == SNMP_MSG_RESPONSE)
                check((status != 0) == (response->errstat != 0));
        else
                check(r == -EBADMSG);
        if (r == -EACCES)
                check(request->command == SNMP_MSG_SET);
        check(apc_answer_check(request, response, NULL, NULL) == r);

        for (netsnmp_variable_list *vb = response->variables; vb;
             vb = vb->next_variable) {
                char *name = NULL;
                unsigned count = 0;

                for (enum apc_family f = 0; f < _APC_FAMILY_MAX; f++) {
                        enum apc_state s = apc_state_from_value(f, vb);

                        check(s == -EBADMSG || (s >= 0 && s < _APC_STATE_MAX));
                        check(s < 0 || apc_state_to_string(s));
                }

                r = apc_count_from_value(vb, &count);
                check(r == 0 || r == -EBADMSG || r == -ERANGE);
                check(r < 0 || (count >= 1 && count <= APC_OUTLETS_MAX));

                /* Variables that are not strings leave a hole (NULL), as
                 * a device that does not name an outlet does. */
                r = apc_name_from_value(vb, &name);
                check(r == 0 || r == -EBADMSG);
                check(r < 0 || safe_name(name));
                if (n_names < APC_OUTLETS_MAX)
                        names[n_names++] = name;
                else
                        free(name);

                if (vb->type == ASN_OBJECT_ID && vb->val.objid) {
                        enum apc_family family = _APC_FAMILY_INVALID;
                        const char *model = NULL;

                        r = apc_model_from_sys_object_id(
                                vb->val.objid, vb->val_len / sizeof(oid),
                                &family, &model);
                        check(r == 0 || r == -EOPNOTSUPP);
                        check(r < 0 || (model && apc_family_to_string(family)));
                }
        }

        /* Resolution over the names the answer held. */
        for (size_t i = 0; i <= ELEMENTSOF(outlets); i++) {
                const char *outlet = i < ELEMENTSOF(outlets)   ? outlets[i]
                                     : n_names > 0 && names[0] ? names[0]
                                                               : "x";

                r = apc_outlet_resolve(outlet, n_names, names, &index);
                check(r == 0 || r == -ERANGE || r == -ENOENT ||
                      r == -ENOTUNIQ || r == -EINVAL);
                if (r == 0) {
                        check(index >= 1 && index <= n_names);
                        check(apc_outlet_is_number(outlet, NULL) ||
                              streq(names[index - 1], outlet));
                }
        }
        for (unsigned i = 0; i < n_names; i++)
                free(names[i]);
}

static void fuzz_ber(const uint8_t *data, size_t size) {
        _cleanup_(snmp_free_pdup) netsnmp_pdu *response = NULL;
        _cleanup_free_ u_char *copy = NULL;
        size_t length;

        if (size < 1)
                return;
        length = size - 1;
        /* net-snmp's parser takes a non-const buffer. */
        copy = malloc(length + 1);
        check(copy);
        memcpy(copy, data + 1, length);
        response = SNMP_MALLOC_TYPEDEF(netsnmp_pdu);
        check(response);
        if (snmp_pdu_parse(response, copy, &length) != SNMPERR_SUCCESS)
                return;
        interpret(response, data[0]);
}

/* Takes n bytes from *data (fewer when it runs out). */
static const uint8_t *take(const uint8_t **data, size_t *size, size_t n,
                           size_t *ret_n) {
        const uint8_t *p = *data;

        n = n < *size ? n : *size;
        *data += n;
        *size -= n;
        *ret_n = n;
        return p;
}

static void fuzz_built(const uint8_t *data, size_t size) {
        static const u_char types[] = {
                ASN_INTEGER,       ASN_OCTET_STR,
                ASN_OBJECT_ID,     ASN_NULL,
                ASN_COUNTER,       ASN_GAUGE,
                ASN_TIMETICKS,     ASN_IPADDRESS,
                SNMP_NOSUCHOBJECT, SNMP_NOSUCHINSTANCE,
                SNMP_ENDOFMIBVIEW, ASN_COUNTER64,
        };
        _cleanup_(snmp_free_pdup) netsnmp_pdu *response = NULL;
        uint8_t shape;
        size_t n;

        if (size < 4)
                return;
        shape = data[0];
        response = snmp_pdu_create(data[1] & 0x80 ? SNMP_MSG_REPORT
                                                  : SNMP_MSG_RESPONSE);
        check(response);
        response->errstat = data[1] & 0x1f;
        response->errindex = data[2];
        data += 3;
        size -= 3;

        for (unsigned v = 0; size >= 3 && v < VARIABLES_MAX; v++) {
                uint8_t which = data[0], type = data[1], length = data[2];
                const uint8_t *value;
                oid name[MAX_OID_LEN];
                size_t name_length, k = which % (ELEMENTSOF(known_oids) + 1);

                data += 3;
                size -= 3;
                if (k < ELEMENTSOF(known_oids)) {
                        name_length = known_oids[k].length;
                        memcpy(name, known_oids[k].name,
                               name_length * sizeof(oid));
                        if (known_oids[k].column)
                                name[name_length++] = which >> 3;
                } else {
                        /* An OID of the input's sub-identifiers. */
                        const uint8_t *ids =
                                take(&data, &size, length % 20, &name_length);

                        for (size_t i = 0; i < name_length; i++)
                                name[i] = ids[i];
                        if (name_length == 0)
                                name[name_length++] = 1;
                        length = 0;
                }

                type = types[type % ELEMENTSOF(types)];
                value = take(&data, &size, length, &n);
                if (type == ASN_INTEGER || type == ASN_COUNTER ||
                    type == ASN_GAUGE || type == ASN_TIMETICKS) {
                        long number = 0;

                        memcpy(&number, value,
                               n < sizeof number ? n : sizeof number);
                        check(snmp_pdu_add_variable(response, name, name_length,
                                                    type, &number,
                                                    sizeof number));
                } else if (type == ASN_OBJECT_ID) {
                        oid ids[64];
                        size_t count =
                                n < ELEMENTSOF(ids) ? n : ELEMENTSOF(ids);

                        for (size_t i = 0; i < count; i++)
                                ids[i] = value[i];
                        check(snmp_pdu_add_variable(response, name, name_length,
                                                    type, ids,
                                                    count * sizeof(oid)));
                } else if (type == ASN_COUNTER64) {
                        struct counter64 c = {};

                        memcpy(&c, value, n < sizeof c ? n : sizeof c);
                        check(snmp_pdu_add_variable(response, name, name_length,
                                                    type, &c, sizeof c));
                } else if (type == ASN_IPADDRESS) {
                        uint8_t address[4] = {};

                        memcpy(address, value, n < 4 ? n : 4);
                        check(snmp_pdu_add_variable(response, name, name_length,
                                                    type, address, 4));
                } else
                        check(snmp_pdu_add_variable(response, name, name_length,
                                                    type, value, n));
        }
        interpret(response, shape);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool initialized = false;

        if (!initialized) {
                check(apc_snmp_init() == 0);
                initialized = true;
        }
        if (size < 1)
                return 0;
        switch (data[0] % 3) {
        case 0:
                fuzz_parameters(data + 1, size - 1);
                break;
        case 1:
                fuzz_ber(data + 1, size - 1);
                break;
        default:
                fuzz_built(data + 1, size - 1);
                break;
        }
        return 0;
}
