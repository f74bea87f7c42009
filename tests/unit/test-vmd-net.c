/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The virtual switches on a node (daemons/vmd/vmd-net.c): the plan from
 * networks rows, then the real kernel: the test moves itself into a new
 * network namespace (unshare, needs root; the kernel tests skip without)
 * and makes its uplinks there with iproute2 (veth pairs, a tap standing for
 * a VM's NIC), so nothing outside the test is touched. What is checked is
 * read back with `ip -d link`.
 * Bad inputs tried: several uplinks (bonding is not applied), a VLAN
 * without uplink, an interface name with '/', a VLAN link name that does
 * not fit, a missing uplink, an uplink whose MTU is smaller than the
 * switch's, an uplink that carries an address, an uplink that belongs to
 * another bridge, a link of the bridge's name that is not a bridge.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "haven/macro.h"

#include "test-util.h"
#include "../../daemons/vmd/vmd-net.h"

static bool in_netns;
/* Whether the kernel can make VLAN links (8021q): not on every test
 * machine (no modules at all on the CI machine). */
static bool vlan_supported;

/* Runs an iproute2 command in the test's namespace; fails the test if it
 * fails. */
static void sh(const char *fmt, ...) {
        char cmd[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        if (system(cmd) != 0)
                fail_msg("command failed: %s", cmd);
}

/* `ip -d -o link show dev NAME`, or "" if there is no such link. */
static const char *link_info(const char *name) {
        static char out[4096];
        char cmd[128];
        FILE *f;
        size_t n;

        snprintf(cmd, sizeof(cmd), "ip -d -o link show dev %s 2>/dev/null", name);
        f = popen(cmd, "r");
        assert_non_null(f);
        n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = '\0';
        (void) pclose(f);
        return out;
}

static bool has(const char *name, const char *text) {
        return strstr(link_info(name), text) != NULL;
}

static bool exists(const char *name) {
        return link_info(name)[0] != '\0';
}

static void plan(const char *rows, struct vmd_switch **s, size_t *n) {
        struct json_object *networks = json(rows);

        assert_int_equal(vmd_switches_from_rows(networks, s, n), 0);
        json_object_put(networks);
}

/* ==== The plan ==== */

static void the_plan_follows_the_rows_and_says_what_cannot_be(void **state) {
        struct vmd_switch *s = NULL;
        size_t n = 0;

        (void) state;
        plan("[{\"name\":\"interconnect\",\"uplinks\":[\"eth0\"],\"mtu\":1500},"
             "{\"name\":\"lan\",\"uplinks\":[\"up0\"],\"mtu\":1500},"
             "{\"name\":\"tagged\",\"uplinks\":[\"up0\"],\"vlan_id\":100,\"mtu\":1400},"
             "{\"name\":\"internal\",\"uplinks\":[],\"mtu\":9000},"
             "{\"name\":\"bonded\",\"uplinks\":[\"a\",\"b\"],\"bonding_mode\":\"802.3ad\"},"
             "{\"name\":\"vlanonly\",\"uplinks\":[],\"vlan_id\":5},"
             "{\"name\":\"slash\",\"uplinks\":[\"x/y\"]},"
             "{\"name\":\"long\",\"uplinks\":[\"abcdefghijklm\"],\"vlan_id\":4094},"
             "{\"name\":\"a-rather-long-name\",\"uplinks\":[]}]",
             &s, &n);
        assert_int_equal(n, 8); /* the interconnect is no VM switch */
        assert_string_equal(s[0].bridge, "hv-lan");
        assert_string_equal(s[0].port, "up0");
        assert_int_equal(s[0].vlan, 0);
        assert_string_equal(s[0].error, "");
        assert_string_equal(s[1].port, "up0.100");
        assert_int_equal(s[1].mtu, 1400);
        assert_string_equal(s[2].port, "");
        assert_int_equal(s[2].mtu, 9000);
        assert_string_equal(s[2].error, "");
        assert_non_null(strstr(s[3].error, "bonding"));
        assert_non_null(strstr(s[4].error, "VLAN needs an uplink"));
        assert_non_null(strstr(s[5].error, "not an interface name"));
        assert_non_null(strstr(s[6].error, "too long"));
        assert_int_equal(strncmp(s[7].bridge, "hvh-", 4), 0);
        assert_ptr_equal(vmd_switch_by_bridge(s, n, "hv-tagged"), &s[1]);
        assert_null(vmd_switch_by_bridge(s, n, "hv-nothing"));
        free(s);
        /* Nothing, or not an array: no switches. */
        plan("[]", &s, &n);
        assert_int_equal(n, 0);
        assert_null(s);
        plan("{}", &s, &n);
        assert_int_equal(n, 0);
}

/* ==== The kernel ==== */

static int setup_links(void **state) {
        (void) state;
        if (!in_netns)
                return 0;
        sh("ip link add up0 mtu 1500 type veth peer name up0p");
        sh("ip link add up1 type veth peer name up1p");
        sh("ip link add up2 mtu 9000 type veth peer name up2p");
        sh("ip addr add 198.18.1.1/24 dev up1");
        vlan_supported = system("ip link add link up2 name up2.4000 type vlan id 4000 2>/dev/null") == 0;
        if (vlan_supported)
                sh("ip link del up2.4000");
        return 0;
}

static int teardown_links(void **state) {
        (void) state;
        if (!in_netns)
                return 0;
        /* Deleting one end of a veth deletes both; bridges and VLAN links
         * the test left go with the namespace at exit. */
        for (const char *const *l = (const char *const[]){"up0", "up1", "up2", "vnet7", NULL}; *l; l++)
                if (exists(*l))
                        sh("ip link del %s", *l);
        for (const char *const *l = (const char *const[]){"hv-lan", "hv-tagged", "hv-internal", "hv-other", NULL}; *l; l++)
                if (exists(*l))
                        sh("ip link del %s", *l);
        return 0;
}

static void switches_become_bridges_with_their_ports_once(void **state) {
        struct vmd_net *net = NULL;
        struct vmd_switch *s = NULL;
        size_t n = 0;

        (void) state;
        if (!in_netns)
                skip();
        assert_int_equal(vmd_net_new(&net), 0);
        plan("[{\"name\":\"lan\",\"uplinks\":[\"up0\"],\"mtu\":1500},"
             "{\"name\":\"tagged\",\"uplinks\":[\"up2\"],\"vlan_id\":100,\"mtu\":9000},"
             "{\"name\":\"internal\",\"uplinks\":[],\"mtu\":1400}]",
             &s, &n);
        assert_true(vmd_net_apply(net, s, n) > 0);
        assert_string_equal(s[0].error, "");
        assert_string_equal(s[2].error, "");
        assert_true(has("hv-lan", "bridge"));
        assert_true(has("hv-lan", "state UP") || has("hv-lan", ",UP"));
        assert_true(has("up0", "master hv-lan"));
        assert_true(has("hv-internal", "mtu 1400"));
        if (!vlan_supported) {
                /* The kernel's refusal is the switch's error; no bridge
                 * is made for it. */
                fprintf(stderr, "# this kernel makes no VLAN links (8021q): the VLAN checks are the refusal's\n");
                assert_non_null(strstr(s[1].error, "cannot make the VLAN link up2.100"));
                assert_false(exists("hv-tagged"));
                assert_int_equal(vmd_net_apply(net, s, n), 0);
                free(s);
                goto vm_port;
        }
        assert_string_equal(s[1].error, "");
        assert_true(has("up2.100", "vlan protocol 802.1Q id 100"));
        assert_true(has("up2.100", "master hv-tagged"));
        assert_true(has("up2.100", "mtu 9000"));
        assert_true(has("hv-tagged", "mtu 9000"));
        /* Again: nothing to change. */
        assert_int_equal(vmd_net_apply(net, s, n), 0);
        free(s);

        /* The tagged switch moves to VLAN 200: the old VLAN link is
         * unplugged and deleted, the new one plugged in. */
        plan("[{\"name\":\"lan\",\"uplinks\":[\"up0\"],\"mtu\":1500},"
             "{\"name\":\"tagged\",\"uplinks\":[\"up2\"],\"vlan_id\":200,\"mtu\":9000},"
             "{\"name\":\"internal\",\"uplinks\":[],\"mtu\":1400}]",
             &s, &n);
        assert_true(vmd_net_apply(net, s, n) > 0);
        assert_string_equal(s[1].error, "");
        assert_false(exists("up2.100"));
        assert_true(has("up2.200", "master hv-tagged"));
        free(s);

vm_port:
        /* A VM plugged into "internal" (a tap, as libvirt makes it), then
         * every switch deleted: their bridges and VLAN links go, the
         * uplink is free again, the bridge with the VM stays. */
        sh("ip tuntap add vnet7 mode tap");
        sh("ip link set vnet7 master hv-internal");
        plan("[]", &s, &n);
        assert_true(vmd_net_apply(net, s, n) > 0);
        assert_false(exists("hv-lan"));
        assert_false(exists("hv-tagged"));
        assert_false(exists("up2.200"));
        assert_true(exists("up0"));
        assert_false(has("up0", "master"));
        assert_true(has("vnet7", "master hv-internal"));
        vmd_net_free(net);
}

static void unsafe_or_impossible_switches_are_refused_and_the_rest_made(void **state) {
        struct vmd_net *net = NULL;
        struct vmd_switch *s = NULL;
        size_t n = 0;

        (void) state;
        if (!in_netns)
                skip();
        assert_int_equal(vmd_net_new(&net), 0);
        sh("ip link add hv-other type dummy 2>/dev/null || ip link add hv-other type veth peer name hv-otherp");
        plan("[{\"name\":\"addressed\",\"uplinks\":[\"up1\"]},"
             "{\"name\":\"missing\",\"uplinks\":[\"nope0\"]},"
             "{\"name\":\"jumbo\",\"uplinks\":[\"up0\"],\"vlan_id\":7,\"mtu\":9000},"
             "{\"name\":\"other\",\"uplinks\":[]},"
             "{\"name\":\"lan\",\"uplinks\":[\"up0\"]}]",
             &s, &n);
        assert_true(vmd_net_apply(net, s, n) > 0);
        /* An address on the uplink: never a bridge port. */
        assert_non_null(strstr(s[0].error, "up1 carries 198.18.1.1"));
        assert_false(has("up1", "master"));
        assert_non_null(strstr(s[1].error, "no interface nope0"));
        assert_non_null(strstr(s[2].error, "up0 has MTU 1500, the switch wants 9000"));
        assert_false(exists("up0.7"));
        assert_true(has("up0", "mtu 1500"));
        assert_non_null(strstr(s[3].error, "hv-other exists and is not a bridge"));
        /* The one that can be is made. */
        assert_string_equal(s[4].error, "");
        assert_true(has("up0", "master hv-lan"));
        free(s);
        /* up0 belongs to hv-lan: another switch cannot take it. */
        plan("[{\"name\":\"lan\",\"uplinks\":[\"up0\"]},{\"name\":\"second\",\"uplinks\":[\"up0\"]}]", &s, &n);
        (void) vmd_net_apply(net, s, n);
        assert_string_equal(s[0].error, "");
        assert_non_null(strstr(s[1].error, "up0 belongs to hv-lan already"));
        free(s);
        plan("[]", &s, &n);
        (void) vmd_net_apply(net, s, n);
        assert_false(exists("hv-lan"));
        assert_false(exists("hv-second"));
        vmd_net_free(net);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(the_plan_follows_the_rows_and_says_what_cannot_be),
                cmocka_unit_test_setup_teardown(switches_become_bridges_with_their_ports_once,
                                                setup_links, teardown_links),
                cmocka_unit_test_setup_teardown(unsafe_or_impossible_switches_are_refused_and_the_rest_made,
                                                setup_links, teardown_links),
        };

        /* A namespace of the test's own: the kernel tests touch nothing
         * else. Without the right to make one they skip. */
        in_netns = unshare(CLONE_NEWNET) == 0;
        if (!in_netns)
                fprintf(stderr, "# no network namespace of our own (%s): the kernel tests skip\n",
                        strerror(errno));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
