/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven/msg.h: framed JSON between a server on an sd-event
 * loop and blocking clients. Most tests run both ends in this process: the
 * client only does steps that cannot block (small sends, receives with a
 * zero timeout) and the loop is run in between until the expected state is
 * reached (bounded by a 5 s watchdog, never by sleeping). One test forks
 * clients that block for real.
 *
 * Bad inputs tried:
 *   server side: a frame one byte over the limit, a header announcing
 *     100000 bytes with no payload, a length prefix of 0, a frame cut short
 *     by EOF (in the payload, in the header; with the peer half- and fully
 *     closed), garbage bytes (0xff 0xfe, NUL, control bytes), plain text,
 *     JSON that is not an object (array, string, number, true, null),
 *     truncated JSON, trailing data, two objects in one frame, a trailing
 *     comma, a NUL byte inside a string, invalid UTF-8, nesting 40 deep,
 *     a connection over max_connections, an idle connection, a subscriber
 *     that never reads, a client that pipelines 1000 requests without
 *     reading the replies, a handler that fails;
 *   client side: non-JSON and non-object frames, an empty frame, a frame
 *     over the client's limit, EOF, a frame split across a timeout, a
 *     message too large to send, a missing socket, a socket without a
 *     listener.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "haven/json.h"
#include "haven/msg.h"

#include "test-util.h"

#define WATCHDOG_USEC (5u * 1000u * 1000u)
#define LOOP_STEP_USEC (10u * 1000u)
#define SEND_TIMEOUT_USEC (1000u * 1000u)
#define SMALL_LIMIT 1024u

struct fixture {
        char dir[64];
        char path[128];
        sd_event *event;
        struct haven_msg_server *server;
        unsigned n_handled;
        struct haven_msg_conn *subscriber; /* a reference of ours */
};

static int reply(struct haven_msg_conn *conn, const char *text) {
        _cleanup_(json_object_putp) struct json_object *obj = json(text);

        return haven_msg_conn_send(conn, obj);
}

/* The server's handler: echoes every message, except
 *   {"ignore":…}    no reply;
 *   {"fail":…}      replies {"bye":true} and fails (closes the connection);
 *   {"subscribe":…} keeps a reference for pushing, replies
 *                   {"subscribed":true};
 *   {"whoami":…}    replies {"pid":…,"uid":…} of the peer;
 *   {"shutdown":…}  frees the server, from inside its own handler. */
static int test_handler(struct haven_msg_conn *conn, struct json_object *msg,
                        void *userdata) {
        struct fixture *f = userdata;
        char text[128];
        pid_t pid;
        uid_t uid;
        int r;

        f->n_handled++;

        if (json_object_object_get_ex(msg, "ignore", NULL))
                return 0;
        if (json_object_object_get_ex(msg, "fail", NULL)) {
                r = reply(conn, "{\"bye\":true}");
                return r < 0 ? r : -EPROTO;
        }
        if (json_object_object_get_ex(msg, "subscribe", NULL)) {
                haven_msg_conn_unref(f->subscriber);
                f->subscriber = haven_msg_conn_ref(conn);
                haven_msg_conn_set_userdata(conn, f);
                return reply(conn, "{\"subscribed\":true}");
        }
        if (json_object_object_get_ex(msg, "shutdown", NULL)) {
                f->server = haven_msg_server_free(f->server);
                return 0;
        }
        if (json_object_object_get_ex(msg, "whoami", NULL)) {
                r = haven_msg_conn_peer(conn, &pid, &uid);
                if (r < 0)
                        return r;
                snprintf(text, sizeof(text), "{\"pid\":%ld,\"uid\":%ld}",
                         (long) pid, (long) uid);
                return reply(conn, text);
        }
        return haven_msg_conn_send(conn, msg);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-msg-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
        assert_int_equal(sd_event_new(&f->event), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        char other[160];

        haven_msg_conn_unref(f->subscriber);
        haven_msg_server_free(f->server);
        sd_event_unref(f->event);
        (void) unlink(f->path);
        snprintf(other, sizeof(other), "%s/raw", f->dir);
        (void) unlink(other);
        assert_int_equal(rmdir(f->dir), 0);
        free(f);
        return 0;
}

static void start_server_with(struct fixture *f, size_t max_size,
                              unsigned max_connections,
                              uint64_t idle_timeout_usec) {
        struct haven_msg_server_config config = {
                .path = f->path,
                .mode = 0600,
                .max_size = max_size,
                .max_connections = max_connections,
                .idle_timeout_usec = idle_timeout_usec,
                .handler = test_handler,
                .userdata = f,
        };

        assert_int_equal(haven_msg_server_new(f->event, &config, &f->server),
                         0);
}

static void start_server(struct fixture *f) {
        start_server_with(f, SMALL_LIMIT, 0, 0);
}

static struct haven_msg_client *connect_client(struct fixture *f) {
        struct haven_msg_client *c = NULL;

        assert_int_equal(haven_msg_client_connect(f->path, 0, &c), 0);
        return c;
}

/* ==== Driving the loop ==== */

static void loop_step(struct fixture *f, uint64_t started) {
        if (now_usec() - started > WATCHDOG_USEC)
                fail_msg("watchdog: expected state not reached in time");
        assert_true(sd_event_run(f->event, LOOP_STEP_USEC) >= 0);
}

static void run_until_connections(struct fixture *f, unsigned n) {
        uint64_t started = now_usec();

        while (haven_msg_server_connections(f->server) != n)
                loop_step(f, started);
}

static void run_until_handled(struct fixture *f, unsigned n) {
        uint64_t started = now_usec();

        while (f->n_handled < n)
                loop_step(f, started);
}

/* Receives on c without blocking, running the server's loop until a message
 * or an error other than -ETIMEDOUT arrives. */
static int recv_running_loop(struct fixture *f, struct haven_msg_client *c,
                             struct json_object **ret) {
        uint64_t started = now_usec();
        int r;

        for (;;) {
                r = haven_msg_client_recv(c, 0, ret);
                if (r != -ETIMEDOUT)
                        return r;
                loop_step(f, started);
        }
}

static void send_text(struct haven_msg_client *c, const char *text) {
        _cleanup_(json_object_putp) struct json_object *obj = json(text);

        assert_int_equal(haven_msg_client_send(c, obj, SEND_TIMEOUT_USEC), 0);
}

static void expect_reply(struct fixture *f, struct haven_msg_client *c,
                         const char *text) {
        _cleanup_(json_object_putp) struct json_object *expected = json(text);
        _cleanup_(json_object_putp) struct json_object *got = NULL;

        assert_int_equal(recv_running_loop(f, c, &got), 0);
        if (!json_object_equal(expected, got))
                fail_msg("expected %s, got %s", text,
                         json_object_to_json_string(got));
}

static void assert_round_trip(struct fixture *f, struct haven_msg_client *c,
                              const char *text) {
        send_text(c, text);
        expect_reply(f, c, text);
}

/* The next message is {"error":{"code":code,"message":…}}, the message
 * containing `reason` (if not NULL), then the stream ends. */
static void expect_error_then_end(struct fixture *f, struct haven_msg_client *c,
                                  const char *code, const char *reason) {
        _cleanup_(json_object_putp) struct json_object *msg = NULL;
        struct json_object *error, *value;

        assert_int_equal(recv_running_loop(f, c, &msg), 0);
        assert_true(json_object_object_get_ex(msg, "error", &error));
        assert_true(json_object_object_get_ex(error, "code", &value));
        assert_string_equal(json_object_get_string(value), code);
        assert_true(json_object_object_get_ex(error, "message", &value));
        assert_true(json_object_get_string_len(value) > 0);
        if (reason && !strstr(json_object_get_string(value), reason))
                fail_msg("error message \"%s\" does not say \"%s\"",
                         json_object_get_string(value), reason);

        assert_int_equal(recv_running_loop(f, c, &msg), -ECONNRESET);
}

static void assert_server_serves_new_client(struct fixture *f) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c =
                connect_client(f);

        assert_round_trip(f, c, "{\"still\":\"serving\"}");
}

