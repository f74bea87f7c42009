/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven-httpd (daemons/httpd/): the real server
 * (libmicrohttpd on the loop, 127.0.0.x only, a free port) driven by
 * clients in this process: plain sockets, GnuTLS for HTTPS, a wslay
 * WebSocket client for consoles, never blocking (every wait pumps the
 * loop and is bounded by a deadline, never by sleeping).
 *
 * What runs for real: haven-httpd itself; haven-fenced and the lab's PDU
 * simulator (haven-pdusim, a net-snmp agent) for the fencing endpoints;
 * Debian's fence-agents for the agent list and metadata; ping for the
 * network check. Test doubles, and why: haven-domaind needs corosync for
 * anything but reads, so a stand-in on a real haven/msg.h socket answers
 * its protocol (docs/domain.md: status, query, snapshot, submit with
 * insert, update, delete, stage, activate and discard, refs and the failing
 * op's index, the status map, subscribe, cluster-create/-join,
 * node-remove) from tables in memory (the lab's system tests run the real
 * one; the real one answers the snapshot request here, since reads need no
 * corosync); QEMU's VNC server is a local TCP server
 * that greets like RFB and echoes (the lab runs real VMs). Pure
 * parts (path decoding, sessions, throttling, Accept-Encoding, hashed
 * names, the diff, the dashboard, samples, ping output, the fencing
 * merge, peer HMACs) are tested directly, with time as an argument.
 *
 * Bad inputs tried:
 *   routing: unknown paths inside and outside /api, wrong methods on
 *     every route, an unknown method, paths with %2e%2e, %2f, %00, %zz,
 *     control characters, "." and ".." segments, overlong paths, row ids
 *     "abc", "0", "007", 2^63, unknown and malformed query flags and
 *     integer parameters (?limit=0, 1001, -1, 1e3, x), too many query
 *     parameters;
 *   bodies, on every route that takes one (generated from its policy):
 *     not JSON, an empty body, an unknown field, each required field
 *     missing, each field of the wrong type, each range and length
 *     exceeded both ways, a body over the route's limit; and by hand:
 *     trailing garbage, an array, JSON null, a body on a bodiless route,
 *     a wrong Content-Type, a chunked body over the limit, a malformed
 *     Content-Length, arrays of the wrong element type, a bad MAC, an
 *     empty PATCH, an address that is no IP;
 *   sessions: no cookie, a malformed, unknown, expired, logged-out and
 *     evicted token, a missing and a wrong CSRF token on every write;
 *   logins: wrong passwords, unknown names, names with control
 *     characters, repeated failures per account and per address, the
 *     right password while blocked, parallel attempts;
 *   VM actions: an unknown VM (every action), an unknown, empty, null,
 *     numeric, array and missing target node, an extra field, a body on a
 *     bodiless action, no body for migrate, an unknown action, VM ids 0 and
 *     "abc", a VM deleted before the insert (the domain refuses vm_id);
 *     a VM's commands of an unknown VM and with ?limit=0;
 *   domain answers: no quorum, conflict, invalid (with a field),
 *     not-found, syncing, internal, an unknown code, no answer at all,
 *     haven-domaind and haven-fenced gone;
 *   setup: cluster-create and -join once in a cluster, network checks
 *     beyond the MTU range, to a name, to nowhere, a join's own address
 *     that is too short; sysfs trees with odd entries (see
 *     interfaces_are_read_from_sysfs_and_getifaddrs);
 *   batches: see batch_errors_name_the_item_and_field; snapshots: see
 *     real_domaind_answers_snapshot_requests;
 *   certificates: garbage, a key of another certificate, an expired one;
 *   consoles: no Upgrade, a wrong version, a bad key, a foreign Origin, a
 *     VM that runs nowhere or has no VNC port, a splice without or with a
 *     forged or stale HMAC, a VNC server that goes away;
 *   static files: ../, %2e%2e%2f, %2f..%2f, an encoded NUL, hidden
 *     files, symbolic links to a file and to a directory outside, missing
 *     files, q=0 for gzip;
 *   connections: 100 slow partial requests, silent connections, more
 *     connections from one address than allowed, an event stream whose
 *     client does not read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <wslay/wslay.h>

#include "haven/log.h"
#include "haven/msg.h"
#include "haven/peer.h"
#include "../../daemons/httpd/httpd.h"

#include "test-util.h"
#include "test-tmp.h"

#define WAIT_USEC (10u * 1000u * 1000u)
#define ADMIN "admin"
#define PASSWORD "correct horse battery"
#define STANDINS_MAX 2
#define SUBSCRIBERS_MAX 8

/* ==== The haven-domaind stand-in ==== */

/* What every stand-in (one per node) shares: the cluster's tables and
 * status map, and the faults to inject. */
struct standin_data {
        bool quorate;
        bool silent;              /* answer nothing (waiting tests) */
        const char *submit_error; /* answer submits with this code */
        const char *submit_error_field;
        struct json_object *tables;      /* table name → rows */
        struct json_object *entries;     /* [{node, key, value}] */
        struct json_object *last_submit; /* the request, as received */
        unsigned n_queries, n_submits;
        int64_t version;
        bool offline[8]; /* by node id: members that are not online */
};

struct fixture;

/* One node's haven-domaind socket. */
struct standin {
        struct fixture *fixture;
        struct haven_msg_server *server;
        char path[128];
        int64_t node_id;
        const char *node_name;
        struct haven_msg_conn *subscribers[SUBSCRIBERS_MAX];
        size_t n_subscribers;
};

struct fixture {
        char dir[64], ui[96], state[96], socket[96], socket2[96],
                fenced_socket[96], authkey[96], proc[96], cert[128], key[128];
        sd_event *event;
        struct standin_data domain;
        struct standin node[STANDINS_MAX];
        struct httpd_config config, config2;
        struct httpd *httpd, *httpd2;
        uint16_t port, port2;
        pid_t fenced, pdusim, vnc_child, domaind;
        uint16_t pdusim_port;
};

static const char *const known_tables[] = {
        "cluster",
        "nodes",
        "networks",
        "hosts",
        "infrastructure",
        "administrators",
        "fence_devices",
        "fence_outlets",
        "fence_requests",
        "disks",
        "vms",
        "vm_disks",
        "vm_nics",
        "vm_cdroms",
        "vm_placements",
        "vm_commands",
        "staged_changes",
        "jobs",
        "job_log",
        "audit",
        "alerts",
        NULL,
};

static const char *admin_hash(void) {
        static char hash[CRYPT_OUTPUT_SIZE];
        struct crypt_data data = {};
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];

        if (!hash[0]) {
                assert_non_null(
                        crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt));
                assert_non_null(crypt_rn(PASSWORD, salt, &data, sizeof data));
                snprintf(hash, sizeof hash, "%s", data.output);
        }
        return hash;
}

static bool table_known(const char *name) {
        for (size_t i = 0; known_tables[i]; i++)
                if (streq(known_tables[i], name))
                        return true;
        return false;
}

/* The rows of table (borrowed; created empty for a known table). */
static struct json_object *table_rows(struct json_object *tables,
                                      const char *name) {
        struct json_object *rows;

        if (!json_object_object_get_ex(tables, name, &rows)) {
                rows = json_object_new_array();
                json_object_object_add(tables, name, rows);
        }
        return rows;
}

static struct json_object *row_by_id(struct json_object *rows, int64_t id,
                                     size_t *ret_index) {
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t v = 0;

                (void) haven_json_get_int64(row, "id", &v);
                if (v == id) {
                        if (ret_index)
                                *ret_index = i;
                        return row;
                }
        }
        return NULL;
}

static bool json_same(struct json_object *a, struct json_object *b) {
        return streq(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                     json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
}

static int standin_send(struct haven_msg_conn *conn, struct json_object *req,
                        struct json_object *reply) {
        struct json_object *tag;

        if (json_object_object_get_ex(req, "tag", &tag))
                json_object_object_add(reply, "tag", json_object_get(tag));
        return haven_msg_conn_send(conn, reply);
}

static int standin_error(struct haven_msg_conn *conn, struct json_object *req,
                         const char *code, const char *message,
                         const char *field) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *e = json_object_new_object();

        json_object_object_add(e, "code", json_object_new_string(code));
        json_object_object_add(e, "message", json_object_new_string(message));
        json_object_object_add(e, "field", haven_json_string_or_null(field));
        json_object_object_add(o, "error", e);
        return standin_send(conn, req, o);
}

/* The same, naming the op of a transaction that failed (op >= 0), as
 * domaind does. */
static int standin_error_op(struct haven_msg_conn *conn,
                            struct json_object *req, const char *code,
                            const char *message, const char *field, int op) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *e = json_object_new_object();

        json_object_object_add(e, "code", json_object_new_string(code));
        json_object_object_add(e, "message", json_object_new_string(message));
        json_object_object_add(e, "field", haven_json_string_or_null(field));
        if (op >= 0)
                json_object_object_add(e, "op", json_object_new_int64(op));
        json_object_object_add(o, "error", e);
        return standin_send(conn, req, o);
}

/* Sends event to every subscriber of every node. */
static void standin_broadcast(struct fixture *f, struct json_object *event) {
        for (size_t n = 0; n < STANDINS_MAX; n++)
                for (size_t i = 0; i < f->node[n].n_subscribers; i++)
                        (void) haven_msg_conn_send(f->node[n].subscribers[i],
                                                   event);
}

static int standin_query(struct standin *s, struct haven_msg_conn *conn,
                         struct json_object *req) {
        struct standin_data *d = &s->fixture->domain;
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *rows = json_object_new_array(), *where = NULL, *all;
        const char *table = "";

        (void) haven_json_get_string(req, "table", &table);
        (void) haven_json_get_object(req, "where", &where);
        d->n_queries++;
        if (!table_known(table)) {
                json_object_put(rows);
                return standin_error(conn, req, "invalid", "unknown table",
                                     "table");
        }
        all = table_rows(d->tables, table);
        for (size_t i = 0; i < json_object_array_length(all); i++) {
                struct json_object *row = json_object_array_get_idx(all, i);
                bool match = true;

                if (where) {
                        json_object_object_foreach(where, key, value) {
                                struct json_object *v = NULL;

                                (void) json_object_object_get_ex(row, key, &v);
                                if (!json_same(v, value))
                                        match = false;
                        }
                }
                if (match)
                        json_object_array_add(rows, json_object_get(row));
        }
        json_object_object_add(o, "rows", rows);
        return standin_send(conn, req, o);
}

/* ==== The stand-in's transactions ==== */

struct txn {
        struct json_object *tables; /* a copy, replaced on success */
        int64_t version;
        const char *actor;
        struct json_object *touched; /* table names */
        const char *code, *field;
        char message[128];
        int op; /* the top-level op that failed, or -1 */
};

static int txn_fail(struct txn *t, const char *code, const char *field,
                    const char *message) {
        t->code = code;
        t->field = field;
        snprintf(t->message, sizeof t->message, "%s", message);
        return -EINVAL;
}

static void txn_touch(struct txn *t, const char *table) {
        for (size_t i = 0; i < json_object_array_length(t->touched); i++)
                if (streq(json_object_get_string(
                                  json_object_array_get_idx(t->touched, i)),
                          table))
                        return;
        json_object_array_add(t->touched, json_object_new_string(table));
}

static int64_t next_id(struct json_object *rows) {
        int64_t max = 0;

        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                int64_t v = 0;

                (void) haven_json_get_int64(json_object_array_get_idx(rows, i),
                                            "id", &v);
                if (v > max)
                        max = v;
        }
        return max + 1;
}

static int txn_apply(struct txn *t, struct json_object *ops,
                     struct json_object *results);

static int txn_insert(struct txn *t, const char *table,
                      struct json_object *values, int64_t *ret_id) {
        struct json_object *rows = table_rows(t->tables, table), *row;
        const char *name;
        int64_t node = 0;

        /* The two rules of the domain's the tests rely on. */
        if (haven_json_get_string(values, "name", &name) >= 0)
                for (size_t i = 0; i < json_object_array_length(rows); i++) {
                        const char *other = NULL;

                        (void) haven_json_get_string(
                                json_object_array_get_idx(rows, i), "name",
                                &other);
                        if (other && streq(other, name))
                                return txn_fail(t, "invalid", "name",
                                                "the name is taken");
                }
        if (streq(table, "fence_requests") &&
            haven_json_get_int64(values, "node_id", &node) >= 0)
                for (size_t i = 0; i < json_object_array_length(rows); i++) {
                        struct json_object *r =
                                json_object_array_get_idx(rows, i);
                        const char *state = "pending";
                        int64_t other = 0;

                        (void) haven_json_get_int64(r, "node_id", &other);
                        (void) haven_json_get_string(r, "state", &state);
                        if (other == node && (streq(state, "pending") ||
                                              streq(state, "running")))
                                return txn_fail(t, "invalid", "node_id",
                                                "the node has an open "
                                                "request");
                }
        row = json_object_new_object();
        *ret_id = next_id(rows);
        json_object_object_add(row, "id", json_object_new_int64(*ret_id));
        json_object_object_add(row, "version",
                               json_object_new_int64(t->version));
        if (streq(table, "fence_requests")) {
                json_object_object_add(row, "state",
                                       json_object_new_string("pending"));
                json_object_object_add(row, "action",
                                       json_object_new_string("off"));
        }
        if (streq(table, "vm_commands")) {
                /* The schema's default and filled-in columns. */
                json_object_object_add(row, "state",
                                       json_object_new_string("pending"));
                json_object_object_add(row, "requested_by",
                                       json_object_new_string(t->actor));
                json_object_object_add(
                        row, "requested_at",
                        json_object_new_int64(
                                (int64_t) haven_now_usec(CLOCK_REALTIME)));
                json_object_object_add(row, "result",
                                       json_object_new_string(""));
        }
        json_object_object_foreach(values, key, value)
                json_object_object_add(row, key, json_object_get(value));
        json_object_array_add(rows, row);
        txn_touch(t, table);
        return 0;
}

static int txn_op(struct txn *t, struct json_object *op, int64_t *ret_id) {
        const char *kind = "", *table = "";
        struct json_object *values = NULL, *rows, *row;
        int64_t id = 0, expect = -1, version = 0;
        size_t index;

        *ret_id = 0;
        (void) haven_json_get_string(op, "op", &kind);
        (void) haven_json_get_string(op, "table", &table);
        (void) haven_json_get_object(op, "values", &values);
        (void) haven_json_get_int64(op, "id", &id);
        (void) haven_json_get_int64(op, "expect_version", &expect);

        if (streq(kind, "stage")) {
                struct json_object *inner = NULL, *v = json_object_new_object();
                const char *summary = "";

                (void) haven_json_get_array(op, "ops", &inner);
                (void) haven_json_get_string(op, "summary", &summary);
                json_object_object_add(v, "ops", json_object_get(inner));
                json_object_object_add(v, "summary",
                                       json_object_new_string(summary));
                json_object_object_add(v, "created_by",
                                       json_object_new_string(t->actor));
                json_object_object_add(
                        v, "created_at",
                        json_object_new_int64(
                                (int64_t) haven_now_usec(CLOCK_REALTIME)));
                int r = txn_insert(t, "staged_changes", v, ret_id);
                json_object_put(v);
                return r;
        }
        if (streq(kind, "activate")) {
                struct json_object *staged = table_rows(t->tables,
                                                        "staged_changes"),
                                   *job = json_object_new_object(), *cluster;
                int r = 0;

                for (size_t i = 0;
                     r >= 0 && i < json_object_array_length(staged); i++) {
                        struct json_object *inner = NULL,
                                           *results = json_object_new_array();

                        (void) haven_json_get_array(
                                json_object_array_get_idx(staged, i), "ops",
                                &inner);
                        r = txn_apply(t, inner, results);
                        json_object_put(results);
                }
                if (r < 0) {
                        json_object_put(job);
                        t->op = -1;
                        return r;
                }
                json_object_object_add(t->tables, "staged_changes",
                                       json_object_new_array());
                txn_touch(t, "staged_changes");
                cluster = json_object_array_get_idx(
                        table_rows(t->tables, "cluster"), 0);
                if (cluster) {
                        int64_t cv = 0;

                        (void) haven_json_get_int64(cluster, "config_version",
                                                    &cv);
                        json_object_object_add(cluster, "config_version",
                                               json_object_new_int64(cv + 1));
                }
                json_object_object_add(job, "kind",
                                       json_object_new_string("activate"));
                json_object_object_add(job, "state",
                                       json_object_new_string("running"));
                json_object_object_add(job, "created_by",
                                       json_object_new_string(t->actor));
                r = txn_insert(t, "jobs", job, ret_id);
                json_object_put(job);
                return r;
        }
        if (streq(kind, "discard")) {
                json_object_object_add(t->tables, "staged_changes",
                                       json_object_new_array());
                txn_touch(t, "staged_changes");
                return 0;
        }
        if (!table_known(table))
                return txn_fail(t, "invalid", "table", "unknown table");
        if (streq(kind, "insert"))
                return txn_insert(t, table, values, ret_id);
        rows = table_rows(t->tables, table);
        row = row_by_id(rows, id, &index);
        if (!row)
                return txn_fail(t, "not-found", "id", "no such row");
        (void) haven_json_get_int64(row, "version", &version);
        if (expect >= 0 && expect != version)
                return txn_fail(t, "conflict", NULL, "the row changed");
        txn_touch(t, table);
        *ret_id = id;
        if (streq(kind, "delete")) {
                json_object_array_del_idx(rows, index, 1);
                return 0;
        }
        if (!streq(kind, "update"))
                return txn_fail(t, "invalid", "op", "unknown op");
        json_object_object_foreach(values, key, value)
                json_object_object_add(row, key, json_object_get(value));
        json_object_object_add(row, "version",
                               json_object_new_int64(t->version));
        return 0;
}

/* op with each {"ref": N} of its values as the id op N made (results),
 * as the domain resolves them. A new reference. */
static struct json_object *op_resolved(struct json_object *op,
                                       struct json_object *results) {
        struct json_object *copy = NULL, *values;

        assert_int_equal(json_object_deep_copy(op, &copy, NULL), 0);
        if (haven_json_get_object(copy, "values", &values) < 0)
                return copy;
        json_object_object_foreach(values, key, value) {
                int64_t n, id = 0;

                if (!json_object_is_type(value, json_type_object) ||
                    haven_json_get_int64(value, "ref", &n) < 0)
                        continue;
                assert_true(n >= 0 &&
                            (size_t) n < json_object_array_length(results));
                (void) haven_json_get_int64(
                        json_object_array_get_idx(results, (size_t) n), "id",
                        &id);
                json_object_object_add(values, key, json_object_new_int64(id));
        }
        return copy;
}

static int txn_apply(struct txn *t, struct json_object *ops,
                     struct json_object *results) {
        for (size_t i = 0; i < json_object_array_length(ops); i++) {
                _cleanup_(json_object_putp) struct json_object *op =
                        op_resolved(json_object_array_get_idx(ops, i),
                                    results);
                struct json_object *result;
                int64_t id;
                int r = txn_op(t, op, &id);

                if (r < 0) {
                        if (t->op < 0)
                                t->op = (int) i;
                        return r;
                }
                result = json_object_new_object();
                if (id)
                        json_object_object_add(result, "id",
                                               json_object_new_int64(id));
                json_object_array_add(results, result);
        }
        return 0;
}

/* Commits ops (or fails as a whole), broadcasts the commit. */
static int standin_commit(struct fixture *f, struct json_object *ops,
                          const char *actor, struct json_object **ret_results,
                          struct txn *ret_txn) {
        struct standin_data *d = &f->domain;
        _cleanup_(json_object_putp) struct json_object *copy = NULL,
                                                       *results = NULL,
                                                       *event = NULL;
        int r;

        assert_int_equal(json_object_deep_copy(d->tables, &copy, NULL), 0);
        *ret_txn = (struct txn){.tables = copy,
                                .version = d->version + 1,
                                .actor = actor,
                                .touched = json_object_new_array(),
                                .op = -1};
        results = json_object_new_array();
        r = txn_apply(ret_txn, ops, results);
        if (r < 0) {
                json_object_put(ret_txn->touched);
                return r;
        }
        json_object_put(d->tables);
        d->tables = TAKE_PTR(copy);
        d->version++;
        event = json_object_new_object();
        json_object_object_add(event, "event",
                               json_object_new_string("commit"));
        json_object_object_add(event, "version",
                               json_object_new_int64(d->version));
        json_object_object_add(event, "tables", ret_txn->touched);
        json_object_object_add(event, "actor", json_object_new_string(actor));
        standin_broadcast(f, event);
        *ret_results = TAKE_PTR(results);
        return 0;
}

static int standin_submit(struct standin *s, struct haven_msg_conn *conn,
                          struct json_object *req) {
        struct standin_data *d = &s->fixture->domain;
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *ops = NULL, *results = NULL;
        const char *actor = "?";
        struct txn t;

        d->n_submits++;
        json_object_put(d->last_submit);
        d->last_submit = json_object_get(req);
        if (!d->quorate)
                return standin_error(conn, req, "no-quorum",
                                     "votequorum says no", NULL);
        if (d->submit_error)
                return standin_error(conn, req, d->submit_error,
                                     "refused by the stand-in",
                                     d->submit_error_field);
        (void) haven_json_get_array(req, "ops", &ops);
        (void) haven_json_get_string(req, "actor", &actor);
        if (standin_commit(s->fixture, ops, actor, &results, &t) < 0)
                return standin_error_op(conn, req, t.code, t.message, t.field,
                                        t.op);
        json_object_object_add(o, "version", json_object_new_int64(d->version));
        json_object_object_add(o, "results", results);
        return standin_send(conn, req, o);
}

/* ==== The stand-in's status map and the rest ==== */

static int standin_status(struct standin *s, struct haven_msg_conn *conn,
                          struct json_object *req) {
        struct standin_data *d = &s->fixture->domain;
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *members = json_object_new_array(),
                           *nodes = table_rows(d->tables, "nodes"),
                           *cluster = json_object_array_get_idx(
                                   table_rows(d->tables, "cluster"), 0),
                           *cv = NULL;

        for (size_t i = 0; i < json_object_array_length(nodes); i++) {
                struct json_object *n = json_object_array_get_idx(nodes, i),
                                   *m = json_object_new_object(), *v;
                int64_t id = 0;

                (void) haven_json_get_int64(n, "node_id", &id);
                json_object_object_add(m, "id", json_object_new_int64(id));
                if (json_object_object_get_ex(n, "name", &v))
                        json_object_object_add(m, "name", json_object_get(v));
                if (json_object_object_get_ex(n, "state", &v))
                        json_object_object_add(m, "state", json_object_get(v));
                json_object_object_add(
                        m, "online",
                        json_object_new_boolean(id < 0 || id >= 8 ||
                                                !d->offline[id]));
                json_object_array_add(members, m);
        }
        if (cluster)
                (void) json_object_object_get_ex(cluster, "config_version",
                                                 &cv);
        json_object_object_add(o, "quorate",
                               json_object_new_boolean(d->quorate));
        json_object_object_add(o, "synced", json_object_new_boolean(true));
        json_object_object_add(o, "version", json_object_new_int64(d->version));
        json_object_object_add(o, "config_version",
                               cv ? json_object_get(cv)
                                  : json_object_new_int64(0));
        json_object_object_add(o, "checksum",
                               json_object_new_string("0000000000000000"));
        json_object_object_add(o, "node_id",
                               cluster ? json_object_new_int64(s->node_id)
                                       : NULL);
        json_object_object_add(o, "node_name",
                               json_object_new_string(s->node_name));
        json_object_object_add(o, "members", members);
        json_object_object_add(o, "manager", NULL);
        return standin_send(conn, req, o);
}

/* Puts (value non-NULL) or removes this node's entry key, as domaind's
 * status-publish, and tells the subscribers. */
static void standin_entry(struct fixture *f, int64_t node, const char *key,
                          struct json_object *value) {
        struct standin_data *d = &f->domain;
        _cleanup_(json_object_putp) struct json_object *event =
                json_object_new_object();

        for (size_t i = 0; i < json_object_array_length(d->entries); i++) {
                struct json_object *e =
                        json_object_array_get_idx(d->entries, i);
                const char *k = "";
                int64_t n = 0;

                (void) haven_json_get_string(e, "key", &k);
                (void) haven_json_get_int64(e, "node", &n);
                if (n == node && streq(k, key)) {
                        json_object_array_del_idx(d->entries, i, 1);
                        break;
                }
        }
        if (value) {
                struct json_object *e = json_object_new_object();

                json_object_object_add(e, "node", json_object_new_int64(node));
                json_object_object_add(e, "key", json_object_new_string(key));
                json_object_object_add(e, "value", json_object_get(value));
                json_object_array_add(d->entries, e);
        }
        json_object_object_add(event, "event",
                               json_object_new_string("status"));
        json_object_object_add(event, "node", json_object_new_int64(node));
        json_object_object_add(event, "key", json_object_new_string(key));
        json_object_object_add(event, "value", json_object_get(value));
        standin_broadcast(f, event);
}

static int standin_status_read(struct standin *s, struct haven_msg_conn *conn,
                               struct json_object *req) {
        struct standin_data *d = &s->fixture->domain;
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *entries = json_object_new_array();
        const char *prefix = "";
        int64_t node = 0;

        (void) haven_json_get_string(req, "prefix", &prefix);
        (void) haven_json_get_int64(req, "node", &node);
        for (size_t i = 0; i < json_object_array_length(d->entries); i++) {
                struct json_object *e =
                        json_object_array_get_idx(d->entries, i);
                const char *k = "";
                int64_t n = 0;

                (void) haven_json_get_string(e, "key", &k);
                (void) haven_json_get_int64(e, "node", &n);
                if (strncmp(k, prefix, strlen(prefix)) == 0 &&
                    (!node || n == node))
                        json_object_array_add(entries, json_object_get(e));
        }
        json_object_object_add(o, "entries", entries);
        return standin_send(conn, req, o);
}

/* domaind's snapshot of the tables named (all known ones without
 * "tables"): {version, checksum, tables: {name: {columns, rows}}}, the
 * columns those of the rows (id and version first). */
static int standin_snapshot(struct standin *s, struct haven_msg_conn *conn,
                            struct json_object *req) {
        struct standin_data *d = &s->fixture->domain;
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *want = NULL, *tables = json_object_new_object();

        d->n_queries++;
        json_object_put(d->last_submit);
        d->last_submit = json_object_get(req);
        (void) haven_json_get_array(req, "tables", &want);
        for (size_t i = 0; known_tables[i]; i++) {
                struct json_object *rows = table_rows(d->tables,
                                                      known_tables[i]),
                                   *columns = json_object_new_array(),
                                   *cells = json_object_new_array(), *t;
                bool wanted = !want;

                for (size_t k = 0; want && k < json_object_array_length(want);
                     k++)
                        if (streq(json_object_get_string(
                                          json_object_array_get_idx(want, k)),
                                  known_tables[i]))
                                wanted = true;
                if (!wanted) {
                        json_object_put(columns);
                        json_object_put(cells);
                        continue;
                }
                if (json_object_array_length(rows) > 0) {
                        json_object_object_foreach(
                                json_object_array_get_idx(rows, 0), key, v) {
                                (void) v;
                                json_object_array_add(
                                        columns, json_object_new_string(key));
                        }
                }
                for (size_t r = 0; r < json_object_array_length(rows); r++) {
                        struct json_object *row = json_object_new_array();

                        for (size_t c = 0;
                             c < json_object_array_length(columns); c++)
                                json_object_array_add(
                                        row,
                                        json_object_get(json_object_object_get(
                                                json_object_array_get_idx(rows,
                                                                          r),
                                                json_object_get_string(
                                                        json_object_array_get_idx(
                                                                columns,
                                                                c)))));
                        json_object_array_add(cells, row);
                }
                t = json_object_new_object();
                json_object_object_add(t, "columns", columns);
                json_object_object_add(t, "rows", cells);
                json_object_object_add(tables, known_tables[i], t);
        }
        json_object_object_add(o, "version", json_object_new_int64(d->version));
        json_object_object_add(o, "checksum",
                               json_object_new_string("00000000000000ab"));
        json_object_object_add(o, "tables", tables);
        return standin_send(conn, req, o);
}

static int standin_cluster(struct standin *s, struct haven_msg_conn *conn,
                           struct json_object *req, bool create) {
        struct fixture *f = s->fixture;
        _cleanup_(json_object_putp) struct json_object
                *o = json_object_new_object(),
                *ops = json_object_new_array(), *results = NULL;
        struct json_object *v;
        const char *name = "joined";
        struct txn t;

        json_object_put(f->domain.last_submit);
        f->domain.last_submit = json_object_get(req);
        /* A join the member refuses, or whose member does not answer (the
         * fresh node's domaind says so without a field). */
        if (!create) {
                const char *password = "", *address = "";

                (void) haven_json_get_string(req, "password", &password);
                (void) haven_json_get_string(req, "address", &address);
                if (streq(password, "wrong"))
                        return standin_error(conn, req, "denied",
                                             "wrong administrator name or "
                                             "password",
                                             NULL);
                if (streq(address, "198.18.0.99"))
                        return standin_error(conn, req, "unreachable",
                                             "could not reach the member: no "
                                             "answer in time",
                                             NULL);
        }
        (void) haven_json_get_string(req, "name", &name);
        if (json_object_array_length(table_rows(f->domain.tables, "cluster")) >
            0)
                return standin_error(conn, req, "invalid",
                                     "this node is in a cluster already", NULL);
        v = json("{\"op\": \"insert\", \"table\": \"cluster\", "
                 "\"values\": {\"config_version\": 0}}");
        json_object_object_add(json_object_object_get(v, "values"), "name",
                               json_object_new_string(name));
        json_object_array_add(ops, v);
        if (standin_commit(f, ops, "haven-domaind", &results, &t) < 0)
                return standin_error(conn, req, t.code, t.message, t.field);
        json_object_object_add(o, "cluster", json_object_new_string(name));
        json_object_object_add(o, "node_id", json_object_new_int64(s->node_id));
        return standin_send(conn, req, o);
}

static int standin_node_remove(struct standin *s, struct haven_msg_conn *conn,
                               struct json_object *req) {
        struct fixture *f = s->fixture;
        struct json_object *nodes = table_rows(f->domain.tables, "nodes");
        const char *name = "";

        /* As domaind: a write, so quorum first. */
        if (!f->domain.quorate)
                return standin_error(conn, req, "no-quorum",
                                     "votequorum says no", NULL);
        (void) haven_json_get_string(req, "node", &name);
        for (size_t i = 0; i < json_object_array_length(nodes); i++) {
                const char *n = "";
                int64_t id = 0, version = 0;

                (void) haven_json_get_string(
                        json_object_array_get_idx(nodes, i), "name", &n);
                (void) haven_json_get_int64(json_object_array_get_idx(nodes, i),
                                            "id", &id);
                (void) haven_json_get_int64(json_object_array_get_idx(nodes, i),
                                            "version", &version);
                if (streq(n, name)) {
                        _cleanup_(json_object_putp) struct json_object
                                *ops = json_object_new_array(),
                                *results = NULL, *o = NULL;
                        struct json_object *op = json_object_new_object();
                        struct txn t;

                        json_object_object_add(
                                op, "op", json_object_new_string("delete"));
                        json_object_object_add(op, "table",
                                               json_object_new_string("nodes"));
                        json_object_object_add(op, "id",
                                               json_object_new_int64(id));
                        json_object_array_add(ops, op);
                        assert_int_equal(
                                standin_commit(f, ops, "api", &results, &t), 0);
                        o = json("{\"ok\": true}");
                        return standin_send(conn, req, o);
                }
        }
        return standin_error(conn, req, "not-found", "no such node", "node");
}

static int standin_handler(struct haven_msg_conn *conn, struct json_object *req,
                           void *userdata) {
        struct standin *s = userdata;
        struct standin_data *d = &s->fixture->domain;
        const char *name = "";

        (void) haven_json_get_string(req, "request", &name);
        if (streq(name, "subscribe")) {
                _cleanup_(json_object_putp) struct json_object *o =
                        json("{\"subscribed\": true}");

                assert_true(s->n_subscribers < SUBSCRIBERS_MAX);
                s->subscribers[s->n_subscribers++] = haven_msg_conn_ref(conn);
                return standin_send(conn, req, o);
        }
        if (d->silent)
                return 0;
        if (streq(name, "status"))
                return standin_status(s, conn, req);
        if (streq(name, "query"))
                return standin_query(s, conn, req);
        if (streq(name, "snapshot"))
                return standin_snapshot(s, conn, req);
        if (streq(name, "submit"))
                return standin_submit(s, conn, req);
        if (streq(name, "status-read"))
                return standin_status_read(s, conn, req);
        if (streq(name, "status-publish")) {
                _cleanup_(json_object_putp) struct json_object *o =
                        json("{\"ok\": true}");
                struct json_object *value = NULL;
                const char *key = "";

                (void) haven_json_get_string(req, "key", &key);
                (void) json_object_object_get_ex(req, "value", &value);
                standin_entry(s->fixture, s->node_id, key, value);
                return standin_send(conn, req, o);
        }
        if (streq(name, "cluster-create") || streq(name, "cluster-join"))
                return standin_cluster(s, conn, req,
                                       streq(name, "cluster-create"));
        if (streq(name, "node-remove"))
                return standin_node_remove(s, conn, req);
        return standin_error(conn, req, "invalid", "unknown request",
                             "request");
}

static void standin_start_node(struct fixture *f, size_t n) {
        struct standin *s = &f->node[n];
        struct haven_msg_server_config config = {
                .path = s->path,
                .mode = 0600,
                .handler = standin_handler,
                .userdata = s,
        };

        assert_int_equal(haven_msg_server_new(f->event, &config, &s->server),
                         0);
}

static void standin_stop_node(struct fixture *f, size_t n) {
        struct standin *s = &f->node[n];

        for (size_t i = 0; i < s->n_subscribers; i++)
                haven_msg_conn_unref(s->subscribers[i]);
        s->n_subscribers = 0;
        s->server = haven_msg_server_free(s->server);
}

static void standin_start(struct fixture *f) {
        standin_start_node(f, 0);
}

