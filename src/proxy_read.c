/* SPDX-License-Identifier: MIT */
/* proxy_read.c — a PROXY protocol header read off a socket, exactly: the
 * parser (proxy_protocol.c) says how many of the peeked bytes are the
 * header's, and only those are read. Peeking keeps the bytes after the
 * header where they were (in the kernel's queue), which is simpler and
 * safer than handing a leftover buffer to every later reader (the stream,
 * the event loop, a forked or prefork child, a TLS library). */
#include "proxy_read.h"

#include <errno.h>
#include <sys/socket.h>

int ss__proxy_read(int fd, ss_proxy_parser *p, ss_proxy_header *out, const char **why)
{
    unsigned char buf[SS_PROXY_MAX_HEADER];
    *why = "";
    /* the parser takes at most what is left of SS_PROXY_MAX_HEADER */
    size_t room = p->have < sizeof buf ? sizeof buf - p->have : 1;
    ssize_t n;
    do
        n = recv(fd, buf, room, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? SS_PROXY_MORE : -errno;
    if (n == 0) {
        if (p->have == 0)
            return SS_EEOF;
        *why = "the connection closed inside the header";
        return SS_EPROTO;
    }
    size_t used = 0;
    int rc = ss_proxy_feed(p, buf, (size_t)n, &used, out);
    if (rc < 0) {
        *why = ss_proxy_error(p);
        return rc;
    }
    /* take exactly the header's bytes: they are in the queue (peeked), and
     * nobody else reads this socket yet */
    size_t got = 0;
    while (got < used) {
        ssize_t r = recv(fd, buf + got, used - got, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        got += (size_t)r;
    }
    return rc;
}
