/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The API's route table: every route's method, path, handler, body policy,
 * limits, query parameters and permission, in one place (docs/api/
 * openapi.json describes the same set; a unit test holds them together).
 * The field policies follow docs/schema.md (types, ranges, choices); the
 * domain still enforces its own rules and its refusals name the field. A
 * resource's check says what a policy cannot: the elements of arrays,
 * formats. Must not: check permissions anywhere but in the table, or do
 * work beyond the status answer.
 */
#include <stdio.h>

#include "httpd.h"

#define NAME_FIELD(req)                                                        \
        {                                                                      \
                .name = "name", .kind = HAVEN_JSON_STRING, .required = (req),  \
                .min = 1, .max = 63                                            \
        }
#define NODE_ID_MAX 4294967295LL
#define ID_FIELD(n, req)                                                       \
        {                                                                      \
                .name = (n), .kind = HAVEN_JSON_INT, .required = (req),        \
                .min = 1, .max = INT64_MAX                                     \
        }
#define NODE_ID_FIELD(n, req, null)                                            \
        {                                                                      \
                .name = (n), .kind = HAVEN_JSON_INT, .required = (req),        \
                .nullable = (null), .min = 1, .max = NODE_ID_MAX               \
        }

/* ==== Checks a policy cannot express ==== */

/* Every element of values[field] (if present) a string of min..max
 * bytes. */
static int check_strings(struct json_object *values, const char *field, int min,
                         int max, struct httpd_error *e) {
        struct json_object *a;

        if (haven_json_get_array(values, field, &a) < 0)
                return 0;
        for (size_t i = 0; i < httpd_array_length(a); i++) {
                struct json_object *v = json_object_array_get_idx(a, i);
                int n;

                if (!json_object_is_type(v, json_type_string)) {
                        httpd_error_set(e, HTTPD_ERROR_INVALID, field,
                                        "\"%s\" must be a list of strings",
                                        field);
                        return -EINVAL;
                }
                n = json_object_get_string_len(v);
                if (n < min || n > max ||
                    strlen(json_object_get_string(v)) != (size_t) n) {
                        httpd_error_set(e, HTTPD_ERROR_INVALID, field,
                                        "each of \"%s\" must have %d to %d "
                                        "characters",
                                        field, min, max);
                        return -EINVAL;
                }
        }
        return 0;
}

static int networks_check(struct json_object *values, struct httpd_error *e) {
        /* Interface names: at most IFNAMSIZ - 1. */
        return check_strings(values, "uplinks", 1, 15, e);
}

static int infrastructure_check(struct json_object *values,
                                struct httpd_error *e) {
        int r;

        r = check_strings(values, "dns_search", 1, 253, e);
        if (r >= 0)
                r = check_strings(values, "dns_forwarders", 2, 45, e);
        if (r >= 0)
                r = check_strings(values, "ntp_servers", 1, 253, e);
        return r;
}

static int disks_check(struct json_object *values, struct httpd_error *e) {
        struct json_object *a;

        if (haven_json_get_array(values, "nodes", &a) < 0)
                return 0;
        for (size_t i = 0; i < httpd_array_length(a); i++) {
                struct json_object *v = json_object_array_get_idx(a, i);
                int64_t id;

                if (!json_object_is_type(v, json_type_int) ||
                    (id = json_object_get_int64(v)) < 1 || id > NODE_ID_MAX) {
                        httpd_error_set(e, HTTPD_ERROR_INVALID, "nodes",
                                        "\"nodes\" must be a list of node ids "
                                        "(1 to 4294967295)");
                        return -EINVAL;
                }
        }
        return 0;
}

/* "52:54:00:12:34:56": lowercase, as the schema stores it. */
static int vm_nics_check(struct json_object *values, struct httpd_error *e) {
        const char *mac;

        if (haven_json_get_string(values, "mac", &mac) < 0)
                return 0;
        for (size_t i = 0; i < 17; i++) {
                bool ok = i % 3 == 2 ? mac[i] == ':'
                                     : (mac[i] >= '0' && mac[i] <= '9') ||
                                               (mac[i] >= 'a' && mac[i] <= 'f');

                if (!ok) {
                        httpd_error_set(e, HTTPD_ERROR_INVALID, "mac",
                                        "\"mac\" must be six lowercase hex "
                                        "pairs joined by ':'");
                        return -EINVAL;
                }
        }
        return 0;
}

