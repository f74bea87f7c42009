/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven-httpd (daemons/httpd/): the real server
 * (libmicrohttpd on the loop, 127.0.0.x only, a free port) driven by
 * clients in this process: plain sockets, GnuTLS for HTTPS, never
 * blocking (every wait pumps the loop and is bounded by a deadline, never
 * by sleeping). haven-domaind needs corosync for anything but reads, so a
 * stand-in on a real haven/msg.h socket answers its protocol
 * (docs/domain.md: status, query, submit, subscribe); the lab's system
 * tests run the real one. Pure parts (path decoding, sessions,
 * throttling, Accept-Encoding, hashed names) are tested directly, with
 * time as an argument.
 *
 * Bad inputs tried:
 *   routing: unknown paths inside and outside /api, wrong methods, an
 *     unknown method, paths with %2e%2e, %2f, %00, %zz, control
 *     characters, "." and ".." segments, overlong paths, row ids "abc",
 *     "0", "007", 2^63, unknown and malformed query flags, too many
 *     query parameters;
 *   bodies: not JSON, empty, trailing garbage, an array, JSON null, a
 *     missing field, an extra field, a wrong type, an empty and an
 *     overlong string, a body on a bodiless route, a wrong Content-Type,
 *     an announced and a chunked body over the limit, a malformed
 *     Content-Length;
 *   sessions: no cookie, a malformed, unknown, expired, logged-out and
 *     evicted token, a missing and a wrong CSRF token;
 *   logins: wrong passwords, unknown names, names with control
 *     characters, repeated failures per account and per address, the
 *     right password while blocked, parallel attempts;
 *   static files: ../, %2e%2e%2f, %2f..%2f, an encoded NUL, hidden
 *     files, symbolic links to a file and to a directory outside, missing
 *     files, q=0 for gzip;
 *   connections: 100 slow partial requests, silent connections, more
 *     connections from one address than allowed, an event stream whose
 *     client does not read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "haven/log.h"
#include "haven/msg.h"
#include "../../daemons/httpd/httpd.h"

#include "test-util.h"
#include "test-tmp.h"

#define WAIT_USEC (10u * 1000u * 1000u)
#define ADMIN "admin"
#define PASSWORD "correct horse battery"

/* ==== The haven-domaind stand-in ==== */

struct standin {
        struct haven_msg_server *server;
        bool quorate;
        bool silent;              /* answer nothing (waiting tests) */
        const char *submit_error; /* answer submits with this code */
        const char *submit_error_field;
        struct haven_msg_conn *subscriber;
        struct json_object *hosts;       /* rows */
        struct json_object *last_submit; /* the request, as received */
        unsigned n_queries, n_submits;
        int64_t version;
};

struct fixture {
        char dir[64], ui[96], state[96], socket[96];
        sd_event *event;
        struct standin domain;
        struct httpd_config config;
        struct httpd *httpd;
        uint16_t port;
};

static const char *admin_hash(void) {
        static char hash[CRYPT_OUTPUT_SIZE];
        struct crypt_data data = {};
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];

        if (!hash[0]) {
                assert_non_null(
                        crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt));
                assert_non_null(crypt_rn(PASSWORD, salt, &data, sizeof data));
                snprintf(hash, sizeof hash, "%s", data.output);
        }
        return hash;
}

static int standin_send(struct haven_msg_conn *conn, struct json_object *req,
                        struct json_object *reply) {
        struct json_object *tag;

        if (json_object_object_get_ex(req, "tag", &tag))
                json_object_object_add(reply, "tag", json_object_get(tag));
        return haven_msg_conn_send(conn, reply);
}

static int standin_error(struct haven_msg_conn *conn, struct json_object *req,
                         const char *code, const char *message,
                         const char *field) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *e = json_object_new_object();

        json_object_object_add(e, "code", json_object_new_string(code));
        json_object_object_add(e, "message", json_object_new_string(message));
        json_object_object_add(e, "field", haven_json_string_or_null(field));
        json_object_object_add(o, "error", e);
        return standin_send(conn, req, o);
}

static int standin_query(struct standin *s, struct haven_msg_conn *conn,
                         struct json_object *req) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *rows = json_object_new_array(), *where = NULL;
        const char *table = "", *name = NULL;
        int64_t id = 0;

        (void) haven_json_get_string(req, "table", &table);
        (void) haven_json_get_object(req, "where", &where);
        (void) haven_json_get_string(where, "name", &name);
        (void) haven_json_get_int64(where, "id", &id);
        s->n_queries++;
        if (streq(table, "administrators") && name && streq(name, ADMIN)) {
                struct json_object *row = json_object_new_object();

                json_object_object_add(row, "id", json_object_new_int64(1));
                json_object_object_add(row, "version",
                                       json_object_new_int64(1));
                json_object_object_add(row, "name",
                                       json_object_new_string(ADMIN));
                json_object_object_add(row, "password_hash",
                                       json_object_new_string(admin_hash()));
                json_object_array_add(rows, row);
        } else if (streq(table, "hosts"))
                for (size_t i = 0; i < json_object_array_length(s->hosts);
                     i++) {
                        struct json_object *row =
                                json_object_array_get_idx(s->hosts, i);
                        int64_t row_id = 0;

                        (void) haven_json_get_int64(row, "id", &row_id);
                        if (id == 0 || row_id == id)
                                json_object_array_add(rows,
                                                      json_object_get(row));
                }
        json_object_object_add(o, "rows", rows);
        return standin_send(conn, req, o);
}

static int standin_submit(struct standin *s, struct haven_msg_conn *conn,
                          struct json_object *req) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *results = json_object_new_array(), *result;

        s->n_submits++;
        json_object_put(s->last_submit);
        s->last_submit = json_object_get(req);
        if (!s->quorate) {
                json_object_put(results);
                return standin_error(conn, req, "no-quorum",
                                     "votequorum says no", NULL);
        }
        if (s->submit_error) {
                json_object_put(results);
                return standin_error(conn, req, s->submit_error,
                                     "refused by the stand-in",
                                     s->submit_error_field);
        }
        s->version++;
        result = json_object_new_object();
        json_object_object_add(result, "id", json_object_new_int64(42));
        json_object_array_add(results, result);
        json_object_object_add(o, "version", json_object_new_int64(s->version));
        json_object_object_add(o, "results", results);
        return standin_send(conn, req, o);
}

static int standin_handler(struct haven_msg_conn *conn, struct json_object *req,
                           void *userdata) {
        struct standin *s = userdata;
        const char *name = "";

        (void) haven_json_get_string(req, "request", &name);
        if (streq(name, "subscribe")) {
                _cleanup_(json_object_putp) struct json_object *o =
                        json("{\"subscribed\": true}");

                haven_msg_conn_unref(s->subscriber);
                s->subscriber = haven_msg_conn_ref(conn);
                return standin_send(conn, req, o);
        }
        if (s->silent)
                return 0;
        if (streq(name, "status")) {
                _cleanup_(json_object_putp) struct json_object *o =
                        json("{\"quorate\": true, \"synced\": true, "
                             "\"version\": 7, \"node_name\": \"node1\", "
                             "\"members\": [{\"id\": 1, \"name\": \"node1\", "
                             "\"state\": \"active\", \"online\": true}]}");

                json_object_object_add(o, "quorate",
                                       json_object_new_boolean(s->quorate));
                return standin_send(conn, req, o);
        }
        if (streq(name, "query"))
                return standin_query(s, conn, req);
        if (streq(name, "submit"))
                return standin_submit(s, conn, req);
        return standin_error(conn, req, "invalid", "unknown request",
                             "request");
}

static void standin_start(struct fixture *f) {
        struct haven_msg_server_config config = {
                .path = f->socket,
                .mode = 0600,
                .handler = standin_handler,
                .userdata = &f->domain,
        };

        assert_int_equal(
                haven_msg_server_new(f->event, &config, &f->domain.server), 0);
}

static void standin_stop(struct fixture *f) {
        f->domain.subscriber = haven_msg_conn_unref(f->domain.subscriber);
        f->domain.server = haven_msg_server_free(f->domain.server);
}

/* Pushes an event to httpd's subscription, as domaind does. */
static void standin_push(struct fixture *f, const char *text) {
        _cleanup_(json_object_putp) struct json_object *o = json(text);

        assert_non_null(f->domain.subscriber);
        assert_int_equal(haven_msg_conn_send(f->domain.subscriber, o), 0);
}

/* ==== Files ==== */

static void write_file(const char *dir, const char *name, const char *text) {
        char path[256];
        FILE *file;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        file = fopen(path, "we");
        assert_non_null(file);
        fputs(text, file);
        assert_int_equal(fclose(file), 0);
}

/* A gzip member holding "gzipped\n" (gzip -n -9). */
static const unsigned char gz_bytes[] = {
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03,
        0x4b, 0xaf, 0xca, 0x2c, 0x28, 0x48, 0x4d, 0xe1, 0x02, 0x00,
        0x19, 0xa9, 0x5a, 0xe5, 0x08, 0x00, 0x00, 0x00,
};

static void make_ui(struct fixture *f) {
        char path[256];
        int fd;

        assert_int_equal(mkdir(f->ui, 0755), 0);
        snprintf(path, sizeof path, "%s/assets", f->ui);
        assert_int_equal(mkdir(path, 0755), 0);
        write_file(f->ui, "index.html",
                   "<!doctype html><title>Haven</title>\n");
        write_file(f->ui, "assets/app-3f2a9c1e.js", "console.log('app');\n");
        write_file(f->ui, "assets/style.css", "body { margin: 0 }\n");
        write_file(f->ui, "logo.svg", "<svg/>\n");
        write_file(f->ui, ".env", "SECRET\n");
        snprintf(path, sizeof path, "%s/assets/app-3f2a9c1e.js.gz", f->ui);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, gz_bytes, sizeof gz_bytes),
                         (ssize_t) sizeof gz_bytes);
        close(fd);

        /* Outside the UI directory, and links that lead there. */
        write_file(f->dir, "secret.txt", "SECRET\n");
        snprintf(path, sizeof path, "%s/leak.txt", f->ui);
        assert_int_equal(symlink("../secret.txt", path), 0);
        snprintf(path, sizeof path, "%s/leakdir", f->ui);
        assert_int_equal(symlink("..", path), 0);
}

