/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SQLite helpers: open a database the Haven way (WAL, busy timeout, foreign
 * keys, synchronous=FULL so an acknowledged commit survives a power cut), run
 * schema migrations in order, each in its own transaction, tracked in
 * PRAGMA user_version, and convert SQLite result codes to negative errnos at
 * this edge. Must not: know any Haven schema (the owners pass their tables).
 */
#pragma once

#include <sqlite3.h>

#include "haven/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize)
static inline void sqlite3_closep(sqlite3 **db) {
        if (*db)
                (void) sqlite3_close_v2(*db);
}

enum haven_db_mode {
        HAVEN_DB_READ_WRITE, /* creates the file if missing */
        HAVEN_DB_READ_ONLY,  /* readers such as httpd; never writes */
};

#define HAVEN_DB_BUSY_TIMEOUT_MS 5000

/* Opens path. Read-write: creates it, sets journal_mode=WAL, synchronous=FULL,
 * foreign_keys=ON, busy timeout; -EOPNOTSUPP if SQLite refuses WAL or foreign
 * keys (":memory:" is accepted without WAL, for tests). Read-only: opens
 * without creating (-ENOENT if missing, -EACCES if not permitted), sets
 * query_only and the busy timeout, and reads the schema once (-EUCLEAN if the
 * file is not a database). Returns 0 and *ret (close with sqlite3_close_v2 or
 * _cleanup_(sqlite3_closep)) or a negative errno. */
int haven_db_open(const char *path, enum haven_db_mode mode, sqlite3 **ret);

struct haven_migration {
        const char *name; /* for messages, e.g. "initial schema" */
        const char *sql;  /* one or more statements */
};

/* Brings the schema to version n (migration i moves version i to i+1). Each
 * step runs in BEGIN IMMEDIATE ... COMMIT together with the user_version
 * update; a failing step is rolled back and nothing after it runs. A step's
 * SQL must not contain BEGIN/COMMIT/ROLLBACK itself (-EINVAL).
 * Returns the number of steps applied (>= 0), -EPROTO if the database is newer
 * than n (written by a newer firmware), or another negative errno; on error
 * *ret_failed (if not NULL) names the step, or is NULL if no step failed. */
int haven_db_migrate(sqlite3 *db, const struct haven_migration *migrations,
                     size_t n, const char **ret_failed);
/* PRAGMA user_version. Returns >= 0 or a negative errno (-EUCLEAN if it is
 * negative: Haven never writes that). */
int haven_db_version(sqlite3 *db);

/* Maps an SQLite result code, primary or extended, to a negative errno
 * (SQLITE_OK/ROW/DONE → 0, BUSY/LOCKED → -EBUSY, CONSTRAINT → -EEXIST,
 * NOMEM → -ENOMEM, READONLY → -EROFS, CANTOPEN → -ENOENT, CORRUPT/NOTADB →
 * -EUCLEAN, FULL → -ENOSPC, PERM/AUTH → -EACCES, INTERRUPT → -EINTR,
 * TOOBIG → -E2BIG, others -EIO). */
int haven_db_errno(int sqlite_rc);

/* Runs sql (no results) with sqlite3_exec. Returns 0 or negative errno. */
int haven_db_exec(sqlite3 *db, const char *sql);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Rollback returns 0 when no
 * transaction is open (SQLite ends some itself on errors). */
int haven_db_begin(sqlite3 *db);
int haven_db_commit(sqlite3 *db);
int haven_db_rollback(sqlite3 *db);
