/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Framed JSON messages over unix stream sockets: the local API of every Haven
 * daemon (domaind, the lab supervisor, ...). A frame is a 4-byte big-endian
 * length followed by that many bytes of JSON text (one object). Frames larger
 * than the configured limit are refused. The server side runs on an sd-event
 * loop; the client side is blocking with a timeout (for CLIs and tests) or
 * attached to a loop (for daemons talking to daemons).
 *
 * Must not: interpret the JSON beyond "is it one object", or log above debug.
 */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "haven/macro.h"

/* Default and hard upper bound on a frame's payload. */
#define HAVEN_MSG_SIZE_DEFAULT (1024u * 1024u)
#define HAVEN_MSG_SIZE_HARD_MAX (64u * 1024u * 1024u)

/* ==== Encoding (pure, no I/O) ==== */

/* Serializes obj (plain compact JSON) into a newly allocated frame.
 * Returns 0 and sets *ret_frame and *ret_size, or -E2BIG if the text exceeds
 * max_size, -ENOMEM. The caller frees *ret_frame. */
int haven_msg_encode(struct json_object *obj, size_t max_size,
                     uint8_t **ret_frame, size_t *ret_size);

/* ==== Server ==== */

struct haven_msg_server;
struct haven_msg_conn;

/* Called for every complete, well-formed frame (a JSON object). The message
 * is borrowed: take a reference with json_object_get() to keep it. Return 0
 * to keep the connection, a negative errno to close it. */
typedef int (*haven_msg_handler_t)(struct haven_msg_conn *conn,
                                   struct json_object *msg, void *userdata);

struct haven_msg_server_config {
        const char *path;  /* socket path; an existing socket file is replaced */
        mode_t mode;       /* permissions of the socket file, e.g. 0600 */
        size_t max_size;   /* payload limit; 0 = HAVEN_MSG_SIZE_DEFAULT */
        unsigned max_connections; /* 0 = 64; further connects are refused */
        uint64_t idle_timeout_usec; /* 0 = none; idle connections are closed */
        haven_msg_handler_t handler;
        void *userdata;
};

/* Creates the listening socket and attaches it to the event loop. On a bad
 * frame (oversized, truncated by EOF, not JSON, not an object) the server
 * answers {"error":{"code":"bad-message","message":...}} and closes that
 * connection; other connections and the server keep going.
 * Returns 0 and *ret, or a negative errno. The server owns its connections. */
int haven_msg_server_new(sd_event *event,
                         const struct haven_msg_server_config *config,
                         struct haven_msg_server **ret);
/* Closes all connections and the socket, unlinks the socket file. NULL ok. */
struct haven_msg_server *haven_msg_server_free(struct haven_msg_server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_msg_server *, haven_msg_server_free)
unsigned haven_msg_server_connections(struct haven_msg_server *s);

/* Queues one message on the connection (non-blocking, flushed by the loop).
 * Returns 0, -E2BIG if it exceeds the limit, -ENOTCONN if closed. Usable from
 * the handler and later (e.g. to push events to a subscriber). */
int haven_msg_conn_send(struct haven_msg_conn *conn, struct json_object *obj);
/* Convenience: sends {"error":{"code":code,"message":message}}. */
int haven_msg_conn_send_error(struct haven_msg_conn *conn, const char *code,
                              const char *message);
/* Connections are refcounted so a subscriber list can hold them after the
 * peer went away; haven_msg_conn_send() then returns -ENOTCONN. */
struct haven_msg_conn *haven_msg_conn_ref(struct haven_msg_conn *conn);
struct haven_msg_conn *haven_msg_conn_unref(struct haven_msg_conn *conn);
/* Closes the connection after the queued output is flushed. */
void haven_msg_conn_close(struct haven_msg_conn *conn);
/* Credentials of the peer (SO_PEERCRED). */
int haven_msg_conn_peer(struct haven_msg_conn *conn, pid_t *ret_pid,
                        uid_t *ret_uid);
void haven_msg_conn_set_userdata(struct haven_msg_conn *conn, void *userdata);
void *haven_msg_conn_get_userdata(struct haven_msg_conn *conn);

