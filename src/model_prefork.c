/* SPDX-License-Identifier: MIT */
/*
 * model_prefork.c — N worker processes, each serving one request at a time,
 * like Apache's prefork MPM.
 *
 * Stream sockets: the parent is the acceptor. It runs the core's loop
 * (accept, admission, wait for the first byte) and hands each connection
 * that has spoken to an idle worker over the worker's control socket
 * (SCM_RIGHTS); the worker serves it and answers one byte, "done". Workers
 * never accept themselves: a worker that took connections off a shared
 * listener would sit on the silent ones while busy with another (two silent
 * peers locked a two-worker server out), and a burst would wake the wrong
 * ones. With one acceptor, a connection waits for *any* idle worker.
 *
 * Datagram sockets: every worker receives from the shared socket and
 * answers each packet itself; the parent only supervises.
 *
 * Either way the parent restarts a worker that dies (not faster than once a
 * second per worker: a handler that crashes at once must not make a fork
 * bomb), and server_close drains: idle workers see their control socket
 * (or the stop pipe) close and exit; busy ones finish first; past
 * drain_timeout they get SIGTERM, then SIGKILL.
 */
#include "server_children.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define RESPAWN_MIN_LIFE_MS 1000

typedef struct worker_slot {
    pid_t pid;         /* 0: not running */
    int ctl;           /* parent's end of the control socket (streams); -1 */
    bool busy;         /* serving a connection we handed it */
    ss__peer_key key;  /* that connection's max_per_ip slot */
    bool holds_key;
    int64_t respawn_at; /* 0 = running or not wanted; else when to start */
} worker_slot;

typedef struct prefork_state {
    ss__children kids;
    int nworkers;
    worker_slot *slots;
    bool stopping;        /* drain/abort began: restart nobody */
    int stop_rd, stop_wr; /* datagram workers poll stop_rd */
    unsigned access_seen; /* datagram: rules the workers were started with */
} prefork_state;

/* What travels with the descriptor to a worker. */
typedef struct handoff {
    ss_addr peer;
    int64_t accepted_ms;
    bool proxied;
    ss_addr local; /* proxied: the header's destination */
} handoff;

static void want_all_workers(prefork_state *st);

