/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replication for haven-domaind: applies delivered transactions in agreed
 * order (a burst shares one commit), runs the sync round after every
 * membership change and every periodic check (states → agreed state →
 * snapshot if needed → sync-done), keeps the volatile status map, and guards
 * against a deleted database file. Every decision here is a function of the
 * delivered message stream, so all members make the same one. Must not: read
 * a clock or local-only state while deciding what to apply.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domaind-schema.h"
#include "domaind.h"
#include "haven/db.h"
#include "haven/json.h"
#include "haven/log.h"
#include "haven/loop.h"

#define SNAPSHOT_MAX (512u * 1024u * 1024u)


uint64_t domain_now_realtime_usec(void) {
        return haven_now_usec(CLOCK_REALTIME);
}

/* ==== Members ==== */

static bool member_eq(struct member a, struct member b) {
        return a.node_id == b.node_id && a.pid == b.pid;
}

static int member_cmp(const void *a, const void *b) {
        const struct member *x = a, *y = b;
        if (x->node_id != y->node_id)
                return x->node_id < y->node_id ? -1 : 1;
        return x->pid < y->pid ? -1 : x->pid > y->pid;
}

bool domain_is_member(struct domain *d, uint32_t node_id) {
        for (size_t i = 0; i < d->n_members; i++)
                if (d->members[i].node_id == node_id)
                        return true;
        return false;
}

static bool is_me(struct domain *d, struct member m) {
        return m.node_id == d->node_id && m.pid == d->pid;
}

/* The membership as a JSON array of [node_id, pid]: tags every sync message,
 * so a message from another round never counts. */
static struct json_object *members_json(struct domain *d) {
        struct json_object *arr = json_object_new_array();

        for (size_t i = 0; arr && i < d->n_members; i++) {
                struct json_object *m = json_object_new_array();
                json_object_array_add(m, json_object_new_int64(d->members[i].node_id));
                json_object_array_add(m, json_object_new_int64(d->members[i].pid));
                json_object_array_add(arr, m);
        }
        return arr;
}

static bool members_match(struct domain *d, struct json_object *tag) {
        if (!tag || !json_object_is_type(tag, json_type_array) ||
            json_object_array_length(tag) != d->n_members)
                return false;
        for (size_t i = 0; i < d->n_members; i++) {
                struct json_object *m = json_object_array_get_idx(tag, i);
                if (!json_object_is_type(m, json_type_array) || json_object_array_length(m) != 2 ||
                    json_object_get_int64(json_object_array_get_idx(m, 0)) != d->members[i].node_id ||
                    json_object_get_int64(json_object_array_get_idx(m, 1)) != d->members[i].pid)
                        return false;
        }
        return true;
}

void sync_emit_membership(struct domain *d) {
        struct json_object *ev = json_object_new_object(), *arr = json_object_new_array();

        for (size_t i = 0; arr && i < d->n_members; i++)
                json_object_array_add(arr, json_object_new_int64(d->members[i].node_id));
        haven_json_add(ev, "event", json_object_new_string("membership"));
        haven_json_add(ev, "members", arr);
        haven_json_add(ev, "quorate", json_object_new_boolean(d->quorate));
        haven_json_add(ev, "synced", json_object_new_boolean(d->synced));
        api_emit(d, SUBSCRIBE_MEMBERSHIP, ev);
        json_object_put(ev);
}

/* ==== Quorum in the message stream ==== */

static int64_t query_int(struct domain *d, const char *sql) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(store_db(d->store), sql, -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
                return -1;
        return sqlite3_column_int64(st, 0);
}

/* Whether the CPG membership at this point of the stream holds a majority
 * of the domain's nodes (any member, for a two-node cluster; everyone, before
 * a cluster exists). Deterministic: the membership and the nodes table are
 * the same on every member at the same point of the stream. votequorum's
 * word is checked at submission; this guards against a transaction that
 * reaches a partition which has lost quorum in the meantime. */
static bool stream_quorate_compute(struct domain *d) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int64_t total, present = 0;

        total = query_int(d, "SELECT COUNT(*) FROM nodes");
        if (total <= 0)
                return true;
        if (sqlite3_prepare_v2(store_db(d->store), "SELECT node_id FROM nodes", -1, &st,
                               NULL) != SQLITE_OK)
                return false;
        while (sqlite3_step(st) == SQLITE_ROW)
                if (domain_is_member(d, (uint32_t) sqlite3_column_int64(st, 0)))
                        present++;
        /* Two nodes: corosync runs with two_node (cluster_render_corosync_conf
         * sets it whenever the nodelist has exactly two), so either alone
         * keeps quorum and the power strip settles a split. */
        if (total == 2)
                return present >= 1;
        return 2 * present > total;
}

/* The answer only changes with the membership or the nodes table, so it is
 * cached until one of them changes (stream_quorate_forget). */
static void stream_quorate_forget(struct domain *d) {
        d->quorum_cache_valid = false;
}

