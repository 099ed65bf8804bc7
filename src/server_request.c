/* SPDX-License-Identifier: MIT */
/* server_request.c — one request's life: built from an accepted connection or
 * a received packet, run through setup -> handle -> finish (Python's
 * BaseRequestHandler), then closed, logged and freed. Every model uses these,
 * so the handler contract is the same under all of them. */
#include "server_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a datagram reply may wait for room in the socket's send queue
 * (a unixgram peer that does not read fills it): bounded, never forever. */
#define DGRAM_REPLY_WAIT_S 5.0

static void registry_add(ss_server *srv, ss__req *req)
{
    pthread_mutex_lock(&srv->lock);
    req->prev = NULL;
    req->next = srv->live;
    if (srv->live != NULL)
        srv->live->prev = req;
    srv->live = req;
    req->registered = true;
    pthread_mutex_unlock(&srv->lock);
}

static void registry_remove(ss_server *srv, ss__req *req)
{
    pthread_mutex_lock(&srv->lock);
    if (req->registered) {
        if (req->prev != NULL)
            req->prev->next = req->next;
        else
            srv->live = req->next;
        if (req->next != NULL)
            req->next->prev = req->prev;
        req->registered = false;
    }
    pthread_mutex_unlock(&srv->lock);
}

/* Text for the peer in log lines. Unix clients rarely bind a name, so an
 * unnamed one is shown by its process id (SO_PEERCRED), which is what an
 * operator can act on -- unless a PROXY header named it: the socket's
 * process is then the proxy. */
