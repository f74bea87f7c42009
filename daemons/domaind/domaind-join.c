/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Joining a cluster. The member side answers "join" on the peer port (TLS
 * over the interconnect): it checks the administrator's password and the
 * clocks, adds the new node (standby) with a domain transaction, and hands
 * back the corosync configuration and key. The joining side runs the request
 * in a child (`haven-domaind --join-fetch`, so the loop never blocks), writes
 * what it got, starts corosync, and answers its client once the domain has
 * synced with this node in it. Must not: hand out the key before the
 * password was checked and the node was added.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <nettle/base16.h>

#include "domaind.h"
#include "haven/db.h"
#include "haven/exec.h"
#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"
#include "haven/peer.h"

#define JOIN_TIME_SKEW_MAX_USEC (30 * 1000 * 1000LL)
#define JOIN_DENIED_DELAY_USEC (1000 * 1000ULL)
#define JOIN_FETCH_TIMEOUT_USEC (30 * 1000 * 1000ULL)
#define JOIN_SYNC_TIMEOUT_USEC (60 * 1000 * 1000ULL)
#define AUTHKEY_MAX 1024

/* ==== The key travels as base16 (nettle) ==== */

static char *hex_encode(const uint8_t *data, size_t size) {
        char *s = malloc(BASE16_ENCODE_LENGTH(size) + 1);

        if (!s)
                return NULL;
        base16_encode_update(s, size, data);
        s[BASE16_ENCODE_LENGTH(size)] = '\0';
        return s;
}

static int hex_decode(const char *s, uint8_t *buf, size_t max, size_t *ret_size) {
        struct base16_decode_ctx ctx;
        size_t n = strlen(s), size = max;

        if (BASE16_DECODE_LENGTH(n) > max)
                return -EINVAL;
        base16_decode_init(&ctx);
        if (!base16_decode_update(&ctx, &size, buf, n, s) || !base16_decode_final(&ctx))
                return -EINVAL;
        *ret_size = size;
        return 0;
}

/* ==== Member side ==== */

struct join_request {
        struct haven_peer_conn *conn;
        char node_name[64];
        uint32_t node_id;
        sd_event_source *delay;
        struct json_object *error_reply; /* sent after the delay */
};

static void join_request_free(struct join_request *j) {
        if (!j)
                return;
        j->delay = sd_event_source_disable_unref(j->delay);
        haven_peer_conn_unref(j->conn);
        json_object_put(j->error_reply);
        free(j);
}

static int on_denied_delay(sd_event_source *s, uint64_t usec, void *userdata) {
        struct join_request *j = userdata;

        (void) haven_peer_conn_send(j->conn, j->error_reply);
        haven_peer_conn_close(j->conn);
        join_request_free(j);
        return 0;
}

static void reply_error(struct domain *d, struct haven_peer_conn *conn, const char *code,
                        const char *message, const char *field, bool delayed) {
        struct json_object *o = api_error_new(NULL, code, message, field);
        struct join_request *j;

        if (!delayed) {
                (void) haven_peer_conn_send(conn, o);
                json_object_put(o);
                return;
        }
        /* A wrong password is answered a second later: guessing is slow. */
        j = calloc(1, sizeof *j);
        if (!j) {
                json_object_put(o);
                return;
        }
        j->conn = haven_peer_conn_ref(conn);
        j->error_reply = o;
        if (sd_event_add_time_relative(d->event, &j->delay, CLOCK_MONOTONIC,
                                       JOIN_DENIED_DELAY_USEC, 0, on_denied_delay, j) < 0) {
                (void) haven_peer_conn_send(conn, o);
                join_request_free(j);
        }
}

