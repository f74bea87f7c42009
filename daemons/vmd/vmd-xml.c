/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VM model → libvirt domain XML (see vmd-xml.h): validation of a
 * struct vm_spec, the document built with libxml2's tree API (the library
 * escapes every value), and the shared naming rules (UUID, bridge, format).
 * Owns nothing beyond the string it returns.
 * Must not: build XML by string concatenation, read an image's content,
 * talk to libvirt, or log above debug.
 */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <uuid/uuid.h>

#include "haven/text.h"

#include "vmd-xml.h"

#define IDE_DEVICES_MAX 4u /* two buses, master and slave, on the i440fx */
#define MAC_STRING_LENGTH 17u

DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDoc *, xmlFreeDoc)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlBuffer *, xmlBufferFree)

/* ==== Enums as text ==== */

static const char *const domain_type_table[_VM_DOMAIN_TYPE_MAX] = {
        [VM_DOMAIN_TYPE_QEMU] = "qemu",
        [VM_DOMAIN_TYPE_KVM] = "kvm",
};

static const char *const disk_format_table[_VM_DISK_FORMAT_MAX] = {
        [VM_DISK_FORMAT_RAW] = "raw",
        [VM_DISK_FORMAT_QCOW2] = "qcow2",
};

static const char *const disk_bus_table[_VM_DISK_BUS_MAX] = {
        [VM_DISK_BUS_VIRTIO] = "virtio",
        [VM_DISK_BUS_SATA] = "sata",
        [VM_DISK_BUS_SCSI] = "scsi",
        [VM_DISK_BUS_IDE] = "ide",
};

static const char *const disk_cache_table[_VM_DISK_CACHE_MAX] = {
        [VM_DISK_CACHE_NONE] = "none",
        [VM_DISK_CACHE_WRITEBACK] = "writeback",
};

static const char *const nic_model_table[_VM_NIC_MODEL_MAX] = {
        [VM_NIC_MODEL_VIRTIO] = "virtio",
        [VM_NIC_MODEL_E1000] = "e1000",
        [VM_NIC_MODEL_RTL8139] = "rtl8139",
};

static const char *table_to_string(const char *const *table, size_t n, int i) {
        return i >= 0 && (size_t) i < n ? table[i] : NULL;
}

static int table_from_string(const char *const *table, size_t n,
                             const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

#define DEFINE_STRING_TABLE(name, type, table)                                 \
        const char *name##_to_string(type v) {                                 \
                return table_to_string(table, ELEMENTSOF(table), (int) v);     \
        }                                                                      \
        type name##_from_string(const char *s) {                               \
                return (type) table_from_string(table, ELEMENTSOF(table), s);  \
        }

DEFINE_STRING_TABLE(vm_domain_type, enum vm_domain_type, domain_type_table)
DEFINE_STRING_TABLE(vm_disk_format, enum vm_disk_format, disk_format_table)
DEFINE_STRING_TABLE(vm_disk_bus, enum vm_disk_bus, disk_bus_table)
DEFINE_STRING_TABLE(vm_disk_cache, enum vm_disk_cache, disk_cache_table)
DEFINE_STRING_TABLE(vm_nic_model, enum vm_nic_model, nic_model_table)

/* ==== Naming rules ==== */

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9');
}

static bool is_lower_hex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool vm_name_is_valid(const char *name) {
        size_t n = 0;

        if (!name || !is_alnum(name[0]))
                return false;
        for (const char *p = name; *p; p++, n++)
                if (!is_alnum(*p) && *p != '.' && *p != '_' && *p != '-')
                        return false;
        return n <= VM_NAME_MAX;
}

