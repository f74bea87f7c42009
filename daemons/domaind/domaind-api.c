/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-domaind's local API: framed JSON requests on a unix socket (submit,
 * status, query, snapshot, subscribe, status-publish, status-read; see
 * docs/domain.md), each validated against its field policy before it is
 * handled; submissions waiting for their transaction to be applied;
 * subscribers and the events they asked for. Must not: write the store
 * (only delivered transactions do).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "domaind.h"
#include "haven/db.h"
#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"

#define API_MAX_SIZE (1024 * 1024)
#define API_MAX_CONNECTIONS 256

static const char *const event_names[] = { "commit", "status", "job-log", "membership", NULL };

/* ==== Replies ==== */

struct json_object *api_reply_new(struct json_object *tag) {
        struct json_object *o = json_object_new_object();
        if (o && tag)
                haven_json_add(o, "tag", json_object_get(tag));
        return o;
}

struct json_object *api_error_new(struct json_object *tag, const char *code, const char *message,
                                  const char *field) {
        struct json_object *o = api_reply_new(tag), *e = json_object_new_object();

        haven_json_add(e, "code", json_object_new_string(code));
        haven_json_add(e, "message", json_object_new_string(message));
        haven_json_add(e, "field", field && *field ? json_object_new_string(field) : NULL);
        haven_json_add(o, "error", e);
        return o;
}

static int send_error(struct haven_msg_conn *conn, struct json_object *tag, const char *code,
                      const char *message, const char *field) {
        _cleanup_(json_object_putp) struct json_object *o = api_error_new(tag, code, message, field);
        return haven_msg_conn_send(conn, o);
}

static void pending_free(struct pending *p) {
        if (!p)
                return;
        haven_msg_conn_unref(p->conn);
        json_object_put(p->tag);
        json_object_put(p->message);
        free(p);
}

static void pending_unlink(struct domain *d, struct pending *p) {
        for (struct pending **pp = &d->pending; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        return;
                }
}

void api_pending_done(struct domain *d, struct pending *p, struct json_object *result,
                      const struct store_error *error) {
        pending_unlink(d, p);
        if (p->done)
                p->done(d, p, result, error);
        else if (!p->conn)
                ;
        else if (error) {
                /* "op": which op of the transaction failed, so a client that
                 * sent several can say which of its rows was refused. */
                _cleanup_(json_object_putp) struct json_object *o =
                        api_error_new(p->tag, error->code, error->message, error->field);
                struct json_object *e;

                if (o && error->op_index >= 0 && json_object_object_get_ex(o, "error", &e))
                        (void) haven_json_add(e, "op", json_object_new_int64(error->op_index));
                if (o)
                        (void) haven_msg_conn_send(p->conn, o);
        }
        else {
                _cleanup_(json_object_putp) struct json_object *o = api_reply_new(p->tag);
                json_object_object_foreach(result, key, value)
                        (void) haven_json_add(o, key, json_object_get(value));
                (void) haven_msg_conn_send(p->conn, o);
        }
        pending_free(p);
}

struct pending *api_pending_new(struct domain *d, struct haven_msg_conn *conn,
                                struct json_object *tag, struct json_object *ops,
                                const char *actor, const char *audit) {
        struct pending *p = calloc(1, sizeof *p);

        if (!p)
                return NULL;
        p->request_id = ++d->next_request_id;
        p->conn = conn ? haven_msg_conn_ref(conn) : NULL;
        p->tag = json_object_get(tag);
        p->message = json_object_new_object();
        haven_json_add(p->message, "request", json_object_new_int64((int64_t) p->request_id));
        haven_json_add(p->message, "actor", json_object_new_string(actor));
        if (audit)
                haven_json_add(p->message, "audit", json_object_new_string(audit));
        haven_json_add(p->message, "node", json_object_new_string(d->node_name));
        haven_json_add(p->message, "time",
                       json_object_new_int64((int64_t) domain_now_realtime_usec()));
        haven_json_add(p->message, "ops", json_object_get(ops));
        p->next = d->pending;
        d->pending = p;
        return p;
}

