/* SPDX-License-Identifier: MIT */
/*
 * event_dgram.c — datagram sockets (udp, unixgram) on a loop: receive up to
 * BATCH packets with one recvmmsg(), hand each to on_packet, and send the
 * replies it queued with one sendmmsg() when the batch is done.
 *
 * A reply the socket cannot take (EAGAIN: the send buffer or, for unixgram,
 * the receiver's queue is full) is dropped and counted, never waited for:
 * one slow peer must not stall the loop, and datagrams may be lost anyway.
 */
#include "event_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BATCH 16
#define OUT_ARENA (64 * 1024) /* reply bytes batched before a flush */

struct ss_dgram {
    ss__io io;
    ss_loop *loop;
    ss__link link;
    const struct ss_event_handler *h;
    ss__deferred deferred;
    uint32_t want_extra; /* EPOLLEXCLUSIVE when several loops share it */
    ss_addr_kind kind;
    size_t max_packet;
    uint64_t dropped;
    /* receive side: BATCH slots of max_packet bytes */
    unsigned char *in;
    struct mmsghdr inmsg[BATCH];
    struct iovec iniov[BATCH];
    struct sockaddr_storage from[BATCH];
    /* send side: replies copied into one arena */
    unsigned char *out;
    size_t out_used;
    unsigned nout;
    struct mmsghdr outmsg[BATCH];
    struct iovec outiov[BATCH];
    struct sockaddr_storage to[BATCH];
};

static void flush_replies(ss_dgram *d)
{
    unsigned sent = 0;
    while (sent < d->nout) {
        int n = sendmmsg(d->io.fd, d->outmsg + sent, d->nout - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* EAGAIN, or an error for the first message (e.g. a unixgram
             * peer that went away): drop that one and go on. */
            d->dropped++;
            sent++;
            continue;
        }
        sent += (unsigned)n;
    }
    d->nout = 0;
    d->out_used = 0;
}

int ss_dgram_send(ss_dgram *d, const ss_addr *to, const void *buf, size_t len)
{
    if (d->io.fd < 0)
        return SS_ECLOSED;
    if (to->len <= sizeof(sa_family_t))
        return -EDESTADDRREQ; /* an unnamed unixgram sender cannot be answered */
    if (len > OUT_ARENA) {
        /* Too big to batch: send it alone. */
        ssize_t n = sendto(d->io.fd, buf, len, MSG_NOSIGNAL, &to->u.sa, to->len);
        if (n < 0) {
            d->dropped++;
            return -errno;
        }
        return 0;
    }
    if (d->nout == BATCH || d->out_used + len > OUT_ARENA)
        flush_replies(d);
    unsigned i = d->nout++;
    memcpy(d->out + d->out_used, buf, len);
    d->outiov[i].iov_base = d->out + d->out_used;
    d->outiov[i].iov_len = len;
    d->out_used += len;
    memcpy(&d->to[i], &to->u, to->len);
    d->outmsg[i].msg_hdr = (struct msghdr){
        .msg_name = to->len > 0 ? &d->to[i] : NULL,
        .msg_namelen = to->len,
        .msg_iov = &d->outiov[i],
        .msg_iovlen = 1,
    };
    return 0;
}

