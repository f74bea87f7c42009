/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The dispatcher's decisions, from a request's head and body alone: path
 * decoding, route matching (404, 405 with Allow), the permission checks
 * (deny by default: only PUBLIC routes go without anything; a session and
 * its CSRF token, the cluster state for setup routes, an HMAC for
 * node-to-node ones), query flags and integer parameters, body presence,
 * type and size, then the body's policy. Pure: no I/O, no clock (time is
 * an argument), no libmicrohttpd, so the fuzz target drives it exactly as
 * the server does. Must not: run handlers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "httpd.h"

/* ==== Methods ==== */

static const char *const method_names[_HTTPD_METHOD_MAX] = {
        [HTTPD_GET] = "GET", [HTTPD_HEAD] = "HEAD",   [HTTPD_POST] = "POST",
        [HTTPD_PUT] = "PUT", [HTTPD_PATCH] = "PATCH", [HTTPD_DELETE] = "DELETE",
};

enum httpd_method httpd_method_from_string(const char *s) {
        if (s)
                for (size_t i = 0; i < ELEMENTSOF(method_names); i++)
                        if (streq(s, method_names[i]))
                                return (enum httpd_method) i;
        return _HTTPD_METHOD_INVALID;
}

const char *httpd_method_to_string(enum httpd_method m) {
        return m >= 0 && m < _HTTPD_METHOD_MAX ? method_names[m] : NULL;
}

bool httpd_method_writes(enum httpd_method m) {
        return m != HTTPD_GET && m != HTTPD_HEAD;
}

/* ==== Paths ==== */

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Whether the segment path[0..n) is "." or "..". */
static bool segment_is_dots(const char *s, size_t n) {
        return (n == 1 && s[0] == '.') ||
               (n == 2 && s[0] == '.' && s[1] == '.');
}

int httpd_path_decode(const char *raw, char *buf, size_t size) {
        size_t n = 0, segment = 1;

        assert(raw);
        assert(buf);
        assert(size > 0);

        if (raw[0] != '/')
                return -EINVAL;
        for (const char *p = raw; *p; p++) {
                unsigned char c = (unsigned char) *p;

                if (c == '%') {
                        int high = hex_value(p[1]), low;

                        if (high < 0)
                                return -EINVAL;
                        low = hex_value(p[2]);
                        if (low < 0)
                                return -EINVAL;
                        c = (unsigned char) (high << 4 | low);
                        p += 2;
                }
                /* NUL would cut the path short; control characters have
                 * no business in a path and end up in logs. */
                if (c < 0x20 || c == 0x7F)
                        return -EINVAL;
                if (n + 1 >= size)
                        return -ENAMETOOLONG;
                if (c == '/') {
                        if (segment_is_dots(buf + segment, n - segment))
                                return -EINVAL;
                        segment = n + 1;
                }
                buf[n++] = (char) c;
        }
        if (segment_is_dots(buf + segment, n - segment))
                return -EINVAL;
        buf[n] = '\0';
        return (int) n;
}

static bool path_is_api(const char *path) {
        return strncmp(path, "/api", 4) == 0 &&
               (path[4] == '\0' || path[4] == '/');
}

/* Whether path has the shape of pattern: the same literal segments, any
 * non-empty segment where the pattern has a {parameter}. */
static bool pattern_matches(const char *pattern, const char *path) {
        const char *p = pattern, *q = path;

        if (streq(pattern, HTTPD_STATIC_PATTERN))
                return !path_is_api(path);

        while (*p && *q) {
                size_t np = strcspn(p, "/"), nq = strcspn(q, "/");

                if (p[0] == '{') {
                        if (nq == 0)
                                return false;
                } else if (np != nq || memcmp(p, q, np) != 0)
                        return false;
                p += np;
                q += nq;
                if (*p != *q)
                        return false;
                if (*p) {
                        p++;
                        q++;
                }
        }
        return *p == '\0' && *q == '\0';
}

/* The schema's name rule: 1..63 of letters, digits, '.', '_', '-',
 * starting with a letter or digit. */
