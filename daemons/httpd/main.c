/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-httpd: arguments, signals, the loop, setup and teardown. The
 * server's work lives in httpd-*.c.
 *   haven-httpd [--listen ADDR] [--port N] [--http] [--state-dir DIR]
 *               [--cert FILE] [--key FILE] [--ui-dir DIR] [--socket PATH]
 *               [--fenced-socket PATH] [--authkey FILE]
 *               [--metrics-interval SECONDS]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "haven/log.h"
#include "haven/loop.h"
#include "httpd.h"

static void usage(void) {
        printf("usage: haven-httpd [OPTIONS]\n"
               "  --listen ADDR     listen on this IP address only (default: "
               "every address)\n"
               "  --port N          the port (default %d)\n"
               "  --http            plain HTTP instead of HTTPS (the lab; "
               "never on a real network)\n"
               "  --state-dir DIR   where " HTTPD_CERT_FILE
               " and " HTTPD_KEY_FILE " live (default %s)\n"
               "  --cert FILE       the certificate (default "
               "STATE-DIR/" HTTPD_CERT_FILE ")\n"
               "  --key FILE        its key (default STATE-DIR/" HTTPD_KEY_FILE
               ")\n"
               "  --ui-dir DIR      the built web UI (default %s)\n"
               "  --socket PATH     haven-domaind's socket (default %s)\n"
               "  --fenced-socket PATH  haven-fenced's socket (default %s)\n"
               "  --authkey FILE    corosync's key, for node-to-node consoles "
               "(default %s)\n"
               "  --metrics-interval SECONDS  how often this node's CPU, "
               "memory and disk\n"
               "                    use is published (default 2; 0: never)\n",
               HTTPD_PORT_DEFAULT, HTTPD_STATE_DIR_DEFAULT,
               HTTPD_UI_DIR_DEFAULT, HTTPD_DOMAIND_SOCKET_DEFAULT,
               HTTPD_FENCED_SOCKET_DEFAULT, HTTPD_AUTHKEY_DEFAULT);
}

static int parse_port(const char *s, uint16_t *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end || v > 65535 || s[0] == '-')
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"listen", required_argument, NULL, 'l'},
                {"port", required_argument, NULL, 'p'},
                {"http", no_argument, NULL, 'H'},
                {"state-dir", required_argument, NULL, 'd'},
                {"cert", required_argument, NULL, 'c'},
                {"key", required_argument, NULL, 'k'},
                {"ui-dir", required_argument, NULL, 'u'},
                {"socket", required_argument, NULL, 's'},
                {"fenced-socket", required_argument, NULL, 'f'},
                {"authkey", required_argument, NULL, 'a'},
                {"metrics-interval", required_argument, NULL, 'm'},
                {"help", no_argument, NULL, 'h'},
                {}};
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(httpd_freep) struct httpd *h = NULL;
        _cleanup_free_ char *cert = NULL, *key = NULL;
        const char *state_dir = HTTPD_STATE_DIR_DEFAULT, *cert_arg = NULL,
                   *key_arg = NULL;
        struct httpd_config config;
        int c, r;

        log_set_ident("haven-httpd");
        log_parse_environment();
        httpd_config_init(&config);

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'l':
                        config.listen_address = optarg;
                        break;
                case 'p':
                        if (parse_port(optarg, &config.port) < 0) {
                                log_error("Bad port \"%s\"", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case 'H':
                        config.tls = false;
                        break;
                case 'd':
                        state_dir = optarg;
                        break;
                case 'c':
                        cert_arg = optarg;
                        break;
                case 'k':
                        key_arg = optarg;
                        break;
                case 'u':
                        config.ui_dir = optarg;
                        break;
                case 's':
                        config.domaind_socket = optarg;
                        break;
                case 'f':
                        config.fenced_socket = optarg;
                        break;
                case 'a':
                        config.authkey_path = optarg;
                        break;
                case 'm': {
                        char *end;
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || v > 3600 ||
                            optarg[0] == '-') {
                                log_error("Bad --metrics-interval \"%s\" "
                                          "(0 to 3600 seconds)",
                                          optarg);
                                return EXIT_FAILURE;
                        }
                        config.metrics_interval_usec =
                                (uint64_t) v * 1000000ull;
                        break;
                }
                case 'h':
                        usage();
                        return EXIT_SUCCESS;
                default:
                        usage();
                        return EXIT_FAILURE;
                }
        if (optind < argc) {
                log_error("Unexpected argument \"%s\"", argv[optind]);
                return EXIT_FAILURE;
        }

        if (cert_arg)
                config.cert_path = cert_arg;
        else if (asprintf(&cert, "%s/" HTTPD_CERT_FILE, state_dir) >= 0)
                config.cert_path = cert;
        else
                return EXIT_FAILURE;
        if (key_arg)
                config.key_path = key_arg;
        else if (asprintf(&key, "%s/" HTTPD_KEY_FILE, state_dir) >= 0)
                config.key_path = key;
        else
                return EXIT_FAILURE;
        /* Every node serves the same way: consoles across nodes reach the
         * others' haven-httpd on our port, with or without TLS as we. */
        config.peer_port = config.port;
        config.peer_tls = config.tls;
        config.metrics_dir = state_dir;
        if (!config.tls)
                log_warning("Serving plain HTTP (--http): passwords and "
                            "sessions travel in clear text");

        r = haven_loop_new(&event);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                return EXIT_FAILURE;
        }
        r = httpd_new(event, &config, &h);
        if (r < 0)
                return EXIT_FAILURE;
        r = sd_event_loop(event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return EXIT_FAILURE;
        }
        log_info("Stopping");
        return EXIT_SUCCESS;
}
