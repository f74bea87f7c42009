/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The node agent: makes this node's libvirt run exactly what the
 * placements assign to it (docs/ha.md, "The node agent's side"), and
 * reports every Haven VM defined or running here in the status map
 * ("vm/NAME"), plus itself ("vmd": ready, memory). It acts on each
 * placement generation once (the generations acted on are kept in a small
 * state file under /run, so a vmd restart does not act twice and a node
 * that reboots starts from nothing), carries out reboot and reset commands,
 * live-migrates (peer-to-peer, in a child through vmd-libvirt) and records
 * each migration as a job with its duration and downtime.
 * Must not: start a VM the placements do not put on this node, restart a
 * VM by itself (it reports the stop; the manager decides), destroy a VM
 * that is migrating in, or call libvirt off the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"
#include "haven/text.h"

#include "vmd.h"
#include "vmd-net.h"

#define ERROR_MAX 256u

struct agent_vm {
        int64_t vm_id;
        char *name;
        uint64_t acted;        /* the placement generation acted on */
        bool running;          /* libvirt: running or paused (not incoming) */
        bool paused;
        bool incoming;         /* paused while migrating in */
        bool listed;           /* seen in the latest list */
        enum ha_runtime state; /* when not running */
        bool unexpected;
        char error[ERROR_MAX];
        int64_t command_done;
        bool command_failed;
        char command_result[ERROR_MAX];
        bool shutting_down, powering_off;
        int vnc_port;
        /* Migration out. */
        struct vmd_migration *migration;
        uint32_t migration_target;
        uint64_t migration_started; /* CLOCK_REALTIME */
        struct vmd_migration_progress progress;
        struct json_object *last_migration;
        char *published; /* the value last published, as JSON text */
        bool forget;
};

struct vmd_agent {
        struct vmd *v;
        struct vmd_libvirt *lv;
        sd_event_source *defer;
        sd_event_source *timer;
        struct agent_vm **vms;
        size_t n_vms;
        char *status_published;
        bool state_dirty;
        uint64_t memory_mib;
        /* The virtual switches (vmd-net.c): NULL when netlink could not
         * be opened (VMs with NICs then cannot start here). */
        struct vmd_net *net;
        struct vmd_switch *switches;
        size_t n_switches;
};

/* ==== VMs ==== */

static struct agent_vm *vm_by_id(struct vmd_agent *a, int64_t vm_id) {
        for (size_t i = 0; i < a->n_vms; i++)
                if (a->vms[i]->vm_id == vm_id)
                        return a->vms[i];
        return NULL;
}

static struct agent_vm *vm_by_name(struct vmd_agent *a, const char *name) {
        for (size_t i = 0; i < a->n_vms; i++)
                if (streq(a->vms[i]->name, name))
                        return a->vms[i];
        return NULL;
}

static struct agent_vm *vm_get(struct vmd_agent *a, int64_t vm_id,
                               const char *name) {
        struct agent_vm *vm = vm_by_id(a, vm_id), **vms;

        if (vm) {
                if (!streq(vm->name, name)) {
                        /* Renamed: the old entry goes. */
                        char key[sizeof(VMD_VM_KEY_PREFIX) + VM_NAME_MAX];
                        char *copy = strdup(name);

                        if (!copy)
                                return NULL;
                        snprintf(key, sizeof(key), VMD_VM_KEY_PREFIX "%s", vm->name);
                        (void) haven_domain_publish(a->v->domain, key, NULL);
                        free(vm->name);
                        vm->name = copy;
                        free(vm->published);
                        vm->published = NULL;
                }
                return vm;
        }
        vms = reallocarray(a->vms, a->n_vms + 1, sizeof(*vms));
        if (!vms)
                return NULL;
        a->vms = vms;
        vm = calloc(1, sizeof(*vm));
        if (!vm)
                return NULL;
        vm->vm_id = vm_id;
        vm->name = strdup(name);
        vm->state = HA_RUNTIME_STOPPED;
        if (!vm->name) {
                free(vm);
                return NULL;
        }
        a->vms[a->n_vms++] = vm;
        return vm;
}

static void vm_free(struct agent_vm *vm) {
        vmd_migration_free(vm->migration);
        json_object_put(vm->last_migration);
        free(vm->published);
        free(vm->name);
        free(vm);
}

/* A new generation: what the report says is about it from now on. */
static void new_generation(struct vmd_agent *a, struct agent_vm *vm,
                           uint64_t generation) {
        vm->acted = generation;
        vm->error[0] = 0;
        if (!vm->running) {
                vm->state = HA_RUNTIME_STOPPED;
                vm->unexpected = false;
        }
        a->state_dirty = true;
}

/* ==== The state file (generations acted on) ==== */

static void state_load(struct vmd_agent *a) {
        _cleanup_free_ char *text = NULL;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        _cleanup_fclose_ FILE *f = fopen(a->v->state_file, "re");
        size_t size = 0;

        if (!f)
                return;
        text = calloc(1, 1024 * 1024);
        if (!text)
                return;
        size = fread(text, 1, 1024 * 1024 - 1, f);
        if (haven_json_parse(text, size, 1024 * 1024, &o) < 0 ||
            !json_object_is_type(o, json_type_object)) {
                log_warning("Ignoring the unreadable state file %s.", a->v->state_file);
                return;
        }
        json_object_object_foreach(o, key, val) {
                struct json_object *name = NULL, *acted = NULL;
                struct agent_vm *vm;
                char *end;
                long long id = strtoll(key, &end, 10);

                if (*end || id <= 0 ||
                    !json_object_object_get_ex(val, "name", &name) ||
                    !json_object_object_get_ex(val, "acted", &acted) ||
                    !json_object_is_type(name, json_type_string) ||
                    !json_object_is_type(acted, json_type_int))
                        continue;
                vm = vm_get(a, id, json_object_get_string(name));
                if (vm)
                        vm->acted = (uint64_t) json_object_get_int64(acted);
        }
}

