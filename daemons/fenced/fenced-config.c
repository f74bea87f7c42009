/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What haven-fenced knows from the domain: this node's identity and the
 * membership (domaind's status and membership events), which members run a
 * fencer (their "fencing" status entries), and the configuration (nodes,
 * fence_devices, fence_outlets), read again after every commit that touches
 * them. Owns the link to domaind and the configuration model.
 * Must not: write anything but through fenced_submit(), or decide anything
 * about requests (fenced-requests.c does).
 */
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <sys/param.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"
#include "haven/text.h"

#include "fenced.h"

/* ==== The model ==== */

void fence_device_done(struct fence_device *d) {
        if (!d)
                return;
        free(d->name);
        free(d->type);
        free(d->address);
        json_object_put(d->parameters);
        *d = (struct fence_device){};
}

int fence_device_copy(const struct fence_device *from,
                      struct fence_device *to) {
        *to = (struct fence_device){
                .id = from->id,
                .enabled = from->enabled,
                .name = strdup(from->name ?: ""),
                .type = strdup(from->type ?: ""),
                .address = from->address ? strdup(from->address) : NULL,
                .parameters = json_object_get(from->parameters),
        };
        if (!to->name || !to->type || (from->address && !to->address)) {
                fence_device_done(to);
                return -ENOMEM;
        }
        if (!to->parameters) {
                to->parameters = json_object_new_object();
                if (!to->parameters) {
                        fence_device_done(to);
                        return -ENOMEM;
                }
        }
        return 0;
}

struct fence_config *fence_config_free(struct fence_config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_devices; i++)
                fence_device_done(&c->devices[i]);
        for (size_t i = 0; i < c->n_outlets; i++)
                free(c->outlets[i].outlet);
        for (size_t i = 0; i < c->n_nodes; i++)
                free(c->nodes[i].name);
        free(c->devices);
        free(c->outlets);
        free(c->nodes);
        free(c);
        return NULL;
}