static bool stream_quorate(struct domain *d, const char **ret_reason) {
        if (!d->quorum_cache_valid) {
                d->quorum_cache_quorate = stream_quorate_compute(d);
                d->quorum_cache_valid = true;
        }
        if (!d->quorum_cache_quorate && ret_reason)
                *ret_reason = "too few configuration domain members are reachable";
        return d->quorum_cache_quorate;
}

static bool ops_touch_nodes(struct json_object *ops) {
        for (size_t i = 0; ops && i < json_object_array_length(ops); i++) {
                struct json_object *t, *op = json_object_array_get_idx(ops, i);
                /* Activation applies staged ops of any table. */
                if (!json_object_object_get_ex(op, "table", &t) ||
                    streq(json_object_get_string(t), "nodes"))
                        return true;
        }
        return false;
}

/* Whether a local client may submit now. */
bool domain_is_writable(struct domain *d, const char **ret_reason) {
        const char *reason = NULL;

        if (!d->cpg_connected)
                reason = "this node is not connected to the cluster (corosync is not running)";
        else if (!d->quorate)
                reason = "the cluster has no quorum: the configuration is read-only";
        else if (d->ever_synced && !stream_quorate(d, &reason) && !reason)
                reason = "too few configuration domain members are reachable";
        if (reason && ret_reason)
                *ret_reason = reason;
        return !reason;
}

/* ==== Batches ==== */

/* A dispatch round may deliver transactions: they share one SQLite
 * transaction, opened by the first of them (batch_open), so rounds that only
 * carry sync or status messages cost no locking. */
void sync_batch_begin(struct domain *d) {
        d->batch.wanted = true;
}

static void batch_open(struct domain *d) {
        if (d->batch.open || !d->batch.wanted)
                return;
        if (store_batch_begin(d->store) < 0)
                return;
        d->batch.open = true;
}

static void deferred_add(struct domain *d, struct deferred item) {
        if (d->batch.n == d->batch.allocated) {
                size_t n = d->batch.allocated ? d->batch.allocated * 2 : 64;
                struct deferred *p = realloc(d->batch.items, n * sizeof *p);
                if (!p) {
                        json_object_put(item.result);
                        json_object_put(item.event);
                        return;
                }
                d->batch.items = p;
                d->batch.allocated = n;
        }
        d->batch.items[d->batch.n++] = item;
}

static bool event_touches(struct json_object *event, const char *a, const char *b) {
        struct json_object *tables;

        if (!json_object_object_get_ex(event, "tables", &tables))
                return false;
        for (size_t i = 0; i < json_object_array_length(tables); i++) {
                const char *t = json_object_get_string(json_object_array_get_idx(tables, i));
                if (t && (streq(t, a) || streq(t, b)))
                        return true;
        }
        return false;
}

/* Commits the batch, then answers our clients and tells subscribers. */
void sync_batch_end(struct domain *d) {
        bool nodes_changed = false, jobs_changed = false;
        uint64_t first_version = 0;
        int r = 0;

        d->batch.wanted = false;
        if (d->batch.open) {
                r = store_batch_end(d->store);
                d->batch.open = false;
                if (r < 0)
                        log_error_errno(r, "Failed to commit %zu transaction(s): %m; "
                                        "the next check brings this node up to date", d->batch.n);
        }
        for (size_t i = 0; i < d->batch.n; i++) {
                struct deferred *it = &d->batch.items[i];

                if (it->pending) {
                        if (r < 0 && !it->failed) {
                                struct store_error e = { .op_index = -1 };
                                snprintf(e.code, sizeof e.code, "internal");
                                snprintf(e.message, sizeof e.message,
                                         "the transaction could not be stored on this node: %s",
                                         strerror(-r));
                                api_pending_done(d, it->pending, NULL, &e);
                        } else
                                api_pending_done(d, it->pending, it->failed ? NULL : it->result,
                                                 it->failed ? &it->error : NULL);
                }
                if (r >= 0 && it->event) {
                        api_emit(d, SUBSCRIBE_COMMIT, it->event);
                        if (!nodes_changed && event_touches(it->event, "nodes", "cluster"))
                                nodes_changed = true;
                        if (event_touches(it->event, "jobs", "job_log")) {
                                struct json_object *v;
                                if (!jobs_changed && json_object_object_get_ex(it->event, "version", &v))
                                        first_version = (uint64_t) json_object_get_int64(v);
                                jobs_changed = true;
                        }
                }
                json_object_put(it->result);
                json_object_put(it->event);
        }
        d->batch.n = 0;
        if (nodes_changed)
                cluster_after_commit(d);
        if (jobs_changed)
                jobs_after_commit(d, first_version, store_version(d->store));
        join_check_progress(d);
}

/* ==== Transactions ==== */

static struct pending *find_pending(struct domain *d, uint64_t request_id) {
        for (struct pending *p = d->pending; p; p = p->next)
                if (p->request_id == request_id)
                        return p;
        return NULL;
}

