/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for havenctl's pure parts (daemons/ctl/ctl-request.c,
 * ctl-output.c, the join and printing of ctl-status.c, the job log line,
 * the joins and texts of ctl-vm.c): tables and aliases, the value syntax,
 * row selectors, the requests sent to domaind, change summaries, password
 * files, where a VM runs and in what state, and everything printed. The vm
 * and node commands run end to end in test-ctl-vm.c; the conversations
 * with a real haven-domaind are system tests (tests/system/lib/havenctl.mjs).
 *
 * Bad inputs tried for ctl-vm.c: reports that are stopped or crashed (no
 * place to run), a VM on two nodes, a migration's incoming copy, a report
 * from a node the table does not know, a bare string as a report, entries
 * of other keys (vm/web10 for web1, vmd), missing placements, node rows
 * and entries (NULL), a preferred node that is gone, a name with an escape
 * sequence, a result with a newline and an escape; timeouts "0", "-1",
 * "+5", " 5", "5 ", "1e3", "", "12x", "86401", "007", "1.5", "0x10", 2^66,
 * NULL; commands "", "Start", "start ", "migrate2", "list", "prefer", NULL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <time.h>

#include "../../daemons/ctl/ctl.h"
#include "haven/json.h"

/* ==== Helpers ==== */

static struct json_object *json(const char *text) {
        struct json_object *o = NULL;

        assert_int_equal(haven_json_parse(text, strlen(text), 1 << 20, &o), 0);
        return o;
}

