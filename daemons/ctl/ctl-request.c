/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * From havenctl's arguments to domaind's requests: the tables and their
 * aliases, the value syntax (key=value, key:=JSON, key==text), row
 * selectors, transaction ops and request objects, change summaries, and
 * reading a password file. Pure apart from reading that file: unit-tested
 * in tests/unit/test-ctl.c. Must not: talk to domaind, or put a password
 * into a summary.
 */
#include <assert.h>
#include <fcntl.h>

#include "ctl.h"
#include "haven/json.h"

#define STRV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define SUMMARY_MAX 200
#define VALUE_TEXT_MAX (64u * 1024u)
#define KEY_MAX 64

/* ==== Tables ==== */

/* Schema order (docs/domain.md). The read-only ones are written by Haven
 * itself; domaind would refuse most of it anyway, but saying why here is
 * kinder than a constraint error. */
static const struct ctl_table tables[] = {
        { "cluster", STRV("clusters"), true, true, NULL },
        { "nodes", STRV("node"), true, false, NULL },
        { "networks", STRV("network", "net", "nets"), true, false, NULL },
        { "hosts", STRV("host"), true, false, NULL },
        { "infrastructure", STRV("infra"), false, true, NULL },
        { "administrators", STRV("administrator", "admin", "admins"), true, false, NULL },
        { "fence_devices", STRV("fence_device", "device", "devices"), true, false, NULL },
        { "fence_outlets", STRV("fence_outlet", "outlet", "outlets"), false, false, NULL },
        { "fence_requests", STRV("fence_request"), false, false,
          "fence requests are made by \"havenctl fence node\" and confirmed by "
          "\"havenctl fence confirm\"" },
        { "disks", STRV("disk"), true, false, NULL },
        { "vms", STRV("vm"), true, false, NULL },
        { "vm_disks", STRV("vm_disk"), false, false, NULL },
        { "vm_nics", STRV("vm_nic", "nic", "nics"), false, false, NULL },
        { "vm_cdroms", STRV("vm_cdrom", "cdrom", "cdroms"), false, false, NULL },
        { "vm_placements", STRV("vm_placement", "placements", "placement"), false, false,
          "placements are written by the VM manager" },
        { "vm_commands", STRV("vm_command"), false, false, NULL },
        { "staged_changes", STRV("staged_change", "changes", "change"), false, false,
          "staged changes are made by add, set and delete, applied by "
          "\"havenctl activate\" and dropped by \"havenctl discard\"" },
        { "jobs", STRV("job"), false, false, "jobs are written by Haven itself" },
        { "job_log", STRV("job_logs", "logs"), false, false,
          "job logs are written by Haven itself" },
        { "audit", STRV("audits"), false, false,
          "the audit log is written by the domain itself" },
        { "alerts", STRV("alert"), false, false, NULL },
};

const struct ctl_table *ctl_tables(size_t *ret_n) {
        *ret_n = ELEMENTSOF(tables);
        return tables;
}

/* Compares with '-' and '_' taken as equal. */
static bool name_eq(const char *a, const char *b) {
        for (;; a++, b++) {
                char x = *a == '-' ? '_' : *a, y = *b == '-' ? '_' : *b;
                if (x != y)
                        return false;
                if (!x)
                        return true;
        }
}

const struct ctl_table *ctl_table_find(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
                if (name_eq(name, tables[i].name))
                        return &tables[i];
                for (const char *const *a = tables[i].aliases; *a; a++)
                        if (name_eq(name, *a))
                                return &tables[i];
        }
        return NULL;
}

/* ==== Value syntax ==== */

static bool key_char(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
               (ch >= 'A' && ch <= 'Z');
}

/* Finds the operator after the key: returns the key length and sets
 * *ret_op to "=", ":=" or "==", or returns 0 when arg is no assignment. */
static size_t split_assignment(const char *arg, const char **ret_op) {
        size_t n = 0;

        while (key_char(arg[n]))
                n++;
        if (n == 0)
                return 0;
        if (arg[n] == ':' && arg[n + 1] == '=')
                *ret_op = ":=";
        else if (arg[n] == '=' && arg[n + 1] == '=')
                *ret_op = "==";
        else if (arg[n] == '=')
                *ret_op = "=";
        else
                return 0;
        return n;
}

