/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven/peer.h: framed JSON over TLS between nodes. The
 * server runs on an sd-event loop in this process; the client blocks, so it
 * runs in a forked child (which reports a broken promise on stderr and
 * exits 1) while the parent drives the loop until the child is gone
 * (bounded by a watchdog, never by sleeping). Only loopback addresses.
 *
 * Bad inputs tried:
 *   credentials: a key file that is not a key, a certificate of another
 *     key, a missing certificate next to an existing key; explicit file
 *     names: the same path twice, an empty SAN, a missing directory; PEM
 *     texts: garbage, a key of another certificate, a certificate not
 *     valid yet or any more;
 *   server side: a plain-TCP client sending an HTTP request and binary
 *     garbage, a frame over the limit, a silent connection (no TLS
 *     handshake), an idle TLS connection, more clients than allowed, a
 *     client that leaves before its deferred answer, a failing handler,
 *     bad configurations (no handler, no credentials, host names and
 *     bracketed addresses, a limit over the hard maximum, a port in use);
 *   client side: a wrong and a malformed pinned fingerprint, a closed
 *     port, a server that accepts but never speaks, a server that does
 *     not speak TLS;
 *   frames (pure): short headers and payloads, over the limit, empty,
 *     not JSON, not an object, trailing data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "haven/json.h"
#include "haven/peer.h"

#include "test-util.h"
#include "test-tmp.h"

#define WATCHDOG_USEC (20u * 1000u * 1000u)
#define LOOP_STEP_USEC (10u * 1000u)
#define CALL_TIMEOUT_USEC (5u * 1000u * 1000u)
#define SHORT_TIMEOUT_USEC (200u * 1000u)
#define SMALL_LIMIT 1024u

struct fixture {
        char dir[64];
        char creds_dir[96];
        sd_event *event;
        struct haven_peer_credentials *credentials;
        char fingerprint[HAVEN_PEER_FINGERPRINT_SIZE];
        struct haven_peer_server *server;
        uint16_t port;
        unsigned n_handled;
        char last_address[64];

        /* A deferred answer: the connection, held until the timer fires. */
        struct haven_peer_conn *held;
        sd_event_source *defer_timer;
        bool deferred_fired;
        int deferred_result;
};

static int reply(struct haven_peer_conn *conn, const char *text) {
        _cleanup_(json_object_putp) struct json_object *obj = json(text);

        return haven_peer_conn_send(conn, obj);
}

static int on_defer_timer(sd_event_source *source, uint64_t usec,
                          void *userdata) {
        struct fixture *f = userdata;

        f->deferred_result = reply(f->held, "{\"deferred\":true}");
        f->held = haven_peer_conn_unref(f->held);
        f->deferred_fired = true;
        return 0;
}

/* The server's handler: echoes every message, except
 *   {"defer":ms}   keeps a reference and answers {"deferred":true} from a
 *                  timer ms later;
 *   {"keep":…}     keeps a reference, answers {"kept":true};
 *   {"hold":…}     keeps a reference, no answer (the test gives it);
 *   {"whoami":…}   answers {"address":…} (the client's address);
 *   {"many":n,"size":s}  answers with n objects of s bytes each;
 *   {"ignore":…}   no answer;
 *   {"fail":…}     answers {"bye":true} and fails (closes). */
