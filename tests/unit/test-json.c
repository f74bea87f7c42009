/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven/json.h: what the bounded parser lets through, what the
 * typed getters say about missing and mistyped keys, and the messages the
 * field policy gives for each kind of bad body.
 *
 * Bad inputs tried:
 *   parser: trailing garbage ("{} x", "{}{}", "[1]]", "1 2", "{},"),
 *     truncated text ("{\"a\":", "[1,2", "\"abc", "tru", "-"), empty and
 *     whitespace-only text, nesting of 33 arrays/objects, text one byte over
 *     max_size, NUL bytes (inside a string, after the value, alone), the
 *     \u0000 escape, invalid UTF-8, single quotes, trailing commas, comments,
 *     unquoted keys, NaN/Infinity, leading zeros, TRUE, raw control
 *     characters in strings, integers beyond int64 (99999999999999999999,
 *     -99999999999999999999, 9223372036854775808, -9223372036854775809,
 *     18446744073709551615);
 *   getters: missing key, null value, every wrong type (1.5, "5" and true
 *     for an integer, ...), a non-object, uint64 above INT64_MAX, a string
 *     with an embedded NUL;
 *   policy: missing required field, unknown field (also misspelt, hostile
 *     and very long names), string/int/bool/double/array/object in the wrong
 *     place, null where not nullable, integers below/above range and beyond
 *     int64, strings too short/long in characters, enum values outside the
 *     choices (also wrong case, embedded NUL), too many/too few array
 *     elements, a body that is an array, string, number or null.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "haven/json.h"

#define BODY_MAX 4096

/* Parses a NUL-terminated text (the NUL is not passed). */
static int parse(const char *text, struct json_object **ret) {
        return haven_json_parse(text, strlen(text), BODY_MAX, ret);
}

static void assert_parse_fails(const char *text, int expected) {
        struct json_object *obj = NULL;

        if (parse(text, &obj) != expected)
                fail_msg("parsing '%s' did not fail with %d", text, expected);
        assert_null(obj);
}

/* ==== Parsing ==== */

static void parse_accepts_one_value_of_any_type(void **state) {
        static const struct {
                const char *text;
                json_type type;
        } cases[] = {
                {"{\"a\": 1, \"b\": [true, null, \"x\"]}", json_type_object},
                {" \t\r\n[1, 2]\n  ", json_type_array},
                {"123", json_type_int},
                {"-0", json_type_int},
                {"[0, 10, -10, 100]", json_type_array},
                {"0.5", json_type_double},
                {"-0.5e-3", json_type_double},
                {"9223372036854775807", json_type_int},
                {"-9223372036854775808", json_type_int},
                {"1.5", json_type_double},
                {"1e5", json_type_double},
                {"\"h\xc3\xa9llo\"", json_type_string},
                {"false", json_type_boolean},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(json_object_putp) struct json_object *obj = NULL;

                assert_int_equal(parse(cases[i].text, &obj), 0);
                assert_non_null(obj);
                assert_int_equal(json_object_get_type(obj), cases[i].type);
        }
}

static void parse_gives_null_for_json_null(void **state) {
        struct json_object *obj = (struct json_object *) 1;

        assert_int_equal(parse("null", &obj), 0);
        assert_null(obj);
        assert_int_equal(parse(" null ", &obj), 0);
        assert_null(obj);
}

static void parse_reads_only_size_bytes(void **state) {
        _cleanup_(json_object_putp) struct json_object *number = NULL;
        _cleanup_(json_object_putp) struct json_object *object = NULL;
        /* No NUL terminator right after the value. */
        const char buf[] = {'1', '2', '3', '4', '5', '6'};

        assert_int_equal(haven_json_parse(buf, 3, BODY_MAX, &number), 0);
        assert_int_equal(json_object_get_int64(number), 123);
        assert_int_equal(haven_json_parse("{}garbage", 2, BODY_MAX, &object),
                         0);
        assert_true(json_object_is_type(object, json_type_object));
}