/* ==== Field policies (docs/schema.md) ==== */

static const struct haven_json_field login_policy[] = {
        {.name = "name",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = HTTPD_NAME_MAX},
        {.name = "password",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = 256},
};

static const struct haven_json_field cluster_policy[] = {NAME_FIELD(true)};

static const char *const node_states[] = {"active", "standby", "maintenance",
                                          NULL};
static const struct haven_json_field nodes_update_policy[] = {
        {.name = "state", .kind = HAVEN_JSON_ENUM, .choices = node_states},
        {.name = "memory_mib",
         .kind = HAVEN_JSON_INT,
         .min = 0,
         .max = 1073741824},
        {.name = "host_reserve_mib",
         .kind = HAVEN_JSON_INT,
         .min = 0,
         .max = 1073741824},
        {.name = "fence_delay_ms",
         .kind = HAVEN_JSON_INT,
         .min = 0,
         .max = 600000},
        {.name = "esan_member", .kind = HAVEN_JSON_BOOL},
};

static const char *const bonding_modes[] = {
        "none",    "active-backup", "balance-rr",  "balance-xor", "broadcast",
        "802.3ad", "balance-tlb",   "balance-alb", NULL};
#define NETWORK_FIELDS(req)                                                    \
        NAME_FIELD(req),                                                       \
                {.name = "uplinks",                                            \
                 .kind = HAVEN_JSON_ARRAY,                                     \
                 .min = 0,                                                     \
                 .max = 16},                                                   \
                {.name = "bonding_mode",                                       \
                 .kind = HAVEN_JSON_ENUM,                                      \
                 .choices = bonding_modes},                                    \
                {.name = "vlan_id",                                            \
                 .kind = HAVEN_JSON_INT,                                       \
                 .nullable = true,                                             \
                 .min = 1,                                                     \
                 .max = 4094},                                                 \
        {                                                                      \
                .name = "mtu", .kind = HAVEN_JSON_INT, .min = 576, .max = 9000 \
        }
static const struct haven_json_field networks_policy[] = {NETWORK_FIELDS(true)};
static const struct haven_json_field networks_update_policy[] = {
        NETWORK_FIELDS(false)};

#define HOST_FIELDS(req)                                                       \
        {.name = "name",                                                       \
         .kind = HAVEN_JSON_STRING,                                            \
         .required = (req),                                                    \
         .min = 1,                                                             \
         .max = 253},                                                          \
        {                                                                      \
                .name = "address", .kind = HAVEN_JSON_STRING,                  \
                .required = (req), .min = 2, .max = 45                         \
        }
static const struct haven_json_field hosts_policy[] = {HOST_FIELDS(true)};
static const struct haven_json_field hosts_update_policy[] = {
        HOST_FIELDS(false)};

#define OPTIONAL_TEXT(n, lo, hi)                                               \
        {                                                                      \
                .name = (n), .kind = HAVEN_JSON_STRING, .nullable = true,      \
                .min = (lo), .max = (hi)                                       \
        }
static const struct haven_json_field infrastructure_update_policy[] = {
        OPTIONAL_TEXT("dns_domain", 1, 253),
        {.name = "dns_search", .kind = HAVEN_JSON_ARRAY, .min = 0, .max = 6},
        {.name = "dns_forwarders",
         .kind = HAVEN_JSON_ARRAY,
         .min = 0,
         .max = 8},
        {.name = "ntp_servers", .kind = HAVEN_JSON_ARRAY, .min = 0, .max = 8},
        OPTIONAL_TEXT("mail_relay", 1, 259),
        OPTIONAL_TEXT("mail_user", 1, 255),
        OPTIONAL_TEXT("mail_password", 1, 255),
        OPTIONAL_TEXT("admin_email", 3, 254),
};

static const struct haven_json_field administrators_policy[] = {
        NAME_FIELD(true),
        {.name = "password",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 8,
         .max = 256},
};
static const struct haven_json_field administrators_update_policy[] = {
        {.name = "password",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 8,
         .max = 256},
};

