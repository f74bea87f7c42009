/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON helpers over json-c: bounded parsing (size and depth), typed getters
 * that say what was wrong, and validation of an object against a field
 * policy (the API and the local socket validate every body this way before a
 * handler sees it). Must not: log above debug, or accept unknown fields.
 */
#pragma once

#include <json-c/json.h>

#include "haven/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put)
/* _cleanup_(json_object_putp) */

#define HAVEN_JSON_DEPTH_MAX 32

/* Parses exactly one JSON value from text[0..size) (no trailing garbage).
 * Returns 0 and *ret (a new reference), -E2BIG if size > max_size, -EBADMSG if
 * not valid JSON or nested deeper than HAVEN_JSON_DEPTH_MAX. text need not be
 * NUL-terminated. Strict JSON only: also -EBADMSG for empty or
 * whitespace-only text, NUL bytes, a \u0000 escape (every string stays a C
 * string), invalid UTF-8, NaN/Infinity, and integers outside int64 (json-c
 * would silently saturate them). The text "null" gives 0 and *ret == NULL,
 * which is how json-c represents JSON null. */
int haven_json_parse(const char *text, size_t size, size_t max_size,
                     struct json_object **ret);

/* Typed getters. Return 0 and the value (strings, objects and arrays are
 * borrowed: they live as long as obj), -ENOENT if the key is missing (or
 * null), -EINVAL if it has another type or obj is not an object. An INT must
 * be a JSON integer (1.5, "5" and true are -EINVAL); one beyond int64 (only
 * possible when obj did not come from haven_json_parse) is -ERANGE. A string
 * with an embedded NUL is -EINVAL. */
int haven_json_get_string(struct json_object *obj, const char *key,
                          const char **ret);
int haven_json_get_int64(struct json_object *obj, const char *key,
                         int64_t *ret);
int haven_json_get_bool(struct json_object *obj, const char *key, bool *ret);
int haven_json_get_object(struct json_object *obj, const char *key,
                          struct json_object **ret);
int haven_json_get_array(struct json_object *obj, const char *key,
                         struct json_object **ret);

/* Adds key → value to obj, taking ownership of value even on failure.
 * Returns 0 or -ENOMEM. */
int haven_json_add(struct json_object *obj, const char *key,
                   struct json_object *value);
/* Builders that return NULL only on -ENOMEM. Exception: json-c represents
 * JSON null as NULL, so haven_json_string_or_null(NULL) returns NULL (no
 * error); NULL for a non-NULL s means -ENOMEM. */
struct json_object *haven_json_string_or_null(const char *s);

/* ==== Field policy ==== */

enum haven_json_kind {
        HAVEN_JSON_STRING,
        HAVEN_JSON_INT,
        HAVEN_JSON_BOOL,
        HAVEN_JSON_OBJECT,
        HAVEN_JSON_ARRAY,
        HAVEN_JSON_ENUM,   /* string that must be one of `choices` */
        HAVEN_JSON_ANY,    /* any JSON value (null only if nullable) */
        _HAVEN_JSON_KIND_MAX,
        _HAVEN_JSON_KIND_INVALID = -EINVAL,
};

struct haven_json_field {
        const char *name;
        enum haven_json_kind kind;
        bool required;
        bool nullable;          /* JSON null is accepted */
        int64_t min, max;       /* INT: value range; STRING: length range
                                 * in characters (UTF-8 code points, not
                                 * bytes); ARRAY: element count. Both 0 = no
                                 * limit; otherwise both bounds apply
                                 * (INT64_MAX for "no upper bound"). Unused
                                 * for BOOL, OBJECT and ENUM. */
        const char *const *choices; /* ENUM: NULL-terminated */
};

struct haven_json_error {
        const char *field;  /* the offending field name (static or policy);
                             * NULL for an unknown field (the message names
                             * it) or a body that is not an object */
        char message[160];  /* human-readable, safe to log: with a field,
                             * what is wrong with it ("must be at most 64
                             * characters"; show as "\"%s\": %s"); without,
                             * the whole story ("unknown field \"foo\"") */
};

/* Checks obj against the policy: obj must be an object; every required field
 * present; no field outside the policy; each field of the right kind and
 * within its range/choices. Returns 0, or -EINVAL and fills *ret_error
 * (may be NULL) for the first problem: unknown fields first (in obj's
 * order), then the policy's fields in policy order. Only the top level is
 * checked; OBJECT and ARRAY contents are the handler's to validate. */
int haven_json_check(struct json_object *obj,
                     const struct haven_json_field *policy, size_t n,
                     struct haven_json_error *ret_error);
