/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven/frame.h, the framing msg.c and peer.c share: cutting
 * frames out of a byte stream, limits, the input and output buffers, and
 * the blocking clients' deadlines. test-msg.c and test-peer.c prove the same
 * code over real sockets; these pin its contracts at the edges.
 *
 * Bad inputs tried: headers cut short, a header one byte over the limit
 * (with no payload behind it), an empty frame between two good ones, an
 * object that encodes to more than the limit, an output queue one frame
 * past its bound.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <sys/socket.h>

#include "haven/frame.h"
#include "haven/loop.h"
#include "haven/json.h"

#include "test-util.h"

/* Appends a frame with the given announced size and payload bytes. */
static size_t put_frame(uint8_t *buf, uint32_t announced, const char *payload,
                        size_t size) {
        haven_frame_header_write(buf, announced);
        memcpy(buf + HAVEN_FRAME_HEADER_SIZE, payload, size);
        return HAVEN_FRAME_HEADER_SIZE + size;
}

/* ==== Frames ==== */

static void frames_are_cut_from_a_stream_only_once_complete(void **state) {
        uint8_t stream[64];
        const uint8_t *payload = NULL;
        size_t len = 0, size = 0;

        len += put_frame(stream + len, 7, "{\"a\":1}", 7);
        len += put_frame(stream + len, 2, "{}", 2);

        for (size_t cut = 0; cut < 11; cut++)
                assert_int_equal(haven_frame_next(stream, cut, 100, &payload,
                                                  &size, NULL),
                                 0);
        assert_int_equal(haven_frame_next(NULL, 0, 100, &payload, &size, NULL),
                         0);

        assert_int_equal(
                haven_frame_next(stream, len, 100, &payload, &size, NULL), 1);
        assert_ptr_equal(payload, stream + HAVEN_FRAME_HEADER_SIZE);
        assert_int_equal(size, 7);

        assert_int_equal(haven_frame_next(stream + 11, len - 11, 100, &payload,
                                          &size, NULL),
                         1);
        assert_memory_equal(payload, "{}", 2);
        assert_int_equal(size, 2);
}

static void frame_over_the_limit_is_refused_on_its_header(void **state) {
        uint8_t header[HAVEN_FRAME_HEADER_SIZE];
        const uint8_t *payload = NULL;
        const char *reason = NULL;
        size_t size = 0;

        /* At the limit: the payload is awaited. */
        haven_frame_header_write(header, 100);
        assert_int_equal(haven_frame_next(header, sizeof(header), 100, &payload,
                                          &size, &reason),
                         0);
        assert_null(reason);

        haven_frame_header_write(header, 101);
        assert_int_equal(haven_frame_next(header, sizeof(header), 100, &payload,
                                          &size, &reason),
                         -E2BIG);
        assert_string_equal(reason, "frame too large");
}

static void empty_frame_is_refused_and_can_be_skipped(void **state) {
        uint8_t stream[32];
        const uint8_t *payload = NULL;
        const char *reason = NULL;
        size_t len = 0, size = 99;

        len += put_frame(stream + len, 0, "", 0);
        len += put_frame(stream + len, 2, "{}", 2);

        assert_int_equal(
                haven_frame_next(stream, len, 100, &payload, &size, &reason),
                -EBADMSG);
        assert_string_equal(reason, "empty frame");
        assert_int_equal(size, 0);

        assert_int_equal(haven_frame_next(stream + HAVEN_FRAME_HEADER_SIZE,
                                          len - HAVEN_FRAME_HEADER_SIZE, 100,
                                          &payload, &size, NULL),
                         1);
        assert_int_equal(size, 2);
}

static void encoded_frame_is_cut_back_to_the_same_text(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj =
                json("{\"path\":\"/a/b\",\"n\":[1,2]}");
        static const char text[] = "{\"path\":\"/a/b\",\"n\":[1,2]}";
        _cleanup_free_ uint8_t *frame = NULL, *none = NULL;
        const uint8_t *payload = NULL;
        size_t size = 0, payload_size = 0;

        assert_int_equal(haven_frame_encode(obj, strlen(text), &frame, &size),
                         0);
        assert_int_equal(size, HAVEN_FRAME_HEADER_SIZE + strlen(text));
        assert_int_equal(haven_frame_next(frame, size, strlen(text), &payload,
                                          &payload_size, NULL),
                         1);
        assert_int_equal(payload_size, strlen(text));
        assert_memory_equal(payload, text, payload_size);

        assert_int_equal(
                haven_frame_encode(obj, strlen(text) - 1, &none, &size),
                -E2BIG);
        assert_null(none);
}

static void limits_default_and_are_capped(void **state) {
        assert_int_equal(haven_frame_max_size(0), HAVEN_FRAME_SIZE_DEFAULT);
        assert_int_equal(haven_frame_max_size(5), 5);
        assert_int_equal(haven_frame_max_size(HAVEN_FRAME_SIZE_HARD_MAX + 1),
                         HAVEN_FRAME_SIZE_HARD_MAX);

        assert_int_equal(haven_frame_queue_max(1024), 4u * 1024u * 1024u);
        assert_int_equal(
                haven_frame_queue_max(HAVEN_FRAME_SIZE_HARD_MAX),
                2 * (HAVEN_FRAME_SIZE_HARD_MAX + HAVEN_FRAME_HEADER_SIZE));
}

