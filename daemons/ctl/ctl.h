/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * havenctl, the command line of a Haven node: talks to the local
 * haven-domaind over its unix socket (docs/domain.md, "Local socket API").
 * main.c parses arguments and dispatches; ctl-request.c turns arguments into
 * requests (pure), ctl-output.c turns answers into text (pure), ctl-client.c
 * does the I/O, and one file per command group does the work. Must not:
 * write the database itself, or print a password.
 */
#pragma once

#include <json-c/json.h>
#include <stdio.h>

#include "haven/macro.h"
#include "haven/msg.h"

#define CTL_SOCKET_DEFAULT "/run/haven/domaind.sock"
#define CTL_SOCKET_ENV "HAVEN_DOMAIND_SOCKET"
#define CTL_FENCED_SOCKET_DEFAULT "/run/haven/fenced.sock"
#define CTL_FENCED_SOCKET_ENV "HAVEN_FENCED_SOCKET"
#define CTL_OUTLETS_MAX 16

/* What the shell sees. Commands return one of these, not an errno. */
enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILED = 1, /* domaind answered with an error */
        CTL_EXIT_USAGE = 2,  /* bad arguments, or domaind not reachable */
};

#define CTL_TIMEOUT_USEC (30ULL * 1000ULL * 1000ULL)
/* Creating or joining a cluster starts corosync and waits for quorum. */
#define CTL_CLUSTER_TIMEOUT_USEC (180ULL * 1000ULL * 1000ULL)
#define CTL_AUDIT_LIMIT_DEFAULT 20
#define CTL_ASSIGNMENTS_MAX 64
#define CTL_PASSWORD_MAX 256

struct ctl {
        /* options */
        const char *socket_path;
        bool json;
        bool now;
        bool follow;
        unsigned limit;
        const char *admin;
        const char *password;      /* --password (visible in ps) */
        const char *password_file; /* --password-file ("-" = stdin) */
        const char *address;       /* cluster create --address */
        const char *action;        /* fence node --action */
        const char *reason;        /* fence node --reason */
        const char *outlets[CTL_OUTLETS_MAX]; /* fence test --outlet */
        size_t n_outlets;
        const char *fenced_socket; /* --fenced-socket */
        bool wait;            /* node maintenance --wait */
        bool no_wait;         /* vm commands --no-wait */
        bool none;            /* vm prefer --none */
        unsigned timeout_sec; /* --timeout (0 = the command's default) */

        /* the connection, opened on first use */
        struct haven_msg_client *client;
        /* who we are in the audit log: "havenctl:<user>" */
        char actor[80];
};

void ctl_done(struct ctl *c);

/* ==== Tables (ctl-request.c) ==== */

struct ctl_table {
        const char *name;           /* the table, as in the schema: "vms" */
        const char *const *aliases; /* NULL-terminated: "vm", ... */
        bool has_name;              /* rows are found by a unique "name" */
        bool singleton;             /* exactly one row (cluster, ...) */
        const char *read_only;      /* why add/set/delete are refused, or NULL */
};

/* Looks up a table by its name or an alias; '-' and '_' are the same.
 * NULL if unknown. */
const struct ctl_table *ctl_table_find(const char *name);
/* Every table, in schema order; *ret_n set to their number. */
const struct ctl_table *ctl_tables(size_t *ret_n);

/* ==== Requests (ctl-request.c, pure) ==== */

/* Errors of the pure functions: what to tell the user. */
struct ctl_error {
        char message[256];
};

/* Parses one "key=value", "key:=JSON" or "key==text" argument:
 *   key=value   a JSON number, true, false, null, array or object if the
 *               whole value is one (no surrounding blanks), else the text
 *               as a string;
 *   key:=JSON   the value must be JSON (any kind, strings in quotes);
 *   key==text   always the text as a string.
 * A key is 1..64 of [a-z0-9_], starting with a letter; "id" and "version"
 * are refused (domaind maintains them). Returns 0, *ret_key (a copy of
 * the key: the caller frees it) and *ret_value (a new reference; NULL for
 * JSON null), or -EINVAL with *ret_error filled (nothing returned), or
 * -ENOMEM. */
