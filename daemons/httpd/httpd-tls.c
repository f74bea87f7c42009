/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HTTPS certificate and key: libhaven's peer credentials (haven/
 * peer.h) with this node's file names and SANs (host name, "localhost",
 * every address but IPv6 link-local ones), made on first start; and their
 * replacement through the API (PUT /api/v1/tls), checked before anything
 * is written and used from the next start of haven-httpd. Must not: log
 * key material, or leave a key readable by others, even briefly.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>

#include "haven/log.h"
#include "haven/peer.h"
#include "httpd.h"

#define SANS_MAX 64u

DEFINE_TRIVIAL_CLEANUP_FUNC(struct ifaddrs *, freeifaddrs)

/* ==== This host's names ==== */

/* The host name, "localhost" and every address of this host but IPv6
 * link-local ones (they need a zone to be used), NULL-terminated. */
static int host_sans(char ***ret) {
        _cleanup_(freeifaddrsp) struct ifaddrs *list = NULL;
        _cleanup_strv_free_ char **sans = calloc(SANS_MAX + 1, sizeof(char *));
        char host[HOST_NAME_MAX + 1] = "";
        size_t n = 0;

        if (!sans)
                return -ENOMEM;
        if (gethostname(host, sizeof host - 1) < 0 || !host[0])
                strcpy(host, "haven");
        sans[n++] = strdup(host);
        if (!streq(host, "localhost"))
                sans[n++] = strdup("localhost");
        for (size_t i = 0; i < n; i++)
                if (!sans[i])
                        return -ENOMEM;
        if (getifaddrs(&list) >= 0)
                for (struct ifaddrs *i = list; i && n < SANS_MAX;
                     i = i->ifa_next) {
                        char text[INET6_ADDRSTRLEN];
                        const void *address;

                        if (!i->ifa_addr)
                                continue;
                        if (i->ifa_addr->sa_family == AF_INET)
                                address = &((const struct sockaddr_in
                                                     *) (const void *)
                                                    i->ifa_addr)
                                                   ->sin_addr;
                        else if (i->ifa_addr->sa_family == AF_INET6) {
                                const struct in6_addr *a =
                                        &((const struct sockaddr_in6
                                                   *) (const void *)
                                                  i->ifa_addr)
                                                 ->sin6_addr;

                                if (IN6_IS_ADDR_LINKLOCAL(a))
                                        continue;
                                address = a;
                        } else
                                continue;
                        if (!inet_ntop(i->ifa_addr->sa_family, address, text,
                                       sizeof text))
                                continue;
                        sans[n] = strdup(text);
                        if (!sans[n])
                                return -ENOMEM;
                        n++;
                }
        *ret = TAKE_PTR(sans);
        return 0;
}

int httpd_tls_load_or_create(const char *cert_path, const char *key_path,
                             char **ret_cert_pem, char **ret_key_pem) {
        _cleanup_(
                haven_peer_credentials_freep) struct haven_peer_credentials *c =
                NULL;
        _cleanup_strv_free_ char **sans = NULL;
        char fingerprint[HAVEN_PEER_FINGERPRINT_SIZE];
        int r;

        assert(cert_path && key_path && ret_cert_pem && ret_key_pem);

        r = host_sans(&sans);
        if (r < 0)
                return r;
        r = haven_peer_credentials_load_or_create_files(
                cert_path, key_path, (const char *const *) sans, &c);
        if (r < 0)
                return r;
        haven_peer_credentials_fingerprint(c, fingerprint);
        log_info("HTTPS: certificate \"%s\", SHA-256 fingerprint %s", cert_path,
                 fingerprint);
        return haven_peer_credentials_export_pem(c, ret_cert_pem, ret_key_pem);
}

/* ==== Replacing them ==== */

int httpd_tls_replace(struct httpd_request *r) {
        const struct httpd_config *config =
                httpd_get_config(httpd_request_server(r));
        struct json_object *body = httpd_request_body(r);
        _cleanup_(
                haven_peer_credentials_freep) struct haven_peer_credentials *c =
                NULL;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        char fingerprint[HAVEN_PEER_FINGERPRINT_SIZE];
        const char *cert = NULL, *key = NULL;
        int ret;

        (void) haven_json_get_string(body, "certificate", &cert);
        (void) haven_json_get_string(body, "key", &key);
        assert(cert && key); /* the policy says so */
        ret = haven_peer_credentials_from_pem(cert, key, (uint64_t) time(NULL),
                                              &c);
        switch (ret) {
        case 0:
                break;
        case -EKEYREJECTED:
                httpd_reply_code(r, HTTPD_ERROR_INVALID, "key",
                                 "the key does not belong to the "
                                 "certificate");
                return 0;
        case -EKEYEXPIRED:
                httpd_reply_code(r, HTTPD_ERROR_INVALID, "certificate",
                                 "the certificate is expired or not valid "
                                 "yet");
                return 0;
        case -EBADMSG:
        case -EFBIG:
                httpd_reply_code(r, HTTPD_ERROR_INVALID, "certificate",
                                 "the certificate and the key must be PEM "
                                 "(an X.509 certificate, an unencrypted "
                                 "private key)");
                return 0;
        default:
                return ret;
        }
        ret = haven_peer_credentials_save(c, config->cert_path,
                                          config->key_path);
        if (ret < 0) {
                log_error_errno(ret, "HTTPS: cannot write \"%s\": %m",
                                config->cert_path);
                return ret;
        }
        haven_peer_credentials_fingerprint(c, fingerprint);
        log_notice("HTTPS: certificate replaced by %s (SHA-256 %s); used from "
                   "the next start",
                   httpd_request_actor(r), fingerprint);
        o = json_object_new_object();
        if (!o ||
            haven_json_add(o, "fingerprint",
                           json_object_new_string(fingerprint)) < 0 ||
            haven_json_add(o, "restart_needed", json_object_new_boolean(true)) <
                    0)
                return -ENOMEM;
        httpd_reply_json(r, 200, TAKE_PTR(o));
        return 0;
}
