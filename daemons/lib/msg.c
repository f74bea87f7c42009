/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Framed JSON over unix stream sockets (haven/msg.h): payload parsing, the
 * non-blocking sd-event server (per-connection buffers, limits, idle timers,
 * refcounted connections) and the blocking client; the framing itself is
 * haven/frame.h's. Must not: look at a message beyond "one JSON object",
 * block the loop, or log above debug.
 */
#include <assert.h>
#include <poll.h>
#include <sys/param.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "haven/frame.h"
#include "haven/loop.h"
#include "haven/json.h"
#include "haven/log.h"
#include "haven/msg.h"

#define MAX_CONNECTIONS_DEFAULT 64u
/* Connections accepted per wakeup, so a connect storm cannot starve others. */
#define ACCEPT_BATCH 32u
/* How long accepting pauses when the process is out of file descriptors. */
#define ACCEPT_RETRY_USEC (250u * 1000u)
#define SOCKET_MODE_DEFAULT 0600

static_assert(HAVEN_MSG_SIZE_DEFAULT == HAVEN_FRAME_SIZE_DEFAULT,
              "haven/msg.h and haven/frame.h disagree on the default limit");
static_assert(HAVEN_MSG_SIZE_HARD_MAX == HAVEN_FRAME_SIZE_HARD_MAX,
              "haven/msg.h and haven/frame.h disagree on the hard limit");

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_tokener *, json_tokener_free)

/* ==== Frames ==== */

/* Parses one frame's payload (not empty: haven_frame_next() refuses empty
 * frames), which must be exactly one JSON object (valid UTF-8, no NUL bytes,
 * nested at most HAVEN_JSON_DEPTH_MAX deep, nothing but whitespace after
 * it). Returns 0 and *ret (a new reference), -EBADMSG with *ret_reason set
 * to a static description of what is wrong, or -ENOMEM. Differs from
 * haven_json_parse(), which peer.c uses: the reasons say more, and \u0000
 * escapes, NaN, integers beyond int64 and "-01" pass here. */
static int payload_parse(const uint8_t *payload, size_t size,
                         struct json_object **ret, const char **ret_reason) {
        _cleanup_(json_tokener_freep) struct json_tokener *tok = NULL;
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        enum json_tokener_error error;

        assert(payload);
        assert(size > 0);
        assert(ret);
        assert(ret_reason);

        /* json-c stops at a NUL byte and reports success for what came before
         * it; a frame's bytes must all be JSON text. */
        if (memchr(payload, '\0', size)) {
                *ret_reason = "frame contains a NUL byte";
                return -EBADMSG;
        }

        tok = json_tokener_new_ex(HAVEN_JSON_DEPTH_MAX);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                            JSON_TOKENER_VALIDATE_UTF8);

        obj = json_tokener_parse_ex(tok, (const char *) payload, (int) size);
        error = json_tokener_get_error(tok);
        if (error == json_tokener_success &&
            json_tokener_get_parse_end(tok) != size) {
                *ret_reason = "trailing data after the JSON value";
                return -EBADMSG;
        }
        if (error == json_tokener_continue) {
                /* All input is there: a terminating NUL completes values
                 * without an end of their own (numbers, literals) and turns
                 * an unfinished one into an error. */
                obj = json_tokener_parse_ex(tok, "", 1);
                error = json_tokener_get_error(tok);
        }
        if (error == json_tokener_error_depth) {
                *ret_reason = "JSON nested too deeply";
                return -EBADMSG;
        }
        if (error != json_tokener_success) {
                *ret_reason = "not valid JSON";
                return -EBADMSG;
        }
        if (!json_object_is_type(obj, json_type_object)) {
                *ret_reason = "not a JSON object";
                return -EBADMSG;
        }

        *ret = TAKE_PTR(obj);
        return 0;
}

/* max_size 0 means HAVEN_MSG_SIZE_DEFAULT; values above
 * HAVEN_MSG_SIZE_HARD_MAX are lowered to it. obj may be any JSON value
 * (NULL encodes as null); only the receiver insists on an object. */
int haven_msg_encode(struct json_object *obj, size_t max_size,
                     uint8_t **ret_frame, size_t *ret_size) {
        return haven_frame_encode(obj, haven_frame_max_size(max_size),
                                  ret_frame, ret_size);
}

/* ==== Server ==== */

struct haven_msg_server {
        sd_event *event;
        int fd;
        char *path;
        bool bound; /* the socket file at path is ours */
        dev_t socket_dev;
        ino_t socket_ino;
        sd_event_source *listen_source;
        sd_event_source *accept_retry_source;

        size_t max_size;
        size_t output_max;
        unsigned max_connections;
        uint64_t idle_timeout_usec;
        haven_msg_handler_t handler;
        void *userdata;

        struct haven_msg_conn *connections;
        unsigned n_connections;
};

struct haven_msg_conn {
        unsigned n_ref;
        /* NULL once the connection is closed; the server holds one reference
         * for as long as it is set. */
        struct haven_msg_server *server;
        struct haven_msg_conn *prev, *next;
        int fd;
        sd_event_source *io_source;
        sd_event_source *idle_source;
        bool closing; /* no more input; close once flushed */

        struct haven_frame_buffer in;  /* received */
        struct haven_frame_buffer out; /* queued */

        void *userdata;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_msg_conn *, haven_msg_conn_unref)

static bool conn_connected(const struct haven_msg_conn *conn) {
        return conn->server != NULL;
}

static size_t conn_output_pending(const struct haven_msg_conn *conn) {
        return haven_frame_buffer_size(&conn->out);
}

/* Input is read and handled only while the peer keeps up with the replies:
 * once a frame's worth of output is queued, requests wait in the socket. */
