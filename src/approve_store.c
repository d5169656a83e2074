/* approve_store.c — refused deletion sets and approvals in state_dir (the I/O part of
 * approve.h; every file is replaced atomically, never written in place). */
#include "rolesync/approve.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rolesync/http.h"
#include "rolesync/status.h"
#include "rolesync/util.h"

#define APPROVE_MAX_FILE (16u << 20) /* a refused plan of many thousand deletions fits */
#define APPROVE_FILE_MODE 0640

/* {state_dir}/SUB/JOB.json, the job name percent-encoded (a fan-out job's '/' included) and a
 * leading '.' too, so no name can reach outside SUB or hide a file. Caller frees. */
static char *job_path(const char *state_dir, const char *sub, const char *job)
{
    char *enc = util_pct_encode(job);
    char *path = xasprintf("%s/%s/%s%s.json", state_dir, sub, enc[0] == '.' ? "%2E" : "",
                           enc[0] == '.' ? enc + 1 : enc);
    free(enc);
    return path;
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static struct json_object *jarr(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array) ? v
                                                                                            : NULL;
}

/* Parse a state file: NULL with err "" when it does not exist, NULL with err set when it is
 * unreadable or not a JSON object. */
static struct json_object *read_json(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *buf = util_read_file(path, APPROVE_MAX_FILE, &len, err, errlen);
    if (!buf)
        return NULL;
    char perr[128];
    struct json_object *root = http_parse_json(buf, len, perr, sizeof perr);
    free(buf);
    if (!root || !json_object_is_type(root, json_type_object)) {
        snprintf(err, errlen, "%s is damaged (%s); ignored", path, root ? "not an object" : perr);
        json_object_put(root);
        return NULL;
    }
    return root;
}

/* Write `root` (consumed) to {state_dir}/SUB/JOB.json atomically, creating SUB. */
static int write_json(const char *state_dir, const char *sub, const char *job,
                      struct json_object *root, char *err, size_t errlen)
{
    char *dir = xasprintf("%s/%s", state_dir, sub);
    int rc = status_ensure_dir(dir, err, errlen);
    free(dir);
    if (rc == 0) {
        char *path = job_path(state_dir, sub, job);
        const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
        rc = status_write_file_atomic(path, text, strlen(text), APPROVE_FILE_MODE, err, errlen);
        free(path);
    }
    json_object_put(root);
    return rc;
}

static struct json_object *set_json(struct approve_set *s)
{
    struct json_object *a = json_object_new_array();
    approve_set_finish(s);
    for (size_t i = 0; i < s->n; i++) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "key", json_object_new_string(s->items[i].key));
        json_object_object_add(o, "label", json_object_new_string(s->items[i].label));
        json_object_array_add(a, o);
    }
    return a;
}

int approve_store_refused(const char *state_dir, const char *job, struct approve_set *s,
                          const char *fp, int64_t now_ms, char *err, size_t errlen)
{
    char *path = job_path(state_dir, "refused", job), rerr[512], at[32];
    struct json_object *old = read_json(path, rerr, sizeof rerr);
    free(path);
    struct json_object *root = json_object_new_object(), *list = json_object_new_array();
    json_object_object_add(root, "version", json_object_new_int(1));
    json_object_object_add(root, "job", json_object_new_string(job));
    /* keep the older refusals (a damaged file is replaced), the one being added last */
    struct json_object *prev = old ? jarr(old, "refusals") : NULL;
    size_t n = prev ? json_object_array_length(prev) : 0, keep = 0;
    for (size_t i = 0; i < n; i++) {
        const char *f = jstr(json_object_array_get_idx(prev, i), "fingerprint");
        keep += f && strcmp(f, fp) != 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(prev, i);
        const char *f = jstr(e, "fingerprint");
        if (!f || strcmp(f, fp) == 0)
            continue;
        if (keep-- >= APPROVE_KEEP) /* the oldest go first */
            continue;
        json_object_array_add(list, json_object_get(e));
    }
    json_object_put(old);
    struct json_object *e = json_object_new_object();
    json_object_object_add(e, "fingerprint", json_object_new_string(fp));
    json_object_object_add(e, "at", json_object_new_string(util_rfc3339(at, sizeof at, now_ms)));
    json_object_object_add(e, "deletions", set_json(s));
    json_object_array_add(list, e);
    json_object_object_add(root, "refusals", list);
    return write_json(state_dir, "refused", job, root, err, errlen);
}

struct approve_set *approve_load_refused(const char *state_dir, const char *job, const char *fp,
                                         char *err, size_t errlen)
{
    char *path = job_path(state_dir, "refused", job);
    struct json_object *root = read_json(path, err, errlen);
    struct json_object *list = root ? jarr(root, "refusals") : NULL;
    struct approve_set *found = NULL;
    for (size_t i = 0; list && i < json_object_array_length(list) && !found; i++) {
        struct json_object *e = json_object_array_get_idx(list, i);
        const char *f = jstr(e, "fingerprint");
        struct json_object *dels = jarr(e, "deletions");
        if (!f || strcmp(f, fp) != 0 || !dels)
            continue;
        struct approve_set *s = approve_set_new();
        for (size_t k = 0; k < json_object_array_length(dels); k++) {
            struct json_object *d = json_object_array_get_idx(dels, k);
            if (jstr(d, "key"))
                approve_set_add_key(s, jstr(d, "key"), jstr(d, "label"));
        }
        /* an approval only ever widens to what was reviewed: the set must be the one the
         * fingerprint names */
        char check[APPROVE_FP_LEN];
        approve_fingerprint(s, check);
        if (strcmp(check, fp) == 0) {
            found = s;
        } else {
            snprintf(err, errlen, "%s: the deletions recorded for %s do not match it; ignored",
                     path, fp);
            approve_set_free(s);
        }
    }
    json_object_put(root);
    free(path);
    return found;
}

int approve_record(const char *state_dir, const char *job, const char *fp, int64_t now_ms,
                   char *err, size_t errlen)
{
    char at[32];
    struct json_object *root = json_object_new_object();
    json_object_object_add(root, "version", json_object_new_int(1));
    json_object_object_add(root, "job", json_object_new_string(job));
    json_object_object_add(root, "fingerprint", json_object_new_string(fp));
    json_object_object_add(root, "approved_at",
                           json_object_new_string(util_rfc3339(at, sizeof at, now_ms)));
    return write_json(state_dir, "approvals", job, root, err, errlen);
}

int approve_pending(const char *state_dir, const char *job, char fp[APPROVE_FP_LEN], char *err,
                    size_t errlen)
{
    char *path = job_path(state_dir, "approvals", job);
    struct json_object *root = read_json(path, err, errlen);
    int rc = 0;
    if (root) {
        if (approve_fingerprint_parse(jstr(root, "fingerprint"), fp)) {
            rc = 1;
        } else {
            snprintf(err, errlen, "%s names no fingerprint; ignored", path);
            rc = -1;
        }
    } else if (err[0]) {
        rc = -1;
    }
    json_object_put(root);
    free(path);
    return rc;
}

int approve_consume(const char *state_dir, const char *job, const char *fp, char *err,
                    size_t errlen)
{
    char cur[APPROVE_FP_LEN];
    int rc = approve_pending(state_dir, job, cur, err, errlen);
    if (rc == 0 || (rc == 1 && strcmp(cur, fp) != 0))
        return 0;
    /* the one used, or a damaged file (which can never be used) */
    char *path = job_path(state_dir, "approvals", job);
    rc = 0;
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
        rc = -1;
    }
    free(path);
    return rc;
}
