/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-httpd, the JSON API and web UI server of every node (docs/api/).
 * main.c parses arguments and runs the loop; httpd-server.c drives
 * libmicrohttpd from the sd-event loop and owns each request's life;
 * httpd-router.c decides, from a request's head alone, which route runs and
 * whether it may (pure); httpd-api.c holds the route table and the field
 * policies; httpd-resources.c the generic resource handlers and actions;
 * the other modules own sessions, throttling, login, domaind and fenced
 * access, staged changes and jobs, the dashboard, the wizard, the event
 * stream, the console proxy, static files and TLS credentials. Must not:
 * write the configuration (every write goes through haven-domaind), block
 * the loop, or check permissions anywhere but in the dispatcher.
 */
#pragma once

#include <assert.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <systemd/sd-event.h>

#include "haven/json.h"
#include "haven/macro.h"

/* ==== Defaults and limits ==== */

#define HTTPD_PORT_DEFAULT 8001
#define HTTPD_STATE_DIR_DEFAULT "/var/lib/haven"
#define HTTPD_CERT_FILE "httpd.crt"
#define HTTPD_KEY_FILE "httpd.key"
#define HTTPD_UI_DIR_DEFAULT "/usr/share/haven/webui"
#define HTTPD_DOMAIND_SOCKET_DEFAULT "/run/haven/domaind.sock"
#define HTTPD_FENCED_SOCKET_DEFAULT "/run/haven/fenced.sock"
#define HTTPD_AUTHKEY_DEFAULT "/etc/corosync/authkey"

#define HTTPD_API_PREFIX "/api/v1"
#define HTTPD_STATIC_PATTERN "/**"
#define HTTPD_BODY_MAX (1024u * 1024u) /* a request body, any route */
#define HTTPD_LOGIN_BODY_MAX 4096u     /* the one body anybody may send */
#define HTTPD_PATH_MAX 1024u           /* a decoded path */
#define HTTPD_QUERY_MAX 8u             /* query parameters per request */
#define HTTPD_NAME_MAX 63u             /* an administrator's name */
#define HTTPD_FIELD_MAX 64u            /* a field name in an error */
#define HTTPD_ACTOR_MAX 64             /* "api:NAME" in the audit log */
#define HTTPD_RESOURCE_BODY_MAX (64u * 1024u) /* a row's fields */
#define HTTPD_PARAMS_MAX 4u /* integer query parameters per route */

#define HTTPD_CONNECTIONS_DEFAULT 256u
#define HTTPD_CONNECTIONS_PER_IP_DEFAULT 32u
#define HTTPD_CONNECTION_TIMEOUT_SEC_DEFAULT 30u
#define HTTPD_CONNECTION_MEMORY_DEFAULT (32u * 1024u)
/* A chunked body is read (and thrown away) this far past the limit to
 * answer 413; beyond, the connection is closed without an answer. */
#define HTTPD_DISCARD_MAX (4u * 1024u * 1024u)
/* One call to haven-domaind; a submission waits for the cluster. */
#define HTTPD_DOMAIN_TIMEOUT_USEC (30ull * 1000ull * 1000ull)
/* Creating or joining a cluster starts corosync and waits for quorum. */
#define HTTPD_CLUSTER_TIMEOUT_USEC (180ull * 1000ull * 1000ull)
/* A live device check through haven-fenced (SNMP retries, agents). */
#define HTTPD_FENCED_TIMEOUT_USEC (90ull * 1000ull * 1000ull)

/* base64url of 32 random bytes, without padding, plus NUL. */
#define HTTPD_TOKEN_SIZE 44u
#define HTTPD_SESSION_COOKIE "haven_session"
#define HTTPD_CSRF_HEADER "X-CSRF-Token"
/* Node-to-node requests (the console splice): "TIME:NONCE:HMAC". */
#define HTTPD_PEER_HEADER "X-Haven-Peer"
#define HTTPD_PEER_KEY_SIZE 32u
/* How far a peer's clock may be off (its request's time). */
#define HTTPD_PEER_SKEW_USEC (30ull * 1000000ull)

struct MHD_Connection;
struct MHD_Response;
struct httpd;
struct httpd_request;
struct httpd_sessions;
struct httpd_throttle;
struct httpd_domain;
struct httpd_fenced;
struct httpd_dashboard;
struct httpd_wizard;
struct httpd_console;

/* ==== Errors (httpd-error.c) ==== */

/* Every error the API answers, in one table: HTTP status, the code
 * clients see, the default message (docs/api/README.md lists them). */
enum httpd_error_code {
        HTTPD_ERROR_BAD_REQUEST,     /* 400: not JSON, bad path, ... */
        HTTPD_ERROR_INVALID,         /* 400: a field breaks its policy */
        HTTPD_ERROR_UNAUTHORIZED,    /* 401 */
        HTTPD_ERROR_CSRF,            /* 403 */
        HTTPD_ERROR_NOT_FOUND,       /* 404 */
        HTTPD_ERROR_METHOD,          /* 405 */
        HTTPD_ERROR_CONFLICT,        /* 409 */
        HTTPD_ERROR_CLUSTERED,       /* 409: the node is in a cluster already */
        HTTPD_ERROR_TOO_LARGE,       /* 413 */
        HTTPD_ERROR_MEDIA_TYPE,      /* 415 */
        HTTPD_ERROR_THROTTLED,       /* 429 */
        HTTPD_ERROR_INTERNAL,        /* 500 */
        HTTPD_ERROR_NOT_IMPLEMENTED, /* 501 */
        HTTPD_ERROR_NO_QUORUM,       /* 503 */
        HTTPD_ERROR_SYNCING,         /* 503 */
        HTTPD_ERROR_UNAVAILABLE,     /* 503: haven-domaind not reachable */
        _HTTPD_ERROR_MAX,
        _HTTPD_ERROR_INVALID = -EINVAL,
};

struct httpd_error {
        enum httpd_error_code code;
        char message[200];           /* "" = the table's message */
        char field[HTTPD_FIELD_MAX]; /* "" = none (JSON null) */
        unsigned retry_after_sec;    /* 0 = no Retry-After header */
        char allow[64];              /* 405: the Allow header */
        /* haven-domaind's "op": 1 + the index of the op of a transaction
         * that was refused; 0 = not known (never answered to clients). */
        unsigned op;
        /* The code the other daemon answered ("denied"), "" if none. */
        char peer_code[24];
};

