/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The setup wizard's endpoints: create a cluster on this node or join an
 * existing one (haven-domaind's cluster-create and cluster-join; the
 * dispatcher lets them through without a session only while this node is
 * in no cluster), and network checks ("does a frame of this MTU pass to
 * that address": ping with the don't-fragment bit, run through
 * haven_exec, its output read by a pure parser). Also keeps the answer
 * to "is this node in a cluster" that the dispatcher uses. Must not: run
 * a shell, or let a check run unbounded (a timeout, and at most
 * CHECKS_MAX at once).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>

#include "haven/exec.h"
#include "haven/log.h"
#include "httpd.h"

#define PING "/usr/bin/ping"
#define PING_COUNT "3"
#define CHECK_TIMEOUT_USEC (15ull * 1000000ull)
#define CHECKS_MAX 4u
/* IPv4 and ICMP headers; IPv6 and ICMPv6 headers. */
#define IPV4_OVERHEAD 28
#define IPV6_OVERHEAD 48

struct httpd_wizard {
        struct httpd *httpd;
        bool refreshing, again;
        uint64_t call;
        unsigned checks;
};

/* ==== Is this node in a cluster? ==== */

static void refresh_start(struct httpd_wizard *w);

static void on_cluster_rows(struct json_object *reply,
                            const struct httpd_error *error, void *userdata) {
        struct httpd_wizard *w = userdata;
        struct json_object *rows = httpd_reply_rows(reply);

        w->call = 0;
        w->refreshing = false;
        if (error || !rows)
                /* Unknown stays unknown; the next connect asks again. */
                log_debug("Whether this node is in a cluster: no answer");
        else
                httpd_set_cluster_state(w->httpd, httpd_array_length(rows) > 0
                                                          ? HTTPD_CLUSTER_MEMBER
                                                          : HTTPD_CLUSTER_NONE);
        if (w->again && !error) {
                w->again = false;
                refresh_start(w);
        }
}

static void on_status(struct json_object *reply,
                      const struct httpd_error *error, void *userdata) {
        struct httpd_wizard *w = userdata;
        int64_t node_id = 0;
        int r;

        w->call = 0;
        if (error) {
                w->refreshing = false;
                return;
        }
        if (haven_json_get_int64(reply, "node_id", &node_id) >= 0)
                httpd_set_node_id(w->httpd, node_id);
        r = httpd_domain_call_background(httpd_domain(w->httpd),
                                         httpd_query_new("cluster", NULL),
                                         on_cluster_rows, w, &w->call);
        if (r < 0)
                w->refreshing = false;
}

static void refresh_start(struct httpd_wizard *w) {
        int r;

        r = httpd_domain_call_background(httpd_domain(w->httpd),
                                         httpd_msg_new("status"), on_status, w,
                                         &w->call);
        w->refreshing = r >= 0;
}

void httpd_wizard_refresh(struct httpd_wizard *w) {
        if (!w)
                return;
        if (w->refreshing) {
                w->again = true;
                return;
        }
        refresh_start(w);
}

/* ==== Creating and joining ==== */

static void on_clustered(struct httpd_request *r, struct json_object *reply,
                         const struct httpd_error *error) {
        struct httpd_wizard *w = httpd_wizard(httpd_request_server(r));

        httpd_wizard_refresh(w);
        if (error) {
                struct httpd_error e = *error;

                /* A join's refusals, said at the field the person fixes:
                 * the member refused the password, or never answered at
                 * the address given. */
                if (!e.field[0] && streq(e.peer_code, "denied"))
                        snprintf(e.field, sizeof e.field, "password");
                else if (!e.field[0] && streq(e.peer_code, "unreachable"))
                        snprintf(e.field, sizeof e.field, "address");
                httpd_reply_error(r, &e);
                return;
        }
        log_info("This node is in cluster %s now (%s)",
                 json_object_to_json_string_ext(
                         json_object_object_get(reply, "cluster"),
                         JSON_C_TO_STRING_PLAIN),
                 httpd_request_match(r)->route->pattern);
        httpd_reply_json(
                r,
                strstr(httpd_request_match(r)->route->pattern, "create") ? 201
                                                                         : 200,
                httpd_reply_copy(reply));
}

