/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The virtual switches on this node (see vmd-net.h): the plan from the
 * networks rows (pure), and making the kernel's links match it through
 * libnl-route. Must not: make an interface that carries an address a
 * bridge port, change an uplink's MTU, or delete a link it does not name.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/vlan.h>

#include "haven/log.h"
#include "haven/macro.h"

#include "vmd-net.h"
#include "vmd-xml.h"

struct vmd_net {
        struct nl_sock *sock;
        struct nl_cache *links;
};

/* ==== The plan ==== */

/* A Linux interface name: 1..IFNAMSIZ-1 characters, no '/', ':' or
 * white space, not "." or "..". */
static bool ifname_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n >= IFNAMSIZ || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (*p == '/' || *p == ':' || *p <= ' ' || *p == 0x7f)
                        return false;
        return true;
}

static void plan_one(struct json_object *row, struct vmd_switch *s) {
        struct json_object *uplinks = NULL, *v;
        const char *name = NULL, *uplink;
        int64_t vlan = 0, mtu = 1500;

        if (json_object_object_get_ex(row, "name", &v))
                name = json_object_get_string(v);
        snprintf(s->name, sizeof(s->name), "%s", name ?: "");
        if (json_object_object_get_ex(row, "vlan_id", &v) && json_object_is_type(v, json_type_int))
                vlan = json_object_get_int64(v);
        if (json_object_object_get_ex(row, "mtu", &v) && json_object_is_type(v, json_type_int))
                mtu = json_object_get_int64(v);
        s->mtu = mtu >= 576 && mtu <= 9000 ? (unsigned) mtu : 1500;
        s->vlan = vlan >= 1 && vlan <= 4094 ? (unsigned) vlan : 0;
        if (!name || vm_bridge_name(name, s->bridge) < 0) {
                snprintf(s->error, sizeof(s->error), "the name \"%s\" cannot name a bridge", s->name);
                return;
        }
        (void) json_object_object_get_ex(row, "uplinks", &uplinks);
        if (uplinks && json_object_is_type(uplinks, json_type_array) &&
            json_object_array_length(uplinks) > 1) {
                snprintf(s->error, sizeof(s->error),
                         "%zu uplinks: bonding a VM switch's uplinks is not applied on the nodes; give it one uplink",
                         json_object_array_length(uplinks));
                return;
        }
        uplink = uplinks && json_object_array_length(uplinks) == 1
                         ? json_object_get_string(json_object_array_get_idx(uplinks, 0))
                         : NULL;
        if (!uplink) {
                if (s->vlan)
                        snprintf(s->error, sizeof(s->error), "a VLAN needs an uplink to tag on");
                return;
        }
        if (!ifname_is_valid(uplink)) {
                snprintf(s->error, sizeof(s->error), "\"%.40s\" is not an interface name", uplink);
                return;
        }
        snprintf(s->uplink, sizeof(s->uplink), "%s", uplink);
        if (!s->vlan) {
                snprintf(s->port, sizeof(s->port), "%s", uplink);
                return;
        }
        if (strlen(uplink) + 1 + snprintf(NULL, 0, "%u", s->vlan) >= IFNAMSIZ) {
                snprintf(s->error, sizeof(s->error), "%s.%u is too long for an interface name",
                         uplink, s->vlan);
                return;
        }
        snprintf(s->port, sizeof(s->port), "%s.%u", uplink, s->vlan);
}

int vmd_switches_from_rows(struct json_object *networks, struct vmd_switch **ret, size_t *ret_n) {
        _cleanup_free_ struct vmd_switch *s = NULL;
        size_t n = 0, total;

        *ret = NULL;
        *ret_n = 0;
        if (!networks || !json_object_is_type(networks, json_type_array))
                return 0;
        total = json_object_array_length(networks);
        if (total == 0)
                return 0;
        s = calloc(total, sizeof(*s));
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < total; i++) {
                struct json_object *row = json_object_array_get_idx(networks, i), *v;

                if (json_object_object_get_ex(row, "name", &v) &&
                    streq(json_object_get_string(v) ?: "", VMD_INTERCONNECT_NETWORK))
                        continue;
                plan_one(row, &s[n++]);
        }
        if (n == 0)
                return 0;
        *ret = TAKE_PTR(s);
        *ret_n = n;
        return 0;
}

const struct vmd_switch *vmd_switch_by_bridge(const struct vmd_switch *s, size_t n,
                                              const char *bridge) {
        for (size_t i = 0; i < n; i++)
                if (streq(s[i].bridge, bridge))
                        return &s[i];
        return NULL;
}

/* ==== The kernel ==== */

