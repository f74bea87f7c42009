/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-pdusim: arguments, signals and the loop of the lab's APC power strip
 * simulator. The outlets live in pdusim-outlets.c, the SNMP agent in
 * pdusim-agent.c. A bad argument is exit status 2, a failure to start 1.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/agent/net-snmp-agent-includes.h>

#include "haven/log.h"
#include "pdusim.h"

static void usage(FILE *f) {
        fprintf(f,
                "usage: haven-pdusim [OPTIONS]\n"
                "An APC switched rack PDU (PowerNet-MIB) as an SNMP agent, for the lab.\n"
                "  --listen ADDR:PORT           IPv4 address and UDP port (default %s)\n"
                "  --model rpdu|masterswitch    sysObjectID .318.1.3.4.5 (AP79xx, default)\n"
                "                               or .318.1.3.4.2 (old MasterSwitch)\n"
                "  --outlets N                  number of outlets, 1..%d (default %d)\n"
                "  --outlet-name N=NAME         outlet N's name, at most %d characters\n"
                "                               (repeatable; default \"Outlet N\")\n"
                "  --delay-ms N                 switching delay, 0..%u (default 0)\n"
                "  --community-ro NAME          read-only community, v1/v2c (default public)\n"
                "  --community-rw NAME          read-write community, v1/v2c (default private)\n"
                "  --v3-user NAME               SNMPv3 read-write user (SHA + AES, authPriv)\n"
                "  --v3-auth-password P         its authentication pass phrase (%d..%d)\n"
                "  --v3-priv-password P         its privacy pass phrase (%d..%d)\n"
                "  --state-dir DIR              keep outlet states (DIR/%s) and SNMPv3\n"
                "                               engine state (DIR/%s) there\n"
                "  --power-command PATH         run PATH OUTLET on|off on every change\n"
                "  --log FILE                   append the log to FILE instead of stderr\n"
                "  --pid-file FILE              write the PID to FILE once listening\n",
                PDU_LISTEN_DEFAULT, PDU_OUTLETS_MAX, PDU_OUTLETS_DEFAULT, PDU_OUTLET_NAME_MAX,
                PDU_DELAY_MS_MAX, PDU_SECRET_MIN, PDU_SECRET_MAX, PDU_SECRET_MIN,
                PDU_SECRET_MAX, PDU_STATE_FILE, PDU_SNMP_DIR);
}

/* ==== Arguments ==== */

/* Decimal min..max, nothing else (no sign, no spaces, no suffix). */
static int parse_unsigned(const char *s, unsigned long min, unsigned long max,
                          unsigned *ret) {
        unsigned long v;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end || v < min || v > max)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

/* Community, user names and pass phrases become words of net-snmp
 * configuration lines: printable, no space, quote, backslash or '#'. */
static bool token_valid(const char *s, size_t min, size_t max) {
        size_t n = strlen(s);

        if (n < min || n > max)
                return false;
        for (const char *c = s; *c; c++)
                if (*c <= 0x20 || *c > 0x7e || strchr("\"'\\#", *c))
                        return false;
        return true;
}

static int parse_listen(const char *s, struct pdu_options *o) {
        const char *colon = strrchr(s, ':');
        struct in_addr addr;
        size_t n;

        if (!colon)
                return -EINVAL;
        n = (size_t) (colon - s);
        if (n == 0 || n >= sizeof o->listen_address)
                return -EINVAL;
        memcpy(o->listen_address, s, n);
        o->listen_address[n] = '\0';
        if (inet_pton(AF_INET, o->listen_address, &addr) != 1)
                return -EINVAL;
        return parse_unsigned(colon + 1, 1, 65535, &o->port);
}

/* N=NAME into o->names (N checked against the final outlet count later). */
static int parse_outlet_name(const char *s, struct pdu_options *o) {
        _cleanup_free_ char *number = NULL;
        const char *eq = strchr(s, '=');
        unsigned n;

        if (!eq)
                return -EINVAL;
        number = strndup(s, (size_t) (eq - s));
        if (!number)
                return -ENOMEM;
        if (parse_unsigned(number, 1, PDU_OUTLETS_MAX, &n) < 0)
                return -ERANGE;
        if (eq[1] == '\0' || !outlet_name_valid(eq + 1, strlen(eq + 1)))
                return -EINVAL;
        if (o->names[n - 1])
                return -EEXIST;
        o->names[n - 1] = eq + 1;
        return 0;
}

static int bad(const char *option, const char *value, const char *why) {
        fprintf(stderr, "haven-pdusim: %s%s \"%s\": %s\n", option[0] == '-' ? "" : "--",
                option, value, why);
        return -EINVAL;
}

/* Fills o from argv. Returns 0, 1 after --help, or -EINVAL (message
 * printed): the caller exits 2. */
