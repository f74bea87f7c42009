/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The power strip's SNMP face: an embedded net-snmp master agent serving the
 * MIB-II system group and the PowerNet-MIB objects of an APC switched rack
 * PDU (rPDU outlet tables and the old MasterSwitch sPDUOutletCtl table),
 * with access control (read-only and read-write communities, one SNMPv3
 * authPriv user). Every SET is logged with who sent it. Must not: read MIB
 * files or the host's snmp configuration, or persist anything outside the
 * state directory.
 */
#include <arpa/inet.h>
#include <sys/stat.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/agent/net-snmp-agent-includes.h>
#include <net-snmp/agent/agent_callbacks.h>

#include "haven/log.h"
#include "pdusim.h"

/* ==== Objects ==== */

enum object_kind {
        OBJECT_SYS_DESCR,
        OBJECT_SYS_OBJECT_ID,
        OBJECT_SYS_UPTIME,
        OBJECT_SYS_NAME,
        OBJECT_OUTLET_COUNT,            /* the four "number of outlets" scalars */
        OBJECT_DEV_COMMAND,             /* rPDUOutletDevCommand */
        OBJECT_OUTLET_NAME,             /* read-only name columns */
        OBJECT_OUTLET_CONFIG_NAME,      /* rPDUOutletConfigOutletName (rw) */
        OBJECT_OUTLET_COMMAND,          /* rPDUOutletControlOutletCommand (rw) */
        OBJECT_OUTLET_STATE,            /* rPDUOutletStatusOutletState */
        OBJECT_OUTLET_PENDING,          /* rPDUOutletStatusCommandPending */
        OBJECT_SPDU_CTL,                /* sPDUOutletCtl (rw) */
        _OBJECT_KIND_MAX,
        _OBJECT_KIND_INVALID = -EINVAL,
};

struct object_def {
        const char *name;
        enum object_kind kind;
        oid base[16];       /* the object's OID, without the instance */
        size_t base_len;
        bool column;    /* one instance per outlet (.n), else a scalar (.0) */
        bool writable;
};

/* An instance: what one registration's handler serves. */
struct pdu_instance {
        struct pdu *pdu;
        const struct object_def *def;
        struct outlet *outlet;          /* NULL for scalars */
};

#define OID(...) .base = { __VA_ARGS__ }, .base_len = sizeof((oid[]) { __VA_ARGS__ }) / sizeof(oid)
#define SYSTEM 1, 3, 6, 1, 2, 1, 1
#define APC 1, 3, 6, 1, 4, 1, 318, 1, 1

static const struct object_def objects[] = {
        { "sysDescr", OBJECT_SYS_DESCR, OID(SYSTEM, 1) },
        { "sysObjectID", OBJECT_SYS_OBJECT_ID, OID(SYSTEM, 2) },
        { "sysUpTime", OBJECT_SYS_UPTIME, OID(SYSTEM, 3) },
        { "sysName", OBJECT_SYS_NAME, OID(SYSTEM, 5) },
        { "sPDUOutletControlTableSize", OBJECT_OUTLET_COUNT, OID(APC, 4, 4, 1) },
        { "sPDUOutletCtl", OBJECT_SPDU_CTL, OID(APC, 4, 4, 2, 1, 3), .column = true, .writable = true },
        { "sPDUOutletCtlName", OBJECT_OUTLET_NAME, OID(APC, 4, 4, 2, 1, 4), .column = true },
        { "rPDUIdentDeviceNumOutlets", OBJECT_OUTLET_COUNT, OID(APC, 12, 1, 8) },
        { "rPDUOutletDevCommand", OBJECT_DEV_COMMAND, OID(APC, 12, 3, 1, 1), .writable = true },
        { "rPDUOutletDevNumCntrlOutlets", OBJECT_OUTLET_COUNT, OID(APC, 12, 3, 1, 3) },
        { "rPDUOutletDevNumTotalOutlets", OBJECT_OUTLET_COUNT, OID(APC, 12, 3, 1, 4) },
        { "rPDUOutletControlOutletName", OBJECT_OUTLET_NAME, OID(APC, 12, 3, 3, 1, 1, 2), .column = true },
        { "rPDUOutletControlOutletCommand", OBJECT_OUTLET_COMMAND, OID(APC, 12, 3, 3, 1, 1, 4),
          .column = true, .writable = true },
        { "rPDUOutletConfigOutletName", OBJECT_OUTLET_CONFIG_NAME, OID(APC, 12, 3, 4, 1, 1, 2),
          .column = true, .writable = true },
        { "rPDUOutletStatusOutletName", OBJECT_OUTLET_NAME, OID(APC, 12, 3, 5, 1, 1, 2), .column = true },
        { "rPDUOutletStatusOutletState", OBJECT_OUTLET_STATE, OID(APC, 12, 3, 5, 1, 1, 4), .column = true },
        { "rPDUOutletStatusCommandPending", OBJECT_OUTLET_PENDING, OID(APC, 12, 3, 5, 1, 1, 5),
          .column = true },
};