void api_pending_fail_all(struct domain *d, const char *code, const char *message) {
        while (d->pending) {
                struct pending *p = d->pending;
                d->pending = p->next;
                (void) send_error(p->conn, p->tag, code, message, NULL);
                pending_free(p);
        }
}

/* Multicasts every submission that is waiting for a sync (or was refused
 * because its delivery fell into one). */
int api_submit_flush(struct domain *d) {
        const char *reason;
        int r;

        for (struct pending *p = d->pending, *next; p; p = next) {
                next = p->next;
                reason = NULL;
                if (p->sent)
                        continue;
                if (!d->synced || !domain_is_writable(d, &reason)) {
                        if (!d->synced && d->cpg_connected)
                                continue;  /* after the sync */
                        if (p->wait_deadline_usec > haven_now_usec(CLOCK_MONOTONIC))
                                continue;  /* the cluster is being set up */
                        if (!reason)
                                reason = "the cluster did not come up in time";
                        struct store_error e = { .op_index = -1 };
                        snprintf(e.code, sizeof e.code, "no-quorum");
                        snprintf(e.message, sizeof e.message, "%s", reason);
                        api_pending_done(d, p, NULL, &e);
                        continue;
                }
                r = domain_multicast_json(d, DOMAIN_MSG_TX, p->message);
                if (r < 0) {
                        struct store_error e = { .op_index = -1 };
                        snprintf(e.code, sizeof e.code, "internal");
                        snprintf(e.message, sizeof e.message, "failed to send the transaction: %s",
                                 strerror(-r));
                        api_pending_done(d, p, NULL, &e);
                        continue;
                }
                p->sent = true;
        }
        return 0;
}

/* ==== Events ==== */

void api_emit(struct domain *d, unsigned event_bit, struct json_object *event) {
        for (struct subscriber **pp = &d->subscribers, *s; (s = *pp);) {
                if ((s->events & event_bit) && haven_msg_conn_send(s->conn, event) < 0) {
                        *pp = s->next;
                        haven_msg_conn_unref(s->conn);
                        free(s);
                        continue;
                }
                pp = &s->next;
        }
}

/* ==== Requests ==== */

/* Fields every request may carry; each policy below starts with them. */
#define COMMON_FIELDS                                                          \
        { .name = "request", .kind = HAVEN_JSON_STRING, .required = true },    \
        { .name = "tag", .kind = HAVEN_JSON_ANY, .nullable = true }

static const struct haven_json_field status_policy[] = { COMMON_FIELDS };
static const struct haven_json_field submit_policy[] = {
        COMMON_FIELDS,
        { .name = "ops", .kind = HAVEN_JSON_ARRAY, .required = true,
          .min = 1, .max = DOMAIN_SUBMIT_OPS_MAX },
        { .name = "actor", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 64 },
        { .name = "audit", .kind = HAVEN_JSON_STRING, .max = 256 },
};
static const struct haven_json_field query_policy[] = {
        COMMON_FIELDS,
        { .name = "table", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 64 },
        { .name = "where", .kind = HAVEN_JSON_OBJECT },
};
static const struct haven_json_field snapshot_policy[] = {
        COMMON_FIELDS,
        { .name = "tables", .kind = HAVEN_JSON_ARRAY, .min = 1, .max = 64 },
};
static const struct haven_json_field subscribe_policy[] = {
        COMMON_FIELDS,
        { .name = "events", .kind = HAVEN_JSON_ARRAY, .required = true, .min = 1, .max = 4 },
};
static const struct haven_json_field status_publish_policy[] = {
        COMMON_FIELDS,
        { .name = "key", .kind = HAVEN_JSON_STRING, .required = true,
          .min = 1, .max = DOMAIN_STATUS_KEY_MAX },
        { .name = "value", .kind = HAVEN_JSON_ANY, .required = true, .nullable = true },
};
static const struct haven_json_field status_read_policy[] = {
        COMMON_FIELDS,
        { .name = "node", .kind = HAVEN_JSON_INT, .min = 1, .max = UINT32_MAX },
        { .name = "prefix", .kind = HAVEN_JSON_STRING, .max = DOMAIN_STATUS_KEY_MAX },
};
static const struct haven_json_field cluster_create_policy[] = {
        COMMON_FIELDS,
        { .name = "name", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 63 },
        { .name = "admin", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 63 },
        { .name = "password", .kind = HAVEN_JSON_STRING, .required = true, .min = 8, .max = 256 },
        { .name = "address", .kind = HAVEN_JSON_STRING, .min = 2, .max = 45 },
};
static const struct haven_json_field cluster_join_policy[] = {
        COMMON_FIELDS,
        { .name = "address", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 253 },
        { .name = "admin", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 63 },
        { .name = "password", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 256 },
        { .name = "own_address", .kind = HAVEN_JSON_STRING, .min = 2, .max = 45 },
};
static const struct haven_json_field node_remove_policy[] = {
        COMMON_FIELDS,
        { .name = "node", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 63 },
        { .name = "actor", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 64 },
};