static struct json_object *commit_event(struct store *store, struct json_object *ops,
                                        const char *actor, uint64_t version) {
        struct json_object *ev = json_object_new_object(), *tables = json_object_new_array();

        bool activation = false;

        for (size_t i = 0; tables && i < json_object_array_length(ops); i++) {
                struct json_object *t, *op = json_object_array_get_idx(ops, i), *kind;
                if (json_object_object_get_ex(op, "table", &t)) {
                        const char *cascaded[32];
                        int n = 0;

                        json_object_array_add(tables, json_object_get(t));
                        /* A delete takes the rows that belong to the row
                         * with it: subscribers must read those tables too. */
                        if (json_object_object_get_ex(op, "op", &kind) &&
                            streq(json_object_get_string(kind) ?: "", "delete"))
                                n = store_cascade_tables(store, json_object_get_string(t),
                                                         cascaded, ELEMENTSOF(cascaded));
                        for (int k = 0; k < n; k++)
                                json_object_array_add(tables, json_object_new_string(cascaded[k]));
                } else if (json_object_object_get_ex(op, "op", &kind) &&
                         json_object_is_type(kind, json_type_string)) {
                        /* stage / discard / activate: the tables they always
                         * change (an activation also changes whatever its
                         * staged ops name; "activation" says so). */
                        const char *k = json_object_get_string(kind);
                        json_object_array_add(tables, json_object_new_string("staged_changes"));
                        if (streq(k, "activate")) {
                                json_object_array_add(tables, json_object_new_string("jobs"));
                                json_object_array_add(tables, json_object_new_string("cluster"));
                                activation = true;
                        }
                }
        }
        if (activation)
                haven_json_add(ev, "activation", json_object_new_boolean(true));
        haven_json_add(ev, "event", json_object_new_string("commit"));
        haven_json_add(ev, "version", json_object_new_int64((int64_t) version));
        haven_json_add(ev, "tables", tables);
        haven_json_add(ev, "actor", json_object_new_string(actor));
        return ev;
}

/* After a snapshot replaced the content: every table may have changed, so
 * subscribers hear of all of them ("snapshot": true). */
static void emit_snapshot_commit(struct domain *d, struct member from) {
        _cleanup_(json_object_putp) struct json_object *ev = json_object_new_object();
        struct json_object *tables = json_object_new_array();
        char actor[32];

        snprintf(actor, sizeof actor, "snapshot from node %u", from.node_id);
        for (size_t i = 0; tables && schema_tables[i]; i++)
                json_object_array_add(tables, json_object_new_string(schema_tables[i]));
        if (!ev || !tables) {
                json_object_put(tables);
                return;
        }
        haven_json_add(ev, "event", json_object_new_string("commit"));
        haven_json_add(ev, "version", json_object_new_int64((int64_t) store_version(d->store)));
        haven_json_add(ev, "tables", tables);
        haven_json_add(ev, "actor", json_object_new_string(actor));
        haven_json_add(ev, "snapshot", json_object_new_boolean(true));
        api_emit(d, SUBSCRIBE_COMMIT, ev);
}

static void deliver_tx(struct domain *d, struct member from, struct json_object *h) {
        struct store_error error = { .op_index = -1 };
        struct json_object *ops = NULL, *result = NULL;
        const char *actor = "unknown", *audit = NULL, *node = "", *reason = NULL;
        struct pending *p = NULL;
        int64_t request_id = 0, time_usec = 0;
        struct store_tx tx;
        int r;

        (void) haven_json_get_int64(h, "request", &request_id);
        if (is_me(d, from))
                p = find_pending(d, (uint64_t) request_id);

        if (!d->synced) {
                /* Refused alike by every member; ours goes out again after
                 * the sync. */
                if (p)
                        p->sent = false;
                return;
        }
        if (!stream_quorate(d, &reason)) {
                if (p) {
                        snprintf(error.code, sizeof error.code, "no-quorum");
                        snprintf(error.message, sizeof error.message, "%s", reason);
                        deferred_add(d, (struct deferred) { .pending = p, .error = error, .failed = true });
                }
                return;
        }

        (void) haven_json_get_array(h, "ops", &ops);
        (void) haven_json_get_string(h, "actor", &actor);
        (void) haven_json_get_string(h, "audit", &audit);
        (void) haven_json_get_string(h, "node", &node);
        (void) haven_json_get_int64(h, "time", &time_usec);
        tx = (struct store_tx) {
                .ops = ops, .actor = actor, .audit = audit, .node = node,
                .time_usec = (uint64_t) time_usec,
        };
        if (!ops) {
                snprintf(error.code, sizeof error.code, "invalid");
                snprintf(error.message, sizeof error.message, "a transaction needs \"ops\"");
                r = -EINVAL;
        } else {
                batch_open(d);
                r = store_apply(d->store, &tx, &result, &error);
        }
        if (r >= 0 && ops_touch_nodes(ops))
                stream_quorate_forget(d);
        if (r < 0) {
                if (p)
                        deferred_add(d, (struct deferred) { .pending = p, .error = error, .failed = true });
                return;
        }
        d->last_tx_usec = haven_now_usec(CLOCK_MONOTONIC);
        deferred_add(d, (struct deferred) {
                .pending = p, .result = result,
                .event = commit_event(d->store, ops, actor, store_version(d->store)),
        });
}

