/* coord.c — membership, job ownership and fencing on etcd leases (coord.h). */
#include "rolesync/coord.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rolesync/etcd.h"
#include "rolesync/log.h"
#include "rolesync/util.h"

/* ---- the assignment (pure) ---- */

void coord_assign(size_t nmembers, size_t njobs, const int *holder, int *out)
{
    size_t m = nmembers, avail = 0;
    size_t *count = xcalloc(m ? m : 1, sizeof *count), *target = xcalloc(m ? m : 1, sizeof *target),
           *kept = xcalloc(m ? m : 1, sizeof *kept);
    bool *extra = xcalloc(m ? m : 1, sizeof *extra);

    for (size_t j = 0; j < njobs; j++) {
        out[j] = holder[j] == -2 ? -2 : -1;
        if (holder[j] != -2)
            avail++;
        if (holder[j] >= 0 && (size_t)holder[j] < m)
            count[holder[j]]++;
    }
    if (m == 0)
        goto out;
    /* floor for everyone; the remainder goes to those holding the most (fewest moves), ties
     * to the first in member order, so every member computes the same answer */
    for (size_t i = 0; i < m; i++)
        target[i] = avail / m;
    for (size_t r = avail % m; r > 0; r--) {
        size_t best = m;
        for (size_t i = 0; i < m; i++)
            if (!extra[i] && (best == m || count[i] > count[best]))
                best = i;
        extra[best] = true;
        target[best]++;
    }
    for (size_t j = 0; j < njobs; j++) {
        int h = holder[j];
        if (h >= 0 && (size_t)h < m && kept[h] < target[h]) {
            out[j] = h;
            kept[h]++;
        }
    }
    for (size_t j = 0; j < njobs; j++) {
        if (out[j] != -1)
            continue;
        size_t best = m;
        for (size_t i = 0; i < m; i++)
            if (kept[i] < target[i] && (best == m || kept[i] < kept[best]))
                best = i;
        if (best == m)
            break; /* cannot happen: the targets add up to the jobs available */
        out[j] = (int)best;
        kept[best]++;
    }
out:
    free(count);
    free(target);
    free(kept);
    free(extra);
}

/* ---- state ---- */

struct cjob {
    char *name;
    bool configured;    /* in the current config (else: given back, then forgotten) */
    bool held;          /* etcd confirmed the key under our lease */
    int64_t create_rev; /* of our key: the fence compares it */
    char *holder;       /* member named in the key, or NULL */
    bool op;            /* an acquire or release is in flight */
    bool tried;         /* oneshot: taken, or found held elsewhere; not asked for again */
};

struct fence;

struct coord {
    uv_loop_t *loop;
    struct http_engine *engine; /* borrowed: the one the daemon's writes go through too */
    struct etcd_client *etcd;
    char *prefix, *member;
    uint64_t ttl_ms, period_ms;
    int64_t lease;        /* 0 = none */
    uint64_t valid_until; /* monotonic ms: the lease is alive until then by our clock */
    uint64_t backoff_ms;  /* next wait while there is no lease */
    bool round;           /* a grant / keep-alive / poll chain is in flight */
    bool healthy;
    bool down_said; /* "coordination unavailable" logged since etcd last answered */
    char problem[400];
    struct cjob *jobs;
    size_t njobs, cap;
    coord_change_cb on_change;
    coord_busy_cb busy;
    void *arg;
    uv_timer_t tick, shut_timer;
    int open_handles;
    bool shutting, shut_done, revoking;
    bool oneshot; /* coord_new_oneshot: no membership, takes free keys, never gives back */
    void (*shut_cb)(void *);
    void *shut_arg;
    struct fence *fences; /* waiting for their answer */
};

static void arm(struct coord *c, uint64_t ms);

static void changed(struct coord *c)
{
    if (c->on_change && !c->shutting)
        c->on_change(c->arg);
}

