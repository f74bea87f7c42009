/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven/db.h on real files in a fresh directory under /tmp
 * per test: the settings a database is opened with, migrations (applied in
 * order, once, all-or-nothing per step, refused when the file is newer),
 * read-only handles, WAL readers beside a writer, and the errno table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test-tmp.h"

#include <dirent.h>
#include <fcntl.h>
#include <time.h>

#include "haven/db.h"

struct fixture {
        char dir[64];
        char path[128];
};

static int fixture_setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);

        if (!f)
                return -1;
        strcpy(f->dir, "/tmp/haven-test-db-XXXXXX");
        if (!mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        snprintf(f->path, sizeof f->path, "%s/haven.db", f->dir);
        *state = f;
        return 0;
}

/* Removes the directory and the files SQLite left in it (db, -wal, -shm). */
static int fixture_teardown(void **state) {
        struct fixture *f = *state;

        remove_tree(f->dir);
        free(f);
        return 0;
}

/* First column of the first row of sql as an integer; fails the test if the
 * statement fails or returns nothing. */
static int64_t query_int(sqlite3 *db, const char *sql) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;

        if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
                fail_msg("preparing '%s': %s", sql, sqlite3_errmsg(db));
        if (sqlite3_step(stmt) != SQLITE_ROW)
                fail_msg("'%s' returned no row: %s", sql, sqlite3_errmsg(db));
        return sqlite3_column_int64(stmt, 0);
}

static bool table_exists(sqlite3 *db, const char *name) {
        char sql[128];

        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                 "AND name = '%s'",
                 name);
        return query_int(db, sql) > 0;
}

static const struct haven_migration schema[] = {
        {"initial schema", "CREATE TABLE node (name TEXT PRIMARY KEY);"
                           "CREATE TABLE vm (name TEXT PRIMARY KEY,"
                           " preferred_node TEXT REFERENCES node(name));"},
        {"vm vcpus",
         "ALTER TABLE vm ADD COLUMN vcpus INTEGER NOT NULL DEFAULT 1;"},
        {"fence devices", "CREATE TABLE fence_device (name TEXT PRIMARY KEY);"},
};

/* ==== Opening ==== */

static void fresh_database_gets_wal_and_all_migrations(void **state) {
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        const char *failed = "unset";

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db), 0);
        assert_int_equal(access(f->path, F_OK), 0);
        assert_int_equal(haven_db_version(db), 0);

        assert_int_equal(
                sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL),
                SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_string_equal((const char *) sqlite3_column_text(stmt, 0), "wal");
        sqlite3_finalize(TAKE_PTR(stmt)); /* it holds a read transaction */
        assert_int_equal(query_int(db, "PRAGMA synchronous"), 2); /* FULL */
        assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);

        assert_int_equal(
                haven_db_migrate(db, schema, ELEMENTSOF(schema), &failed), 3);
        assert_null(failed);
        assert_int_equal(haven_db_version(db), 3);
        assert_true(table_exists(db, "node"));
        assert_true(table_exists(db, "vm"));
        assert_true(table_exists(db, "fence_device"));
        assert_int_equal(
                query_int(db, "SELECT count(*) FROM pragma_table_info('vm')"
                              " WHERE name = 'vcpus'"),
                1);

        /* Foreign keys are enforced: a VM cannot prefer a node that does not
         * exist. */
        assert_int_equal(haven_db_exec(db,
                                       "INSERT INTO vm (name, preferred_node)"
                                       " VALUES ('web1', 'node9')"),
                         -EEXIST);
        assert_int_equal(haven_db_exec(db,
                                       "INSERT INTO node VALUES ('node1');"
                                       "INSERT INTO vm (name, preferred_node)"
                                       " VALUES ('web1', 'node1')"),
                         0);
}

static void version_survives_reopening(void **state) {
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db), 0);
        assert_int_equal(haven_db_migrate(db, schema, 2, NULL), 2);
        sqlite3_close_v2(TAKE_PTR(db));

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db), 0);
        assert_int_equal(haven_db_version(db), 2);
        /* A newer firmware brings one more step: only that one runs. */
        assert_int_equal(haven_db_migrate(db, schema, 3, NULL), 1);
        assert_int_equal(haven_db_version(db), 3);
}