static int parse_arguments(int argc, char **argv, struct pdu_options *o) {
        enum {
                ARG_LISTEN = 0x100, ARG_MODEL, ARG_OUTLETS, ARG_OUTLET_NAME, ARG_DELAY_MS,
                ARG_COMMUNITY_RO, ARG_COMMUNITY_RW, ARG_V3_USER, ARG_V3_AUTH, ARG_V3_PRIV,
                ARG_STATE_DIR, ARG_POWER_COMMAND, ARG_LOG, ARG_PID_FILE,
        };
        static const struct option options[] = {
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "model", required_argument, NULL, ARG_MODEL },
                { "outlets", required_argument, NULL, ARG_OUTLETS },
                { "outlet-name", required_argument, NULL, ARG_OUTLET_NAME },
                { "delay-ms", required_argument, NULL, ARG_DELAY_MS },
                { "community-ro", required_argument, NULL, ARG_COMMUNITY_RO },
                { "community-rw", required_argument, NULL, ARG_COMMUNITY_RW },
                { "v3-user", required_argument, NULL, ARG_V3_USER },
                { "v3-auth-password", required_argument, NULL, ARG_V3_AUTH },
                { "v3-priv-password", required_argument, NULL, ARG_V3_PRIV },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "power-command", required_argument, NULL, ARG_POWER_COMMAND },
                { "log", required_argument, NULL, ARG_LOG },
                { "pid-file", required_argument, NULL, ARG_PID_FILE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c, index = 0, r;

        *o = (struct pdu_options) {
                .model = PDU_MODEL_RPDU,
                .n_outlets = PDU_OUTLETS_DEFAULT,
                .community_ro = "public",
                .community_rw = "private",
        };
        (void) parse_listen(PDU_LISTEN_DEFAULT, o);

        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, &index)) >= 0)
                switch (c) {
                case ARG_LISTEN:
                        if (parse_listen(optarg, o) < 0)
                                return bad("--listen", optarg, "expected IPV4ADDRESS:PORT");
                        break;
                case ARG_MODEL:
                        o->model = pdu_model_from_string(optarg);
                        if (o->model < 0)
                                return bad("--model", optarg, "expected rpdu or masterswitch");
                        break;
                case ARG_OUTLETS:
                        if (parse_unsigned(optarg, 1, PDU_OUTLETS_MAX, &o->n_outlets) < 0)
                                return bad("--outlets", optarg, "expected 1..48");
                        break;
                case ARG_OUTLET_NAME:
                        r = parse_outlet_name(optarg, o);
                        if (r == -EEXIST)
                                return bad("--outlet-name", optarg, "that outlet is named twice");
                        if (r < 0)
                                return bad("--outlet-name", optarg,
                                           "expected N=NAME, N 1..48, NAME 1..20 printable ASCII characters");
                        break;
                case ARG_DELAY_MS:
                        if (parse_unsigned(optarg, 0, PDU_DELAY_MS_MAX, &o->delay_ms) < 0)
                                return bad("--delay-ms", optarg, "expected 0..600000");
                        break;
                case ARG_COMMUNITY_RO:
                case ARG_COMMUNITY_RW:
                case ARG_V3_USER:
                        if (!token_valid(optarg, 1, PDU_TOKEN_MAX))
                                return bad(options[index].name, optarg,
                                           "expected 1..32 printable characters without spaces, quotes, '\\' or '#'");
                        if (c == ARG_COMMUNITY_RO)
                                o->community_ro = optarg;
                        else if (c == ARG_COMMUNITY_RW)
                                o->community_rw = optarg;
                        else
                                o->v3_user = optarg;
                        break;
                case ARG_V3_AUTH:
                case ARG_V3_PRIV:
                        if (!token_valid(optarg, PDU_SECRET_MIN, PDU_SECRET_MAX))
                                return bad(options[index].name, "...",
                                           "expected 8..64 printable characters without spaces, quotes, '\\' or '#'");
                        if (c == ARG_V3_AUTH)
                                o->v3_auth_password = optarg;
                        else
                                o->v3_priv_password = optarg;
                        break;
                case ARG_STATE_DIR:
                        o->state_dir = optarg;
                        break;
                case ARG_POWER_COMMAND:
                        if (optarg[0] != '/' || access(optarg, X_OK) < 0)
                                return bad("--power-command", optarg,
                                           "expected the absolute path of an executable");
                        o->power_command = optarg;
                        break;
                case ARG_LOG:
                        o->log_path = optarg;
                        break;
                case ARG_PID_FILE:
                        o->pid_file = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                default:
                        fprintf(stderr, "haven-pdusim: unknown option or missing value: %s\n",
                                argv[optind - 1]);
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "haven-pdusim: unexpected argument \"%s\"\n", argv[optind]);
                return -EINVAL;
        }
        for (unsigned i = o->n_outlets; i < PDU_OUTLETS_MAX; i++)
                if (o->names[i]) {
                        fprintf(stderr, "haven-pdusim: --outlet-name %u=...: the strip has %u outlets\n",
                                i + 1, o->n_outlets);
                        return -EINVAL;
                }
        if (streq(o->community_ro, o->community_rw)) {
                fprintf(stderr, "haven-pdusim: the read-only and read-write communities must differ\n");
                return -EINVAL;
        }
        if (!!o->v3_user != !!o->v3_auth_password || !!o->v3_user != !!o->v3_priv_password) {
                fprintf(stderr, "haven-pdusim: --v3-user, --v3-auth-password and --v3-priv-password go together\n");
                return -EINVAL;
        }
        return 0;
}