/* ==== Sync rounds ==== */

/* This member's checksum for a comparison: with verify, recomputed from the
 * rows, so content changed behind our back shows up as a difference. */
static uint64_t state_checksum(struct domain *d, bool verify) {
        uint64_t checksum = store_checksum(d->store), full;

        if (verify && store_checksum_full(d->store, &full) >= 0 && full != checksum) {
                log_warning("The database's content differs from what was replicated "
                            "(checksum %016" PRIx64 ", expected %016" PRIx64 "); "
                            "asking the cluster for its content", full, checksum);
                checksum = full;
        }
        return checksum;
}

static void send_state(struct domain *d, bool verify) {
        _cleanup_(json_object_putp) struct json_object *h = json_object_new_object();
        uint64_t checksum = state_checksum(d, verify);
        char hex[17];

        snprintf(hex, sizeof hex, "%016" PRIx64, checksum);
        haven_json_add(h, "members", members_json(d));
        haven_json_add(h, "version", json_object_new_int64((int64_t) store_version(d->store)));
        haven_json_add(h, "checksum", json_object_new_string(hex));
        if (domain_multicast_json(d, DOMAIN_MSG_STATE, h) < 0)
                log_warning("Failed to send this node's state, ignoring");
}

static void start_round(struct domain *d, bool verify) {
        d->synced = false;
        d->need_snapshot = false;
        free(d->snapshot_buf);
        d->snapshot_buf = NULL;
        d->snapshot_size = d->snapshot_parts_seen = 0;
        d->n_states = d->n_members;
        for (size_t i = 0; i < d->n_members; i++)
                d->states[i] = (struct member_state) { .member = d->members[i] };
        send_state(d, verify);
}

/* The agreed state: the highest version; among those, the checksum most
 * members hold; then the lowest member. Returns its index in d->states. */
static size_t agreed_state(const struct member_state *states, size_t n) {
        uint64_t best_version = 0;
        size_t best = 0, best_votes = 0;

        for (size_t i = 0; i < n; i++)
                if (states[i].version > best_version)
                        best_version = states[i].version;
        for (size_t i = 0; i < n; i++) {
                size_t votes = 0;
                if (states[i].version != best_version)
                        continue;
                for (size_t j = 0; j < n; j++)
                        if (states[j].version == best_version &&
                            states[j].checksum == states[i].checksum)
                                votes++;
                /* states[] is sorted by member, so the first wins ties. */
                if (votes > best_votes) {
                        best_votes = votes;
                        best = i;
                }
        }
        return best;
}

static void send_snapshot(struct domain *d) {
        _cleanup_(json_object_putp) struct json_object *snap = NULL;
        const char *text;
        size_t size, parts;
        int r;

        r = store_snapshot(d->store, &snap);
        if (r < 0) {
                log_error_errno(r, "Failed to take a snapshot for the sync: %m");
                return;
        }
        text = json_object_to_json_string_ext(snap, JSON_C_TO_STRING_PLAIN);
        size = strlen(text);
        parts = (size + DOMAIN_SNAPSHOT_CHUNK - 1) / DOMAIN_SNAPSHOT_CHUNK;
        log_info("Sending the agreed content (version %" PRIu64 ", %zu bytes, %zu part(s))",
                 store_version(d->store), size, parts);
        for (size_t i = 0; i < parts; i++) {
                _cleanup_(json_object_putp) struct json_object *h = json_object_new_object();
                _cleanup_free_ uint8_t *buf = NULL;
                size_t chunk = size - i * DOMAIN_SNAPSHOT_CHUNK, msize;

                if (chunk > DOMAIN_SNAPSHOT_CHUNK)
                        chunk = DOMAIN_SNAPSHOT_CHUNK;
                haven_json_add(h, "members", members_json(d));
                haven_json_add(h, "part", json_object_new_int64((int64_t) i));
                haven_json_add(h, "parts", json_object_new_int64((int64_t) parts));
                haven_json_add(h, "size", json_object_new_int64((int64_t) size));
                if (domain_encode(DOMAIN_MSG_SNAPSHOT, h, text + i * DOMAIN_SNAPSHOT_CHUNK, chunk,
                                  &buf, &msize) < 0 ||
                    domain_multicast(d, buf, msize) < 0) {
                        log_error("Failed to send the snapshot");
                        return;
                }
        }
}

