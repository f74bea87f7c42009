/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging in and out. A login looks the administrator up in the domain
 * (haven-domaind), then checks the password against its yescrypt hash in a
 * short-lived worker thread (the hash costs tens of milliseconds of CPU;
 * the loop must not wait for it): the thread only computes, and hands its
 * verdict back through an eventfd the loop watches. Unknown names are
 * checked against a dummy hash of the same cost, so they look and take
 * the same as wrong passwords. Throttled per client address and per
 * account, one check at a time for each. The same workers hash the
 * passwords of new administrators. Must not: log a password, or let a
 * thread touch anything but its own job.
 */
#include <crypt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "haven/log.h"
#include "haven/loop.h"
#include "httpd.h"

/* Logins being handled at once (all stages), per worker. */
#define LOGINS_PER_WORKER 16u
#define WORKER_STACK_SIZE (256u * 1024u)

enum login_stage {
        LOGIN_QUERYING, /* asking haven-domaind for the administrator */
        LOGIN_QUEUED,   /* waiting for a worker */
        LOGIN_RUNNING,  /* a worker checks the password */
        LOGIN_DONE,
};

struct login {
        struct httpd_auth *auth;
        struct httpd_request *request; /* NULL once the request ended */
        struct login *prev, *next;     /* in auth->logins */
        struct login *queue_next;      /* in auth->queue */
        enum login_stage stage;
        char name[HTTPD_NAME_MAX + 1];
        char account_key[HTTPD_NAME_MAX + 8];
        char client_key[64];

        /* The worker's job: read by the thread, written before it starts
         * and after it was joined. A hashing job makes hash from
         * password; a login checks password against hash. */
        bool hashing;
        httpd_hash_done_t hash_done;
        char *password;
        char *hash;
        bool match;

        pthread_t thread;
        int event_fd;
        sd_event_source *source;
};

struct httpd_auth {
        struct httpd *httpd;
        unsigned workers, running;
        char *dummy_hash;
        struct login *logins; /* every login alive */
        struct login *queue, *queue_tail;
};

/* ==== Passwords ==== */

bool httpd_password_check(const char *password, const char *hash) {
        struct crypt_data *data;
        const char *h;
        bool ok;

        if (!password || !hash || !*hash)
                return false;
        /* Large (tens of KiB): not on a worker's small stack. */
        data = calloc(1, sizeof *data);
        if (!data)
                return false;
        h = crypt_rn(password, hash, data, sizeof *data);
        ok = h && h[0] != '*' &&
             httpd_equal_secret(h, strlen(h), hash, strlen(hash));
        explicit_bzero(data, sizeof *data);
        free(data);
        return ok;
}

/* A hash of a random password with the parameters domaind uses
 * (yescrypt, default cost), for names that do not exist. */
static int dummy_hash_new(char **ret) {
        char salt[CRYPT_GENSALT_OUTPUT_SIZE], password[2 * 24 + 1];
        struct crypt_data *data;
        uint8_t random[24];
        const char *h;
        int r = 0;

        if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt))
                return -EIO;
        /* Nobody must be able to log in with it, not even knowing it. */
        if (gnutls_rnd(GNUTLS_RND_KEY, random, sizeof random) < 0)
                return -EIO;
        for (size_t i = 0; i < sizeof random; i++)
                snprintf(password + 2 * i, 3, "%02x", random[i]);
        explicit_bzero(random, sizeof random);
        data = calloc(1, sizeof *data);
        if (!data)
                return -ENOMEM;
        h = crypt_rn(password, salt, data, sizeof *data);
        if (!h || h[0] == '*')
                r = -EIO;
        else {
                *ret = strdup(h);
                if (!*ret)
                        r = -ENOMEM;
        }
        explicit_bzero(data, sizeof *data);
        explicit_bzero(password, sizeof password);
        free(data);
        return r;
}

/* ==== Logins ==== */

