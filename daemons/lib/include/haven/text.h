/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Outside text put into messages and bounded fields: shown safely (cut on a
 * UTF-8 boundary, nothing that could break a log line or a quoted string)
 * and cut to a size. Pure; owns no state.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Bytes of an outside string quoted in a message. */
#define HAVEN_TEXT_SHOWN_MAX 48

/* Copies s into buf for a message: at most HAVEN_TEXT_SHOWN_MAX bytes, cut
 * on a UTF-8 boundary with "..." when cut, control characters, quotes and
 * backslashes replaced by '?'. Returns buf. */
const char *haven_text_shown(const char *s,
                             char buf[static HAVEN_TEXT_SHOWN_MAX + 4]);

/* Copies s into buf[size] (size > 3): whole when it fits, else cut on a
 * UTF-8 boundary and ending with "...". */
void haven_text_copy_cut(char *buf, size_t size, const char *s);

/* The length (1 to 4) of the well-formed UTF-8 sequence at s[0..n), or 0
 * when s does not start one (overlong forms, surrogates and code points
 * above U+10FFFF are not well formed) or n is 0. */
size_t haven_utf8_sequence(const unsigned char *s, size_t n);
