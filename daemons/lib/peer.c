/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Framed JSON over TLS between nodes (haven/peer.h): payload parsing, the
 * node's key and self-signed certificate, the non-blocking sd-event server
 * (TLS handshake and records driven by socket readiness, per-connection
 * buffers, limits, timers, refcounted connections) and the blocking client;
 * the framing itself is haven/frame.h's.
 * Must not: look at a message beyond "one JSON object", block the loop,
 * verify certificates against a CA (fingerprints are the caller's), or log
 * above debug.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "haven/frame.h"
#include "haven/loop.h"
#include "haven/json.h"
#include "haven/log.h"
#include "haven/peer.h"

/* Plaintext handed to one gnutls_record_send(): one TLS record. */
#define RECORD_SIZE_MAX (16u * 1024u)
/* Records read per wakeup, so one busy peer cannot starve the others. */
#define RECORDS_PER_WAKEUP 64u
#define ACCEPT_BATCH 32u
#define ACCEPT_RETRY_USEC (250u * 1000u)
/* After our close_notify, input is read and dropped for at most this long
 * (and never longer than the configured timeout), so that closing with
 * unread input does not reset the connection before the peer read our
 * last reply. */
#define LINGER_MAX_USEC (2u * 1000u * 1000u)

/* TLS 1.3 and 1.2 only, GnuTLS's default algorithms otherwise. With an
 * ECDSA certificate, 1.2 gets ECDHE key exchange and AEAD ciphers only. */
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

#define SHA256_SIZE 32u
#define CREDENTIALS_FILE_MAX (64u * 1024u)
/* Nodes' clocks may disagree when one is new. */
#define CERT_BACKDATE_SEC (24 * 3600)
/* 9999-12-31T23:59:59Z, RFC 5280's "no well-defined expiration date". GnuTLS
 * 3.7's GNUTLS_X509_NO_WELL_DEFINED_EXPIRATION is encoded as a date in 2106
 * instead. */
#define CERT_NO_EXPIRATION ((time_t) 253402300799LL)
/* X.520 upper bound for a common name. */
#define COMMON_NAME_MAX 64u

DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_crt_t, gnutls_x509_crt_deinit)
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_privkey_t, gnutls_x509_privkey_deinit)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct addrinfo *, freeaddrinfo)

static_assert(HAVEN_PEER_SIZE_DEFAULT == HAVEN_FRAME_SIZE_DEFAULT,
              "haven/peer.h and haven/frame.h disagree on the default limit");
static_assert(HAVEN_PEER_SIZE_HARD_MAX == HAVEN_FRAME_SIZE_HARD_MAX,
              "haven/peer.h and haven/frame.h disagree on the hard limit");

static size_t size_min(size_t a, size_t b) {
        return a < b ? a : b;
}

/* Frees a datum GnuTLS allocated, wiping it first (it may hold a key). */
static void datum_wipe_free(gnutls_datum_t *d) {
        if (d->data) {
                explicit_bzero(d->data, d->size);
                gnutls_free(d->data);
        }
        d->data = NULL;
        d->size = 0;
}

static void fingerprint_format(const uint8_t fingerprint[SHA256_SIZE],
                               char buf[static HAVEN_PEER_FINGERPRINT_SIZE]) {
        static const char hex[] = "0123456789ABCDEF";

        for (size_t i = 0; i < SHA256_SIZE; i++) {
                buf[3 * i] = hex[fingerprint[i] >> 4];
                buf[3 * i + 1] = hex[fingerprint[i] & 0xF];
                buf[3 * i + 2] = i + 1 < SHA256_SIZE ? ':' : '\0';
        }
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

/* Parses 32 bytes of hex, any case, with or without a colon between bytes.
 * Returns 0 or -EINVAL. */
static int fingerprint_parse(const char *text, uint8_t ret[SHA256_SIZE]) {
        const char *p = text;

        for (size_t i = 0; i < SHA256_SIZE; i++) {
                int high, low;

                if (i > 0 && *p == ':')
                        p++;
                high = hex_digit(p[0]);
                if (high < 0)
                        return -EINVAL;
                low = hex_digit(p[1]);
                if (low < 0)
                        return -EINVAL;
                ret[i] = (uint8_t) (high << 4 | low);
                p += 2;
        }
        return *p == '\0' ? 0 : -EINVAL;
}

/* GnuTLS errors while building or parsing keys and certificates. */
static int crypto_error(int r) {
        return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EIO;
}

static int parse_error(int r) {
        return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
}

/* ==== Frames ==== */

/* The payload must be strict JSON (haven_json_parse()) and an object; the
 * rest is haven_frame_next()'s. */
int haven_peer_frame_parse(const uint8_t *data, size_t size, size_t max_size,
                           struct json_object **ret, size_t *ret_consumed,
                           const char **ret_reason) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        const char *reason = NULL;
        const uint8_t *payload;
        size_t payload_size;
        int r;

        assert(data || size == 0);
        assert(ret);
        assert(ret_consumed);

        r = haven_frame_next(data, size, haven_frame_max_size(max_size),
                             &payload, &payload_size, &reason);
        if (r == 0)
                return 0;
        if (r > 0) {
                r = haven_json_parse((const char *) payload, payload_size,
                                     payload_size, &obj);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        reason = "not valid JSON";
                else if (!json_object_is_type(obj, json_type_object))
                        reason = "not a JSON object";
                else {
                        *ret = TAKE_PTR(obj);
                        *ret_consumed = HAVEN_FRAME_HEADER_SIZE + payload_size;
                        return 1;
                }
                r = -EBADMSG;
        }

        /* After -E2BIG there is nothing to skip to. */
        if (r == -EBADMSG)
                *ret_consumed = HAVEN_FRAME_HEADER_SIZE + payload_size;
        if (ret_reason)
                *ret_reason = reason;
        return r;
}

/* ==== Transport ==== */

/* GnuTLS reads and writes the socket through these, so that the errno of
 * a failed call is ours to report, and nothing ever blocks. */
struct transport {
        int fd;
        gnutls_session_t session;
        int error; /* errno of the last failed send/recv */
};

static ssize_t transport_push(gnutls_transport_ptr_t ptr, const void *data,
                              size_t size) {
        struct transport *t = ptr;
        ssize_t n;

        n = send(t->fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
                t->error = errno;
                gnutls_transport_set_errno(t->session, errno);
        }
        return n;
}

static ssize_t transport_pull(gnutls_transport_ptr_t ptr, void *data,
                              size_t size) {
        struct transport *t = ptr;
        ssize_t n;

        n = recv(t->fd, data, size, MSG_DONTWAIT);
        if (n < 0) {
                t->error = errno;
                gnutls_transport_set_errno(t->session, errno);
        }
        return n;
}

/* GnuTLS would wait here only with its own timeouts, which are off: we keep
 * time ourselves. Never waits. */
static int transport_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms) {
        struct transport *t = ptr;
        struct pollfd pfd = {.fd = t->fd, .events = POLLIN};
        int r;

        r = poll(&pfd, 1, 0);
        if (r < 0) {
                t->error = errno;
                gnutls_transport_set_errno(t->session, errno);
        }
        return r;
}

static void transport_attach(struct transport *t, gnutls_session_t session,
                             int fd) {
        t->fd = fd;
        t->session = session;
        t->error = 0;
        gnutls_transport_set_ptr(session, t);
        gnutls_transport_set_push_function(session, transport_push);
        gnutls_transport_set_pull_function(session, transport_pull);
        gnutls_transport_set_pull_timeout_function(session,
                                                   transport_pull_timeout);
        /* 0: no handshake timeout of GnuTLS's own. */
        gnutls_handshake_set_timeout(session, 0);
}

static bool tls_would_block(ssize_t r) {
        return r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED;
}

/* Maps a fatal GnuTLS error of a session to a negative errno: socket
 * errors as they were, the peer leaving without close_notify as
 * -ECONNRESET, everything about TLS itself as -EPROTO. */
static int tls_error(const struct transport *t, ssize_t r) {
        switch (r) {
        case GNUTLS_E_MEMORY_ERROR:
                return -ENOMEM;
        case GNUTLS_E_PUSH_ERROR:
        case GNUTLS_E_PULL_ERROR:
                return t->error > 0 ? -t->error : -EIO;
        case GNUTLS_E_PREMATURE_TERMINATION:
                return -ECONNRESET;
        default:
                return -EPROTO;
        }
}