static bool name_valid(const char *s, size_t n) {
        if (n == 0 || n > HTTPD_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9');

                if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
                        return false;
        }
        return true;
}

/* A row id: 1..INT64_MAX in plain decimal (no sign, no leading zero). */
static int id_parse(const char *s, size_t n, int64_t *ret) {
        uint64_t v = 0;

        if (n == 0 || n > 19 || s[0] == '0')
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (v > INT64_MAX)
                return -EINVAL;
        *ret = (int64_t) v;
        return 0;
}

/* Takes the parameters out of a path that matched pattern. Returns 0, or
 * -EINVAL with *ret_error naming the parameter. */
static int parameters_extract(const char *pattern, const char *path,
                              struct httpd_match *m,
                              struct httpd_error *ret_error) {
        const char *p = pattern, *q = path;

        if (streq(pattern, HTTPD_STATIC_PATTERN))
                return 0;
        while (*p && *q) {
                size_t np = strcspn(p, "/"), nq = strcspn(q, "/");

                if (np == 4 && memcmp(p, "{id}", 4) == 0) {
                        if (id_parse(q, nq, &m->id) < 0) {
                                httpd_error_set(ret_error, HTTPD_ERROR_INVALID,
                                                "id",
                                                "must be a row id (a "
                                                "positive integer)");
                                return -EINVAL;
                        }
                } else if (np == 6 && memcmp(p, "{name}", 6) == 0) {
                        if (!name_valid(q, nq)) {
                                httpd_error_set(ret_error, HTTPD_ERROR_INVALID,
                                                "name",
                                                "must be 1 to 63 letters, "
                                                "digits, '.', '_' or '-', "
                                                "starting with a letter "
                                                "or digit");
                                return -EINVAL;
                        }
                        memcpy(m->name, q, nq);
                        m->name[nq] = '\0';
                }
                p += np + (p[np] == '/');
                q += nq + (q[nq] == '/');
        }
        return 0;
}

/* ==== Query flags, body framing ==== */

/* A decimal integer, optional '-', digits only (no '+', no spaces). */
static int integer_parse(const char *s, int64_t *ret) {
        bool negative = s[0] == '-';
        uint64_t v = 0, limit = negative ? (uint64_t) INT64_MAX + 1
                                         : (uint64_t) INT64_MAX;

        if (negative)
                s++;
        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' ||
                    v > (limit - (uint64_t) (*s - '0')) / 10)
                        return -EINVAL;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *ret = negative ? (int64_t) (0 - v) : (int64_t) v;
        return 0;
}

/* One query argument that is an integer parameter of the route: -ENOENT
 * when it is none, -EINVAL with *ret_error when its value is bad. */
static int param_parse(const struct httpd_route *route, const char *key,
                       const char *value, struct httpd_match *m,
                       struct httpd_error *ret_error) {
        size_t k = 0;
        int64_t v;

        if (!route->params)
                return -ENOENT;
        for (; k < HTTPD_PARAMS_MAX && route->params[k].name; k++)
                if (streq(route->params[k].name, key))
                        break;
        if (k >= HTTPD_PARAMS_MAX || !route->params[k].name)
                return -ENOENT;
        if (!value || integer_parse(value, &v) < 0 ||
            v < route->params[k].min || v > route->params[k].max) {
                httpd_error_set(ret_error, HTTPD_ERROR_INVALID, key,
                                "must be an integer from %" PRIi64
                                " to %" PRIi64,
                                route->params[k].min, route->params[k].max);
                return -EINVAL;
        }
        m->params[k] = v;
        m->has_param[k] = true;
        return 0;
}

