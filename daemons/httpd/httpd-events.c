/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The event stream (GET /api/v1/events, text/event-stream): every client
 * gets its own bounded queue of what haven-domaind's one subscription
 * pushes (commit, status, job-log, membership; resync after a reconnect)
 * and a heartbeat comment. The response is read through a content reader
 * that suspends its connection when the queue is empty; a new event
 * resumes it. A client that does not keep up overflows its queue and is
 * dropped (EventSource reconnects). Must not: block, or let one slow
 * client hold memory beyond its queue.
 */
#include <stdio.h>

#include <microhttpd.h>

#include "haven/log.h"
#include "httpd.h"

#define STREAMS_MAX 128u
#define READ_BLOCK 4096u
/* Sent first: how soon EventSource reconnects after a drop. */
#define STREAM_PREAMBLE "retry: 2000\n\n"
#define HEARTBEAT ": heartbeat\n\n"

struct stream {
        struct httpd *httpd;
        struct httpd_events *events; /* NULL once dropped */
        struct MHD_Connection *connection;
        struct stream *prev, *next;
        char *queue;
        size_t start, end, allocated;
        bool suspended; /* by us, in the reader */
        bool dropped;   /* ends at the next read */
};

struct httpd_events {
        struct httpd *httpd;
        struct stream *streams;
        size_t n_streams;
        size_t queue_max;
        uint64_t heartbeat_usec;
        sd_event_source *heartbeat;
};

static void stream_resume(struct stream *s) {
        if (!s->suspended)
                return;
        s->suspended = false;
        MHD_resume_connection(s->connection);
        httpd_wake(s->httpd);
}

static void stream_unlink(struct stream *s) {
        struct httpd_events *e = s->events;

        if (!e)
                return;
        if (s->prev)
                s->prev->next = s->next;
        else
                e->streams = s->next;
        if (s->next)
                s->next->prev = s->prev;
        e->n_streams--;
        s->events = NULL;
        s->prev = s->next = NULL;
}

/* Ends a stream: no more events, its queue freed, its connection closed
 * at the next read or after a second without progress (a client that
 * reads nothing gives libmicrohttpd no reason to read from us). */
static void stream_drop(struct stream *s) {
        if (s->dropped)
                return;
        s->dropped = true;
        stream_unlink(s);
        free(s->queue);
        s->queue = NULL;
        s->start = s->end = s->allocated = 0;
        stream_resume(s);
        (void) MHD_set_connection_option(s->connection,
                                         MHD_CONNECTION_OPTION_TIMEOUT, 1u);
        httpd_wake(s->httpd);
}

/* Queues data; a queue that would grow past the limit drops the stream. */
static void stream_push(struct stream *s, const char *data, size_t size) {
        size_t used;

        if (s->dropped)
                return;
        used = s->end - s->start;
        if (used + size > s->events->queue_max) {
                log_debug("Event stream to a slow client dropped (%zu bytes "
                          "queued)",
                          used);
                stream_drop(s);
                return;
        }
        if (s->end + size > s->allocated) {
                if (s->start > 0) {
                        memmove(s->queue, s->queue + s->start, used);
                        s->start = 0;
                        s->end = used;
                }
                if (s->end + size > s->allocated) {
                        size_t want = s->allocated ? s->allocated : READ_BLOCK;
                        char *p;

                        while (want < s->end + size)
                                want *= 2;
                        p = realloc(s->queue, want);
                        if (!p) {
                                stream_drop(s);
                                return;
                        }
                        s->queue = p;
                        s->allocated = want;
                }
        }
        memcpy(s->queue + s->end, data, size);
        s->end += size;
        stream_resume(s);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
        struct stream *s = cls;
        size_t n;

        if (s->dropped)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        if (s->start == s->end) {
                /* Nothing to send: wait for an event or the heartbeat. */
                s->suspended = true;
                MHD_suspend_connection(s->connection);
                return 0;
        }
        n = s->end - s->start;
        if (n > max)
                n = max;
        memcpy(buf, s->queue + s->start, n);
        s->start += n;
        if (s->start == s->end)
                s->start = s->end = 0;
        return (ssize_t) n;
}

static void stream_free(void *cls) {
        struct stream *s = cls;

        stream_unlink(s);
        free(s->queue);
        free(s);
}

