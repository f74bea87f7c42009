/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-bench-cpg: the bare CPG round trip, the baseline for the domain's
 * commit latency. Run inside lab nodes:
 *   haven-bench-cpg echo                 answer every ping with a pong
 *   haven-bench-cpg ping MEMBERS COUNT   multicast COUNT pings (agreed order,
 *                                        like the domain's transactions), each
 *                                        after every other member answered
 *                                        the last; print p50/p99 in ms as JSON
 * A benchmark tool: blocking and simple on purpose.
 */
#include <corosync/cpg.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GROUP "haven-bench-cpg"

struct bench_msg {
        char kind;       /* 'p' ping, 'o' pong */
        uint32_t origin; /* the pinging node */
        uint64_t seq;
};

static cpg_handle_t handle;
static uint32_t self;
static bool echo_mode;
static size_t n_members;
static uint64_t waiting_seq;
static size_t pongs;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static void send_msg(struct bench_msg m) {
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof m };
        while (cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1) == CS_ERR_TRY_AGAIN)
                usleep(100);
}

static void on_deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid,
                       void *msg, size_t size) {
        struct bench_msg m;

        if (size != sizeof m)
                return;
        memcpy(&m, msg, sizeof m);
        if (echo_mode && m.kind == 'p' && nodeid != self)
                send_msg((struct bench_msg) { .kind = 'o', .origin = m.origin, .seq = m.seq });
        else if (!echo_mode && m.kind == 'o' && m.origin == self && m.seq == waiting_seq)
                pongs++;
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *g,
                       const struct cpg_address *members, size_t n,
                       const struct cpg_address *left, size_t n_left,
                       const struct cpg_address *joined, size_t n_joined) {
        n_members = n;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static void dispatch_until(bool (*done)(void), uint64_t timeout_ns) {
        uint64_t deadline = now_ns() + timeout_ns;
        int fd;

        cpg_fd_get(handle, &fd);
        while (!done()) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (now_ns() > deadline) {
                        fprintf(stderr, "haven-bench-cpg: timed out\n");
                        exit(1);
                }
                if (poll(&p, 1, 100) > 0 && cpg_dispatch(handle, CS_DISPATCH_ALL) != CS_OK) {
                        fprintf(stderr, "haven-bench-cpg: lost corosync\n");
                        exit(1);
                }
        }
}

static size_t want_members;
static bool members_ready(void) { return n_members >= want_members; }
static bool pongs_ready(void) { return pongs + 1 >= n_members; }
static bool never(void) { return false; }

int main(int argc, char **argv) {
        cpg_callbacks_t callbacks = { .cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg };
        struct cpg_name group = { .length = sizeof GROUP - 1, .value = GROUP };
        uint64_t *samples;
        size_t count;

        if (argc < 2 || (strcmp(argv[1], "echo") && (strcmp(argv[1], "ping") || argc != 4))) {
                fprintf(stderr, "usage: haven-bench-cpg echo | ping MEMBERS COUNT\n");
                return 2;
        }
        echo_mode = strcmp(argv[1], "echo") == 0;
        if (cpg_initialize(&handle, &callbacks) != CS_OK || cpg_local_get(handle, &self) != CS_OK ||
            cpg_join(handle, &group) != CS_OK) {
                fprintf(stderr, "haven-bench-cpg: cannot join the CPG group\n");
                return 1;
        }
        if (echo_mode) {
                dispatch_until(never, UINT64_MAX / 2);
                return 0;
        }
        want_members = strtoul(argv[2], NULL, 10);
        count = strtoul(argv[3], NULL, 10);
        if (count == 0 || want_members < 2)
                return 2;
        samples = calloc(count, sizeof *samples);
        dispatch_until(members_ready, 30ULL * 1000000000ULL);
        for (size_t i = 0; i < count; i++) {
                uint64_t t0 = now_ns();
                waiting_seq = i + 1;
                pongs = 0;
                send_msg((struct bench_msg) { .kind = 'p', .origin = self, .seq = waiting_seq });
                dispatch_until(pongs_ready, 10ULL * 1000000000ULL);
                samples[i] = now_ns() - t0;
        }
        qsort(samples, count, sizeof *samples, cmp_u64);
        printf("{\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"count\":%zu}\n",
               samples[count / 2] / 1e6, samples[(count * 99) / 100] / 1e6,
               count);
        cpg_finalize(handle);
        free(samples);
        return 0;
}
