/* model_prefork.c — N worker processes share the listener (or datagram
 * socket), each serving one request at a time, like Apache's prefork MPM.
 * serve_forever in the parent only supervises: it restarts a worker that
 * dies, and on shutdown closes the stop pipe, after which every worker
 * finishes the request in hand and exits. server_close waits for them up to
 * drain_timeout, then SIGTERM/SIGKILL. handle_request serves one request in
 * the calling process. */
#include "server_children.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A worker that dies sooner than this after its start is restarted only
 * after the same delay: a handler that crashes at once must not turn the
 * supervisor into a fork bomb. */
#define RESPAWN_MIN_LIFE_MS 1000

typedef struct prefork_state {
    ss__children kids;
    int nworkers;
    int stop_rd, stop_wr; /* workers poll stop_rd; closing stop_wr stops them */
    int64_t *respawn_at;  /* per slot: 0 = running, else when to restart */
} prefork_state;

static int prefork_start(ss_server *srv, ss_error *err)
{
    prefork_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    srv->model_state = st;
    st->stop_rd = st->stop_wr = -1;
    st->nworkers = srv->opts.workers > 0 ? srv->opts.workers
                                         : ss__default_workers(SS_MODEL_PREFORK);
    /* old workers may still drain while a new serve_forever starts others */
    if (ss__children_init(&st->kids, 2 * st->nworkers) < 0 ||
        (st->respawn_at = calloc((size_t)st->nworkers, sizeof(int64_t))) == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    return 0;
}

static void close_stop_pipe(prefork_state *st)
{
    if (st->stop_wr >= 0)
        close(st->stop_wr);
    if (st->stop_rd >= 0)
        close(st->stop_rd);
    st->stop_rd = st->stop_wr = -1;
}

static void worker_main(ss_server *srv, prefork_state *st)
{
    ss__enter_child(srv);
    close(st->stop_wr); /* so the parent's death alone also stops us */
    int rc;
    while ((rc = ss__serve_one_inline(srv, st->stop_rd)) >= 0)
        ;
    if (rc != SS_ESHUTDOWN)
        ss_server_log(srv, SS_LOG_ERROR, "%s: worker %ld cannot go on: %s",
                      srv->addr_text, (long)getpid(), ss_strerror(rc));
    _exit(rc == SS_ESHUTDOWN ? 0 : 1);
}

static int spawn(ss_server *srv, prefork_state *st, int slot)
{
    pid_t pid = fork();
    if (pid < 0) {
        ss_server_log(srv, SS_LOG_ERROR, "%s: cannot fork worker %d: %s",
                      srv->addr_text, slot, strerror(errno));
        st->respawn_at[slot] = ss__now_ms() + RESPAWN_MIN_LIFE_MS;
        return -errno;
    }
    if (pid == 0)
        worker_main(srv, st);
    st->respawn_at[slot] = 0;
    ss__children_add(&st->kids, pid, slot);
    return 0;
}

typedef struct exit_ctx {
    ss_server *srv;
    prefork_state *st;
    bool supervising; /* an exit now is unexpected: restart the worker */
} exit_ctx;

static void worker_exited(void *arg, const ss__child *child, int status)
{
    exit_ctx *x = arg;
    if (!x->supervising)
        return;
    int64_t now = ss__now_ms();
    if (WIFSIGNALED(status))
        ss_server_log(x->srv, SS_LOG_WARN,
                      "%s: worker %ld killed by signal %d, restarting",
                      x->srv->addr_text, (long)child->pid, WTERMSIG(status));
    else
        ss_server_log(x->srv, SS_LOG_WARN,
                      "%s: worker %ld exited with status %d, restarting",
                      x->srv->addr_text, (long)child->pid, WEXITSTATUS(status));
    x->st->respawn_at[child->slot] =
        now - child->started_ms < RESPAWN_MIN_LIFE_MS ? now + RESPAWN_MIN_LIFE_MS
                                                      : now;
}

static int prefork_serve(ss_server *srv)
{
    prefork_state *st = srv->model_state;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    st->stop_rd = p[0];
    st->stop_wr = p[1];
    exit_ctx x = {srv, st, true};
    int64_t now = ss__now_ms();
    for (int i = 0; i < st->nworkers; i++)
        st->respawn_at[i] = now; /* due now */

    struct pollfd *pfd = malloc((size_t)(1 + st->kids.cap) * sizeof *pfd);
    if (pfd == NULL) {
        close_stop_pipe(st);
        return -ENOMEM;
    }
    while (!ss__shutdown_requested(srv)) {
        ss__children_reap(&st->kids, worker_exited, &x);
        now = ss__now_ms();
        int timeout = -1;
        for (int i = 0; i < st->nworkers; i++) {
            if (st->respawn_at[i] == 0)
                continue;
            if (st->respawn_at[i] <= now)
                spawn(srv, st, i);
            if (st->respawn_at[i] != 0) {
                int wait = (int)(st->respawn_at[i] - now);
                timeout = timeout < 0 || wait < timeout ? (wait < 1 ? 1 : wait)
                                                        : timeout;
            }
        }
        int n = 0, tick = -1;
        pfd[n++] = (struct pollfd){.fd = srv->wake_fd, .events = POLLIN};
        n += ss__children_pollfds(&st->kids, pfd + n, st->kids.cap, &tick);
        if (tick > 0 && (timeout < 0 || tick < timeout))
            timeout = tick;
        if (srv->opts.service_actions != NULL && (timeout < 0 || timeout > 500))
            timeout = 500;
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents != 0)
            ss__wake_consume(srv);
        if (srv->opts.service_actions != NULL)
            srv->opts.service_actions(srv);
    }
    free(pfd);
    /* Workers see the pipe's end, finish the request in hand and exit. */
    close_stop_pipe(st);
    x.supervising = false;
    ss__children_reap(&st->kids, NULL, NULL);
    return 0;
}

static void prefork_dispatch(ss_server *srv, ss__req *req)
{
    ss__req_run(srv, req);
    ss__req_end(srv, req, false);
}

static bool prefork_drain(ss_server *srv, int64_t deadline)
{
    prefork_state *st = srv->model_state;
    close_stop_pipe(st);
    return ss__children_wait(&st->kids, deadline, NULL, NULL);
}

static void prefork_abort(ss_server *srv)
{
    prefork_state *st = srv->model_state;
    close_stop_pipe(st);
    ss__children_stop(&st->kids, NULL, NULL);
}

static void prefork_destroy(ss_server *srv)
{
    prefork_state *st = srv->model_state;
    if (st == NULL)
        return;
    if (!atomic_load(&srv->in_child) && st->kids.kids != NULL)
        ss__children_stop(&st->kids, NULL, NULL);
    close_stop_pipe(st);
    ss__children_free(&st->kids);
    free(st->respawn_at);
    free(st);
    srv->model_state = NULL;
}

const ss__model_ops ss__model_prefork = {
    .name = "prefork",
    .start = prefork_start,
    .serve = prefork_serve,
    .dispatch = prefork_dispatch,
    .drain = prefork_drain,
    .abort = prefork_abort,
    .destroy = prefork_destroy,
};
