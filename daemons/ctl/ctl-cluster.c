/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * havenctl's cluster commands: create a cluster on this node, join this
 * node to an existing one, remove a node. The administrator's password
 * comes from a file (or stdin) so it does not show in ps; --password exists
 * for scripts that accept that. Must not: print or log the password, or
 * keep it in memory longer than the request.
 */
#include <inttypes.h>

#include "ctl.h"
#include "haven/json.h"

static void free_password(char **p) {
        if (*p) {
                explicit_bzero(*p, strlen(*p));
                free(*p);
        }
}

/* The password from --password-file or --password (exactly one). */
static int get_password(struct ctl *c, char **ret) {
        struct ctl_error error;
        int r;

        if (c->password && c->password_file)
                return ctl_fail(CTL_EXIT_USAGE, "give --password-file or --password, not both");
        if (c->password) {
                *ret = strdup(c->password);
                return *ret ? CTL_EXIT_OK : ctl_fail(CTL_EXIT_FAILED, "out of memory");
        }
        if (!c->password_file)
                return ctl_fail(CTL_EXIT_USAGE,
                                "the administrator's password is needed: --password-file FILE "
                                "(\"-\" reads standard input)");
        r = ctl_read_password_file(c->password_file, ret, &error);
        if (r == -EINVAL)
                return ctl_fail(CTL_EXIT_USAGE, "%s", error.message);
        if (r < 0)
                return ctl_fail(CTL_EXIT_USAGE, "cannot read the password file %s: %s",
                                c->password_file, strerror(-r));
        return CTL_EXIT_OK;
}

/* Sends a cluster-create/-join request; progress (may be NULL) is said on
 * stderr once the arguments are complete, since the answer takes a while. */
static int cluster_request(struct ctl *c, const char *request, const char *key,
                           const char *value, const char *progress,
                           struct json_object **ret_reply) {
        _cleanup_(free_password) char *password = NULL;
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        int status;

        if (!c->admin)
                return ctl_fail(CTL_EXIT_USAGE, "--admin NAME is needed");
        status = get_password(c, &password);
        if (status != CTL_EXIT_OK)
                return status;
        if (progress && !c->json)
                fprintf(stderr, "%s\n", progress);
        req = ctl_request_cluster(request, key, value, c->admin, password,
                                  streq(request, "cluster-create") ? c->address : NULL);
        return ctl_call(c, req, CTL_CLUSTER_TIMEOUT_USEC, ret_reply, NULL);
}

int ctl_cluster_create(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        int status;

        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE,
                                "usage: havenctl cluster create NAME --admin NAME "
                                "--password-file FILE [--address ADDRESS]");
        status = cluster_request(c, "cluster-create", "name", argv[0],
                                 "Creating the cluster (starting corosync, waiting for quorum)...",
                                 &reply);
        if (status != CTL_EXIT_OK)
                return status;
        if (c->json)
                ctl_print_json(stdout, reply);
        else
                printf("Created cluster \"%s\"; this node is node %" PRId64 ".\n", argv[0],
                       json_object_get_int64(json_object_object_get(reply, "node_id")));
        return CTL_EXIT_OK;
}

int ctl_cluster_join(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        const char *cluster = NULL;
        int status;

        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl cluster join ADDRESS --admin NAME "
                                                "--password-file FILE");
        if (c->address)
                return ctl_fail(CTL_EXIT_USAGE, "--address is for cluster create");
        status = cluster_request(c, "cluster-join", "address", argv[0],
                                 "Joining the cluster (fetching its configuration, starting "
                                 "corosync)...",
                                 &reply);
        if (status != CTL_EXIT_OK)
                return status;
        if (c->json) {
                ctl_print_json(stdout, reply);
                return CTL_EXIT_OK;
        }
        (void) haven_json_get_string(reply, "cluster", &cluster);
        printf("Joined cluster \"%s\" as node %" PRId64 ". It is in standby: make it take VMs "
               "with \"havenctl node active NAME\".\n",
               cluster ? cluster : "?",
               json_object_get_int64(json_object_object_get(reply, "node_id")));
        return CTL_EXIT_OK;
}

int ctl_cluster_remove(struct ctl *c, int argc, char **argv) {
        _cleanup_(json_object_putp) struct json_object *reply = NULL, *req = NULL;
        int status;

        if (argc != 1)
                return ctl_fail(CTL_EXIT_USAGE, "usage: havenctl cluster remove NODE");
        req = ctl_request_node_remove(argv[0], c->actor);
        status = ctl_call(c, req, CTL_CLUSTER_TIMEOUT_USEC, &reply, NULL);
        if (status != CTL_EXIT_OK)
                return status;
        if (c->json)
                ctl_print_json(stdout, reply);
        else
                printf("Removed node \"%s\" from the cluster.\n", argv[0]);
        return CTL_EXIT_OK;
}