static void standin_stop(struct fixture *f) {
        standin_stop_node(f, 0);
}

/* Pushes an event to node 1's subscribers (httpd's), as domaind does. */
static void standin_push(struct fixture *f, const char *text) {
        _cleanup_(json_object_putp) struct json_object *o = json(text);

        assert_true(f->node[0].n_subscribers > 0);
        for (size_t i = 0; i < f->node[0].n_subscribers; i++)
                (void) haven_msg_conn_send(f->node[0].subscribers[i], o);
}

/* Replaces table's rows with text (a JSON array). */
static void table_set(struct fixture *f, const char *table, const char *text) {
        json_object_object_add(f->domain.tables, table, json(text));
}

static struct json_object *table_get(struct fixture *f, const char *table) {
        return table_rows(f->domain.tables, table);
}

/* ==== Files ==== */

static void write_file(const char *dir, const char *name, const char *text) {
        char path[256];
        FILE *file;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        file = fopen(path, "we");
        assert_non_null(file);
        fputs(text, file);
        assert_int_equal(fclose(file), 0);
}

/* A gzip member holding "gzipped\n" (gzip -n -9). */
static const unsigned char gz_bytes[] = {
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03,
        0x4b, 0xaf, 0xca, 0x2c, 0x28, 0x48, 0x4d, 0xe1, 0x02, 0x00,
        0x19, 0xa9, 0x5a, 0xe5, 0x08, 0x00, 0x00, 0x00,
};

static void make_ui(struct fixture *f) {
        char path[256];
        int fd;

        assert_int_equal(mkdir(f->ui, 0755), 0);
        snprintf(path, sizeof path, "%s/assets", f->ui);
        assert_int_equal(mkdir(path, 0755), 0);
        write_file(f->ui, "index.html",
                   "<!doctype html><title>Haven</title>\n");
        write_file(f->ui, "assets/app-3f2a9c1e.js", "console.log('app');\n");
        write_file(f->ui, "assets/style.css", "body { margin: 0 }\n");
        write_file(f->ui, "logo.svg", "<svg/>\n");
        write_file(f->ui, ".env", "SECRET\n");
        snprintf(path, sizeof path, "%s/assets/app-3f2a9c1e.js.gz", f->ui);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, gz_bytes, sizeof gz_bytes),
                         (ssize_t) sizeof gz_bytes);
        close(fd);

        /* Outside the UI directory, and links that lead there. */
        write_file(f->dir, "secret.txt", "SECRET\n");
        snprintf(path, sizeof path, "%s/leak.txt", f->ui);
        assert_int_equal(symlink("../secret.txt", path), 0);
        snprintf(path, sizeof path, "%s/leakdir", f->ui);
        assert_int_equal(symlink("..", path), 0);
}

/* ==== Fixture ==== */

static void pump(struct fixture *f, uint64_t usec) {
        assert_true(sd_event_run(f->event, usec) >= 0);
}

/* Runs the loop until h's link to its stand-in has subscribed, knows the
 * cluster state and built the dashboard once: then nothing else talks to
 * the stand-in until a test does. */
static void wait_settled(struct fixture *f, struct httpd *h, size_t n) {
        uint64_t deadline = now_usec() + WAIT_USEC;

        while (f->node[n].n_subscribers == 0 ||
               !httpd_domain_connected(httpd_domain(h)) ||
               httpd_cluster_state(h) == HTTPD_CLUSTER_UNKNOWN ||
               httpd_dashboard_builds(httpd_dashboard(h)) == 0) {
                assert_true(now_usec() < deadline);
                pump(f, 10000);
        }
        for (int i = 0; i < 20; i++)
                pump(f, 1000);
}

static void wait_subscribed(struct fixture *f) {
        wait_settled(f, f->httpd, 0);
}

static void httpd_start(struct fixture *f) {
        assert_int_equal(httpd_new(f->event, &f->config, &f->httpd), 0);
        f->port = httpd_port(f->httpd);
        assert_true(f->port > 0);
}

static void httpd_stop(struct fixture *f) {
        f->httpd = httpd_free(f->httpd);
}

static void start(struct fixture *f) {
        httpd_start(f);
        wait_subscribed(f);
        f->domain.n_queries = 0;
        f->domain.n_submits = 0;
}

static void write_authkey(const char *path) {
        uint8_t key[256];
        int fd;

        assert_int_equal(gnutls_rnd(GNUTLS_RND_RANDOM, key, sizeof key), 0);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0400);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, key, sizeof key), (ssize_t) sizeof key);
        close(fd);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        char row[512];

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-httpd-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->ui, sizeof f->ui, "%s/ui", f->dir);
        snprintf(f->state, sizeof f->state, "%s/state", f->dir);
        snprintf(f->socket, sizeof f->socket, "%s/domaind.sock", f->dir);
        snprintf(f->socket2, sizeof f->socket2, "%s/domaind2.sock", f->dir);
        snprintf(f->fenced_socket, sizeof f->fenced_socket, "%s/fenced.sock",
                 f->dir);
        snprintf(f->authkey, sizeof f->authkey, "%s/authkey", f->dir);
        snprintf(f->proc, sizeof f->proc, "%s/proc", f->dir);
        assert_int_equal(mkdir(f->state, 0700), 0);
        make_ui(f);
        write_authkey(f->authkey);
        assert_int_equal(sd_event_new(&f->event), 0);

        /* A cluster of two nodes; httpd runs on node 1. */
        f->domain.quorate = true;
        f->domain.version = 10;
        f->domain.tables = json_object_new_object();
        f->domain.entries = json_object_new_array();
        table_set(f, "cluster",
                  "[{\"id\": 1, \"version\": 1, \"name\": \"lab\", "
                  "\"uuid\": \"00000000-0000-0000-0000-000000000001\", "
                  "\"config_version\": 3}]");
        table_set(f, "nodes",
                  "[{\"id\": 1, \"version\": 2, \"node_id\": 1, \"name\": "
                  "\"node1\", \"addresses\": [\"127.0.0.1\"], \"state\": "
                  "\"active\", \"memory_mib\": 4096, \"host_reserve_mib\": "
                  "1024, \"esan_member\": false, \"fence_delay_ms\": 0}, "
                  "{\"id\": 2, \"version\": 3, \"node_id\": 2, \"name\": "
                  "\"node2\", \"addresses\": [\"127.0.0.1\"], \"state\": "
                  "\"active\", \"memory_mib\": 4096, \"host_reserve_mib\": "
                  "1024, \"esan_member\": false, \"fence_delay_ms\": 0}]");
        snprintf(row, sizeof row,
                 "[{\"id\": 1, \"version\": 1, \"name\": \"" ADMIN "\", "
                 "\"password_hash\": \"%s\", \"created_at\": 1}]",
                 admin_hash());
        table_set(f, "administrators", row);
        table_set(f, "hosts",
                  "[{\"id\": 3, \"version\": 9, \"name\": \"ntp1\", "
                  "\"address\": \"198.18.0.50\"}]");
        for (size_t n = 0; n < STANDINS_MAX; n++) {
                f->node[n].fixture = f;
                f->node[n].node_id = (int64_t) n + 1;
                f->node[n].node_name = n == 0 ? "node1" : "node2";
                snprintf(f->node[n].path, sizeof f->node[n].path, "%s",
                         n == 0 ? f->socket : f->socket2);
        }
        f->fenced = f->pdusim = f->vnc_child = f->domaind = -1;
        standin_start(f);

        httpd_config_init(&f->config);
        f->config.listen_address = "127.0.0.1";
        f->config.port = 0;
        f->config.tls = false;
        f->config.ui_dir = f->ui;
        f->config.domaind_socket = f->socket;
        f->config.fenced_socket = f->fenced_socket;
        f->config.authkey_path = f->authkey;
        f->config.metrics_dir = f->state;
        f->config.metrics_interval_usec = 0;
        f->config.peer_tls = false;
        snprintf(f->cert, sizeof f->cert, "%s/httpd.crt", f->state);
        snprintf(f->key, sizeof f->key, "%s/httpd.key", f->state);
        f->config.cert_path = f->cert;
        f->config.key_path = f->key;
        *state = f;
        return 0;
}

static void child_stop(pid_t *pid) {
        if (*pid > 0) {
                (void) kill(*pid, SIGTERM);
                (void) waitpid(*pid, NULL, 0);
        }
        *pid = -1;
}

static int teardown(void **state) {
        struct fixture *f = *state;

        f->httpd2 = httpd_free(f->httpd2);
        httpd_stop(f);
        child_stop(&f->fenced);
        child_stop(&f->pdusim);
        child_stop(&f->vnc_child);
        child_stop(&f->domaind);
        for (size_t n = 0; n < STANDINS_MAX; n++)
                standin_stop_node(f, n);
        json_object_put(f->domain.tables);
        json_object_put(f->domain.entries);
        json_object_put(f->domain.last_submit);
        sd_event_unref(f->event);
        remove_tree(f->dir);
        free(f);
        return 0;
}

/* ==== The client ==== */

struct client {
        int fd;
        gnutls_session_t tls;
        gnutls_certificate_credentials_t credentials;
        bool handshaken;
        char *out;
        size_t out_size, out_done;
        char *in;
        size_t in_size;
        bool eof;
};

struct response {
        int status;
        char *head; /* status line and headers */
        char *body;
        size_t body_size;
};

static void response_done(struct response *r) {
        free(r->head);
        free(r->body);
        *r = (struct response){};
}

/* The value of header name (first one), copied into buf; NULL if absent. */
static const char *header(const struct response *r, const char *name, char *buf,
                          size_t size) {
        const char *p = r->head;

        while ((p = strstr(p, "\r\n"))) {
                p += 2;
                if (strncasecmp(p, name, strlen(name)) == 0 &&
                    p[strlen(name)] == ':') {
                        const char *v = p + strlen(name) + 1;
                        size_t n;

                        v += strspn(v, " ");
                        n = strcspn(v, "\r\n");
                        snprintf(buf, size, "%.*s", (int) n, v);
                        return buf;
                }
        }
        return NULL;
}

static struct client *client_connect_from(struct fixture *f, const char *source,
                                          bool tls) {
        struct client *c = calloc(1, sizeof *c);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(f->port)};

        assert_non_null(c);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c->fd >= 0);
        if (source) {
                struct sockaddr_in from = {.sin_family = AF_INET};

                assert_int_equal(inet_pton(AF_INET, source, &from.sin_addr), 1);
                assert_int_equal(
                        bind(c->fd, (struct sockaddr *) &from, sizeof from), 0);
        }
        assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
        /* Completes in the kernel (listen backlog), without the loop. */
        assert_int_equal(connect(c->fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
        if (tls) {
                assert_int_equal(gnutls_certificate_allocate_credentials(
                                         &c->credentials),
                                 0);
                assert_int_equal(
                        gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK),
                        0);
                assert_int_equal(gnutls_set_default_priority(c->tls), 0);
                assert_int_equal(gnutls_credentials_set(c->tls,
                                                        GNUTLS_CRD_CERTIFICATE,
                                                        c->credentials),
                                 0);
                gnutls_transport_set_int(c->tls, c->fd);
        }
        return c;
}

static struct client *client_connect(struct fixture *f) {
        return client_connect_from(f, NULL, f->config.tls);
}

static void client_close(struct client *c) {
        if (!c)
                return;
        if (c->tls)
                gnutls_deinit(c->tls);
        if (c->credentials)
                gnutls_certificate_free_credentials(c->credentials);
        close(c->fd);
        free(c->out);
        free(c->in);
        free(c);
}

static void client_queue(struct client *c, const void *data, size_t size) {
        c->out = realloc(c->out, c->out_size + size);
        assert_non_null(c->out);
        memcpy(c->out + c->out_size, data, size);
        c->out_size += size;
}

static void client_queue_text(struct client *c, const char *text) {
        client_queue(c, text, strlen(text));
}

/* One step: the loop once (waiting at most 1 ms), then whatever the
 * socket takes and gives without blocking. */
static void client_step(struct fixture *f, struct client *c) {
        char buf[16384];
        ssize_t n;

        pump(f, 1000);
        if (c->tls && !c->handshaken) {
                int r = gnutls_handshake(c->tls);

                if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
                        return;
                assert_int_equal(r, 0);
                c->handshaken = true;
        }
        while (c->out_done < c->out_size) {
                n = c->tls ? gnutls_record_send(c->tls, c->out + c->out_done,
                                                c->out_size - c->out_done)
                           : send(c->fd, c->out + c->out_done,
                                  c->out_size - c->out_done, MSG_NOSIGNAL);
                if (n < 0)
                        break; /* full, or closed by the server */
                c->out_done += (size_t) n;
        }
        while (!c->eof) {
                n = c->tls ? gnutls_record_recv(c->tls, buf, sizeof buf)
                           : recv(c->fd, buf, sizeof buf, 0);
                if (n == 0 || (n < 0 && !c->tls && errno != EAGAIN) ||
                    (n < 0 && c->tls && n != GNUTLS_E_AGAIN)) {
                        c->eof = true;
                        break;
                }
                if (n < 0)
                        break;
                c->in = realloc(c->in, c->in_size + (size_t) n + 1);
                assert_non_null(c->in);
                memcpy(c->in + c->in_size, buf, (size_t) n);
                c->in_size += (size_t) n;
                c->in[c->in_size] = '\0';
        }
}

/* Decodes a chunked body in [p, end) into *ret. Returns the bytes used,
 * or 0 while incomplete. */
static size_t dechunk(const char *p, const char *end, struct response *ret) {
        const char *start = p;

        for (;;) {
                const char *line_end = memmem(p, (size_t) (end - p), "\r\n", 2);
                size_t n;

                if (!line_end)
                        return 0;
                n = strtoul(p, NULL, 16);
                p = line_end + 2;
                if (n == 0) {
                        if (end - p < 2)
                                return 0;
                        return (size_t) (p + 2 - start);
                }
                if ((size_t) (end - p) < n + 2)
                        return 0;
                ret->body = realloc(ret->body, ret->body_size + n + 1);
                assert_non_null(ret->body);
                memcpy(ret->body + ret->body_size, p, n);
                ret->body_size += n;
                ret->body[ret->body_size] = '\0';
                p += n + 2;
        }
}

/* Takes one complete response off the front of c's input. Returns true
 * if there was one. */
static bool response_take(struct client *c, bool head_only,
                          struct response *ret) {
        char buf[64];
        const char *end, *body;
        size_t head_size, used;

        if (!c->in)
                return false;
        end = strstr(c->in, "\r\n\r\n");
        if (!end)
                return false;
        head_size = (size_t) (end - c->in);
        body = end + 4;
        *ret = (struct response){.head = strndup(c->in, head_size)};
        assert_non_null(ret->head);
        assert_int_equal(sscanf(ret->head, "HTTP/1.%*d %d", &ret->status), 1);
        if (head_only || ret->status == 304 || ret->status == 204)
                used = 0;
        else if (header(ret, "Transfer-Encoding", buf, sizeof buf)) {
                used = dechunk(body, c->in + c->in_size, ret);
                if (used == 0) {
                        response_done(ret);
                        return false;
                }
        } else if (header(ret, "Content-Length", buf, sizeof buf)) {
                used = strtoul(buf, NULL, 10);
                if ((size_t) (c->in + c->in_size - body) < used) {
                        response_done(ret);
                        return false;
                }
        } else {
                if (!c->eof) {
                        response_done(ret);
                        return false;
                }
                used = (size_t) (c->in + c->in_size - body);
        }
        if (!ret->body) {
                ret->body = malloc(used + 1);
                assert_non_null(ret->body);
                memcpy(ret->body, body, used);
                ret->body[used] = '\0';
                ret->body_size = used;
        }
        used += (size_t) (body - c->in);
        memmove(c->in, c->in + used, c->in_size - used + 1);
        c->in_size -= used;
        return true;
}

/* Pumps until a whole response arrived (true) or the connection ended or
 * the deadline passed (false). */
static bool client_wait(struct fixture *f, struct client *c, bool head_only,
                        struct response *ret) {
        uint64_t deadline = now_usec() + WAIT_USEC;

        while (now_usec() < deadline) {
                client_step(f, c);
                if (response_take(c, head_only, ret))
                        return true;
                if (c->eof)
                        return false;
        }
        return false;
}

/* Pumps until c's input holds text. */
static bool client_wait_text(struct fixture *f, struct client *c,
                             const char *text, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        while (now_usec() < deadline) {
                client_step(f, c);
                if (c->in && strstr(c->in, text))
                        return true;
                if (c->eof)
                        return false;
        }
        return false;
}

static bool client_wait_eof(struct fixture *f, struct client *c,
                            uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        while (!c->eof && now_usec() < deadline)
                client_step(f, c);
        return c->eof;
}

struct session {
        char token[HTTPD_TOKEN_SIZE + 8];
        char csrf[HTTPD_TOKEN_SIZE + 8];
};

/* Sends one request: extra_headers ("Name: value\r\n" lines) and body
 * may be NULL. A session adds its cookie and (for writes) CSRF token. */
static void request_queue(struct client *c, const char *method,
                          const char *path, const struct session *s,
                          const char *extra_headers, const char *body) {
        char head[4096];

        snprintf(head, sizeof head,
                 "%s %s HTTP/1.1\r\nHost: node1\r\n%s%s%s%s%s%s%s", method,
                 path, s ? "Cookie: " HTTPD_SESSION_COOKIE "=" : "",
                 s ? s->token : "", s ? "\r\n" : "",
                 s && s->csrf[0] && !streq(method, "GET") ? HTTPD_CSRF_HEADER
                         ": "
                                                          : "",
                 s && s->csrf[0] && !streq(method, "GET") ? s->csrf : "",
                 s && s->csrf[0] && !streq(method, "GET") ? "\r\n" : "",
                 extra_headers ? extra_headers : "");
        client_queue_text(c, head);
        if (body) {
                char length[96];

                snprintf(length, sizeof length,
                         "Content-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         strlen(body));
                client_queue_text(c, length);
                client_queue_text(c, body);
        } else
                client_queue_text(c, "\r\n");
}

/* One request on a new connection from source (NULL: 127.0.0.1); the
 * response must come. */
static void coverage_note(const char *method, const char *path, int status);

static void http_from(struct fixture *f, const char *source, const char *method,
                      const char *path, const struct session *s,
                      const char *extra_headers, const char *body,
                      struct response *ret) {
        struct client *c = client_connect_from(f, source, f->config.tls);

        request_queue(c, method, path, s, extra_headers, body);
        if (!client_wait(f, c, streq(method, "HEAD"), ret)) {
                fprintf(stderr, "%s %s: no answer (%s): %s\n", method, path,
                        c->eof ? "closed" : "timeout", c->in ? c->in : "");
                fail();
        }
        client_close(c);
        coverage_note(method, path, ret->status);
}

/* The response is an error in the one shape, with this code and field. */
static void assert_error(const struct response *r, int status, const char *code,
                         const char *field) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *e, *v;
        const char *s;
        char buf[64];

        if (r->status != status)
                fprintf(stderr, "unexpected: %s\n%s\n", r->head, r->body);
        assert_int_equal(r->status, status);
        assert_non_null(header(r, "Content-Type", buf, sizeof buf));
        assert_string_equal(buf, "application/json");
        assert_int_equal(haven_json_parse(r->body, r->body_size, 65536, &o), 0);
        assert_int_equal(json_object_object_length(o), 1);
        assert_int_equal(haven_json_get_object(o, "error", &e), 0);
        assert_int_equal(json_object_object_length(e), 3);
        assert_int_equal(haven_json_get_string(e, "code", &s), 0);
        assert_string_equal(s, code);
        assert_int_equal(haven_json_get_string(e, "message", &s), 0);
        assert_true(strlen(s) > 0);
        assert_true(json_object_object_get_ex(e, "field", &v));
        if (field) {
                assert_int_equal(haven_json_get_string(e, "field", &s), 0);
                assert_string_equal(s, field);
        } else
                assert_null(v);
}

static void http(struct fixture *f, const char *method, const char *path,
                 const struct session *s, const char *extra_headers,
                 const char *body, struct response *ret) {
        http_from(f, NULL, method, path, s, extra_headers, body, ret);
}

static struct json_object *body_json(const struct response *r) {
        struct json_object *o = NULL;

        assert_int_equal(haven_json_parse(r->body, r->body_size, 1u << 20, &o),
                         0);
        return o;
}

static void login(struct fixture *f, struct session *ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct response r;
        const char *csrf;
        char cookie[256];

        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"" ADMIN "\", \"password\": \"" PASSWORD "\"}", &r);
        assert_int_equal(r.status, 200);
        assert_non_null(header(&r, "Set-Cookie", cookie, sizeof cookie));
        assert_int_equal(strncmp(cookie, HTTPD_SESSION_COOKIE "=",
                                 strlen(HTTPD_SESSION_COOKIE) + 1),
                         0);
        snprintf(ret->token, sizeof ret->token, "%.*s",
                 (int) strcspn(cookie + strlen(HTTPD_SESSION_COOKIE) + 1, ";"),
                 cookie + strlen(HTTPD_SESSION_COOKIE) + 1);
        o = body_json(&r);
        assert_int_equal(haven_json_get_string(o, "csrf_token", &csrf), 0);
        snprintf(ret->csrf, sizeof ret->csrf, "%s", csrf);
        response_done(&r);
}

/* ==== Routing ==== */

static void unknown_paths_are_404_in_the_error_shape(void **state) {
        struct fixture *f = *state;
        struct response r;

        start(f);
        http(f, "GET", "/api/v1/nothing", NULL, NULL, NULL, &r);
        assert_error(&r, 404, "not-found", NULL);
        response_done(&r);
        http(f, "GET", "/api", NULL, NULL, NULL, &r);
        assert_error(&r, 404, "not-found", NULL);
        response_done(&r);
        /* A missing file with an extension is no application route. */
        http(f, "GET", "/missing.js", NULL, NULL, NULL, &r);
        assert_error(&r, 404, "not-found", NULL);
        response_done(&r);
}

static void wrong_method_is_405_with_allow(void **state) {
        struct fixture *f = *state;
        struct response r;
        char allow[64];

        start(f);
        http(f, "PUT", "/api/v1/hosts", NULL, NULL, NULL, &r);
        assert_error(&r, 405, "method-not-allowed", NULL);
        assert_non_null(header(&r, "Allow", allow, sizeof allow));
        assert_string_equal(allow, "GET, POST");
        response_done(&r);

        http(f, "PATCH", "/api/v1/session", NULL, NULL, NULL, &r);
        assert_error(&r, 405, "method-not-allowed", NULL);
        assert_string_equal(header(&r, "Allow", allow, sizeof allow),
                            "GET, POST, DELETE");
        response_done(&r);

        http(f, "BREW", "/api/v1/status", NULL, NULL, NULL, &r);
        assert_error(&r, 405, "method-not-allowed", NULL);
        response_done(&r);

        http(f, "POST", "/index.html", NULL, NULL, NULL, &r);
        assert_error(&r, 405, "method-not-allowed", NULL);
        assert_string_equal(header(&r, "Allow", allow, sizeof allow),
                            "GET, HEAD");
        response_done(&r);
}

/* A path for a route's pattern: {id} is id, {name} an agent's name. */
static void pattern_path(const char *pattern, const char *id, char *buf,
                         size_t size) {
        size_t n = 0;

        for (const char *p = pattern; *p && n + 1 < size;) {
                const char *with = NULL;

                if (strncmp(p, "{id}", 4) == 0) {
                        with = id;
                        p += 4;
                } else if (strncmp(p, "{name}", 6) == 0) {
                        with = "fence_apc_snmp";
                        p += 6;
                }
                if (with) {
                        n += (size_t) snprintf(buf + n, size - n, "%s", with);
                        continue;
                }
                buf[n++] = *p++;
        }
        buf[n < size ? n : size - 1] = '\0';
}

/* Every route but the public ones, with any body, answers 401 without a
 * session, and so does a cookie that is not a live session. */
static void every_route_without_session_is_401(void **state) {
        static const char *const cookies[] = {
                NULL,
                "Cookie: " HTTPD_SESSION_COOKIE "=\r\n",
                "Cookie: " HTTPD_SESSION_COOKIE "=abc\r\n",
                "Cookie: " HTTPD_SESSION_COOKIE
                "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
        };
        struct fixture *f = *state;
        const struct httpd_route *routes;
        size_t n, checked = 0;

        start(f);
        routes = httpd_api_routes(&n);
        for (size_t i = 0; i < n; i++) {
                char path[256];

                /* Public, or public until the node is in a cluster (it is
                 * here: those answer 409, see the wizard's tests). */
                if (routes[i].permission == HTTPD_PUBLIC ||
                    routes[i].permission == HTTPD_UNCLUSTERED)
                        continue;
                pattern_path(routes[i].pattern, "3", path, sizeof path);
                for (size_t k = 0; k < ELEMENTSOF(cookies); k++) {
                        struct response r;

                        http(f, httpd_method_to_string(routes[i].method), path,
                             NULL, cookies[k],
                             routes[i].policy ? "{\"name\": \"x\"}" : NULL, &r);
                        assert_error(&r, 401, "unauthorized", NULL);
                        response_done(&r);
                }
                checked++;
        }
        assert_true(checked >= 7);
        /* Nothing reached haven-domaind. */
        assert_int_equal(f->domain.n_queries, 0);
        assert_int_equal(f->domain.n_submits, 0);
}

static void writes_without_csrf_token_are_403(void **state) {
        struct fixture *f = *state;
        struct session s, no_csrf, wrong_csrf;
        struct response r;

        start(f);
        login(f, &s);
        no_csrf = s;
        no_csrf.csrf[0] = '\0';
        wrong_csrf = s;
        wrong_csrf.csrf[0] = wrong_csrf.csrf[0] == 'A' ? 'B' : 'A';

        http(f, "POST", "/api/v1/hosts", &no_csrf, NULL,
             "{\"name\": \"a\", \"address\": \"198.18.0.9\"}", &r);
        assert_error(&r, 403, "csrf", NULL);
        response_done(&r);
        http(f, "DELETE", "/api/v1/hosts/3", &wrong_csrf, NULL, NULL, &r);
        assert_error(&r, 403, "csrf", NULL);
        response_done(&r);
        http(f, "DELETE", "/api/v1/session", &no_csrf, NULL, NULL, &r);
        assert_error(&r, 403, "csrf", NULL);
        response_done(&r);
        assert_int_equal(f->domain.n_submits, 0);

        /* Reads need none; the session still works. */
        http(f, "GET", "/api/v1/session", &no_csrf, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);
}

static void bad_bodies_are_400_naming_the_field(void **state) {
        static const struct {
                const char *body, *code, *field;
        } cases[] = {
                {"{", "bad-request", NULL},
                {"{\"name\": \"a\", \"address\": \"1.2.3.4\"} x", "bad-request",
                 NULL},
                {"{'name': 'a'}", "bad-request", NULL},
                {"[1, 2]", "invalid", NULL},
                {"null", "invalid", NULL},
                {"{\"address\": \"198.18.0.9\"}", "invalid", "name"},
                {"{\"name\": \"a\"}", "invalid", "address"},
                {"{\"name\": \"a\", \"address\": \"198.18.0.9\", \"color\": "
                 "\"red\"}",
                 "invalid", "color"},
                {"{\"name\": 5, \"address\": \"198.18.0.9\"}", "invalid",
                 "name"},
                {"{\"name\": \"a\", \"address\": [\"198.18.0.9\"]}", "invalid",
                 "address"},
                {"{\"name\": \"\", \"address\": \"198.18.0.9\"}", "invalid",
                 "name"},
                {"{\"name\": \"a\", \"address\": "
                 "\"198.18.0.9.1.2.3.4.5.6.7.8.9.0.1.2.3.4.5.6.7.8.9\"}",
                 "invalid", "address"},
                {"{\"name\": null, \"address\": \"198.18.0.9\"}", "invalid",
                 "name"},
        };
        struct fixture *f = *state;
        struct session s;
        struct response r;

        start(f);
        login(f, &s);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                http(f, "POST", "/api/v1/hosts", &s, NULL, cases[i].body, &r);
                assert_error(&r, 400, cases[i].code, cases[i].field);
                response_done(&r);
        }
        /* An empty body where one is needed. */
        http(f, "POST", "/api/v1/hosts", &s, "Content-Length: 0\r\n", NULL, &r);
        assert_error(&r, 400, "bad-request", NULL);
        response_done(&r);
        /* Login is validated the same way, before any password check. */
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"admin\", \"password\": \"x\", \"remember\": true}",
             &r);
        assert_error(&r, 400, "invalid", "remember");
        response_done(&r);
        http(f, "POST", "/api/v1/session", NULL, NULL, "{\"name\": \"admin\"}",
             &r);
        assert_error(&r, 400, "invalid", "password");
        response_done(&r);
        assert_int_equal(f->domain.n_submits, 0);
}

static void bodies_need_json_and_bodiless_routes_take_none(void **state) {
        struct fixture *f = *state;
        struct session s;
        struct response r;
        struct client *c;

        start(f);
        login(f, &s);
        c = client_connect(f);
        request_queue(c, "POST", "/api/v1/hosts", &s,
                      "Content-Type: text/plain\r\nContent-Length: 2\r\n",
                      NULL);
        client_queue_text(c, "{}");
        assert_true(client_wait(f, c, false, &r));
        assert_error(&r, 415, "unsupported-media-type", NULL);
        response_done(&r);
        client_close(c);

        http(f, "DELETE", "/api/v1/hosts/3", &s, NULL, "{}", &r);
        assert_error(&r, 400, "bad-request", NULL);
        response_done(&r);
        http(f, "GET", "/index.html", NULL, NULL, "{}", &r);
        assert_error(&r, 400, "bad-request", NULL);
        response_done(&r);
}

static void oversized_bodies_are_413(void **state) {
        struct fixture *f = *state;
        struct session s;
        struct response r;
        struct client *c;
        char *big;

        start(f);
        login(f, &s);
        /* Announced: refused on the head, nothing read. */
        c = client_connect(f);
        request_queue(c, "POST", "/api/v1/hosts", &s,
                      "Content-Type: application/json\r\n"
                      "Content-Length: 65537\r\n",
                      NULL);
        assert_true(client_wait(f, c, false, &r));
        assert_error(&r, 413, "too-large", NULL);
        response_done(&r);
        client_close(c);

        /* Chunked: refused once the limit is passed. */
        big = malloc(HTTPD_RESOURCE_BODY_MAX + 2);
        assert_non_null(big);
        memset(big, ' ', HTTPD_RESOURCE_BODY_MAX + 1);
        big[0] = '{';
        big[HTTPD_RESOURCE_BODY_MAX] = '}';
        big[HTTPD_RESOURCE_BODY_MAX + 1] = '\0';
        c = client_connect(f);
        request_queue(c, "POST", "/api/v1/hosts", &s,
                      "Content-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n",
                      NULL);
        {
                char chunk_head[32];

                snprintf(chunk_head, sizeof chunk_head, "%zx\r\n",
                         (size_t) HTTPD_RESOURCE_BODY_MAX + 1);
                client_queue_text(c, chunk_head);
                client_queue(c, big, HTTPD_RESOURCE_BODY_MAX + 1);
                client_queue_text(c, "\r\n0\r\n\r\n");
        }
        assert_true(client_wait(f, c, false, &r));
        assert_error(&r, 413, "too-large", NULL);
        response_done(&r);
        client_close(c);

        /* Exactly at the limit is fine (and then validated). */
        big[HTTPD_RESOURCE_BODY_MAX - 1] = '}';
        big[HTTPD_RESOURCE_BODY_MAX] = '\0';
        http(f, "POST", "/api/v1/hosts", &s, NULL, big, &r);
        assert_error(&r, 400, "invalid", "name");
        response_done(&r);
        free(big);

        /* Login's limit is small: anybody may send it. */
        big = malloc(HTTPD_LOGIN_BODY_MAX + 64);
        assert_non_null(big);
        snprintf(big, HTTPD_LOGIN_BODY_MAX + 64,
                 "{\"name\": \"admin\", \"password\": \"%0*d\"}",
                 (int) HTTPD_LOGIN_BODY_MAX, 0);
        http(f, "POST", "/api/v1/session", NULL, NULL, big, &r);
        assert_error(&r, 413, "too-large", NULL);
        response_done(&r);
        free(big);
        assert_int_equal(f->domain.n_submits, 0);
}

static void bad_parameters_and_flags_are_400(void **state) {
        static const char *const bad_ids[] = {
                "abc", "0", "007", "-1", "9223372036854775808", "1.5",
        };
        struct fixture *f = *state;
        struct session s;
        struct response r;
        char path[128];

        start(f);
        login(f, &s);
        for (size_t i = 0; i < ELEMENTSOF(bad_ids); i++) {
                snprintf(path, sizeof path, "/api/v1/hosts/%s", bad_ids[i]);
                http(f, "DELETE", path, &s, NULL, NULL, &r);
                assert_error(&r, 400, "invalid", "id");
                response_done(&r);
        }
        http(f, "POST", "/api/v1/hosts?later=1", &s, NULL,
             "{\"name\": \"a\", \"address\": \"198.18.0.9\"}", &r);
        assert_error(&r, 400, "invalid", "later");
        response_done(&r);
        http(f, "POST", "/api/v1/hosts?now=maybe", &s, NULL,
             "{\"name\": \"a\", \"address\": \"198.18.0.9\"}", &r);
        assert_error(&r, 400, "invalid", "now");
        response_done(&r);
        http(f, "GET", "/api/v1/hosts?now=1", &s, NULL, NULL, &r);
        assert_error(&r, 400, "invalid", "now");
        response_done(&r);
        http(f, "GET", "/api/v1/status?a&b&c&d&e&f&g&h&i", &s, NULL, NULL, &r);
        assert_error(&r, 400, "bad-request", NULL);
        response_done(&r);
        assert_int_equal(f->domain.n_submits, 0);
}

/* ==== Sessions and login ==== */

