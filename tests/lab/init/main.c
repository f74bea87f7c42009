/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-lab-init: arguments, signals and the loop of a lab node's PID 1.
 *   haven-lab-init run --node NAME --services FILE --record DIR --log-dir DIR
 *   haven-lab-init ctl ACTION [SERVICE] [--json]
 * The node's mounts are prepared by tests/lab/node-boot before it execs us.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "haven/log.h"
#include "init.h"

static int on_sigchld(sd_event_source *source, const struct signalfd_siginfo *si,
                      void *userdata) {
        (void) supervisor_reap(userdata);
        return 0;
}

static int on_exit_signal(sd_event_source *source, const struct signalfd_siginfo *si,
                          void *userdata) {
        log_info("Received signal %d, shutting down", (int) si->ssi_signo);
        return sd_event_exit(sd_event_source_get_event(source), 0);
}

static int run(int argc, char **argv) {
        static const struct option options[] = {
                { "node", required_argument, NULL, 'n' },
                { "services", required_argument, NULL, 's' },
                { "record", required_argument, NULL, 'r' },
                { "log-dir", required_argument, NULL, 'l' },
                {}
        };
        struct supervisor s = {};
        const char *services = NULL;
        sigset_t mask;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'n': s.node = optarg; break;
                case 's': services = optarg; break;
                case 'r': s.record_dir = optarg; break;
                case 'l': s.log_dir = optarg; break;
                default: return 2;
                }
        if (!s.node || !services || !s.record_dir || !s.log_dir) {
                fprintf(stderr, "haven-lab-init run: --node, --services, --record and --log-dir are required\n");
                return 2;
        }

        r = supervisor_load_services(&s, services);
        if (r < 0)
                goto out;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        /* If we are not PID 1 (a test), still adopt orphans. */
        (void) prctl(PR_SET_CHILD_SUBREAPER, 1);

        r = sd_event_default(&s.event);
        if (r < 0)
                goto out;
        r = sd_event_add_signal(s.event, NULL, SIGCHLD, on_sigchld, &s);
        if (r >= 0)
                r = sd_event_add_signal(s.event, NULL, SIGTERM, on_exit_signal, &s);
        if (r >= 0)
                r = sd_event_add_signal(s.event, NULL, SIGINT, on_exit_signal, &s);
        if (r < 0) {
                log_error_errno(r, "Failed to set up signal handling: %m");
                goto out;
        }
        r = control_open(&s);
        if (r < 0) {
                log_error_errno(r, "Failed to open %s: %m", INIT_SOCKET_PATH);
                goto out;
        }

        log_info("Node \"%s\" booting", s.node);
        supervisor_autostart(&s);
        (void) supervisor_write_record(&s);
        r = sd_event_loop(s.event);

        /* Orderly shutdown (SIGTERM): stop every service, then reap. A power
         * cut is SIGKILL to us and never gets here. */
        for (size_t i = 0; i < s.n_services; i++)
                if (s.services[i].pid > 0)
                        (void) kill(-s.services[i].pid, SIGTERM);
out:
        supervisor_done(&s);
        s.event = sd_event_unref(s.event);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        log_set_ident("haven-lab-init");
        log_parse_environment();

        if (argc >= 2 && streq(argv[1], "run"))
                return run(argc - 1, argv + 1);
        if (argc >= 2 && streq(argv[1], "ctl"))
                return control_client(argc - 2, argv + 2);
        fprintf(stderr, "usage: haven-lab-init run --node NAME --services FILE --record DIR --log-dir DIR\n"
                        "       haven-lab-init ctl start|stop|restart|reload|status [SERVICE] [--json]\n");
        return 2;
}