static int test_handler(struct haven_peer_conn *conn, struct json_object *msg,
                        void *userdata) {
        struct fixture *f = userdata;
        struct json_object *value;
        char text[128];
        int r;

        f->n_handled++;
        snprintf(f->last_address, sizeof(f->last_address), "%s",
                 haven_peer_conn_remote_address(conn));

        if (json_object_object_get_ex(msg, "defer", &value)) {
                assert_null(f->held);
                f->held = haven_peer_conn_ref(conn);
                sd_event_source_disable_unref(f->defer_timer);
                f->defer_timer = NULL;
                return sd_event_add_time_relative(
                        f->event, &f->defer_timer, CLOCK_MONOTONIC,
                        (uint64_t) json_object_get_int(value) * 1000u, 1,
                        on_defer_timer, f);
        }
        if (json_object_object_get_ex(msg, "keep", NULL)) {
                assert_null(f->held);
                f->held = haven_peer_conn_ref(conn);
                return reply(conn, "{\"kept\":true}");
        }
        if (json_object_object_get_ex(msg, "hold", NULL)) {
                assert_null(f->held);
                f->held = haven_peer_conn_ref(conn);
                return 0;
        }
        if (json_object_object_get_ex(msg, "whoami", NULL)) {
                snprintf(text, sizeof(text), "{\"address\":\"%s\"}",
                         haven_peer_conn_remote_address(conn));
                return reply(conn, text);
        }
        if (json_object_object_get_ex(msg, "many", &value)) {
                _cleanup_(json_object_putp) struct json_object *big =
                        object_of_size((size_t) json_object_get_int(
                                json_object_object_get(msg, "size")));

                for (int i = json_object_get_int(value); i > 0; i--) {
                        r = haven_peer_conn_send(conn, big);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (json_object_object_get_ex(msg, "ignore", NULL))
                return 0;
        if (json_object_object_get_ex(msg, "fail", NULL)) {
                r = reply(conn, "{\"bye\":true}");
                return r < 0 ? r : -EPROTO;
        }
        return haven_peer_conn_send(conn, msg);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-peer-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->creds_dir, sizeof(f->creds_dir), "%s/creds", f->dir);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(haven_peer_credentials_load_or_create(f->creds_dir,
                                                               &f->credentials),
                         0);
        haven_peer_credentials_fingerprint(f->credentials, f->fingerprint);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;

        haven_peer_conn_unref(f->held);
        sd_event_source_disable_unref(f->defer_timer);
        haven_peer_server_free(f->server);
        haven_peer_credentials_free(f->credentials);
        sd_event_unref(f->event);
        remove_tree(f->dir);
        free(f);
        return 0;
}

static void start_server_with(struct fixture *f, size_t max_size,
                              unsigned max_connections, uint64_t timeout_usec) {
        struct haven_peer_server_config config = {
                .address = "127.0.0.1",
                .port = 0,
                .credentials = f->credentials,
                .max_size = max_size,
                .max_connections = max_connections,
                .timeout_usec = timeout_usec,
                .handler = test_handler,
                .userdata = f,
        };

        assert_int_equal(haven_peer_server_new(f->event, &config, &f->server),
                         0);
        f->port = haven_peer_server_port(f->server);
        assert_true(f->port > 0);
}

static void start_server(struct fixture *f) {
        start_server_with(f, 0, 0, 0);
}

/* ==== Driving the loop ==== */

static void loop_step(struct fixture *f, uint64_t started) {
        if (now_usec() - started > WATCHDOG_USEC)
                fail_msg("watchdog: expected state not reached in time");
        assert_true(sd_event_run(f->event, LOOP_STEP_USEC) >= 0);
}

static void run_until_connections(struct fixture *f, unsigned n) {
        uint64_t started = now_usec();

        while (haven_peer_server_connections(f->server) != n)
                loop_step(f, started);
}

static void run_until_handled(struct fixture *f, unsigned n) {
        uint64_t started = now_usec();

        while (f->n_handled < n)
                loop_step(f, started);
}

static void run_until_deferred_fired(struct fixture *f) {
        uint64_t started = now_usec();

        while (!f->deferred_fired)
                loop_step(f, started);
}

/* ==== The client side, in a child process ==== */

#define child_check(expr)                                                      \
        do {                                                                   \
                if (!(expr)) {                                                 \
                        fprintf(stderr, "child: %s:%d: broken promise: %s\n",  \
                                __FILE__, __LINE__, #expr);                    \
                        _exit(1);                                              \
                }                                                              \
        } while (0)

#define child_check_int(a, b)                                                  \
        do {                                                                   \
                long long _a_ = (a), _b_ = (b);                                \
                if (_a_ != _b_) {                                              \
                        fprintf(stderr,                                        \
                                "child: %s:%d: %s is %lld (%s), not %lld\n",   \
                                __FILE__, __LINE__, #a, _a_,                   \
                                _a_ < 0 ? strerror((int) -_a_) : "", _b_);     \
                        _exit(1);                                              \
                }                                                              \
        } while (0)

typedef void (*child_fn)(struct fixture *f);

/* Waits for the child while running the loop. Returns its wait status. */
static int wait_running_loop(struct fixture *f, pid_t pid) {
        uint64_t started = now_usec();
        int status;

        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);

                assert_true(r >= 0);
                if (r == pid)
                        return status;
                if (now_usec() - started > WATCHDOG_USEC) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, &status, 0);
                        fail_msg("watchdog: child did not finish in time");
                }
                assert_true(sd_event_run(f->event, LOOP_STEP_USEC) >= 0);
        }
}

/* Runs fn in a child process while the parent runs the server's loop;
 * fails unless the child kept all its promises. */
static void run_child(struct fixture *f, child_fn fn) {
        int status;
        pid_t pid;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                fn(f);
                _exit(0);
        }
        status = wait_running_loop(f, pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("child failed (status 0x%x)", (unsigned) status);
}

static struct haven_peer_client *
child_connect_to(const char *host, uint16_t port, const char *pin) {
        struct haven_peer_client *c = NULL;

        child_check_int(haven_peer_client_connect(host, port, pin,
                                                  CALL_TIMEOUT_USEC, &c),
                        0);
        child_check(c);
        return c;
}

static struct haven_peer_client *child_connect(struct fixture *f) {
        return child_connect_to("127.0.0.1", f->port, NULL);
}

/* Sends text, returns the reply (a new reference). */
static struct json_object *child_call(struct haven_peer_client *c,
                                      const char *text) {
        struct json_object *req = json_tokener_parse(text), *answer = NULL;

        child_check(req);
        child_check_int(
                haven_peer_client_call(c, req, CALL_TIMEOUT_USEC, &answer), 0);
        json_object_put(req);
        child_check(answer);
        return answer;
}

static void child_expect(struct haven_peer_client *c, const char *request,
                         const char *expected_text) {
        _cleanup_(json_object_putp) struct json_object *got =
                child_call(c, request);
        _cleanup_(json_object_putp) struct json_object *expected =
                json_tokener_parse(expected_text);

        if (!json_object_equal(got, expected)) {
                fprintf(stderr, "child: expected %s, got %s\n", expected_text,
                        json_object_to_json_string(got));
                _exit(1);
        }
}

static void child_round_trip(struct haven_peer_client *c, const char *text) {
        child_expect(c, text, text);
}

/* The next message is {"error":{"code":"bad-message","message":…}} with a
 * message containing reason, then the stream ends. */
static void child_expect_refusal(struct haven_peer_client *c,
                                 const char *reason) {
        _cleanup_(json_object_putp) struct json_object *msg = NULL;
        struct json_object *error, *value;

        child_check_int(haven_peer_client_recv(c, CALL_TIMEOUT_USEC, &msg), 0);
        child_check(json_object_object_get_ex(msg, "error", &error));
        child_check(json_object_object_get_ex(error, "code", &value));
        child_check(streq(json_object_get_string(value), "bad-message"));
        child_check(json_object_object_get_ex(error, "message", &value));
        child_check(strstr(json_object_get_string(value), reason));
        json_object_put(TAKE_PTR(msg));
        child_check_int(haven_peer_client_recv(c, CALL_TIMEOUT_USEC, &msg),
                        -ECONNRESET);
}

/* A plain TCP connection to the server, no TLS. */
static int child_tcp_connect(uint16_t port) {
        struct sockaddr_in addr = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        int fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        child_check(fd >= 0);
        child_check(connect(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0);
        return fd;
}

/* Reads until the server closes the connection (end of stream or reset);
 * returns how long that took, in microseconds. */
static uint64_t child_wait_for_close(int fd) {
        uint64_t started = now_usec();
        char buf[4096];

        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t n;

                child_check(poll(&pfd, 1, 5000) == 1);
                n = read(fd, buf, sizeof(buf));
                if (n <= 0)
                        return now_usec() - started;
        }
}

