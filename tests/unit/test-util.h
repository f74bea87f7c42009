/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Scaffolding the socket tests (test-msg.c, test-peer.c) share: the clock
 * their watchdogs read, JSON from literal text, and objects of an exact
 * encoded size. Header only (static inline); include it after <cmocka.h>.
 * Owns no state.
 */
#pragma once

#include <json-c/json.h>

#include "haven/json.h"
#include "haven/loop.h"

static inline uint64_t now_usec(void) {
        return haven_now_usec(CLOCK_MONOTONIC);
}

/* Parses text, which the test wrote and must be JSON (fails the test
 * otherwise). Returns a new reference. */
static inline struct json_object *json(const char *text) {
        struct json_object *obj = json_tokener_parse(text);

        assert_non_null(obj);
        return obj;
}

/* {"pad":"xxx…"} whose compact text is exactly size (at least 10) bytes
 * long. Returns a new reference. Aborts rather than failing the test:
 * forked children call it too. */
static inline struct json_object *object_of_size(size_t size) {
        static const char empty[] = "{\"pad\":\"\"}";
        _cleanup_free_ char *pad = NULL;
        struct json_object *obj, *value;
        size_t n;

        if (size < strlen(empty))
                abort();
        n = size - strlen(empty);
        pad = malloc(n + 1);
        if (!pad)
                abort();
        memset(pad, 'x', n);
        pad[n] = '\0';

        obj = json_object_new_object();
        value = json_object_new_string(pad);
        if (!obj || !value || json_object_object_add(obj, "pad", value) < 0)
                abort();
        if (strlen(json_object_to_json_string_ext(
                    obj, JSON_C_TO_STRING_PLAIN)) != size)
                abort();
        return obj;
}
