/* sim_main.c — tenantsim's command line and life cycle (spec/simulator.md §1 and §3b). */
#include "sim.h"
#include "sim_gen.h"

#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: tenantsim --api genesys|identity [options]\n"
    "       tenantsim gen --api genesys|identity --users N --roles N [--seed S] [...]\n"
    "       tenantsim gen --same-as FILE [...]   (tenantsim gen --help for the options)\n"
    "\n"
    "Serves one simulated tenant over HTTP (spec/simulator.md).\n"
    "  --listen HOST:PORT     numeric address to bind (default 127.0.0.1:0 = a free port)\n"
    "  --port-file FILE       write the bound port there (else it is the first stdout line)\n"
    "  --state FILE.json      tenant to load (tests/sim/README.md); default: an empty tenant with\n"
    "                         the default (genesys) / built-in (identity) roles\n"
    "  --save-on-exit FILE    write the tenant state there on SIGTERM/SIGINT\n"
    "  --request-log FILE     append one JSON line per API request: arrival and answer times\n"
    "                         (Unix seconds), method, path, status, write, the\n"
    "                         X-Rolesyncd-Fence header (simulator.md 3b)\n"
    "  --client ID:SECRET     an OAuth client allowed to get tokens (repeatable); when none is\n"
    "                         given the only client is test-client:test-secret\n"
    "  --tenant-id GUID       identity tenant id (overrides the state's tenant_id)\n"
    "  --token-ttl DUR        access token lifetime (default 86399s genesys, 3600s identity)\n"
    "  --token-realm NAME     issue tokens as NAME.<hex> and accept such tokens issued by\n"
    "                         another tenantsim of the same realm (one identity service behind\n"
    "                         a regional and a global host)\n"
    "  --rate-limit N/min     per-token limit in a fixed window (N/s, N/min, N/h); default none\n"
    "  --latency DUR          added to every API request, concurrently (e.g. 20ms)\n"
    "  --max-page-size N      genesys pageSize ceiling (default 500) / identity count ceiling\n"
    "                         (default 1000)\n"
    "  --offset-cap N         genesys: GET /api/v2/users with a state other than active answers\n"
    "                         400 when pageNumber x pageSize > N (default 10000, 0 = off)\n"
    "  --lag DUR              genesys: a role created through the API answers 404 on every\n"
    "                         endpoint naming it, and listings omit it, for DUR (default 0)\n"
    "  --read-only-region     identity: answer 405 to every write on Users and Roles, as a\n"
    "                         regional host does\n"
    "  --tls-cert FILE --tls-key FILE   serve HTTPS (PEM files)\n"
    "Durations: 500ms, 30s, 10m, 2h (a bare number is seconds).\n"
    "Control (loopback only, no auth): GET|PUT /_sim/state, GET|DELETE /_sim/stats,\n"
    "  GET|POST|DELETE /_sim/faults. SIGTERM/SIGINT stop the server cleanly.\n";

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    sim_sb sb = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_putn(&sb, buf, n);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: read error", path);
        sb_free(&sb);
        return NULL;
    }
    return sb_steal(&sb);
}

static bool write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return false;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0)
        return false;
    /* rename() makes the port appear atomically: a poller never reads a partial number. */
    return rename(tmp, path) == 0;
}

static bool parse_rate(const char *s, long *n, int64_t *window_ms)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || v < 0)
        return false;
    *n = v;
    if (*end == '\0' || strcmp(end, "/min") == 0 || strcmp(end, "/m") == 0)
        *window_ms = 60000;
    else if (strcmp(end, "/s") == 0 || strcmp(end, "/sec") == 0)
        *window_ms = 1000;
    else if (strcmp(end, "/h") == 0)
        *window_ms = 3600000;
    else
        return false;
    return true;
}

