/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven/text.h. Inputs tried: short and exact-size text, text one byte too
 * long, a cut that would fall inside a UTF-8 sequence, control characters,
 * quotes and backslashes, the empty string.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "haven/text.h"

static void shown_text_is_safe_to_quote_and_bounded(void **state) {
        char buf[HAVEN_TEXT_SHOWN_MAX + 4], long_text[200];

        assert_string_equal(haven_text_shown("", buf), "");
        assert_string_equal(haven_text_shown("pdu1", buf), "pdu1");
        assert_string_equal(haven_text_shown("a\"b\\c\nd\x7f", buf), "a?b?c?d?");
        memset(long_text, 'x', sizeof long_text - 1);
        long_text[sizeof long_text - 1] = 0;
        haven_text_shown(long_text, buf);
        assert_int_equal(strlen(buf), HAVEN_TEXT_SHOWN_MAX + 3);
        assert_string_equal(buf + HAVEN_TEXT_SHOWN_MAX, "...");
        /* "é" (2 bytes) straddling the limit is dropped whole. */
        memset(long_text, 'x', HAVEN_TEXT_SHOWN_MAX - 1);
        strcpy(long_text + HAVEN_TEXT_SHOWN_MAX - 1, "\xc3\xa9tail");
        haven_text_shown(long_text, buf);
        assert_int_equal(strlen(buf), HAVEN_TEXT_SHOWN_MAX - 1 + 3);
}

static void copy_cut_keeps_what_fits_and_never_splits_a_character(void **state) {
        char buf[8];

        haven_text_copy_cut(buf, sizeof buf, "1234567");
        assert_string_equal(buf, "1234567");
        haven_text_copy_cut(buf, sizeof buf, "12345678");
        assert_string_equal(buf, "1234...");
        haven_text_copy_cut(buf, sizeof buf, "123\xe2\x82\xac" "5678"); /* € at 3..5 */
        assert_string_equal(buf, "123...");
        haven_text_copy_cut(buf, sizeof buf, "");
        assert_string_equal(buf, "");
}

static void utf8_sequences_are_whole_and_well_formed(void **state) {
        const unsigned char *e = (const unsigned char *) "\xc3\xa9";

        assert_int_equal(haven_utf8_sequence((const unsigned char *) "a", 1), 1);
        assert_int_equal(haven_utf8_sequence(e, 2), 2);
        assert_int_equal(haven_utf8_sequence(e, 1), 0);          /* cut short */
        assert_int_equal(haven_utf8_sequence((const unsigned char *) "\xc0\xaf", 2), 0); /* overlong */
        assert_int_equal(haven_utf8_sequence((const unsigned char *) "\xed\xa0\x80", 3), 0); /* surrogate */
        assert_int_equal(haven_utf8_sequence((const unsigned char *) "\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
        assert_int_equal(haven_utf8_sequence((const unsigned char *) "\xf0\x9f\x98\x80", 4), 4);
        assert_int_equal(haven_utf8_sequence(e, 0), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(shown_text_is_safe_to_quote_and_bounded),
                cmocka_unit_test(copy_cut_keeps_what_fits_and_never_splits_a_character),
                cmocka_unit_test(utf8_sequences_are_whole_and_well_formed),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
