/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-ha-sim [-v] [--update] SCENARIO...: runs HA scenarios (files, or
 * directories of *.scn files) against the decision core in simulated time
 * and compares each produced log with the scenario's expected log. On a
 * mismatch it prints a unified-diff-like report; --update rewrites the
 * expected logs instead (review the change before committing it). A
 * scenario that breaks a safety rule fails even with --update.
 * Exit status: 0 when every scenario passed, 1 otherwise, 2 on bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <time.h>

#include "haven/macro.h"

#include "sim.h"

#define DIFF_CONTEXT 3
#define DIFF_CELLS_MAX (32u * 1024u * 1024u)

static bool arg_verbose, arg_update;

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ==== Comparing logs ==== */

/* Splits text in place into lines without trailing blanks, dropping
 * trailing empty lines. Returns the count and *ret (free it). */
static size_t lines_of(char *text, char ***ret) {
        size_t n = 0, cap = 0;
        char **lines = NULL;

        for (char *l = text; l && *l;) {
                char *nl = strchr(l, '\n'), *end, **g;

                if (nl)
                        *nl = 0;
                end = l + strlen(l);
                while (end > l && (end[-1] == ' ' || end[-1] == '\t' ||
                                   end[-1] == '\r'))
                        *--end = 0;
                if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        g = reallocarray(lines, cap, sizeof(char *));
                        if (!g) {
                                free(lines);
                                *ret = NULL;
                                return 0;
                        }
                        lines = g;
                }
                lines[n++] = l;
                l = nl ? nl + 1 : NULL;
        }
        while (n > 0 && !*lines[n - 1])
                n--;
        *ret = lines;
        return n;
}

static bool same_lines(char **a, size_t na, char **b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

struct op {
        char kind; /* ' ', '-', '+' */
        const char *line;
        size_t a, b; /* line numbers (1-based) in expected and produced */
};

/* Prints a unified-diff-like report: expected (-) against produced (+). */
static void print_diff(char **a, size_t na, char **b, size_t nb) {
        _cleanup_free_ unsigned *lcs = NULL;
        _cleanup_free_ struct op *ops = NULL;
        size_t n_ops = 0, i = 0, j = 0, w = nb + 1;

        if ((na + 1) * (nb + 1) > DIFF_CELLS_MAX)
                goto first_only;
        lcs = calloc((na + 1) * (nb + 1), sizeof(*lcs));
        ops = calloc(na + nb + 1, sizeof(*ops));
        if (!lcs || !ops)
                goto first_only;
        for (size_t x = na; x-- > 0;)
                for (size_t y = nb; y-- > 0;)
                        lcs[x * w + y] = streq(a[x], b[y])
                                                 ? lcs[(x + 1) * w + y + 1] + 1
                                                 : MAX(lcs[(x + 1) * w + y],
                                                       lcs[x * w + y + 1]);
        while (i < na || j < nb) {
                if (i < na && j < nb && streq(a[i], b[j])) {
                        ops[n_ops++] = (struct op) {' ', a[i], i + 1, j + 1};
                        i++, j++;
                } else if (j >= nb ||
                           (i < na && lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) {
                        ops[n_ops++] = (struct op) {'-', a[i], i + 1, j + 1};
                        i++;
                } else {
                        ops[n_ops++] = (struct op) {'+', b[j], i + 1, j + 1};
                        j++;
                }
        }
        printf("--- expected\n+++ produced\n");
        for (size_t k = 0; k < n_ops;) {
                size_t start, end;

                if (ops[k].kind == ' ') {
                        k++;
                        continue;
                }
                start = k > DIFF_CONTEXT ? k - DIFF_CONTEXT : 0;
                end = k;
                /* Extend the hunk while changes are close together. */
                for (size_t q = k; q < n_ops; q++) {
                        if (ops[q].kind != ' ')
                                end = q;
                        else if (q - end > 2 * DIFF_CONTEXT)
                                break;
                }
                end = MIN(end + DIFF_CONTEXT + 1, n_ops);
                printf("@@ -%zu +%zu @@\n", ops[start].a, ops[start].b);
                for (size_t q = start; q < end; q++)
                        printf("%c%s\n", ops[q].kind, ops[q].line);
                k = end;
        }
        return;

first_only:
        for (i = 0; i < na && i < nb && streq(a[i], b[i]); i++)
                ;
        printf("first difference at line %zu:\n-%s\n+%s\n", i + 1,
               i < na ? a[i] : "(end)", i < nb ? b[i] : "(end)");
}

/* ==== Scenarios ==== */

/* Rewrites the scenario file with log as its expected log (through a
 * temporary file and rename). */
static int write_expected(const struct sim_scenario *s, const char *log) {
        _cleanup_free_ char *tmp = NULL;
        FILE *f;
        bool failed;

        if (asprintf(&tmp, "%s.tmp", s->path) < 0)
                return -ENOMEM;
        f = fopen(tmp, "we");
        if (!f)
                return negative_errno();
        fwrite(s->source, 1, s->expect_end, f);
        fputs(log, f);
        failed = ferror(f);
        if (fclose(f) != 0 || failed) {
                (void) unlink(tmp);
                return -EIO;
        }
        if (rename(tmp, s->path) < 0) {
                int r = negative_errno();

                (void) unlink(tmp);
                return r;
        }
        return 0;
}

struct totals {
        size_t passed, failed, updated;
        unsigned violations;
        uint64_t decide_calls;
};

/* Runs one scenario file; prints "ok" or "FAIL" and why. */
static void run_one(const char *path, struct totals *t) {
        struct sim_scenario *s = NULL;
        struct sim_result res = {};
        _cleanup_free_ char *error = NULL, *produced = NULL, *expected = NULL;
        _cleanup_free_ char **a = NULL, **b = NULL;
        size_t na, nb;
        double start = now_sec();
        bool same;
        int r;

        r = sim_scenario_load(path, &s, &error);
        if (r < 0) {
                printf("FAIL %s: %s\n", path, error ?: strerror(-r));
                t->failed++;
                return;
        }
        if (arg_verbose)
                printf("==== %s\n", path);
        r = sim_run(s, arg_verbose, &res);
        if (r < 0) {
                printf("FAIL %s: %s\n", path, strerror(-r));
                t->failed++;
                sim_scenario_free(s);
                return;
        }
        t->violations += res.violations;
        t->decide_calls += res.decide_calls;
        produced = strdup(res.log);
        expected = strdup(s->expected);
        if (!produced || !expected) {
                printf("FAIL %s: %s\n", path, strerror(ENOMEM));
                t->failed++;
                goto out;
        }
        na = lines_of(expected, &a);
        nb = lines_of(produced, &b);
        same = same_lines(a, na, b, nb);

        if (res.violations) {
                printf("FAIL %s: %u safety violations\n", path,
                       res.violations);
                if (!same)
                        print_diff(a, na, b, nb);
                t->failed++;
        } else if (same) {
                printf("ok   %s (%.1f ms)\n", path, (now_sec() - start) * 1e3);
                t->passed++;
        } else if (arg_update) {
                r = write_expected(s, res.log);
                if (r < 0) {
                        printf("FAIL %s: cannot update: %s\n", path,
                               strerror(-r));
                        t->failed++;
                } else {
                        printf("upd  %s\n", path);
                        t->updated++;
                        t->passed++;
                }
        } else {
                printf("FAIL %s: the log differs\n", path);
                print_diff(a, na, b, nb);
                t->failed++;
        }
out:
        free(res.log);
        sim_scenario_free(s);
}

static int scn_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);

        return n > 4 && streq(d->d_name + n - 4, ".scn");
}

