/* SPDX-License-Identifier: MIT */
/*
 * server_accept.c — socketserver's get_request, hardened: accept a
 * connection, decide whether this peer may be served at all (admission:
 * access rules, max_per_ip, verify_request), and keep it in the acceptor
 * until it has sent its first byte. Only then does it become a request and
 * get a worker (a thread, a child, a pool slot, a prefork process, or the
 * serial server itself).
 *
 * With proxy_protocol a connection's first bytes are a PROXY header naming
 * the real client (the socket's peer is the load balancer): it is read
 * here first, and admission runs on the address it carries, once it is in
 * (see "the PROXY header" below).
 *
 * Why wait for the first byte: a worker per silent connection is what lets a
 * handful of idle peers lock real clients out of a bounded server (2 block a
 * 2-process prefork, 40 a forking server at max_children). In the acceptor a
 * connection costs one descriptor and one small record, is bounded by
 * max_pending (the oldest cut first, silent before ready) and by
 * handshake_timeout. This is HAProxy's and nginx's shape: the event loop
 * holds connections, workers get requests.
 *
 * The acceptor belongs to the thread that runs the server's loop
 * (serve_forever / handle_request); nothing here is touched by workers,
 * except through ss__acceptor_forget() in a freshly forked child.
 */
#include "proxy_read.h"
#include "server_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Back-off after accept fails for lack of descriptors or memory. */
#define ACCEPT_BACKOFF_MIN_MS 50
#define ACCEPT_BACKOFF_MAX_MS 1000
/* Readiness events taken from the acceptor's epoll per call. */
#define READY_BATCH 64

struct ss__pending {
    int fd;
    ss_addr peer;
    int64_t accepted_ms;
    ss__peer_key key; /* counted in max_per_ip while holds_key */
    bool holds_key;
    bool ready; /* on the ready list (else waiting, registered in epfd) */
    ss_proxy_parser *proxy; /* proxy_protocol: the header still being read
                               (not admitted yet); NULL once it is in */
    bool proxied;           /* peer came from the header */
    ss_addr local;          /* proxied: the header's destination */
    ss__pending *prev, *next;
};

static void pending_free(ss__pending *p)
{
    free(p->proxy);
    free(p);
}

/* ---- the two lists ------------------------------------------------------ */

static void list_push(ss__pending **head, ss__pending **tail, ss__pending *p)
{
    p->next = NULL;
    p->prev = *tail;
    if (*tail != NULL)
        (*tail)->next = p;
    else
        *head = p;
    *tail = p;
}

static void list_unlink(ss__pending **head, ss__pending **tail, ss__pending *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        *head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        *tail = p->prev;
    p->prev = p->next = NULL;
}

static void unlink_pending(ss__acceptor *a, ss__pending *p)
{
    if (p->ready) {
        list_unlink(&a->ready, &a->ready_tail, p);
        a->nready--;
    } else {
        list_unlink(&a->waiting, &a->waiting_tail, p);
        a->nwaiting--;
        if (a->epfd >= 0)
            epoll_ctl(a->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    }
}

/* Close a connection that never became a request: no byte is sent (a
 * refusal says nothing a scanner could use). */
static void drop_pending(ss_server *srv, ss__pending *p)
{
    unlink_pending(&srv->acceptor, p);
    if (p->holds_key)
        ss__admit_release(srv, &p->key);
    close(p->fd);
    pending_free(p);
}

int ss__acceptor_init(ss_server *srv)
{
    ss__acceptor *a = &srv->acceptor;
    memset(a, 0, sizeof *a);
    a->epfd = -1;
    /* a server that speaks first still waits for the PROXY header */
    if (!srv->stream || (srv->opts.server_speaks_first && !srv->opts.proxy_protocol))
        return 0;
    a->epfd = epoll_create1(EPOLL_CLOEXEC);
    return a->epfd < 0 ? -errno : 0;
}

void ss__acceptor_free(ss_server *srv)
{
    ss__acceptor *a = &srv->acceptor;
    while (a->waiting != NULL)
        drop_pending(srv, a->waiting);
    while (a->ready != NULL)
        drop_pending(srv, a->ready);
    if (a->epfd >= 0)
        close(a->epfd);
    a->epfd = -1;
}

void ss__acceptor_forget(ss_server *srv)
{
    /* In a forked child: these connections are the parent's to serve or
     * close. Closing our copies keeps them out of the child (a handler gets
     * no other client's descriptor) and leaves the parent's untouched. */
    ss__acceptor *a = &srv->acceptor;
    for (ss__pending *l = a->waiting; l != NULL;) {
        ss__pending *n = l->next;
        close(l->fd);
        pending_free(l);
        l = n;
    }
    for (ss__pending *l = a->ready; l != NULL;) {
        ss__pending *n = l->next;
        close(l->fd);
        pending_free(l);
        l = n;
    }
    if (a->epfd >= 0)
        close(a->epfd);
    memset(a, 0, sizeof *a);
    a->epfd = -1;
}

size_t ss__acceptor_count(const ss_server *srv)
{
    return (size_t)(srv->acceptor.nwaiting + srv->acceptor.nready);
}

/* ---- accept --------------------------------------------------------------- */

static void accept_failed(ss_server *srv, int e)
{
    switch (e) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        /* The connection stays in the backlog and the listener stays
         * readable: polling it again at once would spin. Stop polling it
         * for a while instead, longer each time, and say so once. */
        srv->accept_backoff_ms =
            srv->accept_backoff_ms == 0
                ? ACCEPT_BACKOFF_MIN_MS
                : (srv->accept_backoff_ms * 2 > ACCEPT_BACKOFF_MAX_MS ? ACCEPT_BACKOFF_MAX_MS
                                                                      : srv->accept_backoff_ms * 2);
        srv->accept_resume_at = ss__now_ms() + srv->accept_backoff_ms;
        if (!srv->accept_fail_logged) {
            srv->accept_fail_logged = true;
            ss_server_log(srv, SS_LOG_ERROR, "%s: cannot accept: %s; pausing accept",
                          srv->addr_text, strerror(e));
        }
        break;
    default: break;
    }
}

