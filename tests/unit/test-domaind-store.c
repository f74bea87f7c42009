/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven-domaind's store (daemons/domaind/domaind-store.c) on
 * real database files in a fresh directory per test: determinism (two
 * members fed the same transactions hold the same content, version,
 * checksum and snapshot), the incremental checksum against a full scan after
 * every kind of op, all-or-nothing refusals, batches, snapshots, persistence,
 * activation and queries.
 *
 * The bad transactions refused (each with its errno, code and field, each
 * leaving version, checksum and snapshot as they were), in bad_ops[] below:
 *   ops not an array; an empty array; an op that is not an object; no "op";
 *   an unknown op; an extra field in an op; an unknown table; an unknown
 *   column; "id" or "version" in values; insert without values; update
 *   without id; a negative id; update with empty values; a string, a
 *   double, a bool for an INTEGER column; an integer for a TEXT column; a
 *   string for a boolean; a number for a JSON column; an object where the
 *   JSON column wants an array; CHECK violations (vcpus, memory_mib, mtu,
 *   vlan_id, priority, ha, node state, a name with a space, a 64-character
 *   name); a missing NOT NULL column; a UNIQUE name taken; a foreign key to
 *   a missing row; a ref to a later op, to itself, to a non-insert op, a
 *   malformed ref; update and delete of a missing row; writes to audit and
 *   staged_changes; a second cluster row; a stage inside a stage; a stage
 *   with a bad inner op; a change of a key other rows refer to; deleting a
 *   network a NIC uses; a good op followed by a bad one; a stale
 *   expect_version (conflict); activate with nothing staged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test-tmp.h"

#include <dirent.h>
#include <inttypes.h>

#include <nettle/sha2.h>

#include "haven/db.h"
#include "haven/json.h"

#include "../../daemons/domaind/domaind-store.h"

#define TIME0 UINT64_C(1700000000000000)

struct fixture {
        char dir[64];
        char path[128];  /* member A */
        char path2[128]; /* member B */
        uint64_t time;
};

static int fixture_setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);

        if (!f)
                return -1;
        strcpy(f->dir, "/tmp/haven-test-store-XXXXXX");
        if (!mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        snprintf(f->path, sizeof f->path, "%s/a.db", f->dir);
        snprintf(f->path2, sizeof f->path2, "%s/b.db", f->dir);
        f->time = TIME0;
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        struct fixture *f = *state;

        remove_tree(f->dir);
        free(f);
        return 0;
}

/* ==== Helpers ==== */

/* Parses text with ' standing for " (keeps the C strings readable). */
static struct json_object *json(const char *text) {
        struct json_object *o = NULL;
        char *copy = strdup(text);

        assert_non_null(copy);
        for (char *p = copy; *p; p++)
                if (*p == '\'')
                        *p = '"';
        if (haven_json_parse(copy, strlen(copy), 1 << 20, &o) < 0)
                fail_msg("test JSON does not parse: %s", copy);
        free(copy);
        return o;
}

/* Applies ops (see json()) at time t as "admin" on "node1". */
static int apply_at(struct store *s, uint64_t t, const char *ops,
                    struct json_object **ret_result, struct store_error *e) {
        _cleanup_(json_object_putp) struct json_object *o = json(ops);
        struct store_tx tx = {
                .ops = o,
                .actor = "admin",
                .node = "node1",
                .time_usec = t,
        };

        return store_apply(s, &tx, ret_result, e);
}

static void assert_checksum_consistent(struct store *s) {
        uint64_t full = 1;

        assert_int_equal(store_checksum_full(s, &full), 0);
        if (full != store_checksum(s))
                fail_msg("incremental checksum %016" PRIx64
                         " != full scan %016" PRIx64,
                         store_checksum(s), full);
}

/* Applies ops, which must succeed; returns the id in result `index` (or 0)
 * and checks the checksum. */
static int64_t ok_at(struct store *s, uint64_t t, const char *ops,
                     size_t index) {
        _cleanup_(json_object_putp) struct json_object *result = NULL;
        struct store_error e;
        struct json_object *results, *item, *id;
        uint64_t before = store_version(s);
        int r;

        r = apply_at(s, t, ops, &result, &e);
        if (r < 0)
                fail_msg("%s refused: %s (%s) %s, op %d", ops, strerror(-r),
                         e.code, e.message, e.op_index);
        assert_int_equal(store_version(s), before + 1);
        assert_int_equal(json_object_get_int64(
                                 json_object_object_get(result, "version")),
                         before + 1);
        assert_checksum_consistent(s);
        results = json_object_object_get(result, "results");
        item = json_object_array_get_idx(results, index);
        if (item && json_object_object_get_ex(item, "id", &id))
                return json_object_get_int64(id);
        return 0;
}

static int64_t ok(struct fixture *f, struct store *s, const char *ops) {
        return ok_at(s, f->time++, ops, 0);
}

/* The snapshot as text (caller frees). */
static char *snapshot_text(struct store *s) {
        _cleanup_(json_object_putp) struct json_object *snap = NULL;
        char *text;

        assert_int_equal(store_snapshot(s, &snap), 0);
        text = strdup(
                json_object_to_json_string_ext(snap, JSON_C_TO_STRING_PLAIN));
        assert_non_null(text);
        return text;
}

/* Applies ops, which must be refused with r, code and field (NULL: any),
 * and checks that version, checksum and content did not move. */
static void refused(struct fixture *f, struct store *s, const char *ops,
                    int want_r, const char *code, const char *field) {
        _cleanup_free_ char *before = snapshot_text(s), *after = NULL;
        uint64_t version = store_version(s), checksum = store_checksum(s);
        struct json_object *result = (struct json_object *) 0x1;
        struct store_error e;
        int r;

        r = apply_at(s, f->time++, ops, &result, &e);
        if (r != want_r)
                fail_msg("%s: got %d (%s: %s), want %d", ops, r, e.code,
                         e.message, want_r);
        assert_null(result);
        assert_string_equal(e.code, code);
        if (field && !streq(e.field, field))
                fail_msg("%s: field \"%s\" (%s), want \"%s\"", ops, e.field,
                         e.message, field);
        assert_true(e.message[0] != 0);
        assert_int_equal(store_version(s), version);
        assert_int_equal(store_checksum(s), checksum);
        assert_checksum_consistent(s);
        after = snapshot_text(s);
        assert_string_equal(after, before);
}

static int64_t count(struct store *s, const char *sql) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;

        if (sqlite3_prepare_v2(store_db(s), sql, -1, &stmt, NULL) != SQLITE_OK)
                fail_msg("'%s': %s", sql, sqlite3_errmsg(store_db(s)));
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        return sqlite3_column_int64(stmt, 0);
}

/* A cluster with two nodes, a network, a disk, and a VM using all three. */
static void populate(struct fixture *f, struct store *s) {
        ok(f, s,
           "[{'op': 'insert', 'table': 'cluster', 'values': {'name': 'lab',"
           "  'uuid': '0123abcd-0000-4111-8222-333344445555'}},"
           " {'op': 'insert', 'table': 'nodes', 'values': {'node_id': 1,"
           "  'name': 'node1', 'addresses': ['198.18.0.1'],"
           "  'state': 'active', 'memory_mib': 8192}},"
           " {'op': 'insert', 'table': 'nodes', 'values': {'node_id': 2,"
           "  'name': 'node2', 'addresses': ['198.18.0.2'],"
           "  'esan_member': true}}]");
        ok(f, s,
           "[{'op': 'insert', 'table': 'networks', 'values': {'name': 'lan',"
           "  'uplinks': ['eth1'], 'mtu': 9000}},"
           " {'op': 'insert', 'table': 'disks', 'values': {'name': 'web1-root',"
           "  'kind': 'esan', 'size_mib': 1024, 'nodes': [1, 2]}},"
           " {'op': 'insert', 'table': 'vms', 'values': {'name': 'web1',"
           "  'memory_mib': 512, 'ha': 'on', 'preferred_node_id': 1}},"
           " {'op': 'insert', 'table': 'vm_nics', 'values': {'vm_id': {'ref': "
           "2},"
           "  'network_id': {'ref': 0}, 'mac': '52:54:00:00:00:01'}},"
           " {'op': 'insert', 'table': 'vm_disks', 'values': {'vm_id': {'ref': "
           "2},"
           "  'disk_id': {'ref': 1}, 'boot_order': 1}}]");
}

