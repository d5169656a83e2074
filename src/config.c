/* config.c — YAML configuration loader and validator (product.md section 3).
 *
 * Two stages. First the libyaml event stream is turned into a small node tree of our own
 * (scalars, mappings, sequences with their 1-based positions). Building the tree ourselves,
 * rather than using yaml_parser_load(), lets us refuse aliases before anything could expand
 * them (billion laughs), bound the nesting depth and the node count, reject NUL characters and
 * unknown tags, and report duplicate keys at their second occurrence. Second, the tree is
 * checked against the contract, filling a fresh struct cfg_config. Every problem becomes one
 * diagnostic and checking goes on, so one --check run lists everything; diagnostics are sorted
 * by position at the end so the output reads top to bottom like the file.
 */
#include "rolesync/config.h"
#include "rolesync/journal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>
#include <yaml.h>

#include "rolesync/provider.h"
#include "rolesync/util.h"

#define CFG_MAX_FILE (1024 * 1024) /* a real config is a few KiB; this bounds hostile input */
#define CFG_MAX_DEPTH 32           /* the contract needs 5 levels */
#define CFG_MAX_NODES 100000
#define CFG_MAX_SECRET (64 * 1024)
#define CFG_MAX_NAME 64
#define CFG_QUOTE_MAX 60 /* longest value echoed in a message */

/* ---------------------------------------------------------------------------------------- */
/* Node tree                                                                                */

enum ykind {
    Y_SCALAR,
    Y_MAP,
    Y_SEQ,
    Y_BAD /* already reported (alias, too deep, bad tag, NUL): checks skip it silently */
};

struct ynode {
    enum ykind kind;
    char *val;           /* scalar text, NUL-terminated (contains no NUL: refused at build time) */
    size_t len;          /* strlen(val) */
    bool plain;          /* plain (unquoted, untagged) scalar: only these can be null */
    int line, col;       /* 1-based start position */
    struct ynode **kids; /* mapping: key, value, key, value ...; sequence: items */
    size_t n, cap;
};

struct diag {
    int line, col; /* 0 when the message has no position */
    size_t seq;    /* insertion order, keeps the sort stable */
    char *msg;
};

struct diaglist {
    struct diag *v;
    size_t n, cap;
};

struct loader {
    const char *file; /* name used in messages */
    unsigned flags;   /* CFG_LOAD_* */
    char *basedir;    /* folder of the config file, for relative secret files */
    struct diaglist errs, warns;
    size_t seq;
    size_t nnodes;
    char qbuf[4][CFG_QUOTE_MAX * 4 + 16]; /* ring of buffers for quoted values in messages */
    unsigned qi;
};

static void diag_add(struct loader *ld, struct diaglist *l, int line, int col, const char *fmt,
                     va_list ap) __attribute__((format(printf, 5, 0)));

static void diag_add(struct loader *ld, struct diaglist *l, int line, int col, const char *fmt,
                     va_list ap)
{
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    /* A fan-out job is read once per target: a problem of its shared keys is said once. */
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].line == line && l->v[i].col == col && strcmp(l->v[i].msg, msg) == 0) {
            free(msg);
            return;
        }
    }
    util_grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v);
    l->v[l->n++] = (struct diag){.line = line, .col = col, .seq = ld->seq++, .msg = msg};
}

static void err_at(struct loader *ld, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void err_at(struct loader *ld, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(ld, &ld->errs, line, col, fmt, ap);
    va_end(ap);
}

static void err(struct loader *ld, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err(struct loader *ld, const struct ynode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(ld, &ld->errs, n->line, n->col, fmt, ap);
    va_end(ap);
}

static void warn(struct loader *ld, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct loader *ld, const struct ynode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(ld, &ld->warns, n->line, n->col, fmt, ap);
    va_end(ap);
}

/* A value quoted for a message: double quotes, control characters escaped, long values cut.
 * Returns one of four rotating buffers in the loader, so up to four may appear in one call. */
static const char *q(struct loader *ld, const char *s)
{
    char *buf = ld->qbuf[ld->qi++ % 4], *o = buf;
    size_t i;

    *o++ = '"';
    for (i = 0; s[i] && i < CFG_QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += sprintf(o, "\\x%02x", c);
        } else {
            *o++ = (char)c;
        }
    }
    if (s[i]) {
        /* do not cut a UTF-8 sequence in half */
        while (o > buf + 1 && ((unsigned char)o[-1] & 0xc0) == 0x80)
            o--;
        if (o > buf + 1 && ((unsigned char)o[-1] & 0xc0) == 0xc0)
            o--;
        memcpy(o, "...", 3);
        o += 3;
    }
    *o++ = '"';
    *o = '\0';
    return buf;
}

static struct ynode *node_new(struct loader *ld, enum ykind kind, const yaml_mark_t *m)
{
    struct ynode *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    ld->nnodes++;
    return n;
}

static void node_free(struct ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->val);
    free(n);
}

static void node_append(struct ynode *parent, struct ynode *kid)
{
    util_grow((void **)&parent->kids, &parent->cap, parent->n + 1, sizeof *parent->kids);
    parent->kids[parent->n++] = kid;
}

static bool is_null(const struct ynode *n)
{
    if (n->kind != Y_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->val, "~") == 0 || strcmp(n->val, "null") == 0 ||
           strcmp(n->val, "Null") == 0 || strcmp(n->val, "NULL") == 0;
}

static const char *kind_name(const struct ynode *n)
{
    switch (n->kind) {
    case Y_MAP:
        return "a mapping";
    case Y_SEQ:
        return "a list";
    default:
        return is_null(n) ? "empty" : "a single value";
    }
}

/* Tags we tolerate: the core-schema ones, which add nothing our own type checks do not. */
static bool tag_ok(const yaml_char_t *tag, bool *force_str)
{
    static const char *ok[] = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:int",
                               "tag:yaml.org,2002:bool", "tag:yaml.org,2002:map",
                               "tag:yaml.org,2002:seq"};
    if (!tag)
        return true;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(ok); i++) {
        if (strcmp((const char *)tag, ok[i]) == 0) {
            if (i == 0)
                *force_str = true;
            return true;
        }
    }
    return false;
}

struct keyent {
    const struct ynode *key;
    UT_hash_handle hh;
};

/* Called when a mapping is complete: report non-scalar and duplicate keys and drop those pairs
 * so later checks see each key once. A hash keeps this linear for hostile input. */
static void map_finish(struct loader *ld, struct ynode *map)
{
    struct keyent *seen = NULL, *e, *tmp;
    size_t w = 0;

    for (size_t i = 0; i + 1 < map->n; i += 2) {
        struct ynode *k = map->kids[i], *v = map->kids[i + 1];
        bool keep = true;
        if (k->kind == Y_BAD) {
            keep = false;
        } else if (k->kind != Y_SCALAR) {
            err(ld, k, "a key must be a single value, not %s", kind_name(k));
            keep = false;
        } else {
            HASH_FIND(hh, seen, k->val, k->len, e);
            if (e) {
                err(ld, k, "duplicate key %s (first defined at line %d, column %d)", q(ld, k->val),
                    e->key->line, e->key->col);
                keep = false;
            } else {
                e = xmalloc(sizeof *e);
                e->key = k;
                HASH_ADD_KEYPTR(hh, seen, k->val, k->len, e);
            }
        }
        if (keep) {
            map->kids[w++] = k;
            map->kids[w++] = v;
        } else {
            node_free(k);
            node_free(v);
        }
    }
    map->n = w;
    HASH_ITER(hh, seen, e, tmp)
    {
        HASH_DEL(seen, e);
        free(e);
    }
}