static const char *row_string(struct json_object *row, const char *column) {
        struct json_object *v;

        if (!json_object_object_get_ex(row, column, &v) ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static bool row_int(struct json_object *row, const char *column,
                    int64_t *ret) {
        struct json_object *v;

        if (!json_object_object_get_ex(row, column, &v) ||
            !json_object_is_type(v, json_type_int))
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

int fence_config_from_rows(struct json_object *nodes,
                           struct json_object *devices,
                           struct json_object *outlets,
                           struct fence_config **ret) {
        _cleanup_(fence_config_freep) struct fence_config *c = NULL;
        size_t n;

        assert(ret);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;

        n = json_object_array_length(nodes);
        c->nodes = calloc(MAX(n, 1u), sizeof(*c->nodes));
        if (!c->nodes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *row = json_object_array_get_idx(nodes, i);
                struct fence_node *node = &c->nodes[c->n_nodes];
                int64_t id, delay = 0;
                const char *name = row_string(row, "name");

                if (!row_int(row, "node_id", &id) || !name)
                        return -EBADMSG;
                (void) row_int(row, "fence_delay_ms", &delay);
                node->node_id = (uint32_t) id;
                node->fence_delay_usec = (uint64_t) MAX(delay, 0) * 1000u;
                node->name = strdup(name);
                if (!node->name)
                        return -ENOMEM;
                c->n_nodes++;
        }

        n = json_object_array_length(devices);
        c->devices = calloc(MAX(n, 1u), sizeof(*c->devices));
        if (!c->devices)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *row = json_object_array_get_idx(devices, i);
                struct fence_device d = {}, *to = &c->devices[c->n_devices];
                struct json_object *v;
                int r;

                if (!row_int(row, "id", &d.id))
                        return -EBADMSG;
                d.name = (char *) row_string(row, "name");
                d.type = (char *) row_string(row, "type");
                d.address = (char *) row_string(row, "address");
                if (!d.name || !d.type)
                        return -EBADMSG;
                d.enabled = !json_object_object_get_ex(row, "enabled", &v) ||
                            json_object_get_boolean(v);
                if (json_object_object_get_ex(row, "parameters", &v) &&
                    json_object_is_type(v, json_type_object))
                        d.parameters = v;
                r = fence_device_copy(&d, to);
                if (r < 0)
                        return r;
                c->n_devices++;
        }

        n = json_object_array_length(outlets);
        c->outlets = calloc(MAX(n, 1u), sizeof(*c->outlets));
        if (!c->outlets)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *row = json_object_array_get_idx(outlets, i);
                struct fence_outlet *o = &c->outlets[c->n_outlets];
                int64_t node_id, device_id, level = 1;
                const char *outlet = row_string(row, "outlet");

                if (!row_int(row, "node_id", &node_id) ||
                    !row_int(row, "device_id", &device_id) || !outlet)
                        return -EBADMSG;
                (void) row_int(row, "level", &level);
                o->node_id = (uint32_t) node_id;
                o->device_id = device_id;
                o->level = (unsigned) MIN(MAX(level, 1), FENCED_LEVELS_MAX);
                o->outlet = strdup(outlet);
                if (!o->outlet)
                        return -ENOMEM;
                c->n_outlets++;
        }

        *ret = TAKE_PTR(c);
        return 0;
}

const struct fence_device *fence_config_device(const struct fence_config *c,
                                               int64_t id) {
        for (size_t i = 0; c && i < c->n_devices; i++)
                if (c->devices[i].id == id)
                        return &c->devices[i];
        return NULL;
}

const struct fence_device *
fence_config_device_by_name(const struct fence_config *c, const char *name) {
        for (size_t i = 0; c && i < c->n_devices; i++)
                if (streq(c->devices[i].name, name))
                        return &c->devices[i];
        return NULL;
}

const struct fence_node *fence_config_node(const struct fence_config *c,
                                           uint32_t node_id) {
        for (size_t i = 0; c && i < c->n_nodes; i++)
                if (c->nodes[i].node_id == node_id)
                        return &c->nodes[i];
        return NULL;
}

const struct fence_node *fence_config_node_find(const struct fence_config *c,
                                                const char *name_or_id) {
        char *end;
        unsigned long id;

        for (size_t i = 0; c && i < c->n_nodes; i++)
                if (streq(c->nodes[i].name, name_or_id))
                        return &c->nodes[i];
        errno = 0;
        id = strtoul(name_or_id, &end, 10);
        if (errno == 0 && end != name_or_id && *end == 0 && id <= UINT32_MAX)
                return fence_config_node(c, (uint32_t) id);
        return NULL;
}

/* The schema's name rule (docs/schema.md): 1 to 63 of letters, digits, '.',
 * '_', '-', starting with a letter or digit. */
static bool name_valid(const char *s) {
        size_t n = strlen(s);

        if (n < 1 || n > 63 || !isalnum((unsigned char) s[0]))
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789._-") == n;
}

static bool host_valid(const char *s) {
        size_t n = strlen(s);

        return n >= 1 && n <= 253 && (isalnum((unsigned char) s[0]) || s[0] == ':') &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789.:_-") == n;
}

static int definition_error(char **ret_field, char **ret_message,
                            const char *field, const char *message) {
        char *f = strdup(field), *m = strdup(message);

        if (!f || !m) {
                free(f);
                free(m);
                return -ENOMEM;
        }
        *ret_field = f;
        *ret_message = m;
        return -EINVAL;
}

int fence_device_from_json(struct json_object *definition,
                           struct fence_device *ret, char **ret_field,
                           char **ret_message) {
        struct fence_device d = {.enabled = true};
        struct json_object *v;

        json_object_object_foreach(definition, key, value) {
                (void) value;
                if (!streq(key, "name") && !streq(key, "type") &&
                    !streq(key, "address") && !streq(key, "parameters") &&
                    !streq(key, "enabled") && !streq(key, "id") &&
                    !streq(key, "version"))
                        return definition_error(ret_field, ret_message, key,
                                                "unknown field");
        }
        d.name = (char *) row_string(definition, "name") ?: (char *) "test";
        if (!name_valid(d.name))
                return definition_error(ret_field, ret_message, "name",
                                        "name: must be 1 to 63 characters "
                                        "(letters, digits, '.', '_' or '-'), "
                                        "starting with a letter or digit");
        d.type = (char *) row_string(definition, "type");
        if (!d.type || (!streq(d.type, "apc-snmp") &&
                        !streq(d.type, "fence-agent") && !streq(d.type, "manual")))
                return definition_error(ret_field, ret_message, "type",
                                        "type: must be apc-snmp, fence-agent "
                                        "or manual");
        if (json_object_object_get_ex(definition, "address", &v) &&
            !json_object_is_type(v, json_type_null)) {
                d.address = (char *) row_string(definition, "address");
                if (!d.address || !host_valid(d.address))
                        return definition_error(
                                ret_field, ret_message, "address",
                                "address: must be a host name or an IP "
                                "address");
        }
        if (streq(d.type, "apc-snmp") && !d.address)
                return definition_error(ret_field, ret_message, "address",
                                        "address: an apc-snmp device needs an "
                                        "address");
        if (json_object_object_get_ex(definition, "parameters", &v)) {
                if (!json_object_is_type(v, json_type_object))
                        return definition_error(ret_field, ret_message,
                                                "parameters",
                                                "parameters: must be a JSON "
                                                "object");
                d.parameters = v;
        }
        return fence_device_copy(&d, ret);
}

/* ==== Talking to domaind ==== */

const char *fenced_reply_error(struct json_object *reply,
                               const char **ret_message) {
        struct json_object *error, *v;

        if (ret_message)
                *ret_message = "";
        if (!json_object_object_get_ex(reply, "error", &error))
                return "";
        if (ret_message && json_object_object_get_ex(error, "message", &v))
                *ret_message = json_object_get_string(v);
        if (json_object_object_get_ex(error, "code", &v))
                return json_object_get_string(v);
        return "internal";
}

/* domaind takes at most this many characters of audit text. */
#define AUDIT_MAX 256

int fenced_submit(struct fenced *f, struct json_object *ops, const char *audit,
                  haven_msg_reply_t reply, void *userdata) {
        _cleanup_(json_object_putp) struct json_object *req =
                json_object_new_object();
        char actor[96], cut[AUDIT_MAX + 1];

        if (!req)
                return -ENOMEM;
        snprintf(actor, sizeof(actor), "fenced@%s",
                 f->node_name ? f->node_name : "?");
        /* The whole sentence is in the request row; the audit entry gets
         * its start (bytes are at least characters), cut on a UTF-8
         * boundary. */
        if (audit && strlen(audit) > AUDIT_MAX) {
                haven_text_copy_cut(cut, sizeof(cut), audit);
                audit = cut;
        }
        if (haven_json_add(req, "request", json_object_new_string("submit")) < 0 ||
            haven_json_add(req, "ops", json_object_get(ops)) < 0 ||
            haven_json_add(req, "actor", json_object_new_string(actor)) < 0 ||
            (audit && haven_json_add(req, "audit",
                                     json_object_new_string(audit)) < 0))
                return -ENOMEM;
        return haven_msg_link_call(f->domain, req, FENCED_CALL_TIMEOUT_USEC,
                                   reply, userdata, NULL);
}

static int call_simple(struct fenced *f, struct json_object *req,
                       haven_msg_reply_t reply) {
        _cleanup_(json_object_putp) struct json_object *owned = req;

        if (!owned)
                return -ENOMEM;
        return haven_msg_link_call(f->domain, owned, FENCED_CALL_TIMEOUT_USEC,
                                   reply, f, NULL);
}

static struct json_object *request_new(const char *name) {
        struct json_object *req = json_object_new_object();

        if (req && haven_json_add(req, "request", json_object_new_string(name)) < 0) {
                json_object_put(req);
                return NULL;
        }
        return req;
}

bool fenced_is_member(const struct fenced *f, uint32_t node_id) {
        for (size_t i = 0; i < f->n_members; i++)
                if (f->members[i] == node_id)
                        return true;
        return false;
}

static int id_list_set(uint32_t **list, size_t *n, struct json_object *ids) {
        size_t count = json_object_array_length(ids);
        uint32_t *l = calloc(MAX(count, 1u), sizeof(uint32_t));
        size_t k = 0;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                struct json_object *v = json_object_array_get_idx(ids, i);

                if (json_object_is_type(v, json_type_int))
                        l[k++] = (uint32_t) json_object_get_int64(v);
        }
        free(*list);
        *list = l;
        *n = k;
        return 0;
}

