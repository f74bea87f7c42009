/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for the VM model → domain XML (daemons/vmd/vmd-xml.c). Every
 * document is checked twice: against libvirt's own RelaxNG schemas with
 * Debian's virt-xml-validate (package libvirt-clients), and by reading it
 * back with libxml2 and XPath for what Haven needs in it. That libvirt
 * and QEMU accept and run it is proven by test-vmd-libvirt (real libvirtd
 * and QEMU) and the lab's system tests.
 *
 * Bad inputs tried, by kind:
 * - names: "", NULL, "a<b", "a&b", "a'b", "a\"b", "a b", "a\nb", "a/b",
 *   ".hidden", "-x", "_x", "ü", 64 characters;
 * - paths: NULL, "", relative "disk.img", a line feed, CR, TAB, ESC, DEL,
 *   invalid UTF-8 (0xFF, a lone continuation byte, the overlong C0 80, a
 *   surrogate ED A0 80, a truncated sequence), 4096 bytes; accepted and
 *   escaped: < > & ' " and non-ASCII UTF-8;
 * - numbers: memory 0, 15, 4194305 MiB; vCPUs 0, 65; vm_id 0, -1;
 *   65 disks, 33 NICs, 5 CD-ROMs; a NULL array with a count;
 * - enums: format 2 and -1, bus 4, cache 2, model 3, type 2;
 * - UUIDs: "", "not-a-uuid", 35 and 37 characters, a braced form;
 * - MACs: uppercase, multicast (01:...), all zero, 16 characters, dashes;
 * - bridges: "", 16 characters, "a/b", "a b", ".", "..", "a:b";
 * - boot orders: the same order twice (disk and CD-ROM), 129;
 * - IDE: five IDE devices (four disks and a CD-ROM).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "haven/exec.h"
#include "haven/loop.h"

#include "../../daemons/vmd/vmd-xml.h"
#include "test-tmp.h"

#define CLUSTER_UUID "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
/* Python's uuid.uuid5(uuid.UUID(CLUSTER_UUID), "vm/5"): an implementation
 * independent of libuuid. */
#define VM5_UUID "03648dce-908e-5029-af3a-7a396a9f4116"
#define VALIDATE_TIMEOUT_USEC (60 * USEC_PER_SEC)

DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDoc *, xmlFreeDoc)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlXPathContext *, xmlXPathFreeContext)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlXPathObject *, xmlXPathFreeObject)

static void xml_freep(xmlChar **p) {
        if (*p)
                xmlFree(*p);
}

/* ==== Helpers ==== */

static const struct vm_disk_spec one_disk[] = {
        {
                .path = "/var/lib/haven/shared/web1.qcow2",
                .format = VM_DISK_FORMAT_QCOW2,
                .bus = VM_DISK_BUS_VIRTIO,
                .boot_order = 1,
        },
};

/* A valid spec: one virtio disk, no NIC, no CD-ROM. */
static struct vm_spec minimal_spec(void) {
        return (struct vm_spec){
                .name = "web1",
                .uuid = VM5_UUID,
                .vm_id = 5,
                .type = VM_DOMAIN_TYPE_QEMU,
                .vcpus = 1,
                .memory_mib = 64,
                .disks = one_disk,
                .n_disks = ELEMENTSOF(one_disk),
        };
}

static char *xml_of(const struct vm_spec *spec) {
        char *xml = NULL;

        assert_int_equal(vm_domain_xml(spec, &xml), 0);
        assert_non_null(xml);
        return xml;
}

/* Runs virt-xml-validate FILE domain on xml; fails the test with its
 * output unless the document is valid. */
static void assert_validates(const char *xml) {
        char dir[] = "/tmp/test-vmd-xml-XXXXXX";
        _cleanup_free_ char *path = NULL;
        struct haven_exec_result result = {};
        struct haven_exec_options options = {
                .timeout_usec = VALIDATE_TIMEOUT_USEC,
        };
        FILE *f;

        assert_non_null(mkdtemp(dir));
        assert_true(asprintf(&path, "%s/domain.xml", dir) > 0);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_true(fputs(xml, f) >= 0);
        assert_int_equal(fclose(f), 0);

        char *argv[] = {(char *) "virt-xml-validate", path, (char *) "domain",
                        NULL};
        assert_int_equal(haven_exec_run(argv, &options, &result), 0);
        if (!haven_exec_result_ok(&result))
                fail_msg("virt-xml-validate refused the document:\n%s\n%s%s",
                         xml, result.stdout_data, result.stderr_data);
        haven_exec_result_done(&result);
        remove_tree(dir);
}

static xmlDoc *parse(const char *xml) {
        xmlDoc *doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR);

        assert_non_null(doc);
        return doc;
}

