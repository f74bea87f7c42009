/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for what fence agents hand haven-fenced
 * (daemons/fenced/fenced-agent.c): the same bytes go to
 * - fence_agent_metadata_parse() (the output of `-o metadata`), then
 *   fence_agent_metadata_to_json() and fence_agent_validate() with a
 *   parameters object built from the parsed metadata and the input, then,
 *   when validation passed, fence_agent_stdin();
 * - fence_agent_parse_list() (the output of `list`);
 * - fence_agent_outcome() with the input split into stdout and stderr and
 *   an exit status taken from its first bytes;
 * - haven_json_parse() and, for an object, fence_agent_stdin() (parameters
 *   that were never validated).
 * Besides what the sanitizers catch, it aborts when a promise of
 * fenced-agent.h breaks: a message that is not one line of valid UTF-8 of
 * at most 512 bytes; a list entry with an empty outlet or control
 * characters; UI JSON offering a deprecated or refused parameter; stdin
 * text whose lines are not key=value, or that sets action/ip/plug twice,
 * after validation passed or at all.
 */
#include <stdint.h>
#include <sys/wait.h>

#include "haven/json.h"

#include "../../daemons/fenced/fenced-agent.h"
#include "fuzz-util.h"

/* Well-formed UTF-8 without C0/C1 controls or DEL (when !allow_newline;
 * otherwise LF is allowed too). */
static bool clean_text(const char *s, bool allow_newline) {
        const unsigned char *u = (const unsigned char *) s;

        while (*u) {
                uint32_t c;
                size_t len;

                if (*u < 0x80) {
                        if ((*u < 0x20 && !(allow_newline && *u == '\n')) ||
                            *u == 0x7F)
                                return false;
                        u++;
                        continue;
                }
                if (*u >= 0xC2 && *u <= 0xDF) {
                        len = 2;
                        c = *u & 0x1F;
                } else if (*u >= 0xE0 && *u <= 0xEF) {
                        len = 3;
                        c = *u & 0x0F;
                } else if (*u >= 0xF0 && *u <= 0xF4) {
                        len = 4;
                        c = *u & 0x07;
                } else
                        return false;
                for (size_t i = 1; i < len; i++) {
                        if ((u[i] & 0xC0) != 0x80)
                                return false;
                        c = (c << 6) | (u[i] & 0x3F);
                }
                if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
                    c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF) ||
                    (c >= 0x80 && c < 0xA0))
                        return false;
                u += len;
        }
        return true;
}

/* Every line of text is KEY=VALUE with a key that is not empty; action,
 * ip and plug appear at most once (a second one would override Haven's). */
static void check_stdin_text(const char *text) {
        int action = 0, ip = 0, plug = 0;

        check(clean_text(text, true));
        check(text[0] != '\0' && text[strlen(text) - 1] == '\n');
        for (const char *line = text; *line;) {
                const char *nl = strchr(line, '\n'), *eq;

                check(nl);
                eq = memchr(line, '=', (size_t) (nl - line));
                check(eq && eq > line);
                action += strncmp(line, "action=", 7) == 0;
                ip += strncmp(line, "ip=", 3) == 0 ||
                      strncmp(line, "ipaddr=", 7) == 0;
                plug += strncmp(line, "plug=", 5) == 0 ||
                        strncmp(line, "port=", 5) == 0;
                line = nl + 1;
        }
        check(action == 1 && ip <= 1 && plug <= 1);
}

static void check_ui_json(const struct fence_agent_metadata *m) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *parameters;

        o = fence_agent_metadata_to_json(m);
        check(o);
        check(haven_json_get_array(o, "parameters", &parameters) == 0);
        for (size_t i = 0; i < json_object_array_length(parameters); i++) {
                struct json_object *p =
                        json_object_array_get_idx(parameters, i);
                const struct fence_agent_parameter *declared;
                const char *name;

                check(haven_json_get_string(p, "name", &name) == 0);
                declared = fence_agent_metadata_parameter(m, name);
                check(declared);
                check(!(declared->deprecated && declared->replaced_by));
                check(!streq(name, "help") && !streq(name, "version"));
        }
}

/* Parameters from the metadata's own names, values cut from the input in
 * turn as strings, integers and booleans. */
