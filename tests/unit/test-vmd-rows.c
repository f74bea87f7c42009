/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven-vmd's rows module (daemons/vmd/vmd-rows.c): the
 * domain's rows and status entries → the decision core's input, the core's
 * decision → one transaction, and a VM's rows → its libvirt spec. Fixtures
 * are JSON as domaind's query and status-read return them.
 *
 * Bad inputs tried: a node row without a name, with state "sleeping" and
 * node_id 0; a vms row with ha "maybe" and priority 2000; reports with an
 * unknown state, a negative generation, for a VM that does not exist, from
 * a node that is not online, twice from one node; a placement with state
 * "flying"; a command with kind "explode"; an attached disk that does not
 * exist, a shared disk without a path, a NIC on a missing network, no
 * cluster row (no UUID), an unknown VM id.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "haven/json.h"

#include "../../daemons/vmd/vmd.h"

static struct json_object *parse(const char *text) {
        struct json_object *o = NULL;

        assert_int_equal(haven_json_parse(text, strlen(text), 1 << 20, &o), 0);
        return o;
}

static const char TABLES[] =
        "{\"cluster\": [{\"id\": 1, \"version\": 1, \"name\": \"c\","
        "   \"uuid\": \"6f1c1f52-3d5e-4a43-9a57-0d8e6a1b2c3d\"}],"
        " \"nodes\": ["
        "  {\"id\": 1, \"version\": 1, \"node_id\": 1, \"name\": \"node1\", \"state\": \"active\","
        "   \"memory_mib\": 0, \"host_reserve_mib\": 1024, \"addresses\": [\"198.18.0.1\"]},"
        "  {\"id\": 2, \"version\": 1, \"node_id\": 2, \"name\": \"node2\", \"state\": \"maintenance\","
        "   \"memory_mib\": 8192, \"host_reserve_mib\": 512, \"addresses\": [\"198.18.0.2\"]},"
        "  {\"id\": 3, \"version\": 1, \"node_id\": 3, \"name\": \"node3\", \"state\": \"active\","
        "   \"memory_mib\": 4096, \"host_reserve_mib\": 0, \"addresses\": [\"198.18.0.3\"]},"
        "  {\"id\": 4, \"version\": 1, \"node_id\": 0, \"name\": \"bad0\", \"state\": \"active\"},"
        "  {\"id\": 5, \"version\": 1, \"node_id\": 5, \"state\": \"active\"},"
        "  {\"id\": 6, \"version\": 1, \"node_id\": 6, \"name\": \"bad6\", \"state\": \"sleeping\"}],"
        " \"vms\": ["
        "  {\"id\": 1, \"version\": 2, \"name\": \"web1\", \"vcpus\": 2, \"memory_mib\": 512, \"ha\": \"on\","
        "   \"preferred_node_id\": 3, \"priority\": 700, \"restart_max\": 2, \"restart_window_s\": 60,"
        "   \"relocate_max\": 1, \"sticky_node_id\": null, \"desired_state\": \"running\"},"
        "  {\"id\": 2, \"version\": 2, \"name\": \"db1\", \"memory_mib\": 1024, \"ha\": \"sticky\","
        "   \"sticky_node_id\": 2, \"priority\": 500, \"desired_state\": \"stopped\"},"
        "  {\"id\": 3, \"version\": 2, \"name\": \"bad-ha\", \"memory_mib\": 64, \"ha\": \"maybe\"},"
        "  {\"id\": 4, \"version\": 2, \"name\": \"bad-prio\", \"memory_mib\": 64, \"priority\": 2000}],"
        " \"disks\": ["
        "  {\"id\": 1, \"version\": 1, \"name\": \"d1\", \"kind\": \"shared\", \"path\": \"/srv/haven/shared/web1.qcow2\", \"nodes\": []},"
        "  {\"id\": 2, \"version\": 1, \"name\": \"e1\", \"kind\": \"esan\", \"path\": \"/dev/drbd1\", \"nodes\": [2, 3]},"
        "  {\"id\": 3, \"version\": 1, \"name\": \"e2\", \"kind\": \"esan\", \"path\": \"/dev/drbd2\", \"nodes\": [3, 1]},"
        "  {\"id\": 4, \"version\": 1, \"name\": \"nopath\", \"kind\": \"shared\", \"path\": null, \"nodes\": []}],"
        " \"vm_disks\": ["
        "  {\"id\": 1, \"version\": 1, \"vm_id\": 1, \"disk_id\": 1, \"bus\": \"virtio\", \"boot_order\": null},"
        "  {\"id\": 2, \"version\": 1, \"vm_id\": 2, \"disk_id\": 2, \"bus\": \"sata\", \"boot_order\": 1},"
        "  {\"id\": 3, \"version\": 1, \"vm_id\": 2, \"disk_id\": 3, \"bus\": \"virtio\", \"boot_order\": null}],"
        " \"networks\": [{\"id\": 1, \"version\": 1, \"name\": \"lan\"}],"
        " \"vm_nics\": [{\"id\": 1, \"version\": 1, \"vm_id\": 1, \"network_id\": 1,"
        "   \"mac\": \"52:54:00:00:00:01\", \"model\": \"virtio\"}],"
        " \"vm_cdroms\": [{\"id\": 1, \"version\": 1, \"vm_id\": 1, \"iso_path\": \"/srv/haven/shared/inst.iso\"}],"
        " \"vm_placements\": ["
        "  {\"id\": 7, \"version\": 41, \"vm_id\": 1, \"node_id\": 3, \"state\": \"running\","
        "   \"target_node_id\": null, \"reason\": \"\", \"restarts\": 1, \"restart_window_start\": 5,"
        "   \"relocations\": 0, \"generation\": 4, \"updated_at\": 9},"
        "  {\"id\": 8, \"version\": 42, \"vm_id\": 2, \"node_id\": 2, \"state\": \"flying\","
        "   \"generation\": 1}],"
        " \"vm_commands\": ["
        "  {\"id\": 1, \"version\": 10, \"vm_id\": 1, \"command\": \"reboot\", \"state\": \"done\"},"
        "  {\"id\": 2, \"version\": 11, \"vm_id\": 1, \"command\": \"migrate\", \"target_node_id\": 1,"
        "   \"state\": \"pending\"},"
        "  {\"id\": 3, \"version\": 12, \"vm_id\": 2, \"command\": \"explode\", \"state\": \"pending\"},"
        "  {\"id\": 4, \"version\": 13, \"vm_id\": 2, \"command\": \"reset\", \"state\": \"running\"}],"
        " \"fence_requests\": ["
        "  {\"id\": 1, \"version\": 3, \"node_id\": 2, \"action\": \"off\", \"state\": \"failed\","
        "   \"requested_at\": 100, \"finished_at\": 110, \"result\": \"no answer\"},"
        "  {\"id\": 2, \"version\": 4, \"node_id\": 2, \"action\": \"off\", \"state\": \"done\","
        "   \"requested_at\": 200, \"finished_at\": 210, \"result\": \"node2 fenced\"},"
        "  {\"id\": 3, \"version\": 5, \"node_id\": 3, \"action\": \"reboot\", \"state\": \"done\","
        "   \"requested_at\": 300, \"finished_at\": 310, \"result\": \"\"}]}";

