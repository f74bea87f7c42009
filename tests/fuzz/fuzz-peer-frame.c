/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for haven_peer_frame_parse() (haven/peer.h), which reads
 * what another node sends over the cluster interconnect once the TLS
 * session is up: the same code cuts the server's and the client's input
 * into frames. TLS itself is GnuTLS's and is not fuzzed here. The first
 * input byte picks the payload limit (0 = the default, else 16 × the byte,
 * so that frames over the limit are reachable); the rest is one received
 * byte stream, parsed frame after frame as a connection would. Besides
 * what the sanitizers catch, it aborts when a result breaks what peer.h
 * promises: "need more" when a frame is complete or a header is over the
 * limit, a consumed length other than header + announced payload, a frame
 * accepted that is not an object, or one refused without a reason, and
 * when an accepted message, sent back as a frame, does not parse to the
 * same object.
 */
#include <stdint.h>

#include "haven/json.h"
#include "haven/msg.h"
#include "haven/peer.h"
#include "fuzz-util.h"

#define HEADER_SIZE 4u

static size_t announced(const uint8_t *p) {
        return (size_t) p[0] << 24 | (size_t) p[1] << 16 | (size_t) p[2] << 8 |
               (size_t) p[3];
}

/* obj, framed the way the server sends replies, parses back to obj. */
static void check_round_trip(struct json_object *obj) {
        _cleanup_(json_object_putp) struct json_object *again = NULL;
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size = 0, consumed = 0;

        check(haven_msg_encode(obj, HAVEN_PEER_SIZE_HARD_MAX, &frame, &size) ==
              0);
        check(haven_peer_frame_parse(frame, size, HAVEN_PEER_SIZE_HARD_MAX,
                                     &again, &consumed, NULL) == 1);
        check(consumed == size);
        check(json_object_equal(obj, again));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t max_size, limit, pos = 0;

        if (size == 0)
                return 0;
        max_size = (size_t) data[0] * 16u;
        limit = max_size == 0 ? HAVEN_PEER_SIZE_DEFAULT : max_size;
        data++;
        size--;

        for (;;) {
                _cleanup_(json_object_putp) struct json_object *obj = NULL;
                const char *reason = NULL;
                size_t left = size - pos, consumed = 0;
                int r;

                r = haven_peer_frame_parse(data + pos, left, max_size, &obj,
                                           &consumed, &reason);
                if (r == 0) {
                        check(!obj && consumed == 0);
                        check(left < HEADER_SIZE ||
                              (announced(data + pos) <= limit &&
                               left - HEADER_SIZE < announced(data + pos)));
                        break;
                }
                if (r == -E2BIG) {
                        check(!obj && reason && *reason);
                        check(left >= HEADER_SIZE &&
                              announced(data + pos) > limit);
                        break; /* the stream cannot be followed */
                }
                if (r == -ENOMEM)
                        break;

                check(consumed == HEADER_SIZE + announced(data + pos));
                check(consumed <= left);
                if (r == -EBADMSG)
                        check(!obj && reason && *reason);
                else {
                        check(r == 1);
                        check(json_object_is_type(obj, json_type_object));
                        check_round_trip(obj);
                }
                pos += consumed;
        }
        return 0;
}
