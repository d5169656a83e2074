/* journal.c — the change journal, {state_dir}/changes.jsonl (contract in journal.h). */
#include "rolesync/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rolesync/http.h"
#include "rolesync/util.h"

#define JOURNAL_MAX_ROTATED 1000u /* journal_read looks at .1 .. .1000 at most */
#define READ_CHUNK (64u << 10)

struct journal {
    char *dir, *path;
    int fd;
    uint64_t max_size;
    unsigned keep;
    bool dirty; /* appended since the last fsync */
};

static const char *const kind_names[] = {"role_create", "role_update", "role_delete", "grant_add",
                                         "grant_remove"};
static const char *const result_names[] = {"ok", "failed", "pending"};

const char *journal_kind_name(enum journal_kind k)
{
    return (unsigned)k < UTIL_ARRAY_LEN(kind_names) ? kind_names[k] : "?";
}

const char *journal_result_name(enum journal_result r)
{
    return (unsigned)r < UTIL_ARRAY_LEN(result_names) ? result_names[r] : "?";
}

/* ---- cycle ids ------------------------------------------------------------------------- */

void journal_cycle_id(char out[JOURNAL_CYCLE_LEN], int64_t epoch_ms, uint32_t rnd)
{
    time_t t = (time_t)(epoch_ms / 1000);
    struct tm tm;
    char stamp[24];
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    /* the milliseconds too: two cycles started in one second (a --once run right after
     * another, a restart) still sort by start time and not by their random bits */
    snprintf(out, JOURNAL_CYCLE_LEN, "%s.%03dZ-%08x", stamp, (int)(epoch_ms % 1000), (unsigned)rnd);
}

bool journal_cycle_id_plain(const char *s)
{
    size_t n = strlen(s);
    return n < JOURNAL_CYCLE_LEN &&
           strspn(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-") == n;
}

void journal_new_cycle(char out[JOURNAL_CYCLE_LEN])
{
    uint32_t rnd;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
        /* No entropy yet (early boot): the time's nanoseconds, the pid and a counter still keep
         * two cycles of this process apart, which is what the id is for. */
        static uint32_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rnd = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16) ^ ++counter * 2654435761u;
    }
    journal_cycle_id(out, util_now_ms(), rnd);
}

/* ---- one line ---------------------------------------------------------------------------- */

/* RFC 3339 UTC with milliseconds: 2026-12-04T06:15:30.123Z */
static void rfc3339_ms(char *buf, size_t n, int64_t ms)
{
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    time_t t = (time_t)sec;
    struct tm tm = {0};
    gmtime_r(&t, &tm);
    /* four-digit years, whatever strftime's %Y does below 1000: the reader wants four */
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - sec * 1000));
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* The inverse of rfc3339_ms; the fraction is optional (1 to 3 digits). 0 / -1. */
static int parse_rfc3339_ms(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac = 0;
    size_t n = strlen(s);
    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        int nd = 0;
        for (p++; *p >= '0' && *p <= '9' && nd < 3; p++, nd++)
            frac = frac * 10 + (*p - '0');
        if (nd == 0)
            return -1;
        for (; nd < 3; nd++)
            frac *= 10;
    }
    if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return 0;
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
    json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

/* before/after: the JSON text of an object, parsed into the line. -1 when it is not one. */
static int add_obj(struct json_object *o, const char *key, const char *text)
{
    if (!text) {
        json_object_object_add(o, key, NULL);
        return 0;
    }
    char perr[128];
    struct json_object *v = http_parse_json(text, strlen(text), perr, sizeof perr);
    if (!v || !json_object_is_type(v, json_type_object)) {
        json_object_put(v);
        return -1;
    }
    json_object_object_add(o, key, v);
    return 0;
}

#define LINE_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