/* The body's fields as the request's (they are the same names). */
static int cluster_request(struct httpd_request *r, const char *name) {
        _cleanup_(json_object_putp) struct json_object *req =
                httpd_msg_new(name);

        if (!req)
                return -ENOMEM;
        json_object_object_foreach(
                httpd_request_body(r), key,
                value) if (haven_json_add(req, key, json_object_get(value)) <
                           0) return -ENOMEM;
        return httpd_domain_call_timeout(
                r, TAKE_PTR(req), HTTPD_CLUSTER_TIMEOUT_USEC, on_clustered);
}

int httpd_wizard_cluster_create(struct httpd_request *r) {
        return cluster_request(r, "cluster-create");
}

int httpd_wizard_cluster_join(struct httpd_request *r) {
        return cluster_request(r, "cluster-join");
}

/* ==== Network checks ==== */

/* The number after text in s, or -1. */
static long number_after(const char *s, const char *text) {
        const char *p = strstr(s, text);
        char *end;
        long v;

        if (!p)
                return -1;
        p += strlen(text);
        p += strspn(p, " =");
        errno = 0;
        v = strtol(p, &end, 10);
        if (errno || end == p || v < 0)
                return -1;
        return v;
}

/* The number right before text in s ("3 received"), or -1. */
static long number_before(const char *s, const char *text) {
        const char *p = strstr(s, text), *start;

        if (!p)
                return -1;
        while (p > s && p[-1] == ' ')
                p--;
        start = p;
        while (start > s && start[-1] >= '0' && start[-1] <= '9')
                start--;
        if (start == p || p - start > 9)
                return -1;
        return strtol(start, NULL, 10);
}

void httpd_ping_parse(const char *output, int exit_status,
                      struct httpd_ping_result *ret) {
        const char *rtt;
        long transmitted, received, mtu;
        double min, avg;

        *ret = (struct httpd_ping_result){.rtt_avg_ms = -1};
        if (!output)
                output = "";
        transmitted = number_before(output, " packets transmitted");
        received = number_before(output, " received");
        if (transmitted >= 0)
                ret->transmitted = (unsigned) transmitted;
        if (received >= 0)
                ret->received = (unsigned) received;
        rtt = strstr(output, "min/avg/max");
        if (rtt && (rtt = strchr(rtt, '=')) &&
            sscanf(rtt + 1, " %lf/%lf", &min, &avg) == 2 && avg >= 0)
                ret->rtt_avg_ms = avg;
        mtu = number_after(output, "mtu=");
        if (mtu < 0)
                mtu = number_after(output, "(mtu");
        if (mtu > 0 && mtu < 65536)
                ret->path_mtu = (unsigned) mtu;
        ret->ok = exit_status == 0 && transmitted > 0 &&
                  received == transmitted && ret->path_mtu == 0;
        if (ret->ok)
                snprintf(ret->message, sizeof ret->message,
                         "every frame came back");
        else if (ret->path_mtu > 0)
                snprintf(ret->message, sizeof ret->message,
                         "the frame is too large: the path takes at most %u "
                         "bytes",
                         ret->path_mtu);
        else if (transmitted > 0)
                snprintf(ret->message, sizeof ret->message,
                         "%ld of %ld frames came back",
                         received < 0 ? 0 : received, transmitted);
        else {
                /* ping's own complaint, first line, without "ping: ". */
                const char *p = strstr(output, "ping: ");
                size_t n;

                p = p ? p + 6 : output;
                n = strcspn(p, "\n");
                if (n == 0)
                        snprintf(ret->message, sizeof ret->message,
                                 "ping failed (exit status %d)", exit_status);
                else
                        snprintf(ret->message, sizeof ret->message, "%.*s",
                                 (int) (n < 190 ? n : 190), p);
        }
}

struct check {
        struct httpd_wizard *wizard;
        struct httpd_request *request;
        struct haven_exec *exec;
        char address[64];
        int64_t mtu;
};

static void check_free(struct check *c) {
        if (!c)
                return;
        c->wizard->checks--;
        haven_exec_free(c->exec); /* kills a ping still running */
        free(c);
}

static void check_cancel(void *userdata) {
        check_free(userdata);
}