static void socket_set_nodelay(int fd) {
        static const int one = 1;

        /* Requests and replies are small: do not wait to fill segments. */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ==== Credentials ==== */

struct haven_peer_credentials {
        unsigned n_ref;
        gnutls_certificate_credentials_t certificate;
        uint8_t fingerprint[SHA256_SIZE];
        /* The same certificate and key as PEM text, for exports. */
        gnutls_datum_t cert_pem, key_pem;
};

static struct haven_peer_credentials *
credentials_ref(struct haven_peer_credentials *c) {
        assert(c->n_ref > 0);
        c->n_ref++;
        return c;
}

struct haven_peer_credentials *
haven_peer_credentials_free(struct haven_peer_credentials *c) {
        if (!c)
                return NULL;
        assert(c->n_ref > 0);
        if (--c->n_ref > 0)
                return NULL;
        if (c->certificate)
                gnutls_certificate_free_credentials(c->certificate);
        datum_wipe_free(&c->cert_pem);
        datum_wipe_free(&c->key_pem);
        free(c);
        return NULL;
}

void haven_peer_credentials_fingerprint(
        const struct haven_peer_credentials *c,
        char buf[static HAVEN_PEER_FINGERPRINT_SIZE]) {
        assert(c);
        fingerprint_format(c->fingerprint, buf);
}

/* Reads name in dir_fd, a regular file of at most CREDENTIALS_FILE_MAX
 * bytes. Returns 0 and *ret (free with datum_wipe_free()), -ENOENT, -EFBIG,
 * -EBADMSG (not a regular file), or another negative errno. */
static int file_read(int dir_fd, const char *name, gnutls_datum_t *ret) {
        _cleanup_close_ int fd = -1;
        gnutls_datum_t d = {};
        struct stat st;
        size_t done = 0;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if (st.st_size > (off_t) CREDENTIALS_FILE_MAX)
                return -EFBIG;

        d.data = gnutls_malloc((size_t) st.st_size + 1);
        if (!d.data)
                return -ENOMEM;
        d.size = (unsigned) st.st_size;
        while (done < d.size) {
                ssize_t n = read(fd, d.data + done, d.size - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EBADMSG; /* shrank */

                        datum_wipe_free(&d);
                        return r;
                }
                done += (size_t) n;
        }
        d.data[d.size] = '\0';
        *ret = d;
        return 0;
}

static int write_all(int fd, const uint8_t *data, size_t size) {
        while (size > 0) {
                ssize_t n = write(fd, data, size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                data += n;
                size -= (size_t) n;
        }
        return 0;
}

/* Replaces name in dir_fd with data, atomically: written to a new
 * temporary file with exactly `mode`, synced, renamed over name, and the
 * directory synced. Returns 0 or a negative errno (no temporary file is
 * left behind). */
static int file_write_atomic(int dir_fd, const char *name,
                             const gnutls_datum_t *data, mode_t mode) {
        char tmp[NAME_MAX + 1];
        _cleanup_close_ int fd = -1;
        int r;

        for (unsigned attempt = 0; fd < 0; attempt++) {
                uint8_t random[8];

                if (attempt >= 16)
                        return -EEXIST;
                r = gnutls_rnd(GNUTLS_RND_NONCE, random, sizeof(random));
                if (r < 0)
                        return crypto_error(r);
                r = snprintf(tmp, sizeof(tmp),
                             ".%s.%02x%02x%02x%02x%02x%02x%02x%02x", name,
                             random[0], random[1], random[2], random[3],
                             random[4], random[5], random[6], random[7]);
                if (r < 0 || (size_t) r >= sizeof(tmp))
                        return -ENAMETOOLONG;
                /* Created with at most mode (the umask only takes away),
                 * so the key is never readable by others, not even
                 * briefly. */
                fd = openat(dir_fd, tmp,
                            O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY |
                                    O_NOFOLLOW,
                            mode);
                if (fd < 0 && errno != EEXIST)
                        return -errno;
        }

        if (fchmod(fd, mode) < 0)
                r = -errno;
        else
                r = write_all(fd, data->data, data->size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && close(fd) < 0)
                r = -errno;
        fd = -1; /* closed, even when close() failed */
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        if (fsync(dir_fd) < 0)
                return -errno;
        return 0;
}

static int key_load(int dir_fd, const char *name, gnutls_x509_privkey_t *ret) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        gnutls_datum_t pem = {};
        int r;

        r = file_read(dir_fd, name, &pem);
        if (r < 0)
                return r;
        r = gnutls_x509_privkey_init(&key);
        if (r >= 0)
                /* PKCS#8 (what we write) or the older per-algorithm form;
                 * not encrypted. */
                r = gnutls_x509_privkey_import2(key, &pem, GNUTLS_X509_FMT_PEM,
                                                NULL, GNUTLS_PKCS_PLAIN);
        datum_wipe_free(&pem);
        if (r < 0)
                return parse_error(r);
        *ret = TAKE_PTR(key);
        return 0;
}

static int key_generate(gnutls_x509_privkey_t *ret) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        int r;

        r = gnutls_x509_privkey_init(&key);
        if (r >= 0)
                r = gnutls_x509_privkey_generate(
                        key, GNUTLS_PK_ECDSA,
                        GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
        if (r < 0)
                return crypto_error(r);
        *ret = TAKE_PTR(key);
        return 0;
}

static int key_save(int dir_fd, const char *name, gnutls_x509_privkey_t key) {
        gnutls_datum_t pem = {};
        int r;

        r = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
                                              GNUTLS_PKCS_PLAIN, &pem);
        if (r < 0)
                return crypto_error(r);
        r = file_write_atomic(dir_fd, name, &pem, 0600);
        datum_wipe_free(&pem);
        return r;
}

static int crt_load(int dir_fd, const char *name, gnutls_x509_crt_t *ret) {
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t pem = {};
        int r;

        r = file_read(dir_fd, name, &pem);
        if (r < 0)
                return r;
        r = gnutls_x509_crt_init(&crt);
        if (r >= 0)
                r = gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM);
        datum_wipe_free(&pem);
        if (r < 0)
                return parse_error(r);
        *ret = TAKE_PTR(crt);
        return 0;
}

/* This host's name, cut to what a common name may hold; "haven" when it
 * has none. */
static void common_name(char buf[static COMMON_NAME_MAX + 1]) {
        char host[HOST_NAME_MAX + 1] = "";

        if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
                strcpy(host, "haven");
        host[sizeof(host) - 1] = '\0';
        snprintf(buf, COMMON_NAME_MAX + 1, "%s", host);
}

/* Adds each of sans to crt: IP literals as IP addresses, anything else as
 * a DNS name. */
static int crt_add_sans(gnutls_x509_crt_t crt, const char *const *sans) {
        for (const char *const *s = sans; s && *s; s++) {
                unsigned char address[sizeof(struct in6_addr)];
                int r;

                if (inet_pton(AF_INET, *s, address) == 1)
                        r = gnutls_x509_crt_set_subject_alt_name(
                                crt, GNUTLS_SAN_IPADDRESS, address, 4,
                                GNUTLS_FSAN_APPEND);
                else if (inet_pton(AF_INET6, *s, address) == 1)
                        r = gnutls_x509_crt_set_subject_alt_name(
                                crt, GNUTLS_SAN_IPADDRESS, address, 16,
                                GNUTLS_FSAN_APPEND);
                else if (**s)
                        r = gnutls_x509_crt_set_subject_alt_name(
                                crt, GNUTLS_SAN_DNSNAME, *s,
                                (unsigned) strlen(*s), GNUTLS_FSAN_APPEND);
                else
                        return -EINVAL;
                if (r < 0)
                        return crypto_error(r);
        }
        return 0;
}

/* A self-signed certificate for key: X.509 v3, random serial, CN = host
 * name, the given SANs, not a CA, for TLS servers and clients. */