/* Position of a byte offset, for reader errors that carry no mark. Columns count characters. */
static void offset_pos(const char *buf, size_t len, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static void syntax_error(struct loader *ld, yaml_parser_t *p, const char *buf, size_t len)
{
    const char *problem = p->problem ? p->problem : "unknown problem";
    int line, col;

    if (p->error == YAML_MEMORY_ERROR) {
        err_at(ld, 1, 1, "out of memory while parsing YAML");
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        offset_pos(buf, len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            err_at(ld, line, col, "YAML syntax error: %s (character 0x%02X)", problem,
                   (unsigned)p->problem_value);
        else
            err_at(ld, line, col, "YAML syntax error: %s", problem);
        return;
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context)
        err_at(ld, line, col, "YAML syntax error: %s (%s at line %d, column %d)", problem,
               p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    else
        err_at(ld, line, col, "YAML syntax error: %s", problem);
}

/* Parse the buffer into a tree. Returns NULL (with errors reported) when there is nothing that
 * can be checked: a syntax error, an empty file, or a limit exceeded. */
static struct ynode *parse_tree(struct loader *ld, const char *buf, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    struct ynode *stack[CFG_MAX_DEPTH + 1], *root = NULL;
    size_t depth = 0, skip = 0; /* skip > 0: inside a subtree dropped for being too deep */
    int ndocs = 0;
    bool done = false, failed = false;

    if (!yaml_parser_initialize(&p))
        abort();
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(ld, &p, buf, len);
            failed = true;
            break;
        }
        struct ynode *n = NULL;
        bool opens = false;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                err_at(ld, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                       "a second YAML document is not allowed (one configuration per file)");
                done = true;
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (skip) {
                skip++;
                break;
            }
            opens = true;
            /* fall through */
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT: {
            if (skip)
                break;
            bool force_str = false;
            const yaml_char_t *tag =
                ev.type == YAML_SCALAR_EVENT           ? ev.data.scalar.tag
                : ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.tag
                : ev.type == YAML_MAPPING_START_EVENT  ? ev.data.mapping_start.tag
                                                       : NULL;
            if (ld->nnodes >= CFG_MAX_NODES) {
                err_at(ld, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                       "too many YAML nodes (more than %d)", CFG_MAX_NODES);
                failed = done = true;
                break;
            }
            if (ev.type == YAML_ALIAS_EVENT) {
                n = node_new(ld, Y_BAD, &ev.start_mark);
                /* libyaml limits anchor names to letters, digits, '-' and '_' */
                err(ld, n, "YAML aliases are not allowed (*%.60s); write the value out",
                    (const char *)ev.data.alias.anchor);
            } else if (!tag_ok(tag, &force_str)) {
                n = node_new(ld, Y_BAD, &ev.start_mark);
                err(ld, n, "YAML tag %s is not supported", q(ld, (const char *)tag));
                if (opens)
                    skip = 1;
                opens = false;
            } else if (opens && depth >= CFG_MAX_DEPTH) {
                n = node_new(ld, Y_BAD, &ev.start_mark);
                err(ld, n, "nesting is deeper than %d levels", CFG_MAX_DEPTH);
                skip = 1;
                opens = false;
            } else if (ev.type == YAML_SCALAR_EVENT) {
                n = node_new(ld, Y_SCALAR, &ev.start_mark);
                const char *v = (const char *)ev.data.scalar.value;
                size_t vl = ev.data.scalar.length;
                if (memchr(v, '\0', vl)) {
                    n->kind = Y_BAD;
                    err(ld, n, "a NUL character is not allowed in a value");
                } else {
                    n->val = xstrndup(v, vl);
                    n->len = vl;
                    n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !force_str;
                }
            } else {
                n = node_new(ld, ev.type == YAML_MAPPING_START_EVENT ? Y_MAP : Y_SEQ,
                             &ev.start_mark);
            }
            if (depth == 0) {
                if (!root)
                    root = n;
                else
                    node_free(n); /* cannot happen within one document; be safe */
            } else {
                node_append(stack[depth - 1], n);
            }
            if (opens)
                stack[depth++] = n;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (skip) {
                skip--;
                break;
            }
            if (depth > 0) {
                struct ynode *top = stack[--depth];
                if (top->kind == Y_MAP)
                    map_finish(ld, top);
            }
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (failed) {
        node_free(root);
        return NULL;
    }
    if (!root || is_null(root)) {
        err_at(ld, root ? root->line : 1, root ? root->col : 1,
               "the configuration is empty (expected a mapping with tenants: and jobs:)");
        node_free(root);
        return NULL;
    }
    return root;
}

/* ---------------------------------------------------------------------------------------- */
/* Typed access                                                                             */

static struct ynode *map_get(const struct ynode *map, const char *key, struct ynode **keynode)
{
    if (!map || map->kind != Y_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        if (strcmp(map->kids[i]->val, key) == 0) {
            if (keynode)
                *keynode = map->kids[i];
            return map->kids[i + 1];
        }
    }
    return NULL;
}

/* Report keys not in `allowed` (NULL-terminated). `ctx` reads "in job", "at top level". */
static void check_keys(struct loader *ld, const struct ynode *map, const char *ctx,
                       const char *const *allowed, bool tenant)
{
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct ynode *k = map->kids[i];
        bool found = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(k->val, *a) == 0)
                found = true;
        if (found)
            continue;
        if (tenant && strcmp(k->val, "client_secret") == 0) {
            err(ld, k,
                "an inline \"client_secret\" is not allowed: keep the secret out of the "
                "config and use client_secret_file (a file with the secret) or "
                "client_secret_env (an environment variable)");
            continue;
        }
        char list[512];
        size_t o = 0;
        list[0] = '\0';
        for (const char *const *a = allowed; *a; a++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", a == allowed ? "" : ", ", *a);
        err(ld, k, "unknown key %s %s (expected one of: %s)", q(ld, k->val), ctx, list);
    }
}

/* Each getter returns 1 when the key is set and valid, 0 when absent, -1 when reported. */

static int want_scalar(struct loader *ld, const struct ynode *v, const char *key, const char *what)
{
    if (v->kind == Y_BAD)
        return -1;
    if (v->kind != Y_SCALAR) {
        err(ld, v, "\"%s\" must be %s, not %s", key, what, kind_name(v));
        return -1;
    }
    if (is_null(v)) {
        err(ld, v, "\"%s\" has no value", key);
        return -1;
    }
    return 1;
}

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* A non-empty string without control characters. */
static int get_str(struct loader *ld, const struct ynode *map, const char *key, struct ynode **node,
                   const char **out)
{
    struct ynode *v = map_get(map, key, NULL);
    if (node)
        *node = v;
    if (!v)
        return 0;
    if (want_scalar(ld, v, key, "a string") < 0)
        return -1;
    if (v->len == 0) {
        err(ld, v, "\"%s\" must not be empty", key);
        return -1;
    }
    if (has_ctl(v->val)) {
        err(ld, v, "\"%s\" must not contain control characters", key);
        return -1;
    }
    *out = v->val;
    return 1;
}

static int get_bool(struct loader *ld, const struct ynode *map, const char *key, bool *out)
{
    struct ynode *v = map_get(map, key, NULL);
    if (!v)
        return 0;
    if (want_scalar(ld, v, key, "true or false") < 0)
        return -1;
    if (strcmp(v->val, "true") == 0) {
        *out = true;
    } else if (strcmp(v->val, "false") == 0) {
        *out = false;
    } else {
        err(ld, v, "invalid boolean %s for \"%s\" (use true or false)", q(ld, v->val), key);
        return -1;
    }
    return 1;
}

static int get_uint(struct loader *ld, const struct ynode *map, const char *key, unsigned min,
                    unsigned max, unsigned *out)
{
    struct ynode *v = map_get(map, key, NULL);
    if (!v)
        return 0;
    if (want_scalar(ld, v, key, "a whole number") < 0)
        return -1;
    uint64_t x = 0;
    bool ok = v->len > 0 && v->len <= 10;
    for (size_t i = 0; ok && i < v->len; i++) {
        if (v->val[i] < '0' || v->val[i] > '9')
            ok = false;
        else
            x = x * 10 + (uint64_t)(v->val[i] - '0');
    }
    if (!ok || x < min || x > max) {
        err(ld, v, "invalid value %s for \"%s\" (expected a whole number from %u to %u)",
            q(ld, v->val), key, min, max);
        return -1;
    }
    *out = (unsigned)x;
    return 1;
}

static int get_duration(struct loader *ld, const struct ynode *map, const char *key,
                        struct ynode **node, uint64_t *out)
{
    struct ynode *v = map_get(map, key, NULL);
    if (node)
        *node = v;
    if (!v)
        return 0;
    if (want_scalar(ld, v, key, "a duration (e.g. 30s)") < 0)
        return -1;
    if (cfg_parse_duration(v->val, out) != 0) {
        err(ld, v, "invalid duration %s (use e.g. 500ms, 30s, 10m, 1h)", q(ld, v->val));
        return -1;
    }
    return 1;
}

/* A size: bytes, or a whole number of KiB, MiB or GiB; 0 or from min to max. */
static int get_size(struct loader *ld, const struct ynode *map, const char *key, uint64_t min,
                    uint64_t max, uint64_t *out)
{
    struct ynode *v = map_get(map, key, NULL);
    uint64_t n;
    if (!v)
        return 0;
    if (want_scalar(ld, v, key, "a size (e.g. 64MiB)") < 0)
        return -1;
    if (cfg_parse_size(v->val, &n) != 0) {
        err(ld, v, "invalid size %s for \"%s\" (use bytes or e.g. 512KiB, 64MiB, 1GiB)",
            q(ld, v->val), key);
        return -1;
    }
    if (n != 0 && (n < min || n > max)) {
        char lo[32], hi[32];
        err(ld, v, "size %s for \"%s\" is out of range (0 for never, or from %s to %s)",
            q(ld, v->val), key, cfg_format_size(min, lo, sizeof lo),
            cfg_format_size(max, hi, sizeof hi));
        return -1;
    }
    *out = n;
    return 1;
}

static int get_enum(struct loader *ld, const struct ynode *map, const char *key,
                    const char *const *names, struct ynode **node, int *out)
{
    struct ynode *v = map_get(map, key, NULL);
    if (node)
        *node = v;
    if (!v)
        return 0;
    if (want_scalar(ld, v, key, "a single value") < 0)
        return -1;
    for (int i = 0; names[i]; i++) {
        if (strcmp(v->val, names[i]) == 0) {
            *out = i;
            return 1;
        }
    }
    char list[256];
    size_t o = 0;
    list[0] = '\0';
    for (int i = 0; names[i]; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", names[i]);
    err(ld, v, "invalid %s %s (expected one of: %s)", key, q(ld, v->val), list);
    return -1;
}

/* A mapping value (an explicit null counts as empty). Returns the node or NULL. */
static struct ynode *get_map(struct loader *ld, const struct ynode *map, const char *key,
                             const char *what)
{
    struct ynode *v = map_get(map, key, NULL);
    if (!v || v->kind == Y_BAD || is_null(v))
        return NULL;
    if (v->kind != Y_MAP) {
        err(ld, v, "\"%s\" must be %s, not %s", key, what, kind_name(v));
        return NULL;
    }
    return v;
}

/* An absolute path. */
static int get_abspath(struct loader *ld, const struct ynode *map, const char *key, char **out)
{
    const char *s;
    struct ynode *v;
    int rc = get_str(ld, map, key, &v, &s);
    if (rc <= 0)
        return rc;
    if (s[0] != '/') {
        err(ld, v, "\"%s\" must be an absolute path (starting with /)", key);
        return -1;
    }
    free(*out);
    *out = xstrdup(s);
    return 1;
}

static void strlist_free(struct cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void strlist_set_star(struct cfg_strlist *l)
{
    l->v = xmalloc(sizeof *l->v);
    l->v[0] = xstrdup("*");
    l->n = 1;
}

/* A list of glob strings. Returns 1 set, 0 absent, -1 reported. */
static int get_strlist(struct loader *ld, const struct ynode *map, const char *key,
                       struct cfg_strlist *out)
{
    struct ynode *v = map_get(map, key, NULL);
    int rc = 1;
    if (!v)
        return 0;
    if (v->kind == Y_BAD)
        return -1;
    if (v->kind != Y_SEQ) {
        if (is_null(v))
            err(ld, v, "\"%s\" has no value (write [] for an empty list)", key);
        else
            err(ld, v, "\"%s\" must be a list of strings (e.g. [\"*\"]), not %s", key,
                kind_name(v));
        return -1;
    }
    struct cfg_strlist l = {xcalloc(v->n ? v->n : 1, sizeof(char *)), 0};
    for (size_t i = 0; i < v->n; i++) {
        const struct ynode *it = v->kids[i];
        if (it->kind == Y_BAD) {
            rc = -1;
        } else if (it->kind != Y_SCALAR || is_null(it) || it->len == 0) {
            err(ld, it, "items of \"%s\" must be non-empty strings, not %s", key,
                it->kind == Y_SCALAR ? "empty" : kind_name(it));
            rc = -1;
        } else if (has_ctl(it->val)) {
            err(ld, it, "items of \"%s\" must not contain control characters", key);
            rc = -1;
        } else {
            l.v[l.n++] = xstrdup(it->val);
        }
    }
    if (rc < 0) {
        strlist_free(&l);
        return -1;
    }
    strlist_free(out);
    *out = l;
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Public parsers                                                                           */

int cfg_parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    uint64_t n = 0;
    const char *p = s;

    if (!s || *p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    for (size_t i = 0; i < UTIL_ARRAY_LEN(units); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (n == 0 || n > UINT64_MAX / units[i].ms)
                return -1;
            *ms = n * units[i].ms;
            return 0;
        }
    }
    return -1;
}

int cfg_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *unit;
        unsigned shift;
    } units[] = {{"", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
    uint64_t n = 0;
    const char *p = s;

    if (!s || *p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
        return -1; /* digits first; no leading zero (0640-style octal would be a surprise) */
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (n > (UINT64_MAX - digit) / 10)
            return -1;
        n = n * 10 + digit;
    }
    for (size_t i = 0; i < UTIL_ARRAY_LEN(units); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (n > (UINT64_MAX >> units[i].shift))
                return -1;
            *bytes = n << units[i].shift;
            return 0;
        }
    }
    return -1;
}

int cfg_parse_rate(const char *s, double *per_sec)
{
    static const struct {
        const char *unit;
        double sec;
    } units[] = {{"/s", 1}, {"/min", 60}, {"/h", 3600}};
    uint64_t n = 0;
    const char *p = s;

    if (!s)
        return -1;
    if (strcmp(s, "0") == 0) {
        *per_sec = 0;
        return 0;
    }
    if (*p < '1' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > 1000000) /* a million requests per unit is far past any API's limit */
            return -1;
    }
    for (size_t i = 0; i < UTIL_ARRAY_LEN(units); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            *per_sec = (double)n / units[i].sec;
            return 0;
        }
    }
    return -1;
}

char *cfg_format_size(uint64_t bytes, char *buf, size_t n)
{
    static const char *const units[] = {"GiB", "MiB", "KiB"};
    for (unsigned i = 0; i < 3; i++) {
        unsigned shift = 30 - 10 * i;
        if (bytes && (bytes & ((1ull << shift) - 1)) == 0) {
            snprintf(buf, n, "%llu%s", (unsigned long long)(bytes >> shift), units[i]);
            return buf;
        }
    }
    snprintf(buf, n, "%llu", (unsigned long long)bytes);
    return buf;
}

char *cfg_format_duration(uint64_t ms, char *buf, size_t n)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, n, "%" PRIu64 "h", ms / 3600000);
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, n, "%" PRIu64 "m", ms / 60000);
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, n, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, n, "%" PRIu64 "ms", ms);
    return buf;
}

