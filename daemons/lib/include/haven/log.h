/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging for every Haven program: syslog-style levels, one process-wide
 * target (stderr, syslog, or the journal), and the log_*_errno() helpers that
 * log and return the negative errno they were given. Library code logs at
 * debug only; the caller that handles an error logs it once.
 */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "haven/macro.h"

enum log_target {
        LOG_TARGET_STDERR,
        LOG_TARGET_SYSLOG,
        LOG_TARGET_JOURNAL,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
};

/* Sets the program name shown in messages (not copied: pass a string that
 * lives as long as the process, typically argv[0]'s basename). */
void log_set_ident(const char *ident);
void log_set_target(enum log_target target);
enum log_target log_get_target(void);
/* Messages above max_level (LOG_ERR=3 ... LOG_DEBUG=7) are dropped. */
void log_set_max_level(int max_level);
int log_get_max_level(void);

/* "stderr", "syslog", "journal" → target; unknown → -EINVAL. */
enum log_target log_target_from_string(const char *s);
/* "emerg".."debug" or "0".."7" → level; unknown → -EINVAL. */
int log_level_from_string(const char *s);
/* Reads HAVEN_LOG_LEVEL and HAVEN_LOG_TARGET; bad values are ignored. */
void log_parse_environment(void);

/* Writes one message. If error != 0, errno is set to its absolute value while
 * formatting, so "%m" names it. Returns -abs(error) (0 when error is 0), which
 * lets callers write `return log_error_errno(r, "...: %m");`. errno is kept. */
int log_internal(int level, int error, const char *file, int line,
                 const char *func, const char *format, ...) _printf_(6, 7);
int log_internalv(int level, int error, const char *file, int line,
                  const char *func, const char *format, va_list ap)
        _printf_(6, 0);

/* For tests: every formatted message is also passed to this hook. */
typedef void (*log_hook_t)(int level, const char *message, void *userdata);
void log_set_hook(log_hook_t hook, void *userdata);

#define log_full_errno(level, error, ...)                                      \
        ({                                                                     \
                int _level_ = (level), _e_ = (error);                          \
                (log_get_max_level() >= _level_)                               \
                        ? log_internal(_level_, _e_, __FILE__, __LINE__,       \
                                       __func__, __VA_ARGS__)                  \
                        : -abs(_e_);                                           \
        })
#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
