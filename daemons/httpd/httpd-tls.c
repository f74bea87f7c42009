/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HTTPS certificate and key: read from their files, or, on first
 * start, a new ECDSA P-256 key and a self-signed certificate naming this
 * host (CN and SANs: host name, "localhost", every address but IPv6
 * link-local ones). A local stand-in until libhaven's peer credentials
 * take file names and SANs (see README.md). Must not: log key material,
 * or leave a key readable by others, even briefly.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "haven/log.h"
#include "httpd.h"

#define PEM_FILE_MAX (64u * 1024u)
#define CERT_BACKDATE_SEC (24 * 3600)
/* RFC 5280's "no well-defined expiration", 9999-12-31T23:59:59Z. */
#define CERT_NO_EXPIRATION ((time_t) 253402300799LL)
#define COMMON_NAME_MAX 64u

DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_crt_t, gnutls_x509_crt_deinit)
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_privkey_t, gnutls_x509_privkey_deinit)
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_certificate_credentials_t,
                            gnutls_certificate_free_credentials)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ifaddrs *, freeifaddrs)

static int crypto_error(int r) {
        return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EIO;
}

/* A datum GnuTLS allocated, wiped and freed. */
static void datum_wipe(gnutls_datum_t *d) {
        if (d->data) {
                explicit_bzero(d->data, d->size);
                gnutls_free(d->data);
        }
        *d = (gnutls_datum_t){};
}

/* ==== Files ==== */

/* Reads path, a regular file of at most PEM_FILE_MAX bytes, as a
 * NUL-terminated string. Returns 0 and *ret (free after wiping),
 * -ENOENT, -EFBIG, -EBADMSG (not a regular file or holds a NUL), or
 * another negative errno. */
static int file_read(const char *path, char **ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t done = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if (st.st_size > (off_t) PEM_FILE_MAX)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (done < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + done, (size_t) st.st_size - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        explicit_bzero(buf, done);
                        return n < 0 ? -errno : -EBADMSG;
                }
                done += (size_t) n;
        }
        buf[done] = '\0';
        if (strlen(buf) != done) {
                explicit_bzero(buf, done);
                return -EBADMSG;
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Replaces path with data: a temporary file in the same directory,
 * created 0600 and then given mode, synced, renamed into place. Returns 0
 * or a negative errno (no temporary file is left behind). */
static int file_write_atomic(const char *path, const gnutls_datum_t *data,
                             mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        const uint8_t *p = data->data;
        size_t left = data->size;
        int r = 0;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0)
                r = -errno;
        while (r >= 0 && left > 0) {
                ssize_t n = write(fd, p, left);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        r = -errno;
                else {
                        p += n;
                        left -= (size_t) n;
                }
        }
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && close(fd) < 0)
                r = -errno;
        fd = -1;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

/* ==== Generation ==== */

static void host_name(char buf[static HOST_NAME_MAX + 1]) {
        if (gethostname(buf, HOST_NAME_MAX + 1) < 0 || buf[0] == '\0')
                strcpy(buf, "haven");
        buf[HOST_NAME_MAX] = '\0';
}

static int san_add_ip(gnutls_x509_crt_t crt, const void *address, size_t size) {
        return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS,
                                                    address, (unsigned) size,
                                                    GNUTLS_FSAN_APPEND);
}

/* DNS SANs for the host name and "localhost", IP SANs for every address
 * of this host but IPv6 link-local ones (which need a zone to be used). */
static int sans_add(gnutls_x509_crt_t crt, const char *host) {
        _cleanup_(freeifaddrsp) struct ifaddrs *list = NULL;
        int r;

        r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host,
                                                 (unsigned) strlen(host),
                                                 GNUTLS_FSAN_APPEND);
        if (r >= 0 && !streq(host, "localhost"))
                r = gnutls_x509_crt_set_subject_alt_name(
                        crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
                        GNUTLS_FSAN_APPEND);
        if (r < 0)
                return crypto_error(r);

        if (getifaddrs(&list) < 0)
                return 0; /* names only */
        for (struct ifaddrs *i = list; i; i = i->ifa_next) {
                if (!i->ifa_addr)
                        continue;
                if (i->ifa_addr->sa_family == AF_INET) {
                        const struct sockaddr_in *in =
                                (const void *) i->ifa_addr;

                        r = san_add_ip(crt, &in->sin_addr, 4);
                } else if (i->ifa_addr->sa_family == AF_INET6) {
                        const struct sockaddr_in6 *in6 =
                                (const void *) i->ifa_addr;

                        if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr))
                                continue;
                        r = san_add_ip(crt, &in6->sin6_addr, 16);
                } else
                        continue;
                if (r < 0)
                        return crypto_error(r);
        }
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

/* A self-signed TLS server certificate for key. */
static int crt_generate(gnutls_x509_privkey_t key, gnutls_x509_crt_t *ret) {
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        char host[HOST_NAME_MAX + 1], cn[COMMON_NAME_MAX + 1];
        uint8_t serial[16], key_id[64];
        size_t key_id_size = sizeof key_id;
        int r;

        host_name(host);
        snprintf(cn, sizeof cn, "%s", host);
        r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
        if (r < 0)
                return crypto_error(r);
        serial[0] = (uint8_t) ((serial[0] & 0x7F) | 0x40); /* positive */

        r = gnutls_x509_crt_init(&crt);
        if (r >= 0)
                r = gnutls_x509_crt_set_version(crt, 3);
        if (r >= 0)
                r = gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
        if (r >= 0)
                r = gnutls_x509_crt_set_dn_by_oid(
                        crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn));
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
                r = gnutls_x509_privkey_get_key_id(key, 0, key_id,
                                                   &key_id_size);
        if (r >= 0)
                r = gnutls_x509_crt_set_subject_key_id(crt, key_id,
                                                       key_id_size);
        if (r < 0)
                return crypto_error(r);
        r = sans_add(crt, host);
        if (r < 0)
                return r;
        r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
        if (r < 0)
                return crypto_error(r);
        *ret = TAKE_PTR(crt);
        return 0;
}

