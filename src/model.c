/* model.c — snapshot arena, role/user storage and uthash indexes (contract in model.h). */
#include "rolesync/model.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/util.h"

/* OOM inside uthash is as fatal as anywhere else (util.h policy). */
#define uthash_fatal(msg) abort()
#include <uthash.h>

/* Arena: a chain of blocks; small allocations are bumped out of the current block, large ones
 * get a block of their own so a 1 MiB request does not waste the rest of a 64 KiB block. */
#define ARENA_BLOCK 65536u
#define ARENA_ALIGN 16u

struct arena_block {
    struct arena_block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

struct mdl_arena {
    struct arena_block *head; /* current bump block (also the first of the chain) */
};

/* One index entry; a uthash head is a pointer to an entry, so `struct mdl_index *` in the
 * snapshot is directly the table. Entries live in the arena; only uthash's bucket tables are
 * malloc'd (released with HASH_CLEAR). */
struct mdl_index {
    const char *key; /* arena string (lower-cased for case-insensitive tables) */
    uint32_t idx;    /* first element with this key */
    bool dup;        /* a second element had the same key */
    UT_hash_handle hh;
};

static void *arena_alloc(struct mdl_arena *a, size_t n)
{
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n == 0)
        n = ARENA_ALIGN;
    struct arena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        if (n > ARENA_BLOCK / 4) {
            /* Dedicated block, linked behind the current one so bumping continues there. */
            struct arena_block *big = xmalloc(sizeof(*big) + n);
            big->used = n;
            big->size = n;
            if (b) {
                big->next = b->next;
                b->next = big;
            } else {
                big->next = NULL;
                a->head = big;
            }
            memset(big->data, 0, n);
            return big->data;
        }
        b = xmalloc(sizeof(*b) + ARENA_BLOCK);
        b->used = 0;
        b->size = ARENA_BLOCK;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

static void arena_free(struct mdl_arena *a)
{
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *n = b->next;
        free(b);
        b = n;
    }
    free(a);
}

struct mdl_snapshot *mdl_snapshot_new(enum cfg_api api)
{
    struct mdl_snapshot *s = xcalloc(1, sizeof(*s));
    s->api = api;
    s->arena = xcalloc(1, sizeof(*s->arena));
    mdl_add_qual(s, &(struct mdl_qual){.home = true});
    return s;
}

struct mdl_snapshot *mdl_snapshot_view(const struct mdl_snapshot *base)
{
    struct mdl_snapshot *v = xmalloc(sizeof(*v));
    *v = *base;
    v->roles = xmalloc((base->nroles ? base->nroles : 1) * sizeof(*v->roles));
    if (base->nroles)
        memcpy(v->roles, base->roles, base->nroles * sizeof(*v->roles));
    v->roles_cap = base->nroles;
    v->arena = xcalloc(1, sizeof(*v->arena));
    v->base = base;
    return v;
}

void mdl_snapshot_free(struct mdl_snapshot *s)
{
    if (!s)
        return;
    if (s->base) { /* a view: the rest is the base's */
        free(s->roles);
        arena_free(s->arena);
        free(s);
        return;
    }
    HASH_CLEAR(hh, s->role_by_id);
    HASH_CLEAR(hh, s->role_by_name);
    HASH_CLEAR(hh, s->role_by_key);
    HASH_CLEAR(hh, s->qual_by_id);
    free(s->roles);
    free(s->users);
    free(s->quals);
    arena_free(s->arena);
    free(s);
}

void *mdl_alloc(struct mdl_snapshot *s, size_t n)
{
    return arena_alloc(s->arena, n);
}

const char *mdl_strdup(struct mdl_snapshot *s, const char *str)
{
    if (!str)
        return NULL;
    size_t n = strlen(str) + 1;
    char *d = arena_alloc(s->arena, n);
    memcpy(d, str, n);
    return d;
}

/* Case-folded copy (util_fold_*) for the case-insensitive indexes. */
static const char *arena_strdup_fold(struct mdl_snapshot *s, const char *str)
{
    char *d = arena_alloc(s->arena, util_fold_len(str) + 1);
    util_fold_into(d, str);
    return d;
}

