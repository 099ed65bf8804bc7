/* SPDX-License-Identifier: MIT */
/*
 * model_event.c — SS_MODEL_EVENT: the server core's socket served by the
 * event engine (event_engine.c): `workers` loops (epoll or io_uring,
 * opts.backend) on their own threads.
 *
 * Stream servers run the callbacks of opts.event. Datagram servers run
 * opts.event->on_packet, or without opts.event the blocking handler, one
 * packet per handle() call, on the loop that received it. A stream server
 * without opts.event never gets here: a blocking handle() would stall every
 * connection of its loop, so server.c gives it the core's acceptor (an
 * epoll set, connections wait there for their first byte) and a thread per
 * request, as SS_MODEL_THREADING; the coroutine model will run such
 * handlers on the loops.
 *
 * Admission (server_admit.c) runs on the loops: access rules, max_per_ip
 * and verify_request at accept (with proxy_protocol: once the connection's
 * PROXY header is in, on the address it carries), access rules and
 * reply_rate per datagram.
 *
 * Lifetime, mapped onto socketserver's:
 *   ss_server_new      start: the loops run, the socket registered but held
 *   serve_forever      serve: accept on every loop; this thread only waits
 *                      for shutdown (and runs service_actions every 0.5 s)
 *   shutdown           serve holds the socket again and returns; accepted
 *                      connections go on being served
 *   server_close       drain: wait until they end, at most drain_timeout;
 *                      abort: close what is left (on_close: SS_ESHUTDOWN)
 *   ss_server_free     destroy: stop and free the loops
 */
#include "event_engine.h"
#include "server_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVICE_ACTIONS_MS 500 /* Python's poll_interval */

typedef struct event_state {
    ss_server *srv;
    ss__engine *engine;
    /* the user's callbacks with on_open/on_close wrapped for the server's
     * count and log (on_data and the rest go straight to the user) */
    struct ss_event_handler h;
    const struct ss_event_handler *user;
} event_state;

static event_state *state_of_loop(ss_loop *loop)
{
    return ss__engine_user_of(loop);
}

static void log_peer(ss_server *srv, ss_log_level level, const ss_addr *peer, const char *what)
{
    if (!ss__log_wanted(srv, level))
        return; /* skip the formatting: nobody reads it */
    char text[SS_ADDR_STRLEN];
    if (ss_addr_format(peer, text, sizeof text) < 0)
        strcpy(text, "(unnamed)");
    ss_server_log(srv, level, "%s %s", text, what);
}

static void on_open(ss_conn *c)
{
    event_state *st = state_of_loop(ss_conn_loop(c));
    atomic_fetch_add(&st->srv->counters.accepted, 1);
    ss__active_add(st->srv, 1);
    log_peer(st->srv, SS_LOG_DEBUG, ss_conn_peer(c), "connected"); /* -v: the close line */
    if (st->user->on_open != NULL)
        st->user->on_open(c);
}

static void on_close(ss_conn *c, int reason)
{
    event_state *st = state_of_loop(ss_conn_loop(c));
    if (st->user->on_close != NULL)
        st->user->on_close(c, reason);
    ss__peer_key key; /* taken in verify() for every connection opened */
    if (st->srv->per_ip != NULL && ss__peer_key_of(ss_conn_peer(c), &key))
        ss__admit_release(st->srv, &key);
    const char *what = reason == 0              ? "closed"
                       : reason == SS_ETIMEOUT  ? "timed out (idle, or not reading), closed"
                       : reason == SS_ESHUTDOWN ? "cut off by shutdown"
                                                : ss_strerror(reason);
    uint64_t bytes_in, bytes_out;
    int64_t age_ms;
    ss__conn_counts(c, &bytes_in, &bytes_out, &age_ms);
    char line[160];
    snprintf(line, sizeof line, "%s after %.3fs, %" PRIu64 " bytes in, %" PRIu64 " out", what,
             (double)age_ms / 1000.0, bytes_in, bytes_out);
    log_peer(st->srv, reason == 0 || reason == SS_ETIMEOUT ? SS_LOG_INFO : SS_LOG_WARN,
             ss_conn_peer(c), line);
    ss__active_add(st->srv, -1);
}

/* A datagram for the blocking handler: setup/handle/finish on this loop. */
static void on_packet_blocking(ss_dgram *d, const void *data, size_t len, const ss_addr *from)
{
    event_state *st = state_of_loop(ss_dgram_loop(d));
    ss__req *req;
    if (ss__req_from_packet(st->srv, data, len, from, false, &req) < 0) {
        ss_server_log(st->srv, SS_LOG_ERROR, "%s: cannot start a request: out of memory",
                      st->srv->addr_text);
        return;
    }
    ss__req_run(st->srv, req);
    ss__req_end(st->srv, req, false);
}

