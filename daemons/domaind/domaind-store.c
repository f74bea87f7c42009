/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The replicated configuration store behind domaind-store.h: the transaction
 * engine (ops checked against the schema introspected at open, SQL built only
 * from the schema's own table and column names, values always bound), the
 * content checksum kept row by row, batches, snapshots and queries. Must not:
 * read a clock or anything else that could differ between members while
 * applying, let SQLite change a row the checksum does not see (cascades are
 * done here, row by row), or log above debug.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>

#include <nettle/sha2.h>

#include "haven/db.h"
#include "haven/json.h"
#include "haven/log.h"
#include "haven/text.h"

#include "domaind-schema.h"
#include "domaind-store.h"

#define STORE_OPS_MAX 1000     /* ops in a transaction or a staged change */
#define STORE_SUMMARY_MAX 1024 /* characters in a staged change's summary */
#define STORE_AUDIT_DETAIL_MAX 1024 /* bytes of an audit row's detail */
#define STORE_CASCADE_DEPTH_MAX 8   /* the schema's longest cascade is 2 */
#define STORE_JSON_TEXT_MAX (16u * 1024 * 1024) /* a stored JSON column */
/* Columns of a table: a write's column set is a 64-bit mask (the widest
 * table, vms, has 14). */
#define STORE_COLUMNS_MAX 64
/* INSERT/UPDATE statements kept per table, one per column set (the least
 * recently used goes when a new set comes): outside input decides the
 * sets, so the cache is bounded. */
#define STORE_WRITE_STATEMENTS_MAX 8

/* ==== Model ==== */

enum column_type {
        COLUMN_INTEGER,
        COLUMN_TEXT,
};

struct store_column {
        char *name;
        enum column_type type;
        enum schema_value value;
        enum schema_fill fill;
};

/* A kept INSERT or UPDATE of one column set (see write_statement()). */
struct write_statement {
        sqlite3_stmt *stmt; /* NULL: the slot is free */
        bool update;
        uint64_t columns;   /* bit i: column i is written */
        uint64_t last_used; /* store.write_clock at the last use */
};

/* The kept statements of one table, prepared at first use. Reached through
 * a pointer so that code holding a const table can still fill them. */
struct table_statements {
        sqlite3_stmt *select_row; /* every column, WHERE id = ? */
        sqlite3_stmt *delete_row; /* WHERE id = ? */
        struct write_statement writes[STORE_WRITE_STATEMENTS_MAX];
};

struct store_table {
        const char *name;             /* static: from schema_tables */
        unsigned flags;               /* SCHEMA_NO_* */
        const char *why;              /* why the flags forbid something */
        struct store_column *columns; /* schema order; [0] is "id" */
        size_t n_columns;
        size_t version_column; /* the index of "version" */
        ssize_t name_column;   /* the TEXT column "name", or -1 */
        char *column_list;     /* "\"id\", \"version\", ..." */
        struct table_statements *statements;
};

/* One foreign key: child.child_column refers to parent.parent_column. */
struct store_fk {
        const struct store_table *child, *parent;
        size_t child_column, parent_column;
        bool cascade; /* ON DELETE CASCADE (else RESTRICT or NO ACTION) */
        sqlite3_stmt *select_children; /* kept: see delete_children() */
};

/* Transaction control, run as kept statements (see control_run()). */
enum control {
        CONTROL_BEGIN,
        CONTROL_COMMIT,
        CONTROL_ROLLBACK,
        CONTROL_SAVEPOINT,
        CONTROL_RELEASE,
        CONTROL_ROLLBACK_TO,
        _CONTROL_MAX,
        _CONTROL_INVALID = -EINVAL,
};

struct store {
        sqlite3 *db;
        struct store_table *tables; /* in schema_tables order */
        size_t n_tables;
        struct store_fk *fks;
        size_t n_fks;
        const struct store_table *audit; /* written by every apply */
        uint64_t version;
        uint64_t checksum;

        /* Kept statements besides the tables' and foreign keys'. */
        sqlite3_stmt *control[_CONTROL_MAX];
        sqlite3_stmt *state_update;
        uint64_t write_clock; /* counts uses of write statements (LRU) */

        bool in_batch;
        int wal_frames;         /* frames in the write-ahead log (wal hook) */
        int batch_error; /* < 0: the batch's SQLite transaction is gone */
        uint64_t batch_version, batch_checksum;
};

/* ==== Small helpers ==== */

/* A growing string; on allocation failure it stops growing and remembers. */
struct strbuf {
        char *data;
        size_t len, size;
        bool failed;
};

_printf_(2, 3) static void strbuf_printf(struct strbuf *b, const char *format,
                                         ...) {
        va_list ap;
        int n;

        if (b->failed)
                return;
        for (;;) {
                size_t avail = b->size - b->len, size;
                char *p;

                va_start(ap, format);
                n = vsnprintf(b->data ? b->data + b->len : NULL, avail, format,
                              ap);
                va_end(ap);
                if (n < 0) {
                        b->failed = true;
                        return;
                }
                if ((size_t) n < avail) {
                        b->len += (size_t) n;
                        return;
                }
                size = b->size * 2 > b->len + (size_t) n + 1
                               ? b->size * 2
                               : b->len + (size_t) n + 64;
                p = realloc(b->data, size);
                if (!p) {
                        b->failed = true;
                        return;
                }
                b->data = p;
                b->size = size;
        }
}

/* Hands the string over (never NULL on success; "" if nothing was
 * appended). -ENOMEM if any append failed; the buffer is freed then. */
static int strbuf_take(struct strbuf *b, char **ret) {
        char *data = b->data;
        bool failed = b->failed;

        *b = (struct strbuf){};
        if (!failed && !data)
                data = strdup("");
        if (failed || !data) {
                free(data);
                return -ENOMEM;
        }
        *ret = data;
        return 0;
}

static void strbuf_done(struct strbuf *b) {
        free(b->data);
        *b = (struct strbuf){};
}

/* The int64 value of a JSON integer; false for anything else, also for an
 * integer json-c holds as a uint64 beyond INT64_MAX. */
static bool json_int64(struct json_object *v, int64_t *ret) {
        int64_t i;

        if (!json_object_is_type(v, json_type_int))
                return false;
        i = json_object_get_int64(v);
        if (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX)
                return false;
        *ret = i;
        return true;
}

static bool json_has_nul(struct json_object *v) {
        return strlen(json_object_get_string(v)) !=
               (size_t) json_object_get_string_len(v);
}

/* {"ref": N}: the id inserted by op N. */
static bool json_ref(struct json_object *v, int64_t *ret) {
        struct json_object *n;

        return json_object_is_type(v, json_type_object) &&
               json_object_object_length(v) == 1 &&
               json_object_object_get_ex(v, "ref", &n) && json_int64(n, ret);
}

/* Adds key → value (value NULL only for JSON null, i.e. when allow_null). */
static int add_value(struct json_object *obj, const char *key,
                     struct json_object *value, bool allow_null) {
        if (!value && !allow_null)
                return -ENOMEM;
        return haven_json_add(obj, key, value);
}

_printf_(5, 6) static int set_error(struct store_error *e, int r,
                                    const char *code, const char *field,
                                    const char *format, ...) {
        va_list ap;

        (void) snprintf(e->code, sizeof e->code, "%s", code);
        (void) snprintf(e->field, sizeof e->field, "%s", field ? field : "");
        va_start(ap, format);
        (void) vsnprintf(e->message, sizeof e->message, format, ap);
        va_end(ap);
        return r;
}

/* Puts a formatted prefix in front of e's message (cut to fit, on a UTF-8
 * boundary). */
_printf_(2, 3) static void error_prefix(struct store_error *e,
                                        const char *format, ...) {
        char old[sizeof e->message], prefix[sizeof e->message];
        size_t k, m;
        va_list ap;

        memcpy(old, e->message, sizeof old);
        old[sizeof old - 1] = 0;
        va_start(ap, format);
        (void) vsnprintf(prefix, sizeof prefix, format, ap);
        va_end(ap);

        k = strlen(prefix);
        m = strlen(old);
        if (m > sizeof e->message - 1 - k) {
                m = sizeof e->message - 1 - k;
                while (m > 0 && ((unsigned char) old[m] & 0xC0) == 0x80)
                        m--;
        }
        memcpy(e->message, prefix, k);
        memcpy(e->message + k, old, m);
        e->message[k + m] = 0;
}

/* ==== Schema lookups ==== */

static struct store_table *table_find(struct store *s, const char *name) {
        for (size_t i = 0; i < s->n_tables; i++)
                if (streq(s->tables[i].name, name))
                        return s->tables + i;
        return NULL;
}

/* The column named name[0..n), or NULL. */
static const struct store_column *column_find_n(const struct store_table *t,
                                                const char *name, size_t n) {
        for (size_t i = 0; i < t->n_columns; i++)
                if (strlen(t->columns[i].name) == n &&
                    memcmp(t->columns[i].name, name, n) == 0)
                        return t->columns + i;
        return NULL;
}

static const struct store_column *column_find(const struct store_table *t,
                                              const char *name) {
        return column_find_n(t, name, strlen(name));
}

static size_t column_index(const struct store_table *t,
                           const struct store_column *c) {
        return (size_t) (c - t->columns);
}

/* ==== Statements ==== */

/* Prepares sql with SQLite's prepare flags. Returns 0 and *ret or a
 * negative errno (SQLite's message at debug). */
static int prepare_text(struct store *s, const char *sql, unsigned flags,
                        sqlite3_stmt **ret) {
        int rc;

        rc = sqlite3_prepare_v3(s->db, sql, -1, flags, ret, NULL);
        if (rc != SQLITE_OK) {
                log_debug("SQLite: preparing \"%s\" failed: %s", sql,
                          sqlite3_errmsg(s->db));
                return haven_db_errno(rc) < 0 ? haven_db_errno(rc) : -EIO;
        }
        return 0;
}

_printf_(4, 0) static int prepare_va(struct store *s, sqlite3_stmt **ret,
                                     unsigned flags, const char *format,
                                     va_list ap) {
        _cleanup_free_ char *sql = NULL;

        if (vasprintf(&sql, format, ap) < 0) {
                sql = NULL;
                return -ENOMEM;
        }
        return prepare_text(s, sql, flags, ret);
}

/* Formats and prepares a statement for one use (the caller finalizes it).
 * Returns 0 and *ret or a negative errno. */
_printf_(3, 4) static int prepare(struct store *s, sqlite3_stmt **ret,
                                  const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = prepare_va(s, ret, 0, format, ap);
        va_end(ap);
        return r;
}

static int step_errno(struct store *s, int rc) {
        log_debug("SQLite: statement failed: %s (%d)", sqlite3_errmsg(s->db),
                  rc);
        return haven_db_errno(rc) < 0 ? haven_db_errno(rc) : -EIO;
}

/* Kept statements. What an apply runs is prepared once, at its first use
 * (SQLITE_PREPARE_PERSISTENT), held in a slot of the store, a table or a
 * foreign key, and finalized by store_free(). A kept statement is borrowed
 * by one user at a time (stmt_borrow()), who hands it back with
 * stmt_release() as soon as it is done with it, on every path: reset, so
 * that it holds no cursor and no statement journal, and its bindings
 * cleared, so that it keeps no pointer into a transaction's JSON. Borrowers
 * hold it in a `_cleanup_(stmt_releasep)` variable and release it early
 * (TAKE_PTR) before anything that could borrow it again (cascades). */
static void stmt_release(sqlite3_stmt *stmt) {
        if (!stmt)
                return;
        (void) sqlite3_reset(stmt);
        (void) sqlite3_clear_bindings(stmt);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, stmt_release)

/* Borrows the statement kept in *slot, first formatting and preparing it if
 * the slot is empty. Returns 0 and *ret (give it back with stmt_release())
 * or a negative errno (the slot stays empty). */
_printf_(4, 5) static int stmt_borrow(struct store *s, sqlite3_stmt **slot,
                                      sqlite3_stmt **ret, const char *format,
                                      ...) {
        va_list ap;
        int r;

        if (!*slot) {
                va_start(ap, format);
                r = prepare_va(s, slot, SQLITE_PREPARE_PERSISTENT, format, ap);
                va_end(ap);
                if (r < 0) {
                        *slot = NULL;
                        return r;
                }
        }
        /* Borrowed twice: a programming error. */
        assert(!sqlite3_stmt_busy(*slot));
        *ret = *slot;
        return 0;
}

static void stmt_finalize(sqlite3_stmt **slot) {
        (void) sqlite3_finalize(*slot);
        *slot = NULL;
}

static const char *const control_sql[_CONTROL_MAX] = {
        [CONTROL_BEGIN] = "BEGIN IMMEDIATE",
        [CONTROL_COMMIT] = "COMMIT",
        [CONTROL_ROLLBACK] = "ROLLBACK",
        [CONTROL_SAVEPOINT] = "SAVEPOINT store_apply",
        [CONTROL_RELEASE] = "RELEASE store_apply",
        [CONTROL_ROLLBACK_TO] = "ROLLBACK TO store_apply",
};

/* Runs one transaction control statement (kept: SQLite parses each once).
 * Returns 0 or a negative errno (SQLite's message at debug). */
static int control_run(struct store *s, enum control c) {
        _cleanup_(stmt_releasep) sqlite3_stmt *stmt = NULL;
        int rc, r;

        assert(c >= 0 && c < _CONTROL_MAX);
        r = stmt_borrow(s, s->control + c, &stmt, "%s", control_sql[c]);
        if (r < 0)
                return r;
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE) {
                log_debug("SQLite: \"%s\" failed: %s (%d)", control_sql[c],
                          sqlite3_errmsg(s->db), rc);
                return haven_db_errno(rc) < 0 ? haven_db_errno(rc) : -EIO;
        }
        return 0;
}