static void state_save(struct vmd_agent *a) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_free_ char *tmp = NULL;
        const char *text;
        int fd;

        if (!a->state_dirty || !o)
                return;
        for (size_t i = 0; i < a->n_vms; i++) {
                struct json_object *one = json_object_new_object();
                char key[32];

                if (!one || haven_json_add(one, "name", json_object_new_string(a->vms[i]->name)) < 0 ||
                    haven_json_add(one, "acted",
                                   json_object_new_int64((int64_t) a->vms[i]->acted)) < 0) {
                        json_object_put(one);
                        return;
                }
                snprintf(key, sizeof(key), "%" PRId64, a->vms[i]->vm_id);
                if (haven_json_add(o, key, one) < 0)
                        return;
        }
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        if (asprintf(&tmp, "%s.tmp", a->v->state_file) < 0)
                return;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                log_warning_errno(-errno, "Failed to write %s: %m", tmp);
                return;
        }
        if (write(fd, text, strlen(text)) != (ssize_t) strlen(text) ||
            close(fd) < 0 || rename(tmp, a->v->state_file) < 0) {
                log_warning_errno(-errno, "Failed to write %s: %m", a->v->state_file);
                (void) unlink(tmp);
                return;
        }
        a->state_dirty = false;
}

/* ==== Publishing ==== */

static void publish_value(struct vmd_agent *a, const char *key,
                          struct json_object *value, char **published) {
        const char *text = value ? json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN)
                                 : NULL;
        char *copy;

        if ((!text && !*published) || (text && *published && streq(text, *published))) {
                json_object_put(value);
                return;
        }
        copy = text ? strdup(text) : NULL;
        if (text && !copy) {
                json_object_put(value);
                return;
        }
        if (haven_domain_publish(a->v->domain, key, value) < 0) {
                free(copy);
                return;
        }
        free(*published);
        *published = copy;
}

static const char *vm_state_text(const struct agent_vm *vm) {
        if (vm->migration)
                return ha_runtime_to_string(HA_RUNTIME_MIGRATING_OUT);
        if (vm->running)
                return ha_runtime_to_string(vm->paused ? HA_RUNTIME_PAUSED
                                                       : HA_RUNTIME_RUNNING);
        return ha_runtime_to_string(vm->state);
}

