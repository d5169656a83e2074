/* diff.c — scope, role and user matching, definitions, assignments, not-converging memory.
 * Contract in diff.h. Everything per user is O(roles of that user) with hash lookups; everything
 * per role is O(roles x patterns); nothing scans users inside a loop over users. */
#include "rolesync/diff.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/util.h"

#define uthash_fatal(msg) abort()
#include <uthash.h>

/* ---- hashing -------------------------------------------------------------------------------*/

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* fnv1a of a name case-folded (util_fold_*): one identity for "Équipe" and "équipe". */
static uint64_t fnv1a_folded(uint64_t h, const char *s)
{
    char *f = util_strdup_fold(s ? s : "");
    h = fnv1a(h, f);
    free(f);
    return h;
}

static uint64_t mix64(uint64_t x)
{
    /* splitmix64 finaliser: makes sums of identities a good order-independent set hash */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

#define FNV_BASIS 0xcbf29ce484222325ULL

/* ---- memory --------------------------------------------------------------------------------*/

/* Longest back-off between re-sends of an item that does not converge: 2^6 = 64 cycles. */
#define MEM_MAX_STRIKES 6u

struct mem_entry {
    char *key; /* "<kind>:<key>" */
    uint64_t written, observed;
    bool has_observed;
    unsigned strikes; /* times this same value was written again without being kept */
    unsigned skipped; /* cycles suppressed since the last write */
    uint64_t touch;   /* generation of the last diff (or write) that concerned it */
    UT_hash_handle hh;
};

struct diff_memory {
    struct mem_entry *items;
    uint64_t gen; /* incremented by every diff_compute */
};

struct diff_memory *diff_memory_new(void)
{
    return xcalloc(1, sizeof(struct diff_memory));
}

void diff_memory_free(struct diff_memory *m)
{
    if (!m)
        return;
    struct mem_entry *e, *tmp;
    HASH_ITER(hh, m->items, e, tmp)
    {
        HASH_DEL(m->items, e);
        free(e->key);
        free(e);
    }
    free(m);
}

size_t diff_memory_count(const struct diff_memory *m)
{
    return m ? HASH_COUNT(m->items) : 0;
}

static char *mem_fullkey(enum diff_mem_kind kind, const char *key)
{
    return xasprintf("%c:%s", kind == DIFF_MEM_ROLE ? 'r' : 'u', key);
}

static struct mem_entry *mem_find(struct diff_memory *m, enum diff_mem_kind kind, const char *key)
{
    char *k = mem_fullkey(kind, key);
    struct mem_entry *e;
    HASH_FIND_STR(m->items, k, e);
    free(k);
    return e;
}

void diff_memory_note_written(struct diff_memory *m, enum diff_mem_kind kind, const char *key,
                              uint64_t want)
{
    if (!m || !key)
        return;
    struct mem_entry *e = mem_find(m, kind, key);
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        e->key = mem_fullkey(kind, key);
        HASH_ADD_KEYPTR(hh, m->items, e->key, strlen(e->key), e);
    } else if (e->written == want && e->has_observed) {
        /* The same value again, after it was seen not to stick: back off further. */
        if (e->strikes < MEM_MAX_STRIKES)
            e->strikes++;
    } else {
        e->strikes = 0;
    }
    e->skipped = 0;
    e->written = want;
    e->has_observed = false;
    e->observed = 0;
    e->touch = m->gen;
}

enum mem_verdict {
    MEM_PLAN = 0, /* nothing known against it: plan the item */
    MEM_SKIP,     /* not converging: report it, do not send it this cycle */
    MEM_RESEND,   /* not converging, but due for another try: report it and send it */
};

/* MEM_SKIP / MEM_RESEND when the item was written with this very value and the target still
 * shows (the first time: now shows) something else: the target did not keep it. A write can
 * also be lost once (a platform glitch), so suppression backs off instead of lasting forever:
 * after 1 suppressed cycle the item is sent again, then after 2, 4, ... up to 64
 * (diff_memory_note_written counts the strikes). That is "not every cycle", yet a lost write
 * heals within two cycles. A re-send cycle still reports the item: the target did not keep it
 * the last time, and only the next read can say whether it does now. */
static enum mem_verdict mem_check(struct diff_memory *m, enum diff_mem_kind kind, const char *key,
                                  uint64_t want, uint64_t have)
{
    if (!m)
        return MEM_PLAN;
    struct mem_entry *e = mem_find(m, kind, key);
    if (!e || e->written != want)
        return MEM_PLAN;
    e->touch = m->gen;
    if (!e->has_observed) {
        e->has_observed = true;
        e->observed = have;
    } else if (e->observed != have) {
        return MEM_PLAN;
    }
    if (e->skipped >= (1u << e->strikes))
        return MEM_RESEND; /* time to try again */
    e->skipped++;
    return MEM_SKIP;
}

/* The reason of a not-converging item, marked when this cycle sends it again. Takes `reason`. */
static char *nc_reason(enum mem_verdict v, char *reason)
{
    if (v != MEM_RESEND)
        return reason;
    char *r = xasprintf("%s; sent again this cycle to see whether it holds now", reason);
    free(reason);
    return r;
}

static void mem_sweep(struct diff_memory *m)
{
    struct mem_entry *e, *tmp;
    HASH_ITER(hh, m->items, e, tmp)
    {
        if (e->touch < m->gen) {
            HASH_DEL(m->items, e);
            free(e->key);
            free(e);
        }
    }
}

/* ---- private storage -----------------------------------------------------------------------*/

struct diff_priv {
    char **owned; /* strings freed with the diff */
    size_t nowned, owned_cap;
    size_t role_ops_cap, changes_cap, users_cap, unmapped_cap, conflicts_cap, nc_cap, amb_cap;
    size_t not_copied_cap, unmapped_quals_cap, not_pruned_cap;
    unsigned char *tgt_user_in_scope; /* [tgt->nusers]: keyed, in scope, not deleted */
    struct pair *pairs;               /* matched users, ascending target (diff_matched_source) */
    size_t npairs;
};

static char *own(struct diff *d, char *s)
{
    struct diff_priv *p = d->priv;
    util_grow((void **)&p->owned, &p->owned_cap, p->nowned + 1, sizeof(char *));
    p->owned[p->nowned++] = s;
    return s;
}

static void add_conflict(struct diff *d, uint32_t s1, uint32_t s2, uint32_t t1, uint32_t t2,
                         const char *reason)
{
    struct diff_report *r = &d->report;
    util_grow((void **)&r->conflicts, &d->priv->conflicts_cap, r->nconflicts + 1,
              sizeof(*r->conflicts));
    r->conflicts[r->nconflicts++] = (struct diff_conflict){s1, s2, t1, t2, reason};
}

static void add_not_copied(struct diff *d, uint32_t src_role)
{
    struct diff_report *r = &d->report;
    util_grow((void **)&r->not_copied, &d->priv->not_copied_cap, r->nnot_copied + 1,
              sizeof(*r->not_copied));
    r->not_copied[r->nnot_copied++] = src_role;
}

static void add_not_converging(struct diff *d, enum diff_mem_kind kind, const char *name,
                               char *reason)
{
    struct diff_report *r = &d->report;
    util_grow((void **)&r->not_converging, &d->priv->nc_cap, r->nnot_converging + 1,
              sizeof(*r->not_converging));
    r->not_converging[r->nnot_converging++] =
        (struct diff_not_converging){kind, own(d, xstrdup(name)), own(d, reason)};
}

/* ---- scope helpers -------------------------------------------------------------------------*/

/* The first pattern of `l` that matches `s`, or NULL. The scope decisions and their
 * explanation (diff_scope_why) both go through it, so an explanation names the very glob that
 * decided. */
static const char *list_first_match(const struct cfg_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (util_glob_match(l->v[i], s))
            return l->v[i];
    return NULL;
}

static bool list_match(const struct cfg_strlist *l, const char *s)
{
    return list_first_match(l, s) != NULL;
}

/* An empty include list selects nothing (config fills the default ["*"]). */
static bool in_scope(const struct cfg_strlist *inc, const struct cfg_strlist *exc, const char *s)
{
    return s && list_match(inc, s) && !list_match(exc, s);
}

