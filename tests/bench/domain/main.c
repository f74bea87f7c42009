/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-bench-domain: commit latency and throughput of the configuration
 * domain, measured from C (no garbage collector between us and the figure).
 *   haven-bench-domain latency COUNT WRITER_SOCKET WATCHER_SOCKET...
 *       one one-row transaction at a time on WRITER; each sample ends when
 *       the writer answered and every watcher announced the commit
 *   haven-bench-domain throughput COUNT WINDOW WRITER_SOCKET
 *       COUNT transactions, WINDOW in flight, until the writer applied all
 * Prints one JSON object on stdout. A benchmark tool: blocking and simple.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "haven/json.h"
#include "haven/msg.h"

#define WATCHERS_MAX 8
#define TIMEOUT_USEC (10 * 1000 * 1000ULL)

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static struct json_object *insert_request(const char *prefix, size_t i) {
        char name[64];
        struct json_object *req = json_object_new_object(), *ops = json_object_new_array(),
                           *op = json_object_new_object(), *values = json_object_new_object();

        snprintf(name, sizeof name, "%s%zu", prefix, i);
        haven_json_add(values, "name", json_object_new_string(name));
        haven_json_add(values, "address", json_object_new_string("198.18.9.1"));
        haven_json_add(op, "op", json_object_new_string("insert"));
        haven_json_add(op, "table", json_object_new_string("hosts"));
        haven_json_add(op, "values", values);
        json_object_array_add(ops, op);
        haven_json_add(req, "request", json_object_new_string("submit"));
        haven_json_add(req, "actor", json_object_new_string("bench"));
        haven_json_add(req, "ops", ops);
        return req;
}

static struct haven_msg_client *connect_or_die(const char *path) {
        struct haven_msg_client *c;
        int r = haven_msg_client_connect(path, 0, &c);
        if (r < 0) {
                fprintf(stderr, "haven-bench-domain: cannot connect to %s: %s\n", path, strerror(-r));
                exit(1);
        }
        return c;
}

static struct json_object *recv_or_die(struct haven_msg_client *c) {
        struct json_object *o;
        int r = haven_msg_client_recv(c, TIMEOUT_USEC, &o);
        if (r < 0) {
                fprintf(stderr, "haven-bench-domain: no answer: %s\n", strerror(-r));
                exit(1);
        }
        return o;
}

static int64_t reply_version(struct json_object *reply) {
        int64_t version = -1;
        if (json_object_object_get_ex(reply, "error", NULL)) {
                fprintf(stderr, "haven-bench-domain: refused: %s\n", json_object_to_json_string(reply));
                exit(1);
        }
        (void) haven_json_get_int64(reply, "version", &version);
        return version;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static int latency(size_t count, const char *writer_path, char **watcher_paths, size_t n_watchers) {
        struct haven_msg_client *writer = connect_or_die(writer_path), *watchers[WATCHERS_MAX];
        int64_t seen[WATCHERS_MAX];
        uint64_t *samples = calloc(count, sizeof *samples);

        for (size_t w = 0; w < n_watchers; w++) {
                struct json_object *sub = json_object_new_object(), *events = json_object_new_array();
                json_object_array_add(events, json_object_new_string("commit"));
                haven_json_add(sub, "request", json_object_new_string("subscribe"));
                haven_json_add(sub, "events", events);
                watchers[w] = connect_or_die(watcher_paths[w]);
                if (haven_msg_client_send(watchers[w], sub, TIMEOUT_USEC) < 0)
                        return 1;
                json_object_put(recv_or_die(watchers[w]));
                json_object_put(sub);
                seen[w] = 0;
        }
        for (size_t i = 0; i < count; i++) {
                struct json_object *req = insert_request("lat-", i), *reply;
                uint64_t t0 = now_ns();
                int64_t version;

                if (haven_msg_client_send(writer, req, TIMEOUT_USEC) < 0)
                        return 1;
                reply = recv_or_die(writer);
                version = reply_version(reply);
                json_object_put(reply);
                json_object_put(req);
                for (size_t w = 0; w < n_watchers; w++)
                        while (seen[w] < version) {
                                struct json_object *ev = recv_or_die(watchers[w]);
                                (void) haven_json_get_int64(ev, "version", &seen[w]);
                                json_object_put(ev);
                        }
                samples[i] = now_ns() - t0;
        }
        qsort(samples, count, sizeof *samples, cmp_u64);
        printf("{\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"count\":%zu}\n",
               samples[count / 2] / 1e6, samples[(count * 99) / 100] / 1e6,
               samples[count - 1] / 1e6, count);
        free(samples);
        return 0;
}

static int throughput(size_t count, size_t window, const char *writer_path) {
        struct haven_msg_client *writer = connect_or_die(writer_path);
        size_t sent = 0, done = 0;
        uint64_t t0 = now_ns();

        while (done < count) {
                while (sent < count && sent - done < window) {
                        struct json_object *req = insert_request("tps-", sent++);
                        if (haven_msg_client_send(writer, req, TIMEOUT_USEC) < 0)
                                return 1;
                        json_object_put(req);
                }
                struct json_object *reply = recv_or_die(writer);
                (void) reply_version(reply);
                json_object_put(reply);
                done++;
        }
        printf("{\"tps\":%.1f,\"count\":%zu,\"window\":%zu}\n",
               count / ((now_ns() - t0) / 1e9), count, window);
        return 0;
}

int main(int argc, char **argv) {
        if (argc >= 5 && strcmp(argv[1], "latency") == 0 && (size_t) (argc - 4) <= WATCHERS_MAX)
                return latency(strtoul(argv[2], NULL, 10), argv[3], argv + 4, (size_t) (argc - 4));
        if (argc == 5 && strcmp(argv[1], "throughput") == 0)
                return throughput(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10), argv[4]);
        fprintf(stderr, "usage: haven-bench-domain latency COUNT WRITER WATCHER...\n"
                        "       haven-bench-domain throughput COUNT WINDOW WRITER\n");
        return 2;
}