/* A datagram passes the admission checks before either kind of handler. */
static void on_packet_admitted(ss_dgram *d, const void *data, size_t len, const ss_addr *from)
{
    event_state *st = state_of_loop(ss_dgram_loop(d));
    if (!ss__admit_packet(st->srv, from))
        return;
    if (st->user->on_packet != NULL)
        st->user->on_packet(d, data, len, from);
    else
        on_packet_blocking(d, data, len, from);
}

/* At accept, on the loop: access rules, max_per_ip (released by on_close),
 * verify_request. */
static bool verify(void *arg, int fd, const ss_addr *peer)
{
    ss_server *srv = arg;
    ss__peer_key key;
    bool holds;
    return ss__admit_conn(srv, fd, peer, &key, &holds) == 0;
}

/* A connection verify() admitted closed before on_open (its TLS handshake
 * failed or timed out): give back its max_per_ip slot, count, say why. */
static void unopened(void *arg, const ss_addr *peer, int reason, const char *why)
{
    ss_server *srv = arg;
    ss__peer_key key;
    if (srv->per_ip != NULL && ss__peer_key_of(peer, &key))
        ss__admit_release(srv, &key);
    if (srv->opts.tls != NULL && reason != SS_ESHUTDOWN)
        atomic_fetch_add(&srv->counters.tls_failed, 1);
    char text[SS_ADDR_STRLEN];
    if (srv->opts.log != NULL) {
        if (ss_addr_format(peer, text, sizeof text) < 0)
            strcpy(text, "(unnamed)");
        ss_server_log(srv, SS_LOG_INFO, "%s closed, %s", text, why);
    }
}

/* A connection that never sent a valid PROXY header (proxy_protocol):
 * counted as the acceptor counts it under the other models. */
static void proxy_refused(void *arg, const ss_addr *peer, int reason, const char *why)
{
    ss_server *srv = arg;
    if (reason == SS_EPROTO) {
        if (srv->opts.log != NULL) {
            char text[SS_ADDR_STRLEN];
            ss__addr_text(peer, text, sizeof text);
            ss_server_log(srv, SS_LOG_DEBUG, "%s: no valid PROXY header: %s", text, why);
        }
        atomic_fetch_add(&srv->counters.bad_header, 1);
        ss__refusal_note(srv, SS__REFUSED_BAD_HEADER); /* may write the summary */
    } else if (reason == SS_ETIMEOUT) {
        atomic_fetch_add(&srv->counters.timed_out, 1);
        ss__refusal_note(srv, SS__REFUSED_SILENT);
    }
}

static int event_start(ss_server *srv, ss_error *err)
{
    const struct ss_event_handler *user = srv->opts.event;
    if (srv->stream && user == NULL)
        return ss__fail(err, SS_EUNSUPPORTED,
                        "%s: the event model serves stream sockets through callbacks "
                        "(opts.event); a blocking handler needs the threading, pool, "
                        "forking or prefork model",
                        srv->addr_text);
    if (!srv->stream && user != NULL && user->on_packet == NULL)
        return ss__fail(err, SS_EUSAGE, "%s: opts.event has no on_packet for a datagram socket",
                        srv->addr_text);
    event_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ss__fail(err, -ENOMEM, "%s: out of memory", srv->addr_text);
    st->srv = srv;
    srv->model_state = st;
    if (user != NULL) {
        st->user = user;
        st->h = *user;
    } else {
        static const struct ss_event_handler none = {0};
        st->user = &none;
    }
    if (!srv->stream)
        st->h.on_packet = on_packet_admitted;
    if (srv->stream) {
        st->h.on_open = on_open;
        st->h.on_close = on_close;
    }
    ss__engine_opts eo = {
        .workers = srv->opts.workers,
        .fd = srv->sock.fd,
        .handler = &st->h,
        .max_conns = srv->opts.max_conns,
        .idle_timeout = srv->opts.idle_timeout,
        .write_timeout = srv->opts.write_timeout,
        .max_packet = srv->opts.max_packet_size,
        .verify = srv->stream ? verify : NULL,
        .verify_arg = srv,
        .unopened = srv->stream ? unopened : NULL,
        .tls = srv->stream ? srv->opts.tls : NULL,
        .handshake_timeout = srv->opts.handshake_timeout,
        .proxy_protocol = srv->opts.proxy_protocol,
        /* the header is the connection's handshake */
        .proxy_timeout = srv->opts.handshake_timeout > 0 ? srv->opts.handshake_timeout : -1,
        .proxy_refused = proxy_refused,
        .backend = srv->opts.backend,
        .held = true,
        .user = st,
    };
    int rc = ss__engine_start(&st->engine, &eo, err);
    if (rc == 0 && ss__engine_fallback(st->engine) != NULL)
        ss_server_log(srv, SS_LOG_WARN, "%s: io_uring is not available (%s): using epoll",
                      srv->addr_text, ss__engine_fallback(st->engine));
    return rc;
}