static int crt_generate(gnutls_x509_privkey_t key, const char *const *sans,
                        gnutls_x509_crt_t *ret) {
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        char name[COMMON_NAME_MAX + 1];
        uint8_t serial[16], key_id[64];
        size_t key_id_size = sizeof(key_id);
        int r;

        common_name(name);

        r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
        if (r < 0)
                return crypto_error(r);
        /* Positive and of full length (RFC 5280: at most 20 bytes). */
        serial[0] = (uint8_t) ((serial[0] & 0x7F) | 0x40);

        r = gnutls_x509_crt_init(&crt);
        if (r >= 0)
                r = gnutls_x509_crt_set_version(crt, 3);
        if (r >= 0)
                r = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
        if (r >= 0)
                r = gnutls_x509_crt_set_dn_by_oid(crt,
                                                  GNUTLS_OID_X520_COMMON_NAME,
                                                  0, name, strlen(name));
        if (r >= 0)
                r = gnutls_x509_crt_set_activation_time(
                        crt, time(NULL) - CERT_BACKDATE_SEC);
        if (r >= 0)
                r = gnutls_x509_crt_set_expiration_time(crt,
                                                        CERT_NO_EXPIRATION);
        if (r >= 0)
                r = gnutls_x509_crt_set_key(crt, key);
        if (r >= 0)
                r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
        if (r >= 0)
                r = gnutls_x509_crt_set_key_usage(crt,
                                                  GNUTLS_KEY_DIGITAL_SIGNATURE);
        if (r >= 0)
                r = gnutls_x509_crt_set_key_purpose_oid(
                        crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
        if (r >= 0)
                r = gnutls_x509_crt_set_key_purpose_oid(
                        crt, GNUTLS_KP_TLS_WWW_CLIENT, 0);
        if (r >= 0)
                r = gnutls_x509_privkey_get_key_id(key, 0, key_id,
                                                   &key_id_size);
        if (r >= 0)
                r = gnutls_x509_crt_set_subject_key_id(crt, key_id,
                                                       key_id_size);
        if (r < 0)
                return crypto_error(r);
        r = crt_add_sans(crt, sans);
        if (r < 0)
                return r;
        r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
        if (r < 0)
                return crypto_error(r);

        *ret = TAKE_PTR(crt);
        return 0;
}

static int crt_save(int dir_fd, const char *name, gnutls_x509_crt_t crt) {
        gnutls_datum_t pem = {};
        int r;

        r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem);
        if (r < 0)
                return crypto_error(r);
        r = file_write_atomic(dir_fd, name, &pem, 0644);
        datum_wipe_free(&pem);
        return r;
}

/* Returns 0 when crt holds key's public key, -EKEYREJECTED when not. */
static int crt_check_key(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key) {
        uint8_t crt_id[64], key_id[64];
        size_t crt_id_size = sizeof(crt_id), key_id_size = sizeof(key_id);
        int r;

        r = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, crt_id,
                                       &crt_id_size);
        if (r < 0)
                return parse_error(r);
        r = gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, key_id,
                                           &key_id_size);
        if (r < 0)
                return crypto_error(r);
        if (crt_id_size != key_id_size ||
            memcmp(crt_id, key_id, crt_id_size) != 0)
                return -EKEYREJECTED;
        return 0;
}

static int credentials_new(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key,
                           struct haven_peer_credentials **ret) {
        gnutls_certificate_credentials_t certificate = NULL;
        uint8_t fingerprint[SHA256_SIZE];
        size_t size = sizeof(fingerprint);
        struct haven_peer_credentials *c;
        int r;

        r = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fingerprint,
                                            &size);
        if (r < 0)
                return crypto_error(r);
        if (size != SHA256_SIZE)
                return -EIO;

        r = gnutls_certificate_allocate_credentials(&certificate);
        if (r < 0)
                return crypto_error(r);
        /* Copies both. */
        r = gnutls_certificate_set_x509_key(certificate, &crt, 1, key);
        if (r >= 0) {
                c = calloc(1, sizeof(*c));
                if (!c)
                        r = GNUTLS_E_MEMORY_ERROR;
        }
        if (r < 0) {
                gnutls_certificate_free_credentials(certificate);
                return r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH ? -EKEYREJECTED
                                                              : crypto_error(r);
        }

        c->n_ref = 1;
        c->certificate = certificate;
        memcpy(c->fingerprint, fingerprint, SHA256_SIZE);
        r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c->cert_pem);
        if (r >= 0)
                r = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM,
                                                      NULL, GNUTLS_PKCS_PLAIN,
                                                      &c->key_pem);
        if (r < 0) {
                haven_peer_credentials_free(c);
                return crypto_error(r);
        }
        *ret = c;
        return 0;
}

/* Splits path into its directory (opened) and its last component. Returns
 * the directory's fd and *ret_name (pointing into path), or a negative
 * errno. */
static int path_split(const char *path, const char **ret_name) {
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *dir = NULL;
        int fd;

        if (!slash) {
                *ret_name = path;
                fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else {
                *ret_name = slash + 1;
                dir = slash == path ? strdup("/")
                                    : strndup(path, (size_t) (slash - path));
                if (!dir)
                        return -ENOMEM;
                fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (fd < 0)
                return -errno;
        if (**ret_name == '\0' || streq(*ret_name, ".") ||
            streq(*ret_name, "..")) {
                safe_close(fd);
                return -EINVAL;
        }
        return fd;
}

/* The files' contract, in two directories (which may be one). */
static int load_or_create(int cert_dir, const char *cert_name, int key_dir,
                          const char *key_name, const char *const *sans,
                          struct haven_peer_credentials **ret) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        int r;

        r = key_load(key_dir, key_name, &key);
        if (r == -ENOENT) {
                /* Certificate first: should we stop before the key is in
                 * place, the next call starts over. */
                r = key_generate(&key);
                if (r >= 0)
                        r = crt_generate(key, sans, &crt);
                if (r >= 0)
                        r = crt_save(cert_dir, cert_name, crt);
                if (r >= 0)
                        r = key_save(key_dir, key_name, key);
                if (r < 0)
                        return r;
                log_debug("Peer credentials \"%s\": created", cert_name);
        } else if (r < 0)
                return r;
        else {
                r = crt_load(cert_dir, cert_name, &crt);
                if (r == -ENOENT) {
                        r = crt_generate(key, sans, &crt);
                        if (r >= 0)
                                r = crt_save(cert_dir, cert_name, crt);
                        if (r < 0)
                                return r;
                        log_debug("Peer credentials \"%s\": new certificate "
                                  "for the existing key",
                                  cert_name);
                } else if (r < 0)
                        return r;
                else {
                        r = crt_check_key(crt, key);
                        if (r < 0)
                                return r;
                }
        }

        return credentials_new(crt, key, ret);
}

int haven_peer_credentials_load_or_create(const char *dir,
                                          struct haven_peer_credentials **ret) {
        _cleanup_close_ int dir_fd = -1;

        assert(dir);
        assert(ret);

        if (dir[0] == '\0')
                return -EINVAL;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        return load_or_create(dir_fd, HAVEN_PEER_CERT_FILE, dir_fd,
                              HAVEN_PEER_KEY_FILE, NULL, ret);
}

int haven_peer_credentials_load_or_create_files(
        const char *cert_path, const char *key_path, const char *const *sans,
        struct haven_peer_credentials **ret) {
        _cleanup_close_ int cert_dir = -1, key_dir = -1;
        const char *cert_name, *key_name;

        assert(cert_path);
        assert(key_path);
        assert(ret);

        if (streq(cert_path, key_path))
                return -EINVAL;
        cert_dir = path_split(cert_path, &cert_name);
        if (cert_dir < 0)
                return cert_dir;
        key_dir = path_split(key_path, &key_name);
        if (key_dir < 0)
                return key_dir;
        return load_or_create(cert_dir, cert_name, key_dir, key_name, sans,
                              ret);
}

int haven_peer_credentials_export_pem(const struct haven_peer_credentials *c,
                                      char **ret_cert_pem, char **ret_key_pem) {
        _cleanup_free_ char *cert = NULL;
        char *key = NULL;

        assert(c);
        if (ret_cert_pem) {
                cert = strndup((const char *) c->cert_pem.data,
                               c->cert_pem.size);
                if (!cert)
                        return -ENOMEM;
        }
        if (ret_key_pem) {
                key = malloc(c->key_pem.size + 1);
                if (!key)
                        return -ENOMEM;
                memcpy(key, c->key_pem.data, c->key_pem.size);
                key[c->key_pem.size] = '\0';
                *ret_key_pem = key;
        }
        if (ret_cert_pem)
                *ret_cert_pem = TAKE_PTR(cert);
        return 0;
}

int haven_peer_credentials_from_pem(const char *cert_pem, const char *key_pem,
                                    uint64_t now_sec,
                                    struct haven_peer_credentials **ret) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t cert = {.data = (unsigned char *) cert_pem,
                               .size = (unsigned) strlen(cert_pem)},
                       k = {.data = (unsigned char *) key_pem,
                            .size = (unsigned) strlen(key_pem)};
        time_t activation, expiration;
        int r;

        assert(cert_pem);
        assert(key_pem);
        assert(ret);

        if (cert.size > CREDENTIALS_FILE_MAX || k.size > CREDENTIALS_FILE_MAX)
                return -EFBIG;
        r = gnutls_x509_crt_init(&crt);
        if (r < 0)
                return crypto_error(r);
        r = gnutls_x509_crt_import(crt, &cert, GNUTLS_X509_FMT_PEM);
        if (r < 0)
                return parse_error(r);
        r = gnutls_x509_privkey_init(&key);
        if (r < 0)
                return crypto_error(r);
        r = gnutls_x509_privkey_import2(key, &k, GNUTLS_X509_FMT_PEM, NULL,
                                        GNUTLS_PKCS_PLAIN);
        if (r < 0)
                return parse_error(r);
        r = crt_check_key(crt, key);
        if (r < 0)
                return r;
        activation = gnutls_x509_crt_get_activation_time(crt);
        expiration = gnutls_x509_crt_get_expiration_time(crt);
        if (activation == (time_t) -1 || expiration == (time_t) -1)
                return -EBADMSG;
        if ((uint64_t) activation > now_sec || (uint64_t) expiration < now_sec)
                return -EKEYEXPIRED;
        return credentials_new(crt, key, ret);
}

