/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven/domain.h: a daemon's up-to-date view of the configuration domain.
 * One link to domaind; one request in flight at a time (status, a table, or
 * the entries), taken from what is marked stale; events mark things stale
 * (commits: their tables; membership: the status) or are applied directly
 * (status-map entries under our prefixes). When nothing is stale and
 * nothing is in flight, the accumulated changes are reported once, from a
 * defer source. Must not: block, or report a half-read view.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "haven/domain.h"
#include "haven/json.h"
#include "haven/log.h"
#include "haven/text.h"

#define CALL_TIMEOUT_USEC (30ULL * 1000000ULL)
#define AUDIT_MAX 256 /* characters domaind takes */
#define TABLES_MAX 32

struct haven_domain {
        sd_event *event;
        struct haven_msg_link *link;
        char *actor;
        char **tables;
        size_t n_tables;
        char **prefixes;
        haven_domain_change_t on_change;
        void *userdata;

        struct json_object *status;
        struct json_object *rows; /* {"table": [rows]} */
        struct json_object *entries;
        uint32_t node_id;
        bool quorate;
        uint32_t *members;
        size_t n_members;

        /* What must be read again. */
        bool stale_status, stale_entries, stale_table[TABLES_MAX];
        bool subscribed, in_flight;
        bool read_once; /* everything read since the last connect */
        unsigned changed;
        sd_event_source *defer;
};

static void pump(struct haven_domain *d);

/* ==== Helpers ==== */

static struct json_object *request_new(const char *name) {
        struct json_object *req = json_object_new_object();

        if (req && haven_json_add(req, "request", json_object_new_string(name)) < 0) {
                json_object_put(req);
                return NULL;
        }
        return req;
}

const char *haven_domain_reply_error(struct json_object *reply,
                                     const char **ret_message) {
        struct json_object *error, *v;

        if (ret_message)
                *ret_message = "";
        if (!reply || !json_object_object_get_ex(reply, "error", &error))
                return "";
        if (ret_message && json_object_object_get_ex(error, "message", &v) &&
            json_object_is_type(v, json_type_string))
                *ret_message = json_object_get_string(v);
        if (json_object_object_get_ex(error, "code", &v) &&
            json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return "internal";
}

static bool has_prefix(struct haven_domain *d, const char *key) {
        for (size_t i = 0; d->prefixes && d->prefixes[i]; i++)
                if (strncmp(key, d->prefixes[i], strlen(d->prefixes[i])) == 0)
                        return true;
        return false;
}

static int table_index(struct haven_domain *d, const char *table) {
        for (size_t i = 0; i < d->n_tables; i++)
                if (streq(d->tables[i], table))
                        return (int) i;
        return -ENOENT;
}

static int members_set(struct haven_domain *d, struct json_object *ids) {
        size_t n = json_object_array_length(ids), k = 0;
        uint32_t *m = calloc(n ? n : 1, sizeof(uint32_t));

        if (!m)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *v = json_object_array_get_idx(ids, i);

                if (json_object_is_type(v, json_type_int))
                        m[k++] = (uint32_t) json_object_get_int64(v);
        }
        /* Sorted, for callers that pick the lowest. */
        for (size_t i = 1; i < k; i++)
                for (size_t j = i; j > 0 && m[j - 1] > m[j]; j--) {
                        uint32_t t = m[j];

                        m[j] = m[j - 1];
                        m[j - 1] = t;
                }
        free(d->members);
        d->members = m;
        d->n_members = k;
        return 0;
}

/* ==== Reporting ==== */

static int on_defer(sd_event_source *s, void *userdata) {
        struct haven_domain *d = userdata;
        unsigned what = d->changed;

        d->changed = 0;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (what && d->on_change)
                d->on_change(d, what, d->userdata);
        return 0;
}

static bool anything_stale(struct haven_domain *d) {
        if (d->stale_status || d->stale_entries)
                return true;
        for (size_t i = 0; i < d->n_tables; i++)
                if (d->stale_table[i])
                        return true;
        return false;
}

