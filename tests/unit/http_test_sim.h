/* http_test_sim.h — test helpers for test_http.c: run tenantsim as a child process, talk to its
 * /_sim control endpoints with blocking libcurl, make a throw-away TLS CA with openssl.
 *
 * Header-only (static functions) because the build makes one executable per test_*.c file.
 */
#ifndef HTTP_TEST_SIM_H
#define HTTP_TEST_SIM_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#define SIM_CLIENT_ID "rolesync-test-client"
#define SIM_CLIENT_SECRET "s3cr3t-for-tests-only"
#define SIM_TENANT_ID "3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01"

struct sim {
    pid_t pid;
    int port;
    bool tls;
    char base[96];      /* http(s)://127.0.0.1:PORT */
    char dir[PATH_MAX]; /* temp folder: port file, certificates */
    char ca[PATH_MAX];  /* CA file for TLS control calls, or "" */
};

static void sim_msleep(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Start tenantsim. `extra` is a NULL-terminated list of extra arguments (or NULL). Returns 0,
 * or -1 with a reason on stderr. */
static int sim_start(struct sim *s, const char *api, const char *const *extra, const char *dir)
{
    const char *bin = getenv("ROLESYNC_SIM");
    char portfile[PATH_MAX + 16];
    const char *argv[48];
    int n = 0;

    memset(s, 0, sizeof(*s));
    s->pid = -1;
    if (!bin || !*bin) {
        fprintf(stderr, "ROLESYNC_SIM is not set\n");
        return -1;
    }
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(portfile, sizeof(portfile), "%s/port", dir);
    unlink(portfile);

    argv[n++] = bin;
    argv[n++] = "--api";
    argv[n++] = api;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--port-file";
    argv[n++] = portfile;
    argv[n++] = "--client";
    argv[n++] = SIM_CLIENT_ID ":" SIM_CLIENT_SECRET;
    if (strcmp(api, "identity") == 0) {
        argv[n++] = "--tenant-id";
        argv[n++] = SIM_TENANT_ID;
    }
    for (int i = 0; extra && extra[i] && n < 46; i++) {
        if (strcmp(extra[i], "--tls-cert") == 0)
            s->tls = true;
        argv[n++] = extra[i];
    }
    argv[n] = NULL;

    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        /* A failed assertion longjmps past sim_stop: never leave an orphan server behind. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, STDIN_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) { /* up to 10 s */
        FILE *f = fopen(portfile, "r");
        int port = 0, st;
        if (f) {
            int ok = fscanf(f, "%d", &port) == 1;
            fclose(f);
            if (ok && port > 0) {
                s->port = port;
                snprintf(s->base, sizeof(s->base), "%s://127.0.0.1:%d", s->tls ? "https" : "http",
                         port);
                return 0;
            }
        }
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            fprintf(stderr, "tenantsim (%s) exited before listening (status %d)\n", bin, st);
            s->pid = -1;
            return -1;
        }
        sim_msleep(10);
    }
    fprintf(stderr, "tenantsim did not write its port file\n");
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = -1;
    return -1;
}

static void sim_stop(struct sim *s)
{
    int st;
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = -1;
            return;
        }
        sim_msleep(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = -1;
}

struct sim_buf {
    char *p;
    size_t n;
};

static size_t sim_buf_write(char *d, size_t sz, size_t nm, void *ud)
{
    struct sim_buf *b = ud;
    size_t n = sz * nm;
    char *q = realloc(b->p, b->n + n + 1);
    if (!q)
        return 0;
    b->p = q;
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

/* A blocking control call; returns the HTTP status (0 on transport error). The reply body is
 * returned in *out when out is not NULL (caller frees). */
static long sim_ctl(const struct sim *s, const char *method, const char *path, const char *body,
                    char **out)
{
    CURL *c = curl_easy_init();
    struct sim_buf b = {0};
    struct curl_slist *h = NULL;
    char url[256];
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", s->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sim_buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (s->ca[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca);
    if (body) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out)
        *out = b.p ? b.p : strdup("");
    else
        free(b.p);
    return status;
}

/* Add fault rules (a JSON array). */
static void sim_faults(const struct sim *s, const char *rules_json)
{
    long st = sim_ctl(s, "POST", "/_sim/faults", rules_json, NULL);
    if (st < 200 || st >= 300)
        fprintf(stderr, "POST /_sim/faults answered %ld\n", st);
}

/* GET /_sim/stats parsed; caller puts it. NULL on failure. */
static struct json_object *sim_stats(const struct sim *s)
{
    char *body = NULL;
    struct json_object *o = NULL;
    if (sim_ctl(s, "GET", "/_sim/stats", NULL, &body) == 200)
        o = json_tokener_parse(body);
    free(body);
    return o;
}

/* stats["by_route"][route] or stats["by_status"][code], 0 when absent. */
static long sim_stat(struct json_object *stats, const char *group, const char *key)
{
    struct json_object *g, *v;
    if (!stats)
        return -1;
    if (!group)
        return json_object_object_get_ex(stats, key, &v) ? (long)json_object_get_int64(v) : 0;
    if (!json_object_object_get_ex(stats, group, &g) || !json_object_object_get_ex(g, key, &v))
        return 0;
    return (long)json_object_get_int64(v);
}

/* Make a throw-away CA and a server certificate for 127.0.0.1 in `dir`, plus a second,
 * unrelated CA (untrusted.pem). Keys never leave the temp folder. Returns 0 / -1. */
static int tls_make_certs(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s'; "
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=rolesync test CA' "
             "  -keyout ca.key -out ca.pem 2>/dev/null; "
             "openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' "
             "  -keyout server.key -out server.csr 2>/dev/null; "
             "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n"
             "basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf; "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "  -days 2 -extfile ext.cnf -out server.pem 2>/dev/null; "
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=other CA' "
             "  -keyout other.key -out untrusted.pem 2>/dev/null",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void rm_rf(const char *dir)
{
    char cmd[PATH_MAX + 32];
    if (!dir[0] || strncmp(dir, "/tmp/", 5) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

#endif