static void parse_rejects_trailing_garbage(void **state) {
        static const char *const texts[] = {
                "{} x", "{}{}",       "[1]]",           "1 2",    "\"a\" \"b\"",
                "{},",  "true false", "{\"a\":1}\n\nx", "null x",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                assert_parse_fails(texts[i], -EBADMSG);
}

static void parse_rejects_truncated_text(void **state) {
        static const char *const texts[] = {
                "{\"a\":", "{\"a\":1", "[1,2", "\"abc",  "tru",
                "-",       "{",        "[",    "{\"a\"", "\"\\",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                assert_parse_fails(texts[i], -EBADMSG);
}

static void parse_rejects_empty_text(void **state) {
        struct json_object *obj = NULL;

        assert_int_equal(haven_json_parse(NULL, 0, BODY_MAX, &obj), -EBADMSG);
        assert_int_equal(haven_json_parse("", 0, BODY_MAX, &obj), -EBADMSG);
        assert_parse_fails("   \n\t", -EBADMSG);
        assert_null(obj);
}

/* depth nested arrays around "1" (or around nothing when empty). */
static char *nested_arrays(unsigned depth, bool empty) {
        char *s = malloc(depth * 2 + 2);

        assert_non_null(s);
        memset(s, '[', depth);
        strcpy(s + depth, empty ? "" : "1");
        memset(s + strlen(s), ']', depth);
        s[depth * 2 + (empty ? 0 : 1)] = '\0';
        return s;
}

static void parse_limits_nesting_to_depth_max(void **state) {
        for (int empty = 0; empty <= 1; empty++) {
                _cleanup_free_ char *ok =
                        nested_arrays(HAVEN_JSON_DEPTH_MAX, empty);
                _cleanup_free_ char *deep =
                        nested_arrays(HAVEN_JSON_DEPTH_MAX + 1, empty);
                _cleanup_(json_object_putp) struct json_object *obj = NULL;

                assert_int_equal(parse(ok, &obj), 0);
                assert_true(json_object_is_type(obj, json_type_array));
                assert_parse_fails(deep, -EBADMSG);
        }

        /* Objects count the same; brackets inside strings do not count. */
        {
                char deep[HAVEN_JSON_DEPTH_MAX * 8 + 16] = "";
                char brackets[200];
                char in_string[256];
                _cleanup_(json_object_putp) struct json_object *obj = NULL;

                for (int i = 0; i <= HAVEN_JSON_DEPTH_MAX; i++)
                        strcat(deep, "{\"a\":");
                strcat(deep, "1");
                for (int i = 0; i <= HAVEN_JSON_DEPTH_MAX; i++)
                        strcat(deep, "}");
                assert_parse_fails(deep, -EBADMSG);

                memset(brackets, '[', sizeof brackets - 1);
                brackets[sizeof brackets - 1] = '\0';
                snprintf(in_string, sizeof in_string, "\"%s\"", brackets);
                assert_int_equal(parse(in_string, &obj), 0);
        }
}

static void parse_rejects_oversized_text(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        struct json_object *none = NULL;
        const char *text = "{\"name\": \"web1\"}";
        size_t size = strlen(text);

        assert_int_equal(haven_json_parse(text, size, size - 1, &none), -E2BIG);
        assert_null(none);
        assert_int_equal(haven_json_parse(text, size, 0, &none), -E2BIG);
        assert_int_equal(haven_json_parse(text, size, size, &obj), 0);
        assert_non_null(obj);
}

static void parse_rejects_nul_bytes_and_nul_escapes(void **state) {
        static const struct {
                const char *text;
                size_t size;
        } raw[] = {
                {"{\"a\":\"x\0y\"}", 11},
                {"{}\0", 3},
                {"\0", 1},
                {"1\0", 2},
        };
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        struct json_object *none = NULL;

        for (size_t i = 0; i < ELEMENTSOF(raw); i++)
                assert_int_equal(haven_json_parse(raw[i].text, raw[i].size,
                                                  BODY_MAX, &none),
                                 -EBADMSG);
        assert_null(none);

        assert_parse_fails("{\"a\":\"x\\u0000y\"}", -EBADMSG);
        assert_parse_fails("{\"a\\u0000b\":1}", -EBADMSG);
        /* An escaped backslash followed by "u0000" is harmless text. */
        assert_int_equal(parse("\"\\\\u0000\"", &obj), 0);
        assert_string_equal(json_object_get_string(obj), "\\u0000");
}

static void parse_rejects_invalid_utf8(void **state) {
        assert_parse_fails("\"\xff\"", -EBADMSG);
        assert_parse_fails("{\"a\":\"\xc3\"}", -EBADMSG);
        assert_parse_fails("{\"\xe2\x82\":1}", -EBADMSG);
}

static void parse_rejects_what_json_does_not_allow(void **state) {
        static const char *const texts[] = {
                "'abc'",     "[1,]",  "{\"a\":1,}", "NaN",   "Infinity",
                "-Infinity", "[NaN]", "01",         "[-01]", "/*c*/1",
                "1 // c",    "{a:1}", "TRUE",       "nul",   ".5",
                "+1",        "-",     "[00]",       "-00",
                /* Raw control characters inside strings. */
                "\"tab\there\"", "{\"a\":\"line\nbreak\"}",
                "{\"a\x01\":1}",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                assert_parse_fails(texts[i], -EBADMSG);
}

static void parse_rejects_integers_beyond_int64(void **state) {
        static const char *const texts[] = {
                "99999999999999999999",
                "-99999999999999999999",
                "9223372036854775808",
                "-9223372036854775809",
                "18446744073709551615",
                "{\"vcpus\": 99999999999999999999}",
                "[1, 2, 123456789012345678901234567890]",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                assert_parse_fails(texts[i], -EBADMSG);
}

/* ==== Getters ==== */

static const char *const sample =
        "{\"name\": \"web1\", \"vcpus\": 4, \"ratio\": 1.5, \"count\": \"5\","
        " \"on\": true, \"zero\": 0, \"disks\": [1], \"opts\": {\"a\": 1},"
        " \"gone\": null, \"big\": -9223372036854775808}";

static void getters_return_values_of_the_right_type(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        struct json_object *o;
        const char *s;
        int64_t i;
        bool b;

        assert_int_equal(parse(sample, &obj), 0);

        assert_int_equal(haven_json_get_string(obj, "name", &s), 0);
        assert_string_equal(s, "web1");
        assert_int_equal(haven_json_get_int64(obj, "vcpus", &i), 0);
        assert_int_equal(i, 4);
        assert_int_equal(haven_json_get_int64(obj, "big", &i), 0);
        assert_true(i == INT64_MIN);
        assert_int_equal(haven_json_get_bool(obj, "on", &b), 0);
        assert_true(b);
        assert_int_equal(haven_json_get_array(obj, "disks", &o), 0);
        assert_int_equal(json_object_array_length(o), 1);
        assert_int_equal(haven_json_get_object(obj, "opts", &o), 0);
        assert_int_equal(json_object_object_length(o), 1);
}

static void getters_report_missing_or_null_keys_as_enoent(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        struct json_object *o;
        const char *s;
        int64_t i;
        bool b;

        assert_int_equal(parse(sample, &obj), 0);

        assert_int_equal(haven_json_get_string(obj, "missing", &s), -ENOENT);
        assert_int_equal(haven_json_get_string(obj, "gone", &s), -ENOENT);
        assert_int_equal(haven_json_get_int64(obj, "gone", &i), -ENOENT);
        assert_int_equal(haven_json_get_bool(obj, "missing", &b), -ENOENT);
        assert_int_equal(haven_json_get_object(obj, "gone", &o), -ENOENT);
        assert_int_equal(haven_json_get_array(obj, "missing", &o), -ENOENT);
}

static void getters_report_other_types_as_einval(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        _cleanup_(json_object_putp) struct json_object *array = NULL;
        struct json_object *o;
        const char *s;
        int64_t i;
        bool b;

        assert_int_equal(parse(sample, &obj), 0);

        /* A double, a string of digits and a boolean are not integers. */
        assert_int_equal(haven_json_get_int64(obj, "ratio", &i), -EINVAL);
        assert_int_equal(haven_json_get_int64(obj, "count", &i), -EINVAL);
        assert_int_equal(haven_json_get_int64(obj, "on", &i), -EINVAL);
        assert_int_equal(haven_json_get_string(obj, "vcpus", &s), -EINVAL);
        assert_int_equal(haven_json_get_bool(obj, "zero", &b), -EINVAL);
        assert_int_equal(haven_json_get_bool(obj, "name", &b), -EINVAL);
        assert_int_equal(haven_json_get_object(obj, "disks", &o), -EINVAL);
        assert_int_equal(haven_json_get_array(obj, "opts", &o), -EINVAL);

        /* Looking a key up in something that is not an object. */
        assert_int_equal(parse("[1]", &array), 0);
        assert_int_equal(haven_json_get_int64(array, "0", &i), -EINVAL);
        assert_int_equal(haven_json_get_string(NULL, "name", &s), -EINVAL);
}

static void get_int64_refuses_values_beyond_int64(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj =
                json_object_new_object();
        int64_t i;

        assert_non_null(obj);
        assert_int_equal(
                haven_json_add(obj, "huge", json_object_new_uint64(UINT64_MAX)),
                0);
        assert_int_equal(
                haven_json_add(obj, "edge", json_object_new_uint64(INT64_MAX)),
                0);

        assert_int_equal(haven_json_get_int64(obj, "huge", &i), -ERANGE);
        assert_int_equal(haven_json_get_int64(obj, "edge", &i), 0);
        assert_true(i == INT64_MAX);
}

static void get_string_refuses_embedded_nul(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj =
                json_object_new_object();
        const char *s;

        assert_non_null(obj);
        assert_int_equal(haven_json_add(obj, "name",
                                        json_object_new_string_len("a\0b", 3)),
                         0);
        assert_int_equal(haven_json_get_string(obj, "name", &s), -EINVAL);
}

static void builders_make_strings_and_null(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj =
                json_object_new_object();
        struct json_object *value;
        const char *s;

        assert_non_null(obj);
        assert_null(haven_json_string_or_null(NULL));
        assert_int_equal(
                haven_json_add(obj, "a", haven_json_string_or_null("x")), 0);
        assert_int_equal(
                haven_json_add(obj, "b", haven_json_string_or_null(NULL)), 0);
        assert_int_equal(haven_json_get_string(obj, "a", &s), 0);
        assert_string_equal(s, "x");
        assert_true(json_object_object_get_ex(obj, "b", &value));
        assert_null(value);
        assert_string_equal(
                json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN),
                "{\"a\":\"x\",\"b\":null}");
}

/* ==== Field policy ==== */

static const char *const vm_states[] = {"stopped", "running", NULL};

static const struct haven_json_field vm_policy[] = {
        {.name = "name",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = 8},
        {.name = "vcpus",
         .kind = HAVEN_JSON_INT,
         .required = true,
         .min = 1,
         .max = 64},
        {.name = "autostart", .kind = HAVEN_JSON_BOOL},
        {.name = "state", .kind = HAVEN_JSON_ENUM, .choices = vm_states},
        {.name = "disks", .kind = HAVEN_JSON_ARRAY, .min = 0, .max = 2},
        {.name = "nics", .kind = HAVEN_JSON_ARRAY, .min = 1, .max = 4},
        {.name = "options", .kind = HAVEN_JSON_OBJECT, .nullable = true},
        {.name = "description", .kind = HAVEN_JSON_STRING, .nullable = true},
        {.name = "offset", .kind = HAVEN_JSON_INT},
};

/* Parses text (which must be valid) and checks it against vm_policy. */
static int check_text(const char *text, struct haven_json_error *error) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;

        if (parse(text, &obj) < 0)
                fail_msg("test body '%s' does not parse", text);
        return haven_json_check(obj, vm_policy, ELEMENTSOF(vm_policy), error);
}

static void assert_accepted(const char *text) {
        struct haven_json_error error;

        if (check_text(text, &error) != 0)
                fail_msg("'%s' was rejected: %s", text, error.message);
}

static void assert_rejected(const char *text, const char *field,
                            const char *message) {
        struct haven_json_error error;

        if (check_text(text, &error) != -EINVAL)
                fail_msg("'%s' was accepted", text);
        if (field)
                assert_string_equal(error.field, field);
        else
                assert_null(error.field);
        assert_string_equal(error.message, message);
}

static void policy_accepts_valid_bodies(void **state) {
        assert_accepted("{\"name\": \"web1\", \"vcpus\": 2}");
        assert_accepted("{\"name\": \"w\", \"vcpus\": 1, \"autostart\": false,"
                        " \"state\": \"running\", \"disks\": [],"
                        " \"nics\": [1, 2, 3, 4], \"options\": {\"x\": 1},"
                        " \"description\": \"\", \"offset\": 0}");
        assert_accepted("{\"name\": \"abcdefgh\", \"vcpus\": 64,"
                        " \"disks\": [\"a\", \"b\"]}");
        assert_accepted("{\"vcpus\": 2, \"name\": \"web1\","
                        " \"offset\": -9223372036854775808}");
        assert_accepted("{\"name\": \"web1\", \"vcpus\": 2,"
                        " \"offset\": 9223372036854775807}");
}

static void policy_rejects_missing_required_field(void **state) {
        assert_rejected("{\"vcpus\": 2}", "name", "is required");
        assert_rejected("{\"name\": \"web1\"}", "vcpus", "is required");
        assert_rejected("{}", "name", "is required");
}

static void policy_rejects_unknown_fields(void **state) {
        struct haven_json_error error;
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        char text[512];

        assert_rejected("{\"name\": \"web1\", \"vcpus\": 2, \"foo\": 1}", NULL,
                        "unknown field \"foo\"");
        /* A misspelt field is named as such, not as the missing one. */
        assert_rejected("{\"nmae\": \"web1\", \"vcpus\": 2}", NULL,
                        "unknown field \"nmae\"");
        /* Field names are case-sensitive. */
        assert_rejected("{\"Name\": \"web1\", \"vcpus\": 2}", NULL,
                        "unknown field \"Name\"");
        /* Quotes and control characters do not reach the message. */
        assert_rejected("{\"a\\\"b\\nc\\\\\": 1}", NULL,
                        "unknown field \"a?b?c?\"");

        /* A long name is cut (on a character boundary) in the message. The
         * field stays NULL: the key dies with obj, the error may outlive it. */
        snprintf(text, sizeof text, "{\"%s\xc3\xa9%s\": 1}",
                 "01234567890123456789012345678901234567890123456",
                 "0123456789012345678901234567890123456789");
        assert_int_equal(parse(text, &obj), 0);
        assert_int_equal(
                haven_json_check(obj, vm_policy, ELEMENTSOF(vm_policy), &error),
                -EINVAL);
        assert_null(error.field);
        assert_string_equal(error.message,
                            "unknown field \"0123456789012345678901234567890"
                            "1234567890123456...\"");

        /* An empty policy accepts only an empty object. */
        assert_int_equal(haven_json_check(obj, NULL, 0, NULL), -EINVAL);
        json_object_put(TAKE_PTR(obj));
        assert_int_equal(parse("{}", &obj), 0);
        assert_int_equal(haven_json_check(obj, NULL, 0, NULL), 0);
}

static void policy_rejects_wrong_kinds(void **state) {
        assert_rejected("{\"name\": 5, \"vcpus\": 2}", "name",
                        "must be a string");
        assert_rejected("{\"name\": [\"web1\"], \"vcpus\": 2}", "name",
                        "must be a string");
        assert_rejected("{\"name\": \"web1\", \"vcpus\": \"2\"}", "vcpus",
                        "must be an integer");
        assert_rejected("{\"name\": \"web1\", \"vcpus\": 1.5}", "vcpus",
                        "must be an integer");
        assert_rejected("{\"name\": \"web1\", \"vcpus\": 2.0}", "vcpus",
                        "must be an integer");
        assert_rejected("{\"name\": \"web1\", \"vcpus\": 2e0}", "vcpus",
                        "must be an integer");
        assert_rejected("{\"name\": \"web1\", \"vcpus\": true}", "vcpus",
                        "must be an integer");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"autostart\": 1}",
                        "autostart", "must be true or false");
        assert_rejected(
                "{\"name\": \"w\", \"vcpus\": 2, \"autostart\": \"true\"}",
                "autostart", "must be true or false");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"disks\": {}}",
                        "disks", "must be an array");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"disks\": \"a\"}",
                        "disks", "must be an array");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"options\": []}",
                        "options", "must be an object");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"options\": 1.5}",
                        "options", "must be an object");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"state\": 1}",
                        "state", "must be one of \"stopped\", \"running\"");
}

