/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-vmd: arguments, signals, the loop, setup and teardown. The work
 * lives in vmd-*.c (see vmd.h).
 *   haven-vmd [--domain-socket PATH] [--libvirt-uri URI] [--state-file PATH]
 *             [--shutdown-timeout SECONDS] [--peer-uri FORMAT]
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"

#include "vmd.h"

#define PEER_URI_DEFAULT "qemu+tcp://%s/system"

const char *const vmd_tables[] = {
        "cluster",  "nodes",         "vms",         "vm_disks",
        "disks",    "vm_nics",       "networks",    "vm_cdroms",
        "vm_placements", "vm_commands", "fence_requests", NULL,
};

static const char *const status_prefixes[] = {VMD_VM_KEY_PREFIX, VMD_STATUS_KEY,
                                              "fencing", NULL};

struct json_object *vmd_tables_object(struct haven_domain *d) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        for (size_t i = 0; vmd_tables[i]; i++)
                if (haven_json_add(o, vmd_tables[i],
                                   json_object_get(haven_domain_rows(d, vmd_tables[i]))) < 0)
                        return NULL;
        return TAKE_PTR(o);
}

uint64_t vmd_node_memory_mib(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
        char line[256];
        unsigned long long kib;

        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
                        return kib / 1024;
        return 0;
}

static void identity_update(struct vmd *v) {
        struct json_object *status = haven_domain_status(v->domain);
        const char *name = status ? vmd_row_string(status, "node_name", NULL) : NULL;
        char actor[96];

        v->self = haven_domain_node_id(v->domain);
        if (name && (!v->node_name || !streq(name, v->node_name))) {
                free(v->node_name);
                v->node_name = strdup(name);
                snprintf(actor, sizeof(actor), "vmd@%s", name);
                haven_domain_set_actor(v->domain, actor);
        }
}

static void on_change(struct haven_domain *d, unsigned what, void *userdata) {
        struct vmd *v = userdata;

        if (what & HAVEN_DOMAIN_LINK)
                log_info("haven-domaind %s.", haven_domain_connected(d) ? "connected" : "lost");
        if (what & (HAVEN_DOMAIN_STATUS | HAVEN_DOMAIN_LINK))
                identity_update(v);
        if (v->manager)
                vmd_manager_changed(v->manager, what);
        if (v->agent)
                vmd_agent_changed(v->agent, what);
}

static void usage(void) {
        printf("usage: haven-vmd [OPTIONS]\n"
               "  --domain-socket PATH        haven-domaind's socket (default %s)\n"
               "  --libvirt-uri URI           the node's libvirtd (default %s)\n"
               "  --state-file PATH           the generations acted on (default %s)\n"
               "  --shutdown-timeout SECONDS  ACPI shutdown, then power-off (default %" PRIu64 ")\n"
               "  --peer-uri FORMAT           another node's libvirtd, %%s = its address\n"
               "                              (default %s)\n",
               VMD_DOMAIN_SOCKET_DEFAULT, VMD_LIBVIRT_URI_DEFAULT, VMD_STATE_FILE_DEFAULT,
               (uint64_t) (VMD_SHUTDOWN_TIMEOUT_DEFAULT_USEC / 1000000), PEER_URI_DEFAULT);
}

/* Exactly one %s and no other conversion. */
static bool peer_uri_format_ok(const char *s) {
        const char *p = strchr(s, '%');

        return p && p[1] == 's' && !strchr(p + 2, '%') && strlen(s) < 200;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"domain-socket", required_argument, NULL, 'd'},
                {"libvirt-uri", required_argument, NULL, 'u'},
                {"state-file", required_argument, NULL, 's'},
                {"shutdown-timeout", required_argument, NULL, 't'},
                {"peer-uri", required_argument, NULL, 'p'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        struct vmd v = {
                .domain_socket = (char *) VMD_DOMAIN_SOCKET_DEFAULT,
                .libvirt_uri = (char *) VMD_LIBVIRT_URI_DEFAULT,
                .state_file = (char *) VMD_STATE_FILE_DEFAULT,
                .peer_uri_format = (char *) PEER_URI_DEFAULT,
                .shutdown_timeout_usec = VMD_SHUTDOWN_TIMEOUT_DEFAULT_USEC,
        };
        struct haven_domain_config config = {
                .actor = "vmd",
                .tables = vmd_tables,
                .status_prefixes = status_prefixes,
                .on_change = on_change,
                .userdata = &v,
        };
        char *end;
        unsigned long long secs;
        int c, r;

        log_set_ident("haven-vmd");
        log_parse_environment();
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'd':
                        v.domain_socket = optarg;
                        break;
                case 'u':
                        v.libvirt_uri = optarg;
                        break;
                case 's':
                        v.state_file = optarg;
                        break;
                case 't':
                        errno = 0;
                        secs = strtoull(optarg, &end, 10);
                        if (errno || end == optarg || *end || secs < 1 || secs > 3600) {
                                fprintf(stderr, "--shutdown-timeout takes 1 to 3600 seconds\n");
                                return 2;
                        }
                        v.shutdown_timeout_usec = secs * 1000000ULL;
                        break;
                case 'p':
                        if (!peer_uri_format_ok(optarg)) {
                                fprintf(stderr, "--peer-uri needs exactly one %%s (the address)\n");
                                return 2;
                        }
                        v.peer_uri_format = optarg;
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
        /* libvirt writes to sockets whose peer may be gone. */
        (void) signal(SIGPIPE, SIG_IGN);
        v.started_usec = haven_now_usec(CLOCK_REALTIME);
        v.domain_type = vm_domain_type_detect(NULL);

        r = haven_loop_new(&v.event);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                goto out;
        }
        (void) mkdir("/run/haven", 0755);
        r = vmd_libvirt_event_register(v.event);
        if (r < 0) {
                log_error_errno(r, "Failed to set up libvirt's event loop: %m");
                goto out;
        }
        config.socket_path = v.domain_socket;
        r = haven_domain_new(v.event, &config, &v.domain);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the link to haven-domaind: %m");
                goto out;
        }
        r = vmd_manager_new(&v, &v.manager);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the manager: %m");
                goto out;
        }
        r = vmd_agent_new(&v, &v.agent);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the node agent: %m");
                goto out;
        }
        log_info("Running VMs with libvirt at %s (%s); shutdown timeout %" PRIu64 " s.",
                 v.libvirt_uri, vm_domain_type_to_string(v.domain_type),
                 v.shutdown_timeout_usec / 1000000);

        r = sd_event_loop(v.event);
        log_info("Shutting down");
out:
        v.agent = vmd_agent_free(v.agent);
        v.manager = vmd_manager_free(v.manager);
        haven_domain_free(v.domain);
        vmd_libvirt_event_flush();
        free(v.node_name);
        sd_event_unref(v.event);
        return r < 0 ? 1 : 0;
}