static int handle_submit(struct domain *d, struct haven_msg_conn *conn, struct json_object *req,
                         struct json_object *tag) {
        struct json_object *ops;
        const char *actor, *audit = NULL, *reason;
        struct pending *p;

        if (!domain_is_writable(d, &reason))
                return send_error(conn, tag, "no-quorum", reason, NULL);

        (void) haven_json_get_array(req, "ops", &ops);
        (void) haven_json_get_string(req, "actor", &actor);
        (void) haven_json_get_string(req, "audit", &audit);

        p = api_pending_new(d, conn, tag, ops, actor, audit);
        if (!p)
                return -ENOMEM;
        /* Sent now, or after the sync in progress. */
        return api_submit_flush(d);
}

static struct json_object *member_json(uint32_t id, const char *name, const char *state,
                                       bool online) {
        struct json_object *o = json_object_new_object();
        haven_json_add(o, "id", json_object_new_int64(id));
        haven_json_add(o, "name", haven_json_string_or_null(name));
        haven_json_add(o, "state", haven_json_string_or_null(state));
        haven_json_add(o, "online", json_object_new_boolean(online));
        return o;
}

static int handle_status(struct domain *d, struct haven_msg_conn *conn, struct json_object *req,
                         struct json_object *tag) {
        _cleanup_(json_object_putp) struct json_object *o = api_reply_new(tag);
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        struct json_object *members = json_object_new_array(), *manager = NULL;
        int64_t config_version = 0;
        char hex[17];
        bool listed[DOMAIN_MEMBERS_MAX] = {};

        if (sqlite3_prepare_v2(store_db(d->store),
                               "SELECT config_version FROM cluster LIMIT 1", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                config_version = sqlite3_column_int64(st, 0);
        sqlite3_finalize(TAKE_PTR(st));

        if (sqlite3_prepare_v2(store_db(d->store),
                               "SELECT node_id, name, state FROM nodes ORDER BY node_id", -1, &st,
                               NULL) == SQLITE_OK)
                while (sqlite3_step(st) == SQLITE_ROW) {
                        uint32_t id = (uint32_t) sqlite3_column_int64(st, 0);
                        bool online = domain_is_member(d, id);
                        for (size_t i = 0; i < d->n_members; i++)
                                if (d->members[i].node_id == id)
                                        listed[i] = true;
                        json_object_array_add(members,
                                              member_json(id, (const char *) sqlite3_column_text(st, 1),
                                                          (const char *) sqlite3_column_text(st, 2),
                                                          online));
                }
        /* Members that are not (yet) nodes of the domain. */
        for (size_t i = 0; i < d->n_members; i++)
                if (!listed[i] && (i == 0 || d->members[i].node_id != d->members[i - 1].node_id))
                        json_object_array_add(members, member_json(d->members[i].node_id,
                                                                   NULL, NULL, true));
        for (struct status_entry *e = d->status; e; e = e->next)
                if (streq(e->key, "manager"))
                        manager = e->value;

        snprintf(hex, sizeof hex, "%016" PRIx64, store_checksum(d->store));
        haven_json_add(o, "quorate", json_object_new_boolean(d->quorate));
        haven_json_add(o, "synced", json_object_new_boolean(d->synced));
        haven_json_add(o, "connected", json_object_new_boolean(d->cpg_connected));
        haven_json_add(o, "version", json_object_new_int64((int64_t) store_version(d->store)));
        haven_json_add(o, "config_version", json_object_new_int64(config_version));
        haven_json_add(o, "checksum", json_object_new_string(hex));
        haven_json_add(o, "node_id", d->node_id ? json_object_new_int64(d->node_id) : NULL);
        haven_json_add(o, "node_name", json_object_new_string(d->node_name));
        haven_json_add(o, "members", members);
        haven_json_add(o, "manager", json_object_get(manager));
        haven_json_add(o, "sync_rounds", json_object_new_int64((int64_t) d->rounds));
        return haven_msg_conn_send(conn, o);
}

static int handle_query(struct domain *d, struct haven_msg_conn *conn, struct json_object *req,
                        struct json_object *tag) {
        _cleanup_(json_object_putp) struct json_object *o = NULL, *rows = NULL;
        struct json_object *where = NULL;
        const char *table;
        int r;

        (void) haven_json_get_string(req, "table", &table);
        (void) haven_json_get_object(req, "where", &where);
        r = store_query(d->store, table, where, &rows);
        if (r == -EINVAL)
                return send_error(conn, tag, "invalid",
                                  "unknown table, or a column in \"where\" it does not have", "table");
        if (r < 0)
                return send_error(conn, tag, "internal", strerror(-r), NULL);
        o = api_reply_new(tag);
        haven_json_add(o, "rows", TAKE_PTR(rows));
        return haven_msg_conn_send(conn, o);
}

/* The replicated content as store_snapshot() takes it (one read, so
 * consistent), or only the tables named in "tables" (the checksum stays the
 * whole domain's). A snapshot larger than a message is refused with a
 * message saying so, not by dropping the connection. */
static int handle_snapshot(struct domain *d, struct haven_msg_conn *conn, struct json_object *req,
                           struct json_object *tag) {
        _cleanup_(json_object_putp) struct json_object *snap = NULL, *o = NULL, *picked = NULL;
        struct json_object *want = NULL, *all = NULL, *v;
        int r;

        (void) haven_json_get_array(req, "tables", &want);
        r = store_snapshot(d->store, &snap);
        if (r < 0)
                return send_error(conn, tag, "internal", strerror(-r), NULL);
        (void) haven_json_get_object(snap, "tables", &all);
        if (want) {
                picked = json_object_new_object();
                if (!picked)
                        return -ENOMEM;
                for (size_t i = 0; i < json_object_array_length(want); i++) {
                        struct json_object *name = json_object_array_get_idx(want, i);

                        if (!json_object_is_type(name, json_type_string) ||
                            !json_object_object_get_ex(all, json_object_get_string(name), &v))
                                return send_error(conn, tag, "invalid",
                                                  "\"tables\" must name tables of the domain",
                                                  "tables");
                        if (haven_json_add(picked, json_object_get_string(name),
                                           json_object_get(v)) < 0)
                                return -ENOMEM;
                }
        }
        o = api_reply_new(tag);
        if (!o)
                return -ENOMEM;
        json_object_object_foreach(snap, key, value)
                if (haven_json_add(o, key, json_object_get(streq(key, "tables") && picked
                                                                   ? picked : value)) < 0)
                        return -ENOMEM;
        r = haven_msg_conn_send(conn, o);
        if (r == -E2BIG)
                return send_error(conn, tag, "internal",
                                  "the snapshot is larger than a message of the local API (1 MiB)",
                                  NULL);
        return r;
}

static int handle_subscribe(struct domain *d, struct haven_msg_conn *conn, struct json_object *req,
                            struct json_object *tag) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *events;
        struct subscriber *s;
        unsigned mask = 0;

        (void) haven_json_get_array(req, "events", &events);
        for (size_t i = 0; i < json_object_array_length(events); i++) {
                struct json_object *e = json_object_array_get_idx(events, i);
                size_t k;
                for (k = 0; event_names[k]; k++)
                        if (json_object_is_type(e, json_type_string) &&
                            streq(json_object_get_string(e), event_names[k]))
                                break;
                if (!event_names[k])
                        return send_error(conn, tag, "invalid",
                                          "events are \"commit\", \"status\", \"job-log\" and \"membership\"",
                                          "events");
                mask |= 1u << k;
        }
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->conn = haven_msg_conn_ref(conn);
        s->events = mask;
        s->next = d->subscribers;
        d->subscribers = s;
        o = api_reply_new(tag);
        haven_json_add(o, "subscribed", json_object_new_boolean(true));
        return haven_msg_conn_send(conn, o);
}

static int handle_status_publish(struct domain *d, struct haven_msg_conn *conn,
                                 struct json_object *req, struct json_object *tag) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *value = NULL;
        const char *key;
        int r;

        (void) haven_json_get_string(req, "key", &key);
        (void) json_object_object_get_ex(req, "value", &value);
        if (value && strlen(json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN)) >
                             DOMAIN_STATUS_VALUE_MAX)
                return send_error(conn, tag, "invalid", "the value is larger than 64 KiB", "value");
        r = status_publish(d, key, value);
        if (r < 0)
                return send_error(conn, tag, "internal", strerror(-r), NULL);
        o = api_reply_new(tag);
        haven_json_add(o, "ok", json_object_new_boolean(true));
        return haven_msg_conn_send(conn, o);
}

