/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The dashboard (GET /api/v1/dashboard) and this node's samples. The
 * dashboard answers every tile at once (HA, VMs, disks, monitoring, jobs,
 * every node's CPU, memory, swap and disk use); it is built by a pure
 * function from seven haven-domaind answers read together, kept as one
 * prepared response with an ETag, and rebuilt only when an event says
 * something changed (a commit, a status entry, a membership change), so
 * a request costs the dispatcher and a queued buffer. The samples: every
 * 2 s this node reads /proc/stat, /proc/meminfo and the state
 * directory's file system and publishes them as its "node/metrics" status
 * entry, which every node's dashboard shows. Must not: block the loop, or
 * rebuild more than once per burst of events.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "haven/log.h"
#include "haven/loop.h"
#include "httpd.h"

/* Events come in bursts (a commit, then status entries): one rebuild. */
#define DEBOUNCE_USEC (5ull * 1000ull)
/* After a failed rebuild (domaind away), the next try. */
#define RETRY_USEC (1ull * 1000000ull)
/* A failed job is "recent" this long. */
#define RECENT_USEC (24ull * 3600ull * 1000000ull)
#define SAMPLE_FILE_MAX (64u * 1024u)

enum part {
        PART_STATUS,
        PART_NODES,
        PART_VMS,
        PART_DISKS,
        PART_ALERTS,
        PART_JOBS,
        PART_ENTRIES,
        _PART_MAX,
};

struct waiter {
        struct httpd_dashboard *dashboard;
        struct httpd_request *request;
        struct waiter *prev, *next;
};

struct httpd_dashboard {
        struct httpd *httpd;

        /* The cached answer. */
        char *text;
        size_t size;
        char etag[48];
        struct MHD_Response *response, *not_modified;
        unsigned builds;

        /* A rebuild: the seven answers as they arrive. */
        bool dirty, building;
        struct json_object *parts[_PART_MAX];
        uint64_t calls[_PART_MAX];
        unsigned pending;
        bool failed;
        struct httpd_error error;
        sd_event_source *timer;

        /* Requests waiting for the first answer. */
        struct waiter *waiters;

        /* This node's samples. */
        sd_event_source *sample_timer;
        struct httpd_sample previous;
        bool has_previous;
};

/* ==== Samples (pure parts) ==== */

int httpd_sample_parse_stat(const char *text, uint64_t *ret_total,
                            uint64_t *ret_idle) {
        unsigned long long v[8] = {};
        int n;

        if (strncmp(text, "cpu ", 4) != 0)
                return -EBADMSG;
        /* user nice system idle iowait irq softirq steal (guest time is
         * counted in user already). */
        n = sscanf(text + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
        if (n < 4)
                return -EBADMSG;
        *ret_total = 0;
        for (int i = 0; i < n; i++)
                *ret_total += v[i];
        *ret_idle = v[3] + v[4];
        return 0;
}

/* The value in kB of the meminfo line "key:", or -ENOENT. */
static int meminfo_value(const char *text, const char *key, uint64_t *ret) {
        size_t n = strlen(key);

        for (const char *p = text; p && *p;
             p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                unsigned long long v;

                if (strncmp(p, key, n) == 0 && p[n] == ':' &&
                    sscanf(p + n + 1, " %llu", &v) == 1) {
                        *ret = v;
                        return 0;
                }
        }
        return -ENOENT;
}

int httpd_sample_parse_meminfo(const char *text, struct httpd_sample *s) {
        if (meminfo_value(text, "MemTotal", &s->mem_total_kib) < 0 ||
            meminfo_value(text, "MemAvailable", &s->mem_available_kib) < 0 ||
            meminfo_value(text, "SwapTotal", &s->swap_total_kib) < 0 ||
            meminfo_value(text, "SwapFree", &s->swap_free_kib) < 0)
                return -EBADMSG;
        return 0;
}

/* Reads a small procfs file as text. */
static int file_text(const char *dir, const char *name, char *buf,
                     size_t size) {
        char path[PATH_MAX];
        _cleanup_close_ int fd = -1;
        size_t done = 0;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        while (done + 1 < size) {
                ssize_t n = read(fd, buf + done, size - 1 - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        buf[done] = '\0';
        return 0;
}

int httpd_sample_read(const char *proc_dir, const char *disk_dir,
                      const struct httpd_sample *previous,
                      struct httpd_sample *ret) {
        _cleanup_free_ char *buf = malloc(SAMPLE_FILE_MAX);
        struct httpd_sample s = {.cpu_percent = -1};
        struct statvfs vfs;
        int r;

        if (!buf)
                return -ENOMEM;
        r = file_text(proc_dir, "stat", buf, SAMPLE_FILE_MAX);
        if (r >= 0)
                r = httpd_sample_parse_stat(buf, &s.cpu_total, &s.cpu_idle);
        if (r >= 0)
                r = file_text(proc_dir, "meminfo", buf, SAMPLE_FILE_MAX);
        if (r >= 0)
                r = httpd_sample_parse_meminfo(buf, &s);
        if (r < 0)
                return r;
        if (statvfs(disk_dir, &vfs) >= 0) {
                s.disk_total_kib =
                        (uint64_t) vfs.f_blocks * vfs.f_frsize / 1024u;
                s.disk_free_kib =
                        (uint64_t) vfs.f_bavail * vfs.f_frsize / 1024u;
        }
        if (previous && s.cpu_total == previous->cpu_total)
                /* No tick since: the last figure stands. */
                s.cpu_percent = previous->cpu_percent;
        else if (previous && s.cpu_total > previous->cpu_total &&
                 s.cpu_idle >= previous->cpu_idle) {
                uint64_t total = s.cpu_total - previous->cpu_total,
                         idle = s.cpu_idle - previous->cpu_idle;

                s.cpu_percent = idle >= total
                                        ? 0.0
                                        : 100.0 * (double) (total - idle) /
                                                  (double) total;
        }
        *ret = s;
        return 0;
}

static struct json_object *mib(uint64_t kib) {
        return json_object_new_int64((int64_t) (kib / 1024u));
}

struct json_object *httpd_sample_to_json(const struct httpd_sample *s,
                                         uint64_t now) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        uint64_t mem_used = s->mem_total_kib > s->mem_available_kib
                                    ? s->mem_total_kib - s->mem_available_kib
                                    : 0,
                 swap_used = s->swap_total_kib > s->swap_free_kib
                                     ? s->swap_total_kib - s->swap_free_kib
                                     : 0,
                 disk_used = s->disk_total_kib > s->disk_free_kib
                                     ? s->disk_total_kib - s->disk_free_kib
                                     : 0;

        if (!o ||
            haven_json_add(
                    o, "cpu_percent",
                    s->cpu_percent < 0
                            ? NULL
                            : json_object_new_double(
                                      (double) (int) (s->cpu_percent * 10.0 +
                                                      0.5) /
                                      10.0)) < 0 ||
            haven_json_add(o, "mem_used_mib", mib(mem_used)) < 0 ||
            haven_json_add(o, "mem_total_mib", mib(s->mem_total_kib)) < 0 ||
            haven_json_add(o, "swap_used_mib", mib(swap_used)) < 0 ||
            haven_json_add(o, "swap_total_mib", mib(s->swap_total_kib)) < 0 ||
            haven_json_add(o, "disk_used_mib", mib(disk_used)) < 0 ||
            haven_json_add(o, "disk_total_mib", mib(s->disk_total_kib)) < 0 ||
            haven_json_add(o, "time", json_object_new_int64((int64_t) now)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* ==== The dashboard (pure) ==== */

static const char *string_of(struct json_object *o, const char *key,
                             const char *fallback) {
        const char *s = NULL;

        return haven_json_get_string(o, key, &s) >= 0 ? s : fallback;
}

/* The value of the status entry key published by node (0: any node), or
 * NULL. */
static struct json_object *entry_value(struct json_object *entries,
                                       const char *key, int64_t node) {
        for (size_t i = 0; i < httpd_array_length(entries); i++) {
                struct json_object *e = json_object_array_get_idx(entries, i),
                                   *v = NULL;
                int64_t from = 0;

                (void) haven_json_get_int64(e, "node", &from);
                if (!streq(string_of(e, "key", ""), key) ||
                    (node && from != node))
                        continue;
                (void) json_object_object_get_ex(e, "value", &v);
                return v;
        }
        return NULL;
}

/* A VM's runtime state from its "vm/NAME" entry ("running", "paused",
 * ...), or NULL while nobody reports it. */
static const char *vm_state(struct json_object *entries, const char *name) {
        char key[80];
        struct json_object *v;

        snprintf(key, sizeof key, "vm/%s", name);
        v = entry_value(entries, key, 0);
        if (json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return string_of(v, "state", NULL);
}

static int add_int(struct json_object *o, const char *key, int64_t v) {
        return haven_json_add(o, key, json_object_new_int64(v));
}

/* The node's metric key from its sample, or null. */
static int add_metric(struct json_object *o, struct json_object *sample,
                      const char *key) {
        struct json_object *v = NULL;

        if (sample)
                (void) json_object_object_get_ex(sample, key, &v);
        return haven_json_add(o, key, json_object_get(v));
}

static int build_ha(const struct httpd_dashboard_input *in,
                    struct json_object *members, struct json_object *out) {
        _cleanup_(json_object_putp) struct json_object
                *ha = json_object_new_object(),
                *details = json_object_new_array();
        int64_t total = 0, active = 0, running = 0, resources = 0;
        char line[160];

        if (!ha || !details)
                return -ENOMEM;
        for (size_t i = 0; i < httpd_array_length(in->nodes); i++) {
                struct json_object *n = json_object_array_get_idx(in->nodes, i),
                                   *m;
                const char *name = string_of(n, "name", "?"),
                           *state = string_of(n, "state", "standby");
                int64_t id = 0;
                bool online = false;

                (void) haven_json_get_int64(n, "node_id", &id);
                m = httpd_rows_find(members, "id", id);
                (void) haven_json_get_bool(m, "online", &online);
                total++;
                if (online && streq(state, "active"))
                        active++;
                else {
                        snprintf(line, sizeof line, "%s is %s", name,
                                 !online ? "offline" : state);
                        if (json_object_array_add(
                                    details, json_object_new_string(line)) < 0)
                                return -ENOMEM;
                }
        }
        for (size_t i = 0; i < httpd_array_length(in->vms); i++) {
                struct json_object *vm = json_object_array_get_idx(in->vms, i);
                const char *state =
                        vm_state(in->entries, string_of(vm, "name", ""));

                if (streq(string_of(vm, "ha", "off"), "off"))
                        continue;
                resources++;
                if (state && streq(state, "running"))
                        running++;
        }
        if (running < resources) {
                snprintf(line, sizeof line,
                         "%" PRIi64 " of %" PRIi64 " HA VMs %s not running",
                         resources - running, resources,
                         resources - running == 1 ? "is" : "are");
                if (json_object_array_add(details,
                                          json_object_new_string(line)) < 0)
                        return -ENOMEM;
        }
        if (add_int(ha, "nodes_total", total) < 0 ||
            add_int(ha, "nodes_active", active) < 0 ||
            haven_json_add(ha, "all_active",
                           json_object_new_boolean(total > 0 &&
                                                   active == total)) < 0 ||
            add_int(ha, "resources_running", running) < 0 ||
            add_int(ha, "resources_total", resources) < 0 ||
            haven_json_add(ha, "details", TAKE_PTR(details)) < 0 ||
            haven_json_add(out, "ha", TAKE_PTR(ha)) < 0)
                return -ENOMEM;
        return 0;
}

static int build_vms_disks(const struct httpd_dashboard_input *in,
                           struct json_object *out) {
        _cleanup_(json_object_putp) struct json_object
                *vms = json_object_new_object(),
                *disks = json_object_new_object();
        int64_t on = 0, paused = 0, size = 0;

        if (!vms || !disks)
                return -ENOMEM;
        for (size_t i = 0; i < httpd_array_length(in->vms); i++) {
                const char *state = vm_state(
                        in->entries,
                        string_of(json_object_array_get_idx(in->vms, i), "name",
                                  ""));

                if (state && streq(state, "running"))
                        on++;
                else if (state && streq(state, "paused"))
                        paused++;
        }
        for (size_t i = 0; i < httpd_array_length(in->disks); i++) {
                int64_t s = 0;

                (void) haven_json_get_int64(
                        json_object_array_get_idx(in->disks, i), "size_mib",
                        &s);
                size += s;
        }
        if (add_int(vms, "configured", (int64_t) httpd_array_length(in->vms)) <
                    0 ||
            add_int(vms, "on", on) < 0 || add_int(vms, "paused", paused) < 0 ||
            add_int(disks, "count", (int64_t) httpd_array_length(in->disks)) <
                    0 ||
            add_int(disks, "size_mib", size) < 0 ||
            haven_json_add(out, "vms", TAKE_PTR(vms)) < 0 ||
            haven_json_add(out, "disks", TAKE_PTR(disks)) < 0)
                return -ENOMEM;
        return 0;
}

static int build_monitoring(const struct httpd_dashboard_input *in,
                            uint64_t now, struct json_object *out) {
        _cleanup_(json_object_putp) struct json_object
                *mon = json_object_new_object(),
                *alerts = json_object_new_object(),
                *unfenceable = json_object_new_array(),
                *jobs = json_object_new_object();
        int64_t warning = 0, critical = 0, running = 0, failed = 0;

        if (!mon || !alerts || !unfenceable || !jobs)
                return -ENOMEM;
        for (size_t i = 0; i < httpd_array_length(in->alerts); i++) {
                struct json_object *a = json_object_array_get_idx(in->alerts,
                                                                  i),
                                   *cleared = NULL;

                if (json_object_object_get_ex(a, "cleared_at", &cleared) &&
                    cleared)
                        continue;
                if (streq(string_of(a, "severity", "warning"), "critical"))
                        critical++;
                else
                        warning++;
        }
        for (size_t i = 0; i < httpd_array_length(in->nodes); i++) {
                struct json_object *n = json_object_array_get_idx(in->nodes, i);
                const char *name = string_of(n, "name", "?"), *reason;
                int64_t id = 0;

                (void) haven_json_get_int64(n, "node_id", &id);
                if (!httpd_fence_node_fenceable(in->entries, id, name,
                                                &reason) &&
                    json_object_array_add(unfenceable,
                                          json_object_new_string(name)) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < httpd_array_length(in->jobs); i++) {
                struct json_object *j = json_object_array_get_idx(in->jobs, i);
                const char *state = string_of(j, "state", "running");
                int64_t when = 0;

                if (haven_json_get_int64(j, "finished_at", &when) < 0)
                        (void) haven_json_get_int64(j, "created_at", &when);
                if (streq(state, "running"))
                        running++;
                else if (streq(state, "failed") &&
                         (uint64_t) when + RECENT_USEC >= now)
                        failed++;
        }
        if (add_int(alerts, "warning", warning) < 0 ||
            add_int(alerts, "critical", critical) < 0 ||
            haven_json_add(mon, "alerts", TAKE_PTR(alerts)) < 0 ||
            haven_json_add(mon, "nodes_not_fenceable", TAKE_PTR(unfenceable)) <
                    0 ||
            add_int(jobs, "running", running) < 0 ||
            add_int(jobs, "failed_recent", failed) < 0 ||
            haven_json_add(out, "monitoring", TAKE_PTR(mon)) < 0 ||
            haven_json_add(out, "jobs", TAKE_PTR(jobs)) < 0)
                return -ENOMEM;
        return 0;
}

/* The virtual switches a node's haven-vmd reports in its "vmd" entry:
 * [{name, error}] (error null when the switch is ready there), or NULL
 * while it reports none. Only well-formed items are copied. */
static struct json_object *switches_of(struct json_object *vmd) {
        struct json_object *list = NULL, *out;

        if (haven_json_get_array(vmd, "switches", &list) < 0)
                return NULL;
        out = json_object_new_array();
        for (size_t i = 0; out && i < httpd_array_length(list); i++) {
                struct json_object *sw = json_object_array_get_idx(list, i),
                                   *o, *error = NULL;
                const char *name = string_of(sw, "name", NULL);

                if (!name)
                        continue;
                (void) json_object_object_get_ex(sw, "error", &error);
                o = json_object_new_object();
                if (!o ||
                    haven_json_add(o, "name", json_object_new_string(name)) <
                            0 ||
                    haven_json_add(o, "error",
                                   json_object_is_type(error,
                                                       json_type_string)
                                           ? json_object_get(error)
                                           : NULL) < 0 ||
                    json_object_array_add(out, o) < 0) {
                        json_object_put(o);
                        json_object_put(out);
                        return NULL;
                }
        }
        return out;
}

static int build_nodes(const struct httpd_dashboard_input *in,
                       struct json_object *members, struct json_object *out) {
        static const char *const metrics[] = {
                "cpu_percent",    "mem_used_mib",   "mem_total_mib",
                "swap_used_mib",  "swap_total_mib", "disk_used_mib",
                "disk_total_mib",
        };
        _cleanup_(json_object_putp) struct json_object *list =
                json_object_new_array();

        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < httpd_array_length(in->nodes); i++) {
                struct json_object *n = json_object_array_get_idx(in->nodes, i),
                                   *m, *sample, *o;
                int64_t id = 0;
                bool online = false;

                (void) haven_json_get_int64(n, "node_id", &id);
                m = httpd_rows_find(members, "id", id);
                (void) haven_json_get_bool(m, "online", &online);
                sample = entry_value(in->entries, "node/metrics", id);
                o = json_object_new_object();
                if (!o || json_object_array_add(list, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                if (haven_json_add(o, "name",
                                   json_object_new_string(
                                           string_of(n, "name", "?"))) < 0 ||
                    add_int(o, "node_id", id) < 0 ||
                    haven_json_add(o, "online",
                                   json_object_new_boolean(online)) < 0 ||
                    haven_json_add(o, "state",
                                   json_object_new_string(string_of(
                                           n, "state", "standby"))) < 0)
                        return -ENOMEM;
                for (size_t k = 0; k < ELEMENTSOF(metrics); k++)
                        if (add_metric(o, online ? sample : NULL, metrics[k]) <
                            0)
                                return -ENOMEM;
                if (haven_json_add(o, "switches",
                                   online ? switches_of(entry_value(
                                                    in->entries, "vmd", id))
                                          : NULL) < 0)
                        return -ENOMEM;
        }
        return haven_json_add(out, "nodes", TAKE_PTR(list));
}

int httpd_dashboard_build(const struct httpd_dashboard_input *in, uint64_t now,
                          struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        struct json_object *members = NULL, *v;
        int r;

        if (!o)
                return -ENOMEM;
        (void) haven_json_get_array(in->status, "members", &members);
        static const char *const copied[] = {"version", "config_version",
                                             "quorate"};
        for (size_t i = 0; i < ELEMENTSOF(copied); i++) {
                v = NULL;
                (void) json_object_object_get_ex(in->status, copied[i], &v);
                if (haven_json_add(o, copied[i], json_object_get(v)) < 0)
                        return -ENOMEM;
        }
        if (add_int(o, "built_at", (int64_t) now) < 0)
                return -ENOMEM;
        r = build_ha(in, members, o);
        if (r >= 0)
                r = build_vms_disks(in, o);
        if (r >= 0)
                r = build_monitoring(in, now, o);
        if (r >= 0)
                r = build_nodes(in, members, o);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

/* ==== The cache ==== */

static void waiter_unlink(struct waiter *w) {
        struct httpd_dashboard *d = w->dashboard;

        if (w->prev)
                w->prev->next = w->next;
        else
                d->waiters = w->next;
        if (w->next)
                w->next->prev = w->prev;
}

static void waiter_cancel(void *userdata) {
        struct waiter *w = userdata;

        waiter_unlink(w);
        free(w);
}

static int response_headers(struct MHD_Response *response, const char *etag) {
        if (MHD_add_response_header(response, "Content-Type",
                                    "application/json") != MHD_YES ||
            MHD_add_response_header(response, "Cache-Control", "no-cache") !=
                    MHD_YES ||
            MHD_add_response_header(response, "ETag", etag) != MHD_YES)
                return -ENOMEM;
        return 0;
}

/* A response of the cached bytes, its own copy (for waiters). */
static struct MHD_Response *response_copy(struct httpd_dashboard *d) {
        struct MHD_Response *response = MHD_create_response_from_buffer(
                d->size, d->text, MHD_RESPMEM_MUST_COPY);

        if (response && response_headers(response, d->etag) < 0) {
                MHD_destroy_response(response);
                return NULL;
        }
        return response;
}

static void waiters_answer(struct httpd_dashboard *d,
                           const struct httpd_error *error) {
        while (d->waiters) {
                struct waiter *w = d->waiters;
                struct httpd_request *r = w->request;

                waiter_unlink(w);
                free(w);
                httpd_request_forget(r);
                if (error)
                        httpd_reply_error(r, error);
                else
                        httpd_reply_response(r, 200, response_copy(d));
        }
}

/* "\"<16 hex digits of SHA-256>\"" of the text. */
static void etag_of(const char *text, size_t size, char buf[48]) {
        uint8_t digest[32];

        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, text, size, digest) < 0)
                memset(digest, 0, sizeof digest);
        snprintf(buf, 48, "\"d%02x%02x%02x%02x%02x%02x%02x%02x\"", digest[0],
                 digest[1], digest[2], digest[3], digest[4], digest[5],
                 digest[6], digest[7]);
}

/* Puts a new answer in place of the old one. */
static int cache_set(struct httpd_dashboard *d, struct json_object *o) {
        const char *text =
                json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        struct MHD_Response *response = NULL, *not_modified = NULL;
        char *copy, etag[48];
        size_t size;

        if (!text)
                return -ENOMEM;
        size = strlen(text);
        copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        etag_of(copy, size, etag);
        /* The buffer is ours and lives as long as the response: a queued
         * response holds its own reference in libmicrohttpd, so the old
         * one may go while it is still being sent. */
        response = MHD_create_response_from_buffer_with_free_callback(
                size, copy, free);
        if (!response) {
                free(copy);
                return -ENOMEM;
        }
        not_modified = MHD_create_response_from_buffer(0, NULL,
                                                       MHD_RESPMEM_PERSISTENT);
        if (!not_modified || response_headers(response, etag) < 0 ||
            httpd_response_add_common_headers(response) < 0 ||
            MHD_add_response_header(not_modified, "ETag", etag) != MHD_YES ||
            MHD_add_response_header(not_modified, "Cache-Control",
                                    "no-cache") != MHD_YES ||
            httpd_response_add_common_headers(not_modified) < 0) {
                MHD_destroy_response(response);
                if (not_modified)
                        MHD_destroy_response(not_modified);
                return -ENOMEM;
        }
        if (d->response)
                MHD_destroy_response(d->response);
        if (d->not_modified)
                MHD_destroy_response(d->not_modified);
        d->response = response;
        d->not_modified = not_modified;
        d->text = copy; /* owned by the response */
        d->size = size;
        memcpy(d->etag, etag, sizeof etag);
        d->builds++;
        return 0;
}

static void schedule(struct httpd_dashboard *d, uint64_t usec);

static void build_finish(struct httpd_dashboard *d) {
        struct httpd_dashboard_input in = {
                .status = d->parts[PART_STATUS],
                .nodes = httpd_reply_rows(d->parts[PART_NODES]),
                .vms = httpd_reply_rows(d->parts[PART_VMS]),
                .disks = httpd_reply_rows(d->parts[PART_DISKS]),
                .alerts = httpd_reply_rows(d->parts[PART_ALERTS]),
                .jobs = httpd_reply_rows(d->parts[PART_JOBS]),
        };
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        int r;

        (void) haven_json_get_array(d->parts[PART_ENTRIES], "entries",
                                    &in.entries);
        d->building = false;
        if (d->failed) {
                log_debug("Dashboard: rebuild failed: %s", d->error.message);
                waiters_answer(d, &d->error);
                d->dirty = true;
        } else {
                r = httpd_dashboard_build(&in, haven_now_usec(CLOCK_REALTIME),
                                          &o);
                if (r >= 0)
                        r = cache_set(d, o);
                if (r < 0) {
                        struct httpd_error e;

                        log_warning_errno(r, "Dashboard: cannot build it: %m");
                        httpd_error_set(&e, HTTPD_ERROR_INTERNAL, NULL,
                                        "out of memory");
                        waiters_answer(d, &e);
                } else
                        waiters_answer(d, NULL);
        }
        for (size_t i = 0; i < _PART_MAX; i++) {
                json_object_put(d->parts[i]);
                d->parts[i] = NULL;
        }
        if (d->dirty)
                schedule(d, d->failed ? RETRY_USEC : DEBOUNCE_USEC);
}

static void on_part_answer(struct httpd_dashboard *d, enum part p,
                           struct json_object *reply,
                           const struct httpd_error *error) {
        d->calls[p] = 0;
        if (error) {
                if (!d->failed)
                        d->error = *error;
                d->failed = true;
        } else
                d->parts[p] = json_object_get(reply);
        if (--d->pending == 0)
                build_finish(d);
}

#define PART_CALLBACK(p)                                                       \
        static void on_##p(struct json_object *reply,                          \
                           const struct httpd_error *error, void *userdata) {  \
                on_part_answer(userdata, p, reply, error);                     \
        }
PART_CALLBACK(PART_STATUS)
PART_CALLBACK(PART_NODES)
PART_CALLBACK(PART_VMS)
PART_CALLBACK(PART_DISKS)
PART_CALLBACK(PART_ALERTS)
PART_CALLBACK(PART_JOBS)
PART_CALLBACK(PART_ENTRIES)

static void build_start(struct httpd_dashboard *d) {
        static const httpd_domain_done_t callbacks[_PART_MAX] = {
                on_PART_STATUS, on_PART_NODES, on_PART_VMS,     on_PART_DISKS,
                on_PART_ALERTS, on_PART_JOBS,  on_PART_ENTRIES,
        };
        static const char *const tables[_PART_MAX] = {
                [PART_NODES] = "nodes", [PART_VMS] = "vms",
                [PART_DISKS] = "disks", [PART_ALERTS] = "alerts",
                [PART_JOBS] = "jobs",
        };
        struct httpd_domain *domain = httpd_domain(d->httpd);

        if (d->building || !httpd_domain_connected(domain))
                return; /* the link's return invalidates again */
        d->building = true;
        d->dirty = false;
        d->failed = false;
        d->pending = 0;
        for (size_t i = 0; i < _PART_MAX; i++) {
                struct json_object *req =
                        i == PART_STATUS    ? httpd_msg_new("status")
                        : i == PART_ENTRIES ? httpd_msg_new("status-read")
                                            : httpd_query_new(tables[i], NULL);
                int r;

                d->pending++;
                r = httpd_domain_call_background(domain, req, callbacks[i], d,
                                                 &d->calls[i]);
                if (r < 0) {
                        struct httpd_error e;

                        httpd_error_from_errno(r, &e);
                        /* Counts as answered (with an error). */
                        d->calls[i] = 0;
                        if (!d->failed)
                                d->error = e;
                        d->failed = true;
                        d->pending--;
                }
        }
        if (d->pending == 0)
                build_finish(d);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        build_start(userdata);
        return 0;
}

static void schedule(struct httpd_dashboard *d, uint64_t usec) {
        uint64_t now;

        if (sd_event_now(httpd_event(d->httpd), CLOCK_MONOTONIC, &now) < 0)
                now = haven_now_usec(CLOCK_MONOTONIC);
        (void) sd_event_source_set_time(d->timer, now + usec);
        (void) sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
}

void httpd_dashboard_invalidate(struct httpd_dashboard *d) {
        int enabled = SD_EVENT_OFF;

        if (!d)
                return;
        d->dirty = true;
        if (d->building)
                return; /* rebuilt again once this build is done */
        (void) sd_event_source_get_enabled(d->timer, &enabled);
        if (enabled == SD_EVENT_OFF)
                schedule(d, DEBOUNCE_USEC);
}

unsigned httpd_dashboard_builds(const struct httpd_dashboard *d) {
        return d ? d->builds : 0;
}

int httpd_dashboard_get(struct httpd_request *r) {
        struct httpd_dashboard *d = httpd_dashboard(httpd_request_server(r));
        struct waiter *w;

        if (d->response) {
                /* The cached bytes, even while a rebuild runs: at most one
                 * burst of events behind. */
                if (httpd_etag_matches(httpd_request_header(r, "If-None-Match"),
                                       d->etag))
                        httpd_reply_shared(r, 304, d->not_modified);
                else
                        httpd_reply_shared(r, 200, d->response);
                return 0;
        }
        if (!httpd_domain_connected(httpd_domain(d->httpd)))
                return -ENOTCONN;
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (struct waiter){.dashboard = d, .request = r, .next = d->waiters};
        if (d->waiters)
                d->waiters->prev = w;
        d->waiters = w;
        httpd_request_hold(r, waiter_cancel, w);
        if (!d->building)
                build_start(d);
        return 0;
}

/* ==== Samples ==== */

static void on_published(struct json_object *reply,
                         const struct httpd_error *error, void *userdata) {
        if (error)
                log_debug("Publishing this node's sample failed: %s",
                          error->message);
}

static int on_sample(sd_event_source *s, uint64_t usec, void *userdata) {
        struct httpd_dashboard *d = userdata;
        const struct httpd_config *c = httpd_get_config(d->httpd);
        struct httpd_sample sample;
        struct json_object *req, *value;
        int r;

        (void) sd_event_source_set_time(s, usec + c->metrics_interval_usec);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        r = httpd_sample_read(c->proc_dir, c->metrics_dir,
                              d->has_previous ? &d->previous : NULL, &sample);
        if (r < 0) {
                log_debug_errno(r, "Reading this node's sample failed: %m");
                return 0;
        }
        d->previous = sample;
        d->has_previous = true;
        if (!httpd_domain_connected(httpd_domain(d->httpd)))
                return 0;
        req = httpd_msg_new("status-publish");
        value = httpd_sample_to_json(&sample, haven_now_usec(CLOCK_REALTIME));
        if (!req || !value ||
            haven_json_add(req, "key", json_object_new_string("node/metrics")) <
                    0 ||
            haven_json_add(req, "value", TAKE_PTR(value)) < 0) {
                json_object_put(value);
                json_object_put(req);
                return 0;
        }
        (void) httpd_domain_call_background(httpd_domain(d->httpd), req,
                                            on_published, d, NULL);
        return 0;
}

/* ==== Setup ==== */

int httpd_dashboard_new(struct httpd *h, struct httpd_dashboard **ret) {
        const struct httpd_config *c = httpd_get_config(h);
        struct httpd_dashboard *d;
        int r;

        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->httpd = h;
        r = sd_event_add_time(httpd_event(h), &d->timer, CLOCK_MONOTONIC, 0,
                              1000, on_timer, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
        if (r >= 0 && c->metrics_interval_usec > 0)
                /* The first sample at once: its CPU figure comes with the
                 * second. */
                r = sd_event_add_time_relative(httpd_event(h), &d->sample_timer,
                                               CLOCK_MONOTONIC, 0, 100000,
                                               on_sample, d);
        if (r < 0) {
                httpd_dashboard_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

struct httpd_dashboard *httpd_dashboard_free(struct httpd_dashboard *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < _PART_MAX; i++) {
                httpd_domain_cancel(httpd_domain(d->httpd), d->calls[i]);
                json_object_put(d->parts[i]);
        }
        while (d->waiters) {
                struct waiter *w = d->waiters;

                waiter_unlink(w);
                free(w);
        }
        d->timer = sd_event_source_disable_unref(d->timer);
        d->sample_timer = sd_event_source_disable_unref(d->sample_timer);
        if (d->response)
                MHD_destroy_response(d->response);
        if (d->not_modified)
                MHD_destroy_response(d->not_modified);
        free(d);
        return NULL;
}
