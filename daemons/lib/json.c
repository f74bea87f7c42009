/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON helpers behind json.h: bounded, strict parsing of outside input (size,
 * depth, exactly one value), typed getters, and the field-policy check every
 * API and socket body passes before a handler sees it. Must not: log above
 * debug, keep state between calls, or let through what a policy omits.
 */
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>

#include "haven/json.h"
#include "haven/text.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_tokener *, json_tokener_free)

/* ==== Parsing ==== */

static bool is_json_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_number_char(char c) {
        return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
               c == 'e' || c == 'E';
}

/* Whether the integer literal s[0..n) (optional '-', digits) fits in int64.
 * Only called on tokens without '.', 'e' or 'E' and without leading zeros. */
static bool integer_fits_int64(const char *s, size_t n) {
        bool negative = false;

        if (n > 0 && s[0] == '-') {
                negative = true;
                s++;
                n--;
        }
        if (n < 19)
                return true;
        if (n > 19)
                return false;
        return memcmp(s,
                      negative ? "9223372036854775808" : "9223372036854775807",
                      19) <= 0;
}

/* Checks, on the raw text, what json-c lets through or cannot report exactly:
 * NUL bytes and \u0000 escapes (strings must stay C strings), nesting deeper
 * than HAVEN_JSON_DEPTH_MAX, integers outside int64 (json-c saturates them
 * without saying so), leading zeros, unescaped control characters in
 * strings, NaN and Infinity. Exact for valid JSON;
 * for anything else it may pass or fail and json-c decides. Returns 0 or
 * -EBADMSG. */
static int json_prescan(const char *text, size_t size) {
        bool in_string = false;
        unsigned depth = 0;

        if (memchr(text, '\0', size))
                return -EBADMSG;

        for (size_t i = 0; i < size; i++) {
                char c = text[i];

                if (in_string) {
                        if ((unsigned char) c < 0x20)
                                return -EBADMSG; /* must be escaped */
                        if (c == '"')
                                in_string = false;
                        else if (c == '\\') {
                                if (size - i >= 6 && text[i + 1] == 'u' &&
                                    memcmp(text + i + 2, "0000", 4) == 0)
                                        return -EBADMSG;
                                i++; /* the escaped character */
                        }
                        continue;
                }

                switch (c) {
                case '"':
                        in_string = true;
                        break;
                case '[':
                case '{':
                        if (++depth > HAVEN_JSON_DEPTH_MAX)
                                return -EBADMSG;
                        break;
                case ']':
                case '}':
                        if (depth > 0)
                                depth--;
                        break;
                case 'N': /* NaN */
                case 'I': /* Infinity */
                        return -EBADMSG;
                case '-':
                case '0' ... '9': {
                        bool integer = true;
                        size_t j = i, digits = c == '-' ? i + 1 : i;

                        /* Leading zeros ("01", "-01"): json-c lets the
                         * negative ones through. */
                        if (size - digits >= 2 && text[digits] == '0' &&
                            text[digits + 1] >= '0' && text[digits + 1] <= '9')
                                return -EBADMSG;

                        for (; j < size && is_number_char(text[j]); j++)
                                if (text[j] == '.' || text[j] == 'e' ||
                                    text[j] == 'E')
                                        integer = false;
                        if (integer && !integer_fits_int64(text + i, j - i))
                                return -EBADMSG;
                        i = j - 1;
                        break;
                }
                default:
                        break;
                }
        }
        return 0;
}

int haven_json_parse(const char *text, size_t size, size_t max_size,
                     struct json_object **ret) {
        _cleanup_(json_tokener_freep) struct json_tokener *tok = NULL;
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        enum json_tokener_error error;
        size_t end;
        int r;

        assert(text || size == 0);
        assert(ret);

        if (size > max_size || size > INT_MAX)
                return -E2BIG;
        if (size == 0)
                return -EBADMSG;

        r = json_prescan(text, size);
        if (r < 0)
                return r;

        /* json-c counts the value inside the innermost container as a level
         * too; the prescan above enforces the exact limit. */
        tok = json_tokener_new_ex(HAVEN_JSON_DEPTH_MAX + 1);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                            JSON_TOKENER_VALIDATE_UTF8);

        obj = json_tokener_parse_ex(tok, text, (int) size);
        error = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        if (error == json_tokener_continue) {
                /* json-c cannot know that a top-level number or literal (or
                 * the text) ended: hand it the terminating NUL. Anything
                 * still open, such as "[1" or "\"abc", fails now. */
                if (end != size)
                        return -EBADMSG;
                obj = json_tokener_parse_ex(tok, "", 1);
                error = json_tokener_get_error(tok);
                end = size;
        }
        if (error != json_tokener_success)
                return -EBADMSG;

        /* STRICT refuses trailing characters already; do not depend on it. */
        for (; end < size; end++)
                if (!is_json_space(text[end]))
                        return -EBADMSG;

        *ret = TAKE_PTR(obj);
        return 0;
}

