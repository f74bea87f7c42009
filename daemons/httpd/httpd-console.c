/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VM consoles: GET /api/v1/vms/{id}/console becomes a WebSocket (RFC 6455,
 * framed by wslay on libmicrohttpd's upgrade) whose binary messages carry
 * the VM's VNC stream, whichever node runs the VM. Where it runs and its
 * VNC port come from the status map ("vm/NAME": {"node", "state",
 * "vnc_port"}, published by the node's VM controller). On this node the
 * proxy connects to 127.0.0.1:vnc_port; on another node it asks that
 * node's haven-httpd over the interconnect for the raw stream (GET
 * .../console/splice, upgraded to "haven-vnc", authenticated both ways by
 * an HMAC under a key derived from corosync's authkey), and relays it.
 * Every byte moves through bounded buffers on the loop, with backpressure
 * both ways. After a live migration the old stream ends, the WebSocket
 * closes, and the browser's reconnect finds the new node. Must not: block
 * the loop, buffer without bound, or open a stream for a request the
 * dispatcher did not let through.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <wslay/wslay.h>

#include "haven/log.h"
#include "haven/loop.h"
#include "httpd.h"

#define WEBSOCKET_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define SPLICE_PROTOCOL "haven-vnc"
#define PROOF_HEADER "X-Haven-Peer-Proof"
#define PEER_KEY_LABEL "haven-httpd node-to-node key v1"
#define AUTHKEY_MAX 4096u
/* Bytes waiting in either direction before reading that side stops. */
#define QUEUE_MAX (256u * 1024u)
#define READ_CHUNK (16u * 1024u)
/* Opening a stream (lookup, connect, the other node's answer). */
#define SETUP_TIMEOUT_USEC (10ull * 1000000ull)
#define HEAD_MAX 4096u
#define WS_MESSAGE_MAX (1024u * 1024u)
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* ==== Buffers ==== */

struct buffer {
        uint8_t *data;
        size_t start, end, allocated;
};

static size_t buffer_size(const struct buffer *b) {
        return b->end - b->start;
}

static int buffer_append(struct buffer *b, const void *data, size_t size) {
        if (b->end + size > b->allocated && b->start > 0) {
                memmove(b->data, b->data + b->start, b->end - b->start);
                b->end -= b->start;
                b->start = 0;
        }
        if (b->end + size > b->allocated) {
                size_t want = b->allocated ? b->allocated : 4096;
                uint8_t *p;

                while (want < b->end + size)
                        want *= 2;
                p = realloc(b->data, want);
                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->allocated = want;
        }
        memcpy(b->data + b->end, data, size);
        b->end += size;
        return 0;
}

static void buffer_consume(struct buffer *b, size_t n) {
        b->start += n;
        if (b->start == b->end)
                b->start = b->end = 0;
}

static void buffer_free(struct buffer *b) {
        free(b->data);
        *b = (struct buffer){};
}

/* ==== Consoles ==== */

enum console_kind {
        CONSOLE_WEBSOCKET, /* a browser's WebSocket */
        CONSOLE_SPLICE,    /* another node's raw stream */
};

enum upstream_stage {
        UPSTREAM_CONNECTING,
        UPSTREAM_HANDSHAKE, /* TLS to the other node's haven-httpd */
        UPSTREAM_REQUEST,   /* its answer to our request */
        UPSTREAM_READY,
};

struct httpd_console {
        struct httpd *httpd;
        struct console *consoles;
        size_t n_consoles;
};

struct console {
        struct httpd_console *owner;
        struct console *prev, *next;
        enum console_kind kind;
        char vm[64];
        bool freeing;

        /* Until the upgrade: the request, the setup's deadline. */
        struct httpd_request *request;
        sd_event_source *timeout;
        char accept[32];                  /* Sec-WebSocket-Accept */
        bool binary_protocol;             /* the client asked for "binary" */
        char proof[HTTPD_PEER_AUTH_SIZE]; /* a splice's answer to its caller */

        /* Upstream: the VNC server, or the other node's haven-httpd. */
        int up_fd;
        sd_event_source *up_source;
        enum upstream_stage stage;
        bool remote;
        gnutls_session_t up_tls;
        gnutls_certificate_credentials_t up_credentials;
        char expected_proof[HTTPD_PEER_AUTH_SIZE];
        struct buffer up_out;  /* to upstream */
        struct buffer up_head; /* the other node's answer head */
        struct buffer pending; /* from upstream, before the client is here */
        bool up_eof;

        /* The client, after the upgrade. */
        struct MHD_UpgradeResponseHandle *urh;
        int client_fd;
        sd_event_source *client_source;
        wslay_event_context_ptr ws;
        struct buffer client_in; /* what came with the request (extra_in) */
        struct buffer to_client; /* a splice's raw bytes */
        bool client_eof;
        bool close_queued;
};

static void console_free(struct console *c);
static void console_run(struct console *c);

static void console_unlink(struct console *c) {
        struct httpd_console *o = c->owner;

        if (!o)
                return;
        if (c->prev)
                c->prev->next = c->next;
        else
                o->consoles = c->next;
        if (c->next)
                c->next->prev = c->prev;
        o->n_consoles--;
        c->owner = NULL;
}

/* The request ended (or is being let go of): before the upgrade, the
 * console goes with it. */
static void on_request_end(void *userdata) {
        struct console *c = userdata;

        c->request = NULL;
        if (!c->freeing && !c->urh)
                console_free(c);
}

static void console_free(struct console *c) {
        struct httpd *h;

        if (!c || c->freeing)
                return;
        c->freeing = true;
        h = c->owner ? c->owner->httpd : NULL;
        console_unlink(c);
        if (c->request) {
                /* Its state is this console: let go of it first. */
                struct httpd_request *r = c->request;

                c->request = NULL;
                httpd_request_set_state(r, NULL, NULL);
        }
        c->timeout = sd_event_source_disable_unref(c->timeout);
        c->up_source = sd_event_source_disable_unref(c->up_source);
        c->client_source = sd_event_source_disable_unref(c->client_source);
        if (c->up_tls)
                gnutls_deinit(c->up_tls);
        if (c->up_credentials)
                gnutls_certificate_free_credentials(c->up_credentials);
        safe_close(c->up_fd);
        if (c->ws)
                wslay_event_context_free(c->ws);
        if (c->urh) {
                /* Closes the client's connection; libmicrohttpd ends the
                 * request (our state is gone already). It does so in its
                 * next run: wake it, or the socket stays open until some
                 * other request comes (a splice's caller would never see
                 * the end of a console that moved away). */
                (void) MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
                if (h)
                        httpd_wake(h);
        }
        buffer_free(&c->up_out);
        buffer_free(&c->up_head);
        buffer_free(&c->pending);
        buffer_free(&c->client_in);
        buffer_free(&c->to_client);
        free(c);
}

/* The setup failed: the request gets the error, the console goes. */
static void console_fail(struct console *c, enum httpd_error_code code,
                         const char *message) {
        struct httpd_request *r = c->request;

        log_info("Console of VM \"%s\": %s", c->vm, message);
        if (r && !c->urh)
                httpd_reply_code(r, code, NULL, "%s", message);
        console_free(c);
}

/* ==== The client side (after the upgrade) ==== */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *userdata) {
        struct console *c = userdata;
        ssize_t n;

        if (buffer_size(&c->client_in) > 0) {
                n = (ssize_t) (len < buffer_size(&c->client_in)
                                       ? len
                                       : buffer_size(&c->client_in));
                memcpy(buf, c->client_in.data + c->client_in.start, (size_t) n);
                buffer_consume(&c->client_in, (size_t) n);
                return n;
        }
        n = recv(c->client_fd, buf, len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
                return -1;
        }
        if (n <= 0) {
                c->client_eof = true;
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
                return -1;
        }
        return n;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *userdata) {
        struct console *c = userdata;
        ssize_t n = send(c->client_fd, data, len, MSG_NOSIGNAL);

        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
                return -1;
        }
        if (n < 0) {
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
                return -1;
        }
        return n;
}