int vm_uuid(const char *cluster_uuid, int64_t vm_id,
            char ret[static VM_UUID_STRING_MAX]) {
        uuid_t namespace, out;
        char name[32];
        int n;

        assert(ret);

        if (!cluster_uuid || vm_id <= 0)
                return -EINVAL;
        /* uuid_parse() also takes the textual form only, 36 characters. */
        if (strlen(cluster_uuid) != VM_UUID_STRING_MAX - 1 ||
            uuid_parse(cluster_uuid, namespace) < 0)
                return -EINVAL;
        n = snprintf(name, sizeof(name), "vm/%" PRId64, vm_id);
        assert(n > 0 && (size_t) n < sizeof(name));
        uuid_generate_sha1(out, namespace, name, (size_t) n);
        uuid_unparse_lower(out, ret);
        return 0;
}

int vm_bridge_name(const char *network, char ret[static IFNAMSIZ]) {
        static const char hex[] = "0123456789abcdef";
        uint8_t digest[20];
        size_t n;

        assert(ret);

        if (!vm_name_is_valid(network))
                return -EINVAL;
        n = strlen(network);
        if (strlen("hv-") + n < IFNAMSIZ) {
                (void) snprintf(ret, IFNAMSIZ, "hv-%s", network);
                return 0;
        }
        if (gnutls_hash_fast(GNUTLS_DIG_SHA1, network, n, digest) < 0)
                return -EIO;
        memcpy(ret, "hvh-", 4);
        for (size_t i = 0; i < IFNAMSIZ - 1 - 4; i++) {
                uint8_t byte = digest[i / 2];

                ret[4 + i] = hex[i % 2 == 0 ? byte >> 4 : byte & 0x0F];
        }
        ret[IFNAMSIZ - 1] = '\0';
        return 0;
}

enum vm_disk_format vm_disk_format_from_path(const char *path) {
        static const char suffix[] = ".qcow2";
        size_t n, m = strlen(suffix);

        if (!path)
                return VM_DISK_FORMAT_RAW;
        n = strlen(path);
        if (n > m && strcasecmp(path + n - m, suffix) == 0)
                return VM_DISK_FORMAT_QCOW2;
        return VM_DISK_FORMAT_RAW;
}

enum vm_domain_type vm_domain_type_detect(const char *kvm_device) {
        _cleanup_close_ int fd = -1;

        fd = open(kvm_device ?: "/dev/kvm", O_RDWR | O_CLOEXEC | O_NOCTTY);
        return fd >= 0 ? VM_DOMAIN_TYPE_KVM : VM_DOMAIN_TYPE_QEMU;
}

/* ==== Validation ==== */

/* An absolute path of at most VM_PATH_MAX bytes, valid UTF-8, without C0
 * controls or DEL (XML 1.0 cannot carry most of them, and a line break in
 * a path is never meant). */
static bool path_is_valid(const char *path) {
        const unsigned char *u = (const unsigned char *) path;
        size_t n;

        if (!path || path[0] != '/')
                return false;
        n = strnlen(path, VM_PATH_MAX + 1);
        if (n > VM_PATH_MAX)
                return false;
        for (size_t i = 0; i < n;) {
                size_t len = haven_utf8_sequence(u + i, n - i);

                if (len == 0 || (len == 1 && (u[i] < 0x20 || u[i] == 0x7F)))
                        return false;
                i += len;
        }
        return true;
}

/* What Linux accepts as an interface name, narrowed to the characters
 * bridge names use: 1 to IFNAMSIZ-1 of [A-Za-z0-9._-], not "." or "..". */
static bool bridge_is_valid(const char *bridge) {
        size_t n = 0;

        if (!bridge || streq(bridge, ".") || streq(bridge, ".."))
                return false;
        for (const char *p = bridge; *p; p++, n++)
                if (!is_alnum(*p) && *p != '.' && *p != '_' && *p != '-')
                        return false;
        return n >= 1 && n < IFNAMSIZ;
}

/* Lowercase "xx:xx:xx:xx:xx:xx", unicast (the first octet even), not all
 * zero: what libvirt accepts for a NIC. */
