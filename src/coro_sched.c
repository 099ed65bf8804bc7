/* SPDX-License-Identifier: MIT */
/*
 * coro_sched.c — coroutines on an ss_loop: what a blocking call does when it
 * runs inside one.
 *
 * A coroutine that must wait registers what it waits for with its loop (the
 * descriptor in epoll, the deadline as a loop timer) and yields; the loop's
 * callback resumes it. The loop thread meanwhile serves every other
 * coroutine of the loop.
 *
 * Descriptor registrations: the coroutine's own connection (its "home" fd,
 * where nearly every wait happens) is edge-triggered (EPOLLET; io_uring: a
 * multishot poll, loop_backend.h), with lazy interest: a wait registers the
 * direction it waits for, and the registration is left as it is when the
 * wait ends, so a request that reads in a loop costs no epoll_ctl (no poll
 * re-armed, on io_uring) per wait, and epoll does not look at the socket
 * again after each report as it does for a level-triggered one. An edge is
 * enough because every wait on it follows an EAGAIN, or a short read that
 * emptied the receive queue (transport_fd.c's hint), while registered or
 * before a registration (which reports what is ready when it is made): what
 * comes after is a wake-up. The one thing a short read leaves behind is an
 * end of file that came with the data, and a report that says EPOLLRDHUP
 * turns the hint off (home_hup). Interest is dropped (the fd leaves the
 * loop) when readiness comes that nobody waits for -- data or an end of
 * file while the coroutine sleeps or waits elsewhere; the next wait
 * registers it again and sees it at once. A report a running wait did not
 * ask for (io_uring's EPOLLRDHUP on a wait for POLLOUT, or one of an older
 * mask) leaves it as it is (on_io). Any other descriptor (a dialed
 * upstream, a pipe, the datagram socket a reply goes through) is
 * registered level-triggered for the one wait and
 * removed after it, so nothing of ours is left in epoll when its owner
 * closes it; the same descriptor waited on by two coroutines of one loop
 * gets a dup for the second (epoll refuses the same fd twice).
 *
 * Stacks are mmap'd per coroutine; a bounded cache per loop keeps a few of
 * the ended ones so a busy server does not map and unmap a stack per
 * connection.
 */
#include "coro.h"
#include "event_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define STACK_CACHE_MAX 32

typedef struct coro_wait coro_wait;

/* A descriptor registered for a coroutine (embedded: no allocation). */
typedef struct coro_io {
    ss__io io;
    coro_wait *w;
    uint32_t want; /* events that end the coroutine's wait; 0 = not armed */
    int dup_fd;    /* a dup registered instead of the fd (-1: none) */
} coro_io;

/* What a coroutine is, to its scheduler: its wait state. */
struct coro_wait {
    /* What a report on the home fd reads, first, in one cache line (the
     * loop prefetches the next report's ss__io: loop_epoll.c) */
    coro_io home; /* the home fd's registration (home.io.fd -1: none) */
    ss__sched *sched;
    ss__coro *co;
    bool waiting;     /* parked: an armed coro_io or the timer resumes it */
    bool timed_out;   /* the timer ended the wait */
    bool home_hup;    /* a report on the home fd said its peer's end (or an error) */
    int64_t deadline; /* of the current wait; -1 none */
    ss_timer timer;
    ss__coro_fn fn;
    void *arg;
};

struct ss__sched {
    ss_loop *loop;
    size_t stack_size;
    size_t live;
    ss__coro *cache[STACK_CACHE_MAX];
    size_t ncache;
};

static _Thread_local ss__sched *thread_sched;

size_t ss__sched_live(const ss__sched *s) { return s->live; }

int ss__sched_new(ss__sched **out, ss_loop *loop, size_t stack_size)
{
    *out = NULL;
    int rc = ss__coro_thread_init();
    if (rc < 0)
        return rc;
    ss__sched *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->loop = loop;
    s->stack_size = stack_size != 0 ? stack_size : SS__CORO_STACK_DEFAULT;
    thread_sched = s;
    *out = s;
    return 0;
}

void ss__sched_free(ss__sched *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ncache; i++)
        ss__coro_free(s->cache[i]);
    if (thread_sched == s)
        thread_sched = NULL;
    free(s);
    ss__coro_thread_fini();
}

