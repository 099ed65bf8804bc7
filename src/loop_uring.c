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
 * EPOLLET in a watch's interest asks for an edge instead, a multishot poll:
 * readiness there when it is armed, then each wake-up of the socket's wait
 * queue. It is there for what a level poll cannot wait through: the kernel
 * adds EPOLLRDHUP (with EPOLLERR and EPOLLHUP) to every poll's mask, so on a
 * socket whose peer has sent its FIN a one-shot poll for POLLOUT completes
 * at once, every time it is armed (coro_sched.c's writer blocked on a
 * half-closed peer). Turning EPOLLET on or off replaces the poll.
 *
 * Completion mode (the default; SS_URING_MODE=readiness turns it off): plain
 * stream connections read and write through the ring instead (ss__op,
 * event_internal.h): one IORING_OP_RECV with IOSQE_BUFFER_SELECT in flight
 * per reading connection, into a provided buffer ring the kernel picks from
 * only when data is there (an idle connection holds no buffer), and sends
 * as IORING_OP_SEND / SENDMSG with MSG_DONTWAIT (a full socket answers
 * -EAGAIN; the connection then polls for POLLOUT itself). A receive that
 * finds the ring empty (-ENOBUFS) is parked and submitted again after the
 * turn's completions, which have given their buffers back: it retries
 * without dying or spinning. An op's user_data is its address with the low
 * bit set (a poll token's is even); its memory is its owner's until the
 * callback, which comes once per submission (-ECANCELED after a cancel).
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
#include <sys/mman.h>

#define RING_ENTRIES 1024
/*
 * The provided buffers: two fixed pools per loop, faulted in when the ring
 * is made (so traffic never grows the footprint), 2 MiB each.
 *
 * Why two: a receive takes a whole buffer, however little it brings, so
 * many small buffers serve many chatty connections (1000 ready at once
 * take 1000 buffers in one turn); but a bulk stream cut into 8 KiB pieces
 * pays a completion, a copy and a send (an skb the peer must take) per
 * piece, 3x the CPU per byte of one 64 KiB read (measured: S5, 16 KiB
 * messages). So a receive goes to the bulk pool when the previous one
 * filled its small buffer (more was queued), and back to the small pool
 * when one brings less than a small buffer. One pool of big buffers would
 * be worse both ways: fewer buffers run dry under many connections, and
 * more of them (256 x 64 KiB) cycle 16 MiB through the cache.
 */
enum { GROUP_SMALL, GROUP_BULK, GROUPS };
#define SMALL_BUFFERS_DEFAULT 256
#define SMALL_SIZE (8 * 1024)
#define BULK_SIZE (64 * 1024)
#define BULK_PER_SMALL 8 /* bulk buffers: one per 8 small ones (same bytes) */

typedef struct buf_pool {
    struct io_uring_buf_ring *br;
    size_t br_len;
    unsigned char *bufs;
    unsigned n;    /* a power of two */
    unsigned size; /* bytes per buffer */
} buf_pool;

enum { OP_NOWHERE, OP_KERNEL, OP_WAITING, OP_DONE };

typedef struct uring_state {
    struct io_uring ring;
    bool live;      /* the ring exists: made by the loop's first turn */
    ss__link polls; /* every token not yet freed: the ring's close frees the rest */
    /* completion mode */
    ss__link ops_kernel;  /* submitted ss__ops */
    ss__link ops_waiting; /* not submitted yet: before the ring, or -ENOBUFS */
    ss__link ops_done;    /* cancelled while waiting: called back next dispatch */
    buf_pool pool[GROUPS]; /* indexed by buffer group id */
    ss__uring_stats stats;
} uring_state;

static bool ring_live(ss_loop *loop)
{
    return ((uring_state *)loop->be)->live;
}

typedef struct poll_token {
    ss__io *io; /* NULL: detached, freed at its completion */
    bool inflight;
    bool multishot; /* armed for EPOLLET: completions with IORING_CQE_F_MORE */
    ss__link link;
} poll_token;

static poll_token *poll_new(ss_loop *loop, ss__io *io)
{
    poll_token *t = malloc(sizeof *t);
    if (t == NULL)
        return NULL;
    t->io = io;
    t->inflight = false;
    t->multishot = false;
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
    /* Completions' task work runs at our next enter (we always enter once
     * a turn), not as an interrupt of the loop thread per completion: with
     * DEFER_TASKRUN (6.1+; only the loop's thread submits, SINGLE_ISSUER)
     * it runs inside that enter, else COOP_TASKRUN (5.19+). Older kernels
     * refuse the flags they do not know (-EINVAL): try fewer. */
    static const unsigned tries[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
            IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
        0,
    };
    struct io_uring_params p;
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0] && rc == -EINVAL; i++) {
        memset(&p, 0, sizeof p);
        p.flags = tries[i];
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
static bool probe_buf_ring; /* provided buffer rings work (5.19+) */

/* Register a ring of `n` provided buffers descriptors (liburing 2.3 has no
 * io_uring_setup_buf_ring: this is what it does). */
static struct io_uring_buf_ring *buf_ring_register(struct io_uring *ring, unsigned n,
                                                   unsigned short bgid, size_t *len, int *rc)
{
    size_t page = 4096;
    *len = (n * sizeof(struct io_uring_buf) + page - 1) / page * page;
    void *mem = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        *rc = -ENOMEM;
        return NULL;
    }
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)mem, .ring_entries = n,
                                   .bgid = bgid};
    *rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (*rc < 0) {
        munmap(mem, *len);
        return NULL;
    }
    io_uring_buf_ring_init(mem);
    return mem;
}