static void policy_rejects_null_unless_nullable(void **state) {
        assert_rejected("{\"name\": null, \"vcpus\": 2}", "name",
                        "must not be null");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"autostart\": null}",
                        "autostart", "must not be null");
        assert_accepted("{\"name\": \"w\", \"vcpus\": 2, \"description\": null,"
                        " \"options\": null}");
}

static void policy_rejects_integers_out_of_range(void **state) {
        assert_rejected("{\"name\": \"w\", \"vcpus\": 0}", "vcpus",
                        "must be at least 1");
        assert_rejected("{\"name\": \"w\", \"vcpus\": -1}", "vcpus",
                        "must be at least 1");
        assert_rejected("{\"name\": \"w\", \"vcpus\": -9223372036854775808}",
                        "vcpus", "must be at least 1");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 65}", "vcpus",
                        "must be at most 64");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 9223372036854775807}",
                        "vcpus", "must be at most 64");
}

static void policy_rejects_integers_beyond_int64(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        _cleanup_(json_object_putp) struct json_object *saturated = NULL;
        struct haven_json_error error;

        /* haven_json_parse refuses the text outright... */
        assert_parse_fails("{\"name\": \"w\", \"vcpus\": 99999999999999999999}",
                           -EBADMSG);

        /* ...and the check does not trust json-c's saturated values in an
         * object that came from elsewhere. */
        assert_int_equal(parse("{\"name\": \"w\", \"vcpus\": 2}", &obj), 0);
        assert_int_equal(haven_json_add(obj, "offset",
                                        json_object_new_uint64(UINT64_MAX)),
                         0);
        assert_int_equal(
                haven_json_check(obj, vm_policy, ELEMENTSOF(vm_policy), &error),
                -EINVAL);
        assert_string_equal(error.field, "offset");
        assert_string_equal(error.message,
                            "must be at most 9223372036854775807");

        saturated = json_tokener_parse(
                "{\"name\": \"w\", \"vcpus\": 99999999999999999999}");
        assert_non_null(saturated);
        assert_int_equal(haven_json_check(saturated, vm_policy,
                                          ELEMENTSOF(vm_policy), &error),
                         -EINVAL);
        assert_string_equal(error.message, "must be at most 64");
}