/* Reports the accumulated changes once the view is consistent again. */
static void maybe_report(struct haven_domain *d) {
        if (d->in_flight || anything_stale(d) || !d->changed)
                return;
        d->read_once = true;
        (void) sd_event_source_set_enabled(d->defer, SD_EVENT_ONESHOT);
}

/* ==== Reading ==== */

static void read_done(struct haven_domain *d) {
        d->in_flight = false;
        pump(d);
        maybe_report(d);
}

static void status_on_reply(struct haven_msg_link *link, int error,
                            struct json_object *reply, void *userdata) {
        struct haven_domain *d = userdata;
        _cleanup_(json_object_putp) struct json_object *ids = NULL;
        struct json_object *members, *v;

        if (error < 0 || *haven_domain_reply_error(reply, NULL)) {
                /* Read again with the next event or after a reconnect. */
                d->in_flight = false;
                d->stale_status = true;
                return;
        }
        json_object_put(d->status);
        d->status = json_object_get(reply);
        d->node_id = json_object_object_get_ex(reply, "node_id", &v) &&
                                     json_object_is_type(v, json_type_int)
                             ? (uint32_t) json_object_get_int64(v)
                             : 0;
        d->quorate = json_object_object_get_ex(reply, "quorate", &v) &&
                     json_object_get_boolean(v);
        ids = json_object_new_array();
        if (ids && json_object_object_get_ex(reply, "members", &members) &&
            json_object_is_type(members, json_type_array))
                for (size_t i = 0; i < json_object_array_length(members); i++) {
                        struct json_object *m = json_object_array_get_idx(members, i), *on, *id;

                        if (json_object_object_get_ex(m, "online", &on) &&
                            json_object_get_boolean(on) &&
                            json_object_object_get_ex(m, "id", &id))
                                (void) json_object_array_add(ids, json_object_get(id));
                }
        if (ids)
                (void) members_set(d, ids);
        d->changed |= HAVEN_DOMAIN_STATUS;
        read_done(d);
}

struct table_read {
        struct haven_domain *d;
        size_t index;
};

static void table_on_reply(struct haven_msg_link *link, int error,
                           struct json_object *reply, void *userdata) {
        struct table_read *t = userdata;
        struct haven_domain *d = t->d;
        size_t index = t->index;
        struct json_object *rows;

        free(t);
        if (error < 0 || !json_object_object_get_ex(reply, "rows", &rows) ||
            !json_object_is_type(rows, json_type_array)) {
                d->in_flight = false;
                d->stale_table[index] = true;
                return;
        }
        (void) haven_json_add(d->rows, d->tables[index], json_object_get(rows));
        d->changed |= HAVEN_DOMAIN_TABLES;
        read_done(d);
}

static void entries_on_reply(struct haven_msg_link *link, int error,
                             struct json_object *reply, void *userdata) {
        struct haven_domain *d = userdata;
        _cleanup_(json_object_putp) struct json_object *mine = json_object_new_array();
        struct json_object *entries;

        if (error < 0 || !mine ||
            !json_object_object_get_ex(reply, "entries", &entries) ||
            !json_object_is_type(entries, json_type_array)) {
                d->in_flight = false;
                d->stale_entries = true;
                return;
        }
        for (size_t i = 0; i < json_object_array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i), *k;

                if (json_object_object_get_ex(e, "key", &k) &&
                    json_object_is_type(k, json_type_string) &&
                    has_prefix(d, json_object_get_string(k)))
                        (void) json_object_array_add(mine, json_object_get(e));
        }
        json_object_put(d->entries);
        d->entries = TAKE_PTR(mine);
        d->changed |= HAVEN_DOMAIN_ENTRIES;
        read_done(d);
}