static const oid sys_object_ids[_PDU_MODEL_MAX][11] = {
        [PDU_MODEL_RPDU] = { 1, 3, 6, 1, 4, 1, 318, 1, 3, 4, 5 },
        [PDU_MODEL_MASTERSWITCH] = { 1, 3, 6, 1, 4, 1, 318, 1, 3, 4, 2 },
};

static const char *const sys_descrs[_PDU_MODEL_MAX] = {
        [PDU_MODEL_RPDU] = "APC Web/SNMP Management Card (MB:v3.9.2 PF:v3.7.4 "
                           "PN:apc_hw02_aos_374.bin AN1:apc_hw02_rpdu_374.bin "
                           "MN:AP7921) - Haven lab simulator",
        [PDU_MODEL_MASTERSWITCH] = "APC MasterSwitch (MN:AP9211) - Haven lab simulator",
};

#define PDU_SYS_NAME "haven-pdusim"

/* Values of the command objects (PowerNet-MIB). */
enum {
        OUTLET_IMMEDIATE_ON = 1,        /* also GET: the outlet is on */
        OUTLET_IMMEDIATE_OFF = 2,       /* also GET: the outlet is off */
        OUTLET_IMMEDIATE_REBOOT = 3,
        OUTLET_CANCEL_PENDING = 7,
        DEV_NO_COMMAND = 1,
        DEV_ALL_ON = 2,
        DEV_ALL_OFF = 3,
        DEV_ALL_REBOOT = 4,
        DEV_CANCEL_ALL_PENDING = 8,
        PENDING_YES = 1,
        PENDING_NO = 2,
};

/* The action a SET value asks for, or _OUTLET_ACTION_INVALID (wrongValue). */
static enum outlet_action action_from_value(enum object_kind kind, long value) {
        switch (kind) {
        case OBJECT_OUTLET_COMMAND:
        case OBJECT_SPDU_CTL:
                switch (value) {
                case OUTLET_IMMEDIATE_ON: return OUTLET_ACTION_ON;
                case OUTLET_IMMEDIATE_OFF: return OUTLET_ACTION_OFF;
                case OUTLET_IMMEDIATE_REBOOT: return OUTLET_ACTION_REBOOT;
                case OUTLET_CANCEL_PENDING:
                        /* sPDUOutletCtl's 7 is outletRebootWithDelay: refused */
                        return kind == OBJECT_OUTLET_COMMAND ? OUTLET_ACTION_CANCEL :
                                                               _OUTLET_ACTION_INVALID;
                default: return _OUTLET_ACTION_INVALID;
                }
        case OBJECT_DEV_COMMAND:
                switch (value) {
                case DEV_ALL_ON: return OUTLET_ACTION_ON;
                case DEV_ALL_OFF: return OUTLET_ACTION_OFF;
                case DEV_ALL_REBOOT: return OUTLET_ACTION_REBOOT;
                case DEV_CANCEL_ALL_PENDING: return OUTLET_ACTION_CANCEL;
                default: return _OUTLET_ACTION_INVALID;
                }
        default:
                return _OUTLET_ACTION_INVALID;
        }
}