static void login_gives_cookie_and_logout_ends_it(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct session s;
        struct response r;
        const char *name;
        char cookie[256];
        int64_t expires;

        start(f);
        login(f, &s);
        assert_int_equal(strlen(s.token), 43);
        assert_int_equal(strlen(s.csrf), 43);
        assert_string_not_equal(s.token, s.csrf);

        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}", &r);
        assert_non_null(header(&r, "Set-Cookie", cookie, sizeof cookie));
        assert_non_null(strstr(cookie, "; HttpOnly"));
        assert_non_null(strstr(cookie, "; SameSite=Strict"));
        assert_non_null(strstr(cookie, "; Path=/"));
        assert_non_null(strstr(cookie, "; Max-Age=43200"));
        assert_null(strstr(cookie, "Secure")); /* plain HTTP here */
        response_done(&r);

        http(f, "GET", "/api/v1/session", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_int_equal(haven_json_get_string(o, "administrator", &name), 0);
        assert_string_equal(name, ADMIN);
        assert_int_equal(haven_json_get_int64(o, "expires_at", &expires), 0);
        assert_true((uint64_t) expires > haven_now_usec(CLOCK_REALTIME));
        assert_true((uint64_t) expires <=
                    haven_now_usec(CLOCK_REALTIME) + HTTPD_SESSION_IDLE_USEC);
        response_done(&r);

        http(f, "DELETE", "/api/v1/session", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(header(&r, "Set-Cookie", cookie, sizeof cookie));
        assert_non_null(strstr(cookie, "Max-Age=0"));
        response_done(&r);

        http(f, "GET", "/api/v1/session", &s, NULL, NULL, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        response_done(&r);
}

static void wrong_password_and_unknown_name_look_alike(void **state) {
        struct fixture *f = *state;
        uint64_t wrong = UINT64_MAX, unknown = UINT64_MAX;
        struct response a, b;

        start(f);
        for (int i = 0; i < 3; i++) {
                uint64_t t0 = now_usec(), t1;
                char source[2][32];

                /* Each from its own address: below the throttle. */
                snprintf(source[0], sizeof source[0], "127.0.0.%d", 40 + i);
                snprintf(source[1], sizeof source[1], "127.0.0.%d", 50 + i);
                http_from(f, source[0], "POST", "/api/v1/session", NULL, NULL,
                          "{\"name\": \"admin\", \"password\": \"wrong\"}", &a);
                t1 = now_usec();
                if (t1 - t0 < wrong)
                        wrong = t1 - t0;
                http_from(f, source[1], "POST", "/api/v1/session", NULL, NULL,
                          "{\"name\": \"nobody\", \"password\": \"wrong\"}",
                          &b);
                if (now_usec() - t1 < unknown)
                        unknown = now_usec() - t1;
                assert_error(&a, 401, "unauthorized", NULL);
                assert_error(&b, 401, "unauthorized", NULL);
                assert_string_equal(a.body, b.body);
                response_done(&a);
                response_done(&b);
        }
        /* Both paths check a yescrypt hash of the same cost. */
        assert_true(unknown * 3 > wrong && wrong * 3 > unknown);
}

static void
login_is_throttled_per_account_even_with_right_password(void **state) {
        struct fixture *f = *state;
        struct response r;
        char retry[32];

        start(f);
        for (unsigned i = 0; i < HTTPD_THROTTLE_FAILURES; i++) {
                char source[32];
                struct client *c;

                /* From several addresses: the account's count. */
                snprintf(source, sizeof source, "127.0.0.%u", 10 + i);
                c = client_connect_from(f, source, false);
                request_queue(c, "POST", "/api/v1/session", NULL, NULL,
                              "{\"name\": \"admin\", \"password\": \"guess\"}");
                assert_true(client_wait(f, c, false, &r));
                assert_error(&r, 401, "unauthorized", NULL);
                response_done(&r);
                client_close(c);
        }
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}", &r);
        assert_error(&r, 429, "throttled", NULL);
        assert_non_null(header(&r, "Retry-After", retry, sizeof retry));
        assert_true(atoi(retry) >= 1 &&
                    atoi(retry) <= (int) (HTTPD_THROTTLE_BLOCK_USEC / 1000000));
        response_done(&r);

        /* Another account from this address is not blocked by that. */
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"other\", \"password\": \"x\"}", &r);
        assert_error(&r, 401, "unauthorized", NULL);
        response_done(&r);
}

static void login_is_throttled_per_address(void **state) {
        struct fixture *f = *state;
        struct response r;
        struct client *c;

        start(f);
        for (unsigned i = 0; i < HTTPD_THROTTLE_FAILURES; i++) {
                char body[128];

                snprintf(body, sizeof body,
                         "{\"name\": \"user%u\", \"password\": \"guess\"}", i);
                c = client_connect_from(f, "127.0.0.20", false);
                request_queue(c, "POST", "/api/v1/session", NULL, NULL, body);
                assert_true(client_wait(f, c, false, &r));
                assert_error(&r, 401, "unauthorized", NULL);
                response_done(&r);
                client_close(c);
        }
        c = client_connect_from(f, "127.0.0.20", false);
        request_queue(c, "POST", "/api/v1/session", NULL, NULL,
                      "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}");
        assert_true(client_wait(f, c, false, &r));
        assert_error(&r, 429, "throttled", NULL);
        response_done(&r);
        client_close(c);

        /* Other addresses still log in. */
        c = client_connect_from(f, "127.0.0.21", false);
        request_queue(c, "POST", "/api/v1/session", NULL, NULL,
                      "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}");
        assert_true(client_wait(f, c, false, &r));
        assert_int_equal(r.status, 200);
        response_done(&r);
        client_close(c);
}

/* While a password is checked (a worker thread), the loop answers. */
static void password_check_does_not_stop_the_loop(void **state) {
        struct fixture *f = *state;
        struct client *slow, *fast;
        struct response r;
        bool login_done = false;
        uint64_t deadline = now_usec() + WAIT_USEC;

        start(f);
        slow = client_connect(f);
        request_queue(slow, "POST", "/api/v1/session", NULL, NULL,
                      "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}");
        fast = client_connect(f);
        /* The login reached its worker. */
        while (f->domain.n_queries == 0) {
                assert_true(now_usec() < deadline);
                client_step(f, slow);
        }
        request_queue(fast, "GET", "/logo.svg", NULL, NULL, NULL);
        assert_true(client_wait(f, fast, false, &r));
        assert_int_equal(r.status, 200);
        response_done(&r);
        login_done = response_take(slow, false, &r);
        if (login_done)
                response_done(&r);
        assert_false(login_done);
        assert_true(client_wait(f, slow, false, &r));
        assert_int_equal(r.status, 200);
        response_done(&r);
        client_close(fast);
        client_close(slow);
}

static void sessions_expire_when_idle_and_absolutely(void **state) {
        struct httpd_session_limits limits = {
                .idle_usec = 100, .max_usec = 1000, .max_sessions = 4};
        _cleanup_(httpd_sessions_freep) struct httpd_sessions *s = NULL;
        const struct httpd_session *session;
        char token[HTTPD_TOKEN_SIZE];

        assert_int_equal(httpd_sessions_new(&limits, &s), 0);
        assert_int_equal(httpd_sessions_create(s, "admin", 0, token, &session),
                         0);
        assert_int_equal(httpd_session_expiry(s, session), 100);
        /* Sliding: each use moves the idle expiry. */
        for (uint64_t t = 90; t < 1000; t += 90)
                assert_non_null(httpd_sessions_find(s, token, t));
        /* Absolute: gone at 1000 however busy. */
        assert_null(httpd_sessions_find(s, token, 1000));
        assert_int_equal(httpd_sessions_count(s), 0);

        assert_int_equal(httpd_sessions_create(s, "admin", 2000, token, NULL),
                         0);
        assert_null(httpd_sessions_find(s, token, 2100)); /* idle */
        assert_int_equal(httpd_sessions_count(s), 0);
}

static void sessions_are_bounded_and_tokens_checked(void **state) {
        struct httpd_session_limits limits = {
                .idle_usec = 1000, .max_usec = 10000, .max_sessions = 3};
        _cleanup_(httpd_sessions_freep) struct httpd_sessions *s = NULL;
        char tokens[4][HTTPD_TOKEN_SIZE], bad[HTTPD_TOKEN_SIZE];
        const struct httpd_session *session;

        assert_int_equal(httpd_sessions_new(&limits, &s), 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(httpd_sessions_create(s, "admin", (uint64_t) i,
                                                       tokens[i], NULL),
                                 0);
        /* Token 0 used recently: token 1 is the least recently used. */
        assert_non_null(httpd_sessions_find(s, tokens[0], 5));
        assert_int_equal(
                httpd_sessions_create(s, "other", 6, tokens[3], &session), 0);
        assert_int_equal(httpd_sessions_count(s), 3);
        assert_null(httpd_sessions_find(s, tokens[1], 7));
        assert_non_null(httpd_sessions_find(s, tokens[0], 7));
        assert_non_null(httpd_sessions_find(s, tokens[2], 7));

        session = httpd_sessions_find(s, tokens[3], 7);
        assert_non_null(session);
        assert_true(httpd_session_csrf_ok(session, session->csrf_token));
        assert_false(httpd_session_csrf_ok(session, NULL));
        assert_false(httpd_session_csrf_ok(session, ""));
        assert_false(httpd_session_csrf_ok(session, tokens[3]));

        /* Malformed and near-miss tokens. */
        assert_null(httpd_sessions_find(s, "", 7));
        assert_null(httpd_sessions_find(s, NULL, 7));
        memcpy(bad, tokens[0], sizeof bad);
        bad[42] = bad[42] == 'A' ? 'B' : 'A';
        assert_null(httpd_sessions_find(s, bad, 7));
        memcpy(bad, tokens[0], sizeof bad);
        bad[20] = '.';
        assert_null(httpd_sessions_find(s, bad, 7));

        assert_int_equal(httpd_sessions_remove(s, tokens[0]), 0);
        assert_int_equal(httpd_sessions_remove(s, tokens[0]), -ENOENT);
        assert_int_equal(httpd_sessions_remove_administrator(s, "admin"), 1);
        assert_int_equal(httpd_sessions_count(s), 1);
        assert_int_equal(httpd_sessions_create(s, "", 8, bad, NULL), -EINVAL);
}

static void throttle_blocks_grow_and_success_resets(void **state) {
        struct httpd_throttle_policy policy = {.failures = 3,
                                               .window_usec = 100,
                                               .block_usec = 10,
                                               .block_max_usec = 35,
                                               .max_entries = 4};
        _cleanup_(httpd_throttle_freep) struct httpd_throttle *t = NULL;
        uint64_t now = 1000;

        assert_int_equal(httpd_throttle_new(&policy, &t), 0);
        /* Failures spread beyond the window never block. */
        for (int i = 0; i < 10; i++, now += 60) {
                httpd_throttle_failure(t, "name:a", now);
                assert_int_equal(httpd_throttle_check(t, "name:a", now), 0);
        }
        /* Three in a row: 10, then 20, then 35 (capped), 35. */
        static const uint64_t blocks[] = {10, 20, 35, 35};
        for (size_t b = 0; b < ELEMENTSOF(blocks); b++) {
                for (int i = 0; i < 3; i++)
                        httpd_throttle_failure(t, "name:b", now);
                assert_int_equal(httpd_throttle_check(t, "name:b", now),
                                 blocks[b]);
                assert_int_equal(
                        httpd_throttle_check(t, "name:b", now + blocks[b] - 1),
                        1);
                now += blocks[b];
                assert_int_equal(httpd_throttle_check(t, "name:b", now), 0);
        }
        httpd_throttle_success(t, "name:b");
        for (int i = 0; i < 3; i++)
                httpd_throttle_failure(t, "name:b", now);
        assert_int_equal(httpd_throttle_check(t, "name:b", now), 10);

        /* A full table makes room without forgetting the blocked. */
        for (int i = 0; i < 10; i++) {
                char key[32];

                snprintf(key, sizeof key, "addr:%d", i);
                httpd_throttle_failure(t, key, now);
        }
        assert_int_equal(httpd_throttle_check(t, "name:b", now), 10);
}

static void throttle_keys_cut_ipv6_to_64_bits(void **state) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6},
                            b = {.sin6_family = AF_INET6},
                            m = {.sin6_family = AF_INET6};
        char ka[64], kb[64], km[64];

        assert_int_equal(inet_pton(AF_INET6, "2001:db8:1:2::1", &a.sin6_addr),
                         1);
        assert_int_equal(
                inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &b.sin6_addr), 1);
        assert_int_equal(inet_pton(AF_INET6, "::ffff:198.18.0.7", &m.sin6_addr),
                         1);
        httpd_throttle_client_key((struct sockaddr *) &a, ka, sizeof ka);
        httpd_throttle_client_key((struct sockaddr *) &b, kb, sizeof kb);
        httpd_throttle_client_key((struct sockaddr *) &m, km, sizeof km);
        assert_string_equal(ka, kb);
        assert_string_equal(ka, "addr:2001:db8:1:2::");
        assert_string_equal(km, "addr:198.18.0.7");
}

/* ==== Writes and reads through haven-domaind ==== */

static void hosts_are_staged_by_default_and_applied_with_now(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL, *p = NULL;
        struct json_object *ops, *op, *inner;
        const char *s_, *actor, *audit;
        struct session s;
        struct response r;
        int64_t n;
        bool staged;

        start(f);
        login(f, &s);
        http(f, "POST", "/api/v1/hosts", &s, NULL,
             "{\"name\": \"web1\", \"address\": \"198.18.0.9\"}", &r);
        assert_int_equal(r.status, 202);
        o = body_json(&r);
        assert_int_equal(haven_json_get_bool(o, "staged", &staged), 0);
        assert_true(staged);
        assert_int_equal(haven_json_get_int64(o, "change_id", &n), 0);
        assert_int_equal(n, 1); /* the first staged change */
        response_done(&r);

        /* What domaind got: one stage op around the insert. */
        assert_non_null(f->domain.last_submit);
        assert_int_equal(
                haven_json_get_string(f->domain.last_submit, "actor", &actor),
                0);
        assert_string_equal(actor, "api:" ADMIN);
        assert_int_equal(
                haven_json_get_string(f->domain.last_submit, "audit", &audit),
                0);
        assert_string_equal(audit,
                            "add hosts: name=\"web1\" address=\"198.18.0.9\"");
        assert_int_equal(
                haven_json_get_array(f->domain.last_submit, "ops", &ops), 0);
        assert_int_equal(json_object_array_length(ops), 1);
        op = json_object_array_get_idx(ops, 0);
        assert_int_equal(haven_json_get_string(op, "op", &s_), 0);
        assert_string_equal(s_, "stage");
        assert_int_equal(haven_json_get_array(op, "ops", &inner), 0);
        op = json_object_array_get_idx(inner, 0);
        assert_int_equal(haven_json_get_string(op, "op", &s_), 0);
        assert_string_equal(s_, "insert");
        assert_int_equal(haven_json_get_string(op, "table", &s_), 0);
        assert_string_equal(s_, "hosts");

        http(f, "POST", "/api/v1/hosts?now=1", &s, NULL,
             "{\"name\": \"web2\", \"address\": \"198.18.0.10\"}", &r);
        assert_int_equal(r.status, 201);
        p = body_json(&r);
        assert_int_equal(haven_json_get_int64(p, "id", &n), 0);
        assert_int_equal(n, 4); /* after ntp1's 3 */
        assert_int_equal(haven_json_get_int64(p, "version", &n), 0);
        assert_int_equal(n, 12);
        response_done(&r);
        assert_int_equal(
                haven_json_get_array(f->domain.last_submit, "ops", &ops), 0);
        op = json_object_array_get_idx(ops, 0);
        assert_int_equal(haven_json_get_string(op, "op", &s_), 0);
        assert_string_equal(s_, "insert");
}

static void host_delete_carries_the_row_version(void **state) {
        struct fixture *f = *state;
        struct json_object *ops, *op, *inner;
        struct session s;
        struct response r;
        const char *audit;
        int64_t n;

        start(f);
        login(f, &s);
        /* Staged: the row stays until activation. */
        http(f, "DELETE", "/api/v1/hosts/3", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 202);
        response_done(&r);
        assert_int_equal(
                haven_json_get_array(f->domain.last_submit, "ops", &ops), 0);
        op = json_object_array_get_idx(ops, 0);
        assert_int_equal(haven_json_get_array(op, "ops", &inner), 0);
        assert_int_equal(json_object_array_length(inner), 1);
        op = json_object_array_get_idx(inner, 0);
        assert_int_equal(haven_json_get_int64(op, "expect_version", &n), 0);
        assert_int_equal(n, 9);

        http(f, "DELETE", "/api/v1/hosts/3?now=1", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);
        assert_int_equal(
                haven_json_get_array(f->domain.last_submit, "ops", &ops), 0);
        op = json_object_array_get_idx(ops, 0);
        assert_int_equal(haven_json_get_int64(op, "id", &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(haven_json_get_int64(op, "expect_version", &n), 0);
        assert_int_equal(n, 9);
        assert_int_equal(
                haven_json_get_string(f->domain.last_submit, "audit", &audit),
                0);
        assert_string_equal(audit, "delete hosts 3 \"ntp1\"");
        assert_int_equal(json_object_array_length(table_get(f, "hosts")), 0);

        http(f, "DELETE", "/api/v1/hosts/77", &s, NULL, NULL, &r);
        assert_error(&r, 404, "not-found", "id");
        response_done(&r);
}

static void hosts_list_and_status_read_through(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL, *p = NULL;
        struct json_object *items, *v;
        struct session s;
        struct response r;
        bool quorate;

        start(f);
        login(f, &s);
        http(f, "GET", "/api/v1/hosts", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_int_equal(haven_json_get_array(o, "items", &items), 0);
        assert_int_equal(json_object_array_length(items), 1);
        response_done(&r);

        http(f, "GET", "/api/v1/status", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        p = body_json(&r);
        assert_int_equal(haven_json_get_bool(p, "quorate", &quorate), 0);
        assert_true(quorate);
        assert_false(json_object_object_get_ex(p, "tag", &v));
        response_done(&r);
}

static void write_without_quorum_is_503_read_only(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *e;
        struct session s;
        struct response r;
        const char *message;

        start(f);
        login(f, &s);
        f->domain.quorate = false;
        http(f, "POST", "/api/v1/hosts?now=1", &s, NULL,
             "{\"name\": \"web1\", \"address\": \"198.18.0.9\"}", &r);
        assert_error(&r, 503, "no-quorum", NULL);
        o = body_json(&r);
        assert_int_equal(haven_json_get_object(o, "error", &e), 0);
        assert_int_equal(haven_json_get_string(e, "message", &message), 0);
        assert_string_equal(message, "the cluster has no quorum: the "
                                     "configuration is read-only");
        response_done(&r);
        /* Reads go on. */
        http(f, "GET", "/api/v1/hosts", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);
}

static void domaind_errors_map_to_statuses(void **state) {
        static const struct {
                const char *code, *field;
                int status;
        } cases[] = {
                {"conflict", NULL, 409},  {"invalid", "address", 400},
                {"not-found", NULL, 404}, {"syncing", NULL, 503},
                {"internal", NULL, 500},  {"strange", NULL, 500},
        };
        struct fixture *f = *state;
        struct session s;
        struct response r;

        start(f);
        login(f, &s);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char retry[16];

                f->domain.submit_error = cases[i].code;
                f->domain.submit_error_field = cases[i].field;
                http(f, "POST", "/api/v1/hosts", &s, NULL,
                     "{\"name\": \"web1\", \"address\": \"198.18.0.9\"}", &r);
                assert_error(&r, cases[i].status,
                             streq(cases[i].code, "strange") ? "internal"
                                                             : cases[i].code,
                             cases[i].field);
                if (streq(cases[i].code, "syncing"))
                        assert_non_null(
                                header(&r, "Retry-After", retry, sizeof retry));
                response_done(&r);
        }
}

static void domaind_away_is_503_unavailable(void **state) {
        struct fixture *f = *state;
        struct session s;
        struct response r;
        uint64_t deadline = now_usec() + WAIT_USEC;

        start(f);
        login(f, &s);
        standin_stop(f);
        while (httpd_domain_connected(httpd_domain(f->httpd))) {
                assert_true(now_usec() < deadline);
                pump(f, 10000);
        }
        http(f, "GET", "/api/v1/status", &s, NULL, NULL, &r);
        assert_error(&r, 503, "unavailable", NULL);
        response_done(&r);
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}", &r);
        assert_error(&r, 503, "unavailable", NULL);
        response_done(&r);

        /* It comes back by itself. */
        standin_start(f);
        wait_subscribed(f);
        http(f, "GET", "/api/v1/status", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);
}

/* A request waiting for domaind does not hold up others, and one still
 * waiting when the server stops is cleaned up. */
static void waiting_requests_block_nobody_and_end_cleanly(void **state) {
        struct fixture *f = *state;
        struct client *waiting;
        struct session s;
        struct response r;

        start(f);
        login(f, &s);
        f->domain.silent = true;
        waiting = client_connect(f);
        request_queue(waiting, "GET", "/api/v1/status", &s, NULL, NULL);
        for (int i = 0; i < 50; i++)
                client_step(f, waiting);
        assert_false(response_take(waiting, false, &r));

        http(f, "GET", "/", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);
        http(f, "GET", "/api/v1/session", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);

        httpd_stop(f);
        assert_true(client_wait_eof(f, waiting, WAIT_USEC));
        client_close(waiting);
}

/* ==== Events ==== */

static void event_stream_carries_domain_events(void **state) {
        struct fixture *f = *state;
        struct client *c;
        struct session s;
        char type[64];
        struct response r;

        f->config.heartbeat_usec = 200 * 1000;
        start(f);
        login(f, &s);
        c = client_connect(f);
        request_queue(c, "GET", "/api/v1/events", &s, NULL, NULL);
        assert_true(client_wait_text(f, c, "retry: ", WAIT_USEC));
        assert_true(strncmp(c->in, "HTTP/1.1 200", 12) == 0);
        coverage_note("GET", "/api/v1/events", 200);
        r = (struct response){.head = c->in};
        assert_string_equal(header(&r, "Content-Type", type, sizeof type),
                            "text/event-stream");
        assert_int_equal(httpd_events_clients(httpd_events(f->httpd)), 1);

        standin_push(f, "{\"event\": \"commit\", \"version\": 11, \"tables\": "
                        "[\"hosts\"], \"actor\": \"api:admin\"}");
        assert_true(client_wait_text(
                f, c,
                "event: commit\ndata: {\"event\":\"commit\",\"version\":11,"
                "\"tables\":[\"hosts\"],\"actor\":\"api:admin\"}\n\n",
                WAIT_USEC));
        standin_push(f, "{\"event\": \"membership\", \"members\": [1], "
                        "\"quorate\": false}");
        assert_true(client_wait_text(f, c, "event: membership\n", WAIT_USEC));
        standin_push(f, "{\"event\": \"job-log\", \"job_id\": 4, \"node\": "
                        "\"node1\", \"line\": \"reconciled\"}");
        assert_true(client_wait_text(f, c, "event: job-log\n", WAIT_USEC));
        assert_true(client_wait_text(f, c, ": heartbeat\n\n", WAIT_USEC));

        /* After domaind comes back, streams hear they may have missed
         * something. */
        standin_stop(f);
        standin_start(f);
        wait_subscribed(f);
        assert_true(client_wait_text(f, c, "event: resync\n", WAIT_USEC));
        client_close(c);
}

static void slow_event_client_is_dropped(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *event = NULL;
        struct client *c;
        struct session s;
        char *pad;
        uint64_t deadline;

        f->config.event_queue_max = 64 * 1024;
        start(f);
        login(f, &s);
        c = client_connect(f);
        request_queue(c, "GET", "/api/v1/events", &s, NULL, NULL);
        assert_true(client_wait_text(f, c, "retry: ", WAIT_USEC));
        assert_int_equal(httpd_events_clients(httpd_events(f->httpd)), 1);

        /* The client reads no more; events pile up until it is dropped. */
        pad = malloc(8193);
        assert_non_null(pad);
        memset(pad, 'x', 8192);
        pad[8192] = '\0';
        event = json_object_new_object();
        json_object_object_add(event, "pad", json_object_new_string(pad));
        free(pad);
        deadline = now_usec() + WAIT_USEC;
        while (httpd_events_clients(httpd_events(f->httpd)) > 0) {
                assert_true(now_usec() < deadline);
                httpd_events_publish(httpd_events(f->httpd), "status", event);
                pump(f, 1000);
        }
        /* Its connection ends once what was sent is read. */
        assert_true(client_wait_eof(f, c, WAIT_USEC));
        client_close(c);
}

/* ==== Static files ==== */

/* A new build replaces the UI directory (moved away, a new one put in its
 * place): the running server serves the new files, without a restart. */
static void a_replaced_ui_directory_is_served_without_a_restart(void **state) {
        struct fixture *f = *state;
        struct response r;
        char old[PATH_MAX + 8];

        start(f);
        http(f, "GET", "/", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "<title>Haven</title>"));
        response_done(&r);

        snprintf(old, sizeof old, "%s.old", f->ui);
        assert_int_equal(rename(f->ui, old), 0);
        assert_int_equal(mkdir(f->ui, 0755), 0);
        write_file(f->ui, "index.html", "<!doctype html><title>Haven 2</title>\n");
        http(f, "GET", "/", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "<title>Haven 2</title>"));
        response_done(&r);
        /* The old build is gone from the answers. */
        http(f, "GET", "/logo.svg", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 404);
        response_done(&r);

        /* Put the fixture's directory back for its teardown. */
        {
                char index[PATH_MAX + 16];

                snprintf(index, sizeof index, "%s/index.html", f->ui);
                assert_int_equal(unlink(index), 0);
        }
        assert_int_equal(rmdir(f->ui), 0);
        assert_int_equal(rename(old, f->ui), 0);
}

static void static_files_have_types_caching_and_etags(void **state) {
        struct fixture *f = *state;
        struct response r;
        char buf[128], etag[128], extra[256];

        start(f);
        http(f, "GET", "/", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf),
                            "text/html; charset=utf-8");
        assert_string_equal(header(&r, "Cache-Control", buf, sizeof buf),
                            "no-cache");
        assert_non_null(strstr(r.body, "<title>Haven</title>"));
        assert_non_null(header(&r, "ETag", etag, sizeof etag));
        response_done(&r);

        snprintf(extra, sizeof extra, "If-None-Match: %s\r\n", etag);
        http(f, "GET", "/index.html", NULL, extra, NULL, &r);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.body_size, 0);
        response_done(&r);
        http(f, "GET", "/index.html", NULL,
             "If-None-Match: \"something-else\"\r\n", NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);

        /* The application's routes get index.html. */
        http(f, "GET", "/vms/web1", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "<title>Haven</title>"));
        response_done(&r);

        http(f, "GET", "/assets/app-3f2a9c1e.js", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf),
                            "text/javascript; charset=utf-8");
        assert_string_equal(header(&r, "Cache-Control", buf, sizeof buf),
                            "public, max-age=31536000, immutable");
        assert_null(header(&r, "Content-Encoding", buf, sizeof buf));
        assert_string_equal(header(&r, "Vary", buf, sizeof buf),
                            "Accept-Encoding");
        assert_string_equal(r.body, "console.log('app');\n");
        response_done(&r);

        http(f, "GET", "/assets/style.css", NULL, NULL, NULL, &r);
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf),
                            "text/css; charset=utf-8");
        assert_string_equal(header(&r, "Cache-Control", buf, sizeof buf),
                            "no-cache");
        response_done(&r);
        http(f, "GET", "/logo.svg", NULL, NULL, NULL, &r);
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf),
                            "image/svg+xml");
        response_done(&r);

        http(f, "HEAD", "/logo.svg", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Content-Length", buf, sizeof buf), "7");
        response_done(&r);
}

static void precompressed_files_go_to_gzip_clients(void **state) {
        struct fixture *f = *state;
        struct response r;
        char buf[128], plain_etag[128];

        start(f);
        http(f, "GET", "/assets/app-3f2a9c1e.js", NULL, NULL, NULL, &r);
        assert_non_null(header(&r, "ETag", plain_etag, sizeof plain_etag));
        response_done(&r);

        http(f, "GET", "/assets/app-3f2a9c1e.js", NULL,
             "Accept-Encoding: br, gzip;q=0.8\r\n", NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Content-Encoding", buf, sizeof buf),
                            "gzip");
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf),
                            "text/javascript; charset=utf-8");
        assert_string_equal(header(&r, "Vary", buf, sizeof buf),
                            "Accept-Encoding");
        assert_int_equal(r.body_size, sizeof gz_bytes);
        assert_memory_equal(r.body, gz_bytes, sizeof gz_bytes);
        assert_string_not_equal(header(&r, "ETag", buf, sizeof buf),
                                plain_etag);
        response_done(&r);

        http(f, "GET", "/assets/app-3f2a9c1e.js", NULL,
             "Accept-Encoding: gzip;q=0, deflate\r\n", NULL, &r);
        assert_null(header(&r, "Content-Encoding", buf, sizeof buf));
        response_done(&r);
        /* No .gz next to it: the file as it is. */
        http(f, "GET", "/logo.svg", NULL, "Accept-Encoding: gzip\r\n", NULL,
             &r);
        assert_null(header(&r, "Content-Encoding", buf, sizeof buf));
        response_done(&r);

        assert_true(httpd_accepts_gzip("gzip"));
        assert_true(httpd_accepts_gzip("deflate, GZIP"));
        assert_true(httpd_accepts_gzip("*"));
        assert_true(httpd_accepts_gzip("gzip;q=0.001"));
        assert_false(httpd_accepts_gzip("gzip;q=0"));
        assert_false(httpd_accepts_gzip("gzip; q=0.000, br"));
        assert_false(httpd_accepts_gzip("*;q=0"));
        assert_false(httpd_accepts_gzip("*, gzip;q=0"));
        assert_false(httpd_accepts_gzip("x-gzip"));
        assert_false(httpd_accepts_gzip("gzipped"));
        assert_false(httpd_accepts_gzip(""));
        assert_false(httpd_accepts_gzip(NULL));
}

static void static_paths_never_leave_the_ui_directory(void **state) {
        static const char *const attempts[] = {
                "/../secret.txt",
                "/%2e%2e/secret.txt",
                "/%2e%2e%2fsecret.txt",
                "/assets/%2F..%2F..%2Fsecret.txt",
                "/assets/..%2f..%2fsecret.txt",
                "/.%2e/secret.txt",
                "/index.html%00.js",
                "/%00",
                "/leak.txt",
                "/leakdir/secret.txt",
                "/.env",
                "/assets/.%65nv",
                "/%zz",
                "/a%0ab",
        };
        struct fixture *f = *state;

        start(f);
        for (size_t i = 0; i < ELEMENTSOF(attempts); i++) {
                struct response r;

                http(f, "GET", attempts[i], NULL, NULL, NULL, &r);
                if (r.status != 400 && r.status != 404)
                        fprintf(stderr, "%s: %d\n", attempts[i], r.status);
                assert_true(r.status == 400 || r.status == 404);
                assert_null(strstr(r.body, "SECRET"));
                response_done(&r);
        }
}

static void names_and_paths_are_judged_as_documented(void **state) {
        static const struct {
                const char *raw;
                int result; /* length, or -errno */
                const char *decoded;
        } paths[] = {
                {"/", 1, "/"},
                {"/a%20b", 4, "/a b"},
                {"/%41%62", 3, "/Ab"},
                {"/a/./b", -EINVAL, NULL},
                {"/a/..", -EINVAL, NULL},
                {"/..a/b", 6, "/..a/b"},
                {"/%2e%2E", -EINVAL, NULL},
                {"/%00", -EINVAL, NULL},
                {"/%0", -EINVAL, NULL},
                {"/%g0", -EINVAL, NULL},
                {"/\x7f", -EINVAL, NULL},
                {"a", -EINVAL, NULL},
                {"", -EINVAL, NULL},
        };
        char buf[16], lengthy[64];

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                int r = httpd_path_decode(paths[i].raw, buf, sizeof buf);

                assert_int_equal(r, paths[i].result);
                if (r >= 0)
                        assert_string_equal(buf, paths[i].decoded);
        }
        memset(lengthy, 'a', sizeof lengthy - 1);
        lengthy[0] = '/';
        lengthy[sizeof lengthy - 1] = '\0';
        assert_int_equal(httpd_path_decode(lengthy, buf, sizeof buf),
                         -ENAMETOOLONG);

        assert_true(httpd_static_is_hashed("app-3f2a9c1e.js"));
        assert_true(httpd_static_is_hashed("/assets/index.BkQ3x9aZ.css"));
        assert_true(httpd_static_is_hashed("chunk-a1b2c3d4e5.mjs"));
        assert_false(httpd_static_is_hashed("index.html"));
        assert_false(httpd_static_is_hashed("component-overview.js"));
        assert_false(httpd_static_is_hashed("app-1234.js"));
        assert_false(httpd_static_is_hashed("3f2a9c1e12.js"));
        assert_false(httpd_static_is_hashed("noextension-3f2a9c1e"));

        assert_string_equal(httpd_static_content_type("x.WOFF2"), "font/woff2");
        assert_string_equal(httpd_static_content_type("x"),
                            "application/octet-stream");
        assert_string_equal(httpd_static_content_type("a.js/b"),
                            "application/octet-stream");

        assert_true(httpd_etag_matches("\"a\", W/\"b\"", "\"b\""));
        assert_true(httpd_etag_matches(" *", "\"b\""));
        assert_false(httpd_etag_matches("\"ab\"", "\"b\""));
        assert_false(httpd_etag_matches(NULL, "\"b\""));
}

