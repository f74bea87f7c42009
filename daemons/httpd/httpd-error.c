/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The API's errors: one table from our error codes to {HTTP status, code,
 * default message}, the mapping of haven-domaind's error codes and of
 * failed calls onto it, and the one error body every answer uses,
 * {"error":{"code","message","field"}}. Must not: invent a status outside
 * the table.
 */
#include <stdarg.h>
#include <stdio.h>

#include "httpd.h"

static const struct {
        unsigned status;
        const char *code;
        const char *message;
} error_table[_HTTPD_ERROR_MAX] = {
        [HTTPD_ERROR_BAD_REQUEST] = {400, "bad-request",
                                     "the request is malformed"},
        [HTTPD_ERROR_INVALID] = {400, "invalid", "a value is not valid"},
        [HTTPD_ERROR_UNAUTHORIZED] = {401, "unauthorized", "log in first"},
        [HTTPD_ERROR_CSRF] = {403, "csrf",
                              "the request lacks the session's CSRF token "
                              "(header " HTTPD_CSRF_HEADER ")"},
        [HTTPD_ERROR_NOT_FOUND] = {404, "not-found", "no such thing"},
        [HTTPD_ERROR_METHOD] = {405, "method-not-allowed",
                                "this path does not take this method"},
        [HTTPD_ERROR_CONFLICT] = {409, "conflict",
                                  "someone else changed it in the "
                                  "meantime: reload and try again"},
        [HTTPD_ERROR_CLUSTERED] = {409, "clustered",
                                   "this node is in a cluster already"},
        [HTTPD_ERROR_TOO_LARGE] = {413, "too-large",
                                   "the request body is too large"},
        [HTTPD_ERROR_MEDIA_TYPE] = {415, "unsupported-media-type",
                                    "the body must be application/json"},
        [HTTPD_ERROR_THROTTLED] = {429, "throttled",
                                   "too many attempts: wait and try "
                                   "again"},
        [HTTPD_ERROR_INTERNAL] = {500, "internal", "internal error"},
        [HTTPD_ERROR_NOT_IMPLEMENTED] = {501, "not-implemented",
                                         "this is not implemented yet"},
        [HTTPD_ERROR_NO_QUORUM] = {503, "no-quorum",
                                   "the cluster has no quorum: the "
                                   "configuration is read-only"},
        [HTTPD_ERROR_SYNCING] = {503, "syncing",
                                 "the cluster is synchronizing: try "
                                 "again shortly"},
        [HTTPD_ERROR_UNAVAILABLE] = {503, "unavailable",
                                     "haven-domaind is not reachable on "
                                     "this node"},
};

static bool code_valid(enum httpd_error_code code) {
        return code >= 0 && code < _HTTPD_ERROR_MAX;
}

unsigned httpd_error_status(enum httpd_error_code code) {
        return code_valid(code) ? error_table[code].status : 500;
}

const char *httpd_error_code_to_string(enum httpd_error_code code) {
        return code_valid(code) ? error_table[code].code : "internal";
}

void httpd_error_set(struct httpd_error *e, enum httpd_error_code code,
                     const char *field, const char *format, ...) {
        va_list ap;

        *e = (struct httpd_error){
                .code = code_valid(code) ? code : HTTPD_ERROR_INTERNAL};
        if (field)
                snprintf(e->field, sizeof e->field, "%s", field);
        if (format) {
                va_start(ap, format);
                (void) vsnprintf(e->message, sizeof e->message, format, ap);
                va_end(ap);
        }
        if (e->code == HTTPD_ERROR_SYNCING)
                e->retry_after_sec = 1;
}

enum httpd_error_code httpd_error_from_domaind_code(const char *code) {
        static const struct {
                const char *name;
                enum httpd_error_code code;
        } map[] = {
                {"invalid", HTTPD_ERROR_INVALID},
                {"conflict", HTTPD_ERROR_CONFLICT},
                {"not-found", HTTPD_ERROR_NOT_FOUND},
                {"no-quorum", HTTPD_ERROR_NO_QUORUM},
                {"syncing", HTTPD_ERROR_SYNCING},
                {"internal", HTTPD_ERROR_INTERNAL},
                /* a join's: the member refused the password, or did not
                 * answer */
                {"denied", HTTPD_ERROR_INVALID},
                {"unreachable", HTTPD_ERROR_UNAVAILABLE},
                /* haven-fenced's */
                {"bad-parameter", HTTPD_ERROR_INVALID},
                {"unavailable", HTTPD_ERROR_UNAVAILABLE},
        };

        if (code)
                for (size_t i = 0; i < ELEMENTSOF(map); i++)
                        if (streq(code, map[i].name))
                                return map[i].code;
        return HTTPD_ERROR_INTERNAL;
}

void httpd_error_from_domaind(struct json_object *error,
                              struct httpd_error *ret) {
        const char *code = NULL, *message = NULL, *field = NULL;
        enum httpd_error_code c;
        int64_t op = -1;

        (void) haven_json_get_string(error, "code", &code);
        (void) haven_json_get_string(error, "message", &message);
        (void) haven_json_get_string(error, "field", &field);
        c = httpd_error_from_domaind_code(code);
        /* domaind's no-quorum message may say why; ours is the contract. */
        if (c == HTTPD_ERROR_NO_QUORUM || !message || !*message)
                httpd_error_set(ret, c, field, NULL);
        else
                httpd_error_set(ret, c, field, "%s", message);
        if (haven_json_get_int64(error, "op", &op) >= 0 && op >= 0 &&
            op < INT32_MAX)
                ret->op = (unsigned) op + 1;
        if (code)
                snprintf(ret->peer_code, sizeof ret->peer_code, "%s", code);
}

void httpd_error_from_errno(int error, struct httpd_error *ret) {
        switch (error) {
        case -ETIMEDOUT:
                httpd_error_set(ret, HTTPD_ERROR_UNAVAILABLE, NULL,
                                "haven-domaind did not answer in time");
                break;
        case -ECONNRESET:
        case -ENOTCONN:
        case -ECANCELED:
        case -ECONNREFUSED:
        case -ENOENT:
                httpd_error_set(ret, HTTPD_ERROR_UNAVAILABLE, NULL, NULL);
                ret->retry_after_sec = 1;
                break;
        case -E2BIG:
                httpd_error_set(ret, HTTPD_ERROR_TOO_LARGE, NULL, NULL);
                break;
        default:
                httpd_error_set(ret, HTTPD_ERROR_INTERNAL, NULL, NULL);
        }
}

struct json_object *httpd_error_to_json(const struct httpd_error *e) {
        _cleanup_(json_object_putp) struct json_object *o = NULL, *inner = NULL;
        enum httpd_error_code code =
                code_valid(e->code) ? e->code : HTTPD_ERROR_INTERNAL;
        const char *message =
                e->message[0] ? e->message : error_table[code].message;

        inner = json_object_new_object();
        o = json_object_new_object();
        if (!inner || !o)
                return NULL;
        if (haven_json_add(inner, "code",
                           json_object_new_string(error_table[code].code)) <
                    0 ||
            haven_json_add(inner, "message", json_object_new_string(message)) <
                    0 ||
            haven_json_add(inner, "field",
                           haven_json_string_or_null(e->field[0] ? e->field
                                                                 : NULL)) < 0 ||
            haven_json_add(o, "error", TAKE_PTR(inner)) < 0)
                return NULL;
        return TAKE_PTR(o);
}
