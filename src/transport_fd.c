/* SPDX-License-Identifier: MIT */
/*
 * transport_fd.c — the plain-descriptor transport: TCP and unix sockets,
 * and (so a stream can wrap stdin/stdout or a pipe) any other descriptor.
 *
 * Sockets use send(MSG_NOSIGNAL) so a vanished peer is -EPIPE, never a
 * signal. Pipes have no such flag: a caller that writes to a pipe through
 * this transport must ignore SIGPIPE itself (the library keeps no global
 * state, signal dispositions included).
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

static ssize_t sock_read(ss_transport *t, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(t->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

/* A socket that keeps message boundaries (seqpacket; datagrams): a message
 * longer than `len` would lose its tail without a word, so MSG_TRUNC has the
 * kernel say its real length and the read fails instead. */
static ssize_t message_read(ss_transport *t, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(t->fd, buf, len, MSG_TRUNC);
        if (n >= 0)
            return (size_t)n > len ? -EMSGSIZE : n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

/*
 * A stream socket read by a coroutine (coro_sched.c): a read that returns
 * less than asked for has emptied the kernel's receive queue (TCP and unix
 * stream receives take every queued segment up to `len`), so the next read
 * would only say EAGAIN. Say it without the system call -- when the
 * scheduler agrees that nothing can be lost by it (the descriptor is the
 * coroutine's own, whose registration reports every wake-up and what is
 * ready when it is made; a report of the peer's end turns the hint off,
 * since that end may sit unread behind the data): anything arriving after
 * the short read then ends the wait the stream now makes. A
 * request/response loop saves one recv() per message. Elsewhere (no
 * coroutine) nothing changes. t->impl, unused by this transport, holds the
 * hint.
 */
#define SHORT_READ_HINT ((void *)1)

static ssize_t stream_sock_read(ss_transport *t, void *buf, size_t len)
{
    const ss__wait_hooks *hook = ss__wait_hook;
    if (t->impl == SHORT_READ_HINT) {
        t->impl = NULL;
        if (hook != NULL && hook->read_would_block(t->fd))
            return -EAGAIN;
    }
    ssize_t n = sock_read(t, buf, len);
    if (hook != NULL && n > 0 && (size_t)n < len)
        t->impl = SHORT_READ_HINT;
    return n;
}

static ssize_t sock_write(ss_transport *t, const void *buf, size_t len)
{
    for (;;) {
        ssize_t n = send(t->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static ssize_t pipe_read(ss_transport *t, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(t->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static ssize_t pipe_write(ss_transport *t, const void *buf, size_t len)
{
    for (;;) {
        ssize_t n = write(t->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

/* A plain descriptor is ready exactly when it says so; only TLS would
 * answer something other than what was asked. */
static short fd_wait_events(ss_transport *t, short wanted)
{
    (void)t;
    return wanted;
}

static int sock_shutdown_write(ss_transport *t)
{
    if (shutdown(t->fd, SHUT_WR) < 0)
        return -errno;
    return 0;
}

static int pipe_shutdown_write(ss_transport *t)
{
    (void)t;
    return SS_EUNSUPPORTED; /* one descriptor: closing it would end reading too */
}

static void fd_close(ss_transport *t)
{
    if (t->fd >= 0) {
        close(t->fd); /* no retry on EINTR: Linux has freed the number */
        t->fd = -1;
    }
}

static const ss_transport_ops message_sock_ops = {
    .name = "fd",
    .read = message_read,
    .write = sock_write,
    .wait_events = fd_wait_events,
    .shutdown_write = sock_shutdown_write,
    .close = fd_close,
};

static const ss_transport_ops stream_sock_ops = {
    .name = "fd",
    .read = stream_sock_read,
    .write = sock_write,
    .wait_events = fd_wait_events,
    .shutdown_write = sock_shutdown_write,
    .close = fd_close,
};

static const ss_transport_ops pipe_ops = {
    .name = "fd",
    .read = pipe_read,
    .write = pipe_write,
    .wait_events = fd_wait_events,
    .shutdown_write = pipe_shutdown_write,
    .close = fd_close,
};

int ss_transport_fd_init(ss_transport *t, int fd)
{
    t->ops = NULL;
    t->fd = -1;
    t->impl = NULL;
    int type;
    socklen_t len = sizeof type;
    bool is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
    if (!is_socket && errno != ENOTSOCK)
        return -errno; /* EBADF and the like */
    int rc = ss__set_nonblocking(fd, 1);
    if (rc < 0)
        return rc;
    t->ops = !is_socket ? &pipe_ops : type == SOCK_STREAM ? &stream_sock_ops : &message_sock_ops;
    t->fd = fd;
    return 0;
}
