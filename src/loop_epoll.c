/* SPDX-License-Identifier: MIT */
/*
 * loop_epoll.c — the epoll backend (loop_backend.h): one epoll instance per
 * loop, level-triggered, epoll_ctl per change of interest, one epoll_wait
 * per turn. The ss__io is the event's data.ptr; close() drops a watch, so a
 * descriptor about to close needs no epoll_ctl.
 */
#include "loop_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_EVENTS 256

typedef struct epoll_state {
    int epfd;
} epoll_state;

static int epfd_of(const ss_loop *loop)
{
    return ((const epoll_state *)loop->be)->epfd;
}

static int epoll_open(ss_loop *loop, ss_error *err)
{
    epoll_state *st = malloc(sizeof *st);
    if (st == NULL)
        return ss__fail(err, -ENOMEM, "cannot make an event loop: out of memory");
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->epfd < 0) {
        int rc = -errno;
        free(st);
        return ss__fail(err, rc, "cannot make an event loop: epoll_create1: %s", ss_strerror(rc));
    }
    loop->be = st;
    return 0;
}

static void epoll_close(ss_loop *loop)
{
    epoll_state *st = loop->be;
    if (st == NULL)
        return;
    close(st->epfd);
    free(st);
    loop->be = NULL;
}

static int epoll_io_set(ss_loop *loop, ss__io *io, uint32_t events)
{
    int op = io->events == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(epfd_of(loop), op, io->fd, &ev) < 0)
        return -errno;
    io->events = events;
    return 0;
}

static void epoll_io_forget(ss_loop *loop, ss__io *io)
{
    /* close() drops the registration only with the file's last descriptor:
     * a dup the handler kept or a forked child's copy would keep it, and
     * the next event would name the freed io. So remove it (as libuv and
     * Redis do). Events already fetched for this io in the current batch
     * are skipped because events becomes 0. */
    if (io->events != 0)
        (void)epoll_ctl(epfd_of(loop), EPOLL_CTL_DEL, io->fd, NULL);
}

static void epoll_flush(ss_loop *loop)
{
    (void)loop; /* epoll_ctl took effect at once */
}

static int epoll_poll(ss_loop *loop, int timeout_ms)
{
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(epfd_of(loop), events, MAX_EVENTS, timeout_ms);
    if (n < 0 && errno != EINTR)
        return -errno;
    loop->now = ss__now_ms();
    for (int i = 0; i < n; i++) {
        /* the next watcher's record, while this one's callback runs (a
         * callback is a system call or two: time enough): with a thousand
         * connections it is seldom in the cache any more */
        if (i + 1 < n)
            __builtin_prefetch(events[i + 1].data.ptr);
        ss__io_dispatch(loop, events[i].data.ptr, events[i].events);
    }
    return 0;
}

const ss__backend_ops ss__backend_epoll = {
    .kind = SS_BACKEND_EPOLL,
    .open = epoll_open,
    .close = epoll_close,
    .io_set = epoll_io_set,
    .io_forget = epoll_io_forget,
    .flush = epoll_flush,
    .poll = epoll_poll,
};