/* ==== Fixture ==== */

static void httpd_start(struct fixture *f) {
        assert_int_equal(httpd_new(f->event, &f->config, &f->httpd), 0);
        f->port = httpd_port(f->httpd);
        assert_true(f->port > 0);
}

static void httpd_stop(struct fixture *f) {
        f->httpd = httpd_free(f->httpd);
}

static void pump(struct fixture *f, uint64_t usec) {
        assert_true(sd_event_run(f->event, usec) >= 0);
}

/* Runs the loop until httpd's link to the stand-in has subscribed. */
static void wait_subscribed(struct fixture *f) {
        uint64_t deadline = now_usec() + WAIT_USEC;

        while (!f->domain.subscriber ||
               !httpd_domain_connected(httpd_domain(f->httpd))) {
                assert_true(now_usec() < deadline);
                pump(f, 10000);
        }
        /* The subscription's answer reaches httpd too. */
        for (int i = 0; i < 20; i++)
                pump(f, 1000);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-httpd-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->ui, sizeof f->ui, "%s/ui", f->dir);
        snprintf(f->state, sizeof f->state, "%s/state", f->dir);
        snprintf(f->socket, sizeof f->socket, "%s/domaind.sock", f->dir);
        assert_int_equal(mkdir(f->state, 0700), 0);
        make_ui(f);
        assert_int_equal(sd_event_new(&f->event), 0);

        f->domain.quorate = true;
        f->domain.version = 10;
        f->domain.hosts = json("[{\"id\": 3, \"version\": 9, \"name\": "
                               "\"ntp1\", \"address\": \"198.18.0.50\"}]");
        standin_start(f);

        httpd_config_init(&f->config);
        f->config.listen_address = "127.0.0.1";
        f->config.port = 0;
        f->config.tls = false;
        f->config.ui_dir = f->ui;
        f->config.domaind_socket = f->socket;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;

        httpd_stop(f);
        standin_stop(f);
        json_object_put(f->domain.hosts);
        json_object_put(f->domain.last_submit);
        sd_event_unref(f->event);
        remove_tree(f->dir);
        free(f);
        return 0;
}

/* ==== The client ==== */

struct client {
        int fd;
        gnutls_session_t tls;
        gnutls_certificate_credentials_t credentials;
        bool handshaken;
        char *out;
        size_t out_size, out_done;
        char *in;
        size_t in_size;
        bool eof;
};

struct response {
        int status;
        char *head; /* status line and headers */
        char *body;
        size_t body_size;
};

static void response_done(struct response *r) {
        free(r->head);
        free(r->body);
        *r = (struct response){};
}

/* The value of header name (first one), copied into buf; NULL if absent. */
static const char *header(const struct response *r, const char *name, char *buf,
                          size_t size) {
        const char *p = r->head;

        while ((p = strstr(p, "\r\n"))) {
                p += 2;
                if (strncasecmp(p, name, strlen(name)) == 0 &&
                    p[strlen(name)] == ':') {
                        const char *v = p + strlen(name) + 1;
                        size_t n;

                        v += strspn(v, " ");
                        n = strcspn(v, "\r\n");
                        snprintf(buf, size, "%.*s", (int) n, v);
                        return buf;
                }
        }
        return NULL;
}

static struct client *client_connect_from(struct fixture *f, const char *source,
                                          bool tls) {
        struct client *c = calloc(1, sizeof *c);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(f->port)};

        assert_non_null(c);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c->fd >= 0);
        if (source) {
                struct sockaddr_in from = {.sin_family = AF_INET};

                assert_int_equal(inet_pton(AF_INET, source, &from.sin_addr), 1);
                assert_int_equal(
                        bind(c->fd, (struct sockaddr *) &from, sizeof from), 0);
        }
        assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
        /* Completes in the kernel (listen backlog), without the loop. */
        assert_int_equal(connect(c->fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
        if (tls) {
                assert_int_equal(gnutls_certificate_allocate_credentials(
                                         &c->credentials),
                                 0);
                assert_int_equal(
                        gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK),
                        0);
                assert_int_equal(gnutls_set_default_priority(c->tls), 0);
                assert_int_equal(gnutls_credentials_set(c->tls,
                                                        GNUTLS_CRD_CERTIFICATE,
                                                        c->credentials),
                                 0);
                gnutls_transport_set_int(c->tls, c->fd);
        }
        return c;
}

static struct client *client_connect(struct fixture *f) {
        return client_connect_from(f, NULL, f->config.tls);
}

static void client_close(struct client *c) {
        if (!c)
                return;
        if (c->tls)
                gnutls_deinit(c->tls);
        if (c->credentials)
                gnutls_certificate_free_credentials(c->credentials);
        close(c->fd);
        free(c->out);
        free(c->in);
        free(c);
}

static void client_queue(struct client *c, const void *data, size_t size) {
        c->out = realloc(c->out, c->out_size + size);
        assert_non_null(c->out);
        memcpy(c->out + c->out_size, data, size);
        c->out_size += size;
}

static void client_queue_text(struct client *c, const char *text) {
        client_queue(c, text, strlen(text));
}

/* One step: the loop once (waiting at most 1 ms), then whatever the
 * socket takes and gives without blocking. */
static void client_step(struct fixture *f, struct client *c) {
        char buf[16384];
        ssize_t n;

        pump(f, 1000);
        if (c->tls && !c->handshaken) {
                int r = gnutls_handshake(c->tls);

                if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
                        return;
                assert_int_equal(r, 0);
                c->handshaken = true;
        }
        while (c->out_done < c->out_size) {
                n = c->tls ? gnutls_record_send(c->tls, c->out + c->out_done,
                                                c->out_size - c->out_done)
                           : send(c->fd, c->out + c->out_done,
                                  c->out_size - c->out_done, MSG_NOSIGNAL);
                if (n < 0)
                        break; /* full, or closed by the server */
                c->out_done += (size_t) n;
        }
        while (!c->eof) {
                n = c->tls ? gnutls_record_recv(c->tls, buf, sizeof buf)
                           : recv(c->fd, buf, sizeof buf, 0);
                if (n == 0 || (n < 0 && !c->tls && errno != EAGAIN) ||
                    (n < 0 && c->tls && n != GNUTLS_E_AGAIN)) {
                        c->eof = true;
                        break;
                }
                if (n < 0)
                        break;
                c->in = realloc(c->in, c->in_size + (size_t) n + 1);
                assert_non_null(c->in);
                memcpy(c->in + c->in_size, buf, (size_t) n);
                c->in_size += (size_t) n;
                c->in[c->in_size] = '\0';
        }
}

/* Decodes a chunked body in [p, end) into *ret. Returns the bytes used,
 * or 0 while incomplete. */
static size_t dechunk(const char *p, const char *end, struct response *ret) {
        const char *start = p;

        for (;;) {
                const char *line_end = memmem(p, (size_t) (end - p), "\r\n", 2);
                size_t n;

                if (!line_end)
                        return 0;
                n = strtoul(p, NULL, 16);
                p = line_end + 2;
                if (n == 0) {
                        if (end - p < 2)
                                return 0;
                        return (size_t) (p + 2 - start);
                }
                if ((size_t) (end - p) < n + 2)
                        return 0;
                ret->body = realloc(ret->body, ret->body_size + n + 1);
                assert_non_null(ret->body);
                memcpy(ret->body + ret->body_size, p, n);
                ret->body_size += n;
                ret->body[ret->body_size] = '\0';
                p += n + 2;
        }
}

/* Takes one complete response off the front of c's input. Returns true
 * if there was one. */
static bool response_take(struct client *c, bool head_only,
                          struct response *ret) {
        char buf[64];
        const char *end, *body;
        size_t head_size, used;

        if (!c->in)
                return false;
        end = strstr(c->in, "\r\n\r\n");
        if (!end)
                return false;
        head_size = (size_t) (end - c->in);
        body = end + 4;
        *ret = (struct response){.head = strndup(c->in, head_size)};
        assert_non_null(ret->head);
        assert_int_equal(sscanf(ret->head, "HTTP/1.%*d %d", &ret->status), 1);
        if (head_only || ret->status == 304 || ret->status == 204)
                used = 0;
        else if (header(ret, "Transfer-Encoding", buf, sizeof buf)) {
                used = dechunk(body, c->in + c->in_size, ret);
                if (used == 0) {
                        response_done(ret);
                        return false;
                }
        } else if (header(ret, "Content-Length", buf, sizeof buf)) {
                used = strtoul(buf, NULL, 10);
                if ((size_t) (c->in + c->in_size - body) < used) {
                        response_done(ret);
                        return false;
                }
        } else {
                if (!c->eof) {
                        response_done(ret);
                        return false;
                }
                used = (size_t) (c->in + c->in_size - body);
        }
        if (!ret->body) {
                ret->body = malloc(used + 1);
                assert_non_null(ret->body);
                memcpy(ret->body, body, used);
                ret->body[used] = '\0';
                ret->body_size = used;
        }
        used += (size_t) (body - c->in);
        memmove(c->in, c->in + used, c->in_size - used + 1);
        c->in_size -= used;
        return true;
}

/* Pumps until a whole response arrived (true) or the connection ended or
 * the deadline passed (false). */
static bool client_wait(struct fixture *f, struct client *c, bool head_only,
                        struct response *ret) {
        uint64_t deadline = now_usec() + WAIT_USEC;

        while (now_usec() < deadline) {
                client_step(f, c);
                if (response_take(c, head_only, ret))
                        return true;
                if (c->eof)
                        return false;
        }
        return false;
}

/* Pumps until c's input holds text. */
static bool client_wait_text(struct fixture *f, struct client *c,
                             const char *text, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        while (now_usec() < deadline) {
                client_step(f, c);
                if (c->in && strstr(c->in, text))
                        return true;
                if (c->eof)
                        return false;
        }
        return false;
}

static bool client_wait_eof(struct fixture *f, struct client *c,
                            uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        while (!c->eof && now_usec() < deadline)
                client_step(f, c);
        return c->eof;
}

struct session {
        char token[HTTPD_TOKEN_SIZE + 8];
        char csrf[HTTPD_TOKEN_SIZE + 8];
};