int vmd_net_new(struct vmd_net **ret) {
        _cleanup_free_ struct vmd_net *n = calloc(1, sizeof(*n));
        int r;

        if (!n)
                return -ENOMEM;
        n->sock = nl_socket_alloc();
        if (!n->sock)
                return -ENOMEM;
        r = nl_connect(n->sock, NETLINK_ROUTE);
        if (r >= 0)
                r = rtnl_link_alloc_cache(n->sock, AF_UNSPEC, &n->links);
        if (r < 0) {
                log_warning("Cannot talk to the kernel's netlink: %s", nl_geterror(r));
                nl_socket_free(n->sock);
                return -EIO;
        }
        *ret = TAKE_PTR(n);
        return 0;
}

struct vmd_net *vmd_net_free(struct vmd_net *n) {
        if (!n)
                return NULL;
        if (n->links)
                nl_cache_free(n->links);
        nl_socket_free(n->sock);
        free(n);
        return NULL;
}

static struct rtnl_link *link_by_name(struct vmd_net *n, const char *name) {
        return rtnl_link_get_by_name(n->links, name);
}

static const char *kind_of(struct rtnl_link *l) {
        return rtnl_link_get_type(l) ?: "";
}

/* A bridge port a VM is plugged in through (libvirt's tap device). */
static bool is_vm_port(struct rtnl_link *l) {
        return streq(kind_of(l), "tun") || strncmp(rtnl_link_get_name(l), "vnet", 4) == 0;
}

/* The first address the interface carries (IPv6 link-local ones aside)
 * into buf; false if none. */
static bool carries_address(const char *ifname, char *buf, size_t size) {
        struct ifaddrs *list = NULL;
        bool found = false;

        if (getifaddrs(&list) < 0)
                return false;
        for (struct ifaddrs *x = list; x && !found; x = x->ifa_next) {
                if (!x->ifa_addr || !x->ifa_name || !streq(x->ifa_name, ifname))
                        continue;
                if (x->ifa_addr->sa_family == AF_INET) {
                        found = true;
                        (void) inet_ntop(AF_INET, &((struct sockaddr_in *) x->ifa_addr)->sin_addr, buf,
                                         (socklen_t) size);
                } else if (x->ifa_addr->sa_family == AF_INET6) {
                        const struct in6_addr *a = &((struct sockaddr_in6 *) x->ifa_addr)->sin6_addr;

                        if (IN6_IS_ADDR_LINKLOCAL(a))
                                continue;
                        found = true;
                        (void) inet_ntop(AF_INET6, a, buf, (socklen_t) size);
                }
        }
        freeifaddrs(list);
        return found;
}

/* Sets the MTU and/or brings the link up; counts a change. */
static int link_update(struct vmd_net *n, struct rtnl_link *l, unsigned mtu, int *changes) {
        struct rtnl_link *want;
        bool up = rtnl_link_get_flags(l) & IFF_UP;
        int r;

        if (up && (mtu == 0 || rtnl_link_get_mtu(l) == mtu))
                return 0;
        want = rtnl_link_alloc();
        if (!want)
                return -NLE_NOMEM;
        if (mtu)
                rtnl_link_set_mtu(want, mtu);
        rtnl_link_set_flags(want, IFF_UP);
        r = rtnl_link_change(n->sock, l, want, 0);
        rtnl_link_put(want);
        if (r >= 0)
                (*changes)++;
        return r;
}

static int refill(struct vmd_net *n) {
        return nl_cache_refill(n->sock, n->links);
}

/* Adds the link make describes (named name; put here), counts the change
 * and returns the made link from the refilled cache; NULL with s->error
 * ("cannot make WHAT NAME: ...") when the kernel refuses. */
static struct rtnl_link *link_make(struct vmd_net *n, struct vmd_switch *s, struct rtnl_link *make,
                                   const char *what, const char *name, int *changes) {
        int r = rtnl_link_add(n->sock, make, NLM_F_CREATE | NLM_F_EXCL);
        struct rtnl_link *l;

        rtnl_link_put(make);
        if (r >= 0)
                r = refill(n);
        if (r < 0) {
                snprintf(s->error, sizeof(s->error), "cannot make %s %s: %s", what, name, nl_geterror(r));
                return NULL;
        }
        (*changes)++;
        log_info("switch '%s': made %s %s", s->name, what, name);
        l = link_by_name(n, name);
        if (!l)
                snprintf(s->error, sizeof(s->error), "%s %s vanished", what, name);
        return l;
}