/* ==== Opening and persistence ==== */

static void new_store_is_empty_at_version_zero(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        const char *const *tables = store_tables();
        size_t n = 0;

        assert_int_equal(store_open(f->path, &s), 0);
        assert_int_equal(store_version(s), 0);
        assert_int_equal(store_checksum(s), 0);
        assert_checksum_consistent(s);

        /* Every table in the file is either replicated (listed, empty) or
         * the store's own state. */
        assert_int_equal(sqlite3_prepare_v2(store_db(s),
                                            "SELECT name FROM sqlite_master "
                                            "WHERE type = 'table'",
                                            -1, &stmt, NULL),
                         SQLITE_OK);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(stmt, 0);
                bool listed = false;

                for (const char *const *t = tables; *t; t++)
                        listed = listed || streq(*t, name);
                if (streq(name, "domain_state"))
                        continue;
                if (!listed)
                        fail_msg("table %s is not replicated", name);
                n++;
        }
        for (const char *const *t = tables; *t; t++)
                n--;
        assert_int_equal(n, 0);
}

static void reopened_store_keeps_version_and_checksum(void **state) {
        struct fixture *f = *state;
        _cleanup_free_ char *before = NULL, *after = NULL;
        struct store *s = NULL;
        uint64_t version, checksum;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        ok(f, s,
           "[{'op': 'update', 'table': 'vms', 'id': 1,"
           "  'values': {'vcpus': 4}}]");
        version = store_version(s);
        checksum = store_checksum(s);
        before = snapshot_text(s);
        s = store_free(s);

        assert_int_equal(store_open(f->path, &s), 0);
        assert_int_equal(store_version(s), version);
        assert_int_equal(store_checksum(s), checksum);
        assert_checksum_consistent(s);
        after = snapshot_text(s);
        assert_string_equal(after, before);
        s = store_free(s);
}

/* ==== Determinism ==== */

/* The same sequence, good and bad transactions mixed, on any member. */
static void feed(struct store *s) {
        static const char *const txs[] = {
                "[{'op': 'insert', 'table': 'cluster', 'values': {'name': "
                "'lab',"
                "  'uuid': '0123abcd-0000-4111-8222-333344445555'}}]",
                "[{'op': 'insert', 'table': 'nodes', 'values': {'node_id': 1,"
                "  'name': 'node1'}},"
                " {'op': 'insert', 'table': 'nodes', 'values': {'node_id': 2,"
                "  'name': 'node2'}}]",
                "[{'op': 'insert', 'table': 'hosts', 'values': {'name': 'a',"
                "  'address': '10.0.0.1'}},"
                " {'op': 'insert', 'table': 'hosts', 'values': {'name': 'b',"
                "  'address': '10.0.0.2'}},"
                " {'op': 'insert', 'table': 'hosts', 'values': {'name': 'c',"
                "  'address': 'fd00::3'}}]",
                /* ids are reused after a delete of the last row: the same
                 * on every member */
                "[{'op': 'delete', 'table': 'hosts', 'id': 3}]",
                "[{'op': 'insert', 'table': 'hosts', 'values': {'name': 'd',"
                "  'address': '10.0.0.4'}}]",
                "[{'op': 'insert', 'table': 'hosts', 'values': {'name': 'a',"
                "  'address': '10.0.0.9'}}]", /* refused: name taken */
                "[{'op': 'insert', 'table': 'networks', 'values': {'name': "
                "'lan'}},"
                " {'op': 'insert', 'table': 'vms', 'values': {'name': 'web1',"
                "  'memory_mib': 256}},"
                " {'op': 'insert', 'table': 'vm_nics', 'values': {"
                "  'vm_id': {'ref': 1}, 'network_id': {'ref': 0}}},"
                " {'op': 'insert', 'table': 'vm_cdroms', 'values': {"
                "  'vm_id': {'ref': 1}, 'iso_path': '/data/iso/debian.iso'}}]",
                "[{'op': 'update', 'table': 'vms', 'id': 1, 'expect_version': "
                "6,"
                "  'values': {'vcpus': 2, 'description': 'web server'}}]",
                "[{'op': 'update', 'table': 'vms', 'id': 1, 'expect_version': "
                "6,"
                "  'values': {'vcpus': 3}}]", /* refused: stale */
                "[{'op': 'stage', 'summary': 'more memory', 'ops': ["
                "  {'op': 'update', 'table': 'vms', 'id': 1,"
                "   'values': {'memory_mib': 1024}}]}]",
                "[{'op': 'stage', 'ops': ["
                "  {'op': 'insert', 'table': 'vms', 'values': {'name': 'db1',"
                "   'memory_mib': 2048}},"
                "  {'op': 'insert', 'table': 'vm_nics', 'values': {"
                "   'vm_id': {'ref': 0}, 'network_id': 1}}]}]",
                "[{'op': 'activate'}]",
                "[{'op': 'insert', 'table': 'job_log', 'values': {'job_id': 1,"
                "  'node': 'node1', 'source': 'vmd', 'line': 'defined db1'}}]",
                "[{'op': 'stage', 'ops': [{'op': 'delete', 'table': 'hosts',"
                "  'id': 1}]}]",
                "[{'op': 'discard'}]",
                "[{'op': 'delete', 'table': 'vms', 'id': 1}]",
                "[{'op': 'update', 'table': 'jobs', 'id': 1,"
                "  'values': {'state': 'done', 'finished_at': "
                "1700000000999999}}]",
        };
        uint64_t t = TIME0;

        for (size_t i = 0; i < ELEMENTSOF(txs); i++) {
                struct store_error e;

                (void) apply_at(s, t++, txs[i], NULL, &e);
                assert_checksum_consistent(s);
        }
}

static void
two_members_fed_the_same_transactions_hold_the_same_content(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *a = NULL, *b = NULL;
        _cleanup_free_ char *snap_a = NULL, *snap_b = NULL;

        assert_int_equal(store_open(f->path, &a), 0);
        assert_int_equal(store_open(f->path2, &b), 0);
        feed(a);
        feed(b);

        /* 17 transactions, 2 refused. */
        assert_int_equal(store_version(a), 15);
        assert_int_equal(store_version(b), 15);
        assert_int_equal(store_checksum(a), store_checksum(b));
        assert_true(store_checksum(a) != 0);
        snap_a = snapshot_text(a);
        snap_b = snapshot_text(b);
        assert_string_equal(snap_a, snap_b);

        /* Content, checked on one of them. */
        assert_int_equal(count(a, "SELECT id FROM hosts WHERE name = 'd'"), 3);
        assert_int_equal(count(a, "SELECT count(*) FROM vms"), 1);
        assert_int_equal(count(a, "SELECT count(*) FROM vm_nics"), 1);
        assert_int_equal(count(a, "SELECT count(*) FROM vm_cdroms"), 0);
        assert_int_equal(count(a, "SELECT count(*) FROM staged_changes"), 0);
        assert_int_equal(count(a, "SELECT config_version FROM cluster"), 1);
        assert_int_equal(count(a, "SELECT count(*) FROM audit"), 15);
}

/* ==== The checksum follows every kind of change ==== */