static void migrating_again_is_a_no_op(void **state) {
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        const char *failed = "unset";

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db), 0);
        assert_int_equal(haven_db_migrate(db, schema, ELEMENTSOF(schema), NULL),
                         3);
        assert_int_equal(haven_db_exec(db, "INSERT INTO node VALUES ('node1')"),
                         0);

        assert_int_equal(
                haven_db_migrate(db, schema, ELEMENTSOF(schema), &failed), 0);
        assert_null(failed);
        assert_int_equal(haven_db_version(db), 3);
        assert_int_equal(query_int(db, "SELECT count(*) FROM node"), 1);

        /* No migrations at all on a fresh file is also nothing to do. */
        assert_int_equal(haven_db_exec(db, "PRAGMA user_version = 0"), 0);
        assert_int_equal(haven_db_migrate(db, NULL, 0, NULL), 0);
}

/* ==== Failing migrations ==== */

static void failing_migration_rolls_back_its_step_and_stops(void **state) {
        static const struct haven_migration broken[] = {
                {"nodes", "CREATE TABLE node (name TEXT PRIMARY KEY);"},
                {"half done", "CREATE TABLE vm (name TEXT);"
                              "INSERT INTO vm VALUES ('web1');"
                              "INSERT INTO no_such_table VALUES (1);"},
                {"after", "CREATE TABLE after_broken (x);"},
        };
        static const struct haven_migration fixed[] = {
                {"nodes", "CREATE TABLE node (name TEXT PRIMARY KEY);"},
                {"half done", "CREATE TABLE vm (name TEXT);"},
                {"after", "CREATE TABLE after_broken (x);"},
        };
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        const char *failed = NULL;
        int r;

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db), 0);

        r = haven_db_migrate(db, broken, ELEMENTSOF(broken), &failed);
        assert_true(r < 0);
        assert_int_equal(r, -EIO); /* SQLITE_ERROR: no such table */
        assert_non_null(failed);
        assert_string_equal(failed, "half done");

        /* The first step stays; nothing of the second (not even the
         * statements before the failing one); the third never ran. */
        assert_int_equal(haven_db_version(db), 1);
        assert_true(table_exists(db, "node"));
        assert_false(table_exists(db, "vm"));
        assert_false(table_exists(db, "after_broken"));
        assert_true(sqlite3_get_autocommit(db)); /* no transaction left open */

        /* Once fixed, the rest applies. */
        failed = "unset";
        assert_int_equal(
                haven_db_migrate(db, fixed, ELEMENTSOF(fixed), &failed), 2);
        assert_null(failed);
        assert_int_equal(haven_db_version(db), 3);
        assert_true(table_exists(db, "vm"));
        assert_true(table_exists(db, "after_broken"));
}

static void migration_violating_a_constraint_reports_eexist(void **state) {
        static const struct haven_migration steps[] = {
                {"nodes", "CREATE TABLE node (name TEXT PRIMARY KEY);"
                          "INSERT INTO node VALUES ('node1');"},
                {"duplicate", "INSERT INTO node VALUES ('node2');"
                              "INSERT INTO node VALUES ('node1');"},
        };
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        const char *failed = NULL;

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db), 0);
        assert_int_equal(
                haven_db_migrate(db, steps, ELEMENTSOF(steps), &failed),
                -EEXIST);
        assert_string_equal(failed, "duplicate");
        assert_int_equal(haven_db_version(db), 1);
        assert_int_equal(query_int(db, "SELECT count(*) FROM node"), 1);
}

static void migration_ending_the_transaction_itself_is_refused(void **state) {
        static const struct haven_migration steps[] = {
                {"sneaky commit", "CREATE TABLE a (x); COMMIT;"},
                {"after", "CREATE TABLE b (x);"},
        };
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        const char *failed = NULL;

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db), 0);
        assert_int_equal(
                haven_db_migrate(db, steps, ELEMENTSOF(steps), &failed),
                -EINVAL);
        assert_string_equal(failed, "sneaky commit");
        assert_int_equal(haven_db_version(db), 0);
        assert_false(table_exists(db, "b"));
}

static void database_newer_than_firmware_is_refused(void **state) {
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        const char *failed = "unset";

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db), 0);
        assert_int_equal(haven_db_exec(db, "PRAGMA user_version = 5"), 0);

        assert_int_equal(
                haven_db_migrate(db, schema, ELEMENTSOF(schema), &failed),
                -EPROTO);
        assert_null(failed);
        assert_int_equal(haven_db_version(db), 5);
        assert_false(table_exists(db, "node"));
}

/* ==== Read-only handles and concurrent connections ==== */

