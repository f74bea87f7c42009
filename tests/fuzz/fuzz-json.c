/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for haven/json.h, the path every API and socket body
 * takes before a handler sees it: haven_json_parse() with a size limit
 * (the input is the raw body: any bytes, not NUL-terminated), then, when
 * it is an object, haven_json_check() against a policy with every field
 * kind (string, int, bool, object, array, enum, any), required and nullable
 * fields, string/int/array ranges (including the full int64 range) and an
 * enum whose choices overflow the error message. Besides what the
 * sanitizers catch, it aborts when a result breaks what json.h promises:
 * an accepted body whose typed getters disagree with the policy, a value
 * outside its range, an error message that is empty or unterminated, an
 * error naming a field outside the policy, or a different verdict when
 * no error is asked for.
 */
#include <stdint.h>

#include "haven/json.h"
#include "fuzz-util.h"

/* Below libFuzzer's default -max_len (4096) so that -E2BIG is reached. */
#define BODY_SIZE_MAX 3000u

static const char *const modes[] = {"on", "off", "auto", NULL};
/* Long enough that "must be one of ..." is cut at the message size. */
static const char *const colours[] = {
        "aquamarine-of-the-northern-seas",
        "burnt-umber-from-the-hills",
        "cadmium-yellow-deep-and-warm",
        "dark-slate-grey-at-dusk",
        "eggshell-white-in-the-morning",
        "fuchsia-like-a-summer-flower",
        "gamboge-as-on-a-monk-robe",
        "Ünicode-grün-ß",
        NULL,
};

static const struct haven_json_field policy[] = {
        {.name = "name",
         .kind = HAVEN_JSON_STRING,
         .required = true,
         .min = 1,
         .max = 16},
        {.name = "note", .kind = HAVEN_JSON_STRING, .nullable = true},
        {.name = "count", .kind = HAVEN_JSON_INT, .min = -5, .max = 100},
        {.name = "big", .kind = HAVEN_JSON_INT, .nullable = true},
        {.name = "wide",
         .kind = HAVEN_JSON_INT,
         .min = INT64_MIN,
         .max = INT64_MAX},
        {.name = "port", .kind = HAVEN_JSON_INT, .min = 1, .max = 1},
        {.name = "enabled", .kind = HAVEN_JSON_BOOL, .required = true},
        {.name = "meta", .kind = HAVEN_JSON_OBJECT, .nullable = true},
        {.name = "tags", .kind = HAVEN_JSON_ARRAY, .min = 1, .max = 3},
        {.name = "items", .kind = HAVEN_JSON_ARRAY},
        {.name = "mode",
         .kind = HAVEN_JSON_ENUM,
         .nullable = true,
         .choices = modes},
        {.name = "colour", .kind = HAVEN_JSON_ENUM, .choices = colours},
        {.name = "extra", .kind = HAVEN_JSON_ANY},
        {.name = "payload", .kind = HAVEN_JSON_ANY, .nullable = true},
};

static bool has_limits(const struct haven_json_field *f) {
        return f->min != 0 || f->max != 0;
}

static int64_t utf8_length(const char *s) {
        int64_t n = 0;

        for (; *s; s++)
                if (((unsigned char) *s & 0xC0) != 0x80)
                        n++;
        return n;
}

static bool in_range(const struct haven_json_field *f, int64_t n) {
        return !has_limits(f) || (n >= f->min && n <= f->max);
}

/* obj passed the policy: each field the policy names is missing (and not
 * required), null (and nullable) or of its kind and in its range, as the
 * typed getters see it. */
static void verify_accepted(struct json_object *obj) {
        for (size_t i = 0; i < ELEMENTSOF(policy); i++) {
                const struct haven_json_field *f = policy + i;
                struct json_object *value, *child;
                const char *s;
                int64_t n;
                bool b;

                if (!json_object_object_get_ex(obj, f->name, &value)) {
                        check(!f->required);
                        continue;
                }
                if (!value) {
                        check(f->nullable);
                        check(haven_json_get_string(obj, f->name, &s) ==
                              -ENOENT);
                        continue;
                }

                switch (f->kind) {
                case HAVEN_JSON_STRING:
                        check(haven_json_get_string(obj, f->name, &s) == 0);
                        check(in_range(f, utf8_length(s)));
                        break;
                case HAVEN_JSON_INT:
                        check(haven_json_get_int64(obj, f->name, &n) == 0);
                        check(in_range(f, n));
                        break;
                case HAVEN_JSON_BOOL:
                        check(haven_json_get_bool(obj, f->name, &b) == 0);
                        break;
                case HAVEN_JSON_OBJECT:
                        check(haven_json_get_object(obj, f->name, &child) == 0);
                        check(child == value);
                        break;
                case HAVEN_JSON_ARRAY:
                        check(haven_json_get_array(obj, f->name, &child) == 0);
                        check(in_range(
                                f, (int64_t) json_object_array_length(child)));
                        break;
                case HAVEN_JSON_ENUM: {
                        bool found = false;

                        check(haven_json_get_string(obj, f->name, &s) == 0);
                        for (const char *const *c = f->choices; *c; c++)
                                found = found || streq(s, *c);
                        check(found);
                        break;
                }
                case HAVEN_JSON_ANY:
                        break; /* present and not null: all it takes */
                default:
                        abort();
                }
        }
}

/* obj was refused: the error says something and names a policy field or
 * none. */
static void verify_refused(const struct haven_json_error *error) {
        bool known = error->field == NULL;

        check(memchr(error->message, '\0', sizeof error->message));
        check(error->message[0] != '\0');
        for (size_t i = 0; i < ELEMENTSOF(policy) && !known; i++)
                known = error->field == policy[i].name;
        check(known);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        struct haven_json_error error;
        int r;

        r = haven_json_parse((const char *) data, size, BODY_SIZE_MAX, &obj);
        if (size > BODY_SIZE_MAX)
                check(r == -E2BIG);
        if (r < 0) {
                check(r == -E2BIG || r == -EBADMSG);
                return 0;
        }
        if (!json_object_is_type(obj, json_type_object))
                return 0;

        r = haven_json_check(obj, policy, ELEMENTSOF(policy), &error);
        check(r == 0 || r == -EINVAL);
        check(haven_json_check(obj, policy, ELEMENTSOF(policy), NULL) == r);
        if (r == 0)
                verify_accepted(obj);
        else
                verify_refused(&error);
        return 0;
}