static void error_object_carries_code_and_message(void **state) {
        _cleanup_(json_object_putp) struct json_object *expected =
                json("{\"error\":{\"code\":\"busy\",\"message\":\"\"}}");
        _cleanup_(json_object_putp) struct json_object *error =
                haven_frame_error_new("busy", NULL);

        assert_non_null(error);
        assert_true(json_object_equal(error, expected));
}

/* ==== Buffers ==== */

static void output_queue_holds_frames_up_to_its_bound(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj =
                object_of_size(20);
        struct haven_frame_buffer out = {};
        const uint8_t *payload = NULL;
        size_t size = 0;

        /* 24 bytes a frame: two fit in 50, a third does not. */
        assert_int_equal(haven_frame_buffer_queue(&out, obj, 100, 50), 0);
        assert_int_equal(haven_frame_buffer_queue(&out, obj, 100, 50), 0);
        assert_int_equal(haven_frame_buffer_queue(&out, obj, 100, 50),
                         -ENOBUFS);
        assert_int_equal(haven_frame_buffer_size(&out), 48);
        assert_int_equal(haven_frame_buffer_queue(&out, obj, 19, 1000), -E2BIG);
        assert_int_equal(haven_frame_buffer_size(&out), 48);

        /* One frame went out: room again, the rest moved to the front. */
        out.start += 24;
        assert_int_equal(haven_frame_buffer_queue(&out, obj, 100, 50), 0);
        assert_int_equal(out.start, 0);
        assert_int_equal(haven_frame_buffer_size(&out), 48);
        assert_int_equal(haven_frame_next(haven_frame_buffer_head(&out),
                                          haven_frame_buffer_size(&out), 100,
                                          &payload, &size, NULL),
                         1);
        assert_int_equal(size, 20);

        haven_frame_buffer_free(&out);
        assert_null(out.data);
        assert_int_equal(out.alloc, 0);
}

static void
input_buffer_grows_for_a_large_frame_and_shrinks_after(void **state) {
        struct haven_frame_buffer in = {};

        assert_null(haven_frame_buffer_head(&in));
        assert_int_equal(haven_frame_buffer_reserve_read(&in), 0);
        assert_int_equal(in.alloc, HAVEN_FRAME_READ_CHUNK);

        /* Two bytes already handled, then a header announcing 200000. */
        in.start = 2;
        in.end = 2 + HAVEN_FRAME_HEADER_SIZE;
        haven_frame_header_write(in.data + 2, 200000);
        assert_int_equal(haven_frame_buffer_reserve_read(&in), 0);
        assert_int_equal(in.start, 0);
        assert_int_equal(in.end, HAVEN_FRAME_HEADER_SIZE);
        assert_int_equal(haven_frame_header_read(in.data), 200000);
        assert_int_equal(in.alloc, HAVEN_FRAME_HEADER_SIZE + 200000);

        /* Not empty yet: kept. Empty: the large allocation is given back. */
        haven_frame_buffer_trim(&in);
        assert_non_null(in.data);
        in.start = in.end;
        haven_frame_buffer_trim(&in);
        assert_null(in.data);
        assert_int_equal(in.alloc, 0);

        /* A buffer of the usual size is kept, rewound. */
        assert_int_equal(haven_frame_buffer_reserve_read(&in), 0);
        in.start = in.end = 3;
        haven_frame_buffer_trim(&in);
        assert_non_null(in.data);
        assert_int_equal(in.start, 0);
        assert_int_equal(in.end, 0);
        haven_frame_buffer_free(&in);
}

/* ==== Blocking clients ==== */

static void deadline_saturates_instead_of_wrapping(void **state) {
        uint64_t before = now_usec();

        assert_true(haven_deadline_usec(UINT64_MAX) == UINT64_MAX);
        assert_true(haven_deadline_usec(UINT64_MAX - 1) == UINT64_MAX);
        assert_true(haven_deadline_usec(0) >= before);
        assert_true(haven_deadline_usec(0) <= now_usec());
}

static void wait_returns_when_ready_or_times_out(void **state) {
        int fds[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);

        assert_int_equal(haven_frame_wait(fds[0], POLLIN,
                                          haven_deadline_usec(20u * 1000u)),
                         -ETIMEDOUT);
        assert_int_equal(
                haven_frame_wait(fds[0], POLLIN, haven_deadline_usec(0)),
                -ETIMEDOUT);
        assert_int_equal(haven_frame_wait(fds[0], POLLOUT, UINT64_MAX), 0);

        assert_int_equal(write(fds[1], "x", 1), 1);
        assert_int_equal(haven_frame_wait(fds[0], POLLIN, UINT64_MAX), 0);

        close(fds[0]);
        close(fds[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        frames_are_cut_from_a_stream_only_once_complete),
                cmocka_unit_test(frame_over_the_limit_is_refused_on_its_header),
                cmocka_unit_test(empty_frame_is_refused_and_can_be_skipped),
                cmocka_unit_test(encoded_frame_is_cut_back_to_the_same_text),
                cmocka_unit_test(limits_default_and_are_capped),
                cmocka_unit_test(error_object_carries_code_and_message),
                cmocka_unit_test(output_queue_holds_frames_up_to_its_bound),
                cmocka_unit_test(
                        input_buffer_grows_for_a_large_frame_and_shrinks_after),
                cmocka_unit_test(deadline_saturates_instead_of_wrapping),
                cmocka_unit_test(wait_returns_when_ready_or_times_out),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
