/* SPDX-License-Identifier: MIT */
/*
 * loop_uring.c — the io_uring backend (loop_backend.h), readiness mode: each
 * watched descriptor has one IORING_OP_POLL_ADD in flight for its interest;
 * a turn is one io_uring_enter that submits every change queued since the
 * last turn and waits (no longer than the next timer, the timeout passed to
 * the same call) for completions, which are dispatched like epoll events.
 *
 * Why one-shot polls and not multishot: the connection code relies on level
 * triggering (one read per wake-up; a listener takes at most a batch of
 * clients per wake-up; reading resumes after a pause with data already
 * queued). A multishot poll only reports wake-ups of the socket's wait
 * queue (edge), and the kernel refuses IORING_POLL_ADD_LEVEL with it. A
 * one-shot poll checks readiness when armed (level), so the backend re-arms
 * it after each callback; the re-arm is an SQE in the next turn's batch, not
 * a system call.
 *
 * Lifetimes: a poll's user_data is a small token, not the ss__io, because a
 * completion can arrive after its ss__io is gone (a cancelled poll reports
 * -ECANCELED later; a listener is freed during a callback). Removing a watch
 * detaches the token (io NULL) and queues a POLL_REMOVE; the token is freed
 * when its poll's one completion arrives. Removals and updates report with
 * user_data 0, which is ignored.
 */
#include "loop_backend.h"

#ifdef SS_HAVE_URING

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define RING_ENTRIES 1024

typedef struct uring_state {
    struct io_uring ring;
    bool live;      /* the ring exists: made by the loop's first turn */
    ss__link polls; /* every token not yet freed: the ring's close frees the rest */
} uring_state;

static bool ring_live(ss_loop *loop)
{
    return ((uring_state *)loop->be)->live;
}

typedef struct poll_token {
    ss__io *io; /* NULL: detached, freed at its completion */
    bool inflight;
    ss__link link;
} poll_token;

static poll_token *poll_new(ss_loop *loop, ss__io *io)
{
    poll_token *t = malloc(sizeof *t);
    if (t == NULL)
        return NULL;
    t->io = io;
    t->inflight = false;
    ss__link_insert_tail(&((uring_state *)loop->be)->polls, &t->link);
    return t;
}

static void poll_free(poll_token *t)
{
    ss__link_remove(&t->link);
    free(t);
}

static struct io_uring *ring_of(ss_loop *loop)
{
    return &((uring_state *)loop->be)->ring;
}

/* An SQE, submitting what is queued when the ring is full. */
static struct io_uring_sqe *sqe_get(ss_loop *loop)
{
    struct io_uring *ring = ring_of(loop);
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe == NULL) {
        (void)io_uring_submit(ring);
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

/* Set a ring up: 0 or a negative errno, the reason in err. */
static int ring_setup(struct io_uring *ring, ss_error *err)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    /* completions' task work runs at our next enter (we always enter once
     * a turn): no interrupt of the loop thread per completion */
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    int rc = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    if (rc == -EINVAL) { /* older kernel: without the hints */
        memset(&p, 0, sizeof p);
        rc = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    }
    if (rc < 0)
        return ss__fail(err, rc, "io_uring_setup: %s", ss_strerror(rc));
    /* the turn's timeout rides on the enter; completions are never lost */
    unsigned need = IORING_FEAT_EXT_ARG | IORING_FEAT_NODROP;
    if ((p.features & need) != need) {
        io_uring_queue_exit(ring);
        return ss__fail(err, -ENOSYS,
                        "io_uring: the kernel lacks IORING_FEAT_EXT_ARG or IORING_FEAT_NODROP");
    }
    return 0;
}

/*
 * Whether this process may use io_uring, asked once, on a thread of its own.
 * A ring ties the thread that sets it up to it: when the ring is freed the
 * kernel queues work on that thread, which interrupts whatever blocking call
 * it is in (EINTR). So no ring is ever set up on a caller's thread: the probe
 * runs on a short-lived thread, and each loop's ring is made by the loop's
 * own thread at its first turn.
 */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_rc;
static ss_error probe_err;

static void *probe_thread(void *arg)
{
    (void)arg;
    struct io_uring ring;
    probe_rc = ring_setup(&ring, &probe_err);
    if (probe_rc == 0)
        io_uring_queue_exit(&ring);
    return NULL;
}

static void probe(void)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, probe_thread, NULL);
    if (rc != 0) {
        probe_rc = ss__fail(&probe_err, -rc, "io_uring: cannot start its probe: %s",
                            ss_strerror(-rc));
        return;
    }
    pthread_join(t, NULL);
}

static int uring_open(ss_loop *loop, ss_error *err)
{
    pthread_once(&probe_once, probe);
    if (probe_rc < 0) {
        if (err != NULL)
            *err = probe_err;
        return probe_rc;
    }
    uring_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ss__fail(err, -ENOMEM, "cannot make an event loop: out of memory");
    ss__link_init(&st->polls);
    loop->be = st;
    return 0;
}

static void uring_close(ss_loop *loop)
{
    uring_state *st = loop->be;
    if (st == NULL)
        return;
    /* Polls still in flight end with the ring (every watch was removed by
     * now: ss_loop_free closed everything); their tokens go with it. */
    if (st->live)
        io_uring_queue_exit(&st->ring);
    while (!ss__link_empty(&st->polls))
        poll_free(SS__CONTAINER_OF(st->polls.next, poll_token, link));
    free(st);
    loop->be = NULL;
}

