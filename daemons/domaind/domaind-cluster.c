/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cluster's lifecycle: create it on a fresh node (authkey, corosync.conf,
 * corosync started through the service manager, the first domain
 * transaction), keep every member's corosync.conf equal to what the domain
 * says (the nodes table is the nodelist; a change is written and reloaded
 * with corosync-cfgtool -R), and take a removed node out. Joining is in
 * domaind-join.c. Must not: write the store except through transactions.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "domaind.h"
#include "haven/db.h"
#include "haven/exec.h"
#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"
#include "haven/service.h"

#define AUTHKEY_SIZE 256
#define CREATE_TIMEOUT_USEC (60 * 1000 * 1000ULL)

/* ==== corosync.conf from the domain ==== */

/* Renders corosync.conf for the nodes (sorted by id). Returns 0 and *ret
 * (caller frees), -EINVAL for names or addresses corosync could not parse,
 * -ENOMEM. Pure: unit-tested. */
int cluster_render_corosync_conf(const char *cluster_name, const struct conf_node *nodes,
                                 size_t n, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (!cluster_name || !*cluster_name || strpbrk(cluster_name, " \t\n{}#:") || n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!nodes[i].name[0] || strpbrk(nodes[i].name, " \t\n{}#:") ||
                    !nodes[i].address[0] || strpbrk(nodes[i].address, " \t\n{}#") ||
                    nodes[i].node_id == 0)
                        return -EINVAL;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# Written by haven-domaind from the configuration domain: do not edit.\n"
                "totem {\n"
                "    version: 2\n"
                "    cluster_name: %s\n"
                "    transport: knet\n"
                "    crypto_cipher: aes256\n"
                "    crypto_hash: sha256\n"
                "    token: %u\n"
                /* The token is what the administrator reads: not
                 * stretched by 650 ms per node beyond two (corosync's
                 * default), so a failed node is detected in about
                 * 2.2 × token whatever the cluster's size. */
                "    token_coefficient: 0\n"
                "}\n"
                "nodelist {\n", cluster_name, DOMAIN_TOKEN_MS);
        for (size_t i = 0; i < n; i++)
                fprintf(f,
                        "    node {\n"
                        "        name: %s\n"
                        "        nodeid: %u\n"
                        "        ring0_addr: %s\n"
                        "    }\n", nodes[i].name, nodes[i].node_id, nodes[i].address);
        fprintf(f,
                "}\n"
                "quorum {\n"
                "    provider: corosync_votequorum\n"
                "%s"
                "}\n"
                "logging {\n"
                "    to_stderr: yes\n"
                "    to_logfile: no\n"
                "    to_syslog: yes\n"
                "    timestamp: hires\n"
                "}\n", n == 2 ? "    two_node: 1\n" : "");
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Reads the nodelist from the store: the first address of each node.
 * Returns the number of nodes (>= 0) with *ret allocated, or -errno. */
static int read_nodes(struct domain *d, struct conf_node **ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        _cleanup_free_ struct conf_node *nodes = NULL;
        size_t n = 0;

        if (sqlite3_prepare_v2(store_db(d->store),
                               "SELECT node_id, name, json_extract(addresses, '$[0]') "
                               "FROM nodes ORDER BY node_id", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        while (sqlite3_step(st) == SQLITE_ROW) {
                struct conf_node *p = realloc(nodes, (n + 1) * sizeof *nodes);
                if (!p)
                        return -ENOMEM;
                nodes = p;
                nodes[n] = (struct conf_node) { .node_id = (uint32_t) sqlite3_column_int64(st, 0) };
                snprintf(nodes[n].name, sizeof nodes[n].name, "%s",
                         (const char *) sqlite3_column_text(st, 1) ?: "");
                snprintf(nodes[n].address, sizeof nodes[n].address, "%s",
                         (const char *) sqlite3_column_text(st, 2) ?: "");
                n++;
        }
        *ret = TAKE_PTR(nodes);
        return (int) n;
}

static int read_cluster_name(struct domain *d, char *buf, size_t size) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(store_db(d->store), "SELECT name FROM cluster LIMIT 1", -1, &st,
                               NULL) != SQLITE_OK)
                return -EIO;
        if (sqlite3_step(st) != SQLITE_ROW)
                return -ENOENT;
        snprintf(buf, size, "%s", (const char *) sqlite3_column_text(st, 0) ?: "");
        return 0;
}