static struct cjob *job_find(const struct coord *c, const char *name)
{
    for (size_t i = 0; i < c->njobs; i++)
        if (strcmp(c->jobs[i].name, name) == 0)
            return &c->jobs[i];
    return NULL;
}

static char *job_key(const struct coord *c, const char *job)
{
    return xasprintf("%sjobs/%s", c->prefix, job);
}

static bool lease_alive(const struct coord *c, uint64_t margin)
{
    return c->lease && util_mono_ms() + margin < c->valid_until;
}

static void drop_all(struct coord *c)
{
    for (size_t i = 0; i < c->njobs; i++)
        c->jobs[i].held = false;
}

static void set_problem(struct coord *c, const char *what, const char *error)
{
    char q[600];
    bool was = c->healthy;
    snprintf(c->problem, sizeof c->problem, "%s: %s", what, error);
    c->healthy = false;
    if (!lease_alive(c, 0)) {
        c->lease = 0;
        drop_all(c);
    }
    if (was || !c->down_said) /* once per outage, the first attempt at start-up included */
        log_warning(NULL, "coordination unavailable, standing by endpoint=%s error=%s",
                    etcd_client_endpoint(c->etcd), log_quote(q, sizeof q, c->problem));
    c->down_said = true;
    changed(c);
}

/* "etcd unreachable" when no answer came (or etcd had no leader), else "etcd refused" (a
 * login, a permission, a bad request): what an operator looks at first differs. */
static const char *failure_what(const struct etcd_reply *r)
{
    bool unavailable =
        r->status == 0 || r->status == 502 || r->status == 503 || r->status == 504 || r->code == 14;
    return unavailable ? "etcd unreachable" : "etcd refused";
}

/* ---- acquire / release ---- */

struct job_op {
    struct coord *c;
    char *job;
    bool release;
};

static void on_job_op(const struct etcd_reply *r, void *arg)
{
    struct job_op *o = arg;
    struct coord *c = o->c;
    struct cjob *j = job_find(c, o->job);
    char q[600];

    if (j) {
        j->op = false;
        if (!r->ok) {
            j->tried = false; /* no answer: ask again at the next round */
            log_warning(o->job, "coordination: %s failed error=%s",
                        o->release ? "giving back" : "taking", log_quote(q, sizeof q, r->error));
        } else if (o->release) {
            if (r->succeeded)
                log_info(o->job, "job given back member=%s", c->member);
            j->held = false;
            free(j->holder);
            j->holder = NULL;
        } else if (c->shutting) {
            /* taken while giving everything back: the revoke takes the key with the lease */
        } else if (r->succeeded) {
            j->held = true;
            j->create_rev = r->revision;
            free(j->holder);
            j->holder = xstrdup(c->member);
            log_info(o->job, "job taken member=%s", c->member);
        } else {
            free(j->holder);
            j->holder = r->nkvs ? xstrdup(r->kvs[0].value) : NULL;
            if (!j->holder)
                j->tried = false; /* the holder let go in between: ask again next round */
        }
        if (!j->configured && !j->held) {
            free(j->name);
            free(j->holder);
            *j = c->jobs[--c->njobs];
        }
        changed(c);
    }
    free(o->job);
    free(o);
}

static void job_op(struct coord *c, struct cjob *j, bool release)
{
    struct job_op *o = xcalloc(1, sizeof *o);
    char *key = job_key(c, j->name);
    char *body = release ? etcd_enc_delete_if_held(key, j->create_rev, c->lease)
                         : etcd_enc_put_if_absent(key, c->member, c->lease);
    o->c = c;
    o->job = xstrdup(j->name);
    o->release = release;
    j->op = true;
    etcd_call(c->etcd, ETCD_TXN, body, on_job_op, o);
    free(body);
    free(key);
}