/* Sends one request: extra_headers ("Name: value\r\n" lines) and body
 * may be NULL. A session adds its cookie and (for writes) CSRF token. */
static void request_queue(struct client *c, const char *method,
                          const char *path, const struct session *s,
                          const char *extra_headers, const char *body) {
        char head[4096];

        snprintf(head, sizeof head,
                 "%s %s HTTP/1.1\r\nHost: node1\r\n%s%s%s%s%s%s%s", method,
                 path, s ? "Cookie: " HTTPD_SESSION_COOKIE "=" : "",
                 s ? s->token : "", s ? "\r\n" : "",
                 s && s->csrf[0] && !streq(method, "GET") ? HTTPD_CSRF_HEADER
                         ": "
                                                          : "",
                 s && s->csrf[0] && !streq(method, "GET") ? s->csrf : "",
                 s && s->csrf[0] && !streq(method, "GET") ? "\r\n" : "",
                 extra_headers ? extra_headers : "");
        client_queue_text(c, head);
        if (body) {
                char length[96];

                snprintf(length, sizeof length,
                         "Content-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         strlen(body));
                client_queue_text(c, length);
                client_queue_text(c, body);
        } else
                client_queue_text(c, "\r\n");
}

/* One request on a new connection from source (NULL: 127.0.0.1); the
 * response must come. */
static void http_from(struct fixture *f, const char *source, const char *method,
                      const char *path, const struct session *s,
                      const char *extra_headers, const char *body,
                      struct response *ret) {
        struct client *c = client_connect_from(f, source, f->config.tls);

        request_queue(c, method, path, s, extra_headers, body);
        if (!client_wait(f, c, streq(method, "HEAD"), ret)) {
                fprintf(stderr, "%s %s: no answer (%s): %s\n", method, path,
                        c->eof ? "closed" : "timeout", c->in ? c->in : "");
                fail();
        }
        client_close(c);
}

/* The response is an error in the one shape, with this code and field. */
static void assert_error(const struct response *r, int status, const char *code,
                         const char *field) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *e, *v;
        const char *s;
        char buf[64];

        if (r->status != status)
                fprintf(stderr, "unexpected: %s\n%s\n", r->head, r->body);
        assert_int_equal(r->status, status);
        assert_non_null(header(r, "Content-Type", buf, sizeof buf));
        assert_string_equal(buf, "application/json");
        assert_int_equal(haven_json_parse(r->body, r->body_size, 65536, &o), 0);
        assert_int_equal(json_object_object_length(o), 1);
        assert_int_equal(haven_json_get_object(o, "error", &e), 0);
        assert_int_equal(json_object_object_length(e), 3);
        assert_int_equal(haven_json_get_string(e, "code", &s), 0);
        assert_string_equal(s, code);
        assert_int_equal(haven_json_get_string(e, "message", &s), 0);
        assert_true(strlen(s) > 0);
        assert_true(json_object_object_get_ex(e, "field", &v));
        if (field) {
                assert_int_equal(haven_json_get_string(e, "field", &s), 0);
                assert_string_equal(s, field);
        } else
                assert_null(v);
}

static void http(struct fixture *f, const char *method, const char *path,
                 const struct session *s, const char *extra_headers,
                 const char *body, struct response *ret) {
        http_from(f, NULL, method, path, s, extra_headers, body, ret);
}

static struct json_object *body_json(const struct response *r) {
        struct json_object *o = NULL;

        assert_int_equal(haven_json_parse(r->body, r->body_size, 1u << 20, &o),
                         0);
        return o;
}

static void login(struct fixture *f, struct session *ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct response r;
        const char *csrf;
        char cookie[256];

        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"" ADMIN "\", \"password\": \"" PASSWORD "\"}", &r);
        assert_int_equal(r.status, 200);
        assert_non_null(header(&r, "Set-Cookie", cookie, sizeof cookie));
        assert_int_equal(strncmp(cookie, HTTPD_SESSION_COOKIE "=",
                                 strlen(HTTPD_SESSION_COOKIE) + 1),
                         0);
        snprintf(ret->token, sizeof ret->token, "%.*s",
                 (int) strcspn(cookie + strlen(HTTPD_SESSION_COOKIE) + 1, ";"),
                 cookie + strlen(HTTPD_SESSION_COOKIE) + 1);
        o = body_json(&r);
        assert_int_equal(haven_json_get_string(o, "csrf_token", &csrf), 0);
        snprintf(ret->csrf, sizeof ret->csrf, "%s", csrf);
        response_done(&r);
}

static void start(struct fixture *f) {
        httpd_start(f);
        wait_subscribed(f);
}

/* ==== Routing ==== */

static void unknown_paths_are_404_in_the_error_shape(void **state) {
        struct fixture *f = *state;
        struct response r;

        start(f);
        http(f, "GET", "/api/v1/nothing", NULL, NULL, NULL, &r);
        assert_error(&r, 404, "not-found", NULL);
        response_done(&r);
        http(f, "GET", "/api", NULL, NULL, NULL, &r);
        assert_error(&r, 404, "not-found", NULL);
        response_done(&r);
        /* A missing file with an extension is no application route. */
        http(f, "GET", "/missing.js", NULL, NULL, NULL, &r);
        assert_error(&r, 404, "not-found", NULL);
        response_done(&r);
}

static void wrong_method_is_405_with_allow(void **state) {
        struct fixture *f = *state;
        struct response r;
        char allow[64];

        start(f);
        http(f, "PUT", "/api/v1/hosts", NULL, NULL, NULL, &r);
        assert_error(&r, 405, "method-not-allowed", NULL);
        assert_non_null(header(&r, "Allow", allow, sizeof allow));
        assert_string_equal(allow, "GET, POST");
        response_done(&r);

        http(f, "PATCH", "/api/v1/session", NULL, NULL, NULL, &r);
        assert_error(&r, 405, "method-not-allowed", NULL);
        assert_string_equal(header(&r, "Allow", allow, sizeof allow),
                            "GET, POST, DELETE");
        response_done(&r);

        http(f, "BREW", "/api/v1/status", NULL, NULL, NULL, &r);
        assert_error(&r, 405, "method-not-allowed", NULL);
        response_done(&r);

        http(f, "POST", "/index.html", NULL, NULL, NULL, &r);
        assert_error(&r, 405, "method-not-allowed", NULL);
        assert_string_equal(header(&r, "Allow", allow, sizeof allow),
                            "GET, HEAD");
        response_done(&r);
}

/* Every route but the public ones, with any body, answers 401 without a
 * session, and so does a cookie that is not a live session. */
static void every_route_without_session_is_401(void **state) {
        static const char *const cookies[] = {
                NULL,
                "Cookie: " HTTPD_SESSION_COOKIE "=\r\n",
                "Cookie: " HTTPD_SESSION_COOKIE "=abc\r\n",
                "Cookie: " HTTPD_SESSION_COOKIE
                "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
        };
        struct fixture *f = *state;
        const struct httpd_route *routes;
        size_t n, checked = 0;

        start(f);
        routes = httpd_api_routes(&n);
        for (size_t i = 0; i < n; i++) {
                char path[256];

                if (routes[i].permission == HTTPD_PUBLIC)
                        continue;
                snprintf(path, sizeof path, "%s", routes[i].pattern);
                if (strstr(path, "{id}"))
                        strcpy(strstr(path, "{id}"), "3");
                for (size_t k = 0; k < ELEMENTSOF(cookies); k++) {
                        struct response r;

                        http(f, httpd_method_to_string(routes[i].method), path,
                             NULL, cookies[k],
                             routes[i].policy ? "{\"name\": \"x\"}" : NULL, &r);
                        assert_error(&r, 401, "unauthorized", NULL);
                        response_done(&r);
                }
                checked++;
        }
        assert_true(checked >= 7);
        /* Nothing reached haven-domaind. */
        assert_int_equal(f->domain.n_queries, 0);
        assert_int_equal(f->domain.n_submits, 0);
}

static void writes_without_csrf_token_are_403(void **state) {
        struct fixture *f = *state;
        struct session s, no_csrf, wrong_csrf;
        struct response r;

        start(f);
        login(f, &s);
        no_csrf = s;
        no_csrf.csrf[0] = '\0';
        wrong_csrf = s;
        wrong_csrf.csrf[0] = wrong_csrf.csrf[0] == 'A' ? 'B' : 'A';

        http(f, "POST", "/api/v1/hosts", &no_csrf, NULL,
             "{\"name\": \"a\", \"address\": \"198.18.0.9\"}", &r);
        assert_error(&r, 403, "csrf", NULL);
        response_done(&r);
        http(f, "DELETE", "/api/v1/hosts/3", &wrong_csrf, NULL, NULL, &r);
        assert_error(&r, 403, "csrf", NULL);
        response_done(&r);
        http(f, "DELETE", "/api/v1/session", &no_csrf, NULL, NULL, &r);
        assert_error(&r, 403, "csrf", NULL);
        response_done(&r);
        assert_int_equal(f->domain.n_submits, 0);

        /* Reads need none; the session still works. */
        http(f, "GET", "/api/v1/session", &no_csrf, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);
}

