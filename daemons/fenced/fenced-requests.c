/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fence requests (the domain's fence_requests table): which node carries a
 * request out, claiming it, the victim's fencing delay, running the fence,
 * and recording the outcome (request row, alert on failure, audit text).
 *
 * Exactly one executor: among the online members that run a fencer, not
 * the victim, and not themselves the victim of an earlier open request, the
 * lowest node id claims the request with an expect_version update; the
 * domain's total order lets one claim win. A running request whose executor
 * left is claimed again the same way. A node that was fenced after a request
 * was made never carries that request out (it was the loser of the race the
 * request came from), and neither does a fencer that started after the
 * request was made (a request from before a split or a power cut is stale).
 * Requests nobody could take, or whose executor vanished, expire.
 * Must not: fence the node it runs on, or write outside fence_requests and
 * alerts.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"

#include "fenced.h"

/* A pending request that no node could claim for this long (plus the
 * victim's delay) fails. */
#define EXPIRY_SLACK_USEC (10ULL * 1000000ULL)
/* How often an unrecorded outcome (no quorum at the time) is retried. */
#define RECORD_RETRY_USEC (2ULL * 1000000ULL)

struct request {
        int64_t id, version;
        uint32_t node_id;
        char *action;
        char *state;
        uint32_t executor;
        uint64_t requested_at, started_at;
};

enum claim_state {
        CLAIM_CLAIMING,
        CLAIM_DELAYING,
        CLAIM_RUNNING,
        CLAIM_RECORDING,
        CLAIM_WAITING, /* manual: recorded "waiting", nothing more to do */
};

struct fence_claim {
        struct fence_claim *next;
        struct fenced *f;
        enum claim_state state;
        int64_t request_id, version;
        uint32_t node_id;
        char *action;
        uint64_t started_usec; /* CLOCK_REALTIME */
        sd_event_source *timer;
        struct fence_run *run;
        struct json_object *record_ops; /* the outcome, until it is written */
        char *audit;
        bool record_in_flight;
};

/* ==== Claims ==== */

static struct fence_claim *claim_find(struct fenced *f, int64_t request_id) {
        for (struct fence_claim *c = f->claims; c; c = c->next)
                if (c->request_id == request_id)
                        return c;
        return NULL;
}

static void claim_free(struct fence_claim *c) {
        struct fenced *f = c->f;

        for (struct fence_claim **p = &f->claims; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        sd_event_source_disable_unref(c->timer);
        fence_run_free(c->run);
        json_object_put(c->record_ops);
        free(c->audit);
        free(c->action);
        free(c);
}

void fenced_requests_free(struct fenced *f) {
        while (f->claims)
                claim_free(f->claims);
}

static struct json_object *update_op(int64_t id, int64_t expect_version,
                                     struct json_object *values) {
        _cleanup_(json_object_putp) struct json_object *op =
                json_object_new_object();

        if (!op || !values ||
            haven_json_add(op, "op", json_object_new_string("update")) < 0 ||
            haven_json_add(op, "table",
                           json_object_new_string("fence_requests")) < 0 ||
            haven_json_add(op, "id", json_object_new_int64(id)) < 0 ||
            haven_json_add(op, "expect_version",
                           json_object_new_int64(expect_version)) < 0 ||
            haven_json_add(op, "values", values) < 0)
                return NULL;
        return TAKE_PTR(op);
}

static struct json_object *alert_op(const char *severity, const char *node,
                                    const char *message) {
        _cleanup_(json_object_putp) struct json_object *op =
                json_object_new_object(), *values = json_object_new_object();
        char text[1024];

        snprintf(text, sizeof(text), "%s", message);
        if (!op || !values ||
            haven_json_add(values, "severity", json_object_new_string(severity)) < 0 ||
            haven_json_add(values, "source", json_object_new_string("fencing")) < 0 ||
            haven_json_add(values, "node", json_object_new_string(node ?: "")) < 0 ||
            haven_json_add(values, "message", json_object_new_string(text)) < 0 ||
            haven_json_add(op, "op", json_object_new_string("insert")) < 0 ||
            haven_json_add(op, "table", json_object_new_string("alerts")) < 0 ||
            haven_json_add(op, "values", TAKE_PTR(values)) < 0)
                return NULL;
        return TAKE_PTR(op);
}

static const char *node_name(struct fenced *f, uint32_t node_id) {
        const struct fence_node *n = fence_config_node(f->config, node_id);

        return n ? n->name : "?";
}

static void claim_record(struct fence_claim *c);

static int claim_on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        struct fence_claim *c = userdata;

        c->timer = sd_event_source_disable_unref(c->timer);
        claim_record(c);
        return 0;
}

/* Tries to record the outcome again in a while (no quorum, domaind gone);
 * a claim that cannot even wait is dropped (the request then expires). */
static void claim_retry_later(struct fence_claim *c) {
        if (haven_loop_add_timer(c->f->event, &c->timer, RECORD_RETRY_USEC, 0,
                                 claim_on_retry, c) < 0)
                claim_free(c);
}

static void claim_record_on_reply(struct haven_msg_link *link, int error,
                                  struct json_object *reply, void *userdata) {
        struct fence_claim *c = userdata;
        const char *code = "", *message = "";

        c->record_in_flight = false;
        if (error >= 0)
                code = fenced_reply_error(reply, &message);
        if (error >= 0 && !*code) {
                log_info("Fence request %" PRId64 " recorded: %s",
                         c->request_id, c->audit);
                if (c->state == CLAIM_WAITING) {
                        /* Kept, so the request is not claimed again while
                         * it waits for the administrator. */
                        struct json_object *v;

                        if (json_object_object_get_ex(reply, "version", &v))
                                c->version = json_object_get_int64(v);
                        json_object_put(c->record_ops);
                        c->record_ops = NULL;
                        return;
                }
                return claim_free(c);
        }
        if (streq(code, "conflict") || streq(code, "not-found")) {
                /* Someone else finished it (an administrator confirmed, the
                 * node was removed): their word stands. */
                log_info("Fence request %" PRId64 " was changed by someone "
                         "else; not recording: %s",
                         c->request_id, c->audit);
                return claim_free(c);
        }
        log_warning("Failed to record fence request %" PRId64 " (%s: %s), "
                    "retrying.",
                    c->request_id, error < 0 ? strerror(-error) : code,
                    error < 0 ? "" : message);
        claim_retry_later(c);
}

static void claim_record(struct fence_claim *c) {
        int r;

        if (c->record_in_flight || !c->record_ops)
                return;
        if (!haven_domain_connected(c->f->domain))
                return claim_retry_later(c);
        r = fenced_submit(c->f, c->record_ops, c->audit, claim_record_on_reply,
                          c);
        if (r < 0) {
                (void) log_warning_errno(r, "Failed to record fence request "
                                            "%" PRId64 ": %m",
                                         c->request_id);
                return claim_retry_later(c);
        }
        c->record_in_flight = true;
}

/* Writes the outcome: the request row and, when it failed or waits for an
 * administrator, an alert. */
static void claim_finish(struct fence_claim *c, const char *state,
                         const struct fence_run_result *result,
                         const char *message) {
        _cleanup_(json_object_putp) struct json_object *values =
                json_object_new_object(), *ops = json_object_new_array();
        struct fenced *f = c->f;
        const char *victim = node_name(f, c->node_id);
        uint64_t now = haven_now_usec(CLOCK_REALTIME);
        char when[32], *text = NULL;

        fenced_format_time(now, when);
        if (streq(state, "done")) {
                /* "node2 fenced at T by device pdu1 outlet 2 (level 1), ..." */
                const char *rest = message;
                size_t n = strlen(victim);

                if (strncmp(rest, victim, n) == 0 && rest[n] == ' ')
                        rest += n + 1;
                if (asprintf(&text, "%s %s", victim, rest) >= 0) {
                        char *by = strstr(text, " by ");
                        char *with = NULL;

                        if (by && asprintf(&with, "%.*s at %s%s",
                                           (int) (by - text), text, when,
                                           by) >= 0) {
                                free(text);
                                text = with;
                        }
                }
        } else if (asprintf(&text, "%s", message) < 0)
                text = NULL;
        if (!text || !values || !ops)
                return (void) log_error("Out of memory recording fence request.");

        free(c->audit);
        c->audit = text;
        if (haven_json_add(values, "result", json_object_new_string(text)) < 0 ||
            (!streq(state, "running") &&
             (haven_json_add(values, "state", json_object_new_string(state)) < 0 ||
              haven_json_add(values, "finished_at",
                             json_object_new_int64((int64_t) now)) < 0)))
                return (void) log_error("Out of memory.");
        if (result && result->device &&
            (haven_json_add(values, "device", json_object_new_string(result->device)) < 0 ||
             haven_json_add(values, "outlets",
                            json_object_new_string(result->outlets ?: "")) < 0 ||
             haven_json_add(values, "level", json_object_new_int64(result->level)) < 0))
                return (void) log_error("Out of memory.");
        if (json_object_array_add(ops, update_op(c->request_id, c->version,
                                                 TAKE_PTR(values))) < 0)
                return (void) log_error("Out of memory.");
        if (streq(state, "failed"))
                (void) json_object_array_add(
                        ops, alert_op("critical", victim, text));
        else if (streq(state, "running"))
                (void) json_object_array_add(ops,
                                             alert_op("warning", victim, text));

        c->state = streq(state, "running") ? CLAIM_WAITING : CLAIM_RECORDING;
        json_object_put(c->record_ops);
        c->record_ops = TAKE_PTR(ops);
        claim_record(c);
}

static void claim_run_done(struct fence_run *run,
                           const struct fence_run_result *result,
                           void *userdata) {
        struct fence_claim *c = userdata;

        if (result->waiting) {
                log_warning("Fencing \"%s\": %s", node_name(c->f, c->node_id),
                            result->message);
                return claim_finish(c, "running", result, result->message ?: "waiting");
        }
        if (result->ok)
                log_notice("%s", result->message);
        else
                log_error("%s", result->message ?: "fencing failed");
        claim_finish(c, result->ok ? "done" : "failed", result,
                     result->message ?: "fencing failed");
}

static void claim_run(struct fence_claim *c) {
        struct fenced *f = c->f;
        uint64_t deadline = haven_deadline_usec(f->request_timeout_usec);
        int r;

        c->state = CLAIM_RUNNING;
        log_info("Fencing \"%s\" (%s), request %" PRId64 ".",
                 node_name(f, c->node_id), c->action, c->request_id);
        r = fence_run_start(f, f->config, c->node_id, c->action, deadline,
                            claim_run_done, c, &c->run);
        if (r == -ENOENT) {
                _cleanup_free_ char *text = NULL;

                if (asprintf(&text, "cannot fence %s: it has no fence device "
                                    "(no outlet is mapped to it)",
                             node_name(f, c->node_id)) < 0)
                        text = NULL;
                return claim_finish(c, "failed", NULL,
                                    text ?: "no fence device");
        }
        if (r < 0) {
                (void) log_error_errno(r, "Failed to start fencing: %m");
                claim_finish(c, "failed", NULL, "fencing could not start");
        }
}

static int claim_on_delay(sd_event_source *s, uint64_t usec, void *userdata) {
        struct fence_claim *c = userdata;

        c->timer = sd_event_source_disable_unref(c->timer);
        claim_run(c);
        return 0;
}

static void claim_on_reply(struct haven_msg_link *link, int error,
                           struct json_object *reply, void *userdata) {
        struct fence_claim *c = userdata;
        struct fenced *f = c->f;
        const struct fence_node *victim;
        struct json_object *v;
        const char *code = "", *message = "";
        int r;

        if (error >= 0)
                code = fenced_reply_error(reply, &message);
        if (error < 0 || *code) {
                log_info("Fence request %" PRId64 ": not claimed (%s).",
                         c->request_id,
                         error < 0 ? strerror(-error) : message);
                claim_free(c);
                return fenced_requests_check(f);
        }
        if (json_object_object_get_ex(reply, "version", &v))
                c->version = json_object_get_int64(v);

        victim = fence_config_node(f->config, c->node_id);
        if (victim && victim->fence_delay_usec > 0 &&
            !streq(c->action, "on")) {
                log_info("Fence request %" PRId64 ": waiting %" PRIu64
                         " ms (the fencing delay of \"%s\").",
                         c->request_id, victim->fence_delay_usec / 1000u,
                         victim->name);
                c->state = CLAIM_DELAYING;
                r = haven_loop_add_timer(f->event, &c->timer,
                                         victim->fence_delay_usec, 1000,
                                         claim_on_delay, c);
                if (r >= 0)
                        return;
        }
        claim_run(c);
}

static void claim_start(struct fenced *f, const struct request *rq) {
        _cleanup_(json_object_putp) struct json_object *ops =
                json_object_new_array(), *values = json_object_new_object();
        struct fence_claim *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c || !ops || !values) {
                free(c);
                return (void) log_error("Out of memory.");
        }
        c->f = f;
        c->request_id = rq->id;
        c->node_id = rq->node_id;
        c->action = strdup(rq->action);
        c->started_usec = haven_now_usec(CLOCK_REALTIME);
        c->state = CLAIM_CLAIMING;
        c->next = f->claims;
        f->claims = c;

        if (!c->action ||
            haven_json_add(values, "state", json_object_new_string("running")) < 0 ||
            haven_json_add(values, "executor_node_id",
                           json_object_new_int64(f->node_id)) < 0 ||
            haven_json_add(values, "started_at",
                           json_object_new_int64((int64_t) c->started_usec)) < 0 ||
            haven_json_add(values, "result",
                           json_object_new_string("claimed")) < 0 ||
            json_object_array_add(ops, update_op(rq->id, rq->version,
                                                 TAKE_PTR(values))) < 0) {
                claim_free(c);
                return (void) log_error("Out of memory.");
        }
        r = fenced_submit(f, ops, NULL, claim_on_reply, c);
        if (r < 0) {
                (void) log_warning_errno(r, "Failed to claim fence request "
                                            "%" PRId64 ": %m",
                                         rq->id);
                claim_free(c);
        }
}

