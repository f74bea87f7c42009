/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the input path of the framed-message server
 * (haven/msg.h), the local API of every Haven daemon. One server, on an
 * sd-event loop in this process, listens on a socket in a temporary
 * directory for the whole run; its handler echoes each message back with
 * haven_msg_conn_send(). Each input is the byte stream of one client
 * connection: it is written as is (any number of frames, good or bad,
 * possibly cut short), the write side is shut down, and the loop runs
 * until the server has closed the connection while the client reads and
 * discards the replies. Covers the frame reader (headers, limits, partial
 * and pipelined frames, end of stream), payload parsing, error replies,
 * output queueing and flow control, and connection teardown. Besides what
 * the sanitizers catch, it aborts when the server has not closed the
 * connection a bounded number of loop iterations after the client is done
 * (nothing here waits for a timer, so it never would).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include "haven/msg.h"
#include "fuzz-util.h"

/* Small, so that libFuzzer's default inputs (up to 4096 bytes) can hold
 * frames over the limit and several frames within it. */
#define FRAME_SIZE_MAX 1024u
/* Loop iterations per input. Every step is driven by socket readiness, so
 * a connection that is not closed by then never will be. */
#define ITERATIONS_MAX 10000u

static char dir[64];
static char path[sizeof dir + 8];
static sd_event *event;
static struct haven_msg_server *server;

static int on_message(struct haven_msg_conn *conn, struct json_object *msg,
                      void *userdata) {
        /* A failure (the echo cannot be queued, e.g. over the limit)
         * closes the connection: that path is covered too. */
        return haven_msg_conn_send(conn, msg);
}

static void cleanup(void) {
        server = haven_msg_server_free(server); /* removes the socket file */
        event = sd_event_unref(event);
        (void) rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        struct haven_msg_server_config config = {
                .path = path,
                .mode = 0600,
                .max_size = FRAME_SIZE_MAX,
                .handler = on_message,
        };
        const char *tmp = getenv("TMPDIR");

        /* The socket path must fit a sockaddr_un. */
        if (!tmp || !*tmp || strlen(tmp) > 32)
                tmp = "/tmp";
        (void) snprintf(dir, sizeof dir, "%s/haven-fuzz-msg-XXXXXX", tmp);
        check(mkdtemp(dir));
        (void) snprintf(path, sizeof path, "%s/socket", dir);

        check(sd_event_new(&event) >= 0);
        check(haven_msg_server_new(event, &config, &server) >= 0);
        check(atexit(cleanup) == 0);
        return 0;
}

/* Reads and discards whatever the server sent. Returns true at end of
 * stream (the server closed the connection) or when the connection broke. */
static bool drain(int fd) {
        uint8_t buf[16384];

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);

                if (n > 0)
                        continue;
                if (n == 0)
                        return true;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return false;
                return true; /* ECONNRESET: the server dropped us */
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
        } addr = {.un.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;
        size_t written = 0;
        bool write_done = false, eof = false;
        unsigned i;

        memcpy(addr.un.sun_path, path, strlen(path));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        check(fd >= 0);
        /* A unix socket connects at once; the server accepts in the loop. */
        check(connect(fd, &addr.sa, sizeof(addr.un)) == 0);

        for (i = 0; i < ITERATIONS_MAX; i++) {
                if (!write_done && written < size) {
                        ssize_t n = send(fd, data + written, size - written,
                                         MSG_DONTWAIT | MSG_NOSIGNAL);

                        if (n > 0)
                                written += (size_t) n;
                        else if (n < 0 && errno != EAGAIN &&
                                 errno != EWOULDBLOCK && errno != EINTR)
                                write_done = true; /* refused and closed */
                }
                if (!write_done && written == size) {
                        (void) shutdown(fd, SHUT_WR);
                        write_done = true;
                }

                check(sd_event_run(event, 0) >= 0);

                if (!eof)
                        eof = drain(fd);
                if (eof && write_done &&
                    haven_msg_server_connections(server) == 0)
                        break;
        }
        check(i < ITERATIONS_MAX);
        return 0;
}
