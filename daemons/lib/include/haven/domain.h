/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A daemon's view of the configuration domain (haven-domaind's socket, see
 * docs/domain.md): a loop-attached link that keeps, up to date, domaind's
 * status (this node, quorum, members), the rows of the tables the daemon
 * names, and the status-map entries under the prefixes it names; it calls
 * back once per change burst. Writes go through haven_domain_submit() and
 * haven_domain_publish(). Reconnects by itself; after a reconnect every
 * table and entry is read again.
 * Must not: write the database, interpret rows, or call back while a
 * reload is half done (the view is always one consistent read per table).
 */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "haven/macro.h"
#include "haven/msg.h"

#define HAVEN_DOMAIN_SOCKET_DEFAULT "/run/haven/domaind.sock"

/* What changed, for on_change (a bit set). */
enum {
        HAVEN_DOMAIN_STATUS = 1u << 0,  /* status / membership / quorum */
        HAVEN_DOMAIN_TABLES = 1u << 1,  /* rows of a named table */
        HAVEN_DOMAIN_ENTRIES = 1u << 2, /* status-map entries */
        HAVEN_DOMAIN_LINK = 1u << 3,    /* connected or lost */
};

struct haven_domain;

typedef void (*haven_domain_change_t)(struct haven_domain *d, unsigned what,
                                      void *userdata);

struct haven_domain_config {
        const char *socket_path; /* NULL: HAVEN_DOMAIN_SOCKET_DEFAULT */
        const char *actor;       /* "vmd@node1": submissions' actor; may be
                                  * changed later (haven_domain_set_actor) */
        const char *const *tables;          /* NULL-terminated, may be NULL */
        const char *const *status_prefixes; /* NULL-terminated, may be NULL */
        haven_domain_change_t on_change;
        void *userdata;
};

/* Starts connecting (from the loop). Returns 0 and *ret, or -errno. */
int haven_domain_new(sd_event *event, const struct haven_domain_config *c,
                     struct haven_domain **ret);
struct haven_domain *haven_domain_free(struct haven_domain *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_domain *, haven_domain_free)

/* Whether the link to domaind is up (submissions can be sent). */
bool haven_domain_connected(struct haven_domain *d);
/* Whether every table and entry has been read since the last connect. */
bool haven_domain_ready(struct haven_domain *d);
/* domaind's last status reply (borrowed), or NULL. */
struct json_object *haven_domain_status(struct haven_domain *d);
/* This node's id (0 outside a cluster) and whether it is quorate. */
uint32_t haven_domain_node_id(struct haven_domain *d);
bool haven_domain_quorate(struct haven_domain *d);
/* Whether node_id is an online member (from the latest membership). */
bool haven_domain_is_member(struct haven_domain *d, uint32_t node_id);
/* The online members, sorted; *ret_n set. Borrowed. */
const uint32_t *haven_domain_members(struct haven_domain *d, size_t *ret_n);
/* The rows of a named table (borrowed array, never NULL once ready; an
 * empty array before), sorted by id. */
struct json_object *haven_domain_rows(struct haven_domain *d,
                                      const char *table);
/* The status-map entries under the named prefixes: an array of {node, key,
 * value} (borrowed). */
struct json_object *haven_domain_entries(struct haven_domain *d);

void haven_domain_set_actor(struct haven_domain *d, const char *actor);

/* Reads everything again (on_change follows), for a caller whose write was
 * refused as made on stale rows. */
void haven_domain_refresh(struct haven_domain *d);

/* Submits ops (reference taken) with audit text (NULL: none; cut to what
 * domaind accepts). reply as for haven_msg_link_call. Returns 0 or -errno
 * (-ENOTCONN while disconnected). */
int haven_domain_submit(struct haven_domain *d, struct json_object *ops,
                        const char *audit, haven_msg_reply_t reply,
                        void *userdata);
/* Publishes key = value (reference taken; NULL deletes) in the status map;
 * fire and forget. Returns 0 or -errno. */
int haven_domain_publish(struct haven_domain *d, const char *key,
                         struct json_object *value);
/* Any other request (reference taken). */
int haven_domain_call(struct haven_domain *d, struct json_object *request,
                      haven_msg_reply_t reply, void *userdata);

/* The error code of a domaind reply ("" when it is not an error), and its
 * message in *ret_message (may be NULL; "" when none). Borrowed. */
const char *haven_domain_reply_error(struct json_object *reply,
                                     const char **ret_message);