static const char *const fence_types[] = {"apc-snmp", "fence-agent", "manual",
                                          NULL};
#define FENCE_DEVICE_FIELDS(req)                                               \
        NAME_FIELD(req),                                                       \
                {.name = "type",                                               \
                 .kind = HAVEN_JSON_ENUM,                                      \
                 .required = (req),                                            \
                 .choices = fence_types},                                      \
                OPTIONAL_TEXT("address", 1, 253),                              \
                {.name = "parameters", .kind = HAVEN_JSON_OBJECT}, {           \
                .name = "enabled", .kind = HAVEN_JSON_BOOL                     \
        }
static const struct haven_json_field fence_devices_policy[] = {
        FENCE_DEVICE_FIELDS(true)};
static const struct haven_json_field fence_devices_update_policy[] = {
        FENCE_DEVICE_FIELDS(false)};
/* A device to test before it is added: its name is optional. */
static const struct haven_json_field fence_device_test_policy[] = {
        NAME_FIELD(false),
        {.name = "type",
         .kind = HAVEN_JSON_ENUM,
         .required = true,
         .choices = fence_types},
        OPTIONAL_TEXT("address", 1, 253),
        {.name = "parameters", .kind = HAVEN_JSON_OBJECT},
        {.name = "enabled", .kind = HAVEN_JSON_BOOL},
        {.name = "outlets", .kind = HAVEN_JSON_ARRAY, .min = 0, .max = 64},
};

#define FENCE_OUTLET_FIELDS(req)                                               \
        NODE_ID_FIELD("node_id", req, false), ID_FIELD("device_id", req),      \
                {.name = "outlet",                                             \
                 .kind = HAVEN_JSON_STRING,                                    \
                 .required = (req),                                            \
                 .min = 1,                                                     \
                 .max = 63},                                                   \
        {                                                                      \
                .name = "level", .kind = HAVEN_JSON_INT, .min = 1, .max = 8    \
        }
static const struct haven_json_field fence_outlets_policy[] = {
        FENCE_OUTLET_FIELDS(true)};
static const struct haven_json_field fence_outlets_update_policy[] = {
        FENCE_OUTLET_FIELDS(false)};

static const char *const disk_kinds[] = {"esan", "shared", NULL};
#define DISK_FIELDS(req)                                                       \
        NAME_FIELD(req),                                                       \
                {.name = "kind",                                               \
                 .kind = HAVEN_JSON_ENUM,                                      \
                 .required = (req),                                            \
                 .choices = disk_kinds},                                       \
                {.name = "size_mib",                                           \
                 .kind = HAVEN_JSON_INT,                                       \
                 .required = (req),                                            \
                 .min = 1,                                                     \
                 .max = 1073741824},                                           \
                OPTIONAL_TEXT("path", 2, 4096), {                              \
                .name = "nodes", .kind = HAVEN_JSON_ARRAY, .min = 0, .max = 32 \
        }
static const struct haven_json_field disks_policy[] = {DISK_FIELDS(true)};
static const struct haven_json_field disks_update_policy[] = {
        DISK_FIELDS(false)};

static const char *const ha_modes[] = {"off", "on", "sticky", NULL};
#define VM_FIELDS(req)                                                         \
        NAME_FIELD(req),                                                       \
                {.name = "vcpus",                                              \
                 .kind = HAVEN_JSON_INT,                                       \
                 .min = 1,                                                     \
                 .max = 64},                                                   \
                {.name = "memory_mib",                                         \
                 .kind = HAVEN_JSON_INT,                                       \
                 .required = (req),                                            \
                 .min = 16,                                                    \
                 .max = 4194304},                                              \
                {.name = "ha", .kind = HAVEN_JSON_ENUM, .choices = ha_modes},  \
                NODE_ID_FIELD("preferred_node_id", false, true),               \
                {.name = "priority",                                           \
                 .kind = HAVEN_JSON_INT,                                       \
                 .min = 0,                                                     \
                 .max = 1000},                                                 \
                {.name = "restart_max",                                        \
                 .kind = HAVEN_JSON_INT,                                       \
                 .min = 0,                                                     \
                 .max = 100},                                                  \
                {.name = "restart_window_s",                                   \
                 .kind = HAVEN_JSON_INT,                                       \
                 .min = 1,                                                     \
                 .max = 86400},                                                \
                {.name = "relocate_max",                                       \
                 .kind = HAVEN_JSON_INT,                                       \
                 .min = 0,                                                     \
                 .max = 32},                                                   \
                NODE_ID_FIELD("sticky_node_id", false, true), {                \
                .name = "description", .kind = HAVEN_JSON_STRING, .min = 0,    \
                .max = 1024                                                    \
        }
