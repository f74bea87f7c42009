/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The server: libmicrohttpd without threads of its own, its epoll fd
 * watched by an sd-event io source and its timeout driving a timer; the
 * listening socket; connection limits and timeouts; each request's life
 * (head → dispatcher → body within its limit → handler → answer), with
 * suspend/resume for handlers that wait (haven-domaind, a password
 * check, the event stream) and the answers every handler uses. Must not:
 * decide permissions (httpd-router.c does) or block the loop.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "haven/log.h"
#include "haven/loop.h"
#include "httpd.h"

/* TLS 1.3 and 1.2 only, GnuTLS's defaults otherwise (as haven/peer.h). */
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define LISTEN_BACKLOG 128
#define BODY_CHUNK 4096u

struct httpd {
        sd_event *event;
        struct httpd_config config;
        char *cert_pem, *key_pem;

        struct MHD_Daemon *mhd;
        /* libmicrohttpd's epoll fd, its timeout, and a run after a
         * suspended connection was resumed (libmicrohttpd does not notice
         * that by itself when the loop is ours). */
        sd_event_source *io_source, *timer_source, *wake_source;
        uint16_t port;

        const struct httpd_route *routes;
        size_t n_routes;
        struct httpd_sessions *sessions;
        struct httpd_throttle *throttle;
        struct httpd_domain *domain;
        struct httpd_events *events;
        struct httpd_static *ui;
        struct httpd_auth *auth;
        struct httpd_fenced *fenced;
        struct httpd_dashboard *dashboard;
        struct httpd_wizard *wizard;
        struct httpd_console *console;

        uint8_t peer_key[HTTPD_PEER_KEY_SIZE];
        bool has_peer_key;
        enum httpd_cluster_state cluster;
        int64_t node_id;

        /* Requests whose handler waits (their connection is suspended). */
        struct httpd_request *waiting;
};

struct httpd_request {
        struct httpd *httpd;
        struct MHD_Connection *connection;
        struct httpd_request *prev, *next; /* in httpd->waiting */
        struct httpd_match match;
        char client[INET6_ADDRSTRLEN];
        char client_key[64];
        char actor[HTTPD_ACTOR_MAX + 1];

        /* The body, as it arrives. */
        char *body;
        size_t body_size, body_allocated, discarded;
        bool refused; /* an error is decided; the rest of the body is dropped */
        struct httpd_error refusal;
        struct json_object *json;

        bool handled;   /* the handler ran */
        bool waiting;   /* asynchronous work is under way */
        bool suspended; /* its connection is */
        void (*cancel)(void *);
        void *cancel_userdata;
        void *state;
        void (*state_free)(void *);

        /* The answer, until libmicrohttpd has it. */
        struct MHD_Response *response;
        unsigned status;
        bool answered;
        bool response_shared; /* not ours to destroy */
};

/* ==== Accessors ==== */

uint16_t httpd_port(const struct httpd *h) {
        return h->port;
}

sd_event *httpd_event(const struct httpd *h) {
        return h->event;
}

const struct httpd_config *httpd_get_config(const struct httpd *h) {
        return &h->config;
}

struct httpd_sessions *httpd_sessions(const struct httpd *h) {
        return h->sessions;
}

struct httpd_throttle *httpd_throttle(const struct httpd *h) {
        return h->throttle;
}

struct httpd_domain *httpd_domain(const struct httpd *h) {
        return h->domain;
}

struct httpd_events *httpd_events(const struct httpd *h) {
        return h->events;
}

struct httpd_static *httpd_static(const struct httpd *h) {
        return h->ui;
}

struct httpd_auth *httpd_auth(const struct httpd *h) {
        return h->auth;
}

struct httpd_fenced *httpd_fenced(const struct httpd *h) {
        return h->fenced;
}

struct httpd_dashboard *httpd_dashboard(const struct httpd *h) {
        return h->dashboard;
}

struct httpd_wizard *httpd_wizard(const struct httpd *h) {
        return h->wizard;
}

struct httpd_console *httpd_console(const struct httpd *h) {
        return h->console;
}

const uint8_t *httpd_peer_key(const struct httpd *h) {
        return h->has_peer_key ? h->peer_key : NULL;
}

enum httpd_cluster_state httpd_cluster_state(const struct httpd *h) {
        return h->cluster;
}

