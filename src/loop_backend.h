/* SPDX-License-Identifier: MIT */
/*
 * loop_backend.h — what a loop needs from the kernel interface under it: the
 * private seam between the backend-neutral loop (loop.c: timers, posted
 * work, deferred frees, the turn) and a backend (loop_epoll.c,
 * loop_uring.c), as libuv and libevent keep theirs.
 *
 * Every backend gives the same contract to event_conn.c and event_dgram.c:
 * level-triggered readiness for each registered ss__io (EPOLLIN, EPOLLOUT,
 * EPOLLERR, EPOLLHUP as epoll names them; EPOLLEXCLUSIVE honoured on add;
 * EPOLLET makes it edge-triggered: what is ready when it is set, then each
 * wake-up -- io_uring's multishot poll, which may also report EPOLLRDHUP
 * unasked), and an ss__io unregistered during a turn never sees another callback.
 */
#ifndef SS_LOOP_BACKEND_H
#define SS_LOOP_BACKEND_H

#include "event_internal.h"

typedef struct ss__backend_ops {
    ss_backend kind;
    /* Make loop->be; 0 or a negative errno, the reason in err. */
    int (*open)(ss_loop *loop, ss_error *err);
    void (*close)(ss_loop *loop);
    /* The loop's first turn begins, on the thread that runs it. */
    int (*start)(ss_loop *loop);
    /* Register / change / remove interest (ss__io_set's contract). */
    int (*io_set)(ss_loop *loop, ss__io *io, uint32_t events);
    /* The descriptor is about to be closed: drop every watch of it without
     * touching the descriptor (epoll: close() drops it; io_uring: cancel). */
    void (*io_forget)(ss_loop *loop, ss__io *io);
    /* Hand what is queued to the kernel now (io_uring: removals that must
     * take effect before the caller's owner closes a descriptor). */
    void (*flush)(ss_loop *loop);
    /* Wait at most timeout_ms (-1: no bound) and run the callbacks of what
     * is ready. 0, or a negative errno if the interface itself failed. */
    int (*poll)(ss_loop *loop, int timeout_ms);
    /* Completion-based I/O (event_internal.h's ss__op), when
     * loop->completion: NULL on epoll. */
    void (*op_submit)(ss_loop *loop, ss__op *op);
    void (*op_cancel)(ss_loop *loop, ss__op *op);
    void (*stats)(const ss_loop *loop, ss__uring_stats *out);
} ss__backend_ops;

enum { SS__OP_RECV = 1, SS__OP_SEND = 2 };

extern const ss__backend_ops ss__backend_epoll;
extern const ss__backend_ops ss__backend_uring;

/* Dispatch one readiness report (both backends): skipped when the io was
 * unregistered earlier in the batch. */
static inline void ss__io_dispatch(ss_loop *loop, ss__io *io, uint32_t events)
{
    if (io->events != 0)
        io->cb(loop, io, events);
}

#endif
