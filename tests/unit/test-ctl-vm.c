/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * havenctl's vm and node commands (daemons/ctl/ctl-vm.c) end to end: the
 * built havenctl runs as a child against a haven-domaind stand-in served
 * by this process on a real haven/msg.h socket, and what it wrote, printed
 * and exited with is checked. The stand-in answers the socket protocol
 * havenctl uses (docs/domain.md: query, submit with insert and update and
 * expect_version, subscribe with commit and status events, status-read)
 * from tables in memory, and plays the VM manager by script: it moves a
 * vm_commands row pending → running → done/failed, publishes a migration's
 * progress, empties a node in maintenance. Why a stand-in: haven-domaind
 * needs corosync for writes; the lab's system tests run the real one. The
 * pure parts (joins, texts) are tested in test-ctl.c.
 *
 * havenctl is found next to this test's build tree (<tree>/bin/havenctl,
 * then build/bin/havenctl) or at $HAVENCTL.
 *
 * Bad inputs tried: an unknown VM (by name and by id), an unknown target
 * node, an unknown node for a state; missing and extra arguments for every
 * command; --timeout 0, x, -5, 86401; --timeout with --no-wait; --timeout
 * without --wait; --wait on active; --none with a node; --none on a
 * command that takes none; an unknown vm subcommand; a command the manager
 * answers failed; a manager that never answers; a VM that never leaves a
 * node in maintenance; a row changed by someone else meanwhile (conflict).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>

#include "haven/msg.h"

#include "test-util.h"
#include "test-tmp.h"

#define WAIT_USEC (30u * 1000u * 1000u)
#define SUBSCRIBERS_MAX 16
#define STEPS_MAX 32

/* ==== The stand-in ==== */

enum manager {
        MANAGER_SILENT,  /* answers no command */
        MANAGER_DONE,    /* pending → running → done */
        MANAGER_FAIL,    /* pending → running → failed */
        MANAGER_MIGRATE, /* running, 30 %, 70 %, moved, done */
};

struct fixture;

/* A scripted action of the manager, due at a time and only once havenctl
 * has read since the previous action: anything, or (after_read) the status
 * map. So no slow machine makes havenctl miss a state it must print. */
struct step {
        uint64_t due;
        void (*run)(struct fixture *f, int64_t arg);
        int64_t arg;
        bool after_read;
};

struct fixture {
        char dir[64], socket[96], out[96], err[96];
        sd_event *event;
        struct haven_msg_server *server;
        struct haven_msg_conn *subscribers[SUBSCRIBERS_MAX];
        size_t n_subscribers;
        struct json_object *tables;      /* name → rows */
        struct json_object *entries;     /* [{node, key, value}] */
        struct json_object *last_submit; /* the request, as received */
        unsigned n_requests, n_submits, n_status_reads;
        unsigned reads_at_last_step, requests_at_last_step;
        int64_t version;
        enum manager manager;
        bool drain;            /* empty node 2 once it is in maintenance */
        bool drain_keeps_db1;  /* ... but db1 stays */
        const char *bump_table; /* someone changes what havenctl just read */
        struct step steps[STEPS_MAX];
        size_t n_steps;
        char *stdout_text, *stderr_text;
};

static struct json_object *rows_of(struct fixture *f, const char *table) {
        struct json_object *rows;

        if (!json_object_object_get_ex(f->tables, table, &rows)) {
                rows = json_object_new_array();
                json_object_object_add(f->tables, table, rows);
        }
        return rows;
}

static struct json_object *row_by_id(struct json_object *rows, int64_t id) {
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t v = 0;

                (void) haven_json_get_int64(row, "id", &v);
                if (v == id)
                        return row;
        }
        return NULL;
}

static bool json_same(struct json_object *a, struct json_object *b) {
        return streq(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                     json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
}

static void broadcast(struct fixture *f, struct json_object *event) {
        for (size_t i = 0; i < f->n_subscribers; i++)
                (void) haven_msg_conn_send(f->subscribers[i], event);
}

static int send_reply(struct haven_msg_conn *conn, struct json_object *req,
                      struct json_object *reply) {
        struct json_object *tag;

        if (json_object_object_get_ex(req, "tag", &tag))
                json_object_object_add(reply, "tag", json_object_get(tag));
        return haven_msg_conn_send(conn, reply);
}

static int send_error(struct haven_msg_conn *conn, struct json_object *req, const char *code,
                      const char *message, const char *field) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        struct json_object *e = json_object_new_object();

        json_object_object_add(e, "code", json_object_new_string(code));
        json_object_object_add(e, "message", json_object_new_string(message));
        json_object_object_add(e, "field", haven_json_string_or_null(field));
        json_object_object_add(o, "error", e);
        return send_reply(conn, req, o);
}

/* Puts (value non-NULL, taken over) or removes node's entry key, and tells
 * the subscribers, as domaind's status map does. */