static void bad_bodies_are_400_naming_the_field(void **state) {
        static const struct {
                const char *body, *code, *field;
        } cases[] = {
                {"{", "bad-request", NULL},
                {"{\"name\": \"a\", \"address\": \"1.2.3.4\"} x", "bad-request",
                 NULL},
                {"{'name': 'a'}", "bad-request", NULL},
                {"[1, 2]", "invalid", NULL},
                {"null", "invalid", NULL},
                {"{\"address\": \"198.18.0.9\"}", "invalid", "name"},
                {"{\"name\": \"a\"}", "invalid", "address"},
                {"{\"name\": \"a\", \"address\": \"198.18.0.9\", \"color\": "
                 "\"red\"}",
                 "invalid", "color"},
                {"{\"name\": 5, \"address\": \"198.18.0.9\"}", "invalid",
                 "name"},
                {"{\"name\": \"a\", \"address\": [\"198.18.0.9\"]}", "invalid",
                 "address"},
                {"{\"name\": \"\", \"address\": \"198.18.0.9\"}", "invalid",
                 "name"},
                {"{\"name\": \"a\", \"address\": "
                 "\"198.18.0.9.1.2.3.4.5.6.7.8.9.0.1.2.3.4.5.6.7.8.9\"}",
                 "invalid", "address"},
                {"{\"name\": null, \"address\": \"198.18.0.9\"}", "invalid",
                 "name"},
        };
        struct fixture *f = *state;
        struct session s;
        struct response r;

        start(f);
        login(f, &s);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                http(f, "POST", "/api/v1/hosts", &s, NULL, cases[i].body, &r);
                assert_error(&r, 400, cases[i].code, cases[i].field);
                response_done(&r);
        }
        /* An empty body where one is needed. */
        http(f, "POST", "/api/v1/hosts", &s, "Content-Length: 0\r\n", NULL, &r);
        assert_error(&r, 400, "bad-request", NULL);
        response_done(&r);
        /* Login is validated the same way, before any password check. */
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"admin\", \"password\": \"x\", \"remember\": true}",
             &r);
        assert_error(&r, 400, "invalid", "remember");
        response_done(&r);
        http(f, "POST", "/api/v1/session", NULL, NULL, "{\"name\": \"admin\"}",
             &r);
        assert_error(&r, 400, "invalid", "password");
        response_done(&r);
        assert_int_equal(f->domain.n_submits, 0);
}

static void bodies_need_json_and_bodiless_routes_take_none(void **state) {
        struct fixture *f = *state;
        struct session s;
        struct response r;
        struct client *c;

        start(f);
        login(f, &s);
        c = client_connect(f);
        request_queue(c, "POST", "/api/v1/hosts", &s,
                      "Content-Type: text/plain\r\nContent-Length: 2\r\n",
                      NULL);
        client_queue_text(c, "{}");
        assert_true(client_wait(f, c, false, &r));
        assert_error(&r, 415, "unsupported-media-type", NULL);
        response_done(&r);
        client_close(c);

        http(f, "DELETE", "/api/v1/hosts/3", &s, NULL, "{}", &r);
        assert_error(&r, 400, "bad-request", NULL);
        response_done(&r);
        http(f, "GET", "/index.html", NULL, NULL, "{}", &r);
        assert_error(&r, 400, "bad-request", NULL);
        response_done(&r);
}

static void oversized_bodies_are_413(void **state) {
        struct fixture *f = *state;
        struct session s;
        struct response r;
        struct client *c;
        char *big;

        start(f);
        login(f, &s);
        /* Announced: refused on the head, nothing read. */
        c = client_connect(f);
        request_queue(c, "POST", "/api/v1/hosts", &s,
                      "Content-Type: application/json\r\n"
                      "Content-Length: 1048577\r\n",
                      NULL);
        assert_true(client_wait(f, c, false, &r));
        assert_error(&r, 413, "too-large", NULL);
        response_done(&r);
        client_close(c);

        /* Chunked: refused once the limit is passed. */
        big = malloc(HTTPD_BODY_MAX + 2);
        assert_non_null(big);
        memset(big, ' ', HTTPD_BODY_MAX + 1);
        big[0] = '{';
        big[HTTPD_BODY_MAX] = '}';
        big[HTTPD_BODY_MAX + 1] = '\0';
        c = client_connect(f);
        request_queue(c, "POST", "/api/v1/hosts", &s,
                      "Content-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n",
                      NULL);
        {
                char chunk_head[32];

                snprintf(chunk_head, sizeof chunk_head, "%zx\r\n",
                         (size_t) HTTPD_BODY_MAX + 1);
                client_queue_text(c, chunk_head);
                client_queue(c, big, HTTPD_BODY_MAX + 1);
                client_queue_text(c, "\r\n0\r\n\r\n");
        }
        assert_true(client_wait(f, c, false, &r));
        assert_error(&r, 413, "too-large", NULL);
        response_done(&r);
        client_close(c);

        /* Exactly at the limit is fine (and then validated). */
        big[HTTPD_BODY_MAX - 1] = '}';
        big[HTTPD_BODY_MAX] = '\0';
        http(f, "POST", "/api/v1/hosts", &s, NULL, big, &r);
        assert_error(&r, 400, "invalid", "name");
        response_done(&r);
        free(big);

        /* Login's limit is small: anybody may send it. */
        big = malloc(HTTPD_LOGIN_BODY_MAX + 64);
        assert_non_null(big);
        snprintf(big, HTTPD_LOGIN_BODY_MAX + 64,
                 "{\"name\": \"admin\", \"password\": \"%0*d\"}",
                 (int) HTTPD_LOGIN_BODY_MAX, 0);
        http(f, "POST", "/api/v1/session", NULL, NULL, big, &r);
        assert_error(&r, 413, "too-large", NULL);
        response_done(&r);
        free(big);
        assert_int_equal(f->domain.n_submits, 0);
}

static void bad_parameters_and_flags_are_400(void **state) {
        static const char *const bad_ids[] = {
                "abc", "0", "007", "-1", "9223372036854775808", "1.5",
        };
        struct fixture *f = *state;
        struct session s;
        struct response r;
        char path[128];

        start(f);
        login(f, &s);
        for (size_t i = 0; i < ELEMENTSOF(bad_ids); i++) {
                snprintf(path, sizeof path, "/api/v1/hosts/%s", bad_ids[i]);
                http(f, "DELETE", path, &s, NULL, NULL, &r);
                assert_error(&r, 400, "invalid", "id");
                response_done(&r);
        }
        http(f, "POST", "/api/v1/hosts?later=1", &s, NULL,
             "{\"name\": \"a\", \"address\": \"198.18.0.9\"}", &r);
        assert_error(&r, 400, "invalid", "later");
        response_done(&r);
        http(f, "POST", "/api/v1/hosts?now=maybe", &s, NULL,
             "{\"name\": \"a\", \"address\": \"198.18.0.9\"}", &r);
        assert_error(&r, 400, "invalid", "now");
        response_done(&r);
        http(f, "GET", "/api/v1/hosts?now=1", &s, NULL, NULL, &r);
        assert_error(&r, 400, "invalid", "now");
        response_done(&r);
        http(f, "GET", "/api/v1/status?a&b&c&d&e&f&g&h&i", &s, NULL, NULL, &r);
        assert_error(&r, 400, "bad-request", NULL);
        response_done(&r);
        assert_int_equal(f->domain.n_submits, 0);
}

/* ==== Sessions and login ==== */

static void login_gives_cookie_and_logout_ends_it(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct session s;
        struct response r;
        const char *name;
        char cookie[256];
        int64_t expires;

        start(f);
        login(f, &s);
        assert_int_equal(strlen(s.token), 43);
        assert_int_equal(strlen(s.csrf), 43);
        assert_string_not_equal(s.token, s.csrf);

        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}", &r);
        assert_non_null(header(&r, "Set-Cookie", cookie, sizeof cookie));
        assert_non_null(strstr(cookie, "; HttpOnly"));
        assert_non_null(strstr(cookie, "; SameSite=Strict"));
        assert_non_null(strstr(cookie, "; Path=/"));
        assert_non_null(strstr(cookie, "; Max-Age=43200"));
        assert_null(strstr(cookie, "Secure")); /* plain HTTP here */
        response_done(&r);

        http(f, "GET", "/api/v1/session", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_int_equal(haven_json_get_string(o, "administrator", &name), 0);
        assert_string_equal(name, ADMIN);
        assert_int_equal(haven_json_get_int64(o, "expires_at", &expires), 0);
        assert_true((uint64_t) expires > haven_now_usec(CLOCK_REALTIME));
        assert_true((uint64_t) expires <=
                    haven_now_usec(CLOCK_REALTIME) + HTTPD_SESSION_IDLE_USEC);
        response_done(&r);

        http(f, "DELETE", "/api/v1/session", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(header(&r, "Set-Cookie", cookie, sizeof cookie));
        assert_non_null(strstr(cookie, "Max-Age=0"));
        response_done(&r);

        http(f, "GET", "/api/v1/session", &s, NULL, NULL, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        response_done(&r);
}

static void wrong_password_and_unknown_name_look_alike(void **state) {
        struct fixture *f = *state;
        uint64_t wrong = UINT64_MAX, unknown = UINT64_MAX;
        struct response a, b;

        start(f);
        for (int i = 0; i < 3; i++) {
                uint64_t t0 = now_usec(), t1;
                char source[2][32];

                /* Each from its own address: below the throttle. */
                snprintf(source[0], sizeof source[0], "127.0.0.%d", 40 + i);
                snprintf(source[1], sizeof source[1], "127.0.0.%d", 50 + i);
                http_from(f, source[0], "POST", "/api/v1/session", NULL, NULL,
                          "{\"name\": \"admin\", \"password\": \"wrong\"}", &a);
                t1 = now_usec();
                if (t1 - t0 < wrong)
                        wrong = t1 - t0;
                http_from(f, source[1], "POST", "/api/v1/session", NULL, NULL,
                          "{\"name\": \"nobody\", \"password\": \"wrong\"}",
                          &b);
                if (now_usec() - t1 < unknown)
                        unknown = now_usec() - t1;
                assert_error(&a, 401, "unauthorized", NULL);
                assert_error(&b, 401, "unauthorized", NULL);
                assert_string_equal(a.body, b.body);
                response_done(&a);
                response_done(&b);
        }
        /* Both paths check a yescrypt hash of the same cost. */
        assert_true(unknown * 3 > wrong && wrong * 3 > unknown);
}

static void
login_is_throttled_per_account_even_with_right_password(void **state) {
        struct fixture *f = *state;
        struct response r;
        char retry[32];

        start(f);
        for (unsigned i = 0; i < HTTPD_THROTTLE_FAILURES; i++) {
                char source[32];
                struct client *c;

                /* From several addresses: the account's count. */
                snprintf(source, sizeof source, "127.0.0.%u", 10 + i);
                c = client_connect_from(f, source, false);
                request_queue(c, "POST", "/api/v1/session", NULL, NULL,
                              "{\"name\": \"admin\", \"password\": \"guess\"}");
                assert_true(client_wait(f, c, false, &r));
                assert_error(&r, 401, "unauthorized", NULL);
                response_done(&r);
                client_close(c);
        }
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}", &r);
        assert_error(&r, 429, "throttled", NULL);
        assert_non_null(header(&r, "Retry-After", retry, sizeof retry));
        assert_true(atoi(retry) >= 1 &&
                    atoi(retry) <= (int) (HTTPD_THROTTLE_BLOCK_USEC / 1000000));
        response_done(&r);

        /* Another account from this address is not blocked by that. */
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"other\", \"password\": \"x\"}", &r);
        assert_error(&r, 401, "unauthorized", NULL);
        response_done(&r);
}

