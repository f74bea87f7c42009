/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Login throttling: failures counted per key (a client address, an
 * account name) within a window; too many start a block, and each block
 * of the same key lasts twice as long as the one before, up to a cap. A
 * bounded table: when full, the entry that matters least (not blocked,
 * oldest) makes room. Pure: time is an argument. Must not: tell anyone
 * whether an account exists (keys are counted alike).
 */
#include <arpa/inet.h>
#include <stdio.h>

#include "httpd.h"

#define KEY_MAX 80u

struct throttle_entry {
        char key[KEY_MAX];
        unsigned failures; /* within the current window */
        unsigned blocks;   /* blocks so far: the next lasts 2^blocks */
        uint64_t window_start;
        uint64_t blocked_until;
        uint64_t last_failure;
};

struct httpd_throttle {
        struct httpd_throttle_policy policy;
        struct throttle_entry *entries;
        size_t n;
};

int httpd_throttle_new(const struct httpd_throttle_policy *policy,
                       struct httpd_throttle **ret) {
        struct httpd_throttle *t = calloc(1, sizeof *t);

        if (!t)
                return -ENOMEM;
        t->policy = policy ? *policy
                           : (struct httpd_throttle_policy){
                                     .failures = HTTPD_THROTTLE_FAILURES,
                                     .window_usec = HTTPD_THROTTLE_WINDOW_USEC,
                                     .block_usec = HTTPD_THROTTLE_BLOCK_USEC,
                                     .block_max_usec =
                                             HTTPD_THROTTLE_BLOCK_MAX_USEC,
                                     .max_entries = HTTPD_THROTTLE_ENTRIES,
                             };
        if (t->policy.failures == 0)
                t->policy.failures = HTTPD_THROTTLE_FAILURES;
        if (t->policy.max_entries == 0)
                t->policy.max_entries = HTTPD_THROTTLE_ENTRIES;
        t->entries = calloc(t->policy.max_entries, sizeof *t->entries);
        if (!t->entries) {
                free(t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

struct httpd_throttle *httpd_throttle_free(struct httpd_throttle *t) {
        if (!t)
                return NULL;
        free(t->entries);
        free(t);
        return NULL;
}

static struct throttle_entry *entry_find(struct httpd_throttle *t,
                                         const char *key) {
        for (size_t i = 0; i < t->n; i++)
                if (strncmp(t->entries[i].key, key, KEY_MAX) == 0)
                        return &t->entries[i];
        return NULL;
}

/* Whether e no longer says anything at now: not blocked, its window over,
 * and long enough since its last block that the next one starts small
 * again (one cap's worth of good behaviour). */
static bool entry_stale(const struct httpd_throttle *t,
                        const struct throttle_entry *e, uint64_t now) {
        return e->blocked_until <= now &&
               now - e->window_start >= t->policy.window_usec &&
               (e->blocks == 0 ||
                now - e->blocked_until >= t->policy.block_max_usec);
}

static void entry_remove(struct httpd_throttle *t, struct throttle_entry *e) {
        *e = t->entries[--t->n];
}

/* Room for one more: drops stale entries; if none, the one whose block
 * ends first (or, with none blocked, the oldest failure). */
static void entries_make_room(struct httpd_throttle *t, uint64_t now) {
        struct throttle_entry *victim = NULL;

        for (size_t i = 0; i < t->n;)
                if (entry_stale(t, &t->entries[i], now))
                        entry_remove(t, &t->entries[i]);
                else
                        i++;
        if (t->n < t->policy.max_entries)
                return;
        for (size_t i = 0; i < t->n; i++) {
                struct throttle_entry *e = &t->entries[i];

                if (!victim ||
                    (e->blocked_until != victim->blocked_until
                             ? e->blocked_until < victim->blocked_until
                             : e->last_failure < victim->last_failure))
                        victim = e;
        }
        entry_remove(t, victim);
}

uint64_t httpd_throttle_check(struct httpd_throttle *t, const char *key,
                              uint64_t now) {
        struct throttle_entry *e = entry_find(t, key);

        if (!e || e->blocked_until <= now)
                return 0;
        return e->blocked_until - now;
}

void httpd_throttle_failure(struct httpd_throttle *t, const char *key,
                            uint64_t now) {
        struct throttle_entry *e = entry_find(t, key);
        uint64_t block = t->policy.block_usec;

        if (!e) {
                entries_make_room(t, now);
                e = &t->entries[t->n++];
                *e = (struct throttle_entry){.window_start = now};
                snprintf(e->key, sizeof e->key, "%s", key);
        }
        if (now - e->window_start >= t->policy.window_usec) {
                e->window_start = now;
                e->failures = 0;
        }
        e->last_failure = now;
        if (++e->failures < t->policy.failures)
                return;

        /* A block: 2^blocks times the first, up to the cap. */
        for (unsigned i = 0; i < e->blocks && block < t->policy.block_max_usec;
             i++)
                block *= 2;
        if (block > t->policy.block_max_usec)
                block = t->policy.block_max_usec;
        e->blocks++;
        e->blocked_until = now + block;
        e->failures = 0;
        e->window_start = now;
}

void httpd_throttle_success(struct httpd_throttle *t, const char *key) {
        struct throttle_entry *e = entry_find(t, key);

        if (e)
                entry_remove(t, e);
}

void httpd_throttle_client_key(const struct sockaddr *sa, char *buf,
                               size_t size) {
        char text[INET6_ADDRSTRLEN] = "unknown";

        if (sa && sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const void *) sa;

                (void) inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        } else if (sa && sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const void *) sa;
                struct in6_addr a = in6->sin6_addr;

                if (IN6_IS_ADDR_V4MAPPED(&a))
                        (void) inet_ntop(AF_INET, &a.s6_addr[12], text,
                                         sizeof text);
                else {
                        memset(&a.s6_addr[8], 0, 8);
                        (void) inet_ntop(AF_INET6, &a, text, sizeof text);
                }
        }
        snprintf(buf, size, "addr:%s", text);
}
