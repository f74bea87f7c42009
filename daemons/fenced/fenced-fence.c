/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One fence of one node: its levels in order, each level all-or-nothing
 * (every outlet of every device of the level switched together and
 * verified: dual power supplies on two strips are off only when both are),
 * a second round through the levels while enough time is left, and for a
 * reboot: off on every part of the level, verified, then on. Owns the
 * device actions it starts.
 * Must not: touch the domain (fenced-requests.c records the outcome), or
 * pick the node (the request does).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>

#include "haven/log.h"
#include "haven/loop.h"

#include "fenced.h"

/* Another round through the levels only if this share of the time is left
 * (Pacemaker's rule for its retries). */
#define RETRY_MIN_PERCENT 30u
#define ROUNDS_MAX 2u

struct run_part {
        struct fence_run *run;
        struct fence_device device;
        char **outlets; /* NULL-terminated */
        struct fence_op *op;
        bool ok;
        char *message; /* the last action's */
};

struct fence_run {
        struct fenced *f;
        uint32_t node_id;
        char *node_name;
        char *action; /* off, reboot, on */
        uint64_t started, deadline;
        fence_run_done_t done;
        void *userdata;

        struct fence_outlet *outlets; /* copies, this node's only */
        size_t n_outlets;
        unsigned levels[FENCED_LEVELS_MAX];
        size_t n_levels, level_index;
        unsigned round;
        bool switching_on; /* reboot: the on half */
        bool starting, finished; /* finished inside fence_run_start() */

        struct run_part *parts;
        size_t n_parts, n_pending;
        char *failures; /* "level 1: ...; level 2: ..." */
        sd_event_source *defer;
        struct fence_run_result result;
};

void fence_run_result_done(struct fence_run_result *r) {
        if (!r)
                return;
        free(r->device);
        free(r->outlets);
        free(r->message);
        *r = (struct fence_run_result){};
}

static void parts_free(struct fence_run *run) {
        for (size_t i = 0; i < run->n_parts; i++) {
                struct run_part *p = &run->parts[i];

                fence_op_free(p->op);
                free(p->message);
                fence_device_done(&p->device);
                for (size_t k = 0; p->outlets && p->outlets[k]; k++)
                        free(p->outlets[k]);
                free(p->outlets);
        }
        free(run->parts);
        run->parts = NULL;
        run->n_parts = run->n_pending = 0;
}

struct fence_run *fence_run_free(struct fence_run *run) {
        if (!run)
                return NULL;
        parts_free(run);
        for (size_t i = 0; i < run->n_outlets; i++)
                free(run->outlets[i].outlet);
        free(run->outlets);
        free(run->node_name);
        free(run->action);
        free(run->failures);
        sd_event_source_disable_unref(run->defer);
        fence_run_result_done(&run->result);
        free(run);
        return NULL;
}

static void run_note_failure(struct fence_run *run, const char *text) {
        char *joined;

        /* A second round that fails the same way says nothing new. */
        if (run->failures && strstr(run->failures, text))
                return;
        if (asprintf(&joined, "%s%s%s", run->failures ?: "",
                     run->failures ? "; " : "", text) < 0)
                return;
        free(run->failures);
        run->failures = joined;
}

/* "pdu1 outlet 3" / "pdu1 outlets 3, 4" for the parts of the level. */
static char *parts_describe(struct fence_run *run, bool devices_only) {
        char *text = NULL;

        for (size_t i = 0; i < run->n_parts; i++) {
                struct run_part *p = &run->parts[i];
                char *outlets = NULL, *next;
                size_t n = 0;

                while (p->outlets[n])
                        n++;
                for (size_t k = 0; k < n; k++) {
                        if (asprintf(&next, "%s%s%s", outlets ?: "",
                                     outlets ? ", " : "", p->outlets[k]) < 0)
                                next = NULL;
                        free(outlets);
                        outlets = next;
                }
                if (devices_only)
                        n = asprintf(&next, "%s%s%s", text ?: "",
                                     text ? ", " : "", p->device.name) < 0;
                else
                        n = asprintf(&next, "%s%s%s outlet%s %s", text ?: "",
                                     text ? ", " : "", p->device.name,
                                     n > 1 ? "s" : "", outlets ?: "") < 0;
                free(outlets);
                free(text);
                text = n ? NULL : next;
        }
        return text;
}

static void run_finish(struct fence_run *run) {
        run->finished = true;
        if (run->starting)
                return; /* fence_run_start() reports it from the loop */
        run->result.elapsed_usec =
                haven_now_usec(CLOCK_MONOTONIC) - run->started;
        run->done(run, &run->result, run->userdata);
}

static int run_on_defer(sd_event_source *s, void *userdata) {
        struct fence_run *run = userdata;

        run->result.elapsed_usec =
                haven_now_usec(CLOCK_MONOTONIC) - run->started;
        run->done(run, &run->result, run->userdata);
        return 0;
}