/* ROLLBACK, or 0 when no transaction is open (SQLite ends some itself on
 * errors such as SQLITE_FULL), as haven_db_rollback(). */
static int rollback(struct store *s) {
        if (sqlite3_get_autocommit(s->db))
                return 0;
        return control_run(s, CONTROL_ROLLBACK);
}

/* Fetches the row id of t with every column, in schema order. Returns 1
 * and *ret positioned on the row (t's kept statement: give it back with
 * stmt_release()), 0 if there is no such row (*ret NULL), or a negative
 * errno. */
static int row_fetch(struct store *s, const struct store_table *t, int64_t id,
                     sqlite3_stmt **ret) {
        _cleanup_(stmt_releasep) sqlite3_stmt *stmt = NULL;
        int rc, r;

        *ret = NULL;
        r = stmt_borrow(s, &t->statements->select_row, &stmt,
                        "SELECT %s FROM \"%s\" WHERE \"id\" = ?",
                        t->column_list, t->name);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(stmt, 1, id);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return step_errno(s, rc);
        *ret = TAKE_PTR(stmt);
        return 1;
}

/* "vms \"web1\"" when the row has a name, else "vms 5": for messages. */
static void row_describe(const struct store_table *t, sqlite3_stmt *row,
                         char *buf, size_t size) {
        char name[HAVEN_TEXT_SHOWN_MAX + 4];

        if (t->name_column >= 0 &&
            sqlite3_column_type(row, (int) t->name_column) == SQLITE_TEXT)
                (void) snprintf(buf, size, "%s \"%s\"", t->name,
                                haven_text_shown((const char *) sqlite3_column_text(
                                              row, (int) t->name_column),
                                      name));
        else
                (void) snprintf(buf, size, "%s %" PRIi64, t->name,
                                (int64_t) sqlite3_column_int64(row, 0));
}

/* ==== Checksum ==== */

static void hash_u64(struct sha256_ctx *ctx, uint64_t v) {
        uint8_t b[8];

        for (size_t i = 0; i < sizeof b; i++)
                b[i] = (uint8_t) (v >> (8 * i));
        sha256_update(ctx, sizeof b, b);
}

static void hash_tag(struct sha256_ctx *ctx, char tag) {
        uint8_t b = (uint8_t) tag;

        sha256_update(ctx, 1, &b);
}

/* The hash of the row stmt is on (all columns of t, schema order): the first
 * 8 bytes, little-endian, of SHA-256 over the table name, a NUL, and per
 * column a tag and the value: 'N' (null), 'I' + int64 LE, 'R' + IEEE double
 * bits LE, 'T'/'B' + length (uint64 LE) + bytes. Returns 0 or -ENOMEM. */
static int row_hash(const struct store_table *t, sqlite3_stmt *stmt,
                    uint64_t *ret) {
        uint8_t digest[SHA256_DIGEST_SIZE];
        struct sha256_ctx ctx;
        uint64_t h = 0;

        sha256_init(&ctx);
        sha256_update(&ctx, strlen(t->name) + 1, (const uint8_t *) t->name);
        for (int i = 0; i < (int) t->n_columns; i++) {
                const void *p;
                uint64_t bits;
                double d;
                int n;

                switch (sqlite3_column_type(stmt, i)) {
                case SQLITE_NULL:
                        hash_tag(&ctx, 'N');
                        break;
                case SQLITE_INTEGER:
                        hash_tag(&ctx, 'I');
                        hash_u64(&ctx,
                                 (uint64_t) sqlite3_column_int64(stmt, i));
                        break;
                case SQLITE_FLOAT:
                        d = sqlite3_column_double(stmt, i);
                        memcpy(&bits, &d, sizeof bits);
                        hash_tag(&ctx, 'R');
                        hash_u64(&ctx, bits);
                        break;
                case SQLITE_TEXT:
                        p = sqlite3_column_text(stmt, i);
                        if (!p)
                                return -ENOMEM;
                        n = sqlite3_column_bytes(stmt, i);
                        hash_tag(&ctx, 'T');
                        hash_u64(&ctx, (uint64_t) n);
                        sha256_update(&ctx, (size_t) n, p);
                        break;
                default: /* SQLITE_BLOB */
                        p = sqlite3_column_blob(stmt, i);
                        n = sqlite3_column_bytes(stmt, i);
                        if (!p && n > 0)
                                return -ENOMEM;
                        hash_tag(&ctx, 'B');
                        hash_u64(&ctx, (uint64_t) n);
                        if (n > 0)
                                sha256_update(&ctx, (size_t) n, p);
                        break;
                }
        }
        sha256_digest(&ctx, sizeof digest, digest);
        for (size_t i = 0; i < 8; i++)
                h |= (uint64_t) digest[i] << (8 * i);
        *ret = h;
        return 0;
}

/* The sum of the row hashes of every replicated table (no transaction of its
 * own: callers that need a stable view hold one). */
static int checksum_full(struct store *s, uint64_t *ret) {
        uint64_t sum = 0;
        int r;

        for (size_t i = 0; i < s->n_tables; i++) {
                const struct store_table *t = s->tables + i;
                _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
                int rc;

                r = prepare(s, &stmt, "SELECT %s FROM \"%s\"", t->column_list,
                            t->name);
                if (r < 0)
                        return r;
                while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                        uint64_t h;

                        r = row_hash(t, stmt, &h);
                        if (r < 0)
                                return r;
                        sum += h;
                }
                if (rc != SQLITE_DONE)
                        return step_errno(s, rc);
        }
        *ret = sum;
        return 0;
}

/* ==== Persistent state ==== */

static int state_write(struct store *s, uint64_t version, uint64_t checksum) {
        _cleanup_(stmt_releasep) sqlite3_stmt *stmt = NULL;
        const struct {
                const char *key;
                uint64_t value;
        } rows[] = {{"version", version}, {"checksum", checksum}};
        int rc, r;

        r = stmt_borrow(s, &s->state_update, &stmt, "%s",
                        "UPDATE domain_state SET value = ?2 WHERE key = ?1");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                (void) sqlite3_bind_text(stmt, 1, rows[i].key, -1,
                                         SQLITE_STATIC);
                /* The checksum's 64 bits, as SQLite's signed integer. */
                (void) sqlite3_bind_int64(stmt, 2, (int64_t) rows[i].value);
                rc = sqlite3_step(stmt);
                if (rc != SQLITE_DONE)
                        return step_errno(s, rc);
                if (sqlite3_changes(s->db) != 1)
                        return -EUCLEAN;
                (void) sqlite3_reset(stmt);
        }
        return 0;
}

static int state_read(struct store *s) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        bool have_version = false, have_checksum = false;
        int rc, r;

        r = prepare(s, &stmt, "SELECT key, value FROM domain_state");
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                const char *key = (const char *) sqlite3_column_text(stmt, 0);
                int64_t value = sqlite3_column_int64(stmt, 1);

                if (!key)
                        continue;
                if (streq(key, "version")) {
                        if (value < 0)
                                return -EUCLEAN;
                        s->version = (uint64_t) value;
                        have_version = true;
                } else if (streq(key, "checksum")) {
                        s->checksum = (uint64_t) value;
                        have_checksum = true;
                }
        }
        if (rc != SQLITE_DONE)
                return step_errno(s, rc);
        return have_version && have_checksum ? 0 : -EUCLEAN;
}

/* ==== Opening: introspecting the schema ==== */

/* Loads t's columns from PRAGMA table_info. The first must be "id INTEGER
 * PRIMARY KEY", one must be "version INTEGER NOT NULL", every type INTEGER
 * or TEXT, and there must be at most STORE_COLUMNS_MAX. -EUCLEAN for
 * anything else (a schema this code does not understand). */
static int table_load(struct store *s, struct store_table *t,
                      const char *name) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        struct strbuf list = {};
        bool have_version = false;
        int rc, r;

        t->name = name;
        t->name_column = -1;
        t->statements = calloc(1, sizeof *t->statements);
        if (!t->statements)
                return -ENOMEM;
        r = prepare(s, &stmt, "PRAGMA table_info(\"%s\")", name);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                const char *cname = (const char *) sqlite3_column_text(stmt, 1);
                const char *type = (const char *) sqlite3_column_text(stmt, 2);
                bool notnull = sqlite3_column_int(stmt, 3) != 0;
                int pk = sqlite3_column_int(stmt, 5);
                struct store_column *c, *p;
                size_t i = t->n_columns;

                if (!cname || !type || strchr(cname, '"') ||
                    i >= STORE_COLUMNS_MAX) {
                        strbuf_done(&list);
                        return -EUCLEAN;
                }
                p = reallocarray(t->columns, i + 1, sizeof *p);
                if (!p) {
                        strbuf_done(&list);
                        return -ENOMEM;
                }
                t->columns = p;
                c = t->columns + i;
                *c = (struct store_column){.name = strdup(cname)};
                if (!c->name) {
                        strbuf_done(&list);
                        return -ENOMEM;
                }
                t->n_columns++;

                if (streq(type, "INTEGER"))
                        c->type = COLUMN_INTEGER;
                else if (streq(type, "TEXT"))
                        c->type = COLUMN_TEXT;
                else {
                        strbuf_done(&list);
                        return -EUCLEAN;
                }
                if ((i == 0) != (streq(cname, "id") && pk == 1 &&
                                 c->type == COLUMN_INTEGER)) {
                        strbuf_done(&list);
                        return -EUCLEAN;
                }
                if (streq(cname, "version")) {
                        if (c->type != COLUMN_INTEGER || !notnull) {
                                strbuf_done(&list);
                                return -EUCLEAN;
                        }
                        have_version = true;
                        t->version_column = i;
                }
                if (streq(cname, "name") && c->type == COLUMN_TEXT)
                        t->name_column = (ssize_t) i;
                strbuf_printf(&list, "%s\"%s\"", i ? ", " : "", cname);
        }
        if (rc != SQLITE_DONE) {
                strbuf_done(&list);
                return step_errno(s, rc);
        }
        if (!have_version) {
                strbuf_done(&list);
                return -EUCLEAN;
        }
        return strbuf_take(&list, &t->column_list);
}

/* Loads every foreign key. Only what the checksum can follow is accepted:
 * single-column keys between replicated INTEGER columns, ON DELETE CASCADE,
 * RESTRICT or NO ACTION, and no ON UPDATE action. */
static int fks_load(struct store *s) {
        for (size_t i = 0; i < s->n_tables; i++) {
                _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
                struct store_table *child = s->tables + i;
                int rc, r;

                r = prepare(s, &stmt, "PRAGMA foreign_key_list(\"%s\")",
                            child->name);
                if (r < 0)
                        return r;
                while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                        const char *parent_name, *from, *to, *on_update,
                                *on_delete;
                        const struct store_column *cc, *pc;
                        struct store_table *parent;
                        struct store_fk *p;

                        parent_name =
                                (const char *) sqlite3_column_text(stmt, 2);
                        from = (const char *) sqlite3_column_text(stmt, 3);
                        to = (const char *) sqlite3_column_text(stmt, 4);
                        on_update = (const char *) sqlite3_column_text(stmt, 5);
                        on_delete = (const char *) sqlite3_column_text(stmt, 6);
                        if (sqlite3_column_int(stmt, 1) != 0 || !parent_name ||
                            !from || !on_update || !on_delete)
                                return -EUCLEAN;
                        parent = table_find(s, parent_name);
                        if (!parent)
                                return -EUCLEAN;
                        cc = column_find(child, from);
                        pc = column_find(parent, to ? to : "id");
                        if (!cc || !pc || cc->type != COLUMN_INTEGER ||
                            pc->type != COLUMN_INTEGER)
                                return -EUCLEAN;
                        if (!streq(on_update, "NO ACTION") &&
                            !streq(on_update, "RESTRICT"))
                                return -EUCLEAN;
                        if (!streq(on_delete, "CASCADE") &&
                            !streq(on_delete, "RESTRICT") &&
                            !streq(on_delete, "NO ACTION"))
                                return -EUCLEAN;

                        p = reallocarray(s->fks, s->n_fks + 1, sizeof *p);
                        if (!p)
                                return -ENOMEM;
                        s->fks = p;
                        s->fks[s->n_fks++] = (struct store_fk){
                                .child = child,
                                .parent = parent,
                                .child_column = column_index(child, cc),
                                .parent_column = column_index(parent, pc),
                                .cascade = streq(on_delete, "CASCADE"),
                        };
                }
                if (rc != SQLITE_DONE)
                        return step_errno(s, rc);
        }
        return 0;
}