static void on_ping_done(struct haven_exec *x,
                         const struct haven_exec_result *result,
                         void *userdata) {
        struct check *c = userdata;
        struct httpd_request *r = c->request;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        _cleanup_free_ char *output = NULL;
        struct httpd_ping_result p;
        int status = result->code == CLD_EXITED ? result->status : -1;

        if (asprintf(&output, "%s\n%s",
                     result->stdout_data ? result->stdout_data : "",
                     result->stderr_data ? result->stderr_data : "") < 0)
                output = NULL;
        httpd_ping_parse(output, result->timed_out ? -1 : status, &p);
        if (result->timed_out)
                snprintf(p.message, sizeof p.message,
                         "ping did not finish in time");
        o = json_object_new_object();
        if (o &&
            (haven_json_add(o, "address", json_object_new_string(c->address)) <
                     0 ||
             haven_json_add(o, "mtu", json_object_new_int64(c->mtu)) < 0 ||
             haven_json_add(o, "ok", json_object_new_boolean(p.ok)) < 0 ||
             haven_json_add(o, "transmitted",
                            json_object_new_int64(p.transmitted)) < 0 ||
             haven_json_add(o, "received", json_object_new_int64(p.received)) <
                     0 ||
             haven_json_add(o, "rtt_avg_ms",
                            p.rtt_avg_ms < 0 ? NULL
                                             : json_object_new_double(
                                                       p.rtt_avg_ms)) < 0 ||
             haven_json_add(o, "path_mtu",
                            p.path_mtu ? json_object_new_int64(p.path_mtu)
                                       : NULL) < 0 ||
             haven_json_add(o, "message", json_object_new_string(p.message)) <
                     0)) {
                json_object_put(o);
                o = NULL;
        }
        /* Freed from its own callback, the exec goes once this returns. */
        httpd_request_forget(r);
        check_free(c);
        if (!o)
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
        else
                httpd_reply_json(r, 200, TAKE_PTR(o));
}

int httpd_wizard_network_check(struct httpd_request *r) {
        struct httpd_wizard *w = httpd_wizard(httpd_request_server(r));
        struct json_object *body = httpd_request_body(r);
        unsigned char buf[sizeof(struct in6_addr)];
        const char *address = NULL;
        char size[24];
        int64_t mtu = 0;
        bool v6;
        struct check *c;
        int ret;

        (void) haven_json_get_string(body, "address", &address);
        (void) haven_json_get_int64(body, "mtu", &mtu);
        assert(address);
        v6 = strchr(address, ':') != NULL;
        if (inet_pton(v6 ? AF_INET6 : AF_INET, address, buf) != 1) {
                httpd_reply_code(r, HTTPD_ERROR_INVALID, "address",
                                 "\"address\" must be an IPv4 or IPv6 "
                                 "address");
                return 0;
        }
        if (w->checks >= CHECKS_MAX) {
                struct httpd_error e;

                httpd_error_set(&e, HTTPD_ERROR_THROTTLED, NULL,
                                "too many network checks at once on this "
                                "node");
                e.retry_after_sec = 3;
                httpd_reply_error(r, &e);
                return 0;
        }
        snprintf(size, sizeof size, "%" PRIi64,
                 mtu - (v6 ? IPV6_OVERHEAD : IPV4_OVERHEAD));
        char *const argv[] = {
                (char *) PING,
                (char *) (v6 ? "-6" : "-4"),
                (char *) "-n",
                (char *) "-M",
                (char *) "do",
                (char *) "-s",
                size,
                (char *) "-c",
                (char *) PING_COUNT,
                (char *) "-W",
                (char *) "1",
                (char *) address,
                NULL,
        };

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (struct check){.wizard = w, .request = r, .mtu = mtu};
        snprintf(c->address, sizeof c->address, "%s", address);
        w->checks++;
        ret = haven_exec_start(httpd_event(httpd_request_server(r)), argv,
                               &(struct haven_exec_options){
                                       .timeout_usec = CHECK_TIMEOUT_USEC,
                                       .max_output = 16384,
                               },
                               on_ping_done, c, &c->exec);
        if (ret < 0) {
                check_free(c);
                return ret;
        }
        httpd_request_hold(r, check_cancel, c);
        return 0;
}

/* ==== Setup ==== */

int httpd_wizard_new(struct httpd *h, struct httpd_wizard **ret) {
        struct httpd_wizard *w = calloc(1, sizeof *w);

        if (!w)
                return -ENOMEM;
        w->httpd = h;
        *ret = w;
        return 0;
}

struct httpd_wizard *httpd_wizard_free(struct httpd_wizard *w) {
        if (!w)
                return NULL;
        httpd_domain_cancel(httpd_domain(w->httpd), w->call);
        free(w);
        return NULL;
}