uint32_t mdl_add_role(struct mdl_snapshot *s, const struct mdl_role *r)
{
    if (s->finished) {
        fputs("<2>FATAL mdl_add_role after mdl_snapshot_finish\n", stderr);
        abort();
    }
    util_grow((void **)&s->roles, &s->roles_cap, s->nroles + 1, sizeof(*s->roles));
    struct mdl_role *d = &s->roles[s->nroles];
    d->id = mdl_strdup(s, r->id);
    d->name = mdl_strdup(s, r->name);
    d->builtin_key = mdl_strdup(s, r->builtin_key);
    d->description = mdl_strdup(s, r->description);
    d->def_canon = mdl_strdup(s, r->def_canon);
    d->def_json = mdl_strdup(s, r->def_json);
    d->def_canon_read = NULL; /* only adapt_definitions sets it, on a finished snapshot */
    d->foreign = r->foreign;
    d->forced = r->forced;
    d->admin = r->admin;
    d->uncopyable = mdl_strdup(s, r->uncopyable);
    d->other_holders = r->other_holders;
    d->grants_unread = r->grants_unread;
    d->recent = r->recent;
    return (uint32_t)s->nroles++;
}

uint32_t mdl_add_user(struct mdl_snapshot *s, const struct mdl_user *u)
{
    if (s->finished) {
        fputs("<2>FATAL mdl_add_user after mdl_snapshot_finish\n", stderr);
        abort();
    }
    if (s->user_ids) {
        fputs("<2>FATAL mdl_add_user after mdl_index_users\n", stderr);
        abort();
    }
    util_grow((void **)&s->users, &s->users_cap, s->nusers + 1, sizeof(*s->users));
    struct mdl_user *d = &s->users[s->nusers];
    d->id = mdl_strdup(s, u->id);
    d->email = mdl_strdup(s, u->email);
    d->username = mdl_strdup(s, u->username);
    d->external_key = mdl_strdup(s, u->external_key);
    d->state = u->state;
    d->grants = NULL;
    d->ngrants = d->grants_cap = 0;
    if (u->ngrants > 0 && u->grants) {
        d->grants = arena_alloc(s->arena, u->ngrants * sizeof(struct mdl_grant));
        memcpy(d->grants, u->grants, u->ngrants * sizeof(struct mdl_grant));
        d->ngrants = d->grants_cap = u->ngrants;
    }
    return (uint32_t)s->nusers++;
}

uint32_t mdl_add_qual(struct mdl_snapshot *s, const struct mdl_qual *q)
{
    if (s->finished || s->nquals >= MDL_MAX_QUALS) {
        fputs("<2>FATAL mdl_add_qual: snapshot finished or too many qualifiers\n", stderr);
        abort();
    }
    util_grow((void **)&s->quals, &s->quals_cap, s->nquals + 1, sizeof(*s->quals));
    struct mdl_qual *d = &s->quals[s->nquals];
    d->id = mdl_strdup(s, q->id);
    d->name = mdl_strdup(s, q->name);
    d->home = s->nquals == 0; /* only qualifier 0 is home */
    d->all = q->all && s->nquals > 0;
    return (uint32_t)s->nquals++;
}

void mdl_set_home(struct mdl_snapshot *s, const char *id, const char *name)
{
    s->quals[0].id = mdl_strdup(s, id);
    s->quals[0].name = mdl_strdup(s, name);
}

void mdl_user_add_grant(struct mdl_snapshot *s, uint32_t user, uint32_t role, uint32_t qual,
                        unsigned flags)
{
    if (s->finished || user >= s->nusers || qual > UINT16_MAX) {
        fputs("<2>FATAL mdl_user_add_grant: bad user or qualifier, or snapshot finished\n", stderr);
        abort();
    }
    struct mdl_user *u = &s->users[user];
    if (u->ngrants == u->grants_cap) {
        /* Arena memory cannot be realloc'd: double into a fresh array; the old one is wasted,
         * bounded by the final size (typical users hold a handful of roles). */
        uint32_t cap = u->grants_cap ? u->grants_cap * 2 : 4;
        struct mdl_grant *n = arena_alloc(s->arena, cap * sizeof(struct mdl_grant));
        if (u->ngrants)
            memcpy(n, u->grants, u->ngrants * sizeof(struct mdl_grant));
        u->grants = n;
        u->grants_cap = cap;
    }
    u->grants[u->ngrants++] = (struct mdl_grant){role, (uint16_t)qual, (uint16_t)flags};
}

void mdl_user_add_role(struct mdl_snapshot *s, uint32_t user, uint32_t role)
{
    mdl_user_add_grant(s, user, role, 0, 0);
}

/* Insert key -> idx; returns false when the key was already present (entry marked dup). */
static bool index_add(struct mdl_snapshot *s, struct mdl_index **head, const char *key,
                      uint32_t idx)
{
    struct mdl_index *e;
    size_t len = strlen(key);
    HASH_FIND(hh, *head, key, len, e);
    if (e) {
        e->dup = true;
        return false;
    }
    e = arena_alloc(s->arena, sizeof(*e));
    e->key = key;
    e->idx = idx;
    HASH_ADD_KEYPTR(hh, *head, e->key, len, e);
    return true;
}