bool diff_scope_why(const struct cfg_strlist *inc, const struct cfg_strlist *exc, const char *s,
                    const char **included_by, const char **excluded_by)
{
    *included_by = s ? list_first_match(inc, s) : NULL;
    *excluded_by = s ? list_first_match(exc, s) : NULL;
    return in_scope(inc, exc, s);
}

static const char *rename_forward(const struct cfg_job *j, const char *src_name)
{
    for (size_t i = 0; i < j->nrename; i++)
        if (util_fold_cmp(j->rename[i].from, src_name) == 0)
            return j->rename[i].to;
    return src_name;
}

static const char *rename_back(const struct cfg_job *j, const char *tgt_name)
{
    for (size_t i = 0; i < j->nrename; i++)
        if (util_fold_cmp(j->rename[i].to, tgt_name) == 0)
            return j->rename[i].from;
    return tgt_name;
}

/* product.md 4.6: only a job whose roles.include names the administrator role verbatim may
 * revoke it: the exact name, case included, not a glob and not a case-insensitive match (the
 * safer reading of a rule whose purpose is to stop accidental lock-outs). */
static bool named_verbatim(const struct cfg_strlist *inc, const char *name)
{
    for (size_t i = 0; i < inc->n; i++) {
        const char *pat = inc->v[i];
        if (strpbrk(pat, "*?") == NULL && strcmp(pat, name) == 0)
            return true;
    }
    return false;
}