static const char *plain(struct json_object *o) {
        return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void assert_json(struct json_object *o, const char *expected) {
        assert_non_null(o);
        assert_string_equal(plain(o), expected);
}

static const char *string_at(struct json_object *o, const char *key) {
        const char *v = NULL;

        assert_int_equal(haven_json_get_string(o, key, &v), 0);
        return v;
}

/* Captures what f prints. */
struct capture {
        char *text;
        size_t size;
        FILE *f;
};

static FILE *capture_start(struct capture *c) {
        *c = (struct capture){};
        c->f = open_memstream(&c->text, &c->size);
        assert_non_null(c->f);
        return c->f;
}

static char *capture_end(struct capture *c) {
        assert_int_equal(fclose(c->f), 0);
        return c->text;
}

/* Parses one assignment and returns the value as compact JSON text ("null"
 * for JSON null) in a static buffer. */
static const char *value_of(const char *arg, const char *expected_key) {
        static char buf[512];
        _cleanup_free_ char *key = NULL;
        struct json_object *v = NULL;
        struct ctl_error error = {};

        assert_int_equal(ctl_parse_assignment(arg, &key, &v, &error), 0);
        assert_string_equal(key, expected_key);
        snprintf(buf, sizeof buf, "%s", v ? plain(v) : "null");
        json_object_put(v);
        return buf;
}

static const char *error_of(const char *arg) {
        static struct ctl_error error;
        char *key = NULL;
        struct json_object *v = NULL;

        error = (struct ctl_error){};
        assert_int_equal(ctl_parse_assignment(arg, &key, &v, &error), -EINVAL);
        assert_null(key);
        assert_null(v);
        assert_true(error.message[0] != '\0');
        return error.message;
}

/* ==== Tables ==== */

static void tables_are_found_by_name_alias_and_dashes(void **state) {
        size_t n;
        const struct ctl_table *all = ctl_tables(&n);

        assert_int_equal(n, 21); /* every replicated table of the schema */
        assert_string_equal(ctl_table_find("vms")->name, "vms");
        assert_string_equal(ctl_table_find("vm")->name, "vms");
        assert_string_equal(ctl_table_find("fence-devices")->name, "fence_devices");
        assert_string_equal(ctl_table_find("fence_device")->name, "fence_devices");
        assert_string_equal(ctl_table_find("vm-nic")->name, "vm_nics");
        assert_string_equal(ctl_table_find("infra")->name, "infrastructure");
        assert_string_equal(ctl_table_find("admin")->name, "administrators");
        assert_string_equal(ctl_table_find("changes")->name, "staged_changes");
        assert_null(ctl_table_find("VMs"));
        assert_null(ctl_table_find("domain_state"));
        assert_null(ctl_table_find(""));
        assert_null(ctl_table_find(NULL));

        /* Every table answers to its own name, aliases never collide. */
        for (size_t i = 0; i < n; i++) {
                assert_ptr_equal(ctl_table_find(all[i].name), &all[i]);
                for (const char *const *a = all[i].aliases; *a; a++)
                        assert_ptr_equal(ctl_table_find(*a), &all[i]);
        }
        assert_true(ctl_table_find("vms")->has_name);
        assert_false(ctl_table_find("vm_nics")->has_name);
        assert_true(ctl_table_find("cluster")->singleton);
        assert_true(ctl_table_find("infrastructure")->singleton);
        assert_non_null(ctl_table_find("audit")->read_only);
        assert_non_null(ctl_table_find("fence-request")->read_only);
        assert_string_equal(ctl_table_find("alert")->name, "alerts");
        assert_non_null(ctl_table_find("jobs")->read_only);
        assert_null(ctl_table_find("vms")->read_only);
}

/* ==== Value syntax ==== */

static void equals_sends_json_literals_and_text_otherwise(void **state) {
        assert_string_equal(value_of("vcpus=4", "vcpus"), "4");
        assert_string_equal(value_of("priority=-1", "priority"), "-1");
        assert_string_equal(value_of("ha=on", "ha"), "\"on\"");
        assert_string_equal(value_of("enabled=true", "enabled"), "true");
        assert_string_equal(value_of("two_node=false", "two_node"), "false");
        assert_string_equal(value_of("vlan_id=null", "vlan_id"), "null");
        assert_string_equal(value_of("uplinks=[\"eth0\",\"eth1\"]", "uplinks"),
                            "[\"eth0\",\"eth1\"]");
        assert_string_equal(value_of("parameters={\"community\":\"private\"}", "parameters"),
                            "{\"community\":\"private\"}");
        assert_string_equal(value_of("ratio=1.5", "ratio"), "1.5");
        /* A JSON string literal is not one of the literals: the text as is. */
        assert_string_equal(value_of("name=\"web1\"", "name"), "\"\\\"web1\\\"\"");
        /* Not JSON: text. */
        assert_string_equal(value_of("mac=52:54:00:00:00:01", "mac"), "\"52:54:00:00:00:01\"");
        assert_string_equal(value_of("outlet=007", "outlet"), "\"007\"");
        assert_string_equal(value_of("size=99999999999999999999", "size"),
                            "\"99999999999999999999\"");
        assert_string_equal(value_of("description=True", "description"), "\"True\"");
        assert_string_equal(value_of("description=[oops", "description"), "\"[oops\"");
        assert_string_equal(value_of("description=a=b", "description"), "\"a=b\"");
        assert_string_equal(value_of("description=", "description"), "\"\"");
        /* Blanks around a literal make it text. */
        assert_string_equal(value_of("description= 5", "description"), "\" 5\"");
        assert_string_equal(value_of("description=5 ", "description"), "\"5 \"");
        assert_string_equal(value_of("description=ünïcode ✓", "description"),
                            "\"ünïcode ✓\"");
}

static void colon_equals_is_always_json(void **state) {
        assert_string_equal(value_of("name:=\"web1\"", "name"), "\"web1\"");
        assert_string_equal(value_of("vcpus:=4", "vcpus"), "4");
        assert_string_equal(value_of("vlan_id:=null", "vlan_id"), "null");
        assert_string_equal(value_of("ntp_servers:=[\"ntp1\", \"ntp2\"]", "ntp_servers"),
                            "[\"ntp1\",\"ntp2\"]");
        assert_non_null(strstr(error_of("name:=web1"), "JSON"));
        assert_non_null(strstr(error_of("name:="), "JSON"));
        assert_non_null(strstr(error_of("name:={\"a\":1} x"), "JSON"));
}

static void double_equals_is_always_text(void **state) {
        assert_string_equal(value_of("description==true", "description"), "\"true\"");
        assert_string_equal(value_of("description==42", "description"), "\"42\"");
        assert_string_equal(value_of("description==", "description"), "\"\"");
        assert_string_equal(value_of("description===x", "description"), "\"=x\"");
        assert_string_equal(value_of("description==a==b", "description"), "\"a==b\"");
        /* "=" first: "a==b" is the value of a plain "=". */
        assert_string_equal(value_of("description=a==b", "description"), "\"a==b\"");
}

static void bad_assignments_say_what_is_wrong(void **state) {
        assert_non_null(strstr(error_of("vcpus"), "KEY=VALUE"));
        assert_non_null(strstr(error_of("=4"), "KEY=VALUE"));
        assert_non_null(strstr(error_of("vm-name=x"), "KEY=VALUE"));
        assert_non_null(strstr(error_of(":=4"), "KEY=VALUE"));
        assert_non_null(strstr(error_of("Name=x"), "lowercase"));
        assert_non_null(strstr(error_of("9lives=x"), "lowercase"));
        assert_non_null(strstr(error_of("_x=1"), "lowercase"));
        assert_non_null(strstr(error_of("id=4"), "maintained"));
        assert_non_null(strstr(error_of("version=1"), "maintained"));
        assert_non_null(strstr(error_of("a2345678901234567890123456789012345678901234567890"
                                        "123456789012345=1"),
                               "lowercase"));
        assert_true(ctl_is_assignment("a=1"));
        assert_true(ctl_is_assignment("a:=1"));
        assert_true(ctl_is_assignment("a==1"));
        assert_false(ctl_is_assignment("web1"));
        assert_false(ctl_is_assignment("=1"));
        assert_false(ctl_is_assignment("a:1"));
        assert_false(ctl_is_assignment(NULL));
}

static void assignments_build_one_object_without_duplicates(void **state) {
        char *args[] = { "name=web1", "vcpus=2", "memory_mib=512", "ha=on",
                         "description==2 cores" };
        char *dup[] = { "name=a", "vcpus=1", "name=b" };
        char *bad[] = { "name=a", "oops" };
        _cleanup_(json_object_putp) struct json_object *values = NULL;
        struct json_object *none = NULL;
        struct ctl_error error = {};
        char *many[CTL_ASSIGNMENTS_MAX + 1];

        assert_int_equal(ctl_parse_assignments(args, ELEMENTSOF(args), &values, &error), 0);
        assert_json(values, "{\"name\":\"web1\",\"vcpus\":2,\"memory_mib\":512,\"ha\":\"on\","
                            "\"description\":\"2 cores\"}");

        assert_int_equal(ctl_parse_assignments(dup, ELEMENTSOF(dup), &none, &error), -EINVAL);
        assert_string_equal(error.message, "\"name\" is given twice");
        assert_null(none);
        assert_int_equal(ctl_parse_assignments(bad, ELEMENTSOF(bad), &none, &error), -EINVAL);
        assert_null(none);

        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = "a=1";
        assert_int_equal(ctl_parse_assignments(many, ELEMENTSOF(many), &none, &error), -EINVAL);
        assert_non_null(strstr(error.message, "at most"));
}

/* ==== Rows and requests ==== */

static void rows_are_named_by_id_or_name(void **state) {
        const struct ctl_table *vms = ctl_table_find("vms"), *nics = ctl_table_find("vm_nics");
        struct json_object *where = NULL;
        struct ctl_error error = {};

        assert_int_equal(ctl_row_where(vms, "5", &where, &error), 0);
        assert_json(where, "{\"id\":5}");
        json_object_put(where);
        assert_int_equal(ctl_row_where(vms, "web1", &where, &error), 0);
        assert_json(where, "{\"name\":\"web1\"}");
        json_object_put(where);
        /* Not an id: a leading zero, a sign, too many digits. */
        assert_int_equal(ctl_row_where(vms, "05", &where, &error), 0);
        assert_json(where, "{\"name\":\"05\"}");
        json_object_put(where);
        assert_int_equal(ctl_row_where(vms, "1234567890123456789", &where, &error), 0);
        assert_json(where, "{\"name\":\"1234567890123456789\"}");
        json_object_put(where);

        assert_int_equal(ctl_row_where(nics, "3", &where, &error), 0);
        assert_json(where, "{\"id\":3}");
        json_object_put(where);
        where = NULL;
        assert_int_equal(ctl_row_where(nics, "web1", &where, &error), -EINVAL);
        assert_null(where);
        assert_string_equal(error.message, "rows of \"vm_nics\" have no name: give the row's "
                                           "id (see \"havenctl get vm_nics\")");
}

static void add_set_delete_become_staged_or_direct_transactions(void **state) {
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        struct json_object *ops;

        ops = json_object_new_array();
        json_object_array_add(ops, ctl_op_insert("vms", json("{\"name\":\"web1\",\"vcpus\":2}")));
        req = ctl_request_submit(ops, true, "havenctl:root", "add vms: name=web1 vcpus=2");
        assert_json(req, "{\"request\":\"submit\",\"ops\":[{\"op\":\"stage\",\"ops\":[{\"op\":"
                         "\"insert\",\"table\":\"vms\",\"values\":{\"name\":\"web1\",\"vcpus\":"
                         "2}}],\"summary\":\"add vms: name=web1 vcpus=2\"}],\"actor\":"
                         "\"havenctl:root\",\"audit\":\"add vms: name=web1 vcpus=2\"}");
        json_object_put(req);

        ops = json_object_new_array();
        json_object_array_add(ops, ctl_op_update("vms", 5, 12, json("{\"vcpus\":4}")));
        req = ctl_request_submit(ops, false, "havenctl:root", "set vms web1: vcpus=4");
        assert_json(req, "{\"request\":\"submit\",\"ops\":[{\"op\":\"update\",\"table\":\"vms\","
                         "\"id\":5,\"expect_version\":12,\"values\":{\"vcpus\":4}}],\"actor\":"
                         "\"havenctl:root\",\"audit\":\"set vms web1: vcpus=4\"}");
        json_object_put(req);

        ops = json_object_new_array();
        json_object_array_add(ops, ctl_op_delete("hosts", 3, 7));
        req = ctl_request_submit(ops, true, "havenctl:admin", NULL);
        assert_json(req, "{\"request\":\"submit\",\"ops\":[{\"op\":\"stage\",\"ops\":[{\"op\":"
                         "\"delete\",\"table\":\"hosts\",\"id\":3,\"expect_version\":7}]}],"
                         "\"actor\":\"havenctl:admin\"}");
        json_object_put(req);

        ops = json_object_new_array();
        json_object_array_add(ops, ctl_op_simple("activate"));
        req = ctl_request_submit(ops, false, "havenctl:root", "activate the staged changes");
        assert_json(req, "{\"request\":\"submit\",\"ops\":[{\"op\":\"activate\"}],\"actor\":"
                         "\"havenctl:root\",\"audit\":\"activate the staged changes\"}");
}

static void queries_and_cluster_requests_match_the_api(void **state) {
        struct json_object *req;

        req = ctl_request_query("vms", NULL);
        assert_json(req, "{\"request\":\"query\",\"table\":\"vms\"}");
        json_object_put(req);
        req = ctl_request_query("vms", json("{\"name\":\"web1\"}"));
        assert_json(req, "{\"request\":\"query\",\"table\":\"vms\",\"where\":{\"name\":\"web1\"}}");
        json_object_put(req);
        req = ctl_request_simple("status");
        assert_json(req, "{\"request\":\"status\"}");
        json_object_put(req);

        req = ctl_request_cluster("cluster-create", "name", "alpha", "admin", "secret123", NULL);
        assert_json(req, "{\"request\":\"cluster-create\",\"name\":\"alpha\",\"admin\":\"admin\","
                         "\"password\":\"secret123\"}");
        json_object_put(req);
        req = ctl_request_cluster("cluster-create", "name", "alpha", "admin", "secret123",
                                  "198.18.0.1");
        assert_json(req, "{\"request\":\"cluster-create\",\"name\":\"alpha\",\"admin\":\"admin\","
                         "\"password\":\"secret123\",\"address\":\"198.18.0.1\"}");
        json_object_put(req);
        req = ctl_request_cluster("cluster-join", "address", "198.18.0.1", "admin", "secret123",
                                  NULL);
        assert_json(req, "{\"request\":\"cluster-join\",\"address\":\"198.18.0.1\",\"admin\":"
                         "\"admin\",\"password\":\"secret123\"}");
        json_object_put(req);
        req = ctl_request_node_remove("3", "havenctl:root");
        assert_json(req, "{\"request\":\"node-remove\",\"node\":\"3\",\"actor\":\"havenctl:root\"}");
        json_object_put(req);
}

static void summaries_hide_passwords_and_stay_short(void **state) {
        char *set[] = { "mail_relay=smtp.example.com", "mail_password=hunter2",
                        "mail_password:=\"x\"" };
        char *long_text[] = { NULL };
        char text[400];
        _cleanup_free_ char *s = NULL, *t = NULL, *u = NULL;

        s = ctl_change_summary("set", "infrastructure", NULL, set, ELEMENTSOF(set));
        assert_string_equal(s, "set infrastructure: mail_relay=smtp.example.com "
                               "mail_password=*** mail_password=***");
        t = ctl_change_summary("delete", "vms", "web1", NULL, 0);
        assert_string_equal(t, "delete vms web1");

        /* 3-byte characters: the cut never splits one. */
        strcpy(text, "description=");
        for (int i = 0; i < 100; i++)
                strcat(text, "✓");
        long_text[0] = text;
        u = ctl_change_summary("add", "vms", NULL, long_text, 1);
        assert_true(strlen(u) <= 200);
        assert_string_equal(u + strlen(u) - 3, "...");
        {
                /* Valid UTF-8 all along: a JSON string of it parses. */
                _cleanup_free_ char *quoted = NULL;
                struct json_object *o = NULL;
                assert_true(asprintf(&quoted, "\"%s\"", u) > 0);
                assert_int_equal(haven_json_parse(quoted, strlen(quoted), 1024, &o), 0);
                json_object_put(o);
        }
}

static void password_files_give_their_first_line(void **state) {
        char dir[] = "/tmp/test-ctl-XXXXXX", path[64];
        struct ctl_error error = {};
        char *p = NULL, big[400];
        FILE *f;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/password", dir);

        static const struct {
                const char *content;
                const char *expected; /* NULL: -EINVAL */
        } cases[] = {
                { "secret123\n", "secret123" },
                { "secret123", "secret123" },
                { "secret123\r\n", "secret123" },
                { "first line\nsecond line\n", "first line" },
                { " spaces kept \n", " spaces kept " },
                { "", NULL },
                { "\n", NULL },
                { "\r\n", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                f = fopen(path, "we");
                assert_non_null(f);
                fputs(cases[i].content, f);
                fclose(f);
                p = NULL;
                if (cases[i].expected) {
                        assert_int_equal(ctl_read_password_file(path, &p, &error), 0);
                        assert_string_equal(p, cases[i].expected);
                        free(p);
                } else {
                        assert_int_equal(ctl_read_password_file(path, &p, &error), -EINVAL);
                        assert_null(p);
                        assert_non_null(strstr(error.message, "empty"));
                }
        }

        /* 256 characters are fine, 257 are not. */
        memset(big, 'x', sizeof big);
        for (size_t len = 256; len <= 257; len++) {
                f = fopen(path, "we");
                assert_non_null(f);
                fwrite(big, 1, len, f);
                fputc('\n', f);
                fclose(f);
                p = NULL;
                if (len == 256) {
                        assert_int_equal(ctl_read_password_file(path, &p, &error), 0);
                        assert_int_equal(strlen(p), 256);
                        free(p);
                } else {
                        assert_int_equal(ctl_read_password_file(path, &p, &error), -EINVAL);
                        assert_non_null(strstr(error.message, "longer than 256"));
                }
        }
        /* A NUL byte inside. */
        f = fopen(path, "we");
        assert_non_null(f);
        fwrite("abc\0def\n", 1, 8, f);
        fclose(f);
        assert_int_equal(ctl_read_password_file(path, &p, &error), -EINVAL);
        assert_non_null(strstr(error.message, "NUL"));

        assert_int_equal(unlink(path), 0);
        assert_int_equal(ctl_read_password_file(path, &p, &error), -ENOENT);
        assert_int_equal(rmdir(dir), 0);
}

/* ==== Output ==== */

static void text_is_made_safe_for_terminals(void **state) {
        _cleanup_free_ char *a = ctl_text_safe("plain ✓ text");
        _cleanup_free_ char *b = ctl_text_safe("red \x1b[31mALERT\x1b[0m");
        _cleanup_free_ char *c = ctl_text_safe("line1\nline2\ttab\rcr\x7f");
        _cleanup_free_ char *d = ctl_text_safe("c1 \xc2\x9b" "31m end \xc2\xa0nbsp");

        assert_string_equal(a, "plain ✓ text");
        assert_string_equal(b, "red \\x1b[31mALERT\\x1b[0m");
        assert_string_equal(c, "line1\\nline2\\ttab\\rcr\\x7f");
        assert_string_equal(d, "c1 \\x9b31m end \xc2\xa0nbsp");
        assert_int_equal(ctl_text_width("✓✓x"), 3);
        assert_int_equal(ctl_text_width(""), 0);
}

static void grids_align_columns_without_trailing_blanks(void **state) {
        static const char *const titles[] = { "NAME", "STATE", "NOTE" };
        _cleanup_(ctl_grid_freep) struct ctl_grid *g = ctl_grid_new(3, titles);
        _cleanup_free_ char *text = NULL;
        struct capture cap;

        assert_non_null(g);
        assert_int_equal(ctl_grid_add(g, (const char *const[]){ "node1", "active", "" }), 0);
        assert_int_equal(ctl_grid_add(g, (const char *const[]){ "nöde22", NULL, "evil\x1b]0;x" }), 0);
        assert_int_equal(ctl_grid_rows(g), 2);
        ctl_grid_print(g, capture_start(&cap));
        text = capture_end(&cap);
        assert_string_equal(text, "NAME    STATE   NOTE\n"
                                  "node1   active\n"
                                  "nöde22  -       evil\\x1b]0;x\n");
}

static void values_print_as_people_read_them(void **state) {
        _cleanup_(json_object_putp) struct json_object *row =
                json("{\"a\":null,\"b\":true,\"c\":42,\"d\":[1,\"x\"],\"e\":{\"k\":\"v/w\"},"
                     "\"f\":\"text\",\"g\":2.5}");
        static const struct {
                const char *key, *expected;
        } cases[] = {
                { "b", "true" }, { "c", "42" }, { "d", "[1,\"x\"]" },
                { "e", "{\"k\":\"v/w\"}" }, { "f", "text" }, { "g", "2.5" },
        };
        char buf[64];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s =
                        ctl_format_value(cases[i].key, json_object_object_get(row, cases[i].key));
                assert_string_equal(s, cases[i].expected);
        }
        {
                _cleanup_free_ char *s = ctl_format_value("a", NULL);
                assert_string_equal(s, "-");
        }

        /* Times are µs since 1970, shown in local time (UTC here). */
        {
                _cleanup_(json_object_putp) struct json_object *t =
                        json_object_new_int64(1700000000123456LL);
                _cleanup_free_ char *s = ctl_format_value("created_at", t);
                _cleanup_free_ char *u = ctl_format_value("memory_mib", t);
                assert_string_equal(s, "2023-11-14 22:13:20");
                assert_string_equal(u, "1700000000123456");
        }
        ctl_format_time(0, buf, sizeof buf);
        assert_string_equal(buf, "1970-01-01 00:00:00");
        ctl_format_time(-5, buf, sizeof buf);
        assert_string_equal(buf, "-5");
}

static void rows_print_as_a_table_of_their_columns(void **state) {
        _cleanup_(json_object_putp) struct json_object *rows =
                json("[{\"id\":2,\"version\":9,\"name\":\"db1\",\"vcpus\":4,\"ha\":\"on\"},"
                     "{\"id\":1,\"version\":3,\"name\":\"web1\",\"vcpus\":1,\"ha\":\"off\","
                     "\"preferred_node_id\":null},"
                     "{\"name\":\"odd\"}]");
        _cleanup_(json_object_putp) struct json_object *empty = json("[]");
        _cleanup_free_ char *text = NULL, *none = NULL;
        struct capture cap;

        ctl_rows_sort_by_id(rows);
        assert_int_equal(ctl_print_rows(capture_start(&cap), rows), 0);
        text = capture_end(&cap);
        assert_string_equal(text, "ID  NAME  VCPUS  HA   PREFERRED_NODE_ID\n"
                                  "1   web1  1      off  -\n"
                                  "2   db1   4      on   -\n"
                                  "-   odd   -      -    -\n");
        assert_int_equal(ctl_print_rows(capture_start(&cap), empty), 0);
        none = capture_end(&cap);
        assert_string_equal(none, "(none)\n");
}

static void one_row_prints_as_a_record(void **state) {
        _cleanup_(json_object_putp) struct json_object *row =
                json("{\"id\":1,\"version\":4,\"name\":\"alpha\",\"two_node\":false,"
                     "\"created_at\":0,\"note\":\"a\\nb\",\"empty\":\"\"}");
        _cleanup_free_ char *text = NULL;
        struct capture cap;

        assert_int_equal(ctl_print_record(capture_start(&cap), row), 0);
        text = capture_end(&cap);
        assert_string_equal(text, "id:          1\n"
                                  "version:     4\n"
                                  "name:        alpha\n"
                                  "two_node:    false\n"
                                  "created_at:  1970-01-01 00:00:00\n"
                                  "note:        a\\nb\n"
                                  "empty:\n");
}

static void json_output_is_pretty_and_unescaped(void **state) {
        _cleanup_(json_object_putp) struct json_object *o = json("{\"path\":\"/a/b\",\"n\":[1]}");
        _cleanup_free_ char *text = NULL, *null_text = NULL;
        struct capture cap;

        ctl_print_json(capture_start(&cap), o);
        text = capture_end(&cap);
        assert_non_null(strstr(text, "\"path\": \"/a/b\""));
        assert_string_equal(text + strlen(text) - 2, "}\n");
        ctl_print_json(capture_start(&cap), NULL);
        null_text = capture_end(&cap);
        assert_string_equal(null_text, "null\n");
}

static void error_answers_become_one_line(void **state) {
        _cleanup_(json_object_putp) struct json_object *a =
                json("{\"code\":\"invalid\",\"message\":\"vcpus: must be between 1 and 64\","
                     "\"field\":\"vcpus\"}");
        _cleanup_(json_object_putp) struct json_object *b =
                json("{\"code\":\"no-quorum\",\"message\":\"the cluster has no quorum\","
                     "\"field\":null}");
        _cleanup_(json_object_putp) struct json_object *c = json("{\"code\":\"internal\"}");
        _cleanup_(json_object_putp) struct json_object *d = json("{\"message\":\"bad\\u001b[2J\"}");
        _cleanup_free_ char *ta = ctl_format_error(a), *tb = ctl_format_error(b),
                            *tc = ctl_format_error(c), *td = ctl_format_error(d);

        assert_string_equal(ta, "vcpus: must be between 1 and 64 (field \"vcpus\")");
        assert_string_equal(tb, "the cluster has no quorum");
        assert_string_equal(tc, "internal");
        assert_string_equal(td, "bad\\x1b[2J");
}

static void job_log_lines_show_time_node_and_source(void **state) {
        _cleanup_(json_object_putp) struct json_object *row =
                json("{\"id\":7,\"job_id\":3,\"time\":1700000000000000,\"node\":\"node2\","
                     "\"source\":\"vmd\",\"line\":\"VM \\\"web1\\\" started\"}");
        _cleanup_(json_object_putp) struct json_object *bare = json("{\"line\":\"x\\ny\"}");
        _cleanup_free_ char *a = ctl_format_job_log_line(row), *b = ctl_format_job_log_line(bare);

        assert_string_equal(a, "2023-11-14 22:13:20 node2 vmd: VM \"web1\" started");
        assert_string_equal(b, "- - -: x\\ny");
}

/* ==== status ==== */

static const char STATUS_REPLY[] =
        "{\"quorate\":true,\"synced\":true,\"connected\":true,\"version\":42,"
        "\"config_version\":7,\"checksum\":\"0123456789abcdef\",\"node_id\":1,"
        "\"node_name\":\"node1\",\"members\":["
        "{\"id\":1,\"name\":\"node1\",\"state\":\"active\",\"online\":true},"
        "{\"id\":2,\"name\":\"node2\",\"state\":\"standby\",\"online\":false},"
        "{\"id\":3,\"name\":null,\"state\":null,\"online\":true}],"
        "\"manager\":1,\"sync_rounds\":3}";
static const char NODE_ROWS[] =
        "[{\"id\":1,\"version\":2,\"node_id\":1,\"name\":\"node1\",\"addresses\":[\"198.18.0.1\"],"
        "\"state\":\"active\"},"
        "{\"id\":2,\"version\":5,\"node_id\":2,\"name\":\"node2\",\"addresses\":[\"198.18.0.2\","
        "\"198.19.0.2\"],\"state\":\"standby\"}]";
static const char VM_ROWS[] =
        "[{\"id\":1,\"version\":8,\"name\":\"web1\",\"ha\":\"on\",\"preferred_node_id\":2},"
        "{\"id\":2,\"version\":9,\"name\":\"db1\",\"ha\":\"off\",\"preferred_node_id\":null},"
        "{\"id\":3,\"version\":9,\"name\":\"split\",\"ha\":\"on\"}]";
static const char VM_ENTRIES[] =
        "[{\"node\":1,\"key\":\"vm/web1\",\"value\":{\"state\":\"running\"}},"
        "{\"node\":2,\"key\":\"vm/web1\",\"value\":{\"state\":\"crashed\"}},"
        "{\"node\":2,\"key\":\"vm/db1\",\"value\":{\"state\":\"stopped\"}},"
        "{\"node\":1,\"key\":\"vm/split\",\"value\":\"running\"},"
        "{\"node\":3,\"key\":\"vm/split\",\"value\":{\"state\":\"paused\"}},"
        "{\"node\":2,\"key\":\"vm/web10\",\"value\":{\"state\":\"running\"}}]";

static void status_joins_members_nodes_vms_and_runtime(void **state) {
        _cleanup_(json_object_putp) struct json_object *status = json(STATUS_REPLY),
                                                        *cluster = json("[{\"id\":1,\"name\":\"alpha\"}]"),
                                                        *nodes = json(NODE_ROWS),
                                                        *vms = json(VM_ROWS),
                                                        *staged = json("[{\"id\":1},{\"id\":2}]"),
                                                        *entries = json(VM_ENTRIES), *out = NULL;

        assert_int_equal(ctl_status_build(status, cluster, nodes, vms, staged, entries, &out), 0);
        assert_json(out,
                    "{\"cluster\":\"alpha\",\"quorate\":true,\"synced\":true,\"version\":42,"
                    "\"config_version\":7,\"checksum\":\"0123456789abcdef\",\"node_id\":1,"
                    "\"node_name\":\"node1\",\"manager\":\"node1\",\"members\":["
                    "{\"name\":\"node1\",\"id\":1,\"state\":\"active\",\"online\":true,"
                    "\"addresses\":[\"198.18.0.1\"]},"
                    "{\"name\":\"node2\",\"id\":2,\"state\":\"standby\",\"online\":false,"
                    "\"addresses\":[\"198.18.0.2\",\"198.19.0.2\"]},"
                    "{\"name\":null,\"id\":3,\"state\":null,\"online\":true,\"addresses\":null}],"
                    "\"pending_changes\":2,\"vms\":["
                    "{\"name\":\"web1\",\"id\":1,\"ha\":\"on\",\"preferred_node\":\"node2\","
                    "\"node\":\"node1\",\"state\":\"running\"},"
                    "{\"name\":\"db1\",\"id\":2,\"ha\":\"off\",\"preferred_node\":null,"
                    "\"node\":null,\"state\":\"stopped\"},"
                    "{\"name\":\"split\",\"id\":3,\"ha\":\"on\",\"preferred_node\":null,"
                    "\"node\":\"node1,node 3\",\"state\":\"running,paused\"}]}");
}

static void status_of_a_fresh_node_has_no_cluster(void **state) {
        _cleanup_(json_object_putp) struct json_object *status =
                json("{\"quorate\":false,\"synced\":false,\"version\":0,\"config_version\":0,"
                     "\"checksum\":\"0000000000000000\",\"node_id\":null,\"node_name\":\"node1\","
                     "\"members\":[],\"manager\":null}");
        _cleanup_(json_object_putp) struct json_object *empty = json("[]"), *out = NULL;
        _cleanup_free_ char *text = NULL;
        struct capture cap;

        assert_int_equal(ctl_status_build(status, empty, empty, empty, empty, NULL, &out), 0);
        assert_json(out, "{\"cluster\":null,\"quorate\":false,\"synced\":false,\"version\":0,"
                         "\"config_version\":0,\"checksum\":\"0000000000000000\",\"node_id\":null,"
                         "\"node_name\":\"node1\",\"manager\":null,\"members\":[],"
                         "\"pending_changes\":0,\"vms\":[]}");
        ctl_status_print(capture_start(&cap), out);
        text = capture_end(&cap);
        assert_string_equal(text,
                            "Cluster:        none yet (havenctl cluster create NAME or havenctl "
                            "cluster join ADDRESS)\n"
                            "This node:      node1 (id 0)\n"
                            "Version:        0 (configuration 0, checksum 0000000000000000)\n"
                            "Manager:        -\n"
                            "\n"
                            "Nodes: none\n"
                            "\n"
                            "VMs: none\n"
                            "\n"
                            "Pending changes: none\n");
}

static void status_prints_a_readable_summary(void **state) {
        _cleanup_(json_object_putp) struct json_object *status = json(STATUS_REPLY),
                                                        *cluster = json("[{\"id\":1,\"name\":\"alpha\"}]"),
                                                        *nodes = json(NODE_ROWS),
                                                        *vms = json(VM_ROWS),
                                                        *staged = json("[{\"id\":1}]"),
                                                        *entries = json(VM_ENTRIES), *out = NULL;
        _cleanup_free_ char *text = NULL;
        struct capture cap;

        /* Without quorum, and without the manager's entry. */
        json_object_object_add(status, "quorate", json_object_new_boolean(false));
        json_object_object_add(status, "manager", NULL);
        assert_int_equal(ctl_status_build(status, cluster, nodes, vms, staged, entries, &out), 0);
        ctl_status_print(capture_start(&cap), out);
        text = capture_end(&cap);
        assert_string_equal(text,
                            "Cluster:        alpha (NOT QUORATE: the configuration is read-only)\n"
                            "This node:      node1 (id 1)\n"
                            "Version:        42 (configuration 7, checksum 0123456789abcdef)\n"
                            "Manager:        -\n"
                            "\n"
                            "NODE   ID  STATE    ONLINE  ADDRESSES\n"
                            "node1  1   active   yes     198.18.0.1\n"
                            "node2  2   standby  no      198.18.0.2 198.19.0.2\n"
                            "-      3   -        yes     -\n"
                            "\n"
                            "VM     HA   PREFERRED  NODE          STATE\n"
                            "web1   on   node2      node1         running\n"
                            "db1    off  -          -             stopped\n"
                            "split  on   -          node1,node 3  running,paused\n"
                            "\n"
                            "Pending changes: 1 (review: havenctl changes; apply: havenctl "
                            "activate)\n");
}

static void manager_entry_may_name_a_node_several_ways(void **state) {
        static const struct {
                const char *manager, *expected;
        } cases[] = {
                { "2", "\"node2\"" },
                { "9", "\"node 9\"" },
                { "\"node2\"", "\"node2\"" },
                { "{\"node_id\":2,\"since\":5}", "\"node2\"" },
                { "{\"name\":\"node1\"}", "\"node1\"" },
                { "{\"other\":1}", "null" },
                { "null", "null" },
        };
        _cleanup_(json_object_putp) struct json_object *empty = json("[]"), *nodes = json(NODE_ROWS);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(json_object_putp) struct json_object *status = json(STATUS_REPLY),
                                                                *out = NULL;
                struct json_object *m = NULL;

                (void) haven_json_parse(cases[i].manager, strlen(cases[i].manager), 1024, &m);
                json_object_object_add(status, "manager", m);
                assert_int_equal(ctl_status_build(status, empty, nodes, empty, empty, NULL, &out), 0);
                m = json_object_object_get(out, "manager");
                assert_string_equal(m ? plain(m) : "null", cases[i].expected);
        }
}

