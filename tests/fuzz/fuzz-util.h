/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every fuzz target shares: check(), an assertion that survives NDEBUG
 * and names the broken promise before aborting (libFuzzer then keeps the
 * input as a crash).
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#define check(expr)                                                            \
        do {                                                                   \
                if (!(expr)) {                                                 \
                        fprintf(stderr, "%s:%d: broken promise: %s\n",         \
                                __FILE__, __LINE__, #expr);                    \
                        abort();                                               \
                }                                                              \
        } while (0)