static struct json_object *vm_value(const struct agent_vm *vm) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        struct json_object *progress = NULL;

        if (!o ||
            haven_json_add(o, "vm_id", json_object_new_int64(vm->vm_id)) < 0 ||
            haven_json_add(o, "state", json_object_new_string(vm_state_text(vm))) < 0 ||
            haven_json_add(o, "generation", json_object_new_int64((int64_t) vm->acted)) < 0 ||
            haven_json_add(o, "unexpected", json_object_new_boolean(vm->unexpected)) < 0 ||
            haven_json_add(o, "error", haven_json_string_or_null(
                                               vm->error[0] ? vm->error : NULL)) < 0 ||
            haven_json_add(o, "target_node",
                           vm->migration ? json_object_new_int64(vm->migration_target) : NULL) < 0 ||
            haven_json_add(o, "vnc_port", vm->running && vm->vnc_port > 0
                                                  ? json_object_new_int64(vm->vnc_port)
                                                  : NULL) < 0 ||
            haven_json_add(o, "command_done", json_object_new_int64(vm->command_done)) < 0 ||
            haven_json_add(o, "command_failed", json_object_new_boolean(vm->command_failed)) < 0 ||
            haven_json_add(o, "command_result",
                           haven_json_string_or_null(vm->command_result[0]
                                                             ? vm->command_result
                                                             : NULL)) < 0)
                return NULL;
        if (vm->migration) {
                progress = json_object_new_object();
                if (!progress ||
                    haven_json_add(progress, "target_node",
                                   json_object_new_int64(vm->migration_target)) < 0 ||
                    haven_json_add(progress, "percent", json_object_new_int64(vm->progress.percent)) < 0 ||
                    haven_json_add(progress, "elapsed_ms",
                                   json_object_new_int64((int64_t) vm->progress.elapsed_ms)) < 0 ||
                    haven_json_add(progress, "data_total",
                                   json_object_new_int64((int64_t) vm->progress.data_total)) < 0 ||
                    haven_json_add(progress, "data_remaining",
                                   json_object_new_int64((int64_t) vm->progress.data_remaining)) < 0 ||
                    haven_json_add(o, "migration", TAKE_PTR(progress)) < 0) {
                        json_object_put(progress);
                        return NULL;
                }
        }
        if (vm->last_migration &&
            haven_json_add(o, "last_migration", json_object_get(vm->last_migration)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static void publish_vm(struct vmd_agent *a, struct agent_vm *vm) {
        char key[sizeof(VMD_VM_KEY_PREFIX) + VM_NAME_MAX];

        snprintf(key, sizeof(key), VMD_VM_KEY_PREFIX "%s", vm->name);
        /* An incoming migration is the source's until it runs here. */
        if (vm->forget || vm->incoming)
                publish_value(a, key, NULL, &vm->published);
        else
                publish_value(a, key, vm_value(vm), &vm->published);
}

/* [{name, bridge, port, error}] of the virtual switches on this node. */
static struct json_object *switches_value(struct vmd_agent *a) {
        struct json_object *list = json_object_new_array();

        for (size_t i = 0; list && i < a->n_switches; i++) {
                const struct vmd_switch *sw = &a->switches[i];
                struct json_object *o = json_object_new_object();

                if (!o || haven_json_add(o, "name", json_object_new_string(sw->name)) < 0 ||
                    haven_json_add(o, "bridge", json_object_new_string(sw->bridge)) < 0 ||
                    haven_json_add(o, "port", sw->port[0] ? json_object_new_string(sw->port) : NULL) < 0 ||
                    haven_json_add(o, "error", sw->error[0] ? json_object_new_string(sw->error) : NULL) < 0 ||
                    json_object_array_add(list, o) < 0) {
                        json_object_put(o);
                        json_object_put(list);
                        return NULL;
                }
        }
        return list;
}

static void publish_status(struct vmd_agent *a, bool ready) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();

        if (!o ||
            haven_json_add(o, "ready", json_object_new_boolean(ready)) < 0 ||
            haven_json_add(o, "connected",
                           json_object_new_boolean(vmd_libvirt_is_connected(a->lv))) < 0 ||
            haven_json_add(o, "memory_mib", json_object_new_int64((int64_t) a->memory_mib)) < 0 ||
            haven_json_add(o, "uri", json_object_new_string(vmd_libvirt_uri(a->lv))) < 0 ||
            haven_json_add(o, "domain_type", json_object_new_string(
                                                     vm_domain_type_to_string(a->v->domain_type))) < 0 ||
            haven_json_add(o, "switches", switches_value(a)) < 0)
                return;
        publish_value(a, VMD_STATUS_KEY, TAKE_PTR(o), &a->status_published);
}

/* ==== Acting ==== */

static bool node_online(struct vmd_agent *a, uint32_t id) {
        return id && haven_domain_is_member(a->v->domain, id);
}

/* Whether the placement puts the VM on another online node where it is to
 * run: a copy here is a second instance. */
static bool placed_elsewhere(struct vmd_agent *a, struct json_object *p) {
        uint32_t node = (uint32_t) vmd_row_int(p, "node_id", 0);
        enum ha_placement_state s =
                ha_placement_state_from_string(vmd_row_string(p, "state", ""));

        if (!p || !node || node == a->v->self || !node_online(a, node))
                return false;
        return s == HA_PLACEMENT_STARTING || s == HA_PLACEMENT_RUNNING ||
               s == HA_PLACEMENT_RECOVERING || s == HA_PLACEMENT_MIGRATING ||
               s == HA_PLACEMENT_STOPPING;
}

/* A running command of kind for the VM, or NULL. */
static struct json_object *running_command(struct json_object *commands,
                                           int64_t vm_id, const char *kind) {
        for (size_t i = json_object_array_length(commands); i-- > 0;) {
                struct json_object *c = json_object_array_get_idx(commands, i);

                if (vmd_row_int(c, "vm_id", 0) == vm_id &&
                    streq(vmd_row_string(c, "command", ""), kind) &&
                    streq(vmd_row_string(c, "state", ""), "running"))
                        return c;
        }
        return NULL;
}

static void copy_libvirt_error(struct vmd_agent *a, char *buf, size_t size,
                               const char *what, int r) {
        const char *why = vmd_libvirt_last_error(a->lv);
        char text[VMD_LIBVIRT_ERROR_MAX + 64];

        snprintf(text, sizeof(text), "%s: %s", what, why && *why ? why : strerror(-r));
        haven_text_copy_cut(buf, size, text);
}

/* ==== Disk images on the share ==== */

/* The mount point under which path lies, the longest one listed in
 * /proc/self/mountinfo ("/" when only the root holds it). Fills buf. */
static void mount_point_of(const char *path, char *buf, size_t size) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];
        size_t best = 0;

        snprintf(buf, size, "/");
        while (f && fgets(line, sizeof(line), f)) {
                char point[PATH_MAX];
                size_t n;

                /* ID PARENT MAJ:MIN ROOT MOUNTPOINT ...; no mount point
                 * with a space (escaped as \040) is ours. */
                if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 || strchr(point, '\\'))
                        continue;
                n = strlen(point);
                if (n <= best || strncmp(path, point, n) != 0 ||
                    (path[n] != '/' && !(n == 1 && point[0] == '/')))
                        continue;
                best = n;
                snprintf(buf, size, "%s", point);
        }
}

/* A new shared disk has no image yet: the agent that first starts its VM
 * makes it, a sparse raw file of the disk's size, created exclusively (two
 * nodes never both make it). Only on a mounted share: a share that is not
 * mounted leaves an empty directory on the node's own disk, where a new
 * image would hide the real one. qcow2 images are not made here. Returns
 * 0 when every image exists, or -errno with *ret_why. */
static int shared_images_ensure(struct json_object *tables, int64_t vm_id,
                                const char **ret_why) {
        struct json_object *attached = NULL, *disks = NULL;

        (void) json_object_object_get_ex(tables, "vm_disks", &attached);
        (void) json_object_object_get_ex(tables, "disks", &disks);
        for (size_t i = 0; attached && i < json_object_array_length(attached); i++) {
                struct json_object *at = json_object_array_get_idx(attached, i), *disk;
                const char *path;
                char mount[PATH_MAX];
                int64_t mib;
                int fd;

                if (vmd_row_int(at, "vm_id", 0) != vm_id)
                        continue;
                disk = vmd_row_by_id(disks, vmd_row_int(at, "disk_id", 0));
                path = vmd_row_string(disk, "path", NULL);
                mib = vmd_row_int(disk, "size_mib", 0);
                if (!disk || !path || path[0] != '/' ||
                    !streq(vmd_row_string(disk, "kind", ""), "shared") || access(path, F_OK) == 0)
                        continue;
                if (vm_disk_format_from_path(path) != VM_DISK_FORMAT_RAW) {
                        *ret_why = "a qcow2 disk image is missing (make it with qemu-img)";
                        return -ENOENT;
                }
                mount_point_of(path, mount, sizeof(mount));
                if (streq(mount, "/")) {
                        *ret_why = "a disk image is missing and its directory is not on a mounted share";
                        return -ENOENT;
                }
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0 && errno == EEXIST)
                        continue;
                if (fd < 0) {
                        *ret_why = "a disk image is missing and cannot be made";
                        return -errno;
                }
                if (mib <= 0 || ftruncate(fd, (off_t) mib * 1024 * 1024) < 0) {
                        int r = mib <= 0 ? -EINVAL : -errno;

                        (void) close(fd);
                        (void) unlink(path);
                        *ret_why = "a disk image is missing and cannot be made";
                        return r;
                }
                (void) close(fd);
                log_info("Made the disk image %s (%" PRId64 " MiB, sparse raw) on the share %s",
                         path, mib, mount);
        }
        return 0;
}