/* Fills *e: code, field (NULL or "" for none; cut to fit), and a message
 * (NULL for the table's; printf-style otherwise, cut to fit). */
void httpd_error_set(struct httpd_error *e, enum httpd_error_code code,
                     const char *field, const char *format, ...) _printf_(4, 5);
unsigned httpd_error_status(enum httpd_error_code code);
const char *httpd_error_code_to_string(enum httpd_error_code code);
/* haven-domaind's error codes (invalid, conflict, not-found, no-quorum,
 * syncing, internal; a join's denied is invalid, unreachable unavailable)
 * and haven-fenced's (bad-parameter is invalid, unavailable); anything
 * else is HTTPD_ERROR_INTERNAL. */
enum httpd_error_code httpd_error_from_domaind_code(const char *code);
/* An "error" object of a domaind reply (code, message, field, op) as ours;
 * syncing gets Retry-After. Any missing piece falls back to defaults. */
void httpd_error_from_domaind(struct json_object *error,
                              struct httpd_error *ret);
/* A failed call: -ETIMEDOUT, -ECONNRESET, -ENOTCONN, -ECANCELED →
 * unavailable; -E2BIG → too-large; anything else → internal. */
void httpd_error_from_errno(int error, struct httpd_error *ret);
/* {"error":{"code","message","field"}}: a new object, NULL on -ENOMEM. */
struct json_object *httpd_error_to_json(const struct httpd_error *e);

/* ==== Routes (httpd-router.c, pure) ==== */

enum httpd_method {
        HTTPD_GET,
        HTTPD_HEAD,
        HTTPD_POST,
        HTTPD_PUT,
        HTTPD_PATCH,
        HTTPD_DELETE,
        _HTTPD_METHOD_MAX,
        _HTTPD_METHOD_INVALID = -EINVAL,
};

enum httpd_method httpd_method_from_string(const char *s);
const char *httpd_method_to_string(enum httpd_method m);
/* GET and HEAD read; everything else writes and needs the CSRF token. */
bool httpd_method_writes(enum httpd_method m);

enum httpd_permission {
        HTTPD_SESSION, /* the default: an administrator's session */
        HTTPD_PUBLIC,  /* login and the static UI only */
        /* Creating or joining a cluster: no session while this node is in
         * no cluster (a fresh node has no administrators); 409 once it
         * is in one. */
        HTTPD_UNCLUSTERED,
        /* Setup checks (network): no session while this node is in no
         * cluster, a session (and for writes the CSRF token) once it is. */
        HTTPD_SETUP,
        /* Node-to-node (the console splice): no session, a valid
         * HTTPD_PEER_HEADER instead. */
        HTTPD_PEER,
};

/* Whether this node is in a cluster, as haven-domaind last said. */
enum httpd_cluster_state {
        HTTPD_CLUSTER_UNKNOWN, /* not known yet: setup routes answer 503 */
        HTTPD_CLUSTER_NONE,
        HTTPD_CLUSTER_MEMBER,
};

struct httpd_resource;

/* An integer query parameter a route takes (?limit=50): name and range. */
struct httpd_param {
        const char *name;
        int64_t min, max;
};

/* Handlers answer with httpd_reply_*() now or later (after starting
 * asynchronous work tied to the request). A negative errno without an
 * answer is answered by the dispatcher (httpd_error_from_errno()). */
typedef int (*httpd_handler_t)(struct httpd_request *r);

struct httpd_route {
        enum httpd_method method;
        /* "/api/v1/hosts/{id}": {id} is a row id (1..INT64_MAX), {name}
         * a name (the schema's name rule); HTTPD_STATIC_PATTERN (the
         * static UI) takes any path outside /api. */
        const char *pattern;
        httpd_handler_t handler;
        /* The body's fields; NULL: the route takes no body. */
        const struct haven_json_field *policy;
        size_t n_policy;
        size_t body_max;          /* 0 = HTTPD_BODY_MAX */
        const char *const *flags; /* allowed boolean query parameters,
                                   * NULL-terminated; NULL = none */
        /* Integer query parameters, terminated by {NULL}; NULL = none. */
        const struct httpd_param *params;
        enum httpd_permission permission;
        bool secret; /* the body holds a password: wiped */
        const struct httpd_resource *resource; /* generic handlers' table */
        const char *action; /* the action of an action route ("start") */
};

struct httpd_query_arg {
        const char *key, *value; /* raw, as received */
};

/* A request's head, all the dispatcher looks at. Strings may be NULL
 * (absent) and need not outlive the call. */
struct httpd_head {
        const char *method;
        const char *path; /* percent-encoded, without query */
        const struct httpd_query_arg *query;
        size_t n_query;
        const char *session_cookie; /* the haven_session cookie */
        const char *csrf_token;     /* X-CSRF-Token */
        const char *content_type;
        const char *content_length;
        const char *transfer_encoding;
        const char *peer_auth; /* X-Haven-Peer */
};

/* What the dispatcher knows besides the head. */
struct httpd_router_context {
        struct httpd_sessions *sessions; /* NULL: no session is valid */
        uint64_t now;                    /* CLOCK_MONOTONIC, sessions */
        uint64_t realtime;               /* CLOCK_REALTIME, peer requests */
        enum httpd_cluster_state cluster;
        /* The node-to-node key; NULL: no peer request is valid. */
        const uint8_t *peer_key;
};

#define HTTPD_FLAGS_MAX 8u

struct httpd_match {
        const struct httpd_route *route;
        char path[HTTPD_PATH_MAX + 1];    /* decoded */
        int64_t id;                       /* {id}, else 0 */
        char name[HTTPD_NAME_MAX + 1];    /* {name}, else "" */
        bool flags[HTTPD_FLAGS_MAX];      /* by index in route->flags */
        int64_t params[HTTPD_PARAMS_MAX]; /* by index in route->params */
        bool has_param[HTTPD_PARAMS_MAX];
        bool has_body;           /* Content-Length > 0 or chunked */
        uint64_t content_length; /* UINT64_MAX: unknown */
        /* The session (HTTPD_SESSION routes): copied, so it stays valid
         * while the store changes. */
        char administrator[HTTPD_NAME_MAX + 1];
        char session_token[HTTPD_TOKEN_SIZE];
};

