/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Node-to-node requests over the cluster interconnect: the framing of
 * haven/msg.h (4-byte big-endian length + one JSON object) inside a TLS
 * session over TCP (GnuTLS). Used where secrets cross the wire, first of
 * all a node joining a cluster (administrator password in, corosync key
 * out). Each node has a self-signed certificate; clients do not verify it
 * against a CA but show or pin its SHA-256 fingerprint.
 *
 * Must not: interpret the JSON beyond "is it one object", log above debug,
 * or block the event loop (the server side); the client side blocks.
 */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "haven/macro.h"

/* Default and hard upper bound on a frame's payload (as in haven/msg.h). */
#define HAVEN_PEER_SIZE_DEFAULT (1024u * 1024u)
#define HAVEN_PEER_SIZE_HARD_MAX (64u * 1024u * 1024u)
#define HAVEN_PEER_MAX_CONNECTIONS_DEFAULT 32u
#define HAVEN_PEER_TIMEOUT_DEFAULT_USEC (10ull * 1000ull * 1000ull)

/* "AB:CD:…": 32 bytes of SHA-256 as upper-case hex pairs separated by
 * colons, plus the terminating NUL. */
#define HAVEN_PEER_FINGERPRINT_SIZE (32 * 3)

/* File names inside the credentials directory. */
#define HAVEN_PEER_KEY_FILE "peer.key"
#define HAVEN_PEER_CERT_FILE "peer.crt"

/* ==== Frames (pure, no I/O) ==== */

/* Looks at the start of a received byte stream data[0..size). Returns
 *   1 and *ret (a new reference to a JSON object) and *ret_consumed (header
 *     plus payload) when a whole, good frame is there;
 *   0 when more bytes are needed (nothing is set);
 *   -E2BIG when the header announces more than max_size (0 = the default;
 *     above the hard maximum = the hard maximum): the stream cannot be
 *     followed any further;
 *   -EBADMSG when the frame is complete but its payload is empty, not
 *     strict JSON (see haven_json_parse()) or not an object: *ret_consumed
 *     says how far to skip to the next frame;
 *   -ENOMEM.
 * On -E2BIG and -EBADMSG, *ret_reason (may be NULL) is set to a static text
 * that can be sent back to the peer. */
int haven_peer_frame_parse(const uint8_t *data, size_t size, size_t max_size,
                           struct json_object **ret, size_t *ret_consumed,
                           const char **ret_reason);

/* ==== Credentials ==== */

struct haven_peer_credentials;

/* Loads dir/peer.key and dir/peer.crt, creating what is missing: dir itself
 * (mode 0700, one level), a new ECDSA P-256 key with a new certificate when
 * there is no key (any old certificate is replaced), or a new certificate
 * for the existing key when only the certificate is missing. The certificate
 * is self-signed, CN = this host's name, valid from a day ago with no
 * well-defined expiration (RFC 5280: 99991231235959Z). Files are written to
 * a temporary name and renamed into place (key 0600, certificate 0644), the
 * certificate first: a crash in between leaves no key, so the next call
 * starts over. Returns 0 and *ret (free with haven_peer_credentials_free()),
 * -EBADMSG when a file cannot be parsed, -EKEYREJECTED when the certificate
 * does not belong to the key, -EFBIG for files over 64 KiB, or another
 * negative errno (-EACCES, -ENOENT for a missing parent of dir, ...). */
int haven_peer_credentials_load_or_create(const char *dir,
                                          struct haven_peer_credentials **ret);
/* The same contract for explicit file names (the HTTPS certificate of
 * haven-httpd, ...): cert_path and key_path (their directories must exist;
 * they may differ), and the subject alternative names of a new
 * certificate: sans (NULL-terminated, may be NULL), each an IP literal
 * (an IP SAN) or a DNS name. Returns as haven_peer_credentials_load_or_
 * create(), and -EINVAL for the same path twice or an empty SAN. */
int haven_peer_credentials_load_or_create_files(
        const char *cert_path, const char *key_path, const char *const *sans,
        struct haven_peer_credentials **ret);
/* Credentials from PEM texts given by someone (an administrator replacing
 * a certificate), checked: both parse (-EBADMSG), the certificate holds
 * the key's public key (-EKEYREJECTED), and it is valid at now_sec
 * (seconds since 1970: not before its activation, not after its
 * expiration; -EKEYEXPIRED), each at most 64 KiB (-EFBIG). Returns 0 and
 * *ret. */
