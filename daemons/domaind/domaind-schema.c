/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The schema of the configuration domain (docs/schema.md explains every
 * column to an administrator). Constraints live here, at the lowest level:
 * every CHECK is named "column: what it must be" (or "rule: sentence" for a
 * rule over several columns), because SQLite reports a failed CHECK by its
 * name and domaind-store.c turns that into the error's field and message.
 * Must not: create rows (the database starts empty, so every member starts
 * from the same content and the checksum of a new domain is 0), or use
 * triggers, AUTOINCREMENT, ON DELETE SET NULL/DEFAULT or ON UPDATE actions
 * (the store maintains the checksum row by row and refuses a schema whose
 * rows change behind its back).
 */
#include "domaind-schema.h"

/* ==== Constraint building blocks ==== */

/* A CHECK that passes for NULL too: SQLite only fails a CHECK whose value is
 * false, and NULL is not false; NOT NULL is said separately. */

#define NAME_CHECK(col)                                                        \
        "CONSTRAINT \"" col ": must be 1 to 63 characters (letters, digits, "  \
        "'.', '_' or '-'), starting with a letter or digit\" CHECK "           \
        "(length(" col ") BETWEEN 1 AND 63 AND " col                           \
        " GLOB '[A-Za-z0-9]*' AND " col " NOT GLOB '*[^A-Za-z0-9._-]*')"

/* A DNS name or an IPv4/IPv6 address written out, no port. */
#define HOST_CHECK(col)                                                        \
        "CONSTRAINT \"" col ": must be a host name or an IP address (1 to "    \
        "253 characters: letters, digits, '.', ':', '_' or '-')\" CHECK "      \
        "(length(" col ") BETWEEN 1 AND 253 AND " col                          \
        " GLOB '[A-Za-z0-9:]*' AND " col " NOT GLOB '*[^A-Za-z0-9.:_-]*')"

#define RANGE_CHECK(col, lo, hi)                                               \
        "CONSTRAINT \"" col ": must be between " lo " and " hi                 \
        "\" CHECK (" col " BETWEEN " lo " AND " hi ")"

#define TIME_CHECK(col)                                                        \
        "CONSTRAINT \"" col ": must be a time in microseconds since 1970\" "   \
        "CHECK (" col " >= 0)"

#define BOOL_CHECK(col)                                                        \
        "CONSTRAINT \"" col ": must be true or false\" CHECK (" col            \
        " IN (0, 1))"

#define LENGTH_CHECK(col, max)                                                 \
        "CONSTRAINT \"" col ": must be at most " max " characters\" CHECK ("   \
        "length(" col ") <= " max ")"

/* json_type() raises an error (not a constraint failure) on malformed text,
 * hence the CASE: json_valid() first. */
#define JSON_CHECK(col, type, max)                                             \
        "CONSTRAINT \"" col ": must be a JSON " type " of at most " max        \
        " characters\" CHECK (CASE WHEN json_valid(" col                       \
        ") THEN json_type(" col ") = '" type "' AND length(" col ") <= " max   \
        " ELSE 0 END)"

/* An absolute path of printable ASCII without "." or ".." components. */
#define PATH_CHECK(col)                                                        \
        "CONSTRAINT \"" col ": must be an absolute path of at most 4096 "      \
        "printable characters, without '.' or '..' components\" CHECK ("       \
        "length(" col ") BETWEEN 2 AND 4096 AND " col " GLOB '/*' AND " col    \
        " NOT GLOB '*[^ -~]*' AND " col " NOT GLOB '*/./*' AND " col           \
        " NOT GLOB '*/../*' AND " col " NOT GLOB '*/.' AND " col               \
        " NOT GLOB '*/..' AND " col " NOT GLOB '*//*')"

#define HEX "[0-9a-f]"
#define HEX4 HEX HEX HEX HEX
#define UUID_GLOB                                                              \
        "'" HEX4 HEX4 "-" HEX4 "-" HEX4 "-" HEX4 "-" HEX4 HEX4 HEX4 "'"
#define MAC_GLOB                                                               \
        "'" HEX HEX ":" HEX HEX ":" HEX HEX ":" HEX HEX ":" HEX HEX            \
        ":" HEX HEX "'"

/* ==== Migrations ==== */

