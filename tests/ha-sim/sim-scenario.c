/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Scenario files for haven-ha-sim: a header (nodes, VMs), timed steps and
 * the expected log (docs/ha.md has the grammar). Lines are split on blanks;
 * a line starting with '#' is a comment. Owns the parsed scenario; does
 * not run anything.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haven/macro.h"

#include "sim.h"

#define TOKENS_MAX 64

/* ==== Values ==== */

static int parse_u64(const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || !*s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_uint(const char *s, unsigned max, unsigned *ret) {
        uint64_t v;
        int r = parse_u64(s, max, &v);

        if (r < 0)
                return r;
        *ret = (unsigned) v;
        return 0;
}

int sim_node_index(const struct sim_scenario *s, const char *name) {
        for (size_t i = 0; i < s->n_nodes; i++)
                if (streq(s->nodes[i].name, name))
                        return (int) i;
        return -ENOENT;
}

static int vm_index(const struct sim_scenario *s, const char *name) {
        for (size_t i = 0; i < s->n_vms; i++)
                if (streq(s->vms[i].name, name))
                        return (int) i;
        return -ENOENT;
}

/* A node id by name, "none" (0) allowed. */
static int node_ref(const struct sim_scenario *s, const char *name,
                    uint32_t *ret) {
        int i;

        if (streq(name, "none")) {
                *ret = 0;
                return 0;
        }
        i = sim_node_index(s, name);
        if (i < 0)
                return i;
        *ret = (uint32_t) i + 1;
        return 0;
}

int sim_vm_option(const struct sim_scenario *s, struct sim_vm_config *vm,
                  const char *key, const char *value,
                  const char **ret_error) {
        struct ha_vm *c = &vm->config;
        uint64_t v;
        unsigned u;
        int m;

        if (!value) {
                *ret_error = "expected key=value";
                return -EINVAL;
        }
        if (streq(key, "memory")) {
                if (parse_u64(value, 4194304, &v) < 0)
                        goto bad;
                c->memory_mib = v;
        } else if (streq(key, "ha")) {
                m = ha_mode_from_string(value);
                if (m < 0)
                        goto bad;
                c->ha = (enum ha_mode) m;
        } else if (streq(key, "desired")) {
                m = ha_desired_from_string(value);
                if (m < 0)
                        goto bad;
                c->desired = (enum ha_desired) m;
        } else if (streq(key, "preferred")) {
                if (node_ref(s, value, &c->preferred_node) < 0)
                        goto bad_node;
        } else if (streq(key, "sticky")) {
                if (node_ref(s, value, &c->sticky_node) < 0)
                        goto bad_node;
        } else if (streq(key, "priority")) {
                if (parse_uint(value, HA_PRIORITY_MAX, &u) < 0)
                        goto bad;
                c->priority = u;
        } else if (streq(key, "restart-max")) {
                if (parse_uint(value, 100, &u) < 0)
                        goto bad;
                c->restart_max = u;
        } else if (streq(key, "restart-window")) {
                if (parse_uint(value, 86400, &u) < 0 || u == 0)
                        goto bad;
                c->restart_window_usec = (uint64_t) u * HA_USEC_PER_SEC;
        } else if (streq(key, "relocate-max")) {
                if (parse_uint(value, 32, &u) < 0)
                        goto bad;
                c->relocate_max = u;
        } else if (streq(key, "storage")) {
                _cleanup_free_ char *copy = strdup(value);
                char *save = NULL;
                size_t n = 0;

                if (!copy)
                        return -ENOMEM;
                if (!streq(value, "none"))
                        for (char *t = strtok_r(copy, ",", &save); t;
                             t = strtok_r(NULL, ",", &save)) {
                                if (n >= ELEMENTSOF(vm->storage))
                                        goto bad;
                                if (node_ref(s, t, &vm->storage[n]) < 0 ||
                                    !vm->storage[n])
                                        goto bad_node;
                                n++;
                        }
                c->n_storage_nodes = n;
                c->storage_nodes = vm->storage;
        } else {
                *ret_error = "unknown VM option";
                return -EINVAL;
        }
        return 0;
bad:
        *ret_error = "bad value";
        return -EINVAL;
bad_node:
        *ret_error = "unknown node";
        return -EINVAL;
}

/* ==== Lines ==== */

struct parser {
        struct sim_scenario *s;
        unsigned line;
        char *error;
};

_printf_(2, 3) static int fail(struct parser *p, const char *fmt, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&what, fmt, ap) < 0)
                what = NULL;
        va_end(ap);
        free(p->error);
        if (asprintf(&p->error, "%s:%u: %s", p->s->path, p->line,
                     what ?: "?") < 0)
                p->error = NULL;
        return -EINVAL;
}