/* Renders the corosync.conf the domain asks for. -ENOENT: no cluster yet. */
int cluster_current_conf(struct domain *d, char **ret) {
        _cleanup_free_ struct conf_node *nodes = NULL;
        char name[64];
        int n, r;

        r = read_cluster_name(d, name, sizeof name);
        if (r < 0)
                return r;
        n = read_nodes(d, &nodes);
        if (n < 0)
                return n;
        return cluster_render_corosync_conf(name, nodes, (size_t) n, ret);
}

/* Writes path atomically (temp file, fsync, rename). */
static int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;

        if (asprintf(&tmp, "%s.haven-tmp", path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        for (size_t done = 0; done < size;) {
                ssize_t k = write(fd, (const char *) data + done, size - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = negative_errno();
                        (void) unlink(tmp);
                        return r;
                }
                done += (size_t) k;
        }
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
                int r = negative_errno();
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

static char *corosync_path(struct domain *d, const char *file) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", d->corosync_dir, file) < 0)
                return NULL;
        return p;
}

static void on_reload_done(struct haven_exec *x, const struct haven_exec_result *r, void *userdata) {
        if (haven_exec_result_ok(r))
                log_info("corosync reloaded its configuration");
        else
                log_warning("corosync-cfgtool -R failed (%s), ignoring: the nodelist applies at "
                            "corosync's next start", r->stderr_data && *r->stderr_data
                                    ? r->stderr_data : "no output");
}

/* Keeps this node's corosync.conf equal to the domain's nodelist. Called
 * after commits that touch nodes or cluster, and after a sync. Does nothing
 * before a cluster exists or when this node is not (or no longer) one of
 * its nodes. */
void cluster_refresh_corosync(struct domain *d) {
        _cleanup_free_ char *conf = NULL, *path = NULL, *old = NULL;
        char *argv[] = { (char *) "corosync-cfgtool", (char *) "-R", NULL };
        struct haven_exec_options options = { .timeout_usec = 10 * 1000 * 1000ULL };
        size_t old_size = 0;
        FILE *f;
        int r;

        if (!d->node_id || !cluster_has_node(d, d->node_id))
                return;
        r = cluster_current_conf(d, &conf);
        if (r < 0) {
                if (r != -ENOENT)
                        log_warning_errno(r, "Cannot render corosync.conf from the domain: %m, ignoring");
                return;
        }
        path = corosync_path(d, "corosync.conf");
        if (!path)
                return;
        f = fopen(path, "re");
        if (f) {
                old = malloc(64 * 1024);
                if (old)
                        old_size = fread(old, 1, 64 * 1024 - 1, f);
                fclose(f);
        }
        if (old && old_size == strlen(conf) && memcmp(old, conf, old_size) == 0)
                return;
        r = write_file_atomic(path, conf, strlen(conf), 0644);
        if (r < 0) {
                log_error_errno(r, "Failed to write \"%s\": %m", path);
                return;
        }
        log_info("The nodelist changed: wrote %s, reloading corosync", path);
        r = haven_exec_start(d->event, argv, &options, on_reload_done, d, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to run corosync-cfgtool: %m, ignoring");
}

bool cluster_has_node(struct domain *d, uint32_t node_id) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(store_db(d->store), "SELECT 1 FROM nodes WHERE node_id = ?", -1,
                               &st, NULL) != SQLITE_OK)
                return false;
        sqlite3_bind_int64(st, 1, node_id);
        return sqlite3_step(st) == SQLITE_ROW;
}

/* ==== Helpers for create and join ==== */

/* The first IPv4 address of an interface that is up and not loopback, or
 * -ENOENT. */
int cluster_default_address(char *buf, size_t size) {
        struct ifaddrs *list, *i;
        int r = -ENOENT;

        if (getifaddrs(&list) < 0)
                return negative_errno();
        for (i = list; i; i = i->ifa_next) {
                if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
                    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
                        continue;
                if (inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, buf,
                              (socklen_t) size)) {
                        r = 0;
                        break;
                }
        }
        freeifaddrs(list);
        return r;
}

