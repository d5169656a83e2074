/* test_log.c — the stderr event logger: line format, journald mode, levels, quoting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rolesync/log.h"
#include "rolesync/util.h"

/* Captures what the logger writes through log_set_stream. */
struct capture {
    FILE *f;
    char *buf;
    size_t len;
};

static void cap_start(struct capture *c, int journald)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
    log_set_stream(c->f, journald);
}

/* Stop capturing; returns the text (owned by c until cap_free). */
static const char *cap_end(struct capture *c)
{
    log_set_stream(NULL, 0);
    fclose(c->f);
    return c->buf;
}

static void cap_free(struct capture *c)
{
    free(c->buf);
    c->buf = NULL;
}

static void assert_match(const char *re, const char *s)
{
    regex_t r;
    assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&r, s, 0, NULL, 0);
    regfree(&r);
    if (rc != 0)
        fail_msg("\"%s\" does not match /%s/", s, re);
}

#define TS "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z"

static int reset(void **state)
{
    log_set_level(LOG_LVL_INFO);
    log_set_stream(NULL, 0);
    unsetenv("JOURNAL_STREAM");
    return 0;
}

static void test_plain_format_has_rfc3339_timestamp(void **state)
{
    struct capture c;
    cap_start(&c, 0);
    time_t before = time(NULL);
    log_info("prod-to-dev", "role created role=%s where=%s", "Supervisor", "dev");
    log_warning(NULL, "reload failed errors=%d", 2);
    time_t after = time(NULL);
    const char *out = cap_end(&c);

    assert_match("^" TS " INFO job=prod-to-dev role created role=Supervisor where=dev\n" TS
                 " WARNING reload failed errors=2\n$",
                 out);
    /* the timestamp is now, in UTC */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    assert_non_null(strptime(out, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t t = timegm(&tm);
    assert_true(t >= before - 1 && t <= after + 1);
    cap_free(&c);
}

static void test_journald_prefix_no_timestamp(void **state)
{
    struct capture c;
    log_set_level(LOG_LVL_DEBUG);
    cap_start(&c, 1);
    log_error("j", "e");
    log_warning("j", "w");
    log_info("j", "i");
    log_debug("j", "d");
    log_info(NULL, "cycle done changes=%d", 0);
    assert_string_equal(cap_end(&c), "<3>ERROR job=j e\n"
                                     "<4>WARNING job=j w\n"
                                     "<6>INFO job=j i\n"
                                     "<7>DEBUG job=j d\n"
                                     "<6>INFO cycle done changes=0\n");
    cap_free(&c);
}

static void test_level_filtering(void **state)
{
    struct capture c;

    log_set_level(LOG_LVL_WARNING);
    assert_int_equal(log_get_level(), LOG_LVL_WARNING);
    cap_start(&c, 1);
    log_debug("j", "d");
    log_info("j", "i");
    log_warning("j", "w");
    log_error("j", "e");
    assert_string_equal(cap_end(&c), "<4>WARNING job=j w\n<3>ERROR job=j e\n");
    cap_free(&c);

    log_set_level(LOG_LVL_ERROR);
    cap_start(&c, 1);
    log_warning("j", "w");
    log_error("j", "e");
    assert_string_equal(cap_end(&c), "<3>ERROR job=j e\n");
    cap_free(&c);

    log_set_level(LOG_LVL_INFO);
    cap_start(&c, 1);
    log_debug("j", "d");
    log_info("j", "i");
    assert_string_equal(cap_end(&c), "<6>INFO job=j i\n");
    cap_free(&c);
}

static void test_one_event_one_line(void **state)
{
    struct capture c;
    cap_start(&c, 1);
    log_info("a job", "message=%s", "two\nlines\r"); /* job names with spaces are quoted */
    assert_string_equal(cap_end(&c), "<6>INFO job=\"a job\" message=two lines \n");
    cap_free(&c);

    /* an over-long event is truncated, still one line with its newline */
    char *big = xmalloc(10000);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    cap_start(&c, 1);
    log_info("j", "v=%s", big);
    log_info("j", "after");
    const char *out = cap_end(&c);
    const char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_true(nl - out < 4096);
    assert_true(nl - out > 4000);
    assert_string_equal(nl + 1, "<6>INFO job=j after\n");
    cap_free(&c);
    free(big);
}

/* log_init() detects journald from $JOURNAL_STREAM = "DEV:INODE" of stderr: run it with fd 2
 * pointed at a temp file whose identity we know. */
static void test_journal_stream_detection(void **state)
{
    char path[] = "/tmp/rolesync-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);

    char js[64];
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    log_init(LOG_LVL_INFO);
    log_info("j", "journal");

    /* same device, other inode: not the journal (e.g. stderr redirected by a wrapper) */
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", js, 1);
    log_init(LOG_LVL_INFO);
    log_info("j", "other-inode");

    setenv("JOURNAL_STREAM", "garbage", 1);
    log_init(LOG_LVL_INFO);
    log_info("j", "garbage");

    unsetenv("JOURNAL_STREAM");
    log_init(LOG_LVL_INFO);
    log_info("j", "unset");

    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);

    char buf[1024];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    close(fd);
    unlink(path);
    assert_match("^<6>INFO job=j journal\n" TS " INFO job=j other-inode\n" TS
                 " INFO job=j garbage\n" TS " INFO job=j unset\n$",
                 buf);
}

static void test_quote(void **state)
{
    char b[64];
    assert_string_equal(log_quote(b, sizeof b, "plain"), "plain");
    assert_string_equal(log_quote(b, sizeof b, "user@example.com"), "user@example.com");
    assert_string_equal(log_quote(b, sizeof b, "two words"), "\"two words\"");
    assert_string_equal(log_quote(b, sizeof b, "a=b"), "\"a=b\"");
    assert_string_equal(log_quote(b, sizeof b, "say \"hi\""), "\"say \\\"hi\\\"\"");
    assert_string_equal(log_quote(b, sizeof b, "back\\slash"), "\"back\\\\slash\"");
    assert_string_equal(log_quote(b, sizeof b, "line\nbreak"), "\"line\\nbreak\"");
    assert_string_equal(log_quote(b, sizeof b, "tab\there"), "\"tab?here\"");
    assert_string_equal(log_quote(b, sizeof b, ""), "\"\"");
    assert_ptr_equal(log_quote(b, sizeof b, "x"), b);

    /* truncation keeps the quotes balanced and the string terminated */
    char s[8];
    assert_string_equal(log_quote(s, sizeof s, "a b c d e f"), "\"a b \"");
    assert_string_equal(log_quote(s, sizeof s, "\"\"\"\"\"\""), "\"\\\"\\\"\"");
    assert_string_equal(log_quote(s, sizeof s, "abcdefghijk"), "abcdefg");
    char three[3], two[2];
    assert_string_equal(log_quote(three, sizeof three, "a b"), "\"\"");
    assert_string_equal(log_quote(two, sizeof two, "a b"), "");
    char none[1] = {'q'};
    log_quote(none, 0, "a b"); /* n == 0: nothing written */
    assert_int_equal(none[0], 'q');
}

static void test_level_names(void **state)
{
    enum log_level l;
    assert_int_equal(log_level_parse("error", &l), 0);
    assert_int_equal(l, LOG_LVL_ERROR);
    assert_int_equal(log_level_parse("warning", &l), 0);
    assert_int_equal(l, LOG_LVL_WARNING);
    assert_int_equal(log_level_parse("info", &l), 0);
    assert_int_equal(l, LOG_LVL_INFO);
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LOG_LVL_DEBUG);
    assert_int_equal(log_level_parse("INFO", &l), -1);
    assert_int_equal(log_level_parse("warn", &l), -1);
    assert_int_equal(log_level_parse("", &l), -1);
    assert_string_equal(log_level_name(LOG_LVL_ERROR), "ERROR");
    assert_string_equal(log_level_name(LOG_LVL_WARNING), "WARNING");
    assert_string_equal(log_level_name(LOG_LVL_INFO), "INFO");
    assert_string_equal(log_level_name(LOG_LVL_DEBUG), "DEBUG");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_format_has_rfc3339_timestamp, reset, reset),
        cmocka_unit_test_setup_teardown(test_journald_prefix_no_timestamp, reset, reset),
        cmocka_unit_test_setup_teardown(test_level_filtering, reset, reset),
        cmocka_unit_test_setup_teardown(test_one_event_one_line, reset, reset),
        cmocka_unit_test_setup_teardown(test_journal_stream_detection, reset, reset),
        cmocka_unit_test_setup_teardown(test_quote, reset, reset),
        cmocka_unit_test_setup_teardown(test_level_names, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
