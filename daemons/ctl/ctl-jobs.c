/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * havenctl's view of jobs and history: the job list, a job's log (once, or
 * followed until the job is done or failed) and the audit log. Following
 * subscribes to job-log and commit events on a second connection and
 * re-reads the log after each event, so no line is printed twice or lost
 * between the first read and the subscription. Must not: wait without a
 * bound on a connection that died.
 */
#include <inttypes.h>

#include "ctl.h"
#include "haven/json.h"

/* Re-read even without an event this often while following: a safety net,
 * not the mechanism. */
#define FOLLOW_RECHECK_USEC (5ULL * 1000ULL * 1000ULL)

char *ctl_format_job_log_line(struct json_object *row) {
        const char *node = "-", *source = "-", *line = "";
        int64_t time_usec = -1;
        char when[64] = "-";
        _cleanup_free_ char *text = NULL;

        (void) haven_json_get_string(row, "node", &node);
        (void) haven_json_get_string(row, "source", &source);
        (void) haven_json_get_string(row, "line", &line);
        if (haven_json_get_int64(row, "time", &time_usec) >= 0)
                ctl_format_time(time_usec, when, sizeof when);
        if (asprintf(&text, "%s %s %s: %s", when, node, source, line) < 0)
                return NULL;
        return ctl_text_safe(text);
}

/* ==== jobs ==== */

int ctl_jobs(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL;
        int status;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl jobs [--json]");
        status = ctl_query(c, "jobs", NULL, &rows);
        if (status != CTL_EXIT_OK)
                return status;
        if (c->json)
                ctl_print_json(stdout, rows);
        else if (json_object_array_length(rows) == 0)
                printf("No jobs.\n");
        else
                (void) ctl_print_rows(stdout, rows);
        return CTL_EXIT_OK;
}

/* ==== job log ==== */

static int parse_job_id(const char *s, int64_t *ret) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end || v <= 0 || s[0] == '+' || s[0] == ' ')
                return -EINVAL;
        *ret = v;
        return 0;
}

static struct json_object *where_int(const char *key, int64_t v) {
        struct json_object *w = json_object_new_object();

        if (w && haven_json_add(w, key, json_object_new_int64(v)) < 0) {
                json_object_put(w);
                return NULL;
        }
        return w;
}

/* The job's state ("running", "done", "failed") into *ret_state. */
static int job_state(struct ctl *c, int64_t id, char *ret_state, size_t size) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL;
        const char *state = NULL;
        int status;

        status = ctl_query(c, "jobs", where_int("id", id), &rows);
        if (status != CTL_EXIT_OK)
                return status;
        if (json_object_array_length(rows) == 0)
                return ctl_fail(CTL_EXIT_FAILED, "no job %" PRId64, id);
        (void) haven_json_get_string(json_object_array_get_idx(rows, 0), "state", &state);
        snprintf(ret_state, size, "%s", state ? state : "running");
        return CTL_EXIT_OK;
}

/* Prints the log lines of job id whose row id is above *last_id and
 * advances it. */
static int print_new_lines(struct ctl *c, int64_t id, int64_t *last_id) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL;
        int status;

        status = ctl_query(c, "job_log", where_int("job_id", id), &rows);
        if (status != CTL_EXIT_OK)
                return status;
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t row_id = 0;

                if (haven_json_get_int64(row, "id", &row_id) < 0 || row_id <= *last_id)
                        continue;
                *last_id = row_id;
                if (c->json)
                        printf("%s\n", json_object_to_json_string_ext(
                                               row, JSON_C_TO_STRING_PLAIN |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
                else {
                        _cleanup_free_ char *line = ctl_format_job_log_line(row);
                        if (!line)
                                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
                        printf("%s\n", line);
                }
        }
        fflush(stdout);
        return CTL_EXIT_OK;
}

