/* SPDX-License-Identifier: MIT */
/*
 * loop.c — the event loop, backend-neutral: a timer heap, an eventfd for
 * wake-ups from other threads and signal handlers, a queue of posted work,
 * and the turn. The kernel interface is a backend (loop_backend.h: epoll in
 * loop_epoll.c, io_uring in loop_uring.c). Connections, listeners and
 * datagram sockets live in event_conn.c and event_dgram.c and reach the loop
 * only through ss__io_set() / ss__io_close().
 *
 * A turn: run due timers, wait in the backend (no longer than the next
 * timer), dispatch the ready descriptors, then free what was closed during
 * the turn (so events later in the same batch never name freed memory).
 *
 * Descriptors are level-triggered: for ping-pong traffic one read per wake-up
 * is enough, where edge-triggered would need a second read to see EAGAIN.
 */
#include "loop_backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct ss__post {
    struct ss__post *next;
    void (*fn)(ss_loop *loop, void *arg);
    void *arg;
};

/* ---- timers: a binary min-heap ordered by (due, seq) ------------------- */

static bool timer_before(const ss_timer *a, const ss_timer *b)
{
    if (a->due != b->due)
        return a->due < b->due;
    return a->seq < b->seq;
}

static void heap_place(ss_loop *loop, size_t i, ss_timer *t)
{
    loop->heap[i] = t;
    t->slot = i;
}

static void heap_up(ss_loop *loop, size_t i)
{
    ss_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_place(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_place(loop, i, t);
}

static void heap_down(ss_loop *loop, size_t i)
{
    ss_timer *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len && timer_before(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_before(loop->heap[child], t))
            break;
        heap_place(loop, i, loop->heap[child]);
        i = child;
    }
    heap_place(loop, i, t);
}

static void heap_remove(ss_loop *loop, ss_timer *t)
{
    size_t i = t->slot;
    t->slot = SIZE_MAX;
    ss_timer *last = loop->heap[--loop->heap_len];
    if (last == t)
        return;
    heap_place(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last->slot);
}

void ss_timer_init(ss_timer *t, ss_timer_cb cb, void *data)
{
    memset(t, 0, sizeof *t);
    t->cb = cb;
    t->data = data;
    t->slot = SIZE_MAX;
}

bool ss_timer_active(const ss_timer *t)
{
    return t->slot != SIZE_MAX;
}

void ss_timer_stop(ss_timer *t)
{
    if (t->slot != SIZE_MAX)
        heap_remove(t->loop, t);
}

int ss_timer_start(ss_loop *loop, ss_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
    ss_timer_stop(t);
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
        ss_timer **grown = realloc(loop->heap, cap * sizeof *grown);
        if (grown == NULL)
            return -ENOMEM;
        loop->heap = grown;
        loop->heap_cap = cap;
    }
    if (timeout_ms > INT64_MAX / 2)
        timeout_ms = INT64_MAX / 2;
    t->loop = loop;
    t->due = loop->now + (int64_t)timeout_ms;
    t->repeat = repeat_ms;
    t->seq = loop->timer_seq++;
    loop->heap[loop->heap_len] = t;
    t->slot = loop->heap_len++;
    heap_up(loop, t->slot);
    return 0;
}

static void run_timers(ss_loop *loop)
{
    while (loop->heap_len > 0) {
        ss_timer *t = loop->heap[0];
        if (t->due > loop->now)
            break;
        heap_remove(loop, t);
        if (t->repeat > 0)
            (void)ss_timer_start(loop, t, t->repeat, t->repeat); /* slot is free: cannot fail */
        t->cb(t);
    }
}

/* Milliseconds the backend may sleep: until the next timer, at most `cap`. */
static int wait_budget(ss_loop *loop, int cap)
{
    /* Posted work needs no check here: posting writes the eventfd. */
    if (loop->deferred != NULL)
        return 0;
    if (loop->heap_len == 0)
        return cap;
    int64_t left = loop->heap[0]->due - loop->now;
    if (left <= 0)
        return 0;
    if (left > INT32_MAX)
        left = INT32_MAX;
    return (cap < 0 || left < cap) ? (int)left : cap;
}

/* ---- wake-ups and posted work ------------------------------------------ */