const char *cfg_api_name(enum cfg_api api)
{
    return api == CFG_API_IDENTITY ? "identity" : "genesys";
}

/* ---------------------------------------------------------------------------------------- */
/* http blocks                                                                              */

enum { H_TIMEOUT, H_CONNECT, H_MAXCONN, H_RATE, H_CA, H_ATTEMPTS, H_INITIAL, H_MAXDELAY, H_COUNT };

/* One http: block as written: the values it sets and where. */
struct http_block {
    struct cfg_http v;
    struct ynode *at[H_COUNT]; /* value node of each key set here, else NULL */
};

static const char *const HTTP_KEYS[] = {
    "timeout", "connect_timeout", "max_connections", "rate_limit", "ca_file", "retry", NULL};
static const char *const RETRY_KEYS[] = {"max_attempts", "initial_delay", "max_delay", NULL};

static void http_defaults(struct cfg_http *h)
{
    memset(h, 0, sizeof *h);
    h->timeout_ms = 30000;
    h->connect_timeout_ms = 10000;
    h->max_connections = 8;
    h->rate_per_sec = 300.0 / 60.0;
    h->retry_max_attempts = 8;
    h->retry_initial_delay_ms = 1000;
    h->retry_max_delay_ms = 60000;
}

/* Why a ca_file cannot serve as trust anchors, or NULL: it must be a readable regular file
 * holding at least one PEM certificate, else every TLS request would fail at run time while
 * --check said OK. (The certificates themselves are left to the TLS library.) */
#define CA_FILE_MAX (16u << 20)
static const char *ca_file_problem(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return strerror(errno);
    struct stat st;
    const char *why = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        why = "not a regular file";
    else if ((uint64_t)st.st_size > CA_FILE_MAX)
        why = "larger than 16 MiB";
    char *buf = why ? NULL : xmalloc((size_t)st.st_size + 1);
    if (buf) {
        ssize_t n = read(fd, buf, (size_t)st.st_size);
        buf[n > 0 ? n : 0] = '\0';
        if (n < 0)
            why = strerror(errno);
        else if (!strstr(buf, "-----BEGIN CERTIFICATE-----"))
            why = "no PEM certificate in it (\"-----BEGIN CERTIFICATE-----\")";
        free(buf);
    }
    close(fd);
    return why;
}

static void parse_http_block(struct loader *ld, const struct ynode *h, struct http_block *b)
{
    memset(b, 0, sizeof *b);
    if (!h)
        return;
    check_keys(ld, h, "in http", HTTP_KEYS, false);

    if (get_duration(ld, h, "timeout", NULL, &b->v.timeout_ms) > 0)
        b->at[H_TIMEOUT] = map_get(h, "timeout", NULL);
    if (get_duration(ld, h, "connect_timeout", NULL, &b->v.connect_timeout_ms) > 0)
        b->at[H_CONNECT] = map_get(h, "connect_timeout", NULL);
    if (get_uint(ld, h, "max_connections", 1, 1024, &b->v.max_connections) > 0)
        b->at[H_MAXCONN] = map_get(h, "max_connections", NULL);

    struct ynode *rv = map_get(h, "rate_limit", NULL);
    if (rv && want_scalar(ld, rv, "rate_limit", "a rate (e.g. 300/min)") > 0) {
        if (cfg_parse_rate(rv->val, &b->v.rate_per_sec) == 0)
            b->at[H_RATE] = rv;
        else
            err(ld, rv, "invalid rate %s (use e.g. 5/s, 300/min, 1000/h, or 0 for no limit)",
                q(ld, rv->val));
    }

    if (get_abspath(ld, h, "ca_file", &b->v.ca_file) > 0) {
        struct ynode *cv = map_get(h, "ca_file", NULL);
        const char *why = ca_file_problem(b->v.ca_file);
        if (why) {
            err(ld, cv, "cannot use ca_file %s: %s", q(ld, b->v.ca_file), why);
            free(b->v.ca_file);
            b->v.ca_file = NULL;
        } else {
            b->at[H_CA] = cv;
        }
    }

    struct ynode *r = get_map(ld, h, "retry", "a mapping (max_attempts, initial_delay, max_delay)");
    if (r) {
        check_keys(ld, r, "in retry", RETRY_KEYS, false);
        if (get_uint(ld, r, "max_attempts", 1, 100, &b->v.retry_max_attempts) > 0)
            b->at[H_ATTEMPTS] = map_get(r, "max_attempts", NULL);
        if (get_duration(ld, r, "initial_delay", NULL, &b->v.retry_initial_delay_ms) > 0)
            b->at[H_INITIAL] = map_get(r, "initial_delay", NULL);
        if (get_duration(ld, r, "max_delay", NULL, &b->v.retry_max_delay_ms) > 0)
            b->at[H_MAXDELAY] = map_get(r, "max_delay", NULL);
    }
}