/* The string value of an XPath expression over the document ("" when it
 * selects nothing). Owned by the caller. */
static char *xpath(xmlDoc *doc, const char *expression) {
        _cleanup_(xmlXPathFreeContextp) xmlXPathContext *ctx = NULL;
        _cleanup_(xmlXPathFreeObjectp) xmlXPathObject *obj = NULL;
        _cleanup_free_ char *wrapped = NULL;
        char *s;

        ctx = xmlXPathNewContext(doc);
        assert_non_null(ctx);
        assert_int_equal(xmlXPathRegisterNs(ctx, BAD_CAST "haven",
                                            BAD_CAST VM_XML_METADATA_URI),
                         0);
        assert_true(asprintf(&wrapped, "string(%s)", expression) > 0);
        obj = xmlXPathEvalExpression(BAD_CAST wrapped, ctx);
        assert_non_null(obj);
        assert_int_equal(obj->type, XPATH_STRING);
        s = strdup((const char *) obj->stringval);
        assert_non_null(s);
        return s;
}

static void assert_xpath(xmlDoc *doc, const char *expression,
                         const char *expected) {
        _cleanup_free_ char *value = xpath(doc, expression);

        if (!streq(value, expected))
                fail_msg("%s is \"%s\", expected \"%s\"", expression, value,
                         expected);
}

static void assert_refused(const struct vm_spec *spec, const char *what) {
        char *xml = NULL;
        int r = vm_domain_xml(spec, &xml);

        if (r != -EINVAL)
                fail_msg("%s: expected -EINVAL, got %d", what, r);
        assert_null(xml);
}

/* ==== Documents libvirt's schema accepts ==== */

static void minimal_vm_is_valid_domain_xml(void **state) {
        struct vm_spec spec = minimal_spec();
        _cleanup_free_ char *xml = xml_of(&spec);
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;

        assert_validates(xml);
        doc = parse(xml);
        assert_xpath(doc, "/domain/@type", "qemu");
        assert_xpath(doc, "/domain/name", "web1");
        assert_xpath(doc, "/domain/uuid", VM5_UUID);
        assert_xpath(doc, "/domain/memory", "64");
        assert_xpath(doc, "/domain/memory/@unit", "MiB");
        assert_xpath(doc, "/domain/vcpu", "1");
        assert_xpath(doc, "/domain/os/type", "hvm");
        assert_xpath(doc, "/domain/os/type/@arch", "x86_64");
        assert_xpath(doc, "/domain/os/type/@machine", "q35");
        assert_xpath(doc, "count(/domain/features/acpi)", "1");
        assert_xpath(doc, "count(/domain/features/apic)", "1");
        assert_xpath(doc, "/domain/on_poweroff", "destroy");
        assert_xpath(doc, "/domain/on_reboot", "restart");
        assert_xpath(doc, "/domain/on_crash", "destroy");
        assert_xpath(doc, "/domain/metadata/haven:vm/@id", "5");
        assert_xpath(doc, "/domain/devices/disk/@type", "file");
        assert_xpath(doc, "/domain/devices/disk/source/@file",
                     "/var/lib/haven/shared/web1.qcow2");
        assert_xpath(doc, "/domain/devices/disk/driver/@type", "qcow2");
        assert_xpath(doc, "/domain/devices/disk/driver/@cache", "none");
        assert_xpath(doc, "/domain/devices/disk/target/@dev", "vda");
        assert_xpath(doc, "/domain/devices/disk/target/@bus", "virtio");
        assert_xpath(doc, "/domain/devices/disk/boot/@order", "1");
        /* VNC on this node only, serial console on a pty. */
        assert_xpath(doc, "/domain/devices/graphics/@type", "vnc");
        assert_xpath(doc, "/domain/devices/graphics/@autoport", "yes");
        assert_xpath(doc, "/domain/devices/graphics/listen/@address",
                     "127.0.0.1");
        assert_xpath(doc, "count(/domain/devices/graphics)", "1");
        assert_xpath(doc, "/domain/devices/serial/@type", "pty");
        assert_xpath(doc, "/domain/devices/console/target/@type", "serial");
        assert_xpath(doc, "count(/domain/devices/interface)", "0");
        assert_xpath(doc, "/domain/devices/panic/@model", "isa");
}

