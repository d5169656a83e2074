/* config.h — the YAML configuration (product.md section 3), parsed into a fresh struct.
 *
 * cfg_load() reads a file with libyaml, checks every key of the contract (unknown keys are
 * errors), parses durations and rates, applies defaults, merges each tenant's `http:` over the
 * top-level `http:` key by key, checks cross-references, and resolves secrets. It collects every
 * problem, not just the first, as "FILE:LINE:COLUMN: message" (line and column 1-based, pointing
 * at the offending node) in a cfg_diags list. A config is returned only when there is no error;
 * warnings (e.g. a group-readable secret file) do not prevent loading.
 *
 * Diagnostics without a position: a config file that cannot be opened or read gives
 * "FILE: cannot read: <strerror text>" (e.g. "No such file or directory"), and one larger than
 * 1 MiB gives "FILE: cannot read: file is larger than 1024 KiB". YAML syntax errors point at
 * libyaml's problem mark. Aliases, more than one document, nesting deeper than 32 levels, NUL
 * characters and tags other than the core !!str/!!int/!!bool/!!map/!!seq are refused. A config
 * with no jobs is valid (with a warning). Tenant and job names are 1-64 characters of letters,
 * digits, '.', '_' and '-' (they become log fields, metric labels and status.json keys); an
 * identity tenant_id must be a GUID. Secret files are read and ca_file is checked during
 * loading, so --check proves they are readable; a secret's value never appears in a message.
 *
 * Ownership: the returned struct cfg_config and everything it points to belong to the caller and
 * are released with cfg_free(), which also wipes the resolved secrets. On reload, the daemon
 * builds a new config and swaps it whole; nothing is patched in place.
 */
#ifndef ROLESYNC_CONFIG_H
#define ROLESYNC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rolesync/log.h"

#define CFG_DEFAULT_PATH "/etc/rolesyncd/rolesyncd.yaml"
#define CFG_DEFAULT_STATE_DIR "/var/lib/rolesyncd"

enum cfg_api { CFG_API_GENESYS = 0, CFG_API_IDENTITY = 1 };
enum cfg_match_by { CFG_MATCH_EMAIL = 0, CFG_MATCH_USERNAME = 1, CFG_MATCH_EXTERNAL_ID = 2 };
enum cfg_assignments { CFG_ASSIGN_MIRROR = 0, CFG_ASSIGN_ADDITIVE = 1, CFG_ASSIGN_OFF = 2 };

/* HTTP settings; the top-level block gives defaults, a tenant's own block overrides per key. */
struct cfg_http {
    uint64_t timeout_ms;             /* whole request; default 30s */
    uint64_t connect_timeout_ms;     /* default 10s */
    unsigned max_connections;        /* requests in flight per tenant; default 8, >= 1 */
    double rate_per_sec;             /* client-side token bucket; 0 = no limit; default 300/min */
    char *ca_file;                   /* extra trust anchors, or NULL */
    unsigned retry_max_attempts;     /* including the first try; default 8, >= 1 */
    uint64_t retry_initial_delay_ms; /* default 1s */
    uint64_t retry_max_delay_ms;     /* default 60s */
};

struct cfg_tenant {
    char *name; /* key under tenants: */
    enum cfg_api api;
    char *base_url; /* without a trailing '/' */
    /* identity: where Users and Roles writes go (product.md 4b.2: only the global US-West host
     * accepts them; regional hosts are read-only replicas); NULL = base_url */
    char *write_base_url;
    char *token_url; /* explicit or derived per section 3 */
    char *tenant_id; /* identity only (required there), NULL for genesys */
    char *client_id;
    char *client_secret;      /* resolved secret; never logged; wiped by cfg_free */
    char *secret_origin;      /* "file /path" or "env NAME", for messages */
    unsigned page_size_roles; /* genesys 100, identity 1000 unless `page_size` given */
    unsigned page_size_users; /* genesys 500, identity 1000 unless `page_size` given */
    struct cfg_http http;     /* effective settings after merging */
    int line, column;         /* where the tenant is defined */
};

struct cfg_strlist {
    char **v;
    size_t n;
};

struct cfg_rename {
    char *from; /* source role (division) name */
    char *to;   /* target role (division) name */
};

struct cfg_job {
    char *name; /* NAME, or NAME/TARGET for one target of a fan-out job (product.md 4b.1) */
    /* fan-out: the job's NAME when `target:` was a list (every target one cfg_job, in list
     * order, consecutive in cfg_config.jobs, sharing one source read per cycle); else NULL */
    char *group;
    struct cfg_tenant *source; /* points into cfg_config.tenants */
    struct cfg_tenant *target;
    uint64_t interval_ms;             /* default 10m */
    struct cfg_strlist roles_include; /* default ["*"] */
    struct cfg_strlist roles_exclude;
    bool definitions; /* default false */
    struct cfg_rename *rename;
    size_t nrename;
    /* divisions (genesys <-> genesys, product.md 4a): globs over source division names ("home"
     * = the home division, "*" = the all-divisions grant), and source -> target renames */
    struct cfg_strlist divisions_include; /* default ["*"] */
    struct cfg_strlist divisions_exclude;
    struct cfg_rename *division_rename;
    size_t ndivision_rename;
    enum cfg_match_by match_by;       /* default email */
    struct cfg_strlist users_include; /* default ["*"] */
    struct cfg_strlist users_exclude;
    enum cfg_assignments assignments; /* default mirror */
    bool prune;                       /* default false */
    unsigned max_deletes;             /* default 50 */
    bool dry_run;                     /* default false */
    int line, column;
};

