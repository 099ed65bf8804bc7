/* SPDX-License-Identifier: MIT */
/*
 * relay.c — the two-way copy of relay.h.
 *
 * Each turn of the loop tries, for each direction, one read (when its
 * buffer has room and the source is not known to be blocked), one write
 * (when bytes wait and the destination is not known to be blocked) and the
 * half-close (when the source has ended and everything is written). Only
 * when nothing moved does it sleep in poll(), on exactly the operations that
 * said -EAGAIN, through the transport's wait_events() (TLS may need POLLOUT
 * to read). Any event on a descriptor clears both of its blocked marks: for
 * TLS a readable socket may be what a blocked write was waiting for, and
 * trying again costs one system call. A turn moves at most one buffer per
 * direction, so a flooding side cannot starve the other, and the watched
 * descriptors and deadlines are looked at every turn.
 */
#include "relay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WATCH 8

int64_t exec_relay_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dir_init(exec_relay_dir *d, ss_transport *src, ss_transport *dst, size_t cap)
{
    memset(d, 0, sizeof *d);
    d->src = src;
    d->dst = dst;
    d->cap = cap;
    d->buf = malloc(cap);
    return d->buf != NULL ? 0 : -ENOMEM;
}

int exec_relay_init(exec_relay *r, ss_transport *peer, ss_transport *prog,
                    const exec_relay_opts *opts)
{
    memset(r, 0, sizeof *r);
    if (opts != NULL)
        r->opts = *opts;
    if (r->opts.buffer == 0)
        r->opts.buffer = EXEC_RELAY_BUFFER_DEFAULT;
    if (dir_init(&r->up, peer, prog, r->opts.buffer) < 0 ||
        dir_init(&r->down, prog, peer, r->opts.buffer) < 0) {
        exec_relay_free(r);
        return -ENOMEM;
    }
    r->last_moved_ms = exec_relay_now_ms();
    return 0;
}

void exec_relay_free(exec_relay *r)
{
    free(r->up.buf);
    free(r->down.buf);
    r->up.buf = r->down.buf = NULL;
}

/* Move what waits to the front, so the free room is in one piece. */
static void compact(exec_relay_dir *d)
{
    if (d->start == 0)
        return;
    memmove(d->buf, d->buf + d->start, d->len);
    d->start = 0;
}

int exec_relay_push_up(exec_relay *r, const void *data, size_t len)
{
    exec_relay_dir *d = &r->up;
    compact(d);
    if (len > d->cap - d->len)
        return SS_ETOOLONG;
    memcpy(d->buf + d->len, data, len);
    d->len += len;
    return 0;
}

bool exec_relay_finished(const exec_relay *r)
{
    return r->up.src_done && r->up.dst_done && r->down.src_done && r->down.dst_done;
}

static void note_error(exec_relay_dir *d, int code)
{
    if (d->error == 0)
        d->error = code;
}

/* The destination is gone: nothing more can be delivered this way, so the
 * source is not read any more either (what it sends is not wanted). */
static void dst_failed(exec_relay_dir *d, int code)
{
    note_error(d, code);
    d->dst_done = true;
    d->src_done = true;
    d->start = d->len = 0;
}

static bool try_read(exec_relay_dir *d)
{
    if (d->src_done || d->read_blocked)
        return false;
    if (d->start + d->len == d->cap)
        compact(d);
    size_t room = d->cap - (d->start + d->len);
    if (room == 0)
        return false; /* full: the destination must take some first */
    ssize_t n = d->src->ops->read(d->src, d->buf + d->start + d->len, room);
    if (n > 0) {
        d->len += (size_t)n;
        return true;
    }
    if (n == -EAGAIN) {
        d->read_blocked = true;
    } else {
        /* end of file; an error (a reset) ends the direction the same way,
         * and the destination still gets what was read before it */
        if (n < 0)
            note_error(d, (int)n);
        d->src_done = true;
    }
    return false;
}

/* Returns true when bytes went out; *blocked tells a write that waits. */
static bool try_write(exec_relay_dir *d, bool *blocked)
{
    *blocked = false;
    if (d->len == 0 || d->dst_done || d->write_blocked)
        return false;
    ssize_t n = d->dst->ops->write(d->dst, d->buf + d->start, d->len);
    if (n > 0) {
        d->start += (size_t)n;
        d->len -= (size_t)n;
        d->bytes += (uint64_t)n;
        if (d->len == 0)
            d->start = 0;
        return true;
    }
    if (n == -EAGAIN) {
        d->write_blocked = true;
        *blocked = true;
    } else {
        /* 0 from a write of len > 0 would repeat forever: a closed end */
        dst_failed(d, n < 0 ? (int)n : SS_ECLOSED);
    }
    return false;
}