static void every_device_kind_is_valid_domain_xml(void **state) {
        const struct vm_disk_spec disks[] = {
                {.path = "/srv/shared/a.qcow2",
                 .format = VM_DISK_FORMAT_QCOW2,
                 .bus = VM_DISK_BUS_VIRTIO,
                 .boot_order = 2},
                {.path = "/srv/shared/b.img",
                 .format = VM_DISK_FORMAT_RAW,
                 .bus = VM_DISK_BUS_SATA,
                 .cache = VM_DISK_CACHE_WRITEBACK},
                {.path = "/srv/shared/c.img",
                 .format = VM_DISK_FORMAT_RAW,
                 .bus = VM_DISK_BUS_SCSI},
                {.path = "/dev/drbd7",
                 .format = VM_DISK_FORMAT_RAW,
                 .bus = VM_DISK_BUS_VIRTIO},
        };
        const struct vm_nic_spec nics[] = {
                {.bridge = "hv-lan",
                 .mac = "52:54:00:12:34:56",
                 .model = VM_NIC_MODEL_VIRTIO},
                {.bridge = "hv-dmz",
                 .mac = "52:54:00:ab:cd:ef",
                 .model = VM_NIC_MODEL_E1000},
                {.bridge = "br0", .model = VM_NIC_MODEL_RTL8139},
        };
        const struct vm_cdrom_spec cdroms[] = {
                {.iso_path = "/srv/iso/debian-12.iso", .boot_order = 1},
                {.iso_path = NULL},
        };
        struct vm_spec spec = minimal_spec();
        _cleanup_free_ char *xml = NULL;
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;

        spec.type = VM_DOMAIN_TYPE_KVM;
        spec.vcpus = 4;
        spec.memory_mib = 8192;
        spec.disks = disks;
        spec.n_disks = ELEMENTSOF(disks);
        spec.nics = nics;
        spec.n_nics = ELEMENTSOF(nics);
        spec.cdroms = cdroms;
        spec.n_cdroms = ELEMENTSOF(cdroms);
        xml = xml_of(&spec);
        assert_validates(xml);
        doc = parse(xml);

        assert_xpath(doc, "/domain/@type", "kvm");
        assert_xpath(doc, "/domain/vcpu", "4");
        assert_xpath(doc, "/domain/memory", "8192");
        assert_xpath(doc, "/domain/os/type/@machine", "q35");
        /* Targets per prefix in spec order; SATA, SCSI and the CD-ROMs
         * share "sd". */
        assert_xpath(doc, "/domain/devices/disk[1]/target/@dev", "vda");
        assert_xpath(doc, "/domain/devices/disk[2]/target/@dev", "sda");
        assert_xpath(doc, "/domain/devices/disk[2]/target/@bus", "sata");
        assert_xpath(doc, "/domain/devices/disk[2]/driver/@cache", "writeback");
        assert_xpath(doc, "/domain/devices/disk[3]/target/@dev", "sdb");
        assert_xpath(doc, "/domain/devices/disk[3]/target/@bus", "scsi");
        assert_xpath(doc, "/domain/devices/controller[@type='scsi']/@model",
                     "virtio-scsi");
        /* A block device (an eSAN disk) is <disk type='block'>. */
        assert_xpath(doc, "/domain/devices/disk[4]/@type", "block");
        assert_xpath(doc, "/domain/devices/disk[4]/source/@dev", "/dev/drbd7");
        assert_xpath(doc, "/domain/devices/disk[4]/target/@dev", "vdb");
        assert_xpath(doc, "count(/domain/devices/disk[4]/boot)", "0");
        assert_xpath(doc, "/domain/devices/disk[5]/@device", "cdrom");
        assert_xpath(doc, "/domain/devices/disk[5]/target/@dev", "sdc");
        assert_xpath(doc, "/domain/devices/disk[5]/target/@bus", "sata");
        assert_xpath(doc, "/domain/devices/disk[5]/source/@file",
                     "/srv/iso/debian-12.iso");
        assert_xpath(doc, "count(/domain/devices/disk[5]/readonly)", "1");
        assert_xpath(doc, "/domain/devices/disk[6]/target/@dev", "sdd");
        /* Boot order: the ISO first, then the first disk. */
        assert_xpath(doc, "/domain/devices/disk[5]/boot/@order", "1");
        assert_xpath(doc, "/domain/devices/disk[1]/boot/@order", "2");
        assert_xpath(doc, "count(//boot)", "2");
        assert_xpath(doc, "count(/domain/os/boot)", "0");

        assert_xpath(doc, "/domain/devices/interface[1]/@type", "bridge");
        assert_xpath(doc, "/domain/devices/interface[1]/source/@bridge",
                     "hv-lan");
        assert_xpath(doc, "/domain/devices/interface[1]/mac/@address",
                     "52:54:00:12:34:56");
        assert_xpath(doc, "/domain/devices/interface[1]/model/@type", "virtio");
        assert_xpath(doc, "/domain/devices/interface[2]/model/@type", "e1000");
        assert_xpath(doc, "/domain/devices/interface[3]/model/@type",
                     "rtl8139");
        assert_xpath(doc, "count(/domain/devices/interface[3]/mac)", "0");
}