static void string_wipe_free(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

static void login_free(struct login *l) {
        struct httpd_auth *a = l->auth;

        assert(l->stage != LOGIN_RUNNING);
        if (l->prev)
                l->prev->next = l->next;
        else
                a->logins = l->next;
        if (l->next)
                l->next->prev = l->prev;
        l->source = sd_event_source_disable_unref(l->source);
        safe_close(l->event_fd);
        string_wipe_free(l->password);
        free(l->hash);
        free(l);
}

static void queue_remove(struct httpd_auth *a, struct login *l) {
        struct login *prev = NULL;

        for (struct login *i = a->queue; i; prev = i, i = i->queue_next)
                if (i == l) {
                        if (prev)
                                prev->queue_next = l->queue_next;
                        else
                                a->queue = l->queue_next;
                        if (a->queue_tail == l)
                                a->queue_tail = prev;
                        l->queue_next = NULL;
                        return;
                }
}

/* The request ended (answered, or its connection went away). */
static void login_release(void *userdata) {
        struct login *l = userdata;

        l->request = NULL;
        if (l->stage == LOGIN_RUNNING)
                return; /* freed when its worker is done */
        if (l->stage == LOGIN_QUEUED)
                queue_remove(l->auth, l);
        login_free(l);
}

/* A yescrypt hash of password with a fresh salt, or NULL. */
static char *password_hash(const char *password) {
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        struct crypt_data *data;
        const char *h;
        char *ret = NULL;

        if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt))
                return NULL;
        data = calloc(1, sizeof *data);
        if (!data)
                return NULL;
        h = crypt_rn(password, salt, data, sizeof *data);
        if (h && h[0] != '*')
                ret = strdup(h);
        explicit_bzero(data, sizeof *data);
        free(data);
        return ret;
}

static void *login_thread(void *userdata) {
        struct login *l = userdata;

        if (l->hashing)
                l->hash = password_hash(l->password);
        else
                l->match = httpd_password_check(l->password, l->hash);
        (void) eventfd_write(l->event_fd, 1);
        return NULL;
}

static void login_finish(struct login *l);
static void queue_run(struct httpd_auth *a);

static int on_login_done(sd_event_source *s, int fd, uint32_t revents,
                         void *userdata) {
        struct login *l = userdata;
        struct httpd_auth *a = l->auth;

        (void) pthread_join(l->thread, NULL);
        l->stage = LOGIN_DONE;
        a->running--;
        l->source = sd_event_source_disable_unref(l->source);
        l->event_fd = safe_close(l->event_fd);
        string_wipe_free(TAKE_PTR(l->password));

        if (l->request)
                login_finish(l);
        else
                login_free(l);
        queue_run(a);
        return 0;
}

/* Starts l's worker. Returns 0 or a negative errno (nothing started). */
static int login_start(struct login *l) {
        struct httpd_auth *a = l->auth;
        pthread_attr_t attr;
        int r;

        l->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->event_fd < 0)
                return -errno;
        r = sd_event_add_io(httpd_event(a->httpd), &l->source, l->event_fd,
                            EPOLLIN, on_login_done, l);
        if (r < 0)
                return r;
        r = pthread_attr_init(&attr);
        if (r != 0)
                return -r;
        (void) pthread_attr_setstacksize(&attr, WORKER_STACK_SIZE);
        r = pthread_create(&l->thread, &attr, login_thread, l);
        (void) pthread_attr_destroy(&attr);
        if (r != 0) {
                l->source = sd_event_source_disable_unref(l->source);
                l->event_fd = safe_close(l->event_fd);
                return -r;
        }
        l->stage = LOGIN_RUNNING;
        a->running++;
        return 0;
}

/* Starts queued logins while workers are free. */
static void queue_run(struct httpd_auth *a) {
        while (a->queue && a->running < a->workers) {
                struct login *l = a->queue;
                int r;

                a->queue = l->queue_next;
                if (!a->queue)
                        a->queue_tail = NULL;
                l->queue_next = NULL;
                r = login_start(l);
                if (r < 0) {
                        struct httpd_request *req = l->request;

                        log_error_errno(r, "Login: cannot start a password "
                                           "check: %m");
                        l->stage = LOGIN_DONE;
                        httpd_reply_code(req, HTTPD_ERROR_INTERNAL, NULL, NULL);
                }
        }
}

static void login_enqueue(struct login *l) {
        struct httpd_auth *a = l->auth;

        l->stage = LOGIN_QUEUED;
        if (a->queue_tail)
                a->queue_tail->queue_next = l;
        else
                a->queue = l;
        a->queue_tail = l;
        queue_run(a);
}

/* ==== Answers ==== */

/* {"administrator","csrf_token","expires_at"} for session, expires_at in
 * µs since 1970 (CLOCK_REALTIME). */
