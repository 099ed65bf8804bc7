/* SPDX-License-Identifier: MIT */
/*
 * event_conn.c — stream connections on a loop: the listener (accept in
 * batches, connection cap, EMFILE pause) and the connection (read into the
 * loop's buffer, write straight through or queue, backpressure, half-close,
 * idle timeout).
 *
 * Memory: an idle connection is one ss_conn (~250 bytes) and its kernel
 * socket. It has no read buffer (reads land in the loop's buffer) and no
 * output queue until a write finds the socket full.
 *
 * Idle timeouts cost O(1) per read: each listener keeps its connections in
 * a list ordered by last activity (touched ones move to the tail) and one
 * timer that fires when the head would expire. Write timeouts work the same
 * way on a second list, of the connections whose output queue is not empty,
 * ordered by their last write progress: a peer that stops reading is cut
 * even when no idle timeout is set, and even while it keeps sending (its
 * reads are paused by backpressure, but its kernel buffers fill first).
 *
 * TLS (a listener with opts.tls): the connection's reads and writes go
 * through its ss_transport instead of recv/send; the handshake runs first,
 * non-blocking on the loop with a timer of its own, and on_open follows it,
 * so a handler only ever sees connections that finished their handshake. A
 * connection that fails it closes without on_open/on_close; the listener's
 * `unopened` hook hears of it (the server gives back its max_per_ip slot).
 *
 * Completion mode (io_uring, unless SS_URING_MODE=readiness): a plain
 * stream connection (no TLS, no PROXY header, not seqpacket) does not wait
 * for readiness. It keeps one receive in flight while it is reading (none
 * while paused, closing or over its high-water mark: backpressure holds),
 * into a buffer the ring provides only when data is there, and its output
 * queue is sent by send ops the turn's one io_uring_enter submits. A send
 * the socket cannot take (-EAGAIN) waits for POLLOUT on the connection's
 * own watch. The ops' memory (conn_cio) outlives the ss_conn: a closed
 * connection cancels them, and the last completion frees it, with any
 * chunk a send might still have named.
 *
 * With proxy_protocol a connection first reads its PROXY header (a step of
 * its own, below "the PROXY header"): it is admitted and opened only once
 * the header is in, and until then it is on the listener's header list,
 * in arrival order, under one timer for the header deadline.
 */
#include "event_internal.h"
#include "proxy_read.h"

#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#define ACCEPT_BATCH 64       /* accepts per wake-up: bound the work */
#define EMFILE_PAUSE_MS 100   /* listener rest when descriptors run out */
#define CHUNK_MIN (16 * 1024) /* output queue grows by at least this */
#define WRITEV_MAX 16
#define SEND_IOV_MAX 4        /* chunks one completion-mode send takes */
#define CHUNK_CACHE_MAX 32    /* CHUNK_MIN chunks a loop keeps for reuse */
/* Bulk writes (half a read buffer or more, up to one) get a chunk of a read
 * buffer's size, a few kept per loop too: a freed 64 KiB block is what
 * glibc trims and faults in again at the next write (measured: 2 % of the
 * server's time on S5 in completion mode, where every echo is queued). */
#define CHUNK_BULK SS__LOOP_READ_BUFFER
#define BULK_CACHE_MAX 8
#define HANDSHAKE_DEFAULT_MS 10000

enum {
    F_OPENED = 1 << 0,       /* on_open ran: on_close is due */
    F_CLOSED = 1 << 1,       /* descriptor closed, on_close pending/done */
    F_CLOSING = 1 << 2,      /* close once the queue is sent */
    F_SHUT_PENDING = 1 << 3, /* shutdown(SHUT_WR) once the queue is sent */
    F_SHUT_DONE = 1 << 4,
    F_EOF = 1 << 5, /* the peer shut down its writing side */
    F_PAUSED_USER = 1 << 6,
    F_PAUSED_BP = 1 << 7,    /* backpressure: over high_water */
    F_DRAIN_WANTED = 1 << 8, /* a write queued: on_drain when empty */
    F_SEQPACKET = 1 << 9,    /* keep message boundaries in the queue */
    F_INET = 1 << 10,
    F_HEADER = 1 << 11, /* reading the PROXY header: not opened yet */
    F_TLS_ADOPTED = 1 << 12, /* ss_loop_adopt_tls: a failed handshake is on_close */
};

/* A TLS connection's state, allocated only for TLS connections. */
typedef struct conn_tls {
    ss_transport t;
    ss_timer deadline; /* the handshake's */
    bool handshaking;
    bool read_wants_write; /* the last read needs the socket writable */
    bool shut_waiting;     /* ss_conn_shutdown's close_notify waits for room */
    char why[160];         /* why the handshake failed */
} conn_tls;

typedef struct chunk {
    struct chunk *next;
    size_t start, end, cap;
    unsigned char data[];
} chunk;

/* Bytes (or the end of file) a receive brought while the connection was not
 * reading (it paused while the receive was in flight): delivered once it
 * reads again, from a timer, never inside the call that resumed it. */
typedef struct conn_pending {
    ss_timer soon;
    bool eof;
    size_t len;
    unsigned char data[];
} conn_pending;

/* A completion-mode connection's ops (see the top of the file). */
typedef struct conn_cio {
    ss__op rx, tx;
    ss_conn *c; /* NULL: closed; freed when neither op is in flight */
    bool rx_busy, rx_cancelling, tx_busy;
    bool tx_blocked; /* the last send found the socket full: POLLOUT first */
    struct msghdr msg;
    struct iovec iov[SEND_IOV_MAX];
    chunk *keep; /* a closed connection's queue, while its send is in flight */
    conn_pending *pending;
} conn_cio;

struct ss_listener {
    ss__io io;
    ss_loop *loop;
    ss__link link; /* loop->listeners */
    const struct ss_event_handler *h;
    ss_addr_kind kind;
    int socktype;
    uint32_t want; /* EPOLLIN, | EPOLLEXCLUSIVE when shared */
    int max_conns;
    int nconns; /* open connections */
    int refs;   /* connections not yet freed */
    int64_t idle_ms;
    ss__link idle; /* connections, least recently active first */
    ss_timer idle_timer;
    int64_t write_ms;  /* write timeout; 0 = none */
    ss__link stalled;  /* connections with output queued, oldest progress first */
    ss_timer write_timer;
    ss_timer retry_timer;
    bool (*verify)(void *arg, int fd, const ss_addr *peer);
    void *verify_arg;
    void (*unopened)(void *arg, const ss_addr *peer, int reason, const char *why);
    ss_tls_ctx *tls;
    uint64_t handshake_ms;
    bool proxy;       /* connections begin with a PROXY header */
    int64_t proxy_ms; /* header deadline after arrival; 0 = none */
    ss__link headers; /* connections reading their header, oldest first */
    ss_timer header_timer;
    void (*proxy_refused)(void *arg, const ss_addr *peer, int reason, const char *why);
    ss_listener *(*pick)(void *arg, ss_listener *self);
    void (*unpick)(void *arg, ss_listener *l);
    void *pick_arg;
    bool paused_full, paused_emfile, held, closed;
};