static void read_only_open_of_missing_file_fails_with_enoent(void **state) {
        struct fixture *f = *state;
        sqlite3 *db = NULL;
        char missing_dir[192];

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_ONLY, &db),
                         -ENOENT);
        assert_null(db);
        /* A reader never creates the file. */
        assert_int_equal(access(f->path, F_OK), -1);

        snprintf(missing_dir, sizeof missing_dir, "%s/no/such/dir.db", f->dir);
        assert_int_equal(haven_db_open(missing_dir, HAVEN_DB_READ_WRITE, &db),
                         -ENOENT);
}

static void read_only_open_of_non_database_fails_with_euclean(void **state) {
        struct fixture *f = *state;
        sqlite3 *db = NULL;
        char junk[512];
        int fd;

        memset(junk, 'x', sizeof junk);
        fd = open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, junk, sizeof junk), (ssize_t) sizeof junk);
        close(fd);

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_ONLY, &db),
                         -EUCLEAN);
        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db),
                         -EUCLEAN);
        assert_null(db);
}

static void read_only_handle_refuses_writes(void **state) {
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *rw = NULL;
        _cleanup_(sqlite3_closep) sqlite3 *ro = NULL;

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &rw), 0);
        assert_int_equal(haven_db_migrate(rw, schema, 1, NULL), 1);
        assert_int_equal(haven_db_exec(rw, "INSERT INTO node VALUES ('node1')"),
                         0);

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_ONLY, &ro), 0);
        assert_int_equal(query_int(ro, "PRAGMA query_only"), 1);
        assert_int_equal(query_int(ro, "SELECT count(*) FROM node"), 1);

        assert_int_equal(haven_db_exec(ro, "INSERT INTO node VALUES ('node2')"),
                         -EROFS);
        assert_int_equal(haven_db_exec(ro, "CREATE TABLE x (y)"), -EROFS);
        assert_int_equal(haven_db_exec(ro, "DELETE FROM node"), -EROFS);
        assert_true(haven_db_migrate(ro, schema, ELEMENTSOF(schema), NULL) < 0);
        assert_true(sqlite3_get_autocommit(ro));

        assert_int_equal(query_int(rw, "SELECT count(*) FROM node"), 1);
        assert_int_equal(haven_db_version(rw), 1);
}

static void reader_opens_database_after_writer_closed(void **state) {
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        char wal[160];

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db), 0);
        assert_int_equal(haven_db_migrate(db, schema, 1, NULL), 1);
        assert_int_equal(haven_db_exec(db, "INSERT INTO node VALUES ('node1')"),
                         0);
        sqlite3_close_v2(TAKE_PTR(db));
        /* The last connection checkpointed and removed the WAL. */
        snprintf(wal, sizeof wal, "%s-wal", f->path);
        assert_int_equal(access(wal, F_OK), -1);

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_ONLY, &db), 0);
        assert_int_equal(haven_db_version(db), 1);
        assert_int_equal(query_int(db, "SELECT count(*) FROM node"), 1);
}

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reader_is_not_blocked_by_open_write_transaction(void **state) {
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *writer = NULL;
        _cleanup_(sqlite3_closep) sqlite3 *reader = NULL;
        int64_t start;

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &writer),
                         0);
        assert_int_equal(haven_db_migrate(writer, schema, 1, NULL), 1);
        assert_int_equal(
                haven_db_exec(writer, "INSERT INTO node VALUES ('node1')"), 0);
        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_ONLY, &reader),
                         0);
        assert_int_equal(query_int(reader, "SELECT count(*) FROM node"), 1);

        /* The writer holds an open write transaction... */
        assert_int_equal(haven_db_begin(writer), 0);
        assert_int_equal(
                haven_db_exec(writer, "INSERT INTO node VALUES ('node2')"), 0);

        /* ...and the reader is not blocked (its busy timeout would show as
         * seconds and -EBUSY): it sees the last commit, not the pending row. */
        start = now_ms();
        assert_int_equal(query_int(reader, "SELECT count(*) FROM node"), 1);
        assert_true(now_ms() - start < HAVEN_DB_BUSY_TIMEOUT_MS / 5);

        assert_int_equal(haven_db_commit(writer), 0);
        assert_int_equal(query_int(reader, "SELECT count(*) FROM node"), 2);
}

static void second_writer_waits_then_reports_ebusy(void **state) {
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *first = NULL;
        _cleanup_(sqlite3_closep) sqlite3 *second = NULL;

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &first),
                         0);
        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &second),
                         0);
        assert_int_equal(haven_db_migrate(first, schema, 1, NULL), 1);

        assert_int_equal(haven_db_begin(first), 0);
        /* Shorten the wait so the test stays fast. */
        assert_int_equal(sqlite3_busy_timeout(second, 20), SQLITE_OK);
        assert_int_equal(haven_db_begin(second), -EBUSY);
        assert_int_equal(haven_db_rollback(first), 0);

        assert_int_equal(haven_db_begin(second), 0);
        assert_int_equal(haven_db_exec(second, "INSERT INTO node VALUES ('n')"),
                         0);
        assert_int_equal(haven_db_commit(second), 0);
        assert_int_equal(query_int(first, "SELECT count(*) FROM node"), 1);
}