/* Decides what a request's head asks for, in this order: the method and
 * path must parse (400); a route must match the path (404) and the method
 * (405, with the Allow header); the permission: a session for
 * HTTPD_SESSION routes (401) and the CSRF token for writes on them (403),
 * setup routes by the cluster state (409 once in a cluster, 503 while not
 * known), peer routes by their HMAC (401); the query flags and integer
 * parameters (400); a body only where the route takes one (400), as JSON
 * (415), within the route's limit when its length is announced (413). A
 * session found is touched (sliding expiry) at ctx->now. Returns 0 and
 * *ret, or -EINVAL with *ret_error. */
int httpd_router_resolve(const struct httpd_route *routes, size_t n_routes,
                         const struct httpd_router_context *ctx,
                         const struct httpd_head *head, struct httpd_match *ret,
                         struct httpd_error *ret_error);
/* Checks a route's body: strict JSON (400 bad-request), within the route's
 * limit (413), an object meeting the policy (400 invalid, naming the
 * field: an unknown field is named too). Returns 0 and *ret (a new
 * reference; NULL for a route without a policy and an empty body), or
 * -EINVAL with *ret_error. */
int httpd_router_check_body(const struct httpd_route *route, const char *body,
                            size_t size, struct json_object **ret,
                            struct httpd_error *ret_error);
/* The route's body limit. */
size_t httpd_route_body_max(const struct httpd_route *route);
/* Whether flag (one of route->flags) was given as true. */
bool httpd_match_flag(const struct httpd_match *m, const char *flag);
/* The integer parameter name (one of route->params) if it was given:
 * true and *ret; false otherwise (*ret untouched). */
bool httpd_match_param(const struct httpd_match *m, const char *name,
                       int64_t *ret);
/* The node-to-node header for a request (method, decoded path) at
 * realtime (µs since 1970) with nonce (16 random bytes, hex): "TIME:NONCE:
 * HMAC", HMAC-SHA256 under key, hex. buf holds HTTPD_PEER_AUTH_SIZE. */
#define HTTPD_PEER_AUTH_SIZE 128u
void httpd_peer_auth_format(const uint8_t key[HTTPD_PEER_KEY_SIZE],
                            const char *method, const char *path,
                            uint64_t realtime, const char *nonce, char *buf);
/* Whether value is a valid header for method and path at realtime: well
 * formed, its time within HTTPD_PEER_SKEW_USEC, its HMAC right (compared
 * in constant time). */
bool httpd_peer_auth_check(const uint8_t key[HTTPD_PEER_KEY_SIZE],
                           const char *method, const char *path,
                           uint64_t realtime, const char *value);
/* Decodes %XX escapes of a path into buf (size bytes). Returns the length,
 * -EINVAL for a bad escape, a NUL or control character, a path not
 * starting with '/', or a "." or ".." segment; -ENAMETOOLONG. */
int httpd_path_decode(const char *raw, char *buf, size_t size);

/* ==== Sessions (httpd-session.c, pure: time is an argument) ==== */

struct httpd_session_limits {
        uint64_t idle_usec;  /* expiry after this long unused (sliding) */
        uint64_t max_usec;   /* expiry after this long, used or not */
        size_t max_sessions; /* beyond, the least recently used goes */
};

#define HTTPD_SESSION_IDLE_USEC (30ull * 60ull * 1000000ull)
#define HTTPD_SESSION_MAX_USEC (12ull * 3600ull * 1000000ull)
#define HTTPD_SESSIONS_MAX 256u

struct httpd_session {
        char administrator[HTTPD_NAME_MAX + 1];
        char csrf_token[HTTPD_TOKEN_SIZE];
        uint64_t created_usec, used_usec; /* CLOCK_MONOTONIC */
        uint8_t key[32];                  /* SHA-256 of the cookie's token */
};

/* limits NULL = the defaults. Returns 0 and *ret, or -ENOMEM. */
int httpd_sessions_new(const struct httpd_session_limits *limits,
                       struct httpd_sessions **ret);
struct httpd_sessions *httpd_sessions_free(struct httpd_sessions *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct httpd_sessions *, httpd_sessions_free)
/* A new session for administrator at now; the least recently used one
 * goes when the store is full. Writes the cookie's token (random, 256
 * bits, base64url) into ret_token. Returns 0 and *ret (borrowed: valid
 * until the store changes), -EINVAL (bad name), or a negative errno from
 * the random generator. */
int httpd_sessions_create(struct httpd_sessions *s, const char *administrator,
                          uint64_t now, char ret_token[HTTPD_TOKEN_SIZE],
                          const struct httpd_session **ret);
/* The live session of token at now, touched (its idle expiry restarts);
 * NULL for an unknown, malformed or expired token (an expired one is
 * removed). The pointer is valid until the store changes. */
const struct httpd_session *
httpd_sessions_find(struct httpd_sessions *s, const char *token, uint64_t now);
/* Removes token's session. Returns 0 or -ENOENT. */
int httpd_sessions_remove(struct httpd_sessions *s, const char *token);
/* Removes every session of administrator; returns how many. */
size_t httpd_sessions_remove_administrator(struct httpd_sessions *s,
                                           const char *administrator);
size_t httpd_sessions_count(const struct httpd_sessions *s);
/* When (CLOCK_MONOTONIC) session expires unless used before. */
uint64_t httpd_session_expiry(const struct httpd_sessions *s,
                              const struct httpd_session *session);
/* Constant-time comparison of token with the session's CSRF token; NULL
 * is false. */
bool httpd_session_csrf_ok(const struct httpd_session *session,
                           const char *token);
/* Constant-time equality of two byte strings of known lengths (the
 * lengths themselves are not secret). */
bool httpd_equal_secret(const void *a, size_t a_size, const void *b,
                        size_t b_size);

/* ==== Login throttling (httpd-throttle.c, pure) ==== */

struct httpd_throttle_policy {
        unsigned failures; /* this many failures within window... */
        uint64_t window_usec;
        uint64_t block_usec;     /* ...block for this long, doubled each */
        uint64_t block_max_usec; /* time again, up to this */
        size_t max_entries;      /* keys tracked; the stalest goes first */
};