struct ss_conn {
    ss__io io;
    ss_loop *loop;
    ss_listener *listener; /* NULL for adopted connections */
    const struct ss_event_handler *h;
    ss__link link; /* loop->conns */
    ss__link idle; /* listener->idle; listener->headers while F_HEADER */
    int64_t last_active;
    ss__link stalled;   /* listener->stalled while output is queued */
    int64_t write_since; /* last write progress while output is queued */
    void *user;
    chunk *qhead, *qtail;
    size_t queued;
    size_t high, low, hard;
    unsigned flags;
    int close_reason;
    ss__deferred deferred;
    ss_addr peer;
    conn_tls *tls; /* NULL: plain */
    conn_cio *cio; /* NULL: readiness (not the completion mode) */
    ss_proxy_parser *proxy; /* while F_HEADER */
    bool verified; /* verify passed: unopened() owes it an undo */
    int64_t opened_ms;            /* loop time at accept or adoption */
    uint64_t bytes_in, bytes_out; /* application bytes, for the log line at the end */
};

static void conn_io(ss_loop *loop, ss__io *io, uint32_t events);
static void listener_free(ss_listener *l);
static void listener_resume(ss_listener *l);
static void cio_interest(ss_conn *c);

/* ---- output chunks: a few kept per loop, so a send does not malloc ------ */

static chunk *chunk_new(ss_loop *loop, size_t cap)
{
    chunk *k = NULL;
    if (cap == CHUNK_MIN && loop->chunk_cache != NULL) {
        k = loop->chunk_cache;
        loop->chunk_cache = k->next;
        loop->nchunk_cache--;
    } else if (cap == CHUNK_BULK && loop->bulk_cache != NULL) {
        k = loop->bulk_cache;
        loop->bulk_cache = k->next;
        loop->nbulk_cache--;
    } else {
        k = malloc(sizeof *k + cap);
        if (k == NULL)
            return NULL;
    }
    k->next = NULL;
    k->start = k->end = 0;
    k->cap = cap;
    return k;
}

static void chunk_free(ss_loop *loop, chunk *k)
{
    if (k->cap == CHUNK_MIN && loop->nchunk_cache < CHUNK_CACHE_MAX) {
        k->next = loop->chunk_cache;
        loop->chunk_cache = k;
        loop->nchunk_cache++;
        return;
    }
    if (k->cap == CHUNK_BULK && loop->nbulk_cache < BULK_CACHE_MAX) {
        k->next = loop->bulk_cache;
        loop->bulk_cache = k;
        loop->nbulk_cache++;
        return;
    }
    free(k);
}

static void chunks_free(void **list)
{
    while (*list != NULL) {
        chunk *k = *list;
        *list = k->next;
        free(k);
    }
}

void ss__conns_free_cache(ss_loop *loop)
{
    chunks_free(&loop->chunk_cache);
    chunks_free(&loop->bulk_cache);
    loop->nchunk_cache = loop->nbulk_cache = 0;
}

/* ---- interest and activity ---------------------------------------------- */

static bool reading(const ss_conn *c)
{
    return !(c->flags & (F_CLOSED | F_CLOSING | F_EOF | F_PAUSED_USER | F_PAUSED_BP));
}

static void update_interest(ss_conn *c)
{
    if (c->flags & F_CLOSED)
        return;
    if (c->cio != NULL) {
        cio_interest(c);
        return;
    }
    uint32_t want = 0;
    if (c->tls != NULL && c->tls->handshaking) {
        short ev = c->tls->t.ops->wait_events(&c->tls->t, POLLIN);
        want = (ev & POLLOUT) ? EPOLLOUT : EPOLLIN;
        (void)ss__io_set(c->loop, &c->io, want);
        return;
    }
    if (reading(c))
        want |= EPOLLIN;
    if (c->queued > 0 || (c->tls != NULL && c->tls->read_wants_write && reading(c)) ||
        (c->tls != NULL && c->tls->shut_waiting))
        want |= EPOLLOUT;
    (void)ss__io_set(c->loop, &c->io, want); /* cannot fail for a live fd */
}

/* The output queue moved (or began, or emptied): keep the write-timeout
 * list in the order of last progress. */
static void write_progress(ss_conn *c)
{
    ss_listener *l = c->listener;
    if (l == NULL || l->write_ms <= 0)
        return;
    ss__link_remove(&c->stalled);
    if (c->queued == 0 || (c->flags & F_CLOSED))
        return;
    c->write_since = c->loop->now;
    ss__link_insert_tail(&l->stalled, &c->stalled);
    if (!ss_timer_active(&l->write_timer))
        (void)ss_timer_start(c->loop, &l->write_timer, (uint64_t)l->write_ms, 0);
}

static void touch(ss_conn *c)
{
    c->last_active = c->loop->now;
    if (c->listener != NULL && c->listener->idle_ms > 0) {
        ss__link_remove(&c->idle);
        ss__link_insert_tail(&c->listener->idle, &c->idle);
    }
}

/* ---- closing ---------------------------------------------------------------- */

static void queue_free(ss_conn *c)
{
    chunk *k = c->qhead;
    while (k != NULL) {
        chunk *next = k->next;
        chunk_free(c->loop, k);
        k = next;
    }
    c->qhead = c->qtail = NULL;
    c->queued = 0;
}

static void conn_deferred_free(ss__deferred *d)
{
    ss_conn *c = SS__CONTAINER_OF(d, ss_conn, deferred);
    ss_listener *l = c->listener;
    if ((c->flags & (F_OPENED | F_TLS_ADOPTED)) && c->h->on_close != NULL)
        c->h->on_close(c, c->close_reason);
    else if (!(c->flags & F_OPENED) && l != NULL) {
        /* never opened: its header or its TLS handshake failed */
        if (c->verified && l->unopened != NULL)
            l->unopened(l->verify_arg, &c->peer, c->close_reason,
                        c->tls != NULL && c->tls->why[0] ? c->tls->why
                                                         : ss_strerror(c->close_reason));
        if (l->unpick != NULL)
            l->unpick(l->pick_arg, l);
    }
    free(c->tls);
    free(c->proxy);
    free(c);
    if (l != NULL && --l->refs == 0 && l->closed && l->pick == NULL)
        listener_free(l);
}

/* The ops outlive the connection: cancel them; the last completion frees
 * what they may still name. */
static void cio_release(conn_cio *io)
{
    if (io->c != NULL || io->rx_busy || io->tx_busy)
        return;
    while (io->keep != NULL) {
        chunk *next = io->keep->next;
        free(io->keep);
        io->keep = next;
    }
    free(io);
}

static void cio_detach(ss_conn *c)
{
    conn_cio *io = c->cio;
    c->cio = NULL;
    io->c = NULL;
    if (io->pending != NULL) {
        ss_timer_stop(&io->pending->soon);
        free(io->pending);
        io->pending = NULL;
    }
    if (io->rx_busy && !io->rx_cancelling)
        ss__op_cancel(c->loop, &io->rx);
    if (io->tx_busy) {
        /* the kernel may still read the chunks it was given */
        ss__op_cancel(c->loop, &io->tx);
        io->keep = c->qhead;
        c->qhead = c->qtail = NULL;
        c->queued = 0;
    }
    /* An op prepared this turn names the descriptor by number: hand it to
     * the kernel before the number is closed and maybe reused by the next
     * accept (a receive or a send on another client's socket). */
    if (io->rx_busy || io->tx_busy)
        ss__loop_flush(c->loop);
    cio_release(io);
}

