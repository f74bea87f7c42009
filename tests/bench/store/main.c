/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-bench-store: the cost of the replicated store on this machine's disk,
 * without corosync. A fresh store in a new directory (under DIR, default
 * $TMPDIR or /tmp; removed afterwards) takes one-row inserts into `hosts`:
 *   1. COUNT transactions, each in its own batch (begin, apply, end): the
 *      time of store_apply and of store_batch_end (the commit), each alone;
 *   2. COUNT transactions in batches of 64: transactions per second.
 * Human-readable figures go to stderr, one JSON object to stdout
 * (tests/bench/store.sh turns it into the tracked bench lines).
 *   haven-bench-store [-n COUNT] [DIR]
 * A benchmark tool: blocking and simple on purpose.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "haven/json.h"

#include "../../../daemons/domaind/domaind-store.h"

#define COUNT_DEFAULT 5000
#define BATCH 64
#define TIME0 UINT64_C(1700000000000000)

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* The p-th percentile (0..1) of n sorted samples, in microseconds. */
static double pct_us(const uint64_t *sorted, size_t n, double p) {
        size_t i = (size_t) ((double) n * p);

        return (double) sorted[i < n ? i : n - 1] / 1e3;
}

static void die(const char *what, int r, const struct store_error *e) {
        fprintf(stderr, "haven-bench-store: %s: %s%s%s\n", what, strerror(-r),
                e ? ": " : "", e ? e->message : "");
        exit(1);
}

/* The ops of one transaction: insert host PREFIX-I, as the replication
 * layer would hand them over (parsed from the message's text). */
static struct json_object *insert_ops(const char *prefix, size_t i) {
        struct json_object *ops = NULL;
        char text[160];
        int n, r;

        n = snprintf(text, sizeof text,
                     "[{\"op\":\"insert\",\"table\":\"hosts\",\"values\":"
                     "{\"name\":\"%s-%zu\",\"address\":\"198.18.9.1\"}}]",
                     prefix, i);
        r = haven_json_parse(text, (size_t) n, sizeof text, &ops);
        if (r < 0)
                die("parsing the ops", r, NULL);
        return ops;
}

static void apply_one(struct store *s, struct json_object *ops, uint64_t t) {
        struct store_tx tx = {
                .ops = ops,
                .actor = "bench",
                .node = "node1",
                .time_usec = t,
        };
        struct json_object *result = NULL;
        struct store_error e;
        int r;

        /* With the result, as haven-domaind asks for it. */
        r = store_apply(s, &tx, &result, &e);
        if (r < 0)
                die("applying", r, &e);
        json_object_put(result);
}

static void remove_dir(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (d) {
                while ((de = readdir(d)))
                        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                                (void) unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void) rmdir(dir);
}