#define HTTPD_THROTTLE_FAILURES 5u
#define HTTPD_THROTTLE_WINDOW_USEC (5ull * 60ull * 1000000ull)
#define HTTPD_THROTTLE_BLOCK_USEC (30ull * 1000000ull)
#define HTTPD_THROTTLE_BLOCK_MAX_USEC (15ull * 60ull * 1000000ull)
#define HTTPD_THROTTLE_ENTRIES 4096u

/* policy NULL = the defaults. */
int httpd_throttle_new(const struct httpd_throttle_policy *policy,
                       struct httpd_throttle **ret);
struct httpd_throttle *httpd_throttle_free(struct httpd_throttle *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct httpd_throttle *, httpd_throttle_free)
/* 0 when key may try at now, else how long (µs) it must still wait. */
uint64_t httpd_throttle_check(struct httpd_throttle *t, const char *key,
                              uint64_t now);
/* Counts a failure of key at now; may start a block. */
void httpd_throttle_failure(struct httpd_throttle *t, const char *key,
                            uint64_t now);
/* Forgets key (a success). */
void httpd_throttle_success(struct httpd_throttle *t, const char *key);
/* "addr:" and the client's address, IPv6 cut to its /64 (one host
 * holds a whole /64), into buf. */
void httpd_throttle_client_key(const struct sockaddr *sa, char *buf,
                               size_t size);

/* ==== The server (httpd-server.c) ==== */

struct httpd_config {
        const char *listen_address; /* IP literal; NULL = every address */
        uint16_t port;              /* 0 = any free port (tests) */
        bool tls;                   /* false only with --http */
        const char *cert_path, *key_path;
        const char *ui_dir;
        const char *domaind_socket;
        const char *fenced_socket;
        /* corosync's key: the node-to-node key is derived from it (NULL
         * or unreadable: no console across nodes). */
        const char *authkey_path;
        /* Where the disk use of the node's samples is measured, and the
         * procfs they come from ("/proc"; tests point elsewhere). */
        const char *metrics_dir;
        const char *proc_dir;
        uint64_t metrics_interval_usec; /* 0: no samples published */
        /* The port other nodes' haven-httpd listen on, and whether they
         * speak TLS (the console across nodes). */
        uint16_t peer_port;
        bool peer_tls;
        unsigned connections, connections_per_ip;
        unsigned connection_timeout_sec;
        size_t connection_memory;
        struct httpd_session_limits sessions;
        struct httpd_throttle_policy throttle;
        unsigned login_workers;  /* password checks at once */
        uint64_t heartbeat_usec; /* event stream comments */
        size_t event_queue_max;  /* bytes queued per event client */
};

/* The defaults above (HTTPS on 8001 on every address). */
void httpd_config_init(struct httpd_config *c);

/* Loads (or creates) the TLS credentials, opens the UI directory (a
 * missing one is logged; static paths then answer 404), connects to
 * haven-domaind (retried in the background), and starts serving on the
 * loop. Returns 0 and *ret, -EADDRINUSE, -EADDRNOTAVAIL, -EINVAL (bad
 * address), or another negative errno, logged. */
int httpd_new(sd_event *event, const struct httpd_config *config,
              struct httpd **ret);
/* Answers every waiting request with 503, closes every connection, stops.
 * NULL ok. Returns NULL. */
struct httpd *httpd_free(struct httpd *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct httpd *, httpd_free)
uint16_t httpd_port(const struct httpd *h);
/* Has libmicrohttpd run soon: call after resuming a connection. */
void httpd_wake(struct httpd *h);
sd_event *httpd_event(const struct httpd *h);
const struct httpd_config *httpd_get_config(const struct httpd *h);
struct httpd_sessions *httpd_sessions(const struct httpd *h);
struct httpd_throttle *httpd_throttle(const struct httpd *h);
struct httpd_domain *httpd_domain(const struct httpd *h);
struct httpd_events *httpd_events(const struct httpd *h);
struct httpd_static *httpd_static(const struct httpd *h);
struct httpd_auth *httpd_auth(const struct httpd *h);
struct httpd_fenced *httpd_fenced(const struct httpd *h);
struct httpd_dashboard *httpd_dashboard(const struct httpd *h);
struct httpd_wizard *httpd_wizard(const struct httpd *h);
struct httpd_console *httpd_console(const struct httpd *h);
/* The node-to-node key, NULL when there is none (no authkey). */
const uint8_t *httpd_peer_key(const struct httpd *h);
/* Whether this node is in a cluster, as haven-domaind last said. */
enum httpd_cluster_state httpd_cluster_state(const struct httpd *h);
void httpd_set_cluster_state(struct httpd *h, enum httpd_cluster_state s);
/* This node's corosync id (0 until haven-domaind said). */
int64_t httpd_node_id(const struct httpd *h);
void httpd_set_node_id(struct httpd *h, int64_t node_id);

/* What handlers see of their request. */
const struct httpd_match *httpd_request_match(const struct httpd_request *r);
/* The validated body (borrowed), NULL for routes without one. */
struct json_object *httpd_request_body(const struct httpd_request *r);
struct httpd *httpd_request_server(const struct httpd_request *r);
/* A request header (case-insensitive name), NULL if absent. */
const char *httpd_request_header(const struct httpd_request *r,
                                 const char *name);
/* The client's address as text, and as a throttle key. */
const char *httpd_request_client(const struct httpd_request *r);
const char *httpd_request_client_key(const struct httpd_request *r);
/* "api:NAME", the actor of this request's writes in the audit log (cut
 * to HTTPD_ACTOR_MAX characters: domaind's limit). */
const char *httpd_request_actor(const struct httpd_request *r);
/* Whether the connection is HTTPS (cookies get Secure). */
bool httpd_request_tls(const struct httpd_request *r);
/* Per-request state of a multi-step handler: freed with the request by
 * free_fn (may be NULL). Replaces (and frees) any earlier state. */
void httpd_request_set_state(struct httpd_request *r, void *state,
                             void (*free_fn)(void *));