/* Close the descriptor now; on_close and the free happen at the end of the
 * turn, so the ss_conn stays valid for the rest of the caller's callback. */
static void conn_finish(ss_conn *c, int reason, bool reset)
{
    if (c->flags & F_CLOSED)
        return;
    c->flags |= F_CLOSED;
    c->close_reason = reason;
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(c->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    if (c->tls != NULL) {
        ss_timer_stop(&c->tls->deadline);
        /* close_notify on a clean close (one try, never waits) */
        if (!reset && reason == 0 && !c->tls->handshaking && !(c->flags & F_SHUT_DONE))
            (void)c->tls->t.ops->shutdown_write(&c->tls->t);
        ss_tls_transport_release(&c->tls->t); /* frees the SSL; the fd is ours */
    }
    if (c->cio != NULL)
        cio_detach(c);
    /* events already fetched for this connection in the current batch are
     * skipped: its io is unregistered */
    ss__io_close(c->loop, &c->io);
    queue_free(c);
    ss__link_remove(&c->link);
    ss__link_remove(&c->idle);
    ss__link_remove(&c->stalled);
    c->loop->nconns--;
    ss_listener *l = c->listener;
    if (l != NULL)
        l->nconns--;
    ss__loop_defer(c->loop, &c->deferred);
    ss__loop_conn_closed(c->loop);
}

void ss_conn_abort(ss_conn *c, bool reset)
{
    conn_finish(c, 0, reset);
}

static void conn_fail(ss_conn *c, int reason)
{
    conn_finish(c, reason, false);
}

void ss_conn_close(ss_conn *c)
{
    if (c->flags & (F_CLOSED | F_CLOSING))
        return;
    c->flags |= F_CLOSING;
    if (c->queued == 0)
        conn_finish(c, 0, false);
    else
        update_interest(c);
}

/* Send the close_notify, then half-close. The queue being empty does not
 * mean the socket has room: the last record may have filled it. Then the
 * alert waits for POLLOUT (update_interest, conn_io), or the peer would
 * never see the end. */
static void tls_shutdown_step(ss_conn *c)
{
    int rc = c->tls->t.ops->shutdown_write(&c->tls->t);
    c->tls->shut_waiting = rc == -EAGAIN;
    if (rc < 0 && rc != -EAGAIN && rc != -ENOTCONN) {
        conn_fail(c, rc);
        return;
    }
    update_interest(c);
}

void ss_conn_shutdown(ss_conn *c)
{
    if (c->flags & (F_CLOSED | F_CLOSING | F_SHUT_PENDING | F_SHUT_DONE))
        return;
    if (c->queued > 0) {
        c->flags |= F_SHUT_PENDING;
        return;
    }
    c->flags |= F_SHUT_DONE;
    if (c->tls != NULL) { /* close_notify, then the socket's half-close */
        tls_shutdown_step(c);
        return;
    }
    if (shutdown(c->io.fd, SHUT_WR) < 0 && errno != ENOTCONN)
        conn_fail(c, -errno);
}

/* ---- writing -------------------------------------------------------------- */

static int enqueue(ss_conn *c, const unsigned char *buf, size_t len)
{
    chunk *t = c->qtail;
    if (!(c->flags & F_SEQPACKET) && t != NULL && t->cap - t->end >= len) {
        memcpy(t->data + t->end, buf, len);
        t->end += len;
    } else {
        size_t cap = len; /* a seqpacket message, or a big write, as it is */
        bool stream = !(c->flags & F_SEQPACKET);
        if (stream && len <= CHUNK_MIN)
            cap = CHUNK_MIN;
        else if (stream && len >= CHUNK_BULK / 2 && len <= CHUNK_BULK)
            cap = CHUNK_BULK;
        chunk *k = chunk_new(c->loop, cap);
        if (k == NULL)
            return -ENOMEM;
        k->end = len;
        memcpy(k->data, buf, len);
        if (t != NULL)
            t->next = k;
        else
            c->qhead = k;
        c->qtail = k;
    }
    c->queued += len;
    return 0;
}

static void queue_consume(ss_conn *c, size_t n);
static void queue_settled(ss_conn *c);

/* Write what the socket takes; returns 0, or a code after closing. */
static int flush_queue(ss_conn *c)
{
    while (c->qhead != NULL) {
        ssize_t n;
        if (c->tls != NULL) {
            /* one record's worth at a time: TLS has no writev */
            chunk *k = c->qhead;
            n = c->tls->t.ops->write(&c->tls->t, k->data + k->start, k->end - k->start);
            if (n == -EAGAIN)
                break;
            if (n < 0) {
                conn_fail(c, (int)n);
                return (int)n;
            }
        } else if (c->flags & F_SEQPACKET) {
            chunk *k = c->qhead;
            n = send(c->io.fd, k->data + k->start, k->end - k->start, MSG_NOSIGNAL);
        } else {
            struct iovec iov[WRITEV_MAX];
            int cnt = 0;
            for (chunk *k = c->qhead; k != NULL && cnt < WRITEV_MAX; k = k->next) {
                iov[cnt].iov_base = k->data + k->start;
                iov[cnt].iov_len = k->end - k->start;
                cnt++;
            }
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
            n = sendmsg(c->io.fd, &msg, MSG_NOSIGNAL);
        }
        if (n < 0 && c->tls == NULL) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            int rc = -errno;
            conn_fail(c, rc);
            return rc;
        }
        queue_consume(c, (size_t)n);
    }
    queue_settled(c);
    return 0;
}

/* `n` bytes of the queue's head went out. */
static void queue_consume(ss_conn *c, size_t n)
{
    c->queued -= n;
    c->bytes_out += (uint64_t)n;
    while (n > 0) {
        chunk *k = c->qhead;
        size_t have = k->end - k->start;
        size_t used = n < have ? n : have;
        k->start += used;
        n -= used;
        if (k->start == k->end) {
            c->qhead = k->next;
            if (c->qhead == NULL)
                c->qtail = NULL;
            chunk_free(c->loop, k);
        }
    }
    touch(c);
    write_progress(c);
}

/* After the queue moved: backpressure, and what waited for it to empty
 * (close, half-close, on_drain). The connection may be closed after. */
static void queue_settled(ss_conn *c)
{
    if ((c->flags & F_PAUSED_BP) && c->queued <= c->low)
        c->flags &= ~F_PAUSED_BP;
    if (c->queued == 0) {
        if (c->flags & F_CLOSING) {
            conn_finish(c, 0, false);
            return;
        }
        if (c->flags & F_SHUT_PENDING) {
            c->flags &= ~F_SHUT_PENDING;
            ss_conn_shutdown(c);
            if (c->flags & F_CLOSED)
                return;
        }
        if (c->flags & F_DRAIN_WANTED) {
            c->flags &= ~F_DRAIN_WANTED;
            if (c->h->on_drain != NULL)
                c->h->on_drain(c);
            if (c->flags & F_CLOSED)
                return;
        }
    }
    update_interest(c);
}