static bool mac_is_valid(const char *mac) {
        bool zero = true;

        if (!mac || strlen(mac) != MAC_STRING_LENGTH)
                return false;
        for (size_t i = 0; i < MAC_STRING_LENGTH; i++) {
                if (i % 3 == 2) {
                        if (mac[i] != ':')
                                return false;
                } else if (!is_lower_hex(mac[i]))
                        return false;
                else if (mac[i] != '0')
                        zero = false;
        }
        /* The second hex digit of the first octet holds the group bit. */
        if ((strchr("13579bdf", mac[1]) != NULL))
                return false;
        return !zero;
}

static bool boot_order_is_valid(unsigned order, bool used[]) {
        if (order == 0)
                return true;
        if (order > VM_BOOT_ORDER_MAX || used[order])
                return false;
        used[order] = true;
        return true;
}

static bool spec_uses_ide(const struct vm_spec *spec) {
        for (size_t i = 0; i < spec->n_disks; i++)
                if (spec->disks[i].bus == VM_DISK_BUS_IDE)
                        return true;
        return false;
}

/* Checks every rule vm_domain_xml() promises; -EINVAL for the first broken
 * one (the log at debug names it). */
static int spec_check(const struct vm_spec *spec) {
        bool used[VM_BOOT_ORDER_MAX + 1] = {};
        uuid_t uuid;
        size_t ide = 0;

        if (!vm_name_is_valid(spec->name))
                return -EINVAL;
        if (!spec->uuid || strlen(spec->uuid) != VM_UUID_STRING_MAX - 1 ||
            uuid_parse(spec->uuid, uuid) < 0)
                return -EINVAL;
        if (spec->vm_id <= 0 || !vm_domain_type_to_string(spec->type))
                return -EINVAL;
        if (spec->vcpus < VM_VCPUS_MIN || spec->vcpus > VM_VCPUS_MAX)
                return -EINVAL;
        if (spec->memory_mib < VM_MEMORY_MIB_MIN ||
            spec->memory_mib > VM_MEMORY_MIB_MAX)
                return -EINVAL;
        if (spec->n_disks > VM_DISKS_MAX || spec->n_nics > VM_NICS_MAX ||
            spec->n_cdroms > VM_CDROMS_MAX)
                return -EINVAL;
        if ((spec->n_disks > 0 && !spec->disks) ||
            (spec->n_nics > 0 && !spec->nics) ||
            (spec->n_cdroms > 0 && !spec->cdroms))
                return -EINVAL;

        for (size_t i = 0; i < spec->n_disks; i++) {
                const struct vm_disk_spec *d = &spec->disks[i];

                if (!path_is_valid(d->path) ||
                    !vm_disk_format_to_string(d->format) ||
                    !vm_disk_bus_to_string(d->bus) ||
                    !vm_disk_cache_to_string(d->cache) ||
                    !boot_order_is_valid(d->boot_order, used))
                        return -EINVAL;
                if (d->bus == VM_DISK_BUS_IDE)
                        ide++;
        }
        for (size_t i = 0; i < spec->n_cdroms; i++) {
                const struct vm_cdrom_spec *c = &spec->cdroms[i];

                if (c->iso_path && c->iso_path[0] &&
                    !path_is_valid(c->iso_path))
                        return -EINVAL;
                if (!boot_order_is_valid(c->boot_order, used))
                        return -EINVAL;
        }
        for (size_t i = 0; i < spec->n_nics; i++) {
                const struct vm_nic_spec *nic = &spec->nics[i];

                if (!bridge_is_valid(nic->bridge) ||
                    (nic->mac && !mac_is_valid(nic->mac)) ||
                    !vm_nic_model_to_string(nic->model))
                        return -EINVAL;
        }
        /* On the i440fx machine the CD-ROMs are IDE devices too. */
        if (ide > 0 && ide + spec->n_cdroms > IDE_DEVICES_MAX)
                return -EINVAL;
        return 0;
}

