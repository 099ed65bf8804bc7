/* SPDX-License-Identifier: MIT */
/* peer_limits.h — per-client bookkeeping of the accept path (private):
 * a client's key (its address, as the limits see it), connections counted
 * per key (max_per_ip) and a token bucket per key (reply_rate). All of it
 * bounded in memory whatever the peers do, and safe from any thread. */
#ifndef SS_PEER_LIMITS_H
#define SS_PEER_LIMITS_H

#include "internal.h"

#include <stdint.h>

/*
 * What the limits count by: IPv4 as /32, IPv6 as /64 (one host usually has
 * a whole /64), an IPv4-mapped IPv6 address as its IPv4 address; a unix
 * peer by its socket path (an unnamed one: one shared key). `b[0]` is the
 * family tag, the rest the masked address or a hash of the path.
 */
typedef struct ss__peer_key {
    unsigned char b[17];
} ss__peer_key;

/* Fill `out` for `peer`. Returns true for an IP peer, false for any other
 * kind (a key is still filled, for the rate limiter). */
bool ss__peer_key_of(const ss_addr *peer, ss__peer_key *out);

/* Connections at once per key. Entries exist only while their count is
 * above zero, so memory follows the live connections. */
typedef struct ss__peer_count ss__peer_count;
int ss__peer_count_new(ss__peer_count **out, int max_per_key);
void ss__peer_count_free(ss__peer_count *t); /* NULL is fine */
/* Count one more for `k`; false (nothing counted) when it already has
 * max_per_key, or when memory runs out. Any thread. */
bool ss__peer_count_acquire(ss__peer_count *t, const ss__peer_key *k);
/* Give back one acquired for `k`. Any thread. */
void ss__peer_count_release(ss__peer_count *t, const ss__peer_key *k);
/* Current count of `k` (tests). */
int ss__peer_count_of(ss__peer_count *t, const ss__peer_key *k);

/* A token bucket per key: `rate` tokens a second, burst `rate`. At most
 * `max_keys` buckets are kept: when full, the bucket idle longest is
 * reused (a full bucket carries no information), so spoofed sources cannot
 * grow it without bound. */
typedef struct ss__rate ss__rate;
int ss__rate_new(ss__rate **out, unsigned rate, size_t max_keys);
void ss__rate_free(ss__rate *r); /* NULL is fine */
/* Take one token for `k` at time `now_ms` (ss__now_ms()); false = over the
 * rate, drop. Any thread. */
bool ss__rate_take(ss__rate *r, const ss__peer_key *k, int64_t now_ms);

#endif