static int schema_load(struct store *s) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        size_t n = 0;
        int r;

        while (schema_tables[n])
                n++;
        s->tables = calloc(n, sizeof *s->tables);
        if (!s->tables)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                s->n_tables++;
                r = table_load(s, s->tables + i, schema_tables[i]);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < schema_table_rules_count; i++) {
                struct store_table *t =
                        table_find(s, schema_table_rules[i].table);

                if (!t)
                        return -EUCLEAN;
                t->flags = schema_table_rules[i].flags;
                t->why = schema_table_rules[i].why;
        }

        for (size_t i = 0; i < schema_column_rules_count; i++) {
                const struct schema_column_rule *rule = schema_column_rules + i;
                struct store_table *t = table_find(s, rule->table);
                struct store_column *c;
                enum column_type want;

                if (!t || !column_find(t, rule->column))
                        return -EUCLEAN;
                c = t->columns + column_index(t, column_find(t, rule->column));
                want = rule->value == SCHEMA_VALUE_JSON ||
                                       rule->fill == SCHEMA_FILL_ACTOR
                               ? COLUMN_TEXT
                               : COLUMN_INTEGER;
                if (c->type != want)
                        return -EUCLEAN;
                c->value = rule->value;
                c->fill = rule->fill;
        }

        r = fks_load(s);
        if (r < 0)
                return r;
        s->audit = table_find(s, "audit");
        if (!s->audit)
                return -EUCLEAN;

        /* A trigger would change rows behind the checksum's back. */
        r = prepare(
                s, &stmt,
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'");
        if (r < 0)
                return r;
        if (sqlite3_step(stmt) != SQLITE_ROW)
                return -EIO;
        return sqlite3_column_int64(stmt, 0) == 0 ? 0 : -EUCLEAN;
}

/* SQLite tells us the log's size after every commit. */
static int on_wal_commit(void *userdata, sqlite3 *db, const char *name, int frames) {
        struct store *s = userdata;
        s->wal_frames = frames;
        return SQLITE_OK;
}