int64_t cluster_memory_mib(void) {
        unsigned long long kib = 0;
        char line[256];
        FILE *f = fopen("/proc/meminfo", "re");

        if (!f)
                return 0;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
                        break;
        fclose(f);
        return (int64_t) (kib / 1024);
}

/* A yescrypt hash of password (libxcrypt). Returns a new string or NULL. */
char *cluster_hash_password(const char *password) {
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        struct crypt_data data = {};
        const char *hash;

        if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt))
                return NULL;
        hash = crypt_rn(password, salt, &data, sizeof data);
        if (!hash || hash[0] == '*')
                return NULL;
        return strdup(hash);
}

static bool memeq_const(const char *a, const char *b, size_t n) {
        unsigned char diff = 0;
        for (size_t i = 0; i < n; i++)
                diff |= (unsigned char) (a[i] ^ b[i]);
        return diff == 0;
}

/* Whether password matches the yescrypt (or any crypt) hash, compared in
 * constant time. */
bool cluster_check_password(const char *password, const char *hash) {
        struct crypt_data data = {};
        const char *h;

        if (!password || !hash || !*hash)
                return false;
        h = crypt_rn(password, hash, &data, sizeof data);
        return h && h[0] != '*' && strlen(h) == strlen(hash) &&
               memeq_const(h, hash, strlen(hash));
}

static int read_uuid(char buf[static 37]) {
        FILE *f = fopen("/proc/sys/kernel/random/uuid", "re");
        if (!f)
                return negative_errno();
        if (!fgets(buf, 37, f)) {
                fclose(f);
                return -EIO;
        }
        fclose(f);
        buf[36] = '\0';
        return 0;
}

int cluster_write_authkey(struct domain *d, const void *key, size_t size) {
        _cleanup_free_ char *path = corosync_path(d, "authkey");
        if (!path)
                return -ENOMEM;
        (void) mkdir(d->corosync_dir, 0755);
        return write_file_atomic(path, key, size, 0400);
}

int cluster_write_conf(struct domain *d, const char *conf) {
        _cleanup_free_ char *path = corosync_path(d, "corosync.conf");
        if (!path)
                return -ENOMEM;
        (void) mkdir(d->corosync_dir, 0755);
        return write_file_atomic(path, conf, strlen(conf), 0644);
}

/* Starts (or restarts) corosync through this node's service manager. */
int cluster_start_corosync(struct domain *d) {
        enum haven_service_manager m;
        int r;

        r = haven_service_manager_detect(&m);
        if (r < 0)
                return log_error_errno(r, "Cannot tell how services are started on this node: %m");
        r = haven_service_control(m, "corosync", HAVEN_SERVICE_RESTART);
        if (r < 0)
                return log_error_errno(r, "Failed to start corosync through %s: %m",
                                       haven_service_manager_to_string(m));
        return 0;
}

void cluster_identity_add(struct domain *d, struct json_object *reply) {
        char name[64];

        (void) cluster_exists_here(d, name, sizeof name);
        haven_json_add(reply, "cluster", json_object_new_string(name));
        haven_json_add(reply, "node_id", json_object_new_int64(d->node_id));
}

/* Whether this node is already part of a cluster: a cluster row, or a
 * corosync.conf (then it belongs to a cluster this domain does not know). */
bool cluster_exists_here(struct domain *d, char *name, size_t size) {
        _cleanup_free_ char *path = corosync_path(d, "corosync.conf");

        if (read_cluster_name(d, name, size) >= 0)
                return true;
        snprintf(name, size, "(unknown)");
        return path && access(path, F_OK) == 0;
}

/* ==== cluster-create ==== */

/* The answer to cluster-create: the transaction's result plus the cluster's
 * name and this node's id. */
static void on_created(struct domain *d, struct pending *p, struct json_object *result,
                       const struct store_error *error) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;

        if (!p->conn)
                return;
        if (error)
                o = api_error_new(p->tag, error->code, error->message, error->field);
        else {
                o = api_reply_new(p->tag);
                json_object_object_foreach(result, key, value)
                        haven_json_add(o, key, json_object_get(value));
                cluster_identity_add(d, o);
        }
        (void) haven_msg_conn_send(p->conn, o);
}

