/* undo.c — the inverse of one journaled cycle: load it, plan it against a fresh read (pure),
 * guard, print, apply step by step, journal the undo as a cycle of its own (undo.h). */
#include "rolesync/undo.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rolesync/http.h"
#include "rolesync/log.h"
#include "rolesync/provider.h"
#include "rolesync/recent.h"
#include "rolesync/status.h"
#include "rolesync/tenants.h"
#include "rolesync/util.h"

/* ---- the cycle's journal lines ---- */

static void item_free(struct undo_item *it)
{
    free(it->role);
    free(it->role_id);
    free(it->user);
    free(it->user_id);
    free(it->division);
    free(it->division_id);
    free(it->before);
    free(it->after);
}

void undo_cycle_free(struct undo_cycle *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nitems; i++)
        item_free(&c->items[i]);
    free(c->items);
    free(c->cycle);
    free(c->job);
    free(c->target);
    free(c->undo_of);
    memset(c, 0, sizeof *c);
}

/* The lines of one cycle as they are read, before pairing. */
struct collect {
    const char *cycle;
    struct undo_cycle *out;
    struct undo_item *raw; /* every line of the cycle, in journal order */
    enum journal_result *res;
    size_t n, cap, cap_res;
};

static int collect_entry(const struct journal_entry *e, void *arg)
{
    struct collect *c = arg;
    if (!e->cycle || strcmp(e->cycle, c->cycle) != 0)
        return 0;
    struct undo_cycle *o = c->out;
    if (!o->cycle) {
        o->cycle = xstrdup(e->cycle);
        o->job = xstrdup(e->job);
        o->target = xstrdup(e->target);
        o->undo_of = xstrdup(e->undo_of);
    }
    o->lines++;
    util_grow((void **)&c->raw, &c->cap, c->n + 1, sizeof *c->raw);
    util_grow((void **)&c->res, &c->cap_res, c->n + 1, sizeof *c->res);
    c->raw[c->n] = (struct undo_item){
        .seq = e->seq,
        .kind = e->kind,
        .role = xstrdup(e->role),
        .role_id = xstrdup(e->role_id),
        .user = xstrdup(e->user),
        .user_id = xstrdup(e->user_id),
        .division = xstrdup(e->division),
        .division_id = xstrdup(e->division_id),
        .before = xstrdup(e->before),
        .after = xstrdup(e->after),
    };
    c->res[c->n] = e->result;
    c->n++;
    return 0;
}

static int cmp_seq(const void *a, const void *b)
{
    const struct undo_item *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Pair the lines: a deletion's pending line takes the result of its outcome line (same seq);
 * its `before` (definition and holders) is the pending line's when the outcome has none. Only
 * ok changes, and pending deletions with no outcome, are kept; failed ones are counted. */
static void collect_finish(struct collect *c)
{
    struct undo_cycle *o = c->out;
    /* first the deletions' `before`: the pending line's is the one with the holders */
    for (size_t i = 0; i < c->n; i++) {
        struct undo_item *it = &c->raw[i];
        if (it->kind != JOURNAL_ROLE_DELETE || c->res[i] == JOURNAL_PENDING)
            continue;
        for (size_t k = 0; k < c->n; k++) {
            if (k != i && c->raw[k].seq == it->seq && c->res[k] == JOURNAL_PENDING &&
                c->raw[k].before) {
                free(it->before);
                it->before = c->raw[k].before;
                c->raw[k].before = NULL;
                break;
            }
        }
    }
    o->items = xcalloc(c->n + 1, sizeof *o->items);
    for (size_t i = 0; i < c->n; i++) {
        struct undo_item *it = &c->raw[i];
        enum journal_result r = c->res[i];
        bool keep = true;
        if (r == JOURNAL_PENDING) {
            bool outcome = false;
            for (size_t k = 0; k < c->n && !outcome; k++)
                outcome = k != i && c->raw[k].seq == it->seq && c->res[k] != JOURNAL_PENDING;
            keep = !outcome && it->kind == JOURNAL_ROLE_DELETE;
            it->outcome = UNDO_MAYBE;
        } else if (r == JOURNAL_FAILED) {
            o->failed++;
            keep = false;
        } else {
            it->outcome = UNDO_DONE;
        }
        if (keep)
            o->items[o->nitems++] = *it; /* the strings move to the cycle */
        else
            item_free(it);
    }
    /* journal order is seq order within a cycle; a rotation between lines cannot reorder
     * them (the reader visits older files first), but sort to be sure */
    qsort(o->items, o->nitems, sizeof *o->items, cmp_seq);
    free(c->raw);
    free(c->res);
}

bool undo_cycle_from_entries(const struct journal_entry *e, size_t n, const char *cycle,
                             struct undo_cycle *out)
{
    struct collect c = {.cycle = cycle, .out = out};
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++)
        collect_entry(&e[i], &c);
    if (!out->cycle) {
        free(c.raw);
        free(c.res);
        return false;
    }
    collect_finish(&c);
    return true;
}

int undo_load(const char *state_dir, const char *cycle, struct undo_cycle *out, size_t *skipped,
              char *err, size_t errlen)
{
    struct collect c = {.cycle = cycle, .out = out};
    memset(out, 0, sizeof *out);
    if (journal_read(state_dir, collect_entry, &c, skipped, err, errlen) < 0) {
        for (size_t i = 0; i < c.n; i++)
            item_free(&c.raw[i]);
        free(c.raw);
        free(c.res);
        undo_cycle_free(out);
        return -1;
    }
    if (!out->cycle) {
        free(c.raw);
        free(c.res);
        return 1;
    }
    collect_finish(&c);
    return 0;
}

/* ---- a role as a journal line describes it: {"name","description","definition",
 * "holders"} ---- */