static void maybe_finish_states(struct domain *d) {
        struct member_state *leader, *mine = NULL;
        bool anyone_differs = false;
        size_t l;

        for (size_t i = 0; i < d->n_states; i++) {
                if (!d->states[i].received)
                        return;
                if (is_me(d, d->states[i].member))
                        mine = &d->states[i];
        }
        l = agreed_state(d->states, d->n_states);
        leader = &d->states[l];
        d->sync_leader = leader->member;
        for (size_t i = 0; i < d->n_states; i++)
                if (d->states[i].version != leader->version ||
                    d->states[i].checksum != leader->checksum)
                        anyone_differs = true;
        d->need_snapshot = mine && (mine->version != leader->version ||
                                    mine->checksum != leader->checksum);
        if (d->need_snapshot)
                log_info("This node is at version %" PRIu64 ", the agreed state is version %"
                         PRIu64 " of node %u: taking its content",
                         mine->version, leader->version, leader->member.node_id);

        if (!is_me(d, leader->member))
                return;
        if (anyone_differs)
                send_snapshot(d);
        _cleanup_(json_object_putp) struct json_object *h = json_object_new_object();
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, leader->checksum);
        haven_json_add(h, "members", members_json(d));
        haven_json_add(h, "version", json_object_new_int64((int64_t) leader->version));
        haven_json_add(h, "checksum", json_object_new_string(hex));
        (void) domain_multicast_json(d, DOMAIN_MSG_SYNC_DONE, h);
}

static int parse_checksum(struct json_object *h, uint64_t *ret) {
        const char *hex;
        char *end;

        if (haven_json_get_string(h, "checksum", &hex) < 0 || strlen(hex) != 16)
                return -EINVAL;
        *ret = strtoull(hex, &end, 16);
        return *end ? -EINVAL : 0;
}

static void deliver_state(struct domain *d, struct member from, struct json_object *h) {
        struct json_object *tag = NULL;
        int64_t version;
        uint64_t checksum;

        (void) haven_json_get_array(h, "members", &tag);
        if (d->synced || !members_match(d, tag) ||
            haven_json_get_int64(h, "version", &version) < 0 || version < 0 ||
            parse_checksum(h, &checksum) < 0)
                return;
        for (size_t i = 0; i < d->n_states; i++)
                if (member_eq(d->states[i].member, from) && !d->states[i].received) {
                        d->states[i].received = true;
                        d->states[i].version = (uint64_t) version;
                        d->states[i].checksum = checksum;
                        maybe_finish_states(d);
                        return;
                }
}

static void deliver_snapshot(struct domain *d, struct member from, struct json_object *h,
                             const uint8_t *payload, size_t payload_size) {
        _cleanup_(json_object_putp) struct json_object *snap = NULL;
        struct json_object *tag = NULL;
        int64_t part, parts, size;
        int r;

        (void) haven_json_get_array(h, "members", &tag);
        if (d->synced || !d->need_snapshot || !member_eq(from, d->sync_leader) ||
            !members_match(d, tag) ||
            haven_json_get_int64(h, "part", &part) < 0 ||
            haven_json_get_int64(h, "parts", &parts) < 0 ||
            haven_json_get_int64(h, "size", &size) < 0 ||
            size <= 0 || (uint64_t) size > SNAPSHOT_MAX || part < 0 || part >= parts ||
            (size_t) part != d->snapshot_parts_seen ||
            (uint64_t) part * DOMAIN_SNAPSHOT_CHUNK + payload_size > (uint64_t) size)
                return;
        if (part == 0) {
                free(d->snapshot_buf);
                d->snapshot_buf = malloc((size_t) size);
                d->snapshot_size = (size_t) size;
                if (!d->snapshot_buf)
                        return;
        }
        if (!d->snapshot_buf)
                return;
        memcpy(d->snapshot_buf + part * DOMAIN_SNAPSHOT_CHUNK, payload, payload_size);
        d->snapshot_parts_seen++;
        if (d->snapshot_parts_seen != (size_t) parts)
                return;

        r = haven_json_parse(d->snapshot_buf, d->snapshot_size, SNAPSHOT_MAX, &snap);
        free(d->snapshot_buf);
        d->snapshot_buf = NULL;
        if (r < 0) {
                log_error_errno(r, "The snapshot from node %u is not valid JSON: %m", from.node_id);
                return;
        }
        /* A restore is its own SQLite transaction: close the batch around it. */
        sync_batch_end(d);
        r = store_restore(d->store, snap);
        stream_quorate_forget(d);
        sync_batch_begin(d);
        if (r < 0) {
                log_error_errno(r, "Failed to take the snapshot from node %u: %m", from.node_id);
                return;
        }
        log_info("Took the content of node %u: version %" PRIu64, from.node_id,
                 store_version(d->store));
        emit_snapshot_commit(d, from);
}

void status_publish_own(struct domain *d) {
        _cleanup_(json_object_putp) struct json_object *h = json_object_new_object();
        struct json_object *entries = json_object_new_object();
        size_t n = 0;

        for (struct status_entry *e = d->status; e; e = e->next)
                if (e->node_id == d->node_id) {
                        json_object_object_add(entries, e->key, json_object_get(e->value));
                        n++;
                }
        haven_json_add(h, "entries", entries);
        haven_json_add(h, "replace", json_object_new_boolean(true));
        (void) domain_multicast_json(d, DOMAIN_MSG_STATUS, h);
}