static void id_list_put(uint32_t **list, size_t *n, uint32_t id, bool present) {
        size_t i;

        for (i = 0; i < *n; i++)
                if ((*list)[i] == id)
                        break;
        if (present && i == *n) {
                uint32_t *l = reallocarray(*list, *n + 1, sizeof(uint32_t));

                if (!l)
                        return;
                l[(*n)++] = id;
                *list = l;
        } else if (!present && i < *n)
                (*list)[i] = (*list)[--*n];
}

/* ==== Reloading the configuration ==== */

struct reload {
        struct fenced *f;
        struct json_object *rows[3];
        unsigned next;
};

static const char *const reload_tables[] = {"nodes", "fence_devices",
                                            "fence_outlets"};

static void reload_step(struct reload *rl);

static void reload_end(struct reload *rl, int r) {
        struct fenced *f = rl->f;

        for (unsigned i = 0; i < ELEMENTSOF(rl->rows); i++)
                json_object_put(rl->rows[i]);
        free(rl);
        f->reload_running = false;
        if (r < 0)
                (void) log_warning_errno(r, "Failed to read the fencing "
                                            "configuration, retrying on the "
                                            "next change: %m");
        if (f->reload_again) {
                f->reload_again = false;
                fenced_reload(f);
                return;
        }
        if (r >= 0) {
                fenced_monitor_publish(f);
                fenced_requests_check(f);
        }
}