/* ==== Setup ==== */

static int open_log(const char *path) {
        _cleanup_close_ int fd = -1;

        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                return negative_errno();
        return 0;
}

/* Creates dir if needed and returns its absolute path (net-snmp takes a
 * relative persistent directory for one below /). */
static int make_state_dir(const char *dir, char **ret) {
        struct stat st;

        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        if (stat(dir, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        *ret = realpath(dir, NULL);
        return *ret ? 0 : negative_errno();
}

/* "PID\n" into path (atomically: whoever waits for it reads a whole PID).
 * The file says the agent listens. NULL path: nothing to do. */
static int write_pid_file(const char *path) {
        char text[32];

        if (!path)
                return 0;
        snprintf(text, sizeof text, "%d\n", (int) getpid());
        return pdu_file_replace(path, text);
}

/* SIGCHLD, SIGTERM and SIGINT arrive through a signalfd that net-snmp's
 * loop watches (register_readfd), so nothing runs in a signal handler. */
static void on_signal_fd(int fd, void *userdata) {
        struct pdu *p = userdata;
        struct signalfd_siginfo si;
        bool reap = false;

        while (read(fd, &si, sizeof si) == (ssize_t) sizeof si) {
                if (si.ssi_signo == SIGCHLD)
                        reap = true;
                else {
                        log_info("Received signal %u, shutting down", si.ssi_signo);
                        p->quit = true;
                }
        }
        if (reap)
                pdu_reap_children(p);
}

static int setup_signals(struct pdu *p) {
        sigset_t mask;
        int fd;

        (void) signal(SIGPIPE, SIG_IGN);
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (register_readfd(fd, on_signal_fd, p) != FD_REGISTERED_OK) {
                (void) close(fd);
                return -ENOMEM;
        }
        return fd;
}

int main(int argc, char **argv) {
        _cleanup_free_ char *state_dir = NULL;
        struct pdu_options options;
        struct pdu p = {};
        int signal_fd = -1, r;

        log_set_ident(PDU_APP_NAME);
        log_parse_environment();

        r = parse_arguments(argc, argv, &options);
        if (r != 0)
                return r > 0 ? 0 : 2;

        if (options.log_path) {
                r = open_log(options.log_path);
                if (r < 0) {
                        log_error_errno(r, "Failed to open the log \"%s\": %m", options.log_path);
                        return 1;
                }
        }
        if (options.state_dir) {
                r = make_state_dir(options.state_dir, &state_dir);
                if (r < 0) {
                        log_error_errno(r, "Failed to use the state directory \"%s\": %m",
                                        options.state_dir);
                        return 1;
                }
                options.state_dir = state_dir;
        }
        r = pdu_init(&p, &options);
        if (r < 0)
                return 1;
        r = pdu_save(&p);
        if (r < 0) {
                log_error_errno(r, "Failed to write the state file in \"%s\": %m", options.state_dir);
                return 1;
        }

        r = pdu_agent_start(&p);
        if (r >= 0) {
                r = signal_fd = setup_signals(&p);
                if (r < 0)
                        log_error_errno(r, "Failed to set up signal handling: %m");
        }
        if (r >= 0) {
                log_info("Listening on udp:%s:%u: %s, %u outlets, switching delay %u ms%s%s",
                         options.listen_address, options.port, pdu_model_to_string(options.model),
                         p.n_outlets, options.delay_ms, options.v3_user ? ", SNMPv3 user " : "",
                         options.v3_user ? options.v3_user : "");
                r = write_pid_file(options.pid_file);
                if (r < 0)
                        log_error_errno(r, "Failed to write \"%s\": %m", options.pid_file);
        }
        if (r >= 0)
                while (!p.quit)
                        (void) agent_check_and_process(1);
        if (r >= 0 && options.pid_file)
                (void) unlink(options.pid_file);

        pdu_done(&p);
        if (signal_fd >= 0) {
                (void) unregister_readfd(signal_fd);
                signal_fd = safe_close(signal_fd);
        }
        pdu_agent_stop(&p);
        return r < 0 ? 1 : 0;
}
