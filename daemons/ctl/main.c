/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * havenctl: arguments and dispatch only. Options are parsed once for all
 * commands (GNU style, anywhere on the line); each command says which it
 * accepts; the work is in ctl-*.c. Exit status: 0 ok, 1 domaind answered
 * with an error, 2 usage error or domaind not reachable.
 */
#include <getopt.h>
#include <pwd.h>

#include "ctl.h"
#include "haven/log.h"

enum {
        OPT_JSON = 1u << 0,
        OPT_NOW = 1u << 1,
        OPT_FOLLOW = 1u << 2,
        OPT_LIMIT = 1u << 3,
        OPT_ADMIN = 1u << 4,
        OPT_PASSWORD = 1u << 5,
        OPT_ADDRESS = 1u << 6,
        OPT_ACTION = 1u << 7,
        OPT_REASON = 1u << 8,
        OPT_OUTLET = 1u << 9,
        OPT_WAIT = 1u << 10,
        OPT_NO_WAIT = 1u << 11,
        OPT_TIMEOUT = 1u << 12,
        OPT_NONE = 1u << 13,
        OPT_LAST = OPT_NONE,
};

static const struct command {
        const char *verb;
        const char *object; /* second word, or NULL */
        int (*run)(struct ctl *c, int argc, char **argv);
        unsigned options;
} commands[] = {
        { "status", NULL, ctl_status, OPT_JSON },
        { "cluster", "create", ctl_cluster_create, OPT_JSON | OPT_ADMIN | OPT_PASSWORD | OPT_ADDRESS },
        { "cluster", "join", ctl_cluster_join, OPT_JSON | OPT_ADMIN | OPT_PASSWORD },
        { "cluster", "remove", ctl_cluster_remove, OPT_JSON },
        { "get", NULL, ctl_get, OPT_JSON },
        { "add", NULL, ctl_add, OPT_JSON | OPT_NOW },
        { "set", NULL, ctl_set, OPT_JSON | OPT_NOW },
        { "delete", NULL, ctl_delete, OPT_JSON | OPT_NOW },
        { "changes", NULL, ctl_changes, OPT_JSON },
        { "activate", NULL, ctl_activate, OPT_JSON | OPT_FOLLOW },
        { "discard", NULL, ctl_discard, OPT_JSON },
        { "jobs", NULL, ctl_jobs, OPT_JSON },
        { "job", "log", ctl_job_log, OPT_JSON | OPT_FOLLOW },
        { "audit", NULL, ctl_audit, OPT_JSON | OPT_LIMIT },
        { "tables", NULL, ctl_list_tables, 0 },
        { "fence", "status", ctl_fence_status, OPT_JSON },
        { "fence", "test", ctl_fence_test, OPT_JSON | OPT_OUTLET },
        { "fence", "check", ctl_fence_check, OPT_JSON },
        { "fence", "node", ctl_fence_node, OPT_JSON | OPT_ACTION | OPT_REASON },
        { "fence", "confirm", ctl_fence_confirm, OPT_JSON },
        { "fence", "requests", ctl_fence_requests, OPT_JSON | OPT_LIMIT },
        { "fence", "agents", ctl_fence_agents, OPT_JSON },
        { "fence", "agent", ctl_fence_agent, OPT_JSON },
        { "vm", "list", ctl_vm_list, OPT_JSON },
        { "vm", "show", ctl_vm_show, OPT_JSON },
        { "vm", "start", ctl_vm_start, OPT_JSON | OPT_NO_WAIT | OPT_TIMEOUT },
        { "vm", "shutdown", ctl_vm_shutdown, OPT_JSON | OPT_NO_WAIT | OPT_TIMEOUT },
        { "vm", "reboot", ctl_vm_reboot, OPT_JSON | OPT_NO_WAIT | OPT_TIMEOUT },
        { "vm", "reset", ctl_vm_reset, OPT_JSON | OPT_NO_WAIT | OPT_TIMEOUT },
        { "vm", "poweroff", ctl_vm_poweroff, OPT_JSON | OPT_NO_WAIT | OPT_TIMEOUT },
        { "vm", "release", ctl_vm_release, OPT_JSON | OPT_NO_WAIT | OPT_TIMEOUT },
        { "vm", "migrate", ctl_vm_migrate, OPT_JSON | OPT_NO_WAIT | OPT_TIMEOUT },
        { "vm", "prefer", ctl_vm_prefer, OPT_JSON | OPT_NONE },
        { "node", "active", ctl_node_active, OPT_JSON },
        { "node", "standby", ctl_node_standby, OPT_JSON },
        { "node", "maintenance", ctl_node_maintenance, OPT_JSON | OPT_WAIT | OPT_TIMEOUT },
};