static void policy_counts_string_length_in_characters(void **state) {
        assert_rejected("{\"name\": \"\", \"vcpus\": 2}", "name",
                        "must be at least 1 character");
        assert_rejected("{\"name\": \"abcdefghi\", \"vcpus\": 2}", "name",
                        "must be at most 8 characters");
        /* Eight two-byte characters (16 bytes) fit; nine do not. */
        assert_accepted("{\"name\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\", \"vcpus\": 2}");
        assert_rejected("{\"name\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\", \"vcpus\": 2}",
                        "name", "must be at most 8 characters");
        /* An escape is one character. */
        assert_accepted("{\"name\": \"\\u00e9\\n\\\"abcde\", \"vcpus\": 2}");
}

static void policy_rejects_strings_with_embedded_nul(void **state) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        struct haven_json_error error;

        assert_int_equal(parse("{\"vcpus\": 2, \"state\": \"stopped\"}", &obj),
                         0);
        assert_int_equal(haven_json_add(obj, "name",
                                        json_object_new_string_len("a\0b", 3)),
                         0);
        assert_int_equal(
                haven_json_check(obj, vm_policy, ELEMENTSOF(vm_policy), &error),
                -EINVAL);
        assert_string_equal(error.message, "must not contain NUL characters");

        /* "running\0x" must not pass as "running". */
        assert_int_equal(
                haven_json_add(obj, "name", json_object_new_string("a")), 0);
        assert_int_equal(
                haven_json_add(obj, "state",
                               json_object_new_string_len("running\0x", 9)),
                0);
        assert_int_equal(
                haven_json_check(obj, vm_policy, ELEMENTSOF(vm_policy), &error),
                -EINVAL);
        assert_string_equal(error.field, "state");
}