void ss_loop_wakeup(ss_loop *loop)
{
    /* Only the first wake-up of a turn needs the write; the flag is reset
     * by the loop after it has read the eventfd (see on_wake). */
    if (atomic_exchange(&loop->woken, true))
        return;
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(loop->wake.fd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
}

void ss_loop_stop(ss_loop *loop)
{
    atomic_store(&loop->stop, true);
    ss_loop_wakeup(loop);
}

int ss_loop_post(ss_loop *loop, void (*fn)(ss_loop *loop, void *arg), void *arg)
{
    struct ss__post *p = malloc(sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&loop->post_lock);
    if (loop->post_tail != NULL)
        loop->post_tail->next = p;
    else
        loop->post_head = p;
    loop->post_tail = p;
    pthread_mutex_unlock(&loop->post_lock);
    ss_loop_wakeup(loop);
    return 0;
}

static void run_posts(ss_loop *loop)
{
    pthread_mutex_lock(&loop->post_lock);
    struct ss__post *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    while (p != NULL) {
        struct ss__post *next = p->next;
        p->fn(loop, p->arg);
        free(p);
        p = next;
    }
}

static void on_wake(ss_loop *loop, ss__io *io, uint32_t events)
{
    (void)events;
    /* Read first, then re-arm: a wake-up written between the two finds the
     * flag still set and skips its write, but its work was queued before
     * the flag cleared, so the run_posts() after this callback sees it.
     * The other order could swallow a write and leave work queued with the
     * flag stuck set (every later post skipping its write). */
    uint64_t count;
    while (read(io->fd, &count, sizeof count) < 0 && errno == EINTR)
        ;
    atomic_store(&loop->woken, false);
}

/* ---- descriptors -------------------------------------------------------- */

int ss__io_set(ss_loop *loop, ss__io *io, uint32_t events)
{
    if (events == io->events)
        return 0;
    return loop->ops->io_set(loop, io, events);
}

void ss__io_close(ss_loop *loop, ss__io *io)
{
    if (io->fd < 0)
        return;
    loop->ops->io_forget(loop, io);
    io->events = 0;
    close(io->fd);
    io->fd = -1;
}

void ss__loop_flush(ss_loop *loop)
{
    /* Only the loop's own thread talks to the kernel interface: before the
     * first turn nothing was handed over yet, and after the last (the loop
     * being freed) closing the interface drops everything anyway. A ring
     * submitted to from another thread would tie that thread to it. */
    if (loop->ran && pthread_equal(loop->runner, pthread_self()))
        loop->ops->flush(loop);
}

bool ss__loop_completion(const ss_loop *loop)
{
    return loop->completion;
}

void ss__op_recv(ss_loop *loop, ss__op *op, int fd)
{
    op->fd = fd;
    op->kind = SS__OP_RECV;
    op->msg = NULL;
    loop->ops->op_submit(loop, op);
}

void ss__op_send(ss_loop *loop, ss__op *op, int fd, struct msghdr *msg)
{
    op->fd = fd;
    op->kind = SS__OP_SEND;
    op->msg = msg;
    loop->ops->op_submit(loop, op);
}

void ss__op_cancel(ss_loop *loop, ss__op *op)
{
    loop->ops->op_cancel(loop, op);
}

void ss__loop_uring_stats(const ss_loop *loop, ss__uring_stats *out)
{
    memset(out, 0, sizeof *out);
    if (loop->ops->stats != NULL)
        loop->ops->stats(loop, out);
}

void ss__loop_defer(ss_loop *loop, ss__deferred *d)
{
    d->next = loop->deferred;
    loop->deferred = d;
}

void ss__loop_run_deferred(ss_loop *loop)
{
    /* A deferred job may defer more (on_close closing another connection):
     * keep going until the list stays empty. */
    while (loop->deferred != NULL) {
        ss__deferred *d = loop->deferred;
        loop->deferred = NULL;
        while (d != NULL) {
            ss__deferred *next = d->next;
            d->run(d);
            d = next;
        }
    }
}

/* ---- the loop ------------------------------------------------------------ */

const char *ss_backend_name(ss_backend b)
{
    switch (b) {
    case SS_BACKEND_AUTO:
        return "auto";
    case SS_BACKEND_EPOLL:
        return "epoll";
    case SS_BACKEND_IO_URING:
        return "io_uring";
    }
    return "?";
}

int ss_backend_parse(const char *name, ss_backend *out)
{
    static const ss_backend all[] = {SS_BACKEND_AUTO, SS_BACKEND_EPOLL, SS_BACKEND_IO_URING};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, ss_backend_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return SS_EUSAGE;
}

/* AUTO, as the environment may narrow it (tests run every suite on both). */
static ss_backend auto_choice(void)
{
    const char *env = getenv("SS_BACKEND");
    ss_backend b;
    if (env != NULL && ss_backend_parse(env, &b) == 0)
        return b;
    return SS_BACKEND_AUTO;
}

static int open_backend(ss_loop *loop, ss_backend want, ss_error *err)
{
    if (want == SS_BACKEND_AUTO)
        want = auto_choice();
    if (want == SS_BACKEND_EPOLL) {
        loop->ops = &ss__backend_epoll;
        return loop->ops->open(loop, err);
    }
    loop->ops = &ss__backend_uring;
    ss_error why = {0};
    int rc = loop->ops->open(loop, &why);
    if (rc == 0)
        return 0;
    if (want == SS_BACKEND_IO_URING)
        return ss__fail(err, rc, "cannot use the io_uring backend: %s",
                        why.msg[0] ? why.msg : ss_strerror(rc));
    /* auto: the kernel (or a seccomp/container policy) refused io_uring */
    snprintf(loop->fallback, sizeof loop->fallback, "%.150s", why.msg[0] ? why.msg : ss_strerror(rc));
    loop->ops = &ss__backend_epoll;
    return loop->ops->open(loop, err);
}

int ss_loop_new(ss_loop **out, ss_error *err)
{
    return ss_loop_new_backend(out, SS_BACKEND_AUTO, err);
}

int ss_loop_new_backend(ss_loop **out, ss_backend backend, ss_error *err)
{
    *out = NULL;
    ss_loop *loop = calloc(1, sizeof *loop);
    if (loop == NULL)
        return ss__fail(err, -ENOMEM, "cannot make an event loop: out of memory");
    loop->wake.fd = -1;
    loop->rbuf = malloc(SS__LOOP_READ_BUFFER);
    if (loop->rbuf == NULL) {
        free(loop);
        return ss__fail(err, -ENOMEM, "cannot make an event loop: out of memory");
    }
    int rc = open_backend(loop, backend, err);
    if (rc < 0) {
        free(loop->rbuf);
        free(loop);
        return rc;
    }
    loop->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wake.fd < 0) {
        rc = -errno;
        ss__fail(err, rc, "cannot make an event loop: eventfd: %s", ss_strerror(rc));
        goto fail;
    }
    loop->wake.cb = on_wake;
    rc = ss__io_set(loop, &loop->wake, EPOLLIN);
    if (rc < 0) {
        ss__fail(err, rc, "cannot make an event loop: watching its eventfd: %s", ss_strerror(rc));
        goto fail;
    }
    pthread_mutex_init(&loop->post_lock, NULL);
    ss__link_init(&loop->conns);
    ss__link_init(&loop->listeners);
    ss__link_init(&loop->dgrams);
    ss__link_init(&loop->retired);
    atomic_init(&loop->stop, false);
    atomic_init(&loop->woken, false);
    loop->now = ss__now_ms();
    *out = loop;
    return 0;
fail:
    if (loop->wake.fd >= 0)
        ss__io_close(loop, &loop->wake);
    loop->ops->close(loop);
    free(loop->rbuf);
    free(loop);
    return rc;
}