static int key_import(const char *pem, gnutls_x509_privkey_t *ret) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        gnutls_datum_t d = {.data = (unsigned char *) pem,
                            .size = (unsigned) strlen(pem)};
        int r;

        r = gnutls_x509_privkey_init(&key);
        if (r < 0)
                return crypto_error(r);
        r = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL,
                                        GNUTLS_PKCS_PLAIN);
        if (r < 0)
                return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
        *ret = TAKE_PTR(key);
        return 0;
}

/* Writes the certificate (0644) and the key (0600), the certificate
 * first: should we stop in between, there is no key and the next start
 * makes both again. write_key is false when the key file exists already.
 * Returns 0 and both PEM texts (new strings), or a negative errno. */
static int credentials_write(const char *cert_path, const char *key_path,
                             gnutls_x509_crt_t crt, gnutls_x509_privkey_t key,
                             bool write_key, char **ret_cert_pem,
                             char **ret_key_pem) {
        gnutls_datum_t cert_pem = {}, key_pem = {};
        int r;

        r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cert_pem);
        if (r >= 0)
                r = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM,
                                                      NULL, GNUTLS_PKCS_PLAIN,
                                                      &key_pem);
        if (r < 0) {
                r = crypto_error(r);
                goto out;
        }
        r = file_write_atomic(cert_path, &cert_pem, 0644);
        if (r >= 0 && write_key)
                r = file_write_atomic(key_path, &key_pem, 0600);
        if (r < 0)
                goto out;
        *ret_cert_pem = strndup((const char *) cert_pem.data, cert_pem.size);
        *ret_key_pem = strndup((const char *) key_pem.data, key_pem.size);
        if (!*ret_cert_pem || !*ret_key_pem) {
                free(*ret_cert_pem);
                if (*ret_key_pem)
                        explicit_bzero(*ret_key_pem, key_pem.size);
                free(*ret_key_pem);
                *ret_cert_pem = *ret_key_pem = NULL;
                r = -ENOMEM;
        }
out:
        datum_wipe(&cert_pem);
        datum_wipe(&key_pem);
        return r;
}

/* Whether the certificate holds the key's public key (GnuTLS checks when
 * it loads the pair). Returns 0, -EKEYREJECTED, -EBADMSG. */
static int pair_check(const char *cert_pem, const char *key_pem) {
        _cleanup_(gnutls_certificate_free_credentialsp)
                gnutls_certificate_credentials_t cred = NULL;
        gnutls_datum_t cert = {.data = (unsigned char *) cert_pem,
                               .size = (unsigned) strlen(cert_pem)},
                       key = {.data = (unsigned char *) key_pem,
                              .size = (unsigned) strlen(key_pem)};
        int r;

        r = gnutls_certificate_allocate_credentials(&cred);
        if (r < 0)
                return crypto_error(r);
        r = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key,
                                                 GNUTLS_X509_FMT_PEM, NULL, 0);
        if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
                return -EKEYREJECTED;
        if (r < 0)
                return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
        return 0;
}

static void pem_free(char *pem) {
        if (pem) {
                explicit_bzero(pem, strlen(pem));
                free(pem);
        }
}

int httpd_tls_load_or_create(const char *cert_path, const char *key_path,
                             char **ret_cert_pem, char **ret_key_pem) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        char *cert_pem = NULL, *key_pem = NULL;
        int r;

        assert(cert_path && key_path && ret_cert_pem && ret_key_pem);

        r = file_read(key_path, &key_pem);
        if (r == -ENOENT) {
                r = key_generate(&key);
                if (r >= 0)
                        r = crt_generate(key, &crt);
                if (r >= 0)
                        r = credentials_write(cert_path, key_path, crt, key,
                                              true, &cert_pem, &key_pem);
                if (r < 0)
                        return r;
                log_info("HTTPS: created a self-signed certificate in \"%s\"",
                         cert_path);
        } else if (r < 0)
                return r;
        else {
                r = file_read(cert_path, &cert_pem);
                if (r == -ENOENT) {
                        r = key_import(key_pem, &key);
                        pem_free(TAKE_PTR(key_pem));
                        if (r >= 0)
                                r = crt_generate(key, &crt);
                        if (r >= 0)
                                r = credentials_write(cert_path, key_path, crt,
                                                      key, false, &cert_pem,
                                                      &key_pem);
                        if (r < 0)
                                return r;
                        log_info("HTTPS: made a new self-signed certificate "
                                 "\"%s\" for the existing key",
                                 cert_path);
                } else if (r < 0) {
                        pem_free(key_pem);
                        return r;
                }
        }

        r = pair_check(cert_pem, key_pem);
        if (r < 0) {
                free(cert_pem);
                pem_free(key_pem);
                return r;
        }
        *ret_cert_pem = cert_pem;
        *ret_key_pem = key_pem;
        return 0;
}
