/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-httpd's one link to haven-domaind (docs/domain.md, "Local socket
 * API"): calls made for requests, answered asynchronously (a domaind error
 * answer arrives as an httpd_error), calls of the server's own (the
 * dashboard, the node's samples, the cluster state), and the one
 * subscription whose events feed every event stream and tell the
 * dashboard and the wizard what changed. Must not: write anything but
 * what a handler asked for, or keep a request alive past its end.
 */
#include "haven/log.h"
#include "haven/msg.h"
#include "httpd.h"

#define SUBSCRIBE_TIMEOUT_USEC (10ull * 1000000ull)
#define SUBSCRIBE_RETRY_USEC (1ull * 1000000ull)

static const char *const subscribed_events[] = {"commit", "status", "job-log",
                                                "membership"};

struct background_call {
        struct httpd_domain *domain;
        struct background_call *prev, *next;
        httpd_domain_done_t done;
        void *userdata;
        uint64_t id;
};

struct httpd_domain {
        struct httpd *httpd;
        struct haven_msg_link *link;
        char *path;
        bool subscribed;      /* the current connection's subscription is on */
        bool ever_subscribed; /* events may have been missed since */
        uint64_t subscribe_call;
        sd_event_source *retry;
        struct background_call *background;
};

struct domain_call {
        struct haven_msg_link *link;
        const char *peer; /* "haven-domaind", for messages */
        struct httpd_request *request;
        httpd_domain_reply_t done;
        uint64_t id;
};

/* ==== Calls for requests ==== */

static void call_cancel(void *userdata) {
        struct domain_call *c = userdata;

        haven_msg_link_cancel(c->link, c->id);
        free(c);
}

/* A failed call (error < 0) as an API error naming whom we called. */
static void link_error(const char *peer, int error, struct httpd_error *ret) {
        httpd_error_from_errno(error, ret);
        if (ret->code != HTTPD_ERROR_UNAVAILABLE)
                return;
        if (error == -ETIMEDOUT)
                snprintf(ret->message, sizeof ret->message,
                         "%s did not answer in time", peer);
        else
                snprintf(ret->message, sizeof ret->message,
                         "%s is not reachable on this node", peer);
}

static void on_call_reply(struct haven_msg_link *link, int error,
                          struct json_object *reply, void *userdata) {
        struct domain_call *c = userdata;
        struct httpd_request *r = c->request;
        httpd_domain_reply_t done = c->done;
        const char *peer = c->peer;
        struct json_object *e;
        struct httpd_error err;

        httpd_request_forget(r);
        free(c);
        if (error < 0) {
                link_error(peer, error, &err);
                done(r, NULL, &err);
        } else if (json_object_object_get_ex(reply, "error", &e)) {
                httpd_error_from_domaind(e, &err);
                done(r, NULL, &err);
        } else
                done(r, reply, NULL);
}

int httpd_link_call(struct haven_msg_link *link, const char *peer,
                    struct httpd_request *r, struct json_object *request,
                    uint64_t timeout_usec, httpd_domain_reply_t done) {
        _cleanup_(json_object_putp) struct json_object *owned = request;
        struct domain_call *c;
        int ret;

        assert(done);
        if (!owned)
                return -ENOMEM;
        if (!link || !haven_msg_link_connected(link)) {
                struct httpd_error e;

                /* Said here, where we know whom we wanted. */
                link_error(peer, -ENOTCONN, &e);
                httpd_reply_error(r, &e);
                return 0;
        }
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (struct domain_call){
                .link = link, .peer = peer, .request = r, .done = done};
        ret = haven_msg_link_call(link, owned, timeout_usec, on_call_reply, c,
                                  &c->id);
        if (ret < 0) {
                free(c);
                return ret;
        }
        httpd_request_hold(r, call_cancel, c);
        return 0;
}

int httpd_domain_call(struct httpd_request *r, struct json_object *request,
                      httpd_domain_reply_t done) {
        return httpd_domain_call_timeout(r, request, HTTPD_DOMAIN_TIMEOUT_USEC,
                                         done);
}

int httpd_domain_call_timeout(struct httpd_request *r,
                              struct json_object *request,
                              uint64_t timeout_usec,
                              httpd_domain_reply_t done) {
        struct httpd_domain *d = httpd_domain(httpd_request_server(r));

        return httpd_link_call(d ? d->link : NULL, "haven-domaind", r, request,
                               timeout_usec, done);
}