void *httpd_request_get_state(const struct httpd_request *r);
/* Asynchronous work for the request (a domaind call or a password check)
 * is to be cancelled when it ends: the cancel function is called with
 * userdata if the request is freed before httpd_request_forget(). */
void httpd_request_hold(struct httpd_request *r, void (*cancel)(void *),
                        void *userdata);
void httpd_request_forget(struct httpd_request *r);

/* Answers. Each takes over what it is given, even on failure; the first
 * answer wins (later ones are dropped). A request that waits (suspended)
 * is resumed. */
void httpd_reply_json(struct httpd_request *r, unsigned status,
                      struct json_object *body);
void httpd_reply_error(struct httpd_request *r, const struct httpd_error *e);
void httpd_reply_code(struct httpd_request *r, enum httpd_error_code code,
                      const char *field, const char *format, ...)
        _printf_(4, 5);
/* A prepared libmicrohttpd response (static files, the event stream);
 * adds the common security headers. */
void httpd_reply_response(struct httpd_request *r, unsigned status,
                          struct MHD_Response *response);
/* A response the caller keeps (the dashboard's cached bytes), queued
 * without being taken over: only from inside the handler (answered
 * before it returns), with the common headers already on it
 * (httpd_response_add_common_headers()). httpd_reply_header() refuses to
 * change it (-EPERM). */
void httpd_reply_shared(struct httpd_request *r, unsigned status,
                        struct MHD_Response *response);
int httpd_response_add_common_headers(struct MHD_Response *response);
/* A JSON response (Content-Type, Cache-Control: no-store) of body's text;
 * NULL on -ENOMEM. */
struct MHD_Response *httpd_json_response(struct json_object *body);
/* Adds a header to the answer given (call after httpd_reply_*). Returns 0
 * or -ENOENT when there is no answer yet, -ENOMEM. */
int httpd_reply_header(struct httpd_request *r, const char *name,
                       const char *value);
/* The connection's inactivity timeout for this request (the event stream
 * sets its own). */
void httpd_request_set_timeout(struct httpd_request *r, unsigned seconds);
struct MHD_Connection *httpd_request_connection(const struct httpd_request *r);

/* ==== haven-domaind (httpd-domain.c) ==== */

/* reply is the answer (borrowed), or NULL and error says what failed (a
 * domaind error answer, or the call itself). */
typedef void (*httpd_domain_reply_t)(struct httpd_request *r,
                                     struct json_object *reply,
                                     const struct httpd_error *error);

int httpd_domain_new(struct httpd *h, const char *socket_path,
                     struct httpd_domain **ret);
struct httpd_domain *httpd_domain_free(struct httpd_domain *d);
bool httpd_domain_connected(const struct httpd_domain *d);
/* Sends request (taken over) for r; done is called once with the answer,
 * after this returns, unless r ends first (the call is then forgotten).
 * A haven-domaind that is not reachable is answered at once (503
 * unavailable, done never called) and 0 returned. Returns 0, or -E2BIG,
 * -ENOMEM: done is then never called. */
int httpd_domain_call(struct httpd_request *r, struct json_object *request,
                      httpd_domain_reply_t done);
/* A call for r on another daemon's link (haven-fenced's): as above; a
 * link that is not connected is answered at once (503 naming peer). */
struct haven_msg_link;
int httpd_link_call(struct haven_msg_link *link, const char *peer,
                    struct httpd_request *r, struct json_object *request,
                    uint64_t timeout_usec, httpd_domain_reply_t done);
/* The same with a timeout of its own (cluster-create waits minutes). */
int httpd_domain_call_timeout(struct httpd_request *r,
                              struct json_object *request,
                              uint64_t timeout_usec, httpd_domain_reply_t done);
/* A call of the server's own (the dashboard, the samples), tied to no
 * request: done gets the answer or the error as for requests (reply NULL
 * then). *ret_id (may be NULL) cancels it with httpd_domain_cancel().
 * Returns as httpd_domain_call(). */
typedef void (*httpd_domain_done_t)(struct json_object *reply,
                                    const struct httpd_error *error,
                                    void *userdata);
int httpd_domain_call_background(struct httpd_domain *d,
                                 struct json_object *request,
                                 httpd_domain_done_t done, void *userdata,
                                 uint64_t *ret_id);
void httpd_domain_cancel(struct httpd_domain *d, uint64_t id);

/* ==== Login, logout, who am I (httpd-auth.c) ==== */

struct httpd_auth;

int httpd_auth_new(struct httpd *h, unsigned workers, struct httpd_auth **ret);
/* Waits for running password checks (each is short), frees. NULL ok. */
struct httpd_auth *httpd_auth_free(struct httpd_auth *a);
int httpd_auth_login(struct httpd_request *r);
int httpd_auth_whoami(struct httpd_request *r);
int httpd_auth_logout(struct httpd_request *r);
/* A yescrypt hash of password ("$y$", libxcrypt's default cost, as
 * domaind makes them) computed in a worker thread (the same pool as
 * logins); done gets it (NULL: it failed) after this returns, unless r
 * ends first. The password is copied and the copy wiped. Returns 0 or a
 * negative errno (done is then never called). */
typedef void (*httpd_hash_done_t)(struct httpd_request *r, const char *hash);
int httpd_auth_hash(struct httpd_request *r, const char *password,
                    httpd_hash_done_t done);
/* Whether password matches hash (crypt(3) syntax, yescrypt for us), in a
 * time that depends on the hash's parameters only. NULL/empty is false.
 * Blocks for the hash's cost: call from a worker thread. */
bool httpd_password_check(const char *password, const char *hash);

/* ==== Event stream (httpd-events.c) ==== */

struct httpd_events;

int httpd_events_new(struct httpd *h, struct httpd_events **ret);
/* Ends every stream (their connections close) and frees. NULL ok. */
struct httpd_events *httpd_events_free(struct httpd_events *e);
/* Queues "event: NAME\ndata: JSON\n\n" on every stream; a stream whose
 * queue would overflow is dropped (its client reconnects). */
void httpd_events_publish(struct httpd_events *e, const char *name,
                          struct json_object *data);
size_t httpd_events_clients(const struct httpd_events *e);
int httpd_events_open(struct httpd_request *r);

/* ==== Static UI (httpd-static.c) ==== */

struct httpd_static;

