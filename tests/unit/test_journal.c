/* test_journal.c — the change journal (journal.h): a line formats and parses back to the same
 * fields (escapes, nulls, nested before/after), the file rotates at max_size keeping .1 .. .KEEP,
 * a torn or hostile line is skipped and counted, journal_read walks the rotated files oldest
 * first, and cycle ids are unique and sort by start time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "rolesync/journal.h"
#include "rolesync/util.h"

static char dir[64];

static void rm_journal(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, JOURNAL_FILE);
    unlink(path);
    for (int i = 1; i <= 12; i++) {
        snprintf(path, sizeof path, "%s/%s.%d", dir, JOURNAL_FILE, i);
        unlink(path);
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rs-journal-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_journal();
    rmdir(dir);
    return 0;
}

/* A deep copy of an entry, so it outlives the callback. */
struct copy {
    char *cycle, *job, *target, *role, *role_id, *user, *user_id, *division, *division_id, *before,
        *after, *correlation_id, *message, *undo_of;
    struct journal_entry e;
};

static void copy_free(struct copy *c)
{
    free(c->cycle), free(c->job), free(c->target), free(c->role), free(c->role_id);
    free(c->user), free(c->user_id), free(c->division), free(c->division_id);
    free(c->before), free(c->after), free(c->correlation_id), free(c->message);
    free(c->undo_of);
    free(c);
}

struct seen {
    struct copy *v[64];
    size_t n;
    int stop_after; /* 0: never */
};

