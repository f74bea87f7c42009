/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-domaind's cluster helpers that need no corosync: corosync.conf as
 * rendered from the domain's nodelist, and administrator passwords.
 * Bad inputs tried: an empty nodelist, names and addresses with spaces,
 * braces, colons or newlines (they would break corosync's parser or inject
 * options), node id 0, an empty cluster name; wrong passwords, an empty
 * hash, a hash of another password.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../daemons/domaind/domaind.h"

static const struct conf_node three[] = {
        { 1, "node1", "198.18.0.1" },
        { 2, "node2", "198.18.0.2" },
        { 3, "node3", "198.18.0.3" },
};

static void corosync_conf_lists_every_node_with_knet_and_crypto(void **state) {
        _cleanup_free_ char *conf = NULL;

        assert_int_equal(cluster_render_corosync_conf("prod", three, 3, &conf), 0);
        assert_non_null(strstr(conf, "cluster_name: prod\n"));
        assert_non_null(strstr(conf, "transport: knet\n"));
        assert_non_null(strstr(conf, "crypto_cipher: aes256\n"));
        assert_non_null(strstr(conf, "crypto_hash: sha256\n"));
        assert_non_null(strstr(conf, "token: 1000\n"));
        assert_non_null(strstr(conf, "token_coefficient: 0\n"));
        for (size_t i = 0; i < 3; i++) {
                char node[128];
                snprintf(node, sizeof node,
                         "        name: %s\n        nodeid: %u\n        ring0_addr: %s\n",
                         three[i].name, three[i].node_id, three[i].address);
                assert_non_null(strstr(conf, node));
        }
        assert_null(strstr(conf, "two_node"));
}

static void two_nodes_get_two_node_mode(void **state) {
        _cleanup_free_ char *conf = NULL, *one = NULL;

        assert_int_equal(cluster_render_corosync_conf("pair", three, 2, &conf), 0);
        assert_non_null(strstr(conf, "two_node: 1\n"));
        assert_int_equal(cluster_render_corosync_conf("single", three, 1, &one), 0);
        assert_null(strstr(one, "two_node"));
}

static void names_that_would_break_corosync_conf_are_refused(void **state) {
        static const char *const bad_names[] = { "", "a b", "a{", "a}", "a:b", "a\nb", "a#b", NULL };
        struct conf_node n = { 1, "node1", "198.18.0.1" };
        char *conf = NULL;

        for (const char *const *b = bad_names; *b; b++) {
                assert_int_equal(cluster_render_corosync_conf(*b, &n, 1, &conf), -EINVAL);
                snprintf(n.name, sizeof n.name, "%s", *b);
                assert_int_equal(cluster_render_corosync_conf("ok", &n, 1, &conf), -EINVAL);
                snprintf(n.name, sizeof n.name, "node1");
        }
        snprintf(n.address, sizeof n.address, "1.2.3.4 }");
        assert_int_equal(cluster_render_corosync_conf("ok", &n, 1, &conf), -EINVAL);
        snprintf(n.address, sizeof n.address, "198.18.0.1");
        n.node_id = 0;
        assert_int_equal(cluster_render_corosync_conf("ok", &n, 1, &conf), -EINVAL);
        assert_int_equal(cluster_render_corosync_conf("ok", &n, 0, &conf), -EINVAL);
        assert_null(conf);
}

static void passwords_are_hashed_with_yescrypt_and_checked(void **state) {
        _cleanup_free_ char *hash = cluster_hash_password("correct horse");
        _cleanup_free_ char *again = cluster_hash_password("correct horse");

        assert_non_null(hash);
        assert_true(strncmp(hash, "$y$", 3) == 0);
        assert_string_not_equal(hash, again); /* salted */
        assert_true(cluster_check_password("correct horse", hash));
        assert_true(cluster_check_password("correct horse", again));
        assert_false(cluster_check_password("correct hors", hash));
        assert_false(cluster_check_password("", hash));
        assert_false(cluster_check_password("correct horse", ""));
        assert_false(cluster_check_password("correct horse", NULL));
        assert_false(cluster_check_password(NULL, hash));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(corosync_conf_lists_every_node_with_knet_and_crypto),
                cmocka_unit_test(two_nodes_get_two_node_mode),
                cmocka_unit_test(names_that_would_break_corosync_conf_are_refused),
                cmocka_unit_test(passwords_are_hashed_with_yescrypt_and_checked),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