/* Opens dir. -ENOENT/-ENOTDIR when it is not there. */
int httpd_static_new(const char *dir, struct httpd_static **ret);
struct httpd_static *httpd_static_free(struct httpd_static *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct httpd_static *, httpd_static_free)

struct httpd_static_file {
        int fd; /* owned by the caller after a success */
        uint64_t size;
        const char *content_type;  /* static */
        const char *cache_control; /* static */
        bool gzip;                 /* fd is the precompressed FILE.gz */
        char etag[80];             /* quoted */
};

/* Opens what path (decoded, from httpd_path_decode()) names: "/" and
 * paths whose last segment has no dot and no file are index.html (the
 * single-page application's routes); FILE.gz instead of FILE when gzip_ok
 * and it exists. Refuses hidden segments and any symbolic link (each
 * component is opened with O_NOFOLLOW below the UI directory). Returns 0
 * and *ret, -ENOENT, or another negative errno. */
int httpd_static_open(struct httpd_static *s, const char *path, bool gzip_ok,
                      struct httpd_static_file *ret);
/* The content type for a file name (by extension). */
const char *httpd_static_content_type(const char *name);
/* Whether a file name carries a content hash (NAME-HASH.EXT or
 * NAME.HASH.EXT, HASH 8..64 of [A-Za-z0-9_] with a digit): such a file
 * never changes and may be cached forever. */
bool httpd_static_is_hashed(const char *name);
/* Whether an Accept-Encoding header accepts gzip (NULL: no). */
bool httpd_accepts_gzip(const char *accept_encoding);
/* Whether an If-None-Match header matches etag (weak comparison). */
bool httpd_etag_matches(const char *if_none_match, const char *etag);
int httpd_static_serve(struct httpd_request *r);

/* ==== TLS credentials (httpd-tls.c) ==== */

/* Loads or creates the HTTPS certificate and key through libhaven's peer
 * credentials (haven/peer.h: a new ECDSA P-256 key and a self-signed
 * certificate when there is no key, written atomically, key 0600), with
 * this host's SANs: its name, "localhost" and every address but IPv6
 * link-local ones. Returns 0 and both PEM texts (NUL-terminated; the
 * caller frees, wiping the key), -EKEYREJECTED, -EBADMSG, -EFBIG, or
 * another negative errno. */
int httpd_tls_load_or_create(const char *cert_path, const char *key_path,
                             char **ret_cert_pem, char **ret_key_pem);
/* PUT /api/v1/tls: a certificate and key (PEM) checked (they parse, the
 * certificate holds the key, it is valid now) and written atomically in
 * place of the node's; used from the next start of haven-httpd. */
int httpd_tls_replace(struct httpd_request *r);

/* ==== Talking to haven-domaind: messages and answers (httpd-resources.c)
 * ==== */

/* The length of an array, 0 for anything else (json-c asserts on a
 * non-array, and answers from other daemons are outside input). */
static inline size_t httpd_array_length(struct json_object *a) {
        return json_object_is_type(a, json_type_array)
                       ? json_object_array_length(a)
                       : 0;
}

#define HTTPD_SUMMARY_MAX 200u

/* {"request": name}; NULL on -ENOMEM. */
struct json_object *httpd_msg_new(const char *name);
/* {"request":"query","table":T[,"where":W]}; where (may be NULL) is taken
 * over. */
struct json_object *httpd_query_new(const char *table,
                                    struct json_object *where);
/* {"key": value} (an integer); NULL on -ENOMEM. */
struct json_object *httpd_where_int(const char *key, int64_t value);
/* {"request":"submit","ops":OPS,"actor","audit"}: with stage, OPS wrapped
 * into one {"op":"stage","ops":OPS,"summary"}. ops (an array) is taken
 * over. NULL on -ENOMEM. */
struct json_object *httpd_submit_new(struct json_object *ops, bool stage,
                                     const char *actor, const char *summary);
/* The same for one op (taken over). */
struct json_object *httpd_submit_op(struct json_object *op, bool stage,
                                    const char *actor, const char *summary);
/* {"op":"update","table","id","expect_version","values"} (values taken
 * over), {"op":"delete",...}, {"op":"insert","table","values"}. */
struct json_object *httpd_op_update(const char *table, int64_t id,
                                    int64_t version,
                                    struct json_object *values);
struct json_object *httpd_op_delete(const char *table, int64_t id,
                                    int64_t version);
struct json_object *httpd_op_insert(const char *table,
                                    struct json_object *values);
/* Appends text to buf (HTTPD_SUMMARY_MAX + 1 bytes), cut on a UTF-8
 * boundary with "..." when it does not fit. */
void httpd_summary_append(char *buf, const char *text);
/* "VERB TABLE[ LABEL]: key=value ...": values in their JSON form, those of
 * fields named like passwords as ***. values may be NULL. */
void httpd_summary_of_values(char *buf, const char *verb, const char *table,
                             const char *label, struct json_object *values);
/* The "id" of the first result of a submit answer. */
bool httpd_reply_first_id(struct json_object *reply, int64_t *ret);
/* The rows of a query answer (borrowed), or NULL. */
struct json_object *httpd_reply_rows(struct json_object *reply);
/* The row of rows whose key is value (borrowed), or NULL. */
struct json_object *httpd_rows_find(struct json_object *rows, const char *key,
                                    int64_t value);
/* Answers a failed domaind call (error) or the errno of a failed start. */
void httpd_reply_failure(struct httpd_request *r, const struct httpd_error *e,
                         int error);
/* A copy of reply without domaind's bookkeeping ("tag"). */
struct json_object *httpd_reply_copy(struct json_object *reply);

/* ==== Resources (httpd-resources.c) ==== */

/* A domain table served as a collection: GET lists it and reads one row,
 * POST adds a row, PATCH changes one, DELETE removes one (writes staged
 * unless ?now=1). The route's policy checks the body's fields; check (may
 * be NULL) what a policy cannot say (the elements of arrays, formats). */
struct httpd_resource {
        const char *name;  /* the path segment: "hosts", "fence-devices" */
        const char *table; /* the domain table */
        bool singleton;    /* one row: GET and PATCH without an id */
        /* Columns never answered (NULL-terminated; NULL = none) ... */
        const char *const *hidden;
        /* ... and one of them answered as "NAME_set": true/false. */
        const char *hidden_flag;
        /* The column a row is named by in summaries ("name"); NULL: id. */
        const char *label;
        int (*check)(struct json_object *values, struct httpd_error *e);
};

