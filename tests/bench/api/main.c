/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-bench-api-bare: the limit the API's dashboard is measured against
 * (tests/bench/api.mjs). A bare libmicrohttpd server, one thread with
 * epoll like haven-httpd, answering every request with one prepared
 * response: a fixed JSON body of the dashboard's size with the same
 * headers. No routing, no session, no JSON: what is left is
 * libmicrohttpd and the kernel. Must not: do anything per request.
 *   haven-bench-api-bare --listen ADDR --port N --size BYTES [--lifetime S]
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>


#define SIZE_MAX_BYTES (16u * 1024u * 1024u)

static struct MHD_Response *response;

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection,
                                 const char *url, const char *method,
                                 const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
        static int seen;

        /* The first call has the head only: answering then would make
         * libmicrohttpd close the connection (the request is not read to
         * its end yet), as haven-httpd also answers on the second. */
        if (!*con_cls) {
                *con_cls = &seen;
                return MHD_YES;
        }
        return MHD_queue_response(connection, MHD_HTTP_OK, response);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"listen", required_argument, NULL, 'l'},
                {"port", required_argument, NULL, 'p'},
                {"size", required_argument, NULL, 's'},
                {"lifetime", required_argument, NULL, 't'},
                {},
        };
        struct sockaddr_in address = {.sin_family = AF_INET};
        unsigned long port = 0, size = 0, lifetime = 600;
        struct MHD_Daemon *daemon;
        sigset_t mask;
        char *body;
        int c, sig;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'l':
                        if (inet_pton(AF_INET, optarg, &address.sin_addr) !=
                            1) {
                                fprintf(stderr, "--listen takes an IPv4 "
                                                "address\n");
                                return 2;
                        }
                        break;
                case 'p':
                        port = strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        size = strtoul(optarg, NULL, 10);
                        break;
                case 't':
                        lifetime = strtoul(optarg, NULL, 10);
                        break;
                default:
                        return 2;
                }
        if (port == 0 || port > 65535 || size == 0 || size > SIZE_MAX_BYTES ||
            lifetime == 0) {
                fprintf(stderr, "usage: haven-bench-api-bare --listen ADDR "
                                "--port N --size BYTES [--lifetime S]\n");
                return 2;
        }
        address.sin_port = htons((uint16_t) port);

        /* A JSON object of exactly size bytes. */
        body = malloc(size);
        if (!body)
                return 1;
        memset(body, 'x', size);
        if (size >= 8) {
                memcpy(body, "{\"p\":\"", 6);
                memcpy(body + size - 2, "\"}", 2);
        }
        response = MHD_create_response_from_buffer(size, body,
                                                   MHD_RESPMEM_PERSISTENT);
        if (!response ||
            MHD_add_response_header(response, "Content-Type",
                                    "application/json") != MHD_YES ||
            MHD_add_response_header(response, "Cache-Control", "no-cache") !=
                    MHD_YES ||
            MHD_add_response_header(response, "ETag",
                                    "\"d0123456789abcdef\"") != MHD_YES)
                return 1;

        /* Blocked here, so the server's thread never takes them: the main
         * thread waits for one (or the lifetime's alarm). */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGALRM);
        if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
                return 1;
        daemon = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
                on_access, NULL, MHD_OPTION_SOCK_ADDR, &address,
                MHD_OPTION_CONNECTION_LIMIT, 256u,
                MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
        if (!daemon) {
                fprintf(stderr, "cannot listen on port %lu\n", port);
                return 1;
        }
        printf("listening on port %lu, %lu bytes\n", port, size);
        fflush(stdout);
        alarm((unsigned) lifetime);
        (void) sigwait(&mask, &sig);
        MHD_stop_daemon(daemon);
        MHD_destroy_response(response);
        free(body);
        return 0;
}