static size_t split(char *line, char **tokens) {
        size_t n = 0;
        char *save = NULL;

        for (char *t = strtok_r(line, " \t\r", &save); t && n < TOKENS_MAX;
             t = strtok_r(NULL, " \t\r", &save))
                tokens[n++] = t;
        return n;
}

static bool name_ok(const char *name) {
        size_t n = strlen(name);

        return n >= 1 && n <= 63 && !strchr(name, '=') && !strchr(name, '\'');
}

static int parse_node(struct parser *p, char **t, size_t n) {
        struct sim_scenario *s = p->s;
        struct sim_node_config *node;

        if (n < 2 || !name_ok(t[1]))
                return fail(p, "expected: node NAME [memory=MiB] ...");
        if (sim_node_index(s, t[1]) >= 0)
                return fail(p, "node '%s' declared twice", t[1]);
        if (s->n_nodes >= SIM_NODES_MAX)
                return fail(p, "too many nodes");
        if (s->n_vms > 0)
                return fail(p, "nodes come before VMs");
        node = &s->nodes[s->n_nodes];
        *node = (struct sim_node_config) {
                .memory_mib = 4096,
                .state = HA_NODE_ACTIVE,
                .fence_works = true,
                .fence_delay = SIM_FENCE_DELAY,
        };
        node->name = strdup(t[1]);
        if (!node->name)
                return -ENOMEM;
        s->n_nodes++;
        for (size_t i = 2; i < n; i++) {
                char *eq = strchr(t[i], '='), *value;
                int m;

                if (!eq)
                        return fail(p, "expected key=value: %s", t[i]);
                *eq = 0;
                value = eq + 1;
                if (streq(t[i], "memory")) {
                        if (parse_u64(value, 1073741824, &node->memory_mib) < 0)
                                return fail(p, "bad memory: %s", value);
                } else if (streq(t[i], "reserve")) {
                        if (parse_u64(value, 1073741824, &node->reserve_mib) < 0)
                                return fail(p, "bad reserve: %s", value);
                } else if (streq(t[i], "state")) {
                        m = ha_node_state_from_string(value);
                        if (m < 0)
                                return fail(p, "bad state: %s", value);
                        node->state = (enum ha_node_state) m;
                } else if (streq(t[i], "fence")) {
                        if (!streq(value, "works") && !streq(value, "fails"))
                                return fail(p, "fence=works|fails");
                        node->fence_works = streq(value, "works");
                } else if (streq(t[i], "fence-delay")) {
                        if (parse_uint(value, 3600, &node->fence_delay) < 0)
                                return fail(p, "bad fence-delay: %s", value);
                } else
                        return fail(p, "unknown node option: %s", t[i]);
        }
        return 0;
}

static int add_vm(struct parser *p, const char *name, char **t, size_t n,
                  size_t spread_index) {
        struct sim_scenario *s = p->s;
        struct sim_vm_config *vm, *vms;
        bool spread = false;

        if (!name_ok(name))
                return fail(p, "bad VM name");
        if (vm_index(s, name) >= 0)
                return fail(p, "VM '%s' declared twice", name);
        if (s->n_vms >= SIM_VMS_MAX)
                return fail(p, "too many VMs");
        vms = reallocarray(s->vms, s->n_vms + 1, sizeof(*vms));
        if (!vms)
                return -ENOMEM;
        s->vms = vms;
        vm = &s->vms[s->n_vms];
        *vm = (struct sim_vm_config) {};
        vm->name = strdup(name);
        if (!vm->name)
                return -ENOMEM;
        s->n_vms++;
        vm->config = (struct ha_vm) {
                .id = (int64_t) s->n_vms,
                .name = vm->name,
                .ha = HA_MODE_OFF,
                .priority = 500,
                .memory_mib = 512,
                .restart_max = 3,
                .restart_window_usec = 600 * HA_USEC_PER_SEC,
                .relocate_max = 1,
                .desired = HA_DESIRED_STOPPED,
                .storage_nodes = vm->storage,
        };
        for (size_t i = 0; i < n; i++) {
                char *eq = strchr(t[i], '=');
                const char *error = NULL;
                int r;

                if (streq(t[i], "running")) {
                        vm->config.desired = HA_DESIRED_RUNNING;
                        continue;
                }
                if (streq(t[i], "spread")) {
                        spread = true;
                        continue;
                }
                if (!eq)
                        return fail(p, "expected key=value: %s", t[i]);
                *eq = 0;
                if (streq(t[i], "on")) {
                        r = sim_node_index(s, eq + 1);
                        if (r < 0)
                                return fail(p, "unknown node: %s", eq + 1);
                        vm->on = (size_t) r + 1;
                        vm->config.desired = HA_DESIRED_RUNNING;
                } else {
                        r = sim_vm_option(s, vm, t[i], eq + 1, &error);
                        if (r < 0)
                                return r == -ENOMEM
                                               ? r
                                               : fail(p, "%s=%s: %s", t[i],
                                                      eq + 1, error);
                }
                *eq = '=';
        }
        if (spread) {
                if (s->n_nodes == 0)
                        return fail(p, "spread needs nodes");
                vm->on = spread_index % s->n_nodes + 1;
                vm->config.desired = HA_DESIRED_RUNNING;
        }
        return 0;
}