struct role_doc {
    struct json_object *root;
    const char *name, *description;
    char *def_json; /* the definition as compact JSON text, or NULL */
    struct json_object *holders;
};

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* false when `text` is no object (a hostile line: its step is skipped) */
static bool role_doc_parse(const char *text, struct role_doc *d)
{
    memset(d, 0, sizeof *d);
    if (!text)
        return false;
    struct json_tokener *tok = json_tokener_new_ex(64);
    if (!tok)
        return false;
    d->root = json_tokener_parse_ex(tok, text, (int)strlen(text));
    bool ok = d->root && json_tokener_get_error(tok) == json_tokener_success &&
              json_object_is_type(d->root, json_type_object);
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(d->root);
        d->root = NULL;
        return false;
    }
    d->name = jstr(d->root, "name");
    d->description = jstr(d->root, "description");
    struct json_object *v;
    if (json_object_object_get_ex(d->root, "definition", &v) && v &&
        json_object_is_type(v, json_type_object))
        d->def_json = xstrdup(json_object_to_json_string_ext(
            v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    if (json_object_object_get_ex(d->root, "holders", &v) && v &&
        json_object_is_type(v, json_type_array))
        d->holders = v;
    return true;
}

static void role_doc_free(struct role_doc *d)
{
    json_object_put(d->root);
    free(d->def_json);
}

/* ---- planning (pure) ---- */

/* What the plan's earlier steps do to a grant: a later step must see the target as they leave
 * it. `created` names a ROLE_CREATE step when the role is one this plan re-creates. */
struct overlay {
    uint32_t user, role, qual;
    size_t created;
    bool add;
};

struct planner {
    struct undo_plan *p;
    const struct mdl_snapshot *t;
    undo_canon_fn canon;
    bool *role_gone; /* snapshot roles this plan deletes */
    struct overlay *ov;
    size_t nov, cap_ov, cap_steps, cap_skips;
};

static bool streq0(const char *a, const char *b)
{
    return (a ? a : "")[0] == '\0' ? (b ? b : "")[0] == '\0' : b != NULL && strcmp(a, b) == 0;
}

static struct undo_step *add_step(struct planner *pl, enum undo_step_kind kind, size_t item)
{
    struct undo_plan *p = pl->p;
    util_grow((void **)&p->steps, &pl->cap_steps, p->nsteps + 1, sizeof *p->steps);
    struct undo_step *s = &p->steps[p->nsteps++];
    *s = (struct undo_step){.kind = kind,
                            .item = item,
                            .role = MDL_NONE,
                            .user = MDL_NONE,
                            .qual = MDL_NONE,
                            .created_by = SIZE_MAX};
    return s;
}

static void add_skip(struct planner *pl, size_t item, const char *reason, const char *holder)
{
    struct undo_plan *p = pl->p;
    util_grow((void **)&p->skips, &pl->cap_skips, p->nskips + 1, sizeof *p->skips);
    p->skips[p->nskips++] =
        (struct undo_skip){.item = item, .reason = xstrdup(reason), .holder = xstrdup(holder)};
}

static void push_overlay(struct planner *pl, uint32_t user, uint32_t role, size_t created,
                         uint32_t qual, bool add)
{
    util_grow((void **)&pl->ov, &pl->cap_ov, pl->nov + 1, sizeof *pl->ov);
    pl->ov[pl->nov++] = (struct overlay){user, role, qual, created, add};
}

/* Whether `user` holds the role directly in `qual` once the plan's earlier steps are done. */
static bool holds(const struct planner *pl, uint32_t user, uint32_t role, size_t created,
                  uint32_t qual)
{
    bool h = role != MDL_NONE && !pl->role_gone[role] &&
             mdl_user_has_grant(&pl->t->users[user], role, qual);
    for (size_t i = 0; i < pl->nov; i++) {
        const struct overlay *o = &pl->ov[i];
        if (o->user == user && o->role == role && o->created == created && o->qual == qual)
            h = o->add;
    }
    return h;
}

static const char *user_key(enum cfg_match_by m, const struct mdl_user *u)
{
    switch (m) {
    case CFG_MATCH_USERNAME:
        return u->username;
    case CFG_MATCH_EXTERNAL_ID:
        return u->external_key;
    case CFG_MATCH_EMAIL:
    default:
        return u->email;
    }
}

/* The user a line names: by id, else (an id the target no longer has) by its match key. */
static uint32_t find_user(const struct planner *pl, const char *id, const char *label)
{
    const struct mdl_snapshot *t = pl->t;
    uint32_t u = id ? mdl_find_user_by_id(t, id) : MDL_NONE;
    if (u == MDL_NONE && label) {
        for (size_t i = 0; i < t->nusers; i++) {
            const char *k = user_key(pl->p->match_by, &t->users[i]);
            if (k && util_fold_cmp(k, label) == 0) {
                u = (uint32_t)i;
                break;
            }
        }
    }
    if (u != MDL_NONE && t->users[u].state == MDL_USER_DELETED)
        return MDL_NONE;
    return u;
}

/* The division a line names: by id, else by name ("*" the all-divisions grant, none the home
 * division, as diff_qual_name writes them). MDL_NONE when the target has it no more. */
static uint32_t find_qual(const struct mdl_snapshot *t, const char *id, const char *name)
{
    if (id) {
        uint32_t q = mdl_find_qual_by_id(t, id);
        if (q != MDL_NONE || t->divided)
            return q;
    }
    if (!name || !t->divided)
        return 0;
    for (size_t i = 0; i < t->nquals; i++) {
        const struct mdl_qual *q = &t->quals[i];
        if (strcmp(name, "*") == 0 ? q->all : (!q->all && q->name && strcmp(q->name, name) == 0))
            return (uint32_t)i;
    }
    return MDL_NONE;
}

/* The snapshot role a line names, by id when it has one, else by name; MDL_NONE when it is
 * gone (or deleted by an earlier step). */
static uint32_t find_role(const struct planner *pl, const char *id, const char *name)
{
    uint32_t r = id     ? mdl_find_role_by_id(pl->t, id)
                 : name ? mdl_find_role_by_name(pl->t, name, NULL)
                        : MDL_NONE;
    return r != MDL_NONE && !pl->role_gone[r] ? r : MDL_NONE;
}

/* A ROLE_CREATE step of this plan re-creating a role named `name`, or SIZE_MAX. */
static size_t created_step(const struct planner *pl, const char *name)
{
    for (size_t i = 0; name && i < pl->p->nsteps; i++) {
        const struct undo_step *s = &pl->p->steps[i];
        if (s->kind == UNDO_STEP_ROLE_CREATE && util_fold_cmp(s->name, name) == 0)
            return i;
    }
    return SIZE_MAX;
}

/* Whether the target role still holds the definition `d` describes (the provider's canonical
 * form compared byte-wise, as the diff compares def_canon). A built-in role's description is
 * the platform's: only its definition counts. */
static bool same_definition(const struct planner *pl, const struct mdl_role *r,
                            const struct role_doc *d)
{
    if (!r->builtin_key && !streq0(r->description, d->description))
        return false;
    if (!d->def_json)
        return r->def_canon == NULL;
    if (!r->def_canon)
        return false;
    if (!pl->canon)
        return strcmp(r->def_canon, d->def_json) == 0;
    char err[256];
    char *c = pl->canon(d->def_json, err, sizeof err);
    bool same = c && strcmp(c, r->def_canon) == 0;
    free(c);
    return same;
}

/* grant_add / grant_remove: the grant's user, role and division as the target has them now. */
static const char *grant_target(struct planner *pl, const struct undo_item *it, uint32_t *u,
                                uint32_t *r, size_t *created, uint32_t *q)
{
    *u = find_user(pl, it->user_id, it->user);
    *r = find_role(pl, it->role_id, it->role);
    *created = SIZE_MAX;
    if (*r == MDL_NONE)
        *created = created_step(pl, it->role);
    *q = find_qual(pl->t, it->division_id, it->division);
    if (*u == MDL_NONE)
        return "user no longer exists";
    if (*r == MDL_NONE && *created == SIZE_MAX)
        return "role no longer exists";
    if (*q == MDL_NONE)
        return "division no longer exists";
    return NULL;
}

static void plan_grant_add(struct planner *pl, size_t i)
{
    const struct undo_item *it = &pl->p->cycle->items[i];
    uint32_t u, r, q;
    size_t created;
    const char *why = grant_target(pl, it, &u, &r, &created, &q);
    if (why) {
        add_skip(pl, i, why, NULL);
        return;
    }
    if (!holds(pl, u, r, created, q)) {
        add_skip(pl, i, "no longer held", NULL);
        return;
    }
    struct undo_step *s = add_step(pl, UNDO_STEP_GRANT_REMOVE, i);
    s->user = u;
    s->role = r;
    s->created_by = created;
    s->qual = q;
    push_overlay(pl, u, r, created, q, false);
    pl->p->grant_removes++;
    pl->p->deletions++;
}

static void plan_grant_remove(struct planner *pl, size_t i)
{
    const struct undo_item *it = &pl->p->cycle->items[i];
    uint32_t u, r, q;
    size_t created;
    const char *why = grant_target(pl, it, &u, &r, &created, &q);
    if (why) {
        add_skip(pl, i, why, NULL);
        return;
    }
    if (holds(pl, u, r, created, q)) {
        add_skip(pl, i, "held again", NULL);
        return;
    }
    struct undo_step *s = add_step(pl, UNDO_STEP_GRANT_ADD, i);
    s->user = u;
    s->role = r;
    s->created_by = created;
    s->qual = q;
    push_overlay(pl, u, r, created, q, true);
    pl->p->grant_adds++;
}

/* The direct holders role `r` still has once the earlier steps are done: they go with it.
 * Candidates are the snapshot's direct grants of it and the grants earlier steps add. */
static void add_take(struct planner *pl, struct undo_step *s, size_t *cap, uint32_t u, uint32_t q,
                     uint32_t r)
{
    if (!holds(pl, u, r, SIZE_MAX, q))
        return;
    for (size_t i = 0; i < s->ntakes; i++)
        if (s->takes[i].user == u && s->takes[i].qual == q)
            return;
    util_grow((void **)&s->takes, cap, s->ntakes + 1, sizeof *s->takes);
    s->takes[s->ntakes++] = (struct undo_holder){u, q};
}

static void collect_takes(struct planner *pl, struct undo_step *s, uint32_t r)
{
    const struct mdl_snapshot *t = pl->t;
    size_t cap = 0;
    for (size_t u = 0; u < t->nusers; u++) {
        const struct mdl_user *usr = &t->users[u];
        for (uint32_t g = 0; g < usr->ngrants; g++)
            if (usr->grants[g].role == r && !(usr->grants[g].flags & MDL_GRANT_INHERITED))
                add_take(pl, s, &cap, (uint32_t)u, usr->grants[g].qual, r);
    }
    for (size_t i = 0; i < pl->nov; i++)
        if (pl->ov[i].role == r && pl->ov[i].add)
            add_take(pl, s, &cap, pl->ov[i].user, pl->ov[i].qual, r);
}

static void plan_role_create(struct planner *pl, size_t i)
{
    const struct undo_item *it = &pl->p->cycle->items[i];
    struct role_doc d;
    if (!role_doc_parse(it->after, &d)) {
        add_skip(pl, i, "the journal line has no readable definition", NULL);
        return;
    }
    uint32_t r = find_role(pl, it->role_id, it->role);
    if (r == MDL_NONE)
        add_skip(pl, i, "no longer exists", NULL);
    else if (pl->t->roles[r].builtin_key || pl->t->roles[r].foreign ||
             !same_definition(pl, &pl->t->roles[r], &d))
        add_skip(pl, i, "changed since", NULL);
    else {
        struct undo_step *s = add_step(pl, UNDO_STEP_ROLE_DELETE, i);
        s->role = r;
        collect_takes(pl, s, r);
        /* index arithmetic, not the pointer: collect_takes does not add steps */
        pl->role_gone[r] = true;
        pl->p->role_deletes++;
        pl->p->deletions += 1 + s->ntakes;
    }
    role_doc_free(&d);
}

static void plan_role_update(struct planner *pl, size_t i)
{
    const struct undo_item *it = &pl->p->cycle->items[i];
    struct role_doc before, after;
    bool b = role_doc_parse(it->before, &before), a = role_doc_parse(it->after, &after);
    uint32_t r = find_role(pl, it->role_id, it->role);
    if (!a || !b)
        add_skip(pl, i, "the journal line has no readable definition", NULL);
    else if (r == MDL_NONE)
        add_skip(pl, i, "no longer exists", NULL);
    else if (!same_definition(pl, &pl->t->roles[r], &after))
        add_skip(pl, i, "changed since", NULL);
    else {
        struct undo_step *s = add_step(pl, UNDO_STEP_ROLE_UPDATE, i);
        s->role = r;
        s->name = xstrdup(pl->t->roles[r].name);
        s->description = xstrdup(before.description);
        s->def_json = xstrdup(before.def_json);
        pl->p->role_updates++;
    }
    if (b)
        role_doc_free(&before);
    if (a)
        role_doc_free(&after);
}

static void plan_role_delete(struct planner *pl, size_t i)
{
    const struct undo_item *it = &pl->p->cycle->items[i];
    struct role_doc d;
    if (!role_doc_parse(it->before, &d)) {
        add_skip(pl, i, "the journal line has no readable definition", NULL);
        return;
    }
    const char *name = d.name ? d.name : it->role;
    /* The cycle died with the DELETE in flight: the role still there (same id) says it did
     * not happen, and there is nothing to take back. */
    if (it->outcome == UNDO_MAYBE && it->role_id &&
        mdl_find_role_by_id(pl->t, it->role_id) != MDL_NONE) {
        add_skip(pl, i, "not deleted (the cycle stopped before the reply)", NULL);
        role_doc_free(&d);
        return;
    }
    if (!name || find_role(pl, NULL, name) != MDL_NONE || created_step(pl, name) != SIZE_MAX) {
        add_skip(pl, i, name ? "exists again" : "the journal line names no role", NULL);
        role_doc_free(&d);
        return;
    }
    size_t si = pl->p->nsteps;
    struct undo_step *s = add_step(pl, UNDO_STEP_ROLE_CREATE, i);
    s->name = xstrdup(name);
    s->description = xstrdup(d.description);
    s->def_json = xstrdup(d.def_json);
    pl->p->role_creates++;
    size_t cap = 0;
    for (size_t k = 0; d.holders && k < json_object_array_length(d.holders); k++) {
        struct json_object *h = json_object_array_get_idx(d.holders, k);
        const char *label = jstr(h, "user");
        uint32_t u = find_user(pl, jstr(h, "user_id"), label);
        uint32_t q = find_qual(pl->t, jstr(h, "division_id"), jstr(h, "division"));
        const char *why = u == MDL_NONE   ? "user no longer exists"
                          : q == MDL_NONE ? "division no longer exists"
                                          : NULL;
        if (why) {
            add_skip(pl, i, why, label ? label : jstr(h, "user_id"));
            continue;
        }
        s = &pl->p->steps[si]; /* add_skip does not move steps, but be plain about it */
        bool dup = false;
        for (size_t x = 0; x < s->nholders && !dup; x++)
            dup = s->holders[x].user == u && s->holders[x].qual == q;
        if (dup)
            continue;
        util_grow((void **)&s->holders, &cap, s->nholders + 1, sizeof *s->holders);
        s->holders[s->nholders++] = (struct undo_holder){u, q};
        push_overlay(pl, u, MDL_NONE, si, q, true);
        pl->p->grant_adds++;
    }
    role_doc_free(&d);
}

struct undo_plan *undo_plan_build(const struct undo_cycle *c, const struct mdl_snapshot *tgt,
                                  undo_canon_fn canon, enum cfg_match_by match_by)
{
    struct undo_plan *p = xcalloc(1, sizeof *p);
    p->cycle = c;
    p->tgt = tgt;
    p->match_by = match_by;
    struct planner pl = {.p = p, .t = tgt, .canon = canon};
    pl.role_gone = xcalloc(tgt->nroles + 1, sizeof(bool));
    /* newest first: each inverse step meets the target as the later changes left it */
    for (size_t i = c->nitems; i-- > 0;) {
        switch (c->items[i].kind) {
        case JOURNAL_GRANT_ADD:
            plan_grant_add(&pl, i);
            break;
        case JOURNAL_GRANT_REMOVE:
            plan_grant_remove(&pl, i);
            break;
        case JOURNAL_ROLE_CREATE:
            plan_role_create(&pl, i);
            break;
        case JOURNAL_ROLE_UPDATE:
            plan_role_update(&pl, i);
            break;
        case JOURNAL_ROLE_DELETE:
            plan_role_delete(&pl, i);
            break;
        }
    }
    free(pl.role_gone);
    free(pl.ov);
    return p;
}

void undo_plan_free(struct undo_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nsteps; i++) {
        struct undo_step *s = &p->steps[i];
        free(s->name);
        free(s->description);
        free(s->def_json);
        free(s->holders);
        free(s->takes);
    }
    for (size_t i = 0; i < p->nskips; i++) {
        free(p->skips[i].reason);
        free(p->skips[i].holder);
    }
    free(p->steps);
    free(p->skips);
    free(p);
}