static int flags_parse(const struct httpd_route *route,
                       const struct httpd_head *head, struct httpd_match *m,
                       struct httpd_error *ret_error) {
        if (head->n_query > HTTPD_QUERY_MAX) {
                httpd_error_set(ret_error, HTTPD_ERROR_BAD_REQUEST, NULL,
                                "too many query parameters (at most %u)",
                                HTTPD_QUERY_MAX);
                return -EINVAL;
        }
        for (size_t i = 0; i < head->n_query; i++) {
                const char *key = head->query[i].key,
                           *value = head->query[i].value;
                size_t k = 0;
                int r;

                if (!key)
                        continue;
                r = param_parse(route, key, value, m, ret_error);
                if (r == -EINVAL)
                        return r;
                if (r >= 0)
                        continue;
                if (route->flags)
                        for (; k < HTTPD_FLAGS_MAX && route->flags[k]; k++)
                                if (streq(route->flags[k], key))
                                        break;
                if (!route->flags || k >= HTTPD_FLAGS_MAX || !route->flags[k]) {
                        httpd_error_set(ret_error, HTTPD_ERROR_INVALID, key,
                                        "unknown query parameter");
                        return -EINVAL;
                }
                if (!value || streq(value, "1") || streq(value, "true"))
                        m->flags[k] = true;
                else if (streq(value, "0") || streq(value, "false"))
                        m->flags[k] = false;
                else {
                        httpd_error_set(ret_error, HTTPD_ERROR_INVALID, key,
                                        "must be 1 or 0");
                        return -EINVAL;
                }
        }
        return 0;
}

bool httpd_match_param(const struct httpd_match *m, const char *name,
                       int64_t *ret) {
        const struct httpd_param *params = m->route ? m->route->params : NULL;

        for (size_t k = 0; params && k < HTTPD_PARAMS_MAX && params[k].name;
             k++)
                if (streq(params[k].name, name)) {
                        if (!m->has_param[k])
                                return false;
                        *ret = m->params[k];
                        return true;
                }
        return false;
}

/* ==== Node-to-node requests ==== */

#define PEER_NONCE_MAX 64u

static void hex_format(const uint8_t *data, size_t size, char *buf) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < size; i++) {
                buf[2 * i] = digits[data[i] >> 4];
                buf[2 * i + 1] = digits[data[i] & 0xF];
        }
        buf[2 * size] = '\0';
}

/* HMAC-SHA256 under key of "haven-peer\nMETHOD\nPATH\nTIME\nNONCE", hex,
 * into buf (65 bytes). Returns 0 or -EIO. */
static int peer_hmac(const uint8_t key[HTTPD_PEER_KEY_SIZE], const char *method,
                     const char *path, uint64_t time, const char *nonce,
                     char buf[65]) {
        _cleanup_free_ char *text = NULL;
        uint8_t digest[32];
        int n;

        n = asprintf(&text, "haven-peer\n%s\n%s\n%" PRIu64 "\n%s", method, path,
                     time, nonce);
        if (n < 0)
                return -ENOMEM;
        if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, HTTPD_PEER_KEY_SIZE, text,
                             (size_t) n, digest) < 0)
                return -EIO;
        hex_format(digest, sizeof digest, buf);
        return 0;
}

void httpd_peer_auth_format(const uint8_t key[HTTPD_PEER_KEY_SIZE],
                            const char *method, const char *path,
                            uint64_t realtime, const char *nonce, char *buf) {
        char hmac[65];

        buf[0] = '\0';
        if (strlen(nonce) > PEER_NONCE_MAX ||
            peer_hmac(key, method, path, realtime, nonce, hmac) < 0)
                return;
        snprintf(buf, HTTPD_PEER_AUTH_SIZE, "%" PRIu64 ":%s:%s", realtime,
                 nonce, hmac);
}