static int parse_vms(struct parser *p, char **t, size_t n) {
        unsigned count;
        char name[80];
        int r;

        if (n < 3 || parse_uint(t[2], SIM_VMS_MAX, &count) < 0 ||
            strlen(t[1]) > 50)
                return fail(p, "expected: vms PREFIX COUNT [options]");
        for (unsigned i = 0; i < count; i++) {
                snprintf(name, sizeof(name), "%s%u", t[1], i + 1);
                r = add_vm(p, name, t + 3, n - 3, i);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int step_node(struct parser *p, const char *name, size_t *ret) {
        int i = sim_node_index(p->s, name);

        if (i < 0)
                return fail(p, "unknown node: %s", name);
        *ret = (size_t) i;
        return 0;
}

static int step_vm(struct parser *p, const char *name, size_t *ret) {
        int i = vm_index(p->s, name);

        if (i < 0)
                return fail(p, "unknown VM: %s", name);
        *ret = (size_t) i;
        return 0;
}

static int on_off(struct parser *p, const char *word, bool *ret) {
        if (streq(word, "on"))
                *ret = true;
        else if (streq(word, "off"))
                *ret = false;
        else
                return fail(p, "expected on|off: %s", word);
        return 0;
}

/* One step: t[0] is "at", t[1] the time, t[2]... the step. */
static int parse_step(struct parser *p, char **t, size_t n) {
        struct sim_scenario *s = p->s;
        struct sim_step *step, *steps;
        char text[1024] = "";
        size_t len = 0;
        unsigned at;
        int r, m;

        if (n < 4 || parse_uint(t[1], SIM_TIME_MAX, &at) < 0)
                return fail(p, "expected: at SECONDS STEP...");
        if (s->n_steps > 0 && s->steps[s->n_steps - 1].at > at)
                return fail(p, "steps must come in time order");
        if (s->n_steps >= SIM_STEPS_MAX)
                return fail(p, "too many steps");
        steps = reallocarray(s->steps, s->n_steps + 1, sizeof(*steps));
        if (!steps)
                return -ENOMEM;
        s->steps = steps;
        step = &s->steps[s->n_steps];
        *step = (struct sim_step) {
                .at = at,
                .count = 1,
        };
        for (size_t i = 2; i < n; i++) {
                int k = snprintf(text + len, sizeof(text) - len, "%s%s",
                                 len ? " " : "", t[i]);
                if (k > 0 && (size_t) k < sizeof(text) - len)
                        len += (size_t) k;
        }
        step->text = strdup(text);
        if (!step->text)
                return -ENOMEM;
        s->n_steps++;
        t += 2;
        n -= 2;

        if (streq(t[0], "power") || streq(t[0], "network")) {
                step->kind = streq(t[0], "power") ? SIM_STEP_POWER
                                                  : SIM_STEP_NETWORK;
                if (n != 3)
                        return fail(p, "expected: %s NODE on|off", t[0]);
                r = step_node(p, t[1], &step->node);
                if (r < 0)
                        return r;
                return on_off(p, t[2], &step->on);
        }
        if (streq(t[0], "node")) {
                step->kind = SIM_STEP_NODE_STATE;
                if (n != 3)
                        return fail(p, "expected: node NODE STATE");
                r = step_node(p, t[1], &step->node);
                if (r < 0)
                        return r;
                m = ha_node_state_from_string(t[2]);
                if (m < 0)
                        return fail(p, "bad node state: %s", t[2]);
                step->state = (enum ha_node_state) m;
                return 0;
        }
        if (streq(t[0], "fence")) {
                if (n < 3)
                        return fail(p, "expected: fence NODE works|fails|"
                                       "delay N");
                r = step_node(p, t[1], &step->node);
                if (r < 0)
                        return r;
                if (streq(t[2], "works") && n == 3)
                        step->kind = SIM_STEP_FENCE_WORKS;
                else if (streq(t[2], "fails") && n == 3)
                        step->kind = SIM_STEP_FENCE_FAILS;
                else if (streq(t[2], "delay") && n == 4) {
                        step->kind = SIM_STEP_FENCE_DELAY;
                        if (parse_uint(t[3], 3600, &step->count) < 0)
                                return fail(p, "bad delay: %s", t[3]);
                } else
                        return fail(p, "expected: fence NODE works|fails|"
                                       "delay N");
                return 0;
        }
        if (streq(t[0], "memory")) {
                step->kind = SIM_STEP_MEMORY;
                if (n != 3)
                        return fail(p, "expected: memory NODE MiB");
                r = step_node(p, t[1], &step->node);
                if (r < 0)
                        return r;
                if (parse_u64(t[2], 1073741824, &step->value) < 0)
                        return fail(p, "bad memory: %s", t[2]);
                return 0;
        }
        if (streq(t[0], "vm")) {
                if (n < 3)
                        return fail(p, "expected: vm VM EVENT");
                r = step_vm(p, t[1], &step->vm);
                if (r < 0)
                        return r;
                if (streq(t[2], "crash") && n == 3)
                        step->kind = SIM_STEP_VM_CRASH;
                else if (streq(t[2], "guest-shutdown") && n == 3)
                        step->kind = SIM_STEP_VM_GUEST_SHUTDOWN;
                else if (streq(t[2], "rogue") && n == 4) {
                        step->kind = SIM_STEP_VM_ROGUE;
                        return step_node(p, t[3], &step->node);
                } else if (streq(t[2], "start-fails") ||
                           streq(t[2], "migrate-fails")) {
                        size_t i = 3;

                        step->kind = streq(t[2], "start-fails")
                                             ? SIM_STEP_VM_START_FAILS
                                             : SIM_STEP_VM_MIGRATE_FAILS;
                        if (i < n && parse_uint(t[i], 1000, &step->count) == 0)
                                i++;
                        if (i < n && streq(t[i], "times"))
                                i++;
                        if (i + 1 < n && streq(t[i], "on") &&
                            step->kind == SIM_STEP_VM_START_FAILS) {
                                r = step_node(p, t[i + 1], &step->only_node);
                                if (r < 0)
                                        return r;
                                step->only_node++;
                                i += 2;
                        }
                        if (i != n)
                                return fail(p, "expected: vm VM start-fails "
                                               "[N [times]] [on NODE] | "
                                               "migrate-fails [N [times]]");
                } else
                        return fail(p, "unknown VM event: %s", t[2]);
                return 0;
        }
        if (streq(t[0], "command")) {
                step->kind = SIM_STEP_COMMAND;
                if (n < 3)
                        return fail(p, "expected: command VM COMMAND");
                r = step_vm(p, t[1], &step->vm);
                if (r < 0)
                        return r;
                m = ha_command_kind_from_string(t[2]);
                if (m < 0)
                        return fail(p, "unknown command: %s", t[2]);
                step->command = (enum ha_command_kind) m;
                if (step->command == HA_COMMAND_MIGRATE) {
                        if (n != 4)
                                return fail(p, "expected: command VM migrate "
                                               "NODE");
                        r = step_node(p, t[3], &step->only_node);
                        if (r < 0)
                                return r;
                        step->only_node++;
                } else if (n != 3)
                        return fail(p, "expected: command VM %s", t[2]);
                return 0;
        }
        if (streq(t[0], "set")) {
                struct sim_vm_config scratch;

                step->kind = SIM_STEP_SET;
                if (n < 3)
                        return fail(p, "expected: set VM key=value...");
                r = step_vm(p, t[1], &step->vm);
                if (r < 0)
                        return r;
                step->assignments = calloc(n - 1, sizeof(char *));
                if (!step->assignments)
                        return -ENOMEM;
                scratch = s->vms[step->vm];
                for (size_t i = 2; i < n; i++) {
                        char *eq = strchr(t[i], '=');
                        const char *error = NULL;

                        if (!eq)
                                return fail(p, "expected key=value: %s", t[i]);
                        *eq = 0;
                        r = sim_vm_option(s, &scratch, t[i], eq + 1, &error);
                        if (r < 0)
                                return r == -ENOMEM
                                               ? r
                                               : fail(p, "%s=%s: %s", t[i],
                                                      eq + 1, error);
                        *eq = '=';
                        step->assignments[i - 2] = strdup(t[i]);
                        if (!step->assignments[i - 2])
                                return -ENOMEM;
                }
                return 0;
        }
        return fail(p, "unknown step: %s", t[0]);
}

/* ==== Files ==== */

static int read_file(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, cap = 0;

        if (!f)
                return negative_errno();
        for (;;) {
                size_t k;

                if (cap - n < 4096) {
                        char *b;

                        if (cap > 64 * 1024 * 1024)
                                return -EFBIG;
                        b = realloc(buf, cap + 65536);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        cap += 65536;
                }
                k = fread(buf + n, 1, cap - n - 1, f);
                n += k;
                if (k == 0)
                        break;
        }
        if (ferror(f))
                return -EIO;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

int sim_scenario_load(const char *path, struct sim_scenario **ret,
                      char **ret_error) {
        struct sim_scenario *s;
        struct parser p = {};
        char *line, *next;
        bool expect = false;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        p.s = s;
        s->path = strdup(path);
        if (!s->path) {
                sim_scenario_free(s);
                return -ENOMEM;
        }
        r = read_file(path, &s->source);
        if (r < 0) {
                if (asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                sim_scenario_free(s);
                return r;
        }

        for (line = s->source; *line && !expect; line = next) {
                _cleanup_free_ char *copy = NULL;
                char *tokens[TOKENS_MAX];
                size_t n, len;

                next = strchr(line, '\n');
                len = next ? (size_t) (next - line) : strlen(line);
                next = next ? next + 1 : line + len;
                p.line++;
                copy = strndup(line, len);
                if (!copy) {
                        r = -ENOMEM;
                        break;
                }
                n = split(copy, tokens);
                if (n == 0 || tokens[0][0] == '#')
                        continue;
                if (streq(tokens[0], "node"))
                        r = parse_node(&p, tokens, n);
                else if (streq(tokens[0], "vm"))
                        r = n >= 2 ? add_vm(&p, tokens[1], tokens + 2, n - 2, 0)
                                   : fail(&p, "expected: vm NAME ...");
                else if (streq(tokens[0], "vms"))
                        r = parse_vms(&p, tokens, n);
                else if (streq(tokens[0], "at"))
                        r = parse_step(&p, tokens, n);
                else if (streq(tokens[0], "run")) {
                        r = n == 2 ? parse_uint(tokens[1], SIM_TIME_MAX,
                                                &s->duration)
                                   : -EINVAL;
                        if (r < 0)
                                r = fail(&p, "expected: run SECONDS");
                } else if (streq(tokens[0], "expect") && n == 1) {
                        expect = true;
                        s->expect_end = (size_t) (next - s->source);
                } else
                        r = fail(&p, "unknown line: %s", tokens[0]);
                if (r < 0)
                        break;
        }
        if (r >= 0 && !expect)
                r = fail(&p, "no \"expect\" line");
        if (r >= 0 && s->n_nodes == 0)
                r = fail(&p, "no nodes");
        if (r < 0) {
                *ret_error = TAKE_PTR(p.error);
                if (!*ret_error && asprintf(ret_error, "%s: %s", path,
                                            strerror(-r)) < 0)
                        *ret_error = NULL;
                sim_scenario_free(s);
                return r;
        }
        s->expected = strdup(s->source + s->expect_end);
        if (!s->expected) {
                sim_scenario_free(s);
                return -ENOMEM;
        }
        if (s->duration == 0)
                s->duration = (s->n_steps ? s->steps[s->n_steps - 1].at : 0) +
                              SIM_AFTER_LAST_STEP;
        *ret = s;
        return 0;
}

struct sim_scenario *sim_scenario_free(struct sim_scenario *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_nodes; i++)
                free(s->nodes[i].name);
        for (size_t i = 0; i < s->n_vms; i++)
                free(s->vms[i].name);
        free(s->vms);
        for (size_t i = 0; i < s->n_steps; i++) {
                free(s->steps[i].text);
                if (s->steps[i].assignments)
                        for (char **a = s->steps[i].assignments; *a; a++)
                                free(*a);
                free(s->steps[i].assignments);
        }
        free(s->steps);
        free(s->expected);
        free(s->source);
        free(s->path);
        free(s);
        return NULL;
}