/* Writes bytes as they are, bypassing the framing. */
static void send_raw(struct haven_msg_client *c, const void *data,
                     size_t size) {
        ssize_t n;

        n = send(haven_msg_client_fd(c), data, size, MSG_NOSIGNAL);
        assert_int_equal(n, (ssize_t) size);
}

static void send_header(struct haven_msg_client *c, uint32_t announced) {
        uint8_t header[4] = {announced >> 24, announced >> 16, announced >> 8,
                             announced};

        send_raw(c, header, sizeof(header));
}

static void send_frame_bytes(struct haven_msg_client *c, const void *payload,
                             size_t size) {
        send_header(c, (uint32_t) size);
        send_raw(c, payload, size);
}

/* A frame with this payload gets a "bad-message" error without reaching the
 * handler, the connection is closed, and the server goes on serving. */
static void assert_payload_refused(struct fixture *f, const void *payload,
                                   size_t size, const char *reason) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c =
                connect_client(f);
        unsigned handled = f->n_handled;

        send_frame_bytes(c, payload, size);
        expect_error_then_end(f, c, "bad-message", reason);
        run_until_connections(f, 0);
        assert_int_equal(f->n_handled, handled);
        assert_server_serves_new_client(f);
}

/* ==== Encoding ==== */

static void encode_writes_big_endian_length_and_compact_text(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj =
                json("{ \"a\" : \"b/c\" }");
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size = 0;

        assert_int_equal(haven_msg_encode(obj, 0, &frame, &size), 0);
        assert_int_equal(size, 4 + strlen("{\"a\":\"b/c\"}"));
        assert_memory_equal(frame, "\0\0\0\x0b{\"a\":\"b/c\"}", size);
}

static void encode_refuses_text_over_limit(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj =
                object_of_size(100);
        _cleanup_free_ uint8_t *frame = NULL;
        uint8_t *none = NULL;
        size_t size = 0;

        assert_int_equal(haven_msg_encode(obj, 100, &frame, &size), 0);
        assert_int_equal(size, 104);
        assert_memory_equal(frame, "\0\0\0\x64", 4);

        assert_int_equal(haven_msg_encode(obj, 99, &none, &size), -E2BIG);
        assert_null(none);
}

/* ==== Round trips ==== */

static void request_gets_reply_from_server_loop(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;

        start_server(f);
        c = connect_client(f);
        assert_true(haven_msg_client_fd(c) >= 0);

        assert_round_trip(f, c, "{\"hello\":\"world\",\"n\":[1,2,3]}");
        assert_round_trip(f, c, "{}");
        assert_int_equal(f->n_handled, 2);
        assert_int_equal(haven_msg_server_connections(f->server), 1);

        c = haven_msg_client_free(c);
        run_until_connections(f, 0);
}

/* ==== Clients in other processes ==== */

/* Runs child(path, id) in n forked processes and the server's loop until all
 * of them exited, each with status 0. */
static void run_children(struct fixture *f, unsigned n,
                         _noreturn_ void (*child)(const char *path, int id)) {
        pid_t pids[8];
        bool reaped[8] = {};
        unsigned n_reaped = 0;
        uint64_t started;

        assert_true(n <= ELEMENTSOF(pids));
        for (unsigned i = 0; i < n; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0)
                        child(f->path, (int) i);
        }

        started = now_usec();
        while (n_reaped < n) {
                for (unsigned i = 0; i < n; i++) {
                        int status;

                        if (reaped[i] ||
                            waitpid(pids[i], &status, WNOHANG) != pids[i])
                                continue;
                        reaped[i] = true;
                        n_reaped++;
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                                fail_msg("client %u failed at step %d", i,
                                         WIFEXITED(status) ? WEXITSTATUS(status)
                                                           : -1);
                }
                if (n_reaped < n)
                        loop_step(f, started);
        }
}