int ctl_subscribe(struct ctl *c, const char *const *events, struct haven_msg_client **ret) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *sub = NULL;
        _cleanup_(json_object_putp) struct json_object *req = ctl_request_simple("subscribe"),
                                                        *reply = NULL, *list = NULL;
        struct json_object *error;
        int status, r;

        list = json_object_new_array();
        if (!req || !list)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        for (size_t i = 0; events[i]; i++)
                if (json_object_array_add(list, json_object_new_string(events[i])) < 0)
                        return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        if (haven_json_add(req, "events", TAKE_PTR(list)) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        status = ctl_connect_new(c, &sub);
        if (status != CTL_EXIT_OK)
                return status;
        r = haven_msg_client_call(sub, req, CTL_TIMEOUT_USEC, &reply);
        if (r < 0)
                return ctl_fail(CTL_EXIT_FAILED, "subscribing to haven-domaind's events failed: %s",
                                strerror(-r));
        if (json_object_object_get_ex(reply, "error", &error)) {
                _cleanup_free_ char *text = ctl_format_error(error);
                return ctl_fail(CTL_EXIT_FAILED, "%s", text ? text : "out of memory");
        }
        *ret = TAKE_PTR(sub);
        return CTL_EXIT_OK;
}

int ctl_wait_events(struct haven_msg_client *sub, uint64_t timeout_usec) {
        struct json_object *event = NULL;
        int r;

        r = haven_msg_client_recv(sub, timeout_usec, &event);
        if (r == -ETIMEDOUT)
                return CTL_EXIT_OK;
        if (r < 0)
                return ctl_fail(CTL_EXIT_FAILED, "lost the connection to haven-domaind: %s",
                                strerror(-r));
        json_object_put(event);
        while (haven_msg_client_recv(sub, 0, &event) >= 0)
                json_object_put(event);
        return CTL_EXIT_OK;
}

int ctl_job_log(struct ctl *c, int argc, char **argv) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *sub = NULL;
        int64_t id, last_id = 0;
        char state[32];
        int status;

        if (argc != 1 || parse_job_id(argv[0], &id) < 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl job log ID [--follow]");

        if (!c->follow) {
                _cleanup_(json_object_putp) struct json_object *rows = NULL;

                status = job_state(c, id, state, sizeof state);
                if (status != CTL_EXIT_OK)
                        return status;
                if (!c->json)
                        return print_new_lines(c, id, &last_id);
                status = ctl_query(c, "job_log", where_int("job_id", id), &rows);
                if (status == CTL_EXIT_OK)
                        ctl_print_json(stdout, rows);
                return status;
        }

        /* Subscribe first: whatever is written after this is announced. */
        status = ctl_subscribe(c, (const char *const[]){"job-log", "commit", NULL}, &sub);
        if (status != CTL_EXIT_OK)
                return status;
        for (;;) {
                /* The state before the lines: when it says finished, the
                 * lines read after it are all there are. */
                status = job_state(c, id, state, sizeof state);
                if (status != CTL_EXIT_OK)
                        return status;
                status = print_new_lines(c, id, &last_id);
                if (status != CTL_EXIT_OK)
                        return status;
                if (!streq(state, "running"))
                        break;
                status = ctl_wait_events(sub, FOLLOW_RECHECK_USEC);
                if (status != CTL_EXIT_OK)
                        return status;
        }
        if (!c->json)
                printf("Job %" PRId64 " %s.\n", id, state);
        return streq(state, "failed") ? CTL_EXIT_FAILED : CTL_EXIT_OK;
}

/* ==== audit ==== */

int ctl_audit(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL, *last = NULL;
        size_t n, from;
        int status;

        if (argc != 0)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl audit [--limit N] [--json]");
        status = ctl_query(c, "audit", NULL, &rows);
        if (status != CTL_EXIT_OK)
                return status;
        n = json_object_array_length(rows);
        from = n > c->limit ? n - c->limit : 0;
        last = json_object_new_array();
        if (!last)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        for (size_t i = from; i < n; i++)
                if (json_object_array_add(last, json_object_get(json_object_array_get_idx(rows, i))) < 0)
                        return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        if (c->json)
                ctl_print_json(stdout, last);
        else if (json_object_array_length(last) == 0)
                printf("No audit entries.\n");
        else
                (void) ctl_print_rows(stdout, last);
        return CTL_EXIT_OK;
}