int cluster_create(struct domain *d, struct haven_msg_conn *conn, struct json_object *tag,
                   const char *name, const char *admin, const char *password,
                   const char *address_arg, struct store_error *ret_error) {
        _cleanup_free_ char *conf = NULL, *hash = NULL;
        struct conf_node self = { .node_id = 1 };
        uint8_t key[AUTHKEY_SIZE];
        char existing[64], uuid[37], address[INET6_ADDRSTRLEN];
        struct json_object *ops, *op, *values;
        struct pending *p;
        uint64_t now = domain_now_realtime_usec();
        int r;

#define FAIL(c, f, ...) ({                                                             \
                snprintf(ret_error->code, sizeof ret_error->code, "%s", c);            \
                snprintf(ret_error->field, sizeof ret_error->field, "%s", f);          \
                snprintf(ret_error->message, sizeof ret_error->message, __VA_ARGS__);  \
                -EINVAL; })

        if (cluster_exists_here(d, existing, sizeof existing) || d->cpg_connected)
                return FAIL("invalid", "", "this node is already part of the cluster \"%s\"", existing);
        if (address_arg)
                snprintf(address, sizeof address, "%s", address_arg);
        else if (cluster_default_address(address, sizeof address) < 0)
                return FAIL("invalid", "address", "this node has no interconnect address; give one");
        snprintf(self.name, sizeof self.name, "%s", d->node_name);
        snprintf(self.address, sizeof self.address, "%s", address);
        r = cluster_render_corosync_conf(name, &self, 1, &conf);
        if (r < 0)
                return FAIL("invalid", "name", "a cluster name is 1 to 63 letters, digits, '-', '_' or '.'");
        hash = cluster_hash_password(password);
        if (!hash)
                return FAIL("internal", "", "cannot hash the password");
        if (read_uuid(uuid) < 0)
                return FAIL("internal", "", "cannot generate the cluster's UUID");
        if (getrandom(key, sizeof key, 0) != sizeof key)
                return FAIL("internal", "", "cannot generate the cluster's key");

        /* The domain's first transaction: waits until corosync is up. */
        ops = json_object_new_array();
        op = json_object_new_object();
        values = json_object_new_object();
        haven_json_add(values, "name", json_object_new_string(name));
        haven_json_add(values, "uuid", json_object_new_string(uuid));
        haven_json_add(values, "config_version", json_object_new_int64(1));
        haven_json_add(values, "created_at", json_object_new_int64((int64_t) now));
        haven_json_add(op, "op", json_object_new_string("insert"));
        haven_json_add(op, "table", json_object_new_string("cluster"));
        haven_json_add(op, "values", values);
        json_object_array_add(ops, op);

        op = json_object_new_object();
        values = json_object_new_object();
        struct json_object *addresses = json_object_new_array();
        json_object_array_add(addresses, json_object_new_string(address));
        haven_json_add(values, "node_id", json_object_new_int64(1));
        haven_json_add(values, "name", json_object_new_string(d->node_name));
        haven_json_add(values, "addresses", addresses);
        haven_json_add(values, "state", json_object_new_string("active"));
        haven_json_add(values, "memory_mib", json_object_new_int64(cluster_memory_mib()));
        haven_json_add(op, "op", json_object_new_string("insert"));
        haven_json_add(op, "table", json_object_new_string("nodes"));
        haven_json_add(op, "values", values);
        json_object_array_add(ops, op);

        op = json_object_new_object();
        values = json_object_new_object();
        haven_json_add(values, "name", json_object_new_string(admin));
        haven_json_add(values, "password_hash", json_object_new_string(hash));
        haven_json_add(values, "created_at", json_object_new_int64((int64_t) now));
        haven_json_add(op, "op", json_object_new_string("insert"));
        haven_json_add(op, "table", json_object_new_string("administrators"));
        haven_json_add(op, "values", values);
        json_object_array_add(ops, op);

        r = cluster_write_authkey(d, key, sizeof key);
        explicit_bzero(key, sizeof key);
        if (r >= 0)
                r = cluster_write_conf(d, conf);
        if (r < 0) {
                json_object_put(ops);
                return FAIL("internal", "", "cannot write corosync's configuration: %s", strerror(-r));
        }
        r = cluster_start_corosync(d);
        if (r < 0) {
                json_object_put(ops);
                return FAIL("internal", "", "cannot start corosync: %s", strerror(-r));
        }

        p = api_pending_new(d, conn, tag, ops, admin, "created the cluster");
        json_object_put(ops);
        if (!p)
                return FAIL("internal", "", "out of memory");
        p->done = on_created;
        p->wait_deadline_usec = haven_now_usec(CLOCK_MONOTONIC) + CREATE_TIMEOUT_USEC;
        log_info("Creating cluster \"%s\" with this node (%s, %s) as its first member",
                 name, d->node_name, address);
        (void) cpg_schedule_reconnect(d);
        return 0;