/* ==== Getters and builders ==== */

/* Looks up key in obj and checks its type. Returns 0 and *ret (borrowed),
 * -ENOENT if missing or null, -EINVAL if obj is no object or the value has
 * another type. */
static int get_typed(struct json_object *obj, const char *key, json_type type,
                     struct json_object **ret) {
        struct json_object *value;

        assert(key);
        assert(ret);

        if (!json_object_is_type(obj, json_type_object))
                return -EINVAL;
        if (!json_object_object_get_ex(obj, key, &value) || !value)
                return -ENOENT;
        if (!json_object_is_type(value, type))
                return -EINVAL;

        *ret = value;
        return 0;
}

/* The int64 value of a json_type_int object, or -ERANGE: json-c stores values
 * above INT64_MAX as uint64 and json_object_get_int64() saturates them. */
static int int64_value(struct json_object *value, int64_t *ret) {
        int64_t i = json_object_get_int64(value);

        if (i == INT64_MAX &&
            json_object_get_uint64(value) != (uint64_t) INT64_MAX)
                return -ERANGE;
        *ret = i;
        return 0;
}

static bool string_has_nul(struct json_object *value) {
        return strlen(json_object_get_string(value)) !=
               (size_t) json_object_get_string_len(value);
}

int haven_json_get_string(struct json_object *obj, const char *key,
                          const char **ret) {
        struct json_object *value;
        int r;

        r = get_typed(obj, key, json_type_string, &value);
        if (r < 0)
                return r;
        if (string_has_nul(value))
                return -EINVAL;

        *ret = json_object_get_string(value);
        return 0;
}

int haven_json_get_int64(struct json_object *obj, const char *key,
                         int64_t *ret) {
        struct json_object *value;
        int r;

        r = get_typed(obj, key, json_type_int, &value);
        if (r < 0)
                return r;

        return int64_value(value, ret);
}

int haven_json_get_bool(struct json_object *obj, const char *key, bool *ret) {
        struct json_object *value;
        int r;

        r = get_typed(obj, key, json_type_boolean, &value);
        if (r < 0)
                return r;

        *ret = json_object_get_boolean(value);
        return 0;
}

int haven_json_get_object(struct json_object *obj, const char *key,
                          struct json_object **ret) {
        return get_typed(obj, key, json_type_object, ret);
}

int haven_json_get_array(struct json_object *obj, const char *key,
                         struct json_object **ret) {
        return get_typed(obj, key, json_type_array, ret);
}