/* ==== Frames ==== */

static void frame_parse_takes_one_object_per_frame(void **state) {
        static const uint8_t two[] = "\0\0\0\x07{\"a\":1}"
                                     "\0\0\0\x02{}";
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        const char *reason = NULL;
        size_t consumed = 0;

        assert_int_equal(haven_peer_frame_parse(two, sizeof(two) - 1, 0, &obj,
                                                &consumed, &reason),
                         1);
        assert_int_equal(consumed, 11);
        assert_int_equal(json_object_get_int(json_object_object_get(obj, "a")),
                         1);
        json_object_put(TAKE_PTR(obj));
        assert_int_equal(haven_peer_frame_parse(two + 11, 6, 0, &obj, &consumed,
                                                &reason),
                         1);
        assert_int_equal(consumed, 6);
        assert_true(json_object_is_type(obj, json_type_object));

        /* Short header, short payload: more is needed. */
        consumed = 0;
        assert_int_equal(
                haven_peer_frame_parse(two, 3, 0, &obj, &consumed, &reason), 0);
        assert_int_equal(
                haven_peer_frame_parse(two, 10, 0, &obj, &consumed, &reason),
                0);
        assert_int_equal(
                haven_peer_frame_parse(two, 0, 0, &obj, &consumed, &reason), 0);
        assert_int_equal(consumed, 0);
}

static void frame_parse_refuses_bad_frames(void **state) {
        static const struct {
                const char *bytes;
                size_t size;
                const char *reason;
        } bad[] = {
                {"\0\0\0\0", 4, "empty frame"},
                {"\0\0\0\x04nope", 8, "not valid JSON"},
                {"\0\0\0\x05[1,2]", 9, "not a JSON object"},
                {"\0\0\0\x04null", 8, "not a JSON object"},
                {"\0\0\0\x09{\"a\":1} x", 13, "not valid JSON"},
                {"\0\0\0\x0e{\"a\":1}{\"b\":2}", 18, "not valid JSON"},
                {"\0\0\0\x06{\"a\0\"}", 10, "not valid JSON"},
        };
        struct json_object *obj = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *reason = NULL;
                size_t consumed = 0;

                assert_int_equal(
                        haven_peer_frame_parse((const uint8_t *) bad[i].bytes,
                                               bad[i].size, 0, &obj, &consumed,
                                               &reason),
                        -EBADMSG);
                assert_int_equal(consumed, bad[i].size);
                assert_string_equal(reason, bad[i].reason);
                assert_null(obj);
        }
}

static void frame_parse_refuses_oversized_frame_on_its_header(void **state) {
        static const uint8_t header[] = {0, 0, 0x04, 0x01}; /* 1025 */
        static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
        struct json_object *obj = NULL;
        const char *reason = NULL;
        size_t consumed = 0;

        assert_int_equal(haven_peer_frame_parse(header, sizeof(header),
                                                SMALL_LIMIT, &obj, &consumed,
                                                &reason),
                         -E2BIG);
        assert_string_equal(reason, "frame too large");
        /* Within the default limit, it is merely incomplete. */
        assert_int_equal(haven_peer_frame_parse(header, sizeof(header), 0, &obj,
                                                &consumed, &reason),
                         0);
        /* 4 GiB is over the hard maximum, whatever was asked for. */
        assert_int_equal(haven_peer_frame_parse(huge, sizeof(huge), SIZE_MAX,
                                                &obj, &consumed, &reason),
                         -E2BIG);
        assert_null(obj);
}

/* ==== Credentials ==== */