static void *probe_thread(void *arg)
{
    (void)arg;
    struct io_uring ring;
    probe_rc = ring_setup(&ring, &probe_err);
    if (probe_rc == 0) {
        size_t len;
        int rc;
        struct io_uring_buf_ring *br = buf_ring_register(&ring, 1, GROUP_SMALL, &len, &rc);
        probe_buf_ring = br != NULL;
        io_uring_queue_exit(&ring);
        if (br != NULL)
            munmap(br, len);
    }
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
    ss__link_init(&st->ops_kernel);
    ss__link_init(&st->ops_waiting);
    ss__link_init(&st->ops_done);
    const char *mode = getenv("SS_URING_MODE");
    loop->completion = probe_buf_ring && !(mode != NULL && strcmp(mode, "readiness") == 0);
    /* SS_URING_BUFFERS: the small pool's size (a power of two; the bulk
     * pool has an eighth, at least one), for tests that run them dry */
    unsigned nsmall = SMALL_BUFFERS_DEFAULT;
    const char *nb = getenv("SS_URING_BUFFERS");
    if (nb != NULL && atoi(nb) > 0) {
        unsigned want = (unsigned)atoi(nb);
        nsmall = 1;
        while (nsmall < want && nsmall < 32768)
            nsmall *= 2;
    }
    st->pool[GROUP_SMALL].n = nsmall;
    st->pool[GROUP_SMALL].size = SMALL_SIZE;
    st->pool[GROUP_BULK].n = nsmall >= BULK_PER_SMALL ? nsmall / BULK_PER_SMALL : 1;
    st->pool[GROUP_BULK].size = BULK_SIZE;
    loop->be = st;
    return 0;
}

/* Every op the ring or our lists still hold ends with -ECANCELED: its owner
 * frees what it kept for it. After the ring is gone (no kernel reference). */