bool httpd_peer_auth_check(const uint8_t key[HTTPD_PEER_KEY_SIZE],
                           const char *method, const char *path,
                           uint64_t realtime, const char *value) {
        char nonce[PEER_NONCE_MAX + 1], time_text[24], expected[65];
        const char *colon1, *colon2;
        int64_t time;
        size_t n;

        if (!key || !value)
                return false;
        colon1 = strchr(value, ':');
        colon2 = colon1 ? strchr(colon1 + 1, ':') : NULL;
        if (!colon2)
                return false;
        n = (size_t) (colon1 - value);
        if (n == 0 || n >= sizeof time_text)
                return false;
        memcpy(time_text, value, n);
        time_text[n] = '\0';
        if (time_text[0] == '-' || integer_parse(time_text, &time) < 0)
                return false;
        n = (size_t) (colon2 - colon1 - 1);
        if (n == 0 || n > PEER_NONCE_MAX)
                return false;
        memcpy(nonce, colon1 + 1, n);
        nonce[n] = '\0';
        for (size_t i = 0; i < n; i++)
                if (hex_value(nonce[i]) < 0)
                        return false;
        if ((uint64_t) time + HTTPD_PEER_SKEW_USEC < realtime ||
            (uint64_t) time > realtime + HTTPD_PEER_SKEW_USEC)
                return false;
        if (peer_hmac(key, method, path, (uint64_t) time, nonce, expected) < 0)
                return false;
        return httpd_equal_secret(expected, strlen(expected), colon2 + 1,
                                  strlen(colon2 + 1));
}

bool httpd_match_flag(const struct httpd_match *m, const char *flag) {
        const char *const *flags = m->route ? m->route->flags : NULL;

        for (size_t k = 0; flags && k < HTTPD_FLAGS_MAX && flags[k]; k++)
                if (streq(flags[k], flag))
                        return m->flags[k];
        return false;
}

/* Decimal Content-Length, digits only. */
static int length_parse(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *ret = v;
        return 0;
}

/* application/json, any case, optionally with parameters (charset). */
static bool content_type_is_json(const char *s) {
        static const char json[] = "application/json";

        if (!s)
                return false;
        s += strspn(s, " \t");
        if (strncasecmp(s, json, strlen(json)) != 0)
                return false;
        s += strlen(json);
        s += strspn(s, " \t");
        return *s == '\0' || *s == ';';
}

size_t httpd_route_body_max(const struct httpd_route *route) {
        return route->body_max ? route->body_max : HTTPD_BODY_MAX;
}

static int body_framing(const struct httpd_route *route,
                        const struct httpd_head *head, struct httpd_match *m,
                        struct httpd_error *ret_error) {
        m->content_length = UINT64_MAX;
        if (head->transfer_encoding &&
            strcasecmp(head->transfer_encoding, "identity") != 0)
                m->has_body = true;
        else if (head->content_length) {
                if (length_parse(head->content_length, &m->content_length) <
                    0) {
                        httpd_error_set(ret_error, HTTPD_ERROR_BAD_REQUEST,
                                        NULL, "malformed Content-Length");
                        return -EINVAL;
                }
                m->has_body = m->content_length > 0;
        } else
                m->content_length = 0;

        if (!m->has_body)
                return 0;
        if (!route->policy) {
                httpd_error_set(ret_error, HTTPD_ERROR_BAD_REQUEST, NULL,
                                "this request takes no body");
                return -EINVAL;
        }
        if (!content_type_is_json(head->content_type)) {
                httpd_error_set(ret_error, HTTPD_ERROR_MEDIA_TYPE, NULL, NULL);
                return -EINVAL;
        }
        if (m->content_length != UINT64_MAX &&
            m->content_length > httpd_route_body_max(route)) {
                httpd_error_set(ret_error, HTTPD_ERROR_TOO_LARGE, NULL,
                                "the request body is larger than %zu bytes",
                                httpd_route_body_max(route));
                return -EINVAL;
        }
        return 0;
}

/* ==== Resolve ==== */

/* "GET, POST": the methods in mask, in table order. */
static void allow_format(unsigned mask, char *buf, size_t size) {
        size_t used = 0;

        buf[0] = '\0';
        for (int m = 0; m < _HTTPD_METHOD_MAX; m++) {
                int k;

                if (!(mask & (1u << m)))
                        continue;
                k = snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                             method_names[m]);
                if (k < 0 || (size_t) k >= size - used)
                        return;
                used += (size_t) k;
        }
}