static void cdrom_without_iso_is_an_empty_tray(void **state) {
        const struct vm_cdrom_spec cdroms[] = {
                {.iso_path = NULL},
                {.iso_path = ""},
        };
        struct vm_spec spec = minimal_spec();
        _cleanup_free_ char *xml = NULL;
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;

        spec.cdroms = cdroms;
        spec.n_cdroms = ELEMENTSOF(cdroms);
        xml = xml_of(&spec);
        assert_validates(xml);
        doc = parse(xml);
        assert_xpath(doc, "count(/domain/devices/disk[@device='cdrom'])", "2");
        assert_xpath(doc, "count(/domain/devices/disk[@device='cdrom']/source)",
                     "0");
        assert_xpath(doc, "count(/domain/devices/disk[@device='cdrom']/boot)",
                     "0");
}

static void diskless_vm_boots_its_iso(void **state) {
        const struct vm_cdrom_spec cdroms[] = {
                {.iso_path = "/srv/iso/rescue.iso", .boot_order = 1},
        };
        struct vm_spec spec = minimal_spec();
        _cleanup_free_ char *xml = NULL;
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;

        spec.disks = NULL;
        spec.n_disks = 0;
        spec.cdroms = cdroms;
        spec.n_cdroms = 1;
        xml = xml_of(&spec);
        assert_validates(xml);
        doc = parse(xml);
        assert_xpath(doc, "count(/domain/devices/disk)", "1");
        assert_xpath(doc, "/domain/devices/disk/boot/@order", "1");
}

static void ide_disk_selects_the_i440fx_machine(void **state) {
        const struct vm_disk_spec disks[] = {
                {.path = "/srv/shared/old.img",
                 .bus = VM_DISK_BUS_IDE,
                 .boot_order = 1},
                {.path = "/srv/shared/new.img", .bus = VM_DISK_BUS_VIRTIO},
        };
        const struct vm_cdrom_spec cdroms[] = {{.iso_path = "/srv/iso/x.iso"}};
        struct vm_spec spec = minimal_spec();
        _cleanup_free_ char *xml = NULL;
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;

        spec.disks = disks;
        spec.n_disks = ELEMENTSOF(disks);
        spec.cdroms = cdroms;
        spec.n_cdroms = ELEMENTSOF(cdroms);
        xml = xml_of(&spec);
        assert_validates(xml);
        doc = parse(xml);
        assert_xpath(doc, "/domain/os/type/@machine", "pc");
        assert_xpath(doc, "/domain/devices/disk[1]/target/@dev", "hda");
        assert_xpath(doc, "/domain/devices/disk[1]/target/@bus", "ide");
        assert_xpath(doc, "/domain/devices/disk[2]/target/@dev", "vda");
        /* The CD-ROM follows the machine: IDE on the i440fx. */
        assert_xpath(doc, "/domain/devices/disk[3]/target/@dev", "hdb");
        assert_xpath(doc, "/domain/devices/disk[3]/target/@bus", "ide");
}

static void more_than_four_ide_devices_are_refused(void **state) {
        const struct vm_disk_spec disks[] = {
                {.path = "/d/1", .bus = VM_DISK_BUS_IDE},
                {.path = "/d/2", .bus = VM_DISK_BUS_IDE},
                {.path = "/d/3", .bus = VM_DISK_BUS_IDE},
                {.path = "/d/4", .bus = VM_DISK_BUS_IDE},
        };
        const struct vm_cdrom_spec cdroms[] = {{.iso_path = NULL}};
        struct vm_spec spec = minimal_spec();
        _cleanup_free_ char *xml = NULL;

        spec.disks = disks;
        spec.n_disks = ELEMENTSOF(disks);
        xml = xml_of(&spec); /* four: the most an i440fx has */
        assert_validates(xml);
        spec.cdroms = cdroms;
        spec.n_cdroms = 1;
        assert_refused(&spec, "four IDE disks and a CD-ROM");
}

static void domain_type_follows_the_parameter(void **state) {
        struct vm_spec spec = minimal_spec();

        for (int t = 0; t < _VM_DOMAIN_TYPE_MAX; t++) {
                _cleanup_free_ char *xml = NULL;
                _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;

                spec.type = (enum vm_domain_type) t;
                xml = xml_of(&spec);
                assert_validates(xml);
                doc = parse(xml);
                assert_xpath(doc, "/domain/@type",
                             t == VM_DOMAIN_TYPE_KVM ? "kvm" : "qemu");
        }
}