static void reload_on_reply(struct haven_msg_link *link, int error,
                            struct json_object *reply, void *userdata) {
        struct reload *rl = userdata;
        struct json_object *rows;

        if (error < 0)
                return reload_end(rl, error);
        if (!json_object_object_get_ex(reply, "rows", &rows) ||
            !json_object_is_type(rows, json_type_array))
                return reload_end(rl, -EBADMSG);
        rl->rows[rl->next++] = json_object_get(rows);
        reload_step(rl);
}

static void reload_step(struct reload *rl) {
        struct fenced *f = rl->f;
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        struct fence_config *c = NULL;
        int r;

        if (rl->next < ELEMENTSOF(reload_tables)) {
                req = request_new("query");
                if (!req || haven_json_add(req, "table",
                                           json_object_new_string(
                                                   reload_tables[rl->next])) < 0)
                        return reload_end(rl, -ENOMEM);
                r = haven_msg_link_call(f->domain, req,
                                        FENCED_CALL_TIMEOUT_USEC,
                                        reload_on_reply, rl, NULL);
                if (r < 0)
                        reload_end(rl, r);
                return;
        }

        r = fence_config_from_rows(rl->rows[0], rl->rows[1], rl->rows[2], &c);
        if (r >= 0) {
                fence_config_free(f->config);
                f->config = c;
                log_debug("Fencing configuration: %zu devices, %zu outlets, "
                          "%zu nodes",
                          c->n_devices, c->n_outlets, c->n_nodes);
        }
        reload_end(rl, r);
}

void fenced_reload(struct fenced *f) {
        struct reload *rl;

        if (!haven_msg_link_connected(f->domain))
                return;
        if (f->reload_running) {
                f->reload_again = true;
                return;
        }
        rl = calloc(1, sizeof(*rl));
        if (!rl)
                { log_error("Out of memory."); return; }
        rl->f = f;
        f->reload_running = true;
        reload_step(rl);
}

/* ==== Status, membership, events ==== */

static void status_read_on_reply(struct haven_msg_link *link, int error,
                                 struct json_object *reply, void *userdata) {
        struct fenced *f = userdata;
        struct json_object *entries, *v;

        if (error < 0 || !json_object_object_get_ex(reply, "entries", &entries) ||
            !json_object_is_type(entries, json_type_array))
                return;
        free(f->fencers);
        f->fencers = NULL;
        f->n_fencers = 0;
        for (size_t i = 0; i < json_object_array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i);
                const char *key = row_string(e, "key");

                if (key && streq(key, FENCED_STATUS_KEY) &&
                    json_object_object_get_ex(e, "node", &v))
                        id_list_put(&f->fencers, &f->n_fencers,
                                    (uint32_t) json_object_get_int64(v), true);
        }
        fenced_requests_check(f);
}

static void status_on_reply(struct haven_msg_link *link, int error,
                            struct json_object *reply, void *userdata) {
        struct fenced *f = userdata;
        _cleanup_(json_object_putp) struct json_object *ids = NULL;
        struct json_object *members, *v;
        int64_t id = 0;
        const char *name;
        int r;

        if (error < 0) {
                (void) log_warning_errno(error, "haven-domaind's status did "
                                                "not arrive: %m");
                return;
        }
        f->have_status = true;
        (void) row_int(reply, "node_id", &id);
        name = row_string(reply, "node_name");
        if ((uint32_t) id != f->node_id || (name && (!f->node_name ||
                                                     !streq(name, f->node_name)))) {
                f->node_id = (uint32_t) id;
                free(f->node_name);
                f->node_name = name ? strdup(name) : NULL;
        }
        f->quorate = json_object_object_get_ex(reply, "quorate", &v) &&
                     json_object_get_boolean(v);

        ids = json_object_new_array();
        if (!ids)
                { log_error("Out of memory."); return; }
        if (json_object_object_get_ex(reply, "members", &members))
                for (size_t i = 0; i < json_object_array_length(members); i++) {
                        struct json_object *m =
                                json_object_array_get_idx(members, i);
                        struct json_object *online, *mid;

                        if (json_object_object_get_ex(m, "online", &online) &&
                            json_object_get_boolean(online) &&
                            json_object_object_get_ex(m, "id", &mid))
                                (void) json_object_array_add(
                                        ids, json_object_get(mid));
                }
        r = id_list_set(&f->members, &f->n_members, ids);
        if (r < 0)
                { log_error("Out of memory."); return; }

        fenced_reload(f);
        {
                _cleanup_(json_object_putp) struct json_object *req =
                        request_new("status-read");

                if (req && haven_json_add(req, "prefix", json_object_new_string(
                                                                 FENCED_STATUS_KEY)) >= 0)
                        (void) call_simple(f, TAKE_PTR(req), status_read_on_reply);
        }
}