static bool conn_wants_input(const struct haven_msg_conn *conn) {
        return conn_connected(conn) && !conn->closing &&
               conn_output_pending(conn) <
                       conn->server->max_size + HAVEN_FRAME_HEADER_SIZE;
}

static void conn_free_buffers(struct haven_msg_conn *conn) {
        haven_frame_buffer_free(&conn->in);
        haven_frame_buffer_free(&conn->out);
}

static size_t conn_input_size(const struct haven_msg_conn *conn) {
        return haven_frame_buffer_size(&conn->in);
}

/* Closes the socket now, dropping anything still queued either way, and
 * drops the server's reference, which may free conn: callers that use conn
 * afterwards hold a reference of their own. error (< 0) only goes to the
 * debug log. No-op when already closed. */
static void conn_disconnect(struct haven_msg_conn *conn, int error) {
        struct haven_msg_server *s = conn->server;

        if (!s)
                return;

        if (error < 0)
                (void) log_debug_errno(error,
                                       "Message socket \"%s\": dropping "
                                       "connection: %m",
                                       s->path);
        else
                log_debug("Message socket \"%s\": connection closed", s->path);

        if (conn->prev)
                conn->prev->next = conn->next;
        else
                s->connections = conn->next;
        if (conn->next)
                conn->next->prev = conn->prev;
        conn->prev = conn->next = NULL;
        assert(s->n_connections > 0);
        s->n_connections--;

        conn->io_source = sd_event_source_disable_unref(conn->io_source);
        conn->idle_source = sd_event_source_disable_unref(conn->idle_source);
        conn->fd = safe_close(conn->fd);
        conn_free_buffers(conn);
        conn->server = NULL;

        haven_msg_conn_unref(conn);
}

/* Brings the epoll mask in line with the connection's state, and closes a
 * closing connection once everything queued went out. May free conn (see
 * conn_disconnect()). */
static void conn_update_events(struct haven_msg_conn *conn) {
        uint32_t events = 0;
        int r;

        if (!conn_connected(conn))
                return;
        if (conn->closing && conn_output_pending(conn) == 0) {
                conn_disconnect(conn, 0);
                return;
        }

        if (conn_wants_input(conn))
                events |= EPOLLIN;
        if (conn_output_pending(conn) > 0)
                events |= EPOLLOUT;
        r = sd_event_source_set_io_events(conn->io_source, events);
        if (r < 0)
                conn_disconnect(conn, r);
}

/* Restarts the idle timer: the peer sent or took bytes. */
static void conn_touch(struct haven_msg_conn *conn) {
        int r;

        if (!conn->idle_source)
                return;
        r = sd_event_source_set_time_relative(conn->idle_source,
                                              conn->server->idle_timeout_usec);
        if (r < 0)
                (void) log_debug_errno(r,
                                       "Message socket \"%s\": failed to "
                                       "restart idle timer, ignoring: %m",
                                       conn->server->path);
}

/* Writes queued output until all of it went out or the socket is full.
 * Returns 0, or a negative errno when the peer is gone (-EPIPE, ...). */
static int conn_flush(struct haven_msg_conn *conn) {
        while (conn_output_pending(conn) > 0) {
                ssize_t n;

                n = send(conn->fd, conn->out.data + conn->out.start,
                         conn_output_pending(conn),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        return -errno;
                }
                conn->out.start += (size_t) n;
                conn_touch(conn);
        }

        haven_frame_buffer_trim(&conn->out);
        return 0;
}

/* Queues obj as the next frame. Returns 0, -ENOTCONN once the connection is
 * closed or closing, -E2BIG when obj encodes to more than the payload limit,
 * -ENOBUFS when the peer left too much output unread (the connection is then
 * dropped), -ENOMEM. The caller must hold a reference to conn or be inside
 * the handler. */
int haven_msg_conn_send(struct haven_msg_conn *conn, struct json_object *obj) {
        bool was_idle;
        int r;

        assert(conn);

        if (!conn_connected(conn) || conn->closing)
                return -ENOTCONN;

        was_idle = conn_output_pending(conn) == 0;
        r = haven_frame_buffer_queue(&conn->out, obj, conn->server->max_size,
                                     conn->server->output_max);
        if (r == -ENOBUFS) {
                /* A peer that does not read what it is sent is dropped
                 * rather than buffered for without bound. */
                conn_disconnect(conn, r);
                return r;
        }
        if (r < 0)
                return r;

        /* Nothing was waiting: write now rather than a loop iteration later
         * (a reply's latency); what the socket does not take waits for
         * EPOLLOUT as usual. */
        if (was_idle) {
                r = conn_flush(conn);
                if (r < 0) {
                        conn_disconnect(conn, r);
                        return r;
                }
        }
        conn_update_events(conn);
        return 0;
}

int haven_msg_conn_send_error(struct haven_msg_conn *conn, const char *code,
                              const char *message) {
        _cleanup_(json_object_putp) struct json_object *error = NULL;

        assert(conn);

        error = haven_frame_error_new(code, message);
        if (!error)
                return -ENOMEM;
        return haven_msg_conn_send(conn, error);
}

/* Stops reading, drops unread input, and closes once the queued output is
 * out (right away when nothing is queued). conn stays valid for a caller
 * that holds a reference or is inside the handler. NULL and closed ok. */
void haven_msg_conn_close(struct haven_msg_conn *conn) {
        if (!conn || !conn_connected(conn) || conn->closing)
                return;

        conn->closing = true;
        conn->in.start = conn->in.end = 0;
        conn_update_events(conn);
}

