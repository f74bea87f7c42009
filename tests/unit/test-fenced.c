/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-fenced's decisions that need no device: who carries out a fence
 * request, the configuration model built from domain rows, and device
 * definitions given for a live test. Bad inputs tried: rows without their
 * key columns, a definition with an unknown field, a bad name, an unknown
 * type, an apc-snmp device without an address, an address with a space,
 * parameters that are not an object, a node looked up by an unknown name
 * or a number that is not one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "haven/json.h"

#include "../../daemons/fenced/fenced.h"
#include "test-util.h"

/* ==== Who carries out a request ==== */

static void the_lowest_other_fencer_carries_out_a_request(void **state) {
        const uint32_t members[] = {3, 1, 2}, fencers[] = {1, 2, 3};
        const uint32_t victims[] = {2};

        assert_int_equal(fence_request_executor(members, 3, fencers, 3, victims, 0), 1);
}

static void a_node_never_carries_out_its_own_fencing(void **state) {
        const uint32_t members[] = {1, 2, 3}, fencers[] = {1, 2, 3};
        const uint32_t victims[] = {1};

        assert_int_equal(fence_request_executor(members, 3, fencers, 3, victims, 0), 2);
}

static void a_member_without_a_fencer_is_passed_over(void **state) {
        const uint32_t members[] = {1, 2, 3}, fencers[] = {2, 3};
        const uint32_t victims[] = {3};

        assert_int_equal(fence_request_executor(members, 3, fencers, 2, victims, 0), 2);
}

static void the_victim_of_an_earlier_request_fences_nobody(void **state) {
        /* Two nodes asked for each other: request 0 (node2) goes ahead with
         * node1; request 1 (node1) has nobody, since node2 is condemned. */
        const uint32_t members[] = {1, 2}, fencers[] = {1, 2};
        const uint32_t victims[] = {2, 1};

        assert_int_equal(fence_request_executor(members, 2, fencers, 2, victims, 0), 1);
        assert_int_equal(fence_request_executor(members, 2, fencers, 2, victims, 1), 0);
}

static void a_lone_node_cannot_be_fenced_by_anyone(void **state) {
        const uint32_t members[] = {1}, fencers[] = {1};
        const uint32_t victims[] = {1};

        assert_int_equal(fence_request_executor(members, 1, fencers, 1, victims, 0), 0);
        assert_int_equal(fence_request_executor(NULL, 0, NULL, 0, victims, 0), 0);
}

/* ==== The configuration model ==== */

static struct fence_config *config_from(const char *nodes, const char *devices,
                                        const char *outlets, int want) {
        _cleanup_(json_object_putp) struct json_object *n = json(nodes), *d = json(devices),
                                                       *o = json(outlets);
        struct fence_config *c = NULL;

        assert_int_equal(fence_config_from_rows(n, d, o, &c), want);
        return c;
}

static void configuration_is_built_from_domain_rows(void **state) {
        _cleanup_(fence_config_freep) struct fence_config *c = config_from(
                "[{'node_id': 1, 'name': 'node1'},"
                " {'node_id': 2, 'name': 'node2', 'fence_delay_ms': 3000}]",
                "[{'id': 7, 'name': 'pdu1', 'type': 'apc-snmp', 'address': '198.18.0.254',"
                "  'parameters': {'community': 'private'}, 'enabled': true},"
                " {'id': 8, 'name': 'hand', 'type': 'manual', 'address': null,"
                "  'parameters': {}, 'enabled': false}]",
                "[{'node_id': 2, 'device_id': 7, 'outlet': '2', 'level': 1},"
                " {'node_id': 2, 'device_id': 8, 'outlet': 'x', 'level': 2}]", 0);
        const struct fence_device *d;

        assert_int_equal(c->n_nodes, 2);
        assert_int_equal(c->n_devices, 2);
        assert_int_equal(c->n_outlets, 2);
        assert_int_equal(fence_config_node(c, 2)->fence_delay_usec, 3000000);
        assert_int_equal(fence_config_node(c, 1)->fence_delay_usec, 0);
        assert_string_equal(fence_config_node_find(c, "node2")->name, "node2");
        assert_string_equal(fence_config_node_find(c, "1")->name, "node1");
        assert_null(fence_config_node_find(c, "node9"));
        assert_null(fence_config_node_find(c, "1x"));
        assert_null(fence_config_node_find(c, "99999999999"));
        d = fence_config_device_by_name(c, "pdu1");
        assert_non_null(d);
        assert_true(d->enabled);
        assert_string_equal(d->address, "198.18.0.254");
        assert_true(json_object_is_type(d->parameters, json_type_object));
        d = fence_config_device(c, 8);
        assert_false(d->enabled);
        assert_null(d->address);
        assert_int_equal(c->outlets[1].level, 2);
}

static void rows_without_their_keys_are_refused(void **state) {
        assert_null(config_from("[{'name': 'node1'}]", "[]", "[]", -EBADMSG));
        assert_null(config_from("[]", "[{'id': 1, 'type': 'manual'}]", "[]", -EBADMSG));
        assert_null(config_from("[]", "[]", "[{'node_id': 1, 'outlet': '1'}]", -EBADMSG));
}

/* ==== Device definitions for a live test ==== */

static void device_definition(const char *text, int want, const char *field) {
        _cleanup_(json_object_putp) struct json_object *def = json(text);
        _cleanup_free_ char *f = NULL, *m = NULL;
        struct fence_device d = {};
        int r;

        r = fence_device_from_json(def, &d, &f, &m);
        if (r != want)
                fail_msg("%s: got %d, want %d (%s)", text, r, want, m ? m : "");
        if (field) {
                assert_non_null(f);
                assert_string_equal(f, field);
                assert_non_null(m);
        }
        fence_device_done(&d);
}

static void device_definitions_are_checked_like_the_schema(void **state) {
        device_definition("{'type': 'apc-snmp', 'address': '198.18.0.254',"
                          " 'parameters': {'community': 'x'}}", 0, NULL);
        device_definition("{'name': 'pdu2', 'type': 'manual'}", 0, NULL);
        device_definition("{'type': 'apc-snmp', 'address': '198.18.0.254', 'bogus': 1}",
                          -EINVAL, "bogus");
        device_definition("{'name': '-x', 'type': 'manual'}", -EINVAL, "name");
        device_definition("{'type': 'telnet'}", -EINVAL, "type");
        device_definition("{'address': '198.18.0.254'}", -EINVAL, "type");
        device_definition("{'type': 'apc-snmp'}", -EINVAL, "address");
        device_definition("{'type': 'apc-snmp', 'address': 'a b'}", -EINVAL, "address");
        device_definition("{'type': 'apc-snmp', 'address': 42}", -EINVAL, "address");
        device_definition("{'type': 'fence-agent', 'parameters': [1]}", -EINVAL,
                          "parameters");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(the_lowest_other_fencer_carries_out_a_request),
                cmocka_unit_test(a_node_never_carries_out_its_own_fencing),
                cmocka_unit_test(a_member_without_a_fencer_is_passed_over),
                cmocka_unit_test(the_victim_of_an_earlier_request_fences_nobody),
                cmocka_unit_test(a_lone_node_cannot_be_fenced_by_anyone),
                cmocka_unit_test(configuration_is_built_from_domain_rows),
                cmocka_unit_test(rows_without_their_keys_are_refused),
                cmocka_unit_test(device_definitions_are_checked_like_the_schema),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