/* Pass the end of file on, once everything before it is delivered. */
static void try_half_close(exec_relay_dir *d)
{
    if (!d->src_done || d->len > 0 || d->dst_done || d->write_blocked)
        return;
    int rc = d->dst->ops->shutdown_write(d->dst);
    if (rc == -EAGAIN) { /* TLS: the close_notify did not fit yet */
        d->write_blocked = true;
        return;
    }
    /* a pipe cannot half-close (SS_EUNSUPPORTED) and a peer that went away
     * (ENOTCONN) has nothing to be told: either way this direction is over */
    if (rc < 0 && rc != SS_EUNSUPPORTED && rc != -ENOTCONN)
        note_error(d, rc);
    d->dst_done = true;
}

/* One turn over both directions; true when any byte moved. */
static bool turn(exec_relay *r, int64_t now)
{
    bool moved = false, blocked;
    moved |= try_read(&r->up);
    moved |= try_read(&r->down);
    moved |= try_write(&r->up, &blocked);
    if (try_write(&r->down, &blocked)) {
        moved = true;
        r->peer_stalled_ms = 0;
    } else if (blocked && r->peer_stalled_ms == 0) {
        r->peer_stalled_ms = now;
    }
    if (r->down.len == 0)
        r->peer_stalled_ms = 0;
    try_half_close(&r->up);
    try_half_close(&r->down);
    return moved;
}

/* What to poll `t` for: the operations on it that said -EAGAIN. */
static short events_for(ss_transport *t, const exec_relay_dir *reads_it,
                        const exec_relay_dir *writes_it)
{
    short ev = 0;
    if (reads_it->read_blocked && !reads_it->src_done)
        ev |= t->ops->wait_events(t, POLLIN);
    if (writes_it->write_blocked && !writes_it->dst_done)
        ev |= t->ops->wait_events(t, POLLOUT);
    return ev;
}

/* The nearer of `*soonest` and `at` (ms since the clock's origin; -1 none). */
static void nearer(int64_t *soonest, int64_t at)
{
    if (at >= 0 && (*soonest < 0 || at < *soonest))
        *soonest = at;
}

int exec_relay_run(exec_relay *r, struct pollfd *watch, int nwatch, int64_t deadline_ms)
{
    if (nwatch < 0 || nwatch > MAX_WATCH || (nwatch > 0 && watch == NULL))
        return SS_EUSAGE;
    ss_transport *peer = r->up.src, *prog = r->down.src;
    for (;;) {
        int64_t now = exec_relay_now_ms();
        bool moved = turn(r, now);
        if (exec_relay_finished(r))
            return 0;
        if (moved)
            r->last_moved_ms = now;

        int64_t idle_at =
            r->opts.idle_timeout_ms > 0 ? r->last_moved_ms + r->opts.idle_timeout_ms : -1;
        int64_t stall_at = r->opts.peer_write_timeout_ms > 0 && r->peer_stalled_ms != 0
                               ? r->peer_stalled_ms + r->opts.peer_write_timeout_ms
                               : -1;
        if (idle_at >= 0 && now >= idle_at) {
            r->why = "idle";
            return SS_ETIMEOUT;
        }
        if (stall_at >= 0 && now >= stall_at) {
            r->why = "peer not reading";
            return SS_ETIMEOUT;
        }
        if (deadline_ms >= 0 && now >= deadline_ms)
            return EXEC_RELAY_DEADLINE;

        struct pollfd p[2 + MAX_WATCH];
        short pev = events_for(peer, &r->up, &r->down);
        short gev = events_for(prog, &r->down, &r->up);
        /* a descriptor with nothing to wait for is left out: poll would
         * still report its hang-up, again and again */
        p[0] = (struct pollfd){.fd = pev ? peer->fd : -1, .events = pev};
        p[1] = (struct pollfd){.fd = gev ? prog->fd : -1, .events = gev};
        for (int i = 0; i < nwatch; i++) {
            p[2 + i] = watch[i];
            p[2 + i].revents = 0;
        }
        int timeout = 0;
        if (!moved) {
            int64_t soonest = -1;
            nearer(&soonest, idle_at);
            nearer(&soonest, stall_at);
            nearer(&soonest, deadline_ms);
            timeout = soonest < 0                        ? -1
                      : soonest - now > 24 * 3600 * 1000 ? 24 * 3600 * 1000
                                                         : (int)(soonest - now);
        }
        int n = ss_poll(p, (nfds_t)(2 + nwatch), timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (p[0].revents) {
            r->up.read_blocked = false;
            r->down.write_blocked = false;
        }
        if (p[1].revents) {
            r->down.read_blocked = false;
            r->up.write_blocked = false;
        }
        bool woken = false;
        for (int i = 0; i < nwatch; i++) {
            watch[i].revents = p[2 + i].revents;
            woken |= watch[i].revents != 0;
        }
        if (woken)
            return EXEC_RELAY_WATCH;
    }
}
