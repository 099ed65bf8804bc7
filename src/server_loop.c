/* SPDX-License-Identifier: MIT */
/* server_loop.c — the loop behind serve_forever and handle_request
 * (socketserver's _handle_request_noblock, turned inside out): wait for the
 * listener, the acceptor's silent connections and the model's descriptors;
 * accept into the acceptor (server_accept.c); give each connection that
 * has spoken to the model while it has room (process_request). Also
 * shutdown, which ends the loop. */
#include "server_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Connections accepted per wake-up before the loop looks at its other
 * descriptors again (bounded work per turn, HAProxy's maxaccept). */
#define ACCEPT_BATCH 16
/* Python's serve_forever poll_interval: only used to keep calling
 * service_actions when one is set; shutdown never waits for it. */
#define SERVICE_TICK_MS 500
/* How soon a refusal summary that is due gets written. */
#define REFUSAL_TICK_MS 1000

/* How long a request waits for a task before it is dropped, and how often
 * it is tried meanwhile (doubling from the first to the last). */
#define DEFER_LIMIT_MS 10000
#define DEFER_FIRST_MS 10
#define DEFER_MAX_MS 200

static bool has_room(ss_server *srv)
{
    if (srv->deferred != NULL)
        return false; /* it goes first */
    if (srv->stream && srv->opts.max_conns > 0 &&
        atomic_load(&srv->active) >= (size_t)srv->opts.max_conns)
        return false;
    return srv->model->has_room == NULL || srv->model->has_room(srv);
}

static int min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static int grow_pollset(ss_server *srv, int want)
{
    if (want <= srv->pfd_cap)
        return 0;
    struct pollfd *p = realloc(srv->pfd, (size_t)want * sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    srv->pfd = p;
    srv->pfd_cap = want;
    return 0;
}

/* ---- a request that waits for a task ----------------------------------
 *
 * fork() and pthread_create() fail with EAGAIN when the tasks run out
 * (RLIMIT_NPROC, a pids cgroup, threads-max). That is usually brief: the
 * requests being served end and give theirs back. Closing the connection
 * would lose a client to a passing shortage, so the model hands the
 * request back; the loop holds that one, gives out nothing else (the rest
 * wait in the acceptor, bounded by max_pending as ever), and tries it
 * again with a back-off. Past DEFER_LIMIT_MS it is dropped with a line.
 */

bool ss__req_defer(ss_server *srv, ss__req *req, const char *what, int e)
{
    if ((e != EAGAIN && e != ENOMEM) || srv->deferred != NULL)
        return false;
    int64_t now = ss__now_ms();
    if (req != srv->retrying) {
        srv->deferred_since = now;
        srv->deferred_backoff_ms = DEFER_FIRST_MS;
        ss_server_log(srv, SS_LOG_WARN, "%s: %s: %s; it waits for one to end", req->peer_text,
                      what, strerror(e));
    } else if (now - srv->deferred_since >= DEFER_LIMIT_MS) {
        return false;
    } else if (srv->deferred_backoff_ms < DEFER_MAX_MS) {
        srv->deferred_backoff_ms *= 2;
    }
    srv->deferred = req;
    srv->deferred_retry_at = now + srv->deferred_backoff_ms;
    return true;
}

void ss__deferred_drop(ss_server *srv)
{
    ss__req *req = srv->deferred;
    srv->deferred = NULL;
    if (req != NULL)
        ss__req_end(srv, req, false);
}

/* Give the held request again once its back-off is over. Returns 1 when
 * the model took it, 0 when it is still held (or there is none). */
static int dispatch_deferred(ss_server *srv)
{
    ss__req *req = srv->deferred;
    if (req == NULL || ss__now_ms() < srv->deferred_retry_at)
        return 0;
    srv->deferred = NULL;
    if (!has_room(srv)) { /* e.g. max_children: wait for that as usual */
        srv->deferred = req;
        return 0;
    }
    srv->retrying = req;
    srv->model->dispatch(srv, req);
    srv->retrying = NULL;
    return srv->deferred == req ? 0 : 1;
}

/* Give ready connections (or, for datagrams, nothing: they are taken as
 * they come) to the model while it has room. Returns how many. */
static int dispatch_ready(ss_server *srv, int budget)
{
    int given = dispatch_deferred(srv);
    while (given < budget && !ss__shutdown_requested(srv) && ss__acceptor_has_ready(srv) &&
           has_room(srv)) {
        ss__req *req;
        if (ss__acceptor_take(srv, &req) == 0)
            break;
        given++;
        if (req != NULL)
            srv->model->dispatch(srv, req);
    }
    return given;
}

static int receive_packets(ss_server *srv, int budget)
{
    bool copy = srv->model != &ss__model_serial;
    int taken = 0;
    while (taken < budget && !ss__shutdown_requested(srv) && has_room(srv)) {
        ss__req *req;
        int rc = ss__receive_packet(srv, copy, &req);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        taken++;
        if (req != NULL)
            srv->model->dispatch(srv, req);
    }
    return taken;
}

/*
 * One turn of the loop: wait until something happens or `deadline` passes,
 * then accept, collect, expire, and give out at most `budget` requests.
 * Returns how many were given (> 0), 0 when woken with nothing given,
 * SS_ETIMEOUT, SS_ESHUTDOWN, or a fatal code.
 */
static int serve_turn(ss_server *srv, int64_t deadline, int budget)
{
    if (ss__shutdown_requested(srv))
        return SS_ESHUTDOWN;
    if (srv->model->reap != NULL)
        srv->model->reap(srv);
    int rc = grow_pollset(srv, 3 + srv->model_nfds);
    if (rc < 0)
        return rc;
    /* a connection may have become ready while the model had no room */
    if (srv->stream) {
        int given = dispatch_ready(srv, budget);
        if (given > 0)
            return given;
    } else if (dispatch_deferred(srv) > 0) {
        return 1;
    }

    struct pollfd *pfd = srv->pfd;
    int n = 0, listen_at = -1, pending_at = -1, timeout = -1;
    pfd[n++] = (struct pollfd){.fd = srv->wake_fd, .events = POLLIN};
    int64_t now = ss__now_ms();
    bool paused = srv->accept_resume_at > now;
    if (paused)
        timeout = (int)(srv->accept_resume_at - now);
    else if (srv->stream || has_room(srv)) {
        /* streams: always accept (into the acceptor, bounded by
         * max_pending); datagrams: only with room for the packet */
        listen_at = n;
        pfd[n++] = (struct pollfd){.fd = srv->sock.fd, .events = POLLIN};
    }
    if (srv->acceptor.epfd >= 0 && srv->acceptor.nwaiting > 0) {
        pending_at = n;
        pfd[n++] = (struct pollfd){.fd = srv->acceptor.epfd, .events = POLLIN};
        timeout = min_timeout(timeout, ss__acceptor_timeout(srv, now));
    }
    int first_model = n, tick = -1;
    if (srv->model->pollfds != NULL)
        n += srv->model->pollfds(srv, pfd + n, srv->pfd_cap - n, &tick);
    timeout = min_timeout(timeout, tick > 0 ? tick : -1);
    timeout = min_timeout(timeout, ss__remaining_ms(deadline));
    if (srv->opts.service_actions != NULL)
        timeout = min_timeout(timeout, SERVICE_TICK_MS);
    if (ss__refusal_due(srv))
        timeout = min_timeout(timeout, REFUSAL_TICK_MS);
    if (srv->deferred != NULL)
        timeout = min_timeout(timeout, srv->deferred_retry_at > now
                                           ? (int)(srv->deferred_retry_at - now)
                                           : 0);

    int ready = poll(pfd, (nfds_t)n, timeout);
    if (ready < 0)
        return errno == EINTR ? 0 : -errno;
    if (pfd[0].revents != 0)
        ss__wake_consume(srv);
    if (ss__shutdown_requested(srv))
        return SS_ESHUTDOWN;
    for (int i = first_model; i < n && srv->model->reap != NULL; i++) {
        if (pfd[i].revents != 0) {
            srv->model->reap(srv);
            break;
        }
    }
    int given = 0;
    if (srv->stream) {
        if (listen_at >= 0 && pfd[listen_at].revents != 0) {
            rc = ss__acceptor_accept(srv, ACCEPT_BATCH);
            if (rc < 0)
                return rc;
        }
        if (pending_at >= 0 && pfd[pending_at].revents != 0)
            ss__acceptor_collect(srv);
        ss__acceptor_expire(srv, ss__now_ms());
        given = dispatch_ready(srv, budget);
    } else if (listen_at >= 0 && pfd[listen_at].revents != 0) {
        given = receive_packets(srv, budget);
        if (given < 0)
            return given;
    }
    ss__refusal_flush(srv, false);
    if (given > 0)
        return given;
    if (deadline >= 0 && ss__remaining_ms(deadline) == 0)
        return SS_ETIMEOUT;
    return 0;
}

int ss__serve_one_inline(ss_server *srv, int stop_fd)
{
    struct pollfd pfd[2];
    int n = 0, listen_at = -1, timeout = -1;
    pfd[n++] = (struct pollfd){.fd = stop_fd, .events = POLLIN};
    listen_at = n;
    pfd[n++] = (struct pollfd){.fd = srv->sock.fd, .events = POLLIN};
    if (srv->opts.service_actions != NULL)
        timeout = min_timeout(timeout, SERVICE_TICK_MS);
    if (ss__refusal_due(srv))
        timeout = min_timeout(timeout, REFUSAL_TICK_MS);
    int ready = poll(pfd, (nfds_t)n, timeout);
    if (ready < 0)
        return errno == EINTR ? 0 : -errno;
    if (pfd[0].revents != 0)
        return SS_ESHUTDOWN;
    if (pfd[listen_at].revents != 0) {
        ss__req *req;
        int rc = ss__receive_packet(srv, false, &req);
        if (rc < 0)
            return rc;
        if (req != NULL) {
            ss__req_run(srv, req);
            ss__req_end(srv, req, false);
        }
    }
    ss__refusal_flush(srv, false);
    if (srv->opts.service_actions != NULL)
        srv->opts.service_actions(srv);
    return 0;
}

static int begin_serving(ss_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    int rc = srv->closed ? SS_ECLOSED : srv->serving ? SS_EBUSY : 0;
    if (rc == 0) {
        srv->serving = true;
        srv->serving_thread = pthread_self();
    }
    pthread_mutex_unlock(&srv->lock);
    if (rc == 0)
        ss__notify_ready(srv); /* the listener is up: clients wait at most in the backlog */
    return rc;
}

static void end_serving(ss_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    /* a shutdown request is consumed by the loop that honoured it */
    atomic_store(&srv->shutdown_req, 0);
    srv->serving = false;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
}

int ss_server_serve_forever(ss_server *srv)
{
    int rc = begin_serving(srv);
    if (rc < 0)
        return rc;
    rc = srv->model->serve != NULL ? srv->model->serve(srv) : ss__serve_generic(srv);
    end_serving(srv);
    return rc;
}

int ss__serve_generic(ss_server *srv)
{
    for (;;) {
        int rc = serve_turn(srv, -1, ACCEPT_BATCH);
        if (rc == SS_ESHUTDOWN)
            return 0;
        if (rc < 0 && rc != SS_ETIMEOUT) {
            ss_server_log(srv, SS_LOG_ERROR, "%s: cannot go on serving: %s", srv->addr_text,
                          ss_strerror(rc));
            return rc;
        }
        if (srv->opts.service_actions != NULL)
            srv->opts.service_actions(srv);
    }
}

int ss_server_handle_request(ss_server *srv)
{
    int rc = begin_serving(srv);
    if (rc < 0)
        return rc;
    int64_t deadline = ss__deadline(srv->opts.timeout);
    do
        rc = serve_turn(srv, deadline, 1);
    while (rc == 0);
    end_serving(srv);
    if (rc == SS_ETIMEOUT && srv->opts.handle_timeout != NULL)
        srv->opts.handle_timeout(srv);
    return rc > 0 ? 0 : rc;
}

void ss_server_shutdown_nowait(ss_server *srv)
{
    atomic_store_explicit(&srv->shutdown_req, 1, memory_order_relaxed);
    ss__wake(srv);
}

void ss_server_abort(ss_server *srv)
{
    ss__shutdown_live(srv);
}

void ss_server_shutdown(ss_server *srv)
{
    ss_server_shutdown_nowait(srv);
    pthread_mutex_lock(&srv->lock);
    if (!(srv->serving && pthread_equal(srv->serving_thread, pthread_self())))
        while (srv->serving)
            pthread_cond_wait(&srv->cond, &srv->lock);
    pthread_mutex_unlock(&srv->lock);
}
