/* main.c — rolesyncd command line (product.md section 2). */
#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/approve.h"
#include "rolesync/config.h"
#include "rolesync/daemon.h"
#include "rolesync/explain.h"
#include "rolesync/history.h"
#include "rolesync/log.h"
#include "rolesync/once.h"
#include "rolesync/status.h"
#include "rolesync/undo.h"
#include "rolesync/util.h"

#define MAX_JOB_ARGS 64

struct options {
    const char *config;
    int check, once, dry_run, force_deletes, status, explain, history, coordinate;
    size_t history_n;        /* --history [N] */
    const char *user, *role; /* --explain --user KEY | --role NAME */
    const char *approve;     /* --approve FINGERPRINT, normalised into approve_fp */
    const char *undo;        /* --undo CYCLE */
    char approve_fp[APPROVE_FP_LEN];
    const char *jobs[MAX_JOB_ARGS];
    size_t njobs;
};

static void usage(FILE *f)
{
    fputs(
        "usage: rolesyncd [-c FILE] [OPTIONS]\n"
        "Mirror roles and user-role assignments from a source tenant to target tenants.\n"
        "\n"
        "  -c, --config FILE    config file (default " CFG_DEFAULT_PATH ")\n"
        "  -t, --check          validate the config (and that secrets are readable), print\n"
        "                       \"configuration OK\" and exit 0; else print every error, exit 1\n"
        "      --once           run each job one time, then exit\n"
        "      --coordinate     with --once: take the jobs' keys on etcd first (coordination:)\n"
        "                       and run only those this run holds; jobs held by a running\n"
        "                       instance are left to it\n"
        "  -n, --dry-run        with --once or --undo: compute and print the plan, change nothing\n"
        "  -j, --job NAME       with --once, --approve or --explain: only this job (may be\n"
        "                       repeated, except with --explain; NAME/TARGET for one target\n"
        "                       of a job with a target list, NAME for all of them)\n"
        "      --force-deletes  with --once or --undo: apply a plan even when it exceeds "
        "max_deletes\n"
        "      --approve FINGERPRINT\n"
        "                       apply a refused plan whose deletions were reviewed: with --once\n"
        "                       now, only if the fresh plan's deletions are among those the\n"
        "                       refusal with that fingerprint recorded; without --once, have\n"
        "                       the running daemon do it (recorded in state_dir, SIGUSR2)\n"
        "      --undo CYCLE     take back what the journaled cycle CYCLE changed on its job's\n"
        "                       target, newest change first, against a fresh read: a step\n"
        "                       whose item changed since is skipped and reported, never\n"
        "                       forced; with --dry-run print the inverse plan only; the\n"
        "                       job's max_deletes applies (--force-deletes overrides it); the\n"
        "                       undo is journaled as a cycle of its own, so it can be undone\n"
        "      --explain        with --job NAME and --user KEY or --role NAME: say what a\n"
        "                       cycle of that job would do about that user (KEY as the job's\n"
        "                       users.match_by spells it) or role, and why; changes nothing\n"
        "                       (departure: it runs the cycle's full reads of both tenants,\n"
        "                       then a Genesys user's own grants for their groups); exit 1\n"
        "                       when not found\n"
        "      --user KEY       with --explain: the user to explain\n"
        "      --role NAME      with --explain: the role to explain (source or target name)\n"
        "      --status         print the status file of the configured state_dir, exit\n"
        "      --history [N]    list the last N (default 10) cycles of the change journal\n"
        "                       in state_dir, oldest first: id, job, target, start, counts\n"
        "  -h, --help           this help\n"
        "  -V, --version        version\n"
        "\n"
        "Without --once, runs as a daemon in the foreground (for systemd; it never forks).\n"
        "Exit codes: 0 ok (dry-run: nothing to change), 1 usage/config/fatal error,\n"
        "2 dry-run: changes pending, 3 some operations failed, 4 refused by max_deletes.\n",
        f);
}