static void errors_map_through_one_table(void **state) {
        static const struct {
                enum httpd_error_code code;
                unsigned status;
                const char *name;
        } table[] = {
                {HTTPD_ERROR_BAD_REQUEST, 400, "bad-request"},
                {HTTPD_ERROR_INVALID, 400, "invalid"},
                {HTTPD_ERROR_UNAUTHORIZED, 401, "unauthorized"},
                {HTTPD_ERROR_CSRF, 403, "csrf"},
                {HTTPD_ERROR_NOT_FOUND, 404, "not-found"},
                {HTTPD_ERROR_METHOD, 405, "method-not-allowed"},
                {HTTPD_ERROR_CONFLICT, 409, "conflict"},
                {HTTPD_ERROR_CLUSTERED, 409, "clustered"},
                {HTTPD_ERROR_TOO_LARGE, 413, "too-large"},
                {HTTPD_ERROR_MEDIA_TYPE, 415, "unsupported-media-type"},
                {HTTPD_ERROR_THROTTLED, 429, "throttled"},
                {HTTPD_ERROR_INTERNAL, 500, "internal"},
                {HTTPD_ERROR_NOT_IMPLEMENTED, 501, "not-implemented"},
                {HTTPD_ERROR_NO_QUORUM, 503, "no-quorum"},
                {HTTPD_ERROR_SYNCING, 503, "syncing"},
                {HTTPD_ERROR_UNAVAILABLE, 503, "unavailable"},
        };
        struct httpd_error e;

        assert_int_equal(ELEMENTSOF(table), _HTTPD_ERROR_MAX);
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                assert_int_equal(httpd_error_status(table[i].code),
                                 table[i].status);
                assert_string_equal(httpd_error_code_to_string(table[i].code),
                                    table[i].name);
        }
        assert_int_equal(httpd_error_status(_HTTPD_ERROR_INVALID), 500);
        httpd_error_from_errno(-ETIMEDOUT, &e);
        assert_int_equal(e.code, HTTPD_ERROR_UNAVAILABLE);
        httpd_error_from_errno(-EIO, &e);
        assert_int_equal(e.code, HTTPD_ERROR_INTERNAL);
        assert_int_equal(httpd_error_from_domaind_code("no-quorum"),
                         HTTPD_ERROR_NO_QUORUM);
        assert_int_equal(httpd_error_from_domaind_code(NULL),
                         HTTPD_ERROR_INTERNAL);
}

/* ==== Connections ==== */

static void slow_connections_do_not_block_a_normal_request(void **state) {
        struct fixture *f = *state;
        struct client *slow[100], *c;
        struct response r;
        uint64_t t0, elapsed;

        start(f);
        /* 25 from each of four addresses: under the per-address limit. */
        for (size_t i = 0; i < ELEMENTSOF(slow); i++) {
                char source[32];

                snprintf(source, sizeof source, "127.0.0.%zu", 2 + i % 4);
                slow[i] = client_connect_from(f, source, false);
                client_queue_text(slow[i], "GET /api/v1/status HTTP/1.1\r\n"
                                           "Host: node1\r\nX-Slow: ");
                client_step(f, slow[i]);
        }
        /* They dribble on, a byte each now and then. */
        for (int round = 0; round < 3; round++)
                for (size_t i = 0; i < ELEMENTSOF(slow); i++) {
                        client_queue_text(slow[i], "z");
                        client_step(f, slow[i]);
                }

        t0 = now_usec();
        c = client_connect(f);
        request_queue(c, "GET", "/index.html", NULL, NULL, NULL);
        assert_true(client_wait(f, c, false, &r));
        elapsed = now_usec() - t0;
        assert_int_equal(r.status, 200);
        response_done(&r);
        client_close(c);
        /* Generous for sanitizers; the point is: not after a timeout. */
        assert_true(elapsed < 1000000);

        /* The slow ones are still there, unanswered, and can finish. */
        for (size_t i = 0; i < ELEMENTSOF(slow); i++) {
                assert_false(slow[i]->eof);
                assert_false(response_take(slow[i], false, &r));
        }
        client_queue_text(slow[0], "\r\n\r\n");
        assert_true(client_wait(f, slow[0], false, &r));
        assert_error(&r, 401, "unauthorized", NULL);
        response_done(&r);
        for (size_t i = 0; i < ELEMENTSOF(slow); i++)
                client_close(slow[i]);
}

static void idle_connections_time_out(void **state) {
        struct fixture *f = *state;
        struct client *c;
        uint64_t t0 = now_usec();

        f->config.connection_timeout_sec = 1;
        start(f);
        c = client_connect(f);
        client_queue_text(c, "GET / HTTP/1.1\r\n");
        assert_true(client_wait_eof(f, c, 5 * 1000000));
        assert_true(now_usec() - t0 >= 900000);
        client_close(c);
}

static void connections_beyond_the_per_address_limit_are_refused(void **state) {
        struct fixture *f = *state;
        struct client *c[HTTPD_CONNECTIONS_PER_IP_DEFAULT + 1];
        struct response r;

        start(f);
        for (size_t i = 0; i < ELEMENTSOF(c); i++) {
                c[i] = client_connect_from(f, "127.0.0.30", false);
                for (int k = 0; k < 5; k++)
                        client_step(f, c[i]);
        }
        request_queue(c[ELEMENTSOF(c) - 1], "GET", "/", NULL, NULL, NULL);
        assert_false(client_wait(f, c[ELEMENTSOF(c) - 1], false, &r));
        assert_true(c[ELEMENTSOF(c) - 1]->eof);
        request_queue(c[0], "GET", "/", NULL, NULL, NULL);
        assert_true(client_wait(f, c[0], false, &r));
        assert_int_equal(r.status, 200);
        response_done(&r);
        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_close(c[i]);
}

/* ==== TLS ==== */

static void https_uses_a_generated_certificate_for_this_host(void **state) {
        struct fixture *f = *state;
        const gnutls_datum_t *chain;
        gnutls_x509_crt_t crt;
        unsigned n_chain = 0;
        struct client *c;
        struct response r;
        struct session s;
        char path[256], cookie[256], host[256] = "";
        uint8_t loopback[4] = {127, 0, 0, 1};
        _cleanup_free_ char *first_cert = NULL;
        struct stat st;
        FILE *file;
        long size;

        f->config.tls = true;
        snprintf(path, sizeof path, "%s/httpd.crt", f->state);
        f->config.cert_path = strdup(path);
        snprintf(path, sizeof path, "%s/httpd.key", f->state);
        f->config.key_path = strdup(path);
        start(f);

        assert_int_equal(stat(f->config.key_path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(stat(f->config.cert_path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);

        c = client_connect(f);
        request_queue(c, "GET", "/api/v1/status", NULL, NULL, NULL);
        assert_true(client_wait(f, c, false, &r));
        assert_error(&r, 401, "unauthorized", NULL);
        response_done(&r);
        chain = gnutls_certificate_get_peers(c->tls, &n_chain);
        assert_non_null(chain);
        assert_int_equal(n_chain, 1);
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(
                gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER), 0);
        assert_true(gnutls_x509_crt_check_ip(crt, loopback, 4, 0));
        assert_int_equal(gethostname(host, sizeof host - 1), 0);
        assert_true(gnutls_x509_crt_check_hostname(crt, host));
        assert_true(gnutls_x509_crt_check_hostname(crt, "localhost"));
        gnutls_x509_crt_deinit(crt);
        client_close(c);

        login(f, &s);
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}", &r);
        assert_non_null(header(&r, "Set-Cookie", cookie, sizeof cookie));
        assert_non_null(strstr(cookie, "; Secure"));
        response_done(&r);

        /* A restart keeps the certificate. */
        file = fopen(f->config.cert_path, "re");
        assert_non_null(file);
        fseek(file, 0, SEEK_END);
        size = ftell(file);
        rewind(file);
        first_cert = calloc(1, (size_t) size + 1);
        assert_int_equal(fread(first_cert, 1, (size_t) size, file),
                         (size_t) size);
        fclose(file);
        httpd_stop(f);
        start(f);
        file = fopen(f->config.cert_path, "re");
        assert_non_null(file);
        {
                char again[8192] = "";

                assert_int_equal(fread(again, 1, sizeof again - 1, file),
                                 (size_t) size);
                assert_string_equal(again, first_cert);
        }
        fclose(file);
        httpd_stop(f);
        free((char *) f->config.cert_path);
        free((char *) f->config.key_path);
}

static void broken_certificate_files_are_refused(void **state) {
        struct fixture *f = *state;
        char cert[256], key[256], other[256];
        char *cert_pem = NULL, *key_pem = NULL;

        snprintf(cert, sizeof cert, "%s/a.crt", f->state);
        snprintf(key, sizeof key, "%s/a.key", f->state);
        snprintf(other, sizeof other, "%s/b.crt", f->state);
        assert_int_equal(
                httpd_tls_load_or_create(cert, key, &cert_pem, &key_pem), 0);
        free(cert_pem);
        free(key_pem);
        /* A certificate of another key. */
        {
                char other_key[256];

                snprintf(other_key, sizeof other_key, "%s/b.key", f->state);
                assert_int_equal(httpd_tls_load_or_create(other, other_key,
                                                          &cert_pem, &key_pem),
                                 0);
                free(cert_pem);
                free(key_pem);
                assert_int_equal(httpd_tls_load_or_create(other, key, &cert_pem,
                                                          &key_pem),
                                 -EKEYREJECTED);
        }
        /* A key file that is none. */
        write_file(f->state, "a.key", "not a key\n");
        assert_int_equal(
                httpd_tls_load_or_create(cert, key, &cert_pem, &key_pem),
                -EBADMSG);
}

/* ==== Helpers for the API's tests ==== */

/* A request with a JSON body (may be NULL) that must answer status;
 * returns the answer's JSON (a new reference; NULL without a body). */
static struct json_object *call(struct fixture *f, const char *method,
                                const char *path, const struct session *s,
                                const char *body, int status) {
        struct json_object *o = NULL;
        struct response r;

        http(f, method, path, s, NULL, body, &r);
        if (r.status != status)
                fprintf(stderr, "%s %s: %d %s\n", method, path, r.status,
                        r.body);
        assert_int_equal(r.status, status);
        if (r.body_size > 0)
                o = body_json(&r);
        response_done(&r);
        return o;
}

/* The same for an expected error: its code and field. */
static void call_error(struct fixture *f, const char *method, const char *path,
                       const struct session *s, const char *body, int status,
                       const char *code, const char *field) {
        struct response r;

        http(f, method, path, s, NULL, body, &r);
        if (r.status != status)
                fprintf(stderr, "%s %s %s: %d %s\n", method, path,
                        body ? body : "", r.status, r.body);
        assert_error(&r, status, code, field);
        response_done(&r);
}

static int64_t int_of(struct json_object *o, const char *key) {
        int64_t v = INT64_MIN;

        assert_int_equal(haven_json_get_int64(o, key, &v), 0);
        return v;
}

static const char *string_of(struct json_object *o, const char *key) {
        const char *v = NULL;

        assert_int_equal(haven_json_get_string(o, key, &v), 0);
        return v;
}

static struct json_object *array_of(struct json_object *o, const char *key) {
        struct json_object *v = NULL;

        assert_int_equal(haven_json_get_array(o, key, &v), 0);
        return v;
}

/* The row of the stand-in's table with id (borrowed), or NULL. */
static struct json_object *row_of(struct fixture *f, const char *table,
                                  int64_t id) {
        return row_by_id(table_get(f, table), id, NULL);
}

static size_t rows_in(struct fixture *f, const char *table) {
        return json_object_array_length(table_get(f, table));
}

/* ==== Coverage: every route answered a success somewhere ==== */

static bool covered[256];

/* Whether path has the shape of pattern, as the router matches. */
static bool route_matches(const char *pattern, const char *path) {
        const char *p = pattern, *q = path;

        if (streq(pattern, HTTPD_STATIC_PATTERN))
                return strncmp(path, "/api/", 5) != 0 && !streq(path, "/api");
        while (*p && *q) {
                size_t np = strcspn(p, "/"), nq = strcspn(q, "/");

                if (p[0] == '{') {
                        if (nq == 0)
                                return false;
                } else if (np != nq || memcmp(p, q, np) != 0)
                        return false;
                p += np;
                q += nq;
                if (*p != *q)
                        return false;
                if (*p) {
                        p++;
                        q++;
                }
        }
        return *p == '\0' && *q == '\0';
}

static void coverage_note(const char *method, const char *path, int status) {
        const struct httpd_route *routes;
        char bare[512];
        size_t n;

        if (!((status >= 200 && status < 300) || status == 101))
                return;
        snprintf(bare, sizeof bare, "%.*s", (int) strcspn(path, "?"), path);
        routes = httpd_api_routes(&n);
        assert_true(n <= ELEMENTSOF(covered));
        for (size_t i = 0; i < n; i++)
                if (streq(httpd_method_to_string(routes[i].method), method) &&
                    route_matches(routes[i].pattern, bare)) {
                        covered[i] = true;
                        return;
                }
}

/* ==== Every route, from the table ==== */

static void every_path_refuses_other_methods_with_405(void **state) {
        static const enum httpd_method methods[] = {
                HTTPD_GET, HTTPD_POST, HTTPD_PUT, HTTPD_PATCH, HTTPD_DELETE};
        struct fixture *f = *state;
        const struct httpd_route *routes;
        size_t n, checked = 0;

        start(f);
        routes = httpd_api_routes(&n);
        for (size_t i = 0; i < n; i++) {
                unsigned allowed = 0;
                char path[256], allow[64] = "";

                if (streq(routes[i].pattern, HTTPD_STATIC_PATTERN))
                        continue;
                pattern_path(routes[i].pattern, "1", path, sizeof path);
                for (size_t k = 0; k < n; k++)
                        if (route_matches(routes[k].pattern, path))
                                allowed |= 1u << routes[k].method;
                for (int m = 0; m < _HTTPD_METHOD_MAX; m++)
                        if (allowed & (1u << m))
                                snprintf(allow + strlen(allow),
                                         sizeof allow - strlen(allow), "%s%s",
                                         allow[0] ? ", " : "",
                                         httpd_method_to_string(m));
                for (size_t k = 0; k < ELEMENTSOF(methods); k++) {
                        struct response r;
                        char buf[64];

                        if (allowed & (1u << methods[k]))
                                continue;
                        http(f, httpd_method_to_string(methods[k]), path, NULL,
                             NULL, NULL, &r);
                        assert_error(&r, 405, "method-not-allowed", NULL);
                        assert_non_null(header(&r, "Allow", buf, sizeof buf));
                        assert_string_equal(buf, allow);
                        response_done(&r);
                        checked++;
                }
        }
        assert_true(checked > 100);
        assert_int_equal(f->domain.n_queries, 0);
}

static void every_write_needs_the_csrf_token(void **state) {
        struct fixture *f = *state;
        const struct httpd_route *routes;
        struct session s, none, wrong;
        size_t n, checked = 0;

        start(f);
        login(f, &s);
        none = s;
        none.csrf[0] = '\0';
        wrong = s;
        wrong.csrf[5] = wrong.csrf[5] == 'A' ? 'B' : 'A';
        routes = httpd_api_routes(&n);
        for (size_t i = 0; i < n; i++) {
                char path[256];

                if (!httpd_method_writes(routes[i].method) ||
                    (routes[i].permission != HTTPD_SESSION &&
                     routes[i].permission != HTTPD_SETUP))
                        continue;
                pattern_path(routes[i].pattern, "1", path, sizeof path);
                call_error(f, httpd_method_to_string(routes[i].method), path,
                           &none, routes[i].policy ? "{}" : NULL, 403, "csrf",
                           NULL);
                call_error(f, httpd_method_to_string(routes[i].method), path,
                           &wrong, routes[i].policy ? "{}" : NULL, 403, "csrf",
                           NULL);
                checked++;
        }
        assert_true(checked > 50);
        assert_int_equal(f->domain.n_submits, 0);
}

/* A value that meets field's policy. */
static struct json_object *value_valid(const struct haven_json_field *field) {
        bool limits = field->min != 0 || field->max != 0;

        switch (field->kind) {
        case HAVEN_JSON_STRING: {
                int64_t len = limits && field->min > 0 ? field->min : 1;
                char *text = malloc((size_t) len + 1);
                struct json_object *o;

                assert_non_null(text);
                memset(text, 'a', (size_t) len);
                text[len] = '\0';
                o = json_object_new_string(text);
                free(text);
                return o;
        }
        case HAVEN_JSON_INT:
                return json_object_new_int64(limits ? field->min : 1);
        case HAVEN_JSON_BOOL:
                return json_object_new_boolean(true);
        case HAVEN_JSON_OBJECT:
                return json_object_new_object();
        case HAVEN_JSON_ARRAY: {
                struct json_object *a = json_object_new_array();

                for (int64_t i = 0; limits && i < field->min; i++)
                        json_object_array_add(a, json_object_new_string("a"));
                return a;
        }
        case HAVEN_JSON_ENUM:
                return json_object_new_string(field->choices[0]);
        default:
                return json_object_new_int(1);
        }
}

/* A value of another type than field takes (NULL: none to give). */
static struct json_object *
value_wrong_type(const struct haven_json_field *field) {
        switch (field->kind) {
        case HAVEN_JSON_STRING:
                return json_object_new_int(12);
        case HAVEN_JSON_INT:
                return json_object_new_string("12");
        case HAVEN_JSON_BOOL:
                return json_object_new_string("yes");
        case HAVEN_JSON_OBJECT:
                return json_object_new_array();
        case HAVEN_JSON_ARRAY:
                return json_object_new_object();
        case HAVEN_JSON_ENUM:
                return json_object_new_int(7);
        default:
                return NULL;
        }
}

/* Values just outside field's range, both ways where there is a bound:
 * into out[0..2], returns how many. */
static size_t values_out_of_range(const struct haven_json_field *field,
                                  struct json_object *out[3]) {
        size_t n = 0;

        if (field->min == 0 && field->max == 0) {
                if (field->kind == HAVEN_JSON_ENUM)
                        out[n++] = json_object_new_string("no-such-choice");
                return n;
        }
        switch (field->kind) {
        case HAVEN_JSON_INT:
                if (field->min > INT64_MIN)
                        out[n++] = json_object_new_int64(field->min - 1);
                if (field->max < INT64_MAX)
                        out[n++] = json_object_new_int64(field->max + 1);
                break;
        case HAVEN_JSON_STRING: {
                size_t len = (size_t) field->max + 1;
                char *text = malloc(len + 1);

                assert_non_null(text);
                memset(text, 'a', len);
                text[len] = '\0';
                out[n++] = json_object_new_string(text);
                if (field->min > 0) {
                        text[field->min - 1] = '\0';
                        out[n++] = json_object_new_string(text);
                }
                free(text);
                break;
        }
        case HAVEN_JSON_ARRAY: {
                struct json_object *a = json_object_new_array();

                for (int64_t i = 0; i <= field->max; i++)
                        json_object_array_add(a, json_object_new_string("a"));
                out[n++] = a;
                break;
        }
        default:
                break;
        }
        return n;
}

/* The route's body with every required field valid, field (if not NULL)
 * set to value (taken over; NULL: left out). */
static char *body_with(const struct httpd_route *route, const char *field,
                       struct json_object *value, bool set) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        char *text;

        for (size_t i = 0; i < route->n_policy; i++) {
                const struct haven_json_field *p = &route->policy[i];

                if (field && streq(p->name, field))
                        continue;
                if (p->required)
                        json_object_object_add(o, p->name, value_valid(p));
        }
        if (field && set)
                json_object_object_add(o, field, value);
        text = strdup(
                json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        assert_non_null(text);
        return text;
}

/* Every route that takes a body, every way its policy can be broken:
 * each answered 400 (413 for the size) naming the field, before any
 * handler runs. The node is in no cluster, so setup routes take bodies
 * without a session too. */
static void every_body_breaks_its_policy_in_every_way(void **state) {
        struct fixture *f = *state;
        const struct httpd_route *routes;
        struct session s;
        size_t n, cases = 0;

        table_set(f, "cluster", "[]");
        start(f);
        login(f, &s);
        routes = httpd_api_routes(&n);
        for (size_t i = 0; i < n; i++) {
                const struct httpd_route *route = &routes[i];
                const char *method = httpd_method_to_string(route->method);
                char path[256], length[96];
                struct response r;

                if (!route->policy)
                        continue;
                pattern_path(route->pattern, "1", path, sizeof path);
                call_error(f, method, path, &s, "{", 400, "bad-request", NULL);
                call_error(f, method, path, &s, "[]", 400, "invalid", NULL);
                call_error(f, method, path, &s, "{\"zzz_unknown\": 1}", 400,
                           "invalid", "zzz_unknown");
                for (size_t k = 0; k < route->n_policy; k++) {
                        const struct haven_json_field *p = &route->policy[k];
                        struct json_object *bad[3], *v;
                        _cleanup_free_ char *missing = NULL, *text = NULL;
                        size_t nb;

                        if (p->required) {
                                missing =
                                        body_with(route, p->name, NULL, false);
                                call_error(f, method, path, &s, missing, 400,
                                           "invalid", p->name);
                                cases++;
                        }
                        v = value_wrong_type(p);
                        if (v) {
                                text = body_with(route, p->name, v, true);
                                call_error(f, method, path, &s, text, 400,
                                           "invalid", p->name);
                                free(TAKE_PTR(text));
                                cases++;
                        }
                        if (!p->nullable) {
                                text = body_with(route, p->name, NULL, true);
                                call_error(f, method, path, &s, text, 400,
                                           "invalid", p->name);
                                free(TAKE_PTR(text));
                                cases++;
                        }
                        nb = values_out_of_range(p, bad);
                        for (size_t b = 0; b < nb; b++) {
                                text = body_with(route, p->name, bad[b], true);
                                call_error(f, method, path, &s, text, 400,
                                           "invalid", p->name);
                                free(TAKE_PTR(text));
                                cases++;
                        }
                }
                /* Over the route's limit, announced: refused unread. */
                snprintf(length, sizeof length,
                         "Content-Type: application/json\r\n"
                         "Content-Length: %zu\r\n",
                         (size_t) httpd_route_body_max(route) + 1);
                {
                        struct client *c = client_connect(f);

                        request_queue(c, method, path, &s, length, NULL);
                        assert_true(client_wait(f, c, false, &r));
                        assert_error(&r, 413, "too-large", NULL);
                        response_done(&r);
                        client_close(c);
                }
        }
        assert_true(cases > 300);
        assert_int_equal(f->domain.n_submits, 0);
}

/* ==== Resources ==== */

static void every_table_is_listed_read_added_changed_and_deleted(void **state) {
        static const struct {
                const char *path, *table, *body, *patch, *key;
        } cases[] = {
                {"networks", "networks",
                 "{\"name\": \"lan\", \"uplinks\": [\"eth1\", \"eth2\"], "
                 "\"bonding_mode\": \"802.3ad\", \"vlan_id\": 12, \"mtu\": "
                 "9000}",
                 "{\"mtu\": 1500, \"vlan_id\": null}", "mtu"},
                {"hosts", "hosts",
                 "{\"name\": \"web1\", \"address\": \"198.18.0.9\"}",
                 "{\"address\": \"198.18.0.10\"}", "address"},
                {"fence-devices", "fence_devices",
                 "{\"name\": \"pdu9\", \"type\": \"apc-snmp\", \"address\": "
                 "\"198.18.0.254\", \"parameters\": {\"community\": "
                 "\"private\"}, \"enabled\": true}",
                 "{\"enabled\": false}", "enabled"},
                {"fence-outlets", "fence_outlets",
                 "{\"node_id\": 1, \"device_id\": 1, \"outlet\": \"A4\", "
                 "\"level\": 1}",
                 "{\"level\": 2}", "level"},
                {"disks", "disks",
                 "{\"name\": \"d1\", \"kind\": \"shared\", \"size_mib\": 1024, "
                 "\"path\": \"/dev/sdb\", \"nodes\": [1, 2]}",
                 "{\"size_mib\": 2048}", "size_mib"},
                {"vms", "vms",
                 "{\"name\": \"web1\", \"vcpus\": 2, \"memory_mib\": 512, "
                 "\"ha\": \"on\", \"preferred_node_id\": 2, \"priority\": 700, "
                 "\"description\": \"the web server\"}",
                 "{\"vcpus\": 4}", "vcpus"},
                {"vm-disks", "vm_disks",
                 "{\"vm_id\": 1, \"disk_id\": 1, \"bus\": \"virtio\", "
                 "\"boot_order\": 1}",
                 "{\"bus\": \"scsi\"}", "bus"},
                {"vm-nics", "vm_nics",
                 "{\"vm_id\": 1, \"network_id\": 1, \"mac\": "
                 "\"52:54:00:12:34:56\", \"model\": \"virtio\"}",
                 "{\"model\": \"e1000\"}", "model"},
                {"vm-cdroms", "vm_cdroms",
                 "{\"vm_id\": 1, \"iso_path\": \"/iso/debian.iso\"}",
                 "{\"iso_path\": null}", "iso_path"},
        };
        struct fixture *f = *state;
        struct session s;

        start(f);
        login(f, &s);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(json_object_putp) struct json_object *o = NULL,
                                                               *p = NULL,
                                                               *patch = NULL;
                struct json_object *row, *v, *w;
                char path[192], one[128];
                size_t before = rows_in(f, cases[i].table);
                int64_t id;

                snprintf(path, sizeof path, "/api/v1/%s?now=1", cases[i].path);
                o = call(f, "POST", path, &s, cases[i].body, 201);
                id = int_of(o, "id");
                assert_int_equal(rows_in(f, cases[i].table), before + 1);
                row = row_of(f, cases[i].table, id);
                assert_non_null(row);

                snprintf(path, sizeof path, "/api/v1/%s", cases[i].path);
                json_object_put(o);
                o = call(f, "GET", path, &s, NULL, 200);
                assert_int_equal(json_object_array_length(array_of(o, "items")),
                                 before + 1);

                snprintf(one, sizeof one, "/api/v1/%s/%" PRIi64, cases[i].path,
                         id);
                p = call(f, "GET", one, &s, NULL, 200);
                assert_int_equal(int_of(p, "id"), id);

                snprintf(path, sizeof path, "%s?now=1", one);
                json_object_put(o);
                o = call(f, "PATCH", path, &s, cases[i].patch, 200);
                assert_int_equal(int_of(o, "updated"), id);
                patch = json(cases[i].patch);
                row = row_of(f, cases[i].table, id);
                v = json_object_object_get(patch, cases[i].key);
                assert_true(json_object_object_get_ex(row, cases[i].key, &w));
                assert_true(json_same(v, w));

                json_object_put(o);
                o = call(f, "DELETE", path, &s, NULL, 200);
                assert_int_equal(int_of(o, "deleted"), id);
                assert_null(row_of(f, cases[i].table, id));
                call_error(f, "GET", one, &s, NULL, 404, "not-found", "id");
                call_error(f, "PATCH", path, &s, cases[i].patch, 404,
                           "not-found", "id");
                call_error(f, "DELETE", path, &s, NULL, 404, "not-found", "id");
        }
}

static void cluster_and_nodes_are_read_and_changed(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct session s;
        const char *audit;

        start(f);
        login(f, &s);
        o = call(f, "GET", "/api/v1/cluster", &s, NULL, 200);
        assert_string_equal(string_of(o, "name"), "lab");
        json_object_put(o);
        o = call(f, "PATCH", "/api/v1/cluster", &s, "{\"name\": \"prod\"}",
                 202);
        assert_true(
                json_object_get_boolean(json_object_object_get(o, "staged")));
        assert_string_equal(string_of(row_of(f, "cluster", 1), "name"), "lab");
        json_object_put(o);

        o = call(f, "GET", "/api/v1/nodes", &s, NULL, 200);
        assert_int_equal(json_object_array_length(array_of(o, "items")), 2);
        json_object_put(o);
        o = call(f, "GET", "/api/v1/nodes/2", &s, NULL, 200);
        assert_string_equal(string_of(o, "name"), "node2");
        json_object_put(o);
        o = call(f, "PATCH", "/api/v1/nodes/2?now=1", &s,
                 "{\"fence_delay_ms\": 5000, \"esan_member\": true}", 200);
        assert_int_equal(int_of(row_of(f, "nodes", 2), "fence_delay_ms"), 5000);
        json_object_put(o);
        call_error(f, "PATCH", "/api/v1/nodes/2", &s,
                   "{\"fence_delay_ms\": 600001}", 400, "invalid",
                   "fence_delay_ms");
        call_error(f, "PATCH", "/api/v1/nodes/2", &s, "{\"state\": \"asleep\"}",
                   400, "invalid", "state");
        call_error(f, "PATCH", "/api/v1/nodes/2", &s, "{\"name\": \"n\"}", 400,
                   "invalid", "name");

        /* Actions: applied at once, never staged. */
        o = call(f, "POST", "/api/v1/nodes/2/actions/maintenance", &s, NULL,
                 200);
        assert_string_equal(string_of(o, "state"), "maintenance");
        assert_string_equal(string_of(row_of(f, "nodes", 2), "state"),
                            "maintenance");
        assert_int_equal(
                haven_json_get_string(f->domain.last_submit, "audit", &audit),
                0);
        assert_string_equal(audit, "node \"node2\": maintenance");
        json_object_put(o);
        o = call(f, "POST", "/api/v1/nodes/2/actions/standby", &s, NULL, 200);
        json_object_put(o);
        o = call(f, "POST", "/api/v1/nodes/2/actions/active", &s, NULL, 200);
        assert_string_equal(string_of(row_of(f, "nodes", 2), "state"),
                            "active");
        assert_int_equal(rows_in(f, "staged_changes"), 1); /* the cluster's */
        call_error(f, "POST", "/api/v1/nodes/9/actions/active", &s, NULL, 404,
                   "not-found", "id");
        call_error(f, "POST", "/api/v1/nodes/2/actions/active", &s, "{}", 400,
                   "bad-request", NULL);

        /* Removal is domaind's node-remove. */
        json_object_put(o);
        o = call(f, "DELETE", "/api/v1/nodes/2", &s, NULL, 200);
        assert_int_equal(int_of(o, "deleted"), 2);
        assert_int_equal(rows_in(f, "nodes"), 1);
}

static void
infrastructure_is_one_row_and_hides_the_mail_password(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *v;
        struct session s;

        start(f);
        login(f, &s);
        /* Before the first change: nothing set, id and version null. */
        o = call(f, "GET", "/api/v1/infrastructure", &s, NULL, 200);
        assert_true(json_object_object_get_ex(o, "id", &v));
        assert_null(v);
        assert_false(json_object_object_get_ex(o, "dns_servers", &v));
        json_object_put(o);
        /* The first change adds the row. */
        o = call(f, "PATCH", "/api/v1/infrastructure?now=1", &s,
                 "{\"ntp_servers\": [\"ntp1.example.org\"], \"mail_password\": "
                 "\"s3cret\", \"admin_email\": \"ops@example.org\"}",
                 201);
        json_object_put(o);
        o = call(f, "GET", "/api/v1/infrastructure", &s, NULL, 200);
        assert_false(json_object_object_get_ex(o, "mail_password", &v));
        assert_true(json_object_get_boolean(
                json_object_object_get(o, "mail_password_set")));
        assert_string_equal(string_of(o, "admin_email"), "ops@example.org");
        /* Never in the audit log. */
        {
                const char *audit = NULL;

                assert_int_equal(haven_json_get_string(f->domain.last_submit,
                                                       "audit", &audit),
                                 0);
                assert_null(strstr(audit, "s3cret"));
                assert_non_null(strstr(audit, "mail_password=***"));
        }
        json_object_put(o);
        o = call(f, "PATCH", "/api/v1/infrastructure?now=1", &s,
                 "{\"mail_password\": null}", 200);
        json_object_put(o);
        o = call(f, "GET", "/api/v1/infrastructure", &s, NULL, 200);
        assert_false(json_object_get_boolean(
                json_object_object_get(o, "mail_password_set")));
        assert_int_equal(rows_in(f, "infrastructure"), 1);
        call_error(f, "PATCH", "/api/v1/infrastructure", &s,
                   "{\"dns_search\": [5]}", 400, "invalid", "dns_search");
        call_error(f, "PATCH", "/api/v1/infrastructure", &s,
                   "{\"dns_forwarders\": [\"\"]}", 400, "invalid",
                   "dns_forwarders");
        call_error(f, "PATCH", "/api/v1/infrastructure", &s, "{}", 400,
                   "invalid", NULL);
}

static void
administrators_get_yescrypt_hashes_and_never_show_them(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *items, *v, *row;
        _cleanup_free_ char *first_hash = NULL;
        struct session s;
        const char *hash, *audit;

        start(f);
        login(f, &s);
        o = call(f, "POST", "/api/v1/administrators?now=1", &s,
                 "{\"name\": \"bob\", \"password\": \"bob-password-1\"}", 201);
        row = row_of(f, "administrators", int_of(o, "id"));
        assert_non_null(row);
        hash = string_of(row, "password_hash");
        assert_true(strncmp(hash, "$y$", 3) == 0);
        assert_true(httpd_password_check("bob-password-1", hash));
        assert_false(httpd_password_check("bob-password-2", hash));
        first_hash = strdup(hash);
        assert_int_equal(
                haven_json_get_string(f->domain.last_submit, "audit", &audit),
                0);
        assert_string_equal(audit, "add administrators: name=\"bob\"");
        json_object_put(o);

        o = call(f, "GET", "/api/v1/administrators", &s, NULL, 200);
        items = array_of(o, "items");
        assert_int_equal(json_object_array_length(items), 2);
        for (size_t i = 0; i < 2; i++)
                assert_false(json_object_object_get_ex(
                        json_object_array_get_idx(items, i), "password_hash",
                        &v));
        json_object_put(o);
        o = call(f, "GET", "/api/v1/administrators/2", &s, NULL, 200);
        assert_string_equal(string_of(o, "name"), "bob");
        assert_false(json_object_object_get_ex(o, "password_hash", &v));
        json_object_put(o);

        o = call(f, "PATCH", "/api/v1/administrators/2?now=1", &s,
                 "{\"password\": \"bob-password-2\"}", 200);
        hash = string_of(row_of(f, "administrators", 2), "password_hash");
        assert_string_not_equal(hash, first_hash);
        assert_true(httpd_password_check("bob-password-2", hash));
        json_object_put(o);

        /* Staged: the hash waits in the change, shown masked. */
        o = call(f, "POST", "/api/v1/administrators", &s,
                 "{\"name\": \"carol\", \"password\": \"carol-password\"}",
                 202);
        json_object_put(o);
        o = call(f, "GET", "/api/v1/changes", &s, NULL, 200);
        assert_null(strstr(json_object_to_json_string(o), "$y$"));
        assert_non_null(strstr(json_object_to_json_string(o), "***"));
        call_error(f, "POST", "/api/v1/administrators", &s,
                   "{\"name\": \"dave\", \"password\": \"short\"}", 400,
                   "invalid", "password");
}