static void on_timer(ss_timer *t);
static bool coro_read_would_block(int fd);

/* ---- running and ending ----------------------------------------------------- */

static coro_wait *running_wait(void);

static void coro_body(void *arg)
{
    (void)arg;
    coro_wait *w = running_wait();
    w->fn(w->arg);
    /* the body must have said goodbye to its home fd; be safe if not */
    if (w->home.io.events != 0)
        (void)ss__io_set(w->sched->loop, &w->home.io, 0);
}

static void ended(ss__sched *s, coro_wait *w)
{
    ss_timer_stop(&w->timer);
    ss__coro *co = w->co; /* w is in co's mapping: gone with it, or reused */
    s->live--;
    /* A stack is reused only by a coroutine of the same size, which every
     * coroutine of a scheduler is. */
    if (s->ncache < STACK_CACHE_MAX)
        s->cache[s->ncache++] = co;
    else
        ss__coro_free(co);
}

static const ss__wait_hooks coro_hooks = {
    .wait_fd = ss__coro_wait_fd,
    .sleep_ms = ss__coro_sleep_ms,
    .poll = ss__coro_poll,
    .read_would_block = coro_read_would_block,
};

/* Resume `w`'s coroutine (with the library's waits turned to the loop
 * while it runs); free it if that ended it. */
static void run(ss__sched *s, coro_wait *w)
{
    ss__wait_hook = &coro_hooks;
    bool done = ss__coro_resume(w->co);
    ss__wait_hook = NULL;
    if (done)
        ended(s, w);
}

_Static_assert(sizeof(coro_wait) <= SS__CORO_EXTRA, "the wait state fits its coroutine's extra bytes");
_Static_assert(offsetof(coro_wait, home_hup) < 64, "a report's fields share a cache line");

int ss__sched_spawn(ss__sched *s, ss__coro_fn fn, void *arg)
{
    ss__coro *co = NULL;
    if (s->ncache > 0) {
        co = s->cache[--s->ncache];
        if (ss__coro_reuse(co, coro_body, NULL) < 0) {
            ss__coro_free(co);
            co = NULL;
        }
    }
    if (co == NULL && ss__coro_new(&co, s->stack_size, coro_body, NULL) < 0)
        return -ENOMEM;
    /* the wait state sits in the coroutine's mapping, by its record */
    coro_wait *w = ss__coro_extra(co);
    memset(w, 0, sizeof *w);
    w->sched = s;
    w->co = co;
    w->fn = fn;
    w->arg = arg;
    w->home.io.fd = -1;
    w->home.w = w;
    w->home.dup_fd = -1;
    ss_timer_init(&w->timer, on_timer, w);
    ss__coro_set_data(co, w);
    s->live++;
    run(s, w);
    return 0;
}

/* ---- waiting ---------------------------------------------------------------- */

static coro_wait *running_wait(void)
{
    ss__coro *co = ss__coro_current();
    return co != NULL ? ss__coro_data(co) : NULL;
}