/* Starts the next read if one is due and none runs. */
static void pump(struct haven_domain *d) {
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        int r;

        if (d->in_flight || !d->subscribed || !haven_msg_link_connected(d->link))
                return;
        if (d->stale_status) {
                req = request_new("status");
                if (!req)
                        return;
                d->stale_status = false;
                r = haven_msg_link_call(d->link, req, CALL_TIMEOUT_USEC,
                                        status_on_reply, d, NULL);
                d->in_flight = r >= 0;
                return;
        }
        for (size_t i = 0; i < d->n_tables; i++) {
                struct table_read *t;

                if (!d->stale_table[i])
                        continue;
                req = request_new("query");
                t = calloc(1, sizeof(*t));
                if (!req || !t ||
                    haven_json_add(req, "table", json_object_new_string(d->tables[i])) < 0) {
                        free(t);
                        return;
                }
                *t = (struct table_read){.d = d, .index = i};
                d->stale_table[i] = false;
                r = haven_msg_link_call(d->link, req, CALL_TIMEOUT_USEC,
                                        table_on_reply, t, NULL);
                if (r < 0)
                        free(t);
                d->in_flight = r >= 0;
                return;
        }
        if (d->stale_entries) {
                req = request_new("status-read");
                if (!req)
                        return;
                d->stale_entries = false;
                r = haven_msg_link_call(d->link, req, CALL_TIMEOUT_USEC,
                                        entries_on_reply, d, NULL);
                d->in_flight = r >= 0;
        }
}

static void mark_all_stale(struct haven_domain *d) {
        d->stale_status = true;
        d->stale_entries = d->prefixes && d->prefixes[0];
        for (size_t i = 0; i < d->n_tables; i++)
                d->stale_table[i] = true;
}

/* ==== Events ==== */

static void entry_apply(struct haven_domain *d, struct json_object *event) {
        struct json_object *key, *node, *value;
        size_t n = json_object_array_length(d->entries);

        if (!json_object_object_get_ex(event, "key", &key) ||
            !json_object_is_type(key, json_type_string) ||
            !has_prefix(d, json_object_get_string(key)) ||
            !json_object_object_get_ex(event, "node", &node))
                return;
        (void) json_object_object_get_ex(event, "value", &value);

        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(d->entries, i), *k, *o;

                if (!json_object_object_get_ex(e, "key", &k) ||
                    !streq(json_object_get_string(k), json_object_get_string(key)) ||
                    !json_object_object_get_ex(e, "node", &o) ||
                    json_object_get_int64(o) != json_object_get_int64(node))
                        continue;
                if (value && !json_object_is_type(value, json_type_null))
                        (void) haven_json_add(e, "value", json_object_get(value));
                else
                        (void) json_object_array_del_idx(d->entries, i, 1);
                d->changed |= HAVEN_DOMAIN_ENTRIES;
                return;
        }
        if (value && !json_object_is_type(value, json_type_null)) {
                struct json_object *e = json_object_new_object();

                if (!e || haven_json_add(e, "node", json_object_get(node)) < 0 ||
                    haven_json_add(e, "key", json_object_get(key)) < 0 ||
                    haven_json_add(e, "value", json_object_get(value)) < 0 ||
                    json_object_array_add(d->entries, e) < 0) {
                        json_object_put(e);
                        return;
                }
                d->changed |= HAVEN_DOMAIN_ENTRIES;
        }
}

static void on_event(struct haven_msg_link *link, struct json_object *event,
                     void *userdata) {
        struct haven_domain *d = userdata;
        struct json_object *kind, *v;

        if (!json_object_object_get_ex(event, "event", &kind) ||
            !json_object_is_type(kind, json_type_string))
                return;
        if (streq(json_object_get_string(kind), "commit")) {
                /* An activation applies staged ops on any table: its
                 * event names only the tables it always changes. */
                if (json_object_object_get_ex(event, "activation", &v) &&
                    json_object_get_boolean(v))
                        mark_all_stale(d);
                if (!json_object_object_get_ex(event, "tables", &v) ||
                    !json_object_is_type(v, json_type_array))
                        return;
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        const char *t = json_object_get_string(json_object_array_get_idx(v, i));
                        int k = t ? table_index(d, t) : -ENOENT;

                        if (k >= 0)
                                d->stale_table[k] = true;
                        /* Who we are, and the members' names. */
                        if (t && (streq(t, "nodes") || streq(t, "cluster")))
                                d->stale_status = true;
                }
        } else if (streq(json_object_get_string(kind), "membership")) {
                if (json_object_object_get_ex(event, "members", &v) &&
                    json_object_is_type(v, json_type_array))
                        (void) members_set(d, v);
                d->quorate = json_object_object_get_ex(event, "quorate", &v) &&
                             json_object_get_boolean(v);
                d->changed |= HAVEN_DOMAIN_STATUS;
                /* A sync round follows every membership change; what it
                 * brings is announced, but read everything once more so
                 * a member that joined starts from a whole view. */
                mark_all_stale(d);
        } else if (streq(json_object_get_string(kind), "status"))
                entry_apply(d, event);
        pump(d);
        maybe_report(d);
}

