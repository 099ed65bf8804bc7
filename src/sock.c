/* SPDX-License-Identifier: MIT */
/*
 * sock.c — Python's socket semantics over a plain descriptor.
 *
 * The one rule that shapes this file is settimeout(): NONE keeps the
 * descriptor blocking and lets the kernel wait; 0 makes it non-blocking and
 * hands -EAGAIN back; a positive timeout also makes it non-blocking, and each
 * call then waits in poll() with a deadline so it can say SS_ETIMEOUT.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kind a family/type pair corresponds to, or NONE (raw, packet ...). */
static ss_addr_kind kind_of(int family, int type)
{
    if (family == AF_INET || family == AF_INET6) {
        if (type == SOCK_STREAM)
            return SS_ADDR_TCP;
        if (type == SOCK_DGRAM)
            return SS_ADDR_UDP;
    } else if (family == AF_UNIX) {
        if (type == SOCK_STREAM)
            return SS_ADDR_UNIX;
        if (type == SOCK_DGRAM)
            return SS_ADDR_UNIXGRAM;
        if (type == SOCK_SEQPACKET)
            return SS_ADDR_SEQPACKET;
    }
    return SS_ADDR_NONE;
}

static int type_of_kind(ss_addr_kind kind)
{
    switch (kind) {
    case SS_ADDR_TCP:
    case SS_ADDR_UNIX: return SOCK_STREAM;
    case SS_ADDR_UDP:
    case SS_ADDR_UNIXGRAM: return SOCK_DGRAM;
    case SS_ADDR_SEQPACKET: return SOCK_SEQPACKET;
    default: return -1;
    }
}

void ss__addr_text(const ss_addr *a, char *buf, size_t len)
{
    if (a == NULL || ss_addr_format(a, buf, len) < 0)
        snprintf(buf, len, "(unprintable address)");
}

static void sock_reset(ss_sock *s)
{
    s->fd = -1;
    s->kind = SS_ADDR_NONE;
    s->family = 0;
    s->timeout = SS_TIMEOUT_NONE;
}

int ss_sock_open(ss_sock *s, int family, int type, int protocol)
{
    sock_reset(s);
    int fd = socket(family, type | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return -errno;
    s->fd = fd;
    s->family = family;
    s->kind = kind_of(family, type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC));
    /* SOCK_NONBLOCK in `type` means the caller wants Python's timeout 0 */
    if (type & SOCK_NONBLOCK)
        s->timeout = 0;
    return 0;
}

int ss_sock_open_for(ss_sock *s, const ss_addr *a)
{
    int type = type_of_kind(a->kind);
    if (type < 0) {
        sock_reset(s);
        return SS_EBADADDR;
    }
    int rc = ss_sock_open(s, a->u.sa.sa_family, type, 0);
    if (rc == 0)
        s->kind = a->kind;
    return rc;
}

int ss_sock_from_fd(ss_sock *s, int fd, ss_addr_kind kind)
{
    sock_reset(s);
    int family = 0, type = 0;
    socklen_t len = sizeof family;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0)
        return -errno;
    len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return -errno;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    s->fd = fd;
    s->family = family;
    s->kind = kind != SS_ADDR_NONE ? kind : kind_of(family, type);
    /* as Python's socket(fileno=): a non-blocking descriptor means timeout 0 */
    s->timeout = (flags & O_NONBLOCK) ? 0 : SS_TIMEOUT_NONE;
    return 0;
}

int ss_sock_settimeout(ss_sock *s, double seconds)
{
    if (isnan(seconds))
        return SS_EUSAGE;
    if (seconds < 0)
        seconds = SS_TIMEOUT_NONE;
    if (s->fd >= 0) {
        int rc = ss__set_nonblocking(s->fd, seconds >= 0);
        if (rc < 0)
            return rc;
    }
    s->timeout = seconds;
    return 0;
}

double ss_sock_gettimeout(const ss_sock *s)
{
    return s->timeout;
}

int ss_sock_setblocking(ss_sock *s, bool blocking)
{
    return ss_sock_settimeout(s, blocking ? SS_TIMEOUT_NONE : 0.0);
}

/*
 * After a call said EAGAIN: with timeout 0 give it back; otherwise wait for
 * `events` (at most the timeout) and let the caller try again. With NONE the
 * descriptor is normally blocking and we never get here, unless someone
 * made it non-blocking behind our back (a transport over the same fd):
 * then waiting without a deadline keeps the blocking promise.
 */