static void request_sync_round(struct domain *d);

static void deliver_sync_done(struct domain *d, struct member from, struct json_object *h) {
        struct json_object *tag = NULL;
        int64_t version;
        uint64_t checksum;

        (void) haven_json_get_array(h, "members", &tag);
        if (d->synced || !member_eq(from, d->sync_leader) || !members_match(d, tag) ||
            haven_json_get_int64(h, "version", &version) < 0 || parse_checksum(h, &checksum) < 0)
                return;
        if (store_version(d->store) != (uint64_t) version || store_checksum(d->store) != checksum) {
                /* We could not take the agreed content: ask for another
                 * round (it restarts the sync for everyone). */
                log_error("After the sync this node is at version %" PRIu64
                          ", not the agreed version %" PRId64 "; asking for another round",
                          store_version(d->store), version);
                request_sync_round(d);
                return;
        }
        d->synced = true;
        if (!d->ever_synced)
                log_info("In sync with the cluster at version %" PRIu64, store_version(d->store));
        d->ever_synced = true;
        d->rounds++;
        cluster_after_commit(d);
        join_check_progress(d);
        status_publish_own(d);
        (void) api_submit_flush(d);
        /* Subscribers learn that the content is the cluster's now: until
         * this event a node that rejoined may still show what it had
         * before (a VM controller must not act on that). */
        sync_emit_membership(d);
}

/* Asks every member to start a sync round (a member that knows it differs,
 * or a sync that did not take). */
static void request_sync_round(struct domain *d) {
        _cleanup_(json_object_putp) struct json_object *h = json_object_new_object();

        haven_json_add(h, "members", members_json(d));
        haven_json_add(h, "sync", json_object_new_boolean(true));
        (void) domain_multicast_json(d, DOMAIN_MSG_CHECK, h);
}

/* A periodic comparison. Every member records its state at the delivery of
 * the check, the same point of the stream everywhere, and reports it;
 * transactions go on meanwhile. Only if the states differ does a sync round
 * (which pauses writes) follow. */
static void deliver_check(struct domain *d, struct member from, struct json_object *h) {
        _cleanup_(json_object_putp) struct json_object *k = json_object_new_object();
        struct json_object *tag = NULL;
        uint64_t checksum;
        bool sync = false;
        int64_t id = 0;
        char hex[17];

        (void) haven_json_get_array(h, "members", &tag);
        if (!members_match(d, tag))
                return;
        (void) haven_json_get_bool(h, "sync", &sync);
        if (sync) {
                /* Everyone starts the round at this point of the stream; a
                 * round already running restarts. */
                start_round(d, true);
                return;
        }
        if (!d->synced || haven_json_get_int64(h, "id", &id) < 0)
                return;

        d->check_id = id;
        d->n_check_states = d->n_members;
        for (size_t i = 0; i < d->n_members; i++)
                d->check_states[i] = (struct member_state) { .member = d->members[i] };
        checksum = state_checksum(d, true);
        snprintf(hex, sizeof hex, "%016" PRIx64, checksum);
        haven_json_add(k, "members", members_json(d));
        haven_json_add(k, "id", json_object_new_int64(id));
        haven_json_add(k, "version", json_object_new_int64((int64_t) store_version(d->store)));
        haven_json_add(k, "checksum", json_object_new_string(hex));
        (void) domain_multicast_json(d, DOMAIN_MSG_CHECK_STATE, k);
}

static void deliver_check_state(struct domain *d, struct member from, struct json_object *h) {
        struct json_object *tag = NULL;
        int64_t id, version;
        uint64_t checksum;
        size_t agreed;

        (void) haven_json_get_array(h, "members", &tag);
        if (!d->synced || !members_match(d, tag) || haven_json_get_int64(h, "id", &id) < 0 ||
            id != d->check_id || haven_json_get_int64(h, "version", &version) < 0 || version < 0 ||
            parse_checksum(h, &checksum) < 0)
                return;
        for (size_t i = 0; i < d->n_check_states; i++) {
                struct member_state *st = &d->check_states[i];
                if (!member_eq(st->member, from) || st->received)
                        continue;
                st->received = true;
                st->version = (uint64_t) version;
                st->checksum = checksum;
        }
        for (size_t i = 0; i < d->n_check_states; i++)
                if (!d->check_states[i].received)
                        return;
        d->check_id = -1;
        agreed = agreed_state(d->check_states, d->n_check_states);
        for (size_t i = 0; i < d->n_check_states; i++)
                if (d->check_states[i].version != d->check_states[agreed].version ||
                    d->check_states[i].checksum != d->check_states[agreed].checksum) {
                        /* Every member sees the same states here, so all
                         * start the round at this same point. */
                        log_warning("Node %u differs from the agreed state at the check; syncing",
                                    d->check_states[i].member.node_id);
                        start_round(d, true);
                        return;
                }
}

/* ==== Status map ==== */