int haven_peer_credentials_save(const struct haven_peer_credentials *c,
                                const char *cert_path, const char *key_path) {
        _cleanup_close_ int cert_dir = -1, key_dir = -1;
        const char *cert_name, *key_name;
        int r;

        assert(c);
        if (streq(cert_path, key_path))
                return -EINVAL;
        cert_dir = path_split(cert_path, &cert_name);
        if (cert_dir < 0)
                return cert_dir;
        key_dir = path_split(key_path, &key_name);
        if (key_dir < 0)
                return key_dir;
        /* The key first here: a crash in between leaves the new key with
         * the old certificate, which the next load refuses (mismatch)
         * rather than silently using the old pair. */
        r = file_write_atomic(key_dir, key_name, &c->key_pem, 0600);
        if (r >= 0)
                r = file_write_atomic(cert_dir, cert_name, &c->cert_pem, 0644);
        return r;
}

/* ==== Server ==== */

struct haven_peer_server {
        sd_event *event;
        int fd;
        uint16_t port;
        sd_event_source *listen_source;
        sd_event_source *accept_retry_source;

        struct haven_peer_credentials *credentials;
        gnutls_priority_t priority;
        size_t max_size;
        size_t output_max;
        unsigned max_connections;
        uint64_t timeout_usec;
        haven_peer_handler_t handler;
        void *userdata;

        struct haven_peer_conn *connections;
        unsigned n_connections;
};

struct haven_peer_conn {
        unsigned n_ref;
        /* NULL once the connection is closed; the server holds one reference
         * for as long as it is set. */
        struct haven_peer_server *server;
        struct haven_peer_conn *prev, *next;
        int fd;
        gnutls_session_t session;
        struct transport transport;
        sd_event_source *io_source;
        sd_event_source *timer_source; /* handshake, idle, linger */
        sd_event_source *defer_source; /* input GnuTLS holds already */
        char remote_address[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];

        bool handshake_done;
        bool closing;     /* no more input; close_notify once flushed */
        bool lingering;   /* close_notify sent; draining input */
        bool peer_closed; /* the peer sent close_notify */
        /* The last GnuTLS call would block and needs the socket writable
         * (else readable) to go on. */
        bool tls_wants_write;
        /* The last record read would block: the socket says when more
         * comes. When false, more may be buffered inside GnuTLS. */
        bool read_would_block;
        /* gnutls_record_send() would block with this many bytes: it must
         * be called again with the same ones. */
        size_t send_pending;

        struct haven_frame_buffer in;  /* received */
        struct haven_frame_buffer out; /* queued */

        void *userdata;
};

static bool conn_connected(const struct haven_peer_conn *conn) {
        return conn->server != NULL;
}

static size_t conn_input_size(const struct haven_peer_conn *conn) {
        return haven_frame_buffer_size(&conn->in);
}

static size_t conn_output_pending(const struct haven_peer_conn *conn) {
        return haven_frame_buffer_size(&conn->out);
}

static bool conn_output_busy(const struct haven_peer_conn *conn) {
        return conn_output_pending(conn) > 0 || conn->send_pending > 0;
}

/* Input is read and handled only while the peer keeps up with the replies:
 * once a frame's worth of output is queued, requests wait. */
static bool conn_wants_input(const struct haven_peer_conn *conn) {
        return conn_connected(conn) && conn->handshake_done && !conn->closing &&
               conn_output_pending(conn) <
                       conn->server->max_size + HAVEN_FRAME_HEADER_SIZE;
}

static void conn_free_buffers(struct haven_peer_conn *conn) {
        haven_frame_buffer_free(&conn->in);
        haven_frame_buffer_free(&conn->out);
}

/* Closes the connection now and drops the server's reference, which frees
 * conn unless someone else holds one. error (a negative errno or 0) is
 * only logged. */
static void conn_disconnect(struct haven_peer_conn *conn, int error) {
        struct haven_peer_server *s = conn->server;

        if (!s)
                return;

        if (error < 0)
                (void) log_debug_errno(error,
                                       "Peer connection from \"%s\": "
                                       "dropping: %m",
                                       conn->remote_address);
        else
                log_debug("Peer connection from \"%s\": closed",
                          conn->remote_address);

        if (conn->prev)
                conn->prev->next = conn->next;
        else
                s->connections = conn->next;
        if (conn->next)
                conn->next->prev = conn->prev;
        conn->prev = conn->next = NULL;
        assert(s->n_connections > 0);
        s->n_connections--;

        conn->io_source = sd_event_source_disable_unref(conn->io_source);
        conn->timer_source = sd_event_source_disable_unref(conn->timer_source);
        conn->defer_source = sd_event_source_disable_unref(conn->defer_source);
        if (conn->session) {
                gnutls_deinit(conn->session);
                conn->session = NULL;
        }
        conn->fd = safe_close(conn->fd);
        conn_free_buffers(conn);
        conn->server = NULL;

        haven_peer_conn_unref(conn);
}

