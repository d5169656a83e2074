/* recent.c — the roles created lately, in memory and in state_dir (contract in recent.h). */
#include "rolesync/recent.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/http.h"
#include "rolesync/status.h"
#include "rolesync/util.h"

#define RECENT_MAX_FILE (4u << 20) /* bounds a hostile or damaged file */

struct recent_roles {
    char *path; /* NULL: memory only */
    struct recent_entry **v;
    size_t n, cap;
    struct recent_entry **view; /* recent_for's answer */
    size_t view_cap;
};

static void entry_free(struct recent_entry *e)
{
    if (!e)
        return;
    free(e->tenant);
    free(e->id);
    free(e->name);
    free(e->description);
    free(e->definition);
    free(e);
}

char *recent_tenant_key(const char *name, const char *base_url)
{
    return xasprintf("%s %s", name ? name : "", base_url ? base_url : "");
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static void load(struct recent_roles *r, char *err, size_t errlen)
{
    size_t len;
    char *buf = util_read_file(r->path, RECENT_MAX_FILE, &len, err, errlen);
    if (!buf)
        return; /* missing: nothing remembered; else err says why */
    char perr[128];
    struct json_object *root = http_parse_json(buf, len, perr, sizeof perr), *roles;
    free(buf);
    if (!root || !json_object_object_get_ex(root, "roles", &roles) ||
        !json_object_is_type(roles, json_type_array)) {
        snprintf(err, errlen, "%s is not a list of created roles (%s); ignored", r->path,
                 root ? "no \"roles\" list" : perr);
        json_object_put(root);
        return;
    }
    for (size_t i = 0; i < json_object_array_length(roles); i++) {
        struct json_object *e = json_object_array_get_idx(roles, i), *at;
        const char *t = jstr(e, "tenant"), *id = jstr(e, "id"), *name = jstr(e, "name");
        if (!t || !id || !name || !json_object_object_get_ex(e, "created_ms", &at) ||
            !json_object_is_type(at, json_type_int))
            continue; /* a damaged entry: it only loses its protection */
        struct recent_entry *x = xcalloc(1, sizeof(*x));
        x->tenant = xstrdup(t);
        x->id = xstrdup(id);
        x->name = xstrdup(name);
        x->description = jstr(e, "description") ? xstrdup(jstr(e, "description")) : NULL;
        x->definition = jstr(e, "definition") ? xstrdup(jstr(e, "definition")) : NULL;
        x->created_ms = json_object_get_int64(at);
        util_grow((void **)&r->v, &r->cap, r->n + 1, sizeof(*r->v));
        r->v[r->n++] = x;
    }
    json_object_put(root);
}

struct recent_roles *recent_open(const char *state_dir, char *err, size_t errlen)
{
    struct recent_roles *r = xcalloc(1, sizeof(*r));
    if (errlen)
        err[0] = '\0';
    if (state_dir) {
        r->path = xasprintf("%s/%s", state_dir, RECENT_FILE);
        load(r, err, errlen);
    }
    return r;
}

void recent_free(struct recent_roles *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        entry_free(r->v[i]);
    free(r->v);
    free(r->view);
    free(r->path);
    free(r);
}

void recent_detach(struct recent_roles *r)
{
    free(r->path);
    r->path = NULL;
}

static int save(struct recent_roles *r, char *err, size_t errlen)
{
    if (!r->path)
        return 0;
    struct json_object *root = json_object_new_object(), *roles = json_object_new_array();
    json_object_object_add(root, "version", json_object_new_int(1));
    for (size_t i = 0; i < r->n; i++) {
        const struct recent_entry *e = r->v[i];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "tenant", json_object_new_string(e->tenant));
        json_object_object_add(o, "id", json_object_new_string(e->id));
        json_object_object_add(o, "name", json_object_new_string(e->name));
        if (e->description)
            json_object_object_add(o, "description", json_object_new_string(e->description));
        if (e->definition)
            json_object_object_add(o, "definition", json_object_new_string(e->definition));
        json_object_object_add(o, "created_ms", json_object_new_int64(e->created_ms));
        json_object_array_add(roles, o);
    }
    json_object_object_add(root, "roles", roles);
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    int rc = status_write_file_atomic(r->path, text, strlen(text), 0640, err, errlen);
    json_object_put(root);
    return rc;
}

