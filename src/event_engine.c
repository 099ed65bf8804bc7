/* SPDX-License-Identifier: MIT */
/*
 * event_engine.c — the event model's engine: `workers` loops, each on its
 * own thread, serving one listening (or datagram) socket.
 *
 * The listener is shared: every loop polls the same descriptor with
 * EPOLLEXCLUSIVE, so the kernel wakes one loop per new client instead of
 * all of them, and a loop at its connection cap simply stops polling it
 * while the others go on taking clients from the one backlog. docs/event.md
 * has the measurement against one SO_REUSEPORT listener per loop.
 *
 * Everything a loop owns is touched only on its thread: the engine talks to
 * the loops by posting work (ss_loop_post) and waits for replies on a
 * condition variable. The user's on_open/on_close are wrapped to keep an
 * atomic count of open connections for drain; on_data and the rest go
 * straight to the user's functions.
 */
#include "event_engine.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct worker {
    ss__engine *e;
    int index;
    ss_loop *loop;
    pthread_t thread;
    bool started;
    ss_listener *listener;
    ss_dgram *dgram;
    int cap;         /* this loop's share of max_conns; 0 = none */
    atomic_int load; /* connections it serves or has been handed */
} worker;

struct ss__engine {
    struct ss_event_handler h; /* the user's, with on_open/on_close wrapped */
    const struct ss_event_handler *user_h;
    ss__engine_opts o;
    int n;
    worker *w;
    atomic_size_t conns;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int acks; /* loops that finished the posted job */
    int abort_reason;
    bool balanced; /* shared listener: accepted connections are spread */
};

/*
 * Fairness. With EPOLLEXCLUSIVE the kernel wakes the loops in a fixed order,
 * so the first loop to sleep takes nearly every client (measured: 50 of 50
 * connections on one of two loops). After each accept the accepting loop
 * therefore gives the connection to the least loaded loop when its own load
 * is more than one above it: a post (one eventfd write) per moved
 * connection, nothing per message. Loads are relaxed atomics: approximate
 * is enough.
 */
static ss_listener *pick_loop(void *arg, ss_listener *self)
{
    ss__engine *e = arg;
    worker *me = ss_loop_user(ss__listener_loop(self));
    worker *best = me;
    int best_load = atomic_load_explicit(&me->load, memory_order_relaxed);
    int mine = best_load;
    for (int i = 0; i < e->n; i++) {
        worker *w = &e->w[i];
        int load = atomic_load_explicit(&w->load, memory_order_relaxed);
        if (w->listener != NULL && load < best_load && (w->cap == 0 || load < w->cap)) {
            best = w;
            best_load = load;
        }
    }
    if (best != me && mine <= best_load + 1)
        best = me;
    atomic_fetch_add_explicit(&best->load, 1, memory_order_relaxed);
    return best->listener;
}

static void unpick_loop(void *arg, ss_listener *l)
{
    (void)arg;
    worker *w = ss_loop_user(ss__listener_loop(l));
    atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
}

static void wrapped_open(ss_conn *c)
{
    ss__engine *e = ((worker *)ss_loop_user(ss_conn_loop(c)))->e;
    atomic_fetch_add(&e->conns, 1);
    if (e->user_h->on_open != NULL)
        e->user_h->on_open(c);
}

static void wrapped_close(ss_conn *c, int reason)
{
    worker *w = ss_loop_user(ss_conn_loop(c));
    ss__engine *e = w->e;
    if (e->balanced)
        atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
    if (e->user_h->on_close != NULL)
        e->user_h->on_close(c, reason);
    if (atomic_fetch_sub(&e->conns, 1) == 1) {
        pthread_mutex_lock(&e->lock);
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
    }
}

typedef struct adopt_job {
    int fd;
    ss_addr peer;
} adopt_job;

static void adopt_run(ss_loop *loop, void *arg)
{
    adopt_job *j = arg;
    worker *w = ss_loop_user(loop);
    ss__listener_adopt(w->listener, j->fd, &j->peer);
    free(j);
}