static int arm(ss_loop *loop, poll_token *t)
{
    if (!ring_live(loop))
        return 0; /* armed when the ring is made */
    struct io_uring_sqe *sqe = sqe_get(loop);
    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_poll_add(sqe, t->io->fd, t->io->events);
    io_uring_sqe_set_data(sqe, t);
    t->inflight = true;
    return 0;
}

static void queue_remove(ss_loop *loop, poll_token *t)
{
    struct io_uring_sqe *sqe = sqe_get(loop);
    if (sqe == NULL)
        return; /* the poll stays until it fires; its token is detached */
    io_uring_prep_poll_remove(sqe, (__u64)(uintptr_t)t);
    io_uring_sqe_set_data(sqe, NULL);
}

static int uring_io_set(ss_loop *loop, ss__io *io, uint32_t events)
{
    poll_token *t = io->be;
    if (events == 0) {
        io->events = 0;
        if (t != NULL) {
            io->be = NULL;
            t->io = NULL;
            /* in flight: cancel it, freed at its completion; not yet armed
             * (no ring yet): free it; else we are inside its callback and
             * the dispatcher frees it */
            if (t->inflight)
                queue_remove(loop, t);
            else if (!ring_live(loop))
                poll_free(t);
        }
        return 0;
    }
    if (t == NULL) {
        t = poll_new(loop, io);
        if (t == NULL)
            return -ENOMEM;
        io->events = events;
        int rc = arm(loop, t);
        if (rc < 0) {
            io->events = 0;
            poll_free(t);
            return rc;
        }
        io->be = t;
        return 0;
    }
    io->events = events;
    if (t->inflight) {
        /* The poll in flight takes the new mask (and checks it at once);
         * if it completed meanwhile, the update misses and the re-arm
         * after its callback uses io->events. */
        struct io_uring_sqe *sqe = sqe_get(loop);
        if (sqe == NULL)
            return -EBUSY;
        io_uring_prep_poll_update(sqe, (__u64)(uintptr_t)t, (__u64)(uintptr_t)t, events,
                                  IORING_POLL_UPDATE_EVENTS);
        io_uring_sqe_set_data(sqe, NULL);
    }
    return 0;
}

static void uring_io_forget(ss_loop *loop, ss__io *io)
{
    (void)uring_io_set(loop, io, 0);
}

static void uring_flush(ss_loop *loop)
{
    if (ring_live(loop))
        (void)io_uring_submit(ring_of(loop));
}

/* The loop's first turn, on its thread: make the ring, arm every watch
 * registered before. */
static int ring_start(ss_loop *loop)
{
    uring_state *st = loop->be;
    ss_error err = {0};
    int rc = ring_setup(&st->ring, &err);
    if (rc < 0)
        return rc;
    st->live = true;
    for (ss__link *k = st->polls.next; k != &st->polls; k = k->next) {
        poll_token *t = SS__CONTAINER_OF(k, poll_token, link);
        if (t->io != NULL && (rc = arm(loop, t)) < 0)
            return rc;
    }
    return 0;
}

static void complete(ss_loop *loop, struct io_uring_cqe *cqe)
{
    poll_token *t = io_uring_cqe_get_data(cqe);
    if (t == NULL)
        return; /* a removal's or an update's own report */
    t->inflight = false; /* one-shot: this was its only completion */
    ss__io *io = t->io;
    if (io == NULL) {
        poll_free(t);
        return;
    }
    /* A failed poll (-EBADF...) is reported as an error on the descriptor. */
    uint32_t ev = cqe->res < 0 ? EPOLLERR : (uint32_t)cqe->res;
    ss__io_dispatch(loop, io, ev);
    if (t->io == NULL) /* removed during its callback */
        poll_free(t);
    else if (!t->inflight && arm(loop, t) < 0)
        t->io->events = 0; /* cannot happen with a submit on a full ring */
}

static int uring_wait(ss_loop *loop, int timeout_ms)
{
    struct io_uring *ring = ring_of(loop);
    struct io_uring_cqe *cqe = NULL;
    int rc;
    if (timeout_ms == 0) {
        rc = io_uring_submit(ring);
    } else if (timeout_ms < 0) {
        rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, NULL, NULL);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    loop->now = ss__now_ms();
    /* Each completion is consumed before its callback runs: a callback may
     * submit (a full ring), and the kernel may then post more; those wait
     * for the next turn, so a turn is bounded. */
    for (unsigned left = io_uring_cq_ready(ring); left > 0 && io_uring_peek_cqe(ring, &cqe) == 0;
         left--) {
        struct io_uring_cqe copy = *cqe;
        io_uring_cqe_seen(ring, cqe);
        complete(loop, &copy);
    }
    return 0;
}

const ss__backend_ops ss__backend_uring = {
    .kind = SS_BACKEND_IO_URING,
    .open = uring_open,
    .close = uring_close,
    .start = ring_start,
    .io_set = uring_io_set,
    .io_forget = uring_io_forget,
    .flush = uring_flush,
    .poll = uring_wait,
};

#else /* built without liburing: the backend is refused, auto takes epoll */

#include <errno.h>

static int uring_open(ss_loop *loop, ss_error *err)
{
    (void)loop;
    return ss__fail(err, -ENOSYS, "this build has no io_uring backend (liburing was not found)");
}

const ss__backend_ops ss__backend_uring = {
    .kind = SS_BACKEND_IO_URING,
    .open = uring_open,
};

#endif