/* ==== The document ==== */

/* Builds a tree with a sticky error: once an allocation fails every later
 * call does nothing, and the caller checks b->failed once at the end. */
struct builder {
        bool failed;
};

/* A new element name under parent, with text content (escaped) if text is
 * not NULL. NULL after a failure (parent NULL included). */
static xmlNode *element(struct builder *b, xmlNode *parent, const char *name,
                        const char *text) {
        xmlNode *n;

        if (b->failed || !parent) {
                b->failed = true;
                return NULL;
        }
        n = xmlNewTextChild(parent, NULL, BAD_CAST name, BAD_CAST text);
        if (!n)
                b->failed = true;
        return n;
}

static void attribute(struct builder *b, xmlNode *n, const char *name,
                      const char *value) {
        if (b->failed || !n) {
                b->failed = true;
                return;
        }
        if (!xmlNewProp(n, BAD_CAST name, BAD_CAST value))
                b->failed = true;
}

_printf_(4, 5) static void attributef(struct builder *b, xmlNode *n,
                                      const char *name, const char *format,
                                      ...) {
        char value[64];
        va_list ap;
        int k;

        va_start(ap, format);
        k = vsnprintf(value, sizeof(value), format, ap);
        va_end(ap);
        assert(k > 0 && (size_t) k < sizeof(value));
        attribute(b, n, name, value);
}

/* An element with text formatted from a number. */
_printf_(4, 5) static xmlNode *elementf(struct builder *b, xmlNode *parent,
                                        const char *name, const char *format,
                                        ...) {
        char text[64];
        va_list ap;
        int k;

        va_start(ap, format);
        k = vsnprintf(text, sizeof(text), format, ap);
        va_end(ap);
        assert(k > 0 && (size_t) k < sizeof(text));
        return element(b, parent, name, text);
}

/* "vda", "vdz", "vdaa", ...: libvirt's names for the index-th device of a
 * prefix ("vd", "sd", "hd"), as a spreadsheet numbers its columns. */
static void target_name(const char *prefix, unsigned index, char *ret,
                        size_t size) {
        char letters[8];
        size_t k = sizeof(letters) - 1;
        long i = index;

        letters[k] = '\0';
        do {
                letters[--k] = (char) ('a' + i % 26);
                i = i / 26 - 1;
        } while (i >= 0 && k > 0);
        (void) snprintf(ret, size, "%s%s", prefix, letters + k);
}

/* Per-prefix counters for target names. */
struct targets {
        unsigned vd, sd, hd;
};

static const char *disk_prefix(enum vm_disk_bus bus, struct targets *t,
                               unsigned **ret_counter) {
        switch (bus) {
        case VM_DISK_BUS_VIRTIO:
                *ret_counter = &t->vd;
                return "vd";
        case VM_DISK_BUS_SATA:
        case VM_DISK_BUS_SCSI:
                *ret_counter = &t->sd;
                return "sd";
        case VM_DISK_BUS_IDE:
                *ret_counter = &t->hd;
                return "hd";
        default:
                assert_not_reached();
        }
}

static void add_target(struct builder *b, xmlNode *disk, enum vm_disk_bus bus,
                       struct targets *t) {
        unsigned *counter;
        const char *prefix = disk_prefix(bus, t, &counter);
        char dev[16];
        xmlNode *target;

        target_name(prefix, (*counter)++, dev, sizeof(dev));
        target = element(b, disk, "target", NULL);
        attribute(b, target, "dev", dev);
        attribute(b, target, "bus", vm_disk_bus_to_string(bus));
}

static void add_boot(struct builder *b, xmlNode *device, unsigned order) {
        if (order > 0)
                attributef(b, element(b, device, "boot", NULL), "order", "%u",
                           order);
}

