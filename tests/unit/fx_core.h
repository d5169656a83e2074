/* fx_core.h — fixtures of the pure core's tests (test_diff, test_plan): snapshots and jobs
 * built from compact strings. Header-only (static functions): one executable per test file.
 * Include after cmocka.h. */
#ifndef ROLESYNC_TEST_FX_CORE_H
#define ROLESYNC_TEST_FX_CORE_H

#include <stdlib.h>
#include <string.h>

#include "fx_platform.h"
#include "rolesync/config.h"
#include "rolesync/model.h"

/* ---- snapshots and jobs from compact strings --------
 * roles: "id|name|key|description|def_canon;..."   key "" = custom, "!" = foreign custom
 * users: "id|email|state|Role,Role|username|external_key;..."  state a|i|d, roles by name */

static char *fx_field(char **p, char sep)
{
    char *s = *p;
    if (!s)
        return NULL;
    char *e = strchr(s, sep);
    if (e) {
        *e = 0;
        *p = e + 1;
    } else {
        *p = NULL;
    }
    return s;
}

static const char *fx_nz(const char *s)
{
    return s && *s ? s : NULL;
}

/* A snapshot from compact strings (see the format above). `divs` NULL: an undivided tenant;
 * else its divisions "id|name;..." (the first is home; id "*" is the all-divisions grant), and
 * a user's role entry "Name@Division" grants it there (default: home), a trailing "^" makes
 * the grant inherited. Roles may carry two more fields: uncopyable reason, other holders. */
static struct mdl_snapshot *fx_snap_div(enum cfg_api api, const char *divs, const char *roles,
                                        const char *users)
{
    struct mdl_snapshot *s = fx_snapshot_new(api);
    if (divs) {
        s->divided = true;
        char *dbuf = strdup(divs), *dp = dbuf;
        bool first = true;
        while (dp && *dp) {
            char *item = fx_field(&dp, ';'), *ip = item;
            const char *id = fx_field(&ip, '|'), *name = fx_field(&ip, '|');
            if (first)
                mdl_set_home(s, id, name);
            else
                mdl_add_qual(
                    s, &(struct mdl_qual){.id = id, .name = name, .all = strcmp(id, "*") == 0});
            first = false;
        }
        free(dbuf);
    }
    char *rbuf = strdup(roles ? roles : ""), *rp = rbuf;
    while (rp && *rp) {
        char *item = fx_field(&rp, ';'), *ip = item;
        const char *id = fx_field(&ip, '|'), *name = fx_field(&ip, '|');
        const char *key = fx_field(&ip, '|'), *desc = fx_field(&ip, '|');
        const char *def = fx_field(&ip, '|'), *unc = fx_field(&ip, '|');
        const char *other = fx_field(&ip, '|');
        struct mdl_role r = {.id = id,
                             .name = name,
                             .description = fx_nz(desc),
                             .def_canon = fx_nz(def),
                             .uncopyable = fx_nz(unc),
                             .other_holders = other ? (uint32_t)atoi(other) : 0};
        if (key && strcmp(key, "!") == 0)
            r.foreign = true;
        else
            r.builtin_key = fx_nz(key);
        fx_mark_role(api, &r);
        mdl_add_role(s, &r);
    }
    free(rbuf);
    char *ubuf = strdup(users ? users : ""), *up = ubuf;
    while (up && *up) {
        char *item = fx_field(&up, ';'), *ip = item;
        const char *id = fx_field(&ip, '|'), *email = fx_field(&ip, '|');
        const char *st = fx_field(&ip, '|');
        char *rl = fx_field(&ip, '|');
        const char *un = fx_field(&ip, '|'), *ext = fx_field(&ip, '|');
        struct mdl_user u = {
            .id = id, .email = fx_nz(email), .username = fx_nz(un), .external_key = fx_nz(ext)};
        u.state = st && *st == 'd'   ? MDL_USER_DELETED
                  : st && *st == 'i' ? MDL_USER_INACTIVE
                                     : MDL_USER_ACTIVE;
        uint32_t ui = mdl_add_user(s, &u);
        while (rl && *rl) {
            char *rn = fx_field(&rl, ',');
            unsigned flags = 0;
            size_t rlen = strlen(rn);
            if (rlen && rn[rlen - 1] == '^') {
                rn[rlen - 1] = '\0';
                flags = MDL_GRANT_INHERITED;
            }
            uint32_t q = 0;
            char *at = strchr(rn, '@');
            if (at) {
                *at = '\0';
                for (q = 0; q < s->nquals; q++)
                    if ((s->quals[q].name && strcmp(s->quals[q].name, at + 1) == 0) ||
                        (s->quals[q].all && strcmp(at + 1, "*") == 0))
                        break;
                if (q == s->nquals)
                    print_error("no division %s\n", at + 1);
                assert_true(q < s->nquals);
            }
            size_t k;
            for (k = 0; k < s->nroles; k++)
                if (strcmp(s->roles[k].name, rn) == 0)
                    break;
            if (k == s->nroles)
                print_error("no role %s\n", rn);
            assert_true(k < s->nroles);
            mdl_user_add_grant(s, ui, (uint32_t)k, q, flags);
        }
    }
    free(ubuf);
    char err[128];
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    return s;
}