static void sixty_four_disks_get_two_letter_targets(void **state) {
        struct vm_disk_spec disks[VM_DISKS_MAX];
        char paths[VM_DISKS_MAX][32];
        struct vm_spec spec = minimal_spec();
        _cleanup_free_ char *xml = NULL;
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;

        for (size_t i = 0; i < VM_DISKS_MAX; i++) {
                (void) snprintf(paths[i], sizeof(paths[i]), "/srv/d%zu.img", i);
                disks[i] = (struct vm_disk_spec){.path = paths[i]};
        }
        spec.disks = disks;
        spec.n_disks = VM_DISKS_MAX;
        xml = xml_of(&spec);
        assert_validates(xml);
        doc = parse(xml);
        assert_xpath(doc, "/domain/devices/disk[26]/target/@dev", "vdz");
        assert_xpath(doc, "/domain/devices/disk[27]/target/@dev", "vdaa");
        assert_xpath(doc, "/domain/devices/disk[53]/target/@dev", "vdba");
        assert_xpath(doc, "/domain/devices/disk[64]/target/@dev", "vdbl");

        spec.n_disks = VM_DISKS_MAX + 1;
        assert_refused(&spec, "65 disks");
}

/* ==== Escaping ==== */

static void xml_metacharacters_in_paths_are_escaped(void **state) {
        static const char disk_path[] =
                "/srv/shared/<evil> & 'quoted' \"twice\" ]]> ü.img";
        static const char iso_path[] = "/srv/iso/a&amp;b<!--c-->.iso";
        const struct vm_disk_spec disks[] = {{.path = disk_path}};
        const struct vm_cdrom_spec cdroms[] = {{.iso_path = iso_path}};
        struct vm_spec spec = minimal_spec();
        _cleanup_free_ char *xml = NULL;
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;
        _cleanup_(xml_freep) xmlChar *file = NULL;
        xmlNode *source;

        spec.disks = disks;
        spec.n_disks = 1;
        spec.cdroms = cdroms;
        spec.n_cdroms = 1;
        xml = xml_of(&spec);
        assert_validates(xml);
        /* Nothing of the paths leaks out as markup. */
        assert_null(strstr(xml, "<evil>"));
        assert_null(strstr(xml, "<!--c-->"));
        assert_null(strstr(xml, "]]>"));
        doc = parse(xml);
        assert_xpath(doc, "count(//evil)", "0");
        assert_xpath(doc, "count(/domain/devices/disk)", "2");
        /* Read back through the tree: exactly the bytes given. */
        source = xmlDocGetRootElement(doc);
        assert_non_null(source);
        assert_xpath(doc, "/domain/devices/disk[2]/source/@file", iso_path);
        for (source = source->children; source; source = source->next)
                if (source->type == XML_ELEMENT_NODE &&
                    xmlStrEqual(source->name, BAD_CAST "devices"))
                        break;
        assert_non_null(source);
        source = xmlFirstElementChild(source);  /* <disk> */
        source = xmlFirstElementChild(source);  /* <driver> */
        source = xmlNextElementSibling(source); /* <source> */
        assert_non_null(source);
        file = xmlGetProp(source, BAD_CAST "file");
        assert_non_null(file);
        assert_string_equal((const char *) file, disk_path);
}

static void names_with_metacharacters_are_refused(void **state) {
        static const char *const names[] = {
                "",
                "a<b",
                "a&b",
                "a'b",
                "a\"b",
                "a b",
                "a\nb",
                "a/b",
                ".hidden",
                "-x",
                "_x",
                "\xc3\xbc",
                "a123456789b123456789c123456789d123456789e123456789f123456789"
                "ghij",
        };
        struct vm_spec spec = minimal_spec();

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                spec.name = names[i];
                assert_refused(&spec, names[i]);
        }
        spec.name = NULL;
        assert_refused(&spec, "NULL name");
        /* 63 characters: the longest name. */
        spec.name =
                "a123456789b123456789c123456789d123456789e123456789f12345678"
                "9ghi";
        assert_int_equal(strlen(spec.name), 63);
        _cleanup_free_ char *xml = xml_of(&spec);
        assert_validates(xml);
}

static void control_characters_and_bad_utf8_in_paths_are_refused(void **state) {
        static const char *const paths[] = {
                "",
                "disk.img",
                "/srv/a\nb.img",
                "/srv/a\rb.img",
                "/srv/a\tb.img",
                "/srv/a\x1b[31mb.img",
                "/srv/a\x7f.img",
                "/srv/\xff.img",
                "/srv/\x80.img",
                "/srv/\xc0\x80.img",
                "/srv/\xed\xa0\x80.img",
                "/srv/\xe2\x82",
        };
        _cleanup_free_ char *long_path = NULL;
        struct vm_disk_spec disk = one_disk[0];
        struct vm_cdrom_spec cdrom = {};
        struct vm_spec spec = minimal_spec();

        spec.disks = &disk;
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                disk.path = paths[i];
                assert_refused(&spec, paths[i]);
        }
        disk.path = NULL;
        assert_refused(&spec, "NULL disk path");

        long_path = malloc(VM_PATH_MAX + 2);
        assert_non_null(long_path);
        long_path[0] = '/';
        memset(long_path + 1, 'x', VM_PATH_MAX);
        long_path[VM_PATH_MAX + 1] = '\0';
        disk.path = long_path;
        assert_refused(&spec, "4096-byte path");
        long_path[VM_PATH_MAX] = '\0'; /* 4095 bytes: the longest */
        _cleanup_free_ char *xml = xml_of(&spec);

        /* The same rules for an ISO. */
        disk = one_disk[0];
        spec.cdroms = &cdrom;
        spec.n_cdroms = 1;
        for (size_t i = 1; i < ELEMENTSOF(paths); i++) {
                cdrom.iso_path = paths[i];
                assert_refused(&spec, paths[i]);
        }
}

