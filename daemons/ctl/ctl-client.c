/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * havenctl's connection to haven-domaind: connect on first use, one request
 * and its answer at a time, error answers and connection failures turned
 * into one line on stderr and an exit status. Must not: retry a write (a
 * transaction that timed out may still be applied).
 */
#include <stdarg.h>

#include "ctl.h"
#include "haven/json.h"

/* Answers can be large (a whole table); domaind's own limit is 1 MiB. */
#define CTL_MSG_SIZE HAVEN_MSG_SIZE_DEFAULT

int ctl_fail(int status, const char *format, ...) {
        va_list ap;

        fputs("havenctl: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        return status;
}

void ctl_done(struct ctl *c) {
        c->client = haven_msg_client_free(c->client);
}

int ctl_connect_new(struct ctl *c, struct haven_msg_client **ret) {
        int r;

        r = haven_msg_client_connect(c->socket_path, CTL_MSG_SIZE, ret);
        if (r >= 0)
                return CTL_EXIT_OK;
        if (r == -ENOENT || r == -ENOTDIR)
                return ctl_fail(CTL_EXIT_USAGE,
                                "haven-domaind is not running on this node (no socket at %s)",
                                c->socket_path);
        if (r == -ECONNREFUSED)
                return ctl_fail(CTL_EXIT_USAGE,
                                "haven-domaind is not running on this node (nothing listens "
                                "on %s)",
                                c->socket_path);
        if (r == -EACCES || r == -EPERM)
                return ctl_fail(CTL_EXIT_USAGE,
                                "no permission to talk to haven-domaind at %s (run as root)",
                                c->socket_path);
        return ctl_fail(CTL_EXIT_USAGE, "cannot connect to haven-domaind at %s: %s",
                        c->socket_path, strerror(-r));
}

int ctl_call(struct ctl *c, struct json_object *req, uint64_t timeout_usec,
             struct json_object **ret, const char **ret_error_code) {
        static char code[64];
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *error;
        int r;

        if (!req)
                return ctl_fail(CTL_EXIT_FAILED, "out of memory");
        if (!c->client) {
                r = ctl_connect_new(c, &c->client);
                if (r != CTL_EXIT_OK)
                        return r;
        }
        r = haven_msg_client_call(c->client, req, timeout_usec ? timeout_usec : CTL_TIMEOUT_USEC,
                                  &reply);
        if (r == -ETIMEDOUT)
                return ctl_fail(CTL_EXIT_FAILED,
                                "haven-domaind did not answer in time (a change that was "
                                "sent may still be applied: see \"havenctl audit\")");
        if (r == -ECONNRESET || r == -EPIPE)
                return ctl_fail(CTL_EXIT_FAILED, "haven-domaind closed the connection");
        if (r < 0)
                return ctl_fail(CTL_EXIT_FAILED, "talking to haven-domaind failed: %s",
                                strerror(-r));

        if (json_object_object_get_ex(reply, "error", &error)) {
                _cleanup_free_ char *text = ctl_format_error(error);
                const char *s = NULL;

                (void) haven_json_get_string(error, "code", &s);
                snprintf(code, sizeof code, "%s", s ? s : "");
                if (ret_error_code)
                        *ret_error_code = code;
                return ctl_fail(CTL_EXIT_FAILED, "%s", text ? text : "out of memory");
        }
        *ret = TAKE_PTR(reply);
        return CTL_EXIT_OK;
}

int ctl_query(struct ctl *c, const char *table, struct json_object *where,
              struct json_object **ret_rows) {
        _cleanup_(json_object_putp) struct json_object *req = ctl_request_query(table, where);
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *rows;
        int r;

        r = ctl_call(c, req, 0, &reply, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        if (haven_json_get_array(reply, "rows", &rows) < 0)
                return ctl_fail(CTL_EXIT_FAILED, "haven-domaind sent no rows for \"%s\"", table);
        ctl_rows_sort_by_id(rows);
        *ret_rows = json_object_get(rows);
        return CTL_EXIT_OK;
}

int ctl_submit(struct ctl *c, struct json_object *ops, bool stage, const char *summary,
               struct json_object **ret_reply, const char **ret_error_code) {
        _cleanup_(json_object_putp) struct json_object *req =
                ctl_request_submit(ops, stage, c->actor, summary);

        return ctl_call(c, req, 0, ret_reply, ret_error_code);
}

bool ctl_reply_first_id(struct json_object *reply, int64_t *ret) {
        struct json_object *results, *first;

        if (haven_json_get_array(reply, "results", &results) < 0 ||
            json_object_array_length(results) < 1)
                return false;
        first = json_object_array_get_idx(results, 0);
        return haven_json_get_int64(first, "id", ret) >= 0;
}
