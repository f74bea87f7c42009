/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven-domaind's shared state: the store, the corosync connection
 * (CPG + votequorum), the replication/sync state machine, the volatile status
 * map, and the local API's clients. One struct domain per process; every
 * module works on it from the single event loop.
 */
#pragma once

#include <sys/types.h>

#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <systemd/sd-event.h>

#include "domaind-store.h"
#include "haven/macro.h"
#include "haven/msg.h"
#include "haven/peer.h"

#define DOMAIN_GROUP "haven-domain"
#define DOMAIN_MEMBERS_MAX 64
#define DOMAIN_SOCKET_DEFAULT "/run/haven/domaind.sock"
#define DOMAIN_DB_DEFAULT "/var/lib/haven/haven.db"
#define DOMAIN_CHECK_INTERVAL_USEC (10 * 1000 * 1000ULL)
#define DOMAIN_FILE_CHECK_INTERVAL_USEC (2 * 1000 * 1000ULL)
#define DOMAIN_SNAPSHOT_CHUNK (256 * 1024)
/* The WAL is copied into the database from the housekeeping timer: when no
 * transaction came for DOMAIN_CHECKPOINT_IDLE_USEC, or when the log holds
 * DOMAIN_CHECKPOINT_FRAMES frames (about 40 MiB) even under a steady load.
 * A checkpoint blocks the loop for milliseconds, so it waits for a pause. */
#define DOMAIN_CHECKPOINT_FRAMES 10000
#define DOMAIN_CHECKPOINT_IDLE_USEC (2 * 1000 * 1000ULL)
#define DOMAIN_SUBMIT_OPS_MAX 1000
#define DOMAIN_STATUS_KEY_MAX 128
#define DOMAIN_STATUS_VALUE_MAX (64 * 1024)
#define DOMAIN_COROSYNC_DIR_DEFAULT "/etc/corosync"
#define DOMAIN_TOKEN_MS 1000u
#define DOMAIN_PEER_PORT_DEFAULT 8002

/* One node of corosync's nodelist. */
struct conf_node {
        uint32_t node_id;
        char name[64];
        char address[64];
};

/* CPG message types (first byte of every message). */
enum domain_msg_type {
        DOMAIN_MSG_TX = 'T',        /* a transaction */
        DOMAIN_MSG_STATE = 'S',     /* a member's version and checksum */
        DOMAIN_MSG_SNAPSHOT = 'P',  /* one part of the agreed content */
        DOMAIN_MSG_SYNC_DONE = 'D', /* the sync leader: everyone is equal */
        DOMAIN_MSG_CHECK = 'C',     /* compare states (or, with "sync", start a round) */
        DOMAIN_MSG_CHECK_STATE = 'K', /* a member's state at the check's delivery */
        DOMAIN_MSG_STATUS = 'M',    /* status map entries of the sender */
};

struct domain;

struct member {
        uint32_t node_id;
        uint32_t pid;
};

struct member_state {
        struct member member;
        uint64_t version;
        uint64_t checksum;
        bool received;
};

/* A transaction submitted on this node and not yet answered. */
struct pending {
        struct pending *next;
        uint64_t request_id;
        struct haven_msg_conn *conn;    /* reference; may be closed */
        struct json_object *tag;        /* echoed in the reply; owned */
        struct json_object *message;    /* the tx header as sent; owned */
        bool sent;
        /* Not writable yet (the cluster is being created or joined): wait
         * until this CLOCK_MONOTONIC time instead of failing at once. */
        uint64_t wait_deadline_usec;
        /* If set, called instead of replying on conn (conn may be NULL). */
        void (*done)(struct domain *d, struct pending *p, struct json_object *result,
                     const struct store_error *error);
        void *userdata;
};

/* A member's entry in the volatile status map. */
struct status_entry {
        struct status_entry *next;
        uint32_t node_id;
        char *key;
        struct json_object *value; /* owned */
};

struct subscriber {
        struct subscriber *next;
        struct haven_msg_conn *conn; /* reference */
        unsigned events;             /* SUBSCRIBE_* bits */
};

enum {
        SUBSCRIBE_COMMIT = 1 << 0,
        SUBSCRIBE_STATUS = 1 << 1,
        SUBSCRIBE_JOB_LOG = 1 << 2,
        SUBSCRIBE_MEMBERSHIP = 1 << 3,
};