static bool file_equal(const char *a, const char *b) {
        char ca[8192], cb[8192];
        ssize_t na, nb;
        _cleanup_close_ int fa = open(a, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int fb = open(b, O_RDONLY | O_CLOEXEC);

        assert_true(fa >= 0 && fb >= 0);
        na = read(fa, ca, sizeof(ca));
        nb = read(fb, cb, sizeof(cb));
        return na > 0 && na == nb && memcmp(ca, cb, (size_t) na) == 0;
}

static void copy_file(const char *from, const char *to) {
        char buf[8192];
        ssize_t n;
        _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int out =
                open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(in >= 0 && out >= 0);
        n = read(in, buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(write(out, buf, (size_t) n), n);
}

static void credentials_are_created_once_then_reloaded_identical(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_peer_credentials_freep) struct haven_peer_credentials
                *again = NULL;
        char path[160], saved[160], fingerprint[HAVEN_PEER_FINGERPRINT_SIZE];
        struct stat st;
        struct dirent *de;
        unsigned n_files = 0;
        DIR *d;

        /* setup() created them in a directory that did not exist. */
        assert_int_equal(stat(f->creds_dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        snprintf(path, sizeof(path), "%s/peer.key", f->creds_dir);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        snprintf(saved, sizeof(saved), "%s/saved.key", f->dir);
        copy_file(path, saved);
        snprintf(path, sizeof(path), "%s/peer.crt", f->creds_dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);

        /* Nothing else is left there (no temporary files). */
        d = opendir(f->creds_dir);
        assert_non_null(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n_files++;
        closedir(d);
        assert_int_equal(n_files, 2);

        /* "AB:CD:…": 32 hex pairs. */
        assert_int_equal(strlen(f->fingerprint), 95);
        for (size_t i = 0; i < 95; i++)
                if (i % 3 == 2)
                        assert_int_equal(f->fingerprint[i], ':');
                else
                        assert_non_null(
                                strchr("0123456789ABCDEF", f->fingerprint[i]));

        assert_int_equal(
                haven_peer_credentials_load_or_create(f->creds_dir, &again), 0);
        haven_peer_credentials_fingerprint(again, fingerprint);
        assert_string_equal(fingerprint, f->fingerprint);
        snprintf(path, sizeof(path), "%s/peer.key", f->creds_dir);
        assert_true(file_equal(path, saved));
}

static void missing_certificate_is_made_again_for_the_same_key(void **state) {
        struct fixture *f = *state;
        _cleanup_(haven_peer_credentials_freep) struct haven_peer_credentials
                *again = NULL;
        char key[160], crt[160], saved[160];

        snprintf(key, sizeof(key), "%s/peer.key", f->creds_dir);
        snprintf(crt, sizeof(crt), "%s/peer.crt", f->creds_dir);
        snprintf(saved, sizeof(saved), "%s/saved.key", f->dir);
        copy_file(key, saved);
        assert_int_equal(unlink(crt), 0);

        assert_int_equal(
                haven_peer_credentials_load_or_create(f->creds_dir, &again), 0);
        assert_int_equal(access(crt, F_OK), 0);
        assert_true(file_equal(key, saved));
        /* The key and the new certificate belong together. */
        again = haven_peer_credentials_free(again);
        assert_int_equal(
                haven_peer_credentials_load_or_create(f->creds_dir, &again), 0);
}

static void broken_or_foreign_files_are_refused(void **state) {
        struct fixture *f = *state;
        struct haven_peer_credentials *c = NULL;
        char other[160], from[200], to[200];
        int fd;

        /* A certificate of another node's key. */
        snprintf(other, sizeof(other), "%s/other", f->dir);
        assert_int_equal(haven_peer_credentials_load_or_create(other, &c), 0);
        c = haven_peer_credentials_free(c);
        snprintf(from, sizeof(from), "%s/peer.crt", other);
        snprintf(to, sizeof(to), "%s/peer.crt", f->creds_dir);
        copy_file(from, to);
        assert_int_equal(
                haven_peer_credentials_load_or_create(f->creds_dir, &c),
                -EKEYREJECTED);
        assert_null(c);

        /* A key file that is no key. */
        snprintf(to, sizeof(to), "%s/peer.key", other);
        fd = open(to, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "not a key\n", 10), 10);
        close(fd);
        assert_int_equal(haven_peer_credentials_load_or_create(other, &c),
                         -EBADMSG);
        assert_null(c);
}

/* The certificate in PEM text. */
static gnutls_x509_crt_t crt_of(const char *pem) {
        gnutls_x509_crt_t crt;
        gnutls_datum_t d = {.data = (unsigned char *) pem,
                            .size = (unsigned) strlen(pem)};

        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM),
                         0);
        return crt;
}

static char *file_text(const char *path) {
        char *buf = calloc(1, 65536);
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        assert_non_null(buf);
        assert_true(fd >= 0);
        assert_true(read(fd, buf, 65535) > 0);
        close(fd);
        return buf;
}

static void credentials_in_named_files_carry_sans_and_export_pem(void **state) {
        static const char *const sans[] = {"node1.example.org", "198.18.0.1",
                                           "2001:db8::7", NULL};
        static const uint8_t v4[] = {198, 18, 0, 1};
        struct fixture *f = *state;
        _cleanup_(haven_peer_credentials_freep) struct haven_peer_credentials
                *c = NULL,
                *again = NULL, *copy = NULL;
        _cleanup_free_ char *cert = NULL, *key = NULL, *on_disk = NULL,
                            *other_cert = NULL, *other_key = NULL;
        char cert_path[160], key_path[160], copy_cert[160], copy_key[160],
                fp1[HAVEN_PEER_FINGERPRINT_SIZE],
                fp2[HAVEN_PEER_FINGERPRINT_SIZE];
        gnutls_x509_crt_t crt;
        struct stat st;

        snprintf(cert_path, sizeof cert_path, "%s/https.crt", f->dir);
        snprintf(key_path, sizeof key_path, "%s/https.key", f->dir);
        assert_int_equal(haven_peer_credentials_load_or_create_files(
                                 cert_path, key_path, sans, &c),
                         0);
        assert_int_equal(stat(key_path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(stat(cert_path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);

        /* The PEM export is what is on disk. */
        assert_int_equal(haven_peer_credentials_export_pem(c, &cert, &key), 0);
        on_disk = file_text(cert_path);
        assert_string_equal(cert, on_disk);
        free(on_disk);
        on_disk = file_text(key_path);
        assert_string_equal(key, on_disk);

        /* Names and addresses as subject alternative names. */
        crt = crt_of(cert);
        assert_true(gnutls_x509_crt_check_hostname(crt, "node1.example.org"));
        assert_false(gnutls_x509_crt_check_hostname(crt, "node2.example.org"));
        assert_true(gnutls_x509_crt_check_ip(crt, v4, sizeof v4, 0));
        gnutls_x509_crt_deinit(crt);

        /* Loaded again: the same. */
        assert_int_equal(haven_peer_credentials_load_or_create_files(
                                 cert_path, key_path, NULL, &again),
                         0);
        haven_peer_credentials_fingerprint(c, fp1);
        haven_peer_credentials_fingerprint(again, fp2);
        assert_string_equal(fp1, fp2);

        /* From PEM, checked, and saved elsewhere. */
        assert_int_equal(haven_peer_credentials_from_pem(
                                 cert, key, (uint64_t) time(NULL), &copy),
                         0);
        snprintf(copy_cert, sizeof copy_cert, "%s/copy.crt", f->dir);
        snprintf(copy_key, sizeof copy_key, "%s/copy.key", f->dir);
        assert_int_equal(haven_peer_credentials_save(copy, copy_cert, copy_key),
                         0);
        free(on_disk);
        on_disk = file_text(copy_cert);
        assert_string_equal(on_disk, cert);
        assert_int_equal(stat(copy_key, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        /* What is refused. */
        again = haven_peer_credentials_free(again);
        assert_int_equal(haven_peer_credentials_export_pem(
                                 f->credentials, &other_cert, &other_key),
                         0);
        assert_int_equal(haven_peer_credentials_from_pem(cert, other_key,
                                                         (uint64_t) time(NULL),
                                                         &again),
                         -EKEYREJECTED);
        /* Not valid yet (a day back is its start), or no longer. */
        assert_int_equal(
                haven_peer_credentials_from_pem(
                        cert, key, (uint64_t) time(NULL) - 3 * 86400, &again),
                -EKEYEXPIRED);
        assert_int_equal(haven_peer_credentials_from_pem(
                                 cert, key, 253402300800ull, &again),
                         -EKEYEXPIRED);
        assert_int_equal(
                haven_peer_credentials_from_pem("not PEM", key, 1, &again),
                -EBADMSG);
        assert_int_equal(haven_peer_credentials_from_pem(cert, "not PEM",
                                                         (uint64_t) time(NULL),
                                                         &again),
                         -EBADMSG);
        assert_null(again);
        assert_int_equal(haven_peer_credentials_load_or_create_files(
                                 cert_path, cert_path, NULL, &again),
                         -EINVAL);
        assert_int_equal(
                haven_peer_credentials_load_or_create_files(
                        "/nonexistent-dir/a.crt", key_path, NULL, &again),
                -ENOENT);
        snprintf(copy_cert, sizeof copy_cert, "%s/empty.crt", f->dir);
        snprintf(copy_key, sizeof copy_key, "%s/empty.key", f->dir);
        assert_int_equal(haven_peer_credentials_load_or_create_files(
                                 copy_cert, copy_key,
                                 (const char *const[]){"", NULL}, &again),
                         -EINVAL);
        assert_null(again);
}

/* ==== Requests and replies ==== */

static void child_request_reply(struct fixture *f) {
        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c =
                child_connect(f);
        _cleanup_(json_object_putp) struct json_object *big =
                object_of_size(300u * 1024u);
        _cleanup_(json_object_putp) struct json_object *answer = NULL;
        char fingerprint[HAVEN_PEER_FINGERPRINT_SIZE];
        struct json_object *req;

        /* The client sees the certificate the server was given. */
        haven_peer_client_fingerprint(c, fingerprint);
        child_check(streq(fingerprint, f->fingerprint));

        child_round_trip(c, "{\"hello\":\"node\",\"n\":[1,2,3]}");
        child_expect(c, "{\"whoami\":true}", "{\"address\":\"127.0.0.1\"}");

        /* Many TLS records each way. */
        child_check_int(
                haven_peer_client_call(c, big, CALL_TIMEOUT_USEC, &answer), 0);
        child_check(json_object_equal(big, answer));

        /* Pipelined requests are answered in order. */
        for (int i = 0; i < 3; i++) {
                char text[32];

                snprintf(text, sizeof(text), "{\"i\":%d}", i);
                req = json_tokener_parse(text);
                child_check_int(
                        haven_peer_client_send(c, req, CALL_TIMEOUT_USEC), 0);
                json_object_put(req);
        }
        for (int i = 0; i < 3; i++) {
                json_object_put(TAKE_PTR(answer));
                child_check_int(
                        haven_peer_client_recv(c, CALL_TIMEOUT_USEC, &answer),
                        0);
                child_check_int(json_object_get_int(
                                        json_object_object_get(answer, "i")),
                                i);
        }

        /* No answer: the receive times out and the connection goes on. */
        req = json_tokener_parse("{\"ignore\":true}");
        json_object_put(TAKE_PTR(answer));
        child_check_int(haven_peer_client_call(c, req, 50u * 1000u, &answer),
                        -ETIMEDOUT);
        json_object_put(req);
        child_round_trip(c, "{\"after\":\"timeout\"}");
}

static void request_gets_reply_over_tls(void **state) {
        struct fixture *f = *state;

        start_server(f);
        run_child(f, child_request_reply);
        assert_int_equal(f->n_handled, 8);
        assert_string_equal(f->last_address, "127.0.0.1");
        run_until_connections(f, 0);
}

/* More than loopback's socket buffers hold (the send buffer grows to
 * 4 MiB): the server has to wait for room, in the middle of TLS records,
 * and stop reading requests while their replies go unread. */
#define SLOW_REQUESTS 24
#define SLOW_REPLY_SIZE (1000u * 1000u)

static void child_slow_reader(struct fixture *f) {
        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c =
                child_connect(f);
        struct json_object *answer = NULL;
        char text[64];

        snprintf(text, sizeof(text), "{\"many\":1,\"size\":%u}",
                 SLOW_REPLY_SIZE);
        for (int i = 0; i < SLOW_REQUESTS; i++) {
                struct json_object *req = json_tokener_parse(text);

                child_check_int(
                        haven_peer_client_send(c, req, CALL_TIMEOUT_USEC), 0);
                json_object_put(req);
        }

        (void) poll(NULL, 0, 300);
        for (int i = 0; i < SLOW_REQUESTS; i++) {
                const char *pad = NULL;

                child_check_int(
                        haven_peer_client_recv(c, CALL_TIMEOUT_USEC, &answer),
                        0);
                child_check_int(haven_json_get_string(answer, "pad", &pad), 0);
                child_check_int(strlen(pad), SLOW_REPLY_SIZE - 10);
                child_check(strspn(pad, "x") == strlen(pad));
                json_object_put(TAKE_PTR(answer));
        }
        child_round_trip(c, "{\"after\":\"all of it\"}");
}

static void replies_wait_for_a_slow_reader(void **state) {
        struct fixture *f = *state;

        start_server(f);
        run_child(f, child_slow_reader);
        assert_int_equal(f->n_handled, SLOW_REQUESTS + 1);
}

static void child_whoami_over_ipv6(struct fixture *f) {
        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c =
                child_connect_to("::1", f->port, f->fingerprint);

        child_expect(c, "{\"whoami\":true}", "{\"address\":\"::1\"}");
}

static void server_on_ipv6_loopback_is_reachable(void **state) {
        struct fixture *f = *state;
        struct haven_peer_server_config config = {
                .address = "::1",
                .credentials = f->credentials,
                .handler = test_handler,
                .userdata = f,
        };
        int r;

        r = haven_peer_server_new(f->event, &config, &f->server);
        if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT)
                skip(); /* no IPv6 here */
        assert_int_equal(r, 0);
        f->port = haven_peer_server_port(f->server);
        run_child(f, child_whoami_over_ipv6);
}

/* The idle timeout here is long enough that a child slowed down by a busy
 * machine still sends its request in time. */
#define DEFER_IDLE_TIMEOUT_USEC (500u * 1000u)

static void child_deferred(struct fixture *f) {
        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c =
                child_connect(f);

        /* Answered 3 times the idle timeout later: a connection the
         * handler holds is not idle. */
        child_expect(c, "{\"defer\":1500}", "{\"deferred\":true}");
}

static void handler_answers_later_from_a_timer(void **state) {
        struct fixture *f = *state;

        start_server_with(f, 0, 0, DEFER_IDLE_TIMEOUT_USEC);
        run_child(f, child_deferred);
        assert_true(f->deferred_fired);
        assert_int_equal(f->deferred_result, 0);
        assert_null(f->held);
}

static void child_hold(struct fixture *f) {
        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c =
                child_connect(f);
        struct json_object *req = json_tokener_parse("{\"hold\":true}");
        _cleanup_(json_object_putp) struct json_object *answer = NULL;
        _cleanup_(json_object_putp) struct json_object *expected =
                json_tokener_parse("{\"late\":true}");

        child_check_int(haven_peer_client_send(c, req, CALL_TIMEOUT_USEC), 0);
        json_object_put(req);
        child_check_int(haven_peer_client_recv(c, CALL_TIMEOUT_USEC, &answer),
                        0);
        child_check(json_object_equal(answer, expected));
}

static int on_late_answer(sd_event_source *source, uint64_t usec,
                          void *userdata) {
        struct fixture *f = userdata;

        f->deferred_result = reply(f->held, "{\"late\":true}");
        f->held = haven_peer_conn_unref(f->held);
        f->deferred_fired = true;
        return 0;
}

static void answer_given_when_idle_timer_is_due_still_goes_out(void **state) {
        struct fixture *f = *state;
        int status;
        pid_t pid;

        start_server_with(f, 0, 0, SHORT_TIMEOUT_USEC);
        fflush(stdout);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                child_hold(f);
                _exit(0);
        }
        run_until_handled(f, 1);

        /* The answer comes from a timer that is due at once and runs before
         * the connection's own timers. The loop stalls past the idle
         * deadline (busy elsewhere), so that in its next iteration the
         * answer is given, the reference dropped, and the idle timer is
         * due: the answer must still go out. */
        assert_int_equal(sd_event_add_time_relative(f->event, &f->defer_timer,
                                                    CLOCK_MONOTONIC, 1, 1,
                                                    on_late_answer, f),
                         0);
        assert_int_equal(sd_event_source_set_priority(
                                 f->defer_timer, SD_EVENT_PRIORITY_IMPORTANT),
                         0);
        (void) poll(NULL, 0, 2 * SHORT_TIMEOUT_USEC / 1000);

        status = wait_running_loop(f, pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_true(f->deferred_fired);
        assert_int_equal(f->deferred_result, 0);
}

static void child_defer_and_leave(struct fixture *f) {
        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c =
                child_connect(f);
        struct json_object *req = json_tokener_parse("{\"defer\":300}");

        child_check_int(haven_peer_client_send(c, req, CALL_TIMEOUT_USEC), 0);
        json_object_put(req);
}

static void deferred_answer_to_departed_client_returns_enotconn(void **state) {
        struct fixture *f = *state;

        start_server(f);
        run_child(f, child_defer_and_leave);
        run_until_connections(f, 0);
        run_until_deferred_fired(f);
        assert_int_equal(f->deferred_result, -ENOTCONN);
}

static void child_handler_fails(struct fixture *f) {
        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c =
                child_connect(f);
        struct json_object *answer = NULL;

        child_expect(c, "{\"fail\":true}", "{\"bye\":true}");
        child_check_int(haven_peer_client_recv(c, CALL_TIMEOUT_USEC, &answer),
                        -ECONNRESET);
}

static void handler_error_closes_connection_after_its_reply(void **state) {
        struct fixture *f = *state;

        start_server(f);
        run_child(f, child_handler_fails);
        run_until_connections(f, 0);
}

static void child_keep_then_lose_server(struct fixture *f) {
        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c =
                child_connect(f);
        struct json_object *answer = NULL;

        child_expect(c, "{\"keep\":true}", "{\"kept\":true}");
        /* The parent frees the server now. */
        child_check_int(haven_peer_client_recv(c, CALL_TIMEOUT_USEC, &answer),
                        -ECONNRESET);
}

static void server_free_closes_connections_held_by_handlers(void **state) {
        struct fixture *f = *state;
        int status;
        pid_t pid;

        start_server(f);
        fflush(stdout);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                child_keep_then_lose_server(f);
                _exit(0);
        }
        run_until_handled(f, 1);
        assert_non_null(f->held);
        assert_true(haven_peer_conn_is_open(f->held));
        f->server = haven_peer_server_free(f->server);
        assert_false(haven_peer_conn_is_open(f->held));
        assert_int_equal(reply(f->held, "{\"too\":\"late\"}"), -ENOTCONN);
        f->held = haven_peer_conn_unref(f->held);

        status = wait_running_loop(f, pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ==== Fingerprint pinning ==== */

static void child_pinning(struct fixture *f) {
        struct haven_peer_client *c = NULL;
        char lower[HAVEN_PEER_FINGERPRINT_SIZE], wrong[sizeof(f->fingerprint)];
        size_t n = 0;

        /* The right one, as shown, and lower-case without colons. */
        c = child_connect_to("127.0.0.1", f->port, f->fingerprint);
        child_round_trip(c, "{\"pinned\":true}");
        c = haven_peer_client_free(c);
        for (const char *p = f->fingerprint; *p; p++)
                if (*p != ':')
                        lower[n++] =
                                (char) (*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a'
                                                               : *p);
        lower[n] = '\0';
        c = child_connect_to("127.0.0.1", f->port, lower);
        c = haven_peer_client_free(c);

        /* One digit off. */
        strcpy(wrong, f->fingerprint);
        wrong[0] = wrong[0] == '0' ? '1' : '0';
        child_check_int(haven_peer_client_connect("127.0.0.1", f->port, wrong,
                                                  CALL_TIMEOUT_USEC, &c),
                        -EPERM);
        child_check(!c);

        /* Not a fingerprint at all: refused before connecting. */
        child_check_int(haven_peer_client_connect("127.0.0.1", f->port, "zz",
                                                  CALL_TIMEOUT_USEC, &c),
                        -EINVAL);
        wrong[94] = '\0';
        child_check_int(haven_peer_client_connect("127.0.0.1", f->port, wrong,
                                                  CALL_TIMEOUT_USEC, &c),
                        -EINVAL);
        child_check(!c);
}

static void pinned_fingerprint_must_match(void **state) {
        struct fixture *f = *state;

        start_server(f);
        run_child(f, child_pinning);
        /* Only the first, pinned, connection sent a request. */
        assert_int_equal(f->n_handled, 1);
        run_until_connections(f, 0);
}

/* ==== Misbehaving clients ==== */

static void child_garbage_then_tls(struct fixture *f) {
        static const char http[] = "GET / HTTP/1.1\r\nHost: node1\r\n\r\n";
        static const uint8_t binary[] = {0x16, 0x03, 0x01, 0xff, 0xff, 0x00,
                                         0x00, 0x00, 0x04, '{',  '}'};
        int fd;

        fd = child_tcp_connect(f->port);
        child_check(write(fd, http, sizeof(http) - 1) ==
                    (ssize_t) sizeof(http) - 1);
        (void) child_wait_for_close(fd);
        close(fd);

        /* Looks like a TLS record header announcing 64 KiB, then nonsense. */
        fd = child_tcp_connect(f->port);
        child_check(write(fd, binary, sizeof(binary)) ==
                    (ssize_t) sizeof(binary));
        (void) shutdown(fd, SHUT_WR);
        (void) child_wait_for_close(fd);
        close(fd);

        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c =
                child_connect(f);
        child_round_trip(c, "{\"still\":\"serving\"}");
}

static void plain_tcp_garbage_does_not_stop_server(void **state) {
        struct fixture *f = *state;

        start_server(f);
        run_child(f, child_garbage_then_tls);
        assert_int_equal(f->n_handled, 1);
        run_until_connections(f, 0);
}

static void child_oversized(struct fixture *f) {
        _cleanup_(json_object_putp) struct json_object *big =
                object_of_size(SMALL_LIMIT + 1);
        _cleanup_(json_object_putp) struct json_object *at_limit =
                object_of_size(SMALL_LIMIT);
        _cleanup_(json_object_putp) struct json_object *answer = NULL;
        struct haven_peer_client *c;

        /* At the limit is fine. */
        c = child_connect(f);
        child_check_int(
                haven_peer_client_call(c, at_limit, CALL_TIMEOUT_USEC, &answer),
                0);
        child_check(json_object_equal(at_limit, answer));

        /* One byte over: an error, then the end. */
        child_check_int(haven_peer_client_send(c, big, CALL_TIMEOUT_USEC), 0);
        child_expect_refusal(c, "too large");
        c = haven_peer_client_free(c);

        c = child_connect(f);
        child_round_trip(c, "{\"still\":\"serving\"}");
        c = haven_peer_client_free(c);
}

static void oversized_frame_gets_error_and_close(void **state) {
        struct fixture *f = *state;

        start_server_with(f, SMALL_LIMIT, 0, 0);
        run_child(f, child_oversized);
        assert_int_equal(f->n_handled, 2);
        run_until_connections(f, 0);
}

static void child_too_many(struct fixture *f) {
        struct haven_peer_client *c1, *c2, *c3 = NULL;
        int r = 0;

        c1 = child_connect(f);
        c2 = child_connect(f);
        child_round_trip(c1, "{\"one\":1}");
        child_round_trip(c2, "{\"two\":2}");

        /* The third is closed before TLS. */
        r = haven_peer_client_connect("127.0.0.1", f->port, NULL,
                                      CALL_TIMEOUT_USEC, &c3);
        child_check_int(r, -ECONNRESET);
        child_check(!c3);

        /* Once one leaves, a new one gets in (after the server noticed). */
        c1 = haven_peer_client_free(c1);
        for (int attempt = 0; attempt < 200; attempt++) {
                r = haven_peer_client_connect("127.0.0.1", f->port, NULL,
                                              CALL_TIMEOUT_USEC, &c3);
                if (r == 0)
                        break;
                child_check_int(r, -ECONNRESET);
                (void) poll(NULL, 0, 10);
        }
        child_check_int(r, 0);
        child_round_trip(c3, "{\"three\":3}");
        child_round_trip(c2, "{\"two\":2}");
        haven_peer_client_free(c2);
        haven_peer_client_free(c3);
}

static void connections_over_the_limit_are_closed(void **state) {
        struct fixture *f = *state;

        start_server_with(f, 0, 2, 0);
        run_child(f, child_too_many);
        run_until_connections(f, 0);
}

static void child_silent(struct fixture *f) {
        _cleanup_(json_object_putp) struct json_object *answer = NULL;
        struct haven_peer_client *c;
        uint64_t took;
        int fd;

        /* No TLS handshake at all. */
        fd = child_tcp_connect(f->port);
        took = child_wait_for_close(fd);
        close(fd);
        child_check(took >= SHORT_TIMEOUT_USEC * 3 / 4);

        /* A handshake, then silence. */
        c = child_connect(f);
        child_check_int(haven_peer_client_recv(c, CALL_TIMEOUT_USEC, &answer),
                        -ECONNRESET);
        haven_peer_client_free(c);

        /* A handshake that never finishes: the client hello, cut short. */
        fd = child_tcp_connect(f->port);
        child_check(write(fd, "\x16\x03\x01\x00\x40\x01", 6) == 6);
        took = child_wait_for_close(fd);
        close(fd);
        child_check(took >= SHORT_TIMEOUT_USEC * 3 / 4);
}

static void silent_connections_are_closed_after_timeout(void **state) {
        struct fixture *f = *state;

        start_server_with(f, 0, 0, SHORT_TIMEOUT_USEC);
        run_child(f, child_silent);
        run_until_connections(f, 0);
        assert_int_equal(f->n_handled, 0);
}

/* ==== Client errors ==== */

/* A TCP socket bound to a loopback port. listen_backlog < 0: not listening.
 * Returns the fd; *ret_port is the port. */
static int loopback_socket(int listen_backlog, uint16_t *ret_port) {
        struct sockaddr_in addr = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        socklen_t len = sizeof(addr);
        int fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
        if (listen_backlog >= 0)
                assert_int_equal(listen(fd, listen_backlog), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &addr, &len), 0);
        *ret_port = ntohs(addr.sin_port);
        return fd;
}

static void connect_to_closed_port_is_refused(void **state) {
        struct haven_peer_client *c = NULL;
        _cleanup_close_ int fd = -1;
        uint16_t port;

        /* Bound, so no one else takes the port, but not listening. */
        fd = loopback_socket(-1, &port);
        assert_int_equal(haven_peer_client_connect("127.0.0.1", port, NULL,
                                                   CALL_TIMEOUT_USEC, &c),
                         -ECONNREFUSED);
        assert_null(c);
        assert_int_equal(haven_peer_client_connect("127.0.0.1", 0, NULL,
                                                   CALL_TIMEOUT_USEC, &c),
                         -EINVAL);
}

static void silent_server_makes_handshake_time_out(void **state) {
        struct haven_peer_client *c = NULL;
        _cleanup_close_ int fd = -1;
        uint64_t started;
        uint16_t port;

        /* The kernel completes the TCP handshake; no one ever answers. */
        fd = loopback_socket(4, &port);
        started = now_usec();
        assert_int_equal(haven_peer_client_connect("127.0.0.1", port, NULL,
                                                   SHORT_TIMEOUT_USEC, &c),
                         -ETIMEDOUT);
        assert_true(now_usec() - started >= SHORT_TIMEOUT_USEC);
        assert_null(c);
}

static void server_that_does_not_speak_tls_is_a_protocol_error(void **state) {
        static const char answer[] =
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        struct haven_peer_client *c = NULL;
        _cleanup_close_ int fd = -1;
        uint16_t port;
        int status;
        pid_t pid;

        fd = loopback_socket(4, &port);
        fflush(stdout);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                char buf[4096];

                child_check(conn >= 0);
                child_check(read(conn, buf, sizeof(buf)) > 0);
                child_check(write(conn, answer, sizeof(answer) - 1) ==
                            (ssize_t) sizeof(answer) - 1);
                (void) child_wait_for_close(conn);
                _exit(0);
        }

        assert_int_equal(haven_peer_client_connect("127.0.0.1", port, NULL,
                                                   CALL_TIMEOUT_USEC, &c),
                         -EPROTO);
        assert_null(c);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ==== Configuration ==== */

static void server_refuses_bad_config(void **state) {
        struct fixture *f = *state;
        struct haven_peer_server *s = NULL;
        struct haven_peer_server_config config = {
                .address = "127.0.0.1",
                .credentials = f->credentials,
                .handler = NULL,
        };
        static const char *const not_literals[] = {"localhost", "[::1]",
                                                   "127.0.0.1:80", ""};

        assert_int_equal(haven_peer_server_new(f->event, &config, &s), -EINVAL);
        config.handler = test_handler;
        config.credentials = NULL;
        assert_int_equal(haven_peer_server_new(f->event, &config, &s), -EINVAL);
        config.credentials = f->credentials;
        config.max_size = HAVEN_PEER_SIZE_HARD_MAX + 1;
        assert_int_equal(haven_peer_server_new(f->event, &config, &s), -EINVAL);
        config.max_size = 0;
        for (size_t i = 0; i < ELEMENTSOF(not_literals); i++) {
                config.address = not_literals[i];
                assert_int_equal(haven_peer_server_new(f->event, &config, &s),
                                 -EINVAL);
        }
        assert_null(s);

        /* A port in use. */
        start_server(f);
        config.address = "127.0.0.1";
        config.port = f->port;
        assert_int_equal(haven_peer_server_new(f->event, &config, &s),
                         -EADDRINUSE);
        assert_null(s);
}

static void server_keeps_its_own_reference_to_credentials(void **state) {
        struct fixture *f = *state;

        start_server(f);
        f->credentials = haven_peer_credentials_free(f->credentials);
        run_child(f, child_request_reply);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
                T(frame_parse_takes_one_object_per_frame),
                T(frame_parse_refuses_bad_frames),
                T(frame_parse_refuses_oversized_frame_on_its_header),
                T(credentials_are_created_once_then_reloaded_identical),
                T(missing_certificate_is_made_again_for_the_same_key),
                T(broken_or_foreign_files_are_refused),
                T(credentials_in_named_files_carry_sans_and_export_pem),
                T(request_gets_reply_over_tls),
                T(replies_wait_for_a_slow_reader),
                T(server_on_ipv6_loopback_is_reachable),
                T(handler_answers_later_from_a_timer),
                T(answer_given_when_idle_timer_is_due_still_goes_out),
                T(deferred_answer_to_departed_client_returns_enotconn),
                T(handler_error_closes_connection_after_its_reply),
                T(server_free_closes_connections_held_by_handlers),
                T(pinned_fingerprint_must_match),
                T(plain_tcp_garbage_does_not_stop_server),
                T(oversized_frame_gets_error_and_close),
                T(connections_over_the_limit_are_closed),
                T(silent_connections_are_closed_after_timeout),
                T(connect_to_closed_port_is_refused),
                T(silent_server_makes_handshake_time_out),
                T(server_that_does_not_speak_tls_is_a_protocol_error),
                T(server_refuses_bad_config),
                T(server_keeps_its_own_reference_to_credentials),
#undef T
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