int store_open(const char *path, struct store **ret) {
        _cleanup_(store_freep) struct store *s = NULL;
        const char *failed = NULL;
        int r;

        assert(path);
        assert(ret);

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        r = haven_db_open(path, HAVEN_DB_READ_WRITE, &s->db);
        if (r < 0)
                return r;
        /* No checkpoint inside a commit: the daemon calls store_checkpoint()
         * when it is idle, so a commit costs one fdatasync. */
        r = haven_db_exec(s->db, "PRAGMA wal_autocheckpoint=0");
        if (r < 0)
                return r;
        sqlite3_wal_hook(s->db, on_wal_commit, s);
        r = haven_db_migrate(s->db, schema_migrations, schema_migrations_count,
                             &failed);
        if (r < 0) {
                log_debug("Store: migration \"%s\" failed",
                          failed ? failed : "(none)");
                return r;
        }
        r = schema_load(s);
        if (r < 0)
                return r;
        r = state_read(s);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

struct store *store_free(struct store *s) {
        if (!s)
                return NULL;
        /* A batch that was never ended is not committed. */
        if (s->db)
                (void) rollback(s);
        for (size_t i = 0; i < s->n_tables; i++) {
                struct table_statements *st = s->tables[i].statements;

                if (st) {
                        stmt_finalize(&st->select_row);
                        stmt_finalize(&st->delete_row);
                        for (size_t j = 0; j < ELEMENTSOF(st->writes); j++)
                                stmt_finalize(&st->writes[j].stmt);
                        free(st);
                }
                for (size_t j = 0; j < s->tables[i].n_columns; j++)
                        free(s->tables[i].columns[j].name);
                free(s->tables[i].columns);
                free(s->tables[i].column_list);
        }
        free(s->tables);
        for (size_t i = 0; i < s->n_fks; i++)
                stmt_finalize(&s->fks[i].select_children);
        free(s->fks);
        for (size_t i = 0; i < _CONTROL_MAX; i++)
                stmt_finalize(s->control + i);
        stmt_finalize(&s->state_update);
        /* Every statement is finalized: the connection closes now, not as
         * a zombie. */
        if (s->db)
                (void) sqlite3_close_v2(s->db);
        free(s);
        return NULL;
}

sqlite3 *store_db(struct store *s) {
        assert(s);
        return s->db;
}

uint64_t store_version(struct store *s) {
        assert(s);
        return s->version;
}

uint64_t store_checksum(struct store *s) {
        assert(s);
        return s->checksum;
}

int store_checksum_full(struct store *s, uint64_t *ret) {
        assert(s);
        assert(ret);
        return checksum_full(s, ret);
}

const char *const *store_tables(void) {
        return schema_tables;
}

/* ==== Parsing ops ==== */

enum op_kind {
        OP_INSERT,
        OP_UPDATE,
        OP_DELETE,
        OP_STAGE,
        OP_ACTIVATE,
        OP_DISCARD,
        _OP_KIND_MAX,
        _OP_KIND_INVALID = -EINVAL,
};

static const char *const op_kind_names[_OP_KIND_MAX + 1] = {
        [OP_INSERT] = "insert",     [OP_UPDATE] = "update",
        [OP_DELETE] = "delete",     [OP_STAGE] = "stage",
        [OP_ACTIVATE] = "activate", [OP_DISCARD] = "discard",
};

static enum op_kind op_kind_from_string(const char *s) {
        for (int i = 0; i < _OP_KIND_MAX; i++)
                if (streq(op_kind_names[i], s))
                        return (enum op_kind) i;
        return _OP_KIND_INVALID;
}

/* One checked op; the JSON it points into is borrowed. */
struct op {
        enum op_kind kind;
        const struct store_table *table; /* insert, update, delete */
        int64_t id;                      /* update, delete */
        bool has_expect_version;
        int64_t expect_version;
        struct json_object *values; /* insert, update */
        struct json_object *ops;    /* stage */
        const char *summary;        /* stage; never NULL */
        int64_t result;             /* once applied: the id it inserted
                                     * (insert, stage, activate) */
};

#define OP_FIELD                                                               \
        { "op", HAVEN_JSON_ENUM, true, false, 0, 0, op_kind_names }
#define TABLE_FIELD                                                            \
        { "table", HAVEN_JSON_STRING, true, false, 1, 64, NULL }
#define ID_FIELD                                                               \
        { "id", HAVEN_JSON_INT, true, false, 1, INT64_MAX, NULL }
#define EXPECT_FIELD                                                           \
        { "expect_version", HAVEN_JSON_INT, false, false, 0, INT64_MAX, NULL }

static const struct haven_json_field insert_policy[] = {
        OP_FIELD,
        TABLE_FIELD,
        {"values", HAVEN_JSON_OBJECT, true, false, 0, 0, NULL},
};
static const struct haven_json_field update_policy[] = {
        OP_FIELD,
        TABLE_FIELD,
        ID_FIELD,
        EXPECT_FIELD,
        {"values", HAVEN_JSON_OBJECT, true, false, 0, 0, NULL},
};
static const struct haven_json_field delete_policy[] = {
        OP_FIELD,
        TABLE_FIELD,
        ID_FIELD,
        EXPECT_FIELD,
};
static const struct haven_json_field stage_policy[] = {
        OP_FIELD,
        {"ops", HAVEN_JSON_ARRAY, true, false, 1, STORE_OPS_MAX, NULL},
        {"summary", HAVEN_JSON_STRING, false, false, 0, STORE_SUMMARY_MAX,
         NULL},
};
static const struct haven_json_field bare_policy[] = {
        OP_FIELD,
};

static const struct {
        const struct haven_json_field *fields;
        size_t n;
} op_policies[_OP_KIND_MAX] = {
        [OP_INSERT] = {insert_policy, ELEMENTSOF(insert_policy)},
        [OP_UPDATE] = {update_policy, ELEMENTSOF(update_policy)},
        [OP_DELETE] = {delete_policy, ELEMENTSOF(delete_policy)},
        [OP_STAGE] = {stage_policy, ELEMENTSOF(stage_policy)},
        [OP_ACTIVATE] = {bare_policy, ELEMENTSOF(bare_policy)},
        [OP_DISCARD] = {bare_policy, ELEMENTSOF(bare_policy)},
};

static const char *type_expected(const struct store_column *c) {
        switch (c->value) {
        case SCHEMA_VALUE_BOOL:
                return "must be true or false";
        case SCHEMA_VALUE_JSON:
                return "must be a JSON array or object";
        default:
                return c->type == COLUMN_INTEGER ? "must be an integer"
                                                 : "must be a string";
        }
}

/* Checks one value for column c of t in op `index` of ops (the ops before
 * it are parsed already). null is left to NOT NULL. An INTEGER column takes
 * a JSON integer (not 2.0, "2" or true) or {"ref": N} for the id inserted by
 * an earlier insert op; a JSON column an array or object (never a ref). */
static int value_check(const struct store_table *t,
                       const struct store_column *c, struct json_object *v,
                       const struct op *ops, size_t index,
                       struct store_error *e) {
        int64_t n;

        if (!v)
                return 0;
        switch (c->value) {
        case SCHEMA_VALUE_JSON:
                if (json_object_is_type(v, json_type_array) ||
                    json_object_is_type(v, json_type_object))
                        return 0;
                break;
        case SCHEMA_VALUE_BOOL:
                if (json_object_is_type(v, json_type_boolean))
                        return 0;
                break;
        case SCHEMA_VALUE_PLAIN:
                if (c->type == COLUMN_TEXT) {
                        if (json_object_is_type(v, json_type_string) &&
                            !json_has_nul(v))
                                return 0;
                        break;
                }
                if (json_int64(v, &n))
                        return 0;
                if (!json_ref(v, &n))
                        break;
                if (n < 0 || (uint64_t) n >= index)
                        return set_error(e, -EINVAL, "invalid", c->name,
                                         "%s: \"%s\" refers to op %" PRIi64
                                         ", which does not come before this "
                                         "one",
                                         t->name, c->name, n);
                if (ops[n].kind != OP_INSERT)
                        return set_error(e, -EINVAL, "invalid", c->name,
                                         "%s: \"%s\" refers to op %" PRIi64
                                         ", which is not an insert",
                                         t->name, c->name, n);
                return 0;
        }
        return set_error(e, -EINVAL, "invalid", c->name, "%s: \"%s\" %s",
                         t->name, c->name, type_expected(c));
}

static int values_check(const struct store_table *t, struct json_object *values,
                        const struct op *ops, size_t index,
                        struct store_error *e) {
        struct json_object_iterator it = json_object_iter_begin(values);
        struct json_object_iterator end = json_object_iter_end(values);
        int r;

        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
                const char *key = json_object_iter_peek_name(&it);
                const struct store_column *c;
                char name[HAVEN_TEXT_SHOWN_MAX + 4];

                if (streq(key, "id") || streq(key, "version"))
                        return set_error(e, -EINVAL, "invalid", key,
                                         "%s: \"%s\" is set by the domain, "
                                         "not by a transaction",
                                         t->name, key);
                c = column_find(t, key);
                if (!c)
                        return set_error(e, -EINVAL, "invalid", NULL,
                                         "%s has no column \"%s\"", t->name,
                                         haven_text_shown(key, name));
                r = value_check(t, c, json_object_iter_peek_value(&it), ops,
                                index, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int ops_parse(struct store *s, struct json_object *array, bool inner,
                     struct op **ret, size_t *ret_n, struct store_error *e);

/* Checks op `index` (json) and fills ops[index]. inner: the op belongs to a
 * staged change, which cannot stage, activate or discard. Returns 0 or
 * -EINVAL with *e filled (op_index left to the caller). */
static int op_parse(struct store *s, struct json_object *json, bool inner,
                    struct op *ops, size_t index, struct store_error *e) {
        struct op *op = ops + index;
        struct haven_json_error je;
        const char *kind_name, *table_name;
        char name[HAVEN_TEXT_SHOWN_MAX + 4];
        struct store_table *t;
        enum op_kind kind;
        int r;

        *op = (struct op){.summary = ""};
        if (!json_object_is_type(json, json_type_object))
                return set_error(e, -EINVAL, "invalid", NULL,
                                 "an op must be a JSON object");
        r = haven_json_get_string(json, "op", &kind_name);
        if (r == -ENOENT)
                return set_error(e, -EINVAL, "invalid", "op",
                                 "\"op\" is required");
        if (r < 0)
                return set_error(e, -EINVAL, "invalid", "op",
                                 "\"op\" must be a string");
        kind = op_kind_from_string(kind_name);
        if (kind < 0)
                return set_error(e, -EINVAL, "invalid", "op",
                                 "unknown op \"%s\"", haven_text_shown(kind_name, name));
        if (inner && kind >= OP_STAGE)
                return set_error(e, -EINVAL, "invalid", "op",
                                 "a staged change cannot %s", kind_name);

        r = haven_json_check(json, op_policies[kind].fields,
                             op_policies[kind].n, &je);
        if (r < 0) {
                if (je.field)
                        return set_error(e, -EINVAL, "invalid", je.field,
                                         "\"%s\": %s", je.field, je.message);
                return set_error(e, -EINVAL, "invalid", NULL, "%s", je.message);
        }
        op->kind = kind;

        if (kind == OP_STAGE) {
                _cleanup_free_ struct op *inner_ops = NULL;
                size_t n;

                (void) haven_json_get_array(json, "ops", &op->ops);
                (void) haven_json_get_string(json, "summary", &op->summary);
                r = ops_parse(s, op->ops, true, &inner_ops, &n, e);
                if (r < 0) {
                        error_prefix(
                                e, "op %d of the staged change: ", e->op_index);
                        e->op_index = -1;
                        return r;
                }
                return 0;
        }
        if (kind == OP_ACTIVATE || kind == OP_DISCARD)
                return 0;

        (void) haven_json_get_string(json, "table", &table_name);
        t = table_find(s, table_name);
        if (!t)
                return set_error(e, -EINVAL, "invalid", "table",
                                 "unknown table \"%s\"",
                                 haven_text_shown(table_name, name));
        if ((kind == OP_INSERT && (t->flags & SCHEMA_NO_INSERT)) ||
            (kind == OP_UPDATE && (t->flags & SCHEMA_NO_UPDATE)) ||
            (kind == OP_DELETE && (t->flags & SCHEMA_NO_DELETE)))
                return set_error(e, -EINVAL, "invalid", "table",
                                 "%s: a transaction cannot %s here: %s",
                                 t->name, kind_name, t->why);
        op->table = t;

        if (kind != OP_INSERT) {
                (void) haven_json_get_int64(json, "id", &op->id);
                op->has_expect_version =
                        haven_json_get_int64(json, "expect_version",
                                             &op->expect_version) >= 0;
        }
        if (kind == OP_DELETE)
                return 0;

        (void) haven_json_get_object(json, "values", &op->values);
        if (kind == OP_UPDATE && json_object_object_length(op->values) == 0)
                return set_error(e, -EINVAL, "invalid", "values",
                                 "\"values\": an update must change at least "
                                 "one column");
        return values_check(t, op->values, ops, index, e);
}

/* Checks a whole array of ops without touching the database: the shape of
 * each op, tables and whether they may be written, columns and the types of
 * values, refs. Returns 0 and *ret (*ret_n entries, free() it), or -EINVAL
 * with *e filled and e->op_index naming the op. */
static int ops_parse(struct store *s, struct json_object *array, bool inner,
                     struct op **ret, size_t *ret_n, struct store_error *e) {
        _cleanup_free_ struct op *ops = NULL;
        size_t n;
        int r;

        if (!json_object_is_type(array, json_type_array))
                return set_error(e, -EINVAL, "invalid", "ops",
                                 "\"ops\" must be a JSON array of ops");
        n = json_object_array_length(array);
        if (n < 1 || n > STORE_OPS_MAX)
                return set_error(e, -EINVAL, "invalid", "ops",
                                 "\"ops\" must hold 1 to %d ops",
                                 STORE_OPS_MAX);
        ops = calloc(n, sizeof *ops);
        if (!ops)
                return set_error(e, -ENOMEM, "internal", NULL, "out of memory");
        for (size_t i = 0; i < n; i++) {
                r = op_parse(s, json_object_array_get_idx(array, i), inner, ops,
                             i, e);
                if (r < 0) {
                        e->op_index = (int) i;
                        return r;
                }
        }
        *ret = TAKE_PTR(ops);
        *ret_n = n;
        return 0;
}

/* ==== Applying ops ==== */

/* One transaction being applied: what it will set the version to, and the
 * checksum as its changes so far leave it. */
struct apply {
        struct store *s;
        const struct store_tx *tx;
        uint64_t version;
        uint64_t checksum;
        struct store_error *error;
};

static int internal_error(struct apply *a, int r, const char *what) {
        return set_error(a->error, r < 0 ? r : -EIO, "internal", NULL,
                         "internal error while %s: %s", what, strerror(-r));
}

static int not_found(struct apply *a, const struct store_table *t, int64_t id) {
        return set_error(a->error, -ENOENT, "not-found", "id",
                         "%s %" PRIi64 " does not exist", t->name, id);
}

static uint64_t column_bit(size_t i) {
        assert(i < STORE_COLUMNS_MAX);
        return UINT64_C(1) << i;
}

/* The columns an insert or update of a table writes: the op's values (the
 * keys values_check() accepted), for an insert also the filled columns the
 * values do not name, and always version. */
struct write_set {
        uint64_t columns; /* bit i: column i is written */
        uint64_t named;   /* bit i: the op's values name column i */
        /* values[i]: the value of named column i (NULL: JSON null); the
         * others are not set. */
        struct json_object *values[STORE_COLUMNS_MAX];
};

static void write_set_collect(const struct store_table *t,
                              struct json_object *values, bool insert,
                              struct write_set *w) {
        struct json_object_iterator it = json_object_iter_begin(values);
        struct json_object_iterator end = json_object_iter_end(values);

        w->named = 0;
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
                const struct store_column *c =
                        column_find(t, json_object_iter_peek_name(&it));
                size_t i;

                assert(c);
                i = column_index(t, c);
                w->named |= column_bit(i);
                w->values[i] = json_object_iter_peek_value(&it);
        }
        w->columns = w->named | column_bit(t->version_column);
        for (size_t i = 0; insert && i < t->n_columns; i++)
                if (t->columns[i].fill != SCHEMA_FILL_NONE)
                        w->columns |= column_bit(i);
}

/* Borrows t's kept INSERT (update: UPDATE ... WHERE "id" = ?) of a column
 * set, preparing it at its first use; columns and parameters are in schema
 * order, so the set alone says what the statement is. When t keeps
 * STORE_WRITE_STATEMENTS_MAX sets already, the least recently used one is
 * finalized. Returns 0 and *ret (give it back with stmt_release()) or a
 * negative errno. */
static int write_statement(struct store *s, const struct store_table *t,
                           bool update, uint64_t columns, sqlite3_stmt **ret) {
        struct write_statement *slots = t->statements->writes, *w = NULL;
        _cleanup_free_ char *sql = NULL;
        struct strbuf b = {};
        const char *sep = "";
        int r;

        for (size_t i = 0; i < STORE_WRITE_STATEMENTS_MAX && !w; i++)
                if (slots[i].stmt && slots[i].update == update &&
                    slots[i].columns == columns)
                        w = slots + i;
        if (w)
                goto found;

        if (update) {
                strbuf_printf(&b, "UPDATE \"%s\" SET ", t->name);
                for (size_t i = 0; i < t->n_columns; i++)
                        if (columns & column_bit(i)) {
                                strbuf_printf(&b, "%s\"%s\" = ?", sep,
                                              t->columns[i].name);
                                sep = ", ";
                        }
                strbuf_printf(&b, " WHERE \"id\" = ?");
        } else {
                strbuf_printf(&b, "INSERT INTO \"%s\" (", t->name);
                for (size_t i = 0; i < t->n_columns; i++)
                        if (columns & column_bit(i)) {
                                strbuf_printf(&b, "%s\"%s\"", sep,
                                              t->columns[i].name);
                                sep = ", ";
                        }
                strbuf_printf(&b, ") VALUES (");
                sep = "";
                for (size_t i = 0; i < t->n_columns; i++)
                        if (columns & column_bit(i)) {
                                strbuf_printf(&b, "%s?", sep);
                                sep = ", ";
                        }
                strbuf_printf(&b, ")");
        }
        r = strbuf_take(&b, &sql);
        if (r < 0)
                return r;

        /* A free slot, else the least recently used. */
        w = slots;
        for (size_t i = 0; i < STORE_WRITE_STATEMENTS_MAX; i++) {
                if (!slots[i].stmt) {
                        w = slots + i;
                        break;
                }
                if (slots[i].last_used < w->last_used)
                        w = slots + i;
        }
        /* Write statements are never borrowed two at a time. */
        assert(!w->stmt || !sqlite3_stmt_busy(w->stmt));
        stmt_finalize(&w->stmt);
        *w = (struct write_statement){.update = update, .columns = columns};
        r = prepare_text(s, sql, SQLITE_PREPARE_PERSISTENT, &w->stmt);
        if (r < 0) {
                w->stmt = NULL;
                return r;
        }

found:
        assert(!sqlite3_stmt_busy(w->stmt));
        w->last_used = ++s->write_clock;
        *ret = w->stmt;
        return 0;
}

/* Binds parameter k to column i of t as w says: the transaction's version,
 * the op's value (ops: the transaction's ops, which refs read the ids of
 * the earlier ones from; NULL when there can be no refs), or for a column
 * the op does not name, what the transaction fills in. */
static int bind_column(struct apply *a, sqlite3_stmt *stmt, int k,
                       const struct store_table *t, size_t i,
                       const struct write_set *w, const struct op *ops) {
        const struct store_column *c = t->columns + i;
        struct json_object *v;
        const char *text;
        int64_t n;
        int rc;

        if (i == t->version_column)
                rc = sqlite3_bind_int64(stmt, k, (int64_t) a->version);
        else if (!(w->named & column_bit(i))) {
                assert(c->fill != SCHEMA_FILL_NONE);
                if (c->fill == SCHEMA_FILL_TIME)
                        rc = sqlite3_bind_int64(stmt, k,
                                                (int64_t) a->tx->time_usec);
                else
                        rc = sqlite3_bind_text(stmt, k,
                                               a->tx->actor ? a->tx->actor : "",
                                               -1, SQLITE_STATIC);
        } else if (!(v = w->values[i]))
                rc = sqlite3_bind_null(stmt, k);
        else if (c->value == SCHEMA_VALUE_JSON) {
                text = json_object_to_json_string_ext(
                        v, JSON_C_TO_STRING_PLAIN |
                                   JSON_C_TO_STRING_NOSLASHESCAPE);
                if (!text)
                        return -ENOMEM;
                rc = sqlite3_bind_text(stmt, k, text, -1, SQLITE_TRANSIENT);
        } else if (c->value == SCHEMA_VALUE_BOOL)
                rc = sqlite3_bind_int(stmt, k,
                                      json_object_get_boolean(v) ? 1 : 0);
        else if (c->type == COLUMN_TEXT)
                rc = sqlite3_bind_text(stmt, k, json_object_get_string(v),
                                       json_object_get_string_len(v),
                                       SQLITE_STATIC);
        else if (json_int64(v, &n))
                rc = sqlite3_bind_int64(stmt, k, n);
        else {
                /* A ref, checked by value_check(). */
                bool ok = json_ref(v, &n);

                assert(ok && ops);
                (void) ok;
                rc = sqlite3_bind_int64(stmt, k, ops[n].result);
        }
        return rc == SQLITE_OK ? 0 : haven_db_errno(rc);
}

/* Binds every column of w, in schema order, from parameter 1. Returns the
 * number of parameters bound or a negative errno. */
static int bind_columns(struct apply *a, sqlite3_stmt *stmt,
                        const struct store_table *t, const struct write_set *w,
                        const struct op *ops) {
        int k = 0, r;

        for (size_t i = 0; i < t->n_columns; i++) {
                if (!(w->columns & column_bit(i)))
                        continue;
                r = bind_column(a, stmt, ++k, t, i, w, ops);
                if (r < 0)
                        return r;
        }
        return k;
}

/* The integer the op writes into column c (a value or a resolved ref):
 * true and *ret, or false when it writes none or null. */
static bool op_integer(const struct op *op, const struct store_column *c,
                       const struct op *ops, int64_t *ret) {
        struct json_object *v;
        int64_t n;

        if (!op->values ||
            !json_object_object_get_ex(op->values, c->name, &v) || !v)
                return false;
        if (json_int64(v, ret))
                return true;
        if (ops && json_ref(v, &n)) {
                *ret = ops[n].result;
                return true;
        }
        return false;
}

/* Counts the rows of sql (one bound integer). Returns >= 0 or -errno. */
_printf_(3, 4) static int64_t
        count_rows(struct store *s, int64_t bound, const char *format, ...) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        _cleanup_free_ char *sql = NULL;
        va_list ap;
        int k, rc;

        va_start(ap, format);
        k = vasprintf(&sql, format, ap);
        va_end(ap);
        if (k < 0) {
                sql = NULL;
                return -ENOMEM;
        }
        rc = sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL);
        if (rc != SQLITE_OK)
                return step_errno(s, rc);
        (void) sqlite3_bind_int64(stmt, 1, bound);
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
                return step_errno(s, rc);
        return sqlite3_column_int64(stmt, 0);
}

