/* SPDX-License-Identifier: MIT */
/* model_threading.c — ThreadingMixIn: a thread per request. Threads are kept
 * joinable and joined as they end (Python 3.7+'s _threads list), so a
 * long-running server does not pile them up; server_close waits for them
 * unless daemon_threads or !block_on_close, and ss_server_free always does
 * (the threads use the server's memory). */
#include "server_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct worker {
    pthread_t tid;
    ss_server *srv;
    ss__req *req;
    atomic_bool done;
    struct worker *next;
} worker;

typedef struct threading_state {
    worker *threads; /* guarded by srv->lock */
} threading_state;

static int threading_start(ss_server *srv, ss_error *err)
{
    threading_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    srv->model_state = st;
    return 0;
}

static void *run_request(void *arg)
{
    worker *w = arg;
    ss_server *srv = w->srv;
    ss__req_run(srv, w->req);
    ss__req_end(srv, w->req, false);
    atomic_store(&w->done, true);
    ss__wake(srv); /* let the loop join us soon */
    return NULL;
}

static void threading_dispatch(ss_server *srv, ss__req *req)
{
    threading_state *st = srv->model_state;
    worker *w = calloc(1, sizeof *w);
    int rc = w == NULL ? ENOMEM : 0;
    if (w != NULL) {
        w->srv = srv;
        w->req = req;
        pthread_mutex_lock(&srv->lock);
        rc = pthread_create(&w->tid, NULL, run_request, w);
        if (rc == 0) {
            w->next = st->threads;
            st->threads = w;
        }
        pthread_mutex_unlock(&srv->lock);
    }
    if (rc != 0) {
        free(w);
        if (ss__req_defer(srv, req, "cannot start a thread", rc))
            return;
        ss_server_log(srv, SS_LOG_ERROR, "%s: cannot start a thread: %s",
                      req->peer_text, strerror(rc));
        ss__req_end(srv, req, false);
    }
}

/* Join the threads in `list` that are done (all of them if `all`). */
static void join_threads(ss_server *srv, bool all)
{
    threading_state *st = srv->model_state;
    worker *finished = NULL;
    pthread_mutex_lock(&srv->lock);
    for (worker **p = &st->threads; *p != NULL;) {
        worker *w = *p;
        if (all || atomic_load(&w->done)) {
            *p = w->next;
            w->next = finished;
            finished = w;
        } else {
            p = &w->next;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    while (finished != NULL) {
        worker *w = finished;
        finished = w->next;
        pthread_join(w->tid, NULL);
        free(w);
    }
}

static void threading_reap(ss_server *srv) { join_threads(srv, false); }

static void threading_abort(ss_server *srv)
{
    ss__shutdown_live(srv);
    join_threads(srv, true);
}

static void threading_destroy(ss_server *srv)
{
    if (srv->model_state != NULL)
        join_threads(srv, true);
    free(srv->model_state);
    srv->model_state = NULL;
}

const ss__model_ops ss__model_threading = {
    .name = "threading",
    .start = threading_start,
    .dispatch = threading_dispatch,
    .reap = threading_reap,
    .drain = ss__drain_threads,
    .abort = threading_abort,
    .destroy = threading_destroy,
};
