/* SPDX-License-Identifier: MIT */
/* seed_client.c — the client side of the seed's CMD_RESULT_SIZE protocol
 * (docs/rcmd-protocol.md §10), byte for byte as tests/seed/ssh_client.py. */
#include "rcmd/client.h"

#include "rcmd/tls.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ANNOUNCE "CMD_RESULT_SIZE|"
#define ANNOUNCE_MAX 100 /* the seed client's recv(100) */

static int fail(ss_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ss_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int rcmd_seed_connect(ss_transport *t, const char *address, double timeout, ss_error *err)
{
    ss_sock s = SS_SOCK_INIT;
    int rc = rcmd_dial(&s, address, true, timeout, err); /* cleartext, always */
    if (rc < 0)
        return rc;
    rc = rcmd_plain_transport_init(t, s.fd);
    if (rc < 0) {
        close(s.fd);
        return fail(err, rc, "%s: %s", address, strerror(-rc));
    }
    return 0;
}

/* One read of at most `len` bytes, waiting until `deadline`. */
static ssize_t read_some(ss_transport *t, void *buf, size_t len, int64_t deadline)
{
    for (;;) {
        ssize_t n = t->ops->read(t, buf, len);
        if (n != -EAGAIN)
            return n;
        int rc = rcmd_transport_wait(t, POLLIN, deadline);
        if (rc < 0)
            return rc;
    }
}

static int64_t deadline_of(double timeout)
{
    return timeout < 0 ? -1 : rcmd_now_ms() + (int64_t)(timeout * 1000.0 + 0.5);
}

static int write_out(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            (void)poll(&pf, 1, 1000);
            continue;
        }
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

long long rcmd_seed_exchange(ss_transport *t, const char *line, int out_fd, double timeout,
                             int *last_byte, ss_error *err)
{
    if (last_byte)
        *last_byte = -1;
    int rc = rcmd_transport_write_all(t, line, strlen(line), deadline_of(timeout));
    if (rc < 0)
        return fail(err, rc, "cannot send the command: %s", ss_strerror(rc));

    /* The server sends the announcement alone and then waits for us, so one
     * read returns all of it (as the seed's recv(100) relies on). */
    char ack[ANNOUNCE_MAX + 1];
    ssize_t n = read_some(t, ack, ANNOUNCE_MAX, deadline_of(timeout));
    if (n == 0)
        return fail(err, SS_EEOF, "the server closed the connection");
    if (n < 0)
        return fail(err, (int)n, "no answer from the server: %s", ss_strerror((int)n));
    ack[n] = '\0';
    size_t pl = strlen(ANNOUNCE);
    long long size = 0;
    size_t digits = 0;
    if ((size_t)n <= pl || memcmp(ack, ANNOUNCE, pl) != 0)
        return fail(err, SS_EPROTO,
                    "protocol error: expected CMD_RESULT_SIZE|N from the "
                    "server");
    for (size_t i = pl; i < (size_t)n; i++, digits++) {
        if (ack[i] < '0' || ack[i] > '9' || digits >= 15)
            return fail(err, SS_EPROTO,
                        "protocol error: bad size in the server's "
                        "CMD_RESULT_SIZE");
        size = size * 10 + (ack[i] - '0');
    }
    rc = rcmd_transport_write_all(t, "CMD_RESULT", 10, deadline_of(timeout));
    if (rc < 0)
        return fail(err, rc, "cannot acknowledge: %s", ss_strerror(rc));

    char buf[65536];
    long long left = size;
    bool out_ok = true;
    while (left > 0) {
        n = read_some(t, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf,
                      deadline_of(timeout));
        if (n == 0)
            return fail(err, SS_EEOF,
                        "the server closed the connection after %lld of %lld "
                        "bytes",
                        size - left, size);
        if (n < 0)
            return fail(err, (int)n, "reading the result: %s", ss_strerror((int)n));
        if (out_ok && write_out(out_fd, buf, (size_t)n) < 0)
            out_ok = false; /* keep reading: the stream must stay in step */
        if (last_byte)
            *last_byte = (unsigned char)buf[n - 1];
        left -= n;
    }
    if (!out_ok)
        return fail(err, -EPIPE, "cannot write the result");
    return size;
}