static void on_join_applied(struct domain *d, struct pending *p, struct json_object *result,
                            const struct store_error *error) {
        struct join_request *j = p->userdata;
        _cleanup_free_ char *conf = NULL, *key_hex = NULL, *key_path = NULL;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        uint8_t key[AUTHKEY_MAX];
        char name[64];
        size_t key_size = 0;
        FILE *f;
        int r;

        if (error) {
                reply_error(d, j->conn, error->code, error->message, error->field, false);
                goto out;
        }
        r = cluster_current_conf(d, &conf);
        if (asprintf(&key_path, "%s/authkey", d->corosync_dir) < 0)
                r = -ENOMEM;
        if (r >= 0) {
                f = fopen(key_path, "re");
                if (f) {
                        key_size = fread(key, 1, sizeof key, f);
                        fclose(f);
                }
                if (key_size == 0)
                        r = -EIO;
        }
        if (r >= 0)
                key_hex = hex_encode(key, key_size);
        explicit_bzero(key, sizeof key);
        if (r < 0 || !key_hex) {
                reply_error(d, j->conn, "internal",
                            "the node was added, but this member cannot read corosync's configuration",
                            NULL, false);
                goto out;
        }
        (void) cluster_exists_here(d, name, sizeof name);
        o = json_object_new_object();
        haven_json_add(o, "cluster", json_object_new_string(name));
        haven_json_add(o, "node_id", json_object_new_int64(j->node_id));
        haven_json_add(o, "corosync_conf", json_object_new_string(conf));
        haven_json_add(o, "authkey", json_object_new_string(key_hex));
        explicit_bzero(key_hex, strlen(key_hex));
        (void) haven_peer_conn_send(j->conn, o);
        log_info("Node \"%s\" joined the cluster as node %u (standby)", j->node_name, j->node_id);
out:
        haven_peer_conn_close(j->conn);
        join_request_free(j);
}