static bool streq0(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* ---- role candidate index (target roles by lower name / builtin key) -----------------------*/

struct cand {
    char *key; /* owned */
    uint32_t n, first, second;
    UT_hash_handle hh;
};

/* "prefix" + s, case-folded (util_fold_*): the key of a case-insensitive table. */
static char *folded_key(const char *prefix, const char *s)
{
    char *raw = xasprintf("%s%s", prefix, s), *k = util_strdup_fold(raw);
    free(raw);
    return k;
}

static void cand_add(struct cand **h, const char *prefix, const char *s, uint32_t idx)
{
    char *k = folded_key(prefix, s);
    struct cand *e;
    HASH_FIND_STR(*h, k, e);
    if (e) {
        free(k);
        if (e->n++ == 1)
            e->second = idx;
        return;
    }
    e = xcalloc(1, sizeof(*e));
    e->key = k;
    e->n = 1;
    e->first = idx;
    e->second = MDL_NONE;
    HASH_ADD_KEYPTR(hh, *h, e->key, strlen(k), e);
}

static const struct cand *cand_find(struct cand *h, const char *prefix, const char *s)
{
    char *k = folded_key(prefix, s);
    struct cand *e;
    HASH_FIND_STR(h, k, e);
    free(k);
    return e;
}

static void cand_free(struct cand **h)
{
    struct cand *e, *tmp;
    HASH_ITER(hh, *h, e, tmp)
    {
        HASH_DEL(*h, e);
        free(e->key);
        free(e);
    }
}

/* ---- roles ---------------------------------------------------------------------------------*/

static char *role_mem_key(const char *tgt_name, const char *builtin_key)
{
    return builtin_key ? folded_key("k:", builtin_key) : folded_key("n:", tgt_name);
}

static uint64_t def_hash(const char *desc, const char *def, bool builtin)
{
    /* What the core compares, hence what is written: built-ins only their definition. */
    uint64_t h = FNV_BASIS;
    if (!builtin)
        h = fnv1a(h, desc ? desc : "");
    h = fnv1a(h ^ 0xff, "|");
    return fnv1a(h, def ? def : "");
}

#define HASH_DELETED 0x64656c6574656421ULL /* "deleted!" */

static void push_role_op(struct diff *d, struct diff_role_op op)
{
    util_grow((void **)&d->role_ops, &d->priv->role_ops_cap, d->nrole_ops + 1,
              sizeof(*d->role_ops));
    d->role_ops[d->nrole_ops++] = op;
}

static const char *fields_text(unsigned f)
{
    switch (f & (DIFF_F_DESCRIPTION | DIFF_F_DEFINITION)) {
    case DIFF_F_DESCRIPTION:
        return "description";
    case DIFF_F_DEFINITION:
        return "permission policies";
    default:
        return "description and permission policies";
    }
}

/* Role mapping, one pass a function. The passes share the candidate tables of the target's
 * roles and, per target role, how many source roles map to it (and which first), in scope or
 * not. */
struct rolemap {
    struct diff *d;
    struct diff_memory *mem;
    bool defs;                     /* definitions are written (roles.definitions, same api) */
    struct cand *by_name, *by_key; /* target roles by folded name ("f:" = foreign) and key */
    uint32_t *nmappers, *mapper;   /* per target role: source roles mapping to it, the first */
    uint32_t *nin, *inmapper;      /* the same, counting only in-scope source roles */
};

/* Pass 1: each source role's counterpart (also for out-of-scope roles: a target role takes
 * its counterpart's scope, and prune must not delete a role a source role maps to). An
 * out-of-scope role never makes a conflict: it takes no part in the job (product.md 4.2). */
static void pass_counterparts(struct rolemap *m)
{
    const struct cfg_job *j = m->d->job;
    const struct mdl_snapshot *src = m->d->src, *tgt = m->d->tgt;
    bool same_api = src->api == tgt->api;
    uint32_t *nmappers = m->nmappers;
    uint32_t *mapper = m->mapper;
    uint32_t *nin = m->nin;
    uint32_t *inmapper = m->inmapper;
    struct cand *by_name = m->by_name;
    struct cand *by_key = m->by_key;
    struct diff *d = m->d;

    for (size_t s = 0; s < src->nroles; s++) {
        const struct mdl_role *r = &src->roles[s];
        struct diff_src_role *sr = &d->src_roles[s];
        sr->map = MDL_NONE;
        if (r->foreign) {
            sr->status = DIFF_ROLE_FOREIGN;
            sr->reason = "not a tenant role";
            continue;
        }
        sr->in_scope = in_scope(&j->roles_include, &j->roles_exclude, r->name);
        const struct cand *c = NULL;
        if (r->builtin_key) {
            if (!same_api) {
                sr->status = DIFF_ROLE_UNMAPPED;
                sr->reason = "built-in roles do not map across apis";
                continue;
            }
            c = cand_find(by_key, "", r->builtin_key);
        } else {
            c = cand_find(by_name, "", rename_forward(j, r->name));
            if (c && c->n == 1 && tgt->roles[c->first].builtin_key && !sr->in_scope) {
                sr->status = DIFF_ROLE_OUT_OF_SCOPE;
                sr->reason = "out of scope";
                continue;
            }
            if (c && c->n == 1 && tgt->roles[c->first].builtin_key) {
                sr->status = DIFF_ROLE_CONFLICT;
                sr->reason = "target name belongs to a built-in role";
                add_conflict(d, (uint32_t)s, MDL_NONE, c->first, MDL_NONE, sr->reason);
                continue;
            }
        }
        if (!c) {
            sr->status = DIFF_ROLE_UNMAPPED; /* may become CREATE below */
            sr->reason = r->builtin_key ? "built-in role missing on the target"
                                        : "no role with that name on the target";
            continue;
        }
        if (c->n > 1 && !sr->in_scope) {
            sr->status = DIFF_ROLE_OUT_OF_SCOPE;
            sr->reason = "out of scope";
            continue;
        }
        if (c->n > 1) {
            sr->status = DIFF_ROLE_CONFLICT;
            sr->reason = r->builtin_key ? "two target roles share the built-in key"
                                        : "two target roles match the name";
            add_conflict(d, (uint32_t)s, MDL_NONE, c->first, c->second, sr->reason);
            /* both target roles are left alone */
            nmappers[c->first] = nmappers[c->second] = 2;
            nin[c->first] = nin[c->second] = 2;
            continue;
        }
        sr->status = DIFF_ROLE_MAPPED;
        sr->map = c->first;
        if (nmappers[c->first]++ == 0)
            mapper[c->first] = (uint32_t)s;
        if (sr->in_scope && nin[c->first]++ == 0)
            inmapper[c->first] = (uint32_t)s;
    }
}

/* Pass 1b: where an out-of-scope role maps to the same target role as others, it steps
 * aside: the in-scope one keeps the target role (a rename onto an excluded role's name is
 * not a conflict), and with none in scope the first one does (the target role is then out
 * of scope, as its counterpart is). Only in-scope roles can still collide below. */
static void pass_step_aside(struct rolemap *m)
{
    const struct mdl_snapshot *src = m->d->src, *tgt = m->d->tgt;
    uint32_t *nmappers = m->nmappers;
    uint32_t *mapper = m->mapper;
    uint32_t *nin = m->nin;
    uint32_t *inmapper = m->inmapper;
    struct diff *d = m->d;

    for (size_t s = 0; s < src->nroles; s++) {
        struct diff_src_role *sr = &d->src_roles[s];
        if (sr->status != DIFF_ROLE_MAPPED || nmappers[sr->map] < 2 || sr->in_scope)
            continue;
        uint32_t t = sr->map;
        if (nin[t] == 0 && mapper[t] == s)
            continue; /* the one that stays */
        sr->status = DIFF_ROLE_OUT_OF_SCOPE;
        sr->reason = "out of scope";
        sr->map = MDL_NONE;
    }
    for (size_t t = 0; t < tgt->nroles; t++) {
        if (nmappers[t] < 2)
            continue;
        nmappers[t] = nin[t] ? nin[t] : 1;
        if (nin[t])
            mapper[t] = inmapper[t];
    }
}

/* Pass 2: two source roles mapping to one target role is a conflict as well. */
static void pass_two_sources(struct rolemap *m)
{
    const struct mdl_snapshot *src = m->d->src;
    uint32_t *nmappers = m->nmappers;
    uint32_t *mapper = m->mapper;
    struct diff *d = m->d;

    for (size_t s = 0; s < src->nroles; s++) {
        struct diff_src_role *sr = &d->src_roles[s];
        if (sr->status != DIFF_ROLE_MAPPED || nmappers[sr->map] < 2)
            continue;
        uint32_t t = sr->map, first = mapper[t];
        if (first != s) {
            if (d->src_roles[first].status == DIFF_ROLE_MAPPED) {
                d->src_roles[first].status = DIFF_ROLE_CONFLICT;
                d->src_roles[first].reason = "two source roles map to one target role";
                d->src_roles[first].map = MDL_NONE;
            }
            add_conflict(d, first, (uint32_t)s, t, MDL_NONE,
                         "two source roles map to one target role");
        }
        sr->status = DIFF_ROLE_CONFLICT;
        sr->reason = "two source roles map to one target role";
        sr->map = MDL_NONE;
    }
}

/* Target role facts. */
static void pass_target_facts(struct rolemap *m)
{
    const struct cfg_job *j = m->d->job;
    const struct mdl_snapshot *src = m->d->src, *tgt = m->d->tgt;
    uint32_t *nmappers = m->nmappers;
    uint32_t *mapper = m->mapper;
    struct diff *d = m->d;

    for (size_t t = 0; t < tgt->nroles; t++) {
        const struct mdl_role *r = &tgt->roles[t];
        struct diff_tgt_role *tr = &d->tgt_roles[t];
        tr->src = MDL_NONE;
        tr->conflict = nmappers[t] >= 2;
        if (nmappers[t] == 1)
            tr->src = mapper[t];
        tr->scope_name = tr->src != MDL_NONE ? src->roles[tr->src].name : rename_back(j, r->name);
        if (r->foreign)
            tr->in_scope = false;
        else if (tr->src != MDL_NONE)
            tr->in_scope = d->src_roles[tr->src].in_scope;
        else
            tr->in_scope = in_scope(&j->roles_include, &j->roles_exclude, tr->scope_name);
        tr->forced = r->forced;
        tr->admin = r->admin;
        tr->admin_revocable = tr->admin && named_verbatim(&j->roles_include, tr->scope_name);
        /* Only roles whose grants both sides read can be mirrored: an unread side would look
         * like "holds nothing" (provider.h, prov_fetch_grants). */
        tr->managed = tr->in_scope && !r->foreign && !tr->forced && !tr->conflict &&
                      !r->grants_unread &&
                      (tr->src == MDL_NONE || !src->roles[tr->src].grants_unread);
        tr->ident = mix64(r->builtin_key ? fnv1a_folded(fnv1a(FNV_BASIS, "k:"), r->builtin_key)
                                         : fnv1a_folded(fnv1a(FNV_BASIS, "n:"), r->name));
    }
    /* Conflicted source roles leave their (single) target alone too: a custom source role
     * whose name is a built-in's was recorded above without marking the built-in, which stays
     * managed only through its own key mapping. */
}

/* Creates: in-scope custom source roles without counterpart (definitions, same api). Two of
 * them wanting the same target name is a conflict (neither is created). */
static void pass_creates(struct rolemap *m)
{
    const struct cfg_job *j = m->d->job;
    const struct mdl_snapshot *src = m->d->src, *tgt = m->d->tgt;
    bool defs = m->defs;
    struct cand *by_name = m->by_name;
    struct diff *d = m->d;

    struct cand *create_names = NULL;
    if (defs) {
        for (size_t s = 0; s < src->nroles; s++) {
            const struct diff_src_role *sr = &d->src_roles[s];
            const struct mdl_role *r = &src->roles[s];
            if (sr->status == DIFF_ROLE_UNMAPPED && sr->in_scope && !r->builtin_key)
                cand_add(&create_names, "", rename_forward(j, r->name), (uint32_t)s);
        }
    }
    for (size_t s = 0; s < src->nroles; s++) {
        struct diff_src_role *sr = &d->src_roles[s];
        const struct mdl_role *r = &src->roles[s];
        if (sr->status != DIFF_ROLE_UNMAPPED || !sr->in_scope || r->builtin_key || !defs)
            continue;
        const char *tname = rename_forward(j, r->name);
        const struct cand *fc = cand_find(by_name, "f:", tname);
        if (fc) {
            /* The platform would answer with that role (identity 302) or refuse the name:
             * creating it would end in granting a role the daemon must never touch. */
            sr->status = DIFF_ROLE_CONFLICT;
            sr->reason = "the target name belongs to a community or cluster role";
            add_conflict(d, (uint32_t)s, MDL_NONE, fc->first, MDL_NONE, sr->reason);
            continue;
        }
        const struct cand *c = cand_find(create_names, "", tname);
        if (c && c->n > 1) {
            sr->status = DIFF_ROLE_CONFLICT;
            sr->reason = "two source roles map to one target name";
            if (c->first == s)
                add_conflict(d, c->first, c->second, MDL_NONE, MDL_NONE, sr->reason);
            continue;
        }
        if (r->uncopyable) {
            /* product.md 4a.6: a condition naming the source org's objects means nothing (or
             * something else) on the target, and stripping it would widen the role. Its grants
             * wait until someone creates the role there. */
            sr->reason = "its definition names objects of the source tenant; not copied";
            add_not_copied(d, (uint32_t)s);
            continue;
        }
        sr->status = DIFF_ROLE_CREATE;
        sr->map = (uint32_t)(tgt->nroles + d->ncreates);
        sr->reason = NULL;
        char *key = own(d, role_mem_key(tname, NULL));
        push_role_op(d, (struct diff_role_op){DIFF_ROLE_OP_CREATE, (uint32_t)s, MDL_NONE,
                                              DIFF_F_DESCRIPTION | DIFF_F_DEFINITION, tname, key,
                                              def_hash(r->description, r->def_canon, false), 0});
        d->ncreates++;
    }
    cand_free(&create_names);
}

/* Unmapped report: in-scope roles only (out-of-scope ones are of no concern), and not the
 * source platform's forced role (genesys employee, identity Tenant Member): every user
 * holds it and the daemon never grants or revokes such a role, so across apis its
 * "unmapped" line would be noise on every cycle. */
static void pass_unmapped(struct rolemap *m)
{
    const struct mdl_snapshot *src = m->d->src;
    struct diff *d = m->d;

    for (size_t s = 0; s < src->nroles; s++) {
        const struct diff_src_role *sr = &d->src_roles[s];
        if (sr->status == DIFF_ROLE_UNMAPPED && sr->in_scope && !src->roles[s].forced &&
            !src->roles[s].uncopyable) {
            util_grow((void **)&d->report.unmapped, &d->priv->unmapped_cap, d->report.nunmapped + 1,
                      sizeof(uint32_t));
            d->report.unmapped[d->report.nunmapped++] = (uint32_t)s;
        }
    }
}

/* Out-of-scope roles: keep their mapping for scope purposes but flag the status. */
static void pass_out_of_scope(struct rolemap *m)
{
    const struct mdl_snapshot *src = m->d->src;
    struct diff *d = m->d;

    for (size_t s = 0; s < src->nroles; s++) {
        struct diff_src_role *sr = &d->src_roles[s];
        if (!sr->in_scope && sr->status == DIFF_ROLE_MAPPED)
            sr->status = DIFF_ROLE_OUT_OF_SCOPE;
    }
}

/* The DIFF_F_* fields in which target role `t` differs from its source counterpart `r`, as
 * far as a definition update may write them. */
static unsigned def_fields(const struct mdl_snapshot *tgt, const struct mdl_role *r,
                           const struct mdl_role *t)
{
    unsigned f = 0;
    if (r->builtin_key) {
        /* built-ins: their definition where the platform lets it be written (genesys
         * default roles: policies and permissions), never name or description */
        if ((tgt->caps & MDL_CAP_BUILTIN_DEFINITIONS) && !streq0(r->def_canon, t->def_canon))
            f = DIFF_F_DEFINITION;
    } else {
        if (!streq0(r->description, t->description))
            f |= DIFF_F_DESCRIPTION;
        if (!streq0(r->def_canon, t->def_canon))
            f |= DIFF_F_DEFINITION;
    }
    return f;
}

unsigned diff_def_fields(const struct diff *d, uint32_t src_role, uint32_t tgt_role)
{
    if (src_role >= d->src->nroles || tgt_role >= d->tgt->nroles)
        return 0;
    return def_fields(d->tgt, &d->src->roles[src_role], &d->tgt->roles[tgt_role]);
}

/* Updates (definitions, same api). */
static void pass_updates(struct rolemap *m)
{
    const struct mdl_snapshot *src = m->d->src, *tgt = m->d->tgt;
    bool defs = m->defs;
    struct diff_memory *mem = m->mem;
    struct diff *d = m->d;

    for (size_t s = 0; defs && s < src->nroles; s++) {
        const struct diff_src_role *sr = &d->src_roles[s];
        if (sr->status != DIFF_ROLE_MAPPED || !sr->in_scope)
            continue;
        const struct mdl_role *r = &src->roles[s], *t = &tgt->roles[sr->map];
        unsigned f = def_fields(tgt, r, t);
        bool builtin = r->builtin_key != NULL;
        if (!f)
            continue;
        if (r->uncopyable) {
            add_not_copied(d, (uint32_t)s); /* product.md 4a.6, see pass_creates */
            continue;
        }
        char *key = own(d, role_mem_key(t->name, t->builtin_key));
        uint64_t want = def_hash(r->description, r->def_canon, builtin);
        uint64_t have = def_hash(t->description, t->def_canon, builtin);
        enum mem_verdict v = mem_check(mem, DIFF_MEM_ROLE, key, want, have);
        if (v != MEM_PLAN)
            add_not_converging(
                d, DIFF_MEM_ROLE, t->name,
                nc_reason(v, xasprintf("target kept %s different from what was written",
                                       fields_text(f))));
        if (v == MEM_SKIP)
            continue;
        push_role_op(d, (struct diff_role_op){DIFF_ROLE_OP_UPDATE, (uint32_t)s, sr->map, f, t->name,
                                              key, want, 0});
        d->nupdates++;
    }
}

static void map_roles(struct diff *d, struct diff_memory *mem)
{
    const struct mdl_snapshot *src = d->src, *tgt = d->tgt;
    size_t nt = tgt->nroles ? tgt->nroles : 1;
    struct rolemap m = {
        .d = d,
        .mem = mem,
        .defs = d->job->definitions && src->api == tgt->api,
        .nmappers = xcalloc(nt, sizeof(uint32_t)),
        .mapper = xcalloc(nt, sizeof(uint32_t)),
        .nin = xcalloc(nt, sizeof(uint32_t)),
        .inmapper = xcalloc(nt, sizeof(uint32_t)),
    };
    for (size_t t = 0; t < tgt->nroles; t++) {
        const struct mdl_role *r = &tgt->roles[t];
        if (r->foreign) {
            cand_add(&m.by_name, "f:", r->name, (uint32_t)t); /* only to refuse a create */
            continue;
        }
        cand_add(&m.by_name, "", r->name, (uint32_t)t);
        if (r->builtin_key)
            cand_add(&m.by_key, "", r->builtin_key, (uint32_t)t);
    }
    pass_counterparts(&m);
    pass_step_aside(&m);
    pass_two_sources(&m);
    pass_target_facts(&m);
    pass_creates(&m);
    pass_unmapped(&m);
    pass_out_of_scope(&m);
    pass_updates(&m);
    free(m.nmappers);
    free(m.mapper);
    free(m.nin);
    free(m.inmapper);
    cand_free(&m.by_name);
    cand_free(&m.by_key);
}

/* ---- users ---------------------------------------------------------------------------------*/

struct ukey {
    const char *key; /* lower-cased, in the key buffer */
    uint32_t len, hash;
    uint32_t nsrc, ntgt;
    uint32_t src, tgt; /* first user of each side */
};

static const char *user_key(const struct cfg_job *j, const struct mdl_user *u)
{
    switch (j->match_by) {
    case CFG_MATCH_USERNAME:
        return u->username;
    case CFG_MATCH_EXTERNAL_ID:
        return u->external_key;
    case CFG_MATCH_EMAIL:
    default:
        return u->email;
    }
}

static bool user_counts(const struct mdl_user *u)
{
    return u->state != MDL_USER_DELETED;
}

/* Matched pairs (src, tgt) in ascending target order. */
struct pair {
    uint32_t src, tgt;
};

static struct pair *match_users(struct diff *d, size_t *npairs)
{
    const struct cfg_job *j = d->job;
    const struct mdl_snapshot *side[2] = {d->src, d->tgt};
    struct diff_report *rep = &d->report;

    /* One buffer for every lower-cased key and one array of entries: no per-user malloc. */
    size_t total = 0, nent = 0;
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < side[s]->nusers; i++) {
            const char *k = user_key(j, &side[s]->users[i]);
            if (k)
                total += util_fold_len(k) + 1;
        }
    char *buf = xmalloc(total ? total : 1), *bp = buf;
    size_t maxent = side[0]->nusers + side[1]->nusers;
    struct ukey *ents = xcalloc(maxent + 1, sizeof(*ents));
    struct ukey **tgt_ent = xcalloc(side[1]->nusers + 1, sizeof(*tgt_ent));
    d->priv->tgt_user_in_scope = xcalloc(side[1]->nusers + 1, 1);
    /* Keys by hash: open addressing with linear probing, at most half full, slots holding an
     * entry index + 1 (0 = empty). Sized once, so never rehashed; a uthash table of 10^5 keys
     * spent its time in bucket chains and expansions, in the step that ends every read. */
    size_t nslots = 16;
    while (nslots < 2 * maxent)
        nslots *= 2;
    uint32_t *slots = xcalloc(nslots, sizeof(*slots));
    const size_t mask = nslots - 1;

    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < side[s]->nusers; i++) {
            const struct mdl_user *u = &side[s]->users[i];
            if (!user_counts(u))
                continue;
            const char *k = user_key(j, u);
            if (!k || !*k) {
                rep->users_without_key++;
                continue;
            }
            if (!in_scope(&j->users_include, &j->users_exclude, k))
                continue;
            if (s == 0) {
                rep->src_users_in_scope++;
            } else {
                rep->tgt_users_in_scope++;
                d->priv->tgt_user_in_scope[i] = 1;
            }
            size_t len = util_fold_into(bp, k);
            unsigned hv;
            HASH_VALUE(bp, len, hv);
            struct ukey *e = NULL;
            size_t at = hv & mask;
            for (; slots[at]; at = (at + 1) & mask) {
                struct ukey *c = &ents[slots[at] - 1];
                if (c->hash == hv && c->len == len && memcmp(c->key, bp, len) == 0) {
                    e = c;
                    break;
                }
            }
            if (!e) {
                e = &ents[nent++];
                e->key = bp;
                e->len = (uint32_t)len;
                e->hash = hv;
                e->src = e->tgt = MDL_NONE;
                bp += len + 1;
                slots[at] = (uint32_t)nent;
            }
            if (s == 0) {
                if (e->nsrc++ == 0)
                    e->src = (uint32_t)i;
            } else {
                if (e->ntgt++ == 0)
                    e->tgt = (uint32_t)i;
                tgt_ent[i] = e;
            }
        }
    }

    for (size_t n = 0; n < nent; n++) {
        struct ukey *e = &ents[n];
        for (int s = 0; s < 2; s++) {
            uint32_t c = s ? e->ntgt : e->nsrc;
            if (c > 1) {
                util_grow((void **)&rep->ambiguous, &d->priv->amb_cap, rep->nambiguous + 1,
                          sizeof(*rep->ambiguous));
                rep->ambiguous[rep->nambiguous++] =
                    (struct diff_ambiguous){s == 1, own(d, xstrdup(e->key)), c};
            }
        }
        if (e->nsrc > 1 || e->ntgt > 1)
            continue;
        if (e->nsrc && !e->ntgt)
            rep->unmatched_source_only++;
        else if (!e->nsrc && e->ntgt)
            rep->unmatched_target_only++;
    }

    struct pair *pairs = xmalloc((side[1]->nusers + 1) * sizeof(*pairs));
    size_t np = 0;
    for (size_t i = 0; i < side[1]->nusers; i++) {
        const struct ukey *e = tgt_ent[i];
        if (e && e->nsrc == 1 && e->ntgt == 1)
            pairs[np++] = (struct pair){e->src, (uint32_t)i};
    }
    rep->matched_users = np;
    free(slots);
    free(tgt_ent);
    free(ents);
    free(buf);
    *npairs = np;
    return pairs;
}

