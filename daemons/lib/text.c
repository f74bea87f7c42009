/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven/text.h: showing and cutting outside text. Must not: allocate, or
 * assume the text is valid UTF-8 (it only never cuts inside a sequence).
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "haven/text.h"

/* Backs up from k to the start of the UTF-8 sequence holding s[k]. */
static size_t utf8_boundary(const char *s, size_t k) {
        while (k > 0 && ((unsigned char) s[k] & 0xC0) == 0x80)
                k--;
        return k;
}

const char *haven_text_shown(const char *s,
                             char buf[static HAVEN_TEXT_SHOWN_MAX + 4]) {
        size_t n = strlen(s), k = n;

        if (k > HAVEN_TEXT_SHOWN_MAX)
                k = utf8_boundary(s, HAVEN_TEXT_SHOWN_MAX);
        for (size_t i = 0; i < k; i++) {
                unsigned char c = (unsigned char) s[i];

                buf[i] = c < 0x20 || c == 0x7f || c == '"' || c == '\\'
                                 ? '?'
                                 : (char) c;
        }
        strcpy(buf + k, k < n ? "..." : "");
        return buf;
}

void haven_text_copy_cut(char *buf, size_t size, const char *s) {
        size_t n = strlen(s), k;

        assert(size > 3);
        if (n < size) {
                memcpy(buf, s, n + 1);
                return;
        }
        k = utf8_boundary(s, size - 4);
        memcpy(buf, s, k);
        strcpy(buf + k, "...");
}

size_t haven_utf8_sequence(const unsigned char *s, size_t n) {
        uint32_t c;
        size_t len;

        if (n == 0)
                return 0;
        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xC2 && s[0] <= 0xDF) {
                len = 2;
                c = s[0] & 0x1F;
        } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
                len = 3;
                c = s[0] & 0x0F;
        } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
                len = 4;
                c = s[0] & 0x07;
        } else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3F);
        }
        if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
            c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
                return 0;
        return len;
}