static int on_peer_request(struct haven_peer_conn *conn, struct json_object *req, void *userdata) {
        static const struct haven_json_field policy[] = {
                { .name = "request", .kind = HAVEN_JSON_STRING, .required = true },
                { .name = "admin", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 63 },
                { .name = "password", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 256 },
                { .name = "node_name", .kind = HAVEN_JSON_STRING, .required = true, .min = 1, .max = 63 },
                { .name = "address", .kind = HAVEN_JSON_STRING, .required = true, .min = 2, .max = 45 },
                { .name = "memory_mib", .kind = HAVEN_JSON_INT, .min = 0, .max = INT64_MAX },
                { .name = "time", .kind = HAVEN_JSON_INT, .required = true, .min = 0, .max = INT64_MAX },
        };
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        struct domain *d = userdata;
        struct haven_json_error error;
        const char *request, *admin, *password, *node_name, *address, *reason, *hash = NULL;
        int64_t memory_mib = 0, their_time, skew, node_id = 1;
        struct json_object *ops, *op, *values, *addresses;
        struct join_request *j;
        struct pending *p;
        char message[256], audit[128];
        bool ok;
        int r;

        r = haven_json_check(req, policy, ELEMENTSOF(policy), &error);
        if (r < 0) {
                reply_error(d, conn, "invalid", error.message, error.field, false);
                return 0;
        }
        (void) haven_json_get_string(req, "request", &request);
        if (!streq(request, "join")) {
                reply_error(d, conn, "invalid", "unknown request", "request", false);
                return 0;
        }
        (void) haven_json_get_string(req, "admin", &admin);
        (void) haven_json_get_string(req, "password", &password);
        (void) haven_json_get_string(req, "node_name", &node_name);
        (void) haven_json_get_string(req, "address", &address);
        (void) haven_json_get_int64(req, "memory_mib", &memory_mib);
        (void) haven_json_get_int64(req, "time", &their_time);

        if (!d->is_node || !domain_is_writable(d, &reason)) {
                reply_error(d, conn, "no-quorum", d->is_node ? reason
                            : "this node is not a member of a cluster", NULL, false);
                return 0;
        }
        if (sqlite3_prepare_v2(store_db(d->store),
                               "SELECT password_hash FROM administrators WHERE name = ?", -1, &st,
                               NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, admin, -1, SQLITE_STATIC);
                if (sqlite3_step(st) == SQLITE_ROW)
                        hash = (const char *) sqlite3_column_text(st, 0);
        }
        /* Unknown name and wrong password look the same from outside. */
        ok = cluster_check_password(password, hash ? hash : "$y$j9T$invalidsaltinvalid$invalid");
        if (!hash || !ok) {
                log_warning("Join request from %s refused: wrong administrator name or password",
                            haven_peer_conn_remote_address(conn));
                reply_error(d, conn, "denied", "wrong administrator name or password", "password", true);
                return 0;
        }
        sqlite3_finalize(TAKE_PTR(st));

        skew = their_time - (int64_t) domain_now_realtime_usec();
        if (skew > JOIN_TIME_SKEW_MAX_USEC || skew < -JOIN_TIME_SKEW_MAX_USEC) {
                snprintf(message, sizeof message,
                         "the clocks of \"%s\" and \"%s\" differ by %" PRId64 " s (at most %lld s "
                         "are allowed): set the time on the new node (NTP) and join again",
                         node_name, d->node_name, (skew < 0 ? -skew : skew) / 1000000,
                         JOIN_TIME_SKEW_MAX_USEC / 1000000);
                reply_error(d, conn, "time-skew", message, NULL, false);
                return 0;
        }
        if (sqlite3_prepare_v2(store_db(d->store),
                               "SELECT (SELECT COUNT(*) FROM nodes WHERE name = ?1), "
                               "COALESCE(MAX(node_id), 0) + 1 FROM nodes", -1, &st, NULL) != SQLITE_OK ||
            (sqlite3_bind_text(st, 1, node_name, -1, SQLITE_STATIC), sqlite3_step(st)) != SQLITE_ROW) {
                reply_error(d, conn, "internal", "cannot read the nodes", NULL, false);
                return 0;
        }
        if (sqlite3_column_int64(st, 0) > 0) {
                snprintf(message, sizeof message,
                         "the cluster already has a node named \"%s\"; remove it first or rename "
                         "the new node", node_name);
                reply_error(d, conn, "invalid", message, "node_name", false);
                return 0;
        }
        node_id = sqlite3_column_int64(st, 1);

        ops = json_object_new_array();
        op = json_object_new_object();
        values = json_object_new_object();
        addresses = json_object_new_array();
        json_object_array_add(addresses, json_object_new_string(address));
        haven_json_add(values, "node_id", json_object_new_int64(node_id));
        haven_json_add(values, "name", json_object_new_string(node_name));
        haven_json_add(values, "addresses", addresses);
        haven_json_add(values, "state", json_object_new_string("standby"));
        haven_json_add(values, "memory_mib", json_object_new_int64(memory_mib));
        haven_json_add(op, "op", json_object_new_string("insert"));
        haven_json_add(op, "table", json_object_new_string("nodes"));
        haven_json_add(op, "values", values);
        json_object_array_add(ops, op);

        j = calloc(1, sizeof *j);
        if (!j) {
                json_object_put(ops);
                return -ENOMEM;
        }
        j->conn = haven_peer_conn_ref(conn);
        j->node_id = (uint32_t) node_id;
        snprintf(j->node_name, sizeof j->node_name, "%s", node_name);
        snprintf(audit, sizeof audit, "node \"%s\" joined (%s)", node_name, address);
        p = api_pending_new(d, NULL, NULL, ops, admin, audit);
        json_object_put(ops);
        if (!p) {
                join_request_free(j);
                return -ENOMEM;
        }
        p->done = on_join_applied;
        p->userdata = j;
        return api_submit_flush(d);
}

int join_open(struct domain *d) {
        _cleanup_free_ char *dir = NULL;
        struct haven_peer_server_config config = {
                .port = d->peer_port,
                .max_size = 1024 * 1024,
                .max_connections = 16,
                .handler = on_peer_request,
                .userdata = d,
        };
        char *slash;
        int r;

        dir = strdup(d->db_path);
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash)
                *slash = '\0';
        r = haven_peer_credentials_load_or_create(dir, &d->peer_credentials);
        if (r < 0)
                return log_error_errno(r, "Failed to load or create this node's TLS certificate in \"%s\": %m", dir);
        config.credentials = d->peer_credentials;
        r = haven_peer_server_new(d->event, &config, &d->peer_server);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on the peer port %u: %m", d->peer_port);
        return 0;
}