static void login_is_throttled_per_address(void **state) {
        struct fixture *f = *state;
        struct response r;
        struct client *c;

        start(f);
        for (unsigned i = 0; i < HTTPD_THROTTLE_FAILURES; i++) {
                char body[128];

                snprintf(body, sizeof body,
                         "{\"name\": \"user%u\", \"password\": \"guess\"}", i);
                c = client_connect_from(f, "127.0.0.20", false);
                request_queue(c, "POST", "/api/v1/session", NULL, NULL, body);
                assert_true(client_wait(f, c, false, &r));
                assert_error(&r, 401, "unauthorized", NULL);
                response_done(&r);
                client_close(c);
        }
        c = client_connect_from(f, "127.0.0.20", false);
        request_queue(c, "POST", "/api/v1/session", NULL, NULL,
                      "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}");
        assert_true(client_wait(f, c, false, &r));
        assert_error(&r, 429, "throttled", NULL);
        response_done(&r);
        client_close(c);

        /* Other addresses still log in. */
        c = client_connect_from(f, "127.0.0.21", false);
        request_queue(c, "POST", "/api/v1/session", NULL, NULL,
                      "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}");
        assert_true(client_wait(f, c, false, &r));
        assert_int_equal(r.status, 200);
        response_done(&r);
        client_close(c);
}

/* While a password is checked (a worker thread), the loop answers. */
static void password_check_does_not_stop_the_loop(void **state) {
        struct fixture *f = *state;
        struct client *slow, *fast;
        struct response r;
        bool login_done = false;
        uint64_t deadline = now_usec() + WAIT_USEC;

        start(f);
        slow = client_connect(f);
        request_queue(slow, "POST", "/api/v1/session", NULL, NULL,
                      "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}");
        fast = client_connect(f);
        /* The login reached its worker. */
        while (f->domain.n_queries == 0) {
                assert_true(now_usec() < deadline);
                client_step(f, slow);
        }
        request_queue(fast, "GET", "/logo.svg", NULL, NULL, NULL);
        assert_true(client_wait(f, fast, false, &r));
        assert_int_equal(r.status, 200);
        response_done(&r);
        login_done = response_take(slow, false, &r);
        if (login_done)
                response_done(&r);
        assert_false(login_done);
        assert_true(client_wait(f, slow, false, &r));
        assert_int_equal(r.status, 200);
        response_done(&r);
        client_close(fast);
        client_close(slow);
}

static void sessions_expire_when_idle_and_absolutely(void **state) {
        struct httpd_session_limits limits = {
                .idle_usec = 100, .max_usec = 1000, .max_sessions = 4};
        _cleanup_(httpd_sessions_freep) struct httpd_sessions *s = NULL;
        const struct httpd_session *session;
        char token[HTTPD_TOKEN_SIZE];

        assert_int_equal(httpd_sessions_new(&limits, &s), 0);
        assert_int_equal(httpd_sessions_create(s, "admin", 0, token, &session),
                         0);
        assert_int_equal(httpd_session_expiry(s, session), 100);
        /* Sliding: each use moves the idle expiry. */
        for (uint64_t t = 90; t < 1000; t += 90)
                assert_non_null(httpd_sessions_find(s, token, t));
        /* Absolute: gone at 1000 however busy. */
        assert_null(httpd_sessions_find(s, token, 1000));
        assert_int_equal(httpd_sessions_count(s), 0);

        assert_int_equal(httpd_sessions_create(s, "admin", 2000, token, NULL),
                         0);
        assert_null(httpd_sessions_find(s, token, 2100)); /* idle */
        assert_int_equal(httpd_sessions_count(s), 0);
}

static void sessions_are_bounded_and_tokens_checked(void **state) {
        struct httpd_session_limits limits = {
                .idle_usec = 1000, .max_usec = 10000, .max_sessions = 3};
        _cleanup_(httpd_sessions_freep) struct httpd_sessions *s = NULL;
        char tokens[4][HTTPD_TOKEN_SIZE], bad[HTTPD_TOKEN_SIZE];
        const struct httpd_session *session;

        assert_int_equal(httpd_sessions_new(&limits, &s), 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(httpd_sessions_create(s, "admin", (uint64_t) i,
                                                       tokens[i], NULL),
                                 0);
        /* Token 0 used recently: token 1 is the least recently used. */
        assert_non_null(httpd_sessions_find(s, tokens[0], 5));
        assert_int_equal(
                httpd_sessions_create(s, "other", 6, tokens[3], &session), 0);
        assert_int_equal(httpd_sessions_count(s), 3);
        assert_null(httpd_sessions_find(s, tokens[1], 7));
        assert_non_null(httpd_sessions_find(s, tokens[0], 7));
        assert_non_null(httpd_sessions_find(s, tokens[2], 7));

        session = httpd_sessions_find(s, tokens[3], 7);
        assert_non_null(session);
        assert_true(httpd_session_csrf_ok(session, session->csrf_token));
        assert_false(httpd_session_csrf_ok(session, NULL));
        assert_false(httpd_session_csrf_ok(session, ""));
        assert_false(httpd_session_csrf_ok(session, tokens[3]));

        /* Malformed and near-miss tokens. */
        assert_null(httpd_sessions_find(s, "", 7));
        assert_null(httpd_sessions_find(s, NULL, 7));
        memcpy(bad, tokens[0], sizeof bad);
        bad[42] = bad[42] == 'A' ? 'B' : 'A';
        assert_null(httpd_sessions_find(s, bad, 7));
        memcpy(bad, tokens[0], sizeof bad);
        bad[20] = '.';
        assert_null(httpd_sessions_find(s, bad, 7));

        assert_int_equal(httpd_sessions_remove(s, tokens[0]), 0);
        assert_int_equal(httpd_sessions_remove(s, tokens[0]), -ENOENT);
        assert_int_equal(httpd_sessions_remove_administrator(s, "admin"), 1);
        assert_int_equal(httpd_sessions_count(s), 1);
        assert_int_equal(httpd_sessions_create(s, "", 8, bad, NULL), -EINVAL);
}

static void throttle_blocks_grow_and_success_resets(void **state) {
        struct httpd_throttle_policy policy = {.failures = 3,
                                               .window_usec = 100,
                                               .block_usec = 10,
                                               .block_max_usec = 35,
                                               .max_entries = 4};
        _cleanup_(httpd_throttle_freep) struct httpd_throttle *t = NULL;
        uint64_t now = 1000;

        assert_int_equal(httpd_throttle_new(&policy, &t), 0);
        /* Failures spread beyond the window never block. */
        for (int i = 0; i < 10; i++, now += 60) {
                httpd_throttle_failure(t, "name:a", now);
                assert_int_equal(httpd_throttle_check(t, "name:a", now), 0);
        }
        /* Three in a row: 10, then 20, then 35 (capped), 35. */
        static const uint64_t blocks[] = {10, 20, 35, 35};
        for (size_t b = 0; b < ELEMENTSOF(blocks); b++) {
                for (int i = 0; i < 3; i++)
                        httpd_throttle_failure(t, "name:b", now);
                assert_int_equal(httpd_throttle_check(t, "name:b", now),
                                 blocks[b]);
                assert_int_equal(
                        httpd_throttle_check(t, "name:b", now + blocks[b] - 1),
                        1);
                now += blocks[b];
                assert_int_equal(httpd_throttle_check(t, "name:b", now), 0);
        }
        httpd_throttle_success(t, "name:b");
        for (int i = 0; i < 3; i++)
                httpd_throttle_failure(t, "name:b", now);
        assert_int_equal(httpd_throttle_check(t, "name:b", now), 10);

        /* A full table makes room without forgetting the blocked. */
        for (int i = 0; i < 10; i++) {
                char key[32];

                snprintf(key, sizeof key, "addr:%d", i);
                httpd_throttle_failure(t, key, now);
        }
        assert_int_equal(httpd_throttle_check(t, "name:b", now), 10);
}

static void throttle_keys_cut_ipv6_to_64_bits(void **state) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6},
                            b = {.sin6_family = AF_INET6},
                            m = {.sin6_family = AF_INET6};
        char ka[64], kb[64], km[64];

        assert_int_equal(inet_pton(AF_INET6, "2001:db8:1:2::1", &a.sin6_addr),
                         1);
        assert_int_equal(
                inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &b.sin6_addr), 1);
        assert_int_equal(inet_pton(AF_INET6, "::ffff:198.18.0.7", &m.sin6_addr),
                         1);
        httpd_throttle_client_key((struct sockaddr *) &a, ka, sizeof ka);
        httpd_throttle_client_key((struct sockaddr *) &b, kb, sizeof kb);
        httpd_throttle_client_key((struct sockaddr *) &m, km, sizeof km);
        assert_string_equal(ka, kb);
        assert_string_equal(ka, "addr:2001:db8:1:2::");
        assert_string_equal(km, "addr:198.18.0.7");
}

/* ==== Writes and reads through haven-domaind ==== */