/* After a FOREIGN KEY failure of an insert or update of t (SQLite does not
 * say which key): finds the reference to a missing row, or the referenced
 * column that cannot change. Returns -EINVAL with the error filled. */
static int fk_write_error(struct apply *a, const struct store_table *t,
                          const struct op *op, const struct op *ops) {
        for (size_t i = 0; i < a->s->n_fks; i++) {
                const struct store_fk *fk = a->s->fks + i;
                const struct store_column *c =
                        fk->child->columns + fk->child_column;
                const char *pname = fk->parent->columns[fk->parent_column].name;
                int64_t key, n;

                if (fk->child != t || !op_integer(op, c, ops, &key))
                        continue;
                n = count_rows(a->s, key,
                               "SELECT count(*) FROM \"%s\" WHERE \"%s\" = ?",
                               fk->parent->name, pname);
                if (n < 0)
                        return internal_error(a, (int) n,
                                              "checking a reference");
                if (n == 0)
                        return set_error(
                                a->error, -EINVAL, "invalid", c->name,
                                "%s: \"%s\" refers to %s with %s %" PRIi64
                                ", which does not exist",
                                t->name, c->name, fk->parent->name, pname, key);
        }
        for (size_t i = 0; op->kind == OP_UPDATE && i < a->s->n_fks; i++) {
                const struct store_fk *fk = a->s->fks + i;
                const struct store_column *pc =
                        fk->parent->columns + fk->parent_column;
                int64_t n;

                if (fk->parent != t ||
                    !json_object_object_get_ex(op->values, pc->name, NULL))
                        continue;
                n = count_rows(a->s, op->id,
                               "SELECT count(*) FROM \"%s\" WHERE \"%s\" = "
                               "(SELECT \"%s\" FROM \"%s\" WHERE \"id\" = ?)",
                               fk->child->name,
                               fk->child->columns[fk->child_column].name,
                               pc->name, t->name);
                if (n < 0)
                        return internal_error(a, (int) n,
                                              "checking a reference");
                if (n > 0)
                        return set_error(a->error, -EINVAL, "invalid", pc->name,
                                         "%s: \"%s\" cannot change while %s "
                                         "refers to it",
                                         t->name, pc->name, fk->child->name);
        }
        return set_error(a->error, -EINVAL, "invalid", NULL,
                         "%s: a reference to another table is not valid",
                         t->name);
}

/* The column named in an SQLite message at p ("t.col", up to ',' or the
 * end), or NULL. */
static const struct store_column *message_column(const struct store_table *t,
                                                 const char *p) {
        size_t n = strlen(t->name), k;

        if (strncmp(p, t->name, n) != 0 || p[n] != '.')
                return NULL;
        p += n + 1;
        k = strcspn(p, ", ");
        return column_find_n(t, p, k);
}

/* Turns a failed insert or update of t (rc from sqlite3_step) into the
 * transaction's error: constraint failures are "invalid" with the column
 * when one can be named; anything else is internal. */
static int write_failed(struct apply *a, const struct store_table *t,
                        const struct op *op, const struct op *ops, int rc) {
        char message[256], shown_value[HAVEN_TEXT_SHOWN_MAX + 4];
        const struct store_column *c;
        const char *p;
        int ext;

        if ((rc & 0xff) != SQLITE_CONSTRAINT)
                return internal_error(a, step_errno(a->s, rc), "writing a row");
        ext = sqlite3_extended_errcode(a->s->db);
        (void) snprintf(message, sizeof message, "%s",
                        sqlite3_errmsg(a->s->db));
        log_debug("Store: %s: %s", t->name, message);

        switch (ext) {
        case SQLITE_CONSTRAINT_CHECK: {
                /* "CHECK constraint failed: column: must be ..." */
                const char *name = strstr(message, "failed: "), *colon;

                if (!name)
                        break;
                name += strlen("failed: ");
                colon = strstr(name, ": ");
                if (!colon)
                        return set_error(a->error, -EINVAL, "invalid", NULL,
                                         "%s: a value is not allowed (%s)",
                                         t->name, name);
                c = column_find_n(t, name, (size_t) (colon - name));
                if (c && strncmp(colon + 2, "must", 4) == 0)
                        return set_error(a->error, -EINVAL, "invalid", c->name,
                                         "%s: \"%s\" %s", t->name, c->name,
                                         colon + 2);
                return set_error(a->error, -EINVAL, "invalid",
                                 c ? c->name : NULL, "%s: %s", t->name,
                                 colon + 2);
        }
        case SQLITE_CONSTRAINT_NOTNULL:
                p = strstr(message, "failed: ");
                c = p ? message_column(t, p + strlen("failed: ")) : NULL;
                if (!c)
                        break;
                return set_error(a->error, -EINVAL, "invalid", c->name,
                                 "%s: \"%s\" is required", t->name, c->name);
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY: {
                struct strbuf list = {};
                _cleanup_free_ char *columns = NULL;
                struct json_object *v = NULL;

                p = strstr(message, "failed: ");
                c = p ? message_column(t, p + strlen("failed: ")) : NULL;
                if (!c)
                        break;
                /* "t.a, t.b" → "a, b" */
                for (p += strlen("failed: "); p && *p;) {
                        const struct store_column *k = message_column(t, p);

                        if (k)
                                strbuf_printf(&list, "%s%s",
                                              list.len ? ", " : "", k->name);
                        p = strchr(p, ',');
                        if (p)
                                p += strspn(p, ", ");
                }
                if (strbuf_take(&list, &columns) < 0)
                        return set_error(a->error, -ENOMEM, "internal", NULL,
                                         "out of memory");
                if (!strchr(columns, ',') && op->values)
                        (void) json_object_object_get_ex(op->values, c->name,
                                                         &v);
                if (json_object_is_type(v, json_type_string))
                        return set_error(
                                a->error, -EINVAL, "invalid", c->name,
                                "%s: the %s \"%s\" is already used", t->name,
                                c->name,
                                haven_text_shown(json_object_get_string(v), shown_value));
                if (json_object_is_type(v, json_type_int))
                        return set_error(
                                a->error, -EINVAL, "invalid", c->name,
                                "%s: the %s %" PRIi64 " is already used",
                                t->name, c->name, json_object_get_int64(v));
                return set_error(a->error, -EINVAL, "invalid", c->name,
                                 "%s: another row already has the same %s",
                                 t->name, columns);
        }
        case SQLITE_CONSTRAINT_FOREIGNKEY:
        case SQLITE_CONSTRAINT_TRIGGER: /* how RESTRICT reports itself */
                return fk_write_error(a, t, op, ops);
        case SQLITE_CONSTRAINT_DATATYPE:
                /* "cannot store TEXT value in INTEGER column t.c" */
                p = strstr(message, " column ");
                c = p ? message_column(t, p + strlen(" column ")) : NULL;
                if (!c)
                        break;
                return set_error(a->error, -EINVAL, "invalid", c->name,
                                 "%s: \"%s\" %s", t->name, c->name,
                                 type_expected(c));
        default:
                break;
        }
        return set_error(a->error, -EINVAL, "invalid", NULL, "%s: %s", t->name,
                         message);
}

/* Inserts op->values into op->table; adds the new row's hash. Returns 0 and
 * *ret_id, or a negative errno with the error filled. */
static int exec_insert(struct apply *a, const struct op *op,
                       const struct op *ops, int64_t *ret_id) {
        const struct store_table *t = op->table;
        _cleanup_(stmt_releasep) sqlite3_stmt *stmt = NULL, *row = NULL;
        struct write_set w;
        int64_t id;
        uint64_t h;
        int rc, r;

        write_set_collect(t, op->values, true, &w);
        r = write_statement(a->s, t, false, w.columns, &stmt);
        if (r < 0)
                return internal_error(a, r, "preparing an insert");
        r = bind_columns(a, stmt, t, &w, ops);
        if (r < 0)
                return internal_error(a, r, "binding a value");
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE)
                return write_failed(a, t, op, ops, rc);
        id = sqlite3_last_insert_rowid(a->s->db);
        stmt_release(TAKE_PTR(stmt));

        r = row_fetch(a->s, t, id, &row);
        if (r == 0)
                r = -EIO;
        if (r >= 0)
                r = row_hash(t, row, &h);
        if (r < 0)
                return internal_error(a, r, "reading a new row");
        a->checksum += h;
        *ret_id = id;
        return 0;
}

/* Fetches row op->id of op->table and checks expect_version. Returns 0 and
 * *ret_row, or -ENOENT / -ESTALE / another errno with the error filled. */
static int row_for_change(struct apply *a, const struct op *op,
                          sqlite3_stmt **ret_row) {
        _cleanup_(stmt_releasep) sqlite3_stmt *row = NULL;
        char what[HAVEN_TEXT_SHOWN_MAX + 80];
        int64_t version;
        int r;

        r = row_fetch(a->s, op->table, op->id, &row);
        if (r < 0)
                return internal_error(a, r, "reading a row");
        if (r == 0)
                return not_found(a, op->table, op->id);
        version = sqlite3_column_int64(row, (int) op->table->version_column);
        if (op->has_expect_version && version != op->expect_version) {
                row_describe(op->table, row, what, sizeof what);
                return set_error(a->error, -ESTALE, "conflict", NULL,
                                 "%s was changed by someone else (it is at "
                                 "version %" PRIi64 ", this change expected "
                                 "%" PRIi64 ")",
                                 what, version, op->expect_version);
        }
        *ret_row = TAKE_PTR(row);
        return 0;
}

static int exec_update(struct apply *a, const struct op *op,
                       const struct op *ops) {
        const struct store_table *t = op->table;
        _cleanup_(stmt_releasep) sqlite3_stmt *stmt = NULL, *row = NULL;
        struct write_set w;
        uint64_t old_hash, new_hash;
        int rc, r;

        r = row_for_change(a, op, &row);
        if (r < 0)
                return r;
        r = row_hash(t, row, &old_hash);
        if (r < 0)
                return internal_error(a, r, "hashing a row");
        stmt_release(TAKE_PTR(row));

        write_set_collect(t, op->values, false, &w);
        r = write_statement(a->s, t, true, w.columns, &stmt);
        if (r < 0)
                return internal_error(a, r, "preparing an update");
        r = bind_columns(a, stmt, t, &w, ops);
        if (r < 0)
                return internal_error(a, r, "binding a value");
        (void) sqlite3_bind_int64(stmt, r + 1, op->id);
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE)
                return write_failed(a, t, op, ops, rc);
        stmt_release(TAKE_PTR(stmt));

        r = row_fetch(a->s, t, op->id, &row);
        if (r == 0)
                r = -EIO;
        if (r >= 0)
                r = row_hash(t, row, &new_hash);
        if (r < 0)
                return internal_error(a, r, "reading a changed row");
        a->checksum += new_hash - old_hash;
        return 0;
}

/* After a FOREIGN KEY failure deleting row id of t (what describes it):
 * names the table that still refers to it. */