static void status_event(struct domain *d, uint32_t node_id, const char *key,
                         struct json_object *value) {
        _cleanup_(json_object_putp) struct json_object *ev = json_object_new_object();

        haven_json_add(ev, "event", json_object_new_string("status"));
        haven_json_add(ev, "node", json_object_new_int64(node_id));
        haven_json_add(ev, "key", json_object_new_string(key));
        haven_json_add(ev, "value", json_object_get(value));
        api_emit(d, SUBSCRIBE_STATUS, ev);
}

/* Sets (value != NULL, borrowed) or deletes a member's entry and tells the
 * subscribers. key may point into the entry itself (status_drop_node). */
static void status_set(struct domain *d, uint32_t node_id, const char *key,
                       struct json_object *value) {
        struct status_entry **pp, *e;

        for (pp = &d->status; (e = *pp); pp = &e->next)
                if (e->node_id == node_id && streq(e->key, key))
                        break;
        if (!value) {
                if (!e)
                        return;
                /* The event first: key may be e->key. */
                status_event(d, node_id, key, NULL);
                *pp = e->next;
                free(e->key);
                json_object_put(e->value);
                free(e);
                return;
        }
        if (e) {
                if (json_object_equal(e->value, value))
                        return;
                json_object_put(e->value);
                e->value = json_object_get(value);
        } else {
                e = calloc(1, sizeof *e);
                if (!e || !(e->key = strdup(key))) {
                        free(e);
                        return;
                }
                e->node_id = node_id;
                e->value = json_object_get(value);
                e->next = d->status;
                d->status = e;
        }
        status_event(d, node_id, key, value);
}

static void status_drop_node(struct domain *d, uint32_t node_id) {
        for (;;) {
                struct status_entry *e;
                for (e = d->status; e; e = e->next)
                        if (e->node_id == node_id)
                                break;
                if (!e)
                        return;
                status_set(d, node_id, e->key, NULL);
        }
}

static void deliver_status(struct domain *d, struct member from, struct json_object *h) {
        struct json_object *entries = NULL;
        bool replace = false;

        if (haven_json_get_object(h, "entries", &entries) < 0)
                return;
        (void) haven_json_get_bool(h, "replace", &replace);
        if (replace && from.node_id != d->node_id) {
                /* The sender's full set: drop what it no longer has. */
                for (struct status_entry *e = d->status, *next; e; e = next) {
                        next = e->next;
                        if (e->node_id == from.node_id && !json_object_object_get_ex(entries, e->key, NULL))
                                status_set(d, from.node_id, e->key, NULL);
                }
        }
        if (from.node_id == d->node_id)
                return; /* applied locally when published */
        json_object_object_foreach(entries, key, value)
                if (strlen(key) <= DOMAIN_STATUS_KEY_MAX)
                        status_set(d, from.node_id, key, value);
}

/* Called by the API: sets one of our own entries and tells the others. */
int status_publish(struct domain *d, const char *key, struct json_object *value) {
        _cleanup_(json_object_putp) struct json_object *h = json_object_new_object();
        struct json_object *entries = json_object_new_object();

        status_set(d, d->node_id, key, value);
        if (!d->cpg_connected)
                return 0;
        json_object_object_add(entries, key, json_object_get(value));
        haven_json_add(h, "entries", entries);
        return domain_multicast_json(d, DOMAIN_MSG_STATUS, h);
}

/* ==== Entry points from the corosync connection ==== */

void sync_deliver(struct domain *d, uint32_t node_id, uint32_t pid,
                  const uint8_t *msg, size_t size) {
        _cleanup_(json_object_putp) struct json_object *h = NULL;
        struct member from = { .node_id = node_id, .pid = pid };
        uint32_t be;
        size_t hlen;

        if (size < 5)
                return;
        memcpy(&be, msg + 1, 4);
        hlen = ntohl(be);
        if (hlen > size - 5 || haven_json_parse((const char *) msg + 5, hlen, size, &h) < 0 ||
            !json_object_is_type(h, json_type_object)) {
                log_warning("Malformed message from node %u, ignoring", node_id);
                return;
        }
        switch (msg[0]) {
        case DOMAIN_MSG_TX: deliver_tx(d, from, h); break;
        case DOMAIN_MSG_STATE: deliver_state(d, from, h); break;
        case DOMAIN_MSG_SNAPSHOT:
                deliver_snapshot(d, from, h, msg + 5 + hlen, size - 5 - hlen);
                break;
        case DOMAIN_MSG_SYNC_DONE: deliver_sync_done(d, from, h); break;
        case DOMAIN_MSG_CHECK: deliver_check(d, from, h); break;
        case DOMAIN_MSG_CHECK_STATE: deliver_check_state(d, from, h); break;
        case DOMAIN_MSG_STATUS: deliver_status(d, from, h); break;
        default:
                log_warning("Unknown message type %u from node %u, ignoring", msg[0], node_id);
        }
}

