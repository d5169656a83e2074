/* sim_gen.c — `tenantsim gen`: writes a deterministic, realistic tenant state (the JSON format of
 * tests/sim/README.md, the one `--state` and `PUT /_sim/state` read) to stdout.
 *
 *   tenantsim gen --api genesys|identity --users N --roles N [--seed S] [--tenant-id GUID]
 *                 [--divisions N] [--groups N] [--conditions K] [--inactive-share PCT]
 *   tenantsim gen --same-as FILE [--seed S] [--drift PCT] [--edit-roles K] [--no-custom-roles]
 *                 [--rename-division OLD=NEW]... [--drop-division NAME]...
 *
 * Fresh tenants: default/built-in roles, N custom roles with permission policies, users with
 * unique lower-case emails and a skewed role assignment (a few roles on most users, many roles
 * on few). `--same-as` reads a state and writes a second tenant with the same people (same
 * emails, usernames, ExternalUserIds), new ids for everything, and a controlled amount of drift.
 *
 * Version 2 (simulator.md §3b, genesys only). `--divisions N` replaces the fixed divisions with
 * the home division and N regional ones; 60 % of the users live outside the home division and
 * about a third of all grants land outside it (in the user's own division, or a random one for
 * users at home; 0.5 % of those in "*", 5 % also kept at home, so some roles are held in two
 * places). `--groups N` adds groups with a Zipf-like spread of members (0.5 % to 5 % of the
 * users) and one to three role grants each, some outside the home division. `--conditions K`
 * puts an org-specific policy (a QUEUE or USER condition, or namedResources) on K custom roles,
 * naming the org's own queues (the state's "queues", which only gen reads) and users.
 * `--inactive-share PCT` makes that share of users inactive (default 4 %; 1 % are deleted).
 * `--same-as` keeps divisions, groups and queues by name with new ids, the same members and
 * grants, gives the conditions the twin's own ids, and can rename or drop divisions (a dropped
 * division's grants vanish and its users move to the home division).
 *
 * Everything random comes from one splitmix64 stream seeded by --seed, and the output contains
 * nothing else that varies (no clock, no addresses), so the same arguments give the same bytes.
 * What version 2 adds draws from a second stream (seed-derived) after the first is done, and is
 * written only when asked for, so without the new options the output is byte for byte what
 * version 1 wrote. The output is written by a small streaming writer (not a json-c tree) so a
 * fresh tenant of 100,000 users costs a few tens of MB of heap. `--same-as` parses its source
 * with json-c, which for 100,000 users takes about 300 MB and two seconds, acceptable for a
 * fixture made once. Strings live in an arena freed at once at the end.
 */
#include "sim_gen.h"

#include "rolesync/util.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uthash.h>

/* ------------------------------------------------------------------------------------------ */
/* allocation                                                                                   */

/* A bump allocator: the generator makes hundreds of thousands of small strings that all live
 * until the output is written, so one free of a few large chunks beats tracking each. */
typedef struct gen_chunk {
    struct gen_chunk *next;
    char *data;
    size_t used, cap;
} gen_chunk;

typedef struct {
    gen_chunk *head;
} gen_arena;

