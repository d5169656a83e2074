/* ratelimit.c — token bucket, pauses and server-window pacing (pure, injected clock). */
#include "rolesync/ratelimit.h"

#include <math.h>

double ratelimit_default_burst(double rate, unsigned max_connections)
{
    double b;

    if (rate <= 0)
        return 0;
    b = rate < 2 ? rate : 2;
    if (b > (double)max_connections)
        b = (double)max_connections;
    return b < 1 ? 1 : b;
}

void ratelimit_init(struct ratelimit *rl, double rate, double burst, uint64_t now_ms)
{
    rl->rate = rate > 0 ? rate : 0;
    rl->burst = burst < 1 ? 1 : burst;
    rl->per_second = 0;
    if (rl->rate > 0) {
        double n = floor(rl->rate);
        rl->per_second = n < 1 ? 1 : n > RATELIMIT_WINDOW_MAX ? 0 : (unsigned)n;
    }
    rl->nstarts = rl->head = 0;
    rl->tokens = rl->burst;
    rl->last_ms = now_ms;
    rl->paused_until_ms = 0;
    rl->window_end_ms = 0;
    rl->window_left = 0;
    rl->window_next_ms = 0;
    rl->seen_end_ms = 0;
    rl->seen_count = 0;
}

static void refill(struct ratelimit *rl, uint64_t now_ms)
{
    if (now_ms > rl->last_ms) {
        rl->tokens += (double)(now_ms - rl->last_ms) * rl->rate / 1000.0;
        if (rl->tokens > rl->burst)
            rl->tokens = rl->burst;
        rl->last_ms = now_ms;
    }
}

uint64_t ratelimit_acquire(struct ratelimit *rl, uint64_t now_ms)
{
    if (now_ms < rl->paused_until_ms)
        return rl->paused_until_ms - now_ms;

    if (rl->window_end_ms && now_ms >= rl->window_end_ms)
        rl->window_end_ms = 0; /* the server's window is over: its budget is fresh */
    if (rl->window_end_ms) {
        if (rl->window_left <= 0)
            return rl->window_end_ms - now_ms;
        if (now_ms < rl->window_next_ms)
            return rl->window_next_ms - now_ms;
    }

    if (rl->rate > 0) {
        refill(rl, now_ms);
        if (rl->tokens < 1.0) {
            double wait = ceil((1.0 - rl->tokens) * 1000.0 / rl->rate);
            return wait < 1 ? 1 : (uint64_t)wait;
        }
        uint64_t window_end = rl->starts[rl->head] + 1000 + RATELIMIT_WINDOW_GUARD_MS;
        if (rl->per_second && rl->nstarts == rl->per_second && now_ms < window_end)
            return window_end - now_ms; /* the window is full */
        rl->tokens -= 1.0;
        if (rl->per_second) {
            if (rl->nstarts == rl->per_second) {
                rl->starts[rl->head] = now_ms; /* replaces the oldest */
                rl->head = (rl->head + 1) % rl->per_second;
            } else {
                rl->starts[(rl->head + rl->nstarts) % rl->per_second] = now_ms;
                rl->nstarts++;
            }
        }
    }

    if (rl->window_end_ms) {
        rl->window_left--;
        /* Spread what is left evenly over the rest of the window. */
        if (rl->window_left > 0)
            rl->window_next_ms = now_ms + (rl->window_end_ms - now_ms) / (uint64_t)rl->window_left;
    }
    return 0;
}

void ratelimit_pause_until(struct ratelimit *rl, uint64_t until_ms)
{
    if (until_ms > rl->paused_until_ms)
        rl->paused_until_ms = until_ms;
}

void ratelimit_server_window(struct ratelimit *rl, long allowed, long count, uint64_t reset_ms,
                             unsigned uncounted, uint64_t now_ms)
{
    long budget;
    uint64_t end;

    if (allowed <= 0 || count < 0)
        return; /* nonsense or absent headers: keep what we know */
    if (reset_ms == 0)
        reset_ms = 1000;
    end = now_ms + reset_ms;
    if (rl->seen_end_ms && now_ms >= rl->seen_end_ms)
        rl->seen_end_ms = 0; /* that window is over */
    if (rl->seen_end_ms && end < rl->seen_end_ms + 1000) {
        /* Same window (ends agree within the headers' resolution): counts only grow there, so
         * a lower one is a reply that was overtaken. Estimates are rounded up: keep the
         * earliest. */
        if (count > rl->seen_count)
            rl->seen_count = count;
        if (end < rl->seen_end_ms)
            rl->seen_end_ms = end;
    } else {
        rl->seen_end_ms = end;
        rl->seen_count = count;
    }
    count = rl->seen_count;
    end = rl->seen_end_ms;

    budget = allowed - count - (long)uncounted;
    if (budget <= 0) {
        rl->window_end_ms = end;
        rl->window_left = 0;
    } else if (budget * 2 <= allowed) {
        rl->window_end_ms = end;
        rl->window_left = budget;
        /* window_next_ms is absolute and kept: a fresh response must not undo the spacing. */
    } else {
        rl->window_end_ms = 0;
    }
}
