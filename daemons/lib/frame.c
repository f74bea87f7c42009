/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The framing msg.c and peer.c share (haven/frame.h): headers, limits,
 * encoding, cutting frames out of a byte stream, connection buffers, and
 * the blocking clients' deadlines. Must not: touch a socket other than to
 * poll() it, parse a payload, or log.
 */
#include <assert.h>
#include <limits.h>
#include <poll.h>

#include "haven/frame.h"
#include "haven/json.h"
#include "haven/loop.h"

/* A connection's output queue may hold at least this much (or two frames of
 * the maximum size, if that is more). */
#define QUEUE_MIN (4u * 1024u * 1024u)

static size_t size_max(size_t a, size_t b) {
        return a > b ? a : b;
}

static size_t size_min(size_t a, size_t b) {
        return a < b ? a : b;
}

/* ==== Frames ==== */

size_t haven_frame_max_size(size_t max_size) {
        if (max_size == 0)
                return HAVEN_FRAME_SIZE_DEFAULT;
        return size_min(max_size, HAVEN_FRAME_SIZE_HARD_MAX);
}

size_t haven_frame_queue_max(size_t max_size) {
        return size_max(2 * (max_size + HAVEN_FRAME_HEADER_SIZE), QUEUE_MIN);
}

void haven_frame_header_write(uint8_t header[static HAVEN_FRAME_HEADER_SIZE],
                              size_t size) {
        assert(size <= UINT32_MAX);
        header[0] = (uint8_t) (size >> 24);
        header[1] = (uint8_t) (size >> 16);
        header[2] = (uint8_t) (size >> 8);
        header[3] = (uint8_t) size;
}

size_t
haven_frame_header_read(const uint8_t header[static HAVEN_FRAME_HEADER_SIZE]) {
        return (size_t) header[0] << 24 | (size_t) header[1] << 16 |
               (size_t) header[2] << 8 | (size_t) header[3];
}

/* Serializes obj to compact JSON. Returns 0 and the text (borrowed from obj:
 * valid until obj changes or goes away) and its length, -E2BIG if the text
 * is longer than max_size, -ENOMEM. */
static int frame_text(struct json_object *obj, size_t max_size,
                      const char **ret_text, size_t *ret_size) {
        const char *text;
        size_t size = 0;

        text = json_object_to_json_string_length(
                obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                &size);
        if (!text)
                return -ENOMEM;
        if (size > max_size)
                return -E2BIG;
        *ret_text = text;
        *ret_size = size;
        return 0;
}

int haven_frame_encode(struct json_object *obj, size_t max_size,
                       uint8_t **ret_frame, size_t *ret_size) {
        _cleanup_free_ uint8_t *frame = NULL;
        const char *text;
        size_t size;
        int r;

        assert(ret_frame);
        assert(ret_size);

        r = frame_text(obj, max_size, &text, &size);
        if (r < 0)
                return r;

        frame = malloc(HAVEN_FRAME_HEADER_SIZE + size);
        if (!frame)
                return -ENOMEM;
        haven_frame_header_write(frame, size);
        memcpy(frame + HAVEN_FRAME_HEADER_SIZE, text, size);

        *ret_frame = TAKE_PTR(frame);
        *ret_size = HAVEN_FRAME_HEADER_SIZE + size;
        return 0;
}

int haven_frame_next(const uint8_t *data, size_t size, size_t max_size,
                     const uint8_t **ret_payload, size_t *ret_payload_size,
                     const char **ret_reason) {
        size_t payload;

        assert(data || size == 0);
        assert(ret_payload);
        assert(ret_payload_size);

        if (size < HAVEN_FRAME_HEADER_SIZE)
                return 0;
        payload = haven_frame_header_read(data);
        if (payload > max_size) {
                if (ret_reason)
                        *ret_reason = "frame too large";
                return -E2BIG;
        }
        if (size - HAVEN_FRAME_HEADER_SIZE < payload)
                return 0;

        *ret_payload = data + HAVEN_FRAME_HEADER_SIZE;
        *ret_payload_size = payload;
        if (payload == 0) {
                if (ret_reason)
                        *ret_reason = "empty frame";
                return -EBADMSG;
        }
        return 1;
}