/* Makes this node's virtual switches match the networks rows; logs a
 * switch's problem when it changes. Only on a current view: a stale one
 * could delete a switch VMs still need. */
static void switches_apply(struct vmd_agent *a) {
        struct vmd_switch *now = NULL;
        size_t n = 0;
        int r;

        if (vmd_switches_from_rows(haven_domain_rows(a->v->domain, "networks"), &now, &n) < 0)
                return;
        r = a->net ? vmd_net_apply(a->net, now, n) : -ENOTCONN;
        for (size_t i = 0; r < 0 && i < n; i++)
                if (!now[i].error[0])
                        snprintf(now[i].error, sizeof(now[i].error), "%s",
                                 a->net ? "this node's interfaces cannot be read"
                                        : "this node's network links cannot be changed (no netlink)");
        for (size_t i = 0; i < n; i++) {
                const struct vmd_switch *before =
                        vmd_switch_by_bridge(a->switches, a->n_switches, now[i].bridge);

                if (now[i].error[0] && (!before || !streq(before->error, now[i].error)))
                        log_warning("switch '%s': %s", now[i].name, now[i].error);
                else if (!now[i].error[0] && before && before->error[0])
                        log_info("switch '%s': ready (%s)", now[i].name, now[i].bridge);
        }
        free(a->switches);
        a->switches = now;
        a->n_switches = n;
}

/* Whether every bridge the VM's NICs plug into is ready here; *why if not. */
static bool switches_ready(struct vmd_agent *a, const struct vmd_spec *spec, char *why, size_t size) {
        for (size_t i = 0; i < spec->spec.n_nics; i++) {
                const struct vmd_switch *sw =
                        vmd_switch_by_bridge(a->switches, a->n_switches, spec->spec.nics[i].bridge);

                if (!sw) {
                        snprintf(why, size, "the bridge %s belongs to no virtual switch here",
                                 spec->spec.nics[i].bridge);
                        return false;
                }
                if (sw->error[0]) {
                        char text[512];

                        snprintf(text, sizeof(text), "the virtual switch %s is not ready on this node: %s",
                                 sw->name, sw->error);
                        haven_text_copy_cut(why, size, text);
                        return false;
                }
        }
        return true;
}

static void vm_start(struct vmd_agent *a, struct agent_vm *vm,
                     struct json_object *tables) {
        _cleanup_(vmd_spec_done) struct vmd_spec spec = {};
        _cleanup_free_ char *xml = NULL;
        const char *why = NULL;
        char switch_why[sizeof(vm->error) - 16];
        int r;

        r = vmd_spec_build(tables, vm->vm_id, a->v->domain_type, &spec, &why);
        if (r >= 0 && !switches_ready(a, &spec, switch_why, sizeof(switch_why))) {
                why = switch_why;
                r = -ENODEV;
        }
        if (r >= 0)
                r = shared_images_ensure(tables, vm->vm_id, &why);
        if (r >= 0)
                r = vm_domain_xml(&spec.spec, &xml);
        if (r < 0) {
                snprintf(vm->error, sizeof(vm->error), "cannot run: %s",
                         why ?: r == -EINVAL ? "the configuration is not valid" : strerror(-r));
                vm->state = HA_RUNTIME_START_FAILED;
                log_warning("vm '%s': %s", vm->name, vm->error);
                return;
        }
        log_info("vm '%s': starting (generation %" PRIu64 ")", vm->name, vm->acted);
        r = vmd_libvirt_start(a->lv, xml);
        if (r == -EEXIST) {
                /* It runs already (a list raced with an event): fine. */
                vm->running = true;
                return;
        }
        if (r < 0) {
                copy_libvirt_error(a, vm->error, sizeof(vm->error), "start failed", r);
                vm->state = HA_RUNTIME_START_FAILED;
                log_warning("vm '%s': %s", vm->name, vm->error);
                return;
        }
        vm->running = true;
        vm->paused = false;
        vm->unexpected = false;
        vm->vnc_port = 0;
        log_info("vm '%s': started", vm->name);
}

static void vm_destroy(struct vmd_agent *a, struct agent_vm *vm, const char *why) {
        int r;

        log_info("vm '%s': powering off: %s", vm->name, why);
        r = vmd_libvirt_destroy(a->lv, vm->name);
        if (r < 0 && r != -ESRCH && r != -ENOENT) {
                log_warning_errno(r, "vm '%s': power-off failed: %s", vm->name,
                                  vmd_libvirt_last_error(a->lv));
                return;
        }
        vm->running = false;
        vm->paused = false;
        vm->shutting_down = false;
        vm->state = HA_RUNTIME_STOPPED;
        vm->unexpected = false;
}

/* ==== Migration ==== */