static int prefork_start(ss_server *srv, ss_error *err)
{
    prefork_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    srv->model_state = st;
    st->stop_rd = st->stop_wr = -1;
    st->nworkers = srv->opts.workers > 0 ? srv->opts.workers
                                         : ss__default_workers(SS_MODEL_PREFORK);
    /* old workers may still drain while new ones start */
    if (ss__children_init(&st->kids, 2 * st->nworkers) < 0 ||
        (st->slots = calloc((size_t)st->nworkers, sizeof *st->slots)) == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    for (int i = 0; i < st->nworkers; i++)
        st->slots[i].ctl = -1;
    srv->model_nfds = 3 * st->nworkers; /* control sockets + pidfds */
    if (srv->stream) /* started by the first loop turn (serve_forever or
                        handle_request) */
        want_all_workers(st);
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

/* ---- the worker's side ------------------------------------------------------ */

/* Receive one connection: 1 with *fd and *h, 0 at the end (the parent
 * closed our control socket), or a code. */
static int receive_conn(int ctl, int *fd, handoff *h)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = h, .iov_len = sizeof *h};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
    ssize_t n;
    do
        n = recvmsg(ctl, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n == 0 ? 0 : -errno;
    *fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    if (*fd < 0 || (size_t)n != sizeof *h) {
        if (*fd >= 0)
            close(*fd);
        return -EPROTO;
    }
    return 1;
}

static void stream_worker_main(ss_server *srv, prefork_state *st, int ctl)
{
    for (;;) {
        int fd = -1;
        handoff h;
        int rc = receive_conn(ctl, &fd, &h);
        if (rc <= 0)
            _exit(rc == 0 ? 0 : 1);
        ss_sock conn = {fd, srv->addr.kind, srv->sock.family, SS_TIMEOUT_NONE};
        ss__conn_info info = {.peer = h.peer, .accepted_ms = h.accepted_ms, .proxied = h.proxied,
                              .local = h.local};
        ss__req *req;
        if (ss__req_from_conn(srv, &conn, &info, &req) == 0) {
            ss__req_run(srv, req);
            ss__req_end(srv, req, false);
        }
        (void)!send(ctl, "d", 1, MSG_NOSIGNAL);
    }
    (void)st;
}

static void dgram_worker_main(ss_server *srv, prefork_state *st)
{
    close(st->stop_wr); /* so the parent's death alone also stops us */
    int rc;
    while ((rc = ss__serve_one_inline(srv, st->stop_rd)) >= 0)
        ;
    if (rc != SS_ESHUTDOWN)
        ss_server_log(srv, SS_LOG_ERROR, "%s: worker %ld cannot go on: %s", srv->addr_text,
                      (long)getpid(), ss_strerror(rc));
    _exit(rc == SS_ESHUTDOWN ? 0 : 1);
}

/* ---- the parent's side ------------------------------------------------------ */

static void spawn(ss_server *srv, prefork_state *st, int slot)
{
    worker_slot *w = &st->slots[slot];
    int sv[2] = {-1, -1};
    if (srv->stream && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        ss_server_log(srv, SS_LOG_ERROR, "%s: cannot make a control socket for worker %d: %s",
                      srv->addr_text, slot, strerror(errno));
        w->respawn_at = ss__now_ms() + RESPAWN_MIN_LIFE_MS;
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        ss_server_log(srv, SS_LOG_ERROR, "%s: cannot fork worker %d: %s", srv->addr_text, slot,
                      strerror(errno));
        w->respawn_at = ss__now_ms() + RESPAWN_MIN_LIFE_MS;
        if (sv[0] >= 0) {
            close(sv[0]);
            close(sv[1]);
        }
        return;
    }
    if (pid == 0) {
        ss__enter_child(srv);
        /* nothing of the parent's bookkeeping belongs in a worker: other
         * workers' control sockets and pidfds */
        for (int i = 0; i < st->nworkers; i++)
            if (st->slots[i].ctl >= 0)
                close(st->slots[i].ctl);
        for (int i = 0; i < st->kids.n; i++)
            if (st->kids.kids[i].pidfd >= 0)
                close(st->kids.kids[i].pidfd);
        if (srv->stream) {
            ss_sock_close(&srv->sock); /* the parent accepts */
            close(sv[0]);
            stream_worker_main(srv, st, sv[1]);
        }
        dgram_worker_main(srv, st);
    }
    if (sv[1] >= 0) {
        close(sv[1]);
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
    }
    w->pid = pid;
    w->ctl = sv[0];
    w->busy = false;
    w->respawn_at = 0;
    ss__children_add(&st->kids, pid, slot);
}

/* A worker's connection is over (done, or the worker is gone). */
static void slot_idle(ss_server *srv, worker_slot *w)
{
    if (!w->busy)
        return;
    w->busy = false;
    if (w->holds_key)
        ss__admit_release(srv, &w->key);
    w->holds_key = false;
    ss__active_add(srv, -1);
}

static void worker_exited(void *arg, const ss__child *child, int status)
{
    ss_server *srv = arg;
    prefork_state *st = srv->model_state;
    worker_slot *w = &st->slots[child->slot];
    if (w->pid != child->pid)
        return; /* a worker of an earlier generation, already replaced */
    if (w->ctl >= 0)
        close(w->ctl);
    w->ctl = -1;
    w->pid = 0;
    slot_idle(srv, w);
    if (st->stopping || ss__shutdown_requested(srv))
        return;
    if (WIFSIGNALED(status))
        ss_server_log(srv, SS_LOG_WARN, "%s: worker %ld killed by signal %d, restarting",
                      srv->addr_text, (long)child->pid, WTERMSIG(status));
    else
        ss_server_log(srv, SS_LOG_WARN, "%s: worker %ld exited with status %d, restarting",
                      srv->addr_text, (long)child->pid, WEXITSTATUS(status));
    int64_t now = ss__now_ms();
    w->respawn_at = now - child->started_ms < RESPAWN_MIN_LIFE_MS ? now + RESPAWN_MIN_LIFE_MS : now;
}

/* Start the workers that are due; returns ms until the next one is (-1). */
static int spawn_due(ss_server *srv, prefork_state *st)
{
    if (st->stopping)
        return -1;
    int64_t now = ss__now_ms();
    int next = -1;
    for (int i = 0; i < st->nworkers; i++) {
        worker_slot *w = &st->slots[i];
        if (w->respawn_at == 0)
            continue;
        if (w->respawn_at <= now)
            spawn(srv, st, i);
        if (w->respawn_at != 0) {
            int wait = (int)(w->respawn_at - now);
            wait = wait < 1 ? 1 : wait;
            next = next < 0 || wait < next ? wait : next;
        }
    }
    return next;
}

static void want_all_workers(prefork_state *st)
{
    int64_t now = ss__now_ms();
    for (int i = 0; i < st->nworkers; i++)
        if (st->slots[i].pid == 0)
            st->slots[i].respawn_at = now;
}

/* ---- streams: the core's loop with these hooks -------------------------- */

static void read_done(ss_server *srv, worker_slot *w)
{
    char b[16];
    ssize_t n;
    while ((n = recv(w->ctl, b, sizeof b, MSG_DONTWAIT)) > 0)
        slot_idle(srv, w);
    if (n == 0) { /* the worker is going: hand it nothing more; its pidfd
                     tells when it is gone */
        close(w->ctl);
        w->ctl = -1;
        slot_idle(srv, w);
    }
}

static void prefork_reap(ss_server *srv)
{
    prefork_state *st = srv->model_state;
    if (!srv->stream)
        return;
    for (int i = 0; i < st->nworkers; i++)
        if (st->slots[i].ctl >= 0)
            read_done(srv, &st->slots[i]);
    ss__children_reap(&st->kids, worker_exited, srv);
    spawn_due(srv, st);
}

static int prefork_pollfds(ss_server *srv, struct pollfd *p, int max, int *tick_ms)
{
    prefork_state *st = srv->model_state;
    if (!srv->stream)
        return 0;
    int n = 0;
    for (int i = 0; i < st->nworkers && n < max; i++)
        if (st->slots[i].ctl >= 0)
            p[n++] = (struct pollfd){.fd = st->slots[i].ctl, .events = POLLIN};
    n += ss__children_pollfds(&st->kids, p + n, max - n, tick_ms);
    int next = spawn_due(srv, st);
    if (next > 0 && (*tick_ms <= 0 || next < *tick_ms))
        *tick_ms = next;
    return n;
}

static bool prefork_has_room(ss_server *srv)
{
    prefork_state *st = srv->model_state;
    if (!srv->stream)
        return true;
    for (int i = 0; i < st->nworkers; i++)
        if (st->slots[i].ctl >= 0 && !st->slots[i].busy)
            return true;
    return false;
}

static int hand_over(worker_slot *w, ss__req *req)
{
    handoff h;
    memset(&h, 0, sizeof h);
    h.peer = req->pub.client_address;
    h.accepted_ms = req->started_ms;
    h.proxied = req->proxied;
    h.local = req->proxied_local;
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = &h, .iov_len = sizeof h};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &req->conn.fd, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(w->ctl, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof h ? 0 : -errno;
}

static void prefork_dispatch(ss_server *srv, ss__req *req)
{
    prefork_state *st = srv->model_state;
    if (!srv->stream) { /* handle_request: one packet, here */
        ss__req_run(srv, req);
        ss__req_end(srv, req, false);
        return;
    }
    for (int i = 0; i < st->nworkers; i++) {
        worker_slot *w = &st->slots[i];
        if (w->ctl < 0 || w->busy)
            continue;
        if (hand_over(w, req) < 0)
            continue; /* dying worker: its pidfd will say so; try the next */
        w->busy = true;
        ss__active_add(srv, 1); /* the worker's job counts as the request */
        w->holds_key = req->holds_key;
        w->key = req->key;
        req->holds_key = false;
        ss__req_end(srv, req, true); /* our copy goes; the worker has it */
        return;
    }
    ss_server_log(srv, SS_LOG_ERROR, "%s: no worker could take it", req->peer_text);
    ss__req_end(srv, req, false);
}

/* ---- datagrams: a supervisor loop of our own ---------------------------- */

static int start_dgram_generation(prefork_state *st)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    close_stop_pipe(st); /* the old generation finishes and exits */
    st->stop_rd = p[0];
    st->stop_wr = p[1];
    for (int i = 0; i < st->nworkers; i++)
        st->slots[i].pid = 0; /* their exits are an old generation's now */
    want_all_workers(st);
    return 0;
}