static void entry_set(struct fixture *f, int64_t node, const char *key,
                      struct json_object *value) {
        _cleanup_(json_object_putp) struct json_object *event = json_object_new_object();

        for (size_t i = 0; i < json_object_array_length(f->entries); i++) {
                struct json_object *e = json_object_array_get_idx(f->entries, i);
                const char *k = "";
                int64_t n = 0;

                (void) haven_json_get_string(e, "key", &k);
                (void) haven_json_get_int64(e, "node", &n);
                if (n == node && streq(k, key)) {
                        json_object_array_del_idx(f->entries, i, 1);
                        break;
                }
        }
        if (value) {
                struct json_object *e = json_object_new_object();

                json_object_object_add(e, "node", json_object_new_int64(node));
                json_object_object_add(e, "key", json_object_new_string(key));
                json_object_object_add(e, "value", json_object_get(value));
                json_object_array_add(f->entries, e);
        }
        json_object_object_add(event, "event", json_object_new_string("status"));
        json_object_object_add(event, "node", json_object_new_int64(node));
        json_object_object_add(event, "key", json_object_new_string(key));
        json_object_object_add(event, "value", value);
        broadcast(f, event);
}

static void commit_event(struct fixture *f, const char *table, const char *actor) {
        _cleanup_(json_object_putp) struct json_object *event = json_object_new_object(),
                                                       *tables = json_object_new_array();

        json_object_array_add(tables, json_object_new_string(table));
        json_object_object_add(event, "event", json_object_new_string("commit"));
        json_object_object_add(event, "version", json_object_new_int64(f->version));
        json_object_object_add(event, "tables", TAKE_PTR(tables));
        json_object_object_add(event, "actor", json_object_new_string(actor));
        broadcast(f, event);
}

static void step_add(struct fixture *f, uint64_t after_usec,
                     void (*run)(struct fixture *f, int64_t arg), int64_t arg,
                     bool after_read) {
        assert_true(f->n_steps < STEPS_MAX);
        f->steps[f->n_steps++] = (struct step){.due = now_usec() + after_usec,
                                               .run = run,
                                               .arg = arg,
                                               .after_read = after_read};
}

/* Runs the steps that are due, in order; one waiting for a read holds
 * the later ones. */
static void steps_run(struct fixture *f) {
        for (size_t i = 0; i < f->n_steps; i++) {
                struct step s = f->steps[i];

                if (!s.run)
                        continue;
                if (now_usec() < s.due ||
                    (s.after_read && f->n_status_reads <= f->reads_at_last_step) ||
                    f->n_requests <= f->requests_at_last_step)
                        return;
                f->steps[i].run = NULL;
                f->reads_at_last_step = f->n_status_reads;
                f->requests_at_last_step = f->n_requests;
                s.run(f, s.arg);
        }
}

/* ==== The manager's script ==== */

/* The manager's own write of a command's state (a commit of its own). */
static void command_set(struct fixture *f, int64_t id, const char *state, const char *result) {
        struct json_object *row = row_by_id(rows_of(f, "vm_commands"), id);

        assert_non_null(row);
        f->version++;
        json_object_object_add(row, "state", json_object_new_string(state));
        json_object_object_add(row, "version", json_object_new_int64(f->version));
        if (result) {
                json_object_object_add(row, "result", json_object_new_string(result));
                json_object_object_add(row, "finished_at",
                                       json_object_new_int64((int64_t) haven_now_usec(
                                               CLOCK_REALTIME)));
        }
        commit_event(f, "vm_commands", "vmd@node1");
}

static void step_running(struct fixture *f, int64_t id) {
        command_set(f, id, "running", NULL);
}

static void step_done(struct fixture *f, int64_t id) {
        command_set(f, id, "done", "web1 runs on node1");
}

static void step_failed(struct fixture *f, int64_t id) {
        command_set(f, id, "failed", "web1 is not running");
}

static void step_percent(struct fixture *f, int64_t percent) {
        char text[256];

        snprintf(text, sizeof text,
                 "{\"vm_id\":1,\"state\":\"migrating-out\",\"target_node\":2,"
                 "\"migration\":{\"target_node\":2,\"percent\":%" PRId64 ","
                 "\"elapsed_ms\":100}}",
                 percent);
        entry_set(f, 1, "vm/web1", json(text));
}

static void step_moved(struct fixture *f, int64_t id) {
        entry_set(f, 1, "vm/web1", NULL);
        entry_set(f, 2, "vm/web1", json("{\"vm_id\":1,\"state\":\"running\"}"));
        command_set(f, id, "done", "web1 runs on node2");
}

/* Node 2's VMs leave one by one (arg: 1 web1, 2 db1). */
static void step_leave(struct fixture *f, int64_t which) {
        const char *key = which == 1 ? "vm/web1" : "vm/db1";

        entry_set(f, 2, key, NULL);
        entry_set(f, 1, key, json("{\"state\":\"running\"}"));
}

static void step_web1_half(struct fixture *f, int64_t unused) {
        entry_set(f, 2, "vm/web1",
                  json("{\"state\":\"migrating-out\",\"target_node\":1,"
                       "\"migration\":{\"target_node\":1,\"percent\":50}}"));
}