static void conn_timer_set(struct haven_peer_conn *conn, uint64_t usec) {
        int r;

        r = sd_event_source_set_time_relative(conn->timer_source, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(conn->timer_source,
                                                SD_EVENT_ONESHOT);
        if (r < 0)
                (void) log_debug_errno(r,
                                       "Peer connection from \"%s\": failed "
                                       "to set timer, ignoring: %m",
                                       conn->remote_address);
}

/* Restarts the idle timer: the peer sent or took bytes, or a message was
 * queued for it. The handshake's time is not extended this way. */
static void conn_touch(struct haven_peer_conn *conn) {
        if (conn->handshake_done && !conn->lingering)
                conn_timer_set(conn, conn->server->timeout_usec);
}

/* Brings the epoll mask and the defer source in line with the connection's
 * state. May close conn (see conn_disconnect()). */
static void conn_update_events(struct haven_peer_conn *conn) {
        bool more_buffered = false;
        uint32_t events = 0;
        int r;

        if (!conn_connected(conn))
                return;

        if (!conn->handshake_done)
                events = conn->tls_wants_write ? EPOLLOUT : EPOLLIN;
        else if (conn->lingering)
                events = EPOLLIN;
        else {
                if (conn_wants_input(conn)) {
                        events |= EPOLLIN;
                        more_buffered =
                                !conn->read_would_block ||
                                gnutls_record_check_pending(conn->session) > 0;
                }
                /* A closing connection still has its close_notify to
                 * send. */
                if (conn_output_busy(conn) || conn->closing ||
                    conn->tls_wants_write)
                        events |= EPOLLOUT;
        }

        r = sd_event_source_set_io_events(conn->io_source, events);
        if (r >= 0)
                r = sd_event_source_set_enabled(conn->defer_source,
                                                more_buffered ? SD_EVENT_ONESHOT
                                                              : SD_EVENT_OFF);
        if (r < 0)
                conn_disconnect(conn, r);
}

int haven_peer_conn_send(struct haven_peer_conn *conn,
                         struct json_object *obj) {
        int r;

        assert(conn);

        if (!conn_connected(conn) || conn->closing)
                return -ENOTCONN;

        /* The queue may move its bytes, also those of a record GnuTLS would
         * not take yet: fine, it holds them encrypted already and only
         * counts them. */
        r = haven_frame_buffer_queue(&conn->out, obj, conn->server->max_size,
                                     conn->server->output_max);
        if (r == -ENOBUFS) {
                conn_disconnect(conn, r);
                return r;
        }
        if (r < 0)
                return r;

        /* Activity: an answer that comes when the idle timer is due too
         * must go out, not be dropped with the connection. A peer that
         * does not take it is dropped a timeout later. */
        conn_touch(conn);
        conn_update_events(conn);
        return 0;
}

int haven_peer_conn_send_error(struct haven_peer_conn *conn, const char *code,
                               const char *message) {
        _cleanup_(json_object_putp) struct json_object *error = NULL;

        assert(conn);

        error = haven_frame_error_new(code, message);
        if (!error)
                return -ENOMEM;
        return haven_peer_conn_send(conn, error);
}

/* Stops reading, drops unread input; the loop sends what is queued, then
 * close_notify, then closes. conn stays valid for a caller that holds a
 * reference or is inside the handler. */
void haven_peer_conn_close(struct haven_peer_conn *conn) {
        if (!conn || !conn_connected(conn) || conn->closing)
                return;

        conn->closing = true;
        conn->in.start = conn->in.end = 0;
        if (!conn->handshake_done) {
                /* Nothing was said yet: nothing to say goodbye to. */
                conn_disconnect(conn, 0);
                return;
        }
        conn_update_events(conn);
}

bool haven_peer_conn_is_open(struct haven_peer_conn *conn) {
        return conn && conn_connected(conn) && !conn->closing;
}

static void conn_refuse(struct haven_peer_conn *conn, const char *reason) {
        int r;

        log_debug("Peer connection from \"%s\": refusing frame: %s",
                  conn->remote_address, reason);
        r = haven_peer_conn_send_error(conn, "bad-message", reason);
        if (r < 0)
                (void) log_debug_errno(r,
                                       "Peer connection from \"%s\": failed "
                                       "to queue error reply, ignoring: %m",
                                       conn->remote_address);
        haven_peer_conn_close(conn);
}

/* Hands each complete frame in the input buffer to the handler, in order,
 * for as long as the connection wants input; a bad frame is answered and
 * closes the connection. Returns 0 or -ENOMEM. The caller holds a
 * reference: conn may be closed on return. */
static int conn_process_input(struct haven_peer_conn *conn) {
        int r;

        while (conn_wants_input(conn) && conn_input_size(conn) > 0) {
                _cleanup_(json_object_putp) struct json_object *msg = NULL;
                struct haven_peer_server *s = conn->server;
                const char *reason = "bad frame";
                size_t consumed = 0;

                r = haven_peer_frame_parse(haven_frame_buffer_head(&conn->in),
                                           conn_input_size(conn), s->max_size,
                                           &msg, &consumed, &reason);
                if (r == 0)
                        break; /* the rest is on its way */
                if (r == -E2BIG || r == -EBADMSG) {
                        conn_refuse(conn, reason);
                        return 0;
                }
                if (r < 0)
                        return r;
                conn->in.start += consumed;

                r = s->handler(conn, msg, s->userdata);
                /* The handler may have closed conn, or freed the server:
                 * look at s only while conn is still connected. */
                if (r < 0 && conn_connected(conn)) {
                        (void) log_debug_errno(r,
                                               "Peer connection from "
                                               "\"%s\": handler failed, "
                                               "closing: %m",
                                               conn->remote_address);
                        haven_peer_conn_close(conn);
                }
        }

        haven_frame_buffer_trim(&conn->in);
        return 0;
}

/* The peer sent close_notify: a half-received frame gets an error (best
 * effort; TLS 1.3 peers can still read), otherwise we say goodbye too. */
static void conn_on_eof(struct haven_peer_conn *conn) {
        conn->peer_closed = true;
        if (conn_input_size(conn) > 0)
                conn_refuse(conn, "truncated frame");
        else
                haven_peer_conn_close(conn);
}

/* Reads records into the input buffer and hands complete frames to the
 * handler, until GnuTLS would block, the connection stops wanting input,
 * or RECORDS_PER_WAKEUP records were read. Returns 0 or a negative errno
 * when the connection broke. */
static int conn_receive(struct haven_peer_conn *conn) {
        int r;

        conn->read_would_block = false;
        for (unsigned i = 0; i < RECORDS_PER_WAKEUP; i++) {
                ssize_t n;

                r = conn_process_input(conn);
                if (r < 0)
                        return r;
                if (!conn_wants_input(conn))
                        return 0;

                /* Frames over the limit were refused on their header. */
                r = haven_frame_buffer_reserve_read(&conn->in);
                if (r < 0)
                        return r;
                assert(conn->in.alloc > conn->in.end);

                n = gnutls_record_recv(conn->session,
                                       conn->in.data + conn->in.end,
                                       conn->in.alloc - conn->in.end);
                if (n > 0) {
                        conn->in.end += (size_t) n;
                        conn->tls_wants_write = false;
                        conn_touch(conn);
                        continue;
                }
                if (n == 0) {
                        conn_on_eof(conn);
                        return 0;
                }
                if (tls_would_block(n)) {
                        conn->read_would_block = true;
                        conn->tls_wants_write =
                                gnutls_record_get_direction(conn->session) == 1;
                        return 0;
                }
                if (n == GNUTLS_E_REHANDSHAKE)
                        return -EPROTO; /* our clients never renegotiate */
                if (gnutls_error_is_fatal((int) n))
                        return tls_error(&conn->transport, n);
                /* A warning alert: go on. */
        }

        /* Out of turn: frames in the last records wait for the defer
         * source like the records still inside GnuTLS. */
        return 0;
}

/* Sends close_notify and enters the lingering close: from now on input is
 * read and dropped until the peer closes or the timer fires. Returns 0 or a
 * negative errno when the connection broke. */
static int conn_say_goodbye(struct haven_peer_conn *conn) {
        int r;

        r = gnutls_bye(conn->session, GNUTLS_SHUT_WR);
        if (tls_would_block(r)) {
                conn->tls_wants_write = true;
                return 0;
        }
        if (r < 0)
                return tls_error(&conn->transport, r);

        conn->tls_wants_write = false;
        conn->lingering = true;
        if (shutdown(conn->fd, SHUT_WR) < 0)
                return -errno;
        conn_timer_set(conn,
                       size_min(conn->server->timeout_usec, LINGER_MAX_USEC));
        return 0;
}

/* Writes queued output until all of it went out or the socket is full; on
 * a closing connection then says goodbye. Returns 0, or a negative errno
 * when the connection broke. */
static int conn_flush(struct haven_peer_conn *conn) {
        while (conn_output_busy(conn)) {
                size_t chunk = conn->send_pending > 0
                                       ? conn->send_pending
                                       : size_min(conn_output_pending(conn),
                                                  RECORD_SIZE_MAX);
                ssize_t n;

                n = gnutls_record_send(conn->session,
                                       conn->out.data + conn->out.start, chunk);
                if (tls_would_block(n)) {
                        conn->send_pending = chunk;
                        conn->tls_wants_write = true;
                        return 0;
                }
                if (n < 0)
                        return tls_error(&conn->transport, n);
                assert((size_t) n <= chunk);
                conn->send_pending = 0;
                conn->tls_wants_write = false;
                conn->out.start += (size_t) n;
                conn_touch(conn);
        }

        haven_frame_buffer_trim(&conn->out);

        if (conn->closing)
                return conn_say_goodbye(conn);
        return 0;
}

/* Reads and drops what the peer still sends after our close_notify.
 * Returns 0 while it goes on, 1 once the peer closed, or a negative errno. */
static int conn_linger(struct haven_peer_conn *conn) {
        uint8_t buf[4096];

        for (unsigned i = 0; i < RECORDS_PER_WAKEUP; i++) {
                ssize_t n = recv(conn->fd, buf, sizeof(buf), MSG_DONTWAIT);

                if (n > 0)
                        continue;
                if (n == 0)
                        return 1;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return 0;
                return -errno;
        }
        return 0;
}

/* Continues the handshake. Returns 0 (done, or waiting for the socket), or
 * a negative errno when it failed. */
static int conn_handshake(struct haven_peer_conn *conn) {
        int r;

        do
                r = gnutls_handshake(conn->session);
        while (r < 0 && !tls_would_block(r) && !gnutls_error_is_fatal(r));

        if (tls_would_block(r)) {
                conn->tls_wants_write =
                        gnutls_record_get_direction(conn->session) == 1;
                return 0;
        }
        if (r < 0)
                return tls_error(&conn->transport, r);

        conn->handshake_done = true;
        conn->tls_wants_write = false;
        conn_touch(conn);
        if (log_get_max_level() >= LOG_DEBUG) {
                _cleanup_free_ char *description =
                        gnutls_session_get_desc(conn->session);

                log_debug("Peer connection from \"%s\": %s",
                          conn->remote_address,
                          description ? description : "TLS session up");
        }
        return 0;
}

/* Does whatever the connection's state allows: handshake, output, input,
 * the lingering close. Every step may close conn; the caller holds a
 * reference. */
static void conn_run(struct haven_peer_conn *conn) {
        int r;

        if (!conn->handshake_done) {
                r = conn_handshake(conn);
                if (r < 0) {
                        conn_disconnect(conn, r);
                        return;
                }
                if (!conn->handshake_done) {
                        conn_update_events(conn);
                        return;
                }
        }

        if (!conn->lingering) {
                r = conn_flush(conn);
                if (r >= 0 && conn_wants_input(conn))
                        r = conn_receive(conn);
                /* Replies the handler queued go out at once. */
                if (r >= 0 && conn_connected(conn) && !conn->lingering)
                        r = conn_flush(conn);
                if (r < 0) {
                        /* A peer that said goodbye may be gone before ours
                         * reaches it: that is how connections end. */
                        conn_disconnect(conn, conn->peer_closed ? 0 : r);
                        return;
                }
        }
        if (conn_connected(conn) && conn->lingering) {
                /* Whatever ends the lingering, nothing is lost. */
                r = conn_linger(conn);
                if (r != 0) {
                        conn_disconnect(conn, 0);
                        return;
                }
        }

        conn_update_events(conn);
}

static int conn_on_io(sd_event_source *source, int fd, uint32_t revents,
                      void *userdata) {
        /* Our own reference: the handler or an error may close conn. */
        _cleanup_(haven_peer_conn_unrefp) struct haven_peer_conn *conn =
                haven_peer_conn_ref(userdata);

        conn_run(conn);
        return 0;
}

static int conn_on_defer(sd_event_source *source, void *userdata) {
        _cleanup_(haven_peer_conn_unrefp) struct haven_peer_conn *conn =
                haven_peer_conn_ref(userdata);

        conn_run(conn);
        return 0;
}

static int conn_on_timer(sd_event_source *source, uint64_t usec,
                         void *userdata) {
        struct haven_peer_conn *conn = userdata;

        /* Someone holds conn to answer later: it is not idle. */
        if (conn->handshake_done && !conn->closing && conn->n_ref > 1) {
                conn_timer_set(conn, conn->server->timeout_usec);
                return 0;
        }
        conn_disconnect(conn, -ETIMEDOUT);
        return 0;
}

/* "192.0.2.7", "2001:db8::7", "fe80::1%eth0"; IPv4-mapped as IPv4. */
static void address_format(const struct sockaddr_storage *ss, socklen_t len,
                           char *buf, size_t size) {
        const struct sockaddr *sa = (const struct sockaddr *) ss;
        struct sockaddr_in mapped = {.sin_family = AF_INET};

        if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *sin6 =
                        (const struct sockaddr_in6 *) ss;

                if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
                        memcpy(&mapped.sin_addr, &sin6->sin6_addr.s6_addr[12],
                               4);
                        sa = (const struct sockaddr *) &mapped;
                        len = sizeof(mapped);
                }
        }
        if (getnameinfo(sa, len, buf, size, NULL, 0, NI_NUMERICHOST) != 0)
                snprintf(buf, size, "?");
}

