/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The replicated configuration store of haven-domaind: the SQLite schema of
 * the whole model, the deterministic transaction engine (every member applies
 * the same transaction message to the same state and gets the same result),
 * an incrementally maintained content checksum, and snapshots for bringing a
 * member up to date. Must not: use the local clock, random numbers or
 * anything else that could differ between members while applying; talk to
 * corosync (domaind-cpg.c does).
 */
#pragma once

#include <json-c/json.h>
#include <sqlite3.h>

#include "haven/macro.h"

struct store;

/* Opens (creating if needed) the database at path, runs the migrations,
 * loads version and checksum. Returns 0 and *ret, or a negative errno. */
int store_open(const char *path, struct store **ret);
struct store *store_free(struct store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct store *, store_free)
sqlite3 *store_db(struct store *s);

/* The domain version: the number of transactions applied since the store
 * was created (0 = empty, never synced). */
uint64_t store_version(struct store *s);
/* The content checksum: the sum (mod 2^64) over every row of every
 * replicated table of the first 8 bytes of SHA-256(table name, column values
 * in a canonical encoding). Maintained incrementally by store_apply and
 * store_restore; equal on all members that hold the same content. */
uint64_t store_checksum(struct store *s);
/* Recomputes the checksum from the rows (a full scan) into *ret; does not
 * change the stored value. Used by the periodic divergence check. */
int store_checksum_full(struct store *s, uint64_t *ret);

struct store_error {
        char code[32];     /* "conflict", "invalid", "not-found", "internal" */
        char message[256]; /* human-readable: `VM "web1" was changed ...` */
        char field[64];    /* offending column, or "" */
        int op_index;      /* index of the failing op, or -1 */
};

/* A transaction as the replication layer hands it over: identical on every
 * member. `ops` is the array described in docs/domain.md ("The transaction
 * language"): insert / update / delete / stage / activate / discard.
 * `actor` is who asked (an administrator's name or a daemon: "vmd@node2"),
 * `time_usec` the originator's wall clock at submission (CLOCK_REALTIME); it
 * is the only time an apply may use (for audit rows, job timestamps).
 * `audit` (may be NULL) is a one-line description for the audit log. */
struct store_tx {
        struct json_object *ops;
        const char *actor;
        const char *audit;
        const char *node;  /* the originator's node name, for the audit log */
        uint64_t time_usec;
};

/* Applies tx in the current batch (see store_batch_begin) or in its own
 * transaction. All or nothing: on error nothing of tx stays, the version is
 * unchanged, *ret_error says why, and the return is -ESTALE (an
 * expect_version did not match: a conflict), -EINVAL (bad op, unknown
 * table/column, constraint violated), -ENOENT (row does not exist) or another
 * negative errno for internal errors. On success the version is incremented
 * by one, the checksum updated, and *ret_result (if not NULL) is a new
 * object {"version": N, "results": [ {"id": ID} | {} per op ]}: the id of
 * the row an insert created, of the staged change a stage created, of the
 * job an activate created; {} for the other ops. */
int store_apply(struct store *s, const struct store_tx *tx,
                struct json_object **ret_result, struct store_error *ret_error);

/* Group commit: applies between begin and end share one SQLite transaction
 * (each store_apply uses a SAVEPOINT inside it), so a burst of delivered
 * messages costs one fsync. end commits; returns 0 or a negative errno (then
 * the whole batch is rolled back and the in-memory version/checksum are
 * restored to their values at begin). Without begin, each apply commits on
 * its own. */
int store_batch_begin(struct store *s);
int store_batch_end(struct store *s);

/* The whole replicated content: {"version": N, "checksum": "hex16",
 * "tables": {"name": {"columns": [...], "rows": [[...], ...]}, ...}}.
 * *ret is a new reference. */
int store_snapshot(struct store *s, struct json_object **ret);
/* Replaces the whole replicated content with a snapshot (one transaction),
 * then verifies that the recomputed checksum equals the snapshot's;
 * -EBADMSG if the snapshot is malformed or does not verify (then nothing
 * changed). */
int store_restore(struct store *s, struct json_object *snapshot);

/* Reads rows of a replicated table for the local API: `where` (may be NULL)
 * is an object of column → value equality tests (AND). *ret is a new array
 * of row objects (column → value). -EINVAL for an unknown table/column. */
int store_query(struct store *s, const char *table, struct json_object *where,
                struct json_object **ret);

/* Copies the write-ahead log into the database (PASSIVE: never waits for
 * readers) once it holds at least min_frames frames (0: always). The store
 * does not checkpoint inside commits; the daemon calls this from a timer.
 * Returns how many frames of the log are now in the database (>= 0; 0 when
 * the log was below min_frames), -EBUSY inside a batch, or a negative
 * errno. */
int store_checkpoint(struct store *s, int min_frames);

/* The tables whose rows deleting a row of table may delete too (ON DELETE
 * CASCADE, transitively), at most max names into ret (static strings).
 * Returns how many, -ENOENT for an unknown table, -E2BIG. */
int store_cascade_tables(struct store *s, const char *table, const char **ret,
                         size_t max);

/* The names of the replicated tables, NULL-terminated, static. */
const char *const *store_tables(void);