void ss__conn_counts(const ss_conn *c, uint64_t *in, uint64_t *out, int64_t *age_ms)
{
    *in = c->bytes_in;
    *out = c->bytes_out;
    *age_ms = c->loop->now - c->opened_ms;
}

/* Completion mode: queue (copied into a reused chunk); the send goes with
 * the turn's enter. */
static int cio_write(ss_conn *c, const unsigned char *p, size_t len)
{
    if (c->queued + len > c->hard) {
        conn_fail(c, SS_EBUSY);
        return SS_EBUSY;
    }
    bool started = c->queued == 0; /* the queue's clock starts */
    if (!started)
        c->flags |= F_DRAIN_WANTED; /* it waits behind a send in flight */
    if (enqueue(c, p, len) < 0) {
        conn_fail(c, -ENOMEM);
        return -ENOMEM;
    }
    if (c->queued > c->high)
        c->flags |= F_PAUSED_BP;
    if (started)
        write_progress(c);
    update_interest(c);
    return 0;
}

int ss_conn_write(ss_conn *c, const void *buf, size_t len)
{
    if (c->flags & (F_CLOSED | F_CLOSING | F_SHUT_PENDING | F_SHUT_DONE))
        return SS_ECLOSED;
    if (len == 0)
        return 0;
    const unsigned char *p = buf;
    if (c->cio != NULL && !(c->queued == 0 && len > c->high))
        return cio_write(c, p, len);
    if (c->queued == 0) {
        /* The fast path: straight to the socket, nothing copied (in the
         * completion mode only for a write over high_water, which would
         * otherwise all count against hard_limit at once). */
        ssize_t n;
        if (c->tls != NULL) {
            n = 0;
            while ((size_t)n < len) { /* a record at a time */
                ssize_t w = c->tls->t.ops->write(&c->tls->t, p + n, len - (size_t)n);
                if (w == -EAGAIN)
                    break;
                if (w < 0) {
                    conn_fail(c, (int)w);
                    return (int)w;
                }
                n += w;
            }
        } else {
            n = send(c->io.fd, p, len, MSG_NOSIGNAL);
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                int rc = -errno;
                conn_fail(c, rc);
                return rc;
            }
            n = 0;
        }
        c->bytes_out += (uint64_t)n;
        if ((size_t)n == len)
            return 0;
        p += n;
        len -= (size_t)n;
    }
    if (c->queued + len > c->hard) {
        conn_fail(c, SS_EBUSY);
        return SS_EBUSY;
    }
    if (enqueue(c, p, len) < 0) {
        conn_fail(c, -ENOMEM);
        return -ENOMEM;
    }
    bool started = c->queued == len; /* the queue was empty: its clock starts */
    c->flags |= F_DRAIN_WANTED;
    if (c->queued > c->high)
        c->flags |= F_PAUSED_BP;
    if (started)
        write_progress(c);
    update_interest(c);
    return 0;
}

/* ---- reading ---------------------------------------------------------------- */

/* A read brought n bytes (0: the peer's end of file). */
static void conn_got(ss_conn *c, const unsigned char *data, size_t n)
{
    if (n > 0) {
        touch(c);
        c->bytes_in += (uint64_t)n;
        if (c->h->on_data != NULL)
            c->h->on_data(c, data, n);
        return;
    }
    c->flags |= F_EOF;
    update_interest(c);
    if (c->h->on_eof != NULL)
        c->h->on_eof(c);
    else
        ss_conn_close(c);
}

/* ---- the completion mode's ops ------------------------------------------------ */

static void tx_start(ss_conn *c)
{
    conn_cio *io = c->cio;
    if (io->tx_busy || io->tx_blocked || c->qhead == NULL)
        return;
    int cnt = 0;
    for (chunk *k = c->qhead; k != NULL && cnt < SEND_IOV_MAX; k = k->next, cnt++) {
        io->iov[cnt].iov_base = k->data + k->start;
        io->iov[cnt].iov_len = k->end - k->start;
    }
    memset(&io->msg, 0, sizeof io->msg);
    io->msg.msg_iov = io->iov;
    io->msg.msg_iovlen = (size_t)cnt;
    io->tx_busy = true;
    ss__op_send(c->loop, &io->tx, c->io.fd, &io->msg);
}

/* What the connection's state asks of its ops: a receive in flight while
 * it reads (none while paused, closing or over high water), its queue being
 * sent, POLLOUT while a send waits for room. */
static void cio_interest(ss_conn *c)
{
    conn_cio *io = c->cio;
    if (reading(c)) {
        if (io->pending != NULL) {
            if (!ss_timer_active(&io->pending->soon))
                (void)ss_timer_start(c->loop, &io->pending->soon, 0, 0);
        } else if (!io->rx_busy) {
            io->rx_busy = true;
            ss__op_recv(c->loop, &io->rx, c->io.fd);
        }
    } else if (io->rx_busy && !io->rx_cancelling) {
        io->rx_cancelling = true;
        ss__op_cancel(c->loop, &io->rx);
    }
    tx_start(c);
    (void)ss__io_set(c->loop, &c->io, io->tx_blocked ? EPOLLOUT : 0);
}

static void on_pending(ss_timer *t)
{
    ss_conn *c = t->data;
    conn_pending *p = c->cio->pending;
    if (!reading(c))
        return; /* paused again: the next resume delivers it */
    c->cio->pending = NULL;
    conn_got(c, p->data, p->eof ? 0 : p->len);
    free(p);
    update_interest(c);
}

static void rx_done(ss_loop *loop, ss__op *op, int res, const void *data)
{
    (void)loop;
    conn_cio *io = SS__CONTAINER_OF(op, conn_cio, rx);
    io->rx_busy = io->rx_cancelling = false;
    ss_conn *c = io->c;
    if (c == NULL) { /* closed: the bytes are dropped, the buffer goes back */
        cio_release(io);
        return;
    }
    if (res >= 0 && reading(c)) {
        conn_got(c, data, (size_t)res);
    } else if (res >= 0 && !(c->flags & F_CLOSING)) {
        /* the receive won the race with a pause: keep what it brought */
        conn_pending *p = malloc(sizeof *p + (size_t)res);
        if (p == NULL) {
            conn_fail(c, -ENOMEM);
            return;
        }
        ss_timer_init(&p->soon, on_pending, c);
        p->eof = res == 0;
        p->len = (size_t)res;
        if (res > 0)
            memcpy(p->data, data, (size_t)res);
        io->pending = p;
    } else if (res < 0 && res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
        conn_fail(c, res);
        return;
    }
    update_interest(c); /* the next receive, if it still reads */
}