static void run_level(struct fence_run *run);

static void run_part_done(struct fence_op *op, const struct fence_op_result *r,
                          void *userdata);

/* Starts action on every part of the current level. */
static int parts_start(struct fence_run *run, const char *action) {
        uint64_t now = haven_now_usec(CLOCK_MONOTONIC);
        int r;

        if (now >= run->deadline)
                return -ETIME;
        for (size_t i = 0; i < run->n_parts; i++) {
                struct run_part *p = &run->parts[i];

                p->op = fence_op_free(p->op);
                p->ok = false;
                r = fence_op_start(run->f, &p->device, action, p->outlets,
                                   run->deadline - now, run_part_done, p,
                                   &p->op);
                if (r < 0)
                        return r;
                run->n_pending++;
        }
        return 0;
}

static void level_succeeded(struct fence_run *run, const char *how) {
        _cleanup_free_ char *where = parts_describe(run, false);
        unsigned level = run->levels[run->level_index];
        uint64_t ms = (haven_now_usec(CLOCK_MONOTONIC) - run->started) / 1000u;

        run->result.ok = true;
        run->result.level = level;
        run->result.device = parts_describe(run, true);
        run->result.outlets = where ? strdup(where) : NULL;
        if (asprintf(&run->result.message, "%s %s by %s (level %u), %s in %" PRIu64 " ms",
                     run->node_name,
                     streq(run->action, "on") ? "switched on"
                     : streq(run->action, "reboot") ? "rebooted"
                                                    : "fenced",
                     where ?: "?", level, how, ms) < 0)
                run->result.message = NULL;
        run_finish(run);
}

static void level_failed(struct fence_run *run, const char *why) {
        _cleanup_free_ char *text = NULL;

        if (asprintf(&text, "level %u: %s", run->levels[run->level_index],
                     why) >= 0)
                run_note_failure(run, text);
        parts_free(run);
        run->level_index++;
        run_level(run);
}

static void run_part_done(struct fence_op *op, const struct fence_op_result *r,
                          void *userdata) {
        struct run_part *p = userdata;
        struct fence_run *run = p->run;
        _cleanup_free_ char *why = NULL;

        p->ok = r->ok;
        free(p->message);
        p->message = strdup(r->message);
        if (!r->ok)
                log_warning("Fencing \"%s\": %s", run->node_name, r->message);
        if (--run->n_pending > 0)
                return;

        /* Every part answered: the level stands or falls as a whole. */
        for (size_t i = 0; i < run->n_parts; i++) {
                struct run_part *q = &run->parts[i];
                char *next;

                if (q->ok)
                        continue;
                if (asprintf(&next, "%s%s%s", why ?: "", why ? ", " : "",
                             q->message ?: q->device.name) < 0)
                        next = NULL;
                free(why);
                why = next;
        }
        if (why && run->switching_on) {
                /* The off half was verified: the node is fenced. */
                _cleanup_free_ char *how = NULL;

                if (asprintf(&how, "verified off, but switching on failed (%s)",
                             why) < 0)
                        how = NULL;
                return level_succeeded(run, how ?: "verified off");
        }
        if (why)
                return level_failed(run, why);

        if (streq(run->action, "reboot") && !run->switching_on) {
                run->switching_on = true;
                if (parts_start(run, "on") < 0)
                        return level_succeeded(run, "verified off, but "
                                                    "switching on failed");
                return;
        }
        level_succeeded(run, streq(run->action, "on") ? "verified on"
                             : streq(run->action, "reboot")
                                     ? "verified off, then on"
                                     : "verified off");
}

/* Builds the parts of the current level: one per device, with its
 * outlets. Returns 0, 1 when the level has a manual device, -errno. */
static int level_build(struct fence_run *run, unsigned level) {
        const struct fence_config *c = run->f->config;
        bool manual = false;

        for (size_t i = 0; i < run->n_outlets; i++) {
                const struct fence_outlet *o = &run->outlets[i];
                const struct fence_device *d;
                struct run_part *p = NULL;
                size_t n = 0;
                char **l;

                if (o->level != level)
                        continue;
                d = fence_config_device(c, o->device_id);
                if (!d || !d->enabled)
                        continue;
                if (streq(d->type, "manual"))
                        manual = true;
                for (size_t k = 0; k < run->n_parts; k++)
                        if (run->parts[k].device.id == d->id)
                                p = &run->parts[k];
                if (!p) {
                        struct run_part *parts = reallocarray(
                                run->parts, run->n_parts + 1, sizeof(*parts));
                        int r;

                        if (!parts)
                                return -ENOMEM;
                        run->parts = parts;
                        p = &parts[run->n_parts];
                        *p = (struct run_part){.run = run};
                        r = fence_device_copy(d, &p->device);
                        if (r < 0)
                                return r;
                        run->n_parts++;
                }
                while (p->outlets && p->outlets[n])
                        n++;
                l = reallocarray(p->outlets, n + 2, sizeof(char *));
                if (!l)
                        return -ENOMEM;
                p->outlets = l;
                l[n] = strdup(o->outlet);
                l[n + 1] = NULL;
                if (!l[n])
                        return -ENOMEM;
        }
        /* Parts point at their run; the array may have moved. */
        for (size_t k = 0; k < run->n_parts; k++)
                run->parts[k].run = run;
        return manual ? 1 : 0;
}

