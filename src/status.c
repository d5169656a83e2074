/* status.c — status model, atomic status.json, and the `--status` printer for humans. */
#include "rolesync/status.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rolesync/log.h"
#include "rolesync/util.h"

/* ---------------------------------------------------------------------------------------------
 * Model
 */

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if the bytes there are not one
 * (overlong forms and surrogates included). */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* Copy text that may come from a server: invalid UTF-8 bytes become '?' (the status file must
 * stay valid JSON for any reader), so do control characters other than a newline where
 * `newlines` allows it (`--status` prints these strings on a terminal), and anything past `max`
 * bytes is cut at a character boundary and marked with "...", so one HTML error page cannot
 * bloat the file. */
static char *copy_text_nl(const char *s, size_t max, bool newlines)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    char *out = xmalloc((len < max ? len : max) + 4), *o = out;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq(p);
        if ((size_t)(o - out) + (n ? n : 1) > max) {
            memcpy(o, "...", 3);
            o += 3;
            break;
        }
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f) && !(newlines && *p == '\n'))) {
            *o++ = '?';
            p++;
        } else {
            memcpy(o, p, n);
            o += n;
            p += n;
        }
    }
    *o = '\0';
    return out;
}

static char *copy_text(const char *s, size_t max)
{
    return copy_text_nl(s, max, false);
}

#define TEXT_MAX 1024          /* one error message, path, reason */
#define RELOAD_ERROR_MAX 16384 /* every error of a config file */

/* The config path as the status shows it: absolute when it resolves (a relative -c path means
 * nothing to a reader in another directory), else as given. */
static char *config_path_copy(const char *path)
{
    char *abs = path ? realpath(path, NULL) : NULL;
    return abs ? abs : xstrdup(path);
}

void status_init(struct status *st, const char *version, const char *config_file, int64_t now_ms)
{
    memset(st, 0, sizeof *st);
    st->pid = getpid();
    st->version = xstrdup(version);
    st->started_at_ms = now_ms;
    st->config_file = config_path_copy(config_file);
    st->config_loaded_at_ms = now_ms;
    st->last_reload_ok = true;
}

static void run_clear(struct status_run *run)
{
    for (size_t i = 0; i < run->nerrors; i++) {
        struct status_error *e = &run->errors[i];
        free(e->op);
        free(e->method);
        free(e->path);
        free(e->message);
        free(e->correlation_id);
    }
    for (size_t i = 0; i < run->n_not_converging; i++) {
        free(run->not_converging[i].kind);
        free(run->not_converging[i].name);
        free(run->not_converging[i].reason);
    }
    free(run->not_converging);
    memset(run, 0, sizeof *run);
}

static void job_free(struct status_job *job)
{
    if (!job)
        return;
    run_clear(&job->current);
    run_clear(&job->last_run);
    free(job->name);
    free(job->reason);
    free(job->holder);
    free(job);
}

void status_free(struct status *st)
{
    for (size_t i = 0; i < st->njobs; i++)
        job_free(st->jobs[i]);
    free(st->jobs);
    free(st->version);
    free(st->config_file);
    free(st->last_reload_error);
    free(st->coord_backend);
    free(st->coord_member);
    memset(st, 0, sizeof *st);
}

void status_reload_done(struct status *st, int64_t at_ms, bool ok, const char *config_file,
                        const char *error)
{
    st->last_reload_at_ms = at_ms;
    st->last_reload_ok = ok;
    free(st->last_reload_error);
    st->last_reload_error = NULL;
    if (ok) {
        if (config_file) {
            char *f = config_path_copy(config_file);
            free(st->config_file);
            st->config_file = f;
        }
        st->config_loaded_at_ms = at_ms;
    } else {
        st->last_reload_error =
            copy_text_nl(error ? error : "reload failed", RELOAD_ERROR_MAX, true);
    }
}

struct status_job *status_job_find(const struct status *st, const char *name)
{
    for (size_t i = 0; i < st->njobs; i++)
        if (strcmp(st->jobs[i]->name, name) == 0)
            return st->jobs[i];
    return NULL;
}

struct status_job *status_job_add(struct status *st, const char *name)
{
    struct status_job *job = status_job_find(st, name);
    if (job)
        return job;
    job = xcalloc(1, sizeof *job);
    job->name = xstrdup(name);
    job->state = STATUS_JOB_IDLE;
    util_grow((void **)&st->jobs, &st->cap_jobs, st->njobs + 1, sizeof *st->jobs);
    st->jobs[st->njobs++] = job;
    return job;
}

void status_job_remove(struct status *st, const char *name)
{
    for (size_t i = 0; i < st->njobs; i++) {
        if (strcmp(st->jobs[i]->name, name) == 0) {
            job_free(st->jobs[i]);
            memmove(&st->jobs[i], &st->jobs[i + 1], (st->njobs - i - 1) * sizeof *st->jobs);
            st->njobs--;
            return;
        }
    }
}