/* The VLAN link s->port on s->uplink, made if missing. */
static struct rtnl_link *vlan_port(struct vmd_net *n, struct vmd_switch *s, struct rtnl_link *uplink,
                                   int *changes) {
        struct rtnl_link *l = link_by_name(n, s->port), *make;

        if (l) {
                if (!rtnl_link_is_vlan(l) || rtnl_link_vlan_get_id(l) != (int) s->vlan ||
                    rtnl_link_get_link(l) != rtnl_link_get_ifindex(uplink)) {
                        snprintf(s->error, sizeof(s->error),
                                 "%s exists and is not VLAN %u on %s", s->port, s->vlan, s->uplink);
                        rtnl_link_put(l);
                        return NULL;
                }
                return l;
        }
        make = rtnl_link_vlan_alloc();
        if (!make) {
                snprintf(s->error, sizeof(s->error), "out of memory");
                return NULL;
        }
        rtnl_link_set_name(make, s->port);
        rtnl_link_set_link(make, rtnl_link_get_ifindex(uplink));
        rtnl_link_set_mtu(make, s->mtu);
        (void) rtnl_link_vlan_set_id(make, (uint16_t) s->vlan);
        return link_make(n, s, make, "the VLAN link", s->port, changes);
}

/* The port as it should be plugged into the bridge (NULL: not made
 * yet), checked; NULL with s->error when it cannot be (or with no error:
 * no port). */
static struct rtnl_link *port_of(struct vmd_net *n, struct vmd_switch *s, struct rtnl_link *bridge,
                                 int *changes) {
        struct rtnl_link *uplink, *port;
        char address[INET6_ADDRSTRLEN];

        if (!s->port[0])
                return NULL;
        uplink = link_by_name(n, s->uplink);
        if (!uplink) {
                snprintf(s->error, sizeof(s->error), "this node has no interface %s", s->uplink);
                return NULL;
        }
        if (rtnl_link_get_mtu(uplink) < s->mtu) {
                snprintf(s->error, sizeof(s->error),
                         "%s has MTU %u, the switch wants %u (the uplink's MTU is not changed here)",
                         s->uplink, rtnl_link_get_mtu(uplink), s->mtu);
                rtnl_link_put(uplink);
                return NULL;
        }
        if (s->vlan) {
                port = vlan_port(n, s, uplink, changes);
                rtnl_link_put(uplink);
                return port;
        }
        port = uplink;
        if (bridge && rtnl_link_get_master(port) == rtnl_link_get_ifindex(bridge))
                return port;
        if (carries_address(s->uplink, address, sizeof(address))) {
                snprintf(s->error, sizeof(s->error),
                         "%s carries %s: as a bridge port it would lose it; give the switch a VLAN or another interface",
                         s->uplink, address);
                rtnl_link_put(port);
                return NULL;
        }
        if (rtnl_link_get_master(port) > 0) {
                struct rtnl_link *m = rtnl_link_get(n->links, rtnl_link_get_master(port));

                snprintf(s->error, sizeof(s->error), "%s belongs to %s already", s->uplink,
                         m ? rtnl_link_get_name(m) : "another interface");
                if (m)
                        rtnl_link_put(m);
                rtnl_link_put(port);
                return NULL;
        }
        return port;
}

static void apply_one(struct vmd_net *n, struct vmd_switch *s, int *changes) {
        struct rtnl_link *bridge = link_by_name(n, s->bridge), *port = NULL;
        struct nl_object *o;
        int r;

        if (bridge && !rtnl_link_is_bridge(bridge)) {
                snprintf(s->error, sizeof(s->error), "%s exists and is not a bridge", s->bridge);
                goto out;
        }
        /* The port first: a switch that cannot have its port gets no
         * bridge either (a VM plugged in would be cut off unseen). */
        port = port_of(n, s, bridge, changes);
        if (s->error[0])
                goto out;
        if (!bridge) {
                struct rtnl_link *make = rtnl_link_bridge_alloc();

                if (!make) {
                        snprintf(s->error, sizeof(s->error), "out of memory");
                        goto out;
                }
                rtnl_link_set_name(make, s->bridge);
                rtnl_link_set_mtu(make, s->mtu);
                bridge = link_make(n, s, make, "the bridge", s->bridge, changes);
                if (!bridge)
                        goto out;
        }
        /* Ports that no longer belong (the uplink or VLAN changed). */
        for (o = nl_cache_get_first(n->links); o; o = nl_cache_get_next(o)) {
                struct rtnl_link *l = (struct rtnl_link *) o;

                if (rtnl_link_get_master(l) != rtnl_link_get_ifindex(bridge) || is_vm_port(l) ||
                    (port && rtnl_link_get_ifindex(l) == rtnl_link_get_ifindex(port)))
                        continue;
                r = rtnl_link_release_ifindex(n->sock, rtnl_link_get_ifindex(l));
                if (r < 0) {
                        snprintf(s->error, sizeof(s->error), "cannot unplug %s: %s",
                                 rtnl_link_get_name(l), nl_geterror(r));
                        goto out;
                }
                (*changes)++;
                log_info("switch '%s': unplugged %s", s->name, rtnl_link_get_name(l));
                if (rtnl_link_is_vlan(l) && strchr(rtnl_link_get_name(l), '.') &&
                    rtnl_link_delete(n->sock, l) >= 0)
                        log_info("switch '%s': deleted the VLAN link %s", s->name, rtnl_link_get_name(l));
        }
        if (port) {
                if (s->vlan && rtnl_link_get_mtu(port) != s->mtu) {
                        r = link_update(n, port, s->mtu, changes);
                        if (r < 0) {
                                snprintf(s->error, sizeof(s->error), "cannot set %s's MTU: %s", s->port,
                                         nl_geterror(r));
                                goto out;
                        }
                }
                if (rtnl_link_get_master(port) != rtnl_link_get_ifindex(bridge)) {
                        r = rtnl_link_enslave_ifindex(n->sock, rtnl_link_get_ifindex(bridge),
                                                      rtnl_link_get_ifindex(port));
                        if (r < 0) {
                                snprintf(s->error, sizeof(s->error), "cannot plug %s into %s: %s",
                                         s->port, s->bridge, nl_geterror(r));
                                goto out;
                        }
                        (*changes)++;
                        log_info("switch '%s': plugged %s into %s", s->name, s->port, s->bridge);
                }
                r = link_update(n, port, 0, changes);
                if (r < 0) {
                        snprintf(s->error, sizeof(s->error), "cannot bring %s up: %s", s->port,
                                 nl_geterror(r));
                        goto out;
                }
        }
        r = link_update(n, bridge, s->mtu, changes);
        if (r < 0)
                snprintf(s->error, sizeof(s->error), "cannot set up %s: %s", s->bridge, nl_geterror(r));
out:
        if (port)
                rtnl_link_put(port);
        if (bridge)
                rtnl_link_put(bridge);
}