static void ops_abandon(ss_loop *loop, ss__link *list)
{
    while (!ss__link_empty(list)) {
        ss__op *op = SS__CONTAINER_OF(list->next, ss__op, link);
        ss__link_remove(&op->link);
        op->where = OP_NOWHERE;
        op->cb(loop, op, -ECANCELED, NULL);
    }
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
    ops_abandon(loop, &st->ops_kernel);
    ops_abandon(loop, &st->ops_waiting);
    ops_abandon(loop, &st->ops_done);
    for (int g = 0; g < GROUPS; g++) {
        buf_pool *p = &st->pool[g];
        if (p->br != NULL)
            munmap(p->br, p->br_len);
        if (p->bufs != NULL)
            munmap(p->bufs, (size_t)p->n * p->size);
    }
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
    uint32_t events = t->io->events;
    t->multishot = (events & EPOLLET) != 0;
    if (t->multishot)
        io_uring_prep_poll_multishot(sqe, t->io->fd, events & ~(uint32_t)EPOLLET);
    else
        io_uring_prep_poll_add(sqe, t->io->fd, events);
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
    if (((events ^ io->events) & EPOLLET) || (t->multishot && t->inflight)) {
        /* level to edge or back: another kind of poll; a multishot poll's
         * new mask, too (the kernel refuses POLL_UPDATE on it: -EINVAL) */
        (void)uring_io_set(loop, io, 0);
        return uring_io_set(loop, io, events);
    }
    io->events = events;
    if (t->inflight) {
        /* The poll in flight takes the new mask (and checks it at once);
         * if it completed meanwhile, the update misses and the re-arm
         * after its callback uses io->events. */
        struct io_uring_sqe *sqe = sqe_get(loop);
        if (sqe == NULL)
            return -EBUSY;
        io_uring_prep_poll_update(sqe, (__u64)(uintptr_t)t, (__u64)(uintptr_t)t,
                                  events & ~(uint32_t)EPOLLET, IORING_POLL_UPDATE_EVENTS);
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

/* ---- completion mode: receives and sends as ops ------------------------ */

static void op_place(ss__link *list, ss__op *op, unsigned char where)
{
    ss__link_insert_tail(list, &op->link);
    op->where = where;
}

static void uring_op_submit(ss_loop *loop, ss__op *op)
{
    uring_state *st = loop->be;
    op->cancelled = false;
    struct io_uring_sqe *sqe = st->live ? sqe_get(loop) : NULL;
    if (sqe == NULL) { /* no ring yet: submitted when it is made */
        op_place(&st->ops_waiting, op, OP_WAITING);
        return;
    }
    if (op->kind == SS__OP_RECV) {
        io_uring_prep_recv(sqe, op->fd, NULL, st->pool[op->group].size, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = op->group;
        st->stats.recvs++;
        if (op->group == GROUP_BULK)
            st->stats.bulk_recvs++;
    } else {
        /* MSG_DONTWAIT: a full socket completes with -EAGAIN at once
         * instead of parking the send in the kernel (the connection polls
         * for POLLOUT, its write timeout runs, nothing waits unseen). */
        int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
        if (op->msg->msg_iovlen == 1)
            io_uring_prep_send(sqe, op->fd, op->msg->msg_iov[0].iov_base,
                               op->msg->msg_iov[0].iov_len, flags);
        else
            io_uring_prep_sendmsg(sqe, op->fd, op->msg, (unsigned)flags);
        st->stats.sends++;
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | 1);
    op_place(&st->ops_kernel, op, OP_KERNEL);
}

static void uring_op_cancel(ss_loop *loop, ss__op *op)
{
    uring_state *st = loop->be;
    if (op->where == OP_WAITING) {
        ss__link_remove(&op->link);
        op_place(&st->ops_done, op, OP_DONE);
        return;
    }
    if (op->where != OP_KERNEL || op->cancelled)
        return;
    struct io_uring_sqe *sqe = sqe_get(loop);
    if (sqe == NULL)
        return; /* it ends on its own, or with the ring */
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op | 1, 0);
    io_uring_sqe_set_data64(sqe, 0);
    op->cancelled = true;
}

static unsigned char *buffer_at(const buf_pool *p, unsigned bid)
{
    return p->bufs + (size_t)bid * p->size;
}

static void buffer_return(uring_state *st, buf_pool *p, unsigned bid)
{
    io_uring_buf_ring_add(p->br, buffer_at(p, bid), p->size, (unsigned short)bid,
                          io_uring_buf_ring_mask(p->n), 0);
    io_uring_buf_ring_advance(p->br, 1);
    st->stats.buffers_returned++;
}

static void op_complete(ss_loop *loop, ss__op *op, int res, unsigned flags)
{
    uring_state *st = loop->be;
    ss__link_remove(&op->link);
    op->where = OP_NOWHERE;
    bool has_buf = (flags & IORING_CQE_F_BUFFER) != 0;
    unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
    buf_pool *pool = &st->pool[op->group];
    const void *data = NULL;
    if (has_buf) {
        st->stats.buffers_used++;
        data = buffer_at(pool, bid);
    }
    if (res == -ENOBUFS && op->cancelled)
        res = -ECANCELED;
    if (op->kind == SS__OP_RECV) {
        /* the next receive's pool (the top of the file): bulk after one
         * that filled a small buffer, small after one that brought less;
         * a dry bulk pool sends it to the small one */
        if (res == -ENOBUFS)
            op->group = GROUP_SMALL;
        else if (res >= 0)
            op->group = res >= SMALL_SIZE ? GROUP_BULK : GROUP_SMALL;
    }
    if (res == -ENOBUFS) {
        /* the pool ran dry: try again once this turn's completions gave
         * their buffers back (ops_retry) */
        st->stats.enobufs++;
        op_place(&st->ops_waiting, op, OP_WAITING);
    } else {
        op->cb(loop, op, res, data); /* may free op */
    }
    if (has_buf) /* also a cancelled receive's: back to its pool */
        buffer_return(st, pool, bid);
}

/* Move every element of `from` to the empty head `to`. */
static void link_take(ss__link *to, ss__link *from)
{
    ss__link_init(to);
    if (ss__link_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    ss__link_init(from);
}

/* After a batch: the cancelled waiting ops hear of it, and the waiting
 * ones (parked on -ENOBUFS) go to the ring again; taken as lists first, so
 * one that parks again waits for the next turn. */
static void ops_retry(ss_loop *loop)
{
    uring_state *st = loop->be;
    ss__link list;
    link_take(&list, &st->ops_done);
    ops_abandon(loop, &list);
    link_take(&list, &st->ops_waiting);
    while (!ss__link_empty(&list)) {
        ss__op *op = SS__CONTAINER_OF(list.next, ss__op, link);
        ss__link_remove(&op->link);
        uring_op_submit(loop, op);
    }
}

static void uring_stats(const ss_loop *loop, ss__uring_stats *out)
{
    const uring_state *st = loop->be;
    *out = st->stats;
    out->buffers = st->pool[GROUP_SMALL].br != NULL ? st->pool[GROUP_SMALL].n : 0;
    out->bulk_buffers = st->pool[GROUP_BULK].br != NULL ? st->pool[GROUP_BULK].n : 0;
    out->recvs_armed = 0;
    for (const ss__link *k = st->ops_kernel.next; k != &st->ops_kernel; k = k->next)
        if (SS__CONTAINER_OF(k, ss__op, link)->kind == SS__OP_RECV)
            out->recvs_armed++;
}

/* A pool of provided buffers, every one in its ring. */
static int pool_start(struct io_uring *ring, buf_pool *p, unsigned short bgid)
{
    int rc;
    p->br = buf_ring_register(ring, p->n, bgid, &p->br_len, &rc);
    if (p->br == NULL)
        return rc;
    size_t len = (size_t)p->n * p->size;
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                     -1, 0);
    if (mem == MAP_FAILED)
        return -ENOMEM;
    p->bufs = mem;
    for (unsigned i = 0; i < p->n; i++)
        io_uring_buf_ring_add(p->br, buffer_at(p, i), p->size, (unsigned short)i,
                              io_uring_buf_ring_mask(p->n), (int)i);
    io_uring_buf_ring_advance(p->br, (int)p->n);
    return 0;
}

static int buffers_start(uring_state *st)
{
    int rc = 0;
    for (int g = 0; g < GROUPS && rc == 0; g++)
        rc = pool_start(&st->ring, &st->pool[g], (unsigned short)g);
    return rc;
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
    if (loop->completion && (rc = buffers_start(st)) < 0)
        return rc;
    for (ss__link *k = st->polls.next; k != &st->polls; k = k->next) {
        poll_token *t = SS__CONTAINER_OF(k, poll_token, link);
        if (t->io != NULL && (rc = arm(loop, t)) < 0)
            return rc;
    }
    ops_retry(loop); /* ops asked for before the ring existed */
    return 0;
}

static void complete(ss_loop *loop, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    if (ud & 1) {
        op_complete(loop, (ss__op *)(uintptr_t)(ud & ~(uint64_t)1), cqe->res, cqe->flags);
        return;
    }
    poll_token *t = (poll_token *)(uintptr_t)ud;
    if (t == NULL)
        return; /* a removal's, an update's or a cancel's own report */
    /* one-shot: this was its only completion; multishot: the last one
     * has no F_MORE (removed, or ended by the kernel: armed again below) */
    bool more = t->multishot && (cqe->flags & IORING_CQE_F_MORE) != 0;
    t->inflight = more;
    ss__io *io = t->io;
    if (io == NULL) {
        if (!more)
            poll_free(t);
        return;
    }
    /* A failed poll (-EBADF...) is reported as an error on the descriptor. */
    uint32_t ev = cqe->res < 0 ? EPOLLERR : (uint32_t)cqe->res;
    ss__io_dispatch(loop, io, ev);
    if (t->io == NULL) { /* removed during its callback */
        if (!more)
            poll_free(t);
    } else if (!t->inflight && arm(loop, t) < 0)
        t->io->events = 0; /* cannot happen with a submit on a full ring */
}

static int uring_wait(ss_loop *loop, int timeout_ms)
{
    struct io_uring *ring = ring_of(loop);
    struct io_uring_cqe *cqe = NULL;
    int rc;
    if (timeout_ms == 0) {
        /* with DEFER_TASKRUN completions are posted only by an enter that
         * asks for events */
        rc = io_uring_submit_and_get_events(ring);
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
        /* the next report's poll token, while this one's callback runs
         * (as loop_epoll.c prefetches the next ss__io) */
        struct io_uring_cqe *next;
        if (left > 1 && io_uring_peek_cqe(ring, &next) == 0 && !(next->user_data & 1))
            __builtin_prefetch((const void *)(uintptr_t)next->user_data);
        complete(loop, &copy);
    }
    ops_retry(loop);
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
    .op_submit = uring_op_submit,
    .op_cancel = uring_op_cancel,
    .stats = uring_stats,
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