bool ctl_is_assignment(const char *arg) {
        const char *op;

        return arg && split_assignment(arg, &op) > 0;
}

static bool is_blank(char ch) {
        return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* key=value: JSON if the whole text is a JSON literal other than a
 * string, else the text. */
static int value_guess(const char *text, struct json_object **ret) {
        struct json_object *v = NULL;
        size_t n = strlen(text);

        if (n > 0 && !is_blank(text[0]) && !is_blank(text[n - 1]) &&
            haven_json_parse(text, n, VALUE_TEXT_MAX, &v) >= 0) {
                if (!v || !json_object_is_type(v, json_type_string)) {
                        *ret = v; /* NULL for null */
                        return 0;
                }
                json_object_put(v);
        }
        v = json_object_new_string(text);
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

int ctl_parse_assignment(const char *arg, char **ret_key,
                         struct json_object **ret_value,
                         struct ctl_error *ret_error) {
        _cleanup_free_ char *key = NULL;
        struct json_object *value = NULL;
        const char *op = NULL, *text;
        size_t n;
        int r;

        assert(arg);
        assert(ret_error);

        n = split_assignment(arg, &op);
        if (n == 0) {
                snprintf(ret_error->message, sizeof ret_error->message,
                         "\"%.64s\" is not KEY=VALUE, KEY:=JSON or KEY==TEXT", arg);
                return -EINVAL;
        }
        key = strndup(arg, n);
        if (!key)
                return -ENOMEM;
        if (n > KEY_MAX || !(key[0] >= 'a' && key[0] <= 'z') ||
            strpbrk(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
                snprintf(ret_error->message, sizeof ret_error->message,
                         "\"%.64s\": a column name is lowercase letters, digits and '_', "
                         "starting with a letter",
                         key);
                return -EINVAL;
        }
        if (streq(key, "id") || streq(key, "version")) {
                snprintf(ret_error->message, sizeof ret_error->message,
                         "\"%s\" is maintained by haven-domaind and cannot be set", key);
                return -EINVAL;
        }
        text = arg + n + strlen(op);

        if (streq(op, "==")) {
                value = json_object_new_string(text);
                if (!value)
                        return -ENOMEM;
        } else if (streq(op, ":=")) {
                r = haven_json_parse(text, strlen(text), VALUE_TEXT_MAX, &value);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        snprintf(ret_error->message, sizeof ret_error->message,
                                 "\"%s\": the value after := must be JSON (strings in "
                                 "double quotes)",
                                 key);
                        return -EINVAL;
                }
        } else {
                r = value_guess(text, &value);
                if (r < 0)
                        return r;
        }

        *ret_key = TAKE_PTR(key);
        *ret_value = value;
        return 0;
}

int ctl_parse_assignments(char *const *args, size_t n, struct json_object **ret,
                          struct ctl_error *ret_error) {
        _cleanup_(json_object_putp) struct json_object *values = NULL;
        int r;

        if (n > CTL_ASSIGNMENTS_MAX) {
                snprintf(ret_error->message, sizeof ret_error->message,
                         "at most %d values in one command", CTL_ASSIGNMENTS_MAX);
                return -EINVAL;
        }
        values = json_object_new_object();
        if (!values)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *key = NULL;
                struct json_object *value;

                r = ctl_parse_assignment(args[i], &key, &value, ret_error);
                if (r < 0)
                        return r;
                if (json_object_object_get_ex(values, key, NULL)) {
                        json_object_put(value);
                        snprintf(ret_error->message, sizeof ret_error->message,
                                 "\"%s\" is given twice", key);
                        return -EINVAL;
                }
                r = haven_json_add(values, key, value);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(values);
        return 0;
}

/* ==== Rows ==== */

/* A row id as the user writes it: decimal digits, no sign, > 0. */
static bool parse_row_id(const char *s, int64_t *ret) {
        int64_t v = 0;

        if (!*s || strlen(s) > 18 || s[0] == '0')
                return false;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return false;
                v = v * 10 + (*p - '0');
        }
        *ret = v;
        return true;
}

int ctl_row_where(const struct ctl_table *t, const char *arg,
                  struct json_object **ret, struct ctl_error *ret_error) {
        _cleanup_(json_object_putp) struct json_object *where = json_object_new_object();
        int64_t id;
        int r;

        if (!where)
                return -ENOMEM;
        if (parse_row_id(arg, &id))
                r = haven_json_add(where, "id", json_object_new_int64(id));
        else if (t->has_name)
                r = haven_json_add(where, "name", json_object_new_string(arg));
        else {
                snprintf(ret_error->message, sizeof ret_error->message,
                         "rows of \"%s\" have no name: give the row's id (see \"havenctl get "
                         "%s\")",
                         t->name, t->name);
                return -EINVAL;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(where);
        return 0;
}

/* ==== Ops and requests ==== */

static struct json_object *op_new(const char *op, const char *table) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();

        if (!o || haven_json_add(o, "op", json_object_new_string(op)) < 0 ||
            (table && haven_json_add(o, "table", json_object_new_string(table)) < 0))
                return NULL;
        return TAKE_PTR(o);
}

struct json_object *ctl_op_insert(const char *table, struct json_object *values) {
        _cleanup_(json_object_putp) struct json_object *o = op_new("insert", table);

        if (!o) {
                json_object_put(values);
                return NULL;
        }
        if (haven_json_add(o, "values", values) < 0)
                return NULL;
        return TAKE_PTR(o);
}

struct json_object *ctl_op_update(const char *table, int64_t id, int64_t version,
                                  struct json_object *values) {
        _cleanup_(json_object_putp) struct json_object *o = op_new("update", table);

        if (!o || haven_json_add(o, "id", json_object_new_int64(id)) < 0 ||
            haven_json_add(o, "expect_version", json_object_new_int64(version)) < 0) {
                json_object_put(values);
                return NULL;
        }
        if (haven_json_add(o, "values", values) < 0)
                return NULL;
        return TAKE_PTR(o);
}

struct json_object *ctl_op_delete(const char *table, int64_t id, int64_t version) {
        _cleanup_(json_object_putp) struct json_object *o = op_new("delete", table);

        if (!o || haven_json_add(o, "id", json_object_new_int64(id)) < 0 ||
            haven_json_add(o, "expect_version", json_object_new_int64(version)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

struct json_object *ctl_op_simple(const char *op) {
        return op_new(op, NULL);
}

struct json_object *ctl_request_simple(const char *name) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();

        if (!o || haven_json_add(o, "request", json_object_new_string(name)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

struct json_object *ctl_request_submit(struct json_object *ops, bool stage,
                                       const char *actor, const char *summary) {
        _cleanup_(json_object_putp) struct json_object *req = ctl_request_simple("submit");
        _cleanup_(json_object_putp) struct json_object *owned = ops;

        if (!req)
                return NULL;
        if (stage) {
                _cleanup_(json_object_putp) struct json_object *wrapper = op_new("stage", NULL);
                struct json_object *arr;

                if (!wrapper || haven_json_add(wrapper, "ops", TAKE_PTR(owned)) < 0 ||
                    (summary && haven_json_add(wrapper, "summary",
                                               json_object_new_string(summary)) < 0))
                        return NULL;
                arr = json_object_new_array();
                if (!arr || json_object_array_add(arr, TAKE_PTR(wrapper)) < 0) {
                        json_object_put(arr);
                        return NULL;
                }
                owned = arr;
        }
        if (haven_json_add(req, "ops", TAKE_PTR(owned)) < 0 ||
            haven_json_add(req, "actor", json_object_new_string(actor)) < 0 ||
            (summary && haven_json_add(req, "audit", json_object_new_string(summary)) < 0))
                return NULL;
        return TAKE_PTR(req);
}

struct json_object *ctl_request_query(const char *table, struct json_object *where) {
        _cleanup_(json_object_putp) struct json_object *req = ctl_request_simple("query");
        _cleanup_(json_object_putp) struct json_object *owned = where;

        if (!req || haven_json_add(req, "table", json_object_new_string(table)) < 0)
                return NULL;
        if (owned && haven_json_add(req, "where", TAKE_PTR(owned)) < 0)
                return NULL;
        return TAKE_PTR(req);
}

struct json_object *ctl_request_cluster(const char *request, const char *key,
                                        const char *value, const char *admin,
                                        const char *password,
                                        const char *address) {
        _cleanup_(json_object_putp) struct json_object *req = ctl_request_simple(request);

        if (!req || haven_json_add(req, key, json_object_new_string(value)) < 0 ||
            haven_json_add(req, "admin", json_object_new_string(admin)) < 0 ||
            haven_json_add(req, "password", json_object_new_string(password)) < 0 ||
            (address && haven_json_add(req, "address", json_object_new_string(address)) < 0))
                return NULL;
        return TAKE_PTR(req);
}

struct json_object *ctl_request_node_remove(const char *node, const char *actor) {
        _cleanup_(json_object_putp) struct json_object *req = ctl_request_simple("node-remove");

        /* The API takes the node as a string: its name or its id. */
        if (!req || haven_json_add(req, "node", json_object_new_string(node)) < 0 ||
            haven_json_add(req, "actor", json_object_new_string(actor)) < 0)
                return NULL;
        return TAKE_PTR(req);
}

/* ==== Summaries ==== */

static int append(char **buf, size_t *len, const char *s) {
        size_t n = strlen(s);
        char *p = realloc(*buf, *len + n + 1);

        if (!p)
                return -ENOMEM;
        memcpy(p + *len, s, n + 1);
        *buf = p;
        *len += n;
        return 0;
}

char *ctl_change_summary(const char *verb, const char *table, const char *row,
                         char *const *assignments, size_t n) {
        _cleanup_free_ char *s = NULL;
        size_t len = 0;

        if (append(&s, &len, verb) < 0 || append(&s, &len, " ") < 0 ||
            append(&s, &len, table) < 0)
                return NULL;
        if (row && (append(&s, &len, " ") < 0 || append(&s, &len, row) < 0))
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const char *op = NULL;
                size_t k = split_assignment(assignments[i], &op);

                if (append(&s, &len, i == 0 ? ": " : " ") < 0)
                        return NULL;
                if (k > 0) {
                        _cleanup_free_ char *key = strndup(assignments[i], k);
                        if (!key)
                                return NULL;
                        if (strstr(key, "password")) {
                                if (append(&s, &len, key) < 0 || append(&s, &len, "=***") < 0)
                                        return NULL;
                                continue;
                        }
                }
                if (append(&s, &len, assignments[i]) < 0)
                        return NULL;
        }

        if (len > SUMMARY_MAX) {
                size_t cut = SUMMARY_MAX - 3;
                /* Not inside a UTF-8 sequence. */
                while (cut > 0 && ((unsigned char) s[cut] & 0xc0) == 0x80)
                        cut--;
                memcpy(s + cut, "...", 4);
        }
        return TAKE_PTR(s);
}

/* ==== Passwords ==== */

int ctl_read_password_file(const char *path, char **ret,
                           struct ctl_error *ret_error) {
        _cleanup_close_ int fd = -1;
        char buf[CTL_PASSWORD_MAX + 2];
        size_t len = 0, line;
        char *p;

        if (streq(path, "-"))
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        /* Up to one byte more than the longest password and its '\n'. */
        while (len < sizeof buf) {
                ssize_t k = read(fd, buf + len, sizeof buf - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        explicit_bzero(buf, sizeof buf);
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                if (memchr(buf, '\n', len))
                        break;
        }
        p = memchr(buf, '\n', len);
        line = p ? (size_t) (p - buf) : len;
        if (line > 0 && buf[line - 1] == '\r')
                line--;

        if (line == 0 || line > CTL_PASSWORD_MAX || memchr(buf, '\0', line)) {
                snprintf(ret_error->message, sizeof ret_error->message,
                         line == 0 ? "the password file %s is empty"
                         : line > CTL_PASSWORD_MAX
                                 ? "the password in %s is longer than 256 characters"
                                 : "the password in %s contains a NUL byte",
                         streq(path, "-") ? "(standard input)" : path);
                explicit_bzero(buf, sizeof buf);
                return -EINVAL;
        }
        p = strndup(buf, line);
        explicit_bzero(buf, sizeof buf);
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}