static struct mdl_snapshot *fx_snap(enum cfg_api api, const char *roles, const char *users)
{
    return fx_snap_div(api, NULL, roles, users);
}

struct jspec {
    const char *inc, *exc, *rename, *uinc, *uexc; /* comma-separated; NULL = default */
    const char *dinc, *dexc, *drename;            /* divisions, the same way */
    bool defs, prune;
    enum cfg_assignments asg;
    enum cfg_match_by mb;
    int maxdel; /* 0 = default 50, -1 = zero */
};

static void fx_list(struct cfg_strlist *l, const char *spec, const char *dflt)
{
    const char *s = spec ? spec : dflt;
    l->v = NULL;
    l->n = 0;
    if (!s || !*s)
        return;
    char *buf = strdup(s), *p = buf;
    while (p) {
        char *f = fx_field(&p, ',');
        l->v = realloc(l->v, (l->n + 1) * sizeof(char *));
        l->v[l->n++] = strdup(f);
    }
    free(buf);
}

/* "A=B,C=D" -> renames */
static void fx_renames(const char *spec, struct cfg_rename **out, size_t *n)
{
    struct cfg_strlist rn;
    fx_list(&rn, spec, "");
    *out = calloc(rn.n + 1, sizeof(**out));
    for (size_t i = 0; i < rn.n; i++) {
        char *eq = strchr(rn.v[i], '=');
        assert_non_null(eq);
        *eq = 0;
        (*out)[i].from = strdup(rn.v[i]);
        (*out)[i].to = strdup(eq + 1);
        free(rn.v[i]);
    }
    *n = rn.n;
    free(rn.v);
}

static void fx_job(struct cfg_job *j, const struct jspec *js)
{
    memset(j, 0, sizeof(*j));
    j->name = strdup("j");
    fx_list(&j->roles_include, js->inc, "*");
    fx_list(&j->roles_exclude, js->exc, "");
    fx_list(&j->users_include, js->uinc, "*");
    fx_list(&j->users_exclude, js->uexc, "");
    fx_list(&j->divisions_include, js->dinc, "*");
    fx_list(&j->divisions_exclude, js->dexc, "");
    fx_renames(js->drename, &j->division_rename, &j->ndivision_rename);
    fx_renames(js->rename, &j->rename, &j->nrename);
    j->definitions = js->defs;
    j->prune = js->prune;
    j->assignments = js->asg;
    j->match_by = js->mb;
    j->max_deletes = js->maxdel == 0 ? 50 : js->maxdel < 0 ? 0 : (unsigned)js->maxdel;
}

static void fx_list_free(struct cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static void fx_job_free(struct cfg_job *j)
{
    free(j->name);
    fx_list_free(&j->roles_include);
    fx_list_free(&j->roles_exclude);
    fx_list_free(&j->users_include);
    fx_list_free(&j->users_exclude);
    for (size_t i = 0; i < j->nrename; i++) {
        free(j->rename[i].from);
        free(j->rename[i].to);
    }
    free(j->rename);
    fx_list_free(&j->divisions_include);
    fx_list_free(&j->divisions_exclude);
    for (size_t i = 0; i < j->ndivision_rename; i++) {
        free(j->division_rename[i].from);
        free(j->division_rename[i].to);
    }
    free(j->division_rename);
}

/* Genesys built-ins every org has. */
#define G_BUILTINS "ge|Employee|employee||pe;ga|Master Admin|admin||pa"
#define I_BUILTINS                                                                                 \
    "im|Tenant Member|7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977||;"                                     \
    "ia|Tenant Administrator|2dc742ab-39ea-4fc0-a39e-2bcb71c26a5f||;"                              \
    "iv|Tenant Viewer|e6cbf91e-0be8-4858-92b5-f88ecafd5574||"

#define G CFG_API_GENESYS
#define I CFG_API_IDENTITY

#endif
