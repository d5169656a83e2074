/* approve.h — approved plans (product.md 4c): the deletion set of a plan, its fingerprint, the
 * subset rule, and where refused sets and approvals are kept in state_dir.
 *
 * Two parts. The first is pure (no I/O; the SHA-256 is OpenSSL's libcrypto): a deletion set
 * names every deletion the guard (plan.h, product.md 4.8, 4a.5, 4a.7) counts, by identities that
 * survive a re-read of the tenants -- never by platform ids or snapshot indexes:
 *   - a role deletion by the target role's name, case-folded (util_fold_into, as the core
 *     matches names);
 *   - a removed grant, and every grant a deleted role takes with it, by (the user's match key,
 *     case-folded; the target role's name, case-folded; the division: none on a target without
 *     divisions (identity), the home marker for the home division whatever its name, `*` for
 *     the all-divisions grant, else the division's name, case-folded).
 * Each deletion is one canonical line (its key):
 *     "role" TAB NAME
 *     "grant" TAB USER TAB ROLE TAB DIV     DIV = "" | "home" | "*" | "=" NAME
 * with backslash, TAB, CR and LF in a field written as \\ \t \r \n, so no field can forge a
 * separator and a division named "home" or "*" (DIV "=home") is not the marker. The canonical
 * encoding of a set is its keys sorted byte-wise, duplicates dropped, each followed by LF; the
 * fingerprint is "sha256:" and the lowercase hex SHA-256 of that text. So the fingerprint
 * depends on which deletions there are, not on the order they were found in or the platform's
 * ids (a role deleted and created again under its name is the same deletion).
 *
 * The subset rule: a fresh plan may apply under an approval when every key of its deletion set
 * is in the approved set; the keys that are not are the deletions that are new (listed by
 * approve_new_items, each with its plan-like label).
 *
 * The second part is the only I/O: files in state_dir, each replaced atomically
 * (status_write_file_atomic: temp file, fsync, rename), job names percent-encoded into file
 * names (util_pct_encode, a leading '.' too), mode 0640:
 *   {state_dir}/refused/JOB.json    the deletion sets of the job's last APPROVE_KEEP refused
 *                                   plans, newest last: {"version": 1, "job", "refusals":
 *                                   [{"fingerprint", "at", "deletions": [{"key", "label"}]}]}
 *   {state_dir}/approvals/JOB.json  an approval waiting for the daemon: {"version": 1, "job",
 *                                   "fingerprint", "approved_at"}; one per job (a newer one
 *                                   replaces it); removed after the cycle that used it.
 * A refused set read back is checked against its fingerprint (a damaged or edited entry is
 * ignored, never trusted as an approval).
 *
 * Ownership: an approve_set owns its items and their strings (copied in); approve_set_free()
 * releases it. Labels and keys hold names and match keys only, never a secret.
 */
#ifndef ROLESYNC_APPROVE_H
#define ROLESYNC_APPROVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rolesync/diff.h"

#define APPROVE_FP_PREFIX "sha256:"
#define APPROVE_FP_LEN 72 /* "sha256:" + 64 hex digits + NUL */
#define APPROVE_KEEP 5    /* refused sets kept per job */

enum approve_div {
    APPROVE_DIV_NONE = 0, /* the target has no divisions (identity) */
    APPROVE_DIV_HOME,     /* the home division, whatever its name */
    APPROVE_DIV_ALL,      /* the all-divisions grant (`*`) */
    APPROVE_DIV_NAMED,    /* another division, by name */
};

struct approve_item {
    char *key;   /* the canonical line (no LF) */
    char *label; /* "- role \"X\"", "- user a@b role \"X\" division \"EMEA\"" */
};

struct approve_set {
    struct approve_item *items; /* sorted by key, unique, once finished */
    size_t n, cap;
    bool finished;
};

/* ---- pure part ---- */

struct approve_set *approve_set_new(void);
void approve_set_free(struct approve_set *s); /* NULL is fine */
/* Add a deletion (names as the target spells them; folded here). `label` NULL: one is made. */
void approve_set_add_role(struct approve_set *s, const char *role);
void approve_set_add_grant(struct approve_set *s, const char *user, const char *role,
                           enum approve_div div, const char *div_name);
/* Add an item by its key and label (copied), as read back from a file. */
void approve_set_add_key(struct approve_set *s, const char *key, const char *label);
/* Sort by key and drop duplicates (the first label wins). Every function below finishes the
 * set first, so callers need not. */
void approve_set_finish(struct approve_set *s);

/* Every deletion of `d` the guard counts: deleted roles, their holders (diff_delete_holders),
 * removed grants. Finished. */
struct approve_set *approve_set_from_diff(const struct diff *d);

/* The canonical encoding (malloc'd, caller frees) and its fingerprint. */
char *approve_encode(struct approve_set *s);
void approve_fingerprint(struct approve_set *s, char out[APPROVE_FP_LEN]);
/* "sha256:" and 64 hex digits; upper case is accepted. Copies the lower-case form to `norm`
 * (APPROVE_FP_LEN bytes) when valid and norm is not NULL. */
bool approve_fingerprint_parse(const char *fp, char norm[APPROVE_FP_LEN]);

/* The items of `fresh` whose key is not in `approved`: their indexes (ascending) into
 * fresh->items in *out (malloc'd, caller frees; NULL when none). Returns how many. */
size_t approve_new_items(struct approve_set *fresh, struct approve_set *approved, size_t **out);

/* ---- state files (the I/O part: approve_store.c) ---- */

/* Record `s` (its fingerprint `fp`) as job's latest refused set, keeping the last APPROVE_KEEP
 * (a set already there moves to the end). Returns 0, or -1 with a message in err. */
int approve_store_refused(const char *state_dir, const char *job, struct approve_set *s,
                          const char *fp, int64_t now_ms, char *err, size_t errlen);
/* The refused set recorded for job under `fp`, or NULL: err is "" when there is none, else why
 * the file could not be read. */
struct approve_set *approve_load_refused(const char *state_dir, const char *job, const char *fp,
                                         char *err, size_t errlen);
/* Record an approval of `fp` for job (replacing the job's earlier one). 0, or -1 + err. */
int approve_record(const char *state_dir, const char *job, const char *fp, int64_t now_ms,
                   char *err, size_t errlen);
/* The job's waiting approval: 1 with its fingerprint in fp, 0 when there is none, -1 with a
 * message in err when the file cannot be read or is damaged. */
int approve_pending(const char *state_dir, const char *job, char fp[APPROVE_FP_LEN], char *err,
                    size_t errlen);
/* Remove the job's approval if it still names `fp` (a newer approval recorded meanwhile stays;
 * a damaged approval file goes too: it can never be used).
 * 0, or -1 + err. */
int approve_consume(const char *state_dir, const char *job, const char *fp, char *err,
                    size_t errlen);

#endif