/* Answers a bad frame with a "bad-message" error and closes the connection. */
static void conn_refuse(struct haven_msg_conn *conn, const char *reason) {
        const char *path = conn->server->path;
        int r;

        log_debug("Message socket \"%s\": refusing frame: %s", path, reason);
        r = haven_msg_conn_send_error(conn, "bad-message", reason);
        if (r < 0)
                (void) log_debug_errno(r,
                                       "Message socket \"%s\": failed to "
                                       "queue error reply, ignoring: %m",
                                       path);
        haven_msg_conn_close(conn);
}

/* Hands each complete frame in the input buffer to the handler, in order,
 * for as long as the connection wants input; a bad frame is answered and
 * closes the connection. Returns 0 or -ENOMEM. The caller holds a reference:
 * conn may be closed on return. */
static int conn_process_input(struct haven_msg_conn *conn) {
        int r;

        while (conn_wants_input(conn)) {
                _cleanup_(json_object_putp) struct json_object *msg = NULL;
                struct haven_msg_server *s = conn->server;
                const char *reason = NULL;
                const uint8_t *payload;
                size_t size;

                r = haven_frame_next(haven_frame_buffer_head(&conn->in),
                                     conn_input_size(conn), s->max_size,
                                     &payload, &size, &reason);
                if (r == 0)
                        break; /* the rest is still on its way */
                if (r > 0)
                        r = payload_parse(payload, size, &msg, &reason);
                /* A frame too large is refused on its header alone: the
                 * payload is never read, let alone buffered. */
                if (r == -E2BIG || r == -EBADMSG) {
                        conn_refuse(conn, reason);
                        return 0;
                }
                if (r < 0)
                        return r;
                conn->in.start += HAVEN_FRAME_HEADER_SIZE + size;

                r = s->handler(conn, msg, s->userdata);
                /* The handler may have closed conn, or even freed the
                 * server: look at s only while conn is still connected. */
                if (r < 0 && conn_connected(conn)) {
                        (void) log_debug_errno(r,
                                               "Message socket \"%s\": "
                                               "handler failed, closing "
                                               "connection: %m",
                                               s->path);
                        haven_msg_conn_close(conn);
                }
        }

        haven_frame_buffer_trim(&conn->in);
        return 0;
}

/* Reads what the socket has, up to the end of the frame being received or
 * HAVEN_FRAME_READ_CHUNK bytes, whichever is more. End of stream closes the
 * connection (answering a half-received frame with an error first). Returns 0,
 * or a negative errno when the connection broke. */
static int conn_read(struct haven_msg_conn *conn) {
        size_t have = conn_input_size(conn);
        ssize_t n;
        int r;

        /* Frames over max_size were refused on their header already. */
        r = haven_frame_buffer_reserve_read(&conn->in);
        if (r < 0)
                return r;
        /* Complete frames were consumed before, so there is room. */
        assert(conn->in.alloc > conn->in.end);

        n = read(conn->fd, conn->in.data + conn->in.end,
                 conn->in.alloc - conn->in.end);
        if (n < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                        return 0;
                return -errno;
        }
        if (n == 0) {
                if (have > 0)
                        conn_refuse(conn, "truncated frame");
                else
                        haven_msg_conn_close(conn);
                return 0;
        }

        conn->in.end += (size_t) n;
        conn_touch(conn);
        return 0;
}