/* A new command row: the manager answers it, by script. */
static void manager_react(struct fixture *f, int64_t id) {
        switch (f->manager) {
        case MANAGER_SILENT:
                break;
        case MANAGER_DONE:
                step_add(f, 50000, step_running, id, false);
                step_add(f, 150000, step_done, id, false);
                break;
        case MANAGER_FAIL:
                step_add(f, 50000, step_running, id, false);
                step_add(f, 100000, step_failed, id, false);
                break;
        case MANAGER_MIGRATE:
                step_add(f, 50000, step_running, id, false);
                step_add(f, 100000, step_percent, 30, true);
                step_add(f, 150000, step_percent, 70, true);
                step_add(f, 200000, step_moved, id, true);
                break;
        }
}

/* ==== The stand-in's requests ==== */

static int on_query(struct fixture *f, struct haven_msg_conn *conn, struct json_object *req) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        struct json_object *rows = json_object_new_array(), *where = NULL, *all;
        const char *table = "";

        (void) haven_json_get_string(req, "table", &table);
        (void) haven_json_get_object(req, "where", &where);
        all = rows_of(f, table);
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
                if (match) {
                        struct json_object *copy = NULL;

                        assert_int_equal(json_object_deep_copy(row, &copy, NULL), 0);
                        json_object_array_add(rows, copy);
                        if (f->bump_table && streq(f->bump_table, table))
                                json_object_object_add(row, "version",
                                                       json_object_new_int64(++f->version));
                }
        }
        json_object_object_add(o, "rows", rows);
        return send_reply(conn, req, o);
}

static int64_t next_id(struct json_object *rows) {
        int64_t max = 0;

        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                int64_t v = 0;

                (void) haven_json_get_int64(json_object_array_get_idx(rows, i), "id", &v);
                if (v > max)
                        max = v;
        }
        return max + 1;
}

/* Applies one op to tables (a copy): 0 and *ret_id, or an error code. */
static const char *apply_op(struct fixture *f, struct json_object *tables,
                            struct json_object *op, const char *actor, int64_t *ret_id) {
        const char *kind = "", *table = "";
        struct json_object *values = NULL, *rows, *row;
        int64_t id = 0, expect = -1, version = 0;

        (void) haven_json_get_string(op, "op", &kind);
        (void) haven_json_get_string(op, "table", &table);
        (void) haven_json_get_object(op, "values", &values);
        (void) haven_json_get_int64(op, "id", &id);
        (void) haven_json_get_int64(op, "expect_version", &expect);
        if (!json_object_object_get_ex(tables, table, &rows))
                return "invalid";
        if (streq(kind, "insert")) {
                row = json_object_new_object();
                *ret_id = next_id(rows);
                json_object_object_add(row, "id", json_object_new_int64(*ret_id));
                json_object_object_add(row, "version", json_object_new_int64(f->version + 1));
                if (streq(table, "vm_commands")) {
                        /* The schema's defaults and filled-in columns. */
                        json_object_object_add(row, "target_node_id", NULL);
                        json_object_object_add(row, "state", json_object_new_string("pending"));
                        json_object_object_add(row, "requested_by", json_object_new_string(actor));
                        json_object_object_add(row, "requested_at",
                                               json_object_new_int64((int64_t) haven_now_usec(
                                                       CLOCK_REALTIME)));
                        json_object_object_add(row, "finished_at", NULL);
                        json_object_object_add(row, "result", json_object_new_string(""));
                }
                json_object_object_foreach(values, key, value)
                        json_object_object_add(row, key, json_object_get(value));
                json_object_array_add(rows, row);
                return NULL;
        }
        if (!streq(kind, "update"))
                return "invalid";
        row = row_by_id(rows, id);
        if (!row)
                return "not-found";
        (void) haven_json_get_int64(row, "version", &version);
        if (expect >= 0 && expect != version)
                return "conflict";
        json_object_object_foreach(values, key, value)
                json_object_object_add(row, key, json_object_get(value));
        json_object_object_add(row, "version", json_object_new_int64(f->version + 1));
        *ret_id = id;
        return NULL;
}

