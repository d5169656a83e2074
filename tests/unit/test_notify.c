/* test_notify.c — sd_notify wrappers against a fake $NOTIFY_SOCKET, and the STATUS= line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rolesync/notify.h"
#include "rolesync/status.h"
#include "rolesync/util.h"

#define T0 1795323600000LL /* 2026-11-22T05:00:00Z */
#define SEC 1000LL

struct fake {
    char dir[64];
    char path[100]; /* fits sun_path */
    int fd;
};

static int setup(void **state)
{
    struct fake *f = xcalloc(1, sizeof *f);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    snprintf(f->dir, sizeof f->dir, "/tmp/rolesync-notify-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/notify.sock", f->dir);
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(f->fd >= 0);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    setenv("NOTIFY_SOCKET", f->path, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fake *f = *state;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    close(f->fd);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* The next datagram, or "" if none is waiting. sd_notify sends synchronously, so a message is
 * there by the time the call returns. */
static const char *next_msg(struct fake *f, char *buf, size_t n)
{
    ssize_t r = recv(f->fd, buf, n - 1, 0);
    if (r < 0) {
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        r = 0;
    }
    buf[r] = '\0';
    return buf;
}

static uint64_t mono_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void test_messages(void **state)
{
    struct fake *f = *state;
    char buf[512];

    assert_true(notify_ready() > 0);
    assert_string_equal(next_msg(f, buf, sizeof buf), "READY=1");

    uint64_t before = mono_usec();
    assert_true(notify_reloading() > 0);
    uint64_t after = mono_usec();
    next_msg(f, buf, sizeof buf);
    unsigned long long usec = 0;
    if (sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec) != 1)
        fail_msg("unexpected reloading message: %s", buf);
    assert_true(usec >= before && usec <= after);
    assert_null(strchr(strchr(buf, '\n') + 1, '\n'));

    assert_true(notify_ready_status("1 job, 1 in sync") > 0);
    assert_string_equal(next_msg(f, buf, sizeof buf), "READY=1\nSTATUS=1 job, 1 in sync");
    assert_true(notify_ready_status(NULL) > 0);
    assert_string_equal(next_msg(f, buf, sizeof buf), "READY=1");

    assert_true(notify_status("3 jobs, 3 in sync, next run 05:10:07") > 0);
    assert_string_equal(next_msg(f, buf, sizeof buf),
                        "STATUS=3 jobs, 3 in sync, next run 05:10:07");

    assert_true(notify_watchdog() > 0);
    assert_string_equal(next_msg(f, buf, sizeof buf), "WATCHDOG=1");

    assert_true(notify_stopping() > 0);
    assert_string_equal(next_msg(f, buf, sizeof buf), "STOPPING=1");

    assert_string_equal(next_msg(f, buf, sizeof buf), ""); /* nothing else was sent */
    /* the environment is left for later calls (sd_notify's unset_environment = 0) */
    assert_non_null(getenv("NOTIFY_SOCKET"));
}

static void test_noop_without_socket(void **state)
{
    struct fake *f = *state;
    char buf[64];

    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(notify_ready(), 0);
    assert_int_equal(notify_reloading(), 0);
    assert_int_equal(notify_status("x"), 0);
    assert_int_equal(notify_watchdog(), 0);
    assert_int_equal(notify_stopping(), 0);
    assert_int_equal(notify_ready_status("x"), 0);
    assert_string_equal(next_msg(f, buf, sizeof buf), "");
}

static void test_watchdog_interval(void **state)
{
    char pid[32];

    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_int_equal(notify_watchdog_interval_ms(), 0);

    setenv("WATCHDOG_USEC", "60000000", 1); /* WatchdogSec=60s */
    assert_int_equal(notify_watchdog_interval_ms(), 30000);

    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    setenv("WATCHDOG_USEC", "20000000", 1);
    assert_int_equal(notify_watchdog_interval_ms(), 10000);

    /* meant for another process (e.g. inherited by a child): not ours to ping */
    snprintf(pid, sizeof pid, "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_watchdog_interval_ms(), 0);

    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "1000", 1); /* tiny values still give a usable timer */
    assert_int_equal(notify_watchdog_interval_ms(), 1);
    setenv("WATCHDOG_USEC", "garbage", 1);
    assert_int_equal(notify_watchdog_interval_ms(), 0);
    unsetenv("WATCHDOG_USEC");
}

static void test_status_line(void **state)
{
    struct status st;
    char buf[256];
    const char *names[] = {"a", "b", "c"};

    status_init(&st, "1", "/c", T0);
    assert_string_equal(notify_status_line(&st, buf, sizeof buf), "0 jobs, 0 in sync");
    status_jobs_sync(&st, names, 3);
    for (size_t i = 0; i < 3; i++) {
        status_job_run_begin(st.jobs[i], T0, false);
        status_job_run_end(st.jobs[i], T0 + 7 * SEC, STATUS_RESULT_OK);
        status_job_set_next_run(st.jobs[i], T0 + (int64_t)(607 + 60 * i) * SEC);
    }
    /* the spec's example */
    assert_string_equal(notify_status_line(&st, buf, sizeof buf),
                        "3 jobs, 3 in sync, next run 05:10:07");

    status_job_run_begin(st.jobs[0], T0 + 8 * SEC, false);
    status_job_set_state(st.jobs[2], STATUS_JOB_FAILED, "auth");
    st.jobs[2]->in_sync = false;
    status_job_set_next_run(st.jobs[2], T0 + 30 * SEC);
    status_reload_done(&st, T0 + 9 * SEC, false, NULL, "bad");
    assert_string_equal(notify_status_line(&st, buf, sizeof buf),
                        "3 jobs, 2 in sync, 1 running, 1 failed, last reload failed, "
                        "next run 05:00:30");
    /* a running job keeps the in_sync of its last run */

    status_jobs_sync(&st, names, 1);
    status_job_run_end(st.jobs[0], T0 + 9 * SEC, STATUS_RESULT_PARTIAL);
    status_job_set_next_run(st.jobs[0], 0);
    status_reload_done(&st, T0 + 10 * SEC, true, NULL, NULL);
    assert_string_equal(notify_status_line(&st, buf, sizeof buf),
                        "1 job, 0 in sync, 1 waiting to retry");

    /* truncation stays NUL-terminated */
    char small[8];
    notify_status_line(&st, small, sizeof small);
    assert_string_equal(small, "1 job, ");
    status_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noop_without_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