static int fk_delete_error(struct apply *a, const struct store_table *t,
                           int64_t id, const char *what) {
        for (size_t i = 0; i < a->s->n_fks; i++) {
                const struct store_fk *fk = a->s->fks + i;
                int64_t n;

                if (fk->parent != t || fk->cascade)
                        continue;
                n = count_rows(a->s, id,
                               "SELECT count(*) FROM \"%s\" WHERE \"%s\" = "
                               "(SELECT \"%s\" FROM \"%s\" WHERE \"id\" = ?)",
                               fk->child->name,
                               fk->child->columns[fk->child_column].name,
                               t->columns[fk->parent_column].name, t->name);
                if (n < 0)
                        return internal_error(a, (int) n,
                                              "checking a reference");
                if (n > 0)
                        return set_error(
                                a->error, -EINVAL, "invalid", NULL,
                                "%s is still used: %" PRIi64
                                " row%s of %s refer%s to it (%s)",
                                what, n, n == 1 ? "" : "s", fk->child->name,
                                n == 1 ? "s" : "",
                                fk->child->columns[fk->child_column].name);
        }
        return set_error(a->error, -EINVAL, "invalid", NULL,
                         "%s is still used by other rows", what);
}

static int delete_row(struct apply *a, const struct store_table *t, int64_t id,
                      unsigned depth);

/* Deletes, row by row and in id order, the rows of fk->child that refer to
 * row parent_id of fk->parent. */
static int delete_children(struct apply *a, struct store_fk *fk,
                           int64_t parent_id, unsigned depth) {
        _cleanup_(stmt_releasep) sqlite3_stmt *stmt = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int rc, r;

        r = stmt_borrow(
                a->s, &fk->select_children, &stmt,
                "SELECT \"id\" FROM \"%s\" WHERE \"%s\" = (SELECT "
                "\"%s\" FROM \"%s\" WHERE \"id\" = ?) ORDER BY \"id\"",
                fk->child->name, fk->child->columns[fk->child_column].name,
                fk->parent->columns[fk->parent_column].name, fk->parent->name);
        if (r < 0)
                return internal_error(a, r, "finding dependent rows");
        (void) sqlite3_bind_int64(stmt, 1, parent_id);
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                int64_t *p = reallocarray(ids, n + 1, sizeof *ids);

                if (!p)
                        return internal_error(a, -ENOMEM,
                                              "finding dependent rows");
                ids = p;
                ids[n++] = sqlite3_column_int64(stmt, 0);
        }
        if (rc != SQLITE_DONE)
                return internal_error(a, step_errno(a->s, rc),
                                      "finding dependent rows");
        /* Before the cascade, which may come back to this key. */
        stmt_release(TAKE_PTR(stmt));

        for (size_t i = 0; i < n; i++) {
                r = delete_row(a, fk->child, ids[i], depth + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Deletes row id of t and, first, every row that ON DELETE CASCADE would
 * take with it: each one hashed out of the checksum here, where SQLite's own
 * cascade would remove it unseen. */
static int delete_row(struct apply *a, const struct store_table *t, int64_t id,
                      unsigned depth) {
        _cleanup_(stmt_releasep) sqlite3_stmt *row = NULL, *stmt = NULL;
        char what[HAVEN_TEXT_SHOWN_MAX + 80];
        uint64_t h;
        int rc, r;

        if (depth > STORE_CASCADE_DEPTH_MAX)
                return internal_error(a, -ELOOP, "following cascades");
        r = row_fetch(a->s, t, id, &row);
        if (r < 0)
                return internal_error(a, r, "reading a row");
        if (r == 0)
                return not_found(a, t, id);
        r = row_hash(t, row, &h);
        if (r < 0)
                return internal_error(a, r, "hashing a row");
        row_describe(t, row, what, sizeof what);
        /* Before the cascade, which may read t again. */
        stmt_release(TAKE_PTR(row));

        for (size_t i = 0; i < a->s->n_fks; i++) {
                struct store_fk *fk = a->s->fks + i;

                if (fk->parent != t || !fk->cascade)
                        continue;
                r = delete_children(a, fk, id, depth);
                if (r < 0)
                        return r;
        }

        r = stmt_borrow(a->s, &t->statements->delete_row, &stmt,
                        "DELETE FROM \"%s\" WHERE \"id\" = ?", t->name);
        if (r < 0)
                return internal_error(a, r, "preparing a delete");
        (void) sqlite3_bind_int64(stmt, 1, id);
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE) {
                /* Only a reference can stop a delete (RESTRICT reports
                 * itself as SQLITE_CONSTRAINT_TRIGGER, NO ACTION as
                 * _FOREIGNKEY). */
                log_debug("Store: deleting %s: %s (%d)", what,
                          sqlite3_errmsg(a->s->db),
                          sqlite3_extended_errcode(a->s->db));
                if ((rc & 0xff) == SQLITE_CONSTRAINT)
                        return fk_delete_error(a, t, id, what);
                return internal_error(a, step_errno(a->s, rc),
                                      "deleting a row");
        }
        a->checksum -= h;
        return 0;
}

static int exec_delete(struct apply *a, const struct op *op) {
        _cleanup_(stmt_releasep) sqlite3_stmt *row = NULL;
        int r;

        r = row_for_change(a, op, &row);
        if (r < 0)
                return r;
        stmt_release(TAKE_PTR(row));
        return delete_row(a, op->table, op->id, 0);
}

/* The ids of every row of t, in id order. Returns the count or -errno. */
static ssize_t table_ids(struct apply *a, const struct store_table *t,
                         int64_t **ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int rc, r;

        r = prepare(a->s, &stmt, "SELECT \"id\" FROM \"%s\" ORDER BY \"id\"",
                    t->name);
        if (r < 0)
                return internal_error(a, r, "listing rows");
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                int64_t *p = reallocarray(ids, n + 1, sizeof *ids);

                if (!p)
                        return internal_error(a, -ENOMEM, "listing rows");
                ids = p;
                ids[n++] = sqlite3_column_int64(stmt, 0);
        }
        if (rc != SQLITE_DONE)
                return internal_error(a, step_errno(a->s, rc), "listing rows");
        *ret = TAKE_PTR(ids);
        return (ssize_t) n;
}

static int exec_stage(struct apply *a, const struct op *op, int64_t *ret_id) {
        _cleanup_(json_object_putp) struct json_object *values = NULL;
        struct op insert;
        int r;

        values = json_object_new_object();
        if (!values)
                return internal_error(a, -ENOMEM, "staging");
        r = add_value(values, "ops", json_object_get(op->ops), false);
        if (r >= 0)
                r = add_value(values, "summary",
                              json_object_new_string(op->summary), false);
        if (r < 0)
                return internal_error(a, r, "staging");
        insert = (struct op){.kind = OP_INSERT,
                             .table = table_find(a->s, "staged_changes"),
                             .values = values};
        return exec_insert(a, &insert, NULL, ret_id);
}

static int exec_discard(struct apply *a) {
        const struct store_table *t = table_find(a->s, "staged_changes");
        _cleanup_free_ int64_t *ids = NULL;
        ssize_t n;
        int r;

        n = table_ids(a, t, &ids);
        if (n < 0)
                return (int) n;
        for (ssize_t i = 0; i < n; i++) {
                r = delete_row(a, t, ids[i], 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int ops_exec(struct apply *a, struct op *ops, size_t n);

struct staged {
        int64_t id;
        char *ops;
        char *summary;
};

static void staged_free_many(struct staged *c, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(c[i].ops);
                free(c[i].summary);
        }
        free(c);
}

/* Applies one staged change's ops; on failure the error names the change
 * and its op. */
static int activate_one(struct apply *a, const struct staged *c) {
        _cleanup_(json_object_putp) struct json_object *json = NULL;
        _cleanup_free_ struct op *ops = NULL;
        char summary[HAVEN_TEXT_SHOWN_MAX + 4], op_part[HAVEN_TEXT_SHOWN_MAX + 8] = "";
        size_t n;
        int r;

        r = haven_json_parse(c->ops, strlen(c->ops), STORE_JSON_TEXT_MAX,
                             &json);
        if (r < 0)
                r = set_error(a->error, -EINVAL, "invalid", NULL,
                              "its ops are not valid JSON");
        if (r >= 0)
                r = ops_parse(a->s, json, true, &ops, &n, a->error);
        if (r >= 0)
                r = ops_exec(a, ops, n);
        if (r >= 0)
                return 0;

        if (c->summary[0])
                (void) snprintf(op_part, sizeof op_part, " (\"%s\")",
                                haven_text_shown(c->summary, summary));
        if (a->error->op_index >= 0)
                error_prefix(a->error,
                             "staged change %" PRIi64 "%s, op %d: ", c->id,
                             op_part, a->error->op_index);
        else
                error_prefix(a->error, "staged change %" PRIi64 "%s: ", c->id,
                             op_part);
        /* The activate op is the one that failed. */
        a->error->op_index = -1;
        return r;
}

/* Applies every staged change in order, deletes them, increments
 * cluster.config_version and creates the activation's job. */
static int exec_activate(struct apply *a, int64_t *ret_job) {
        const struct store_table *staged = table_find(a->s, "staged_changes");
        const struct store_table *cluster = table_find(a->s, "cluster");
        _cleanup_(json_object_putp) struct json_object *cluster_values = NULL,
                                                       *job_values = NULL;
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        struct staged *changes = NULL;
        size_t n = 0;
        int64_t config_version;
        struct op op;
        int rc, r;

        r = prepare(a->s, &stmt,
                    "SELECT id, ops, summary FROM staged_changes ORDER BY id");
        if (r < 0)
                return internal_error(a, r, "reading staged changes");
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                struct staged *p = reallocarray(changes, n + 1, sizeof *p);
                const char *ops = (const char *) sqlite3_column_text(stmt, 1);
                const char *summary =
                        (const char *) sqlite3_column_text(stmt, 2);

                if (!p) {
                        staged_free_many(changes, n);
                        return internal_error(a, -ENOMEM, "activating");
                }
                changes = p;
                changes[n] = (struct staged){
                        .id = sqlite3_column_int64(stmt, 0),
                        .ops = strdup(ops ? ops : ""),
                        .summary = strdup(summary ? summary : ""),
                };
                n++;
                if (!changes[n - 1].ops || !changes[n - 1].summary) {
                        staged_free_many(changes, n);
                        return internal_error(a, -ENOMEM, "activating");
                }
        }
        (void) sqlite3_finalize(TAKE_PTR(stmt));
        if (rc != SQLITE_DONE) {
                staged_free_many(changes, n);
                return internal_error(a, -EIO, "reading staged changes");
        }
        if (n == 0)
                return set_error(a->error, -EINVAL, "invalid", NULL,
                                 "nothing to activate: there are no staged "
                                 "changes");

        for (size_t i = 0; i < n; i++) {
                r = activate_one(a, changes + i);
                if (r < 0) {
                        staged_free_many(changes, n);
                        return r;
                }
        }
        for (size_t i = 0; i < n; i++) {
                r = delete_row(a, staged, changes[i].id, 0);
                if (r < 0) {
                        staged_free_many(changes, n);
                        return r;
                }
        }
        staged_free_many(changes, n);

        r = prepare(a->s, &stmt,
                    "SELECT config_version FROM cluster WHERE id = 1");
        if (r < 0)
                return internal_error(a, r, "reading the cluster");
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
                return set_error(a->error, -EINVAL, "invalid", NULL,
                                 "there is no cluster yet to activate a "
                                 "configuration in");
        if (rc != SQLITE_ROW)
                return internal_error(a, step_errno(a->s, rc),
                                      "reading the cluster");
        config_version = sqlite3_column_int64(stmt, 0);
        (void) sqlite3_finalize(TAKE_PTR(stmt));
        if (config_version == INT64_MAX)
                return internal_error(a, -EOVERFLOW, "activating");

        cluster_values = json_object_new_object();
        job_values = json_object_new_object();
        if (!cluster_values || !job_values)
                return internal_error(a, -ENOMEM, "activating");
        r = add_value(cluster_values, "config_version",
                      json_object_new_int64(config_version + 1), false);
        if (r >= 0)
                r = add_value(job_values, "kind",
                              json_object_new_string("activate"), false);
        if (r >= 0)
                r = add_value(job_values, "state",
                              json_object_new_string("running"), false);
        if (r >= 0)
                r = add_value(job_values, "config_version",
                              json_object_new_int64(config_version + 1), false);
        if (r < 0)
                return internal_error(a, r, "activating");

        op = (struct op){.kind = OP_UPDATE,
                         .table = cluster,
                         .id = 1,
                         .values = cluster_values};
        r = exec_update(a, &op, NULL);
        if (r < 0)
                return r;
        op = (struct op){.kind = OP_INSERT,
                         .table = table_find(a->s, "jobs"),
                         .values = job_values};
        return exec_insert(a, &op, NULL, ret_job);
}

/* Applies parsed ops in order; ops[i].result gets the id op i inserted (or
 * 0). On failure the error's op_index names the op (if nothing inside
 * did). */
static int ops_exec(struct apply *a, struct op *ops, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const struct op *op = ops + i;
                int r;

                switch (op->kind) {
                case OP_INSERT:
                        r = exec_insert(a, op, ops, &ops[i].result);
                        break;
                case OP_UPDATE:
                        r = exec_update(a, op, ops);
                        break;
                case OP_DELETE:
                        r = exec_delete(a, op);
                        break;
                case OP_STAGE:
                        r = exec_stage(a, op, &ops[i].result);
                        break;
                case OP_ACTIVATE:
                        r = exec_activate(a, &ops[i].result);
                        break;
                case OP_DISCARD:
                        r = exec_discard(a);
                        break;
                default:
                        assert_not_reached();
                }
                if (r < 0) {
                        if (a->error->op_index < 0)
                                a->error->op_index = (int) i;
                        return r;
                }
        }
        return 0;
}

