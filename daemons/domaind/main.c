/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-domaind: arguments, signals, the loop, setup and teardown. The
 * configuration domain's work lives in domaind-*.c.
 *   haven-domaind [--db PATH] [--socket PATH] [--node-name NAME]
 */
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "domaind.h"
#include "haven/log.h"
#include "haven/loop.h"

/* mkdir -p of path's parent directory. */
static int make_parent(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        char *dir;

        if (!copy)
                return -ENOMEM;
        dir = dirname(copy);
        for (char *p = dir + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        (void) mkdir(dir, 0755);
                        *p = '/';
                }
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

static void usage(void) {
        printf("usage: haven-domaind [--db PATH] [--socket PATH] [--node-name NAME] [--corosync-dir DIR]\n"
               "  --db PATH         the configuration database (default %s)\n"
               "  --socket PATH     the local API socket (default %s)\n"
               "  --node-name NAME  this node's name (default: the host name)\n"
               "  --corosync-dir DIR  where corosync.conf and authkey live (default %s)\n"
               "  --peer-port N     the TLS port other nodes use to join through this one (default %d)\n",
               DOMAIN_DB_DEFAULT, DOMAIN_SOCKET_DEFAULT, DOMAIN_COROSYNC_DIR_DEFAULT,
               DOMAIN_PEER_PORT_DEFAULT);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "db", required_argument, NULL, 'd' },
                { "socket", required_argument, NULL, 's' },
                { "node-name", required_argument, NULL, 'n' },
                { "corosync-dir", required_argument, NULL, 'c' },
                { "peer-port", required_argument, NULL, 'p' },
                { "join-fetch", required_argument, NULL, 'J' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct domain d = {
                .db_path = DOMAIN_DB_DEFAULT,
                .socket_path = DOMAIN_SOCKET_DEFAULT,
                .corosync_dir = DOMAIN_COROSYNC_DIR_DEFAULT,
                .peer_port = DOMAIN_PEER_PORT_DEFAULT,
        };
        const char *node_name = NULL, *join_host = NULL;
        int c, r;

        log_set_ident("haven-domaind");
        log_parse_environment();

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'd': d.db_path = optarg; break;
                case 's': d.socket_path = optarg; break;
                case 'n': node_name = optarg; break;
                case 'c': d.corosync_dir = optarg; break;
                case 'p': {
                        char *end;
                        unsigned long port = strtoul(optarg, &end, 10);
                        if (*end || port == 0 || port > 65535) {
                                fprintf(stderr, "--peer-port takes a port number\n");
                                return 2;
                        }
                        d.peer_port = (uint16_t) port;
                        break;
                }
                case 'J': join_host = optarg; break;
                case 'h': usage(); return 0;
                default: usage(); return 2;
                }
        if (optind < argc) {
                usage();
                return 2;
        }
        /* The joining node's helper process (see domaind-join.c). */
        if (join_host)
                return join_fetch_main(join_host, d.peer_port);
        if (node_name)
                snprintf(d.node_name, sizeof d.node_name, "%s", node_name);
        else if (gethostname(d.node_name, sizeof d.node_name - 1) < 0)
                snprintf(d.node_name, sizeof d.node_name, "unknown");

        r = haven_loop_new(&d.event);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                goto out;
        }
        r = make_parent(d.db_path);
        if (r >= 0)
                r = store_open(d.db_path, &d.store);
        if (r < 0) {
                log_error_errno(r, "Failed to open the configuration database \"%s\": %m", d.db_path);
                goto out;
        }
        r = make_parent(d.socket_path);
        if (r >= 0)
                r = api_open(&d);
        if (r < 0) {
                log_error_errno(r, "Failed to listen on \"%s\": %m", d.socket_path);
                goto out;
        }
        r = join_open(&d);
        if (r < 0)
                goto out;
        r = sync_start_timers(&d);
        if (r < 0) {
                log_error_errno(r, "Failed to set up timers: %m");
                goto out;
        }
        log_info("Node \"%s\": configuration at version %" PRIu64 ", listening on %s",
                 d.node_name, store_version(d.store), d.socket_path);

        r = cpg_connect(&d);
        if (r < 0) {
                log_info("corosync is not reachable yet; the configuration is read-only until it is");
                cpg_disconnect(&d, NULL);
                /* cpg_disconnect(NULL) does not reconnect: start the timer. */
                r = cpg_schedule_reconnect(&d);
                if (r < 0)
                        goto out;
        }

        r = sd_event_loop(d.event);
        log_info("Shutting down");
out:
        join_close(&d);
        api_close(&d);
        cpg_disconnect(&d, NULL);
        d.reconnect_timer = sd_event_source_disable_unref(d.reconnect_timer);
        d.check_timer = sd_event_source_disable_unref(d.check_timer);
        d.file_check_timer = sd_event_source_disable_unref(d.file_check_timer);
        d.reset_source = sd_event_source_disable_unref(d.reset_source);
        while (d.status) {
                struct status_entry *e = d.status;
                d.status = e->next;
                free(e->key);
                json_object_put(e->value);
                free(e);
        }
        free(d.batch.items);
        d.store = store_free(d.store);
        d.event = sd_event_unref(d.event);
        return r < 0 ? 1 : 0;
}
