/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The web UI's files, from the UI directory only: each path component is
 * opened below it with O_NOFOLLOW (no symbolic link is followed, none can
 * lead out; hidden names are refused), content types by extension, ETag
 * and 304, the precompressed FILE.gz for clients that take gzip, caching
 * forever for content-hashed names and revalidation for everything else,
 * and index.html for the application's own routes. Must not: serve
 * anything outside the directory, or under /api.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>

#include <microhttpd.h>

#include "httpd.h"

#define INDEX_FILE "index.html"
#define CACHE_FOREVER "public, max-age=31536000, immutable"
#define CACHE_REVALIDATE "no-cache"
#define HASH_MIN 8u
#define HASH_MAX 64u
#define SEGMENT_MAX 255u

struct httpd_static {
        int dir_fd;
        char *dir; /* its path, to open it again when it was replaced */
};

int httpd_static_new(const char *dir, struct httpd_static **ret) {
        struct httpd_static *s;
        int fd;

        fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        s = calloc(1, sizeof *s);
        if (!s) {
                safe_close(fd);
                return -ENOMEM;
        }
        s->dir_fd = fd;
        s->dir = strdup(dir);
        if (!s->dir) {
                httpd_static_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

/* A new build of the UI replaces the directory (removed and made again, or
 * the old one moved away and the new one renamed into place): the path then
 * names another directory than the one we hold, and that one is opened. */
static void reopen_if_replaced(struct httpd_static *s) {
        struct stat held, now;
        int fd;

        if (fstat(s->dir_fd, &held) < 0 || stat(s->dir, &now) < 0 ||
            (held.st_dev == now.st_dev && held.st_ino == now.st_ino))
                return;
        fd = open(s->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        safe_close(s->dir_fd);
        s->dir_fd = fd;
}

struct httpd_static *httpd_static_free(struct httpd_static *s) {
        if (!s)
                return NULL;
        safe_close(s->dir_fd);
        free(s->dir);
        free(s);
        return NULL;
}

/* ==== Names ==== */

const char *httpd_static_content_type(const char *name) {
        static const struct {
                const char *extension, *type;
        } types[] = {
                {"html", "text/html; charset=utf-8"},
                {"js", "text/javascript; charset=utf-8"},
                {"mjs", "text/javascript; charset=utf-8"},
                {"css", "text/css; charset=utf-8"},
                {"json", "application/json"},
                {"map", "application/json"},
                {"webmanifest", "application/manifest+json"},
                {"svg", "image/svg+xml"},
                {"png", "image/png"},
                {"jpg", "image/jpeg"},
                {"jpeg", "image/jpeg"},
                {"gif", "image/gif"},
                {"webp", "image/webp"},
                {"ico", "image/x-icon"},
                {"woff", "font/woff"},
                {"woff2", "font/woff2"},
                {"ttf", "font/ttf"},
                {"txt", "text/plain; charset=utf-8"},
                {"wasm", "application/wasm"},
                {"xml", "application/xml"},
        };
        const char *dot = strrchr(name, '.');

        if (dot && !strchr(dot, '/'))
                for (size_t i = 0; i < ELEMENTSOF(types); i++)
                        if (strcasecmp(dot + 1, types[i].extension) == 0)
                                return types[i].type;
        return "application/octet-stream";
}

static bool hash_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '_';
}

bool httpd_static_is_hashed(const char *name) {
        const char *base = strrchr(name, '/'), *ext, *start;
        bool digit = false;
        size_t n;

        base = base ? base + 1 : name;
        ext = strrchr(base, '.');
        if (!ext || ext == base)
                return false;
        /* The hash ends where the extension starts and begins after the
         * last '-' or '.' before it. */
        for (start = ext; start > base && hash_char(start[-1]); start--)
                ;
        if (start == base || (start[-1] != '-' && start[-1] != '.'))
                return false;
        n = (size_t) (ext - start);
        if (n < HASH_MIN || n > HASH_MAX)
                return false;
        for (const char *p = start; p < ext; p++)
                digit = digit || (*p >= '0' && *p <= '9');
        return digit;
}

/* Whether a quality value is zero: "0", "0.", "0.0" ... "0.000". */
static bool quality_is_zero(const char *q, size_t n) {
        if (n == 0 || q[0] != '0')
                return false;
        if (n > 1 && q[1] != '.')
                return false;
        for (size_t i = 2; i < n; i++)
                if (q[i] != '0')
                        return false;
        return true;
}

/* The q parameter of one Accept-Encoding element [p, end) is zero. */
static bool element_refused(const char *p, const char *end) {
        while ((p = memchr(p, ';', (size_t) (end - p)))) {
                const char *v;
                size_t n;

                p++;
                while (p < end && (*p == ' ' || *p == '\t'))
                        p++;
                if (end - p < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=')
                        continue;
                v = p + 2;
                for (n = 0;
                     v + n < end && v[n] != ' ' && v[n] != '\t' && v[n] != ';';
                     n++)
                        ;
                return quality_is_zero(v, n);
        }
        return false;
}

bool httpd_accepts_gzip(const char *accept_encoding) {
        const char *p = accept_encoding;
        int star = -1; /* -1: not named, else whether "*" is accepted */

        if (!p)
                return false;
        while (*p) {
                const char *end = p + strcspn(p, ","), *token;
                size_t n;

                token = p + strspn(p, " \t");
                n = strcspn(token, " \t;,");
                if (n == 4 && strncasecmp(token, "gzip", 4) == 0)
                        return !element_refused(token + n, end);
                if (n == 1 && token[0] == '*')
                        star = !element_refused(token + n, end);
                p = *end ? end + 1 : end;
        }
        return star == 1;
}

bool httpd_etag_matches(const char *if_none_match, const char *etag) {
        const char *p;

        if (!if_none_match)
                return false;
        p = if_none_match + strspn(if_none_match, " \t");
        if (streq(p, "*"))
                return true;
        /* etag is quoted, so a hit is a whole entity-tag (W/ or not). */
        return strstr(if_none_match, etag) != NULL;
}

/* ==== Opening ==== */

/* Opens name (one component) below dir_fd without following a symbolic
 * link. Returns the fd, or a negative errno (-ENOENT for a hidden name). */
static int open_component(int dir_fd, const char *name, bool directory) {
        int fd;

        if (name[0] == '.' || name[0] == '\0')
                return -ENOENT;
        fd = openat(dir_fd, name,
                    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
                            (directory ? O_DIRECTORY : 0));
        if (fd < 0)
                return errno == ELOOP ? -ENOENT : -errno;
        return fd;
}

/* Opens the regular file at the decoded path below the UI directory.
 * Returns the fd and *ret_st, -ENOENT, -EISDIR, or another errno; the
 * directory that holds it is left in *ret_dir_fd. */
static int open_path(struct httpd_static *s, const char *path,
                     struct stat *ret_st, int *ret_dir_fd) {
        _cleanup_close_ int dir = -1, fd = -1;
        char segment[SEGMENT_MAX + 1];
        const char *p = path;

        reopen_if_replaced(s);
        dir = fcntl(s->dir_fd, F_DUPFD_CLOEXEC, 3);
        if (dir < 0)
                return -errno;
        for (;;) {
                size_t n;

                p += strspn(p, "/");
                n = strcspn(p, "/");
                if (n == 0 || n > SEGMENT_MAX)
                        return -ENOENT;
                memcpy(segment, p, n);
                segment[n] = '\0';
                p += n;
                if (*p == '\0')
                        break;
                fd = open_component(dir, segment, true);
                if (fd < 0)
                        return fd;
                safe_close(dir);
                dir = TAKE_FD(fd);
        }
        fd = open_component(dir, segment, false);
        if (fd < 0)
                return fd;
        if (fstat(fd, ret_st) < 0)
                return -errno;
        if (S_ISDIR(ret_st->st_mode))
                return -EISDIR;
        if (!S_ISREG(ret_st->st_mode))
                return -ENOENT;
        *ret_dir_fd = TAKE_FD(dir);
        return TAKE_FD(fd);
}

/* The last segment of path has no dot: a route of the application. */
static bool path_is_route(const char *path) {
        const char *last = strrchr(path, '/');

        return !strchr(last ? last + 1 : path, '.');
}

int httpd_static_open(struct httpd_static *s, const char *path, bool gzip_ok,
                      struct httpd_static_file *ret) {
        _cleanup_close_ int fd = -1, dir = -1, gz = -1;
        const char *name = path;
        struct stat st;

        if (!s)
                return -ENOENT;
        if (streq(path, "/") || path[0] == '\0')
                name = "/" INDEX_FILE;
        fd = open_path(s, name, &st, &dir);
        if ((fd == -ENOENT || fd == -EISDIR) && path_is_route(path)) {
                name = "/" INDEX_FILE;
                fd = open_path(s, name, &st, &dir);
        }
        if (fd == -EISDIR)
                fd = -ENOENT;
        if (fd < 0)
                return fd;

        *ret = (struct httpd_static_file){
                .content_type = httpd_static_content_type(name),
                .cache_control = httpd_static_is_hashed(name)
                                         ? CACHE_FOREVER
                                         : CACHE_REVALIDATE,
        };
        if (gzip_ok) {
                const char *base = strrchr(name, '/') + 1;
                char gz_name[SEGMENT_MAX + 4];
                struct stat gz_st;

                if (snprintf(gz_name, sizeof gz_name, "%s.gz", base) <
                            (int) sizeof gz_name &&
                    (gz = open_component(dir, gz_name, false)) >= 0 &&
                    fstat(gz, &gz_st) >= 0 && S_ISREG(gz_st.st_mode)) {
                        safe_close(fd);
                        fd = TAKE_FD(gz);
                        st = gz_st;
                        ret->gzip = true;
                }
        }
        ret->size = (uint64_t) st.st_size;
        snprintf(ret->etag, sizeof ret->etag,
                 "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "%s\"",
                 (uint64_t) st.st_ino, (uint64_t) st.st_size,
                 (uint64_t) st.st_mtim.tv_sec * 1000000000u +
                         (uint64_t) st.st_mtim.tv_nsec,
                 ret->gzip ? "-gz" : "");
        ret->fd = TAKE_FD(fd);
        return 0;
}

/* ==== Serving ==== */

static int add_headers(struct MHD_Response *response,
                       const struct httpd_static_file *f) {
        if (MHD_add_response_header(response, "ETag", f->etag) != MHD_YES ||
            MHD_add_response_header(response, "Cache-Control",
                                    f->cache_control) != MHD_YES ||
            MHD_add_response_header(response, "Vary", "Accept-Encoding") !=
                    MHD_YES)
                return -ENOMEM;
        return 0;
}

int httpd_static_serve(struct httpd_request *r) {
        const struct httpd_match *m = httpd_request_match(r);
        struct httpd_static_file f;
        struct MHD_Response *response;
        int ret;

        ret = httpd_static_open(
                httpd_static(httpd_request_server(r)), m->path,
                httpd_accepts_gzip(httpd_request_header(r, "Accept-Encoding")),
                &f);
        if (ret == -ENOENT || ret == -ENOTDIR) {
                httpd_reply_code(r, HTTPD_ERROR_NOT_FOUND, NULL,
                                 "no such file");
                return 0;
        }
        if (ret < 0)
                return ret;

        if (httpd_etag_matches(httpd_request_header(r, "If-None-Match"),
                               f.etag)) {
                safe_close(f.fd);
                response = MHD_create_response_from_buffer(
                        0, NULL, MHD_RESPMEM_PERSISTENT);
                if (!response || add_headers(response, &f) < 0) {
                        if (response)
                                MHD_destroy_response(response);
                        return -ENOMEM;
                }
                httpd_reply_response(r, 304, response);
                return 0;
        }

        /* The response owns the fd from here on. */
        response = MHD_create_response_from_fd64(f.size, f.fd);
        if (!response) {
                safe_close(f.fd);
                return -ENOMEM;
        }
        if (add_headers(response, &f) < 0 ||
            MHD_add_response_header(response, "Content-Type", f.content_type) !=
                    MHD_YES ||
            (f.gzip && MHD_add_response_header(response, "Content-Encoding",
                                               "gzip") != MHD_YES)) {
                MHD_destroy_response(response);
                return -ENOMEM;
        }
        httpd_reply_response(r, 200, response);
        return 0;
}