/* ==== vm and node (ctl-vm.c) ==== */

static const char VM_NODE_ROWS[] =
        "[{\"id\":1,\"version\":2,\"node_id\":1,\"name\":\"node1\",\"state\":\"active\"},"
        "{\"id\":2,\"version\":3,\"node_id\":2,\"name\":\"node2\",\"state\":\"active\"}]";
/* One VM per case of the state rule. */
static const char LIST_VMS[] =
        "[{\"id\":1,\"name\":\"web1\",\"ha\":\"on\",\"preferred_node_id\":2,\"priority\":700,"
        "\"memory_mib\":512},"
        "{\"id\":2,\"name\":\"db1\",\"ha\":\"off\",\"priority\":500,\"memory_mib\":1024},"
        "{\"id\":3,\"name\":\"app1\",\"ha\":\"on\",\"preferred_node_id\":9,\"priority\":500,"
        "\"memory_mib\":256},"
        "{\"id\":4,\"name\":\"mig1\",\"ha\":\"on\",\"priority\":500,\"memory_mib\":256},"
        "{\"id\":5,\"name\":\"dup1\",\"ha\":\"sticky\",\"priority\":500,\"memory_mib\":256},"
        "{\"id\":6,\"name\":\"early\",\"ha\":\"on\",\"priority\":500,\"memory_mib\":256},"
        "{\"id\":7,\"name\":\"nap\",\"ha\":\"on\",\"priority\":500,\"memory_mib\":256},"
        "{\"id\":8,\"name\":\"boot\",\"ha\":\"on\",\"priority\":500,\"memory_mib\":256},"
        "{\"id\":9,\"name\":\"halt\",\"ha\":\"on\",\"priority\":500,\"memory_mib\":256}]";
