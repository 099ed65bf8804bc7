/* SPDX-License-Identifier: MIT */
/*
 * model_coroutine.c — SS_MODEL_COROUTINE: the blocking handler of threading,
 * each request a coroutine on one of `workers` event loops (threads; epoll
 * or io_uring; default: one per usable CPU).
 *
 * The accept path is the core's, as for every model (server_accept.c: access
 * rules, max_per_ip, verify_request at accept; the first byte or the PROXY
 * header before a connection becomes a request; max_pending, max_conns).
 * dispatch() posts the ready request to the loop with the fewest requests;
 * that loop starts a coroutine which runs ss__req_run (the TLS handshake,
 * setup, handle, finish) and ss__req_end. Whenever the handler's library
 * call would block (coro_sched.c: ss__wait_fd and ss_sleep look at
 * ss__coro_current()), the coroutine yields and the loop runs the others.
 * Datagrams are requests too (the core receives and copies each packet), so
 * a datagram handler may sleep or wait as well.
 *
 * Lifetime: drain waits for `active` to reach 0 as threading does; abort
 * shuts the live connections down (each waiting coroutine wakes to end of
 * file or an error and returns) and waits again; destroy stops the loops.
 */
#include "coro.h"
#include "event_internal.h"
#include "server_internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct coro_loop {
    struct coro_state *st;
    ss_loop *loop;
    ss__sched *sched;
    pthread_t tid;
    bool started;
    atomic_size_t load; /* requests posted to or running on this loop */
    int init_rc;        /* the thread's set-up result */
    pthread_mutex_t init_lock;
    pthread_cond_t init_cond;
    bool init_done;
} coro_loop;

typedef struct coro_state {
    ss_server *srv;
    int nloops;
    coro_loop *loops;
} coro_state;

typedef struct coro_job {
    coro_loop *cl;
    ss__req *req;
} coro_job;

static size_t stack_size_of(const ss_server *srv)
{
    return srv->opts.coro_stack_size != 0 ? srv->opts.coro_stack_size : SS__CORO_STACK_DEFAULT;
}

/* The default number of loops: one per CPU this process may run on
 * (taskset, a cgroup's cpuset), as the event model has it. A loop is busy
 * exactly when its coroutines have work, so more loops than CPUs only
 * contend, and the max(2, online CPUs) of before put two loops on a
 * one-CPU container. */