void sync_membership_changed(struct domain *d, const struct cpg_address *members,
                             size_t n_members, const struct cpg_address *left,
                             size_t n_left) {
        if (n_members > DOMAIN_MEMBERS_MAX) {
                log_error("%zu members exceed the limit of %d", n_members, DOMAIN_MEMBERS_MAX);
                n_members = DOMAIN_MEMBERS_MAX;
        }
        d->n_members = n_members;
        for (size_t i = 0; i < n_members; i++)
                d->members[i] = (struct member) { members[i].nodeid, members[i].pid };
        qsort(d->members, d->n_members, sizeof d->members[0], member_cmp);
        stream_quorate_forget(d);
        d->check_id = -1;

        for (size_t i = 0; i < n_left; i++)
                if (!domain_is_member(d, left[i].nodeid))
                        status_drop_node(d, left[i].nodeid);
        log_info("Membership changed: %zu member(s)%s", n_members,
                 n_left ? ", some left" : "");
        sync_emit_membership(d);
        start_round(d, false);
}

void sync_lost_corosync(struct domain *d) {
        d->n_members = 0;
        stream_quorate_forget(d);
        d->synced = false;
        d->n_states = 0;
        free(d->snapshot_buf);
        d->snapshot_buf = NULL;
        api_pending_fail_all(d, "no-quorum",
                             "this node lost its connection to the cluster; the change was not made");
        for (struct status_entry *e = d->status, *next; e; e = next) {
                next = e->next;
                if (e->node_id != d->node_id)
                        status_set(d, e->node_id, e->key, NULL);
        }
        sync_emit_membership(d);
}

/* ==== Timers ==== */

static int on_check_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct domain *d = userdata;

        /* The lowest member asks for a comparison round. */
        if (d->synced && d->n_members > 1 && is_me(d, d->members[0])) {
                _cleanup_(json_object_putp) struct json_object *h = json_object_new_object();
                haven_json_add(h, "members", members_json(d));
                haven_json_add(h, "id", json_object_new_int64(++d->next_check_id));
                (void) domain_multicast_json(d, DOMAIN_MSG_CHECK, h);
        }
        (void) sd_event_source_set_time_relative(s, DOMAIN_CHECK_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int remember_inode(struct domain *d) {
        struct stat st;
        if (stat(d->db_path, &st) < 0)
                return negative_errno();
        d->db_inode = st.st_ino;
        return 0;
}

int domain_reset_store(struct domain *d) {
        _cleanup_free_ char *wal = NULL, *shm = NULL;
        int r;

        d->store = store_free(d->store);
        /* A new empty database must not pick up the old one's journal. */
        (void) unlink(d->db_path);
        if (asprintf(&wal, "%s-wal", d->db_path) >= 0)
                (void) unlink(wal);
        if (asprintf(&shm, "%s-shm", d->db_path) >= 0)
                (void) unlink(shm);
        r = store_open(d->db_path, &d->store);
        stream_quorate_forget(d);
        if (r < 0)
                return r;
        d->is_node = false;
        d->ever_synced = false;
        return remember_inode(d);
}

/* The database file was deleted (or replaced) under us: start over with an
 * empty store and let the cluster bring it back. */
static int on_file_check_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct domain *d = userdata;
        struct stat st;
        int r;

        (void) sd_event_source_set_time_relative(s, DOMAIN_FILE_CHECK_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        /* Submissions and joins waiting for the cluster may have expired. */
        (void) api_submit_flush(d);
        join_check_progress(d);
        if (!d->batch.open) {
                bool idle = haven_now_usec(CLOCK_MONOTONIC) - d->last_tx_usec >=
                            DOMAIN_CHECKPOINT_IDLE_USEC;
                r = store_checkpoint(d->store, idle ? 1 : DOMAIN_CHECKPOINT_FRAMES);
                if (r < 0 && r != -EBUSY)
                        log_warning_errno(r, "WAL checkpoint failed: %m, ignoring");
        }
        if (stat(d->db_path, &st) == 0 && st.st_ino == d->db_inode)
                return 0;
        log_warning("The database \"%s\" was removed or replaced; recreating it from the cluster",
                    d->db_path);
        if (d->batch.open)
                return 0;
        r = domain_reset_store(d);
        if (r < 0) {
                log_error_errno(r, "Failed to recreate \"%s\": %m", d->db_path);
                return sd_event_exit(d->event, r);
        }
        if (d->cpg_connected && d->n_members > 0)
                request_sync_round(d);
        return 0;
}

int sync_start_timers(struct domain *d) {
        int r;

        (void) remember_inode(d);
        r = sd_event_add_time_relative(d->event, &d->check_timer, CLOCK_MONOTONIC,
                                       DOMAIN_CHECK_INTERVAL_USEC, 0, on_check_timer, d);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(d->event, &d->file_check_timer, CLOCK_MONOTONIC,
                                       DOMAIN_FILE_CHECK_INTERVAL_USEC, 0, on_file_check_timer, d);
        if (r < 0)
                return r;
        return 0;
}