/* A bridge this module names: hv-NAME or hvh-HEX. */
static bool our_bridge(struct rtnl_link *l) {
        const char *name = rtnl_link_get_name(l);

        return rtnl_link_is_bridge(l) && (strncmp(name, "hv-", 3) == 0 || strncmp(name, "hvh-", 4) == 0);
}

/* Deletes the bridges of switches that are gone, with the VLAN links
 * plugged into them; a bridge a VM is plugged into stays. */
static void remove_gone(struct vmd_net *n, const struct vmd_switch *s, size_t count, int *changes) {
        struct nl_object *o;
        int gone[64];
        size_t n_gone = 0;

        for (o = nl_cache_get_first(n->links); o && n_gone < ELEMENTSOF(gone); o = nl_cache_get_next(o)) {
                struct rtnl_link *l = (struct rtnl_link *) o;

                if (our_bridge(l) && !vmd_switch_by_bridge(s, count, rtnl_link_get_name(l)))
                        gone[n_gone++] = rtnl_link_get_ifindex(l);
        }
        for (size_t i = 0; i < n_gone; i++) {
                struct rtnl_link *bridge = rtnl_link_get(n->links, gone[i]);
                bool used = false;

                if (!bridge)
                        continue;
                for (o = nl_cache_get_first(n->links); o; o = nl_cache_get_next(o)) {
                        struct rtnl_link *l = (struct rtnl_link *) o;

                        if (rtnl_link_get_master(l) == gone[i] && is_vm_port(l))
                                used = true;
                }
                if (used) {
                        log_notice("The bridge %s belongs to no switch now but a VM is plugged in: kept",
                                   rtnl_link_get_name(bridge));
                        rtnl_link_put(bridge);
                        continue;
                }
                for (o = nl_cache_get_first(n->links); o; o = nl_cache_get_next(o)) {
                        struct rtnl_link *l = (struct rtnl_link *) o;

                        if (rtnl_link_get_master(l) != gone[i])
                                continue;
                        if (rtnl_link_is_vlan(l) && strchr(rtnl_link_get_name(l), '.'))
                                (void) rtnl_link_delete(n->sock, l);
                        else
                                (void) rtnl_link_release_ifindex(n->sock, rtnl_link_get_ifindex(l));
                }
                if (rtnl_link_delete(n->sock, bridge) >= 0) {
                        (*changes)++;
                        log_info("Deleted the bridge %s: its switch is gone", rtnl_link_get_name(bridge));
                }
                rtnl_link_put(bridge);
        }
}

int vmd_net_apply(struct vmd_net *n, struct vmd_switch *s, size_t count) {
        int changes = 0, r;

        r = refill(n);
        if (r < 0) {
                log_warning("Cannot read the node's interfaces: %s", nl_geterror(r));
                return -EIO;
        }
        for (size_t i = 0; i < count; i++) {
                if (s[i].error[0])
                        continue;
                apply_one(n, &s[i], &changes);
                if (changes > 0 && refill(n) < 0)
                        return -EIO;
        }
        remove_gone(n, s, count, &changes);
        return changes;
}