int ctl_parse_assignment(const char *arg, char **ret_key,
                         struct json_object **ret_value,
                         struct ctl_error *ret_error);
/* Parses n assignments into one object (column → value). Duplicate keys
 * are -EINVAL. *ret is a new object. */
int ctl_parse_assignments(char *const *args, size_t n, struct json_object **ret,
                          struct ctl_error *ret_error);
/* Whether arg is written as an assignment (has '=' after a valid key). */
bool ctl_is_assignment(const char *arg);

/* The "where" for a row given by the user: a decimal number is the row id
 * ({"id": N}), anything else a name ({"name": arg}) if the table has names.
 * Returns 0 and *ret (new), -EINVAL with *ret_error otherwise. */
int ctl_row_where(const struct ctl_table *t, const char *arg,
                  struct json_object **ret, struct ctl_error *ret_error);

/* Ops of the transaction language (docs/domain.md). values is taken over
 * (its reference moves into the op, even on failure). NULL on -ENOMEM. */
struct json_object *ctl_op_insert(const char *table, struct json_object *values);
struct json_object *ctl_op_update(const char *table, int64_t id, int64_t version,
                                  struct json_object *values);
struct json_object *ctl_op_delete(const char *table, int64_t id, int64_t version);
struct json_object *ctl_op_simple(const char *op); /* activate, discard */

/* {"request":"submit","ops":OPS,"actor":...,"audit":...}. With stage, the
 * ops are wrapped into one {"op":"stage","ops":OPS,"summary":SUMMARY}.
 * ops is taken over. audit/summary may be NULL. NULL on -ENOMEM. */
struct json_object *ctl_request_submit(struct json_object *ops, bool stage,
                                       const char *actor, const char *summary);
/* {"request":"query","table":T[,"where":W]}; where is taken over. */
struct json_object *ctl_request_query(const char *table, struct json_object *where);
/* {"request":NAME} */
struct json_object *ctl_request_simple(const char *name);
/* cluster-create (address may be NULL) and cluster-join. */
struct json_object *ctl_request_cluster(const char *request, const char *key,
                                        const char *value, const char *admin,
                                        const char *password,
                                        const char *address);
struct json_object *ctl_request_node_remove(const char *node, const char *actor);

/* A one-line description of a change for the audit log and the staged
 * change's summary: "set vms web1: vcpus=4 ha=on". Values of keys that
 * contain "password" are shown as "***". Cut at 200 bytes (on a UTF-8
 * boundary, ending in "..."). Caller frees; NULL on -ENOMEM. */
char *ctl_change_summary(const char *verb, const char *table, const char *row,
                         char *const *assignments, size_t n);

/* Reads a password: the first line of path ("-" = stdin), without its line
 * end. Returns 0 and *ret (caller frees, after wiping it), -EINVAL with
 * *ret_error for an empty or overlong one, or -errno. */
int ctl_read_password_file(const char *path, char **ret,
                           struct ctl_error *ret_error);

/* ==== Output (ctl-output.c, pure) ==== */

/* Rows of text cells under titles, printed with columns aligned (two
 * spaces between, no trailing blanks). Cells are copied and made safe for
 * a terminal (control characters escaped). */
struct ctl_grid;
struct ctl_grid *ctl_grid_new(size_t n_columns, const char *const *titles);
struct ctl_grid *ctl_grid_free(struct ctl_grid *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ctl_grid *, ctl_grid_free)
int ctl_grid_add(struct ctl_grid *g, const char *const *cells);
size_t ctl_grid_rows(const struct ctl_grid *g);
void ctl_grid_print(const struct ctl_grid *g, FILE *f);

/* A copy of s fit for a terminal: control characters (C0, DEL, C1) are
 * written as \n, \t, \r or \xNN, so a value cannot move the cursor or
 * send escape sequences. For eyes, not for parsing. NULL on -ENOMEM. */
