/* history.h — `rolesyncd --history [N]`: the last N cycles of the change journal (product.md
 * 4c, journal.h), one line each, oldest first.
 *
 * A cycle is the lines with one `cycle` id; cycles are ordered by their first line in the
 * journal (the order they began writing, across rotated files). Each line of output:
 *
 *   CYCLE  JOB  TARGET  START  roles +C ~U -D, grants +A -R[, F failed][, P in doubt][, undo of X]
 *
 * START is the first line's `at`. The counts are the lines with result ok per kind (a role
 * deletion counted once, by its outcome line); F the lines with result failed; P the role
 * deletions whose "pending" line has no outcome line (the process died with the DELETE in
 * flight: whether it happened is known only from a fresh read). "undo of X" when the cycle's
 * lines carry undo_of. When journal lines were skipped as unreadable (journal.h: torn, hostile),
 * a last line on `out` says how many.
 *
 * Ownership: nothing outlives the call.
 */
#ifndef ROLESYNC_HISTORY_H
#define ROLESYNC_HISTORY_H

#include <stddef.h>
#include <stdio.h>

#define HISTORY_DEFAULT_CYCLES 10u

/* Print the last `n` cycles (n >= 1) of the journal in state_dir to `out`; "no changes
 * journaled" when it holds none (or does not exist). 0, or -1 + err when a journal file
 * exists but cannot be read. */
int history_print(const char *state_dir, size_t n, FILE *out, char *err, size_t errlen);

#endif