static void on_job_written(struct haven_msg_link *link _unused_, int error,
                           struct json_object *reply, void *userdata _unused_) {
        const char *message = NULL;
        const char *code = error < 0 ? "unreachable" : haven_domain_reply_error(reply, &message);

        if (*code)
                log_warning("Failed to record a migration as a job (%s%s%s).", code,
                            message && *message ? ": " : "", message ?: "");
}

static void migration_job(struct vmd_agent *a, struct agent_vm *vm,
                          const struct vmd_migration_result *res,
                          const char *target_name) {
        _cleanup_(json_object_putp) struct json_object *ops = json_object_new_array();
        struct json_object *job = json_object_new_object(),
                           *line = json_object_new_object(), *ref = json_object_new_object();
        struct json_object *op1 = json_object_new_object(), *op2 = json_object_new_object();
        char text[2048], downtime[48];

        if (res->downtime_ms != UINT64_MAX)
                snprintf(downtime, sizeof(downtime), "%" PRIu64 " ms", res->downtime_ms);
        else
                snprintf(downtime, sizeof(downtime), "unknown");
        if (res->error == 0)
                snprintf(text, sizeof(text),
                         "vm '%s': live migration from '%s' to '%s' done in %" PRIu64
                         " ms, downtime %s, %.1f MiB sent",
                         vm->name, a->v->node_name ?: "?", target_name,
                         res->duration_usec / 1000, downtime,
                         (double) res->data_processed / (1024.0 * 1024.0));
        else
                snprintf(text, sizeof(text),
                         "vm '%s': live migration from '%s' to '%s' failed after %" PRIu64
                         " ms: %s; it %s on '%s'",
                         vm->name, a->v->node_name ?: "?", target_name,
                         res->duration_usec / 1000, res->message ?: "unknown error",
                         res->source_running ? "keeps running" : "is not running",
                         a->v->node_name ?: "?");
        log_info("%s", text);
        if (!ops || !job || !line || !ref || !op1 || !op2 ||
            haven_json_add(job, "kind", json_object_new_string("migrate")) < 0 ||
            haven_json_add(job, "state", json_object_new_string(res->error ? "failed" : "done")) < 0 ||
            haven_json_add(job, "created_at", json_object_new_int64((int64_t) vm->migration_started)) < 0 ||
            haven_json_add(job, "finished_at",
                           json_object_new_int64((int64_t) haven_now_usec(CLOCK_REALTIME))) < 0 ||
            haven_json_add(ref, "ref", json_object_new_int64(0)) < 0 ||
            haven_json_add(line, "job_id", json_object_get(ref)) < 0 ||
            haven_json_add(line, "node", json_object_new_string(a->v->node_name ?: "?")) < 0 ||
            haven_json_add(line, "source", json_object_new_string("vmd")) < 0 ||
            haven_json_add(line, "line", json_object_new_string(text)) < 0 ||
            haven_json_add(op1, "op", json_object_new_string("insert")) < 0 ||
            haven_json_add(op1, "table", json_object_new_string("jobs")) < 0 ||
            haven_json_add(op1, "values", json_object_get(job)) < 0 ||
            haven_json_add(op2, "op", json_object_new_string("insert")) < 0 ||
            haven_json_add(op2, "table", json_object_new_string("job_log")) < 0 ||
            haven_json_add(op2, "values", json_object_get(line)) < 0 ||
            json_object_array_add(ops, json_object_get(op1)) < 0 ||
            json_object_array_add(ops, json_object_get(op2)) < 0)
                log_warning("vm '%s': failed to record the migration", vm->name);
        else
                (void) haven_domain_submit(a->v->domain, TAKE_PTR(ops), text, on_job_written,
                                           NULL);
        json_object_put(job);
        json_object_put(line);
        json_object_put(ref);
        json_object_put(op1);
        json_object_put(op2);
}

static void schedule(struct vmd_agent *a);

struct migration_ctx {
        struct vmd_agent *a;
        int64_t vm_id;
        char target_name[VM_NAME_MAX + 1];
};

static void on_migration_progress(struct vmd_migration *m _unused_,
                                  const struct vmd_migration_progress *p,
                                  void *userdata) {
        struct migration_ctx *ctx = userdata;
        struct agent_vm *vm = vm_by_id(ctx->a, ctx->vm_id);

        if (vm)
                vm->progress = *p;
}

static void on_migrated(struct vmd_migration *m,
                        const struct vmd_migration_result *res, void *userdata) {
        struct migration_ctx *ctx = userdata;
        struct vmd_agent *a = ctx->a;
        struct agent_vm *vm = vm_by_id(a, ctx->vm_id);
        struct json_object *last = json_object_new_object();

        if (!vm) {
                vmd_migration_free(m);
                free(ctx);
                return;
        }
        if (last) {
                (void) haven_json_add(last, "from_node", json_object_new_int64(a->v->self));
                (void) haven_json_add(last, "to_node", json_object_new_int64(vm->migration_target));
                (void) haven_json_add(last, "duration_ms",
                                      json_object_new_int64((int64_t) (res->duration_usec / 1000)));
                (void) haven_json_add(last, "downtime_ms",
                                      res->downtime_ms == UINT64_MAX
                                              ? NULL
                                              : json_object_new_int64((int64_t) res->downtime_ms));
                (void) haven_json_add(last, "error", haven_json_string_or_null(res->message));
                json_object_put(vm->last_migration);
                vm->last_migration = last;
        }
        migration_job(a, vm, res, ctx->target_name);
        vm->migration = vmd_migration_free(vm->migration);
        if (res->error == 0) {
                /* It runs on the target now: the target reports it. */
                vm->running = false;
                vm->paused = false;
                vm->state = HA_RUNTIME_STOPPED;
                vm->unexpected = false;
        } else {
                haven_text_copy_cut(vm->error, sizeof(vm->error),
                                    res->message ?: "the migration failed");
                vm->running = res->source_running;
                if (!vm->running) {
                        vm->state = HA_RUNTIME_STOPPED;
                        vm->unexpected = true;
                }
        }
        free(ctx);
        schedule(a);
}

