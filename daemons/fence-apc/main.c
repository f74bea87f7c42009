/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-fence-apc: the native APC power strip driver as a program of its
 * own, so that haven-fenced can run one operation in a child process that
 * starts fast (net-snmp and json-c only, none of the daemon's libraries).
 * Reads one request (daemons/fenced/fenced-apc.h) on stdin, writes the
 * result on stdout. Exit status: 0 when a result was written (the device's
 * own failure is in it), 1 when none could be, 2 for a request that is not
 * a JSON object.
 * Must not: do anything but the one operation it is given.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "haven/json.h"

#include "../fenced/fenced-apc.h"

#define REQUEST_MAX (64u * 1024u)

int main(int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *request = NULL, *result = NULL;
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        ssize_t n;
        int r;

        if (argc > 1) {
                fprintf(stderr, "usage: %s < REQUEST.json (see daemons/fenced/fenced-apc.h)\n",
                        argv[0]);
                return 2;
        }
        text = malloc(REQUEST_MAX + 1);
        if (!text)
                return 1;
        while (size < REQUEST_MAX &&
               (n = read(STDIN_FILENO, text + size, REQUEST_MAX - size)) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                size += (size_t) n;
        }
        text[size] = 0;
        r = haven_json_parse(text, size, REQUEST_MAX, &request);
        if (r < 0 || !json_object_is_type(request, json_type_object)) {
                fputs("haven-fence-apc: the request is not a JSON object\n", stderr);
                return 2;
        }
        r = apc_device_op(request, &result);
        if (r < 0) {
                fprintf(stderr, "haven-fence-apc: %s\n", strerror(-r));
                return 1;
        }
        fputs(json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN), stdout);
        fputc('\n', stdout);
        return fflush(stdout) == 0 ? 0 : 1;
}
