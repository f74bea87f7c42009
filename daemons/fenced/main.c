/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-fenced: arguments, signals, the loop, setup and teardown. The work
 * lives in fenced-*.c (see fenced.h).
 *   haven-fenced [--socket PATH] [--domain-socket PATH]
 *                [--monitor-interval SECONDS] [--request-timeout SECONDS]
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "haven/log.h"
#include "haven/loop.h"

#include "fenced.h"

static void usage(void) {
        printf("usage: haven-fenced [OPTIONS]\n"
               "  --socket PATH             the local API socket (default %s)\n"
               "  --domain-socket PATH      haven-domaind's socket (default %s)\n"
               "  --monitor-interval SECONDS  how often every device is checked (default %llu)\n"
               "  --request-timeout SECONDS how long one fence may take (default %llu)\n"
               "  --apc-driver PATH         the native APC driver (default: haven-fence-apc\n"
               "                            next to this program)\n",
               FENCED_SOCKET_DEFAULT, FENCED_DOMAIN_SOCKET_DEFAULT,
               FENCED_MONITOR_INTERVAL_DEFAULT_USEC / 1000000ULL,
               FENCED_REQUEST_TIMEOUT_DEFAULT_USEC / 1000000ULL);
}

/* Seconds (1..3600, fractions allowed) → usec; false when invalid. */
static bool parse_seconds(const char *s, uint64_t *ret) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || *end || !(v >= 0.1 && v <= 3600))
                return false;
        *ret = (uint64_t) (v * 1e6);
        return true;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"socket", required_argument, NULL, 's'},
                {"domain-socket", required_argument, NULL, 'd'},
                {"monitor-interval", required_argument, NULL, 'm'},
                {"request-timeout", required_argument, NULL, 't'},
                {"apc-driver", required_argument, NULL, 'A'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        struct fenced f = {
                .socket_path = (char *) FENCED_SOCKET_DEFAULT,
                .domain_socket = (char *) FENCED_DOMAIN_SOCKET_DEFAULT,
                .monitor_interval_usec = FENCED_MONITOR_INTERVAL_DEFAULT_USEC,
                .request_timeout_usec = FENCED_REQUEST_TIMEOUT_DEFAULT_USEC,
        };
        const char *apc_driver = NULL;
        int c, r;

        log_set_ident("haven-fenced");
        log_parse_environment();

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        f.socket_path = optarg;
                        break;
                case 'd':
                        f.domain_socket = optarg;
                        break;
                case 'm':
                        if (!parse_seconds(optarg, &f.monitor_interval_usec)) {
                                fprintf(stderr, "--monitor-interval takes 0.1 to 3600 seconds\n");
                                return 2;
                        }
                        break;
                case 't':
                        if (!parse_seconds(optarg, &f.request_timeout_usec)) {
                                fprintf(stderr, "--request-timeout takes 0.1 to 3600 seconds\n");
                                return 2;
                        }
                        break;
                case 'A':
                        apc_driver = optarg;
                        break;
                case 'h':
                        usage();
                        return 0;
                default:
                        usage();
                        return 2;
                }
        if (optind < argc) {
                usage();
                return 2;
        }
        f.started_usec = haven_now_usec(CLOCK_REALTIME);
        if (apc_driver)
                f.apc_driver = strdup(apc_driver);
        else {
                _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);

                if (!self || asprintf(&f.apc_driver, "%s/haven-fence-apc",
                                      dirname(self)) < 0)
                        f.apc_driver = NULL;
        }
        if (!f.apc_driver) {
                log_error("Failed to find the native APC driver.");
                return 1;
        }
        if (access(f.apc_driver, X_OK) < 0)
                log_warning_errno(-errno, "The native APC driver \"%s\" cannot run, "
                                          "apc-snmp devices will fail: %m",
                                  f.apc_driver);

        r = haven_loop_new(&f.event);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                goto out;
        }
        (void) mkdir("/run/haven", 0755);
        r = fenced_api_start(&f);
        if (r < 0) {
                log_error_errno(r, "Failed to listen on \"%s\": %m",
                                f.socket_path);
                goto out;
        }
        r = fenced_domain_connect(&f);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the link to haven-domaind: %m");
                goto out;
        }
        r = fenced_monitor_start(&f);
        if (r < 0) {
                log_error_errno(r, "Failed to set up monitoring: %m");
                goto out;
        }
        log_info("Listening on %s; checking fence devices every %llu ms.",
                 f.socket_path,
                 (unsigned long long) (f.monitor_interval_usec / 1000u));

        r = sd_event_loop(f.event);
        log_info("Shutting down");
out:
        fenced_requests_free(&f);
        fenced_monitor_stop(&f);
        haven_msg_server_free(f.server);
        haven_domain_free(f.domain);
        fence_config_free(f.config);
        free(f.node_name);
        free(f.apc_driver);
        sd_event_unref(f.event);
        return r < 0 ? 1 : 0;
}
