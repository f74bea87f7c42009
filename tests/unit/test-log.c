/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for haven/log.h: level and target names, the max-level filter,
 * and the log_*_errno() contract (returns the negative errno, "%m" names it,
 * the caller's errno survives). Messages are captured with log_set_hook();
 * the logger's own stderr lines are kept out of the test output.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>

#include "haven/log.h"

struct captured {
        unsigned count;
        int level;
        char message[2048];
        bool clobber_errno; /* the hook changes errno, as a careless one might
                             */
};

static void capture(int level, const char *message, void *userdata) {
        struct captured *c = userdata;

        c->count++;
        c->level = level;
        snprintf(c->message, sizeof c->message, "%s", message);
        if (c->clobber_errno)
                errno = EXDEV;
}

/* stderr while a test runs: a temporary file, so that the logger's lines
 * (tagged with LOG_IDENT) do not clutter the output; teardown passes every
 * other line (cmocka's failure reports) on to the real stderr. */
#define LOG_IDENT "haven-test-log"
static int saved_stderr = -1;
static FILE *captured_stderr;

static int setup(void **state) {
        struct captured *c = calloc(1, sizeof *c);

        if (!c)
                return -1;
        log_set_ident(LOG_IDENT);
        log_set_hook(capture, c);
        log_set_target(LOG_TARGET_STDERR);
        log_set_max_level(LOG_INFO);

        fflush(stderr);
        saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        captured_stderr = tmpfile();
        if (saved_stderr < 0 || !captured_stderr ||
            dup2(fileno(captured_stderr), STDERR_FILENO) < 0) {
                free(c);
                return -1;
        }

        *state = c;
        return 0;
}

static int teardown(void **state) {
        char line[4096];

        fflush(stderr);
        if (saved_stderr >= 0) {
                (void) dup2(saved_stderr, STDERR_FILENO);
                saved_stderr = safe_close(saved_stderr);
        }
        if (captured_stderr) {
                rewind(captured_stderr);
                while (fgets(line, sizeof line, captured_stderr))
                        if (!strstr(line, LOG_IDENT "["))
                                fputs(line, stderr);
                fclose(captured_stderr);
                captured_stderr = NULL;
        }

        log_set_hook(NULL, NULL);
        log_set_target(LOG_TARGET_STDERR);
        log_set_max_level(LOG_INFO);
        log_set_ident(NULL);
        free(*state);
        return 0;
}

/* ==== Names ==== */

static void level_names_and_numbers_parse(void **state) {
        static const struct {
                const char *name;
                int level;
        } table[] = {
                {"emerg", LOG_EMERG},     {"alert", LOG_ALERT},
                {"crit", LOG_CRIT},       {"err", LOG_ERR},
                {"error", LOG_ERR},       {"warning", LOG_WARNING},
                {"notice", LOG_NOTICE},   {"info", LOG_INFO},
                {"debug", LOG_DEBUG},     {"DEBUG", LOG_DEBUG},
                {"Warning", LOG_WARNING}, {"0", LOG_EMERG},
                {"3", LOG_ERR},           {"7", LOG_DEBUG},
        };
        static const char *const bad[] = {
                "",   "8",   "9",      "-1",   "07",          "77",  " 7",
                "7 ", "deb", "debugx", "warn", "information", "log",
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                assert_int_equal(log_level_from_string(table[i].name),
                                 table[i].level);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (log_level_from_string(bad[i]) != -EINVAL)
                        fail_msg("level \"%s\" was accepted", bad[i]);
        assert_int_equal(log_level_from_string(NULL), -EINVAL);
}

static void target_names_parse(void **state) {
        assert_int_equal(log_target_from_string("stderr"), LOG_TARGET_STDERR);
        assert_int_equal(log_target_from_string("syslog"), LOG_TARGET_SYSLOG);
        assert_int_equal(log_target_from_string("journal"), LOG_TARGET_JOURNAL);
        assert_int_equal(log_target_from_string("Journal"), LOG_TARGET_JOURNAL);
        assert_int_equal(log_target_from_string(""), _LOG_TARGET_INVALID);
        assert_int_equal(log_target_from_string("file"), _LOG_TARGET_INVALID);
        assert_int_equal(log_target_from_string("stderr2"),
                         _LOG_TARGET_INVALID);
        assert_int_equal(log_target_from_string(NULL), _LOG_TARGET_INVALID);
}

static void environment_sets_level_and_target(void **state) {
        assert_int_equal(setenv("HAVEN_LOG_LEVEL", "debug", 1), 0);
        assert_int_equal(setenv("HAVEN_LOG_TARGET", "syslog", 1), 0);
        log_parse_environment();
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
        assert_int_equal(log_get_target(), LOG_TARGET_SYSLOG);

        assert_int_equal(setenv("HAVEN_LOG_LEVEL", "loud", 1), 0);
        assert_int_equal(setenv("HAVEN_LOG_TARGET", "printer", 1), 0);
        log_parse_environment();
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
        assert_int_equal(log_get_target(), LOG_TARGET_SYSLOG);

        unsetenv("HAVEN_LOG_LEVEL");
        unsetenv("HAVEN_LOG_TARGET");
        log_set_target(LOG_TARGET_STDERR);
}

/* ==== Filtering ==== */

static void messages_above_max_level_are_dropped(void **state) {
        struct captured *c = *state;

        log_set_max_level(LOG_WARNING);
        assert_int_equal(log_get_max_level(), LOG_WARNING);

        log_info("VM \"%s\" started", "web1");
        log_debug("details");
        log_notice("noticed");
        assert_int_equal(c->count, 0);

        log_warning("VM \"%s\" is slow", "web1");
        assert_int_equal(c->count, 1);
        assert_int_equal(c->level, LOG_WARNING);
        assert_string_equal(c->message, "VM \"web1\" is slow");

        log_error("VM \"%s\" failed", "web2");
        assert_int_equal(c->count, 2);
        assert_int_equal(c->level, LOG_ERR);
        assert_string_equal(c->message, "VM \"web2\" failed");

        /* Raising the level lets debug through. */
        log_set_max_level(LOG_DEBUG);
        log_debug("now visible");
        assert_int_equal(c->count, 3);
        assert_int_equal(c->level, LOG_DEBUG);
}

static void out_of_range_max_levels_are_ignored(void **state) {
        log_set_max_level(LOG_NOTICE);
        log_set_max_level(8);
        log_set_max_level(-1);
        assert_int_equal(log_get_max_level(), LOG_NOTICE);

        log_set_target(LOG_TARGET_SYSLOG);
        log_set_target((enum log_target) 17);
        log_set_target(_LOG_TARGET_INVALID);
        assert_int_equal(log_get_target(), LOG_TARGET_SYSLOG);
        log_set_target(LOG_TARGET_STDERR);
}

static void filtered_messages_are_not_formatted(void **state) {
        struct captured *c = *state;
        int calls = 0;

        log_set_max_level(LOG_ERR);
        /* The arguments are not even evaluated below the filter. */
        log_debug("%d", ++calls);
        assert_int_equal(calls, 0);
        assert_int_equal(c->count, 0);
}

static void out_of_range_levels_are_logged_as_errors(void **state) {
        struct captured *c = *state;

        assert_int_equal(
                log_internal(42, 0, __FILE__, __LINE__, __func__, "odd level"),
                0);
        assert_int_equal(c->count, 1);
        assert_int_equal(c->level, LOG_ERR);
}

/* ==== log_*_errno ==== */

static void errno_helpers_return_the_negative_errno(void **state) {
        struct captured *c = *state;

        assert_int_equal(log_error_errno(EIO, "plain"), -EIO);
        assert_int_equal(log_error_errno(-ENOENT, "negative"), -ENOENT);
        assert_int_equal(log_warning_errno(-EBUSY, "warn"), -EBUSY);
        assert_int_equal(c->count, 3);

        /* Also when the message is filtered out. */
        log_set_max_level(LOG_ERR);
        assert_int_equal(log_debug_errno(-EAGAIN, "hidden"), -EAGAIN);
        assert_int_equal(log_info_errno(ETIMEDOUT, "hidden"), -ETIMEDOUT);
        assert_int_equal(c->count, 3);

        assert_int_equal(log_error_errno(0, "no error"), 0);
        assert_int_equal(c->count, 4);
}

static void percent_m_names_the_given_errno(void **state) {
        struct captured *c = *state;
        char expected[256];

        errno = EPERM;
        log_error_errno(-ENOENT, "Failed to open \"%s\": %m", "/etc/haven");
        snprintf(expected, sizeof expected, "Failed to open \"/etc/haven\": %s",
                 strerror(ENOENT));
        assert_string_equal(c->message, expected);

        log_error_errno(ECONNREFUSED, "peer: %m");
        snprintf(expected, sizeof expected, "peer: %s", strerror(ECONNREFUSED));
        assert_string_equal(c->message, expected);

        /* Without an error, %m is the caller's errno. */
        errno = EACCES;
        log_error("%m");
        assert_string_equal(c->message, strerror(EACCES));
}

static void errno_is_preserved_across_logging(void **state) {
        struct captured *c = *state;

        errno = EAGAIN;
        (void) log_error_errno(-ENOENT, "Failed: %m");
        assert_int_equal(errno, EAGAIN);

        log_info("info");
        assert_int_equal(errno, EAGAIN);

        /* Filtered out. */
        (void) log_debug_errno(-EIO, "hidden: %m");
        assert_int_equal(errno, EAGAIN);

        /* Even when the hook clobbers it. */
        c->clobber_errno = true;
        (void) log_error_errno(-EIO, "clobbered: %m");
        assert_int_equal(errno, EAGAIN);

        /* And for the other targets (syslog always works; the journal may
         * be absent here, then stderr is used). */
        log_set_target(LOG_TARGET_SYSLOG);
        (void) log_error_errno(-EIO, "via syslog: %m");
        assert_int_equal(errno, EAGAIN);
        log_set_target(LOG_TARGET_JOURNAL);
        assert_int_equal(log_error_errno(-EIO, "via journal: %m"), -EIO);
        assert_int_equal(errno, EAGAIN);
        log_set_target(LOG_TARGET_STDERR);
}

static void long_messages_are_cut_not_overflowed(void **state) {
        struct captured *c = *state;
        char big[5000];

        memset(big, 'a', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        log_error("%s", big);
        assert_int_equal(c->count, 1);
        assert_int_equal(strlen(c->message), 2047);
}

#define LOG_TEST(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                LOG_TEST(level_names_and_numbers_parse),
                LOG_TEST(target_names_parse),
                LOG_TEST(environment_sets_level_and_target),
                LOG_TEST(messages_above_max_level_are_dropped),
                LOG_TEST(out_of_range_max_levels_are_ignored),
                LOG_TEST(filtered_messages_are_not_formatted),
                LOG_TEST(out_of_range_levels_are_logged_as_errors),
                LOG_TEST(errno_helpers_return_the_negative_errno),
                LOG_TEST(percent_m_names_the_given_errno),
                LOG_TEST(errno_is_preserved_across_logging),
                LOG_TEST(long_messages_are_cut_not_overflowed),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