static struct json_object *parameters_for(const struct fence_agent_metadata *m,
                                          const uint8_t *data, size_t size) {
        struct json_object *p = json_object_new_object();
        size_t at = 0;

        check(p);
        check(haven_json_add(p, "agent",
                             json_object_new_string("fence_apc_snmp")) == 0);
        for (size_t i = 0; i < m->n_parameters && i < 8; i++) {
                const struct fence_agent_parameter *d = &m->parameters[i];
                struct json_object *v;
                size_t len = size > at ? (size - at) % 24 : 0;

                switch (i % 3) {
                case 0:
                        v = json_object_new_string_len((const char *) data + at,
                                                       (int) len);
                        at += len;
                        break;
                case 1:
                        v = json_object_new_int64(
                                at < size ? (int64_t) data[at] - 8 : 0);
                        at++;
                        break;
                default:
                        v = json_object_new_boolean(at < size && data[at] & 1);
                        at++;
                        break;
                }
                /* A select gets one of its values now and then. */
                if (d->n_values > 0 && at < size && data[at] % 2 == 0) {
                        json_object_put(v);
                        v = json_object_new_string(
                                d->values[data[at] % d->n_values]);
                }
                check(v);
                check(haven_json_add(p, d->name, v) == 0);
        }
        return p;
}

static void fuzz_metadata(const uint8_t *data, size_t size) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                NULL;
        _cleanup_(json_object_putp) struct json_object *p = NULL;
        _cleanup_free_ char *field = NULL, *message = NULL, *text = NULL;
        int r;

        r = fence_agent_metadata_parse((const char *) data, size, &m);
        if (r < 0) {
                check(r == -EBADMSG || r == -E2BIG);
                check(!m);
                return;
        }
        check(m->name && m->shortdesc && m->longdesc && m->actions);
        check(!m->actions[m->n_actions]);
        check_ui_json(m);

        p = parameters_for(m, data, size);
        r = fence_agent_validate(m, p, &field, &message);
        check(r == 0 || r == -EINVAL);
        if (r < 0) {
                check(field && message && message[0]);
                return;
        }
        check(!field && !message);
        /* Whatever validation lets through makes safe stdin. */
        r = fence_agent_stdin("198.18.0.1", "1", "off", p, &text);
        check(r == 0);
        check_stdin_text(text);
}

static void fuzz_list(const char *text) {
        _cleanup_(json_object_putp) struct json_object *a = NULL;
        int r;

        r = fence_agent_parse_list(text, &a);
        if (r < 0) {
                check(r == -E2BIG);
                return;
        }
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                struct json_object *e = json_object_array_get_idx(a, i);
                const char *outlet, *name;

                check(haven_json_get_string(e, "outlet", &outlet) == 0);
                check(haven_json_get_string(e, "name", &name) == 0);
                check(outlet[0] != '\0' && strlen(outlet) <= 256);
                check(clean_text(outlet, false) && clean_text(name, false));
        }
}

/* A NUL-terminated copy of data[0..size) that may hold NULs, as
 * haven/exec.h delivers output. */
static char *output(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        check(s);
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

static void fuzz_outcome(const uint8_t *data, size_t size) {
        static const char *const actions[] = {"status", "monitor", "off",
                                              "on",     "list",    "reboot"};
        static const int codes[] = {CLD_EXITED, CLD_KILLED, CLD_DUMPED};
        _cleanup_free_ char *message = NULL;
        struct haven_exec_result r;
        enum fence_agent_outcome o;
        size_t half;

        if (size < 2)
                return;
        half = (size - 2) / 2;
        r = (struct haven_exec_result){
                .code = codes[data[0] % 3],
                .status = data[1] % 4 == 3 ? data[1] : data[1] % 4,
                .timed_out = data[0] & 0x10,
                .stdout_data = output(data + 2, half),
                .stdout_size = half,
                .stderr_data = output(data + 2 + half, size - 2 - half),
                .stderr_size = size - 2 - half,
                .duration_usec = (uint64_t) data[1] * 100000,
        };

        o = fence_agent_outcome(actions[data[1] % 6], &r, &message);
        check(o >= 0 && o < _FENCE_AGENT_OUTCOME_MAX);
        check(message && message[0]);
        check(strlen(message) <= FENCE_AGENT_MESSAGE_MAX);
        check(clean_text(message, false));
        if (r.timed_out || r.code != CLD_EXITED)
                check(o == FENCE_AGENT_FAILED);
        haven_exec_result_done(&r);
}

static void fuzz_unvalidated_stdin(const uint8_t *data, size_t size) {
        _cleanup_(json_object_putp) struct json_object *p = NULL;
        _cleanup_free_ char *text = NULL;

        if (haven_json_parse((const char *) data, size, 4096, &p) < 0 ||
            !json_object_is_type(p, json_type_object))
                return;
        if (fence_agent_stdin(NULL, "3", "status", p, &text) == 0)
                check_stdin_text(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = NULL;

        text = strndup((const char *) data, size);
        check(text);

        fuzz_metadata(data, size);
        fuzz_list(text);
        fuzz_outcome(data, size);
        fuzz_unvalidated_stdin(data, size);
        return 0;
}