/* ---- plan text ---- */

const char *undo_user_label(const struct undo_plan *p, uint32_t user)
{
    const struct mdl_user *u = &p->tgt->users[user];
    const char *k = user_key(p->match_by, u);
    return k && *k ? k : u->id;
}

const char *undo_qual_name(const struct undo_plan *p, uint32_t qual)
{
    const struct mdl_snapshot *t = p->tgt;
    if (!t->divided || qual == 0 || qual >= t->nquals)
        return NULL;
    const struct mdl_qual *q = &t->quals[qual];
    return q->all ? "*" : q->name ? q->name : q->id;
}

const char *undo_step_role_name(const struct undo_plan *p, const struct undo_step *s)
{
    if (s->role != MDL_NONE)
        return p->tgt->roles[s->role].name;
    if (s->created_by != SIZE_MAX)
        return p->steps[s->created_by].name;
    return s->name ? s->name : p->cycle->items[s->item].role;
}

/* quoting as plan.c's put_quoted / put_plain, so an undo plan reads like a cycle's */
static void put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\x%02x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

static void put_plain(FILE *f, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++)
        fputc(*c < 0x20 || *c == 0x7f ? '?' : *c, f);
}

static void put_grant(FILE *f, bool add, const char *user, const char *role, const char *div)
{
    fputs(add ? "+ user " : "- user ", f);
    put_plain(f, user);
    fputs(" role ", f);
    put_quoted(f, role);
    if (div) {
        fputs(" division ", f);
        put_quoted(f, div);
    }
    fputc('\n', f);
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

void undo_plan_render(const struct undo_plan *p, FILE *f)
{
    for (size_t i = 0; i < p->nsteps; i++) {
        const struct undo_step *s = &p->steps[i];
        const char *role = undo_step_role_name(p, s);
        switch (s->kind) {
        case UNDO_STEP_GRANT_REMOVE:
        case UNDO_STEP_GRANT_ADD:
            put_grant(f, s->kind == UNDO_STEP_GRANT_ADD, undo_user_label(p, s->user), role,
                      undo_qual_name(p, s->qual));
            break;
        case UNDO_STEP_ROLE_DELETE:
            fputs("- role ", f);
            put_quoted(f, role);
            if (s->ntakes)
                fprintf(f, " (with %zu %s)", s->ntakes, plural(s->ntakes, "grant", "grants"));
            fputc('\n', f);
            break;
        case UNDO_STEP_ROLE_UPDATE:
            fputs("~ role ", f);
            put_quoted(f, role);
            fputs(" (put back)\n", f);
            break;
        case UNDO_STEP_ROLE_CREATE:
            fputs("+ role ", f);
            put_quoted(f, role);
            fputc('\n', f);
            for (size_t k = 0; k < s->nholders; k++)
                put_grant(f, true, undo_user_label(p, s->holders[k].user), role,
                          undo_qual_name(p, s->holders[k].qual));
            break;
        }
    }
    for (size_t i = 0; i < p->nskips; i++) {
        const struct undo_skip *k = &p->skips[i];
        const struct undo_item *it = &p->cycle->items[k->item];
        fprintf(f, "! skipped: %s role ", journal_kind_name(it->kind));
        put_quoted(f, it->role);
        const char *user = k->holder ? k->holder : it->user;
        if (user) {
            fputs(" user ", f);
            put_plain(f, user);
        }
        if (it->division && !k->holder) {
            fputs(" division ", f);
            put_quoted(f, it->division);
        }
        fprintf(f, ": %s\n", k->reason);
    }
    fputs("undo ", f);
    put_plain(f, p->cycle->cycle);
    fputs(" of job ", f);
    put_plain(f, p->cycle->job);
    fprintf(f,
            ": %zu %s to create, %zu to update, %zu to delete, %zu %s to add, %zu to remove, "
            "%zu skipped\n",
            p->role_creates, plural(p->role_creates, "role", "roles"), p->role_updates,
            p->role_deletes, p->grant_adds, plural(p->grant_adds, "assignment", "assignments"),
            p->grant_removes, p->nskips);
}

/* ==== the command: read, plan, guard, apply (undo_run) ==== */

/* What this undo wrote to a user's whole role set (targets without grant writes). */
struct set_change {
    uint32_t user;
    char *role_id;
    bool add;
};

struct urun {
    const struct cfg_config *cfg;
    const struct cfg_job *job;
    struct prov_tenant tgt;
    const struct prov_ops *ops;
    struct undo_cycle *cyc;
    struct mdl_snapshot *snap;
    struct undo_plan *plan;
    bool read_done;
    bool done;

    struct recent_roles *recent; /* roles created lately (recent.h, product.md 4a.8) */
    struct journal *jn;          /* NULL: not journaled (reported once) */
    char cycle[JOURNAL_CYCLE_LEN];
    uint64_t seq;
    size_t next;          /* the step being applied */
    char **new_ids;       /* per step: a re-created role's id */
    size_t *holder_batch; /* ROLE_CREATE: the holders of the grant in flight */
    size_t nholder_batch; /* ... and how many */
    bool *holder_sent;    /* ROLE_CREATE: holders granted (or tried) */
    size_t holders_left;  /* ROLE_CREATE: holders still to grant */
    struct set_change *sets;
    size_t nsets, cap_sets;
    char **deleted_ids;
    size_t ndeleted, cap_deleted;
    size_t roles_created, roles_updated, roles_deleted, added, removed, failed_ops;
};

static void apply_next(struct urun *u);

static char *doc_text(const char *name, const char *description, const char *def_json,
                      const struct undo_plan *p, const struct undo_holder *h, size_t nh,
                      bool with_holders)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", name ? json_object_new_string(name) : NULL);
    json_object_object_add(o, "description",
                           description ? json_object_new_string(description) : NULL);
    struct json_object *def = def_json ? json_tokener_parse(def_json) : NULL;
    json_object_object_add(o, "definition", def);
    if (with_holders) {
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < nh; i++) {
            const struct mdl_user *usr = &p->tgt->users[h[i].user];
            const char *div = undo_qual_name(p, h[i].qual);
            struct json_object *x = json_object_new_object();
            json_object_object_add(x, "user",
                                   json_object_new_string(undo_user_label(p, h[i].user)));
            json_object_object_add(x, "user_id", json_object_new_string(usr->id));
            json_object_object_add(x, "division", div ? json_object_new_string(div) : NULL);
            const char *qid = h[i].qual ? p->tgt->quals[h[i].qual].id : NULL;
            json_object_object_add(x, "division_id", qid ? json_object_new_string(qid) : NULL);
            json_object_array_add(a, x);
        }
        json_object_object_add(o, "holders", a);
    }
    char *s = xstrdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