/* coordination: (product.md 7a): several instances share the jobs through leases on etcd. */
struct cfg_coord {
    struct cfg_strlist endpoints; /* etcd client URLs, without trailing '/'; >= 1 */
    char *prefix;                 /* keys live under it; starts and ends with '/' */
    uint64_t lease_ttl_ms;        /* default 15s; whole seconds, 2s..10m */
    char *ca_file;                /* extra trust anchors for the endpoints, or NULL */
    char *client_cert_file;       /* TLS client certificate, or NULL (with client_key_file) */
    char *client_key_file;
    char *username; /* etcd user, or NULL (then no authentication) */
    char *password; /* resolved from password_file; never logged; wiped by cfg_free */
    int line, column;
};

struct cfg_config {
    char *file;               /* path as given */
    char *state_dir;          /* key, else $STATE_DIRECTORY, else /var/lib/rolesyncd */
    enum log_level log_level; /* default info */
    char *metrics_file;       /* or NULL */
    struct cfg_http http;
    struct cfg_tenant *tenants;
    size_t ntenants;
    struct cfg_job *jobs;
    size_t njobs;
    struct cfg_coord *coordination; /* NULL: this instance runs every job (no etcd) */
    /* journal: (product.md 4c; journal.h): rotate {state_dir}/changes.jsonl at max_size
     * bytes (0: never), keeping `keep` old files. Defaults 64MiB and 4. */
    uint64_t journal_max_size;
    unsigned journal_keep;
};

#define CFG_JOURNAL_MIN_SIZE (64ull << 10) /* journal.max_size, when not 0: 64KiB .. 16GiB */
#define CFG_JOURNAL_MAX_SIZE (16ull << 30) /* journal.keep: 0 .. 100 */

/* A list of diagnostics, each a complete "FILE:LINE:COLUMN: message" line (no newline). */
struct cfg_diags {
    char **errors;
    size_t nerrors;
    char **warnings;
    size_t nwarnings;
};

/* Load and validate `path`. Returns 0 and sets *out on success (warnings may be present);
 * returns -1 with at least one error in `diags` otherwise (*out untouched). */
int cfg_load(const char *path, struct cfg_config **out, struct cfg_diags *diags);

/* Load flags. CFG_LOAD_NO_SECRETS: check the secret keys' shape but do not read the secrets
 * (client_secret stays NULL) — for `--status`, which needs only state_dir and may be run by an
 * operator who cannot read the service's credentials. */
#define CFG_LOAD_NO_SECRETS 0x1u
/* CFG_LOAD_STATE_DIR_ONLY: read state_dir (and its defaults) and nothing else -- for
 * `--status` when the file has errors, which is when its recorded failed reload matters. */
#define CFG_LOAD_STATE_DIR_ONLY 0x2u
int cfg_load_flags(const char *path, unsigned flags, struct cfg_config **out,
                   struct cfg_diags *diags);

/* Same from a memory buffer; `name` is used in messages and as the base for relative secret
 * files (its folder). Used by the fuzzer and unit tests. */
int cfg_load_buffer(const char *name, const char *buf, size_t len, struct cfg_config **out,
                    struct cfg_diags *diags);

void cfg_free(struct cfg_config *cfg);
void cfg_diags_free(struct cfg_diags *d);

const struct cfg_tenant *cfg_find_tenant(const struct cfg_config *cfg, const char *name);
const struct cfg_job *cfg_find_job(const struct cfg_config *cfg, const char *name);
const char *cfg_api_name(enum cfg_api api);
/* Whether two coordination blocks are the same (NULL = none); a reload that changes it starts
 * a new lease. */
bool cfg_coord_equal(const struct cfg_coord *a, const struct cfg_coord *b);

/* "500ms", "30s", "10m", "1h" (a positive integer and one unit) -> milliseconds. 0 / -1. */
int cfg_parse_duration(const char *s, uint64_t *ms);
/* "1048576", "512KiB", "64MiB", "1GiB" (a whole number, no leading zero, and an optional
 * binary unit) -> bytes. 0 / -1. */
int cfg_parse_size(const char *s, uint64_t *bytes);
/* Bytes in the largest exact unit ("64MiB", "1000") into buf; returns buf. */
char *cfg_format_size(uint64_t bytes, char *buf, size_t n);
/* "5/s", "300/min", "0" -> requests per second (0 = none). 0 / -1. */
int cfg_parse_rate(const char *s, double *per_sec);
/* Also "1000/h". Formats milliseconds in the largest exact unit ("10m", "1500ms") into buf;
 * returns buf. For messages and logs. */
char *cfg_format_duration(uint64_t ms, char *buf, size_t n);

#endif
