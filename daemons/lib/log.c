/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Process-wide logger behind log.h. Owns the target, level and ident; formats
 * each message once and hands it to stderr, syslog(3) or sd_journal. Never
 * allocates on the logging path and never changes errno for the caller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "haven/log.h"

static const char *log_ident = "haven";
static enum log_target log_target = LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;
static bool syslog_opened;
static log_hook_t log_hook;
static void *log_hook_userdata;

static const char *const level_names[] = {
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

void log_set_ident(const char *ident) {
        log_ident = ident ? ident : "haven";
        if (syslog_opened) {
                closelog();
                syslog_opened = false;
        }
}

void log_set_target(enum log_target target) {
        if (target >= 0 && target < _LOG_TARGET_MAX)
                log_target = target;
}

enum log_target log_get_target(void) {
        return log_target;
}

void log_set_max_level(int max_level) {
        if (max_level >= LOG_EMERG && max_level <= LOG_DEBUG)
                log_max_level = max_level;
}

int log_get_max_level(void) {
        return log_max_level;
}

enum log_target log_target_from_string(const char *s) {
        static const char *const names[_LOG_TARGET_MAX] = {
                [LOG_TARGET_STDERR] = "stderr",
                [LOG_TARGET_SYSLOG] = "syslog",
                [LOG_TARGET_JOURNAL] = "journal",
        };

        if (!s)
                return _LOG_TARGET_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i]) == 0)
                        return (enum log_target) i;
        return _LOG_TARGET_INVALID;
}

int log_level_from_string(const char *s) {
        if (!s || !*s)
                return -EINVAL;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return (int) i;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        return -EINVAL;
}

void log_parse_environment(void) {
        const char *e;
        int r;

        e = getenv("HAVEN_LOG_LEVEL");
        if (e) {
                r = log_level_from_string(e);
                if (r >= 0)
                        log_set_max_level(r);
        }
        e = getenv("HAVEN_LOG_TARGET");
        if (e) {
                enum log_target t = log_target_from_string(e);
                if (t >= 0)
                        log_set_target(t);
        }
}

void log_set_hook(log_hook_t hook, void *userdata) {
        log_hook = hook;
        log_hook_userdata = userdata;
}

static void write_stderr(int level, const char *message) {
        struct timespec ts;
        struct tm tm;
        char stamp[32] = "";

        if (clock_gettime(CLOCK_REALTIME, &ts) == 0 &&
            gmtime_r(&ts.tv_sec, &tm))
                snprintf(stamp, sizeof stamp, "%02d:%02d:%02d.%03ld ",
                         tm.tm_hour, tm.tm_min, tm.tm_sec,
                         ts.tv_nsec / 1000000);
        fprintf(stderr, "%s%s[%ld] <%s> %s\n", stamp, log_ident,
                (long) getpid(), level_names[level], message);
}

int log_internalv(int level, int error, const char *file, int line,
                  const char *func, const char *format, va_list ap) {
        char message[2048];
        int saved_errno = errno;

        if (level < LOG_EMERG || level > LOG_DEBUG)
                level = LOG_ERR;
        if (error < 0)
                error = -error;
        if (level > log_max_level)
                goto out;

        if (error != 0)
                errno = error;
        vsnprintf(message, sizeof message, format, ap);

        if (log_hook)
                log_hook(level, message, log_hook_userdata);

        switch (log_target) {
        case LOG_TARGET_SYSLOG:
                if (!syslog_opened) {
                        openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
                        syslog_opened = true;
                }
                syslog(level, "%s", message);
                break;
        case LOG_TARGET_JOURNAL: {
                char line_field[32];
                snprintf(line_field, sizeof line_field, "CODE_LINE=%d", line);
                if (sd_journal_send("MESSAGE=%s", message, "PRIORITY=%d", level,
                                    "SYSLOG_IDENTIFIER=%s", log_ident,
                                    "CODE_FILE=%s", file, line_field,
                                    "CODE_FUNC=%s", func,
                                    error ? "ERRNO=%d" : NULL, error, NULL) < 0)
                        write_stderr(level, message);
                break;
        }
        default:
                write_stderr(level, message);
                break;
        }
out:
        errno = saved_errno;
        return -error;
}

int log_internal(int level, int error, const char *file, int line,
                 const char *func, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_internalv(level, error, file, line, func, format, ap);
        va_end(ap);
        return r;
}