/* The session check of HTTPD_SESSION routes (and of HTTPD_SETUP ones in
 * a cluster): 401 without a live session, 403 for a write without its
 * CSRF token. */
static int session_check(const struct httpd_router_context *ctx,
                         const struct httpd_head *head,
                         enum httpd_method method, struct httpd_match *ret,
                         struct httpd_error *ret_error) {
        const struct httpd_session *session = NULL;

        if (ctx->sessions && head->session_cookie)
                session = httpd_sessions_find(ctx->sessions,
                                              head->session_cookie, ctx->now);
        if (!session) {
                httpd_error_set(ret_error, HTTPD_ERROR_UNAUTHORIZED, NULL,
                                NULL);
                return -EINVAL;
        }
        if (httpd_method_writes(method) &&
            !httpd_session_csrf_ok(session, head->csrf_token)) {
                httpd_error_set(ret_error, HTTPD_ERROR_CSRF, NULL, NULL);
                return -EINVAL;
        }
        snprintf(ret->administrator, sizeof ret->administrator, "%s",
                 session->administrator);
        snprintf(ret->session_token, sizeof ret->session_token, "%s",
                 head->session_cookie);
        return 0;
}

static int permission_check(const struct httpd_route *route,
                            const struct httpd_router_context *ctx,
                            const struct httpd_head *head,
                            enum httpd_method method, struct httpd_match *ret,
                            struct httpd_error *ret_error) {
        switch (route->permission) {
        case HTTPD_PUBLIC:
                return 0;
        case HTTPD_UNCLUSTERED:
        case HTTPD_SETUP:
                if (ctx->cluster == HTTPD_CLUSTER_UNKNOWN) {
                        httpd_error_set(ret_error, HTTPD_ERROR_UNAVAILABLE,
                                        NULL,
                                        "whether this node is in a cluster "
                                        "is not known yet: try again");
                        ret_error->retry_after_sec = 1;
                        return -EINVAL;
                }
                if (ctx->cluster == HTTPD_CLUSTER_NONE)
                        return 0;
                if (route->permission == HTTPD_UNCLUSTERED) {
                        httpd_error_set(ret_error, HTTPD_ERROR_CLUSTERED, NULL,
                                        NULL);
                        return -EINVAL;
                }
                return session_check(ctx, head, method, ret, ret_error);
        case HTTPD_PEER:
                if (!httpd_peer_auth_check(ctx->peer_key, head->method,
                                           ret->path, ctx->realtime,
                                           head->peer_auth)) {
                        httpd_error_set(ret_error, HTTPD_ERROR_UNAUTHORIZED,
                                        NULL,
                                        "node-to-node requests need a "
                                        "valid " HTTPD_PEER_HEADER " header");
                        return -EINVAL;
                }
                return 0;
        case HTTPD_SESSION:
        default:
                /* Deny by default: everything else needs a session. */
                return session_check(ctx, head, method, ret, ret_error);
        }
}