char *ctl_text_safe(const char *s);
/* Terminal width of UTF-8 text, counted in code points. */
size_t ctl_text_width(const char *s);

/* One value of a row as text: null "-", strings as they are, booleans
 * "true"/"false", numbers in decimal, arrays and objects as compact JSON;
 * integer columns that hold times (created_at, finished_at, time: µs since
 * 1970) as "YYYY-MM-DD HH:MM:SS" local time. Caller frees. */
char *ctl_format_value(const char *column, struct json_object *value);
/* µs since 1970 → "YYYY-MM-DD HH:MM:SS" (local time) into buf. */
void ctl_format_time(int64_t usec, char *buf, size_t size);

/* Prints rows (an array of objects) as a grid whose columns are the union
 * of the rows' keys in order of first appearance ("(none)" for no rows). */
int ctl_print_rows(FILE *f, struct json_object *rows);
/* Prints one row as "key: value" lines, keys aligned. */
int ctl_print_record(FILE *f, struct json_object *row);
/* Prints obj as pretty JSON and a newline. */
void ctl_print_json(FILE *f, struct json_object *obj);

/* The text of an error answer's "error" object: "message (field "x")", or
 * the code when there is no message. Caller frees. */
char *ctl_format_error(struct json_object *error);

/* Sorts an array of row objects by their "id" (ascending; rows without an
 * id last), in place. */
void ctl_rows_sort_by_id(struct json_object *rows);

/* ==== Talking to domaind (ctl-client.c) ==== */

/* Sends req and waits for the answer (timeout 0 = CTL_TIMEOUT_USEC).
 * Returns CTL_EXIT_OK and *ret (new reference) for a successful answer;
 * for an error answer prints "havenctl: <message>" to stderr and returns
 * CTL_EXIT_FAILED (*ret_error_code, if not NULL, gets the code: borrowed
 * from a static copy that lives until the next call); when domaind cannot
 * be reached prints why and returns CTL_EXIT_USAGE. */
int ctl_call(struct ctl *c, struct json_object *req, uint64_t timeout_usec,
             struct json_object **ret, const char **ret_error_code);
/* ctl_call of a query; *ret_rows is a new reference to the rows array,
 * sorted by id. */
int ctl_query(struct ctl *c, const char *table, struct json_object *where,
              struct json_object **ret_rows);
/* Submits ops (taken over) as one transaction, wrapped in a stage op when
 * stage is set, with c->actor and summary (the audit text and the staged
 * change's summary; may be NULL). Returns as ctl_call. */
int ctl_submit(struct ctl *c, struct json_object *ops, bool stage, const char *summary,
               struct json_object **ret_reply, const char **ret_error_code);
/* The "id" of the first op's result in a submit answer, if there is one. */
bool ctl_reply_first_id(struct json_object *reply, int64_t *ret);
/* Connects a second, separate connection (for subscriptions). Same
 * returns and messages as ctl_call. */
int ctl_connect_new(struct ctl *c, struct haven_msg_client **ret);
/* Prints "havenctl: " + printf text + newline to stderr. Returns status. */
int ctl_fail(int status, const char *format, ...) _printf_(2, 3);

/* ==== Commands (one file per group) ==== */