/* Connects and makes 50 blocking calls; exits 0 when every reply matched,
 * else the number of the step that went wrong. */
static _noreturn_ void echo_calls_child(const char *path, int id) {
        struct haven_msg_client *c = NULL;

        if (haven_msg_client_connect(path, 0, &c) < 0)
                _exit(10);
        for (int i = 0; i < 50; i++) {
                struct json_object *req, *rep = NULL, *n;
                int r;

                req = json_object_new_object();
                if (!req ||
                    json_object_object_add(req, "n",
                                           json_object_new_int(id * 1000 + i)))
                        _exit(11);
                r = haven_msg_client_call(c, req, WATCHDOG_USEC, &rep);
                json_object_put(req);
                if (r < 0)
                        _exit(12);
                if (!json_object_object_get_ex(rep, "n", &n) ||
                    json_object_get_int(n) != id * 1000 + i)
                        _exit(13);
                json_object_put(rep);
        }
        haven_msg_client_free(c);
        _exit(0);
}

static void
blocking_clients_in_other_processes_are_served_concurrently(void **state) {
        struct fixture *f = *state;

        start_server(f);
        run_children(f, 4, echo_calls_child);
        assert_int_equal(f->n_handled, 4 * 50);
        run_until_connections(f, 0);
}

/* Sends a message of almost 1 MiB, far more than a socket buffer holds, and
 * checks that it comes back whole. */
static _noreturn_ void large_message_child(const char *path, int id) {
        struct haven_msg_client *c = NULL;
        struct json_object *req, *rep = NULL;

        if (haven_msg_client_connect(path, 0, &c) < 0)
                _exit(20);
        req = object_of_size(HAVEN_MSG_SIZE_DEFAULT - 1000 * (size_t) id);
        for (int i = 0; i < 3; i++) {
                if (haven_msg_client_call(c, req, WATCHDOG_USEC, &rep) < 0)
                        _exit(21);
                if (!json_object_equal(req, rep))
                        _exit(22);
                json_object_put(rep);
        }
        json_object_put(req);
        haven_msg_client_free(c);
        _exit(0);
}

static void large_messages_cross_in_many_reads_and_writes(void **state) {
        struct fixture *f = *state;

        start_server_with(f, 0, 0, 0);
        run_children(f, 2, large_message_child);
        assert_int_equal(f->n_handled, 2 * 3);
        run_until_connections(f, 0);
}

static void interleaved_clients_each_get_their_own_replies(void **state) {
        struct fixture *f = *state;
        struct haven_msg_client *clients[5];
        char text[64];

        start_server(f);
        for (int i = 0; i < 5; i++)
                clients[i] = connect_client(f);
        run_until_connections(f, 5);

        for (int round = 0; round < 3; round++) {
                for (int i = 0; i < 5; i++) {
                        snprintf(text, sizeof(text),
                                 "{\"client\":%d,\"round\":%d}", i, round);
                        send_text(clients[i], text);
                }
                /* Answer in reverse order: nothing may get mixed up. */
                for (int i = 4; i >= 0; i--) {
                        snprintf(text, sizeof(text),
                                 "{\"client\":%d,\"round\":%d}", i, round);
                        expect_reply(f, clients[i], text);
                }
        }

        for (int i = 0; i < 5; i++)
                haven_msg_client_free(clients[i]);
        run_until_connections(f, 0);
}

static void pipelined_requests_are_answered_in_order(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_free_ uint8_t *batch = NULL;
        size_t batch_size = 0;
        char text[32];

        start_server(f);
        c = connect_client(f);

        /* 100 frames in one write: the server sees them in few reads. */
        batch = malloc(100 * 32);
        assert_non_null(batch);
        for (int i = 0; i < 100; i++) {
                _cleanup_(json_object_putp) struct json_object *obj = NULL;
                _cleanup_free_ uint8_t *frame = NULL;
                size_t size;

                snprintf(text, sizeof(text), "{\"i\":%d}", i);
                obj = json(text);
                assert_int_equal(haven_msg_encode(obj, 0, &frame, &size), 0);
                memcpy(batch + batch_size, frame, size);
                batch_size += size;
        }
        send_raw(c, batch, batch_size);

        for (int i = 0; i < 100; i++) {
                snprintf(text, sizeof(text), "{\"i\":%d}", i);
                expect_reply(f, c, text);
        }
        assert_int_equal(f->n_handled, 100);
}

/* {"i":i,"pad":"xxx…"}, about 900 bytes. */
static struct json_object *numbered_object(int i) {
        char pad[881];
        struct json_object *obj = json_object_new_object();

        assert_non_null(obj);
        memset(pad, 'x', sizeof(pad) - 1);
        pad[sizeof(pad) - 1] = '\0';
        assert_int_equal(
                json_object_object_add(obj, "i", json_object_new_int(i)), 0);
        assert_int_equal(
                json_object_object_add(obj, "pad", json_object_new_string(pad)),
                0);
        return obj;
}

/* A client that sends without reading: once a frame's worth of replies
 * waits, the server stops reading requests, so the client's sends stall
 * instead of the server buffering without bound; once the client reads,
 * every request is answered, in order. */