/* ---- assignments ---------------------------------------------------------------------------*/

/* Append up to 3 role names (of grant keys, see gkey) to a reason string. */
static void names_text(const struct diff *d, char *buf, size_t len, const uint64_t *keys, size_t n)
{
    size_t off = strlen(buf);
    for (size_t i = 0; i < n && i < 3 && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s\"%s\"", i ? ", " : "",
                         diff_ref_name(d, (uint32_t)(keys[i] >> 32)));
        if (w < 0)
            return;
        off += (size_t)w;
    }
    if (n > 3 && off < len)
        snprintf(buf + off, len - off, " and %zu more", n - 3);
}

/* A grant as one sortable number: role reference, then qualifier. */
static uint64_t gkey(uint32_t ref, uint32_t qual)
{
    return (uint64_t)ref << 32 | qual;
}

static void sort_keys(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        size_t k = i;
        while (k > 0 && a[k - 1] > v) {
            a[k] = a[k - 1];
            k--;
        }
        a[k] = v;
    }
}

struct kvec {
    uint64_t *v;
    size_t n, cap;
};

static void kvec_push(struct kvec *u, uint64_t x)
{
    if (u->n == u->cap)
        util_grow((void **)&u->v, &u->cap, u->n + 1, sizeof(uint64_t));
    u->v[u->n++] = x;
}