int ctl_status(struct ctl *c, int argc, char **argv);
int ctl_cluster_create(struct ctl *c, int argc, char **argv);
int ctl_cluster_join(struct ctl *c, int argc, char **argv);
int ctl_cluster_remove(struct ctl *c, int argc, char **argv);
int ctl_get(struct ctl *c, int argc, char **argv);
int ctl_add(struct ctl *c, int argc, char **argv);
int ctl_set(struct ctl *c, int argc, char **argv);
int ctl_delete(struct ctl *c, int argc, char **argv);
int ctl_changes(struct ctl *c, int argc, char **argv);
int ctl_activate(struct ctl *c, int argc, char **argv);
int ctl_discard(struct ctl *c, int argc, char **argv);
int ctl_jobs(struct ctl *c, int argc, char **argv);
int ctl_job_log(struct ctl *c, int argc, char **argv);
int ctl_audit(struct ctl *c, int argc, char **argv);
int ctl_list_tables(struct ctl *c, int argc, char **argv);
int ctl_fence_status(struct ctl *c, int argc, char **argv);
int ctl_fence_test(struct ctl *c, int argc, char **argv);
int ctl_fence_check(struct ctl *c, int argc, char **argv);
int ctl_fence_node(struct ctl *c, int argc, char **argv);
int ctl_fence_confirm(struct ctl *c, int argc, char **argv);
int ctl_fence_requests(struct ctl *c, int argc, char **argv);
int ctl_fence_agents(struct ctl *c, int argc, char **argv);
int ctl_fence_agent(struct ctl *c, int argc, char **argv);
int ctl_vm_list(struct ctl *c, int argc, char **argv);
int ctl_vm_show(struct ctl *c, int argc, char **argv);
int ctl_vm_start(struct ctl *c, int argc, char **argv);
int ctl_vm_shutdown(struct ctl *c, int argc, char **argv);
int ctl_vm_reboot(struct ctl *c, int argc, char **argv);
int ctl_vm_reset(struct ctl *c, int argc, char **argv);
int ctl_vm_poweroff(struct ctl *c, int argc, char **argv);
int ctl_vm_release(struct ctl *c, int argc, char **argv);
int ctl_vm_migrate(struct ctl *c, int argc, char **argv);
int ctl_vm_prefer(struct ctl *c, int argc, char **argv);
int ctl_node_active(struct ctl *c, int argc, char **argv);
int ctl_node_standby(struct ctl *c, int argc, char **argv);
int ctl_node_maintenance(struct ctl *c, int argc, char **argv);

/* ==== status (ctl-status.c) ==== */

/* Builds the `havenctl status --json` object from domaind's answers:
 * status (the status reply), the rows of cluster, nodes, vms and
 * staged_changes, and the "vm/" entries of status-read (may be NULL).
 * Pure. *ret is new. */
int ctl_status_build(struct json_object *status, struct json_object *cluster_rows,
                     struct json_object *node_rows, struct json_object *vm_rows,
                     struct json_object *staged_rows,
                     struct json_object *vm_entries, struct json_object **ret);
/* Prints that object for people. */
void ctl_status_print(FILE *f, struct json_object *status);

/* ==== fencing (ctl-fence.c) ==== */

/* One node's verdict from the "fencing" status entries of every node: true
 * when some other node's fencer can fence it. *ret_reason (borrowed from
 * the entries, or static) says why not. */
bool ctl_fence_node_fenceable(struct json_object *entries, int64_t node_id,
                              const char *name, const char **ret_reason);
/* Adds "fencing": [{"node", "reason"}] (the nodes nobody can fence) to a
 * status object, from the fencing entries and the node rows. */
int ctl_status_add_fencing(struct json_object *status, struct json_object *entries,
                           struct json_object *node_rows);

/* ==== jobs (ctl-jobs.c) ==== */

/* Subscribes a second connection to events (NULL-terminated names) and
 * returns it in *ret. Returns as ctl_call. */
int ctl_subscribe(struct ctl *c, const char *const *events, struct haven_msg_client **ret);
/* Waits for the next event on sub (or timeout_usec), then drains what else
 * is queued: a burst costs the caller one re-read. CTL_EXIT_OK, or
 * CTL_EXIT_FAILED (printed) when the connection died. */
int ctl_wait_events(struct haven_msg_client *sub, uint64_t timeout_usec);

/* One job_log row as a line: "YYYY-MM-DD HH:MM:SS node source: line". */
char *ctl_format_job_log_line(struct json_object *row);

/* ==== VMs and node states (ctl-vm.c) ==== */

