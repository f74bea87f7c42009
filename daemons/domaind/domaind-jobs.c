/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Activation jobs: every node's domaind appends its reconcile step to the
 * job's log once an activation is applied ("configuration version N in place
 * on node2"), the lowest online member marks the job done when every online
 * node has reported, and subscribers hear each new log line. Other daemons
 * append their own lines through ordinary transactions. Must not: report for
 * a node other than this one.
 */
#include <inttypes.h>
#include <stdio.h>

#include "domaind.h"
#include "haven/db.h"
#include "haven/json.h"
#include "haven/log.h"

#define JOB_SOURCE "haven-domaind"

static void emit_new_lines(struct domain *d, uint64_t first_version, uint64_t last_version) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(store_db(d->store),
                               "SELECT job_id, node, source, line, time FROM job_log "
                               "WHERE version BETWEEN ? AND ? ORDER BY id", -1, &st, NULL) != SQLITE_OK)
                return;
        sqlite3_bind_int64(st, 1, (int64_t) first_version);
        sqlite3_bind_int64(st, 2, (int64_t) last_version);
        while (sqlite3_step(st) == SQLITE_ROW) {
                _cleanup_(json_object_putp) struct json_object *ev = json_object_new_object();
                haven_json_add(ev, "event", json_object_new_string("job-log"));
                haven_json_add(ev, "job_id", json_object_new_int64(sqlite3_column_int64(st, 0)));
                haven_json_add(ev, "node", json_object_new_string((const char *) sqlite3_column_text(st, 1)));
                haven_json_add(ev, "source", json_object_new_string((const char *) sqlite3_column_text(st, 2)));
                haven_json_add(ev, "line", json_object_new_string((const char *) sqlite3_column_text(st, 3)));
                haven_json_add(ev, "time", json_object_new_int64(sqlite3_column_int64(st, 4)));
                api_emit(d, SUBSCRIBE_JOB_LOG, ev);
        }
}

static struct json_object *op_new(const char *kind, const char *table) {
        struct json_object *op = json_object_new_object();
        haven_json_add(op, "op", json_object_new_string(kind));
        haven_json_add(op, "table", json_object_new_string(table));
        return op;
}

/* This node's reconcile step for running activation jobs it has not
 * reported on yet. */
static void report_reconcile(struct domain *d) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        char actor[96], line[256];

        if (sqlite3_prepare_v2(store_db(d->store),
                               "SELECT j.id, j.config_version, (SELECT COUNT(*) FROM nodes) FROM jobs j "
                               "WHERE j.kind = 'activate' AND j.state = 'running' AND j.id > ? "
                               "AND NOT EXISTS (SELECT 1 FROM job_log l WHERE l.job_id = j.id "
                               "AND l.node = ? AND l.source = '" JOB_SOURCE "') ORDER BY j.id",
                               -1, &st, NULL) != SQLITE_OK)
                return;
        sqlite3_bind_int64(st, 1, d->job_logged);
        sqlite3_bind_text(st, 2, d->node_name, -1, SQLITE_STATIC);
        snprintf(actor, sizeof actor, JOB_SOURCE "@%s", d->node_name);
        while (sqlite3_step(st) == SQLITE_ROW) {
                int64_t job = sqlite3_column_int64(st, 0);
                struct json_object *ops = json_object_new_array(), *op, *values;

                /* corosync.conf was brought in line right after the commit
                 * (cluster_after_commit): that is this daemon's step. */
                int64_t config_version = sqlite3_column_int64(st, 1), nodes = sqlite3_column_int64(st, 2);
                snprintf(line, sizeof line,
                         "configuration version %" PRId64 " is in place on %s "
                         "(corosync nodelist: %" PRId64 " node%s)",
                         config_version, d->node_name, nodes, nodes == 1 ? "" : "s");
                op = op_new("insert", "job_log");
                values = json_object_new_object();
                haven_json_add(values, "job_id", json_object_new_int64(job));
                haven_json_add(values, "node", json_object_new_string(d->node_name));
                haven_json_add(values, "source", json_object_new_string(JOB_SOURCE));
                haven_json_add(values, "line", json_object_new_string(line));
                haven_json_add(op, "values", values);
                json_object_array_add(ops, op);
                if (api_pending_new(d, NULL, NULL, ops, actor, NULL))
                        d->job_logged = job;
                json_object_put(ops);
        }
}

/* The lowest online member marks running activation jobs done once every
 * online node has reported. */
static void complete_jobs(struct domain *d) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        char actor[96];
        int64_t now = (int64_t) domain_now_realtime_usec();

        if (d->n_members == 0 || d->members[0].node_id != d->node_id)
                return;
        if (sqlite3_prepare_v2(store_db(d->store),
                               "SELECT j.id, j.version, j.created_at FROM jobs j "
                               "WHERE j.kind = 'activate' AND j.state = 'running' AND j.id > ?",
                               -1, &st, NULL) != SQLITE_OK)
                return;
        sqlite3_bind_int64(st, 1, d->job_completed);
        snprintf(actor, sizeof actor, JOB_SOURCE "@%s", d->node_name);
        while (sqlite3_step(st) == SQLITE_ROW) {
                _cleanup_(sqlite3_finalizep) sqlite3_stmt *q = NULL;
                int64_t job = sqlite3_column_int64(st, 0), created = sqlite3_column_int64(st, 2);
                struct json_object *ops, *op, *values;
                bool all = true;

                if (sqlite3_prepare_v2(store_db(d->store),
                                       "SELECT n.node_id FROM nodes n WHERE NOT EXISTS "
                                       "(SELECT 1 FROM job_log l WHERE l.job_id = ? AND l.node = n.name "
                                       "AND l.source = '" JOB_SOURCE "')", -1, &q, NULL) != SQLITE_OK)
                        return;
                sqlite3_bind_int64(q, 1, job);
                while (sqlite3_step(q) == SQLITE_ROW)
                        if (domain_is_member(d, (uint32_t) sqlite3_column_int64(q, 0)))
                                all = false;
                if (!all)
                        continue;

                ops = json_object_new_array();
                op = op_new("update", "jobs");
                values = json_object_new_object();
                haven_json_add(op, "id", json_object_new_int64(job));
                haven_json_add(op, "expect_version", json_object_new_int64(sqlite3_column_int64(st, 1)));
                haven_json_add(values, "state", json_object_new_string("done"));
                haven_json_add(values, "finished_at", json_object_new_int64(now > created ? now : created));
                haven_json_add(op, "values", values);
                json_object_array_add(ops, op);
                if (api_pending_new(d, NULL, NULL, ops, actor, NULL))
                        d->job_completed = job;
                json_object_put(ops);
        }
}

void jobs_after_commit(struct domain *d, uint64_t first_version, uint64_t last_version) {
        if (first_version > 0)
                emit_new_lines(d, first_version, last_version);
        if (!d->is_node)
                return;
        report_reconcile(d);
        complete_jobs(d);
        (void) api_submit_flush(d);
}