struct mdl_id_slot {
    uint32_t hash; /* uthash's own function (HASH_FUNCTION) over the id */
    uint32_t idx;
};

static uint32_t id_hash(const char *id)
{
    unsigned hv;
    HASH_FUNCTION(id, strlen(id), hv);
    return (uint32_t)hv;
}

/* Slots by (hash, idx): an LSD radix sort on the hash, stable, over slots filled in index
 * order. qsort with a comparison callback was most of the time of finishing a snapshot of 10^5
 * users, a step nothing else can overlap at the end of a read. */
static void sort_slots(struct mdl_id_slot *v, size_t n)
{
    if (n < 2)
        return;
    struct mdl_id_slot *tmp = xmalloc(n * sizeof(*tmp)), *a = v, *b = tmp;
    for (unsigned shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((a[i].hash >> shift) & 0xff) + 1]++;
        for (size_t k = 1; k < 257; k++)
            count[k] += count[k - 1];
        for (size_t i = 0; i < n; i++)
            b[count[(a[i].hash >> shift) & 0xff]++] = a[i];
        struct mdl_id_slot *t = a;
        a = b;
        b = t;
    }
    /* Four passes: the result is back in v. */
    free(tmp);
}

/* A grant's sort key: role, then qualifier, then flags (a direct grant before an inherited one
 * of the same role and qualifier). */
static uint64_t grant_key(const struct mdl_grant *g)
{
    return (uint64_t)g->role << 32 | (uint64_t)g->qual << 16 | g->flags;
}

static int cmp_grant(const void *a, const void *b)
{
    uint64_t x = grant_key(a), y = grant_key(b);
    return (x > y) - (x < y);
}

/* A user's grants, sorted: most users hold a handful, where insertion sort beats qsort's setup
 * and its callback. */
static void sort_grants(struct mdl_grant *a, uint32_t n)
{
    if (n > 16) {
        qsort(a, n, sizeof(*a), cmp_grant);
        return;
    }
    for (uint32_t i = 1; i < n; i++) {
        struct mdl_grant v = a[i];
        uint64_t kv = grant_key(&v);
        uint32_t k = i;
        for (; k > 0 && grant_key(&a[k - 1]) > kv; k--)
            a[k] = a[k - 1];
        a[k] = v;
    }
}

static uint32_t index_find(const struct mdl_index *head, const char *key, bool lower, bool *dup)
{
    if (dup)
        *dup = false;
    if (!key || !head)
        return MDL_NONE;
    size_t len = strlen(key);
    char stackbuf[256];
    char *k = (char *)key;
    if (lower) {
        size_t flen = util_fold_len(key);
        k = flen < sizeof(stackbuf) ? stackbuf : xmalloc(flen + 1);
        len = util_fold_into(k, key);
    }
    struct mdl_index *e;
    HASH_FIND(hh, head, k, len, e);
    if (k != key && k != stackbuf)
        free(k);
    if (!e)
        return MDL_NONE;
    if (dup)
        *dup = e->dup;
    return e->idx;
}

int mdl_index_users(struct mdl_snapshot *s, char *err, size_t errlen)
{
    if (s->finished || s->user_ids)
        return 0;
    struct mdl_id_slot *ids = arena_alloc(s->arena, (s->nusers ? s->nusers : 1) * sizeof(*ids));
    for (size_t i = 0; i < s->nusers; i++) {
        const struct mdl_user *u = &s->users[i];
        if (!u->id) {
            snprintf(err, errlen, "user #%zu has no id", i);
            return -1;
        }
        ids[i].hash = id_hash(u->id);
        ids[i].idx = (uint32_t)i;
    }
    sort_slots(ids, s->nusers);
    /* Equal ids have equal hashes: compare within each run of one hash. */
    for (size_t a = 0; a < s->nusers;) {
        size_t b = a + 1;
        while (b < s->nusers && ids[b].hash == ids[a].hash)
            b++;
        for (size_t x = a; x + 1 < b; x++)
            for (size_t y = x + 1; y < b; y++)
                if (strcmp(s->users[ids[x].idx].id, s->users[ids[y].idx].id) == 0) {
                    snprintf(err, errlen, "duplicate user id %s", s->users[ids[y].idx].id);
                    return -1;
                }
        a = b;
    }
    s->user_ids = ids;
    return 0;
}