/* Sort and drop duplicates (two source qualifiers may map to one target qualifier). */
static void kvec_sort_unique(struct kvec *u)
{
    sort_keys(u->v, u->n);
    size_t w = 0;
    for (size_t i = 0; i < u->n; i++)
        if (w == 0 || u->v[w - 1] != u->v[i])
            u->v[w++] = u->v[i];
    u->n = w;
}

/* ---- qualifiers (product.md 4a.2-4a.4) --------------------------------------------------------*/

static const char *div_rename(const struct cfg_rename *rn, size_t n, const char *name, bool back)
{
    for (size_t i = 0; i < n; i++)
        if (util_fold_cmp(back ? rn[i].to : rn[i].from, name) == 0)
            return back ? rn[i].from : rn[i].to;
    return name;
}

/* A source qualifier against divisions.include / exclude: the home division answers to "home"
 * and to its own name, the all-divisions grant to "*" (and to its name). */
static bool qual_selected_why(const struct cfg_job *j, const struct mdl_qual *q, const char *name,
                              const char **inc, const char **exc)
{
    const char *names[2] = {q->home ? "home" : q->all ? "*" : NULL, name};
    *inc = *exc = NULL;
    for (size_t k = 0; k < 2; k++) {
        if (!names[k])
            continue;
        if (!*inc)
            *inc = list_first_match(&j->divisions_include, names[k]);
        if (!*exc)
            *exc = list_first_match(&j->divisions_exclude, names[k]);
    }
    return *inc && !*exc;
}

static bool qual_selected(const struct cfg_job *j, const struct mdl_qual *q, const char *name)
{
    const char *inc, *exc;
    return qual_selected_why(j, q, name, &inc, &exc);
}

bool diff_qual_scope_why(const struct diff *d, uint32_t src_qual, const char **included_by,
                         const char **excluded_by)
{
    *included_by = *excluded_by = NULL;
    if (src_qual >= d->src->nquals)
        return false;
    if (!d->src->divided || !d->tgt->divided)
        return d->src_quals[src_qual].in_scope; /* no division globs apply (map_quals) */
    const struct mdl_qual *q = &d->src->quals[src_qual];
    return qual_selected_why(d->job, q, q->name, included_by, excluded_by);
}

/* Where each qualifier's grants go. Between two divided tenants: home <-> home, all <-> all,
 * other divisions by name after divisions.rename (case-insensitively; never onto the target's
 * home or all); one with no counterpart or two is reported and its grants skipped, never
 * moved. A target division takes part only as the counterpart of an in-scope source one: a
 * division the source lacks is left alone (this job cannot know what belongs there). From an
 * undivided source, its one qualifier is the target's home, and nothing else of the target
 * takes part; to an undivided target, the source's home and all-divisions grants go to its one
 * qualifier, and the source's other divisions do not take part. */
static void map_quals(struct diff *d)
{
    const struct cfg_job *j = d->job;
    const struct mdl_snapshot *src = d->src, *tgt = d->tgt;
    for (size_t q = 0; q < src->nquals; q++)
        d->src_quals[q] = (struct diff_src_qual){false, MDL_NONE, NULL, MDL_NONE, 0};
    for (size_t q = 0; q < tgt->nquals; q++)
        d->tgt_quals[q].in_scope = false;

    if (!src->divided || !tgt->divided) {
        for (size_t q = 0; q < src->nquals; q++) {
            const struct mdl_qual *sq = &src->quals[q];
            if (src->divided ? sq->home || sq->all : q == 0)
                d->src_quals[q] = (struct diff_src_qual){true, 0, NULL, MDL_NONE, 0};
        }
        d->tgt_quals[0].in_scope = true;
        return;
    }
    const struct cfg_rename *rn = j->division_rename;
    size_t nrn = j->ndivision_rename;
    uint32_t *mapped = xcalloc(tgt->nquals + 1, sizeof(uint32_t)); /* source quals onto each */
    for (size_t q = 0; q < src->nquals; q++) {
        const struct mdl_qual *sq = &src->quals[q];
        struct diff_src_qual *m = &d->src_quals[q];
        m->in_scope = qual_selected(j, sq, sq->name);
        if (!m->in_scope)
            continue;
        uint32_t found = MDL_NONE, second = MDL_NONE;
        if (sq->home) {
            found = 0;
        } else {
            const char *want =
                sq->all ? NULL : div_rename(rn, nrn, sq->name ? sq->name : "", false);
            for (size_t t = 1; t < tgt->nquals; t++) {
                const struct mdl_qual *tq = &tgt->quals[t];
                bool match =
                    sq->all ? tq->all : !tq->all && tq->name && util_fold_cmp(tq->name, want) == 0;
                if (!match)
                    continue;
                if (found == MDL_NONE)
                    found = (uint32_t)t;
                else if (second == MDL_NONE)
                    second = (uint32_t)t;
            }
        }
        if (found == MDL_NONE) {
            m->reason = "no counterpart";
        } else if (second != MDL_NONE) {
            m->reason = "two counterparts";
            m->tgt2 = second;
        } else {
            m->map = found;
            mapped[found]++;
        }
    }
    /* Two source divisions renamed onto one target division cannot both be mirrored there. */
    for (size_t q = 0; q < src->nquals; q++) {
        struct diff_src_qual *m = &d->src_quals[q];
        if (m->map != MDL_NONE && mapped[m->map] > 1) {
            m->reason = "shares its counterpart with another division";
            m->map = MDL_NONE;
        }
    }
    for (size_t q = 0; q < src->nquals; q++) {
        const struct diff_src_qual *m = &d->src_quals[q];
        if (m->map != MDL_NONE) {
            d->tgt_quals[m->map].in_scope = true;
        } else if (m->in_scope) {
            struct diff_report *r = &d->report;
            util_grow((void **)&r->unmapped_quals, &d->priv->unmapped_quals_cap,
                      r->nunmapped_quals + 1, sizeof(uint32_t));
            r->unmapped_quals[r->nunmapped_quals++] = (uint32_t)q;
        }
    }
    free(mapped);
}