static void dgram_io(ss_loop *loop, ss__io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    ss_dgram *d = (ss_dgram *)io;
    for (unsigned i = 0; i < BATCH; i++) {
        d->iniov[i].iov_base = d->in + i * d->max_packet;
        d->iniov[i].iov_len = d->max_packet;
        d->inmsg[i].msg_hdr = (struct msghdr){
            .msg_name = &d->from[i],
            .msg_namelen = sizeof d->from[i],
            .msg_iov = &d->iniov[i],
            .msg_iovlen = 1,
        };
    }
    int n = recvmmsg(d->io.fd, d->inmsg, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return; /* EAGAIN/EINTR; an error is reported again if it lasts */
    for (int i = 0; i < n && d->io.fd >= 0; i++) {
        ss_addr from;
        from.kind = d->kind;
        from.len = d->inmsg[i].msg_hdr.msg_namelen;
        if (from.len > sizeof from.u)
            from.len = sizeof from.u;
        memcpy(&from.u, &d->from[i], from.len);
        if (d->h->on_packet != NULL)
            d->h->on_packet(d, d->iniov[i].iov_base, d->inmsg[i].msg_len, &from);
    }
    if (d->io.fd >= 0)
        flush_replies(d);
}

int ss_loop_dgram(ss_loop *loop, int fd, const struct ss_event_handler *h, size_t max_packet,
                  ss_dgram **out, ss_error *err)
{
    *out = NULL;
    int type = 0, domain = 0;
    socklen_t tl = sizeof type, dl = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) < 0) {
        int rc = -errno;
        return ss__fail(err, rc, "cannot serve descriptor %d: %s", fd, ss_strerror(rc));
    }
    if (type != SOCK_DGRAM)
        return ss__fail(err, SS_EUSAGE, "descriptor %d is not a datagram socket", fd);
    if (max_packet == 0)
        max_packet = 65536;
    ss_dgram *d = calloc(1, sizeof *d);
    if (d == NULL)
        return ss__fail(err, -ENOMEM, "cannot serve descriptor %d: out of memory", fd);
    d->in = malloc(BATCH * max_packet);
    d->out = malloc(OUT_ARENA);
    int rc = (d->in == NULL || d->out == NULL) ? -ENOMEM : 0;
    d->io.fd = fd;
    d->io.cb = dgram_io;
    d->loop = loop;
    d->h = h;
    d->kind = domain == AF_UNIX ? SS_ADDR_UNIXGRAM : SS_ADDR_UDP;
    d->max_packet = max_packet;
    if (rc == 0)
        rc = ss__set_nonblocking(fd, 1);
    if (rc == 0)
        rc = ss__io_set(loop, &d->io, EPOLLIN);
    if (rc < 0) {
        free(d->in);
        free(d->out);
        free(d);
        return ss__fail(err, rc, "cannot serve datagram socket %d: %s", fd, ss_strerror(rc));
    }
    ss__link_insert_tail(&loop->dgrams, &d->link);
    *out = d;
    return 0;
}

static void dgram_deferred_free(ss__deferred *def)
{
    ss_dgram *d = SS__CONTAINER_OF(def, ss_dgram, deferred);
    free(d->in);
    free(d->out);
    free(d);
}

void ss_dgram_close(ss_dgram *d)
{
    if (d == NULL || d->io.fd < 0)
        return;
    if (d->nout > 0)
        flush_replies(d);
    (void)ss__io_set(d->loop, &d->io, 0);
    ss__loop_flush(d->loop); /* the descriptor is the caller's again */
    d->io.fd = -1;
    ss__link_remove(&d->link);
    /* Freed at the end of the turn: an event of this batch may name it. */
    d->deferred.run = dgram_deferred_free;
    ss__loop_defer(d->loop, &d->deferred);
}

void ss__dgrams_close_all(ss_loop *loop)
{
    while (!ss__link_empty(&loop->dgrams))
        ss_dgram_close(SS__CONTAINER_OF(loop->dgrams.next, ss_dgram, link));
}

void ss__dgram_share(ss_dgram *d)
{
    /* EPOLLEXCLUSIVE cannot be added by a modification: remove, add. */
    bool polled = d->io.events != 0;
    (void)ss__io_set(d->loop, &d->io, 0);
    d->want_extra = EPOLLEXCLUSIVE;
    if (polled)
        (void)ss__io_set(d->loop, &d->io, EPOLLIN | d->want_extra);
}

void ss__dgram_hold(ss_dgram *d, bool hold)
{
    if (d->io.fd < 0)
        return;
    (void)ss__io_set(d->loop, &d->io, hold ? 0 : EPOLLIN | d->want_extra);
    if (hold)
        ss__loop_flush(d->loop); /* the caller may close it now */
}

void *ss_dgram_handler_data(const ss_dgram *d)
{
    return d->h->data;
}
ss_loop *ss_dgram_loop(const ss_dgram *d)
{
    return d->loop;
}
uint64_t ss_dgram_dropped(const ss_dgram *d)
{
    return d->dropped;
}