int httpd_router_resolve(const struct httpd_route *routes, size_t n_routes,
                         const struct httpd_router_context *ctx,
                         const struct httpd_head *head, struct httpd_match *ret,
                         struct httpd_error *ret_error) {
        enum httpd_method method = httpd_method_from_string(head->method);
        const struct httpd_route *route = NULL;
        unsigned allowed = 0;
        int r;

        assert(routes);
        assert(ctx);
        assert(head);
        assert(ret);
        assert(ret_error);

        *ret = (struct httpd_match){};
        if (!head->path) {
                httpd_error_set(ret_error, HTTPD_ERROR_BAD_REQUEST, NULL,
                                "the request has no path");
                return -EINVAL;
        }
        r = httpd_path_decode(head->path, ret->path, sizeof ret->path);
        if (r < 0) {
                httpd_error_set(ret_error, HTTPD_ERROR_BAD_REQUEST, NULL,
                                r == -ENAMETOOLONG ? "the path is too long"
                                                   : "the path is malformed");
                return -EINVAL;
        }

        for (size_t i = 0; i < n_routes; i++) {
                if (!pattern_matches(routes[i].pattern, ret->path))
                        continue;
                allowed |= 1u << routes[i].method;
                if (!route && routes[i].method == method)
                        route = routes + i;
        }
        if (!allowed) {
                httpd_error_set(ret_error, HTTPD_ERROR_NOT_FOUND, NULL,
                                "no such path");
                return -EINVAL;
        }
        if (!route) {
                char allow[sizeof ret_error->allow];

                allow_format(allowed, allow, sizeof allow);
                httpd_error_set(ret_error, HTTPD_ERROR_METHOD, NULL,
                                "this path takes %s", allow);
                memcpy(ret_error->allow, allow, sizeof allow);
                return -EINVAL;
        }
        ret->route = route;

        r = permission_check(route, ctx, head, method, ret, ret_error);
        if (r < 0)
                return r;

        r = parameters_extract(route->pattern, ret->path, ret, ret_error);
        if (r < 0)
                return r;
        r = flags_parse(route, head, ret, ret_error);
        if (r < 0)
                return r;
        return body_framing(route, head, ret, ret_error);
}

/* ==== Body ==== */

static bool policy_has(const struct httpd_route *route, const char *key) {
        for (size_t i = 0; i < route->n_policy; i++)
                if (streq(route->policy[i].name, key))
                        return true;
        return false;
}

/* Copies key into buf, cut on a UTF-8 character boundary. */
static void field_copy(char *buf, size_t size, const char *key) {
        size_t n = strlen(key);

        if (n >= size) {
                n = size - 1;
                while (n > 0 && ((unsigned char) key[n] & 0xC0) == 0x80)
                        n--;
        }
        memcpy(buf, key, n);
        buf[n] = '\0';
}

int httpd_router_check_body(const struct httpd_route *route, const char *body,
                            size_t size, struct json_object **ret,
                            struct httpd_error *ret_error) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        struct haven_json_error error;
        size_t max = httpd_route_body_max(route);
        int r;

        assert(route);
        assert(ret);
        assert(ret_error);

        *ret = NULL;
        if (!route->policy) {
                if (size == 0)
                        return 0;
                httpd_error_set(ret_error, HTTPD_ERROR_BAD_REQUEST, NULL,
                                "this request takes no body");
                return -EINVAL;
        }
        r = haven_json_parse(body, size, max, &obj);
        if (r == -E2BIG) {
                httpd_error_set(ret_error, HTTPD_ERROR_TOO_LARGE, NULL,
                                "the request body is larger than %zu bytes",
                                max);
                return -EINVAL;
        }
        if (r == -ENOMEM) {
                httpd_error_set(ret_error, HTTPD_ERROR_INTERNAL, NULL,
                                "out of memory");
                return -EINVAL;
        }
        if (r < 0) {
                httpd_error_set(ret_error, HTTPD_ERROR_BAD_REQUEST, NULL,
                                size == 0 ? "the request needs a JSON body"
                                          : "the body is not valid JSON");
                return -EINVAL;
        }
        if (haven_json_check(obj, route->policy, route->n_policy, &error) < 0) {
                /* "\"name\" is required", or the whole story for an
                 * unknown field, which is then named as the field too. */
                if (error.field)
                        httpd_error_set(ret_error, HTTPD_ERROR_INVALID,
                                        error.field, "\"%s\" %s", error.field,
                                        error.message);
                else
                        httpd_error_set(ret_error, HTTPD_ERROR_INVALID, NULL,
                                        "%s", error.message);
                if (!error.field &&
                    json_object_is_type(obj, json_type_object)) {
                        json_object_object_foreach(obj, key, value) {
                                (void) value;
                                if (!policy_has(route, key)) {
                                        field_copy(ret_error->field,
                                                   sizeof ret_error->field,
                                                   key);
                                        break;
                                }
                        }
                }
                return -EINVAL;
        }
        *ret = TAKE_PTR(obj);
        return 0;
}
