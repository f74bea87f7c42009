/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * This node's network interfaces for the cluster network wizard: what
 * /sys/class/net says of each (MAC, link, speed, MTU, what kind of device,
 * the bond or bridge it belongs to) and its addresses from getifaddrs(3).
 * The builder reads only files below the directory it is given, so tests
 * hand it a tree of their own. Must not: run a program, follow a path out
 * of an interface's directory by name, or change anything.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "haven/log.h"
#include "httpd.h"

#define SYSFS_NET "/sys/class/net"
#define ARPHRD_LOOPBACK_TYPE 772 /* <linux/if_arp.h>: ARPHRD_LOOPBACK */
#define VALUE_MAX 128            /* a sysfs attribute we read */

/* ==== Reading sysfs ==== */

/* The text of dirfd/name (at most size - 1 bytes) into buf. Returns its
 * length, or a negative errno (a file that cannot be read: carrier and
 * speed of an interface that is down answer EINVAL). */
static ssize_t read_text(int dirfd, const char *name, char *buf,
                         size_t size) {
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        assert(size > 1);
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return n;
}

/* The first line of dirfd/name, without its newline. */
static ssize_t read_value(int dirfd, const char *name, char *buf,
                          size_t size) {
        ssize_t n = read_text(dirfd, name, buf, size);

        if (n < 0)
                return n;
        buf[strcspn(buf, "\n")] = '\0';
        return (ssize_t) strlen(buf);
}

/* The integer in dirfd/name: 0 and *ret, or a negative errno (-EBADMSG for
 * text that is not one integer). */