#undef FAIL
}

/* ==== A node leaves ==== */

static int on_reset(sd_event_source *s, void *userdata) {
        struct domain *d = userdata;
        int r;

        d->reset_source = sd_event_source_disable_unref(d->reset_source);
        cpg_disconnect(d, NULL);
        r = domain_reset_store(d);
        if (r < 0)
                return sd_event_exit(d->event, r);
        log_notice("This node is no longer part of a cluster; it can create or join one");
        return 0;
}

/* After every commit that touched nodes or cluster (and after a sync): keep
 * corosync.conf in step, and notice when this node was removed: then stop
 * corosync, forget the cluster's key and configuration (so the node does not
 * rejoin by itself) and start over with an empty domain. */
void cluster_after_commit(struct domain *d) {
        _cleanup_free_ char *conf = NULL, *key = NULL;
        enum haven_service_manager m;
        bool now_node = d->node_id && cluster_has_node(d, d->node_id);

        if (now_node) {
                d->is_node = true;
                cluster_refresh_corosync(d);
                return;
        }
        if (!d->is_node || d->reset_source)
                return;
        d->is_node = false;
        log_notice("This node was removed from the cluster: stopping corosync");
        conf = corosync_path(d, "corosync.conf");
        key = corosync_path(d, "authkey");
        if (conf)
                (void) unlink(conf);
        if (key)
                (void) unlink(key);
        if (haven_service_manager_detect(&m) >= 0)
                (void) haven_service_control(m, "corosync", HAVEN_SERVICE_STOP);
        /* Not from inside the delivery that removed us. */
        (void) sd_event_add_defer(d->event, &d->reset_source, on_reset, d);
}

/* ==== node-remove ==== */

int cluster_remove_node(struct domain *d, struct haven_msg_conn *conn, struct json_object *tag,
                        const char *node, const char *actor, struct store_error *ret_error) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        struct json_object *ops, *op;
        struct pending *p;
        int64_t id, version, count;
        char audit[128];

        if (sqlite3_prepare_v2(store_db(d->store),
                               "SELECT id, version, (SELECT COUNT(*) FROM nodes) FROM nodes "
                               "WHERE name = ?1 OR CAST(node_id AS TEXT) = ?1", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
                snprintf(ret_error->code, sizeof ret_error->code, "not-found");
                snprintf(ret_error->field, sizeof ret_error->field, "node");
                snprintf(ret_error->message, sizeof ret_error->message,
                         "the cluster has no node \"%s\"", node);
                return -ENOENT;
        }
        id = sqlite3_column_int64(st, 0);
        version = sqlite3_column_int64(st, 1);
        count = sqlite3_column_int64(st, 2);
        if (count <= 1) {
                snprintf(ret_error->code, sizeof ret_error->code, "invalid");
                snprintf(ret_error->field, sizeof ret_error->field, "node");
                snprintf(ret_error->message, sizeof ret_error->message,
                         "\"%s\" is the cluster's last node", node);
                return -EINVAL;
        }
        ops = json_object_new_array();
        op = json_object_new_object();
        haven_json_add(op, "op", json_object_new_string("delete"));
        haven_json_add(op, "table", json_object_new_string("nodes"));
        haven_json_add(op, "id", json_object_new_int64(id));
        haven_json_add(op, "expect_version", json_object_new_int64(version));
        json_object_array_add(ops, op);
        snprintf(audit, sizeof audit, "removed node \"%s\"", node);
        p = api_pending_new(d, conn, tag, ops, actor, audit);
        json_object_put(ops);
        return p ? 0 : -ENOMEM;
}