void join_close(struct domain *d) {
        d->peer_server = haven_peer_server_free(d->peer_server);
        d->peer_credentials = haven_peer_credentials_free(d->peer_credentials);
        join_waiter_finish(d, "internal", "haven-domaind is shutting down");
}

/* ==== Joining side ==== */

/* Answers the client that asked to join: error (code != NULL) or success. */
void join_waiter_finish(struct domain *d, const char *code, const char *message) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;

        if (!d->join_conn)
                return;
        if (code)
                o = api_error_new(d->join_tag, code, message, NULL);
        else {
                o = api_reply_new(d->join_tag);
                cluster_identity_add(d, o);
        }
        (void) haven_msg_conn_send(d->join_conn, o);
        d->join_conn = haven_msg_conn_unref(d->join_conn);
        json_object_put(d->join_tag);
        d->join_tag = NULL;
        d->join_fetching = false;
}

/* Called after every sync and commit: the join is complete once this node
 * is in the domain's nodes table; it fails at the deadline. */
void join_check_progress(struct domain *d) {
        if (!d->join_conn || d->join_fetching)
                return;
        if (d->is_node)
                join_waiter_finish(d, NULL, NULL);
        else if (haven_now_usec(CLOCK_MONOTONIC) > d->join_deadline_usec)
                join_waiter_finish(d, "internal",
                                   "corosync was started, but this node did not receive the "
                                   "configuration within 60 s: check the interconnect");
}

static void on_fetch_done(struct haven_exec *x, const struct haven_exec_result *result,
                          void *userdata) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct domain *d = userdata;
        struct json_object *err;
        const char *conf, *key_hex;
        uint8_t key[AUTHKEY_MAX];
        size_t key_size;
        int r;

        d->join_fetching = false;
        if (!result->stdout_data || !*result->stdout_data ||
            haven_json_parse(result->stdout_data, result->stdout_size, 1024 * 1024, &reply) < 0 ||
            !json_object_is_type(reply, json_type_object)) {
                char message[256];
                snprintf(message, sizeof message, "could not reach the member: %s",
                         result->timed_out ? "no answer in time"
                         : result->stderr_data && *result->stderr_data ? result->stderr_data
                         : "no answer");
                message[strcspn(message, "\n")] = '\0';
                join_waiter_finish(d, "unreachable", message);
                return;
        }
        if (json_object_object_get_ex(reply, "error", &err)) {
                const char *code = "denied", *message = "the member refused the join";
                (void) haven_json_get_string(err, "code", &code);
                (void) haven_json_get_string(err, "message", &message);
                join_waiter_finish(d, code, message);
                return;
        }
        if (haven_json_get_string(reply, "corosync_conf", &conf) < 0 ||
            haven_json_get_string(reply, "authkey", &key_hex) < 0 ||
            hex_decode(key_hex, key, sizeof key, &key_size) < 0 || key_size == 0) {
                join_waiter_finish(d, "internal", "the member's answer is incomplete");
                return;
        }
        r = cluster_write_authkey(d, key, key_size);
        explicit_bzero(key, sizeof key);
        if (r >= 0)
                r = cluster_write_conf(d, conf);
        if (r >= 0)
                r = cluster_start_corosync(d);
        if (r < 0) {
                join_waiter_finish(d, "internal", "cannot write or start corosync on this node");
                return;
        }
        log_info("Joined: corosync started, waiting for the configuration domain");
        d->join_deadline_usec = haven_now_usec(CLOCK_MONOTONIC) + JOIN_SYNC_TIMEOUT_USEC;
        (void) cpg_schedule_reconnect(d);
}

