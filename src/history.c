/* history.c — `rolesyncd --history [N]` (contract in history.h). */
#include "rolesync/history.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "rolesync/journal.h"
#include "rolesync/util.h"

struct hcycle {
    char *id, *job, *target, *undo_of;
    int64_t start_ms; /* the first line's at */
    size_t ok[5];     /* per enum journal_kind, result ok */
    size_t failed;
    uint64_t *pending; /* seqs of role deletions whose outcome line has not come (yet) */
    size_t npending, cap_pending;
    UT_hash_handle hh;
};

struct history {
    struct hcycle *by_id;  /* uthash */
    struct hcycle **order; /* by first line */
    size_t n, cap;
};

static int on_entry(const struct journal_entry *e, void *arg)
{
    struct history *h = arg;
    struct hcycle *c = NULL;
    HASH_FIND_STR(h->by_id, e->cycle, c);
    if (!c) {
        c = xcalloc(1, sizeof *c);
        c->id = xstrdup(e->cycle);
        c->job = xstrdup(e->job);
        c->target = xstrdup(e->target);
        c->start_ms = e->at_ms;
        HASH_ADD_KEYPTR(hh, h->by_id, c->id, strlen(c->id), c);
        util_grow((void **)&h->order, &h->cap, h->n + 1, sizeof *h->order);
        h->order[h->n++] = c;
    }
    if (e->undo_of && !c->undo_of)
        c->undo_of = xstrdup(e->undo_of);
    if (e->result == JOURNAL_PENDING) {
        util_grow((void **)&c->pending, &c->cap_pending, c->npending + 1, sizeof *c->pending);
        c->pending[c->npending++] = e->seq;
        return 0;
    }
    if (e->kind == JOURNAL_ROLE_DELETE) {
        /* the outcome of a pending deletion: it is no longer in doubt */
        for (size_t i = 0; i < c->npending; i++) {
            if (c->pending[i] == e->seq) {
                c->pending[i] = c->pending[--c->npending];
                break;
            }
        }
    }
    if (e->result == JOURNAL_OK)
        c->ok[e->kind]++;
    else
        c->failed++;
    return 0;
}

static void history_free(struct history *h)
{
    HASH_CLEAR(hh, h->by_id);
    for (size_t i = 0; i < h->n; i++) {
        struct hcycle *c = h->order[i];
        free(c->id);
        free(c->job);
        free(c->target);
        free(c->undo_of);
        free(c->pending);
        free(c);
    }
    free(h->order);
}

int history_print(const char *state_dir, size_t n, FILE *out, char *err, size_t errlen)
{
    struct history h = {0};
    size_t skipped = 0;
    if (journal_read(state_dir, on_entry, &h, &skipped, err, errlen) != 0) {
        history_free(&h);
        return -1;
    }
    if (h.n == 0)
        fprintf(out, "no changes journaled (%s/%s)\n", state_dir, JOURNAL_FILE);
    for (size_t i = h.n > n ? h.n - n : 0; i < h.n; i++) {
        const struct hcycle *c = h.order[i];
        char at[32];
        fprintf(out, "%s  %s  %s  %s  roles +%zu ~%zu -%zu, grants +%zu -%zu", c->id,
                c->job ? c->job : "-", c->target ? c->target : "-",
                util_rfc3339(at, sizeof at, c->start_ms), c->ok[JOURNAL_ROLE_CREATE],
                c->ok[JOURNAL_ROLE_UPDATE], c->ok[JOURNAL_ROLE_DELETE], c->ok[JOURNAL_GRANT_ADD],
                c->ok[JOURNAL_GRANT_REMOVE]);
        if (c->failed)
            fprintf(out, ", %zu failed", c->failed);
        if (c->npending)
            fprintf(out, ", %zu in doubt", c->npending);
        if (c->undo_of)
            fprintf(out, ", undo of %s", c->undo_of);
        fputc('\n', out);
    }
    if (skipped)
        fprintf(out, "note: %zu journal line%s skipped as unreadable (torn or damaged)\n", skipped,
                skipped == 1 ? "" : "s");
    history_free(&h);
    return 0;
}