/* --history's N: 1 .. 1000000. */
static bool history_count(const char *s, size_t *n)
{
    size_t v = 0, len = strlen(s);
    if (len == 0 || len > 7 || strspn(s, "0123456789") != len)
        return false;
    for (const char *p = s; *p; p++)
        v = v * 10 + (size_t)(*p - '0');
    if (v < 1 || v > 1000000)
        return false;
    *n = v;
    return true;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    enum {
        OPT_ONCE = 256,
        OPT_FORCE,
        OPT_STATUS,
        OPT_APPROVE,
        OPT_EXPLAIN,
        OPT_USER,
        OPT_ROLE,
        OPT_HISTORY,
        OPT_UNDO,
        OPT_COORDINATE
    };
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"check", no_argument, NULL, 't'},
                                             {"once", no_argument, NULL, OPT_ONCE},
                                             {"coordinate", no_argument, NULL, OPT_COORDINATE},
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {"job", required_argument, NULL, 'j'},
                                             {"force-deletes", no_argument, NULL, OPT_FORCE},
                                             {"status", no_argument, NULL, OPT_STATUS},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"approve", required_argument, NULL, OPT_APPROVE},
                                             {"explain", no_argument, NULL, OPT_EXPLAIN},
                                             {"user", required_argument, NULL, OPT_USER},
                                             {"role", required_argument, NULL, OPT_ROLE},
                                             {"undo", required_argument, NULL, OPT_UNDO},
                                             {"history", optional_argument, NULL, OPT_HISTORY},
                                             {NULL, 0, NULL, 0}};
    int c;

    memset(o, 0, sizeof *o);
    o->config = CFG_DEFAULT_PATH;
    while ((c = getopt_long(argc, argv, "c:tnj:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 't':
            o->check = 1;
            break;
        case OPT_ONCE:
            o->once = 1;
            break;
        case OPT_COORDINATE:
            o->coordinate = 1;
            break;
        case 'n':
            o->dry_run = 1;
            break;
        case 'j':
            if (o->njobs == MAX_JOB_ARGS) {
                fprintf(stderr, "rolesyncd: too many --job options\n");
                return -1;
            }
            o->jobs[o->njobs++] = optarg;
            break;
        case OPT_FORCE:
            o->force_deletes = 1;
            break;
        case OPT_STATUS:
            o->status = 1;
            break;
        case OPT_APPROVE:
            o->approve = optarg;
            break;
        case OPT_EXPLAIN:
            o->explain = 1;
            break;
        case OPT_USER:
            o->user = optarg;
            break;
        case OPT_ROLE:
            o->role = optarg;
            break;
        case OPT_UNDO:
            o->undo = optarg;
            break;
        case OPT_HISTORY: {
            /* getopt takes an optional argument only as --history=N; --history N is the
             * next word when it is a number */
            const char *arg = optarg;
            if (!arg && optind < argc && argv[optind][0] &&
                strspn(argv[optind], "0123456789") == strlen(argv[optind]))
                arg = argv[optind++];
            o->history = 1;
            o->history_n = HISTORY_DEFAULT_CYCLES;
            if (arg && !history_count(arg, &o->history_n)) {
                fprintf(stderr, "rolesyncd: --history wants a number of cycles from 1 to "
                                "1000000\n");
                return -1;
            }
            break;
        }
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("rolesyncd %s\n", ROLESYNC_VERSION);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rolesyncd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if ((o->user || o->role) && !o->explain) {
        fprintf(stderr, "rolesyncd: --user and --role go with --explain\n");
        return -1;
    }
    if (o->explain) {
        if (o->check || o->once || o->status || o->history || o->approve || o->undo || o->dry_run ||
            o->force_deletes || o->coordinate) {
            fprintf(stderr, "rolesyncd: --explain goes only with --job, --user or --role (and "
                            "-c)\n");
            return -1;
        }
        if (o->njobs != 1) {
            fprintf(stderr, "rolesyncd: --explain needs exactly one --job NAME\n");
            return -1;
        }
        if (!o->user == !o->role) {
            fprintf(stderr, "rolesyncd: --explain needs exactly one of --user KEY and --role "
                            "NAME\n");
            return -1;
        }
        if ((o->user && !o->user[0]) || (o->role && !o->role[0])) {
            fprintf(stderr, "rolesyncd: --%s needs a non-empty value\n", o->user ? "user" : "role");
            return -1;
        }
        return 0;
    }
    if (o->coordinate && !o->once) {
        fprintf(stderr, "rolesyncd: --coordinate goes with --once (a daemon coordinates "
                        "whenever its config has a coordination: block)\n");
        return -1;
    }
    if (o->approve && !approve_fingerprint_parse(o->approve, o->approve_fp)) {
        fprintf(stderr,
                "rolesyncd: --approve wants a fingerprint like sha256:<64 hex digits>, as a "
                "refusal prints it\n");
        return -1;
    }
    if (o->approve && o->force_deletes) {
        fprintf(stderr, "rolesyncd: --approve and --force-deletes exclude each other\n");
        return -1;
    }
    if (o->undo && (o->once || o->check || o->status || o->history || o->approve || o->njobs)) {
        fprintf(stderr, "rolesyncd: --undo goes alone (with --dry-run or --force-deletes); the "
                        "cycle names its job\n");
        return -1;
    }
    if ((o->dry_run || o->force_deletes || (o->njobs && !o->approve)) && !o->once && !o->undo) {
        fprintf(stderr, "rolesyncd: --dry-run, --job and --force-deletes need --once (--job "
                        "also goes with --approve)\n");
        return -1;
    }
    if (o->approve && (o->check || o->status || o->history)) {
        fprintf(stderr, "rolesyncd: --approve goes with --once, or alone for a running daemon\n");
        return -1;
    }
    if (o->check + o->once + o->status + o->history > 1) {
        fprintf(stderr, "rolesyncd: --check, --once, --status and --history exclude each other\n");
        return -1;
    }
    return 0;
}

/* "FILE:LINE:COLUMN: warning: message", the way compilers word it (or "warning: text" when the
 * warning names no place in the file). */
static void print_warning(const char *path, const char *w)
{
    size_t n = strlen(path), k = n;
    if (strncmp(w, path, n) == 0 && w[k] == ':') {
        for (int field = 0; field < 2 && w[k] == ':' && isdigit((unsigned char)w[k + 1]); field++)
            for (k++; isdigit((unsigned char)w[k]); k++)
                ;
        if (k > n && w[k] == ':' && w[k + 1] == ' ') {
            fprintf(stderr, "%.*s: warning: %s\n", (int)k, w, w + k + 2);
            return;
        }
    }
    fprintf(stderr, "warning: %s\n", w);
}

/* Load the config, printing warnings and errors. Returns NULL on any error. Errors are printed
 * as they are (FILE:LINE:COLUMN: message); warnings say "warning:" for --check, and otherwise
 * go through the log like every other event (so journald files them at warning priority),
 * worded as a reload words them. */
static struct cfg_config *load_config(const char *path, unsigned flags, bool check)
{
    struct cfg_diags d = {0};
    struct cfg_config *cfg = NULL;
    char q[1200];

    int rc = cfg_load_flags(path, flags, &cfg, &d);
    for (size_t i = 0; i < d.nwarnings; i++) {
        if (check)
            print_warning(path, d.warnings[i]);
        else
            log_warning(NULL, "config warning=%s", log_quote(q, sizeof q, d.warnings[i]));
    }
    for (size_t i = 0; i < d.nerrors; i++)
        fprintf(stderr, "%s\n", d.errors[i]);
    cfg_diags_free(&d);
    return rc == 0 ? cfg : NULL;
}

int main(int argc, char **argv)
{
    struct options o;
    struct cfg_config *cfg;

    if (parse_args(argc, argv, &o) != 0)
        return 1;
    log_init(LOG_LVL_INFO);
    /* --status only needs state_dir: it must work for an operator who cannot read the
     * service's secrets. */
    bool approve_daemon = o.approve && !o.once; /* needs state_dir only, like --status */
    cfg = load_config(o.config, o.status || o.history || approve_daemon ? CFG_LOAD_NO_SECRETS : 0,
                      o.check);
    if (!cfg && o.status) {
        /* A broken file is when the status (its failed reload recorded there) matters most:
         * the errors are printed above; show the status of the state_dir the file names. */
        cfg = load_config(o.config, CFG_LOAD_STATE_DIR_ONLY, false);
        if (cfg)
            fprintf(stderr, "rolesyncd: the configuration has errors (above); the status of its "
                            "state_dir follows\n");
    }
    if (!cfg)
        return 1;
    if (o.check) {
        printf("configuration OK\n");
        cfg_free(cfg);
        return 0;
    }
    log_set_level(cfg->log_level);
    if (approve_daemon) {
        int code = daemon_approve(cfg, o.jobs, o.njobs, o.approve_fp, stdout);
        cfg_free(cfg);
        return code;
    }
    if (o.explain) {
        int code = explain_run(cfg, o.jobs[0], o.user, o.role, stdout);
        cfg_free(cfg);
        return code;
    }
    if (o.undo) {
        int code = undo_run(cfg, o.undo, o.dry_run, o.force_deletes, stdout);
        cfg_free(cfg);
        return code;
    }
    if (o.once) {
        int code = once_run(cfg, o.jobs, o.njobs, o.dry_run, o.force_deletes,
                            o.approve ? o.approve_fp : NULL, o.coordinate, stdout);
        cfg_free(cfg);
        return code;
    }
    if (o.history) {
        char err[1024];
        int rc = history_print(cfg->state_dir, o.history_n, stdout, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "rolesyncd: %s\n", err);
        cfg_free(cfg);
        return rc == 0 ? 0 : 1;
    }
    if (o.status) {
        char err[1024];
        int rc = status_print_human(cfg->state_dir, stdout, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "rolesyncd: %s\n", err);
        cfg_free(cfg);
        return rc == 0 ? 0 : 1;
    }
    /* A peer closing a socket must be an error on that request, not the death of the daemon
     * (libcurl avoids SIGPIPE where it can; this covers the rest). */
    signal(SIGPIPE, SIG_IGN);
    return daemon_run(cfg, o.config);
}