static const char ENTRIES[] =
        "["
        " {\"node\": 1, \"key\": \"vmd\", \"value\": {\"ready\": true, \"memory_mib\": 16000}},"
        " {\"node\": 3, \"key\": \"vmd\", \"value\": {\"ready\": false, \"memory_mib\": 8000}},"
        " {\"node\": 1, \"key\": \"fencing\", \"value\": {\"nodes\": {\"node1\": {\"ok\": true},"
        "   \"node3\": {\"ok\": true}, \"node2\": {\"ok\": false}}}},"
        " {\"node\": 3, \"key\": \"vm/web1\", \"value\": {\"vm_id\": 1, \"state\": \"running\","
        "   \"generation\": 4, \"unexpected\": false, \"error\": null, \"command_done\": 0}},"
        " {\"node\": 3, \"key\": \"vm/web1\", \"value\": {\"vm_id\": 1, \"state\": \"stopped\","
        "   \"generation\": 4}},"
        " {\"node\": 1, \"key\": \"vm/web1\", \"value\": {\"vm_id\": 1, \"state\": \"migrating-out\","
        "   \"generation\": 3, \"target_node\": 3, \"unexpected\": true, \"error\": \"boom\","
        "   \"command_done\": 9, \"command_failed\": true, \"command_result\": \"no\"}},"
        " {\"node\": 2, \"key\": \"vm/db1\", \"value\": {\"vm_id\": 2, \"state\": \"running\", \"generation\": 1}},"
        " {\"node\": 1, \"key\": \"vm/ghost\", \"value\": {\"vm_id\": 99, \"state\": \"running\", \"generation\": 1}},"
        " {\"node\": 1, \"key\": \"vm/db1\", \"value\": {\"vm_id\": 2, \"state\": \"dancing\", \"generation\": 1}},"
        " {\"node\": 3, \"key\": \"vm/db1\", \"value\": {\"vm_id\": 2, \"state\": \"running\", \"generation\": -1}}"
        "]";