static int on_submit(struct fixture *f, struct haven_msg_conn *conn, struct json_object *req) {
        _cleanup_(json_object_putp) struct json_object *copy = NULL, *o = json_object_new_object(),
                                                       *results = json_object_new_array();
        struct json_object *ops = NULL, *op;
        const char *actor = "?", *table = "", *code = NULL, *state = NULL;
        int64_t id = 0;

        f->n_submits++;
        json_object_put(f->last_submit);
        f->last_submit = json_object_get(req);
        (void) haven_json_get_array(req, "ops", &ops);
        (void) haven_json_get_string(req, "actor", &actor);
        assert_int_equal(json_object_deep_copy(f->tables, &copy, NULL), 0);
        for (size_t i = 0; !code && i < json_object_array_length(ops); i++) {
                struct json_object *result = json_object_new_object();

                code = apply_op(f, copy, json_object_array_get_idx(ops, i), actor, &id);
                json_object_object_add(result, "id", json_object_new_int64(id));
                json_object_array_add(results, result);
        }
        if (code)
                return send_error(conn, req, code,
                                  streq(code, "conflict") ? "the row changed" : "refused", NULL);
        json_object_put(f->tables);
        f->tables = TAKE_PTR(copy);
        f->version++;
        op = json_object_array_get_idx(ops, 0);
        (void) haven_json_get_string(op, "table", &table);
        commit_event(f, table, actor);

        if (streq(table, "vm_commands"))
                manager_react(f, id);
        if (streq(table, "nodes") && f->drain &&
            haven_json_get_string(json_object_object_get(op, "values"), "state", &state) >= 0 &&
            streq(state, "maintenance")) {
                step_add(f, 50000, step_web1_half, 0, true);
                step_add(f, 100000, step_leave, 1, true);
                if (!f->drain_keeps_db1)
                        step_add(f, 150000, step_leave, 2, true);
        }

        json_object_object_add(o, "version", json_object_new_int64(f->version));
        json_object_object_add(o, "results", TAKE_PTR(results));
        return send_reply(conn, req, o);
}

static int on_status_read(struct fixture *f, struct haven_msg_conn *conn,
                          struct json_object *req) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        struct json_object *entries = json_object_new_array();
        const char *prefix = "";

        f->n_status_reads++;
        (void) haven_json_get_string(req, "prefix", &prefix);
        for (size_t i = 0; i < json_object_array_length(f->entries); i++) {
                struct json_object *e = json_object_array_get_idx(f->entries, i);
                const char *k = "";

                (void) haven_json_get_string(e, "key", &k);
                if (strncmp(k, prefix, strlen(prefix)) == 0)
                        json_object_array_add(entries, json_object_get(e));
        }
        json_object_object_add(o, "entries", entries);
        return send_reply(conn, req, o);
}

static int on_request(struct haven_msg_conn *conn, struct json_object *req, void *userdata) {
        struct fixture *f = userdata;
        const char *name = "";

        f->n_requests++;
        (void) haven_json_get_string(req, "request", &name);
        if (streq(name, "subscribe")) {
                _cleanup_(json_object_putp) struct json_object *o =
                        json("{\"subscribed\": true}");

                assert_true(f->n_subscribers < SUBSCRIBERS_MAX);
                f->subscribers[f->n_subscribers++] = haven_msg_conn_ref(conn);
                return send_reply(conn, req, o);
        }
        if (streq(name, "query"))
                return on_query(f, conn, req);
        if (streq(name, "submit"))
                return on_submit(f, conn, req);
        if (streq(name, "status-read"))
                return on_status_read(f, conn, req);
        return send_error(conn, req, "invalid", "unknown request", "request");
}

/* ==== Fixture ==== */

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        struct haven_msg_server_config config = {.mode = 0600, .handler = on_request};

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-ctl-vm-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->socket, sizeof f->socket, "%s/domaind.sock", f->dir);
        snprintf(f->out, sizeof f->out, "%s/stdout", f->dir);
        snprintf(f->err, sizeof f->err, "%s/stderr", f->dir);
        assert_int_equal(sd_event_new(&f->event), 0);
        f->version = 10;
        f->manager = MANAGER_DONE;
        f->tables = json("{\"vm_commands\": [], \"vm_placements\": [], \"staged_changes\": []}");
        json_object_object_add(
                f->tables, "nodes",
                json("[{\"id\":1,\"version\":2,\"node_id\":1,\"name\":\"node1\","
                     "\"state\":\"active\"},"
                     "{\"id\":2,\"version\":3,\"node_id\":2,\"name\":\"node2\","
                     "\"state\":\"active\"}]"));
        json_object_object_add(
                f->tables, "vms",
                json("[{\"id\":1,\"version\":4,\"name\":\"web1\",\"ha\":\"on\","
                     "\"memory_mib\":512,\"priority\":500,\"preferred_node_id\":null},"
                     "{\"id\":2,\"version\":5,\"name\":\"db1\",\"ha\":\"on\","
                     "\"memory_mib\":1024,\"priority\":500,\"preferred_node_id\":null}]"));
        f->entries = json("[{\"node\":1,\"key\":\"vm/web1\",\"value\":{\"vm_id\":1,"
                          "\"state\":\"running\"}},"
                          "{\"node\":1,\"key\":\"vmd\",\"value\":{\"ready\":true}}]");
        config.path = f->socket;
        config.userdata = f;
        assert_int_equal(haven_msg_server_new(f->event, &config, &f->server), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;

        for (size_t i = 0; i < f->n_subscribers; i++)
                haven_msg_conn_unref(f->subscribers[i]);
        f->server = haven_msg_server_free(f->server);
        sd_event_unref(f->event);
        json_object_put(f->tables);
        json_object_put(f->entries);
        json_object_put(f->last_submit);
        free(f->stdout_text);
        free(f->stderr_text);
        remove_tree(f->dir);
        free(f);
        return 0;
}