/* Errors of accept() that leave the listener usable: those of the
 * connection at hand (ss__accept_retryable), an empty backlog, a firewall
 * refusal, and the shortages the loop answers by pausing accept. */
static bool accept_error_is_transient(int e)
{
    if (ss__accept_retryable(e))
        return true;
    switch (e) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EOPNOTSUPP:
    case EPERM: /* firewall rules */
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM: return true;
    default: return false;
    }
}

/* Room for one more: past max_pending cut the oldest silent connection, or
 * if every one has spoken, the oldest waiting for a worker. */
static void make_room(ss_server *srv)
{
    ss__acceptor *a = &srv->acceptor;
    int max = srv->opts.max_pending;
    while (max > 0 && a->nwaiting + a->nready >= max) {
        ss__pending *victim = a->waiting != NULL ? a->waiting : a->ready;
        atomic_fetch_add(&srv->counters.evicted, 1);
        ss__refusal_note(srv, SS__REFUSED_EVICTED);
        drop_pending(srv, victim);
    }
}

static int add_waiting(ss_server *srv, ss__pending *p)
{
    ss__acceptor *a = &srv->acceptor;
    if (a->epfd < 0) { /* server_speaks_first: ready at once */
        p->ready = true;
        list_push(&a->ready, &a->ready_tail, p);
        a->nready++;
        return 0;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = p};
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, p->fd, &ev) < 0)
        return -errno;
    p->ready = false;
    list_push(&a->waiting, &a->waiting_tail, p);
    a->nwaiting++;
    return 0;
}

static void peer_of(ss_server *srv, const struct sockaddr_storage *from, socklen_t len,
                    ss_addr *peer)
{
    memset(peer, 0, sizeof *peer);
    peer->kind = srv->addr.kind;
    if (ss_addr_from_sockaddr(peer, srv->addr.kind, (const struct sockaddr *)from, len) < 0) {
        memset(peer, 0, sizeof *peer);
        peer->kind = srv->addr.kind;
        peer->len = sizeof(sa_family_t);
        peer->u.sa.sa_family = (sa_family_t)ss_addr_family(&srv->addr);
    }
}

/* Accept one connection into the acceptor. 1 when the listener gave one
 * (admitted or not), 0 when it had none, or a fatal code. */
