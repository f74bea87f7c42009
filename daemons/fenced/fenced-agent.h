/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fence-agents driver of haven-fenced: finds the installed agents
 * (/usr/sbin/fence_*), reads and caches their metadata (libxml2), validates
 * a device's parameters against it, builds the key=value text an agent reads
 * on stdin, runs the agent with a timeout (haven/exec.h) and turns its exit
 * status and output into an outcome and one line for the administrator.
 * Must not: run anything but an agent of the agent directory, pass a value
 * that could start a new stdin line, block the loop (the *_async/run forms),
 * or log above debug.
 */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "haven/exec.h"
#include "haven/macro.h"

#define FENCE_AGENT_DIRECTORY_DEFAULT "/usr/sbin"
/* "fence_" and [a-z0-9_], at most this many characters in all. */
#define FENCE_AGENT_NAME_MAX 64
/* Metadata XML larger than this is refused (-E2BIG). */
#define FENCE_AGENT_METADATA_MAX (1024u * 1024u)
/* A parameter value, in characters (UTF-8 code points). */
#define FENCE_AGENT_VALUE_MAX 1024
/* The administrator's message from fence_agent_outcome(), in bytes. */
#define FENCE_AGENT_MESSAGE_MAX 512
/* Entries fence_agent_parse_list() accepts before giving up (-E2BIG). */
#define FENCE_AGENT_LIST_MAX 4096

/* ==== Discovery ==== */

/* true for "fence_" followed by one or more of [a-z0-9_], at most
 * FENCE_AGENT_NAME_MAX characters. NULL is not valid. */
bool fence_agent_name_is_valid(const char *name);

/* Process-wide: the directory agents are looked up in (default
 * FENCE_AGENT_DIRECTORY_DEFAULT; tests point it at a temporary directory).
 * directory must be absolute; NULL restores the default. Drops the metadata
 * cache. Returns 0, -EINVAL for a relative path, -ENOMEM. */
int fence_agent_set_directory(const char *directory);
const char *fence_agent_get_directory(void);

/* The installed agents: the executable regular files (symlinks followed)
 * of the agent directory whose names are valid agent names, sorted by
 * strcmp, at most 4096 of them. Returns the count and *ret_names
 * (NULL-terminated, owned by the caller: strv_free), or -errno from opendir().
 */
int fence_agent_list(char ***ret_names);

/* The absolute path of agent name. Returns 0 and *ret_path (owned by the
 * caller), -EINVAL for an invalid name ("../bin/sh", "fence_x;rm"),
 * -ENOENT when it is not installed, -EACCES when it is not an executable
 * regular file. */
int fence_agent_path(const char *name, char **ret_path);

/* ==== Metadata ==== */

enum fence_agent_type {
        FENCE_AGENT_TYPE_STRING,
        FENCE_AGENT_TYPE_INTEGER,
        FENCE_AGENT_TYPE_BOOLEAN,
        FENCE_AGENT_TYPE_SECOND,
        FENCE_AGENT_TYPE_SELECT,
        _FENCE_AGENT_TYPE_MAX,
        _FENCE_AGENT_TYPE_INVALID = -EINVAL,
};

/* "string", "integer", "boolean", "second", "select"; NULL if out of range. */
const char *fence_agent_type_to_string(enum fence_agent_type t);

struct fence_agent_parameter {
        char *name;
        enum fence_agent_type type; /* an unknown type reads as STRING */
        bool required;
        bool deprecated;
        char *obsoletes;     /* the older name this one replaces, or NULL */
        char *replaced_by;   /* deprecated: the parameter replacing it, or
                              * NULL when the agent names none */
        char *default_value; /* NULL when the agent declares none */
        char *shortdesc;     /* never NULL, may be "" */
        char **values;       /* SELECT: the allowed values, NULL-terminated
                              * (may be empty); NULL for other types */
        size_t n_values;
};

/* What `AGENT -o metadata` declares. Read-only once parsed (it is shared
 * through the cache); reference counted. */
struct fence_agent_metadata {
        unsigned n_ref;
        char *name;      /* the agent's own name, e.g. "fence_apc_snmp" */
        char *shortdesc; /* never NULL, may be "" */
        char *longdesc;  /* never NULL, may be "" */
        struct fence_agent_parameter *parameters; /* in document order */
        size_t n_parameters;
        char **actions; /* NULL-terminated, in document order */
        size_t n_actions;
};

/* Parses metadata XML (xml[0..size), need not be NUL-terminated) with
 * libxml2: no network, no DTD loading, no entity substitution; a document
 * with a DOCTYPE is refused. Parameters whose names are not valid keys and
 * repeated parameters or actions are skipped. Returns 0 and *ret (one
 * reference), -E2BIG above FENCE_AGENT_METADATA_MAX, -EBADMSG when the XML
 * is malformed or is not <resource-agent name=...> metadata (or declares
 * more than 1024 parameters, 64 actions or 256 values of a select), or
 * -ENOMEM. */