static const uint32_t MEMBERS[] = {1, 3};
static const uint32_t LEFT_IDS[] = {2};
static const uint64_t LEFT_AT[] = {150};

static void build(struct json_object **tables, struct json_object **entries,
                  struct vmd_input *in) {
        struct vmd_membership m = {
                .members = MEMBERS, .n_members = 2, .quorate = true,
                .left_ids = LEFT_IDS, .left_at = LEFT_AT, .n_left = 1, .since = 50,
        };

        *tables = parse(TABLES);
        *entries = parse(ENTRIES);
        assert_int_equal(vmd_input_build(*tables, *entries, &m, 1000, 1, in), 0);
}

static const struct ha_node *node(const struct vmd_input *in, uint32_t id) {
        for (size_t i = 0; i < in->in.n_nodes; i++)
                if (in->in.nodes[i].id == id)
                        return &in->in.nodes[i];
        return NULL;
}

static void nodes_take_membership_memory_fencing_and_fences_from_rows(void **state) {
        struct json_object *tables, *entries;
        struct vmd_input in;
        const struct ha_node *n1, *n2, *n3;

        (void) state;
        build(&tables, &entries, &in);
        assert_int_equal(in.in.n_nodes, 3); /* the three bad rows are skipped */
        assert_true(in.in.quorate);
        assert_int_equal(in.in.now, 1000);
        n1 = node(&in, 1);
        n2 = node(&in, 2);
        n3 = node(&in, 3);
        assert_true(n1->online && n1->agent_ready);
        /* Memory 0 in the row: the agent's report. */
        assert_int_equal(n1->memory_mib, 16000);
        assert_int_equal(n1->host_reserve_mib, 1024);
        /* A node fenceable only in its own view is not fenceable. */
        assert_false(n1->fenceable);
        assert_true(n3->fenceable);
        assert_false(n2->fenceable);
        /* node3's agent is not ready; the row's memory stays. */
        assert_true(n3->online);
        assert_false(n3->agent_ready);
        assert_int_equal(n3->memory_mib, 4096);
        /* A reboot that finished says nothing about the node being off. */
        assert_int_equal(n3->fence.state, HA_FENCE_NONE);
        /* node2 left at 150; its latest fence is the done one. */
        assert_false(n2->online);
        assert_int_equal(n2->left_at, 150);
        assert_int_equal(n2->state, HA_NODE_MAINTENANCE);
        assert_int_equal(n2->fence.state, HA_FENCE_DONE);
        assert_int_equal(n2->fence.finished_at, 210);
        assert_string_equal(n2->fence.reason, "node2 fenced");
        assert_int_equal(n1->left_at, 0);
        vmd_input_done(&in);
        json_object_put(tables);
        json_object_put(entries);
}

