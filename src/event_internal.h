/* SPDX-License-Identifier: MIT */
/* event_internal.h — what loop.c, event_conn.c, event_dgram.c and the event
 * model share: the loop's insides and the descriptor-watch seam. */
#ifndef SS_EVENT_INTERNAL_H
#define SS_EVENT_INTERNAL_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

/* A descriptor watched by a loop (epoll's data.ptr points at it). */
typedef struct ss__io ss__io;
typedef void (*ss__io_cb)(ss_loop *loop, ss__io *io, uint32_t events);
struct ss__io {
    int fd;
    uint32_t events; /* the interest registered now; 0 = not registered */
    ss__io_cb cb;
    void *be; /* the backend's: io_uring's in-flight poll */
};

/* Register / change / remove interest. `events` 0 removes. Returns 0 or a
 * negative errno. EPOLLEXCLUSIVE cannot be modified, only removed and added:
 * callers of exclusive watches pass 0 first. */
int ss__io_set(ss_loop *loop, ss__io *io, uint32_t events);
/* Unregister and close the descriptor (events 0, fd -1 after). */
void ss__io_close(ss_loop *loop, ss__io *io);
/* Make removals queued so far take effect now: after it, the loop's kernel
 * interface holds no reference to a descriptor removed before (its owner
 * may close it and the socket really goes). */
void ss__loop_flush(ss_loop *loop);

/* Doubly linked list of the loop's listeners / connections / dgrams, so
 * ss_loop_free() can close what is left. */
typedef struct ss__link {
    struct ss__link *prev, *next;
} ss__link;

static inline void ss__link_init(ss__link *head)
{
    head->prev = head->next = head;
}
static inline void ss__link_insert_tail(ss__link *head, ss__link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}
static inline void ss__link_remove(ss__link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}
static inline bool ss__link_empty(const ss__link *head)
{
    return head->next == head;
}

/*
 * Completion-based stream I/O (io_uring's completion mode; docs/backends.md).
 * An ss__op is one receive or one send the kernel runs; its memory is the
 * caller's and must stay valid until its callback, which comes exactly once
 * per submission: with the result, or -ECANCELED after ss__op_cancel (or
 * when the loop is freed). A receive takes a buffer of the loop's provided
 * ring only when data is there: `data` names it during the callback only
 * (it goes back to the ring after). res: bytes, 0 (a receive: end of file)
 * or a negative errno; a send never waits (-EAGAIN: the socket is full).
 */
typedef struct ss__op ss__op;
typedef void (*ss__op_cb)(ss_loop *loop, ss__op *op, int res, const void *data);
struct ss__op {
    ss__op_cb cb;
    /* the backend's: */
    ss__link link;
    int fd;
    unsigned char kind, where;
    unsigned char group; /* a receive's buffer pool: the backend's choice */
    bool cancelled;
    struct msghdr *msg; /* a send's; the caller's until the callback */
};
/* Whether this loop runs plain stream connections on ss__op (the io_uring
 * backend, unless SS_URING_MODE=readiness). */
bool ss__loop_completion(const ss_loop *loop);
void ss__op_recv(ss_loop *loop, ss__op *op, int fd);
void ss__op_send(ss_loop *loop, ss__op *op, int fd, struct msghdr *msg);
void ss__op_cancel(ss_loop *loop, ss__op *op);

/* What the completion mode did, for tests (zero on other loops). */
typedef struct ss__uring_stats {
    uint64_t recvs, sends, enobufs, buffers_used, buffers_returned;
    uint64_t bulk_recvs;     /* receives into the bulk pool */
    unsigned buffers;        /* in the small pool */
    unsigned bulk_buffers;   /* in the bulk pool */
    unsigned recvs_armed;    /* receives the kernel holds now */
} ss__uring_stats;
void ss__loop_uring_stats(const ss_loop *loop, ss__uring_stats *out);

/* Something that must be freed at the end of the turn (a closed
 * connection's memory may still be named by events of the current batch). */
typedef struct ss__deferred ss__deferred;
struct ss__deferred {
    ss__deferred *next;
    void (*run)(ss__deferred *d);
};
void ss__loop_defer(ss_loop *loop, ss__deferred *d);
/* Run what was deferred now (on_close of closed connections). Not from
 * inside a connection's callback. */