static void tx_done(ss_loop *loop, ss__op *op, int res, const void *data)
{
    (void)loop, (void)data;
    conn_cio *io = SS__CONTAINER_OF(op, conn_cio, tx);
    io->tx_busy = false;
    ss_conn *c = io->c;
    if (c == NULL) {
        cio_release(io);
        return;
    }
    if (res == -EAGAIN || res == -EWOULDBLOCK) {
        io->tx_blocked = true; /* cio_interest polls for POLLOUT */
        c->flags |= F_DRAIN_WANTED;
        update_interest(c);
        return;
    }
    if (res < 0 && res != -EINTR && res != -ECANCELED) {
        conn_fail(c, res);
        return;
    }
    if (res > 0)
        queue_consume(c, (size_t)res);
    if (c->queued > 0)
        c->flags |= F_DRAIN_WANTED; /* a short write: the rest waits */
    queue_settled(c); /* the next send, or what waited for the queue */
}

static void cio_start(ss_conn *c)
{
    c->cio->c = c;
    c->cio->rx.cb = rx_done;
    c->cio->tx.cb = tx_done;
    update_interest(c); /* its first receive */
}

static void conn_read(ss_conn *c)
{
    ssize_t n;
    if (c->tls != NULL) {
        n = c->tls->t.ops->read(&c->tls->t, c->loop->rbuf, SS__LOOP_READ_BUFFER);
        bool wants_write = n == -EAGAIN && (c->tls->t.ops->wait_events(&c->tls->t, POLLIN) &
                                            POLLOUT);
        if (wants_write != c->tls->read_wants_write) {
            c->tls->read_wants_write = wants_write;
            update_interest(c);
        }
        if (n == -EAGAIN)
            return;
        if (n < 0) {
            conn_fail(c, (int)n);
            return;
        }
    } else if (c->flags & F_SEQPACKET) {
        /* MSG_TRUNC: the kernel says a message's real length, so one longer
         * than the buffer fails the connection instead of arriving as its
         * first 64 KiB without a word (as transport_fd.c's message_read) */
        n = recv(c->io.fd, c->loop->rbuf, SS__LOOP_READ_BUFFER, MSG_TRUNC);
        if (n > SS__LOOP_READ_BUFFER) {
            conn_fail(c, -EMSGSIZE);
            return;
        }
    } else {
        n = recv(c->io.fd, c->loop->rbuf, SS__LOOP_READ_BUFFER, 0);
    }
    if (n >= 0) {
        conn_got(c, c->loop->rbuf, (size_t)n);
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
    conn_fail(c, -errno);
}

static void conn_opened(ss_conn *c);

/* One handshake step on readiness; on_open once it is done. */
static void tls_handshake_step(ss_conn *c)
{
    conn_tls *t = c->tls;
    ss_error err = {0};
    int rc = ss_tls_handshake_step(&t->t, &err);
    if (rc == -EAGAIN) {
        update_interest(c);
        return;
    }
    if (rc < 0) {
        snprintf(t->why, sizeof t->why, "%.150s", err.msg[0] ? err.msg : ss_strerror(rc));
        conn_fail(c, rc);
        return;
    }
    ss_timer_stop(&t->deadline);
    t->handshaking = false;
    touch(c);
    update_interest(c);
    conn_opened(c);
    /* data may have come with the client's Finished: it is in the SSL's
     * buffer or the socket, and epoll only says so for the socket */
    if (!(c->flags & F_CLOSED) && reading(c))
        conn_read(c);
}

static void on_handshake_timeout(ss_timer *timer)
{
    ss_conn *c = timer->data;
    snprintf(c->tls->why, sizeof c->tls->why, "TLS handshake timed out");
    conn_fail(c, SS_ETIMEOUT);
}

/* Start TLS on a connection: an accepted one of a TLS listener, or one
 * adopted with ss_loop_adopt_tls (`name`: a client's SNI). */
static int tls_start(ss_conn *c, ss_tls_ctx *ctx, const char *name, uint64_t ms)
{
    conn_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    int rc = ss_tls_transport_new(&t->t, ctx, c->io.fd, name, NULL);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->handshaking = true;
    c->tls = t;
    ss_timer_init(&t->deadline, on_handshake_timeout, c);
    return ss_timer_start(c->loop, &t->deadline, ms, 0);
}

static int tls_begin(ss_conn *c, ss_listener *l)
{
    return tls_start(c, l->tls, NULL, l->handshake_ms);
}

static void header_io(ss_conn *c);

static void conn_io(ss_loop *loop, ss__io *io, uint32_t events)
{
    (void)loop;
    ss_conn *c = (ss_conn *)io; /* io is the first member */
    if (c->cio != NULL) { /* its only watch: POLLOUT after a full socket */
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            c->cio->tx_blocked = false;
            update_interest(c); /* the send again: it meets any error */
        }
        return;
    }
    if (c->flags & F_HEADER) {
        header_io(c);
        return;
    }
    if (c->tls != NULL && c->tls->handshaking) {
        tls_handshake_step(c);
        return;
    }
    /* TLS: a write may wait for the socket to be readable (a key update),
     * a read for it to be writable; try both on either */
    uint32_t out_ready = c->tls != NULL ? (EPOLLOUT | EPOLLIN) : EPOLLOUT;
    if (c->queued > 0 && (events & (out_ready | EPOLLERR | EPOLLHUP))) {
        if (flush_queue(c) < 0 || (c->flags & F_CLOSED))
            return;
    }
    if (c->tls != NULL && c->tls->shut_waiting && (events & (out_ready | EPOLLERR | EPOLLHUP))) {
        tls_shutdown_step(c);
        if (c->flags & F_CLOSED)
            return;
    }
    if (c->tls != NULL && c->tls->read_wants_write && (events & EPOLLOUT))
        events |= EPOLLIN;
    if (reading(c) && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        conn_read(c);
    else if ((events & EPOLLERR) && !(c->flags & F_CLOSED)) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        (void)getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        conn_fail(c, soerr ? -soerr : -EIO);
    } else if ((events & EPOLLHUP) && !(c->flags & F_CLOSED) && c->queued == 0) {
        /* Hung up while we were not reading and have nothing to send. */
        conn_finish(c, 0, false);
    }
}

/* ---- making connections ----------------------------------------------------- */

static void limits_of(const struct ss_event_handler *h, ss_conn *c)
{
    c->high = h->high_water ? h->high_water : 256 * 1024;
    c->low = h->low_water ? h->low_water : c->high / 4;
    if (c->low > c->high)
        c->low = c->high;
    c->hard = h->hard_limit ? h->hard_limit : 8 * c->high;
    if (c->hard < c->high)
        c->hard = c->high;
}

/* plain: no TLS and no PROXY header, so a stream connection may take the
 * loop's completion mode. */
