/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SQLite helpers behind db.h: opening a database with Haven's settings,
 * ordered schema migrations tracked in PRAGMA user_version, and the one place
 * where SQLite result codes become negative errnos. Must not: know any Haven
 * schema, or log above debug (callers log the error they return).
 */
#include <assert.h>
#include <limits.h>

#include "haven/db.h"
#include "haven/log.h"

/* ==== Result codes ==== */

int haven_db_errno(int sqlite_rc) {
        /* Extended codes (SQLITE_BUSY_SNAPSHOT, ...) carry the primary code in
         * their low byte. */
        switch (sqlite_rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EUCLEAN;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_INTERRUPT:
                return -EINTR;
        case SQLITE_TOOBIG:
                return -E2BIG;
        default:
                return -EIO;
        }
}

/* haven_db_errno() for a failure on db, with SQLite's message at debug. For
 * SQLITE_CANTOPEN the OS error says more (ENOENT for a missing file, EACCES
 * for a forbidden one, also for the -wal and -shm files), so it wins. */
static int db_error(sqlite3 *db, int rc, const char *what) {
        int e = db ? sqlite3_system_errno(db) : 0;

        log_debug("SQLite: %s failed: %s (%d)", what,
                  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
        if ((rc & 0xff) == SQLITE_CANTOPEN && e > 0)
                return -e;
        return haven_db_errno(rc);
}

/* ==== Statements and transactions ==== */

int haven_db_exec(sqlite3 *db, const char *sql) {
        char *message = NULL;
        int rc;

        assert(db);
        assert(sql);

        rc = sqlite3_exec(db, sql, NULL, NULL, &message);
        if (rc != SQLITE_OK) {
                log_debug("SQLite: statement failed: %s (%d)",
                          message ? message : sqlite3_errstr(rc), rc);
                sqlite3_free(message);
                return haven_db_errno(rc);
        }
        return 0;
}

int haven_db_begin(sqlite3 *db) {
        return haven_db_exec(db, "BEGIN IMMEDIATE");
}

int haven_db_commit(sqlite3 *db) {
        return haven_db_exec(db, "COMMIT");
}

/* Returns 0 also when no transaction is open: SQLite ends some transactions
 * itself on errors such as SQLITE_FULL, and there is nothing left to undo. */
int haven_db_rollback(sqlite3 *db) {
        assert(db);

        if (sqlite3_get_autocommit(db))
                return 0;
        return haven_db_exec(db, "ROLLBACK");
}

/* Runs a statement that returns one row and stores its first column as text
 * (copied into buf) and/or integer. Returns 0 or a negative errno; -EIO if it
 * returns no row. */
static int query_one(sqlite3 *db, const char *sql, char *buf, size_t size,
                     int64_t *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
        if (rc != SQLITE_OK)
                return db_error(db, rc, sql);
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
                return rc == SQLITE_DONE ? -EIO : db_error(db, rc, sql);

        if (buf) {
                const unsigned char *text = sqlite3_column_text(stmt, 0);
                snprintf(buf, size, "%s", text ? (const char *) text : "");
        }
        if (ret)
                *ret = sqlite3_column_int64(stmt, 0);
        return 0;
}

int haven_db_version(sqlite3 *db) {
        int64_t version;
        int r;

        assert(db);

        r = query_one(db, "PRAGMA user_version", NULL, 0, &version);
        if (r < 0)
                return r;
        /* Haven never writes a negative version: the file is not ours. */
        if (version < 0)
                return -EUCLEAN;
        return (int) version;
}

/* ==== Opening ==== */

/* Sets the read-write connection up and checks that SQLite really did: WAL
 * can be refused (an in-memory database stays "memory") and foreign keys
 * can be compiled out. */
static int setup_read_write(sqlite3 *db) {
        char mode[16];
        int64_t on;
        int r;

        r = query_one(db, "PRAGMA journal_mode=WAL", mode, sizeof mode, NULL);
        if (r < 0)
                return r;
        /* An in-memory database (tests) has no file to put a WAL next to. */
        if (!streq(mode, "wal") && !streq(mode, "memory"))
                return -EOPNOTSUPP;

        r = haven_db_exec(db, "PRAGMA synchronous=FULL; "
                              "PRAGMA foreign_keys=ON");
        if (r < 0)
                return r;

        r = query_one(db, "PRAGMA foreign_keys", NULL, 0, &on);
        if (r < 0)
                return r;
        if (on != 1)
                return -EOPNOTSUPP;
        return 0;
}

static int setup_read_only(sqlite3 *db) {
        int r;

        r = haven_db_exec(db, "PRAGMA query_only=ON");
        if (r < 0)
                return r;
        /* Opening is lazy: read the schema now so that a file that is not a
         * database fails here (-EUCLEAN) rather than at the first query. */
        return query_one(db, "SELECT count(*) FROM sqlite_master", NULL, 0,
                         NULL);
}

int haven_db_open(const char *path, enum haven_db_mode mode, sqlite3 **ret) {
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        int flags, rc, r;

        assert(path);
        assert(ret);
        assert(mode == HAVEN_DB_READ_WRITE || mode == HAVEN_DB_READ_ONLY);

        flags = mode == HAVEN_DB_READ_ONLY
                        ? SQLITE_OPEN_READONLY
                        : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        rc = sqlite3_open_v2(path, &db, flags, NULL);
        if (rc != SQLITE_OK)
                return db_error(db, rc, "opening the database");

        /* Before anything that takes a lock: another connection may hold it. */
        rc = sqlite3_busy_timeout(db, HAVEN_DB_BUSY_TIMEOUT_MS);
        if (rc != SQLITE_OK)
                return db_error(db, rc, "setting the busy timeout");

        r = mode == HAVEN_DB_READ_ONLY ? setup_read_only(db)
                                       : setup_read_write(db);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(db);
        return 0;
}

/* ==== Migrations ==== */

/* Applies the step that moves the database from its version, read under the
 * write lock, towards n. Returns 1 if it applied one, 0 if the database was
 * at n already, or a negative errno (-EPROTO if it is newer than n); on
 * failure nothing of the step remains and *ret_step is the step that failed
 * (or n if none did). */
static int migrate_one(sqlite3 *db, const struct haven_migration *migrations,
                       size_t n, size_t *ret_step) {
        char sql[64];
        int version, r;

        *ret_step = n;

        r = haven_db_begin(db);
        if (r < 0)
                return r;

        /* Read again under the lock: another process may have migrated
         * since the caller looked. */
        version = haven_db_version(db);
        if (version < 0) {
                r = version;
                goto fail;
        }
        if ((size_t) version >= n) {
                r = (size_t) version > n ? -EPROTO : 0;
                (void) haven_db_rollback(db);
                return r;
        }

        *ret_step = (size_t) version;
        r = haven_db_exec(db, migrations[version].sql);
        if (r < 0)
                goto fail;
        /* A step with its own COMMIT or ROLLBACK would escape this
         * transaction (and maybe already be committed without the new
         * version): refuse it rather than continue out of step. */
        if (sqlite3_get_autocommit(db)) {
                log_debug("SQLite: migration \"%s\" ended the transaction",
                          migrations[version].name);
                return -EINVAL;
        }

        (void) snprintf(sql, sizeof sql, "PRAGMA user_version = %d",
                        version + 1);
        r = haven_db_exec(db, sql);
        if (r < 0)
                goto fail;
        r = haven_db_commit(db);
        if (r < 0)
                goto fail;
        return 1;

fail:
        (void) haven_db_rollback(db);
        return r;
}

int haven_db_migrate(sqlite3 *db, const struct haven_migration *migrations,
                     size_t n, const char **ret_failed) {
        int version, applied = 0, r;

        assert(db);
        assert(migrations || n == 0);
        assert(n < INT_MAX);

        if (ret_failed)
                *ret_failed = NULL;

        /* Up to date (the usual case) without taking the write lock. */
        version = haven_db_version(db);
        if (version < 0)
                return version;
        if ((size_t) version > n)
                return -EPROTO;

        if ((size_t) version == n)
                return 0;

        for (;;) {
                size_t step;

                r = migrate_one(db, migrations, n, &step);
                if (r < 0) {
                        if (ret_failed && step < n)
                                *ret_failed = migrations[step].name;
                        return r;
                }
                if (r == 0)
                        return applied;
                applied++;
        }
}
