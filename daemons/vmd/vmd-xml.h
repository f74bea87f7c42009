/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VM model → libvirt domain XML: struct vm_spec (what a node agent needs
 * to run one VM: name, identity, vCPUs, memory, disks, NICs on virtual
 * switches, CD-ROMs) and the one function that turns it into domain XML with
 * libxml2's tree API, so every name and path is escaped by the library.
 * Also the naming rules the rest of Haven shares: the VM's UUID, the virtual
 * switch's bridge name, the disk format from a file name, KVM or TCG.
 * Must not: talk to libvirt, read the domain database, or log above debug.
 */
#pragma once

#include <net/if.h>

#include "haven/macro.h"

/* Hard limits on a spec (what the XML may hold). */
#define VM_NAME_MAX 63
#define VM_VCPUS_MIN 1u
#define VM_VCPUS_MAX 64u
#define VM_MEMORY_MIB_MIN 16u
#define VM_MEMORY_MIB_MAX 4194304u
#define VM_DISKS_MAX 64u
#define VM_NICS_MAX 32u
#define VM_CDROMS_MAX 4u
#define VM_BOOT_ORDER_MAX 128u
/* A disk or ISO path, in bytes (PATH_MAX less the NUL). */
#define VM_PATH_MAX 4095u
/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" and the NUL. */
#define VM_UUID_STRING_MAX 37u

/* The namespace of Haven's <metadata> element in a domain's XML:
 * <haven:vm xmlns:haven="VM_XML_METADATA_URI" id="VM ID"/>. A domain that
 * carries it was started by a Haven node agent. */
#define VM_XML_METADATA_URI "https://haven.invalid/xmlns/libvirt/vm/1"
#define VM_XML_METADATA_PREFIX "haven"

/* ==== The model ==== */

enum vm_domain_type {
        VM_DOMAIN_TYPE_QEMU, /* TCG: pure emulation, works anywhere (the lab) */
        VM_DOMAIN_TYPE_KVM,  /* hardware virtualization through /dev/kvm */
        _VM_DOMAIN_TYPE_MAX,
        _VM_DOMAIN_TYPE_INVALID = -EINVAL,
};

enum vm_disk_format {
        VM_DISK_FORMAT_RAW,
        VM_DISK_FORMAT_QCOW2,
        _VM_DISK_FORMAT_MAX,
        _VM_DISK_FORMAT_INVALID = -EINVAL,
};

/* The schema's vm_disks.bus values. */
enum vm_disk_bus {
        VM_DISK_BUS_VIRTIO,
        VM_DISK_BUS_SATA,
        VM_DISK_BUS_SCSI, /* on a virtio-scsi controller */
        VM_DISK_BUS_IDE,  /* only the i440fx machine has IDE: see vm_spec */
        _VM_DISK_BUS_MAX,
        _VM_DISK_BUS_INVALID = -EINVAL,
};

/* Host page cache use. NONE (O_DIRECT) is the default and what live
 * migration between nodes needs: no node keeps stale pages of a disk that
 * another node writes. WRITEBACK is for file systems without O_DIRECT
 * (tmpfs) and is never safe to migrate. */
enum vm_disk_cache {
        VM_DISK_CACHE_NONE,
        VM_DISK_CACHE_WRITEBACK,
        _VM_DISK_CACHE_MAX,
        _VM_DISK_CACHE_INVALID = -EINVAL,
};

/* The schema's vm_nics.model values. */
enum vm_nic_model {
        VM_NIC_MODEL_VIRTIO,
        VM_NIC_MODEL_E1000,
        VM_NIC_MODEL_RTL8139,
        _VM_NIC_MODEL_MAX,
        _VM_NIC_MODEL_INVALID = -EINVAL,
};

struct vm_disk_spec {
        /* Absolute path of the image file on the shared directory, or of a
         * block device: a path under /dev/ becomes <disk type='block'>
         * (eSAN disks are DRBD devices), anything else <disk type='file'>. */
        const char *path;
        enum vm_disk_format format;
        enum vm_disk_bus bus;
        enum vm_disk_cache cache;
        unsigned boot_order; /* 1..VM_BOOT_ORDER_MAX; 0: not a boot device */
};

struct vm_nic_spec {
        const char *bridge; /* the virtual switch's bridge (vm_bridge_name) */
        const char *mac;    /* lowercase "52:54:00:12:34:56"; NULL: libvirt
                             * picks one (a new one at every start) */
        enum vm_nic_model model;
};

struct vm_cdrom_spec {
        const char *iso_path; /* absolute; NULL or "": an empty drive */
        unsigned boot_order;  /* as for disks */
};

/* One VM as a node agent runs it. Strings are borrowed. */
struct vm_spec {
        const char *name; /* the VM's name (the name rule of docs/schema.md),
                           * also the libvirt domain's name */
        const char *uuid; /* the domain's UUID (vm_uuid()), any case */
        int64_t vm_id;    /* vms.id, > 0: written into Haven's <metadata> */
        enum vm_domain_type type;
        unsigned vcpus;      /* VM_VCPUS_MIN..VM_VCPUS_MAX */
        uint64_t memory_mib; /* VM_MEMORY_MIB_MIN..VM_MEMORY_MIB_MAX */
        const struct vm_disk_spec *disks;
        size_t n_disks; /* 0..VM_DISKS_MAX (a diskless VM boots its ISO) */
        const struct vm_nic_spec *nics;
        size_t n_nics; /* 0..VM_NICS_MAX */
        const struct vm_cdrom_spec *cdroms;
        size_t n_cdroms; /* 0..VM_CDROMS_MAX */
};