static void the_last_administrator_cannot_be_deleted(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct session s, bob;
        struct response r;
        const char *csrf;
        char cookie[256];

        start(f);
        login(f, &s);
        call_error(f, "DELETE", "/api/v1/administrators/1?now=1", &s, NULL, 409,
                   "conflict", "id");
        o = call(f, "POST", "/api/v1/administrators?now=1", &s,
                 "{\"name\": \"bob\", \"password\": \"bob-password-1\"}", 201);
        json_object_put(o);
        /* Bob logs in; deleting him ends his sessions here. */
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"bob\", \"password\": \"bob-password-1\"}", &r);
        assert_int_equal(r.status, 200);
        assert_non_null(header(&r, "Set-Cookie", cookie, sizeof cookie));
        snprintf(bob.token, sizeof bob.token, "%.*s",
                 (int) strcspn(cookie + strlen(HTTPD_SESSION_COOKIE) + 1, ";"),
                 cookie + strlen(HTTPD_SESSION_COOKIE) + 1);
        o = body_json(&r);
        assert_int_equal(haven_json_get_string(o, "csrf_token", &csrf), 0);
        snprintf(bob.csrf, sizeof bob.csrf, "%s", csrf);
        response_done(&r);
        json_object_put(o);
        o = call(f, "GET", "/api/v1/session", &bob, NULL, 200);
        json_object_put(o);
        o = call(f, "DELETE", "/api/v1/administrators/2?now=1", &s, NULL, 200);
        call_error(f, "GET", "/api/v1/session", &bob, NULL, 401, "unauthorized",
                   NULL);
        call_error(f, "DELETE", "/api/v1/administrators/1", &s, NULL, 409,
                   "conflict", "id");
        call_error(f, "DELETE", "/api/v1/administrators/7", &s, NULL, 404,
                   "not-found", "id");
}

static void what_a_policy_cannot_say_is_checked_too(void **state) {
        struct fixture *f = *state;
        struct session s;

        start(f);
        login(f, &s);
        call_error(f, "POST", "/api/v1/networks", &s,
                   "{\"name\": \"lan\", \"uplinks\": [1]}", 400, "invalid",
                   "uplinks");
        call_error(f, "POST", "/api/v1/networks", &s,
                   "{\"name\": \"lan\", \"uplinks\": [\"an-interface-name-"
                   "too-long\"]}",
                   400, "invalid", "uplinks");
        call_error(f, "POST", "/api/v1/disks", &s,
                   "{\"name\": \"d\", \"kind\": \"esan\", \"size_mib\": 1, "
                   "\"nodes\": [\"node1\"]}",
                   400, "invalid", "nodes");
        call_error(f, "POST", "/api/v1/disks", &s,
                   "{\"name\": \"d\", \"kind\": \"esan\", \"size_mib\": 1, "
                   "\"nodes\": [0]}",
                   400, "invalid", "nodes");
        call_error(f, "POST", "/api/v1/vm-nics", &s,
                   "{\"vm_id\": 1, \"network_id\": 1, \"mac\": "
                   "\"52:54:00:12:34:5G\"}",
                   400, "invalid", "mac");
        call_error(f, "POST", "/api/v1/vm-nics", &s,
                   "{\"vm_id\": 1, \"network_id\": 1, \"mac\": "
                   "\"52-54-00-12-34-56\"}",
                   400, "invalid", "mac");
        call_error(f, "PATCH", "/api/v1/hosts/3", &s, "{}", 400, "invalid",
                   NULL);
        /* The domain's own refusal names its field. */
        call_error(f, "POST", "/api/v1/hosts?now=1", &s,
                   "{\"name\": \"ntp1\", \"address\": \"198.18.0.7\"}", 400,
                   "invalid", "name");
        assert_int_equal(f->domain.n_submits, 1);
}

static void fence_requests_are_made_followed_and_confirmed(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL, *p = NULL;
        struct json_object *row;
        struct session s;
        char path[64];
        int64_t id;

        start(f);
        login(f, &s);
        call_error(f, "POST", "/api/v1/nodes/2/fence/confirm", &s, NULL, 404,
                   "not-found", NULL);
        o = call(f, "POST", "/api/v1/nodes/2/fence", &s,
                 "{\"action\": \"reboot\", \"reason\": \"hung\"}", 201);
        id = int_of(o, "id");
        row = row_of(f, "fence_requests", id);
        assert_int_equal(int_of(row, "node_id"), 2);
        assert_string_equal(string_of(row, "action"), "reboot");
        assert_string_equal(string_of(row, "reason"), "hung");
        /* A second one follows the open one. */
        p = call(f, "POST", "/api/v1/nodes/2/fence", &s, "{}", 200);
        assert_int_equal(int_of(p, "id"), id);
        assert_true(
                json_object_get_boolean(json_object_object_get(p, "existing")));
        json_object_put(p);
        p = call(f, "GET", "/api/v1/fence-requests", &s, NULL, 200);
        assert_int_equal(json_object_array_length(array_of(p, "items")), 1);
        json_object_put(p);
        snprintf(path, sizeof path, "/api/v1/fence-requests/%" PRIi64, id);
        p = call(f, "GET", path, &s, NULL, 200);
        assert_string_equal(string_of(p, "state"), "pending");
        json_object_put(p);

        p = call(f, "POST", "/api/v1/nodes/2/fence/confirm", &s, NULL, 200);
        row = row_of(f, "fence_requests", id);
        assert_string_equal(string_of(row, "state"), "done");
        assert_non_null(
                strstr(string_of(row, "result"), "node2 confirmed off at "));
        assert_non_null(strstr(string_of(row, "result"), "by api:admin"));
        call_error(f, "POST", "/api/v1/nodes/2/fence/confirm", &s, NULL, 404,
                   "not-found", NULL);
        call_error(f, "POST", "/api/v1/nodes/2/fence", &s,
                   "{\"action\": \"explode\"}", 400, "invalid", "action");
        call_error(f, "POST", "/api/v1/nodes/7/fence", &s, "{}", 404,
                   "not-found", "id");
}

static void alerts_are_listed_newest_first_and_cleared(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *items, *row;
        struct session s;

        table_set(
                f, "alerts",
                "[{\"id\": 1, \"version\": 1, \"time\": 1, \"severity\": "
                "\"critical\", \"source\": \"fencing\", \"node\": \"node2\", "
                "\"message\": \"fencing node2 failed\", \"cleared_at\": null, "
                "\"cleared_by\": null}, {\"id\": 2, \"version\": 2, \"time\": "
                "2, \"severity\": \"warning\", \"source\": \"fencing\", "
                "\"node\": \"\", \"message\": \"x\", \"cleared_at\": null, "
                "\"cleared_by\": null}]");
        start(f);
        login(f, &s);
        o = call(f, "GET", "/api/v1/alerts", &s, NULL, 200);
        items = array_of(o, "items");
        assert_int_equal(json_object_array_length(items), 2);
        assert_int_equal(int_of(json_object_array_get_idx(items, 0), "id"), 2);
        json_object_put(o);
        o = call(f, "POST", "/api/v1/alerts/1/clear", &s, NULL, 200);
        row = row_of(f, "alerts", 1);
        assert_string_equal(string_of(row, "cleared_by"), "api:admin");
        assert_true(int_of(row, "cleared_at") > 1700000000000000);
        call_error(f, "POST", "/api/v1/alerts/1/clear", &s, NULL, 409,
                   "conflict", "id");
        call_error(f, "POST", "/api/v1/alerts/3/clear", &s, NULL, 404,
                   "not-found", "id");
}

static void without_quorum_every_write_is_503_and_reads_answer(void **state) {
        static const struct {
                const char *method, *path, *body;
        } writes[] = {
                {"POST", "/api/v1/hosts",
                 "{\"name\": \"a\", \"address\": "
                 "\"198.18.0.9\"}"},
                {"POST", "/api/v1/hosts?now=1",
                 "{\"name\": \"a\", "
                 "\"address\": \"198.18.0.9\"}"},
                {"PATCH", "/api/v1/hosts/3?now=1",
                 "{\"address\": \"198.18.0.8\"}"},
                {"DELETE", "/api/v1/hosts/3", NULL},
                {"PATCH", "/api/v1/cluster", "{\"name\": \"other\"}"},
                {"PATCH", "/api/v1/infrastructure?now=1",
                 "{\"ntp_servers\": []}"},
                {"POST", "/api/v1/nodes/2/actions/maintenance", NULL},
                {"DELETE", "/api/v1/nodes/2", NULL},
                {"POST", "/api/v1/nodes/2/fence", "{}"},
                {"POST", "/api/v1/vms/1/actions/prefer",
                 "{\"node\": \"node2\"}"},
                {"POST", "/api/v1/vms/1/actions/release", NULL},
                {"POST", "/api/v1/vms/1/actions/start", NULL},
                {"POST", "/api/v1/vms/1/actions/migrate",
                 "{\"node\": \"node2\"}"},
                {"POST", "/api/v1/alerts/1/clear", NULL},
                {"POST", "/api/v1/administrators",
                 "{\"name\": \"bob\", "
                 "\"password\": \"bob-password\"}"},
                {"POST", "/api/v1/changes/activate", NULL},
                {"POST", "/api/v1/changes/discard", NULL},
                {"DELETE", "/api/v1/changes/1", NULL},
        };
        static const char *const reads[] = {
                "/api/v1/hosts",     "/api/v1/nodes",   "/api/v1/status",
                "/api/v1/dashboard", "/api/v1/changes", "/api/v1/audit",
                "/api/v1/cluster",   "/api/v1/vms/1",
        };
        struct fixture *f = *state;
        struct session s;

        table_set(f, "vms",
                  "[{\"id\": 1, \"version\": 1, \"name\": \"web1\"}]");
        table_set(f, "alerts",
                  "[{\"id\": 1, \"version\": 1, \"severity\": "
                  "\"warning\", \"cleared_at\": null}]");
        table_set(f, "staged_changes",
                  "[{\"id\": 1, \"version\": 1, \"ops\": [], \"summary\": "
                  "\"x\"}]");
        start(f);
        login(f, &s);
        f->domain.quorate = false;
        for (size_t i = 0; i < ELEMENTSOF(writes); i++)
                call_error(f, writes[i].method, writes[i].path, &s,
                           writes[i].body, 503, "no-quorum", NULL);
        for (size_t i = 0; i < ELEMENTSOF(reads); i++)
                json_object_put(call(f, "GET", reads[i], &s, NULL, 200));
        assert_string_equal(string_of(row_of(f, "hosts", 3), "address"),
                            "198.18.0.50");
        assert_int_equal(rows_in(f, "staged_changes"), 1);
        assert_int_equal(rows_in(f, "vm_commands"), 0);
}

/* ==== Staged changes, jobs, audit ==== */

static void
staged_changes_are_listed_diffed_activated_and_discarded(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *items, *change, *ops, *op, *c;
        struct session s;
        char path[64];
        int64_t job, id;

        start(f);
        login(f, &s);
        o = call(f, "PATCH", "/api/v1/hosts/3", &s,
                 "{\"address\": \"198.18.0.51\"}", 202);
        json_object_put(o);
        o = call(f, "POST", "/api/v1/hosts", &s,
                 "{\"name\": \"web1\", \"address\": \"198.18.0.9\"}", 202);
        json_object_put(o);
        o = call(f, "DELETE", "/api/v1/hosts/3", &s, NULL, 202);
        json_object_put(o);

        o = call(f, "GET", "/api/v1/changes", &s, NULL, 200);
        items = array_of(o, "items");
        assert_int_equal(json_object_array_length(items), 3);
        change = json_object_array_get_idx(items, 0);
        assert_string_equal(string_of(change, "summary"),
                            "set hosts \"ntp1\": address=\"198.18.0.51\"");
        assert_string_equal(string_of(change, "created_by"), "api:admin");
        assert_true(int_of(change, "created_at") > 0);
        json_object_put(o);

        /* What activation would do, next to what is there now. */
        o = call(f, "GET", "/api/v1/changes/diff", &s, NULL, 200);
        items = array_of(o, "changes");
        assert_int_equal(json_object_array_length(items), 3);
        ops = array_of(json_object_array_get_idx(items, 0), "ops");
        op = json_object_array_get_idx(ops, 0);
        assert_string_equal(string_of(op, "op"), "update");
        assert_string_equal(string_of(op, "table"), "hosts");
        assert_string_equal(
                string_of(json_object_object_get(op, "current"), "address"),
                "198.18.0.50");
        c = json_object_object_get(json_object_object_get(op, "changes"),
                                   "address");
        assert_string_equal(string_of(c, "from"), "198.18.0.50");
        assert_string_equal(string_of(c, "to"), "198.18.0.51");
        op = json_object_array_get_idx(
                array_of(json_object_array_get_idx(items, 1), "ops"), 0);
        assert_string_equal(string_of(op, "op"), "insert");
        assert_false(json_object_object_get_ex(op, "current", &c));
        op = json_object_array_get_idx(
                array_of(json_object_array_get_idx(items, 2), "ops"), 0);
        assert_string_equal(string_of(op, "op"), "delete");
        assert_string_equal(
                string_of(json_object_object_get(op, "current"), "name"),
                "ntp1");
        json_object_put(o);

        /* One of them goes, the rest is activated. */
        o = call(f, "DELETE", "/api/v1/changes/3", &s, NULL, 200);
        assert_int_equal(rows_in(f, "staged_changes"), 2);
        json_object_put(o);
        o = call(f, "POST", "/api/v1/changes/activate", &s, NULL, 200);
        job = int_of(o, "job_id");
        assert_non_null(row_of(f, "jobs", job));
        assert_int_equal(rows_in(f, "staged_changes"), 0);
        assert_string_equal(string_of(row_of(f, "hosts", 3), "address"),
                            "198.18.0.51");
        assert_int_equal(rows_in(f, "hosts"), 2);
        assert_int_equal(int_of(row_of(f, "cluster", 1), "config_version"), 4);
        json_object_put(o);

        /* Staged again, then discarded. */
        o = call(f, "POST", "/api/v1/hosts", &s,
                 "{\"name\": \"web2\", \"address\": \"198.18.0.10\"}", 202);
        id = int_of(o, "change_id");
        json_object_put(o);
        o = call(f, "POST", "/api/v1/changes/discard", &s, NULL, 200);
        assert_true(json_object_get_boolean(
                json_object_object_get(o, "discarded")));
        assert_int_equal(rows_in(f, "staged_changes"), 0);
        assert_int_equal(rows_in(f, "hosts"), 2);
        snprintf(path, sizeof path, "/api/v1/changes/%" PRIi64, id);
        call_error(f, "DELETE", path, &s, NULL, 404, "not-found", "id");
        call_error(f, "POST", "/api/v1/changes/activate", &s, "{}", 400,
                   "bad-request", NULL);
}

static void changes_diff_is_pure_and_masks_passwords(void **state) {
        _cleanup_(json_object_putp) struct json_object *
                changes = json(
                       "[{\"id\": 1, \"summary\": \"s\", \"created_by\": "
                       "\"api:a\", "
                       "\"created_at\": 5, \"ops\": [{\"op\": \"update\", "
                       "\"table\": "
                       "\"administrators\", \"id\": 1, \"expect_version\": 1, "
                       "\"values\": {\"password_hash\": \"$y$new\"}}, {\"op\": "
                       "\"update\", \"table\": \"vms\", \"id\": 9, \"values\": "
                       "{\"vcpus\": 2}}, {\"op\": \"insert\", \"table\": "
                       "\"vm_nics\", "
                       "\"values\": {\"vm_id\": {\"ref\": 0}}}]}]"),
               *tables = json(
                       "{\"administrators\": [{\"id\": 1, \"name\": \"a\", "
                       "\"password_hash\": \"$y$old\"}], \"vms\": []}"),
               *o = NULL;
        struct json_object *ops, *op;
        const char *text;

        assert_int_equal(httpd_changes_diff_build(changes, tables, &o), 0);
        text = json_object_to_json_string(o);
        assert_null(strstr(text, "$y$"));
        ops = array_of(json_object_array_get_idx(array_of(o, "changes"), 0),
                       "ops");
        assert_int_equal(json_object_array_length(ops), 3);
        op = json_object_array_get_idx(ops, 1);
        assert_true(
                json_object_get_boolean(json_object_object_get(op, "missing")));
        op = json_object_array_get_idx(ops, 2);
        assert_string_equal(string_of(op, "op"), "insert");
        /* Empty input: nothing to say. */
        json_object_put(o);
        o = NULL;
        {
                _cleanup_(json_object_putp) struct json_object *none =
                        json("[]");

                assert_int_equal(httpd_changes_diff_build(none, tables, &o), 0);
                assert_int_equal(
                        json_object_array_length(array_of(o, "changes")), 0);
        }
}

static void jobs_and_their_logs_are_read_incrementally(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *items;
        struct session s;

        table_set(f, "jobs",
                  "[{\"id\": 1, \"version\": 1, \"kind\": \"activate\", "
                  "\"state\": \"done\"}, {\"id\": 2, \"version\": 2, \"kind\": "
                  "\"activate\", \"state\": \"running\"}]");
        table_set(f, "job_log",
                  "[{\"id\": 1, \"job_id\": 2, \"node\": \"node1\", "
                  "\"source\": \"haven-domaind\", \"line\": \"one\"}, "
                  "{\"id\": 2, \"job_id\": 1, \"node\": \"node1\", "
                  "\"source\": \"haven-domaind\", \"line\": \"other\"}, "
                  "{\"id\": 3, \"job_id\": 2, \"node\": \"node2\", "
                  "\"source\": \"haven-domaind\", \"line\": \"two\"}]");
        start(f);
        login(f, &s);
        o = call(f, "GET", "/api/v1/jobs", &s, NULL, 200);
        assert_int_equal(json_object_array_length(array_of(o, "items")), 2);
        json_object_put(o);
        o = call(f, "GET", "/api/v1/jobs/2", &s, NULL, 200);
        assert_string_equal(string_of(o, "state"), "running");
        json_object_put(o);
        o = call(f, "GET", "/api/v1/jobs/2/log", &s, NULL, 200);
        items = array_of(o, "items");
        assert_int_equal(json_object_array_length(items), 2);
        assert_string_equal(
                string_of(json_object_array_get_idx(items, 1), "line"), "two");
        assert_int_equal(int_of(o, "last_id"), 3);
        assert_string_equal(string_of(o, "state"), "running");
        json_object_put(o);
        o = call(f, "GET", "/api/v1/jobs/2/log?after=1", &s, NULL, 200);
        assert_int_equal(json_object_array_length(array_of(o, "items")), 1);
        json_object_put(o);
        o = call(f, "GET", "/api/v1/jobs/2/log?after=3", &s, NULL, 200);
        assert_int_equal(json_object_array_length(array_of(o, "items")), 0);
        assert_int_equal(int_of(o, "last_id"), 3);
        call_error(f, "GET", "/api/v1/jobs/9/log", &s, NULL, 404, "not-found",
                   "id");
        call_error(f, "GET", "/api/v1/jobs/2/log?after=-1", &s, NULL, 400,
                   "invalid", "after");
        call_error(f, "GET", "/api/v1/jobs/2/log?after=x", &s, NULL, 400,
                   "invalid", "after");
        call_error(f, "GET", "/api/v1/jobs/9", &s, NULL, 404, "not-found",
                   "id");
}

static void audit_is_paged_newest_first(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *rows = json_object_new_array(), *items;
        struct session s;
        char path[96];

        for (int i = 1; i <= 250; i++) {
                struct json_object *row = json_object_new_object();

                json_object_object_add(row, "id", json_object_new_int(i));
                json_object_object_add(row, "actor",
                                       json_object_new_string("api:admin"));
                json_object_array_add(rows, row);
        }
        json_object_object_add(f->domain.tables, "audit", rows);
        start(f);
        login(f, &s);
        o = call(f, "GET", "/api/v1/audit", &s, NULL, 200);
        items = array_of(o, "items");
        assert_int_equal(json_object_array_length(items), 100);
        assert_int_equal(int_of(json_object_array_get_idx(items, 0), "id"),
                         250);
        assert_int_equal(int_of(o, "next_before"), 151);
        json_object_put(o);
        o = call(f, "GET", "/api/v1/audit?limit=100&before=151", &s, NULL, 200);
        items = array_of(o, "items");
        assert_int_equal(int_of(json_object_array_get_idx(items, 0), "id"),
                         150);
        assert_int_equal(int_of(o, "next_before"), 51);
        json_object_put(o);
        o = call(f, "GET", "/api/v1/audit?before=51", &s, NULL, 200);
        assert_int_equal(json_object_array_length(array_of(o, "items")), 50);
        assert_true(json_object_object_get_ex(o, "next_before", &items));
        assert_null(items);
        json_object_put(o);
        o = call(f, "GET", "/api/v1/audit?limit=1000", &s, NULL, 200);
        assert_int_equal(json_object_array_length(array_of(o, "items")), 250);
        static const char *const bad[] = {"limit=0",   "limit=1001", "limit=-1",
                                          "limit=1e3", "limit=",     "before=0",
                                          "before=x",  "limit=01x"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                snprintf(path, sizeof path, "/api/v1/audit?%s", bad[i]);
                call_error(f, "GET", path, &s, NULL, 400, "invalid",
                           i < 5 || i == 7 ? "limit" : "before");
        }
        call_error(f, "GET", "/api/v1/audit?after=3", &s, NULL, 400, "invalid",
                   "after");
}

/* ==== VM actions ==== */

static const char WEB1[] =
        "[{\"id\": 1, \"version\": 4, \"name\": \"web1\", \"vcpus\": 1, "
        "\"memory_mib\": 512, \"ha\": \"sticky\", \"preferred_node_id\": null, "
        "\"sticky_node_id\": 1}]";

static void vm_prefer_is_written_at_once_and_null_clears_it(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *row, *v, *op;

        table_set(f, "vms", WEB1);
        start(f);
        {
                struct session s;

                login(f, &s);
                o = call(f, "POST", "/api/v1/vms/1/actions/prefer", &s,
                         "{\"node\": \"node2\"}", 200);
                assert_string_equal(string_of(o, "action"), "prefer");
                assert_int_equal(int_of(o, "id"), 1);
                row = row_of(f, "vms", 1);
                assert_int_equal(int_of(row, "preferred_node_id"), 2);
                assert_int_equal(rows_in(f, "staged_changes"), 0);
                assert_string_equal(string_of(f->domain.last_submit, "audit"),
                                    "vm web1: prefer node2");
                /* With the row's version: a change in between is a
                 * conflict. */
                op = json_object_array_get_idx(
                        array_of(f->domain.last_submit, "ops"), 0);
                assert_int_equal(int_of(op, "expect_version"), 4);

                json_object_put(TAKE_PTR(o));
                o = call(f, "POST", "/api/v1/vms/1/actions/prefer", &s,
                         "{\"node\": null}", 200);
                row = row_of(f, "vms", 1);
                assert_true(json_object_object_get_ex(row, "preferred_node_id",
                                                      &v));
                assert_null(v);
                assert_string_equal(string_of(f->domain.last_submit, "audit"),
                                    "vm web1: prefer no node");

                /* Bad inputs: nothing more is written. */
                f->domain.n_submits = 0;
                call_error(f, "POST", "/api/v1/vms/1/actions/prefer", &s,
                           "{\"node\": \"node9\"}", 400, "invalid", "node");
                call_error(f, "POST", "/api/v1/vms/1/actions/prefer", &s, "{}",
                           400, "invalid", "node");
                call_error(f, "POST", "/api/v1/vms/1/actions/prefer", &s,
                           "{\"node\": \"\"}", 400, "invalid", "node");
                call_error(f, "POST", "/api/v1/vms/1/actions/prefer", &s,
                           "{\"node\": 2}", 400, "invalid", "node");
                call_error(f, "POST", "/api/v1/vms/2/actions/prefer", &s,
                           "{\"node\": \"node2\"}", 404, "not-found", "id");
                assert_int_equal(f->domain.n_submits, 0);
        }
}

/* Every action but prefer: one vm_commands row, 202 with where to read
 * it, and the row is what the manager will see. */
static void vm_actions_write_one_command_each_and_answer_202(void **state) {
        static const struct {
                const char *action, *body, *audit;
                int64_t target;
        } cases[] = {
                {"start", NULL, "vm web1: start", 0},
                {"shutdown", NULL, "vm web1: shutdown", 0},
                {"reboot", NULL, "vm web1: reboot", 0},
                {"reset", NULL, "vm web1: reset", 0},
                {"poweroff", NULL, "vm web1: poweroff", 0},
                {"release", NULL, "vm web1: release", 0},
                {"migrate", "{\"node\": \"node2\"}", "vm web1: migrate to node2",
                 2},
        };
        struct fixture *f = *state;
        struct session s;

        table_set(f, "vms", WEB1);
        start(f);
        login(f, &s);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(json_object_putp) struct json_object *o = NULL,
                                                               *back = NULL;
                struct json_object *row, *v;
                char path[96], location[128], href[96];
                struct response r;
                int64_t id;

                snprintf(path, sizeof path, "/api/v1/vms/1/actions/%s",
                         cases[i].action);
                http(f, "POST", path, &s, NULL, cases[i].body, &r);
                if (r.status != 202)
                        fprintf(stderr, "%s: %d %s\n", path, r.status, r.body);
                assert_int_equal(r.status, 202);
                o = body_json(&r);
                assert_non_null(header(&r, "Location", location,
                                       sizeof location));
                response_done(&r);

                id = int_of(o, "id");
                assert_int_equal(id, (int64_t) i + 1);
                snprintf(href, sizeof href, "/api/v1/vm-commands/%" PRIi64, id);
                assert_string_equal(location, href);
                assert_string_equal(string_of(o, "href"), href);
                assert_int_equal(int_of(o, "vm_id"), 1);
                assert_string_equal(string_of(o, "command"), cases[i].action);
                assert_string_equal(string_of(o, "state"), "pending");
                assert_true(json_object_object_get_ex(o, "target_node_id", &v));
                if (cases[i].target)
                        assert_int_equal(json_object_get_int64(v),
                                         cases[i].target);
                else
                        assert_null(v);

                /* Written at once, as the schema wants it. */
                row = row_of(f, "vm_commands", id);
                assert_non_null(row);
                assert_int_equal(int_of(row, "vm_id"), 1);
                assert_string_equal(string_of(row, "command"),
                                    cases[i].action);
                assert_string_equal(string_of(row, "state"), "pending");
                assert_string_equal(string_of(row, "requested_by"),
                                    "api:" ADMIN);
                if (cases[i].target)
                        assert_int_equal(int_of(row, "target_node_id"),
                                         cases[i].target);
                else
                        assert_false(json_object_object_get_ex(
                                row, "target_node_id", NULL));
                assert_string_equal(string_of(f->domain.last_submit, "audit"),
                                    cases[i].audit);
                assert_int_equal(rows_in(f, "staged_changes"), 0);

                /* Where Location says, the command reads back. */
                back = call(f, "GET", location, &s, NULL, 200);
                assert_int_equal(int_of(back, "id"), id);
                assert_string_equal(string_of(back, "state"), "pending");
        }
        assert_int_equal(f->domain.n_submits, ELEMENTSOF(cases));
        /* The VM itself is untouched: the manager does the rest. */
        assert_int_equal(int_of(row_of(f, "vms", 1), "sticky_node_id"), 1);
}

static void vm_actions_refuse_bad_input_and_write_nothing(void **state) {
        static const char *const actions[] = {"start",    "shutdown", "reboot",
                                              "reset",    "poweroff", "release"};
        static const char *const bad_targets[] = {
                "{}",
                "{\"node\": null}",
                "{\"node\": \"\"}",
                "{\"node\": 2}",
                "{\"node\": [\"node2\"]}",
                "{\"node\": \"node2\", \"force\": true}",
                "[\"node2\"]",
                "{\"node\": \"node2\"",
                "\"node2\"",
        };
        struct fixture *f = *state;
        struct session s;
        char path[96];

        table_set(f, "vms", WEB1);
        start(f);
        login(f, &s);
        for (size_t i = 0; i < ELEMENTSOF(actions); i++) {
                snprintf(path, sizeof path, "/api/v1/vms/9/actions/%s",
                         actions[i]);
                call_error(f, "POST", path, &s, NULL, 404, "not-found", "id");
                snprintf(path, sizeof path, "/api/v1/vms/1/actions/%s",
                         actions[i]);
                call_error(f, "POST", path, &s, "{}", 400, "bad-request", NULL);
        }
        call_error(f, "POST", "/api/v1/vms/9/actions/migrate", &s,
                   "{\"node\": \"node2\"}", 404, "not-found", "id");
        call_error(f, "POST", "/api/v1/vms/1/actions/migrate", &s,
                   "{\"node\": \"node9\"}", 400, "invalid", "node");
        for (size_t i = 0; i < ELEMENTSOF(bad_targets); i++) {
                struct response r;

                http(f, "POST", "/api/v1/vms/1/actions/migrate", &s, NULL,
                     bad_targets[i], &r);
                if (r.status != 400)
                        fprintf(stderr, "%s: %d %s\n", bad_targets[i], r.status,
                                r.body);
                assert_int_equal(r.status, 400);
                response_done(&r);
        }
        {
                struct response r;

                http(f, "POST", "/api/v1/vms/1/actions/migrate", &s, NULL, NULL,
                     &r);
                assert_int_equal(r.status, 400);
                response_done(&r);
        }
        call_error(f, "POST", "/api/v1/vms/1/actions/fly", &s, NULL, 404,
                   "not-found", NULL);
        call_error(f, "POST", "/api/v1/vms/0/actions/start", &s, NULL, 400,
                   "invalid", "id");
        call_error(f, "POST", "/api/v1/vms/abc/actions/start", &s, NULL, 400,
                   "invalid", "id");
        assert_int_equal(f->domain.n_submits, 0);
        assert_int_equal(rows_in(f, "vm_commands"), 0);

        /* The domain's refusal (the VM went in between) is passed on. */
        f->domain.submit_error = "invalid";
        f->domain.submit_error_field = "vm_id";
        call_error(f, "POST", "/api/v1/vms/1/actions/start", &s, NULL, 400,
                   "invalid", "vm_id");
        f->domain.submit_error = NULL;
        f->domain.submit_error_field = NULL;
        assert_int_equal(rows_in(f, "vm_commands"), 0);
}

static void vm_commands_and_placements_are_read_back(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *page = NULL,
                                                       *next = NULL, *all = NULL,
                                                       *one = NULL,
                                                       *placements = NULL;
        struct json_object *items;
        struct session s;

        table_set(f, "vms", WEB1);
        table_set(f, "vm_commands",
                  "[{\"id\": 1, \"version\": 5, \"vm_id\": 1, \"command\": "
                  "\"start\", \"state\": \"done\", \"result\": \"started\"},"
                  "{\"id\": 2, \"version\": 6, \"vm_id\": 2, \"command\": "
                  "\"start\", \"state\": \"pending\", \"result\": \"\"},"
                  "{\"id\": 3, \"version\": 7, \"vm_id\": 1, \"command\": "
                  "\"migrate\", \"target_node_id\": 2, \"state\": "
                  "\"running\", \"result\": \"\"},"
                  "{\"id\": 4, \"version\": 8, \"vm_id\": 1, \"command\": "
                  "\"reboot\", \"state\": \"failed\", \"result\": \"not "
                  "running\"}]");
        table_set(f, "vm_placements",
                  "[{\"id\": 1, \"version\": 5, \"vm_id\": 1, \"node_id\": 1, "
                  "\"state\": \"waiting\", \"reason\": \"waiting for node2 to "
                  "be fenced\"}]");
        start(f);
        login(f, &s);

        /* A VM's commands, newest first, paged. */
        page = call(f, "GET", "/api/v1/vms/1/commands?limit=2", &s, NULL, 200);
        items = array_of(page, "items");
        assert_int_equal(json_object_array_length(items), 2);
        assert_int_equal(int_of(json_object_array_get_idx(items, 0), "id"), 4);
        assert_int_equal(int_of(json_object_array_get_idx(items, 1), "id"), 3);
        assert_int_equal(int_of(page, "next_before"), 3);
        next = call(f, "GET", "/api/v1/vms/1/commands?before=3", &s, NULL, 200);
        items = array_of(next, "items");
        assert_int_equal(json_object_array_length(items), 1);
        assert_string_equal(
                string_of(json_object_array_get_idx(items, 0), "result"),
                "started");
        call_error(f, "GET", "/api/v1/vms/9/commands", &s, NULL, 404,
                   "not-found", "id");
        call_error(f, "GET", "/api/v1/vms/1/commands?limit=0", &s, NULL, 400,
                   "invalid", "limit");

        all = call(f, "GET", "/api/v1/vm-commands", &s, NULL, 200);
        assert_int_equal(json_object_array_length(array_of(all, "items")), 4);
        one = call(f, "GET", "/api/v1/vm-commands/3", &s, NULL, 200);
        assert_int_equal(int_of(one, "target_node_id"), 2);
        call_error(f, "GET", "/api/v1/vm-commands/99", &s, NULL, 404,
                   "not-found", "id");

        placements = call(f, "GET", "/api/v1/vm-placements", &s, NULL, 200);
        items = array_of(placements, "items");
        assert_int_equal(json_object_array_length(items), 1);
        assert_string_equal(
                string_of(json_object_array_get_idx(items, 0), "reason"),
                "waiting for node2 to be fenced");
        assert_int_equal(f->domain.n_submits, 0);
}

/* ==== Fencing (the real haven-fenced and PDU simulator) ==== */

/* A program next to this test's build tree: $ENV, then <tree>/bin/NAME,
 * then build/bin/NAME (the plain tree serves the ASan tests too). */
static const char *program_path(const char *env, const char *name) {
        static char path[PATH_MAX + 64];
        char self[PATH_MAX], *slash;
        ssize_t n;

        if (env && getenv(env))
                return getenv(env);
        n = readlink("/proc/self/exe", self, sizeof self - 1);
        assert_true(n > 0);
        self[n] = '\0';
        slash = strrchr(self, '/'); /* <tree>/tests/test-httpd */
        assert_non_null(slash);
        *slash = '\0';
        snprintf(path, sizeof path, "%s/../bin/%s", self, name);
        if (access(path, X_OK) == 0)
                return path;
        snprintf(path, sizeof path, "%s/../../build/bin/%s", self, name);
        if (access(path, X_OK) == 0)
                return path;
        fail_msg("%s not found: build it first (make build/bin/%s)", name,
                 name);
        return NULL;
}