static int collect(const struct journal_entry *e, void *arg)
{
    struct seen *s = arg;
    assert_true(s->n < UTIL_ARRAY_LEN(s->v));
    struct copy *c = xcalloc(1, sizeof(*c));
    c->e = *e;
#define DUP(f) c->e.f = c->f = xstrdup(e->f)
    DUP(cycle), DUP(job), DUP(target), DUP(role), DUP(role_id), DUP(user), DUP(user_id);
    DUP(division), DUP(division_id), DUP(before), DUP(after), DUP(correlation_id);
    DUP(message), DUP(undo_of);
#undef DUP
    s->v[s->n++] = c;
    return s->stop_after && (int)s->n == s->stop_after ? 7 : 0;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        copy_free(s->v[i]);
    s->n = 0;
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* Two JSON texts of objects are the same value. */
static void assert_json_equal(const char *a, const char *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    struct json_object *x = json_tokener_parse(a), *y = json_tokener_parse(b);
    assert_non_null(x);
    assert_non_null(y);
    assert_true(json_object_equal(x, y));
    json_object_put(x);
    json_object_put(y);
}

static void assert_entry_equal(const struct journal_entry *a, const struct journal_entry *b)
{
    assert_string_equal(a->cycle, b->cycle);
    assert_int_equal(a->seq, b->seq);
    assert_str_or_null(a->job, b->job);
    assert_str_or_null(a->target, b->target);
    assert_int_equal(a->at_ms, b->at_ms);
    assert_int_equal(a->kind, b->kind);
    assert_str_or_null(a->role, b->role);
    assert_str_or_null(a->role_id, b->role_id);
    assert_str_or_null(a->user, b->user);
    assert_str_or_null(a->user_id, b->user_id);
    assert_str_or_null(a->division, b->division);
    assert_str_or_null(a->division_id, b->division_id);
    assert_json_equal(a->before, b->before);
    assert_json_equal(a->after, b->after);
    assert_int_equal(a->result, b->result);
    assert_str_or_null(a->correlation_id, b->correlation_id);
    assert_str_or_null(a->message, b->message);
    assert_str_or_null(a->undo_of, b->undo_of);
}

static const struct journal_entry delete_entry = {
    .cycle = "20261204T061530Z-3fa9c21b",
    .seq = 3,
    .job = "prod-to-dev/eu",
    .target = "eu",
    .at_ms = 1796364930123,
    .kind = JOURNAL_ROLE_DELETE,
    .role = "Agents \"quoted\" \\ back/slash\n\ttab \xc3\xa9t\xc3\xa9",
    .role_id = "r-1",
    .before = "{\"name\":\"Agents\",\"description\":null,\"definition\":{\"permissionPolicies\":"
              "[{\"domain\":\"routing\",\"actionSet\":[\"view\",\"edit\"],\"conditions\":"
              "{\"x\":[1,2.5,true,null,{\"y\":\"\\u0001\"}]}}]},"
              "\"holders\":[{\"user\":\"a@x\",\"user_id\":\"u1\",\"division\":\"*\","
              "\"division_id\":\"*\"}]}",
    .result = JOURNAL_PENDING,
};

static void test_round_trip(void **state)
{
    (void)state;
    struct seen s = {0};
    char *line = journal_format(&delete_entry);
    assert_non_null(line);
    assert_null(strchr(line, '\n'));  /* one line, whatever the strings hold */
    assert_null(strstr(line, "\\/")); /* no slash escapes */
    /* before is nested JSON inside the line, not a string holding JSON */
    assert_non_null(strstr(line, "\"before\":{\"name\":\"Agents\""));
    /* absent values are JSON null, and every field is named */
    assert_non_null(strstr(line, "\"user\":null"));
    assert_non_null(strstr(line, "\"after\":null"));
    assert_non_null(strstr(line, "\"undo_of\":null"));
    assert_non_null(strstr(line, "\"at\":\"2026-12-04T06:15:30.123Z\""));
    assert_non_null(strstr(line, "\"result\":\"pending\""));
    assert_int_equal(journal_parse_line(line, strlen(line), collect, &s), 0);
    assert_int_equal(s.n, 1);
    assert_entry_equal(&s.v[0]->e, &delete_entry);
    free(line);
    seen_free(&s);

    /* a grant with every optional string set, an undo's line */
    struct journal_entry g = {.cycle = "c",
                              .seq = 1,
                              .job = "j",
                              .target = "t",
                              .at_ms = 0,
                              .kind = JOURNAL_GRANT_REMOVE,
                              .role = "R",
                              .role_id = "rid",
                              .user = "u@x",
                              .user_id = "uid",
                              .division = "Sales",
                              .division_id = "d1",
                              .result = JOURNAL_FAILED,
                              .correlation_id = "corr-1",
                              .message = "409 \"conflict\"",
                              .undo_of = "20261204T000000Z-00000000"};
    line = journal_format(&g);
    assert_non_null(line);
    assert_non_null(strstr(line, "\"at\":\"1970-01-01T00:00:00.000Z\""));
    assert_int_equal(journal_parse_line(line, strlen(line), collect, &s), 0);
    assert_entry_equal(&s.v[0]->e, &g);
    free(line);
    seen_free(&s);

    /* before/after must be the text of an object */
    struct journal_entry bad = g;
    bad.after = "[1,2]";
    assert_null(journal_format(&bad));
    bad.after = "{\"a\":";
    assert_null(journal_format(&bad));
    bad.after = "\"text\"";
    assert_null(journal_format(&bad));

    /* the line need not be NUL-terminated */
    line = journal_format(&g);
    size_t n = strlen(line);
    char *copy = xmalloc(n + 5);
    memcpy(copy, line, n);
    memcpy(copy + n, "XXXX", 4);
    assert_int_equal(journal_parse_line(copy, n, NULL, NULL), 0);
    assert_int_equal(journal_parse_line(copy, n + 4, NULL, NULL), -1); /* trailing data */
    free(copy);
    free(line);
}

static void test_hostile_lines(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "[1,2,3]",
        "\"a string\"",
        "42",
        "null",
        "{}",
        "{\"cycle\":\"c\",\"seq\":1,\"at\":\"2026-12-04T06:15:30.123Z\",\"kind\":\"role_create\"",
        "{\"cycle\":\"c\",\"seq\":1,\"at\":\"2026-12-04T06:15:30.123Z\",\"kind\":\"role_nuke\","
        "\"result\":\"ok\"}",
        "{\"cycle\":\"c\",\"seq\":1,\"at\":\"2026-12-04T06:15:30.123Z\",\"kind\":\"grant_add\","
        "\"result\":\"maybe\"}",
        "{\"cycle\":5,\"seq\":1,\"at\":\"2026-12-04T06:15:30.123Z\",\"kind\":\"grant_add\","
        "\"result\":\"ok\"}",
        "{\"cycle\":\"c\",\"seq\":\"1\",\"at\":\"2026-12-04T06:15:30.123Z\",\"kind\":"
        "\"grant_add\",\"result\":\"ok\"}",
        "{\"cycle\":\"c\",\"seq\":-1,\"at\":\"2026-12-04T06:15:30.123Z\",\"kind\":\"grant_add\","
        "\"result\":\"ok\"}",
        "{\"cycle\":\"c\",\"seq\":1,\"at\":\"yesterday\",\"kind\":\"grant_add\",\"result\":\"ok\"}",
        "{\"cycle\":\"c\",\"seq\":1,\"at\":\"2026-12-04T06:15:30.123Z\",\"kind\":\"grant_add\","
        "\"result\":\"ok\",\"role\":[\"x\"]}",
        "{\"cycle\":\"c\",\"seq\":1,\"at\":\"2026-12-04T06:15:30.123Z\",\"kind\":\"grant_add\","
        "\"result\":\"ok\",\"before\":\"{}\"}",
        "{\"cycle\":\"c\",\"seq\":1,\"at\":\"2026-12-04T06:15:30.123Z\",\"kind\":\"grant_add\","
        "\"result\":\"ok\",\"user\":7}",
        "{\"cycle\":\"c\",\"seq\":1,\"at\":\"2026-12-04T06:15:30.123Z\",\"kind\":\"grant_add\","
        "\"result\":\"ok\"} trailing",
        "{'cycle':'c'}",
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++)
        assert_int_equal(journal_parse_line(bad[i], strlen(bad[i]), NULL, NULL), -1);
    /* the smallest good line: the five required fields, everything else null */
    const char *ok = "{\"cycle\":\"c\",\"seq\":1,\"at\":\"2026-12-04T06:15:30Z\",\"kind\":"
                     "\"grant_add\",\"result\":\"ok\"}";
    struct seen s = {0};
    assert_int_equal(journal_parse_line(ok, strlen(ok), collect, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.v[0]->e.at_ms, 1796364930000);
    assert_null(s.v[0]->e.role);
    seen_free(&s);
    /* a line with a NUL inside */
    char nul[] = "{\"cycle\":\"c\0\",\"seq\":1}";
    assert_int_equal(journal_parse_line(nul, sizeof nul - 1, NULL, NULL), -1);
}

static void write_file(const char *name, const char *text)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static struct journal_entry grant(const char *cycle, uint64_t seq, const char *user)
{
    return (struct journal_entry){.cycle = cycle,
                                  .seq = seq,
                                  .job = "j",
                                  .target = "t",
                                  .at_ms = 1796364930000,
                                  .kind = JOURNAL_GRANT_ADD,
                                  .role = "R",
                                  .user = user,
                                  .result = JOURNAL_OK};
}

static void test_torn_and_skipped(void **state)
{
    (void)state;
    char err[256] = "";
    struct journal *j = journal_open(dir, 0, 4, err, sizeof err);
    assert_non_null(j);
    struct journal_entry a = grant("c1", 1, "a@x"), b = grant("c1", 2, "b@x");
    assert_int_equal(journal_append(j, &a, false, err, sizeof err), 0);
    journal_close(j);
    /* a hostile line in the middle, then a torn last line (kill -9 mid-write) */
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, JOURNAL_FILE);
    FILE *f = fopen(path, "a");
    fputs("{\"cycle\":\"c1\",\"seq\":true}\nnot json at all\n{\"cycle\":\"c1\",\"seq\":2,\"jo", f);
    fclose(f);
    struct seen s = {0};
    size_t skipped = 99;
    assert_int_equal(journal_read(dir, collect, &s, &skipped, err, sizeof err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(skipped, 3);
    seen_free(&s);
    /* reopening ends the torn line, so the next line is not glued to it */
    j = journal_open(dir, 0, 4, err, sizeof err);
    assert_int_equal(journal_append(j, &b, true, err, sizeof err), 0);
    journal_close(j);
    assert_int_equal(journal_read(dir, collect, &s, &skipped, err, sizeof err), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.v[1]->e.user, "b@x");
    assert_int_equal(skipped, 3);
    seen_free(&s);

    /* a line longer than JOURNAL_MAX_LINE is skipped without ending the walk */
    f = fopen(path, "a");
    fputs("{\"cycle\":\"", f);
    for (size_t i = 0; i < JOURNAL_MAX_LINE / 64 + 1; i++)
        fputs("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", f);
    fputs("\",\"seq\":1,\"at\":\"2026-12-04T06:15:30Z\",\"kind\":\"grant_add\",\"result\":"
          "\"ok\"}\n",
          f);
    fclose(f);
    j = journal_open(dir, 0, 4, err, sizeof err);
    struct journal_entry c = grant("c2", 1, "c@x");
    assert_int_equal(journal_append(j, &c, true, err, sizeof err), 0);
    journal_close(j);
    assert_int_equal(journal_read(dir, collect, &s, &skipped, err, sizeof err), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.v[2]->e.cycle, "c2");
    assert_int_equal(skipped, 4);
    seen_free(&s);
    /* the callback can stop the walk; its value comes back */
    s.stop_after = 2;
    assert_int_equal(journal_read(dir, collect, &s, NULL, err, sizeof err), 7);
    assert_int_equal(s.n, 2);
    seen_free(&s);
    /* and a huge line is refused when formatting, not written unreadable */
    char *huge = xmalloc(JOURNAL_MAX_LINE + 2);
    memset(huge, 'h', JOURNAL_MAX_LINE + 1);
    huge[JOURNAL_MAX_LINE + 1] = '\0';
    struct journal_entry h = grant("c3", 1, huge);
    assert_null(journal_format(&h));
    j = journal_open(dir, 0, 4, err, sizeof err);
    assert_int_equal(journal_append(j, &h, false, err, sizeof err), -1);
    assert_true(strlen(err) > 0);
    assert_null(strstr(err, "hhhhhhhh")); /* the error text does not carry the line */
    journal_close(j);
    free(huge);
}

static void test_no_journal_yet(void **state)
{
    (void)state;
    char err[256] = "";
    size_t skipped = 5;
    struct seen s = {0};
    assert_int_equal(journal_read(dir, collect, &s, &skipped, err, sizeof err), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(journal_read("/nonexistent/rs-journal", collect, &s, NULL, err, sizeof err),
                     0);
    /* a state_dir that cannot be opened for writing */
    assert_null(journal_open("/nonexistent/rs-journal", 0, 4, err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
}

static size_t file_size(const char *name)
{
    char path[160];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (size_t)st.st_size : (size_t)-1;
}

static void test_rotation(void **state)
{
    (void)state;
    char err[256] = "", cyc[16], user[32];
    struct journal_entry e0 = grant("c00", 1, "u000@x");
    char *line = journal_format(&e0);
    size_t linelen = strlen(line) + 1; /* every line below is this long */
    free(line);
    /* room for 3 lines a file, keep 2: .1 and .2, the oldest dropped */
    struct journal *j = journal_open(dir, 3 * linelen, 2, err, sizeof err);
    assert_non_null(j);
    for (int i = 0; i < 11; i++) {
        snprintf(cyc, sizeof cyc, "c%02d", i);
        snprintf(user, sizeof user, "u%03d@x", i);
        struct journal_entry e = grant(cyc, 1, user);
        assert_int_equal(journal_append(j, &e, false, err, sizeof err), 0);
    }
    assert_int_equal(journal_sync(j, err, sizeof err), 0);
    journal_close(j);
    /* 11 lines: .2 holds 3..5, .1 holds 6..8, the current file 9..10; 0..2 dropped */
    assert_int_equal(file_size(JOURNAL_FILE), 2 * linelen);
    assert_int_equal(file_size(JOURNAL_FILE ".1"), 3 * linelen);
    assert_int_equal(file_size(JOURNAL_FILE ".2"), 3 * linelen);
    assert_int_equal(file_size(JOURNAL_FILE ".3"), (size_t)-1);
    struct seen s = {0};
    size_t skipped;
    assert_int_equal(journal_read(dir, collect, &s, &skipped, err, sizeof err), 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(s.n, 8);
    for (size_t i = 0; i < s.n; i++) {
        snprintf(cyc, sizeof cyc, "c%02zu", i + 3);
        assert_string_equal(s.v[i]->e.cycle, cyc); /* oldest first, across the files */
    }
    seen_free(&s);

    /* a rotated file left from a larger keep is still read, in its place (oldest) */
    write_file(JOURNAL_FILE ".7", "{\"cycle\":\"old\",\"seq\":1,\"at\":\"2026-01-01T00:00:00Z\","
                                  "\"kind\":\"role_create\",\"result\":\"ok\"}\n");
    write_file(JOURNAL_FILE ".x", "{\"cycle\":\"ignored\"}\n");
    assert_int_equal(journal_read(dir, collect, &s, &skipped, err, sizeof err), 0);
    assert_int_equal(s.n, 9);
    assert_string_equal(s.v[0]->e.cycle, "old");
    seen_free(&s);
    char path[160];
    snprintf(path, sizeof path, "%s/%s.x", dir, JOURNAL_FILE);
    unlink(path);
    rm_journal();

    /* keep 0: a rotation drops the old file */
    j = journal_open(dir, 2 * linelen, 0, err, sizeof err);
    for (int i = 0; i < 5; i++) {
        struct journal_entry e = grant("k00", (uint64_t)i + 1, "u000@x");
        assert_int_equal(journal_append(j, &e, true, err, sizeof err), 0);
    }
    journal_close(j);
    assert_int_equal(file_size(JOURNAL_FILE), linelen);
    assert_int_equal(file_size(JOURNAL_FILE ".1"), (size_t)-1);
    rm_journal();

    /* max_size 0: never rotates; a line larger than max_size goes to a file of its own */
    j = journal_open(dir, 0, 2, err, sizeof err);
    for (int i = 0; i < 5; i++)
        assert_int_equal(journal_append(j, &e0, false, err, sizeof err), 0);
    journal_close(j);
    assert_int_equal(file_size(JOURNAL_FILE), 5 * linelen);
    j = journal_open(dir, linelen / 2, 2, err, sizeof err);
    assert_int_equal(journal_append(j, &e0, false, err, sizeof err), 0);
    assert_int_equal(journal_append(j, &e0, false, err, sizeof err), 0);
    journal_close(j);
    assert_int_equal(file_size(JOURNAL_FILE), linelen);
    assert_int_equal(file_size(JOURNAL_FILE ".1"), linelen);
    assert_int_equal(file_size(JOURNAL_FILE ".2"), 5 * linelen);
    /* the file's mode: 0640 */
    char p[160];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, JOURNAL_FILE);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0027, 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_cycle_ids(void **state)
{
    (void)state;
    char ids[200][JOURNAL_CYCLE_LEN];
    for (int i = 0; i < 200; i++) {
        journal_new_cycle(ids[i]);
        /* date, 'T', time to the millisecond, 'Z', '-', eight hex digits: safe on a
         * command line, and plain enough for a reader to carry over */
        assert_int_equal(strlen(ids[i]), 29);
        assert_int_equal(ids[i][8], 'T');
        assert_int_equal(ids[i][15], '.');
        assert_int_equal(ids[i][19], 'Z');
        assert_int_equal(ids[i][20], '-');
        assert_int_equal(strspn(ids[i], "0123456789TZ.-abcdef"), 29);
        assert_true(journal_cycle_id_plain(ids[i]));
    }
    qsort(ids, 200, JOURNAL_CYCLE_LEN, cmp_str);
    for (int i = 1; i < 200; i++)
        assert_int_not_equal(strcmp(ids[i - 1], ids[i]), 0); /* unique */
    /* sortable by start time, whatever the random bits */
    char a[JOURNAL_CYCLE_LEN], a2[JOURNAL_CYCLE_LEN], b[JOURNAL_CYCLE_LEN], c[JOURNAL_CYCLE_LEN];
    journal_cycle_id(a, 1796364930123, 0xffffffffu);
    journal_cycle_id(a2, 1796364930124, 0); /* the same second, a millisecond later */
    journal_cycle_id(b, 1796364931000, 0);
    journal_cycle_id(c, 1896364931000, 0x12);
    assert_string_equal(a, "20261204T061530.123Z-ffffffff");
    assert_true(strcmp(a, a2) < 0);
    assert_true(strcmp(a2, b) < 0);
    assert_true(strcmp(b, c) < 0);
    assert_string_equal(b, "20261204T061531.000Z-00000000");
    assert_string_equal(c, "20300203T160211.000Z-00000012");
    /* what a reader does not carry over: spaces, quotes, control bytes, an id too long */
    assert_true(journal_cycle_id_plain("20261204T061530Z-3fa9c21b")); /* the first format */
    assert_false(journal_cycle_id_plain("2026 1204"));
    assert_false(journal_cycle_id_plain("a\"b"));
    assert_false(journal_cycle_id_plain("a\nb"));
    char lng[JOURNAL_CYCLE_LEN + 1];
    memset(lng, 'a', JOURNAL_CYCLE_LEN);
    lng[JOURNAL_CYCLE_LEN] = '\0';
    assert_false(journal_cycle_id_plain(lng));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_hostile_lines),
        cmocka_unit_test_setup_teardown(test_torn_and_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_journal_yet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test(test_cycle_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