static void hosts_are_staged_by_default_and_applied_with_now(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL, *p = NULL;
        struct json_object *ops, *op, *inner;
        const char *s_, *actor, *audit;
        struct session s;
        struct response r;
        int64_t n;
        bool staged;

        start(f);
        login(f, &s);
        http(f, "POST", "/api/v1/hosts", &s, NULL,
             "{\"name\": \"web1\", \"address\": \"198.18.0.9\"}", &r);
        assert_int_equal(r.status, 202);
        o = body_json(&r);
        assert_int_equal(haven_json_get_bool(o, "staged", &staged), 0);
        assert_true(staged);
        assert_int_equal(haven_json_get_int64(o, "change_id", &n), 0);
        assert_int_equal(n, 42);
        response_done(&r);

        /* What domaind got: one stage op around the insert. */
        assert_non_null(f->domain.last_submit);
        assert_int_equal(
                haven_json_get_string(f->domain.last_submit, "actor", &actor),
                0);
        assert_string_equal(actor, "api:" ADMIN);
        assert_int_equal(
                haven_json_get_string(f->domain.last_submit, "audit", &audit),
                0);
        assert_string_equal(audit,
                            "add hosts: name=\"web1\" address=\"198.18.0.9\"");
        assert_int_equal(
                haven_json_get_array(f->domain.last_submit, "ops", &ops), 0);
        assert_int_equal(json_object_array_length(ops), 1);
        op = json_object_array_get_idx(ops, 0);
        assert_int_equal(haven_json_get_string(op, "op", &s_), 0);
        assert_string_equal(s_, "stage");
        assert_int_equal(haven_json_get_array(op, "ops", &inner), 0);
        op = json_object_array_get_idx(inner, 0);
        assert_int_equal(haven_json_get_string(op, "op", &s_), 0);
        assert_string_equal(s_, "insert");
        assert_int_equal(haven_json_get_string(op, "table", &s_), 0);
        assert_string_equal(s_, "hosts");

        http(f, "POST", "/api/v1/hosts?now=1", &s, NULL,
             "{\"name\": \"web2\", \"address\": \"198.18.0.10\"}", &r);
        assert_int_equal(r.status, 201);
        p = body_json(&r);
        assert_int_equal(haven_json_get_int64(p, "id", &n), 0);
        assert_int_equal(n, 42);
        assert_int_equal(haven_json_get_int64(p, "version", &n), 0);
        assert_int_equal(n, 12);
        response_done(&r);
        assert_int_equal(
                haven_json_get_array(f->domain.last_submit, "ops", &ops), 0);
        op = json_object_array_get_idx(ops, 0);
        assert_int_equal(haven_json_get_string(op, "op", &s_), 0);
        assert_string_equal(s_, "insert");
}

static void host_delete_carries_the_row_version(void **state) {
        struct fixture *f = *state;
        struct json_object *ops, *op, *inner;
        struct session s;
        struct response r;
        const char *audit;
        int64_t n;

        start(f);
        login(f, &s);
        http(f, "DELETE", "/api/v1/hosts/3?now=1", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);
        assert_int_equal(
                haven_json_get_array(f->domain.last_submit, "ops", &ops), 0);
        op = json_object_array_get_idx(ops, 0);
        assert_int_equal(haven_json_get_int64(op, "id", &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(haven_json_get_int64(op, "expect_version", &n), 0);
        assert_int_equal(n, 9);
        assert_int_equal(
                haven_json_get_string(f->domain.last_submit, "audit", &audit),
                0);
        assert_string_equal(audit, "delete hosts 3 \"ntp1\"");

        http(f, "DELETE", "/api/v1/hosts/3", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 202);
        response_done(&r);
        assert_int_equal(
                haven_json_get_array(f->domain.last_submit, "ops", &ops), 0);
        op = json_object_array_get_idx(ops, 0);
        assert_int_equal(haven_json_get_array(op, "ops", &inner), 0);
        assert_int_equal(json_object_array_length(inner), 1);

        http(f, "DELETE", "/api/v1/hosts/77", &s, NULL, NULL, &r);
        assert_error(&r, 404, "not-found", "id");
        response_done(&r);
}

static void hosts_list_and_status_read_through(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL, *p = NULL;
        struct json_object *items, *v;
        struct session s;
        struct response r;
        bool quorate;

        start(f);
        login(f, &s);
        http(f, "GET", "/api/v1/hosts", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_int_equal(haven_json_get_array(o, "items", &items), 0);
        assert_int_equal(json_object_array_length(items), 1);
        response_done(&r);

        http(f, "GET", "/api/v1/status", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        p = body_json(&r);
        assert_int_equal(haven_json_get_bool(p, "quorate", &quorate), 0);
        assert_true(quorate);
        assert_false(json_object_object_get_ex(p, "tag", &v));
        response_done(&r);
}

static void write_without_quorum_is_503_read_only(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *e;
        struct session s;
        struct response r;
        const char *message;

        start(f);
        login(f, &s);
        f->domain.quorate = false;
        http(f, "POST", "/api/v1/hosts?now=1", &s, NULL,
             "{\"name\": \"web1\", \"address\": \"198.18.0.9\"}", &r);
        assert_error(&r, 503, "no-quorum", NULL);
        o = body_json(&r);
        assert_int_equal(haven_json_get_object(o, "error", &e), 0);
        assert_int_equal(haven_json_get_string(e, "message", &message), 0);
        assert_string_equal(message, "the cluster has no quorum: the "
                                     "configuration is read-only");
        response_done(&r);
        /* Reads go on. */
        http(f, "GET", "/api/v1/hosts", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);
}

static void domaind_errors_map_to_statuses(void **state) {
        static const struct {
                const char *code, *field;
                int status;
        } cases[] = {
                {"conflict", NULL, 409},  {"invalid", "address", 400},
                {"not-found", NULL, 404}, {"syncing", NULL, 503},
                {"internal", NULL, 500},  {"strange", NULL, 500},
        };
        struct fixture *f = *state;
        struct session s;
        struct response r;

        start(f);
        login(f, &s);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char retry[16];

                f->domain.submit_error = cases[i].code;
                f->domain.submit_error_field = cases[i].field;
                http(f, "POST", "/api/v1/hosts", &s, NULL,
                     "{\"name\": \"web1\", \"address\": \"198.18.0.9\"}", &r);
                assert_error(&r, cases[i].status,
                             streq(cases[i].code, "strange") ? "internal"
                                                             : cases[i].code,
                             cases[i].field);
                if (streq(cases[i].code, "syncing"))
                        assert_non_null(
                                header(&r, "Retry-After", retry, sizeof retry));
                response_done(&r);
        }
}

static void domaind_away_is_503_unavailable(void **state) {
        struct fixture *f = *state;
        struct session s;
        struct response r;
        uint64_t deadline = now_usec() + WAIT_USEC;

        start(f);
        login(f, &s);
        standin_stop(f);
        while (httpd_domain_connected(httpd_domain(f->httpd))) {
                assert_true(now_usec() < deadline);
                pump(f, 10000);
        }
        http(f, "GET", "/api/v1/status", &s, NULL, NULL, &r);
        assert_error(&r, 503, "unavailable", NULL);
        response_done(&r);
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}", &r);
        assert_error(&r, 503, "unavailable", NULL);
        response_done(&r);

        /* It comes back by itself. */
        standin_start(f);
        wait_subscribed(f);
        http(f, "GET", "/api/v1/status", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);
}

/* A request waiting for domaind does not hold up others, and one still
 * waiting when the server stops is cleaned up. */
static void waiting_requests_block_nobody_and_end_cleanly(void **state) {
        struct fixture *f = *state;
        struct client *waiting;
        struct session s;
        struct response r;

        start(f);
        login(f, &s);
        f->domain.silent = true;
        waiting = client_connect(f);
        request_queue(waiting, "GET", "/api/v1/status", &s, NULL, NULL);
        for (int i = 0; i < 50; i++)
                client_step(f, waiting);
        assert_false(response_take(waiting, false, &r));

        http(f, "GET", "/", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);
        http(f, "GET", "/api/v1/session", &s, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);

        httpd_stop(f);
        assert_true(client_wait_eof(f, waiting, WAIT_USEC));
        client_close(waiting);
}

/* ==== Events ==== */

static void event_stream_carries_domain_events(void **state) {
        struct fixture *f = *state;
        struct client *c;
        struct session s;
        char type[64];
        struct response r;

        f->config.heartbeat_usec = 200 * 1000;
        start(f);
        login(f, &s);
        c = client_connect(f);
        request_queue(c, "GET", "/api/v1/events", &s, NULL, NULL);
        assert_true(client_wait_text(f, c, "retry: ", WAIT_USEC));
        assert_true(strncmp(c->in, "HTTP/1.1 200", 12) == 0);
        r = (struct response){.head = c->in};
        assert_string_equal(header(&r, "Content-Type", type, sizeof type),
                            "text/event-stream");
        assert_int_equal(httpd_events_clients(httpd_events(f->httpd)), 1);

        standin_push(f, "{\"event\": \"commit\", \"version\": 11, \"tables\": "
                        "[\"hosts\"], \"actor\": \"api:admin\"}");
        assert_true(client_wait_text(
                f, c,
                "event: commit\ndata: {\"event\":\"commit\",\"version\":11,"
                "\"tables\":[\"hosts\"],\"actor\":\"api:admin\"}\n\n",
                WAIT_USEC));
        standin_push(f, "{\"event\": \"membership\", \"members\": [1], "
                        "\"quorate\": false}");
        assert_true(client_wait_text(f, c, "event: membership\n", WAIT_USEC));
        standin_push(f, "{\"event\": \"job-log\", \"job_id\": 4, \"node\": "
                        "\"node1\", \"line\": \"reconciled\"}");
        assert_true(client_wait_text(f, c, "event: job-log\n", WAIT_USEC));
        assert_true(client_wait_text(f, c, ": heartbeat\n\n", WAIT_USEC));

        /* After domaind comes back, streams hear they may have missed
         * something. */
        standin_stop(f);
        standin_start(f);
        wait_subscribed(f);
        assert_true(client_wait_text(f, c, "event: resync\n", WAIT_USEC));
        client_close(c);
}

static void slow_event_client_is_dropped(void **state) {
        struct fixture *f = *state;
        _cleanup_(json_object_putp) struct json_object *event = NULL;
        struct client *c;
        struct session s;
        char *pad;
        uint64_t deadline;

        f->config.event_queue_max = 64 * 1024;
        start(f);
        login(f, &s);
        c = client_connect(f);
        request_queue(c, "GET", "/api/v1/events", &s, NULL, NULL);
        assert_true(client_wait_text(f, c, "retry: ", WAIT_USEC));
        assert_int_equal(httpd_events_clients(httpd_events(f->httpd)), 1);

        /* The client reads no more; events pile up until it is dropped. */
        pad = malloc(8193);
        assert_non_null(pad);
        memset(pad, 'x', 8192);
        pad[8192] = '\0';
        event = json_object_new_object();
        json_object_object_add(event, "pad", json_object_new_string(pad));
        free(pad);
        deadline = now_usec() + WAIT_USEC;
        while (httpd_events_clients(httpd_events(f->httpd)) > 0) {
                assert_true(now_usec() < deadline);
                httpd_events_publish(httpd_events(f->httpd), "status", event);
                pump(f, 1000);
        }
        /* Its connection ends once what was sent is read. */
        assert_true(client_wait_eof(f, c, WAIT_USEC));
        client_close(c);
}

/* ==== Static files ==== */

static void static_files_have_types_caching_and_etags(void **state) {
        struct fixture *f = *state;
        struct response r;
        char buf[128], etag[128], extra[256];

        start(f);
        http(f, "GET", "/", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf),
                            "text/html; charset=utf-8");
        assert_string_equal(header(&r, "Cache-Control", buf, sizeof buf),
                            "no-cache");
        assert_non_null(strstr(r.body, "<title>Haven</title>"));
        assert_non_null(header(&r, "ETag", etag, sizeof etag));
        response_done(&r);

        snprintf(extra, sizeof extra, "If-None-Match: %s\r\n", etag);
        http(f, "GET", "/index.html", NULL, extra, NULL, &r);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.body_size, 0);
        response_done(&r);
        http(f, "GET", "/index.html", NULL,
             "If-None-Match: \"something-else\"\r\n", NULL, &r);
        assert_int_equal(r.status, 200);
        response_done(&r);

        /* The application's routes get index.html. */
        http(f, "GET", "/vms/web1", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "<title>Haven</title>"));
        response_done(&r);

        http(f, "GET", "/assets/app-3f2a9c1e.js", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf),
                            "text/javascript; charset=utf-8");
        assert_string_equal(header(&r, "Cache-Control", buf, sizeof buf),
                            "public, max-age=31536000, immutable");
        assert_null(header(&r, "Content-Encoding", buf, sizeof buf));
        assert_string_equal(header(&r, "Vary", buf, sizeof buf),
                            "Accept-Encoding");
        assert_string_equal(r.body, "console.log('app');\n");
        response_done(&r);

        http(f, "GET", "/assets/style.css", NULL, NULL, NULL, &r);
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf),
                            "text/css; charset=utf-8");
        assert_string_equal(header(&r, "Cache-Control", buf, sizeof buf),
                            "no-cache");
        response_done(&r);
        http(f, "GET", "/logo.svg", NULL, NULL, NULL, &r);
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf),
                            "image/svg+xml");
        response_done(&r);

        http(f, "HEAD", "/logo.svg", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Content-Length", buf, sizeof buf), "7");
        response_done(&r);
}