static const char LIST_PLACEMENTS[] =
        "[{\"id\":11,\"vm_id\":1,\"node_id\":1,\"state\":\"running\",\"reason\":\"\"},"
        "{\"id\":13,\"vm_id\":3,\"node_id\":2,\"state\":\"waiting\","
        "\"reason\":\"waiting for node2 to be fenced\"},"
        "{\"id\":14,\"vm_id\":4,\"node_id\":1,\"target_node_id\":2,\"state\":\"migrating\","
        "\"reason\":\"\"},"
        "{\"id\":15,\"vm_id\":5,\"node_id\":1,\"state\":\"running\",\"reason\":\"\"},"
        "{\"id\":17,\"vm_id\":7,\"node_id\":1,\"state\":\"running\",\"reason\":\"\"},"
        "{\"id\":18,\"vm_id\":8,\"node_id\":2,\"state\":\"starting\",\"reason\":\"\"},"
        "{\"id\":19,\"vm_id\":9,\"node_id\":2,\"state\":\"stopping\",\"reason\":\"\"}]";
static const char LIST_ENTRIES[] =
        "[{\"node\":1,\"key\":\"vm/web1\",\"value\":{\"state\":\"running\"}},"
        "{\"node\":2,\"key\":\"vm/app1\",\"value\":{\"state\":\"crashed\"}},"
        "{\"node\":1,\"key\":\"vm/mig1\",\"value\":{\"state\":\"migrating-out\","
        "\"target_node\":2,\"migration\":{\"target_node\":2,\"percent\":40}}},"
        "{\"node\":2,\"key\":\"vm/mig1\",\"value\":{\"state\":\"paused\"}},"
        "{\"node\":1,\"key\":\"vm/dup1\",\"value\":{\"state\":\"running\"}},"
        "{\"node\":2,\"key\":\"vm/dup1\",\"value\":{\"state\":\"running\"}},"
        "{\"node\":7,\"key\":\"vm/early\",\"value\":{\"state\":\"running\"}},"
        "{\"node\":1,\"key\":\"vm/nap\",\"value\":{\"state\":\"paused\"}},"
        "{\"node\":2,\"key\":\"vm/boot\",\"value\":{\"state\":\"running\"}},"
        "{\"node\":2,\"key\":\"vm/halt\",\"value\":{\"state\":\"running\"}},"
        "{\"node\":1,\"key\":\"vm/web10\",\"value\":{\"state\":\"running\"}}]";