static void server_stops_reading_while_replies_go_unread(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_free_ uint8_t *batch = NULL;
        const int n = 1000;
        size_t batch_size = 0, sent = 0;
        unsigned stalled = 0;
        uint64_t started;
        int fd, received = 0;

        start_server(f);
        c = connect_client(f);
        fd = haven_msg_client_fd(c);

        batch = malloc((size_t) n * 1000);
        assert_non_null(batch);
        for (int i = 0; i < n; i++) {
                _cleanup_(json_object_putp) struct json_object *obj =
                        numbered_object(i);
                _cleanup_free_ uint8_t *frame = NULL;
                size_t size;

                assert_int_equal(haven_msg_encode(obj, 0, &frame, &size), 0);
                assert_true(size <= 1000);
                memcpy(batch + batch_size, frame, size);
                batch_size += size;
        }

        /* Send until the socket is full and the server, with requests
         * waiting, handles none for three loop iterations in a row. */
        started = now_usec();
        while (stalled < 3) {
                ssize_t k;
                unsigned handled = f->n_handled;

                if (sent == batch_size)
                        fail_msg("all requests went out: no backpressure");
                k = send(fd, batch + sent, batch_size - sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k > 0)
                        sent += (size_t) k;
                else
                        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
                loop_step(f, started);
                stalled = k < 0 && f->n_handled == handled ? stalled + 1 : 0;
        }
        assert_true(f->n_handled < (unsigned) n);
        assert_int_equal(haven_msg_server_connections(f->server), 1);

        started = now_usec();
        while (received < n) {
                struct json_object *msg = NULL, *value;
                int r;

                if (sent < batch_size) {
                        ssize_t k = send(fd, batch + sent, batch_size - sent,
                                         MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (k > 0)
                                sent += (size_t) k;
                }
                r = haven_msg_client_recv(c, 0, &msg);
                if (r == -ETIMEDOUT) {
                        loop_step(f, started);
                        continue;
                }
                assert_int_equal(r, 0);
                assert_true(json_object_object_get_ex(msg, "i", &value));
                assert_int_equal(json_object_get_int(value), received);
                json_object_put(msg);
                received++;
        }
        assert_int_equal(f->n_handled, n);
}

static void peer_credentials_name_the_client_process(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        char text[128];

        start_server(f);
        c = connect_client(f);
        send_text(c, "{\"whoami\":true}");
        snprintf(text, sizeof(text), "{\"pid\":%ld,\"uid\":%ld}",
                 (long) getpid(), (long) getuid());
        expect_reply(f, c, text);
}

/* ==== Pushing to subscribers ==== */

static void
subscriber_gets_messages_pushed_after_handler_returned(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;

        start_server(f);
        c = connect_client(f);
        send_text(c, "{\"subscribe\":true}");
        expect_reply(f, c, "{\"subscribed\":true}");
        assert_non_null(f->subscriber);
        assert_ptr_equal(haven_msg_conn_get_userdata(f->subscriber), f);

        /* From outside any handler, as a daemon does when something
         * changes. */
        assert_int_equal(reply(f->subscriber, "{\"event\":1}"), 0);
        assert_int_equal(reply(f->subscriber, "{\"event\":2}"), 0);
        expect_reply(f, c, "{\"event\":1}");
        expect_reply(f, c, "{\"event\":2}");

        /* Requests still work on the same connection. */
        assert_round_trip(f, c, "{\"ping\":true}");
}

static void push_to_departed_subscriber_returns_enotconn(void **state) {
        struct fixture *f = *state;
        struct haven_msg_client *c;
        _cleanup_(json_object_putp) struct json_object *big =
                object_of_size(SMALL_LIMIT + 1);

        start_server(f);
        c = connect_client(f);
        send_text(c, "{\"subscribe\":true}");
        expect_reply(f, c, "{\"subscribed\":true}");

        assert_int_equal(haven_msg_conn_send(f->subscriber, big), -E2BIG);

        haven_msg_client_free(c);
        run_until_connections(f, 0);

        /* Our reference keeps the connection object valid. */
        assert_int_equal(reply(f->subscriber, "{\"event\":1}"), -ENOTCONN);
        assert_int_equal(haven_msg_conn_peer(f->subscriber, NULL, NULL),
                         -ENOTCONN);
        f->subscriber = haven_msg_conn_unref(f->subscriber);
}

static void
subscriber_that_never_reads_is_dropped_when_queue_overflows(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_(json_object_putp) struct json_object *event =
                object_of_size(SMALL_LIMIT);
        int r = 0, n;

        start_server(f);
        c = connect_client(f);
        send_text(c, "{\"subscribe\":true}");
        expect_reply(f, c, "{\"subscribed\":true}");

        for (n = 0; n < 100000; n++) {
                r = haven_msg_conn_send(f->subscriber, event);
                if (r < 0)
                        break;
        }
        assert_int_equal(r, -ENOBUFS);
        /* A burst of some size is queued before giving up. */
        assert_true(n >= 1000);

        assert_int_equal(haven_msg_server_connections(f->server), 0);
        assert_int_equal(haven_msg_conn_send(f->subscriber, event), -ENOTCONN);
        assert_server_serves_new_client(f);
}

static void server_free_closes_connections_held_by_subscribers(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        struct json_object *msg = NULL;

        start_server(f);
        c = connect_client(f);
        send_text(c, "{\"subscribe\":true}");
        expect_reply(f, c, "{\"subscribed\":true}");

        f->server = haven_msg_server_free(f->server);
        assert_int_equal(reply(f->subscriber, "{\"event\":1}"), -ENOTCONN);
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg),
                         -ECONNRESET);
}

static void server_can_be_freed_from_its_handler(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *other = NULL;
        struct json_object *msg = NULL;
        uint64_t started;
        struct stat st;

        start_server(f);
        c = connect_client(f);
        other = connect_client(f);
        run_until_connections(f, 2);

        /* Two frames in one read: the second must not be looked at. */
        send_text(c, "{\"shutdown\":true}");
        send_text(c, "{\"after\":true}");
        started = now_usec();
        while (f->server)
                loop_step(f, started);

        assert_int_equal(f->n_handled, 1);
        assert_int_equal(haven_msg_client_recv(c, 0, &msg), -ECONNRESET);
        assert_int_equal(haven_msg_client_recv(other, 0, &msg), -ECONNRESET);
        assert_int_equal(lstat(f->path, &st), -1);
}

