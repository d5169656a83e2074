/* journal.h — the change journal, {state_dir}/changes.jsonl (product.md 4c).
 *
 * Every change a cycle applies (or tried to apply) is one JSON object on one line:
 *   {"cycle", "seq", "job", "target", "at", "kind", "role", "role_id", "user", "user_id",
 *    "division", "division_id", "before", "after", "result", "correlation_id", "message",
 *    "undo_of"}
 * (product.md 4c names cycle, job, target, at, kind, role, user, division, before, after,
 * result and correlation_id; seq, the ids, message and undo_of are ours: the ids let an undo
 * find the item again when a name changed, seq pairs a deletion's two lines, undo_of names the
 * cycle an undo took back.) Absent values are JSON null.
 *
 * kind: role_create | role_update | role_delete | grant_add | grant_remove.
 * result: ok | failed | pending. A role deletion is written twice: first with result
 * "pending", its `before` holding the role's whole definition and every holder the job removes
 * with it, appended and fsync'd before the DELETE is sent; then, once the DELETE's reply is in,
 * a line with the same cycle and seq and the result ok or failed. A pending line with no
 * outcome line means the process died with the DELETE in flight: whether it was applied is
 * known only from a fresh read (undo.h treats it so).
 *
 * `before` / `after` for roles: {"name", "description", "definition"} with the provider's JSON
 * of the definition (mdl_role.def_json, parsed), and for a role_delete's `before` also
 * "holders": [{"user", "user_id", "division", "division_id"}]. For grants both are null.
 * `user` is the target user's match key (diff_user_label), `division` the division's name as
 * the target spells it, "*" for the all-divisions grant, null for the home division and for an
 * undivided tenant (as in the log, diff_qual_name).
 *
 * Writing: lines are appended with one write(2) each (O_APPEND), so a kill -9 leaves at most a
 * torn last line; journal_sync() fsyncs (end of each cycle, and before each role deletion).
 * The file is rotated when it would grow past max_size: changes.jsonl -> changes.jsonl.1 ->
 * ... -> changes.jsonl.KEEP (the oldest dropped). Secrets never enter it: nothing here sees
 * one.
 *
 * Reading: journal_read() visits every parsable line of every file, oldest first; a torn or
 * hostile line (not one JSON object, a field of the wrong type, an unknown kind or result,
 * longer than JOURNAL_MAX_LINE) is skipped and counted, never fatal.
 *
 * Ownership: struct journal is owned by its opener (one per process: the daemon's jobs share
 * it; the loop thread only). The strings of an entry given to a callback live until the
 * callback returns.
 */
#ifndef ROLESYNC_JOURNAL_H
#define ROLESYNC_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOURNAL_FILE "changes.jsonl"
#define JOURNAL_CYCLE_LEN 40                   /* an id and its NUL */
#define JOURNAL_DEFAULT_MAX_SIZE (64ull << 20) /* journal.max_size */
#define JOURNAL_DEFAULT_KEEP 4u                /* journal.keep */
#define JOURNAL_MAX_LINE (16u << 20)           /* longer lines are skipped on read */

enum journal_kind {
    JOURNAL_ROLE_CREATE,
    JOURNAL_ROLE_UPDATE,
    JOURNAL_ROLE_DELETE,
    JOURNAL_GRANT_ADD,
    JOURNAL_GRANT_REMOVE,
};

enum journal_result { JOURNAL_OK, JOURNAL_FAILED, JOURNAL_PENDING };

struct journal_entry {
    const char *cycle;
    uint64_t seq; /* per cycle, from 1, in the order the lines were written */
    const char *job, *target;
    int64_t at_ms; /* wall clock, ms since the epoch ("at" is RFC 3339 UTC with ms) */
    enum journal_kind kind;
    const char *role, *role_id;         /* the target role's name and id (id NULL if unknown) */
    const char *user, *user_id;         /* grants; else NULL */
    const char *division, *division_id; /* grants; NULL: home (or undivided) */
    const char *before, *after;         /* JSON text of an object, or NULL */
    enum journal_result result;
    const char *correlation_id; /* NULL when there was no reply */
    const char *message;        /* failed: the server's message; else NULL */
    const char *undo_of;        /* the cycle an undo took back, else NULL */
};

struct journal;

/* Open (create) {state_dir}/changes.jsonl for appending, mode 0640. max_size 0 = never
 * rotate; keep 0 = a rotation drops the old file. NULL + err on failure. */
struct journal *journal_open(const char *state_dir, uint64_t max_size, unsigned keep, char *err,
                             size_t errlen);
void journal_close(struct journal *j); /* NULL is fine */
/* New rotation limits (a reload's journal: block), from the next append on. */
void journal_set_limits(struct journal *j, uint64_t max_size, unsigned keep);

/* A new cycle id: UTC time and random bits, e.g. "20261204T061530.123Z-3fa9c21b" (unique per
 * cycle, sortable by start time, safe on a command line). */
void journal_new_cycle(char out[JOURNAL_CYCLE_LEN]);
/* The id of a cycle started at epoch_ms with the random bits rnd (journal_new_cycle's work,
 * given its inputs: for tests). */
void journal_cycle_id(char out[JOURNAL_CYCLE_LEN], int64_t epoch_ms, uint32_t rnd);
/* Whether s is short and plain enough to be a cycle id (fits JOURNAL_CYCLE_LEN, only letters,
 * digits, '.' and '-'): what a reader carries over from a file it did not write itself. */
bool journal_cycle_id_plain(const char *s);

/* Append one line (rotating first when it would cross max_size); with `sync` it is fsync'd
 * before this returns. 0, or -1 + err (the caller logs it; a journal that cannot be written
 * never stops a cycle, but is reported). */
int journal_append(struct journal *j, const struct journal_entry *e, bool sync, char *err,
                   size_t errlen);
/* fsync what was appended. 0 / -1 + err. */
int journal_sync(struct journal *j, char *err, size_t errlen);

/* Render one entry as its line (no newline); malloc'd, the caller frees. NULL when the entry
 * cannot become a line the reader takes back (before/after not the text of a JSON object, or
 * the line longer than JOURNAL_MAX_LINE); journal_append reports that as its error. */
char *journal_format(const struct journal_entry *e);
/* Parse one line (no newline needed; need not be NUL-terminated). Calls fn(e, arg) with the
 * entry on success and returns 0, or returns -1 (torn, hostile) without calling it. */
typedef int (*journal_entry_fn)(const struct journal_entry *e, void *arg); /* !=0 stops */
int journal_parse_line(const char *line, size_t len, journal_entry_fn fn, void *arg);

/* Visit every entry of the journal in state_dir, oldest file first, each file in order.
 * Returns 0 (also when there is no journal yet), the callback's non-zero value when it
 * stopped the walk, or -1 + err when a file exists but cannot be read. *skipped (may be NULL)
 * counts the lines that did not parse. */
int journal_read(const char *state_dir, journal_entry_fn fn, void *arg, size_t *skipped, char *err,
                 size_t errlen);

const char *journal_kind_name(enum journal_kind k);     /* "role_create", ... */
const char *journal_result_name(enum journal_result r); /* "ok", "failed", "pending" */

#endif