static void precompressed_files_go_to_gzip_clients(void **state) {
        struct fixture *f = *state;
        struct response r;
        char buf[128], plain_etag[128];

        start(f);
        http(f, "GET", "/assets/app-3f2a9c1e.js", NULL, NULL, NULL, &r);
        assert_non_null(header(&r, "ETag", plain_etag, sizeof plain_etag));
        response_done(&r);

        http(f, "GET", "/assets/app-3f2a9c1e.js", NULL,
             "Accept-Encoding: br, gzip;q=0.8\r\n", NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Content-Encoding", buf, sizeof buf),
                            "gzip");
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf),
                            "text/javascript; charset=utf-8");
        assert_string_equal(header(&r, "Vary", buf, sizeof buf),
                            "Accept-Encoding");
        assert_int_equal(r.body_size, sizeof gz_bytes);
        assert_memory_equal(r.body, gz_bytes, sizeof gz_bytes);
        assert_string_not_equal(header(&r, "ETag", buf, sizeof buf),
                                plain_etag);
        response_done(&r);

        http(f, "GET", "/assets/app-3f2a9c1e.js", NULL,
             "Accept-Encoding: gzip;q=0, deflate\r\n", NULL, &r);
        assert_null(header(&r, "Content-Encoding", buf, sizeof buf));
        response_done(&r);
        /* No .gz next to it: the file as it is. */
        http(f, "GET", "/logo.svg", NULL, "Accept-Encoding: gzip\r\n", NULL,
             &r);
        assert_null(header(&r, "Content-Encoding", buf, sizeof buf));
        response_done(&r);

        assert_true(httpd_accepts_gzip("gzip"));
        assert_true(httpd_accepts_gzip("deflate, GZIP"));
        assert_true(httpd_accepts_gzip("*"));
        assert_true(httpd_accepts_gzip("gzip;q=0.001"));
        assert_false(httpd_accepts_gzip("gzip;q=0"));
        assert_false(httpd_accepts_gzip("gzip; q=0.000, br"));
        assert_false(httpd_accepts_gzip("*;q=0"));
        assert_false(httpd_accepts_gzip("*, gzip;q=0"));
        assert_false(httpd_accepts_gzip("x-gzip"));
        assert_false(httpd_accepts_gzip("gzipped"));
        assert_false(httpd_accepts_gzip(""));
        assert_false(httpd_accepts_gzip(NULL));
}

static void static_paths_never_leave_the_ui_directory(void **state) {
        static const char *const attempts[] = {
                "/../secret.txt",
                "/%2e%2e/secret.txt",
                "/%2e%2e%2fsecret.txt",
                "/assets/%2F..%2F..%2Fsecret.txt",
                "/assets/..%2f..%2fsecret.txt",
                "/.%2e/secret.txt",
                "/index.html%00.js",
                "/%00",
                "/leak.txt",
                "/leakdir/secret.txt",
                "/.env",
                "/assets/.%65nv",
                "/%zz",
                "/a%0ab",
        };
        struct fixture *f = *state;

        start(f);
        for (size_t i = 0; i < ELEMENTSOF(attempts); i++) {
                struct response r;

                http(f, "GET", attempts[i], NULL, NULL, NULL, &r);
                if (r.status != 400 && r.status != 404)
                        fprintf(stderr, "%s: %d\n", attempts[i], r.status);
                assert_true(r.status == 400 || r.status == 404);
                assert_null(strstr(r.body, "SECRET"));
                response_done(&r);
        }
}

static void names_and_paths_are_judged_as_documented(void **state) {
        static const struct {
                const char *raw;
                int result; /* length, or -errno */
                const char *decoded;
        } paths[] = {
                {"/", 1, "/"},
                {"/a%20b", 4, "/a b"},
                {"/%41%62", 3, "/Ab"},
                {"/a/./b", -EINVAL, NULL},
                {"/a/..", -EINVAL, NULL},
                {"/..a/b", 6, "/..a/b"},
                {"/%2e%2E", -EINVAL, NULL},
                {"/%00", -EINVAL, NULL},
                {"/%0", -EINVAL, NULL},
                {"/%g0", -EINVAL, NULL},
                {"/\x7f", -EINVAL, NULL},
                {"a", -EINVAL, NULL},
                {"", -EINVAL, NULL},
        };
        char buf[16], lengthy[64];

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                int r = httpd_path_decode(paths[i].raw, buf, sizeof buf);

                assert_int_equal(r, paths[i].result);
                if (r >= 0)
                        assert_string_equal(buf, paths[i].decoded);
        }
        memset(lengthy, 'a', sizeof lengthy - 1);
        lengthy[0] = '/';
        lengthy[sizeof lengthy - 1] = '\0';
        assert_int_equal(httpd_path_decode(lengthy, buf, sizeof buf),
                         -ENAMETOOLONG);

        assert_true(httpd_static_is_hashed("app-3f2a9c1e.js"));
        assert_true(httpd_static_is_hashed("/assets/index.BkQ3x9aZ.css"));
        assert_true(httpd_static_is_hashed("chunk-a1b2c3d4e5.mjs"));
        assert_false(httpd_static_is_hashed("index.html"));
        assert_false(httpd_static_is_hashed("component-overview.js"));
        assert_false(httpd_static_is_hashed("app-1234.js"));
        assert_false(httpd_static_is_hashed("3f2a9c1e12.js"));
        assert_false(httpd_static_is_hashed("noextension-3f2a9c1e"));

        assert_string_equal(httpd_static_content_type("x.WOFF2"), "font/woff2");
        assert_string_equal(httpd_static_content_type("x"),
                            "application/octet-stream");
        assert_string_equal(httpd_static_content_type("a.js/b"),
                            "application/octet-stream");

        assert_true(httpd_etag_matches("\"a\", W/\"b\"", "\"b\""));
        assert_true(httpd_etag_matches(" *", "\"b\""));
        assert_false(httpd_etag_matches("\"ab\"", "\"b\""));
        assert_false(httpd_etag_matches(NULL, "\"b\""));
}

static void errors_map_through_one_table(void **state) {
        static const struct {
                enum httpd_error_code code;
                unsigned status;
                const char *name;
        } table[] = {
                {HTTPD_ERROR_BAD_REQUEST, 400, "bad-request"},
                {HTTPD_ERROR_INVALID, 400, "invalid"},
                {HTTPD_ERROR_UNAUTHORIZED, 401, "unauthorized"},
                {HTTPD_ERROR_CSRF, 403, "csrf"},
                {HTTPD_ERROR_NOT_FOUND, 404, "not-found"},
                {HTTPD_ERROR_METHOD, 405, "method-not-allowed"},
                {HTTPD_ERROR_CONFLICT, 409, "conflict"},
                {HTTPD_ERROR_TOO_LARGE, 413, "too-large"},
                {HTTPD_ERROR_MEDIA_TYPE, 415, "unsupported-media-type"},
                {HTTPD_ERROR_THROTTLED, 429, "throttled"},
                {HTTPD_ERROR_INTERNAL, 500, "internal"},
                {HTTPD_ERROR_NO_QUORUM, 503, "no-quorum"},
                {HTTPD_ERROR_SYNCING, 503, "syncing"},
                {HTTPD_ERROR_UNAVAILABLE, 503, "unavailable"},
        };
        struct httpd_error e;

        assert_int_equal(ELEMENTSOF(table), _HTTPD_ERROR_MAX);
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                assert_int_equal(httpd_error_status(table[i].code),
                                 table[i].status);
                assert_string_equal(httpd_error_code_to_string(table[i].code),
                                    table[i].name);
        }
        assert_int_equal(httpd_error_status(_HTTPD_ERROR_INVALID), 500);
        httpd_error_from_errno(-ETIMEDOUT, &e);
        assert_int_equal(e.code, HTTPD_ERROR_UNAVAILABLE);
        httpd_error_from_errno(-EIO, &e);
        assert_int_equal(e.code, HTTPD_ERROR_INTERNAL);
        assert_int_equal(httpd_error_from_domaind_code("no-quorum"),
                         HTTPD_ERROR_NO_QUORUM);
        assert_int_equal(httpd_error_from_domaind_code(NULL),
                         HTTPD_ERROR_INTERNAL);
}