static void add_disk(struct builder *b, xmlNode *devices,
                     const struct vm_disk_spec *d, struct targets *t) {
        bool block = strncmp(d->path, "/dev/", 5) == 0;
        xmlNode *disk, *driver, *source;

        disk = element(b, devices, "disk", NULL);
        attribute(b, disk, "type", block ? "block" : "file");
        attribute(b, disk, "device", "disk");
        driver = element(b, disk, "driver", NULL);
        attribute(b, driver, "name", "qemu");
        attribute(b, driver, "type", vm_disk_format_to_string(d->format));
        attribute(b, driver, "cache", vm_disk_cache_to_string(d->cache));
        source = element(b, disk, "source", NULL);
        attribute(b, source, block ? "dev" : "file", d->path);
        add_target(b, disk, d->bus, t);
        add_boot(b, disk, d->boot_order);
}

static void add_cdrom(struct builder *b, xmlNode *devices,
                      const struct vm_cdrom_spec *c, enum vm_disk_bus bus,
                      struct targets *t) {
        xmlNode *disk, *driver;

        disk = element(b, devices, "disk", NULL);
        attribute(b, disk, "type", "file");
        attribute(b, disk, "device", "cdrom");
        driver = element(b, disk, "driver", NULL);
        attribute(b, driver, "name", "qemu");
        attribute(b, driver, "type", "raw");
        /* No <source>: an empty tray, into which an ISO can be changed. */
        if (c->iso_path && c->iso_path[0])
                attribute(b, element(b, disk, "source", NULL), "file",
                          c->iso_path);
        add_target(b, disk, bus, t);
        element(b, disk, "readonly", NULL);
        add_boot(b, disk, c->boot_order);
}

static void add_nic(struct builder *b, xmlNode *devices,
                    const struct vm_nic_spec *nic) {
        xmlNode *interface;

        interface = element(b, devices, "interface", NULL);
        attribute(b, interface, "type", "bridge");
        if (nic->mac)
                attribute(b, element(b, interface, "mac", NULL), "address",
                          nic->mac);
        attribute(b, element(b, interface, "source", NULL), "bridge",
                  nic->bridge);
        attribute(b, element(b, interface, "model", NULL), "type",
                  vm_nic_model_to_string(nic->model));
}

static void add_metadata(struct builder *b, xmlNode *domain, int64_t vm_id) {
        xmlNode *vm;
        xmlNs *ns;

        vm = element(b, element(b, domain, "metadata", NULL), "vm", NULL);
        if (!vm)
                return;
        ns = xmlNewNs(vm, BAD_CAST VM_XML_METADATA_URI,
                      BAD_CAST VM_XML_METADATA_PREFIX);
        if (!ns) {
                b->failed = true;
                return;
        }
        xmlSetNs(vm, ns);
        attributef(b, vm, "id", "%" PRId64, vm_id);
}

static void add_devices(struct builder *b, xmlNode *domain,
                        const struct vm_spec *spec, bool i440fx) {
        enum vm_disk_bus cdrom_bus =
                i440fx ? VM_DISK_BUS_IDE : VM_DISK_BUS_SATA;
        struct targets t = {};
        xmlNode *devices, *n;
        bool scsi = false;

        devices = element(b, domain, "devices", NULL);
        for (size_t i = 0; i < spec->n_disks; i++)
                scsi = scsi || spec->disks[i].bus == VM_DISK_BUS_SCSI;
        if (scsi) {
                n = element(b, devices, "controller", NULL);
                attribute(b, n, "type", "scsi");
                attribute(b, n, "index", "0");
                attribute(b, n, "model", "virtio-scsi");
        }
        for (size_t i = 0; i < spec->n_disks; i++)
                add_disk(b, devices, &spec->disks[i], &t);
        for (size_t i = 0; i < spec->n_cdroms; i++)
                add_cdrom(b, devices, &spec->cdroms[i], cdrom_bus, &t);
        for (size_t i = 0; i < spec->n_nics; i++)
                add_nic(b, devices, &spec->nics[i]);

        n = element(b, devices, "serial", NULL);
        attribute(b, n, "type", "pty");
        attribute(b, element(b, n, "target", NULL), "port", "0");
        n = element(b, devices, "console", NULL);
        attribute(b, n, "type", "pty");
        n = element(b, n, "target", NULL);
        attribute(b, n, "type", "serial");
        attribute(b, n, "port", "0");

        n = element(b, devices, "input", NULL);
        attribute(b, n, "type", "tablet");
        attribute(b, n, "bus", "usb");

        /* Reachable from this node only: haven-httpd proxies it. */
        n = element(b, devices, "graphics", NULL);
        attribute(b, n, "type", "vnc");
        attribute(b, n, "autoport", "yes");
        n = element(b, n, "listen", NULL);
        attribute(b, n, "type", "address");
        attribute(b, n, "address", "127.0.0.1");

        /* A guest kernel panic reaches libvirt (CRASHED, then STOPPED with
         * reason crashed by on_crash) instead of hanging a running VM. */
        attribute(b, element(b, devices, "panic", NULL), "model", "isa");
}