/* ==== Bad frames ==== */

static void
oversized_frame_is_refused_and_server_serves_next_client(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_(json_object_putp) struct json_object *big =
                object_of_size(SMALL_LIMIT + 1);

        start_server(f);

        /* The client's own limit is the default, so it sends it. */
        c = connect_client(f);
        assert_int_equal(haven_msg_client_send(c, big, SEND_TIMEOUT_USEC), 0);
        expect_error_then_end(f, c, "bad-message", "too large");
        run_until_connections(f, 0);
        c = haven_msg_client_free(c);

        /* The header alone is enough: no waiting for 100000 bytes. */
        c = connect_client(f);
        send_header(c, 100000);
        expect_error_then_end(f, c, "bad-message", "too large");
        run_until_connections(f, 0);

        assert_server_serves_new_client(f);
        assert_int_equal(f->n_handled, 1);
}

static void frame_at_limit_is_accepted_one_byte_over_refused(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_(json_object_putp) struct json_object *at =
                object_of_size(SMALL_LIMIT);
        _cleanup_(json_object_putp) struct json_object *over =
                object_of_size(SMALL_LIMIT + 1);
        _cleanup_(json_object_putp) struct json_object *got = NULL;

        start_server(f);
        c = connect_client(f);

        assert_int_equal(haven_msg_client_send(c, at, SEND_TIMEOUT_USEC), 0);
        assert_int_equal(recv_running_loop(f, c, &got), 0);
        assert_true(json_object_equal(at, got));

        assert_int_equal(haven_msg_client_send(c, over, SEND_TIMEOUT_USEC), 0);
        expect_error_then_end(f, c, "bad-message", "too large");
        assert_int_equal(f->n_handled, 1);
}

static void zero_length_frame_is_refused(void **state) {
        struct fixture *f = *state;

        start_server(f);
        assert_payload_refused(f, "", 0, "empty");
}

static void frame_truncated_by_eof_does_not_stop_server(void **state) {
        struct fixture *f = *state;
        struct haven_msg_client *c;

        start_server(f);

        /* Half-closed peer: it hears why. */
        c = connect_client(f);
        send_header(c, 100);
        send_raw(c, "{\"a\":\"bcd", 9);
        assert_int_equal(shutdown(haven_msg_client_fd(c), SHUT_WR), 0);
        expect_error_then_end(f, c, "bad-message", "truncated");
        run_until_connections(f, 0);
        haven_msg_client_free(c);

        /* EOF inside the header. */
        c = connect_client(f);
        send_raw(c, "\0\0", 2);
        assert_int_equal(shutdown(haven_msg_client_fd(c), SHUT_WR), 0);
        expect_error_then_end(f, c, "bad-message", "truncated");
        run_until_connections(f, 0);
        haven_msg_client_free(c);

        /* Peer gone completely: the error reply has nowhere to go. */
        c = connect_client(f);
        send_header(c, 100);
        send_raw(c, "{\"a\"", 4);
        run_until_connections(f, 1);
        haven_msg_client_free(c);
        run_until_connections(f, 0);

        assert_server_serves_new_client(f);
        assert_int_equal(f->n_handled, 1);
}

static void garbage_bytes_get_error_reply(void **state) {
        struct fixture *f = *state;
        static const uint8_t garbage[] = {0xff, 0xfe, 0x00, 0x01, 0x1b, '{'};

        start_server(f);
        assert_payload_refused(f, garbage, sizeof(garbage), NULL);
        assert_payload_refused(f, "hello world", strlen("hello world"),
                               "not valid JSON");
}

static void json_that_is_not_an_object_is_refused(void **state) {
        struct fixture *f = *state;
        static const char *const texts[] = {
                "[1,2,3]", "[]", "\"text\"", "42", "true", "null",
        };

        start_server(f);
        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                assert_payload_refused(f, texts[i], strlen(texts[i]),
                                       "not a JSON object");
}

static void malformed_json_is_refused(void **state) {
        struct fixture *f = *state;
        static const struct {
                const char *text;
                size_t size;
                const char *reason;
        } cases[] = {
#define CASE(s, reason) {s, sizeof(s) - 1, reason}
                CASE("{\"a\":", "not valid JSON"),
                CASE("{\"a\":1", "not valid JSON"),
                CASE("{\"a\":1} x", "not valid JSON"),
                CASE("{}{}", "not valid JSON"),
                CASE("{\"a\":1,}", "not valid JSON"),
                CASE("{\"a\":\"\xff\xfe\"}", "not valid JSON"),
                CASE("{\"a\":\"\xc3\"}", "not valid JSON"),
                CASE("{\"a\":\"x\0y\"}", "NUL byte"),
                CASE("{}\0", "NUL byte"),
                CASE("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
                     "nested too deeply"),
#undef CASE
        };

        start_server(f);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_payload_refused(f, cases[i].text, cases[i].size,
                                       cases[i].reason);
}

static void handler_error_closes_connection_after_its_reply(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        struct json_object *msg = NULL;

        start_server(f);
        c = connect_client(f);
        /* The second request is never handled. */
        send_text(c, "{\"fail\":true}");
        send_text(c, "{\"after\":true}");
        expect_reply(f, c, "{\"bye\":true}");
        assert_int_equal(recv_running_loop(f, c, &msg), -ECONNRESET);
        run_until_connections(f, 0);
        assert_int_equal(f->n_handled, 1);
        assert_server_serves_new_client(f);
}

/* ==== Limits ==== */