int mdl_snapshot_finish(struct mdl_snapshot *s, char *err, size_t errlen)
{
    if (s->finished)
        return 0;
    for (size_t i = 0; i < s->nusers; i++) {
        struct mdl_user *u = &s->users[i];
        for (uint32_t k = 0; k < u->ngrants; k++) {
            if (u->grants[k].role >= s->nroles || u->grants[k].qual >= s->nquals) {
                snprintf(err, errlen, "user %s refers to role index %u of %zu, qualifier %u of %zu",
                         u->id ? u->id : "(no id)", u->grants[k].role, s->nroles,
                         (unsigned)u->grants[k].qual, s->nquals);
                return -1;
            }
        }
        if (u->ngrants > 1) {
            sort_grants(u->grants, u->ngrants);
            uint32_t w = 1;
            for (uint32_t r = 1; r < u->ngrants; r++)
                if (grant_key(&u->grants[r]) != grant_key(&u->grants[w - 1]))
                    u->grants[w++] = u->grants[r];
            u->ngrants = w;
        }
    }
    for (size_t i = 0; i < s->nroles; i++) {
        const struct mdl_role *r = &s->roles[i];
        if (!r->id || !r->name) {
            snprintf(err, errlen, "role #%zu has no %s", i, r->id ? "name" : "id");
            goto fail;
        }
        if (!index_add(s, &s->role_by_id, r->id, (uint32_t)i)) {
            snprintf(err, errlen, "duplicate role id %s", r->id);
            goto fail;
        }
        index_add(s, &s->role_by_name, arena_strdup_fold(s, r->name), (uint32_t)i);
        if (r->builtin_key)
            index_add(s, &s->role_by_key, arena_strdup_fold(s, r->builtin_key), (uint32_t)i);
    }
    for (size_t i = 1; i < s->nquals; i++) {
        const struct mdl_qual *q = &s->quals[i];
        if (!q->id) {
            snprintf(err, errlen, "qualifier #%zu has no id", i);
            goto fail;
        }
    }
    for (size_t i = 0; i < s->nquals; i++) {
        if (s->quals[i].id && !index_add(s, &s->qual_by_id, s->quals[i].id, (uint32_t)i)) {
            snprintf(err, errlen, "duplicate division id %s", s->quals[i].id);
            goto fail;
        }
    }
    if (!s->user_ids && mdl_index_users(s, err, errlen) != 0)
        goto fail;
    s->finished = true;
    return 0;
fail:
    HASH_CLEAR(hh, s->role_by_id);
    HASH_CLEAR(hh, s->role_by_name);
    HASH_CLEAR(hh, s->role_by_key);
    HASH_CLEAR(hh, s->qual_by_id);
    return -1;
}

uint32_t mdl_find_role_by_id(const struct mdl_snapshot *s, const char *id)
{
    return index_find(s->role_by_id, id, false, NULL);
}

uint32_t mdl_find_role_by_name(const struct mdl_snapshot *s, const char *name, bool *dup)
{
    return index_find(s->role_by_name, name, true, dup);
}

uint32_t mdl_find_role_by_key(const struct mdl_snapshot *s, const char *builtin_key)
{
    return index_find(s->role_by_key, builtin_key, true, NULL);
}

uint32_t mdl_find_user_by_id(const struct mdl_snapshot *s, const char *id)
{
    if (!id || !s->user_ids)
        return MDL_NONE;
    uint32_t h = id_hash(id);
    size_t lo = 0, hi = s->nusers;
    while (lo < hi) { /* first slot with hash >= h */
        size_t mid = lo + (hi - lo) / 2;
        if (s->user_ids[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < s->nusers && s->user_ids[lo].hash == h; lo++)
        if (strcmp(s->users[s->user_ids[lo].idx].id, id) == 0)
            return s->user_ids[lo].idx;
    return MDL_NONE;
}

/* Index of the first grant of `role` or beyond (grants are sorted after finish). */
static uint32_t first_grant(const struct mdl_user *u, uint32_t role)
{
    uint32_t lo = 0, hi = u->ngrants;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (u->grants[mid].role < role)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool mdl_user_has_role(const struct mdl_user *u, uint32_t role)
{
    for (uint32_t i = first_grant(u, role); i < u->ngrants && u->grants[i].role == role; i++)
        if (!(u->grants[i].flags & MDL_GRANT_INHERITED))
            return true;
    return false;
}

bool mdl_user_has_grant(const struct mdl_user *u, uint32_t role, uint32_t qual)
{
    for (uint32_t i = first_grant(u, role); i < u->ngrants && u->grants[i].role == role; i++)
        if (u->grants[i].qual == qual && !(u->grants[i].flags & MDL_GRANT_INHERITED))
            return true;
    return false;
}

uint32_t mdl_find_qual_by_id(const struct mdl_snapshot *s, const char *id)
{
    return index_find(s->qual_by_id, id, false, NULL);
}