void httpd_set_cluster_state(struct httpd *h, enum httpd_cluster_state s) {
        if (h->cluster != s)
                log_debug("This node is %s",
                          s == HTTPD_CLUSTER_MEMBER ? "in a cluster"
                          : s == HTTPD_CLUSTER_NONE ? "in no cluster"
                                                    : "of unknown membership");
        h->cluster = s;
        /* corosync's key appears when the node creates or joins a
         * cluster: the node-to-node key comes with it. */
        if (s == HTTPD_CLUSTER_MEMBER && !h->has_peer_key &&
            h->config.authkey_path &&
            httpd_peer_key_load(h->config.authkey_path, h->peer_key) >= 0) {
                h->has_peer_key = true;
                log_info("Node-to-node key loaded from \"%s\"",
                         h->config.authkey_path);
        }
}

int64_t httpd_node_id(const struct httpd *h) {
        return h->node_id;
}

void httpd_set_node_id(struct httpd *h, int64_t node_id) {
        h->node_id = node_id;
}

const struct httpd_match *httpd_request_match(const struct httpd_request *r) {
        return &r->match;
}

struct json_object *httpd_request_body(const struct httpd_request *r) {
        return r->json;
}

struct httpd *httpd_request_server(const struct httpd_request *r) {
        return r->httpd;
}

const char *httpd_request_header(const struct httpd_request *r,
                                 const char *name) {
        return MHD_lookup_connection_value(r->connection, MHD_HEADER_KIND,
                                           name);
}

const char *httpd_request_client(const struct httpd_request *r) {
        return r->client;
}

const char *httpd_request_client_key(const struct httpd_request *r) {
        return r->client_key;
}

const char *httpd_request_actor(const struct httpd_request *r) {
        return r->actor;
}

bool httpd_request_tls(const struct httpd_request *r) {
        return r->httpd->config.tls;
}

struct MHD_Connection *httpd_request_connection(const struct httpd_request *r) {
        return r->connection;
}

void httpd_request_set_state(struct httpd_request *r, void *state,
                             void (*free_fn)(void *)) {
        if (r->state && r->state_free)
                r->state_free(r->state);
        r->state = state;
        r->state_free = free_fn;
}

void *httpd_request_get_state(const struct httpd_request *r) {
        return r->state;
}

void httpd_request_hold(struct httpd_request *r, void (*cancel)(void *),
                        void *userdata) {
        r->waiting = true;
        r->cancel = cancel;
        r->cancel_userdata = userdata;
}

void httpd_request_forget(struct httpd_request *r) {
        r->waiting = false;
        r->cancel = NULL;
        r->cancel_userdata = NULL;
}

void httpd_request_set_timeout(struct httpd_request *r, unsigned seconds) {
        (void) MHD_set_connection_option(
                r->connection, MHD_CONNECTION_OPTION_TIMEOUT, seconds);
}

/* ==== Waiting requests ==== */

static void waiting_add(struct httpd_request *r) {
        struct httpd *h = r->httpd;

        r->prev = NULL;
        r->next = h->waiting;
        if (h->waiting)
                h->waiting->prev = r;
        h->waiting = r;
}

static void waiting_remove(struct httpd_request *r) {
        struct httpd *h = r->httpd;

        if (r->prev)
                r->prev->next = r->next;
        else if (h->waiting == r)
                h->waiting = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->prev = r->next = NULL;
}

static void request_suspend(struct httpd_request *r) {
        assert(!r->suspended);
        MHD_suspend_connection(r->connection);
        r->suspended = true;
        waiting_add(r);
}

static void request_resume(struct httpd_request *r) {
        if (!r->suspended)
                return;
        waiting_remove(r);
        r->suspended = false;
        MHD_resume_connection(r->connection);
        httpd_wake(r->httpd);
}

/* ==== Answers ==== */

int httpd_response_add_common_headers(struct MHD_Response *response) {
        static const char *const headers[][2] = {
                {"X-Content-Type-Options", "nosniff"},
                {"X-Frame-Options", "DENY"},
                {"Referrer-Policy", "no-referrer"},
        };

        for (size_t i = 0; i < ELEMENTSOF(headers); i++)
                if (MHD_add_response_header(response, headers[i][0],
                                            headers[i][1]) != MHD_YES)
                        return -ENOMEM;
        return 0;
}

static void response_release(struct httpd_request *r) {
        if (r->response && !r->response_shared)
                MHD_destroy_response(r->response);
        r->response = NULL;
        r->response_shared = false;
}