static int event_serve(ss_server *srv)
{
    event_state *st = srv->model_state;
    ss__engine_start_accepting(st->engine);
    int64_t next_actions = ss__now_ms() + SERVICE_ACTIONS_MS;
    while (!ss__shutdown_requested(srv)) {
        int ms = -1;
        if (srv->opts.service_actions != NULL) {
            ms = ss__remaining_ms(next_actions);
            if (ms == 0) {
                srv->opts.service_actions(srv);
                next_actions = ss__now_ms() + SERVICE_ACTIONS_MS;
                continue;
            }
        }
        if (ss__refusal_due(srv) && (ms < 0 || ms > 1000))
            ms = 1000; /* the loops note refusals; the summary is written here */
        struct pollfd p = {.fd = srv->wake_fd, .events = POLLIN};
        if (poll(&p, 1, ms) > 0)
            ss__wake_consume(srv);
        ss__refusal_flush(srv, false);
    }
    /* From here no loop touches the socket: server_close may close it. */
    ss__engine_stop_accepting(st->engine);
    return 0;
}

/* handle_request's packet for the callbacks: on_packet must run on a loop
 * (it replies through that loop's ss_dgram), so it goes to the first one. */
typedef struct packet_job {
    event_state *st;
    ss_addr from;
    size_t len;
    unsigned char data[];
} packet_job;

static void packet_run(ss_loop *loop, void *arg)
{
    packet_job *j = arg;
    ss_dgram *d = ss__engine_dgram(j->st->engine, 0);
    if (d != NULL)
        j->st->user->on_packet(d, j->data, j->len, &j->from);
    (void)loop;
    free(j);
}

static void post_packet(ss_server *srv, event_state *st, const ss__req *req)
{
    packet_job *j = malloc(sizeof *j + (req->pub.packet_len ? req->pub.packet_len : 1));
    if (j == NULL) {
        ss_server_log(srv, SS_LOG_ERROR, "%s: packet dropped: out of memory", srv->addr_text);
        return;
    }
    j->st = st;
    j->from = req->pub.client_address;
    j->len = req->pub.packet_len;
    memcpy(j->data, req->pub.packet, req->pub.packet_len);
    if (ss_loop_post(ss__engine_loop(st->engine, 0), packet_run, j) < 0)
        free(j);
}

/* handle_request (the core's own accept path) under the event model: a
 * datagram runs the blocking handler inline; a stream connection is handed
 * to the first loop's listener, which serves it as one it accepted (its
 * TLS handshake first, its timeouts). */
static void event_dispatch(ss_server *srv, ss__req *req)
{
    event_state *st = srv->model_state;
    if (!srv->stream) {
        if (st->user->on_packet != NULL)
            post_packet(srv, st, req);
        else
            ss__req_run(srv, req);
        ss__req_end(srv, req, false);
        return;
    }
    /* the loop's connection releases the max_per_ip slot when it closes
     * (or its unopened hook, when it never opens) */
    req->holds_key = false;
    int fd = fcntl(req->conn.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0 || ss__engine_adopt(st->engine, fd, &req->pub.client_address) < 0) {
        ss_server_log(srv, SS_LOG_ERROR, "%s: cannot hand the connection to a loop: %s",
                      req->peer_text, fd < 0 ? strerror(errno) : "out of memory");
        req->holds_key = true; /* nobody else will release it */
    }
    /* the request's copy goes without a shutdown: the loop has the socket */
    ss__req_end(srv, req, true);
}

static bool event_drain(ss_server *srv, int64_t deadline)
{
    event_state *st = srv->model_state;
    return st == NULL || st->engine == NULL || ss__engine_drain(st->engine, deadline);
}

static void event_abort(ss_server *srv)
{
    event_state *st = srv->model_state;
    if (st != NULL && st->engine != NULL)
        ss__engine_abort(st->engine, SS_ESHUTDOWN);
}

static void event_destroy(ss_server *srv)
{
    event_state *st = srv->model_state;
    if (st == NULL)
        return;
    ss__engine_free(st->engine);
    free(st);
    srv->model_state = NULL;
}

const ss__model_ops ss__model_event = {
    .name = "event",
    .start = event_start,
    .serve = event_serve,
    .dispatch = event_dispatch,
    .drain = event_drain,
    .abort = event_abort,
    .destroy = event_destroy,
};