static ss_conn *conn_new(ss_loop *loop, int fd, ss_listener *l, const struct ss_event_handler *h,
                         int socktype, bool inet, bool plain)
{
    ss_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (plain && socktype == SOCK_STREAM && ss__loop_completion(loop)) {
        c->cio = calloc(1, sizeof *c->cio);
        if (c->cio == NULL) {
            free(c);
            return NULL;
        }
    }
    c->io.fd = fd;
    c->io.cb = conn_io;
    c->loop = loop;
    c->listener = l;
    c->h = h;
    c->deferred.run = conn_deferred_free;
    ss__link_init(&c->idle);
    ss__link_init(&c->stalled);
    limits_of(h, c);
    if (socktype == SOCK_SEQPACKET)
        c->flags |= F_SEQPACKET;
    if (inet)
        c->flags |= F_INET;
    if (c->cio == NULL && ss__io_set(loop, &c->io, EPOLLIN) < 0) {
        free(c);
        return NULL;
    }
    ss__link_insert_tail(&loop->conns, &c->link);
    loop->nconns++;
    c->last_active = loop->now;
    c->opened_ms = loop->now;
    if (l != NULL) {
        l->nconns++;
        l->refs++;
    }
    if (c->cio != NULL)
        cio_start(c);
    return c;
}

static void watch_idle(ss_conn *c)
{
    ss_listener *l = c->listener;
    if (l == NULL || l->idle_ms <= 0)
        return;
    ss__link_insert_tail(&l->idle, &c->idle);
    if (!ss_timer_active(&l->idle_timer))
        (void)ss_timer_start(c->loop, &l->idle_timer, (uint64_t)l->idle_ms, 0);
}

static void conn_opened(ss_conn *c)
{
    c->flags |= F_OPENED;
    if (c->h->on_open != NULL)
        c->h->on_open(c);
}

static int tls_begin(ss_conn *c, ss_listener *l);

/* Admitted (verify passed, the PROXY header read if any): TLS first when
 * the listener serves it, else open now. */
static void conn_admitted(ss_conn *c)
{
    ss_listener *l = c->listener;
    watch_idle(c);
    if (l != NULL && l->tls != NULL) {
        int rc = tls_begin(c, l);
        if (rc < 0)
            conn_fail(c, rc); /* unopened: the listener's hook hears of it */
        return;               /* on_open after the handshake */
    }
    conn_opened(c);
}

/* ---- the PROXY header (proxy_protocol) -------------------------------------
 *
 * The first step of a connection of a proxy_protocol listener, before
 * admission (verify) and on_open: read the header as it arrives, never
 * blocking the loop; the bytes after it stay in the socket and reach
 * on_data by the usual read. A TLS handshake, when there is one, comes
 * after this step.
 */

static void header_refuse(ss_conn *c, int reason, const char *why)
{
    ss_listener *l = c->listener;
    if (l->proxy_refused != NULL)
        l->proxy_refused(l->verify_arg, &c->peer, reason, why);
    conn_finish(c, reason, false); /* not opened: no callback of the handler */
}

static void header_io(ss_conn *c)
{
    ss_proxy_header h;
    const char *why;
    int rc = ss__proxy_read(c->io.fd, c->proxy, &h, &why);
    if (rc == SS_PROXY_MORE)
        return; /* every byte peeked was taken: no spin on level triggering */
    if (rc != SS_PROXY_DONE) {
        header_refuse(c, rc, why);
        return;
    }
    ss_listener *l = c->listener;
    free(c->proxy);
    c->proxy = NULL;
    c->flags &= ~F_HEADER;
    ss__link_remove(&c->idle); /* off the header list */
    /* LOCAL / UNKNOWN carry none: the socket's peer stands */
    if (!h.local)
        c->peer = h.source;
    if (l->verify != NULL && !l->verify(l->verify_arg, c->io.fd, &c->peer)) {
        conn_finish(c, 0, false);
        return;
    }
    c->verified = l->verify != NULL;
    c->last_active = c->loop->now;
    conn_admitted(c);
}

static void on_header_timer(ss_timer *t)
{
    ss_listener *l = t->data;
    int64_t now = l->loop->now;
    while (!ss__link_empty(&l->headers)) {
        ss_conn *c = SS__CONTAINER_OF(l->headers.next, ss_conn, idle);
        int64_t due = c->last_active + l->proxy_ms;
        if (due > now) {
            (void)ss_timer_start(l->loop, &l->header_timer, (uint64_t)(due - now), 0);
            return;
        }
        header_refuse(c, SS_ETIMEOUT, "no complete PROXY header in time"); /* unlinks it */
    }
}

/* A new connection of a proxy_protocol listener waits for its header. */
static int header_start(ss_conn *c)
{
    ss_listener *l = c->listener;
    c->proxy = malloc(sizeof *c->proxy);
    if (c->proxy == NULL)
        return -ENOMEM;
    ss_proxy_init(c->proxy);
    c->flags |= F_HEADER;
    ss__link_insert_tail(&l->headers, &c->idle);
    if (l->proxy_ms > 0 && !ss_timer_active(&l->header_timer))
        (void)ss_timer_start(c->loop, &l->header_timer, (uint64_t)l->proxy_ms, 0);
    return 0;
}

/* Serve a connected descriptor with `h`, as the peer getpeername() names;
 * plain: no TLS will run on it. */
static int adopt(ss_loop *loop, int fd, const struct ss_event_handler *h, bool plain,
                 ss_conn **out)
{
    if (out != NULL)
        *out = NULL;
    int type = 0, domain = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &(socklen_t){sizeof domain}) < 0 ||
        ss__set_nonblocking(fd, 1) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    ss_conn *c = conn_new(loop, fd, NULL, h, type, domain != AF_UNIX, plain);
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->peer.len = sizeof c->peer.u;
    if (getpeername(fd, &c->peer.u.sa, &c->peer.len) < 0)
        c->peer.len = 0;
    c->peer.kind = domain == AF_UNIX ? (type == SOCK_SEQPACKET ? SS_ADDR_SEQPACKET : SS_ADDR_UNIX)
                                     : SS_ADDR_TCP;
    if (out != NULL)
        *out = c;
    conn_opened(c);
    return 0;
}

int ss_loop_adopt(ss_loop *loop, int fd, const struct ss_event_handler *h, ss_conn **out)
{
    return adopt(loop, fd, h, true, out);
}

int ss_loop_adopt_tls(ss_loop *loop, int fd, const struct ss_event_handler *h, ss_tls_ctx *tls,
                      const char *server_name, double handshake_timeout, ss_conn **out)
{
    if (out != NULL)
        *out = NULL;
    int type = 0;
    if (tls == NULL ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &(socklen_t){sizeof type}) < 0 ||
        type != SOCK_STREAM) {
        close(fd);
        return SS_EUSAGE;
    }
    /* adopt() opens at once; the handshake must come first, so adopt with
     * a handler-less open and start TLS before the loop sees the fd. */
    static const struct ss_event_handler none;
    ss_conn *c;
    int rc = adopt(loop, fd, &none, false, &c);
    if (rc < 0)
        return rc;
    c->h = h;
    limits_of(h, c);
    c->flags &= ~F_OPENED;
    c->flags |= F_TLS_ADOPTED;
    uint64_t ms = handshake_timeout > 0 ? (uint64_t)(handshake_timeout * 1000.0 + 0.5) : 10000;
    rc = tls_start(c, tls, server_name, ms);
    if (rc < 0) {
        c->flags &= ~F_TLS_ADOPTED; /* nothing reaches the handler: the caller hears rc */
        conn_finish(c, rc, false);
        return rc;
    }
    if (out != NULL)
        *out = c;
    tls_handshake_step(c); /* a client speaks first: its ClientHello goes now */
    return 0;
}