char *journal_format(const struct journal_entry *e)
{
    char at[40];
    struct json_object *o = json_object_new_object();

    rfc3339_ms(at, sizeof at, e->at_ms);
    add_str(o, "cycle", e->cycle);
    json_object_object_add(o, "seq", json_object_new_int64((int64_t)e->seq));
    add_str(o, "job", e->job);
    add_str(o, "target", e->target);
    add_str(o, "at", at);
    add_str(o, "kind", journal_kind_name(e->kind));
    add_str(o, "role", e->role);
    add_str(o, "role_id", e->role_id);
    add_str(o, "user", e->user);
    add_str(o, "user_id", e->user_id);
    add_str(o, "division", e->division);
    add_str(o, "division_id", e->division_id);
    if (add_obj(o, "before", e->before) || add_obj(o, "after", e->after)) {
        json_object_put(o);
        return NULL;
    }
    add_str(o, "result", journal_result_name(e->result));
    add_str(o, "correlation_id", e->correlation_id);
    add_str(o, "message", e->message);
    add_str(o, "undo_of", e->undo_of);

    char *line = xstrdup(json_object_to_json_string_ext(o, LINE_FLAGS));
    json_object_put(o);
    /* What is written must be readable: a line the reader would skip (too long, nested deeper
     * than the parser takes) is refused here, where the caller can still report it. Only
     * before/after can nest, so only a role's line is parsed back: a grant's line is flat
     * strings json-c escaped itself, and re-parsing each of an initial mirror's 50,000 grant
     * lines was a third of the journal's cost. */
    if (strlen(line) > JOURNAL_MAX_LINE ||
        ((e->before || e->after) && journal_parse_line(line, strlen(line), NULL, NULL) != 0)) {
        free(line);
        return NULL;
    }
    return line;
}

/* A string member, or NULL for null/absent. -1 for any other type. */
static int get_str(struct json_object *o, const char *key, const char **out)
{
    struct json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    *out = json_object_get_string(v);
    return 0;
}

static int get_obj(struct json_object *o, const char *key, const char **out)
{
    struct json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_object))
        return -1;
    *out = json_object_to_json_string_ext(v, LINE_FLAGS);
    return 0;
}