int main(int argc, char **argv) {
        const char *base = getenv("TMPDIR");
        struct json_object **ops;
        uint64_t *begin_ns, *apply_ns, *commit_ns, t0, elapsed, time = TIME0;
        char dir[4096], path[4200];
        struct store *s = NULL;
        size_t count = COUNT_DEFAULT;
        double tps;
        int opt, r;

        while ((opt = getopt(argc, argv, "n:")) >= 0) {
                if (opt != 'n') {
                        fprintf(stderr,
                                "usage: haven-bench-store [-n COUNT] [DIR]\n");
                        return 2;
                }
                count = strtoul(optarg, NULL, 10);
        }
        if (optind < argc)
                base = argv[optind];
        if (!base || !base[0])
                base = "/tmp";
        if (count == 0 || count > 10000000) {
                fprintf(stderr, "haven-bench-store: bad COUNT\n");
                return 2;
        }
        (void) snprintf(dir, sizeof dir, "%s/haven-bench-store-XXXXXX", base);
        if (!mkdtemp(dir)) {
                fprintf(stderr, "haven-bench-store: %s: %m\n", dir);
                return 1;
        }
        (void) snprintf(path, sizeof path, "%s/domain.db", dir);

        ops = calloc(count, sizeof *ops);
        begin_ns = calloc(count, sizeof *begin_ns);
        apply_ns = calloc(count, sizeof *apply_ns);
        commit_ns = calloc(count, sizeof *commit_ns);
        if (!ops || !begin_ns || !apply_ns || !commit_ns)
                die("allocating", -ENOMEM, NULL);

        r = store_open(path, &s);
        if (r < 0)
                die("opening the store", r, NULL);

        /* 1. One transaction per batch. */
        for (size_t i = 0; i < count; i++)
                ops[i] = insert_ops("single", i);
        for (size_t i = 0; i < count; i++) {
                uint64_t t1, t2, t3;

                t0 = now_ns();
                r = store_batch_begin(s);
                if (r < 0)
                        die("beginning a batch", r, NULL);
                t1 = now_ns();
                apply_one(s, ops[i], time++);
                t2 = now_ns();
                r = store_batch_end(s);
                if (r < 0)
                        die("committing", r, NULL);
                t3 = now_ns();
                begin_ns[i] = t1 - t0;
                apply_ns[i] = t2 - t1;
                commit_ns[i] = t3 - t2;
        }
        for (size_t i = 0; i < count; i++)
                json_object_put(ops[i]);
        qsort(begin_ns, count, sizeof *begin_ns, cmp_u64);
        qsort(apply_ns, count, sizeof *apply_ns, cmp_u64);
        qsort(commit_ns, count, sizeof *commit_ns, cmp_u64);
        fprintf(stderr,
                "store: %zu one-row inserts, one batch each (%s):\n"
                "  store_apply       p50 %8.1f us  p99 %8.1f us\n"
                "  store_batch_end   p50 %8.1f us  p99 %8.1f us\n"
                "  store_batch_begin p50 %8.1f us\n",
                count, dir, pct_us(apply_ns, count, 0.5),
                pct_us(apply_ns, count, 0.99), pct_us(commit_ns, count, 0.5),
                pct_us(commit_ns, count, 0.99), pct_us(begin_ns, count, 0.5));

        /* 2. Batches of BATCH, as a burst of delivered messages. */
        for (size_t i = 0; i < count; i++)
                ops[i] = insert_ops("batch", i);
        t0 = now_ns();
        for (size_t i = 0; i < count; i += BATCH) {
                r = store_batch_begin(s);
                if (r < 0)
                        die("beginning a batch", r, NULL);
                for (size_t j = i; j < count && j < i + BATCH; j++)
                        apply_one(s, ops[j], time++);
                r = store_batch_end(s);
                if (r < 0)
                        die("committing", r, NULL);
        }
        elapsed = now_ns() - t0;
        for (size_t i = 0; i < count; i++)
                json_object_put(ops[i]);
        tps = (double) count / ((double) elapsed / 1e9);
        fprintf(stderr,
                "store: %zu one-row inserts in batches of %d: %.0f tx/s "
                "(%.1f us per transaction)\n",
                count, BATCH, tps, (double) elapsed / 1e3 / (double) count);

        if (store_version(s) != 2 * count) {
                fprintf(stderr,
                        "haven-bench-store: version %" PRIu64
                        ", expected %zu\n",
                        store_version(s), 2 * count);
                return 1;
        }
        printf("{\"apply_p50_us\":%.1f,\"apply_p99_us\":%.1f,"
               "\"commit_p50_us\":%.1f,\"commit_p99_us\":%.1f,"
               "\"batch%d_tps\":%.0f,\"count\":%zu}\n",
               pct_us(apply_ns, count, 0.5), pct_us(apply_ns, count, 0.99),
               pct_us(commit_ns, count, 0.5), pct_us(commit_ns, count, 0.99),
               BATCH, tps, count);

        store_free(s);
        remove_dir(dir);
        free(ops);
        free(begin_ns);
        free(apply_ns);
        free(commit_ns);
        return 0;
}