int haven_json_add(struct json_object *obj, const char *key,
                   struct json_object *value) {
        assert(json_object_is_type(obj, json_type_object));
        assert(key);

        /* json-c keeps no reference when it fails, so drop ours. */
        if (json_object_object_add(obj, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

struct json_object *haven_json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

/* ==== Field policy ==== */

/* Fills *error (if not NULL) with field and the formatted message. Returns
 * -EINVAL. */
_printf_(3, 4) static int policy_error(struct haven_json_error *error,
                                       const char *field, const char *format,
                                       ...) {
        va_list ap;

        if (!error)
                return -EINVAL;

        error->field = field;
        va_start(ap, format);
        (void) vsnprintf(error->message, sizeof error->message, format, ap);
        va_end(ap);
        return -EINVAL;
}

/* Characters (UTF-8 code points) in s[0..n): bytes that do not continue a
 * sequence. haven_json_parse() only lets valid UTF-8 through. */
static int64_t utf8_length(const char *s, size_t n) {
        int64_t k = 0;

        for (size_t i = 0; i < n; i++)
                if (((unsigned char) s[i] & 0xC0) != 0x80)
                        k++;
        return k;
}

static bool has_limits(const struct haven_json_field *f) {
        return f->min != 0 || f->max != 0;
}

static const char *plural(int64_t n) {
        return n == 1 ? "" : "s";
}

static int check_enum(struct json_object *value,
                      const struct haven_json_field *f,
                      struct haven_json_error *error) {
        char list[sizeof error->message] = "";
        size_t used = 0;

        assert(f->choices);

        if (json_object_is_type(value, json_type_string) &&
            !string_has_nul(value))
                for (const char *const *c = f->choices; *c; c++)
                        if (streq(json_object_get_string(value), *c))
                                return 0;

        for (const char *const *c = f->choices; *c && used < sizeof list; c++) {
                int k = snprintf(list + used, sizeof list - used, "%s\"%s\"",
                                 c == f->choices ? "" : ", ", *c);
                if (k < 0)
                        break;
                used += (size_t) k;
        }
        return policy_error(error, f->name, "must be one of %s", list);
}

/* Checks one present, non-null value against its field. Returns 0 or -EINVAL
 * with *error filled. */
static int check_value(struct json_object *value,
                       const struct haven_json_field *f,
                       struct haven_json_error *error) {
        const char *name = f->name;
        int64_t n;

        switch (f->kind) {
        case HAVEN_JSON_STRING:
                if (!json_object_is_type(value, json_type_string))
                        return policy_error(error, name, "must be a string");
                if (string_has_nul(value))
                        return policy_error(error, name,
                                            "must not contain NUL characters");
                if (!has_limits(f))
                        return 0;
                n = utf8_length(json_object_get_string(value),
                                (size_t) json_object_get_string_len(value));
                if (n < f->min)
                        return policy_error(error, name,
                                            "must be at least %" PRIi64
                                            " character%s",
                                            f->min, plural(f->min));
                if (n > f->max)
                        return policy_error(error, name,
                                            "must be at most %" PRIi64
                                            " character%s",
                                            f->max, plural(f->max));
                return 0;

        case HAVEN_JSON_INT: {
                int64_t max = has_limits(f) ? f->max : INT64_MAX;

                /* json_type_int only: 1.5, "5" and true are not integers. */
                if (!json_object_is_type(value, json_type_int))
                        return policy_error(error, name, "must be an integer");
                if (int64_value(value, &n) < 0 || n > max)
                        return policy_error(error, name,
                                            "must be at most %" PRIi64, max);
                if (has_limits(f) && n < f->min)
                        return policy_error(error, name,
                                            "must be at least %" PRIi64,
                                            f->min);
                return 0;
        }

        case HAVEN_JSON_BOOL:
                if (!json_object_is_type(value, json_type_boolean))
                        return policy_error(error, name,
                                            "must be true or false");
                return 0;

        case HAVEN_JSON_OBJECT:
                if (!json_object_is_type(value, json_type_object))
                        return policy_error(error, name, "must be an object");
                return 0;

        case HAVEN_JSON_ARRAY:
                if (!json_object_is_type(value, json_type_array))
                        return policy_error(error, name, "must be an array");
                if (!has_limits(f))
                        return 0;
                n = (int64_t) json_object_array_length(value);
                if (n < f->min)
                        return policy_error(error, name,
                                            "must have at least %" PRIi64
                                            " element%s",
                                            f->min, plural(f->min));
                if (n > f->max)
                        return policy_error(error, name,
                                            "must have at most %" PRIi64
                                            " element%s",
                                            f->max, plural(f->max));
                return 0;

        case HAVEN_JSON_ENUM:
                return check_enum(value, f, error);

        case HAVEN_JSON_ANY:
                return 0;

        default:
                assert(!"unknown haven_json_kind in policy");
                return -EINVAL;
        }
}

static const struct haven_json_field *
policy_find(const struct haven_json_field *policy, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(policy[i].name, name))
                        return policy + i;
        return NULL;
}

int haven_json_check(struct json_object *obj,
                     const struct haven_json_field *policy, size_t n,
                     struct haven_json_error *ret_error) {
        struct json_object_iterator it, end;
        int r;

        assert(policy || n == 0);

        if (ret_error)
                *ret_error = (struct haven_json_error){};

        if (!json_object_is_type(obj, json_type_object))
                return policy_error(ret_error, NULL,
                                    "the body must be a JSON object");

        /* Unknown fields first: a misspelt field is then reported as such
         * rather than as the required field it was meant to be. */
        it = json_object_iter_begin(obj);
        end = json_object_iter_end(obj);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
                const char *key = json_object_iter_peek_name(&it);
                char shown[HAVEN_TEXT_SHOWN_MAX + 4];

                if (policy_find(policy, n, key))
                        continue;
                /* No field: the key lives in obj, which the caller may
                 * free before it reports the error. */
                haven_text_shown(key, shown);
                return policy_error(ret_error, NULL, "unknown field \"%s\"",
                                    shown);
        }

        for (size_t i = 0; i < n; i++) {
                const struct haven_json_field *f = policy + i;
                struct json_object *value;

                assert(f->name);
                assert(f->kind >= 0 && f->kind < _HAVEN_JSON_KIND_MAX);
                assert(!has_limits(f) || f->min <= f->max);

                if (!json_object_object_get_ex(obj, f->name, &value)) {
                        if (f->required)
                                return policy_error(ret_error, f->name,
                                                    "is required");
                        continue;
                }
                if (!value) {
                        if (f->nullable)
                                continue;
                        return policy_error(ret_error, f->name,
                                            "must not be null");
                }

                r = check_value(value, f, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}