/* The SQL is laid out by hand, one column a line. */
/* clang-format off */
static const char schema_v1[] =
        /* Local, not replicated: the store's own state, written in the same
         * SQLite transaction as every change. */
        "CREATE TABLE domain_state ("
        " key TEXT PRIMARY KEY,"
        " value INTEGER NOT NULL"
        ") STRICT;"
        "INSERT INTO domain_state (key, value) VALUES"
        " ('version', 0), ('checksum', 0);"

        /* The singleton rows (cluster, infrastructure) are not created here:
         * the transaction that creates the cluster inserts them (ids are
         * then 1, and the CHECK keeps them alone). */
        "CREATE TABLE cluster ("
        " id INTEGER PRIMARY KEY CONSTRAINT \"single: there is only one"
        " cluster; change the existing row\" CHECK (id = 1),"
        " version INTEGER NOT NULL,"
        " name TEXT NOT NULL " NAME_CHECK("name") ","
        " uuid TEXT NOT NULL CONSTRAINT \"uuid: must be a UUID in lowercase"
        " (8-4-4-4-12 hexadecimal digits)\" CHECK (uuid GLOB " UUID_GLOB "),"
        " config_version INTEGER NOT NULL DEFAULT 0"
        "  CONSTRAINT \"config_version: must not be negative\""
        "  CHECK (config_version >= 0),"
        " created_at INTEGER NOT NULL " TIME_CHECK("created_at")
        ") STRICT;"

        "CREATE TABLE nodes ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " node_id INTEGER NOT NULL UNIQUE "
        RANGE_CHECK("node_id", "1", "4294967295") ","
        " name TEXT NOT NULL UNIQUE " NAME_CHECK("name") ","
        " addresses TEXT NOT NULL DEFAULT '[]' "
        JSON_CHECK("addresses", "array", "4096") ","
        " state TEXT NOT NULL DEFAULT 'standby'"
        "  CONSTRAINT \"state: must be active, standby or maintenance\""
        "  CHECK (state IN ('active', 'standby', 'maintenance')),"
        " memory_mib INTEGER NOT NULL DEFAULT 0 "
        RANGE_CHECK("memory_mib", "0", "1073741824") ","
        " host_reserve_mib INTEGER NOT NULL DEFAULT 1024 "
        RANGE_CHECK("host_reserve_mib", "0", "1073741824") ","
        " esan_member INTEGER NOT NULL DEFAULT 0 " BOOL_CHECK("esan_member") ","
        " fence_delay_ms INTEGER NOT NULL DEFAULT 0 "
        RANGE_CHECK("fence_delay_ms", "0", "600000")
        ") STRICT;"

        "CREATE TABLE networks ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " name TEXT NOT NULL UNIQUE " NAME_CHECK("name") ","
        " uplinks TEXT NOT NULL DEFAULT '[]' "
        JSON_CHECK("uplinks", "array", "1024") ","
        " bonding_mode TEXT NOT NULL DEFAULT 'none'"
        "  CONSTRAINT \"bonding_mode: must be none, active-backup, balance-rr,"
        " balance-xor, broadcast, 802.3ad, balance-tlb or balance-alb\""
        "  CHECK (bonding_mode IN ('none', 'active-backup', 'balance-rr',"
        "  'balance-xor', 'broadcast', '802.3ad', 'balance-tlb',"
        "  'balance-alb')),"
        " vlan_id INTEGER CONSTRAINT \"vlan_id: must be between 1 and 4094,"
        " or null for no VLAN\" CHECK (vlan_id BETWEEN 1 AND 4094),"
        " mtu INTEGER NOT NULL DEFAULT 1500 "
        RANGE_CHECK("mtu", "576", "9000")
        ") STRICT;"

        "CREATE TABLE hosts ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " name TEXT NOT NULL UNIQUE CONSTRAINT \"name: must be a host name"
        " (1 to 253 characters: letters, digits, '.' or '-', starting with a"
        " letter or digit)\" CHECK (length(name) BETWEEN 1 AND 253 AND"
        " name GLOB '[A-Za-z0-9]*' AND name NOT GLOB '*[^A-Za-z0-9.-]*'),"
        " address TEXT NOT NULL CONSTRAINT \"address: must be an IPv4 or IPv6"
        " address\" CHECK (length(address) BETWEEN 2 AND 45 AND"
        " address NOT GLOB '*[^0-9A-Fa-f.:]*' AND address GLOB '*[.:]*')"
        ") STRICT;"

        "CREATE TABLE infrastructure ("
        " id INTEGER PRIMARY KEY CONSTRAINT \"single: there is only one"
        " infrastructure row; change the existing row\" CHECK (id = 1),"
        " version INTEGER NOT NULL,"
        " dns_domain TEXT CONSTRAINT \"dns_domain: must be a domain name (1"
        " to 253 characters: letters, digits, '.' or '-')\" CHECK"
        " (length(dns_domain) BETWEEN 1 AND 253 AND dns_domain GLOB"
        " '[A-Za-z0-9]*' AND dns_domain NOT GLOB '*[^A-Za-z0-9.-]*'),"
        " dns_search TEXT NOT NULL DEFAULT '[]' "
        JSON_CHECK("dns_search", "array", "1024") ","
        " dns_forwarders TEXT NOT NULL DEFAULT '[]' "
        JSON_CHECK("dns_forwarders", "array", "1024") ","
        " ntp_servers TEXT NOT NULL DEFAULT '[]' "
        JSON_CHECK("ntp_servers", "array", "1024") ","
        " mail_relay TEXT CONSTRAINT \"mail_relay: must be a host name or"
        " address, optionally with :port\" CHECK (length(mail_relay) BETWEEN"
        " 1 AND 259 AND mail_relay GLOB '[A-Za-z0-9:]*' AND mail_relay NOT"
        " GLOB '*[^A-Za-z0-9.:_-]*'),"
        " mail_user TEXT " LENGTH_CHECK("mail_user", "255") ","
        " mail_password TEXT " LENGTH_CHECK("mail_password", "255") ","
        " admin_email TEXT CONSTRAINT \"admin_email: must be an e-mail"
        " address (name@domain)\" CHECK (length(admin_email) BETWEEN 3 AND"
        " 254 AND admin_email GLOB '?*@?*' AND admin_email NOT GLOB"
        " '*@*@*' AND admin_email NOT GLOB '*[^A-Za-z0-9.@_+-]*')"
        ") STRICT;"

        "CREATE TABLE administrators ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " name TEXT NOT NULL UNIQUE " NAME_CHECK("name") ","
        " password_hash TEXT NOT NULL CONSTRAINT \"password_hash: must be a"
        " yescrypt hash ($y$...) of at most 256 characters\" CHECK"
        " (password_hash GLOB '$y$?*' AND length(password_hash) <= 256),"
        " created_at INTEGER NOT NULL " TIME_CHECK("created_at")
        ") STRICT;"

        "CREATE TABLE fence_devices ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " name TEXT NOT NULL UNIQUE " NAME_CHECK("name") ","
        " type TEXT NOT NULL CONSTRAINT \"type: must be apc-snmp, fence-agent"
        " or manual\" CHECK (type IN ('apc-snmp', 'fence-agent', 'manual')),"
        " address TEXT " HOST_CHECK("address") ","
        " parameters TEXT NOT NULL DEFAULT '{}' "
        JSON_CHECK("parameters", "object", "8192") ","
        " enabled INTEGER NOT NULL DEFAULT 1 " BOOL_CHECK("enabled") ","
        " CONSTRAINT \"address: an apc-snmp device needs an address\""
        " CHECK (type <> 'apc-snmp' OR address IS NOT NULL)"
        ") STRICT;"

        "CREATE TABLE fence_outlets ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " node_id INTEGER NOT NULL REFERENCES nodes (node_id)"
        "  ON DELETE CASCADE,"
        " device_id INTEGER NOT NULL REFERENCES fence_devices (id)"
        "  ON DELETE CASCADE,"
        " outlet TEXT NOT NULL CONSTRAINT \"outlet: must be an outlet number"
        " or name (1 to 63 characters: letters, digits, '.', '_', ':', '/'"
        " or '-')\" CHECK (length(outlet) BETWEEN 1 AND 63 AND outlet NOT"
        " GLOB '*[^A-Za-z0-9._:/-]*'),"
        " level INTEGER NOT NULL DEFAULT 1 " RANGE_CHECK("level", "1", "8") ","
        " UNIQUE (device_id, outlet)"
        ") STRICT;"
        "CREATE INDEX fence_outlets_node ON fence_outlets (node_id);"

        /* At most one open request per node: a second request for the same
         * node fails on the index and the requester follows the open one. */
        "CREATE TABLE fence_requests ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " node_id INTEGER NOT NULL REFERENCES nodes (node_id)"
        "  ON DELETE CASCADE,"
        " action TEXT NOT NULL DEFAULT 'off' CONSTRAINT \"action: must be"
        " off, reboot or on\" CHECK (action IN ('off', 'reboot', 'on')),"
        " reason TEXT NOT NULL DEFAULT '' " LENGTH_CHECK("reason", "1024") ","
        " requested_by TEXT NOT NULL " LENGTH_CHECK("requested_by", "128") ","
        " requested_at INTEGER NOT NULL " TIME_CHECK("requested_at") ","
        " state TEXT NOT NULL DEFAULT 'pending' CONSTRAINT \"state: must be"
        " pending, running, done or failed\" CHECK (state IN ('pending',"
        " 'running', 'done', 'failed')),"
        " executor_node_id INTEGER "
        RANGE_CHECK("executor_node_id", "1", "4294967295") ","
        " started_at INTEGER " TIME_CHECK("started_at") ","
        " finished_at INTEGER " TIME_CHECK("finished_at") ","
        " device TEXT " LENGTH_CHECK("device", "63") ","
        " outlets TEXT " LENGTH_CHECK("outlets", "1024") ","
        " level INTEGER " RANGE_CHECK("level", "1", "8") ","
        " result TEXT NOT NULL DEFAULT '' " LENGTH_CHECK("result", "4096") ","
        " CONSTRAINT \"executor_node_id: a node never fences itself\""
        " CHECK (executor_node_id IS NULL OR executor_node_id <> node_id)"
        ") STRICT;"
        "CREATE UNIQUE INDEX fence_requests_open ON fence_requests (node_id)"
        " WHERE state IN ('pending', 'running');"

        "CREATE TABLE disks ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " name TEXT NOT NULL UNIQUE " NAME_CHECK("name") ","
        " kind TEXT NOT NULL CONSTRAINT \"kind: must be esan or shared\""
        "  CHECK (kind IN ('esan', 'shared')),"
        " size_mib INTEGER NOT NULL "
        RANGE_CHECK("size_mib", "1", "1073741824") ","
        " path TEXT " PATH_CHECK("path") ","
        " nodes TEXT NOT NULL DEFAULT '[]' "
        JSON_CHECK("nodes", "array", "1024") ","
        " CONSTRAINT \"path: a shared disk needs a path\""
        "  CHECK (kind <> 'shared' OR path IS NOT NULL),"
        " CONSTRAINT \"nodes: an eSAN disk lives on at most two nodes\""
        "  CHECK (kind <> 'esan' OR CASE WHEN json_valid(nodes) THEN"
        "  json_array_length(nodes) <= 2 ELSE 1 END)"
        ") STRICT;"

        "CREATE TABLE vms ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " name TEXT NOT NULL UNIQUE " NAME_CHECK("name") ","
        " vcpus INTEGER NOT NULL DEFAULT 1 " RANGE_CHECK("vcpus", "1", "64") ","
        " memory_mib INTEGER NOT NULL "
        RANGE_CHECK("memory_mib", "16", "4194304") ","
        " ha TEXT NOT NULL DEFAULT 'off' CONSTRAINT \"ha: must be off, on or"
        " sticky\" CHECK (ha IN ('off', 'on', 'sticky')),"
        " preferred_node_id INTEGER REFERENCES nodes (node_id)"
        "  ON DELETE RESTRICT,"
        " priority INTEGER NOT NULL DEFAULT 500 "
        RANGE_CHECK("priority", "0", "1000") ","
        " restart_max INTEGER NOT NULL DEFAULT 3 "
        RANGE_CHECK("restart_max", "0", "100") ","
        " restart_window_s INTEGER NOT NULL DEFAULT 600 "
        RANGE_CHECK("restart_window_s", "1", "86400") ","
        " relocate_max INTEGER NOT NULL DEFAULT 1 "
        RANGE_CHECK("relocate_max", "0", "32") ","
        " sticky_node_id INTEGER REFERENCES nodes (node_id)"
        "  ON DELETE RESTRICT,"
        " description TEXT NOT NULL DEFAULT '' "
        LENGTH_CHECK("description", "1024") ","
        " desired_state TEXT NOT NULL DEFAULT 'stopped' CONSTRAINT"
        " \"desired_state: must be running or stopped\" CHECK (desired_state"
        " IN ('running', 'stopped')),"
        " CONSTRAINT \"sticky_node_id: only a VM with ha sticky is bound to a"
        " node\" CHECK (sticky_node_id IS NULL OR ha = 'sticky')"
        ") STRICT;"
        "CREATE INDEX vms_preferred_node ON vms (preferred_node_id);"
        "CREATE INDEX vms_sticky_node ON vms (sticky_node_id);"

        "CREATE TABLE vm_disks ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " vm_id INTEGER NOT NULL REFERENCES vms (id) ON DELETE CASCADE,"
        " disk_id INTEGER NOT NULL UNIQUE REFERENCES disks (id)"
        "  ON DELETE RESTRICT,"
        " bus TEXT NOT NULL DEFAULT 'virtio' CONSTRAINT \"bus: must be"
        " virtio, scsi, sata or ide\" CHECK (bus IN ('virtio', 'scsi',"
        " 'sata', 'ide')),"
        " boot_order INTEGER " RANGE_CHECK("boot_order", "1", "64") ","
        " UNIQUE (vm_id, boot_order)"
        ") STRICT;"

        "CREATE TABLE vm_nics ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " vm_id INTEGER NOT NULL REFERENCES vms (id) ON DELETE CASCADE,"
        " network_id INTEGER NOT NULL REFERENCES networks (id)"
        "  ON DELETE RESTRICT,"
        " mac TEXT UNIQUE CONSTRAINT \"mac: must be a MAC address in"
        " lowercase (52:54:00:12:34:56)\" CHECK (mac GLOB " MAC_GLOB "),"
        " model TEXT NOT NULL DEFAULT 'virtio' CONSTRAINT \"model: must be"
        " virtio, e1000 or rtl8139\" CHECK (model IN ('virtio', 'e1000',"
        " 'rtl8139'))"
        ") STRICT;"
        "CREATE INDEX vm_nics_vm ON vm_nics (vm_id);"
        "CREATE INDEX vm_nics_network ON vm_nics (network_id);"

        "CREATE TABLE vm_cdroms ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " vm_id INTEGER NOT NULL REFERENCES vms (id) ON DELETE CASCADE,"
        " iso_path TEXT " PATH_CHECK("iso_path")
        ") STRICT;"
        "CREATE INDEX vm_cdroms_vm ON vm_cdroms (vm_id);"

        /* The VM manager's decisions (daemons/vmd): where each VM is placed
         * and why, so that a new manager continues where the old one
         * stopped. Written by the manager only. */
        "CREATE TABLE vm_placements ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " vm_id INTEGER NOT NULL UNIQUE REFERENCES vms (id) ON DELETE CASCADE,"
        " node_id INTEGER " RANGE_CHECK("node_id", "1", "4294967295") ","
        " state TEXT NOT NULL DEFAULT 'stopped' CONSTRAINT \"state: must be"
        " stopped, starting, running, stopping, migrating, recovering,"
        " waiting or failed\" CHECK (state IN ('stopped', 'starting',"
        " 'running', 'stopping', 'migrating', 'recovering', 'waiting',"
        " 'failed')),"
        " target_node_id INTEGER "
        RANGE_CHECK("target_node_id", "1", "4294967295") ","
        " reason TEXT NOT NULL DEFAULT '' " LENGTH_CHECK("reason", "1024") ","
        " restarts INTEGER NOT NULL DEFAULT 0 "
        RANGE_CHECK("restarts", "0", "1000000") ","
        " restart_window_start INTEGER NOT NULL DEFAULT 0 "
        TIME_CHECK("restart_window_start") ","
        " relocations INTEGER NOT NULL DEFAULT 0 "
        RANGE_CHECK("relocations", "0", "1000000") ","
        " generation INTEGER NOT NULL DEFAULT 0 "
        RANGE_CHECK("generation", "0", "9223372036854775807") ","
        " updated_at INTEGER NOT NULL DEFAULT 0 " TIME_CHECK("updated_at")
        ") STRICT;"

        /* One-shot requests for a VM (an administrator's migrate, reboot,
         * reset, ...), carried out once by the manager or a node agent. */
        "CREATE TABLE vm_commands ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " vm_id INTEGER NOT NULL REFERENCES vms (id) ON DELETE CASCADE,"
        " command TEXT NOT NULL CONSTRAINT \"command: must be start, shutdown,"
        " reboot, reset, poweroff, migrate or release\" CHECK (command IN"
        " ('start', 'shutdown', 'reboot', 'reset', 'poweroff', 'migrate',"
        " 'release')),"
        " target_node_id INTEGER "
        RANGE_CHECK("target_node_id", "1", "4294967295") ","
        " state TEXT NOT NULL DEFAULT 'pending' CONSTRAINT \"state: must be"
        " pending, running, done or failed\" CHECK (state IN ('pending',"
        " 'running', 'done', 'failed')),"
        " requested_by TEXT NOT NULL " LENGTH_CHECK("requested_by", "128") ","
        " requested_at INTEGER NOT NULL " TIME_CHECK("requested_at") ","
        " finished_at INTEGER " TIME_CHECK("finished_at") ","
        " result TEXT NOT NULL DEFAULT '' " LENGTH_CHECK("result", "4096") ","
        " CONSTRAINT \"target_node_id: migrate needs a target node\""
        "  CHECK (command <> 'migrate' OR target_node_id IS NOT NULL)"
        ") STRICT;"
        "CREATE INDEX vm_commands_vm ON vm_commands (vm_id);"

        "CREATE TABLE staged_changes ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " ops TEXT NOT NULL " JSON_CHECK("ops", "array", "1048576") ","
        " summary TEXT NOT NULL DEFAULT '' " LENGTH_CHECK("summary", "1024") ","
        " created_by TEXT NOT NULL " LENGTH_CHECK("created_by", "128") ","
        " created_at INTEGER NOT NULL " TIME_CHECK("created_at")
        ") STRICT;"

        "CREATE TABLE jobs ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " kind TEXT NOT NULL " NAME_CHECK("kind") ","
        " state TEXT NOT NULL DEFAULT 'running' CONSTRAINT \"state: must be"
        " running, done or failed\" CHECK (state IN ('running', 'done',"
        " 'failed')),"
        " created_by TEXT NOT NULL " LENGTH_CHECK("created_by", "128") ","
        " created_at INTEGER NOT NULL " TIME_CHECK("created_at") ","
        " finished_at INTEGER CONSTRAINT \"finished_at: must not be before"
        " created_at\" CHECK (finished_at >= created_at),"
        " config_version INTEGER CONSTRAINT \"config_version: must not be"
        " negative\" CHECK (config_version >= 0)"
        ") STRICT;"

        "CREATE TABLE job_log ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
        " time INTEGER NOT NULL " TIME_CHECK("time") ","
        " node TEXT NOT NULL " LENGTH_CHECK("node", "63") ","
        " source TEXT NOT NULL " LENGTH_CHECK("source", "63") ","
        " line TEXT NOT NULL " LENGTH_CHECK("line", "4096")
        ") STRICT;"
        "CREATE INDEX job_log_job ON job_log (job_id);"

        "CREATE TABLE audit ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " time INTEGER NOT NULL " TIME_CHECK("time") ","
        " actor TEXT NOT NULL " LENGTH_CHECK("actor", "128") ","
        " node TEXT NOT NULL " LENGTH_CHECK("node", "63") ","
        " action TEXT NOT NULL " LENGTH_CHECK("action", "128") ","
        " detail TEXT NOT NULL " LENGTH_CHECK("detail", "1024")
        ") STRICT;"

        "CREATE TABLE alerts ("
        " id INTEGER PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " time INTEGER NOT NULL " TIME_CHECK("time") ","
        " severity TEXT NOT NULL DEFAULT 'warning' CONSTRAINT \"severity:"
        " must be warning or critical\" CHECK (severity IN ('warning',"
        " 'critical')),"
        " source TEXT NOT NULL " NAME_CHECK("source") ","
        " node TEXT NOT NULL DEFAULT '' " LENGTH_CHECK("node", "63") ","
        " message TEXT NOT NULL CONSTRAINT \"message: must be 1 to 1024"
        " characters\" CHECK (length(message) BETWEEN 1 AND 1024),"
        " cleared_at INTEGER " TIME_CHECK("cleared_at") ","
        " cleared_by TEXT " LENGTH_CHECK("cleared_by", "128")
        ") STRICT;";