static void vm_list_says_where_each_vm_runs_and_in_what_state(void **state) {
        static const char *const expected[] = {
                /* placed and reported running */
                "{\"name\":\"web1\",\"id\":1,\"node\":\"node1\",\"state\":\"running\","
                "\"ha\":\"on\",\"preferred_node\":\"node2\",\"priority\":700,"
                "\"memory_mib\":512,\"reason\":null}",
                /* no placement, no report: stopped, nowhere */
                "{\"name\":\"db1\",\"id\":2,\"node\":null,\"state\":\"stopped\",\"ha\":\"off\","
                "\"preferred_node\":null,\"priority\":500,\"memory_mib\":1024,\"reason\":null}",
                /* a crashed report is no place to run; the reason shows */
                "{\"name\":\"app1\",\"id\":3,\"node\":null,\"state\":\"waiting\",\"ha\":\"on\","
                "\"preferred_node\":\"node 9\",\"priority\":500,\"memory_mib\":256,"
                "\"reason\":\"waiting for node2 to be fenced\"}",
                /* the incoming copy on the target is not a second one */
                "{\"name\":\"mig1\",\"id\":4,\"node\":\"node1\",\"state\":\"migrating\","
                "\"ha\":\"on\",\"preferred_node\":null,\"priority\":500,\"memory_mib\":256,"
                "\"reason\":null}",
                /* two nodes run it: both shown */
                "{\"name\":\"dup1\",\"id\":5,\"node\":\"node1,node2\","
                "\"state\":\"running,running\",\"ha\":\"sticky\",\"preferred_node\":null,"
                "\"priority\":500,\"memory_mib\":256,\"reason\":null}",
                /* no manager yet, runs on a node the table does not know */
                "{\"name\":\"early\",\"id\":6,\"node\":\"node 7\",\"state\":\"running\","
                "\"ha\":\"on\",\"preferred_node\":null,\"priority\":500,\"memory_mib\":256,"
                "\"reason\":null}",
                "{\"name\":\"nap\",\"id\":7,\"node\":\"node1\",\"state\":\"paused\","
                "\"ha\":\"on\",\"preferred_node\":null,\"priority\":500,\"memory_mib\":256,"
                "\"reason\":null}",
                /* the placement has not caught up with the start */
                "{\"name\":\"boot\",\"id\":8,\"node\":\"node2\",\"state\":\"running\","
                "\"ha\":\"on\",\"preferred_node\":null,\"priority\":500,\"memory_mib\":256,"
                "\"reason\":null}",
                /* a stop in progress keeps the placement's word */
                "{\"name\":\"halt\",\"id\":9,\"node\":\"node2\",\"state\":\"stopping\","
                "\"ha\":\"on\",\"preferred_node\":null,\"priority\":500,\"memory_mib\":256,"
                "\"reason\":null}",
        };
        _cleanup_(json_object_putp) struct json_object *vms = json(LIST_VMS),
                                                        *placements = json(LIST_PLACEMENTS),
                                                        *nodes = json(VM_NODE_ROWS),
                                                        *entries = json(LIST_ENTRIES),
                                                        *out = NULL, *bare = NULL;

        assert_int_equal(ctl_vm_list_build(vms, placements, nodes, entries, &out), 0);
        assert_int_equal(json_object_array_length(out), ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                assert_json(json_object_array_get_idx(out, i), expected[i]);

        /* Without placements, nodes or entries (a fresh cluster). */
        assert_int_equal(ctl_vm_list_build(vms, NULL, NULL, NULL, &bare), 0);
        assert_json(json_object_array_get_idx(bare, 0),
                    "{\"name\":\"web1\",\"id\":1,\"node\":null,\"state\":\"stopped\","
                    "\"ha\":\"on\",\"preferred_node\":\"node 2\",\"priority\":700,"
                    "\"memory_mib\":512,\"reason\":null}");
}

static void vm_list_prints_one_aligned_row_per_vm(void **state) {
        _cleanup_(json_object_putp) struct json_object *vms = NULL, *placements =
                                                                             json(LIST_PLACEMENTS),
                                                        *nodes = json(VM_NODE_ROWS),
                                                        *entries = json(LIST_ENTRIES),
                                                        *out = NULL, *none = NULL,
                                                        *empty = json("[]");
        _cleanup_free_ char *text = NULL, *nothing = NULL;
        struct capture cap;

        vms = json("[{\"id\":1,\"name\":\"web1\",\"ha\":\"on\",\"preferred_node_id\":2,"
                   "\"priority\":700,\"memory_mib\":512},"
                   "{\"id\":3,\"name\":\"app1\",\"ha\":\"on\",\"priority\":500,"
                   "\"memory_mib\":256},"
                   "{\"id\":5,\"name\":\"dup\\u001b[2J\",\"ha\":\"off\"}]");
        assert_int_equal(ctl_vm_list_build(vms, placements, nodes, entries, &out), 0);
        ctl_vm_list_print(capture_start(&cap), out);
        text = capture_end(&cap);
        assert_string_equal(text,
                            "VM          NODE   STATE    HA   PREFERRED  PRIORITY  MEMORY   "
                            "REASON\n"
                            "web1        node1  running  on   node2      700       512 MiB  -\n"
                            "app1        -      waiting  on   -          500       256 MiB  "
                            "waiting for node2 to be fenced\n"
                            "dup\\x1b[2J  -      running  off  -          -         -        -\n");

        assert_int_equal(ctl_vm_list_build(empty, NULL, NULL, NULL, &none), 0);
        ctl_vm_list_print(capture_start(&cap), none);
        nothing = capture_end(&cap);
        assert_string_equal(nothing, "No VMs.\n");
}

static const char SHOW_COMMANDS[] =
        "[{\"id\":20,\"vm_id\":4,\"command\":\"start\",\"state\":\"done\",\"result\":\"started\"},"
        "{\"id\":21,\"vm_id\":4,\"command\":\"reboot\",\"state\":\"failed\","
        "\"result\":\"not running\"},"
        "{\"id\":22,\"vm_id\":4,\"command\":\"migrate\",\"target_node_id\":2,"
        "\"state\":\"running\",\"requested_by\":\"havenctl:root\","
        "\"requested_at\":1700000000000000},"
        "{\"id\":23,\"vm_id\":4,\"command\":\"poweroff\",\"state\":\"pending\","
        "\"requested_by\":\"api:admin\",\"requested_at\":1700000001000000},"
        "{\"id\":24,\"vm_id\":1,\"command\":\"start\",\"state\":\"pending\"}]";

static void vm_show_gathers_placement_reports_commands_and_migration(void **state) {
        _cleanup_(json_object_putp) struct json_object *vm = NULL,
                                                        *placements = json(LIST_PLACEMENTS),
                                                        *nodes = json(VM_NODE_ROWS),
                                                        *entries = NULL,
                                                        *commands = json(SHOW_COMMANDS),
                                                        *out = NULL;
        struct json_object *v;
        _cleanup_free_ char *text = NULL;
        struct capture cap;

        vm = json("{\"id\":4,\"version\":3,\"name\":\"mig1\",\"ha\":\"on\",\"priority\":500,"
                  "\"memory_mib\":256,\"vcpus\":2,\"desired_state\":\"running\","
                  "\"preferred_node_id\":2}");
        entries = json("[{\"node\":1,\"key\":\"vm/mig1\",\"value\":{\"vm_id\":4,"
                       "\"state\":\"migrating-out\",\"generation\":7,\"target_node\":2,"
                       "\"vnc_port\":5901,\"error\":null,"
                       "\"migration\":{\"target_node\":2,\"percent\":40,\"elapsed_ms\":900},"
                       "\"last_migration\":{\"from_node\":2,\"to_node\":1,\"duration_ms\":2300,"
                       "\"downtime_ms\":40,\"error\":null}}},"
                       "{\"node\":2,\"key\":\"vm/mig1\",\"value\":{\"vm_id\":4,"
                       "\"state\":\"paused\",\"generation\":7,\"error\":null,"
                       "\"last_migration\":{\"from_node\":1,\"to_node\":2,\"duration_ms\":1,"
                       "\"downtime_ms\":null,\"error\":\"old\"}}}]");
        assert_int_equal(ctl_vm_show_build(vm, placements, nodes, entries, commands, &out), 0);
        assert_string_equal(string_at(out, "node"), "node1");
        assert_string_equal(string_at(out, "state"), "migrating");
        assert_json(json_object_object_get(out, "placement"),
                    "{\"id\":14,\"vm_id\":4,\"node_id\":1,\"target_node_id\":2,"
                    "\"state\":\"migrating\",\"reason\":\"\",\"node\":\"node1\","
                    "\"target_node\":\"node2\"}");
        /* From the node that runs it, with the nodes named. */
        assert_json(json_object_object_get(out, "last_migration"),
                    "{\"from_node\":2,\"to_node\":1,\"duration_ms\":2300,\"downtime_ms\":40,"
                    "\"error\":null,\"from\":\"node2\",\"to\":\"node1\"}");
        v = json_object_object_get(out, "reports");
        assert_int_equal(json_object_array_length(v), 2);
        assert_string_equal(string_at(json_object_array_get_idx(v, 0), "node"), "node1");
        assert_string_equal(string_at(json_object_array_get_idx(v, 1), "state"), "paused");
        /* Open commands only, named; the newest finished one apart. */
        v = json_object_object_get(out, "commands");
        assert_int_equal(json_object_array_length(v), 2);
        assert_string_equal(string_at(json_object_array_get_idx(v, 0), "target_node"), "node2");
        assert_string_equal(string_at(json_object_array_get_idx(v, 1), "command"), "poweroff");
        assert_string_equal(string_at(json_object_object_get(out, "last_command"), "result"),
                            "not running");
        assert_string_equal(string_at(json_object_object_get(out, "vm"), "desired_state"),
                            "running");

        ctl_vm_show_print(capture_start(&cap), out);
        text = capture_end(&cap);
        assert_string_equal(text,
                            "VM:             mig1 (id 4)\n"
                            "State:          migrating on node1\n"
                            "Desired:        running\n"
                            "HA:             on, priority 500, preferred node node2\n"
                            "Size:           256 MiB, 2 vCPUs\n"
                            "Placement:      migrating on node1, target node2 (generation 0, "
                            "0 restarts, 0 relocations)\n"
                            "Last migration: from node2 to node1 in 2.3 s (downtime 40 ms)\n"
                            "\n"
                            "NODE   STATE                GENERATION  VNC   ERROR\n"
                            "node1  migrating-out (40%)  7           5901  -\n"
                            "node2  paused               7           -     -\n"
                            "\n"
                            "Open commands:\n"
                            "ID  COMMAND   TARGET  STATE    BY             AT\n"
                            "22  migrate   node2   running  havenctl:root  2023-11-14 22:13:20\n"
                            "23  poweroff  -       pending  api:admin      2023-11-14 22:13:21\n"
                            "Last command:   21 reboot, failed: not running\n");
}

static void vm_show_of_a_vm_nobody_placed_says_so(void **state) {
        _cleanup_(json_object_putp) struct json_object *vm = json("{\"id\":2,\"name\":\"db1\"}"),
                                                        *out = NULL;
        _cleanup_free_ char *text = NULL;
        struct capture cap;

        assert_int_equal(ctl_vm_show_build(vm, NULL, NULL, NULL, NULL, &out), 0);
        assert_json(out, "{\"name\":\"db1\",\"id\":2,\"node\":null,\"state\":\"stopped\","
                         "\"ha\":null,\"preferred_node\":null,\"priority\":null,"
                         "\"memory_mib\":null,\"reason\":null,\"vm\":{\"id\":2,\"name\":\"db1\"},"
                         "\"placement\":null,\"last_migration\":null,\"reports\":[],"
                         "\"commands\":[],\"last_command\":null}");
        ctl_vm_show_print(capture_start(&cap), out);
        text = capture_end(&cap);
        assert_non_null(strstr(text, "Placement:      none (the VM manager has not placed it)\n"));
        assert_non_null(strstr(text, "Reports: none (no node has it)\n"));
        assert_non_null(strstr(text, "Open commands: none\n"));
        assert_null(strstr(text, "Last command"));
}

static void vm_commands_are_one_insert_with_an_audit_text(void **state) {
        _cleanup_(json_object_putp) struct json_object *start = ctl_vm_command_op(5, "start", 0),
                                                        *migrate =
                                                                ctl_vm_command_op(5, "migrate", 2);
        _cleanup_free_ char *a = ctl_vm_command_summary("start", "web1", NULL),
                            *b = ctl_vm_command_summary("migrate", "web1", "node2");

        assert_json(start, "{\"op\":\"insert\",\"table\":\"vm_commands\",\"values\":"
                           "{\"vm_id\":5,\"command\":\"start\"}}");
        assert_json(migrate, "{\"op\":\"insert\",\"table\":\"vm_commands\",\"values\":"
                             "{\"vm_id\":5,\"command\":\"migrate\",\"target_node_id\":2}}");
        assert_string_equal(a, "vm web1: start");
        assert_string_equal(b, "vm web1: migrate to node2");

        /* The schema's commands, and nothing else. */
        for (const char *const *k = (const char *const[]){ "start", "shutdown", "reboot",
                                                           "reset", "poweroff", "migrate",
                                                           "release", NULL };
             *k; k++)
                assert_true(ctl_vm_command_known(*k));
        for (const char *const *k = (const char *const[]){ "", "Start", "start ", "migrate2",
                                                           "list", "prefer", NULL };
             *k; k++)
                assert_false(ctl_vm_command_known(*k));
        assert_false(ctl_vm_command_known(NULL));
}

static void timeouts_are_whole_seconds_within_a_day(void **state) {
        static const char *const bad[] = {
                "0", "-1", "+5", " 5", "5 ", "1e3", "", "12x", "86401", "007", "1.5",
                "99999999999999999999", "0x10",
        };
        unsigned v = 0;

        assert_int_equal(ctl_parse_seconds("1", &v), 0);
        assert_int_equal(v, 1);
        assert_int_equal(ctl_parse_seconds("120", &v), 0);
        assert_int_equal(v, 120);
        assert_int_equal(ctl_parse_seconds("86400", &v), 0);
        assert_int_equal(v, 86400);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                v = 77;
                assert_int_equal(ctl_parse_seconds(bad[i], &v), -EINVAL);
                assert_int_equal(v, 77);
        }
        assert_int_equal(ctl_parse_seconds(NULL, &v), -EINVAL);
}

