/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The virtual switches on this node: every network but the interconnect
 * becomes a Linux bridge (vm_bridge_name) whose port is the switch's uplink,
 * or a VLAN link on it ("eth1.100"), so that the VMs' NICs have something
 * to plug into, on every node, before a VM starts or arrives.
 * Safety: an uplink that carries an address is never made a bridge port
 * (the address would stop working: the interconnect, the web UI); the
 * uplink's own MTU is never changed; only links this module names (bridges
 * hv-* / hvh-*, VLAN links NAME.VLAN it made) are ever deleted, and a
 * bridge a VM is still plugged into is kept.
 * Must not: touch the interconnect's interfaces beyond adding a VLAN link
 * on them, or block (netlink calls on this node's kernel only).
 */
#pragma once

#include <json-c/json.h>
#include <net/if.h>
#include <stddef.h>

#define VMD_INTERCONNECT_NETWORK "interconnect"

/* One virtual switch as this node should have it. */
struct vmd_switch {
        char name[64];          /* networks.name */
        char bridge[IFNAMSIZ];  /* vm_bridge_name(name) */
        char uplink[IFNAMSIZ];  /* "": a switch without uplink (VMs on this node only) */
        unsigned vlan;          /* 0: untagged */
        unsigned mtu;
        char port[IFNAMSIZ];    /* the bridge's port: uplink, "uplink.vlan" or "" */
        char error[256];        /* why this node cannot have it as asked; "" if it has */
};

/* The switches of the networks rows (the interconnect left out), with
 * what cannot be applied in each one's error (several uplinks: bonding is
 * not applied; a VLAN without uplink; names that do not fit). Pure.
 * *ret: calloc'ed array (free()), NULL when n is 0. */
int vmd_switches_from_rows(struct json_object *networks, struct vmd_switch **ret, size_t *ret_n);

/* The switch whose bridge is bridge, or NULL. */
const struct vmd_switch *vmd_switch_by_bridge(const struct vmd_switch *s, size_t n,
                                              const char *bridge);

struct vmd_net;

/* A netlink connection to this node's kernel. */
int vmd_net_new(struct vmd_net **ret);
struct vmd_net *vmd_net_free(struct vmd_net *n);

/* Makes this node's links match s[0..n): creates and updates bridges and
 * VLAN links, plugs the ports in, unplugs ports that no longer belong,
 * deletes the bridges of switches that are gone (unless a VM is plugged
 * in). A switch that cannot be had gets its error (the others are still
 * made). Returns the number of links changed, or -errno when the kernel
 * could not be asked at all. */
int vmd_net_apply(struct vmd_net *net, struct vmd_switch *s, size_t n);