static bool drop_if(struct recent_roles *r, bool (*pred)(const struct recent_entry *, const void *),
                    const void *arg)
{
    size_t w = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (pred(r->v[i], arg))
            entry_free(r->v[i]);
        else
            r->v[w++] = r->v[i];
    }
    bool changed = w != r->n;
    r->n = w;
    return changed;
}

static bool expired(const struct recent_entry *e, const void *now)
{
    int64_t t = *(const int64_t *)now;
    /* a clock set back makes an entry look new: it expires RECENT_TTL_MS after that */
    return t - e->created_ms > (int64_t)RECENT_TTL_MS;
}

int recent_note(struct recent_roles *r, const char *tenant, const char *id, const char *name,
                const char *description, const char *definition, int64_t now_ms, char *err,
                size_t errlen)
{
    drop_if(r, expired, &now_ms);
    struct recent_entry *x = xcalloc(1, sizeof(*x));
    x->tenant = xstrdup(tenant);
    x->id = xstrdup(id);
    x->name = xstrdup(name);
    x->description = description ? xstrdup(description) : NULL;
    x->definition = definition ? xstrdup(definition) : NULL;
    x->created_ms = now_ms;
    util_grow((void **)&r->v, &r->cap, r->n + 1, sizeof(*r->v));
    r->v[r->n++] = x;
    return save(r, err, errlen);
}

const struct recent_entry *const *recent_for(struct recent_roles *r, const char *tenant,
                                             int64_t now_ms, size_t *n)
{
    if (drop_if(r, expired, &now_ms)) {
        char err[256];
        (void)save(r, err, sizeof err); /* best effort: the next note saves again */
    }
    util_grow((void **)&r->view, &r->view_cap, r->n + 1, sizeof(*r->view));
    *n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i]->tenant, tenant) == 0)
            r->view[(*n)++] = r->v[i];
    return (const struct recent_entry *const *)r->view;
}

struct seen_arg {
    const char *tenant, *id;
};

static bool is_seen(const struct recent_entry *e, const void *arg)
{
    const struct seen_arg *a = arg;
    return strcmp(e->tenant, a->tenant) == 0 && strcmp(e->id, a->id) == 0;
}

void recent_seen(struct recent_roles *r, const char *tenant, const char *id)
{
    struct seen_arg a = {tenant, id};
    if (drop_if(r, is_seen, &a)) {
        char err[256];
        (void)save(r, err, sizeof err);
    }
}

size_t recent_inject(struct recent_roles *r, const char *tenant, struct mdl_snapshot *s,
                     int64_t now_ms)
{
    size_t n, added = 0;
    const struct recent_entry *const *v = recent_for(r, tenant, now_ms, &n);
    /* copy the ids first: recent_seen changes the store under the view */
    char **seen = xcalloc(n + 1, sizeof(char *));
    size_t nseen = 0;
    for (size_t i = 0; i < n; i++) {
        bool listed = false, name_taken = false;
        for (size_t k = 0; k < s->nroles && !listed; k++) {
            listed = strcmp(s->roles[k].id, v[i]->id) == 0;
            name_taken = name_taken || util_fold_cmp(s->roles[k].name, v[i]->name) == 0;
        }
        if (listed) {
            seen[nseen++] = xstrdup(v[i]->id);
            continue;
        }
        if (name_taken)
            continue; /* another role holds the name now: the diff judges it as it is */
        mdl_add_role(s, &(struct mdl_role){.id = v[i]->id,
                                           .name = v[i]->name,
                                           .description = v[i]->description,
                                           .def_canon = v[i]->definition,
                                           .def_json = v[i]->definition,
                                           .recent = true});
        added++;
    }
    for (size_t i = 0; i < nseen; i++) {
        recent_seen(r, tenant, seen[i]);
        free(seen[i]);
    }
    free(seen);
    return added;
}