static int wait_again(const ss_sock *s, short events)
{
    if (s->timeout == 0)
        return -EAGAIN;
    return ss__wait_fd(s->fd, events, ss__deadline(s->timeout));
}

static bool would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}

/*
 * A blocking socket (timeout NONE) used inside a coroutine must not block
 * the loop's thread: each call is made non-blocking (MSG_DONTWAIT, or
 * O_NONBLOCK for connect and accept, which have no such flag) and the wait
 * that follows an EAGAIN is the coroutine's, without a deadline, which is
 * what NONE promises. Outside a coroutine nothing changes.
 */
static int coro_dontwait(const ss_sock *s)
{
    return s->timeout < 0 && ss__wait_hook != NULL ? MSG_DONTWAIT : 0;
}

static void coro_make_nonblocking(const ss_sock *s)
{
    if (s->timeout < 0 && ss__wait_hook != NULL)
        (void)ss__set_nonblocking(s->fd, 1); /* wait_again keeps NONE's promise */
}

/* A short pause between retries: the coroutine's when in one. */
static void nap_ms(int ms)
{
    if (ss__wait_hook != NULL)
        (void)ss__wait_hook->sleep_ms(ms);
    else
        poll(NULL, 0, ms);
}

/* A peer address from the kernel. Connected sockets report none (length
 * 0) and unnamed unix peers only a family: both become an empty address of
 * the socket's kind rather than an error, as Python gives '' or None. The
 * caller set ss_family to AF_UNSPEC, so a length of 0 reads nothing stale. */
static void sockaddr_to_addr(ss_addr *out, ss_addr_kind kind, const struct sockaddr_storage *ss,
                             socklen_t len)
{
    if (ss_addr_from_sockaddr(out, kind, (const struct sockaddr *)ss, len) == 0)
        return;
    memset(out, 0, sizeof *out);
    out->kind = kind;
}

/* ---- bind / listen / accept ------------------------------------------- */

static bool is_path_unix(const ss_addr *a)
{
    return a->u.sa.sa_family == AF_UNIX && a->len > offsetof(struct sockaddr_un, sun_path) &&
           a->u.un.sun_path[0] != '\0';
}

/*
 * Is someone serving on the unix socket file at `a`? Asked the only reliable
 * way: connect to it. ECONNREFUSED means the file is a leftover of a dead
 * server. Returns 1 live, 0 stale, or a negative errno.
 */
static int unix_socket_is_live(const ss_addr *a, int type)
{
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int rc;
    if (connect(fd, &a->u.sa, a->len) == 0)
        rc = 1;
    else if (errno == ECONNREFUSED)
        rc = 0;
    else if (errno == EAGAIN || errno == EINPROGRESS || errno == EPROTOTYPE)
        rc = 1; /* full backlog, or a live socket of another type */
    else
        rc = -errno;
    close(fd);
    return rc;
}

/* Remove `a`'s file if it is a socket nobody serves on. Returns 1 when
 * removed (bind again), 0 when it must stay, or a negative errno. */
static int remove_stale_unix_file(const ss_addr *a, int type)
{
    struct stat st;
    const char *path = a->u.un.sun_path;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 1 : -errno; /* gone meanwhile: just retry */
    if (!S_ISSOCK(st.st_mode))
        return 0; /* never remove a file that is not a socket */
    int live = unix_socket_is_live(a, type);
    if (live != 0)
        return live < 0 ? live : 0;
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 1;
}

int ss_sock_bind(ss_sock *s, const ss_addr *a, ss_error *err)
{
    char text[SS_ADDR_STRLEN];
    int rc = 0;
    /* twice at most: once more after removing a stale socket file */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (bind(s->fd, &a->u.sa, a->len) == 0)
            return 0;
        rc = -errno;
        if (rc != -EADDRINUSE || !is_path_unix(a) || attempt > 0)
            break;
        int type = type_of_kind(a->kind);
        if (type < 0)
            type = SOCK_STREAM;
        if (remove_stale_unix_file(a, type) != 1)
            break;
    }
    ss__addr_text(a, text, sizeof text);
    return ss__fail(err, rc, "cannot bind %s: %s", text, ss_strerror(rc));
}

int ss_sock_listen(ss_sock *s, int backlog)
{
    if (listen(s->fd, backlog < 0 ? 0 : backlog) < 0)
        return -errno;
    return 0;
}