/* ==== Blocking client ==== */

struct haven_msg_client;

/* Connects to path. max_size 0 = default. Returns 0 and *ret, or -errno
 * (-ENOENT / -ECONNREFUSED when the daemon is not there). */
int haven_msg_client_connect(const char *path, size_t max_size,
                             struct haven_msg_client **ret);
struct haven_msg_client *haven_msg_client_free(struct haven_msg_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_msg_client *, haven_msg_client_free)
int haven_msg_client_fd(struct haven_msg_client *c);

int haven_msg_client_send(struct haven_msg_client *c, struct json_object *obj,
                          uint64_t timeout_usec);
/* Receives one message; *ret is a new reference. -ETIMEDOUT, -ECONNRESET on
 * EOF, -EBADMSG on a bad frame, -E2BIG when over the limit. */
int haven_msg_client_recv(struct haven_msg_client *c, uint64_t timeout_usec,
                          struct json_object **ret);
/* send + recv. */
int haven_msg_client_call(struct haven_msg_client *c, struct json_object *req,
                          uint64_t timeout_usec, struct json_object **ret);

/* ==== Loop client ==== */

/* A daemon's connection to another daemon's socket (haven-fenced →
 * haven-domaind, ...), attached to an sd-event loop. Requests carry a "tag"
 * the link adds itself; the reply with that tag goes to the request's
 * callback. Messages without a tag of ours (pushed events) go to on_event.
 * When the connection breaks, the link reconnects with a growing backoff and
 * reports both edges through on_state, so the owner can subscribe again. */
struct haven_msg_link;

/* error is 0 and reply the answer (borrowed), or error is -ETIMEDOUT (no
 * answer within the request's timeout), -ECONNRESET (the connection broke
 * first) or -ECANCELED (the link is being freed) and reply NULL. */
typedef void (*haven_msg_reply_t)(struct haven_msg_link *link, int error,
                                  struct json_object *reply, void *userdata);
typedef void (*haven_msg_event_t)(struct haven_msg_link *link,
                                  struct json_object *event, void *userdata);
typedef void (*haven_msg_state_t)(struct haven_msg_link *link, bool connected,
                                  void *userdata);

struct haven_msg_link_config {
        const char *path;
        size_t max_size;                /* 0 = HAVEN_MSG_SIZE_DEFAULT */
        uint64_t reconnect_min_usec;    /* 0 = 100 ms; doubles up to ... */
        uint64_t reconnect_max_usec;    /* 0 = 5 s */
        haven_msg_event_t on_event;     /* may be NULL */
        haven_msg_state_t on_state;     /* may be NULL */
        void *userdata;
};

/* Creates the link and tries to connect at once (a failure is retried with
 * the backoff; on_state(true) reports success, also the first one, from the
 * loop). Returns 0 and *ret, or a negative errno (-EINVAL for a bad path). */
int haven_msg_link_new(sd_event *event, const struct haven_msg_link_config *c,
                       struct haven_msg_link **ret);
/* Closes the connection; pending calls get -ECANCELED first. NULL ok. May be
 * called from any of the link's callbacks. */
struct haven_msg_link *haven_msg_link_free(struct haven_msg_link *link);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_msg_link *, haven_msg_link_free)

bool haven_msg_link_connected(struct haven_msg_link *link);

/* Sends request (an object; a "tag" member is set on it) and calls reply
 * exactly once later — never from inside this call. timeout_usec 0 means no
 * timeout. Returns 0 and *ret_call_id (may be NULL) for haven_msg_link_cancel,
 * -ENOTCONN while disconnected, -E2BIG, -ENOBUFS, -ENOMEM (reply is then
 * never called). */
int haven_msg_link_call(struct haven_msg_link *link,
                        struct json_object *request, uint64_t timeout_usec,
                        haven_msg_reply_t reply, void *userdata,
                        uint64_t *ret_call_id);
/* Forgets a pending call: its reply callback is not called. Unknown or
 * finished ids are ignored. */
void haven_msg_link_cancel(struct haven_msg_link *link, uint64_t call_id);