/* ---- the round: lease, then a read of the prefix ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void rebalance(struct coord *c, char **members, size_t nm)
{
    qsort(members, nm, sizeof *members, cmp_str);
    int me = -1;
    for (size_t i = 0; i < nm; i++)
        if (strcmp(members[i], c->member) == 0)
            me = (int)i;
    size_t n = c->njobs;
    int *holder = xcalloc(n ? n : 1, sizeof *holder), *out = xcalloc(n ? n : 1, sizeof *out);
    size_t *idx = xcalloc(n ? n : 1, sizeof *idx), nj = 0;
    for (size_t i = 0; i < n; i++) {
        struct cjob *j = &c->jobs[i];
        if (!j->configured)
            continue;
        int h = j->holder ? -2 : -1;
        for (size_t k = 0; j->holder && k < nm; k++)
            if (strcmp(members[k], j->holder) == 0)
                h = (int)k;
        idx[nj] = i;
        holder[nj++] = h;
    }
    if (me >= 0)
        coord_assign(nm, nj, holder, out);
    for (size_t k = 0; k < nj; k++) {
        struct cjob *j = &c->jobs[idx[k]];
        if (j->op || me < 0)
            continue;
        if (out[k] == me && !j->holder)
            job_op(c, j, false);
        else if (j->held && out[k] != me && out[k] >= 0 && !c->busy(j->name, c->arg))
            job_op(c, j, true);
    }
    for (size_t i = 0; i < c->njobs; i++) {
        struct cjob *j = &c->jobs[i];
        if (!j->configured && j->held && !j->op && !c->busy(j->name, c->arg))
            job_op(c, j, true);
    }
    free(holder);
    free(out);
    free(idx);
}

static void on_member_put(const struct etcd_reply *r, void *arg)
{
    (void)arg;
    if (!r->ok)
        log_warning(NULL, "coordination: registering the member failed error=%s", r->error);
}

static void put_member(struct coord *c)
{
    char *key = xasprintf("%smembers/%s", c->prefix, c->member);
    char *body = etcd_enc_put(key, c->member, c->lease);
    etcd_call(c->etcd, ETCD_TXN, body, on_member_put, c);
    free(body);
    free(key);
}

static void on_poll(const struct etcd_reply *r, void *arg)
{
    struct coord *c = arg;
    size_t plen = strlen(c->prefix);
    char **members = xcalloc(r->nkvs + 1, sizeof *members);
    size_t nm = 0;
    bool me = false;

    c->round = false;
    if (c->shutting) { /* a late answer: nothing more is taken */
        free(members);
        return;
    }
    if (!r->ok) {
        set_problem(c, "etcd read failed", r->error);
        free(members);
        arm(c, c->period_ms);
        return;
    }
    for (size_t i = 0; i < c->njobs; i++) {
        free(c->jobs[i].holder);
        c->jobs[i].holder = NULL;
        if (!c->jobs[i].op)
            c->jobs[i].held = false;
    }
    for (size_t i = 0; i < r->nkvs; i++) {
        const struct etcd_kv *kv = &r->kvs[i];
        const char *rest = kv->key + plen;
        if (strncmp(rest, "members/", 8) == 0 && kv->lease) {
            members[nm++] = (char *)rest + 8;
            if (strcmp(rest + 8, c->member) == 0)
                me = kv->lease == c->lease;
        } else if (strncmp(rest, "jobs/", 5) == 0) {
            struct cjob *j = job_find(c, rest + 5);
            if (!j)
                continue;
            j->holder = xstrdup(kv->value);
            if (kv->lease == c->lease && strcmp(kv->value, c->member) == 0) {
                j->held = true;
                j->create_rev = kv->create_revision;
            }
        }
    }
    if (!c->healthy)
        log_info(NULL, "coordination available member=%s endpoint=%s", c->member,
                 etcd_client_endpoint(c->etcd));
    c->healthy = true;
    c->down_said = false;
    c->problem[0] = '\0';
    if (c->oneshot) {
        /* a one-time run is no member (the daemons do not spread jobs to it, and leave its
         * keys alone): it takes the free keys of its jobs and keeps them until it ends */
        for (size_t i = 0; i < c->njobs; i++) {
            struct cjob *j = &c->jobs[i];
            if (!j->configured || j->op || j->tried)
                continue;
            j->tried = true; /* once: a key freed later is left to the daemons */
            if (!j->holder)
                job_op(c, j, false);
        }
    } else if (!me) {
        put_member(c); /* counted from the next read */
    } else {
        rebalance(c, members, nm);
    }
    free(members);
    changed(c);
    arm(c, c->period_ms);
}