static int name_index(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

/* 0 with *cb the callback's value, or -1 (not an entry; the callback is not called). */
static int parse(const char *line, size_t len, journal_entry_fn fn, void *arg, int *cb)
{
    char perr[128];
    struct json_object *o, *seq;
    struct journal_entry e = {0};
    const char *at, *kind, *result;

    if (len == 0 || len > JOURNAL_MAX_LINE)
        return -1;
    o = http_parse_json(line, len, perr, sizeof perr);
    if (!o || !json_object_is_type(o, json_type_object))
        goto bad;
    /* cycle, seq, at, kind and result are what every reader relies on: they must be there. */
    if (get_str(o, "cycle", &e.cycle) || !e.cycle || !*e.cycle ||
        !json_object_object_get_ex(o, "seq", &seq) || !json_object_is_type(seq, json_type_int) ||
        json_object_get_int64(seq) < 0 || get_str(o, "at", &at) || !at ||
        parse_rfc3339_ms(at, &e.at_ms) || get_str(o, "kind", &kind) ||
        get_str(o, "result", &result))
        goto bad;
    int k = name_index(kind, kind_names, UTIL_ARRAY_LEN(kind_names));
    int r = name_index(result, result_names, UTIL_ARRAY_LEN(result_names));
    if (k < 0 || r < 0)
        goto bad;
    e.seq = (uint64_t)json_object_get_int64(seq);
    e.kind = (enum journal_kind)k;
    e.result = (enum journal_result)r;
    if (get_str(o, "job", &e.job) || get_str(o, "target", &e.target) ||
        get_str(o, "role", &e.role) || get_str(o, "role_id", &e.role_id) ||
        get_str(o, "user", &e.user) || get_str(o, "user_id", &e.user_id) ||
        get_str(o, "division", &e.division) || get_str(o, "division_id", &e.division_id) ||
        get_obj(o, "before", &e.before) || get_obj(o, "after", &e.after) ||
        get_str(o, "correlation_id", &e.correlation_id) || get_str(o, "message", &e.message) ||
        get_str(o, "undo_of", &e.undo_of))
        goto bad;
    /* get_obj's texts live in their sub-objects' own buffers, until o is put. */
    *cb = fn ? fn(&e, arg) : 0;
    json_object_put(o);
    return 0;
bad:
    json_object_put(o);
    return -1;
}

int journal_parse_line(const char *line, size_t len, journal_entry_fn fn, void *arg)
{
    int cb;
    return parse(line, len, fn, arg, &cb);
}

/* ---- the file ----------------------------------------------------------------------------- */

static int open_file(struct journal *j, char *err, size_t errlen)
{
    j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (j->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", j->path, strerror(errno));
        return -1;
    }
    /* A crash may have left a torn last line; the next line must not be glued to it (the
     * reader would lose both), so end it first. */
    struct stat st;
    char last;
    if (fstat(j->fd, &st) == 0 && st.st_size > 0) {
        int rfd = open(j->path, O_RDONLY | O_CLOEXEC);
        if (rfd >= 0) {
            if (pread(rfd, &last, 1, st.st_size - 1) == 1 && last != '\n' &&
                write(j->fd, "\n", 1) == 1)
                j->dirty = true;
            close(rfd);
        }
    }
    return 0;
}

struct journal *journal_open(const char *state_dir, uint64_t max_size, unsigned keep, char *err,
                             size_t errlen)
{
    struct journal *j = xcalloc(1, sizeof(*j));
    j->dir = xstrdup(state_dir);
    j->path = xasprintf("%s/%s", state_dir, JOURNAL_FILE);
    j->max_size = max_size;
    j->keep = keep;
    if (open_file(j, err, errlen) != 0) {
        journal_close(j);
        return NULL;
    }
    return j;
}

void journal_close(struct journal *j)
{
    if (!j)
        return;
    if (j->fd >= 0) {
        if (j->dirty)
            fsync(j->fd);
        close(j->fd);
    }
    free(j->dir);
    free(j->path);
    free(j);
}

void journal_set_limits(struct journal *j, uint64_t max_size, unsigned keep)
{
    if (!j)
        return;
    j->max_size = max_size;
    j->keep = keep;
}

int journal_sync(struct journal *j, char *err, size_t errlen)
{
    if (!j || j->fd < 0) {
        snprintf(err, errlen, "journal is not open");
        return -1;
    }
    if (!j->dirty)
        return 0;
    if (fsync(j->fd) != 0) {
        snprintf(err, errlen, "cannot fsync %s: %s", j->path, strerror(errno));
        return -1;
    }
    j->dirty = false;
    return 0;
}

/* changes.jsonl -> .1 -> ... -> .KEEP, the oldest dropped; then a fresh changes.jsonl. The
 * current file is fsync'd first so what it holds is durable under its new name. */
static int rotate(struct journal *j, char *err, size_t errlen)
{
    char from[4096], to[4096], ignored[8];
    if (j->dirty)
        fsync(j->fd);
    j->dirty = false;
    close(j->fd);
    j->fd = -1;
    if (j->keep == 0) {
        if (unlink(j->path) != 0 && errno != ENOENT) {
            snprintf(err, errlen, "cannot remove %s: %s", j->path, strerror(errno));
            goto keep_appending;
        }
    } else {
        for (unsigned i = j->keep; i > 1; i--) {
            snprintf(from, sizeof from, "%s.%u", j->path, i - 1);
            snprintf(to, sizeof to, "%s.%u", j->path, i);
            if (rename(from, to) != 0 && errno != ENOENT) {
                snprintf(err, errlen, "cannot rename %s: %s", from, strerror(errno));
                goto keep_appending;
            }
        }
        snprintf(to, sizeof to, "%s.1", j->path);
        if (rename(j->path, to) != 0 && errno != ENOENT) {
            snprintf(err, errlen, "cannot rename %s: %s", j->path, strerror(errno));
            goto keep_appending;
        }
    }
    /* Make the renames durable (a file system that cannot fsync a directory just does not). */
    int dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return open_file(j, err, errlen);
keep_appending:
    /* The rotation failed: the line is not written (the caller reports it), but the next ones
     * still go to the current file rather than nowhere. */
    open_file(j, ignored, sizeof ignored);
    return -1;
}

/* Another process (a --once beside the daemon) may have rotated the file under us: our fd then
 * still points at the renamed one. Reopen when the path is a different file now. */
static void follow_rotation(struct journal *j)
{
    struct stat a, b;
    char ignored[8];
    if (j->fd >= 0 && fstat(j->fd, &a) == 0 &&
        (stat(j->path, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)) {
        if (j->dirty)
            fsync(j->fd);
        j->dirty = false;
        close(j->fd);
        open_file(j, ignored, sizeof ignored);
    }
}

int journal_append(struct journal *j, const struct journal_entry *e, bool sync, char *err,
                   size_t errlen)
{
    if (!j) {
        snprintf(err, errlen, "journal is not open");
        return -1;
    }
    char *line = journal_format(e);
    if (!line) {
        snprintf(err, errlen,
                 "change of %s cannot be journaled (before/after not a JSON "
                 "object, or the line too long)",
                 e->role ? e->role : "?");
        return -1;
    }
    follow_rotation(j);
    if (j->fd < 0 && open_file(j, err, errlen) != 0) {
        free(line);
        return -1;
    }
    size_t n = strlen(line);
    line[n] = '\n'; /* the NUL's byte; the buffer is not a C string from here on */
    struct stat st;
    if (j->max_size > 0 && fstat(j->fd, &st) == 0 && st.st_size > 0 &&
        (uint64_t)st.st_size + n + 1 > j->max_size && rotate(j, err, errlen) != 0) {
        free(line);
        return -1;
    }
    /* One write(2) per line with O_APPEND: a crash tears at most this line. */
    ssize_t w;
    do
        w = write(j->fd, line, n + 1);
    while (w < 0 && errno == EINTR);
    free(line);
    if (w != (ssize_t)(n + 1)) {
        snprintf(err, errlen, "cannot write %s: %s", j->path,
                 w < 0 ? strerror(errno) : "short write");
        return -1;
    }
    j->dirty = true;
    return sync ? journal_sync(j, err, errlen) : 0;
}

/* ---- reading ----------------------------------------------------------------------------- */

struct reader {
    journal_entry_fn fn;
    void *arg;
    size_t skipped;
};

/* One file, line by line in bounded memory: a line longer than JOURNAL_MAX_LINE is skipped
 * without being held. Returns 0, the callback's stop value, or -1 + err. */
static int read_file(const char *path, struct reader *rd, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char *chunk = xmalloc(READ_CHUNK), *line = NULL;
    size_t len = 0, cap = 0, got;
    bool overlong = false;
    int rc = 0;
    while (rc == 0 && (got = fread(chunk, 1, READ_CHUNK, f)) > 0) {
        size_t i = 0;
        while (rc == 0 && i < got) {
            char *nl = memchr(chunk + i, '\n', got - i);
            size_t piece = (nl ? (size_t)(nl - chunk) : got) - i;
            if (!overlong) {
                if (len + piece > JOURNAL_MAX_LINE) {
                    overlong = true;
                    len = 0;
                } else {
                    util_grow((void **)&line, &cap, len + piece + 1, 1);
                    memcpy(line + len, chunk + i, piece);
                    len += piece;
                }
            }
            i += piece;
            if (!nl)
                break;
            i++; /* the newline */
            if (overlong)
                rd->skipped++;
            else if (len > 0) {
                if (parse(line, len, rd->fn, rd->arg, &rc) < 0)
                    rd->skipped++;
            }
            len = 0;
            overlong = false;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        rc = -1;
    }
    /* A last line without its newline: a torn write, or a complete line whose newline was
     * lost; parse it like any other (a torn one fails and is counted). */
    if (rc == 0 && (overlong || len > 0)) {
        if (overlong || parse(line, len, rd->fn, rd->arg, &rc) < 0)
            rd->skipped++;
    }
    free(line);
    free(chunk);
    fclose(f);
    return rc;
}

static int cmp_desc(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int journal_read(const char *state_dir, journal_entry_fn fn, void *arg, size_t *skipped, char *err,
                 size_t errlen)
{
    struct reader rd = {.fn = fn, .arg = arg};
    unsigned *nums = NULL;
    size_t n = 0, cap = 0;
    const size_t base = strlen(JOURNAL_FILE);
    int rc = 0;

    if (skipped)
        *skipped = 0;
    DIR *d = opendir(state_dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", state_dir, strerror(errno));
        return -1;
    }
    /* The rotated files, whatever keep is now (it may have been larger before). */
    for (struct dirent *de; (de = readdir(d));) {
        const char *s = de->d_name;
        /* changes.jsonl.N: digits only, no leading zero (strtoul alone takes " +1") */
        if (strncmp(s, JOURNAL_FILE, base) != 0 || s[base] != '.' || s[base + 1] < '1' ||
            s[base + 1] > '9')
            continue;
        char *end;
        unsigned long v = strtoul(s + base + 1, &end, 10);
        if (*end || v > JOURNAL_MAX_ROTATED)
            continue;
        util_grow((void **)&nums, &cap, n + 1, sizeof(*nums));
        nums[n++] = (unsigned)v;
    }
    closedir(d);
    if (n > 1)
        qsort(nums, n, sizeof(*nums), cmp_desc);
    for (size_t i = 0; rc == 0 && i <= n; i++) {
        char *path = i < n ? xasprintf("%s/%s.%u", state_dir, JOURNAL_FILE, nums[i])
                           : xasprintf("%s/%s", state_dir, JOURNAL_FILE);
        rc = read_file(path, &rd, err, errlen);
        free(path);
    }
    free(nums);
    if (skipped)
        *skipped = rd.skipped;
    return rc;
}