void status_jobs_sync(struct status *st, const char *const *names, size_t n)
{
    struct status_job **next = xcalloc(n, sizeof *next);
    size_t nnext = 0;

    /* Take existing jobs out of the old list as they are claimed, so what is left is exactly
     * the removed jobs (and a name listed twice gets one job). */
    for (size_t i = 0; i < n; i++) {
        struct status_job *job = NULL;
        for (size_t k = 0; k < st->njobs; k++) {
            if (st->jobs[k] && strcmp(st->jobs[k]->name, names[i]) == 0) {
                job = st->jobs[k];
                st->jobs[k] = NULL;
                break;
            }
        }
        if (!job) {
            int dup = 0;
            for (size_t k = 0; k < nnext; k++)
                dup |= strcmp(next[k]->name, names[i]) == 0;
            if (dup)
                continue;
            job = xcalloc(1, sizeof *job);
            job->name = xstrdup(names[i]);
        }
        next[nnext++] = job;
    }
    for (size_t k = 0; k < st->njobs; k++)
        job_free(st->jobs[k]);
    free(st->jobs);
    st->jobs = next;
    st->njobs = nnext;
    st->cap_jobs = n;
}

struct status_run *status_job_run_begin(struct status_job *job, int64_t now_ms, bool dry_run)
{
    run_clear(&job->current);
    job->current.started_at_ms = now_ms;
    job->current.dry_run = dry_run;
    job->running = true;
    job->state = STATUS_JOB_RUNNING;
    return &job->current;
}

static void changes_add(struct status_changes *to, const struct status_changes *c)
{
    to->roles_created += c->roles_created;
    to->roles_updated += c->roles_updated;
    to->roles_deleted += c->roles_deleted;
    to->assignments_added += c->assignments_added;
    to->assignments_removed += c->assignments_removed;
}

void status_job_run_end(struct status_job *job, int64_t now_ms, enum status_result result)
{
    struct status_run *run = &job->current;

    run->finished_at_ms = now_ms;
    run->result = result;
    if (!run->dry_run && result != STATUS_RESULT_DRY_RUN)
        changes_add(&job->changes_total, &run->changes);
    if ((unsigned)result < STATUS_RESULT_COUNT)
        job->runs_total[result]++;

    switch (result) {
    case STATUS_RESULT_OK:
    case STATUS_RESULT_DRY_RUN:
        job->state = STATUS_JOB_IDLE;
        job->in_sync = run->pending == 0;
        if (!job->in_sync)
            job->in_sync_since_ms = 0;
        else if (job->in_sync_since_ms == 0)
            job->in_sync_since_ms = run->started_at_ms ? run->started_at_ms : now_ms;
        job->last_success_at_ms = now_ms;
        job->consecutive_failures = 0;
        break;
    case STATUS_RESULT_REFUSED:
        job->state = STATUS_JOB_REFUSED;
        job->in_sync = false;
        job->in_sync_since_ms = 0;
        break;
    default:
        job->state = STATUS_JOB_WAITING_RETRY;
        job->in_sync = false;
        job->in_sync_since_ms = 0;
        job->consecutive_failures++;
        break;
    }
    free(job->reason);
    job->reason = NULL;

    /* Move the finished run into last_run; `current` is left empty for the next one. */
    run_clear(&job->last_run);
    job->last_run = *run;
    memset(run, 0, sizeof *run);
    job->has_last_run = true;
    job->running = false;
}

void status_job_set_state(struct status_job *job, enum status_job_state state, const char *reason)
{
    char *r = copy_text(reason, TEXT_MAX);
    job->state = state;
    free(job->reason);
    job->reason = r;
}

void status_job_set_next_run(struct status_job *job, int64_t at_ms)
{
    job->next_run_at_ms = at_ms;
}

void status_run_add_error(struct status_run *run, const char *op, const char *method,
                          const char *path, int http_status, const char *message,
                          const char *correlation_id)
{
    run->error_count++;
    if (run->nerrors >= STATUS_MAX_ERRORS)
        return;
    struct status_error *e = &run->errors[run->nerrors++];
    e->op = copy_text(op, TEXT_MAX);
    e->method = copy_text(method, TEXT_MAX);
    e->path = copy_text(path, TEXT_MAX);
    e->http_status = http_status;
    e->message = copy_text(message, TEXT_MAX);
    e->correlation_id = copy_text(correlation_id, TEXT_MAX);
}

void status_run_add_not_converging(struct status_run *run, const char *kind, const char *name,
                                   const char *reason)
{
    util_grow((void **)&run->not_converging, &run->cap_not_converging, run->n_not_converging + 1,
              sizeof *run->not_converging);
    struct status_not_converging *nc = &run->not_converging[run->n_not_converging++];
    nc->kind = copy_text(kind, TEXT_MAX);
    nc->name = copy_text(name, TEXT_MAX);
    nc->reason = copy_text(reason, TEXT_MAX);
}

const char *status_job_state_name(enum status_job_state s)
{
    switch (s) {
    case STATUS_JOB_IDLE:
        return "idle";
    case STATUS_JOB_RUNNING:
        return "running";
    case STATUS_JOB_WAITING_RETRY:
        return "waiting_retry";
    case STATUS_JOB_REFUSED:
        return "refused";
    case STATUS_JOB_FAILED:
        return "failed";
    case STATUS_JOB_STANDBY:
        return "standby";
    }
    return "idle";
}