static void vms_reports_placements_and_commands_skip_what_breaks_the_rules(void **state) {
        struct json_object *tables, *entries;
        struct vmd_input in;
        const struct ha_vm *web1 = NULL, *db1 = NULL;
        size_t k = 0;

        (void) state;
        build(&tables, &entries, &in);
        assert_int_equal(in.in.n_vms, 2);
        for (size_t i = 0; i < in.in.n_vms; i++) {
                if (in.in.vms[i].id == 1)
                        web1 = &in.in.vms[i];
                if (in.in.vms[i].id == 2)
                        db1 = &in.in.vms[i];
        }
        assert_non_null(web1);
        assert_non_null(db1);
        assert_int_equal(web1->ha, HA_MODE_ON);
        assert_int_equal(web1->preferred_node, 3);
        assert_int_equal(web1->priority, 700);
        assert_int_equal(web1->restart_max, 2);
        assert_int_equal(web1->restart_window_usec, 60 * HA_USEC_PER_SEC);
        assert_int_equal(web1->desired, HA_DESIRED_RUNNING);
        assert_int_equal(web1->n_storage_nodes, 0); /* shared: any node */
        assert_int_equal(db1->ha, HA_MODE_STICKY);
        assert_int_equal(db1->sticky_node, 2);
        /* Two eSAN disks on {2, 3} and {3, 1}: only node3 holds both. */
        assert_int_equal(db1->n_storage_nodes, 1);
        assert_int_equal(db1->storage_nodes[0], 3);

        /* Reports: node3's first web1 entry (the duplicate is dropped);
         * node1's migrating-out one; db1 of node2 (not online) and the
         * ghost, "dancing" and negative generation ones are dropped. */
        assert_int_equal(in.in.n_reports, 2);
        for (size_t i = 0; i < in.in.n_reports; i++) {
                const struct ha_report *r = &in.in.reports[i];

                assert_int_equal(r->vm_id, 1);
                if (r->node_id == 3) {
                        assert_int_equal(r->state, HA_RUNTIME_RUNNING);
                        assert_int_equal(r->generation, 4);
                        assert_null(r->error);
                        k++;
                } else {
                        assert_int_equal(r->node_id, 1);
                        assert_int_equal(r->state, HA_RUNTIME_MIGRATING_OUT);
                        assert_int_equal(r->target_node, 3);
                        assert_true(r->unexpected);
                        assert_string_equal(r->error, "boom");
                        assert_int_equal(r->command_done, 9);
                        assert_true(r->command_failed);
                        assert_string_equal(r->command_result, "no");
                        k++;
                }
        }
        assert_int_equal(k, 2);

        /* The "flying" placement is dropped. */
        assert_int_equal(in.in.n_placements, 1);
        assert_int_equal(in.in.placements[0].vm_id, 1);
        assert_int_equal(in.in.placements[0].state, HA_PLACEMENT_RUNNING);
        assert_int_equal(in.in.placements[0].restarts, 1);
        assert_int_equal(in.in.placements[0].generation, 4);
        /* Commands: the done one and "explode" are not input. */
        assert_int_equal(in.in.n_commands, 2);
        assert_int_equal(in.in.commands[0].id, 2);
        assert_int_equal(in.in.commands[0].kind, HA_COMMAND_MIGRATE);
        assert_int_equal(in.in.commands[0].target_node, 1);
        assert_int_equal(in.in.commands[1].kind, HA_COMMAND_RESET);
        assert_int_equal(in.in.commands[1].state, HA_COMMAND_RUNNING);

        /* The core takes the input as it is. */
        {
                struct ha_output out = {};

                assert_int_equal(ha_decide(&in.in, &out), 0);
                ha_output_done(&out);
        }
        vmd_input_done(&in);
        json_object_put(tables);
        json_object_put(entries);
}

static struct json_object *op_at(struct json_object *ops, size_t i) {
        assert_true(i < json_object_array_length(ops));
        return json_object_array_get_idx(ops, i);
}

