/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SQLite schema of the configuration domain: the migrations that create
 * it, the list of replicated tables, and the few facts about columns that
 * SQL cannot say (which INTEGER is a boolean, which TEXT holds JSON, which
 * columns a transaction fills in itself). Owned by domaind-store.c, which
 * introspects everything else (columns, types, foreign keys) at open. Must
 * not: hold state, or create rows that could differ between members.
 */
#pragma once

#include "haven/db.h"

/* The migrations for haven_db_migrate(), oldest first. */
extern const struct haven_migration schema_migrations[];
extern const size_t schema_migrations_count;

/* The replicated tables, parents before the tables that refer to them,
 * NULL-terminated. Everything else in the database (domain_state) is local. */
extern const char *const schema_tables[];

/* What a transaction may do to a table (default: everything). */
enum {
        SCHEMA_NO_INSERT = 1u << 0,
        SCHEMA_NO_UPDATE = 1u << 1,
        SCHEMA_NO_DELETE = 1u << 2,
};

struct schema_table_rule {
        const char *table;
        unsigned flags;
        const char *why; /* "the audit log is written by the domain itself" */
};
extern const struct schema_table_rule schema_table_rules[];
extern const size_t schema_table_rules_count;

/* How a transaction's JSON value maps onto a column. */
enum schema_value {
        SCHEMA_VALUE_PLAIN, /* INTEGER ↔ JSON integer, TEXT ↔ JSON string */
        SCHEMA_VALUE_BOOL,  /* INTEGER 0/1 ↔ JSON true/false */
        SCHEMA_VALUE_JSON,  /* TEXT ↔ JSON array or object (compact text) */
};

/* What an insert puts into a column it does not name. */
enum schema_fill {
        SCHEMA_FILL_NONE,  /* the column's DEFAULT (a constant) */
        SCHEMA_FILL_TIME,  /* the transaction's time_usec */
        SCHEMA_FILL_ACTOR, /* the transaction's actor */
};

struct schema_column_rule {
        const char *table;
        const char *column;
        enum schema_value value;
        enum schema_fill fill;
};
extern const struct schema_column_rule schema_column_rules[];
extern const size_t schema_column_rules_count;
