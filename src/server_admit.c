/* SPDX-License-Identifier: MIT */
/*
 * server_admit.c — may this peer be served at all? The checks every
 * connection and datagram passes before anything is given to it (a thread, a
 * child, a buffer): the access rules, max_per_ip, reply_rate, then the
 * user's verify_request. Shared by the core's acceptor and the event model's
 * loops, so it is safe from any thread.
 *
 * Refusals are counted always and logged at most once a second, as one
 * summary line: a flood must not turn into a flood of log lines (which would
 * cost more than the refusals themselves and bury everything else).
 */
#include "server_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_INTERVAL_MS 1000
/* Token buckets kept for reply_rate: past this many sources the idlest
 * bucket is reused (spoofed sources cannot grow the table). */
#define RATE_MAX_SOURCES 65536

static const char *const note_words[SS__REFUSED_KINDS] = {
    [SS__REFUSED_DENIED] = "denied by the access rules",
    [SS__REFUSED_OVER_IP] = "over max_per_ip",
    [SS__REFUSED_VERIFY] = "refused by verify_request",
    [SS__REFUSED_EVICTED] = "cut while pending (max_pending)",
    [SS__REFUSED_SILENT] = "silent past handshake_timeout",
    [SS__REFUSED_RATE] = "datagrams over reply_rate",
    [SS__REFUSED_BAD_HEADER] = "without a valid PROXY header",
};

int ss__admit_init(ss_server *srv)
{
    pthread_mutex_init(&srv->admit_lock, NULL);
    srv->note_last_ms = ss__now_ms() - NOTE_INTERVAL_MS;
    if (srv->stream && srv->opts.max_per_ip > 0 &&
        ss__peer_count_new(&srv->per_ip, srv->opts.max_per_ip) < 0)
        return -ENOMEM;
    if (!srv->stream && srv->opts.reply_rate > 0 &&
        ss__rate_new(&srv->rate, srv->opts.reply_rate, RATE_MAX_SOURCES) < 0)
        return -ENOMEM;
    return 0;
}

void ss__admit_free(ss_server *srv)
{
    ss__peer_count_free(srv->per_ip);
    ss__rate_free(srv->rate);
    ss_access_free(srv->access);
    srv->per_ip = NULL;
    srv->rate = NULL;
    srv->access = NULL;
    pthread_mutex_destroy(&srv->admit_lock);
}

void ss_server_set_access(ss_server *srv, ss_access *rules)
{
    pthread_mutex_lock(&srv->admit_lock);
    ss_access *old = srv->access;
    srv->access = rules;
    pthread_mutex_unlock(&srv->admit_lock);
    /* every check holds the lock for its whole use of the set: none uses
     * `old` any more */
    ss_access_free(old);
    atomic_fetch_add(&srv->access_generation, 1);
    ss__wake(srv);
}

static bool access_allows(ss_server *srv, const ss_addr *peer)
{
    if (srv->access == NULL) /* racy peek, settled under the lock below */
        return true;
    pthread_mutex_lock(&srv->admit_lock);
    bool ok = srv->access == NULL || ss_access_allows(srv->access, peer);
    pthread_mutex_unlock(&srv->admit_lock);
    return ok;
}

/* ---- the summary line --------------------------------------------------- */

void ss__refusal_flush(ss_server *srv, bool force)
{
    if (atomic_load_explicit(&srv->notes_pending, memory_order_relaxed) == 0)
        return;
    int64_t now = ss__now_ms();
    pthread_mutex_lock(&srv->admit_lock);
    if (!force && now - srv->note_last_ms < NOTE_INTERVAL_MS) {
        pthread_mutex_unlock(&srv->admit_lock);
        return;
    }
    unsigned long long n[SS__REFUSED_KINDS];
    unsigned long long total = 0;
    for (int k = 0; k < SS__REFUSED_KINDS; k++) {
        n[k] = atomic_exchange(&srv->notes[k], 0);
        total += n[k];
    }
    atomic_store(&srv->notes_pending, 0);
    double span = (double)(now - srv->note_last_ms) / 1000.0;
    srv->note_last_ms = now;
    pthread_mutex_unlock(&srv->admit_lock);
    if (total == 0)
        return;
    char line[512];
    size_t used = 0;
    for (int k = 0; k < SS__REFUSED_KINDS; k++) {
        if (n[k] == 0)
            continue;
        int w = snprintf(line + used, sizeof line - used, "%s%llu %s", used ? ", " : "", n[k],
                         note_words[k]);
        if (w < 0 || (size_t)w >= sizeof line - used)
            break;
        used += (size_t)w;
    }
    ss_server_log(srv, SS_LOG_WARN, "%s: refused in the last %.1fs: %s", srv->addr_text,
                  span > 3600 ? 0.0 : span, line);
}

void ss__refusal_note(ss_server *srv, ss__refusal kind)
{
    atomic_fetch_add_explicit(&srv->notes[kind], 1, memory_order_relaxed);
    atomic_store_explicit(&srv->notes_pending, 1, memory_order_relaxed);
    ss__refusal_flush(srv, false);
}

bool ss__refusal_due(const ss_server *srv)
{
    return atomic_load_explicit(&((ss_server *)srv)->notes_pending, memory_order_relaxed) != 0;
}

/* ---- the checks ---------------------------------------------------------- */

int ss__admit_conn(ss_server *srv, int fd, const ss_addr *peer, ss__peer_key *key, bool *holds_key)
{
    *holds_key = false;
    if (!access_allows(srv, peer)) {
        atomic_fetch_add(&srv->counters.denied, 1);
        ss__refusal_note(srv, SS__REFUSED_DENIED);
        return SS__REFUSED_DENIED;
    }
    if (srv->per_ip != NULL && ss__peer_key_of(peer, key)) {
        if (!ss__peer_count_acquire(srv->per_ip, key)) {
            atomic_fetch_add(&srv->counters.over_ip, 1);
            ss__refusal_note(srv, SS__REFUSED_OVER_IP);
            return SS__REFUSED_OVER_IP;
        }
        *holds_key = true;
    }
    if (srv->opts.verify_request != NULL) {
        ss_sock conn = {fd, srv->addr.kind, srv->sock.family, SS_TIMEOUT_NONE};
        if (!srv->opts.verify_request(srv, &conn, peer)) {
            if (*holds_key)
                ss__admit_release(srv, key);
            *holds_key = false;
            atomic_fetch_add(&srv->counters.refused, 1);
            ss__refusal_note(srv, SS__REFUSED_VERIFY);
            return SS__REFUSED_VERIFY;
        }
    }
    return 0;
}

void ss__admit_release(ss_server *srv, const ss__peer_key *key)
{
    if (srv->per_ip != NULL)
        ss__peer_count_release(srv->per_ip, key);
}

bool ss__admit_packet(ss_server *srv, const ss_addr *from)
{
    if (!access_allows(srv, from)) {
        atomic_fetch_add(&srv->counters.denied, 1);
        ss__refusal_note(srv, SS__REFUSED_DENIED);
        return false;
    }
    if (srv->rate != NULL) {
        ss__peer_key k;
        ss__peer_key_of(from, &k);
        if (!ss__rate_take(srv->rate, &k, ss__now_ms())) {
            atomic_fetch_add(&srv->counters.dropped, 1);
            ss__refusal_note(srv, SS__REFUSED_RATE);
            return false;
        }
    }
    return true;
}