/* One journal line of the undo (journal.h); a journal that cannot be written is reported and
 * never stops the undo, as for a cycle. */
static void jline(struct urun *u, enum journal_kind kind, uint64_t seq, const char *role,
                  const char *role_id, uint32_t user, uint32_t qual, const char *before,
                  const char *after, enum journal_result res, const struct prov_result *r,
                  bool sync)
{
    if (!u->jn)
        return;
    const struct undo_plan *p = u->plan;
    struct journal_entry e = {
        .cycle = u->cycle,
        .seq = seq,
        .job = u->job->name,
        .target = u->tgt.cfg->name,
        .at_ms = util_now_ms(),
        .kind = kind,
        .role = role,
        .role_id = role_id,
        .user = user != MDL_NONE ? undo_user_label(p, user) : NULL,
        .user_id = user != MDL_NONE ? p->tgt->users[user].id : NULL,
        .division = user != MDL_NONE ? undo_qual_name(p, qual) : NULL,
        .division_id = user != MDL_NONE && qual != 0 ? p->tgt->quals[qual].id : NULL,
        .before = before,
        .after = after,
        .result = res,
        .correlation_id = r && r->correlation_id && *r->correlation_id ? r->correlation_id : NULL,
        .message = r && !r->ok && r->message && *r->message ? r->message : NULL,
        .undo_of = u->cyc->cycle,
    };
    char err[512], q[600];
    if (journal_append(u->jn, &e, sync, err, sizeof err) != 0)
        log_warning(u->job->name, "change not journaled error=%s", log_quote(q, sizeof q, err));
}

