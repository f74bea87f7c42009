/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for the node agent's libvirt side (daemons/vmd/vmd-libvirt.c),
 * in two groups, without mocks:
 *
 * 1. libvirt's built-in test driver ("test:///default"): libvirt's own
 *    in-process hypervisor simulation, not something we wrote. It proves the
 *    sd-event event loop integration (lifecycle events arrive through our
 *    loop, never inside the call that caused them), start, destroy,
 *    shutdown, list, state, metadata, the errors, and who asked for a stop.
 *    It runs no QEMU and cannot migrate, reboot or lose its connection.
 *
 * 2. Real libvirtd and QEMU (TCG): two private libvirtd session daemons,
 *    started by this test as an unprivileged user (nobody when run as
 *    root) in a temporary directory, reached over unix sockets; migration
 *    streams go over 127.0.0.1. It proves what the test driver cannot: the
 *    shutdown that ends in a destroy after its timeout (a guest without an
 *    OS ignores ACPI), reset, the VNC port, live migration between the two
 *    daemons with progress and downtime, failed, refused, cancelled and
 *    timed-out migrations that leave the domain running on the source,
 *    reconnection after libvirtd restarts, and keepalive bounding a call to
 *    a libvirtd that stopped answering. The group is skipped (with a
 *    message) when libvirtd or QEMU is not installed. Bridged NICs need the
 *    system daemon: the lab's system tests run the same code against each
 *    node's qemu:///system.
 *
 * To run group 2 against a real node instead (inside the lab), set
 * HAVEN_VMD_TEST_URI (the node's URI, e.g. qemu:///system) and
 * HAVEN_VMD_TEST_PEER_URI (another node's, e.g. qemu+tcp://198.18.0.2/system)
 * and HAVEN_VMD_TEST_PEER_ADDRESS (its interconnect address, for the
 * migration stream) and HAVEN_VMD_TEST_DIR (a directory both nodes share,
 * for the disk image).
 *
 * Bad inputs tried: unknown domain names, NULL names and XML, XML libvirt
 * refuses, a second start of a running domain, operations on a defined
 * domain that is not running, a migration without a destination, of a
 * domain already migrating, of an unknown domain, to a destination that
 * does not exist, without the shared-storage assertion, a URI nobody
 * listens on, a libvirtd killed or frozen (SIGSTOP) under the agent, an
 * event loop moved while libvirt has sources open.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <sys/param.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "haven/log.h"
#include "haven/loop.h"

#include "../../daemons/vmd/vmd-libvirt.h"
#include "../../daemons/vmd/vmd-xml.h"
#include "test-tmp.h"

#define CLUSTER_UUID "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
#define TEST_URI "test:///default"
/* Events of the test driver come within one loop iteration; QEMU's and
 * migrations' within seconds under TCG on a loaded machine. */
#define EVENT_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define DAEMON_START_TIMEOUT_USEC (30 * USEC_PER_SEC)

/* ==== Helpers ==== */

static sd_event *loop;

struct recorded_event {
        char name[64];
        enum vmd_event_type type;
        enum vmd_reason reason;
        bool requested;
        bool unexpected;
};

struct recorder {
        struct recorded_event events[256];
        size_t n;
        unsigned connected, disconnected;
};

static void record_event(struct vmd_libvirt *l,
                         const struct vmd_domain_event *e, void *userdata) {
        struct recorder *r = userdata;
        struct recorded_event *x;

        assert_non_null(e->name);
        assert_int_equal(strlen(e->uuid), VM_UUID_STRING_MAX - 1);
        if (r->n == ELEMENTSOF(r->events))
                fail_msg("too many events");
        x = &r->events[r->n++];
        (void) snprintf(x->name, sizeof(x->name), "%s", e->name);
        x->type = e->type;
        x->reason = e->reason;
        x->requested = e->requested;
        x->unexpected = vmd_domain_event_is_unexpected_stop(e);
}

static void record_connection(struct vmd_libvirt *l, bool connected,
                              void *userdata) {
        struct recorder *r = userdata;

        if (connected)
                r->connected++;
        else
                r->disconnected++;
}

/* The first event of type for name among the events recorded since
 * index since. */
static const struct recorded_event *find_event_since(const struct recorder *r,
                                                     size_t since,
                                                     const char *name,
                                                     enum vmd_event_type type) {
        for (size_t i = since; i < r->n; i++)
                if (streq(r->events[i].name, name) && r->events[i].type == type)
                        return &r->events[i];
        return NULL;
}

static const struct recorded_event *find_event(const struct recorder *r,
                                               const char *name,
                                               enum vmd_event_type type) {
        return find_event_since(r, 0, name, type);
}

/* Runs the loop until cond(data) holds or timeout_usec passes. */
static bool run_until(bool (*cond)(void *data), void *data,
                      uint64_t timeout_usec) {
        uint64_t deadline = haven_deadline_usec(timeout_usec);

        while (!cond(data)) {
                uint64_t now = haven_now_usec(CLOCK_MONOTONIC);

                if (now >= deadline)
                        return false;
                assert_true(sd_event_run(loop, MIN(deadline - now,
                                                   100 * USEC_PER_MSEC)) >= 0);
        }
        return true;
}

struct wait_event {
        const struct recorder *recorder;
        size_t since;
        const char *name;
        enum vmd_event_type type;
        const struct recorded_event *found;
};

static bool event_arrived(void *data) {
        struct wait_event *w = data;

        w->found = find_event_since(w->recorder, w->since, w->name, w->type);
        return w->found != NULL;
}

/* Runs the loop until an event of type for name arrives (or has arrived
 * since index since) and returns it; fails the test after
 * EVENT_TIMEOUT_USEC. */
static const struct recorded_event *wait_event_since(const struct recorder *r,
                                                     size_t since,
                                                     const char *name,
                                                     enum vmd_event_type type) {
        struct wait_event w = {
                .recorder = r, .since = since, .name = name, .type = type};

        if (!run_until(event_arrived, &w, EVENT_TIMEOUT_USEC))
                fail_msg("no %s event for \"%s\"",
                         vmd_event_type_to_string(type), name);
        return w.found;
}

static const struct recorded_event *wait_event(const struct recorder *r,
                                               const char *name,
                                               enum vmd_event_type type) {
        return wait_event_since(r, 0, name, type);
}

/* Runs a few iterations: what would have come by now has come. */
static void settle(void) {
        for (int i = 0; i < 10; i++)
                assert_true(sd_event_run(loop, 10 * USEC_PER_MSEC) >= 0);
}

static bool counter_reached(void *data) {
        const unsigned *counters = data;

        return counters[0] >= counters[1];
}

static bool wait_counter(const unsigned *counter, unsigned value,
                         uint64_t timeout_usec) {
        unsigned pair[2];
        uint64_t deadline = haven_deadline_usec(timeout_usec);

        for (;;) {
                pair[0] = *counter;
                pair[1] = value;
                if (counter_reached(pair))
                        return true;
                if (haven_now_usec(CLOCK_MONOTONIC) >= deadline)
                        return false;
                assert_true(sd_event_run(loop, 50 * USEC_PER_MSEC) >= 0);
        }
}

/* A VM's domain XML from the real generator: one raw virtio disk at
 * disk_path, an empty CD-ROM, no NIC (a bridge needs the system daemon),
 * 32 MiB, TCG. Owned by the caller. */
static char *vm_xml(const char *name, int64_t id, const char *disk_path) {
        const struct vm_disk_spec disks[] = {
                {.path = disk_path,
                 .format = VM_DISK_FORMAT_RAW,
                 .bus = VM_DISK_BUS_VIRTIO,
                 .boot_order = 1},
        };
        const struct vm_cdrom_spec cdroms[] = {{.iso_path = NULL}};
        char uuid[VM_UUID_STRING_MAX];
        struct vm_spec spec = {
                .name = name,
                .uuid = uuid,
                .vm_id = id,
                .type = VM_DOMAIN_TYPE_QEMU,
                .vcpus = 1,
                .memory_mib = 32,
                .disks = disks,
                .n_disks = 1,
                .cdroms = cdroms,
                .n_cdroms = 1,
        };
        char *xml = NULL;

        assert_int_equal(vm_uuid(CLUSTER_UUID, id, uuid), 0);
        assert_int_equal(vm_domain_xml(&spec, &xml), 0);
        return xml;
}

/* An agent with keepalive 1 s × (1 + 1), quick reconnection, and
 * call_timeout_usec (0: the default, 30 s). */
static struct vmd_libvirt *agent_new_with(const char *uri, struct recorder *r,
                                          uint64_t call_timeout_usec) {
        const struct vmd_libvirt_options options = {
                .uri = uri,
                .keepalive_interval_s = 1,
                .keepalive_count = 1,
                .reconnect_min_usec = 50 * USEC_PER_MSEC,
                .reconnect_max_usec = 400 * USEC_PER_MSEC,
                .call_timeout_usec = call_timeout_usec,
        };
        struct vmd_libvirt *l = NULL;

        assert_int_equal(vmd_libvirt_new(loop, &options, record_event,
                                         record_connection, r, &l),
                         0);
        assert_non_null(l);
        return l;
}

static struct vmd_libvirt *agent_new(const char *uri, struct recorder *r) {
        return agent_new_with(uri, r, 0);
}

static bool has_domain(struct vmd_libvirt *l, const char *name,
                       struct vmd_domain_info *ret) {
        struct vmd_domain_info *infos = NULL;
        size_t n = 0;
        bool found = false;

        assert_int_equal(vmd_libvirt_list(l, &infos, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (streq(infos[i].name, name)) {
                        found = true;
                        if (ret) { /* the name moves to *ret */
                                *ret = infos[i];
                                infos[i].name = NULL;
                        }
                }
        vmd_domain_info_array_free(infos, n);
        return found;
}

static bool no_child_left(void) {
        return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

struct migration_watch {
        bool called;
        struct vmd_migration_result result;
        char message[VMD_MIGRATION_MESSAGE_MAX];
        unsigned progress_calls;
        struct vmd_migration_progress last;
        bool cancel_on_progress;
};

static void watch_progress(struct vmd_migration *m,
                           const struct vmd_migration_progress *p,
                           void *userdata) {
        struct migration_watch *w = userdata;

        assert_true(p->percent <= 100);
        w->progress_calls++;
        w->last = *p;
        if (w->cancel_on_progress) {
                w->cancel_on_progress = false;
                assert_int_equal(vmd_migration_cancel(m), 0);
        }
}

static void watch_done(struct vmd_migration *m,
                       const struct vmd_migration_result *result,
                       void *userdata) {
        struct migration_watch *w = userdata;

        assert_false(w->called);
        w->called = true;
        w->result = *result;
        w->result.message = NULL;
        if (result->message)
                (void) snprintf(w->message, sizeof(w->message), "%s",
                                result->message);
}

static bool watch_called(void *data) {
        return ((struct migration_watch *) data)->called;
}

/* Whether uri's libvirtd has a domain called name (another client's
 * view). */
static bool has_domain_on(const char *uri, const char *name) {
        virConnectPtr c = virConnectOpen(uri);
        virDomainPtr dom;

        assert_non_null(c);
        dom = virDomainLookupByName(c, name);
        if (dom)
                virDomainFree(dom);
        virResetLastError();
        assert_int_equal(virConnectClose(c), 0);
        return dom != NULL;
}

/* ==== Group 1: libvirt's test driver ==== */

static int test_driver_setup(void **state) {
        assert_int_equal(haven_loop_new(&loop), 0);
        assert_int_equal(vmd_libvirt_event_register(loop), 0);
        return 0;
}

static int test_driver_teardown(void **state) {
        settle();
        vmd_libvirt_event_flush();
        /* Every connection is closed: libvirt left nothing on the loop. */
        assert_int_equal(vmd_libvirt_event_sources(), 0);
        return 0;
}

static void agent_connects_and_lists_the_domains(void **state) {
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l =
                agent_new(TEST_URI, &r);
        struct vmd_domain_info info = {};

        assert_true(vmd_libvirt_is_connected(l));
        assert_string_equal(vmd_libvirt_uri(l), TEST_URI);
        /* on_connection comes from the loop, not from inside new. */
        assert_int_equal(r.connected, 0);
        settle();
        assert_int_equal(r.connected, 1);

        /* The test driver's own domain: persistent, not one of Haven's. */
        assert_true(has_domain(l, "test", &info));
        assert_int_equal(info.state, VMD_DOMAIN_RUNNING);
        assert_true(info.persistent);
        assert_int_equal(info.vm_id, 0);
        assert_string_equal(info.uuid, "6695eb01-f6a4-8304-79aa-97f2502e193f");
        vmd_domain_info_done(&info);

        assert_int_equal(vmd_libvirt_get(l, "test", &info), 0);
        assert_string_equal(info.name, "test");
        vmd_domain_info_done(&info);
}

static void started_domain_event_arrives_through_our_loop(void **state) {
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l =
                agent_new(TEST_URI, &r);
        _cleanup_free_ char *xml = vm_xml("loop1", 11, "/srv/shared/loop1.img");
        char uuid[VM_UUID_STRING_MAX];
        struct vmd_domain_info info = {};
        const struct recorded_event *e;

        settle();
        assert_int_equal(vmd_libvirt_start(l, xml), 0);
        /* Not from inside the call: libvirt queued it on its timer, which
         * runs on our sd-event loop. */
        assert_null(find_event(&r, "loop1", VMD_EVENT_STARTED));
        e = wait_event(&r, "loop1", VMD_EVENT_STARTED);
        assert_int_equal(e->reason, VMD_REASON_BOOTED);
        assert_true(e->requested);

        /* Transient, carries its vm_id, has the derived UUID. */
        assert_int_equal(vmd_libvirt_get(l, "loop1", &info), 0);
        assert_int_equal(info.state, VMD_DOMAIN_RUNNING);
        assert_false(info.persistent);
        assert_int_equal(info.vm_id, 11);
        assert_int_equal(vm_uuid(CLUSTER_UUID, 11, uuid), 0);
        assert_string_equal(info.uuid, uuid);
        vmd_domain_info_done(&info);

        assert_int_equal(vmd_libvirt_destroy(l, "loop1"), 0);
        e = wait_event(&r, "loop1", VMD_EVENT_STOPPED);
        /* A transient domain leaves nothing behind. */
        assert_false(has_domain(l, "loop1", NULL));
        assert_int_equal(vmd_libvirt_get(l, "loop1", &info), -ENOENT);
}

static void second_start_of_a_running_domain_is_refused(void **state) {
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l =
                agent_new(TEST_URI, &r);
        _cleanup_free_ char *xml = vm_xml("twice", 12, "/srv/shared/twice.img");

        assert_int_equal(vmd_libvirt_start(l, xml), 0);
        assert_int_equal(vmd_libvirt_start(l, xml), -EEXIST);
        assert_non_null(strstr(vmd_libvirt_last_error(l), "already active"));
        assert_int_equal(vmd_libvirt_destroy(l, "twice"), 0);
        wait_event(&r, "twice", VMD_EVENT_STOPPED);
}

static void destroy_and_shutdown_are_requested_stops(void **state) {
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l =
                agent_new(TEST_URI, &r);
        _cleanup_free_ char *a = vm_xml("stop-a", 13, "/srv/shared/a.img");
        _cleanup_free_ char *b = vm_xml("stop-b", 14, "/srv/shared/b.img");
        const struct recorded_event *e;

        assert_int_equal(vmd_libvirt_start(l, a), 0);
        assert_int_equal(vmd_libvirt_start(l, b), 0);
        wait_event(&r, "stop-b", VMD_EVENT_STARTED);

        assert_int_equal(vmd_libvirt_destroy(l, "stop-a"), 0);
        e = wait_event(&r, "stop-a", VMD_EVENT_STOPPED);
        assert_int_equal(e->reason, VMD_REASON_DESTROYED);
        assert_true(e->requested);
        assert_false(e->unexpected);

        /* The test driver's guest obeys ACPI at once; the destroy timer is
         * dropped with the stop. */
        assert_int_equal(vmd_libvirt_shutdown(l, "stop-b", 200 * USEC_PER_MSEC),
                         0);
        e = wait_event(&r, "stop-b", VMD_EVENT_STOPPED);
        assert_int_equal(e->reason, VMD_REASON_SHUTDOWN);
        assert_true(e->requested);
        assert_false(e->unexpected);
        size_t n = r.n;
        struct wait_event never = {
                .recorder = &r, .name = "none", .type = VMD_EVENT_STOPPED};
        assert_false(run_until(event_arrived, &never, 400 * USEC_PER_MSEC));
        assert_int_equal(r.n, n);
}

static void stop_by_another_client_is_unexpected(void **state) {
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l =
                agent_new(TEST_URI, &r);
        _cleanup_free_ char *a = vm_xml("guest-a", 15, "/srv/shared/a.img");
        _cleanup_free_ char *b = vm_xml("guest-b", 16, "/srv/shared/b.img");
        virConnectPtr other;
        virDomainPtr dom;
        const struct recorded_event *e;

        /* Another client of the same (in-process) test driver: the guest
         * powering itself off, an administrator with virsh. */
        other = virConnectOpen(TEST_URI);
        assert_non_null(other);
        assert_int_equal(vmd_libvirt_start(l, a), 0);
        assert_int_equal(vmd_libvirt_start(l, b), 0);

        dom = virDomainLookupByName(other, "guest-a");
        assert_non_null(dom);
        assert_int_equal(virDomainShutdown(dom), 0);
        virDomainFree(dom);
        e = wait_event(&r, "guest-a", VMD_EVENT_STOPPED);
        assert_int_equal(e->reason, VMD_REASON_SHUTDOWN);
        assert_false(e->requested);
        assert_true(e->unexpected);

        dom = virDomainLookupByName(other, "guest-b");
        assert_non_null(dom);
        assert_int_equal(virDomainDestroy(dom), 0);
        virDomainFree(dom);
        e = wait_event(&r, "guest-b", VMD_EVENT_STOPPED);
        assert_int_equal(e->reason, VMD_REASON_DESTROYED);
        assert_false(e->requested);
        assert_true(e->unexpected);

        /* Started by someone else: not requested either. */
        size_t since = r.n;
        dom = virDomainCreateXML(other, a, 0);
        assert_non_null(dom);
        e = wait_event_since(&r, since, "guest-a", VMD_EVENT_STARTED);
        assert_false(e->requested);
        assert_int_equal(virDomainDestroy(dom), 0);
        virDomainFree(dom);
        assert_int_equal(virConnectClose(other), 0);
        settle();
}

static void pause_and_resume_arrive_as_events(void **state) {
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l =
                agent_new(TEST_URI, &r);
        _cleanup_free_ char *xml = vm_xml("pausing", 17, "/srv/shared/p.img");
        struct vmd_domain_info info = {};
        virConnectPtr other;
        virDomainPtr dom;
        const struct recorded_event *e;

        other = virConnectOpen(TEST_URI);
        assert_non_null(other);
        assert_int_equal(vmd_libvirt_start(l, xml), 0);
        dom = virDomainLookupByName(other, "pausing");
        assert_non_null(dom);
        assert_int_equal(virDomainSuspend(dom), 0);
        e = wait_event(&r, "pausing", VMD_EVENT_SUSPENDED);
        assert_int_equal(e->reason, VMD_REASON_PAUSED);
        assert_int_equal(vmd_libvirt_get(l, "pausing", &info), 0);
        assert_int_equal(info.state, VMD_DOMAIN_PAUSED);
        assert_int_equal(info.reason, VMD_REASON_PAUSED);
        vmd_domain_info_done(&info);

        assert_int_equal(vmd_libvirt_resume(l, "pausing"), 0);
        e = wait_event(&r, "pausing", VMD_EVENT_RESUMED);
        assert_int_equal(e->reason, VMD_REASON_UNPAUSED);
        assert_int_equal(vmd_libvirt_get(l, "pausing", &info), 0);
        assert_int_equal(info.state, VMD_DOMAIN_RUNNING);
        assert_int_equal(info.reason, VMD_REASON_UNPAUSED);
        vmd_domain_info_done(&info);

        virDomainFree(dom);
        assert_int_equal(vmd_libvirt_destroy(l, "pausing"), 0);
        wait_event(&r, "pausing", VMD_EVENT_STOPPED);
        assert_int_equal(virConnectClose(other), 0);
}

static void operations_say_what_is_wrong(void **state) {
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l =
                agent_new(TEST_URI, &r);
        struct vmd_domain_info info = {};
        virConnectPtr other;
        virDomainPtr dom;

        /* No such domain. */
        assert_int_equal(vmd_libvirt_destroy(l, "nowhere"), -ENOENT);
        assert_non_null(strstr(vmd_libvirt_last_error(l), "not found"));
        assert_int_equal(vmd_libvirt_shutdown(l, "nowhere", 0), -ENOENT);
        assert_int_equal(vmd_libvirt_reboot(l, "nowhere"), -ENOENT);
        assert_int_equal(vmd_libvirt_reset(l, "nowhere"), -ENOENT);
        assert_int_equal(vmd_libvirt_resume(l, "nowhere"), -ENOENT);
        assert_int_equal(vmd_libvirt_get(l, "nowhere", &info), -ENOENT);
        assert_int_equal(vmd_libvirt_vnc_port(l, "nowhere"), -ENOENT);
        assert_int_equal(vmd_libvirt_destroy(l, NULL), -EINVAL);
        assert_int_equal(vmd_libvirt_start(l, NULL), -EINVAL);

        /* XML libvirt refuses. */
        assert_int_equal(vmd_libvirt_start(l, "<domain"), -EINVAL);
        assert_int_equal(vmd_libvirt_start(l, "<domain type='qemu'/>"),
                         -EINVAL);

        /* A defined domain that is not running (only an administrator
         * defines one: Haven never does). */
        other = virConnectOpen(TEST_URI);
        assert_non_null(other);
        _cleanup_free_ char *xml = vm_xml("defined", 18, "/srv/shared/d.img");
        dom = virDomainDefineXML(other, xml);
        assert_non_null(dom);
        assert_int_equal(vmd_libvirt_destroy(l, "defined"), -ESRCH);
        assert_int_equal(vmd_libvirt_reset(l, "defined"), -ESRCH);
        assert_int_equal(vmd_libvirt_get(l, "defined", &info), 0);
        assert_int_equal(info.state, VMD_DOMAIN_STOPPED);
        assert_true(info.persistent);
        assert_int_equal(info.vm_id, 18);
        vmd_domain_info_done(&info);
        /* The test driver allocates no VNC port. */
        assert_int_equal(vmd_libvirt_vnc_port(l, "test"), -ENODATA);
        assert_int_equal(virDomainUndefine(dom), 0);
        virDomainFree(dom);
        assert_int_equal(virConnectClose(other), 0);
        settle();
}

static void failed_migration_keeps_the_domain_with_the_error(void **state) {
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l =
                agent_new(TEST_URI, &r);
        _cleanup_free_ char *xml = vm_xml("mover", 19, "/srv/shared/m.img");
        _cleanup_(vmd_migration_freep) struct vmd_migration *m = NULL;
        struct vmd_migration *again = NULL;
        const struct vmd_migration_options options = {
                .destination_uri = "test:///default",
                .shared_storage = true,
                .timeout_usec = 60 * USEC_PER_SEC,
        };
        struct migration_watch d = {};
        struct vmd_domain_info info = {};

        assert_int_equal(vmd_libvirt_start(l, xml), 0);
        wait_event(&r, "mover", VMD_EVENT_STARTED);

        assert_int_equal(
                vmd_libvirt_migrate(l, "mover", NULL, NULL, NULL, NULL, NULL),
                -EINVAL);
        const struct vmd_migration_options nowhere = {};
        assert_int_equal(vmd_libvirt_migrate(l, "mover", &nowhere, NULL, NULL,
                                             NULL, NULL),
                         -EINVAL);
        assert_int_equal(vmd_libvirt_migrate(l, "nowhere", &options, NULL, NULL,
                                             NULL, NULL),
                         -ENOENT);

        /* virsh (a real one, in its own process) opens its own
         * test:///default, where no "mover" exists: libvirt's refusal. */
        assert_int_equal(vmd_libvirt_migrate(l, "mover", &options, NULL,
                                             watch_done, &d, &m),
                         0);
        assert_string_equal(vmd_migration_name(m), "mover");
        assert_int_equal(vmd_libvirt_migrate(l, "mover", &options, NULL, NULL,
                                             NULL, &again),
                         -EBUSY);
        assert_null(again);

        assert_true(run_until(watch_called, &d, EVENT_TIMEOUT_USEC));
        assert_int_equal(d.result.error, -EIO);
        assert_non_null(strstr(d.message, "mover"));
        assert_true(d.result.source_running);
        assert_int_equal(d.result.downtime_ms, UINT64_MAX);
        assert_true(d.result.duration_usec > 0);
        assert_int_equal(vmd_migration_cancel(m), -EALREADY);

        /* Still here, still running, and no stop was reported. */
        assert_int_equal(vmd_libvirt_get(l, "mover", &info), 0);
        assert_int_equal(info.state, VMD_DOMAIN_RUNNING);
        vmd_domain_info_done(&info);
        assert_null(find_event(&r, "mover", VMD_EVENT_STOPPED));

        /* A migration that ended is no longer in the way. */
        m = vmd_migration_free(m);
        d = (struct migration_watch){};
        assert_int_equal(vmd_libvirt_migrate(l, "mover", &options, NULL,
                                             watch_done, &d, NULL),
                         0);
        assert_true(run_until(watch_called, &d, EVENT_TIMEOUT_USEC));
        assert_int_equal(d.result.error, -EIO);

        /* The destroy after a failed migration is ours, not unexpected. */
        assert_int_equal(vmd_libvirt_destroy(l, "mover"), 0);
        const struct recorded_event *e =
                wait_event(&r, "mover", VMD_EVENT_STOPPED);
        assert_true(e->requested);
        assert_true(no_child_left());
}

static void freed_agent_leaves_nothing_on_the_loop(void **state) {
        struct recorder r = {};
        struct vmd_libvirt *l = agent_new(TEST_URI, &r);
        _cleanup_free_ char *xml = vm_xml("leftover", 20, "/srv/shared/x.img");

        assert_int_equal(vmd_libvirt_start(l, xml), 0);
        assert_int_equal(vmd_libvirt_shutdown(l, "leftover", USEC_PER_SEC), 0);
        assert_true(vmd_libvirt_event_sources() > 0);
        vmd_libvirt_free(l);
        settle();
        vmd_libvirt_event_flush();
        assert_int_equal(vmd_libvirt_event_sources(), 0);
        /* Nothing was delivered after the free (the recorder is still
         * ours to look at, nothing wrote to a freed agent). */
        assert_null(find_event(&r, "leftover", VMD_EVENT_STOPPED));
}

static void event_loop_moves_only_when_libvirt_is_idle(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *other = NULL;
        struct recorder r = {};
        struct vmd_libvirt *l;

        assert_int_equal(sd_event_new(&other), 0);
        l = agent_new(TEST_URI, &r);
        assert_int_equal(vmd_libvirt_event_register(loop), 0);
        assert_int_equal(vmd_libvirt_event_register(other), -EBUSY);
        /* An agent only runs on the loop libvirt's events are on. */
        struct vmd_libvirt *wrong = NULL;
        assert_int_equal(vmd_libvirt_new(other, NULL, NULL, NULL, NULL, &wrong),
                         -EINVAL);
        vmd_libvirt_free(l);
        settle();
        assert_int_equal(vmd_libvirt_event_register(other), 0);
        assert_int_equal(vmd_libvirt_event_register(loop), 0);
}

static void unreachable_libvirtd_is_retried_with_backoff(void **state) {
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l = agent_new(
                "qemu+unix:///system?socket=/nonexistent/libvirt-sock", &r);
        struct vmd_domain_info info = {};
        struct vmd_domain_info *infos = NULL;
        size_t n = 0;

        assert_false(vmd_libvirt_is_connected(l));
        assert_non_null(strstr(vmd_libvirt_last_error(l), "/nonexistent"));
        assert_int_equal(vmd_libvirt_get(l, "x", &info), -ENOTCONN);
        assert_int_equal(vmd_libvirt_list(l, &infos, &n), -ENOTCONN);
        assert_int_equal(vmd_libvirt_start(l, "<domain/>"), -ENOTCONN);
        /* Attempts go on in the background (50, 100, 200, 400 ms...) and
         * keep failing; nothing is reported as connected. */
        settle();
        struct wait_event never = {.recorder = &r, .name = "none"};
        assert_false(run_until(event_arrived, &never, USEC_PER_SEC));
        assert_int_equal(r.connected, 0);
        assert_false(vmd_libvirt_is_connected(l));
}

static void names_of_states_events_and_reasons(void **state) {
        for (int i = 0; i < _VMD_DOMAIN_STATE_MAX; i++)
                assert_non_null(vmd_domain_state_to_string(i));
        for (int i = 0; i < _VMD_EVENT_TYPE_MAX; i++)
                assert_non_null(vmd_event_type_to_string(i));
        for (int i = 0; i < _VMD_REASON_MAX; i++)
                assert_non_null(vmd_reason_to_string(i));
        assert_string_equal(
                vmd_domain_state_to_string(VMD_DOMAIN_SHUTTING_DOWN),
                "shutting-down");
        assert_string_equal(vmd_reason_to_string(VMD_REASON_MIGRATED),
                            "migrated");
        assert_null(vmd_domain_state_to_string(_VMD_DOMAIN_STATE_MAX));
        assert_null(vmd_event_type_to_string(-1));
        assert_null(vmd_reason_to_string(_VMD_REASON_MAX));

        struct vmd_domain_event e = {.type = VMD_EVENT_STOPPED,
                                     .reason = VMD_REASON_CRASHED};
        assert_true(vmd_domain_event_is_unexpected_stop(&e));
        e.requested = true;
        assert_false(vmd_domain_event_is_unexpected_stop(&e));
        e.requested = false;
        e.reason = VMD_REASON_MIGRATED; /* moved by someone else */
        assert_false(vmd_domain_event_is_unexpected_stop(&e));
        e.type = VMD_EVENT_SUSPENDED;
        e.reason = VMD_REASON_PAUSED;
        assert_false(vmd_domain_event_is_unexpected_stop(&e));
}

static void virsh_errors_become_one_clean_line(void **state) {
        char buf[VMD_MIGRATION_MESSAGE_MAX], small[12];

        /* What virsh prints for a refused migration. */
        vmd_virsh_error_message(
                "error: Unsafe migration: Migration without shared storage "
                "is unsafe\n",
                CLD_EXITED, 1, buf, sizeof(buf));
        assert_string_equal(buf, "Unsafe migration: Migration without shared "
                                 "storage is unsafe");
        /* Several lines, other output in between, control characters. */
        vmd_virsh_error_message("Migration: [ 45 %]\nerror: one\r\n"
                                "noise\nerror: two\tthree\x1b[0m\n",
                                CLD_EXITED, 1, buf, sizeof(buf));
        assert_string_equal(buf, "one ; two three [0m");
        /* No error line: how virsh ended. */
        vmd_virsh_error_message("", CLD_EXITED, 3, buf, sizeof(buf));
        assert_string_equal(buf, "virsh exited with status 3");
        vmd_virsh_error_message(NULL, CLD_KILLED, 9, buf, sizeof(buf));
        assert_string_equal(buf, "virsh was killed by signal 9");
        /* Cut on a character boundary: "ü" is two bytes. */
        vmd_virsh_error_message("error: abcdefghi\xc3\xbc\n", CLD_EXITED, 1,
                                small, 11);
        assert_string_equal(small, "abcdefghi");
        vmd_virsh_error_message("error: abcdefgh\xc3\xbc\n", CLD_EXITED, 1,
                                small, 11);
        assert_string_equal(small, "abcdefgh\xc3\xbc");
        vmd_virsh_error_message("error: abcdefg\xe2\x82\xac\xe2\x82\xac\n",
                                CLD_EXITED, 1, small, 11);
        assert_string_equal(small, "abcdefg\xe2\x82\xac");
        vmd_virsh_error_message("error: x\n", CLD_EXITED, 1, small, 1);
        assert_string_equal(small, "");
}

/* ==== Group 2: real libvirtd and QEMU ==== */

/* A private libvirtd session daemon. */
struct daemon {
        char dir[512];
        char uri[1024];
        char socket[640];
        char host_uuid[VM_UUID_STRING_MAX];
        pid_t pid;
};

static struct {
        bool skip;
        const char *skip_reason;
        bool external; /* HAVEN_VMD_TEST_URI: a real node's daemons */
        char root[256];
        char disk[512];
        const char *migrate_uri;
        uid_t uid;
        gid_t gid;
        struct daemon a, b;
} real;

/* No child of ours is left but the daemons (virsh children reaped). */
static bool only_daemons_left(void) {
        char path[64], children[4096];
        ssize_t n;
        char *p, *end;
        int fd;

        (void) snprintf(path, sizeof(path), "/proc/self/task/%d/children",
                        (int) getpid());
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        n = read(fd, children, sizeof(children) - 1);
        assert_true(n >= 0);
        (void) close(fd);
        children[n] = '\0';
        for (p = children;; p = end) {
                long pid = strtol(p, &end, 10);

                if (end == p)
                        return true;
                if (pid != real.a.pid && pid != real.b.pid)
                        return false;
        }
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *path) {
        assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
        if (geteuid() == 0)
                assert_int_equal(chown(path, real.uid, real.gid), 0);
}

static void daemon_prepare(struct daemon *d, const char *name,
                           const char *host_uuid) {
        char path[PATH_MAX + 64], conf[256];

        (void) snprintf(d->dir, sizeof(d->dir), "%s/%s", real.root, name);
        make_dir(d->dir);
        for (size_t i = 0; i < 4; i++) {
                static const char *const sub[] = {"home", "run", "config",
                                                  "cache"};

                (void) snprintf(path, sizeof(path), "%s/%s", d->dir, sub[i]);
                make_dir(path);
        }
        (void) snprintf(path, sizeof(path), "%s/config/libvirt", d->dir);
        make_dir(path);
        /* Two daemons on one machine need two host UUIDs, or libvirt
         * refuses to migrate "to the same host". */
        (void) snprintf(d->host_uuid, sizeof(d->host_uuid), "%s", host_uuid);
        (void) snprintf(conf, sizeof(conf), "host_uuid = \"%s\"\n", host_uuid);
        (void) snprintf(path, sizeof(path), "%s/config/libvirt/libvirtd.conf",
                        d->dir);
        write_text(path, conf);
        (void) snprintf(d->socket, sizeof(d->socket),
                        "%s/run/libvirt/libvirt-sock", d->dir);
        (void) snprintf(d->uri, sizeof(d->uri),
                        "qemu+unix:///session?socket=%s", d->socket);
}

/* Starts (or restarts) the daemon and waits until it answers. */
static void daemon_start(struct daemon *d) {
        uint64_t deadline = haven_deadline_usec(DAEMON_START_TIMEOUT_USEC);
        pid_t pid;

        (void) unlink(d->socket);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char home[PATH_MAX + 16], run[PATH_MAX + 32],
                        config[PATH_MAX + 32], cache[PATH_MAX + 32],
                        log[PATH_MAX + 16];
                sigset_t none;
                int fd;

                (void) snprintf(home, sizeof(home), "HOME=%s/home", d->dir);
                (void) snprintf(run, sizeof(run), "XDG_RUNTIME_DIR=%s/run",
                                d->dir);
                (void) snprintf(config, sizeof(config),
                                "XDG_CONFIG_HOME=%s/config", d->dir);
                (void) snprintf(cache, sizeof(cache), "XDG_CACHE_HOME=%s/cache",
                                d->dir);
                (void) snprintf(log, sizeof(log), "%s/libvirtd.log", d->dir);
                char *const env[] = {
                        home,
                        run,
                        config,
                        cache,
                        (char *) "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                        NULL};
                char *const argv[] = {(char *) "/usr/sbin/libvirtd", NULL};

                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                (void) setsid();
                fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        (void) dup2(fd, STDOUT_FILENO);
                        (void) dup2(fd, STDERR_FILENO);
                }
                if (geteuid() == 0 &&
                    (setgroups(0, NULL) < 0 || setgid(real.gid) < 0 ||
                     setuid(real.uid) < 0))
                        _exit(126);
                /* Set after the change of user, which clears it: a test that
                 * dies takes its daemons with it. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                        _exit(125);
                execve(argv[0], argv, env);
                _exit(127);
        }
        d->pid = pid;

        for (;;) {
                virConnectPtr c = virConnectOpen(d->uri);

                if (c) {
                        (void) virConnectClose(c);
                        return;
                }
                virResetLastError();
                if (waitpid(pid, NULL, WNOHANG) == pid)
                        fail_msg("libvirtd in %s exited, see its log", d->dir);
                if (haven_now_usec(CLOCK_MONOTONIC) >= deadline)
                        fail_msg("libvirtd in %s did not come up", d->dir);
                (void) usleep(50 * 1000);
        }
}

/* Ends the daemon we started, by its PID. */
static void daemon_stop(struct daemon *d, int sig) {
        if (d->pid <= 0)
                return;
        assert_int_equal(kill(d->pid, sig), 0);
        assert_int_equal(waitpid(d->pid, NULL, 0), d->pid);
        d->pid = 0;
}

/* QEMU daemonizes away from libvirtd: the ones our daemon started are
 * ended by the PIDs it recorded. */
static void daemon_kill_guests(struct daemon *d) {
        char dir[PATH_MAX + 32];
        struct dirent *de;
        DIR *dh;

        (void) snprintf(dir, sizeof(dir), "%s/run/libvirt/qemu/run", d->dir);
        dh = opendir(dir);
        if (!dh)
                return;
        while ((de = readdir(dh))) {
                char path[PATH_MAX + 320];
                long pid = 0;
                size_t n = strlen(de->d_name);
                FILE *f;

                if (n < 5 || !streq(de->d_name + n - 4, ".pid"))
                        continue;
                (void) snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                if (fscanf(f, "%ld", &pid) == 1 && pid > 1)
                        (void) kill((pid_t) pid, SIGKILL);
                fclose(f);
        }
        closedir(dh);
}

/* The domains this group creates: a failed test may leave one running. */
static const char *const test_domains[] = {
        "vmdtest-real1",  "vmdtest-stubborn",  "vmdtest-mover", "vmdtest-lost",
        "vmdtest-unsafe", "vmdtest-cancelled", "vmdtest-slow",
};

/* Destroys the test's domains (and only those: against a lab node, other
 * domains are not ours). */
static void destroy_test_domains(const char *uri) {
        virConnectPtr c = virConnectOpen(uri);

        if (!c) {
                virResetLastError();
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(test_domains); i++) {
                virDomainPtr dom = virDomainLookupByName(c, test_domains[i]);

                if (dom) {
                        (void) virDomainDestroy(dom);
                        virDomainFree(dom);
                }
        }
        virResetLastError();
        (void) virConnectClose(c);
}

static int real_setup(void **state) {
        const char *uri = getenv("HAVEN_VMD_TEST_URI");
        struct passwd *pw;
        int fd;

        if (!loop) {
                assert_int_equal(haven_loop_new(&loop), 0);
                assert_int_equal(vmd_libvirt_event_register(loop), 0);
        }
        if (access("/usr/sbin/libvirtd", X_OK) < 0 ||
            access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                real.skip = true;
                real.skip_reason = "libvirtd or qemu-system-x86_64 missing";
                return 0;
        }

        if (uri) {
                const char *peer = getenv("HAVEN_VMD_TEST_PEER_URI");
                const char *dir = getenv("HAVEN_VMD_TEST_DIR");

                if (!peer || !dir) {
                        real.skip = true;
                        real.skip_reason = "HAVEN_VMD_TEST_URI needs "
                                           "HAVEN_VMD_TEST_PEER_URI and "
                                           "HAVEN_VMD_TEST_DIR";
                        return 0;
                }
                real.external = true;
                (void) snprintf(real.a.uri, sizeof(real.a.uri), "%s", uri);
                (void) snprintf(real.b.uri, sizeof(real.b.uri), "%s", peer);
                (void) snprintf(real.root, sizeof(real.root), "%s", dir);
                if (getenv("HAVEN_VMD_TEST_PEER_ADDRESS")) {
                        static char migrate_uri[128];

                        (void) snprintf(migrate_uri, sizeof(migrate_uri),
                                        "tcp://%s",
                                        getenv("HAVEN_VMD_TEST_PEER_ADDRESS"));
                        real.migrate_uri = migrate_uri;
                }
        } else {
                real.uid = geteuid();
                real.gid = getegid();
                if (geteuid() == 0) {
                        /* libvirtd runs as root only as the system daemon. */
                        pw = getpwnam("nobody");
                        if (!pw) {
                                real.skip = true;
                                real.skip_reason = "no user \"nobody\"";
                                return 0;
                        }
                        real.uid = pw->pw_uid;
                        real.gid = pw->pw_gid;
                }
                (void) snprintf(real.root, sizeof(real.root),
                                "/tmp/test-vmd-libvirt-XXXXXX");
                assert_non_null(mkdtemp(real.root));
                assert_int_equal(chmod(real.root, 0755), 0);
                if (geteuid() == 0)
                        assert_int_equal(chown(real.root, real.uid, real.gid),
                                         0);
                daemon_prepare(&real.a, "a",
                               "11111111-2222-4333-8444-00000000000a");
                daemon_prepare(&real.b, "b",
                               "11111111-2222-4333-8444-00000000000b");
                daemon_start(&real.a);
                daemon_start(&real.b);
                real.migrate_uri = "tcp://127.0.0.1";
        }

        /* The shared directory's disk image: sparse, raw. */
        (void) snprintf(real.disk, sizeof(real.disk), "%s/disk.img", real.root);
        fd = open(real.disk, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 16 * 1024 * 1024), 0);
        if (!real.external && geteuid() == 0)
                assert_int_equal(fchown(fd, real.uid, real.gid), 0);
        assert_int_equal(close(fd), 0);
        return 0;
}

static int real_teardown(void **state) {
        if (real.skip)
                return 0;
        destroy_test_domains(real.a.uri);
        destroy_test_domains(real.b.uri);
        if (!real.external) {
                daemon_kill_guests(&real.a);
                daemon_kill_guests(&real.b);
                daemon_stop(&real.a, SIGTERM);
                daemon_stop(&real.b, SIGTERM);
                remove_tree(real.root);
        } else
                (void) unlink(real.disk);
        settle();
        vmd_libvirt_event_flush();
        assert_int_equal(vmd_libvirt_event_sources(), 0);
        return 0;
}

#define SKIP_UNLESS_REAL()                                                     \
        do {                                                                   \
                if (real.skip) {                                               \
                        print_message("skipped: %s\n", real.skip_reason);      \
                        skip();                                                \
                }                                                              \
        } while (0)

static void real_domain_runs_with_vnc_and_metadata(void **state) {
        SKIP_UNLESS_REAL();
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l =
                agent_new(real.a.uri, &r);
        _cleanup_free_ char *xml = vm_xml("vmdtest-real1", 31, real.disk);
        struct vmd_domain_info info = {};
        const struct recorded_event *e;
        int port;

        assert_true(vmd_libvirt_is_connected(l));
        assert_int_equal(vmd_libvirt_start(l, xml), 0);
        e = wait_event(&r, "vmdtest-real1", VMD_EVENT_STARTED);
        assert_true(e->requested);
        assert_int_equal(vmd_libvirt_get(l, "vmdtest-real1", &info), 0);
        assert_int_equal(info.state, VMD_DOMAIN_RUNNING);
        assert_int_equal(info.reason, VMD_REASON_BOOTED);
        assert_int_equal(info.vm_id, 31);
        assert_false(info.persistent);
        vmd_domain_info_done(&info);
        port = vmd_libvirt_vnc_port(l, "vmdtest-real1");
        assert_true(port >= 5900);

        /* Reset goes to QEMU at once: the REBOOTED event is ours. */
        assert_int_equal(vmd_libvirt_reset(l, "vmdtest-real1"), 0);
        e = wait_event(&r, "vmdtest-real1", VMD_EVENT_REBOOTED);
        assert_true(e->requested);
        /* ACPI reboot is delivered; a guest without an OS ignores it. */
        assert_int_equal(vmd_libvirt_reboot(l, "vmdtest-real1"), 0);

        assert_int_equal(vmd_libvirt_destroy(l, "vmdtest-real1"), 0);
        e = wait_event(&r, "vmdtest-real1", VMD_EVENT_STOPPED);
        assert_int_equal(e->reason, VMD_REASON_DESTROYED);
        assert_true(e->requested);
        assert_int_equal(vmd_libvirt_get(l, "vmdtest-real1", &info), -ENOENT);
}

static void shutdown_ignored_by_the_guest_ends_in_destroy(void **state) {
        SKIP_UNLESS_REAL();
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l =
                agent_new(real.a.uri, &r);
        _cleanup_free_ char *xml = vm_xml("vmdtest-stubborn", 32, real.disk);
        const struct recorded_event *e;
        uint64_t start;

        assert_int_equal(vmd_libvirt_start(l, xml), 0);
        wait_event(&r, "vmdtest-stubborn", VMD_EVENT_STARTED);
        start = haven_now_usec(CLOCK_MONOTONIC);
        assert_int_equal(
                vmd_libvirt_shutdown(l, "vmdtest-stubborn", USEC_PER_SEC), 0);
        e = wait_event(&r, "vmdtest-stubborn", VMD_EVENT_STOPPED);
        assert_true(haven_now_usec(CLOCK_MONOTONIC) - start >= USEC_PER_SEC);
        assert_int_equal(e->reason, VMD_REASON_DESTROYED);
        assert_true(e->requested);
        assert_false(e->unexpected);
}

static void live_migration_moves_the_domain_and_reports_downtime(void **state) {
        SKIP_UNLESS_REAL();
        struct recorder ra = {}, rb = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *a =
                agent_new(real.a.uri, &ra);
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *b =
                agent_new(real.b.uri, &rb);
        _cleanup_free_ char *xml = vm_xml("vmdtest-mover", 33, real.disk);
        _cleanup_(vmd_migration_freep) struct vmd_migration *m = NULL;
        const struct vmd_migration_options options = {
                .destination_uri = real.b.uri,
                .migrate_uri = real.migrate_uri,
                .shared_storage = true,
                .progress_interval_usec = 50 * USEC_PER_MSEC,
        };
        struct migration_watch w = {};
        struct vmd_migration_result stats = {};
        struct vmd_domain_info info = {};
        const struct recorded_event *e;

        assert_int_equal(vmd_libvirt_start(a, xml), 0);
        wait_event(&ra, "vmdtest-mover", VMD_EVENT_STARTED);
        assert_int_equal(vmd_libvirt_migrate(a, "vmdtest-mover", &options,
                                             watch_progress, watch_done, &w,
                                             &m),
                         0);
        assert_true(run_until(watch_called, &w, 120 * USEC_PER_SEC));
        if (w.result.error != 0)
                fail_msg("migration failed: %s", w.message);
        assert_null(w.result.message);
        assert_true(w.progress_calls > 0);
        assert_true(w.last.data_total > 0);
        /* The downtime, from the source's job-completed event. */
        assert_int_not_equal(w.result.downtime_ms, UINT64_MAX);
        assert_int_not_equal(w.result.elapsed_ms, UINT64_MAX);
        assert_true(w.result.data_processed > 0);
        assert_true(w.result.duration_usec >= w.result.elapsed_ms);
        print_message("migration: %" PRIu64 " ms, downtime %" PRIu64
                      " ms, %" PRIu64 " bytes, %u progress reports\n",
                      w.result.duration_usec / USEC_PER_MSEC,
                      w.result.downtime_ms, w.result.data_processed,
                      w.progress_calls);

        /* The source saw our migration take it away... */
        e = wait_event(&ra, "vmdtest-mover", VMD_EVENT_STOPPED);
        assert_int_equal(e->reason, VMD_REASON_MIGRATED);
        assert_true(e->requested);
        assert_false(e->unexpected);
        assert_int_equal(vmd_libvirt_get(a, "vmdtest-mover", &info), -ENOENT);
        /* ...the destination saw it come in, running. */
        e = wait_event(&rb, "vmdtest-mover", VMD_EVENT_STARTED);
        assert_int_equal(e->reason, VMD_REASON_MIGRATED);
        assert_false(e->requested);
        e = wait_event(&rb, "vmdtest-mover", VMD_EVENT_RESUMED);
        assert_int_equal(e->reason, VMD_REASON_MIGRATED);
        assert_int_equal(vmd_libvirt_get(b, "vmdtest-mover", &info), 0);
        assert_int_equal(info.state, VMD_DOMAIN_RUNNING);
        assert_int_equal(info.vm_id, 33);
        assert_false(info.persistent);
        vmd_domain_info_done(&info);
        /* The destination's own record agrees on the downtime. */
        assert_int_equal(
                vmd_libvirt_migration_stats(b, "vmdtest-mover", &stats), 0);
        assert_int_equal(stats.downtime_ms, w.result.downtime_ms);

        assert_int_equal(vmd_libvirt_destroy(b, "vmdtest-mover"), 0);
        wait_event(&rb, "vmdtest-mover", VMD_EVENT_STOPPED);
        assert_true(only_daemons_left());
}

/* Runs one migration of a fresh domain "name" on A with options and
 * returns what done said; the domain is destroyed afterwards. */
static void migrate_expecting_failure(const char *name, int64_t id,
                                      const struct vmd_migration_options *o,
                                      bool cancel, struct migration_watch *w) {
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *a =
                agent_new(real.a.uri, &r);
        _cleanup_free_ char *xml = vm_xml(name, id, real.disk);
        struct vmd_migration *m = NULL;
        struct vmd_domain_info info = {};

        assert_int_equal(vmd_libvirt_start(a, xml), 0);
        wait_event(&r, name, VMD_EVENT_STARTED);
        w->cancel_on_progress = cancel;
        assert_int_equal(vmd_libvirt_migrate(a, name, o, watch_progress,
                                             watch_done, w, &m),
                         0);
        assert_true(run_until(watch_called, w, 120 * USEC_PER_SEC));
        vmd_migration_free(m);
        print_message("%s: %s\n", name, w->message);

        /* Whatever went wrong, the domain runs where it was. */
        assert_true(w->result.source_running);
        assert_int_equal(vmd_libvirt_get(a, name, &info), 0);
        assert_int_equal(info.state, VMD_DOMAIN_RUNNING);
        vmd_domain_info_done(&info);
        assert_null(find_event(&r, name, VMD_EVENT_STOPPED));
        assert_false(has_domain_on(real.b.uri, name));

        assert_int_equal(vmd_libvirt_destroy(a, name), 0);
        wait_event(&r, name, VMD_EVENT_STOPPED);
        assert_true(only_daemons_left());
}

static void migration_to_a_missing_destination_fails_and_stays(void **state) {
        SKIP_UNLESS_REAL();
        char uri[PATH_MAX + 64];
        struct migration_watch w = {};

        (void) snprintf(uri, sizeof(uri),
                        "qemu+unix:///session?socket=%s/nowhere-sock",
                        real.root);
        const struct vmd_migration_options options = {
                .destination_uri = uri,
                .shared_storage = true,
        };
        migrate_expecting_failure("vmdtest-lost", 34, &options, false, &w);
        assert_int_equal(w.result.error, -EIO);
        assert_non_null(strstr(w.message, "nowhere-sock"));
}

static void migration_without_shared_storage_is_refused(void **state) {
        SKIP_UNLESS_REAL();
        struct migration_watch w = {};
        const struct vmd_migration_options options = {
                .destination_uri = real.b.uri,
                .migrate_uri = real.migrate_uri,
                .shared_storage = false,
        };

        if (real.external)
                skip(); /* a real shared directory may be NFS, which is safe */
        /* A local file system is not one libvirt trusts as shared. */
        migrate_expecting_failure("vmdtest-unsafe", 35, &options, false, &w);
        assert_int_equal(w.result.error, -EIO);
        assert_non_null(strstr(w.message, "shared storage"));
}

static void cancelled_migration_leaves_the_domain_running(void **state) {
        SKIP_UNLESS_REAL();
        struct migration_watch w = {};
        const struct vmd_migration_options options = {
                .destination_uri = real.b.uri,
                .migrate_uri = real.migrate_uri,
                .shared_storage = true,
                .bandwidth_mib_s = 1,
                .progress_interval_usec = 20 * USEC_PER_MSEC,
        };

        migrate_expecting_failure("vmdtest-cancelled", 36, &options, true, &w);
        assert_int_equal(w.result.error, -ECANCELED);
        assert_true(w.progress_calls > 0);
}

static void migration_past_its_timeout_is_aborted(void **state) {
        SKIP_UNLESS_REAL();
        struct migration_watch w = {};
        const struct vmd_migration_options options = {
                .destination_uri = real.b.uri,
                .migrate_uri = real.migrate_uri,
                .shared_storage = true,
                .bandwidth_mib_s = 1,
                .timeout_usec = 300 * USEC_PER_MSEC,
        };

        migrate_expecting_failure("vmdtest-slow", 37, &options, false, &w);
        assert_int_equal(w.result.error, -ETIMEDOUT);
}

static void agent_reconnects_after_libvirtd_restarts(void **state) {
        SKIP_UNLESS_REAL();
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l = NULL;
        struct vmd_domain_info *infos = NULL;
        size_t n = 0;

        if (real.external)
                skip(); /* we do not restart a node's libvirtd */
        l = agent_new(real.a.uri, &r);
        assert_true(wait_counter(&r.connected, 1, EVENT_TIMEOUT_USEC));

        daemon_stop(&real.a, SIGTERM);
        assert_true(wait_counter(&r.disconnected, 1, EVENT_TIMEOUT_USEC));
        assert_false(vmd_libvirt_is_connected(l));
        assert_int_equal(vmd_libvirt_list(l, &infos, &n), -ENOTCONN);
        assert_non_null(strstr(vmd_libvirt_last_error(l), "libvirt"));

        daemon_start(&real.a);
        assert_true(wait_counter(&r.connected, 2, EVENT_TIMEOUT_USEC));
        assert_true(vmd_libvirt_is_connected(l));
        assert_int_equal(vmd_libvirt_list(l, &infos, &n), 0);
        vmd_domain_info_array_free(infos, n);
}

/* Records the longest the loop went without running a 100 ms timer. */
struct responsiveness {
        uint64_t last, longest;
};

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        struct responsiveness *x = userdata;
        uint64_t now = haven_now_usec(CLOCK_MONOTONIC);

        if (x->last > 0)
                x->longest = MAX(x->longest, now - x->last);
        x->last = now;
        (void) sd_event_source_set_time_relative(s, 100 * USEC_PER_MSEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static void call_to_a_frozen_libvirtd_is_cut_by_the_call_guard(void **state) {
        SKIP_UNLESS_REAL();
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l = NULL;
        _cleanup_(sd_event_source_disable_unrefp) sd_event_source *tick = NULL;
        struct responsiveness x = {};
        struct vmd_domain_info info = {};
        uint64_t start, took;
        int k;

        if (real.external)
                skip(); /* we do not freeze a node's libvirtd */
        l = agent_new_with(real.a.uri, &r, 2 * USEC_PER_SEC);
        assert_true(wait_counter(&r.connected, 1, EVENT_TIMEOUT_USEC));

        /* libvirt 9.0 would wait for this reply forever. */
        assert_int_equal(kill(real.a.pid, SIGSTOP), 0);
        start = haven_now_usec(CLOCK_MONOTONIC);
        k = vmd_libvirt_get(l, "anything", &info);
        took = haven_now_usec(CLOCK_MONOTONIC) - start;
        print_message("a call to a frozen libvirtd failed after %" PRIu64
                      " ms: %s\n",
                      took / USEC_PER_MSEC, vmd_libvirt_last_error(l));
        assert_int_equal(k, -ETIMEDOUT);
        assert_true(took >= 2 * USEC_PER_SEC);
        assert_true(took < 5 * USEC_PER_SEC);
        assert_true(wait_counter(&r.disconnected, 1, EVENT_TIMEOUT_USEC));

        /* Reconnecting to the frozen daemon blocks the loop at most one
         * call timeout per attempt. */
        assert_int_equal(sd_event_add_time_relative(loop, &tick,
                                                    CLOCK_MONOTONIC, 0, 1,
                                                    on_tick, &x),
                         0);
        x.last = 0;
        struct wait_event never = {.recorder = &r, .name = "none"};
        assert_false(run_until(event_arrived, &never, 5 * USEC_PER_SEC));
        print_message("longest loop stall while reconnecting: %" PRIu64 " ms\n",
                      x.longest / USEC_PER_MSEC);
        assert_true(x.longest < 3500 * USEC_PER_MSEC);
        assert_false(vmd_libvirt_is_connected(l));

        assert_int_equal(kill(real.a.pid, SIGCONT), 0);
        assert_true(wait_counter(&r.connected, 2, EVENT_TIMEOUT_USEC));
        assert_int_equal(vmd_libvirt_get(l, "anything", &info), -ENOENT);
}

static void keepalive_notices_a_frozen_libvirtd_between_calls(void **state) {
        SKIP_UNLESS_REAL();
        struct recorder r = {};
        _cleanup_(vmd_libvirt_freep) struct vmd_libvirt *l = NULL;
        uint64_t start;

        if (real.external)
                skip();
        l = agent_new_with(real.a.uri, &r, 2 * USEC_PER_SEC);
        assert_true(wait_counter(&r.connected, 1, EVENT_TIMEOUT_USEC));

        /* No call in flight: libvirt's keepalive pings (1 s, one missed
         * answer allowed) run on our loop and close the connection. */
        assert_int_equal(kill(real.a.pid, SIGSTOP), 0);
        start = haven_now_usec(CLOCK_MONOTONIC);
        assert_true(wait_counter(&r.disconnected, 1, 10 * USEC_PER_SEC));
        print_message("keepalive noticed after %" PRIu64 " ms: %s\n",
                      (haven_now_usec(CLOCK_MONOTONIC) - start) / USEC_PER_MSEC,
                      vmd_libvirt_last_error(l));
        assert_int_equal(kill(real.a.pid, SIGCONT), 0);
        assert_true(wait_counter(&r.connected, 2, EVENT_TIMEOUT_USEC));
}

int main(void) {
        const struct CMUnitTest test_driver[] = {
                cmocka_unit_test(agent_connects_and_lists_the_domains),
                cmocka_unit_test(started_domain_event_arrives_through_our_loop),
                cmocka_unit_test(second_start_of_a_running_domain_is_refused),
                cmocka_unit_test(destroy_and_shutdown_are_requested_stops),
                cmocka_unit_test(stop_by_another_client_is_unexpected),
                cmocka_unit_test(pause_and_resume_arrive_as_events),
                cmocka_unit_test(operations_say_what_is_wrong),
                cmocka_unit_test(
                        failed_migration_keeps_the_domain_with_the_error),
                cmocka_unit_test(freed_agent_leaves_nothing_on_the_loop),
                cmocka_unit_test(event_loop_moves_only_when_libvirt_is_idle),
                cmocka_unit_test(unreachable_libvirtd_is_retried_with_backoff),
                cmocka_unit_test(names_of_states_events_and_reasons),
                cmocka_unit_test(virsh_errors_become_one_clean_line),
        };
        const struct CMUnitTest real_libvirtd[] = {
                cmocka_unit_test(real_domain_runs_with_vnc_and_metadata),
                cmocka_unit_test(shutdown_ignored_by_the_guest_ends_in_destroy),
                cmocka_unit_test(
                        live_migration_moves_the_domain_and_reports_downtime),
                cmocka_unit_test(
                        migration_to_a_missing_destination_fails_and_stays),
                cmocka_unit_test(migration_without_shared_storage_is_refused),
                cmocka_unit_test(cancelled_migration_leaves_the_domain_running),
                cmocka_unit_test(migration_past_its_timeout_is_aborted),
                cmocka_unit_test(agent_reconnects_after_libvirtd_restarts),
                cmocka_unit_test(
                        call_to_a_frozen_libvirtd_is_cut_by_the_call_guard),
                cmocka_unit_test(
                        keepalive_notices_a_frozen_libvirtd_between_calls),
        };
        int failed;

        log_parse_environment();
        /* libvirt writes to sockets whose peer may be gone (a libvirtd we
         * kill): like every program using it, ignore SIGPIPE. */
        assert_true(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
        if (getenv("TEST_FILTER"))
                cmocka_set_test_filter(getenv("TEST_FILTER"));
        failed = cmocka_run_group_tests_name("test driver", test_driver,
                                             test_driver_setup,
                                             test_driver_teardown);
        failed += cmocka_run_group_tests_name("real libvirtd and QEMU",
                                              real_libvirtd, real_setup,
                                              real_teardown);
        loop = sd_event_unref(loop);
        return failed;
}
