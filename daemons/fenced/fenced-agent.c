/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Drives fence-agents scripts (see fenced-agent.h): discovery in the agent
 * directory, metadata (libxml2, cached per process), validation of a
 * device's parameters, the stdin key=value text, the run itself through
 * haven/exec.h, and the reading of exit status and output. Owns the agent
 * directory setting and the metadata cache.
 * Must not: execute anything outside the agent directory, let a value carry
 * a line break into the agent's stdin, expand XML entities or load DTDs, or
 * log above debug.
 */
#include <assert.h>
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "haven/json.h"
#include "haven/log.h"
#include "haven/text.h"

#include "fenced-agent.h"

/* Hard limits on what an agent's metadata may declare: real agents declare
 * at most ~80 parameters, 10 actions and 10 choices. */
#define METADATA_PARAMETERS_MAX 1024
#define METADATA_ACTIONS_MAX 64
#define METADATA_VALUES_MAX 256
#define KEY_MAX 64
#define ACTION_MAX 32
#define LIST_FIELD_MAX 256
#define AGENTS_MAX 4096
#define CACHE_MAX 1024

DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDoc *, xmlFreeDoc)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlParserCtxt *, xmlFreeParserCtxt)

static void xml_freep(xmlChar **p) {
        if (*p)
                xmlFree(*p);
}

/* ==== Text ==== */

/* C0 controls, DEL, and C1 controls (U+0080..U+009F, as UTF-8). */
static bool is_control(const unsigned char *s, size_t len) {
        if (len == 1)
                return s[0] < 0x20 || s[0] == 0x7F;
        return len == 2 && s[0] == 0xC2 && s[1] < 0xA0;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
               c == '\f';
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || is_digit(c);
}

static bool is_alnum(char c) {
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* A parameter key as it may appear on a stdin line. Wider than
 * [a-z0-9_]: current parameters of installed agents are called "tls1.0"
 * (fence_ilo) and "resourceGroup" (fence_azure_arm), deprecated ones
 * "auth-url". None of these characters can end or split a line. */
static bool key_is_valid(const char *key) {
        size_t n = 0;

        if (!key || !is_alnum(key[0]))
                return false;
        for (const char *p = key; *p; p++, n++)
                if (!is_alnum(*p) && *p != '_' && *p != '.' && *p != '-')
                        return false;
        return n <= KEY_MAX;
}

/* on, off, list-status, validate-all, ... */
static bool action_is_valid(const char *action) {
        size_t n = 0;

        if (!action || !is_lower_alnum(action[0]))
                return false;
        for (const char *p = action; *p; p++, n++)
                if (!is_lower_alnum(*p) && *p != '-')
                        return false;
        return n <= ACTION_MAX;
}

/* Why s[0..n) cannot be a value on a stdin line, or NULL when it can:
 * valid UTF-8, no control character (NUL, CR, LF included), at most
 * FENCE_AGENT_VALUE_MAX characters. */
static const char *value_problem(const char *s, size_t n) {
        const unsigned char *u = (const unsigned char *) s;
        size_t characters = 0;

        for (size_t i = 0; i < n;) {
                size_t len = haven_utf8_sequence(u + i, n - i);

                if (len == 0)
                        return "must be valid UTF-8";
                if (is_control(u + i, len))
                        return "must not contain line breaks, NUL or other "
                               "control characters";
                i += len;
                characters++;
        }
        if (characters > FENCE_AGENT_VALUE_MAX)
                return "must be at most 1024 characters";
        return NULL;
}

/* Control characters become spaces in place (newlines too unless
 * keep_newlines); then, unless keep_newlines, runs of spaces collapse to
 * one; leading and trailing blanks go. libxml2 hands out UTF-8 already. */
static void clean_description(char *s, bool keep_newlines) {
        size_t in, out = 0;

        for (in = 0; s[in]; in++) {
                char c = s[in];

                if (((unsigned char) c < 0x20 || c == 0x7F) &&
                    !(keep_newlines && c == '\n'))
                        c = ' ';
                if (!keep_newlines && c == ' ' &&
                    (out == 0 || s[out - 1] == ' '))
                        continue;
                s[out++] = c;
        }
        while (out > 0 && is_blank(s[out - 1]))
                out--;
        s[out] = '\0';

        in = 0;
        while (is_blank(s[in]))
                in++;
        if (in > 0)
                memmove(s, s + in, out - in + 1);
}

/* Bounded one-line text for messages: appended bytes are cleaned (control
 * characters and blank runs become one space, invalid UTF-8 becomes '?'),
 * and what does not fit is cut at a character boundary, ending in "...". */
struct line_text {
        char data[FENCE_AGENT_MESSAGE_MAX + 1];
        size_t size;
        bool cut;
};

static void line_text_append(struct line_text *t, const char *s, size_t n) {
        const unsigned char *u = (const unsigned char *) s;

        for (size_t i = 0; i < n && !t->cut;) {
                size_t len = haven_utf8_sequence(u + i, n - i);
                const char *piece = s + i;
                size_t piece_len = len;

                if (len == 0) {
                        piece = "?";
                        piece_len = 1;
                        len = 1;
                } else if (is_control(u + i, len) || is_blank(s[i])) {
                        i += len;
                        if (t->size == 0 || t->data[t->size - 1] == ' ')
                                continue;
                        piece = " ";
                        piece_len = 1;
                        len = 0;
                }
                if (t->size + piece_len > FENCE_AGENT_MESSAGE_MAX) {
                        t->cut = true;
                        break;
                }
                memcpy(t->data + t->size, piece, piece_len);
                t->size += piece_len;
                t->data[t->size] = '\0';
                i += len;
        }
}

static void line_text_appendf(struct line_text *t, const char *format, ...)
        _printf_(2, 3);
static void line_text_appendf(struct line_text *t, const char *format, ...) {
        char buf[FENCE_AGENT_MESSAGE_MAX + 1];
        va_list ap;
        int n;

        va_start(ap, format);
        n = vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        if (n > 0)
                line_text_append(t, buf, strnlen(buf, sizeof(buf)));
}

/* Trims the trailing space and, if the text was cut, ends it in "...".
 * Returns t->data. */
static const char *line_text_end(struct line_text *t) {
        while (t->size > 0 && t->data[t->size - 1] == ' ')
                t->size--;
        if (t->cut) {
                if (t->size > FENCE_AGENT_MESSAGE_MAX - 3)
                        t->size = FENCE_AGENT_MESSAGE_MAX - 3;
                while (t->size > 0 &&
                       ((unsigned char) t->data[t->size] & 0xC0) == 0x80)
                        t->size--;
                memcpy(t->data + t->size, "...", 3);
                t->size += 3;
                t->cut = false;
        }
        t->data[t->size] = '\0';
        return t->data;
}

/* A copy of the finished text, or NULL on -ENOMEM. */
static char *line_text_finish(struct line_text *t) {
        return strdup(line_text_end(t));
}

/* Splits data[0..size) into lines (LF; a trailing CR stays in the line).
 * Returns false at the end. */
static bool next_line(const char **p, const char *end, const char **ret_line,
                      size_t *ret_len) {
        const char *nl;

        if (*p >= end)
                return false;
        nl = memchr(*p, '\n', (size_t) (end - *p));
        *ret_line = *p;
        *ret_len = (size_t) ((nl ? nl : end) - *p);
        *p = nl ? nl + 1 : end;
        return true;
}

static void trim(const char **s, size_t *n) {
        while (*n > 0 && is_blank(**s)) {
                (*s)++;
                (*n)--;
        }
        while (*n > 0 && is_blank((*s)[*n - 1]))
                (*n)--;
}

static bool starts_with(const char *s, size_t n, const char *prefix) {
        size_t len = strlen(prefix);

        return n >= len && memcmp(s, prefix, len) == 0;
}

/* ==== Discovery ==== */

static char *agent_directory; /* NULL: FENCE_AGENT_DIRECTORY_DEFAULT */

bool fence_agent_name_is_valid(const char *name) {
        if (!name || strncmp(name, "fence_", 6) != 0 || name[6] == '\0' ||
            strlen(name) > FENCE_AGENT_NAME_MAX)
                return false;
        for (const char *p = name + 6; *p; p++)
                if (!is_lower_alnum(*p) && *p != '_')
                        return false;
        return true;
}

const char *fence_agent_get_directory(void) {
        return agent_directory ?: FENCE_AGENT_DIRECTORY_DEFAULT;
}

int fence_agent_set_directory(const char *directory) {
        char *copy = NULL;

        if (directory) {
                size_t n = strlen(directory);

                if (directory[0] != '/')
                        return -EINVAL;
                while (n > 1 && directory[n - 1] == '/')
                        n--;
                copy = strndup(directory, n);
                if (!copy)
                        return -ENOMEM;
        }
        free(agent_directory);
        agent_directory = copy;
        fence_agent_cache_flush();
        return 0;
}

/* 0 if path is an executable regular file (symlinks followed), -ENOENT if
 * nothing is there, -EACCES otherwise. */
static int check_agent_file(const char *path) {
        struct stat st;

        if (stat(path, &st) < 0)
                return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -EACCES;
        if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0)
                return -EACCES;
        return 0;
}