static void vm_migrate(struct vmd_agent *a, struct agent_vm *vm,
                       struct json_object *tables, uint32_t target) {
        struct json_object *nodes = NULL, *row, *addresses = NULL, *first;
        struct migration_ctx *ctx;
        char dest[512], stream[512], host[300];
        const char *address;
        int r;

        (void) json_object_object_get_ex(tables, "nodes", &nodes);
        row = vmd_row_by_int(nodes, "node_id", target);
        if (row)
                (void) haven_json_get_array(row, "addresses", &addresses);
        first = addresses && json_object_array_length(addresses)
                        ? json_object_array_get_idx(addresses, 0)
                        : NULL;
        address = json_object_is_type(first, json_type_string) ? json_object_get_string(first) : NULL;
        if (!address || strpbrk(address, "/@?# ")) {
                snprintf(vm->error, sizeof(vm->error),
                         "migration: node %" PRIu32 " has no interconnect address", target);
                log_warning("vm '%s': %s", vm->name, vm->error);
                return;
        }
        /* IPv6 addresses go in brackets inside a URI. */
        snprintf(host, sizeof(host), strchr(address, ':') ? "[%s]" : "%s", address);
        snprintf(dest, sizeof(dest), a->v->peer_uri_format, host);
        snprintf(stream, sizeof(stream), "tcp://%s", host);
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return;
        ctx->a = a;
        ctx->vm_id = vm->vm_id;
        haven_text_copy_cut(ctx->target_name, sizeof(ctx->target_name),
                            vmd_row_string(row, "name", "?"));
        vm->migration_target = target;
        vm->migration_started = haven_now_usec(CLOCK_REALTIME);
        vm->progress = (struct vmd_migration_progress) {};
        r = vmd_libvirt_migrate(a->lv, vm->name,
                                &(struct vmd_migration_options) {
                                        .destination_uri = dest,
                                        .migrate_uri = stream,
                                        .shared_storage = true,
                                        .progress_interval_usec = 500 * 1000,
                                },
                                on_migration_progress, on_migrated, ctx, &vm->migration);
        if (r < 0) {
                free(ctx);
                copy_libvirt_error(a, vm->error, sizeof(vm->error), "migration failed", r);
                log_warning("vm '%s': %s", vm->name, vm->error);
                return;
        }
        log_info("vm '%s': live-migrating to '%s' (%s)", vm->name, ctx->target_name, dest);
}

/* ==== Reconciling ==== */

static void act_commands(struct vmd_agent *a, struct agent_vm *vm,
                         struct json_object *commands) {
        static const char *const kinds[] = {"reset", "reboot"};

        for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
                struct json_object *c = running_command(commands, vm->vm_id, kinds[k]);
                int64_t id = c ? vmd_row_int(c, "id", 0) : 0;
                int r;

                if (!c || id == vm->command_done)
                        continue;
                vm->command_done = id;
                if (!vm->running) {
                        vm->command_failed = true;
                        snprintf(vm->command_result, sizeof(vm->command_result),
                                 "not running on %s", a->v->node_name ?: "this node");
                        continue;
                }
                r = k == 0 ? vmd_libvirt_reset(a->lv, vm->name)
                           : vmd_libvirt_reboot(a->lv, vm->name);
                vm->command_failed = r < 0;
                if (r < 0)
                        copy_libvirt_error(a, vm->command_result, sizeof(vm->command_result),
                                           kinds[k], r);
                else
                        snprintf(vm->command_result, sizeof(vm->command_result), "%s",
                                 k == 0 ? "reset" : "reboot requested (ACPI)");
                log_info("vm '%s': %s", vm->name, vm->command_result);
        }
}

static void act(struct vmd_agent *a, struct agent_vm *vm, struct json_object *p,
                struct json_object *tables, struct json_object *commands) {
        uint32_t self = a->v->self;
        uint32_t node = (uint32_t) vmd_row_int(p, "node_id", 0),
                 target = (uint32_t) vmd_row_int(p, "target_node_id", 0);
        enum ha_placement_state s =
                p ? ha_placement_state_from_string(vmd_row_string(p, "state", ""))
                  : HA_PLACEMENT_STOPPED;
        uint64_t generation = (uint64_t) vmd_row_int(p, "generation", 0);

        if (vm->migration)
                return; /* its outcome decides */
        if (!p || node != self) {
                if (p && s == HA_PLACEMENT_MIGRATING && target == self) {
                        /* Incoming: it is this generation's once it runs. */
                        if (vm->running && !vm->incoming && vm->acted < generation) {
                                vm->acted = generation;
                                vm->error[0] = 0;
                                a->state_dirty = true;
                        }
                        return;
                }
                if (vm->running && !vm->incoming && p && placed_elsewhere(a, p)) {
                        vm_destroy(a, vm, "it is placed on another node");
                        vm->forget = true;
                } else if (!vm->running && !vm->incoming)
                        vm->forget = true;
                return;
        }
        vm->forget = false;
        switch (s) {
        case HA_PLACEMENT_STARTING:
        case HA_PLACEMENT_RECOVERING:
        case HA_PLACEMENT_RUNNING:
                if (generation > vm->acted) {
                        new_generation(a, vm, generation);
                        if (vm->running)
                                break;
                        if (s == HA_PLACEMENT_RUNNING) {
                                /* Placed here as running, yet not running
                                 * and never started by this agent (this node
                                 * rebooted, or vmd lost its state): a stop
                                 * nobody asked for. The manager decides. */
                                vm->unexpected = true;
                                log_info("vm '%s': placed here as running, but it does not run",
                                         vm->name);
                                break;
                        }
                        vm_start(a, vm, tables);
                }
                break;
        case HA_PLACEMENT_STOPPING:
                if (generation > vm->acted) {
                        new_generation(a, vm, generation);
                        vm->powering_off = false;
                        if (!vm->running)
                                break;
                        if (running_command(commands, vm->vm_id, "poweroff")) {
                                vm_destroy(a, vm, "poweroff");
                                break;
                        }
                        log_info("vm '%s': shutting down (ACPI; powered off after %" PRIu64 " s)",
                                 vm->name, a->v->shutdown_timeout_usec / 1000000);
                        if (vmd_libvirt_shutdown(a->lv, vm->name, a->v->shutdown_timeout_usec) < 0)
                                vm_destroy(a, vm, "the shutdown request failed");
                        else
                                vm->shutting_down = true;
                } else if (vm->running && vm->shutting_down && !vm->powering_off &&
                           running_command(commands, vm->vm_id, "poweroff")) {
                        vm->powering_off = true;
                        vm_destroy(a, vm, "poweroff during a shutdown");
                }
                break;
        case HA_PLACEMENT_MIGRATING:
                if (generation > vm->acted) {
                        new_generation(a, vm, generation);
                        if (vm->running && target && target != self)
                                vm_migrate(a, vm, tables, target);
                }
                break;
        default:
                break; /* waiting, stopped, failed: touch nothing */
        }
        if (s == HA_PLACEMENT_RUNNING && !vm->migration)
                act_commands(a, vm, commands);
}