static void subscribe_on_reply(struct haven_msg_link *link, int error,
                               struct json_object *reply, void *userdata) {
        struct haven_domain *d = userdata;

        d->in_flight = false;
        if (error < 0 || *haven_domain_reply_error(reply, NULL)) {
                log_debug("haven-domaind refused the subscription; retrying on reconnect");
                return;
        }
        d->subscribed = true;
        pump(d);
}

static void on_state(struct haven_msg_link *link, bool connected, void *userdata) {
        struct haven_domain *d = userdata;
        _cleanup_(json_object_putp) struct json_object *req = NULL, *events = NULL;
        int r;

        d->subscribed = false;
        d->in_flight = false;
        d->read_once = false;
        d->changed |= HAVEN_DOMAIN_LINK;
        if (!connected) {
                d->quorate = false;
                d->n_members = 0;
                (void) sd_event_source_set_enabled(d->defer, SD_EVENT_ONESHOT);
                return;
        }
        mark_all_stale(d);
        req = request_new("subscribe");
        events = json_object_new_array();
        if (!req || !events ||
            json_object_array_add(events, json_object_new_string("commit")) < 0 ||
            json_object_array_add(events, json_object_new_string("membership")) < 0 ||
            json_object_array_add(events, json_object_new_string("status")) < 0 ||
            haven_json_add(req, "events", TAKE_PTR(events)) < 0)
                return;
        r = haven_msg_link_call(d->link, req, CALL_TIMEOUT_USEC, subscribe_on_reply,
                                d, NULL);
        d->in_flight = r >= 0;
}

/* ==== Public ==== */

int haven_domain_new(sd_event *event, const struct haven_domain_config *c,
                     struct haven_domain **ret) {
        _cleanup_(haven_domain_freep) struct haven_domain *d = NULL;
        struct haven_msg_link_config lc = {
                .path = c->socket_path ?: HAVEN_DOMAIN_SOCKET_DEFAULT,
                .on_event = on_event,
                .on_state = on_state,
        };
        size_t n = 0;
        int r;

        assert(event);
        assert(ret);

        while (c->tables && c->tables[n])
                n++;
        if (n > TABLES_MAX)
                return -E2BIG;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->event = sd_event_ref(event);
        d->on_change = c->on_change;
        d->userdata = c->userdata;
        d->actor = strdup(c->actor ?: "daemon");
        d->tables = calloc(n + 1, sizeof(char *));
        d->rows = json_object_new_object();
        d->entries = json_object_new_array();
        if (!d->actor || !d->tables || !d->rows || !d->entries)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                d->tables[i] = strdup(c->tables[i]);
                if (!d->tables[i] ||
                    haven_json_add(d->rows, c->tables[i], json_object_new_array()) < 0)
                        return -ENOMEM;
        }
        d->n_tables = n;
        n = 0;
        while (c->status_prefixes && c->status_prefixes[n])
                n++;
        d->prefixes = calloc(n + 1, sizeof(char *));
        if (!d->prefixes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(d->prefixes[i] = strdup(c->status_prefixes[i])))
                        return -ENOMEM;

        r = sd_event_add_defer(event, &d->defer, on_defer, d);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(d->defer, SD_EVENT_OFF);

        lc.userdata = d;
        r = haven_msg_link_new(event, &lc, &d->link);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