static int handle_status_read(struct domain *d, struct haven_msg_conn *conn,
                              struct json_object *req, struct json_object *tag) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *entries = json_object_new_array();
        const char *prefix = "";
        int64_t node = 0;

        (void) haven_json_get_int64(req, "node", &node);
        (void) haven_json_get_string(req, "prefix", &prefix);
        for (struct status_entry *e = d->status; e; e = e->next) {
                struct json_object *x;
                if ((node && e->node_id != node) || strncmp(e->key, prefix, strlen(prefix)) != 0)
                        continue;
                x = json_object_new_object();
                haven_json_add(x, "node", json_object_new_int64(e->node_id));
                haven_json_add(x, "key", json_object_new_string(e->key));
                haven_json_add(x, "value", json_object_get(e->value));
                json_object_array_add(entries, x);
        }
        o = api_reply_new(tag);
        haven_json_add(o, "entries", entries);
        return haven_msg_conn_send(conn, o);
}

static int handle_cluster_create(struct domain *d, struct haven_msg_conn *conn,
                                 struct json_object *req, struct json_object *tag) {
        struct store_error e = { .op_index = -1 };
        const char *name, *admin, *password, *address = NULL;
        int r;

        (void) haven_json_get_string(req, "name", &name);
        (void) haven_json_get_string(req, "admin", &admin);
        (void) haven_json_get_string(req, "password", &password);
        (void) haven_json_get_string(req, "address", &address);
        r = cluster_create(d, conn, tag, name, admin, password, address, &e);
        if (r < 0)
                return send_error(conn, tag, e.code, e.message, e.field);
        return 0; /* answered when the first transaction is applied */
}