/* havenctl next to this test's build tree: $HAVENCTL, <tree>/bin, build/bin. */
static const char *havenctl_path(void) {
        static char path[PATH_MAX + 64];
        char self[PATH_MAX], *slash;
        ssize_t n;

        if (getenv("HAVENCTL"))
                return getenv("HAVENCTL");
        n = readlink("/proc/self/exe", self, sizeof self - 1);
        assert_true(n > 0);
        self[n] = '\0';
        slash = strrchr(self, '/'); /* <tree>/tests/test-ctl-vm */
        assert_non_null(slash);
        *slash = '\0';
        snprintf(path, sizeof path, "%s/../bin/havenctl", self);
        if (access(path, X_OK) == 0)
                return path;
        snprintf(path, sizeof path, "%s/../../build/bin/havenctl", self);
        if (access(path, X_OK) == 0)
                return path;
        fail_msg("havenctl not found: build it first (make build/bin/havenctl)");
        return NULL;
}

static char *read_text(const char *path) {
        char *text = NULL;
        size_t size = 0;
        FILE *in = fopen(path, "re"), *out = open_memstream(&text, &size);
        char buf[4096];
        size_t n;

        assert_non_null(out);
        while (in && (n = fread(buf, 1, sizeof buf, in)) > 0)
                fwrite(buf, 1, n, out);
        if (in)
                fclose(in);
        assert_int_equal(fclose(out), 0);
        return text;
}

/* Runs havenctl --socket SOCKET ARGS... (NULL-terminated) while the
 * stand-in and its script run; returns its exit status, its output in
 * f->stdout_text and f->stderr_text. */
static int havenctl(struct fixture *f, ...) {
        const char *argv[32] = {havenctl_path(), "--socket", f->socket};
        size_t n = 3;
        uint64_t deadline = now_usec() + WAIT_USEC;
        va_list ap;
        int status;
        pid_t pid;

        va_start(ap, f);
        for (const char *a; (a = va_arg(ap, const char *));) {
                assert_true(n < ELEMENTSOF(argv) - 1);
                argv[n++] = a;
        }
        va_end(ap);
        argv[n] = NULL;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int out = open(f->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644),
                    err = open(f->err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644),
                    null = open("/dev/null", O_RDONLY | O_CLOEXEC);

                if (out < 0 || err < 0 || null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 ||
                    dup2(err, 2) < 0)
                        _exit(126);
                (void) unsetenv("HAVEN_DOMAIND_SOCKET");
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        for (;;) {
                pid_t r;

                assert_true(sd_event_run(f->event, 5000) >= 0);
                steps_run(f);
                r = waitpid(pid, &status, WNOHANG);
                assert_true(r >= 0);
                if (r == pid)
                        break;
                if (now_usec() > deadline) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                        fail_msg("havenctl %s did not end", argv[3]);
                }
        }
        free(f->stdout_text);
        free(f->stderr_text);
        f->stdout_text = read_text(f->out);
        f->stderr_text = read_text(f->err);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static struct json_object *row_of(struct fixture *f, const char *table, int64_t id) {
        return row_by_id(rows_of(f, table), id);
}

static const char *string_at(struct json_object *o, const char *key) {
        const char *v = NULL;

        assert_int_equal(haven_json_get_string(o, key, &v), 0);
        return v;
}

static int64_t int_at(struct json_object *o, const char *key) {
        int64_t v = INT64_MIN;

        assert_int_equal(haven_json_get_int64(o, key, &v), 0);
        return v;
}

static void assert_output_has(const char *text, const char *part) {
        if (!strstr(text, part))
                fail_msg("\"%s\" not in:\n%s", part, text);
}

/* ==== VM commands ==== */

static void vm_start_waits_for_the_manager_and_exits_0_when_done(void **state) {
        struct fixture *f = *state;
        struct json_object *row, *v;
        const char *actor;

        assert_int_equal(havenctl(f, "vm", "start", "web1", NULL), 0);
        assert_string_equal(f->stdout_text, "Command 1: vm web1: start.\n"
                                            "running\n"
                                            "done: web1 runs on node1\n");
        assert_string_equal(f->stderr_text, "");
        /* One insert, at once (never staged), with the audit text. */
        assert_int_equal(f->n_submits, 1);
        row = row_of(f, "vm_commands", 1);
        assert_int_equal(int_at(row, "vm_id"), 1);
        assert_string_equal(string_at(row, "command"), "start");
        assert_true(json_object_object_get_ex(row, "target_node_id", &v));
        assert_null(v);
        assert_int_equal(json_object_array_length(rows_of(f, "staged_changes")), 0);
        assert_string_equal(string_at(f->last_submit, "audit"), "vm web1: start");
        actor = string_at(f->last_submit, "actor");
        assert_int_equal(strncmp(actor, "havenctl:", 9), 0);
        assert_string_equal(string_at(row, "requested_by"), actor);

        /* By id too; --json prints the finished row. */
        assert_int_equal(havenctl(f, "vm", "reset", "1", "--json", NULL), 0);
        row = row_of(f, "vm_commands", 2);
        assert_string_equal(string_at(row, "command"), "reset");
        assert_output_has(f->stdout_text, "\"state\": \"done\"");
        assert_null(strstr(f->stdout_text, "Command 2"));
}

