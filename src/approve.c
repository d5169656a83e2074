/* approve.c — deletion sets, their canonical encoding and fingerprint, the subset rule (the
 * pure part of approve.h; the state files are in approve_store.c). */
#include "rolesync/approve.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rolesync/plan.h"
#include "rolesync/util.h"

struct approve_set *approve_set_new(void)
{
    return xcalloc(1, sizeof(struct approve_set));
}

void approve_set_free(struct approve_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].key);
        free(s->items[i].label);
    }
    free(s->items);
    free(s);
}

static void push(struct approve_set *s, char *key, char *label)
{
    util_grow((void **)&s->items, &s->cap, s->n + 1, sizeof(*s->items));
    s->items[s->n++] = (struct approve_item){key, label};
    s->finished = false;
}

void approve_set_add_key(struct approve_set *s, const char *key, const char *label)
{
    push(s, xstrdup(key), xstrdup(label ? label : key));
}

/* One field of a key: folded as the core compares names, then escaped so that it cannot
 * contain the separators (TAB, LF) of the encoding. */
static void put_field(FILE *f, const char *s)
{
    char *folded = util_strdup_fold(s ? s : "");
    for (const char *c = folded; *c; c++) {
        switch (*c) {
        case '\\':
            fputs("\\\\", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        default:
            fputc(*c, f);
        }
    }
    free(folded);
}

static FILE *mem_open(char **buf, size_t *len)
{
    FILE *f = open_memstream(buf, len);
    if (!f)
        abort(); /* out of memory, as everywhere else (util.h) */
    return f;
}

void approve_set_add_role(struct approve_set *s, const char *role)
{
    char *key, *label;
    size_t kl, ll;
    FILE *k = mem_open(&key, &kl), *l = mem_open(&label, &ll);
    fputs("role\t", k);
    put_field(k, role);
    fputs("- role ", l);
    plan_put_quoted(l, role);
    fclose(k);
    fclose(l);
    push(s, key, label);
}

void approve_set_add_grant(struct approve_set *s, const char *user, const char *role,
                           enum approve_div div, const char *div_name)
{
    char *key, *label;
    size_t kl, ll;
    FILE *k = mem_open(&key, &kl), *l = mem_open(&label, &ll);
    fputs("grant\t", k);
    put_field(k, user);
    fputc('\t', k);
    put_field(k, role);
    fputc('\t', k);
    fputs("- user ", l);
    plan_put_plain(l, user);
    fputs(" role ", l);
    plan_put_quoted(l, role);
    switch (div) {
    case APPROVE_DIV_NONE:
        break;
    case APPROVE_DIV_HOME:
        fputs("home", k); /* the plan names no division for the home one either */
        break;
    case APPROVE_DIV_ALL:
        fputc('*', k);
        fputs(" division ", l);
        plan_put_quoted(l, "*");
        break;
    case APPROVE_DIV_NAMED:
        fputc('=', k);
        put_field(k, div_name);
        fputs(" division ", l);
        plan_put_quoted(l, div_name);
        break;
    }
    fclose(k);
    fclose(l);
    push(s, key, label);
}

static int by_key(const void *a, const void *b)
{
    const struct approve_item *x = a, *y = b;
    return strcmp(x->key, y->key);
}

void approve_set_finish(struct approve_set *s)
{
    if (s->finished)
        return;
    /* stable for equal keys is not needed: duplicates are one deletion whatever their label */
    if (s->n > 1)
        qsort(s->items, s->n, sizeof(*s->items), by_key);
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (w > 0 && strcmp(s->items[w - 1].key, s->items[i].key) == 0) {
            free(s->items[i].key);
            free(s->items[i].label);
            continue;
        }
        s->items[w++] = s->items[i];
    }
    s->n = w;
    s->finished = true;
}