static struct json_object *session_json(struct httpd_sessions *sessions,
                                        const struct httpd_session *session,
                                        uint64_t now) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        uint64_t expiry = httpd_session_expiry(sessions, session);
        uint64_t left = expiry > now ? expiry - now : 0;

        if (!o ||
            haven_json_add(o, "administrator",
                           json_object_new_string(session->administrator)) <
                    0 ||
            haven_json_add(o, "csrf_token",
                           json_object_new_string(session->csrf_token)) < 0 ||
            haven_json_add(o, "expires_at",
                           json_object_new_int64(
                                   (int64_t) (haven_now_usec(CLOCK_REALTIME) +
                                              left))) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static int reply_cookie(struct httpd_request *r, const char *token,
                        uint64_t max_age_sec) {
        char cookie[160];

        snprintf(cookie, sizeof cookie,
                 HTTPD_SESSION_COOKIE "=%s; Path=/; Max-Age=%" PRIu64
                                      "; HttpOnly; SameSite=Strict%s",
                 token, max_age_sec, httpd_request_tls(r) ? "; Secure" : "");
        return httpd_reply_header(r, "Set-Cookie", cookie);
}

/* A name to put in the log: only one that follows the name rule (it may
 * be a password typed into the wrong field, or hold control characters). */
static const char *loggable(const char *name) {
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
                      *p == '-'))
                        return "(a name that is none)";
        return name;
}

static void login_finish(struct login *l) {
        struct httpd_request *r = l->request;
        struct httpd *h = l->auth->httpd;
        struct httpd_sessions *sessions = httpd_sessions(h);
        const struct httpd_session *session;
        char token[HTTPD_TOKEN_SIZE];
        uint64_t now = haven_now_usec(CLOCK_MONOTONIC);
        int ret;

        if (l->hashing) {
                httpd_request_forget(r);
                l->hash_done(r, l->hash);
                return;
        }

        if (!l->match) {
                httpd_throttle_failure(httpd_throttle(h), l->client_key, now);
                httpd_throttle_failure(httpd_throttle(h), l->account_key, now);
                log_notice("Login as \"%s\" from %s failed", loggable(l->name),
                           httpd_request_client(r));
                httpd_reply_code(r, HTTPD_ERROR_UNAUTHORIZED, NULL,
                                 "wrong name or password");
                return;
        }

        httpd_throttle_success(httpd_throttle(h), l->account_key);
        ret = httpd_sessions_create(sessions, l->name, now, token, &session);
        if (ret < 0) {
                log_error_errno(ret,
                                "Login as \"%s\": cannot create a "
                                "session: %m",
                                l->name);
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL, NULL);
                return;
        }
        log_info("Administrator \"%s\" logged in from %s", l->name,
                 httpd_request_client(r));
        httpd_reply_json(r, 200, session_json(sessions, session, now));
        (void) reply_cookie(r, token,
                            httpd_get_config(h)->sessions.max_usec / 1000000u);
        explicit_bzero(token, sizeof token);
}

/* ==== Handlers ==== */

static void on_administrator(struct httpd_request *r, struct json_object *reply,
                             const struct httpd_error *error) {
        struct login *l = httpd_request_get_state(r);
        struct json_object *rows, *row;
        const char *hash = NULL;

        if (error) {
                httpd_reply_error(r, error);
                return;
        }
        if (haven_json_get_array(reply, "rows", &rows) >= 0 &&
            json_object_array_length(rows) == 1) {
                row = json_object_array_get_idx(rows, 0);
                (void) haven_json_get_string(row, "password_hash", &hash);
        }
        /* Unknown (or hashless) administrators take the same path. */
        l->hash = strdup(hash && *hash ? hash : l->auth->dummy_hash);
        if (!l->hash) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL, NULL);
                return;
        }
        httpd_request_hold(r, NULL, NULL);
        login_enqueue(l);
}

static struct json_object *administrator_query(const char *name) {
        _cleanup_(json_object_putp) struct json_object *req =
                json_object_new_object();
        struct json_object *where = json_object_new_object();

        if (!req || !where ||
            haven_json_add(where, "name", json_object_new_string(name)) < 0) {
                json_object_put(where);
                return NULL;
        }
        if (haven_json_add(req, "request", json_object_new_string("query")) <
                    0 ||
            haven_json_add(req, "table",
                           json_object_new_string("administrators")) < 0 ||
            haven_json_add(req, "where", where) < 0)
                return NULL;
        return TAKE_PTR(req);
}