static void run_level(struct fence_run *run) {
        uint64_t now = haven_now_usec(CLOCK_MONOTONIC);
        int r;

        if (run->level_index >= run->n_levels) {
                uint64_t total = run->deadline - run->started;
                uint64_t left = run->deadline > now ? run->deadline - now : 0;

                if (run->round + 1 < ROUNDS_MAX &&
                    left * 100u >= total * RETRY_MIN_PERCENT) {
                        run->round++;
                        run->level_index = 0;
                        log_info("Fencing \"%s\": every level failed, trying "
                                 "again (%" PRIu64 " ms left)",
                                 run->node_name, left / 1000u);
                        return run_level(run);
                }
                run->result.ok = false;
                if (asprintf(&run->result.message,
                             "fencing %s failed after %" PRIu64 " ms: %s",
                             run->node_name,
                             (now - run->started) / 1000u,
                             run->failures ?: "no level could be used") < 0)
                        run->result.message = NULL;
                return run_finish(run);
        }

        run->switching_on = false;
        r = level_build(run, run->levels[run->level_index]);
        if (r < 0)
                return level_failed(run, strerror(-r));
        if (run->n_parts == 0)
                return level_failed(run, "no enabled device");
        if (r == 1) {
                _cleanup_free_ char *devices = parts_describe(run, true);

                run->result.waiting = true;
                run->result.level = run->levels[run->level_index];
                run->result.device = devices ? strdup(devices) : NULL;
                run->result.outlets = parts_describe(run, false);
                if (asprintf(&run->result.message,
                             "waiting for an administrator to switch %s off "
                             "and confirm it (level %u: %s%s%s)",
                             run->node_name, run->result.level,
                             run->result.outlets ?: "?",
                             run->failures ? "; before: " : "",
                             run->failures ?: "") < 0)
                        run->result.message = NULL;
                return run_finish(run);
        }

        r = parts_start(run, streq(run->action, "on") ? "on" : "off");
        if (r == -ETIME) {
                /* Out of time: no further level either. */
                run->level_index = run->n_levels;
                run->round = ROUNDS_MAX;
                run_note_failure(run, "out of time");
                parts_free(run);
                return run_level(run);
        }
        if (r < 0)
                level_failed(run, strerror(-r));
}

static int level_cmp(const void *a, const void *b) {
        unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;

        return x < y ? -1 : x > y;
}

int fence_run_start(struct fenced *f, const struct fence_config *config,
                    uint32_t node_id, const char *action, uint64_t deadline,
                    fence_run_done_t done, void *userdata,
                    struct fence_run **ret) {
        _cleanup_(fence_run_freep) struct fence_run *run = NULL;
        const struct fence_node *node;
        int r;

        assert(f);
        assert(config);
        assert(done);
        assert(ret);

        node = fence_config_node(config, node_id);
        if (!node)
                return -ENOENT;

        run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        run->f = f;
        run->node_id = node_id;
        run->done = done;
        run->userdata = userdata;
        run->started = haven_now_usec(CLOCK_MONOTONIC);
        run->deadline = deadline;
        run->node_name = strdup(node->name);
        run->action = strdup(action);
        if (!run->node_name || !run->action)
                return -ENOMEM;

        run->outlets = calloc(MAX(config->n_outlets, 1u), sizeof(*run->outlets));
        if (!run->outlets)
                return -ENOMEM;
        for (size_t i = 0; i < config->n_outlets; i++) {
                const struct fence_outlet *o = &config->outlets[i];
                bool known = false;

                if (o->node_id != node_id)
                        continue;
                run->outlets[run->n_outlets] = *o;
                run->outlets[run->n_outlets].outlet = strdup(o->outlet);
                if (!run->outlets[run->n_outlets].outlet)
                        return -ENOMEM;
                run->n_outlets++;
                for (size_t k = 0; k < run->n_levels; k++)
                        known = known || run->levels[k] == o->level;
                if (!known && run->n_levels < FENCED_LEVELS_MAX)
                        run->levels[run->n_levels++] = o->level;
        }
        if (run->n_levels == 0)
                return -ENOENT;
        qsort(run->levels, run->n_levels, sizeof(unsigned), level_cmp);

        /* done never runs inside this call: a run decided without starting
         * anything (no usable level, manual) reports from the loop. */
        run->starting = true;
        run_level(run);
        run->starting = false;
        if (run->finished) {
                r = sd_event_add_defer(f->event, &run->defer, run_on_defer, run);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(run);
        return 0;
}