static void poll_prefix(struct coord *c)
{
    char *body = etcd_enc_range_prefix(c->prefix);
    etcd_call(c->etcd, ETCD_RANGE, body, on_poll, c);
    free(body);
}

struct lease_op {
    struct coord *c;
    uint64_t sent; /* monotonic ms: the lease lives at least TTL from here */
};

static void on_keepalive(const struct etcd_reply *r, void *arg)
{
    struct lease_op *o = arg;
    struct coord *c = o->c;
    uint64_t sent = o->sent;
    free(o);
    if (c->shutting) /* the lease is being given back: a late answer changes nothing */
        return;
    if (!r->ok) {
        c->round = false;
        set_problem(c, failure_what(r), r->error);
        arm(c, c->lease ? c->period_ms : c->backoff_ms);
        return;
    }
    if (r->ttl <= 0) {
        log_warning(NULL, "coordination: lease expired, every job given up member=%s", c->member);
        c->lease = 0;
        drop_all(c);
        c->round = false;
        set_problem(c, "lease expired", "asking for a new one");
        arm(c, 0);
        return;
    }
    c->valid_until = sent + (uint64_t)r->ttl * 1000;
    poll_prefix(c);
}

static void on_grant(const struct etcd_reply *r, void *arg)
{
    struct lease_op *o = arg;
    struct coord *c = o->c;
    uint64_t sent = o->sent;
    free(o);
    if (c->shutting) /* granted too late: nothing is put under it, it expires by itself */
        return;
    if (!r->ok || r->id == 0 || r->ttl <= 0) {
        c->round = false;
        set_problem(c, r->ok ? "etcd refused" : failure_what(r),
                    r->ok ? "lease grant refused" : r->error);
        uint64_t wait = c->backoff_ms;
        c->backoff_ms = c->backoff_ms * 2 > c->ttl_ms ? c->ttl_ms : c->backoff_ms * 2;
        arm(c, wait);
        return;
    }
    c->backoff_ms = 500;
    c->lease = r->id;
    c->valid_until = sent + (uint64_t)r->ttl * 1000;
    log_info(NULL, "coordination lease granted member=%s ttl_s=%lld", c->member, (long long)r->ttl);
    if (!c->oneshot)
        put_member(c);
    poll_prefix(c);
}

static void on_tick(uv_timer_t *t)
{
    struct coord *c = UTIL_CONTAINER_OF(t, struct coord, tick);
    if (c->round || c->shutting)
        return;
    c->round = true;
    struct lease_op *o = xcalloc(1, sizeof *o);
    o->c = c;
    o->sent = util_mono_ms();
    char *body;
    if (!c->lease) {
        body = etcd_enc_grant((int64_t)(c->ttl_ms / 1000));
        etcd_call(c->etcd, ETCD_GRANT, body, on_grant, o);
    } else {
        if (!lease_alive(c, 0)) { /* by our clock it is gone (a pause, a slow etcd) */
            drop_all(c);
            changed(c);
        }
        body = etcd_enc_lease(c->lease);
        etcd_call(c->etcd, ETCD_KEEPALIVE, body, on_keepalive, o);
    }
    free(body);
}

static void arm(struct coord *c, uint64_t ms)
{
    if (!c->shutting)
        uv_timer_start(&c->tick, on_tick, ms, 0);
}

/* ---- public ---- */