static void
incremental_checksum_matches_full_scan_after_every_kind_of_op(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        int64_t job;

        assert_int_equal(store_open(f->path, &s), 0);

        /* insert, with refs (ok() compares with a full scan every time) */
        populate(f, s);
        ok(f, s,
           "[{'op': 'insert', 'table': 'vm_cdroms', 'values': {'vm_id': 1,"
           "  'iso_path': '/data/iso/a.iso'}},"
           " {'op': 'insert', 'table': 'fence_devices', 'values': {"
           "  'name': 'pdu1', 'type': 'apc-snmp', 'address': '198.18.0.100',"
           "  'parameters': {'community': 'private'}}},"
           " {'op': 'insert', 'table': 'fence_outlets', 'values': {"
           "  'node_id': 1, 'device_id': {'ref': 1}, 'outlet': '1'}},"
           " {'op': 'insert', 'table': 'fence_outlets', 'values': {"
           "  'node_id': 2, 'device_id': {'ref': 1}, 'outlet': '2'}},"
           " {'op': 'insert', 'table': 'infrastructure', 'values': {"
           "  'dns_domain': 'lab.example', 'ntp_servers': ['ntp1']}}]");

        /* update, also to null and of JSON and boolean columns */
        ok(f, s,
           "[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {"
           "  'vcpus': 2, 'preferred_node_id': null}},"
           " {'op': 'update', 'table': 'nodes', 'id': 2, 'values': {"
           "  'addresses': ['198.18.0.2', '198.18.1.2'],"
           "  'esan_member': false}}]");

        /* stage, discard, stage again, activate (a job), job log */
        ok(f, s,
           "[{'op': 'stage', 'ops': [{'op': 'insert', 'table': 'hosts',"
           "  'values': {'name': 'gw', 'address': '198.18.0.254'}}]}]");
        ok(f, s, "[{'op': 'discard'}]");
        assert_int_equal(count(s, "SELECT count(*) FROM staged_changes"), 0);
        ok(f, s,
           "[{'op': 'stage', 'summary': 'web1 gets 4 vCPUs', 'ops': ["
           "  {'op': 'update', 'table': 'vms', 'id': 1,"
           "   'values': {'vcpus': 4}}]}]");
        job = ok(f, s, "[{'op': 'activate'}]");
        assert_true(job > 0);
        ok(f, s,
           "[{'op': 'insert', 'table': 'job_log', 'values': {"
           "  'job_id': 1, 'node': 'node1', 'source': 'vmd',"
           "  'line': 'web1: 4 vCPUs'}},"
           " {'op': 'insert', 'table': 'job_log', 'values': {"
           "  'job_id': 1, 'node': 'node2', 'source': 'vmd',"
           "  'line': 'nothing to do'}}]");

        /* plain delete */
        ok(f, s, "[{'op': 'delete', 'table': 'vm_cdroms', 'id': 1}]");

        /* cascading deletes: a node takes its fence outlets, a fence device
         * its outlets, a job its log, a VM its NICs, disks and CD-ROMs */
        ok(f, s, "[{'op': 'delete', 'table': 'nodes', 'id': 2}]");
        assert_int_equal(count(s, "SELECT count(*) FROM fence_outlets"), 1);
        ok(f, s, "[{'op': 'delete', 'table': 'fence_devices', 'id': 1}]");
        assert_int_equal(count(s, "SELECT count(*) FROM fence_outlets"), 0);
        ok(f, s, "[{'op': 'delete', 'table': 'jobs', 'id': 1}]");
        assert_int_equal(count(s, "SELECT count(*) FROM job_log"), 0);
        ok(f, s,
           "[{'op': 'insert', 'table': 'vm_cdroms', 'values': {"
           "  'vm_id': 1}},"
           " {'op': 'delete', 'table': 'vms', 'id': 1}]");
        assert_int_equal(count(s, "SELECT count(*) FROM vm_nics"), 0);
        assert_int_equal(count(s, "SELECT count(*) FROM vm_disks"), 0);
        assert_int_equal(count(s, "SELECT count(*) FROM vm_cdroms"), 0);

        /* what is left can go too, and then only the audit log remains */
        ok(f, s,
           "[{'op': 'delete', 'table': 'disks', 'id': 1},"
           " {'op': 'delete', 'table': 'networks', 'id': 1},"
           " {'op': 'delete', 'table': 'nodes', 'id': 1},"
           " {'op': 'delete', 'table': 'infrastructure', 'id': 1},"
           " {'op': 'delete', 'table': 'cluster', 'id': 1}]");
        assert_int_equal(count(s, "SELECT count(*) FROM audit"),
                         (int64_t) store_version(s));
}

/* An independent implementation of the documented row hash (docs/domain.md,
 * domaind-store.h) over a snapshot row: the store must agree with it. */
static uint64_t reference_row_hash(const char *table, struct json_object *row) {
        uint8_t digest[SHA256_DIGEST_SIZE], b[9];
        struct sha256_ctx ctx;
        uint64_t h = 0;

        sha256_init(&ctx);
        sha256_update(&ctx, strlen(table) + 1, (const uint8_t *) table);
        for (size_t i = 0; i < json_object_array_length(row); i++) {
                struct json_object *v = json_object_array_get_idx(row, i);
                uint64_t n;

                if (!v) {
                        sha256_update(&ctx, 1, (const uint8_t *) "N");
                        continue;
                }
                if (json_object_is_type(v, json_type_int)) {
                        b[0] = 'I';
                        n = (uint64_t) json_object_get_int64(v);
                } else {
                        assert_true(json_object_is_type(v, json_type_string));
                        b[0] = 'T';
                        n = (uint64_t) json_object_get_string_len(v);
                }
                for (size_t k = 0; k < 8; k++)
                        b[1 + k] = (uint8_t) (n >> (8 * k));
                sha256_update(&ctx, sizeof b, b);
                if (b[0] == 'T')
                        sha256_update(
                                &ctx, n,
                                (const uint8_t *) json_object_get_string(v));
        }
        sha256_digest(&ctx, sizeof digest, digest);
        for (size_t k = 0; k < 8; k++)
                h |= (uint64_t) digest[k] << (8 * k);
        return h;
}

static uint64_t reference_checksum(struct json_object *snap) {
        struct json_object *tables = json_object_object_get(snap, "tables");
        uint64_t sum = 0;

        json_object_object_foreach(tables, name, t) {
                struct json_object *rows = json_object_object_get(t, "rows");

                for (size_t i = 0; i < json_object_array_length(rows); i++)
                        sum += reference_row_hash(
                                name, json_object_array_get_idx(rows, i));
        }
        return sum;
}

static void checksum_is_the_documented_sum_of_row_hashes(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        _cleanup_(json_object_putp) struct json_object *snap = NULL;
        char hex[17];

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        assert_int_equal(store_snapshot(s, &snap), 0);
        assert_int_equal(reference_checksum(snap), store_checksum(s));
        snprintf(hex, sizeof hex, "%016" PRIx64, store_checksum(s));
        assert_string_equal(json_object_get_string(
                                    json_object_object_get(snap, "checksum")),
                            hex);
        assert_int_equal(
                json_object_get_int64(json_object_object_get(snap, "version")),
                store_version(s));
}

/* ==== Refusals ==== */

struct bad_op {
        const char *ops;
        int r;
        const char *code;
        const char *field; /* NULL: not checked */
        int op_index;      /* -2: not checked */
};