static uint16_t free_port(int type) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof a;
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

static bool file_has(const char *path, const char *text) {
        char buf[16384];
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        return strstr(buf, text) != NULL;
}

/* Starts argv with its output in log; the loop runs meanwhile. */
static pid_t spawn(struct fixture *f, char **argv, const char *log) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC),
                    out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                               0644);

                if (null < 0 || out < 0 || dup2(null, 0) < 0 ||
                    dup2(out, 1) < 0 || dup2(out, 2) < 0)
                        _exit(126);
                (void) setenv("MIBS", "", 1);
                (void) setenv("SNMP_PERSISTENT_DIR", f->dir, 1);
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

static void pdusim_start(struct fixture *f) {
        char listen[64], log[128], state_dir[128];
        uint64_t deadline = now_usec() + WAIT_USEC;

        f->pdusim_port = free_port(SOCK_DGRAM);
        snprintf(listen, sizeof listen, "127.0.0.1:%u", f->pdusim_port);
        snprintf(log, sizeof log, "%s/pdusim.log", f->dir);
        snprintf(state_dir, sizeof state_dir, "%s/pdu", f->dir);
        assert_int_equal(mkdir(state_dir, 0700), 0);
        char *argv[] = {(char *) program_path("HAVEN_PDUSIM", "haven-pdusim"),
                        (char *) "--listen",
                        listen,
                        (char *) "--state-dir",
                        state_dir,
                        (char *) "--log",
                        log,
                        NULL};
        f->pdusim = spawn(f, argv, "/dev/null");
        while (!file_has(log, "Listening on")) {
                assert_true(now_usec() < deadline);
                pump(f, 10000);
        }
}

/* haven-fenced against node 1's stand-in; its log in DIR/fenced.log. */
static void fenced_start(struct fixture *f) {
        char log[128];

        snprintf(log, sizeof log, "%s/fenced.log", f->dir);
        char *argv[] = {(char *) program_path("HAVEN_FENCED", "haven-fenced"),
                        (char *) "--socket",
                        f->fenced_socket,
                        (char *) "--domain-socket",
                        f->socket,
                        (char *) "--monitor-interval",
                        (char *) "0.5",
                        NULL};
        f->fenced = spawn(f, argv, log);
}

static void wait_fenced(struct fixture *f) {
        uint64_t deadline = now_usec() + WAIT_USEC;

        while (!httpd_fenced_connected(httpd_fenced(f->httpd))) {
                assert_true(now_usec() < deadline);
                pump(f, 10000);
        }
}

/* The fencing map, once node 1's fencer says device is ok. */
static struct json_object *fencing_when_ok(struct fixture *f,
                                           const struct session *s,
                                           const char *device) {
        uint64_t deadline = now_usec() + WAIT_USEC;

        for (;;) {
                struct json_object *o = call(f, "GET", "/api/v1/fencing", s,
                                             NULL, 200),
                                   *devices = array_of(o, "devices");

                for (size_t i = 0; i < json_object_array_length(devices); i++) {
                        struct json_object *d = json_object_array_get_idx(
                                                   devices, i),
                                           *ok;

                        if (streq(string_of(d, "device"), device) &&
                            json_object_object_get_ex(
                                    json_object_object_get(d, "health"), "ok",
                                    &ok) &&
                            json_object_get_boolean(ok))
                                return o;
                }
                json_object_put(o);
                assert_true(now_usec() < deadline);
                for (int i = 0; i < 20; i++)
                        pump(f, 10000);
        }
}

static void fencing_endpoints_reach_haven_fenced(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *nodes, *v;
        struct session s;
        char body[512], row[512];

        pdusim_start(f);
        snprintf(row, sizeof row,
                 "[{\"id\": 1, \"version\": 5, \"name\": \"pdu1\", \"type\": "
                 "\"apc-snmp\", \"address\": \"127.0.0.1\", \"parameters\": "
                 "{\"port\": %u, \"snmp_version\": \"2c\", \"community\": "
                 "\"private\", \"poll_ms\": 10, \"outlets\": 8}, \"enabled\": "
                 "true}]",
                 f->pdusim_port);
        table_set(f, "fence_devices", row);
        table_set(f, "fence_outlets",
                  "[{\"id\": 1, \"version\": 5, \"node_id\": 2, \"device_id\": "
                  "1, \"outlet\": \"2\", \"level\": 1}]");
        fenced_start(f);
        start(f);
        login(f, &s);
        wait_fenced(f);

        /* A device that is not added yet. */
        snprintf(body, sizeof body,
                 "{\"type\": \"apc-snmp\", \"address\": \"127.0.0.1\", "
                 "\"parameters\": {\"port\": %u, \"snmp_version\": \"2c\", "
                 "\"community\": \"private\"}, \"outlets\": [\"2\"]}",
                 f->pdusim_port);
        o = call(f, "POST", "/api/v1/fence-devices/test", &s, body, 200);
        assert_true(json_object_get_boolean(json_object_object_get(o, "ok")));
        assert_int_equal(
                int_of(json_object_object_get(o, "details"), "outlet_count"),
                8);
        json_object_put(o);
        /* Its parameters are checked by the fencer, named in the answer. */
        call_error(f, "POST", "/api/v1/fence-devices/test", &s,
                   "{\"type\": \"apc-snmp\", \"address\": \"127.0.0.1\", "
                   "\"parameters\": {\"snmp_version\": \"9\"}}",
                   400, "invalid", "snmp_version");
        call_error(f, "POST", "/api/v1/fence-devices/test", &s,
                   "{\"type\": \"apc-snmp\"}", 400, "invalid", "address");
        call_error(f, "POST", "/api/v1/fence-devices/test", &s,
                   "{\"type\": \"apc-snmp\", \"address\": \"127.0.0.1\", "
                   "\"outlets\": [3]}",
                   400, "invalid", "outlets");

        /* A device that is. */
        o = call(f, "POST", "/api/v1/fence-devices/1/test", &s, NULL, 200);
        assert_true(json_object_get_boolean(json_object_object_get(o, "ok")));
        json_object_put(o);
        call_error(f, "POST", "/api/v1/fence-devices/9/test", &s, NULL, 404,
                   "not-found", "id");

        /* The agents, for the UI's form. */
        o = call(f, "GET", "/api/v1/fence-agents", &s, NULL, 200);
        assert_non_null(
                strstr(json_object_to_json_string(array_of(o, "agents")),
                       "\"fence_apc_snmp\""));
        json_object_put(o);
        o = call(f, "GET", "/api/v1/fence-agents/fence_apc_snmp", &s, NULL,
                 200);
        assert_true(json_object_array_length(
                            array_of(json_object_object_get(o, "metadata"),
                                     "parameters")) > 5);
        json_object_put(o);
        call_error(f, "GET", "/api/v1/fence-agents/fence_nothing_here", &s,
                   NULL, 404, "not-found", "agent");
        call_error(f, "GET", "/api/v1/fence-agents/not-an-agent", &s, NULL, 400,
                   "invalid", "agent");

        /* A node's outlets, read. */
        o = call(f, "GET", "/api/v1/nodes/2/fence-check", &s, NULL, 200);
        assert_true(json_object_get_boolean(json_object_object_get(o, "ok")));
        assert_string_equal(string_of(o, "node"), "node2");
        json_object_put(o);
        call_error(f, "GET", "/api/v1/nodes/1/fence-check", &s, NULL, 404,
                   "not-found", "node");

        /* Every device as every node sees it; who can be fenced. */
        o = fencing_when_ok(f, &s, "pdu1");
        nodes = array_of(o, "nodes");
        assert_int_equal(json_object_array_length(nodes), 2);
        v = json_object_array_get_idx(nodes, 0);
        assert_string_equal(string_of(v, "node"), "node1");
        assert_false(json_object_get_boolean(
                json_object_object_get(v, "fenceable")));
        assert_non_null(string_of(v, "reason"));
        v = json_object_array_get_idx(nodes, 1);
        assert_string_equal(string_of(v, "node"), "node2");
        assert_true(json_object_get_boolean(
                json_object_object_get(v, "fenceable")));
        assert_string_equal(
                string_of(json_object_array_get_idx(array_of(o, "devices"), 0),
                          "seen_from"),
                "node1");

        /* Without haven-fenced: 503, saying so. */
        child_stop(&f->fenced);
        {
                uint64_t deadline = now_usec() + WAIT_USEC;
                struct response r;
                _cleanup_(json_object_putp) struct json_object *e = NULL;
                struct json_object *error;

                while (httpd_fenced_connected(httpd_fenced(f->httpd))) {
                        assert_true(now_usec() < deadline);
                        pump(f, 10000);
                }
                http(f, "GET", "/api/v1/fence-agents", &s, NULL, NULL, &r);
                assert_error(&r, 503, "unavailable", NULL);
                e = body_json(&r);
                assert_int_equal(haven_json_get_object(e, "error", &error), 0);
                assert_string_equal(string_of(error, "message"),
                                    "haven-fenced is not reachable on this "
                                    "node");
                response_done(&r);
        }
}

static void fenceability_is_merged_as_havenctl_does(void **state) {
        _cleanup_(json_object_putp) struct json_object
                *entries = json(
                        "[{\"node\": 1, \"key\": \"fencing\", \"value\": "
                        "{\"devices\": "
                        "{\"pdu1\": {\"ok\": true}}, \"nodes\": {\"node1\": "
                        "{\"ok\": "
                        "true}, \"node2\": {\"ok\": false, \"reason\": \"level "
                        "1: "
                        "no answer\"}}}}, {\"node\": 2, \"key\": \"fencing\", "
                        "\"value\": {\"devices\": {\"pdu1\": {\"ok\": false}}, "
                        "\"nodes\": {\"node1\": {\"ok\": true}}}}, {\"node\": "
                        "3, "
                        "\"key\": \"vm/x\", \"value\": {\"nodes\": {\"node3\": "
                        "{\"ok\": true}}}}]"),
                *rows = json("[{\"node_id\": 1, \"name\": \"node1\"}, "
                             "{\"node_id\": 2, "
                             "\"name\": \"node2\"}, {\"node_id\": 3, \"name\": "
                             "\"node3\"}]"),
                *o = NULL;
        struct json_object *nodes;
        const char *reason;

        /* node1 says it can fence itself: that does not count. */
        assert_true(httpd_fence_node_fenceable(entries, 1, "node1", &reason));
        assert_false(httpd_fence_node_fenceable(entries, 2, "node2", &reason));
        assert_string_equal(reason, "level 1: no answer");
        /* Only "fencing" entries speak. */
        assert_false(httpd_fence_node_fenceable(entries, 3, "node3", &reason));
        assert_int_equal(httpd_fencing_build(entries, rows, &o), 0);
        assert_int_equal(json_object_array_length(array_of(o, "devices")), 2);
        nodes = array_of(o, "nodes");
        assert_true(json_object_get_boolean(json_object_object_get(
                json_object_array_get_idx(nodes, 0), "fenceable")));
        assert_false(json_object_get_boolean(json_object_object_get(
                json_object_array_get_idx(nodes, 1), "fenceable")));
}

/* ==== Dashboard and samples ==== */

static void dashboard_tables(struct fixture *f) {
        char jobs[512];
        uint64_t now = haven_now_usec(CLOCK_REALTIME);

        table_set(f, "vms",
                  "[{\"id\": 1, \"version\": 1, \"name\": \"web1\", \"ha\": "
                  "\"on\"}, {\"id\": 2, \"version\": 1, \"name\": \"web2\", "
                  "\"ha\": \"sticky\"}, {\"id\": 3, \"version\": 1, \"name\": "
                  "\"db1\", \"ha\": \"off\"}]");
        table_set(f, "disks",
                  "[{\"id\": 1, \"name\": \"d1\", \"size_mib\": 1024}, "
                  "{\"id\": 2, \"name\": \"d2\", \"size_mib\": 3072}]");
        table_set(f, "alerts",
                  "[{\"id\": 1, \"severity\": \"critical\", \"cleared_at\": "
                  "null}, {\"id\": 2, \"severity\": \"warning\", "
                  "\"cleared_at\": 5}, {\"id\": 3, \"severity\": \"warning\", "
                  "\"cleared_at\": null}]");
        snprintf(jobs, sizeof jobs,
                 "[{\"id\": 1, \"state\": \"running\", \"created_at\": 1}, "
                 "{\"id\": 2, \"state\": \"failed\", \"created_at\": 1, "
                 "\"finished_at\": %" PRIu64 "}, {\"id\": 3, \"state\": "
                 "\"failed\", \"created_at\": 1, \"finished_at\": 2}]",
                 (uint64_t) (now - 60000000ull));
        table_set(f, "jobs", jobs);
        json_object_put(f->domain.entries);
        f->domain.entries = json(
                "[{\"node\": 1, \"key\": \"vm/web1\", \"value\": {\"node\": "
                "\"node1\", \"state\": \"running\", \"vnc_port\": 5900}}, "
                "{\"node\": 2, \"key\": \"vm/db1\", \"value\": {\"node\": "
                "\"node2\", \"state\": \"paused\"}}, {\"node\": 1, \"key\": "
                "\"node/metrics\", \"value\": {\"cpu_percent\": 12.5, "
                "\"mem_used_mib\": 1000, \"mem_total_mib\": 4000, "
                "\"swap_used_mib\": 0, \"swap_total_mib\": 1024, "
                "\"disk_used_mib\": 100, \"disk_total_mib\": 900}}, "
                "{\"node\": 2, \"key\": \"fencing\", \"value\": {\"nodes\": "
                "{\"node1\": {\"ok\": true}}}}, "
                "{\"node\": 1, \"key\": \"vmd\", \"value\": {\"ready\": "
                "true, \"switches\": [{\"name\": \"lan\", \"bridge\": "
                "\"hv-lan\", \"port\": \"eth1\", \"error\": null}, "
                "{\"name\": \"dmz\", \"error\": \"eth0 carries 10.0.0.1\"}, "
                "{\"bridge\": \"nameless\"}]}}, "
                "{\"node\": 2, \"key\": \"vmd\", \"value\": {\"switches\": "
                "[{\"name\": \"lan\", \"error\": null}]}}]");
        f->domain.offline[2] = true;
}

static void dashboard_answers_every_tile_from_cached_bytes(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *tile, *nodes, *n, *v;
        struct session s;
        struct response r;
        char etag[64], extra[128];
        unsigned builds;

        dashboard_tables(f);
        start(f);
        login(f, &s);
        o = call(f, "GET", "/api/v1/dashboard", &s, NULL, 200);
        tile = json_object_object_get(o, "ha");
        assert_int_equal(int_of(tile, "nodes_total"), 2);
        assert_int_equal(int_of(tile, "nodes_active"), 1);
        assert_false(json_object_get_boolean(
                json_object_object_get(tile, "all_active")));
        assert_int_equal(int_of(tile, "resources_total"), 2);
        assert_int_equal(int_of(tile, "resources_running"), 1);
        assert_non_null(
                strstr(json_object_to_json_string(tile), "node2 is offline"));
        tile = json_object_object_get(o, "vms");
        assert_int_equal(int_of(tile, "configured"), 3);
        assert_int_equal(int_of(tile, "on"), 1);
        assert_int_equal(int_of(tile, "paused"), 1);
        tile = json_object_object_get(o, "disks");
        assert_int_equal(int_of(tile, "count"), 2);
        assert_int_equal(int_of(tile, "size_mib"), 4096);
        tile = json_object_object_get(o, "monitoring");
        assert_int_equal(
                int_of(json_object_object_get(tile, "alerts"), "critical"), 1);
        assert_int_equal(
                int_of(json_object_object_get(tile, "alerts"), "warning"), 1);
        /* node1 is fenceable (node2 says so); node2 is not. */
        assert_string_equal(json_object_to_json_string_ext(
                                    array_of(tile, "nodes_not_fenceable"),
                                    JSON_C_TO_STRING_PLAIN),
                            "[\"node2\"]");
        tile = json_object_object_get(o, "jobs");
        assert_int_equal(int_of(tile, "running"), 1);
        assert_int_equal(int_of(tile, "failed_recent"), 1);
        nodes = array_of(o, "nodes");
        n = json_object_array_get_idx(nodes, 0);
        assert_string_equal(string_of(n, "name"), "node1");
        assert_true(
                json_object_get_boolean(json_object_object_get(n, "online")));
        assert_int_equal(int_of(n, "mem_total_mib"), 4000);
        assert_int_equal(int_of(n, "disk_used_mib"), 100);
        /* Its virtual switches as its haven-vmd reports them (an item
         * without a name is left out). */
        assert_string_equal(
                json_object_to_json_string_ext(array_of(n, "switches"),
                                               JSON_C_TO_STRING_PLAIN),
                "[{\"name\":\"lan\",\"error\":null},{\"name\":\"dmz\","
                "\"error\":\"eth0 carries 10.0.0.1\"}]");
        n = json_object_array_get_idx(nodes, 1);
        assert_false(
                json_object_get_boolean(json_object_object_get(n, "online")));
        assert_true(json_object_object_get_ex(n, "cpu_percent", &v));
        assert_null(v);
        /* Offline: what it reported before is not shown. */
        assert_true(json_object_object_get_ex(n, "switches", &v));
        assert_null(v);
        json_object_put(o);
        o = NULL;

        /* Many reads, one build; the ETag saves the bytes. */
        builds = httpd_dashboard_builds(httpd_dashboard(f->httpd));
        f->domain.n_queries = 0;
        for (int i = 0; i < 20; i++) {
                http(f, "GET", "/api/v1/dashboard", &s, NULL, NULL, &r);
                assert_int_equal(r.status, 200);
                assert_non_null(header(&r, "ETag", etag, sizeof etag));
                response_done(&r);
        }
        assert_int_equal(httpd_dashboard_builds(httpd_dashboard(f->httpd)),
                         builds);
        assert_int_equal(f->domain.n_queries, 0);
        snprintf(extra, sizeof extra, "If-None-Match: %s\r\n", etag);
        http(f, "GET", "/api/v1/dashboard", &s, extra, NULL, &r);
        assert_int_equal(r.status, 304);
        response_done(&r);

        /* A commit: rebuilt, and the answer changes. */
        table_set(f, "vms", "[]");
        standin_push(f, "{\"event\": \"commit\", \"version\": 20, \"tables\": "
                        "[\"vms\"], \"actor\": \"t\"}");
        {
                uint64_t deadline = now_usec() + WAIT_USEC;

                while (httpd_dashboard_builds(httpd_dashboard(f->httpd)) ==
                       builds) {
                        assert_true(now_usec() < deadline);
                        pump(f, 1000);
                }
        }
        o = call(f, "GET", "/api/v1/dashboard", &s, NULL, 200);
        assert_int_equal(int_of(json_object_object_get(o, "vms"), "configured"),
                         0);
        http(f, "GET", "/api/v1/dashboard", &s, extra, NULL, &r);
        assert_int_equal(r.status, 200); /* the old ETag no longer matches */
        response_done(&r);
        /* A burst of events: one more build, not one per event. */
        builds = httpd_dashboard_builds(httpd_dashboard(f->httpd));
        for (int i = 0; i < 10; i++)
                standin_push(f, "{\"event\": \"status\", \"node\": 2, \"key\": "
                                "\"node/metrics\", \"value\": {}}");
        for (int i = 0; i < 100; i++)
                pump(f, 1000);
        assert_true(httpd_dashboard_builds(httpd_dashboard(f->httpd)) <=
                    builds + 2);
        assert_true(httpd_dashboard_builds(httpd_dashboard(f->httpd)) > builds);
}

static void dashboard_is_served_while_domaind_is_silent(void **state) {
        struct fixture *f = *state;
        struct session s;
        struct client *c;
        struct response r;

        start(f);
        login(f, &s);
        f->domain.silent = true;
        standin_push(f, "{\"event\": \"commit\", \"version\": 20, \"tables\": "
                        "[\"vms\"], \"actor\": \"t\"}");
        /* A rebuild is under way (and will not finish): the last answer
         * is served meanwhile. */
        for (int i = 0; i < 20; i++)
                pump(f, 1000);
        c = client_connect(f);
        request_queue(c, "GET", "/api/v1/dashboard", &s, NULL, NULL);
        assert_true(client_wait(f, c, false, &r));
        assert_int_equal(r.status, 200);
        response_done(&r);
        client_close(c);
}

static void dashboard_is_built_from_its_inputs_alone(void **state) {
        _cleanup_(json_object_putp) struct json_object
                *status = json("{\"version\": 7, \"config_version\": 2, "
                               "\"quorate\": true, "
                               "\"members\": [{\"id\": 1, \"online\": true}, "
                               "{\"id\": 2, "
                               "\"online\": true}]}"),
                *nodes = json("[{\"node_id\": 1, \"name\": \"a\", \"state\": "
                              "\"active\"}, "
                              "{\"node_id\": 2, \"name\": \"b\", \"state\": "
                              "\"standby\"}]"),
                *vms = json("[{\"name\": \"v\", \"ha\": \"on\"}]"),
                *empty = json("[]"), *o = NULL;
        struct httpd_dashboard_input in = {.status = status,
                                           .nodes = nodes,
                                           .vms = vms,
                                           .disks = empty,
                                           .alerts = empty,
                                           .jobs = empty,
                                           .entries = empty};
        struct json_object *ha;

        assert_int_equal(httpd_dashboard_build(&in, 1000, &o), 0);
        assert_int_equal(int_of(o, "version"), 7);
        ha = json_object_object_get(o, "ha");
        assert_int_equal(int_of(ha, "nodes_active"), 1);
        assert_string_equal(
                json_object_to_json_string_ext(array_of(ha, "details"),
                                               JSON_C_TO_STRING_PLAIN),
                "[\"b is standby\",\"1 of 1 HA VMs is not "
                "running\"]");
        /* Nobody fences anybody: both listed. */
        assert_int_equal(json_object_array_length(array_of(
                                 json_object_object_get(o, "monitoring"),
                                 "nodes_not_fenceable")),
                         2);
        json_object_put(o);
        o = NULL;
        /* Nothing at all: still every tile, with zeros. */
        in = (struct httpd_dashboard_input){};
        assert_int_equal(httpd_dashboard_build(&in, 1000, &o), 0);
        assert_int_equal(int_of(json_object_object_get(o, "vms"), "configured"),
                         0);
        assert_false(json_object_get_boolean(json_object_object_get(
                json_object_object_get(o, "ha"), "all_active")));
}

static void write_text(const char *dir, const char *name, const char *text) {
        char path[256];
        FILE *file;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        file = fopen(path, "we");
        assert_non_null(file);
        fputs(text, file);
        assert_int_equal(fclose(file), 0);
}

static const char meminfo[] = "MemTotal:        8000000 kB\n"
                              "MemFree:         1000000 kB\n"
                              "MemAvailable:    6000000 kB\n"
                              "SwapCached:            0 kB\n"
                              "SwapTotal:       2097148 kB\n"
                              "SwapFree:        1048574 kB\n";

static void samples_are_published_for_every_dashboard(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *node, *value = NULL;
        uint64_t deadline;
        struct session s;

        assert_int_equal(mkdir(f->proc, 0755), 0);
        write_text(f->proc, "stat",
                   "cpu  100 0 100 800 0 0 0 0 0 0\n"
                   "cpu0 100 0 100 800 0 0 0 0 0 0\n");
        write_text(f->proc, "meminfo", meminfo);
        f->config.proc_dir = f->proc;
        f->config.metrics_interval_usec = 50000;
        start(f);
        /* The second sample has a CPU figure: 300 of 1000 more ticks. */
        write_text(f->proc, "stat", "cpu  300 0 200 1500 0 0 0 0 0 0\n");
        deadline = now_usec() + WAIT_USEC;
        for (;;) {
                value = NULL;
                for (size_t i = 0;
                     i < json_object_array_length(f->domain.entries); i++) {
                        struct json_object *e =
                                json_object_array_get_idx(f->domain.entries, i);

                        if (streq(string_of(e, "key"), "node/metrics") &&
                            int_of(e, "node") == 1)
                                value = json_object_object_get(e, "value");
                }
                if (value && json_object_object_get(value, "cpu_percent"))
                        break;
                assert_true(now_usec() < deadline);
                pump(f, 10000);
        }
        assert_int_equal(int_of(value, "mem_total_mib"), 7812);
        assert_int_equal(int_of(value, "mem_used_mib"), 1953);
        assert_int_equal(int_of(value, "swap_total_mib"), 2047);
        assert_int_equal(int_of(value, "swap_used_mib"), 1023);
        assert_true(int_of(value, "disk_total_mib") > 0);
        assert_true(json_object_get_double(json_object_object_get(
                            value, "cpu_percent")) == 30.0);
        login(f, &s);
        /* Every dashboard shows it (after the status event). */
        for (int i = 0; i < 50; i++)
                pump(f, 1000);
        o = call(f, "GET", "/api/v1/dashboard", &s, NULL, 200);
        node = json_object_array_get_idx(array_of(o, "nodes"), 0);
        assert_int_equal(int_of(node, "mem_total_mib"), 7812);
}

static void samples_read_procfs_text(void **state) {
        struct httpd_sample s = {};
        uint64_t total, idle;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *v;

        assert_int_equal(httpd_sample_parse_stat("cpu  10 20 30 40 50 60 70 "
                                                 "80 90 100\ncpu0 1 2 3 4\n",
                                                 &total, &idle),
                         0);
        assert_int_equal(total, 360); /* guest time is in user already */
        assert_int_equal(idle, 90);
        assert_int_equal(
                httpd_sample_parse_stat("cpu  1 2 3 4\n", &total, &idle), 0);
        assert_int_equal(total, 10);
        assert_int_equal(
                httpd_sample_parse_stat("cpu0 1 2 3 4\n", &total, &idle),
                -EBADMSG);
        assert_int_equal(httpd_sample_parse_stat("cpu  1 2\n", &total, &idle),
                         -EBADMSG);
        assert_int_equal(httpd_sample_parse_stat("", &total, &idle), -EBADMSG);
        assert_int_equal(httpd_sample_parse_meminfo(meminfo, &s), 0);
        assert_int_equal(s.mem_available_kib, 6000000);
        assert_int_equal(s.swap_free_kib, 1048574);
        assert_int_equal(httpd_sample_parse_meminfo("MemTotal: 5 kB\n", &s),
                         -EBADMSG);
        /* A key that only starts like another. */
        assert_int_equal(httpd_sample_parse_meminfo(
                                 "MemTotalX: 1 kB\nMemAvailable: 1 kB\n"
                                 "SwapTotal: 1 kB\nSwapFree: 1 kB\n",
                                 &s),
                         -EBADMSG);
        s.cpu_percent = -1;
        o = httpd_sample_to_json(&s, 5);
        assert_true(json_object_object_get_ex(o, "cpu_percent", &v));
        assert_null(v);
        assert_int_equal(int_of(o, "time"), 5);
}

/* ==== Wizard ==== */

static void wait_cluster_state(struct fixture *f, enum httpd_cluster_state s) {
        uint64_t deadline = now_usec() + WAIT_USEC;

        while (httpd_cluster_state(f->httpd) != s) {
                assert_true(now_usec() < deadline);
                pump(f, 1000);
        }
}

static void wizard_creates_a_cluster_only_while_there_is_none(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct session s;
        const char *name;

        table_set(f, "cluster", "[]");
        start(f);
        assert_int_equal(httpd_cluster_state(f->httpd), HTTPD_CLUSTER_NONE);
        /* A fresh node: no administrator to log in as, no session. */
        o = call(f, "POST", "/api/v1/wizard/cluster-create", NULL,
                 "{\"name\": \"lab2\", \"admin\": \"admin\", \"password\": "
                 "\"a-long-password\", \"address\": \"198.18.0.1\"}",
                 201);
        assert_string_equal(string_of(o, "cluster"), "lab2");
        assert_int_equal(int_of(o, "node_id"), 1);
        assert_string_equal(string_of(row_of(f, "cluster", 1), "name"), "lab2");
        wait_cluster_state(f, HTTPD_CLUSTER_MEMBER);
        /* Now it is in one: refused, with or without a session. */
        call_error(f, "POST", "/api/v1/wizard/cluster-create", NULL,
                   "{\"name\": \"lab3\", \"admin\": \"admin\", \"password\": "
                   "\"a-long-password\"}",
                   409, "clustered", NULL);
        login(f, &s);
        call_error(f, "POST", "/api/v1/wizard/cluster-join", &s,
                   "{\"address\": \"198.18.0.2\", \"admin\": \"admin\", "
                   "\"password\": \"x\"}",
                   409, "clustered", NULL);
        assert_int_equal(
                haven_json_get_string(row_of(f, "cluster", 1), "name", &name),
                0);
        assert_string_equal(name, "lab2");
}

static void wizard_joins_a_cluster_from_a_fresh_node(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;

        table_set(f, "cluster", "[]");
        start(f);
        o = call(f, "POST", "/api/v1/wizard/cluster-join", NULL,
                 "{\"address\": \"198.18.0.1\", \"admin\": \"admin\", "
                 "\"password\": \"x\"}",
                 200);
        assert_int_equal(int_of(o, "node_id"), 1);
        wait_cluster_state(f, HTTPD_CLUSTER_MEMBER);
}

static void network_check_pings_with_the_mtu(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct session s;

        start(f);
        /* In a cluster: a session is needed. */
        call_error(f, "POST", "/api/v1/wizard/network-check", NULL,
                   "{\"address\": \"127.0.0.1\", \"mtu\": 1500}", 401,
                   "unauthorized", NULL);
        login(f, &s);
        o = call(f, "POST", "/api/v1/wizard/network-check", &s,
                 "{\"address\": \"127.0.0.1\", \"mtu\": 9216}", 200);
        assert_true(json_object_get_boolean(json_object_object_get(o, "ok")));
        assert_int_equal(int_of(o, "transmitted"), 3);
        assert_int_equal(int_of(o, "received"), 3);
        assert_int_equal(int_of(o, "mtu"), 9216);
        assert_true(json_object_get_double(
                            json_object_object_get(o, "rtt_avg_ms")) >= 0);
        json_object_put(o);
        o = call(f, "POST", "/api/v1/wizard/network-check", &s,
                 "{\"address\": \"::1\", \"mtu\": 1500}", 200);
        assert_true(json_object_get_boolean(json_object_object_get(o, "ok")));
        static const char *const bad[] = {"node1", "1.2.3", "127.0.0.1/8",
                                          "::g", "-c1"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char body[128];

                snprintf(body, sizeof body,
                         "{\"address\": \"%s\", \"mtu\": 1500}", bad[i]);
                call_error(f, "POST", "/api/v1/wizard/network-check", &s, body,
                           400, "invalid", "address");
        }
        call_error(f, "POST", "/api/v1/wizard/network-check", &s,
                   "{\"address\": \"127.0.0.1\", \"mtu\": 575}", 400, "invalid",
                   "mtu");
        call_error(f, "POST", "/api/v1/wizard/network-check", &s,
                   "{\"address\": \"127.0.0.1\", \"mtu\": 9217}", 400,
                   "invalid", "mtu");
}

static void ping_output_is_read(void **state) {
        struct httpd_ping_result p;

        httpd_ping_parse(
                "PING 127.0.0.1 (127.0.0.1) 1472(1500) bytes of data.\n"
                "1480 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.043 ms\n"
                "\n--- 127.0.0.1 ping statistics ---\n"
                "3 packets transmitted, 3 received, 0% packet loss, time "
                "2044ms\nrtt min/avg/max/mdev = 0.043/0.050/0.055/0.005 ms\n",
                0, &p);
        assert_true(p.ok);
        assert_int_equal(p.transmitted, 3);
        assert_int_equal(p.received, 3);
        assert_true(p.rtt_avg_ms > 0.049 && p.rtt_avg_ms < 0.051);
        /* Too large for this host's interface. */
        httpd_ping_parse("PING 127.0.0.1 (127.0.0.1) 70000(70028) bytes of "
                         "data.\n\n--- 127.0.0.1 ping statistics ---\n"
                         "1 packets transmitted, 0 received, 100% packet "
                         "loss, time 0ms\n\nping: local error: message too "
                         "long, mtu=1400\n",
                         1, &p);
        assert_false(p.ok);
        assert_int_equal(p.path_mtu, 1400);
        assert_non_null(strstr(p.message, "at most 1400 bytes"));
        /* A hop says so. */
        httpd_ping_parse("From 198.18.0.7 icmp_seq=1 Frag needed and DF set "
                         "(mtu = 1400)\n3 packets transmitted, 0 received, "
                         "+3 errors, 100% packet loss\n",
                         1, &p);
        assert_false(p.ok);
        assert_int_equal(p.path_mtu, 1400);
        /* Some came back. */
        httpd_ping_parse("3 packets transmitted, 1 received, 66% packet loss\n",
                         1, &p);
        assert_false(p.ok);
        assert_string_equal(p.message, "1 of 3 frames came back");
        /* Nowhere to go. */
        httpd_ping_parse("ping: connect: Network is unreachable\n", 2, &p);
        assert_false(p.ok);
        assert_string_equal(p.message, "connect: Network is unreachable");
        httpd_ping_parse(NULL, -1, &p);
        assert_false(p.ok);
        assert_true(p.message[0] != '\0');
        httpd_ping_parse("99999999999 packets transmitted, x received", 0, &p);
        assert_false(p.ok);
}

/* ==== This node's interfaces ==== */

/* A file below dir (made with its directories). */
static void sys_file(const char *dir, const char *name, const char *text) {
        char path[512];

        snprintf(path, sizeof path, "%s/%s", dir, name);
        for (char *p = path + strlen(dir) + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        (void) mkdir(path, 0755);
                        *p = '/';
                }
        write_file(dir, name, text);
}

static void sys_dir(const char *dir, const char *name) {
        char path[512];

        snprintf(path, sizeof path, "%s/%s", dir, name);
        assert_int_equal(mkdir(path, 0755), 0);
}