static void request_status(struct fenced *f) {
        int r = call_simple(f, request_new("status"), status_on_reply);

        if (r < 0)
                (void) log_warning_errno(r, "Failed to ask haven-domaind for "
                                            "its status: %m");
}

static bool tables_touch(struct json_object *tables, const char *const *names) {
        for (size_t i = 0; i < json_object_array_length(tables); i++) {
                const char *t = json_object_get_string(
                        json_object_array_get_idx(tables, i));

                for (size_t k = 0; names[k]; k++)
                        if (t && streq(t, names[k]))
                                return true;
        }
        return false;
}

static void on_event(struct haven_msg_link *link, struct json_object *event,
                     void *userdata) {
        static const char *const config_tables[] = {
                "nodes", "fence_devices", "fence_outlets", "cluster", NULL};
        static const char *const request_tables[] = {"fence_requests", NULL};
        struct fenced *f = userdata;
        const char *kind = row_string(event, "event");
        struct json_object *v;

        if (!kind)
                return;
        if (streq(kind, "commit")) {
                if (!json_object_object_get_ex(event, "tables", &v))
                        return;
                if (tables_touch(v, config_tables)) {
                        if (!f->node_id)
                                request_status(f);
                        fenced_reload(f);
                } else if (tables_touch(v, request_tables))
                        fenced_requests_check(f);
        } else if (streq(kind, "membership")) {
                if (json_object_object_get_ex(event, "members", &v))
                        (void) id_list_set(&f->members, &f->n_members, v);
                f->quorate = json_object_object_get_ex(event, "quorate", &v) &&
                             json_object_get_boolean(v);
                /* A new cluster, a join, or a removal changes who we are. */
                if (!f->node_id || !fenced_is_member(f, f->node_id))
                        request_status(f);
                fenced_requests_check(f);
        } else if (streq(kind, "status")) {
                const char *key = row_string(event, "key");
                int64_t node;

                if (!key || !streq(key, FENCED_STATUS_KEY) ||
                    !row_int(event, "node", &node))
                        return;
                id_list_put(&f->fencers, &f->n_fencers, (uint32_t) node,
                            json_object_object_get_ex(event, "value", &v) &&
                                    !json_object_is_type(v, json_type_null));
                fenced_requests_check(f);
        }
}

static void subscribe_on_reply(struct haven_msg_link *link, int error,
                               struct json_object *reply, void *userdata) {
        const char *message;

        if (error < 0 || *fenced_reply_error(reply, &message))
                log_warning("Failed to subscribe to haven-domaind's events: "
                            "%s",
                            error < 0 ? strerror(-error) : message);
}

static void on_state(struct haven_msg_link *link, bool connected,
                     void *userdata) {
        struct fenced *f = userdata;
        _cleanup_(json_object_putp) struct json_object *req = NULL, *events = NULL;

        if (!connected) {
                log_info("Lost haven-domaind, reconnecting.");
                f->n_members = 0;
                f->quorate = false;
                f->reload_running = false;
                return;
        }
        log_info("Connected to haven-domaind.");
        req = request_new("subscribe");
        events = json_object_new_array();
        if (!req || !events ||
            json_object_array_add(events, json_object_new_string("commit")) < 0 ||
            json_object_array_add(events, json_object_new_string("membership")) < 0 ||
            json_object_array_add(events, json_object_new_string("status")) < 0 ||
            haven_json_add(req, "events", TAKE_PTR(events)) < 0)
                { log_error("Out of memory."); return; }
        if (haven_msg_link_call(f->domain, req, FENCED_CALL_TIMEOUT_USEC,
                                subscribe_on_reply, f, NULL) < 0)
                log_warning("Failed to subscribe to haven-domaind's events.");
        request_status(f);
}

int fenced_domain_connect(struct fenced *f) {
        struct haven_msg_link_config config = {
                .path = f->domain_socket,
                .on_event = on_event,
                .on_state = on_state,
                .userdata = f,
        };

        return haven_msg_link_new(f->event, &config, &f->domain);
}

void fenced_format_time(uint64_t usec, char buf[static 32]) {
        time_t t = (time_t) (usec / 1000000u);
        struct tm tm;

        if (!gmtime_r(&t, &tm) ||
            strftime(buf, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, 32, "@%" PRIu64, usec / 1000000u);
}