ss_backend ss_loop_backend(const ss_loop *loop)
{
    return loop->ops->kind;
}

const char *ss__loop_fallback(const ss_loop *loop)
{
    return loop->fallback[0] ? loop->fallback : NULL;
}

void ss_loop_free(ss_loop *loop)
{
    if (loop == NULL)
        return;
    /* Work posted before the free still runs (it may own descriptors),
     * with every listener closed. */
    ss__listeners_close_all(loop);
    ss__dgrams_close_all(loop);
    run_posts(loop);
    ss__conns_close_all(loop, 0);
    ss__loop_run_deferred(loop);
    ss__listeners_free_retired(loop);
    /* Timers are the caller's memory: just forget them. */
    for (size_t i = 0; i < loop->heap_len; i++)
        loop->heap[i]->slot = SIZE_MAX;
    free(loop->heap);
    pthread_mutex_destroy(&loop->post_lock);
    ss__io_close(loop, &loop->wake);
    loop->ops->close(loop); /* ends the ops still in flight: their owners free */
    ss__conns_free_cache(loop);
    free(loop->rbuf);
    free(loop);
}

int ss_loop_run_once(ss_loop *loop, int timeout_ms)
{
    if (!loop->ran && loop->ops->start != NULL) {
        int rc = loop->ops->start(loop);
        if (rc < 0)
            return rc;
    }
    loop->runner = pthread_self();
    loop->ran = true;
    loop->now = ss__now_ms();
    run_timers(loop);
    run_posts(loop);
    ss__loop_run_deferred(loop);
    int rc = loop->ops->poll(loop, wait_budget(loop, timeout_ms));
    if (rc < 0)
        return rc;
    run_posts(loop);
    ss__loop_run_deferred(loop);
    run_timers(loop);
    ss__loop_run_deferred(loop);
    return 0;
}

int ss_loop_run(ss_loop *loop)
{
    int rc = 0;
    while (!atomic_load(&loop->stop)) {
        rc = ss_loop_run_once(loop, -1);
        if (rc < 0)
            break;
    }
    atomic_store(&loop->stop, false);
    return rc;
}

int64_t ss_loop_now(const ss_loop *loop)
{
    return loop->now;
}
size_t ss_loop_conn_count(const ss_loop *loop)
{
    return loop->nconns;
}
void ss_loop_set_user(ss_loop *loop, void *user)
{
    loop->user = user;
}
void *ss_loop_user(const ss_loop *loop)
{
    return loop->user;
}