static void
max_connections_refuses_extra_client_until_one_leaves(void **state) {
        struct fixture *f = *state;
        struct haven_msg_client *c1, *c2, *c3, *c4;

        start_server_with(f, SMALL_LIMIT, 2, 0);
        c1 = connect_client(f);
        c2 = connect_client(f);
        run_until_connections(f, 2);

        c3 = connect_client(f);
        expect_error_then_end(f, c3, "too-many-connections", NULL);
        assert_int_equal(haven_msg_server_connections(f->server), 2);
        assert_round_trip(f, c1, "{\"one\":1}");
        assert_round_trip(f, c2, "{\"two\":2}");

        haven_msg_client_free(c1);
        run_until_connections(f, 1);
        c4 = connect_client(f);
        assert_round_trip(f, c4, "{\"four\":4}");
        assert_int_equal(haven_msg_server_connections(f->server), 2);

        haven_msg_client_free(c2);
        haven_msg_client_free(c3);
        haven_msg_client_free(c4);
        run_until_connections(f, 0);
}

static void idle_connection_is_closed_after_timeout(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        struct json_object *msg = NULL;
        uint64_t idle = 100u * 1000u, started;

        start_server_with(f, SMALL_LIMIT, 0, idle);
        started = now_usec();
        c = connect_client(f);
        assert_round_trip(f, c, "{\"ping\":true}");

        run_until_connections(f, 0);
        assert_true(now_usec() - started >= idle);
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg),
                         -ECONNRESET);
}

/* ==== Socket file ==== */

static void socket_file_gets_mode_and_is_removed_on_free(void **state) {
        struct fixture *f = *state;
        struct haven_msg_server_config config = {
                .path = f->path,
                .mode = 0660,
                .handler = test_handler,
                .userdata = f,
        };
        struct stat st;

        assert_int_equal(haven_msg_server_new(f->event, &config, &f->server),
                         0);
        assert_int_equal(lstat(f->path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0660);

        f->server = haven_msg_server_free(f->server);
        assert_int_equal(lstat(f->path, &st), -1);
        assert_int_equal(errno, ENOENT);
}

static void restarted_server_replaces_stale_socket(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_server_freep) struct haven_msg_server *old = NULL;
        struct haven_msg_server_config config = {
                .path = f->path,
                .handler = test_handler,
                .userdata = f,
        };
        struct stat st;

        assert_int_equal(haven_msg_server_new(f->event, &config, &old), 0);
        assert_int_equal(haven_msg_server_new(f->event, &config, &f->server),
                         0);
        /* The old server leaving must not take the new one's socket. */
        old = haven_msg_server_free(old);
        assert_int_equal(lstat(f->path, &st), 0);
        assert_server_serves_new_client(f);
}

static void server_refuses_bad_config(void **state) {
        struct fixture *f = *state;
        struct haven_msg_server *s = NULL;
        char long_path[200];
        struct haven_msg_server_config config = {
                .path = f->path,
                .handler = NULL,
        };

        assert_int_equal(haven_msg_server_new(f->event, &config, &s), -EINVAL);
        config.handler = test_handler;
        config.max_size = HAVEN_MSG_SIZE_HARD_MAX + 1;
        assert_int_equal(haven_msg_server_new(f->event, &config, &s), -EINVAL);
        config.max_size = 0;
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[sizeof(long_path) - 1] = '\0';
        config.path = long_path;
        assert_int_equal(haven_msg_server_new(f->event, &config, &s),
                         -ENAMETOOLONG);
        assert_null(s);
}

/* ==== Client ==== */

static void connect_to_missing_socket_fails_with_enoent(void **state) {
        struct fixture *f = *state;
        struct haven_msg_client *c = NULL;

        assert_int_equal(haven_msg_client_connect(f->path, 0, &c), -ENOENT);
        assert_null(c);
}

static void connect_to_socket_without_listener_is_refused(void **state) {
        struct fixture *f = *state;
        struct haven_msg_client *c = NULL;
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        strcpy(addr.sun_path, f->path);
        assert_int_equal(bind(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);

        assert_int_equal(haven_msg_client_connect(f->path, 0, &c),
                         -ECONNREFUSED);
        assert_null(c);
}

static void client_recv_times_out_without_reply(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        struct json_object *msg = NULL;
        uint64_t started;

        start_server(f);
        c = connect_client(f);
        send_text(c, "{\"ignore\":true}");
        run_until_handled(f, 1);

        started = now_usec();
        assert_int_equal(haven_msg_client_recv(c, 50u * 1000u, &msg),
                         -ETIMEDOUT);
        assert_true(now_usec() - started >= 50u * 1000u);
        assert_null(msg);

        /* The connection is still fine afterwards. */
        assert_round_trip(f, c, "{\"after\":\"timeout\"}");
}

static void client_send_refuses_message_over_its_limit(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_(json_object_putp) struct json_object *big =
                object_of_size(65);

        start_server(f);
        assert_int_equal(haven_msg_client_connect(f->path, 64, &c), 0);
        assert_int_equal(haven_msg_client_send(c, big, SEND_TIMEOUT_USEC),
                         -E2BIG);
        /* Nothing went out: the stream is still in step. */
        assert_round_trip(f, c, "{\"small\":true}");
        assert_int_equal(f->n_handled, 1);
}

/* A plain listening socket plays a misbehaving server. */
static void client_reports_bad_frames_from_server(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_close_ int listen_fd = -1, peer = -1;
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        _cleanup_(json_object_putp) struct json_object *request =
                json("{\"anyone\":\"there\"}");
        struct json_object *msg = NULL;
        static const uint8_t frames[] =
                "\0\0\0\x04nope"      /* not JSON */
                "\0\0\0\x07{\"a\":1}" /* fine */
                "\0\0\0\x05[1,2]"     /* not an object */
                "\0\0\0\0"            /* empty */
                "\0\0\0\x07{\"b\":2}" /* fine */
                "\0\0\x10\x00";       /* 4096 > the client's 1024 */

        snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/raw", f->dir);
        listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(listen_fd >= 0);
        assert_int_equal(
                bind(listen_fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
        assert_int_equal(listen(listen_fd, 4), 0);

        assert_int_equal(
                haven_msg_client_connect(addr.sun_path, SMALL_LIMIT, &c), 0);
        peer = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(peer >= 0);

        /* A frame split across a timeout is completed by the next call. */
        assert_int_equal(write(peer, "\0\0\0\x07{\"a\"", 8), 8);
        assert_int_equal(haven_msg_client_recv(c, 0, &msg), -ETIMEDOUT);
        assert_int_equal(write(peer, ":0}", 3), 3);
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg), 0);
        assert_int_equal(json_object_get_int(json_object_object_get(msg, "a")),
                         0);
        json_object_put(msg);
        msg = NULL;

        assert_int_equal(write(peer, frames, sizeof(frames) - 1),
                         (ssize_t) sizeof(frames) - 1);
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg),
                         -EBADMSG);
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg), 0);
        assert_int_equal(json_object_get_int(json_object_object_get(msg, "a")),
                         1);
        json_object_put(msg);
        msg = NULL;
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg),
                         -EBADMSG);
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg),
                         -EBADMSG);
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg), 0);
        json_object_put(msg);
        msg = NULL;
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg),
                         -E2BIG);
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg),
                         -ENOTCONN);
        assert_null(msg);

        /* The end of the stream. */
        c = haven_msg_client_free(c);
        assert_int_equal(haven_msg_client_connect(addr.sun_path, 0, &c), 0);
        peer = safe_close(peer);
        peer = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(peer >= 0);
        peer = safe_close(peer);
        assert_int_equal(haven_msg_client_recv(c, SEND_TIMEOUT_USEC, &msg),
                         -ECONNRESET);
        assert_int_equal(
                haven_msg_client_call(c, request, SEND_TIMEOUT_USEC, &msg),
                -EPIPE);
        assert_null(msg);
}