void ss__loop_run_deferred(ss_loop *loop);

/* A connection of the loop closed: let paused listeners try again. */
void ss__loop_conn_closed(ss_loop *loop);

#define SS__CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* The per-loop read buffer: every connection reads into it, so an idle
 * connection holds no read memory. */
#define SS__LOOP_READ_BUFFER (64 * 1024)

struct ss__backend_ops;
struct ss_loop {
    const struct ss__backend_ops *ops; /* loop_backend.h */
    void *be;                          /* the backend's state */
    char fallback[160]; /* auto chose epoll: why io_uring was refused */
    pthread_t runner;   /* the thread of the last turn (valid if ran) */
    bool ran;
    ss__io wake; /* eventfd: stop, wakeup, posts */
    int64_t now;
    atomic_bool stop;
    atomic_bool woken; /* a wakeup is pending: skip redundant eventfd writes */

    ss_timer **heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;

    pthread_mutex_t post_lock;
    struct ss__post *post_head, *post_tail;

    unsigned char *rbuf;
    ss__deferred *deferred;
    bool completion; /* ss__loop_completion() */
    void *chunk_cache; /* output-queue chunks kept for reuse (event_conn.c) */
    unsigned nchunk_cache;
    void *bulk_cache; /* and the bulk ones (CHUNK_BULK) */
    unsigned nbulk_cache;

    ss__link conns;     /* every open ss_conn */
    ss__link listeners; /* every ss_listener */
    ss__link dgrams;    /* every ss_dgram */
    ss__link retired;   /* closed balanced listeners, freed with the loop */
    size_t nconns;
    void *user;
};

/*
 * Balance a listener shared by several loops: after each accept, pick(arg,
 * self) names the listener (of another loop, on the same descriptor) that
 * should serve the new connection; the descriptor is then posted to that
 * loop. NULL or self serves it here. unpick(arg, l) is called when a picked
 * connection never opened (out of memory, listener closed meanwhile).
 * Set before the loops run.
 */
void ss__listener_set_balancer(ss_listener *l, ss_listener *(*pick)(void *arg, ss_listener *self),
                               void (*unpick)(void *arg, ss_listener *l), void *arg);
ss_loop *ss__listener_loop(const ss_listener *l);
/* Stop (hold) or restart polling a listener / datagram socket, whatever
 * its cap or EMFILE state: nothing touches the descriptor while held, so
 * its owner may close it. Loop thread. */
void ss__listener_hold(ss_listener *l, bool hold);
/* A connection of `l` whose output queue makes no progress for `seconds`
 * (the peer stopped reading) is closed with SS_ETIMEOUT: the server's
 * write_timeout, as the blocking models have it. 0 = never (the default).
 * Set before the loop runs. */
void ss__listener_set_write_timeout(ss_listener *l, double seconds);
void ss__dgram_hold(ss_dgram *d, bool hold);
/* Several loops poll this datagram socket: wake one per packet. */
void ss__dgram_share(ss_dgram *d);

/* A connection the server's own accept path admitted (handle_request under
 * the event model), served as if `l` had accepted it: its TLS handshake,
 * idle and write timeouts and max_conns share; its PROXY header, if any,
 * already read (`peer` is what it named). On l's loop thread; the fd is
 * closed on failure, and l's unopened hook hears of it. */
void ss__listener_adopt(ss_listener *l, int fd, const ss_addr *peer);

/* Why auto fell back to epoll (io_uring refused), or NULL. */
const char *ss__loop_fallback(const ss_loop *loop);

/* Close every connection / listener / dgram of a loop (ss_loop_free). */
void ss__conns_close_all(ss_loop *loop, int reason);
void ss__listeners_close_all(ss_loop *loop);
void ss__listeners_free_retired(ss_loop *loop);
void ss__dgrams_close_all(ss_loop *loop);

/* Free the loop's cached output chunks (ss_loop_free). */
void ss__conns_free_cache(ss_loop *loop);

/* What a connection carried and how long it has been open, for the log
 * line at its end (event_conn.c). */
void ss__conn_counts(const ss_conn *c, uint64_t *in, uint64_t *out, int64_t *age_ms);

#endif