static void write_failed(struct urun *u, const char *op, const struct prov_result *r)
{
    char q[600], p[300];
    u->failed_ops++;
    log_warning(u->job->name,
                "operation failed op=\"%s\" target=%s method=%s path=%s status=%ld "
                "correlation_id=%s error=%s",
                op, u->tgt.cfg->name, r->method ? r->method : "-",
                log_quote(p, sizeof p, r->path ? r->path : "-"), r->status,
                r->correlation_id && r->correlation_id[0] ? r->correlation_id : "-",
                log_quote(q, sizeof q, r->message ? r->message : ""));
}

static void log_grant(struct urun *u, bool add, uint32_t user, const char *role, uint32_t qual)
{
    char qu[300], qr[300], qd[300];
    const char *div = undo_qual_name(u->plan, qual);
    if (div)
        log_info(u->job->name, "assignment %s user=%s role=%s division=%s target=%s undo_of=%s",
                 add ? "added" : "removed",
                 log_quote(qu, sizeof qu, undo_user_label(u->plan, user)),
                 log_quote(qr, sizeof qr, role), log_quote(qd, sizeof qd, div), u->tgt.cfg->name,
                 u->cyc->cycle);
    else
        log_info(u->job->name, "assignment %s user=%s role=%s target=%s undo_of=%s",
                 add ? "added" : "removed",
                 log_quote(qu, sizeof qu, undo_user_label(u->plan, user)),
                 log_quote(qr, sizeof qr, role), u->tgt.cfg->name, u->cyc->cycle);
}

static bool deleted_id(const struct urun *u, const char *id)
{
    for (size_t i = 0; i < u->ndeleted; i++)
        if (strcmp(u->deleted_ids[i], id) == 0)
            return true;
    return false;
}

/* A user's whole role set once `role_id` is added or removed (targets without grant writes):
 * the roles it holds directly as read, with what this undo wrote to it since. malloc'd ids
 * borrowed from the snapshot and the undo; *n of them. */
static const char **role_set(struct urun *u, uint32_t user, const char *role_id, bool add,
                             size_t *n)
{
    const struct mdl_user *usr = &u->snap->users[user];
    const char **ids = xcalloc(usr->ngrants + u->nsets + 2, sizeof *ids);
    *n = 0;
    for (uint32_t g = 0; g < usr->ngrants; g++) {
        const char *id = u->snap->roles[usr->grants[g].role].id;
        bool dup = (usr->grants[g].flags & MDL_GRANT_INHERITED) || deleted_id(u, id);
        for (size_t k = 0; k < *n && !dup; k++)
            dup = strcmp(ids[k], id) == 0;
        if (!dup)
            ids[(*n)++] = id;
    }
    for (size_t i = 0; i <= u->nsets; i++) {
        const char *id = i < u->nsets ? u->sets[i].role_id : role_id;
        bool a = i < u->nsets ? u->sets[i].add : add;
        if (i < u->nsets && u->sets[i].user != user)
            continue;
        size_t k = 0;
        while (k < *n && strcmp(ids[k], id) != 0)
            k++;
        if (a && k == *n)
            ids[(*n)++] = id;
        else if (!a && k < *n)
            ids[k] = ids[--(*n)];
    }
    return ids;
}

static void note_set(struct urun *u, uint32_t user, const char *role_id, bool add)
{
    util_grow((void **)&u->sets, &u->cap_sets, u->nsets + 1, sizeof *u->sets);
    u->sets[u->nsets++] = (struct set_change){user, xstrdup(role_id), add};
}

/* ---- grants: a step's single grant, and a re-created role's holders ---- */

struct gctx {
    struct urun *u;
    uint32_t user, qual;
    const char *role, *role_id; /* borrowed from the snapshot / new_ids */
    bool add;
    uint64_t seq;
};

static void on_grant(const struct prov_result *r, void *arg)
{
    struct gctx *g = arg;
    struct urun *u = g->u;
    jline(u, g->add ? JOURNAL_GRANT_ADD : JOURNAL_GRANT_REMOVE, g->seq, g->role, g->role_id,
          g->user, g->qual, NULL, NULL, r->ok ? JOURNAL_OK : JOURNAL_FAILED, r, false);
    if (!r->ok) {
        write_failed(u, g->add ? "user grants add" : "user grants remove", r);
    } else {
        if (g->add)
            u->added++;
        else
            u->removed++;
        if (!(u->snap->caps & MDL_CAP_GRANT_WRITES))
            note_set(u, g->user, g->role_id, g->add);
        log_grant(u, g->add, g->user, g->role, g->qual);
    }
    free(g);
    u->next++;
    apply_next(u);
}