static void *arena_alloc(gen_arena *a, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        gen_chunk *c = xmalloc(sizeof *c);
        c->data = xmalloc(cap);
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

static char *arena_strdup(gen_arena *a, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(a, n);
    memcpy(p, s, n);
    return p;
}

static char *arena_printf(gen_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *arena_printf(gen_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static void arena_free(gen_arena *a)
{
    while (a->head) {
        gen_chunk *c = a->head;
        a->head = c->next;
        free(c->data);
        free(c);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* PRNG: splitmix64 — tiny, fast, and the same sequence on every platform.                      */

typedef struct {
    uint64_t s;
} gen_rng;

static uint64_t rng_next(gen_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(gen_rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n) (n > 0), by multiply-shift: no modulo bias worth speaking of for n < 2^32. */
static uint32_t rng_below(gen_rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static bool rng_chance(gen_rng *r, double p)
{
    return rng_unit(r) < p;
}

/* A version-4 style GUID, lower-case 8-4-4-4-12, from two PRNG draws. */
static void rng_guid(gen_rng *r, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    uint64_t x = rng_next(r), y = rng_next(r);
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(x >> (8 * i));
        b[8 + i] = (uint8_t)(y >> (8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* Streaming JSON writer                                                                        */

typedef struct {
    FILE *f;
    char buf[1 << 16];
    size_t len;
    bool err;
} gen_writer;

static void w_flush(gen_writer *w)
{
    if (w->len && !w->err && fwrite(w->buf, 1, w->len, w->f) != w->len)
        w->err = true;
    w->len = 0;
}

static void w_raw(gen_writer *w, const char *s, size_t n)
{
    if (n >= sizeof w->buf) {
        w_flush(w);
        if (!w->err && fwrite(s, 1, n, w->f) != n)
            w->err = true;
        return;
    }
    if (w->len + n > sizeof w->buf)
        w_flush(w);
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void w_lit(gen_writer *w, const char *s)
{
    w_raw(w, s, strlen(s));
}

/* A JSON string (or null for NULL); UTF-8 passes through, control characters are escaped. */
static void w_str(gen_writer *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        w_raw(w, "null", 4);
        return;
    }
    w_raw(w, "\"", 1);
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\')
            continue;
        w_raw(w, run, (size_t)((const char *)p - run));
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (*p) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        }
        w_raw(w, esc, n);
        run = (const char *)p + 1;
    }
    w_raw(w, run, strlen(run));
    w_raw(w, "\"", 1);
}

/* `"key":` */
static void w_key(gen_writer *w, const char *key)
{
    w_str(w, key);
    w_raw(w, ":", 1);
}

static void w_int(gen_writer *w, long long v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%lld", v);
    w_raw(w, b, (size_t)n);
}

static void w_bool(gen_writer *w, bool v)
{
    w_lit(w, v ? "true" : "false");
}

static void w_json(gen_writer *w, json_object *o)
{
    if (!o) {
        w_lit(w, "null");
        return;
    }
    w_lit(w, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* ------------------------------------------------------------------------------------------ */
/* Realistic vocabulary                                                                         */

static const char *const first_names[] = {
    "Ada",       "Alan",        "Grace",    "Linus",    "Margaret",  "Dennis",    "Barbara",
    "Ken",       "Frances",     "John",     "Mary",     "James",     "Patricia",  "Robert",
    "Jennifer",  "Michael",     "Linda",    "William",  "Elizabeth", "David",     "Susan",
    "Richard",   "Jessica",     "Joseph",   "Sarah",    "Thomas",    "Karen",     "Charles",
    "Nancy",     "Christopher", "Lisa",     "Daniel",   "Betty",     "Matthew",   "Sandra",
    "Anthony",   "Ashley",      "Mark",     "Kimberly", "Donald",    "Emily",     "Steven",
    "Donna",     "Paul",        "Michelle", "Andrew",   "Carol",     "Joshua",    "Amanda",
    "Kenneth",   "Melissa",     "Kevin",    "Deborah",  "Brian",     "Stephanie", "George",
    "Rebecca",   "Timothy",     "Sharon",   "Ronald",   "Laura",     "Jason",     "Cynthia",
    "Edward",    "Amy",         "Jeffrey",  "Angela",   "Ryan",      "Helen",     "Jacob",
    "Anna",      "Gary",        "Brenda",   "Nicholas", "Pamela",    "Eric",      "Nicole",
    "Jonathan",  "Emma",        "Stephen",  "Samantha", "Larry",     "Katherine", "Justin",
    "Christine", "Scott",       "Debra",    "Brandon",  "Rachel",    "Benjamin",  "Carolyn",
    "Samuel",    "Janet",       "Raymond",  "Maria",    "Priya",     "Wei",       "Yuki",
    "Ahmed",     "Fatima",      "Olga",     "Lars",     "Ingrid",    "Mateo",     "Sofia",
    "Kwame",     "Amara",       "Hiroshi",  "Aiko",     "Ravi",      "Ananya",    "Diego",
    "Lucia",     "Noah",        "Chloe",    "Liam",     "Zara",      "Omar",      "Leila",
    "Pierre",    "Camille",
};

static const char *const last_names[] = {
    "Lovelace", "Turing",   "Hopper",   "Torvalds",   "Hamilton",  "Ritchie",  "Liskov",
    "Thompson", "Allen",    "Backus",   "Smith",      "Johnson",   "Williams", "Brown",
    "Jones",    "Garcia",   "Miller",   "Davis",      "Rodriguez", "Martinez", "Hernandez",
    "Lopez",    "Gonzalez", "Wilson",   "Anderson",   "Thomas",    "Taylor",   "Moore",
    "Jackson",  "Martin",   "Lee",      "Perez",      "White",     "Harris",   "Sanchez",
    "Clark",    "Ramirez",  "Lewis",    "Robinson",   "Walker",    "Young",    "King",
    "Wright",   "Scott",    "Torres",   "Nguyen",     "Hill",      "Flores",   "Green",
    "Adams",    "Nelson",   "Baker",    "Hall",       "Rivera",    "Campbell", "Mitchell",
    "Carter",   "Roberts",  "Gomez",    "Phillips",   "Evans",     "Turner",   "Diaz",
    "Parker",   "Cruz",     "Edwards",  "Collins",    "Reyes",     "Stewart",  "Morris",
    "Morales",  "Murphy",   "Cook",     "Rogers",     "Gutierrez", "Ortiz",    "Morgan",
    "Cooper",   "Peterson", "Bailey",   "Reed",       "Kelly",     "Howard",   "Ramos",
    "Kim",      "Cox",      "Ward",     "Richardson", "Watson",    "Brooks",   "Chavez",
    "Wood",     "James",    "Bennett",  "Gray",       "Mendoza",   "Ruiz",     "Hughes",
    "Price",    "Alvarez",  "Castillo", "Sanders",    "Patel",     "Myers",    "Long",
    "Ross",     "Foster",   "Jimenez",  "Tanaka",     "Suzuki",    "Chen",     "Wang",
    "Singh",    "Kumar",    "Okafor",   "Mensah",     "Ivanova",   "Larsen",   "Johansson",
    "Rossi",    "Bianchi",  "Dubois",   "Laurent",    "Schmidt",   "Fischer",  "Weber",
    "Kowalski", "Novak",    "Haddad",   "Khan",       "Ali",       "Silva",    "Santos",
    "Costa",    "Yamamoto",
};

/* Names with non-ASCII letters or punctuation, with the ASCII form used in email addresses;
 * a small share of users get one so UTF-8 and escaping paths are exercised. */
static const struct {
    const char *display, *ascii;
} odd_first[] = {
    {"José", "jose"},         {"Zoë", "zoe"},     {"Søren", "soren"},   {"Björk", "bjork"},
    {"François", "francois"}, {"Chloé", "chloe"}, {"Łukasz", "lukasz"}, {"Siân", "sian"},
};
static const struct {
    const char *display, *ascii;
} odd_last[] = {
    {"O'Brien", "obrien"},
    {"Müller", "muller"},
    {"García", "garcia"},
    {"Nguyễn", "nguyen"},
    {"Smith-Jones", "smith-jones"},
    {"D'Angelo", "dangelo"},
    {"Øster", "oster"},
    {"Çelik", "celik"},
};

static const char *const org_names[] = {
    "Example Org",       "Acme Contact Center", "Globex Support",         "Initech Customer Care",
    "Umbrella Services", "Stark Support Desk",  "Wayne Enterprises Care", "Hooli Help",
};

static const char *const departments[] = {
    "Sales",
    "Support",
    "Billing",
    "Marketing",
    "Finance",
    "HR",
    "IT",
    "Operations",
    "Quality",
    "Workforce",
    "Outbound",
    "Inbound",
    "Training",
    "Compliance",
    "Facilities",
    "Legal",
    "Product",
    "Engineering",
    "Partner",
    "Retention",
    "Collections",
    "Onboarding",
    "Escalations",
    "Technical Support",
    "Customer Success",
    "Reporting",
    "Procurement",
    "Security",
    "Field Service",
    "Digital",
    "Social Media",
    "Chat",
    "Email",
    "Voice",
    "Premium Care",
    "Enterprise",
    "SMB",
    "EMEA",
    "APAC",
    "Americas",
};

static const char *const functions[] = {
    "Agent",    "Team Lead",   "Supervisor", "Manager",   "Analyst",    "Viewer",
    "Admin",    "Coordinator", "Specialist", "Auditor",   "Trainer",    "Scheduler",
    "Reviewer", "Editor",      "Director",   "Associate", "Consultant", "Planner",
};

/* Permission catalog: domain, entity, and the actions the platform offers on it. */
typedef struct {
    const char *domain, *entity;
    const char *actions[6];
} gen_perm;

static const gen_perm perm_catalog[] = {
    {"directory", "user", {"view", "add", "edit", "delete"}},
    {"directory", "group", {"view", "add", "edit", "delete"}},
    {"directory", "location", {"view", "add", "edit"}},
    {"routing", "queue", {"view", "add", "edit", "delete", "join"}},
    {"routing", "skill", {"manage", "assign"}},
    {"routing", "wrapupCode", {"view", "add", "edit"}},
    {"routing", "language", {"manage", "assign"}},
    {"quality", "evaluation", {"view", "add", "edit", "delete", "release"}},
    {"quality", "calibration", {"view", "add", "edit"}},
    {"quality", "surveyForm", {"view", "add", "edit", "publish"}},
    {"analytics", "conversationDetail", {"view"}},
    {"analytics", "userDetail", {"view"}},
    {"analytics", "dashboard", {"view", "add", "edit"}},
    {"analytics", "queueObservation", {"view"}},
    {"outbound", "campaign", {"view", "add", "edit", "delete"}},
    {"outbound", "contactList", {"view", "add", "edit", "delete"}},
    {"outbound", "dncList", {"view", "add", "edit"}},
    {"telephony", "plugin", {"all"}},
    {"telephony", "phone", {"view", "add", "edit", "delete"}},
    {"telephony", "station", {"view"}},
    {"authorization", "role", {"view", "add", "edit", "delete"}},
    {"authorization", "grant", {"add", "delete"}},
    {"authorization", "division", {"view", "add", "edit"}},
    {"conversation", "call", {"add", "record", "monitor", "coach"}},
    {"conversation", "communication", {"view", "disconnect", "transfer"}},
    {"architect", "flow", {"view", "edit", "publish"}},
    {"recording", "recording", {"view", "delete", "annotateAll"}},
    {"recording", "screenRecording", {"view"}},
    {"workforceManagement", "schedule", {"view", "administer"}},
    {"workforceManagement", "timeOffRequest", {"view", "add", "edit"}},
    {"billing", "subscription", {"view"}},
    {"learning", "module", {"view", "add", "assign"}},
    {"knowledge", "knowledgebase", {"view", "add", "edit"}},
};
#define PERM_COUNT (sizeof perm_catalog / sizeof perm_catalog[0])

static const char *const flat_permissions[] = {
    "group_creation",
    "group_administration",
    "user_manager",
    "user_administration",
};

/* Genesys default roles; `share` is the fraction of users holding it. */
static const struct {
    const char *id, *name, *desc;
    double share;
} genesys_defaults[] = {
    {"employee", "Employee", "Default role for every user in the organization", 1.0},
    {"admin", "Master Admin", "Full administrative access to the organization", 0.004},
    {"trustedUser", "Trusted External User", "Default role for users from a trusted organization",
     0.005},
    {"user", "User", "Basic access for people who handle interactions", 0.45},
    {"supervisor", "Supervisor", "Monitor queues, agents and interactions", 0.05},
    {"qualityEvaluator", "Quality Evaluator", "Evaluate recorded interactions", 0.02},
    {"contactCenterManager", "Contact Center Manager", "Manage contact center configuration", 0.01},
    {"communicateUser", "Communicate - User", "Calls, chat and collaboration", 0.1},
};
#define GENESYS_NDEFAULTS (sizeof genesys_defaults / sizeof genesys_defaults[0])

/* Identity built-in roles (api/identity.md section 5) and the share of users holding each. */
#define IDENTITY_ADMIN_TYPE "2dc742ab-39ea-4fc0-a39e-2bcb71c26a5f"
#define IDENTITY_MEMBER_TYPE "7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977"
static const struct {
    const char *type, *name, *desc;
    double share;
} identity_builtins[] = {
    {IDENTITY_ADMIN_TYPE, "Tenant Administrator", "Full control of the tenant", 0.004},
    {"f1439595-e5a2-487f-8a4f-0627fefe75df", "Tenant Contributor",
     "Create and change tenant resources", 0.05},
    {"45b66433-5f57-420b-bbdf-8bbd60c1cd9d", "Tenant Data Steward",
     "Manage data and stream metadata", 0.02},
    {"e6cbf91e-0be8-4858-92b5-f88ecafd5574", "Tenant Viewer", "Read access to tenant resources",
     0.2},
    {IDENTITY_MEMBER_TYPE, "Tenant Member", "Held by every user and client of the tenant", 1.0},
    {"b50b3349-fa9e-4a03-9220-cf99184b4645", "Community Administrator",
     "Administers the tenant's communities", 0.002},
};
#define IDENTITY_NBUILTINS (sizeof identity_builtins / sizeof identity_builtins[0])

/* The one identity provider accepted users come from (the AAD id the public Python library
 * hard-codes); per-tenant differences are not modelled. */
#define IDENTITY_IDP_ID "e2398938-bf8f-40fa-b380-d538ece2bfc2"

/* ------------------------------------------------------------------------------------------ */
/* Tenant model                                                                                 */

typedef struct {
    char id[37];
    char *name, *description;
    char *default_role_id; /* genesys default roles only, else NULL */
    bool is_default, base;
    json_object *permissions; /* genesys: array of strings (owned reference) */
    json_object *policies;    /* genesys: array of DomainPermissionPolicy (owned) */
    const char *role_type_id; /* identity built-ins, else NULL (points into arena/static) */
    int role_scope;           /* identity */
    char *community_id;       /* identity, normally NULL */
} gen_role;

typedef struct {
    char id[37];
    /* genesys: name, email, username, state, division. identity: name/given/surname/email may be
     * NULL (invitation not accepted), the contact_* fields and external/idp ids. */
    char *name, *given, *surname, *email, *username, *state;
    char *contact_email, *contact_given, *contact_surname, *external_id, *idp_id;
    uint32_t division;
    uint32_t *roles; /* indices into gen_tenant.roles: genesys, the home-division grants */
    uint32_t nroles;
    struct gen_grant *xgrants; /* genesys: direct grants outside the home division */
    uint32_t nx;
} gen_user;

/* A grant outside the home division: a role and a division index (DIV_ALL: "*"). DIV_NONE
 * marks a division that is not there (unknown, dropped). */
#define DIV_ALL UINT32_MAX
#define DIV_NONE (UINT32_MAX - 1)
typedef struct gen_grant {
    uint32_t role, div;
} gen_grant;

typedef struct {
    char id[37];
    char *name;
    bool home;
} gen_division;

typedef struct {
    char id[37];
    char *name;
    uint32_t *members; /* user indices, ascending */
    uint32_t nmembers;
    uint32_t *roles; /* home-division grants */
    uint32_t nroles;
    gen_grant *xgrants;
    uint32_t nx;
} gen_group;

/* An org's queue, only for the ids org-specific policy conditions name. */
typedef struct {
    char id[37];
    char *name;
} gen_queue;

typedef struct {
    bool identity;
    char org_id[37]; /* genesys org id or identity tenant id */
    char *org_name;
    json_object *unlicensed; /* array of strings (owned) */
    bool backfill, division_aware;
    gen_division *divisions;
    uint32_t ndivisions;
    uint32_t home; /* index of the home division (0 in a fresh tenant) */
    gen_role *roles;
    uint32_t nroles;
    gen_user *users;
    uint32_t nusers;
    gen_group *groups;
    uint32_t ngroups;
    gen_queue *queues;
    uint32_t nqueues;
    gen_arena ar;
} gen_tenant;

typedef struct {
    const char *api;
    long users, roles;
    uint64_t seed;
    const char *same_as;
    double drift;
    long edit_roles;
    bool no_custom;
    const char *tenant_id;
    /* version 2 (genesys); -1 = not given */
    long divisions, groups, conditions;
    double inactive_share;
    const char **renames, **drops; /* --rename-division OLD=NEW, --drop-division NAME */
    size_t nrenames, ndrops;
} gen_opts;

static void tenant_free(gen_tenant *t)
{
    for (uint32_t i = 0; i < t->nroles; i++) {
        json_object_put(t->roles[i].permissions);
        json_object_put(t->roles[i].policies);
    }
    json_object_put(t->unlicensed);
    free(t->roles);
    free(t->users);
    free(t->divisions);
    free(t->groups);
    free(t->queues);
    arena_free(&t->ar);
}

/* Is role r protected from drift and removal: employee / Tenant Member (always held) and the
 * administrator roles (left alone so drift never locks anybody out). */
static bool role_is_anchor(const gen_tenant *t, const gen_role *r)
{
    if (t->identity)
        return r->role_type_id && strcmp(r->role_type_id, IDENTITY_MEMBER_TYPE) == 0;
    return r->default_role_id && strcmp(r->default_role_id, "employee") == 0;
}

static bool role_is_admin(const gen_tenant *t, const gen_role *r)
{
    if (t->identity)
        return r->role_type_id && strcmp(r->role_type_id, IDENTITY_ADMIN_TYPE) == 0;
    return r->default_role_id && strcmp(r->default_role_id, "admin") == 0;
}

static bool role_is_custom(const gen_tenant *t, const gen_role *r)
{
    return t->identity ? r->role_type_id == NULL : !r->is_default;
}

/* ------------------------------------------------------------------------------------------ */
/* Role contents                                                                                */

static json_object *make_policy(const char *domain, const char *entity, json_object *actions)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "domain", json_object_new_string(domain));
    json_object_object_add(p, "entityName", json_object_new_string(entity));
    json_object_object_add(p, "actionSet", actions);
    json_object_object_add(p, "allowConditions", json_object_new_boolean(0));
    json_object_object_add(p, "policyName", json_object_new_string("default"));
    json_object_object_add(p, "namedResources", json_object_new_array());
    return p;
}

/* A policy for catalog entry e with a random non-empty subset of its actions (sometimes "*"). */
static json_object *random_policy(gen_rng *r, const gen_perm *e)
{
    json_object *acts = json_object_new_array();
    if (rng_chance(r, 0.05)) {
        json_object_array_add(acts, json_object_new_string("*"));
    } else {
        for (int i = 0; i < 6 && e->actions[i]; i++)
            if (rng_chance(r, 0.6))
                json_object_array_add(acts, json_object_new_string(e->actions[i]));
        if (json_object_array_length(acts) == 0)
            json_object_array_add(acts, json_object_new_string(e->actions[0]));
    }
    return make_policy(e->domain, e->entity, acts);
}

static bool policies_have(json_object *policies, const char *domain, const char *entity)
{
    size_t n = json_object_array_length(policies);
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(policies, i), *d, *en;
        if (json_object_object_get_ex(p, "domain", &d) &&
            json_object_object_get_ex(p, "entityName", &en) &&
            strcmp(json_object_get_string(d), domain) == 0 &&
            strcmp(json_object_get_string(en), entity) == 0)
            return true;
    }
    return false;
}

/* Add a random catalog policy whose domain/entity the array does not have yet; false when the
 * array already covers the whole catalog. */
static bool add_new_policy(gen_rng *r, json_object *policies)
{
    uint32_t start = rng_below(r, PERM_COUNT);
    for (uint32_t k = 0; k < PERM_COUNT; k++) {
        const gen_perm *e = &perm_catalog[(start + k) % PERM_COUNT];
        if (!policies_have(policies, e->domain, e->entity)) {
            json_object_array_add(policies, random_policy(r, e));
            return true;
        }
    }
    return false;
}

static json_object *random_policies(gen_rng *r, uint32_t min, uint32_t max)
{
    json_object *arr = json_object_new_array();
    uint32_t n = min + rng_below(r, max - min + 1);
    for (uint32_t i = 0; i < n; i++)
        add_new_policy(r, arr);
    return arr;
}

/* ------------------------------------------------------------------------------------------ */
/* Role assignment with a realistic skew                                                        */

/* (user, role) pairs collected role by role, then grouped per user. */
typedef struct {
    uint32_t user, role;
} gen_pair;

typedef struct {
    gen_pair *v;
    size_t n, cap;
} gen_pairs;

static void pairs_push(gen_pairs *p, uint32_t user, uint32_t role)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 4096;
        p->v = xrealloc(p->v, p->cap * sizeof *p->v);
    }
    p->v[p->n].user = user;
    p->v[p->n].role = role;
    p->n++;
}

/* Give role `role` to each of n users independently with probability p, visiting only the
 * chosen users (geometric skips), so the cost is the number of grants, not users x roles. */
static void assign_share(gen_pairs *p, gen_rng *r, uint32_t n, uint32_t role, double prob)
{
    if (prob <= 0.0)
        return;
    if (prob >= 1.0) {
        for (uint32_t i = 0; i < n; i++)
            pairs_push(p, i, role);
        return;
    }
    double lq = log1p(-prob);
    int64_t i = -1;
    for (;;) {
        double u = rng_unit(r);
        if (u <= 0.0)
            u = 0x1.0p-53;
        double skip = log(u) / lq;
        if (skip >= (double)n)
            break;
        i += 1 + (int64_t)skip;
        if (i >= (int64_t)n)
            break;
        pairs_push(p, (uint32_t)i, role);
    }
}

/* Turn the pairs into each user's role array (stable: per user, in the order roles were
 * assigned); drops duplicates. */
static void pairs_apply(gen_tenant *t, gen_pairs *p)
{
    uint32_t *count = xcalloc(t->nusers + 1, sizeof *count);
    for (size_t i = 0; i < p->n; i++)
        count[p->v[i].user]++;
    for (uint32_t u = 0; u < t->nusers; u++) {
        t->users[u].roles = arena_alloc(&t->ar, (count[u] ? count[u] : 1) * sizeof(uint32_t));
        t->users[u].nroles = 0;
    }
    for (size_t i = 0; i < p->n; i++) {
        gen_user *u = &t->users[p->v[i].user];
        bool dup = false;
        for (uint32_t k = 0; k < u->nroles && !dup; k++)
            dup = u->roles[k] == p->v[i].role;
        if (!dup)
            u->roles[u->nroles++] = p->v[i].role;
    }
    free(count);
}

/* Probability that a user holds the custom role of popularity rank k (0 = most popular):
 * the top few are on most users, the long tail on a handful (Zipf-like). */
static double custom_share(uint32_t rank)
{
    /* 1.2 / (k (1 + 0.1 ln k)) with k = rank + 1, capped at 0.9: about 0.9, 0.56, 0.36 for the
     * top three, 0.1 at rank 10, under 0.01 past rank 100 (a little steeper than 1/k). */
    double k = (double)rank + 1.0;
    double p = 1.2 / (k * (1.0 + 0.1 * log(k)));
    return p > 0.9 ? 0.9 : p;
}

/* ------------------------------------------------------------------------------------------ */
/* Fresh tenants                                                                                */

static void make_custom_role_names(gen_tenant *t, gen_rng *r, uint32_t first, uint32_t count)
{
    uint32_t nd = (uint32_t)(sizeof departments / sizeof departments[0]);
    uint32_t nf = (uint32_t)(sizeof functions / sizeof functions[0]);
    uint32_t m = nd * nf;
    uint32_t *perm = xmalloc(m * sizeof *perm);
    for (uint32_t i = 0; i < m; i++)
        perm[i] = i;
    for (uint32_t i = m - 1; i > 0; i--) {
        uint32_t j = rng_below(r, i + 1), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < count; k++) {
        const char *dept = departments[perm[k % m] / nf], *fn = functions[perm[k % m] % nf];
        char *name = k < m ? arena_printf(&t->ar, "%s %s", dept, fn)
                           : arena_printf(&t->ar, "%s %s %" PRIu32, dept, fn, k / m + 1);
        bool clash = false;
        for (uint32_t j = 0; j < first && !clash; j++)
            clash = strcasecmp(t->roles[j].name, name) == 0;
        if (clash)
            continue;
        gen_role *role = &t->roles[first + i];
        role->name = name;
        role->description = arena_printf(&t->ar, "%s permissions for the %s team", fn, dept);
        i++;
    }
    free(perm);
}

static void make_person(gen_tenant *t, gen_rng *r, uint32_t idx, const char **first,
                        const char **last, char **email)
{
    const char *fa, *la;
    if (rng_chance(r, 0.02)) {
        uint32_t k = rng_below(r, (uint32_t)(sizeof odd_first / sizeof odd_first[0]));
        *first = odd_first[k].display;
        fa = odd_first[k].ascii;
    } else {
        *first = fa =
            first_names[rng_below(r, (uint32_t)(sizeof first_names / sizeof first_names[0]))];
    }
    if (rng_chance(r, 0.02)) {
        uint32_t k = rng_below(r, (uint32_t)(sizeof odd_last / sizeof odd_last[0]));
        *last = odd_last[k].display;
        la = odd_last[k].ascii;
    } else {
        *last = la = last_names[rng_below(r, (uint32_t)(sizeof last_names / sizeof last_names[0]))];
    }
    /* The ordinal suffix makes every address unique without a lookup table. */
    char *e = arena_printf(&t->ar, "%s.%s%" PRIu32 "@example.com", fa, la, idx + 1);
    for (char *c = e; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    *email = e;
}

/* Shuffle [0, n) into perm. */
static uint32_t *random_permutation(gen_rng *r, uint32_t n)
{
    uint32_t *perm = xmalloc((n ? n : 1) * sizeof *perm);
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rng_below(r, i), tmp = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = tmp;
    }
    return perm;
}

static void assign_roles(gen_tenant *t, gen_rng *r, uint32_t ndefaults, const double *default_share,
                         uint32_t admin_idx)
{
    gen_pairs pairs = {0};
    uint32_t ncustom = t->nroles - ndefaults;
    uint32_t *rank = random_permutation(r, ncustom); /* popularity rank of each custom role */
    for (uint32_t i = 0; i < t->nroles; i++) {
        if (i == admin_idx && t->nusers > 0)
            pairs_push(&pairs, 0, i); /* somebody always administers the tenant */
        double share = i < ndefaults ? default_share[i] : custom_share(rank[i - ndefaults]);
        assign_share(&pairs, r, t->nusers, i, share);
    }
    free(rank);
    pairs_apply(t, &pairs);
    free(pairs.v);
}

/* ------------------------------------------------------------------------------------------ */
/* Version 2 (genesys): divisions, grants outside the home division, groups, conditions        */

static const char *const region_names[] = {
    "EMEA",    "APAC",        "Americas", "North America", "LATAM",   "UK & Ireland", "DACH",
    "Nordics", "ANZ",         "Japan",    "India",         "Benelux", "France",       "Iberia",
    "Italy",   "Middle East", "Africa",   "Canada",        "Brazil",  "Mexico",
};

static const char *const group_names[] = {
    "Tier 1 Support", "Tier 2 Support",     "Team Leads",           "Quality Team",
    "Night Shift",    "Workforce Planners", "Sales Team",           "Onboarding Cohort",
    "Supervisors",    "Escalations Desk",   "Reporting Users",      "Knowledge Authors",
    "Outbound Team",  "Chat Agents",        "Email Agents",         "Billing Team",
    "Retention Team", "IT Admins",          "Compliance Reviewers", "Trainers",
};

static const char *const queue_names[] = {
    "Sales Queue",    "Support Queue", "Billing Queue", "VIP Queue",
    "Callback Queue", "Spanish Queue", "Chat Queue",    "Escalations Queue",
};

#define NAMES(a) (uint32_t)(sizeof a / sizeof a[0])

/* The stream version 2 draws from: separate from the first, so the first's draws (and the
 * version 1 output) do not depend on what version 2 adds. */
static gen_rng v2_stream(uint64_t seed)
{
    gen_rng r = {seed ^ 0x7632646976677270ULL};
    rng_next(&r);
    return r;
}

/* names[i], or names[i mod n] numbered past the end of the list. */
static char *nth_name(gen_tenant *t, const char *const *names, uint32_t n, uint32_t i)
{
    return i < n ? arena_strdup(&t->ar, names[i])
                 : arena_printf(&t->ar, "%s %" PRIu32, names[i % n], i / n + 1);
}

static uint32_t role_index_kind(const gen_tenant *t, const char *drid)
{
    for (uint32_t i = 0; i < t->nroles; i++)
        if (t->roles[i].default_role_id && strcmp(t->roles[i].default_role_id, drid) == 0)
            return i;
    return UINT32_MAX;
}

/* A division other than home (0), uniformly; 0 when there is none. */
static uint32_t other_division(const gen_tenant *t, gen_rng *r)
{
    return t->ndivisions > 1 ? 1 + rng_below(r, t->ndivisions - 1) : 0;
}

/* Move about a third of all grants out of the home division: of each user's grants but
 * employee and admin, a share p goes to the user's own division (a random other one for users
 * at home), 0.5 % of those to "*", and 5 % of them stay at home as well. */
static void place_grants(gen_tenant *t, gen_rng *r)
{
    if (t->ndivisions < 2)
        return;
    uint32_t anchor = role_index_kind(t, "employee"), admin = role_index_kind(t, "admin");
    uint64_t total = 0, movable = 0;
    uint32_t most = 1;
    for (uint32_t i = 0; i < t->nusers; i++) {
        const gen_user *u = &t->users[i];
        total += u->nroles;
        for (uint32_t k = 0; k < u->nroles; k++)
            movable += u->roles[k] != anchor && u->roles[k] != admin;
        if (u->nroles > most)
            most = u->nroles;
    }
    double p = movable ? ((double)total / 3.0) / (double)movable : 0.0;
    if (p > 0.9)
        p = 0.9;
    gen_grant *tmp = xmalloc(most * sizeof *tmp);
    for (uint32_t i = 0; i < t->nusers; i++) {
        gen_user *u = &t->users[i];
        uint32_t kept = 0, nx = 0;
        for (uint32_t k = 0; k < u->nroles; k++) {
            uint32_t role = u->roles[k];
            if (role == anchor || role == admin || !rng_chance(r, p)) {
                u->roles[kept++] = role;
                continue;
            }
            uint32_t div = u->division != 0 ? u->division : other_division(t, r);
            if (rng_chance(r, 0.005))
                div = DIV_ALL;
            tmp[nx].role = role;
            tmp[nx++].div = div;
            if (rng_chance(r, 0.05))
                u->roles[kept++] = role;
        }
        u->nroles = kept;
        if (nx) {
            u->xgrants = arena_alloc(&t->ar, nx * sizeof *u->xgrants);
            memcpy(u->xgrants, tmp, nx * sizeof *tmp);
            u->nx = nx;
        }
    }
    free(tmp);
}

static void make_groups(gen_tenant *t, gen_rng *r, uint32_t n)
{
    /* roles a group is given: custom ones, else the default ones but employee and admin */
    uint32_t *cand = xmalloc((t->nroles + 1) * sizeof *cand), ncand = 0;
    for (uint32_t i = 0; i < t->nroles; i++)
        if (role_is_custom(t, &t->roles[i]))
            cand[ncand++] = i;
    if (ncand == 0)
        for (uint32_t i = 0; i < t->nroles; i++)
            if (!role_is_anchor(t, &t->roles[i]) && !role_is_admin(t, &t->roles[i]))
                cand[ncand++] = i;
    t->groups = xcalloc(n ? n : 1, sizeof *t->groups);
    t->ngroups = n;
    for (uint32_t g = 0; g < n; g++) {
        gen_group *gr = &t->groups[g];
        rng_guid(r, gr->id);
        gr->name = nth_name(t, group_names, NAMES(group_names), g);
        gen_pairs pairs = {0};
        assign_share(&pairs, r, t->nusers, g, 0.005 + 0.045 / (double)(g + 1));
        if (pairs.n == 0 && t->nusers > 0)
            pairs_push(&pairs, rng_below(r, t->nusers), g);
        gr->members = arena_alloc(&t->ar, (pairs.n + 1) * sizeof *gr->members);
        for (size_t k = 0; k < pairs.n; k++)
            gr->members[gr->nmembers++] = pairs.v[k].user;
        free(pairs.v);
        uint32_t want = ncand ? 1 + rng_below(r, ncand < 3 ? ncand : 3) : 0;
        gr->roles = arena_alloc(&t->ar, (want + 1) * sizeof *gr->roles);
        gr->xgrants = arena_alloc(&t->ar, (want + 1) * sizeof *gr->xgrants);
        for (uint32_t k = 0; k < want; k++) { /* partial Fisher-Yates over the candidates */
            uint32_t j = k + rng_below(r, ncand - k), tmp = cand[k];
            cand[k] = cand[j];
            cand[j] = tmp;
            double x = rng_unit(r);
            if (x < 0.65 || t->ndivisions < 2)
                gr->roles[gr->nroles++] = cand[k];
            else
                gr->xgrants[gr->nx++] =
                    (gen_grant){cand[k], x < 0.95 ? other_division(t, r) : DIV_ALL};
        }
    }
    free(cand);
}

/* A policy whose condition names org objects (api/genesys.md §5, DomainResourceConditionNode):
 * kind 0 a QUEUE operand, 1 a USER operand with a SCALAR term, 2 namedResources. */
static json_object *condition_policy(const gen_tenant *t, gen_rng *r, int kind)
{
    json_object *acts = json_object_new_array();
    json_object *p;
    const char *q1 = t->queues[rng_below(r, t->nqueues)].id;
    if (kind == 1 && t->nusers == 0)
        kind = 0;
    if (kind == 2) {
        json_object_array_add(acts, json_object_new_string("view"));
        p = make_policy("recording", "recording", acts);
        json_object *named = json_object_new_array();
        json_object_array_add(named, json_object_new_string(q1));
        json_object_array_add(named,
                              json_object_new_string(t->queues[rng_below(r, t->nqueues)].id));
        json_object_object_add(p, "namedResources", named);
        return p;
    }
    json_object *term = json_object_new_object(), *ops = json_object_new_array();
    json_object *op = json_object_new_object(), *ref = json_object_new_object();
    if (kind == 0) {
        json_object_array_add(acts, json_object_new_string("view"));
        json_object_array_add(acts, json_object_new_string("join"));
        p = make_policy("routing", "queue", acts);
        json_object_object_add(term, "variableName", json_object_new_string("Conversation.queues"));
        json_object_object_add(op, "type", json_object_new_string("QUEUE"));
        json_object_object_add(ref, "id", json_object_new_string(q1));
        json_object_object_add(op, "queue", ref);
    } else {
        json_object_array_add(acts, json_object_new_string("view"));
        p = make_policy("analytics", "conversationDetail", acts);
        json_object_object_add(term, "variableName", json_object_new_string("Conversation.user"));
        json_object_object_add(op, "type", json_object_new_string("USER"));
        json_object_object_add(ref, "id",
                               json_object_new_string(t->users[rng_below(r, t->nusers)].id));
        json_object_object_add(op, "user", ref);
    }
    json_object_object_add(term, "operator", json_object_new_string("EQ"));
    json_object_array_add(ops, op);
    json_object_object_add(term, "operands", ops);
    json_object *terms = json_object_new_array();
    json_object_array_add(terms, term);
    if (kind == 1) {
        json_object *t2 = json_object_new_object(), *ops2 = json_object_new_array();
        json_object *sc = json_object_new_object();
        json_object_object_add(t2, "variableName",
                               json_object_new_string("Conversation.mediaType"));
        json_object_object_add(t2, "operator", json_object_new_string("EQ"));
        json_object_object_add(sc, "type", json_object_new_string("SCALAR"));
        json_object_object_add(sc, "value", json_object_new_string("voice"));
        json_object_array_add(ops2, sc);
        json_object_object_add(t2, "operands", ops2);
        json_object_array_add(terms, t2);
    }
    json_object *node = json_object_new_object();
    json_object_object_add(node, "conjunction", json_object_new_string("AND"));
    json_object_object_add(node, "terms", terms);
    json_object_object_add(p, "allowConditions", json_object_new_boolean(1));
    json_object_object_add(p, "resourceConditionNode", node);
    return p;
}

static void make_conditions(gen_tenant *t, gen_rng *r, uint32_t k)
{
    t->nqueues = NAMES(queue_names);
    t->queues = xcalloc(t->nqueues, sizeof *t->queues);
    for (uint32_t i = 0; i < t->nqueues; i++) {
        rng_guid(r, t->queues[i].id);
        t->queues[i].name = arena_strdup(&t->ar, queue_names[i]);
    }
    uint32_t *custom = xmalloc((t->nroles + 1) * sizeof *custom), n = 0;
    for (uint32_t i = 0; i < t->nroles; i++)
        if (role_is_custom(t, &t->roles[i]))
            custom[n++] = i;
    for (uint32_t j = 0; j < k && j < n; j++) {
        uint32_t x = j + rng_below(r, n - j), tmp = custom[j];
        custom[j] = custom[x];
        custom[x] = tmp;
        json_object_array_add(t->roles[custom[j]].policies, condition_policy(t, r, (int)(j % 3)));
    }
    free(custom);
}

/* What the version 2 options add to a fresh genesys tenant, after everything else. */
static void gen_v2(gen_tenant *t, const gen_opts *o)
{
    if (o->divisions < 0 && o->groups < 0 && o->conditions <= 0)
        return;
    gen_rng rr = v2_stream(o->seed), *r = &rr;
    if (o->divisions >= 0) {
        /* home (its id from the first stream) and the regions */
        uint32_t n = (uint32_t)o->divisions;
        t->divisions = xrealloc(t->divisions, (n + 1) * sizeof *t->divisions);
        t->ndivisions = n + 1;
        for (uint32_t i = 1; i <= n; i++) {
            rng_guid(r, t->divisions[i].id);
            t->divisions[i].name = nth_name(t, region_names, NAMES(region_names), i - 1);
            t->divisions[i].home = false;
        }
        for (uint32_t i = 0; i < t->nusers; i++)
            t->users[i].division = n && !rng_chance(r, 0.4) ? 1 + rng_below(r, n) : 0;
        place_grants(t, r);
    }
    if (o->groups > 0)
        make_groups(t, r, (uint32_t)o->groups);
    if (o->conditions > 0)
        make_conditions(t, r, (uint32_t)o->conditions);
}

static void gen_genesys(gen_tenant *t, const gen_opts *o, gen_rng *r)
{
    t->identity = false;
    if (o->tenant_id)
        snprintf(t->org_id, sizeof t->org_id, "%s", o->tenant_id);
    else
        rng_guid(r, t->org_id);
    t->org_name = arena_strdup(
        &t->ar, org_names[rng_below(r, (uint32_t)(sizeof org_names / sizeof org_names[0]))]);
    t->unlicensed = json_object_new_array();
    static const char *const div_names[] = {"Home", "Sales Division", "Support Division"};
    t->ndivisions = 3;
    t->divisions = xcalloc(t->ndivisions, sizeof *t->divisions);
    for (uint32_t i = 0; i < t->ndivisions; i++) {
        rng_guid(r, t->divisions[i].id);
        t->divisions[i].name = arena_strdup(&t->ar, div_names[i]);
        t->divisions[i].home = i == 0;
    }

    uint32_t nd = (uint32_t)GENESYS_NDEFAULTS;
    t->nroles = nd + (uint32_t)o->roles;
    t->roles = xcalloc(t->nroles, sizeof *t->roles);
    double share[GENESYS_NDEFAULTS];
    for (uint32_t i = 0; i < nd; i++) {
        gen_role *role = &t->roles[i];
        rng_guid(r, role->id);
        role->name = arena_strdup(&t->ar, genesys_defaults[i].name);
        role->description = arena_strdup(&t->ar, genesys_defaults[i].desc);
        role->default_role_id = arena_strdup(&t->ar, genesys_defaults[i].id);
        role->is_default = true;
        role->permissions = json_object_new_array();
        share[i] = genesys_defaults[i].share;
        if (strcmp(genesys_defaults[i].id, "admin") == 0) {
            json_object_array_add(role->permissions, json_object_new_string("admin"));
            role->policies = json_object_new_array();
            for (size_t k = 0; k < PERM_COUNT; k++) /* every domain, all entities and actions */
                if (k == 0 || strcmp(perm_catalog[k].domain, perm_catalog[k - 1].domain) != 0) {
                    json_object *acts = json_object_new_array();
                    json_object_array_add(acts, json_object_new_string("*"));
                    json_object_array_add(role->policies,
                                          make_policy(perm_catalog[k].domain, "*", acts));
                }
        } else if (strcmp(genesys_defaults[i].id, "employee") == 0) {
            role->policies = json_object_new_array();
            json_object *a1 = json_object_new_array(), *a2 = json_object_new_array();
            json_object_array_add(a1, json_object_new_string("view"));
            json_object_array_add(a2, json_object_new_string("view"));
            json_object_array_add(role->policies, make_policy("directory", "user", a1));
            json_object_array_add(role->policies, make_policy("directory", "group", a2));
        } else {
            role->policies = random_policies(r, 2, 5);
        }
    }
    make_custom_role_names(t, r, nd, (uint32_t)o->roles);
    for (uint32_t i = nd; i < t->nroles; i++) {
        gen_role *role = &t->roles[i];
        rng_guid(r, role->id);
        role->permissions = json_object_new_array();
        if (rng_chance(r, 0.25)) {
            uint32_t f = rng_below(r, 4);
            json_object_array_add(role->permissions, json_object_new_string(flat_permissions[f]));
            if (rng_chance(r, 0.3))
                json_object_array_add(role->permissions,
                                      json_object_new_string(flat_permissions[(f + 1) % 4]));
        }
        role->policies = random_policies(r, 1, 6);
    }

    t->nusers = (uint32_t)o->users;
    t->users = xcalloc(t->nusers ? t->nusers : 1, sizeof *t->users);
    for (uint32_t i = 0; i < t->nusers; i++) {
        gen_user *u = &t->users[i];
        const char *first, *last;
        rng_guid(r, u->id);
        make_person(t, r, i, &first, &last, &u->email);
        u->name = arena_printf(&t->ar, "%s %s", first, last);
        u->username = u->email;
        double s = rng_unit(r);
        /* --inactive-share: the same draw, another threshold (without it, version 1's) */
        double inactive_below = o->inactive_share >= 0 ? 0.01 + o->inactive_share / 100.0 : 0.05;
        u->state = (char *)(i == 0               ? "active"
                            : s < 0.01           ? "deleted"
                            : s < inactive_below ? "inactive"
                                                 : "active");
        u->division = rng_chance(r, 0.9) ? 0 : 1 + rng_below(r, 2);
    }
    assign_roles(t, r, nd, share, 1 /* admin */);
    gen_v2(t, o);
}

static void gen_identity(gen_tenant *t, const gen_opts *o, gen_rng *r)
{
    t->identity = true;
    if (o->tenant_id)
        snprintf(t->org_id, sizeof t->org_id, "%s", o->tenant_id);
    else
        rng_guid(r, t->org_id);
    uint32_t nb = (uint32_t)IDENTITY_NBUILTINS;
    t->nroles = nb + (uint32_t)o->roles;
    t->roles = xcalloc(t->nroles, sizeof *t->roles);
    double share[IDENTITY_NBUILTINS];
    for (uint32_t i = 0; i < nb; i++) {
        gen_role *role = &t->roles[i];
        rng_guid(r, role->id);
        role->name = arena_strdup(&t->ar, identity_builtins[i].name);
        role->description = arena_strdup(&t->ar, identity_builtins[i].desc);
        role->role_type_id = identity_builtins[i].type;
        role->role_scope = 1;
        share[i] = identity_builtins[i].share;
    }
    make_custom_role_names(t, r, nb, (uint32_t)o->roles);
    for (uint32_t i = nb; i < t->nroles; i++) {
        rng_guid(r, t->roles[i].id);
        t->roles[i].role_scope = 1;
    }

    t->nusers = (uint32_t)o->users;
    t->users = xcalloc(t->nusers ? t->nusers : 1, sizeof *t->users);
    for (uint32_t i = 0; i < t->nusers; i++) {
        gen_user *u = &t->users[i];
        const char *first, *last;
        char *email;
        rng_guid(r, u->id);
        make_person(t, r, i, &first, &last, &email);
        u->contact_email = email;
        u->contact_given = arena_strdup(&t->ar, first);
        u->contact_surname = arena_strdup(&t->ar, last);
        /* ~5% have not accepted their invitation: only the contact fields are known yet. */
        if (i == 0 || !rng_chance(r, 0.05)) {
            char ext[37];
            rng_guid(r, ext);
            u->email = email;
            u->given = u->contact_given;
            u->surname = u->contact_surname;
            u->name = arena_printf(&t->ar, "%s %s", first, last);
            u->external_id = arena_strdup(&t->ar, ext);
            u->idp_id = (char *)IDENTITY_IDP_ID;
        }
    }
    assign_roles(t, r, nb, share, 0 /* Tenant Administrator */);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading a state (for --same-as)                                                              */

typedef struct {
    const char *id;
    uint32_t idx;
    UT_hash_handle hh;
} gen_idmap;

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return NULL;
    return json_object_get_string(v);
}

static bool jbool(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static json_object *jarr(json_object *o, const char *key)
{
    json_object *v;
    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array))
        return v;
    return NULL;
}

/* A new reference to o[key] if it is an array, else a new empty array. */
static json_object *jarr_ref(json_object *o, const char *key)
{
    json_object *a = jarr(o, key);
    return a ? json_object_get(a) : json_object_new_array();
}

/* The division of a source state by id: its index, DIV_ALL for "*", DIV_NONE unknown. */
static uint32_t division_index(const gen_tenant *t, const char *id)
{
    if (id && strcmp(id, "*") == 0)
        return DIV_ALL;
    for (uint32_t k = 0; id && k < t->ndivisions; k++)
        if (strcmp(t->divisions[k].id, id) == 0)
            return k;
    return DIV_NONE;
}

/* A subject's grants in a source state: `roles_key` (home-division grants) into *roles, its
 * "grants" outside the home division into *xg (home ones join *roles). Grants of roles or
 * divisions the state does not have are dangling: there is nothing to mirror, so they go. */
static void read_grants(gen_tenant *t, gen_idmap *rmap, json_object *js, const char *roles_key,
                        uint32_t **roles, uint32_t *nroles, gen_grant **xg, uint32_t *nx)
{
    json_object *rl = jarr(js, roles_key), *gl = t->identity ? NULL : jarr(js, "grants");
    size_t n = rl ? json_object_array_length(rl) : 0, ng = gl ? json_object_array_length(gl) : 0;
    *roles = arena_alloc(&t->ar, (n + ng + 1) * sizeof **roles);
    *nroles = 0;
    *nx = 0;
    *xg = ng ? arena_alloc(&t->ar, ng * sizeof **xg) : NULL;
    for (size_t k = 0; k < n + ng; k++) {
        json_object *e =
            k < n ? json_object_array_get_idx(rl, k) : json_object_array_get_idx(gl, k - n);
        const char *rid = k < n ? json_object_get_string(e) : jstr(e, "role");
        uint32_t div = k < n ? t->home : division_index(t, jstr(e, "division"));
        gen_idmap *m = NULL;
        if (rid)
            HASH_FIND_STR(rmap, rid, m);
        if (!m || div == DIV_NONE)
            continue;
        bool dup = false;
        if (div == t->home) {
            for (uint32_t j = 0; j < *nroles && !dup; j++)
                dup = (*roles)[j] == m->idx;
            if (!dup)
                (*roles)[(*nroles)++] = m->idx;
        } else {
            for (uint32_t j = 0; j < *nx && !dup; j++)
                dup = (*xg)[j].role == m->idx && (*xg)[j].div == div;
            if (!dup)
                (*xg)[(*nx)++] = (gen_grant){m->idx, div};
        }
    }
}

/* A source state's groups (members by user index) and queues. */
static void load_groups_queues(gen_tenant *t, json_object *root, gen_idmap *rmap)
{
    json_object *qs = jarr(root, "queues"), *gs = jarr(root, "groups");
    size_t nq = qs ? json_object_array_length(qs) : 0, ng = gs ? json_object_array_length(gs) : 0;
    t->queues = xcalloc(nq + 1, sizeof *t->queues);
    for (size_t i = 0; i < nq; i++) {
        json_object *q = json_object_array_get_idx(qs, i);
        if (!jstr(q, "id"))
            continue;
        gen_queue *gq = &t->queues[t->nqueues++];
        snprintf(gq->id, sizeof gq->id, "%s", jstr(q, "id"));
        gq->name = arena_strdup(&t->ar, jstr(q, "name") ? jstr(q, "name") : gq->id);
    }
    t->groups = xcalloc(ng + 1, sizeof *t->groups);
    if (ng == 0)
        return;
    gen_idmap *umap = NULL, *entries = xcalloc(t->nusers + 1, sizeof *entries);
    for (uint32_t i = 0; i < t->nusers; i++) {
        entries[i].id = t->users[i].id;
        entries[i].idx = i;
        HASH_ADD_KEYPTR(hh, umap, entries[i].id, strlen(entries[i].id), &entries[i]);
    }
    for (size_t i = 0; i < ng; i++) {
        json_object *jg = json_object_array_get_idx(gs, i), *ml = jarr(jg, "members");
        gen_group *g = &t->groups[t->ngroups++];
        snprintf(g->id, sizeof g->id, "%s", jstr(jg, "id") ? jstr(jg, "id") : "");
        g->name = arena_strdup(&t->ar, jstr(jg, "name") ? jstr(jg, "name") : "Group");
        size_t nm = ml ? json_object_array_length(ml) : 0;
        g->members = arena_alloc(&t->ar, (nm + 1) * sizeof *g->members);
        for (size_t k = 0; k < nm; k++) {
            const char *mid = json_object_get_string(json_object_array_get_idx(ml, k));
            gen_idmap *m = NULL;
            if (mid)
                HASH_FIND_STR(umap, mid, m);
            if (m)
                g->members[g->nmembers++] = m->idx;
        }
        read_grants(t, rmap, jg, "roles", &g->roles, &g->nroles, &g->xgrants, &g->nx);
    }
    HASH_CLEAR(hh, umap);
    free(entries);
}

static int load_state(gen_tenant *t, const char *path, char *err, size_t errlen)
{
    json_object *root = json_object_from_file(path);
    if (!root || !json_object_is_type(root, json_type_object)) {
        const char *why = root ? "not a JSON object" : json_util_get_last_err();
        int n =
            snprintf(err, errlen, "%s: cannot read a state: %s", path, why ? why : "unreadable");
        while (n > 0 && (size_t)n < errlen && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0'; /* json-c's message ends with a newline */
        json_object_put(root);
        return -1;
    }
    const char *api = jstr(root, "api");
    if (!api || (strcmp(api, "genesys") != 0 && strcmp(api, "identity") != 0)) {
        snprintf(err, errlen, "%s: \"api\" must be \"genesys\" or \"identity\"", path);
        json_object_put(root);
        return -1;
    }
    t->identity = strcmp(api, "identity") == 0;
    const char *tid = NULL;
    if (t->identity) {
        tid = jstr(root, "tenant_id");
    } else {
        json_object *org;
        if (json_object_object_get_ex(root, "org", &org)) {
            tid = jstr(org, "id");
            t->org_name = arena_strdup(&t->ar, jstr(org, "name"));
        }
        t->unlicensed = jarr_ref(root, "unlicensed_domains");
        json_object *settings;
        if (json_object_object_get_ex(root, "settings", &settings)) {
            t->backfill = jbool(settings, "backfillEnabled");
            t->division_aware = jbool(settings, "authorizationGrantDivisionAware");
        }
    }
    snprintf(t->org_id, sizeof t->org_id, "%s", tid ? tid : "");
    if (!t->org_name)
        t->org_name = arena_strdup(&t->ar, "Example Org");

    /* divisions (genesys): ids are only needed to map users to the same-named division */
    json_object *divs = t->identity ? NULL : jarr(root, "divisions");
    size_t nd = divs ? json_object_array_length(divs) : 0;
    t->divisions = xcalloc(nd + 1, sizeof *t->divisions);
    for (size_t i = 0; i < nd; i++) {
        json_object *d = json_object_array_get_idx(divs, i);
        gen_division *g = &t->divisions[t->ndivisions++];
        snprintf(g->id, sizeof g->id, "%s", jstr(d, "id") ? jstr(d, "id") : "");
        g->name = arena_strdup(&t->ar, jstr(d, "name") ? jstr(d, "name") : "Home");
        g->home = jbool(d, "home");
    }
    if (t->ndivisions == 0 && !t->identity) {
        t->divisions[0].name = arena_strdup(&t->ar, "Home");
        t->divisions[0].home = true;
        t->ndivisions = 1;
    }
    uint32_t home = 0;
    for (uint32_t i = 0; i < t->ndivisions; i++)
        if (t->divisions[i].home) {
            home = i;
            break;
        }
    t->home = home;

    json_object *roles = jarr(root, "roles");
    size_t nr = roles ? json_object_array_length(roles) : 0;
    t->roles = xcalloc(nr + 1, sizeof *t->roles);
    gen_idmap *map = NULL, *entries = xcalloc(nr + 1, sizeof *entries);
    for (size_t i = 0; i < nr; i++) {
        json_object *jr = json_object_array_get_idx(roles, i);
        gen_role *role = &t->roles[t->nroles];
        const char *id = jstr(jr, t->identity ? "Id" : "id");
        const char *name = jstr(jr, t->identity ? "Name" : "name");
        if (!id || !name)
            continue; /* unusable entry: nothing can refer to it */
        snprintf(role->id, sizeof role->id, "%s", id);
        role->name = arena_strdup(&t->ar, name);
        if (t->identity) {
            role->description = arena_strdup(&t->ar, jstr(jr, "Description"));
            role->role_type_id = arena_strdup(&t->ar, jstr(jr, "RoleTypeId"));
            json_object *scope;
            role->role_scope =
                json_object_object_get_ex(jr, "RoleScope", &scope) ? json_object_get_int(scope) : 1;
            role->community_id = arena_strdup(&t->ar, jstr(jr, "CommunityId"));
        } else {
            role->description = arena_strdup(&t->ar, jstr(jr, "description"));
            role->default_role_id = arena_strdup(&t->ar, jstr(jr, "defaultRoleId"));
            role->is_default = jbool(jr, "default") || role->default_role_id != NULL;
            role->base = jbool(jr, "base");
            role->permissions = jarr_ref(jr, "permissions");
            role->policies = jarr_ref(jr, "permissionPolicies");
        }
        gen_idmap *e = &entries[t->nroles], *dup = NULL;
        e->id = role->id;
        e->idx = t->nroles;
        HASH_FIND_STR(map, e->id, dup);
        if (!dup)
            HASH_ADD_KEYPTR(hh, map, e->id, strlen(e->id), e);
        t->nroles++;
    }

    json_object *users = jarr(root, "users");
    size_t nu = users ? json_object_array_length(users) : 0;
    t->users = xcalloc(nu + 1, sizeof *t->users);
    for (size_t i = 0; i < nu; i++) {
        json_object *ju = json_object_array_get_idx(users, i);
        gen_user *u = &t->users[t->nusers];
        const char *id = jstr(ju, t->identity ? "Id" : "id");
        snprintf(u->id, sizeof u->id, "%s", id ? id : "");
        read_grants(t, map, ju, t->identity ? "RoleIds" : "roles", &u->roles, &u->nroles,
                    &u->xgrants, &u->nx);
        if (t->identity) {
            u->given = arena_strdup(&t->ar, jstr(ju, "GivenName"));
            u->surname = arena_strdup(&t->ar, jstr(ju, "Surname"));
            u->name = arena_strdup(&t->ar, jstr(ju, "Name"));
            u->email = arena_strdup(&t->ar, jstr(ju, "Email"));
            u->contact_email = arena_strdup(&t->ar, jstr(ju, "ContactEmail"));
            u->contact_given = arena_strdup(&t->ar, jstr(ju, "ContactGivenName"));
            u->contact_surname = arena_strdup(&t->ar, jstr(ju, "ContactSurname"));
            u->external_id = arena_strdup(&t->ar, jstr(ju, "ExternalUserId"));
            u->idp_id = arena_strdup(&t->ar, jstr(ju, "IdentityProviderId"));
        } else {
            u->name = arena_strdup(&t->ar, jstr(ju, "name"));
            u->email = arena_strdup(&t->ar, jstr(ju, "email"));
            u->username = arena_strdup(&t->ar, jstr(ju, "username"));
            u->state = arena_strdup(&t->ar, jstr(ju, "state") ? jstr(ju, "state") : "active");
            const char *div = jstr(ju, "division");
            u->division = home;
            for (uint32_t k = 0; div && k < t->ndivisions; k++)
                if (strcmp(t->divisions[k].id, div) == 0) {
                    u->division = k;
                    break;
                }
        }
        t->nusers++;
    }
    load_groups_queues(t, root, map);
    HASH_CLEAR(hh, map);
    free(entries);
    json_object_put(root);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* --same-as: the same people in a second tenant                                                */

/* Make sure the roles every tenant has exist (employee/admin, the six built-ins) and every user
 * holds employee / Tenant Member, as the platform guarantees; a hand-written source state may
 * lack them. Returns the index of the anchor role. */
static uint32_t ensure_builtins(gen_tenant *t, gen_rng *r)
{
    size_t nb = t->identity ? IDENTITY_NBUILTINS : 2; /* genesys: employee and admin */
    for (size_t b = 0; b < nb; b++) {
        bool have = false;
        for (uint32_t i = 0; i < t->nroles && !have; i++) {
            const gen_role *role = &t->roles[i];
            have = t->identity ? (role->role_type_id &&
                                  strcmp(role->role_type_id, identity_builtins[b].type) == 0)
                               : (role->default_role_id &&
                                  strcmp(role->default_role_id, genesys_defaults[b].id) == 0);
        }
        if (have)
            continue;
        t->roles = xrealloc(t->roles, (t->nroles + 1) * sizeof *t->roles);
        gen_role *role = &t->roles[t->nroles++];
        memset(role, 0, sizeof *role);
        rng_guid(r, role->id);
        if (t->identity) {
            role->name = arena_strdup(&t->ar, identity_builtins[b].name);
            role->description = arena_strdup(&t->ar, identity_builtins[b].desc);
            role->role_type_id = identity_builtins[b].type;
            role->role_scope = 1;
        } else {
            role->name = arena_strdup(&t->ar, genesys_defaults[b].name);
            role->description = arena_strdup(&t->ar, genesys_defaults[b].desc);
            role->default_role_id = arena_strdup(&t->ar, genesys_defaults[b].id);
            role->is_default = true;
            role->permissions = json_object_new_array();
            role->policies = json_object_new_array();
        }
    }
    uint32_t anchor = 0;
    for (uint32_t i = 0; i < t->nroles; i++)
        if (role_is_anchor(t, &t->roles[i])) {
            anchor = i;
            break;
        }
    for (uint32_t i = 0; i < t->nusers; i++) {
        gen_user *u = &t->users[i];
        bool have = false;
        for (uint32_t k = 0; k < u->nroles && !have; k++)
            have = u->roles[k] == anchor;
        if (!have) {
            uint32_t *nr = arena_alloc(&t->ar, (u->nroles + 1) * sizeof *nr);
            nr[0] = anchor;
            memcpy(nr + 1, u->roles, u->nroles * sizeof *nr);
            u->roles = nr;
            u->nroles++;
        }
    }
    return anchor;
}

static bool user_has(const gen_user *u, uint32_t role)
{
    for (uint32_t k = 0; k < u->nroles; k++)
        if (u->roles[k] == role)
            return true;
    return false;
}

/* Change one user's role set: remove a held mutable role or add one not held. `mut` lists the
 * roles drift may touch. Always changes the set when mut is non-empty. */
static void drift_user(gen_tenant *t, gen_rng *r, gen_user *u, const uint32_t *mut, uint32_t nmut)
{
    uint32_t held = 0;
    for (uint32_t k = 0; k < u->nroles; k++)
        for (uint32_t j = 0; j < nmut; j++)
            if (u->roles[k] == mut[j]) {
                held++;
                break;
            }
    bool remove = held > 0 && (held == nmut || rng_chance(r, 0.5));
    if (remove) {
        uint32_t pick = rng_below(r, held), seen = 0;
        for (uint32_t k = 0; k < u->nroles; k++) {
            bool m = false;
            for (uint32_t j = 0; j < nmut && !m; j++)
                m = u->roles[k] == mut[j];
            if (m && seen++ == pick) {
                memmove(&u->roles[k], &u->roles[k + 1], (u->nroles - k - 1) * sizeof *u->roles);
                u->nroles--;
                return;
            }
        }
        return;
    }
    uint32_t start = rng_below(r, nmut);
    for (uint32_t j = 0; j < nmut; j++) {
        uint32_t cand = mut[(start + j) % nmut];
        if (!user_has(u, cand)) {
            uint32_t *nr = arena_alloc(&t->ar, (u->nroles + 1) * sizeof *nr);
            memcpy(nr, u->roles, u->nroles * sizeof *nr);
            nr[u->nroles++] = cand;
            u->roles = nr;
            return;
        }
    }
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* Role indices through remap (UINT32_MAX: the role is gone), in place. */
static void remap_roles(uint32_t *roles, uint32_t *n, const uint32_t *remap)
{
    uint32_t k2 = 0;
    for (uint32_t k = 0; k < *n; k++)
        if (remap[roles[k]] != UINT32_MAX)
            roles[k2++] = remap[roles[k]];
    *n = k2;
}

/* Grants through a role and/or a division remap (NULL: unchanged; a role UINT32_MAX or a
 * division DIV_NONE: gone). */
static void remap_xgrants(gen_grant *x, uint32_t *n, const uint32_t *roles, const uint32_t *divs)
{
    uint32_t k2 = 0;
    for (uint32_t k = 0; k < *n; k++) {
        uint32_t r = roles ? roles[x[k].role] : x[k].role;
        uint32_t d = divs && x[k].div != DIV_ALL ? divs[x[k].div] : x[k].div;
        if (r != UINT32_MAX && d != DIV_NONE)
            x[k2++] = (gen_grant){r, d};
    }
    *n = k2;
}

/* Old id -> where the new one will be (a gen_user or gen_queue id field), so that the twin's
 * org-specific policy references name the twin's own users and queues. */
typedef struct {
    const char *old;
    const char *now;
    UT_hash_handle hh;
} gen_ref;

static bool policies_name_objects(json_object *o)
{
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            if (policies_name_objects(json_object_array_get_idx(o, i)))
                return true;
    } else if (json_object_is_type(o, json_type_object)) {
        json_object *v;
        if (json_object_object_get_ex(o, "resourceConditionNode", &v) && v)
            return true;
        if ((v = jarr(o, "namedResources")) && json_object_array_length(v) > 0)
            return true;
    }
    return false;
}

/* Replace every id the map knows, in "id" members and in arrays of strings, in place. */
static void remap_refs(json_object *o, gen_ref *map)
{
    gen_ref *e = NULL;
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            json_object *v = json_object_array_get_idx(o, i);
            const char *str =
                json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
            e = NULL;
            if (str)
                HASH_FIND_STR(map, str, e);
            if (e)
                json_object_array_put_idx(o, i, json_object_new_string(e->now));
            else
                remap_refs(v, map);
        }
    } else if (json_object_is_type(o, json_type_object)) {
        const char *id = jstr(o, "id");
        if (id)
            HASH_FIND_STR(map, id, e);
        if (e)
            json_object_object_add(o, "id", json_object_new_string(e->now));
        json_object_object_foreach(o, k, v)
        {
            if (strcmp(k, "id") != 0)
                remap_refs(v, map);
        }
    }
}

/* A division of the source by name (case-insensitive), or UINT32_MAX. */
static uint32_t division_named(const gen_tenant *t, const char *name, size_t len)
{
    for (uint32_t i = 0; i < t->ndivisions; i++)
        if (strlen(t->divisions[i].name) == len &&
            strncasecmp(t->divisions[i].name, name, len) == 0)
            return i;
    return UINT32_MAX;
}

/* --rename-division OLD=NEW and --drop-division NAME, both by the source's names: a dropped
 * division's grants vanish (users' and groups'), its users move to the home division. */
static int twin_divisions(gen_tenant *t, const gen_opts *o, char *err, size_t errlen)
{
    uint32_t *ren = xcalloc(o->nrenames + 1, sizeof *ren);
    uint32_t *remap = xcalloc(t->ndivisions + 1, sizeof *remap);
    int rc = -1;
    for (size_t i = 0; i < o->nrenames; i++) {
        const char *eq = strchr(o->renames[i], '=');
        ren[i] = division_named(t, o->renames[i], (size_t)(eq - o->renames[i]));
        if (ren[i] == UINT32_MAX) {
            snprintf(err, errlen, "--rename-division %s: the source has no division named %.*s",
                     o->renames[i], (int)(eq - o->renames[i]), o->renames[i]);
            goto out;
        }
    }
    for (uint32_t i = 0; i < t->ndivisions; i++)
        remap[i] = i;
    for (size_t i = 0; i < o->ndrops; i++) {
        uint32_t d = division_named(t, o->drops[i], strlen(o->drops[i]));
        if (d == UINT32_MAX || d == t->home) {
            snprintf(err, errlen, "--drop-division %s: %s", o->drops[i],
                     d == UINT32_MAX ? "the source has no division of that name"
                                     : "the home division cannot be dropped");
            goto out;
        }
        remap[d] = DIV_NONE;
    }
    for (size_t i = 0; i < o->nrenames; i++)
        t->divisions[ren[i]].name = arena_strdup(&t->ar, strchr(o->renames[i], '=') + 1);
    if (o->ndrops) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < t->ndivisions; i++)
            if (remap[i] != DIV_NONE) {
                t->divisions[n] = t->divisions[i];
                remap[i] = n++;
            }
        t->ndivisions = n;
        t->home = remap[t->home];
        for (uint32_t i = 0; i < t->nusers; i++) {
            gen_user *u = &t->users[i];
            u->division = remap[u->division] == DIV_NONE ? t->home : remap[u->division];
            remap_xgrants(u->xgrants, &u->nx, NULL, remap);
        }
        for (uint32_t i = 0; i < t->ngroups; i++)
            remap_xgrants(t->groups[i].xgrants, &t->groups[i].nx, NULL, remap);
    }
    rc = 0;
out:
    free(ren);
    free(remap);
    return rc;
}

/* What a twin keeps of version 2: new ids for groups and queues (from the second stream),
 * conditions naming the twin's own users and queues, renamed and dropped divisions. refs maps
 * the source's user and queue ids (saved before they were replaced) to the new ones. */
static int twin_v2(gen_tenant *t, const gen_opts *o, gen_rng *r, gen_ref *refs, char *err,
                   size_t errlen)
{
    for (uint32_t i = 0; i < t->ngroups; i++)
        rng_guid(r, t->groups[i].id);
    for (uint32_t i = 0; i < t->nqueues; i++)
        rng_guid(r, t->queues[i].id);
    if (refs)
        for (uint32_t i = 0; i < t->nroles; i++)
            if (t->roles[i].policies)
                remap_refs(t->roles[i].policies, refs);
    return twin_divisions(t, o, err, errlen);
}

static int same_as(gen_tenant *t, const gen_opts *o, char *err, size_t errlen)
{
    if (load_state(t, o->same_as, err, errlen) != 0)
        return -1;
    if (o->api && strcmp(o->api, t->identity ? "identity" : "genesys") != 0) {
        snprintf(err, errlen, "--api %s does not match the \"api\" of %s", o->api, o->same_as);
        return -1;
    }
    /* A stream distinct from the one that generated the source with the same seed, so no id
     * can repeat across the two tenants. */
    gen_rng rr = {o->seed ^ 0x73616d652d617321ULL ^ fnv1a(t->org_id)};
    gen_rng *r = &rr;
    rng_next(r);
    gen_rng r2 = v2_stream(o->seed ^ fnv1a(t->org_id));

    uint32_t anchor = ensure_builtins(t, r);

    /* Policies naming users or queues: remember the old ids, to point them at the new ones. */
    gen_ref *refs = NULL, *ref_entries = NULL;
    bool named = false;
    for (uint32_t i = 0; i < t->nroles && !named; i++)
        named = t->roles[i].policies && policies_name_objects(t->roles[i].policies);
    if (named) {
        ref_entries = xcalloc((size_t)t->nusers + t->nqueues + 1, sizeof *ref_entries);
        for (uint32_t i = 0; i < t->nusers + t->nqueues; i++) {
            gen_ref *e = &ref_entries[i];
            char *id = i < t->nusers ? t->users[i].id : t->queues[i - t->nusers].id;
            e->old = arena_strdup(&t->ar, id);
            e->now = id; /* the field the new id is written to */
            gen_ref *dup = NULL;
            HASH_FIND_STR(refs, e->old, dup);
            if (!dup && *e->old)
                HASH_ADD_KEYPTR(hh, refs, e->old, strlen(e->old), e);
        }
    }

    /* new ids for everything */
    if (o->tenant_id)
        snprintf(t->org_id, sizeof t->org_id, "%s", o->tenant_id);
    else
        rng_guid(r, t->org_id);
    for (uint32_t i = 0; i < t->ndivisions; i++)
        rng_guid(r, t->divisions[i].id);
    for (uint32_t i = 0; i < t->nroles; i++)
        rng_guid(r, t->roles[i].id);
    for (uint32_t i = 0; i < t->nusers; i++)
        rng_guid(r, t->users[i].id);
    int v2rc = twin_v2(t, o, &r2, refs, err, errlen);
    HASH_CLEAR(hh, refs);
    free(ref_entries);
    if (v2rc != 0)
        return -1;

    if (o->no_custom) {
        uint32_t *remap = xmalloc((t->nroles ? t->nroles : 1) * sizeof *remap), n = 0;
        for (uint32_t i = 0; i < t->nroles; i++) {
            if (role_is_custom(t, &t->roles[i])) {
                json_object_put(t->roles[i].permissions);
                json_object_put(t->roles[i].policies);
                remap[i] = UINT32_MAX;
            } else {
                remap[i] = n;
                t->roles[n++] = t->roles[i];
            }
        }
        for (uint32_t i = 0; i < t->nusers; i++) {
            gen_user *u = &t->users[i];
            remap_roles(u->roles, &u->nroles, remap);
            remap_xgrants(u->xgrants, &u->nx, remap, NULL);
        }
        for (uint32_t i = 0; i < t->ngroups; i++) {
            gen_group *g = &t->groups[i];
            remap_roles(g->roles, &g->nroles, remap);
            remap_xgrants(g->xgrants, &g->nx, remap, NULL);
        }
        anchor = remap[anchor];
        t->nroles = n;
        free(remap);
    }

    if (o->edit_roles > 0) {
        uint32_t ncustom = 0;
        uint32_t *custom = xmalloc((t->nroles ? t->nroles : 1) * sizeof *custom);
        for (uint32_t i = 0; i < t->nroles; i++)
            if (role_is_custom(t, &t->roles[i]))
                custom[ncustom++] = i;
        if ((uint64_t)o->edit_roles > ncustom) {
            snprintf(err, errlen,
                     "--edit-roles %ld but the tenant has only %" PRIu32 " custom roles",
                     o->edit_roles, ncustom);
            free(custom);
            return -1;
        }
        for (uint32_t k = 0; k < (uint32_t)o->edit_roles; k++) { /* partial Fisher-Yates */
            uint32_t j = k + rng_below(r, ncustom - k), tmp = custom[k];
            custom[k] = custom[j];
            custom[j] = tmp;
            gen_role *role = &t->roles[custom[k]];
            role->description =
                arena_printf(&t->ar, "%s (revised)", role->description ? role->description : "");
            if (t->identity && strlen(role->description) > 128) /* the API's limit */
                role->description[128] = '\0';
            if (!t->identity) {
                /* policies are shared with nothing else, but copy so the source tree is untouched
                 */
                json_object *np = NULL;
                json_object_deep_copy(role->policies, &np, NULL);
                json_object_put(role->policies);
                role->policies = np ? np : json_object_new_array();
                if (!add_new_policy(r, role->policies) &&
                    json_object_array_length(role->policies) > 0)
                    json_object_array_del_idx(role->policies,
                                              json_object_array_length(role->policies) - 1, 1);
            }
        }
        free(custom);
    }

    if (o->drift > 0 && t->nusers > 0) {
        uint32_t *mut = xmalloc((t->nroles ? t->nroles : 1) * sizeof *mut), nmut = 0;
        for (uint32_t i = 0; i < t->nroles; i++)
            if (i != anchor && !role_is_admin(t, &t->roles[i]))
                mut[nmut++] = i;
        /* Only users a sync acts on drift: genesys lists active users by default. */
        uint32_t *cand = xmalloc(t->nusers * sizeof *cand), ncand = 0;
        for (uint32_t i = 0; i < t->nusers; i++)
            if (t->identity || !t->users[i].state || strcmp(t->users[i].state, "active") == 0)
                cand[ncand++] = i;
        uint64_t want = (uint64_t)((double)t->nusers * o->drift / 100.0 + 0.5);
        if (want > ncand)
            want = ncand;
        if (nmut == 0)
            want = 0;
        for (uint32_t k = 0; k < (uint32_t)want; k++) {
            uint32_t j = k + rng_below(r, ncand - k), tmp = cand[k];
            cand[k] = cand[j];
            cand[j] = tmp;
            drift_user(t, r, &t->users[cand[k]], mut, nmut);
        }
        free(cand);
        free(mut);
    }

    /* org name of the target: a different one, so logs and the demo can tell them apart */
    if (!t->identity)
        t->org_name = arena_printf(&t->ar, "%s (mirror)", t->org_name);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                       */

/* `,"roles":[...]` (home-division grants) and, when there are any, `,"grants":[...]`. */
static void emit_grants(gen_writer *w, const gen_tenant *t, const uint32_t *roles, uint32_t n,
                        const gen_grant *x, uint32_t nx)
{
    w_lit(w, ",\"roles\":[");
    for (uint32_t k = 0; k < n; k++) {
        if (k)
            w_lit(w, ",");
        w_str(w, t->roles[roles[k]].id);
    }
    w_lit(w, "]");
    if (!nx)
        return;
    w_lit(w, ",\"grants\":[");
    for (uint32_t k = 0; k < nx; k++) {
        w_lit(w, k ? ",{\"role\":" : "{\"role\":");
        w_str(w, t->roles[x[k].role].id);
        w_lit(w, ",\"division\":");
        w_str(w, x[k].div == DIV_ALL ? "*" : t->divisions[x[k].div].id);
        w_lit(w, "}");
    }
    w_lit(w, "]");
}

static void emit_genesys(gen_writer *w, const gen_tenant *t)
{
    w_lit(w, "{\"api\":\"genesys\",\n\"org\":{");
    w_key(w, "id");
    w_str(w, t->org_id);
    w_lit(w, ",");
    w_key(w, "name");
    w_str(w, t->org_name);
    w_lit(w, "},\n\"unlicensed_domains\":");
    w_json(w, t->unlicensed);
    w_lit(w, ",\n\"divisions\":[");
    for (uint32_t i = 0; i < t->ndivisions; i++) {
        w_lit(w, i ? ",\n{\"id\":" : "\n{\"id\":");
        w_str(w, t->divisions[i].id);
        w_lit(w, ",\"name\":");
        w_str(w, t->divisions[i].name);
        w_lit(w, ",\"home\":");
        w_bool(w, t->divisions[i].home);
        w_lit(w, "}");
    }
    if (t->nqueues) {
        w_lit(w, "],\n\"queues\":[");
        for (uint32_t i = 0; i < t->nqueues; i++) {
            w_lit(w, i ? ",\n{\"id\":" : "\n{\"id\":");
            w_str(w, t->queues[i].id);
            w_lit(w, ",\"name\":");
            w_str(w, t->queues[i].name);
            w_lit(w, "}");
        }
    }
    w_lit(w, "],\n\"settings\":{\"backfillEnabled\":");
    w_bool(w, t->backfill);
    w_lit(w, ",\"authorizationGrantDivisionAware\":");
    w_bool(w, t->division_aware);
    w_lit(w, "},\n\"roles\":[");
    for (uint32_t i = 0; i < t->nroles; i++) {
        const gen_role *r = &t->roles[i];
        w_lit(w, i ? ",\n{\"id\":" : "\n{\"id\":");
        w_str(w, r->id);
        w_lit(w, ",\"name\":");
        w_str(w, r->name);
        w_lit(w, ",\"description\":");
        w_str(w, r->description);
        if (r->default_role_id) {
            w_lit(w, ",\"defaultRoleId\":");
            w_str(w, r->default_role_id);
        }
        w_lit(w, ",\"default\":");
        w_bool(w, r->is_default);
        w_lit(w, ",\"base\":");
        w_bool(w, r->base);
        w_lit(w, ",\"permissions\":");
        w_json(w, r->permissions);
        w_lit(w, ",\"permissionPolicies\":");
        w_json(w, r->policies);
        w_lit(w, "}");
    }
    w_lit(w, "],\n\"users\":[");
    for (uint32_t i = 0; i < t->nusers; i++) {
        const gen_user *u = &t->users[i];
        w_lit(w, i ? ",\n{\"id\":" : "\n{\"id\":");
        w_str(w, u->id);
        w_lit(w, ",\"name\":");
        w_str(w, u->name);
        w_lit(w, ",\"email\":");
        w_str(w, u->email);
        w_lit(w, ",\"username\":");
        w_str(w, u->username);
        w_lit(w, ",\"state\":");
        w_str(w, u->state);
        w_lit(w, ",\"division\":");
        w_str(w, t->ndivisions ? t->divisions[u->division].id : NULL);
        emit_grants(w, t, u->roles, u->nroles, u->xgrants, u->nx);
        w_lit(w, "}");
    }
    for (uint32_t i = 0; i < t->ngroups; i++) {
        const gen_group *g = &t->groups[i];
        w_lit(w, i ? ",\n{\"id\":" : "],\n\"groups\":[\n{\"id\":");
        w_str(w, g->id);
        w_lit(w, ",\"name\":");
        w_str(w, g->name);
        w_lit(w, ",\"members\":[");
        for (uint32_t k = 0; k < g->nmembers; k++) {
            if (k)
                w_lit(w, ",");
            w_str(w, t->users[g->members[k]].id);
        }
        w_lit(w, "]");
        emit_grants(w, t, g->roles, g->nroles, g->xgrants, g->nx);
        w_lit(w, "}");
    }
    w_lit(w, "]}\n");
}

static void emit_identity(gen_writer *w, const gen_tenant *t)
{
    w_lit(w, "{\"api\":\"identity\",\n\"tenant_id\":");
    w_str(w, t->org_id);
    w_lit(w, ",\n\"roles\":[");
    for (uint32_t i = 0; i < t->nroles; i++) {
        const gen_role *r = &t->roles[i];
        w_lit(w, i ? ",\n{\"Id\":" : "\n{\"Id\":");
        w_str(w, r->id);
        w_lit(w, ",\"Name\":");
        w_str(w, r->name);
        w_lit(w, ",\"Description\":");
        w_str(w, r->description);
        w_lit(w, ",\"RoleScope\":");
        w_int(w, r->role_scope);
        w_lit(w, ",\"TenantId\":");
        w_str(w, t->org_id);
        w_lit(w, ",\"CommunityId\":");
        w_str(w, r->community_id);
        w_lit(w, ",\"RoleTypeId\":");
        w_str(w, r->role_type_id);
        w_lit(w, "}");
    }
    w_lit(w, "],\n\"users\":[");
    for (uint32_t i = 0; i < t->nusers; i++) {
        const gen_user *u = &t->users[i];
        w_lit(w, i ? ",\n{\"Id\":" : "\n{\"Id\":");
        w_str(w, u->id);
        w_lit(w, ",\"GivenName\":");
        w_str(w, u->given);
        w_lit(w, ",\"Surname\":");
        w_str(w, u->surname);
        w_lit(w, ",\"Name\":");
        w_str(w, u->name);
        w_lit(w, ",\"Email\":");
        w_str(w, u->email);
        w_lit(w, ",\"ContactEmail\":");
        w_str(w, u->contact_email);
        w_lit(w, ",\"ContactGivenName\":");
        w_str(w, u->contact_given);
        w_lit(w, ",\"ContactSurname\":");
        w_str(w, u->contact_surname);
        w_lit(w, ",\"ExternalUserId\":");
        w_str(w, u->external_id);
        w_lit(w, ",\"IdentityProviderId\":");
        w_str(w, u->idp_id);
        w_lit(w, ",\"RoleIds\":[");
        for (uint32_t k = 0; k < u->nroles; k++) {
            if (k)
                w_lit(w, ",");
            w_str(w, t->roles[u->roles[k]].id);
        }
        w_lit(w, "]}");
    }
    w_lit(w, "]}\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Command line                                                                                 */

static void gen_usage(FILE *f)
{
    fputs(
        "usage: tenantsim gen --api genesys|identity --users N --roles N [--seed S] [--tenant-id "
        "GUID]\n"
        "                     [--divisions N] [--groups N] [--conditions K] [--inactive-share "
        "PCT]\n"
        "       tenantsim gen --same-as FILE [--api A] [--seed S] [--drift PCT] [--edit-roles K]\n"
        "                     [--no-custom-roles] [--tenant-id GUID]\n"
        "                     [--rename-division OLD=NEW]... [--drop-division NAME]...\n"
        "Writes a deterministic tenant state JSON to stdout (tests/sim/README.md).\n"
        "  --divisions N        genesys: the home division and N regional ones, users and about a\n"
        "                       third of the grants spread over them\n"
        "  --groups N           genesys: N groups with members and role grants\n"
        "  --conditions K       genesys: K custom roles get a policy naming the org's queues or "
        "users\n"
        "  --inactive-share PCT genesys: the share of inactive users (default 4; 1 %% are "
        "deleted)\n"
        "  --rename-division OLD=NEW, --drop-division NAME   the twin's divisions (by name); a\n"
        "                       dropped division's grants vanish, its users move to the home one\n",
        f);
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* A percentage 0..max (a plain decimal number). */
static bool parse_pct(const char *s, double max, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !(d >= 0.0 && d <= max))
        return false;
    *out = d;
    return true;
}

static bool is_guid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

/* Returns 0 and fills o, or prints the problem and returns 2 (usage) / -1 (--help). */
static int parse_args(int argc, char **argv, gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->users = o->roles = -1;
    o->divisions = o->groups = o->conditions = -1;
    o->inactive_share = -1;
    o->seed = 1;
    o->renames = xcalloc((size_t)argc + 1, sizeof *o->renames);
    o->drops = xcalloc((size_t)argc + 1, sizeof *o->drops);
    int i = 1;
    if (i < argc && strcmp(argv[i], "gen") == 0)
        i++; /* called with the whole command line */
    for (; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        char opt[64];
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) == 0 && eq && (size_t)(eq - a) < sizeof opt) {
            snprintf(opt, sizeof opt, "%.*s", (int)(eq - a), a);
            val = eq + 1;
            a = opt;
        }
        bool flag =
            strcmp(a, "--no-custom-roles") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
        if (!flag && !val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tenantsim gen: %s needs a value\n", a);
                return 2;
            }
            val = argv[++i];
        }
        long n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            gen_usage(stdout);
            return -1;
        } else if (strcmp(a, "--no-custom-roles") == 0) {
            o->no_custom = true;
        } else if (strcmp(a, "--api") == 0) {
            if (strcmp(val, "genesys") != 0 && strcmp(val, "identity") != 0) {
                fprintf(stderr, "tenantsim gen: --api must be genesys or identity\n");
                return 2;
            }
            o->api = val;
        } else if (strcmp(a, "--users") == 0) {
            if (!parse_long(val, 0, 10000000, &n)) {
                fprintf(stderr, "tenantsim gen: --users must be 0..10000000\n");
                return 2;
            }
            o->users = n;
        } else if (strcmp(a, "--roles") == 0) {
            if (!parse_long(val, 0, 100000, &n)) {
                fprintf(stderr, "tenantsim gen: --roles must be 0..100000\n");
                return 2;
            }
            o->roles = n;
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 0);
            if (errno || end == val || *end || val[0] == '-') {
                fprintf(stderr, "tenantsim gen: --seed must be an unsigned integer\n");
                return 2;
            }
            o->seed = (uint64_t)s;
        } else if (strcmp(a, "--same-as") == 0) {
            o->same_as = val;
        } else if (strcmp(a, "--drift") == 0) {
            if (!parse_pct(val, 100.0, &o->drift)) {
                fprintf(stderr, "tenantsim gen: --drift must be a percentage 0..100\n");
                return 2;
            }
        } else if (strcmp(a, "--edit-roles") == 0) {
            if (!parse_long(val, 0, 100000, &n)) {
                fprintf(stderr, "tenantsim gen: --edit-roles must be 0..100000\n");
                return 2;
            }
            o->edit_roles = n;
        } else if (strcmp(a, "--divisions") == 0 || strcmp(a, "--groups") == 0 ||
                   strcmp(a, "--conditions") == 0) {
            if (!parse_long(val, 0, 10000, &n)) {
                fprintf(stderr, "tenantsim gen: %s must be 0..10000\n", a);
                return 2;
            }
            if (strcmp(a, "--divisions") == 0)
                o->divisions = n;
            else if (strcmp(a, "--groups") == 0)
                o->groups = n;
            else
                o->conditions = n;
        } else if (strcmp(a, "--inactive-share") == 0) {
            if (!parse_pct(val, 99.0, &o->inactive_share)) {
                fprintf(stderr, "tenantsim gen: --inactive-share must be a percentage 0..99\n");
                return 2;
            }
        } else if (strcmp(a, "--rename-division") == 0) {
            const char *eqs = strchr(val, '=');
            if (!eqs || eqs == val || !eqs[1]) {
                fprintf(stderr, "tenantsim gen: --rename-division wants OLD=NEW\n");
                return 2;
            }
            o->renames[o->nrenames++] = val;
        } else if (strcmp(a, "--drop-division") == 0) {
            if (!*val) {
                fprintf(stderr, "tenantsim gen: --drop-division wants a division name\n");
                return 2;
            }
            o->drops[o->ndrops++] = val;
        } else if (strcmp(a, "--tenant-id") == 0) {
            if (!is_guid(val)) {
                fprintf(stderr, "tenantsim gen: --tenant-id must be a GUID\n");
                return 2;
            }
            o->tenant_id = val;
        } else {
            fprintf(stderr, "tenantsim gen: unknown option %s\n", a);
            gen_usage(stderr);
            return 2;
        }
    }
    if (!o->same_as) {
        if (!o->api || o->users < 0 || o->roles < 0) {
            fprintf(stderr,
                    "tenantsim gen: --api, --users and --roles are required without --same-as\n");
            gen_usage(stderr);
            return 2;
        }
        if (o->drift > 0 || o->edit_roles > 0 || o->no_custom || o->nrenames || o->ndrops) {
            fprintf(stderr, "tenantsim gen: --drift, --edit-roles, --no-custom-roles, "
                            "--rename-division and --drop-division need --same-as\n");
            return 2;
        }
        bool v2 =
            o->divisions >= 0 || o->groups >= 0 || o->conditions >= 0 || o->inactive_share >= 0;
        if (v2 && strcmp(o->api, "genesys") != 0) {
            fprintf(stderr, "tenantsim gen: --divisions, --groups, --conditions and "
                            "--inactive-share are for --api genesys\n");
            return 2;
        }
        if (o->conditions > o->roles) {
            fprintf(stderr, "tenantsim gen: --conditions %ld but only %ld custom roles\n",
                    o->conditions, o->roles);
            return 2;
        }
    } else if (o->divisions >= 0 || o->groups >= 0 || o->conditions >= 0 ||
               o->inactive_share >= 0) {
        fprintf(stderr, "tenantsim gen: --divisions, --groups, --conditions and --inactive-share "
                        "make a fresh tenant; --same-as keeps the source's\n");
        return 2;
    } else if (o->no_custom && o->edit_roles > 0) {
        fprintf(stderr, "tenantsim gen: --edit-roles cannot be combined with --no-custom-roles\n");
        return 2;
    }
    return 0;
}

int gen_main(int argc, char **argv)
{
    gen_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        free(o.renames);
        free(o.drops);
        return rc < 0 ? 0 : rc;
    }

    gen_tenant *t = xcalloc(1, sizeof *t);
    char err[512] = "";
    if (o.same_as) {
        if (same_as(t, &o, err, sizeof err) != 0) {
            fprintf(stderr, "tenantsim gen: %s\n", err);
            tenant_free(t);
            free(t);
            free(o.renames);
            free(o.drops);
            return 1;
        }
    } else {
        gen_rng r = {o.seed};
        if (strcmp(o.api, "identity") == 0)
            gen_identity(t, &o, &r);
        else
            gen_genesys(t, &o, &r);
    }

    gen_writer *w = xmalloc(sizeof *w);
    w->f = stdout;
    w->len = 0;
    w->err = false;
    if (t->identity)
        emit_identity(w, t);
    else
        emit_genesys(w, t);
    w_flush(w);
    bool ok = !w->err && fflush(stdout) == 0;
    if (!ok)
        fprintf(stderr, "tenantsim gen: writing the state failed: %s\n", strerror(errno));
    free(w);
    tenant_free(t);
    free(t);
    free(o.renames);
    free(o.drops);
    return ok ? 0 : 1;
}