/* Errors accept() reports for a connection that died in the queue, or
 * (Linux, see accept(2)) a pending network error: the next one may be fine. */
bool ss__accept_retryable(int e)
{
    switch (e) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case ENETUNREACH: return true;
    default: return false;
    }
}

int ss_sock_accept(ss_sock *listener, ss_sock *conn, ss_addr *peer)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;
    sock_reset(conn);
    coro_make_nonblocking(listener);
    for (;;) {
        len = sizeof ss;
        ss.ss_family = AF_UNSPEC;
        /* no SOCK_NONBLOCK: the new socket is blocking whatever the listener is */
        fd = accept4(listener->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
        if (fd >= 0)
            break;
        int e = errno;
        if (ss__accept_retryable(e))
            continue;
        if (!would_block(e))
            return -e;
        int rc = wait_again(listener, POLLIN);
        if (rc < 0)
            return rc;
    }
    conn->fd = fd;
    conn->kind = listener->kind;
    conn->family = listener->family;
    if (peer != NULL)
        sockaddr_to_addr(peer, listener->kind, &ss, len);
    return 0;
}

/* ---- connect ------------------------------------------------------------ */

static int pending_socket_error(int fd)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -errno;
    return -soerr;
}

/* Wait for an in-progress connect to finish, then read its outcome. */
static int finish_connect(int fd, int64_t deadline)
{
    int rc = ss__wait_fd(fd, POLLOUT, deadline);
    if (rc < 0)
        return rc;
    return pending_socket_error(fd);
}

int ss_sock_connect_ex(ss_sock *s, const ss_addr *a)
{
    int64_t deadline = ss__deadline(s->timeout);
    coro_make_nonblocking(s);
    bool in_coro = ss__wait_hook != NULL;
    for (;;) {
        if (connect(s->fd, &a->u.sa, a->len) == 0)
            return 0;
        int e = errno;
        if (e == EINTR) {
            /* the kernel goes on connecting: wait for it, do not connect again */
            if (s->timeout == 0)
                return -EINPROGRESS;
            return finish_connect(s->fd, deadline);
        }
        if (e == EINPROGRESS) {
            if (s->timeout == 0)
                return -EINPROGRESS;
            return finish_connect(s->fd, deadline);
        }
        if (would_block(e) && s->family == AF_UNIX && (s->timeout > 0 || (in_coro && s->timeout < 0))) {
            /* A unix listener's backlog is full. The socket is not
             * connecting, so poll() cannot tell us when to retry (it reports
             * writable at once): retry on a short sleep until the deadline. */
            int left = ss__remaining_ms(deadline);
            if (left == 0)
                return SS_ETIMEOUT;
            nap_ms(left > 0 && left < 10 ? left : 10);
            continue;
        }
        return -e;
    }
}

int ss_sock_connect(ss_sock *s, const ss_addr *a, ss_error *err)
{
    int rc = ss_sock_connect_ex(s, a);
    if (rc < 0) {
        char text[SS_ADDR_STRLEN];
        ss__addr_text(a, text, sizeof text);
        ss__fail(err, rc, "cannot connect to %s: %s", text, ss_strerror(rc));
    }
    return rc;
}

/* ---- data --------------------------------------------------------------- */

ssize_t ss_sock_send(ss_sock *s, const void *buf, size_t len, int flags)
{
    for (;;) {
        ssize_t n = send(s->fd, buf, len, flags | MSG_NOSIGNAL | coro_dontwait(s));
        if (n >= 0)
            return n;
        int e = errno;
        if (e == EINTR)
            continue;
        if (!would_block(e) || (flags & MSG_DONTWAIT))
            return -e;
        int rc = wait_again(s, POLLOUT);
        if (rc < 0)
            return rc;
    }
}

ssize_t ss_sock_sendto(ss_sock *s, const void *buf, size_t len, int flags, const ss_addr *to)
{
    const struct sockaddr *sa = to != NULL ? &to->u.sa : NULL;
    socklen_t salen = to != NULL ? to->len : 0;
    for (;;) {
        ssize_t n = sendto(s->fd, buf, len, flags | MSG_NOSIGNAL | coro_dontwait(s), sa, salen);
        if (n >= 0)
            return n;
        int e = errno;
        if (e == EINTR)
            continue;
        if (!would_block(e) || (flags & MSG_DONTWAIT))
            return -e;
        int rc = wait_again(s, POLLOUT);
        if (rc < 0)
            return rc;
    }
}