static void vm_command_the_manager_refuses_exits_1_with_its_result(void **state) {
        struct fixture *f = *state;

        f->manager = MANAGER_FAIL;
        assert_int_equal(havenctl(f, "vm", "reboot", "web1", NULL), 1);
        assert_string_equal(f->stdout_text, "Command 1: vm web1: reboot.\n"
                                            "running\n"
                                            "failed: web1 is not running\n");
        assert_string_equal(string_at(row_of(f, "vm_commands", 1), "state"), "failed");
}

static void vm_command_not_answered_in_time_says_it_goes_on(void **state) {
        struct fixture *f = *state;
        uint64_t started = now_usec();

        f->manager = MANAGER_SILENT;
        assert_int_equal(havenctl(f, "vm", "shutdown", "web1", "--timeout", "1", NULL), 1);
        assert_true(now_usec() - started >= 1000000u);
        assert_true(now_usec() - started < 10000000u);
        assert_string_equal(f->stdout_text, "Command 1: vm web1: shutdown.\n");
        assert_output_has(f->stderr_text, "havenctl: command 1 (vm web1: shutdown) is still "
                                          "pending after 1 s; it goes on without havenctl: see "
                                          "\"havenctl vm show web1\"");
        assert_string_equal(string_at(row_of(f, "vm_commands", 1), "state"), "pending");
}

static void no_wait_returns_once_the_command_is_written(void **state) {
        struct fixture *f = *state;

        f->manager = MANAGER_SILENT;
        assert_int_equal(havenctl(f, "vm", "poweroff", "web1", "--no-wait", NULL), 0);
        assert_string_equal(f->stdout_text, "Command 1: vm web1: poweroff.\n");
        assert_string_equal(string_at(row_of(f, "vm_commands", 1), "state"), "pending");
        assert_int_equal(havenctl(f, "vm", "release", "web1", "--no-wait", "--json", NULL), 0);
        assert_output_has(f->stdout_text, "\"command\": \"release\"");
        assert_output_has(f->stdout_text, "\"state\": \"pending\"");
}

static void migrate_names_its_target_and_shows_progress(void **state) {
        struct fixture *f = *state;
        struct json_object *row;

        f->manager = MANAGER_MIGRATE;
        assert_int_equal(havenctl(f, "vm", "migrate", "web1", "node2", NULL), 0);
        row = row_of(f, "vm_commands", 1);
        assert_string_equal(string_at(row, "command"), "migrate");
        assert_int_equal(int_at(row, "target_node_id"), 2);
        assert_string_equal(string_at(f->last_submit, "audit"), "vm web1: migrate to node2");
        assert_string_equal(f->stdout_text, "Command 1: vm web1: migrate to node2.\n"
                                            "running\n"
                                            "migrating: 30%\n"
                                            "migrating: 70%\n"
                                            "done: web1 runs on node2\n");

        /* The node by its corosync id. */
        assert_int_equal(havenctl(f, "vm", "migrate", "web1", "1", "--no-wait", NULL), 0);
        assert_int_equal(int_at(row_of(f, "vm_commands", 2), "target_node_id"), 1);
}

static void unknown_vm_or_node_writes_nothing(void **state) {
        struct fixture *f = *state;

        assert_int_equal(havenctl(f, "vm", "start", "nosuch", NULL), 1);
        assert_string_equal(f->stderr_text,
                            "havenctl: no VM \"nosuch\" in the cluster (see \"havenctl vm "
                            "list\")\n");
        assert_int_equal(havenctl(f, "vm", "start", "9", NULL), 1);
        assert_output_has(f->stderr_text, "no VM \"9\"");
        assert_int_equal(havenctl(f, "vm", "migrate", "web1", "node9", NULL), 1);
        assert_string_equal(f->stderr_text, "havenctl: no node \"node9\" in the cluster\n");
        assert_int_equal(havenctl(f, "vm", "migrate", "web1", "3", NULL), 1);
        assert_int_equal(havenctl(f, "vm", "prefer", "nosuch", "node1", NULL), 1);
        assert_int_equal(havenctl(f, "vm", "prefer", "web1", "node9", NULL), 1);
        assert_int_equal(havenctl(f, "node", "maintenance", "node9", NULL), 1);
        assert_int_equal(havenctl(f, "vm", "show", "nosuch", NULL), 1);
        assert_int_equal(f->n_submits, 0);
        assert_int_equal(json_object_array_length(rows_of(f, "vm_commands")), 0);
}