int join_start(struct domain *d, struct haven_msg_conn *conn, struct json_object *tag,
               const char *address, const char *admin, const char *password,
               const char *own_address, struct store_error *ret_error) {
        _cleanup_(json_object_putp) struct json_object *input = json_object_new_object();
        char existing[64], self_address[64], exe[4096];
        struct haven_exec_options options = { .timeout_usec = JOIN_FETCH_TIMEOUT_USEC };
        const char *text;
        ssize_t n;
        int r;

        if (d->join_conn) {
                snprintf(ret_error->code, sizeof ret_error->code, "invalid");
                snprintf(ret_error->message, sizeof ret_error->message, "a join is already running");
                return -EBUSY;
        }
        if (cluster_exists_here(d, existing, sizeof existing) || d->cpg_connected) {
                snprintf(ret_error->code, sizeof ret_error->code, "invalid");
                snprintf(ret_error->message, sizeof ret_error->message,
                         "this node is already part of the cluster \"%s\"", existing);
                return -EEXIST;
        }
        if (own_address)
                snprintf(self_address, sizeof self_address, "%s", own_address);
        else if (cluster_default_address(self_address, sizeof self_address) < 0) {
                snprintf(ret_error->code, sizeof ret_error->code, "invalid");
                snprintf(ret_error->field, sizeof ret_error->field, "own_address");
                snprintf(ret_error->message, sizeof ret_error->message,
                         "this node has no interconnect address");
                return -EINVAL;
        }
        n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n < 0)
                return -errno;
        exe[n] = '\0';

        haven_json_add(input, "admin", json_object_new_string(admin));
        haven_json_add(input, "password", json_object_new_string(password));
        haven_json_add(input, "node_name", json_object_new_string(d->node_name));
        haven_json_add(input, "address", json_object_new_string(self_address));
        haven_json_add(input, "memory_mib", json_object_new_int64(cluster_memory_mib()));
        text = json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN);
        options.stdin_data = text;
        options.stdin_size = strlen(text);

        char port[16];
        snprintf(port, sizeof port, "%u", d->peer_port);
        char *argv[] = { exe, (char *) "--join-fetch", (char *) address, (char *) "--peer-port",
                         port, NULL };
        r = haven_exec_start(d->event, argv, &options, on_fetch_done, d, NULL);
        if (r < 0) {
                snprintf(ret_error->code, sizeof ret_error->code, "internal");
                snprintf(ret_error->message, sizeof ret_error->message,
                         "cannot start the join: %s", strerror(-r));
                return r;
        }
        d->join_fetching = true;
        d->join_conn = haven_msg_conn_ref(conn);
        d->join_tag = json_object_get(tag);
        log_info("Joining the cluster through %s", address);
        return 0;
}

/* `haven-domaind --join-fetch HOST [--peer-port N]`: reads {admin, password,
 * node_name, address, memory_mib} on stdin, asks HOST to let this node join,
 * prints the member's answer (JSON) on stdout. Exit 0 if an answer came. */
int join_fetch_main(const char *host, uint16_t port) {
        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c = NULL;
        _cleanup_(json_object_putp) struct json_object *req = NULL, *reply = NULL;
        _cleanup_free_ char *input = NULL;
        size_t size = 0;
        char fingerprint[HAVEN_PEER_FINGERPRINT_SIZE] = "";
        FILE *f;
        int r;

        f = open_memstream(&input, &size);
        if (!f)
                return 1;
        for (int ch; (ch = getchar()) != EOF && size < 64 * 1024;)
                fputc(ch, f);
        fclose(f);
        r = haven_json_parse(input, size, 64 * 1024, &req);
        if (r < 0 || !json_object_is_type(req, json_type_object)) {
                fprintf(stderr, "bad input\n");
                return 1;
        }
        haven_json_add(req, "request", json_object_new_string("join"));
        haven_json_add(req, "time", json_object_new_int64((int64_t) domain_now_realtime_usec()));
        /* First contact: nothing to pin yet; the fingerprint is logged. */
        r = haven_peer_client_connect(host, port, NULL, 10 * 1000 * 1000ULL, &c);
        if (r < 0) {
                fprintf(stderr, "cannot connect to %s port %u: %s\n", host, port, strerror(-r));
                return 1;
        }
        haven_peer_client_fingerprint(c, fingerprint);
        r = haven_peer_client_call(c, req, 20 * 1000 * 1000ULL, &reply);
        if (r < 0) {
                fprintf(stderr, "no answer from %s: %s\n", host, strerror(-r));
                return 1;
        }
        fprintf(stderr, "member certificate %s\n", fingerprint);
        printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
        return 0;
}