ssize_t ss_sock_recvfrom(ss_sock *s, void *buf, size_t len, int flags, ss_addr *from)
{
    struct sockaddr_storage ss;
    for (;;) {
        socklen_t salen = sizeof ss;
        ss.ss_family = AF_UNSPEC;
        ssize_t n = recvfrom(s->fd, buf, len, flags | coro_dontwait(s), (struct sockaddr *)&ss, &salen);
        if (n >= 0) {
            if (from != NULL)
                sockaddr_to_addr(from, s->kind, &ss, salen);
            return n;
        }
        int e = errno;
        if (e == EINTR)
            continue;
        if (!would_block(e) || (flags & MSG_DONTWAIT))
            return -e;
        int rc = wait_again(s, POLLIN);
        if (rc < 0)
            return rc;
    }
}

ssize_t ss_sock_recv(ss_sock *s, void *buf, size_t len, int flags)
{
    for (;;) {
        ssize_t n = recv(s->fd, buf, len, flags | coro_dontwait(s));
        if (n >= 0)
            return n;
        int e = errno;
        if (e == EINTR)
            continue;
        if (!would_block(e) || (flags & MSG_DONTWAIT))
            return -e;
        int rc = wait_again(s, POLLIN);
        if (rc < 0)
            return rc;
    }
}

int ss_sock_sendall(ss_sock *s, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = ss_sock_send(s, p, len, 0);
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- names, shutdown, close -------------------------------------------- */

int ss_sock_getsockname(const ss_sock *s, ss_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(s->fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    return ss_addr_from_sockaddr(out, s->kind, (struct sockaddr *)&ss, len);
}

int ss_sock_getpeername(const ss_sock *s, ss_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(s->fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    return ss_addr_from_sockaddr(out, s->kind, (struct sockaddr *)&ss, len);
}

int ss_sock_shutdown(ss_sock *s, int how)
{
    if (shutdown(s->fd, how) < 0)
        return -errno;
    return 0;
}

int ss_sock_close(ss_sock *s)
{
    if (s->fd < 0)
        return 0;
    int fd = s->fd;
    s->fd = -1;
    /* Linux frees the descriptor even when close() says EINTR: never retry,
     * the number may already belong to another thread's new file. */
    if (close(fd) < 0 && errno != EINTR)
        return -errno;
    return 0;
}

/* ---- options ------------------------------------------------------------ */

static int option_level_name(ss_sockopt opt, int *level, int *name)
{
    switch (opt) {
    case SS_OPT_REUSEADDR: *level = SOL_SOCKET, *name = SO_REUSEADDR; return 0;
    case SS_OPT_REUSEPORT: *level = SOL_SOCKET, *name = SO_REUSEPORT; return 0;
    case SS_OPT_NODELAY: *level = IPPROTO_TCP, *name = TCP_NODELAY; return 0;
    case SS_OPT_KEEPALIVE: *level = SOL_SOCKET, *name = SO_KEEPALIVE; return 0;
    case SS_OPT_V6ONLY: *level = IPPROTO_IPV6, *name = IPV6_V6ONLY; return 0;
    case SS_OPT_RCVBUF: *level = SOL_SOCKET, *name = SO_RCVBUF; return 0;
    case SS_OPT_SNDBUF: *level = SOL_SOCKET, *name = SO_SNDBUF; return 0;
    case SS_OPT_BROADCAST: *level = SOL_SOCKET, *name = SO_BROADCAST; return 0;
    }
    return SS_EUSAGE;
}

int ss_sock_set_option(ss_sock *s, ss_sockopt opt, int value)
{
    int level, name;
    int rc = option_level_name(opt, &level, &name);
    if (rc < 0)
        return rc;
    if (setsockopt(s->fd, level, name, &value, sizeof value) < 0)
        return -errno;
    return 0;
}

int ss_sock_get_option(const ss_sock *s, ss_sockopt opt, int *value)
{
    int level, name;
    int rc = option_level_name(opt, &level, &name);
    if (rc < 0)
        return rc;
    socklen_t len = sizeof *value;
    *value = 0;
    if (getsockopt(s->fd, level, name, value, &len) < 0)
        return -errno;
    return 0;
}