/* ==== Transactions ==== */

/* A summary of the ops for the audit log when the submitter gave none:
 * `insert vms "web1", update vms 5, activate`. */
static int audit_summary(const struct op *ops, size_t n, char **ret) {
        struct strbuf b = {};

        for (size_t i = 0; i < n && b.len <= STORE_AUDIT_DETAIL_MAX; i++) {
                const struct op *op = ops + i;
                const char *name;

                strbuf_printf(&b, "%s%s", i ? ", " : "",
                              op_kind_names[op->kind]);
                if (op->table)
                        strbuf_printf(&b, " %s", op->table->name);
                if (op->kind == OP_INSERT &&
                    haven_json_get_string(op->values, "name", &name) >= 0)
                        strbuf_printf(&b, " \"%s\"", name);
                else if (op->kind == OP_UPDATE || op->kind == OP_DELETE)
                        strbuf_printf(&b, " %" PRIi64, op->id);
                else if (op->kind == OP_STAGE && op->summary[0])
                        strbuf_printf(&b, " \"%s\"", op->summary);
        }
        return strbuf_take(&b, ret);
}

static int audit_write(struct apply *a, const struct op *ops, size_t n) {
        _cleanup_(json_object_putp) struct json_object *values = NULL;
        char detail[STORE_AUDIT_DETAIL_MAX + 1], action[128];
        struct op insert;
        int64_t id;
        int r;

        if (a->tx->audit && a->tx->audit[0])
                haven_text_copy_cut(detail, sizeof detail, a->tx->audit);
        else {
                char *summary = NULL;

                r = audit_summary(ops, n, &summary);
                if (r < 0)
                        return internal_error(a, r, "writing the audit log");
                haven_text_copy_cut(detail, sizeof detail, summary);
                free(summary);
        }
        (void) snprintf(action, sizeof action, "%s%s%s",
                        op_kind_names[ops[0].kind], ops[0].table ? " " : "",
                        ops[0].table ? ops[0].table->name : "");

        values = json_object_new_object();
        if (!values)
                return internal_error(a, -ENOMEM, "writing the audit log");
        r = add_value(values, "time",
                      json_object_new_int64((int64_t) a->tx->time_usec), false);
        if (r >= 0)
                r = add_value(values, "actor",
                              json_object_new_string(a->tx->actor ? a->tx->actor
                                                                  : ""),
                              false);
        if (r >= 0)
                r = add_value(
                        values, "node",
                        json_object_new_string(a->tx->node ? a->tx->node : ""),
                        false);
        if (r >= 0)
                r = add_value(values, "action", json_object_new_string(action),
                              false);
        if (r >= 0)
                r = add_value(values, "detail", json_object_new_string(detail),
                              false);
        if (r < 0)
                return internal_error(a, r, "writing the audit log");
        insert = (struct op){
                .kind = OP_INSERT, .table = a->s->audit, .values = values};
        return exec_insert(a, &insert, NULL, &id);
}

static int result_new(uint64_t version, const struct op *ops, size_t n,
                      struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *results;
        int r;

        o = json_object_new_object();
        results = json_object_new_array_ext((int) n);
        if (!o || !results) {
                json_object_put(results);
                return -ENOMEM;
        }
        r = add_value(o, "version", json_object_new_int64((int64_t) version),
                      false);
        if (r < 0) {
                json_object_put(results);
                return r;
        }
        r = add_value(o, "results", results, false);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                struct json_object *item = json_object_new_object();

                if (!item)
                        return -ENOMEM;
                if (json_object_array_add(results, item) < 0) {
                        json_object_put(item);
                        return -ENOMEM;
                }
                if (ops[i].kind == OP_INSERT || ops[i].kind == OP_STAGE ||
                    ops[i].kind == OP_ACTIVATE) {
                        r = add_value(item, "id",
                                      json_object_new_int64(ops[i].result),
                                      false);
                        if (r < 0)
                                return r;
                }
        }
        *ret = TAKE_PTR(o);
        return 0;
}

static int tx_begin(struct store *s) {
        return control_run(s, s->in_batch ? CONTROL_SAVEPOINT : CONTROL_BEGIN);
}

/* Makes the transaction's changes stick (in the batch, or committed). On
 * failure nothing is committed; the caller calls tx_abort(). */
static int tx_end(struct store *s) {
        return control_run(s, s->in_batch ? CONTROL_RELEASE : CONTROL_COMMIT);
}

/* Undoes the transaction. In a batch, the earlier applies stay, unless
 * SQLite ended the whole SQLite transaction itself (disk full, I/O error):
 * then the batch is lost, the in-memory state goes back to its start and
 * every further apply and store_batch_end() fail. */
static void tx_abort(struct store *s, int r) {
        if (!s->in_batch) {
                (void) rollback(s);
                return;
        }
        if (!sqlite3_get_autocommit(s->db) &&
            control_run(s, CONTROL_ROLLBACK_TO) >= 0 &&
            control_run(s, CONTROL_RELEASE) >= 0)
                return;
        (void) rollback(s);
        s->batch_error = r < 0 ? r : -EIO;
        s->version = s->batch_version;
        s->checksum = s->batch_checksum;
}

int store_apply(struct store *s, const struct store_tx *tx,
                struct json_object **ret_result,
                struct store_error *ret_error) {
        _cleanup_(json_object_putp) struct json_object *result = NULL;
        _cleanup_free_ struct op *ops = NULL;
        struct store_error local = {.op_index = -1};
        struct store_error *e = ret_error ? ret_error : &local;
        struct apply a;
        size_t n;
        int r;

        assert(s);
        assert(tx);

        *e = (struct store_error){.op_index = -1};
        if (ret_result)
                *ret_result = NULL;

        if (s->in_batch && s->batch_error < 0)
                return set_error(e, s->batch_error, "internal", NULL,
                                 "an earlier failure ended this batch of "
                                 "transactions");
        if (tx->time_usec > INT64_MAX)
                return set_error(e, -EINVAL, "invalid", NULL,
                                 "the transaction's time is out of range");

        /* Everything that can be checked without the database is, before
         * any of it changes. */
        r = ops_parse(s, tx->ops, false, &ops, &n, e);
        if (r < 0)
                return r;

        a = (struct apply){
                .s = s,
                .tx = tx,
                .version = s->version + 1,
                .checksum = s->checksum,
                .error = e,
        };

        r = tx_begin(s);
        if (r < 0) {
                tx_abort(s, r);
                return internal_error(&a, r, "starting a transaction");
        }
        r = ops_exec(&a, ops, n);
        if (r >= 0)
                r = audit_write(&a, ops, n);
        if (r >= 0) {
                r = state_write(s, a.version, a.checksum);
                if (r < 0)
                        (void) internal_error(&a, r, "saving the version");
        }
        if (r >= 0 && ret_result) {
                r = result_new(a.version, ops, n, &result);
                if (r < 0)
                        (void) internal_error(&a, r, "building the result");
        }
        if (r >= 0) {
                r = tx_end(s);
                if (r < 0)
                        (void) internal_error(&a, r, "committing");
        }
        if (r < 0) {
                tx_abort(s, r);
                return r;
        }

        s->version = a.version;
        s->checksum = a.checksum;
        if (ret_result)
                *ret_result = TAKE_PTR(result);
        return 0;
}

int store_batch_begin(struct store *s) {
        int r;

        assert(s);
        if (s->in_batch)
                return -EBUSY;
        r = control_run(s, CONTROL_BEGIN);
        if (r < 0)
                return r;
        s->in_batch = true;
        s->batch_error = 0;
        s->batch_version = s->version;
        s->batch_checksum = s->checksum;
        return 0;
}

int store_batch_end(struct store *s) {
        int r;

        assert(s);
        if (!s->in_batch)
                return -EINVAL;
        s->in_batch = false;
        r = s->batch_error;
        if (r >= 0)
                r = control_run(s, CONTROL_COMMIT);
        if (r < 0) {
                (void) rollback(s);
                s->version = s->batch_version;
                s->checksum = s->batch_checksum;
                return r;
        }
        return 0;
}

/* ==== Snapshots ==== */

/* A cell as it is stored: integer, string or null (the schema has no other
 * types). Returns 0 and *ret (NULL for null) or a negative errno. */
static int cell_raw(sqlite3_stmt *stmt, int i, struct json_object **ret) {
        switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_NULL:
                *ret = NULL;
                return 0;
        case SQLITE_INTEGER:
                *ret = json_object_new_int64(sqlite3_column_int64(stmt, i));
                break;
        case SQLITE_TEXT: {
                const char *p = (const char *) sqlite3_column_text(stmt, i);

                if (!p)
                        return -ENOMEM;
                *ret = json_object_new_string_len(
                        p, sqlite3_column_bytes(stmt, i));
                break;
        }
        default:
                return -EUCLEAN;
        }
        return *ret ? 0 : -ENOMEM;
}

static int snapshot_table(struct store *s, const struct store_table *t,
                          struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        struct json_object *columns, *rows;
        int rc, r;

        o = json_object_new_object();
        columns = json_object_new_array();
        rows = json_object_new_array();
        if (!o || !columns || !rows) {
                json_object_put(columns);
                json_object_put(rows);
                return -ENOMEM;
        }
        r = add_value(o, "columns", columns, false);
        if (r < 0) {
                json_object_put(rows);
                return r;
        }
        r = add_value(o, "rows", rows, false);
        if (r < 0)
                return r;
        for (size_t i = 0; i < t->n_columns; i++) {
                struct json_object *name =
                        json_object_new_string(t->columns[i].name);

                if (!name || json_object_array_add(columns, name) < 0) {
                        json_object_put(name);
                        return -ENOMEM;
                }
        }

        r = prepare(s, &stmt, "SELECT %s FROM \"%s\" ORDER BY \"id\"",
                    t->column_list, t->name);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                struct json_object *row =
                        json_object_new_array_ext((int) t->n_columns);

                if (!row || json_object_array_add(rows, row) < 0) {
                        json_object_put(row);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < t->n_columns; i++) {
                        struct json_object *cell;

                        r = cell_raw(stmt, (int) i, &cell);
                        if (r < 0)
                                return r;
                        if (json_object_array_add(row, cell) < 0) {
                                json_object_put(cell);
                                return -ENOMEM;
                        }
                }
        }
        if (rc != SQLITE_DONE)
                return step_errno(s, rc);
        *ret = TAKE_PTR(o);
        return 0;
}

int store_snapshot(struct store *s, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *tables;
        char hex[17];
        int r;

        assert(s);
        assert(ret);

        o = json_object_new_object();
        tables = json_object_new_object();
        if (!o || !tables) {
                json_object_put(tables);
                return -ENOMEM;
        }
        (void) snprintf(hex, sizeof hex, "%016" PRIx64, s->checksum);
        r = add_value(o, "version", json_object_new_int64((int64_t) s->version),
                      false);
        if (r >= 0)
                r = add_value(o, "checksum", json_object_new_string(hex),
                              false);
        if (r < 0) {
                json_object_put(tables);
                return r;
        }
        r = add_value(o, "tables", tables, false);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_tables; i++) {
                struct json_object *t = NULL;

                r = snapshot_table(s, s->tables + i, &t);
                if (r < 0)
                        return r;
                r = add_value(tables, s->tables[i].name, t, false);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

/* Checks the shape of one table of a snapshot: its columns are t's, in
 * order; every row is an array of as many cells. Returns 0 and *ret_rows or
 * -EBADMSG. */
static int snapshot_table_check(const struct store_table *t,
                                struct json_object *o,
                                struct json_object **ret_rows) {
        static const struct haven_json_field policy[] = {
                {"columns", HAVEN_JSON_ARRAY, true, false, 0, 0, NULL},
                {"rows", HAVEN_JSON_ARRAY, true, false, 0, 0, NULL},
        };
        struct json_object *columns, *rows;

        if (haven_json_check(o, policy, ELEMENTSOF(policy), NULL) < 0)
                return -EBADMSG;
        (void) haven_json_get_array(o, "columns", &columns);
        (void) haven_json_get_array(o, "rows", &rows);
        if (json_object_array_length(columns) != t->n_columns)
                return -EBADMSG;
        for (size_t i = 0; i < t->n_columns; i++) {
                struct json_object *c = json_object_array_get_idx(columns, i);

                if (!json_object_is_type(c, json_type_string) ||
                    !streq(json_object_get_string(c), t->columns[i].name))
                        return -EBADMSG;
        }
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int64_t id;

                if (!json_object_is_type(row, json_type_array) ||
                    json_object_array_length(row) != t->n_columns ||
                    !json_int64(json_object_array_get_idx(row, 0), &id))
                        return -EBADMSG;
        }
        *ret_rows = rows;
        return 0;
}