/* Reads libvirt's domains into the VM list. Returns 0 or -errno. */
static int list_domains(struct vmd_agent *a, struct json_object *placements) {
        struct vmd_domain_info *infos = NULL;
        size_t n = 0;
        int r;

        r = vmd_libvirt_list(a->lv, &infos, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < a->n_vms; i++)
                a->vms[i]->listed = false;
        for (size_t i = 0; i < n; i++) {
                struct vmd_domain_info *d = &infos[i];
                struct json_object *p;
                struct agent_vm *vm;
                bool up = d->state == VMD_DOMAIN_RUNNING || d->state == VMD_DOMAIN_PAUSED ||
                          d->state == VMD_DOMAIN_SHUTTING_DOWN ||
                          d->state == VMD_DOMAIN_SUSPENDED || d->state == VMD_DOMAIN_UNKNOWN;

                if (d->vm_id <= 0 || !up)
                        continue;
                vm = vm_get(a, d->vm_id, d->name);
                if (!vm)
                        continue;
                vm->listed = true;
                p = vmd_row_by_int(placements, "vm_id", d->vm_id);
                vm->incoming = d->state == VMD_DOMAIN_PAUSED &&
                               d->reason == VMD_REASON_MIGRATED && !vm->migration &&
                               (uint32_t) vmd_row_int(p, "target_node_id", 0) == a->v->self &&
                               streq(vmd_row_string(p, "state", ""), "migrating");
                vm->paused = d->state == VMD_DOMAIN_PAUSED;
                if (!vm->running && !vm->incoming) {
                        vm->running = true;
                        vm->unexpected = false;
                }
                if (vm->running && vm->vnc_port <= 0) {
                        r = vmd_libvirt_vnc_port(a->lv, vm->name);
                        vm->vnc_port = r > 0 ? r : 0;
                }
        }
        for (size_t i = 0; i < a->n_vms; i++) {
                struct agent_vm *vm = a->vms[i];

                if (vm->listed || vm->migration)
                        continue;
                vm->incoming = false;
                if (vm->running) {
                        /* Gone without an event we saw (libvirt was away). */
                        vm->running = false;
                        vm->paused = false;
                        vm->state = HA_RUNTIME_STOPPED;
                        vm->unexpected = !vm->shutting_down;
                        vm->shutting_down = false;
                        log_info("vm '%s': no longer runs here", vm->name);
                }
        }
        vmd_domain_info_array_free(infos, n);
        return 0;
}

/* Whether the view is the cluster's current content: quorate and synced.
 * A node that rejoined shows what it had before until its sync is done,
 * and a node without quorum may miss decisions: the agent reports then,
 * but starts, migrates and destroys nothing. */
static bool view_current(struct vmd_agent *a) {
        struct json_object *status = haven_domain_status(a->v->domain);

        return haven_domain_quorate(a->v->domain) && vmd_row_int(status, "synced", 0) == 1;
}

static void reconcile(struct vmd_agent *a) {
        struct haven_domain *d = a->v->domain;
        _cleanup_(json_object_putp) struct json_object *tables = NULL;
        struct json_object *placements, *commands, *vms;
        int r;

        if (!haven_domain_connected(d) || !haven_domain_ready(d) || !a->v->self)
                return;
        if (!vmd_libvirt_is_connected(a->lv)) {
                publish_status(a, false);
                return;
        }
        tables = vmd_tables_object(d);
        if (!tables)
                return;
        placements = haven_domain_rows(d, "vm_placements");
        commands = haven_domain_rows(d, "vm_commands");
        vms = haven_domain_rows(d, "vms");
        if (view_current(a))
                switches_apply(a);
        r = list_domains(a, placements);
        if (r < 0) {
                log_warning_errno(r, "Failed to list libvirt's domains: %s",
                                  vmd_libvirt_last_error(a->lv));
                publish_status(a, false);
                return;
        }
        /* VMs placed on this node that the agent does not know yet. */
        for (size_t i = 0; view_current(a) && i < json_object_array_length(placements); i++) {
                struct json_object *p = json_object_array_get_idx(placements, i), *row;
                int64_t vm_id = vmd_row_int(p, "vm_id", 0);

                if ((uint32_t) vmd_row_int(p, "node_id", 0) != a->v->self || vm_by_id(a, vm_id))
                        continue;
                row = vmd_row_by_id(vms, vm_id);
                if (row)
                        (void) vm_get(a, vm_id, vmd_row_string(row, "name", "?"));
        }
        for (size_t i = 0; view_current(a) && i < a->n_vms; i++) {
                struct agent_vm *vm = a->vms[i];
                struct json_object *row = vmd_row_by_id(vms, vm->vm_id);

                if (!row) {
                        /* Deleted from the configuration. */
                        if (vm->running && !vm->migration)
                                vm_destroy(a, vm, "it was deleted from the configuration");
                        vm->forget = !vm->running && !vm->migration;
                        continue;
                }
                act(a, vm, vmd_row_by_int(placements, "vm_id", vm->vm_id), tables, commands);
        }
        for (size_t i = 0; i < a->n_vms;) {
                struct agent_vm *vm = a->vms[i];

                publish_vm(a, vm);
                if (!vm->forget) {
                        i++;
                        continue;
                }
                a->state_dirty = true;
                vm_free(vm);
                memmove(a->vms + i, a->vms + i + 1, (a->n_vms - i - 1) * sizeof(*a->vms));
                a->n_vms--;
        }
        state_save(a);
        publish_status(a, true);
}