static int handle_node_remove(struct domain *d, struct haven_msg_conn *conn,
                              struct json_object *req, struct json_object *tag) {
        struct store_error e = { .op_index = -1 };
        const char *node, *actor, *reason;
        int r;

        if (!domain_is_writable(d, &reason))
                return send_error(conn, tag, "no-quorum", reason, NULL);
        (void) haven_json_get_string(req, "node", &node);
        (void) haven_json_get_string(req, "actor", &actor);
        r = cluster_remove_node(d, conn, tag, node, actor, &e);
        if (r < 0)
                return send_error(conn, tag, e.code[0] ? e.code : "internal",
                                  e.message[0] ? e.message : strerror(-r), e.field);
        return api_submit_flush(d);
}

static int handle_cluster_join(struct domain *d, struct haven_msg_conn *conn,
                               struct json_object *req, struct json_object *tag) {
        struct store_error e = { .op_index = -1 };
        const char *address, *admin, *password, *own = NULL;
        int r;

        (void) haven_json_get_string(req, "address", &address);
        (void) haven_json_get_string(req, "admin", &admin);
        (void) haven_json_get_string(req, "password", &password);
        (void) haven_json_get_string(req, "own_address", &own);
        r = join_start(d, conn, tag, address, admin, password, own, &e);
        if (r < 0)
                return send_error(conn, tag, e.code[0] ? e.code : "internal",
                                  e.message[0] ? e.message : strerror(-r), e.field);
        return 0; /* answered when the join is complete */
}