bool httpd_domain_connected(const struct httpd_domain *d) {
        return d && haven_msg_link_connected(d->link);
}

/* ==== Calls of the server's own ==== */

static void background_unlink(struct background_call *c) {
        struct httpd_domain *d = c->domain;

        if (c->prev)
                c->prev->next = c->next;
        else
                d->background = c->next;
        if (c->next)
                c->next->prev = c->prev;
}

static void on_background_reply(struct haven_msg_link *link, int error,
                                struct json_object *reply, void *userdata) {
        struct background_call *c = userdata;
        httpd_domain_done_t done = c->done;
        void *data = c->userdata;
        struct json_object *e;
        struct httpd_error err;

        background_unlink(c);
        free(c);
        if (error < 0) {
                httpd_error_from_errno(error, &err);
                done(NULL, &err, data);
        } else if (json_object_object_get_ex(reply, "error", &e)) {
                httpd_error_from_domaind(e, &err);
                done(NULL, &err, data);
        } else
                done(reply, NULL, data);
}

int httpd_domain_call_background(struct httpd_domain *d,
                                 struct json_object *request,
                                 httpd_domain_done_t done, void *userdata,
                                 uint64_t *ret_id) {
        _cleanup_(json_object_putp) struct json_object *owned = request;
        struct background_call *c;
        int r;

        assert(done);
        if (!owned)
                return -ENOMEM;
        if (!d || !haven_msg_link_connected(d->link))
                return -ENOTCONN;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (struct background_call){
                .domain = d, .done = done, .userdata = userdata};
        r = haven_msg_link_call(d->link, owned, HTTPD_DOMAIN_TIMEOUT_USEC,
                                on_background_reply, c, &c->id);
        if (r < 0) {
                free(c);
                return r;
        }
        c->next = d->background;
        if (d->background)
                d->background->prev = c;
        d->background = c;
        if (ret_id)
                *ret_id = c->id;
        return 0;
}

void httpd_domain_cancel(struct httpd_domain *d, uint64_t id) {
        if (!d || id == 0)
                return;
        for (struct background_call *c = d->background; c; c = c->next)
                if (c->id == id) {
                        haven_msg_link_cancel(d->link, id);
                        background_unlink(c);
                        free(c);
                        return;
                }
}

/* ==== The subscription ==== */

static void subscribe(struct httpd_domain *d);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        struct httpd_domain *d = userdata;

        d->retry = sd_event_source_disable_unref(d->retry);
        subscribe(d);
        return 0;
}

static void subscribe_later(struct httpd_domain *d) {
        int r;

        if (d->retry)
                return;
        r = sd_event_add_time_relative(httpd_event(d->httpd), &d->retry,
                                       CLOCK_MONOTONIC, SUBSCRIBE_RETRY_USEC, 0,
                                       on_retry, d);
        if (r < 0)
                log_warning_errno(r, "haven-domaind: cannot schedule the "
                                     "subscription, ignoring: %m");
}

static void on_subscribed(struct haven_msg_link *link, int error,
                          struct json_object *reply, void *userdata) {
        struct httpd_domain *d = userdata;
        struct json_object *e;

        d->subscribe_call = 0;
        if (error == -ECONNRESET || error == -ECANCELED)
                return; /* on_state(true) subscribes again */
        if (error < 0 || json_object_object_get_ex(reply, "error", &e)) {
                log_warning_errno(error < 0 ? error : -EPROTO,
                                  "haven-domaind: subscription to events "
                                  "failed, trying again: %m");
                subscribe_later(d);
                return;
        }
        d->subscribed = true;
        log_debug("haven-domaind: subscribed to events");
        /* Whatever happened while we were away. */
        httpd_dashboard_invalidate(httpd_dashboard(d->httpd));
        httpd_wizard_refresh(httpd_wizard(d->httpd));
        if (d->ever_subscribed) {
                /* Streams may have missed events in between. */
                _cleanup_(json_object_putp) struct json_object *o =
                        json_object_new_object();

                if (o &&
                    haven_json_add(o, "reason",
                                   json_object_new_string(
                                           "haven-domaind reconnected")) >= 0)
                        httpd_events_publish(httpd_events(d->httpd), "resync",
                                             o);
        }
        d->ever_subscribed = true;
}

