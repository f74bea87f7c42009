/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-httpd's one link to haven-domaind (docs/domain.md, "Local socket
 * API"): calls made for requests, answered asynchronously (a domaind error
 * answer arrives as an httpd_error), and the one subscription whose events
 * feed every event stream. Must not: write anything but what a handler
 * asked for, or keep a request alive past its end.
 */
#include "haven/log.h"
#include "haven/msg.h"
#include "httpd.h"

#define SUBSCRIBE_TIMEOUT_USEC (10ull * 1000000ull)
#define SUBSCRIBE_RETRY_USEC (1ull * 1000000ull)

static const char *const subscribed_events[] = {"commit", "status", "job-log",
                                                "membership"};

struct httpd_domain {
        struct httpd *httpd;
        struct haven_msg_link *link;
        char *path;
        bool subscribed;      /* the current connection's subscription is on */
        bool ever_subscribed; /* events may have been missed since */
        uint64_t subscribe_call;
        sd_event_source *retry;
};

struct domain_call {
        struct httpd_domain *domain;
        struct httpd_request *request;
        httpd_domain_reply_t done;
        uint64_t id;
};

/* ==== Calls for requests ==== */

static void call_cancel(void *userdata) {
        struct domain_call *c = userdata;

        haven_msg_link_cancel(c->domain->link, c->id);
        free(c);
}

static void on_call_reply(struct haven_msg_link *link, int error,
                          struct json_object *reply, void *userdata) {
        struct domain_call *c = userdata;
        struct httpd_request *r = c->request;
        httpd_domain_reply_t done = c->done;
        struct json_object *e;
        struct httpd_error err;

        httpd_request_forget(r);
        free(c);
        if (error < 0) {
                httpd_error_from_errno(error, &err);
                done(r, NULL, &err);
        } else if (json_object_object_get_ex(reply, "error", &e)) {
                httpd_error_from_domaind(e, &err);
                done(r, NULL, &err);
        } else
                done(r, reply, NULL);
}

int httpd_domain_call(struct httpd_request *r, struct json_object *request,
                      httpd_domain_reply_t done) {
        _cleanup_(json_object_putp) struct json_object *owned = request;
        struct httpd_domain *d = httpd_domain(httpd_request_server(r));
        struct domain_call *c;
        int ret;

        assert(done);
        if (!owned)
                return -ENOMEM;
        if (!d || !haven_msg_link_connected(d->link))
                return -ENOTCONN;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (struct domain_call){.domain = d, .request = r, .done = done};
        ret = haven_msg_link_call(d->link, owned, HTTPD_DOMAIN_TIMEOUT_USEC,
                                  on_call_reply, c, &c->id);
        if (ret < 0) {
                free(c);
                return ret;
        }
        httpd_request_hold(r, call_cancel, c);
        return 0;
}

bool httpd_domain_connected(const struct httpd_domain *d) {
        return d && haven_msg_link_connected(d->link);
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
        }
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
        haven_msg_link_free(d->link);
        free(d->path);
        free(d);
        return NULL;
}