/* Cross-cycle identity of a target qualifier for the memory's set hashes (0 for home). */
static uint64_t qual_ident(const struct mdl_snapshot *t, uint32_t q)
{
    return q == 0 ? 0 : mix64(fnv1a(fnv1a(FNV_BASIS, "q:"), t->quals[q].id));
}

/* What becomes of a source user's grant: the one filter plan_assignments applies to build a
 * user's desired grants, shared with diff_src_grant_why so an explanation cannot drift from
 * the decision. Does not count skipped grants (the caller does). Inline: it runs for every
 * grant of every matched user. */
static inline enum diff_grant_why src_grant_fate(const struct diff *d, const struct mdl_grant *g,
                                                 uint32_t *ref, uint32_t *qual)
{
    const struct diff_src_role *sr = &d->src_roles[g->role];
    const struct diff_src_qual *sq = &d->src_quals[g->qual];
    *ref = sr->map;
    *qual = sq->map;
    if (g->flags & MDL_GRANT_INHERITED)
        return DIFF_GRANT_INHERITED;
    if (!sr->in_scope)
        return DIFF_GRANT_ROLE_OUT_OF_SCOPE;
    if (!sq->in_scope)
        return DIFF_GRANT_QUAL_OUT_OF_SCOPE;
    if (sr->status != DIFF_ROLE_MAPPED && sr->status != DIFF_ROLE_CREATE)
        return DIFF_GRANT_ROLE_UNMAPPED;
    if (sr->map < d->tgt->nroles && !d->tgt_roles[sr->map].managed)
        return d->tgt_roles[sr->map].forced ? DIFF_GRANT_FORCED : DIFF_GRANT_NOT_MANAGED;
    if (sq->map == MDL_NONE)
        return DIFF_GRANT_QUAL_UNMAPPED;
    return DIFF_GRANT_MIRRORED;
}

/* Whether a target user's grant is one of its current managed grants (MIRRORED), or why not:
 * the filter of plan_assignments' current set. */
static inline enum diff_grant_why tgt_grant_managed(const struct diff *d, const struct mdl_grant *g)
{
    const struct diff_tgt_role *tr = &d->tgt_roles[g->role];
    if (g->flags & MDL_GRANT_INHERITED)
        return DIFF_GRANT_INHERITED;
    if (!tr->managed) {
        if (!tr->in_scope)
            return DIFF_GRANT_ROLE_OUT_OF_SCOPE;
        return tr->forced ? DIFF_GRANT_FORCED : DIFF_GRANT_NOT_MANAGED;
    }
    if (!d->tgt_quals[g->qual].in_scope)
        return DIFF_GRANT_QUAL_OUT_OF_SCOPE;
    return DIFF_GRANT_MIRRORED;
}

/* Whether a current managed grant of target role `t` that the source does not call for is
 * removed: only in mirror mode, and the admin role only where roles.include names it. */
static inline bool removable(const struct diff *d, uint32_t t)
{
    const struct diff_tgt_role *tr = &d->tgt_roles[t];
    return d->job->assignments == CFG_ASSIGN_MIRROR && (!tr->admin || tr->admin_revocable);
}

/* What may become of a target user's grant that the source does not call for: the filters
 * of plan_assignments' current set and of its removals. */
static enum diff_grant_why tgt_grant_fate(const struct diff *d, const struct mdl_grant *g)
{
    if (d->job->assignments == CFG_ASSIGN_OFF)
        return DIFF_GRANT_ASSIGNMENTS_OFF;
    enum diff_grant_why w = tgt_grant_managed(d, g);
    if (w != DIFF_GRANT_MIRRORED)
        return w;
    if (d->job->assignments != CFG_ASSIGN_MIRROR)
        return DIFF_GRANT_ADDITIVE;
    if (!removable(d, g->role))
        return DIFF_GRANT_PROTECTED_ADMIN;
    return DIFF_GRANT_MIRRORED;
}

enum diff_grant_why diff_src_grant_why(const struct diff *d, const struct mdl_grant *g,
                                       uint32_t *ref, uint32_t *qual)
{
    if (d->job->assignments == CFG_ASSIGN_OFF) { /* plan_assignments does not run */
        *ref = d->src_roles[g->role].map;
        *qual = d->src_quals[g->qual].map;
        return DIFF_GRANT_ASSIGNMENTS_OFF;
    }
    return src_grant_fate(d, g, ref, qual);
}

enum diff_grant_why diff_tgt_grant_why(const struct diff *d, const struct mdl_grant *g)
{
    return tgt_grant_fate(d, g);
}