/* The first answer wins; the request's connection is resumed if it was
 * waiting. Takes over response unless shared (NULL: out of memory,
 * answered with a bare 500 by dropping the connection). */
static void request_answer_ex(struct httpd_request *r, unsigned status,
                              struct MHD_Response *response, bool shared) {
        if (r->answered || r->response) {
                if (response && !shared)
                        MHD_destroy_response(response);
                return;
        }
        if (response && !shared &&
            httpd_response_add_common_headers(response) < 0) {
                MHD_destroy_response(response);
                response = NULL;
        }
        r->response = response;
        r->response_shared = response && shared;
        r->status = status;
        r->answered = true;
        r->waiting = false;
        r->cancel = NULL;
        request_resume(r);
}

static void request_answer(struct httpd_request *r, unsigned status,
                           struct MHD_Response *response) {
        request_answer_ex(r, status, response, false);
}

void httpd_reply_response(struct httpd_request *r, unsigned status,
                          struct MHD_Response *response) {
        request_answer(r, status, response);
}

void httpd_reply_shared(struct httpd_request *r, unsigned status,
                        struct MHD_Response *response) {
        /* Queued before the handler returns: never suspended. */
        assert(!r->suspended);
        request_answer_ex(r, status, response, true);
}

struct MHD_Response *httpd_json_response(struct json_object *body) {
        const char *text = body ? json_object_to_json_string_ext(
                                          body, JSON_C_TO_STRING_PLAIN)
                                : "";
        struct MHD_Response *response;

        if (!text)
                return NULL;
        response = MHD_create_response_from_buffer(strlen(text), (void *) text,
                                                   MHD_RESPMEM_MUST_COPY);
        if (!response)
                return NULL;
        if ((body && MHD_add_response_header(response, "Content-Type",
                                             "application/json") != MHD_YES) ||
            MHD_add_response_header(response, "Cache-Control", "no-store") !=
                    MHD_YES) {
                MHD_destroy_response(response);
                return NULL;
        }
        return response;
}

void httpd_reply_json(struct httpd_request *r, unsigned status,
                      struct json_object *body) {
        _cleanup_(json_object_putp) struct json_object *owned = body;

        request_answer(r, status, httpd_json_response(owned));
}

void httpd_reply_error(struct httpd_request *r, const struct httpd_error *e) {
        _cleanup_(json_object_putp) struct json_object *body =
                httpd_error_to_json(e);
        struct MHD_Response *response = body ? httpd_json_response(body) : NULL;
        char retry[16];

        if (response && e->retry_after_sec > 0) {
                snprintf(retry, sizeof retry, "%u", e->retry_after_sec);
                if (MHD_add_response_header(response, "Retry-After", retry) !=
                    MHD_YES) {
                        MHD_destroy_response(response);
                        response = NULL;
                }
        }
        if (response && e->allow[0] &&
            MHD_add_response_header(response, "Allow", e->allow) != MHD_YES) {
                MHD_destroy_response(response);
                response = NULL;
        }
        request_answer(r, httpd_error_status(e->code), response);
}

void httpd_reply_code(struct httpd_request *r, enum httpd_error_code code,
                      const char *field, const char *format, ...) {
        struct httpd_error e;

        httpd_error_set(&e, code, field, NULL);
        if (format) {
                va_list ap;

                va_start(ap, format);
                (void) vsnprintf(e.message, sizeof e.message, format, ap);
                va_end(ap);
        }
        httpd_reply_error(r, &e);
}

int httpd_reply_header(struct httpd_request *r, const char *name,
                       const char *value) {
        if (!r->response)
                return -ENOENT;
        if (r->response_shared)
                return -EPERM;
        return MHD_add_response_header(r->response, name, value) == MHD_YES
                       ? 0
                       : -ENOMEM;
}

/* Hands the answer to libmicrohttpd. */
static enum MHD_Result request_queue(struct httpd_request *r) {
        enum MHD_Result result;

        if (!r->response)
                return MHD_NO; /* out of memory: drop the connection */
        result = MHD_queue_response(r->connection, r->status, r->response);
        response_release(r);
        return result;
}

/* ==== Requests ==== */

struct query_collect {
        struct httpd_query_arg args[HTTPD_QUERY_MAX + 1];
        size_t n;
};