static void add_client(sim_ctx *ctx, const char *spec)
{
    const char *colon = strchr(spec, ':');
    ctx->clients = xrealloc(ctx->clients, (ctx->nclients + 1) * sizeof *ctx->clients);
    ctx->clients[ctx->nclients].id = xstrndup(spec, (size_t)(colon - spec));
    ctx->clients[ctx->nclients].secret = xstrdup(colon + 1);
    ctx->nclients++;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "gen") == 0)
        return gen_main(argc - 1, argv + 1);

    sim_ctx ctx;
    sim_ctx_init(&ctx);
    ctx.offset_cap = 10000; /* the platform's, api/genesys.md §10 */
    const char *api = NULL, *listen = "127.0.0.1:0", *port_file = NULL, *state_path = NULL,
               *save_path = NULL, *cert_path = NULL, *key_path = NULL;
    int64_t ttl = -1;
    long max_page = -1;
    int rc = 2;
    char *cert = NULL, *key = NULL;
    struct MHD_Daemon *d = NULL;
    char err[512];

    for (int i = 1; i < argc; i++) {
        char opt[64];
        const char *a = argv[i], *val = NULL;
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) == 0 && eq && (size_t)(eq - a) < sizeof opt) {
            snprintf(opt, sizeof opt, "%.*s", (int)(eq - a), a);
            a = opt;
            val = eq + 1;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            rc = 0;
            goto out;
        }
        if (strcmp(a, "--read-only-region") == 0 && !val) {
            ctx.read_only_region = true;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tenantsim: %s needs a value\n%s", a, usage);
                goto out;
            }
            val = argv[++i];
        }
        if (strcmp(a, "--api") == 0)
            api = val;
        else if (strcmp(a, "--listen") == 0)
            listen = val;
        else if (strcmp(a, "--port-file") == 0)
            port_file = val;
        else if (strcmp(a, "--state") == 0)
            state_path = val;
        else if (strcmp(a, "--save-on-exit") == 0)
            save_path = val;
        else if (strcmp(a, "--request-log") == 0) {
            if (ctx.reqlog)
                fclose(ctx.reqlog);
            ctx.reqlog = fopen(val, "ae");
            if (!ctx.reqlog) {
                fprintf(stderr, "tenantsim: cannot open %s: %s\n", val, strerror(errno));
                goto out;
            }
        } else if (strcmp(a, "--tls-cert") == 0)
            cert_path = val;
        else if (strcmp(a, "--tls-key") == 0)
            key_path = val;
        else if (strcmp(a, "--client") == 0) {
            const char *colon = strchr(val, ':');
            if (!colon || colon == val || !colon[1]) {
                fprintf(stderr, "tenantsim: --client wants ID:SECRET\n");
                goto out;
            }
            add_client(&ctx, val);
        } else if (strcmp(a, "--tenant-id") == 0) {
            free(ctx.tenant_id_opt);
            ctx.tenant_id_opt = xstrdup(val);
        } else if (strcmp(a, "--token-realm") == 0) {
            if (!*val || strlen(val) > SIM_TOKEN_REALM_MAX || strchr(val, '.')) {
                fprintf(stderr,
                        "tenantsim: bad --token-realm \"%s\" (1 to %d characters, no '.')\n", val,
                        SIM_TOKEN_REALM_MAX);
                goto out;
            }
            free(ctx.token_realm);
            ctx.token_realm = xstrdup(val);
        } else if (strcmp(a, "--token-ttl") == 0) {
            ttl = sim_parse_duration_ms(val);
            if (ttl < 1000) {
                fprintf(stderr, "tenantsim: bad --token-ttl \"%s\" (at least 1s)\n", val);
                goto out;
            }
        } else if (strcmp(a, "--rate-limit") == 0) {
            if (!parse_rate(val, &ctx.rate_limit, &ctx.rate_window_ms)) {
                fprintf(stderr, "tenantsim: bad --rate-limit \"%s\" (e.g. 300/min)\n", val);
                goto out;
            }
        } else if (strcmp(a, "--latency") == 0) {
            ctx.latency_ms = sim_parse_duration_ms(val);
            if (ctx.latency_ms < 0) {
                fprintf(stderr, "tenantsim: bad --latency \"%s\"\n", val);
                goto out;
            }
        } else if (strcmp(a, "--offset-cap") == 0) {
            long long v;
            if (!sim_parse_int(val, &v) || v < 0 || v > 1000000000) {
                fprintf(stderr, "tenantsim: bad --offset-cap \"%s\"\n", val);
                goto out;
            }
            ctx.offset_cap = (long)v;
        } else if (strcmp(a, "--lag") == 0) {
            ctx.lag_ms = sim_parse_duration_ms(val);
            if (ctx.lag_ms < 0) {
                fprintf(stderr, "tenantsim: bad --lag \"%s\"\n", val);
                goto out;
            }
        } else if (strcmp(a, "--max-page-size") == 0) {
            long long v;
            if (!sim_parse_int(val, &v) || v < 1 || v > 1000000) {
                fprintf(stderr, "tenantsim: bad --max-page-size \"%s\"\n", val);
                goto out;
            }
            max_page = (long)v;
        } else {
            fprintf(stderr, "tenantsim: unknown option %s\n%s", a, usage);
            goto out;
        }
    }
    if (!api || (strcmp(api, "genesys") != 0 && strcmp(api, "identity") != 0)) {
        fprintf(stderr, "tenantsim: --api genesys|identity is required\n%s", usage);
        goto out;
    }
    if (!cert_path != !key_path) {
        fprintf(stderr, "tenantsim: --tls-cert and --tls-key go together\n");
        goto out;
    }
    ctx.api = strcmp(api, "genesys") == 0 ? SIM_GENESYS : SIM_IDENTITY;
    ctx.token_ttl_ms = ttl > 0 ? ttl : (ctx.api == SIM_GENESYS ? 86399000 : 3600000);
    ctx.max_page = max_page > 0 ? max_page : (ctx.api == SIM_GENESYS ? 500 : 1000);
    if (ctx.nclients == 0)
        add_client(&ctx, "test-client:test-secret");
    rc = 1;

    json_object *st = NULL;
    if (state_path) {
        char *text = read_file(state_path, err, sizeof err);
        if (!text) {
            fprintf(stderr, "tenantsim: %s\n", err);
            goto out;
        }
        st = sim_json_parse(text, strlen(text));
        free(text);
        if (!st) {
            fprintf(stderr, "tenantsim: %s: not valid JSON\n", state_path);
            goto out;
        }
    }
    ctx.t = sim_tenant_load(ctx.api, st, ctx.tenant_id_opt, err, sizeof err);
    json_object_put(st);
    if (!ctx.t) {
        fprintf(stderr, "tenantsim: %s: %s\n", state_path ? state_path : "state", err);
        goto out;
    }
    if (cert_path) {
        ctx.tls = true;
        if (!(cert = read_file(cert_path, err, sizeof err)) ||
            !(key = read_file(key_path, err, sizeof err))) {
            fprintf(stderr, "tenantsim: %s\n", err);
            goto out;
        }
    }

    /* Threads started by MHD inherit this mask, so only sigwait() below sees the signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned port = 0;
    d = sim_server_start(&ctx, listen, cert, key, &port, err, sizeof err);
    if (!d) {
        fprintf(stderr, "tenantsim: %s\n", err);
        goto out;
    }
    if (port_file) {
        if (!write_port_file(port_file, port)) {
            fprintf(stderr, "tenantsim: cannot write %s: %s\n", port_file, strerror(errno));
            goto out;
        }
    } else {
        printf("%u\n", port);
        fflush(stdout);
    }
    fprintf(stderr, "tenantsim: %s tenant on %s port %u (%zu roles, %zu users)\n", api, listen,
            port, ctx.t->nroles, ctx.t->nusers);

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    fprintf(stderr, "tenantsim: signal %d, stopping\n", sig);
    rc = 0;
out:
    if (d) {
        /* Wake sleeping requests (latency, stall) so connection threads can be joined. */
        pthread_mutex_lock(&ctx.stop_mu);
        ctx.stopping = true;
        pthread_cond_broadcast(&ctx.stop_cv);
        pthread_mutex_unlock(&ctx.stop_mu);
        MHD_stop_daemon(d);
    }
    if (rc == 0 && save_path && ctx.t) {
        json_object *dump = sim_tenant_dump(ctx.t);
        if (json_object_to_file_ext(save_path, dump, JSON_C_TO_STRING_PLAIN) != 0) {
            fprintf(stderr, "tenantsim: cannot write %s\n", save_path);
            rc = 1;
        }
        json_object_put(dump);
    }
    free(cert);
    if (key)
        util_free_secret(key);
    sim_ctx_free(&ctx);
    return rc;
}