static int read_int(int dirfd, const char *name, long long *ret) {
        char buf[VALUE_MAX], *end;
        long long v;
        ssize_t n;

        n = read_value(dirfd, name, buf, sizeof buf);
        if (n < 0)
                return (int) n;
        errno = 0;
        v = strtoll(buf, &end, 10);
        if (n == 0 || errno || *end)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static bool exists(int dirfd, const char *name) {
        struct stat st;

        return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Printable ASCII without spaces, 1..IFNAMSIZ-1: what we show as a name. */
static bool name_is_shown(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || n >= IFNAMSIZ || streq(name, ".") || streq(name, ".."))
                return false;
        for (const char *p = name; *p; p++)
                if (*p <= ' ' || *p > '~')
                        return false;
        return true;
}

/* A MAC (or other link-layer) address as sysfs writes it: hex pairs joined
 * by ':', lowercase. */
static bool mac_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n < 2 || n > 59 || (n + 1) % 3 != 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (i % 3 == 2 ? s[i] != ':'
                               : !((s[i] >= '0' && s[i] <= '9') ||
                                   (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* "up", "down", "unknown", "lowerlayerdown"...: lowercase letters only. */
static bool word_is_valid(const char *s) {
        if (!*s || strlen(s) > 24)
                return false;
        for (const char *p = s; *p; p++)
                if (*p < 'a' || *p > 'z')
                        return false;
        return true;
}

/* Whether text (uevent's KEY=VALUE lines) has the line line. */
static bool has_line(const char *text, const char *line) {
        size_t n = strlen(line);
        const char *p = text;

        while (p && *p) {
                if (strncmp(p, line, n) == 0 &&
                    (p[n] == '\n' || p[n] == '\0'))
                        return true;
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return false;
}

/* What kind of device: the loopback by its type, a bond, a bridge or a
 * VLAN by their sysfs marks, a device with hardware behind it (device) is
 * physical, anything else (veth, tun, dummy...) virtual. */
static const char *interface_kind(int dirfd) {
        char uevent[1024] = "";
        long long type;

        if (read_int(dirfd, "type", &type) >= 0 &&
            type == ARPHRD_LOOPBACK_TYPE)
                return "loopback";
        (void) read_text(dirfd, "uevent", uevent, sizeof uevent);
        if (exists(dirfd, "bonding") || has_line(uevent, "DEVTYPE=bond"))
                return "bond";
        if (exists(dirfd, "bridge") || has_line(uevent, "DEVTYPE=bridge"))
                return "bridge";
        if (has_line(uevent, "DEVTYPE=vlan"))
                return "vlan";
        if (exists(dirfd, "device"))
                return "physical";
        return "virtual";
}

/* ==== Addresses ==== */

static unsigned prefix_length(const struct sockaddr *mask) {
        const unsigned char *b;
        size_t n;
        unsigned bits = 0;

        if (!mask)
                return 0;
        if (mask->sa_family == AF_INET) {
                b = (const unsigned char *) &((const struct sockaddr_in *) mask)
                            ->sin_addr;
                n = 4;
        } else if (mask->sa_family == AF_INET6) {
                b = (const unsigned char *) &((const struct sockaddr_in6 *)
                                                      mask)
                            ->sin6_addr;
                n = 16;
        } else
                return 0;
        for (size_t i = 0; i < n; i++)
                bits += (unsigned) __builtin_popcount(b[i]);
        return bits;
}

/* [{"address", "prefix", "family"}] of name's IPv4 and IPv6 addresses in
 * addrs. NULL on -ENOMEM. */
static struct json_object *addresses_of(const char *name,
                                        const struct ifaddrs *addrs) {
        _cleanup_(json_object_putp) struct json_object *a =
                json_object_new_array();

        if (!a)
                return NULL;
        for (const struct ifaddrs *i = addrs; i; i = i->ifa_next) {
                _cleanup_(json_object_putp) struct json_object *o = NULL;
                char text[INET6_ADDRSTRLEN];
                const void *raw;
                int family;

                if (!i->ifa_addr || !i->ifa_name || !streq(i->ifa_name, name))
                        continue;
                family = i->ifa_addr->sa_family;
                if (family == AF_INET)
                        raw = &((const struct sockaddr_in *) i->ifa_addr)
                                       ->sin_addr;
                else if (family == AF_INET6)
                        raw = &((const struct sockaddr_in6 *) i->ifa_addr)
                                       ->sin6_addr;
                else
                        continue;
                if (!inet_ntop(family, raw, text, sizeof text))
                        continue;
                o = json_object_new_object();
                if (!o ||
                    haven_json_add(o, "address",
                                   json_object_new_string(text)) < 0 ||
                    haven_json_add(o, "prefix",
                                   json_object_new_int64(
                                           prefix_length(i->ifa_netmask))) <
                            0 ||
                    haven_json_add(o, "family",
                                   json_object_new_int64(
                                           family == AF_INET ? 4 : 6)) < 0 ||
                    json_object_array_add(a, o) < 0)
                        return NULL;
                TAKE_PTR(o);
        }
        return TAKE_PTR(a);
}

/* ==== One interface ==== */

/* key → s, or JSON null for NULL or "". Returns 0 or -ENOMEM. */
static int add_text(struct json_object *o, const char *key, const char *s) {
        struct json_object *v = NULL;

        if (s && *s && !(v = json_object_new_string(s)))
                return -ENOMEM;
        return haven_json_add(o, key, v);
}

/* The interface name in sysfs_dir (dirfd) as JSON; NULL on -ENOMEM. An
 * interface whose directory cannot be opened (it went away) gives only
 * its name and nulls. */
static struct json_object *interface_new(int dirfd, const char *name,
                                         const struct ifaddrs *addrs) {
        _cleanup_(json_object_putp) struct json_object *o =
                json_object_new_object();
        _cleanup_close_ int fd = -EBADF;
        char mac[VALUE_MAX] = "", state[VALUE_MAX] = "", master[PATH_MAX];
        long long carrier = -1, speed = -1, mtu = -1;
        struct json_object *addresses;
        const char *kind = NULL, *link;
        ssize_t n;
        bool have_carrier = false;

        if (!o)
                return NULL;
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                kind = interface_kind(fd);
                if (read_value(fd, "address", mac, sizeof mac) < 0 ||
                    !mac_is_valid(mac))
                        mac[0] = '\0';
                if (read_value(fd, "operstate", state, sizeof state) < 0 ||
                    !word_is_valid(state))
                        state[0] = '\0';
                have_carrier = read_int(fd, "carrier", &carrier) >= 0 &&
                               (carrier == 0 || carrier == 1);
                if (read_int(fd, "speed", &speed) < 0 || speed <= 0 ||
                    speed > 100000000)
                        speed = -1;
                if (read_int(fd, "mtu", &mtu) < 0 || mtu <= 0 || mtu > 65536)
                        mtu = -1;
                n = readlinkat(fd, "master", master, sizeof master - 1);
                if (n > 0) {
                        const char *base;

                        master[n] = '\0';
                        base = strrchr(master, '/');
                        base = base ? base + 1 : master;
                        memmove(master, base, strlen(base) + 1);
                        if (!name_is_shown(master))
                                master[0] = '\0';
                } else
                        master[0] = '\0';
        } else
                master[0] = '\0';

        /* The carrier when the kernel says; else what operstate says (it
         * refuses to read carrier of an interface that is down). */
        if (have_carrier)
                link = carrier == 1 ? "up" : "down";
        else
                link = streq(state, "up") ? "up" : "down";

        if (add_text(o, "name", name) < 0 || add_text(o, "mac", mac) < 0 ||
            add_text(o, "kind", kind) < 0 || add_text(o, "link", link) < 0 ||
            add_text(o, "operstate", state) < 0 ||
            haven_json_add(o, "speed_mbps",
                           speed > 0 ? json_object_new_int64(speed) : NULL) <
                    0 ||
            haven_json_add(o, "mtu",
                           mtu > 0 ? json_object_new_int64(mtu) : NULL) < 0 ||
            add_text(o, "master", master) < 0)
                return NULL;
        addresses = addresses_of(name, addrs);
        if (!addresses || haven_json_add(o, "addresses", addresses) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* ==== The list ==== */

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void names_free(char **names, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

int httpd_interfaces_build(const char *sysfs_dir, const struct ifaddrs *addrs,
                           struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL, *list = NULL;
        DIR *dir;
        struct dirent *e;
        char **names = NULL;
        size_t n = 0;
        int r = 0;

        assert(sysfs_dir);
        assert(ret);

        dir = opendir(sysfs_dir);
        if (!dir)
                return -errno;
        names = calloc(HTTPD_INTERFACES_MAX, sizeof *names);
        if (!names) {
                closedir(dir);
                return -ENOMEM;
        }
        while ((e = readdir(dir))) {
                struct stat st;

                /* Interfaces are (links to) directories; sysfs also has
                 * files here (bonding_masters). */
                if (!name_is_shown(e->d_name) ||
                    fstatat(dirfd(dir), e->d_name, &st, 0) < 0 ||
                    !S_ISDIR(st.st_mode))
                        continue;
                if (n >= HTTPD_INTERFACES_MAX) {
                        r = -E2BIG;
                        break;
                }
                names[n] = strdup(e->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        qsort(names, n, sizeof *names, compare_names);

        list = json_object_new_array();
        if (!list && r >= 0)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                struct json_object *x = interface_new(dirfd(dir), names[i],
                                                      addrs);

                if (!x || json_object_array_add(list, x) < 0) {
                        json_object_put(x);
                        r = -ENOMEM;
                }
        }
        names_free(names, n);
        closedir(dir);
        if (r < 0)
                return r;

        o = json_object_new_object();
        if (!o || haven_json_add(o, "interfaces", TAKE_PTR(list)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

/* ==== The route ==== */

int httpd_wizard_interfaces(struct httpd_request *r) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct ifaddrs *addrs = NULL;
        char host[256];
        int ret;

        if (getifaddrs(&addrs) < 0) {
                log_warning_errno(errno, "Failed to read this node's "
                                         "addresses, ignoring: %m");
                addrs = NULL;
        }
        ret = httpd_interfaces_build(SYSFS_NET, addrs, &o);
        freeifaddrs(addrs);
        if (ret < 0) {
                httpd_reply_code(r, HTTPD_ERROR_INTERNAL, NULL,
                                 "cannot read this node's interfaces: %s",
                                 strerror(-ret));
                return 0;
        }
        if (gethostname(host, sizeof host) < 0)
                host[0] = '\0';
        host[sizeof host - 1] = '\0';
        if (haven_json_add(o, "hostname", haven_json_string_or_null(
                                                  host[0] ? host : NULL)) < 0)
                return -ENOMEM;
        httpd_reply_json(r, 200, TAKE_PTR(o));
        return 0;
}