/* ==== Deciding ==== */

static void request_done(struct request *r) {
        free(r->action);
        free(r->state);
}

static int request_from_row(struct json_object *row, struct request *ret) {
        struct json_object *v;

        *ret = (struct request){};
        if (!json_object_object_get_ex(row, "id", &v))
                return -EBADMSG;
        ret->id = json_object_get_int64(v);
        if (json_object_object_get_ex(row, "version", &v))
                ret->version = json_object_get_int64(v);
        if (json_object_object_get_ex(row, "node_id", &v))
                ret->node_id = (uint32_t) json_object_get_int64(v);
        if (json_object_object_get_ex(row, "executor_node_id", &v) &&
            json_object_is_type(v, json_type_int))
                ret->executor = (uint32_t) json_object_get_int64(v);
        if (json_object_object_get_ex(row, "requested_at", &v))
                ret->requested_at = (uint64_t) json_object_get_int64(v);
        if (json_object_object_get_ex(row, "started_at", &v) &&
            json_object_is_type(v, json_type_int))
                ret->started_at = (uint64_t) json_object_get_int64(v);
        ret->action = strdup(json_object_object_get_ex(row, "action", &v)
                                     ? json_object_get_string(v)
                                     : "off");
        ret->state = strdup(json_object_object_get_ex(row, "state", &v)
                                    ? json_object_get_string(v)
                                    : "pending");
        if (!ret->action || !ret->state) {
                request_done(ret);
                return -ENOMEM;
        }
        return 0;
}