const char *status_result_name(enum status_result r)
{
    switch (r) {
    case STATUS_RESULT_OK:
        return "ok";
    case STATUS_RESULT_PARTIAL:
        return "partial";
    case STATUS_RESULT_FAILED:
        return "failed";
    case STATUS_RESULT_REFUSED:
        return "refused";
    case STATUS_RESULT_DRY_RUN:
        return "dry_run";
    case STATUS_RESULT_COUNT:
        break;
    }
    return "failed";
}

/* ---------------------------------------------------------------------------------------------
 * JSON rendering
 */

static struct json_object *j_time(int64_t ms)
{
    char buf[32];
    if (ms <= 0)
        return NULL; /* json-c renders a NULL member as null */
    return json_object_new_string(util_rfc3339(buf, sizeof buf, ms));
}

static struct json_object *j_str(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static struct json_object *j_u64(uint64_t v)
{
    return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

static struct json_object *render_changes(const struct status_changes *c)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "roles_created", j_u64(c->roles_created));
    json_object_object_add(o, "roles_updated", j_u64(c->roles_updated));
    json_object_object_add(o, "roles_deleted", j_u64(c->roles_deleted));
    json_object_object_add(o, "assignments_added", j_u64(c->assignments_added));
    json_object_object_add(o, "assignments_removed", j_u64(c->assignments_removed));
    return o;
}

static struct json_object *render_run(const struct status_run *r)
{
    struct json_object *o = json_object_new_object();
    struct json_object *um = json_object_new_object();
    struct json_object *nc = json_object_new_array();
    struct json_object *errs = json_object_new_array();

    json_object_object_add(o, "cycle", j_str(r->cycle[0] ? r->cycle : NULL));
    json_object_object_add(o, "started_at", j_time(r->started_at_ms));
    json_object_object_add(o, "finished_at", j_time(r->finished_at_ms));
    json_object_object_add(o, "result", json_object_new_string(status_result_name(r->result)));
    json_object_object_add(o, "dry_run", json_object_new_boolean(r->dry_run));
    json_object_object_add(o, "changes", render_changes(&r->changes));
    json_object_object_add(o, "pending", j_u64(r->pending));
    json_object_object_add(o, "failed_ops", j_u64(r->failed_ops));
    json_object_object_add(o, "requests", j_u64(r->requests));
    json_object_object_add(o, "retries", j_u64(r->retries));
    json_object_object_add(um, "source_only", j_u64(r->unmatched_source_only));
    json_object_object_add(um, "target_only", j_u64(r->unmatched_target_only));
    json_object_object_add(o, "unmatched_users", um);
    for (size_t i = 0; i < r->n_not_converging; i++) {
        struct json_object *e = json_object_new_object();
        json_object_object_add(e, "kind", j_str(r->not_converging[i].kind));
        json_object_object_add(e, "name", j_str(r->not_converging[i].name));
        json_object_object_add(e, "reason", j_str(r->not_converging[i].reason));
        json_object_array_add(nc, e);
    }
    json_object_object_add(o, "not_converging", nc);
    for (size_t i = 0; i < r->nerrors && i < STATUS_MAX_ERRORS; i++) {
        const struct status_error *er = &r->errors[i];
        struct json_object *e = json_object_new_object();
        json_object_object_add(e, "op", j_str(er->op));
        json_object_object_add(e, "method", j_str(er->method));
        json_object_object_add(e, "path", j_str(er->path));
        json_object_object_add(e, "status",
                               er->http_status > 0 ? json_object_new_int(er->http_status) : NULL);
        json_object_object_add(e, "message", j_str(er->message));
        json_object_object_add(e, "correlation_id", j_str(er->correlation_id));
        json_object_array_add(errs, e);
    }
    json_object_object_add(o, "errors", errs);
    struct json_object *ref = NULL;
    if (r->refused) {
        ref = json_object_new_object();
        json_object_object_add(ref, "deletions", j_u64(r->refusal_deletions));
        json_object_object_add(ref, "max_deletes", j_u64(r->refusal_max_deletes));
        json_object_object_add(ref, "fingerprint",
                               j_str(r->refusal_fingerprint[0] ? r->refusal_fingerprint : NULL));
        json_object_object_add(ref, "not_approved", j_u64(r->refusal_not_approved));
    }
    json_object_object_add(o, "refusal", ref);
    json_object_object_add(o, "approved",
                           j_str(r->approved_fingerprint[0] ? r->approved_fingerprint : NULL));
    json_object_object_add(o, "abandoned", j_str(r->abandoned[0] ? r->abandoned : NULL));
    return o;
}

void status_set_coordination(struct status *st, const char *backend, const char *member)
{
    free(st->coord_backend);
    free(st->coord_member);
    st->coord_backend = xstrdup(backend);
    st->coord_member = backend ? copy_text(member, TEXT_MAX) : NULL;
}

void status_job_set_holder(struct status_job *job, bool held, const char *holder)
{
    job->held = held;
    free(job->holder);
    job->holder = holder ? copy_text(holder, TEXT_MAX) : NULL;
}