static void plan_assignments(struct diff *d, struct diff_memory *mem, const struct pair *pairs,
                             size_t npairs)
{
    const struct cfg_job *j = d->job;
    const struct mdl_snapshot *src = d->src, *tgt = d->tgt;
    if (j->assignments == CFG_ASSIGN_OFF)
        return;
    size_t nrefs = tgt->nroles + d->ncreates;
    uint64_t *ident = xmalloc((nrefs + 1) * sizeof(uint64_t));
    for (size_t t = 0; t < tgt->nroles; t++)
        ident[t] = d->tgt_roles[t].ident;
    for (size_t k = 0; k < d->ncreates; k++)
        ident[tgt->nroles + k] = mix64(fnv1a_folded(fnv1a(FNV_BASIS, "n:"), d->role_ops[k].name));
    uint64_t *qident = xmalloc((tgt->nquals + 1) * sizeof(uint64_t));
    for (size_t q = 0; q < tgt->nquals; q++)
        qident[q] = qual_ident(tgt, (uint32_t)q);
    struct kvec D = {0}, C = {0}, add = {0}, rem = {0};

    for (size_t p = 0; p < npairs; p++) {
        const struct mdl_user *su = &src->users[pairs[p].src], *tu = &tgt->users[pairs[p].tgt];
        D.n = C.n = add.n = rem.n = 0;
        for (uint32_t i = 0; i < su->ngrants; i++) {
            const struct mdl_grant *g = &su->grants[i];
            uint32_t ref, qual;
            enum diff_grant_why why = src_grant_fate(d, g, &ref, &qual);
            if (why == DIFF_GRANT_QUAL_UNMAPPED)
                d->src_quals[g->qual].skipped++; /* reported with its division */
            if (why == DIFF_GRANT_MIRRORED)
                kvec_push(&D, gkey(ref, qual));
        }
        kvec_sort_unique(&D);
        /* C: the current managed grants; removable() decides which of them go */
        for (uint32_t i = 0; i < tu->ngrants; i++) {
            const struct mdl_grant *g = &tu->grants[i];
            if (tgt_grant_managed(d, g) == DIFF_GRANT_MIRRORED)
                kvec_push(&C, gkey(g->role, g->qual));
        }
        kvec_sort_unique(&C); /* grants are sorted by (role, qual) already */
        /* Merge the two sorted sets. */
        for (size_t a = 0, b = 0; a < D.n || b < C.n;) {
            if (b == C.n || (a < D.n && D.v[a] < C.v[b])) {
                kvec_push(&add, D.v[a++]);
            } else if (a == D.n || C.v[b] < D.v[a]) {
                if (removable(d, (uint32_t)(C.v[b] >> 32)))
                    kvec_push(&rem, C.v[b]);
                b++;
            } else {
                a++;
                b++;
            }
        }
        if (add.n == 0 && rem.n == 0)
            continue;

        uint64_t have = 0, want = 0;
        for (size_t i = 0; i < C.n; i++)
            have += mix64(ident[C.v[i] >> 32] ^ qident[(uint32_t)C.v[i]]);
        want = have;
        for (size_t i = 0; i < rem.n; i++)
            want -= mix64(ident[rem.v[i] >> 32] ^ qident[(uint32_t)rem.v[i]]);
        for (size_t i = 0; i < add.n; i++)
            want += mix64(ident[add.v[i] >> 32] ^ qident[(uint32_t)add.v[i]]);
        enum mem_verdict v = mem_check(mem, DIFF_MEM_USER, tu->id, want, have);
        if (v != MEM_PLAN) {
            char reason[512] = "target kept a role set different from what was written";
            if (add.n) {
                strncat(reason, "; still missing ", sizeof(reason) - strlen(reason) - 1);
                names_text(d, reason, sizeof(reason), add.v, add.n);
            }
            if (rem.n) {
                strncat(reason, "; still has ", sizeof(reason) - strlen(reason) - 1);
                names_text(d, reason, sizeof(reason), rem.v, rem.n);
            }
            add_not_converging(d, DIFF_MEM_USER, diff_user_label(d, pairs[p].tgt),
                               nc_reason(v, xstrdup(reason)));
        }
        if (v == MEM_SKIP) {
            d->report.skipped_changes += add.n + rem.n;
            continue;
        }

        size_t need = d->nchanges + add.n + rem.n;
        util_grow((void **)&d->changes, &d->priv->changes_cap, need, sizeof(*d->changes));
        util_grow((void **)&d->users, &d->priv->users_cap, d->nusers + 1, sizeof(*d->users));
        d->users[d->nusers++] = (struct diff_user_change){pairs[p].tgt, (uint32_t)d->nchanges,
                                                          (uint32_t)(add.n + rem.n), want};
        for (size_t i = 0; i < rem.n; i++)
            d->changes[d->nchanges++] = (struct diff_change){
                pairs[p].tgt, pairs[p].src, (uint32_t)(rem.v[i] >> 32), (uint32_t)rem.v[i], false};
        for (size_t i = 0; i < add.n; i++)
            d->changes[d->nchanges++] = (struct diff_change){
                pairs[p].tgt, pairs[p].src, (uint32_t)(add.v[i] >> 32), (uint32_t)add.v[i], true};
        d->nadds += add.n;
        d->nremoves += rem.n;
    }
    free(D.v);
    free(C.v);
    free(add.v);
    free(rem.v);
    free(ident);
    free(qident);
}

/* ---- prune (product.md 4.5, 4a.7) ----------------------------------------------------------*/

/* Prune: in-scope custom target roles nothing maps to -- but not while a subject outside the
 * job's scope holds one (an out-of-scope user, a grant in an out-of-scope qualifier, a group,
 * an OAuth client): deleting it would take access from them that this job does not manage.
 * Runs after the assignment changes, whose removals the guard already counts; the grants the
 * deletion takes with it beyond those are counted on the deletion (diff_role_op.holders). */
static void prune_roles(struct diff *d, struct diff_memory *mem)
{
    const struct cfg_job *j = d->job;
    const struct mdl_snapshot *tgt = d->tgt;
    if (!j->prune)
        return;
    bool *cand = xcalloc(tgt->nroles + 1, sizeof(bool));
    uint32_t *outside = xcalloc(tgt->nroles + 1, sizeof(uint32_t));
    uint32_t *inside = xcalloc(tgt->nroles + 1, sizeof(uint32_t));
    bool any = false;
    for (size_t t = 0; t < tgt->nroles; t++) {
        const struct mdl_role *r = &tgt->roles[t];
        const struct diff_tgt_role *tr = &d->tgt_roles[t];
        cand[t] = !r->foreign && !r->builtin_key && tr->in_scope && tr->src == MDL_NONE &&
                  !tr->conflict && !r->grants_unread;
        outside[t] = r->other_holders;
        any = any || cand[t];
    }
    /* Each user's direct grants of the candidates: a user outside the scope, or holding one in
     * an out-of-scope qualifier, is a holder outside; in-scope grants go with the deletion. */
    for (size_t u = 0; any && u < tgt->nusers; u++) {
        const struct mdl_user *us = &tgt->users[u];
        bool user_in = d->priv->tgt_user_in_scope[u];
        if (us->state == MDL_USER_DELETED)
            continue; /* a deleted user holds nothing anyone uses */
        uint32_t last_out = MDL_NONE;
        for (uint32_t k = 0; k < us->ngrants; k++) {
            const struct mdl_grant *g = &us->grants[k];
            if (!cand[g->role] || (g->flags & MDL_GRANT_INHERITED))
                continue;
            if (user_in && d->tgt_quals[g->qual].in_scope) {
                inside[g->role]++;
            } else if (last_out != g->role) { /* a subject counts once per role */
                outside[g->role]++;
                last_out = g->role;
            }
        }
    }
    for (size_t i = 0; i < d->nchanges; i++)
        if (!d->changes[i].add && d->changes[i].ref < tgt->nroles && cand[d->changes[i].ref])
            inside[d->changes[i].ref]--; /* removed first by the assignment phase */
    for (size_t t = 0; t < tgt->nroles; t++) {
        if (!cand[t])
            continue;
        const struct mdl_role *r = &tgt->roles[t];
        if (outside[t] > 0) {
            struct diff_report *rep = &d->report;
            util_grow((void **)&rep->not_pruned, &d->priv->not_pruned_cap, rep->nnot_pruned + 1,
                      sizeof(*rep->not_pruned));
            rep->not_pruned[rep->nnot_pruned++] = (struct diff_not_pruned){(uint32_t)t, outside[t]};
            continue;
        }
        char *key = own(d, role_mem_key(r->name, NULL));
        enum mem_verdict v = mem_check(mem, DIFF_MEM_ROLE, key, HASH_DELETED,
                                       def_hash(r->description, r->def_canon, false));
        if (v != MEM_PLAN)
            add_not_converging(d, DIFF_MEM_ROLE, r->name,
                               nc_reason(v, xstrdup("target kept the role after it was deleted")));
        if (v == MEM_SKIP)
            continue;
        push_role_op(d, (struct diff_role_op){DIFF_ROLE_OP_DELETE, MDL_NONE, (uint32_t)t, 0,
                                              r->name, key, HASH_DELETED, inside[t]});
        d->ndeletes++;
    }
    free(cand);
    free(outside);
    free(inside);
}

/* ---- entry points --------------------------------------------------------------------------*/

static struct diff *diff_alloc(const struct cfg_job *job, const struct mdl_snapshot *src,
                               const struct mdl_snapshot *tgt)
{
    struct diff *d = xcalloc(1, sizeof(*d));
    d->priv = xcalloc(1, sizeof(*d->priv));
    d->job = job;
    d->src = src;
    d->tgt = tgt;
    d->src_roles = xcalloc(src->nroles + 1, sizeof(*d->src_roles));
    d->tgt_roles = xcalloc(tgt->nroles + 1, sizeof(*d->tgt_roles));
    d->src_quals = xcalloc(src->nquals + 1, sizeof(*d->src_quals));
    d->tgt_quals = xcalloc(tgt->nquals + 1, sizeof(*d->tgt_quals));
    return d;
}

void diff_grant_masks(const struct cfg_job *job, const struct mdl_snapshot *src,
                      const struct mdl_snapshot *tgt, bool *src_mask, bool *tgt_mask)
{
    struct diff *d = diff_alloc(job, src, tgt);
    map_roles(d, NULL);
    bool assign = job->assignments != CFG_ASSIGN_OFF;
    for (size_t s = 0; s < src->nroles; s++) {
        const struct diff_src_role *sr = &d->src_roles[s];
        src_mask[s] = assign && sr->in_scope && !src->roles[s].forced &&
                      (sr->status == DIFF_ROLE_CREATE ||
                       (sr->status == DIFF_ROLE_MAPPED && d->tgt_roles[sr->map].managed));
    }
    for (size_t t = 0; t < tgt->nroles; t++) {
        const struct diff_tgt_role *tr = &d->tgt_roles[t];
        const struct mdl_role *r = &tgt->roles[t];
        bool prune_candidate = job->prune && !r->foreign && !r->builtin_key && tr->in_scope &&
                               tr->src == MDL_NONE && !tr->conflict;
        tgt_mask[t] = (assign && tr->managed) || prune_candidate;
    }
    diff_free(d);
}