/* ==== Values out of range ==== */

static void out_of_range_numbers_are_refused(void **state) {
        struct vm_spec spec;

        spec = minimal_spec();
        spec.memory_mib = 0;
        assert_refused(&spec, "zero memory");
        spec.memory_mib = VM_MEMORY_MIB_MIN - 1;
        assert_refused(&spec, "15 MiB");
        spec.memory_mib = VM_MEMORY_MIB_MAX + 1;
        assert_refused(&spec, "4194305 MiB");

        spec = minimal_spec();
        spec.vcpus = 0;
        assert_refused(&spec, "zero vCPUs");
        spec.vcpus = VM_VCPUS_MAX + 1;
        assert_refused(&spec, "65 vCPUs");

        spec = minimal_spec();
        spec.vm_id = 0;
        assert_refused(&spec, "vm_id 0");
        spec.vm_id = -1;
        assert_refused(&spec, "vm_id -1");

        spec = minimal_spec();
        spec.type = _VM_DOMAIN_TYPE_MAX;
        assert_refused(&spec, "type 2");

        spec = minimal_spec();
        spec.disks = NULL;
        assert_refused(&spec, "NULL disks with a count");
        spec = minimal_spec();
        spec.n_nics = 1;
        assert_refused(&spec, "NULL NICs with a count");
        spec = minimal_spec();
        spec.n_cdroms = 1;
        assert_refused(&spec, "NULL CD-ROMs with a count");

        const struct vm_nic_spec nics[VM_NICS_MAX + 1] = {};
        const struct vm_cdrom_spec cdroms[VM_CDROMS_MAX + 1] = {};
        spec = minimal_spec();
        spec.nics = nics;
        spec.n_nics = VM_NICS_MAX + 1;
        assert_refused(&spec, "33 NICs");
        spec = minimal_spec();
        spec.cdroms = cdroms;
        spec.n_cdroms = VM_CDROMS_MAX + 1;
        assert_refused(&spec, "5 CD-ROMs");
}

static void out_of_range_enums_are_refused(void **state) {
        struct vm_disk_spec disk;
        struct vm_nic_spec nic = {.bridge = "hv-lan"};
        struct vm_spec spec = minimal_spec();

        spec.disks = &disk;
        disk = one_disk[0];
        disk.format = _VM_DISK_FORMAT_MAX;
        assert_refused(&spec, "format 2");
        disk.format = (enum vm_disk_format) - 1;
        assert_refused(&spec, "format -1");
        disk = one_disk[0];
        disk.bus = _VM_DISK_BUS_MAX;
        assert_refused(&spec, "bus 4");
        disk = one_disk[0];
        disk.cache = _VM_DISK_CACHE_MAX;
        assert_refused(&spec, "cache 2");

        disk = one_disk[0];
        spec.nics = &nic;
        spec.n_nics = 1;
        nic.model = _VM_NIC_MODEL_MAX;
        assert_refused(&spec, "model 3");
}

static void bad_uuids_are_refused(void **state) {
        static const char *const uuids[] = {
                "",
                "not-a-uuid",
                "03648dce-908e-5029-af3a-7a396a9f411",
                "03648dce-908e-5029-af3a-7a396a9f41166",
                "{03648dce-908e-5029-af3a-7a396a9f4116}",
                "03648dce908e5029af3a7a396a9f4116xxxx",
        };
        struct vm_spec spec = minimal_spec();
        _cleanup_free_ char *xml = NULL;
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;

        for (size_t i = 0; i < ELEMENTSOF(uuids); i++) {
                spec.uuid = uuids[i];
                assert_refused(&spec, uuids[i]);
        }
        spec.uuid = NULL;
        assert_refused(&spec, "NULL uuid");

        /* Uppercase is accepted and written in lowercase. */
        spec.uuid = "03648DCE-908E-5029-AF3A-7A396A9F4116";
        xml = xml_of(&spec);
        doc = parse(xml);
        assert_xpath(doc, "/domain/uuid", VM5_UUID);
}