static void rollback_undoes_and_tolerates_no_transaction(void **state) {
        struct fixture *f = *state;
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;

        assert_int_equal(haven_db_open(f->path, HAVEN_DB_READ_WRITE, &db), 0);
        assert_int_equal(haven_db_migrate(db, schema, 1, NULL), 1);

        assert_int_equal(haven_db_rollback(db), 0);
        assert_int_equal(haven_db_begin(db), 0);
        assert_int_equal(haven_db_exec(db, "INSERT INTO node VALUES ('node1')"),
                         0);
        assert_int_equal(haven_db_rollback(db), 0);
        assert_int_equal(query_int(db, "SELECT count(*) FROM node"), 0);
        assert_int_equal(haven_db_commit(db), -EIO); /* nothing to commit */
}

static void in_memory_database_opens_without_wal(void **state) {
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;

        assert_int_equal(haven_db_open(":memory:", HAVEN_DB_READ_WRITE, &db),
                         0);
        assert_int_equal(haven_db_migrate(db, schema, ELEMENTSOF(schema), NULL),
                         3);
        assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
}

/* ==== Errno mapping ==== */

static void sqlite_codes_map_to_errnos(void **state) {
        static const struct {
                int rc;
                int expected;
        } table[] = {
                {SQLITE_OK, 0},
                {SQLITE_ROW, 0},
                {SQLITE_DONE, 0},
                {SQLITE_BUSY, -EBUSY},
                {SQLITE_BUSY_SNAPSHOT, -EBUSY},
                {SQLITE_LOCKED, -EBUSY},
                {SQLITE_LOCKED_SHAREDCACHE, -EBUSY},
                {SQLITE_CONSTRAINT, -EEXIST},
                {SQLITE_CONSTRAINT_UNIQUE, -EEXIST},
                {SQLITE_CONSTRAINT_FOREIGNKEY, -EEXIST},
                {SQLITE_NOMEM, -ENOMEM},
                {SQLITE_READONLY, -EROFS},
                {SQLITE_READONLY_DBMOVED, -EROFS},
                {SQLITE_CANTOPEN, -ENOENT},
                {SQLITE_CORRUPT, -EUCLEAN},
                {SQLITE_NOTADB, -EUCLEAN},
                {SQLITE_FULL, -ENOSPC},
                {SQLITE_PERM, -EACCES},
                {SQLITE_AUTH, -EACCES},
                {SQLITE_INTERRUPT, -EINTR},
                {SQLITE_TOOBIG, -E2BIG},
                {SQLITE_ERROR, -EIO},
                {SQLITE_IOERR, -EIO},
                {SQLITE_IOERR_FSYNC, -EIO},
                {SQLITE_MISUSE, -EIO},
                {SQLITE_SCHEMA, -EIO},
                {SQLITE_PROTOCOL, -EIO},
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (haven_db_errno(table[i].rc) != table[i].expected)
                        fail_msg("SQLite code %d mapped to %d, expected %d",
                                 table[i].rc, haven_db_errno(table[i].rc),
                                 table[i].expected);
}

#define DB_TEST(t)                                                             \
        cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                DB_TEST(fresh_database_gets_wal_and_all_migrations),
                DB_TEST(version_survives_reopening),
                DB_TEST(migrating_again_is_a_no_op),
                DB_TEST(failing_migration_rolls_back_its_step_and_stops),
                DB_TEST(migration_violating_a_constraint_reports_eexist),
                DB_TEST(migration_ending_the_transaction_itself_is_refused),
                DB_TEST(database_newer_than_firmware_is_refused),
                DB_TEST(read_only_open_of_missing_file_fails_with_enoent),
                DB_TEST(read_only_open_of_non_database_fails_with_euclean),
                DB_TEST(read_only_handle_refuses_writes),
                DB_TEST(reader_opens_database_after_writer_closed),
                DB_TEST(reader_is_not_blocked_by_open_write_transaction),
                DB_TEST(second_writer_waits_then_reports_ebusy),
                DB_TEST(rollback_undoes_and_tolerates_no_transaction),
                cmocka_unit_test(in_memory_database_opens_without_wal),
                cmocka_unit_test(sqlite_codes_map_to_errnos),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