/* How long the waiting commands wait by default (--timeout overrides). */
#define CTL_VM_WAIT_SEC 120u
#define CTL_VM_MIGRATE_WAIT_SEC 600u
#define CTL_NODE_DRAIN_WAIT_SEC 1800u
#define CTL_WAIT_SEC_MAX 86400u

/* A --timeout: whole seconds, 1..CTL_WAIT_SEC_MAX, plain decimal (no
 * sign, blank or leading zero). 0 and *ret, or -EINVAL. */
int ctl_parse_seconds(const char *s, unsigned *ret);
/* Whether command is a vm_commands command (start, shutdown, reboot,
 * reset, poweroff, migrate, release). NULL is not. */
bool ctl_vm_command_known(const char *command);
/* The audit text of a VM command: "vm web1: start", "vm web1: migrate to
 * node2" (target NULL: none). Caller frees; NULL on -ENOMEM. */
char *ctl_vm_command_summary(const char *command, const char *vm, const char *target);
/* The op inserting a vm_commands row {vm_id, command[, target_node_id]}
 * (target_node_id <= 0: none). NULL on -ENOMEM. */
struct json_object *ctl_vm_command_op(int64_t vm_id, const char *command,
                                      int64_t target_node_id);
/* A command row's state as one line for people: "running", "done: RESULT"
 * ("done." without a result), "failed: RESULT", terminal-safe. Caller
 * frees; NULL on -ENOMEM. */
char *ctl_vm_command_line(struct json_object *row);

/* Where VM name runs, from "vm/" status entries ({node, key, value}; the
 * value an object with "state", or a bare state string): *ret_node gets
 * the nodes whose report says running, paused or migrating-out, joined by
 * "," in entry order (several: a visible anomaly; a migration's target is
 * not counted while its source reports migrating-out), named from members
 * (status members {id, name}; may be NULL), else node_rows, else "node N";
 * *ret_state their states joined alike, or, when it runs nowhere, the other
 * reports' distinct states ("stopped", "crashed"). Either is NULL when there
 * is nothing to say. Pure; the caller frees both. */
int ctl_vm_runtime(const char *name, struct json_object *entries, struct json_object *members,
                   struct json_object *node_rows, char **ret_node, char **ret_state);
/* `vm list --json` (pure): one object per VM row, in their order: name, id,
 * node (where it runs, as ctl_vm_runtime; null: nowhere), state (the
 * placement's, "stopped" without one; the reported state when it runs
 * while the placement says otherwise, except migrating/stopping), ha,
 * preferred_node (a name, null), priority, memory_mib, reason (the
 * placement's, null when empty). Any argument may be NULL. *ret is new. */
int ctl_vm_list_build(struct json_object *vm_rows, struct json_object *placement_rows,
                      struct json_object *node_rows, struct json_object *entries,
                      struct json_object **ret);
void ctl_vm_list_print(FILE *f, struct json_object *list);
/* `vm show --json` (pure): the vm list object of vm_row, plus "vm" (the
 * row), "placement" (its row with "node"/"target_node" named, or null),
 * "last_migration" (from the reports, node ids named "from"/"to", or
 * null), "reports" (each node's entry: {"node", "node_id", ...value}),
 * "commands" (its open ones, pending or running, oldest first) and
 * "last_command" (its newest finished one, or null). *ret is new. */
int ctl_vm_show_build(struct json_object *vm_row, struct json_object *placement_rows,
                      struct json_object *node_rows, struct json_object *entries,
                      struct json_object *command_rows, struct json_object **ret);
void ctl_vm_show_print(FILE *f, struct json_object *show);
/* The VMs node_id reports running (running, paused, migrating-out), from
 * "vm/" entries: [{"name", "state"[, "percent"]}]. Pure; *ret is new. */
int ctl_node_running_vms(struct json_object *entries, int64_t node_id, struct json_object **ret);
/* "node2 still runs 2 VMs: web1 (migrating, 40%), db1", or "node2 runs no
 * VM any more." Terminal-safe; caller frees; NULL on -ENOMEM. */
char *ctl_node_drain_line(const char *node, struct json_object *running);