static enum MHD_Result on_query_arg(void *cls, enum MHD_ValueKind kind,
                                    const char *key, const char *value) {
        struct query_collect *q = cls;

        if (q->n >= ELEMENTSOF(q->args))
                return MHD_NO; /* too many: the dispatcher refuses */
        q->args[q->n++] = (struct httpd_query_arg){key, value};
        return MHD_YES;
}

static void client_address(struct httpd_request *r) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(
                r->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = info ? info->client_addr : NULL;

        snprintf(r->client, sizeof r->client, "unknown");
        if (sa && sa->sa_family == AF_INET)
                (void) inet_ntop(
                        AF_INET,
                        &((const struct sockaddr_in *) (const void *) sa)
                                 ->sin_addr,
                        r->client, sizeof r->client);
        else if (sa && sa->sa_family == AF_INET6) {
                const struct in6_addr *a =
                        &((const struct sockaddr_in6 *) (const void *) sa)
                                 ->sin6_addr;

                if (IN6_IS_ADDR_V4MAPPED(a))
                        (void) inet_ntop(AF_INET, &a->s6_addr[12], r->client,
                                         sizeof r->client);
                else
                        (void) inet_ntop(AF_INET6, a, r->client,
                                         sizeof r->client);
        }
        httpd_throttle_client_key(sa, r->client_key, sizeof r->client_key);
}

static void request_free(struct httpd_request *r) {
        if (!r)
                return;
        if (r->cancel)
                r->cancel(r->cancel_userdata);
        httpd_request_set_state(r, NULL, NULL);
        if (r->suspended)
                waiting_remove(r);
        response_release(r);
        json_object_put(r->json);
        if (r->body) {
                if (r->match.route && r->match.route->secret)
                        explicit_bzero(r->body, r->body_allocated);
                free(r->body);
        }
        free(r);
}

/* The head is in: resolve the route, or decide the refusal. */
static void request_head(struct httpd_request *r, const char *url,
                         const char *method) {
        struct httpd *h = r->httpd;
        struct query_collect query = {};
        struct httpd_router_context ctx;
        struct httpd_error error;
        struct httpd_head head;
        int ret;

        (void) MHD_get_connection_values(r->connection, MHD_GET_ARGUMENT_KIND,
                                         on_query_arg, &query);
        head = (struct httpd_head){
                .method = method,
                .path = url,
                .query = query.args,
                .n_query = query.n,
                .session_cookie = MHD_lookup_connection_value(
                        r->connection, MHD_COOKIE_KIND, HTTPD_SESSION_COOKIE),
                .csrf_token = httpd_request_header(r, HTTPD_CSRF_HEADER),
                .content_type = httpd_request_header(r, "Content-Type"),
                .content_length = httpd_request_header(r, "Content-Length"),
                .transfer_encoding =
                        httpd_request_header(r, "Transfer-Encoding"),
                .peer_auth = httpd_request_header(r, HTTPD_PEER_HEADER),
        };
        ctx = (struct httpd_router_context){
                .sessions = h->sessions,
                .now = haven_now_usec(CLOCK_MONOTONIC),
                .realtime = haven_now_usec(CLOCK_REALTIME),
                .cluster = h->cluster,
                .peer_key = httpd_peer_key(h),
        };
        ret = httpd_router_resolve(h->routes, h->n_routes, &ctx, &head,
                                   &r->match, &error);
        if (ret < 0) {
                httpd_reply_error(r, &error);
                return;
        }
        /* domaind takes actors of up to 64 characters. */
        if (r->match.administrator[0])
                snprintf(r->actor, sizeof r->actor, "api:%.*s",
                         HTTPD_ACTOR_MAX - 4, r->match.administrator);
}

/* Whether the client announced a body (any Transfer-Encoding counts). */
static bool request_has_body(struct httpd_request *r) {
        const char *length = httpd_request_header(r, "Content-Length");

        return httpd_request_header(r, "Transfer-Encoding") ||
               (length && strspn(length, "0") != strlen(length));
}

/* A piece of the body. Returns false when the connection is to be
 * dropped (far too much body). */