static void policy_rejects_enum_values_outside_choices(void **state) {
        assert_accepted(
                "{\"name\": \"w\", \"vcpus\": 2, \"state\": \"stopped\"}");
        assert_rejected(
                "{\"name\": \"w\", \"vcpus\": 2, \"state\": \"paused\"}",
                "state", "must be one of \"stopped\", \"running\"");
        assert_rejected(
                "{\"name\": \"w\", \"vcpus\": 2, \"state\": \"Running\"}",
                "state", "must be one of \"stopped\", \"running\"");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"state\": \"\"}",
                        "state", "must be one of \"stopped\", \"running\"");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"state\": null}",
                        "state", "must not be null");
}

static void policy_limits_array_element_count(void **state) {
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"disks\": [1, 2, 3]}",
                        "disks", "must have at most 2 elements");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2, \"nics\": []}", "nics",
                        "must have at least 1 element");
        assert_rejected("{\"name\": \"w\", \"vcpus\": 2,"
                        " \"nics\": [1, 2, 3, 4, 5]}",
                        "nics", "must have at most 4 elements");
}

static void policy_rejects_a_body_that_is_not_an_object(void **state) {
        static const char *const texts[] = {"[]", "[{}]", "\"x\"", "5", "true"};
        struct haven_json_error error;

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                assert_rejected(texts[i], NULL,
                                "the body must be a JSON object");

        assert_int_equal(haven_json_check(NULL, vm_policy,
                                          ELEMENTSOF(vm_policy), &error),
                         -EINVAL);
        assert_null(error.field);
        assert_string_equal(error.message, "the body must be a JSON object");
}