/* One user's grant through the platform's write: per-user, per-division add or remove
 * (never revoke_users, which takes the role in every division), or the user's whole set. */
static void send_grant(struct urun *u, uint32_t user, const char *role_id, uint32_t qual, bool add,
                       unsigned flags, prov_done_cb cb, void *ctx)
{
    const char *uid = u->snap->users[user].id;
    if (u->snap->caps & MDL_CAP_GRANT_WRITES) {
        struct prov_grant pg = {role_id, u->snap->quals[qual].id};
        u->ops->user_grants(&u->tgt, uid, add, &pg, 1, flags, cb, ctx);
    } else {
        size_t n;
        const char **ids = role_set(u, user, role_id, add, &n);
        u->ops->user_set_roles(&u->tgt, uid, ids, n, cb, ctx);
        free(ids);
    }
}

static void step_grant(struct urun *u, const struct undo_step *s)
{
    bool add = s->kind == UNDO_STEP_GRANT_ADD;
    const char *role_id =
        s->role != MDL_NONE ? u->snap->roles[s->role].id : u->new_ids[s->created_by];
    struct gctx *g = xcalloc(1, sizeof *g);
    *g =
        (struct gctx){u, s->user, s->qual, undo_step_role_name(u->plan, s), role_id, add, ++u->seq};
    if (!role_id) {
        /* the step that re-creates its role failed: nothing to grant */
        struct prov_result r = {.method = add ? "POST" : "DELETE",
                                .path = "",
                                .message = "its role could not be re-created",
                                .correlation_id = ""};
        on_grant(&r, g);
        return;
    }
    send_grant(u, s->user, role_id, s->qual, add, s->created_by != SIZE_MAX ? PROV_W_NEW_ROLE : 0,
               on_grant, g);
}

static void grant_holders(struct urun *u);

static void on_holders(const struct prov_result *r, void *arg)
{
    struct urun *u = arg;
    const struct undo_step *s = &u->plan->steps[u->next];
    const char *role_id = u->new_ids[u->next];
    if (!r->ok)
        write_failed(u, "role grant", r);
    for (size_t k = 0; k < u->nholder_batch; k++) {
        const struct undo_holder *h = &s->holders[u->holder_batch[k]];
        jline(u, JOURNAL_GRANT_ADD, ++u->seq, s->name, role_id, h->user, h->qual, NULL, NULL,
              r->ok ? JOURNAL_OK : JOURNAL_FAILED, r, false);
        if (r->ok) {
            u->added++;
            if (!(u->snap->caps & MDL_CAP_GRANT_WRITES))
                note_set(u, h->user, role_id, true);
            log_grant(u, true, h->user, s->name, h->qual);
        }
    }
    grant_holders(u);
}

/* A re-created role's holders: with grant writes one grant_users per division and up to
 * PLAN_BATCH_MAX users (one role, many users, one division; the new role may be unknown to
 * the platform for a moment, PROV_W_NEW_ROLE, product.md 4a.8), else each user's whole set. */
#define UNDO_BATCH_MAX 100 /* plan.h PLAN_BATCH_MAX */
static void grant_holders(struct urun *u)
{
    const struct undo_step *s = &u->plan->steps[u->next];
    if (u->holders_left == 0) {
        u->next++;
        apply_next(u);
        return;
    }
    size_t first = 0;
    while (u->holder_sent[first])
        first++;
    uint32_t qual = s->holders[first].qual;
    u->nholder_batch = 0;
    bool batch = (u->snap->caps & MDL_CAP_GRANT_WRITES) != 0;
    for (size_t k = first; k < s->nholders && u->nholder_batch < (batch ? UNDO_BATCH_MAX : 1);
         k++) {
        if (u->holder_sent[k] || s->holders[k].qual != qual)
            continue;
        u->holder_sent[k] = true;
        u->holder_batch[u->nholder_batch++] = k;
    }
    u->holders_left -= u->nholder_batch;
    const char *role_id = u->new_ids[u->next];
    if (batch) {
        const char **ids = xcalloc(u->nholder_batch, sizeof *ids);
        for (size_t k = 0; k < u->nholder_batch; k++)
            ids[k] = u->snap->users[s->holders[u->holder_batch[k]].user].id;
        u->ops->grant_users(&u->tgt, role_id, u->snap->quals[qual].id, ids, u->nholder_batch,
                            PROV_W_NEW_ROLE, on_holders, u);
        free(ids);
    } else {
        send_grant(u, s->holders[first].user, role_id, 0, true, PROV_W_NEW_ROLE, on_holders, u);
    }
}

/* ---- roles ---- */

struct rctx {
    struct urun *u;
    uint64_t seq;
    char *before, *after;
};

static void on_role(const struct prov_result *r, void *arg)
{
    struct rctx *c = arg;
    struct urun *u = c->u;
    const struct undo_step *s = &u->plan->steps[u->next];
    const char *name = undo_step_role_name(u->plan, s);
    enum journal_result res = r->ok ? JOURNAL_OK : JOURNAL_FAILED;
    char q[300];
    switch (s->kind) {
    case UNDO_STEP_ROLE_CREATE:
        jline(u, JOURNAL_ROLE_CREATE, c->seq, name, r->ok ? r->id : NULL, MDL_NONE, 0, NULL,
              c->after, res, r, false);
        break;
    case UNDO_STEP_ROLE_UPDATE:
        jline(u, JOURNAL_ROLE_UPDATE, c->seq, name, u->snap->roles[s->role].id, MDL_NONE, 0,
              c->before, c->after, res, r, false);
        break;
    default:
        /* the outcome line of the deletion (its pending line went first) */
        jline(u, JOURNAL_ROLE_DELETE, c->seq, name, u->snap->roles[s->role].id, MDL_NONE, 0,
              c->before, NULL, res, r, true);
        break;
    }
    free(c->before);
    free(c->after);
    free(c);
    static const char *const opname[] = {[UNDO_STEP_ROLE_CREATE] = "role create",
                                         [UNDO_STEP_ROLE_UPDATE] = "role update",
                                         [UNDO_STEP_ROLE_DELETE] = "role delete"};
    if (!r->ok) {
        write_failed(u, opname[s->kind], r);
        if (s->kind == UNDO_STEP_ROLE_CREATE && s->nholders)
            log_warning(u->job->name,
                        "holders not granted, their role was not re-created "
                        "role=%s holders=%zu",
                        log_quote(q, sizeof q, name), s->nholders);
        u->next++;
        apply_next(u);
        return;
    }
    switch (s->kind) {
    case UNDO_STEP_ROLE_CREATE:
        u->roles_created++;
        log_info(u->job->name, "role created role=%s target=%s undo_of=%s",
                 log_quote(q, sizeof q, name), u->tgt.cfg->name, u->cyc->cycle);
        u->new_ids[u->next] = xstrdup(r->id);
        if (u->recent && r->id && (u->snap->caps & MDL_CAP_LAGGING_LISTINGS)) {
            char *key = recent_tenant_key(u->tgt.cfg->name, u->tgt.cfg->base_url);
            char rerr[512], qe[600];
            if (recent_note(u->recent, key, r->id, name, s->description, s->def_json, util_now_ms(),
                            rerr, sizeof rerr) != 0)
                log_warning(u->job->name, "cannot remember the created role error=%s",
                            log_quote(qe, sizeof qe, rerr));
            free(key);
        }
        if (!r->id) {
            /* not expected: a provider's create reports the new id */
            log_warning(u->job->name, "role created without an id, holders not granted role=%s",
                        log_quote(q, sizeof q, name));
            u->next++;
            apply_next(u);
            return;
        }
        free(u->holder_sent);
        free(u->holder_batch);
        u->holder_sent = xcalloc(s->nholders + 1, sizeof(bool));
        u->holder_batch = xcalloc(s->nholders + 1, sizeof(size_t));
        u->holders_left = s->nholders;
        grant_holders(u);
        return;
    case UNDO_STEP_ROLE_UPDATE:
        u->roles_updated++;
        log_info(u->job->name, "role updated role=%s target=%s undo_of=%s",
                 log_quote(q, sizeof q, name), u->tgt.cfg->name, u->cyc->cycle);
        break;
    default:
        u->roles_deleted++;
        util_grow((void **)&u->deleted_ids, &u->cap_deleted, u->ndeleted + 1,
                  sizeof *u->deleted_ids);
        u->deleted_ids[u->ndeleted++] = xstrdup(u->snap->roles[s->role].id);
        log_info(u->job->name, "role deleted role=%s target=%s undo_of=%s",
                 log_quote(q, sizeof q, name), u->tgt.cfg->name, u->cyc->cycle);
        break;
    }
    u->next++;
    apply_next(u);
}