/* Inserts the rows of one snapshot table. -EBADMSG for a cell of a type the
 * column cannot hold or a row SQLite refuses (constraint). */
static int restore_rows(struct store *s, const struct store_table *t,
                        struct json_object *rows) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        struct strbuf params = {};
        _cleanup_free_ char *marks = NULL;
        int r;

        for (size_t i = 0; i < t->n_columns; i++)
                strbuf_printf(&params, "%s?", i ? ", " : "");
        r = strbuf_take(&params, &marks);
        if (r < 0)
                return r;
        r = prepare(s, &stmt, "INSERT INTO \"%s\" (%s) VALUES (%s)", t->name,
                    t->column_list, marks);
        if (r < 0)
                return r;

        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                struct json_object *row = json_object_array_get_idx(rows, i);
                int rc;

                for (size_t j = 0; j < t->n_columns; j++) {
                        struct json_object *v =
                                json_object_array_get_idx(row, j);
                        int64_t n;

                        if (!v)
                                rc = sqlite3_bind_null(stmt, (int) j + 1);
                        else if (json_int64(v, &n))
                                rc = sqlite3_bind_int64(stmt, (int) j + 1, n);
                        else if (json_object_is_type(v, json_type_string) &&
                                 !json_has_nul(v))
                                rc = sqlite3_bind_text(
                                        stmt, (int) j + 1,
                                        json_object_get_string(v),
                                        json_object_get_string_len(v),
                                        SQLITE_STATIC);
                        else
                                return -EBADMSG;
                        if (rc != SQLITE_OK)
                                return haven_db_errno(rc);
                }
                rc = sqlite3_step(stmt);
                if (rc != SQLITE_DONE) {
                        if ((rc & 0xff) == SQLITE_CONSTRAINT) {
                                log_debug(
                                        "Store: snapshot row of %s refused: %s",
                                        t->name, sqlite3_errmsg(s->db));
                                return -EBADMSG;
                        }
                        return step_errno(s, rc);
                }
                (void) sqlite3_reset(stmt);
                (void) sqlite3_clear_bindings(stmt);
        }
        return 0;
}

/* Inside the restore's transaction: replaces every table's rows, then
 * verifies references and the checksum. */
static int restore_content(struct store *s, struct json_object *const *rows,
                           uint64_t checksum) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        uint64_t sum;
        int rc, r;

        /* References are checked once, after everything is loaded. */
        r = haven_db_exec(s->db, "PRAGMA defer_foreign_keys = ON");
        if (r < 0)
                return r;
        /* Children first: RESTRICT acts at once, even when deferred. */
        for (size_t i = s->n_tables; i-- > 0;) {
                r = prepare(s, &stmt, "DELETE FROM \"%s\"", s->tables[i].name);
                if (r < 0)
                        return r;
                rc = sqlite3_step(stmt);
                (void) sqlite3_finalize(TAKE_PTR(stmt));
                if (rc != SQLITE_DONE)
                        return step_errno(s, rc);
        }
        for (size_t i = 0; i < s->n_tables; i++) {
                r = restore_rows(s, s->tables + i, rows[i]);
                if (r < 0)
                        return r;
        }

        r = prepare(s, &stmt, "PRAGMA foreign_key_check");
        if (r < 0)
                return r;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
                log_debug("Store: snapshot has a broken reference in %s",
                          (const char *) sqlite3_column_text(stmt, 0));
                return -EBADMSG;
        }
        if (rc != SQLITE_DONE)
                return step_errno(s, rc);

        r = checksum_full(s, &sum);
        if (r < 0)
                return r;
        if (sum != checksum) {
                log_debug("Store: snapshot content has checksum %016" PRIx64
                          ", it says %016" PRIx64,
                          sum, checksum);
                return -EBADMSG;
        }
        return 0;
}

int store_restore(struct store *s, struct json_object *snapshot) {
        static const struct haven_json_field policy[] = {
                {"version", HAVEN_JSON_INT, true, false, 0, INT64_MAX, NULL},
                {"checksum", HAVEN_JSON_STRING, true, false, 16, 16, NULL},
                {"tables", HAVEN_JSON_OBJECT, true, false, 0, 0, NULL},
        };
        _cleanup_free_ struct json_object **rows = NULL;
        struct json_object *tables;
        const char *hex;
        uint64_t checksum = 0;
        int64_t version;
        int r;

        assert(s);

        if (s->in_batch)
                return -EBUSY;
        if (haven_json_check(snapshot, policy, ELEMENTSOF(policy), NULL) < 0)
                return -EBADMSG;
        (void) haven_json_get_int64(snapshot, "version", &version);
        (void) haven_json_get_string(snapshot, "checksum", &hex);
        (void) haven_json_get_object(snapshot, "tables", &tables);
        for (size_t i = 0; i < 16; i++) {
                char c = hex[i];

                if (c >= '0' && c <= '9')
                        checksum = checksum << 4 | (uint64_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        checksum = checksum << 4 | (uint64_t) (c - 'a' + 10);
                else
                        return -EBADMSG;
        }

        if ((size_t) json_object_object_length(tables) != s->n_tables)
                return -EBADMSG;
        rows = calloc(s->n_tables, sizeof *rows);
        if (!rows)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_tables; i++) {
                struct json_object *t;

                if (!json_object_object_get_ex(tables, s->tables[i].name, &t))
                        return -EBADMSG;
                r = snapshot_table_check(s->tables + i, t, rows + i);
                if (r < 0)
                        return r;
        }

        r = haven_db_begin(s->db);
        if (r < 0)
                return r;
        r = restore_content(s, rows, checksum);
        if (r >= 0)
                r = state_write(s, (uint64_t) version, checksum);
        if (r >= 0)
                r = haven_db_commit(s->db);
        if (r < 0) {
                (void) haven_db_rollback(s->db);
                return r;
        }
        s->version = (uint64_t) version;
        s->checksum = checksum;
        return 0;
}

/* ==== Queries ==== */

/* A cell for the API: booleans as true/false, JSON columns parsed. */
static int cell_value(const struct store_column *c, sqlite3_stmt *stmt, int i,
                      struct json_object **ret) {
        const char *text;
        int r;

        if (sqlite3_column_type(stmt, i) == SQLITE_NULL) {
                *ret = NULL;
                return 0;
        }
        switch (c->value) {
        case SCHEMA_VALUE_BOOL:
                *ret = json_object_new_boolean(sqlite3_column_int64(stmt, i) !=
                                               0);
                return *ret ? 0 : -ENOMEM;
        case SCHEMA_VALUE_JSON:
                text = (const char *) sqlite3_column_text(stmt, i);
                if (!text)
                        return -ENOMEM;
                r = haven_json_parse(text,
                                     (size_t) sqlite3_column_bytes(stmt, i),
                                     STORE_JSON_TEXT_MAX, ret);
                return r == -EBADMSG || r == -E2BIG ? -EUCLEAN : r;
        default:
                return cell_raw(stmt, i, ret);
        }
}

int store_query(struct store *s, const char *table, struct json_object *where,
                struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *rows = NULL;
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        _cleanup_free_ char *sql = NULL;
        const struct store_table *t;
        struct strbuf b = {};
        int rc, i, r;

        assert(s);
        assert(table);
        assert(ret);

        t = table_find(s, table);
        if (!t)
                return -EINVAL;
        if (where && !json_object_is_type(where, json_type_object))
                return -EINVAL;

        strbuf_printf(&b, "SELECT %s FROM \"%s\"", t->column_list, t->name);
        if (where) {
                struct json_object_iterator it = json_object_iter_begin(where);
                struct json_object_iterator end = json_object_iter_end(where);

                for (i = 0; !json_object_iter_equal(&it, &end);
                     json_object_iter_next(&it), i++) {
                        const struct store_column *c =
                                column_find(t, json_object_iter_peek_name(&it));

                        if (!c || c->value == SCHEMA_VALUE_JSON) {
                                strbuf_done(&b);
                                return -EINVAL;
                        }
                        strbuf_printf(&b, "%s\"%s\" IS ?",
                                      i ? " AND " : " WHERE ", c->name);
                }
        }
        strbuf_printf(&b, " ORDER BY \"id\"");
        r = strbuf_take(&b, &sql);
        if (r < 0)
                return r;
        r = prepare(s, &stmt, "%s", sql);
        if (r < 0)
                return r;

        if (where) {
                struct json_object_iterator it = json_object_iter_begin(where);
                struct json_object_iterator end = json_object_iter_end(where);

                for (i = 1; !json_object_iter_equal(&it, &end);
                     json_object_iter_next(&it), i++) {
                        const struct store_column *c =
                                column_find(t, json_object_iter_peek_name(&it));
                        struct json_object *v =
                                json_object_iter_peek_value(&it);
                        int64_t n;

                        if (!v)
                                rc = sqlite3_bind_null(stmt, i);
                        else if (c->value == SCHEMA_VALUE_BOOL &&
                                 json_object_is_type(v, json_type_boolean))
                                rc = sqlite3_bind_int(
                                        stmt, i,
                                        json_object_get_boolean(v) ? 1 : 0);
                        else if (c->value == SCHEMA_VALUE_PLAIN &&
                                 c->type == COLUMN_INTEGER && json_int64(v, &n))
                                rc = sqlite3_bind_int64(stmt, i, n);
                        else if (c->value == SCHEMA_VALUE_PLAIN &&
                                 c->type == COLUMN_TEXT &&
                                 json_object_is_type(v, json_type_string) &&
                                 !json_has_nul(v))
                                rc = sqlite3_bind_text(
                                        stmt, i, json_object_get_string(v),
                                        json_object_get_string_len(v),
                                        SQLITE_STATIC);
                        else
                                return -EINVAL;
                        if (rc != SQLITE_OK)
                                return haven_db_errno(rc);
                }
        }

        rows = json_object_new_array();
        if (!rows)
                return -ENOMEM;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                struct json_object *row = json_object_new_object();

                if (!row || json_object_array_add(rows, row) < 0) {
                        json_object_put(row);
                        return -ENOMEM;
                }
                for (size_t j = 0; j < t->n_columns; j++) {
                        struct json_object *cell;

                        r = cell_value(t->columns + j, stmt, (int) j, &cell);
                        if (r < 0)
                                return r;
                        r = haven_json_add(row, t->columns[j].name, cell);
                        if (r < 0)
                                return r;
                }
        }
        if (rc != SQLITE_DONE)
                return step_errno(s, rc);
        *ret = TAKE_PTR(rows);
        return 0;
}

int store_checkpoint(struct store *s, int min_frames) {
        int log_frames = 0, checkpointed = 0, rc;

        assert(s);
        if (s->in_batch)
                return -EBUSY;
        if (s->wal_frames < min_frames)
                return 0;
        rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &checkpointed);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                return haven_db_errno(rc);
        if (checkpointed == log_frames)
                s->wal_frames = 0;
        return checkpointed;
}

int store_cascade_tables(struct store *s, const char *table, const char **ret,
                         size_t max) {
        const struct store_table *queue[64];
        size_t n = 0, head = 0;

        assert(s);
        queue[n] = table_find(s, table);
        if (!queue[n])
                return -ENOENT;
        n++;
        /* Breadth first over ON DELETE CASCADE keys; each table once. */
        while (head < n) {
                const struct store_table *t = queue[head++];

                for (size_t i = 0; i < s->n_fks; i++) {
                        const struct store_fk *fk = s->fks + i;
                        bool seen = false;

                        if (fk->parent != t || !fk->cascade)
                                continue;
                        for (size_t k = 0; k < n; k++)
                                seen = seen || queue[k] == fk->child;
                        if (seen)
                                continue;
                        if (n >= ELEMENTSOF(queue) || n - 1 >= max)
                                return -E2BIG;
                        queue[n++] = fk->child;
                }
        }
        for (size_t k = 1; k < n; k++)
                ret[k - 1] = queue[k]->name;
        return (int) (n - 1);
}