/* The division of target qualifier `qual` of `d`, as a deletion names it. */
static void add_grant(struct approve_set *s, const struct diff *d, uint32_t tgt_user, uint32_t ref,
                      uint32_t qual)
{
    const struct mdl_snapshot *t = d->tgt;
    enum approve_div div = APPROVE_DIV_NONE;
    const char *name = NULL;
    if (t->divided) {
        if (qual == 0) {
            div = APPROVE_DIV_HOME;
        } else if (qual < t->nquals && t->quals[qual].all) {
            div = APPROVE_DIV_ALL;
        } else {
            div = APPROVE_DIV_NAMED;
            name = diff_qual_name(d, qual);
        }
    }
    approve_set_add_grant(s, diff_user_label(d, tgt_user), diff_ref_name(d, ref), div, name);
}

struct holder_ctx {
    struct approve_set *s;
    const struct diff *d;
    uint32_t role;
};

static void add_holder(uint32_t tgt_user, uint32_t qual, void *arg)
{
    struct holder_ctx *h = arg;
    add_grant(h->s, h->d, tgt_user, h->role, qual);
}

struct approve_set *approve_set_from_diff(const struct diff *d)
{
    struct approve_set *s = approve_set_new();
    for (size_t i = 0; i < d->nchanges; i++) {
        const struct diff_change *c = &d->changes[i];
        if (!c->add)
            add_grant(s, d, c->tgt_user, c->ref, c->qual);
    }
    for (size_t i = d->ncreates + d->nupdates; i < d->nrole_ops; i++) {
        const struct diff_role_op *op = &d->role_ops[i];
        approve_set_add_role(s, op->name);
        struct holder_ctx h = {s, d, op->tgt_role};
        diff_delete_holders(d, op, add_holder, &h);
    }
    approve_set_finish(s);
    return s;
}

char *approve_encode(struct approve_set *s)
{
    char *buf;
    size_t len;
    approve_set_finish(s);
    FILE *f = mem_open(&buf, &len);
    for (size_t i = 0; i < s->n; i++) {
        fputs(s->items[i].key, f);
        fputc('\n', f);
    }
    fclose(f);
    return buf;
}

void approve_fingerprint(struct approve_set *s, char out[APPROVE_FP_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *text = approve_encode(s);
    if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        abort(); /* libcrypto without SHA-256 cannot happen on a working system */
    free(text);
    memcpy(out, APPROVE_FP_PREFIX, sizeof APPROVE_FP_PREFIX - 1);
    char *p = out + sizeof APPROVE_FP_PREFIX - 1;
    for (unsigned i = 0; i < mdlen; i++) {
        *p++ = hex[md[i] >> 4];
        *p++ = hex[md[i] & 0xf];
    }
    *p = '\0';
}

bool approve_fingerprint_parse(const char *fp, char norm[APPROVE_FP_LEN])
{
    size_t pl = sizeof APPROVE_FP_PREFIX - 1;
    if (!fp || strlen(fp) != APPROVE_FP_LEN - 1 || strncasecmp(fp, APPROVE_FP_PREFIX, pl) != 0)
        return false;
    for (const char *c = fp + pl; *c; c++)
        if (!isxdigit((unsigned char)*c))
            return false;
    if (norm) {
        memcpy(norm, APPROVE_FP_PREFIX, pl);
        for (size_t i = pl; i < APPROVE_FP_LEN; i++)
            norm[i] = (char)tolower((unsigned char)fp[i]);
    }
    return true;
}

size_t approve_new_items(struct approve_set *fresh, struct approve_set *approved, size_t **out)
{
    size_t n = 0, cap = 0;
    approve_set_finish(fresh);
    approve_set_finish(approved);
    *out = NULL;
    /* both sorted by key: one merge walk */
    size_t j = 0;
    for (size_t i = 0; i < fresh->n; i++) {
        int c = 1;
        while (j < approved->n && (c = strcmp(approved->items[j].key, fresh->items[i].key)) < 0)
            j++;
        if (j < approved->n && c == 0)
            continue;
        util_grow((void **)out, &cap, n + 1, sizeof(**out));
        (*out)[n++] = i;
    }
    return n;
}