static void object_get(const struct pdu_instance *in, netsnmp_variable_list *vb) {
        const struct pdu *p = in->pdu;
        const struct outlet *o = in->outlet;
        enum pdu_model model = p->options->model;

        switch (in->def->kind) {
        case OBJECT_SYS_DESCR:
                snmp_set_var_typed_value(vb, ASN_OCTET_STR, sys_descrs[model],
                                         strlen(sys_descrs[model]));
                break;
        case OBJECT_SYS_OBJECT_ID:
                snmp_set_var_typed_value(vb, ASN_OBJECT_ID, sys_object_ids[model],
                                         sizeof sys_object_ids[model]);
                break;
        case OBJECT_SYS_UPTIME: {
                u_long ticks = netsnmp_get_agent_uptime();
                snmp_set_var_typed_value(vb, ASN_TIMETICKS, &ticks, sizeof ticks);
                break;
        }
        case OBJECT_SYS_NAME:
                snmp_set_var_typed_value(vb, ASN_OCTET_STR, PDU_SYS_NAME, strlen(PDU_SYS_NAME));
                break;
        case OBJECT_OUTLET_COUNT:
                snmp_set_var_typed_integer(vb, ASN_INTEGER, (long) p->n_outlets);
                break;
        case OBJECT_DEV_COMMAND:
                snmp_set_var_typed_integer(vb, ASN_INTEGER, DEV_NO_COMMAND);
                break;
        case OBJECT_OUTLET_NAME:
        case OBJECT_OUTLET_CONFIG_NAME:
                snmp_set_var_typed_value(vb, ASN_OCTET_STR, o->name, strlen(o->name));
                break;
        case OBJECT_OUTLET_COMMAND:
        case OBJECT_SPDU_CTL:
        case OBJECT_OUTLET_STATE:
                snmp_set_var_typed_integer(vb, ASN_INTEGER,
                                           pdu_outlet_reads_on(o) ? OUTLET_IMMEDIATE_ON
                                                                  : OUTLET_IMMEDIATE_OFF);
                break;
        case OBJECT_OUTLET_PENDING:
                snmp_set_var_typed_integer(vb, ASN_INTEGER,
                                           o->step != OUTLET_STEP_NONE ? PENDING_YES : PENDING_NO);
                break;
        default:
                assert_not_reached();
        }
}

/* ==== SET ==== */

/* "127.0.0.1:40000, v2c community \"private\"" or "..., v3 user \"admin\"".
 * The agent listens on UDP/IPv4 only, so the request's transport data is
 * net-snmp's address pair. */
static void describe_requester(const netsnmp_pdu *pdu, char *buf, size_t size) {
        char address[INET_ADDRSTRLEN + 8] = "?";

        if (!pdu) {
                snprintf(buf, size, "an unknown client");
                return;
        }
        if (pdu->transport_data &&
            pdu->transport_data_length >= (int) sizeof(netsnmp_addr_pair)) {
                const netsnmp_addr_pair *pair = pdu->transport_data;
                char ip[INET_ADDRSTRLEN];

                if (pair->remote_addr.sa.sa_family == AF_INET &&
                    inet_ntop(AF_INET, &pair->remote_addr.sin.sin_addr, ip, sizeof ip))
                        snprintf(address, sizeof address, "%s:%u", ip,
                                 ntohs(pair->remote_addr.sin.sin_port));
        }
        if (pdu->version == SNMP_VERSION_3)
                snprintf(buf, size, "%s, v3 user \"%.*s\"", address,
                         (int) pdu->securityNameLen, pdu->securityName ? pdu->securityName : "");
        else
                snprintf(buf, size, "%s, %s community \"%.*s\"", address,
                         pdu->version == SNMP_VERSION_1 ? "v1" : "v2c",
                         (int) pdu->community_len,
                         pdu->community ? (const char *) pdu->community : "");
}

/* "42" or "\"name\"" for the log: a client's string is cut at 64 bytes and
 * anything but printable ASCII in it shows as '?'. */