static bool request_body_append(struct httpd_request *r, const char *data,
                                size_t size) {
        size_t max = httpd_route_body_max(r->match.route);

        if (r->refused) {
                r->discarded += size;
                return r->discarded <= HTTPD_DISCARD_MAX;
        }
        if (size > max - r->body_size) {
                httpd_error_set(&r->refusal, HTTPD_ERROR_TOO_LARGE, NULL,
                                "the request body is larger than %zu bytes",
                                max);
                r->refused = true;
                r->discarded = size;
                return true;
        }
        if (r->body_size + size > r->body_allocated) {
                size_t want =
                        r->body_allocated ? r->body_allocated : BODY_CHUNK;
                char *p;

                while (want < r->body_size + size)
                        want *= 2;
                if (want > max)
                        want = max;
                p = malloc(want);
                if (!p) {
                        httpd_error_set(&r->refusal, HTTPD_ERROR_INTERNAL, NULL,
                                        "out of memory");
                        r->refused = true;
                        return true;
                }
                if (r->body) {
                        memcpy(p, r->body, r->body_size);
                        /* No realloc: a password must not stay behind. */
                        explicit_bzero(r->body, r->body_allocated);
                        free(r->body);
                }
                r->body = p;
                r->body_allocated = want;
        }
        memcpy(r->body + r->body_size, data, size);
        r->body_size += size;
        return true;
}

/* The whole request is in: check the body, run the handler. */
static void request_run(struct httpd_request *r) {
        struct httpd_error error;
        int ret;

        if (r->refused) {
                httpd_reply_error(r, &r->refusal);
                return;
        }
        ret = httpd_router_check_body(r->match.route, r->body, r->body_size,
                                      &r->json, &error);
        if (ret < 0) {
                httpd_reply_error(r, &error);
                return;
        }
        r->handled = true;
        ret = r->match.route->handler(r);
        if (r->answered)
                return;
        if (ret < 0) {
                httpd_error_from_errno(ret, &error);
                if (error.code == HTTPD_ERROR_INTERNAL)
                        log_warning_errno(
                                ret, "%s %s: %m",
                                httpd_method_to_string(r->match.route->method),
                                r->match.path);
                r->cancel = NULL;
                httpd_reply_error(r, &error);
        } else if (!r->waiting) {
                log_error("%s %s: the handler gave no answer",
                          httpd_method_to_string(r->match.route->method),
                          r->match.path);
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL, NULL);
        }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection,
                                 const char *url, const char *method,
                                 const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
        struct httpd *h = cls;
        struct httpd_request *r = *con_cls;

        if (!r) {
                r = calloc(1, sizeof *r);
                if (!r)
                        return MHD_NO;
                r->httpd = h;
                r->connection = connection;
                *con_cls = r;
                client_address(r);
                request_head(r, url, method);
                /* Refused on its head with a body on its way: answered
                 * before the body is read (libmicrohttpd then closes the
                 * connection). Without one, the answer goes out on the
                 * next call, which keeps the connection alive. */
                return r->answered && request_has_body(r) ? request_queue(r)
                                                          : MHD_YES;
        }
        if (*upload_data_size > 0) {
                bool keep =
                        request_body_append(r, upload_data, *upload_data_size);

                *upload_data_size = 0;
                return keep ? MHD_YES : MHD_NO;
        }
        if (!r->answered && !r->handled)
                request_run(r);
        if (r->answered)
                return request_queue(r);
        request_suspend(r);
        return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *connection,
                         void **con_cls, enum MHD_RequestTerminationCode toe) {
        request_free(*con_cls);
        *con_cls = NULL;
}

/* Paths and query values reach the dispatcher as sent: it decodes them
 * itself and refuses what must not be there (NUL, "..", bad escapes),
 * which libmicrohttpd's decoding would hide. */
static size_t on_unescape(void *cls, struct MHD_Connection *c, char *s) {
        return strlen(s);
}

static void on_mhd_log(void *cls, const char *format, va_list ap) {
        if (log_get_max_level() >= LOG_DEBUG)
                (void) log_internalv(LOG_DEBUG, 0, __FILE__, __LINE__, __func__,
                                     format, ap);
}

/* ==== The loop ==== */

static void mhd_schedule(struct httpd *h) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        uint64_t now;

        if (MHD_get_timeout(h->mhd, &timeout_ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(h->timer_source,
                                                   SD_EVENT_OFF);
                return;
        }
        if (sd_event_now(h->event, CLOCK_MONOTONIC, &now) < 0)
                now = haven_now_usec(CLOCK_MONOTONIC);
        if (timeout_ms > UINT64_MAX / 1000 - now / 1000)
                timeout_ms = UINT64_MAX / 1000 - now / 1000;
        /* libmicrohttpd's timeout is mostly a connection's idle timeout,
         * which moves with every request: with 1 s of slack sd-event keeps
         * its timer where it is instead of re-arming it on every run. Short
         * timeouts (work to do soon) stay exact. */
        (void) sd_event_source_set_time_accuracy(h->timer_source,
                                                 timeout_ms >= 1000 ? 1000 * 1000 : 1);
        (void) sd_event_source_set_time(h->timer_source,
                                        now + timeout_ms * 1000);
        (void) sd_event_source_set_enabled(h->timer_source, SD_EVENT_ONESHOT);
}