static void subscribe(struct httpd_domain *d) {
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        struct json_object *events;
        int r;

        if (d->subscribed || d->subscribe_call ||
            !haven_msg_link_connected(d->link))
                return;
        req = json_object_new_object();
        events = json_object_new_array();
        if (!req || !events) {
                json_object_put(events);
                subscribe_later(d);
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(subscribed_events); i++)
                (void) json_object_array_add(
                        events, json_object_new_string(subscribed_events[i]));
        r = haven_json_add(req, "request", json_object_new_string("subscribe"));
        if (r >= 0)
                r = haven_json_add(req, "events", events);
        if (r >= 0)
                r = haven_msg_link_call(d->link, req, SUBSCRIBE_TIMEOUT_USEC,
                                        on_subscribed, d, &d->subscribe_call);
        if (r < 0) {
                log_warning_errno(r,
                                  "haven-domaind: cannot subscribe to events, "
                                  "trying again: %m");
                subscribe_later(d);
        }
}

static void on_state(struct haven_msg_link *link, bool connected,
                     void *userdata) {
        struct httpd_domain *d = userdata;

        if (connected) {
                log_info("haven-domaind at \"%s\": connected", d->path);
                subscribe(d);
        } else {
                log_warning("haven-domaind at \"%s\": connection lost, "
                            "reconnecting",
                            d->path);
                d->subscribed = false;
                d->subscribe_call = 0;
                httpd_set_cluster_state(d->httpd, HTTPD_CLUSTER_UNKNOWN);
        }
}

/* Whether a commit event names table. */
static bool commit_touches(struct json_object *event, const char *table) {
        struct json_object *tables;

        if (haven_json_get_array(event, "tables", &tables) < 0)
                return false;
        for (size_t i = 0; i < json_object_array_length(tables); i++) {
                struct json_object *t = json_object_array_get_idx(tables, i);

                if (json_object_is_type(t, json_type_string) &&
                    streq(json_object_get_string(t), table))
                        return true;
        }
        return false;
}

/* What an event changes besides the streams: the dashboard shows nearly
 * everything (job-log lines it does not); the cluster state follows the
 * cluster and nodes tables and the membership. */
static void event_consequences(struct httpd_domain *d, const char *name,
                               struct json_object *event) {
        if (!streq(name, "job-log"))
                httpd_dashboard_invalidate(httpd_dashboard(d->httpd));
        if (streq(name, "membership") ||
            (streq(name, "commit") && (commit_touches(event, "cluster") ||
                                       commit_touches(event, "nodes"))))
                httpd_wizard_refresh(httpd_wizard(d->httpd));
}

static void on_event(struct haven_msg_link *link, struct json_object *event,
                     void *userdata) {
        struct httpd_domain *d = userdata;
        const char *name;

        if (haven_json_get_string(event, "event", &name) < 0)
                return; /* neither a reply of ours nor an event */
        for (size_t i = 0; i < ELEMENTSOF(subscribed_events); i++)
                if (streq(name, subscribed_events[i])) {
                        httpd_events_publish(httpd_events(d->httpd), name,
                                             event);
                        event_consequences(d, name, event);
                        return;
                }
        log_debug("haven-domaind: event \"%s\" ignored", name);
}

int httpd_domain_new(struct httpd *h, const char *socket_path,
                     struct httpd_domain **ret) {
        struct httpd_domain *d;
        int r;

        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->httpd = h;
        d->path = strdup(socket_path);
        if (!d->path) {
                free(d);
                return -ENOMEM;
        }
        r = haven_msg_link_new(httpd_event(h),
                               &(struct haven_msg_link_config){
                                       .path = socket_path,
                                       .on_event = on_event,
                                       .on_state = on_state,
                                       .userdata = d,
                               },
                               &d->link);
        if (r < 0) {
                free(d->path);
                free(d);
                return r;
        }
        *ret = d;
        return 0;
}

struct httpd_domain *httpd_domain_free(struct httpd_domain *d) {
        if (!d)
                return NULL;
        d->retry = sd_event_source_disable_unref(d->retry);
        /* Pending calls are told -ECANCELED (and unlinked) here. */
        haven_msg_link_free(d->link);
        d->link = NULL;
        while (d->background) {
                struct background_call *c = d->background;

                background_unlink(c);
                free(c);
        }
        free(d->path);
        free(d);
        return NULL;
}