static void ws_on_message(wslay_event_context_ptr ctx,
                          const struct wslay_event_on_msg_recv_arg *arg,
                          void *userdata) {
        struct console *c = userdata;

        /* Binary messages carry the stream; control frames are wslay's. */
        if (arg->opcode != WSLAY_BINARY_FRAME &&
            arg->opcode != WSLAY_TEXT_FRAME)
                return;
        if (buffer_append(&c->up_out, arg->msg, arg->msg_length) < 0)
                wslay_event_set_error(ctx, WSLAY_ERR_NOMEM);
}

/* Queues upstream bytes to the client: a binary message, or raw. */
static int to_client(struct console *c, const uint8_t *data, size_t size) {
        if (c->kind == CONSOLE_SPLICE)
                return buffer_append(&c->to_client, data, size);
        if (!c->ws)
                return buffer_append(&c->pending, data, size);
        return wslay_event_queue_msg(
                       c->ws,
                       &(struct wslay_event_msg){.opcode = WSLAY_BINARY_FRAME,
                                                 .msg = data,
                                                 .msg_length = size}) == 0
                       ? 0
                       : -EPIPE;
}

static size_t client_queued(const struct console *c) {
        if (c->kind == CONSOLE_SPLICE)
                return buffer_size(&c->to_client);
        return c->ws ? wslay_event_get_queued_msg_length(c->ws)
                     : buffer_size(&c->pending);
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents,
                        void *userdata) {
        console_run(userdata);
        return 0;
}

static void on_upgraded(void *cls, struct MHD_Connection *connection,
                        void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh) {
        struct console *c = cls;
        struct wslay_event_callbacks callbacks = {
                .recv_callback = ws_recv,
                .send_callback = ws_send,
                .on_msg_recv_callback = ws_on_message,
        };
        int flags, r;

        c->urh = urh;
        c->client_fd = sock;
        c->timeout = sd_event_source_disable_unref(c->timeout);
        flags = fcntl(sock, F_GETFL);
        if (flags < 0 || fcntl(sock, F_SETFL, flags | O_NONBLOCK) < 0)
                goto fail;
        if (extra_in_size > 0 &&
            buffer_append(&c->client_in, extra_in, extra_in_size) < 0)
                goto fail;
        if (c->kind == CONSOLE_WEBSOCKET) {
                if (wslay_event_context_server_init(&c->ws, &callbacks, c) != 0)
                        goto fail;
                wslay_event_config_set_max_recv_msg_length(c->ws,
                                                           WS_MESSAGE_MAX);
                if (buffer_size(&c->pending) > 0) {
                        r = to_client(c, c->pending.data + c->pending.start,
                                      buffer_size(&c->pending));
                        buffer_free(&c->pending);
                        if (r < 0)
                                goto fail;
                }
        } else if (buffer_size(&c->client_in) > 0) {
                r = buffer_append(&c->up_out,
                                  c->client_in.data + c->client_in.start,
                                  buffer_size(&c->client_in));
                buffer_free(&c->client_in);
                if (r < 0)
                        goto fail;
        }
        r = sd_event_add_io(httpd_event(c->owner->httpd), &c->client_source,
                            sock, EPOLLIN, on_client_io, c);
        if (r < 0)
                goto fail;
        log_info("Console of VM \"%s\": open (%s)", c->vm,
                 c->kind == CONSOLE_SPLICE ? "for another node"
                 : c->remote               ? "through another node"
                                           : "on this node");
        console_run(c);
        return;
fail:
        log_warning("Console of VM \"%s\": cannot start relaying", c->vm);
        console_free(c);
}