static void bad_macs_and_bridges_are_refused(void **state) {
        static const char *const macs[] = {
                "52:54:00:AB:CD:EF",
                "01:54:00:ab:cd:ef",
                "53:54:00:ab:cd:ef",
                "00:00:00:00:00:00",
                "52:54:00:ab:cd:e",
                "52-54-00-ab-cd-ef",
                "",
        };
        static const char *const bridges[] = {
                "", "hv-0123456789abc", "a/b", "a b", ".", "..", "a:b",
        };
        struct vm_nic_spec nic = {.bridge = "hv-lan"};
        struct vm_spec spec = minimal_spec();

        spec.nics = &nic;
        spec.n_nics = 1;
        for (size_t i = 0; i < ELEMENTSOF(macs); i++) {
                nic.mac = macs[i];
                assert_refused(&spec, macs[i]);
        }
        nic.mac = "52:54:00:ab:cd:ef";
        for (size_t i = 0; i < ELEMENTSOF(bridges); i++) {
                nic.bridge = bridges[i];
                assert_refused(&spec, bridges[i]);
        }
        nic.bridge = NULL;
        assert_refused(&spec, "NULL bridge");
        /* 15 characters: the longest interface name. */
        nic.bridge = "hv-0123456789ab";
        _cleanup_free_ char *xml = xml_of(&spec);
        assert_validates(xml);
}

static void repeated_or_out_of_range_boot_orders_are_refused(void **state) {
        struct vm_disk_spec disk = one_disk[0];
        struct vm_cdrom_spec cdrom = {.iso_path = "/i.iso", .boot_order = 1};
        struct vm_spec spec = minimal_spec();

        spec.disks = &disk;
        spec.cdroms = &cdrom;
        spec.n_cdroms = 1;
        assert_refused(&spec, "disk and CD-ROM both first");
        cdrom.boot_order = 2;
        disk.boot_order = VM_BOOT_ORDER_MAX + 1;
        assert_refused(&spec, "boot order 129");
        disk.boot_order = VM_BOOT_ORDER_MAX;
        _cleanup_free_ char *xml = xml_of(&spec);
        assert_validates(xml);
}

/* ==== Naming rules ==== */

static void vm_uuid_is_stable_and_version_5(void **state) {
        char a[VM_UUID_STRING_MAX], b[VM_UUID_STRING_MAX];

        assert_int_equal(vm_uuid(CLUSTER_UUID, 5, a), 0);
        assert_string_equal(a, VM5_UUID);
        /* Uppercase cluster UUID: the same namespace. */
        assert_int_equal(vm_uuid("6F1C2A9E-3B4D-4E5F-8A7B-9C0D1E2F3A4B", 5, b),
                         0);
        assert_string_equal(b, VM5_UUID);
        /* Another VM, another cluster: another UUID (Python's values). */
        assert_int_equal(vm_uuid(CLUSTER_UUID, 6, b), 0);
        assert_string_equal(b, "c8c0bb71-d298-5d59-bdc9-58730b6da304");
        assert_int_equal(vm_uuid("0b2d7f3c-1111-4222-8333-444455556666", 5, b),
                         0);
        assert_string_equal(b, "f868974f-374e-5945-85a1-eecb971b4d94");
        assert_int_equal(a[14], '5');

        assert_int_equal(vm_uuid(CLUSTER_UUID, 0, b), -EINVAL);
        assert_int_equal(vm_uuid(CLUSTER_UUID, -3, b), -EINVAL);
        assert_int_equal(vm_uuid("not-a-uuid", 5, b), -EINVAL);
        assert_int_equal(vm_uuid("", 5, b), -EINVAL);
        assert_int_equal(vm_uuid(NULL, 5, b), -EINVAL);
}

static void bridge_name_fits_an_interface_name(void **state) {
        char name[IFNAMSIZ];

        assert_int_equal(vm_bridge_name("lan", name), 0);
        assert_string_equal(name, "hv-lan");
        assert_int_equal(vm_bridge_name("abcdefghijkl", name), 0);
        assert_string_equal(name, "hv-abcdefghijkl");
        /* Longer names: "hvh-" and SHA-1 (Python's hashlib values). */
        assert_int_equal(vm_bridge_name("abcdefghijklm", name), 0);
        assert_string_equal(name, "hvh-4b9892b6527");
        assert_int_equal(vm_bridge_name("storage-backbone", name), 0);
        assert_string_equal(name, "hvh-eb4b1b5822b");
        assert_int_equal(strlen(name), IFNAMSIZ - 1);

        assert_int_equal(vm_bridge_name("", name), -EINVAL);
        assert_int_equal(vm_bridge_name("a b", name), -EINVAL);
        assert_int_equal(vm_bridge_name("a/b", name), -EINVAL);
        assert_int_equal(vm_bridge_name(NULL, name), -EINVAL);
}