static void mhd_run(struct httpd *h) {
        (void) MHD_run(h->mhd);
        mhd_schedule(h);
}

static int on_mhd_io(sd_event_source *s, int fd, uint32_t revents,
                     void *userdata) {
        mhd_run(userdata);
        return 0;
}

static int on_mhd_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        mhd_run(userdata);
        return 0;
}

static int on_wake(sd_event_source *s, void *userdata) {
        mhd_run(userdata);
        return 0;
}

void httpd_wake(struct httpd *h) {
        if (h->wake_source)
                (void) sd_event_source_set_enabled(h->wake_source,
                                                   SD_EVENT_ONESHOT);
}

/* ==== Setup ==== */

void httpd_config_init(struct httpd_config *c) {
        *c = (struct httpd_config){
                .port = HTTPD_PORT_DEFAULT,
                .tls = true,
                .cert_path = HTTPD_STATE_DIR_DEFAULT "/" HTTPD_CERT_FILE,
                .key_path = HTTPD_STATE_DIR_DEFAULT "/" HTTPD_KEY_FILE,
                .ui_dir = HTTPD_UI_DIR_DEFAULT,
                .domaind_socket = HTTPD_DOMAIND_SOCKET_DEFAULT,
                .fenced_socket = HTTPD_FENCED_SOCKET_DEFAULT,
                .authkey_path = HTTPD_AUTHKEY_DEFAULT,
                .metrics_dir = HTTPD_STATE_DIR_DEFAULT,
                .proc_dir = "/proc",
                .metrics_interval_usec = 2ull * 1000000ull,
                .peer_port = HTTPD_PORT_DEFAULT,
                .peer_tls = true,
                .connections = HTTPD_CONNECTIONS_DEFAULT,
                .connections_per_ip = HTTPD_CONNECTIONS_PER_IP_DEFAULT,
                .connection_timeout_sec = HTTPD_CONNECTION_TIMEOUT_SEC_DEFAULT,
                .connection_memory = HTTPD_CONNECTION_MEMORY_DEFAULT,
                .sessions = {.idle_usec = HTTPD_SESSION_IDLE_USEC,
                             .max_usec = HTTPD_SESSION_MAX_USEC,
                             .max_sessions = HTTPD_SESSIONS_MAX},
                .throttle = {.failures = HTTPD_THROTTLE_FAILURES,
                             .window_usec = HTTPD_THROTTLE_WINDOW_USEC,
                             .block_usec = HTTPD_THROTTLE_BLOCK_USEC,
                             .block_max_usec = HTTPD_THROTTLE_BLOCK_MAX_USEC,
                             .max_entries = HTTPD_THROTTLE_ENTRIES},
                .login_workers = 2,
                .heartbeat_usec = 15ull * 1000000ull,
                .event_queue_max = 256u * 1024u,
        };
}

static int addrinfo_error(int eai) {
        switch (eai) {
        case EAI_MEMORY:
                return -ENOMEM;
        case EAI_SYSTEM:
                return negative_errno();
        default:
                return -EINVAL;
        }
}

/* A listening TCP socket on address (an IP literal; NULL: every address,
 * IPv6 and IPv4 when the host has IPv6) and port. Returns the fd, or
 * -EINVAL (not a literal), -EADDRINUSE, -EADDRNOTAVAIL, ... */