int fence_agent_path(const char *name, char **ret_path) {
        _cleanup_free_ char *path = NULL;
        int r;

        assert(ret_path);

        if (!fence_agent_name_is_valid(name))
                return -EINVAL;
        if (asprintf(&path, "%s/%s", fence_agent_get_directory(), name) < 0)
                return -ENOMEM;
        r = check_agent_file(path);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

int fence_agent_list(char ***ret_names) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        size_t n = 0;
        struct dirent *de;

        assert(ret_names);

        d = opendir(fence_agent_get_directory());
        if (!d)
                return negative_errno();

        names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;

        while ((de = readdir(d)) && n < AGENTS_MAX) {
                _cleanup_free_ char *path = NULL;
                char **grown;

                if (!fence_agent_name_is_valid(de->d_name))
                        continue;
                if (fence_agent_path(de->d_name, &path) < 0)
                        continue; /* not an executable file */

                grown = realloc(names, (n + 2) * sizeof(char *));
                if (!grown)
                        return -ENOMEM;
                names = grown;
                names[n] = strdup(de->d_name);
                if (!names[n])
                        return -ENOMEM;
                names[++n] = NULL;
        }

        qsort(names, n, sizeof(char *), compare_names);
        *ret_names = TAKE_PTR(names);
        return (int) n;
}

/* agent: a valid name, or exactly the path fence_agent_path() returns for
 * one. Anything else (another directory, "..") is -EINVAL. */
static int agent_resolve(const char *agent, char **ret_path) {
        const char *directory = fence_agent_get_directory();
        size_t n = strlen(directory);

        if (!strchr(agent, '/'))
                return fence_agent_path(agent, ret_path);
        if (strncmp(agent, directory, n) != 0 || agent[n] != '/' ||
            !fence_agent_name_is_valid(agent + n + 1))
                return -EINVAL;
        return fence_agent_path(agent + n + 1, ret_path);
}

/* ==== Metadata ==== */

static const char *const type_names[_FENCE_AGENT_TYPE_MAX] = {
        [FENCE_AGENT_TYPE_STRING] = "string",
        [FENCE_AGENT_TYPE_INTEGER] = "integer",
        [FENCE_AGENT_TYPE_BOOLEAN] = "boolean",
        [FENCE_AGENT_TYPE_SECOND] = "second",
        [FENCE_AGENT_TYPE_SELECT] = "select",
};

const char *fence_agent_type_to_string(enum fence_agent_type t) {
        if (t < 0 || t >= _FENCE_AGENT_TYPE_MAX)
                return NULL;
        return type_names[t];
}

static enum fence_agent_type type_from_string(const char *s) {
        for (int t = 0; s && t < _FENCE_AGENT_TYPE_MAX; t++)
                if (streq(s, type_names[t]))
                        return (enum fence_agent_type) t;
        return FENCE_AGENT_TYPE_STRING;
}

static void parameter_done(struct fence_agent_parameter *p) {
        free(p->name);
        free(p->obsoletes);
        free(p->replaced_by);
        free(p->default_value);
        free(p->shortdesc);
        strv_free(p->values);
}

static void metadata_free_now(struct fence_agent_metadata *m) {
        for (size_t i = 0; i < m->n_parameters; i++)
                parameter_done(&m->parameters[i]);
        free(m->parameters);
        strv_free(m->actions);
        free(m->name);
        free(m->shortdesc);
        free(m->longdesc);
        free(m);
}

struct fence_agent_metadata *
fence_agent_metadata_ref(struct fence_agent_metadata *m) {
        if (m)
                m->n_ref++;
        return m;
}

struct fence_agent_metadata *
fence_agent_metadata_free(struct fence_agent_metadata *m) {
        if (!m)
                return NULL;
        assert(m->n_ref > 0);
        if (--m->n_ref == 0)
                metadata_free_now(m);
        return NULL;
}

static bool xml_is(const xmlNode *n, const char *name) {
        return n->type == XML_ELEMENT_NODE &&
               xmlStrEqual(n->name, (const xmlChar *) name);
}

/* The attribute's value in *ret (owned by the caller; NULL when absent).
 * Returns 0 or -ENOMEM. */
static int xml_attribute(const xmlNode *n, const char *name, char **ret) {
        _cleanup_(xml_freep) xmlChar *value = NULL;

        value = xmlGetNoNsProp(n, (const xmlChar *) name);
        if (!value) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup((const char *) value);
        return *ret ? 0 : -ENOMEM;
}

static bool xml_attribute_is(const xmlNode *n, const char *name,
                             const char *expected) {
        _cleanup_(xml_freep) xmlChar *value = NULL;

        value = xmlGetNoNsProp(n, (const xmlChar *) name);
        return value && xmlStrEqual(value, (const xmlChar *) expected);
}

/* The text inside n (all descendants), or "" for no n. */
static int xml_text(const xmlNode *n, char **ret) {
        _cleanup_(xml_freep) xmlChar *content = NULL;

        if (n)
                content = xmlNodeGetContent(n);
        *ret = strdup(content ? (const char *) content : "");
        return *ret ? 0 : -ENOMEM;
}

static const xmlNode *xml_child(const xmlNode *n, const char *name) {
        for (const xmlNode *c = n->children; c; c = c->next)
                if (xml_is(c, name))
                        return c;
        return NULL;
}

/* The <shortdesc> in English (lang="en" or no lang), else the first. */
static const xmlNode *xml_shortdesc(const xmlNode *n) {
        const xmlNode *first = NULL;

        for (const xmlNode *c = n->children; c; c = c->next) {
                _cleanup_(xml_freep) xmlChar *lang = NULL;

                if (!xml_is(c, "shortdesc"))
                        continue;
                lang = xmlGetNoNsProp(c, (const xmlChar *) "lang");
                if (!lang || xmlStrEqual(lang, (const xmlChar *) "en"))
                        return c;
                if (!first)
                        first = c;
        }
        return first;
}