/* ==== Events ==== */

static int on_defer(sd_event_source *s, void *userdata) {
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        reconcile(userdata);
        return 0;
}

static void schedule(struct vmd_agent *a) {
        (void) sd_event_source_set_enabled(a->defer, SD_EVENT_ONESHOT);
}

static int on_timer(sd_event_source *s, uint64_t usec _unused_, void *userdata) {
        struct vmd_agent *a = userdata;

        reconcile(a);
        for (size_t i = 0; i < a->n_vms; i++)
                if (a->vms[i]->migration)
                        publish_vm(a, a->vms[i]);
        (void) sd_event_source_set_time_relative(s, VMD_AGENT_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

static void on_event(struct vmd_libvirt *l _unused_, const struct vmd_domain_event *e,
                     void *userdata) {
        struct vmd_agent *a = userdata;
        struct agent_vm *vm = vm_by_name(a, e->name);

        log_debug("libvirt: %s %s (%s)%s", e->name, vmd_event_type_to_string(e->type),
                  vmd_reason_to_string(e->reason), e->requested ? ", requested" : "");
        if (vm && e->type == VMD_EVENT_STOPPED && !vm->migration) {
                bool unexpected = vmd_domain_event_is_unexpected_stop(e);

                vm->running = false;
                vm->paused = false;
                vm->incoming = false;
                vm->shutting_down = false;
                vm->vnc_port = 0;
                vm->unexpected = unexpected;
                vm->state = unexpected && e->reason == VMD_REASON_CRASHED ? HA_RUNTIME_CRASHED
                                                                          : HA_RUNTIME_STOPPED;
                if (e->reason == VMD_REASON_MIGRATED)
                        vm->unexpected = false; /* moved away by someone else */
                log_info("vm '%s': stopped (%s%s)", vm->name, vmd_reason_to_string(e->reason),
                         unexpected ? ", not asked for" : "");
        }
        if (vm && e->type == VMD_EVENT_STARTED)
                vm->vnc_port = 0;
        schedule(a);
}

static void on_connection(struct vmd_libvirt *l, bool connected, void *userdata) {
        struct vmd_agent *a = userdata;

        if (connected)
                log_info("Connected to libvirt at %s.", vmd_libvirt_uri(l));
        else
                log_warning("Lost the connection to libvirt at %s; reconnecting.",
                            vmd_libvirt_uri(l));
        schedule(a);
}

void vmd_agent_changed(struct vmd_agent *a, unsigned what) {
        if (what & (HAVEN_DOMAIN_TABLES | HAVEN_DOMAIN_STATUS | HAVEN_DOMAIN_LINK))
                schedule(a);
        if (what & HAVEN_DOMAIN_LINK && !haven_domain_connected(a->v->domain)) {
                /* domaind forgets what we published with the link. */
                free(a->status_published);
                a->status_published = NULL;
                for (size_t i = 0; i < a->n_vms; i++) {
                        free(a->vms[i]->published);
                        a->vms[i]->published = NULL;
                }
        }
}

int vmd_agent_new(struct vmd *v, struct vmd_agent **ret) {
        _cleanup_(vmd_agent_freep) struct vmd_agent *a = calloc(1, sizeof(*a));
        int r;

        if (!a)
                return -ENOMEM;
        a->v = v;
        a->memory_mib = vmd_node_memory_mib();
        r = sd_event_add_defer(v->event, &a->defer, on_defer, a);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(a->defer, SD_EVENT_OFF);
        r = haven_loop_add_timer(v->event, &a->timer, VMD_AGENT_INTERVAL_USEC, 50 * 1000,
                                 on_timer, a);
        if (r < 0)
                return r;
        state_load(a);
        if (vmd_net_new(&a->net) < 0)
                log_warning("No netlink: virtual switches cannot be made on this node");
        r = vmd_libvirt_new(v->event,
                            &(struct vmd_libvirt_options) {.uri = v->libvirt_uri},
                            on_event, on_connection, a, &a->lv);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

struct vmd_agent *vmd_agent_free(struct vmd_agent *a) {
        if (!a)
                return NULL;
        for (size_t i = 0; i < a->n_vms; i++)
                vm_free(a->vms[i]);
        free(a->vms);
        vmd_libvirt_free(a->lv);
        vmd_net_free(a->net);
        free(a->switches);
        sd_event_source_disable_unref(a->timer);
        sd_event_source_disable_unref(a->defer);
        free(a->status_published);
        free(a);
        return NULL;
}