static int listen_socket(const char *address, uint16_t port) {
        struct sockaddr_storage ss = {};
        socklen_t len;
        _cleanup_close_ int fd = -1;
        int one = 1, zero = 0;

        if (address) {
                struct addrinfo hints = {.ai_flags =
                                                 AI_NUMERICHOST | AI_PASSIVE,
                                         .ai_socktype = SOCK_STREAM},
                                *ai = NULL;
                int eai = getaddrinfo(address, NULL, &hints, &ai);

                if (eai != 0)
                        return addrinfo_error(eai);
                memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
                len = ai->ai_addrlen;
                freeaddrinfo(ai);
        } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;

                in6->sin6_family = AF_INET6;
                in6->sin6_addr = in6addr_any;
                len = sizeof *in6;
        }
        ((struct sockaddr_in *) &ss)->sin_port = htons(port);
        static_assert(offsetof(struct sockaddr_in, sin_port) ==
                              offsetof(struct sockaddr_in6, sin6_port),
                      "port at the same place");

        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    0);
        if (fd < 0 && !address && errno == EAFNOSUPPORT) {
                /* No IPv6 here: IPv4 only. */
                struct sockaddr_in *in = (struct sockaddr_in *) &ss;

                memset(&ss, 0, sizeof ss);
                in->sin_family = AF_INET;
                in->sin_addr.s_addr = htonl(INADDR_ANY);
                in->sin_port = htons(port);
                len = sizeof *in;
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                            0);
        }
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ss.ss_family == AF_INET6 && !address)
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
                                  sizeof zero);
        if (bind(fd, (struct sockaddr *) &ss, len) < 0)
                return -errno;
        if (listen(fd, LISTEN_BACKLOG) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static uint16_t socket_port(int fd) {
        struct sockaddr_storage ss = {};
        socklen_t len = sizeof ss;

        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return 0;
        return ntohs(((struct sockaddr_in *) &ss)->sin_port);
}

static int mhd_start(struct httpd *h) {
        const struct httpd_config *c = &h->config;
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
        _cleanup_close_ int fd = -1;
        struct MHD_OptionItem options[16];
        size_t n = 0;
        int r;

        fd = listen_socket(c->listen_address, c->port);
        if (fd < 0)
                return log_error_errno(fd, "Failed to listen on %s port %u: %m",
                                       c->listen_address ? c->listen_address
                                                         : "every address",
                                       c->port);
        h->port = socket_port(fd);

#define OPTION(o, v, p)                                                        \
        options[n++] = (struct MHD_OptionItem){(o), (intptr_t) (v), (p)}
        OPTION(MHD_OPTION_LISTEN_SOCKET, fd, NULL);
        OPTION(MHD_OPTION_CONNECTION_LIMIT, c->connections, NULL);
        OPTION(MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->connections_per_ip, NULL);
        OPTION(MHD_OPTION_CONNECTION_TIMEOUT, c->connection_timeout_sec, NULL);
        OPTION(MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->connection_memory, NULL);
        OPTION(MHD_OPTION_NOTIFY_COMPLETED, on_completed, h);
        OPTION(MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, h);
        if (c->tls) {
                flags |= MHD_USE_TLS;
                OPTION(MHD_OPTION_HTTPS_MEM_KEY, 0, h->key_pem);
                OPTION(MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert_pem);
                OPTION(MHD_OPTION_HTTPS_PRIORITIES, 0, (void *) TLS_PRIORITY);
        }
        OPTION(MHD_OPTION_END, 0, NULL);
#undef OPTION
        assert(n <= ELEMENTSOF(options));

        h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_access, h,
                                  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
                                  MHD_OPTION_ARRAY, options, MHD_OPTION_END);
        if (!h->mhd)
                return log_error_errno(-EIO,
                                       "Failed to start libmicrohttpd on "
                                       "port %u",
                                       h->port);
        fd = -1; /* libmicrohttpd's now */

        info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return log_error_errno(-EIO, "libmicrohttpd has no epoll fd");
        r = sd_event_add_io(h->event, &h->io_source, info->epoll_fd, EPOLLIN,
                            on_mhd_io, h);
        if (r >= 0)
                r = sd_event_add_time(h->event, &h->timer_source,
                                      CLOCK_MONOTONIC, 0, 1000, on_mhd_timer,
                                      h);
        if (r >= 0)
                r = sd_event_add_defer(h->event, &h->wake_source, on_wake, h);
        if (r >= 0)
                r = sd_event_source_set_enabled(h->wake_source, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "Failed to watch libmicrohttpd: %m");
        mhd_schedule(h);
        return 0;
}