/* ==== Loop client ==== */

struct link_probe {
        struct fixture *f;
        unsigned n_connected, n_disconnected, n_events, n_replies;
        int last_error;
        struct json_object *last_reply; /* a reference of ours */
        struct json_object *last_event;
        bool free_in_reply;
        struct haven_msg_link *link;
};

static void probe_reply(struct haven_msg_link *link, int error,
                        struct json_object *reply, void *userdata) {
        struct link_probe *p = userdata;

        p->n_replies++;
        p->last_error = error;
        json_object_put(p->last_reply);
        p->last_reply = reply ? json_object_get(reply) : NULL;
        if (p->free_in_reply)
                p->link = haven_msg_link_free(link);
}

static void probe_event(struct haven_msg_link *link, struct json_object *event,
                        void *userdata) {
        struct link_probe *p = userdata;

        p->n_events++;
        json_object_put(p->last_event);
        p->last_event = json_object_get(event);
}

static void probe_state(struct haven_msg_link *link, bool connected,
                        void *userdata) {
        struct link_probe *p = userdata;

        if (connected)
                p->n_connected++;
        else
                p->n_disconnected++;
}

static void probe_start(struct fixture *f, struct link_probe *p) {
        struct haven_msg_link_config config = {
                .path = f->path,
                .reconnect_min_usec = 20 * 1000,
                .reconnect_max_usec = 50 * 1000,
                .on_event = probe_event,
                .on_state = probe_state,
                .userdata = p,
        };

        *p = (struct link_probe){.f = f};
        assert_int_equal(haven_msg_link_new(f->event, &config, &p->link), 0);
}

static void probe_done(struct link_probe *p) {
        haven_msg_link_free(p->link);
        json_object_put(p->last_reply);
        json_object_put(p->last_event);
}

static void run_until_count(struct fixture *f, const unsigned *counter,
                            unsigned n) {
        uint64_t started = now_usec();

        while (*counter < n)
                loop_step(f, started);
}

static void probe_call(struct link_probe *p, const char *text,
                       uint64_t timeout_usec, uint64_t *ret_id) {
        _cleanup_(json_object_putp) struct json_object *request = json(text);

        assert_int_equal(haven_msg_link_call(p->link, request, timeout_usec,
                                             probe_reply, p, ret_id),
                         0);
}

static void link_connects_when_server_appears_and_gets_replies(void **state) {
        struct fixture *f = *state;
        struct link_probe p;
        struct json_object *v;

        probe_start(f, &p);
        /* No server yet: the first attempts fail and are retried. */
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(f->event, LOOP_STEP_USEC) >= 0);
        assert_int_equal(p.n_connected, 0);
        assert_false(haven_msg_link_connected(p.link));
        {
                _cleanup_(json_object_putp) struct json_object *request =
                        json("{\"a\":1}");
                assert_int_equal(haven_msg_link_call(p.link, request, 0,
                                                     probe_reply, &p, NULL),
                                 -ENOTCONN);
        }

        start_server(f);
        run_until_count(f, &p.n_connected, 1);
        assert_true(haven_msg_link_connected(p.link));

        /* Two calls in flight; each reply reaches its own call (tags). */
        probe_call(&p, "{\"n\":1}", SEND_TIMEOUT_USEC, NULL);
        probe_call(&p, "{\"n\":2}", SEND_TIMEOUT_USEC, NULL);
        assert_int_equal(p.n_replies, 0); /* never from inside the call */
        run_until_count(f, &p.n_replies, 2);
        assert_int_equal(p.last_error, 0);
        assert_true(json_object_object_get_ex(p.last_reply, "n", &v));
        assert_int_equal(json_object_get_int(v), 2);
        assert_true(json_object_object_get_ex(p.last_reply, "tag", &v));
        probe_done(&p);
}