static const struct haven_json_field vms_policy[] = {VM_FIELDS(true)};
static const struct haven_json_field vms_update_policy[] = {VM_FIELDS(false)};

static const char *const disk_buses[] = {"virtio", "scsi", "sata", "ide", NULL};
#define VM_DISK_FIELDS(req)                                                    \
        ID_FIELD("vm_id", req), ID_FIELD("disk_id", req),                      \
                {.name = "bus",                                                \
                 .kind = HAVEN_JSON_ENUM,                                      \
                 .choices = disk_buses},                                       \
        {                                                                      \
                .name = "boot_order", .kind = HAVEN_JSON_INT,                  \
                .nullable = true, .min = 1, .max = 64                          \
        }
static const struct haven_json_field vm_disks_policy[] = {VM_DISK_FIELDS(true)};
static const struct haven_json_field vm_disks_update_policy[] = {
        VM_DISK_FIELDS(false)};

static const char *const nic_models[] = {"virtio", "e1000", "rtl8139", NULL};
#define VM_NIC_FIELDS(req)                                                     \
        ID_FIELD("vm_id", req), ID_FIELD("network_id", req),                   \
                OPTIONAL_TEXT("mac", 17, 17), {                                \
                .name = "model", .kind = HAVEN_JSON_ENUM,                      \
                .choices = nic_models                                          \
        }
static const struct haven_json_field vm_nics_policy[] = {VM_NIC_FIELDS(true)};
static const struct haven_json_field vm_nics_update_policy[] = {
        VM_NIC_FIELDS(false)};

#define VM_CDROM_FIELDS(req)                                                   \
        ID_FIELD("vm_id", req), OPTIONAL_TEXT("iso_path", 2, 4096)
static const struct haven_json_field vm_cdroms_policy[] = {
        VM_CDROM_FIELDS(true)};
static const struct haven_json_field vm_cdroms_update_policy[] = {
        VM_CDROM_FIELDS(false)};

static const char *const fence_actions[] = {"off", "reboot", "on", NULL};
static const struct haven_json_field node_fence_policy[] = {
        {.name = "action", .kind = HAVEN_JSON_ENUM, .choices = fence_actions},
        {.name = "reason", .kind = HAVEN_JSON_STRING, .min = 0, .max = 1024},
};

static const struct haven_json_field vm_target_policy[] = {
        {.name = "node",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = 63},
};
/* prefer: a node, or null for none. */
static const struct haven_json_field vm_prefer_policy[] = {
        {.name = "node",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .nullable = true,
         .min = 1,
         .max = 63},
};

static const struct haven_json_field cluster_create_policy[] = {
        NAME_FIELD(true),
        {.name = "admin",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = 63},
        {.name = "password",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 8,
         .max = 256},
        {.name = "address", .kind = HAVEN_JSON_STRING, .min = 2, .max = 45},
};
static const struct haven_json_field cluster_join_policy[] = {
        {.name = "address",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = 253},
        {.name = "admin",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = 63},
        {.name = "password",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = 256},
        /* This node's interconnect address (default: its first one). */
        {.name = "own_address", .kind = HAVEN_JSON_STRING, .min = 2, .max = 45},
};
static const struct haven_json_field network_check_policy[] = {
        {.name = "address",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 2,
         .max = 45},
        {.name = "mtu",
         .kind = HAVEN_JSON_INT,
         .required = true,
         .min = 576,
         .max = 9216},
};

/* Rows for several collections at once (httpd-batch.c checks each). */
static const struct haven_json_field batch_policy[] = {
        {.name = "items",
         .kind = HAVEN_JSON_ARRAY,
         .required = true,
         .min = 1,
         .max = HTTPD_BATCH_ITEMS_MAX},
        {.name = "summary", .kind = HAVEN_JSON_STRING, .min = 0, .max = 200},
};

