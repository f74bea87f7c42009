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
#include "haven/domain.h"

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

/* ==== The domain ==== */

static const char *const watched_tables[] = {
        "nodes", "fence_devices", "fence_outlets", "fence_requests", NULL,
};
static const char *const watched_prefixes[] = {FENCED_STATUS_KEY, NULL};

const char *fenced_reply_error(struct json_object *reply,
                               const char **ret_message) {
        return haven_domain_reply_error(reply, ret_message);
}

int fenced_submit(struct fenced *f, struct json_object *ops, const char *audit,
                  haven_msg_reply_t reply, void *userdata) {
        return haven_domain_submit(f->domain, json_object_get(ops), audit,
                                   reply, userdata);
}

bool fenced_is_member(const struct fenced *f, uint32_t node_id) {
        return haven_domain_is_member(f->domain, node_id);
}

bool fenced_is_fencer(const struct fenced *f, uint32_t node_id) {
        struct json_object *entries = haven_domain_entries(f->domain);

        for (size_t i = 0; i < json_object_array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i);
                int64_t node;

                if (row_int(e, "node", &node) && (uint32_t) node == node_id)
                        return true;
        }
        return false;
}

/* Who we are: from domaind's status, whenever it changes. */
static void identity_update(struct fenced *f) {
        struct json_object *status = haven_domain_status(f->domain);
        const char *name = status ? row_string(status, "node_name") : NULL;
        char actor[96];

        f->node_id = haven_domain_node_id(f->domain);
        if (name && (!f->node_name || !streq(name, f->node_name))) {
                free(f->node_name);
                f->node_name = strdup(name);
                snprintf(actor, sizeof(actor), "fenced@%s", name);
                haven_domain_set_actor(f->domain, actor);
        }
}

static void on_change(struct haven_domain *d, unsigned what, void *userdata) {
        struct fenced *f = userdata;

        if (what & HAVEN_DOMAIN_LINK)
                log_info("haven-domaind %s.", haven_domain_ready(d)
                                                      ? "connected"
                                                      : "link changed");
        if (what & HAVEN_DOMAIN_STATUS)
                identity_update(f);
        if (what & HAVEN_DOMAIN_TABLES) {
                struct fence_config *c = NULL;
                int r;

                r = fence_config_from_rows(haven_domain_rows(d, "nodes"),
                                           haven_domain_rows(d, "fence_devices"),
                                           haven_domain_rows(d, "fence_outlets"),
                                           &c);
                if (r < 0)
                        (void) log_warning_errno(r, "Failed to read the fencing "
                                                    "configuration: %m");
                else {
                        fence_config_free(f->config);
                        f->config = c;
                }
        }
        if (what & (HAVEN_DOMAIN_TABLES | HAVEN_DOMAIN_STATUS))
                fenced_monitor_publish(f);
        fenced_requests_check(f);
}

int fenced_domain_connect(struct fenced *f) {
        struct haven_domain_config config = {
                .socket_path = f->domain_socket,
                .actor = "fenced",
                .tables = watched_tables,
                .status_prefixes = watched_prefixes,
                .on_change = on_change,
                .userdata = f,
        };

        return haven_domain_new(f->event, &config, &f->domain);
}

void fenced_format_time(uint64_t usec, char buf[static 32]) {
        time_t t = (time_t) (usec / 1000000u);
        struct tm tm;

        if (!gmtime_r(&t, &tm) ||
            strftime(buf, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, 32, "@%" PRIu64, usec / 1000000u);
}