int fence_agent_metadata_parse(const char *xml, size_t size,
                               struct fence_agent_metadata **ret);
/* Takes a reference; NULL ok. Returns m. */
struct fence_agent_metadata *
fence_agent_metadata_ref(struct fence_agent_metadata *m);
/* Drops a reference (frees on the last); NULL ok. Returns NULL. */
struct fence_agent_metadata *
fence_agent_metadata_free(struct fence_agent_metadata *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct fence_agent_metadata *,
                            fence_agent_metadata_free)

/* The parameter called name (deprecated ones included), or NULL. */
const struct fence_agent_parameter *
fence_agent_metadata_parameter(const struct fence_agent_metadata *m,
                               const char *name);
/* Whether the agent declares action (e.g. "list", "reboot"). */
bool fence_agent_metadata_has_action(const struct fence_agent_metadata *m,
                                     const char *action);
/* Whether the agent requires "ip": a device of this agent then needs an
 * address (Haven passes it as ip=). */
bool fence_agent_requires_address(const struct fence_agent_metadata *m);

/* For the API and the UI: {"agent", "shortdesc", "longdesc", "parameters":
 * [{"name", "type", "required", "default" (string or null), "description",
 * "managed", "values" (select only)}], "actions": [...]}. Deprecated
 * parameters and those Haven refuses (see fence_agent_validate) are left
 * out; the ones Haven fills in itself (action, ip, plug) have "managed":
 * true so that the UI hides them. Returns a new object, or NULL on -ENOMEM. */
struct json_object *
fence_agent_metadata_to_json(const struct fence_agent_metadata *m);

/* Runs `AGENT -o metadata` synchronously (its own private loop: for the CLI
 * and tests) bounded by timeout_usec (> 0), and parses the output. Answers
 * from the process-wide cache when it can (metadata does not change while
 * the process runs; fence_agent_cache_flush() forgets it). Returns 0 and
 * *ret (a reference: fence_agent_metadata_free), -EINVAL for an invalid
 * name or a zero timeout, -ENOENT when not installed, -ETIMEDOUT, -EPROTO
 * when the agent exited with a failure or was killed, the parse errors, or
 * another -errno when it could not run. */
int fence_agent_metadata_load(const char *name, uint64_t timeout_usec,
                              struct fence_agent_metadata **ret);

/* r as for fence_agent_metadata_load(); m is a reference the callback owns
 * (NULL when r < 0). */
typedef void (*fence_agent_metadata_done_t)(int r,
                                            struct fence_agent_metadata *m,
                                            void *userdata);
struct fence_agent_metadata_load;

/* The daemon's form: runs `AGENT -o metadata` on loop e (SIGCHLD must be
 * blocked, see haven_loop_new()) and calls done once, from the loop, never
 * from inside this call (a cache hit is delivered on the next iteration).
 * Returns 0 and *ret (owned by the caller: freeing it before done cancels
 * the load and kills the agent; it may be freed inside done), or -EINVAL,
 * -ENOENT, -errno when it cannot start. If ret is NULL the load frees itself
 * after done. */
int fence_agent_metadata_load_async(sd_event *e, const char *name,
                                    uint64_t timeout_usec,
                                    fence_agent_metadata_done_t done,
                                    void *userdata,
                                    struct fence_agent_metadata_load **ret);
struct fence_agent_metadata_load *
fence_agent_metadata_load_free(struct fence_agent_metadata_load *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct fence_agent_metadata_load *,
                            fence_agent_metadata_load_free)

/* Forgets every cached metadata (references held elsewhere stay valid). */
void fence_agent_cache_flush(void);

/* ==== Validation ==== */

/* Checks a fence-agent device's parameters object against the agent's
 * metadata m:
 * - "agent" is a string naming an installed agent (a valid name);
 * - every other key is a valid key ([A-Za-z0-9][A-Za-z0-9_.-]*, at most 64)
 *   that m declares; a deprecated name with a replacement is refused
 *   ("use \"username\""), so a configuration holds only current names;
 * - keys Haven sets itself are refused: action, ip/ipaddr (the device's
 *   address), plug/port (the outlet), nodename; and keys that would defeat
 *   fencing or run a program of the administrator's choice: help, version,
 *   separator, debug/debug_file, ssh_options, *_path, *_script;
 * - values match the declared type: string (JSON string or integer),
 *   integer (JSON integer or decimal string), second (a non-negative whole
 *   number, JSON or decimal string: the agents read seconds with int()),
 *   boolean (JSON bool or 1/0/yes/no/on/off/true/false, any case), select
 *   (one of the values, any case as the agents compare, JSON string or
 *   integer);
 * - every value is at most FENCE_AGENT_VALUE_MAX characters without control
 *   characters (newline, CR, NUL, ...);
 * - every required parameter is present, except those Haven fills in.
 * Returns 0; -EINVAL with *ret_field (the offending key, "agent" for the
 * agent) and *ret_message (a sentence without the key) for the first
 * problem, both owned by the caller (each pointer may be NULL); -ENOMEM. */