static void usage_errors_exit_2_before_anything_is_sent(void **state) {
        static const char *const cases[][8] = {
                {"vm", NULL},
                {"vm", "frob", "web1", NULL},
                {"vm", "list", "extra", NULL},
                {"vm", "show", NULL},
                {"vm", "show", "a", "b", NULL},
                {"vm", "start", NULL},
                {"vm", "start", "a", "b", NULL},
                {"vm", "migrate", "web1", NULL},
                {"vm", "migrate", "web1", "node2", "node1", NULL},
                {"vm", "start", "web1", "--timeout", "0", NULL},
                {"vm", "start", "web1", "--timeout", "x", NULL},
                {"vm", "start", "web1", "--timeout", "-5", NULL},
                {"vm", "start", "web1", "--timeout", "86401", NULL},
                {"vm", "start", "web1", "--no-wait", "--timeout", "5", NULL},
                {"vm", "start", "web1", "--none", NULL},
                {"vm", "start", "web1", "--wait", NULL},
                {"vm", "prefer", "web1", NULL},
                {"vm", "prefer", "web1", "node2", "--none", NULL},
                {"vm", "prefer", "web1", "node2", "--no-wait", NULL},
                {"node", "maintenance", "node2", "--timeout", "5", NULL},
                {"node", "maintenance", NULL},
                {"node", "active", "node2", "--wait", NULL},
                {"node", "standby", "node2", "--timeout", "5", NULL},
                {"node", "offline", "node2", NULL},
        };
        struct fixture *f = *state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *const *a = cases[i];
                int status = havenctl(f, a[0], a[1], a[2], a[3], a[4], a[5], a[6], NULL);

                if (status != 2)
                        fail_msg("case %zu (%s %s): exit %d, stderr %s", i, a[0],
                                 a[1] ? a[1] : "", status, f->stderr_text);
                assert_int_equal(strncmp(f->stderr_text, "havenctl: ", 10), 0);
        }
        assert_int_equal(f->n_requests, 0);
}

/* ==== prefer and node states ==== */

static void prefer_sets_and_clears_the_preferred_node_at_once(void **state) {
        struct fixture *f = *state;
        struct json_object *v, *op;

        assert_int_equal(havenctl(f, "vm", "prefer", "web1", "node2", NULL), 0);
        assert_string_equal(f->stdout_text, "web1 prefers node2 now: the VM manager moves it "
                                            "there when it can.\n");
        assert_int_equal(int_at(row_of(f, "vms", 1), "preferred_node_id"), 2);
        assert_int_equal(json_object_array_length(rows_of(f, "staged_changes")), 0);
        assert_string_equal(string_at(f->last_submit, "audit"), "vm web1: prefer node2");
        /* The row's version went along. */
        op = json_object_array_get_idx(json_object_object_get(f->last_submit, "ops"), 0);
        assert_string_equal(string_at(op, "op"), "update");
        assert_int_equal(int_at(op, "expect_version"), 4);

        assert_int_equal(havenctl(f, "vm", "prefer", "web1", "node2", NULL), 0);
        assert_string_equal(f->stdout_text, "web1 prefers node2 already.\n");
        assert_int_equal(f->n_submits, 1);

        assert_int_equal(havenctl(f, "vm", "prefer", "web1", "--none", NULL), 0);
        assert_string_equal(f->stdout_text, "web1 has no preferred node now.\n");
        assert_true(json_object_object_get_ex(row_of(f, "vms", 1), "preferred_node_id", &v));
        assert_null(v);
        assert_string_equal(string_at(f->last_submit, "audit"), "vm web1: prefer no node");
        assert_int_equal(havenctl(f, "vm", "prefer", "web1", "--none", NULL), 0);
        assert_string_equal(f->stdout_text, "web1 has no preferred node already.\n");
        assert_int_equal(f->n_submits, 2);
}

static void node_states_are_written_at_once(void **state) {
        struct fixture *f = *state;

        assert_int_equal(havenctl(f, "node", "standby", "node2", NULL), 0);
        assert_string_equal(f->stdout_text, "node2 is in standby: it takes no new VMs; what "
                                            "runs there stays.\n");
        assert_string_equal(string_at(row_of(f, "nodes", 2), "state"), "standby");
        assert_string_equal(string_at(f->last_submit, "audit"), "node node2: standby");
        assert_int_equal(json_object_array_length(rows_of(f, "staged_changes")), 0);

        assert_int_equal(havenctl(f, "node", "active", "2", NULL), 0);
        assert_string_equal(string_at(row_of(f, "nodes", 2), "state"), "active");
        assert_int_equal(havenctl(f, "node", "active", "node2", NULL), 0);
        assert_string_equal(f->stdout_text, "node2 is active already.\n");
        assert_int_equal(havenctl(f, "node", "maintenance", "node2", NULL), 0);
        assert_string_equal(f->stdout_text, "node2 is in maintenance: its VMs move away.\n");
        assert_string_equal(string_at(row_of(f, "nodes", 2), "state"), "maintenance");
        assert_int_equal(f->n_submits, 3);
}