/* A transaction applied in the current batch: answered after the commit. */
struct deferred {
        struct pending *pending;        /* ours, or NULL */
        struct json_object *result;     /* owned */
        struct store_error error;
        bool failed;
        struct json_object *event;      /* commit event, owned */
};

/* A message queued for multicast (CPG flow control may say "later"). */
struct outgoing {
        struct outgoing *next;
        size_t size;
        uint8_t data[];
};

struct domain {
        sd_event *event;
        struct store *store;
        const char *db_path;
        const char *socket_path;
        const char *corosync_dir;
        char node_name[64];
        bool is_node;           /* this node is in the domain's nodes table */
        sd_event_source *reset_source;

        /* ==== corosync ==== */
        cpg_handle_t cpg;
        bool cpg_connected;
        votequorum_handle_t votequorum;
        bool votequorum_connected;
        sd_event_source *cpg_source, *votequorum_source;
        sd_event_source *reconnect_timer;
        uint64_t reconnect_backoff_usec;
        uint32_t node_id;
        uint32_t pid;
        bool quorate;           /* votequorum's word */

        /* ==== membership and sync ==== */
        struct member members[DOMAIN_MEMBERS_MAX];
        size_t n_members;
        bool synced;            /* false from a membership change until sync-done */
        bool ever_synced;
        struct member_state states[DOMAIN_MEMBERS_MAX];
        size_t n_states;
        struct member sync_leader;
        bool need_snapshot;
        char *snapshot_buf;
        size_t snapshot_size, snapshot_parts_seen;
        sd_event_source *check_timer;
        /* The comparison in progress: states recorded at the delivery of
         * check `check_id`, while transactions go on. */
        struct member_state check_states[DOMAIN_MEMBERS_MAX];
        size_t n_check_states;
        int64_t check_id, next_check_id;
        sd_event_source *file_check_timer;
        uint64_t rounds;        /* sync rounds completed (for status) */
        uint64_t last_tx_usec;  /* CLOCK_MONOTONIC of the last applied transaction */
        /* The transactions of one dispatch round share one SQLite
         * transaction; their answers wait for its commit. */
        struct {
                struct deferred *items;
                size_t n, allocated;
                bool open, wanted;
        } batch;
        /* stream_quorate's answer, until the membership or nodes change. */
        bool quorum_cache_valid, quorum_cache_quorate;
        ino_t db_inode;         /* of the database file, to notice its removal */

        /* ==== messages ==== */
        struct outgoing *out_head, *out_tail;
        sd_event_source *send_timer;
        uint64_t next_request_id;
        struct pending *pending;

        /* ==== status map ==== */
        struct status_entry *status;

        /* ==== joining ==== */
        uint16_t peer_port;
        struct haven_peer_server *peer_server;
        struct haven_peer_credentials *peer_credentials;
        struct haven_msg_conn *join_conn;   /* the client waiting for its join */
        struct json_object *join_tag;
        bool join_fetching;
        uint64_t join_deadline_usec;

        /* ==== jobs ==== */
        int64_t job_logged;     /* the last activation job this node reported on */
        int64_t job_completed;  /* the last job this node marked done */

        /* ==== local API ==== */
        struct haven_msg_server *server;
        struct subscriber *subscribers;
};

/* The wall clock; only the originator of a transaction reads it. */
uint64_t domain_now_realtime_usec(void);

/* domaind-cpg.c: the corosync connection */
int cpg_connect(struct domain *d);
void cpg_disconnect(struct domain *d, const char *why);
/* Arms the reconnect timer (doubling backoff, 100 ms to 2 s). */
int cpg_schedule_reconnect(struct domain *d);
/* Queues a message for multicast (agreed order) and tries to send it.
 * Takes a copy. Returns 0 or -ENOTCONN / -ENOMEM. */
int domain_multicast(struct domain *d, const void *data, size_t size);
int domain_encode(enum domain_msg_type type, struct json_object *header,
                  const void *payload, size_t payload_size, uint8_t **ret,
                  size_t *ret_size);
int domain_multicast_json(struct domain *d, enum domain_msg_type type,
                          struct json_object *header);