static int run_path(const char *path, struct totals *t) {
        struct dirent **list = NULL;
        struct stat st;
        int n;

        if (stat(path, &st) < 0) {
                printf("FAIL %s: %s\n", path, strerror(errno));
                t->failed++;
                return 0;
        }
        if (!S_ISDIR(st.st_mode)) {
                run_one(path, t);
                return 0;
        }
        n = scandir(path, &list, scn_filter, alphasort);
        if (n < 0) {
                printf("FAIL %s: %s\n", path, strerror(errno));
                t->failed++;
                return 0;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *file = NULL;

                if (asprintf(&file, "%s/%s", path, list[i]->d_name) >= 0)
                        run_one(file, t);
                else
                        t->failed++;
                free(list[i]);
        }
        free(list);
        return 0;
}

static void help(void) {
        printf("haven-ha-sim [-v] [--update] SCENARIO...\n"
               "Runs HA scenarios (files, or directories of *.scn files) "
               "against the\ndecision core in simulated time and compares "
               "their logs.\n\n"
               "  -v, --verbose  print each log and decision while running\n"
               "  -u, --update   rewrite the expected logs that differ\n"
               "  -h, --help     this text\n");
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                {"verbose", no_argument, NULL, 'v'},
                {"update", no_argument, NULL, 'u'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        struct totals t = {};
        double start = now_sec();
        int c;

        while ((c = getopt_long(argc, argv, "vuh", options, NULL)) >= 0)
                switch (c) {
                case 'v':
                        arg_verbose = true;
                        break;
                case 'u':
                        arg_update = true;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        if (optind >= argc) {
                help();
                return 2;
        }
        for (int i = optind; i < argc; i++)
                run_path(argv[i], &t);
        printf("ha-sim: %zu scenarios: %zu passed%s, %zu failed; %u safety "
               "violations; %" PRIu64 " decisions in %.2f s\n",
               t.passed + t.failed, t.passed,
               t.updated ? " (some updated)" : "", t.failed, t.violations,
               t.decide_calls, now_sec() - start);
        return t.failed ? 1 : 0;
}