static void on_io(ss_loop *loop, ss__io *io, uint32_t events)
{
    coro_io *cio = SS__CONTAINER_OF(io, coro_io, io);
    coro_wait *w = cio->w;
    (void)loop;
    if (cio == &w->home && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        w->home_hup = true; /* the short-read hint is off from now on */
    /* Readiness nobody waits for now: the registration goes (the home
     * fd's lazy interest; a scratch one is removed at its wait's end
     * anyway), or each wake-up of the socket would come to us. What made
     * it ready stays in the socket for the next wait, which registers again
     * and sees it at once. */
    if (!w->waiting || cio->want == 0) {
        if (cio == &w->home)
            (void)ss__io_set(w->sched->loop, &w->home.io, 0);
        return;
    }
    /* A report the running wait did not ask for: io_uring adds EPOLLRDHUP
     * to every poll, so a wait for POLLOUT on a socket whose peer has sent
     * its FIN gets one; or one of an older mask (an epoll batch fetched
     * before the wait changed direction). The wait keeps its interest --
     * dropping it stranded the coroutine, which never saw the peer read or
     * reset -- edge-triggered (a scratch registration is made so here), so
     * what is not waited for is not reported again and again (a level
     * one-shot poll spun on it). */
    if ((events & cio->want) == 0) {
        (void)ss__io_set(w->sched->loop, &cio->io, cio->want | EPOLLET);
        return;
    }
    w->waiting = false;
    run(w->sched, w);
}

/* transport_fd.c's short-read hint: only for the home fd, whose
 * registration reports every wake-up after the short read (bytes, an end
 * of file) and on registering what is ready, so the wait the stream makes
 * ends as the read it skipped would have; and not once a report said the
 * peer's end, which a short read leaves unread behind its data. */
static bool coro_read_would_block(int fd)
{
    coro_wait *w = running_wait();
    return w != NULL && fd >= 0 && fd == w->home.io.fd && !w->home_hup;
}

static void on_timer(ss_timer *t)
{
    coro_wait *w = t->data;
    if (!w->waiting)
        return;
    /* the loop's clock is read once a turn: only a deadline really passed
     * counts, as in ss__wait_fd */
    int left = ss__remaining_ms(w->deadline);
    if (left > 0 && ss_timer_start(w->sched->loop, t, (uint64_t)left, 0) == 0)
        return;
    w->timed_out = true;
    w->waiting = false;
    run(w->sched, w);
}

static uint32_t epoll_events_of(short events)
{
    uint32_t e = EPOLLERR | EPOLLHUP; /* always end a wait, as poll() says them */
    if (events & POLLIN)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & POLLOUT)
        e |= EPOLLOUT;
    if (events & POLLPRI)
        e |= EPOLLPRI;
    return e;
}

/* Yield until an armed registration or the timer ends the wait. */
static int park(coro_wait *w, int64_t deadline)
{
    w->waiting = true;
    w->timed_out = false;
    w->deadline = deadline;
    if (deadline >= 0) {
        int ms = ss__remaining_ms(deadline);
        if (ss_timer_start(w->sched->loop, &w->timer, (uint64_t)ms, 0) < 0) {
            w->waiting = false;
            return -ENOMEM;
        }
    }
    while (w->waiting)
        ss__coro_yield();
    ss_timer_stop(&w->timer);
    return w->timed_out ? SS_ETIMEOUT : 0;
}

/*
 * Arm `scratch` (or the home registration, for the home fd) to end the wait
 * on `events` of `fd`. Returns the registration armed, or NULL with *rc: 1
 * for a descriptor epoll cannot watch (a regular file: always ready, as
 * poll() says), or a negative errno.
 */
static coro_io *arm(coro_wait *w, coro_io *scratch, int fd, short events, int *rc)
{
    ss_loop *loop = w->sched->loop;
    uint32_t want = epoll_events_of(events);
    *rc = 0;
    if (fd == w->home.io.fd) {
        /* interest in what this wait wants (every direction of one ss_poll
         * that names the fd twice); unchanged from the last wait, the
         * common case, it costs nothing (ss__io_set compares) */
        w->home.io.cb = on_io;
        *rc = ss__io_set(loop, &w->home.io, w->home.want | want | EPOLLET);
        if (*rc < 0)
            return NULL;
        w->home.want |= want;
        return &w->home;
    }
    *scratch = (coro_io){.io = {.fd = fd, .cb = on_io}, .w = w, .want = want, .dup_fd = -1};
    *rc = ss__io_set(loop, &scratch->io, want);
    if (*rc == -EEXIST) { /* this loop has fd already (another wait of ours, or another coroutine) */
        scratch->dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (scratch->dup_fd < 0) {
            *rc = -errno;
            return NULL;
        }
        scratch->io.fd = scratch->dup_fd;
        *rc = ss__io_set(loop, &scratch->io, want);
    }
    if (*rc < 0) {
        if (scratch->dup_fd >= 0)
            close(scratch->dup_fd);
        if (*rc == -EPERM)
            *rc = 1;
        return NULL;
    }
    return scratch;
}