static int serve_datagrams(ss_server *srv, prefork_state *st)
{
    st->access_seen = atomic_load(&srv->access_generation);
    int rc = start_dgram_generation(st);
    if (rc < 0)
        return rc;
    struct pollfd *pfd = malloc((size_t)(1 + st->kids.cap) * sizeof *pfd);
    if (pfd == NULL) {
        close_stop_pipe(st);
        return -ENOMEM;
    }
    while (!ss__shutdown_requested(srv)) {
        ss__children_reap(&st->kids, worker_exited, srv);
        /* workers hold the rules they were forked with: new rules, new
         * workers (the old ones finish the packet in hand) */
        unsigned gen = atomic_load(&srv->access_generation);
        if (gen != st->access_seen && st->kids.n <= st->nworkers) {
            /* (one generation drains at a time: room for both in kids) */
            st->access_seen = gen;
            if (start_dgram_generation(st) < 0)
                break;
        }
        int timeout = spawn_due(srv, st);
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
    close_stop_pipe(st); /* workers finish the packet in hand and exit */
    ss__children_reap(&st->kids, worker_exited, srv);
    return 0;
}

static int prefork_serve(ss_server *srv)
{
    prefork_state *st = srv->model_state;
    st->stopping = false;
    if (!srv->stream)
        return serve_datagrams(srv, st);
    want_all_workers(st);
    spawn_due(srv, st);
    return ss__serve_generic(srv);
}

/* ---- the end ------------------------------------------------------------------- */

static void stop_handing_out(prefork_state *st)
{
    st->stopping = true;
    close_stop_pipe(st);
    /* an idle worker reads the end of its control socket and exits; a busy
     * one finishes its connection first */
    for (int i = 0; i < st->nworkers; i++) {
        if (st->slots[i].ctl >= 0)
            shutdown(st->slots[i].ctl, SHUT_WR);
    }
}

static bool prefork_drain(ss_server *srv, int64_t deadline)
{
    prefork_state *st = srv->model_state;
    stop_handing_out(st);
    return ss__children_wait(&st->kids, deadline, worker_exited, srv);
}

static void prefork_abort(ss_server *srv)
{
    prefork_state *st = srv->model_state;
    stop_handing_out(st);
    ss__children_stop(&st->kids, worker_exited, srv);
}

static void prefork_destroy(ss_server *srv)
{
    prefork_state *st = srv->model_state;
    if (st == NULL)
        return;
    if (!atomic_load(&srv->in_child) && st->kids.kids != NULL) {
        stop_handing_out(st);
        ss__children_stop(&st->kids, worker_exited, srv);
    }
    close_stop_pipe(st);
    for (int i = 0; st->slots != NULL && i < st->nworkers; i++)
        if (st->slots[i].ctl >= 0)
            close(st->slots[i].ctl);
    ss__children_free(&st->kids);
    free(st->slots);
    free(st);
    srv->model_state = NULL;
}

const ss__model_ops ss__model_prefork = {
    .name = "prefork",
    .start = prefork_start,
    .serve = prefork_serve,
    .dispatch = prefork_dispatch,
    .has_room = prefork_has_room,
    .pollfds = prefork_pollfds,
    .reap = prefork_reap,
    .drain = prefork_drain,
    .abort = prefork_abort,
    .destroy = prefork_destroy,
};