static int conn_on_io(sd_event_source *source, int fd, uint32_t revents,
                      void *userdata) {
        /* Our own reference: the handler or an error may close conn. */
        _cleanup_(haven_msg_conn_unrefp) struct haven_msg_conn *conn =
                haven_msg_conn_ref(userdata);
        int r;

        if (conn_output_pending(conn) > 0 &&
            (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
                r = conn_flush(conn);
                if (r < 0) {
                        conn_disconnect(conn, r);
                        return 0;
                }
        }

        if (conn_wants_input(conn) &&
            (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                r = conn_read(conn);
                if (r < 0) {
                        conn_disconnect(conn, r);
                        return 0;
                }
        }

        /* Also runs after a flush: frames that waited while the peer was
         * not reading its replies are handled now. */
        r = conn_process_input(conn);
        if (r < 0) {
                conn_disconnect(conn, r);
                return 0;
        }

        conn_update_events(conn);
        return 0;
}

static int conn_on_idle(sd_event_source *source, uint64_t usec,
                        void *userdata) {
        conn_disconnect(userdata, -ETIMEDOUT);
        return 0;
}

/* Adds a connection for the accepted socket fd, which it takes over (closed
 * on failure too). Returns 0 or a negative errno. */
static int conn_new(struct haven_msg_server *s, int fd) {
        _cleanup_(haven_msg_conn_unrefp) struct haven_msg_conn *conn = NULL;
        int r;

        conn = calloc(1, sizeof(*conn));
        if (!conn) {
                safe_close(fd);
                return -ENOMEM;
        }
        conn->n_ref = 1; /* the server's */
        conn->fd = fd;

        r = sd_event_add_io(s->event, &conn->io_source, conn->fd, EPOLLIN,
                            conn_on_io, conn);
        if (r < 0)
                return r;
        if (s->idle_timeout_usec > 0) {
                r = sd_event_add_time_relative(
                        s->event, &conn->idle_source, CLOCK_MONOTONIC,
                        s->idle_timeout_usec, 0, conn_on_idle, conn);
                if (r < 0)
                        return r;
        }

        conn->server = s;
        conn->next = s->connections;
        if (s->connections)
                s->connections->prev = conn;
        s->connections = TAKE_PTR(conn);
        s->n_connections++;
        return 0;
}

struct haven_msg_conn *haven_msg_conn_ref(struct haven_msg_conn *conn) {
        if (!conn)
                return NULL;
        assert(conn->n_ref > 0);
        conn->n_ref++;
        return conn;
}

/* Drops a reference; the last one frees the connection (which is closed by
 * then: the server holds one while it is open). Returns NULL. NULL ok. */
struct haven_msg_conn *haven_msg_conn_unref(struct haven_msg_conn *conn) {
        if (!conn)
                return NULL;
        assert(conn->n_ref > 0);
        if (--conn->n_ref > 0)
                return NULL;

        assert(!conn_connected(conn));
        sd_event_source_disable_unref(conn->io_source);
        sd_event_source_disable_unref(conn->idle_source);
        safe_close(conn->fd);
        conn_free_buffers(conn);
        free(conn);
        return NULL;
}

/* Returns 0 and the peer's pid and uid as the kernel saw them at connect
 * time (either pointer may be NULL), -ENOTCONN once the connection closed,
 * or another negative errno. */
int haven_msg_conn_peer(struct haven_msg_conn *conn, pid_t *ret_pid,
                        uid_t *ret_uid) {
        struct ucred ucred = {};
        socklen_t len = sizeof(ucred);

        assert(conn);

        if (!conn_connected(conn))
                return -ENOTCONN;
        if (getsockopt(conn->fd, SOL_SOCKET, SO_PEERCRED, &ucred, &len) < 0)
                return -errno;
        if (len != sizeof(ucred))
                return -EIO;

        if (ret_pid)
                *ret_pid = ucred.pid;
        if (ret_uid)
                *ret_uid = ucred.uid;
        return 0;
}

void haven_msg_conn_set_userdata(struct haven_msg_conn *conn, void *userdata) {
        assert(conn);
        conn->userdata = userdata;
}

void *haven_msg_conn_get_userdata(struct haven_msg_conn *conn) {
        assert(conn);
        return conn->userdata;
}

/* ==== Listening socket ==== */

/* Best effort, for a connection over the limit: tell the peer why before
 * closing. A fresh socket has room for a short frame; the peer may already
 * be gone. */
static void server_send_busy(struct haven_msg_server *s, int fd) {
        _cleanup_(json_object_putp) struct json_object *error = NULL;
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size;

        error = haven_frame_error_new("too-many-connections",
                                      "the server has too many connections");
        if (!error || haven_msg_encode(error, s->max_size, &frame, &size) < 0)
                return;
        (void) send(fd, frame, size, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int server_on_accept_retry(sd_event_source *source, uint64_t usec,
                                  void *userdata) {
        struct haven_msg_server *s = userdata;
        int r;

        r = sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
        if (r < 0)
                (void) log_debug_errno(r,
                                       "Message socket \"%s\": failed to "
                                       "resume accepting, ignoring: %m",
                                       s->path);
        return 0;
}

/* Out of file descriptors or memory: the listening socket stays readable, so
 * stop watching it for a moment instead of spinning. */
static void server_pause_accept(struct haven_msg_server *s) {
        int r;

        r = sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
        if (r < 0)
                return;

        if (s->accept_retry_source) {
                r = sd_event_source_set_time_relative(s->accept_retry_source,
                                                      ACCEPT_RETRY_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->accept_retry_source,
                                                        SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(
                        s->event, &s->accept_retry_source, CLOCK_MONOTONIC,
                        ACCEPT_RETRY_USEC, 0, server_on_accept_retry, s);
        if (r < 0) {
                /* Spinning beats never accepting again. */
                (void) log_debug_errno(r,
                                       "Message socket \"%s\": failed to arm "
                                       "accept retry timer, ignoring: %m",
                                       s->path);
                (void) sd_event_source_set_enabled(s->listen_source,
                                                   SD_EVENT_ON);
        }
}

static int server_on_accept(sd_event_source *source, int fd, uint32_t revents,
                            void *userdata) {
        struct haven_msg_server *s = userdata;
        int r;

        for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
                _cleanup_close_ int conn_fd = -1;

                conn_fd = accept4(s->fd, NULL, NULL,
                                  SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (conn_fd < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        if (errno == EINTR || errno == ECONNABORTED ||
                            errno == EPROTO)
                                continue;
                        (void) log_debug_errno(errno,
                                               "Message socket \"%s\": "
                                               "failed to accept, pausing: %m",
                                               s->path);
                        server_pause_accept(s);
                        return 0;
                }

                if (s->n_connections >= s->max_connections) {
                        log_debug("Message socket \"%s\": %u connections, "
                                  "refusing another",
                                  s->path, s->n_connections);
                        server_send_busy(s, conn_fd);
                        continue;
                }

                r = conn_new(s, TAKE_FD(conn_fd));
                if (r < 0)
                        (void) log_debug_errno(r,
                                               "Message socket \"%s\": "
                                               "failed to set up connection, "
                                               "ignoring: %m",
                                               s->path);
        }
        return 0;
}

/* config->path must fit a sockaddr_un (-ENAMETOOLONG otherwise) and
 * config->handler must be set (-EINVAL). An existing socket file at the path
 * is replaced; any other kind of file makes bind() fail (-EADDRINUSE). The
 * socket file is created with config->mode (0 = 0600; only the 0777 bits
 * count) by narrowing the umask around bind(), so it is never reachable with
 * wider permissions. max_size above HAVEN_MSG_SIZE_HARD_MAX is -EINVAL.
 * Returns 0 and *ret, or a negative errno (nothing is left behind). */
int haven_msg_server_new(sd_event *event,
                         const struct haven_msg_server_config *config,
                         struct haven_msg_server **ret) {
        _cleanup_(haven_msg_server_freep) struct haven_msg_server *s = NULL;
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
        } addr = {.un.sun_family = AF_UNIX};
        size_t path_len;
        struct stat st;
        mode_t mode, old_umask;
        int r;

        assert(event);
        assert(config);
        assert(ret);

        if (!config->path || !config->handler)
                return -EINVAL;
        path_len = strlen(config->path);
        if (path_len == 0)
                return -EINVAL;
        if (path_len >= sizeof(addr.un.sun_path))
                return -ENAMETOOLONG;
        if (config->max_size > HAVEN_MSG_SIZE_HARD_MAX)
                return -EINVAL;
        memcpy(addr.un.sun_path, config->path, path_len);
        mode = config->mode != 0 ? config->mode & 0777 : SOCKET_MODE_DEFAULT;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        s->event = sd_event_ref(event);
        s->max_size = haven_frame_max_size(config->max_size);
        s->output_max = haven_frame_queue_max(s->max_size);
        s->max_connections = config->max_connections > 0
                                     ? config->max_connections
                                     : MAX_CONNECTIONS_DEFAULT;
        s->idle_timeout_usec = config->idle_timeout_usec;
        s->handler = config->handler;
        s->userdata = config->userdata;
        s->path = strdup(config->path);
        if (!s->path)
                return -ENOMEM;

        s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->fd < 0)
                return -errno;

        /* A daemon that restarts finds its old socket file in the way. */
        if (lstat(s->path, &st) >= 0 && S_ISSOCK(st.st_mode) &&
            unlink(s->path) < 0 && errno != ENOENT)
                return -errno;

        /* bind() creates the file with 0777 & ~umask: exactly mode. */
        old_umask = umask(~mode & 0777);
        r = bind(s->fd, &addr.sa, sizeof(addr.un));
        if (r < 0)
                r = -errno;
        umask(old_umask);
        if (r < 0)
                return r;
        s->bound = true;

        /* Remembered so that freeing removes this socket file only, not
         * one a newer server put there since. */
        if (lstat(s->path, &st) < 0)
                return -errno;
        s->socket_dev = st.st_dev;
        s->socket_ino = st.st_ino;

        if (listen(s->fd, SOMAXCONN) < 0)
                return -errno;

        r = sd_event_add_io(event, &s->listen_source, s->fd, EPOLLIN,
                            server_on_accept, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->listen_source,
                                               "haven-msg-listen");

        *ret = TAKE_PTR(s);
        return 0;
}

/* Removes the socket file, unless another server replaced it since. */
static void server_unlink_socket(struct haven_msg_server *s) {
        struct stat st;

        if (!s->bound)
                return;
        if (lstat(s->path, &st) < 0 || st.st_dev != s->socket_dev ||
            st.st_ino != s->socket_ino)
                return;
        if (unlink(s->path) < 0)
                (void) log_debug_errno(errno,
                                       "Message socket \"%s\": failed to "
                                       "remove socket file, ignoring: %m",
                                       s->path);
}

/* Connections still referenced elsewhere stay allocated but closed: sending
 * on them returns -ENOTCONN. May be called from the handler. */
struct haven_msg_server *haven_msg_server_free(struct haven_msg_server *s) {
        if (!s)
                return NULL;

        while (s->connections)
                conn_disconnect(s->connections, 0);

        sd_event_source_disable_unref(s->listen_source);
        sd_event_source_disable_unref(s->accept_retry_source);
        safe_close(s->fd);
        server_unlink_socket(s);
        free(s->path);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

unsigned haven_msg_server_connections(struct haven_msg_server *s) {
        return s ? s->n_connections : 0;
}

/* ==== Blocking client ==== */

/* Timeouts: timeout_usec bounds the whole call. UINT64_MAX waits forever;
 * 0 does only what is possible without waiting, else -ETIMEDOUT. */

struct haven_msg_client {
        int fd;
        size_t max_size;
        /* A frame went out half (timeout, error): the peer would read our
         * next bytes as the rest of it, so sending is over (-ENOTCONN). */
        bool send_broken;
        /* A frame over the limit was announced: what follows cannot be
         * framed, so receiving is over (-ENOTCONN). */
        bool recv_broken;
        struct haven_frame_buffer in; /* received */
};

/* Does not wait: a unix socket connects at once or not at all. Returns 0 and
 * *ret, -ENOENT / -ECONNREFUSED when no daemon listens at path, -EAGAIN when
 * its backlog is full, -ENAMETOOLONG, -EINVAL (empty path, max_size above
 * HAVEN_MSG_SIZE_HARD_MAX), or another negative errno. */
int haven_msg_client_connect(const char *path, size_t max_size,
                             struct haven_msg_client **ret) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
        } addr = {.un.sun_family = AF_UNIX};
        size_t path_len;

        assert(path);
        assert(ret);

        path_len = strlen(path);
        if (path_len == 0)
                return -EINVAL;
        if (path_len >= sizeof(addr.un.sun_path))
                return -ENAMETOOLONG;
        if (max_size > HAVEN_MSG_SIZE_HARD_MAX)
                return -EINVAL;
        memcpy(addr.un.sun_path, path, path_len);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->max_size = haven_frame_max_size(max_size);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0)
                return -errno;
        if (connect(c->fd, &addr.sa, sizeof(addr.un)) < 0)
                return -errno;

        *ret = TAKE_PTR(c);
        return 0;
}

struct haven_msg_client *haven_msg_client_free(struct haven_msg_client *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        haven_frame_buffer_free(&c->in);
        free(c);
        return NULL;
}

int haven_msg_client_fd(struct haven_msg_client *c) {
        assert(c);
        return c->fd;
}

static int client_send_until(struct haven_msg_client *c,
                             struct json_object *obj, uint64_t deadline) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size, done = 0;
        int r;

        if (c->send_broken)
                return -ENOTCONN;

        r = haven_msg_encode(obj, c->max_size, &frame, &size);
        if (r < 0)
                return r;

        while (done < size) {
                ssize_t n;

                n = send(c->fd, frame + done, size - done, MSG_NOSIGNAL);
                if (n >= 0) {
                        done += (size_t) n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        r = haven_frame_wait(c->fd, POLLOUT, deadline);
                        if (r >= 0)
                                continue;
                } else
                        r = -errno;
                if (done > 0)
                        c->send_broken = true;
                return r;
        }
        return 0;
}

static int client_recv_until(struct haven_msg_client *c, uint64_t deadline,
                             struct json_object **ret) {
        int r;

        if (c->recv_broken)
                return -ENOTCONN;

        for (;;) {
                const char *reason = NULL;
                const uint8_t *payload;
                size_t size;
                ssize_t n;

                r = haven_frame_next(haven_frame_buffer_head(&c->in),
                                     haven_frame_buffer_size(&c->in),
                                     c->max_size, &payload, &size, &reason);
                if (r == -E2BIG) {
                        c->recv_broken = true;
                        return r;
                }
                if (r != 0) {
                        /* Consumed even when bad: the frame after it is
                         * still read correctly. */
                        c->in.start += HAVEN_FRAME_HEADER_SIZE + size;
                        if (r > 0)
                                r = payload_parse(payload, size, ret, &reason);
                        if (r == -EBADMSG)
                                log_debug("Message client: bad frame: %s",
                                          reason);
                        return r;
                }

                r = haven_frame_buffer_reserve_read(&c->in);
                if (r < 0)
                        return r;

                n = read(c->fd, c->in.data + c->in.end,
                         c->in.alloc - c->in.end);
                if (n > 0) {
                        c->in.end += (size_t) n;
                        continue;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                r = haven_frame_wait(c->fd, POLLIN, deadline);
                if (r < 0)
                        return r;
        }
}

/* Returns 0 once the whole frame is handed to the kernel, -E2BIG when obj
 * encodes to more than the limit (nothing sent), -ETIMEDOUT, -EPIPE when the
 * server closed, -ENOTCONN after an earlier half-sent frame. */
int haven_msg_client_send(struct haven_msg_client *c, struct json_object *obj,
                          uint64_t timeout_usec) {
        assert(c);
        return client_send_until(c, obj, haven_deadline_usec(timeout_usec));
}

/* Messages that arrive together are buffered and returned one per call, so
 * a caller that polls haven_msg_client_fd() must drain with timeout 0 until
 * -ETIMEDOUT before polling again. A timeout keeps a partly received frame
 * for the next call. After -EBADMSG the next message can still be received;
 * after -E2BIG nothing can (-ENOTCONN). *ret is set only on success. */
int haven_msg_client_recv(struct haven_msg_client *c, uint64_t timeout_usec,
                          struct json_object **ret) {
        assert(c);
        assert(ret);
        return client_recv_until(c, haven_deadline_usec(timeout_usec), ret);
}

/* timeout_usec bounds send and receive together. Returns the next message
 * that arrives, which is the reply unless the server pushes unsolicited
 * messages on this connection. */
int haven_msg_client_call(struct haven_msg_client *c, struct json_object *req,
                          uint64_t timeout_usec, struct json_object **ret) {
        uint64_t deadline;
        int r;

        assert(c);
        assert(ret);

        deadline = haven_deadline_usec(timeout_usec);
        r = client_send_until(c, req, deadline);
        if (r < 0)
                return r;
        return client_recv_until(c, deadline, ret);
}

/* ==== Loop client ==== */

#define LINK_RECONNECT_MIN_USEC (100u * USEC_PER_MSEC)
#define LINK_RECONNECT_MAX_USEC (5u * USEC_PER_SEC)

struct link_call {
        struct link_call *next;
        uint64_t id;
        uint64_t deadline; /* CLOCK_MONOTONIC, UINT64_MAX = none */
        haven_msg_reply_t reply;
        void *userdata;
};

struct haven_msg_link {
        unsigned n_ref; /* the owner's, plus one per running callback batch */
        bool freed;     /* the owner let go: no more callbacks */
        sd_event *event;
        char *path;
        size_t max_size, output_max;
        uint64_t reconnect_min, reconnect_max, reconnect_next;
        haven_msg_event_t on_event;
        haven_msg_state_t on_state;
        void *userdata;

        int fd; /* -EBADF while disconnected */
        sd_event_source *io, *retry, *timeout;
        struct haven_frame_buffer in, out;
        struct link_call *calls; /* oldest first */
        uint64_t next_id;
};

static void link_schedule_reconnect(struct haven_msg_link *l);

static struct haven_msg_link *link_ref(struct haven_msg_link *l) {
        l->n_ref++;
        return l;
}

static void link_unref(struct haven_msg_link *l) {
        if (!l || --l->n_ref > 0)
                return;
        assert(!l->calls);
        sd_event_source_disable_unref(l->io);
        sd_event_source_disable_unref(l->retry);
        sd_event_source_disable_unref(l->timeout);
        safe_close(l->fd);
        haven_frame_buffer_free(&l->in);
        haven_frame_buffer_free(&l->out);
        sd_event_unref(l->event);
        free(l->path);
        free(l);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_msg_link *, link_unref)

/* Removes and returns the call with id, or NULL. */
static struct link_call *link_take_call(struct haven_msg_link *l, uint64_t id) {
        for (struct link_call **p = &l->calls; *p; p = &(*p)->next)
                if ((*p)->id == id) {
                        struct link_call *c = *p;

                        *p = c->next;
                        return c;
                }
        return NULL;
}

static int link_on_timeout(sd_event_source *s, uint64_t usec, void *userdata);

/* Arms the timeout timer for the earliest deadline among pending calls. */
static void link_update_timeout(struct haven_msg_link *l) {
        uint64_t earliest = UINT64_MAX;
        int r;

        for (struct link_call *c = l->calls; c; c = c->next)
                earliest = MIN(earliest, c->deadline);

        if (earliest == UINT64_MAX) {
                if (l->timeout)
                        (void) sd_event_source_set_enabled(l->timeout,
                                                           SD_EVENT_OFF);
                return;
        }
        if (!l->timeout) {
                r = sd_event_add_time(l->event, &l->timeout, CLOCK_MONOTONIC,
                                      earliest, 1000, link_on_timeout, l);
                if (r < 0)
                        (void) log_debug_errno(r,
                                               "Message link \"%s\": cannot "
                                               "add timer, ignoring: %m",
                                               l->path);
                return;
        }
        (void) sd_event_source_set_time(l->timeout, earliest);
        (void) sd_event_source_set_enabled(l->timeout, SD_EVENT_ONESHOT);
}

/* Removes every call matching (all, or only those past now) and, unless the
 * owner let go of the link, tells its callback error. */
static void link_fail_calls(struct haven_msg_link *l, int error, bool all,
                            uint64_t now) {
        bool notify = !l->freed;

        for (;;) {
                struct link_call *c = NULL;

                for (struct link_call *i = l->calls; i; i = i->next)
                        if (all || i->deadline <= now) {
                                c = i;
                                break;
                        }
                if (!c)
                        break;
                c = link_take_call(l, c->id);
                if (notify)
                        c->reply(l, error, NULL, c->userdata);
                free(c);
        }
}

static int link_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        _cleanup_(link_unrefp) struct haven_msg_link *l = link_ref(userdata);

        link_fail_calls(l, -ETIMEDOUT, false, usec);
        if (!l->freed)
                link_update_timeout(l);
        return 0;
}

static void link_disconnect(struct haven_msg_link *l, int error) {
        bool was_connected = l->fd >= 0;

        l->io = sd_event_source_disable_unref(l->io);
        l->fd = safe_close(l->fd);
        haven_frame_buffer_free(&l->in);
        haven_frame_buffer_free(&l->out);
        (void) log_debug_errno(error, "Message link \"%s\": disconnected: %m",
                               l->path);

        link_fail_calls(l, -ECONNRESET, true, 0);
        if (l->freed)
                return;
        link_update_timeout(l);
        if (was_connected && l->on_state)
                l->on_state(l, false, l->userdata);
        if (!l->freed)
                link_schedule_reconnect(l);
}

static void link_update_events(struct haven_msg_link *l) {
        if (l->io)
                (void) sd_event_source_set_io_events(
                        l->io, EPOLLIN | (haven_frame_buffer_size(&l->out) > 0
                                                  ? EPOLLOUT
                                                  : 0));
}

static int link_flush(struct haven_msg_link *l) {
        while (haven_frame_buffer_size(&l->out) > 0) {
                ssize_t n = send(l->fd, haven_frame_buffer_head(&l->out),
                                 haven_frame_buffer_size(&l->out),
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        return -errno;
                }
                l->out.start += (size_t) n;
        }
        haven_frame_buffer_trim(&l->out);
        return 0;
}

/* One received message: the reply to a pending call (by tag), or an event. */
static void link_dispatch(struct haven_msg_link *l, struct json_object *msg) {
        struct json_object *tag;

        if (json_object_object_get_ex(msg, "tag", &tag) &&
            json_object_is_type(tag, json_type_int)) {
                struct link_call *c =
                        link_take_call(l, (uint64_t) json_object_get_int64(tag));

                if (c) {
                        c->reply(l, 0, msg, c->userdata);
                        free(c);
                        if (!l->freed)
                                link_update_timeout(l);
                        return;
                }
        }
        if (json_object_object_get_ex(msg, "event", NULL) && l->on_event)
                l->on_event(l, msg, l->userdata);
        /* Anything else (the reply to a cancelled call) is dropped. */
}

/* Returns 0, or a negative errno when the connection must be dropped. */
static int link_read(struct haven_msg_link *l) {
        ssize_t n;
        int r;

        r = haven_frame_buffer_reserve_read(&l->in);
        if (r < 0)
                return r;
        n = read(l->fd, l->in.data + l->in.end, l->in.alloc - l->in.end);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : -errno;
        if (n == 0)
                return -ECONNRESET;
        l->in.end += (size_t) n;

        while (!l->freed && l->fd >= 0) {
                _cleanup_(json_object_putp) struct json_object *msg = NULL;
                const char *reason = NULL;
                const uint8_t *payload;
                size_t size;

                r = haven_frame_next(haven_frame_buffer_head(&l->in),
                                     haven_frame_buffer_size(&l->in),
                                     l->max_size, &payload, &size, &reason);
                if (r == 0)
                        break;
                if (r == -E2BIG)
                        return r;
                l->in.start += HAVEN_FRAME_HEADER_SIZE + size;
                if (r > 0)
                        r = payload_parse(payload, size, &msg, &reason);
                if (r == -EBADMSG) {
                        log_debug("Message link \"%s\": bad frame: %s",
                                  l->path, reason);
                        return r;
                }
                if (r < 0)
                        return r;
                link_dispatch(l, msg);
        }
        if (l->fd >= 0)
                haven_frame_buffer_trim(&l->in);
        return 0;
}

static int link_on_io(sd_event_source *s, int fd, uint32_t revents,
                      void *userdata) {
        _cleanup_(link_unrefp) struct haven_msg_link *l = link_ref(userdata);
        int r = 0;

        if (revents & EPOLLOUT)
                r = link_flush(l);
        if (r >= 0 && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                r = link_read(l);
        if (l->freed || l->fd < 0)
                return 0;
        if (r < 0) {
                link_disconnect(l, r);
                return 0;
        }
        link_update_events(l);
        return 0;
}

/* Connects now. Returns 0 or a negative errno (not connected). */
static int link_connect(struct haven_msg_link *l) {
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
        } addr = {.un.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -EBADF;
        int r;

        memcpy(addr.un.sun_path, l->path, strlen(l->path));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, &addr.sa, sizeof(addr.un)) < 0)
                return -errno;
        r = sd_event_add_io(l->event, &l->io, fd, EPOLLIN, link_on_io, l);
        if (r < 0)
                return r;
        l->fd = TAKE_FD(fd);
        l->reconnect_next = l->reconnect_min;
        return 0;
}