static void a_change_in_between_is_a_conflict_not_an_overwrite(void **state) {
        struct fixture *f = *state;

        /* Someone changes each row right after havenctl read it. */
        f->bump_table = "nodes";
        assert_int_equal(havenctl(f, "node", "standby", "node2", NULL), 1);
        assert_string_equal(f->stderr_text, "havenctl: the row changed\n");
        assert_string_equal(string_at(row_of(f, "nodes", 2), "state"), "active");
        f->bump_table = "vms";
        assert_int_equal(havenctl(f, "vm", "prefer", "web1", "node2", NULL), 1);
        assert_true(json_object_object_get_ex(row_of(f, "vms", 1), "preferred_node_id", NULL));
        assert_false(json_object_get_int64(json_object_object_get(row_of(f, "vms", 1),
                                                                  "preferred_node_id")) == 2);
        assert_int_equal(f->n_submits, 2);
}

static void maintenance_wait_follows_the_node_until_it_is_empty(void **state) {
        struct fixture *f = *state;

        f->drain = true;
        entry_set(f, 1, "vm/web1", NULL);
        entry_set(f, 2, "vm/web1", json("{\"state\":\"running\"}"));
        entry_set(f, 2, "vm/db1", json("{\"state\":\"running\"}"));
        json_object_array_add(rows_of(f, "vm_placements"),
                              json("{\"id\":1,\"vm_id\":2,\"node_id\":2,\"state\":\"running\","
                                   "\"reason\":\"stays on node2 during maintenance: needs "
                                   "1024 MiB\"}"));
        assert_int_equal(havenctl(f, "node", "maintenance", "node2", "--wait", NULL), 0);
        assert_string_equal(f->stdout_text,
                            "node2 is in maintenance: its VMs move away.\n"
                            "node2 still runs 2 VMs: db1, web1\n"
                            "  db1: stays on node2 during maintenance: needs 1024 MiB\n"
                            "node2 still runs 2 VMs: db1, web1 (migrating, 50%)\n"
                            "node2 still runs 1 VM: db1\n"
                            "node2 runs no VM any more.\n");
}

static void maintenance_wait_times_out_when_a_vm_stays(void **state) {
        struct fixture *f = *state;

        f->drain = true;
        f->drain_keeps_db1 = true;
        entry_set(f, 2, "vm/db1", json("{\"state\":\"running\"}"));
        assert_int_equal(
                havenctl(f, "node", "maintenance", "node2", "--wait", "--timeout", "1", NULL), 1);
        assert_output_has(f->stdout_text, "node2 still runs 1 VM: db1\n");
        assert_string_equal(f->stderr_text,
                            "havenctl: node2 still runs 1 VM after 1 s; it stays in maintenance "
                            "and they move away when they can (see \"havenctl vm list\")\n");
        assert_string_equal(string_at(row_of(f, "nodes", 2), "state"), "maintenance");
}

/* ==== Reading ==== */

static void vm_list_and_show_read_the_domain(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *list = NULL;
        struct json_object *v;

        assert_int_equal(havenctl(f, "vm", "list", "--json", NULL), 0);
        list = json(f->stdout_text);
        assert_int_equal(json_object_array_length(list), 2);
        v = json_object_array_get_idx(list, 0);
        assert_string_equal(string_at(v, "name"), "web1");
        assert_string_equal(string_at(v, "node"), "node1");
        assert_string_equal(string_at(v, "state"), "running");
        assert_string_equal(string_at(v, "ha"), "on");
        v = json_object_array_get_idx(list, 1);
        assert_true(json_object_object_get_ex(v, "node", &v));
        assert_null(v);

        assert_int_equal(havenctl(f, "vm", "list", NULL), 0);
        assert_output_has(f->stdout_text, "VM    NODE   STATE    HA  PREFERRED  PRIORITY  "
                                          "MEMORY    REASON\n"
                                          "web1  node1  running  on  -          500       "
                                          "512 MiB   -\n");
        assert_int_equal(havenctl(f, "vm", "show", "web1", NULL), 0);
        assert_output_has(f->stdout_text, "State:          running on node1\n");
        assert_int_equal(havenctl(f, "vm", "show", "web1", "--json", NULL), 0);
        assert_output_has(f->stdout_text, "\"reports\"");
        assert_int_equal(f->n_submits, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
                T(vm_start_waits_for_the_manager_and_exits_0_when_done),
                T(vm_command_the_manager_refuses_exits_1_with_its_result),
                T(vm_command_not_answered_in_time_says_it_goes_on),
                T(no_wait_returns_once_the_command_is_written),
                T(migrate_names_its_target_and_shows_progress),
                T(unknown_vm_or_node_writes_nothing),
                T(usage_errors_exit_2_before_anything_is_sent),
                T(prefer_sets_and_clears_the_preferred_node_at_once),
                T(node_states_are_written_at_once),
                T(a_change_in_between_is_a_conflict_not_an_overwrite),
                T(maintenance_wait_follows_the_node_until_it_is_empty),
                T(maintenance_wait_times_out_when_a_vm_stays),
                T(vm_list_and_show_read_the_domain),
#undef T
        };

        /* The children's exits are reaped with waitpid(). */
        signal(SIGPIPE, SIG_IGN);
        if (getenv("TEST_FILTER"))
                cmocka_set_test_filter(getenv("TEST_FILTER"));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
