/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Administrators' sessions, in memory on this node: random 256-bit
 * tokens (the cookie), a CSRF token each, sliding idle expiry and an
 * absolute one, a bounded number (the least recently used goes). Only the
 * SHA-256 of a cookie's token is kept, so a lookup's timing says nothing
 * about the tokens. Pure: time is an argument. Must not: log tokens.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "httpd.h"

#define TOKEN_BYTES 32u
#define TOKEN_LENGTH 43u /* base64url of 32 bytes, no padding */

struct httpd_sessions {
        struct httpd_session_limits limits;
        struct httpd_session *sessions;
        size_t n;
};

static const char base64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding of data[0..size) into out (4*ceil(size/3)+1
 * bytes is always enough). */
static void base64url_encode(const uint8_t *data, size_t size, char *out) {
        size_t o = 0, i = 0;

        for (; i + 3 <= size; i += 3) {
                uint32_t v = (uint32_t) data[i] << 16 |
                             (uint32_t) data[i + 1] << 8 | data[i + 2];

                out[o++] = base64url[v >> 18 & 63];
                out[o++] = base64url[v >> 12 & 63];
                out[o++] = base64url[v >> 6 & 63];
                out[o++] = base64url[v & 63];
        }
        if (size - i == 1) {
                uint32_t v = (uint32_t) data[i] << 16;

                out[o++] = base64url[v >> 18 & 63];
                out[o++] = base64url[v >> 12 & 63];
        } else if (size - i == 2) {
                uint32_t v = (uint32_t) data[i] << 16 | (uint32_t) data[i + 1]
                                                                << 8;

                out[o++] = base64url[v >> 18 & 63];
                out[o++] = base64url[v >> 12 & 63];
                out[o++] = base64url[v >> 6 & 63];
        }
        out[o] = '\0';
}

/* A new random token. Returns 0 or -EIO. */
static int token_new(char ret[HTTPD_TOKEN_SIZE]) {
        uint8_t random[TOKEN_BYTES];

        static_assert(TOKEN_LENGTH + 1 == HTTPD_TOKEN_SIZE,
                      "HTTPD_TOKEN_SIZE must hold a token");
        if (gnutls_rnd(GNUTLS_RND_KEY, random, sizeof random) < 0)
                return -EIO;
        base64url_encode(random, sizeof random, ret);
        explicit_bzero(random, sizeof random);
        return 0;
}

/* Whether token has the shape of ours: 43 base64url characters. */
static bool token_well_formed(const char *token) {
        size_t n = strspn(token, base64url);

        return n == TOKEN_LENGTH && token[n] == '\0';
}

static int token_key(const char *token, uint8_t key[32]) {
        return gnutls_hash_fast(GNUTLS_DIG_SHA256, token, strlen(token), key) <
                               0
                       ? -EIO
                       : 0;
}

bool httpd_equal_secret(const void *a, size_t a_size, const void *b,
                        size_t b_size) {
        const volatile uint8_t *x = a, *y = b;
        uint8_t d = 0;

        if (a_size != b_size)
                return false;
        for (size_t i = 0; i < a_size; i++)
                d |= x[i] ^ y[i];
        return d == 0;
}

/* ==== The store ==== */