/* The interface name of a builder's answer (borrowed), or NULL. */
static struct json_object *interface_named(struct json_object *o,
                                           const char *name) {
        struct json_object *list = array_of(o, "interfaces");

        for (size_t i = 0; i < json_object_array_length(list); i++) {
                struct json_object *x = json_object_array_get_idx(list, i);

                if (streq(string_of(x, "name"), name))
                        return x;
        }
        return NULL;
}

static bool is_null(struct json_object *o, const char *key) {
        struct json_object *v = (struct json_object *) 1;

        assert_true(json_object_object_get_ex(o, key, &v));
        return v == NULL;
}

/* One getifaddrs(3) entry: name, an address and its prefix. */
struct ifaddr_entry {
        struct ifaddrs ifa;
        struct sockaddr_storage addr, mask;
};

static void ifaddr_entry(struct ifaddr_entry *x, struct ifaddr_entry *next,
                        const char *name, int family, const char *address,
                        unsigned prefix) {
        unsigned char *m;
        size_t bytes;

        *x = (struct ifaddr_entry){};
        x->ifa.ifa_next = next ? &next->ifa : NULL;
        x->ifa.ifa_name = (char *) name;
        x->ifa.ifa_addr = (struct sockaddr *) &x->addr;
        x->ifa.ifa_netmask = (struct sockaddr *) &x->mask;
        x->addr.ss_family = x->mask.ss_family = (sa_family_t) family;
        if (family == AF_INET) {
                assert_int_equal(
                        inet_pton(AF_INET, address,
                                  &((struct sockaddr_in *) &x->addr)->sin_addr),
                        1);
                m = (unsigned char *) &((struct sockaddr_in *) &x->mask)
                            ->sin_addr;
                bytes = 4;
        } else if (family == AF_INET6) {
                assert_int_equal(inet_pton(AF_INET6, address,
                                           &((struct sockaddr_in6 *) &x->addr)
                                                    ->sin6_addr),
                                 1);
                m = (unsigned char *) &((struct sockaddr_in6 *) &x->mask)
                            ->sin6_addr;
                bytes = 16;
        } else {
                x->ifa.ifa_netmask = NULL;
                return;
        }
        for (size_t i = 0; i < bytes; i++) {
                unsigned bits = prefix > 8 ? 8 : prefix;

                m[i] = (unsigned char) (0xff00u >> bits);
                prefix -= bits;
        }
}

/* Bad inputs tried: a name with a space and one of 16 characters (both
 * skipped), a plain file among the interfaces (bonding_masters), a MAC in
 * capitals and one of garbage, an operstate with capitals, no carrier file
 * (an interface that is down), speed -1, a speed past any NIC, an MTU of
 * letters, a master link to a bad name, addresses of other families, of
 * other interfaces and without an address, a missing directory, more
 * interfaces than the limit. */
static void interfaces_are_read_from_sysfs_and_getifaddrs(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct ifaddr_entry a[6];
        struct json_object *x, *addrs;
        char net[128], path[256];

        snprintf(net, sizeof net, "%s/net", f->dir);
        assert_int_equal(mkdir(net, 0755), 0);
        /* A NIC with a cable. */
        sys_file(net, "eth0/address", "52:54:00:aa:bb:01\n");
        sys_file(net, "eth0/operstate", "up\n");
        sys_file(net, "eth0/carrier", "1\n");
        sys_file(net, "eth0/speed", "10000\n");
        sys_file(net, "eth0/mtu", "9000\n");
        sys_file(net, "eth0/type", "1\n");
        sys_file(net, "eth0/uevent", "INTERFACE=eth0\nIFINDEX=2\n");
        sys_dir(net, "eth0/device");
        /* One without (the kernel refuses to read carrier then), in a
         * bond. */
        sys_file(net, "eth1/address", "52:54:00:AA:BB:02\n");
        sys_file(net, "eth1/operstate", "down\n");
        sys_file(net, "eth1/speed", "-1\n");
        sys_file(net, "eth1/mtu", "1500\n");
        sys_file(net, "eth1/type", "1\n");
        sys_dir(net, "eth1/device");
        snprintf(path, sizeof path, "%s/eth1/master", net);
        assert_int_equal(symlink("../../devices/virtual/net/bond0", path), 0);
        /* The bond, a VLAN on it, a bridge, a veth, the loopback. */
        sys_file(net, "bond0/operstate", "up\n");
        sys_file(net, "bond0/carrier", "1\n");
        sys_file(net, "bond0/mtu", "9000\n");
        sys_file(net, "bond0/uevent", "DEVTYPE=bond\nINTERFACE=bond0\n");
        sys_dir(net, "bond0/bonding");
        sys_file(net, "bond0.100/operstate", "lowerlayerdown\n");
        sys_file(net, "bond0.100/carrier", "0\n");
        sys_file(net, "bond0.100/uevent", "DEVTYPE=vlan\nINTERFACE=bond0.100\n");
        sys_file(net, "bond0.100/speed", "99999999999999999999\n");
        sys_file(net, "bond0.100/mtu", "abc\n");
        sys_dir(net, "br0");
        sys_dir(net, "br0/bridge");
        sys_file(net, "br0/operstate", "UP\n");
        sys_file(net, "br0/address", "zz:zz\n");
        snprintf(path, sizeof path, "%s/br0/master", net);
        assert_int_equal(symlink("../bad name", path), 0);
        sys_file(net, "veth0/operstate", "up\n");
        sys_file(net, "veth0/carrier", "1\n");
        sys_file(net, "veth0/speed", "10000\n");
        sys_file(net, "lo/type", "772\n");
        sys_file(net, "lo/operstate", "unknown\n");
        sys_file(net, "lo/carrier", "1\n");
        sys_file(net, "lo/mtu", "65536\n");
        sys_file(net, "lo/address", "00:00:00:00:00:00\n");
        /* Not interfaces. */
        sys_dir(net, "bad name");
        sys_dir(net, "sixteen-chars-xx");
        write_file(net, "bonding_masters", "bond0\n");

        ifaddr_entry(&a[5], NULL, "lo", AF_INET, "127.0.0.1", 8);
        ifaddr_entry(&a[4], &a[5], "eth9", AF_INET, "198.18.0.9", 24);
        ifaddr_entry(&a[3], &a[4], "eth0", AF_PACKET, NULL, 0);
        ifaddr_entry(&a[2], &a[3], "eth0", AF_INET6, "fe80::1", 64);
        ifaddr_entry(&a[1], &a[2], "eth0", AF_INET, "198.18.0.1", 24);
        ifaddr_entry(&a[0], &a[1], "eth0", AF_INET, "198.18.1.1", 16);
        a[0].ifa.ifa_addr = NULL; /* an entry without an address */

        assert_int_equal(httpd_interfaces_build(net, &a[0].ifa, &o), 0);
        assert_int_equal(json_object_array_length(array_of(o, "interfaces")),
                         7);
        /* Sorted by name. */
        assert_string_equal(
                string_of(json_object_array_get_idx(array_of(o, "interfaces"),
                                                    0),
                          "name"),
                "bond0");

        x = interface_named(o, "eth0");
        assert_non_null(x);
        assert_string_equal(string_of(x, "mac"), "52:54:00:aa:bb:01");
        assert_string_equal(string_of(x, "kind"), "physical");
        assert_string_equal(string_of(x, "link"), "up");
        assert_string_equal(string_of(x, "operstate"), "up");
        assert_int_equal(int_of(x, "speed_mbps"), 10000);
        assert_int_equal(int_of(x, "mtu"), 9000);
        assert_true(is_null(x, "master"));
        addrs = array_of(x, "addresses");
        assert_int_equal(json_object_array_length(addrs), 2);
        assert_string_equal(
                string_of(json_object_array_get_idx(addrs, 0), "address"),
                "198.18.0.1");
        assert_int_equal(int_of(json_object_array_get_idx(addrs, 0), "prefix"),
                         24);
        assert_int_equal(int_of(json_object_array_get_idx(addrs, 0), "family"),
                         4);
        assert_string_equal(
                string_of(json_object_array_get_idx(addrs, 1), "address"),
                "fe80::1");
        assert_int_equal(int_of(json_object_array_get_idx(addrs, 1), "prefix"),
                         64);

        x = interface_named(o, "eth1");
        assert_true(is_null(x, "mac")); /* sysfs writes lowercase */
        assert_string_equal(string_of(x, "link"), "down");
        assert_true(is_null(x, "speed_mbps"));
        assert_string_equal(string_of(x, "master"), "bond0");
        assert_int_equal(json_object_array_length(array_of(x, "addresses")),
                         0);

        x = interface_named(o, "bond0");
        assert_string_equal(string_of(x, "kind"), "bond");
        assert_string_equal(string_of(x, "link"), "up");
        x = interface_named(o, "bond0.100");
        assert_string_equal(string_of(x, "kind"), "vlan");
        assert_string_equal(string_of(x, "link"), "down");
        assert_string_equal(string_of(x, "operstate"), "lowerlayerdown");
        assert_true(is_null(x, "speed_mbps"));
        assert_true(is_null(x, "mtu"));
        x = interface_named(o, "br0");
        assert_string_equal(string_of(x, "kind"), "bridge");
        assert_true(is_null(x, "operstate"));
        assert_string_equal(string_of(x, "link"), "down");
        assert_true(is_null(x, "mac"));
        assert_true(is_null(x, "master"));
        x = interface_named(o, "veth0");
        assert_string_equal(string_of(x, "kind"), "virtual");
        x = interface_named(o, "lo");
        assert_string_equal(string_of(x, "kind"), "loopback");
        assert_string_equal(string_of(x, "link"), "up");
        assert_int_equal(int_of(x, "mtu"), 65536);
        assert_int_equal(json_object_array_length(array_of(x, "addresses")),
                         1);
        assert_null(interface_named(o, "bad name"));
        assert_null(interface_named(o, "bonding_masters"));
        json_object_put(TAKE_PTR(o));

        /* No sysfs; no addresses at all. */
        snprintf(path, sizeof path, "%s/nowhere", f->dir);
        assert_int_equal(httpd_interfaces_build(path, NULL, &o), -ENOENT);
        assert_int_equal(httpd_interfaces_build(net, NULL, &o), 0);
        assert_int_equal(
                json_object_array_length(array_of(
                        interface_named(o, "eth0"), "addresses")),
                0);
        json_object_put(TAKE_PTR(o));
        /* More than the limit. */
        for (unsigned i = 0; i < HTTPD_INTERFACES_MAX; i++) {
                char name[32];

                snprintf(name, sizeof name, "dummy%u", i);
                sys_dir(net, name);
        }
        assert_int_equal(httpd_interfaces_build(net, NULL, &o), -E2BIG);
}

static void interfaces_need_a_session_in_a_cluster(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *lo = NULL, *list, *addrs;
        struct session s;
        unsigned queries;

        start(f);
        call_error(f, "GET", "/api/v1/wizard/interfaces", NULL, NULL, 401,
                   "unauthorized", NULL);
        login(f, &s);
        queries = f->domain.n_queries;
        o = call(f, "GET", "/api/v1/wizard/interfaces", &s, NULL, 200);
        list = array_of(o, "interfaces");
        for (size_t i = 0; i < json_object_array_length(list); i++)
                if (streq(string_of(json_object_array_get_idx(list, i), "name"),
                          "lo"))
                        lo = json_object_array_get_idx(list, i);
        assert_non_null(lo);
        assert_string_equal(string_of(lo, "kind"), "loopback");
        assert_string_equal(string_of(lo, "link"), "up");
        addrs = array_of(lo, "addresses");
        assert_true(json_object_array_length(addrs) >= 1);
        assert_string_equal(
                string_of(json_object_array_get_idx(addrs, 0), "address"),
                "127.0.0.1");
        assert_int_equal(int_of(json_object_array_get_idx(addrs, 0), "prefix"),
                         8);
        assert_non_null(string_of(o, "hostname"));
        /* Read here, not from the domain. */
        assert_int_equal(f->domain.n_queries, queries);
}

static void interfaces_are_public_while_unclustered(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;

        /* A fresh node: anybody on the network may look (it has nothing
         * to hide yet, and nobody to log in as). */
        table_set(f, "cluster", "[]");
        start(f);
        o = call(f, "GET", "/api/v1/wizard/interfaces", NULL, NULL, 200);
        assert_true(json_object_array_length(array_of(o, "interfaces")) >= 1);
}

/* ==== The configuration backup ==== */

/* The table's rows of a backup (borrowed), checking its columns. */
static struct json_object *backup_rows(struct json_object *backup,
                                       const char *table,
                                       struct json_object **ret_columns) {
        struct json_object *tables, *t;

        assert_int_equal(haven_json_get_object(backup, "tables", &tables), 0);
        if (!json_object_object_get_ex(tables, table, &t))
                return NULL;
        *ret_columns = array_of(t, "columns");
        return array_of(t, "rows");
}

static void backup_is_the_configuration_as_a_file(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *rows, *columns = NULL, *asked;
        struct response r;
        struct session s;
        char buf[256];
        bool hash_kept = false;
        size_t n = 0;

        start(f);
        call_error(f, "GET", "/api/v1/backup", NULL, NULL, 401, "unauthorized",
                   NULL);
        login(f, &s);
        http(f, "GET", "/api/v1/backup", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(header(&r, "Content-Disposition", buf, sizeof buf));
        assert_string_equal(buf,
                            "attachment; filename=\"haven-backup-lab-v10.json\"");
        assert_non_null(header(&r, "Cache-Control", buf, sizeof buf));
        assert_non_null(strstr(buf, "no-store"));
        o = body_json(&r);
        response_done(&r);
        assert_int_equal(int_of(o, "haven_backup"), 1);
        assert_string_equal(string_of(o, "cluster"), "lab");
        assert_int_equal(int_of(o, "version"), 10);
        assert_string_equal(string_of(o, "checksum"), "00000000000000ab");
        assert_string_equal(string_of(o, "created_by"), "api:" ADMIN);
        assert_true(int_of(o, "created_at") > 0);

        /* What a restore needs: the administrators with their hashes. */
        rows = backup_rows(o, "administrators", &columns);
        assert_non_null(rows);
        for (size_t c = 0; c < json_object_array_length(columns); c++)
                if (streq(json_object_get_string(
                                  json_object_array_get_idx(columns, c)),
                          "password_hash"))
                        hash_kept = streq(
                                json_object_get_string(json_object_array_get_idx(
                                        json_object_array_get_idx(rows, 0), c)),
                                admin_hash());
        assert_true(hash_kept);
        assert_int_equal(json_object_array_length(
                                 backup_rows(o, "hosts", &columns)),
                         1);
        /* The configuration, not the history: exactly the tables asked. */
        assert_null(backup_rows(o, "audit", &columns));
        assert_null(backup_rows(o, "jobs", &columns));
        assert_int_equal(haven_json_get_array(f->domain.last_submit, "tables",
                                              &asked),
                         0);
        for (; httpd_backup_tables[n]; n++)
                assert_string_equal(json_object_get_string(
                                            json_object_array_get_idx(asked, n)),
                                    httpd_backup_tables[n]);
        assert_int_equal(json_object_array_length(asked), n);
        assert_int_equal(f->domain.n_submits, 0);
}

/* A domaind request of the real haven-domaind (it answers reads without
 * corosync): the answer, a new reference. */
static struct json_object *domaind_call(const char *socket,
                                        const char *text) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_(json_object_putp) struct json_object *req = json(text);
        struct json_object *reply = NULL;

        assert_int_equal(haven_msg_client_connect(socket, 0, &c), 0);
        assert_int_equal(haven_msg_client_call(c, req, WAIT_USEC, &reply), 0);
        return reply;
}

/* Bad inputs tried: an unknown table, a number for a table, an empty
 * list, an extra field. */
static void real_domaind_answers_snapshot_requests(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *all = NULL,
                                                       *some = NULL, *bad = NULL;
        struct json_object *tables, *t, *e;
        char db[128], socket[128], coro[128], log[128], port[16];
        uint64_t deadline = now_usec() + WAIT_USEC;
        const char *message;

        snprintf(db, sizeof db, "%s/real.db", f->dir);
        snprintf(socket, sizeof socket, "%s/real-domaind.sock", f->dir);
        snprintf(coro, sizeof coro, "%s/corosync", f->dir);
        snprintf(log, sizeof log, "%s/domaind.log", f->dir);
        assert_int_equal(mkdir(coro, 0700), 0);
        snprintf(port, sizeof port, "%u", free_port(SOCK_STREAM));
        char *argv[] = {
                (char *) program_path("HAVEN_DOMAIND", "haven-domaind"),
                (char *) "--db",
                db,
                (char *) "--socket",
                socket,
                (char *) "--node-name",
                (char *) "node1",
                (char *) "--corosync-dir",
                coro,
                (char *) "--peer-port",
                port,
                NULL};
        f->domaind = spawn(f, argv, log);
        while (access(socket, F_OK) < 0) {
                assert_true(now_usec() < deadline);
                pump(f, 10000);
        }

        all = domaind_call(socket, "{\"request\": \"snapshot\", \"tag\": 7}");
        assert_int_equal(int_of(all, "tag"), 7);
        assert_int_equal(int_of(all, "version"), 0);
        assert_string_equal(string_of(all, "checksum"), "0000000000000000");
        assert_int_equal(haven_json_get_object(all, "tables", &tables), 0);
        assert_true(json_object_object_get_ex(tables, "audit", NULL));
        assert_true(json_object_object_get_ex(tables, "administrators", &t));
        assert_int_equal(json_object_array_length(array_of(t, "rows")), 0);
        assert_string_equal(
                json_object_get_string(
                        json_object_array_get_idx(array_of(t, "columns"), 0)),
                "id");

        /* httpd's backup: only what it names. */
        some = domaind_call(socket, "{\"request\": \"snapshot\", \"tables\": "
                                    "[\"vms\", \"nodes\"]}");
        assert_int_equal(haven_json_get_object(some, "tables", &tables), 0);
        assert_int_equal(json_object_object_length(tables), 2);
        assert_true(json_object_object_get_ex(tables, "vms", NULL));
        assert_string_equal(string_of(some, "checksum"), "0000000000000000");

        static const char *const refused[] = {
                "{\"request\": \"snapshot\", \"tables\": [\"vms\", \"nope\"]}",
                "{\"request\": \"snapshot\", \"tables\": [3]}",
                "{\"request\": \"snapshot\", \"tables\": []}",
                "{\"request\": \"snapshot\", \"table\": \"vms\"}",
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                bad = domaind_call(socket, refused[i]);
                assert_int_equal(haven_json_get_object(bad, "error", &e), 0);
                assert_string_equal(string_of(e, "code"), "invalid");
                assert_int_equal(haven_json_get_string(e, "message", &message),
                                 0);
                if (i < 3)
                        assert_string_equal(string_of(e, "field"), "tables");
                json_object_put(TAKE_PTR(bad));
        }
}

/* ==== Several rows at once ==== */

#define NETWORK_LAN                                                            \
        "[{\"id\": 4, \"version\": 2, \"name\": \"lan\", \"uplinks\": "         \
        "[\"eth1\"], \"bonding_mode\": \"none\", \"vlan_id\": null, "          \
        "\"mtu\": 1500}]"

static const char VM_BATCH[] =
        "{\"items\": ["
        "{\"resource\": \"vms\", \"values\": {\"name\": \"web9\", "
        "\"memory_mib\": 512, \"vcpus\": 2, \"ha\": \"on\"}},"
        "{\"resource\": \"disks\", \"values\": {\"name\": \"web9-0\", "
        "\"kind\": \"shared\", \"size_mib\": 1024, \"path\": "
        "\"/srv/haven/shared/web9-0.img\"}},"
        "{\"resource\": \"vm-disks\", \"values\": {\"vm_id\": {\"ref\": 0}, "
        "\"disk_id\": {\"ref\": 1}, \"bus\": \"virtio\", \"boot_order\": 1}},"
        "{\"resource\": \"vm-nics\", \"values\": {\"vm_id\": {\"ref\": 0}, "
        "\"network_id\": 4, \"model\": \"virtio\"}},"
        "{\"resource\": \"vm-cdroms\", \"values\": {\"vm_id\": {\"ref\": 0}, "
        "\"iso_path\": \"/srv/haven/shared/debian.iso\"}}]}";

static void batch_adds_a_vm_with_its_rows_as_one_change(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *ids, *ops, *vm, *row;
        const char *audit;
        struct session s;
        int64_t vm_id, disk_id;

        table_set(f, "networks", NETWORK_LAN);
        start(f);
        login(f, &s);

        /* Applied: one transaction, the refs resolved by the domain. */
        o = call(f, "POST", "/api/v1/batch?now=1", &s, VM_BATCH, 201);
        ids = array_of(o, "ids");
        assert_int_equal(json_object_array_length(ids), 5);
        vm_id = json_object_get_int64(json_object_array_get_idx(ids, 0));
        disk_id = json_object_get_int64(json_object_array_get_idx(ids, 1));
        assert_int_equal(f->domain.n_submits, 1);
        assert_int_equal(haven_json_get_array(f->domain.last_submit, "ops",
                                              &ops),
                         0);
        assert_int_equal(json_object_array_length(ops), 5);
        assert_int_equal(haven_json_get_string(f->domain.last_submit, "audit",
                                               &audit),
                         0);
        assert_non_null(strstr(audit, "add vms: name=\"web9\""));
        assert_non_null(strstr(audit, "; add disks"));
        vm = row_of(f, "vms", vm_id);
        assert_non_null(vm);
        assert_string_equal(string_of(vm, "name"), "web9");
        row = json_object_array_get_idx(table_get(f, "vm_disks"), 0);
        assert_int_equal(int_of(row, "vm_id"), vm_id);
        assert_int_equal(int_of(row, "disk_id"), disk_id);
        assert_int_equal(
                int_of(json_object_array_get_idx(table_get(f, "vm_nics"), 0),
                       "vm_id"),
                vm_id);
        assert_int_equal(
                int_of(json_object_array_get_idx(table_get(f, "vm_cdroms"), 0),
                       "vm_id"),
                vm_id);
        json_object_put(TAKE_PTR(o));

        /* Staged (the default): one staged change keeping the refs; the
         * rows come with the activation. */
        table_set(f, "vms", "[]");
        table_set(f, "disks", "[]");
        table_set(f, "vm_disks", "[]");
        table_set(f, "vm_nics", "[]");
        table_set(f, "vm_cdroms", "[]");
        o = call(f, "POST", "/api/v1/batch", &s, VM_BATCH, 202);
        assert_true(json_object_get_boolean(json_object_object_get(o, "staged")));
        assert_int_equal(int_of(o, "change_id"), 1);
        assert_int_equal(rows_in(f, "vms"), 0);
        assert_int_equal(rows_in(f, "staged_changes"), 1);
        ops = array_of(json_object_array_get_idx(table_get(f, "staged_changes"),
                                                 0),
                       "ops");
        assert_int_equal(json_object_array_length(ops), 5);
        assert_int_equal(
                int_of(json_object_object_get(
                               json_object_object_get(
                                       json_object_array_get_idx(ops, 2),
                                       "values"),
                               "disk_id"),
                       "ref"),
                1);
        json_object_put(TAKE_PTR(o));
        o = call(f, "POST", "/api/v1/changes/activate", &s, NULL, 200);
        assert_int_equal(rows_in(f, "vms"), 1);
        assert_int_equal(
                int_of(json_object_array_get_idx(table_get(f, "vm_disks"), 0),
                       "disk_id"),
                int_of(json_object_array_get_idx(table_get(f, "disks"), 0),
                       "id"));
        json_object_put(TAKE_PTR(o));

        /* Changes with the version they were read at, next to an
         * addition: the eSAN nodes and a disk on them. */
        o = call(f, "POST", "/api/v1/batch?now=1", &s,
                 "{\"summary\": \"eSAN on node1 and node2\", \"items\": ["
                 "{\"resource\": \"nodes\", \"id\": 1, \"version\": 2, "
                 "\"values\": {\"esan_member\": true}},"
                 "{\"resource\": \"nodes\", \"id\": 2, \"version\": 3, "
                 "\"values\": {\"esan_member\": true}},"
                 "{\"resource\": \"disks\", \"values\": {\"name\": \"data\", "
                 "\"kind\": \"esan\", \"size_mib\": 2048, \"nodes\": [1, 2]}}]}",
                 201);
        ids = array_of(o, "ids");
        assert_null(json_object_array_get_idx(ids, 0));
        assert_true(json_object_get_int64(json_object_array_get_idx(ids, 2)) >
                    0);
        assert_true(json_object_get_boolean(
                json_object_object_get(row_of(f, "nodes", 2), "esan_member")));
        assert_int_equal(haven_json_get_string(f->domain.last_submit, "audit",
                                               &audit),
                         0);
        assert_string_equal(audit, "eSAN on node1 and node2");
        json_object_put(TAKE_PTR(o));
        /* A version read before someone else's change: a conflict. */
        call_error(f, "POST", "/api/v1/batch?now=1", &s,
                   "{\"items\": [{\"resource\": \"nodes\", \"id\": 1, "
                   "\"version\": 2, \"values\": {\"esan_member\": false}}]}",
                   409, "conflict", "items/0");
}

/* Bad inputs tried: an item that is no object, an unknown field in an
 * item and in its values, a resource that takes no rows (administrators,
 * nodes without an id, the cluster), an unknown and a malformed resource,
 * an id without a version and the reverse, an empty change, a field out of
 * its range, a bad MAC, refs to a later item, to itself, to a change, of
 * the wrong shape, in a node id field and in a text field, and the domain
 * refusing an applied batch's third row. */
static void batch_errors_name_the_item_and_field(void **state) {
        static const struct {
                const char *items, *field;
        } bad[] = {
                {"[3]", "items/0"},
                {"[{\"resource\": \"vms\", \"values\": {\"name\": \"a\", "
                 "\"memory_mib\": 64}, \"colour\": 1}]",
                 "items/0"},
                {"[{\"resource\": \"vms\", \"values\": {\"name\": \"a\", "
                 "\"memory_mib\": 64, \"colour\": 1}}]",
                 "items/0/colour"},
                {"[{\"resource\": \"administrators\", \"values\": {\"name\": "
                 "\"b\", \"password\": \"12345678\"}}]",
                 "items/0/resource"},
                {"[{\"resource\": \"nodes\", \"values\": {\"name\": \"b\"}}]",
                 "items/0/resource"},
                {"[{\"resource\": \"cluster\", \"id\": 1, \"version\": 1, "
                 "\"values\": {\"name\": \"b\"}}]",
                 "items/0/resource"},
                {"[{\"resource\": \"nope\", \"values\": {}}]",
                 "items/0/resource"},
                {"[{\"resource\": \"vms/../hosts\", \"values\": {}}]",
                 "items/0/resource"},
                {"[{\"resource\": \"nodes\", \"id\": 1, \"values\": "
                 "{\"esan_member\": true}}]",
                 "items/0/version"},
                {"[{\"resource\": \"hosts\", \"version\": 1, \"values\": "
                 "{\"name\": \"h\", \"address\": \"198.18.0.3\"}}]",
                 "items/0/id"},
                {"[{\"resource\": \"nodes\", \"id\": 1, \"version\": 2, "
                 "\"values\": {}}]",
                 "items/0/values"},
                {"[{\"resource\": \"hosts\", \"values\": {\"name\": \"h\", "
                 "\"address\": \"198.18.0.3\"}}, {\"resource\": \"vms\", "
                 "\"values\": {\"name\": \"a\", \"memory_mib\": 8}}]",
                 "items/1/memory_mib"},
                {"[{\"resource\": \"vm-nics\", \"values\": {\"vm_id\": 1, "
                 "\"network_id\": 4, \"mac\": \"52:54:00:12:34:5G\"}}]",
                 "items/0/mac"},
                {"[{\"resource\": \"vm-nics\", \"values\": {\"vm_id\": {\"ref\": "
                 "1}, \"network_id\": 4}}, {\"resource\": \"vms\", \"values\": "
                 "{\"name\": \"a\", \"memory_mib\": 64}}]",
                 "items/0/vm_id"},
                {"[{\"resource\": \"vm-nics\", \"values\": {\"vm_id\": {\"ref\": "
                 "0}, \"network_id\": 4}}]",
                 "items/0/vm_id"},
                {"[{\"resource\": \"nodes\", \"id\": 1, \"version\": 2, "
                 "\"values\": {\"esan_member\": true}}, {\"resource\": "
                 "\"vm-nics\", \"values\": {\"vm_id\": {\"ref\": 0}, "
                 "\"network_id\": 4}}]",
                 "items/1/vm_id"},
                {"[{\"resource\": \"vm-nics\", \"values\": {\"vm_id\": {\"ref\": "
                 "0, \"x\": 1}, \"network_id\": 4}}]",
                 "items/0/vm_id"},
                {"[{\"resource\": \"vms\", \"values\": {\"name\": \"a\", "
                 "\"memory_mib\": 64}}, {\"resource\": \"vms\", \"values\": "
                 "{\"name\": \"b\", \"memory_mib\": 64, \"preferred_node_id\": "
                 "{\"ref\": 0}}}]",
                 "items/1/preferred_node_id"},
                {"[{\"resource\": \"vms\", \"values\": {\"name\": \"a\", "
                 "\"memory_mib\": 64}}, {\"resource\": \"vms\", \"values\": "
                 "{\"name\": {\"ref\": 0}, \"memory_mib\": 64}}]",
                 "items/1/name"},
        };
        struct fixture *f = *state;
        struct session s;

        table_set(f, "networks", NETWORK_LAN);
        start(f);
        login(f, &s);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char body[1024];

                snprintf(body, sizeof body, "{\"items\": %s}", bad[i].items);
                call_error(f, "POST", "/api/v1/batch?now=1", &s, body, 400,
                           "invalid", bad[i].field);
        }
        assert_int_equal(f->domain.n_submits, 0);

        /* The domain refuses the third row (its name is taken): the item
         * and its field are named, and nothing of the batch is kept. */
        call_error(f, "POST", "/api/v1/batch?now=1", &s,
                   "{\"items\": ["
                   "{\"resource\": \"vms\", \"values\": {\"name\": \"web9\", "
                   "\"memory_mib\": 64}},"
                   "{\"resource\": \"vm-nics\", \"values\": {\"vm_id\": "
                   "{\"ref\": 0}, \"network_id\": 4}},"
                   "{\"resource\": \"hosts\", \"values\": {\"name\": \"ntp1\", "
                   "\"address\": \"198.18.0.3\"}}]}",
                   400, "invalid", "items/2/name");
        assert_int_equal(f->domain.n_submits, 1);
        assert_int_equal(rows_in(f, "vms"), 0);
        assert_int_equal(rows_in(f, "vm_nics"), 0);
        /* Staged, the same batch is one op: nothing to name but the
         * refusal (the domain checks the rows when they are activated). */
        f->domain.submit_error = "invalid";
        f->domain.submit_error_field = "name";
        call_error(f, "POST", "/api/v1/batch", &s,
                   "{\"items\": [{\"resource\": \"hosts\", \"values\": "
                   "{\"name\": \"ntp1\", \"address\": \"198.18.0.3\"}}]}",
                   400, "invalid", "name");
}

static void cluster_join_passes_its_address_and_names_refusals(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;

        table_set(f, "cluster", "[]");
        start(f);
        call_error(f, "POST", "/api/v1/wizard/cluster-join", NULL,
                   "{\"address\": \"198.18.0.1\", \"admin\": \"admin\", "
                   "\"password\": \"x\", \"own_address\": \"1\"}",
                   400, "invalid", "own_address");
        /* The member's refusals land at the fields to fix. */
        call_error(f, "POST", "/api/v1/wizard/cluster-join", NULL,
                   "{\"address\": \"198.18.0.1\", \"admin\": \"admin\", "
                   "\"password\": \"wrong\"}",
                   400, "invalid", "password");
        call_error(f, "POST", "/api/v1/wizard/cluster-join", NULL,
                   "{\"address\": \"198.18.0.99\", \"admin\": \"admin\", "
                   "\"password\": \"x\"}",
                   503, "unavailable", "address");
        o = call(f, "POST", "/api/v1/wizard/cluster-join", NULL,
                 "{\"address\": \"198.18.0.1\", \"admin\": \"admin\", "
                 "\"password\": \"x\", \"own_address\": \"198.18.0.2\"}",
                 200);
        assert_string_equal(string_of(f->domain.last_submit, "own_address"),
                            "198.18.0.2");
        assert_string_equal(string_of(f->domain.last_submit, "request"),
                            "cluster-join");
}

/* ==== TLS ==== */

/* A new certificate and key (PEM) in dir/name.{crt,key}. */
static void pair_new(const char *dir, const char *name, char **ret_cert,
                     char **ret_key) {
        _cleanup_(
                haven_peer_credentials_freep) struct haven_peer_credentials *c =
                NULL;
        char cert[256], key[256];

        snprintf(cert, sizeof cert, "%s/%s.crt", dir, name);
        snprintf(key, sizeof key, "%s/%s.key", dir, name);
        assert_int_equal(haven_peer_credentials_load_or_create_files(cert, key,
                                                                     NULL, &c),
                         0);
        assert_int_equal(
                haven_peer_credentials_export_pem(c, ret_cert, ret_key), 0);
}

/* A certificate for a new key that expired yesterday. */
static void pair_expired(char **ret_cert, char **ret_key) {
        gnutls_x509_privkey_t key;
        gnutls_x509_crt_t crt;
        gnutls_datum_t c = {}, k = {};
        uint8_t serial[8] = {0x42};

        assert_int_equal(gnutls_x509_privkey_init(&key), 0);
        assert_int_equal(
                gnutls_x509_privkey_generate(
                        key, GNUTLS_PK_ECDSA,
                        GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                0);
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
        assert_int_equal(gnutls_x509_crt_set_serial(crt, serial, sizeof serial),
                         0);
        assert_int_equal(gnutls_x509_crt_set_dn_by_oid(
                                 crt, GNUTLS_OID_X520_COMMON_NAME, 0, "old", 3),
                         0);
        assert_int_equal(gnutls_x509_crt_set_activation_time(
                                 crt, time(NULL) - 2 * 86400),
                         0);
        assert_int_equal(
                gnutls_x509_crt_set_expiration_time(crt, time(NULL) - 86400),
                0);
        assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
        assert_int_equal(
                gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
        assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c),
                         0);
        assert_int_equal(
                gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM,
                                                  NULL, GNUTLS_PKCS_PLAIN, &k),
                0);
        *ret_cert = strndup((char *) c.data, c.size);
        *ret_key = strndup((char *) k.data, k.size);
        gnutls_free(c.data);
        gnutls_free(k.data);
        gnutls_x509_crt_deinit(crt);
        gnutls_x509_privkey_deinit(key);
}

