/* SPDX-License-Identifier: MIT */
/* model_forking.c — ForkingMixIn: a child process per request, at most
 * max_children at once. At the limit the loop stops polling the listener and
 * waits on the children's pidfds instead (Python blocks in waitpid; we stay
 * responsive to shutdown). Children are reaped the moment they exit. */
#include "server_children.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int forking_start(ss_server *srv, ss_error *err)
{
    ss__children *c = calloc(1, sizeof *c);
    if (c == NULL || ss__children_init(c, srv->opts.max_children) < 0) {
        free(c);
        return ss__fail(err, -ENOMEM, "out of memory");
    }
    srv->model_state = c;
    srv->model_nfds = srv->opts.max_children;
    return 0;
}

static void child_exited(void *arg, const ss__child *child, int status)
{
    ss_server *srv = arg;
    if (child->holds_key)
        ss__admit_release(srv, &child->key);
    if (WIFSIGNALED(status))
        ss_server_log(srv, SS_LOG_WARN, "%s: child %ld killed by signal %d",
                      srv->addr_text, (long)child->pid, WTERMSIG(status));
    ss__active_add(srv, -1);
}

static void forking_dispatch(ss_server *srv, ss__req *req)
{
    ss__children *c = srv->model_state;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        if (ss__req_defer(srv, req, "cannot fork", e))
            return;
        ss_server_log(srv, SS_LOG_ERROR, "%s: cannot fork: %s", req->peer_text, strerror(e));
        ss__req_end(srv, req, false);
        return;
    }
    if (pid == 0) {
        ss__enter_child(srv);
        if (srv->stream) /* a datagram child replies through the socket */
            ss_sock_close(&srv->sock);
        ss__req_run(srv, req);
        ss__req_end(srv, req, false);
        _exit(0);
    }
    ss__active_add(srv, 1); /* the child counts as the request from now on */
    ss__child *kid = ss__children_add(c, pid, 0);
    if (kid != NULL && req->holds_key) { /* its max_per_ip slot goes with it */
        kid->key = req->key;
        kid->holds_key = true;
        req->holds_key = false;
    }
    ss__req_end(srv, req, true);
}

static bool forking_has_room(ss_server *srv)
{
    ss__children *c = srv->model_state;
    return c->n < srv->opts.max_children;
}

static int forking_pollfds(ss_server *srv, struct pollfd *p, int max,
                           int *tick_ms)
{
    return ss__children_pollfds(srv->model_state, p, max, tick_ms);
}

static void forking_reap(ss_server *srv)
{
    ss__children_reap(srv->model_state, child_exited, srv);
}

static bool forking_drain(ss_server *srv, int64_t deadline)
{
    return ss__children_wait(srv->model_state, deadline, child_exited, srv);
}

static void forking_abort(ss_server *srv)
{
    ss__children_stop(srv->model_state, child_exited, srv);
}

static void forking_destroy(ss_server *srv)
{
    ss__children *c = srv->model_state;
    if (c == NULL)
        return;
    if (!atomic_load(&srv->in_child))
        ss__children_stop(c, child_exited, srv);
    ss__children_free(c);
    free(c);
    srv->model_state = NULL;
}

const ss__model_ops ss__model_forking = {
    .name = "forking",
    .start = forking_start,
    .dispatch = forking_dispatch,
    .has_room = forking_has_room,
    .pollfds = forking_pollfds,
    .reap = forking_reap,
    .drain = forking_drain,
    .abort = forking_abort,
    .destroy = forking_destroy,
};