static void describe_value(const netsnmp_variable_list *vb, char *buf, size_t size) {
        char text[65];
        size_t n;

        if (vb->type == ASN_INTEGER && vb->val.integer)
                snprintf(buf, size, "%ld", *vb->val.integer);
        else if (vb->type == ASN_OCTET_STR) {
                n = vb->val.string ? (vb->val_len < 64 ? vb->val_len : 64) : 0;
                for (size_t i = 0; i < n; i++) {
                        unsigned char c = vb->val.string[i];
                        text[i] = c >= 0x20 && c <= 0x7e ? (char) c : '?';
                }
                text[n] = '\0';
                snprintf(buf, size, "\"%s\"", text);
        } else
                snprintf(buf, size, "(ASN type 0x%02x)", (unsigned) vb->type);
}

static void log_set(const struct pdu_instance *in, netsnmp_agent_request_info *reqinfo,
                    const netsnmp_variable_list *vb, const char *outcome) {
        char who[256], value[96], target[64];

        describe_requester(reqinfo->asp ? reqinfo->asp->pdu : NULL, who, sizeof who);
        describe_value(vb, value, sizeof value);
        if (in->outlet)
                snprintf(target, sizeof target, "outlet %u (\"%s\")", in->outlet->number,
                         in->outlet->name);
        else
                snprintf(target, sizeof target, "all outlets");
        log_info("SET from %s: %s %s.%u = %s: %s", who, target, in->def->name,
                 in->outlet ? in->outlet->number : 0, value, outcome);
}

/* "rPDUOutletControlOutletCommand.2" for one of our instances, else the
 * numeric OID. */
static void object_name(const oid *name, size_t len, char *buf, size_t size) {
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(objects); i++)
                if (len == objects[i].base_len + 1 &&
                    snmp_oid_compare(name, objects[i].base_len, objects[i].base,
                                     objects[i].base_len) == 0) {
                        snprintf(buf, size, "%s.%lu", objects[i].name, (unsigned long) name[len - 1]);
                        return;
                }
        buf[0] = '\0';
        for (size_t i = 0; i < len && n < size; i++) {
                int w = snprintf(buf + n, size - n, ".%lu", (unsigned long) name[i]);
                if (w < 0 || (size_t) w >= size - n)
                        break;
                n += (size_t) w;
        }
}

/* Called after VACM's own check of each varbind: a SET that access control
 * refuses (the read-only community, say) never reaches a handler, so it is
 * logged here. Always returns success: it only watches. */
static int on_access_check(int major, int minor, void *serverarg, void *clientarg) {
        const struct view_parameters *view = serverarg;
        const netsnmp_variable_list *vb = NULL;
        char who[256], value[96] = "?", name[256];

        if (!view || !view->pdu || view->pdu->command != SNMP_MSG_SET || view->errorcode == 0)
                return SNMP_ERR_NOERROR;
        for (vb = view->pdu->variables; vb; vb = vb->next_variable)
                if (snmp_oid_compare(vb->name, vb->name_length, view->name, view->namelen) == 0)
                        break;
        describe_requester(view->pdu, who, sizeof who);
        if (vb)
                describe_value(vb, value, sizeof value);
        object_name(view->name, view->namelen, name, sizeof name);
        log_info("SET from %s: %s = %s: refused by access control", who, name, value);
        return SNMP_ERR_NOERROR;
}

/* RESERVE1: the value's type, length and range. Returns an SNMP error. */
static int object_check(const struct pdu_instance *in, const netsnmp_variable_list *vb) {
        int r;

        switch (in->def->kind) {
        case OBJECT_OUTLET_COMMAND:
        case OBJECT_SPDU_CTL:
        case OBJECT_DEV_COMMAND:
                r = netsnmp_check_vb_type(vb, ASN_INTEGER);
                if (r != SNMP_ERR_NOERROR)
                        return r;
                return action_from_value(in->def->kind, *vb->val.integer) < 0 ?
                        SNMP_ERR_WRONGVALUE : SNMP_ERR_NOERROR;
        case OBJECT_OUTLET_CONFIG_NAME:
                r = netsnmp_check_vb_type_and_max_size(vb, ASN_OCTET_STR, PDU_OUTLET_NAME_MAX);
                if (r != SNMP_ERR_NOERROR)
                        return r;
                return outlet_name_valid((const char *) vb->val.string, vb->val_len) ?
                        SNMP_ERR_NOERROR : SNMP_ERR_WRONGVALUE;
        default:
                return SNMP_ERR_NOTWRITABLE;
        }
}