struct coord *coord_new(uv_loop_t *loop, struct http_engine *e, const struct cfg_coord *cfg,
                        coord_change_cb on_change, coord_busy_cb busy, void *arg, char *err,
                        size_t errlen)
{
    struct coord *c = xcalloc(1, sizeof *c);
    char host[256] = "localhost";

    c->ttl_ms = cfg->lease_ttl_ms;
    c->period_ms = c->ttl_ms / 3;
    /* each request must end well within a round, or a dead endpoint eats the lease */
    c->etcd = etcd_client_new(e, cfg, c->period_ms, err, errlen);
    if (!c->etcd) {
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->engine = e;
    c->prefix = xstrdup(cfg->prefix);
    gethostname(host, sizeof host - 1);
    c->member = xasprintf("%s:%ld", host, (long)getpid());
    c->backoff_ms = 500;
    c->on_change = on_change;
    c->busy = busy;
    c->arg = arg;
    snprintf(c->problem, sizeof c->problem, "waiting for etcd: not connected yet");
    uv_timer_init(loop, &c->tick);
    uv_timer_init(loop, &c->shut_timer);
    c->open_handles = 2;
    arm(c, 0);
    return c;
}

struct coord *coord_new_oneshot(uv_loop_t *loop, struct http_engine *e, const struct cfg_coord *cfg,
                                const char *const *jobs, size_t njobs, char *err, size_t errlen)
{
    /* no change callback (the caller polls coord_job_settled) and no busy one: only
     * rebalance() asks it, and a one-time run never rebalances */
    struct coord *c = coord_new(loop, e, cfg, NULL, NULL, NULL, err, errlen);
    if (c) {
        c->oneshot = true;
        coord_set_jobs(c, jobs, njobs); /* before the first tick: it runs from the loop */
    }
    return c;
}

bool coord_job_settled(const struct coord *c, const char *job)
{
    const struct cjob *j = job_find(c, job);
    return c->healthy && j && !j->op && (coord_job_held(c, job) || j->holder);
}

void coord_set_jobs(struct coord *c, const char *const *names, size_t n)
{
    for (size_t i = 0; i < c->njobs; i++)
        c->jobs[i].configured = false;
    for (size_t k = 0; k < n; k++) {
        struct cjob *j = job_find(c, names[k]);
        if (!j) {
            util_grow((void **)&c->jobs, &c->cap, c->njobs + 1, sizeof *c->jobs);
            j = &c->jobs[c->njobs++];
            memset(j, 0, sizeof *j);
            j->name = xstrdup(names[k]);
        }
        j->configured = true;
    }
    /* forgotten at once unless held (then given back at the next round) */
    for (size_t i = 0; i < c->njobs;) {
        struct cjob *j = &c->jobs[i];
        if (!j->configured && !j->held && !j->op) {
            free(j->name);
            free(j->holder);
            *j = c->jobs[--c->njobs];
        } else {
            i++;
        }
    }
}

const char *coord_member(const struct coord *c)
{
    return c->member;
}

bool coord_job_held(const struct coord *c, const char *job)
{
    const struct cjob *j = job_find(c, job);
    return j && j->held && lease_alive(c, 0);
}

bool coord_job_runnable(const struct coord *c, const char *job)
{
    const struct cjob *j = job_find(c, job);
    return c->healthy && !c->shutting && j && j->held && lease_alive(c, c->ttl_ms / 3);
}

/* Why a write for `j` may not go out, by this instance's own account (no I/O), or NULL: the
 * part the fence and the write gate share. */
static const char *local_refusal(const struct coord *c, const struct cjob *j)
{
    if (c->shutting)
        return "fence: shutting down";
    if (!j || !j->held)
        return "fence: the job is not held by this instance";
    if (!lease_alive(c, c->ttl_ms / 3))
        return "fence: the lease is expired or about to expire";
    return NULL;
}

bool coord_write_gate(const struct coord *c, const char *job, char *header, size_t hn, char *why,
                      size_t wn)
{
    if (!c->shutting && !c->healthy) {
        snprintf(why, wn, "fence: %s", c->problem);
        return false;
    }
    const char *no = local_refusal(c, job_find(c, job));
    if (no) {
        snprintf(why, wn, "%s", no);
        return false;
    }
    char *qj = util_pct_encode(job), *qm = util_pct_encode(c->member);
    snprintf(header, hn, "X-Rolesyncd-Fence: job=%s; member=%s; lease=%llx", qj, qm,
             (unsigned long long)c->lease);
    free(qj);
    free(qm);
    return true;
}

const char *coord_job_holder(const struct coord *c, const char *job)
{
    const struct cjob *j = job_find(c, job);
    return j ? j->holder : NULL;
}

const char *coord_problem(const struct coord *c)
{
    return c->healthy ? NULL : c->problem;
}

/* ---- fence ---- */

struct fence {
    struct coord *c; /* NULL once the coordinator is gone */
    struct fence *next;
    char *job;
    bool held;
    char reason[400];
    void (*done)(bool held, const char *reason, void *done_arg);
    void *done_arg;
    uv_timer_t timer; /* delivers from the loop */
    bool queued;
};

static void on_fence_closed(uv_handle_t *h)
{
    struct fence *f = UTIL_CONTAINER_OF((uv_timer_t *)h, struct fence, timer);
    free(f->job);
    free(f);
}

static void on_fence_timer(uv_timer_t *t)
{
    struct fence *f = UTIL_CONTAINER_OF(t, struct fence, timer);
    if (f->c) {
        for (struct fence **pp = &f->c->fences; *pp; pp = &(*pp)->next)
            if (*pp == f) {
                *pp = f->next;
                break;
            }
    }
    f->done(f->held, f->reason, f->done_arg);
    uv_close((uv_handle_t *)&f->timer, on_fence_closed);
}

static void fence_deliver(struct fence *f, bool held, const char *reason)
{
    if (f->queued)
        return;
    f->queued = true;
    f->held = held;
    snprintf(f->reason, sizeof f->reason, "%s", reason ? reason : "");
    uv_timer_start(&f->timer, on_fence_timer, 0, 0);
}

static void on_fence_reply(const struct etcd_reply *r, void *arg)
{
    struct fence *f = arg;
    struct coord *c = f->c;
    char why[400];
    if (!c) /* cannot happen: the client is freed with the coordinator, silencing us */
        return;
    struct cjob *j = job_find(c, f->job);
    if (!r->ok) {
        snprintf(why, sizeof why, "fence: %s: %s", failure_what(r), r->error);
        fence_deliver(f, false, why);
        return;
    }
    if (!r->succeeded) {
        if (j)
            j->held = false;
        snprintf(why, sizeof why, "fence: the job's key is no longer ours (held by %s)",
                 r->nkvs ? r->kvs[0].value : "nobody");
        fence_deliver(f, false, why);
        changed(c);
        return;
    }
    /* etcd had the key under our lease; the lease must also outlive the writes by our clock
     * (the answer may have waited while the process was stopped) */
    if (!lease_alive(c, c->ttl_ms / 3)) {
        fence_deliver(f, false, "fence: the lease is about to expire");
        return;
    }
    fence_deliver(f, true, NULL);
}

void coord_fence_refuse(uv_loop_t *loop, const char *reason,
                        void (*done)(bool held, const char *reason, void *done_arg), void *done_arg)
{
    struct fence *f = xcalloc(1, sizeof *f);
    f->job = xstrdup("");
    f->done = done;
    f->done_arg = done_arg;
    uv_timer_init(loop, &f->timer);
    fence_deliver(f, false, reason);
}

void coord_fence(const char *job, void (*done)(bool held, const char *reason, void *done_arg),
                 void *done_arg, void *coordp)
{
    struct coord *c = coordp;
    struct fence *f = xcalloc(1, sizeof *f);
    f->c = c;
    f->job = xstrdup(job);
    f->done = done;
    f->done_arg = done_arg;
    uv_timer_init(c->loop, &f->timer);
    f->next = c->fences;
    c->fences = f;
    const struct cjob *j = job_find(c, job);
    const char *no = local_refusal(c, j);
    if (no) {
        fence_deliver(f, false, no);
    } else {
        char *key = job_key(c, job);
        char *body = etcd_enc_held(key, j->create_rev, c->lease);
        etcd_call(c->etcd, ETCD_TXN, body, on_fence_reply, f);
        free(body);
        free(key);
    }
}

/* ---- stop ---- */

static void shut_finish(struct coord *c)
{
    if (c->shut_done)
        return;
    c->shut_done = true;
    uv_timer_stop(&c->shut_timer);
    if (c->shut_cb)
        c->shut_cb(c->shut_arg);
}

static void on_revoked(const struct etcd_reply *r, void *arg)
{
    struct coord *c = arg;
    if (r->ok)
        log_info(NULL, "coordination lease revoked member=%s", c->member);
    else
        log_warning(NULL, "coordination: revoking the lease failed (it expires by itself) error=%s",
                    r->error);
    shut_finish(c);
}

static void on_shut_timer(uv_timer_t *t)
{
    struct coord *c = UTIL_CONTAINER_OF(t, struct coord, shut_timer);
    if (c->revoking)
        log_warning(NULL, "coordination: no answer to the lease revoke; it expires by itself");
    else if (c->lease) {
        /* writes still on the wire: the lease is not given back, so nobody else writes
         * before it expires (lease_ttl) and they have landed */
        uv_timer_stop(&c->tick);
        log_warning(NULL,
                    "coordination: writes still in flight at shutdown; the lease is left to "
                    "expire member=%s",
                    c->member);
    }
    shut_finish(c);
}

static void revoke_lease(struct coord *c)
{
    char *body = etcd_enc_lease(c->lease);
    c->lease = 0;
    c->revoking = true;
    etcd_call(c->etcd, ETCD_REVOKE, body, on_revoked, c);
    free(body);
}

/* Shutting down: the gate refuses every write from now on, but writes it let through may
 * still be on the wire. The lease goes only once they are answered: revoked earlier, another
 * instance could take the job and write while they land. */
static void on_writes_wait(uv_timer_t *t)
{
    struct coord *c = UTIL_CONTAINER_OF(t, struct coord, tick);
    if (http_engine_gated_in_flight(c->engine) > 0) {
        uv_timer_start(&c->tick, on_writes_wait, 10, 0);
        return;
    }
    revoke_lease(c);
}

void coord_shutdown(struct coord *c, void (*cb)(void *arg), void *arg)
{
    c->shutting = true;
    c->shut_cb = cb;
    c->shut_arg = arg;
    uv_timer_stop(&c->tick);
    drop_all(c);
    if (!c->lease) { /* nothing to revoke: done, from the loop */
        uv_timer_start(&c->shut_timer, on_shut_timer, 0, 0);
        return;
    }
    uv_timer_start(&c->tick, on_writes_wait, 0, 0);
    uv_timer_start(&c->shut_timer, on_shut_timer, COORD_SHUTDOWN_MS, 0);
}

static void on_coord_closed(uv_handle_t *h)
{
    struct coord *c = h->data;
    if (--c->open_handles > 0)
        return;
    for (size_t i = 0; i < c->njobs; i++) {
        free(c->jobs[i].name);
        free(c->jobs[i].holder);
    }
    free(c->jobs);
    free(c->prefix);
    free(c->member);
    free(c);
}

void coord_free(struct coord *c)
{
    if (!c)
        return;
    c->shutting = true;
    /* fences still waiting get their "no" from the loop: a cycle waiting on one ends */
    for (struct fence *f = c->fences, *next; f; f = next) {
        next = f->next;
        f->c = NULL;
        fence_deliver(f, false, "fence: coordination stopped");
    }
    c->fences = NULL;
    etcd_client_free(c->etcd);
    c->etcd = NULL;
    c->tick.data = c;
    c->shut_timer.data = c;
    uv_close((uv_handle_t *)&c->tick, on_coord_closed);
    uv_close((uv_handle_t *)&c->shut_timer, on_coord_closed);
}