static int request_cmp(const void *a, const void *b) {
        const struct request *x = a, *y = b;

        return x->id < y->id ? -1 : x->id > y->id;
}

uint32_t fence_request_executor(const uint32_t *members, size_t n_members,
                                const uint32_t *fencers, size_t n_fencers,
                                const uint32_t *victims, size_t index) {
        uint32_t best = 0;

        for (size_t m = 0; m < n_members; m++) {
                uint32_t id = members[m];
                bool fencer = false, condemned = false;

                for (size_t k = 0; k < n_fencers; k++)
                        fencer = fencer || fencers[k] == id;
                /* The victim of an earlier open request fences nobody. */
                for (size_t k = 0; k < index; k++)
                        condemned = condemned || victims[k] == id;
                if (id == victims[index] || !fencer || condemned)
                        continue;
                if (!best || id < best)
                        best = id;
        }
        return best;
}

static void expire(struct fenced *f, const struct request *rq) {
        _cleanup_(json_object_putp) struct json_object *ops =
                json_object_new_array(), *values = json_object_new_object();
        _cleanup_free_ char *text = NULL;
        struct fence_claim *c;

        if (asprintf(&text, "fencing %s failed: no node could carry out the "
                            "request within %" PRIu64 " s (every other node "
                            "is down, runs no fencer, is itself to be fenced, "
                            "or started after the request was made)",
                     node_name(f, rq->node_id),
                     f->request_timeout_usec / 1000000u) < 0 ||
            !ops || !values)
                return;
        if (haven_json_add(values, "state", json_object_new_string("failed")) < 0 ||
            haven_json_add(values, "result", json_object_new_string(text)) < 0 ||
            haven_json_add(values, "finished_at",
                           json_object_new_int64((int64_t) haven_now_usec(
                                   CLOCK_REALTIME))) < 0 ||
            json_object_array_add(ops, update_op(rq->id, rq->version,
                                                 TAKE_PTR(values))) < 0 ||
            json_object_array_add(ops, alert_op("critical",
                                                node_name(f, rq->node_id),
                                                text)) < 0)
                return;
        /* Recorded like an outcome, by a claim that never ran. */
        c = calloc(1, sizeof(*c));
        if (!c)
                return;
        *c = (struct fence_claim){
                .f = f,
                .state = CLAIM_RECORDING,
                .request_id = rq->id,
                .node_id = rq->node_id,
                .record_ops = TAKE_PTR(ops),
                .audit = TAKE_PTR(text),
                .next = f->claims,
        };
        f->claims = c;
        log_warning("%s", c->audit);
        claim_record(c);
}