#define PEM_MAX (64 * 1024)
static const struct haven_json_field tls_policy[] = {
        {.name = "certificate",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = PEM_MAX},
        {.name = "key",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = PEM_MAX},
};

/* ==== Resources ==== */

static const char *const administrator_hidden[] = {"password_hash", NULL};
static const char *const infrastructure_hidden[] = {"mail_password", NULL};

static const struct httpd_resource cluster = {.name = "cluster",
                                              .table = "cluster",
                                              .singleton = true,
                                              .label = "name"};
static const struct httpd_resource nodes = {
        .name = "nodes", .table = "nodes", .label = "name"};
static const struct httpd_resource networks = {.name = "networks",
                                               .table = "networks",
                                               .label = "name",
                                               .check = networks_check};
static const struct httpd_resource hosts = {
        .name = "hosts", .table = "hosts", .label = "name"};
static const struct httpd_resource infrastructure = {
        .name = "infrastructure",
        .table = "infrastructure",
        .singleton = true,
        .hidden = infrastructure_hidden,
        .hidden_flag = "mail_password",
        .check = infrastructure_check};
static const struct httpd_resource administrators = {
        .name = "administrators",
        .table = "administrators",
        .hidden = administrator_hidden,
        .label = "name"};
static const struct httpd_resource fence_devices = {
        .name = "fence-devices", .table = "fence_devices", .label = "name"};
static const struct httpd_resource fence_outlets = {.name = "fence-outlets",
                                                    .table = "fence_outlets"};
static const struct httpd_resource disks = {.name = "disks",
                                            .table = "disks",
                                            .label = "name",
                                            .check = disks_check};
static const struct httpd_resource vms = {
        .name = "vms", .table = "vms", .label = "name"};
static const struct httpd_resource vm_disks = {.name = "vm-disks",
                                               .table = "vm_disks"};
static const struct httpd_resource vm_nics = {
        .name = "vm-nics", .table = "vm_nics", .check = vm_nics_check};
static const struct httpd_resource vm_cdroms = {.name = "vm-cdroms",
                                                .table = "vm_cdroms"};
static const struct httpd_resource vm_placements = {.name = "vm-placements",
                                                    .table = "vm_placements"};
static const struct httpd_resource vm_commands = {.name = "vm-commands",
                                                  .table = "vm_commands"};
static const struct httpd_resource alerts = {.name = "alerts",
                                             .table = "alerts"};
static const struct httpd_resource fence_requests = {.name = "fence-requests",
                                                     .table = "fence_requests"};
static const struct httpd_resource jobs = {.name = "jobs", .table = "jobs"};
static const struct httpd_resource audit = {.name = "audit", .table = "audit"};

/* ==== Status ==== */

static void on_status(struct httpd_request *r, struct json_object *reply,
                      const struct httpd_error *error) {
        if (error)
                httpd_reply_error(r, error);
        else
                httpd_reply_json(r, 200, httpd_reply_copy(reply));
}

int httpd_api_status(struct httpd_request *r) {
        return httpd_domain_call(r, httpd_msg_new("status"), on_status);
}

/* ==== The table ==== */

static const char *const now_flag[] = {"now", NULL};
static const struct httpd_param page_params[] = {
        {.name = "limit", .min = 1, .max = 1000},
        {.name = "before", .min = 1, .max = INT64_MAX},
        {},
};
static const struct httpd_param log_params[] = {
        {.name = "after", .min = 0, .max = INT64_MAX},
        {},
};

#define API HTTPD_API_PREFIX
#define POLICY(p) .policy = (p), .n_policy = ELEMENTSOF(p)

/* GET lists, POST adds, GET/PATCH/DELETE /{id} read, change and remove
 * one row (writes staged unless ?now=1). */
