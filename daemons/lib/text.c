/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * haven/text.h: showing and cutting outside text. Must not: allocate, or
 * assume the text is valid UTF-8 (it only never cuts inside a sequence).
 */
#include <assert.h>
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