/* Overlay the keys `b` sets onto `dst` (which owns its ca_file). */
static void http_merge(struct cfg_http *dst, const struct http_block *b)
{
    if (b->at[H_TIMEOUT])
        dst->timeout_ms = b->v.timeout_ms;
    if (b->at[H_CONNECT])
        dst->connect_timeout_ms = b->v.connect_timeout_ms;
    if (b->at[H_MAXCONN])
        dst->max_connections = b->v.max_connections;
    if (b->at[H_RATE])
        dst->rate_per_sec = b->v.rate_per_sec;
    if (b->at[H_CA]) {
        free(dst->ca_file);
        dst->ca_file = xstrdup(b->v.ca_file);
    }
    if (b->at[H_ATTEMPTS])
        dst->retry_max_attempts = b->v.retry_max_attempts;
    if (b->at[H_INITIAL])
        dst->retry_initial_delay_ms = b->v.retry_initial_delay_ms;
    if (b->at[H_MAXDELAY])
        dst->retry_max_delay_ms = b->v.retry_max_delay_ms;
}

/* The effective delays must be ordered; blame the key this block set (max_delay first). */
static void http_check(struct loader *ld, const struct cfg_http *eff, const struct http_block *b)
{
    const struct ynode *at = b->at[H_MAXDELAY] ? b->at[H_MAXDELAY] : b->at[H_INITIAL];
    char b1[32], b2[32];
    if (at && eff->retry_initial_delay_ms > eff->retry_max_delay_ms)
        err(ld, at, "initial_delay (%s) must not be longer than max_delay (%s)",
            cfg_format_duration(eff->retry_initial_delay_ms, b1, sizeof b1),
            cfg_format_duration(eff->retry_max_delay_ms, b2, sizeof b2));
}

/* ---------------------------------------------------------------------------------------- */
/* URLs                                                                                     */

static bool is_loopback(const char *host)
{
    unsigned char a[16];
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const unsigned char lo[16] = {[15] = 1};
        return memcmp(a, lo, 16) == 0;
    }
    return false;
}

/* product.md 4b.2, identity.md section 8: only the US-West host (and its OCS-era name) takes
 * identity writes. Loopback hosts (simulators, local gateways) are not warned about. */
#define IDENTITY_GLOBAL_URL "https://uswe.datahub.connect.aveva.com"
static bool identity_global_host(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, ":/");
    char host[256];
    if (n >= sizeof host)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    if (*h == '[') /* [::1]: is_loopback takes the bare address */
        return true;
    return strcasecmp(host, "uswe.datahub.connect.aveva.com") == 0 ||
           strcasecmp(host, "dat-b.osisoft.com") == 0 || is_loopback(host);
}

/* Check an https:// (or loopback http://) URL; on success *out is a copy without trailing
 * slashes. The URL is never echoed whole: it might carry credentials. */