/* ---- listening ---------------------------------------------------------------- */

static void listener_pause(ss_listener *l)
{
    (void)ss__io_set(l->loop, &l->io, 0);
}

static void listener_resume(ss_listener *l)
{
    if (l->closed || l->held || l->paused_full || l->paused_emfile)
        return;
    (void)ss__io_set(l->loop, &l->io, l->want);
}

void ss__listener_hold(ss_listener *l, bool hold)
{
    l->held = hold;
    if (hold) {
        listener_pause(l);
        ss__loop_flush(l->loop); /* the caller may close it now */
    } else
        listener_resume(l);
}

static void on_retry(ss_timer *t)
{
    ss_listener *l = t->data;
    l->paused_emfile = false;
    listener_resume(l);
}

void ss__loop_conn_closed(ss_loop *loop)
{
    /* A descriptor came free: a listener resting on EMFILE may try now, and
     * one at its cap may take the next client. */
    for (ss__link *k = loop->listeners.next; k != &loop->listeners; k = k->next) {
        ss_listener *l = SS__CONTAINER_OF(k, ss_listener, link);
        bool was = l->paused_full || l->paused_emfile;
        if (l->paused_full && l->nconns < l->max_conns)
            l->paused_full = false;
        if (l->paused_emfile) {
            ss_timer_stop(&l->retry_timer);
            l->paused_emfile = false;
        }
        if (was)
            listener_resume(l);
    }
}

static void on_idle_timer(ss_timer *t)
{
    ss_listener *l = t->data;
    int64_t now = l->loop->now;
    while (!ss__link_empty(&l->idle)) {
        ss_conn *c = SS__CONTAINER_OF(l->idle.next, ss_conn, idle);
        int64_t due = c->last_active + l->idle_ms;
        if (due > now) {
            (void)ss_timer_start(l->loop, &l->idle_timer, (uint64_t)(due - now), 0);
            return;
        }
        conn_fail(c, SS_ETIMEOUT); /* removes it from the idle list */
    }
}

static void on_write_timer(ss_timer *t)
{
    ss_listener *l = t->data;
    int64_t now = l->loop->now;
    while (!ss__link_empty(&l->stalled)) {
        ss_conn *c = SS__CONTAINER_OF(l->stalled.next, ss_conn, stalled);
        int64_t due = c->write_since + l->write_ms;
        if (due > now) {
            (void)ss_timer_start(l->loop, &l->write_timer, (uint64_t)(due - now), 0);
            return;
        }
        conn_fail(c, SS_ETIMEOUT); /* removes it from the list */
    }
}

void ss__listener_set_write_timeout(ss_listener *l, double seconds)
{
    l->write_ms = seconds > 0 ? (int64_t)(seconds * 1000.0 + 0.5) : 0;
    if (seconds > 0 && l->write_ms == 0)
        l->write_ms = 1;
}

static void fill_peer(ss_addr *peer, ss_addr_kind kind, const struct sockaddr_storage *ss,
                      socklen_t len)
{
    peer->kind = kind;
    if (len > sizeof peer->u)
        len = sizeof peer->u;
    peer->len = len;
    memcpy(&peer->u, ss, len);
}

/* A client `l` will not serve after all. Once verify() has passed, the
 * hook that took its per-IP slot hears of it, or the slot would stay
 * taken for good. */
static void serve_failed(ss_listener *l, int fd, const ss_addr *peer, bool verified, int reason)
{
    close(fd);
    if (verified && l->unopened != NULL)
        l->unopened(l->verify_arg, peer, reason, ss_strerror(reason));
    if (l->unpick != NULL)
        l->unpick(l->pick_arg, l);
}

/* Make an accepted descriptor a connection of `l` (on l's loop);
 * read_header: the PROXY header is still in the socket. */
static void listener_serve_as(ss_listener *l, int fd, const ss_addr *peer, bool read_header)
{
    bool inet = l->kind == SS_ADDR_TCP;
    if (inet) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ss_conn *c = conn_new(l->loop, fd, l, l->h, l->socktype, inet,
                          l->tls == NULL && !read_header);
    if (c == NULL) {
        serve_failed(l, fd, peer, !read_header && l->verify != NULL, -ENOMEM);
        return;
    }
    c->peer = *peer;
    if (read_header) {
        if (header_start(c) < 0)
            conn_finish(c, -ENOMEM, false);
        return;
    }
    c->verified = l->verify != NULL;
    conn_admitted(c);
}

static void listener_serve(ss_listener *l, int fd, const ss_addr *peer)
{
    listener_serve_as(l, fd, peer, l->proxy);
}

void ss__listener_adopt(ss_listener *l, int fd, const ss_addr *peer)
{
    if (l->closed) {
        serve_failed(l, fd, peer, l->verify != NULL, SS_ESHUTDOWN);
        return;
    }
    int rc = ss__set_nonblocking(fd, 1);
    if (rc < 0) {
        serve_failed(l, fd, peer, l->verify != NULL, rc);
        return;
    }
    listener_serve_as(l, fd, peer, false);
}

/* A connection accepted on one loop, to be served by another. */
typedef struct handoff_job {
    ss_listener *to;
    int fd;
    ss_addr peer;
} handoff_job;

static void handoff_run(ss_loop *loop, void *arg)
{
    (void)loop;
    handoff_job *j = arg;
    if (j->to->closed) {
        /* stopped accepting meanwhile: the client goes, as if still in the
         * backlog of a closed listener */
        serve_failed(j->to, j->fd, &j->peer, !j->to->proxy && j->to->verify != NULL,
                     SS_ESHUTDOWN);
    } else {
        listener_serve(j->to, j->fd, &j->peer);
    }
    free(j);
}

static int handoff(ss_listener *to, int fd, const ss_addr *peer)
{
    handoff_job *j = malloc(sizeof *j);
    if (j == NULL)
        return -ENOMEM;
    j->to = to;
    j->fd = fd;
    j->peer = *peer;
    if (ss_loop_post(to->loop, handoff_run, j) < 0) {
        free(j);
        return -ENOMEM;
    }
    return 0;
}

static void listener_io(ss_loop *loop, ss__io *io, uint32_t events)
{
    (void)events;
    ss_listener *l = (ss_listener *)io;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (l->max_conns > 0 && l->nconns >= l->max_conns) {
            l->paused_full = true;
            listener_pause(l);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(l->io.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM)
                continue;
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM or worse: the client stays in
             * the backlog; rest instead of spinning on a readable listener. */
            l->paused_emfile = true;
            listener_pause(l);
            (void)ss_timer_start(loop, &l->retry_timer, EMFILE_PAUSE_MS, 0);
            return;
        }
        ss_addr peer;
        fill_peer(&peer, l->kind, &ss, len);
        /* with the PROXY protocol the client is named by the header: admit
         * it then (header_io) */
        if (!l->proxy && l->verify != NULL && !l->verify(l->verify_arg, fd, &peer)) {
            close(fd);
            continue;
        }
        ss_listener *to = l->pick != NULL ? l->pick(l->pick_arg, l) : l;
        if (to != l && to != NULL && handoff(to, fd, &peer) == 0)
            continue;
        listener_serve(l, fd, &peer);
        if (l->closed)
            return;
    }
}