/* ==== Upstream ==== */

static ssize_t upstream_read(struct console *c, uint8_t *buf, size_t size) {
        ssize_t n;

        if (c->up_tls) {
                n = gnutls_record_recv(c->up_tls, buf, size);
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                        return -EAGAIN;
                return n < 0 ? -EIO : n;
        }
        n = recv(c->up_fd, buf, size, 0);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
        return n;
}

static ssize_t upstream_write(struct console *c, const uint8_t *buf,
                              size_t size) {
        ssize_t n;

        if (size > READ_CHUNK)
                size = READ_CHUNK;
        if (c->up_tls) {
                n = gnutls_record_send(c->up_tls, buf, size);
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                        return -EAGAIN;
                return n < 0 ? -EIO : n;
        }
        n = send(c->up_fd, buf, size, MSG_NOSIGNAL);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
        return n;
}

/* Writes what is queued for upstream. Returns 0 or a negative errno. */
static int upstream_flush(struct console *c) {
        while (buffer_size(&c->up_out) > 0) {
                ssize_t n = upstream_write(c, c->up_out.data + c->up_out.start,
                                           buffer_size(&c->up_out));

                if (n == -EAGAIN)
                        return 0;
                if (n <= 0)
                        return n < 0 ? (int) n : -EPIPE;
                buffer_consume(&c->up_out, (size_t) n);
        }
        return 0;
}