int httpd_resource_list(struct httpd_request *r);
int httpd_resource_get(struct httpd_request *r);
int httpd_resource_create(struct httpd_request *r);
int httpd_resource_update(struct httpd_request *r);
int httpd_resource_delete(struct httpd_request *r);
/* A copy of row without the resource's hidden columns (NULL res: as is).
 * NULL on -ENOMEM. */
struct json_object *httpd_resource_row(const struct httpd_resource *res,
                                       struct json_object *row);
/* A copy of a staged change's ops with every value of a field named like
 * a password ("password", "password_hash", "mail_password") as "***".
 * NULL on -ENOMEM. */
struct json_object *httpd_ops_masked(struct json_object *ops);

/* Administrators: a password becomes a yescrypt hash (worker thread);
 * deleting the last one is refused. */
int httpd_administrator_create(struct httpd_request *r);
int httpd_administrator_update(struct httpd_request *r);
int httpd_administrator_delete(struct httpd_request *r);
/* Nodes: actions (state now), removal (domaind's node-remove), fencing. */
int httpd_node_action(struct httpd_request *r);
int httpd_node_remove(struct httpd_request *r);
int httpd_node_fence(struct httpd_request *r);
int httpd_node_fence_confirm(struct httpd_request *r);
/* VMs: start, shutdown, reboot, reset, poweroff, release and migrate
 * ({"node": NAME}) insert a vm_commands row for haven-vmd's manager (202,
 * Location: /api/v1/vm-commands/ID); prefer ({"node": NAME|null}) sets
 * vms.preferred_node_id. At once, never staged. An unknown VM is 404, an
 * unknown node 400 naming "node"; nothing is written then. */
int httpd_vm_action(struct httpd_request *r);
/* GET /vms/{id}/commands: the VM's vm_commands rows, paged (newest first,
 * ?limit, ?before); 404 for an unknown VM. */
int httpd_vm_commands(struct httpd_request *r);
int httpd_alert_clear(struct httpd_request *r);
/* Lists newest first, paged with ?limit and ?before (ids): audit, jobs,
 * fence requests, alerts. */
int httpd_paged_list(struct httpd_request *r);

/* ==== Staged changes and jobs (httpd-changes.c) ==== */

int httpd_changes_list(struct httpd_request *r);
int httpd_changes_diff(struct httpd_request *r);
int httpd_changes_activate(struct httpd_request *r);
int httpd_changes_discard(struct httpd_request *r);
int httpd_change_delete(struct httpd_request *r);
int httpd_job_log(struct httpd_request *r);
/* What activating would change (pure): for each staged change (rows of
 * staged_changes) its ops, and for updates and deletes the row as it is
 * now (from tables: an object of table name → rows) next to the new
 * values. *ret is new: {"changes": [...]}. */
int httpd_changes_diff_build(struct json_object *changes,
                             struct json_object *tables,
                             struct json_object **ret);

/* ==== haven-fenced (httpd-fence.c) ==== */

struct httpd_fenced;

int httpd_fenced_new(struct httpd *h, const char *socket_path,
                     struct httpd_fenced **ret);
struct httpd_fenced *httpd_fenced_free(struct httpd_fenced *f);
bool httpd_fenced_connected(const struct httpd_fenced *f);
int httpd_fence_device_test(struct httpd_request *r);
int httpd_fence_device_test_row(struct httpd_request *r);
int httpd_fence_agents(struct httpd_request *r);
int httpd_fence_agent(struct httpd_request *r);
int httpd_fence_check(struct httpd_request *r);
int httpd_fencing_status(struct httpd_request *r);
/* Whether node (id, name) can be fenced, from the "fencing" status
 * entries of every node: true when some other node's fencer says so.
 * *ret_reason (borrowed from entries, or static) says why not. Pure. */
bool httpd_fence_node_fenceable(struct json_object *entries, int64_t node_id,
                                const char *name, const char **ret_reason);
/* {"devices": [{"device", "seen_from", "health"}], "nodes": [{"node",
 * "node_id", "fenceable", "reason"}]} from the fencing entries and the
 * node rows (as havenctl fence status). Pure; *ret is new. */
int httpd_fencing_build(struct json_object *entries,
                        struct json_object *node_rows,
                        struct json_object **ret);

/* ==== Dashboard and node samples (httpd-dashboard.c) ==== */

struct httpd_dashboard;

int httpd_dashboard_new(struct httpd *h, struct httpd_dashboard **ret);
struct httpd_dashboard *httpd_dashboard_free(struct httpd_dashboard *d);
/* Something changed (a commit, status or membership event, a new link
 * to haven-domaind): the cached answer is rebuilt. */
void httpd_dashboard_invalidate(struct httpd_dashboard *d);
int httpd_dashboard_get(struct httpd_request *r);
/* How many times the answer was built (tests). */
unsigned httpd_dashboard_builds(const struct httpd_dashboard *d);

/* What the dashboard is built from: haven-domaind's status answer, the
 * rows of nodes, vms, disks, alerts and jobs, and every status entry. */
struct httpd_dashboard_input {
        struct json_object *status;
        struct json_object *nodes, *vms, *disks, *alerts, *jobs;
        struct json_object *entries;
};
/* The dashboard (pure): tiles ha, vms, disks, monitoring, jobs, nodes
 * (docs/api/README.md); now (µs since 1970) dates "recent" failed jobs.
 * *ret is new. */
int httpd_dashboard_build(const struct httpd_dashboard_input *in, uint64_t now,
                          struct json_object **ret);

/* A node's sample: CPU since the previous one, memory, swap, disk. */
struct httpd_sample {
        uint64_t cpu_total, cpu_idle; /* /proc/stat's "cpu" line, ticks */
        double cpu_percent;           /* < 0: no previous sample yet */
        uint64_t mem_total_kib, mem_available_kib;
        uint64_t swap_total_kib, swap_free_kib;
        uint64_t disk_total_kib, disk_free_kib;
};
/* Parses /proc/stat's text: the aggregate "cpu" line. -EBADMSG. */
int httpd_sample_parse_stat(const char *text, uint64_t *ret_total,
                            uint64_t *ret_idle);
