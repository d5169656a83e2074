/* fuzz_journal.c — libFuzzer target for the change journal's line parser (journal.h), with a
 * differential round trip: every line journal_parse_line() accepts is formatted again with
 * journal_format(), which must succeed, and the formatted line parsed once more must give the
 * same entry, field by field (strings byte for byte, before/after as the same JSON text, the
 * same seq, time, kind and result). A line the parser refuses must not reach the callback.
 * A violation prints the input and aborts (libFuzzer reports a crash).
 *
 * The same input is also fed to journal_read() as a journal file of its own (split at its
 * newlines, as a crash would leave it), which must never fail on content, only count; for an
 * input of one line it must take or skip it as journal_parse_line() does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rolesync/journal.h"
#include "rolesync/util.h"

static const uint8_t *g_data;
static size_t g_size;

static void violation(const char *what, const char *a, const char *b)
{
    fprintf(stderr, "fuzz_journal: %s\n  first:  %s\n  second: %s\ninput (%zu bytes): %.*s\n", what,
            a ? a : "(null)", b ? b : "(null)", g_size, (int)g_size, (const char *)g_data);
    abort();
}

static void same_str(const char *field, const char *a, const char *b)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
        violation(field, a, b);
}

static int second(const struct journal_entry *b, void *arg)
{
    const struct journal_entry *a = arg;
    char x[64], y[64];
    same_str("cycle", a->cycle, b->cycle);
    same_str("job", a->job, b->job);
    same_str("target", a->target, b->target);
    same_str("role", a->role, b->role);
    same_str("role_id", a->role_id, b->role_id);
    same_str("user", a->user, b->user);
    same_str("user_id", a->user_id, b->user_id);
    same_str("division", a->division, b->division);
    same_str("division_id", a->division_id, b->division_id);
    same_str("before", a->before, b->before);
    same_str("after", a->after, b->after);
    same_str("correlation_id", a->correlation_id, b->correlation_id);
    same_str("message", a->message, b->message);
    same_str("undo_of", a->undo_of, b->undo_of);
    if (a->seq != b->seq || a->at_ms != b->at_ms || a->kind != b->kind || a->result != b->result) {
        snprintf(x, sizeof x, "seq %llu at %lld kind %d result %d", (unsigned long long)a->seq,
                 (long long)a->at_ms, (int)a->kind, (int)a->result);
        snprintf(y, sizeof y, "seq %llu at %lld kind %d result %d", (unsigned long long)b->seq,
                 (long long)b->at_ms, (int)b->kind, (int)b->result);
        violation("numbers", x, y);
    }
    return 0;
}

static int first(const struct journal_entry *e, void *arg)
{
    int *called = arg;
    (*called)++;
    if (!e->cycle || !*e->cycle)
        violation("an accepted line without a cycle", NULL, NULL);
    char *line = journal_format(e);
    if (!line)
        violation("a parsed entry does not format", e->cycle, NULL);
    if (strchr(line, '\n'))
        violation("a formatted line holds a newline", line, NULL);
    struct journal_entry copy = *e;
    if (journal_parse_line(line, strlen(line), second, &copy) != 0)
        violation("a formatted line does not parse", line, NULL);
    free(line);
    return 0;
}

static int count(const struct journal_entry *e, void *arg)
{
    (void)e;
    (*(size_t *)arg)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64];
    g_data = data;
    g_size = size;
    int called = 0;
    int rc = journal_parse_line((const char *)data, size, first, &called);
    if ((rc == 0) != (called == 1))
        violation("the verdict and the callback disagree", rc == 0 ? "accepted" : "refused",
                  called ? "called" : "not called");

    /* the input as a journal file: journal_read takes every line on its own */
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz-journal-XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, JOURNAL_FILE);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    size_t n = 0, skipped = 0;
    if (journal_read(dir, count, &n, &skipped, err, sizeof err) != 0)
        violation("journal_read failed on a readable file", err, NULL);
    /* one line without a newline: the same verdict as journal_parse_line's */
    if (size > 0 && !memchr(data, '\n', size) && (n + skipped != 1 || (n == 1) != (rc == 0)))
        violation("journal_read and journal_parse_line disagree on one line",
                  rc == 0 ? "parse: accepted" : "parse: refused",
                  n ? "read: taken" : "read: skipped");
    unlink(path);
    return 0;
}
