/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The wire format that haven/msg.h (unix sockets) and haven/peer.h (TLS over
 * TCP) share, internal to libhaven: a frame is a 4-byte big-endian length
 * followed by that many bytes of JSON text. Owns frame headers and limits,
 * encoding a JSON value within a limit, cutting frames out of a received
 * byte stream, a connection's input and output buffers, and the deadline
 * and poll() helpers of the blocking clients.
 * Must not: read or write a socket (the transports differ), judge a payload
 * beyond "not empty" (msg.c and peer.c parse payloads with different
 * strictness on purpose), or log.
 */
#pragma once

#include <json-c/json.h>

#include "haven/macro.h"

#define HAVEN_FRAME_HEADER_SIZE 4u

/* Payload limits; haven/msg.h and haven/peer.h publish the same numbers
 * under their own names (both .c files check that they agree). */
#define HAVEN_FRAME_SIZE_DEFAULT (1024u * 1024u)
#define HAVEN_FRAME_SIZE_HARD_MAX (64u * 1024u * 1024u)

/* Reads are at most this large unless a longer frame is being completed;
 * buffers that grew beyond it are given back once they are empty. */
#define HAVEN_FRAME_READ_CHUNK (64u * 1024u)

/* ==== Frames (pure) ==== */

/* The payload limit in effect for a configured one: 0 means
 * HAVEN_FRAME_SIZE_DEFAULT, anything above HAVEN_FRAME_SIZE_HARD_MAX is
 * lowered to it. */
size_t haven_frame_max_size(size_t max_size);

/* How much output a connection may have queued: two frames of max_size, or
 * 4 MiB if that is more. A peer that lets more pile up without reading is
 * dropped. */
size_t haven_frame_queue_max(size_t max_size);

/* Writes size (at most UINT32_MAX) as the 4-byte big-endian header. */
void haven_frame_header_write(uint8_t header[static HAVEN_FRAME_HEADER_SIZE],
                              size_t size);
/* The payload size a header announces. */
size_t
haven_frame_header_read(const uint8_t header[static HAVEN_FRAME_HEADER_SIZE]);

/* Serializes obj (any JSON value; NULL is null) as compact JSON into a newly
 * allocated frame. max_size is taken as it is (see haven_frame_max_size()).
 * Returns 0 and *ret_frame (the caller frees it) and *ret_size (header
 * included), -E2BIG if the text is longer than max_size, -ENOMEM. */
int haven_frame_encode(struct json_object *obj, size_t max_size,
                       uint8_t **ret_frame, size_t *ret_size);

/* Looks at the start of a received byte stream data[0..size) (data may be
 * NULL when size is 0). max_size is taken as it is. Returns
 *   1 when a whole frame is there: *ret_payload points into data and
 *     *ret_payload_size (> 0) is its length; the frame takes
 *     HAVEN_FRAME_HEADER_SIZE + *ret_payload_size bytes;
 *   0 when more bytes are needed (nothing is set);
 *   -E2BIG when the header announces more than max_size (decided on the
 *     header alone, so the payload never needs to be buffered): the stream
 *     cannot be followed any further;
 *   -EBADMSG for a frame without payload: *ret_payload_size is 0, so the
 *     frame to skip is the header alone.
 * On -E2BIG and -EBADMSG, *ret_reason (may be NULL) is set to a static text
 * that can be sent back to the peer. The payload itself is the caller's to
 * parse. */
int haven_frame_next(const uint8_t *data, size_t size, size_t max_size,
                     const uint8_t **ret_payload, size_t *ret_payload_size,
                     const char **ret_reason);

/* Returns a new {"error":{"code":code,"message":message}} (NULL strings are
 * sent as ""), or NULL on -ENOMEM. */
struct json_object *haven_frame_error_new(const char *code,
                                          const char *message);

/* ==== Buffers ==== */

/* A connection's received or queued bytes: data[start..end) of alloc. A
 * zeroed struct is an empty buffer. */
struct haven_frame_buffer {
        uint8_t *data;
        size_t start, end, alloc;
};

static inline size_t
haven_frame_buffer_size(const struct haven_frame_buffer *b) {
        return b->end - b->start;
}

/* The first unread byte, or NULL when nothing was ever buffered (for
 * haven_frame_next(), which takes NULL with a size of 0). */
static inline const uint8_t *
haven_frame_buffer_head(const struct haven_frame_buffer *b) {
        return b->data ? b->data + b->start : NULL;
}

/* Frees the bytes and leaves b empty (zeroed). */
void haven_frame_buffer_free(struct haven_frame_buffer *b);

/* Once b is empty: rewinds it, and gives back an allocation that grew over
 * HAVEN_FRAME_READ_CHUNK (a burst of large frames). No-op while bytes are
 * left. */
void haven_frame_buffer_trim(struct haven_frame_buffer *b);

/* Makes room for the next read into an input buffer: moves the unread bytes
 * to the front and grows the buffer to hold the whole frame being received
 * (its header when that is incomplete), or HAVEN_FRAME_READ_CHUNK bytes if
 * that is more. The frame's announced size must have passed the limit
 * already (haven_frame_next() did not return -E2BIG for it). Afterwards
 * read into data[end..alloc). Returns 0 or -ENOMEM (the bytes are kept). */
int haven_frame_buffer_reserve_read(struct haven_frame_buffer *b);

/* Appends obj, serialized as haven_frame_encode() does, as one frame to an
 * output buffer. Returns 0, -E2BIG when the text is longer than max_size
 * (nothing is queued), -ENOBUFS when the queue would then hold more than
 * queue_max bytes, -ENOMEM. May move the queued bytes to the front. */
int haven_frame_buffer_queue(struct haven_frame_buffer *b,
                             struct json_object *obj, size_t max_size,
                             size_t queue_max);

/* ==== Blocking clients ==== */

/* Deadlines come from haven_deadline_usec() (haven/loop.h). */

/* Waits until fd is ready for events (POLLIN, POLLOUT) or the deadline
 * passed, going on after EINTR. Returns 0 (also on POLLHUP/POLLERR: the
 * next read or write says what happened), -ETIMEDOUT (without looking at
 * fd once the deadline has passed: try the I/O first), or a negative errno
 * from poll(). */
int haven_frame_wait(int fd, short events, uint64_t deadline);