int httpd_auth_login(struct httpd_request *r) {
        struct httpd *h = httpd_request_server(r);
        struct httpd_auth *a = httpd_auth(h);
        struct json_object *body = httpd_request_body(r), *value;
        const char *name = NULL, *password = NULL;
        uint64_t now = haven_now_usec(CLOCK_MONOTONIC), wait, w;
        char account_key[HTTPD_NAME_MAX + 8];
        unsigned attached = 0;
        struct login *l;

        (void) haven_json_get_string(body, "name", &name);
        (void) haven_json_get_string(body, "password", &password);
        assert(name && password); /* the policy says so */
        snprintf(account_key, sizeof account_key, "name:%s", name);

        wait = httpd_throttle_check(httpd_throttle(h),
                                    httpd_request_client_key(r), now);
        w = httpd_throttle_check(httpd_throttle(h), account_key, now);
        if (w > wait)
                wait = w;
        for (l = a->logins; l; l = l->next)
                if (l->request) {
                        attached++;
                        if (streq(l->client_key, httpd_request_client_key(r)) ||
                            streq(l->account_key, account_key))
                                wait = wait ? wait : 1;
                }
        if (attached >= a->workers * LOGINS_PER_WORKER)
                wait = wait ? wait : 1;
        if (wait > 0) {
                struct httpd_error e;

                httpd_error_set(&e, HTTPD_ERROR_THROTTLED, NULL, NULL);
                e.retry_after_sec = (unsigned) ((wait + 999999) / 1000000);
                httpd_reply_error(r, &e);
                return 0;
        }

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        *l = (struct login){.auth = a, .request = r, .event_fd = -1};
        snprintf(l->name, sizeof l->name, "%s", name);
        memcpy(l->account_key, account_key, sizeof account_key);
        snprintf(l->client_key, sizeof l->client_key, "%s",
                 httpd_request_client_key(r));
        l->password = strdup(password);
        /* The body's copy is not needed any more. */
        if (json_object_object_get_ex(body, "password", &value))
                explicit_bzero((char *) json_object_get_string(value),
                               (size_t) json_object_get_string_len(value));
        l->next = a->logins;
        if (a->logins)
                a->logins->prev = l;
        a->logins = l;
        httpd_request_set_state(r, l, login_release);
        if (!l->password)
                return -ENOMEM;
        return httpd_domain_call(r, administrator_query(l->name),
                                 on_administrator);
}

int httpd_auth_hash(struct httpd_request *r, const char *password,
                    httpd_hash_done_t done) {
        struct httpd_auth *a = httpd_auth(httpd_request_server(r));
        struct login *l;

        assert(password && done);
        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        *l = (struct login){.auth = a,
                            .request = r,
                            .event_fd = -1,
                            .hashing = true,
                            .hash_done = done};
        l->password = strdup(password);
        l->next = a->logins;
        if (a->logins)
                a->logins->prev = l;
        a->logins = l;
        httpd_request_set_state(r, l, login_release);
        if (!l->password)
                return -ENOMEM;
        httpd_request_hold(r, NULL, NULL);
        login_enqueue(l);
        return 0;
}

int httpd_auth_whoami(struct httpd_request *r) {
        struct httpd_sessions *sessions =
                httpd_sessions(httpd_request_server(r));
        const struct httpd_match *m = httpd_request_match(r);
        uint64_t now = haven_now_usec(CLOCK_MONOTONIC);
        const struct httpd_session *session =
                httpd_sessions_find(sessions, m->session_token, now);

        if (!session) {
                httpd_reply_code(r, HTTPD_ERROR_UNAUTHORIZED, NULL, NULL);
                return 0;
        }
        httpd_reply_json(r, 200, session_json(sessions, session, now));
        return 0;
}

int httpd_auth_logout(struct httpd_request *r) {
        const struct httpd_match *m = httpd_request_match(r);
        struct json_object *o = json_object_new_object();

        (void) httpd_sessions_remove(httpd_sessions(httpd_request_server(r)),
                                     m->session_token);
        log_info("Administrator \"%s\" logged out (%s)", m->administrator,
                 httpd_request_client(r));
        if (o)
                (void) haven_json_add(o, "logged_out",
                                      json_object_new_boolean(true));
        httpd_reply_json(r, 200, o);
        (void) reply_cookie(r, "", 0);
        return 0;
}

/* ==== Setup ==== */

int httpd_auth_new(struct httpd *h, unsigned workers, struct httpd_auth **ret) {
        struct httpd_auth *a;
        int r;

        a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->httpd = h;
        a->workers = workers > 0 ? workers : 1;
        r = dummy_hash_new(&a->dummy_hash);
        if (r < 0) {
                free(a);
                return r;
        }
        *ret = a;
        return 0;
}

struct httpd_auth *httpd_auth_free(struct httpd_auth *a) {
        if (!a)
                return NULL;
        while (a->logins) {
                struct login *l = a->logins;

                if (l->stage == LOGIN_RUNNING) {
                        (void) pthread_join(l->thread, NULL);
                        l->stage = LOGIN_DONE;
                        a->running--;
                }
                login_free(l);
        }
        free(a->dummy_hash);
        free(a);
        return NULL;
}
