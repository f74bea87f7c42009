/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Temporary directories for unit tests that need files (databases, sockets,
 * certificates): removal of a directory with everything in it. Header only
 * (static inline); owns no state.
 */
#pragma once

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "haven/macro.h"

/* Removes path and everything below it; errors are ignored (a test's
 * teardown must not fail on leftovers). */
static inline void remove_tree(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char child[PATH_MAX];
                struct stat st;
                int n;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                n = snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
                if (n < 0 || (size_t) n >= sizeof(child))
                        continue;
                if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
                        remove_tree(child);
                else
                        (void) unlink(child);
        }
        closedir(d);
        (void) rmdir(path);
}
