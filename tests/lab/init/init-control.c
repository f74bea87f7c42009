/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Service control for a lab node: the supervisor's side (framed JSON requests
 * on INIT_SOCKET_PATH: start, stop, restart, reload, status) and the client
 * side (`haven-lab-init ctl ACTION [SERVICE]`, run inside the node). Must not:
 * accept a request for a service that is not defined.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "haven/json.h"
#include "haven/log.h"
#include "init.h"

#define CONTROL_TIMEOUT_USEC (30 * 1000 * 1000ULL)

static const char *const actions[] = {
        "start", "stop", "restart", "reload", "status", NULL,
};

static int send_status(struct supervisor *s, struct haven_msg_conn *conn) {
        _cleanup_(json_object_putp) struct json_object *reply = json_object_new_object();
        struct json_object *arr = json_object_new_array();

        if (!reply || haven_json_add(reply, "services", arr) < 0 ||
            haven_json_add(reply, "node", json_object_new_string(s->node)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_services; i++) {
                struct json_object *o = service_to_json(&s->services[i]);
                if (!o || json_object_array_add(arr, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        return haven_msg_conn_send(conn, reply);
}

static int on_request(struct haven_msg_conn *conn, struct json_object *msg,
                      void *userdata) {
        static const struct haven_json_field policy[] = {
                { .name = "action", .kind = HAVEN_JSON_ENUM, .required = true,
                  .choices = actions },
                { .name = "service", .kind = HAVEN_JSON_STRING, .min = 1, .max = 32 },
        };
        struct supervisor *s = userdata;
        struct haven_json_error error;
        const char *action, *name = NULL;
        struct service *svc;
        int r;

        r = haven_json_check(msg, policy, ELEMENTSOF(policy), &error);
        if (r < 0) {
                char text[256];
                if (error.field)
                        snprintf(text, sizeof text, "\"%s\": %s", error.field, error.message);
                else
                        snprintf(text, sizeof text, "%s", error.message);
                return haven_msg_conn_send_error(conn, "bad-request", text);
        }
        (void) haven_json_get_string(msg, "action", &action);
        (void) haven_json_get_string(msg, "service", &name);

        if (streq(action, "status") && !name)
                return send_status(s, conn);
        if (!name)
                return haven_msg_conn_send_error(conn, "bad-request",
                                                 "\"service\": required for this action");
        svc = supervisor_find(s, name);
        if (!svc) {
                char text[128];
                snprintf(text, sizeof text, "no service \"%s\" on this node", name);
                return haven_msg_conn_send_error(conn, "no-such-service", text);
        }

        if (streq(action, "start")) {
                r = service_start(svc);
                if (r < 0 && r != -EALREADY)
                        return haven_msg_conn_send_error(conn, "failed", strerror(-r));
        } else if (streq(action, "stop") || streq(action, "restart")) {
                /* The reply goes out when the service has exited. */
                r = service_stop(svc, conn, streq(action, "restart"));
                if (r < 0)
                        return haven_msg_conn_send_error(conn, "failed", strerror(-r));
                return 0;
        } else if (streq(action, "reload")) {
                r = service_reload(svc);
                if (r < 0)
                        return haven_msg_conn_send_error(conn, "not-running",
                                                         "the service is not running");
        }

        _cleanup_(json_object_putp) struct json_object *reply = service_to_json(svc);
        if (!reply)
                return -ENOMEM;
        return haven_msg_conn_send(conn, reply);
}

int control_open(struct supervisor *s) {
        struct haven_msg_server_config config = {
                .path = INIT_SOCKET_PATH,
                .mode = 0600,
                .max_size = 64 * 1024,
                .max_connections = 32,
                .handler = on_request,
                .userdata = s,
        };

        (void) mkdir("/run/haven-lab", 0755);
        return haven_msg_server_new(s->event, &config, &s->control);
}

/* `haven-lab-init ctl ACTION [SERVICE] [--json]`: prints the answer as JSON
 * (--json) or a short line, exits 0 on success, 1 on an error answer, 2 on
 * usage or connection errors. */
int control_client(int argc, char **argv) {
        _cleanup_(haven_msg_client_freep) struct haven_msg_client *c = NULL;
        _cleanup_(json_object_putp) struct json_object *req = NULL, *reply = NULL;
        struct json_object *err, *services;
        const char *action, *service = NULL;
        bool json = false;
        int r;

        if (argc > 0 && streq(argv[argc - 1], "--json")) {
                json = true;
                argc--;
        }
        if (argc < 1 || argc > 2) {
                fprintf(stderr, "usage: haven-lab-init ctl start|stop|restart|reload|status [SERVICE] [--json]\n");
                return 2;
        }
        action = argv[0];
        if (argc == 2)
                service = argv[1];

        req = json_object_new_object();
        if (!req || haven_json_add(req, "action", json_object_new_string(action)) < 0 ||
            (service && haven_json_add(req, "service", json_object_new_string(service)) < 0))
                return 2;

        r = haven_msg_client_connect(INIT_SOCKET_PATH, 0, &c);
        if (r < 0) {
                log_error_errno(r, "Cannot reach the node's supervisor at %s: %m",
                                INIT_SOCKET_PATH);
                return 2;
        }
        r = haven_msg_client_call(c, req, CONTROL_TIMEOUT_USEC, &reply);
        if (r < 0) {
                log_error_errno(r, "No answer from the node's supervisor: %m");
                return 2;
        }
        if (json)
                printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
        if (json_object_object_get_ex(reply, "error", &err)) {
                struct json_object *m;
                if (!json)
                        fprintf(stderr, "%s\n",
                                json_object_object_get_ex(err, "message", &m)
                                        ? json_object_get_string(m) : "error");
                return 1;
        }
        if (json)
                return 0;
        if (json_object_object_get_ex(reply, "services", &services)) {
                for (size_t i = 0; i < json_object_array_length(services); i++) {
                        struct json_object *o = json_object_array_get_idx(services, i), *v;
                        const char *name = "", *state = "";
                        int pid = 0, restarts = 0;
                        if (json_object_object_get_ex(o, "name", &v)) name = json_object_get_string(v);
                        if (json_object_object_get_ex(o, "state", &v)) state = json_object_get_string(v);
                        if (json_object_object_get_ex(o, "pid", &v)) pid = json_object_get_int(v);
                        if (json_object_object_get_ex(o, "restarts", &v)) restarts = json_object_get_int(v);
                        printf("%-12s %-9s pid %-7d restarts %d\n", name, state, pid, restarts);
                }
        } else {
                struct json_object *v;
                printf("%s: %s\n", service,
                       json_object_object_get_ex(reply, "state", &v) ? json_object_get_string(v) : "?");
        }
        return 0;
}