/* clang-format on */

const struct haven_migration schema_migrations[] = {
        {"initial schema", schema_v1},
};
const size_t schema_migrations_count = ELEMENTSOF(schema_migrations);

/* ==== Facts SQL does not carry ==== */

const char *const schema_tables[] = {
        "cluster",       "nodes",          "networks",
        "hosts",         "infrastructure", "administrators",
        "fence_devices", "fence_outlets",  "fence_requests",
        "disks",         "vms",            "vm_disks",
        "vm_nics",       "vm_cdroms",      "vm_placements",
        "vm_commands",   "staged_changes",
        "jobs",          "job_log",        "audit",
        "alerts",        NULL,
};

const struct schema_table_rule schema_table_rules[] = {
        {"staged_changes", SCHEMA_NO_INSERT | SCHEMA_NO_UPDATE,
         "staged changes are made with the stage op"},
        {"audit", SCHEMA_NO_INSERT | SCHEMA_NO_UPDATE | SCHEMA_NO_DELETE,
         "the audit log is written by the domain itself"},
};
const size_t schema_table_rules_count = ELEMENTSOF(schema_table_rules);

const struct schema_column_rule schema_column_rules[] = {
        {"cluster", "created_at", SCHEMA_VALUE_PLAIN, SCHEMA_FILL_TIME},
        {"nodes", "addresses", SCHEMA_VALUE_JSON, SCHEMA_FILL_NONE},
        {"nodes", "esan_member", SCHEMA_VALUE_BOOL, SCHEMA_FILL_NONE},
        {"networks", "uplinks", SCHEMA_VALUE_JSON, SCHEMA_FILL_NONE},
        {"infrastructure", "dns_search", SCHEMA_VALUE_JSON, SCHEMA_FILL_NONE},
        {"infrastructure", "dns_forwarders", SCHEMA_VALUE_JSON,
         SCHEMA_FILL_NONE},
        {"infrastructure", "ntp_servers", SCHEMA_VALUE_JSON, SCHEMA_FILL_NONE},
        {"administrators", "created_at", SCHEMA_VALUE_PLAIN, SCHEMA_FILL_TIME},
        {"fence_devices", "parameters", SCHEMA_VALUE_JSON, SCHEMA_FILL_NONE},
        {"fence_devices", "enabled", SCHEMA_VALUE_BOOL, SCHEMA_FILL_NONE},
        {"fence_requests", "requested_by", SCHEMA_VALUE_PLAIN,
         SCHEMA_FILL_ACTOR},
        {"fence_requests", "requested_at", SCHEMA_VALUE_PLAIN,
         SCHEMA_FILL_TIME},
        {"disks", "nodes", SCHEMA_VALUE_JSON, SCHEMA_FILL_NONE},
        {"staged_changes", "ops", SCHEMA_VALUE_JSON, SCHEMA_FILL_NONE},
        {"staged_changes", "created_by", SCHEMA_VALUE_PLAIN, SCHEMA_FILL_ACTOR},
        {"staged_changes", "created_at", SCHEMA_VALUE_PLAIN, SCHEMA_FILL_TIME},
        {"jobs", "created_by", SCHEMA_VALUE_PLAIN, SCHEMA_FILL_ACTOR},
        {"jobs", "created_at", SCHEMA_VALUE_PLAIN, SCHEMA_FILL_TIME},
        {"job_log", "time", SCHEMA_VALUE_PLAIN, SCHEMA_FILL_TIME},
        {"alerts", "time", SCHEMA_VALUE_PLAIN, SCHEMA_FILL_TIME},
        {"vm_commands", "requested_by", SCHEMA_VALUE_PLAIN, SCHEMA_FILL_ACTOR},
        {"vm_commands", "requested_at", SCHEMA_VALUE_PLAIN, SCHEMA_FILL_TIME},
};
const size_t schema_column_rules_count = ELEMENTSOF(schema_column_rules);