static void the_decision_becomes_one_transaction_with_expected_versions(void **state) {
        struct json_object *tables = parse(TABLES), *ops = NULL, *placements, *commands, *o, *v;
        char r1[] = "started", r2[] = "no room", reason[] = "fence it";
        struct ha_placement p[2] = {
                {.vm_id = 1, .node = 1, .state = HA_PLACEMENT_MIGRATING, .target = 2,
                 .reason = "to node2", .restarts = 1, .generation = 5},
                {.vm_id = 9, .node = 0, .state = HA_PLACEMENT_WAITING, .reason = "", .generation = 1},
        };
        struct ha_fence_request f = {.node = 2, .reason = reason};
        struct ha_command_update c[2] = {
                {.id = 2, .vm_id = 1, .state = HA_COMMAND_RUNNING, .result = r1},
                {.id = 4, .vm_id = 2, .state = HA_COMMAND_FAILED, .result = r2},
        };
        struct ha_vm_change ch = {.vm_id = 2, .set_desired = true,
                                  .desired = HA_DESIRED_STOPPED, .clear_sticky = true};
        struct ha_output out = {
                .placements = p, .n_placements = 2,
                .fence_requests = &f, .n_fence_requests = 1,
                .commands = c, .n_commands = 2,
                .vm_changes = &ch, .n_vm_changes = 1,
        };
        const char *s;
        int64_t i;

        (void) state;
        (void) json_object_object_get_ex(tables, "vm_placements", &placements);
        (void) json_object_object_get_ex(tables, "vm_commands", &commands);
        assert_int_equal(vmd_output_ops(&out, placements, commands, 777, &ops), 0);
        assert_int_equal(json_object_array_length(ops), 6);

        /* An existing placement: update of its row with its version. */
        o = op_at(ops, 0);
        assert_int_equal(haven_json_get_string(o, "op", &s), 0);
        assert_string_equal(s, "update");
        assert_int_equal(haven_json_get_int64(o, "id", &i), 0);
        assert_int_equal(i, 7);
        assert_int_equal(haven_json_get_int64(o, "expect_version", &i), 0);
        assert_int_equal(i, 41);
        assert_int_equal(haven_json_get_object(o, "values", &v), 0);
        assert_int_equal(haven_json_get_string(v, "state", &s), 0);
        assert_string_equal(s, "migrating");
        assert_int_equal(haven_json_get_int64(v, "target_node_id", &i), 0);
        assert_int_equal(i, 2);
        assert_int_equal(haven_json_get_int64(v, "generation", &i), 0);
        assert_int_equal(i, 5);
        assert_int_equal(haven_json_get_int64(v, "updated_at", &i), 0);
        assert_int_equal(i, 777);
        assert_int_equal(haven_json_get_int64(v, "vm_id", &i), -ENOENT);

        /* A new one: insert, node null. */
        o = op_at(ops, 1);
        assert_int_equal(haven_json_get_string(o, "op", &s), 0);
        assert_string_equal(s, "insert");
        assert_int_equal(haven_json_get_int64(o, "expect_version", &i), -ENOENT);
        assert_int_equal(haven_json_get_object(o, "values", &v), 0);
        assert_int_equal(haven_json_get_int64(v, "vm_id", &i), 0);
        assert_int_equal(i, 9);
        assert_int_equal(haven_json_get_int64(v, "node_id", &i), -ENOENT);

        o = op_at(ops, 2);
        assert_int_equal(haven_json_get_string(o, "table", &s), 0);
        assert_string_equal(s, "fence_requests");
        assert_int_equal(haven_json_get_object(o, "values", &v), 0);
        assert_int_equal(haven_json_get_string(v, "action", &s), 0);
        assert_string_equal(s, "off");
        assert_int_equal(haven_json_get_string(v, "reason", &s), 0);
        assert_string_equal(s, "fence it");

        /* Commands: running has no result yet; failed has result and end. */
        o = op_at(ops, 3);
        assert_int_equal(haven_json_get_int64(o, "expect_version", &i), 0);
        assert_int_equal(i, 11);
        assert_int_equal(haven_json_get_object(o, "values", &v), 0);
        assert_int_equal(haven_json_get_string(v, "result", &s), -ENOENT);
        o = op_at(ops, 4);
        assert_int_equal(haven_json_get_object(o, "values", &v), 0);
        assert_int_equal(haven_json_get_string(v, "state", &s), 0);
        assert_string_equal(s, "failed");
        assert_int_equal(haven_json_get_string(v, "result", &s), 0);
        assert_string_equal(s, "no room");
        assert_int_equal(haven_json_get_int64(v, "finished_at", &i), 0);
        assert_int_equal(i, 777);

        o = op_at(ops, 5);
        assert_int_equal(haven_json_get_string(o, "table", &s), 0);
        assert_string_equal(s, "vms");
        assert_int_equal(haven_json_get_object(o, "values", &v), 0);
        assert_int_equal(haven_json_get_string(v, "desired_state", &s), 0);
        assert_string_equal(s, "stopped");
        assert_true(json_object_object_get_ex(v, "sticky_node_id", NULL));
        assert_int_equal(haven_json_get_int64(v, "sticky_node_id", &i), -ENOENT);
        json_object_put(ops);

        /* Nothing decided: nothing to write. */
        out = (struct ha_output) {};
        ops = (struct json_object *) 1;
        assert_int_equal(vmd_output_ops(&out, placements, commands, 777, &ops), 0);
        assert_null(ops);
        json_object_put(tables);
}

