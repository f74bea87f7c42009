/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The corosync connection of haven-domaind: the CPG group (agreed-order
 * messages and membership) and votequorum (is the cluster quorate), both on
 * the event loop; reconnection with a backoff when corosync is not there or
 * goes away; the outgoing queue that respects CPG flow control. Converts
 * corosync's cs_error_t to negative errnos here, once. Must not: interpret
 * messages (domaind-sync.c does).
 */
#include <arpa/inet.h>
#include <string.h>

#include "domaind.h"
#include "haven/json.h"
#include "haven/log.h"

#define RECONNECT_MIN_USEC (100 * 1000ULL)
#define RECONNECT_MAX_USEC (2 * 1000 * 1000ULL)
#define SEND_RETRY_USEC (1000ULL)

static int cs_errno(cs_error_t e) {
        switch (e) {
        case CS_OK: return 0;
        case CS_ERR_TRY_AGAIN: return -EAGAIN;
        case CS_ERR_NO_MEMORY: return -ENOMEM;
        case CS_ERR_BAD_HANDLE: return -EBADF;
        case CS_ERR_NOT_EXIST: return -ENOENT;
        case CS_ERR_TIMEOUT: return -ETIMEDOUT;
        case CS_ERR_ACCESS: return -EACCES;
        case CS_ERR_INVALID_PARAM: return -EINVAL;
        case CS_ERR_TOO_BIG: return -E2BIG;
        case CS_ERR_LIBRARY: return -ENOTCONN;
        default: return -EIO;
        }
}

static struct domain *domain_from_cpg(cpg_handle_t handle) {
        void *ctx = NULL;
        if (cpg_context_get(handle, &ctx) != CS_OK)
                return NULL;
        return ctx;
}

/* ==== Messages ==== */

/* Encodes [type][u32 big-endian header length][header JSON][payload]. */
int domain_encode(enum domain_msg_type type, struct json_object *header,
                  const void *payload, size_t payload_size, uint8_t **ret,
                  size_t *ret_size) {
        const char *text = json_object_to_json_string_ext(header, JSON_C_TO_STRING_PLAIN);
        size_t hlen = strlen(text), size = 1 + 4 + hlen + payload_size;
        uint32_t be = htonl((uint32_t) hlen);
        uint8_t *buf;

        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        buf[0] = (uint8_t) type;
        memcpy(buf + 1, &be, 4);
        memcpy(buf + 5, text, hlen);
        if (payload_size > 0)
                memcpy(buf + 5 + hlen, payload, payload_size);
        *ret = buf;
        *ret_size = size;
        return 0;
}

static void send_queued(struct domain *d);

static int on_send_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct domain *d = userdata;
        d->send_timer = sd_event_source_disable_unref(d->send_timer);
        send_queued(d);
        return 0;
}

/* Sends as much of the queue as CPG takes now; on flow control, retries
 * from a short timer. */
static void send_queued(struct domain *d) {
        while (d->out_head && d->cpg_connected) {
                struct outgoing *o = d->out_head;
                struct iovec iov = { .iov_base = o->data, .iov_len = o->size };
                cs_error_t e;

                e = cpg_mcast_joined(d->cpg, CPG_TYPE_AGREED, &iov, 1);
                if (e == CS_ERR_TRY_AGAIN) {
                        if (!d->send_timer)
                                (void) sd_event_add_time_relative(d->event, &d->send_timer,
                                                                  CLOCK_MONOTONIC, SEND_RETRY_USEC,
                                                                  0, on_send_timer, d);
                        return;
                }
                d->out_head = o->next;
                if (!d->out_head)
                        d->out_tail = NULL;
                free(o);
                if (e != CS_OK) {
                        log_warning_errno(cs_errno(e), "CPG send failed: %m, dropping the message");
                        continue;
                }
        }
}

int domain_multicast(struct domain *d, const void *data, size_t size) {
        struct outgoing *o;

        if (!d->cpg_connected)
                return -ENOTCONN;
        o = malloc(sizeof *o + size);
        if (!o)
                return -ENOMEM;
        o->next = NULL;
        o->size = size;
        memcpy(o->data, data, size);
        if (d->out_tail)
                d->out_tail->next = o;
        else
                d->out_head = o;
        d->out_tail = o;
        send_queued(d);
        return 0;
}

int domain_multicast_json(struct domain *d, enum domain_msg_type type,
                          struct json_object *header) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size;
        int r;

        r = domain_encode(type, header, NULL, 0, &buf, &size);
        if (r < 0)
                return r;
        return domain_multicast(d, buf, size);
}

static void drop_queue(struct domain *d) {
        while (d->out_head) {
                struct outgoing *o = d->out_head;
                d->out_head = o->next;
                free(o);
        }
        d->out_tail = NULL;
}

/* ==== CPG callbacks ==== */

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group,
                       uint32_t nodeid, uint32_t pid, void *msg, size_t size) {
        struct domain *d = domain_from_cpg(handle);
        if (d)
                sync_deliver(d, nodeid, pid, msg, size);
}

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group,
                       const struct cpg_address *members, size_t n_members,
                       const struct cpg_address *left, size_t n_left,
                       const struct cpg_address *joined, size_t n_joined) {
        struct domain *d = domain_from_cpg(handle);
        if (d)
                sync_membership_changed(d, members, n_members, left, n_left);
}

static void on_quorum(votequorum_handle_t handle, uint64_t context, uint32_t quorate,
                      uint32_t n_nodes, votequorum_node_t nodes[]) {
        struct domain *d = (struct domain *) (uintptr_t) context;
        bool was = d->quorate;

        d->quorate = quorate != 0;
        if (was != d->quorate) {
                log_info("The cluster is %s", d->quorate ? "quorate" : "not quorate: the configuration is read-only");
                sync_emit_membership(d);
                if (d->quorate)
                        (void) api_submit_flush(d);
        }
}