static void disk_format_comes_from_the_file_name(void **state) {
        assert_int_equal(vm_disk_format_from_path("/s/a.qcow2"),
                         VM_DISK_FORMAT_QCOW2);
        assert_int_equal(vm_disk_format_from_path("/s/A.QCOW2"),
                         VM_DISK_FORMAT_QCOW2);
        assert_int_equal(vm_disk_format_from_path("/s/a.img"),
                         VM_DISK_FORMAT_RAW);
        assert_int_equal(vm_disk_format_from_path("/s/a.qcow2.raw"),
                         VM_DISK_FORMAT_RAW);
        assert_int_equal(vm_disk_format_from_path("/s/qcow2"),
                         VM_DISK_FORMAT_RAW);
        assert_int_equal(vm_disk_format_from_path("/dev/drbd1"),
                         VM_DISK_FORMAT_RAW);
        assert_int_equal(vm_disk_format_from_path(NULL), VM_DISK_FORMAT_RAW);
}

static void domain_type_detection_follows_the_kvm_device(void **state) {
        /* /dev/null opens read-write like a usable /dev/kvm would. */
        assert_int_equal(vm_domain_type_detect("/dev/null"),
                         VM_DOMAIN_TYPE_KVM);
        assert_int_equal(vm_domain_type_detect("/nonexistent/kvm"),
                         VM_DOMAIN_TYPE_QEMU);
        assert_int_equal(vm_domain_type_detect(NULL),
                         access("/dev/kvm", R_OK | W_OK) == 0
                                 ? VM_DOMAIN_TYPE_KVM
                                 : VM_DOMAIN_TYPE_QEMU);
}

static void enum_names_round_trip(void **state) {
        for (int i = 0; i < _VM_DISK_BUS_MAX; i++)
                assert_int_equal(
                        vm_disk_bus_from_string(vm_disk_bus_to_string(i)), i);
        for (int i = 0; i < _VM_NIC_MODEL_MAX; i++)
                assert_int_equal(
                        vm_nic_model_from_string(vm_nic_model_to_string(i)), i);
        for (int i = 0; i < _VM_DISK_FORMAT_MAX; i++)
                assert_int_equal(
                        vm_disk_format_from_string(vm_disk_format_to_string(i)),
                        i);
        for (int i = 0; i < _VM_DISK_CACHE_MAX; i++)
                assert_int_equal(
                        vm_disk_cache_from_string(vm_disk_cache_to_string(i)),
                        i);
        for (int i = 0; i < _VM_DOMAIN_TYPE_MAX; i++)
                assert_int_equal(
                        vm_domain_type_from_string(vm_domain_type_to_string(i)),
                        i);
        assert_int_equal(vm_disk_bus_from_string("usb"), -EINVAL);
        assert_int_equal(vm_disk_bus_from_string("VIRTIO"), -EINVAL);
        assert_int_equal(vm_disk_bus_from_string(NULL), -EINVAL);
        assert_null(vm_disk_bus_to_string(_VM_DISK_BUS_MAX));
        assert_null(vm_nic_model_to_string(-1));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(minimal_vm_is_valid_domain_xml),
                cmocka_unit_test(every_device_kind_is_valid_domain_xml),
                cmocka_unit_test(cdrom_without_iso_is_an_empty_tray),
                cmocka_unit_test(diskless_vm_boots_its_iso),
                cmocka_unit_test(ide_disk_selects_the_i440fx_machine),
                cmocka_unit_test(more_than_four_ide_devices_are_refused),
                cmocka_unit_test(domain_type_follows_the_parameter),
                cmocka_unit_test(sixty_four_disks_get_two_letter_targets),
                cmocka_unit_test(xml_metacharacters_in_paths_are_escaped),
                cmocka_unit_test(names_with_metacharacters_are_refused),
                cmocka_unit_test(
                        control_characters_and_bad_utf8_in_paths_are_refused),
                cmocka_unit_test(out_of_range_numbers_are_refused),
                cmocka_unit_test(out_of_range_enums_are_refused),
                cmocka_unit_test(bad_uuids_are_refused),
                cmocka_unit_test(bad_macs_and_bridges_are_refused),
                cmocka_unit_test(
                        repeated_or_out_of_range_boot_orders_are_refused),
                cmocka_unit_test(vm_uuid_is_stable_and_version_5),
                cmocka_unit_test(bridge_name_fits_an_interface_name),
                cmocka_unit_test(disk_format_comes_from_the_file_name),
                cmocka_unit_test(domain_type_detection_follows_the_kvm_device),
                cmocka_unit_test(enum_names_round_trip),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