static void help(FILE *f) {
        fputs("Usage: havenctl [--socket PATH] COMMAND [ARGS...] [OPTIONS]\n"
              "\n"
              "The command line of a Haven node; talks to the local haven-domaind.\n"
              "\n"
              "Commands:\n"
              "  status [--json]                      the cluster at a glance\n"
              "  cluster create NAME --admin NAME --password-file FILE [--address ADDR]\n"
              "  cluster join ADDRESS --admin NAME --password-file FILE\n"
              "  cluster remove NODE                  take a node out of the cluster\n"
              "  get TABLE [NAME|ID] [COLUMN=VALUE...] [--json]\n"
              "  add TABLE COLUMN=VALUE... [--now]    stage a new row\n"
              "  set TABLE NAME|ID COLUMN=VALUE... [--now]\n"
              "                                       stage a change of a row\n"
              "  delete TABLE NAME|ID [--now]         stage the removal of a row\n"
              "  changes [--json]                     the staged changes\n"
              "  activate [--follow]                  apply every staged change\n"
              "  discard                              drop every staged change\n"
              "  jobs [--json]                        jobs (activations, ...)\n"
              "  job log ID [--follow]                a job's log; --follow waits for its end\n"
              "  audit [--limit N] [--json]           the last N changes (default 20)\n"
              "  tables                               the tables and their aliases\n"
              "  fence status [--json]                devices and which nodes can be fenced\n"
              "  fence test DEVICE [--outlet O]...    check a device live (no switching)\n"
              "  fence check NODE                     read the state of a node's outlets\n"
              "  fence node NODE [--action off|reboot|on] [--reason TEXT]\n"
              "                                       fence a node (through the domain) and\n"
              "                                       wait for the outcome\n"
              "  fence confirm NODE                   confirm a node is off (manual fencing)\n"
              "  fence requests [--limit N]           the last fence requests\n"
              "  fence agents                         the installed fence agents\n"
              "  fence agent AGENT                    an agent's parameters\n"
              "  vm list [--json]                     every VM: where it runs, its state, why\n"
              "  vm show NAME [--json]                a VM: placement, reports, commands\n"
              "  vm start|shutdown|reboot|reset|poweroff|release NAME [--no-wait]\n"
              "                                       ask the VM manager and wait for its\n"
              "                                       answer (default 120 s)\n"
              "  vm migrate NAME NODE [--no-wait]     live-migrate (waits up to 600 s)\n"
              "  vm prefer NAME NODE|--none           set or clear the preferred node\n"
              "  node active|standby NODE             a node's admin state, at once\n"
              "  node maintenance NODE [--wait]       empty a node; --wait until no VM\n"
              "                                       runs there (default 1800 s)\n"
              "\n"
              "Values (add, set, and filters of get):\n"
              "  COLUMN=VALUE    a JSON number, true, false, null, [array] or {object} if\n"
              "                  VALUE is exactly one, otherwise the text as a string\n"
              "  COLUMN:=JSON    always JSON (a string needs its quotes: name:='\"x\"')\n"
              "  COLUMN==TEXT    always the text as a string (mac==52:54:00:00:00:01,\n"
              "                  description==true)\n"
              "Rows are named by their name or their numeric id. Tables take plural or\n"
              "singular names (vms, vm). add, set and delete are staged until\n"
              "\"havenctl activate\"; --now applies them at once.\n"
              "\n"
              "Options:\n"
              "  --socket PATH          domaind's socket (default " CTL_SOCKET_DEFAULT ",\n"
              "                         or $" CTL_SOCKET_ENV ")\n"
              "  --json                 machine-readable output\n"
              "  --now                  apply instead of staging\n"
              "  -f, --follow           follow a job until it is done or failed\n"
              "  -n, --limit N          how many audit entries\n"
              "  --admin NAME           the cluster's administrator\n"
              "  --password-file FILE   the administrator's password: the first line of\n"
              "                         FILE (\"-\" for standard input)\n"
              "  --password PASSWORD    the same on the command line (visible in ps!)\n"
              "  --address ADDRESS      cluster create: this node's interconnect address\n"
              "  --action ACTION        fence node: off (default), reboot or on\n"
              "  --reason TEXT          fence node: why (kept with the request)\n"
              "  --outlet OUTLET        fence test: an outlet to read (repeatable)\n"
              "  --fenced-socket PATH   haven-fenced's socket (default " CTL_FENCED_SOCKET_DEFAULT ")\n"
              "  --no-wait              vm commands: return once the command is written\n"
              "  --wait                 node maintenance: wait until its VMs moved away\n"
              "  --timeout SECONDS      how long to wait (1 to 86400)\n"
              "  --none                 vm prefer: no preferred node\n"
              "  -h, --help             this text\n"
              "\n"
              "Exit status: 0 ok, 1 haven-domaind answered with an error, 2 usage error\n"
              "or haven-domaind not reachable.\n",
              f);
}