static int check_url(struct loader *ld, const struct ynode *v, const char *key, char **out)
{
    const char *s = v->val, *auth, *end, *p;
    bool https;
    char host[256];

    for (p = s; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            err(ld, v, "\"%s\" must not contain spaces or control characters", key);
            return -1;
        }
    }
    if (strncasecmp(s, "https://", 8) == 0) {
        https = true;
        auth = s + 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        https = false;
        auth = s + 7;
    } else {
        err(ld, v, "\"%s\" must be a URL starting with https:// (http:// only for loopback hosts)",
            key);
        return -1;
    }
    end = auth + strcspn(auth, "/?#");
    if (strpbrk(s, "?#")) {
        err(ld, v, "\"%s\" must not contain a query string or fragment", key);
        return -1;
    }
    if (memchr(auth, '@', (size_t)(end - auth))) {
        err(ld, v, "\"%s\" must not contain a user name or password", key);
        return -1;
    }
    const char *hs = auth, *he, *port = NULL;
    if (*auth == '[') {
        hs = auth + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he) {
            err(ld, v, "\"%s\" has an unterminated [IPv6] address", key);
            return -1;
        }
        if (he + 1 < end) {
            if (he[1] != ':') {
                err(ld, v, "\"%s\" has an invalid host", key);
                return -1;
            }
            port = he + 2;
        }
    } else {
        he = memchr(hs, ':', (size_t)(end - hs));
        if (he)
            port = he + 1;
        else
            he = end;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof host) {
        err(ld, v, "\"%s\" has no valid host name", key);
        return -1;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (*auth == '[') {
        unsigned char a6[16];
        if (inet_pton(AF_INET6, host, a6) != 1) {
            err(ld, v, "\"%s\" has an invalid IPv6 address", key);
            return -1;
        }
    } else {
        for (p = host; *p; p++) {
            if (!(*p == '-' || *p == '.' || *p == '_' || (*p >= '0' && *p <= '9') ||
                  (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
                err(ld, v, "\"%s\" has an invalid host name", key);
                return -1;
            }
        }
    }
    if (port) {
        unsigned long pn = 0;
        bool ok = port < end && end - port <= 5;
        for (p = port; ok && p < end; p++) {
            if (*p < '0' || *p > '9')
                ok = false;
            else
                pn = pn * 10 + (unsigned long)(*p - '0');
        }
        if (!ok || pn == 0 || pn > 65535) {
            err(ld, v, "\"%s\" has an invalid port", key);
            return -1;
        }
    }
    if (!https && !is_loopback(host)) {
        err(ld, v,
            "\"%s\" uses http:// with host %s; http:// is allowed only for loopback hosts "
            "(127.0.0.0/8, ::1, localhost), use https://",
            key, q(ld, host));
        return -1;
    }
    size_t n = strlen(s);
    while (n > (size_t)(end - s) && s[n - 1] == '/')
        n--;
    *out = xstrndup(s, n);
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Secrets                                                                                  */

static void strip_trailing_ws(char *s, size_t *len)
{
    size_t n = *len;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    *len = n;
}

/* The secret must be one line: anything else would go over the wire wrong. */
static bool secret_one_line(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Read a one-line secret from the file `v` names (relative: $CREDENTIALS_DIRECTORY, else the
 * config's folder) into *secret, with "file PATH" into *origin. `what` names the key. */
static void read_secret_file(struct loader *ld, const struct ynode *v, char **secret, char **origin)
{
    const char *cred = getenv("CREDENTIALS_DIRECTORY");
    char *path;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd;

    if (v->val[0] == '/')
        path = xstrdup(v->val);
    else
        path = xasprintf("%s/%s", cred && *cred ? cred : ld->basedir, v->val);

    /* O_NONBLOCK: a FIFO must not hang --check; it is refused below as not a regular file */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        err(ld, v, "cannot read secret file %s: %s", q(ld, path), strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err(ld, v, "secret file %s is not a regular file", q(ld, path));
        goto out;
    }
    if (st.st_size > CFG_MAX_SECRET) {
        err(ld, v, "secret file %s is larger than %d KiB", q(ld, path), CFG_MAX_SECRET / 1024);
        goto out;
    }
    buf = xmalloc(CFG_MAX_SECRET + 1);
    for (;;) {
        ssize_t r = read(fd, buf + len, CFG_MAX_SECRET + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err(ld, v, "cannot read secret file %s: %s", q(ld, path), strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > CFG_MAX_SECRET) {
            err(ld, v, "secret file %s is larger than %d KiB", q(ld, path), CFG_MAX_SECRET / 1024);
            goto out;
        }
    }
    buf[len] = '\0';
    strip_trailing_ws(buf, &len);
    if (len == 0) {
        err(ld, v, "secret file %s is empty", q(ld, path));
        goto out;
    }
    if (!secret_one_line(buf, len)) {
        err(ld, v, "secret file %s must hold the secret on a single line", q(ld, path));
        goto out;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH))
        warn(ld, v,
             "secret file %s is readable by group or others (mode %04o); run chmod 600 on it",
             q(ld, path), (unsigned)(st.st_mode & 07777));
    *secret = xstrndup(buf, len);
    *origin = xasprintf("file %s", path);
out:
    if (buf) {
        explicit_bzero(buf, CFG_MAX_SECRET + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    free(path);
}

static void secret_from_file(struct loader *ld, struct cfg_tenant *t, const struct ynode *v)
{
    read_secret_file(ld, v, &t->client_secret, &t->secret_origin);
}

static bool env_name_ok(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static void secret_from_env(struct loader *ld, struct cfg_tenant *t, const struct ynode *v)
{
    if (!env_name_ok(v->val)) {
        /* not echoed: a secret pasted here by mistake must not reach the log */
        err(ld, v,
            "\"client_secret_env\" must be the name of an environment variable (letters, "
            "digits and '_', not starting with a digit)");
        return;
    }
    const char *e = getenv(v->val);
    if (!e) {
        err(ld, v, "environment variable %s (client_secret_env) is not set", q(ld, v->val));
        return;
    }
    size_t len = strlen(e);
    char *s = xstrndup(e, len);
    strip_trailing_ws(s, &len);
    if (len == 0) {
        err(ld, v, "environment variable %s (client_secret_env) is empty", q(ld, v->val));
        util_free_secret(s);
        return;
    }
    if (!secret_one_line(s, len)) {
        err(ld, v,
            "environment variable %s (client_secret_env) must hold the secret on a "
            "single line",
            q(ld, v->val));
        util_free_secret(s);
        return;
    }
    t->client_secret = s;
    t->secret_origin = xasprintf("env %s", v->val);
}

/* ---------------------------------------------------------------------------------------- */
/* Tenants and jobs                                                                         */

static const char *const TOP_KEYS[] = {"state_dir",    "log_level", "metrics_file",
                                       "http",         "tenants",   "jobs",
                                       "coordination", "journal",   NULL};
static const char *const JOURNAL_KEYS[] = {"max_size", "keep", NULL};
static const char *const COORD_KEYS[] = {"etcd", NULL};
static const char *const ETCD_KEYS[] = {"endpoints", "prefix",           "lease_ttl",
                                        "ca_file",   "client_cert_file", "client_key_file",
                                        "username",  "password_file",    NULL};
static const char *const TENANT_KEYS[] = {
    "api",       "base_url",           "write_base_url",    "token_url", "tenant_id",
    "client_id", "client_secret_file", "client_secret_env", "page_size", "http",
    NULL};
static const char *const JOB_KEYS[] = {"name",  "source",      "target",  "interval",
                                       "roles", "divisions",   "users",   "assignments",
                                       "prune", "max_deletes", "dry_run", NULL};
static const char *const ROLES_KEYS[] = {"include", "exclude", "definitions", "rename", NULL};
static const char *const USERS_KEYS[] = {"match_by", "include", "exclude", NULL};
static const char *const DIVISIONS_KEYS[] = {"include", "exclude", "rename", NULL};
static const char *const API_NAMES[] = {"genesys", "identity", NULL};
static const char *const MATCH_NAMES[] = {"email", "username", "external_id", NULL};
static const char *const ASSIGN_NAMES[] = {"mirror", "additive", "off", NULL};
static const char *const LEVEL_NAMES[] = {"error", "warning", "info", "debug", NULL};

/* Names show up in logs, metric labels, status.json keys and --job: keep them plain. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CFG_MAX_NAME)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static bool guid_ok(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                     (s[i] >= 'A' && s[i] <= 'F'))) {
            return false;
        }
    }
    return true;
}

/* Per-tenant facts the checks need beyond struct cfg_tenant. */
struct tenant_aux {
    bool api_ok; /* api: parsed, so api-dependent checks are meaningful */
};

static void parse_tenant(struct loader *ld, const struct ynode *k, const struct ynode *v,
                         const struct cfg_http *top_http, struct cfg_tenant *t,
                         struct tenant_aux *aux)
{
    struct ynode *n, *fkey = NULL, *ekey = NULL;
    const char *s;
    int api = -1;

    t->name = xstrdup(k->val);
    t->line = k->line;
    t->column = k->col;
    t->http = *top_http;
    t->http.ca_file = xstrdup(top_http->ca_file);
    if (!name_ok(k->val))
        err(ld, k, "invalid tenant name %s (use up to %d letters, digits, '.', '_' and '-')",
            q(ld, k->val), CFG_MAX_NAME);
    if (v->kind == Y_BAD)
        return;
    if (v->kind != Y_MAP) {
        err(ld, v, "tenant %s must be a mapping (api, base_url, client_id, ...), not %s",
            q(ld, k->val), kind_name(v));
        return;
    }
    check_keys(ld, v, "in tenant", TENANT_KEYS, true);

    int rc = get_enum(ld, v, "api", API_NAMES, NULL, &api);
    if (rc > 0) {
        t->api = (enum cfg_api)api;
        aux->api_ok = true;
    } else if (rc == 0) {
        err(ld, v, "tenant %s is missing \"api\" (genesys or identity)", q(ld, k->val));
    }

    rc = get_str(ld, v, "base_url", &n, &s);
    if (rc > 0)
        check_url(ld, n, "base_url", &t->base_url);
    else if (rc == 0)
        err(ld, v, "tenant %s is missing \"base_url\"", q(ld, k->val));

    struct ynode *wk = NULL, *wv = map_get(v, "write_base_url", &wk);
    if (wv && aux->api_ok && t->api != CFG_API_IDENTITY)
        err(ld, wk, "\"write_base_url\" is only for api: identity (genesys writes where it reads)");
    else if (get_str(ld, v, "write_base_url", &n, &s) > 0)
        check_url(ld, n, "write_base_url", &t->write_base_url);
    if (aux->api_ok && t->api == CFG_API_IDENTITY && t->base_url && !wv &&
        !identity_global_host(t->base_url))
        warn(ld, map_get(v, "base_url", NULL),
             "identity tenant %s reads from %s, which is not the global (US-West) host: writes "
             "there are refused (405); set \"write_base_url: %s\"",
             q(ld, k->val), t->base_url, IDENTITY_GLOBAL_URL);

    rc = get_str(ld, v, "token_url", &n, &s);
    if (rc > 0)
        check_url(ld, n, "token_url", &t->token_url);
    else if (rc == 0 && t->base_url && aux->api_ok)
        t->token_url = prov_for_api(t->api)->token_url(t->base_url); /* product.md section 3 */

    struct ynode *tk = NULL, *tv = map_get(v, "tenant_id", &tk);
    if (aux->api_ok && t->api == CFG_API_GENESYS && tv) {
        err(ld, tk, "\"tenant_id\" is only for api: identity");
    } else if (aux->api_ok && t->api == CFG_API_IDENTITY) {
        rc = get_str(ld, v, "tenant_id", &n, &s);
        if (rc == 0)
            err(ld, v, "tenant %s (api identity) is missing \"tenant_id\"", q(ld, k->val));
        else if (rc > 0 && !guid_ok(s))
            err(ld, n,
                "invalid tenant_id %s (expected a GUID like "
                "3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01)",
                q(ld, s));
        else if (rc > 0)
            t->tenant_id = xstrdup(s);
    }

    rc = get_str(ld, v, "client_id", &n, &s);
    if (rc > 0)
        t->client_id = xstrdup(s);
    else if (rc == 0)
        err(ld, v, "tenant %s is missing \"client_id\"", q(ld, k->val));

    struct ynode *fv = map_get(v, "client_secret_file", &fkey);
    struct ynode *ev = map_get(v, "client_secret_env", &ekey);
    if (fv && ev) {
        const struct ynode *second =
            fkey->line > ekey->line || (fkey->line == ekey->line && fkey->col > ekey->col) ? fkey
                                                                                           : ekey;
        err(ld, second, "use either client_secret_file or client_secret_env, not both");
    } else if (fv) {
        if (get_str(ld, v, "client_secret_file", &n, &s) > 0 && !(ld->flags & CFG_LOAD_NO_SECRETS))
            secret_from_file(ld, t, n);
    } else if (ev) {
        if (get_str(ld, v, "client_secret_env", &n, &s) > 0 && !(ld->flags & CFG_LOAD_NO_SECRETS))
            secret_from_env(ld, t, n);
    } else if (!map_get(v, "client_secret", NULL)) {
        /* an inline client_secret was already reported with the same advice */
        err(ld, v, "tenant %s needs client_secret_file or client_secret_env", q(ld, k->val));
    }

    /* The largest page the platform serves: a bigger one would pass --check and then fail
     * every cycle with the platform's 400. Without a valid api, the largest of any. */
    unsigned ps = 0, ps_max = 0;
    for (int a = CFG_API_GENESYS; a <= CFG_API_IDENTITY; a++)
        if (prov_for_api((enum cfg_api)a)->page_size_max > ps_max)
            ps_max = prov_for_api((enum cfg_api)a)->page_size_max;
    const struct prov_ops *ops = prov_for_api(aux->api_ok ? t->api : CFG_API_GENESYS);
    t->page_size_roles = ops->page_size_roles;
    t->page_size_users = ops->page_size_users;
    if (aux->api_ok)
        ps_max = ops->page_size_max;
    if (get_uint(ld, v, "page_size", 1, ps_max, &ps) > 0)
        t->page_size_roles = t->page_size_users = ps;

    struct http_block hb;
    parse_http_block(ld, get_map(ld, v, "http", "a mapping (timeout, max_connections, ...)"), &hb);
    http_merge(&t->http, &hb);
    http_check(ld, &t->http, &hb);
    free(hb.v.ca_file);
}

static bool match_by_ok(enum cfg_api api, int m)
{
    return prov_for_api(api)->match_by & PROV_MATCH(m);
}

/* Resolve `source` / `target`; returns the tenant index or -1 (reported). */
static long tenant_lookup(struct loader *ld, const struct ynode *n, const char *s,
                          const struct cfg_config *cfg);

static long job_tenant(struct loader *ld, const struct ynode *job, const char *key,
                       const char *jobname, const struct cfg_config *cfg, const struct ynode **node)
{
    const char *s;
    struct ynode *n;
    int rc = get_str(ld, job, key, &n, &s);
    *node = n;
    if (rc == 0) {
        if (jobname)
            err(ld, job, "job %s is missing \"%s\"", q(ld, jobname), key);
        else
            err(ld, job, "job is missing \"%s\"", key);
    }
    if (rc <= 0)
        return -1;
    return tenant_lookup(ld, n, s, cfg);
}

/* The tenant named by scalar node n (value s): its index, or -1 after saying why. */
static long tenant_lookup(struct loader *ld, const struct ynode *n, const char *s,
                          const struct cfg_config *cfg)
{
    for (size_t i = 0; i < cfg->ntenants; i++)
        if (strcmp(cfg->tenants[i].name, s) == 0)
            return (long)i;
    if (cfg->ntenants == 0) {
        err(ld, n, "unknown tenant %s (no tenants are defined)", q(ld, s));
    } else {
        char list[512];
        size_t o = 0;
        list[0] = '\0';
        /* only well-formed names: a malformed one (already an error of its own) could hold
         * anything, a newline included, and a diagnostic is one line */
        for (size_t i = 0; i < cfg->ntenants && o < sizeof list - 1; i++)
            if (name_ok(cfg->tenants[i].name))
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "",
                                      cfg->tenants[i].name);
        err(ld, n, "unknown tenant %s (defined tenants: %s)", q(ld, s),
            o ? list : "none with a valid name");
    }
    return -1;
}

/* A rename mapping (roles or divisions: `what` is "role" / "division"). Names match
 * case-insensitively, so "A" and "a" are the same source name. */
static void parse_rename(struct loader *ld, const struct ynode *r, const char *what,
                         struct cfg_rename **out, size_t *nout)
{
    if (!r)
        return;
    struct cfg_rename *rn = *out = xcalloc(r->n / 2 + 1, sizeof **out);
    for (size_t i = 0; i + 1 < r->n; i += 2) {
        const struct ynode *k = r->kids[i], *v = r->kids[i + 1];
        bool ok = true;
        if (k->len == 0 || has_ctl(k->val)) {
            err(ld, k, "a %s name in \"rename\" must be a non-empty string", what);
            ok = false;
        }
        if (v->kind == Y_BAD) {
            ok = false;
        } else if (v->kind != Y_SCALAR || is_null(v) || v->len == 0 || has_ctl(v->val)) {
            err(ld, v, "the new name for %s %s must be a non-empty string, not %s", what,
                q(ld, k->val), v->kind == Y_SCALAR ? "empty" : kind_name(v));
            ok = false;
        }
        if (!ok)
            continue;
        bool dup = false;
        for (size_t m = 0; m < *nout && !dup; m++) {
            if (util_fold_cmp(rn[m].from, k->val) == 0) {
                err(ld, k, "%s %s is renamed twice (names are compared case-insensitively)", what,
                    q(ld, k->val));
                dup = true;
            } else if (util_fold_cmp(rn[m].to, v->val) == 0) {
                err(ld, v, "%ss %s and %s are both renamed to %s", what, q(ld, rn[m].from),
                    q(ld, k->val), q(ld, v->val));
                dup = true;
            }
        }
        if (dup)
            continue;
        rn[*nout].from = xstrdup(k->val);
        rn[*nout].to = xstrdup(v->val);
        (*nout)++;
    }
}

/* `tgt_item`: for one target of a `target:` list, that item (already checked to be a
 * non-empty string); NULL when `target:` is one name. */
static void parse_job(struct loader *ld, const struct ynode *v, struct cfg_config *cfg,
                      const struct tenant_aux *aux, struct cfg_job *j,
                      const struct ynode **name_nodes, size_t idx, const struct ynode *tgt_item)
{
    struct ynode *n;
    const char *s;
    const struct ynode *src_node = NULL, *tgt_node = NULL;
    int e;

    j->line = v->line;
    j->column = v->col;
    j->interval_ms = 600000;
    strlist_set_star(&j->roles_include);
    strlist_set_star(&j->users_include);
    strlist_set_star(&j->divisions_include);
    j->max_deletes = 50;
    if (v->kind == Y_BAD)
        return;
    if (v->kind != Y_MAP) {
        err(ld, v, "a job must be a mapping (name, source, target, ...), not %s", kind_name(v));
        return;
    }
    check_keys(ld, v, "in job", JOB_KEYS, false);

    int rc = get_str(ld, v, "name", &n, &s);
    if (rc == 0) {
        err(ld, v, "job is missing \"name\"");
    } else if (rc > 0) {
        if (!name_ok(s)) {
            err(ld, n, "invalid job name %s (use up to %d letters, digits, '.', '_' and '-')",
                q(ld, s), CFG_MAX_NAME);
        } else {
            for (size_t i = 0; i < idx; i++) {
                if (name_nodes[i] && strcmp(name_nodes[i]->val, s) == 0) {
                    err(ld, n, "duplicate job name %s (first defined at line %d, column %d)",
                        q(ld, s), name_nodes[i]->line, name_nodes[i]->col);
                    break;
                }
            }
            name_nodes[idx] = n;
        }
        j->name = xstrdup(s);
    }

    long si = job_tenant(ld, v, "source", j->name, cfg, &src_node);
    long ti;
    if (tgt_item) {
        /* product.md 4b.1: each target of a list is a job of its own, NAME/TARGET */
        ti = tenant_lookup(ld, tgt_item, tgt_item->val, cfg);
        tgt_node = tgt_item;
        j->group = j->name ? j->name : xstrdup("");
        j->name = xasprintf("%s/%s", j->group, tgt_item->val);
    } else {
        ti = job_tenant(ld, v, "target", j->name, cfg, &tgt_node);
    }
    if (si >= 0)
        j->source = &cfg->tenants[si];
    if (ti >= 0)
        j->target = &cfg->tenants[ti];
    if (si >= 0 && si == ti)
        err(ld, tgt_node, "source and target are the same tenant %s", q(ld, j->target->name));

    struct ynode *iv;
    if (get_duration(ld, v, "interval", &iv, &j->interval_ms) > 0 && j->interval_ms < 1000) {
        err(ld, iv, "\"interval\" must be at least 1s");
    }

    const struct ynode *roles =
        get_map(ld, v, "roles", "a mapping (include, exclude, definitions, rename)");
    if (roles) {
        check_keys(ld, roles, "in roles", ROLES_KEYS, false);
        get_strlist(ld, roles, "include", &j->roles_include);
        get_strlist(ld, roles, "exclude", &j->roles_exclude);
        if (get_bool(ld, roles, "definitions", &j->definitions) > 0 && j->definitions && si >= 0 &&
            ti >= 0 && aux[si].api_ok && aux[ti].api_ok && j->source->api != j->target->api)
            err(ld, map_get(roles, "definitions", NULL),
                "\"definitions: true\" needs source and target of the same api (%s is %s, "
                "%s is %s)",
                q(ld, j->source->name), cfg_api_name(j->source->api), q(ld, j->target->name),
                cfg_api_name(j->target->api));
        parse_rename(ld, get_map(ld, roles, "rename", "a mapping of source name: target name"),
                     "role", &j->rename, &j->nrename);
    }

    /* product.md 4a: divisions exist on genesys only; on a job with an identity side the keys
     * would silently mean nothing, so they are an error there. */
    struct ynode *dk = NULL;
    map_get(v, "divisions", &dk);
    const struct ynode *divs = get_map(ld, v, "divisions", "a mapping (include, exclude, rename)");
    if (divs) {
        check_keys(ld, divs, "in divisions", DIVISIONS_KEYS, false);
        get_strlist(ld, divs, "include", &j->divisions_include);
        get_strlist(ld, divs, "exclude", &j->divisions_exclude);
        parse_rename(ld, get_map(ld, divs, "rename", "a mapping of source name: target name"),
                     "division", &j->division_rename, &j->ndivision_rename);
        for (int side = 0; side < 2; side++) {
            long ix = side ? ti : si;
            const struct cfg_tenant *t = side ? j->target : j->source;
            if (ix >= 0 && aux[ix].api_ok && t->api != CFG_API_GENESYS) {
                err(ld, dk,
                    "\"divisions\" needs genesys on both sides (%s tenant %s is %s, which has "
                    "no divisions)",
                    side ? "target" : "source", q(ld, t->name), cfg_api_name(t->api));
                break;
            }
        }
    }

    const struct ynode *users = get_map(ld, v, "users", "a mapping (match_by, include, exclude)");
    if (users) {
        struct ynode *mn;
        check_keys(ld, users, "in users", USERS_KEYS, false);
        if (get_enum(ld, users, "match_by", MATCH_NAMES, &mn, &e) > 0) {
            j->match_by = (enum cfg_match_by)e;
            const struct cfg_tenant *side[2] = {si >= 0 ? j->source : NULL,
                                                ti >= 0 ? j->target : NULL};
            const long sidx[2] = {si, ti};
            for (int i = 0; i < 2; i++) {
                if (!side[i] || !aux[sidx[i]].api_ok || match_by_ok(side[i]->api, e))
                    continue;
                if (i == 1 && side[0] == side[1])
                    continue;
                err(ld, mn, "match_by %s does not work with %s tenant %s (api %s supports: %s)",
                    q(ld, MATCH_NAMES[e]), i ? "target" : "source", q(ld, side[i]->name),
                    cfg_api_name(side[i]->api), prov_for_api(side[i]->api)->match_by_names);
            }
        }
        get_strlist(ld, users, "include", &j->users_include);
        get_strlist(ld, users, "exclude", &j->users_exclude);
    }

    if (get_enum(ld, v, "assignments", ASSIGN_NAMES, NULL, &e) > 0)
        j->assignments = (enum cfg_assignments)e;
    get_bool(ld, v, "prune", &j->prune);
    get_uint(ld, v, "max_deletes", 0, 1000000000, &j->max_deletes);
    get_bool(ld, v, "dry_run", &j->dry_run);
}

/* A job's `target:` list (fan-out, product.md 4b.1) when it is a non-empty sequence of
 * distinct non-empty names, else NULL (a scalar target, or a bad list: then, with `report`,
 * said why, and the job is read once with the list as its target, which fails as such). */
static const struct ynode *fanout_targets(struct loader *ld, const struct ynode *job, bool report)
{
    if (job->kind != Y_MAP)
        return NULL;
    struct ynode *tl = map_get(job, "target", NULL);
    if (!tl || tl->kind != Y_SEQ)
        return NULL;
    if (tl->n == 0) {
        if (report)
            err(ld, tl, "\"target\" is an empty list (name one target, or a list of them)");
        return NULL;
    }
    for (size_t i = 0; i < tl->n; i++) {
        const struct ynode *it = tl->kids[i];
        if (it->kind != Y_SCALAR || it->len == 0 || has_ctl(it->val)) {
            if (report)
                err(ld, it, "each item of \"target\" must be a tenant name");
            return NULL;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(tl->kids[k]->val, it->val) == 0) {
                if (report)
                    err(ld, it, "target %s is listed twice (first at line %d, column %d)",
                        q(ld, it->val), tl->kids[k]->line, tl->kids[k]->col);
                return NULL;
            }
        }
    }
    return tl;
}

/* A file handed over like a secret (a TLS client certificate or key): a relative path is
 * resolved against $CREDENTIALS_DIRECTORY (systemd LoadCredential=), else the config's folder,
 * and the file must be readable now. */
static int get_cred_path(struct loader *ld, const struct ynode *map, const char *key, char **out)
{
    const char *s, *cred = getenv("CREDENTIALS_DIRECTORY");
    struct ynode *v;
    int rc = get_str(ld, map, key, &v, &s);
    if (rc <= 0)
        return rc;
    free(*out);
    *out = s[0] == '/' ? xstrdup(s) : xasprintf("%s/%s", cred && *cred ? cred : ld->basedir, s);
    int fd = open(*out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        err(ld, v, "cannot read %s %s: %s", key, q(ld, *out), strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        err(ld, v, "%s %s is not a regular file", key, q(ld, *out));
    close(fd);
    return 1;
}

static void parse_coordination(struct loader *ld, const struct ynode *root, struct cfg_config *cfg)
{
    struct ynode *ck = NULL, *cv = map_get(root, "coordination", &ck);
    if (!cv || cv->kind == Y_BAD)
        return;
    if (cv->kind != Y_MAP || is_null(cv)) {
        err(ld, cv, "\"coordination\" must be a mapping with an \"etcd\" block, not %s",
            is_null(cv) ? "empty" : kind_name(cv));
        return;
    }
    check_keys(ld, cv, "in coordination", COORD_KEYS, false);
    struct ynode *e = get_map(ld, cv, "etcd", "a mapping (endpoints, prefix, lease_ttl, ...)");
    if (!e) {
        if (!map_get(cv, "etcd", NULL))
            err(ld, ck, "\"coordination\" needs an \"etcd\" block (endpoints: [...])");
        return;
    }
    check_keys(ld, e, "in coordination.etcd", ETCD_KEYS, false);
    struct cfg_coord *c = xcalloc(1, sizeof *c);
    cfg->coordination = c;
    c->line = ck->line;
    c->column = ck->col;
    c->lease_ttl_ms = 15000;
    c->prefix = xstrdup("/rolesyncd/");

    struct ynode *ek = NULL, *ev = map_get(e, "endpoints", &ek);
    struct cfg_strlist raw = {0};
    if (!ev) {
        err(ld, e, "\"coordination.etcd\" needs \"endpoints\" (a list of etcd client URLs)");
    } else if (get_strlist(ld, e, "endpoints", &raw) > 0) {
        if (raw.n == 0)
            err(ld, ev, "\"endpoints\" must name at least one etcd client URL");
        c->endpoints.v = xcalloc(raw.n ? raw.n : 1, sizeof(char *));
        for (size_t i = 0; i < raw.n && i < ev->n; i++) {
            char *u = NULL;
            if (check_url(ld, ev->kids[i], "endpoints", &u) > 0)
                c->endpoints.v[c->endpoints.n++] = u;
        }
    }
    strlist_free(&raw);

    const char *s;
    struct ynode *v;
    if (get_str(ld, e, "prefix", &v, &s) > 0) {
        size_t n = strlen(s);
        if (s[0] != '/') {
            err(ld, v, "\"prefix\" must start with / (e.g. /rolesyncd/)");
        } else {
            free(c->prefix);
            c->prefix = n && s[n - 1] == '/' ? xstrdup(s) : xasprintf("%s/", s);
        }
    }
    if (get_duration(ld, e, "lease_ttl", &v, &c->lease_ttl_ms) > 0) {
        /* etcd leases count whole seconds; a very short one expires under normal jitter, a
         * very long one makes a dead instance's jobs wait that long. */
        if (c->lease_ttl_ms % 1000 || c->lease_ttl_ms < 2000 || c->lease_ttl_ms > 600000)
            err(ld, v, "\"lease_ttl\" must be whole seconds from 2s to 10m");
    }
    if (get_abspath(ld, e, "ca_file", &c->ca_file) > 0) {
        const char *why = ca_file_problem(c->ca_file);
        if (why)
            err(ld, map_get(e, "ca_file", NULL), "ca_file %s cannot be used: %s", q(ld, c->ca_file),
                why);
    }
    bool cert = get_cred_path(ld, e, "client_cert_file", &c->client_cert_file) > 0;
    bool key = get_cred_path(ld, e, "client_key_file", &c->client_key_file) > 0;
    if (cert != key)
        err(ld, e, "\"client_cert_file\" and \"client_key_file\" go together: set both or neither");

    struct ynode *uv = NULL, *pv = NULL;
    const char *user = NULL, *pw = NULL;
    get_str(ld, e, "username", &uv, &user);
    if (map_get(e, "password", NULL))
        err(ld, map_get(e, "password", NULL),
            "an inline \"password\" is not allowed: use password_file");
    get_str(ld, e, "password_file", &pv, &pw);
    if (user && !pw)
        err(ld, uv, "\"username\" needs \"password_file\" (a file with the etcd password)");
    if (pw && !user)
        err(ld, pv, "\"password_file\" needs \"username\"");
    if (user)
        c->username = xstrdup(user);
    if (user && pw && !(ld->flags & CFG_LOAD_NO_SECRETS)) {
        char *origin = NULL;
        read_secret_file(ld, pv, &c->password, &origin);
        free(origin);
    }
}

/* journal: { max_size, keep } (product.md 4c). */
static void parse_journal(struct loader *ld, const struct ynode *root, struct cfg_config *cfg)
{
    const struct ynode *jv = get_map(ld, root, "journal", "a mapping (max_size, keep)");
    if (!jv)
        return;
    check_keys(ld, jv, "in journal", JOURNAL_KEYS, false);
    get_size(ld, jv, "max_size", CFG_JOURNAL_MIN_SIZE, CFG_JOURNAL_MAX_SIZE,
             &cfg->journal_max_size);
    get_uint(ld, jv, "keep", 0, 100, &cfg->journal_keep);
}

static void check_root(struct loader *ld, const struct ynode *root, struct cfg_config *cfg)
{
    int e;

    if (root->kind == Y_BAD)
        return;
    if (root->kind != Y_MAP) {
        err(ld, root,
            "the configuration must be a mapping (state_dir, http, tenants, jobs, ...), "
            "not %s",
            kind_name(root));
        return;
    }
    if (ld->flags & CFG_LOAD_STATE_DIR_ONLY) {
        get_abspath(ld, root, "state_dir", &cfg->state_dir);
        return;
    }
    check_keys(ld, root, "at top level", TOP_KEYS, false);
    get_abspath(ld, root, "state_dir", &cfg->state_dir);
    if (get_enum(ld, root, "log_level", LEVEL_NAMES, NULL, &e) > 0)
        cfg->log_level = (enum log_level)e;
    get_abspath(ld, root, "metrics_file", &cfg->metrics_file);

    struct http_block hb;
    parse_http_block(ld, get_map(ld, root, "http", "a mapping (timeout, max_connections, ...)"),
                     &hb);
    http_merge(&cfg->http, &hb);
    http_check(ld, &cfg->http, &hb);
    free(hb.v.ca_file);

    /* Tenants get their array once, sized up front: jobs point into it. */
    const struct ynode *tenants = get_map(ld, root, "tenants", "a mapping of tenant names");
    struct tenant_aux *aux = NULL;
    if (tenants) {
        size_t nt = tenants->n / 2;
        cfg->tenants = xcalloc(nt ? nt : 1, sizeof *cfg->tenants);
        aux = xcalloc(nt ? nt : 1, sizeof *aux);
        for (size_t i = 0; i < nt; i++) {
            parse_tenant(ld, tenants->kids[2 * i], tenants->kids[2 * i + 1], &cfg->http,
                         &cfg->tenants[i], &aux[i]);
            cfg->ntenants++;
        }
    }

    struct ynode *jk = NULL, *jobs = map_get(root, "jobs", &jk);
    if (jobs && jobs->kind != Y_BAD && !is_null(jobs)) {
        if (jobs->kind != Y_SEQ) {
            err(ld, jobs, "\"jobs\" must be a list of jobs (- name: ...), not %s", kind_name(jobs));
        } else {
            const struct ynode **names = xcalloc(jobs->n ? jobs->n : 1, sizeof *names);
            /* A job whose target is a list becomes one job per target (fan-out): count them
             * first, jobs are pointed into. */
            size_t total = 0;
            for (size_t i = 0; i < jobs->n; i++) {
                const struct ynode *tl = fanout_targets(ld, jobs->kids[i], false);
                total += tl ? tl->n : 1;
            }
            cfg->jobs = xcalloc(total ? total : 1, sizeof *cfg->jobs);
            for (size_t i = 0; i < jobs->n; i++) {
                const struct ynode *tl = fanout_targets(ld, jobs->kids[i], true);
                if (!tl) {
                    parse_job(ld, jobs->kids[i], cfg, aux, &cfg->jobs[cfg->njobs++], names, i,
                              NULL);
                    continue;
                }
                for (size_t k = 0; k < tl->n; k++)
                    parse_job(ld, jobs->kids[i], cfg, aux, &cfg->jobs[cfg->njobs++], names, i,
                              tl->kids[k]);
            }
            free(names);
        }
    }
    if (cfg->njobs == 0)
        warn(ld, jk ? jk : root, "no jobs are defined; the daemon will have nothing to do");
    free(aux);
    parse_coordination(ld, root, cfg);
    parse_journal(ld, root, cfg);
}

/* ---------------------------------------------------------------------------------------- */
/* Entry points                                                                             */

static int diag_cmp(const void *a, const void *b)
{
    const struct diag *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void diags_emit(struct loader *ld, struct diaglist *l, char ***out, size_t *nout)
{
    if (l->n > 1) /* qsort's base must not be NULL, even for zero elements */
        qsort(l->v, l->n, sizeof *l->v, diag_cmp);
    if (l->n)
        *out = xrealloc(*out, (*nout + l->n) * sizeof **out);
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].line > 0)
            (*out)[(*nout)++] =
                xasprintf("%s:%d:%d: %s", ld->file, l->v[i].line, l->v[i].col, l->v[i].msg);
        else
            (*out)[(*nout)++] = xasprintf("%s: %s", ld->file, l->v[i].msg);
        free(l->v[i].msg);
    }
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

static void config_defaults(struct cfg_config *cfg, const char *name)
{
    const char *sd = getenv("STATE_DIRECTORY");
    cfg->file = xstrdup(name);
    /* systemd joins several StateDirectory= entries with ':'; ours is the first */
    if (sd && *sd && *sd != ':')
        cfg->state_dir = xstrndup(sd, strcspn(sd, ":"));
    else
        cfg->state_dir = xstrdup(CFG_DEFAULT_STATE_DIR);
    cfg->log_level = LOG_LVL_INFO;
    cfg->journal_max_size = JOURNAL_DEFAULT_MAX_SIZE;
    cfg->journal_keep = JOURNAL_DEFAULT_KEEP;
    http_defaults(&cfg->http);
}

static int load_buffer(const char *name, const char *buf, size_t len, unsigned flags,
                       struct cfg_config **out, struct cfg_diags *diags)
{
    struct loader ld;
    struct cfg_config *cfg = xcalloc(1, sizeof *cfg);
    struct ynode *root;
    int rc;

    memset(&ld, 0, sizeof ld);
    ld.file = name;
    ld.flags = flags;
    ld.basedir = dir_of(name);
    config_defaults(cfg, name);

    if (len > CFG_MAX_FILE) {
        err_at(&ld, 0, 0, "cannot read: file is larger than %d KiB", CFG_MAX_FILE / 1024);
    } else {
        root = parse_tree(&ld, buf, len);
        if (root) {
            check_root(&ld, root, cfg);
            node_free(root);
        }
    }

    rc = ld.errs.n ? -1 : 0;
    diags_emit(&ld, &ld.errs, &diags->errors, &diags->nerrors);
    diags_emit(&ld, &ld.warns, &diags->warnings, &diags->nwarnings);
    free(ld.basedir);
    if (rc == 0)
        *out = cfg;
    else
        cfg_free(cfg);
    return rc;
}

int cfg_load_buffer(const char *name, const char *buf, size_t len, struct cfg_config **out,
                    struct cfg_diags *diags)
{
    return load_buffer(name, buf, len, 0, out, diags);
}

int cfg_load(const char *path, struct cfg_config **out, struct cfg_diags *diags)
{
    return cfg_load_flags(path, 0, out, diags);
}

int cfg_load_flags(const char *path, unsigned flags, struct cfg_config **out,
                   struct cfg_diags *diags)
{
    char *buf = NULL;
    size_t len = 0;
    int fd, rc, e = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        e = errno;
    } else {
        buf = xmalloc(CFG_MAX_FILE + 2);
        for (;;) {
            ssize_t r = read(fd, buf + len, CFG_MAX_FILE + 1 - len);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                e = errno;
                break;
            }
            if (r == 0 || (len += (size_t)r) > CFG_MAX_FILE)
                break;
        }
        close(fd);
    }
    if (e) {
        diags->errors = xrealloc(diags->errors, (diags->nerrors + 1) * sizeof *diags->errors);
        diags->errors[diags->nerrors++] = xasprintf("%s: cannot read: %s", path, strerror(e));
        free(buf);
        return -1;
    }
    rc = load_buffer(path, buf, len, flags, out, diags);
    free(buf);
    return rc;
}

void cfg_free(struct cfg_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->ntenants; i++) {
        struct cfg_tenant *t = &cfg->tenants[i];
        free(t->name);
        free(t->base_url);
        free(t->write_base_url);
        free(t->token_url);
        free(t->tenant_id);
        free(t->client_id);
        util_free_secret(t->client_secret);
        free(t->secret_origin);
        free(t->http.ca_file);
    }
    free(cfg->tenants);
    for (size_t i = 0; i < cfg->njobs; i++) {
        struct cfg_job *j = &cfg->jobs[i];
        free(j->name);
        free(j->group);
        strlist_free(&j->roles_include);
        strlist_free(&j->roles_exclude);
        strlist_free(&j->users_include);
        strlist_free(&j->users_exclude);
        for (size_t r = 0; r < j->nrename; r++) {
            free(j->rename[r].from);
            free(j->rename[r].to);
        }
        free(j->rename);
        strlist_free(&j->divisions_include);
        strlist_free(&j->divisions_exclude);
        for (size_t r = 0; r < j->ndivision_rename; r++) {
            free(j->division_rename[r].from);
            free(j->division_rename[r].to);
        }
        free(j->division_rename);
    }
    free(cfg->jobs);
    free(cfg->file);
    free(cfg->state_dir);
    free(cfg->metrics_file);
    free(cfg->http.ca_file);
    if (cfg->coordination) {
        struct cfg_coord *c = cfg->coordination;
        strlist_free(&c->endpoints);
        free(c->prefix);
        free(c->ca_file);
        free(c->client_cert_file);
        free(c->client_key_file);
        free(c->username);
        util_free_secret(c->password);
        free(c);
    }
    free(cfg);
}

static bool opt_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool cfg_coord_equal(const struct cfg_coord *a, const struct cfg_coord *b)
{
    if (!a || !b)
        return a == b;
    if (a->endpoints.n != b->endpoints.n || a->lease_ttl_ms != b->lease_ttl_ms)
        return false;
    for (size_t i = 0; i < a->endpoints.n; i++)
        if (strcmp(a->endpoints.v[i], b->endpoints.v[i]) != 0)
            return false;
    return opt_eq(a->prefix, b->prefix) && opt_eq(a->ca_file, b->ca_file) &&
           opt_eq(a->client_cert_file, b->client_cert_file) &&
           opt_eq(a->client_key_file, b->client_key_file) && opt_eq(a->username, b->username) &&
           opt_eq(a->password, b->password);
}

void cfg_diags_free(struct cfg_diags *d)
{
    for (size_t i = 0; i < d->nerrors; i++)
        free(d->errors[i]);
    for (size_t i = 0; i < d->nwarnings; i++)
        free(d->warnings[i]);
    free(d->errors);
    free(d->warnings);
    memset(d, 0, sizeof *d);
}

const struct cfg_tenant *cfg_find_tenant(const struct cfg_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->ntenants; i++)
        if (strcmp(cfg->tenants[i].name, name) == 0)
            return &cfg->tenants[i];
    return NULL;
}

const struct cfg_job *cfg_find_job(const struct cfg_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->njobs; i++)
        if (cfg->jobs[i].name && strcmp(cfg->jobs[i].name, name) == 0)
            return &cfg->jobs[i];
    return NULL;
}
