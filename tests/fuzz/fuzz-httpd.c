/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for haven-httpd's dispatcher (daemons/httpd/
 * httpd-router.c): everything a request goes through before its handler,
 * without network. An input is
 *     METHOD \n PATH[?QUERY] \n OPTIONS \n BODY...
 * (missing lines are empty). The raw path and query go in as a client
 * sends them; QUERY is split at '&' and '=' as libmicrohttpd does (values
 * stay raw). OPTIONS letters choose the rest of the head: 'c' the cookie
 * of a live session (else 'b' a bogus one), 'x' its CSRF token (else 'y'
 * a wrong one), 'j' a JSON Content-Type (else 't' text/plain), 'l' a
 * Content-Length of the body's size (else 'L' a huge one), 'k' chunked,
 * 'p' a valid node-to-node header for the decoded path (else 'q' a forged
 * one), 'n' this node in no cluster (else 'u' unknown, else in one).
 * The route table is the real one, so every body policy of every route
 * is fuzzed. Besides what the sanitizers catch, it aborts when a verdict
 * breaks what httpd.h promises: an error outside the table or without a
 * message in its JSON, 405 without Allow, a session route passed without
 * the session (or a write without its CSRF token), a setup route passed
 * while the node is in a cluster without a session, a node-to-node route
 * passed without a valid HMAC, a decoded path with a "." or ".." segment
 * or a control character, a row id or an integer parameter out of range,
 * a body accepted that the policy refuses, an announced body over the
 * limit let through.
 */
#include <stdint.h>

#include "../../daemons/httpd/httpd.h"
#include "fuzz-util.h"

#define LINE_MAX_BYTES 2048u
#define QUERY_ARGS_MAX 16u

static struct httpd_sessions *sessions;
static char token[HTTPD_TOKEN_SIZE];
static char csrf[HTTPD_TOKEN_SIZE];
static const uint8_t peer_key[HTTPD_PEER_KEY_SIZE] = {1, 2, 3, 4, 5, 6, 7};
#define REALTIME 1800000000000000ull

/* Takes the next line of [*p, end) into buf (cut to fit). */
static void take_line(const uint8_t **p, const uint8_t *end, char *buf,
                      size_t size) {
        size_t n = 0;

        while (*p < end && **p != '\n') {
                if (n + 1 < size)
                        buf[n++] = (char) **p;
                (*p)++;
        }
        if (*p < end)
                (*p)++;
        buf[n] = '\0';
}

static bool segment_is_dots(const char *s, size_t n) {
        return (n == 1 && s[0] == '.') ||
               (n == 2 && s[0] == '.' && s[1] == '.');
}

static void verify_path(const char *path) {
        check(path[0] == '/');
        for (const char *p = path; *p;) {
                size_t n;

                p++;
                n = strcspn(p, "/");
                check(!segment_is_dots(p, n));
                p += n;
        }
        for (const char *p = path; *p; p++)
                check((unsigned char) *p >= 0x20 && *p != 0x7F);
}