static int usable_cpus(void)
{
    cpu_set_t set;
    long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                         : sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void *loop_thread(void *arg)
{
    coro_loop *cl = arg;
    int rc = ss__sched_new(&cl->sched, cl->loop, stack_size_of(cl->st->srv));
    pthread_mutex_lock(&cl->init_lock);
    cl->init_rc = rc;
    cl->init_done = true;
    pthread_cond_signal(&cl->init_cond);
    pthread_mutex_unlock(&cl->init_lock);
    if (rc < 0)
        return NULL;
    (void)ss_loop_run(cl->loop);
    /* every request has ended (destroy comes after the drain) */
    ss__sched_free(cl->sched);
    cl->sched = NULL;
    return NULL;
}

static void request_body(void *arg)
{
    coro_job *job = arg;
    coro_loop *cl = job->cl;
    ss__req *req = job->req;
    ss_server *srv = cl->st->srv;
    free(job);
    if (req->conn.fd >= 0)
        ss__coro_home_fd(req->conn.fd);
    ss__req_run(srv, req);
    ss__coro_home_fd(-1); /* out of epoll before ss__req_end closes it */
    ss__req_end(srv, req, false);
    atomic_fetch_sub(&cl->load, 1);
}

/* On the loop's thread: the request becomes a coroutine and runs until its
 * first wait. */
static void start_request(ss_loop *loop, void *arg)
{
    coro_job *job = arg;
    coro_loop *cl = job->cl;
    (void)loop;
    if (cl->sched != NULL && ss__sched_spawn(cl->sched, request_body, job) == 0)
        return;
    /* out of memory for its stack (or the loop is being freed): it ends
     * unserved, as a threading request whose thread cannot start */
    ss_server *srv = cl->st->srv;
    ss_server_log(srv, SS_LOG_ERROR, "%s: cannot start a coroutine: out of memory",
                  job->req->peer_text);
    ss__req_end(srv, job->req, false);
    atomic_fetch_sub(&cl->load, 1);
    free(job);
}

static void coroutine_dispatch(ss_server *srv, ss__req *req)
{
    coro_state *st = srv->model_state;
    coro_loop *best = &st->loops[0];
    for (int i = 1; i < st->nloops; i++)
        if (atomic_load_explicit(&st->loops[i].load, memory_order_relaxed) <
            atomic_load_explicit(&best->load, memory_order_relaxed))
            best = &st->loops[i];
    coro_job *job = malloc(sizeof *job);
    if (job != NULL) {
        job->cl = best;
        job->req = req;
        atomic_fetch_add(&best->load, 1);
        if (ss_loop_post(best->loop, start_request, job) == 0)
            return;
        atomic_fetch_sub(&best->load, 1);
        free(job);
    }
    ss_server_log(srv, SS_LOG_ERROR, "%s: cannot hand the request to a loop: out of memory",
                  req->peer_text);
    ss__req_end(srv, req, false);
}

static void stop_loops(coro_state *st)
{
    for (int i = 0; i < st->nloops; i++)
        if (st->loops[i].started)
            ss_loop_stop(st->loops[i].loop);
    for (int i = 0; i < st->nloops; i++) {
        coro_loop *cl = &st->loops[i];
        if (cl->started)
            pthread_join(cl->tid, NULL);
        cl->started = false;
    }
}

static void coroutine_destroy(ss_server *srv)
{
    coro_state *st = srv->model_state;
    if (st == NULL)
        return;
    stop_loops(st);
    for (int i = 0; i < st->nloops; i++) {
        coro_loop *cl = &st->loops[i];
        ss_loop_free(cl->loop); /* posts still queued run now: sched is NULL */
        pthread_cond_destroy(&cl->init_cond);
        pthread_mutex_destroy(&cl->init_lock);
    }
    free(st->loops);
    free(st);
    srv->model_state = NULL;
}

static int coroutine_start(ss_server *srv, ss_error *err)
{
    if (srv->opts.event != NULL)
        return ss__fail(err, SS_EUSAGE,
                        "%s: opts.event is the event model's; the coroutine model runs "
                        "the blocking handler",
                        srv->addr_text);
    size_t stack = srv->opts.coro_stack_size;
    if (stack != 0 && (stack < SS__CORO_STACK_MIN || stack > SS__CORO_STACK_MAX))
        return ss__fail(err, SS_EUSAGE, "coro_stack_size must be 16 KiB to 64 MiB (got %zu)",
                        stack);
    coro_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    srv->model_state = st;
    st->srv = srv;
    st->nloops = srv->opts.workers > 0 ? srv->opts.workers : usable_cpus();
    st->loops = calloc((size_t)st->nloops, sizeof *st->loops);
    if (st->loops == NULL) {
        st->nloops = 0;
        return ss__fail(err, -ENOMEM, "out of memory");
    }
    for (int i = 0; i < st->nloops; i++) {
        coro_loop *cl = &st->loops[i];
        cl->st = st;
        pthread_mutex_init(&cl->init_lock, NULL);
        pthread_cond_init(&cl->init_cond, NULL);
        int rc = ss_loop_new_backend(&cl->loop, srv->opts.backend, err);
        if (rc < 0)
            return rc;
    }
    for (int i = 0; i < st->nloops; i++) {
        coro_loop *cl = &st->loops[i];
        int rc = pthread_create(&cl->tid, NULL, loop_thread, cl);
        if (rc != 0)
            return ss__fail(err, -rc, "cannot start a loop thread: %s", strerror(rc));
        cl->started = true;
        pthread_mutex_lock(&cl->init_lock);
        while (!cl->init_done)
            pthread_cond_wait(&cl->init_cond, &cl->init_lock);
        pthread_mutex_unlock(&cl->init_lock);
        if (cl->init_rc < 0)
            return ss__fail(err, cl->init_rc, "cannot set up a coroutine loop: %s",
                            ss_strerror(cl->init_rc));
    }
    return 0;
}

static void coroutine_abort(ss_server *srv)
{
    ss__shutdown_live(srv);
    (void)ss__drain_threads(srv, -1);
}

const ss__model_ops ss__model_coroutine = {
    .name = "coroutine",
    .start = coroutine_start,
    .dispatch = coroutine_dispatch,
    .drain = ss__drain_threads,
    .abort = coroutine_abort,
    .destroy = coroutine_destroy,
};