bool diff_writes_roles(const struct cfg_job *job, const struct mdl_snapshot *src,
                       const struct mdl_snapshot *tgt)
{
    if (!src->finished || !tgt->finished)
        return false;
    struct diff *d = diff_alloc(job, src, tgt);
    map_roles(d, NULL);
    bool writes = d->ncreates + d->nupdates > 0;
    diff_free(d);
    return writes;
}

struct diff *diff_compute(const struct cfg_job *job, const struct mdl_snapshot *src,
                          const struct mdl_snapshot *tgt, struct diff_memory *mem, char *err,
                          size_t errlen)
{
    if (!src->finished || !tgt->finished) {
        snprintf(err, errlen, "diff: snapshot not finished");
        return NULL;
    }
    struct diff *d = diff_alloc(job, src, tgt);
    if (mem)
        mem->gen++;

    map_roles(d, mem);
    map_quals(d);
    size_t npairs = 0;
    /* kept for the queries (diff_matched_source): one array the cycle built anyway */
    d->priv->pairs = match_users(d, &npairs);
    d->priv->npairs = npairs;
    plan_assignments(d, mem, d->priv->pairs, npairs);
    prune_roles(d, mem);

    if (mem)
        mem_sweep(mem);
    return d;
}

void diff_free(struct diff *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->priv->nowned; i++)
        free(d->priv->owned[i]);
    free(d->priv->owned);
    free(d->priv->tgt_user_in_scope);
    free(d->priv->pairs);
    free(d->priv);
    free(d->src_roles);
    free(d->tgt_roles);
    free(d->src_quals);
    free(d->tgt_quals);
    free(d->role_ops);
    free(d->changes);
    free(d->users);
    free(d->report.ambiguous);
    free(d->report.unmapped);
    free(d->report.conflicts);
    free(d->report.not_converging);
    free(d->report.not_copied);
    free(d->report.unmapped_quals);
    free(d->report.not_pruned);
    free(d);
}

const char *diff_ref_name(const struct diff *d, uint32_t ref)
{
    if (ref < d->tgt->nroles)
        return d->tgt->roles[ref].name;
    size_t k = ref - d->tgt->nroles;
    return k < d->ncreates ? d->role_ops[k].name : "?";
}

const char *diff_user_label(const struct diff *d, uint32_t tgt_user)
{
    const struct mdl_user *u = &d->tgt->users[tgt_user];
    const char *k = user_key(d->job, u);
    return k && *k ? k : u->id;
}

const char *diff_qual_name(const struct diff *d, uint32_t qual)
{
    const struct mdl_snapshot *t = d->tgt;
    if (!t->divided || qual == 0 || qual >= t->nquals)
        return NULL;
    const struct mdl_qual *q = &t->quals[qual];
    return q->all ? "*" : q->name ? q->name : q->id;
}

bool diff_is_empty(const struct diff *d)
{
    return d->nrole_ops == 0 && d->nchanges == 0;
}

/* Whether `d` removes (tgt_user, ref, qual) in its assignment phase. */
static bool removes_grant(const struct diff *d, uint32_t tgt_user, uint32_t ref, uint32_t qual)
{
    size_t lo = 0, hi = d->nusers;
    while (lo < hi) { /* d->users is ascending by tgt_user */
        size_t mid = lo + (hi - lo) / 2;
        if (d->users[mid].tgt_user < tgt_user)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == d->nusers || d->users[lo].tgt_user != tgt_user)
        return false;
    const struct diff_user_change *uc = &d->users[lo];
    for (uint32_t i = uc->first; i < uc->first + uc->n; i++) {
        const struct diff_change *ch = &d->changes[i];
        if (!ch->add && ch->ref == ref && ch->qual == qual)
            return true;
    }
    return false;
}

void diff_delete_holders(const struct diff *d, const struct diff_role_op *op,
                         void (*fn)(uint32_t tgt_user, uint32_t qual, void *arg), void *arg)
{
    const struct mdl_snapshot *tgt = d->tgt;
    if (op->action != DIFF_ROLE_OP_DELETE || op->tgt_role >= tgt->nroles)
        return;
    /* the same grants prune_roles counts as `inside` */
    for (size_t u = 0; u < tgt->nusers; u++) {
        const struct mdl_user *us = &tgt->users[u];
        if (us->state == MDL_USER_DELETED || !d->priv->tgt_user_in_scope[u])
            continue;
        for (uint32_t k = 0; k < us->ngrants; k++) {
            const struct mdl_grant *g = &us->grants[k];
            if (g->role != op->tgt_role || (g->flags & MDL_GRANT_INHERITED) ||
                !d->tgt_quals[g->qual].in_scope || removes_grant(d, (uint32_t)u, g->role, g->qual))
                continue;
            fn((uint32_t)u, g->qual, arg);
        }
    }
}

/* ---- queries for one user or role (rolesyncd --explain, explain.h) ----------------------------*/

uint32_t diff_matched_source(const struct diff *d, uint32_t tgt_user)
{
    size_t lo = 0, hi = d->priv->npairs;
    const struct pair *p = d->priv->pairs;
    while (lo < hi) { /* ascending by tgt */
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].tgt < tgt_user)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < d->priv->npairs && p[lo].tgt == tgt_user ? p[lo].src : MDL_NONE;
}

const char *diff_user_key(const struct diff *d, const struct mdl_user *u)
{
    return user_key(d->job, u);
}

bool diff_user_in_scope(const struct diff *d, const struct mdl_user *u, const char **included_by,
                        const char **excluded_by)
{
    const char *k = user_key(d->job, u);
    bool in =
        diff_scope_why(&d->job->users_include, &d->job->users_exclude, k, included_by, excluded_by);
    return in && *k && user_counts(u); /* match_users' rule */
}

size_t diff_find_users(const struct diff *d, bool target, const char *key, uint32_t *out,
                       size_t max)
{
    const struct mdl_snapshot *s = target ? d->tgt : d->src;
    size_t n = 0;
    for (size_t i = 0; i < s->nusers; i++) {
        const char *k = user_key(d->job, &s->users[i]);
        if (k && *k && util_fold_cmp(k, key) == 0) {
            if (n < max)
                out[n] = (uint32_t)i;
            n++;
        }
    }
    return n;
}

const struct diff_user_change *diff_user_changes(const struct diff *d, uint32_t tgt_user)
{
    size_t lo = 0, hi = d->nusers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->users[mid].tgt_user < tgt_user)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < d->nusers && d->users[lo].tgt_user == tgt_user ? &d->users[lo] : NULL;
}

const char *diff_grant_why_text(enum diff_grant_why w)
{
    switch (w) {
    case DIFF_GRANT_MIRRORED:
        return "mirrored";
    case DIFF_GRANT_INHERITED:
        return "inherited grants are never copied or revoked";
    case DIFF_GRANT_ROLE_OUT_OF_SCOPE:
        return "role out of scope";
    case DIFF_GRANT_QUAL_OUT_OF_SCOPE:
        return "division out of scope";
    case DIFF_GRANT_ROLE_UNMAPPED:
        return "role has no usable counterpart on the target";
    case DIFF_GRANT_QUAL_UNMAPPED:
        return "division has no counterpart on the target";
    case DIFF_GRANT_FORCED:
        return "forced role, the platform gives it to every user";
    case DIFF_GRANT_NOT_MANAGED:
        return "role left alone (conflict, or its grants were not read)";
    case DIFF_GRANT_ADDITIVE:
        return "additive mode never removes";
    case DIFF_GRANT_PROTECTED_ADMIN:
        return "protected admin role, revoked only when roles.include names it verbatim";
    case DIFF_GRANT_ASSIGNMENTS_OFF:
        return "assignments: off";
    }
    return "?";
}