/* Claims, expires or leaves every open request, from the cached rows. */
static void decide(struct fenced *f, struct json_object *open,
                   uint64_t self_fenced_at) {
        size_t n = json_object_array_length(open), count = 0;
        _cleanup_free_ struct request *requests = NULL;
        _cleanup_free_ uint32_t *victims = NULL, *fencers = NULL;
        const uint32_t *members;
        size_t n_members, n_fencers = 0;
        uint64_t now = haven_now_usec(CLOCK_REALTIME);
        uint32_t janitor = 0;

        requests = calloc(MAX(n, 1u), sizeof(*requests));
        if (!requests)
                return (void) log_error("Out of memory.");
        for (size_t i = 0; i < n; i++)
                if (request_from_row(json_object_array_get_idx(open, i),
                                     &requests[count]) >= 0)
                        count++;
        qsort(requests, count, sizeof(*requests), request_cmp);
        victims = calloc(MAX(count, 1u), sizeof(uint32_t));
        if (!victims)
                return (void) log_error("Out of memory.");
        for (size_t i = 0; i < count; i++)
                victims[i] = requests[i].node_id;

        /* The members that run a fencer; expiry is the lowest one's job. */
        members = haven_domain_members(f->domain, &n_members);
        fencers = calloc(n_members ? n_members : 1, sizeof(uint32_t));
        if (!fencers)
                return (void) log_error("Out of memory.");
        for (size_t m = 0; m < n_members; m++)
                if (fenced_is_fencer(f, members[m])) {
                        fencers[n_fencers++] = members[m];
                        if (!janitor || members[m] < janitor)
                                janitor = members[m];
                }

        for (size_t i = 0; i < count; i++) {
                const struct request *rq = &requests[i];
                const struct fence_node *victim =
                        fence_config_node(f->config, rq->node_id);
                uint64_t expiry = f->request_timeout_usec + EXPIRY_SLACK_USEC +
                                  (victim ? victim->fence_delay_usec : 0);
                uint32_t executor;

                if (claim_find(f, rq->id))
                        continue;
                if (streq(rq->state, "running") && rq->executor &&
                    rq->executor != f->node_id &&
                    fenced_is_member(f, rq->executor) &&
                    fenced_is_fencer(f, rq->executor))
                        continue; /* in good hands */
                /* Nobody took it, or its executor is gone (or is this node
                 * before a restart) and nobody took it over: fail it. */
                if (janitor == f->node_id &&
                    now > MAX(rq->requested_at, rq->started_at) + expiry) {
                        expire(f, rq);
                        continue;
                }
                executor = fence_request_executor(members, n_members, fencers,
                                                  n_fencers, victims, i);
                if (executor != f->node_id)
                        continue;
                if (rq->node_id == f->node_id)
                        continue; /* never: checked twice on purpose */
                /* Made before this fencer started (a request from before a
                 * split or a power cut, or one this node claimed before it
                 * restarted): not ours to carry out; it expires. */
                if (rq->requested_at < f->started_usec) {
                        log_info("Fence request %" PRId64 " for \"%s\" is "
                                 "older than this fencer; not carrying it "
                                 "out.",
                                 rq->id, node_name(f, rq->node_id));
                        continue;
                }
                if (self_fenced_at > rq->requested_at) {
                        log_info("Fence request %" PRId64 " for \"%s\" is "
                                 "older than this node's own fencing; not "
                                 "carrying it out.",
                                 rq->id, node_name(f, rq->node_id));
                        continue;
                }
                claim_start(f, rq);
        }
        /* A request that waited for an administrator and is no longer
         * open was confirmed (or removed): forget it. */
        for (struct fence_claim *c = f->claims, *next; c; c = next) {
                bool still_open = false;

                next = c->next;
                if (c->state != CLAIM_WAITING || c->record_ops)
                        continue;
                for (size_t i = 0; i < count; i++)
                        still_open = still_open || requests[i].id == c->request_id;
                if (!still_open)
                        claim_free(c);
        }
        for (size_t i = 0; i < count; i++)
                request_done(&requests[i]);
}

