/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cleanup-attribute helpers of haven/macro.h: owned memory and file
 * descriptors are released when their variable goes out of scope, TAKE_PTR
 * and TAKE_FD hand ownership over, and the destructors accept "nothing".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "haven/macro.h"

static bool fd_is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

static void cleanup_close_closes_the_fd_at_scope_end(void **state) {
        int seen;

        {
                _cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                seen = fd;
                assert_true(fd_is_open(seen));
        }
        assert_false(fd_is_open(seen));
}

static void take_fd_moves_ownership_out_of_the_scope(void **state) {
        int kept;

        {
                _cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                kept = TAKE_FD(fd);
                assert_int_equal(fd, -1);
        }
        assert_true(fd_is_open(kept));
        assert_int_equal(safe_close(kept), -1);
        assert_false(fd_is_open(kept));
}

static char *make_string(const char *s) {
        _cleanup_free_ char *p = strdup(s);
        assert_non_null(p);
        return TAKE_PTR(p); /* without TAKE_PTR this would be freed here */
}

static void take_ptr_hands_over_and_cleanup_free_accepts_null(void **state) {
        char *s = make_string("haven");
        assert_string_equal(s, "haven");
        free(s);
        {
                _cleanup_free_ char *nothing = NULL;
                (void) nothing;
        }
}

static void strv_free_releases_every_string_and_accepts_null(void **state) {
        _cleanup_strv_free_ char **l = calloc(3, sizeof(char *));
        assert_non_null(l);
        l[0] = strdup("a");
        l[1] = strdup("b");
        strv_free(NULL);
        /* ASan's leak check fails this test if anything is left. */
}

static void safe_close_keeps_errno(void **state) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        errno = EAGAIN;
        assert_int_equal(safe_close(fd), -1);
        assert_int_equal(errno, EAGAIN);
        assert_int_equal(safe_close(-1), -1);
        assert_int_equal(negative_errno(), -EAGAIN);
        errno = 0;
        assert_int_equal(negative_errno(), -EIO);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(cleanup_close_closes_the_fd_at_scope_end),
                cmocka_unit_test(take_fd_moves_ownership_out_of_the_scope),
                cmocka_unit_test(take_ptr_hands_over_and_cleanup_free_accepts_null),
                cmocka_unit_test(strv_free_releases_every_string_and_accepts_null),
                cmocka_unit_test(safe_close_keeps_errno),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