static const struct bad_op bad_ops[] = {
        /* shape */
        {"{'op': 'insert'}", -EINVAL, "invalid", "ops", -1},
        {"[]", -EINVAL, "invalid", "ops", -1},
        {"[1]", -EINVAL, "invalid", "", 0},
        {"[{'table': 'vms', 'values': {}}]", -EINVAL, "invalid", "op", 0},
        {"[{'op': 'upsert', 'table': 'vms', 'values': {}}]", -EINVAL, "invalid",
         "op", 0},
        {"[{'op': 'delete', 'table': 'hosts', 'id': 1, 'force': true}]",
         -EINVAL, "invalid", "", 0},
        {"[{'op': 'insert', 'table': 'vmz', 'values': {}}]", -EINVAL, "invalid",
         "table", 0},
        {"[{'op': 'insert', 'table': 'vms', 'values': {'name': 'x',"
         "  'memory_mib': 64, 'colour': 'red'}}]",
         -EINVAL, "invalid", "", 0},
        {"[{'op': 'insert', 'table': 'vms', 'values': {'id': 7, 'name': 'x',"
         "  'memory_mib': 64}}]",
         -EINVAL, "invalid", "id", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {"
         "  'version': 99}}]",
         -EINVAL, "invalid", "version", 0},
        {"[{'op': 'insert', 'table': 'vms'}]", -EINVAL, "invalid", "values", 0},
        {"[{'op': 'update', 'table': 'vms', 'values': {'vcpus': 2}}]", -EINVAL,
         "invalid", "id", 0},
        {"[{'op': 'delete', 'table': 'vms', 'id': -1}]", -EINVAL, "invalid",
         "id", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {}}]", -EINVAL,
         "invalid", "values", 0},
        /* types */
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {'vcpus': "
         "'2'}}]",
         -EINVAL, "invalid", "vcpus", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {'vcpus': "
         "2.0}}]",
         -EINVAL, "invalid", "vcpus", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {'vcpus': "
         "true}}]",
         -EINVAL, "invalid", "vcpus", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {'name': 5}}]",
         -EINVAL, "invalid", "name", 0},
        {"[{'op': 'update', 'table': 'nodes', 'id': 2, 'values': {"
         "  'esan_member': 'yes'}}]",
         -EINVAL, "invalid", "esan_member", 0},
        {"[{'op': 'update', 'table': 'nodes', 'id': 2, 'values': {"
         "  'esan_member': 1}}]",
         -EINVAL, "invalid", "esan_member", 0},
        {"[{'op': 'update', 'table': 'nodes', 'id': 2, 'values': {"
         "  'addresses': 5}}]",
         -EINVAL, "invalid", "addresses", 0},
        {"[{'op': 'update', 'table': 'nodes', 'id': 2, 'values': {"
         "  'addresses': {'a': 1}}}]",
         -EINVAL, "invalid", "addresses", 0},
        /* CHECK constraints */
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {'vcpus': 65}}]",
         -EINVAL, "invalid", "vcpus", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {"
         "  'memory_mib': 8}}]",
         -EINVAL, "invalid", "memory_mib", 0},
        {"[{'op': 'update', 'table': 'networks', 'id': 1, 'values': {"
         "  'mtu': 100}}]",
         -EINVAL, "invalid", "mtu", 0},
        {"[{'op': 'update', 'table': 'networks', 'id': 1, 'values': {"
         "  'vlan_id': 0}}]",
         -EINVAL, "invalid", "vlan_id", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {"
         "  'priority': 2000}}]",
         -EINVAL, "invalid", "priority", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {"
         "  'ha': 'maybe'}}]",
         -EINVAL, "invalid", "ha", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {"
         "  'sticky_node_id': 1}}]",
         -EINVAL, "invalid", "sticky_node_id", 0},
        {"[{'op': 'update', 'table': 'nodes', 'id': 1, 'values': {"
         "  'state': 'dead'}}]",
         -EINVAL, "invalid", "state", 0},
        {"[{'op': 'insert', 'table': 'vms', 'values': {'name': 'web 2',"
         "  'memory_mib': 64}}]",
         -EINVAL, "invalid", "name", 0},
        {"[{'op': 'insert', 'table': 'vms', 'values': {'name':"
         "  'a123456789b123456789c123456789d123456789e123456789f123456789ghij',"
         "  'memory_mib': 64}}]",
         -EINVAL, "invalid", "name", 0},
        {"[{'op': 'insert', 'table': 'cluster', 'values': {'name': 'two',"
         "  'uuid': '0123abcd-0000-4111-8222-333344445555'}}]",
         -EINVAL, "invalid", "", 0},
        /* NOT NULL, UNIQUE, FOREIGN KEY */
        {"[{'op': 'insert', 'table': 'vms', 'values': {'name': 'web2'}}]",
         -EINVAL, "invalid", "memory_mib", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {"
         "  'description': null}}]",
         -EINVAL, "invalid", "description", 0},
        {"[{'op': 'insert', 'table': 'vms', 'values': {'name': 'web1',"
         "  'memory_mib': 64}}]",
         -EINVAL, "invalid", "name", 0},
        {"[{'op': 'insert', 'table': 'vm_nics', 'values': {'vm_id': 1,"
         "  'network_id': 999}}]",
         -EINVAL, "invalid", "network_id", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {"
         "  'preferred_node_id': 3}}]",
         -EINVAL, "invalid", "preferred_node_id", 0},
        {"[{'op': 'update', 'table': 'nodes', 'id': 1, 'values': {"
         "  'node_id': 7}}]",
         -EINVAL, "invalid", "node_id", 0},
        {"[{'op': 'delete', 'table': 'networks', 'id': 1}]", -EINVAL, "invalid",
         "", 0},
        {"[{'op': 'delete', 'table': 'disks', 'id': 1}]", -EINVAL, "invalid",
         "", 0},
        {"[{'op': 'delete', 'table': 'nodes', 'id': 1}]", -EINVAL, "invalid",
         "", 0},
        /* refs */
        {"[{'op': 'insert', 'table': 'vm_nics', 'values': {'vm_id': {'ref': 1},"
         "  'network_id': 1}},"
         " {'op': 'insert', 'table': 'vms', 'values': {'name': 'web2',"
         "  'memory_mib': 64}}]",
         -EINVAL, "invalid", "vm_id", 0},
        {"[{'op': 'insert', 'table': 'vm_nics', 'values': {'vm_id': {'ref': 0},"
         "  'network_id': 1}}]",
         -EINVAL, "invalid", "vm_id", 0},
        {"[{'op': 'update', 'table': 'vms', 'id': 1, 'values': {'vcpus': 2}},"
         " {'op': 'insert', 'table': 'vm_nics', 'values': {'vm_id': {'ref': 0},"
         "  'network_id': 1}}]",
         -EINVAL, "invalid", "vm_id", 1},
        {"[{'op': 'insert', 'table': 'vms', 'values': {'name': 'web2',"
         "  'memory_mib': 64}},"
         " {'op': 'insert', 'table': 'vm_nics', 'values': {"
         "  'vm_id': {'ref': 'zero'}, 'network_id': 1}}]",
         -EINVAL, "invalid", "vm_id", 1},
        {"[{'op': 'insert', 'table': 'vms', 'values': {'name': 'web2',"
         "  'memory_mib': 64}},"
         " {'op': 'insert', 'table': 'nodes', 'values': {'node_id': 5,"
         "  'name': 'node5', 'addresses': {'ref': 0}}}]",
         -EINVAL, "invalid", "addresses", 1},
        /* rows that are not there */
        {"[{'op': 'update', 'table': 'vms', 'id': 99, 'values': {'vcpus': 2}}]",
         -ENOENT, "not-found", "id", 0},
        {"[{'op': 'delete', 'table': 'hosts', 'id': 99}]", -ENOENT, "not-found",
         "id", 0},
        /* tables a transaction may not write */
        {"[{'op': 'insert', 'table': 'audit', 'values': {'time': 1,"
         "  'actor': 'x', 'node': 'y', 'action': 'z', 'detail': ''}}]",
         -EINVAL, "invalid", "table", 0},
        {"[{'op': 'delete', 'table': 'audit', 'id': 1}]", -EINVAL, "invalid",
         "table", 0},
        {"[{'op': 'insert', 'table': 'staged_changes', 'values': {"
         "  'ops': []}}]",
         -EINVAL, "invalid", "table", 0},
        /* staging */
        {"[{'op': 'stage', 'ops': [{'op': 'stage', 'ops': []}]}]", -EINVAL,
         "invalid", "op", 0},
        {"[{'op': 'stage', 'ops': [{'op': 'activate'}]}]", -EINVAL, "invalid",
         "op", 0},
        {"[{'op': 'stage', 'ops': [{'op': 'insert', 'table': 'nope',"
         "  'values': {}}]}]",
         -EINVAL, "invalid", "table", 0},
        {"[{'op': 'stage', 'ops': []}]", -EINVAL, "invalid", "ops", 0},
        {"[{'op': 'stage', 'ops': [{'op': 'delete', 'table': 'hosts',"
         "  'id': 1}], 'colour': 'red'}]",
         -EINVAL, "invalid", "", 0},
        {"[{'op': 'activate'}]", -EINVAL, "invalid", "", 0},
        {"[{'op': 'activate', 'now': true}]", -EINVAL, "invalid", "", 0},
        /* all or nothing */
        {"[{'op': 'insert', 'table': 'hosts', 'values': {'name': 'gw',"
         "  'address': '198.18.0.254'}},"
         " {'op': 'update', 'table': 'vms', 'id': 1, 'values': {'vcpus': 0}}]",
         -EINVAL, "invalid", "vcpus", 1},
        {"[{'op': 'insert', 'table': 'hosts', 'values': {'name': 'gw',"
         "  'address': '198.18.0.254'}},"
         " {'op': 'update', 'table': 'vms', 'id': 1, 'expect_version': 1,"
         "  'values': {'vcpus': 2}}]",
         -ESTALE, "conflict", "", 1},
        {"[{'op': 'delete', 'table': 'vms', 'id': 1, 'expect_version': 1}]",
         -ESTALE, "conflict", "", 0},
};

static void bad_transactions_are_refused_and_change_nothing(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        for (size_t i = 0; i < ELEMENTSOF(bad_ops); i++) {
                const struct bad_op *b = bad_ops + i;
                struct store_error e;

                refused(f, s, b->ops, b->r, b->code, b->field);
                if (b->op_index == -2)
                        continue;
                (void) apply_at(s, f->time++, b->ops, NULL, &e);
                if (e.op_index != b->op_index)
                        fail_msg("%s: op_index %d, want %d", b->ops, e.op_index,
                                 b->op_index);
        }
}

static void error_messages_name_the_problem(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        static const struct {
                const char *ops, *contains;
        } cases[] = {
                {"[{'op': 'update', 'table': 'vms', 'id': 1,"
                 "  'values': {'vcpus': 65}}]",
                 "vms: \"vcpus\" must be between 1 and 64"},
                {"[{'op': 'insert', 'table': 'vms', 'values': {'name': 'web1',"
                 "  'memory_mib': 64}}]",
                 "the name \"web1\" is already used"},
                {"[{'op': 'update', 'table': 'vms', 'id': 1,"
                 "  'expect_version': 1, 'values': {'vcpus': 2}}]",
                 "vms \"web1\" was changed by someone else"},
                {"[{'op': 'delete', 'table': 'networks', 'id': 1}]",
                 "networks \"lan\" is still used: 1 row of vm_nics refers to "
                 "it (network_id)"},
                {"[{'op': 'insert', 'table': 'vm_nics', 'values': {'vm_id': 1,"
                 "  'network_id': 999}}]",
                 "\"network_id\" refers to networks with id 999"},
                {"[{'op': 'insert', 'table': 'cluster', 'values': {'name': 'x',"
                 "  'uuid': '0123abcd-0000-4111-8222-333344445555'}}]",
                 "cluster: there is only one cluster"},
                {"[{'op': 'update', 'table': 'vms', 'id': 42,"
                 "  'values': {'vcpus': 2}}]",
                 "vms 42 does not exist"},
                {"[{'op': 'insert', 'table': 'vms', 'values': {'name': "
                 "'web2'}}]",
                 "vms: \"memory_mib\" is required"},
                {"[{'op': 'insert', 'table': 'vms', 'values': {'nom': 'x'}}]",
                 "vms has no column \"nom\""},
                {"[{'op': 'activate'}]", "nothing to activate"},
        };

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct store_error e;

                assert_true(apply_at(s, f->time++, cases[i].ops, NULL, &e) < 0);
                if (!strstr(e.message, cases[i].contains))
                        fail_msg("\"%s\" does not say \"%s\"", e.message,
                                 cases[i].contains);
        }
}

/* ==== Fence requests ==== */

/* One open request per node (the partial unique index): a second request
 * for the same node is refused and changes nothing, a request for another
 * node is not, and once the first is finished a new one is accepted. A node
 * is never recorded as its own executor. Bad inputs: second open request,
 * executor = victim, unknown action, unknown state, unknown node. */
static void one_open_fence_request_per_node(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        int64_t id;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        id = ok(f, s,
                "[{'op': 'insert', 'table': 'fence_requests', 'values':"
                "  {'node_id': 2, 'reason': 'left the membership'}}]");
        assert_true(id > 0);
        refused(f, s,
                "[{'op': 'insert', 'table': 'fence_requests', 'values':"
                "  {'node_id': 2, 'reason': 'again'}}]",
                -EINVAL, "invalid", "node_id");
        ok(f, s,
           "[{'op': 'insert', 'table': 'fence_requests', 'values':"
           "  {'node_id': 1}}]");
        refused(f, s,
                "[{'op': 'update', 'table': 'fence_requests', 'id': 1,"
                "  'values': {'state': 'running', 'executor_node_id': 2}}]",
                -EINVAL, "invalid", "executor_node_id");
        refused(f, s,
                "[{'op': 'insert', 'table': 'fence_requests', 'values':"
                "  {'node_id': 3}}]",
                -EINVAL, "invalid", "node_id");
        refused(f, s,
                "[{'op': 'update', 'table': 'fence_requests', 'id': 1,"
                "  'values': {'action': 'explode'}}]",
                -EINVAL, "invalid", "action");
        refused(f, s,
                "[{'op': 'update', 'table': 'fence_requests', 'id': 1,"
                "  'values': {'state': 'maybe'}}]",
                -EINVAL, "invalid", "state");
        ok(f, s,
           "[{'op': 'update', 'table': 'fence_requests', 'id': 1,"
           "  'values': {'state': 'done', 'executor_node_id': 1,"
           "  'result': 'node2 fenced'}}]");
        ok(f, s,
           "[{'op': 'insert', 'table': 'fence_requests', 'values':"
           "  {'node_id': 2, 'reason': 'later'}}]");
        assert_int_equal(count(s, "SELECT count(*) FROM fence_requests"
                                  " WHERE node_id = 2"),
                         2);
        assert_int_equal(count(s, "SELECT count(*) FROM fence_requests"
                                  " WHERE requested_by = '' OR"
                                  " requested_at = 0"),
                         0);
}

/* ==== Results, refs, audit ==== */

static void inserts_return_their_ids_and_refs_resolve(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        _cleanup_(json_object_putp) struct json_object *result = NULL;
        struct json_object *results;
        struct store_error e;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        assert_int_equal(
                apply_at(s, f->time++,
                         "[{'op': 'insert', 'table': 'vms', 'values': {"
                         "  'name': 'web2', 'memory_mib': 64}},"
                         " {'op': 'update', 'table': 'vms', 'id': 1,"
                         "  'values': {'vcpus': 2}},"
                         " {'op': 'insert', 'table': 'vm_cdroms', 'values': {"
                         "  'vm_id': {'ref': 0}}}]",
                         &result, &e),
                0);
        results = json_object_object_get(result, "results");
        assert_int_equal(json_object_array_length(results), 3);
        assert_int_equal(json_object_get_int64(json_object_object_get(
                                 json_object_array_get_idx(results, 0), "id")),
                         2);
        assert_int_equal(json_object_object_length(
                                 json_object_array_get_idx(results, 1)),
                         0);
        assert_int_equal(count(s, "SELECT vm_id FROM vm_cdroms"), 2);
        /* Every row written carries the transaction's version. */
        assert_int_equal(count(s, "SELECT version FROM vm_cdroms"),
                         (int64_t) store_version(s));
        assert_int_equal(count(s, "SELECT version FROM vms WHERE id = 1"),
                         (int64_t) store_version(s));
        assert_int_equal(count(s, "SELECT version FROM vms WHERE id = 2"),
                         (int64_t) store_version(s));
}

static void every_transaction_writes_one_audit_row(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        _cleanup_(json_object_putp) struct json_object *ops = NULL;
        char long_text[2000];
        struct store_tx tx;
        struct store_error e;

        assert_int_equal(store_open(f->path, &s), 0);
        ok_at(s, 42,
              "[{'op': 'insert', 'table': 'hosts', 'values': {'name': 'gw',"
              "  'address': '198.18.0.254'}},"
              " {'op': 'delete', 'table': 'hosts', 'id': 1}]",
              0);
        ops = json("[{'op': 'insert', 'table': 'hosts', 'values': {"
                   "  'name': 'ns', 'address': '198.18.0.53'}}]");
        memset(long_text, 'x', sizeof long_text - 1);
        long_text[sizeof long_text - 1] = 0;
        tx = (struct store_tx){.ops = ops,
                               .actor = "vmd@node2",
                               .node = "node2",
                               .audit = long_text,
                               .time_usec = 43};
        assert_int_equal(store_apply(s, &tx, NULL, &e), 0);
        tx.audit = "added the name server";
        tx.node = NULL;
        json_object_put(ops);
        ops = json("[{'op': 'update', 'table': 'hosts', 'id': 1, 'values': {"
                   "  'address': '198.18.0.54'}}]");
        tx.ops = ops;
        tx.time_usec = 44;
        assert_int_equal(store_apply(s, &tx, NULL, &e), 0);
        assert_checksum_consistent(s);

        assert_int_equal(
                sqlite3_prepare_v2(store_db(s),
                                   "SELECT version, time, actor, node,"
                                   " action, detail FROM audit ORDER BY id",
                                   -1, &stmt, NULL),
                SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int64(stmt, 0), 1);
        assert_int_equal(sqlite3_column_int64(stmt, 1), 42);
        assert_string_equal(sqlite3_column_text(stmt, 2), "admin");
        assert_string_equal(sqlite3_column_text(stmt, 3), "node1");
        assert_string_equal(sqlite3_column_text(stmt, 4), "insert hosts");
        assert_string_equal(sqlite3_column_text(stmt, 5),
                            "insert hosts \"gw\", delete hosts 1");
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_string_equal(sqlite3_column_text(stmt, 2), "vmd@node2");
        assert_int_equal(sqlite3_column_bytes(stmt, 5), 1024);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int64(stmt, 0), 3);
        assert_string_equal(sqlite3_column_text(stmt, 3), "");
        assert_string_equal(sqlite3_column_text(stmt, 4), "update hosts");
        assert_string_equal(sqlite3_column_text(stmt, 5),
                            "added the name server");
        assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
}

/* ==== Staging and activation ==== */

static void activate_with_nothing_staged_is_refused(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        refused(f, s, "[{'op': 'activate'}]", -EINVAL, "invalid", "");
        ok(f, s,
           "[{'op': 'stage', 'ops': [{'op': 'delete', 'table': 'hosts',"
           "  'id': 1}]}]");
        ok(f, s, "[{'op': 'discard'}]");
        refused(f, s, "[{'op': 'activate'}]", -EINVAL, "invalid", "");
        /* Discarding nothing is fine (and audited). */
        ok(f, s, "[{'op': 'discard'}]");
}

static void
activate_applies_staged_changes_in_order_and_creates_a_job(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int64_t staged, job;
        uint64_t t;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        staged = ok(f, s,
                    "[{'op': 'stage', 'summary': 'two vCPUs', 'ops': ["
                    "  {'op': 'update', 'table': 'vms', 'id': 1,"
                    "   'values': {'vcpus': 2}}]}]");
        assert_int_equal(staged, 1);
        ok(f, s,
           "[{'op': 'stage', 'summary': 'db1 with three vCPUs', 'ops': ["
           "  {'op': 'update', 'table': 'vms', 'id': 1,"
           "   'values': {'vcpus': 3}},"
           "  {'op': 'insert', 'table': 'vms', 'values': {'name': 'db1',"
           "   'memory_mib': 128}},"
           "  {'op': 'insert', 'table': 'vm_nics', 'values': {"
           "   'vm_id': {'ref': 1}, 'network_id': 1}}]}]");

        /* Staged, not applied, visible to every member. */
        assert_int_equal(count(s, "SELECT vcpus FROM vms WHERE id = 1"), 1);
        assert_int_equal(count(s, "SELECT count(*) FROM staged_changes"), 2);
        assert_int_equal(count(s, "SELECT count(*) FROM staged_changes "
                                  "WHERE created_by = 'admin'"),
                         2);

        t = f->time;
        job = ok(f, s, "[{'op': 'activate'}]");
        assert_int_equal(count(s, "SELECT vcpus FROM vms WHERE id = 1"), 3);
        assert_int_equal(count(s, "SELECT count(*) FROM vm_nics WHERE vm_id ="
                                  " (SELECT id FROM vms WHERE name = 'db1')"),
                         1);
        assert_int_equal(count(s, "SELECT count(*) FROM staged_changes"), 0);
        assert_int_equal(count(s, "SELECT config_version FROM cluster"), 1);

        assert_int_equal(
                sqlite3_prepare_v2(store_db(s),
                                   "SELECT id, kind, state, created_by,"
                                   " created_at, config_version, version"
                                   " FROM jobs",
                                   -1, &stmt, NULL),
                SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int64(stmt, 0), job);
        assert_string_equal(sqlite3_column_text(stmt, 1), "activate");
        assert_string_equal(sqlite3_column_text(stmt, 2), "running");
        assert_string_equal(sqlite3_column_text(stmt, 3), "admin");
        assert_int_equal(sqlite3_column_int64(stmt, 4), t);
        assert_int_equal(sqlite3_column_int64(stmt, 5), 1);
        assert_int_equal(sqlite3_column_int64(stmt, 6), store_version(s));
        assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);

        /* A second activation: the next config_version, the next job. */
        ok(f, s,
           "[{'op': 'stage', 'ops': [{'op': 'delete', 'table': 'vms',"
           "  'id': 2}]}]");
        assert_int_equal(ok(f, s, "[{'op': 'activate'}]"), job + 1);
        assert_int_equal(count(s, "SELECT config_version FROM cluster"), 2);
        assert_int_equal(count(s, "SELECT count(*) FROM vm_nics"), 1);
}

static void failing_staged_change_stops_activation_and_is_named(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        struct store_error e;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        ok(f, s,
           "[{'op': 'stage', 'ops': [{'op': 'update', 'table': 'vms',"
           "  'id': 1, 'values': {'vcpus': 2}}]}]");
        /* Fine when staged, impossible when activated. */
        ok(f, s,
           "[{'op': 'stage', 'summary': 'too big', 'ops': ["
           "  {'op': 'insert', 'table': 'hosts', 'values': {'name': 'gw',"
           "   'address': '198.18.0.254'}},"
           "  {'op': 'update', 'table': 'vms', 'id': 1,"
           "   'values': {'memory_mib': 99999999}}]}]");
        refused(f, s,
                "[{'op': 'insert', 'table': 'hosts', 'values': {'name': 'x',"
                "  'address': '10.0.0.1'}},"
                " {'op': 'activate'}]",
                -EINVAL, "invalid", "memory_mib");
        (void) apply_at(s, f->time++,
                        "[{'op': 'insert', 'table': 'hosts', 'values': {"
                        "  'name': 'x', 'address': '10.0.0.1'}},"
                        " {'op': 'activate'}]",
                        NULL, &e);
        assert_int_equal(e.op_index, 1);
        assert_non_null(strstr(e.message,
                               "staged change 2 (\"too big\"), op 1: "
                               "vms: \"memory_mib\" must be"));
        assert_int_equal(count(s, "SELECT count(*) FROM staged_changes"), 2);
        assert_int_equal(count(s, "SELECT vcpus FROM vms WHERE id = 1"), 1);

        /* A staged change made stale by a later edit is a conflict. */
        ok(f, s, "[{'op': 'discard'}]");
        ok(f, s,
           "[{'op': 'stage', 'ops': [{'op': 'update', 'table': 'vms',"
           "  'id': 1, 'expect_version': 2, 'values': {'vcpus': 2}}]}]");
        ok(f, s,
           "[{'op': 'update', 'table': 'vms', 'id': 1,"
           "  'values': {'priority': 900}}]");
        refused(f, s, "[{'op': 'activate'}]", -ESTALE, "conflict", "");
}

static void activate_needs_a_cluster(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;

        assert_int_equal(store_open(f->path, &s), 0);
        ok(f, s,
           "[{'op': 'stage', 'ops': [{'op': 'insert', 'table': 'hosts',"
           "  'values': {'name': 'gw', 'address': '198.18.0.254'}}]}]");
        refused(f, s, "[{'op': 'activate'}]", -EINVAL, "invalid", "");
}

/* ==== Batches ==== */

static void
batch_keeps_the_good_transactions_around_a_failing_one(void **state) {
        struct fixture *f = *state;
        struct store *s = NULL;
        struct store_error e;
        uint64_t checksum;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        assert_int_equal(store_batch_begin(s), 0);
        assert_int_equal(store_batch_begin(s), -EBUSY);
        ok(f, s,
           "[{'op': 'insert', 'table': 'hosts', 'values': {"
           "  'name': 'a', 'address': '10.0.0.1'}}]");
        assert_int_equal(apply_at(s, f->time++,
                                  "[{'op': 'insert', 'table': 'hosts',"
                                  "  'values': {'name': 'b',"
                                  "  'address': '10.0.0.2'}},"
                                  " {'op': 'insert', 'table': 'hosts',"
                                  "  'values': {'name': 'a',"
                                  "  'address': '10.0.0.3'}}]",
                                  NULL, &e),
                         -EINVAL);
        assert_checksum_consistent(s);
        ok(f, s,
           "[{'op': 'insert', 'table': 'hosts', 'values': {"
           "  'name': 'c', 'address': '10.0.0.3'}}]");
        assert_int_equal(store_batch_end(s), 0);
        assert_int_equal(store_batch_end(s), -EINVAL);
        assert_int_equal(store_version(s), 4);
        checksum = store_checksum(s);
        assert_checksum_consistent(s);

        /* Committed: still there after reopening. */
        s = store_free(s);
        assert_int_equal(store_open(f->path, &s), 0);
        assert_int_equal(store_version(s), 4);
        assert_int_equal(store_checksum(s), checksum);
        assert_int_equal(count(s, "SELECT count(*) FROM hosts"), 2);
        assert_int_equal(
                count(s, "SELECT count(*) FROM hosts WHERE name = 'b'"), 0);
        s = store_free(s);
}

static void failed_batch_commit_restores_version_and_checksum(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        _cleanup_free_ char *before = NULL, *after = NULL;
        uint64_t version, checksum;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        version = store_version(s);
        checksum = store_checksum(s);
        before = snapshot_text(s);

        assert_int_equal(store_batch_begin(s), 0);
        ok(f, s,
           "[{'op': 'insert', 'table': 'hosts', 'values': {"
           "  'name': 'a', 'address': '10.0.0.1'}}]");
        /* Make COMMIT fail: a dangling reference whose check was deferred
         * to the end of the transaction (an artificial fault: the store
         * itself never defers inside a batch). */
        assert_int_equal(haven_db_exec(store_db(s),
                                       "PRAGMA defer_foreign_keys = ON;"
                                       "INSERT INTO vm_nics (version, vm_id,"
                                       " network_id) VALUES (1, 99, 99)"),
                         0);
        assert_true(store_batch_end(s) < 0);
        assert_int_equal(store_version(s), version);
        assert_int_equal(store_checksum(s), checksum);
        assert_checksum_consistent(s);
        after = snapshot_text(s);
        assert_string_equal(after, before);

        /* And the store goes on. */
        ok(f, s,
           "[{'op': 'insert', 'table': 'hosts', 'values': {"
           "  'name': 'a', 'address': '10.0.0.1'}}]");
        assert_int_equal(store_version(s), version + 1);
}

/* ==== Snapshots ==== */

static void
snapshot_restored_into_another_store_gives_the_same_content(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *a = NULL, *b = NULL;
        _cleanup_(json_object_putp) struct json_object *snap = NULL;
        _cleanup_free_ char *text_a = NULL, *text_b = NULL;

        assert_int_equal(store_open(f->path, &a), 0);
        assert_int_equal(store_open(f->path2, &b), 0);
        populate(f, a);
        ok(f, a,
           "[{'op': 'stage', 'ops': [{'op': 'delete', 'table': 'vms',"
           "  'id': 1}]}]");
        ok(f, a, "[{'op': 'activate'}]");
        /* b holds something else, which the snapshot replaces. */
        ok(f, b,
           "[{'op': 'insert', 'table': 'hosts', 'values': {"
           "  'name': 'old', 'address': '10.9.9.9'}}]");

        assert_int_equal(store_snapshot(a, &snap), 0);
        assert_int_equal(store_restore(b, snap), 0);
        assert_int_equal(store_version(b), store_version(a));
        assert_int_equal(store_checksum(b), store_checksum(a));
        assert_checksum_consistent(b);
        text_a = snapshot_text(a);
        text_b = snapshot_text(b);
        assert_string_equal(text_a, text_b);

        /* Both go on alike. */
        ok_at(a, 77,
              "[{'op': 'insert', 'table': 'hosts', 'values': {"
              "  'name': 'new', 'address': '10.0.0.7'}}]",
              0);
        ok_at(b, 77,
              "[{'op': 'insert', 'table': 'hosts', 'values': {"
              "  'name': 'new', 'address': '10.0.0.7'}}]",
              0);
        assert_int_equal(store_checksum(b), store_checksum(a));

        /* Restored content survives reopening. */
        b = store_free(b);
        assert_int_equal(store_open(f->path2, &b), 0);
        assert_int_equal(store_version(b), store_version(a));
        assert_int_equal(store_checksum(b), store_checksum(a));

        /* A restore in a batch is refused. */
        assert_int_equal(store_batch_begin(b), 0);
        assert_int_equal(store_restore(b, snap), -EBUSY);
        assert_int_equal(store_batch_end(b), 0);
}

/* Ways to spoil a snapshot; each must leave the target as it was. */
enum tamper {
        TAMPER_CELL,
        TAMPER_CHECKSUM,
        TAMPER_CHECKSUM_NOT_HEX,
        TAMPER_MISSING_TABLE,
        TAMPER_EXTRA_TABLE,
        TAMPER_COLUMN_NAME,
        TAMPER_SHORT_ROW,
        TAMPER_CELL_TYPE,
        TAMPER_CELL_DOUBLE,
        TAMPER_CHECK_VIOLATION,
        TAMPER_DANGLING_REFERENCE, /* with a checksum that matches */
        TAMPER_NO_VERSION,
        TAMPER_NOT_OBJECT,
        _TAMPER_MAX,
};

static struct json_object *row_of(struct json_object *snap, const char *table,
                                  size_t i) {
        return json_object_array_get_idx(
                json_object_object_get(
                        json_object_object_get(
                                json_object_object_get(snap, "tables"), table),
                        "rows"),
                i);
}

static void set_checksum(struct json_object *snap, uint64_t sum) {
        char hex[17];

        snprintf(hex, sizeof hex, "%016" PRIx64, sum);
        json_object_object_add(snap, "checksum", json_object_new_string(hex));
}

static void tamper(struct json_object *snap, enum tamper how) {
        struct json_object *tables = json_object_object_get(snap, "tables");
        struct json_object *vm = row_of(snap, "vms", 0), *rows;

        switch (how) {
        case TAMPER_CELL: /* vcpus 1 → 7 */
                json_object_array_put_idx(vm, 3, json_object_new_int64(7));
                break;
        case TAMPER_CHECKSUM:
                set_checksum(snap, reference_checksum(snap) + 1);
                break;
        case TAMPER_CHECKSUM_NOT_HEX:
                json_object_object_add(
                        snap, "checksum",
                        json_object_new_string("0123456789ABCDEF"));
                break;
        case TAMPER_MISSING_TABLE:
                json_object_object_del(tables, "audit");
                break;
        case TAMPER_EXTRA_TABLE:
                json_object_object_add(tables, "domain_state",
                                       json_object_new_object());
                break;
        case TAMPER_COLUMN_NAME:
                json_object_array_put_idx(
                        json_object_object_get(
                                json_object_object_get(tables, "vms"),
                                "columns"),
                        3, json_object_new_string("cpus"));
                break;
        case TAMPER_SHORT_ROW:
                json_object_array_del_idx(vm, json_object_array_length(vm) - 1,
                                          1);
                break;
        case TAMPER_CELL_TYPE:
                json_object_array_put_idx(vm, 3, json_object_new_string("1"));
                set_checksum(snap, reference_checksum(snap));
                break;
        case TAMPER_CELL_DOUBLE:
                json_object_array_put_idx(vm, 3, json_object_new_double(1.0));
                break;
        case TAMPER_CHECK_VIOLATION:
                json_object_array_put_idx(vm, 3, json_object_new_int64(0));
                set_checksum(snap, reference_checksum(snap));
                break;
        case TAMPER_DANGLING_REFERENCE:
                /* Drop the network the NIC uses, checksum fixed up. */
                rows = json_object_object_get(
                        json_object_object_get(tables, "networks"), "rows");
                json_object_array_del_idx(rows, 0, 1);
                set_checksum(snap, reference_checksum(snap));
                break;
        case TAMPER_NO_VERSION:
                json_object_object_del(snap, "version");
                break;
        case TAMPER_NOT_OBJECT:
        default:
                break;
        }
}

static void tampered_snapshot_is_refused_and_changes_nothing(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *a = NULL, *b = NULL;
        _cleanup_free_ char *good = NULL, *before = NULL;
        uint64_t version, checksum;

        assert_int_equal(store_open(f->path, &a), 0);
        assert_int_equal(store_open(f->path2, &b), 0);
        populate(f, a);
        good = snapshot_text(a);
        ok(f, b,
           "[{'op': 'insert', 'table': 'hosts', 'values': {"
           "  'name': 'old', 'address': '10.9.9.9'}}]");
        version = store_version(b);
        checksum = store_checksum(b);
        before = snapshot_text(b);

        for (int how = 0; how < _TAMPER_MAX; how++) {
                _cleanup_(json_object_putp) struct json_object *snap = NULL;
                _cleanup_free_ char *after = NULL;

                if (how == TAMPER_NOT_OBJECT)
                        snap = json_object_new_array();
                else {
                        assert_int_equal(haven_json_parse(good, strlen(good),
                                                          1 << 24, &snap),
                                         0);
                        tamper(snap, (enum tamper) how);
                }
                if (store_restore(b, snap) != -EBADMSG)
                        fail_msg("tamper %d was not refused with -EBADMSG",
                                 how);
                assert_int_equal(store_version(b), version);
                assert_int_equal(store_checksum(b), checksum);
                assert_checksum_consistent(b);
                after = snapshot_text(b);
                assert_string_equal(after, before);
        }
}

/* ==== Queries ==== */

static void
query_filters_by_equality_and_refuses_unknown_columns(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        _cleanup_(json_object_putp) struct json_object *rows = NULL,
                                                       *where = NULL;
        struct json_object *row, *v;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        ok(f, s,
           "[{'op': 'insert', 'table': 'hosts', 'values': {"
           "  'name': 'zeta', 'address': '10.0.0.26'}},"
           " {'op': 'insert', 'table': 'hosts', 'values': {"
           "  'name': 'alpha', 'address': '10.0.0.1'}}]");

        /* Without where: every row, in id order. */
        assert_int_equal(store_query(s, "hosts", NULL, &rows), 0);
        assert_int_equal(json_object_array_length(rows), 2);
        assert_string_equal(
                json_object_get_string(json_object_object_get(
                        json_object_array_get_idx(rows, 0), "name")),
                "zeta");
        json_object_put(TAKE_PTR(rows));

        /* Types: integers, strings, booleans, JSON, null. */
        where = json("{'name': 'node2'}");
        assert_int_equal(store_query(s, "nodes", where, &rows), 0);
        assert_int_equal(json_object_array_length(rows), 1);
        row = json_object_array_get_idx(rows, 0);
        assert_true(json_object_is_type(json_object_object_get(row, "node_id"),
                                        json_type_int));
        assert_int_equal(
                json_object_get_int64(json_object_object_get(row, "node_id")),
                2);
        assert_true(json_object_is_type(
                json_object_object_get(row, "esan_member"), json_type_boolean));
        assert_true(json_object_get_boolean(
                json_object_object_get(row, "esan_member")));
        v = json_object_object_get(row, "addresses");
        assert_true(json_object_is_type(v, json_type_array));
        assert_string_equal(
                json_object_get_string(json_object_array_get_idx(v, 0)),
                "198.18.0.2");
        assert_string_equal(
                json_object_get_string(json_object_object_get(row, "state")),
                "standby");
        json_object_put(TAKE_PTR(rows));
        json_object_put(TAKE_PTR(where));

        where = json("{'vlan_id': null, 'mtu': 9000}");
        assert_int_equal(store_query(s, "networks", where, &rows), 0);
        assert_int_equal(json_object_array_length(rows), 1);
        assert_true(json_object_object_get_ex(
                json_object_array_get_idx(rows, 0), "vlan_id", &v));
        assert_null(v);
        json_object_put(TAKE_PTR(rows));
        json_object_put(TAKE_PTR(where));

        where = json("{'esan_member': false, 'state': 'active'}");
        assert_int_equal(store_query(s, "nodes", where, &rows), 0);
        assert_int_equal(json_object_array_length(rows), 1);
        json_object_put(TAKE_PTR(rows));
        json_object_put(TAKE_PTR(where));

        where = json("{'name': 'nobody'}");
        assert_int_equal(store_query(s, "nodes", where, &rows), 0);
        assert_int_equal(json_object_array_length(rows), 0);
        json_object_put(TAKE_PTR(rows));
        json_object_put(TAKE_PTR(where));

        /* Refused: unknown table, unknown column, JSON column, wrong type,
         * where not an object, the store's own table. */
        assert_int_equal(store_query(s, "vmz", NULL, &rows), -EINVAL);
        assert_int_equal(store_query(s, "domain_state", NULL, &rows), -EINVAL);
        static const char *const bad_wheres[] = {
                "{'colour': 'red'}",
                "{'addresses': []}",
                "{'node_id': '1'}",
                "{'esan_member': 1}",
                "{'name': 2}",
                "[1]",
                "{'node_id': {'ref': 0}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_wheres); i++) {
                where = json(bad_wheres[i]);
                if (store_query(s, "nodes", where, &rows) != -EINVAL)
                        fail_msg("where %s was not refused", bad_wheres[i]);
                json_object_put(TAKE_PTR(where));
        }
        assert_null(rows);
}

/* Commits leave their pages in the write-ahead log (no automatic
 * checkpoint inside a commit); store_checkpoint copies them into the
 * database, never inside a batch, and the content stays the same. */
static void checkpoint_runs_outside_batches_only_and_keeps_the_content(void **state) {
        struct fixture *f = *state;
        _cleanup_free_ char *before = NULL, *after = NULL;
        struct store *s = NULL;

        assert_int_equal(store_open(f->path, &s), 0);
        populate(f, s);
        before = snapshot_text(s);
        /* Below the threshold nothing happens; 0 forces it. */
        assert_int_equal(store_checkpoint(s, 1000000), 0);
        int frames = store_checkpoint(s, 0);
        assert_true(frames > 0);
        /* Nothing new: the same frames, all in the database already. */
        assert_int_equal(store_checkpoint(s, 0), frames);
        assert_int_equal(store_checkpoint(s, 1), 0);
        assert_int_equal(store_batch_begin(s), 0);
        assert_int_equal(store_checkpoint(s, 0), -EBUSY);
        assert_int_equal(store_batch_end(s), 0);
        after = snapshot_text(s);
        assert_string_equal(after, before);
        assert_checksum_consistent(s);
        s = store_free(s);
}

/* What a delete takes with it, for the commit event's table list. */
static void cascade_tables_follow_on_delete_cascade_transitively(void **state) {
        struct fixture *f = *state;
        _cleanup_(store_freep) struct store *s = NULL;
        const char *names[32];
        bool placements = false, nics = false, commands = false;
        int n;

        assert_int_equal(store_open(f->path, &s), 0);
        n = store_cascade_tables(s, "vms", names, ELEMENTSOF(names));
        assert_true(n >= 5);
        for (int i = 0; i < n; i++) {
                placements = placements || streq(names[i], "vm_placements");
                nics = nics || streq(names[i], "vm_nics");
                commands = commands || streq(names[i], "vm_commands");
                /* A disk is not deleted with the VM that uses it. */
                assert_string_not_equal(names[i], "disks");
                assert_string_not_equal(names[i], "vms");
        }
        assert_true(placements && nics && commands);
        /* jobs → job_log; a node takes its fence outlets. */
        n = store_cascade_tables(s, "jobs", names, ELEMENTSOF(names));
        assert_int_equal(n, 1);
        assert_string_equal(names[0], "job_log");
        n = store_cascade_tables(s, "hosts", names, ELEMENTSOF(names));
        assert_int_equal(n, 0);
        assert_int_equal(store_cascade_tables(s, "nope", names, ELEMENTSOF(names)), -ENOENT);
        assert_int_equal(store_cascade_tables(s, "vms", names, 1), -E2BIG);
}

#define t(test)                                                                \
        cmocka_unit_test_setup_teardown(test, fixture_setup, fixture_teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                t(new_store_is_empty_at_version_zero),
                t(cascade_tables_follow_on_delete_cascade_transitively),
                t(reopened_store_keeps_version_and_checksum),
                t(two_members_fed_the_same_transactions_hold_the_same_content),
                t(incremental_checksum_matches_full_scan_after_every_kind_of_op),
                t(checksum_is_the_documented_sum_of_row_hashes),
                t(bad_transactions_are_refused_and_change_nothing),
                t(error_messages_name_the_problem),
                t(one_open_fence_request_per_node),
                t(inserts_return_their_ids_and_refs_resolve),
                t(every_transaction_writes_one_audit_row),
                t(activate_with_nothing_staged_is_refused),
                t(activate_applies_staged_changes_in_order_and_creates_a_job),
                t(failing_staged_change_stops_activation_and_is_named),
                t(activate_needs_a_cluster),
                t(batch_keeps_the_good_transactions_around_a_failing_one),
                t(failed_batch_commit_restores_version_and_checksum),
                t(snapshot_restored_into_another_store_gives_the_same_content),
                t(tampered_snapshot_is_refused_and_changes_nothing),
                t(query_filters_by_equality_and_refuses_unknown_columns),
                t(checkpoint_runs_outside_batches_only_and_keeps_the_content),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