#define RESOURCE_ROUTES(res, path)                                             \
        {.method = HTTPD_GET,                                                  \
         .pattern = API "/" path,                                              \
         .handler = httpd_resource_list,                                       \
         .resource = &res},                                                    \
                {.method = HTTPD_POST,                                         \
                 .pattern = API "/" path,                                      \
                 .handler = httpd_resource_create,                             \
                 POLICY(res##_policy),                                         \
                 .body_max = HTTPD_RESOURCE_BODY_MAX,                          \
                 .flags = now_flag,                                            \
                 .resource = &res},                                            \
                {.method = HTTPD_GET,                                          \
                 .pattern = API "/" path "/{id}",                              \
                 .handler = httpd_resource_get,                                \
                 .resource = &res},                                            \
                {.method = HTTPD_PATCH,                                        \
                 .pattern = API "/" path "/{id}",                              \
                 .handler = httpd_resource_update,                             \
                 POLICY(res##_update_policy),                                  \
                 .body_max = HTTPD_RESOURCE_BODY_MAX,                          \
                 .flags = now_flag,                                            \
                 .resource = &res},                                            \
        {                                                                      \
                .method = HTTPD_DELETE, .pattern = API "/" path "/{id}",       \
                .handler = httpd_resource_delete, .flags = now_flag,           \
                .resource = &res                                               \
        }

#define NODE_ACTION(a)                                                         \
        {                                                                      \
                .method = HTTPD_POST, .pattern = API "/nodes/{id}/actions/" a, \
                .handler = httpd_node_action, .action = a                      \
        }
#define VM_ACTION(a)                                                           \
        {                                                                      \
                .method = HTTPD_POST, .pattern = API "/vms/{id}/actions/" a,   \
                .handler = httpd_vm_action, .action = a                        \
        }
#define VM_ACTION_TO(a, policy)                                                \
        {                                                                      \
                .method = HTTPD_POST, .pattern = API "/vms/{id}/actions/" a,   \
                .handler = httpd_vm_action, POLICY(policy),                    \
                .body_max = HTTPD_LOGIN_BODY_MAX, .action = a                  \
        }
#define PAGED(res, path)                                                       \
        {                                                                      \
                .method = HTTPD_GET, .pattern = API "/" path,                  \
                .handler = httpd_paged_list, .params = page_params,            \
                .resource = &res                                               \
        }

/* Every route. Permission is HTTPD_SESSION unless it says otherwise. */
static const struct httpd_route routes[] = {
        /* Session, events, status */
        {.method = HTTPD_POST,
         .pattern = API "/session",
         .handler = httpd_auth_login,
         POLICY(login_policy),
         .body_max = HTTPD_LOGIN_BODY_MAX,
         .permission = HTTPD_PUBLIC,
         .secret = true},
        {.method = HTTPD_GET,
         .pattern = API "/session",
         .handler = httpd_auth_whoami},
        {.method = HTTPD_DELETE,
         .pattern = API "/session",
         .handler = httpd_auth_logout},
        {.method = HTTPD_GET,
         .pattern = API "/events",
         .handler = httpd_events_open},
        {.method = HTTPD_GET,
         .pattern = API "/status",
         .handler = httpd_api_status},
        {.method = HTTPD_GET,
         .pattern = API "/dashboard",
         .handler = httpd_dashboard_get},

        /* The cluster and its nodes */
        {.method = HTTPD_GET,
         .pattern = API "/cluster",
         .handler = httpd_resource_list,
         .resource = &cluster},
        {.method = HTTPD_PATCH,
         .pattern = API "/cluster",
         .handler = httpd_resource_update,
         POLICY(cluster_policy),
         .body_max = HTTPD_RESOURCE_BODY_MAX,
         .flags = now_flag,
         .resource = &cluster},
        {.method = HTTPD_GET,
         .pattern = API "/nodes",
         .handler = httpd_resource_list,
         .resource = &nodes},
        {.method = HTTPD_GET,
         .pattern = API "/nodes/{id}",
         .handler = httpd_resource_get,
         .resource = &nodes},
        {.method = HTTPD_PATCH,
         .pattern = API "/nodes/{id}",
         .handler = httpd_resource_update,
         POLICY(nodes_update_policy),
         .body_max = HTTPD_RESOURCE_BODY_MAX,
         .flags = now_flag,
         .resource = &nodes},
        {.method = HTTPD_DELETE,
         .pattern = API "/nodes/{id}",
         .handler = httpd_node_remove},
        NODE_ACTION("active"),
        NODE_ACTION("standby"),
        NODE_ACTION("maintenance"),
        {.method = HTTPD_POST,
         .pattern = API "/nodes/{id}/fence",
         .handler = httpd_node_fence,
         POLICY(node_fence_policy),
         .body_max = HTTPD_LOGIN_BODY_MAX},
        {.method = HTTPD_POST,
         .pattern = API "/nodes/{id}/fence/confirm",
         .handler = httpd_node_fence_confirm},
        {.method = HTTPD_GET,
         .pattern = API "/nodes/{id}/fence-check",
         .handler = httpd_fence_check},

        /* Configuration tables */
        RESOURCE_ROUTES(networks, "networks"),
        RESOURCE_ROUTES(hosts, "hosts"),
        {.method = HTTPD_GET,
         .pattern = API "/infrastructure",
         .handler = httpd_resource_list,
         .resource = &infrastructure},
        {.method = HTTPD_PATCH,
         .pattern = API "/infrastructure",
         .handler = httpd_resource_update,
         POLICY(infrastructure_update_policy),
         .body_max = HTTPD_RESOURCE_BODY_MAX,
         .flags = now_flag,
         .resource = &infrastructure},
        {.method = HTTPD_GET,
         .pattern = API "/administrators",
         .handler = httpd_resource_list,
         .resource = &administrators},
        {.method = HTTPD_POST,
         .pattern = API "/administrators",
         .handler = httpd_administrator_create,
         POLICY(administrators_policy),
         .body_max = HTTPD_LOGIN_BODY_MAX,
         .flags = now_flag,
         .secret = true,
         .resource = &administrators},
        {.method = HTTPD_GET,
         .pattern = API "/administrators/{id}",
         .handler = httpd_resource_get,
         .resource = &administrators},
        {.method = HTTPD_PATCH,
         .pattern = API "/administrators/{id}",
         .handler = httpd_administrator_update,
         POLICY(administrators_update_policy),
         .body_max = HTTPD_LOGIN_BODY_MAX,
         .flags = now_flag,
         .secret = true,
         .resource = &administrators},
        {.method = HTTPD_DELETE,
         .pattern = API "/administrators/{id}",
         .handler = httpd_administrator_delete,
         .flags = now_flag,
         .resource = &administrators},
        RESOURCE_ROUTES(fence_devices, "fence-devices"),
        RESOURCE_ROUTES(fence_outlets, "fence-outlets"),
        RESOURCE_ROUTES(disks, "disks"),
        RESOURCE_ROUTES(vms, "vms"),
        RESOURCE_ROUTES(vm_disks, "vm-disks"),
        RESOURCE_ROUTES(vm_nics, "vm-nics"),
        RESOURCE_ROUTES(vm_cdroms, "vm-cdroms"),

        /* VM actions (vm_commands for haven-vmd), placements, consoles */
        VM_ACTION("start"),
        VM_ACTION("shutdown"),
        VM_ACTION("reboot"),
        VM_ACTION("reset"),
        VM_ACTION("poweroff"),
        VM_ACTION_TO("migrate", vm_target_policy),
        VM_ACTION_TO("prefer", vm_prefer_policy),
        VM_ACTION("release"),
        {.method = HTTPD_GET,
         .pattern = API "/vms/{id}/commands",
         .handler = httpd_vm_commands,
         .params = page_params,
         .resource = &vm_commands},
        PAGED(vm_commands, "vm-commands"),
        {.method = HTTPD_GET,
         .pattern = API "/vm-commands/{id}",
         .handler = httpd_resource_get,
         .resource = &vm_commands},
        {.method = HTTPD_GET,
         .pattern = API "/vm-placements",
         .handler = httpd_resource_list,
         .resource = &vm_placements},
        {.method = HTTPD_GET,
         .pattern = API "/vms/{id}/console",
         .handler = httpd_console_open},
        {.method = HTTPD_GET,
         .pattern = API "/vms/{id}/console/splice",
         .handler = httpd_console_splice,
         .permission = HTTPD_PEER},

        /* Fencing */
        {.method = HTTPD_POST,
         .pattern = API "/fence-devices/test",
         .handler = httpd_fence_device_test,
         POLICY(fence_device_test_policy),
         .body_max = HTTPD_RESOURCE_BODY_MAX},
        {.method = HTTPD_POST,
         .pattern = API "/fence-devices/{id}/test",
         .handler = httpd_fence_device_test_row},
        {.method = HTTPD_GET,
         .pattern = API "/fence-agents",
         .handler = httpd_fence_agents},
        {.method = HTTPD_GET,
         .pattern = API "/fence-agents/{name}",
         .handler = httpd_fence_agent},
        {.method = HTTPD_GET,
         .pattern = API "/fencing",
         .handler = httpd_fencing_status},
        PAGED(fence_requests, "fence-requests"),
        {.method = HTTPD_GET,
         .pattern = API "/fence-requests/{id}",
         .handler = httpd_resource_get,
         .resource = &fence_requests},
        PAGED(alerts, "alerts"),
        {.method = HTTPD_POST,
         .pattern = API "/alerts/{id}/clear",
         .handler = httpd_alert_clear},

        /* Staged changes, jobs, audit */
        {.method = HTTPD_GET,
         .pattern = API "/changes",
         .handler = httpd_changes_list},
        {.method = HTTPD_GET,
         .pattern = API "/changes/diff",
         .handler = httpd_changes_diff},
        {.method = HTTPD_POST,
         .pattern = API "/changes/activate",
         .handler = httpd_changes_activate},
        {.method = HTTPD_POST,
         .pattern = API "/changes/discard",
         .handler = httpd_changes_discard},
        {.method = HTTPD_DELETE,
         .pattern = API "/changes/{id}",
         .handler = httpd_change_delete},
        PAGED(jobs, "jobs"),
        {.method = HTTPD_GET,
         .pattern = API "/jobs/{id}",
         .handler = httpd_resource_get,
         .resource = &jobs},
        {.method = HTTPD_GET,
         .pattern = API "/jobs/{id}/log",
         .handler = httpd_job_log,
         .params = log_params},
        PAGED(audit, "audit"),

        /* Several rows as one change (what the wizards make) */
        {.method = HTTPD_POST,
         .pattern = API "/batch",
         .handler = httpd_batch,
         POLICY(batch_policy),
         .body_max = HTTPD_RESOURCE_BODY_MAX,
         .flags = now_flag},

        /* The configuration as a file (it holds password hashes) */
        {.method = HTTPD_GET,
         .pattern = API "/backup",
         .handler = httpd_backup_get},

        /* Setting up: public while this node is in no cluster */
        {.method = HTTPD_POST,
         .pattern = API "/wizard/cluster-create",
         .handler = httpd_wizard_cluster_create,
         POLICY(cluster_create_policy),
         .body_max = HTTPD_LOGIN_BODY_MAX,
         .permission = HTTPD_UNCLUSTERED,
         .secret = true},
        {.method = HTTPD_POST,
         .pattern = API "/wizard/cluster-join",
         .handler = httpd_wizard_cluster_join,
         POLICY(cluster_join_policy),
         .body_max = HTTPD_LOGIN_BODY_MAX,
         .permission = HTTPD_UNCLUSTERED,
         .secret = true},
        {.method = HTTPD_GET,
         .pattern = API "/wizard/interfaces",
         .handler = httpd_wizard_interfaces,
         .permission = HTTPD_SETUP},
        {.method = HTTPD_POST,
         .pattern = API "/wizard/network-check",
         .handler = httpd_wizard_network_check,
         POLICY(network_check_policy),
         .body_max = HTTPD_LOGIN_BODY_MAX,
         .permission = HTTPD_SETUP},

        /* The node's HTTPS certificate */
        {.method = HTTPD_PUT,
         .pattern = API "/tls",
         .handler = httpd_tls_replace,
         POLICY(tls_policy),
         .body_max = 3 * PEM_MAX,
         .secret = true},

        /* The web UI: any path outside /api. */
        {.method = HTTPD_GET,
         .pattern = HTTPD_STATIC_PATTERN,
         .handler = httpd_static_serve,
         .permission = HTTPD_PUBLIC},
        {.method = HTTPD_HEAD,
         .pattern = HTTPD_STATIC_PATTERN,
         .handler = httpd_static_serve,
         .permission = HTTPD_PUBLIC},
};

const struct httpd_route *httpd_api_routes(size_t *ret_n) {
        *ret_n = ELEMENTSOF(routes);
        return routes;
}