/* ==== Connection ==== */



static int on_cpg_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct domain *d = userdata;
        cs_error_t e;

        sync_batch_begin(d);
        e = cpg_dispatch(d->cpg, CS_DISPATCH_ALL);
        sync_batch_end(d);
        if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
                cpg_disconnect(d, "corosync closed the CPG connection");
                return 0;
        }
        send_queued(d);
        return 0;
}

static int on_votequorum_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct domain *d = userdata;
        cs_error_t e;

        e = votequorum_dispatch(d->votequorum, CS_DISPATCH_ALL);
        if (e != CS_OK && e != CS_ERR_TRY_AGAIN)
                cpg_disconnect(d, "corosync closed the votequorum connection");
        return 0;
}

static int on_reconnect_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct domain *d = userdata;
        int r;

        d->reconnect_timer = sd_event_source_disable_unref(d->reconnect_timer);
        r = cpg_connect(d);
        if (r < 0)
                (void) cpg_schedule_reconnect(d);
        return 0;
}

int cpg_schedule_reconnect(struct domain *d) {
        if (d->reconnect_timer)
                return 0;
        d->reconnect_backoff_usec = d->reconnect_backoff_usec
                ? d->reconnect_backoff_usec * 2 : RECONNECT_MIN_USEC;
        if (d->reconnect_backoff_usec > RECONNECT_MAX_USEC)
                d->reconnect_backoff_usec = RECONNECT_MAX_USEC;
        return sd_event_add_time_relative(d->event, &d->reconnect_timer, CLOCK_MONOTONIC,
                                          d->reconnect_backoff_usec, 0,
                                          on_reconnect_timer, d);
}

/* Connects to corosync (CPG group + votequorum). Returns 0, or a negative
 * errno after which the caller (or the reconnect timer) tries again. */
int cpg_connect(struct domain *d) {
        static cpg_model_v1_data_t model = {
                .model = CPG_MODEL_V1,
                .cpg_deliver_fn = on_deliver,
                .cpg_confchg_fn = on_confchg,
        };
        static votequorum_callbacks_t vq_callbacks = {
                .votequorum_quorum_notify_fn = on_quorum,
        };
        struct cpg_name group = {};
        int fd, r;
        cs_error_t e;

        if (d->cpg_connected)
                return 0;

        e = cpg_model_initialize(&d->cpg, CPG_MODEL_V1, (cpg_model_data_t *) &model, d);
        if (e != CS_OK)
                return log_debug_errno(cs_errno(e), "corosync CPG not available: %m");
        d->cpg_connected = true;
        (void) cpg_context_set(d->cpg, d);
        e = cpg_local_get(d->cpg, &d->node_id);
        if (e != CS_OK) {
                r = cs_errno(e);
                goto fail;
        }
        d->pid = (uint32_t) getpid();

        e = votequorum_initialize(&d->votequorum, &vq_callbacks);
        if (e != CS_OK) {
                r = cs_errno(e);
                goto fail;
        }
        d->votequorum_connected = true;
        e = votequorum_trackstart(d->votequorum, (uint64_t) (uintptr_t) d,
                                  CS_TRACK_CHANGES | CS_TRACK_CURRENT);
        if (e != CS_OK) {
                r = cs_errno(e);
                goto fail;
        }

        strncpy(group.value, DOMAIN_GROUP, sizeof group.value - 1);
        group.length = strlen(DOMAIN_GROUP);
        /* CS_ERR_TRY_AGAIN (corosync busy) fails this attempt; the
         * reconnect timer tries again. */
        e = cpg_join(d->cpg, &group);
        if (e != CS_OK) {
                r = cs_errno(e);
                goto fail;
        }

        if (cpg_fd_get(d->cpg, &fd) != CS_OK) {
                r = -EBADF;
                goto fail;
        }
        r = sd_event_add_io(d->event, &d->cpg_source, fd, EPOLLIN, on_cpg_io, d);
        if (r < 0)
                goto fail;
        if (votequorum_fd_get(d->votequorum, &fd) != CS_OK) {
                r = -EBADF;
                goto fail;
        }
        r = sd_event_add_io(d->event, &d->votequorum_source, fd, EPOLLIN, on_votequorum_io, d);
        if (r < 0)
                goto fail;

        d->reconnect_backoff_usec = 0;
        log_info("Connected to corosync as node %u, joined group \"%s\"", d->node_id,
                 DOMAIN_GROUP);
        /* The current quorum state arrives through the callback. */
        (void) votequorum_dispatch(d->votequorum, CS_DISPATCH_ALL);
        return 0;
fail:
        cpg_disconnect(d, NULL);
        return log_debug_errno(r, "Failed to connect to corosync: %m");
}

/* Drops the corosync connection (corosync stopped, or an error), fails what
 * waits on it, and schedules a reconnect. why == NULL: no log, no reconnect
 * (the caller handles it). */
void cpg_disconnect(struct domain *d, const char *why) {
        d->cpg_source = sd_event_source_disable_unref(d->cpg_source);
        d->votequorum_source = sd_event_source_disable_unref(d->votequorum_source);
        d->send_timer = sd_event_source_disable_unref(d->send_timer);
        if (d->cpg_connected)
                (void) cpg_finalize(d->cpg);
        if (d->votequorum_connected)
                (void) votequorum_finalize(d->votequorum);
        d->cpg_connected = d->votequorum_connected = false;
        d->quorate = false;
        drop_queue(d);
        sync_lost_corosync(d);
        if (why) {
                log_warning("%s; the configuration is read-only until it is back", why);
                (void) cpg_schedule_reconnect(d);
        }
}
