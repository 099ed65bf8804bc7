/* SPDX-License-Identifier: MIT */
/*
 * notify.c — systemd's readiness protocol (sd_notify(3)), without libsystemd:
 * newline-separated "VARIABLE=value" lines, sent as one datagram to the
 * AF_UNIX socket that NOTIFY_SOCKET names ("/path", or "@name" in the
 * abstract namespace). The manager learns who sent it from the credentials
 * the kernel attaches (the manager sets SO_PASSCRED), so there is nothing to
 * add. A manager that is slow to read must not stall a server: the send
 * waits a bounded time for room, then gives up with an error.
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Longest state we send (systemd reads notifications of up to a page). */
#define STATE_MAX 4096
/* How long a full notification socket may keep us waiting. */
#define SEND_WAIT_MS 1000

/* NOTIFY_SOCKET's value as a sockaddr_un; 0 or a code with err->msg. */
static int notify_address(const char *value, struct sockaddr_un *sun, socklen_t *len, ss_error *err)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t n = strlen(value);
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (strncmp(value, "vsock:", 6) == 0)
        return ss__fail(err, SS_EUNSUPPORTED,
                        "NOTIFY_SOCKET '%.100s': AF_VSOCK is not "
                        "supported",
                        value);
    if (value[0] == '@') {
        /* abstract: a leading NUL, then exactly the name (no padding) */
        if (n < 2 || n > sizeof sun->sun_path)
            return ss__fail(err, -EINVAL,
                            "NOTIFY_SOCKET '%.100s': abstract name of 1..%zu "
                            "bytes expected",
                            value, sizeof sun->sun_path - 1);
        memcpy(sun->sun_path + 1, value + 1, n - 1);
        *len = (socklen_t)(off + n);
        return 0;
    }
    if (value[0] != '/')
        return ss__fail(err, -EINVAL,
                        "NOTIFY_SOCKET '%.100s' is neither an absolute path "
                        "nor an @abstract name",
                        value);
    if (n >= sizeof sun->sun_path)
        return ss__fail(err, -ENAMETOOLONG,
                        "NOTIFY_SOCKET '%.100s...': path longer than "
                        "%zu bytes",
                        value, sizeof sun->sun_path - 1);
    memcpy(sun->sun_path, value, n + 1);
    *len = (socklen_t)(off + n + 1);
    return 0;
}

/* One datagram, waiting at most SEND_WAIT_MS for room. */
static int send_once(int fd, const char *state, size_t len)
{
    int64_t deadline = ss__now_ms() + SEND_WAIT_MS;
    for (;;) {
        ssize_t n = send(fd, state, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (size_t)n == len ? 0 : -EMSGSIZE;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        /* connected: POLLOUT means the manager's queue has room again */
        int rc = ss__wait_fd(fd, POLLOUT, deadline);
        if (rc < 0)
            return rc;
    }
}

int ss_notify(const char *state, ss_error *err)
{
    if (state == NULL || state[0] == '\0')
        return ss__fail(err, SS_EUSAGE, "ss_notify: nothing to send");
    size_t len = strlen(state);
    if (len > STATE_MAX)
        return ss__fail(err, SS_EUSAGE, "ss_notify: state longer than %d bytes", STATE_MAX);
    const char *value = getenv("NOTIFY_SOCKET");
    if (value == NULL || value[0] == '\0')
        return 0;

    struct sockaddr_un sun;
    socklen_t sun_len = 0;
    int rc = notify_address(value, &sun, &sun_len, err);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return ss__fail(err, -errno, "cannot notify NOTIFY_SOCKET %.100s: socket: %s", value,
                        strerror(errno));
    rc = connect(fd, (const struct sockaddr *)&sun, sun_len) < 0 ? -errno : 0;
    if (rc == 0)
        rc = send_once(fd, state, len);
    close(fd);
    if (rc < 0)
        return ss__fail(err, rc, "cannot notify NOTIFY_SOCKET %.100s: %s", value, ss_strerror(rc));
    return 1;
}