static void disarm(coro_wait *w, coro_io *cio)
{
    cio->want = 0;
    if (cio == &w->home)
        return; /* lazy: the interest stays for the next wait (on_io drops it) */
    (void)ss__io_set(w->sched->loop, &cio->io, 0);
    if (cio->dup_fd >= 0)
        close(cio->dup_fd);
}

int ss__coro_wait_fd(int fd, short events, int64_t deadline)
{
    coro_wait *w = running_wait();
    if (w == NULL)
        return SS_EUSAGE;
    if (deadline >= 0 && ss__remaining_ms(deadline) == 0) {
        /* as poll() with 0 ms: ready or timed out */
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, 0);
        return n < 0 ? -errno : n > 0 ? 0 : SS_ETIMEOUT;
    }
    coro_io scratch;
    int rc;
    coro_io *armed = arm(w, &scratch, fd, events, &rc);
    if (armed == NULL)
        return rc > 0 ? 0 : rc;
    rc = park(w, deadline);
    disarm(w, armed);
    return rc;
}

#define POLL_ON_STACK 8

int ss__coro_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
    coro_wait *w = running_wait();
    if (w == NULL)
        return SS_EUSAGE;
    int64_t deadline = timeout_ms < 0 ? -1 : ss__now_ms() + timeout_ms;
    coro_io local[POLL_ON_STACK];
    coro_io *ios = nfds <= POLL_ON_STACK ? local : calloc(nfds, sizeof *ios);
    if (ios == NULL)
        return -ENOMEM;
    coro_io **armed = NULL;
    int rc = 0;
    for (;;) {
        /* A look first, as poll() would: what is ready returns at once
         * without a registration (they are level-triggered: a wait would
         * see it too, one turn later). */
        int n = poll(fds, nfds, 0);
        if (n != 0 || timeout_ms == 0) {
            rc = n < 0 ? -errno : n;
            break;
        }
        if (deadline >= 0 && ss__remaining_ms(deadline) == 0) {
            rc = 0;
            break;
        }
        coro_io *on_stack_armed[POLL_ON_STACK];
        armed = nfds <= POLL_ON_STACK ? on_stack_armed : calloc(nfds, sizeof *armed);
        if (armed == NULL) {
            rc = -ENOMEM;
            break;
        }
        bool always_ready = false;
        for (nfds_t i = 0; i < nfds; i++) {
            armed[i] = NULL;
            if (fds[i].fd < 0 || rc < 0 || always_ready)
                continue;
            int arc;
            armed[i] = arm(w, &ios[i], fds[i].fd, fds[i].events, &arc);
            if (armed[i] == NULL && arc > 0)
                always_ready = true;
            else if (armed[i] == NULL)
                rc = arc;
        }
        int prc = rc == 0 && !always_ready ? park(w, deadline) : 0;
        for (nfds_t i = 0; i < nfds; i++)
            if (armed[i] != NULL)
                disarm(w, armed[i]);
        if (armed != on_stack_armed)
            free(armed);
        armed = NULL;
        if (rc < 0)
            break;
        if (always_ready) {
            rc = (int)poll(fds, nfds, 0); /* a regular file is in the set: poll() says it is ready */
            if (rc < 0)
                rc = -errno;
            break;
        }
        if (prc == SS_ETIMEOUT) {
            for (nfds_t i = 0; i < nfds; i++)
                fds[i].revents = 0;
            rc = 0;
            break;
        }
        if (prc < 0) {
            rc = prc;
            break;
        }
        /* woken: the look at the top of the loop fills revents */
    }
    if (ios != local)
        free(ios);
    return rc;
}

void ss__coro_home_fd(int fd)
{
    coro_wait *w = running_wait();
    if (w == NULL)
        return;
    if (w->home.io.events != 0)
        (void)ss__io_set(w->sched->loop, &w->home.io, 0);
    w->home.io.fd = fd;
    w->home.io.events = 0;
    w->home.want = 0;
    w->home_hup = false;
}

int ss__coro_sleep_ms(int64_t ms)
{
    coro_wait *w = running_wait();
    if (w == NULL)
        return SS_EUSAGE;
    /* nothing armed: only the timer ends it */
    int rc = park(w, ss__now_ms() + (ms > 0 ? ms : 0));
    return rc == SS_ETIMEOUT ? 0 : rc;
}