typedef int (*request_handler_t)(struct domain *d, struct haven_msg_conn *conn,
                                 struct json_object *req, struct json_object *tag);

/* Every request: its name, its handler, and the policy its fields are
 * checked against before the handler runs. */
#define REQUEST(n, h) { n, handle_##h, h##_policy, ELEMENTSOF(h##_policy) }
static const struct {
        const char *name;
        request_handler_t handler;
        const struct haven_json_field *policy;
        size_t n_policy;
} requests[] = {
        REQUEST("submit", submit),
        REQUEST("status", status),
        REQUEST("query", query),
        REQUEST("snapshot", snapshot),
        REQUEST("subscribe", subscribe),
        REQUEST("status-publish", status_publish),
        REQUEST("status-read", status_read),
        REQUEST("cluster-create", cluster_create),
        REQUEST("cluster-join", cluster_join),
        REQUEST("node-remove", node_remove),
};

static int on_request(struct haven_msg_conn *conn, struct json_object *req, void *userdata) {
        struct domain *d = userdata;
        struct json_object *tag = NULL, *name;

        (void) json_object_object_get_ex(req, "tag", &tag);
        if (!json_object_object_get_ex(req, "request", &name) ||
            !json_object_is_type(name, json_type_string))
                return send_error(conn, tag, "invalid", "a request needs \"request\" (its name)",
                                  "request");
        for (size_t i = 0; i < ELEMENTSOF(requests); i++) {
                struct haven_json_error error;

                if (!streq(json_object_get_string(name), requests[i].name))
                        continue;
                if (haven_json_check(req, requests[i].policy, requests[i].n_policy, &error) < 0)
                        return send_error(conn, tag, "invalid", error.message, error.field);
                return requests[i].handler(d, conn, req, tag);
        }
        return send_error(conn, tag, "invalid", "unknown request", "request");
}

int api_open(struct domain *d) {
        struct haven_msg_server_config config = {
                .path = d->socket_path,
                .mode = 0600,
                .max_size = API_MAX_SIZE,
                .max_connections = API_MAX_CONNECTIONS,
                .handler = on_request,
                .userdata = d,
        };
        return haven_msg_server_new(d->event, &config, &d->server);
}

void api_close(struct domain *d) {
        api_pending_fail_all(d, "internal", "haven-domaind is shutting down");
        while (d->subscribers) {
                struct subscriber *s = d->subscribers;
                d->subscribers = s->next;
                haven_msg_conn_unref(s->conn);
                free(s);
        }
        d->server = haven_msg_server_free(d->server);
}