int fence_agent_validate(const struct fence_agent_metadata *m,
                         struct json_object *parameters, char **ret_field,
                         char **ret_message);

/* ==== Running an action ==== */

/* The stdin text for one action: "action=ACTION\n", "ip=ADDRESS\n" when
 * address is not NULL, "plug=OUTLET\n" when outlet is not NULL, then every
 * parameter except "agent", in the object's order, as key=value lines
 * (JSON booleans as 1/0, integers in decimal). The agents strip a line's
 * trailing blanks and one pair of surrounding double quotes, so a value
 * ending in a blank or a non-ASCII character (Python's strip() knows
 * Unicode blanks), or already in double quotes, is written inside double
 * quotes and arrives unchanged. Re-checks what cannot be let through
 * even unvalidated: keys as in fence_agent_validate(), no managed or
 * refused keys, no control characters, no over-long values, no values other
 * than string/integer/bool. parameters may be NULL. Returns 0 and *ret_text
 * (owned by the caller), -EINVAL, -ENOMEM. */
int fence_agent_stdin(const char *address, const char *outlet,
                      const char *action, struct json_object *parameters,
                      char **ret_text);

/* Called once with the agent's exit status and output (borrowed for the
 * call); the same shape as haven_exec_done_t. */
typedef haven_exec_done_t fence_agent_done_t;

/* Starts agent (a name, or the path fence_agent_path() gave for one) with
 * no arguments and stdin_text (NULL or "" for none) on stdin, on loop e,
 * killed after timeout_usec (> 0). Returns 0 and *ret as for
 * haven_exec_start() (ret may be NULL), -EINVAL for a bad name, a path
 * outside the agent directory or a zero timeout, -ENOENT when the agent is
 * not installed, or -errno. */
int fence_agent_run(sd_event *e, const char *agent, const char *stdin_text,
                    uint64_t timeout_usec, fence_agent_done_t done,
                    void *userdata, struct haven_exec **ret);

enum fence_agent_outcome {
        FENCE_AGENT_OK,     /* the action succeeded */
        FENCE_AGENT_ON,     /* status/monitor: the outlet is on (exit 0) */
        FENCE_AGENT_OFF,    /* status/monitor: the outlet is off (exit 2) */
        FENCE_AGENT_FAILED, /* anything else, timeouts and signals included */
        _FENCE_AGENT_OUTCOME_MAX,
        _FENCE_AGENT_OUTCOME_INVALID = -EINVAL,
};

/* "ok", "on", "off", "failed"; NULL if out of range. */
const char *fence_agent_outcome_to_string(enum fence_agent_outcome o);

/* What the run of action says. status: exit 0 → ON, 2 → OFF; monitor:
 * exit 0 → OK, 2 → OFF (a single-outlet device that is off, still
 * reachable); any other action: exit 0 → OK; everything else (other exit
 * codes, a signal, our timeout) → FAILED. *ret_message (may be NULL) gets
 * one line of at most FENCE_AGENT_MESSAGE_MAX bytes, valid UTF-8 without
 * control characters, owned by the caller: for a failure the agent's
 * ERROR lines (timestamps and levels stripped, WARNING/INFO/DEBUG and
 * Python warnings dropped), else the last other line of stderr, else the
 * first line of stdout, else what happened ("exited with status 3");
 * "timed out after 2.0 s" or "killed by signal SIGSEGV" lead when so; for
 * a success the agent's "Success: ..."/"Status: ..." line, else "ok", "on"
 * or "off". *ret_message is NULL only when out of memory. */
enum fence_agent_outcome fence_agent_outcome(const char *action,
                                             const struct haven_exec_result *r,
                                             char **ret_message);

/* Parses the stdout of `list`: "OUTLET,NAME" lines (split at the first
 * comma; NAME may be empty or hold commas) into [{"outlet": "1", "name":
 * "node1"}, ...] in order. Lines without a comma ("N/A", "NOTICE: ..."),
 * with an empty outlet, with control characters or invalid UTF-8 in the
 * outlet, or with an outlet or name over 256 bytes are skipped; spaces
 * around both are trimmed; CR LF is accepted; invalid UTF-8 in a name
 * becomes '?'. Returns 0 and *ret_array (a new reference), -E2BIG beyond
 * FENCE_AGENT_LIST_MAX entries, -ENOMEM. */
int fence_agent_parse_list(const char *text, struct json_object **ret_array);