/* COMMIT: the change itself (it cannot fail for the client any more). */
static void object_set(const struct pdu_instance *in, const netsnmp_variable_list *vb) {
        struct pdu *p = in->pdu;
        enum outlet_action a;
        int r = 0;

        switch (in->def->kind) {
        case OBJECT_OUTLET_COMMAND:
        case OBJECT_SPDU_CTL:
                a = action_from_value(in->def->kind, *vb->val.integer);
                r = outlet_request(in->outlet, a);
                break;
        case OBJECT_DEV_COMMAND:
                a = action_from_value(in->def->kind, *vb->val.integer);
                /* One state file write for all outlets, not one each. */
                pdu_hold_save(p);
                for (unsigned i = 0; i < p->n_outlets && r >= 0; i++)
                        r = outlet_request(&p->outlets[i], a);
                pdu_release_save(p);
                break;
        case OBJECT_OUTLET_CONFIG_NAME:
                r = outlet_rename(in->outlet, (const char *) vb->val.string, vb->val_len);
                break;
        default:
                assert_not_reached();
        }
        if (r < 0)
                log_error_errno(r, "%s: applying the SET failed: %m, ignoring", in->def->name);
}

static int object_handler(netsnmp_mib_handler *handler, netsnmp_handler_registration *reginfo,
                          netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests) {
        const struct pdu_instance *in = reginfo->my_reg_void;

        for (netsnmp_request_info *req = requests; req; req = req->next) {
                int error;

                if (req->processed)
                        continue;
                switch (reqinfo->mode) {
                case MODE_GET:
                        object_get(in, req->requestvb);
                        break;
                case MODE_SET_RESERVE1:
                        error = object_check(in, req->requestvb);
                        if (error != SNMP_ERR_NOERROR) {
                                log_set(in, reqinfo, req->requestvb, snmp_errstring(error));
                                netsnmp_set_request_error(reqinfo, req, error);
                        }
                        break;
                case MODE_SET_COMMIT:
                        log_set(in, reqinfo, req->requestvb, "accepted");
                        object_set(in, req->requestvb);
                        break;
                default:
                        /* RESERVE2, ACTION, FREE, UNDO: nothing is held. */
                        break;
                }
        }
        return SNMP_ERR_NOERROR;
}

/* ==== Registration ==== */

static int register_instance(struct pdu_instance *in) {
        netsnmp_handler_registration *reg;
        oid name[MAX_OID_LEN];
        size_t len = in->def->base_len;

        memcpy(name, in->def->base, len * sizeof(oid));
        name[len++] = in->outlet ? in->outlet->number : 0;
        reg = netsnmp_create_handler_registration(in->def->name, object_handler, name, len,
                                                  in->def->writable ? HANDLER_CAN_RWRITE :
                                                                      HANDLER_CAN_RONLY);
        if (!reg)
                return -ENOMEM;
        reg->my_reg_void = in;
        /* On failure net-snmp frees reg itself. */
        if (netsnmp_register_instance(reg) != MIB_REGISTERED_OK)
                return -EEXIST;
        return 0;
}

static int register_objects(struct pdu *p) {
        size_t n = 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(objects); i++)
                n += objects[i].column ? p->n_outlets : 1;
        p->instances = calloc(n, sizeof(struct pdu_instance));
        if (!p->instances)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(objects); i++)
                for (unsigned k = 0; k < (objects[i].column ? p->n_outlets : 1); k++) {
                        struct pdu_instance *in = &p->instances[p->n_instances++];

                        *in = (struct pdu_instance) {
                                .pdu = p,
                                .def = &objects[i],
                                .outlet = objects[i].column ? &p->outlets[k] : NULL,
                        };
                        r = register_instance(in);
                        if (r < 0)
                                return log_error_errno(r, "Failed to register %s: %m",
                                                       objects[i].name);
                }
        return 0;
}