int ss__engine_adopt(ss__engine *e, int fd, const ss_addr *peer)
{
    worker *w = &e->w[0];
    adopt_job *j = w->listener != NULL ? malloc(sizeof *j) : NULL;
    if (j == NULL) {
        close(fd);
        return w->listener != NULL ? -ENOMEM : SS_EUSAGE;
    }
    j->fd = fd;
    j->peer = *peer;
    /* as if the balancer had picked this loop: its close gives it back */
    if (e->balanced)
        atomic_fetch_add_explicit(&w->load, 1, memory_order_relaxed);
    if (ss_loop_post(w->loop, adopt_run, j) < 0) {
        if (e->balanced)
            atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
        close(fd);
        free(j);
        return -ENOMEM;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    if (w->e->o.loop_init != NULL)
        w->e->o.loop_init(w->loop, w->index, w->e->o.loop_arg);
    (void)ss_loop_run(w->loop);
    return NULL;
}

static int register_socket(ss__engine *e, worker *w, ss_error *err)
{
    const ss__engine_opts *o = &e->o;
    int fd = o->per_loop_fds != NULL ? o->per_loop_fds[w->index] : o->fd;
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
        return ss__fail(err, -errno, "cannot serve descriptor %d: %s", fd, ss_strerror(-errno));
    if (type == SOCK_DGRAM) {
        int rc = ss_loop_dgram(w->loop, fd, &e->h, o->max_packet, &w->dgram, err);
        if (rc == 0 && o->per_loop_fds == NULL && e->n > 1)
            ss__dgram_share(w->dgram);
        if (rc == 0 && o->held)
            ss__dgram_hold(w->dgram, true);
        return rc;
    }
    ss_listener_opts lo = {
        .idle_timeout = o->idle_timeout,
        .exclusive = o->per_loop_fds == NULL && e->n > 1,
        .verify = o->verify,
        .verify_arg = o->verify_arg,
        .unopened = o->unopened,
        .tls = o->tls,
        .handshake_timeout = o->handshake_timeout,
        .proxy_protocol = o->proxy_protocol,
        .proxy_timeout = o->proxy_timeout,
        .proxy_refused = o->proxy_refused,
    };
    if (o->max_conns > 0) {
        /* An even split; a loop whose share is 0 never polls the listener. */
        lo.max_conns = o->max_conns / e->n + (w->index < o->max_conns % e->n ? 1 : 0);
        w->cap = lo.max_conns;
        if (lo.max_conns == 0)
            return 0;
    }
    int rc = ss_loop_listen(w->loop, fd, &e->h, &lo, &w->listener, err);
    if (rc == 0)
        ss__listener_set_write_timeout(w->listener, o->write_timeout);
    if (rc == 0 && o->held)
        ss__listener_hold(w->listener, true);
    return rc;
}

int ss__engine_start(ss__engine **out, const ss__engine_opts *o, ss_error *err)
{
    *out = NULL;
    int n = o->workers;
    if (n <= 0) {
        /* the CPUs this process may run on (taskset, cgroups' cpusets),
         * not every CPU online: more loops than those only contend */
        cpu_set_t set;
        long cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                                  : sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    ss__engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return ss__fail(err, -ENOMEM, "cannot start the event engine: out of memory");
    e->w = calloc((size_t)n, sizeof *e->w);
    if (e->w == NULL) {
        free(e);
        return ss__fail(err, -ENOMEM, "cannot start the event engine: out of memory");
    }
    e->o = *o;
    e->n = n;
    e->user_h = o->handler;
    e->h = *o->handler;
    e->h.on_open = wrapped_open;
    e->h.on_close = wrapped_close;
    atomic_init(&e->conns, 0);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        worker *w = &e->w[i];
        w->e = e;
        w->index = i;
        atomic_init(&w->load, 0);
        /* the first loop decides auto; the others take what it got */
        ss_backend b = i == 0 ? o->backend : ss_loop_backend(e->w[0].loop);
        rc = ss_loop_new_backend(&w->loop, b, err);
        if (rc == 0) {
            ss_loop_set_user(w->loop, w);
            rc = register_socket(e, w, err);
        }
    }
    /* Every loop's listener exists before any thread runs: the balancer
     * reads w->listener from other threads, and it never changes while
     * they run (closing keeps the pointer; see do_stop_accepting). */
    e->balanced = rc == 0 && n > 1 && o->per_loop_fds == NULL && e->w[0].dgram == NULL;
    for (int i = 0; i < n && e->balanced; i++)
        if (e->w[i].listener != NULL)
            ss__listener_set_balancer(e->w[i].listener, pick_loop, unpick_loop, e);
    for (int i = 0; i < n && rc == 0; i++) {
        rc = -pthread_create(&e->w[i].thread, NULL, worker_main, &e->w[i]);
        if (rc < 0)
            ss__fail(err, rc, "cannot start event loop thread: %s", ss_strerror(rc));
        else
            e->w[i].started = true;
    }
    if (rc < 0) {
        ss__engine_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

/* ---- talking to the loops --------------------------------------------- */

static void ack(ss__engine *e)
{
    pthread_mutex_lock(&e->lock);
    e->acks++;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Post fn to every loop and wait until each has acked. */
static void on_every_loop(ss__engine *e, void (*fn)(ss_loop *loop, void *arg))
{
    pthread_mutex_lock(&e->lock);
    e->acks = 0;
    pthread_mutex_unlock(&e->lock);
    for (int i = 0; i < e->n; i++)
        if (!e->w[i].started || ss_loop_post(e->w[i].loop, fn, &e->w[i]) < 0)
            fn(NULL, &e->w[i]); /* cannot post: run it here, loop idle */
    pthread_mutex_lock(&e->lock);
    while (e->acks < e->n)
        pthread_cond_wait(&e->cond, &e->lock);
    pthread_mutex_unlock(&e->lock);
}

static void do_hold(ss_loop *loop, void *arg)
{
    (void)loop;
    worker *w = arg;
    if (w->listener != NULL)
        ss__listener_hold(w->listener, true);
    if (w->dgram != NULL)
        ss__dgram_hold(w->dgram, true);
    ack(w->e);
}

static void do_release(ss_loop *loop, void *arg)
{
    (void)loop;
    worker *w = arg;
    if (w->listener != NULL)
        ss__listener_hold(w->listener, false);
    if (w->dgram != NULL)
        ss__dgram_hold(w->dgram, false);
    ack(w->e);
}

void ss__engine_stop_accepting(ss__engine *e)
{
    on_every_loop(e, do_hold);
}
void ss__engine_start_accepting(ss__engine *e)
{
    on_every_loop(e, do_release);
}

bool ss__engine_drain(ss__engine *e, int64_t deadline)
{
    ss__engine_stop_accepting(e);
    pthread_mutex_lock(&e->lock);
    while (atomic_load(&e->conns) > 0) {
        int ms = ss__remaining_ms(deadline);
        if (ms == 0)
            break;
        if (ms < 0) {
            pthread_cond_wait(&e->cond, &e->lock);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += ms / 1000;
            ts.tv_nsec += (long)(ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&e->cond, &e->lock, &ts);
        }
    }
    pthread_mutex_unlock(&e->lock);
    return atomic_load(&e->conns) == 0;
}

static void do_abort(ss_loop *loop, void *arg)
{
    worker *w = arg;
    if (loop != NULL) { /* else the loop is not running: free closes them */
        ss__conns_close_all(loop, w->e->abort_reason);
        ss__loop_run_deferred(loop); /* on_close before the ack */
    }
    ack(w->e);
}

void ss__engine_abort(ss__engine *e, int reason)
{
    /* Written before the posts; the post queue's mutex orders it before
     * the loops read it. */
    e->abort_reason = reason;
    on_every_loop(e, do_abort);
}

void ss__engine_free(ss__engine *e)
{
    if (e == NULL)
        return;
    for (int i = 0; i < e->n; i++)
        if (e->w[i].started)
            ss_loop_stop(e->w[i].loop);
    for (int i = 0; i < e->n; i++)
        if (e->w[i].started)
            pthread_join(e->w[i].thread, NULL);
    /* The threads are gone: the loops are ours to close and free. */
    for (int i = 0; i < e->n; i++)
        ss_loop_free(e->w[i].loop); /* closes listeners, conns (on_close) */
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e->w);
    free(e);
}

size_t ss__engine_conns(const ss__engine *e)
{
    return atomic_load(&e->conns);
}
int ss__engine_workers(const ss__engine *e)
{
    return e->n;
}
ss_backend ss__engine_backend(const ss__engine *e)
{
    return ss_loop_backend(e->w[0].loop);
}
const char *ss__engine_fallback(const ss__engine *e)
{
    return ss__loop_fallback(e->w[0].loop);
}
void *ss__engine_user_of(ss_loop *loop)
{
    return ((worker *)ss_loop_user(loop))->e->o.user;
}
ss_loop *ss__engine_loop(ss__engine *e, int index)
{
    return e->w[index].loop;
}
ss_dgram *ss__engine_dgram(ss__engine *e, int index)
{
    return e->w[index].dgram;
}