/* A refusal: in the table, said in words in the one error shape. */
static void verify_error(const struct httpd_error *e) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *inner;
        const char *code, *message;
        unsigned status;

        check(e->code >= 0 && e->code < _HTTPD_ERROR_MAX);
        check(memchr(e->message, '\0', sizeof e->message));
        check(memchr(e->field, '\0', sizeof e->field));
        o = httpd_error_to_json(e);
        check(o);
        check(haven_json_get_object(o, "error", &inner) == 0);
        check(haven_json_get_string(inner, "code", &code) == 0);
        check(streq(code, httpd_error_code_to_string(e->code)));
        check(haven_json_get_string(inner, "message", &message) == 0);
        check(message[0] != '\0');
        status = httpd_error_status(e->code);
        check(status == 400 || status == 401 || status == 403 ||
              status == 404 || status == 405 || status == 409 ||
              status == 413 || status == 415 || status == 500 || status == 503);
        check((status == 405) == (e->allow[0] != '\0'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char method[LINE_MAX_BYTES], target[LINE_MAX_BYTES],
                options[LINE_MAX_BYTES];
        const uint8_t *p = data, *end = data + size;
        struct httpd_query_arg args[QUERY_ARGS_MAX];
        char length[32], *query, decoded[HTTPD_PATH_MAX + 1],
                peer[HTTPD_PEER_AUTH_SIZE] = "";
        struct httpd_router_context ctx;
        _cleanup_(json_object_putp) struct json_object *body = NULL;
        const char *body_text;
        size_t body_size, n_args = 0;
        struct httpd_match m;
        struct httpd_error e;
        struct httpd_head head;
        const struct httpd_route *routes;
        size_t n_routes;
        int r;

        if (!sessions) {
                const struct httpd_session *s;

                check(httpd_sessions_new(NULL, &sessions) == 0);
                check(httpd_sessions_create(sessions, "admin", 1, token, &s) ==
                      0);
                memcpy(csrf, s->csrf_token, sizeof csrf);
        }

        take_line(&p, end, method, sizeof method);
        take_line(&p, end, target, sizeof target);
        take_line(&p, end, options, sizeof options);
        body_text = (const char *) p;
        body_size = (size_t) (end - p);

        query = strchr(target, '?');
        if (query) {
                *query++ = '\0';
                while (query && n_args < QUERY_ARGS_MAX) {
                        char *next = strchr(query, '&'), *eq;

                        if (next)
                                *next++ = '\0';
                        eq = strchr(query, '=');
                        if (eq)
                                *eq++ = '\0';
                        args[n_args++] = (struct httpd_query_arg){query, eq};
                        query = next;
                }
        }
        snprintf(length, sizeof length, "%zu",
                 strchr(options, 'L') ? (size_t) HTTPD_BODY_MAX + 1
                                      : body_size);

        if (strchr(options, 'p') &&
            httpd_path_decode(target, decoded, sizeof decoded) >= 0)
                httpd_peer_auth_format(peer_key, method, decoded, REALTIME,
                                       "00112233", peer);
        else if (strchr(options, 'q'))
                snprintf(peer, sizeof peer, "%llu:00112233:%064x", REALTIME, 0);

        head = (struct httpd_head){
                .method = method,
                .path = target,
                .query = args,
                .n_query = n_args,
                .session_cookie = strchr(options, 'c')   ? token
                                  : strchr(options, 'b') ? "bogus"
                                                         : NULL,
                .csrf_token = strchr(options, 'x')   ? csrf
                              : strchr(options, 'y') ? token
                                                     : NULL,
                .content_type = strchr(options, 'j')   ? "application/json"
                                : strchr(options, 't') ? "text/plain"
                                                       : NULL,
                .content_length = strchr(options, 'l') || strchr(options, 'L')
                                          ? length
                                          : NULL,
                .transfer_encoding = strchr(options, 'k') ? "chunked" : NULL,
                .peer_auth = peer[0] ? peer : NULL,
        };
        ctx = (struct httpd_router_context){
                .sessions = sessions,
                .now = 2,
                .realtime = REALTIME,
                .cluster = strchr(options, 'n')   ? HTTPD_CLUSTER_NONE
                           : strchr(options, 'u') ? HTTPD_CLUSTER_UNKNOWN
                                                  : HTTPD_CLUSTER_MEMBER,
                .peer_key = peer_key,
        };

        routes = httpd_api_routes(&n_routes);
        r = httpd_router_resolve(routes, n_routes, &ctx, &head, &m, &e);
        check(r == 0 || r == -EINVAL);
        if (r < 0) {
                verify_error(&e);
                return 0;
        }

        check(m.route);
        check(m.route >= routes && m.route < routes + n_routes);
        check(streq(httpd_method_to_string(m.route->method), method));
        verify_path(m.path);
        switch (m.route->permission) {
        case HTTPD_PUBLIC:
                break;
        case HTTPD_UNCLUSTERED:
                check(ctx.cluster == HTTPD_CLUSTER_NONE);
                break;
        case HTTPD_PEER:
                check(peer[0] && httpd_peer_auth_check(peer_key, method, m.path,
                                                       REALTIME, peer));
                break;
        case HTTPD_SETUP:
                check(ctx.cluster != HTTPD_CLUSTER_UNKNOWN);
                if (ctx.cluster == HTTPD_CLUSTER_NONE)
                        break;
                _fallthrough_;
        default:
                check(head.session_cookie == token);
                check(streq(m.administrator, "admin"));
                if (httpd_method_writes(m.route->method))
                        check(head.csrf_token == csrf);
        }
        if (strstr(m.route->pattern, "{id}"))
                check(m.id > 0);
        for (size_t k = 0;
             m.route->params && k < HTTPD_PARAMS_MAX && m.route->params[k].name;
             k++)
                if (m.has_param[k])
                        check(m.params[k] >= m.route->params[k].min &&
                              m.params[k] <= m.route->params[k].max);
        if (m.has_body && m.content_length != UINT64_MAX)
                check(m.content_length <= httpd_route_body_max(m.route));

        r = httpd_router_check_body(m.route, body_text, body_size, &body, &e);
        check(r == 0 || r == -EINVAL);
        if (r < 0) {
                verify_error(&e);
                check(!body);
                return 0;
        }
        if (m.route->policy) {
                check(body);
                check(body_size <= httpd_route_body_max(m.route));
                check(haven_json_check(body, m.route->policy, m.route->n_policy,
                                       NULL) == 0);
        } else
                check(!body && body_size == 0);
        return 0;
}