int ss_loop_listen(ss_loop *loop, int fd, const struct ss_event_handler *h,
                   const ss_listener_opts *opts, ss_listener **out, ss_error *err)
{
    *out = NULL;
    int type = 0, domain = 0;
    socklen_t tl = sizeof type, dl = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) < 0) {
        int rc = -errno;
        return ss__fail(err, rc, "cannot serve descriptor %d: %s", fd, ss_strerror(rc));
    }
    if (type != SOCK_STREAM && type != SOCK_SEQPACKET)
        return ss__fail(err, SS_EUSAGE, "cannot listen on descriptor %d: not a stream socket", fd);
    if (opts != NULL && opts->proxy_protocol && type != SOCK_STREAM)
        return ss__fail(err, SS_EUSAGE,
                        "cannot read PROXY headers on descriptor %d: not a SOCK_STREAM socket", fd);
    ss_listener *l = calloc(1, sizeof *l);
    if (l == NULL)
        return ss__fail(err, -ENOMEM, "cannot serve descriptor %d: out of memory", fd);
    l->io.fd = fd;
    l->io.cb = listener_io;
    l->loop = loop;
    l->h = h;
    l->socktype = type;
    l->kind = domain == AF_UNIX ? (type == SOCK_SEQPACKET ? SS_ADDR_SEQPACKET : SS_ADDR_UNIX)
                                : SS_ADDR_TCP;
    l->want = EPOLLIN;
    if (opts != NULL) {
        l->max_conns = opts->max_conns > 0 ? opts->max_conns : 0;
        l->idle_ms = opts->idle_timeout > 0 ? (int64_t)(opts->idle_timeout * 1000.0 + 0.5) : 0;
        if (opts->idle_timeout > 0 && l->idle_ms == 0)
            l->idle_ms = 1;
        if (opts->exclusive)
            l->want |= EPOLLEXCLUSIVE;
        l->verify = opts->verify;
        l->verify_arg = opts->verify_arg;
        l->unopened = opts->unopened;
        l->tls = opts->tls;
        l->handshake_ms = opts->handshake_timeout > 0
                              ? (uint64_t)(opts->handshake_timeout * 1000.0 + 0.5)
                              : HANDSHAKE_DEFAULT_MS;
        l->proxy = opts->proxy_protocol;
        double t = opts->proxy_timeout == 0 ? 10.0 : opts->proxy_timeout;
        l->proxy_ms = t > 0 ? (int64_t)(t * 1000.0 + 0.5) : 0;
        if (t > 0 && l->proxy_ms == 0)
            l->proxy_ms = 1;
        l->proxy_refused = opts->proxy_refused;
    }
    ss__link_init(&l->idle);
    ss__link_init(&l->headers);
    ss_timer_init(&l->header_timer, on_header_timer, l);
    ss__link_init(&l->stalled);
    ss_timer_init(&l->idle_timer, on_idle_timer, l);
    ss_timer_init(&l->write_timer, on_write_timer, l);
    ss_timer_init(&l->retry_timer, on_retry, l);
    int rc = ss__set_nonblocking(fd, 1);
    if (rc == 0)
        rc = ss__io_set(loop, &l->io, l->want);
    if (rc < 0) {
        free(l);
        return ss__fail(err, rc, "cannot poll listener %d: %s", fd, ss_strerror(rc));
    }
    ss__link_insert_tail(&loop->listeners, &l->link);
    *out = l;
    return 0;
}

static void listener_free(ss_listener *l)
{
    ss_timer_stop(&l->header_timer);
    ss_timer_stop(&l->idle_timer);
    ss_timer_stop(&l->write_timer);
    ss_timer_stop(&l->retry_timer);
    free(l);
}

void ss_listener_close(ss_listener *l)
{
    if (l == NULL || l->closed)
        return;
    l->closed = true;
    listener_pause(l);
    ss__loop_flush(l->loop); /* the descriptor is the caller's again */
    ss_timer_stop(&l->retry_timer);
    ss__link_remove(&l->link);
    if (l->pick != NULL) {
        /* Other loops may still post connections to it: it stays until the
         * loop is freed (ss__listeners_free_retired). */
        ss__link_insert_tail(&l->loop->retired, &l->link);
        return;
    }
    /* Connections keep their idle timeout: the listener's memory lives on
     * until the last of them is freed. */
    if (l->refs == 0)
        listener_free(l);
}

void ss__listeners_free_retired(ss_loop *loop)
{
    while (!ss__link_empty(&loop->retired)) {
        ss_listener *l = SS__CONTAINER_OF(loop->retired.next, ss_listener, link);
        ss__link_remove(&l->link);
        listener_free(l);
    }
}

void ss__listener_set_balancer(ss_listener *l, ss_listener *(*pick)(void *arg, ss_listener *self),
                               void (*unpick)(void *arg, ss_listener *l), void *arg)
{
    l->pick = pick;
    l->unpick = unpick;
    l->pick_arg = arg;
}

ss_loop *ss__listener_loop(const ss_listener *l)
{
    return l->loop;
}

bool ss_listener_paused(const ss_listener *l)
{
    return l->paused_full || l->paused_emfile;
}

void ss__listeners_close_all(ss_loop *loop)
{
    while (!ss__link_empty(&loop->listeners))
        ss_listener_close(SS__CONTAINER_OF(loop->listeners.next, ss_listener, link));
}

void ss__conns_close_all(ss_loop *loop, int reason)
{
    while (!ss__link_empty(&loop->conns))
        conn_finish(SS__CONTAINER_OF(loop->conns.next, ss_conn, link), reason, false);
}

/* ---- accessors ------------------------------------------------------------------ */

void ss_conn_pause(ss_conn *c)
{
    c->flags |= F_PAUSED_USER;
    update_interest(c);
}

void ss_conn_resume(ss_conn *c)
{
    c->flags &= ~F_PAUSED_USER;
    update_interest(c);
}

size_t ss_conn_queued(const ss_conn *c)
{
    return c->queued;
}
bool ss_conn_paused(const ss_conn *c)
{
    return (c->flags & (F_PAUSED_USER | F_PAUSED_BP)) != 0;
}
void ss_conn_set_user(ss_conn *c, void *user)
{
    c->user = user;
}
void *ss_conn_user(const ss_conn *c)
{
    return c->user;
}
void *ss_conn_handler_data(const ss_conn *c)
{
    return c->h->data;
}
ss_loop *ss_conn_loop(const ss_conn *c)
{
    return c->loop;
}
int ss_conn_fd(const ss_conn *c)
{
    return c->io.fd;
}
const ss_transport *ss_conn_tls(const ss_conn *c)
{
    return c->tls != NULL ? &c->tls->t : NULL;
}

const ss_addr *ss_conn_peer(const ss_conn *c)
{
    return &c->peer;
}
