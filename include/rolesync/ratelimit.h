/* ratelimit.h — per-tenant request pacing: token bucket, server pauses, server windows.
 *
 * Pure: every call takes the current time (milliseconds on any monotonic clock) from the caller,
 * so tests drive it with a fake clock. One struct per tenant, embedded in the tenant; nothing to
 * free.
 *
 * Three independent limits; a request may start only when all three allow it:
 *  1. Token bucket: `rate` tokens per second, capacity `burst`; each request takes one token.
 *     Over any interval of T seconds at most burst + rate*T requests start. On top of it, no
 *     window of one second holds more than max(1, floor(rate)) starts (product.md 5: "at most
 *     rate_limit requests per second"; the last starts are kept for that, up to
 *     RATELIMIT_WINDOW_MAX of them — above that many per second only the bucket applies).
 *     The window is RATELIMIT_WINDOW_GUARD_MS longer than a second: requests reach the server
 *     a little later or earlier than they start here, and a start exactly one second after
 *     another would arrive inside the same server second (costs 1 % of the rate).
 *  2. Pause: after a 429 (or any Retry-After), nothing starts before the given time; the whole
 *     tenant slows, not just the request that was refused (product.md §5).
 *  3. Server window: the server advertises `allowed` requests per window, `count` used so far and
 *     `reset` seconds until the window ends (genesys inin-ratelimit-* headers). While the unused
 *     budget is at least half of `allowed` nothing changes; below that the remaining budget is
 *     spread evenly over the time left in the window, and at zero nothing starts until the window
 *     ends. Requests already sent but not yet answered are subtracted from the budget, since the
 *     server may not have counted them yet. Replies overtaking each other are handled: within one
 *     window the count only grows, so a lower count whose window ends at the same time (within
 *     the headers' one-second resolution) is stale and ignored, and the window end used is the
 *     earliest estimate (estimates are rounded up, so never before the true end). So the client
 *     stays under the advertised limit without waiting for a 429.
 */
#ifndef ROLESYNC_RATELIMIT_H
#define ROLESYNC_RATELIMIT_H

#include <stdint.h>

#define RATELIMIT_WINDOW_MAX 1024
#define RATELIMIT_WINDOW_GUARD_MS 10 /* added to the one-second window, see above */

struct ratelimit {
    double rate;            /* tokens per second; 0 = no client-side limit */
    unsigned per_second;    /* starts allowed in any one-second window; 0 = not enforced */
    unsigned nstarts, head; /* ring of the last starts (oldest at head) */
    uint64_t starts[RATELIMIT_WINDOW_MAX];
    double burst;             /* bucket capacity (tokens), >= 1 */
    double tokens;            /* tokens available at last_ms */
    uint64_t last_ms;         /* time of the last refill */
    uint64_t paused_until_ms; /* nothing starts before this (0 = no pause) */
    uint64_t window_end_ms;   /* end of the server window being paced; 0 = none */
    long window_left;         /* requests the server still accepts before window_end_ms */
    uint64_t window_next_ms;  /* paced: the next request not before this */
    uint64_t seen_end_ms;     /* earliest end estimate of the server window last reported */
    long seen_count;          /* highest count reported for that window */
};

/* The burst used for a tenant: min(rate, 2, max_connections), at least 1. Small, so requests
 * start nearly evenly spaced; above 1, so the fraction of a token a millisecond timer leaves
 * over is kept (a bucket of exactly 1 loses it: 90/s would run at 83/s). The one-second window
 * keeps the per-second bound either way. With no rate limit, 0. */
double ratelimit_default_burst(double rate, unsigned max_connections);

/* Start with a full bucket at `now_ms`. `rate` 0 disables the bucket (pauses and server windows
 * still apply). `burst` below 1 is raised to 1. */
void ratelimit_init(struct ratelimit *rl, double rate, double burst, uint64_t now_ms);

/* Try to start one request at `now_ms`. Returns 0 when it may start (a token is taken), else
 * the milliseconds (>= 1) to wait before asking again; nothing is taken then. */
uint64_t ratelimit_acquire(struct ratelimit *rl, uint64_t now_ms);

/* Nothing starts before `until_ms` (a later pause wins over an earlier one). */
void ratelimit_pause_until(struct ratelimit *rl, uint64_t until_ms);

/* Feed one response's server window: `allowed` per window, `count` used, `reset_ms` until the
 * window ends (0 is taken as 1 s: headers have whole seconds), `uncounted` requests in flight. */
void ratelimit_server_window(struct ratelimit *rl, long allowed, long count, uint64_t reset_ms,
                             unsigned uncounted, uint64_t now_ms);

#endif