/* Adds a connection for the accepted socket fd, which it takes over (closed
 * on failure too). Returns 0 or a negative errno. */
static int conn_new(struct haven_peer_server *s, int fd,
                    const struct sockaddr_storage *remote, socklen_t len) {
        _cleanup_(haven_peer_conn_unrefp) struct haven_peer_conn *conn = NULL;
        int r;

        conn = calloc(1, sizeof(*conn));
        if (!conn) {
                safe_close(fd);
                return -ENOMEM;
        }
        conn->n_ref = 1; /* the server's */
        conn->fd = fd;
        address_format(remote, len, conn->remote_address,
                       sizeof(conn->remote_address));
        socket_set_nodelay(fd);

        r = gnutls_init(&conn->session,
                        GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
        if (r < 0)
                return crypto_error(r);
        r = gnutls_priority_set(conn->session, s->priority);
        if (r >= 0)
                r = gnutls_credentials_set(conn->session,
                                           GNUTLS_CRD_CERTIFICATE,
                                           s->credentials->certificate);
        if (r < 0)
                return crypto_error(r);
        gnutls_certificate_server_set_request(conn->session,
                                              GNUTLS_CERT_IGNORE);
        transport_attach(&conn->transport, conn->session, conn->fd);

        r = sd_event_add_io(s->event, &conn->io_source, conn->fd, EPOLLIN,
                            conn_on_io, conn);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(conn->io_source,
                                               "haven-peer-conn");
        /* The whole handshake must fit in one timeout. */
        r = sd_event_add_time_relative(s->event, &conn->timer_source,
                                       CLOCK_MONOTONIC, s->timeout_usec, 0,
                                       conn_on_timer, conn);
        if (r < 0)
                return r;
        r = sd_event_add_defer(s->event, &conn->defer_source, conn_on_defer,
                               conn);
        if (r >= 0)
                r = sd_event_source_set_enabled(conn->defer_source,
                                                SD_EVENT_OFF);
        if (r < 0)
                return r;

        log_debug("Peer connection from \"%s\": accepted",
                  conn->remote_address);

        conn->server = s;
        conn->next = s->connections;
        if (s->connections)
                s->connections->prev = conn;
        s->connections = TAKE_PTR(conn);
        s->n_connections++;
        return 0;
}

struct haven_peer_conn *haven_peer_conn_ref(struct haven_peer_conn *conn) {
        if (!conn)
                return NULL;
        assert(conn->n_ref > 0);
        conn->n_ref++;
        return conn;
}

/* The last reference frees the connection (which is closed by then: the
 * server holds one while it is open). */
struct haven_peer_conn *haven_peer_conn_unref(struct haven_peer_conn *conn) {
        if (!conn)
                return NULL;
        assert(conn->n_ref > 0);
        if (--conn->n_ref > 0)
                return NULL;

        assert(!conn_connected(conn));
        sd_event_source_disable_unref(conn->io_source);
        sd_event_source_disable_unref(conn->timer_source);
        sd_event_source_disable_unref(conn->defer_source);
        if (conn->session)
                gnutls_deinit(conn->session);
        safe_close(conn->fd);
        conn_free_buffers(conn);
        free(conn);
        return NULL;
}

const char *haven_peer_conn_remote_address(struct haven_peer_conn *conn) {
        assert(conn);
        return conn->remote_address;
}

void haven_peer_conn_set_userdata(struct haven_peer_conn *conn,
                                  void *userdata) {
        assert(conn);
        conn->userdata = userdata;
}

void *haven_peer_conn_get_userdata(struct haven_peer_conn *conn) {
        assert(conn);
        return conn->userdata;
}

/* ==== Listening socket ==== */

static int server_on_accept_retry(sd_event_source *source, uint64_t usec,
                                  void *userdata) {
        struct haven_peer_server *s = userdata;
        int r;

        r = sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
        if (r < 0)
                (void) log_debug_errno(r,
                                       "Peer server on port %u: failed to "
                                       "resume accepting, ignoring: %m",
                                       s->port);
        return 0;
}

/* Out of file descriptors or memory: the listening socket stays readable,
 * so stop watching it for a moment instead of spinning. */
static void server_pause_accept(struct haven_peer_server *s) {
        int r;

        r = sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
        if (r < 0)
                return;

        if (s->accept_retry_source) {
                r = sd_event_source_set_time_relative(s->accept_retry_source,
                                                      ACCEPT_RETRY_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->accept_retry_source,
                                                        SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(
                        s->event, &s->accept_retry_source, CLOCK_MONOTONIC,
                        ACCEPT_RETRY_USEC, 0, server_on_accept_retry, s);
        if (r < 0)
                /* Spinning beats never accepting again. */
                (void) sd_event_source_set_enabled(s->listen_source,
                                                   SD_EVENT_ON);
}

static int server_on_accept(sd_event_source *source, int fd, uint32_t revents,
                            void *userdata) {
        struct haven_peer_server *s = userdata;
        int r;

        for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
                struct sockaddr_storage remote = {};
                socklen_t len = sizeof(remote);
                _cleanup_close_ int conn_fd = -1;

                conn_fd = accept4(s->fd, (struct sockaddr *) &remote, &len,
                                  SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (conn_fd < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        if (errno == EINTR || errno == ECONNABORTED ||
                            errno == EPROTO)
                                continue;
                        (void) log_debug_errno(errno,
                                               "Peer server on port %u: "
                                               "failed to accept, pausing: %m",
                                               s->port);
                        server_pause_accept(s);
                        return 0;
                }

                if (s->n_connections >= s->max_connections) {
                        /* Before TLS there is no way to say why: the peer
                         * sees the connection closed. */
                        log_debug("Peer server on port %u: %u connections, "
                                  "refusing another",
                                  s->port, s->n_connections);
                        continue;
                }

                r = conn_new(s, TAKE_FD(conn_fd), &remote, len);
                if (r < 0)
                        (void) log_debug_errno(r,
                                               "Peer server on port %u: "
                                               "failed to set up connection, "
                                               "ignoring: %m",
                                               s->port);
        }
        return 0;
}

/* Creates, binds and listens on a socket for addr. Returns the fd or a
 * negative errno. */
static int listen_socket(const struct sockaddr *addr, socklen_t len) {
        _cleanup_close_ int fd = -1;
        static const int one = 1, zero = 0;

        fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        /* The wildcard IPv6 address takes IPv4 connections too. */
        if (addr->sa_family == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(
                    &((const struct sockaddr_in6 *) addr)->sin6_addr) &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
                return -errno;
        if (bind(fd, addr, len) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* getaddrinfo() errors for a literal: anything but a system error means
 * the text is no address. */
static int addrinfo_error(int eai) {
        switch (eai) {
        case EAI_SYSTEM:
                return negative_errno();
        case EAI_MEMORY:
                return -ENOMEM;
        default:
                return -EINVAL;
        }
}

/* Listens on all addresses: IPv6 and IPv4 on one socket, or IPv4 alone on
 * a host without IPv6. Returns the fd or a negative errno. */
static int server_listen_any(uint16_t port) {
        struct sockaddr_in6 any6 = {
                .sin6_family = AF_INET6,
                .sin6_port = htons(port),
                .sin6_addr = IN6ADDR_ANY_INIT,
        };
        struct sockaddr_in any4 = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_ANY),
        };
        int fd;

        fd = listen_socket((struct sockaddr *) &any6, sizeof(any6));
        if (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL)
                return fd;
        return listen_socket((struct sockaddr *) &any4, sizeof(any4));
}

/* Listens on address, an IP literal. Returns the fd, -EINVAL when address
 * is no literal, or another negative errno. */
static int server_listen_address(const char *address, uint16_t port) {
        _cleanup_(freeaddrinfop) struct addrinfo *ai = NULL;
        struct addrinfo hints = {
                .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                .ai_socktype = SOCK_STREAM,
        };
        char service[8];
        int r;

        snprintf(service, sizeof(service), "%u", port);
        r = getaddrinfo(address, service, &hints, &ai);
        if (r != 0)
                return addrinfo_error(r);
        if (!ai)
                return -EINVAL;
        return listen_socket(ai->ai_addr, ai->ai_addrlen);
}

int haven_peer_server_new(sd_event *event,
                          const struct haven_peer_server_config *config,
                          struct haven_peer_server **ret) {
        _cleanup_(haven_peer_server_freep) struct haven_peer_server *s = NULL;
        struct sockaddr_storage bound = {};
        socklen_t len = sizeof(bound);
        int r;

        assert(event);
        assert(config);
        assert(ret);

        if (!config->handler || !config->credentials)
                return -EINVAL;
        if (config->max_size > HAVEN_PEER_SIZE_HARD_MAX)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        s->event = sd_event_ref(event);
        s->credentials = credentials_ref(config->credentials);
        s->max_size = haven_frame_max_size(config->max_size);
        s->output_max = haven_frame_queue_max(s->max_size);
        s->max_connections = config->max_connections > 0
                                     ? config->max_connections
                                     : HAVEN_PEER_MAX_CONNECTIONS_DEFAULT;
        s->timeout_usec = config->timeout_usec > 0
                                  ? config->timeout_usec
                                  : HAVEN_PEER_TIMEOUT_DEFAULT_USEC;
        s->handler = config->handler;
        s->userdata = config->userdata;

        r = gnutls_priority_init(&s->priority, TLS_PRIORITY, NULL);
        if (r < 0)
                return crypto_error(r);

        s->fd = config->address
                        ? server_listen_address(config->address, config->port)
                        : server_listen_any(config->port);
        if (s->fd < 0)
                return s->fd;
        if (getsockname(s->fd, (struct sockaddr *) &bound, &len) < 0)
                return -errno;
        if (bound.ss_family == AF_INET6)
                s->port = ntohs(((struct sockaddr_in6 *) &bound)->sin6_port);
        else
                s->port = ntohs(((struct sockaddr_in *) &bound)->sin_port);

        r = sd_event_add_io(event, &s->listen_source, s->fd, EPOLLIN,
                            server_on_accept, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->listen_source,
                                               "haven-peer-listen");

        log_debug("Peer server on port %u: listening", s->port);
        *ret = TAKE_PTR(s);
        return 0;
}

struct haven_peer_server *haven_peer_server_free(struct haven_peer_server *s) {
        if (!s)
                return NULL;

        while (s->connections)
                conn_disconnect(s->connections, 0);

        sd_event_source_disable_unref(s->listen_source);
        sd_event_source_disable_unref(s->accept_retry_source);
        safe_close(s->fd);
        if (s->priority)
                gnutls_priority_deinit(s->priority);
        haven_peer_credentials_free(s->credentials);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

uint16_t haven_peer_server_port(struct haven_peer_server *s) {
        assert(s);
        return s->port;
}

unsigned haven_peer_server_connections(struct haven_peer_server *s) {
        return s ? s->n_connections : 0;
}

/* ==== Blocking client ==== */

struct haven_peer_client {
        int fd;
        gnutls_session_t session;
        gnutls_certificate_credentials_t certificate;
        struct transport transport;
        bool handshake_done;
        uint8_t fingerprint[SHA256_SIZE];
        size_t max_size;
        /* A frame went out in part (timeout, error): the server would read
         * our next bytes as the rest of it, so sending is over. */
        bool send_broken;
        /* A frame over the limit was announced: what follows cannot be
         * framed, so receiving is over. */
        bool recv_broken;
        struct haven_frame_buffer in; /* received */
};

/* Waits for what the session's last blocked call needs. */
static int client_wait(struct haven_peer_client *c, uint64_t deadline) {
        return haven_frame_wait(
                c->fd,
                gnutls_record_get_direction(c->session) == 1 ? POLLOUT : POLLIN,
                deadline);
}

struct haven_peer_client *haven_peer_client_free(struct haven_peer_client *c) {
        if (!c)
                return NULL;
        if (c->session) {
                /* One try: a server that does not read does not hold us. */
                if (c->handshake_done && !c->send_broken)
                        (void) gnutls_bye(c->session, GNUTLS_SHUT_WR);
                gnutls_deinit(c->session);
        }
        if (c->certificate)
                gnutls_certificate_free_credentials(c->certificate);
        safe_close(c->fd);
        haven_frame_buffer_free(&c->in);
        free(c);
        return NULL;
}

/* Connects the socket to addr within the deadline. Returns 0 or a negative
 * errno. */
static int client_tcp_connect(struct haven_peer_client *c,
                              const struct addrinfo *ai, uint64_t deadline) {
        int error = 0, r;
        socklen_t len = sizeof(error);

        c->fd = socket(ai->ai_family,
                       SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0)
                return -errno;
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) >= 0)
                return 0;
        if (errno != EINPROGRESS && errno != EINTR)
                return -errno;

        r = haven_frame_wait(c->fd, POLLOUT, deadline);
        if (r < 0)
                return r;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                return -errno;
        return error > 0 ? -error : 0;
}

static int client_handshake(struct haven_peer_client *c, uint64_t deadline) {
        const gnutls_datum_t *peers;
        unsigned n = 0;
        int r;

        r = gnutls_init(&c->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
                                             GNUTLS_NO_SIGNAL |
                                             GNUTLS_NO_TICKETS);
        if (r < 0)
                return crypto_error(r);
        r = gnutls_priority_set_direct(c->session, TLS_PRIORITY, NULL);
        if (r >= 0)
                r = gnutls_certificate_allocate_credentials(&c->certificate);
        if (r >= 0)
                r = gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE,
                                           c->certificate);
        if (r < 0)
                return crypto_error(r);
        transport_attach(&c->transport, c->session, c->fd);

        for (;;) {
                r = gnutls_handshake(c->session);
                if (r >= 0)
                        break;
                if (tls_would_block(r)) {
                        r = client_wait(c, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (gnutls_error_is_fatal(r)) {
                        r = tls_error(&c->transport, r);
                        /* The server closed on us before we finished
                         * saying hello. */
                        return r == -EPIPE ? -ECONNRESET : r;
                }
        }
        c->handshake_done = true;

        /* Nodes' certificates are self-signed: the fingerprint is what the
         * caller checks, not a chain. */
        if (gnutls_certificate_type_get(c->session) != GNUTLS_CRT_X509)
                return -EPROTO;
        peers = gnutls_certificate_get_peers(c->session, &n);
        if (!peers || n == 0)
                return -EPROTO;
        r = gnutls_hash_fast(GNUTLS_DIG_SHA256, peers[0].data, peers[0].size,
                             c->fingerprint);
        if (r < 0)
                return crypto_error(r);
        return 0;
}

/* One attempt on one address. Returns 0 and *ret, or a negative errno. */
static int client_connect_one(const struct addrinfo *ai,
                              const uint8_t *expected, uint64_t deadline,
                              struct haven_peer_client **ret) {
        _cleanup_(haven_peer_client_freep) struct haven_peer_client *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        c->max_size = HAVEN_PEER_SIZE_DEFAULT;

        r = client_tcp_connect(c, ai, deadline);
        if (r < 0)
                return r;
        socket_set_nodelay(c->fd);

        r = client_handshake(c, deadline);
        if (r < 0)
                return r;
        if (expected && memcmp(expected, c->fingerprint, SHA256_SIZE) != 0)
                return -EPERM;

        *ret = TAKE_PTR(c);
        return 0;
}

int haven_peer_client_connect(const char *host, uint16_t port,
                              const char *expected_fingerprint,
                              uint64_t timeout_usec,
                              struct haven_peer_client **ret) {
        _cleanup_(freeaddrinfop) struct addrinfo *list = NULL;
        struct addrinfo hints = {
                .ai_flags = AI_NUMERICSERV,
                .ai_socktype = SOCK_STREAM,
        };
        uint8_t expected[SHA256_SIZE];
        char service[8];
        uint64_t deadline;
        int r;

        assert(host);
        assert(ret);

        if (host[0] == '\0' || port == 0)
                return -EINVAL;
        if (expected_fingerprint) {
                r = fingerprint_parse(expected_fingerprint, expected);
                if (r < 0)
                        return r;
        }
        deadline = haven_deadline_usec(timeout_usec);

        snprintf(service, sizeof(service), "%u", port);
        r = getaddrinfo(host, service, &hints, &list);
        if (r == EAI_SYSTEM)
                return negative_errno();
        if (r == EAI_MEMORY)
                return -ENOMEM;
        if (r != 0 || !list)
                return -EADDRNOTAVAIL;

        r = -EADDRNOTAVAIL;
        for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
                r = client_connect_one(ai,
                                       expected_fingerprint ? expected : NULL,
                                       deadline, ret);
                /* A server that answered with another certificate is worth
                 * reporting as it is; after the deadline, nothing else
                 * could connect. */
                if (r >= 0 || r == -EPERM || r == -ETIMEDOUT)
                        return r;
                (void) log_debug_errno(r,
                                       "Peer client: connecting to \"%s\" "
                                       "failed, trying the next address: %m",
                                       host);
        }
        return r;
}

void haven_peer_client_fingerprint(
        const struct haven_peer_client *c,
        char buf[static HAVEN_PEER_FINGERPRINT_SIZE]) {
        assert(c);
        fingerprint_format(c->fingerprint, buf);
}

int haven_peer_client_set_max_size(struct haven_peer_client *c,
                                   size_t max_size) {
        assert(c);
        if (max_size > HAVEN_PEER_SIZE_HARD_MAX)
                return -EINVAL;
        c->max_size = haven_frame_max_size(max_size);
        return 0;
}

static int client_send_until(struct haven_peer_client *c,
                             struct json_object *obj, uint64_t deadline) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size, done = 0;
        int r;

        if (c->send_broken)
                return -ENOTCONN;

        r = haven_frame_encode(obj, c->max_size, &frame, &size);
        if (r < 0)
                return r;

        while (done < size) {
                size_t chunk = size_min(size - done, RECORD_SIZE_MAX);
                ssize_t n;

                /* After GNUTLS_E_AGAIN, called again with the same bytes. */
                n = gnutls_record_send(c->session, frame + done, chunk);
                if (n >= 0) {
                        done += (size_t) n;
                        continue;
                }
                if (tls_would_block(n))
                        r = client_wait(c, deadline);
                else
                        r = tls_error(&c->transport, n);
                if (r < 0) {
                        /* GnuTLS may hold part of a record: the stream is
                         * out of step whatever was counted. */
                        c->send_broken = true;
                        return r;
                }
        }
        return 0;
}

static int client_recv_until(struct haven_peer_client *c, uint64_t deadline,
                             struct json_object **ret) {
        int r;

        if (c->recv_broken)
                return -ENOTCONN;

        for (;;) {
                const char *reason = NULL;
                size_t consumed = 0;
                ssize_t n;

                r = haven_peer_frame_parse(haven_frame_buffer_head(&c->in),
                                           haven_frame_buffer_size(&c->in),
                                           c->max_size, ret, &consumed,
                                           &reason);
                if (r == -E2BIG) {
                        c->recv_broken = true;
                        return r;
                }
                if (r == -EBADMSG) {
                        /* Skipped: the frame after it is read correctly. */
                        c->in.start += consumed;
                        log_debug("Peer client: bad frame: %s", reason);
                        return r;
                }
                if (r < 0)
                        return r;
                if (r > 0) {
                        c->in.start += consumed;
                        return 0;
                }

                r = haven_frame_buffer_reserve_read(&c->in);
                if (r < 0)
                        return r;

                n = gnutls_record_recv(c->session, c->in.data + c->in.end,
                                       c->in.alloc - c->in.end);
                if (n > 0) {
                        c->in.end += (size_t) n;
                        continue;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (tls_would_block(n)) {
                        r = client_wait(c, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (n == GNUTLS_E_REHANDSHAKE)
                        return -EPROTO;
                if (gnutls_error_is_fatal((int) n))
                        return tls_error(&c->transport, n);
        }
}

int haven_peer_client_send(struct haven_peer_client *c, struct json_object *obj,
                           uint64_t timeout_usec) {
        assert(c);
        return client_send_until(c, obj, haven_deadline_usec(timeout_usec));
}

int haven_peer_client_recv(struct haven_peer_client *c, uint64_t timeout_usec,
                           struct json_object **ret) {
        assert(c);
        assert(ret);
        return client_recv_until(c, haven_deadline_usec(timeout_usec), ret);
}

int haven_peer_client_call(struct haven_peer_client *c, struct json_object *req,
                           uint64_t timeout_usec, struct json_object **ret) {
        uint64_t deadline;
        int r;

        assert(c);
        assert(ret);

        deadline = haven_deadline_usec(timeout_usec);
        r = client_send_until(c, req, deadline);
        if (r < 0)
                return r;
        return client_recv_until(c, deadline, ret);
}