static void peer_text(ss_server *srv, ss__req *req, const ss_addr *peer, bool proxied)
{
    int n = ss_addr_format(peer, req->peer_text, sizeof req->peer_text);
    bool unnamed = n < 0 || (req->peer_text[0] != '\0' &&
                             req->peer_text[strlen(req->peer_text) - 1] == ':');
    if (!unnamed)
        return;
    if (proxied) {
        snprintf(req->peer_text, sizeof req->peer_text, "%s:(unnamed)",
                 ss_addr_kind_name(peer->kind));
        return;
    }
    const char *scheme = ss_addr_kind_name(srv->addr.kind);
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (req->conn.fd >= 0 &&
        getsockopt(req->conn.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
        snprintf(req->peer_text, sizeof req->peer_text, "%s:(pid %ld)", scheme,
                 (long)cred.pid);
    else
        snprintf(req->peer_text, sizeof req->peer_text, "%s:(unnamed)", scheme);
}

static void evict_oldest_pending(ss_server *srv);

int ss__req_from_conn(ss_server *srv, ss_sock *conn, const ss__conn_info *info,
                      ss__req **out)
{
    *out = NULL;
    const ss_addr *peer = &info->peer;
    ss__req *req = calloc(1, sizeof *req);
    if (req == NULL) {
        if (info->holds_key)
            ss__admit_release(srv, &info->key);
        ss_sock_close(conn);
        return -ENOMEM;
    }
    req->conn = *conn;
    conn->fd = -1;
    req->key = info->key;
    req->holds_key = info->holds_key;
    req->proxied = info->proxied;
    if (info->proxied)
        req->proxied_local = info->local;
    peer_text(srv, req, peer, info->proxied);

    /* TLS state is made here (no I/O); the handshake runs on the worker,
     * in ss__req_run, so the acceptor never does a client's crypto. */
    int rc = srv->opts.tls != NULL
                 ? ss_tls_transport_new(&req->transport, srv->opts.tls, req->conn.fd, NULL, NULL)
                 : ss_transport_fd_init(&req->transport, req->conn.fd);
    if (rc == 0) {
        /* idle_timeout is the stream's per-operation timeout: a read that
         * waits longer returns SS_ETIMEOUT and the handler returns. */
        ss_stream_opts so = {0};
        so.timeout = srv->opts.idle_timeout > 0 ? srv->opts.idle_timeout
                                                : SS_TIMEOUT_NONE;
        so.write_timeout = srv->opts.write_timeout > 0 ? srv->opts.write_timeout
                                                       : SS_TIMEOUT_NONE;
        rc = ss_stream_new(&req->pub.stream, &req->transport, &so);
    }
    if (rc < 0) {
        ss_tls_transport_release(&req->transport);
        if (req->holds_key)
            ss__admit_release(srv, &req->key);
        ss_sock_close(&req->conn);
        free(req);
        return rc;
    }
    req->pub.server = srv;
    req->pub.sock = &req->conn;
    req->pub.client_address = *peer;

    atomic_fetch_add(&srv->counters.accepted, 1);
    bool over = false;
    if (srv->opts.max_unadmitted > 0) {
        atomic_store(&req->unadmitted, true);
        over = atomic_fetch_add(&srv->unadmitted, 1) >= (size_t)srv->opts.max_unadmitted;
    }
    ss__active_add(srv, 1);
    registry_add(srv, req);
    if (over)
        evict_oldest_pending(srv);
    req->started_ms = info->accepted_ms != 0 ? info->accepted_ms : ss__now_ms();
    /* -v gives one line per connection, at its end; the opening is debug */
    ss_server_log(srv, SS_LOG_DEBUG, "%s connected", req->peer_text);
    *out = req;
    return 0;
}

int ss__req_from_packet(ss_server *srv, const void *buf, size_t len,
                        const ss_addr *from, bool copy, ss__req **out)
{
    *out = NULL;
    ss__req *req = calloc(1, sizeof *req);
    if (req == NULL)
        return -ENOMEM;
    if (copy) {
        req->packet_copy = malloc(len > 0 ? len : 1);
        if (req->packet_copy == NULL) {
            free(req);
            return -ENOMEM;
        }
        memcpy(req->packet_copy, buf, len);
        buf = req->packet_copy;
    }
    req->conn.fd = -1;
    if (ss_addr_format(from, req->peer_text, sizeof req->peer_text) < 0)
        snprintf(req->peer_text, sizeof req->peer_text, "%s:(unnamed)",
                 ss_addr_kind_name(srv->addr.kind));
    req->pub.server = srv;
    req->pub.sock = &srv->sock;
    req->pub.client_address = *from;
    req->pub.packet = buf;
    req->pub.packet_len = len;

    atomic_fetch_add(&srv->counters.accepted, 1);
    ss__active_add(srv, 1);
    registry_add(srv, req);
    ss_server_log(srv, SS_LOG_DEBUG, "%s sent %zu bytes", req->peer_text, len);
    *out = req;
    return 0;
}

static void report_error(ss_server *srv, ss__req *req, int code)
{
    if (req->pub.stream != NULL && code == SS_ETIMEOUT &&
        srv->opts.idle_timeout > 0) {
        /* said in the closing line (ss__req_end) */
        snprintf(req->end_note, sizeof req->end_note, "idle for %gs", srv->opts.idle_timeout);
        return;
    }
    if (atomic_load(&req->aborted)) {
        snprintf(req->end_note, sizeof req->end_note, "cut off by shutdown (%s)",
                 ss_strerror(code));
        return;
    }
    atomic_fetch_add(&srv->counters.errors, 1);
    if (srv->opts.handle_error != NULL)
        srv->opts.handle_error(srv, &req->pub, code);
    else
        ss_server_log(srv, SS_LOG_ERROR, "%s: request failed: %s",
                      req->peer_text, ss_strerror(code));
}

/*
 * The TLS handshake, on the worker, before any handler code: bounded by
 * handshake_timeout from now (the first byte is in; a peer that stalls
 * mid-handshake is cut like a silent one). A finished handshake admits the
 * request (max_unadmitted); a failed one is one INFO line and a count --
 * scanners and plaintext clients are routine on the internet, not errors.
 */
static bool tls_handshake(ss_server *srv, ss__req *req)
{
    ss_error err = {0};
    double limit = srv->opts.handshake_timeout > 0 ? srv->opts.handshake_timeout
                                                   : SS_TIMEOUT_NONE;
    int rc = ss_tls_handshake(&req->transport, limit, &err);
    if (rc == 0) {
        ss_request_admit(&req->pub);
        return true;
    }
    atomic_fetch_add(&srv->counters.tls_failed, 1);
    snprintf(req->end_note, sizeof req->end_note, "%.150s", err.msg);
    req->tls_failed = true;
    return false;
}

void ss__req_run(ss_server *srv, ss__req *req)
{
    const ss_handler *h = &srv->handler;
    ss_request *r = &req->pub;
    if (ss_transport_is_tls(&req->transport) && !tls_handshake(srv, req))
        return;
    if (h->setup != NULL) {
        int rc = h->setup(r);
        if (rc != 0) { /* as an exception in setup(): no handle, no finish */
            report_error(srv, req, rc < 0 ? rc : SS_EPROTO);
            return;
        }
    }
    int rc = h->handle != NULL ? h->handle(r) : 0;
    if (h->finish != NULL)
        h->finish(r); /* always, even after a failed handle (try/finally) */
    if (r->stream != NULL) {
        /* StreamRequestHandler.finish flushes wfile; a peer that is gone
         * only matters if nothing failed before. */
        int frc = ss_stream_flush(r->stream);
        if (rc >= 0 && frc < 0 && frc != -EPIPE && frc != -ECONNRESET)
            rc = frc;
    }
    if (rc < 0)
        report_error(srv, req, rc);
}

/* Give back the request's max_unadmitted slot, once. */
static void release_pending(ss_server *srv, ss__req *req)
{
    if (atomic_exchange(&req->unadmitted, false))
        atomic_fetch_sub(&srv->unadmitted, 1);
}

/*
 * Past max_unadmitted: shut down the oldest connection still pending. The
 * oldest is the likeliest to be stuck on purpose (a slowloris, a half-open
 * handshake); evicting it keeps accepting, so new clients always get their
 * chance, where pausing the listener would let a trickle of silent
 * connections lock everyone out. The registry is newest-first.
 */
static void evict_oldest_pending(ss_server *srv)
{
    char peer[SS_ADDR_STRLEN] = "";
    pthread_mutex_lock(&srv->lock);
    ss__req *oldest = NULL;
    for (ss__req *r = srv->live; r != NULL; r = r->next)
        if (atomic_load(&r->unadmitted) && r->conn.fd >= 0)
            oldest = r;
    if (oldest != NULL && atomic_exchange(&oldest->unadmitted, false)) {
        atomic_fetch_sub(&srv->unadmitted, 1);
        atomic_fetch_add(&srv->counters.evicted, 1);
        shutdown(oldest->conn.fd, SHUT_RDWR);
        snprintf(peer, sizeof peer, "%s", oldest->peer_text);
    }
    pthread_mutex_unlock(&srv->lock);
    if (peer[0] != '\0')
        ss_server_log(srv, SS_LOG_INFO, "%s: not admitted yet, cut to make room (max_unadmitted %d)",
                      peer, srv->opts.max_unadmitted);
}

void ss_request_admit(ss_request *req)
{
    if (req == NULL || req->stream == NULL)
        return;
    /* pub is the first member of ss__req */
    release_pending(req->server, (ss__req *)(void *)req);
}

void ss__req_end(ss_server *srv, ss__req *req, bool detach)
{
    release_pending(srv, req);
    if (req->holds_key) /* a model that hands the connection on moved it */
        ss__admit_release(srv, &req->key);
    registry_remove(srv, req);
    bool stream = req->pub.stream != NULL;
    uint64_t bytes_in = 0, bytes_out = 0;
    if (stream) {
        ss__stream_counts(req->pub.stream, &bytes_in, &bytes_out);
        ss_stream_free(req->pub.stream);
        req->pub.stream = NULL;
        /* Python's shutdown_request: SHUT_WR first so the peer sees the end
         * even while a forked child still holds the descriptor. The forking
         * parent (detach) only drops its copy. */
        if (ss_transport_is_tls(&req->transport)) {
            /* close_notify (best effort: never waits) unless the handshake
             * never finished; the forking parent only drops its copy */
            if (!detach && !req->tls_failed)
                (void)req->transport.ops->shutdown_write(&req->transport);
            ss_tls_transport_release(&req->transport);
        }
        if (!detach)
            shutdown(req->conn.fd, SHUT_WR);
        ss_sock_close(&req->conn);
        if (!detach)
            ss_server_log(srv, SS_LOG_INFO,
                          "%s closed after %.3fs, %" PRIu64 " bytes in, %" PRIu64 " out%s%s",
                          req->peer_text, (double)(ss__now_ms() - req->started_ms) / 1000.0,
                          bytes_in, bytes_out, req->end_note[0] ? ", " : "", req->end_note);
    }
    free(req->packet_copy);
    free(req);
    ss__active_add(srv, -1);
}

void ss__shutdown_live(ss_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    for (ss__req *r = srv->live; r != NULL; r = r->next) {
        if (r->conn.fd >= 0) {
            atomic_store(&r->aborted, true);
            shutdown(r->conn.fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&srv->lock);
}

int ss_request_local_address(const ss_request *req, ss_addr *out)
{
    if (req == NULL || out == NULL)
        return SS_EUSAGE;
    /* pub is the first member: the request the handler holds is an ss__req */
    const ss__req *r = (const ss__req *)req;
    if (r->proxied && r->proxied_local.len > 0) {
        *out = r->proxied_local;
        return 0;
    }
    if (req->sock == NULL)
        return SS_EUSAGE;
    return ss_sock_getsockname(req->sock, out);
}

int ss_request_reply(ss_request *req, const void *buf, size_t len)
{
    if (req == NULL || (buf == NULL && len > 0))
        return SS_EUSAGE;
    if (req->stream != NULL) {
        return ss__stream_write_flush(req->stream, buf, len);
    }
    ss_server *srv = req->server;
    const ss_addr *to = &req->client_address;
    if (to->len <= sizeof(sa_family_t))
        return -EDESTADDRREQ; /* an unnamed unixgram sender cannot be answered */
    int64_t deadline = ss__deadline(DGRAM_REPLY_WAIT_S);
    for (;;) {
        ssize_t n = sendto(srv->sock.fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT,
                           &to->u.sa, to->len);
        if (n >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = ss__wait_fd(srv->sock.fd, POLLOUT, deadline);
        if (rc < 0)
            return rc;
    }
}
