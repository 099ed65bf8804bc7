/* SPDX-License-Identifier: MIT */
/* model_pool.c — a fixed pool of threads fed by a bounded queue. While
 * every worker is busy and the queue is full the loop gives out nothing:
 * connections that have spoken wait in the acceptor (bounded by
 * max_pending, oldest cut first), so a burst of clients is served as
 * workers free up instead of being refused. A datagram that finds no room
 * waits in the socket's receive queue. */
#include "server_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct pool_state {
    pthread_mutex_t lock;
    pthread_cond_t work;
    ss__req **queue; /* ring of `cap` */
    int cap, head, count;
    bool stopping;
    pthread_t *threads;
    int nthreads; /* started */
    ss_server *srv;
} pool_state;

int ss__default_workers(ss_model m)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    if (m == SS_MODEL_POOL) /* blocking handlers wait on peers: over-subscribe */
        return cpus * 4 < 8 ? 8 : (int)(cpus * 4);
    return cpus < 2 ? 2 : (int)cpus; /* prefork, event: one per core */
}

static void *pool_worker(void *arg)
{
    pool_state *st = arg;
    ss_server *srv = st->srv;
    for (;;) {
        pthread_mutex_lock(&st->lock);
        while (st->count == 0 && !st->stopping)
            pthread_cond_wait(&st->work, &st->lock);
        if (st->count == 0) { /* stopping, and nothing left */
            pthread_mutex_unlock(&st->lock);
            return NULL;
        }
        ss__req *req = st->queue[st->head];
        bool was_full = st->count == st->cap;
        st->head = (st->head + 1) % st->cap;
        st->count--;
        pthread_mutex_unlock(&st->lock);
        if (was_full)
            ss__wake(srv); /* the loop may give out the next one */
        ss__req_run(srv, req);
        ss__req_end(srv, req, false);
    }
}

static void stop_workers(pool_state *st)
{
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_broadcast(&st->work);
    pthread_mutex_unlock(&st->lock);
    for (int i = 0; i < st->nthreads; i++)
        pthread_join(st->threads[i], NULL);
    st->nthreads = 0;
}

static void pool_destroy(ss_server *srv)
{
    pool_state *st = srv->model_state;
    if (st == NULL)
        return;
    stop_workers(st);
    pthread_cond_destroy(&st->work);
    pthread_mutex_destroy(&st->lock);
    free(st->queue);
    free(st->threads);
    free(st);
    srv->model_state = NULL;
}

static int pool_start(ss_server *srv, ss_error *err)
{
    int workers = srv->opts.workers > 0 ? srv->opts.workers
                                        : ss__default_workers(SS_MODEL_POOL);
    int cap = srv->opts.pool_queue > 0 ? srv->opts.pool_queue : 4 * workers;
    pool_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    srv->model_state = st;
    st->srv = srv;
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->work, NULL);
    st->cap = cap;
    st->queue = calloc((size_t)cap, sizeof *st->queue);
    st->threads = calloc((size_t)workers, sizeof *st->threads);
    if (st->queue == NULL || st->threads == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    for (int i = 0; i < workers; i++) {
        int rc = pthread_create(&st->threads[i], NULL, pool_worker, st);
        if (rc != 0)
            return ss__fail(err, -rc, "cannot start pool thread %d of %d: %s",
                            i + 1, workers, strerror(rc));
        st->nthreads++;
    }
    return 0;
}

static void pool_dispatch(ss_server *srv, ss__req *req)
{
    pool_state *st = srv->model_state;
    pthread_mutex_lock(&st->lock);
    bool queued = !st->stopping && st->count < st->cap;
    if (queued) {
        st->queue[(st->head + st->count) % st->cap] = req;
        st->count++;
        pthread_cond_signal(&st->work);
    }
    pthread_mutex_unlock(&st->lock);
    if (!queued) {
        atomic_fetch_add(&srv->counters.rejected, 1);
        ss_server_log(srv, SS_LOG_WARN, "%s rejected: pool queue full (%d)",
                      req->peer_text, st->cap);
        ss__req_end(srv, req, false);
    }
}

static bool pool_has_room(ss_server *srv)
{
    pool_state *st = srv->model_state;
    pthread_mutex_lock(&st->lock);
    bool room = st->count < st->cap;
    pthread_mutex_unlock(&st->lock);
    return room;
}

static void pool_abort(ss_server *srv)
{
    pool_state *st = srv->model_state;
    /* Queued requests never started: close them rather than serve them. */
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    ss__req *dropped = NULL; /* chained through `next`: no allocation */
    while (st->count > 0) {
        ss__req *r = st->queue[st->head];
        st->head = (st->head + 1) % st->cap;
        st->count--;
        r->pool_next = dropped;
        dropped = r;
    }
    pthread_cond_broadcast(&st->work);
    pthread_mutex_unlock(&st->lock);
    while (dropped != NULL) {
        ss__req *r = dropped;
        dropped = r->pool_next;
        ss__req_end(srv, r, false);
    }
    ss__shutdown_live(srv);
    stop_workers(st);
}

const ss__model_ops ss__model_pool = {
    .name = "pool",
    .start = pool_start,
    .dispatch = pool_dispatch,
    .has_room = pool_has_room,
    .drain = ss__drain_threads,
    .abort = pool_abort,
    .destroy = pool_destroy,
};