void httpd_events_publish(struct httpd_events *e, const char *name,
                          struct json_object *data) {
        _cleanup_free_ char *text = NULL;
        int n;

        if (!e || !e->streams)
                return;
        n = asprintf(
                &text, "event: %s\ndata: %s\n\n", name,
                json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN));
        if (n < 0)
                return;
        for (struct stream *s = e->streams, *next; s; s = next) {
                next = s->next; /* s may be dropped */
                stream_push(s, text, (size_t) n);
        }
}

size_t httpd_events_clients(const struct httpd_events *e) {
        return e ? e->n_streams : 0;
}

static int on_heartbeat(sd_event_source *source, uint64_t usec,
                        void *userdata) {
        struct httpd_events *e = userdata;

        for (struct stream *s = e->streams, *next; s; s = next) {
                next = s->next;
                stream_push(s, HEARTBEAT, strlen(HEARTBEAT));
        }
        (void) sd_event_source_set_time(source, usec + e->heartbeat_usec);
        (void) sd_event_source_set_enabled(source, SD_EVENT_ON);
        return 0;
}

int httpd_events_open(struct httpd_request *r) {
        struct httpd_events *e = httpd_events(httpd_request_server(r));
        struct MHD_Response *response;
        struct stream *s;
        uint64_t timeout_sec;

        if (e->n_streams >= STREAMS_MAX) {
                struct httpd_error error;

                httpd_error_set(&error, HTTPD_ERROR_THROTTLED, NULL,
                                "too many event streams on this node");
                error.retry_after_sec = 10;
                httpd_reply_error(r, &error);
                return 0;
        }
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->httpd = httpd_request_server(r);
        s->events = e;
        s->connection = httpd_request_connection(r);
        response = MHD_create_response_from_callback(
                MHD_SIZE_UNKNOWN, READ_BLOCK, stream_read, s, stream_free);
        if (!response) {
                free(s);
                return -ENOMEM;
        }
        /* Linked only now: from here on stream_free() unlinks it. */
        s->next = e->streams;
        if (e->streams)
                e->streams->prev = s;
        e->streams = s;
        e->n_streams++;
        stream_push(s, STREAM_PREAMBLE, strlen(STREAM_PREAMBLE));

        if (MHD_add_response_header(response, "Content-Type",
                                    "text/event-stream") != MHD_YES ||
            MHD_add_response_header(response, "Cache-Control", "no-store") !=
                    MHD_YES ||
            MHD_add_response_header(response, "X-Accel-Buffering", "no") !=
                    MHD_YES) {
                MHD_destroy_response(response); /* frees s */
                return -ENOMEM;
        }
        /* Heartbeats keep a live stream busy; one that cannot even take
         * those for three beats is gone. */
        timeout_sec = 3 * e->heartbeat_usec / 1000000u;
        httpd_request_set_timeout(
                r, (unsigned) (timeout_sec > 0 ? timeout_sec : 1));
        httpd_reply_response(r, 200, response);
        return 0;
}

int httpd_events_new(struct httpd *h, struct httpd_events **ret) {
        const struct httpd_config *c = httpd_get_config(h);
        struct httpd_events *e;
        int r;

        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->httpd = h;
        e->queue_max = c->event_queue_max ? c->event_queue_max : 256u * 1024u;
        e->heartbeat_usec =
                c->heartbeat_usec ? c->heartbeat_usec : 15ull * 1000000ull;
        r = sd_event_add_time_relative(httpd_event(h), &e->heartbeat,
                                       CLOCK_MONOTONIC, e->heartbeat_usec, 0,
                                       on_heartbeat, e);
        if (r < 0) {
                free(e);
                return r;
        }
        (void) sd_event_source_set_enabled(e->heartbeat, SD_EVENT_ON);
        *ret = e;
        return 0;
}

struct httpd_events *httpd_events_free(struct httpd_events *e) {
        if (!e)
                return NULL;
        /* The streams end at their next read (their memory goes with
         * their response); suspended ones are woken for it. */
        while (e->streams)
                stream_drop(e->streams);
        e->heartbeat = sd_event_source_disable_unref(e->heartbeat);
        free(e);
        return NULL;
}
