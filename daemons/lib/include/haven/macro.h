/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small macros every Haven file uses: cleanup-attribute helpers for owned
 * resources, TAKE_PTR/TAKE_FD for hand-off, array and errno helpers.
 * Header only; owns nothing and allocates nothing.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _fallthrough_ __attribute__((fallthrough))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

/* For switch defaults that the types make impossible: a programming error. */
#define assert_not_reached() abort()

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Returns the pointer and sets the variable to NULL: ownership moves to the
 * caller of TAKE_PTR, so the variable's cleanup no longer frees it. */
#define TAKE_PTR(p)                                                            \
        ({                                                                     \
                __typeof__(p) _ptr_ = (p);                                     \
                (p) = NULL;                                                    \
                _ptr_;                                                         \
        })

/* Same for file descriptors: returns the fd and sets the variable to -1. */
#define TAKE_FD(fd)                                                            \
        ({                                                                     \
                int _fd_ = (fd);                                               \
                (fd) = -1;                                                     \
                _fd_;                                                          \
        })

/* Defines `static inline void name##p(type **p)` that calls `func(*p)` when
 * *p is not NULL. `func` must accept the pointer it gets. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                \
        static inline void func##p(type *p) {                                  \
                if (*p)                                                        \
                        func(*p);                                              \
        }

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes fd if it is >= 0, keeping errno; always returns -1 so that
 * `fd = safe_close(fd);` leaves the variable invalid. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Frees a NULL-terminated array of strings and the array itself. */
static inline void strv_free(char **l) {
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* errno as a negative number, never 0: for converting libc's -1 returns. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

#define streq(a, b) (strcmp((a), (b)) == 0)