static int accept_one(ss_server *srv)
{
    struct sockaddr_storage from;
    socklen_t len = sizeof from;
    int fd = accept4(srv->sock.fd, (struct sockaddr *)&from, &len, SOCK_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (!accept_error_is_transient(e))
            return -e;
        accept_failed(srv, e);
        return 0;
    }
    if (srv->accept_backoff_ms != 0) {
        srv->accept_backoff_ms = 0;
        srv->accept_fail_logged = false;
        ss_server_log(srv, SS_LOG_WARN, "%s: accepting again", srv->addr_text);
    }
    ss_addr peer;
    peer_of(srv, &from, len, &peer);
    ss__pending tmp = {.fd = fd, .peer = peer};
    if (srv->opts.proxy_protocol) {
        /* who the client is, the header will say: admission waits for it */
        tmp.proxy = malloc(sizeof *tmp.proxy);
        if (tmp.proxy == NULL) {
            close(fd);
            return 1;
        }
        ss_proxy_init(tmp.proxy);
    } else if (ss__admit_conn(srv, fd, &peer, &tmp.key, &tmp.holds_key) != 0) {
        close(fd); /* counted and noted by the admission check */
        return 1;
    }
    ss__pending *p = malloc(sizeof *p);
    if (p == NULL) {
        if (tmp.holds_key)
            ss__admit_release(srv, &tmp.key);
        free(tmp.proxy);
        close(fd);
        return 1;
    }
    *p = tmp;
    p->accepted_ms = ss__now_ms();
    make_room(srv);
    if (add_waiting(srv, p) < 0) {
        if (p->holds_key)
            ss__admit_release(srv, &p->key);
        close(fd);
        pending_free(p);
    }
    return 1;
}

int ss__acceptor_accept(ss_server *srv, int budget)
{
    int taken = 0;
    while (taken < budget && !ss__shutdown_requested(srv) &&
           srv->accept_resume_at <= ss__now_ms()) {
        int rc = accept_one(srv);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        taken++;
    }
    return taken;
}

/* ---- first bytes and deadlines ------------------------------------------ */

/* A waiting connection has spoken: it waits for a worker now. */
static void make_ready(ss_server *srv, ss__pending *p)
{
    ss__acceptor *a = &srv->acceptor;
    list_unlink(&a->waiting, &a->waiting_tail, p);
    a->nwaiting--;
    epoll_ctl(a->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    p->ready = true;
    list_push(&a->ready, &a->ready_tail, p);
    a->nready++;
}

/* Wait for the next readiness of a waiting connection (EPOLLONESHOT). */
static void rearm(ss_server *srv, ss__pending *p)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = p};
    if (epoll_ctl(srv->acceptor.epfd, EPOLL_CTL_MOD, p->fd, &ev) < 0)
        drop_pending(srv, p);
}

/* ---- the PROXY header (proxy_protocol) -------------------------------------
 *
 * The first step of a connection, before admission and before its first
 * byte of its own: read the header as it arrives (never blocking: a peer
 * that sends half a header and stalls is cut at handshake_timeout by
 * ss__acceptor_expire, like a silent one), then serve the connection as
 * the client's. The bytes after the header stay in the socket. A TLS
 * handshake, when there is one, comes after this step.
 */

static void refuse_header(ss_server *srv, ss__pending *p, int rc, const char *why)
{
    if (rc == SS_EPROTO) {
        if (srv->opts.log != NULL) {
            char text[SS_ADDR_STRLEN];
            ss__addr_text(&p->peer, text, sizeof text);
            ss_server_log(srv, SS_LOG_DEBUG, "%s: no valid PROXY header: %s", text, why);
        }
        atomic_fetch_add(&srv->counters.bad_header, 1);
        ss__refusal_note(srv, SS__REFUSED_BAD_HEADER); /* may write the summary */
    }
    /* else it went away (or failed) first: nothing to count, as for a
     * connection gone without a byte */
    drop_pending(srv, p);
}