/* ==== Connections ==== */

static void slow_connections_do_not_block_a_normal_request(void **state) {
        struct fixture *f = *state;
        struct client *slow[100], *c;
        struct response r;
        uint64_t t0, elapsed;

        start(f);
        /* 25 from each of four addresses: under the per-address limit. */
        for (size_t i = 0; i < ELEMENTSOF(slow); i++) {
                char source[32];

                snprintf(source, sizeof source, "127.0.0.%zu", 2 + i % 4);
                slow[i] = client_connect_from(f, source, false);
                client_queue_text(slow[i], "GET /api/v1/status HTTP/1.1\r\n"
                                           "Host: node1\r\nX-Slow: ");
                client_step(f, slow[i]);
        }
        /* They dribble on, a byte each now and then. */
        for (int round = 0; round < 3; round++)
                for (size_t i = 0; i < ELEMENTSOF(slow); i++) {
                        client_queue_text(slow[i], "z");
                        client_step(f, slow[i]);
                }

        t0 = now_usec();
        c = client_connect(f);
        request_queue(c, "GET", "/index.html", NULL, NULL, NULL);
        assert_true(client_wait(f, c, false, &r));
        elapsed = now_usec() - t0;
        assert_int_equal(r.status, 200);
        response_done(&r);
        client_close(c);
        /* Generous for sanitizers; the point is: not after a timeout. */
        assert_true(elapsed < 1000000);

        /* The slow ones are still there, unanswered, and can finish. */
        for (size_t i = 0; i < ELEMENTSOF(slow); i++) {
                assert_false(slow[i]->eof);
                assert_false(response_take(slow[i], false, &r));
        }
        client_queue_text(slow[0], "\r\n\r\n");
        assert_true(client_wait(f, slow[0], false, &r));
        assert_error(&r, 401, "unauthorized", NULL);
        response_done(&r);
        for (size_t i = 0; i < ELEMENTSOF(slow); i++)
                client_close(slow[i]);
}

static void idle_connections_time_out(void **state) {
        struct fixture *f = *state;
        struct client *c;
        uint64_t t0 = now_usec();

        f->config.connection_timeout_sec = 1;
        start(f);
        c = client_connect(f);
        client_queue_text(c, "GET / HTTP/1.1\r\n");
        assert_true(client_wait_eof(f, c, 5 * 1000000));
        assert_true(now_usec() - t0 >= 900000);
        client_close(c);
}

static void connections_beyond_the_per_address_limit_are_refused(void **state) {
        struct fixture *f = *state;
        struct client *c[HTTPD_CONNECTIONS_PER_IP_DEFAULT + 1];
        struct response r;

        start(f);
        for (size_t i = 0; i < ELEMENTSOF(c); i++) {
                c[i] = client_connect_from(f, "127.0.0.30", false);
                for (int k = 0; k < 5; k++)
                        client_step(f, c[i]);
        }
        request_queue(c[ELEMENTSOF(c) - 1], "GET", "/", NULL, NULL, NULL);
        assert_false(client_wait(f, c[ELEMENTSOF(c) - 1], false, &r));
        assert_true(c[ELEMENTSOF(c) - 1]->eof);
        request_queue(c[0], "GET", "/", NULL, NULL, NULL);
        assert_true(client_wait(f, c[0], false, &r));
        assert_int_equal(r.status, 200);
        response_done(&r);
        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_close(c[i]);
}

/* ==== TLS ==== */

static void https_uses_a_generated_certificate_for_this_host(void **state) {
        struct fixture *f = *state;
        const gnutls_datum_t *chain;
        gnutls_x509_crt_t crt;
        unsigned n_chain = 0;
        struct client *c;
        struct response r;
        struct session s;
        char path[256], cookie[256], host[256] = "";
        uint8_t loopback[4] = {127, 0, 0, 1};
        _cleanup_free_ char *first_cert = NULL;
        struct stat st;
        FILE *file;
        long size;

        f->config.tls = true;
        snprintf(path, sizeof path, "%s/httpd.crt", f->state);
        f->config.cert_path = strdup(path);
        snprintf(path, sizeof path, "%s/httpd.key", f->state);
        f->config.key_path = strdup(path);
        start(f);

        assert_int_equal(stat(f->config.key_path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(stat(f->config.cert_path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);

        c = client_connect(f);
        request_queue(c, "GET", "/api/v1/status", NULL, NULL, NULL);
        assert_true(client_wait(f, c, false, &r));
        assert_error(&r, 401, "unauthorized", NULL);
        response_done(&r);
        chain = gnutls_certificate_get_peers(c->tls, &n_chain);
        assert_non_null(chain);
        assert_int_equal(n_chain, 1);
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(
                gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER), 0);
        assert_true(gnutls_x509_crt_check_ip(crt, loopback, 4, 0));
        assert_int_equal(gethostname(host, sizeof host - 1), 0);
        assert_true(gnutls_x509_crt_check_hostname(crt, host));
        assert_true(gnutls_x509_crt_check_hostname(crt, "localhost"));
        gnutls_x509_crt_deinit(crt);
        client_close(c);

        login(f, &s);
        http(f, "POST", "/api/v1/session", NULL, NULL,
             "{\"name\": \"admin\", \"password\": \"" PASSWORD "\"}", &r);
        assert_non_null(header(&r, "Set-Cookie", cookie, sizeof cookie));
        assert_non_null(strstr(cookie, "; Secure"));
        response_done(&r);

        /* A restart keeps the certificate. */
        file = fopen(f->config.cert_path, "re");
        assert_non_null(file);
        fseek(file, 0, SEEK_END);
        size = ftell(file);
        rewind(file);
        first_cert = calloc(1, (size_t) size + 1);
        assert_int_equal(fread(first_cert, 1, (size_t) size, file),
                         (size_t) size);
        fclose(file);
        httpd_stop(f);
        start(f);
        file = fopen(f->config.cert_path, "re");
        assert_non_null(file);
        {
                char again[8192] = "";

                assert_int_equal(fread(again, 1, sizeof again - 1, file),
                                 (size_t) size);
                assert_string_equal(again, first_cert);
        }
        fclose(file);
        httpd_stop(f);
        free((char *) f->config.cert_path);
        free((char *) f->config.key_path);
}

static void broken_certificate_files_are_refused(void **state) {
        struct fixture *f = *state;
        char cert[256], key[256], other[256];
        char *cert_pem = NULL, *key_pem = NULL;

        snprintf(cert, sizeof cert, "%s/a.crt", f->state);
        snprintf(key, sizeof key, "%s/a.key", f->state);
        snprintf(other, sizeof other, "%s/b.crt", f->state);
        assert_int_equal(
                httpd_tls_load_or_create(cert, key, &cert_pem, &key_pem), 0);
        free(cert_pem);
        free(key_pem);
        /* A certificate of another key. */
        {
                char other_key[256];

                snprintf(other_key, sizeof other_key, "%s/b.key", f->state);
                assert_int_equal(httpd_tls_load_or_create(other, other_key,
                                                          &cert_pem, &key_pem),
                                 0);
                free(cert_pem);
                free(key_pem);
                assert_int_equal(httpd_tls_load_or_create(other, key, &cert_pem,
                                                          &key_pem),
                                 -EKEYREJECTED);
        }
        /* A key file that is none. */
        write_file(f->state, "a.key", "not a key\n");
        assert_int_equal(
                httpd_tls_load_or_create(cert, key, &cert_pem, &key_pem),
                -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
                T(unknown_paths_are_404_in_the_error_shape),
                T(wrong_method_is_405_with_allow),
                T(every_route_without_session_is_401),
                T(writes_without_csrf_token_are_403),
                T(bad_bodies_are_400_naming_the_field),
                T(bodies_need_json_and_bodiless_routes_take_none),
                T(oversized_bodies_are_413),
                T(bad_parameters_and_flags_are_400),
                T(login_gives_cookie_and_logout_ends_it),
                T(wrong_password_and_unknown_name_look_alike),
                T(login_is_throttled_per_account_even_with_right_password),
                T(login_is_throttled_per_address),
                T(password_check_does_not_stop_the_loop),
                T(sessions_expire_when_idle_and_absolutely),
                T(sessions_are_bounded_and_tokens_checked),
                T(throttle_blocks_grow_and_success_resets),
                T(throttle_keys_cut_ipv6_to_64_bits),
                T(hosts_are_staged_by_default_and_applied_with_now),
                T(host_delete_carries_the_row_version),
                T(hosts_list_and_status_read_through),
                T(write_without_quorum_is_503_read_only),
                T(domaind_errors_map_to_statuses),
                T(domaind_away_is_503_unavailable),
                T(waiting_requests_block_nobody_and_end_cleanly),
                T(event_stream_carries_domain_events),
                T(slow_event_client_is_dropped),
                T(static_files_have_types_caching_and_etags),
                T(precompressed_files_go_to_gzip_clients),
                T(static_paths_never_leave_the_ui_directory),
                T(names_and_paths_are_judged_as_documented),
                T(errors_map_through_one_table),
                T(slow_connections_do_not_block_a_normal_request),
                T(idle_connections_time_out),
                T(connections_beyond_the_per_address_limit_are_refused),
                T(https_uses_a_generated_certificate_for_this_host),
                T(broken_certificate_files_are_refused),
#undef T
        };

        log_parse_environment();
        /* TEST_FILTER=name (a glob) runs some only. */
        if (getenv("TEST_FILTER"))
                cmocka_set_test_filter(getenv("TEST_FILTER"));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
