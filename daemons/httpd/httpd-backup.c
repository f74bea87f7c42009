/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The configuration backup an administrator downloads (GET /api/v1/backup):
 * haven-domaind's snapshot of the configuration tables, taken in one read
 * so that it is consistent, wrapped with what it is (cluster, version,
 * checksum, who took it, when) and answered as a file. Must not: leave out
 * or mask what a restore needs (the administrators' password hashes, the
 * mail relay's password: the file is as secret as the cluster), or answer
 * without a session (the route table says so).
 */
#include <inttypes.h>
#include <stdio.h>

#include "haven/log.h"
#include "haven/loop.h"
#include "httpd.h"

#define BACKUP_FORMAT 1

const char *const httpd_backup_tables[] = {
        "cluster",       "nodes",          "networks",  "hosts",
        "infrastructure", "administrators", "fence_devices", "fence_outlets",
        "disks",         "vms",            "vm_disks",  "vm_nics",
        "vm_cdroms",     "staged_changes", NULL,
};

/* The cluster's name in a snapshot's tables ({"cluster": {"columns",
 * "rows"}}), borrowed, or NULL. */
static const char *cluster_name(struct json_object *tables) {
        struct json_object *cluster, *columns, *rows, *row;

        if (haven_json_get_object(tables, "cluster", &cluster) < 0 ||
            haven_json_get_array(cluster, "columns", &columns) < 0 ||
            haven_json_get_array(cluster, "rows", &rows) < 0 ||
            httpd_array_length(rows) < 1)
                return NULL;
        row = json_object_array_get_idx(rows, 0);
        for (size_t i = 0; i < httpd_array_length(columns); i++) {
                struct json_object *c = json_object_array_get_idx(columns, i),
                                   *v = json_object_array_get_idx(row, i);

                if (json_object_is_type(c, json_type_string) &&
                    streq(json_object_get_string(c), "name") &&
                    json_object_is_type(v, json_type_string))
                        return json_object_get_string(v);
        }
        return NULL;
}

/* The file name for a backup: haven-backup-CLUSTER-vVERSION.json, with
 * anything but [A-Za-z0-9._-] of the name left out. */
static void file_name(const char *cluster, int64_t version, char *buf,
                      size_t size) {
        char safe[64] = "";
        size_t n = 0;

        for (const char *p = cluster ? cluster : ""; *p && n < sizeof safe - 1;
             p++)
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
                    *p == '-')
                        safe[n++] = *p;
        safe[n] = '\0';
        snprintf(buf, size, "haven-backup-%s%sv%" PRIi64 ".json", safe,
                 n ? "-" : "", version);
}

static void on_snapshot(struct httpd_request *r, struct json_object *reply,
                        const struct httpd_error *error) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *tables = NULL, *checksum = NULL;
        const char *name;
        char file[128], disposition[160];
        int64_t version = 0;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (haven_json_get_object(reply, "tables", &tables) < 0 ||
            haven_json_get_int64(reply, "version", &version) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "haven-domaind sent a snapshot without "
                                 "tables or version");
                return;
        }
        (void) json_object_object_get_ex(reply, "checksum", &checksum);
        name = cluster_name(tables);
        o = json_object_new_object();
        if (!o ||
            haven_json_add(o, "haven_backup",
                           json_object_new_int64(BACKUP_FORMAT)) < 0 ||
            haven_json_add(o, "cluster", haven_json_string_or_null(name)) <
                    0 ||
            haven_json_add(o, "version", json_object_new_int64(version)) <
                    0 ||
            haven_json_add(o, "checksum", json_object_get(checksum)) < 0 ||
            haven_json_add(o, "created_at",
                           json_object_new_int64((int64_t) haven_now_usec(
                                   CLOCK_REALTIME))) < 0 ||
            haven_json_add(o, "created_by", json_object_new_string(
                                                    httpd_request_actor(r))) <
                    0 ||
            haven_json_add(o, "tables", json_object_get(tables)) < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "out of memory");
                return;
        }
        file_name(name, version, file, sizeof file);
        snprintf(disposition, sizeof disposition,
                 "attachment; filename=\"%s\"", file);
        /* Who took the cluster's secrets, and from where. */
        log_notice("Configuration backup of version %" PRIi64
                   " taken by \"%s\" from %s",
                   version, httpd_request_match(r)->administrator,
                   httpd_request_client(r));
        httpd_reply_json(r, 200, TAKE_PTR(o));
        if (httpd_reply_header(r, "Content-Disposition", disposition) < 0)
                log_debug("Backup: no Content-Disposition header, ignoring");
}

int httpd_backup_get(struct httpd_request *r) {
        _cleanup_(json_object_putp) struct json_object *req =
                httpd_msg_new("snapshot");
        struct json_object *names;

        if (!req)
                return -ENOMEM;
        names = json_object_new_array();
        if (!names || haven_json_add(req, "tables", names) < 0)
                return -ENOMEM;
        for (size_t i = 0; httpd_backup_tables[i]; i++) {
                struct json_object *v =
                        json_object_new_string(httpd_backup_tables[i]);

                if (!v || json_object_array_add(names, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        return httpd_domain_call(r, TAKE_PTR(req), on_snapshot);
}