/* ==== Enums as text ==== */

/* "qemu", "kvm" (libvirt's <domain type>); NULL if out of range. */
const char *vm_domain_type_to_string(enum vm_domain_type t);
enum vm_domain_type vm_domain_type_from_string(const char *s);
/* "raw", "qcow2". */
const char *vm_disk_format_to_string(enum vm_disk_format f);
enum vm_disk_format vm_disk_format_from_string(const char *s);
/* "virtio", "sata", "scsi", "ide" (as in vm_disks.bus). */
const char *vm_disk_bus_to_string(enum vm_disk_bus b);
enum vm_disk_bus vm_disk_bus_from_string(const char *s);
/* "none", "writeback". */
const char *vm_disk_cache_to_string(enum vm_disk_cache c);
enum vm_disk_cache vm_disk_cache_from_string(const char *s);
/* "virtio", "e1000", "rtl8139" (as in vm_nics.model). */
const char *vm_nic_model_to_string(enum vm_nic_model m);
enum vm_nic_model vm_nic_model_from_string(const char *s);

/* ==== Naming rules ==== */

/* The name rule of docs/schema.md: 1 to 63 of [A-Za-z0-9._-], starting
 * with a letter or a digit. NULL is not valid. */
bool vm_name_is_valid(const char *name);

/* The domain UUID of VM vm_id (> 0) in the cluster whose cluster.uuid is
 * cluster_uuid: a name-based UUID (RFC 4122 version 5, SHA-1) in the
 * cluster's UUID as namespace over the text "vm/<vm_id>". Stable for the
 * VM's life (a rename keeps it), different in every cluster, the same on
 * every node, stored nowhere. Writes the lowercase text form to ret.
 * Returns 0, or -EINVAL for a cluster_uuid that is not a UUID or
 * vm_id <= 0. */
int vm_uuid(const char *cluster_uuid, int64_t vm_id,
            char ret[static VM_UUID_STRING_MAX]);

/* The Linux bridge that carries the virtual switch (networks.name)
 * network: "hv-" + the name when that fits an interface name (names of at
 * most 12 characters), otherwise "hvh-" + the first 11 hex digits of the
 * name's SHA-1 (the third character tells the two forms apart, so they
 * never collide). Returns 0, or -EINVAL for a name that breaks the name
 * rule. The code that creates the bridges must use this function too. */
int vm_bridge_name(const char *network, char ret[static IFNAMSIZ]);

/* The format a disk image file most likely has, from its name: ".qcow2"
 * (any case) is QCOW2, anything else (".img", ".raw", a block device) RAW.
 * Never reads the file: probing a guest-writable image's content is how a
 * raw image becomes a qcow2 pointing at the host's files. */
enum vm_disk_format vm_disk_format_from_path(const char *path);

/* KVM when kvm_device (NULL: "/dev/kvm") opens read-write, QEMU (TCG)
 * otherwise. */
enum vm_domain_type vm_domain_type_detect(const char *kvm_device);

/* ==== The domain XML ==== */

/* Writes spec as libvirt domain XML for a transient domain that Haven
 * starts with virDomainCreateXML:
 * - <domain type> from spec->type; machine "q35" (pc-q35-7.2 on Debian 12's
 *   QEMU), or "pc" (i440fx) when a disk uses the IDE bus, since q35 has no
 *   IDE controller; CD-ROMs are on SATA (q35) or IDE (pc);
 * - ACPI and APIC (ACPI shutdown and reboot need them), UTC clock, the
 *   hypervisor's default CPU model (migratable between any two nodes);
 * - <on_poweroff>destroy, <on_reboot>restart, <on_crash>destroy: a guest
 *   that stops stays stopped, and the agent decides what happens next;
 * - disks with cache and boot order, targets vdX (virtio), sdX (SATA, SCSI,
 *   CD-ROMs on q35) and hdX (IDE, CD-ROMs on pc) in spec order; a
 *   virtio-scsi controller when a disk uses SCSI;
 * - NICs as <interface type='bridge'> on the bridge, with MAC and model;
 * - VNC on 127.0.0.1 with an automatic port, a USB tablet, a serial
 *   console on a pty, a pvpanic device (a guest panic is a crash, not a
 *   hang);
 * - Haven's <metadata> with spec->vm_id.
 * Returns 0 and *ret_xml (NUL-terminated, owned by the caller: free()), or
 * -EINVAL when the spec breaks a rule: name (vm_name_is_valid), UUID, vm_id
 * <= 0, type, vCPUs or memory out of range, too many disks, NICs or
 * CD-ROMs, a NULL array with a count, a path that is not absolute, longer
 * than VM_PATH_MAX, not valid UTF-8 or holding a control character (line
 * breaks included), an enum out of range, a bridge that is not an
 * interface name, a MAC that is not lowercase unicast
 * "xx:xx:xx:xx:xx:xx", a boot order out of range or used twice, more than
 * four IDE devices; -ENOMEM. Characters that XML treats specially (< > &
 * ' ") in paths are escaped, never refused. */
int vm_domain_xml(const struct vm_spec *spec, char **ret_xml);