static void link_hands_pushed_messages_to_on_event(void **state) {
        struct fixture *f = *state;
        struct link_probe p;
        struct json_object *v;

        start_server(f);
        probe_start(f, &p);
        run_until_count(f, &p.n_connected, 1);
        probe_call(&p, "{\"subscribe\":true}", SEND_TIMEOUT_USEC, NULL);
        run_until_count(f, &p.n_replies, 1);
        {
                _cleanup_(json_object_putp) struct json_object *event =
                        json("{\"event\":\"commit\",\"version\":7}");
                assert_int_equal(haven_msg_conn_send(f->subscriber, event), 0);
        }
        run_until_count(f, &p.n_events, 1);
        assert_true(json_object_object_get_ex(p.last_event, "version", &v));
        assert_int_equal(json_object_get_int(v), 7);
        assert_int_equal(p.n_replies, 1);
        probe_done(&p);
}

static void link_call_without_answer_times_out(void **state) {
        struct fixture *f = *state;
        struct link_probe p;
        uint64_t started;

        start_server(f);
        probe_start(f, &p);
        run_until_count(f, &p.n_connected, 1);
        started = now_usec();
        probe_call(&p, "{\"ignore\":true}", 50 * 1000, NULL);
        run_until_count(f, &p.n_replies, 1);
        assert_int_equal(p.last_error, -ETIMEDOUT);
        assert_null(p.last_reply);
        assert_true(now_usec() - started >= 50 * 1000);
        /* The link still works. */
        probe_call(&p, "{\"after\":true}", SEND_TIMEOUT_USEC, NULL);
        run_until_count(f, &p.n_replies, 2);
        assert_int_equal(p.last_error, 0);
        probe_done(&p);
}

static void link_fails_pending_calls_and_reconnects_after_restart(
        void **state) {
        struct fixture *f = *state;
        struct link_probe p;

        start_server(f);
        probe_start(f, &p);
        run_until_count(f, &p.n_connected, 1);
        probe_call(&p, "{\"ignore\":true}", 0, NULL);
        run_until_handled(f, 1);

        f->server = haven_msg_server_free(f->server);
        run_until_count(f, &p.n_disconnected, 1);
        assert_int_equal(p.n_replies, 1);
        assert_int_equal(p.last_error, -ECONNRESET);

        start_server(f);
        run_until_count(f, &p.n_connected, 2);
        probe_call(&p, "{\"again\":true}", SEND_TIMEOUT_USEC, NULL);
        run_until_count(f, &p.n_replies, 2);
        assert_int_equal(p.last_error, 0);
        probe_done(&p);
}

static void link_cancelled_call_is_never_answered(void **state) {
        struct fixture *f = *state;
        struct link_probe p;
        uint64_t id;

        start_server(f);
        probe_start(f, &p);
        run_until_count(f, &p.n_connected, 1);
        probe_call(&p, "{\"first\":true}", SEND_TIMEOUT_USEC, &id);
        haven_msg_link_cancel(p.link, id);
        probe_call(&p, "{\"second\":true}", SEND_TIMEOUT_USEC, NULL);
        run_until_count(f, &p.n_replies, 1);
        assert_true(json_object_object_get_ex(p.last_reply, "second", NULL));
        /* Nothing else arrives for the cancelled call. */
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(f->event, LOOP_STEP_USEC) >= 0);
        assert_int_equal(p.n_replies, 1);
        probe_done(&p);
}

static void link_freed_from_reply_cancels_the_other_calls(void **state) {
        struct fixture *f = *state;
        struct link_probe p;

        start_server(f);
        probe_start(f, &p);
        run_until_count(f, &p.n_connected, 1);
        probe_call(&p, "{\"answered\":true}", SEND_TIMEOUT_USEC, NULL);
        probe_call(&p, "{\"ignore\":true}", SEND_TIMEOUT_USEC, NULL);
        p.free_in_reply = true;
        run_until_count(f, &p.n_replies, 1);
        /* The first reply freed the link: the second call was told. */
        assert_int_equal(p.n_replies, 2);
        assert_int_equal(p.last_error, -ECANCELED);
        assert_null(p.link);
        probe_done(&p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
                T(encode_writes_big_endian_length_and_compact_text),
                T(encode_refuses_text_over_limit),
                T(request_gets_reply_from_server_loop),
                T(blocking_clients_in_other_processes_are_served_concurrently),
                T(large_messages_cross_in_many_reads_and_writes),
                T(interleaved_clients_each_get_their_own_replies),
                T(pipelined_requests_are_answered_in_order),
                T(server_stops_reading_while_replies_go_unread),
                T(peer_credentials_name_the_client_process),
                T(subscriber_gets_messages_pushed_after_handler_returned),
                T(push_to_departed_subscriber_returns_enotconn),
                T(subscriber_that_never_reads_is_dropped_when_queue_overflows),
                T(server_free_closes_connections_held_by_subscribers),
                T(server_can_be_freed_from_its_handler),
                T(oversized_frame_is_refused_and_server_serves_next_client),
                T(frame_at_limit_is_accepted_one_byte_over_refused),
                T(zero_length_frame_is_refused),
                T(frame_truncated_by_eof_does_not_stop_server),
                T(garbage_bytes_get_error_reply),
                T(json_that_is_not_an_object_is_refused),
                T(malformed_json_is_refused),
                T(handler_error_closes_connection_after_its_reply),
                T(max_connections_refuses_extra_client_until_one_leaves),
                T(idle_connection_is_closed_after_timeout),
                T(socket_file_gets_mode_and_is_removed_on_free),
                T(restarted_server_replaces_stale_socket),
                T(server_refuses_bad_config),
                T(connect_to_missing_socket_fails_with_enoent),
                T(connect_to_socket_without_listener_is_refused),
                T(client_recv_times_out_without_reply),
                T(client_send_refuses_message_over_its_limit),
                T(client_reports_bad_frames_from_server),
                T(link_connects_when_server_appears_and_gets_replies),
                T(link_hands_pushed_messages_to_on_event),
                T(link_call_without_answer_times_out),
                T(link_fails_pending_calls_and_reconnects_after_restart),
                T(link_cancelled_call_is_never_answered),
                T(link_freed_from_reply_cancels_the_other_calls),
#undef T
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