/* Appends a copy of s to the NULL-terminated list *l of *n entries. */
static int strv_push(char ***l, size_t *n, const char *s) {
        char **grown;

        grown = realloc(*l, (*n + 2) * sizeof(char *));
        if (!grown)
                return -ENOMEM;
        *l = grown;
        grown[*n] = strdup(s);
        if (!grown[*n]) {
                grown[*n] = NULL;
                return -ENOMEM;
        }
        grown[++*n] = NULL;
        return 0;
}

static bool strv_contains(char *const *l, const char *s) {
        for (char *const *i = l; i && *i; i++)
                if (streq(*i, s))
                        return true;
        return false;
}

/* <content type=... default=...> and its <option value=...>s into p. */
static int parse_content(const xmlNode *content,
                         struct fence_agent_parameter *p) {
        _cleanup_free_ char *type = NULL;
        size_t seen = 0;
        int r;

        p->type = FENCE_AGENT_TYPE_STRING;
        if (!content)
                return 0;

        r = xml_attribute(content, "type", &type);
        if (r < 0)
                return r;
        p->type = type_from_string(type);
        r = xml_attribute(content, "default", &p->default_value);
        if (r < 0)
                return r;
        if (p->default_value &&
            value_problem(p->default_value, strlen(p->default_value))) {
                free(p->default_value);
                p->default_value = NULL;
        }

        if (p->type != FENCE_AGENT_TYPE_SELECT)
                return 0;
        p->values = calloc(1, sizeof(char *));
        if (!p->values)
                return -ENOMEM;
        for (const xmlNode *o = content->children; o; o = o->next) {
                _cleanup_free_ char *value = NULL;

                if (!xml_is(o, "option"))
                        continue;
                if (++seen > METADATA_VALUES_MAX)
                        return -EBADMSG;
                r = xml_attribute(o, "value", &value);
                if (r < 0)
                        return r;
                if (!value || value[0] == '\0' ||
                    value_problem(value, strlen(value)) ||
                    strv_contains(p->values, value))
                        continue;
                r = strv_push(&p->values, &p->n_values, value);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One <parameter>. Returns 1 and fills *p, 0 when it is to be skipped (no
 * valid name), or -ENOMEM/-EBADMSG. */
static int parse_parameter(const xmlNode *n, struct fence_agent_parameter *p) {
        const xmlNode *shortdesc;
        int r;

        r = xml_attribute(n, "name", &p->name);
        if (r < 0)
                return r;
        if (!key_is_valid(p->name))
                return 0;

        p->required = xml_attribute_is(n, "required", "1");
        p->deprecated = xml_attribute_is(n, "deprecated", "1");
        r = xml_attribute(n, "obsoletes", &p->obsoletes);
        if (r < 0)
                return r;
        if (p->obsoletes && !key_is_valid(p->obsoletes)) {
                free(p->obsoletes);
                p->obsoletes = NULL;
        }

        shortdesc = xml_shortdesc(n);
        r = xml_text(shortdesc, &p->shortdesc);
        if (r < 0)
                return r;
        clean_description(p->shortdesc, false);

        r = parse_content(xml_child(n, "content"), p);
        if (r < 0)
                return r;
        return 1;
}

static int parse_parameters(const xmlNode *parameters,
                            struct fence_agent_metadata *m) {
        size_t seen = 0;
        int r;

        for (const xmlNode *n = parameters ? parameters->children : NULL; n;
             n = n->next) {
                struct fence_agent_parameter p = {};
                struct fence_agent_parameter *grown;

                if (!xml_is(n, "parameter"))
                        continue;
                if (++seen > METADATA_PARAMETERS_MAX)
                        return -EBADMSG;

                r = parse_parameter(n, &p);
                if (r <= 0 || fence_agent_metadata_parameter(m, p.name)) {
                        parameter_done(&p);
                        if (r < 0)
                                return r;
                        continue;
                }

                grown = realloc(m->parameters,
                                (m->n_parameters + 1) * sizeof(*grown));
                if (!grown) {
                        parameter_done(&p);
                        return -ENOMEM;
                }
                m->parameters = grown;
                m->parameters[m->n_parameters++] = p;
        }

        /* "password" obsoletes "passwd": passwd is replaced by password. */
        for (size_t i = 0; i < m->n_parameters; i++) {
                struct fence_agent_parameter *old;

                if (!m->parameters[i].obsoletes)
                        continue;
                old = (struct fence_agent_parameter *)
                        fence_agent_metadata_parameter(
                                m, m->parameters[i].obsoletes);
                if (!old || old == &m->parameters[i] || old->replaced_by)
                        continue;
                old->replaced_by = strdup(m->parameters[i].name);
                if (!old->replaced_by)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_actions(const xmlNode *actions,
                         struct fence_agent_metadata *m) {
        size_t seen = 0;
        int r;

        m->actions = calloc(1, sizeof(char *));
        if (!m->actions)
                return -ENOMEM;
        for (const xmlNode *n = actions ? actions->children : NULL; n;
             n = n->next) {
                _cleanup_free_ char *name = NULL;

                if (!xml_is(n, "action"))
                        continue;
                if (++seen > METADATA_ACTIONS_MAX)
                        return -EBADMSG;
                r = xml_attribute(n, "name", &name);
                if (r < 0)
                        return r;
                if (!action_is_valid(name) || strv_contains(m->actions, name))
                        continue;
                r = strv_push(&m->actions, &m->n_actions, name);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* SAX hook for <!DOCTYPE: the parse stops before any declaration inside
 * is read. Metadata has no DOCTYPE; one would only bring entities. */
static void on_doctype(void *ctx, const xmlChar *name,
                       const xmlChar *external_id, const xmlChar *system_id) {
        xmlStopParser(ctx);
}

int fence_agent_metadata_parse(const char *xml, size_t size,
                               struct fence_agent_metadata **ret) {
        _cleanup_(fence_agent_metadata_freep) struct fence_agent_metadata *m =
                NULL;
        _cleanup_(xmlFreeParserCtxtp) xmlParserCtxt *ctxt = NULL;
        _cleanup_(xmlFreeDocp) xmlDoc *doc = NULL;
        const xmlNode *root;
        int r;

        assert(xml || size == 0);
        assert(ret);

        if (size > FENCE_AGENT_METADATA_MAX)
                return -E2BIG;
        if (size == 0)
                return -EBADMSG;

        xmlInitParser();
        ctxt = xmlNewParserCtxt();
        if (!ctxt)
                return -ENOMEM;
        ctxt->sax->internalSubset = on_doctype;
        /* No XML_PARSE_NOENT (entities stay unexpanded), no DTDLOAD or
         * DTDVALID (nothing external is read), NONET in case. Errors are
         * ours to report, not libxml2's to print. */
        doc = xmlCtxtReadMemory(ctxt, xml, (int) size, "metadata.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR |
                                        XML_PARSE_NOWARNING |
                                        XML_PARSE_NOCDATA);
        if (!doc || ctxt->errNo == XML_ERR_USER_STOP || doc->intSubset ||
            doc->extSubset)
                return -EBADMSG;
        root = xmlDocGetRootElement(doc);
        if (!root || !xml_is(root, "resource-agent"))
                return -EBADMSG;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->n_ref = 1;

        r = xml_attribute(root, "name", &m->name);
        if (r < 0)
                return r;
        if (!m->name || m->name[0] == '\0' ||
            strlen(m->name) > FENCE_AGENT_NAME_MAX ||
            value_problem(m->name, strlen(m->name)))
                return -EBADMSG;

        r = xml_attribute(root, "shortdesc", &m->shortdesc);
        if (r < 0)
                return r;
        if (!m->shortdesc) {
                m->shortdesc = strdup("");
                if (!m->shortdesc)
                        return -ENOMEM;
        }
        clean_description(m->shortdesc, false);

        r = xml_text(xml_child(root, "longdesc"), &m->longdesc);
        if (r < 0)
                return r;
        clean_description(m->longdesc, true);

        r = parse_parameters(xml_child(root, "parameters"), m);
        if (r < 0)
                return r;
        r = parse_actions(xml_child(root, "actions"), m);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

const struct fence_agent_parameter *
fence_agent_metadata_parameter(const struct fence_agent_metadata *m,
                               const char *name) {
        assert(m);

        for (size_t i = 0; name && i < m->n_parameters; i++)
                if (streq(m->parameters[i].name, name))
                        return &m->parameters[i];
        return NULL;
}

bool fence_agent_metadata_has_action(const struct fence_agent_metadata *m,
                                     const char *action) {
        assert(m);
        return action && strv_contains(m->actions, action);
}

bool fence_agent_requires_address(const struct fence_agent_metadata *m) {
        const struct fence_agent_parameter *ip;

        ip = fence_agent_metadata_parameter(m, "ip");
        return ip && ip->required;
}

/* ==== Keys Haven sets or refuses ==== */

enum key_policy {
        KEY_ALLOWED,
        KEY_MANAGED, /* Haven writes it for every run */
        KEY_REFUSED, /* would defeat fencing or run what the admin chooses */
};

static const struct {
        const char *key;
        enum key_policy policy;
        const char *why;
} key_table[] = {
        {"action", KEY_MANAGED, "is set by Haven for each operation"},
        {"ip", KEY_MANAGED, "is set by Haven from the device's address"},
        {"ipaddr", KEY_MANAGED, "is set by Haven from the device's address"},
        {"plug", KEY_MANAGED, "is set by Haven from each node's outlet"},
        {"port", KEY_MANAGED, "is set by Haven from each node's outlet"},
        {"nodename", KEY_MANAGED, "is set by Haven"},
        {"help", KEY_REFUSED,
         "is not allowed: the agent would exit with success without fencing"},
        {"version", KEY_REFUSED,
         "is not allowed: the agent would exit with success without fencing"},
        {"separator", KEY_REFUSED,
         "is not allowed: Haven reads the outlet list with the default "
         "separator"},
        {"debug", KEY_REFUSED,
         "is not allowed: it makes the agent write a file of your choice"},
        {"debug_file", KEY_REFUSED,
         "is not allowed: it makes the agent write a file of your choice"},
        {"ssh_options", KEY_REFUSED,
         "is not allowed: it can make ssh run commands of your choice"},
};

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);

        return n >= k && streq(s + n - k, suffix);
}

/* What Haven does with key; *ret_why (may be NULL) says why it is not
 * the administrator's to set (a sentence without the key). */
static enum key_policy key_policy(const char *key, const char **ret_why) {
        const char *why = NULL;
        enum key_policy policy = KEY_ALLOWED;

        for (size_t i = 0; i < ELEMENTSOF(key_table); i++)
                if (streq(key, key_table[i].key)) {
                        policy = key_table[i].policy;
                        why = key_table[i].why;
                }
        if (policy == KEY_ALLOWED && ends_with(key, "_path")) {
                policy = KEY_REFUSED;
                why = "is not allowed: it makes the agent run a program of "
                      "your choice";
        } else if (policy == KEY_ALLOWED && ends_with(key, "_script")) {
                policy = KEY_REFUSED;
                why = "is not allowed: it makes the agent run a command of "
                      "your choice";
        }
        if (ret_why)
                *ret_why = why;
        return policy;
}

/* Whether the administrator may set p: not refused, and not a deprecated
 * name that has a replacement. Managed keys are not settable either, but
 * are shown (marked) to the UI. */
static bool parameter_is_offered(const struct fence_agent_parameter *p) {
        return key_policy(p->name, NULL) != KEY_REFUSED &&
               !(p->deprecated && p->replaced_by);
}

/* ==== Metadata for the API ==== */

/* Appends a new string s to array a. Returns 0 or -ENOMEM. */
static int json_array_add_string(struct json_object *a, const char *s) {
        struct json_object *v = json_object_new_string(s);

        if (!v)
                return -ENOMEM;
        if (json_object_array_add(a, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static struct json_object *
parameter_to_json(const struct fence_agent_parameter *p) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *values, *default_value = NULL;
        bool managed = key_policy(p->name, NULL) == KEY_MANAGED;

        o = json_object_new_object();
        if (!o)
                return NULL;
        if (haven_json_add(o, "name", json_object_new_string(p->name)) < 0 ||
            haven_json_add(o, "type",
                           json_object_new_string(
                                   fence_agent_type_to_string(p->type))) < 0 ||
            haven_json_add(o, "required",
                           json_object_new_boolean(p->required)) < 0)
                return NULL;

        /* JSON null when there is no default (json-c's NULL). */
        if (p->default_value) {
                default_value = json_object_new_string(p->default_value);
                if (!default_value)
                        return NULL;
        }
        if (json_object_object_add(o, "default", default_value) < 0) {
                json_object_put(default_value);
                return NULL;
        }

        if (haven_json_add(o, "description",
                           json_object_new_string(p->shortdesc)) < 0 ||
            haven_json_add(o, "managed", json_object_new_boolean(managed)) < 0)
                return NULL;

        if (p->type != FENCE_AGENT_TYPE_SELECT)
                return TAKE_PTR(o);
        values = json_object_new_array();
        if (!values || haven_json_add(o, "values", values) < 0)
                return NULL;
        for (size_t i = 0; i < p->n_values; i++)
                if (json_array_add_string(values, p->values[i]) < 0)
                        return NULL;
        return TAKE_PTR(o);
}

struct json_object *
fence_agent_metadata_to_json(const struct fence_agent_metadata *m) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *parameters, *actions;

        assert(m);

        o = json_object_new_object();
        if (!o)
                return NULL;
        if (haven_json_add(o, "agent", json_object_new_string(m->name)) < 0 ||
            haven_json_add(o, "shortdesc",
                           json_object_new_string(m->shortdesc)) < 0 ||
            haven_json_add(o, "longdesc", json_object_new_string(m->longdesc)) <
                    0)
                return NULL;
        parameters = json_object_new_array();
        if (!parameters || haven_json_add(o, "parameters", parameters) < 0)
                return NULL;
        actions = json_object_new_array();
        if (!actions || haven_json_add(o, "actions", actions) < 0)
                return NULL;

        for (size_t i = 0; i < m->n_parameters; i++) {
                struct json_object *p;

                if (!parameter_is_offered(&m->parameters[i]))
                        continue;
                p = parameter_to_json(&m->parameters[i]);
                if (!p || json_object_array_add(parameters, p) < 0) {
                        json_object_put(p);
                        return NULL;
                }
        }
        for (size_t i = 0; i < m->n_actions; i++)
                if (json_array_add_string(actions, m->actions[i]) < 0)
                        return NULL;
        return TAKE_PTR(o);
}

/* ==== Cache and loading ==== */

struct cache_entry {
        char *name;
        struct fence_agent_metadata *metadata;
};

/* Metadata by agent name, for the agent directory in use. */
static struct cache_entry *cache;
static size_t n_cache;

void fence_agent_cache_flush(void) {
        for (size_t i = 0; i < n_cache; i++) {
                free(cache[i].name);
                fence_agent_metadata_free(cache[i].metadata);
        }
        free(cache);
        cache = NULL;
        n_cache = 0;
}

/* A new reference to the cached metadata of name, or NULL. */
static struct fence_agent_metadata *cache_get(const char *name) {
        for (size_t i = 0; i < n_cache; i++)
                if (streq(cache[i].name, name))
                        return fence_agent_metadata_ref(cache[i].metadata);
        return NULL;
}

/* Remembers m for name (a reference of its own) unless the cache has an
 * entry already or is full. Out of memory only means no caching. */
static void cache_put(const char *name, struct fence_agent_metadata *m) {
        struct cache_entry *grown;
        char *copy;

        for (size_t i = 0; i < n_cache; i++)
                if (streq(cache[i].name, name))
                        return;
        if (n_cache >= CACHE_MAX)
                return;
        copy = strdup(name);
        if (!copy)
                return;
        grown = realloc(cache, (n_cache + 1) * sizeof(*grown));
        if (!grown) {
                free(copy);
                return;
        }
        cache = grown;
        cache[n_cache++] = (struct cache_entry){
                .name = copy,
                .metadata = fence_agent_metadata_ref(m),
        };
}

/* How `-o metadata` is run: its stdout may be one byte longer than the
 * limit, so that too much output shows as -E2BIG (output_truncated would
 * also be set by a chatty stderr). */
static const struct haven_exec_options *
metadata_options(uint64_t timeout_usec, struct haven_exec_options *o) {
        *o = (struct haven_exec_options){
                .timeout_usec = timeout_usec,
                .max_output = FENCE_AGENT_METADATA_MAX + 1,
        };
        return o;
}

/* The metadata a finished `-o metadata` run printed, cached for name. */
static int metadata_from_result(const char *name,
                                const struct haven_exec_result *result,
                                struct fence_agent_metadata **ret) {
        struct fence_agent_metadata *m = NULL;
        int r;

        if (result->timed_out)
                return -ETIMEDOUT;
        if (result->code != CLD_EXITED || result->status != 0) {
                log_debug("Fence agent \"%s\" failed to print its metadata "
                          "(code %d, status %d).",
                          name, result->code, result->status);
                return -EPROTO;
        }
        r = fence_agent_metadata_parse(result->stdout_data, result->stdout_size,
                                       &m);
        if (r < 0)
                return log_debug_errno(r,
                                       "Metadata of fence agent \"%s\" is "
                                       "not usable: %m",
                                       name);
        cache_put(name, m);
        *ret = m;
        return 0;
}

int fence_agent_metadata_load(const char *name, uint64_t timeout_usec,
                              struct fence_agent_metadata **ret) {
        _cleanup_free_ char *path = NULL;
        struct haven_exec_result result = {};
        struct haven_exec_options options;
        int r;

        assert(ret);

        if (!fence_agent_name_is_valid(name) || timeout_usec == 0)
                return -EINVAL;
        *ret = cache_get(name);
        if (*ret)
                return 0;

        r = fence_agent_path(name, &path);
        if (r < 0)
                return r;
        r = haven_exec_run(
                (char *const[]){path, (char *) "-o", (char *) "metadata", NULL},
                metadata_options(timeout_usec, &options), &result);
        if (r < 0)
                return r;
        r = metadata_from_result(name, &result, ret);
        haven_exec_result_done(&result);
        return r;
}

struct fence_agent_metadata_load {
        char *name;
        struct haven_exec *exec;          /* running `-o metadata` */
        sd_event_source *defer;           /* or delivering a cache hit */
        struct fence_agent_metadata *hit; /* the cache hit */
        fence_agent_metadata_done_t done;
        void *userdata;
        bool floating, in_done, free_requested;
};

static void load_free_now(struct fence_agent_metadata_load *l) {
        haven_exec_free(l->exec);
        sd_event_source_disable_unref(l->defer);
        fence_agent_metadata_free(l->hit);
        free(l->name);
        free(l);
}

struct fence_agent_metadata_load *
fence_agent_metadata_load_free(struct fence_agent_metadata_load *l) {
        if (!l)
                return NULL;
        if (l->in_done)
                l->free_requested = true;
        else
                load_free_now(l);
        return NULL;
}

/* Calls done once with m (handed over); may free l. */
static void load_finish(struct fence_agent_metadata_load *l, int r,
                        struct fence_agent_metadata *m) {
        l->in_done = true;
        l->done(r, m, l->userdata);
        l->in_done = false;
        if (l->floating || l->free_requested)
                load_free_now(l);
}

static void on_load_exec_done(struct haven_exec *x,
                              const struct haven_exec_result *result,
                              void *userdata) {
        struct fence_agent_metadata_load *l = userdata;
        struct fence_agent_metadata *m = NULL;
        int r;

        r = metadata_from_result(l->name, result, &m);
        /* Inside its own done, the exec only marks itself for freeing. */
        l->exec = haven_exec_free(l->exec);
        load_finish(l, r, m);
}

static int on_load_defer(sd_event_source *s, void *userdata) {
        struct fence_agent_metadata_load *l = userdata;

        l->defer = sd_event_source_disable_unref(l->defer);
        load_finish(l, 0, TAKE_PTR(l->hit));
        return 0;
}

int fence_agent_metadata_load_async(sd_event *e, const char *name,
                                    uint64_t timeout_usec,
                                    fence_agent_metadata_done_t done,
                                    void *userdata,
                                    struct fence_agent_metadata_load **ret) {
        _cleanup_(fence_agent_metadata_load_freep) struct
                fence_agent_metadata_load *l = NULL;
        _cleanup_free_ char *path = NULL;
        struct haven_exec_options options;
        int r;

        assert(e);
        assert(done);

        if (!fence_agent_name_is_valid(name) || timeout_usec == 0)
                return -EINVAL;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->done = done;
        l->userdata = userdata;
        l->name = strdup(name);
        if (!l->name)
                return -ENOMEM;

        l->hit = cache_get(name);
        if (l->hit) {
                r = sd_event_add_defer(e, &l->defer, on_load_defer, l);
                if (r < 0)
                        return r;
        } else {
                r = fence_agent_path(name, &path);
                if (r < 0)
                        return r;
                r = haven_exec_start(e,
                                     (char *const[]){path, (char *) "-o",
                                                     (char *) "metadata", NULL},
                                     metadata_options(timeout_usec, &options),
                                     on_load_exec_done, l, &l->exec);
                if (r < 0)
                        return r;
        }

        if (ret)
                *ret = TAKE_PTR(l);
        else
                TAKE_PTR(l)->floating = true;
        return 0;
}

/* ==== Validation ==== */

/* The text a JSON value is written as on a stdin line: a string as it is,
 * an integer in decimal, a boolean as 1 or 0. Returns 0 and *ret (owned by
 * the caller), -EINVAL for any other type, a string with a NUL inside or
 * an integer beyond int64, -ENOMEM. */
static int value_to_text(struct json_object *v, char **ret) {
        int64_t n;

        switch (json_object_get_type(v)) {
        case json_type_string: {
                const char *s = json_object_get_string(v);
                int len = json_object_get_string_len(v);

                if (len < 0 || strlen(s) != (size_t) len)
                        return -EINVAL;
                *ret = strdup(s);
                break;
        }
        case json_type_int:
                n = json_object_get_int64(v);
                /* json-c saturates a uint64 above INT64_MAX. */
                if (n == INT64_MAX &&
                    json_object_get_uint64(v) != (uint64_t) INT64_MAX)
                        return -EINVAL;
                if (asprintf(ret, "%" PRId64, n) < 0)
                        return -ENOMEM;
                return 0;
        case json_type_boolean:
                *ret = strdup(json_object_get_boolean(v) ? "1" : "0");
                break;
        default:
                return -EINVAL;
        }
        return *ret ? 0 : -ENOMEM;
}

/* [-]digits within int64, nothing else (no sign '+', no spaces). */
static bool decimal_is_valid(const char *s, bool allow_negative) {
        const char *p = s;

        if (allow_negative && *p == '-')
                p++;
        if (*p == '\0')
                return false;
        for (; *p; p++)
                if (!is_digit(*p))
                        return false;
        errno = 0;
        (void) strtoll(s, NULL, 10);
        return errno != ERANGE;
}

static bool boolean_text_is_valid(const char *s) {
        static const char *const words[] = {"1",  "0",   "yes",  "no",
                                            "on", "off", "true", "false"};

        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcasecmp(s, words[i]) == 0)
                        return true;
        return false;
}

static int validation_error(char **ret_field, char **ret_message,
                            const char *field, const char *format, ...)
        _printf_(4, 5);
static int validation_error(char **ret_field, char **ret_message,
                            const char *field, const char *format, ...) {
        _cleanup_free_ char *f = NULL, *message = NULL;
        va_list ap;
        int n;

        if (ret_field) {
                f = strdup(field);
                if (!f)
                        return -ENOMEM;
        }
        if (ret_message) {
                va_start(ap, format);
                n = vasprintf(&message, format, ap);
                va_end(ap);
                if (n < 0)
                        return -ENOMEM;
        }
        if (ret_field)
                *ret_field = TAKE_PTR(f);
        if (ret_message)
                *ret_message = TAKE_PTR(message);
        return -EINVAL;
}

/* "1, 2c, 3", cut with ", ..." beyond a few hundred bytes. */
static char *select_choices(const struct fence_agent_parameter *p) {
        struct line_text t = {};

        for (size_t i = 0; i < p->n_values; i++) {
                size_t len = strlen(p->values[i]);

                if (t.size + len + 2 > 400) {
                        line_text_append(&t, ", ...", 5);
                        break;
                }
                if (i > 0)
                        line_text_append(&t, ", ", 2);
                line_text_append(&t, p->values[i], len);
        }
        return line_text_finish(&t);
}

/* Checks value v of parameter p. Returns 0, -EINVAL with *ret_message (a
 * sentence for the administrator), or -ENOMEM. */
static int check_value(const struct fence_agent_parameter *p,
                       struct json_object *v, char **ret_message) {
        enum json_type type = json_object_get_type(v);
        _cleanup_free_ char *text = NULL;
        const char *problem = NULL;
        int r;

        r = value_to_text(v, &text);
        if (r == -ENOMEM)
                return r;
        if (r < 0 && type == json_type_string)
                problem = "must not contain line breaks, NUL or other "
                          "control characters";
        else if (r < 0)
                problem = "must be a string, a whole number or true/false";
        else
                problem = value_problem(text, strlen(text));

        if (!problem)
                switch (p->type) {
                case FENCE_AGENT_TYPE_STRING:
                        if (type == json_type_boolean)
                                problem = "must be a string";
                        break;
                case FENCE_AGENT_TYPE_INTEGER:
                        if (type == json_type_boolean ||
                            !decimal_is_valid(text, true))
                                problem = "must be a whole number";
                        break;
                case FENCE_AGENT_TYPE_SECOND:
                        if (type == json_type_boolean ||
                            !decimal_is_valid(text, false))
                                problem = "must be a whole number of seconds "
                                          "(0 or more)";
                        break;
                case FENCE_AGENT_TYPE_BOOLEAN:
                        if (type == json_type_int ||
                            !boolean_text_is_valid(text))
                                problem = "must be true or false (or yes/no, "
                                          "on/off, 1/0)";
                        break;
                case FENCE_AGENT_TYPE_SELECT: {
                        _cleanup_free_ char *choices = NULL;
                        bool found = false;

                        for (size_t i = 0; i < p->n_values && !found; i++)
                                found = strcasecmp(text, p->values[i]) == 0;
                        if (found && type != json_type_boolean)
                                break;
                        choices = select_choices(p);
                        if (!choices ||
                            asprintf(ret_message, "must be one of: %s",
                                     choices) < 0)
                                return -ENOMEM;
                        return -EINVAL;
                }
                default:
                        assert_not_reached();
                }

        if (!problem)
                return 0;
        *ret_message = strdup(problem);
        return *ret_message ? -EINVAL : -ENOMEM;
}

/* The "agent" entry: a valid name of an installed agent. */
static int check_agent(struct json_object *parameters, char **ret_field,
                       char **ret_message) {
        _cleanup_free_ char *path = NULL;
        struct json_object *v = NULL;
        const char *name;
        int r;

        if (!json_object_object_get_ex(parameters, "agent", &v) || !v)
                return validation_error(ret_field, ret_message, "agent",
                                        "is required: the name of a fence "
                                        "agent, e.g. fence_ipmilan");
        if (!json_object_is_type(v, json_type_string))
                return validation_error(ret_field, ret_message, "agent",
                                        "must be the name of a fence agent");
        name = json_object_get_string(v);
        if (strlen(name) != (size_t) json_object_get_string_len(v) ||
            !fence_agent_name_is_valid(name))
                return validation_error(ret_field, ret_message, "agent",
                                        "must be the name of a fence agent: "
                                        "fence_ followed by lower-case "
                                        "letters, digits or '_', at most 64 "
                                        "characters");
        r = fence_agent_path(name, &path);
        if (r == -ENOENT)
                return validation_error(ret_field, ret_message, "agent",
                                        "fence agent \"%s\" is not installed",
                                        name);
        if (r < 0)
                return validation_error(ret_field, ret_message, "agent",
                                        "\"%s\" is not an executable fence "
                                        "agent",
                                        name);
        return 0;
}

int fence_agent_validate(const struct fence_agent_metadata *m,
                         struct json_object *parameters, char **ret_field,
                         char **ret_message) {
        int r;

        assert(m);

        if (!json_object_is_type(parameters, json_type_object))
                return validation_error(ret_field, ret_message, "parameters",
                                        "must be an object");
        r = check_agent(parameters, ret_field, ret_message);
        if (r < 0)
                return r;

        json_object_object_foreach(parameters, key, value) {
                const struct fence_agent_parameter *p;
                _cleanup_free_ char *message = NULL;
                const char *why;

                if (streq(key, "agent"))
                        continue;
                if (!key_is_valid(key))
                        return validation_error(
                                ret_field, ret_message, key,
                                "is not a valid parameter name (letters, "
                                "digits, '_', '.' or '-', at most 64 "
                                "characters)");
                if (key_policy(key, &why) != KEY_ALLOWED)
                        return validation_error(ret_field, ret_message, key,
                                                "%s", why);
                p = fence_agent_metadata_parameter(m, key);
                if (!p)
                        return validation_error(ret_field, ret_message, key,
                                                "is not a parameter of %s",
                                                m->name);
                if (p->deprecated && p->replaced_by)
                        return validation_error(ret_field, ret_message, key,
                                                "is deprecated: use \"%s\"",
                                                p->replaced_by);
                r = check_value(p, value, &message);
                if (r == -EINVAL)
                        return validation_error(ret_field, ret_message, key,
                                                "%s", message);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < m->n_parameters; i++) {
                const struct fence_agent_parameter *p = &m->parameters[i];

                if (!p->required || p->deprecated ||
                    key_policy(p->name, NULL) == KEY_MANAGED ||
                    json_object_object_get_ex(parameters, p->name, NULL))
                        continue;
                return validation_error(ret_field, ret_message, p->name,
                                        "is required by %s", m->name);
        }
        return 0;
}

/* ==== Running an action ==== */

/* The agents strip a line's trailing blanks and one pair of double quotes
 * around the value (fencing.py: line.strip(), then ^"(.*)"$). Quoting a
 * value that ends in a blank (or in a non-ASCII character, which Python
 * may take for one) or is already quoted keeps it whole. */
static bool value_needs_quotes(const char *v) {
        size_t n = strlen(v);

        if (n == 0)
                return false;
        if (is_blank(v[n - 1]) || (unsigned char) v[n - 1] >= 0x80)
                return true;
        return n >= 2 && v[0] == '"' && v[n - 1] == '"';
}

static void write_line(FILE *f, const char *key, const char *value) {
        if (value_needs_quotes(value))
                fprintf(f, "%s=\"%s\"\n", key, value);
        else
                fprintf(f, "%s=%s\n", key, value);
}

static bool line_value_is_valid(const char *v) {
        return v[0] != '\0' && !value_problem(v, strlen(v));
}

int fence_agent_stdin(const char *address, const char *outlet,
                      const char *action, struct json_object *parameters,
                      char **ret_text) {
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;
        int r;

        assert(ret_text);

        if (!action_is_valid(action) ||
            (address && !line_value_is_valid(address)) ||
            (outlet && !line_value_is_valid(outlet)) ||
            (parameters && !json_object_is_type(parameters, json_type_object)))
                return -EINVAL;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;

        fprintf(f, "action=%s\n", action);
        if (address)
                write_line(f, "ip", address);
        if (outlet)
                write_line(f, "plug", outlet);
        if (parameters) {
                json_object_object_foreach(parameters, key, value) {
                        _cleanup_free_ char *v = NULL;

                        if (streq(key, "agent"))
                                continue;
                        /* A managed key would override ours: the last
                         * value of a key wins. */
                        if (!key_is_valid(key) ||
                            key_policy(key, NULL) != KEY_ALLOWED)
                                return -EINVAL;
                        r = value_to_text(value, &v);
                        if (r < 0)
                                return r;
                        if (value_problem(v, strlen(v)))
                                return -EINVAL;
                        write_line(f, key, v);
                }
        }

        if (fflush(f) != 0 || ferror(f))
                return -ENOMEM;
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        *ret_text = TAKE_PTR(text);
        return 0;
}

int fence_agent_run(sd_event *e, const char *agent, const char *stdin_text,
                    uint64_t timeout_usec, fence_agent_done_t done,
                    void *userdata, struct haven_exec **ret) {
        _cleanup_free_ char *path = NULL;
        struct haven_exec_options options;
        int r;

        assert(e);
        assert(agent);

        if (timeout_usec == 0)
                return -EINVAL;
        r = agent_resolve(agent, &path);
        if (r < 0)
                return r;

        /* No argv: everything goes through stdin, where no value can
         * become an option. */
        options = (struct haven_exec_options){
                .stdin_data = stdin_text,
                .stdin_size = stdin_text ? strlen(stdin_text) : 0,
                .timeout_usec = timeout_usec,
        };
        return haven_exec_start(e, (char *const[]){path, NULL}, &options, done,
                                userdata, ret);
}

/* ==== Outcomes ==== */

static const char *const outcome_names[_FENCE_AGENT_OUTCOME_MAX] = {
        [FENCE_AGENT_OK] = "ok",
        [FENCE_AGENT_ON] = "on",
        [FENCE_AGENT_OFF] = "off",
        [FENCE_AGENT_FAILED] = "failed",
};

const char *fence_agent_outcome_to_string(enum fence_agent_outcome o) {
        if (o < 0 || o >= _FENCE_AGENT_OUTCOME_MAX)
                return NULL;
        return outcome_names[o];
}

enum line_kind {
        LINE_NOISE, /* blank, WARNING/INFO/DEBUG, tracebacks, usage hints */
        LINE_ERROR, /* logged at ERROR or CRITICAL */
        LINE_OTHER, /* anything else: a C agent's message, an exception */
};

/* Skips fencing.py's "%(asctime)" prefix: "2026-11-23 04:19:31,976 ". */
static void skip_timestamp(const char **s, size_t *n) {
        static const char pattern[] = "dddd-dd-dd dd:dd:dd";
        size_t k = strlen(pattern);

        if (*n < k)
                return;
        for (size_t i = 0; i < k; i++)
                if (pattern[i] == 'd' ? !is_digit((*s)[i])
                                      : (*s)[i] != pattern[i])
                        return;
        while (k < *n &&
               ((*s)[k] == ',' || (*s)[k] == '.' || is_digit((*s)[k])))
                k++;
        *s += k;
        *n -= k;
        trim(s, n);
}

/* "/usr/sbin/fence_ipmilan:5: DeprecationWarning: 'pipes' is ...":
 * FILE:LINE: CATEGORYWarning: text, as Python's warnings module prints. */
static bool is_python_warning(const char *s, size_t n) {
        const char *w = memmem(s, n, "Warning: ", 9), *p;

        if (!w)
                return false;
        p = w;
        while (p > s && is_alnum(p[-1]))
                p--;
        if (p - s < 4 || p[-1] != ' ' || p[-2] != ':' || !is_digit(p[-3]))
                return false;
        p -= 3;
        while (p > s && is_digit(p[-1]))
                p--;
        return p > s && p[-1] == ':';
}

/* Lines that never explain a failure: traceback headers, usage hints,
 * debug output, Python's warnings. */
static bool is_noise(const char *s, size_t n) {
        static const char *const noise[] = {
                "Traceback (most recent call last)",
                "During handling of the above exception",
                "The above exception was the direct cause",
                "Please use '-h' for usage",
                "[debug]",
        };

        for (size_t i = 0; i < ELEMENTSOF(noise); i++)
                if (starts_with(s, n, noise[i]))
                        return true;
        return is_python_warning(s, n);
}

static enum line_kind classify_line(const char *line, size_t n,
                                    const char **ret_body, size_t *ret_len) {
        static const char *const levels[] = {"CRITICAL", "ERROR", "WARNING",
                                             "INFO", "DEBUG"};
        const char *s = line;
        size_t len = n;

        /* Indented: a traceback frame or the source line of a warning. */
        if (len > 0 && (s[0] == ' ' || s[0] == '\t'))
                return LINE_NOISE;
        trim(&s, &len);
        skip_timestamp(&s, &len);
        if (len == 0)
                return LINE_NOISE;

        for (size_t i = 0; i < ELEMENTSOF(levels); i++) {
                size_t k = strlen(levels[i]);
                const char *body, *colon;
                size_t body_len;

                if (!starts_with(s, len, levels[i]) || len <= k || s[k] != ':')
                        continue;
                body = s + k + 1;
                body_len = len - k - 1;
                /* "ERROR: text" (fencing.py) or "ERROR:root:text" (Python's
                 * default format, used before fencing.py sets its own). */
                colon = body_len > 0 && body[0] != ' '
                                ? memchr(body, ':', body_len)
                                : NULL;
                if (colon) {
                        body_len -= (size_t) (colon + 1 - body);
                        body = colon + 1;
                }
                trim(&body, &body_len);
                *ret_body = body;
                *ret_len = body_len;
                if (body_len == 0 || i >= 2 || is_noise(body, body_len))
                        return LINE_NOISE;
                return LINE_ERROR;
        }

        if (is_noise(s, len))
                return LINE_NOISE;
        *ret_body = s;
        *ret_len = len;
        return LINE_OTHER;
}

/* Appends to t what the agent said about its failure: its ERROR lines
 * (each once, "; " between), else its last other stderr line, else (if
 * use_stdout) its first stdout line that is not noise. Returns whether it
 * said anything. */
static bool append_agent_failure(struct line_text *t,
                                 const struct haven_exec_result *r,
                                 bool use_stdout) {
        const char *err = r->stderr_data ?: "", *out = r->stdout_data ?: "";
        size_t err_size = r->stderr_data ? r->stderr_size : 0;
        size_t out_size = r->stdout_data ? r->stdout_size : 0;
        size_t len, body_len, start = t->size;
        const char *p, *line, *body;
        struct line_text other = {};

        for (p = err; !t->cut && next_line(&p, err + err_size, &line, &len);) {
                enum line_kind kind =
                        classify_line(line, len, &body, &body_len);
                struct line_text one = {};

                if (kind == LINE_NOISE)
                        continue;
                /* Cleaned first: a line of control characters says
                 * nothing. */
                line_text_append(&one, body, body_len);
                (void) line_text_end(&one);
                if (one.size == 0)
                        continue;
                if (kind == LINE_OTHER) {
                        other = one;
                        continue;
                }
                if (strstr(t->data + start, one.data))
                        continue;
                if (t->size > start)
                        line_text_append(t, "; ", 2);
                line_text_append(t, one.data, one.size);
        }
        if (t->size > start)
                return true;
        if (other.size > 0) {
                line_text_append(t, other.data, other.size);
                return true;
        }

        for (p = out;
             use_stdout && next_line(&p, out + out_size, &line, &len);) {
                struct line_text one = {};

                if (classify_line(line, len, &body, &body_len) == LINE_NOISE)
                        continue;
                line_text_append(&one, body, body_len);
                (void) line_text_end(&one);
                if (one.size == 0)
                        continue;
                line_text_append(t, one.data, one.size);
                return true;
        }
        return false;
}

/* The agent's "Success: Powered OFF" or "Status: ON" line, if any. */
static bool append_success_line(struct line_text *t,
                                const struct haven_exec_result *r) {
        const char *out = r->stdout_data ?: "", *p, *line;
        size_t out_size = r->stdout_data ? r->stdout_size : 0, len;

        for (p = out; next_line(&p, out + out_size, &line, &len);) {
                trim(&line, &len);
                if (starts_with(line, len, "Success:") ||
                    starts_with(line, len, "Status:")) {
                        line_text_append(t, line, len);
                        return true;
                }
        }
        return false;
}

static char *outcome_message(enum fence_agent_outcome o,
                             const struct haven_exec_result *r) {
        struct line_text t = {};

        if (o != FENCE_AGENT_FAILED) {
                if (!append_success_line(&t, r))
                        line_text_append(&t, outcome_names[o],
                                         strlen(outcome_names[o]));
                return line_text_finish(&t);
        }

        if (r->timed_out)
                line_text_appendf(&t, "timed out after %.1f s",
                                  (double) r->duration_usec / 1e6);
        else if (r->code == CLD_KILLED || r->code == CLD_DUMPED) {
                const char *abbrev = sigabbrev_np(r->status);

                if (abbrev)
                        line_text_appendf(&t, "killed by signal SIG%s", abbrev);
                else
                        line_text_appendf(&t, "killed by signal %d", r->status);
        }

        if (t.size > 0) {
                size_t before = t.size;

                /* stdout may hold a "Status: ON" from before the hang. */
                line_text_append(&t, "; last message: ", 16);
                if (!append_agent_failure(&t, r, false)) {
                        t.size = before;
                        t.data[before] = '\0';
                        t.cut = false;
                }
        } else if (!append_agent_failure(&t, r, true)) {
                if (r->code == CLD_EXITED)
                        line_text_appendf(&t, "exited with status %d",
                                          r->status);
                else
                        line_text_appendf(&t, "failed (code %d, status %d)",
                                          r->code, r->status);
        }
        return line_text_finish(&t);
}

enum fence_agent_outcome fence_agent_outcome(const char *action,
                                             const struct haven_exec_result *r,
                                             char **ret_message) {
        enum fence_agent_outcome o = FENCE_AGENT_FAILED;
        bool exited;

        assert(action);
        assert(r);

        exited = r->code == CLD_EXITED && !r->timed_out;
        if (exited && r->status == 0)
                o = streq(action, "status") ? FENCE_AGENT_ON : FENCE_AGENT_OK;
        else if (exited && r->status == 2 &&
                 (streq(action, "status") || streq(action, "monitor")))
                o = FENCE_AGENT_OFF;

        if (ret_message)
                *ret_message = outcome_message(o, r);
        return o;
}

/* ==== Outlet lists ==== */

static int list_add(struct json_object *a, const char *outlet,
                    size_t outlet_len, const char *name, size_t name_len) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct line_text clean = {};
        struct json_object *v;

        line_text_append(&clean, name, name_len);
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        v = json_object_new_string_len(outlet, (int) outlet_len);
        if (!v || haven_json_add(o, "outlet", v) < 0)
                return -ENOMEM;
        v = json_object_new_string(line_text_end(&clean));
        if (!v || haven_json_add(o, "name", v) < 0)
                return -ENOMEM;
        if (json_object_array_add(a, o) < 0)
                return -ENOMEM;
        TAKE_PTR(o);
        return 0;
}

int fence_agent_parse_list(const char *text, struct json_object **ret_array) {
        _cleanup_(json_object_putp) struct json_object *a = NULL;
        const char *p, *end, *line;
        size_t len, n = 0;
        int r;

        assert(text);
        assert(ret_array);

        a = json_object_new_array();
        if (!a)
                return -ENOMEM;

        end = text + strlen(text);
        for (p = text; next_line(&p, end, &line, &len);) {
                const char *comma, *outlet = line, *name;
                size_t outlet_len, name_len;

                comma = memchr(line, ',', len);
                if (!comma)
                        continue; /* "N/A", "NOTICE: ...", blank */
                outlet_len = (size_t) (comma - line);
                name = comma + 1;
                name_len = len - outlet_len - 1;
                trim(&outlet, &outlet_len);
                trim(&name, &name_len);
                if (outlet_len == 0 || outlet_len > LIST_FIELD_MAX ||
                    name_len > LIST_FIELD_MAX ||
                    value_problem(outlet, outlet_len))
                        continue;

                if (n >= FENCE_AGENT_LIST_MAX)
                        return -E2BIG;
                r = list_add(a, outlet, outlet_len, name, name_len);
                if (r < 0)
                        return r;
                n++;
        }

        *ret_array = TAKE_PTR(a);
        return 0;
}