static int link_on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        _cleanup_(link_unrefp) struct haven_msg_link *l = link_ref(userdata);
        int r;

        r = link_connect(l);
        if (r < 0) {
                (void) log_debug_errno(r,
                                       "Message link \"%s\": connect failed, "
                                       "retrying: %m",
                                       l->path);
                l->reconnect_next = MIN(l->reconnect_next * 2,
                                        l->reconnect_max);
                link_schedule_reconnect(l);
                return 0;
        }
        if (l->on_state)
                l->on_state(l, true, l->userdata);
        return 0;
}

/* Arms the retry timer: the first attempt at once, later ones after the
 * backoff. */
static void link_schedule_reconnect(struct haven_msg_link *l) {
        uint64_t delay = l->reconnect_next;
        int r;

        if (!l->retry) {
                r = haven_loop_add_timer(l->event, &l->retry, delay, 1000,
                                         link_on_retry, l);
                if (r < 0)
                        (void) log_debug_errno(r,
                                               "Message link \"%s\": cannot "
                                               "add retry timer: %m",
                                               l->path);
                return;
        }
        (void) sd_event_source_set_time_relative(l->retry, delay);
        (void) sd_event_source_set_enabled(l->retry, SD_EVENT_ONESHOT);
}

int haven_msg_link_new(sd_event *event, const struct haven_msg_link_config *c,
                       struct haven_msg_link **ret) {
        struct haven_msg_link *l;
        size_t path_len;

        assert(event);
        assert(c);
        assert(ret);

        path_len = c->path ? strlen(c->path) : 0;
        if (path_len == 0 ||
            path_len >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                return -EINVAL;
        if (c->max_size > HAVEN_MSG_SIZE_HARD_MAX)
                return -EINVAL;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->n_ref = 1;
        l->fd = -EBADF;
        l->event = sd_event_ref(event);
        l->path = strdup(c->path);
        if (!l->path) {
                link_unref(l);
                return -ENOMEM;
        }
        l->max_size = haven_frame_max_size(c->max_size);
        l->output_max = haven_frame_queue_max(l->max_size);
        l->reconnect_min = c->reconnect_min_usec ?: LINK_RECONNECT_MIN_USEC;
        l->reconnect_max = MAX(c->reconnect_max_usec ?: LINK_RECONNECT_MAX_USEC,
                               l->reconnect_min);
        l->on_event = c->on_event;
        l->on_state = c->on_state;
        l->userdata = c->userdata;
        l->next_id = 1;
        /* The first attempt runs from the loop, so on_state(true) never
         * fires before the caller has *ret. */
        l->reconnect_next = 0;
        link_schedule_reconnect(l);
        l->reconnect_next = l->reconnect_min;
        if (!l->retry) {
                link_unref(l);
                return -ENOMEM;
        }

        *ret = l;
        return 0;
}

struct haven_msg_link *haven_msg_link_free(struct haven_msg_link *l) {
        struct link_call *c;

        if (!l || l->freed)
                return NULL;
        link_ref(l);
        /* freed first: a callback that frees the link again is a no-op. */
        l->freed = true;
        while ((c = l->calls)) {
                l->calls = c->next;
                c->reply(l, -ECANCELED, NULL, c->userdata);
                free(c);
        }
        l->io = sd_event_source_disable_unref(l->io);
        l->retry = sd_event_source_disable_unref(l->retry);
        l->timeout = sd_event_source_disable_unref(l->timeout);
        l->fd = safe_close(l->fd);
        link_unref(l); /* ours */
        link_unref(l); /* the owner's */
        return NULL;
}

bool haven_msg_link_connected(struct haven_msg_link *l) {
        return l && !l->freed && l->fd >= 0;
}

int haven_msg_link_call(struct haven_msg_link *l, struct json_object *request,
                        uint64_t timeout_usec, haven_msg_reply_t reply,
                        void *userdata, uint64_t *ret_call_id) {
        _cleanup_free_ struct link_call *c = NULL;
        struct link_call **tail;
        bool was_idle;
        int r;

        assert(l);
        assert(json_object_is_type(request, json_type_object));
        assert(reply);

        if (!haven_msg_link_connected(l))
                return -ENOTCONN;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->id = l->next_id++;
        c->reply = reply;
        c->userdata = userdata;
        c->deadline = timeout_usec == 0 ? UINT64_MAX
                                        : haven_deadline_usec(timeout_usec);

        r = json_object_object_add(request, "tag",
                                   json_object_new_int64((int64_t) c->id));
        if (r < 0)
                return -ENOMEM;
        was_idle = haven_frame_buffer_size(&l->out) == 0;
        r = haven_frame_buffer_queue(&l->out, request, l->max_size,
                                     l->output_max);
        if (r < 0)
                return r;
        /* Written from the loop: the reply can then never arrive before
         * the call is on the list, and a broken socket is noticed there. */
        if (was_idle)
                link_update_events(l);

        if (ret_call_id)
                *ret_call_id = c->id;
        for (tail = &l->calls; *tail; tail = &(*tail)->next)
                ;
        *tail = TAKE_PTR(c);
        link_update_timeout(l);
        return 0;
}

void haven_msg_link_cancel(struct haven_msg_link *l, uint64_t call_id) {
        if (!l)
                return;
        free(link_take_call(l, call_id));
        if (!l->freed)
                link_update_timeout(l);
}