/* Parses /proc/meminfo's text: MemTotal, MemAvailable, SwapTotal,
 * SwapFree (kB). -EBADMSG when one is missing. */
int httpd_sample_parse_meminfo(const char *text, struct httpd_sample *s);
/* Reads a sample from proc_dir and statvfs(disk_dir); previous (may be
 * NULL) gives the CPU use since. Returns 0 or a negative errno. */
int httpd_sample_read(const char *proc_dir, const char *disk_dir,
                      const struct httpd_sample *previous,
                      struct httpd_sample *ret);
/* The "node/metrics" status value of a sample: cpu_percent (null for the
 * first), mem/swap/disk used and total in MiB, time. NULL on -ENOMEM. */
struct json_object *httpd_sample_to_json(const struct httpd_sample *s,
                                         uint64_t now);

/* ==== Wizard (httpd-wizard.c) ==== */

struct httpd_wizard;

int httpd_wizard_new(struct httpd *h, struct httpd_wizard **ret);
struct httpd_wizard *httpd_wizard_free(struct httpd_wizard *w);
int httpd_wizard_cluster_create(struct httpd_request *r);
int httpd_wizard_cluster_join(struct httpd_request *r);
int httpd_wizard_network_check(struct httpd_request *r);
/* Re-reads whether this node is in a cluster (on connect, and after
 * commits of the cluster table). */
void httpd_wizard_refresh(struct httpd_wizard *w);

/* What ping said (pure, from its output and exit). */
struct httpd_ping_result {
        bool ok; /* every reply came back */
        unsigned transmitted, received;
        double rtt_avg_ms; /* < 0: unknown */
        unsigned path_mtu; /* > 0: a hop said the frame is too big */
        char message[200];
};
/* Reads ping's summary lines ("3 packets transmitted, 3 received",
 * "rtt min/avg/max/mdev = ..."), and its complaints about frames too
 * large ("message too long, mtu=1400", "Frag needed ... (mtu = 1400)").
 * exit_status is ping's. Never fails: unknown output gives ok false. */
void httpd_ping_parse(const char *output, int exit_status,
                      struct httpd_ping_result *ret);

/* ==== This node's network interfaces (httpd-interfaces.c) ==== */

#define HTTPD_INTERFACES_MAX 256u

struct ifaddrs;

/* This node's network interfaces (pure but for reading files below
 * sysfs_dir): one directory per interface in sysfs_dir (/sys/class/net:
 * address, operstate, carrier, speed, mtu, type, uevent, and the entries
 * device, bonding, bridge, master) with its addresses from addrs
 * (getifaddrs(3)'s list; NULL: none). *ret is new: {"interfaces": [{"name",
 * "mac", "kind" (physical, bond, bridge, vlan, loopback, virtual), "link"
 * (up, down), "operstate", "speed_mbps", "mtu", "master", "addresses":
 * [{"address", "prefix", "family"}]}]}, sorted by name; a value that cannot
 * be read (or makes no sense) is null. Names that are not printable ASCII
 * are skipped. Returns 0, -ENOENT/-ENOTDIR for a missing sysfs_dir, -E2BIG
 * beyond HTTPD_INTERFACES_MAX interfaces, -ENOMEM. */
int httpd_interfaces_build(const char *sysfs_dir, const struct ifaddrs *addrs,
                           struct json_object **ret);
/* GET /api/v1/wizard/interfaces: the above for /sys/class/net and
 * getifaddrs(), with "hostname". No program is run. */
int httpd_wizard_interfaces(struct httpd_request *r);

/* ==== Configuration backup (httpd-backup.c) ==== */

/* The tables a backup holds: the configuration an administrator made
 * (not the history: audit, jobs, requests, commands, alerts, placements),
 * NULL-terminated. */
extern const char *const httpd_backup_tables[];
/* GET /api/v1/backup: haven-domaind's snapshot of those tables, consistent
 * (one read), as a file download (Content-Disposition: attachment). It
 * holds the administrators' password hashes and the mail relay's password:
 * what a restore needs. Logged with who took it. */
int httpd_backup_get(struct httpd_request *r);

/* ==== Several rows at once (httpd-batch.c) ==== */

#define HTTPD_BATCH_ITEMS_MAX 32u

/* POST /api/v1/batch: rows added ({"resource", "values"}) and changed
 * ({"resource", "id", "version", "values"}) as one transaction, or one
 * staged change unless ?now=1. Each item is checked against its route's
 * policy and its resource's check, as if posted alone; a row id field may be
 * {"ref": N}: the id item N (an addition before it) gets. Errors name
 * "items/N/FIELD" (also the domain's refusals of an applied batch). */
int httpd_batch(struct httpd_request *r);

/* ==== Console (httpd-console.c) ==== */

struct httpd_console;

int httpd_console_new(struct httpd *h, struct httpd_console **ret);
/* Closes every console. NULL ok. */
struct httpd_console *httpd_console_free(struct httpd_console *c);
size_t httpd_console_sessions(const struct httpd_console *c);
/* GET /api/v1/vms/{id}/console: a WebSocket (binary frames) carrying the
 * VM's VNC stream, from whichever node runs it. */
int httpd_console_open(struct httpd_request *r);
/* GET /api/v1/vms/{id}/console/splice (node-to-node): the raw VNC stream
 * of a VM this node runs, after an upgrade to "haven-vnc". */
int httpd_console_splice(struct httpd_request *r);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455) into buf (29
 * bytes). -EINVAL for a key that is not 16 bytes in base64. */
int httpd_websocket_accept(const char *key, char buf[29]);
/* The node-to-node key from corosync's authkey (HMAC-SHA256 of a fixed
 * label under it). Returns 0, -ENOENT, or another negative errno. */
int httpd_peer_key_load(const char *authkey_path,
                        uint8_t ret[HTTPD_PEER_KEY_SIZE]);

/* ==== Routes (httpd-api.c) ==== */

/* The route table, in matching order. */
const struct httpd_route *httpd_api_routes(size_t *ret_n);
int httpd_api_status(struct httpd_request *r);