static void set_actor(struct ctl *c) {
        struct passwd *pw = getpwuid(geteuid());

        if (pw && pw->pw_name)
                snprintf(c->actor, sizeof c->actor, "havenctl:%.60s", pw->pw_name);
        else
                snprintf(c->actor, sizeof c->actor, "havenctl:uid%u", (unsigned) geteuid());
}

static int parse_limit(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || v == 0 || v > 100000)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static const char *option_name(unsigned bit) {
        switch (bit) {
        case OPT_JSON: return "--json";
        case OPT_NOW: return "--now";
        case OPT_FOLLOW: return "--follow";
        case OPT_LIMIT: return "--limit";
        case OPT_ADMIN: return "--admin";
        case OPT_PASSWORD: return "--password-file/--password";
        case OPT_ADDRESS: return "--address";
        case OPT_ACTION: return "--action";
        case OPT_REASON: return "--reason";
        case OPT_OUTLET: return "--outlet";
        case OPT_WAIT: return "--wait";
        case OPT_NO_WAIT: return "--no-wait";
        case OPT_TIMEOUT: return "--timeout";
        case OPT_NONE: return "--none";
        default: return "?";
        }
}

int main(int argc, char **argv) {
        enum { ARG_SOCKET = 0x100, ARG_JSON, ARG_NOW, ARG_ADMIN, ARG_PASSWORD,
               ARG_PASSWORD_FILE, ARG_ADDRESS, ARG_ACTION, ARG_REASON, ARG_OUTLET,
               ARG_FENCED_SOCKET, ARG_WAIT, ARG_NO_WAIT, ARG_TIMEOUT, ARG_NONE };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "json", no_argument, NULL, ARG_JSON },
                { "now", no_argument, NULL, ARG_NOW },
                { "follow", no_argument, NULL, 'f' },
                { "limit", required_argument, NULL, 'n' },
                { "admin", required_argument, NULL, ARG_ADMIN },
                { "password", required_argument, NULL, ARG_PASSWORD },
                { "password-file", required_argument, NULL, ARG_PASSWORD_FILE },
                { "address", required_argument, NULL, ARG_ADDRESS },
                { "action", required_argument, NULL, ARG_ACTION },
                { "reason", required_argument, NULL, ARG_REASON },
                { "outlet", required_argument, NULL, ARG_OUTLET },
                { "fenced-socket", required_argument, NULL, ARG_FENCED_SOCKET },
                { "wait", no_argument, NULL, ARG_WAIT },
                { "no-wait", no_argument, NULL, ARG_NO_WAIT },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "none", no_argument, NULL, ARG_NONE },
                {}
        };
        struct ctl c = { .limit = CTL_AUDIT_LIMIT_DEFAULT };
        const struct command *cmd = NULL;
        unsigned given = 0;
        const char *e;
        int opt, status, words;

        log_set_ident("havenctl");
        log_parse_environment();

        while ((opt = getopt_long(argc, argv, "hfn:", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        help(stdout);
                        return CTL_EXIT_OK;
                case ARG_SOCKET:
                        c.socket_path = optarg;
                        break;
                case ARG_JSON:
                        c.json = true;
                        given |= OPT_JSON;
                        break;
                case ARG_NOW:
                        c.now = true;
                        given |= OPT_NOW;
                        break;
                case 'f':
                        c.follow = true;
                        given |= OPT_FOLLOW;
                        break;
                case 'n':
                        if (parse_limit(optarg, &c.limit) < 0)
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "--limit wants a number from 1 to 100000");
                        given |= OPT_LIMIT;
                        break;
                case ARG_ADMIN:
                        c.admin = optarg;
                        given |= OPT_ADMIN;
                        break;
                case ARG_PASSWORD:
                        c.password = optarg;
                        given |= OPT_PASSWORD;
                        break;
                case ARG_PASSWORD_FILE:
                        c.password_file = optarg;
                        given |= OPT_PASSWORD;
                        break;
                case ARG_ADDRESS:
                        c.address = optarg;
                        given |= OPT_ADDRESS;
                        break;
                case ARG_ACTION:
                        c.action = optarg;
                        given |= OPT_ACTION;
                        break;
                case ARG_REASON:
                        if (strlen(optarg) > 1024)
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "--reason is at most 1024 characters");
                        c.reason = optarg;
                        given |= OPT_REASON;
                        break;
                case ARG_OUTLET:
                        if (c.n_outlets >= CTL_OUTLETS_MAX)
                                return ctl_fail(CTL_EXIT_USAGE, "at most %d --outlet",
                                                CTL_OUTLETS_MAX);
                        c.outlets[c.n_outlets++] = optarg;
                        given |= OPT_OUTLET;
                        break;
                case ARG_FENCED_SOCKET:
                        c.fenced_socket = optarg;
                        break;
                case ARG_WAIT:
                        c.wait = true;
                        given |= OPT_WAIT;
                        break;
                case ARG_NO_WAIT:
                        c.no_wait = true;
                        given |= OPT_NO_WAIT;
                        break;
                case ARG_TIMEOUT:
                        if (ctl_parse_seconds(optarg, &c.timeout_sec) < 0)
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "--timeout wants whole seconds from 1 to %u",
                                                CTL_WAIT_SEC_MAX);
                        given |= OPT_TIMEOUT;
                        break;
                case ARG_NONE:
                        c.none = true;
                        given |= OPT_NONE;
                        break;
                default:
                        fputs("Try \"havenctl --help\".\n", stderr);
                        return CTL_EXIT_USAGE;
                }

        if (!c.socket_path) {
                e = getenv(CTL_SOCKET_ENV);
                c.socket_path = e && *e ? e : CTL_SOCKET_DEFAULT;
        }
        if (optind >= argc) {
                help(stderr);
                return CTL_EXIT_USAGE;
        }
        if (streq(argv[optind], "help")) {
                help(stdout);
                return CTL_EXIT_OK;
        }

        for (size_t i = 0; i < ELEMENTSOF(commands) && !cmd; i++) {
                if (!streq(argv[optind], commands[i].verb))
                        continue;
                if (!commands[i].object)
                        cmd = &commands[i];
                else if (optind + 1 < argc && streq(argv[optind + 1], commands[i].object))
                        cmd = &commands[i];
        }
        if (!cmd) {
                bool group = streq(argv[optind], "cluster") || streq(argv[optind], "job") ||
                             streq(argv[optind], "fence") || streq(argv[optind], "vm") ||
                             streq(argv[optind], "node");
                return ctl_fail(CTL_EXIT_USAGE, "unknown command \"%s%s%s\" (try \"havenctl --help\")",
                                argv[optind], group && optind + 1 < argc ? " " : "",
                                group && optind + 1 < argc ? argv[optind + 1] : "");
        }
        for (unsigned bit = 1; bit <= OPT_LAST; bit <<= 1)
                if ((given & bit) && !(cmd->options & bit))
                        return ctl_fail(CTL_EXIT_USAGE, "%s does not apply to \"%s%s%s\"",
                                        option_name(bit), cmd->verb, cmd->object ? " " : "",
                                        cmd->object ? cmd->object : "");

        set_actor(&c);
        words = cmd->object ? 2 : 1;
        status = cmd->run(&c, argc - optind - words, argv + optind + words);
        ctl_done(&c);
        return status;
}