static void command_lines_say_state_and_result(void **state) {
        static const struct {
                const char *row, *line;
        } cases[] = {
                { "{\"state\":\"running\"}", "running" },
                { "{\"state\":\"pending\",\"result\":\"\"}", "pending" },
                { "{\"state\":\"done\",\"result\":\"web1 runs on node2\"}",
                  "done: web1 runs on node2" },
                { "{\"state\":\"done\",\"result\":\"\"}", "done." },
                { "{\"state\":\"failed\",\"result\":\"migration failed:\\nno\\u001b\"}",
                  "failed: migration failed:\\nno\\x1b" },
                { "{\"state\":\"failed\"}", "failed." },
                { "{}", "pending" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(json_object_putp) struct json_object *row = json(cases[i].row);
                _cleanup_free_ char *line = ctl_vm_command_line(row);

                assert_string_equal(line, cases[i].line);
        }
}

static void draining_a_node_lists_what_still_runs_there(void **state) {
        _cleanup_(json_object_putp) struct json_object *entries = NULL, *two = NULL,
                                                        *one = NULL, *none = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        entries = json("[{\"node\":2,\"key\":\"vm/web1\",\"value\":{\"state\":\"migrating-out\","
                       "\"migration\":{\"percent\":40}}},"
                       "{\"node\":2,\"key\":\"vm/db1\",\"value\":{\"state\":\"running\"}},"
                       "{\"node\":2,\"key\":\"vm/old\",\"value\":{\"state\":\"stopped\"}},"
                       "{\"node\":2,\"key\":\"vm/nap\",\"value\":\"paused\"},"
                       "{\"node\":1,\"key\":\"vm/app1\",\"value\":{\"state\":\"running\"}},"
                       "{\"node\":2,\"key\":\"vmd\",\"value\":{\"ready\":true}}]");
        assert_int_equal(ctl_node_running_vms(entries, 2, &two), 0);
        assert_json(two, "[{\"name\":\"db1\",\"state\":\"running\"},"
                         "{\"name\":\"nap\",\"state\":\"paused\"},"
                         "{\"name\":\"web1\",\"state\":\"migrating-out\",\"percent\":40}]");
        a = ctl_node_drain_line("node2", two);
        assert_string_equal(a, "node2 still runs 3 VMs: db1, nap (paused), web1 (migrating, 40%)");

        assert_int_equal(ctl_node_running_vms(entries, 1, &one), 0);
        b = ctl_node_drain_line("node1", one);
        assert_string_equal(b, "node1 still runs 1 VM: app1");

        assert_int_equal(ctl_node_running_vms(entries, 3, &none), 0);
        c = ctl_node_drain_line("node3", none);
        assert_string_equal(c, "node3 runs no VM any more.");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(tables_are_found_by_name_alias_and_dashes),
                cmocka_unit_test(equals_sends_json_literals_and_text_otherwise),
                cmocka_unit_test(colon_equals_is_always_json),
                cmocka_unit_test(double_equals_is_always_text),
                cmocka_unit_test(bad_assignments_say_what_is_wrong),
                cmocka_unit_test(assignments_build_one_object_without_duplicates),
                cmocka_unit_test(rows_are_named_by_id_or_name),
                cmocka_unit_test(add_set_delete_become_staged_or_direct_transactions),
                cmocka_unit_test(queries_and_cluster_requests_match_the_api),
                cmocka_unit_test(summaries_hide_passwords_and_stay_short),
                cmocka_unit_test(password_files_give_their_first_line),
                cmocka_unit_test(text_is_made_safe_for_terminals),
                cmocka_unit_test(grids_align_columns_without_trailing_blanks),
                cmocka_unit_test(values_print_as_people_read_them),
                cmocka_unit_test(rows_print_as_a_table_of_their_columns),
                cmocka_unit_test(one_row_prints_as_a_record),
                cmocka_unit_test(json_output_is_pretty_and_unescaped),
                cmocka_unit_test(error_answers_become_one_line),
                cmocka_unit_test(job_log_lines_show_time_node_and_source),
                cmocka_unit_test(status_joins_members_nodes_vms_and_runtime),
                cmocka_unit_test(status_of_a_fresh_node_has_no_cluster),
                cmocka_unit_test(status_prints_a_readable_summary),
                cmocka_unit_test(manager_entry_may_name_a_node_several_ways),
                cmocka_unit_test(vm_list_says_where_each_vm_runs_and_in_what_state),
                cmocka_unit_test(vm_list_prints_one_aligned_row_per_vm),
                cmocka_unit_test(vm_show_gathers_placement_reports_commands_and_migration),
                cmocka_unit_test(vm_show_of_a_vm_nobody_placed_says_so),
                cmocka_unit_test(vm_commands_are_one_insert_with_an_audit_text),
                cmocka_unit_test(timeouts_are_whole_seconds_within_a_day),
                cmocka_unit_test(command_lines_say_state_and_result),
                cmocka_unit_test(draining_a_node_lists_what_still_runs_there),
        };

        /* Times print in local time: make that UTC for the expectations. */
        setenv("TZ", "UTC", 1);
        tzset();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