int httpd_new(sd_event *event, const struct httpd_config *config,
              struct httpd **ret) {
        _cleanup_(httpd_freep) struct httpd *h = NULL;
        int r;

        assert(event);
        assert(config);
        assert(ret);

        h = calloc(1, sizeof *h);
        if (!h)
                return log_error_errno(-ENOMEM, "Out of memory");
        h->event = sd_event_ref(event);
        h->config = *config;
        h->routes = httpd_api_routes(&h->n_routes);

        r = httpd_sessions_new(&config->sessions, &h->sessions);
        if (r >= 0)
                r = httpd_throttle_new(&config->throttle, &h->throttle);
        if (r < 0)
                return log_error_errno(-ENOMEM, "Out of memory");

        if (config->tls) {
                r = httpd_tls_load_or_create(config->cert_path,
                                             config->key_path, &h->cert_pem,
                                             &h->key_pem);
                if (r < 0)
                        return log_error_errno(r,
                                               "Failed to load or create the "
                                               "HTTPS certificate \"%s\" and "
                                               "key \"%s\": %m",
                                               config->cert_path,
                                               config->key_path);
        }

        r = httpd_static_new(config->ui_dir, &h->ui);
        if (r < 0)
                log_warning_errno(r,
                                  "Web UI directory \"%s\" cannot be opened, "
                                  "ignoring (only the API is served): %m",
                                  config->ui_dir);

        r = httpd_auth_new(h, config->login_workers, &h->auth);
        if (r < 0)
                return log_error_errno(r, "Failed to set up logins: %m");
        r = httpd_events_new(h, &h->events);
        if (r < 0)
                return log_error_errno(r, "Failed to set up events: %m");
        if (config->authkey_path) {
                r = httpd_peer_key_load(config->authkey_path, h->peer_key);
                if (r >= 0)
                        h->has_peer_key = true;
                else
                        log_info_errno(r,
                                       "No node-to-node key from \"%s\" "
                                       "(%m): consoles of VMs on other nodes "
                                       "are not reachable from here",
                                       config->authkey_path);
        }
        r = httpd_dashboard_new(h, &h->dashboard);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the dashboard: %m");
        r = httpd_wizard_new(h, &h->wizard);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the wizard: %m");
        r = httpd_console_new(h, &h->console);
        if (r < 0)
                return log_error_errno(r, "Failed to set up consoles: %m");
        r = httpd_fenced_new(h, config->fenced_socket, &h->fenced);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to set up the link to "
                                       "haven-fenced at \"%s\": %m",
                                       config->fenced_socket);
        r = httpd_domain_new(h, config->domaind_socket, &h->domain);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to set up the link to "
                                       "haven-domaind at \"%s\": %m",
                                       config->domaind_socket);

        r = mhd_start(h);
        if (r < 0)
                return r;
        log_info("Serving %s on %s port %u", config->tls ? "HTTPS" : "HTTP",
                 config->listen_address ? config->listen_address
                                        : "every address",
                 h->port);
        *ret = TAKE_PTR(h);
        return 0;
}

struct httpd *httpd_free(struct httpd *h) {
        if (!h)
                return NULL;

        /* Waiting requests get an answer (never sent: the connections
         * close), which resumes them: libmicrohttpd must not be stopped
         * with suspended connections. */
        while (h->waiting) {
                struct httpd_request *r = h->waiting;

                if (r->cancel) {
                        void (*cancel)(void *) = r->cancel;

                        r->cancel = NULL;
                        cancel(r->cancel_userdata);
                }
                httpd_reply_code(r, HTTPD_ERROR_UNAVAILABLE, NULL,
                                 "haven-httpd is stopping");
                if (h->waiting == r) /* not resumed: cannot happen */
                        waiting_remove(r);
        }
        h->events = httpd_events_free(h->events);
        h->console = httpd_console_free(h->console);

        h->io_source = sd_event_source_disable_unref(h->io_source);
        h->timer_source = sd_event_source_disable_unref(h->timer_source);
        h->wake_source = sd_event_source_disable_unref(h->wake_source);
        if (h->mhd)
                MHD_stop_daemon(h->mhd);

        h->domain = httpd_domain_free(h->domain);
        h->fenced = httpd_fenced_free(h->fenced);
        h->dashboard = httpd_dashboard_free(h->dashboard);
        h->wizard = httpd_wizard_free(h->wizard);
        h->auth = httpd_auth_free(h->auth);
        h->ui = httpd_static_free(h->ui);
        h->sessions = httpd_sessions_free(h->sessions);
        h->throttle = httpd_throttle_free(h->throttle);
        explicit_bzero(h->peer_key, sizeof h->peer_key);
        free(h->cert_pem);
        if (h->key_pem) {
                explicit_bzero(h->key_pem, strlen(h->key_pem));
                free(h->key_pem);
        }
        sd_event_unref(h->event);
        free(h);
        return NULL;
}