/* ==== Agent ==== */

/* net-snmp's agent is process-wide state: started once per process. */
static bool agent_initialized;

/* One configuration line, handed to net-snmp's parser when init_snmp()
 * reads its configuration (the values were checked by main.c: no spaces,
 * quotes or comment characters). */
static int remember_line(const char *format, ...) _printf_(1, 2);
static int remember_line(const char *format, ...) {
        _cleanup_free_ char *line = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&line, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        netsnmp_config_remember(line);
        return 0;
}

/* net-snmp keeps its persistent state (SNMPv3 engine ID and boots, USM
 * users) in STATE_DIR/snmp and reads configuration only from there; without
 * a state dir nothing is read or written at all. */
static int setup_persistence(const struct pdu_options *o) {
        _cleanup_free_ char *dir = NULL;

        (void) unsetenv("SNMP_PERSISTENT_FILE");
        (void) unsetenv("SNMP_PERSISTENT_DIR");
        if (!o->state_dir) {
                netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
                return 0;
        }
        if (asprintf(&dir, "%s/%s", o->state_dir, PDU_SNMP_DIR) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create \"%s\": %m", dir);
        if (setenv("SNMPCONFPATH", dir, 1) < 0)
                return negative_errno();
        netsnmp_ds_set_string(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_PERSISTENT_DIR, dir);
        return 0;
}

static int setup_access(const struct pdu_options *o) {
        int r;

        r = remember_line("rocommunity %s default", o->community_ro);
        if (r >= 0)
                r = remember_line("rwcommunity %s default", o->community_rw);
        if (r >= 0 && o->v3_user) {
                r = remember_line("createUser %s SHA %s AES %s", o->v3_user,
                                  o->v3_auth_password, o->v3_priv_password);
                if (r >= 0)
                        r = remember_line("rwuser %s priv", o->v3_user);
        }
        return r;
}

int pdu_agent_start(struct pdu *p) {
        const struct pdu_options *o = p->options;
        char ports[96];
        int r;

        /* No MIB files: every OID is numeric. */
        (void) setenv("MIBS", "", 1);
        snmp_enable_stderrlog();
        netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_ROLE, 0);
        /* Alarms run from the loop, never from a SIGALRM handler. */
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_ALARM_DONT_USE_SIG, 1);
        /* No "Connection from" line for every request. */
        netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID,
                               NETSNMP_DS_AGENT_DONT_LOG_TCPWRAPPERS_CONNECTS, 1);
        snprintf(ports, sizeof ports, "udp:%s:%u", o->listen_address, o->port);
        netsnmp_ds_set_string(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_PORTS, ports);
        r = setup_persistence(o);
        if (r < 0)
                return r;

        /* Not the SMUX module (it would listen on TCP port 199 of every
         * address): UDP on the one address is all we serve. */
        add_to_init_list((char *) "-smux");
        if (init_agent(PDU_APP_NAME) != 0)
                return log_error_errno(-EIO, "Failed to initialize the net-snmp agent");
        agent_initialized = true;
        r = register_objects(p);
        if (r < 0)
                return r;
        /* No client argument: net-snmp frees it at shutdown. */
        if (netsnmp_register_callback(SNMP_CALLBACK_APPLICATION, SNMPD_CALLBACK_ACM_CHECK,
                                      on_access_check, NULL, NETSNMP_CALLBACK_LOWEST_PRIORITY) !=
            SNMPERR_SUCCESS)
                return -ENOMEM;
        r = setup_access(o);
        if (r < 0)
                return r;
        init_snmp(PDU_APP_NAME);
        if (init_master_agent() != 0)
                return log_error_errno(-EADDRNOTAVAIL, "Failed to listen on %s", ports);
        return 0;
}

void pdu_agent_stop(struct pdu *p) {
        if (agent_initialized) {
                snmp_shutdown(PDU_APP_NAME);
                shutdown_master_agent();
                shutdown_agent();
                agent_initialized = false;
        }
        free(p->instances);
        p->instances = NULL;
        p->n_instances = 0;
}