static void read_proxy_header(ss_server *srv, ss__pending *p)
{
    ss_proxy_header h;
    const char *why;
    int rc = ss__proxy_read(p->fd, p->proxy, &h, &why);
    if (rc == SS_PROXY_MORE) {
        rearm(srv, p);
        return;
    }
    if (rc != SS_PROXY_DONE) {
        refuse_header(srv, p, rc, why);
        return;
    }
    free(p->proxy);
    p->proxy = NULL;
    if (!h.local) { /* LOCAL / UNKNOWN: the socket's peer stands */
        p->peer = h.source;
        p->local = h.destination;
        p->proxied = true;
    }
    if (ss__admit_conn(srv, p->fd, &p->peer, &p->key, &p->holds_key) != 0) {
        drop_pending(srv, p); /* counted and noted by the admission check */
        return;
    }
    /* From here it is any admitted connection: it waits for its first
     * byte, which may have come with the header. */
    if (srv->opts.server_speaks_first) {
        make_ready(srv, p);
        return;
    }
    char c;
    ssize_t n = recv(p->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        make_ready(srv, p);
    else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        rearm(srv, p);
    else
        drop_pending(srv, p); /* gone without a byte of its own */
}

void ss__acceptor_collect(ss_server *srv)
{
    ss__acceptor *a = &srv->acceptor;
    if (a->epfd < 0 || a->nwaiting == 0)
        return;
    struct epoll_event ev[READY_BATCH];
    int n = epoll_wait(a->epfd, ev, READY_BATCH, 0);
    for (int i = 0; i < n; i++) {
        ss__pending *p = ev[i].data.ptr;
        if (p->proxy != NULL) {
            read_proxy_header(srv, p); /* stays in place while it reads */
            continue;
        }
        if ((ev[i].events & EPOLLIN) == 0) {
            /* gone (or failed) without a byte: nothing for a handler to do */
            drop_pending(srv, p);
            continue;
        }
        make_ready(srv, p);
    }
}

void ss__acceptor_expire(ss_server *srv, int64_t now)
{
    ss__acceptor *a = &srv->acceptor;
    double t = srv->opts.handshake_timeout;
    if (t <= 0)
        return;
    int64_t limit = (int64_t)(t * 1000.0);
    if (a->waiting == NULL || now - a->waiting->accepted_ms < limit)
        return;
    /* Collect first: the loop looks at first bytes only when nothing is
     * ready to dispatch, so under a slow model a connection may have spoken
     * long ago and still be on the waiting list; it is not silent. */
    for (int n = a->nwaiting; n > 0 && a->nwaiting > 0; n -= READY_BATCH)
        ss__acceptor_collect(srv);
    while (a->waiting != NULL && now - a->waiting->accepted_ms >= limit) {
        atomic_fetch_add(&srv->counters.timed_out, 1);
        ss__refusal_note(srv, SS__REFUSED_SILENT);
        drop_pending(srv, a->waiting);
    }
}

int ss__acceptor_timeout(const ss_server *srv, int64_t now)
{
    const ss__acceptor *a = &srv->acceptor;
    if (a->waiting == NULL || srv->opts.handshake_timeout <= 0)
        return -1;
    int64_t due = a->waiting->accepted_ms + (int64_t)(srv->opts.handshake_timeout * 1000.0);
    return due <= now ? 0 : (int)(due - now);
}

bool ss__acceptor_has_ready(const ss_server *srv)
{
    return srv->acceptor.ready != NULL;
}

int ss__acceptor_take(ss_server *srv, ss__req **out)
{
    *out = NULL;
    ss__acceptor *a = &srv->acceptor;
    ss__pending *p = a->ready;
    if (p == NULL)
        return 0;
    list_unlink(&a->ready, &a->ready_tail, p);
    a->nready--;
    ss__conn_info info = {
        .peer = p->peer,
        .accepted_ms = p->accepted_ms,
        .key = p->key,
        .holds_key = p->holds_key,
        .proxied = p->proxied,
        .local = p->local,
    };
    ss_sock conn = {p->fd, srv->addr.kind, srv->sock.family, SS_TIMEOUT_NONE};
    pending_free(p);
    int rc = ss__req_from_conn(srv, &conn, &info, out); /* owns conn and key now */
    if (rc < 0) {
        ss_server_log(srv, SS_LOG_ERROR, "%s: cannot start a request: %s", srv->addr_text,
                      ss_strerror(rc));
        return 0;
    }
    return 1;
}

/* ---- datagrams ------------------------------------------------------------ */

int ss__receive_packet(ss_server *srv, bool copy_packet, ss__req **out)
{
    *out = NULL;
    struct sockaddr_storage from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(srv->sock.fd, srv->dgram_buf, srv->opts.max_packet_size, MSG_DONTWAIT,
                         (struct sockaddr *)&from, &len);
    if (n < 0) {
        int e = errno;
        if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR ||
            e == ECONNREFUSED) /* an ICMP error about an earlier reply */
            return 0;
        if (e == ENOMEM || e == ENOBUFS)
            return 0;
        return -e;
    }
    ss_addr peer;
    memset(&peer, 0, sizeof peer);
    peer.kind = srv->addr.kind;
    if (ss_addr_from_sockaddr(&peer, srv->addr.kind, (struct sockaddr *)&from, len) < 0) {
        memset(&peer, 0, sizeof peer);
        peer.kind = srv->addr.kind;
        peer.len = len;
        memcpy(&peer.u, &from, len <= sizeof peer.u ? len : sizeof peer.u);
    }
    if (!ss__admit_packet(srv, &peer))
        return 1;
    if (srv->opts.verify_request != NULL && !srv->opts.verify_request(srv, &srv->sock, &peer)) {
        atomic_fetch_add(&srv->counters.refused, 1);
        return 1;
    }
    int rc = ss__req_from_packet(srv, srv->dgram_buf, (size_t)n, &peer, copy_packet, out);
    if (rc < 0)
        ss_server_log(srv, SS_LOG_ERROR, "%s: cannot start a request: %s", srv->addr_text,
                      ss_strerror(rc));
    return 1;
}