/* domaind-sync.c: replication and sync */
void sync_membership_changed(struct domain *d, const struct cpg_address *members,
                             size_t n_members, const struct cpg_address *left,
                             size_t n_left);
void sync_deliver(struct domain *d, uint32_t node_id, uint32_t pid,
                  const uint8_t *msg, size_t size);
void sync_lost_corosync(struct domain *d);
/* Tells subscribers the membership and quorum as they are now. */
void sync_emit_membership(struct domain *d);
void sync_batch_begin(struct domain *d);
void sync_batch_end(struct domain *d);
int sync_start_timers(struct domain *d);
bool domain_is_writable(struct domain *d, const char **ret_reason);
bool domain_is_member(struct domain *d, uint32_t node_id);
void status_publish_own(struct domain *d);
/* Sets (value != NULL, borrowed) or deletes one of this node's status
 * entries and multicasts it. */
int status_publish(struct domain *d, const char *key, struct json_object *value);

/* domaind-cluster.c: create, the nodelist, removal */
int cluster_render_corosync_conf(const char *cluster_name, const struct conf_node *nodes,
                                 size_t n, char **ret);
int cluster_current_conf(struct domain *d, char **ret);
void cluster_refresh_corosync(struct domain *d);
void cluster_after_commit(struct domain *d);
bool cluster_has_node(struct domain *d, uint32_t node_id);
bool cluster_exists_here(struct domain *d, char *name, size_t size);
/* Adds "cluster" (its name) and "node_id" (this node's) to a reply. */
void cluster_identity_add(struct domain *d, struct json_object *reply);
int cluster_default_address(char *buf, size_t size);
int64_t cluster_memory_mib(void);
char *cluster_hash_password(const char *password);
bool cluster_check_password(const char *password, const char *hash);
int cluster_write_authkey(struct domain *d, const void *key, size_t size);
int cluster_write_conf(struct domain *d, const char *conf);
int cluster_start_corosync(struct domain *d);
int cluster_create(struct domain *d, struct haven_msg_conn *conn, struct json_object *tag,
                   const char *name, const char *admin, const char *password,
                   const char *address, struct store_error *ret_error);
int cluster_remove_node(struct domain *d, struct haven_msg_conn *conn, struct json_object *tag,
                        const char *node, const char *actor, struct store_error *ret_error);
/* Reopens an empty store (the node left the cluster, or its file vanished). */
int domain_reset_store(struct domain *d);

/* domaind-jobs.c: activation jobs and their logs */
void jobs_after_commit(struct domain *d, uint64_t first_version, uint64_t last_version);

/* domaind-join.c: joining a cluster */
int join_open(struct domain *d);
void join_close(struct domain *d);
int join_start(struct domain *d, struct haven_msg_conn *conn, struct json_object *tag,
               const char *address, const char *admin, const char *password,
               const char *own_address, struct store_error *ret_error);
void join_waiter_finish(struct domain *d, const char *code, const char *message);
void join_check_progress(struct domain *d);
int join_fetch_main(const char *host, uint16_t port);

/* domaind-api.c: the local socket */
/* A reply object echoing tag (may be NULL); new reference. */
struct json_object *api_reply_new(struct json_object *tag);
/* A complete error reply {"tag", "error": {"code", "message", "field"}};
 * field NULL or "" becomes null. New reference. */
struct json_object *api_error_new(struct json_object *tag, const char *code, const char *message,
                                  const char *field);
/* A new submission of ops (borrowed) on behalf of conn (may be NULL), queued
 * and sent as soon as the domain is writable. Returns it, or NULL (ENOMEM). */
struct pending *api_pending_new(struct domain *d, struct haven_msg_conn *conn,
                                struct json_object *tag, struct json_object *ops,
                                const char *actor, const char *audit);
int api_open(struct domain *d);
void api_close(struct domain *d);
/* Sends a reply or error for a pending submission and frees it. */
void api_pending_done(struct domain *d, struct pending *p,
                      struct json_object *result, const struct store_error *error);
void api_pending_fail_all(struct domain *d, const char *code, const char *message);
void api_emit(struct domain *d, unsigned event_bit, struct json_object *event);
int api_submit_flush(struct domain *d);