struct json_object *haven_frame_error_new(const char *code,
                                          const char *message) {
        _cleanup_(json_object_putp) struct json_object *outer = NULL;
        struct json_object *inner, *code_string, *message_string;

        outer = json_object_new_object();
        if (!outer)
                return NULL;
        inner = json_object_new_object();
        if (haven_json_add(outer, "error", inner) < 0 || !inner)
                return NULL;
        /* haven_json_add() would store a failed string as null. */
        code_string = json_object_new_string(code ? code : "");
        if (!code_string || haven_json_add(inner, "code", code_string) < 0)
                return NULL;
        message_string = json_object_new_string(message ? message : "");
        if (!message_string ||
            haven_json_add(inner, "message", message_string) < 0)
                return NULL;
        return TAKE_PTR(outer);
}

/* ==== Buffers ==== */

/* Grows b to hold at least `need` bytes, keeping its contents. Returns 0 or
 * -ENOMEM (b is unchanged then). */
static int buffer_reserve(struct haven_frame_buffer *b, size_t need) {
        uint8_t *p;

        if (b->alloc >= need)
                return 0;
        p = realloc(b->data, need);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->alloc = need;
        return 0;
}

/* Moves the unread bytes to the front. */
static void buffer_compact(struct haven_frame_buffer *b) {
        size_t size = haven_frame_buffer_size(b);

        if (b->start == 0)
                return;
        memmove(b->data, b->data + b->start, size);
        b->start = 0;
        b->end = size;
}

void haven_frame_buffer_free(struct haven_frame_buffer *b) {
        free(b->data);
        *b = (struct haven_frame_buffer){};
}

void haven_frame_buffer_trim(struct haven_frame_buffer *b) {
        if (haven_frame_buffer_size(b) > 0)
                return;
        if (b->alloc > HAVEN_FRAME_READ_CHUNK)
                haven_frame_buffer_free(b);
        else
                b->start = b->end = 0;
}

int haven_frame_buffer_reserve_read(struct haven_frame_buffer *b) {
        size_t want = HAVEN_FRAME_HEADER_SIZE;

        buffer_compact(b);
        if (b->end >= HAVEN_FRAME_HEADER_SIZE)
                want += haven_frame_header_read(b->data);
        return buffer_reserve(b, size_max(want, HAVEN_FRAME_READ_CHUNK));
}

int haven_frame_buffer_queue(struct haven_frame_buffer *b,
                             struct json_object *obj, size_t max_size,
                             size_t queue_max) {
        size_t pending = haven_frame_buffer_size(b), need;
        const char *text;
        size_t size;
        int r;

        r = frame_text(obj, max_size, &text, &size);
        if (r < 0)
                return r;

        need = HAVEN_FRAME_HEADER_SIZE + size;
        if (pending > queue_max || need > queue_max - pending)
                return -ENOBUFS;

        if (b->end + need > b->alloc)
                buffer_compact(b);
        if (b->end + need > b->alloc) {
                /* Doubling, but never beyond what the queue may hold. */
                r = buffer_reserve(b,
                                   size_max(b->end + need,
                                            size_min(b->alloc * 2, queue_max)));
                if (r < 0)
                        return r;
        }

        haven_frame_header_write(b->data + b->end, size);
        memcpy(b->data + b->end + HAVEN_FRAME_HEADER_SIZE, text, size);
        b->end += need;
        return 0;
}

/* ==== Blocking clients ==== */

int haven_frame_wait(int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = events};
                int timeout_ms = -1, r;

                if (deadline != UINT64_MAX) {
                        uint64_t now = haven_now_usec(CLOCK_MONOTONIC), left_ms;

                        if (now >= deadline)
                                return -ETIMEDOUT;
                        left_ms = (deadline - now + 999) / 1000;
                        timeout_ms =
                                left_ms > INT_MAX ? INT_MAX : (int) left_ms;
                }

                r = poll(&pfd, 1, timeout_ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return 0;
                /* Timed out (rounding): the deadline check decides. */
        }
}
