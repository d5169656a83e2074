/* jsonc_parse.c — the B5 CPU yardstick (spec/performance.md): how much CPU json-c alone needs to
 * parse the response bodies one rolesyncd cycle reads.
 *
 *   jsonc_parse [--like-rolesyncd] PASSES FILE...
 *
 * Every FILE (one saved response body each) is read into memory first, so file I/O is outside
 * the measurement. Then, PASSES times, each body goes through json_tokener_parse() and the tree
 * is released with json_object_put() (rolesyncd also builds and drops a tree per page, so the
 * release belongs to the cost). CPU time (user + system, getrusage RUSAGE_SELF) is taken around
 * the passes only. Output, one JSON object on stdout:
 *   {"mode": M, "files": N, "bytes": B, "passes": P, "cpu_s_total": T, "cpu_s_per_pass": T/P,
 *    "cpu_s_min_pass": the cheapest single pass (the figure least disturbed by a busy machine)}
 * --like-rolesyncd parses the way rolesyncd's pjson_parse() does (one tokener per body with a
 * depth limit of 65, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8, explicit length), to tell
 * the cost of those settings apart from the cost of what rolesyncd does with the tree.
 * Exit 1 on a usage error, an unreadable file or a body json-c cannot parse.
 *
 * Build: cc -O2 -o jsonc_parse bench/jsonc_parse.c $(pkg-config --cflags --libs json-c)
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* The whole file, NUL-terminated (json_tokener_parse reads a C string); NULL on error. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* One body the way rolesyncd's pjson_parse() reads it. */
static json_object *parse_like_rolesyncd(const char *body, size_t len)
{
    struct json_tokener *tk = json_tokener_new_ex(65);
    if (!tk)
        return NULL;
    json_tokener_set_flags(tk, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tk, body, (int)len);
    json_tokener_free(tk);
    return o;
}

int main(int argc, char **argv)
{
    int like = argc > 1 && strcmp(argv[1], "--like-rolesyncd") == 0;
    if (like) {
        argv++;
        argc--;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s [--like-rolesyncd] PASSES FILE...\n", argv[0]);
        return 1;
    }
    long passes = strtol(argv[1], NULL, 10);
    if (passes < 1) {
        fprintf(stderr, "jsonc_parse: PASSES must be a positive number\n");
        return 1;
    }
    int nfiles = argc - 2, rc = 1;
    char **bodies = calloc((size_t)nfiles, sizeof *bodies);
    size_t *lens = calloc((size_t)nfiles, sizeof *lens);
    size_t total = 0;
    if (!bodies || !lens) {
        fprintf(stderr, "jsonc_parse: out of memory\n");
        goto out;
    }
    for (int i = 0; i < nfiles; i++) {
        size_t len = 0;
        bodies[i] = slurp(argv[i + 2], &len);
        if (!bodies[i]) {
            fprintf(stderr, "jsonc_parse: cannot read %s\n", argv[i + 2]);
            goto out;
        }
        lens[i] = len;
        total += len;
    }

    double t0 = cpu_seconds(), best = -1;
    for (long p = 0; p < passes; p++) {
        double p0 = cpu_seconds();
        for (int i = 0; i < nfiles; i++) {
            json_object *o =
                like ? parse_like_rolesyncd(bodies[i], lens[i]) : json_tokener_parse(bodies[i]);
            if (!o) {
                fprintf(stderr, "jsonc_parse: %s is not JSON json-c can parse\n", argv[i + 2]);
                goto out;
            }
            json_object_put(o);
        }
        double pt = cpu_seconds() - p0;
        if (best < 0 || pt < best)
            best = pt;
    }
    double t = cpu_seconds() - t0;

    printf("{\"mode\": \"%s\", \"files\": %d, \"bytes\": %zu, \"passes\": %ld, "
           "\"cpu_s_total\": %.6f, \"cpu_s_per_pass\": %.6f, \"cpu_s_min_pass\": %.6f}\n",
           like ? "like-rolesyncd" : "json_tokener_parse", nfiles, total, passes, t,
           t / (double)passes, best);
    rc = 0;
out:
    for (int i = 0; bodies && i < nfiles; i++)
        free(bodies[i]);
    free(bodies);
    free(lens);
    return rc;
}