static char *tls_body(const char *cert, const char *key) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();

        json_object_object_add(o, "certificate", json_object_new_string(cert));
        json_object_object_add(o, "key", json_object_new_string(key));
        return strdup(
                json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}

/* The SHA-256 fingerprint of the certificate a TLS server shows. */
static void served_fingerprint(struct fixture *f, char *buf, size_t size) {
        const gnutls_datum_t *chain;
        unsigned n = 0;
        uint8_t digest[32];
        size_t len = sizeof digest;
        struct client *c = client_connect(f);
        struct response r;

        request_queue(c, "GET", "/logo.svg", NULL, NULL, NULL);
        assert_true(client_wait(f, c, false, &r));
        response_done(&r);
        chain = gnutls_certificate_get_peers(c->tls, &n);
        assert_true(n >= 1);
        assert_int_equal(
                gnutls_fingerprint(GNUTLS_DIG_SHA256, &chain[0], digest, &len),
                0);
        for (size_t i = 0; i < 32; i++)
                snprintf(buf + 3 * i, size - 3 * i, "%02X%s", digest[i],
                         i < 31 ? ":" : "");
        client_close(c);
}

static void tls_certificate_is_replaced_after_checks(void **state) {
        struct fixture *f = *state;
        _cleanup_free_ char *cert_a = NULL, *key_a = NULL, *cert_b = NULL,
                            *key_b = NULL, *cert_old = NULL, *key_old = NULL,
                            *body = NULL;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        char path[256], served[128], before[128];
        struct session s;

        f->config.tls = true;
        start(f);
        login(f, &s);
        served_fingerprint(f, before, sizeof before);
        pair_new(f->dir, "a", &cert_a, &key_a);
        pair_new(f->dir, "b", &cert_b, &key_b);
        pair_expired(&cert_old, &key_old);

        body = tls_body(cert_a, key_b);
        call_error(f, "PUT", "/api/v1/tls", &s, body, 400, "invalid", "key");
        free(body);
        body = tls_body(cert_old, key_old);
        call_error(f, "PUT", "/api/v1/tls", &s, body, 400, "invalid",
                   "certificate");
        free(body);
        body = tls_body("-----BEGIN CERTIFICATE-----\nxx\n", key_a);
        call_error(f, "PUT", "/api/v1/tls", &s, body, 400, "invalid",
                   "certificate");
        free(body);
        body = tls_body(cert_a, "not a key");
        call_error(f, "PUT", "/api/v1/tls", &s, body, 400, "invalid",
                   "certificate");
        free(body);

        body = tls_body(cert_a, key_a);
        o = call(f, "PUT", "/api/v1/tls", &s, body, 200);
        assert_true(json_object_get_boolean(
                json_object_object_get(o, "restart_needed")));
        assert_true(file_has(f->config.cert_path, cert_a));
        assert_true(file_has(f->config.key_path, key_a));
        snprintf(path, sizeof path, "%s", f->config.key_path);
        {
                struct stat st;

                assert_int_equal(stat(path, &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
        }
        /* Still the old one until the next start, then the new one. */
        served_fingerprint(f, served, sizeof served);
        assert_string_equal(served, before);
        httpd_stop(f);
        start(f);
        served_fingerprint(f, served, sizeof served);
        assert_string_equal(served, string_of(o, "fingerprint"));
        assert_string_not_equal(served, before);
}

/* ==== Consoles ==== */

/* A stand-in for QEMU's VNC server: greets like RFB 3.8 and echoes. */
struct vnc_double {
        struct fixture *fixture;
        int listen_fd;
        sd_event_source *listen_source;
        int fds[4];
        sd_event_source *sources[4];
        size_t accepted;
        uint16_t port;
};

#define RFB_GREETING "RFB 003.008\n"

static int on_vnc_data(sd_event_source *s, int fd, uint32_t revents,
                       void *userdata) {
        struct vnc_double *v = userdata;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);

        if (n > 0) {
                assert_int_equal(send(fd, buf, (size_t) n, MSG_NOSIGNAL), n);
                return 0;
        }
        if (n < 0 && errno == EAGAIN)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(v->fds); i++)
                if (v->fds[i] == fd) {
                        v->sources[i] =
                                sd_event_source_disable_unref(v->sources[i]);
                        v->fds[i] = safe_close(v->fds[i]);
                }
        return 0;
}

static int on_vnc_accept(sd_event_source *s, int fd, uint32_t revents,
                         void *userdata) {
        struct vnc_double *v = userdata;
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (c < 0)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(v->fds); i++)
                if (v->fds[i] < 0) {
                        v->fds[i] = c;
                        assert_int_equal(send(c, RFB_GREETING,
                                              strlen(RFB_GREETING),
                                              MSG_NOSIGNAL),
                                         (ssize_t) strlen(RFB_GREETING));
                        assert_int_equal(sd_event_add_io(v->fixture->event,
                                                         &v->sources[i], c,
                                                         EPOLLIN, on_vnc_data,
                                                         v),
                                         0);
                        v->accepted++;
                        return 0;
                }
        close(c);
        return 0;
}

static void vnc_start(struct fixture *f, struct vnc_double *v) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof a;
        int one = 1;

        *v = (struct vnc_double){.fixture = f};
        for (size_t i = 0; i < ELEMENTSOF(v->fds); i++)
                v->fds[i] = -1;
        v->listen_fd =
                socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(v->listen_fd >= 0);
        (void) setsockopt(v->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
                          sizeof one);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(v->listen_fd, (struct sockaddr *) &a, sizeof a),
                         0);
        assert_int_equal(listen(v->listen_fd, 8), 0);
        assert_int_equal(
                getsockname(v->listen_fd, (struct sockaddr *) &a, &len), 0);
        v->port = ntohs(a.sin_port);
        assert_int_equal(sd_event_add_io(f->event, &v->listen_source,
                                         v->listen_fd, EPOLLIN, on_vnc_accept,
                                         v),
                         0);
}

/* Ends every VNC connection (the VM stopped or moved). */
static void vnc_drop(struct vnc_double *v) {
        for (size_t i = 0; i < ELEMENTSOF(v->fds); i++) {
                v->sources[i] = sd_event_source_disable_unref(v->sources[i]);
                v->fds[i] = safe_close(v->fds[i]);
        }
}

static void vnc_stop(struct vnc_double *v) {
        vnc_drop(v);
        v->listen_source = sd_event_source_disable_unref(v->listen_source);
        v->listen_fd = safe_close(v->listen_fd);
}

/* The browser's end: a wslay client on a plain socket. */
struct ws_client {
        struct fixture *fixture;
        struct client *c; /* the HTTP part */
        wslay_event_context_ptr ctx;
        char *leftover; /* bytes after the 101's head */
        size_t leftover_size, leftover_used;
        char received[65536];
        size_t received_size;
        bool closed;
        uint16_t close_code;
};

static ssize_t wsc_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                        int flags, void *userdata) {
        struct ws_client *w = userdata;
        ssize_t n;

        if (w->leftover_used < w->leftover_size) {
                n = (ssize_t) (w->leftover_size - w->leftover_used < len
                                       ? w->leftover_size - w->leftover_used
                                       : len);
                memcpy(buf, w->leftover + w->leftover_used, (size_t) n);
                w->leftover_used += (size_t) n;
                return n;
        }
        n = recv(w->c->fd, buf, len, 0);
        if (n < 0 && errno == EAGAIN) {
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
                return -1;
        }
        if (n <= 0) {
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
                return -1;
        }
        return n;
}

static ssize_t wsc_send(wslay_event_context_ptr ctx, const uint8_t *data,
                        size_t len, int flags, void *userdata) {
        struct ws_client *w = userdata;
        ssize_t n = send(w->c->fd, data, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EAGAIN) {
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
                return -1;
        }
        if (n < 0) {
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
                return -1;
        }
        return n;
}

static int wsc_mask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                    void *userdata) {
        return gnutls_rnd(GNUTLS_RND_NONCE, buf, len) < 0 ? -1 : 0;
}

static void wsc_message(wslay_event_context_ptr ctx,
                        const struct wslay_event_on_msg_recv_arg *arg,
                        void *userdata) {
        struct ws_client *w = userdata;

        if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
                w->closed = true;
                w->close_code = arg->status_code;
                return;
        }
        assert_int_equal(arg->opcode, WSLAY_BINARY_FRAME);
        assert_true(w->received_size + arg->msg_length < sizeof w->received);
        memcpy(w->received + w->received_size, arg->msg, arg->msg_length);
        w->received_size += arg->msg_length;
        w->received[w->received_size] = '\0';
}

/* Opens the console of VM id through port with the given extra headers;
 * returns the answer's head (status) and, on 101, a live client. */
static int ws_open(struct fixture *f, uint16_t port, const struct session *s,
                   int64_t id, const char *headers, struct ws_client *w,
                   struct response *ret) {
        static const struct wslay_event_callbacks callbacks = {
                .recv_callback = wsc_recv,
                .send_callback = wsc_send,
                .genmask_callback = wsc_mask,
                .on_msg_recv_callback = wsc_message,
        };
        uint16_t saved = f->port;
        char head[1024], path[96], buf[64];
        const char *end;
        uint64_t deadline = now_usec() + WAIT_USEC;

        *w = (struct ws_client){.fixture = f};
        f->port = port;
        w->c = client_connect(f);
        f->port = saved;
        snprintf(path, sizeof path, "/api/v1/vms/%" PRIi64 "/console", id);
        snprintf(head, sizeof head,
                 "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                 "Sec-WebSocket-Protocol: binary\r\n"
                 "Origin: http://node1\r\n%s",
                 headers ? headers
                         : "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n");
        request_queue(w->c, "GET", path, s, head, NULL);
        while (!w->c->in || !(end = strstr(w->c->in, "\r\n\r\n"))) {
                assert_true(now_usec() < deadline);
                assert_false(w->c->eof);
                client_step(f, w->c);
        }
        if (strncmp(w->c->in, "HTTP/1.1 101", 12) != 0) {
                /* An error: read it as any answer. */
                assert_true(client_wait(f, w->c, false, ret));
                client_close(w->c);
                w->c = NULL;
                return ret->status;
        }
        *ret = (struct response){
                .status = 101,
                .head = strndup(w->c->in, (size_t) (end - w->c->in))};
        assert_string_equal(
                header(ret, "Sec-WebSocket-Accept", buf, sizeof buf),
                "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_string_equal(
                header(ret, "Sec-WebSocket-Protocol", buf, sizeof buf),
                "binary");
        w->leftover_size = w->c->in_size - (size_t) (end + 4 - w->c->in);
        w->leftover = malloc(w->leftover_size + 1);
        memcpy(w->leftover, end + 4, w->leftover_size);
        assert_int_equal(
                wslay_event_context_client_init(&w->ctx, &callbacks, w), 0);
        coverage_note("GET", path, 101);
        return 101;
}

static void ws_step(struct ws_client *w) {
        pump(w->fixture, 1000);
        if (w->fixture->httpd2)
                pump(w->fixture, 0);
        if (wslay_event_want_read(w->ctx))
                (void) wslay_event_recv(w->ctx);
        if (wslay_event_want_write(w->ctx))
                (void) wslay_event_send(w->ctx);
}

static bool ws_wait_text(struct ws_client *w, const char *text) {
        uint64_t deadline = now_usec() + WAIT_USEC;

        while (!strstr(w->received, text)) {
                if (now_usec() > deadline || w->closed)
                        return false;
                ws_step(w);
        }
        return true;
}

/* Steps until the server closed the WebSocket; false after WAIT_USEC. */
static bool ws_wait_closed(struct ws_client *w) {
        uint64_t deadline = now_usec() + WAIT_USEC;

        while (!w->closed) {
                if (now_usec() > deadline)
                        return false;
                ws_step(w);
        }
        return true;
}

static void ws_send(struct ws_client *w, const char *text) {
        struct wslay_event_msg m = {.opcode = WSLAY_BINARY_FRAME,
                                    .msg = (const uint8_t *) text,
                                    .msg_length = strlen(text)};

        assert_int_equal(wslay_event_queue_msg(w->ctx, &m), 0);
}

static void ws_close(struct ws_client *w) {
        if (w->ctx)
                wslay_event_context_free(w->ctx);
        client_close(w->c);
        free(w->leftover);
        *w = (struct ws_client){};
}

/* The VM controller's entry: VM name runs on node with its VNC port. */
static void vm_runs(struct fixture *f, int64_t node, const char *name,
                    int port) {
        char key[64], value[160];
        _cleanup_(json_object_putp) struct json_object *v = NULL;

        snprintf(key, sizeof key, "vm/%s", name);
        for (int64_t n = 1; n <= 2; n++)
                standin_entry(f, n, key, NULL);
        snprintf(value, sizeof value,
                 "{\"node\": \"node%" PRIi64 "\", \"state\": \"running\", "
                 "\"vnc_port\": %d}",
                 node, port);
        v = json(value);
        standin_entry(f, node, key, v);
}

/* Starts node 2's haven-httpd (its own stand-in socket); node 1's is
 * then started to reach it for consoles. */
static void start_two_nodes(struct fixture *f) {
        standin_start_node(f, 1);
        f->config2 = f->config;
        f->config2.domaind_socket = f->socket2;
        assert_int_equal(httpd_new(f->event, &f->config2, &f->httpd2), 0);
        f->port2 = httpd_port(f->httpd2);
        wait_settled(f, f->httpd2, 1);
        f->config.peer_port = f->port2;
        start(f);
}

static void console_relays_vnc_on_this_node_and_across_nodes(void **state) {
        struct fixture *f = *state;
        struct vnc_double vnc;
        struct ws_client w;
        struct response r;
        struct session s;

        table_set(f, "vms",
                  "[{\"id\": 1, \"version\": 1, \"name\": \"web1\"}]");
        vnc_start(f, &vnc);
        start_two_nodes(f);
        login(f, &s);

        /* On this node. */
        vm_runs(f, 1, "web1", vnc.port);
        assert_int_equal(ws_open(f, f->port, &s, 1, NULL, &w, &r), 101);
        response_done(&r);
        assert_true(ws_wait_text(&w, RFB_GREETING));
        ws_send(&w, "hello, VNC");
        assert_true(ws_wait_text(&w, RFB_GREETING "hello, VNC"));
        assert_int_equal(httpd_console_sessions(httpd_console(f->httpd)), 1);
        /* The VM goes (stopped, or migrated): the console closes. */
        vnc_drop(&vnc);
        assert_true(ws_wait_closed(&w));
        assert_int_equal(w.close_code, 1001);
        ws_close(&w);

        /* It runs on node 2 now: the browser reconnects to node 1, which
         * reaches node 2's haven-httpd over the interconnect. */
        vm_runs(f, 2, "web1", vnc.port);
        assert_int_equal(ws_open(f, f->port, &s, 1, NULL, &w, &r), 101);
        response_done(&r);
        assert_true(ws_wait_text(&w, RFB_GREETING));
        ws_send(&w, "across");
        assert_true(ws_wait_text(&w, RFB_GREETING "across"));
        assert_int_equal(httpd_console_sessions(httpd_console(f->httpd)), 1);
        /* Node 2 serves the splice node 1 asked for. */
        assert_int_equal(httpd_console_sessions(httpd_console(f->httpd2)), 1);
        coverage_note("GET", "/api/v1/vms/1/console/splice", 101);
        /* A big screen's worth, both ways, through the bounded queues. */
        {
                char *big = malloc(40001);

                memset(big, 'v', 40000);
                big[40000] = '\0';
                w.received_size = 0;
                w.received[0] = '\0';
                ws_send(&w, big);
                assert_true(ws_wait_text(&w, big));
                free(big);
        }
        /* The VM moves away from node 2: node 2 ends the splice, and node
         * 1 tells the browser (before, node 2's socket stayed open until
         * libmicrohttpd happened to run again, and the browser's console
         * never learnt that the VM had moved). */
        vnc_drop(&vnc);
        assert_true(ws_wait_closed(&w));
        assert_int_equal(w.close_code, 1001);
        /* The browser goes: both nodes let go. */
        ws_close(&w);
        {
                uint64_t deadline = now_usec() + WAIT_USEC;

                while (httpd_console_sessions(httpd_console(f->httpd)) +
                               httpd_console_sessions(
                                       httpd_console(f->httpd2)) >
                       0) {
                        assert_true(now_usec() < deadline);
                        pump(f, 1000);
                }
        }
        vnc_stop(&vnc);
}

static void console_refuses_what_it_must(void **state) {
        struct fixture *f = *state;
        struct vnc_double vnc;
        struct ws_client w;
        struct response r;
        struct session s;
        uint8_t key[HTTPD_PEER_KEY_SIZE];
        char auth[HTTPD_PEER_AUTH_SIZE], extra[256];
        const char *path = "/api/v1/vms/1/console/splice";

        table_set(f, "vms",
                  "[{\"id\": 1, \"version\": 1, \"name\": \"web1\"}, {\"id\": "
                  "2, \"version\": 1, \"name\": \"web2\"}]");
        vnc_start(f, &vnc);
        start(f);
        login(f, &s);
        /* Runs nowhere. */
        assert_int_equal(ws_open(f, f->port, &s, 1, NULL, &w, &r), 409);
        assert_error(&r, 409, "conflict", NULL);
        response_done(&r);
        assert_int_equal(ws_open(f, f->port, &s, 9, NULL, &w, &r), 404);
        response_done(&r);
        /* No VNC port in its entry. */
        {
                _cleanup_(json_object_putp) struct json_object *v =
                        json("{\"state\": \"running\"}");

                standin_entry(f, 1, "vm/web2", v);
        }
        assert_int_equal(ws_open(f, f->port, &s, 2, NULL, &w, &r), 409);
        response_done(&r);
        /* Its VNC server does not answer. */
        vm_runs(f, 1, "web1", free_port(SOCK_STREAM));
        assert_int_equal(ws_open(f, f->port, &s, 1, NULL, &w, &r), 503);
        assert_error(&r, 503, "unavailable", NULL);
        response_done(&r);
        vm_runs(f, 1, "web1", vnc.port);
        /* Handshakes that are not WebSocket 13. */
        assert_int_equal(
                ws_open(f, f->port, &s, 1,
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 8\r\n",
                        &w, &r),
                400);
        response_done(&r);
        assert_int_equal(ws_open(f, f->port, &s, 1,
                                 "Sec-WebSocket-Key: c2hvcnQ=\r\n"
                                 "Sec-WebSocket-Version: 13\r\n",
                                 &w, &r),
                         400);
        response_done(&r);
        call_error(f, "GET", "/api/v1/vms/1/console", &s, NULL, 400,
                   "bad-request", NULL);
        /* Another site's page. */
        http(f, "GET", "/api/v1/vms/1/console", &s,
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n",
             NULL, &r);
        assert_error(&r, 403, "csrf", NULL);
        response_done(&r);
        assert_int_equal(httpd_console_sessions(httpd_console(f->httpd)), 0);

        /* Node-to-node: only with the cluster's key, fresh. */
        call_error(f, "GET", path, NULL, NULL, 401, "unauthorized", NULL);
        assert_int_equal(httpd_peer_key_load(f->authkey, key), 0);
        httpd_peer_auth_format(key, "GET", path,
                               haven_now_usec(CLOCK_REALTIME) - 3600000000ull,
                               "0011", auth);
        snprintf(extra, sizeof extra,
                 "Upgrade: haven-vnc\r\nConnection: "
                 "Upgrade\r\n" HTTPD_PEER_HEADER ": %s\r\n",
                 auth);
        http(f, "GET", path, NULL, extra, NULL, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        response_done(&r);
        httpd_peer_auth_format(key, "GET", "/api/v1/vms/2/console/splice",
                               haven_now_usec(CLOCK_REALTIME), "0011", auth);
        snprintf(extra, sizeof extra,
                 "Upgrade: haven-vnc\r\nConnection: "
                 "Upgrade\r\n" HTTPD_PEER_HEADER ": %s\r\n",
                 auth);
        http(f, "GET", path, NULL, extra, NULL, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        response_done(&r);
        /* A right one, for a VM this node does not run. */
        vm_runs(f, 2, "web1", vnc.port);
        httpd_peer_auth_format(key, "GET", path, haven_now_usec(CLOCK_REALTIME),
                               "0011", auth);
        snprintf(extra, sizeof extra,
                 "Upgrade: haven-vnc\r\nConnection: "
                 "Upgrade\r\n" HTTPD_PEER_HEADER ": %s\r\n",
                 auth);
        http(f, "GET", path, NULL, extra, NULL, &r);
        assert_error(&r, 409, "conflict", NULL);
        response_done(&r);
        vnc_stop(&vnc);
}

static void peer_requests_carry_a_fresh_hmac(void **state) {
        static const uint8_t key[HTTPD_PEER_KEY_SIZE] = {9, 8, 7};
        static const uint8_t other[HTTPD_PEER_KEY_SIZE] = {9, 8, 6};
        char auth[HTTPD_PEER_AUTH_SIZE], bad[HTTPD_PEER_AUTH_SIZE];
        uint64_t t = 1800000000000000ull;

        httpd_peer_auth_format(key, "GET", "/a", t, "00ff", auth);
        assert_true(httpd_peer_auth_check(key, "GET", "/a", t, auth));
        assert_true(httpd_peer_auth_check(key, "GET", "/a",
                                          t + HTTPD_PEER_SKEW_USEC, auth));
        assert_false(httpd_peer_auth_check(key, "GET", "/a",
                                           t + HTTPD_PEER_SKEW_USEC + 1, auth));
        assert_false(httpd_peer_auth_check(key, "GET", "/a",
                                           t - HTTPD_PEER_SKEW_USEC - 1, auth));
        assert_false(httpd_peer_auth_check(other, "GET", "/a", t, auth));
        assert_false(httpd_peer_auth_check(key, "POST", "/a", t, auth));
        assert_false(httpd_peer_auth_check(key, "GET", "/b", t, auth));
        assert_false(httpd_peer_auth_check(NULL, "GET", "/a", t, auth));
        assert_false(httpd_peer_auth_check(key, "GET", "/a", t, NULL));
        memcpy(bad, auth, sizeof bad);
        bad[strlen(bad) - 1] ^= 1;
        assert_false(httpd_peer_auth_check(key, "GET", "/a", t, bad));
        static const char *const malformed[] = {"",
                                                ":",
                                                "::",
                                                "1800000000000000::x",
                                                "x:00:aa",
                                                "-1:00:aa",
                                                "1800000000000000:zz:aa",
                                                "1800000000000000:00ff",
                                                "99999999999999999999:00:aa"};
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++)
                assert_false(httpd_peer_auth_check(key, "GET", "/a", t,
                                                   malformed[i]));
}

static void websocket_accept_follows_rfc6455(void **state) {
        char buf[29];

        assert_int_equal(
                httpd_websocket_accept("dGhlIHNhbXBsZSBub25jZQ==", buf), 0);
        assert_string_equal(buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_int_equal(httpd_websocket_accept(NULL, buf), -EINVAL);
        assert_int_equal(httpd_websocket_accept("", buf), -EINVAL);
        assert_int_equal(httpd_websocket_accept("c2hvcnQ=", buf), -EINVAL);
        assert_int_equal(
                httpd_websocket_accept("!!!!!!!!!!!!!!!!!!!!!!==", buf),
                -EINVAL);
        /* 24 characters that decode to 17 bytes. */
        assert_int_equal(
                httpd_websocket_accept("AAAAAAAAAAAAAAAAAAAAAAA=", buf),
                -EINVAL);
}

/* ==== The OpenAPI description ==== */

/* docs/api/openapi.json of this checkout ($HAVEN_OPENAPI, else found from
 * the test's build tree). */
static char *openapi_read(void) {
        char self[PATH_MAX], path[PATH_MAX + 64], *slash, *text;
        const char *env = getenv("HAVEN_OPENAPI");
        struct stat st;
        ssize_t n;
        int fd;

        if (env)
                snprintf(path, sizeof path, "%s", env);
        else {
                n = readlink("/proc/self/exe", self, sizeof self - 1);
                assert_true(n > 0);
                self[n] = '\0';
                slash = strrchr(self, '/'); /* <tree>/tests/test-httpd */
                *slash = '\0';
                snprintf(path, sizeof path, "%s/../../docs/api/openapi.json",
                         self);
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                fail_msg("cannot open %s: %s", path, strerror(errno));
        assert_int_equal(fstat(fd, &st), 0);
        text = malloc((size_t) st.st_size + 1);
        assert_non_null(text);
        assert_int_equal(read(fd, text, (size_t) st.st_size), st.st_size);
        text[st.st_size] = '\0';
        close(fd);
        return text;
}

static void openapi_describes_exactly_the_routes(void **state) {
        static const char *const methods[] = {"get",     "head",  "post",
                                              "put",     "patch", "delete",
                                              "options", "trace"};
        _cleanup_free_ char *text = openapi_read();
        _cleanup_(json_object_putp) struct json_object *doc = NULL;
        struct json_object *paths, *servers;
        const struct httpd_route *routes;
        size_t n, missing = 0, extra = 0, described = 0;
        const char *version, *url;

        assert_int_equal(haven_json_parse(text, strlen(text), 16u << 20, &doc),
                         0);
        assert_int_equal(haven_json_get_string(doc, "openapi", &version), 0);
        assert_int_equal(strncmp(version, "3.", 2), 0);
        assert_int_equal(haven_json_get_array(doc, "servers", &servers), 0);
        assert_int_equal(
                haven_json_get_string(json_object_array_get_idx(servers, 0),
                                      "url", &url),
                0);
        assert_string_equal(url, HTTPD_API_PREFIX);
        assert_int_equal(haven_json_get_object(doc, "paths", &paths), 0);
        routes = httpd_api_routes(&n);

        /* Every route is described... */
        for (size_t i = 0; i < n; i++) {
                struct json_object *item, *op;
                const char *pattern = routes[i].pattern;
                char method[16];

                if (streq(pattern, HTTPD_STATIC_PATTERN))
                        continue;
                assert_int_equal(strncmp(pattern, HTTPD_API_PREFIX,
                                         strlen(HTTPD_API_PREFIX)),
                                 0);
                snprintf(method, sizeof method, "%s",
                         httpd_method_to_string(routes[i].method));
                for (char *p = method; *p; p++)
                        *p = (char) (*p - 'A' + 'a');
                if (!json_object_object_get_ex(
                            paths, pattern + strlen(HTTPD_API_PREFIX), &item) ||
                    !json_object_object_get_ex(item, method, &op)) {
                        fprintf(stderr, "not in openapi.json: %s %s\n",
                                httpd_method_to_string(routes[i].method),
                                pattern);
                        missing++;
                        continue;
                }
                /* ...with its answers. */
                assert_non_null(json_object_object_get(op, "responses"));
                assert_non_null(json_object_object_get(op, "summary"));
                if (routes[i].policy)
                        assert_non_null(
                                json_object_object_get(op, "requestBody"));
        }
        /* ...and nothing else is. */
        json_object_object_foreach(paths, path, item) {
                json_object_object_foreach(item, key, op) {
                        bool found = false;

                        (void) op;
                        for (size_t m = 0; m < ELEMENTSOF(methods); m++)
                                if (streq(key, methods[m]))
                                        found = true;
                        if (!found)
                                continue; /* parameters, summary, ... */
                        described++;
                        found = false;
                        for (size_t i = 0; i < n; i++) {
                                char method[16];

                                snprintf(method, sizeof method, "%s",
                                         httpd_method_to_string(
                                                 routes[i].method));
                                for (char *p = method; *p; p++)
                                        *p = (char) (*p - 'A' + 'a');
                                if (streq(method, key) &&
                                    strlen(routes[i].pattern) >
                                            strlen(HTTPD_API_PREFIX) &&
                                    streq(routes[i].pattern +
                                                  strlen(HTTPD_API_PREFIX),
                                          path))
                                        found = true;
                        }
                        if (!found) {
                                fprintf(stderr,
                                        "in openapi.json, not a route: %s "
                                        "%s\n",
                                        key, path);
                                extra++;
                        }
                }
        }
        assert_int_equal(missing, 0);
        assert_int_equal(extra, 0);
        assert_true(described > 80);
}

/* Runs last: every route answered a success in some test above. */
static void every_route_succeeded_somewhere(void **state) {
        const struct httpd_route *routes;
        size_t n, uncovered = 0;

        if (getenv("TEST_FILTER"))
                skip(); /* only meaningful after all the others */
        routes = httpd_api_routes(&n);
        for (size_t i = 0; i < n; i++)
                if (!covered[i]) {
                        fprintf(stderr, "no success for %s %s\n",
                                httpd_method_to_string(routes[i].method),
                                routes[i].pattern);
                        uncovered++;
                }
        assert_int_equal(uncovered, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
                T(unknown_paths_are_404_in_the_error_shape),
                T(wrong_method_is_405_with_allow),
                T(every_route_without_session_is_401),
                T(writes_without_csrf_token_are_403),
                T(bad_bodies_are_400_naming_the_field),
                T(bodies_need_json_and_bodiless_routes_take_none),
                T(oversized_bodies_are_413),
                T(bad_parameters_and_flags_are_400),
                T(login_gives_cookie_and_logout_ends_it),
                T(wrong_password_and_unknown_name_look_alike),
                T(login_is_throttled_per_account_even_with_right_password),
                T(login_is_throttled_per_address),
                T(password_check_does_not_stop_the_loop),
                T(sessions_expire_when_idle_and_absolutely),
                T(sessions_are_bounded_and_tokens_checked),
                T(throttle_blocks_grow_and_success_resets),
                T(throttle_keys_cut_ipv6_to_64_bits),
                T(hosts_are_staged_by_default_and_applied_with_now),
                T(host_delete_carries_the_row_version),
                T(hosts_list_and_status_read_through),
                T(write_without_quorum_is_503_read_only),
                T(domaind_errors_map_to_statuses),
                T(domaind_away_is_503_unavailable),
                T(waiting_requests_block_nobody_and_end_cleanly),
                T(event_stream_carries_domain_events),
                T(slow_event_client_is_dropped),
                T(static_files_have_types_caching_and_etags),
                T(a_replaced_ui_directory_is_served_without_a_restart),
                T(precompressed_files_go_to_gzip_clients),
                T(static_paths_never_leave_the_ui_directory),
                T(names_and_paths_are_judged_as_documented),
                T(errors_map_through_one_table),
                T(slow_connections_do_not_block_a_normal_request),
                T(idle_connections_time_out),
                T(connections_beyond_the_per_address_limit_are_refused),
                T(https_uses_a_generated_certificate_for_this_host),
                T(broken_certificate_files_are_refused),
                T(every_path_refuses_other_methods_with_405),
                T(every_write_needs_the_csrf_token),
                T(every_body_breaks_its_policy_in_every_way),
                T(every_table_is_listed_read_added_changed_and_deleted),
                T(cluster_and_nodes_are_read_and_changed),
                T(infrastructure_is_one_row_and_hides_the_mail_password),
                T(administrators_get_yescrypt_hashes_and_never_show_them),
                T(the_last_administrator_cannot_be_deleted),
                T(what_a_policy_cannot_say_is_checked_too),
                T(fence_requests_are_made_followed_and_confirmed),
                T(alerts_are_listed_newest_first_and_cleared),
                T(without_quorum_every_write_is_503_and_reads_answer),
                T(staged_changes_are_listed_diffed_activated_and_discarded),
                T(changes_diff_is_pure_and_masks_passwords),
                T(jobs_and_their_logs_are_read_incrementally),
                T(audit_is_paged_newest_first),
                T(vm_prefer_is_written_at_once_and_null_clears_it),
                T(vm_actions_write_one_command_each_and_answer_202),
                T(vm_actions_refuse_bad_input_and_write_nothing),
                T(vm_commands_and_placements_are_read_back),
                T(fencing_endpoints_reach_haven_fenced),
                T(fenceability_is_merged_as_havenctl_does),
                T(dashboard_answers_every_tile_from_cached_bytes),
                T(dashboard_is_served_while_domaind_is_silent),
                T(dashboard_is_built_from_its_inputs_alone),
                T(samples_are_published_for_every_dashboard),
                T(samples_read_procfs_text),
                T(wizard_creates_a_cluster_only_while_there_is_none),
                T(wizard_joins_a_cluster_from_a_fresh_node),
                T(network_check_pings_with_the_mtu),
                T(ping_output_is_read),
                T(interfaces_are_read_from_sysfs_and_getifaddrs),
                T(interfaces_need_a_session_in_a_cluster),
                T(interfaces_are_public_while_unclustered),
                T(backup_is_the_configuration_as_a_file),
                T(real_domaind_answers_snapshot_requests),
                T(batch_adds_a_vm_with_its_rows_as_one_change),
                T(batch_errors_name_the_item_and_field),
                T(cluster_join_passes_its_address_and_names_refusals),
                T(tls_certificate_is_replaced_after_checks),
                T(console_relays_vnc_on_this_node_and_across_nodes),
                T(console_refuses_what_it_must),
                T(peer_requests_carry_a_fresh_hmac),
                T(websocket_accept_follows_rfc6455),
                T(openapi_describes_exactly_the_routes),
                T(every_route_succeeded_somewhere),
#undef T
        };

        log_parse_environment();
        /* The loop's child watchers (ping) need SIGCHLD blocked, as
         * haven_loop_new() does for the daemon. */
        {
                sigset_t mask;

                sigemptyset(&mask);
                sigaddset(&mask, SIGCHLD);
                assert_int_equal(sigprocmask(SIG_BLOCK, &mask, NULL), 0);
        }
        /* TEST_FILTER=name (a glob) runs some only. */
        if (getenv("TEST_FILTER"))
                cmocka_set_test_filter(getenv("TEST_FILTER"));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