static void policy_check_works_without_an_error_buffer(void **state) {
        _cleanup_(json_object_putp) struct json_object *good = NULL;
        _cleanup_(json_object_putp) struct json_object *bad = NULL;

        assert_int_equal(parse("{\"name\": \"w\", \"vcpus\": 2}", &good), 0);
        assert_int_equal(parse("{\"vcpus\": 2}", &bad), 0);
        assert_int_equal(
                haven_json_check(good, vm_policy, ELEMENTSOF(vm_policy), NULL),
                0);
        assert_int_equal(
                haven_json_check(bad, vm_policy, ELEMENTSOF(vm_policy), NULL),
                -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(parse_accepts_one_value_of_any_type),
                cmocka_unit_test(parse_gives_null_for_json_null),
                cmocka_unit_test(parse_reads_only_size_bytes),
                cmocka_unit_test(parse_rejects_trailing_garbage),
                cmocka_unit_test(parse_rejects_truncated_text),
                cmocka_unit_test(parse_rejects_empty_text),
                cmocka_unit_test(parse_limits_nesting_to_depth_max),
                cmocka_unit_test(parse_rejects_oversized_text),
                cmocka_unit_test(parse_rejects_nul_bytes_and_nul_escapes),
                cmocka_unit_test(parse_rejects_invalid_utf8),
                cmocka_unit_test(parse_rejects_what_json_does_not_allow),
                cmocka_unit_test(parse_rejects_integers_beyond_int64),
                cmocka_unit_test(getters_return_values_of_the_right_type),
                cmocka_unit_test(getters_report_missing_or_null_keys_as_enoent),
                cmocka_unit_test(getters_report_other_types_as_einval),
                cmocka_unit_test(get_int64_refuses_values_beyond_int64),
                cmocka_unit_test(get_string_refuses_embedded_nul),
                cmocka_unit_test(builders_make_strings_and_null),
                cmocka_unit_test(policy_accepts_valid_bodies),
                cmocka_unit_test(policy_rejects_missing_required_field),
                cmocka_unit_test(policy_rejects_unknown_fields),
                cmocka_unit_test(policy_rejects_wrong_kinds),
                cmocka_unit_test(policy_rejects_null_unless_nullable),
                cmocka_unit_test(policy_rejects_integers_out_of_range),
                cmocka_unit_test(policy_rejects_integers_beyond_int64),
                cmocka_unit_test(policy_counts_string_length_in_characters),
                cmocka_unit_test(policy_rejects_strings_with_embedded_nul),
                cmocka_unit_test(policy_rejects_enum_values_outside_choices),
                cmocka_unit_test(policy_limits_array_element_count),
                cmocka_unit_test(policy_rejects_a_body_that_is_not_an_object),
                cmocka_unit_test(policy_check_works_without_an_error_buffer),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