int haven_peer_credentials_from_pem(const char *cert_pem, const char *key_pem,
                                    uint64_t now_sec,
                                    struct haven_peer_credentials **ret);
/* Writes c's certificate (0644) and key (0600) to the files, each
 * atomically (temporary file, fsync, rename, directory fsync), the key
 * first. Returns 0 or a negative errno. */
int haven_peer_credentials_save(const struct haven_peer_credentials *c,
                                const char *cert_path, const char *key_path);
/* The certificate and the key as PEM text (PKCS#8 for the key): new
 * NUL-terminated strings (either pointer may be NULL to skip it; the
 * caller frees, wiping the key). Returns 0 or -ENOMEM. */
int haven_peer_credentials_export_pem(const struct haven_peer_credentials *c,
                                      char **ret_cert_pem, char **ret_key_pem);
/* Drops the caller's reference; servers made with the credentials hold
 * their own, so freeing right after haven_peer_server_new() is fine.
 * Returns NULL. NULL ok. */
struct haven_peer_credentials *
haven_peer_credentials_free(struct haven_peer_credentials *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_peer_credentials *,
                            haven_peer_credentials_free)
/* Writes the certificate's SHA-256 fingerprint ("AB:CD:…", 95 characters)
 * into buf. The client sees the same text for a server using c. */
void haven_peer_credentials_fingerprint(
        const struct haven_peer_credentials *c,
        char buf[static HAVEN_PEER_FINGERPRINT_SIZE]);

/* ==== Server ==== */

struct haven_peer_server;
struct haven_peer_conn;

/* Called for every complete, well-formed frame (a JSON object). msg is
 * borrowed: take a reference with json_object_get() to keep it. To answer
 * later (e.g. once a cluster transaction was applied), take a reference
 * with haven_peer_conn_ref() and return 0. Return 0 to keep the connection,
 * a negative errno to close it (after what was queued went out). */
typedef int (*haven_peer_handler_t)(struct haven_peer_conn *conn,
                                    struct json_object *msg, void *userdata);

struct haven_peer_server_config {
        /* IPv4 or IPv6 literal ("10.0.0.1", "fe80::1%eth0"); NULL = all
         * addresses (IPv6 and IPv4 when the host has IPv6, else IPv4). */
        const char *address;
        uint16_t port; /* 0 = an ephemeral port, see haven_peer_server_port() */
        struct haven_peer_credentials *credentials; /* the server takes a
                                                     * reference */
        size_t max_size;          /* payload limit; 0 = default */
        unsigned max_connections; /* 0 = default; further connects are
                                   * closed at once, without TLS */
        /* 0 = default. The TLS handshake must finish within it, and an open
         * connection is closed when no bytes moved and no message was
         * queued for that long, unless someone besides the server holds a
         * reference to it (an answer is pending). */
        uint64_t timeout_usec;
        haven_peer_handler_t handler;
        void *userdata;
};

/* Creates the listening socket (SO_REUSEADDR) and attaches it to the loop.
 * On a bad frame (oversized, not JSON, not an object, cut short) the server
 * answers {"error":{"code":"bad-message","message":...}} and closes that
 * connection; a peer that does not speak TLS, or fails the handshake, is
 * dropped. Other connections and the server keep going.
 * Returns 0 and *ret, -EINVAL (no handler or credentials, address not a
 * literal, max_size above HAVEN_PEER_SIZE_HARD_MAX), -EADDRINUSE, or
 * another negative errno (nothing is left behind). */
int haven_peer_server_new(sd_event *event,
                          const struct haven_peer_server_config *config,
                          struct haven_peer_server **ret);
/* Closes all connections (without waiting for their output) and the
 * socket. Connections still referenced elsewhere stay allocated but closed.
 * May be called from the handler. Returns NULL. NULL ok. */
struct haven_peer_server *haven_peer_server_free(struct haven_peer_server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_peer_server *, haven_peer_server_free)
/* The port the server listens on (the chosen one when config->port was 0). */
uint16_t haven_peer_server_port(struct haven_peer_server *s);
/* Open connections, in handshake or after. */
unsigned haven_peer_server_connections(struct haven_peer_server *s);

/* Queues one message (non-blocking, flushed by the loop). Returns 0, -E2BIG
 * if it encodes to more than the limit, -ENOTCONN once the connection is
 * closed or closing, -ENOBUFS when the peer left too much output unread
 * (the connection is dropped), -ENOMEM. Usable from the handler and later,
 * by whoever holds a reference. */