void fenced_requests_check(struct fenced *f) {
        _cleanup_(json_object_putp) struct json_object *open = NULL;
        struct json_object *rows;
        uint64_t self_fenced_at = 0;

        /* Unrecorded outcomes go first, whenever anything moves. */
        for (struct fence_claim *c = f->claims; c; c = c->next)
                if (c->state == CLAIM_RECORDING && !c->record_in_flight &&
                    !c->timer)
                        claim_record(c);

        if (!f->config || !f->node_id || !haven_domain_ready(f->domain) ||
            !haven_domain_quorate(f->domain) || !fenced_is_member(f, f->node_id))
                return;

        open = json_object_new_array();
        if (!open)
                return (void) log_error("Out of memory.");
        rows = haven_domain_rows(f->domain, "fence_requests");
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i), *v;
                const char *state = NULL;
                int64_t node = 0;

                if (json_object_object_get_ex(row, "state", &v))
                        state = json_object_get_string(v);
                if (json_object_object_get_ex(row, "node_id", &v))
                        node = json_object_get_int64(v);
                if (!state)
                        continue;
                if (streq(state, "pending") || streq(state, "running"))
                        (void) json_object_array_add(open, json_object_get(row));
                else if (streq(state, "done") && (uint32_t) node == f->node_id &&
                         json_object_object_get_ex(row, "finished_at", &v) &&
                         json_object_is_type(v, json_type_int))
                        self_fenced_at = MAX(self_fenced_at,
                                             (uint64_t) json_object_get_int64(v));
        }
        decide(f, open, self_fenced_at);
}