static void step_role(struct urun *u, const struct undo_step *s)
{
    struct rctx *c = xcalloc(1, sizeof *c);
    c->u = u;
    c->seq = ++u->seq;
    if (s->kind == UNDO_STEP_ROLE_CREATE) {
        struct mdl_role src = {
            .name = s->name, .description = s->description, .def_json = s->def_json};
        c->after = doc_text(s->name, s->description, s->def_json, u->plan, NULL, 0, false);
        u->ops->role_create(&u->tgt, &src, s->name, on_role, c);
        return;
    }
    const struct mdl_role *t = &u->snap->roles[s->role];
    c->before = doc_text(t->name, t->description, t->def_json, u->plan, s->takes, s->ntakes,
                         s->kind == UNDO_STEP_ROLE_DELETE);
    if (s->kind == UNDO_STEP_ROLE_UPDATE) {
        struct mdl_role src = {.name = t->name,
                               .builtin_key = t->builtin_key,
                               .description = s->description,
                               .def_json = s->def_json};
        c->after = doc_text(t->name, s->description, s->def_json, u->plan, NULL, 0, false);
        u->ops->role_update(&u->tgt, &src, t, on_role, c);
        return;
    }
    /* journal.h: the deletion's pending line, with the definition and the holders it takes,
     * is on disk before the DELETE is sent */
    jline(u, JOURNAL_ROLE_DELETE, c->seq, t->name, t->id, MDL_NONE, 0, c->before, NULL,
          JOURNAL_PENDING, NULL, true);
    u->ops->role_delete(&u->tgt, t, on_role, c);
}

/* The steps one after the other, in plan order: the order is what makes an inverse right (a
 * grant goes before its role; a re-created role before its grants), and an undo is an
 * operator's occasional act, not a cycle that must be fast. */
static void apply_next(struct urun *u)
{
    if (u->next == u->plan->nsteps) {
        u->done = true;
        return;
    }
    const struct undo_step *s = &u->plan->steps[u->next];
    if (s->kind == UNDO_STEP_GRANT_ADD || s->kind == UNDO_STEP_GRANT_REMOVE)
        step_grant(u, s);
    else
        step_role(u, s);
}

/* ---- the read ---- */

static bool touched(const struct undo_cycle *c, const struct mdl_role *r)
{
    for (size_t i = 0; i < c->nitems; i++) {
        const struct undo_item *it = &c->items[i];
        if ((it->role_id && r->id && strcmp(it->role_id, r->id) == 0) ||
            (it->role && r->name && util_fold_cmp(it->role, r->name) == 0))
            return true;
    }
    return false;
}

static void on_roles_read(struct prov_fetch *f, struct mdl_snapshot *roles, void *arg)
{
    struct urun *u = arg;
    if (u->recent && (roles->caps & MDL_CAP_LAGGING_LISTINGS)) {
        /* as a cycle does: a role created moments ago (by a cycle, or by an undo) may be
         * missing from a lagging listing; it is taken as it was written, grants unknown */
        char *key = recent_tenant_key(u->tgt.cfg->name, u->tgt.cfg->base_url);
        size_t n = recent_inject(u->recent, key, roles, util_now_ms());
        free(key);
        if (n)
            log_info(u->job->name,
                     "roles created lately are not listed yet, taken as they were written "
                     "roles=%zu target=%s",
                     n, u->tgt.cfg->name);
    }
    bool *mask = xcalloc(roles->nroles + 1, sizeof(bool));
    for (size_t i = 0; i < roles->nroles; i++)
        mask[i] = touched(u->cyc, &roles->roles[i]);
    prov_fetch_grants(f, mask);
    free(mask);
}

static void on_read(struct mdl_snapshot *snap, const struct prov_read_error *err, void *arg)
{
    struct urun *u = arg;
    u->read_done = true;
    u->snap = snap;
    if (!snap) {
        char q[600], p[300];
        log_error(u->job->name,
                  "read failed side=target tenant=%s method=%s path=%s status=%ld "
                  "correlation_id=%s error=%s",
                  u->tgt.cfg->name, err->method ? err->method : "-",
                  log_quote(p, sizeof p, err->path ? err->path : "-"), err->status,
                  err->correlation_id && err->correlation_id[0] ? err->correlation_id : "-",
                  log_quote(q, sizeof q, err->message ? err->message : ""));
    }
}

static const struct cfg_job *find_job(const struct cfg_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->njobs; i++)
        if (strcmp(cfg->jobs[i].name, name) == 0)
            return &cfg->jobs[i];
    return NULL;
}

static void run_loop(uv_loop_t *loop, const bool *flag)
{
    while (!*flag && uv_run(loop, UV_RUN_ONCE))
        ;
}

static void urun_free(struct urun *u)
{
    for (size_t i = 0; u->plan && i < u->plan->nsteps; i++)
        free(u->new_ids ? u->new_ids[i] : NULL);
    free(u->new_ids);
    free(u->holder_sent);
    free(u->holder_batch);
    for (size_t i = 0; i < u->nsets; i++)
        free(u->sets[i].role_id);
    free(u->sets);
    for (size_t i = 0; i < u->ndeleted; i++)
        free(u->deleted_ids[i]);
    free(u->deleted_ids);
    undo_plan_free(u->plan);
    mdl_snapshot_free(u->snap);
}