/* Everything upstream has, up to the client's queue limit. */
static int upstream_pull(struct console *c) {
        uint8_t buf[READ_CHUNK];

        while (!c->up_eof && client_queued(c) < QUEUE_MAX) {
                ssize_t n = upstream_read(c, buf, sizeof buf);
                int r;

                if (n == -EAGAIN)
                        return 0;
                if (n < 0)
                        return (int) n;
                if (n == 0) {
                        c->up_eof = true;
                        return 0;
                }
                r = to_client(c, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ==== Relaying ==== */

static void source_set(sd_event_source *s, uint32_t events) {
        if (!s)
                return;
        if (events == 0) {
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_io_events(s, events);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
}

/* The client side's step: read it (up to the upstream queue limit), and
 * write what is queued for it. Returns 0, 1 when it is finished, or a
 * negative errno. */
static int client_step(struct console *c) {
        uint8_t buf[READ_CHUNK];

        if (c->kind == CONSOLE_WEBSOCKET) {
                if (buffer_size(&c->up_out) < QUEUE_MAX &&
                    wslay_event_want_read(c->ws) &&
                    wslay_event_recv(c->ws) != 0)
                        return c->client_eof ? 1 : -EPROTO;
                if (c->up_eof && !c->close_queued &&
                    wslay_event_get_queued_msg_count(c->ws) == 0) {
                        /* The VM's VNC is gone (stopped, migrated). */
                        (void) wslay_event_queue_close(
                                c->ws, WSLAY_CODE_GOING_AWAY,
                                (const uint8_t *) "the console ended", 17);
                        c->close_queued = true;
                }
                if (wslay_event_want_write(c->ws) &&
                    wslay_event_send(c->ws) != 0)
                        return -EPIPE;
                if (!wslay_event_want_read(c->ws) &&
                    !wslay_event_want_write(c->ws))
                        return 1;
                return 0;
        }
        while (!c->client_eof && buffer_size(&c->up_out) < QUEUE_MAX) {
                ssize_t n = recv(c->client_fd, buf, sizeof buf, 0);

                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                if (n <= 0) {
                        c->client_eof = true;
                        break;
                }
                if (buffer_append(&c->up_out, buf, (size_t) n) < 0)
                        return -ENOMEM;
        }
        while (buffer_size(&c->to_client) > 0) {
                ssize_t n = send(c->client_fd,
                                 c->to_client.data + c->to_client.start,
                                 buffer_size(&c->to_client), MSG_NOSIGNAL);

                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                if (n < 0)
                        return -errno;
                buffer_consume(&c->to_client, (size_t) n);
        }
        if (c->client_eof || (c->up_eof && buffer_size(&c->to_client) == 0))
                return 1;
        return 0;
}

static int on_linger_timeout(sd_event_source *s, uint64_t usec,
                             void *userdata) {
        struct console *c = userdata;

        log_debug("Console of VM \"%s\": no close from the client", c->vm);
        console_free(c);
        return 0;
}

/* One pass both ways (the sources are level-triggered: what is left
 * wakes us again), then what to wait for. */
static void console_run(struct console *c) {
        uint32_t client = 0, up = 0;
        int r;

        r = upstream_pull(c);
        if (r >= 0)
                r = client_step(c);
        if (r == 0)
                r = upstream_flush(c);
        if (r == 0 && c->close_queued && !c->timeout &&
            sd_event_add_time_relative(
                    httpd_event(c->owner->httpd), &c->timeout, CLOCK_MONOTONIC,
                    SETUP_TIMEOUT_USEC, 0, on_linger_timeout, c) < 0)
                r = -ENOMEM;
        if (r == 1 || r < 0) {
                if (r < 0)
                        log_debug("Console of VM \"%s\": ended (%s)", c->vm,
                                  strerror(-r));
                else
                        log_info("Console of VM \"%s\": closed", c->vm);
                console_free(c);
                return;
        }
        if (c->kind == CONSOLE_WEBSOCKET) {
                if (wslay_event_want_read(c->ws) &&
                    buffer_size(&c->up_out) < QUEUE_MAX)
                        client |= EPOLLIN;
                if (wslay_event_want_write(c->ws))
                        client |= EPOLLOUT;
        } else {
                if (!c->client_eof && buffer_size(&c->up_out) < QUEUE_MAX)
                        client |= EPOLLIN;
                if (buffer_size(&c->to_client) > 0)
                        client |= EPOLLOUT;
        }
        if (!c->up_eof && client_queued(c) < QUEUE_MAX)
                up |= EPOLLIN;
        if (buffer_size(&c->up_out) > 0)
                up |= EPOLLOUT;
        /* TLS may hold decrypted bytes the socket will not announce. */
        if (c->up_tls && (up & EPOLLIN) &&
            gnutls_record_check_pending(c->up_tls) > 0)
                up |= EPOLLOUT;
        source_set(c->client_source, client);
        source_set(c->up_source, up);
}

/* ==== Opening ==== */

/* The stream is there: the client gets its 101 and the upgrade. */
static void console_answer(struct console *c) {
        struct httpd_request *r = c->request;
        struct MHD_Response *response;

        c->stage = UPSTREAM_READY;
        c->timeout = sd_event_source_disable_unref(c->timeout);
        /* Until the upgrade, upstream is not read beyond what arrived. */
        source_set(c->up_source, 0);
        response = MHD_create_response_for_upgrade(on_upgraded, c);
        if (!response) {
                console_fail(c, HTTPD_ERROR_INTERNAL, "out of memory");
                return;
        }
        if (c->kind == CONSOLE_WEBSOCKET) {
                if (MHD_add_response_header(response, "Upgrade", "websocket") !=
                            MHD_YES ||
                    MHD_add_response_header(response, "Sec-WebSocket-Accept",
                                            c->accept) != MHD_YES ||
                    (c->binary_protocol &&
                     MHD_add_response_header(response, "Sec-WebSocket-Protocol",
                                             "binary") != MHD_YES)) {
                        MHD_destroy_response(response);
                        console_fail(c, HTTPD_ERROR_INTERNAL, "out of memory");
                        return;
                }
        } else if (MHD_add_response_header(response, "Upgrade",
                                           SPLICE_PROTOCOL) != MHD_YES ||
                   MHD_add_response_header(response, PROOF_HEADER, c->proof) !=
                           MHD_YES) {
                MHD_destroy_response(response);
                console_fail(c, HTTPD_ERROR_INTERNAL, "out of memory");
                return;
        }
        httpd_reply_response(r, MHD_HTTP_SWITCHING_PROTOCOLS, response);
}

/* The other node's answer head: 101 with its proof, and what follows it
 * (the start of the stream). Returns 1 when done, 0 for more, or -EPROTO
 * after failing the console. */
static int remote_answer(struct console *c) {
        const uint8_t *head = c->up_head.data + c->up_head.start;
        const char *end, *proof;
        char status[64], value[HTTPD_PEER_AUTH_SIZE];
        size_t head_size;
        int code = 0;

        end = memmem(head, buffer_size(&c->up_head), "\r\n\r\n", 4);
        if (!end) {
                if (buffer_size(&c->up_head) > HEAD_MAX) {
                        console_fail(c, HTTPD_ERROR_UNAVAILABLE,
                                     "the node running the VM answered "
                                     "nonsense");
                        return -EPROTO;
                }
                return 0;
        }
        head_size = (size_t) (end - (const char *) head) + 4;
        snprintf(status, sizeof status, "%.*s",
                 (int) strcspn((const char *) head, "\r"), head);
        if (sscanf(status, "HTTP/1.%*d %d", &code) != 1 || code != 101) {
                char message[128];

                snprintf(message, sizeof message,
                         "the node running the VM refused the console (HTTP "
                         "%d)",
                         code);
                console_fail(c, HTTPD_ERROR_UNAVAILABLE, message);
                return -EPROTO;
        }
        /* It proves it knows the key, too. */
        proof = NULL;
        for (const char *p = (const char *) head;
             (p = memmem(p, head_size - (size_t) (p - (const char *) head),
                         "\r\n", 2));) {
                p += 2;
                if (strncasecmp(p, PROOF_HEADER ":",
                                strlen(PROOF_HEADER) + 1) == 0) {
                        proof = p + strlen(PROOF_HEADER) + 1;
                        proof += strspn(proof, " ");
                        break;
                }
        }
        if (proof)
                snprintf(value, sizeof value, "%.*s",
                         (int) strcspn(proof, "\r"), proof);
        if (!proof ||
            !httpd_equal_secret(value, strlen(value), c->expected_proof,
                                strlen(c->expected_proof))) {
                console_fail(c, HTTPD_ERROR_UNAVAILABLE,
                             "the node running the VM could not prove it "
                             "belongs to the cluster");
                return -EPROTO;
        }
        if (buffer_size(&c->up_head) > head_size &&
            to_client(c, head + head_size,
                      buffer_size(&c->up_head) - head_size) < 0) {
                console_fail(c, HTTPD_ERROR_INTERNAL, "out of memory");
                return -EPROTO;
        }
        buffer_free(&c->up_head);
        return 1;
}

static void upstream_setup_step(struct console *c);

static int on_upstream_io(sd_event_source *s, int fd, uint32_t revents,
                          void *userdata) {
        struct console *c = userdata;

        if (c->stage == UPSTREAM_READY) {
                if (c->urh)
                        console_run(c);
                return 0;
        }
        upstream_setup_step(c);
        return 0;
}

static int tls_start(struct console *c) {
        int r;

        r = gnutls_certificate_allocate_credentials(&c->up_credentials);
        if (r >= 0)
                r = gnutls_init(&c->up_tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
        if (r >= 0)
                r = gnutls_priority_set_direct(c->up_tls, TLS_PRIORITY, NULL);
        if (r >= 0)
                r = gnutls_credentials_set(c->up_tls, GNUTLS_CRD_CERTIFICATE,
                                           c->up_credentials);
        if (r < 0)
                return -EIO;
        /* No CA: the node proves itself with the HMAC answer. */
        gnutls_transport_set_int(c->up_tls, c->up_fd);
        return 0;
}

/* Drives the setup: connect, TLS, the other node's answer. */
static void upstream_setup_step(struct console *c) {
        int error = 0, r;
        socklen_t len = sizeof error;

        switch (c->stage) {
        case UPSTREAM_CONNECTING:
                if (getsockopt(c->up_fd, SOL_SOCKET, SO_ERROR, &error, &len) <
                            0 ||
                    error != 0) {
                        console_fail(c, HTTPD_ERROR_UNAVAILABLE,
                                     c->remote ? "the node running the VM "
                                                 "cannot be reached"
                                               : "the VM's VNC server does "
                                                 "not answer");
                        return;
                }
                if (!c->remote) {
                        console_answer(c);
                        return;
                }
                if (httpd_get_config(c->owner->httpd)->peer_tls) {
                        if (tls_start(c) < 0) {
                                console_fail(c, HTTPD_ERROR_INTERNAL,
                                             "TLS setup failed");
                                return;
                        }
                        c->stage = UPSTREAM_HANDSHAKE;
                } else
                        c->stage = UPSTREAM_REQUEST;
                upstream_setup_step(c);
                return;
        case UPSTREAM_HANDSHAKE:
                r = gnutls_handshake(c->up_tls);
                if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
                        source_set(c->up_source,
                                   gnutls_record_get_direction(c->up_tls)
                                           ? EPOLLOUT
                                           : EPOLLIN);
                        return;
                }
                if (r < 0) {
                        console_fail(c, HTTPD_ERROR_UNAVAILABLE,
                                     "TLS with the node running the VM "
                                     "failed");
                        return;
                }
                c->stage = UPSTREAM_REQUEST;
                upstream_setup_step(c);
                return;
        case UPSTREAM_REQUEST: {
                uint8_t buf[READ_CHUNK];
                ssize_t n;

                r = upstream_flush(c);
                if (r < 0) {
                        console_fail(c, HTTPD_ERROR_UNAVAILABLE,
                                     "the node running the VM went away");
                        return;
                }
                for (;;) {
                        n = upstream_read(c, buf, sizeof buf);
                        if (n == -EAGAIN)
                                break;
                        if (n <= 0) {
                                console_fail(c, HTTPD_ERROR_UNAVAILABLE,
                                             "the node running the VM went "
                                             "away");
                                return;
                        }
                        if (buffer_append(&c->up_head, buf, (size_t) n) < 0) {
                                console_fail(c, HTTPD_ERROR_INTERNAL,
                                             "out of memory");
                                return;
                        }
                        r = remote_answer(c);
                        if (r < 0)
                                return;
                        if (r > 0) {
                                console_answer(c);
                                return;
                        }
                }
                source_set(
                        c->up_source,
                        EPOLLIN | (buffer_size(&c->up_out) > 0 ? EPOLLOUT : 0));
                return;
        }
        case UPSTREAM_READY:
                return;
        }
}

static int on_setup_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct console *c = userdata;

        c->timeout = sd_event_source_disable_unref(c->timeout);
        console_fail(c, HTTPD_ERROR_UNAVAILABLE,
                     "opening the console took too long");
        return 0;
}

/* Starts connecting to address:port (IP literals). */
static int upstream_connect(struct console *c, const char *address,
                            uint16_t port) {
        struct addrinfo hints = {.ai_flags = AI_NUMERICHOST,
                                 .ai_socktype = SOCK_STREAM},
                        *ai = NULL;
        char service[8];
        int one = 1, r;

        snprintf(service, sizeof service, "%u", port);
        if (getaddrinfo(address, service, &hints, &ai) != 0)
                return -EADDRNOTAVAIL;
        c->up_fd = socket(ai->ai_family,
                          SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->up_fd < 0) {
                r = -errno;
                freeaddrinfo(ai);
                return r;
        }
        (void) setsockopt(c->up_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        r = connect(c->up_fd, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        if (r < 0 && errno != EINPROGRESS)
                return -errno;
        c->stage = UPSTREAM_CONNECTING;
        r = sd_event_add_io(httpd_event(c->owner->httpd), &c->up_source,
                            c->up_fd, EPOLLOUT, on_upstream_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(httpd_event(c->owner->httpd),
                                               &c->timeout, CLOCK_MONOTONIC,
                                               SETUP_TIMEOUT_USEC, 0,
                                               on_setup_timeout, c);
        return r;
}

/* ==== Looking the VM up ==== */

struct lookup {
        enum console_kind kind;
        char vm[64];
        char accept[32];
        bool binary_protocol;
        int64_t self;    /* this node's id */
        int64_t runs_on; /* the node that published the VM's entry */
        int64_t vnc_port;
        char peer_auth[HTTPD_PEER_AUTH_SIZE]; /* a splice's, for its proof */
};

static void lookup_free(void *p) {
        free(p);
}

/* Makes the console and starts its upstream (local VNC, or the other
 * node at address). */
static void console_start(struct httpd_request *r, const char *address) {
        struct httpd_console *owner = httpd_console(httpd_request_server(r));
        const struct httpd_config *config =
                httpd_get_config(httpd_request_server(r));
        struct lookup *l = httpd_request_get_state(r);
        int64_t vnc_port = l->vnc_port;
        struct console *c;
        int ret;

        c = calloc(1, sizeof *c);
        if (!c) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        *c = (struct console){.owner = owner,
                              .kind = l->kind,
                              .request = r,
                              .up_fd = -1,
                              .client_fd = -1,
                              .remote = address != NULL,
                              .binary_protocol = l->binary_protocol};
        memcpy(c->vm, l->vm, sizeof c->vm);
        memcpy(c->accept, l->accept, sizeof c->accept);
        if (c->kind == CONSOLE_SPLICE) {
                const char *nonce = strchr(l->peer_auth, ':'), *end;
                char n[80];
                uint64_t t = strtoull(l->peer_auth, NULL, 10);

                end = nonce ? strchr(nonce + 1, ':') : NULL;
                snprintf(n, sizeof n, "%.*s",
                         nonce && end ? (int) (end - nonce - 1) : 0,
                         nonce ? nonce + 1 : "");
                httpd_peer_auth_format(httpd_peer_key(httpd_request_server(r)),
                                       "101", httpd_request_match(r)->path, t,
                                       n, c->proof);
        }
        c->next = owner->consoles;
        if (owner->consoles)
                owner->consoles->prev = c;
        owner->consoles = c;
        owner->n_consoles++;
        /* The console lives as long as its request until the upgrade;
         * the lookup (l) goes now. */
        httpd_request_set_state(r, c, on_request_end);
        l = NULL;
        httpd_request_hold(r, NULL, NULL);

        if (address) {
                char path[128], auth[HTTPD_PEER_AUTH_SIZE], head[512];
                uint8_t random[16];
                char nonce[33];
                uint64_t now = haven_now_usec(CLOCK_REALTIME);

                if (gnutls_rnd(GNUTLS_RND_NONCE, random, sizeof random) < 0) {
                        console_fail(c, HTTPD_ERROR_INTERNAL,
                                     "no random numbers");
                        return;
                }
                for (size_t i = 0; i < sizeof random; i++)
                        snprintf(nonce + 2 * i, 3, "%02x", random[i]);
                snprintf(path, sizeof path,
                         HTTPD_API_PREFIX "/vms/%" PRIi64 "/console/splice",
                         httpd_request_match(r)->id);
                httpd_peer_auth_format(httpd_peer_key(httpd_request_server(r)),
                                       "GET", path, now, nonce, auth);
                httpd_peer_auth_format(httpd_peer_key(httpd_request_server(r)),
                                       "101", path, now, nonce,
                                       c->expected_proof);
                snprintf(head, sizeof head,
                         "GET %s HTTP/1.1\r\nHost: %s%s%s:%u\r\n"
                         "Connection: Upgrade\r\nUpgrade: " SPLICE_PROTOCOL
                         "\r\n" HTTPD_PEER_HEADER ": %s\r\n\r\n",
                         path, strchr(address, ':') ? "[" : "", address,
                         strchr(address, ':') ? "]" : "", config->peer_port,
                         auth);
                if (buffer_append(&c->up_out, head, strlen(head)) < 0) {
                        console_fail(c, HTTPD_ERROR_INTERNAL, "out of memory");
                        return;
                }
                ret = upstream_connect(c, address, config->peer_port);
        } else
                ret = upstream_connect(c, "127.0.0.1", (uint16_t) vnc_port);
        if (ret < 0)
                console_fail(c, HTTPD_ERROR_UNAVAILABLE,
                             address ? "the node running the VM cannot be "
                                       "reached"
                                     : "the VM's VNC server does not answer");
}

static void on_node_row(struct httpd_request *r, struct json_object *reply,
                        const struct httpd_error *error) {
        struct lookup *l = httpd_request_get_state(r);
        struct json_object *rows = httpd_reply_rows(reply), *addresses, *a;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (httpd_array_length(rows) != 1 ||
            haven_json_get_array(json_object_array_get_idx(rows, 0),
                                 "addresses", &addresses) < 0 ||
            httpd_array_length(addresses) < 1 ||
            !json_object_is_type(a = json_object_array_get_idx(addresses, 0),
                                 json_type_string)) {
                httpd_reply_code(r, HTTPD_ERROR_UNAVAILABLE, NULL,
                                 "VM \"%s\" runs on node %" PRIi64
                                 ", which has no interconnect address",
                                 l->vm, l->runs_on);
                return;
        }
        console_start(r, json_object_get_string(a));
}

static void on_vm_entries(struct httpd_request *r, struct json_object *reply,
                          const struct httpd_error *error) {
        struct lookup *l = httpd_request_get_state(r);
        struct json_object *entries, *found = NULL, *value = NULL;
        char key[80];
        const char *state = NULL;
        int ret;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        snprintf(key, sizeof key, "vm/%s", l->vm);
        if (haven_json_get_array(reply, "entries", &entries) >= 0)
                for (size_t i = 0; i < httpd_array_length(entries); i++) {
                        struct json_object *e =
                                json_object_array_get_idx(entries, i);
                        const char *k = "";
                        int64_t node = 0;

                        (void) haven_json_get_string(e, "key", &k);
                        (void) haven_json_get_int64(e, "node", &node);
                        if (!streq(k, key))
                                continue;
                        /* A splice serves only what this node runs. */
                        if (l->kind == CONSOLE_SPLICE && node != l->self)
                                continue;
                        found = e;
                        l->runs_on = node;
                        if (node == l->self)
                                break;
                }
        if (found)
                (void) json_object_object_get_ex(found, "value", &value);
        (void) haven_json_get_string(value, "state", &state);
        if (!found ||
            (state && !streq(state, "running") && !streq(state, "paused"))) {
                httpd_reply_code(r, HTTPD_ERROR_CONFLICT, NULL,
                                 "VM \"%s\" is not running%s", l->vm,
                                 l->kind == CONSOLE_SPLICE ? " on this node"
                                                           : "");
                return;
        }
        if (haven_json_get_int64(value, "vnc_port", &l->vnc_port) < 0 ||
            l->vnc_port < 1 || l->vnc_port > 65535) {
                httpd_reply_code(r, HTTPD_ERROR_CONFLICT, NULL,
                                 "VM \"%s\" has no VNC console", l->vm);
                return;
        }
        if (l->runs_on == l->self) {
                console_start(r, NULL);
                return;
        }
        if (!httpd_peer_key(httpd_request_server(r))) {
                httpd_reply_code(r, HTTPD_ERROR_UNAVAILABLE, NULL,
                                 "VM \"%s\" runs on another node, and this "
                                 "node has no node-to-node key (corosync's "
                                 "authkey)",
                                 l->vm);
                return;
        }
        ret = httpd_domain_call(
                r,
                httpd_query_new("nodes",
                                httpd_where_int("node_id", l->runs_on)),
                on_node_row);
        if (ret < 0)
                httpd_reply_failure(r, NULL, ret);
}

static void on_status(struct httpd_request *r, struct json_object *reply,
                      const struct httpd_error *error) {
        struct lookup *l = httpd_request_get_state(r);
        struct json_object *req;
        char prefix[80];
        int ret;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        (void) haven_json_get_int64(reply, "node_id", &l->self);
        snprintf(prefix, sizeof prefix, "vm/%s", l->vm);
        req = httpd_msg_new("status-read");
        if (req &&
            haven_json_add(req, "prefix", json_object_new_string(prefix)) < 0) {
                json_object_put(req);
                req = NULL;
        }
        ret = httpd_domain_call(r, req, on_vm_entries);
        if (ret < 0)
                httpd_reply_failure(r, NULL, ret);
}

static void on_vm_row(struct httpd_request *r, struct json_object *reply,
                      const struct httpd_error *error) {
        struct lookup *l = httpd_request_get_state(r);
        struct json_object *rows = httpd_reply_rows(reply);
        const char *name = NULL;
        int ret;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (httpd_array_length(rows) != 1 ||
            haven_json_get_string(json_object_array_get_idx(rows, 0), "name",
                                  &name) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_NOT_FOUND, "id",
                                 "vms has no row %" PRIi64,
                                 httpd_request_match(r)->id);
                return;
        }
        snprintf(l->vm, sizeof l->vm, "%s", name);
        ret = httpd_domain_call(r, httpd_msg_new("status"), on_status);
        if (ret < 0)
                httpd_reply_failure(r, NULL, ret);
}

static int lookup_start(struct httpd_request *r, struct lookup *l) {
        httpd_request_set_state(r, l, lookup_free);
        return httpd_domain_call(
                r,
                httpd_query_new(
                        "vms",
                        httpd_where_int("id", httpd_request_match(r)->id)),
                on_vm_row);
}

/* ==== WebSocket handshake ==== */

int httpd_websocket_accept(const char *key, char buf[29]) {
        gnutls_datum_t in = {.data = (unsigned char *) key,
                             .size = key ? (unsigned) strlen(key) : 0},
                       raw = {}, out = {};
        char text[64];
        uint8_t digest[20];
        int r;

        /* The key: 16 random bytes in base64 (24 characters). */
        if (!key || in.size != 24 || gnutls_base64_decode2(&in, &raw) < 0)
                return -EINVAL;
        r = raw.size == 16 ? 0 : -EINVAL;
        gnutls_free(raw.data);
        if (r < 0)
                return r;
        snprintf(text, sizeof text, "%s" WEBSOCKET_GUID, key);
        if (gnutls_hash_fast(GNUTLS_DIG_SHA1, text, strlen(text), digest) < 0)
                return -EIO;
        in = (gnutls_datum_t){.data = digest, .size = sizeof digest};
        if (gnutls_base64_encode2(&in, &out) < 0)
                return -ENOMEM;
        r = out.size == 28 ? 0 : -EIO;
        if (r >= 0) {
                memcpy(buf, out.data, 28);
                buf[28] = '\0';
        }
        gnutls_free(out.data);
        return r;
}

/* Whether the comma-separated header value holds token (any case). */
static bool header_has_token(const char *value, const char *token) {
        size_t n = strlen(token);

        for (const char *p = value; p && *p;) {
                p += strspn(p, " \t,");
                if (strncasecmp(p, token, n) == 0 &&
                    (p[n] == '\0' || p[n] == ',' || p[n] == ' ' ||
                     p[n] == '\t'))
                        return true;
                p = strchr(p, ',');
        }
        return false;
}

/* An Origin must be this server: "scheme://" + Host. */
static bool origin_ok(const char *origin, const char *host) {
        const char *p;

        if (!origin)
                return true; /* not a browser, or a same-origin fetch */
        if (!host)
                return false;
        p = strstr(origin, "://");
        return p && strcasecmp(p + 3, host) == 0;
}

int httpd_console_open(struct httpd_request *r) {
        const char *upgrade = httpd_request_header(r, "Upgrade"),
                   *connection = httpd_request_header(r, "Connection"),
                   *version = httpd_request_header(r, "Sec-WebSocket-Version"),
                   *key = httpd_request_header(r, "Sec-WebSocket-Key"),
                   *protocols =
                           httpd_request_header(r, "Sec-WebSocket-Protocol");
        struct lookup *l;

        if (!upgrade || !header_has_token(upgrade, "websocket") ||
            !connection || !header_has_token(connection, "upgrade")) {
                httpd_reply_code(r, HTTPD_ERROR_BAD_REQUEST, NULL,
                                 "the console is a WebSocket: send Upgrade: "
                                 "websocket");
                return 0;
        }
        if (!version || !streq(version, "13")) {
                httpd_reply_code(r, HTTPD_ERROR_BAD_REQUEST, NULL,
                                 "WebSocket version 13 only");
                (void) httpd_reply_header(r, "Sec-WebSocket-Version", "13");
                return 0;
        }
        /* Cross-site WebSocket hijacking: the cookie is SameSite=Strict,
         * and the page must be ours. */
        if (!origin_ok(httpd_request_header(r, "Origin"),
                       httpd_request_header(r, "Host"))) {
                httpd_reply_code(r, HTTPD_ERROR_CSRF, NULL,
                                 "the WebSocket's Origin is not this server");
                return 0;
        }
        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->kind = CONSOLE_WEBSOCKET;
        l->binary_protocol = protocols && header_has_token(protocols, "binary");
        if (httpd_websocket_accept(key, l->accept) < 0) {
                free(l);
                httpd_reply_code(r, HTTPD_ERROR_BAD_REQUEST, NULL,
                                 "a bad Sec-WebSocket-Key");
                return 0;
        }
        return lookup_start(r, l);
}

int httpd_console_splice(struct httpd_request *r) {
        const char *upgrade = httpd_request_header(r, "Upgrade"),
                   *auth = httpd_request_header(r, HTTPD_PEER_HEADER);
        struct lookup *l;

        if (!upgrade || !header_has_token(upgrade, SPLICE_PROTOCOL)) {
                httpd_reply_code(r, HTTPD_ERROR_BAD_REQUEST, NULL,
                                 "send Upgrade: " SPLICE_PROTOCOL);
                return 0;
        }
        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->kind = CONSOLE_SPLICE;
        /* The dispatcher checked it; it seeds our proof. */
        snprintf(l->peer_auth, sizeof l->peer_auth, "%s", auth ? auth : "");
        return lookup_start(r, l);
}

/* ==== The node-to-node key ==== */

int httpd_peer_key_load(const char *authkey_path,
                        uint8_t ret[HTTPD_PEER_KEY_SIZE]) {
        _cleanup_close_ int fd = -1;
        uint8_t key[AUTHKEY_MAX];
        ssize_t n;
        int r = 0;

        fd = open(authkey_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, key, sizeof key);
        if (n < 0)
                r = -errno;
        else if (n < 16)
                r = -EBADMSG; /* corosync's keys are 128..4096 bytes */
        else if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, (size_t) n,
                                  PEER_KEY_LABEL, strlen(PEER_KEY_LABEL),
                                  ret) < 0)
                r = -EIO;
        explicit_bzero(key, sizeof key);
        return r;
}

/* ==== Setup ==== */

int httpd_console_new(struct httpd *h, struct httpd_console **ret) {
        struct httpd_console *c = calloc(1, sizeof *c);

        if (!c)
                return -ENOMEM;
        c->httpd = h;
        *ret = c;
        return 0;
}

size_t httpd_console_sessions(const struct httpd_console *c) {
        return c ? c->n_consoles : 0;
}

struct httpd_console *httpd_console_free(struct httpd_console *c) {
        if (!c)
                return NULL;
        while (c->consoles)
                console_free(c->consoles);
        free(c);
        return NULL;
}