int haven_peer_conn_send(struct haven_peer_conn *conn, struct json_object *obj);
/* Sends {"error":{"code":code,"message":message}}. */
int haven_peer_conn_send_error(struct haven_peer_conn *conn, const char *code,
                               const char *message);
/* Stops reading and closes once the queued output went out (with a TLS
 * close_notify). NULL and closed ok. */
void haven_peer_conn_close(struct haven_peer_conn *conn);
struct haven_peer_conn *haven_peer_conn_ref(struct haven_peer_conn *conn);
/* Drops a reference; returns NULL. NULL ok. */
struct haven_peer_conn *haven_peer_conn_unref(struct haven_peer_conn *conn);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_peer_conn *, haven_peer_conn_unref)
/* The peer's IP address as text ("192.0.2.7", "2001:db8::7"; IPv4-mapped
 * IPv6 addresses are shown as IPv4). Lives as long as conn. */
const char *haven_peer_conn_remote_address(struct haven_peer_conn *conn);
/* true until the connection is closed (or being closed). */
bool haven_peer_conn_is_open(struct haven_peer_conn *conn);
void haven_peer_conn_set_userdata(struct haven_peer_conn *conn, void *userdata);
void *haven_peer_conn_get_userdata(struct haven_peer_conn *conn);

/* ==== Blocking client ==== */

struct haven_peer_client;

/* Connects to host (an IP literal or a name; resolving a name is not bounded
 * by the timeout) and port, and does the TLS handshake, all within
 * timeout_usec (UINT64_MAX = forever). The server's certificate is not
 * verified against any CA: if expected_fingerprint is not NULL (hex, any
 * case, colons optional), the certificate's SHA-256 fingerprint must match
 * it, else -EPERM before anything is sent; if NULL, the caller should show
 * haven_peer_client_fingerprint() to a human or pin it.
 * Returns 0 and *ret, -EINVAL (bad fingerprint text, port 0), -ECONNREFUSED,
 * -EHOSTUNREACH, -ENETUNREACH, -ETIMEDOUT, -ECONNRESET (the server closed
 * during the handshake, e.g. because it has too many connections), -EPROTO
 * (TLS failure: the peer does not speak TLS or no acceptable parameters),
 * -EADDRNOTAVAIL (name does not resolve), -EPERM. With several addresses
 * for a name, each is tried in turn until one connects: the last error is
 * returned, except that -EPERM (a server answered with another
 * certificate) and -ETIMEDOUT end the search at once. */
int haven_peer_client_connect(const char *host, uint16_t port,
                              const char *expected_fingerprint,
                              uint64_t timeout_usec,
                              struct haven_peer_client **ret);
/* Sends a TLS close_notify (best effort) and closes. NULL ok. */
struct haven_peer_client *haven_peer_client_free(struct haven_peer_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct haven_peer_client *, haven_peer_client_free)
/* The server certificate's SHA-256 fingerprint, as
 * haven_peer_credentials_fingerprint() writes it. */
void haven_peer_client_fingerprint(
        const struct haven_peer_client *c,
        char buf[static HAVEN_PEER_FINGERPRINT_SIZE]);
/* Payload limit for both directions; 0 = default. -EINVAL above the hard
 * maximum. */
int haven_peer_client_set_max_size(struct haven_peer_client *c,
                                   size_t max_size);

/* Timeouts bound the whole call; UINT64_MAX waits forever. */
/* Returns 0 once the frame is handed to the kernel, -E2BIG (nothing sent),
 * -ETIMEDOUT, -EPIPE / -ECONNRESET when the server went away, -EPROTO,
 * -ENOTCONN after an earlier frame went out only in part. */
int haven_peer_client_send(struct haven_peer_client *c, struct json_object *obj,
                           uint64_t timeout_usec);
/* Receives one message; *ret is a new reference, set only on success.
 * -ETIMEDOUT (a partly received frame is kept for the next call),
 * -ECONNRESET at the end of the stream, -EBADMSG for a bad frame (the next
 * one can still be received), -E2BIG for one over the limit (after which
 * nothing can be: -ENOTCONN), -EPROTO. */
int haven_peer_client_recv(struct haven_peer_client *c, uint64_t timeout_usec,
                           struct json_object **ret);
/* send + recv: the next message that arrives is taken for the reply. */
int haven_peer_client_call(struct haven_peer_client *c, struct json_object *req,
                           uint64_t timeout_usec, struct json_object **ret);