/* Plan against the read, guard, print, apply. Returns the exit code. */
static int undo_apply(struct urun *u, uv_loop_t *loop, bool dry_run, bool cli_dry_run,
                      bool force_deletes, FILE *out)
{
    const struct cfg_job *job = u->job;
    char q[600];
    u->plan = undo_plan_build(u->cyc, u->snap, u->ops->def_canon, job->match_by);
    struct undo_plan *p = u->plan;
    bool refused = !force_deletes && p->deletions > job->max_deletes;
    undo_plan_render(p, out);
    for (size_t i = 0; i < p->nskips; i++) {
        const struct undo_skip *k = &p->skips[i];
        const struct undo_item *it = &u->cyc->items[k->item];
        char qr[300], qu[300];
        log_warning(job->name, "undo step skipped kind=%s role=%s user=%s reason=%s undo_of=%s",
                    journal_kind_name(it->kind),
                    log_quote(qr, sizeof qr, it->role ? it->role : "-"),
                    log_quote(qu, sizeof qu,
                              k->holder  ? k->holder
                              : it->user ? it->user
                                         : "-"),
                    log_quote(q, sizeof q, k->reason), u->cyc->cycle);
    }
    if (refused) {
        fprintf(out,
                "! refused: the undo deletes %zu (grant removals, role deletions and the grants "
                "they take), more than max_deletes %u; nothing was written (--force-deletes "
                "applies it)\n",
                p->deletions, job->max_deletes);
        log_error(job->name,
                  "undo refused, nothing was written deletions=%zu max_deletes=%u undo_of=%s",
                  p->deletions, job->max_deletes, u->cyc->cycle);
        fflush(out);
        return 4;
    }
    fflush(out);
    if (dry_run)
        return cli_dry_run && p->nsteps > 0 ? 2 : 0;

    char err[512];
    journal_new_cycle(u->cycle);
    u->jn = journal_open(u->cfg->state_dir, u->cfg->journal_max_size, u->cfg->journal_keep, err,
                         sizeof err);
    if (!u->jn)
        log_warning(job->name, "the undo is not journaled, it cannot be undone error=%s",
                    log_quote(q, sizeof q, err));
    log_info(job->name, "undo started cycle=%s undo_of=%s target=%s steps=%zu skipped=%zu",
             u->cycle, u->cyc->cycle, u->tgt.cfg->name, p->nsteps, p->nskips);
    u->new_ids = xcalloc(p->nsteps + 1, sizeof(char *));
    apply_next(u);
    run_loop(loop, &u->done);
    if (!u->done) {
        log_error(job->name, "undo did not complete");
        u->failed_ops++;
    }
    if (u->jn && journal_sync(u->jn, err, sizeof err) != 0)
        log_warning(job->name, "journal not synced error=%s", log_quote(q, sizeof q, err));
    journal_close(u->jn);
    u->jn = NULL;
    const char *result =
        u->failed_ops == 0                                                               ? "ok"
        : u->roles_created + u->roles_updated + u->roles_deleted + u->added + u->removed ? "partial"
                                                                                         : "failed";
    log_info(job->name,
             "undo finished result=%s cycle=%s undo_of=%s roles_created=%zu roles_updated=%zu "
             "roles_deleted=%zu assignments_added=%zu assignments_removed=%zu skipped=%zu "
             "failed_ops=%zu",
             result, u->cycle, u->cyc->cycle, u->roles_created, u->roles_updated, u->roles_deleted,
             u->added, u->removed, p->nskips, u->failed_ops);
    fprintf(out, "undo cycle %s\n", u->cycle);
    fflush(out);
    return u->failed_ops ? 3 : 0;
}

int undo_run(const struct cfg_config *cfg, const char *cycle, bool dry_run, bool force_deletes,
             FILE *out)
{
    struct undo_cycle cyc;
    char err[512];
    size_t skipped = 0;
    int rc = undo_load(cfg->state_dir, cycle, &cyc, &skipped, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "rolesyncd: cannot read the journal: %s\n", err);
        return 1;
    }
    if (skipped)
        log_warning(NULL, "journal lines skipped, not readable lines=%zu", skipped);
    if (rc == 1) {
        fprintf(stderr, "rolesyncd: no cycle \"%s\" in the journal of %s (--history lists them)\n",
                cycle, cfg->state_dir);
        return 1;
    }
    const struct cfg_job *job = find_job(cfg, cyc.job);
    if (!job) {
        fprintf(stderr, "rolesyncd: cycle %s is of job \"%s\", which %s no longer has\n", cycle,
                cyc.job, cfg->file);
        undo_cycle_free(&cyc);
        return 1;
    }
    if (strcmp(job->target->name, cyc.target) != 0) {
        fprintf(stderr,
                "rolesyncd: cycle %s wrote to tenant \"%s\", but job \"%s\" now targets \"%s\"\n",
                cycle, cyc.target, job->name, job->target->name);
        undo_cycle_free(&cyc);
        return 1;
    }
    if (cyc.nitems == 0) {
        fprintf(out, "undo %s of job %s: nothing to undo (%zu changes had failed)\n", cycle,
                job->name, cyc.failed);
        undo_cycle_free(&cyc);
        return 0;
    }

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "rolesyncd: cannot create the event loop\n");
        undo_cycle_free(&cyc);
        return 1;
    }
    struct http_engine *engine = http_engine_new(&loop, NULL, err, sizeof err);
    struct tnt_set *tenants =
        engine ? tnt_set_new(&loop, engine, cfg, NULL, err, sizeof err) : NULL;
    int code = 1;
    if (!tenants) {
        fprintf(stderr, "rolesyncd: %s\n", err);
    } else {
        struct urun u = {.cfg = cfg, .job = job, .cyc = &cyc};
        /* created-roles.json is the running daemon's while one runs (once.c's rule) */
        char rerr[512];
        u.recent = recent_open(status_file_owner(cfg->state_dir) ? NULL : cfg->state_dir, rerr,
                               sizeof rerr);
        if (rerr[0]) {
            char q[600];
            log_warning(NULL, "created roles not remembered error=%s",
                        log_quote(q, sizeof q, rerr));
        }
        u.tgt = *tnt_find(tenants, job->target);
        u.ops = prov_for_api(job->target->api);
        log_info(job->name, "undo reading target=%s undo_of=%s changes=%zu", job->target->name,
                 cycle, cyc.nitems);
        struct prov_fetch_opts fo = {.roles_read = on_roles_read, .roles_read_arg = &u};
        u.ops->fetch(&u.tgt, &fo, on_read, &u);
        run_loop(&loop, &u.read_done);
        if (u.snap)
            code = undo_apply(&u, &loop, dry_run || job->dry_run, dry_run, force_deletes, out);
        else if (!u.read_done)
            log_error(job->name, "read did not complete");
        urun_free(&u);
        recent_free(u.recent);
    }
    tnt_set_free(tenants);
    if (engine)
        http_engine_close(engine);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_warning(NULL, "event loop closed with handles still open");
    undo_cycle_free(&cyc);
    return code;
}