struct haven_domain *haven_domain_free(struct haven_domain *d) {
        if (!d)
                return NULL;
        haven_msg_link_free(d->link);
        sd_event_source_disable_unref(d->defer);
        sd_event_unref(d->event);
        strv_free(d->tables);
        strv_free(d->prefixes);
        json_object_put(d->status);
        json_object_put(d->rows);
        json_object_put(d->entries);
        free(d->members);
        free(d->actor);
        free(d);
        return NULL;
}

bool haven_domain_connected(struct haven_domain *d) {
        return d && haven_msg_link_connected(d->link);
}

bool haven_domain_ready(struct haven_domain *d) {
        return d && d->read_once && haven_msg_link_connected(d->link);
}

struct json_object *haven_domain_status(struct haven_domain *d) {
        return d->status;
}

uint32_t haven_domain_node_id(struct haven_domain *d) {
        return d->node_id;
}

bool haven_domain_quorate(struct haven_domain *d) {
        return d->quorate;
}

bool haven_domain_is_member(struct haven_domain *d, uint32_t node_id) {
        for (size_t i = 0; i < d->n_members; i++)
                if (d->members[i] == node_id)
                        return true;
        return false;
}

const uint32_t *haven_domain_members(struct haven_domain *d, size_t *ret_n) {
        *ret_n = d->n_members;
        return d->members;
}

struct json_object *haven_domain_rows(struct haven_domain *d, const char *table) {
        struct json_object *rows = NULL;

        (void) json_object_object_get_ex(d->rows, table, &rows);
        return rows;
}

struct json_object *haven_domain_entries(struct haven_domain *d) {
        return d->entries;
}

void haven_domain_refresh(struct haven_domain *d) {
        mark_all_stale(d);
        pump(d);
}

void haven_domain_set_actor(struct haven_domain *d, const char *actor) {
        char *copy = strdup(actor);

        if (!copy)
                return;
        free(d->actor);
        d->actor = copy;
}

int haven_domain_call(struct haven_domain *d, struct json_object *request,
                      haven_msg_reply_t reply, void *userdata) {
        _cleanup_(json_object_putp) struct json_object *owned = request;

        if (!owned)
                return -ENOMEM;
        return haven_msg_link_call(d->link, owned, CALL_TIMEOUT_USEC, reply, userdata,
                                   NULL);
}

int haven_domain_submit(struct haven_domain *d, struct json_object *ops,
                        const char *audit, haven_msg_reply_t reply,
                        void *userdata) {
        _cleanup_(json_object_putp) struct json_object *req = request_new("submit"),
                                                       *owned = ops;
        char cut[AUDIT_MAX + 1];

        if (!req || !owned)
                return -ENOMEM;
        if (audit && strlen(audit) > AUDIT_MAX) {
                haven_text_copy_cut(cut, sizeof(cut), audit);
                audit = cut;
        }
        if (haven_json_add(req, "ops", TAKE_PTR(owned)) < 0 ||
            haven_json_add(req, "actor", json_object_new_string(d->actor)) < 0 ||
            (audit && haven_json_add(req, "audit", json_object_new_string(audit)) < 0))
                return -ENOMEM;
        return haven_msg_link_call(d->link, req, CALL_TIMEOUT_USEC, reply, userdata,
                                   NULL);
}

static void publish_on_reply(struct haven_msg_link *link, int error,
                             struct json_object *reply, void *userdata) {
        const char *message;

        if (error < 0 || *haven_domain_reply_error(reply, &message))
                log_debug("Publishing a status entry failed: %s",
                          error < 0 ? strerror(-error) : message);
}

int haven_domain_publish(struct haven_domain *d, const char *key,
                         struct json_object *value) {
        _cleanup_(json_object_putp) struct json_object *req = request_new("status-publish"),
                                                       *owned = value;

        if (!req || haven_json_add(req, "key", json_object_new_string(key)) < 0 ||
            haven_json_add(req, "value", TAKE_PTR(owned)) < 0)
                return -ENOMEM;
        return haven_msg_link_call(d->link, req, CALL_TIMEOUT_USEC, publish_on_reply,
                                   d, NULL);
}