/* The root element's text, without an XML declaration. */
static int serialize(xmlDoc *doc, char **ret_xml) {
        _cleanup_(xmlBufferFreep) xmlBuffer *buffer = NULL;
        xmlSaveCtxt *save;
        char *s;
        long r;

        buffer = xmlBufferCreate();
        if (!buffer)
                return -ENOMEM;
        save = xmlSaveToBuffer(buffer, "UTF-8",
                               XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
        if (!save)
                return -ENOMEM;
        r = xmlSaveDoc(save, doc);
        if (xmlSaveClose(save) < 0 || r < 0)
                return -ENOMEM;
        s = strdup((const char *) xmlBufferContent(buffer));
        if (!s)
                return -ENOMEM;
        *ret_xml = s;
        return 0;
}

int vm_domain_xml(const struct vm_spec *spec, char **ret_xml) {
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;
        struct builder b = {};
        char uuid_text[VM_UUID_STRING_MAX];
        xmlNode *domain, *n;
        bool i440fx;
        uuid_t uuid;
        int r;

        assert(spec);
        assert(ret_xml);

        r = spec_check(spec);
        if (r < 0)
                return r;
        (void) uuid_parse(spec->uuid, uuid);
        uuid_unparse_lower(uuid, uuid_text);
        i440fx = spec_uses_ide(spec);

        doc = xmlNewDoc(BAD_CAST "1.0");
        if (!doc)
                return -ENOMEM;
        domain = xmlNewDocNode(doc, NULL, BAD_CAST "domain", NULL);
        if (!domain)
                return -ENOMEM;
        xmlDocSetRootElement(doc, domain);
        attribute(&b, domain, "type", vm_domain_type_to_string(spec->type));

        element(&b, domain, "name", spec->name);
        element(&b, domain, "uuid", uuid_text);
        add_metadata(&b, domain, spec->vm_id);
        n = elementf(&b, domain, "memory", "%" PRIu64, spec->memory_mib);
        attribute(&b, n, "unit", "MiB");
        elementf(&b, domain, "vcpu", "%u", spec->vcpus);

        n = element(&b, element(&b, domain, "os", NULL), "type", "hvm");
        attribute(&b, n, "arch", "x86_64");
        attribute(&b, n, "machine", i440fx ? "pc" : "q35");
        n = element(&b, domain, "features", NULL);
        element(&b, n, "acpi", NULL);
        element(&b, n, "apic", NULL);
        attribute(&b, element(&b, domain, "clock", NULL), "offset", "utc");

        element(&b, domain, "on_poweroff", "destroy");
        element(&b, domain, "on_reboot", "restart");
        element(&b, domain, "on_crash", "destroy");

        add_devices(&b, domain, spec, i440fx);
        if (b.failed)
                return -ENOMEM;

        return serialize(doc, ret_xml);
}