static void a_vms_rows_become_its_libvirt_spec(void **state) {
        struct json_object *tables = parse(TABLES);
        struct vmd_spec s;
        const char *why;
        char uuid[VM_UUID_STRING_MAX];
        char *xml = NULL;

        (void) state;
        assert_int_equal(vmd_spec_build(tables, 1, VM_DOMAIN_TYPE_QEMU, &s, &why), 0);
        assert_string_equal(s.spec.name, "web1");
        assert_int_equal(s.spec.vcpus, 2);
        assert_int_equal(s.spec.memory_mib, 512);
        assert_int_equal(vm_uuid("6f1c1f52-3d5e-4a43-9a57-0d8e6a1b2c3d", 1, uuid), 0);
        assert_string_equal(s.spec.uuid, uuid);
        assert_int_equal(s.spec.n_disks, 1);
        assert_string_equal(s.spec.disks[0].path, "/srv/haven/shared/web1.qcow2");
        assert_int_equal(s.spec.disks[0].format, VM_DISK_FORMAT_QCOW2);
        assert_int_equal(s.spec.disks[0].cache, VM_DISK_CACHE_NONE);
        /* No boot order on any disk: the ISO first, then the disk. */
        assert_int_equal(s.spec.n_cdroms, 1);
        assert_int_equal(s.spec.cdroms[0].boot_order, 1);
        assert_int_equal(s.spec.disks[0].boot_order, 2);
        assert_int_equal(s.spec.n_nics, 1);
        assert_string_equal(s.spec.nics[0].bridge, "hv-lan");
        assert_string_equal(s.spec.nics[0].mac, "52:54:00:00:00:01");
        assert_int_equal(vm_domain_xml(&s.spec, &xml), 0);
        free(xml);
        vmd_spec_done(&s);

        /* db1: an explicit boot order is kept; eSAN block devices. */
        assert_int_equal(vmd_spec_build(tables, 2, VM_DOMAIN_TYPE_KVM, &s, &why), 0);
        assert_int_equal(s.spec.n_disks, 2);
        assert_int_equal(s.spec.disks[0].boot_order, 1);
        assert_int_equal(s.spec.disks[1].boot_order, 0);
        assert_int_equal(s.spec.disks[0].bus, VM_DISK_BUS_SATA);
        assert_int_equal(s.spec.type, VM_DOMAIN_TYPE_KVM);
        vmd_spec_done(&s);

        assert_int_equal(vmd_spec_build(tables, 42, VM_DOMAIN_TYPE_QEMU, &s, &why), -ENOENT);
        json_object_put(tables);
}

static void a_vm_that_cannot_run_says_why(void **state) {
        struct json_object *tables = parse(TABLES), *rows, *row;
        struct vmd_spec s;
        const char *why;

        (void) state;
        /* A disk without a path. */
        (void) json_object_object_get_ex(tables, "vm_disks", &rows);
        row = json_object_array_get_idx(rows, 0);
        json_object_object_add(row, "disk_id", json_object_new_int64(4));
        assert_int_equal(vmd_spec_build(tables, 1, VM_DOMAIN_TYPE_QEMU, &s, &why), -EINVAL);
        assert_string_equal(why, "a disk has no device or file yet");
        /* A disk that does not exist. */
        json_object_object_add(row, "disk_id", json_object_new_int64(77));
        assert_int_equal(vmd_spec_build(tables, 1, VM_DOMAIN_TYPE_QEMU, &s, &why), -EINVAL);
        assert_string_equal(why, "an attached disk does not exist");
        json_object_object_add(row, "disk_id", json_object_new_int64(1));
        /* A NIC on a missing network. */
        (void) json_object_object_get_ex(tables, "vm_nics", &rows);
        json_object_object_add(json_object_array_get_idx(rows, 0), "network_id",
                               json_object_new_int64(5));
        assert_int_equal(vmd_spec_build(tables, 1, VM_DOMAIN_TYPE_QEMU, &s, &why), -EINVAL);
        assert_string_equal(why, "a network interface names no valid network");
        /* No cluster row: no UUID. */
        json_object_object_del(tables, "cluster");
        assert_int_equal(vmd_spec_build(tables, 2, VM_DOMAIN_TYPE_QEMU, &s, &why), -EINVAL);
        assert_string_equal(why, "the cluster has no valid UUID");
        json_object_put(tables);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(nodes_take_membership_memory_fencing_and_fences_from_rows),
                cmocka_unit_test(vms_reports_placements_and_commands_skip_what_breaks_the_rules),
                cmocka_unit_test(the_decision_becomes_one_transaction_with_expected_versions),
                cmocka_unit_test(a_vms_rows_become_its_libvirt_spec),
                cmocka_unit_test(a_vm_that_cannot_run_says_why),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