static struct json_object *render_job(const struct status *st, const struct status_job *job)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "state", json_object_new_string(status_job_state_name(job->state)));
    json_object_object_add(o, "in_sync", json_object_new_boolean(job->in_sync));
    json_object_object_add(o, "in_sync_since", j_time(job->in_sync ? job->in_sync_since_ms : 0));
    json_object_object_add(o, "last_run", job->has_last_run ? render_run(&job->last_run) : NULL);
    json_object_object_add(o, "last_success_at", j_time(job->last_success_at_ms));
    json_object_object_add(o, "consecutive_failures", j_u64(job->consecutive_failures));
    json_object_object_add(o, "next_run_at", j_time(job->next_run_at_ms));
    json_object_object_add(o, "reason", j_str(job->reason));
    if (st->coord_backend)
        json_object_object_add(o, "holder", j_str(job->holder));
    return o;
}

char *status_render_json(const struct status *st)
{
    struct json_object *root = json_object_new_object();
    struct json_object *d = json_object_new_object();
    struct json_object *lr = json_object_new_object();
    struct json_object *jobs = json_object_new_object();

    json_object_object_add(root, "schema_version", json_object_new_int(STATUS_SCHEMA_VERSION));
    json_object_object_add(d, "pid", json_object_new_int64((int64_t)st->pid));
    json_object_object_add(d, "version", j_str(st->version));
    json_object_object_add(d, "started_at", j_time(st->started_at_ms));
    json_object_object_add(d, "config_file", j_str(st->config_file));
    json_object_object_add(d, "config_loaded_at", j_time(st->config_loaded_at_ms));
    json_object_object_add(lr, "at", j_time(st->last_reload_at_ms));
    json_object_object_add(lr, "ok", json_object_new_boolean(st->last_reload_ok));
    json_object_object_add(lr, "error", j_str(st->last_reload_error));
    json_object_object_add(d, "last_reload", lr);
    if (st->coord_backend) {
        struct json_object *c = json_object_new_object(), *h = json_object_new_array();
        json_object_object_add(c, "backend", j_str(st->coord_backend));
        json_object_object_add(c, "member", j_str(st->coord_member));
        for (size_t i = 0; i < st->njobs; i++)
            if (st->jobs[i]->held)
                json_object_array_add(h, j_str(st->jobs[i]->name));
        json_object_object_add(c, "holding", h);
        json_object_object_add(d, "coordination", c);
    }
    json_object_object_add(root, "daemon", d);
    for (size_t i = 0; i < st->njobs; i++)
        json_object_object_add(jobs, st->jobs[i]->name, render_job(st, st->jobs[i]));
    json_object_object_add(root, "jobs", jobs);

    const char *s = json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = xasprintf("%s\n", s);
    json_object_put(root);
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Atomic file replacement
 */

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int status_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                             size_t errlen)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? (slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path)))
                      : xstrdup(".");
    const char *base = slash ? slash + 1 : path;
    /* Same directory as the target, so rename() is atomic; hidden and not ending in the
     * target's suffix, so collectors and readers globbing for it ignore it. */
    char *tmp = xasprintf("%.*s.%s.XXXXXX", (int)(slash ? slash - path + 1 : 0), path, base);
    int fd = -1, dfd = -1, rc = -1, made = 0;

    if (*base == '\0') {
        snprintf(err, errlen, "%s: not a file name", path);
        goto out;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a temporary file in %s: %s", dir, strerror(errno));
        goto out;
    }
    made = 1;
    if (write_all(fd, data, len) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    /* fchmod rather than relying on the umask: the mode is part of the contract. */
    if (fchmod(fd, mode) != 0) {
        snprintf(err, errlen, "cannot chmod %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "cannot fsync %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "cannot close %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    made = 0;
    /* Make the rename itself durable. Some file systems cannot fsync a directory (EINVAL);
     * the new file is in place either way, so only real I/O errors count. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL)) {
        snprintf(err, errlen, "cannot fsync directory %s: %s", dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (made)
        unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

int status_write(const struct status *st, const char *state_dir, char *err, size_t errlen)
{
    char *path = xasprintf("%s/%s", state_dir, STATUS_FILE_NAME);
    char *json = status_render_json(st);
    int rc = status_write_file_atomic(path, json, strlen(json), STATUS_FILE_MODE, err, errlen);

    if (rc != 0) {
        char q[512];
        log_warning(NULL, "cannot write status file error=%s", log_quote(q, sizeof q, err));
    }
    free(json);
    free(path);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * `--status` for humans
 */

static struct json_object *jget(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v = jget(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int64_t jint(struct json_object *o, const char *key)
{
    struct json_object *v = jget(o, key);
    return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

static bool jbool(struct json_object *o, const char *key)
{
    struct json_object *v = jget(o, key);
    return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* "2026-11-22T05:00:07Z" -> epoch seconds; -1 if it does not parse. */
static int64_t parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s)
        return -1;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || *end != 'Z')
        return -1;
    return (int64_t)timegm(&tm);
}

/* A duration like "45s", "4m", "4m7s", "1h5m", "2d3h": the two largest units. */
static const char *fmt_duration(char *buf, size_t n, int64_t secs)
{
    static const struct {
        int64_t len;
        char unit;
    } u[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    if (secs < 0)
        secs = -secs;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(u); i++) {
        if (secs >= u[i].len || i == UTIL_ARRAY_LEN(u) - 1) {
            int64_t a = secs / u[i].len, rest = secs % u[i].len;
            if (i + 1 < UTIL_ARRAY_LEN(u) && rest / u[i + 1].len > 0)
                snprintf(buf, n, "%lld%c%lld%c", (long long)a, u[i].unit,
                         (long long)(rest / u[i + 1].len), u[i + 1].unit);
            else
                snprintf(buf, n, "%lld%c", (long long)a, u[i].unit);
            break;
        }
    }
    return buf;
}

/* "TIME (in 4m)" / "TIME (3m ago)" / "never" / "not scheduled". */
static void print_time(FILE *out, const char *ts, int64_t now_ms, const char *none)
{
    int64_t t = parse_time(ts);
    char d[32];

    if (!ts) {
        fprintf(out, "%s\n", none);
        return;
    }
    if (t < 0 || now_ms <= 0) {
        fprintf(out, "%s\n", ts);
        return;
    }
    int64_t delta = t - now_ms / 1000;
    if (delta == 0)
        fprintf(out, "%s (now)\n", ts);
    else if (delta > 0)
        fprintf(out, "%s (in %s)\n", ts, fmt_duration(d, sizeof d, delta));
    else
        fprintf(out, "%s (%s ago)\n", ts, fmt_duration(d, sizeof d, delta));
}

/* Indent every line of a multi-line message under a label. */
static void print_lines(FILE *out, const char *indent, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(out, "%s%.*s\n", indent, (int)len, p);
        p += len;
        if (*p == '\n')
            p++;
    }
}

#define HUMAN_MAX_ERRORS 5
#define HUMAN_MAX_NOT_CONVERGING 5
#define LABEL "  %-21s "

static void print_run(FILE *out, struct json_object *run, int64_t now_ms)
{
    struct json_object *ch = jget(run, "changes");
    struct json_object *um = jget(run, "unmatched_users");
    struct json_object *nc = jget(run, "not_converging");
    struct json_object *errs = jget(run, "errors");
    int64_t st = parse_time(jstr(run, "started_at")), fin = parse_time(jstr(run, "finished_at"));
    char d[32];

    fprintf(out, LABEL "%s%s, ", "last run", jstr(run, "result") ? jstr(run, "result") : "?",
            jbool(run, "dry_run") ? " (dry run)" : "");
    if (st >= 0 && fin >= st)
        fprintf(out, "took %s, finished ", fmt_duration(d, sizeof d, fin - st));
    else
        fprintf(out, "finished ");
    print_time(out, jstr(run, "finished_at"), now_ms, "?");
    if (jstr(run, "cycle"))
        fprintf(out, LABEL "%s (--history lists it)\n", "cycle", jstr(run, "cycle"));
    fprintf(out,
            LABEL "roles %lld created, %lld updated, %lld deleted; assignments %lld added, "
                  "%lld removed\n",
            jbool(run, "dry_run") ? "planned changes" : "changes",
            (long long)jint(ch, "roles_created"), (long long)jint(ch, "roles_updated"),
            (long long)jint(ch, "roles_deleted"), (long long)jint(ch, "assignments_added"),
            (long long)jint(ch, "assignments_removed"));
    fprintf(out, LABEL "%lld pending, %lld failed ops (%lld requests, %lld retries)\n",
            "operations", (long long)jint(run, "pending"), (long long)jint(run, "failed_ops"),
            (long long)jint(run, "requests"), (long long)jint(run, "retries"));
    fprintf(out, LABEL "%lld in the source only, %lld in the target only\n", "unmatched users",
            (long long)jint(um, "source_only"), (long long)jint(um, "target_only"));
    struct json_object *ref = jget(run, "refusal");
    if (ref && json_object_is_type(ref, json_type_object)) {
        fprintf(out, LABEL "%lld deletions over max_deletes %lld", "refused",
                (long long)jint(ref, "deletions"), (long long)jint(ref, "max_deletes"));
        if (jint(ref, "not_approved") > 0)
            fprintf(out, ", %lld not in the approval", (long long)jint(ref, "not_approved"));
        fputc('\n', out);
        if (jstr(ref, "fingerprint"))
            fprintf(out, LABEL "%s (review: --once --dry-run; apply: [--once] --approve)\n",
                    "fingerprint", jstr(ref, "fingerprint"));
    }
    if (jstr(run, "approved"))
        fprintf(out, LABEL "%s\n", "applied under approval", jstr(run, "approved"));
    if (jstr(run, "abandoned"))
        fprintf(out, LABEL "%s\n", "abandoned", jstr(run, "abandoned"));

    size_t n = nc && json_object_is_type(nc, json_type_array) ? json_object_array_length(nc) : 0;
    if (n > 0) {
        fprintf(out, LABEL "%zu\n", "not converging", n);
        for (size_t i = 0; i < n && i < HUMAN_MAX_NOT_CONVERGING; i++) {
            struct json_object *e = json_object_array_get_idx(nc, i);
            if (json_object_is_type(e, json_type_string)) {
                fprintf(out, "      %s\n", json_object_get_string(e));
                continue;
            }
            fprintf(out, "      %s %s: %s\n", jstr(e, "kind") ? jstr(e, "kind") : "?",
                    jstr(e, "name") ? jstr(e, "name") : "?",
                    jstr(e, "reason") ? jstr(e, "reason") : "no reason given");
        }
        if (n > HUMAN_MAX_NOT_CONVERGING)
            fprintf(out, "      ... and %zu more (see status.json)\n",
                    n - HUMAN_MAX_NOT_CONVERGING);
    }

    n = errs && json_object_is_type(errs, json_type_array) ? json_object_array_length(errs) : 0;
    if (n > 0) {
        fprintf(out, LABEL "%zu recorded\n", "errors", n);
        for (size_t i = 0; i < n && i < HUMAN_MAX_ERRORS; i++) {
            struct json_object *e = json_object_array_get_idx(errs, i);
            int64_t code = jint(e, "status");
            fprintf(out, "      %s", jstr(e, "op") ? jstr(e, "op") : "?");
            if (jstr(e, "method") || jstr(e, "path"))
                fprintf(out, " %s %s", jstr(e, "method") ? jstr(e, "method") : "",
                        jstr(e, "path") ? jstr(e, "path") : "");
            if (code > 0)
                fprintf(out, " -> %lld", (long long)code);
            else
                fprintf(out, " -> no response");
            fprintf(out, ": %s", jstr(e, "message") ? jstr(e, "message") : "(no message)");
            if (jstr(e, "correlation_id"))
                fprintf(out, " [correlation id %s]", jstr(e, "correlation_id"));
            fputc('\n', out);
        }
        if (n > HUMAN_MAX_ERRORS)
            fprintf(out, "      ... and %zu more (see status.json)\n", n - HUMAN_MAX_ERRORS);
    }
}

static void print_job(FILE *out, const char *name, struct json_object *job, int64_t now_ms)
{
    struct json_object *run = jget(job, "last_run");
    const char *state = jstr(job, "state");
    const char *reason = jstr(job, "reason");

    fprintf(out, "\njob %s: %s, %s\n", name, state ? state : "?",
            jbool(job, "in_sync") ? "in sync" : "NOT in sync");
    if (jbool(job, "in_sync") && jstr(job, "in_sync_since")) {
        fprintf(out, LABEL, "in sync since");
        print_time(out, jstr(job, "in_sync_since"), now_ms, "?");
    }
    if (reason)
        fprintf(out, LABEL "%s\n", "reason", reason);
    if (jget(job, "holder") || (state && strcmp(state, "standby") == 0))
        fprintf(out, LABEL "%s\n", "held by", jstr(job, "holder") ? jstr(job, "holder") : "nobody");
    if (run && json_object_is_type(run, json_type_object))
        print_run(out, run, now_ms);
    else
        fprintf(out, LABEL "none yet\n", "last run");
    fprintf(out, LABEL, "last success");
    print_time(out, jstr(job, "last_success_at"), now_ms, "never");
    fprintf(out, LABEL "%lld\n", "consecutive failures",
            (long long)jint(job, "consecutive_failures"));
    fprintf(out, LABEL, "next run");
    print_time(out, jstr(job, "next_run_at"), now_ms, "not scheduled");
}

static void print_daemon(FILE *out, struct json_object *d, int64_t now_ms)
{
    struct json_object *lr = jget(d, "last_reload");
    int64_t pid = jint(d, "pid");
    const char *alive = "";

    /* The file outlives the process (it is written at stop too); say whether the pid is
     * still there. EPERM means it exists but runs as another user (DynamicUser). */
    if (pid > 0 && pid <= INT_MAX) {
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
            alive = " (running)";
        else if (errno == ESRCH)
            alive = " (not running)";
    }
    fprintf(out, "rolesyncd %s, pid %lld%s\n", jstr(d, "version") ? jstr(d, "version") : "?",
            (long long)pid, alive);
    fprintf(out, LABEL, "started");
    print_time(out, jstr(d, "started_at"), now_ms, "?");
    fprintf(out, LABEL "%s\n", "config", jstr(d, "config_file") ? jstr(d, "config_file") : "?");
    fprintf(out, LABEL, "config loaded");
    print_time(out, jstr(d, "config_loaded_at"), now_ms, "?");
    fprintf(out, LABEL, "last reload");
    if (!jstr(lr, "at")) {
        fprintf(out, "none\n");
    } else if (jbool(lr, "ok")) {
        fprintf(out, "ok, ");
        print_time(out, jstr(lr, "at"), now_ms, "?");
    } else {
        fprintf(out, "FAILED (still running the previous config), ");
        print_time(out, jstr(lr, "at"), now_ms, "?");
        if (jstr(lr, "error"))
            print_lines(out, "      ", jstr(lr, "error"));
    }
    struct json_object *co = jget(d, "coordination");
    if (co && json_object_is_type(co, json_type_object)) {
        struct json_object *h = jget(co, "holding");
        size_t n = h && json_object_is_type(h, json_type_array) ? json_object_array_length(h) : 0;
        fprintf(out, LABEL "%s as member %s, holding %zu job(s)", "coordination",
                jstr(co, "backend") ? jstr(co, "backend") : "?",
                jstr(co, "member") ? jstr(co, "member") : "?", n);
        for (size_t i = 0; i < n; i++)
            fprintf(out, "%s%s", i ? ", " : ": ",
                    json_object_get_string(json_object_array_get_idx(h, i)));
        fputc('\n', out);
    }
}

int status_print_human_file(const char *path, FILE *out, int64_t now_ms, char *err, size_t errlen)
{
    struct json_object *root, *jobs;
    int n_jobs = 0;

    if (access(path, F_OK) != 0) {
        snprintf(err, errlen, "no status file at %s (is rolesyncd running with this state_dir?)",
                 path);
        return -1;
    }
    root = json_object_from_file(path);
    if (!root) {
        snprintf(err, errlen, "%s: cannot read the status file: %s", path,
                 json_util_get_last_err() ? json_util_get_last_err() : "invalid JSON");
        /* json-c's message ends with a newline */
        size_t l = strlen(err);
        if (l > 0 && err[l - 1] == '\n')
            err[l - 1] = '\0';
        return -1;
    }
    if (jint(root, "schema_version") != STATUS_SCHEMA_VERSION ||
        !json_object_is_type(jget(root, "daemon"), json_type_object) ||
        !json_object_is_type(jget(root, "jobs"), json_type_object)) {
        snprintf(err, errlen, "%s: not a rolesyncd status file (schema_version %d expected)", path,
                 STATUS_SCHEMA_VERSION);
        json_object_put(root);
        return -1;
    }
    print_daemon(out, jget(root, "daemon"), now_ms);
    jobs = jget(root, "jobs");
    json_object_object_foreach(jobs, name, job)
    {
        print_job(out, name, job, now_ms);
        n_jobs++;
    }
    if (n_jobs == 0)
        fprintf(out, "\nno jobs\n");
    json_object_put(root);
    return 0;
}

int status_ensure_dir(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    char *p;

    if (stat(path, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) {
            snprintf(err, errlen, "state_dir %s is not a directory", path);
            return -1;
        }
    } else {
        p = xstrdup(path);
        for (char *s = p + 1; *s; s++) {
            if (*s != '/')
                continue;
            *s = '\0';
            if (mkdir(p, 0750) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create state_dir %s: %s: %s", path, p,
                         strerror(errno));
                free(p);
                return -1;
            }
            *s = '/';
        }
        if (mkdir(p, 0750) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create state_dir %s: %s", path, strerror(errno));
            free(p);
            return -1;
        }
        free(p);
    }
    if (access(path, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "state_dir %s is not writable: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

pid_t status_file_owner(const char *state_dir)
{
    char *path = xasprintf("%s/%s", state_dir, STATUS_FILE_NAME);
    struct json_object *root = access(path, F_OK) == 0 ? json_object_from_file(path) : NULL;
    int64_t pid = root ? jint(jget(root, "daemon"), "pid") : 0;
    pid_t owner = 0;
    json_object_put(root);
    free(path);
    if (pid <= 0 || pid > INT_MAX || (pid_t)pid == getpid())
        return 0;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
        return 0;
    /* pids are reused: only a process that is rolesyncd counts. A live process whose name
     * cannot be read (another user under hidepid) is taken to be the daemon: leaving its file
     * alone is the safe mistake. */
    char comm_path[64], comm[32] = "";
    snprintf(comm_path, sizeof comm_path, "/proc/%lld/comm", (long long)pid);
    FILE *f = fopen(comm_path, "r");
    if (!f)
        return (pid_t)pid;
    if (fgets(comm, sizeof comm, f))
        comm[strcspn(comm, "\n")] = '\0';
    fclose(f);
    if (strcmp(comm, "rolesyncd") == 0)
        owner = (pid_t)pid;
    return owner;
}

/* ---- carrying jobs over -------------------------------------------------------------------- */

struct status_prev {
    struct json_object *root;
};

struct status_prev *status_prev_read(const char *state_dir)
{
    char *path = xasprintf("%s/%s", state_dir, STATUS_FILE_NAME);
    struct json_object *root = access(path, F_OK) == 0 ? json_object_from_file(path) : NULL;
    free(path);
    if (!root || jint(root, "schema_version") != STATUS_SCHEMA_VERSION ||
        !json_object_is_type(jget(root, "jobs"), json_type_object)) {
        json_object_put(root);
        return NULL;
    }
    struct status_prev *p = xcalloc(1, sizeof *p);
    p->root = root;
    return p;
}

void status_prev_free(struct status_prev *prev)
{
    if (!prev)
        return;
    json_object_put(prev->root);
    free(prev);
}

/* RFC 3339 as written by this file -> epoch ms; 0 when absent or not parsable. */
static int64_t prev_time(struct json_object *o, const char *key)
{
    int64_t t = parse_time(jstr(o, key));
    return t < 0 ? 0 : t * 1000;
}

static uint64_t prev_count(struct json_object *o, const char *key)
{
    int64_t v = jint(o, key);
    return v < 0 ? 0 : (uint64_t)v;
}

static void prev_run(struct status_run *run, struct json_object *o)
{
    struct json_object *ch = jget(o, "changes"), *um = jget(o, "unmatched_users");
    const char *res = jstr(o, "result");
    const char *cycle = jstr(o, "cycle");
    /* an id is short and plain (journal.h); anything else is not carried */
    if (cycle && journal_cycle_id_plain(cycle))
        snprintf(run->cycle, sizeof run->cycle, "%s", cycle);
    run->started_at_ms = prev_time(o, "started_at");
    run->finished_at_ms = prev_time(o, "finished_at");
    run->result = STATUS_RESULT_FAILED;
    for (int r = 0; res && r < STATUS_RESULT_COUNT; r++)
        if (strcmp(res, status_result_name((enum status_result)r)) == 0)
            run->result = (enum status_result)r;
    run->dry_run = jbool(o, "dry_run");
    run->changes = (struct status_changes){
        prev_count(ch, "roles_created"), prev_count(ch, "roles_updated"),
        prev_count(ch, "roles_deleted"), prev_count(ch, "assignments_added"),
        prev_count(ch, "assignments_removed")};
    run->pending = prev_count(o, "pending");
    run->failed_ops = prev_count(o, "failed_ops");
    run->requests = prev_count(o, "requests");
    run->retries = prev_count(o, "retries");
    run->unmatched_source_only = prev_count(um, "source_only");
    run->unmatched_target_only = prev_count(um, "target_only");
    struct json_object *ref = jget(o, "refusal");
    if (ref && json_object_is_type(ref, json_type_object)) {
        run->refused = true;
        run->refusal_deletions = prev_count(ref, "deletions");
        run->refusal_max_deletes = prev_count(ref, "max_deletes");
        run->refusal_not_approved = prev_count(ref, "not_approved");
        const char *fp = jstr(ref, "fingerprint");
        snprintf(run->refusal_fingerprint, sizeof run->refusal_fingerprint, "%s", fp ? fp : "");
    }
    const char *afp = jstr(o, "approved");
    snprintf(run->approved_fingerprint, sizeof run->approved_fingerprint, "%s", afp ? afp : "");
    const char *ab = jstr(o, "abandoned");
    snprintf(run->abandoned, sizeof run->abandoned, "%s", ab ? ab : "");
    struct json_object *nc = jget(o, "not_converging"), *errs = jget(o, "errors");
    for (size_t i = 0;
         nc && json_object_is_type(nc, json_type_array) && i < json_object_array_length(nc); i++) {
        struct json_object *e = json_object_array_get_idx(nc, i);
        status_run_add_not_converging(run, jstr(e, "kind"), jstr(e, "name"), jstr(e, "reason"));
    }
    for (size_t i = 0;
         errs && json_object_is_type(errs, json_type_array) && i < json_object_array_length(errs);
         i++) {
        struct json_object *e = json_object_array_get_idx(errs, i);
        status_run_add_error(run, jstr(e, "op"), jstr(e, "method"), jstr(e, "path"),
                             (int)jint(e, "status"), jstr(e, "message"), jstr(e, "correlation_id"));
    }
}

bool status_prev_add_job(struct status *st, const struct status_prev *prev, const char *name)
{
    struct json_object *o = prev ? jget(jget(prev->root, "jobs"), name) : NULL;
    if (!o || !json_object_is_type(o, json_type_object) || status_job_find(st, name))
        return false;
    struct status_job *j = status_job_add(st, name);
    const char *state = jstr(o, "state");
    j->state = STATUS_JOB_IDLE;
    for (int s = STATUS_JOB_WAITING_RETRY; state && s <= STATUS_JOB_STANDBY; s++)
        if (strcmp(state, status_job_state_name((enum status_job_state)s)) == 0)
            j->state = (enum status_job_state)s;
    j->in_sync = jbool(o, "in_sync");
    j->in_sync_since_ms = j->in_sync ? prev_time(o, "in_sync_since") : 0;
    const char *reason = jstr(o, "reason");
    if (reason && j->state != STATUS_JOB_IDLE)
        status_job_set_state(j, j->state, reason);
    struct json_object *last = jget(o, "last_run");
    if (last && json_object_is_type(last, json_type_object)) {
        prev_run(&j->last_run, last);
        j->has_last_run = true;
    }
    j->last_success_at_ms = prev_time(o, "last_success_at");
    int64_t cf = jint(o, "consecutive_failures");
    j->consecutive_failures = cf < 0 ? 0 : cf > 1000000 ? 1000000 : (unsigned)cf;
    return true;
}

void status_prev_carry(struct status_job *job, const struct status_prev *prev)
{
    struct json_object *o = prev ? jget(jget(prev->root, "jobs"), job->name) : NULL;
    if (o && json_object_is_type(o, json_type_object) && jbool(o, "in_sync"))
        job->in_sync_since_ms = prev_time(o, "in_sync_since");
}

int status_print_human(const char *state_dir, FILE *out, char *err, size_t errlen)
{
    char *path = xasprintf("%s/%s", state_dir, STATUS_FILE_NAME);
    int rc = status_print_human_file(path, out, util_now_ms(), err, errlen);
    free(path);
    return rc;
}