int httpd_sessions_new(const struct httpd_session_limits *limits,
                       struct httpd_sessions **ret) {
        struct httpd_sessions *s = calloc(1, sizeof *s);

        if (!s)
                return -ENOMEM;
        s->limits = limits ? *limits
                           : (struct httpd_session_limits){
                                     .idle_usec = HTTPD_SESSION_IDLE_USEC,
                                     .max_usec = HTTPD_SESSION_MAX_USEC,
                                     .max_sessions = HTTPD_SESSIONS_MAX,
                             };
        if (s->limits.max_sessions == 0)
                s->limits.max_sessions = HTTPD_SESSIONS_MAX;
        s->sessions = calloc(s->limits.max_sessions, sizeof *s->sessions);
        if (!s->sessions) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

struct httpd_sessions *httpd_sessions_free(struct httpd_sessions *s) {
        if (!s)
                return NULL;
        explicit_bzero(s->sessions,
                       s->limits.max_sessions * sizeof *s->sessions);
        free(s->sessions);
        free(s);
        return NULL;
}

size_t httpd_sessions_count(const struct httpd_sessions *s) {
        return s->n;
}

uint64_t httpd_session_expiry(const struct httpd_sessions *s,
                              const struct httpd_session *session) {
        uint64_t idle = session->used_usec + s->limits.idle_usec,
                 absolute = session->created_usec + s->limits.max_usec;

        return idle < absolute ? idle : absolute;
}

static void session_remove_at(struct httpd_sessions *s, size_t i) {
        assert(i < s->n);
        s->sessions[i] = s->sessions[--s->n];
        explicit_bzero(&s->sessions[s->n], sizeof s->sessions[s->n]);
}

/* Drops every session expired at now. */
static void sessions_expire(struct httpd_sessions *s, uint64_t now) {
        for (size_t i = 0; i < s->n;)
                if (httpd_session_expiry(s, &s->sessions[i]) <= now)
                        session_remove_at(s, i);
                else
                        i++;
}

int httpd_sessions_create(struct httpd_sessions *s, const char *administrator,
                          uint64_t now, char ret_token[HTTPD_TOKEN_SIZE],
                          const struct httpd_session **ret) {
        struct httpd_session *session;
        char token[HTTPD_TOKEN_SIZE];
        size_t n;
        int r;

        assert(s);
        n = administrator ? strlen(administrator) : 0;
        if (n == 0 || n > HTTPD_NAME_MAX)
                return -EINVAL;

        sessions_expire(s, now);
        if (s->n >= s->limits.max_sessions) {
                size_t oldest = 0;

                for (size_t i = 1; i < s->n; i++)
                        if (s->sessions[i].used_usec <
                            s->sessions[oldest].used_usec)
                                oldest = i;
                session_remove_at(s, oldest);
        }

        session = &s->sessions[s->n];
        *session = (struct httpd_session){
                .created_usec = now,
                .used_usec = now,
        };
        memcpy(session->administrator, administrator, n + 1);
        r = token_new(token);
        if (r >= 0)
                r = token_new(session->csrf_token);
        if (r >= 0)
                r = token_key(token, session->key);
        if (r < 0) {
                explicit_bzero(token, sizeof token);
                explicit_bzero(session, sizeof *session);
                return r;
        }
        s->n++;
        memcpy(ret_token, token, HTTPD_TOKEN_SIZE);
        explicit_bzero(token, sizeof token);
        if (ret)
                *ret = session;
        return 0;
}

/* The index of token's session, or -ENOENT. */
static int session_index(struct httpd_sessions *s, const char *token) {
        uint8_t key[32];

        if (!token || !token_well_formed(token) || token_key(token, key) < 0)
                return -ENOENT;
        for (size_t i = 0; i < s->n; i++)
                if (memcmp(s->sessions[i].key, key, sizeof key) == 0)
                        return (int) i;
        return -ENOENT;
}

const struct httpd_session *
httpd_sessions_find(struct httpd_sessions *s, const char *token, uint64_t now) {
        struct httpd_session *session;
        int i;

        assert(s);
        i = session_index(s, token);
        if (i < 0)
                return NULL;
        session = &s->sessions[i];
        if (httpd_session_expiry(s, session) <= now) {
                session_remove_at(s, (size_t) i);
                return NULL;
        }
        if (now > session->used_usec)
                session->used_usec = now;
        return session;
}

int httpd_sessions_remove(struct httpd_sessions *s, const char *token) {
        int i = session_index(s, token);

        if (i < 0)
                return i;
        session_remove_at(s, (size_t) i);
        return 0;
}

size_t httpd_sessions_remove_administrator(struct httpd_sessions *s,
                                           const char *administrator) {
        size_t removed = 0;

        for (size_t i = 0; i < s->n;)
                if (streq(s->sessions[i].administrator, administrator)) {
                        session_remove_at(s, i);
                        removed++;
                } else
                        i++;
        return removed;
}

bool httpd_session_csrf_ok(const struct httpd_session *session,
                           const char *token) {
        if (!session || !token)
                return false;
        return httpd_equal_secret(session->csrf_token,
                                  strlen(session->csrf_token), token,
                                  strlen(token));
}
